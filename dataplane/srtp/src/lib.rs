//! In-place SRTP and SRTCP (RFC 3711, RFC 7714) for Strait's data plane.
//!
//! Supported suites ([`Suite`]): `AES_CM_128_HMAC_SHA1_80`,
//! `AES_CM_128_HMAC_SHA1_32` and `AEAD_AES_128_GCM`, by SDP name and by
//! DTLS-SRTP protection-profile id. No MKI, key derivation rate 0 (what SDES
//! and DTLS-SRTP negotiate in practice).
//!
//! # Design
//!
//! - **One [`SrtpContext`] per direction.** It is built from a master key and
//!   salt; the constructor runs the RFC 3711 §4.3 key derivation (AES-CM PRF;
//!   for GCM the 12-byte master salt is zero-padded, RFC 7714 §11) once and
//!   keeps the key schedules ready: the AES-128 encryption schedule for
//!   counter mode, a pre-keyed HMAC-SHA1 state that is cloned per packet
//!   (never re-keyed), or a `ring` AES-GCM key.
//! - **In place, no allocation per packet.** `protect_rtp(buf, len)` works on
//!   `buf[..len]` and appends the tag into the spare room of `buf`
//!   ([`Suite::rtp_overhead`], [`Suite::rtcp_overhead`]); `unprotect_*`
//!   returns the plaintext length inside the same buffer. AES-CM is
//!   RustCrypto `ctr` over a *borrowed* `aes` key schedule (nothing copied
//!   per packet; AES-NI when the CPU has it); HMAC-SHA1 is RustCrypto
//!   `hmac`+`sha1` (SHA-NI when available); GCM is `ring`'s
//!   `seal_in_place_separate_tag` / `open_in_place_separate_tag`. Tags are
//!   compared in constant time (`subtle`).
//! - **Per-SSRC state in a bounded table.** A context serves up to
//!   [`Config::max_ssrcs`] SSRCs; their slots (ROC and highest sequence
//!   number, SRTP replay window, SRTCP replay window, next SRTCP index) are
//!   allocated at construction and looked up by a linear scan (contexts see
//!   a handful of SSRCs). One more SSRC is refused with
//!   [`Error::TooManySsrcs`]; [`SrtpContext::remove_ssrc`] frees a slot. An
//!   unknown SSRC takes a slot only once one of its packets authenticated,
//!   so forged packets cannot fill the table.
//! - **Index estimation and replay.** The SRTP index is estimated from the
//!   highest index seen (RFC 3711 Appendix A), so a sequence-number wrap
//!   increments the ROC and late packets from before the wrap still get the
//!   previous ROC. The replay window (64 packets by default, configurable)
//!   is a ring bitmap: advancing by one packet costs one bit operation. The
//!   replay/too-old verdict is computed before but reported only after
//!   authentication, and the window and ROC move only for authentic,
//!   non-replayed packets. SRTCP uses the explicit 31-bit index with the E
//!   flag and its own window; SRTCP is encrypted by default
//!   ([`Config::encrypt_srtcp`]), and both E = 0 and E = 1 are accepted.
//! - **Errors, never panics.** Every failure is an [`Error`] (small, `Copy`)
//!   the caller counts and drops; lengths from the wire are checked before
//!   any slicing. After an error the buffer's contents are unspecified.
//!
//! ```
//! use strait_srtp::{Config, Error, Suite, SrtpContext};
//!
//! let (key, salt) = ([7u8; 16], [9u8; 14]);
//! let suite = Suite::AesCm128HmacSha1_80;
//! let mut tx = SrtpContext::new(suite, &key, &salt, Config::default())?;
//! let mut rx = SrtpContext::new(suite, &key, &salt, Config::default())?;
//!
//! let mut buf = [0u8; 1500];
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0x11, 0x22, 0x33, 0x44, 0xde, 0xad];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let n = tx.protect_rtp(&mut buf, rtp.len())?;
//! assert_eq!(n, rtp.len() + suite.rtp_overhead());
//! let m = rx.unprotect_rtp(&mut buf[..n])?;
//! assert_eq!(&buf[..m], &rtp);
//! // The same packet again is a replay.
//! let n = tx.protect_rtp(&mut buf, rtp.len())?;
//! assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Err(Error::Replayed));
//! # Ok::<(), strait_srtp::Error>(())
//! ```
#![forbid(unsafe_code)]

mod context;
mod error;
mod kdf;
mod replay;
mod suite;

pub use context::{Config, SrtpContext};
pub use error::Error;
pub use suite::{DtlsSrtpKeys, Suite};

#[cfg(feature = "fuzz")]
pub mod fuzz;
