//! Fuzz entry points, compiled only with the `fuzz` feature.
//!
//! Each function takes arbitrary bytes, drives one parser or state machine
//! with them and asserts invariants (round trips, counter consistency,
//! bounds). They must never panic except on a broken invariant, which is
//! what the fuzzer looks for. They allocate freely: this is not the hot path.

use std::time::{Duration, Instant};

use crate::demux::{self, PacketKind};
use crate::nack::{NackBuffer, NackConfig};
use crate::rtcp::{self, RtcpView};
use crate::rtp::{self, RtpPacket, RtpPacketMut};

/// Parses `data` as RTP, walks every accessor, the extension elements and
/// the padding, then rewrites the header in place and checks the re-parse
/// agrees.
pub fn rtp_parse(data: &[u8]) {
    let Ok(p) = RtpPacket::parse(data) else {
        assert!(rtp::header_len(data).is_err());
        return;
    };
    let hl = p.header_len();
    assert!(hl >= rtp::FIXED_HEADER_LEN && hl <= data.len());
    assert_eq!(p.csrcs().count(), p.csrc_count());
    assert_eq!(p.csrc(p.csrc_count()), None);
    let _ = (p.marker(), p.payload_type(), p.timestamp(), p.has_padding());
    if let Some((_, body)) = p.extension() {
        assert!(body.len() % 4 == 0);
    }
    let mut ext_bytes = 0;
    for e in p.extension_elements() {
        match e {
            Ok((_, value)) => ext_bytes += value.len(),
            Err(_) => break,
        }
    }
    assert!(ext_bytes <= hl);
    let payload = match p.payload() {
        Ok(pl) => {
            assert_eq!(
                hl + pl.len() + p.padding_len().expect("payload() succeeded"),
                data.len()
            );
            Some(pl.to_vec())
        }
        Err(_) => None,
    };
    assert_eq!(p.payload_with_padding().len(), data.len() - hl);

    // Rewrite from values derived from the input, then re-parse.
    let seq = p.sequence().wrapping_add(1);
    let ts = p.timestamp() ^ 0x5A5A_5A5A;
    let ssrc = !p.ssrc();
    let pt = p.payload_type().wrapping_add(3) & 0x7F;
    let marker = !p.marker();
    let csrcs: Vec<u32> = p.csrcs().collect();
    let ext = p.extension().map(|(profile, b)| (profile, b.to_vec()));
    let mut buf = data.to_vec();
    let mut m = RtpPacketMut::parse(&mut buf).expect("same bytes parsed before");
    assert_eq!(m.header_len(), hl);
    m.set_sequence(seq);
    m.set_timestamp(ts);
    m.set_ssrc(ssrc);
    m.set_payload_type(pt);
    m.set_marker(marker);
    let r = RtpPacket::parse(&buf).expect("rewrite keeps the header valid");
    assert_eq!(r.header_len(), hl);
    assert_eq!(
        (
            r.sequence(),
            r.timestamp(),
            r.ssrc(),
            r.payload_type(),
            r.marker()
        ),
        (seq, ts, ssrc, pt, marker)
    );
    assert_eq!(r.csrcs().collect::<Vec<_>>(), csrcs);
    assert_eq!(r.extension().map(|(p, b)| (p, b.to_vec())), ext);
    assert_eq!(r.payload().ok().map(<[u8]>::to_vec), payload);
}

