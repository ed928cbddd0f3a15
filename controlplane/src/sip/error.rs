//! The error type of the SIP message layer.

use std::fmt;

/// Why a SIP message (or one of its header values) could not be parsed.
///
/// Small and `Copy` so the transports can count it; [`ParseError::status_code`]
/// and the `Display` text make a useful reason phrase for the 400 (or 505/513)
/// that answers a malformed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but (optional) CRLFs.
    Empty,
    /// The message is larger than [`Limits::max_message_size`](super::Limits).
    TooLarge,
    /// More header lines than [`Limits::max_headers`](super::Limits).
    TooManyHeaders,
    /// The header section does not end with an empty line.
    Incomplete,
    /// The start line or a header is not UTF-8.
    NotUtf8,
    /// The start line is neither a request line nor a status line.
    BadStartLine,
    /// The method is not a token.
    BadMethod,
    /// The Request-URI is not a URI.
    BadRequestUri,
    /// The SIP-Version is not `SIP/<digits>.<digits>`.
    BadVersion,
    /// A well-formed SIP-Version other than SIP/2.0 (answer 505).
    UnsupportedVersion,
    /// The status code is not three digits in 100..=699.
    BadStatusCode,
    /// A header line without a colon, with a bad name, a bare CR/LF, or a
    /// continuation line before the first header.
    BadHeaderLine,
    /// A mandatory header is missing.
    MissingHeader(&'static str),
    /// A header that may appear once appears several times.
    DuplicateHeader(&'static str),
    /// A header value does not follow its grammar.
    BadHeader(&'static str),
    /// Content-Length is not a decimal number in range.
    BadContentLength,
    /// A stream transport message without Content-Length (RFC 3261 §18.3).
    MissingContentLength,
    /// Fewer body bytes than Content-Length announces.
    BodyTruncated,
    /// The CSeq method differs from the request method.
    CSeqMethodMismatch,
    /// A URI does not follow the SIP URI or absolute URI grammar.
    BadUri,
}

impl ParseError {
    /// The status code to answer a request that failed with this error:
    /// 505 for an unsupported version, 513 for an oversized message, else 400.
    pub fn status_code(self) -> u16 {
        match self {
            ParseError::UnsupportedVersion => 505,
            ParseError::TooLarge => 513,
            _ => 400,
        }
    }

    /// Whether the error concerns the framing of a message on a stream, so that
    /// the rest of the stream cannot be trusted (the connection must be closed).
    pub fn breaks_stream_framing(self) -> bool {
        matches!(
            self,
            ParseError::TooLarge
                | ParseError::Incomplete
                | ParseError::BadContentLength
                | ParseError::MissingContentLength
                | ParseError::DuplicateHeader("Content-Length")
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty message"),
            ParseError::TooLarge => f.write_str("message too large"),
            ParseError::TooManyHeaders => f.write_str("too many headers"),
            ParseError::Incomplete => f.write_str("header section not terminated"),
            ParseError::NotUtf8 => f.write_str("header section is not UTF-8"),
            ParseError::BadStartLine => f.write_str("malformed start line"),
            ParseError::BadMethod => f.write_str("malformed method"),
            ParseError::BadRequestUri => f.write_str("malformed Request-URI"),
            ParseError::BadVersion => f.write_str("malformed SIP version"),
            ParseError::UnsupportedVersion => f.write_str("unsupported SIP version"),
            ParseError::BadStatusCode => f.write_str("malformed status code"),
            ParseError::BadHeaderLine => f.write_str("malformed header line"),
            ParseError::MissingHeader(h) => write!(f, "missing {h} header"),
            ParseError::DuplicateHeader(h) => write!(f, "duplicate {h} header"),
            ParseError::BadHeader(h) => write!(f, "malformed {h} header"),
            ParseError::BadContentLength => f.write_str("malformed Content-Length"),
            ParseError::MissingContentLength => f.write_str("missing Content-Length"),
            ParseError::BodyTruncated => f.write_str("body shorter than Content-Length"),
            ParseError::CSeqMethodMismatch => f.write_str("CSeq method does not match"),
            ParseError::BadUri => f.write_str("malformed URI"),
        }
    }
}

impl std::error::Error for ParseError {}
