//! Fuzz entry points (feature `fuzz`), called by the cargo-fuzz crate.
//!
//! They never panic on any input; they assert only invariants of the module.

use super::attrs::{Fingerprint, RandomSource};
use super::media::MediaInfo;
use super::model::SessionDescription;
use super::negotiate::{BrowserEndpoint, CallConfig, CallMedia, LegacyEndpoint};
use super::plan::Side;

/// Parses `data`. An accepted description must write to bytes that parse
/// again, and writing must be a fixpoint from then on
/// (`write(parse(write(x))) == write(x)`); the typed view of every media
/// section must not panic and must agree between the two parses.
pub fn sdp_parse(data: &[u8]) {
    let Ok(sd) = SessionDescription::parse(data) else {
        return;
    };
    let w1 = sd.to_bytes();
    assert!(w1.ends_with(b"\r\n"), "writer ends lines with CRLF");
    let sd2 = SessionDescription::parse(&w1).expect("written SDP parses");
    let w2 = sd2.to_bytes();
    assert_eq!(w1, w2, "writer is a fixpoint");
    for i in 0..sd.media.len() {
        let a = MediaInfo::from_session(&sd, i);
        let b = MediaInfo::from_session(&sd2, i);
        assert_eq!(a.is_ok(), b.is_ok(), "typed view agrees after a round trip");
        if let (Ok(a), Ok(b)) = (a, b) {
            assert_eq!(a.codecs, b.codecs);
            assert_eq!(a.rtp, b.rtp);
            assert_eq!(a.rtcp, b.rtcp);
            assert_eq!(a.direction, b.direction);
        }
    }
}

fn fuzz_config() -> CallConfig {
    CallConfig::new(
        BrowserEndpoint {
            address: [203, 0, 113, 1].into(),
            extra_addresses: vec![[10, 0, 0, 1].into()],
            port: 40000,
            fingerprint: Fingerprint::sha256([0xAB; 32]),
            ssrc: Some(0x1234_5678),
        },
        LegacyEndpoint {
            address: [192, 0, 2, 1].into(),
            port: 30000,
            rtcp_port: None,
            rtcp_attribute: true,
            offer_sdes: false,
        },
    )
}

fn counter_rng() -> impl RandomSource {
    let mut n = 0u8;
    move |buf: &mut [u8]| {
        for b in buf {
            n = n.wrapping_mul(31).wrapping_add(7);
            *b = n;
        }
    }
}

/// Feeds `data` to a [`CallMedia`] as an offer from the browser and as one
/// from the legacy side, and as the answer to each of Strait's own offers
/// built from the first byte's choice. Whatever Strait emits must parse.
pub fn sdp_negotiate(data: &[u8]) {
    let mut rng = counter_rng();
    for from in [Side::Browser, Side::Legacy] {
        let mut call = CallMedia::new(fuzz_config(), &mut rng);
        if let Ok(offer) = call.process_offer(from, data, &mut rng) {
            let bytes = offer.sdp.to_bytes();
            SessionDescription::parse(&bytes).expect("Strait's offer parses");
            // The fuzz input answers Strait's offer as well.
            if let Ok(ans) = call.process_answer(from.other(), data, &mut rng) {
                SessionDescription::parse(&ans.sdp.to_bytes()).expect("Strait's answer parses");
            }
        }
    }
    // And as an answer to a fixed offer from each side.
    for (from, offer) in [
        (Side::Browser, FIXED_BROWSER_OFFER),
        (Side::Legacy, FIXED_LEGACY_OFFER),
    ] {
        let mut call = CallMedia::new(fuzz_config(), &mut rng);
        call.process_offer(from, offer.as_bytes(), &mut rng)
            .expect("the fixed offer is valid");
        if let Ok(ans) = call.process_answer(from.other(), data, &mut rng) {
            SessionDescription::parse(&ans.sdp.to_bytes()).expect("Strait's answer parses");
            assert!(call.plan().is_some());
        }
    }
}

const FIXED_BROWSER_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n";

const FIXED_LEGACY_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\n\
t=0 0\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
