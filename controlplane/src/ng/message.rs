//! ng requests: the `<cookie> <bencoded dictionary>` framing and the typed
//! [`Request`] parsed from the dictionary.
//!
//! # Framing
//!
//! A message is a cookie, one space and a bencoded dictionary
//! ([`Frame::split`]). The cookie is opaque (any bytes but a space, at most
//! [`MAX_COOKIE_LEN`]); the reply carries the same cookie. Input without a
//! cookie cannot be answered and is dropped. rtpengine also accepts a JSON
//! object instead of the dictionary; Strait does not (it answers "Invalid NG
//! data format"): Kamailio and OpenSIPS send bencode.
//!
//! # Options
//!
//! Offer, answer and delete carry options ([`Options`]) in three forms, all
//! accepted, in the order they appear (a later setting wins, lists add up):
//!
//! - their own dictionary keys (`"ICE": "remove"`, `"replace": ["origin"]`,
//!   `"transport-protocol": "RTP/AVP"`), which is how Kamailio's and
//!   OpenSIPS's modules send most options when they parse the flags
//!   themselves;
//! - items of the `flags` list (`"trust-address"`, `"SDES-off"`,
//!   `"replace-origin"`, `"rtcp-mux-demux"`, `"codec-strip-PCMA"`,
//!   `"WebRTC"`), including rtpengine's prefixed aliases of the dictionary
//!   keys;
//! - one `rtpp_flags` string that the daemon parses (Kamailio's
//!   parse-by-daemon mode): `"replace-origin ICE=force
//!   codec=[strip=[PCMU] transcode=[opus]] RTP/SAVPF"`.
//!
//! Keys and flag names are matched the way rtpengine matches them: a space,
//! a hyphen and an underscore are the same, and case is ignored (rtpengine
//! lists both `ICE` and `ice`, `trust address` and `trust-address`). Values
//! keep their case where it matters (codec names, SDES suites, labels).
//!
//! Options Strait does not know or does not implement are not an error:
//! they are listed in [`Options::ignored`] and the reply carries them in its
//! `warning`.
//!
//! `WebRTC` (a flag, or `template=WebRTC`) is rtpengine's shorthand for
//! `transport-protocol=UDP/TLS/RTP/SAVPF ICE=force trickle-ICE
//! rtcp-mux=[offer require] no-rtcp-attribute SDES=off generate-mid`; it
//! does not choose a DTLS role (add `DTLS=passive` for that).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use super::bencode::{self, Borrowed, DecodeError, Limits, Value};

/// Longest cookie accepted (Kamailio's are about 30 bytes).
pub const MAX_COOKIE_LEN: usize = 256;

/// Most entries kept in [`Options::ignored`] (more are counted, not listed).
pub const MAX_IGNORED: usize = 32;

/// Most call-ids a `list` reply carries, whatever `limit` asks.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// One message cut into its cookie and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The cookie (never empty, no space).
    pub cookie: &'a [u8],
    /// Everything after the first space.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Splits at the first space; `None` when there is no cookie (no space,
    /// an empty cookie or one longer than [`MAX_COOKIE_LEN`]): such input
    /// cannot be answered.
    pub fn split(data: &'a [u8]) -> Option<Frame<'a>> {
        let sp = data
            .iter()
            .take(MAX_COOKIE_LEN + 1)
            .position(|&b| b == b' ')?;
        if sp == 0 {
            return None;
        }
        Some(Frame {
            cookie: &data[..sp],
            payload: &data[sp + 1..],
        })
    }
}

/// The commands Strait implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `ping`.
    Ping,
    /// `offer`.
    Offer,
    /// `answer`.
    Answer,
    /// `delete`.
    Delete,
    /// `query`.
    Query,
    /// `list`.
    List,
    /// `statistics`.
    Statistics,
}

impl Command {
    /// Every command, in protocol order.
    pub const ALL: [Command; 7] = [
        Command::Ping,
        Command::Offer,
        Command::Answer,
        Command::Delete,
        Command::Query,
        Command::List,
        Command::Statistics,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Offer => "offer",
            Command::Answer => "answer",
            Command::Delete => "delete",
            Command::Query => "query",
            Command::List => "list",
            Command::Statistics => "statistics",
        }
    }

    /// From the wire name (case-sensitive, like rtpengine).
    pub fn from_wire(name: &[u8]) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|c| c.as_str().as_bytes() == name)
    }
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request<'a> {
    /// `ping`: answered `pong` by the server itself.
    Ping,
    /// `offer`: an SDP offer to rewrite.
    Offer(OfferAnswer<'a>),
    /// `answer`: the SDP answer to rewrite (`to_tag` is always set).
    Answer(OfferAnswer<'a>),
    /// `delete`: tear down a call or one branch of it.
    Delete(Delete<'a>),
    /// `query`: one call's state and counters.
    Query(Query<'a>),
    /// `list`: the call-ids in progress.
    List(List),
    /// `statistics`: totals.
    Statistics,
}

impl Request<'_> {
    /// The command.
    pub fn command(&self) -> Command {
        match self {
            Request::Ping => Command::Ping,
            Request::Offer(_) => Command::Offer,
            Request::Answer(_) => Command::Answer,
            Request::Delete(_) => Command::Delete,
            Request::Query(_) => Command::Query,
            Request::List(_) => Command::List,
            Request::Statistics => Command::Statistics,
        }
    }
}

/// An `offer` or `answer`.
///
/// The tags are as the proxy sent them: in an answer `from_tag` is still
/// the caller's (SIP From) tag and `to_tag` the callee's. rtpengine swaps
/// them internally for an answer; a handler that keys its legs by "who sent
/// this SDP" uses `to_tag` for an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferAnswer<'a> {
    /// The SDP body to rewrite.
    pub sdp: &'a str,
    /// SIP Call-ID.
    pub call_id: &'a str,
    /// SIP From tag.
    pub from_tag: &'a str,
    /// SIP To tag (always present in an answer).
    pub to_tag: Option<&'a str>,
    /// Via branch, to tell forked branches apart.
    pub via_branch: Option<&'a str>,
    /// Everything else.
    pub options: Options<'a>,
}

/// A `delete`.
#[derive(Clone, Debug, PartialEq)]
pub struct Delete<'a> {
    /// SIP Call-ID.
    pub call_id: &'a str,
    /// From tag; absent: the whole call.
    pub from_tag: Option<&'a str>,
    /// To tag as sent. rtpengine narrows the deletion to it only when the
    /// `to-tag` flag is also given ([`Delete::to_tag_selects`]).
    pub to_tag: Option<&'a str>,
    /// Via branch; narrows the deletion to one branch.
    pub via_branch: Option<&'a str>,
    /// The `to-tag` flag: delete only the dialogue with `to_tag`.
    pub to_tag_selects: bool,
    /// The `fatal` flag: an unknown call is an error reply, not a warning.
    pub fatal: bool,
    /// `delete delay` seconds, overriding the default (0: now).
    pub delete_delay: Option<u32>,
    /// Options that were not understood (reported in the reply's warning).
    pub ignored: Vec<String>,
}

/// A `query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    /// SIP Call-ID.
    pub call_id: &'a str,
    /// Limit the answer to this party (and whom it talks to).
    pub from_tag: Option<&'a str>,
    /// Takes precedence over `from_tag` when both are given.
    pub to_tag: Option<&'a str>,
}

/// A `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct List {
    /// Most call-ids to return (default 32, capped at [`MAX_LIST_LIMIT`]).
    pub limit: u32,
}

