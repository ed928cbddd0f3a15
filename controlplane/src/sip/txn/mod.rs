//! The SIP transaction layer (RFC 3261 §17, with the RFC 6026 corrections),
//! sans-IO.
//!
//! # Driving it
//!
//! [`TxnLayer`] owns no socket and reads no clock. The core feeds it
//! - messages from the transport: [`TxnLayer::handle_message`] (`now`, the
//!   flow and source, the parsed [`Message`]);
//! - its own actions: [`TxnLayer::send_request`] (starts a client
//!   transaction and returns its [`TxnKey`]), [`TxnLayer::cancel`],
//!   [`TxnLayer::send_response`] (on a server transaction),
//!   [`TxnLayer::send_stateless`];
//! - time: [`TxnLayer::handle_timeout`] when [`TxnLayer::poll_timeout`] is due;
//! - send failures: [`TxnLayer::transport_error`];
//!
//! and after each call drains [`TxnLayer::poll_output`] until `None`. Each
//! [`Output`] is an effect for the caller to carry out: put a message on the
//! wire ([`Output::Transmit`], retransmissions included), or pass an event to
//! the core: a new request with its server transaction
//! ([`Output::Request`]; retransmissions are absorbed), a response on a client
//! transaction ([`Output::Response`], deduplicated), an ACK that belongs to
//! the core ([`Output::Ack`]), a CANCEL of an INVITE server transaction
//! ([`Output::Cancel`]), a timeout ([`Output::Timeout`]: Timer B, F or H) or a
//! transport failure ([`Output::TransportError`]).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use strait::sip::txn::{Output, TxnConfig, TxnLayer};
//! use strait::sip::{FlowId, Message, Response, Transport};
//!
//! let mut layer = TxnLayer::new(TxnConfig::default());
//! let flow = FlowId {
//!     transport: Transport::Udp,
//!     local: "192.0.2.1:5060".parse().unwrap(),
//!     remote: "198.51.100.7:5060".parse().unwrap(),
//!     conn: 0,
//! };
//! let options = b"OPTIONS sip:gw@192.0.2.1 SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK74bf9\r\n\
//! Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=9fxced76sl\r\n\
//! To: <sip:gw@192.0.2.1>\r\nCall-ID: 3848276298220188511\r\n\
//! CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
//! let t0 = Instant::now(); // the caller's clock
//! let msg = Message::parse(options)?;
//! layer.handle_message(t0, flow, flow.remote, msg.clone());
//! let Some(Output::Request { key, request, .. }) = layer.poll_output() else { panic!() };
//! let mut ok = Response::from_request(&request, 200);
//! ok.set_to_tag("gw1")?;
//! layer.send_response(t0, key, ok)?;
//! assert!(matches!(layer.poll_output(), Some(Output::Transmit { .. })));
//! // A retransmission of the request gets the 200 again; the core sees nothing.
//! layer.handle_message(t0 + Duration::from_millis(500), flow, flow.remote, msg);
//! assert!(matches!(layer.poll_output(), Some(Output::Transmit { .. })));
//! assert!(layer.poll_output().is_none());
//! // Timer J: the transaction is gone 64*T1 later.
//! let due = layer.poll_timeout().unwrap();
//! assert_eq!(due, t0 + Duration::from_secs(32));
//! layer.handle_timeout(due);
//! assert_eq!(layer.server_count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # State machines
//!
//! All four of RFC 3261 §17, with RFC 6026's Accepted state for INVITE
//! transactions answered with a 2xx (Timers L and M, 64*T1):
//! - INVITE client: Calling (Timer A retransmits at T1, 2T1, 4T1 ... without
//!   cap; Timer B gives up at 64*T1), Proceeding (on 1xx; no retransmission),
//!   Completed (on 300-699: the layer builds and sends the ACK, with the
//!   INVITE's branch, and sends it again for every retransmitted final
//!   response; Timer D = 32 s), Accepted (on 2xx: every 2xx is passed up, the
//!   core ACKs it end-to-end; Timer M).
//! - non-INVITE client: Trying (Timer E from T1 doubling up to T2; Timer F at
//!   64*T1), Proceeding (E at T2), Completed (Timer K = T4).
//! - INVITE server: Proceeding (100 Trying after
//!   [`TxnConfig::trying_delay`], default 200 ms, unless the core answered;
//!   a retransmitted INVITE gets the last provisional again), Completed
//!   (300-699 retransmitted by Timer G from T1 doubling up to T2 until the ACK
//!   arrives, Timer H at 64*T1 reports [`Output::Timeout`]), Confirmed
//!   (Timer I = T4), Accepted (2xx: INVITE retransmissions absorbed, the
//!   core's own 2xx retransmissions passed through, Timer L).
//! - non-INVITE server: Trying, Proceeding, Completed (the last response is
//!   sent again for each retransmitted request; Timer J = 64*T1).
//!
//! On a reliable transport (TCP, TLS, WS, WSS; decided by the flow or target
//! of the transaction) Timers A, E and G are not used and D, I, J and K are
//! zero: the transaction ends as soon as it completes.
//!
//! As RFC 6026 says, the INVITE server transaction does not retransmit the
//! 2xx itself: that is the core's job (RFC 3261 §13.3.1.4) until the ACK,
//! which is end-to-end and reaches it as [`Output::Ack`].
//!
//! # CANCEL
//!
//! A CANCEL matching an INVITE server transaction gets its own non-INVITE
//! server transaction, which the layer answers with 200 at once (with the To
//! tag of the INVITE's last response, if it had one). If the INVITE has no
//! final response yet the core gets [`Output::Cancel`] and is expected to
//! answer the INVITE with 487. A CANCEL matching nothing gets 481 from the
//! layer. On the client side [`TxnLayer::cancel`] builds the CANCEL of an
//! INVITE client transaction (§9.1) and sends it once a provisional response
//! has arrived; if a final response comes first, the CANCEL is dropped.
//!
//! # Matching
//!
//! Responses match client transactions by the top Via branch and the CSeq
//! method (§17.1.3). Requests match server transactions by top Via branch,
//! sent-by and method, ACK matching the INVITE (§17.2.3); branches compare
//! case-insensitively. Requests whose branch lacks the `z9hG4bK` cookie are
//! matched the RFC 2543 way, on Request-URI, From tag, Call-ID, CSeq number
//! and top Via, minus the To tag comparison: an RFC 2543 ACK for a non-2xx
//! therefore matches its INVITE, and one for a 2xx reaches the core as
//! [`Output::Ack`] either way. Requests the layer sends must carry a
//! cookie branch ([`make_branch`] makes one from caller-provided random
//! bytes).
//!
//! Responses to server transactions go back on the flow the request came
//! on (for UDP, to its source address, as with `rport`). A client
//! transaction sends to its [`Destination`]; on a reliable transport, the
//! first response moves it onto the connection that response came on (or
//! call [`TxnLayer::set_flow`]).
//!
//! # Bounds
//!
//! At most [`TxnConfig::max_server_transactions`] server transactions: a
//! new request beyond that gets a stateless 503 (with Retry-After) and is
//! counted (the ACK of a rejected INVITE is absorbed); a CANCEL of an existing
//! INVITE is always accepted. At most [`TxnConfig::max_client_transactions`]
//! client transactions ([`TxnError::TooManyTransactions`]). Every transaction
//! has a timer that ends it: an INVITE waiting for a final response (either
//! side) and a non-INVITE server transaction waiting for the core are
//! dropped with [`Output::Timeout`] after [`TxnConfig::proceeding_limit`]
//! and 64*T1 respectively. A transaction is removed the moment it
//! terminates. Drain [`TxnLayer::poll_output`] after every call: outputs
//! queue until then.
//!
//! # Counters
//!
//! [`TxnLayer::counters`] reports stray responses, absorbed retransmissions,
//! overload rejections, timeouts and the like ([`TxnCounters`]).

