//! Micro-benchmarks of the per-packet RTP/RTCP functions of `strait-rtp`:
//! first-byte demux, RTCP compound parsing, RTP header parse + rewrite and
//! the NACK tail buffer.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use strait_rtp::demux::classify;
use strait_rtp::nack::{NackBuffer, NackConfig};
use strait_rtp::rtcp::{self, ReportBlock, RtcpView, SenderInfo};
use strait_rtp::rtp::{FixedHeader, RtpPacket, RtpPacketMut};

/// A 172-byte RTP packet (12-byte header + 160 bytes, i.e. 20 ms of G.711).
fn rtp_packet(seq: u16) -> [u8; 172] {
    let mut p = [0x55u8; 172];
    FixedHeader {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 0x1234_5678,
    }
    .write(&mut p)
    .expect("172 > 12");
    p
}

/// SR with one report block + SDES CNAME + generic NACK.
fn rtcp_compound() -> Vec<u8> {
    let mut b = [0u8; 256];
    let info = SenderInfo {
        ntp_timestamp: 0xE000_0001_8000_0000,
        rtp_timestamp: 960,
        packet_count: 10,
        octet_count: 1720,
    };
    let block = ReportBlock {
        ssrc: 0xAABB_CCDD,
        fraction_lost: 3,
        cumulative_lost: 12,
        ext_highest_seq: 0x1_0005,
        jitter: 40,
        lsr: 0x0102_0304,
        dlsr: 0x8000,
    };
    let mut n = rtcp::write_sr(&mut b, 0x1122_3344, &info, &[block]).expect("fits");
    n += rtcp::write_sdes_cname(&mut b[n..], 0x1122_3344, b"h7Kd0aQ2Zp1rT9sv").expect("fits");
    n += rtcp::write_nack(
        &mut b[n..],
        0x1122_3344,
        0xAABB_CCDD,
        [100u16, 101, 103, 120],
    )
    .expect("fits");
    b[..n].to_vec()
}

fn demux(c: &mut Criterion) {
    let rtp = rtp_packet(7);
    let rtcp = rtcp_compound();
    let mut stun = [0u8; 20];
    stun[..8].copy_from_slice(&[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42]);
    let mut dtls = [0u8; 100];
    dtls[..3].copy_from_slice(&[22, 0xFE, 0xFD]);
    let mut g = c.benchmark_group("demux");
    for (name, pkt) in [
        ("rtp", &rtp[..]),
        ("rtcp", &rtcp[..]),
        ("stun", &stun[..]),
        ("dtls", &dtls[..]),
    ] {
        g.bench_function(name, |b| b.iter(|| classify(black_box(pkt))));
    }
    g.finish();
}

fn rtcp_parse(c: &mut Criterion) {
    let p = rtcp_compound();
    c.bench_function("rtcp/parse_sr_sdes_nack", |b| {
        b.iter(|| {
            // Walk every view and fold the fields so nothing is optimised out.
            let mut acc = 0u64;
            for v in rtcp::views(black_box(&p)) {
                match v {
                    Ok(RtcpView::SenderReport(sr)) => {
                        acc += u64::from(sr.ssrc()) + sr.sender_info().ntp_timestamp;
                        for blk in sr.report_blocks() {
                            acc += u64::from(blk.ssrc) + u64::from(blk.jitter);
                        }
                    }
                    Ok(RtcpView::Sdes(s)) => {
                        for ch in s.chunks() {
                            acc += ch.cname().map_or(0, |c| c.len() as u64);
                        }
                    }
                    Ok(RtcpView::Nack(n)) => {
                        for seq in n.lost_seqs() {
                            acc += u64::from(seq);
                        }
                    }
                    Ok(_) => acc += 1,
                    Err(_) => return u64::MAX,
                }
            }
            acc
        })
    });
}

fn rtp_parse_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp");
    let p = rtp_packet(7);
    g.bench_function("parse", |b| {
        b.iter(|| {
            let r = RtpPacket::parse(black_box(&p)).expect("valid");
            (r.sequence(), r.timestamp(), r.ssrc(), r.payload_type())
        })
    });
    let mut p = rtp_packet(7);
    g.bench_function("parse_rewrite", |b| {
        b.iter(|| {
            let mut m = RtpPacketMut::parse(black_box(&mut p[..])).expect("valid");
            m.set_ssrc(0x0BAD_CAFE);
            let seq = m.as_ref().sequence().wrapping_add(1);
            m.set_sequence(seq);
            m.set_timestamp(u32::from(seq) * 160);
            m.set_payload_type(8);
        })
    });
    g.finish();
}

fn nack_buffer(c: &mut Criterion) {
    let mut g = c.benchmark_group("nack");
    let config = NackConfig {
        max_streams: 2,
        tail_min: 400,
        tail_max: 400,
        max_packet_len: 1500,
        max_age: Duration::from_secs(1),
    };
    // A fixed instant: the benchmark measures the buffer, not the clock.
    let now = Instant::now();
    let mut buf = NackBuffer::new(config).expect("valid config");
    let mut pkt = rtp_packet(0);
    let mut seq = 0u16;
    g.bench_function("insert_172", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            buf.insert(now, 0x1234_5678, seq, black_box(&pkt))
                .expect("fits")
        })
    });

    let mut buf = NackBuffer::new(config).expect("valid config");
    for s in 0..400u16 {
        let p = rtp_packet(s);
        buf.insert(now, 0x1234_5678, s, &p).expect("fits");
    }
    let mut out = [0u8; 64];
    // 16 numbers: 300..=315 in a single (PID, BLP) entry.
    let n = rtcp::write_nack(&mut out, 1, 0x1234_5678, 300u16..316).expect("fits");
    let Ok(RtcpView::Nack(nack)) = rtcp::RtcpPacket::parse(&out[..n]).and_then(|p| p.view()) else {
        panic!("NACK does not parse");
    };
    g.bench_function("nack_16_seqs", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for p in buf.on_nack(now, black_box(&nack)) {
                bytes += p.len();
            }
            assert_eq!(bytes, 16 * 172);
            bytes
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1));
    targets = demux, rtcp_parse, rtp_parse_rewrite, nack_buffer
}
criterion_main!(benches);
