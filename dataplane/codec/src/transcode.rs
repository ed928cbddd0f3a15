//! Sans-IO, per-direction RTP transcoders between the legacy leg (G.711,
//! 8 kHz RTP clock) and the browser leg (Opus, 48 kHz RTP clock).
//!
//! - [`G711ToOpus`]: legacy -> browser.
//! - [`OpusToG711`]: browser -> legacy.
//!
//! # API: `push` then drain `poll`
//!
//! One input packet may yield zero, one or several output packets (a 10 ms
//! G.711 packet completes a 20 ms Opus frame only every other time; a 60 ms
//! Opus packet plus concealment of a loss yields several 20 ms G.711
//! packets). So [`push`](G711ToOpus::push) takes one plaintext RTP packet
//! and returns how many output packets are ready, and
//! [`poll`](G711ToOpus::poll) writes the next one into a caller-provided
//! buffer (at least `MAX_PACKET_LEN` bytes) and returns its length, or
//! `None` when drained. Nothing allocates after construction: audio waits in
//! a fixed queue of 20 ms linear frames and is encoded inside `poll`,
//! straight into the caller's buffer (which can have room for an SRTP tag).
//! Drain `poll` after every `push`; if the caller does not, the queue keeps
//! the newest 16 frames and counts the rest in
//! [`Counters::overflowed`].
//!
//! # Output stream identity
//!
//! Each transcoder owns its output stream: SSRC, initial sequence number and
//! initial timestamp come from [`OutputStream`] (pick them at random in the
//! control plane). Sequence numbers are consecutive over every packet
//! emitted, audio and telephone-events alike, whatever happens on input.
//!
//! # Clock mapping
//!
//! - Legacy -> browser: `out_ts = out_base + 6 * (in_ts - in_base)` (mod
//!   2^32), anchored at the first packet. Opus frames are 960 ticks apart.
//! - Browser -> legacy: the output timestamp is a counter that advances by
//!   exactly 160 per 20 ms frame generated (decoded, FEC-rebuilt or
//!   concealed), so the legacy leg sees contiguous timestamps through loss
//!   and jitter. telephone-events are placed relative to the last decoded
//!   Opus packet: `out = anchor_out + (in_ts - anchor_in) / 6`.
//!
//! # Loss, reordering and resynchronisation
//!
//! Sequence numbers follow RFC 3550 A.1: a packet up to 100 behind the last
//! accepted one is late (dropped, [`Error::Late`]), the same number is a
//! duplicate ([`Error::Duplicate`]); up to 3000 ahead is in order with a gap;
//! anything else, or a new input SSRC, restarts the input stream (the output
//! stream continues seamlessly, with the marker bit set).
//!
//! - Legacy -> browser: a forward timestamp gap inside the current 20 ms
//!   frame is filled with silence; a larger gap completes the current frame
//!   with silence and starts the next frame at the new packet, so the Opus
//!   timestamp jumps by the missing duration (like silence suppression;
//!   sequence numbers stay consecutive). A backward timestamp step (or one
//!   whose 48 kHz image would exceed 2^31) re-anchors the mapping so the
//!   output stays contiguous.
//! - Browser -> legacy: a gap of up to `max_conceal_frames` × 20 ms
//!   (default 5, at most 6) is concealed before the packet after it is
//!   decoded: when that packet carries in-band FEC, libopus conceals the gap
//!   with PLC except for the last frame, which it rebuilds from the FEC
//!   ([`Counters::fec_frames`]); otherwise all of it is PLC
//!   ([`Counters::plc_frames`]). A longer gap is not concealed: the partial
//!   frame is completed with silence and the output timestamp jumps by the
//!   remaining gap with the marker bit set, like the end of a silence period
//!   (e.g. Opus DTX). A packet that fails to decode counts as lost, so the
//!   next one conceals it.
//!
//! # RFC 4733 telephone-events
//!
//! Events are not transcoded: their payload is copied, the payload type,
//! SSRC, sequence number and timestamp are rewritten into the output stream
//! (so they interleave with the audio), and the duration field of every
//! 4-byte event block is scaled by the clock ratio: ×6 (saturating at
//! 0xFFFF) towards the browser, ÷6 (rounded) towards the legacy leg. At
//! 48 kHz the 16-bit duration overflows after 1.365 s: a longer event from
//! the legacy leg keeps reporting 0xFFFF (RFC 4733 §2.5.2.3 segmentation is
//! not done). An event waits in a one-packet slot and comes out of `poll` in
//! order after the audio frames completed before it.

use strait_rtp::rtp::{FixedHeader, RtpPacket, FIXED_HEADER_LEN};
use strait_rtp::seq;

