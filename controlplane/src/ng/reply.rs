//! ng replies: what a handler returns ([`NgError`], [`SdpReply`],
//! [`DeleteReply`], [`CallInfo`], [`Statistics`]) and how it is encoded,
//! with rtpengine's keys.
//!
//! Every reply has `result`: `ok`, `pong` (ping), `error` (then
//! `error-reason` and nothing else) or `load limit` (then `message`). An
//! `ok` reply may carry `warning`, a human-readable non-fatal problem.
//!
//! # Error strings
//!
//! SIP proxies log these, and scripts and SBC tooling match on some of them,
//! so they are rtpengine's own strings.
//!
//! | situation | `result` | `error-reason` / `message` |
//! |---|---|---|
//! | nothing after the cookie | error | `Invalid data (no payload)` |
//! | payload is not a bencoded dictionary (JSON included) | error | `Invalid NG data format` |
//! | dictionary does not decode | error | `Could not decode bencode dictionary` |
//! | no `command` | error | `Dictionary contains no key "command"` |
//! | command not implemented | error | `Unrecognized command` |
//! | offer/answer without `sdp` | error | `No SDP body in message` |
//! | no `call-id` | error | `No call-id in message` |
//! | offer/answer without `from-tag` | error | `No from-tag in message` |
//! | answer without `to-tag` | error | `No to-tag in message` |
//! | `list` with a negative `limit` | error | `invalid limit, must be >= 0` |
//! | call not known (answer, query) | error | `Unknown call-id` |
//! | SDP does not parse (or is not UTF-8) | error | `Failed to parse SDP` |
//! | SDP lacks what is needed | error | `Incomplete SDP specification` |
//! | tags do not fit the call | error | `Invalid dialogue association` |
//! | SDP could not be rewritten | error | `Error rewriting SDP` |
//! | no media ports left | error | `Ran out of ports` |
//! | delete of an unknown call | ok + `warning` (error with flag `fatal`) | `Call-ID not found or tags didn't match` |
//! | offer over a limit, proxy did not send `supports: [load limit]` | error | `Parallel session limit reached` |
//! | offer over a limit, proxy supports it | load limit | `Parallel session limit reached`, `CPU usage limit exceeded`, `Load limit exceeded`, `Bandwidth limit exceeded` |
//! | message over `max_message_bytes` (Strait's own) | error | `Message too large` |
//! | required value not UTF-8 (Strait's own) | error | `Invalid call-id (not UTF-8)` (from-tag, to-tag alike) |
//!
//! Options Strait ignores are reported as `warning: Unsupported options
//! ignored: flag 'x', key 'y'` on an otherwise `ok` reply.

use std::net::{IpAddr, SocketAddr};

use super::bencode::{Owned, Value};

/// Why the load limit was hit (rtpengine's four reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadLimit {
    /// Too many sessions.
    MaxSessions,
    /// CPU usage too high.
    Cpu,
    /// Load average too high.
    Load,
    /// Bandwidth too high.
    Bandwidth,
}

impl LoadLimit {
    /// The `message` text.
    pub fn message(self) -> &'static str {
        match self {
            LoadLimit::MaxSessions => "Parallel session limit reached",
            LoadLimit::Cpu => "CPU usage limit exceeded",
            LoadLimit::Load => "Load limit exceeded",
            LoadLimit::Bandwidth => "Bandwidth limit exceeded",
        }
    }
}

/// A command that failed in the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NgError {
    /// No such call (`Unknown call-id`).
    UnknownCallId,
    /// Delete found no such call or branch (`Call-ID not found or tags
    /// didn't match`): a warning on an `ok` reply unless the request had
    /// `fatal`.
    CallNotFound,
    /// `Failed to parse SDP`.
    FailedToParseSdp,
    /// `Incomplete SDP specification`.
    IncompleteSdp,
    /// `Invalid dialogue association`.
    InvalidDialogue,
    /// `Error rewriting SDP`.
    RewriteFailed,
    /// `Ran out of ports`.
    OutOfPorts,
    /// Over a limit (offers): a `load limit` reply if the proxy supports
    /// it, else the error `Parallel session limit reached`.
    LoadLimit(LoadLimit),
    /// Anything else, as `error-reason`.
    Other(String),
}

