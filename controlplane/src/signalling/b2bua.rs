//! The B2BUA that anchors media (webrtc2sip's "RTCWeb breaker"), sans-IO.
//!
//! A call is two dialogs: the caller's (Strait is its UAS) and the callee's
//! (Strait is its UAC, with its own Call-ID and tags), and one media pair in
//! the data plane. Which side a dialog faces decides the media profile: a
//! request that arrived over WS/WSS comes from a browser, anything else from
//! the legacy side. Calls go browser -> legacy (routed by
//! [`crate::config::Routing`]) and legacy -> browser (to the browser's
//! registered WebSocket flow).
//!
//! SDP goes through [`CallMedia`] (both offer/answer directions, re-offers
//! for hold/resume and codec changes); each completed exchange becomes two
//! [`LegSetup`]s installed in the [`MediaEngine`], which also runs the DTLS
//! handshake on packets the data plane punts up.
//!
//! Handled: 100/18x (early media when the 18x has SDP; PRACK sent when the
//! legacy side requires 100rel), 200/ACK, CANCEL, BYE from either side,
//! re-INVITE from either side, MESSAGE and INFO relayed (in and out of
//! dialog), no-answer timeout (CANCEL to the callee, 408 to the caller),
//! failures (404 unknown user, 480 known but not registered, 503/408 next
//! hop unreachable or silent, 488 on SDP or DTLS failure), media timeout
//! and a closed browser flow (BYE to the other side). Every ending frees
//! the call's legs and ports.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::auth::RandomSource;
use crate::config::Config;
use crate::dtls;
use crate::media::{DtlsSetup, LegId, LegSetup, MediaEngine, MediaEvent, Pair, SdesSetup};
use crate::registrar::Registrar;
use crate::sdp::plan::{LegPlan, MediaPlan, Side};
use crate::sdp::{BrowserEndpoint, CallConfig, CallMedia, CodecPreference, LegacyEndpoint, Setup};
use crate::sip::transport::Target as TransportTarget;
use crate::sip::txn::{make_branch, Destination, TxnKey, TxnLayer};
use crate::sip::{
    Contact, FlowId, HeaderName, Message, Method, Request, Response, SipUri, Transport, Uri,
};

/// Timer T1 and T2 for 2xx retransmission (RFC 3261 §13.3.1.4).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// B2BUA counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounters {
    /// Calls started (INVITE accepted for routing).
    pub started: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls ended, any way.
    pub ended: u64,
    /// Calls refused before routing (404, 480, 488, 503 ...).
    pub refused: u64,
    /// Calls cancelled by the caller.
    pub cancelled: u64,
    /// Calls not answered in time.
    pub no_answer: u64,
    /// Calls ended by a media failure (DTLS, timeout).
    pub media_failures: u64,
    /// Out-of-dialog MESSAGEs relayed.
    pub messages: u64,
}

/// Strait's own addresses per transport (listeners), for Via and Contact.
#[derive(Clone, Debug, Default)]
pub struct LocalAddrs {
    /// Listener address of each transport.
    pub listeners: Vec<(Transport, SocketAddr)>,
    /// Next hops resolved to addresses (host as written in the config -> address).
    pub resolved: HashMap<String, IpAddr>,
}

impl LocalAddrs {
    fn of(&self, t: Transport) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(lt, _)| *lt == t)
            .map(|(_, a)| *a)
    }
}

/// The pieces of the signalling core the B2BUA drives.
#[allow(missing_debug_implementations)]
pub struct Ctx<'a> {
    /// The transaction layer.
    pub txn: &'a mut TxnLayer,
    /// The registrar (callee lookup).
    pub registrar: &'a Registrar,
    /// Randomness for tags, branches and Call-IDs.
    pub rng: &'a mut (dyn RandomSource + Send),
}

/// One dialog of a call.
#[derive(Debug, Clone)]
struct Half {
    side: Side,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our URI as name-addr (without tag).
    local: String,
    /// Their URI as name-addr (without tag).
    remote: String,
    /// Where in-dialog requests go (the remote Contact).
    target: String,
    /// Route header values for in-dialog requests.
    route: Vec<String>,
    cseq: u32,
    dest: Destination,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE sent to the callee, no final answer.
    Ringing,
    /// Answered and ACKed (or waiting for the caller's ACK).
    Up,
    /// The caller gave up (CANCEL or no answer); waiting for the callee's final answer.
    Cancelling,
}

/// A request relayed from one half to the other, awaiting the final answer.
#[derive(Debug)]
struct Relay {
    call: Option<u64>,
    request: Request,
    /// For a re-INVITE: the side that offered.
    reoffer_from: Option<Side>,
}

#[derive(Debug)]
struct Call {
    id: u64,
    caller: Half,
    callee: Half,
    invite_in: TxnKey,
    invite_req: Request,
    invite_out: Option<TxnKey>,
    state: State,
    media: CallMedia,
    pair: Pair,
    no_answer_at: Option<Instant>,
    /// A 2xx to the caller over UDP, retransmitted until the ACK.
    ok_resend: Option<(Instant, Duration, Instant, Response)>,
    /// Our ACK for the callee's 2xx, sent again on each retransmitted 2xx.
    ack: Option<(Request, Destination)>,
    /// Last provisional RSeq acknowledged with PRACK.
    prack_rseq: Option<u32>,
}

/// The B2BUA. See the module docs.
pub struct B2bua {
    media: Option<MediaEngine>,
    addrs: LocalAddrs,
    calls: HashMap<u64, Call>,
    next_call: u64,
    /// Server INVITE transaction -> call.
    by_server: HashMap<TxnKey, u64>,
    /// Client transaction -> what it is for.
    by_client: HashMap<TxnKey, ClientPurpose>,
    /// (Call-ID, our tag) -> (call, which half).
    by_dialog: HashMap<(String, String), (u64, bool)>,
    relays: HashMap<TxnKey, Relay>,
    no_answer: Duration,
    media_timeout_ms: u32,
    nack_tail: (u16, u16),
    opus_complexity: u8,
    public_address: IpAddr,
    routing: crate::config::Routing,
    domains: Vec<String>,
    users: Vec<String>,
    counters: CallCounters,
    /// Media events for legs that are not the B2BUA's (ng sessions').
    unclaimed: VecDeque<MediaEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPurpose {
    /// The INVITE toward the callee.
    Invite(u64),
    /// A request relayed from the other half (the server transaction key).
    Relay(TxnKey),
    /// Something we started on our own (BYE, PRACK, CANCEL): answers ignored.
    Own,
}

impl std::fmt::Debug for B2bua {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("B2bua")
            .field("calls", &self.calls.len())
            .field("counters", &self.counters)
            .field("media", &self.media)
            .finish_non_exhaustive()
    }
}

