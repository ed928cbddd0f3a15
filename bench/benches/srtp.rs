//! SRTP/SRTCP protect and unprotect per suite, ours (`strait-srtp`) next to
//! libsrtp 2 (through the `srtp` crate).
//!
//! What is timed: only the protect or unprotect call. Every iteration needs
//! a fresh packet (a new sequence number / SRTCP index, or the replay window
//! would refuse it), so each input is prepared outside the timed region with
//! `iter_batched_ref`: for protect, a plaintext copy with the next sequence
//! number; for unprotect, a packet just protected by a separate sender
//! context. Batches of 256 inputs keep them in cache (1200-byte packets:
//! ~300 KiB).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use srtp::{CryptoPolicy, Session, StreamPolicy};
use strait_srtp::{Config, SrtpContext, Suite};

const SSRC: u32 = 0x1234_5678;
const BATCH: BatchSize = BatchSize::NumIterations(256);

fn master(suite: Suite) -> Vec<u8> {
    (0..suite.master_len() as u8).map(|i| i ^ 0x5C).collect()
}

fn ours(suite: Suite) -> SrtpContext {
    SrtpContext::from_master(suite, &master(suite), Config::default()).expect("context")
}

fn libsrtp(suite: Suite, inbound: bool) -> Session {
    let (rtp, rtcp) = match suite {
        Suite::AesCm128HmacSha1_80 => (
            CryptoPolicy::aes_cm_128_hmac_sha1_80(),
            CryptoPolicy::aes_cm_128_hmac_sha1_80(),
        ),
        Suite::AesCm128HmacSha1_32 => (
            CryptoPolicy::aes_cm_128_hmac_sha1_32(),
            CryptoPolicy::aes_cm_128_hmac_sha1_80(),
        ),
        _ => (
            CryptoPolicy::aes_gcm_128_16_auth(),
            CryptoPolicy::aes_gcm_128_16_auth(),
        ),
    };
    let key = master(suite);
    let policy = StreamPolicy {
        rtp,
        rtcp,
        key: &key,
        window_size: 64,
        allow_repeat_tx: false,
        encrypt_extension_headers: &[],
    };
    if inbound {
        Session::with_inbound_template(policy).expect("libsrtp inbound")
    } else {
        Session::with_outbound_template(policy).expect("libsrtp outbound")
    }
}

/// An RTP packet of `len` bytes (12-byte header) with room for any tag.
fn rtp(seq: u16, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len + 16);
    p.extend_from_slice(&[0x80, 0x00]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.resize(len, 0xD5);
    p
}

/// An 80-byte compound RTCP packet (SR with one report block + SDES CNAME)
/// with room for the SRTCP trailer.
fn rtcp() -> Vec<u8> {
    let mut p = Vec::with_capacity(80 + 20);
    p.extend_from_slice(&[0x81, 200, 0, 12]);
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.resize(52, 0x11);
    p.extend_from_slice(&[0x81, 202, 0, 6]);
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[1, 16]);
    p.extend_from_slice(b"strait@example.i");
    p.resize(80, 0);
    p
}

/// Plaintext RTP with increasing sequence numbers, `spare` bytes of room.
fn next_plain(seq: &mut u16, len: usize, spare: usize) -> (Vec<u8>, usize) {
    *seq = seq.wrapping_add(1);
    let mut p = rtp(*seq, len);
    p.resize(len + spare, 0);
    (p, len)
}

fn bench_ours(c: &mut Criterion) {
    let mut g = c.benchmark_group("strait-srtp");
    for suite in Suite::ALL {
        for len in [172usize, 1200] {
            let mut tx = ours(suite);
            let mut seq = 0u16;
            g.bench_function(format!("protect_rtp/{suite}/{len}"), |b| {
                b.iter_batched_ref(
                    || next_plain(&mut seq, len, suite.rtp_overhead()),
                    |(buf, len)| black_box(tx.protect_rtp(buf, *len)),
                    BATCH,
                )
            });

            let mut sender = ours(suite);
            let mut rx = ours(suite);
            let mut seq = 0u16;
            g.bench_function(format!("unprotect_rtp/{suite}/{len}"), |b| {
                b.iter_batched_ref(
                    || {
                        let (mut buf, len) = next_plain(&mut seq, len, suite.rtp_overhead());
                        let n = sender.protect_rtp(&mut buf, len).expect("protect");
                        buf.truncate(n);
                        buf
                    },
                    |buf| {
                        let r = rx.unprotect_rtp(buf);
                        debug_assert!(r.is_ok());
                        black_box(r)
                    },
                    BATCH,
                )
            });
        }

        let mut tx = ours(suite);
        let plain = rtcp();
        g.bench_function(format!("protect_rtcp/{suite}/80"), |b| {
            b.iter_batched_ref(
                || {
                    let mut buf = plain.clone();
                    buf.resize(80 + suite.rtcp_overhead(), 0);
                    buf
                },
                |buf| black_box(tx.protect_rtcp(buf, 80)),
                BATCH,
            )
        });
        let mut sender = ours(suite);
        let mut rx = ours(suite);
        g.bench_function(format!("unprotect_rtcp/{suite}/80"), |b| {
            b.iter_batched_ref(
                || {
                    let mut buf = plain.clone();
                    buf.resize(80 + suite.rtcp_overhead(), 0);
                    let n = sender.protect_rtcp(&mut buf, 80).expect("protect");
                    buf.truncate(n);
                    buf
                },
                |buf| {
                    let r = rx.unprotect_rtcp(buf);
                    debug_assert!(r.is_ok());
                    black_box(r)
                },
                BATCH,
            )
        });
    }
    g.finish();
}

fn bench_libsrtp(c: &mut Criterion) {
    let mut g = c.benchmark_group("libsrtp");
    for suite in Suite::ALL {
        for len in [172usize, 1200] {
            let mut tx = libsrtp(suite, false);
            let mut seq = 0u16;
            g.bench_function(format!("protect_rtp/{suite}/{len}"), |b| {
                b.iter_batched_ref(
                    || next_plain(&mut seq, len, 0).0,
                    |buf| black_box(tx.protect(buf)),
                    BATCH,
                )
            });

            let mut sender = libsrtp(suite, false);
            let mut rx = libsrtp(suite, true);
            let mut seq = 0u16;
            g.bench_function(format!("unprotect_rtp/{suite}/{len}"), |b| {
                b.iter_batched_ref(
                    || {
                        let mut buf = next_plain(&mut seq, len, 0).0;
                        sender.protect(&mut buf).expect("libsrtp protect");
                        buf
                    },
                    |buf| {
                        let r = rx.unprotect(buf);
                        debug_assert!(r.is_ok());
                        black_box(r)
                    },
                    BATCH,
                )
            });
        }

        let mut tx = libsrtp(suite, false);
        let plain = rtcp();
        g.bench_function(format!("protect_rtcp/{suite}/80"), |b| {
            b.iter_batched_ref(
                || plain.clone(),
                |buf| black_box(tx.protect_rtcp(buf)),
                BATCH,
            )
        });
        let mut sender = libsrtp(suite, false);
        let mut rx = libsrtp(suite, true);
        g.bench_function(format!("unprotect_rtcp/{suite}/80"), |b| {
            b.iter_batched_ref(
                || {
                    let mut buf = plain.clone();
                    sender.protect_rtcp(&mut buf).expect("libsrtp protect_rtcp");
                    buf
                },
                |buf| {
                    let r = rx.unprotect_rtcp(buf);
                    debug_assert!(r.is_ok());
                    black_box(r)
                },
                BATCH,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_ours, bench_libsrtp
}
criterion_main!(benches);