/// Walks `data` as a compound RTCP packet and every typed view, expands
/// NACKs, round-trips them through the writer and checks that an identity
/// SSRC rewrite changes nothing while a constant one is seen by the views.
pub fn rtcp_parse(data: &[u8]) {
    let mut ok = true;
    let mut kinds = Vec::new();
    let mut covered = 0;
    for v in rtcp::views(data) {
        let Ok(v) = v else {
            ok = false;
            break;
        };
        let pkt = v.packet();
        covered += pkt.as_bytes().len();
        assert!(pkt.body().len() + 4 + pkt.padding_len() == pkt.as_bytes().len());
        kinds.push(pkt.packet_type());
        walk_view(v);
    }
    assert_eq!(ok, rtcp::validate(data).is_ok() || data.is_empty());
    if ok {
        assert_eq!(covered, data.len(), "packets tile the buffer");
    }

    // Mutable walk: same packets, identity map is a no-op.
    let mut buf = data.to_vec();
    let mut mkinds = Vec::new();
    for p in rtcp::packets_mut(&mut buf) {
        let Ok(mut p) = p else { break };
        mkinds.push(p.packet_type());
        let _ = p.map_ssrcs(|_, s| s);
    }
    assert_eq!(buf, data);
    if ok {
        assert_eq!(mkinds, kinds);
        // Constant map: every sender SSRC a view reports becomes the constant.
        for p in rtcp::packets_mut(&mut buf) {
            p.expect("valid before")
                .map_ssrcs(|_, _| 0xC0FF_EE00)
                .expect("valid before");
        }
        for v in rtcp::views(&buf) {
            let v = v.expect("rewrite keeps validity");
            match v {
                RtcpView::SenderReport(sr) => {
                    assert_eq!(sr.ssrc(), 0xC0FF_EE00);
                    assert!(sr.report_blocks().all(|b| b.ssrc == 0xC0FF_EE00));
                }
                RtcpView::Nack(n) => assert_eq!(n.media_ssrc(), 0xC0FF_EE00),
                RtcpView::Sdes(s) => assert!(s.chunks().all(|c| c.ssrc() == 0xC0FF_EE00)),
                RtcpView::Bye(b) => assert!(b.ssrcs().all(|s| s == 0xC0FF_EE00)),
                _ => {}
            }
        }
    }
}

fn walk_view(v: RtcpView<'_>) {
    match v {
        RtcpView::SenderReport(sr) => {
            let _ = (sr.ssrc(), sr.sender_info(), sr.extension());
            assert_eq!(sr.report_blocks().count(), usize::from(sr.packet().count()));
            check_blocks(sr.report_blocks());
        }
        RtcpView::ReceiverReport(rr) => {
            let _ = (rr.ssrc(), rr.extension());
            assert_eq!(rr.report_blocks().count(), usize::from(rr.packet().count()));
            check_blocks(rr.report_blocks());
        }
        RtcpView::Sdes(s) => {
            assert_eq!(s.chunks().count(), usize::from(s.packet().count()));
            for c in s.chunks() {
                let _ = (c.ssrc(), c.cname());
                for i in c.items() {
                    assert!(i.kind != rtcp::SDES_END);
                }
            }
        }
        RtcpView::Bye(b) => {
            assert_eq!(b.ssrcs().count(), usize::from(b.packet().count()));
            let _ = b.reason();
        }
        RtcpView::App(a) => {
            let _ = (a.subtype(), a.ssrc(), a.name(), a.data());
        }
        RtcpView::Nack(n) => {
            let lost: Vec<u16> = n.lost_seqs().collect();
            let per_entry: usize = n.entries().map(|e| e.seqs().count()).sum();
            assert_eq!(lost.len(), per_entry);
            assert!(lost.len() >= n.entries().len() && lost.len() <= 17 * n.entries().len());
            // Writer round trip: same set of numbers.
            let mut out = vec![0u8; 12 + 4 * lost.len()];
            let len = rtcp::write_nack(
                &mut out,
                n.sender_ssrc(),
                n.media_ssrc(),
                lost.iter().copied(),
            )
            .expect("sized for one entry per number");
            let Ok(RtcpView::Nack(back)) =
                rtcp::RtcpPacket::parse(&out[..len]).and_then(|p| p.view())
            else {
                panic!("written NACK does not parse");
            };
            let mut a = lost.clone();
            let mut b: Vec<u16> = back.lost_seqs().collect();
            a.sort_unstable();
            a.dedup();
            b.sort_unstable();
            b.dedup();
            assert_eq!(a, b);
        }
        RtcpView::Pli(p) => {
            let _ = (p.sender_ssrc(), p.media_ssrc());
        }
        RtcpView::Fir(f) => {
            let entries: Vec<_> = f.entries().collect();
            assert!(!entries.is_empty());
            let mut out = vec![0u8; 12 + 8 * entries.len()];
            let len = rtcp::write_fir(&mut out, f.sender_ssrc(), &entries).expect("sized");
            let Ok(RtcpView::Fir(back)) =
                rtcp::RtcpPacket::parse(&out[..len]).and_then(|p| p.view())
            else {
                panic!("written FIR does not parse");
            };
            assert!(back.entries().eq(entries));
        }
        RtcpView::Other(p) => {
            let _ = (p.sender_ssrc(), p.fmt(), p.body());
        }
    }
}

