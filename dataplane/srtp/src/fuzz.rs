//! Fuzz entry points (feature `fuzz`), called by the thin cargo-fuzz crate in
//! `dataplane/fuzz`. None of them may panic on any input; the assertions
//! inside check invariants that must hold for every input.

use crate::{Config, Error, SrtpContext, Suite};

fn context(suite: Suite, config: Config) -> SrtpContext {
    let master: Vec<u8> = (0..suite.master_len() as u8)
        .map(|i| i.wrapping_mul(13) ^ 0x3C)
        .collect();
    SrtpContext::from_master(suite, &master, config).expect("fixed keys have the right length")
}

/// Splits `data` into packets, each prefixed by a one-byte length.
fn packets(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (&len, tail) = rest.split_first()?;
        let n = usize::from(len).min(tail.len());
        let (p, t) = tail.split_at(n);
        rest = t;
        Some(p)
    })
}

/// Runs `unprotect_rtp` on arbitrary input for every suite: first the whole
/// input as one packet, then the input split into length-prefixed packets
/// through one context. Nothing may authenticate or panic.
pub fn srtp_unprotect(data: &[u8]) {
    for suite in Suite::ALL {
        let mut ctx = context(suite, Config::default());
        let mut buf = data.to_vec();
        if let Ok(n) = ctx.unprotect_rtp(&mut buf) {
            assert!(n + suite.rtp_tag_len() <= data.len());
        }
        for p in packets(data) {
            let mut buf = p.to_vec();
            if let Ok(n) = ctx.unprotect_rtp(&mut buf) {
                assert!(n + suite.rtp_tag_len() <= p.len());
            }
        }
    }
}

/// Runs `unprotect_rtcp` on arbitrary input for every suite, as
/// [`srtp_unprotect`] does for SRTP.
pub fn srtcp_unprotect(data: &[u8]) {
    for suite in Suite::ALL {
        let mut ctx = context(suite, Config::default());
        let mut buf = data.to_vec();
        if let Ok(n) = ctx.unprotect_rtcp(&mut buf) {
            assert!(n + suite.rtcp_overhead() <= data.len());
        }
        for p in packets(data) {
            let mut buf = p.to_vec();
            if let Ok(n) = ctx.unprotect_rtcp(&mut buf) {
                assert!(n + suite.rtcp_overhead() <= p.len());
            }
        }
    }
}

fn build_rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x12, 0x34]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| i as u8 ^ seq as u8));
    p
}

fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Option<Vec<u8>> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + tx.suite().rtp_overhead(), 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn unprotect(rx: &mut SrtpContext, srtp: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = srtp.to_vec();
    let n = rx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Interprets `data` as a script of packets a sender protects and a receiver
/// unprotects: delivered at once, duplicated, tampered with, held back and
/// delivered late, or sent as SRTCP. Asserts that protect → unprotect gives
/// back the original, that duplicates are refused, that tampered packets
/// never authenticate, and that while nothing was held back the receiver's
/// ROC never loses sync with the sender's.
///
/// Script: byte 0 selects the suite (and bit 7 turns SRTCP encryption off);
/// then 4-byte ops `[op, seq_hi, seq_lo, len]`.
pub fn srtp_roundtrip(data: &[u8]) {
    let Some((&sel, mut ops)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(sel) % Suite::ALL.len()];
    let config = Config {
        max_ssrcs: 2,
        encrypt_srtcp: sel & 0x80 == 0,
        ..Config::default()
    };
    let mut tx = context(suite, config);
    let mut rx = context(suite, config);
    let mut held: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut diverged = false;

    while let [op, hi, lo, len, rest @ ..] = ops {
        ops = rest;
        let seq = u16::from_be_bytes([*hi, *lo]);
        // Three SSRCs for two slots: the third is refused on both sides.
        let ssrc = 0x1000 + u32::from(op & 3) % 3;
        let plain = build_rtp(seq, ssrc, usize::from(*len) * 3);
        match (op >> 2) & 7 {
            0..=2 => {
                let Some(p) = protect(&mut tx, &plain) else {
                    continue;
                };
                match unprotect(&mut rx, &p) {
                    Ok(out) => assert_eq!(out, plain),
                    Err(Error::Replayed | Error::TooOld) => {}
                    Err(e) => assert!(diverged, "in-order packet refused: {e:?}"),
                }
            }
            3 => {
                let Some(p) = protect(&mut tx, &plain) else {
                    continue;
                };
                if let Ok(out) = unprotect(&mut rx, &p) {
                    assert_eq!(out, plain);
                    assert_eq!(unprotect(&mut rx, &p), Err(Error::Replayed));
                }
            }
            4 => {
                let Some(mut p) = protect(&mut tx, &plain) else {
                    continue;
                };
                let at = usize::from(*len) % p.len();
                p[at] ^= 1 << (op >> 5);
                assert!(unprotect(&mut rx, &p).is_err(), "tampered packet accepted");
                // The genuine one is unaffected by the forgery.
                let mut clean = p;
                clean[at] ^= 1 << (op >> 5);
                match unprotect(&mut rx, &clean) {
                    Ok(out) => assert_eq!(out, plain),
                    Err(Error::Replayed | Error::TooOld) => {}
                    Err(e) => assert!(diverged, "genuine packet refused: {e:?}"),
                }
            }
            5 => {
                let Some(p) = protect(&mut tx, &plain) else {
                    continue;
                };
                diverged = true;
                if let Some((old_plain, old)) = held.replace((plain, p)) {
                    if let Ok(out) = unprotect(&mut rx, &old) {
                        assert_eq!(out, old_plain);
                    }
                }
            }
            _ => {
                let mut rtcp = vec![0x80, 201, 0, 1];
                rtcp.extend_from_slice(&ssrc.to_be_bytes());
                rtcp.extend(std::iter::repeat_n(*lo, usize::from(*len)));
                let n = rtcp.len();
                let mut buf = rtcp.clone();
                buf.resize(n + suite.rtcp_overhead(), 0);
                let Ok(m) = tx.protect_rtcp(&mut buf, n) else {
                    continue;
                };
                let mut copy = buf[..m].to_vec();
                assert_eq!(rx.unprotect_rtcp(&mut buf[..m]), Ok(n));
                assert_eq!(buf[..n], rtcp[..]);
                assert_eq!(rx.unprotect_rtcp(&mut copy), Err(Error::Replayed));
            }
        }
    }
    if let Some((old_plain, old)) = held {
        if let Ok(out) = unprotect(&mut rx, &old) {
            assert_eq!(out, old_plain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few deterministic pseudo-random scripts through each entry point.
    #[test]
    fn entry_points_survive_pseudo_random_input() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..300 {
            let len = round % 200;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            srtp_unprotect(&data);
            srtcp_unprotect(&data);
            srtp_roundtrip(&data);
        }
    }

    #[test]
    fn roundtrip_script_across_wrap() {
        // Suite 0, in-order packets from seq 65530 across the wrap, a
        // duplicate, a tampered one and an SRTCP packet.
        let mut script = vec![0u8];
        for i in 0..20u16 {
            let seq = 65530u16.wrapping_add(i);
            let op = match i {
                5 => 3 << 2,
                9 => 4 << 2,
                12 => 6 << 2,
                _ => 0,
            };
            script.extend_from_slice(&[op, (seq >> 8) as u8, seq as u8, 10]);
        }
        for sel in 0..3u8 {
            script[0] = sel;
            srtp_roundtrip(&script);
        }
    }
}
