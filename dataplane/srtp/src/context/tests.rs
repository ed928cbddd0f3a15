use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(char::is_whitespace, "")).expect("hex")
}

const SUITES: [Suite; 3] = Suite::ALL;
const SSRC: u32 = 0xCAFE_BABE;

fn master(suite: Suite) -> (Vec<u8>, Vec<u8>) {
    let key: Vec<u8> = (0..16u8)
        .map(|i| i.wrapping_mul(17).wrapping_add(3))
        .collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8)
        .map(|i| 0xA0 ^ i)
        .collect();
    (key, salt)
}

fn ctx_with(suite: Suite, config: Config) -> SrtpContext {
    let (key, salt) = master(suite);
    SrtpContext::new(suite, &key, &salt, config).expect("context")
}

fn ctx(suite: Suite) -> SrtpContext {
    ctx_with(suite, Config::default())
}

fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// A sender report (no report blocks) plus 8 bytes of SDES-like filler.
fn rtcp(ssrc: u32, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0x00, 0x06];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(std::iter::repeat_n(fill, 20));
    p
}

fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + tx.suite().rtp_overhead(), 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect_rtp");
    buf.truncate(n);
    buf
}

fn unprotect(rx: &mut SrtpContext, srtp: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = srtp.to_vec();
    let n = rx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn protect_rtcp(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + tx.suite().rtcp_overhead(), 0);
    let n = tx
        .protect_rtcp(&mut buf, plain.len())
        .expect("protect_rtcp");
    buf.truncate(n);
    buf
}

fn unprotect_rtcp(rx: &mut SrtpContext, srtcp: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = srtcp.to_vec();
    let n = rx.unprotect_rtcp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

// ---------------------------------------------------------------------------
// RFC 7714 §16 / §17 (session key and salt given directly).

fn rfc7714_ctx() -> SrtpContext {
    let suite = Suite::AeadAes128Gcm;
    let key: [u8; 16] = h("000102030405060708090a0b0c0d0e0f")
        .try_into()
        .expect("16");
    let salt = h("517569642070726f2071756f");
    SrtpContext::with_ciphers(
        suite,
        Config::default(),
        Cipher::new(suite, &key, &salt, &[]),
        Cipher::new(suite, &key, &salt, &[]),
    )
}

const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                           20646976 69736120 696e2070 61727465 73207472 6573";
const RFC7714_SRTP: &str = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca
                            be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1
                            6a9152cf 765ee439 0cce";
const RFC7714_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                            4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";
const RFC7714_SRTCP: &str = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7
                             6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458
                             96cf4d2f c5abf872 45d9eade 800005d4";

#[test]
fn rfc7714_16_srtp_aes_128_gcm() {
    let mut tx = rfc7714_ctx();
    assert_eq!(protect(&mut tx, &h(RFC7714_RTP)), h(RFC7714_SRTP));
    let mut rx = rfc7714_ctx();
    assert_eq!(unprotect(&mut rx, &h(RFC7714_SRTP)), Ok(h(RFC7714_RTP)));
    assert_eq!(rx.rtp_roc(0x5501_a0b2), Some(0));
    assert_eq!(unprotect(&mut rx, &h(RFC7714_SRTP)), Err(Error::Replayed));
}

#[test]
fn rfc7714_17_srtcp_aes_128_gcm() {
    let mut tx = rfc7714_ctx();
    let ssrc = 0x4d61_7273;
    // The vector uses SRTCP index 0x5d4.
    let slot = tx.insert(ssrc).expect("slot");
    tx.streams[slot].srtcp_next = 0x5d4;
    assert_eq!(protect_rtcp(&mut tx, &h(RFC7714_RTCP)), h(RFC7714_SRTCP));
    assert_eq!(tx.srtcp_next_index(ssrc), Some(0x5d5));

    let mut rx = rfc7714_ctx();
    assert_eq!(
        unprotect_rtcp(&mut rx, &h(RFC7714_SRTCP)),
        Ok(h(RFC7714_RTCP))
    );
    assert_eq!(rx.srtcp_highest_index(ssrc), Some(0x5d4));
    assert_eq!(
        unprotect_rtcp(&mut rx, &h(RFC7714_SRTCP)),
        Err(Error::Replayed)
    );
}

#[test]
fn rfc7714_tampering() {
    let srtp = h(RFC7714_SRTP);
    for i in 0..srtp.len() {
        let mut bad = srtp.clone();
        bad[i] ^= 0x04;
        let mut rx = rfc7714_ctx();
        let r = unprotect(&mut rx, &bad);
        // Flipping a header bit may also make the header invalid.
        assert!(
            r == Err(Error::AuthFailed) || r == Err(Error::BadHeader),
            "byte {i}: {r:?}"
        );
        assert_eq!(rx.ssrc_count(), 0);
    }
    let srtcp = h(RFC7714_SRTCP);
    for i in 0..srtcp.len() {
        let mut bad = srtcp.clone();
        bad[i] ^= 0x10;
        let mut rx = rfc7714_ctx();
        assert_eq!(
            unprotect_rtcp(&mut rx, &bad),
            Err(Error::AuthFailed),
            "byte {i}"
        );
        assert_eq!(rx.ssrc_count(), 0);
    }
}

// ---------------------------------------------------------------------------
// Round trips, keys, configuration.

#[test]
fn round_trip_all_suites() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx(suite);
        for (i, len) in [0usize, 1, 15, 16, 17, 160, 1200].into_iter().enumerate() {
            let plain = rtp(1000 + i as u16, SSRC, len);
            let srtp = protect(&mut tx, &plain);
            assert_eq!(srtp.len(), plain.len() + suite.rtp_tag_len());
            assert_eq!(srtp[..12], plain[..12], "header stays in clear");
            if len >= 4 {
                assert_ne!(srtp[12..12 + len], plain[12..], "payload is encrypted");
            }
            assert_eq!(unprotect(&mut rx, &srtp), Ok(plain), "{suite} len {len}");
        }
        for fill in 0..5u8 {
            let plain = rtcp(SSRC, fill);
            let srtcp = protect_rtcp(&mut tx, &plain);
            assert_eq!(srtcp.len(), plain.len() + suite.rtcp_overhead());
            assert_ne!(
                srtcp[8..plain.len()],
                plain[8..],
                "SRTCP encrypted by default"
            );
            assert_eq!(unprotect_rtcp(&mut rx, &srtcp), Ok(plain), "{suite}");
        }
        assert_eq!(rx.srtcp_highest_index(SSRC), Some(4));
        assert_eq!(tx.srtcp_next_index(SSRC), Some(5));
    }
}