fn check_blocks(blocks: rtcp::ReportBlocks<'_>) {
    let blocks: Vec<_> = blocks.collect();
    let mut out = vec![0u8; 8 + 24 * blocks.len()];
    let len = rtcp::write_rr(&mut out, 1, &blocks).expect("at most 31 blocks, sized");
    let Ok(RtcpView::ReceiverReport(rr)) =
        rtcp::RtcpPacket::parse(&out[..len]).and_then(|p| p.view())
    else {
        panic!("written RR does not parse");
    };
    assert!(rr.report_blocks().eq(blocks));
}

/// Classifies `data` and checks the verdict against the parsers.
pub fn demux(data: &[u8]) {
    match demux::classify(data) {
        PacketKind::Rtp => {
            assert!(data.len() >= 12 && data[0] >> 6 == 2);
            // The fixed header is there; CSRCs or extension may still fail.
            if let Err(e) = RtpPacket::parse(data) {
                assert!(matches!(
                    e,
                    crate::Error::BadCsrcCount | crate::Error::BadExtension
                ));
            }
        }
        PacketKind::Rtcp => {
            assert!(data.len() >= 8 && (192..=223).contains(&data[1]));
            assert!(!matches!(
                rtcp::packets(data).next(),
                Some(Err(crate::Error::BadVersion | crate::Error::TooShort))
            ));
        }
        PacketKind::Stun => assert!(data.len() >= 20 && data[4..8] == [0x21, 0x12, 0xA4, 0x42]),
        PacketKind::Dtls => assert!((20..=63).contains(&data[0])),
        PacketKind::TurnChannel => assert!((64..=79).contains(&data[0])),
        PacketKind::Zrtp => assert!((16..=19).contains(&data[0])),
        _ => {}
    }
}

