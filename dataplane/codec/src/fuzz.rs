//! Fuzz entry points (feature `fuzz`), called by the thin cargo-fuzz crate.
//!
//! The transcoder targets read `data` as a series of records, each turned
//! into one input RTP packet:
//!
//! - `[0x80 | n, bytes × n]`: `n` (0..=127) raw bytes, used as is (header
//!   parsing, padding, CSRCs, extensions);
//! - `[flags, seq_step, ts_step_hi, ts_step_lo, n, bytes × n]`: a
//!   well-formed packet whose sequence number and timestamp advance by the
//!   given steps (a step of 0 or a large one exercises duplicates, late
//!   packets and restarts). `flags` bit 0: telephone-event instead of
//!   audio, bit 1: marker, bit 2: another SSRC, bit 3: an unexpected payload
//!   type, bits 4-6: timestamp step multiplier (1 << bits).
//!
//! After each push the output is drained and every output packet is
//! checked: it parses, carries the configured SSRC and payload types, the
//! sequence numbers are consecutive, audio timestamps move forward by at
//! least one frame, G.711 payloads are 160 bytes, Opus payloads decode to
//! 20 ms and event payloads are whole blocks.

use strait_rtp::rtp::{FixedHeader, RtpPacket};

use crate::opus::packet_samples;
use crate::transcode::{DecoderConfig, Formats, OutputStream, CLOCK_RATIO};
use crate::{g711, EncoderConfig, G711ToOpus, OpusToG711};

const OUT: OutputStream = OutputStream {
    ssrc: 0x5757_0001,
    initial_sequence: 65530,
    initial_timestamp: 0xFFFF_F000,
};

/// Builds input packets from the record format described above.
struct Records<'a> {
    data: &'a [u8],
    seq: u16,
    ts: u32,
    audio_pt: u8,
    event_pt: u8,
    buf: [u8; 12 + 255],
}

impl<'a> Records<'a> {
    fn new(data: &'a [u8], audio_pt: u8, event_pt: u8) -> Self {
        Self {
            data,
            seq: 100,
            ts: 0xFFFF_0000,
            audio_pt,
            event_pt,
            buf: [0; 12 + 255],
        }
    }

    fn next_packet(&mut self) -> Option<&[u8]> {
        let (&first, rest) = self.data.split_first()?;
        if first & 0x80 != 0 {
            let n = usize::from(first & 0x7F).min(rest.len());
            let (pkt, rest) = rest.split_at(n);
            self.data = rest;
            return Some(pkt);
        }
        let [seq_step, ts_hi, ts_lo, n, rest @ ..] = rest else {
            self.data = &[];
            return None;
        };
        let n = usize::from(*n).min(rest.len());
        let (payload, rest) = rest.split_at(n);
        self.data = rest;
        self.seq = self.seq.wrapping_add(u16::from(*seq_step));
        let step = u32::from(u16::from_be_bytes([*ts_hi, *ts_lo])) << ((first >> 4) & 7);
        self.ts = self.ts.wrapping_add(step);
        let payload_type = match (first & 1 != 0, first & 8 != 0) {
            (_, true) => 13,
            (true, false) => self.event_pt,
            (false, false) => self.audio_pt,
        };
        FixedHeader {
            marker: first & 2 != 0,
            payload_type,
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: if first & 4 != 0 { 0xBAD } else { 0x600D },
        }
        .write(&mut self.buf)
        .expect("buffer holds a fixed header");
        self.buf[12..12 + n].copy_from_slice(payload);
        Some(&self.buf[..12 + n])
    }
}

/// Checks the output stream's invariants.
struct Checker {
    audio_pt: u8,
    event_pt: u8,
    step: u32,
    next_seq: u16,
    last_audio_ts: Option<u32>,
    count: u64,
}

impl Checker {
    fn new(audio_pt: u8, event_pt: u8, step: u32) -> Self {
        Self {
            audio_pt,
            event_pt,
            step,
            next_seq: OUT.initial_sequence,
            last_audio_ts: None,
            count: 0,
        }
    }