use crate::g711::Law;
use crate::opus::{
    self, Decoder, Encoder, EncoderConfig, FRAME_SAMPLES, GRANULE_SAMPLES, MAX_FRAME_BYTES,
    MAX_PACKET_SAMPLES,
};
use crate::{ConfigError, Error};

/// RTP clock rate of G.711 (and of telephone-events on the legacy leg).
pub const G711_CLOCK: u32 = 8000;
/// RTP clock rate of Opus (and of telephone-events on the browser leg).
pub const OPUS_CLOCK: u32 = 48000;
/// Opus RTP clock ticks per G.711 clock tick.
pub const CLOCK_RATIO: u32 = OPUS_CLOCK / G711_CLOCK;
/// Longest G.711 payload accepted (120 ms).
pub const MAX_G711_PAYLOAD: usize = 960;
/// Longest Opus payload accepted (a UDP datagram's worth; the longest
/// valid Opus packet, 120 ms of 1275-byte frames, is about 61 KB).
pub const MAX_OPUS_PAYLOAD: usize = 65535;
/// Longest telephone-event payload accepted (32 event blocks).
pub const MAX_EVENT_PAYLOAD: usize = 128;

/// Queue capacity in 20 ms frames.
const QUEUE_FRAMES: usize = 16;
/// RFC 3550 A.1: packets this far behind are late, not a restart.
const MAX_MISORDER: i32 = 100;
/// RFC 3550 A.1: packets this far ahead are a gap, not a restart.
const MAX_DROPOUT: i32 = 3000;
/// Largest G.711 timestamp gap whose 48 kHz image stays below 2^31.
const MAX_G711_GAP: i32 = i32::MAX / CLOCK_RATIO as i32;

/// A payload type with its RTP clock rate, as negotiated (SDP `rtpmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadFormat {
    /// RTP payload type, 0..=127.
    pub pt: u8,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
}

impl PayloadFormat {
    /// A format with the given payload type and clock rate.
    pub const fn new(pt: u8, clock_rate: u32) -> Self {
        Self { pt, clock_rate }
    }
}

/// telephone-event payload formats of both legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFormats {
    /// On the legacy leg (clock must be 8000).
    pub g711: PayloadFormat,
    /// On the browser leg (clock must be 48000).
    pub opus: PayloadFormat,
}

/// What was negotiated on both legs; shared by both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// G.711 payload format on the legacy leg (clock must be 8000).
    pub g711: PayloadFormat,
    /// Which G.711 law the legacy leg uses.
    pub law: Law,
    /// Opus payload format on the browser leg (clock must be 48000).
    pub opus: PayloadFormat,
    /// telephone-event on both legs, or `None` to drop events.
    pub telephone_event: Option<EventFormats>,
}

impl Formats {
    /// PCMU (PT 0) on the legacy leg, Opus PT 111 on the browser leg,
    /// telephone-event PT 101 (legacy) and 110 (browser).
    pub const fn typical() -> Self {
        Self {
            g711: PayloadFormat::new(0, G711_CLOCK),
            law: Law::Ulaw,
            opus: PayloadFormat::new(111, OPUS_CLOCK),
            telephone_event: Some(EventFormats {
                g711: PayloadFormat::new(101, G711_CLOCK),
                opus: PayloadFormat::new(110, OPUS_CLOCK),
            }),
        }
    }

    /// Checks payload types (0..=127, audio and event distinct per leg) and
    /// clock rates.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |f: PayloadFormat, clock: u32| {
            if f.pt > 127 {
                Err(ConfigError::PayloadType(f.pt))
            } else if f.clock_rate != clock {
                Err(ConfigError::ClockRate(f.clock_rate))
            } else {
                Ok(())
            }
        };
        check(self.g711, G711_CLOCK)?;
        check(self.opus, OPUS_CLOCK)?;
        if let Some(ev) = self.telephone_event {
            check(ev.g711, G711_CLOCK)?;
            check(ev.opus, OPUS_CLOCK)?;
            if ev.g711.pt == self.g711.pt {
                return Err(ConfigError::PayloadType(ev.g711.pt));
            }
            if ev.opus.pt == self.opus.pt {
                return Err(ConfigError::PayloadType(ev.opus.pt));
            }
        }
        Ok(())
    }
}

/// Identity of a transcoder's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputStream {
    /// Output SSRC.
    pub ssrc: u32,
    /// Sequence number of the first output packet.
    pub initial_sequence: u16,
    /// Timestamp the first input timestamp maps to (output clock).
    pub initial_timestamp: u32,
}

