//! SDP fixtures (as the peers send them) and helpers shared by the SDP tests.
#![allow(dead_code)]

use strait::sdp::{
    BrowserEndpoint, CallConfig, CallMedia, Fingerprint, LegacyEndpoint, RandomSource,
    SessionDescription,
};

/// Chrome 12x audio-only offer (JsSIP, ICE gathering complete): host, srflx
/// and TCP candidates, rtcp-rsize, the full audio codec list.
pub const CHROME_OFFER: &str = include_str!("chrome_offer.sdp");
/// Chrome offer with an mDNS host candidate and `c=IN IP4 0.0.0.0`, port 9.
pub const CHROME_OFFER_MDNS: &str = include_str!("chrome_offer_mdns.sdp");
/// Chrome audio + video offer, BUNDLE 0 1.
pub const CHROME_OFFER_VIDEO: &str = include_str!("chrome_offer_video.sdp");
/// Chrome offer restricted to Opus by setCodecPreferences (with NACK).
pub const CHROME_OFFER_OPUS_ONLY: &str = include_str!("chrome_offer_opus_only.sdp");
/// Chrome answer to Strait's `0 8 111 110 101` offer.
pub const CHROME_ANSWER: &str = include_str!("chrome_answer.sdp");
/// SIPp's built-in UAC offer (PCMU only, no telephone-event).
pub const SIPP_OFFER: &str = include_str!("sipp_uac_offer.sdp");
/// Asterisk offer: PCMU PCMA GSM + telephone-event 101.
pub const ASTERISK_OFFER: &str = include_str!("asterisk_offer.sdp");
/// A desk phone's offer with LF line endings, PCMA first, `a=rtcp`, `b=AS`.
pub const PHONE_OFFER_LF: &str = include_str!("phone_offer_lf.sdp");
/// A gateway offering only G.729.
pub const G729_OFFER: &str = include_str!("g729_only_offer.sdp");
/// An SRTP (SDES) offer, RTP/SAVP with three crypto lines.
pub const SDES_OFFER: &str = include_str!("sdes_offer.sdp");

/// Strait's DTLS fingerprint in the tests.
pub const STRAIT_FP: [u8; 32] = [0x5A; 32];

/// A deterministic RandomSource (xorshift64*).
pub fn rng(seed: u64) -> impl RandomSource {
    let mut s = seed | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
    }
}

/// The test configuration: browser side 203.0.113.1:40000 (+ 10.0.0.1),
/// legacy side 192.0.2.1:30000.
pub fn config() -> CallConfig {
    CallConfig::new(
        BrowserEndpoint {
            address: [203, 0, 113, 1].into(),
            extra_addresses: vec![[10, 0, 0, 1].into()],
            port: 40000,
            fingerprint: Fingerprint::sha256(STRAIT_FP),
            ssrc: None,
        },
        LegacyEndpoint {
            address: [192, 0, 2, 1].into(),
            port: 30000,
            rtcp_port: None,
            rtcp_attribute: false,
            offer_sdes: false,
        },
    )
}

/// A call with the test configuration.
pub fn call(cfg: CallConfig) -> CallMedia {
    CallMedia::new(cfg, &mut rng(42))
}

/// The lines of a written description (without CRLF).
pub fn lines(sd: &SessionDescription) -> Vec<String> {
    let text = sd.to_string();
    assert!(text.ends_with("\r\n"));
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "bare LF in output"
    );
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Asserts `line` is in `sd`.
#[track_caller]
pub fn has(sd: &SessionDescription, line: &str) {
    let l = lines(sd);
    assert!(
        l.iter().any(|x| x == line),
        "missing line {line:?} in\n{}",
        l.join("\n")
    );
}

/// Asserts no line of `sd` starts with `prefix`.
#[track_caller]
pub fn lacks(sd: &SessionDescription, prefix: &str) {
    let l = lines(sd);
    assert!(
        !l.iter().any(|x| x.starts_with(prefix)),
        "unexpected {prefix:?} in\n{}",
        l.join("\n")
    );
}

/// The session version of `o=`.
pub fn version(sd: &SessionDescription) -> u64 {
    sd.origin.session_version.parse().unwrap()
}

/// A legacy answer from 192.0.2.9:20000 with the given `m=` formats and extra lines.
pub fn legacy_answer(formats: &str, extra: &[&str]) -> String {
    let mut s = format!(
        "v=0\r\no=- 7 7 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 20000 RTP/AVP {formats}\r\n"
    );
    for l in extra {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

/// The Chrome answer with its `m=audio` format list replaced.
pub fn chrome_answer_with(formats: &str) -> String {
    CHROME_ANSWER.replace(
        "m=audio 61234 UDP/TLS/RTP/SAVPF 0 8 111 110 101",
        &format!("m=audio 61234 UDP/TLS/RTP/SAVPF {formats}"),
    )
}
