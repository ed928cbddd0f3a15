//! SDP for Strait's B2BUA: parsing, the offer/answer that bridges a WebRTC
//! browser and a legacy SIP endpoint, and the media plan for the data plane.
//!
//! Sans-IO: no sockets, no clock; randomness (ICE credentials, session ids,
//! SDES keys) comes from a caller-supplied [`RandomSource`].
//!
//! # Layers
//!
//! 1. [`model`]: a generic session description. [`SessionDescription::parse`]
//!    is strict about structure and tolerant of what real peers do (LF line
//!    ends, blank lines, trailing spaces, session lines out of order, no
//!    `t=`); `Display`/[`SessionDescription::to_bytes`] write canonical SDP
//!    (CRLF, RFC 8866 line order). Unknown attributes are kept verbatim.
//!    Malformed input is an [`SdpError`] (answer 488), never a panic.
//! 2. [`media`]: [`MediaInfo`], a typed view of one media section with
//!    session-level defaults applied: RTP/RTCP addresses (`c=` at either
//!    level, `a=rtcp`, `a=rtcp-mux`, port 0 and `0.0.0.0`), direction,
//!    codecs with PTs, rates, channels, fmtp and rtcp-fb, ICE credentials
//!    and candidates, DTLS fingerprints and setup role, SDES crypto, mid and
//!    BUNDLE membership. Typed attributes live in [`attrs`].
//! 3. [`negotiate`]: [`CallMedia`], the per-call offer/answer state machine
//!    between the browser leg (`UDP/TLS/RTP/SAVPF`, ICE-lite, DTLS,
//!    rtcp-mux, BUNDLE, Opus) and the legacy leg (`RTP/AVP`, separate RTCP,
//!    G.711, telephone-event), in both call directions and for re-INVITEs.
//! 4. [`plan`]: the [`MediaPlan`] each completed exchange yields: per leg,
//!    remote addresses, ICE/DTLS/SDES needs, PT rewrites and transcoding.
//!
//! # Choices
//!
//! - Own parser and writer rather than `webrtc-sdp`: the gateway needs a
//!   writer whose output is canonical and stable
//!   (`write(parse(write(x))) == write(x)`, fuzzed), legacy peers'
//!   sloppiness (LF, out-of-order lines, a missing `t=`) must pass, unknown
//!   lines must round-trip verbatim, and errors must be small `Copy` values
//!   with a line number for the 488's Warning. That is a few hundred lines
//!   that are simpler to own, and to fuzz, than to adapt.
//! - G.711 passes through whenever both sides have the same law; otherwise
//!   Strait transcodes Opus <-> G.711 (when [`CallConfig::transcoding`]).
//! - Strait answers the browser `a=setup:passive` (DESIGN §6) and offers it
//!   `actpass`; it is ICE-lite and announces host candidates only.
//! - Strait's payload-type numbering per leg is sticky; peers' numbering is
//!   re-read on every exchange and differences become [`LegPlan::pt_map`]
//!   entries (DESIGN §6: a re-INVITE may change payload types).
//! - Strait answers `a=rtcp-fb:<pt> nack` only when the browser offered it
//!   (RFC 4585 §4.2 forbids adding feedback types; [`CallConfig::force_nack`]
//!   overrides) and always offers it in its own offers.
//! - The `o=` version of each leg goes up by one whenever the body Strait
//!   sends on that leg changes, and stays when it does not (RFC 3264 §8).

pub mod attrs;
mod error;
pub mod media;
pub mod model;
pub mod negotiate;
pub mod plan;

#[cfg(feature = "fuzz")]
pub mod fuzz;

pub use attrs::{
    Candidate, Crypto, Direction, Fingerprint, HashAlgorithm, IceCredentials, RandomSource, Rtpmap,
    Setup, SrtpMasterKey, SrtpSuite,
};
pub use error::SdpError;
pub use media::{find_audio, Codec, CodecKind, MediaInfo, Profile};
pub use model::{
    Attribute, Bandwidth, Connection, MediaDescription, Origin, SessionDescription, Timing,
    MAX_LINES, MAX_MEDIA, MAX_SDP_LEN,
};
pub use negotiate::{
    Answer, BrowserEndpoint, CallConfig, CallMedia, CodecPreference, LegacyEndpoint, Offer,
    TranscodeNeed,
};
pub use plan::{
    DtlsPlan, G711Law, IcePlan, LegPlan, MediaPlan, PayloadFormat, SdesPlan, Side, TranscodeMode,
    TranscodePlan,
};
