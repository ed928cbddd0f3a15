//! The SDP the simulated endpoints send: a browser's WebRTC offer and
//! answer (`UDP/TLS/RTP/SAVPF`, ICE credentials, a host candidate, DTLS
//! fingerprint, `a=setup`, rtcp-mux, Opus/111 and PCMU/0), and a legacy
//! endpoint's plain `RTP/AVP` PCMU offer or answer. Reading the other
//! side's SDP is [`crate::sdp::parse`].

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::sdp::ParsedMedia;

/// The codec a simulated browser wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserCodec {
    /// Offers PCMU first (and Opus): G.711 passes through Strait.
    Pcmu,
    /// Offers Opus only: Strait transcodes to G.711 for the legacy side.
    Opus,
}

impl BrowserCodec {
    /// The name on the command line and in records.
    pub fn name(self) -> &'static str {
        match self {
            BrowserCodec::Pcmu => "pcmu",
            BrowserCodec::Opus => "opus",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "pcmu" => Some(BrowserCodec::Pcmu),
            "opus" => Some(BrowserCodec::Opus),
            _ => None,
        }
    }
}

/// A browser's media identity for one call.
#[derive(Debug, Clone)]
pub struct BrowserMedia {
    /// Its host candidate (the media socket).
    pub addr: SocketAddr,
    /// ICE username fragment.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// `a=fingerprint` value, e.g. `sha-256 AB:CD:...`.
    pub fingerprint: String,
    /// SSRC it sends with.
    pub ssrc: u32,
}

const OPUS_PT: u8 = 111;

fn ip_words(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("IP4 {}", a.ip()),
        SocketAddr::V6(a) => format!("IP6 {}", a.ip()),
    }
}

fn browser_common(s: &mut String, m: &BrowserMedia, setup: &str, mid: &str) {
    let ip = ip_words(&m.addr);
    let _ = write!(
        s,
        "c=IN {ip}\r\na=rtcp:{port} IN {ip}\r\n\
         a=candidate:1 1 udp 2122260223 {host} {port} typ host generation 0\r\n\
         a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=ice-options:trickle\r\n\
         a=fingerprint:{fp}\r\na=setup:{setup}\r\na=mid:{mid}\r\na=sendrecv\r\na=rtcp-mux\r\n",
        port = m.addr.port(),
        host = m.addr.ip(),
        ufrag = m.ufrag,
        pwd = m.pwd,
        fp = m.fingerprint,
    );
}

fn codec_lines(s: &mut String, pt: u8) {
    if pt == OPUS_PT {
        let _ = write!(
            s,
            "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
        );
    } else {
        let _ = write!(s, "a=rtpmap:{pt} PCMU/8000\r\n");
    }
}

fn session_head(m: &BrowserMedia, session: u64) -> String {
    format!(
        "v=0\r\no=- {session} 2 IN {}\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS lt\r\n",
        ip_words(&m.addr)
    )
}

/// A browser's offer, as Chrome makes one (audio only).
pub fn browser_offer(m: &BrowserMedia, codec: BrowserCodec, session: u64) -> String {
    let pts: &[u8] = match codec {
        BrowserCodec::Pcmu => &[0, OPUS_PT],
        BrowserCodec::Opus => &[OPUS_PT],
    };
    let list: Vec<String> = pts.iter().map(u8::to_string).collect();
    let mut s = session_head(m, session);
    let _ = write!(
        s,
        "m=audio {} UDP/TLS/RTP/SAVPF {}\r\n",
        m.addr.port(),
        list.join(" ")
    );
    browser_common(&mut s, m, "actpass", "0");
    for &pt in pts {
        codec_lines(&mut s, pt);
    }
    let _ = write!(
        s,
        "a=ssrc:{} cname:strait-loadtest\r\na=ssrc:{} msid:lt lt0\r\n",
        m.ssrc, m.ssrc
    );
    s
}

/// The `a=mid` of the first audio section of `sdp` (`0` if none).
fn first_mid(sdp: &str) -> String {
    let mut in_audio = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            if in_audio {
                break;
            }
            in_audio = rest.starts_with("audio");
        } else if in_audio {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                return mid.trim().to_string();
            }
        }
    }
    "0".into()
}

/// The payload type a browser answering `offer` picks for `codec`, or the
/// other one when the preferred is not offered.
pub fn pick_browser_pt(offer: &ParsedMedia, codec: BrowserCodec) -> Option<u8> {
    let pcmu = offer
        .payload_types
        .contains(&0)
        .then_some(0)
        .or_else(|| offer.payload_type_of("PCMU"));
    let opus = offer.payload_type_of("opus");
    match codec {
        BrowserCodec::Pcmu => pcmu.or(opus),
        BrowserCodec::Opus => opus.or(pcmu),
    }
}