impl NgError {
    /// The `error-reason` text.
    pub fn reason(&self) -> &str {
        match self {
            NgError::UnknownCallId => "Unknown call-id",
            NgError::CallNotFound => "Call-ID not found or tags didn't match",
            NgError::FailedToParseSdp => "Failed to parse SDP",
            NgError::IncompleteSdp => "Incomplete SDP specification",
            NgError::InvalidDialogue => "Invalid dialogue association",
            NgError::RewriteFailed => "Error rewriting SDP",
            NgError::OutOfPorts => "Ran out of ports",
            // rtpengine's legacy answer whatever the reason.
            NgError::LoadLimit(_) => LoadLimit::MaxSessions.message(),
            NgError::Other(s) => s,
        }
    }
}

impl std::fmt::Display for NgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for NgError {}

/// A successful offer or answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdpReply {
    /// The rewritten SDP for the proxy to put in the SIP message.
    pub sdp: String,
    /// A non-fatal problem to report.
    pub warning: Option<String>,
}

/// Packet counters of one stream (or a total).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Errors (e.g. failed SRTP authentication).
    pub errors: u64,
}

/// One packet stream (RTP or RTCP) of a media section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// Local port, if bound.
    pub local_port: Option<u16>,
    /// Where packets are sent (learned or signalled).
    pub endpoint: Option<SocketAddr>,
    /// The address the SDP announced.
    pub advertised_endpoint: Option<SocketAddr>,
    /// SRTP suite in use, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub crypto_suite: Option<String>,
    /// UNIX time of the last packet received (0: none).
    pub last_packet: i64,
    /// Status flags: `RTP`, `RTCP`, `filled`, `confirmed`, `ICE`...
    pub flags: Vec<String>,
    /// Received packets.
    pub stats: StreamStats,
}

/// One SDP media section of one party.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaInfo {
    /// 1-based index in the SDP.
    pub index: u32,
    /// `audio`, `video`...
    pub media_type: String,
    /// `RTP/AVP`, `UDP/TLS/RTP/SAVPF`...
    pub protocol: Option<String>,
    /// Status flags: `initialized`, `rtcp-mux`, `DTLS-SRTP`, `SDES`, `ICE`...
    pub flags: Vec<String>,
    /// Its packet streams.
    pub streams: Vec<StreamInfo>,
}

/// One party (SIP tag) of a call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagInfo {
    /// The SIP tag ("" for a side that has not signalled one yet).
    pub tag: String,
    /// The label given in signalling.
    pub label: Option<String>,
    /// UNIX time the tag was first seen.
    pub created: i64,
    /// The other side's tag.
    pub in_dialogue_with: Option<String>,
    /// Media sections.
    pub medias: Vec<MediaInfo>,
}

/// A call as `query` (and `delete`) report it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// UNIX time the call was created.
    pub created: i64,
    /// UNIX time of the last offer/answer/delete.
    pub last_signal: i64,
    /// Parties.
    pub tags: Vec<TagInfo>,
    /// All RTP streams together.
    pub totals_rtp: StreamStats,
    /// All RTCP streams together.
    pub totals_rtcp: StreamStats,
}

/// A successful delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteReply {
    /// The call's final state and counters, if the handler reports them.
    pub stats: Option<CallInfo>,
    /// A non-fatal problem to report.
    pub warning: Option<String>,
}

/// `currentstatistics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CurrentStatistics {
    /// Calls owned by this instance.
    pub sessions_own: u64,
    /// Calls owned by another instance (0 without clustering).
    pub sessions_foreign: u64,
    /// All calls.
    pub sessions_total: u64,
    /// Media sections being transcoded.
    pub transcoded_media: u64,
    /// Packets per second.
    pub packet_rate: u64,
    /// Bytes per second.
    pub byte_rate: u64,
    /// Errors per second.
    pub error_rate: u64,
}

