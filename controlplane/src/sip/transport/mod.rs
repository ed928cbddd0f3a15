//! SIP transports on tokio: UDP, TCP, TLS, WS and WSS (RFC 3261 §18,
//! RFC 5626 keepalives, RFC 7118 SIP over WebSocket).
//!
//! # Flow model
//!
//! Every source of messages is a *flow*, named by a [`FlowId`]: transport,
//! local and remote address, and a connection id. A connection (TCP, TLS,
//! WS, WSS, accepted or opened by us) is one flow with a unique, never reused
//! `conn`; for UDP a flow is a (local socket, remote address) pair and `conn`
//! is 0. This is the flow of RFC 5626: the registrar stores it with a
//! binding, and the core sends requests to a registered browser back over the
//! same flow.
//!
//! [`SipTransport::start`] binds the listeners and returns a handle plus a
//! bounded receiver of [`TransportEvent`]s:
//! - [`TransportEvent::FlowOpened`] when a connection is established (for
//!   WS/WSS after a successful handshake, with the handshake's path, Origin
//!   and headers, for authentication or logging);
//! - [`TransportEvent::Message`]: a parsed message, its flow and source;
//! - [`TransportEvent::Malformed`]: input that failed to parse, and whether
//!   the layer answered it (a 400/505/513 naming the problem is sent when the
//!   request can be routed, see [`super::error_response`]);
//! - [`TransportEvent::FlowClosed`] with a [`CloseReason`], whatever ended
//!   the connection (peer, idle timeout, error, [`SipTransport::close`]).
//!
//! The core answers with [`SipTransport::send`] on a flow (never blocks: a
//! full per-connection queue closes that connection rather than buffering),
//! or [`SipTransport::send_to`] an address (UDP, or a reused or new TCP/TLS
//! connection).
//!
//! On incoming requests the layer does what RFC 3261 §18.2.1 and RFC 3581
//! ask of a server transport: it adds `received` to the top Via when the
//! sent-by host differs from the source address, and fills in an empty
//! `rport`. It answers CRLFCRLF keepalive pings with CRLF on TCP, TLS and
//! WebSocket (what SIP.js and JsSIP send) and ignores them on UDP.
//!
//! # The web phone page
//!
//! A WS or WSS listener also answers plain HTTP: a request without
//! `Upgrade: websocket` gets the web phone page and its scripts (embedded in
//! the binary) when [`TransportConfig::web_phone`] is on, 404 otherwise, and
//! the connection is closed. The request head is bounded and read within the
//! handshake deadline; a malformed one is answered 400 (or 431) and counted
//! as malformed input.
//!
//! # Bounds
//!
//! Nothing grows without limit: messages are limited by [`Limits`]; a stream
//! buffers at most one message plus one read; WebSocket frames and messages
//! are limited likewise; each connection has a bounded send queue; the
//! number of connections is capped; handshakes, idle connections and
//! incomplete messages time out; the event channel is bounded (a slow core
//! slows reading down, which is the back-pressure we want). When a connection
//! task ends, for whatever reason, its registry entry and buffers are freed
//! (RAII), and the close is reported.
//!
//! # Counters
//!
//! Per transport, see [`SipTransport::counters`].

mod counters;
pub(crate) mod http;
mod stream;
pub mod tls;
mod udp;
mod ws;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch, Notify};

pub use counters::CounterSnapshot;
use counters::Counters;

use super::message::{error_response, Framing, Limits, Message, Request};
use super::ParseError;

/// A SIP transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Transport {
    /// All transports.
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// The Via transport token (`UDP`, `TCP`, `TLS`, `WS`, `WSS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// From a Via transport token or `transport=` URI parameter
    /// (case-insensitive); `None` for SCTP and unknown ones.
    pub fn from_token(s: &str) -> Option<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the transport is connection-oriented.
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// Whether the transport is encrypted.
    pub fn is_secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// Whether it is a WebSocket transport.
    pub fn is_websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    /// The default port (5060, or 5061 for TLS; 80/443 for WS/WSS).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
            Transport::Ws => 80,
            Transport::Wss => 443,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one flow (RFC 5626): a connection, or a UDP (local, remote)
