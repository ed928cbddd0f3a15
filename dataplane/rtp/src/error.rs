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
    /// An argument cannot be encoded on the wire or is out of range (e.g. an
    /// empty NACK list, more than 31 report blocks, an inconsistent config).
    InvalidArgument,
    /// A new stream was refused because the configured maximum is in use.
    TooManyStreams,
    /// A packet is larger than the configured maximum packet size.
    PacketTooLarge,
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
            Error::InvalidArgument => "argument cannot be encoded or is out of range",
            Error::TooManyStreams => "too many streams",
            Error::PacketTooLarge => "packet larger than the configured maximum",
        })
    }
}

impl std::error::Error for Error {}