/// Per-transcoder counters, plain `u64`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets given to `push`.
    pub packets_in: u64,
    /// Packets written by `poll`.
    pub packets_out: u64,
    /// telephone-event packets forwarded (written by `poll`).
    pub events_out: u64,
    /// Input packets decoded (G.711 packets, or Opus packets).
    pub frames_decoded: u64,
    /// 20 ms output frames encoded (Opus or G.711).
    pub frames_encoded: u64,
    /// 20 ms frames (rounded up) synthesised by packet loss concealment.
    pub plc_frames: u64,
    /// 20 ms frames (rounded up) rebuilt from in-band FEC.
    pub fec_frames: u64,
    /// Input packets dropped: malformed, unexpected payload type, bad
    /// payload, late, duplicate.
    pub dropped: u64,
    /// Opus packets that failed to decode (treated as lost).
    pub decode_errors: u64,
    /// Frames libopus failed to encode (dropped).
    pub encode_errors: u64,
    /// Input stream restarts and re-anchorings (new SSRC, sequence or
    /// timestamp discontinuity, gap too long to conceal).
    pub resyncs: u64,
    /// Frames or events discarded because `poll` was not drained.
    pub overflowed: u64,
}

/// One 20 ms frame of linear audio with its output timestamp.
#[derive(Debug, Clone, Copy)]
struct Frame {
    ts: u32,
    marker: bool,
    pcm: [i16; FRAME_SAMPLES],
}

const EMPTY_FRAME: Frame = Frame {
    ts: 0,
    marker: false,
    pcm: [0; FRAME_SAMPLES],
};

/// A fixed queue of complete frames plus the frame being filled.
#[derive(Debug)]
struct Frames {
    slots: Box<[Frame; QUEUE_FRAMES]>,
    head: usize,
    len: usize,
    partial: Frame,
    fill: usize,
    /// Output timestamp step per frame.
    step: u32,
}

impl Frames {
    fn new(step: u32, first_ts: u32) -> Self {
        Self {
            slots: Box::new([EMPTY_FRAME; QUEUE_FRAMES]),
            head: 0,
            len: 0,
            partial: Frame {
                ts: first_ts,
                ..EMPTY_FRAME
            },
            fill: 0,
            step,
        }
    }

    /// Output timestamp of the next sample appended (8 kHz output only).
    fn next_sample_ts(&self) -> u32 {
        self.partial.ts.wrapping_add(self.fill as u32)
    }

    /// Moves the full partial frame to the queue; returns true when the
    /// oldest queued frame had to be discarded.
    fn commit(&mut self) -> bool {
        let mut overflow = false;
        if self.len == QUEUE_FRAMES {
            self.head = (self.head + 1) % QUEUE_FRAMES;
            self.len -= 1;
            overflow = true;
        }
        self.slots[(self.head + self.len) % QUEUE_FRAMES] = self.partial;
        self.len += 1;
        self.partial.ts = self.partial.ts.wrapping_add(self.step);
        self.partial.marker = false;
        self.fill = 0;
        overflow
    }

    /// Appends samples produced by `fill_with(dst)`, which must fill all of
    /// `dst`; commits full frames. Returns the number of frames discarded.
    fn append(&mut self, mut n: usize, mut fill_with: impl FnMut(&mut [i16])) -> u64 {
        let mut lost = 0;
        while n > 0 {
            let take = n.min(FRAME_SAMPLES - self.fill);
            fill_with(&mut self.partial.pcm[self.fill..self.fill + take]);
            self.fill += take;
            n -= take;
            if self.fill == FRAME_SAMPLES {
                lost += u64::from(self.commit());
            }
        }
        lost
    }

    /// Appends `samples`.
    fn append_slice(&mut self, samples: &[i16]) -> u64 {
        let mut at = 0;
        self.append(samples.len(), |dst| {
            dst.copy_from_slice(&samples[at..at + dst.len()]);
            at += dst.len();
        })
    }

    /// Appends `n` samples of silence.
    fn append_silence(&mut self, n: usize) -> u64 {
        self.append(n, |dst| dst.fill(0))
    }

    /// Completes a partial frame with silence; returns (samples padded,
    /// frames discarded).
    fn pad(&mut self) -> (usize, u64) {
        if self.fill == 0 {
            return (0, 0);
        }
        let n = FRAME_SAMPLES - self.fill;
        (n, self.append_silence(n))
    }

    fn pop(&mut self) -> Option<Frame> {
        if self.len == 0 {
            return None;
        }
        let f = self.slots[self.head];
        self.head = (self.head + 1) % QUEUE_FRAMES;
        self.len -= 1;
        Some(f)
    }
}

/// A rewritten telephone-event packet waiting for `poll`.
#[derive(Debug)]
struct EventSlot {
    /// Audio frames queued before the event when it arrived.
    after_frames: usize,
    pending: bool,
    header: FixedHeader,
    payload: [u8; MAX_EVENT_PAYLOAD],
    len: usize,
}

