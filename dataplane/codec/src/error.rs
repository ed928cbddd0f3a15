use core::fmt;

/// Why an input packet was refused or an output packet could not be made.
///
/// Small and `Copy` so the caller can count drops per reason without
/// allocating. Network input only ever produces these, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The RTP header (or its padding) is malformed.
    Rtp(strait_rtp::Error),
    /// The payload type is neither the configured audio nor the configured
    /// telephone-event payload type of the input leg.
    PayloadType(u8),
    /// The payload is empty, too long, or (telephone-event) not a whole
    /// number of 4-byte event blocks.
    BadPayload,
    /// Same sequence number as the last accepted packet.
    Duplicate,
    /// Older than the last accepted packet (reordered or late).
    Late,
    /// libopus refused to decode the packet.
    Decode,
    /// libopus failed to encode a frame (the frame is dropped).
    Encode,
    /// The output buffer is smaller than the packet to be written; nothing
    /// was consumed, poll again with a larger buffer.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rtp(e) => write!(f, "malformed RTP packet: {e}"),
            Error::PayloadType(pt) => write!(f, "unexpected payload type {pt}"),
            Error::BadPayload => f.write_str("malformed payload"),
            Error::Duplicate => f.write_str("duplicate packet"),
            Error::Late => f.write_str("late or reordered packet"),
            Error::Decode => f.write_str("opus decode failed"),
            Error::Encode => f.write_str("opus encode failed"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl std::error::Error for Error {}

impl From<strait_rtp::Error> for Error {
    fn from(e: strait_rtp::Error) -> Self {
        Error::Rtp(e)
    }
}

/// Why a transcoder or codec configuration was refused at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// A payload type is above 127 or used twice on the same leg.
    PayloadType(u8),
    /// A clock rate this crate does not transcode (G.711 and its events must
    /// be 8000 Hz, Opus and its events 48000 Hz).
    ClockRate(u32),
    /// Opus complexity above 10.
    Complexity(u8),
    /// Opus bitrate outside 6000..=510000 bit/s.
    Bitrate(u32),
    /// Expected packet loss above 100 %.
    LossPercent(u8),
    /// Loss concealment bound above the 120 ms libopus can conceal at once.
    ConcealFrames(u8),
    /// libopus refused to create or configure a codec (its error code).
    Opus(i32),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::PayloadType(pt) => write!(f, "invalid or clashing payload type {pt}"),
            ConfigError::ClockRate(r) => write!(f, "unsupported clock rate {r} Hz"),
            ConfigError::Complexity(c) => write!(f, "opus complexity {c} is above 10"),
            ConfigError::Bitrate(b) => write!(f, "opus bitrate {b} bit/s out of range"),
            ConfigError::LossPercent(p) => write!(f, "expected loss {p} % is above 100"),
            ConfigError::ConcealFrames(n) => write!(f, "{n} concealment frames exceed 120 ms"),
            ConfigError::Opus(code) => write!(f, "libopus error {code}"),
        }
    }
}

impl std::error::Error for ConfigError {}