/// `transport-protocol` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportProtocol {
    /// `RTP/AVP`.
    RtpAvp,
    /// `RTP/SAVP`.
    RtpSavp,
    /// `RTP/AVPF`.
    RtpAvpf,
    /// `RTP/SAVPF`.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP`.
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF` (WebRTC).
    UdpTlsRtpSavpf,
}

impl TransportProtocol {
    /// The SDP name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportProtocol::RtpAvp => "RTP/AVP",
            TransportProtocol::RtpSavp => "RTP/SAVP",
            TransportProtocol::RtpAvpf => "RTP/AVPF",
            TransportProtocol::RtpSavpf => "RTP/SAVPF",
            TransportProtocol::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            TransportProtocol::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
        }
    }

    /// From the SDP name (case-insensitive).
    pub fn parse(s: &str) -> Option<TransportProtocol> {
        [
            TransportProtocol::RtpAvp,
            TransportProtocol::RtpSavp,
            TransportProtocol::RtpAvpf,
            TransportProtocol::RtpSavpf,
            TransportProtocol::UdpTlsRtpSavp,
            TransportProtocol::UdpTlsRtpSavpf,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether media is SRTP (SDES or DTLS).
    pub fn is_secure(self) -> bool {
        !matches!(self, TransportProtocol::RtpAvp | TransportProtocol::RtpAvpf)
    }

    /// Whether the RTCP feedback profile (AVPF) is used.
    pub fn is_feedback(self) -> bool {
        matches!(
            self,
            TransportProtocol::RtpAvpf
                | TransportProtocol::RtpSavpf
                | TransportProtocol::UdpTlsRtpSavpf
        )
    }

    /// Whether keys come from DTLS.
    pub fn is_dtls(self) -> bool {
        matches!(
            self,
            TransportProtocol::UdpTlsRtpSavp | TransportProtocol::UdpTlsRtpSavpf
        )
    }
}

/// `ICE` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IceOption {
    /// Strip ICE attributes.
    Remove,
    /// Replace the candidates with the media proxy's own.
    Force,
    /// Like `Force` if the SDP had ICE, else nothing (the default).
    Default,
    /// Keep the candidates, add the proxy as a relay candidate.
    ForceRelay,
    /// Add ICE if absent, else add the proxy as a low-priority candidate.
    Optional,
}

/// `ICE-lite` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IceLite {
    /// Full ICE both ways.
    Off,
    /// ICE-lite toward the recipient of this message.
    Forward,
    /// ICE-lite toward the sender of this message.
    Backward,
    /// ICE-lite toward both.
    Both,
}

/// `DTLS` (and `DTLS-reverse`) values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtlsOption {
    /// `off`, `no`, `disable`: no DTLS-SRTP.
    Off,
    /// Prefer the passive (server) role.
    Passive,
    /// Prefer the active (client) role.
    Active,
}

/// `address family` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
}

impl AddressFamily {
    fn parse(s: &str) -> Option<AddressFamily> {
        if s.eq_ignore_ascii_case("IP4") || s.eq_ignore_ascii_case("IPv4") {
            Some(AddressFamily::Ip4)
        } else if s.eq_ignore_ascii_case("IP6") || s.eq_ignore_ascii_case("IPv6") {
            Some(AddressFamily::Ip6)
        } else {
            None
        }
    }
}

/// `received from`: where the proxy got the SIP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedFrom {
    /// The family given, if any.
    pub family: Option<AddressFamily>,
    /// The address.
    pub address: IpAddr,
}

/// `SDES` items (also `SDES-...` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdesOption<'a> {
    /// `off`, `no`, `disable`: do not offer SDES.
    Off,
    /// Keep base64 padding in `a=crypto` keys.
    Pad,
    /// Add the `2^31` lifetime to keys.
    Lifetime,
    /// Keep the negotiated suite on re-invites.
    Static,
    /// Add no new suites.
    NoNew,
    /// Prefer SDES over DTLS when both are offered.
    Prefer,
    /// A session parameter, e.g. `UNENCRYPTED_SRTP` or `encrypted_srtcp`.
    Param(&'a str),
    /// `no-SUITE`: leave this suite out.
    No(&'a str),
    /// `only-SUITE`: offer only these suites.
    Only(&'a str),
    /// `order:A;B;...`: put these suites first.
    Order(&'a str),
    /// `offerer_pref:A;B;...`: suites to prefer toward the offerer.
    OffererPref(&'a str),
}

/// `rtcp-mux` items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcpMux {
    /// Always offer rtcp-mux.
    pub offer: bool,
    /// Offer only rtcp-mux (no separate RTCP port; for WebRTC).
    pub require: bool,
    /// Accept rtcp-mux from the offerer but do not offer it on.
    pub demux: bool,
    /// Accept rtcp-mux and offer it on if offered.
    pub accept: bool,
    /// Reject rtcp-mux.
    pub reject: bool,
}

/// `replace` items: which parts of the SDP to rewrite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replace {
    /// The `o=` address.
    pub origin: bool,
    /// The whole `o=` line.
    pub origin_full: bool,
    /// The session-level `c=` address.
    pub session_connection: bool,
    /// The `s=` line.
    pub session_name: bool,
    /// Manage the `o=` version.
    pub sdp_version: bool,
    /// Bump the `o=` version even if nothing changed.
    pub force_increment_sdp_version: bool,
    /// Keep the `o=` user name stable.
    pub username: bool,
    /// Replace zero (hold) addresses with real ones.
    pub zero_address: bool,
}

/// Boolean flags (items of `flags`, or bare words in `rtpp_flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `trust-address`: use the SDP addresses (`Some(true)`);
    /// `SIP-source-address`: use `received from` (`Some(false)`).
    pub trust_address: Option<bool>,
    /// `symmetric` (the default).
    pub symmetric: bool,
    /// `asymmetric`: do not learn endpoints from received media.
    pub asymmetric: bool,
    /// `unidirectional`.
    pub unidirectional: bool,
    /// `strict-source`: drop media from other than the learned source.
    pub strict_source: bool,
    /// `media-handover`: follow a source change.
    pub media_handover: bool,
    /// `port-latching`.
    pub port_latching: bool,
    /// `no-port-latching`.
    pub no_port_latching: bool,
    /// `reset`: forget what was learned about the endpoints.
    pub reset: bool,
    /// `record-call`.
    pub record_call: bool,
    /// `loop-protect`.
    pub loop_protect: bool,
    /// `original-sendrecv`: keep the direction attributes.
    pub original_sendrecv: bool,
    /// `single-codec`: answer with the first codec only.
    pub single_codec: bool,
    /// `reuse-codecs` / `no-codec-renegotiation`.
    pub reuse_codecs: bool,
    /// `trickle-ICE`.
    pub trickle_ice: bool,
    /// `reject-ICE`.
    pub reject_ice: bool,
    /// `generate-mid`.
    pub generate_mid: bool,
    /// `no-rtcp-attribute`.
    pub no_rtcp_attribute: bool,
    /// `full-rtcp-attribute`.
    pub full_rtcp_attribute: bool,
    /// `strip-extmap`.
    pub strip_extmap: bool,
    /// `pierce-NAT`.
    pub pierce_nat: bool,
    /// `NAT-wait`.
    pub nat_wait: bool,
    /// `early-media`.
    pub early_media: bool,
    /// `inject-DTMF`.
    pub inject_dtmf: bool,
    /// `detect-DTMF`.
    pub detect_dtmf: bool,
    /// `generate-RTCP`.
    pub generate_rtcp: bool,
    /// `allow-transcoding`.
    pub allow_transcoding: bool,
    /// `always-transcode` (also adds `all` to `codec.accept`).
    pub always_transcode: bool,
    /// `fragment`: a trickle-ICE SDP fragment.
    pub fragment: bool,
    /// `fatal` (delete): an unknown call is an error.
    pub fatal: bool,
    /// `to-tag` (delete): narrow to the given to-tag.
    pub to_tag: bool,
    /// `directional`.
    pub directional: bool,
    /// `all`.
    pub all: bool,
    /// `debug`.
    pub debug: bool,
    /// `WebRTC` (or `template=WebRTC`) was given.
    pub webrtc: bool,
}

/// `codec` operations (also `codec-...` and `transcode-...` flags). Names
/// are unescaped (`--` to `=`, `..` to a space).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodecOptions<'a> {
    /// Remove these codecs (`all` for every one).
    pub strip: Vec<Cow<'a, str>>,
    /// Keep only these, in this order (after `strip`).
    pub offer: Vec<Cow<'a, str>>,
    /// Add these, transcoding if needed.
    pub transcode: Vec<Cow<'a, str>>,
    /// Remove these from the offer but keep them for transcoding.
    pub mask: Vec<Cow<'a, str>>,
    /// Accept these toward the offerer even if the answerer rejects them.
    pub accept: Vec<Cow<'a, str>>,
    /// Like `mask`, always engaging transcoding.
    pub consume: Vec<Cow<'a, str>>,
    /// Keep these when stripping `all`.
    pub except: Vec<Cow<'a, str>>,
    /// Codec parameters for transcoding, e.g. `opus/48000/2/32000`.
    pub set: Vec<Cow<'a, str>>,
}