impl EventSlot {
    fn new() -> Self {
        Self {
            after_frames: 0,
            pending: false,
            header: FixedHeader::default(),
            payload: [0; MAX_EVENT_PAYLOAD],
            len: 0,
        }
    }

    /// Stores an event; returns true when an undrained one was replaced.
    fn store(&mut self, header: FixedHeader, payload: &[u8], scale: impl Fn(u16) -> u16) -> bool {
        let replaced = self.pending;
        self.payload[..payload.len()].copy_from_slice(payload);
        self.len = payload.len();
        for block in self.payload[..self.len].chunks_exact_mut(4) {
            let d = scale(u16::from_be_bytes([block[2], block[3]]));
            block[2..4].copy_from_slice(&d.to_be_bytes());
        }
        self.header = header;
        self.pending = true;
        replaced
    }

    /// A queued audio frame was emitted or discarded.
    fn frame_left(&mut self) {
        self.after_frames = self.after_frames.saturating_sub(1);
    }

    fn due(&self) -> bool {
        self.pending && self.after_frames == 0
    }
}

/// Scales an event duration from 8 kHz to 48 kHz, saturating.
pub fn scale_duration_up(d: u16) -> u16 {
    u16::try_from(u32::from(d) * CLOCK_RATIO).unwrap_or(u16::MAX)
}

/// Scales an event duration from 48 kHz to 8 kHz, rounding to nearest.
pub fn scale_duration_down(d: u16) -> u16 {
    ((u32::from(d) + CLOCK_RATIO / 2) / CLOCK_RATIO) as u16
}

fn valid_event_payload(p: &[u8]) -> bool {
    // Whole 4-byte blocks (`is_multiple_of` is newer than our MSRV).
    !p.is_empty() && p.len() & 3 == 0 && p.len() <= MAX_EVENT_PAYLOAD
}

/// Sequence-number verdict for an input packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The first packet ever.
    First,
    /// In order (possibly after a gap).
    Next,
    /// New SSRC or a sequence discontinuity: a new input stream.
    Restart,
}

/// Tracks the input stream's SSRC and highest sequence number.
#[derive(Debug, Clone, Copy, Default)]
struct InputTrack {
    started: bool,
    ssrc: u32,
    last_seq: u16,
}

impl InputTrack {
    fn classify(&mut self, ssrc: u32, sequence: u16) -> Result<Verdict, Error> {
        let verdict = if !self.started {
            Verdict::First
        } else if ssrc != self.ssrc {
            Verdict::Restart
        } else {
            match seq::diff(sequence, self.last_seq) {
                0 => return Err(Error::Duplicate),
                d if (-MAX_MISORDER..0).contains(&d) => return Err(Error::Late),
                d if (1..=MAX_DROPOUT).contains(&d) => Verdict::Next,
                _ => Verdict::Restart,
            }
        };
        self.started = true;
        self.ssrc = ssrc;
        self.last_seq = sequence;
        Ok(verdict)
    }
}

/// What an input packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Audio,
    Event,
}

/// Parses an input packet and classifies it by payload type; returns the
/// packet, its payload (without padding) and its kind.
fn parse_input<'a>(
    input: &'a [u8],
    audio_pt: u8,
    event_pt: Option<u8>,
) -> Result<(RtpPacket<'a>, &'a [u8], Kind), Error> {
    let pkt = RtpPacket::parse(input)?;
    let payload = pkt.payload()?;
    let pt = pkt.payload_type();
    let kind = if pt == audio_pt {
        Kind::Audio
    } else if Some(pt) == event_pt {
        if !valid_event_payload(payload) {
            return Err(Error::BadPayload);
        }
        Kind::Event
    } else {
        return Err(Error::PayloadType(pt));
    };
    Ok((pkt, payload, kind))
}

/// Output sequence number and SSRC.
#[derive(Debug, Clone, Copy)]
struct OutState {
    ssrc: u32,
    next_seq: u16,
}

/// Linear timestamp mapping from the G.711 clock to the Opus clock.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    in_base: u32,
    out_base: u32,
}

impl Mapping {
    fn map(&self, in_ts: u32) -> u32 {
        self.out_base
            .wrapping_add(in_ts.wrapping_sub(self.in_base).wrapping_mul(CLOCK_RATIO))
    }
}