#[test]
fn srtcp_e_flag() {
    for suite in SUITES {
        let config = Config {
            encrypt_srtcp: false,
            ..Config::default()
        };
        let mut tx = ctx_with(suite, config);
        let mut rx = ctx(suite);
        let plain = rtcp(SSRC, 0x55);
        let srtcp = protect_rtcp(&mut tx, &plain);
        assert_eq!(srtcp[..plain.len()], plain[..], "E = 0: not encrypted");
        let word_at = if suite.is_aead() {
            srtcp.len() - 4
        } else {
            plain.len()
        };
        assert_eq!(srtcp[word_at..word_at + 4], [0, 0, 0, 0]);
        assert_eq!(unprotect_rtcp(&mut rx, &srtcp), Ok(plain.clone()));

        // Encrypted: E set, index 1.
        let mut tx = ctx(suite);
        protect_rtcp(&mut tx, &plain);
        let srtcp = protect_rtcp(&mut tx, &plain);
        assert_eq!(srtcp[word_at..word_at + 4], [0x80, 0, 0, 1]);
        assert_eq!(unprotect_rtcp(&mut rx, &srtcp), Ok(plain.clone()));

        // Clearing the E flag of an encrypted packet breaks authentication.
        let mut tampered = protect_rtcp(&mut tx, &plain);
        tampered[word_at] &= 0x7F;
        assert_eq!(unprotect_rtcp(&mut rx, &tampered), Err(Error::AuthFailed));
    }
}

#[test]
fn directions_and_keys_differ() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let (mut key, salt) = master(suite);
        key[0] ^= 1;
        let mut other = SrtpContext::new(suite, &key, &salt, Config::default()).expect("ctx");
        let srtp = protect(&mut tx, &rtp(1, SSRC, 50));
        assert_eq!(unprotect(&mut other, &srtp), Err(Error::AuthFailed));
        let (key, mut salt) = master(suite);
        salt[3] ^= 1;
        let mut other = SrtpContext::new(suite, &key, &salt, Config::default()).expect("ctx");
        assert_eq!(unprotect(&mut other, &srtp), Err(Error::AuthFailed));
        // RTP and RTCP keys differ: an SRTP packet is not valid SRTCP.
        let mut rx = ctx(suite);
        assert!(unprotect_rtcp(&mut rx, &srtp).is_err());
    }
}