/// The options of an offer, answer or delete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options<'a> {
    /// `transport protocol` to use toward the recipient.
    pub transport_protocol: Option<TransportProtocol>,
    /// `transport protocol: accept` (answer): follow the answerer's profile.
    pub transport_accept: bool,
    /// `ICE`.
    pub ice: Option<IceOption>,
    /// `ICE-lite`.
    pub ice_lite: Option<IceLite>,
    /// `DTLS`.
    pub dtls: Option<DtlsOption>,
    /// `DTLS-reverse` (`Passive` or `Active`).
    pub dtls_reverse: Option<DtlsOption>,
    /// `DTLS-fingerprint` hash, e.g. `SHA-256`.
    pub dtls_fingerprint: Option<&'a str>,
    /// `SDES` items, in order.
    pub sdes: Vec<SdesOption<'a>>,
    /// `OSRTP` items as given (not interpreted).
    pub osrtp: Vec<&'a str>,
    /// `rtcp-mux`.
    pub rtcp_mux: RtcpMux,
    /// `replace`.
    pub replace: Replace,
    /// Boolean flags.
    pub flags: Flags,
    /// `direction` (or `from-interface`/`to-interface`): logical interfaces
    /// of the sender and of the recipient.
    pub direction: [Option<&'a str>; 2],
    /// `received from`.
    pub received_from: Option<ReceivedFrom>,
    /// `media address`: overrides the SDP and `received from` addresses.
    pub media_address: Option<IpAddr>,
    /// `address family` for the rewritten SDP.
    pub address_family: Option<AddressFamily>,
    /// `codec`.
    pub codec: CodecOptions<'a>,
    /// `label` (or `from-label`).
    pub label: Option<&'a str>,
    /// `to-label`.
    pub to_label: Option<&'a str>,
    /// `ptime` toward the recipient (offer only).
    pub ptime: Option<u32>,
    /// `ptime-reverse` toward the offerer (offer only).
    pub ptime_reverse: Option<u32>,
    /// `TOS` for the call's media.
    pub tos: Option<u8>,
    /// `delete delay` seconds (delete).
    pub delete_delay: Option<u32>,
    /// `supports` contains `load limit`: the proxy understands the `load
    /// limit` result.
    pub supports_load_limit: bool,
    /// What was given but not understood, e.g. `flag 'foo'`, `key 'bar'`,
    /// `ICE value 'sometimes'` (at most [`MAX_IGNORED`], then a count).
    pub ignored: Vec<String>,
}

impl Options<'_> {
    /// Whether `SDES` says `off`.
    pub fn sdes_off(&self) -> bool {
        self.sdes.contains(&SdesOption::Off)
    }

    /// The `warning` text for [`Options::ignored`], if anything was.
    pub fn ignored_warning(&self) -> Option<String> {
        ignored_warning(&self.ignored)
    }
}

/// The warning text for a list of ignored options.
pub fn ignored_warning(ignored: &[String]) -> Option<String> {
    if ignored.is_empty() {
        return None;
    }
    Some(format!(
        "Unsupported options ignored: {}",
        ignored.join(", ")
    ))
}

/// Why a request is refused. [`RequestError::reason`] is the
/// `error-reason` text, the same as rtpengine's where rtpengine has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Nothing after the cookie.
    NoPayload,
    /// The payload is not a bencoded dictionary (JSON included).
    InvalidFormat,
    /// The dictionary does not decode.
    Decode(DecodeError),
    /// No `command` string.
    NoCommand,
    /// A command Strait does not implement.
    UnrecognizedCommand,
    /// Offer/answer without `sdp`.
    NoSdp,
    /// No `call-id`.
    NoCallId,
    /// Offer/answer without `from-tag`.
    NoFromTag,
    /// Answer without `to-tag`.
    NoToTag,
    /// The SDP is not UTF-8.
    SdpNotUtf8,
    /// A required value is not UTF-8.
    NotUtf8 {
        /// The key.
        key: &'static str,
    },
    /// `list` with a negative `limit`.
    InvalidLimit,
}

impl RequestError {
    /// The `error-reason` text.
    pub fn reason(&self) -> &'static str {
        match self {
            RequestError::NoPayload => "Invalid data (no payload)",
            RequestError::InvalidFormat => "Invalid NG data format",
            RequestError::Decode(_) => "Could not decode bencode dictionary",
            RequestError::NoCommand => "Dictionary contains no key \"command\"",
            RequestError::UnrecognizedCommand => "Unrecognized command",
            RequestError::NoSdp => "No SDP body in message",
            RequestError::NoCallId => "No call-id in message",
            RequestError::NoFromTag => "No from-tag in message",
            RequestError::NoToTag => "No to-tag in message",
            RequestError::SdpNotUtf8 => "Failed to parse SDP",
            RequestError::NotUtf8 { key } => match *key {
                "call-id" => "Invalid call-id (not UTF-8)",
                "from-tag" => "Invalid from-tag (not UTF-8)",
                "to-tag" => "Invalid to-tag (not UTF-8)",
                _ => "Invalid value (not UTF-8)",
            },
            RequestError::InvalidLimit => "invalid limit, must be >= 0",
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Decode(e) => write!(f, "{}: {e}", self.reason()),
            _ => f.write_str(self.reason()),
        }
    }
}

impl std::error::Error for RequestError {}

/// Parses the payload (what follows the cookie) into a request.
pub fn parse_request<'a>(payload: &'a [u8], limits: &Limits) -> Result<Request<'a>, RequestError> {
    match payload.first() {
        None => return Err(RequestError::NoPayload),
        Some(b'd') => {}
        Some(_) => return Err(RequestError::InvalidFormat),
    }
    let dict = bencode::decode(payload, limits).map_err(RequestError::Decode)?;
    let command = dict
        .get("command")
        .and_then(Borrowed::slice)
        .ok_or(RequestError::NoCommand)?;
    let command = Command::from_wire(command).ok_or(RequestError::UnrecognizedCommand)?;
    Ok(match command {
        Command::Ping => Request::Ping,
        Command::Offer => Request::Offer(offer_answer(&dict, false)?),
        Command::Answer => Request::Answer(offer_answer(&dict, true)?),
        Command::Delete => Request::Delete(delete(&dict)?),
        Command::Query => Request::Query(Query {
            call_id: required(&dict, "call-id", RequestError::NoCallId)?,
            from_tag: optional(&dict, "from-tag")?,
            to_tag: optional(&dict, "to-tag")?,
        }),
        Command::List => Request::List(list(&dict)?),
        Command::Statistics => Request::Statistics,
    })
}

/// The first entry whose normalized key is `key` (already normalized).
fn lookup<'v, 'a>(dict: &'v Borrowed<'a>, key: &str) -> Option<&'v Borrowed<'a>> {
    dict.as_dict()?
        .iter()
        .find(|(k, _)| norm_eq(k, key))
        .map(|(_, v)| v)
}

fn required<'a>(
    dict: &Borrowed<'a>,
    key: &'static str,
    missing: RequestError,
) -> Result<&'a str, RequestError> {
    match lookup(dict, key).and_then(Borrowed::slice) {
        None | Some(b"") => Err(missing),
        Some(b) => std::str::from_utf8(b).map_err(|_| RequestError::NotUtf8 { key }),
    }
}

fn optional<'a>(dict: &Borrowed<'a>, key: &'static str) -> Result<Option<&'a str>, RequestError> {
    match lookup(dict, key).and_then(Borrowed::slice) {
        None | Some(b"") => Ok(None),
        Some(b) => std::str::from_utf8(b)
            .map(Some)
            .map_err(|_| RequestError::NotUtf8 { key }),
    }
}

fn offer_answer<'a>(dict: &Borrowed<'a>, answer: bool) -> Result<OfferAnswer<'a>, RequestError> {
    let sdp = match lookup(dict, "sdp").and_then(Borrowed::slice) {
        None => return Err(RequestError::NoSdp),
        Some(b) => std::str::from_utf8(b).map_err(|_| RequestError::SdpNotUtf8)?,
    };
    let call_id = required(dict, "call-id", RequestError::NoCallId)?;
    let from_tag = required(dict, "from-tag", RequestError::NoFromTag)?;
    let to_tag = optional(dict, "to-tag")?;
    if answer && to_tag.is_none() {
        return Err(RequestError::NoToTag);
    }
    let via_branch = optional(dict, "via-branch")?;
    Ok(OfferAnswer {
        sdp,
        call_id,
        from_tag,
        to_tag,
        via_branch,
        options: parse_options(
            dict,
            if answer {
                Command::Answer
            } else {
                Command::Offer
            },
        ),
    })
}