mod client;
mod matching;
mod server;

#[cfg(feature = "fuzz")]
pub mod fuzz;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client::ClientTxn;
use matching::{derived_tag, ClientMatch, ServerMatch};
pub use matching::{is_rfc3261_branch, make_branch};
use server::ServerTxn;

use super::header::HeaderName;
use super::message::{Message, Request, Response};
use super::transport::{FlowId, Target, Transport};
use super::typed::Method;
use super::ParseError;

/// How many statelessly rejected INVITEs are remembered, to absorb their ACKs.
const REJECTED_MEMORY: usize = 256;

/// Timer values and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    /// T1, the RTT estimate (default 500 ms; at least 1 ms is used).
    pub t1: Duration,
    /// T2, the longest retransmit interval for non-INVITE requests and INVITE
    /// responses (default 4 s; at least T1 is used).
    pub t2: Duration,
    /// T4, how long a message may stay in the network (default 5 s): Timers
    /// I and K.
    pub t4: Duration,
    /// Timer D, how long an INVITE client transaction absorbs retransmitted
    /// final responses on an unreliable transport (default 32 s).
    pub timer_d: Duration,
    /// When an INVITE server transaction sends 100 Trying if the core has not
    /// responded: `Some(200 ms)` (default), `Some(Duration::ZERO)` at once,
    /// `None` never (the core always answers at once itself).
    pub trying_delay: Option<Duration>,
    /// How long an INVITE transaction, client or server, may wait for a
    /// final response once proceeding, before it is dropped with
    /// [`Output::Timeout`] (default 300 s). A memory bound: the core should
    /// run its own Timer C and CANCEL well before.
    pub proceeding_limit: Duration,
    /// Most concurrent client transactions (default 65 536).
    pub max_client_transactions: usize,
    /// Most concurrent server transactions (default 65 536); new requests
    /// beyond it get a stateless 503.
    pub max_server_transactions: usize,
    /// The Retry-After (seconds) of that 503 (default `Some(5)`).
    pub overload_retry_after: Option<u32>,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            trying_delay: Some(Duration::from_millis(200)),
            proceeding_limit: Duration::from_secs(300),
            max_client_transactions: 65_536,
            max_server_transactions: 65_536,
            overload_retry_after: Some(5),
        }
    }
}