#[test]
fn bad_keys_and_config() {
    for suite in SUITES {
        let (key, salt) = master(suite);
        let c = Config::default();
        assert_eq!(
            SrtpContext::new(suite, &key[..15], &salt, c).err(),
            Some(Error::BadKeyLength)
        );
        assert_eq!(
            SrtpContext::new(suite, &key, &salt[1..], c).err(),
            Some(Error::BadKeyLength)
        );
        let mut both = key.clone();
        both.extend_from_slice(&salt);
        assert!(SrtpContext::from_master(suite, &both, c).is_ok());
        assert_eq!(
            SrtpContext::from_master(suite, &both[1..], c).err(),
            Some(Error::BadKeyLength)
        );
        for (ssrcs, window) in [(0, 64), (Config::MAX_SSRCS + 1, 64), (1, 63), (1, 0x8001)] {
            let c = Config {
                max_ssrcs: ssrcs,
                replay_window: window,
                ..Config::default()
            };
            assert_eq!(
                SrtpContext::new(suite, &key, &salt, c).err(),
                Some(Error::BadConfig)
            );
        }
    }
    // A GCM salt given to a CM suite and vice versa.
    let key = [0u8; 16];
    assert_eq!(
        SrtpContext::new(Suite::AeadAes128Gcm, &key, &[0; 14], Config::default()).err(),
        Some(Error::BadKeyLength)
    );
    assert_eq!(
        SrtpContext::new(
            Suite::AesCm128HmacSha1_80,
            &key,
            &[0; 12],
            Config::default()
        )
        .err(),
        Some(Error::BadKeyLength)
    );
}

#[test]
fn header_with_csrcs_and_extension_stays_clear() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx(suite);
        // V=2, X=1, CC=2; two CSRCs; one-byte extension of 1 word.
        let mut plain = vec![0x92, 0x60, 0x12, 0x34, 0, 0, 1, 0];
        plain.extend_from_slice(&SSRC.to_be_bytes());
        plain.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]);
        plain.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
        plain.extend_from_slice(b"payload bytes");
        let srtp = protect(&mut tx, &plain);
        assert_eq!(srtp[..28], plain[..28]);
        assert_ne!(srtp[28..plain.len()], plain[28..]);
        assert_eq!(unprotect(&mut rx, &srtp), Ok(plain));
    }
}

// ---------------------------------------------------------------------------
// ROC, replay, tampering, truncation.

#[test]
fn estimate_index_follows_appendix_a() {
    assert_eq!(estimate_index(None, 65535), (0, Ok(65535)));
    // s_l in the upper half: small seq means the next ROC.
    assert_eq!(estimate_index(Some(65530), 3), (1, Ok(65536 + 3)));
    assert_eq!(estimate_index(Some(65530), 40000), (0, Ok(40000)));
    // s_l in the lower half: large seq means the previous ROC.
    assert_eq!(estimate_index(Some(65536 + 5), 65534), (0, Ok(65534)));
    assert_eq!(
        estimate_index(Some(65536 + 5), 30000),
        (1, Ok(65536 + 30000))
    );
    // Before the first ROC: there is no previous ROC.
    assert_eq!(
        estimate_index(Some(5), 65534),
        (u32::MAX, Err(Error::TooOld))
    );
    // After the last ROC the index space is used up.
    let last = (u64::from(u32::MAX) << 16) | 65530;
    assert_eq!(estimate_index(Some(last), 2), (0, Err(Error::KeyExhausted)));
}

