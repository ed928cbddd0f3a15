use core::fmt;

/// Why a packet (or a configuration) was refused.
///
/// Small and `Copy` so the caller can count drops per reason without
/// allocating. After an error the contents of the packet buffer are
/// unspecified (an AEAD open may have decrypted part of it in place); drop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than the smallest valid packet of its kind (header + trailer).
    TooShort,
    /// RTP/RTCP header invalid: version not 2, CSRC list or header extension
    /// running past the end of the packet.
    BadHeader,
    /// The authentication tag did not verify.
    AuthFailed,
    /// An authentic packet whose index was already received.
    Replayed,
    /// An authentic packet older than the replay window.
    TooOld,
    /// A crypto-suite name or DTLS-SRTP profile id that is not supported.
    UnknownSuite,
    /// Master key or master salt of the wrong length for the suite.
    BadKeyLength,
    /// A [`Config`](crate::Config) value out of range.
    BadConfig,
    /// A new SSRC was refused because the configured maximum is in use.
    TooManySsrcs,
    /// The buffer has no room for the authentication tag / SRTCP trailer, or
    /// the stated length exceeds the buffer.
    BufferTooSmall,
    /// The packet index space of the key is used up (SRTP ROC would wrap past
    /// 2^32, SRTCP index past 2^31): the session must be re-keyed.
    KeyExhausted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::TooShort => "packet too short",
            Error::BadHeader => "invalid RTP/RTCP header",
            Error::AuthFailed => "authentication failed",
            Error::Replayed => "replayed packet",
            Error::TooOld => "packet older than the replay window",
            Error::UnknownSuite => "unknown SRTP crypto suite",
            Error::BadKeyLength => "wrong master key or salt length",
            Error::BadConfig => "SRTP configuration out of range",
            Error::TooManySsrcs => "too many SSRCs in one SRTP context",
            Error::BufferTooSmall => "buffer too small",
            Error::KeyExhausted => "SRTP packet index exhausted, re-key needed",
        })
    }
}

impl std::error::Error for Error {}