impl TxnConfig {
    /// 64*T1: Timers B, F, H, J, L and M.
    fn timer_b(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// `now + d`, or `now` if that is not representable.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// Which side a transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A client transaction (we sent the request).
    Client,
    /// A server transaction (we received the request).
    Server,
}

/// Names a transaction for as long as it lives; never reused by a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnKey {
    role: Role,
    id: u64,
}

impl TxnKey {
    /// Client or server.
    pub fn role(self) -> Role {
        self.role
    }

    /// The number, unique within a layer.
    pub fn id(self) -> u64 {
        self.id
    }
}

impl fmt::Display for TxnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = match self.role {
            Role::Client => 'c',
            Role::Server => 's',
        };
        write!(f, "{r}{}", self.id)
    }
}

/// Where a message goes: an existing flow, or a transport address (the
/// caller may open a connection, see `SipTransport::send_to`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An existing flow.
    Flow(FlowId),
    /// A transport address.
    Target(Target),
}

impl Destination {
    /// The transport.
    pub fn transport(&self) -> Transport {
        match self {
            Destination::Flow(f) => f.transport,
            Destination::Target(t) => t.transport,
        }
    }
}

/// The state of a transaction (RFC 3261 §17 names, plus RFC 6026
/// Accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnState {
    /// A CANCEL waiting for a provisional response to its INVITE (§9.1).
    Held,
    /// INVITE client: request sent, nothing received.
    Calling,
    /// Non-INVITE: request sent (client) or received (server), no response.
    Trying,
    /// A provisional response received (client) or sent (server; an INVITE
    /// server transaction starts here).
    Proceeding,
    /// A final response (non-2xx for INVITE) received or sent.
    Completed,
    /// INVITE server: the ACK for the non-2xx final response arrived.
    Confirmed,
    /// INVITE: a 2xx was received or sent (RFC 6026).
    Accepted,
}

/// An effect for the caller, from [`TxnLayer::poll_output`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Send `message` (first transmissions, retransmissions, ACKs,
    /// 100 Trying, stateless answers).
    Transmit {
        /// The transaction it belongs to, for [`TxnLayer::transport_error`]
        /// if sending fails (`None` for stateless answers).
        key: Option<TxnKey>,
        /// Where to send it.
        dest: Destination,
        /// What to send.
        message: Message,
    },
    /// A new request, with the server transaction that answers it
    /// ([`TxnLayer::send_response`]). Not ACK or CANCEL.
    Request {
        /// The server transaction.
        key: TxnKey,
        /// The request.
        request: Request,
        /// The flow it came on.
        flow: FlowId,
        /// The address it came from.
        source: SocketAddr,
    },
    /// A response on a client transaction: each provisional once, the final
    /// once; for an INVITE every 2xx (each fork's, and retransmissions, for
    /// the core to ACK).
    Response {
        /// The client transaction.
        key: TxnKey,
        /// The response.
        response: Response,
        /// A 2xx with a To tag already passed up (send the ACK again).
        retransmission: bool,
    },
    /// An ACK for the core: for a 2xx, end-to-end (`key` is `None`: such an
    /// ACK has its own branch), or one matching an INVITE server transaction
    /// in the Accepted state (`key` is that transaction).
    Ack {
        /// The INVITE server transaction it matched, if any.
        key: Option<TxnKey>,
        /// The ACK.
        request: Request,
        /// The flow it came on.
        flow: FlowId,
        /// The address it came from.
        source: SocketAddr,
    },
    /// A CANCEL for an INVITE server transaction without a final response.
    /// The layer has answered the CANCEL with 200; the core should answer
    /// the INVITE with 487.
    Cancel {
        /// The INVITE server transaction being cancelled.
        key: TxnKey,
        /// The CANCEL.
        request: Request,
        /// The flow it came on.
        flow: FlowId,
        /// The address it came from.
        source: SocketAddr,
    },
    /// The transaction timed out (Timer B, F or H, or a limit) and is gone.
    Timeout {
        /// The transaction.
        key: TxnKey,
    },
    /// After [`TxnLayer::transport_error`]: the transaction is gone (an
    /// INVITE server transaction in the Accepted state stays).
    TransportError {
        /// The transaction.
        key: TxnKey,
    },
}

