//! The sans-IO signalling core: transport events in, messages to send out.
//!
//! [`Core`] owns the transaction layer, the digest authenticator and the
//! registrar. The service around it (see the parent module) feeds it
//! transport events ([`Core::handle_event`]) and time
//! ([`Core::handle_timeout`] when [`Core::poll_timeout`] is due), then drains
//! [`Core::poll_transmit`] and puts each message on the wire, reporting
//! failures with [`Core::transport_error`]. No socket, no clock, no thread.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Instant, SystemTime};

use super::b2bua::{B2bua, Ctx, LocalAddrs};
use crate::auth::{ChallengeKind, DigestAuthenticator, FailureAction, RandomSource};
use crate::config::Config;
use crate::media::MediaEngine;
use crate::ng::calls::{NgCallSettings, NgCalls};
use crate::ng::{
    CallInfo, Context, Delete, DeleteReply, List, NgError, NgHandler, OfferAnswer, Query, SdpReply,
    Statistics,
};
use crate::registrar::Registrar;
use crate::sip::transport::TransportEvent;
use crate::sip::txn::{Destination, Output, TxnConfig, TxnKey, TxnLayer};
use crate::sip::{
    check_request, FlowId, HeaderName, Message, Method, Request, Response, UasPolicy,
};

/// Methods this core answers (listed in Allow).
pub const ALLOWED_METHODS: [Method; 10] = [
    Method::Register,
    Method::Options,
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Message,
    Method::Info,
    Method::Prack,
    Method::Update,
];

/// Option tags we support (Supported in OPTIONS answers; a Require outside
/// this list gets 420).
pub const EXTENSIONS: [&str; 2] = ["outbound", "path"];

/// Method slots of [`CoreCounters::requests`], in this order; the last
/// counts every other method.
pub const COUNTED_METHODS: [&str; 8] = [
    "REGISTER", "OPTIONS", "INVITE", "ACK", "CANCEL", "BYE", "MESSAGE", "other",
];

/// What the core has seen and done, for logging.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreCounters {
    /// Requests reaching the core (retransmissions absorbed by the
    /// transaction layer are not counted), by [`COUNTED_METHODS`] slot.
    pub requests: [u64; 8],
    /// Responses sent, by class (index 0 is 1xx ... 5 is 6xx).
    pub responses: [u64; 6],
    /// Requests challenged (401/407) for lack of usable credentials.
    pub auth_challenges: u64,
    /// Requests refused (400/403) by authentication.
    pub auth_rejections: u64,
    /// Malformed input reported by the transports.
    pub malformed: u64,
    /// Flows opened and closed.
    pub flows_opened: u64,
    /// Flows closed.
    pub flows_closed: u64,
    /// Bindings removed because their flow closed.
    pub bindings_dropped_on_close: u64,
    /// Bindings removed because they expired.
    pub bindings_expired: u64,
    /// Messages that could not be sent.
    pub send_failures: u64,
}

impl fmt::Display for CoreCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("requests")?;
        for (name, n) in COUNTED_METHODS.iter().zip(self.requests) {
            write!(f, " {name}={n}")?;
        }
        f.write_str("; responses")?;
        for (class, n) in self.responses.iter().enumerate() {
            write!(f, " {}xx={n}", class + 1)?;
        }
        write!(
            f,
            "; auth challenges={} rejections={}; malformed={}; flows opened={} closed={}; \
             bindings dropped on close={} expired={}; send failures={}",
            self.auth_challenges,
            self.auth_rejections,
            self.malformed,
            self.flows_opened,
            self.flows_closed,
            self.bindings_dropped_on_close,
            self.bindings_expired,
            self.send_failures
        )
    }
}

/// A message for the wire, from [`Core::poll_transmit`].
#[derive(Debug)]
pub struct Transmit {
    /// The transaction it belongs to (for [`Core::transport_error`]).
    pub key: Option<TxnKey>,
    /// Where it goes.
    pub dest: Destination,
    /// What to send.
    pub message: Message,
}

