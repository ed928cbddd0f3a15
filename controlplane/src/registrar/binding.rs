//! Bindings (one registered contact of an address-of-record) and the
//! targets a lookup returns.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use crate::sip::{FlowId, NameAddr, Transport, Uri};

/// Identifies a binding. Stable across restarts for bindings restored from
/// the store; never reused within a store's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingId(pub u64);

impl fmt::Display for BindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}", self.0)
    }
}

/// How a binding is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reach {
    /// Only over this flow. For a connection (WS, WSS, TCP, TLS) the binding
    /// lives and dies with it: a browser (`.invalid` Contact, or any
    /// WebSocket client: the page cannot accept connections), a client
    /// behind NAT, or an RFC 5626 outbound registration. For UDP it is the
    /// (our socket, source address) pair the REGISTER came on — `received`
    /// and `rport` of nathelper's `fix_nated_register` — used when the
    /// Contact is `.invalid`, differs from the source, or the client uses
    /// outbound.
    Flow(FlowId),
    /// Ordinary routing: the first Path entry if the registration carried
    /// Path (an edge proxy stands in front), else the Contact URI resolved
    /// as RFC 3263 says.
    Route,
}

impl Reach {
    /// Whether the binding can still be reached after this process restarts
    /// (everything but a connection-bound flow).
    pub fn survives_restart(&self) -> bool {
        match self {
            Reach::Flow(f) => f.transport == Transport::Udp,
            Reach::Route => true,
        }
    }

    /// The connection the binding depends on, if any (closing it removes
    /// the binding).
    pub fn connection(&self) -> Option<FlowId> {
        match self {
            Reach::Flow(f) if f.transport.is_reliable() => Some(*f),
            _ => None,
        }
    }
}

/// Why a binding changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A new binding.
    Added,
    /// Refreshed or moved (new expiry, flow, Call-ID/CSeq or Contact).
    Updated,
    /// Removed by the client (`expires=0` or `Contact: *`).
    Unregistered,
    /// Its expiry passed.
    Expired,
    /// The connection it depended on closed.
    FlowClosed,
    /// Removed by the operator ([`Registrar::remove_aor`](super::Registrar::remove_aor)).
    Removed,
}

/// One change to the location store, for logging and for the core (e.g. to
/// end the dialogs of a browser that went away).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingChange {
    /// Which binding.
    pub id: BindingId,
    /// Its address-of-record.
    pub aor: String,
    /// Its Contact URI.
    pub contact: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// One registered contact of an address-of-record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Identity.
    pub id: BindingId,
    /// The canonical address-of-record (`sip:user@domain`).
    pub aor: String,
    /// The Contact as registered (display name, URI, parameters such as
    /// `+sip.instance` and `reg-id`), without `expires`.
    pub contact: NameAddr<'static>,
    /// `+sip.instance` (unquoted and lower-cased, e.g. `<urn:uuid:…>`), if
    /// given.
    pub instance: Option<String>,
    /// `reg-id`, when RFC 5626 outbound processing applies to the binding.
    pub reg_id: Option<u32>,
    /// `q` in thousandths, if given.
    pub q: Option<u16>,
    /// Call-ID of the last REGISTER that touched it.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// When it expires.
    pub expires_at: Instant,
    /// Path header values (RFC 3327), in order: the Route set toward it.
    pub path: Vec<String>,
    /// How to reach it.
    pub reach: Reach,
    /// The flow the last REGISTER arrived on.
    pub flow: FlowId,
    /// The address the last REGISTER came from.
    pub source: SocketAddr,
    /// The User-Agent of the last REGISTER, if any.
    pub user_agent: Option<String>,
    /// Whether it is in the persistent store.
    pub(crate) persisted: bool,
}

impl Binding {
    /// The Contact URI (the Request-URI of requests sent to it).
    pub fn uri(&self) -> &Uri<'static> {
        self.contact.uri()
    }

    /// How to reach it.
    pub fn target(&self) -> Target {
        Target {
            binding: self.id,
            request_uri: self.contact.uri().clone(),
            route: self.path.clone(),
            reach: self.reach,
            instance: self.instance.clone(),
            reg_id: self.reg_id,
            q: self.q,
        }
    }
}

/// How to send a request to one binding (what [`Registrar::lookup`]
/// returns).
///
/// Put [`Target::request_uri`] in the Request-URI and [`Target::route`] as
/// Route headers; then with [`Reach::Flow`] send over that flow (if it is
/// gone, the binding is unreachable), with [`Reach::Route`] send to the
/// first Route entry, or to the Request-URI if there is none.
///
/// [`Registrar::lookup`]: super::Registrar::lookup
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The binding.
    pub binding: BindingId,
    /// The registered Contact URI, e.g. `sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws`.
    pub request_uri: Uri<'static>,
    /// Route header values (the registration's Path), in order.
    pub route: Vec<String>,
    /// Where to send.
    pub reach: Reach,
    /// `+sip.instance` (unquoted, lower-cased), if any.
    pub instance: Option<String>,
    /// `reg-id`, if outbound applies.
    pub reg_id: Option<u32>,
    /// `q` in thousandths, if given.
    pub q: Option<u16>,
}

impl Target {
    /// The flow to send over, if the binding is flow-bound.
    pub fn flow(&self) -> Option<FlowId> {
        match self.reach {
            Reach::Flow(f) => Some(f),
            Reach::Route => None,
        }
    }
}