/// pair (`conn == 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId {
    /// The transport.
    pub transport: Transport,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Connection id, unique for the life of the [`SipTransport`]; 0 for UDP.
    pub conn: u64,
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}#{}",
            self.transport, self.local, self.remote, self.conn
        )
    }
}

/// The HTTP request that opened a WebSocket flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsHandshake {
    /// Request target (path and query), e.g. `/ws?token=abc`.
    pub path: String,
    /// The Origin header, if any.
    pub origin: Option<String>,
    /// All request headers (name lower-cased, value lossily decoded).
    pub headers: Vec<(String, String)>,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection (or sent a WebSocket close).
    PeerClosed,
    /// Nothing was received for [`TransportConfig::idle_timeout`].
    IdleTimeout,
    /// A message stayed incomplete for [`TransportConfig::message_timeout`].
    MessageTimeout,
    /// The stream could not be delimited any more.
    Framing(ParseError),
    /// A WebSocket message or frame over the size limit.
    TooLarge,
    /// A WebSocket protocol violation.
    WebSocketProtocol,
    /// A read or write failed.
    Io(io::ErrorKind),
    /// A write did not complete within [`TransportConfig::write_timeout`].
    WriteTimeout,
    /// The per-connection send queue was full (peer not reading).
    SendQueueFull,
    /// [`SipTransport::close`] was called.
    Closed,
    /// An outgoing connection could not be established.
    ConnectFailed,
    /// The transport is shutting down.
    Shutdown,
}

/// What the transports report to the core.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A connection is established.
    FlowOpened {
        /// The new flow.
        flow: FlowId,
        /// For WS/WSS: the handshake request.
        ws: Option<Box<WsHandshake>>,
    },
    /// A message was received.
    Message {
        /// The flow it came on.
        flow: FlowId,
        /// The address it came from (same as `flow.remote`).
        source: SocketAddr,
        /// The message (top Via already carries `received`/`rport`).
        message: Message,
    },
    /// Input that could not be parsed (already counted).
    Malformed {
        /// The flow it came on.
        flow: FlowId,
        /// The address it came from.
        source: SocketAddr,
        /// Why.
        error: ParseError,
        /// Whether an error response was sent.
        answered: bool,
    },
    /// A connection ended; its resources are already freed.
    FlowClosed {
        /// The flow.
        flow: FlowId,
        /// Why.
        reason: CloseReason,
    },
}

/// Why a send failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No such flow (closed, or never existed).
    UnknownFlow,
    /// The flow's send queue is full; the flow is being closed.
    QueueFull,
    /// No listener/socket for this transport and address family.
    NoSocket,
    /// The message is larger than the size limit.
    TooLarge,
    /// No TLS client configuration, or the server name is not valid.
    Tls,
    /// Connection limit reached.
    TooManyConnections,
    /// Connecting failed or timed out.
    ConnectFailed,
    /// We cannot open connections of this transport (WS/WSS are
    /// browser-initiated).
    Unsupported,
    /// A socket error.
    Io(io::ErrorKind),
    /// The transports have been shut down.
    Shutdown,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownFlow => f.write_str("unknown flow"),
            SendError::QueueFull => f.write_str("send queue full"),
            SendError::NoSocket => f.write_str("no socket for this transport"),
            SendError::TooLarge => f.write_str("message too large"),
            SendError::Tls => f.write_str("TLS client configuration or server name"),
            SendError::TooManyConnections => f.write_str("too many connections"),
            SendError::ConnectFailed => f.write_str("connect failed"),
            SendError::Unsupported => f.write_str("cannot open connections of this transport"),
            SendError::Io(k) => write!(f, "I/O error: {k}"),
            SendError::Shutdown => f.write_str("transports shut down"),
        }
    }
}