fn delete<'a>(dict: &Borrowed<'a>) -> Result<Delete<'a>, RequestError> {
    let call_id = required(dict, "call-id", RequestError::NoCallId)?;
    let options = parse_options(dict, Command::Delete);
    Ok(Delete {
        call_id,
        from_tag: optional(dict, "from-tag")?,
        to_tag: optional(dict, "to-tag")?,
        via_branch: optional(dict, "via-branch")?,
        to_tag_selects: options.flags.to_tag,
        fatal: options.flags.fatal,
        delete_delay: options.delete_delay,
        ignored: options.ignored,
    })
}

fn list(dict: &Borrowed<'_>) -> Result<List, RequestError> {
    let limit = match lookup(dict, "limit") {
        None => 32,
        Some(v) => match int_value(v) {
            Some(n) if n < 0 => return Err(RequestError::InvalidLimit),
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            // rtpengine falls back to the default for a non-numeric limit.
            None => 32,
        },
    };
    Ok(List {
        limit: limit.min(MAX_LIST_LIMIT),
    })
}

/// An integer, or a string holding one (rtpengine accepts both).
fn int_value(v: &Borrowed<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

// ---- normalization ----------------------------------------------------------

/// rtpengine's equivalence for key and flag names: ASCII case, and space,
/// hyphen and underscore, do not matter. Byte for byte, so offsets into the
/// normalized form are offsets into the original.
fn norm_byte(b: u8) -> u8 {
    match b {
        b' ' | b'_' => b'-',
        b => b.to_ascii_lowercase(),
    }
}

fn norm(s: &[u8]) -> String {
    s.iter().map(|&b| char::from(norm_byte(b))).collect()
}

fn norm_eq(s: &[u8], normalized: &str) -> bool {
    s.len() == normalized.len()
        && s.iter()
            .zip(normalized.bytes())
            .all(|(&a, b)| norm_byte(a) == b)
}

/// If the normalized `s` starts with `prefix` (normalized), the rest of the
/// original (non-empty).
fn strip_norm_prefix<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if norm_eq(head.as_bytes(), prefix) && s.len() > prefix.len() {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// rtpengine's escapes in codec names: `--` for `=`, `..` for a space.
fn unescape(s: &str) -> Cow<'_, str> {
    if s.contains("--") || s.contains("..") {
        Cow::Owned(s.replace("--", "=").replace("..", " "))
    } else {
        Cow::Borrowed(s)
    }
}

/// Lenient display of raw bytes for warnings (bounded length).
fn shown(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned();
    if b.len() > 64 {
        format!("{s}...")
    } else {
        s
    }
}

// ---- options ----------------------------------------------------------------

/// Keys taken care of outside [`parse_options`] (required fields, the
/// command) or carried for information only (nothing to do with them).
const QUIET_KEYS: &[&str] = &[
    "command",
    "sdp",
    "call-id",
    "from-tag",
    "to-tag",
    "via-branch",
    "sip-message-type",
    "sip-code",
    "sip-response-code",
];

fn parse_options<'a>(dict: &Borrowed<'a>, command: Command) -> Options<'a> {
    let mut p = OptionParser {
        o: Options::default(),
        command,
        overflow: 0,
    };
    for (key, value) in dict.as_dict().unwrap_or_default() {
        p.key(key, value, 0);
    }
    if p.overflow > 0 {
        let n = p.overflow;
        p.o.ignored.push(format!("{n} more"));
    }
    p.o
}

struct OptionParser<'a> {
    o: Options<'a>,
    command: Command,
    overflow: usize,
}

/// Deepest `rtpp_flags` bracket nesting accepted.
const RTPP_MAX_DEPTH: usize = 4;

impl<'a> OptionParser<'a> {
    fn ignore(&mut self, what: impl FnOnce() -> String) {
        if self.o.ignored.len() < MAX_IGNORED {
            self.o.ignored.push(what());
        } else {
            self.overflow += 1;
        }
    }

