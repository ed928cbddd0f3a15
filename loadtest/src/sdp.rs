//! The little SDP the load generator needs: building one-audio-stream
//! offers and answers, and reading the target's rewritten SDP (address,
//! port, profile, payload types, rtpmaps, SDES crypto, and for WebRTC legs
//! ICE credentials, candidates, DTLS fingerprint and setup role).

use std::net::{IpAddr, SocketAddr};

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
    /// Further media-level attributes, without `a=` (ICE, DTLS, rtcp-mux).
    pub attrs: Vec<String>,
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
        for a in &self.attrs {
            s.push_str(&format!("a={a}\r\n"));
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
    /// `a=ice-ufrag` (media level, else session level).
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd` (media level, else session level).
    pub ice_pwd: Option<String>,
    /// `a=ice-lite` at session or media level.
    pub ice_lite: bool,
    /// `a=candidate` lines that parsed (UDP only).
    pub candidates: Vec<Candidate>,
    /// `a=fingerprint` values (`sha-256 AB:CD:...`), media level, else session level.
    pub fingerprints: Vec<String>,
    /// `a=setup` value (`actpass`, `active`, `passive`).
    pub setup: Option<String>,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
}

/// One UDP ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Component id (1 = RTP, 2 = RTCP).
    pub component: u32,
    /// Priority.
    pub priority: u32,
    /// Transport address.
    pub addr: SocketAddr,
    /// Candidate type (`host`, `srflx`, `prflx`, `relay`).
    pub typ: String,
}

impl Candidate {
    /// Parses the value of an `a=candidate:` attribute (after the colon):
    /// `foundation component transport priority address port typ TYPE ...`.
    /// Only UDP candidates are returned.
    pub fn parse(value: &str) -> Option<Candidate> {
        let f: Vec<&str> = value.split_whitespace().collect();
        if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") || f[6] != "typ" {
            return None;
        }
        let ip: IpAddr = f[4].parse().ok()?;
        Some(Candidate {
            component: f[1].parse().ok()?,
            priority: f[3].parse().ok()?,
            addr: SocketAddr::new(ip, f[5].parse().ok()?),
            typ: f[7].to_string(),
        })
    }
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
    let mut session = ParsedMedia::default();
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
            } else if let Some(rest) = line.strip_prefix("a=candidate:") {
                m.candidates.extend(Candidate::parse(rest));
            } else if line == "a=rtcp-mux" {
                m.rtcp_mux = true;
            } else {
                transport_attr(&mut m, line);
            }
        } else if !seen_media {
            transport_attr(&mut session, line);
        }
    }
    if !seen_audio {
        return None;
    }
    if m.addr.is_none() {
        m.addr = session_addr;
    }
    m.ice_ufrag = m.ice_ufrag.or(session.ice_ufrag);
    m.ice_pwd = m.ice_pwd.or(session.ice_pwd);
    m.ice_lite |= session.ice_lite;
    if m.fingerprints.is_empty() {
        m.fingerprints = session.fingerprints;
    }
    m.setup = m.setup.or(session.setup);
    Some(m)
}

/// The ICE and DTLS attributes allowed at session and media level.
fn transport_attr(m: &mut ParsedMedia, line: &str) {
    if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
        m.ice_ufrag = Some(v.trim().to_string());
    } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
        m.ice_pwd = Some(v.trim().to_string());
    } else if line == "a=ice-lite" {
        m.ice_lite = true;
    } else if let Some(v) = line.strip_prefix("a=fingerprint:") {
        m.fingerprints.push(v.trim().to_string());
    } else if let Some(v) = line.strip_prefix("a=setup:") {
        m.setup = Some(v.trim().to_string());
    }
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
            attrs: vec!["rtcp-mux".into(), "setup:active".into()],
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
        assert!(p.rtcp_mux);
        assert_eq!(p.setup.as_deref(), Some("active"));
    }

    #[test]
    fn webrtc_transport_attributes() {
        // rtpengine's offer toward a WebRTC peer (ICE=force, UDP/TLS/RTP/SAVPF, rtcp-mux offer).
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 30000 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n\
                   a=rtcp:30001\r\na=rtcp-mux\r\na=setup:actpass\r\n\
                   a=fingerprint:sha-256 D9:0F:66:00:BE:72:FA:B8:93:1B:82:FA:AE:0A:8C:19:9E:20:F6:98:A1:F0:25:7B:14:8A:F1:97:27:D1:69:A9\r\n\
                   a=ice-ufrag:8DIXPWWH\r\na=ice-pwd:dQ80pHsro5AUYUbEgiMjciuZKm\r\n\
                   a=candidate:SYcj 1 UDP 2130706431 127.0.0.1 30000 typ host\r\n\
                   a=candidate:SYcj 2 UDP 2130706430 127.0.0.1 30001 typ host\r\n\
                   a=candidate:T 1 TCP 1 127.0.0.1 9 typ host tcptype active\r\n";
        let p = parse(sdp).unwrap();
        assert_eq!(p.proto, "UDP/TLS/RTP/SAVPF");
        assert_eq!(p.ice_ufrag.as_deref(), Some("8DIXPWWH"));
        assert_eq!(p.ice_pwd.as_deref(), Some("dQ80pHsro5AUYUbEgiMjciuZKm"));
        assert!(!p.ice_lite && p.rtcp_mux);
        assert_eq!(p.setup.as_deref(), Some("actpass"));
        assert_eq!(p.fingerprints.len(), 1);
        assert!(p.fingerprints[0].starts_with("sha-256 D9:0F"));
        assert_eq!(p.candidates.len(), 2);
        assert_eq!(
            p.candidates[0],
            Candidate {
                component: 1,
                priority: 2130706431,
                addr: "127.0.0.1:30000".parse().unwrap(),
                typ: "host".into()
            }
        );
        // Session-level ICE-lite credentials and fingerprint (Strait's style).
        let lite =
            "v=0\r\na=ice-lite\r\na=ice-ufrag:U\r\na=ice-pwd:P\r\na=fingerprint:sha-256 AA\r\n\
                    m=audio 1 UDP/TLS/RTP/SAVPF 0\r\na=ice-ufrag:M\r\n";
        let p = parse(lite).unwrap();
        assert!(p.ice_lite);
        assert_eq!(p.ice_ufrag.as_deref(), Some("M"));
        assert_eq!(p.ice_pwd.as_deref(), Some("P"));
        assert_eq!(p.fingerprints, vec!["sha-256 AA".to_string()]);
        assert_eq!(Candidate::parse("1 1 UDP x 127.0.0.1 5 typ host"), None);
        assert_eq!(Candidate::parse("1 1 UDP 5 127.0.0.1 5 host"), None);
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
