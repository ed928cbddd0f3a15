//! The one error type of the SDP module.

use std::fmt;

/// Why an SDP body was refused or could not be negotiated.
///
/// Small and `Copy` so a caller can count it; [`SdpError::sip_status`] gives
/// the SIP status to answer with and `Display` a text fit for a `Warning`
/// header or a reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_LEN`](super::MAX_SDP_LEN) bytes.
    TooLarge,
    /// The body has more lines or media sections than the parser accepts.
    TooManyLines,
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is empty.
    Empty,
    /// A line is malformed; `line` counts from 1.
    Malformed {
        /// Line number, from 1.
        line: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A mandatory line (`v=`, `o=`, `s=`) is missing.
    MissingLine(&'static str),
    /// A typed attribute could not be understood (its name is given).
    BadAttribute(&'static str),
    /// An address is a host name or otherwise unusable (SDP here is resolved by no one).
    UnsupportedAddress,
    /// No audio media section at all.
    NoAudio,
    /// The audio media section was rejected (port 0).
    AudioDeclined,
    /// The transport profile of the audio section is not one this side accepts.
    UnsupportedProfile,
    /// No audio codec both sides can use, even with transcoding.
    NoCommonCodec,
    /// A browser description without `a=ice-ufrag`/`a=ice-pwd`.
    MissingIce,
    /// A browser description without a usable `a=fingerprint`.
    MissingFingerprint,
    /// A browser description without `a=rtcp-mux`.
    RtcpMuxRequired,
    /// An `a=setup` value that is invalid where it appears (`actpass` in an answer).
    BadSetup,
    /// An `RTP/SAVP` section without an `a=crypto` line we support.
    NoUsableCrypto,
    /// An answer whose media sections do not match the offer's.
    AnswerMismatch,
    /// An answer chose a codec that was not offered.
    UnexpectedCodec,
    /// An answer arrived while no offer is pending, or from the wrong side.
    NoPendingOffer,
    /// An offer arrived while another one is pending (glare; answer 491).
    OfferPending,
}

impl SdpError {
    /// The SIP status to answer an offer with that failed this way:
    /// 491 for glare, 488 (Not Acceptable Here) for everything else.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::OfferPending => 491,
            _ => 488,
        }
    }
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdpError::TooLarge => f.write_str("SDP body too large"),
            SdpError::TooManyLines => f.write_str("SDP body has too many lines or media sections"),
            SdpError::NotUtf8 => f.write_str("SDP body is not UTF-8"),
            SdpError::Empty => f.write_str("SDP body is empty"),
            SdpError::Malformed { line, reason } => {
                write!(f, "malformed SDP line {line}: {reason}")
            }
            SdpError::MissingLine(l) => write!(f, "SDP lacks a mandatory {l} line"),
            SdpError::BadAttribute(a) => write!(f, "malformed SDP a={a} attribute"),
            SdpError::UnsupportedAddress => {
                f.write_str("SDP connection address is not a literal IP address")
            }
            SdpError::NoAudio => f.write_str("no audio media section"),
            SdpError::AudioDeclined => f.write_str("audio media section declined (port 0)"),
            SdpError::UnsupportedProfile => f.write_str("unsupported media transport profile"),
            SdpError::NoCommonCodec => f.write_str("no common audio codec"),
            SdpError::MissingIce => f.write_str("WebRTC description without ICE credentials"),
            SdpError::MissingFingerprint => {
                f.write_str("WebRTC description without a usable DTLS fingerprint")
            }
            SdpError::RtcpMuxRequired => f.write_str("WebRTC description without rtcp-mux"),
            SdpError::BadSetup => f.write_str("invalid a=setup role"),
            SdpError::NoUsableCrypto => f.write_str("RTP/SAVP without a supported a=crypto suite"),
            SdpError::AnswerMismatch => f.write_str("SDP answer does not match the offer"),
            SdpError::UnexpectedCodec => f.write_str("SDP answer chose a codec not offered"),
            SdpError::NoPendingOffer => f.write_str("SDP answer without a pending offer"),
            SdpError::OfferPending => f.write_str("SDP offer while another offer is pending"),
        }
    }
}

impl std::error::Error for SdpError {}