/// Why a call into the layer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnError {
    /// No such transaction (never existed, or already terminated).
    UnknownTransaction,
    /// A server key where a client one is needed, or the reverse.
    WrongRole,
    /// The transaction's state does not allow this (e.g. a second final
    /// response, or a CANCEL after the final response).
    InvalidState,
    /// ACK does not start a transaction: use [`TxnLayer::send_stateless`].
    AckNotTransaction,
    /// The top Via lacks a `z9hG4bK` branch ([`make_branch`]).
    MissingBranch,
    /// A client transaction with this branch and method exists.
    DuplicateTransaction,
    /// [`TxnConfig::max_client_transactions`] reached.
    TooManyTransactions,
    /// Only an INVITE can be cancelled.
    NotInvite,
    /// The status code is not in 100..=699.
    BadStatus,
    /// The request lacks a well-formed header the layer needs.
    Malformed(ParseError),
}

impl fmt::Display for TxnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnError::UnknownTransaction => f.write_str("unknown transaction"),
            TxnError::WrongRole => f.write_str("wrong transaction role"),
            TxnError::InvalidState => f.write_str("not allowed in the transaction's state"),
            TxnError::AckNotTransaction => f.write_str("ACK does not start a transaction"),
            TxnError::MissingBranch => f.write_str("top Via lacks an RFC 3261 branch"),
            TxnError::DuplicateTransaction => f.write_str("duplicate transaction"),
            TxnError::TooManyTransactions => f.write_str("too many transactions"),
            TxnError::NotInvite => f.write_str("not an INVITE transaction"),
            TxnError::BadStatus => f.write_str("status code out of range"),
            TxnError::Malformed(e) => write!(f, "malformed request: {e}"),
        }
    }
}

impl std::error::Error for TxnError {}

/// What the layer counted since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TxnCounters {
    /// Client transactions created.
    pub client_created: u64,
    /// Server transactions created.
    pub server_created: u64,
    /// Messages sent again by the layer (Timers A, E, G; ACK or response for
    /// a retransmission received).
    pub retransmissions: u64,
    /// Retransmitted requests absorbed (answered by the layer, or dropped).
    pub requests_absorbed: u64,
    /// Retransmitted or late responses absorbed.
    pub responses_absorbed: u64,
    /// ACKs absorbed (for non-2xx finals, retransmitted, or of a rejected
    /// INVITE).
    pub acks_absorbed: u64,
    /// Responses matching no client transaction (dropped).
    pub stray_responses: u64,
    /// Requests answered 503 because of [`TxnConfig::max_server_transactions`].
    pub overload_rejected: u64,
    /// [`TxnLayer::send_request`] refused for
    /// [`TxnConfig::max_client_transactions`].
    pub client_limit_refused: u64,
    /// CANCELs matching no INVITE (answered 481).
    pub cancels_unmatched: u64,
    /// Messages without a usable top Via or CSeq (dropped).
    pub malformed: u64,
    /// Transactions ended by a timeout ([`Output::Timeout`]).
    pub timeouts: u64,
    /// Transport errors reported.
    pub transport_errors: u64,
    /// Transactions removed (all reasons).
    pub terminated: u64,
}

/// What the state machines need from the layer while handling an event.
struct Fx<'a> {
    cfg: &'a TxnConfig,
    out: &'a mut VecDeque<Output>,
    counters: &'a mut TxnCounters,
}

/// The transaction layer: all client and server transactions of one SIP
/// element. See the [module documentation](self).
#[derive(Debug)]
pub struct TxnLayer {
    config: TxnConfig,
    next_id: u64,
    clients: HashMap<TxnKey, ClientTxn>,
    servers: HashMap<TxnKey, ServerTxn>,
    client_index: HashMap<ClientMatch, TxnKey>,
    server_index: HashMap<ServerMatch, TxnKey>,
    timers: BTreeSet<(Instant, TxnKey)>,
    outputs: VecDeque<Output>,
    /// Statelessly rejected INVITEs, oldest first (their ACKs are absorbed).
    rejected: VecDeque<ServerMatch>,
    counters: TxnCounters,
}