/// Legacy -> browser: G.711 RTP in, Opus RTP out. See the [module
/// docs](self).
#[derive(Debug)]
pub struct G711ToOpus {
    law: Law,
    in_audio_pt: u8,
    in_event_pt: Option<u8>,
    out_audio_pt: u8,
    out_event_pt: u8,
    initial_ts: u32,
    out: OutState,
    encoder: Encoder,
    input: InputTrack,
    map: Option<Mapping>,
    /// Input timestamp of the next expected audio sample; `None` until
    /// audio (re)starts.
    audio: Option<u32>,
    marker: bool,
    frames: Frames,
    event: EventSlot,
    counters: Counters,
}

impl G711ToOpus {
    /// Room `poll` needs in its output buffer: a 12-byte header and the
    /// largest Opus frame.
    pub const MAX_PACKET_LEN: usize = FIXED_HEADER_LEN + MAX_FRAME_BYTES;

    /// Creates a transcoder; configuration errors are reported here.
    pub fn new(
        formats: &Formats,
        output: OutputStream,
        encoder: &EncoderConfig,
    ) -> Result<Self, ConfigError> {
        formats.validate()?;
        Ok(Self {
            law: formats.law,
            in_audio_pt: formats.g711.pt,
            in_event_pt: formats.telephone_event.map(|e| e.g711.pt),
            out_audio_pt: formats.opus.pt,
            out_event_pt: formats.telephone_event.map_or(0, |e| e.opus.pt),
            initial_ts: output.initial_timestamp,
            out: OutState {
                ssrc: output.ssrc,
                next_seq: output.initial_sequence,
            },
            encoder: Encoder::new(encoder)?,
            input: InputTrack::default(),
            map: None,
            audio: None,
            marker: true,
            frames: Frames::new(FRAME_SAMPLES as u32 * CLOCK_RATIO, output.initial_timestamp),
            event: EventSlot::new(),
            counters: Counters::default(),
        })
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The output SSRC.
    pub fn ssrc(&self) -> u32 {
        self.out.ssrc
    }

    /// Updates the encoder's expected packet loss (e.g. from RTCP).
    pub fn set_expected_loss_percent(&mut self, percent: u8) -> Result<(), ConfigError> {
        self.encoder.set_expected_loss_percent(percent)
    }

    /// Updates the encoder's target bitrate.
    pub fn set_bitrate(&mut self, bitrate: u32) -> Result<(), ConfigError> {
        self.encoder.set_bitrate(bitrate)
    }

    /// Output packets ready for `poll`.
    pub fn pending(&self) -> usize {
        self.frames.len + usize::from(self.event.pending)
    }

    /// Takes one plaintext RTP packet from the legacy leg. Returns the
    /// number of output packets ready for [`poll`](Self::poll); errors mean
    /// the packet was dropped (and counted).
    pub fn push(&mut self, input: &[u8]) -> Result<usize, Error> {
        self.counters.packets_in += 1;
        let r = self.push_inner(input);
        if r.is_err() {
            self.counters.dropped += 1;
        }
        r.map(|()| self.pending())
    }

    fn push_inner(&mut self, input: &[u8]) -> Result<(), Error> {
        let (pkt, payload, kind) = parse_input(input, self.in_audio_pt, self.in_event_pt)?;
        if kind == Kind::Audio && (payload.is_empty() || payload.len() > MAX_G711_PAYLOAD) {
            return Err(Error::BadPayload);
        }
        let ts = pkt.timestamp();
        if self.input.classify(pkt.ssrc(), pkt.sequence())? == Verdict::Restart {
            self.restart(ts);
        }
        let map = *self.map.get_or_insert(Mapping {
            in_base: ts,
            out_base: self.initial_ts,
        });
        match kind {
            Kind::Event => {
                let header = FixedHeader {
                    marker: pkt.marker(),
                    payload_type: self.out_event_pt,
                    sequence: 0,
                    timestamp: map.map(ts),
                    ssrc: self.out.ssrc,
                };
                self.event.after_frames = self.frames.len;
                if self.event.store(header, payload, scale_duration_up) {
                    self.counters.overflowed += 1;
                }
            }
            Kind::Audio => {
                self.counters.frames_decoded += 1;
                self.place_audio(ts, map);
                if pkt.marker() {
                    self.frames.partial.marker = true;
                }
                if std::mem::take(&mut self.marker) {
                    self.frames.partial.marker = true;
                }
                let law = self.law;
                let mut at = 0;
                let lost = self.frames.append(payload.len(), |dst| {
                    law.decode_frame(&payload[at..at + dst.len()], dst);
                    at += dst.len();
                });
                self.note_lost(lost);
                self.audio = Some(ts.wrapping_add(payload.len() as u32));
            }
        }
        Ok(())
    }

    /// A new input stream: finish the partial frame and re-anchor the
    /// mapping so the next output frame follows the last one.
    fn restart(&mut self, ts: u32) {
        self.counters.resyncs += 1;
        let (_, lost) = self.frames.pad();
        self.note_lost(lost);
        // The (empty) partial frame holds the next free output timestamp:
        // the configured initial one, or the one after the last frame.
        self.map = Some(Mapping {
            in_base: ts,
            out_base: self.frames.partial.ts,
        });
        self.audio = None;
        self.marker = true;
    }

    /// Positions the partial frame for an audio packet at input time `ts`.
    /// `self.audio` holds the input timestamp of the next expected sample.
    fn place_audio(&mut self, ts: u32, map: Mapping) {
        let Some(expected) = self.audio else {
            // Audio (re)starts on an empty partial frame, which holds the
            // earliest timestamp the next frame may have. An event that
            // anchored the mapping may put `ts` before it: re-anchor then.
            let at = map.map(ts);
            if (at.wrapping_sub(self.frames.partial.ts) as i32) < 0 {
                self.map = Some(Mapping {
                    in_base: ts,
                    out_base: self.frames.partial.ts,
                });
            } else {
                self.frames.partial.ts = at;
            }
            self.audio = Some(ts);
            return;
        };
        let gap = ts.wrapping_sub(expected) as i32;
        if gap == 0 {
            return;
        }
        if !(0..=MAX_G711_GAP).contains(&gap) {
            // Timestamps went backwards or jumped absurdly: re-anchor so the
            // next frame follows the current one.
            self.counters.resyncs += 1;
            let (_, lost) = self.frames.pad();
            self.note_lost(lost);
            self.map = Some(Mapping {
                in_base: ts,
                out_base: self.frames.partial.ts,
            });
            self.audio = Some(ts);
            self.marker = true;
            return;
        }
        let gap = gap as usize;
        if self.frames.fill + gap < FRAME_SAMPLES {
            // Inside the current frame: fill with silence.
            let lost = self.frames.append_silence(gap);
            self.note_lost(lost);
            self.audio = Some(ts);
            return;
        }
        // Past the current frame: finish it and start afresh at `ts`; the
        // output timestamp jumps by the gap.
        let (_, lost) = self.frames.pad();
        self.note_lost(lost);
        self.frames.partial.ts = map.map(ts);
        self.audio = Some(ts);
    }

    fn note_lost(&mut self, lost: u64) {
        self.counters.overflowed += lost;
        for _ in 0..lost {
            self.event.frame_left();
        }
    }

    /// Writes the next output packet into `out` and returns its length, or
    /// `None` when nothing is pending. `out` must hold
    /// [`MAX_PACKET_LEN`](Self::MAX_PACKET_LEN) bytes, otherwise
    /// [`Error::BufferTooSmall`] is returned and nothing is consumed. On
    /// [`Error::Encode`] the frame is dropped; poll again.
    pub fn poll(&mut self, out: &mut [u8]) -> Result<Option<usize>, Error> {
        if self.pending() == 0 {
            return Ok(None);
        }
        if out.len() < Self::MAX_PACKET_LEN {
            return Err(Error::BufferTooSmall);
        }
        if self.event.due() {
            let n = write_event(&mut self.event, &mut self.out, out)?;
            self.counters.packets_out += 1;
            self.counters.events_out += 1;
            return Ok(Some(n));
        }
        let frame = self.frames.pop().expect("pending() > 0 and no event due");
        self.event.frame_left();
        let (head, body) = out.split_at_mut(FIXED_HEADER_LEN);
        let n = match self.encoder.encode(&frame.pcm, body) {
            Ok(n) => n,
            Err(e) => {
                self.counters.encode_errors += 1;
                return Err(e);
            }
        };
        FixedHeader {
            marker: frame.marker,
            payload_type: self.out_audio_pt,
            sequence: self.out.next_seq,
            timestamp: frame.ts,
            ssrc: self.out.ssrc,
        }
        .write(head)?;
        self.out.next_seq = self.out.next_seq.wrapping_add(1);
        self.counters.packets_out += 1;
        self.counters.frames_encoded += 1;
        Ok(Some(FIXED_HEADER_LEN + n))
    }
}

/// Writes the pending event into `out` with the next sequence number.
fn write_event(ev: &mut EventSlot, st: &mut OutState, out: &mut [u8]) -> Result<usize, Error> {
    let total = FIXED_HEADER_LEN + ev.len;
    let Some(dst) = out.get_mut(..total) else {
        return Err(Error::BufferTooSmall);
    };
    FixedHeader {
        sequence: st.next_seq,
        ..ev.header
    }
    .write(dst)?;
    dst[FIXED_HEADER_LEN..].copy_from_slice(&ev.payload[..ev.len]);
    ev.pending = false;
    st.next_seq = st.next_seq.wrapping_add(1);
    Ok(total)
}

/// Decoder settings of [`OpusToG711`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Longest gap concealed with PLC/FEC, in 20 ms frames (0..=6). Longer
    /// gaps resynchronise instead. Default 5.
    pub max_conceal_frames: u8,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_conceal_frames: 5,
        }
    }
}