    fn check(&mut self, pkt: &[u8], opus: bool) {
        let p = RtpPacket::parse(pkt).expect("output parses");
        assert_eq!(p.ssrc(), OUT.ssrc);
        assert_eq!(p.sequence(), self.next_seq, "consecutive sequence numbers");
        self.next_seq = self.next_seq.wrapping_add(1);
        self.count += 1;
        let payload = p.payload().expect("no padding");
        if p.payload_type() == self.event_pt {
            assert!(!payload.is_empty() && payload.len() & 3 == 0);
            return;
        }
        assert_eq!(p.payload_type(), self.audio_pt);
        if let Some(last) = self.last_audio_ts {
            let d = p.timestamp().wrapping_sub(last) as i32;
            assert!(d >= self.step as i32, "audio timestamp step {d}");
        }
        self.last_audio_ts = Some(p.timestamp());
        if opus {
            assert_eq!(packet_samples(payload), Some(160));
        } else {
            assert_eq!(payload.len(), 160);
        }
    }
}

/// Feeds Opus RTP packets to an [`OpusToG711`] (PCMA output) and checks
/// the G.711 output stream.
pub fn opus_to_g711(data: &[u8]) {
    let mut formats = Formats::typical();
    formats.law = g711::Law::Alaw;
    formats.g711.pt = 8;
    let mut t = OpusToG711::new(&formats, OUT, &DecoderConfig::default()).expect("valid config");
    let ev = formats.telephone_event.expect("typical has events");
    let mut records = Records::new(data, formats.opus.pt, ev.opus.pt);
    let mut checker = Checker::new(formats.g711.pt, ev.g711.pt, 160);
    let mut out = [0u8; OpusToG711::MAX_PACKET_LEN];
    let mut pushed = 0;
    while let Some(pkt) = records.next_packet() {
        pushed += 1;
        let _ = t.push(pkt);
        while let Some(n) = t.poll(&mut out).expect("buffer is large enough") {
            checker.check(&out[..n], false);
        }
    }
    let c = t.counters();
    assert_eq!(c.packets_in, pushed);
    assert_eq!(c.packets_out, checker.count);
    assert_eq!(c.overflowed, 0, "drained after every push");
}

/// Feeds G.711 RTP packets to a [`G711ToOpus`] and checks the Opus output
/// stream.
pub fn g711_to_opus(data: &[u8]) {
    let formats = Formats::typical();
    let enc = EncoderConfig {
        complexity: 0,
        ..EncoderConfig::default()
    };
    let mut t = G711ToOpus::new(&formats, OUT, &enc).expect("valid config");
    let ev = formats.telephone_event.expect("typical has events");
    let mut records = Records::new(data, formats.g711.pt, ev.g711.pt);
    let mut checker = Checker::new(formats.opus.pt, ev.opus.pt, 160 * CLOCK_RATIO);
    let mut out = [0u8; G711ToOpus::MAX_PACKET_LEN];
    let mut pushed = 0;
    while let Some(pkt) = records.next_packet() {
        pushed += 1;
        let _ = t.push(pkt);
        while let Some(n) = t.poll(&mut out).expect("encoding a valid frame") {
            checker.check(&out[..n], true);
        }
    }
    let c = t.counters();
    assert_eq!(c.packets_in, pushed);
    assert_eq!(c.packets_out, checker.count);
    assert_eq!(c.overflowed, 0, "drained after every push");
}

/// Reads `data` as big-endian `i16` samples and checks the G.711 coders:
/// the quantisation error bound and that re-encoding a decoded value is
/// stable, for both laws; also the law-to-law tables.
pub fn g711_codes(data: &[u8]) {
    for pair in data.chunks_exact(2) {
        let x = i16::from_be_bytes([pair[0], pair[1]]);
        for law in [g711::Law::Ulaw, g711::Law::Alaw] {
            let c = law.encode(x);
            let y = law.decode(c);
            assert!((i32::from(y) - i32::from(x)).abs() <= 644, "{law:?} {x}");
            assert_eq!(law.decode(law.encode(y)), y, "{law:?} {x}");
        }
        let u = g711::ulaw_encode(x);
        let a = g711::ULAW_TO_ALAW[usize::from(u)];
        assert_eq!(a, g711::alaw_encode(g711::ULAW_DECODE[usize::from(u)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_bodies_accept_anything() {
        let mut state = 0x1234_5678u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for round in 0..60 {
            let len = (next() % 600) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 {
                // Mostly structured audio records with small steps.
                for (i, b) in data.iter_mut().enumerate() {
                    if i % 40 == 0 {
                        *b &= 0x03;
                    }
                }
            }
            opus_to_g711(&data);
            g711_to_opus(&data);
            g711_codes(&data);
        }
        // A clean run of structured records reaches the encoders.
        let mut data = Vec::new();
        for _ in 0..10 {
            data.extend_from_slice(&[0x00, 1, 0, 160, 160]);
            data.extend(std::iter::repeat_n(0x55, 160));
        }
        g711_to_opus(&data);
    }
}
