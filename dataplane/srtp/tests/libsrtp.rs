//! Cross-check against libsrtp 2 (vendored and built by the `srtp` crate),
//! packet by packet and in both directions: we protect and libsrtp
//! unprotects, libsrtp protects and we unprotect, and the protected bytes of
//! both must be identical.

use srtp::{CryptoPolicy, Session, StreamPolicy};
use strait_srtp::{Config, Error, SrtpContext, Suite};

const SSRC: u32 = 0x1234_5678;
const WINDOW: u32 = 64;

fn master(suite: Suite) -> Vec<u8> {
    (0..suite.master_len() as u8)
        .map(|i| i.wrapping_mul(29).wrapping_add(0x5A))
        .collect()
}

fn ours(suite: Suite, encrypt_srtcp: bool) -> SrtpContext {
    let mut config = Config::default();
    config.replay_window = WINDOW;
    config.encrypt_srtcp = encrypt_srtcp;
    SrtpContext::from_master(suite, &master(suite), config).expect("our context")
}

/// The libsrtp policy of a suite; `encrypt` = false keeps the cipher for key
/// derivation but only authenticates (SRTCP E = 0).
fn policy(suite: Suite, rtcp: bool, encrypt: bool) -> CryptoPolicy {
    let p = match (suite, rtcp) {
        (Suite::AesCm128HmacSha1_80, _) | (Suite::AesCm128HmacSha1_32, true) => {
            CryptoPolicy::aes_cm_128_hmac_sha1_80()
        }
        (Suite::AesCm128HmacSha1_32, false) => CryptoPolicy::aes_cm_128_hmac_sha1_32(),
        (Suite::AeadAes128Gcm, _) => CryptoPolicy::aes_gcm_128_16_auth(),
        _ => unreachable!("suite without a libsrtp mapping"),
    };
    if encrypt {
        return p;
    }
    let mut raw = p.into_raw();
    raw.sec_serv = srtp::sys::srtp_sec_serv_t_sec_serv_auth;
    // SAFETY: `raw` was initialised by libsrtp's own policy setter; only the
    // security services are narrowed to authentication, which libsrtp
    // supports for every cipher.
    unsafe { CryptoPolicy::from_raw(raw) }
}

fn libsrtp(suite: Suite, inbound: bool, encrypt_srtcp: bool) -> Session {
    let key = master(suite);
    let p = StreamPolicy {
        rtp: policy(suite, false, true),
        rtcp: policy(suite, true, encrypt_srtcp),
        key: &key,
        window_size: u64::from(WINDOW),
        allow_repeat_tx: false,
        encrypt_extension_headers: &[],
    };
    if inbound {
        Session::with_inbound_template(p).expect("libsrtp inbound")
    } else {
        Session::with_outbound_template(p).expect("libsrtp outbound")
    }
}

fn rtp(seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x6F];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(960)).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(7) ^ (seq as u8)));
    p
}

/// SR with one report block, followed by SDES CNAME: a compound packet.
fn rtcp(fill: u8) -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend(std::iter::repeat_n(fill, 44));
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[1, 4, b'h', b'o', b's', b't', 0, 0]);
    p
}

fn our_protect(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.suite().rtp_overhead(), 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).expect("our protect");
    buf.truncate(n);
    buf
}

fn our_unprotect(ctx: &mut SrtpContext, srtp: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = srtp.to_vec();
    let n = ctx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn our_protect_rtcp(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.suite().rtcp_overhead(), 0);
    let n = ctx
        .protect_rtcp(&mut buf, plain.len())
        .expect("our protect_rtcp");
    buf.truncate(n);
    buf
}