fn hex(rng: &mut (dyn RandomSource + Send), n: usize) -> String {
    let mut b = vec![0u8; n];
    rng.fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn branch(rng: &mut (dyn RandomSource + Send)) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    make_branch(b)
}

/// The URI inside a name-addr or addr-spec value, with the header params (tag ...) removed.
fn name_addr_without_tag(value: &str) -> String {
    match crate::sip::NameAddr::parse(value) {
        Ok(mut na) => {
            na.params_mut().remove("tag");
            na.to_string()
        }
        Err(_) => value.to_string(),
    }
}

fn contact_uri(value: Option<&str>) -> Option<String> {
    let c = Contact::parse(value?).ok()?;
    Some(c.addr()?.uri().to_string())
}

/// Host and port of a SIP URI (text), with its transport parameter.
fn uri_addr(uri: &str) -> Option<(String, Option<u16>, Transport)> {
    let u = SipUri::parse(uri).ok()?;
    let t = u
        .transport()
        .and_then(Transport::from_token)
        .unwrap_or(if u.is_secure() {
            Transport::Tls
        } else {
            Transport::Udp
        });
    let host = match u.host().ip() {
        Some(ip) => ip.to_string(),
        None => u.host().to_string(),
    };
    Some((host, u.port(), t))
}

impl B2bua {
    /// A B2BUA for `config`; `media` is `None` when no data plane is attached
    /// (calls are then refused with 503).
    pub fn new(config: &Config, media: Option<MediaEngine>, addrs: LocalAddrs) -> Self {
        Self {
            media,
            addrs,
            calls: HashMap::new(),
            next_call: 1,
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            by_dialog: HashMap::new(),
            relays: HashMap::new(),
            no_answer: Duration::from_secs(u64::from(config.routing.no_answer_timeout_s)),
            media_timeout_ms: config.media.media_timeout_s.saturating_mul(1000),
            nack_tail: config.media.nack_tail,
            opus_complexity: config.media.opus_complexity,
            public_address: config.media.public_address.unwrap_or(config.media.bind),
            routing: config.routing.clone(),
            domains: config.sip.domains.clone(),
            users: config.auth.users.iter().map(|u| u.name.clone()).collect(),
            counters: CallCounters::default(),
            unclaimed: VecDeque::new(),
        }
    }

    /// The next media event for a leg that is not one of the B2BUA's.
    pub fn take_unclaimed(&mut self) -> Option<MediaEvent> {
        self.unclaimed.pop_front()
    }

    /// The Call-IDs of calls in progress (the caller's dialog).
    pub fn call_ids(&self) -> impl Iterator<Item = &str> {
        self.calls.values().map(|c| c.caller.call_id.as_str())
    }

    /// A call as ng's `query` reports it, by the Call-ID of either dialog:
    /// one party per dialog (its tag, `browser` or `legacy` as label) with
    /// the data plane's counters of the leg facing it.
    pub fn call_info(&self, call_id: &str) -> Option<crate::ng::CallInfo> {
        use crate::ng::reply::{MediaInfo as M, StreamInfo, StreamStats, TagInfo};
        use strait_rules::abi::counter;
        let c = self
            .calls
            .values()
            .find(|c| c.caller.call_id == call_id || c.callee.call_id == call_id)?;
        let mut totals = StreamStats::default();
        let tags = [&c.caller, &c.callee]
            .iter()
            .map(|h| {
                let (leg, port, label) = match h.side {
                    Side::Browser => (c.pair.a, c.pair.port_a, "browser"),
                    Side::Legacy => (c.pair.b, c.pair.port_b, "legacy"),
                };
                let n = self
                    .media
                    .as_ref()
                    .and_then(|m| m.leg_counters(leg))
                    .unwrap_or([0; counter::COUNT]);
                let stats = StreamStats {
                    packets: n[counter::PACKETS_IN],
                    bytes: n[counter::BYTES_IN],
                    errors: n[counter::SRTP_AUTH_FAILED] + n[counter::DROPPED],
                };
                totals.packets += stats.packets;
                totals.bytes += stats.bytes;
                totals.errors += stats.errors;
                TagInfo {
                    tag: h.remote_tag.clone().unwrap_or_default(),
                    label: Some(label.to_owned()),
                    medias: vec![M {
                        index: 1,
                        media_type: "audio".to_owned(),
                        flags: vec!["initialized".to_owned()],
                        streams: vec![StreamInfo {
                            local_port: Some(port),
                            flags: vec!["RTP".to_owned()],
                            stats,
                            ..StreamInfo::default()
                        }],
                        ..M::default()
                    }],
                    ..TagInfo::default()
                }
            })
            .collect();
        Some(crate::ng::CallInfo {
            tags,
            totals_rtp: totals,
            ..crate::ng::CallInfo::default()
        })
    }

    /// Counters.
    pub fn counters(&self) -> CallCounters {
        self.counters
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The media engine, if a data plane is attached.
    pub fn media(&self) -> Option<&MediaEngine> {
        self.media.as_ref()
    }

    /// The media engine, mutably (the runtime moves ring messages).
    pub fn media_mut(&mut self) -> Option<&mut MediaEngine> {
        self.media.as_mut()
    }

    /// Sets the listener addresses (known once the transports are bound).
    pub fn set_addrs(&mut self, addrs: LocalAddrs) {
        self.addrs = addrs;
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self
            .calls
            .values()
            .flat_map(|c| [c.no_answer_at, c.ok_resend.as_ref().map(|r| r.0)])
            .flatten()
            .min();
        let media = self.media.as_ref().and_then(MediaEngine::poll_timeout);
        match (calls, media) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passes: no-answer timers, 2xx retransmissions, DTLS timers.
    pub fn handle_timeout(&mut self, cx: &mut Ctx<'_>, now: Instant) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if c.no_answer_at.is_some_and(|t| t <= now) {
                c.no_answer_at = None;
                self.counters.no_answer += 1;
                self.give_up(cx, now, id, 408, "no answer");
                continue;
            }
            if let Some((at, interval, until, resp)) = c.ok_resend.take() {
                if at <= now {
                    if now < until {
                        let _ = cx.txn.send_response(now, c.invite_in, resp.clone());
                        let next = (interval * 2).min(T2);
                        c.ok_resend = Some((now + next, next, until, resp));
                    } else {
                        // No ACK: the dialog is dead (RFC 3261 §13.3.1.4).
                        self.hangup(cx, now, id, "no ACK for the 200 OK");
                    }
                } else {
                    c.ok_resend = Some((at, interval, until, resp));
                }
            }
        }
        if let Some(m) = self.media.as_mut() {
            m.handle_timeout(now);
        }
        self.media_events(cx, now);
    }