/// `totalstatistics`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TotalStatistics {
    /// Seconds since start.
    pub uptime_s: u64,
    /// Calls handled.
    pub managed_sessions: u64,
    /// Calls refused (limits).
    pub rejected_sessions: u64,
    /// Calls ended by media timeout.
    pub timeout_sessions: u64,
    /// Calls ended by the silent timeout.
    pub silent_timeout_sessions: u64,
    /// Calls ended by the final timeout.
    pub final_timeout_sessions: u64,
    /// Calls ended without an answer.
    pub offer_timeout_sessions: u64,
    /// Calls ended by delete.
    pub regular_terminated_sessions: u64,
    /// Calls ended otherwise.
    pub forced_terminated_sessions: u64,
    /// Packets relayed.
    pub relayed_packets: u64,
    /// Relay errors.
    pub relayed_packet_errors: u64,
    /// Streams that never carried media.
    pub zero_way_streams: u64,
    /// Streams with media in one direction only.
    pub one_way_streams: u64,
    /// Mean call duration, seconds.
    pub avg_call_duration_s: f64,
}

/// What the handler reports for `statistics`; the server adds
/// `controlstatistics` from its own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Statistics {
    /// `currentstatistics`.
    pub current: CurrentStatistics,
    /// `totalstatistics`.
    pub total: TotalStatistics,
}

/// Command counts, per proxy or in total (`controlstatistics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandCounts {
    /// `ping`.
    pub ping: u64,
    /// `offer`.
    pub offer: u64,
    /// `answer`.
    pub answer: u64,
    /// `delete`.
    pub delete: u64,
    /// `query`.
    pub query: u64,
    /// `list`.
    pub list: u64,
    /// `statistics`.
    pub statistics: u64,
    /// Error replies.
    pub errors: u64,
}

/// `controlstatistics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlStatistics {
    /// Per proxy address (bounded; see `NgServer`).
    pub proxies: Vec<(IpAddr, CommandCounts)>,
    /// Over all proxies.
    pub totals: CommandCounts,
}

