//! The little SDP the load generator needs: building one-audio-stream
//! offers and answers, and reading the target's rewritten SDP (address,
//! port, profile, payload types, rtpmaps, SDES crypto).

use std::net::IpAddr;

/// One `m=audio` section to generate.
#[derive(Debug, Clone)]
pub struct MediaDesc {
    /// Address in `o=` and `c=`.
    pub addr: IpAddr,
    /// RTP port.
    pub port: u16,
    /// Transport profile, `RTP/AVP` or `RTP/SAVP`.
    pub proto: &'static str,
    /// Payload types with their `rtpmap` encoding (`PCMU/8000`, `opus/48000/2`).
    pub formats: Vec<(u8, String)>,
    /// `a=fmtp` parameters per payload type.
    pub fmtp: Vec<(u8, String)>,
    /// SDES `a=crypto` line contents after `a=crypto:`.
    pub crypto: Option<String>,
    /// Session id in `o=`.
    pub session_id: u64,
}

impl MediaDesc {
    /// The SDP text (CRLF line ends).
    pub fn render(&self) -> String {
        let ip = match self.addr {
            IpAddr::V4(a) => format!("IP4 {a}"),
            IpAddr::V6(a) => format!("IP6 {a}"),
        };
        let pts: Vec<String> = self.formats.iter().map(|(pt, _)| pt.to_string()).collect();
        let mut s = format!(
            "v=0\r\no=- {id} 1 IN {ip}\r\ns=strait-loadtest\r\nc=IN {ip}\r\nt=0 0\r\nm=audio {port} {proto} {pts}\r\n",
            id = self.session_id,
            port = self.port,
            proto = self.proto,
            pts = pts.join(" "),
        );
        for (pt, enc) in &self.formats {
            s.push_str(&format!("a=rtpmap:{pt} {enc}\r\n"));
        }
        for (pt, p) in &self.fmtp {
            s.push_str(&format!("a=fmtp:{pt} {p}\r\n"));
        }
        if let Some(c) = &self.crypto {
            s.push_str(&format!("a=crypto:{c}\r\n"));
        }
        s.push_str("a=ptime:20\r\na=sendrecv\r\n");
        s
    }
}

/// What the generator needs from an SDP the target produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMedia {
    /// Connection address (media level wins over session level).
    pub addr: Option<IpAddr>,
    /// Port of the first `m=audio`.
    pub port: u16,
    /// Its transport profile.
    pub proto: String,
    /// Its payload types.
    pub payload_types: Vec<u8>,
    /// `(payload type, encoding name/clock[/channels])` from `a=rtpmap`.
    pub rtpmaps: Vec<(u8, String)>,
    /// `a=crypto` values (`tag suite inline:key...`).
    pub cryptos: Vec<String>,
}

impl ParsedMedia {
    /// The payload type whose rtpmap encoding name is `name` (case-insensitive).
    pub fn payload_type_of(&self, name: &str) -> Option<u8> {
        self.rtpmaps
            .iter()
            .find(|(_, enc)| {
                enc.split('/')
                    .next()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(|(pt, _)| *pt)
    }
}

/// Parses the first audio section of `sdp`. `None` if there is none or its
/// port is not a number.
pub fn parse(sdp: &str) -> Option<ParsedMedia> {
    let mut m = ParsedMedia::default();
    let mut session_addr = None;
    let mut in_audio = false;
    let mut seen_audio = false;
    let mut seen_media = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            seen_media = true;
            if seen_audio {
                // Only the first audio section counts.
                in_audio = false;
                continue;
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            in_audio = f.first() == Some(&"audio");
            if in_audio {
                seen_audio = true;
                m.port = f.get(1)?.parse().ok()?;
                m.proto = f.get(2).copied().unwrap_or_default().to_string();
                m.payload_types = f.iter().skip(3).filter_map(|p| p.parse().ok()).collect();
            }
        } else if let Some(rest) = line.strip_prefix("c=IN ") {
            let addr = rest.split_whitespace().nth(1).and_then(|a| a.parse().ok());
            if in_audio {
                m.addr = addr;
            } else if !seen_media {
                session_addr = addr;
            }
        } else if in_audio {
            if let Some(rest) = line.strip_prefix("a=rtpmap:") {
                let mut it = rest.splitn(2, ' ');
                if let (Some(Ok(pt)), Some(enc)) = (it.next().map(str::parse), it.next()) {
                    m.rtpmaps.push((pt, enc.trim().to_string()));
                }
            } else if let Some(rest) = line.strip_prefix("a=crypto:") {
                m.cryptos.push(rest.to_string());
            }
        }
    }
    if !seen_audio {
        return None;
    }
    if m.addr.is_none() {
        m.addr = session_addr;
    }
    Some(m)
}

/// Reads an SDES `a=crypto` value (`1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|...]`):
/// the suite name and the base64 key material.
pub fn parse_crypto(value: &str) -> Option<(&str, &str)> {
    let mut f = value.split_whitespace();
    let _tag = f.next()?;
    let suite = f.next()?;
    let params = f.next()?;
    let inline = params.strip_prefix("inline:")?;
    let key = inline.split('|').next()?;
    Some((suite, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_back() {
        let d = MediaDesc {
            addr: "127.0.0.1".parse().unwrap(),
            port: 10000,
            proto: "RTP/SAVP",
            formats: vec![
                (0, "PCMU/8000".into()),
                (101, "telephone-event/8000".into()),
            ],
            fmtp: vec![(101, "0-15".into())],
            crypto: Some("1 AES_CM_128_HMAC_SHA1_80 inline:QUJD".into()),
            session_id: 7,
        };
        let text = d.render();
        assert!(text.contains("m=audio 10000 RTP/SAVP 0 101\r\n"));
        let p = parse(&text).unwrap();
        assert_eq!(p.port, 10000);
        assert_eq!(p.proto, "RTP/SAVP");
        assert_eq!(p.payload_types, vec![0, 101]);
        assert_eq!(p.addr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.payload_type_of("pcmu"), Some(0));
        assert_eq!(p.payload_type_of("opus"), None);
        assert_eq!(
            parse_crypto(&p.cryptos[0]),
            Some(("AES_CM_128_HMAC_SHA1_80", "QUJD"))
        );
    }

    #[test]
    fn media_level_address_and_first_audio_only() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\n\
                   m=audio 30000 RTP/AVP 96\r\nc=IN IP4 127.0.0.2\r\na=rtpmap:96 opus/48000/2\r\n\
                   m=audio 30002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let p = parse(sdp).unwrap();
        assert_eq!(p.port, 30000);
        assert_eq!(p.addr, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(p.payload_type_of("opus"), Some(96));
        assert_eq!(p.payload_type_of("PCMU"), None);
        assert_eq!(parse("v=0\r\n"), None);
        assert_eq!(parse("m=audio x RTP/AVP 0\r\n"), None);
        assert_eq!(parse_crypto("1 AES_CM_128_HMAC_SHA1_80"), None);
        assert_eq!(parse_crypto("1 S inline:K|2^31|1:1"), Some(("S", "K")));
    }
}