#[test]
fn roc_wraps_and_late_packets_from_previous_roc_are_accepted() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx(suite);
        let seqs: Vec<u16> = (0..20u16).map(|i| 65530u16.wrapping_add(i)).collect();
        let srtp: Vec<Vec<u8>> = seqs
            .iter()
            .map(|&s| protect(&mut tx, &rtp(s, SSRC, 40)))
            .collect();
        assert_eq!(tx.rtp_roc(SSRC), Some(1));
        // Deliver all but 65534 and 65535 in order, then those two late.
        for (i, p) in srtp.iter().enumerate() {
            if seqs[i] == 65534 || seqs[i] == 65535 {
                continue;
            }
            assert_eq!(
                unprotect(&mut rx, p),
                Ok(rtp(seqs[i], SSRC, 40)),
                "seq {}",
                seqs[i]
            );
        }
        assert_eq!(rx.rtp_roc(SSRC), Some(1));
        assert_eq!(unprotect(&mut rx, &srtp[4]), Ok(rtp(65534, SSRC, 40)));
        assert_eq!(unprotect(&mut rx, &srtp[5]), Ok(rtp(65535, SSRC, 40)));
        assert_eq!(rx.rtp_roc(SSRC), Some(1), "late packets keep the ROC");
        assert_eq!(unprotect(&mut rx, &srtp[5]), Err(Error::Replayed));
        assert_eq!(unprotect(&mut rx, &srtp[6]), Err(Error::Replayed));
        // Continue for a second wrap.
        let mut s = 14u16;
        for _ in 0..65536 + 100 {
            let p = protect(&mut tx, &rtp(s, SSRC, 0));
            assert!(unprotect(&mut rx, &p).is_ok());
            s = s.wrapping_add(1);
        }
        assert_eq!(tx.rtp_roc(SSRC), Some(2));
        assert_eq!(rx.rtp_roc(SSRC), Some(2));
    }
}

#[test]
fn replay_and_too_old() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx(suite);
        let first = protect(&mut tx, &rtp(100, SSRC, 20));
        let second = protect(&mut tx, &rtp(101, SSRC, 20));
        assert!(unprotect(&mut rx, &second).is_ok());
        assert_eq!(unprotect(&mut rx, &second), Err(Error::Replayed));
        // Out of order within the window: fine, once.
        assert!(unprotect(&mut rx, &first).is_ok());
        assert_eq!(unprotect(&mut rx, &first), Err(Error::Replayed));

        let held = protect(&mut tx, &rtp(102, SSRC, 20));
        for s in 103..103 + 64 {
            let p = protect(&mut tx, &rtp(s, SSRC, 20));
            assert!(unprotect(&mut rx, &p).is_ok());
        }
        // 102 is 64 behind the highest (166): outside a 64-packet window.
        assert_eq!(unprotect(&mut rx, &held), Err(Error::TooOld));

        // Replay verdicts come only after authentication.
        let mut forged = second.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(unprotect(&mut rx, &forged), Err(Error::AuthFailed));
    }
}

#[test]
fn larger_replay_window() {
    let config = Config {
        replay_window: 1000,
        ..Config::default()
    };
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx_with(suite, config);
        let held: Vec<Vec<u8>> = (0..10)
            .map(|s| protect(&mut tx, &rtp(s, SSRC, 8)))
            .collect();
        for s in 10..1000 {
            assert!(unprotect(&mut rx, &protect(&mut tx, &rtp(s, SSRC, 8))).is_ok());
        }
        // Highest 999: index 0 is 999 behind, inside the 1000 window.
        for (s, p) in held.iter().enumerate() {
            assert_eq!(unprotect(&mut rx, p), Ok(rtp(s as u16, SSRC, 8)));
        }
        assert_eq!(unprotect(&mut rx, &held[0]), Err(Error::Replayed));
        assert!(unprotect(&mut rx, &protect(&mut tx, &rtp(1000, SSRC, 8))).is_ok());
        assert_eq!(unprotect(&mut rx, &held[0]), Err(Error::TooOld));
        assert_eq!(unprotect(&mut rx, &held[1]), Err(Error::Replayed));
    }
}

#[test]
fn srtcp_replay_window() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx(suite);
        let p: Vec<Vec<u8>> = (0..70)
            .map(|i| protect_rtcp(&mut tx, &rtcp(SSRC, i)))
            .collect();
        assert!(unprotect_rtcp(&mut rx, &p[1]).is_ok());
        assert_eq!(unprotect_rtcp(&mut rx, &p[1]), Err(Error::Replayed));
        assert!(unprotect_rtcp(&mut rx, &p[0]).is_ok());
        assert!(unprotect_rtcp(&mut rx, &p[66]).is_ok());
        assert_eq!(unprotect_rtcp(&mut rx, &p[2]), Err(Error::TooOld));
        assert!(unprotect_rtcp(&mut rx, &p[3]).is_ok());
        // The SRTCP window is independent of SRTP's.
        assert!(unprotect(&mut rx, &protect(&mut tx, &rtp(1, SSRC, 10))).is_ok());
        assert!(unprotect(&mut rx, &protect(&mut tx, &rtp(2, SSRC, 10))).is_ok());
        assert!(unprotect_rtcp(&mut rx, &p[4]).is_ok());
    }
}