impl std::error::Error for SendError {}

/// Where [`SipTransport::send_to`] sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The transport.
    pub transport: Transport,
    /// The address.
    pub addr: SocketAddr,
    /// For TLS: the name to verify the server certificate against (default:
    /// the IP address).
    pub server_name: Option<String>,
}

/// Listener addresses, TLS material, limits and timeouts.
#[derive(Clone)]
pub struct TransportConfig {
    /// UDP sockets to bind.
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners (need `tls_server`).
    pub tls: Vec<SocketAddr>,
    /// WebSocket listeners.
    pub ws: Vec<SocketAddr>,
    /// Secure WebSocket listeners (need `tls_server`).
    pub wss: Vec<SocketAddr>,
    /// Server certificate and key for TLS and WSS (see [`tls`]).
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
    /// Client configuration for outgoing TLS connections.
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    /// Message size and header count limits (also the WebSocket message
    /// limit and the largest message we send).
    pub limits: Limits,
    /// Origins allowed to open WebSocket flows (exact, case-insensitive);
    /// empty allows all.
    pub ws_allowed_origins: Vec<String>,
    /// TLS plus WebSocket handshake deadline.
    pub handshake_timeout: Duration,
    /// A connection with no input for this long is closed.
    pub idle_timeout: Duration,
    /// A message must be complete this long after its first byte.
    pub message_timeout: Duration,
    /// WebSocket ping interval (`None`: no pings).
    pub ws_ping_interval: Option<Duration>,
    /// Outgoing connection deadline (TCP and TLS handshake).
    pub connect_timeout: Duration,
    /// Deadline for writing one message to a connection.
    pub write_timeout: Duration,
    /// After a stream can no longer be framed, how long the connection stays
    /// open (input discarded) so that answers to the messages already
    /// delivered still reach the peer.
    pub linger: Duration,
    /// Most simultaneous connections (all transports, both directions).
    pub max_connections: usize,
    /// Capacity of the event channel.
    pub event_queue: usize,
    /// Messages queued per connection before it is deemed stuck.
    pub send_queue: usize,
    /// Answer malformed requests with 400/505/513 when possible.
    pub answer_malformed: bool,
    /// Add `received`/`rport` to the top Via of incoming requests.
    pub fix_via: bool,
    /// Answer plain HTTP GETs on the WS/WSS listeners with the web phone
    /// page (`/`, `/index.html`, `/phone.js`, `/jssip.js`, embedded in the
    /// binary); off, every plain HTTP request is answered 404. WebSocket
    /// upgrades are served either way. Default on, like the `sip.web_phone`
    /// configuration key.
    pub web_phone: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
            ws: Vec::new(),
            wss: Vec::new(),
            tls_server: None,
            tls_client: None,
            limits: Limits::default(),
            ws_allowed_origins: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            message_timeout: Duration::from_secs(30),
            ws_ping_interval: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(2),
            max_connections: 10_000,
            event_queue: 1024,
            send_queue: 64,
            answer_malformed: true,
            fix_via: true,
            web_phone: true,
        }
    }
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("udp", &self.udp)
            .field("tcp", &self.tcp)
            .field("tls", &self.tls)
            .field("ws", &self.ws)
            .field("wss", &self.wss)
            .field("tls_server", &self.tls_server.is_some())
            .field("tls_client", &self.tls_client.is_some())
            .field("limits", &self.limits)
            .field("ws_allowed_origins", &self.ws_allowed_origins)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("message_timeout", &self.message_timeout)
            .field("ws_ping_interval", &self.ws_ping_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("linger", &self.linger)
            .field("max_connections", &self.max_connections)
            .field("event_queue", &self.event_queue)
            .field("send_queue", &self.send_queue)
            .field("answer_malformed", &self.answer_malformed)
            .field("fix_via", &self.fix_via)
            .field("web_phone", &self.web_phone)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// shared state

pub(crate) enum Outgoing {
    Data(Vec<u8>),
}

/// Close request for a connection task.
pub(crate) struct FlowCtl {
    notify: Notify,
    reason: AtomicU8,
}

const CTL_NONE: u8 = 0;
const CTL_CLOSE: u8 = 1;
const CTL_OVERFLOW: u8 = 2;

impl FlowCtl {
    fn request(&self, reason: u8) {
        let _ = self
            .reason
            .compare_exchange(CTL_NONE, reason, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    pub(crate) async fn wait(&self) -> CloseReason {
        self.notify.notified().await;
        match self.reason.load(Ordering::Acquire) {
            CTL_OVERFLOW => CloseReason::SendQueueFull,
            _ => CloseReason::Closed,
        }
    }
}

struct FlowEntry {
    tx: mpsc::Sender<Outgoing>,
    ctl: Arc<FlowCtl>,
}

#[derive(Default)]
struct Registry {
    flows: HashMap<FlowId, FlowEntry>,
    by_remote: HashMap<(Transport, SocketAddr), FlowId>,
}

pub(crate) struct Shared {
    pub(crate) config: TransportConfig,
    pub(crate) events: mpsc::Sender<TransportEvent>,
    registry: Mutex<Registry>,
    udp: Vec<Arc<UdpSocket>>,
    listeners: Vec<(Transport, SocketAddr)>,
    counters: Arc<[Counters; 5]>,
    next_conn: AtomicU64,
    connections: AtomicUsize,
    pub(crate) shutdown: watch::Receiver<bool>,
    tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A poisoned lock only means another task panicked while holding it;
        // the maps are still consistent (every update is a single insert or
        // remove), so keep going.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn counters(&self, t: Transport) -> &Counters {
        &self.counters[t.index()]
    }

    /// Takes a connection slot, or `None` at the limit.
    pub(crate) fn try_slot(self: &Arc<Self>, t: Transport) -> Option<ConnSlot> {
        let max = self.config.max_connections;
        let ok = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !ok {
            self.counters(t).inc(&self.counters(t).connections_refused);
            return None;
        }
        Some(ConnSlot {
            shared: Arc::clone(self),
        })
    }

    /// Registers a connection flow; the guard unregisters it when dropped.
    pub(crate) fn register(
        self: &Arc<Self>,
        slot: ConnSlot,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> (FlowGuard, mpsc::Receiver<Outgoing>, Arc<FlowCtl>) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let flow = FlowId {
            transport,
            local,
            remote,
            conn,
        };
        let (tx, rx) = mpsc::channel(self.config.send_queue.max(1));
        let ctl = Arc::new(FlowCtl {
            notify: Notify::new(),
            reason: AtomicU8::new(CTL_NONE),
        });
        {
            let mut reg = self.registry();
            reg.flows.insert(
                flow,
                FlowEntry {
                    tx,
                    ctl: Arc::clone(&ctl),
                },
            );
            reg.by_remote.insert((transport, remote), flow);
        }
        let c = self.counters(transport);
        c.inc(&c.flows_opened);
        (
            FlowGuard {
                shared: Arc::clone(self),
                flow,
                _slot: slot,
            },
            rx,
            ctl,
        )
    }

    /// Parses one datagram / WebSocket message / framed stream message and
    /// builds the event (plus an error response to send back, if any).
    pub(crate) fn handle_payload(
        &self,
        flow: FlowId,
        source: SocketAddr,
        data: &[u8],
        framing: Framing,
    ) -> (TransportEvent, Option<Vec<u8>>) {
        let c = self.counters(flow.transport);
        c.add(&c.rx_bytes, data.len());
        match Message::parse_with(data, &self.config.limits, framing) {
            Ok(mut message) => {
                c.inc(&c.rx_messages);
                if self.config.fix_via {
                    if let Message::Request(r) = &mut message {
                        fix_top_via(r, source);
                    }
                }
                (
                    TransportEvent::Message {
                        flow,
                        source,
                        message,
                    },
                    None,
                )
            }
            Err(error) => {
                let reply = if self.config.answer_malformed {
                    error_response(data, error, &self.config.limits).map(|r| r.to_bytes())
                } else {
                    None
                };
                let answered = reply.is_some();
                c.inc(if answered {
                    &c.malformed_answered
                } else {
                    &c.malformed_dropped
                });
                if error == ParseError::TooLarge {
                    c.inc(&c.too_large);
                }
                (
                    TransportEvent::Malformed {
                        flow,
                        source,
                        error,
                        answered,
                    },
                    reply,
                )
            }
        }
    }

    /// Delivers an event (waits while the channel is full: back-pressure).
    pub(crate) async fn emit(&self, ev: TransportEvent) {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            let _ = self.events.try_send(ev);
            return;
        }
        tokio::select! {
            _ = self.events.send(ev) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Adds `received` and fills `rport` (RFC 3261 §18.2.1, RFC 3581 §4).
fn fix_top_via(req: &mut Request, source: SocketAddr) {
    let Ok(via) = req.headers.top_via() else {
        return;
    };
    let ip = source.ip().to_canonical();
    let needs_received = !via.host().is_ip(ip);
    let needs_rport = via.has_rport();
    if !needs_received && !needs_rport {
        return;
    }
    let mut via = via.into_owned();
    if needs_received {
        via.set_received(ip);
    }
    if needs_rport {
        via.set_rport(source.port());
    }
    req.headers.set_top_via(&via);
}

/// A taken connection slot (released on drop).
pub(crate) struct ConnSlot {
    shared: Arc<Shared>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Unregisters a flow and releases its connection slot on drop (also when
/// its task is aborted).
pub(crate) struct FlowGuard {
    shared: Arc<Shared>,
    pub(crate) flow: FlowId,
    _slot: ConnSlot,
}

impl Drop for FlowGuard {
    fn drop(&mut self) {
        let mut reg = self.shared.registry();
        reg.flows.remove(&self.flow);
        let key = (self.flow.transport, self.flow.remote);
        if reg.by_remote.get(&key) == Some(&self.flow) {
            reg.by_remote.remove(&key);
        }
        drop(reg);
        let c = self.shared.counters(self.flow.transport);
        c.inc(&c.flows_closed);
    }
}

/// Ends a connection task: unregister, then report.
pub(crate) async fn finish(guard: FlowGuard, reason: CloseReason) {
    let flow = guard.flow;
    let shared = Arc::clone(&guard.shared);
    if reason == CloseReason::IdleTimeout || reason == CloseReason::MessageTimeout {
        let c = shared.counters(flow.transport);
        c.inc(&c.timeouts);
    }
    drop(guard);
    shared
        .emit(TransportEvent::FlowClosed { flow, reason })
        .await;
}

// ---------------------------------------------------------------------------------------------
// the handle

struct Handle {
    shared: Weak<Shared>,
    listeners: Vec<(Transport, SocketAddr)>,
    counters: Arc<[Counters; 5]>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The running transports. Cheap to clone; when the last clone is dropped
/// (or [`SipTransport::shutdown`] is called) all listeners and connections
/// stop, and once their tasks have ended the event channel closes.
#[derive(Clone)]
pub struct SipTransport {
    inner: Arc<Handle>,
}

impl fmt::Debug for SipTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipTransport")
            .field("listeners", &self.inner.listeners)
            .field("flows", &self.flow_count())
            .finish()
    }
}

fn invalid_input(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned())
}

impl SipTransport {
    /// Binds every configured listener and starts serving. Must be called
    /// within a tokio runtime.
    pub async fn start(
        config: TransportConfig,
    ) -> io::Result<(SipTransport, mpsc::Receiver<TransportEvent>)> {
        if (!config.tls.is_empty() || !config.wss.is_empty()) && config.tls_server.is_none() {
            return Err(invalid_input("TLS/WSS listeners need tls_server"));
        }
        let (events, rx) = mpsc::channel(config.event_queue.max(1));
        let counters: Arc<[Counters; 5]> = Arc::default();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut udp = Vec::new();
        let mut listeners = Vec::new();
        for addr in &config.udp {
            let s = udp::bind(*addr).await?;
            listeners.push((Transport::Udp, s.local_addr()?));
            udp.push(Arc::new(s));
        }
        let mut tcp_listeners = Vec::new();
        for (t, addrs) in [
            (Transport::Tcp, &config.tcp),
            (Transport::Tls, &config.tls),
            (Transport::Ws, &config.ws),
            (Transport::Wss, &config.wss),
        ] {
            for addr in addrs {
                let l = TcpListener::bind(addr).await?;
                listeners.push((t, l.local_addr()?));
                tcp_listeners.push((t, l));
            }
        }
        let tls_acceptor = config
            .tls_server
            .clone()
            .map(tokio_rustls::TlsAcceptor::from);
        let shared = Arc::new(Shared {
            config,
            events,
            registry: Mutex::new(Registry::default()),
            udp,
            listeners,
            counters: Arc::clone(&counters),
            next_conn: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            shutdown: shutdown_rx,
            tls_acceptor,
        });
        for sock in &shared.udp {
            tokio::spawn(udp::run(Arc::clone(&shared), Arc::clone(sock)));
        }
        for (t, l) in tcp_listeners {
            tokio::spawn(stream::accept_loop(Arc::clone(&shared), t, l));
        }
        // Keeps the shared state alive until shutdown, even with no
        // listener; afterwards it is freed when the last task ends, which
        // closes the event channel.
        let keeper = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut sd = keeper.shutdown.clone();
            let _ = sd.wait_for(|stop| *stop).await;
            drop(keeper);
        });
        let handle = Handle {
            listeners: shared.listeners.clone(),
            shared: Arc::downgrade(&shared),
            counters,
            shutdown: shutdown_tx,
        };
        Ok((
            SipTransport {
                inner: Arc::new(handle),
            },
            rx,
        ))
    }

    fn shared(&self) -> Result<Arc<Shared>, SendError> {
        match self.inner.shared.upgrade() {
            Some(s) if !*self.inner.shutdown.borrow() => Ok(s),
            _ => Err(SendError::Shutdown),
        }
    }

    /// The bound listener addresses (ports resolved).
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        &self.inner.listeners
    }

    /// The first listener address of a transport.
    pub fn local_addr(&self, t: Transport) -> Option<SocketAddr> {
        self.listeners()
            .iter()
            .find(|(lt, _)| *lt == t)
            .map(|(_, a)| *a)
    }

    /// Sends a message over a flow.
    pub fn send(&self, flow: &FlowId, msg: &Message) -> Result<(), SendError> {
        self.send_bytes(flow, msg.to_bytes())
    }

    /// Sends raw bytes over a flow (one datagram or WebSocket message, or
    /// stream bytes). Never waits: UDP uses a non-blocking send; connections
    /// queue, and a full queue closes the connection.
    pub fn send_bytes(&self, flow: &FlowId, bytes: Vec<u8>) -> Result<(), SendError> {
        let shared = self.shared()?;
        let c = shared.counters(flow.transport);
        if bytes.len() > shared.config.limits.max_message_size {
            c.inc(&c.send_failures);
            return Err(SendError::TooLarge);
        }
        if flow.transport == Transport::Udp {
            let sock = shared
                .udp
                .iter()
                .find(|s| s.local_addr().ok() == Some(flow.local))
                .ok_or(SendError::NoSocket)?;
            return udp::send(&shared, sock, &bytes, flow.remote);
        }
        let (tx, ctl) = {
            let reg = shared.registry();
            let e = reg.flows.get(flow).ok_or(SendError::UnknownFlow)?;
            (e.tx.clone(), Arc::clone(&e.ctl))
        };
        match tx.try_send(Outgoing::Data(bytes)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                c.inc(&c.send_failures);
                ctl.request(CTL_OVERFLOW);
                Err(SendError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::UnknownFlow),
        }
    }

    /// Sends to an address: over UDP from the first socket of the same
    /// address family; over TCP/TLS on an existing connection to that address
    /// (any direction) or a new one; over WS/WSS only on an existing
    /// connection. Returns the flow used.
    pub async fn send_to(&self, target: &Target, msg: &Message) -> Result<FlowId, SendError> {
        let bytes = msg.to_bytes();
        let shared = self.shared()?;
        if target.transport == Transport::Udp {
            let sock = shared
                .udp
                .iter()
                .find(|s| {
                    s.local_addr()
                        .is_ok_and(|a| a.is_ipv4() == target.addr.is_ipv4())
                })
                .ok_or(SendError::NoSocket)?;
            let flow = FlowId {
                transport: Transport::Udp,
                local: sock.local_addr().map_err(|e| SendError::Io(e.kind()))?,
                remote: target.addr,
                conn: 0,
            };
            self.send_bytes(&flow, bytes)?;
            return Ok(flow);
        }
        let existing = shared
            .registry()
            .by_remote
            .get(&(target.transport, target.addr))
            .copied();
        drop(shared);
        let flow = match existing {
            Some(f) => f,
            None if target.transport.is_websocket() => return Err(SendError::Unsupported),
            None => self.connect(target).await?,
        };
        self.send_bytes(&flow, bytes)?;
        Ok(flow)
    }

    /// Opens a TCP or TLS connection (a new flow, reported with
    /// [`TransportEvent::FlowOpened`]).
    pub async fn connect(&self, target: &Target) -> Result<FlowId, SendError> {
        let shared = self.shared()?;
        stream::connect(&shared, target).await
    }

    /// Closes a connection flow (reported with
    /// [`CloseReason::Closed`]); false if unknown (or UDP).
    pub fn close(&self, flow: &FlowId) -> bool {
        let Ok(shared) = self.shared() else {
            return false;
        };
        let reg = shared.registry();
        match reg.flows.get(flow) {
            Some(e) => {
                e.ctl.request(CTL_CLOSE);
                true
            }
            None => false,
        }
    }

    /// Whether a connection flow is open (UDP flows: whether we have the
    /// local socket).
    pub fn is_open(&self, flow: &FlowId) -> bool {
        let Ok(shared) = self.shared() else {
            return false;
        };
        if flow.transport == Transport::Udp {
            return shared
                .udp
                .iter()
                .any(|s| s.local_addr().ok() == Some(flow.local));
        }
        let reg = shared.registry();
        reg.flows.contains_key(flow)
    }

    /// Number of open connection flows.
    pub fn flow_count(&self) -> usize {
        match self.inner.shared.upgrade() {
            Some(s) => s.registry().flows.len(),
            None => 0,
        }
    }

    /// Number of connections, including those still handshaking.
    pub fn connection_count(&self) -> usize {
        self.inner
            .shared
            .upgrade()
            .map_or(0, |s| s.connections.load(Ordering::Acquire))
    }

    /// The counters of one transport (still readable after shutdown).
    pub fn counters(&self, t: Transport) -> CounterSnapshot {
        self.inner.counters[t.index()].snapshot()
    }

    /// Stops all listeners and connections. Open flows are reported closed
    /// with [`CloseReason::Shutdown`] as far as the event channel has room;
    /// then the channel closes.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }
}