/// The signalling core. See the module docs.
pub struct Core {
    txn: TxnLayer,
    auth: DigestAuthenticator,
    registrar: Registrar,
    rng: Box<dyn RandomSource + Send>,
    out: VecDeque<Transmit>,
    counters: CoreCounters,
    b2bua: B2bua,
    /// Sessions driven over ng, on the B2BUA's media engine.
    ng: NgCalls,
    legacy_requires_auth: bool,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("auth", &self.auth)
            .field("registrar", &self.registrar.stats())
            .field("server_transactions", &self.txn.server_count())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core for `config`, with an opened registrar and a source of
    /// randomness (nonce key, nonces, To tags).
    pub fn new(config: &Config, registrar: Registrar, rng: Box<dyn RandomSource + Send>) -> Core {
        Self::with_media(config, registrar, rng, None)
    }

    /// A core whose B2BUA anchors calls' media in `media` (`None`: calls get
    /// 503).
    pub fn with_media(
        config: &Config,
        registrar: Registrar,
        mut rng: Box<dyn RandomSource + Send>,
        media: Option<MediaEngine>,
    ) -> Core {
        let auth = DigestAuthenticator::new(&config.auth, &mut *rng);
        Core {
            txn: TxnLayer::new(TxnConfig::default()),
            auth,
            registrar,
            rng,
            out: VecDeque::new(),
            counters: CoreCounters::default(),
            b2bua: B2bua::new(config, media, LocalAddrs::default()),
            ng: NgCalls::new(NgCallSettings {
                public_address: config.media.public_address.unwrap_or(config.media.bind),
                media_timeout_ms: config.media.media_timeout_s.saturating_mul(1000),
                nack_tail: config.media.nack_tail,
                opus_complexity: config.media.opus_complexity,
                max_calls: if config.ng.max_sessions == 0 {
                    usize::MAX
                } else {
                    config.ng.max_sessions
                },
            }),
            legacy_requires_auth: config.auth.legacy_requires_auth,
        }
    }