#[test]
fn srtcp_index_exhausted() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let slot = tx.insert(SSRC).expect("slot");
        tx.streams[slot].srtcp_next = MAX_SRTCP_INDEX;
        let mut rx = ctx(suite);
        let last = protect_rtcp(&mut tx, &rtcp(SSRC, 1));
        assert_eq!(unprotect_rtcp(&mut rx, &last), Ok(rtcp(SSRC, 1)));
        let mut buf = rtcp(SSRC, 1);
        let n = buf.len();
        buf.resize(n + suite.rtcp_overhead(), 0);
        assert_eq!(tx.protect_rtcp(&mut buf, n), Err(Error::KeyExhausted));
    }
}

#[test]
fn tampering_is_auth_failed_and_changes_nothing() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx(suite);
        assert!(unprotect(&mut rx, &protect(&mut tx, &rtp(10, SSRC, 30))).is_ok());
        let good = protect(&mut tx, &rtp(11, SSRC, 30));
        for i in 0..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                let r = unprotect(&mut rx, &bad);
                let header_bits = i == 0; // V, X and CC live in byte 0
                assert!(
                    r == Err(Error::AuthFailed) || (header_bits && r == Err(Error::BadHeader)),
                    "{suite} byte {i} bit {bit:#x}: {r:?}"
                );
            }
        }
        // State untouched: the genuine packet is still accepted, ROC 0.
        assert_eq!(unprotect(&mut rx, &good), Ok(rtp(11, SSRC, 30)));
        assert_eq!(rx.rtp_roc(SSRC), Some(0));
        assert_eq!(rx.ssrc_count(), 1);

        let good = protect_rtcp(&mut tx, &rtcp(SSRC, 9));
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x02;
            assert_eq!(
                unprotect_rtcp(&mut rx, &bad),
                Err(Error::AuthFailed),
                "{suite} {i}"
            );
        }
        assert_eq!(unprotect_rtcp(&mut rx, &good), Ok(rtcp(SSRC, 9)));
    }
}

#[test]
fn forged_seq_jump_does_not_move_roc() {
    // A forged packet whose seq would bump the ROC must not change state.
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx(suite);
        assert!(unprotect(&mut rx, &protect(&mut tx, &rtp(60000, SSRC, 10))).is_ok());
        let mut forged = protect(&mut tx, &rtp(60001, SSRC, 10));
        forged[2..4].copy_from_slice(&5u16.to_be_bytes());
        assert_eq!(unprotect(&mut rx, &forged), Err(Error::AuthFailed));
        assert_eq!(rx.rtp_roc(SSRC), Some(0));
        assert_eq!(
            unprotect(&mut rx, &protect(&mut tx, &rtp(60001, SSRC, 10))),
            Ok(rtp(60001, SSRC, 10))
        );
    }
}

#[test]
fn truncated_inputs_are_rejected() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let srtp = protect(&mut tx, &rtp(7, SSRC, 33));
        let srtcp = protect_rtcp(&mut tx, &rtcp(SSRC, 3));
        let mut rx = ctx(suite);
        for n in 0..srtp.len() {
            let r = unprotect(&mut rx, &srtp[..n]);
            assert!(
                matches!(
                    r,
                    Err(Error::TooShort | Error::AuthFailed | Error::BadHeader)
                ),
                "{suite} srtp len {n}: {r:?}"
            );
        }
        for n in 0..srtcp.len() {
            let r = unprotect_rtcp(&mut rx, &srtcp[..n]);
            assert!(
                matches!(r, Err(Error::TooShort | Error::AuthFailed)),
                "{suite} srtcp len {n}: {r:?}"
            );
        }
        assert_eq!(rx.ssrc_count(), 0);
        let min = 12 + suite.rtp_tag_len();
        assert_eq!(unprotect(&mut rx, &srtp[..min - 1]), Err(Error::TooShort));
        // Still intact afterwards.
        assert_eq!(unprotect(&mut rx, &srtp), Ok(rtp(7, SSRC, 33)));
        assert_eq!(unprotect_rtcp(&mut rx, &srtcp), Ok(rtcp(SSRC, 3)));
    }
}

