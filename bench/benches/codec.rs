//! G.711 <-> Opus transcoding of one 20 ms frame through the `strait-codec`
//! transcoder API (`push` one RTP packet, `poll` one RTP packet), at 8 kHz.
//!
//! - `g711_to_opus/cN`: G.711 decode + Opus encode at complexity N (0, 5, 10)
//!   with the default settings (24 kbit/s, FEC allowed but no loss
//!   reported, so no FEC is coded); `c5_fec5` with in-band FEC coded for an
//!   expected 5 % loss.
//! - `opus_to_g711`: Opus decode + G.711 encode.
//! - `round_trip/c5`: both, the second fed with the first one's output.
//! - `g711/*`: the table code alone (decode, encode, PCMU->PCMA).
//!
//! The input is 5 s of a speech-like test signal (two voiced harmonics
//! series with a syllable-rate envelope plus noise), cycled; each iteration
//! rewrites the sequence number and timestamp of the next packet so the
//! transcoder sees one continuous in-order stream.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use strait_codec::g711;
use strait_codec::{DecoderConfig, EncoderConfig, Formats, G711ToOpus, OpusToG711, OutputStream};
use strait_rtp::rtp::{FixedHeader, RtpPacketMut};

const FRAMES: usize = 250;
const OUT: OutputStream = OutputStream {
    ssrc: 0xB0B0_0001,
    initial_sequence: 1,
    initial_timestamp: 0,
};

/// 5 s of a speech-like signal at 8 kHz.
fn signal() -> Vec<i16> {
    let mut seed = 0x2545_F491u32;
    (0..FRAMES * 160)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let f0 = 110.0 + 30.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let voiced: f64 = (1..=12)
                .map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64)
                .sum();
            let env = (2.0 * std::f64::consts::PI * 4.0 * t).sin().abs();
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = f64::from(seed as i16) / 32768.0;
            (6000.0 * env * voiced + 300.0 * noise) as i16
        })
        .collect()
}

fn packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    FixedHeader {
        marker: false,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: 0x600D,
    }
    .write(&mut p)
    .expect("12 bytes");
    p.extend_from_slice(payload);
    p
}

/// Cycles through prepared packets, rewriting seq and ts to keep counting.
struct Feeder {
    packets: Vec<Vec<u8>>,
    ticks: u32,
    i: usize,
    seq: u16,
    ts: u32,
}

impl Feeder {
    fn new(packets: Vec<Vec<u8>>, ticks: u32) -> Self {
        Self {
            packets,
            ticks,
            i: 0,
            seq: 0,
            ts: 0,
        }
    }

    fn next(&mut self) -> &[u8] {
        let n = self.packets.len();
        let p = &mut self.packets[self.i % n];
        self.i += 1;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.ticks);
        let mut m = RtpPacketMut::parse(p).expect("valid packet");
        m.set_sequence(self.seq);
        m.set_timestamp(self.ts);
        p
    }
}

fn g711_packets(pcm: &[i16]) -> Vec<Vec<u8>> {
    pcm.chunks(160)
        .map(|c| {
            let mut u = [0u8; 160];
            g711::encode_ulaw(c, &mut u);
            packet(0, 0, 0, &u)
        })
        .collect()
}

fn up(complexity: u8) -> G711ToOpus {
    up_with(EncoderConfig {
        complexity,
        ..EncoderConfig::default()
    })
}

fn up_with(enc: EncoderConfig) -> G711ToOpus {
    G711ToOpus::new(&Formats::typical(), OUT, &enc).expect("config")
}

fn down() -> OpusToG711 {
    OpusToG711::new(&Formats::typical(), OUT, &DecoderConfig::default()).expect("config")
}

fn opus_packets(pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut t = up(5);
    let mut out = [0u8; 1500];
    g711_packets(pcm)
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let mut p = p.clone();
            let mut m = RtpPacketMut::parse(&mut p).expect("valid");
            m.set_sequence(k as u16);
            m.set_timestamp(160 * k as u32);
            t.push(&p).expect("push");
            let n = t.poll(&mut out).expect("poll").expect("one frame");
            out[..n].to_vec()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pcm = signal();
    let g711 = g711_packets(&pcm);
    let opus = opus_packets(&pcm);
    let mut g = c.benchmark_group("codec");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));

    for complexity in [0u8, 5, 10] {
        let mut t = up(complexity);
        let mut feed = Feeder::new(g711.clone(), 160);
        let mut out = [0u8; 1500];
        g.bench_function(format!("g711_to_opus/c{complexity}"), |b| {
            b.iter(|| {
                t.push(feed.next()).expect("push");
                black_box(t.poll(&mut out).expect("poll"))
            })
        });
    }

    {
        // In-band FEC coded (the default codes none until loss is reported).
        let mut t = up_with(EncoderConfig {
            expected_loss_percent: 5,
            ..EncoderConfig::default()
        });
        let mut feed = Feeder::new(g711.clone(), 160);
        let mut out = [0u8; 1500];
        g.bench_function("g711_to_opus/c5_fec5", |b| {
            b.iter(|| {
                t.push(feed.next()).expect("push");
                black_box(t.poll(&mut out).expect("poll"))
            })
        });
    }

    {
        let mut t = down();
        let mut feed = Feeder::new(opus.clone(), 960);
        let mut out = [0u8; 1500];
        g.bench_function("opus_to_g711", |b| {
            b.iter(|| {
                t.push(feed.next()).expect("push");
                black_box(t.poll(&mut out).expect("poll"))
            })
        });
    }

    {
        let mut a = up(5);
        let mut z = down();
        let mut feed = Feeder::new(g711.clone(), 160);
        let mut mid = [0u8; 1500];
        let mut out = [0u8; 1500];
        g.bench_function("round_trip/c5", |b| {
            b.iter(|| {
                a.push(feed.next()).expect("push");
                let n = a.poll(&mut mid).expect("poll").expect("a frame");
                z.push(&mid[..n]).expect("push");
                black_box(z.poll(&mut out).expect("poll"))
            })
        });
    }

    let frame: Vec<i16> = pcm[8000..8160].to_vec();
    let mut codes = [0u8; 160];
    g711::encode_ulaw(&frame, &mut codes);
    let mut lin = [0i16; 160];
    g.bench_function("g711/decode_ulaw", |b| {
        b.iter(|| g711::decode_ulaw(black_box(&codes), &mut lin))
    });
    g.bench_function("g711/encode_ulaw", |b| {
        b.iter(|| g711::encode_ulaw(black_box(&frame), &mut codes))
    });
    g.bench_function("g711/encode_alaw", |b| {
        b.iter(|| g711::encode_alaw(black_box(&frame), &mut codes))
    });
    let mut p = codes;
    g.bench_function("g711/ulaw_to_alaw", |b| {
        b.iter(|| g711::ulaw_to_alaw_in_place(black_box(&mut p)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
