//! SIP scenarios against Strait's B2BUA: simulated browsers (SIP over WSS,
//! RFC 7118) and simulated legacy endpoints (SIP over UDP).
//!
//! - [`signalling`], scenario (c): REGISTER and call-setup rates over WSS,
//!   no media. `strait-loadtest signalling --op register|call`.
//! - [`calls`], scenario (b): concurrent full calls with media, browsers
//!   calling legacy endpoints and legacy endpoints calling registered
//!   browsers. `strait-loadtest calls`.
//!
//! The pieces: [`msg`] (a small SIP codec, independent of Strait's),
//! [`digest`] (client digest), [`wss`] (the WebSocket transport with a
//! pinned self-signed certificate), [`browser`] (the browser's user agent),
//! [`legacy`] (the UDP endpoint: UAS that answers, UAC that calls, with
//! RFC 3261 retransmissions), [`launch`] (starts `strait` with a generated
//! configuration), [`sdp`] (the browser's and the legacy side's SDP),
//! [`common`] (options, Strait and the browser pool, CPU), [`cli`].
//!
//! The SIP side runs on a tokio runtime on the generator's cores; media
//! (scenario (b)) on the existing generator threads.

pub mod browser;
pub mod calls;
pub mod cli;
pub mod common;
pub mod digest;
pub mod launch;
pub mod legacy;
pub mod msg;
pub mod sdp;
pub mod signalling;
pub mod wss;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A final response other than the expected one: its status and why
    /// (the Reason header's text, else the reason phrase).
    Status(u16, String),
    /// No (final) answer before the operation's deadline.
    Timeout,
    /// The connection closed under the operation.
    Closed,
    /// Something the peer sent that a UA cannot work with.
    Protocol(&'static str),
    /// The operation was not started: too many were already outstanding.
    Overload,
    /// Media could not be set up (ICE, DTLS, sockets).
    Media(String),
}

impl Failure {
    /// The key failures are counted under in records: the status code, or a word.
    pub fn key(&self) -> String {
        match self {
            Failure::Status(s, why) if why.is_empty() => s.to_string(),
            Failure::Status(s, why) => format!("{s} {why}"),
            Failure::Timeout => "timeout".into(),
            Failure::Closed => "connection closed".into(),
            Failure::Protocol(p) => format!("protocol: {p}"),
            Failure::Overload => "not started (too many outstanding)".into(),
            Failure::Media(_) => "media".into(),
        }
    }
}

impl Failure {
    /// The failure a final response `r` stands for: its status, and the
    /// Reason header's text (Strait says why there), else the reason phrase,
    /// at most 60 characters.
    pub fn of(r: &msg::SipMsg) -> Failure {
        let status = r.status().unwrap_or(0);
        let text = r
            .header("Reason")
            .and_then(|v| msg::header_param(v, "text"))
            .map(str::to_string)
            .or_else(|| match &r.start {
                msg::Start::Response { reason, .. } => Some(reason.clone()),
                msg::Start::Request { .. } => None,
            })
            .unwrap_or_default();
        Failure::Status(status, text.chars().take(60).collect())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(s, why) => write!(f, "answered {s} {why}"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Closed => f.write_str("connection closed"),
            Failure::Protocol(p) => write!(f, "protocol error: {p}"),
            Failure::Overload => f.write_str("not started: too many outstanding"),
            Failure::Media(m) => write!(f, "media: {m}"),
        }
    }
}

/// A process-unique token with `prefix` (branches, tags, Call-IDs): a
/// random per-process part and a counter.
pub fn unique(prefix: &str) -> String {
    static RUN: OnceLock<u64> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    let run = *RUN.get_or_init(|| {
        let mut b = [0u8; 8];
        if crate::scenario::random_bytes(&mut b).is_err() {
            b = (u64::from(std::process::id()) ^ crate::generator::mono_ns()).to_le_bytes();
        }
        u64::from_le_bytes(b) & 0xFFFF_FFFF_FFFF
    });
    format!("{prefix}{run:x}x{:x}", N.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_tokens_differ() {
        let a = unique("z9hG4bK");
        let b = unique("z9hG4bK");
        assert_ne!(a, b);
        assert!(a.starts_with("z9hG4bK"));
        assert_eq!(Failure::Status(503, String::new()).key(), "503");
        let r = msg::SipMsg::parse(
            b"SIP/2.0 503 Service Unavailable\r\nReason: SIP;cause=503;text=\"too many transactions\"\r\n\r\n",
        )
        .unwrap();
        assert_eq!(Failure::of(&r).key(), "503 too many transactions");
        let r = msg::SipMsg::parse(b"SIP/2.0 486 Busy Here\r\n\r\n").unwrap();
        assert_eq!(Failure::of(&r).key(), "486 Busy Here");
    }
}
