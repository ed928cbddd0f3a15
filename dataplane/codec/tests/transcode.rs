//! Behaviour of the transcoders through their public API.

use strait_codec::g711::{self, Law};
use strait_codec::opus::packet_has_fec;
use strait_codec::transcode::{scale_duration_down, scale_duration_up};
use strait_codec::{
    ConfigError, Counters, DecoderConfig, EncoderConfig, Error, EventFormats, Formats, G711ToOpus,
    OpusToG711, OutputStream, PayloadFormat,
};
use strait_rtp::rtp::{FixedHeader, RtpPacket};

const TO_BROWSER: OutputStream = OutputStream {
    ssrc: 0xB0B0_0001,
    initial_sequence: 65534,
    initial_timestamp: 0xFFFF_FC00,
};
const TO_LEGACY: OutputStream = OutputStream {
    ssrc: 0x1E6A_0002,
    initial_sequence: 65535,
    initial_timestamp: 0xFFFF_FF60,
};

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    FixedHeader {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
    }
    .write(&mut p)
    .unwrap();
    p.extend_from_slice(payload);
    p
}

/// A tone (or a sum of tones) at 8 kHz, starting at sample `start`.
fn tone(freqs: &[f64], amp: f64, start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let v: f64 = freqs
                .iter()
                .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
                .sum();
            (amp * v / freqs.len() as f64) as i16
        })
        .collect()
}

fn ulaw(pcm: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; pcm.len()];
    g711::encode_ulaw(pcm, &mut out);
    out
}

fn to_browser() -> G711ToOpus {
    G711ToOpus::new(&Formats::typical(), TO_BROWSER, &EncoderConfig::default()).unwrap()
}

fn to_legacy() -> OpusToG711 {
    OpusToG711::new(&Formats::typical(), TO_LEGACY, &DecoderConfig::default()).unwrap()
}

/// Output of a transcoder after one push: the packets polled.
trait Drain {
    fn drain(&mut self) -> Vec<Vec<u8>>;
}

impl Drain for G711ToOpus {
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(n) = self.poll(&mut buf).unwrap() {
            v.push(buf[..n].to_vec());
        }
        v
    }
}

impl Drain for OpusToG711 {
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(n) = self.poll(&mut buf).unwrap() {
            v.push(buf[..n].to_vec());
        }
        v
    }
}

struct Hdr {
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
}

fn hdr(p: &[u8]) -> Hdr {
    let r = RtpPacket::parse(p).unwrap();
    Hdr {
        pt: r.payload_type(),
        seq: r.sequence(),
        ts: r.timestamp(),
        ssrc: r.ssrc(),
        marker: r.marker(),
        payload: r.payload().unwrap().to_vec(),
    }
}

/// Legacy -> browser: `frames` 20 ms G.711 packets of `pcm`, as Opus RTP.
fn opus_stream(pcm: &[i16], enc: &EncoderConfig) -> Vec<Vec<u8>> {
    let mut t = G711ToOpus::new(&Formats::typical(), TO_BROWSER, enc).unwrap();
    let mut out = Vec::new();
    for (k, chunk) in pcm.chunks(160).enumerate() {
        let p = rtp(
            0,
            7000 + k as u16,
            1000 + 160 * k as u32,
            42,
            k == 0,
            &ulaw(chunk),
        );
        assert_eq!(t.push(&p), Ok(1));
        out.extend(t.drain());
    }
    out
}

/// Normalised cross-correlation of `x` against `y` delayed by `lag`.
fn ncc(x: &[f64], y: &[f64], lag: usize) -> f64 {
    let n = x.len().min(y.len() - lag);
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        xy += x[i] * y[i + lag];
        xx += x[i] * x[i];
        yy += y[i + lag] * y[i + lag];
    }
    xy / (xx * yy).sqrt().max(1e-9)
}