/// Drives a small [`NackBuffer`] with inserts, NACKs and stream removals
/// decoded from `data`, checking counters, bounds and that every packet
/// handed back is one that was asked for.
pub fn nack_buffer(data: &[u8]) {
    let mut it = data.iter().copied();
    let mut byte = || it.next();
    let (Some(a), Some(b), Some(c)) = (byte(), byte(), byte()) else {
        return;
    };
    let tail_min = usize::from(a % 16) + 1;
    let tail_max = tail_min + usize::from(b % 48);
    let config = NackConfig {
        max_streams: usize::from(c % 3) + 1,
        tail_min,
        tail_max,
        max_packet_len: 64,
        max_age: Duration::from_millis(500),
    };
    let mut buf = NackBuffer::new(config).expect("valid config");
    let base = Instant::now();
    let mut now_ms = 0u64;
    let mut pkt = [0u8; 80];
    while let Some(op) = byte() {
        let ssrc = u32::from(op >> 6);
        let Some(s0) = byte() else { break };
        let Some(s1) = byte() else { break };
        let seq = u16::from_be_bytes([s0, s1]);
        now_ms += u64::from(op & 0x0F) * 10;
        let now = base + Duration::from_millis(now_ms);
        let before = *buf.counters();
        match (op >> 4) & 3 {
            0 | 1 => {
                // Insert a packet carrying (ssrc, seq), sometimes oversized.
                let len = if op & 0x20 != 0 && s1 == 0xFF {
                    65
                } else {
                    12 + usize::from(s1 % 40)
                };
                pkt[..4].copy_from_slice(&ssrc.to_be_bytes());
                pkt[4..6].copy_from_slice(&seq.to_be_bytes());
                let r = buf.insert(now, ssrc, seq, &pkt[..len]);
                let after = *buf.counters();
                match r {
                    Ok(()) => assert_eq!(
                        after.packets_inserted + after.stale_inserts,
                        before.packets_inserted + before.stale_inserts + 1
                    ),
                    Err(crate::Error::PacketTooLarge) => {
                        assert_eq!(after.oversize_refused, before.oversize_refused + 1)
                    }
                    Err(crate::Error::TooManyStreams) => {
                        assert_eq!(after.streams_refused, before.streams_refused + 1)
                    }
                    Err(e) => panic!("unexpected insert error {e}"),
                }
            }
            2 => {
                // NACK for `n` numbers from `seq`, stepping by `step`.
                let Some(x) = byte() else { break };
                let n = usize::from(x % 20);
                let step = u16::from(x >> 5) + 1;
                let seqs = (0..n).map(move |i| seq.wrapping_add(step.wrapping_mul(i as u16)));
                let asked: Vec<u16> = seqs.clone().collect();
                let sent: Vec<Vec<u8>> = buf.resend(now, ssrc, seqs).map(<[u8]>::to_vec).collect();
                let after = *buf.counters();
                assert_eq!(after.nacks_received, before.nacks_received + 1);
                assert_eq!(after.seqs_requested, before.seqs_requested + n as u64);
                assert_eq!(
                    after.packets_resent - before.packets_resent,
                    sent.len() as u64
                );
                let mut seen = Vec::new();
                for p in &sent {
                    assert!(p.len() >= 12 && p.len() <= config.max_packet_len);
                    assert_eq!(p[..4], ssrc.to_be_bytes());
                    let s = u16::from_be_bytes([p[4], p[5]]);
                    assert!(asked.contains(&s), "resent a packet not asked for");
                    assert!(!seen.contains(&s), "resent twice in one NACK");
                    seen.push(s);
                }
            }
            _ => {
                buf.remove_stream(ssrc);
            }
        }
        let c = buf.counters();
        assert_eq!(
            c.seqs_requested,
            c.packets_resent + c.unrecoverable + c.duplicates
        );
        assert_eq!(
            c.unrecoverable,
            c.unknown_ssrc + c.missing + c.evicted + c.too_old
        );
        assert!(buf.stream_count() <= config.max_streams);
        for s in 0..4 {
            if let Some(t) = buf.tail_len(s) {
                assert!(t >= config.tail_min && t <= config.tail_max);
            }
        }
        assert_eq!(
            buf.memory_bytes(),
            config.max_streams * config.tail_max * config.max_packet_len
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fuzz_bodies_hold_on_random_input(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            rtp_parse(&data);
            rtcp_parse(&data);
            demux(&data);
            nack_buffer(&data);
        }

        #[test]
        fn rtcp_fuzz_on_valid_compounds(ssrc: u32, seqs in proptest::collection::vec(any::<u16>(), 1..40)) {
            let mut b = [0u8; 1024];
            let mut n = rtcp::write_rr(&mut b, ssrc, &[rtcp::ReportBlock::default()]).unwrap();
            n += rtcp::write_sdes_cname(&mut b[n..], ssrc, b"cname").unwrap();
            n += rtcp::write_nack(&mut b[n..], ssrc, 5, seqs).unwrap();
            rtcp_parse(&b[..n]);
        }
    }
}