    /// A message from a data-plane worker's event ring.
    pub fn handle_ring_message(&mut self, cx: &mut Ctx<'_>, now: Instant, kind: u16, body: &[u8]) {
        if let Some(m) = self.media.as_mut() {
            m.handle_ring_message(now, kind, body);
        }
        self.media_events(cx, now);
    }

    fn call_of_leg(&self, leg: LegId) -> Option<u64> {
        self.calls
            .values()
            .find(|c| c.pair.a == leg || c.pair.b == leg)
            .map(|c| c.id)
    }

    fn media_events(&mut self, cx: &mut Ctx<'_>, now: Instant) {
        loop {
            let Some(ev) = self.media.as_mut().and_then(MediaEngine::poll_event) else {
                return;
            };
            match ev {
                MediaEvent::DtlsFailed(leg, why) => {
                    if let Some(id) = self.call_of_leg(leg) {
                        self.counters.media_failures += 1;
                        self.end(cx, now, id, 488, &format!("DTLS failed: {why}"));
                    }
                }
                MediaEvent::TimedOut(leg) => {
                    if let Some(id) = self.call_of_leg(leg) {
                        self.counters.media_failures += 1;
                        self.end(cx, now, id, 408, "media timeout");
                    } else {
                        if let Some(m) = self.media.as_mut() {
                            m.release_orphan(leg);
                        }
                        self.unclaimed.push_back(ev);
                    }
                }
                MediaEvent::Rejected(leg, reason) => {
                    if let Some(id) = self.call_of_leg(leg) {
                        self.counters.media_failures += 1;
                        self.end(
                            cx,
                            now,
                            id,
                            503,
                            &format!("data plane refused the leg ({reason})"),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// A browser's flow closed: its calls end (BYE to the other side).
    pub fn flow_closed(&mut self, cx: &mut Ctx<'_>, now: Instant, flow: FlowId) {
        let ids: Vec<u64> = self
            .calls
            .values()
            .filter(|c| {
                [&c.caller, &c.callee]
                    .iter()
                    .any(|h| h.dest == Destination::Flow(flow))
            })
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.end(cx, now, id, 480, "the browser's connection closed");
        }
    }

    // ------------------------------------------------------------------ requests

    /// A request for the B2BUA (INVITE, BYE, MESSAGE, INFO, PRACK, UPDATE...):
    /// answers it (now or later) through the transaction layer.
    /// `user` is the authenticated user for requests from browsers.
    pub fn handle_request(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        key: TxnKey,
        req: Request,
        flow: FlowId,
    ) {
        let to_tag = req
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        if let Some(tag) = to_tag {
            return self.in_dialog(cx, now, key, req, tag);
        }
        match req.method {
            Method::Invite => self.new_call(cx, now, key, req, flow),
            Method::Message => self.relay_out_of_dialog(cx, now, key, req, flow),
            _ => respond(cx, now, key, &req, 481, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        key: TxnKey,
        req: &Request,
        status: u16,
        why: &str,
    ) {
        self.counters.refused += 1;
        respond(cx, now, key, req, status, Some(why));
    }

    /// Where a request from `from_side` for `ruri` goes.
    fn route(
        &self,
        cx: &Ctx<'_>,
        now: Instant,
        from_side: Side,
        ruri: &Uri<'static>,
    ) -> Result<(String, Vec<String>, Destination), (u16, String)> {
        let sip = ruri
            .as_sip()
            .ok_or((416, "only sip: URIs are routed".to_string()))?;
        let user = sip.user().unwrap_or("").to_string();
        let host = sip.host().to_string();
        let ruri_text = ruri.to_string();
        let browsers = cx.registrar.lookup(now, &ruri_text);
        let local_user = self.domains.iter().any(|d| d.eq_ignore_ascii_case(&host))
            && (self.users.contains(&user) || !browsers.is_empty());
        match from_side {
            Side::Legacy => {
                let t = browsers
                    .into_iter()
                    .find(|t| t.flow().is_some_and(|f| f.transport.is_websocket()));
                match t {
                    Some(t) => Ok((
                        t.request_uri.to_string(),
                        t.route.clone(),
                        Destination::Flow(t.flow().expect("checked")),
                    )),
                    None if local_user => Err((480, format!("{user} is not registered"))),
                    None => Err((404, format!("no such user: {user}"))),
                }
            }
            Side::Browser => {
                if local_user {
                    return Err(if browsers.is_empty() {
                        (480, format!("{user} is not registered"))
                    } else {
                        (
                            488,
                            "browser-to-browser calls are not supported".to_string(),
                        )
                    });
                }
                let hop = self
                    .routing
                    .next_hop(&user, &host)
                    .ok_or((404, format!("no route for {user}@{host}")))?;
                let (h, port, t) = uri_addr(hop).ok_or((503, format!("bad next hop {hop}")))?;
                let ip = h
                    .parse::<IpAddr>()
                    .ok()
                    .or_else(|| self.addrs.resolved.get(&h).copied())
                    .ok_or((503, format!("cannot resolve next hop {h}")))?;
                let port = port.unwrap_or(if t == Transport::Tls { 5061 } else { 5060 });
                let target = SocketAddr::new(ip, port);
                let host_port = match target {
                    SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
                    SocketAddr::V4(a) => a.to_string(),
                };
                let user_part = if user.is_empty() {
                    String::new()
                } else {
                    format!("{user}@")
                };
                let tparam = if t == Transport::Udp {
                    String::new()
                } else {
                    format!(";transport={}", t.as_str().to_ascii_lowercase())
                };
                Ok((
                    format!("sip:{user_part}{host_port}{tparam}"),
                    Vec::new(),
                    Destination::Target(TransportTarget {
                        transport: t,
                        addr: target,
                        server_name: None,
                    }),
                ))
            }
        }
    }

    fn new_call(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        key: TxnKey,
        req: Request,
        flow: FlowId,
    ) {
        let from_side = side_of(flow);
        if !req
            .headers
            .get(HeaderName::ContentType)
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/sdp"))
            || req.body.is_empty()
        {
            return self.refuse(
                cx,
                now,
                key,
                &req,
                488,
                "an INVITE without SDP offer is not supported",
            );
        }
        let (ruri, route, dest) = match self.route(cx, now, from_side, &req.uri) {
            Ok(r) => r,
            Err((status, why)) => return self.refuse(cx, now, key, &req, status, &why),
        };
        let Some(engine) = self.media.as_mut() else {
            return self.refuse(cx, now, key, &req, 503, "no media plane attached");
        };
        let pair = match engine.open_pair() {
            Ok(p) => p,
            Err(e) => return self.refuse(cx, now, key, &req, 503, &e.to_string()),
        };
        let fp = engine.fingerprint();
        let fingerprint = crate::sdp::attrs::Fingerprint {
            algorithm: match fp.algorithm() {
                dtls::HashAlgorithm::Sha1 => crate::sdp::attrs::HashAlgorithm::Sha1,
                dtls::HashAlgorithm::Sha384 => crate::sdp::attrs::HashAlgorithm::Sha384,
                dtls::HashAlgorithm::Sha512 => crate::sdp::attrs::HashAlgorithm::Sha512,
                _ => crate::sdp::attrs::HashAlgorithm::Sha256,
            },
            bytes: fp.as_bytes().to_vec(),
        };
        let mut cfg = CallConfig::new(
            BrowserEndpoint {
                address: self.public_address,
                extra_addresses: Vec::new(),
                port: pair.port_a,
                fingerprint,
                ssrc: None,
            },
            LegacyEndpoint {
                address: self.public_address,
                port: pair.port_b,
                rtcp_port: None,
                rtcp_attribute: false,
                offer_sdes: false,
            },
        );
        cfg.preference = CodecPreference::Passthrough;
        let mut sdp_rng = |b: &mut [u8]| cx.rng.fill(b);
        let mut media = CallMedia::new(cfg, &mut sdp_rng);
        let offer = match media.process_offer(from_side, &req.body, &mut sdp_rng) {
            Ok(o) => o,
            Err(e) => {
                if let Some(m) = self.media.as_mut() {
                    m.close_pair(&pair);
                }
                return self.refuse(cx, now, key, &req, e.sip_status(), &e.to_string());
            }
        };
        let from = req.headers.get(HeaderName::From).unwrap_or("").to_string();
        let to = req.headers.get(HeaderName::To).unwrap_or("").to_string();
        let call_id = req.headers.call_id().unwrap_or("").to_string();
        let from_tag = req
            .headers
            .from_addr()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned));
        let caller = Half {
            side: from_side,
            call_id: call_id.clone(),
            local_tag: hex(cx.rng, 8),
            remote_tag: from_tag,
            local: name_addr_without_tag(&to),
            remote: name_addr_without_tag(&from),
            target: contact_uri(req.headers.get(HeaderName::Contact))
                .unwrap_or_else(|| req.uri.to_string()),
            route: req
                .headers
                .get_all(HeaderName::RecordRoute)
                .map(str::to_owned)
                .collect(),
            cseq: 1,
            dest: Destination::Flow(flow),
        };
        let callee = Half {
            side: from_side.other(),
            call_id: format!("{}@strait", hex(cx.rng, 12)),
            local_tag: hex(cx.rng, 8),
            remote_tag: None,
            local: name_addr_without_tag(&from),
            remote: format!("<{}>", strip_params(&req.uri.to_string())),
            target: ruri,
            route,
            cseq: 0,
            dest,
        };
        let id = self.next_call;
        self.next_call += 1;
        let max_forwards = req
            .headers
            .get(HeaderName::MaxForwards)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(70)
            .saturating_sub(1);
        if max_forwards == 0 {
            if let Some(m) = self.media.as_mut() {
                m.close_pair(&pair);
            }
            return self.refuse(cx, now, key, &req, 483, "too many hops");
        }
        let mut call = Call {
            id,
            caller,
            callee,
            invite_in: key,
            invite_req: req,
            invite_out: None,
            state: State::Ringing,
            media,
            pair,
            no_answer_at: Some(now + self.no_answer),
            ok_resend: None,
            ack: None,
            prack_rseq: None,
        };
        let extra = vec![
            (HeaderName::MaxForwards, max_forwards.to_string()),
            (HeaderName::ContentType, "application/sdp".to_string()),
        ];
        let body = offer.sdp.to_string().into_bytes();
        let invite = self.build_request(cx, &mut call.callee, Method::Invite, extra, body, true);
        let Some(invite) = invite else {
            if let Some(m) = self.media.as_mut() {
                m.close_pair(&call.pair);
            }
            let req = call.invite_req;
            return self.refuse(cx, now, key, &req, 500, "could not build the INVITE");
        };
        match cx.txn.send_request(now, invite, call.callee.dest.clone()) {
            Ok(k) => {
                call.invite_out = Some(k);
                self.by_client.insert(k, ClientPurpose::Invite(id));
            }
            Err(_) => {
                if let Some(m) = self.media.as_mut() {
                    m.close_pair(&call.pair);
                }
                let req = call.invite_req;
                return self.refuse(cx, now, key, &req, 503, "too many transactions");
            }
        }
        self.counters.started += 1;
        self.by_server.insert(key, id);
        self.by_dialog.insert(
            (call.caller.call_id.clone(), call.caller.local_tag.clone()),
            (id, true),
        );
        self.by_dialog.insert(
            (call.callee.call_id.clone(), call.callee.local_tag.clone()),
            (id, false),
        );
        self.calls.insert(id, call);
    }

    /// Builds a request in `half`'s dialog (with the next CSeq when
    /// `new_cseq`, except for ACK and CANCEL).
    fn build_request(
        &self,
        cx: &mut Ctx<'_>,
        half: &mut Half,
        method: Method,
        extra: Vec<(HeaderName, String)>,
        body: Vec<u8>,
        new_cseq: bool,
    ) -> Option<Request> {
        if new_cseq && method != Method::Ack && method != Method::Cancel {
            half.cseq += 1;
        }
        let cseq = half.cseq;
        self.build_with_cseq(cx, half, method, cseq, extra, body)
    }

    fn build_with_cseq(
        &self,
        cx: &mut Ctx<'_>,
        half: &Half,
        method: Method,
        cseq: u32,
        extra: Vec<(HeaderName, String)>,
        body: Vec<u8>,
    ) -> Option<Request> {
        let (via, contact) = via_and_contact(&self.addrs, self.public_address, &half.dest);
        let to_tag = half
            .remote_tag
            .as_ref()
            .map_or(String::new(), |t| format!(";tag={t}"));
        let mut text = format!(
            "{m} {target} SIP/2.0\r\nVia: {via};branch={b};rport\r\nFrom: {local};tag={lt}\r\n\
             To: {remote}{to_tag}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {m}\r\nContact: {contact}\r\n",
            m = method.as_str(),
            target = half.target,
            b = branch(cx.rng),
            local = half.local,
            lt = half.local_tag,
            remote = half.remote,
            cid = half.call_id,
        );
        if !extra.iter().any(|(n, _)| *n == HeaderName::MaxForwards) {
            text.push_str("Max-Forwards: 70\r\n");
        }
        for r in &half.route {
            text.push_str(&format!("Route: {r}\r\n"));
        }
        for (n, v) in &extra {
            text.push_str(&format!("{}: {v}\r\n", n.as_str()));
        }
        text.push_str("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, PRACK, UPDATE\r\n");
        text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&body);
        match Message::parse(&bytes) {
            Ok(Message::Request(r)) => Some(r),
            _ => None,
        }
    }

    fn in_dialog(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        key: TxnKey,
        req: Request,
        tag: String,
    ) {
        let call_id = req.headers.call_id().unwrap_or("").to_string();
        let Some(&(id, from_caller)) = self.by_dialog.get(&(call_id, tag)) else {
            return respond(cx, now, key, &req, 481, None);
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return respond(cx, now, key, &req, 481, None);
        };
        // CSeq check of the remote side is lenient: answer what comes.
        match req.method {
            Method::Bye => {
                respond(cx, now, key, &req, 200, None);
                let reason = req.headers.get(HeaderName::Reason).map(str::to_owned);
                // BYE the other half.
                let other_from_caller = !from_caller;
                self.bye_half(cx, now, id, other_from_caller, reason.as_deref());
                self.finish(id);
            }
            Method::Invite => {
                if call.state != State::Up || call.media.pending_offer_from().is_some() {
                    return respond(cx, now, key, &req, 491, None);
                }
                let side = if from_caller {
                    call.caller.side
                } else {
                    call.callee.side
                };
                if req.body.is_empty() {
                    return respond(cx, now, key, &req, 488, Some("re-INVITE without SDP"));
                }
                let mut sdp_rng = |b: &mut [u8]| cx.rng.fill(b);
                let offer = match call.media.process_offer(side, &req.body, &mut sdp_rng) {
                    Ok(o) => o,
                    Err(e) => {
                        let s = e.sip_status();
                        return respond(cx, now, key, &req, s, Some(&e.to_string()));
                    }
                };
                let body = offer.sdp.to_string().into_bytes();
                self.relay_in_dialog(
                    cx,
                    now,
                    id,
                    from_caller,
                    key,
                    req,
                    vec![(HeaderName::ContentType, "application/sdp".into())],
                    body,
                    Some(side),
                );
            }
            Method::Message | Method::Info | Method::Update | Method::Notify => {
                let ct = req.headers.get(HeaderName::ContentType).map(str::to_owned);
                let extra = ct
                    .map(|c| vec![(HeaderName::ContentType, c)])
                    .unwrap_or_default();
                let body = req.body.clone();
                self.relay_in_dialog(cx, now, id, from_caller, key, req, extra, body, None);
            }
            Method::Prack => respond(cx, now, key, &req, 200, None),
            _ => respond(cx, now, key, &req, 405, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn relay_in_dialog(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        id: u64,
        from_caller: bool,
        key: TxnKey,
        req: Request,
        extra: Vec<(HeaderName, String)>,
        body: Vec<u8>,
        reoffer_from: Option<Side>,
    ) {
        let Some(mut half) = self.calls.get(&id).map(|c| {
            if from_caller {
                c.callee.clone()
            } else {
                c.caller.clone()
            }
        }) else {
            return respond(cx, now, key, &req, 481, None);
        };
        let Some(out) = self.build_request(cx, &mut half, req.method.clone(), extra, body, true)
        else {
            return respond(cx, now, key, &req, 500, None);
        };
        if let Some(c) = self.calls.get_mut(&id) {
            if from_caller {
                c.callee.cseq = half.cseq;
            } else {
                c.caller.cseq = half.cseq;
            }
        }
        match cx.txn.send_request(now, out, half.dest.clone()) {
            Ok(k) => {
                self.by_client.insert(k, ClientPurpose::Relay(key));
                self.relays.insert(
                    key,
                    Relay {
                        call: Some(id),
                        request: req,
                        reoffer_from,
                    },
                );
            }
            Err(_) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    if reoffer_from.is_some() {
                        c.media.cancel_offer();
                    }
                }
                respond(cx, now, key, &req, 503, None)
            }
        }
    }

    /// An out-of-dialog MESSAGE: routed like an INVITE, answered with the
    /// far end's final status.
    fn relay_out_of_dialog(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        key: TxnKey,
        req: Request,
        flow: FlowId,
    ) {
        let from_side = side_of(flow);
        let (ruri, route, dest) = match self.route(cx, now, from_side, &req.uri) {
            Ok(r) => r,
            Err((status, why)) => return respond(cx, now, key, &req, status, Some(&why)),
        };
        let from = req.headers.get(HeaderName::From).unwrap_or("").to_string();
        let mut half = Half {
            side: from_side.other(),
            call_id: format!("{}@strait", hex(cx.rng, 12)),
            local_tag: hex(cx.rng, 8),
            remote_tag: None,
            local: name_addr_without_tag(&from),
            remote: format!("<{}>", strip_params(&req.uri.to_string())),
            target: ruri,
            route,
            cseq: 0,
            dest,
        };
        let ct = req
            .headers
            .get(HeaderName::ContentType)
            .unwrap_or("text/plain")
            .to_string();
        let Some(out) = self.build_request(
            cx,
            &mut half,
            Method::Message,
            vec![(HeaderName::ContentType, ct)],
            req.body.clone(),
            true,
        ) else {
            return respond(cx, now, key, &req, 500, None);
        };
        match cx.txn.send_request(now, out, half.dest.clone()) {
            Ok(k) => {
                self.counters.messages += 1;
                self.by_client.insert(k, ClientPurpose::Relay(key));
                self.relays.insert(
                    key,
                    Relay {
                        call: None,
                        request: req,
                        reoffer_from: None,
                    },
                );
            }
            Err(_) => respond(cx, now, key, &req, 503, None),
        }
    }

    /// An ACK for a 2xx we sent (end-to-end).
    pub fn handle_ack(&mut self, req: &Request) {
        let call_id = req.headers.call_id().unwrap_or("").to_string();
        let Some(tag) = req
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
        else {
            return;
        };
        if let Some(&(id, _)) = self.by_dialog.get(&(call_id, tag)) {
            if let Some(c) = self.calls.get_mut(&id) {
                c.ok_resend = None;
            }
        }
    }

    /// The caller cancelled its INVITE (the layer answered the CANCEL).
    /// Returns false if the INVITE is not one of the B2BUA's.
    pub fn handle_cancel(&mut self, cx: &mut Ctx<'_>, now: Instant, key: TxnKey) -> bool {
        let Some(&id) = self.by_server.get(&key) else {
            return false;
        };
        self.counters.cancelled += 1;
        self.give_up(cx, now, id, 487, "cancelled by the caller");
        true
    }

    /// The caller's INVITE gets `status` now; the callee's is cancelled.
    fn give_up(&mut self, cx: &mut Ctx<'_>, now: Instant, id: u64, status: u16, why: &str) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.state != State::Ringing {
            return;
        }
        c.state = State::Cancelling;
        c.no_answer_at = None;
        let mut r = Response::from_request(&c.invite_req, status);
        let _ = r.set_to_tag(&c.caller.local_tag);
        if status != 487 {
            r.headers.push(
                HeaderName::Reason,
                format!("SIP;cause={status};text=\"{why}\""),
            );
        }
        let _ = cx.txn.send_response(now, c.invite_in, r);
        self.by_server.remove(&c.invite_in);
        if let Some(k) = c.invite_out {
            match cx.txn.cancel(now, k) {
                Ok(ck) => {
                    self.by_client.insert(ck, ClientPurpose::Own);
                }
                Err(_) => {
                    // Nothing to cancel any more: the call is over.
                    self.finish(id);
                }
            }
        } else {
            self.finish(id);
        }
    }

    // ------------------------------------------------------------------ responses

    /// A response on one of our client transactions.
    pub fn handle_response(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        key: TxnKey,
        resp: Response,
        retransmission: bool,
    ) {
        let Some(&purpose) = self.by_client.get(&key) else {
            return;
        };
        if resp.status >= 200 {
            self.by_client.remove(&key);
        }
        match purpose {
            ClientPurpose::Own => {}
            ClientPurpose::Relay(server) => {
                if resp.status < 200 {
                    return;
                }
                self.relay_final(cx, now, server, resp);
            }
            ClientPurpose::Invite(id) => {
                if retransmission {
                    if let Some((ack, dest)) = self.calls.get(&id).and_then(|c| c.ack.clone()) {
                        cx.txn.send_stateless(dest, Message::Request(ack));
                    }
                    return;
                }
                self.invite_response(cx, now, id, resp);
            }
        }
    }

    fn relay_final(&mut self, cx: &mut Ctx<'_>, now: Instant, server: TxnKey, resp: Response) {
        let Some(relay) = self.relays.remove(&server) else {
            return;
        };
        let mut r = Response::from_request(&relay.request, resp.status);
        r.reason = resp.reason.clone();
        if let Some(id) = relay.call {
            let Some(c) = self.calls.get_mut(&id) else {
                return;
            };
            let tag = if c.caller.call_id == relay.request.headers.call_id().unwrap_or("") {
                c.caller.local_tag.clone()
            } else {
                c.callee.local_tag.clone()
            };
            let _ = r.set_to_tag(&tag);
            if let Some(side) = relay.reoffer_from {
                if (200..300).contains(&resp.status) {
                    let mut sdp_rng = |b: &mut [u8]| cx.rng.fill(b);
                    match c
                        .media
                        .process_answer(side.other(), &resp.body, &mut sdp_rng)
                    {
                        Ok(ans) => {
                            let from_caller =
                                relay.request.headers.call_id().unwrap_or("") == c.caller.call_id;
                            let orig = if from_caller {
                                &c.caller.dest
                            } else {
                                &c.callee.dest
                            };
                            let (_, contact) =
                                via_and_contact(&self.addrs, self.public_address, orig);
                            r.headers.push(HeaderName::Contact, contact);
                            r.set_body(Some("application/sdp"), ans.sdp.to_string().into_bytes());
                            let plan = ans.plan;
                            self.install(now, id, &plan);
                        }
                        Err(e) => {
                            let mut err = Response::from_request(&relay.request, e.sip_status());
                            let _ = err.set_to_tag(&tag);
                            let _ = cx.txn.send_response(now, server, err);
                            return;
                        }
                    }
                    // ACK the 2xx of the relayed re-INVITE on the other half.
                    let from_caller = relay.request.headers.call_id().unwrap_or("")
                        == self
                            .calls
                            .get(&id)
                            .map_or("", |c| c.caller.call_id.as_str());
                    self.ack_half(cx, id, !from_caller, &resp);
                } else if let Some(c) = self.calls.get_mut(&id) {
                    c.media.cancel_offer();
                }
            } else if !resp.body.is_empty() {
                let ct = resp
                    .headers
                    .get(HeaderName::ContentType)
                    .unwrap_or("text/plain")
                    .to_string();
                r.set_body(Some(&ct), resp.body.clone());
            }
        } else {
            let tag = hex(cx.rng, 8);
            let _ = r.set_to_tag(&tag);
        }
        let _ = cx.txn.send_response(now, server, r);
    }

    /// ACKs a 2xx on one half (to a re-INVITE we relayed).
    fn ack_half(&mut self, cx: &mut Ctx<'_>, id: u64, caller_half: bool, resp: &Response) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let half = if caller_half { &c.caller } else { &c.callee };
        let cseq = resp.headers.cseq().map_or(half.cseq, |c| c.seq);
        if let Some(ack) = self.build_with_cseq(cx, half, Method::Ack, cseq, Vec::new(), Vec::new())
        {
            cx.txn
                .send_stateless(half.dest.clone(), Message::Request(ack));
        }
    }

    fn invite_response(&mut self, cx: &mut Ctx<'_>, now: Instant, id: u64, resp: Response) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if resp.status >= 200 {
            c.invite_out = None;
        }
        if let Some(tag) = resp
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
        {
            if resp.status > 100 && resp.status < 300 {
                c.callee.remote_tag = Some(tag);
                if let Some(t) = contact_uri(resp.headers.get(HeaderName::Contact)) {
                    c.callee.target = t;
                }
                let rr: Vec<String> = resp
                    .headers
                    .get_all(HeaderName::RecordRoute)
                    .map(str::to_owned)
                    .collect();
                if !rr.is_empty() {
                    c.callee.route = rr.into_iter().rev().collect();
                }
            }
        }
        if c.state == State::Cancelling {
            if (200..300).contains(&resp.status) {
                // The answer crossed our CANCEL: ACK it and hang up.
                self.ack_invite(cx, id, &resp);
                self.bye_half(cx, now, id, false, Some("SIP;cause=487;text=\"cancelled\""));
            }
            if resp.status >= 200 {
                self.finish(id);
            }
            return;
        }
        match resp.status {
            100 => {}
            101..=199 => {
                // Early media: the 18x answers the offer.
                let mut body = None;
                if !resp.body.is_empty() && c.media.pending_offer_from().is_some() {
                    let mut sdp_rng = |b: &mut [u8]| cx.rng.fill(b);
                    let side = c.callee.side;
                    match c.media.process_answer(side, &resp.body, &mut sdp_rng) {
                        Ok(ans) => {
                            body = Some(ans.sdp.to_string().into_bytes());
                            let plan = ans.plan;
                            self.install(now, id, &plan);
                        }
                        Err(e) => {
                            return self.end(cx, now, id, 488, &format!("early media SDP: {e}"));
                        }
                    }
                }
                let c = self.calls.get_mut(&id).expect("present");
                // 100rel: PRACK each reliable provisional once.
                let reliable = resp
                    .headers
                    .get(HeaderName::Require)
                    .is_some_and(|r| r.to_ascii_lowercase().contains("100rel"));
                if reliable {
                    let rseq = resp
                        .headers
                        .get("RSeq")
                        .and_then(|v| v.trim().parse::<u32>().ok());
                    if let (Some(rseq), Ok(cseq)) = (rseq, resp.headers.cseq()) {
                        if c.prack_rseq.is_none_or(|p| rseq > p) {
                            c.prack_rseq = Some(rseq);
                            let mut half = c.callee.clone();
                            let rack = format!("{rseq} {} INVITE", cseq.seq);
                            if let Some(pr) = self.build_request(
                                cx,
                                &mut half,
                                Method::Prack,
                                vec![(HeaderName::new("RAck").expect("valid"), rack)],
                                Vec::new(),
                                true,
                            ) {
                                if let Ok(k) = cx.txn.send_request(now, pr, half.dest.clone()) {
                                    self.by_client.insert(k, ClientPurpose::Own);
                                }
                            }
                            if let Some(c) = self.calls.get_mut(&id) {
                                c.callee.cseq = half.cseq;
                            }
                        }
                    }
                }
                let c = self.calls.get(&id).expect("present");
                let mut r = Response::from_request(&c.invite_req, resp.status);
                r.reason = resp.reason.clone();
                let _ = r.set_to_tag(&c.caller.local_tag);
                let (_, contact) =
                    via_and_contact(&self.addrs, self.public_address, &c.caller.dest);
                r.headers.push(HeaderName::Contact, contact);
                if let Some(b) = body {
                    r.set_body(Some("application/sdp"), b);
                }
                let _ = cx.txn.send_response(now, c.invite_in, r);
            }
            200..=299 => {
                self.ack_invite(cx, id, &resp);
                let c = self.calls.get_mut(&id).expect("present");
                let mut body = None;
                if c.media.pending_offer_from().is_some() {
                    let mut sdp_rng = |b: &mut [u8]| cx.rng.fill(b);
                    let side = c.callee.side;
                    match c.media.process_answer(side, &resp.body, &mut sdp_rng) {
                        Ok(ans) => {
                            body = Some(ans.sdp.to_string().into_bytes());
                            let plan = ans.plan;
                            self.install(now, id, &plan);
                        }
                        Err(e) => {
                            self.bye_half(cx, now, id, false, None);
                            return self.end(cx, now, id, 488, &format!("answer SDP: {e}"));
                        }
                    }
                } else if let Some(plan) = c.media.plan().cloned() {
                    // Answered in an 18x already: the caller has the answer
                    // (RFC 3262 lets the 2xx repeat it; an empty 2xx is as
                    // valid), the legs are set again in case they timed out.
                    self.install(now, id, &plan);
                }
                let c = self.calls.get_mut(&id).expect("present");
                c.state = State::Up;
                c.no_answer_at = None;
                let mut r = Response::from_request(&c.invite_req, resp.status);
                let _ = r.set_to_tag(&c.caller.local_tag);
                let (_, contact) =
                    via_and_contact(&self.addrs, self.public_address, &c.caller.dest);
                r.headers.push(HeaderName::Contact, contact);
                if let Some(b) = body {
                    r.set_body(Some("application/sdp"), b);
                }
                if c.caller.dest.transport() == Transport::Udp {
                    c.ok_resend = Some((now + T1, T1, now + 64 * T1, r.clone()));
                }
                let _ = cx.txn.send_response(now, c.invite_in, r);
                self.by_server.remove(&c.invite_in);
                self.counters.answered += 1;
            }
            _ => {
                // Failure: relay the status (an unreachable or silent next hop
                // gets 503/408 from the transaction events).
                let c = self.calls.get(&id).expect("present");
                let mut r = Response::from_request(&c.invite_req, resp.status);
                r.reason = resp.reason.clone();
                let _ = r.set_to_tag(&c.caller.local_tag);
                if let Some(reason) = resp.headers.get(HeaderName::Reason) {
                    r.headers.push(HeaderName::Reason, reason);
                }
                let _ = cx.txn.send_response(now, c.invite_in, r);
                self.finish(id);
            }
        }
    }

    fn ack_invite(&mut self, cx: &mut Ctx<'_>, id: u64, resp: &Response) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let cseq = resp.headers.cseq().map_or(1, |c| c.seq);
        let half = c.callee.clone();
        if let Some(ack) =
            self.build_with_cseq(cx, &half, Method::Ack, cseq, Vec::new(), Vec::new())
        {
            let dest = half.dest.clone();
            cx.txn
                .send_stateless(dest.clone(), Message::Request(ack.clone()));
            if let Some(c) = self.calls.get_mut(&id) {
                c.ack = Some((ack, dest));
            }
        }
    }

    /// A client transaction timed out or could not be sent.
    pub fn handle_txn_failure(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        key: TxnKey,
        timeout: bool,
    ) {
        let Some(purpose) = self.by_client.remove(&key) else {
            return;
        };
        let status = if timeout { 408 } else { 503 };
        match purpose {
            ClientPurpose::Own => {}
            ClientPurpose::Relay(server) => {
                if let Some(relay) = self.relays.remove(&server) {
                    if let (Some(id), Some(_)) = (relay.call, relay.reoffer_from) {
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.media.cancel_offer();
                        }
                    }
                    let mut r = Response::from_request(&relay.request, status);
                    let tag = hex(cx.rng, 8);
                    let _ = r.set_to_tag(&tag);
                    let _ = cx.txn.send_response(now, server, r);
                }
            }
            ClientPurpose::Invite(id) => {
                let Some(c) = self.calls.get_mut(&id) else {
                    return;
                };
                c.invite_out = None;
                if c.state == State::Ringing {
                    let why = if timeout {
                        "the next hop did not answer"
                    } else {
                        "the next hop is unreachable"
                    };
                    let mut r = Response::from_request(&c.invite_req, status);
                    let _ = r.set_to_tag(&c.caller.local_tag);
                    r.headers.push(
                        HeaderName::Reason,
                        format!("SIP;cause={status};text=\"{why}\""),
                    );
                    let _ = cx.txn.send_response(now, c.invite_in, r);
                }
                self.finish(id);
            }
        }
    }

    // ------------------------------------------------------------------ media

    fn install(&mut self, now: Instant, id: u64, plan: &MediaPlan) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(engine) = self.media.as_mut() else {
            return;
        };
        let b = leg_setup(
            &plan.browser,
            self.media_timeout_ms,
            self.nack_tail,
            self.opus_complexity,
        );
        let l = leg_setup(
            &plan.legacy,
            self.media_timeout_ms,
            self.nack_tail,
            self.opus_complexity,
        );
        // Both legs exist until the call is finished, and the plan always
        // carries the browser's fingerprint, so neither install can fail.
        let _ = engine.install(now, c.pair.a, &b);
        let _ = engine.install(now, c.pair.b, &l);
    }

    // ------------------------------------------------------------------ endings

    /// Sends BYE on one half.
    fn bye_half(
        &mut self,
        cx: &mut Ctx<'_>,
        now: Instant,
        id: u64,
        caller_half: bool,
        reason: Option<&str>,
    ) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let mut half = if caller_half {
            c.caller.clone()
        } else {
            c.callee.clone()
        };
        if half.remote_tag.is_none() && !caller_half {
            return;
        }
        let extra = reason
            .map(|r| vec![(HeaderName::Reason, r.to_string())])
            .unwrap_or_default();
        if let Some(bye) = self.build_request(cx, &mut half, Method::Bye, extra, Vec::new(), true) {
            if let Ok(k) = cx.txn.send_request(now, bye, half.dest.clone()) {
                self.by_client.insert(k, ClientPurpose::Own);
            }
        }
    }