    /// Runs `f` on the B2BUA with the parts of the core it drives.
    fn with_b2bua<R>(&mut self, f: impl FnOnce(&mut B2bua, &mut Ctx<'_>) -> R) -> R {
        let mut cx = Ctx {
            txn: &mut self.txn,
            registrar: &self.registrar,
            rng: &mut *self.rng,
        };
        f(&mut self.b2bua, &mut cx)
    }

    /// The B2BUA (calls, media engine).
    pub fn b2bua(&self) -> &B2bua {
        &self.b2bua
    }

    /// The B2BUA, mutably (the runtime moves ring messages of its media engine).
    pub fn b2bua_mut(&mut self) -> &mut B2bua {
        &mut self.b2bua
    }

    /// A message from a data-plane worker's event ring.
    pub fn handle_ring_message(&mut self, now: Instant, wall: SystemTime, kind: u16, body: &[u8]) {
        self.with_b2bua(|b, cx| b.handle_ring_message(cx, now, kind, body));
        self.ng_events(wall);
        self.drain(now, wall);
    }

    /// The ng sessions.
    pub fn ng(&self) -> &NgCalls {
        &self.ng
    }

    /// Hands the media events of ng sessions' legs to them.
    fn ng_events(&mut self, wall: SystemTime) {
        while let Some(ev) = self.b2bua.take_unclaimed() {
            if let Some(m) = self.b2bua.media_mut() {
                self.ng.handle_event(m, wall, &ev);
            }
        }
    }

    /// The registrar (for lookups and statistics).
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The registrar, mutably (for flushing its store from a timer).
    pub fn registrar_mut(&mut self) -> &mut Registrar {
        &mut self.registrar
    }

    /// The transaction layer (for its counters).
    pub fn txn(&self) -> &TxnLayer {
        &self.txn
    }

    /// The counters.
    pub fn counters(&self) -> CoreCounters {
        self.counters
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txn.poll_timeout(),
            self.registrar.next_expiry(),
            self.b2bua.poll_timeout(),
            self.ng.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passes: transaction timers and binding expiry.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.txn.handle_timeout(now);
        let expired = self.registrar.expire(now);
        self.counters.bindings_expired += expired.len() as u64;
        self.with_b2bua(|b, cx| b.handle_timeout(cx, now));
        if let Some(m) = self.b2bua.media_mut() {
            self.ng.handle_timeout(m, now, wall);
        }
        self.ng_events(wall);
        self.drain(now, wall);
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// Sending a message of transaction `key` failed.
    pub fn transport_error(&mut self, now: Instant, wall: SystemTime, key: Option<TxnKey>) {
        self.counters.send_failures += 1;
        if let Some(key) = key {
            self.txn.transport_error(key);
            self.drain(now, wall);
        }
    }

    /// An event from the transports.
    pub fn handle_event(&mut self, now: Instant, wall: SystemTime, event: TransportEvent) {
        match event {
            TransportEvent::Message {
                flow,
                source,
                message,
            } => {
                self.txn.handle_message(now, flow, source, message);
                self.drain(now, wall);
            }
            TransportEvent::FlowOpened { .. } => self.counters.flows_opened += 1,
            TransportEvent::FlowClosed { flow, .. } => {
                self.flow_closed(flow);
                self.with_b2bua(|b, cx| b.flow_closed(cx, now, flow));
                self.drain(now, wall);
            }
            TransportEvent::Malformed { .. } => self.counters.malformed += 1,
        }
    }

    fn flow_closed(&mut self, flow: FlowId) {
        self.counters.flows_closed += 1;
        let gone = self.registrar.flow_closed(flow);
        self.counters.bindings_dropped_on_close += gone.len() as u64;
    }

    /// Carries out the transaction layer's outputs until there are none.
    fn drain(&mut self, now: Instant, wall: SystemTime) {
        while let Some(o) = self.txn.poll_output() {
            match o {
                Output::Transmit { key, dest, message } => {
                    if let Message::Response(r) = &message {
                        let class = usize::from(r.status / 100).clamp(1, 6) - 1;
                        if let Some(c) = self.counters.responses.get_mut(class) {
                            *c += 1;
                        }
                    }
                    self.out.push_back(Transmit { key, dest, message });
                }
                Output::Request {
                    key,
                    request,
                    flow,
                    source,
                } => {
                    if let Some(resp) = self.handle_request(now, wall, key, request, flow, source) {
                        // The transaction is ours and has no final response
                        // yet; a failure here means it was terminated meanwhile.
                        let _ = self.txn.send_response(now, key, resp);
                    }
                }
                Output::Cancel { key, request, .. } => {
                    if !self.with_b2bua(|b, cx| b.handle_cancel(cx, now, key)) {
                        let mut r = Response::from_request(&request, 487);
                        self.set_tag(&mut r);
                        let _ = self.txn.send_response(now, key, r);
                    }
                }
                Output::Response {
                    key,
                    response,
                    retransmission,
                } => {
                    self.with_b2bua(|b, cx| {
                        b.handle_response(cx, now, key, response, retransmission)
                    });
                }
                Output::Ack { request, .. } => {
                    self.count_request(&request.method);
                    self.b2bua.handle_ack(&request);
                }
                Output::Timeout { key } => self.with_b2bua(|b, cx| {
                    b.handle_txn_failure(cx, now, key, true);
                }),
                Output::TransportError { key } => self.with_b2bua(|b, cx| {
                    b.handle_txn_failure(cx, now, key, false);
                }),
            }
        }
    }

    fn count_request(&mut self, method: &Method) {
        let slot = COUNTED_METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(COUNTED_METHODS.len() - 1);
        if let Some(c) = self.counters.requests.get_mut(slot) {
            *c += 1;
        }
    }

    fn set_tag(&mut self, resp: &mut Response) {
        let mut b = [0u8; 8];
        self.rng.fill(&mut b);
        let tag: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let _ = resp.set_to_tag(&tag);
    }

    /// The answer to a new request, or `None` when the B2BUA took it (and
    /// answers it, now or later).
    fn handle_request(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TxnKey,
        req: Request,
        flow: FlowId,
        source: std::net::SocketAddr,
    ) -> Option<Response> {
        self.count_request(&req.method);
        let policy = UasPolicy {
            methods: &ALLOWED_METHODS,
            extensions: &EXTENSIONS,
        };
        if let Some(mut r) = check_request(&req, &policy) {
            self.set_tag(&mut r);
            return Some(r);
        }
        match req.method {
            Method::Register => Some(self.register(now, wall, &req, flow, source)),
            Method::Options => {
                let mut r = Response::from_request(&req, 200);
                self.set_tag(&mut r);
                let allow: Vec<&str> = ALLOWED_METHODS.iter().map(Method::as_str).collect();
                r.headers.push(HeaderName::Allow, allow.join(", "));
                r.headers.push(HeaderName::Accept, "application/sdp");
                r.headers.push(HeaderName::Supported, EXTENSIONS.join(", "));
                Some(r)
            }
            _ => {
                // A new call or MESSAGE from a browser (or from the legacy
                // side when configured) must authenticate; requests inside a
                // dialog are bound to it by its tags.
                let in_dialog = req.headers.to_addr().is_ok_and(|t| t.tag().is_some());
                let needs_auth =
                    !in_dialog && (flow.transport.is_websocket() || self.legacy_requires_auth);
                if needs_auth {
                    if let Err(failure) =
                        self.auth
                            .authenticate_request(wall, &req, ChallengeKind::Proxy)
                    {
                        match failure.action() {
                            FailureAction::Challenge { .. } => self.counters.auth_challenges += 1,
                            FailureAction::Reject(_) => self.counters.auth_rejections += 1,
                        }
                        return Some(self.auth.failure_response(
                            wall,
                            &mut *self.rng,
                            &req,
                            ChallengeKind::Proxy,
                            failure,
                        ));
                    }
                }
                self.with_b2bua(|b, cx| b.handle_request(cx, now, key, req, flow));
                None
            }
        }
    }

    fn register(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
        flow: FlowId,
        source: std::net::SocketAddr,
    ) -> Response {
        match self
            .auth
            .authenticate_request(wall, req, ChallengeKind::Www)
        {
            Ok(user) => {
                let outcome =
                    self.registrar
                        .handle_register(now, req, flow, source, Some(&user.user));
                outcome.response
            }
            Err(failure) => {
                match failure.action() {
                    FailureAction::Challenge { .. } => self.counters.auth_challenges += 1,
                    FailureAction::Reject(_) => self.counters.auth_rejections += 1,
                }
                self.auth
                    .failure_response(wall, &mut *self.rng, req, ChallengeKind::Www, failure)
            }
        }
    }
}

/// rtpengine's ng commands on the core: ng sessions share the B2BUA's media
/// engine (ports, workers, counter slots), and `query`, `list` and
/// `statistics` show the B2BUA's calls beside them. Reply times are read
/// from the system clock here.
impl NgHandler for Core {
    fn offer(&mut self, ctx: &Context, req: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
        let Core { b2bua, ng, rng, .. } = self;
        let media = b2bua.media_mut().ok_or(NgError::OutOfPorts)?;
        let mut random = |b: &mut [u8]| rng.fill(b);
        ng.offer(media, &mut random, ctx.now, SystemTime::now(), req)
    }

    fn answer(&mut self, ctx: &Context, req: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
        let Core { b2bua, ng, .. } = self;
        let media = b2bua.media_mut().ok_or(NgError::UnknownCallId)?;
        ng.answer(media, ctx.now, SystemTime::now(), req)
    }

    fn delete(&mut self, _ctx: &Context, req: &Delete<'_>) -> Result<DeleteReply, NgError> {
        let Core { b2bua, ng, .. } = self;
        let media = b2bua.media_mut().ok_or(NgError::CallNotFound)?;
        ng.delete(media, SystemTime::now(), req.call_id)
            .map_err(|_| NgError::CallNotFound)
    }

    fn query(&mut self, _ctx: &Context, req: &Query<'_>) -> Result<CallInfo, NgError> {
        if let Some(m) = self.b2bua.media() {
            if let Ok(info) = self.ng.info(m, req.call_id) {
                return Ok(info);
            }
        }
        self.b2bua
            .call_info(req.call_id)
            .ok_or(NgError::UnknownCallId)
    }

    fn list(&mut self, _ctx: &Context, req: &List) -> Result<Vec<String>, NgError> {
        Ok(self
            .ng
            .call_ids()
            .chain(self.b2bua.call_ids())
            .take(req.limit as usize)
            .map(str::to_owned)
            .collect())
    }

    fn statistics(&mut self, ctx: &Context) -> Result<Statistics, NgError> {
        let (mut current, total) = self.ng.statistics(ctx.now);
        let b2bua = self.b2bua.call_count() as u64;
        current.sessions_own += b2bua;
        current.sessions_total += b2bua;
        Ok(Statistics { current, total })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::client_authorization;
    use crate::registrar::RegistrarSettings;
    use crate::sip::Transport;

    fn core() -> Core {
        let config = Config::default_config();
        let mut settings = RegistrarSettings::from_config(&config);
        settings.store_path = None;
        let (registrar, _) =
            Registrar::open(settings, Instant::now(), SystemTime::now()).expect("in memory");
        let mut n = 0u8;
        let rng = move |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_add(1);
                *b = n;
            }
        };
        Core::new(&config, registrar, Box::new(rng))
    }

    fn register(cseq: u32, auth: Option<&str>) -> Message {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let text = format!(
            "REGISTER sip:localhost SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.9:5062;branch=z9hG4bKr{cseq};rport=5062\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@localhost>\r\nFrom: <sip:bob@localhost>;tag=t1\r\n\
             Call-ID: core-test\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:bob@192.0.2.9:5062>\r\n\
             Expires: 60\r\n{auth}Content-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).expect("valid")
    }

    fn response(core: &mut Core) -> Response {
        let t = core.poll_transmit().expect("something to send");
        assert!(core.poll_transmit().is_none());
        match t.message {
            Message::Response(r) => r,
            Message::Request(_) => panic!("a request"),
        }
    }

    #[test]
    fn register_retransmission_and_expiry() {
        let mut core = core();
        let flow = FlowId {
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().expect("addr"),
            remote: "192.0.2.9:5062".parse().expect("addr"),
            conn: 0,
        };
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let event = |message| TransportEvent::Message {
            flow,
            source: flow.remote,
            message,
        };
        core.handle_event(t0, wall, event(register(1, None)));
        let r = response(&mut core);
        assert_eq!(r.status, 401);
        let challenge = r
            .headers
            .get(HeaderName::WwwAuthenticate)
            .expect("challenge");
        let creds = client_authorization(
            challenge,
            "bob",
            "bob-secret",
            "REGISTER",
            "sip:localhost",
            b"",
            "abcd",
            1,
        )
        .expect("usable");
        let ok = register(2, Some(&creds));
        core.handle_event(t0, wall, event(ok.clone()));
        assert_eq!(response(&mut core).status, 200);
        assert_eq!(core.registrar().lookup(t0, "sip:bob@localhost").len(), 1);
        // A retransmission is answered again by the transaction, not the core.
        core.handle_event(t0, wall, event(ok));
        assert_eq!(response(&mut core).status, 200);
        assert_eq!(core.counters().requests[0], 2);
        assert_eq!(core.counters().responses[3], 1);
        assert_eq!(core.counters().responses[1], 2);
        // The binding expires on the core's own timer.
        let due = core.poll_timeout().expect("timers pending");
        assert!(due <= t0 + Duration::from_secs(60));
        let later = t0 + Duration::from_secs(61);
        core.handle_timeout(later, wall + Duration::from_secs(61));
        assert!(core
            .registrar()
            .lookup(later, "sip:bob@localhost")
            .is_empty());
        assert_eq!(core.counters().bindings_expired, 1);
        assert!(core.poll_transmit().is_none());
    }
}
