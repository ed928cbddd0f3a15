//! Property tests: round trips, delivery in any order, garbage input.

use proptest::prelude::*;
use strait_srtp::{Config, Error, SrtpContext, Suite};

fn suite() -> impl Strategy<Value = Suite> {
    prop::sample::select(Suite::ALL.to_vec())
}

fn pair(suite: Suite, seed: u8) -> (SrtpContext, SrtpContext) {
    let m: Vec<u8> = (0..suite.master_len() as u8)
        .map(|i| i.wrapping_mul(31) ^ seed)
        .collect();
    let tx = SrtpContext::from_master(suite, &m, Config::default()).expect("tx");
    let rx = SrtpContext::from_master(suite, &m, Config::default()).expect("rx");
    (tx, rx)
}

/// An RTP packet with `csrcs` CSRCs, an optional extension of `ext_words`
/// words and `payload`.
fn build_rtp(seq: u16, ssrc: u32, csrcs: u8, ext_words: Option<u8>, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80 | (csrcs & 0x0F), 96];
    if ext_words.is_some() {
        p[0] |= 0x10;
    }
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[1, 2, 3, 4]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..csrcs & 0x0F {
        p.extend_from_slice(&[c; 4]);
    }
    if let Some(w) = ext_words {
        p.extend_from_slice(&[0xBE, 0xDE, 0, w]);
        p.extend(std::iter::repeat_n(0x11, 4 * usize::from(w)));
    }
    p.extend_from_slice(payload);
    p
}

proptest! {
    #[test]
    fn rtp_round_trip(
        suite in suite(),
        seed: u8,
        seq: u16,
        ssrc: u32,
        csrcs in 0u8..16,
        ext in prop::option::of(0u8..8),
        payload in prop::collection::vec(any::<u8>(), 0..1500),
        spare in 0usize..64,
    ) {
        let (mut tx, mut rx) = pair(suite, seed);
        let plain = build_rtp(seq, ssrc, csrcs, ext, &payload);
        let mut buf = plain.clone();
        buf.resize(plain.len() + suite.rtp_overhead() + spare, 0xEE);
        let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect");
        prop_assert_eq!(n, plain.len() + suite.rtp_tag_len());
        let hlen = plain.len() - payload.len();
        prop_assert_eq!(&buf[..hlen], &plain[..hlen]);
        let m = rx.unprotect_rtp(&mut buf[..n]).expect("unprotect");
        prop_assert_eq!(&buf[..m], &plain[..]);
        // Exactly once.
        let mut again = buf[..m].to_vec();
        again.resize(n, 0);
        let n2 = tx.protect_rtp(&mut again, m).expect("protect again");
        prop_assert_eq!(rx.unprotect_rtp(&mut again[..n2]), Err(Error::Replayed));
    }

    #[test]
    fn rtcp_round_trip(
        suite in suite(),
        seed: u8,
        encrypt: bool,
        ssrc: u32,
        body in prop::collection::vec(any::<u8>(), 0..1200),
        count in 1usize..5,
    ) {
        let (mut tx, mut rx) = pair(suite, seed);
        let mut config = Config::default();
        config.encrypt_srtcp = encrypt;
        let m: Vec<u8> = (0..suite.master_len() as u8).map(|i| i.wrapping_mul(31) ^ seed).collect();
        if !encrypt {
            tx = SrtpContext::from_master(suite, &m, config).expect("tx");
        }
        let mut plain = vec![0x80, 201, 0, 1];
        plain.extend_from_slice(&ssrc.to_be_bytes());
        plain.extend_from_slice(&body);
        for _ in 0..count {
            let mut buf = plain.clone();
            buf.resize(plain.len() + suite.rtcp_overhead(), 0);
            let n = tx.protect_rtcp(&mut buf, plain.len()).expect("protect");
            prop_assert_eq!(n, plain.len() + suite.rtcp_overhead());
            let k = rx.unprotect_rtcp(&mut buf[..n]).expect("unprotect");
            prop_assert_eq!(&buf[..k], &plain[..]);
        }
        prop_assert_eq!(rx.srtcp_highest_index(ssrc), Some(count as u32 - 1));
    }

    /// Packets delivered in any order within the window (across a sequence
    /// number wrap) are each accepted exactly once, with the right plaintext.
    #[test]
    fn any_order_within_window(
        suite in suite(),
        start in 65000u16..=65535,
        order in Just((0..60usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in prop::collection::vec(0usize..60, 0..10),
    ) {
        let (mut tx, mut rx) = pair(suite, 1);
        let packets: Vec<(Vec<u8>, Vec<u8>)> = (0..60u16)
            .map(|i| {
                let plain = build_rtp(start.wrapping_add(i), 7, 0, None, &[i as u8; 20]);
                let mut buf = plain.clone();
                buf.resize(plain.len() + suite.rtp_overhead(), 0);
                let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect");
                buf.truncate(n);
                (plain, buf)
            })
            .collect();
        // The first packet is delivered first so the receiver's ROC starts
        // where the sender's did (ROC 0 at `start`).
        let mut seen = [false; 60];
        let order = std::iter::once(0).chain(order.into_iter().filter(|&i| i != 0));
        for (k, i) in order.enumerate() {
            let mut buf = packets[i].1.clone();
            let r = rx.unprotect_rtp(&mut buf);
            if seen[i] {
                // Already delivered as an earlier duplicate.
                prop_assert_eq!(r, Err(Error::Replayed));
            } else {
                prop_assert_eq!(r, Ok(packets[i].0.len()));
                prop_assert_eq!(&buf[..packets[i].0.len()], &packets[i].0[..]);
                seen[i] = true;
            }
            if let Some(&d) = dups.get(k) {
                let mut buf = packets[d].1.clone();
                let r = rx.unprotect_rtp(&mut buf);
                if seen[d] {
                    prop_assert_eq!(r, Err(Error::Replayed));
                } else {
                    prop_assert!(r.is_ok());
                    seen[d] = true;
                }
            }
        }
        prop_assert!(seen.iter().all(|&s| s));
        prop_assert_eq!(rx.rtp_roc(7), tx.rtp_roc(7));
    }

    /// Garbage never authenticates and never panics.
    #[test]
    fn garbage_is_rejected(
        suite in suite(),
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let (_, mut rx) = pair(suite, 9);
        let mut buf = data.clone();
        prop_assert!(rx.unprotect_rtp(&mut buf).is_err());
        let mut buf = data;
        prop_assert!(rx.unprotect_rtcp(&mut buf).is_err());
        prop_assert_eq!(rx.ssrc_count(), 0);
    }
}