/// Browser -> legacy: Opus RTP in, G.711 RTP out. See the [module
/// docs](self).
#[derive(Debug)]
pub struct OpusToG711 {
    law: Law,
    in_audio_pt: u8,
    in_event_pt: Option<u8>,
    out_audio_pt: u8,
    out_event_pt: u8,
    max_conceal: usize,
    out: OutState,
    decoder: Decoder,
    input: InputTrack,
    /// Input timestamp (48 kHz) expected next, after the last decoded packet.
    expected: Option<u32>,
    /// (input ts, output ts) of the last decoded packet's first sample, for
    /// placing telephone-events.
    anchor: Option<(u32, u32)>,
    marker: bool,
    frames: Frames,
    event: EventSlot,
    scratch: Box<[i16; MAX_PACKET_SAMPLES]>,
    counters: Counters,
}

impl OpusToG711 {
    /// Room `poll` needs in its output buffer: a 12-byte header and 20 ms
    /// of G.711 (events are smaller).
    pub const MAX_PACKET_LEN: usize = FIXED_HEADER_LEN + FRAME_SAMPLES;

    /// Creates a transcoder; configuration errors are reported here.
    pub fn new(
        formats: &Formats,
        output: OutputStream,
        decoder: &DecoderConfig,
    ) -> Result<Self, ConfigError> {
        formats.validate()?;
        let max_conceal = usize::from(decoder.max_conceal_frames) * FRAME_SAMPLES;
        if max_conceal > MAX_PACKET_SAMPLES {
            return Err(ConfigError::ConcealFrames(decoder.max_conceal_frames));
        }
        Ok(Self {
            law: formats.law,
            in_audio_pt: formats.opus.pt,
            in_event_pt: formats.telephone_event.map(|e| e.opus.pt),
            out_audio_pt: formats.g711.pt,
            out_event_pt: formats.telephone_event.map_or(0, |e| e.g711.pt),
            max_conceal,
            out: OutState {
                ssrc: output.ssrc,
                next_seq: output.initial_sequence,
            },
            decoder: Decoder::new()?,
            input: InputTrack::default(),
            expected: None,
            anchor: None,
            marker: true,
            frames: Frames::new(FRAME_SAMPLES as u32, output.initial_timestamp),
            event: EventSlot::new(),
            scratch: Box::new([0; MAX_PACKET_SAMPLES]),
            counters: Counters::default(),
        })
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The output SSRC.
    pub fn ssrc(&self) -> u32 {
        self.out.ssrc
    }

    /// Output packets ready for `poll`.
    pub fn pending(&self) -> usize {
        self.frames.len + usize::from(self.event.pending)
    }

    /// Takes one plaintext RTP packet from the browser leg. Returns the
    /// number of output packets ready for [`poll`](Self::poll); errors mean
    /// the packet was dropped (and counted).
    pub fn push(&mut self, input: &[u8]) -> Result<usize, Error> {
        self.counters.packets_in += 1;
        let r = self.push_inner(input);
        match r {
            Err(Error::Decode) => self.counters.decode_errors += 1,
            Err(_) => self.counters.dropped += 1,
            Ok(()) => {}
        }
        r.map(|()| self.pending())
    }

    fn push_inner(&mut self, input: &[u8]) -> Result<(), Error> {
        let (pkt, payload, kind) = parse_input(input, self.in_audio_pt, self.in_event_pt)?;
        if kind == Kind::Audio && (payload.is_empty() || payload.len() > MAX_OPUS_PAYLOAD) {
            return Err(Error::BadPayload);
        }
        let ts = pkt.timestamp();
        if self.input.classify(pkt.ssrc(), pkt.sequence())? == Verdict::Restart {
            self.counters.resyncs += 1;
            let (_, lost) = self.frames.pad();
            self.note_lost(lost);
            // A new encoder on the other side: start from a clean state.
            self.decoder.reset()?;
            self.expected = None;
            self.anchor = None;
            self.marker = true;
        }
        match kind {
            Kind::Event => {
                let (a_in, a_out) = *self
                    .anchor
                    .get_or_insert((ts, self.frames.next_sample_ts()));
                let offset = ts.wrapping_sub(a_in) as i32 / CLOCK_RATIO as i32;
                let header = FixedHeader {
                    marker: pkt.marker(),
                    payload_type: self.out_event_pt,
                    sequence: 0,
                    timestamp: a_out.wrapping_add(offset as u32),
                    ssrc: self.out.ssrc,
                };
                self.event.after_frames = self.frames.len;
                if self.event.store(header, payload, scale_duration_down) {
                    self.counters.overflowed += 1;
                }
                Ok(())
            }
            Kind::Audio => self.audio(ts, pkt.marker(), payload),
        }
    }

    fn audio(&mut self, ts: u32, marker: bool, payload: &[u8]) -> Result<(), Error> {
        let samples = match opus::packet_samples(payload) {
            Some(n) if n > 0 && n <= MAX_PACKET_SAMPLES => n,
            _ => return Err(Error::Decode),
        };
        if let Some(expected) = self.expected {
            let missing = ts.wrapping_sub(expected) as i32;
            if missing > 0 {
                // Whole 2.5 ms granules at 8 kHz.
                let gap =
                    missing as usize / CLOCK_RATIO as usize / GRANULE_SAMPLES * GRANULE_SAMPLES;
                if gap > self.max_conceal {
                    self.counters.resyncs += 1;
                    let (padded, lost) = self.frames.pad();
                    self.note_lost(lost);
                    let jump = gap.saturating_sub(padded) as u32;
                    self.frames.partial.ts = self.frames.partial.ts.wrapping_add(jump);
                    self.marker = true;
                } else if gap > 0 {
                    self.conceal(gap, payload);
                }
                // The gap is accounted for, even if this packet fails to
                // decode (then the next packet conceals just this one).
                self.expected = Some(ts);
            }
        }
        let n = self.decoder.decode(payload, &mut self.scratch[..samples])?;
        self.counters.frames_decoded += 1;
        self.anchor = Some((ts, self.frames.next_sample_ts()));
        self.expected = Some(ts.wrapping_add(n as u32 * CLOCK_RATIO));
        if std::mem::take(&mut self.marker) || marker {
            self.frames.partial.marker = true;
        }
        let lost = self.frames.append_slice(&self.scratch[..n]);
        self.note_lost(lost);
        Ok(())
    }

    /// Conceals `gap` samples before decoding `next`.
    fn conceal(&mut self, gap: usize, next: &[u8]) {
        let fec_len = opus::frame_samples(next).filter(|&f| f <= gap);
        let out = &mut self.scratch[..gap];
        let r = match fec_len {
            Some(f) if opus::packet_has_fec(next) => self
                .decoder
                .decode_fec(next, out)
                .map(|n| (n, n.saturating_sub(f), f)),
            _ => self.decoder.conceal(out).map(|n| (n, n, 0)),
        };
        match r {
            Ok((n, plc, fec)) => {
                self.counters.plc_frames += plc.div_ceil(FRAME_SAMPLES) as u64;
                self.counters.fec_frames += fec.div_ceil(FRAME_SAMPLES) as u64;
                let lost = self.frames.append_slice(&self.scratch[..n.min(gap)]);
                self.note_lost(lost);
            }
            Err(_) => self.counters.decode_errors += 1,
        }
    }

    fn note_lost(&mut self, lost: u64) {
        self.counters.overflowed += lost;
        for _ in 0..lost {
            self.event.frame_left();
        }
    }

    /// Writes the next output packet into `out` and returns its length, or
    /// `None` when nothing is pending. `out` must hold
    /// [`MAX_PACKET_LEN`](Self::MAX_PACKET_LEN) bytes, otherwise
    /// [`Error::BufferTooSmall`] is returned and nothing is consumed.
    pub fn poll(&mut self, out: &mut [u8]) -> Result<Option<usize>, Error> {
        if self.pending() == 0 {
            return Ok(None);
        }
        if out.len() < Self::MAX_PACKET_LEN {
            return Err(Error::BufferTooSmall);
        }
        if self.event.due() {
            let n = write_event(&mut self.event, &mut self.out, out)?;
            self.counters.packets_out += 1;
            self.counters.events_out += 1;
            return Ok(Some(n));
        }
        let frame = self.frames.pop().expect("pending() > 0 and no event due");
        self.event.frame_left();
        FixedHeader {
            marker: frame.marker,
            payload_type: self.out_audio_pt,
            sequence: self.out.next_seq,
            timestamp: frame.ts,
            ssrc: self.out.ssrc,
        }
        .write(out)?;
        let body = &mut out[FIXED_HEADER_LEN..FIXED_HEADER_LEN + FRAME_SAMPLES];
        self.law.encode_frame(&frame.pcm, body);
        self.out.next_seq = self.out.next_seq.wrapping_add(1);
        self.counters.packets_out += 1;
        self.counters.frames_encoded += 1;
        Ok(Some(FIXED_HEADER_LEN + FRAME_SAMPLES))
    }
}
