//! G.711, Opus and the RTP transcoders between Strait's two legs.
//!
//! The legacy (SIP) leg speaks G.711 — PCMU or PCMA, 8 kHz RTP clock,
//! usually 20 ms = 160 samples per packet. The browser (WebRTC) leg speaks
//! Opus — 48 kHz RTP clock, 20 ms = 960 ticks. This crate converts between
//! them, one sans-IO object per direction:
//!
//! - [`g711`]: mu-law/A-law tables and whole-frame coding, plus the direct
//!   PCMU <-> PCMA byte tables.
//! - [`opus`]: libopus at 8 kHz mono (through the `opus` crate, which
//!   builds a bundled libopus with `cmake`). Opus takes and yields 8 kHz
//!   audio natively, so nothing is resampled; only the RTP clock differs.
//! - [`transcode`]: [`G711ToOpus`] and [`OpusToG711`].
//!
//! # Design
//!
//! **Sans-IO.** A transcoder takes one plaintext RTP packet in `push` and
//! hands out finished packets from `poll` into the caller's buffer. No
//! sockets, clocks, threads, locks or logging; after construction nothing
//! allocates: audio waits in a fixed queue of 20 ms frames and the encoder
//! writes straight into the output buffer.
//!
//! **Stream ownership.** Each transcoder is the source of its output
//! stream: its own SSRC, consecutive sequence numbers from a configured
//! start, and timestamps from a configured base. Input discontinuities
//! (loss, a new input SSRC, sequence jumps) never leak into the output
//! numbering; telephone-events are rewritten into the same numbering so they
//! interleave with the audio.
//!
//! **Clock mapping.** G.711 -> Opus maps timestamps linearly (×6 from the
//! first packet, modulo 2^32), so the Opus timestamps keep the legacy
//! leg's timing, silence gaps included. Opus -> G.711 counts 160 per 20 ms
//! frame it generates, so the legacy leg sees contiguous timestamps through
//! loss, whatever the Opus packet duration (2.5–120 ms).
//!
//! **Loss policy.** Late, duplicate and malformed packets are dropped and
//! counted ([`Counters`]); nothing on the network path panics. On the Opus
//! input, a gap of up to 5 × 20 ms (configurable) is concealed with
//! libopus PLC, with the last lost frame rebuilt from the next packet's
//! in-band FEC when it has some; longer gaps resynchronise (the output
//! timestamp jumps like after a silence period, marker bit set). On the
//! G.711 input a gap simply advances the Opus timestamp. See [`transcode`]
//! for the details.
//!
//! **Errors.** [`ConfigError`] at construction (bad payload types, clock
//! rates other than 8000/48000, codec settings out of range); [`Error`]
//! per packet, small and `Copy`.
#![forbid(unsafe_code)]

mod error;
pub mod g711;
pub mod opus;
pub mod transcode;

pub use error::{ConfigError, Error};
pub use g711::Law;
pub use opus::EncoderConfig;
pub use transcode::{
    Counters, DecoderConfig, EventFormats, Formats, G711ToOpus, OpusToG711, OutputStream,
    PayloadFormat,
};

#[cfg(feature = "fuzz")]
pub mod fuzz;