/// A browser's answer (`a=setup:active`) to Strait's offer `offer_text`
/// (parsed as `offer`), with payload type `pt`.
pub fn browser_answer(
    m: &BrowserMedia,
    offer_text: &str,
    offer: &ParsedMedia,
    pt: u8,
    session: u64,
) -> String {
    let mid = first_mid(offer_text);
    let mut s = format!(
        "v=0\r\no=- {session} 2 IN {}\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mid}\r\na=msid-semantic: WMS lt\r\n",
        ip_words(&m.addr)
    );
    let proto = if offer.proto.is_empty() {
        "UDP/TLS/RTP/SAVPF"
    } else {
        offer.proto.as_str()
    };
    let _ = write!(s, "m=audio {} {proto} {pt}\r\n", m.addr.port());
    browser_common(&mut s, m, "active", &mid);
    let is_opus = offer
        .rtpmaps
        .iter()
        .any(|(p, enc)| *p == pt && enc.to_ascii_lowercase().starts_with("opus/"));
    if is_opus {
        let _ = write!(
            s,
            "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} minptime=10;useinbandfec=1\r\n"
        );
    } else {
        codec_lines(&mut s, pt);
    }
    let _ = write!(s, "a=ssrc:{} cname:strait-loadtest\r\n", m.ssrc);
    s
}

/// A legacy endpoint's SDP (offer or answer): PCMU and telephone-event on
/// `addr`.
pub fn legacy_sdp(addr: SocketAddr, session: u64) -> String {
    let ip = ip_words(&addr);
    format!(
        "v=0\r\no=legacy {session} 1 IN {ip}\r\ns=strait-loadtest\r\nc=IN {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        addr.port()
    )
}

/// `sha-256 AB:CD:...` for a 32-byte digest.
pub fn sha256_fingerprint(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha-256 {}", hex.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> BrowserMedia {
        BrowserMedia {
            addr: "127.0.0.1:40000".parse().unwrap(),
            ufrag: "abcd".into(),
            pwd: "0123456789abcdefghijkl".into(),
            fingerprint: sha256_fingerprint(&[0xAB; 32]),
            ssrc: 1234,
        }
    }

    #[test]
    fn offers_and_answers_parse_back() {
        let o = browser_offer(&media(), BrowserCodec::Pcmu, 7);
        let p = crate::sdp::parse(&o).unwrap();
        assert_eq!(p.port, 40000);
        assert_eq!(p.proto, "UDP/TLS/RTP/SAVPF");
        assert_eq!(p.payload_types, vec![0, 111]);
        assert_eq!(p.ice_ufrag.as_deref(), Some("abcd"));
        assert_eq!(p.setup.as_deref(), Some("actpass"));
        assert!(p.rtcp_mux);
        assert_eq!(p.fingerprints.len(), 1);
        assert_eq!(p.candidates.len(), 1);
        let only_opus = crate::sdp::parse(&browser_offer(&media(), BrowserCodec::Opus, 7)).unwrap();
        assert_eq!(only_opus.payload_types, vec![111]);

        // Answering an offer like Strait's.
        let strait = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
            m=audio 20000 UDP/TLS/RTP/SAVPF 0 8 111 101\r\nc=IN IP4 127.0.0.1\r\na=mid:audio\r\n\
            a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:111 opus/48000/2\r\n\
            a=ice-ufrag:s1\r\na=ice-pwd:spwd\r\na=fingerprint:sha-256 AA\r\na=setup:actpass\r\n";
        let sp = crate::sdp::parse(strait).unwrap();
        assert_eq!(pick_browser_pt(&sp, BrowserCodec::Pcmu), Some(0));
        assert_eq!(pick_browser_pt(&sp, BrowserCodec::Opus), Some(111));
        let a = browser_answer(&media(), strait, &sp, 111, 9);
        let ap = crate::sdp::parse(&a).unwrap();
        assert_eq!(ap.payload_types, vec![111]);
        assert_eq!(ap.setup.as_deref(), Some("active"));
        assert!(a.contains("a=mid:audio") && a.contains("a=group:BUNDLE audio"));
        assert_eq!(ap.payload_type_of("opus"), Some(111));

        let l = crate::sdp::parse(&legacy_sdp("127.0.0.1:5004".parse().unwrap(), 1)).unwrap();
        assert_eq!((l.port, l.proto.as_str()), (5004, "RTP/AVP"));
        assert_eq!(l.payload_types, vec![0, 101]);
    }
}
