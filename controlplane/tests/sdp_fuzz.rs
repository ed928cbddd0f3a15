//! The SDP fuzz entry points run over the fixtures and mutations of them
//! (a smoke test of the bodies the cargo-fuzz crate calls).
#![cfg(feature = "fuzz")]

mod sdp_fixtures;

use proptest::prelude::*;
use sdp_fixtures::*;
use strait::sdp::fuzz::{sdp_negotiate, sdp_parse};

const ALL: [&str; 10] = [
    CHROME_OFFER,
    CHROME_OFFER_MDNS,
    CHROME_OFFER_VIDEO,
    CHROME_OFFER_OPUS_ONLY,
    CHROME_ANSWER,
    SIPP_OFFER,
    ASTERISK_OFFER,
    PHONE_OFFER_LF,
    G729_OFFER,
    SDES_OFFER,
];

#[test]
fn fixtures_through_the_fuzz_bodies() {
    for f in ALL {
        sdp_parse(f.as_bytes());
        sdp_negotiate(f.as_bytes());
    }
    for junk in [
        &b""[..],
        b"v=0",
        b"\xff\xfe",
        b"v=0\r\no=\r\ns=\r\n",
        &[0u8; 64],
    ] {
        sdp_parse(junk);
        sdp_negotiate(junk);
    }
}

proptest! {
    #[test]
    fn mutated_fixtures_through_the_fuzz_bodies(
        which in 0usize..ALL.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        let mut bytes = ALL[which].as_bytes().to_vec();
        for (at, b, op) in edits {
            let i = at.index(bytes.len().max(1)).min(bytes.len().saturating_sub(1));
            match op {
                0 if !bytes.is_empty() => bytes[i] = b,
                1 if !bytes.is_empty() => { bytes.remove(i); }
                2 => bytes.insert(i, b),
                _ => {
                    // Splice a line from another fixture.
                    let other = ALL[usize::from(b) % ALL.len()];
                    let line = other.lines().nth(usize::from(b) % 12).unwrap_or("a=x");
                    let pos = bytes.iter().position(|c| *c == b'\n').map_or(0, |p| p + 1);
                    let mut ins = line.as_bytes().to_vec();
                    ins.extend_from_slice(b"\r\n");
                    bytes.splice(pos..pos, ins);
                }
            }
        }
        sdp_parse(&bytes);
        sdp_negotiate(&bytes);
    }
}