fn int(n: u64) -> Owned {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn text(s: &str) -> Owned {
    Owned::str(s)
}

fn str_list(items: &[String]) -> Owned {
    Value::List(items.iter().map(|s| text(s)).collect())
}

/// `{"result": "pong"}`.
pub fn pong() -> Owned {
    Owned::dict().with("result", text("pong"))
}

/// `{"result": "ok"}`.
pub fn ok() -> Owned {
    Owned::dict().with("result", text("ok"))
}

/// `{"result": "error", "error-reason": reason}`.
pub fn error(reason: &str) -> Owned {
    Owned::dict()
        .with("result", text("error"))
        .with("error-reason", text(reason))
}

/// `{"result": "load limit", "message": ...}`.
pub fn load_limit(limit: LoadLimit) -> Owned {
    Owned::dict()
        .with("result", text("load limit"))
        .with("message", text(limit.message()))
}

/// Adds (or extends, `; `-separated) the `warning` of an `ok` reply.
pub fn add_warning(reply: &mut Owned, warning: &str) {
    if let Value::Dict(entries) = reply {
        if let Some((_, Value::Bytes(w))) = entries.iter_mut().find(|(k, _)| k == b"warning") {
            w.extend_from_slice(b"; ");
            w.extend_from_slice(warning.as_bytes());
            return;
        }
    }
    reply.insert("warning", text(warning));
}

/// An offer/answer reply: `result`, `sdp`, and `warning` if any.
pub fn sdp(r: &SdpReply) -> Owned {
    let mut d = ok().with("sdp", text(&r.sdp));
    if let Some(w) = &r.warning {
        add_warning(&mut d, w);
    }
    d
}

fn stats(s: &StreamStats) -> Owned {
    Owned::dict()
        .with("packets", int(s.packets))
        .with("bytes", int(s.bytes))
        .with("errors", int(s.errors))
}

fn endpoint(a: &SocketAddr) -> Owned {
    let family = if a.is_ipv4() { "IPv4" } else { "IPv6" };
    Owned::dict()
        .with("family", text(family))
        .with("address", text(&a.ip().to_string()))
        .with("port", int(u64::from(a.port())))
}

fn stream(s: &StreamInfo) -> Owned {
    let mut d = Owned::dict();
    if let Some(p) = s.local_port {
        d.insert("local port", int(u64::from(p)));
    }
    if let Some(e) = &s.endpoint {
        d.insert("endpoint", endpoint(e));
    }
    if let Some(e) = &s.advertised_endpoint {
        d.insert("advertised endpoint", endpoint(e));
    }
    if let Some(c) = &s.crypto_suite {
        d.insert("crypto suite", text(c));
    }
    d.insert("last packet", Value::Int(s.last_packet));
    d.insert("flags", str_list(&s.flags));
    d.insert("stats", stats(&s.stats));
    d
}

fn media(m: &MediaInfo) -> Owned {
    let mut d = Owned::dict()
        .with("index", int(u64::from(m.index)))
        .with("type", text(&m.media_type));
    if let Some(p) = &m.protocol {
        d.insert("protocol", text(p));
    }
    d.insert(
        "streams",
        Value::List(m.streams.iter().map(stream).collect()),
    );
    d.insert("flags", str_list(&m.flags));
    d
}

fn tag(t: &TagInfo) -> Owned {
    let mut d = Owned::dict().with("tag", text(&t.tag));
    if let Some(l) = &t.label {
        d.insert("label", text(l));
    }
    d.insert("created", Value::Int(t.created));
    if let Some(o) = &t.in_dialogue_with {
        d.insert("in dialogue with", text(o));
    }
    d.insert("medias", Value::List(t.medias.iter().map(media).collect()));
    d
}

/// Adds a call's keys (`created`, `last signal`, `tags`, `totals`) to a
/// reply dictionary.
pub fn add_call_info(reply: &mut Owned, c: &CallInfo) {
    reply.insert("created", Value::Int(c.created));
    reply.insert("last signal", Value::Int(c.last_signal));
    let mut tags = Owned::dict();
    for t in &c.tags {
        tags.insert(&t.tag, tag(t));
    }
    reply.insert("tags", tags);
    reply.insert(
        "totals",
        Owned::dict()
            .with("RTP", stats(&c.totals_rtp))
            .with("RTCP", stats(&c.totals_rtcp)),
    );
}

/// A query reply.
pub fn query(c: &CallInfo) -> Owned {
    let mut d = ok();
    add_call_info(&mut d, c);
    d
}

/// A delete reply: `ok`, the call's counters if given, `warning` if any.
pub fn delete(r: &DeleteReply) -> Owned {
    let mut d = ok();
    if let Some(c) = &r.stats {
        add_call_info(&mut d, c);
    }
    if let Some(w) = &r.warning {
        add_warning(&mut d, w);
    }
    d
}

/// A list reply: `calls`.
pub fn list(calls: &[String]) -> Owned {
    ok().with("calls", str_list(calls))
}

fn counts_into(d: &mut Owned, prefix: &str, c: &CommandCounts) {
    let keys: [(&str, u64); 8] = [
        ("pingcount", c.ping),
        ("offercount", c.offer),
        ("answercount", c.answer),
        ("deletecount", c.delete),
        ("querycount", c.query),
        ("listcount", c.list),
        ("statistics", c.statistics),
        ("errorcount", c.errors),
    ];
    for (k, v) in keys {
        d.insert(&format!("{prefix}{k}"), int(v));
    }
}

/// A statistics reply (the layout of rtpengine's `list jsonstats`; the
/// interval statistics are not reported).
pub fn statistics(s: &Statistics, control: &ControlStatistics) -> Owned {
    let c = &s.current;
    let current = Owned::dict()
        .with("sessionsown", int(c.sessions_own))
        .with("sessionsforeign", int(c.sessions_foreign))
        .with("sessionstotal", int(c.sessions_total))
        .with("transcodedmedia", int(c.transcoded_media))
        .with("packetrate", int(c.packet_rate))
        .with("byterate", int(c.byte_rate))
        .with("errorrate", int(c.error_rate));
    let t = &s.total;
    let total = Owned::dict()
        .with("uptime", text(&t.uptime_s.to_string()))
        .with("managedsessions", int(t.managed_sessions))
        .with("rejectedsessions", int(t.rejected_sessions))
        .with("timeoutsessions", int(t.timeout_sessions))
        .with("silenttimeoutsessions", int(t.silent_timeout_sessions))
        .with("finaltimeoutsessions", int(t.final_timeout_sessions))
        .with("offertimeoutsessions", int(t.offer_timeout_sessions))
        .with(
            "regularterminatedsessions",
            int(t.regular_terminated_sessions),
        )
        .with(
            "forcedterminatedsessions",
            int(t.forced_terminated_sessions),
        )
        .with("relayedpackets", int(t.relayed_packets))
        .with("relayedpacketerrors", int(t.relayed_packet_errors))
        .with("zerowaystreams", int(t.zero_way_streams))
        .with("onewaystreams", int(t.one_way_streams))
        .with(
            "avgcallduration",
            text(&format!("{:.6}", t.avg_call_duration_s)),
        );
    let mut proxies = Owned::list();
    for (ip, counts) in &control.proxies {
        let mut p = Owned::dict().with("proxy", text(&ip.to_string()));
        counts_into(&mut p, "", counts);
        proxies.push(p);
    }
    let mut ctl = Owned::dict().with("proxies", proxies);
    counts_into(&mut ctl, "total", &control.totals);
    ok().with(
        "statistics",
        Owned::dict()
            .with("currentstatistics", current)
            .with("totalstatistics", total)
            .with("controlstatistics", ctl),
    )
}

/// The wire form: `<cookie> <bencoded reply>`.
pub fn frame(cookie: &[u8], reply: &Owned) -> Vec<u8> {
    let mut out = Vec::with_capacity(cookie.len() + 64);
    out.extend_from_slice(cookie);
    out.push(b' ');
    reply.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::super::bencode::{decode, Limits};
    use super::*;

    #[test]
    fn basic_replies_on_the_wire() {
        assert_eq!(frame(b"5323_1", &pong()), b"5323_1 d6:result4:ponge");
        assert_eq!(
            error(NgError::UnknownCallId.reason()).to_bytes(),
            b"d6:result5:error12:error-reason15:Unknown call-ide"
        );
        assert_eq!(
            load_limit(LoadLimit::Cpu).to_bytes(),
            b"d6:result10:load limit7:message24:CPU usage limit exceedede"
        );
        assert_eq!(
            NgError::LoadLimit(LoadLimit::Bandwidth).reason(),
            "Parallel session limit reached"
        );
        let r = sdp(&SdpReply {
            sdp: "v=0\r\n".into(),
            warning: Some("w1".into()),
        });
        let mut r2 = r.clone();
        add_warning(&mut r2, "w2");
        assert_eq!(r2.get("warning").and_then(Value::as_str), Some("w1; w2"));
        assert_eq!(r.get("sdp").and_then(Value::as_str), Some("v=0\r\n"));
        assert_eq!(
            list(&["a".into(), "b".into()]).to_bytes(),
            b"d6:result2:ok5:callsl1:a1:bee"
        );
    }

    #[test]
    fn query_reply_has_rtpengine_keys() {
        let info = CallInfo {
            created: 1_402_064_111,
            last_signal: 1_402_064_116,
            tags: vec![TagInfo {
                tag: "cs6kn1rloc".into(),
                label: Some("caller".into()),
                created: 1_402_064_111,
                in_dialogue_with: Some("0f0d2e18".into()),
                medias: vec![MediaInfo {
                    index: 1,
                    media_type: "audio".into(),
                    protocol: Some("RTP/AVP".into()),
                    flags: vec!["initialized".into()],
                    streams: vec![StreamInfo {
                        local_port: Some(30018),
                        endpoint: Some("10.0.0.1:57370".parse().unwrap()),
                        advertised_endpoint: Some("[2001:db8::1]:57370".parse().unwrap()),
                        crypto_suite: None,
                        last_packet: 1_402_064_124,
                        flags: vec!["RTP".into(), "filled".into()],
                        stats: StreamStats {
                            packets: 343,
                            bytes: 56950,
                            errors: 0,
                        },
                    }],
                }],
            }],
            totals_rtp: StreamStats {
                packets: 705,
                bytes: 100_287,
                errors: 0,
            },
            totals_rtcp: StreamStats::default(),
        };
        let wire = query(&info).to_bytes();
        let v = decode(&wire, &Limits::default()).unwrap();
        assert_eq!(v.get("result").and_then(Value::as_str), Some("ok"));
        assert_eq!(
            v.get("last signal").and_then(Value::as_int),
            Some(1_402_064_116)
        );
        let t = v.get("tags").and_then(|t| t.get("cs6kn1rloc")).unwrap();
        assert_eq!(
            t.get("in dialogue with").and_then(Value::as_str),
            Some("0f0d2e18")
        );
        let m = &t.get("medias").and_then(Value::as_list).unwrap()[0];
        let s = &m.get("streams").and_then(Value::as_list).unwrap()[0];
        assert_eq!(s.get("local port").and_then(Value::as_int), Some(30018));
        let ep = s.get("advertised endpoint").unwrap();
        assert_eq!(ep.get("family").and_then(Value::as_str), Some("IPv6"));
        assert_eq!(
            ep.get("address").and_then(Value::as_str),
            Some("2001:db8::1")
        );
        assert_eq!(
            s.get("stats")
                .and_then(|x| x.get("bytes"))
                .and_then(Value::as_int),
            Some(56950)
        );
        let totals = v.get("totals").unwrap();
        assert_eq!(
            totals
                .get("RTP")
                .and_then(|x| x.get("packets"))
                .and_then(Value::as_int),
            Some(705)
        );
        assert!(totals.get("RTCP").is_some());
    }

    #[test]
    fn statistics_reply_layout() {
        let s = Statistics {
            current: CurrentStatistics {
                sessions_own: 3,
                sessions_total: 3,
                ..Default::default()
            },
            total: TotalStatistics {
                uptime_s: 18,
                avg_call_duration_s: 1.5,
                ..Default::default()
            },
        };
        let control = ControlStatistics {
            proxies: vec![(
                "127.0.0.1".parse().unwrap(),
                CommandCounts {
                    ping: 2,
                    ..Default::default()
                },
            )],
            totals: CommandCounts {
                ping: 2,
                ..Default::default()
            },
        };
        let wire = statistics(&s, &control).to_bytes();
        let v = decode(&wire, &Limits::default()).unwrap();
        let st = v.get("statistics").unwrap();
        let cur = st.get("currentstatistics").unwrap();
        assert_eq!(cur.get("sessionsown").and_then(Value::as_int), Some(3));
        let tot = st.get("totalstatistics").unwrap();
        assert_eq!(tot.get("uptime").and_then(Value::as_str), Some("18"));
        assert_eq!(
            tot.get("avgcallduration").and_then(Value::as_str),
            Some("1.500000")
        );
        let ctl = st.get("controlstatistics").unwrap();
        assert_eq!(ctl.get("totalpingcount").and_then(Value::as_int), Some(2));
        let p = &ctl.get("proxies").and_then(Value::as_list).unwrap()[0];
        assert_eq!(p.get("proxy").and_then(Value::as_str), Some("127.0.0.1"));
        assert_eq!(p.get("pingcount").and_then(Value::as_int), Some(2));
    }
}