/// Pushes a signal legacy -> browser -> legacy; returns the decoded output.
fn round_trip(pcm: &[i16]) -> Vec<i16> {
    let opus = opus_stream(pcm, &EncoderConfig::default());
    let mut back = to_legacy();
    let mut decoded = Vec::new();
    for p in &opus {
        back.push(p).unwrap();
        for g in back.drain() {
            let h = hdr(&g);
            let mut s = vec![0i16; h.payload.len()];
            g711::decode_ulaw(&h.payload, &mut s);
            decoded.extend(s);
        }
    }
    assert_eq!(back.counters().plc_frames, 0);
    decoded
}

#[test]
fn sine_survives_the_round_trip() {
    let pcm = tone(&[1000.0], 10000.0, 0, 160 * 100);
    let out = round_trip(&pcm);
    assert_eq!(out.len(), pcm.len());
    // Compare 1 s after the first 200 ms (codec start-up), searching the
    // codec delay.
    let x: Vec<f64> = pcm[1600..9600].iter().map(|&s| f64::from(s)).collect();
    let y: Vec<f64> = out[1600..].iter().map(|&s| f64::from(s)).collect();
    let (lag, best) = (0..240)
        .map(|l| (l, ncc(&x, &y, l)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(best > 0.95, "correlation {best} at lag {lag}");
    let energy = |v: &[f64]| v.iter().map(|s| s * s).sum::<f64>() / v.len() as f64;
    let ratio = energy(&y[lag..lag + x.len()]) / energy(&x);
    assert!((0.7..1.4).contains(&ratio), "energy ratio {ratio}");
    // A broken path (silence, or noise) fails the same test.
    let silence = vec![0.0; y.len()];
    assert!(ncc(&x, &silence, 0) < 0.1);
}

#[test]
fn speech_like_signal_has_a_fixed_codec_delay() {
    // Two inharmonic tones with a slow envelope: only one lag lines up.
    let mut pcm = tone(&[440.0, 1130.0], 12000.0, 0, 160 * 100);
    for (i, s) in pcm.iter_mut().enumerate() {
        let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * i as f64 / 8000.0).sin();
        *s = (f64::from(*s) * env) as i16;
    }
    let out = round_trip(&pcm);
    let x: Vec<f64> = pcm[1600..9600].iter().map(|&s| f64::from(s)).collect();
    let y: Vec<f64> = out[1600..].iter().map(|&s| f64::from(s)).collect();
    let (lag, best) = (0..240)
        .map(|l| (l, ncc(&x, &y, l)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(best > 0.9, "correlation {best} at lag {lag}");
    assert!(lag < 160, "codec delay {lag} samples");
    // A wrong alignment (e.g. dropped or duplicated samples) would not match.
    assert!(ncc(&x, &y, lag + 7) < best - 0.3);
}

#[test]
fn legacy_to_browser_maps_identity_and_clock_across_wraps() {
    let mut t = to_browser();
    let in_ts0 = u32::MAX - 300; // wraps on the third packet
    let payload = ulaw(&tone(&[700.0], 5000.0, 0, 160));
    let mut seen = Vec::new();
    for k in 0..6u32 {
        let seq = 65533u16.wrapping_add(k as u16); // wraps too
        let p = rtp(
            0,
            seq,
            in_ts0.wrapping_add(160 * k),
            0x1111,
            k == 0,
            &payload,
        );
        assert_eq!(t.push(&p), Ok(1));
        seen.extend(t.drain());
    }
    for (k, p) in seen.iter().enumerate() {
        let h = hdr(p);
        assert_eq!(h.pt, 111);
        assert_eq!(h.ssrc, TO_BROWSER.ssrc);
        assert_eq!(h.seq, TO_BROWSER.initial_sequence.wrapping_add(k as u16));
        assert_eq!(
            h.ts,
            TO_BROWSER.initial_timestamp.wrapping_add(960 * k as u32),
            "frame {k}"
        );
        assert_eq!(h.marker, k == 0);
        assert!(!h.payload.is_empty());
    }
    let c = t.counters();
    assert_eq!((c.packets_in, c.packets_out, c.frames_encoded), (6, 6, 6));
    assert_eq!(t.ssrc(), TO_BROWSER.ssrc);
}

#[test]
fn browser_to_legacy_maps_identity_and_clock_across_wraps() {
    let pcm = tone(&[700.0], 5000.0, 0, 160 * 6);
    let opus = opus_stream(&pcm, &EncoderConfig::default());
    let mut t = to_legacy();
    let mut seen = Vec::new();
    for (k, p) in opus.iter().enumerate() {
        // Re-stamp with an input clock and sequence that both wrap.
        let h = hdr(p);
        let q = rtp(
            111,
            65534u16.wrapping_add(k as u16),
            (u32::MAX - 1000).wrapping_add(960 * k as u32),
            0x2222,
            false,
            &h.payload,
        );
        assert_eq!(t.push(&q), Ok(1));
        seen.extend(t.drain());
    }
    assert_eq!(seen.len(), 6);
    for (k, p) in seen.iter().enumerate() {
        let h = hdr(p);
        assert_eq!(h.pt, 0);
        assert_eq!(h.ssrc, TO_LEGACY.ssrc);
        assert_eq!(h.seq, TO_LEGACY.initial_sequence.wrapping_add(k as u16));
        assert_eq!(
            h.ts,
            TO_LEGACY.initial_timestamp.wrapping_add(160 * k as u32)
        );
        assert_eq!(h.payload.len(), 160);
        assert_eq!(h.marker, k == 0);
    }
}

#[test]
fn legacy_packetisation_other_than_20ms_is_reframed() {
    for (ms, expect) in [
        (10usize, vec![0usize, 1, 0, 1, 0, 1]),
        (30, vec![1, 2, 1, 2, 1, 2]),
        (40, vec![2, 2, 2, 2, 2, 2]),
        (60, vec![3, 3, 3, 3, 3, 3]),
    ] {
        let n = ms * 8;
        let mut t = to_browser();
        let mut got = Vec::new();
        let mut out = Vec::new();
        for k in 0..expect.len() {
            let payload = ulaw(&tone(&[500.0], 4000.0, k * n, n));
            let p = rtp(0, k as u16, (k * n) as u32, 9, false, &payload);
            got.push(t.push(&p).unwrap());
            out.extend(t.drain());
        }
        assert_eq!(got, expect, "{ms} ms");
        let total: usize = expect.iter().sum();
        assert_eq!(out.len(), total);
        for (i, p) in out.iter().enumerate() {
            let h = hdr(p);
            assert_eq!(
                h.ts,
                TO_BROWSER.initial_timestamp.wrapping_add(960 * i as u32)
            );
            assert_eq!(h.seq, TO_BROWSER.initial_sequence.wrapping_add(i as u16));
        }
    }
}

#[test]
fn browser_packet_durations_other_than_20ms_are_reframed() {
    for ms in [10usize, 40, 60, 120] {
        let n = ms * 8;
        let mut enc =
            opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let mut t = to_legacy();
        let mut frames = Vec::new();
        for k in 0..6 {
            let pcm = tone(&[500.0], 4000.0, k * n, n);
            let mut buf = [0u8; 4000];
            let len = enc.encode(&pcm, &mut buf).unwrap();
            let p = rtp(111, k as u16, (k * n * 6) as u32, 5, false, &buf[..len]);
            let ready = t.push(&p).unwrap();
            let got = t.drain();
            assert_eq!(ready, got.len());
            frames.extend(got);
        }
        // 10 ms packets complete a frame every other packet.
        assert_eq!(frames.len(), 6 * n / 160, "{ms} ms");
        for (i, p) in frames.iter().enumerate() {
            let h = hdr(p);
            assert_eq!(
                h.ts,
                TO_LEGACY.initial_timestamp.wrapping_add(160 * i as u32)
            );
            assert_eq!(h.seq, TO_LEGACY.initial_sequence.wrapping_add(i as u16));
        }
        assert_eq!(t.counters().frames_decoded, 6);
    }
}

/// Feeds `opus` (20 ms packets) to a fresh [`OpusToG711`], skipping the
/// indices in `lose`; returns the output headers and the counters.
fn lossy(opus: &[Vec<u8>], lose: &[usize]) -> (Vec<Hdr>, Counters) {
    let mut t = to_legacy();
    let mut out = Vec::new();
    for (k, p) in opus.iter().enumerate() {
        if !lose.contains(&k) {
            t.push(p).unwrap();
            out.extend(t.drain().iter().map(|p| hdr(p)));
        }
    }
    (out, *t.counters())
}

fn assert_contiguous(out: &[Hdr]) {
    for (i, h) in out.iter().enumerate() {
        assert_eq!(
            h.ts,
            TO_LEGACY.initial_timestamp.wrapping_add(160 * i as u32)
        );
        assert_eq!(h.seq, TO_LEGACY.initial_sequence.wrapping_add(i as u16));
        assert_eq!(h.marker, i == 0, "no marker inside concealment, frame {i}");
    }
}

#[test]
fn lost_packet_is_rebuilt_from_fec() {
    let pcm = tone(&[300.0, 770.0], 9000.0, 0, 160 * 30);
    let enc = EncoderConfig {
        expected_loss_percent: 20,
        ..EncoderConfig::default()
    };
    let opus = opus_stream(&pcm, &enc);
    assert!(packet_has_fec(&hdr(&opus[11]).payload));
    let (out, c) = lossy(&opus, &[10]);
    assert_eq!(out.len(), 30, "the lost frame is filled");
    assert_contiguous(&out);
    assert_eq!((c.fec_frames, c.plc_frames), (1, 0));
    // Three in a row: PLC for two, FEC for the last.
    let (out, c) = lossy(&opus, &[10, 11, 12]);
    assert_eq!(out.len(), 30);
    assert_contiguous(&out);
    assert_eq!((c.fec_frames, c.plc_frames), (1, 2));
    assert_eq!(c.frames_decoded, 27);
}

#[test]
fn lost_packet_without_fec_is_concealed() {
    let pcm = tone(&[300.0, 770.0], 9000.0, 0, 160 * 30);
    let enc = EncoderConfig {
        inband_fec: false,
        ..EncoderConfig::default()
    };
    let opus = opus_stream(&pcm, &enc);
    assert!(!packet_has_fec(&hdr(&opus[11]).payload));
    let (out, c) = lossy(&opus, &[10]);
    assert_eq!(out.len(), 30);
    assert_contiguous(&out);
    assert_eq!((c.fec_frames, c.plc_frames), (0, 1));
    // Five is still concealed.
    let (out, c) = lossy(&opus, &[5, 6, 7, 8, 9]);
    assert_eq!(out.len(), 30);
    assert_contiguous(&out);
    assert_eq!((c.plc_frames, c.resyncs), (5, 0));
}

#[test]
fn undecodable_packet_after_a_loss_counts_as_lost_once() {
    let pcm = tone(&[300.0], 9000.0, 0, 160 * 30);
    let mut opus = opus_stream(&pcm, &EncoderConfig::default());
    // Packet 11: valid TOC (two 20 ms frames, code 1) but an odd length,
    // which libopus refuses to decode.
    let h = hdr(&opus[11]);
    opus[11] = rtp(111, h.seq, h.ts, h.ssrc, false, &[0x09, 1, 2, 3]);
    let mut t = to_legacy();
    let mut out = Vec::new();
    for (k, p) in opus.iter().enumerate() {
        if k == 10 {
            continue;
        }
        let r = t.push(p);
        assert_eq!(r.is_err(), k == 11, "packet {k}: {r:?}");
        out.extend(t.drain().iter().map(|p| hdr(p)));
    }
    assert_eq!(out.len(), 30, "one frame each for 10 and 11, no more");
    assert_contiguous(&out);
    let c = t.counters();
    assert_eq!((c.decode_errors, c.frames_decoded), (1, 28));
    assert_eq!(c.plc_frames + c.fec_frames, 2);
}

#[test]
fn long_gap_resyncs_with_a_timestamp_jump() {
    let pcm = tone(&[300.0], 9000.0, 0, 160 * 30);
    let opus = opus_stream(&pcm, &EncoderConfig::default());
    let lose: Vec<usize> = (10..16).collect();
    let (out, c) = lossy(&opus, &lose);
    assert_eq!(out.len(), 24, "six frames are not concealed");
    assert_eq!((c.plc_frames, c.fec_frames, c.resyncs), (0, 0, 1));
    for (i, h) in out.iter().enumerate() {
        let slot = if i < 10 { i } else { i + 6 };
        assert_eq!(
            h.ts,
            TO_LEGACY.initial_timestamp.wrapping_add(160 * slot as u32)
        );
        assert_eq!(h.seq, TO_LEGACY.initial_sequence.wrapping_add(i as u16));
        assert_eq!(h.marker, i == 0 || i == 10, "frame {i}");
    }
}

#[test]
fn late_duplicate_and_reordered_packets_are_dropped() {
    let pcm = tone(&[300.0], 9000.0, 0, 160 * 6);
    let opus = opus_stream(&pcm, &EncoderConfig::default());
    let mut t = to_legacy();
    assert_eq!(t.push(&opus[0]), Ok(1));
    assert_eq!(t.push(&opus[0]), Err(Error::Duplicate));
    assert_eq!(
        t.push(&opus[2]),
        Ok(3),
        "frame 1 concealed, frame 2 decoded"
    );
    assert_eq!(t.push(&opus[1]), Err(Error::Late));
    assert_eq!(t.push(&opus[3]), Ok(4));
    let out = t.drain();
    assert_eq!(out.len(), 4);
    let c = t.counters();
    assert_eq!((c.dropped, c.packets_in, c.packets_out), (2, 5, 4));

    // The same on the legacy side.
    let mut t = to_browser();
    let g = |k: u16| rtp(0, k, 160 * u32::from(k), 1, false, &[0xFF; 160]);
    assert_eq!(t.push(&g(5)), Ok(1));
    assert_eq!(t.push(&g(5)), Err(Error::Duplicate));
    assert_eq!(t.push(&g(4)), Err(Error::Late));
    assert_eq!(t.counters().dropped, 2);
}

#[test]
fn legacy_gap_advances_the_opus_timestamp() {
    let mut t = to_browser();
    let mut out = Vec::new();
    let pl = [0xFFu8; 160];
    for (seq, ts) in [(1u16, 0u32), (2, 160), (4, 480), (5, 640)] {
        assert_eq!(t.push(&rtp(0, seq, ts, 3, false, &pl)), Ok(1));
        out.extend(t.drain().iter().map(|p| hdr(p)));
    }
    let ts: Vec<u32> = out
        .iter()
        .map(|h| h.ts.wrapping_sub(TO_BROWSER.initial_timestamp))
        .collect();
    assert_eq!(ts, [0, 960, 2880, 3840]);
    let seqs: Vec<u16> = out.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [65534, 65535, 0, 1]);

    // A 5 ms gap inside a frame is filled with silence, no jump.
    let mut t = to_browser();
    let tone5 = ulaw(&tone(&[500.0], 8000.0, 0, 40));
    assert_eq!(t.push(&rtp(0, 1, 0, 3, false, &tone5)), Ok(0));
    assert_eq!(t.push(&rtp(0, 3, 80, 3, false, &tone5)), Ok(0));
    assert_eq!(t.push(&rtp(0, 4, 120, 3, false, &tone5)), Ok(1));
    // A 10 ms gap that crosses the frame end completes it with silence.
    assert_eq!(t.push(&rtp(0, 6, 240, 3, false, &tone5)), Ok(1));
    assert_eq!(t.push(&rtp(0, 7, 280, 3, false, &tone5)), Ok(2));
    let ts: Vec<u32> = t.drain().iter().map(|p| hdr(p).ts).collect();
    assert_eq!(
        ts,
        [
            TO_BROWSER.initial_timestamp,
            TO_BROWSER.initial_timestamp.wrapping_add(960)
        ]
    );
}

#[test]
fn new_input_ssrc_continues_the_output_stream() {
    let mut t = to_browser();
    let pl = [0xFFu8; 160];
    t.push(&rtp(0, 10, 5000, 1, false, &pl)).unwrap();
    t.push(&rtp(0, 11, 5160, 1, false, &pl)).unwrap();
    // Another source with unrelated numbering, half a frame in.
    t.push(&rtp(0, 60000, 123, 2, false, &pl[..80])).unwrap();
    t.push(&rtp(0, 60001, 203, 2, false, &pl)).unwrap();
    let out: Vec<Hdr> = t.drain().iter().map(|p| hdr(p)).collect();
    let ts: Vec<u32> = out
        .iter()
        .map(|h| h.ts.wrapping_sub(TO_BROWSER.initial_timestamp))
        .collect();
    assert_eq!(ts, [0, 960, 1920]);
    let markers: Vec<bool> = out.iter().map(|h| h.marker).collect();
    assert_eq!(markers, [true, false, true]);
    assert_eq!(t.counters().resyncs, 1);
    assert_eq!(t.pending(), 0);
}

fn event(key: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [key, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
}

#[test]
fn telephone_events_are_rewritten_towards_the_browser() {
    let mut t = to_browser();
    let pl = [0xFFu8; 160];
    t.push(&rtp(0, 100, 8000, 7, false, &pl)).unwrap();
    // Event starting at the next audio timestamp, 100 ms so far.
    assert_eq!(
        t.push(&rtp(101, 101, 8160, 7, true, &event(5, false, 800))),
        Ok(2)
    );
    let mut out: Vec<Hdr> = t.drain().iter().map(|p| hdr(p)).collect();
    t.push(&rtp(0, 102, 8160, 7, false, &pl)).unwrap();
    out.extend(t.drain().iter().map(|p| hdr(p)));
    // An overlong event and a two-block payload.
    let mut two = event(1, true, 20000).to_vec();
    two.extend_from_slice(&event(2, true, 100));
    t.push(&rtp(101, 103, 8160, 7, false, &two)).unwrap();
    out.extend(t.drain().iter().map(|p| hdr(p)));
    assert_eq!(t.counters().overflowed, 0);
    let pts: Vec<u8> = out.iter().map(|h| h.pt).collect();
    assert_eq!(pts, [111, 110, 111, 110], "interleaved in arrival order");
    let seqs: Vec<u16> = out.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [65534, 65535, 0, 1]);
    let base = TO_BROWSER.initial_timestamp;
    assert_eq!(out[1].ts, base.wrapping_add(960));
    assert_eq!(out[1].ssrc, TO_BROWSER.ssrc);
    assert!(out[1].marker);
    assert_eq!(out[1].payload, event(5, false, 4800));
    let mut want = event(1, true, 0xFFFF).to_vec();
    want.extend_from_slice(&event(2, true, 600));
    assert_eq!(out[3].payload, want);
    assert_eq!(out[3].ts, base.wrapping_add(960));
    assert_eq!(t.counters().events_out, 2);
    // Not whole blocks.
    assert_eq!(
        t.push(&rtp(101, 104, 8160, 7, false, &[1, 2, 3])),
        Err(Error::BadPayload)
    );
    // Unknown payload types (comfort noise here) are dropped.
    assert_eq!(
        t.push(&rtp(13, 105, 8160, 7, false, &[0x40])),
        Err(Error::PayloadType(13))
    );
}

#[test]
fn telephone_events_are_rewritten_towards_the_legacy_leg() {
    let pcm = tone(&[300.0], 9000.0, 0, 160 * 3);
    let opus = opus_stream(&pcm, &EncoderConfig::default());
    let mut t = to_legacy();
    for p in &opus[..2] {
        t.push(p).unwrap();
    }
    let h1 = hdr(&opus[1]);
    // Event started one frame (960 ticks) before the second audio packet.
    let ev = rtp(
        110,
        h1.seq.wrapping_add(1),
        h1.ts.wrapping_sub(960),
        h1.ssrc,
        true,
        &{
            let mut p = event(9, false, 4800).to_vec();
            p.extend_from_slice(&event(3, true, 0xFFFF));
            p
        },
    );
    assert_eq!(t.push(&ev), Ok(3));
    let out: Vec<Hdr> = t.drain().iter().map(|p| hdr(p)).collect();
    assert_eq!(out.len(), 3);
    let e = &out[2];
    assert_eq!((e.pt, e.ssrc, e.marker), (101, TO_LEGACY.ssrc, true));
    assert_eq!(e.seq, TO_LEGACY.initial_sequence.wrapping_add(2));
    assert_eq!(e.ts, TO_LEGACY.initial_timestamp);
    let mut want = event(9, false, 800).to_vec();
    want.extend_from_slice(&event(3, true, 10923));
    assert_eq!(e.payload, want);
}

#[test]
fn duration_scaling_saturates_and_rounds() {
    assert_eq!(scale_duration_up(0), 0);
    assert_eq!(scale_duration_up(160), 960);
    assert_eq!(scale_duration_up(10922), 65532);
    assert_eq!(scale_duration_up(10923), 0xFFFF);
    assert_eq!(scale_duration_up(u16::MAX), 0xFFFF);
    assert_eq!(scale_duration_down(960), 160);
    assert_eq!(scale_duration_down(962), 160);
    assert_eq!(scale_duration_down(963), 161);
    assert_eq!(scale_duration_down(u16::MAX), 10923);
}

#[test]
fn events_without_negotiation_are_dropped() {
    let formats = Formats {
        telephone_event: None,
        ..Formats::typical()
    };
    let mut t = G711ToOpus::new(&formats, TO_BROWSER, &EncoderConfig::default()).unwrap();
    assert_eq!(
        t.push(&rtp(101, 1, 0, 1, false, &event(1, false, 160))),
        Err(Error::PayloadType(101))
    );
}

#[test]
fn pcma_leg() {
    let formats = Formats {
        g711: PayloadFormat::new(8, 8000),
        law: Law::Alaw,
        ..Formats::typical()
    };
    let mut up = G711ToOpus::new(&formats, TO_BROWSER, &EncoderConfig::default()).unwrap();
    let mut down = OpusToG711::new(&formats, TO_LEGACY, &DecoderConfig::default()).unwrap();
    let pcm = tone(&[1000.0], 10000.0, 0, 160 * 20);
    let mut last = Vec::new();
    for (k, chunk) in pcm.chunks(160).enumerate() {
        let mut a = vec![0u8; 160];
        g711::encode_alaw(chunk, &mut a);
        // PCMU payload type is not this leg's: refused.
        assert_eq!(
            up.push(&rtp(0, k as u16, 0, 1, false, &a)),
            Err(Error::PayloadType(0))
        );
        up.push(&rtp(8, k as u16, 160 * k as u32, 1, false, &a))
            .unwrap();
        for p in up.drain() {
            down.push(&p).unwrap();
            last = down.drain();
        }
    }
    let h = hdr(&last[0]);
    assert_eq!(h.pt, 8);
    let mut s = [0i16; 160];
    g711::decode_alaw(&h.payload, &mut s);
    let rms = (s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 160.0).sqrt();
    assert!(rms > 3000.0, "tone comes through as A-law, rms {rms}");
}

#[test]
fn configuration_errors_are_reported_at_construction() {
    let enc = EncoderConfig::default();
    let try_up = |f: Formats| G711ToOpus::new(&f, TO_BROWSER, &enc).err();
    let try_down = |f: Formats, d: DecoderConfig| OpusToG711::new(&f, TO_LEGACY, &d).err();
    let t = Formats::typical();
    let ev = t.telephone_event.unwrap();
    assert_eq!(
        try_up(Formats {
            opus: PayloadFormat::new(128, 48000),
            ..t
        }),
        Some(ConfigError::PayloadType(128))
    );
    assert_eq!(
        try_up(Formats {
            g711: PayloadFormat::new(0, 16000),
            ..t
        }),
        Some(ConfigError::ClockRate(16000))
    );
    assert_eq!(
        try_down(
            Formats {
                opus: PayloadFormat::new(111, 8000),
                ..t
            },
            DecoderConfig::default()
        ),
        Some(ConfigError::ClockRate(8000))
    );
    assert_eq!(
        try_up(Formats {
            telephone_event: Some(EventFormats {
                opus: PayloadFormat::new(101, 8000),
                ..ev
            }),
            ..t
        }),
        Some(ConfigError::ClockRate(8000)),
        "telephone-event/8000 on the Opus leg"
    );
    assert_eq!(
        try_down(
            Formats {
                telephone_event: Some(EventFormats {
                    g711: PayloadFormat::new(0, 8000),
                    ..ev
                }),
                ..t
            },
            DecoderConfig::default()
        ),
        Some(ConfigError::PayloadType(0))
    );
    assert_eq!(
        try_down(
            t,
            DecoderConfig {
                max_conceal_frames: 7
            }
        ),
        Some(ConfigError::ConcealFrames(7))
    );
    assert_eq!(
        G711ToOpus::new(
            &t,
            TO_BROWSER,
            &EncoderConfig {
                complexity: 11,
                ..enc
            }
        )
        .err(),
        Some(ConfigError::Complexity(11))
    );
    let mut ok = G711ToOpus::new(&t, TO_BROWSER, &enc).unwrap();
    assert!(ok.set_expected_loss_percent(30).is_ok());
    assert!(ok.set_bitrate(100).is_err());
}

#[test]
fn small_buffers_and_undrained_output() {
    let mut t = to_browser();
    let pl = [0xFFu8; 160];
    t.push(&rtp(0, 1, 0, 1, false, &pl)).unwrap();
    let mut small = [0u8; 100];
    assert_eq!(t.poll(&mut small), Err(Error::BufferTooSmall));
    assert_eq!(t.pending(), 1, "nothing consumed");
    assert_eq!(t.drain().len(), 1);
    // Never polling keeps the newest 16 frames.
    for k in 2..40u16 {
        t.push(&rtp(0, k, 160 * u32::from(k - 1), 1, false, &pl))
            .unwrap();
    }
    assert_eq!(t.pending(), 16);
    assert_eq!(t.counters().overflowed, 38 - 16);
    let out: Vec<Hdr> = t.drain().iter().map(|p| hdr(p)).collect();
    // Timestamps still move forward, sequence numbers stay consecutive.
    assert_eq!(
        out[0].ts.wrapping_sub(TO_BROWSER.initial_timestamp),
        960 * 23
    );
    assert_eq!(out[0].seq, TO_BROWSER.initial_sequence.wrapping_add(1));

    let mut t = to_legacy();
    let mut small = [0u8; 171];
    assert_eq!(t.poll(&mut small), Ok(None), "nothing pending");
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x9E37_79B9u32;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut up = to_browser();
    let mut down = to_legacy();
    let mut seq = 0u16;
    for i in 0..3000u32 {
        let len = (rnd() % 300) as usize;
        let body: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        seq = seq.wrapping_add((rnd() % 3) as u16);
        let ts = i.wrapping_mul(960).wrapping_add(rnd() % 2000);
        // Well-formed headers with random payloads, and random bytes.
        let pt = [0u8, 101, 111, 110, 13][(rnd() % 5) as usize];
        let pkt = if i % 4 == 0 {
            body.clone()
        } else {
            rtp(pt, seq, ts, rnd() % 2, false, &body)
        };
        let _ = up.push(&pkt);
        let _ = down.push(&pkt);
        for p in up.drain().iter().chain(down.drain().iter()) {
            let h = hdr(p);
            assert!(h.ssrc == TO_BROWSER.ssrc || h.ssrc == TO_LEGACY.ssrc);
        }
    }
    let c = down.counters();
    assert!(c.decode_errors + c.frames_decoded > 0);
    assert!(c.dropped > 0);
    assert_eq!(c.packets_in, 3000);
    // Malformed RTP headers are reported as such.
    assert!(matches!(up.push(&[0x80, 0]), Err(Error::Rtp(_))));
}
