use core::fmt;

/// Why a packet was refused. Small and `Copy` so the caller can count drops
/// per reason without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than the smallest valid packet of its kind.
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// CSRC list runs past the end of the buffer.
    BadCsrcCount,
    /// Header extension length runs past the end of the buffer.
    BadExtension,
    /// Padding count is zero or larger than the payload.
    BadPadding,
    /// An RTCP length field disagrees with the buffer.
    BadLength,
    /// Packet type or format not understood where one was required.
    Unsupported,
    /// Output buffer too small for what was asked.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::TooShort => "packet too short",
            Error::BadVersion => "version is not 2",
            Error::BadCsrcCount => "CSRC list exceeds packet",
            Error::BadExtension => "header extension exceeds packet",
            Error::BadPadding => "invalid padding",
            Error::BadLength => "length field disagrees with packet",
            Error::Unsupported => "unsupported packet type",
            Error::BufferTooSmall => "output buffer too small",
        })
    }
}

impl std::error::Error for Error {}