    /// Hangs up an established call on both halves.
    fn hangup(&mut self, cx: &mut Ctx<'_>, now: Instant, id: u64, why: &str) {
        let reason = format!("SIP;cause=200;text=\"{why}\"");
        self.bye_half(cx, now, id, true, Some(&reason));
        self.bye_half(cx, now, id, false, Some(&reason));
        self.finish(id);
    }

    /// Ends a call in whatever state: an unanswered one gets `status` toward
    /// the caller and a CANCEL toward the callee; an answered one BYE both ways.
    fn end(&mut self, cx: &mut Ctx<'_>, now: Instant, id: u64, status: u16, why: &str) {
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        match c.state {
            State::Ringing => self.give_up(cx, now, id, status, why),
            State::Up => {
                let reason = format!("SIP;cause={status};text=\"{}\"", why.replace('"', "'"));
                self.bye_half(cx, now, id, true, Some(&reason));
                self.bye_half(cx, now, id, false, Some(&reason));
                self.finish(id);
            }
            State::Cancelling => {}
        }
    }

    /// Forgets a call and frees its media.
    fn finish(&mut self, id: u64) {
        let Some(c) = self.calls.remove(&id) else {
            return;
        };
        if let Some(m) = self.media.as_mut() {
            m.close_pair(&c.pair);
        }
        self.by_server.remove(&c.invite_in);
        self.by_dialog
            .remove(&(c.caller.call_id.clone(), c.caller.local_tag.clone()));
        self.by_dialog
            .remove(&(c.callee.call_id.clone(), c.callee.local_tag.clone()));
        self.by_client
            .retain(|_, p| !matches!(p, ClientPurpose::Invite(i) if *i == id));
        self.counters.ended += 1;
    }
}