    /// String items of a list value, or the comma-separated parts of a
    /// string value (rtpengine takes both).
    fn items(&mut self, key: &str, v: &Borrowed<'a>) -> Vec<&'a [u8]> {
        match v {
            Value::List(l) => l
                .iter()
                .filter_map(|item| {
                    let s = item.slice();
                    if s.is_none() {
                        self.ignore(|| format!("non-string item in '{key}'"));
                    }
                    s
                })
                .collect(),
            Value::Bytes(b) => b
                .split(|&c| c == b',')
                .map(|s| s.trim_ascii())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => {
                self.ignore(|| format!("key '{key}' (not a list)"));
                Vec::new()
            }
        }
    }

    fn text(&mut self, key: &str, v: &Borrowed<'a>) -> Option<&'a str> {
        let t = v.text();
        if t.is_none() {
            self.ignore(|| format!("key '{key}' (not a string)"));
        }
        t
    }

    fn key(&mut self, key: &'a [u8], v: &Borrowed<'a>, depth: usize) {
        let n = norm(key);
        match n.as_str() {
            k if QUIET_KEYS.contains(&k) => {}
            "flags" => {
                for item in self.items("flags", v) {
                    self.flag(item);
                }
            }
            "replace" => {
                for item in self.items("replace", v) {
                    self.replace(item);
                }
            }
            "rtcp-mux" => {
                for item in self.items("rtcp-mux", v) {
                    self.rtcp_mux(item);
                }
            }
            "sdes" => {
                for item in self.items("SDES", v) {
                    self.sdes(item);
                }
            }
            "osrtp" => {
                for item in self.items("OSRTP", v) {
                    match std::str::from_utf8(item) {
                        Ok(s) => self.o.osrtp.push(s),
                        Err(_) => self.ignore(|| "OSRTP item (not UTF-8)".into()),
                    }
                }
            }
            "transport-protocol" => {
                if let Some(s) = self.text("transport-protocol", v) {
                    self.transport(s);
                }
            }
            "ice" => {
                if let Some(s) = self.text("ICE", v) {
                    self.o.ice = match norm(s.as_bytes()).as_str() {
                        "remove" => Some(IceOption::Remove),
                        "force" => Some(IceOption::Force),
                        "default" => Some(IceOption::Default),
                        "optional" => Some(IceOption::Optional),
                        "force-relay" => Some(IceOption::ForceRelay),
                        _ => {
                            self.ignore(|| format!("ICE value '{}'", shown(s.as_bytes())));
                            self.o.ice
                        }
                    };
                }
            }
            "ice-lite" => {
                if let Some(s) = self.text("ICE-lite", v) {
                    self.o.ice_lite = match norm(s.as_bytes()).as_str() {
                        "off" | "none" | "no" => Some(IceLite::Off),
                        "forward" | "offer" | "fwd" | "fw" => Some(IceLite::Forward),
                        "backward" | "backwards" | "reverse" | "answer" | "back" | "bkw" | "bk" => {
                            Some(IceLite::Backward)
                        }
                        "both" => Some(IceLite::Both),
                        _ => {
                            self.ignore(|| format!("ICE-lite value '{}'", shown(s.as_bytes())));
                            self.o.ice_lite
                        }
                    };
                }
            }
            "dtls" => {
                if let Some(s) = self.text("DTLS", v) {
                    match dtls_value(s) {
                        Some(d) => self.o.dtls = Some(d),
                        None => self.ignore(|| format!("DTLS value '{}'", shown(s.as_bytes()))),
                    }
                }
            }
            "dtls-reverse" => {
                if let Some(s) = self.text("DTLS-reverse", v) {
                    match dtls_value(s) {
                        Some(d @ (DtlsOption::Passive | DtlsOption::Active)) => {
                            self.o.dtls_reverse = Some(d)
                        }
                        _ => {
                            self.ignore(|| format!("DTLS-reverse value '{}'", shown(s.as_bytes())))
                        }
                    }
                }
            }
            "dtls-fingerprint" => self.o.dtls_fingerprint = self.text("DTLS-fingerprint", v),
            "direction" => {
                let items = self.items("direction", v);
                for (slot, item) in items.into_iter().take(2).enumerate() {
                    self.o.direction[slot] = std::str::from_utf8(item).ok();
                }
            }
            "from-interface" => self.o.direction[0] = self.text("from-interface", v),
            "to-interface" => self.o.direction[1] = self.text("to-interface", v),
            "received-from" => self.received_from(v),
            "media-address" => {
                if let Some(s) = self.text("media address", v) {
                    match s.trim().parse() {
                        Ok(ip) => self.o.media_address = Some(ip),
                        Err(_) => {
                            self.ignore(|| format!("media address '{}'", shown(s.as_bytes())))
                        }
                    }
                }
            }
            "address-family" => {
                if let Some(s) = self.text("address family", v) {
                    match AddressFamily::parse(s) {
                        Some(f) => self.o.address_family = Some(f),
                        None => self.ignore(|| format!("address family '{}'", shown(s.as_bytes()))),
                    }
                }
            }
            "codec" => match v.as_dict() {
                Some(entries) => {
                    for (op, list) in entries {
                        let op = norm(op);
                        for item in self.items("codec", list) {
                            self.codec(&op, item);
                        }
                    }
                }
                None => self.ignore(|| "key 'codec' (not a dictionary)".into()),
            },
            "label" | "from-label" => self.o.label = self.text("label", v),
            "to-label" => self.o.to_label = self.text("to-label", v),
            "ptime" | "ptime-reverse" | "reverse-ptime" => {
                let ms = int_value(v).and_then(|n| u32::try_from(n).ok());
                match ms {
                    // rtpengine takes ptime in offers only.
                    Some(ms) if self.command == Command::Offer => {
                        if n == "ptime" {
                            self.o.ptime = Some(ms);
                        } else {
                            self.o.ptime_reverse = Some(ms);
                        }
                    }
                    Some(_) => {}
                    None => self.ignore(|| format!("key '{n}' (not a number)")),
                }
            }
            "tos" => match int_value(v) {
                Some(t) => self.o.tos = u8::try_from(t).ok(),
                None => self.ignore(|| "key 'TOS' (not a number)".into()),
            },
            "delete-delay" => match int_value(v).and_then(|d| u32::try_from(d).ok()) {
                Some(d) => self.o.delete_delay = Some(d),
                None => self.ignore(|| "key 'delete delay' (not a number)".into()),
            },
            "supports" => {
                for item in self.items("supports", v) {
                    if norm_eq(item, "load-limit") {
                        self.o.supports_load_limit = true;
                    }
                }
            }
            "rtpp-flags" => match v.slice() {
                Some(s) if depth == 0 => self.rtpp_flags(s),
                _ => self.ignore(|| "key 'rtpp_flags'".into()),
            },
            "template" => match v.slice() {
                Some(t) if norm_eq(t, "webrtc") => self.webrtc(),
                _ => self.ignore(|| format!("template '{}'", shown(v.slice().unwrap_or(b"?")))),
            },
            _ => self.ignore(|| format!("key '{}'", shown(key))),
        }
    }

    fn transport(&mut self, s: &str) {
        if s.eq_ignore_ascii_case("accept") {
            self.o.transport_accept = true;
        } else if let Some(p) = TransportProtocol::parse(s) {
            self.o.transport_protocol = Some(p);
        } else {
            self.ignore(|| format!("transport protocol '{}'", shown(s.as_bytes())));
        }
    }

    fn received_from(&mut self, v: &Borrowed<'a>) {
        let (family, address) = match v {
            Value::List(l) => match (l.first().and_then(Borrowed::text), l.get(1)) {
                (Some(f), Some(a)) => (AddressFamily::parse(f), a.text()),
                (Some(a), None) => (None, Some(a)),
                _ => (None, None),
            },
            Value::Bytes(_) => (None, v.text()),
            _ => (None, None),
        };
        match address.and_then(|a| a.trim().parse::<IpAddr>().ok()) {
            Some(address) => self.o.received_from = Some(ReceivedFrom { family, address }),
            None => self.ignore(|| "received from (no valid address)".into()),
        }
    }

    fn replace(&mut self, item: &[u8]) {
        let r = &mut self.o.replace;
        let field = match norm(item).as_str() {
            "origin" => &mut r.origin,
            "origin-full" => &mut r.origin_full,
            "session-connection" => &mut r.session_connection,
            "session-name" => &mut r.session_name,
            "sdp-version" => &mut r.sdp_version,
            "force-increment-sdp-ver" | "force-increment-sdp-version" => {
                &mut r.force_increment_sdp_version
            }
            "username" => &mut r.username,
            "zero-address" => &mut r.zero_address,
            _ => {
                self.ignore(|| format!("replace '{}'", shown(item)));
                return;
            }
        };
        *field = true;
    }

    fn rtcp_mux(&mut self, item: &[u8]) {
        let m = &mut self.o.rtcp_mux;
        let field = match norm(item).as_str() {
            "offer" => &mut m.offer,
            "require" => &mut m.require,
            "demux" => &mut m.demux,
            "accept" => &mut m.accept,
            "reject" => &mut m.reject,
            _ => {
                self.ignore(|| format!("rtcp-mux '{}'", shown(item)));
                return;
            }
        };
        *field = true;
    }

    fn sdes(&mut self, item: &'a [u8]) {
        let Ok(s) = std::str::from_utf8(item) else {
            self.ignore(|| "SDES item (not UTF-8)".into());
            return;
        };
        let n = norm(item);
        let opt = match n.as_str() {
            "off" | "no" | "disable" | "disabled" => SdesOption::Off,
            "pad" => SdesOption::Pad,
            "lifetime" => SdesOption::Lifetime,
            "static" => SdesOption::Static,
            "nonew" => SdesOption::NoNew,
            "prefer" => SdesOption::Prefer,
            "unencrypted-srtp"
            | "unencrypted-srtcp"
            | "unauthenticated-srtp"
            | "encrypted-srtp"
            | "encrypted-srtcp"
            | "authenticated-srtp" => SdesOption::Param(s),
            _ => {
                if let Some(suite) = strip_norm_prefix(s, "no-") {
                    SdesOption::No(suite)
                } else if let Some(suite) = strip_norm_prefix(s, "only-") {
                    SdesOption::Only(suite)
                } else if let Some(list) = strip_norm_prefix(s, "order:") {
                    SdesOption::Order(list)
                } else if let Some(list) = strip_norm_prefix(s, "offerer-pref:") {
                    SdesOption::OffererPref(list)
                } else {
                    self.ignore(|| format!("SDES '{}'", shown(item)));
                    return;
                }
            }
        };
        self.o.sdes.push(opt);
    }

    fn codec(&mut self, op: &str, item: &'a [u8]) {
        let Ok(name) = std::str::from_utf8(item) else {
            self.ignore(|| "codec name (not UTF-8)".into());
            return;
        };
        let c = &mut self.o.codec;
        let list = match op {
            "strip" => &mut c.strip,
            "offer" => &mut c.offer,
            "transcode" => &mut c.transcode,
            "mask" => &mut c.mask,
            "accept" => &mut c.accept,
            "consume" => &mut c.consume,
            "except" => &mut c.except,
            "set" => &mut c.set,
            _ => {
                self.ignore(|| format!("codec operation '{op}'"));
                return;
            }
        };
        list.push(unescape(name));
    }

    fn webrtc(&mut self) {
        let o = &mut self.o;
        o.flags.webrtc = true;
        o.transport_protocol = Some(TransportProtocol::UdpTlsRtpSavpf);
        o.ice = Some(IceOption::Force);
        o.flags.trickle_ice = true;
        o.rtcp_mux.offer = true;
        o.rtcp_mux.require = true;
        o.flags.no_rtcp_attribute = true;
        if !o.sdes.contains(&SdesOption::Off) {
            o.sdes.push(SdesOption::Off);
        }
        o.flags.generate_mid = true;
    }

    /// One item of `flags` (or a bare word of `rtpp_flags`).
    fn flag(&mut self, item: &'a [u8]) {
        let Ok(s) = std::str::from_utf8(item) else {
            self.ignore(|| format!("flag '{}' (not UTF-8)", shown(item)));
            return;
        };
        let n = norm(item);
        let f = &mut self.o.flags;
        let field = match n.as_str() {
            "trust-address" => {
                f.trust_address = Some(true);
                return;
            }
            "sip-source-address" => {
                f.trust_address = Some(false);
                return;
            }
            "webrtc" => {
                self.webrtc();
                return;
            }
            "pad-crypto" => {
                self.o.sdes.push(SdesOption::Pad);
                return;
            }
            "always-transcode" => {
                f.always_transcode = true;
                self.o.codec.accept.push(Cow::Borrowed("all"));
                return;
            }
            "symmetric" => &mut f.symmetric,
            "asymmetric" => &mut f.asymmetric,
            "unidirectional" => &mut f.unidirectional,
            "strict-source" => &mut f.strict_source,
            "media-handover" => &mut f.media_handover,
            "port-latching" => &mut f.port_latching,
            "no-port-latching" => &mut f.no_port_latching,
            "reset" => &mut f.reset,
            "record-call" => &mut f.record_call,
            "loop-protect" => &mut f.loop_protect,
            "original-sendrecv" => &mut f.original_sendrecv,
            "single-codec" => &mut f.single_codec,
            "reuse-codecs" | "no-codec-renegotiation" => &mut f.reuse_codecs,
            "trickle-ice" => &mut f.trickle_ice,
            "reject-ice" | "ice-reject" => &mut f.reject_ice,
            "generate-mid" => &mut f.generate_mid,
            "no-rtcp-attribute" => &mut f.no_rtcp_attribute,
            "full-rtcp-attribute" => &mut f.full_rtcp_attribute,
            "strip-extmap" => &mut f.strip_extmap,
            "pierce-nat" => &mut f.pierce_nat,
            "nat-wait" => &mut f.nat_wait,
            "early-media" => &mut f.early_media,
            "inject-dtmf" => &mut f.inject_dtmf,
            "detect-dtmf" => &mut f.detect_dtmf,
            "generate-rtcp" => &mut f.generate_rtcp,
            "allow-transcoding" => &mut f.allow_transcoding,
            "fragment" => &mut f.fragment,
            "fatal" => &mut f.fatal,
            "to-tag" => &mut f.to_tag,
            "directional" => &mut f.directional,
            "all" => &mut f.all,
            "debug" | "debugging" => &mut f.debug,
            _ => {
                self.prefixed_flag(s);
                return;
            }
        };
        *field = true;
    }

    /// rtpengine's prefixed aliases (`replace-origin`, `SDES-off`, ...).
    fn prefixed_flag(&mut self, s: &'a str) {
        const CODEC: &[(&str, &str)] = &[
            ("codec-strip-", "strip"),
            ("codec-offer-", "offer"),
            ("codec-transcode-", "transcode"),
            ("transcode-", "transcode"),
            ("codec-mask-", "mask"),
            ("codec-accept-", "accept"),
            ("codec-consume-", "consume"),
            ("codec-except-", "except"),
            ("codec-set-", "set"),
        ];
        for (prefix, op) in CODEC {
            if let Some(name) = strip_norm_prefix(s, prefix) {
                self.codec(op, name.as_bytes());
                return;
            }
        }
        if let Some(rest) = strip_norm_prefix(s, "replace-") {
            self.replace(rest.as_bytes());
        } else if let Some(rest) = strip_norm_prefix(s, "rtcp-mux-") {
            self.rtcp_mux(rest.as_bytes());
        } else if let Some(rest) = strip_norm_prefix(s, "sdes-") {
            self.sdes(rest.as_bytes());
        } else if let Some(rest) = strip_norm_prefix(s, "osrtp-") {
            self.o.osrtp.push(rest);
        } else {
            self.ignore(|| format!("flag '{}'", shown(s.as_bytes())));
        }
    }

    /// Kamailio's parse-by-daemon form: one string of space-separated words,
    /// `key=value` and `key=[list or key=value dictionary]`, plus the
    /// transport shorthands (`RTP/AVP`, `SRTP`, `AVPF`, `DTLS`, ...) and
    /// `internal`/`external` directions.
    fn rtpp_flags(&mut self, s: &'a [u8]) {
        let mut r = Rtpp { s, pos: 0 };
        // rtpengine's transport bits: 0x100 set, 1 SRTP, 2 AVPF, 4 DTLS.
        let mut transport: u16 = 0;
        let mut directions = 0;
        while let Some((key, value)) = r.top_item() {
            let Some(value) = value else {
                match key {
                    b"RTP" => transport = (transport | 0x100) & !0x001,
                    b"AVP" => transport = (transport | 0x100) & !0x002,
                    b"SRTP" => transport |= 0x101,
                    b"AVPF" => transport |= 0x102,
                    b"DTLS" => transport |= 0x104,
                    b"RTP/AVP" => transport = 0x100,
                    b"RTP/SAVP" => transport = 0x101,
                    b"RTP/AVPF" => transport = 0x102,
                    b"RTP/SAVPF" => transport = 0x103,
                    b"UDP/TLS/RTP/SAVP" => transport = 0x104,
                    b"UDP/TLS/RTP/SAVPF" => transport = 0x106,
                    b"internal" | b"external" => {
                        if directions < 2 {
                            self.o.direction[directions] = std::str::from_utf8(key).ok();
                            directions += 1;
                        }
                    }
                    _ => self.flag(key),
                }
                continue;
            };
            if norm_eq(key, "direction") {
                if let Some(d) = value.text() {
                    if directions < 2 {
                        self.o.direction[directions] = Some(d);
                        directions += 1;
                    }
                    continue;
                }
            }
            // "transcode=X", "codec-strip=X", ...: the flag forms with a value.
            if let Some(op) = codec_key(key) {
                for item in self.items("codec", &value) {
                    self.codec(op, item);
                }
                continue;
            }
            if let Some(list) = ["replace", "rtcp-mux", "sdes", "osrtp"]
                .into_iter()
                .find(|k| norm_eq(key, k))
            {
                // A single value is one item, not a comma list.
                let value = match value {
                    Value::Bytes(b) => Value::List(vec![Value::Bytes(b)]),
                    v => v,
                };
                self.key(list.as_bytes(), &value, 1);
                continue;
            }
            self.key(key, &value, 1);
        }
        if r.truncated() {
            self.ignore(|| "rtpp_flags (unbalanced brackets)".into());
        }
        if transport & 0x100 != 0 {
            let p = match transport & 0x7 {
                0 => Some(TransportProtocol::RtpAvp),
                1 => Some(TransportProtocol::RtpSavp),
                2 => Some(TransportProtocol::RtpAvpf),
                3 => Some(TransportProtocol::RtpSavpf),
                4 => Some(TransportProtocol::UdpTlsRtpSavp),
                6 => Some(TransportProtocol::UdpTlsRtpSavpf),
                _ => None,
            };
            match p {
                Some(p) => self.o.transport_protocol = Some(p),
                None => self.ignore(|| "transport flags (no such profile)".into()),
            }
        }
    }
}

fn dtls_value(s: &str) -> Option<DtlsOption> {
    match norm(s.as_bytes()).as_str() {
        "off" | "no" | "disable" | "disabled" => Some(DtlsOption::Off),
        "passive" => Some(DtlsOption::Passive),
        "active" => Some(DtlsOption::Active),
        _ => None,
    }
}

fn codec_key(key: &[u8]) -> Option<&'static str> {
    const KEYS: &[(&str, &str)] = &[
        ("transcode", "transcode"),
        ("codec-transcode", "transcode"),
        ("codec-strip", "strip"),
        ("codec-offer", "offer"),
        ("codec-mask", "mask"),
        ("codec-set", "set"),
        ("codec-accept", "accept"),
        ("codec-consume", "consume"),
        ("codec-except", "except"),
    ];
    KEYS.iter()
        .find(|(k, _)| norm_eq(key, k))
        .map(|(_, op)| *op)
}

/// A cursor over an `rtpp_flags` string.
struct Rtpp<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Rtpp<'a> {
    fn skip_spaces(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    /// Bytes up to (not including) a space or one of `stops`.
    fn word(&mut self, stops: &[u8]) -> &'a [u8] {
        let start = self.pos;
        while let Some(&b) = self.s.get(self.pos) {
            if b.is_ascii_whitespace() || stops.contains(&b) {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// Top level: `word` or `key=value`/`key=[...]`. `None` at the end.
    fn top_item(&mut self) -> Option<(&'a [u8], Option<Borrowed<'a>>)> {
        loop {
            self.skip_spaces();
            if self.pos >= self.s.len() {
                return None;
            }
            let key = self.word(b"=");
            if key.is_empty() {
                // A stray '='; skip it.
                self.pos += 1;
                continue;
            }
            if self.s.get(self.pos) != Some(&b'=') {
                return Some((key, None));
            }
            self.pos += 1;
            let value = if self.s.get(self.pos) == Some(&b'[') {
                self.group(1)
            } else {
                // A plain value runs to the next space ('=' allowed inside).
                Value::Bytes(self.word(b""))
            };
            return Some((key, Some(value)));
        }
    }

    /// After a `[`'s position: items up to the matching `]` (or the end).
    /// Items with `k=` make a dictionary, otherwise a list.
    fn group(&mut self, depth: usize) -> Borrowed<'a> {
        self.pos += 1; // '['
        let mut list = Vec::new();
        let mut dict = Vec::new();
        loop {
            self.skip_spaces();
            match self.s.get(self.pos) {
                None => {
                    // Unterminated: mark it for the caller.
                    self.pos = self.s.len() + 1;
                    break;
                }
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b'[') => {
                    if depth >= RTPP_MAX_DEPTH {
                        // Too deep: swallow the rest as unbalanced.
                        self.pos = self.s.len() + 1;
                        break;
                    }
                    list.push(self.group(depth + 1));
                }
                Some(_) => {
                    let word = self.word(b"=]");
                    if self.s.get(self.pos) == Some(&b'=') {
                        self.pos += 1;
                        let value = if self.s.get(self.pos) == Some(&b'[') && depth < RTPP_MAX_DEPTH
                        {
                            self.group(depth + 1)
                        } else {
                            Value::Bytes(self.word(b"]"))
                        };
                        dict.push((word, value));
                    } else if word.is_empty() {
                        // e.g. "=" alone: skip a byte to make progress.
                        self.pos += 1;
                    } else {
                        list.push(Value::Bytes(word));
                    }
                }
            }
        }
        if dict.is_empty() {
            Value::List(list)
        } else {
            Value::Dict(dict)
        }
    }

    /// Whether a group ran off the end of the string (or too deep).
    fn truncated(&self) -> bool {
        self.pos > self.s.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(dict: &Owned) -> Result<Request<'static>, RequestError> {
        // Leak in tests only: requests borrow from the payload.
        let bytes: &'static [u8] = Box::leak(dict.to_bytes().into_boxed_slice());
        parse_request(bytes, &Limits::default())
    }

    use super::bencode::Owned;

    fn s(v: &str) -> Owned {
        Owned::str(v)
    }

    fn l(items: &[&str]) -> Owned {
        Value::List(items.iter().map(|i| s(i)).collect())
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n";

    fn base(command: &str) -> Owned {
        Owned::dict()
            .with("supports", l(&["load limit"]))
            .with("sdp", s(SDP))
            .with("call-id", s("a84b4c76e66710@pc33.example.com"))
            .with("via-branch", s("z9hG4bK776asdhds0"))
            .with("received-from", l(&["IP4", "192.0.2.10"]))
            .with("from-tag", s("1928301774"))
            .with("command", s(command))
    }

    #[test]
    fn frame_splits_at_the_first_space() {
        let f = Frame::split(b"5323_1 d7:command4:pinge").unwrap();
        assert_eq!(
            (f.cookie, f.payload),
            (&b"5323_1"[..], &b"d7:command4:pinge"[..])
        );
        assert_eq!(Frame::split(b"nospace"), None);
        assert_eq!(Frame::split(b" d7:command4:pinge"), None);
        let long = format!("{} d7:command4:pinge", "c".repeat(MAX_COOKIE_LEN + 1));
        assert_eq!(Frame::split(long.as_bytes()), None);
        let max = format!("{} x", "c".repeat(MAX_COOKIE_LEN));
        assert_eq!(Frame::split(max.as_bytes()).unwrap().payload, b"x");
        assert_eq!(Frame::split(b"c ").unwrap().payload, b"");
    }

    #[test]
    fn protocol_errors_carry_rtpengine_reasons() {
        let limits = Limits::default();
        let cases: &[(&[u8], &str)] = &[
            (b"", "Invalid data (no payload)"),
            (b"{\"command\":\"ping\"}", "Invalid NG data format"),
            (b"d7:command4:ping", "Could not decode bencode dictionary"),
            (b"d3:foo3:bare", "Dictionary contains no key \"command\""),
            (b"d7:commandi1ee", "Dictionary contains no key \"command\""),
            (b"d7:command15:start recordinge", "Unrecognized command"),
            (b"d7:command4:PINGe", "Unrecognized command"),
            (b"d7:command5:offere", "No SDP body in message"),
            (b"d7:command5:offer3:sdp3:v=0e", "No call-id in message"),
            (
                b"d7:command5:offer3:sdp3:v=07:call-id1:ce",
                "No from-tag in message",
            ),
            (
                b"d7:command6:answer3:sdp3:v=07:call-id1:c8:from-tag1:fe",
                "No to-tag in message",
            ),
            (b"d7:command6:deletee", "No call-id in message"),
            (b"d7:command5:querye", "No call-id in message"),
            (
                b"d7:command4:list5:limiti-1ee",
                "invalid limit, must be >= 0",
            ),
            (b"d7:command5:offer3:sdp2:\xff\xfee", "Failed to parse SDP"),
        ];
        for (payload, reason) in cases {
            let e = parse_request(payload, &limits).unwrap_err();
            assert_eq!(e.reason(), *reason, "{}", String::from_utf8_lossy(payload));
        }
    }

    #[test]
    fn kamailio_offer_with_flags_parsed_by_the_module() {
        // rtpengine_offer("trust-address replace-origin replace-session-connection
        //   rtcp-mux-demux ICE=remove RTP/AVP label=caller SDES-off codec-strip-opus
        //   codec-mask-all transcode-PCMA address-family=IP4 media-address=203.0.113.5
        //   direction=internal direction=external")
        // as the Kamailio module turns it into a dictionary.
        let d = base("offer")
            .with("ICE", s("remove"))
            .with("label", s("caller"))
            .with("address-family", s("IP4"))
            .with("media-address", s("203.0.113.5"))
            .with("direction", l(&["internal", "external"]))
            .with("flags", l(&["trust-address"]))
            .with("replace", l(&["origin", "session-connection"]))
            .with(
                "codec",
                Owned::dict()
                    .with("strip", l(&["opus"]))
                    .with("mask", l(&["all"]))
                    .with("transcode", l(&["PCMA"])),
            )
            .with("transport-protocol", s("RTP/AVP"))
            .with("rtcp-mux", l(&["demux"]))
            .with("SDES", l(&["off"]));
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!("not an offer")
        };
        assert_eq!(o.sdp, SDP);
        assert_eq!(o.call_id, "a84b4c76e66710@pc33.example.com");
        assert_eq!(o.from_tag, "1928301774");
        assert_eq!(o.to_tag, None);
        assert_eq!(o.via_branch, Some("z9hG4bK776asdhds0"));
        let p = &o.options;
        assert_eq!(p.ice, Some(IceOption::Remove));
        assert_eq!(p.transport_protocol, Some(TransportProtocol::RtpAvp));
        assert_eq!(p.flags.trust_address, Some(true));
        assert!(p.replace.origin && p.replace.session_connection && !p.replace.session_name);
        assert!(p.rtcp_mux.demux && !p.rtcp_mux.require);
        assert!(p.sdes_off());
        assert_eq!(p.codec.strip, vec!["opus"]);
        assert_eq!(p.codec.mask, vec!["all"]);
        assert_eq!(p.codec.transcode, vec!["PCMA"]);
        assert_eq!(p.label, Some("caller"));
        assert_eq!(p.address_family, Some(AddressFamily::Ip4));
        assert_eq!(p.media_address, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(p.direction, [Some("internal"), Some("external")]);
        assert_eq!(
            p.received_from,
            Some(ReceivedFrom {
                family: Some(AddressFamily::Ip4),
                address: "192.0.2.10".parse().unwrap()
            })
        );
        assert!(p.supports_load_limit);
        assert!(p.ignored.is_empty(), "{:?}", p.ignored);
        assert_eq!(p.ignored_warning(), None);
    }

    #[test]
    fn flag_list_aliases_equal_dictionary_keys() {
        // The same options as items of the flags list, the way rtpengine's
        // own documentation and OpenSIPS users write them.
        let d = base("offer").with(
            "flags",
            l(&[
                "trust address",
                "replace-origin",
                "replace-session-connection",
                "rtcp-mux-demux",
                "SDES-off",
                "codec-strip-opus",
                "codec-mask-all",
                "transcode-PCMA",
                "strict source",
                "no-rtcp-attribute",
            ]),
        );
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        let p = &o.options;
        assert_eq!(p.flags.trust_address, Some(true));
        assert!(p.replace.origin && p.replace.session_connection);
        assert!(p.rtcp_mux.demux);
        assert!(p.sdes_off());
        assert_eq!(
            (
                p.codec.strip.clone(),
                p.codec.mask.clone(),
                p.codec.transcode.clone()
            ),
            (vec!["opus".into()], vec!["all".into()], vec!["PCMA".into()])
        );
        assert!(p.flags.strict_source && p.flags.no_rtcp_attribute);
        assert!(p.ignored.is_empty(), "{:?}", p.ignored);
    }

    #[test]
    fn webrtc_shorthand_and_explicit_overrides() {
        let d = base("offer")
            .with("flags", l(&["WebRTC"]))
            .with("DTLS", s("passive"));
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        let p = &o.options;
        assert!(p.flags.webrtc);
        assert_eq!(
            p.transport_protocol,
            Some(TransportProtocol::UdpTlsRtpSavpf)
        );
        assert_eq!(p.ice, Some(IceOption::Force));
        assert!(p.flags.trickle_ice && p.flags.generate_mid && p.flags.no_rtcp_attribute);
        assert!(p.rtcp_mux.offer && p.rtcp_mux.require);
        assert!(p.sdes_off());
        assert_eq!(p.dtls, Some(DtlsOption::Passive));

        // template=WebRTC, then a later key overrides part of it.
        let d = base("offer")
            .with("template", s("WebRTC"))
            .with("ICE", s("default"));
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(o.options.ice, Some(IceOption::Default));
        assert_eq!(
            o.options.transport_protocol,
            Some(TransportProtocol::UdpTlsRtpSavpf)
        );
    }

    #[test]
    fn answer_needs_a_to_tag_and_keeps_tags_as_sent() {
        let d = base("answer").with("to-tag", s("a6c85cf"));
        let Request::Answer(a) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!((a.from_tag, a.to_tag), ("1928301774", Some("a6c85cf")));
    }

    #[test]
    fn opensips_answer_with_rtpp_style_keys() {
        // OpenSIPS: rtpengine_answer("RTP/SAVPF ICE=force DTLS=passive
        // rtcp-mux-require") arrives as keys and flags.
        let d = base("answer")
            .with("to-tag", s("a6c85cf"))
            .with("transport protocol", s("RTP/SAVPF"))
            .with("ICE", s("force"))
            .with("DTLS", s("passive"))
            .with("rtcp-mux", l(&["require"]));
        let Request::Answer(a) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(
            a.options.transport_protocol,
            Some(TransportProtocol::RtpSavpf)
        );
        assert_eq!(a.options.dtls, Some(DtlsOption::Passive));
        assert!(a.options.rtcp_mux.require);
    }

    #[test]
    fn rtpp_flags_string_parsed_by_the_daemon() {
        let d = base("offer").with(
            "rtpp_flags",
            s(
                "replace-origin via-branch=auto-next strict-source label=callee OSRTP-accept \
               transport-protocol=RTP/AVP address-family=IP4 ICE=remove \
               codec=[transcode=[PCMA PCMU] strip=[EVS]] rtcp-mux=[offer require] \
               SDES=off internal external",
            ),
        );
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        let p = &o.options;
        assert!(p.replace.origin && p.flags.strict_source);
        assert_eq!(p.label, Some("callee"));
        assert_eq!(p.osrtp, vec!["accept"]);
        assert_eq!(p.transport_protocol, Some(TransportProtocol::RtpAvp));
        assert_eq!(p.address_family, Some(AddressFamily::Ip4));
        assert_eq!(p.ice, Some(IceOption::Remove));
        assert_eq!(p.codec.transcode, vec!["PCMA", "PCMU"]);
        assert_eq!(p.codec.strip, vec!["EVS"]);
        assert!(p.rtcp_mux.offer && p.rtcp_mux.require);
        assert!(p.sdes_off());
        assert_eq!(p.direction, [Some("internal"), Some("external")]);
        // via-branch=auto-next is a directive for Kamailio itself (which
        // sends the branch as its own key): quietly passed over.
        assert!(p.ignored.is_empty(), "{:?}", p.ignored);

        let d = base("offer").with("rtpp_flags", s("SRTP AVPF DTLS=off"));
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(
            o.options.transport_protocol,
            Some(TransportProtocol::RtpSavpf)
        );
        assert_eq!(o.options.dtls, Some(DtlsOption::Off));

        // Unbalanced and deeply nested brackets do not panic.
        for junk in [
            "codec=[strip=[a",
            "x=[[[[[[[[[[]]",
            "=",
            "[",
            "]]] a=",
            "a==b",
        ] {
            let d = base("offer").with("rtpp_flags", s(junk));
            assert!(parse(&d).is_ok(), "{junk}");
        }
    }

    #[test]
    fn unknown_options_are_collected_not_fatal() {
        let d = base("offer")
            .with("flags", l(&["trust-address", "frobnicate", "SDES-bogus"]))
            .with("ICE", s("sometimes"))
            .with("shiny", s("yes"))
            .with("replace", l(&["everything"]));
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(o.options.flags.trust_address, Some(true));
        assert_eq!(o.options.ice, None);
        assert_eq!(
            o.options.ignored,
            vec![
                "flag 'frobnicate'",
                "SDES 'bogus'",
                "ICE value 'sometimes'",
                "key 'shiny'",
                "replace 'everything'"
            ]
        );
        let w = o.options.ignored_warning().unwrap();
        assert!(
            w.starts_with("Unsupported options ignored: flag 'frobnicate'"),
            "{w}"
        );
    }

    #[test]
    fn ignored_list_is_bounded() {
        let many: Vec<String> = (0..100).map(|i| format!("x{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let d = base("offer").with("flags", l(&refs));
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(o.options.ignored.len(), MAX_IGNORED + 1);
        assert_eq!(o.options.ignored.last().unwrap(), "68 more");
    }

    #[test]
    fn delete_query_list() {
        let d = Owned::dict()
            .with("command", s("delete"))
            .with("call-id", s("c1"))
            .with("from-tag", s("f1"))
            .with("to-tag", s("t1"))
            .with("flags", l(&["fatal", "to-tag"]))
            .with("delete delay", Value::Int(0));
        let Request::Delete(del) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(
            del,
            Delete {
                call_id: "c1",
                from_tag: Some("f1"),
                to_tag: Some("t1"),
                via_branch: None,
                to_tag_selects: true,
                fatal: true,
                delete_delay: Some(0),
                ignored: vec![],
            }
        );
        let d = Owned::dict()
            .with("command", s("query"))
            .with("call-id", s("c1"))
            .with("to-tag", s("t1"));
        assert_eq!(
            parse(&d).unwrap(),
            Request::Query(Query {
                call_id: "c1",
                from_tag: None,
                to_tag: Some("t1")
            })
        );
        let d = Owned::dict().with("command", s("list"));
        assert_eq!(parse(&d).unwrap(), Request::List(List { limit: 32 }));
        let d = Owned::dict()
            .with("command", s("list"))
            .with("limit", s("5"));
        assert_eq!(parse(&d).unwrap(), Request::List(List { limit: 5 }));
        let d = Owned::dict()
            .with("command", s("list"))
            .with("limit", Value::Int(i64::MAX));
        assert_eq!(
            parse(&d).unwrap(),
            Request::List(List {
                limit: MAX_LIST_LIMIT
            })
        );
        assert_eq!(
            parse(&Owned::dict().with("command", s("statistics"))).unwrap(),
            Request::Statistics
        );
        assert_eq!(
            parse(&Owned::dict().with("command", s("ping"))).unwrap(),
            Request::Ping
        );
    }

    #[test]
    fn names_match_like_rtpengine() {
        assert!(norm_eq(b"Trust_Address", "trust-address"));
        assert!(norm_eq(b"address family", "address-family"));
        assert!(!norm_eq(b"address-famil", "address-family"));
        assert_eq!(
            strip_norm_prefix("SDES-no-AES_CM_128", "sdes-"),
            Some("no-AES_CM_128")
        );
        assert_eq!(strip_norm_prefix("sdes-", "sdes-"), None);
        assert_eq!(unescape("iLBC/8000/1///mode--30"), "iLBC/8000/1///mode=30");
        assert_eq!(unescape("a..b"), "a b");
        let d = base("offer").with(
            "flags",
            l(&[
                "SDES-no-AES_CM_128_HMAC_SHA1_32",
                "codec-set-opus/48000/2/32000",
            ]),
        );
        let Request::Offer(o) = parse(&d).unwrap() else {
            panic!()
        };
        assert_eq!(
            o.options.sdes,
            vec![SdesOption::No("AES_CM_128_HMAC_SHA1_32")]
        );
        assert_eq!(o.options.codec.set, vec!["opus/48000/2/32000"]);
    }
}
