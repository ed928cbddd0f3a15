//! Sans-IO RTP and RTCP for Strait's data plane.
//!
//! Everything here borrows the caller's buffer: views parse without copying
//! and edit in place. Nothing allocates per packet, reads a clock or touches
//! a socket; time is passed in where it matters (the NACK tail buffer).
//! Network input never panics: every parser returns an [`Error`] that the
//! caller counts and drops.
//!
//! - [`rtp`]: RTP header view (CSRCs, one- and two-byte header extensions,
//!   padding) and in-place rewriting of SSRC, sequence number and timestamp.
//! - [`rtcp`]: RTCP compound and reduced-size packets: SR, RR, SDES, BYE, APP,
//!   RTPFB generic NACK, PSFB PLI/FIR.
//! - [`demux`]: first-byte classification of STUN / DTLS / RTP / RTCP sharing
//!   one port (RFC 7983, RFC 5761).
//! - [`nack`]: the NACK tail buffer that answers RFC 4585 generic NACKs from
//!   recently sent packets.
#![forbid(unsafe_code)]

pub mod demux;
mod error;
pub mod nack;
pub mod rtcp;
pub mod rtp;
pub mod seq;

pub use error::Error;

#[cfg(feature = "fuzz")]
pub mod fuzz;