fn our_unprotect_rtcp(ctx: &mut SrtpContext, srtcp: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = srtcp.to_vec();
    let n = ctx.unprotect_rtcp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn lib_protect(s: &mut Session, plain: &[u8]) -> Vec<u8> {
    let mut v = plain.to_vec();
    s.protect(&mut v).expect("libsrtp protect");
    v
}

fn lib_unprotect(s: &mut Session, srtp: &[u8]) -> Result<Vec<u8>, srtp::Error> {
    let mut v = srtp.to_vec();
    s.unprotect(&mut v)?;
    Ok(v)
}

fn lib_protect_rtcp(s: &mut Session, plain: &[u8]) -> Vec<u8> {
    let mut v = plain.to_vec();
    s.protect_rtcp(&mut v).expect("libsrtp protect_rtcp");
    v
}

fn lib_unprotect_rtcp(s: &mut Session, srtcp: &[u8]) -> Result<Vec<u8>, srtp::Error> {
    let mut v = srtcp.to_vec();
    s.unprotect_rtcp(&mut v)?;
    Ok(v)
}

#[test]
fn srtp_both_directions_across_roc_wrap() {
    for suite in Suite::ALL {
        let (mut our_tx, mut our_rx) = (ours(suite, true), ours(suite, true));
        let (mut lib_tx, mut lib_rx) = (libsrtp(suite, false, true), libsrtp(suite, true, true));
        let mut last = None;
        for i in 0..20u16 {
            let seq = 65530u16.wrapping_add(i);
            let plain = rtp(seq, usize::from(i) * 37 % 300);
            let a = our_protect(&mut our_tx, &plain);
            let b = lib_protect(&mut lib_tx, &plain);
            assert_eq!(a, b, "{suite} seq {seq}: protected bytes differ");
            assert_eq!(
                lib_unprotect(&mut lib_rx, &a).as_deref(),
                Ok(&plain[..]),
                "{suite} {seq}"
            );
            assert_eq!(our_unprotect(&mut our_rx, &b), Ok(plain), "{suite} {seq}");
            last = Some((a, b));
        }
        assert_eq!(our_tx.rtp_roc(SSRC), Some(1));
        assert_eq!(our_rx.rtp_roc(SSRC), Some(1));
        assert_eq!(lib_tx.get_stream_roc(SSRC), Ok(1));
        assert_eq!(lib_rx.get_stream_roc(SSRC), Ok(1));

        // Replays are refused by both.
        let (a, b) = last.expect("20 packets");
        assert_eq!(
            lib_unprotect(&mut lib_rx, &a),
            Err(srtp::Error::REPLAY_FAIL)
        );
        assert_eq!(our_unprotect(&mut our_rx, &b), Err(Error::Replayed));
    }
}

#[test]
fn srtp_late_packets_across_wrap_from_libsrtp() {
    for suite in Suite::ALL {
        let mut lib_tx = libsrtp(suite, false, true);
        let mut our_rx = ours(suite, true);
        let packets: Vec<(u16, Vec<u8>)> = (0..20u16)
            .map(|i| {
                let seq = 65530u16.wrapping_add(i);
                (seq, lib_protect(&mut lib_tx, &rtp(seq, 50)))
            })
            .collect();
        let late = |s: u16| s == 65533 || s == 65535;
        for (seq, p) in packets.iter().filter(|(s, _)| !late(*s)) {
            assert_eq!(our_unprotect(&mut our_rx, p), Ok(rtp(*seq, 50)));
        }
        for (seq, p) in packets.iter().filter(|(s, _)| late(*s)) {
            assert_eq!(
                our_unprotect(&mut our_rx, p),
                Ok(rtp(*seq, 50)),
                "late {seq}"
            );
            assert_eq!(our_unprotect(&mut our_rx, p), Err(Error::Replayed));
        }
        assert_eq!(our_rx.rtp_roc(SSRC), Some(1));

        // And the reverse: libsrtp receives our late packets.
        let mut our_tx = ours(suite, true);
        let mut lib_rx = libsrtp(suite, true, true);
        let packets: Vec<(u16, Vec<u8>)> = (0..20u16)
            .map(|i| {
                let seq = 65530u16.wrapping_add(i);
                (seq, our_protect(&mut our_tx, &rtp(seq, 50)))
            })
            .collect();
        for (seq, p) in packets.iter().filter(|(s, _)| !late(*s)) {
            assert_eq!(lib_unprotect(&mut lib_rx, p), Ok(rtp(*seq, 50)));
        }
        for (seq, p) in packets.iter().filter(|(s, _)| late(*s)) {
            assert_eq!(
                lib_unprotect(&mut lib_rx, p),
                Ok(rtp(*seq, 50)),
                "late {seq}"
            );
        }
    }
}

#[test]
fn srtp_too_old_both_ways() {
    for suite in Suite::ALL {
        let (mut our_tx, mut our_rx) = (ours(suite, true), ours(suite, true));
        let (mut lib_tx, mut lib_rx) = (libsrtp(suite, false, true), libsrtp(suite, true, true));
        let held_a = our_protect(&mut our_tx, &rtp(1000, 20));
        let held_b = lib_protect(&mut lib_tx, &rtp(1000, 20));
        for seq in 1001..1001 + WINDOW as u16 {
            let a = our_protect(&mut our_tx, &rtp(seq, 20));
            let b = lib_protect(&mut lib_tx, &rtp(seq, 20));
            assert!(lib_unprotect(&mut lib_rx, &a).is_ok());
            assert!(our_unprotect(&mut our_rx, &b).is_ok());
        }
        assert_eq!(
            lib_unprotect(&mut lib_rx, &held_a),
            Err(srtp::Error::REPLAY_OLD)
        );
        assert_eq!(our_unprotect(&mut our_rx, &held_b), Err(Error::TooOld));
    }
}

#[test]
fn srtp_tampering_rejected_both_ways() {
    for suite in Suite::ALL {
        let mut our_tx = ours(suite, true);
        let mut lib_tx = libsrtp(suite, false, true);
        let plain = rtp(42, 64);
        let a = our_protect(&mut our_tx, &plain);
        let b = lib_protect(&mut lib_tx, &plain);
        // Skip byte 0 (V, X, CC): changing it makes the header invalid.
        for i in 1..a.len() {
            let mut bad_a = a.clone();
            bad_a[i] ^= 0x20;
            let mut lib_rx = libsrtp(suite, true, true);
            assert_eq!(
                lib_unprotect(&mut lib_rx, &bad_a),
                Err(srtp::Error::AUTH_FAIL),
                "{suite} byte {i}"
            );
            let mut bad_b = b.clone();
            bad_b[i] ^= 0x20;
            let mut our_rx = ours(suite, true);
            assert_eq!(
                our_unprotect(&mut our_rx, &bad_b),
                Err(Error::AuthFailed),
                "{i}"
            );
            assert_eq!(our_unprotect(&mut our_rx, &b), Ok(plain.clone()));
        }
    }
}

#[test]
fn srtp_header_extension_and_csrcs() {
    for suite in Suite::ALL {
        let mut our_tx = ours(suite, true);
        let mut lib_tx = libsrtp(suite, false, true);
        let mut lib_rx = libsrtp(suite, true, true);
        let mut our_rx = ours(suite, true);
        for seq in 0..5u16 {
            // V=2, X=1, CC=1, two-byte-header extension of 2 words.
            let mut plain = vec![0x91, 0x6F];
            plain.extend_from_slice(&seq.to_be_bytes());
            plain.extend_from_slice(&[0, 0, 0, 9]);
            plain.extend_from_slice(&SSRC.to_be_bytes());
            plain.extend_from_slice(&[9, 8, 7, 6]);
            plain.extend_from_slice(&[0x10, 0x00, 0, 2, 1, 2, 0xAA, 0xBB, 3, 1, 0xCC, 0]);
            plain.extend_from_slice(&[0x55; 33]);
            let a = our_protect(&mut our_tx, &plain);
            assert_eq!(a, lib_protect(&mut lib_tx, &plain), "{suite}");
            assert_eq!(lib_unprotect(&mut lib_rx, &a), Ok(plain.clone()));
            assert_eq!(our_unprotect(&mut our_rx, &a), Ok(plain));
        }
    }
}

fn srtcp_both_directions(encrypt: bool) {
    for suite in Suite::ALL {
        let (mut our_tx, mut our_rx) = (ours(suite, encrypt), ours(suite, encrypt));
        let (mut lib_tx, mut lib_rx) = (
            libsrtp(suite, false, encrypt),
            libsrtp(suite, true, encrypt),
        );
        // libsrtp's first SRTCP index is 1, ours is 0 (RFC 3711 §3.4): send
        // one packet of ours to line the indices up for byte comparison.
        let first = our_protect_rtcp(&mut our_tx, &rtcp(0));
        assert_eq!(lib_unprotect_rtcp(&mut lib_rx, &first), Ok(rtcp(0)));
        let mut last = None;
        for i in 1..20u8 {
            let plain = rtcp(i);
            let a = our_protect_rtcp(&mut our_tx, &plain);
            let b = lib_protect_rtcp(&mut lib_tx, &plain);
            assert_eq!(a, b, "{suite} encrypt {encrypt} packet {i}");
            if !encrypt {
                assert_eq!(a[..plain.len()], plain[..]);
            }
            assert_eq!(
                lib_unprotect_rtcp(&mut lib_rx, &a),
                Ok(plain.clone()),
                "{suite} {i}"
            );
            assert_eq!(
                our_unprotect_rtcp(&mut our_rx, &b),
                Ok(plain),
                "{suite} {i}"
            );
            last = Some((a, b));
        }
        assert_eq!(our_rx.srtcp_highest_index(SSRC), Some(19));
        let (a, b) = last.expect("packets");
        assert_eq!(
            lib_unprotect_rtcp(&mut lib_rx, &a),
            Err(srtp::Error::REPLAY_FAIL)
        );
        assert_eq!(our_unprotect_rtcp(&mut our_rx, &b), Err(Error::Replayed));
        for i in 0..a.len() {
            let mut bad_a = a.clone();
            bad_a[i] ^= 0x01;
            let mut bad_b = b.clone();
            bad_b[i] ^= 0x01;
            let mut lib_rx = libsrtp(suite, true, encrypt);
            let mut our_rx = ours(suite, encrypt);
            assert!(
                lib_unprotect_rtcp(&mut lib_rx, &bad_a).is_err(),
                "{suite} byte {i}"
            );
            assert_eq!(
                our_unprotect_rtcp(&mut our_rx, &bad_b),
                Err(Error::AuthFailed)
            );
        }
    }
}

#[test]
fn srtcp_encrypted_both_directions() {
    srtcp_both_directions(true);
}

#[test]
fn srtcp_unencrypted_both_directions() {
    srtcp_both_directions(false);
}