/// Which side a request came from: WebSocket flows are browsers.
fn side_of(flow: FlowId) -> Side {
    if flow.transport.is_websocket() {
        Side::Browser
    } else {
        Side::Legacy
    }
}

fn via_and_contact(addrs: &LocalAddrs, public: IpAddr, dest: &Destination) -> (String, String) {
    let (t, local) = match dest {
        Destination::Flow(f) => (f.transport, Some(f.local)),
        Destination::Target(t) => (t.transport, addrs.of(t.transport)),
    };
    let local = local.unwrap_or_else(|| SocketAddr::new(public, 5060));
    let hp = match local {
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        SocketAddr::V4(a) => a.to_string(),
    };
    let tparam = if t == Transport::Udp {
        String::new()
    } else {
        format!(";transport={}", t.as_str().to_ascii_lowercase())
    };
    (
        format!("SIP/2.0/{} {hp}", t.as_str()),
        format!("<sip:strait@{hp}{tparam}>"),
    )
}

fn strip_params(uri: &str) -> String {
    // A To URI is written without the Request-URI's parameters.
    match SipUri::parse(uri) {
        Ok(mut u) => {
            let names: Vec<String> = u.params().iter().map(|p| p.name().to_string()).collect();
            for n in names {
                u.params_mut().remove(&n);
            }
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

fn respond(
    cx: &mut Ctx<'_>,
    now: Instant,
    key: TxnKey,
    req: &Request,
    status: u16,
    reason: Option<&str>,
) {
    let mut r = Response::from_request(req, status);
    if req
        .headers
        .to_addr()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned))
        .is_none()
    {
        let tag = hex(cx.rng, 8);
        let _ = r.set_to_tag(&tag);
    }
    if let Some(text) = reason {
        r.headers.push(
            HeaderName::Reason,
            format!("SIP;cause={status};text=\"{}\"", text.replace('"', "'")),
        );
    }
    let _ = cx.txn.send_response(now, key, r);
}

/// The data plane's description of one leg of a call plan.
pub fn leg_setup(
    leg: &LegPlan,
    media_timeout_ms: u32,
    nack_tail: (u16, u16),
    complexity: u8,
) -> LegSetup {
    let dtls = leg.dtls.as_ref().and_then(|d| {
        let fp = dtls::HashAlgorithm::from_name(d.remote_fingerprint.algorithm.as_str())
            .and_then(|a| dtls::Fingerprint::from_bytes(a, &d.remote_fingerprint.bytes).ok())?;
        Some(DtlsSetup {
            role: if d.local_role == Setup::Active {
                dtls::Role::Client
            } else {
                dtls::Role::Server
            },
            remote_fingerprints: vec![fp],
        })
    });
    let sdes = leg.sdes.as_ref().map(|s| SdesSetup {
        suite: s.suite.abi_code(),
        rx: (s.rx.key, s.rx.salt),
        tx: (s.tx.key, s.tx.salt),
    });
    let transcode = leg
        .transcode
        .as_ref()
        .map(|t| strait_rules::abi::Transcode {
            mode: t.mode.abi_code(),
            law: t.law.abi_code(),
            g711_pt: t.g711_pt,
            opus_pt: t.opus_pt,
            g711_event_pt: t.g711_event_pt.unwrap_or(0xFF),
            opus_event_pt: t.opus_event_pt.unwrap_or(0xFF),
            complexity,
            _pad: 0,
        });
    LegSetup {
        remote_rtp: leg.remote_rtp,
        remote_rtcp: leg.remote_rtcp,
        rtcp_mux: leg.rtcp_mux,
        ice: leg
            .ice
            .as_ref()
            .map(|i| (i.local.ufrag.clone(), i.local.pwd.clone())),
        dtls,
        sdes,
        symmetric: leg.side == Side::Legacy,
        pt_map: leg.pt_map.clone(),
        transcode,
        nack_tail: leg.nack.then_some(nack_tail),
        ssrc_out: leg.ssrc_out,
        media_timeout_ms,
        keys_pending: false,
    }
}