#[test]
fn bad_headers_and_buffers() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        let plain = rtp(1, SSRC, 10);
        // No room for the tag.
        let mut buf = plain.clone();
        assert_eq!(
            tx.protect_rtp(&mut buf, plain.len()),
            Err(Error::BufferTooSmall)
        );
        // len beyond the buffer.
        assert_eq!(
            tx.protect_rtp(&mut buf, plain.len() + 1),
            Err(Error::BufferTooSmall)
        );
        // Version 1.
        let mut buf = plain.clone();
        buf[0] = 0x40;
        buf.resize(plain.len() + 16, 0);
        assert_eq!(tx.protect_rtp(&mut buf, plain.len()), Err(Error::BadHeader));
        // CSRC count past the end.
        let mut buf = plain.clone();
        buf[0] = 0x8F;
        buf.resize(plain.len() + 16, 0);
        assert_eq!(tx.protect_rtp(&mut buf, plain.len()), Err(Error::BadHeader));
        assert_eq!(tx.protect_rtp(&mut buf, 11), Err(Error::TooShort));

        let plain = rtcp(SSRC, 0);
        let mut buf = plain.clone();
        assert_eq!(
            tx.protect_rtcp(&mut buf, plain.len()),
            Err(Error::BufferTooSmall)
        );
        buf.resize(plain.len() + 20, 0);
        assert_eq!(tx.protect_rtcp(&mut buf, 7), Err(Error::TooShort));
        buf[0] = 0x00;
        assert_eq!(
            tx.protect_rtcp(&mut buf, plain.len()),
            Err(Error::BadHeader)
        );

        let mut rx = ctx(suite);
        let mut srtcp = protect_rtcp(&mut tx, &plain);
        srtcp[0] = 0x40;
        assert_eq!(unprotect_rtcp(&mut rx, &srtcp), Err(Error::BadHeader));
    }
}

#[test]
fn ssrc_table_is_bounded() {
    let config = Config {
        max_ssrcs: 2,
        ..Config::default()
    };
    for suite in SUITES {
        let mut tx = ctx(suite);
        let mut rx = ctx_with(suite, config);
        let a = protect(&mut tx, &rtp(1, 1, 10));
        let b = protect(&mut tx, &rtp(1, 2, 10));
        let c = protect(&mut tx, &rtp(1, 3, 10));
        // Forged packets from new SSRCs do not take slots.
        let mut forged = c.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0xFF;
        assert_eq!(unprotect(&mut rx, &forged), Err(Error::AuthFailed));
        assert_eq!(rx.ssrc_count(), 0);
        assert!(unprotect(&mut rx, &a).is_ok());
        assert!(unprotect(&mut rx, &b).is_ok());
        assert_eq!(rx.ssrc_count(), 2);
        assert_eq!(unprotect(&mut rx, &c), Err(Error::TooManySsrcs));
        let c_rtcp = protect_rtcp(&mut tx, &rtcp(3, 0));
        assert_eq!(unprotect_rtcp(&mut rx, &c_rtcp), Err(Error::TooManySsrcs));
        // Known SSRCs still work; removing one frees a slot.
        assert!(unprotect(&mut rx, &protect(&mut tx, &rtp(2, 1, 10))).is_ok());
        assert!(rx.remove_ssrc(1));
        assert!(!rx.remove_ssrc(1));
        assert_eq!(rx.rtp_roc(1), None);
        assert_eq!(rx.rtp_roc(2), Some(0));
        assert_eq!(unprotect(&mut rx, &c), Ok(rtp(1, 3, 10)));
        assert_eq!(unprotect_rtcp(&mut rx, &c_rtcp), Ok(rtcp(3, 0)));
        assert_eq!(rx.ssrc_count(), 2);
        // The sending side is bounded too.
        let mut tx2 = ctx_with(suite, config);
        protect(&mut tx2, &rtp(1, 1, 0));
        protect(&mut tx2, &rtp(1, 2, 0));
        let mut buf = rtp(1, 3, 0);
        buf.resize(12 + 16, 0);
        assert_eq!(tx2.protect_rtp(&mut buf, 12), Err(Error::TooManySsrcs));
    }
}

#[test]
fn sender_refuses_packet_before_first_roc() {
    for suite in SUITES {
        let mut tx = ctx(suite);
        protect(&mut tx, &rtp(5, SSRC, 0));
        let mut buf = rtp(65000, SSRC, 0);
        buf.resize(12 + 16, 0);
        assert_eq!(tx.protect_rtp(&mut buf, 12), Err(Error::TooOld));
    }
}