impl TxnLayer {
    /// A layer with `config` (T1 is raised to at least 1 ms and T2 to at
    /// least T1).
    pub fn new(mut config: TxnConfig) -> TxnLayer {
        config.t1 = config.t1.max(Duration::from_millis(1));
        config.t2 = config.t2.max(config.t1);
        TxnLayer {
            config,
            next_id: 1,
            clients: HashMap::new(),
            servers: HashMap::new(),
            client_index: HashMap::new(),
            server_index: HashMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            rejected: VecDeque::new(),
            counters: TxnCounters::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> TxnCounters {
        self.counters
    }

    /// Live client transactions.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Live server transactions.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// The state of a live transaction.
    pub fn state(&self, key: TxnKey) -> Option<TxnState> {
        match key.role {
            Role::Client => self.clients.get(&key).map(|t| t.state),
            Role::Server => self.servers.get(&key).map(|t| t.state),
        }
    }

    /// The next effect to carry out, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`TxnLayer::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    fn new_key(&mut self, role: Role) -> TxnKey {
        let id = self.next_id;
        self.next_id += 1;
        TxnKey { role, id }
    }

    fn fx(&mut self) -> (Fx<'_>, &mut HashMap<TxnKey, ClientTxn>) {
        (
            Fx {
                cfg: &self.config,
                out: &mut self.outputs,
                counters: &mut self.counters,
            },
            &mut self.clients,
        )
    }

    // -----------------------------------------------------------------------------------------
    // input from the transport

    /// A message from the transport (`flow` it came on, `source` address).
    pub fn handle_message(
        &mut self,
        now: Instant,
        flow: FlowId,
        source: SocketAddr,
        message: Message,
    ) {
        match message {
            Message::Request(req) => self.handle_request(now, flow, source, req),
            Message::Response(resp) => self.handle_response(now, flow, resp),
        }
    }

    fn handle_response(&mut self, now: Instant, flow: FlowId, resp: Response) {
        let matcher = match ClientMatch::of_response(&resp) {
            Ok(Some(m)) => m,
            Ok(None) => {
                self.counters.stray_responses += 1;
                return;
            }
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        let Some(&key) = self.client_index.get(&matcher) else {
            self.counters.stray_responses += 1;
            return;
        };
        let (mut fx, clients) = self.fx();
        let Some(txn) = clients.get_mut(&key) else {
            return;
        };
        let alive = txn.on_response(now, resp, flow, &mut fx);
        self.settle_client(now, key, alive);
    }

    fn handle_request(&mut self, now: Instant, flow: FlowId, source: SocketAddr, req: Request) {
        let matcher = match ServerMatch::of_request(&req) {
            Ok(m) => m,
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        if req.method == Method::Ack {
            return self.handle_ack(now, flow, source, req, matcher);
        }
        if let Some(&key) = self.server_index.get(&matcher) {
            let mut fx = Fx {
                cfg: &self.config,
                out: &mut self.outputs,
                counters: &mut self.counters,
            };
            if let Some(txn) = self.servers.get_mut(&key) {
                txn.on_retransmission(&mut fx);
            }
            self.settle_server(key, true);
            return;
        }
        if req.method == Method::Cancel {
            return self.handle_cancel(now, flow, source, req, matcher);
        }
        if self.servers.len() >= self.config.max_server_transactions {
            self.counters.overload_rejected += 1;
            if req.method == Method::Invite && !self.rejected.contains(&matcher) {
                if self.rejected.len() >= REJECTED_MEMORY {
                    self.rejected.pop_front();
                }
                self.rejected.push_back(matcher);
            }
            self.reject(&req, flow, 503);
            return;
        }
        let key = self.create_server(now, &req, flow, matcher);
        self.outputs.push_back(Output::Request {
            key,
            request: req,
            flow,
            source,
        });
    }

    fn create_server(
        &mut self,
        now: Instant,
        req: &Request,
        flow: FlowId,
        matcher: ServerMatch,
    ) -> TxnKey {
        let key = self.new_key(Role::Server);
        let mut fx = Fx {
            cfg: &self.config,
            out: &mut self.outputs,
            counters: &mut self.counters,
        };
        let txn = ServerTxn::new(key, req, flow, matcher.clone(), now, &mut fx);
        self.counters.server_created += 1;
        self.server_index.insert(matcher, key);
        self.servers.insert(key, txn);
        self.settle_server(key, true);
        key
    }

    fn handle_ack(
        &mut self,
        now: Instant,
        flow: FlowId,
        source: SocketAddr,
        req: Request,
        matcher: ServerMatch,
    ) {
        if let Some(&key) = self.server_index.get(&matcher) {
            let mut fx = Fx {
                cfg: &self.config,
                out: &mut self.outputs,
                counters: &mut self.counters,
            };
            let alive = match self.servers.get_mut(&key) {
                Some(txn) => txn.on_ack(now, req, flow, source, &mut fx),
                None => true,
            };
            self.settle_server(key, alive);
            return;
        }
        if self.rejected.contains(&matcher) {
            self.counters.acks_absorbed += 1;
            return;
        }
        // An ACK for a 2xx: end-to-end, the core's.
        self.outputs.push_back(Output::Ack {
            key: None,
            request: req,
            flow,
            source,
        });
    }

    fn handle_cancel(
        &mut self,
        now: Instant,
        flow: FlowId,
        source: SocketAddr,
        req: Request,
        matcher: ServerMatch,
    ) {
        let invite = self.server_index.get(&matcher.with_method(Method::Invite));
        let Some(&invite) = invite else {
            self.counters.cancels_unmatched += 1;
            self.reject(&req, flow, 481);
            return;
        };
        let (tag, proceeding) = match self.servers.get(&invite) {
            Some(ist) => (ist.last_to_tag(), ist.state == TxnState::Proceeding),
            None => (None, false),
        };
        let mut ok = Response::from_request(&req, 200);
        let tag = tag.unwrap_or_else(|| derived_tag(&req));
        let _ = ok.set_to_tag(&tag);
        // Over the limit too: a CANCEL frees resources, and there is at most
        // one per INVITE server transaction.
        let key = self.create_server(now, &req, flow, matcher);
        let mut fx = Fx {
            cfg: &self.config,
            out: &mut self.outputs,
            counters: &mut self.counters,
        };
        let alive = match self.servers.get_mut(&key) {
            Some(txn) => txn.send_response(now, ok, &mut fx).unwrap_or(false),
            None => false,
        };
        self.settle_server(key, alive);
        if proceeding {
            self.outputs.push_back(Output::Cancel {
                key: invite,
                request: req,
                flow,
                source,
            });
        }
    }

    /// A stateless answer (503 over the limit, 481 for an unmatched CANCEL).
    fn reject(&mut self, req: &Request, flow: FlowId, status: u16) {
        let mut r = Response::from_request(req, status);
        let _ = r.set_to_tag(&derived_tag(req));
        if status == 503 {
            if let Some(s) = self.config.overload_retry_after {
                r.headers.push(HeaderName::RetryAfter, s.to_string());
            }
        }
        self.outputs.push_back(Output::Transmit {
            key: None,
            dest: Destination::Flow(flow),
            message: Message::Response(r),
        });
    }

    // -----------------------------------------------------------------------------------------
    // input from the core

    /// Starts a client transaction for `request` (not ACK), sent to `dest`.
    /// The top Via must carry an RFC 3261 branch ([`make_branch`]), unique
    /// for the method. The first transmission is queued at once.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        dest: Destination,
    ) -> Result<TxnKey, TxnError> {
        if request.method == Method::Ack {
            return Err(TxnError::AckNotTransaction);
        }
        let via = request.headers.top_via().map_err(TxnError::Malformed)?;
        let branch = via
            .branch()
            .filter(|b| is_rfc3261_branch(b))
            .ok_or(TxnError::MissingBranch)?;
        let cseq = request.headers.cseq().map_err(TxnError::Malformed)?;
        if cseq.method != request.method {
            return Err(TxnError::Malformed(ParseError::CSeqMethodMismatch));
        }
        let matcher = ClientMatch::new(branch, request.method.clone());
        if self.client_index.contains_key(&matcher) {
            return Err(TxnError::DuplicateTransaction);
        }
        if self.clients.len() >= self.config.max_client_transactions {
            self.counters.client_limit_refused += 1;
            return Err(TxnError::TooManyTransactions);
        }
        let key = self.new_key(Role::Client);
        let mut txn = ClientTxn::new(key, request, dest, matcher.clone());
        let (mut fx, clients) = self.fx();
        txn.start(now, &mut fx);
        clients.insert(key, txn);
        self.counters.client_created += 1;
        self.client_index.insert(matcher, key);
        self.settle_client(now, key, true);
        Ok(key)
    }

    /// Cancels the INVITE client transaction `invite` (RFC 3261 §9.1): builds
    /// the CANCEL (same Request-URI, Call-ID, From, To, CSeq number, top Via
    /// and Route) and starts its client transaction to the same destination.
    /// If no provisional response has arrived yet, the CANCEL waits for one
    /// ([`TxnState::Held`]) and is dropped if a final response comes first.
    /// Calling it again returns the same CANCEL transaction.
    pub fn cancel(&mut self, now: Instant, invite: TxnKey) -> Result<TxnKey, TxnError> {
        if invite.role != Role::Client {
            return Err(TxnError::WrongRole);
        }
        let ict = self
            .clients
            .get(&invite)
            .ok_or(TxnError::UnknownTransaction)?;
        if !ict.invite {
            return Err(TxnError::NotInvite);
        }
        if let Some(existing) = ict.cancel {
            return Ok(existing);
        }
        let state = ict.state;
        if !matches!(state, TxnState::Calling | TxnState::Proceeding) {
            return Err(TxnError::InvalidState);
        }
        let request = ict.build_cancel();
        let dest = ict.dest.clone();
        let matcher = ict.matcher.with_method(Method::Cancel);
        if self.client_index.contains_key(&matcher) {
            return Err(TxnError::DuplicateTransaction);
        }
        if self.clients.len() >= self.config.max_client_transactions {
            self.counters.client_limit_refused += 1;
            return Err(TxnError::TooManyTransactions);
        }
        let key = self.new_key(Role::Client);
        let mut txn = ClientTxn::new(key, request, dest, matcher.clone());
        if state == TxnState::Proceeding {
            let (mut fx, _) = self.fx();
            txn.start(now, &mut fx);
        }
        self.clients.insert(key, txn);
        self.counters.client_created += 1;
        self.client_index.insert(matcher, key);
        if let Some(ict) = self.clients.get_mut(&invite) {
            ict.cancel = Some(key);
        }
        self.settle_client(now, key, true);
        Ok(key)
    }

    /// The core's response on server transaction `key`: provisional, final,
    /// or (INVITE in the Accepted state) a 2xx retransmission. Sent on the
    /// request's flow.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: TxnKey,
        response: Response,
    ) -> Result<(), TxnError> {
        if key.role != Role::Server {
            return Err(TxnError::WrongRole);
        }
        let mut fx = Fx {
            cfg: &self.config,
            out: &mut self.outputs,
            counters: &mut self.counters,
        };
        let txn = self
            .servers
            .get_mut(&key)
            .ok_or(TxnError::UnknownTransaction)?;
        let alive = txn.send_response(now, response, &mut fx)?;
        self.settle_server(key, alive);
        Ok(())
    }

    /// Queues a message outside any transaction (an ACK for a 2xx, a
    /// stateless response, a keepalive request ...) as [`Output::Transmit`]
    /// with no key.
    pub fn send_stateless(&mut self, dest: Destination, message: Message) {
        self.outputs.push_back(Output::Transmit {
            key: None,
            dest,
            message,
        });
    }

    /// Tells a client transaction on a reliable transport which connection
    /// its request went out on (from `SipTransport::send_to`), so that an
    /// ACK follows it there.
    pub fn set_flow(&mut self, key: TxnKey, flow: FlowId) -> Result<(), TxnError> {
        if key.role != Role::Client {
            return Err(TxnError::WrongRole);
        }
        let txn = self
            .clients
            .get_mut(&key)
            .ok_or(TxnError::UnknownTransaction)?;
        txn.set_flow(flow);
        Ok(())
    }

    /// Sending a message of transaction `key` failed (or its connection
    /// closed): the core gets [`Output::TransportError`] and the transaction
    /// ends (except an INVITE server transaction in the Accepted state, which
    /// keeps absorbing retransmissions until Timer L). Unknown keys are
    /// ignored.
    pub fn transport_error(&mut self, key: TxnKey) {
        let mut fx = Fx {
            cfg: &self.config,
            out: &mut self.outputs,
            counters: &mut self.counters,
        };
        match key.role {
            Role::Client => {
                let Some(txn) = self.clients.get_mut(&key) else {
                    return;
                };
                let alive = txn.on_transport_error(&mut fx);
                // A held CANCEL has no "now" to be started with; it is only
                // ever dropped here.
                self.settle_client_at(None, key, alive);
            }
            Role::Server => {
                let Some(txn) = self.servers.get_mut(&key) else {
                    return;
                };
                let alive = txn.on_transport_error(&mut fx);
                self.settle_server(key, alive);
            }
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Collect first: each transaction fires at most once per call, even
        // if it rescheduled itself at or before `now`.
        let due: Vec<TxnKey> = self
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, k)| *k)
            .collect();
        for key in due {
            let mut fx = Fx {
                cfg: &self.config,
                out: &mut self.outputs,
                counters: &mut self.counters,
            };
            match key.role {
                Role::Client => {
                    let Some(txn) = self.clients.get_mut(&key) else {
                        continue;
                    };
                    let alive = txn.on_timer(now, &mut fx);
                    self.settle_client(now, key, alive);
                }
                Role::Server => {
                    let Some(txn) = self.servers.get_mut(&key) else {
                        continue;
                    };
                    let alive = txn.on_timer(now, &mut fx);
                    self.settle_server(key, alive);
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // bookkeeping

    fn settle_client(&mut self, now: Instant, key: TxnKey, alive: bool) {
        self.settle_client_at(Some(now), key, alive);
    }

    /// After an event on client transaction `key`: removes it if it ended,
    /// else updates its timer; then starts or drops a CANCEL held for it.
    fn settle_client_at(&mut self, now: Option<Instant>, key: TxnKey, alive: bool) {
        let Some(txn) = self.clients.get_mut(&key) else {
            return;
        };
        let held = txn.cancel;
        let state = txn.state;
        if alive {
            let next = txn.next_deadline();
            let old = txn.scheduled;
            txn.scheduled = next;
            reschedule(&mut self.timers, key, old, next);
        } else if let Some(txn) = self.clients.remove(&key) {
            self.client_index.remove(&txn.matcher);
            if let Some(at) = txn.scheduled {
                self.timers.remove(&(at, key));
            }
            self.counters.terminated += 1;
        }
        // The held CANCEL of an INVITE.
        let Some(ck) = held else {
            return;
        };
        let Some(cancel) = self.clients.get_mut(&ck) else {
            return;
        };
        if cancel.state != TxnState::Held {
            return;
        }
        match (alive, state, now) {
            (true, TxnState::Calling, _) => {}
            (true, TxnState::Proceeding, Some(now)) => {
                let mut fx = Fx {
                    cfg: &self.config,
                    out: &mut self.outputs,
                    counters: &mut self.counters,
                };
                cancel.start(now, &mut fx);
                self.settle_client(now, ck, true);
            }
            _ => {
                // A final response (or the end) came first: nothing to cancel.
                self.settle_client_at(None, ck, false);
            }
        }
    }

    /// After an event on server transaction `key`: removes it if it ended,
    /// else updates its timer.
    fn settle_server(&mut self, key: TxnKey, alive: bool) {
        let Some(txn) = self.servers.get_mut(&key) else {
            return;
        };
        if alive {
            let next = txn.next_deadline();
            let old = txn.scheduled;
            txn.scheduled = next;
            reschedule(&mut self.timers, key, old, next);
        } else if let Some(txn) = self.servers.remove(&key) {
            self.server_index.remove(&txn.matcher);
            if let Some(at) = txn.scheduled {
                self.timers.remove(&(at, key));
            }
            self.counters.terminated += 1;
        }
    }

    /// Checks the internal invariants (for tests and fuzzing): indexes and
    /// timers agree with the transactions, and the limits hold. Returns a
    /// description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.client_index.len() != self.clients.len() {
            return Err("client index size".into());
        }
        if self.server_index.len() != self.servers.len() {
            return Err("server index size".into());
        }
        for (k, t) in &self.clients {
            if self.client_index.get(&t.matcher) != Some(k) {
                return Err(format!("client {k} not indexed"));
            }
            if t.scheduled != t.next_deadline() {
                return Err(format!("client {k} timer stale"));
            }
            if let Some(at) = t.scheduled {
                if !self.timers.contains(&(at, *k)) {
                    return Err(format!("client {k} timer missing"));
                }
            }
            if t.state == TxnState::Held && t.scheduled.is_some() {
                return Err(format!("held client {k} has a timer"));
            }
        }
        for (k, t) in &self.servers {
            if self.server_index.get(&t.matcher) != Some(k) {
                return Err(format!("server {k} not indexed"));
            }
            if t.scheduled != t.next_deadline() {
                return Err(format!("server {k} timer stale"));
            }
            if let Some(at) = t.scheduled {
                if !self.timers.contains(&(at, *k)) {
                    return Err(format!("server {k} timer missing"));
                }
            }
        }
        for (_, k) in &self.timers {
            let known = match k.role {
                Role::Client => self.clients.contains_key(k),
                Role::Server => self.servers.contains_key(k),
            };
            if !known {
                return Err(format!("timer for dead {k}"));
            }
        }
        if self.clients.len() > self.config.max_client_transactions {
            return Err("client limit exceeded".into());
        }
        // CANCEL transactions may exceed the server limit, by at most one
        // per INVITE.
        if self.servers.len() > self.config.max_server_transactions.saturating_mul(2) {
            return Err("server limit exceeded".into());
        }
        if self.rejected.len() > REJECTED_MEMORY {
            return Err("rejected memory exceeded".into());
        }
        Ok(())
    }
}

fn reschedule(
    timers: &mut BTreeSet<(Instant, TxnKey)>,
    key: TxnKey,
    old: Option<Instant>,
    next: Option<Instant>,
) {
    if old == next {
        return;
    }
    if let Some(at) = old {
        timers.remove(&(at, key));
    }
    if let Some(at) = next {
        timers.insert((at, key));
    }
}
