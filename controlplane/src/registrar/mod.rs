//! The registrar (RFC 3261 §10, RFC 3327 Path, RFC 5626 outbound) and its
//! location store.
//!
//! A [`Registrar`] answers REGISTER requests ([`Registrar::handle_register`])
//! and tells the core how to reach a user ([`Registrar::lookup`]). It is
//! sans-IO in the sense the rest of the control plane is: no sockets, no
//! clock (times are `Instant` parameters), no threads; it reads and writes
//! its database file only (see *Persistence*).
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use strait::registrar::{Reach, Registrar, RegistrarSettings};
//! use strait::sip::{FlowId, Message, Transport};
//!
//! let mut settings = RegistrarSettings::from_config(&strait::config::Config::default_config());
//! settings.store_path = None; // in memory only, for this example
//! let now = Instant::now();
//! let (mut registrar, _report) = Registrar::open(settings, now, SystemTime::now())?;
//!
//! // What JsSIP sends over its WebSocket.
//! let register = b"REGISTER sip:localhost SIP/2.0\r\n\
//! Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport=50123;received=192.0.2.7\r\n\
//! Max-Forwards: 70\r\nTo: <sip:alice@localhost>\r\nFrom: <sip:alice@localhost>;tag=1\r\n\
//! Call-ID: 6ve6dvhrs3sg5hbf6ilg3p\r\nCSeq: 2 REGISTER\r\n\
//! Contact: <sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;\
//! +sip.instance=\"<urn:uuid:5d0e8f53-4a4c-4c0e-9f8a-0f0d1a2b3c4d>\";expires=600\r\n\
//! Expires: 600\r\nSupported: path, gruu, outbound\r\nContent-Length: 0\r\n\r\n";
//! let Message::Request(req) = Message::parse(register)? else { unreachable!() };
//! let flow = FlowId {
//!     transport: Transport::Wss,
//!     local: "127.0.0.1:8443".parse().unwrap(),
//!     remote: "192.0.2.7:50123".parse().unwrap(),
//!     conn: 17,
//! };
//! let outcome = registrar.handle_register(now, &req, flow, flow.remote, Some("alice"));
//! assert_eq!(outcome.response.status, 200);
//! assert_eq!(outcome.response.headers.get("Require"), Some("outbound"));
//!
//! // A call for alice goes over that WebSocket, to the registered Contact.
//! let targets = registrar.lookup(now, "sip:alice@localhost");
//! assert_eq!(targets[0].reach, Reach::Flow(flow));
//! assert_eq!(targets[0].request_uri.to_string(), "sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws");
//!
//! // The browser goes away: so does its binding.
//! assert_eq!(registrar.flow_closed(flow).len(), 1);
//! assert!(registrar.lookup(now, "sip:alice@localhost").is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Address-of-record
//!
//! The AOR is the To URI's user at a domain of `sip.domains`. Users in the
//! configuration are global (they have no domain), so the configured domains
//! are aliases of one another: the canonical AOR is
//! `sip:<user>@<first configured domain>` whichever of them the client used,
//! and `alice@localhost` and `alice@127.0.0.1` are the same AOR
//! ([`Registrar::aor_for`]). Another domain is answered 404. When the
//! request was authenticated, the To user must be the authenticated user
//! (else 403).
//!
//! # Bindings and how they are reached
//!
//! An AOR has up to [`RegistrarSettings::max_bindings_per_aor`] bindings,
//! each with its own expiry (`expires` Contact parameter, else the Expires
//! header, else the default; below `min_expires` → 423 with Min-Expires;
//! clamped to `max_expires`). A REGISTER is applied atomically: it is
//! checked as a whole and either every change is made or none (bindings of
//! the AOR found expired are swept in any case).
//!
//! A Contact updates an existing binding when it designates the same
//! device: the same `+sip.instance` and `reg-id` when RFC 5626 outbound
//! applies (so a browser re-registering over a new WebSocket after a
//! reconnect *moves* its binding to the new flow), else the same
//! `+sip.instance`, else an equivalent Contact URI (RFC 3261 §19.1.4). An
//! update with the same Call-ID must carry a higher CSeq (RFC 3261 §10.3
//! step 7), else the request fails with 400.
//!
//! Browsers cannot tell their address: JsSIP puts `sip:xyz@abc.invalid;transport=ws`
//! in Contact and `abc.invalid` in Via. As Kamailio's nathelper
//! (`fix_nated_register`, `add_contact_alias`) and webrtc2sip do, the binding
//! keeps the Contact as given — it is the Request-URI of requests to the
//! browser, and what the browser recognises as its own — and separately how
//! to reach it ([`Reach`]):
//! - [`Reach::Flow`] — the flow the REGISTER arrived on. Always for
//!   WebSocket; for TCP/TLS when the Contact is `.invalid`, outbound is used
//!   or the Contact's IP differs from the source (NAT); for UDP in the same
//!   cases (plus a differing port), the flow being our socket and the
//!   source address (`received`/`rport`). Connection-bound bindings are
//!   removed when the connection closes ([`Registrar::flow_closed`]): a
//!   browser that disconnected is unreachable.
//! - [`Reach::Route`] — route normally: to the first Path entry when the
//!   REGISTER came through an edge proxy (the Path is stored and returned
//!   as the Route set), else to the Contact URI.
//!
//! For in-dialog requests that come back from the legacy side, a proxy
//! core can put the flow in its Record-Route or Path URI instead of keeping
//! state: [`FlowTokens`] signs and checks such flow tokens.
//!
//! RFC 5626 outbound applies to a Contact with `reg-id` and `+sip.instance`
//! when the client lists `outbound` in Supported and we are its first hop
//! (one Via) or the first Path URI has `;ob`; with `reg-id` and `outbound`
//! but neither, the answer is 439. The 200 then carries `Require: outbound`.
//! `Supported` in the 200 echoes which of `outbound` and `path` the client
//! supports; Path is echoed to clients that support it.
//!
//! # Persistence
//!
//! With [`RegistrarSettings::store_path`] set (`state_dir/registrar.redb`
//! when `registrar.persist` is true, the default), bindings are kept in an
//! embedded database ([`redb`](https://www.redb.org), pure Rust, crash-safe)
//! and restored by [`Registrar::open`]. Only bindings that are still
//! reachable after a restart are stored: those reached by routing and UDP
//! flows (an address pair, valid as long as we listen on the same address).
//! Connection-bound bindings (browsers over WebSocket, clients over TCP/TLS
//! behind NAT) are never written — the connection dies with the process and
//! the client registers again when it reconnects — so browser traffic costs
//! no disk I/O. Expiry is stored as wall-clock time: a binding whose expiry
//! passed while we were down is dropped when the store is opened.
//!
//! Each REGISTER that changes stored bindings is one small transaction
//! committed without waiting for the disk (microseconds); the caller makes
//! them durable with [`Registrar::flush`] from a timer (e.g. every second
//! when [`Registrar::needs_flush`]): one fsync (milliseconds) for all of
//! them, off the per-request path. Dropping the registrar flushes. A crash
//! loses at most what changed since the last flush, which is benign: a
//! refresh falls back to its earlier expiry, a new registration is missing
//! until the client's next refresh, a removed binding reappears until it
//! expires. A store write that fails does not fail the REGISTER (the
//! in-memory registrar stays right); the error is returned in
//! [`RegisterOutcome::store_error`], by [`Registrar::flush`] or by
//! [`Registrar::take_store_error`] for logging.
//!
//! A corrupt database file found at start-up (not a redb file, truncated,
//! unreadable table) is moved aside (`registrar.redb.corrupt-<unix time>`)
//! and an empty one is created: the [`OpenReport`] says so and why, and the
//! caller should log it as a warning. Records that cannot be decoded are
//! dropped and counted. A file that cannot be opened for another reason
//! (permissions, another running Strait holds it) is an error: nothing is
//! moved.
//!
//! # Bounds
//!
//! At most [`RegistrarSettings::max_bindings_per_aor`] bindings per AOR
//! (beyond: 403 "Too Many Contacts") and
//! [`RegistrarSettings::max_bindings_total`] in all (beyond: 503 with
//! Retry-After). Expired bindings are removed by [`Registrar::expire`]
//! (call it at [`Registrar::next_expiry`]) and are never returned before.

pub mod binding;
pub mod flow_token;
mod store;

#[cfg(feature = "fuzz")]
pub mod fuzz;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

pub use binding::{Binding, BindingChange, BindingId, ChangeKind, Reach, Target};
pub use flow_token::FlowTokens;
pub use store::{OpenReport, StoreError};

use crate::auth::to_tag_for;
use crate::config::Config;
use crate::sip::{
    Contact, FlowId, Header, HeaderName, Host, Method, NameAddr, Request, Response, SipUri,
    Transport,
};
use store::{RawRecord, Record, Store};

/// File name of the location store in the state directory.
pub const STORE_FILE: &str = "registrar.redb";

/// Registrar settings (from [`Config`] with [`RegistrarSettings::from_config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrarSettings {
    /// Domains we are the registrar for (aliases; the first is canonical).
    pub domains: Vec<String>,
    /// Smallest accepted non-zero expiry (423 below).
    pub min_expires: u32,
    /// Largest granted expiry.
    pub max_expires: u32,
    /// Expiry when the request gives none.
    pub default_expires: u32,
    /// Most bindings per AOR (403 beyond).
    pub max_bindings_per_aor: usize,
    /// Most bindings in all (503 beyond).
    pub max_bindings_total: usize,
    /// The database file; `None`: nothing survives a restart.
    pub store_path: Option<PathBuf>,
}

/// Default [`RegistrarSettings::max_bindings_per_aor`].
pub const DEFAULT_MAX_BINDINGS_PER_AOR: usize = 10;
/// Default [`RegistrarSettings::max_bindings_total`].
pub const DEFAULT_MAX_BINDINGS_TOTAL: usize = 100_000;

impl RegistrarSettings {
    /// Settings from the configuration: `sip.domains`, the `registrar`
    /// section, the store in `state_dir` when `registrar.persist`, and the
    /// default limits.
    pub fn from_config(config: &Config) -> Self {
        RegistrarSettings {
            domains: config.sip.domains.clone(),
            min_expires: config.registrar.min_expires,
            max_expires: config.registrar.max_expires,
            default_expires: config.registrar.default_expires,
            max_bindings_per_aor: DEFAULT_MAX_BINDINGS_PER_AOR,
            max_bindings_total: DEFAULT_MAX_BINDINGS_TOTAL,
            store_path: config
                .registrar
                .persist
                .then(|| config.state_dir.join(STORE_FILE)),
        }
    }
}

/// The result of a REGISTER.
#[derive(Debug)]
pub struct RegisterOutcome {
    /// The response to send (200 with the bindings, or an error).
    pub response: Response,
    /// What changed: with a 200, every change; with an error answer, only
    /// bindings of the AOR that were found expired and removed.
    pub changes: Vec<BindingChange>,
    /// A failure to write the persistent store (the registration itself is
    /// in effect).
    pub store_error: Option<StoreError>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegistrarStats {
    /// Bindings now.
    pub bindings: usize,
    /// AORs with at least one binding.
    pub aors: usize,
    /// Bindings that are connection-bound.
    pub flow_bound: usize,
    /// Failed store writes since start.
    pub store_errors: u64,
}

/// Maps `Instant`s to wall-clock time for the store: fixed at open.
#[derive(Clone, Copy, Debug)]
struct Clock {
    instant: Instant,
    wall_ms: u64,
}

impl Clock {
    fn wall_ms(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.instant) {
            Some(d) => self.wall_ms.saturating_add(millis(d)),
            None => self
                .wall_ms
                .saturating_sub(millis(self.instant.duration_since(t))),
        }
    }

    fn instant(&self, wall_ms: u64) -> Instant {
        if wall_ms >= self.wall_ms {
            self.instant + Duration::from_millis(wall_ms - self.wall_ms)
        } else {
            self.instant
                .checked_sub(Duration::from_millis(self.wall_ms - wall_ms))
                .unwrap_or(self.instant)
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An error answer: status, reason phrase, extra headers.
struct Reject {
    status: u16,
    reason: &'static str,
    headers: Vec<Header>,
}

fn reject(status: u16, reason: &'static str) -> Reject {
    Reject {
        status,
        reason,
        headers: Vec::new(),
    }
}

/// One Contact of a REGISTER, checked.
struct ContactReq {
    addr: NameAddr<'static>,
    expires: u32,
    instance: Option<String>,
    /// Only when outbound applies.
    reg_id: Option<u32>,
}

/// What the new state of a binding will be.
struct NewState {
    addr: NameAddr<'static>,
    instance: Option<String>,
    reg_id: Option<u32>,
    expires: u32,
    reach: Reach,
}

/// The registrar and its location store.
#[derive(Debug)]
pub struct Registrar {
    settings: RegistrarSettings,
    bindings: HashMap<BindingId, Binding>,
    by_aor: HashMap<String, Vec<BindingId>>,
    by_flow: HashMap<FlowId, Vec<BindingId>>,
    expiry: BTreeSet<(Instant, BindingId)>,
    next_id: u64,
    clock: Clock,
    store: Option<Store>,
    store_error: Option<StoreError>,
    store_errors: u64,
}

impl Registrar {
    /// Opens the registrar: with [`RegistrarSettings::store_path`], opens
    /// (or creates) the store and restores the bindings that have not
    /// expired at `wall` (see *Persistence* in the module docs). `now` and
    /// `wall` are the same moment on the monotonic and the wall clock; the
    /// registrar converts between them for the store from this pair.
    pub fn open(
        settings: RegistrarSettings,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(Registrar, OpenReport), StoreError> {
        let wall_ms = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, millis);
        let mut reg = Registrar {
            settings,
            bindings: HashMap::new(),
            by_aor: HashMap::new(),
            by_flow: HashMap::new(),
            expiry: BTreeSet::new(),
            next_id: 1,
            clock: Clock {
                instant: now,
                wall_ms,
            },
            store: None,
            store_error: None,
            store_errors: 0,
        };
        let Some(path) = reg.settings.store_path.clone() else {
            return Ok((reg, OpenReport::default()));
        };
        let (mut store, records, mut report) = Store::open(&path, wall_ms / 1000)?;
        let mut drop_ids = Vec::new();
        let mut decoded: Vec<(u64, Record)> = Vec::with_capacity(records.len());
        for (id, data) in records {
            reg.next_id = reg.next_id.max(id.saturating_add(1));
            match Record::decode(&data) {
                Some(r) if r.expires_unix_ms > wall_ms => decoded.push((id, r)),
                Some(_) => {
                    report.dropped_expired += 1;
                    drop_ids.push(id);
                }
                None => {
                    report.dropped_undecodable += 1;
                    drop_ids.push(id);
                }
            }
        }
        // Most recently expiring first, so limits keep the freshest.
        decoded.sort_by_key(|d| std::cmp::Reverse(d.1.expires_unix_ms));
        for (id, r) in decoded {
            let Some(contact) = r.contact() else {
                report.dropped_undecodable += 1;
                drop_ids.push(id);
                continue;
            };
            let reach = r.reach();
            if !reach.survives_restart() {
                report.dropped_undecodable += 1;
                drop_ids.push(id);
                continue;
            }
            let per_aor = reg.by_aor.get(&r.aor).map_or(0, Vec::len);
            if per_aor >= reg.settings.max_bindings_per_aor
                || reg.bindings.len() >= reg.settings.max_bindings_total
            {
                report.dropped_over_limit += 1;
                drop_ids.push(id);
                continue;
            }
            let b = Binding {
                id: BindingId(id),
                instance: contact.sip_instance().map(|s| s.to_ascii_lowercase()),
                q: contact.q_millis(),
                contact,
                aor: r.aor,
                reg_id: r.reg_id,
                call_id: r.call_id,
                cseq: r.cseq,
                expires_at: reg.clock.instant(r.expires_unix_ms),
                path: r.path,
                reach,
                flow: r.flow,
                source: r.source,
                user_agent: r.user_agent,
                persisted: true,
            };
            reg.insert(b);
            report.restored += 1;
        }
        if let Err(e) = store.apply(&[], &drop_ids).and_then(|()| store.flush()) {
            reg.note_store_error(e);
        }
        reg.store = Some(store);
        Ok((reg, report))
    }

    /// The settings.
    pub fn settings(&self) -> &RegistrarSettings {
        &self.settings
    }

    /// Counters.
    pub fn stats(&self) -> RegistrarStats {
        RegistrarStats {
            bindings: self.bindings.len(),
            aors: self.by_aor.len(),
            flow_bound: self.by_flow.values().map(Vec::len).sum(),
            store_errors: self.store_errors,
        }
    }

    /// Whether store writes await a [`Registrar::flush`].
    pub fn needs_flush(&self) -> bool {
        self.store.as_ref().is_some_and(Store::is_dirty)
    }

    /// Makes the store's writes so far durable (one fsync, about a
    /// millisecond or a few). Call it from a timer, e.g. every second when
    /// [`Registrar::needs_flush`]; dropping the registrar flushes too.
    /// Returns whether there was anything to flush.
    pub fn flush(&mut self) -> Result<bool, StoreError> {
        let Some(store) = self.store.as_mut() else {
            return Ok(false);
        };
        if !store.is_dirty() {
            return Ok(false);
        }
        match store.flush() {
            Ok(()) => Ok(true),
            Err(e) => {
                self.note_store_error(e.clone());
                Err(e)
            }
        }
    }

    /// The most recent store failure since the last call, if any.
    pub fn take_store_error(&mut self) -> Option<StoreError> {
        self.store_error.take()
    }

    fn note_store_error(&mut self, e: StoreError) {
        self.store_errors += 1;
        self.store_error = Some(e);
    }

    /// The canonical AOR for a SIP URI (`sip:user@<first domain>`), if its
    /// host is one of our domains and it has a user part.
    pub fn aor_for(&self, uri: &SipUri<'_>) -> Option<String> {
        let user = uri.user_decoded()?;
        if user.is_empty() || !self.is_our_domain(uri.host()) {
            return None;
        }
        let primary = self.settings.domains.first()?;
        let mut s = String::from("sip:");
        for &b in user.iter() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
                s.push(char::from(b));
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
        s.push('@');
        s.push_str(&primary.to_ascii_lowercase());
        Some(s)
    }

    /// Whether `host` is one of our domains.
    pub fn is_our_domain(&self, host: &Host<'_>) -> bool {
        self.settings.domains.iter().any(|d| {
            Host::parse(d)
                .ok()
                .or_else(|| {
                    // Bare IPv6 written without brackets.
                    d.parse::<std::net::Ipv6Addr>()
                        .ok()
                        .map(|a| Host::from(std::net::IpAddr::V6(a)))
                })
                .is_some_and(|h| h == *host)
        })
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// A binding by id.
    pub fn binding(&self, id: BindingId) -> Option<&Binding> {
        self.bindings.get(&id)
    }

    /// The bindings of a canonical AOR (expired ones included until
    /// [`Registrar::expire`] runs).
    pub fn bindings(&self, aor: &str) -> impl Iterator<Item = &Binding> + '_ {
        self.by_aor
            .get(aor)
            .into_iter()
            .flatten()
            .filter_map(|id| self.bindings.get(id))
    }

    /// Every AOR with bindings.
    pub fn aors(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_aor.keys().map(String::as_str)
    }

    /// How to reach the live bindings of an AOR (canonical form, or any
    /// SIP URI of one of our domains), best first: highest `q` (absent
    /// counts as 1.0), then the most recently added.
    pub fn lookup(&self, now: Instant, aor: &str) -> Vec<Target> {
        let key = match SipUri::parse(aor) {
            Ok(u) => match self.aor_for(&u) {
                Some(k) => k,
                None => return Vec::new(),
            },
            Err(_) => aor.to_string(),
        };
        let mut live: Vec<&Binding> = self.bindings(&key).filter(|b| b.expires_at > now).collect();
        live.sort_by(|a, b| {
            let qa = a.q.unwrap_or(1000);
            let qb = b.q.unwrap_or(1000);
            qb.cmp(&qa).then(b.id.cmp(&a.id))
        });
        live.into_iter().map(Binding::target).collect()
    }

    /// When the next binding expires (for the caller's timer).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.first().map(|(t, _)| *t)
    }

    /// Removes the bindings whose expiry is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<BindingChange> {
        let mut changes = Vec::new();
        let mut deletes = Vec::new();
        while let Some(&(t, id)) = self.expiry.first() {
            if t > now {
                break;
            }
            if let Some(b) = self.remove(id) {
                if b.persisted {
                    deletes.push(id.0);
                }
                changes.push(change(&b, ChangeKind::Expired));
            }
        }
        self.write(&[], &deletes);
        changes
    }

    /// A flow closed: removes the bindings that could only be reached
    /// through it.
    pub fn flow_closed(&mut self, flow: FlowId) -> Vec<BindingChange> {
        let ids = self.by_flow.get(&flow).cloned().unwrap_or_default();
        let mut changes = Vec::new();
        let mut deletes = Vec::new();
        for id in ids {
            if let Some(b) = self.remove(id) {
                if b.persisted {
                    deletes.push(id.0);
                }
                changes.push(change(&b, ChangeKind::FlowClosed));
            }
        }
        self.write(&[], &deletes);
        changes
    }

    /// Removes every binding of an AOR (operator action).
    pub fn remove_aor(&mut self, aor: &str) -> Vec<BindingChange> {
        let ids = self.by_aor.get(aor).cloned().unwrap_or_default();
        let mut changes = Vec::new();
        let mut deletes = Vec::new();
        for id in ids {
            if let Some(b) = self.remove(id) {
                if b.persisted {
                    deletes.push(id.0);
                }
                changes.push(change(&b, ChangeKind::Removed));
            }
        }
        self.write(&[], &deletes);
        changes
    }

    fn write(&mut self, puts: &[RawRecord], deletes: &[u64]) -> Option<StoreError> {
        let store = self.store.as_mut()?;
        match store.apply(puts, deletes) {
            Ok(()) => None,
            Err(e) => {
                self.note_store_error(e.clone());
                Some(e)
            }
        }
    }

    // ---- index maintenance ------------------------------------------------------------------

    fn insert(&mut self, b: Binding) {
        let id = b.id;
        self.by_aor.entry(b.aor.clone()).or_default().push(id);
        if let Some(f) = b.reach.connection() {
            self.by_flow.entry(f).or_default().push(id);
        }
        self.expiry.insert((b.expires_at, id));
        self.bindings.insert(id, b);
    }

    fn remove(&mut self, id: BindingId) -> Option<Binding> {
        let b = self.bindings.remove(&id)?;
        if let Some(list) = self.by_aor.get_mut(&b.aor) {
            list.retain(|x| *x != id);
            if list.is_empty() {
                self.by_aor.remove(&b.aor);
            }
        }
        if let Some(f) = b.reach.connection() {
            if let Some(list) = self.by_flow.get_mut(&f) {
                list.retain(|x| *x != id);
                if list.is_empty() {
                    self.by_flow.remove(&f);
                }
            }
        }
        self.expiry.remove(&(b.expires_at, id));
        Some(b)
    }

    // ---- REGISTER ---------------------------------------------------------------------------

    /// Handles a REGISTER that arrived on `flow` from `source` (after
    /// authentication: `authenticated_user` is who the credentials belong
    /// to, or `None` if the caller did not require authentication). Returns
    /// the response to send and the binding changes. See the module docs for
    /// the rules.
    pub fn handle_register(
        &mut self,
        now: Instant,
        req: &Request,
        flow: FlowId,
        source: SocketAddr,
        authenticated_user: Option<&str>,
    ) -> RegisterOutcome {
        let mut changes = Vec::new();
        let mut deletes = Vec::new();
        let result = self.register(
            now,
            req,
            flow,
            source,
            authenticated_user,
            &mut changes,
            &mut deletes,
        );
        let (response, puts) = match result {
            Ok(x) => x,
            Err(r) => {
                let mut resp = Response::from_request(req, r.status);
                if !r.reason.is_empty() {
                    resp = resp.with_reason(r.reason);
                }
                let _ = resp.set_to_tag(&to_tag_for(req));
                for h in r.headers {
                    resp.headers.push(h.name().clone(), h.value());
                }
                (resp, Vec::new())
            }
        };
        let store_error = self.write(&puts, &deletes);
        RegisterOutcome {
            response,
            changes,
            store_error,
        }
    }

    /// Checks and applies a REGISTER: the 200 and the records to store, or
    /// the error answer. Bindings of the AOR found expired on the way are
    /// removed either way (in `changes` and `deletes`).
    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        now: Instant,
        req: &Request,
        flow: FlowId,
        source: SocketAddr,
        authenticated_user: Option<&str>,
        changes: &mut Vec<BindingChange>,
        deletes: &mut Vec<u64>,
    ) -> Result<(Response, Vec<RawRecord>), Reject> {
        if req.method != Method::Register {
            return Err(Reject {
                status: 405,
                reason: "",
                headers: vec![Header::new(HeaderName::Allow, "REGISTER")],
            });
        }
        let bad = |reason| reject(400, reason);

        // The address-of-record.
        let to = req.to_addr().map_err(|_| bad("Bad To"))?;
        let to_uri = to
            .uri()
            .as_sip()
            .ok_or(bad("Address-of-record is not a SIP URI"))?;
        if to_uri.user().is_none() {
            return Err(bad("Address-of-record without user"));
        }
        if !self.is_our_domain(to_uri.host()) {
            return Err(reject(404, "Not Found (domain not served here)"));
        }
        let aor = self
            .aor_for(to_uri)
            .ok_or(bad("Address-of-record without user"))?;
        if let Some(user) = authenticated_user {
            let to_user = to_uri.user_decoded().unwrap_or_default();
            if *to_user != *user.as_bytes() {
                return Err(reject(403, "Forbidden (To is not the authenticated user)"));
            }
        }
        // Dead bindings of this AOR go first, whatever the answer.
        for b in self.expire_aor(now, &aor) {
            if b.persisted {
                deletes.push(b.id.0);
            }
            changes.push(change(&b, ChangeKind::Expired));
        }
        let call_id = req.call_id().map_err(|_| bad("Bad Call-ID"))?.to_string();
        let cseq = req.cseq().map_err(|_| bad("Bad CSeq"))?.seq;
        let header_expires = req.headers.expires().map_err(|_| bad("Bad Expires"))?;
        let paths: Vec<String> = req
            .headers
            .paths()
            .map_err(|_| bad("Bad Path"))?
            .iter()
            .map(ToString::to_string)
            .collect();
        let first_path_ob = req
            .headers
            .paths()
            .ok()
            .and_then(|p| {
                p.first()
                    .map(|n| n.uri().as_sip().is_some_and(SipUri::has_ob))
            })
            .unwrap_or(false);
        let client_outbound = req.headers.has_option("outbound");
        let client_path = req.headers.has_option("path");
        let first_hop = req.headers.values(HeaderName::Via).count() <= 1;
        let outbound_possible = first_hop || first_path_ob;
        let user_agent = req.headers.get(HeaderName::UserAgent).map(str::to_string);

        // The Contacts.
        let contacts = req.headers.contacts().map_err(|_| bad("Bad Contact"))?;
        // Adds and removals together: more than twice the per-AOR limit
        // cannot be meant (and would cost quadratic work).
        if contacts.len() > 2 * self.settings.max_bindings_per_aor.max(1) {
            return Err(reject(403, "Forbidden (Too Many Contacts)"));
        }
        let star = contacts.iter().any(|c| matches!(c, Contact::Star));
        if star && (contacts.len() != 1 || header_expires != Some(0)) {
            return Err(bad("Contact: * needs Expires: 0 and no other Contact"));
        }
        let mut wanted = Vec::with_capacity(contacts.len());
        for c in &contacts {
            let Contact::Addr(addr) = c else { continue };
            if addr.uri().as_sip().is_none() {
                return Err(bad("Contact is not a SIP URI"));
            }
            let expires = if addr.params().contains("expires") {
                addr.expires().ok_or(bad("Bad Contact expires"))?
            } else {
                header_expires.unwrap_or(self.settings.default_expires)
            };
            if expires != 0 && expires < self.settings.min_expires {
                return Err(Reject {
                    status: 423,
                    reason: "",
                    headers: vec![Header::new(
                        HeaderName::MinExpires,
                        self.settings.min_expires.to_string(),
                    )],
                });
            }
            let expires = expires.min(self.settings.max_expires);
            let instance = addr.sip_instance().map(|s| s.to_ascii_lowercase());
            let mut reg_id = None;
            if let (Some(r), Some(_)) = (addr.reg_id(), &instance) {
                if client_outbound {
                    if !outbound_possible {
                        return Err(reject(439, ""));
                    }
                    reg_id = Some(r);
                }
            }
            let mut stored = addr.clone().into_owned();
            stored.params_mut().remove("expires");
            wanted.push(ContactReq {
                addr: stored,
                expires,
                instance,
                reg_id,
            });
        }
        if wanted
            .iter()
            .filter(|c| c.reg_id.is_some() && c.expires != 0)
            .count()
            > 1
        {
            return Err(bad("More than one Contact with reg-id"));
        }
        let outbound_used = wanted.iter().any(|c| c.reg_id.is_some());

        // Plan the changes against the current bindings of the AOR.
        let existing: Vec<BindingId> = self.by_aor.get(&aor).cloned().unwrap_or_default();
        let mut removes: Vec<BindingId> = Vec::new();
        let mut updates: Vec<(BindingId, NewState)> = Vec::new();
        let mut adds: Vec<NewState> = Vec::new();
        if star {
            for id in &existing {
                let b = &self.bindings[id];
                if !(b.call_id == call_id && b.cseq >= cseq) {
                    removes.push(*id);
                }
            }
        }
        for c in wanted {
            let reach = reach_for(&c, flow, source, &paths);
            let state = NewState {
                addr: c.addr,
                instance: c.instance,
                reg_id: c.reg_id,
                expires: c.expires,
                reach,
            };
            match self.find(&existing, &state) {
                Some(id) => {
                    let b = &self.bindings[&id];
                    if b.call_id == call_id && cseq <= b.cseq {
                        return Err(bad("Invalid CSeq (not above the binding's)"));
                    }
                    updates.retain(|(u, _)| *u != id);
                    removes.retain(|r| *r != id);
                    if state.expires == 0 {
                        removes.push(id);
                    } else {
                        updates.push((id, state));
                    }
                }
                None => {
                    adds.retain(|a| !same_device(a, &state));
                    if state.expires != 0 {
                        adds.push(state);
                    }
                }
            }
        }

        // Limits.
        let after_aor = existing.len() - removes.len() + adds.len();
        if !adds.is_empty() && after_aor > self.settings.max_bindings_per_aor {
            return Err(reject(403, "Forbidden (Too Many Contacts)"));
        }
        let after_total = self.bindings.len() - removes.len() + adds.len();
        if !adds.is_empty() && after_total > self.settings.max_bindings_total {
            return Err(Reject {
                status: 503,
                reason: "Service Unavailable (Location Table Full)",
                headers: vec![Header::new(HeaderName::RetryAfter, "60")],
            });
        }

        // Apply.
        let mut puts = Vec::new();
        for id in removes {
            if let Some(b) = self.remove(id) {
                if b.persisted {
                    deletes.push(id.0);
                }
                changes.push(change(&b, ChangeKind::Unregistered));
            }
        }
        let common = Common {
            aor: &aor,
            call_id: &call_id,
            cseq,
            paths: &paths,
            flow,
            source,
            user_agent: &user_agent,
            now,
        };
        for (id, state) in updates {
            let Some(old) = self.remove(id) else { continue };
            let b = common.binding(id, state, old.persisted);
            changes.push(change(&b, ChangeKind::Updated));
            self.persist(&b, &mut puts, deletes);
            let persisted = self.store.is_some() && b.reach.survives_restart();
            self.insert(Binding { persisted, ..b });
        }
        for state in adds {
            let id = BindingId(self.next_id);
            self.next_id += 1;
            let b = common.binding(id, state, false);
            changes.push(change(&b, ChangeKind::Added));
            self.persist(&b, &mut puts, deletes);
            let persisted = self.store.is_some() && b.reach.survives_restart();
            self.insert(Binding { persisted, ..b });
        }

        // The answer: every current binding.
        let mut resp = Response::from_request(req, 200);
        let _ = resp.set_to_tag(&to_tag_for(req));
        let mut ids: Vec<BindingId> = self.by_aor.get(&aor).cloned().unwrap_or_default();
        ids.sort();
        for id in ids {
            let b = &self.bindings[&id];
            let left = b.expires_at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let mut c = b.contact.clone();
            let _ = c.params_mut().set("expires", Some(&secs.to_string()));
            resp.headers.push(HeaderName::Contact, c.to_string());
        }
        if outbound_used {
            resp.headers.push(HeaderName::Require, "outbound");
        }
        let supported: Vec<&str> = [("outbound", client_outbound), ("path", client_path)]
            .into_iter()
            .filter_map(|(t, yes)| yes.then_some(t))
            .collect();
        if !supported.is_empty() {
            resp.headers
                .push(HeaderName::Supported, supported.join(", "));
        }
        if client_path {
            for p in req.headers.get_all(HeaderName::Path) {
                resp.headers.push(HeaderName::Path, p);
            }
        }
        Ok((resp, puts))
    }

    /// Removes the expired bindings of one AOR.
    fn expire_aor(&mut self, now: Instant, aor: &str) -> Vec<Binding> {
        let ids: Vec<BindingId> = self
            .bindings(aor)
            .filter(|b| b.expires_at <= now)
            .map(|b| b.id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// The existing binding a new Contact designates.
    fn find(&self, existing: &[BindingId], s: &NewState) -> Option<BindingId> {
        existing.iter().copied().find(|id| {
            let b = &self.bindings[id];
            match (&s.instance, s.reg_id) {
                (Some(i), Some(r)) => b.instance.as_ref() == Some(i) && b.reg_id == Some(r),
                (Some(i), None) => b.instance.as_ref() == Some(i) && b.reg_id.is_none(),
                (None, _) => b.instance.is_none() && b.contact.uri().equivalent(s.addr.uri()),
            }
        })
    }

    fn persist(&self, b: &Binding, puts: &mut Vec<RawRecord>, deletes: &mut Vec<u64>) {
        if self.store.is_none() {
            return;
        }
        if b.reach.survives_restart() {
            let rec = Record::of(b, self.clock.wall_ms(b.expires_at));
            puts.push((b.id.0, rec.encode()));
        } else if b.persisted {
            deletes.push(b.id.0);
        }
    }
}

/// What the bindings of one REGISTER share.
struct Common<'a> {
    aor: &'a str,
    call_id: &'a str,
    cseq: u32,
    paths: &'a [String],
    flow: FlowId,
    source: SocketAddr,
    user_agent: &'a Option<String>,
    now: Instant,
}

impl Common<'_> {
    fn binding(&self, id: BindingId, s: NewState, persisted: bool) -> Binding {
        Binding {
            id,
            aor: self.aor.to_string(),
            q: s.addr.q_millis(),
            contact: s.addr,
            instance: s.instance,
            reg_id: s.reg_id,
            call_id: self.call_id.to_string(),
            cseq: self.cseq,
            expires_at: self.now + Duration::from_secs(u64::from(s.expires)),
            path: self.paths.to_vec(),
            reach: s.reach,
            flow: self.flow,
            source: self.source,
            user_agent: self.user_agent.clone(),
            persisted,
        }
    }
}

fn change(b: &Binding, kind: ChangeKind) -> BindingChange {
    BindingChange {
        id: b.id,
        aor: b.aor.clone(),
        contact: b.contact.uri().to_string(),
        kind,
    }
}

fn same_device(a: &NewState, b: &NewState) -> bool {
    match (&a.instance, &b.instance) {
        (Some(x), Some(y)) => x == y && a.reg_id == b.reg_id,
        (None, None) => a.addr.uri().equivalent(b.addr.uri()),
        _ => false,
    }
}

/// How a binding registered by `c` over `flow` from `source` is reached
/// (see [`Reach`]).
fn reach_for(c: &ContactReq, flow: FlowId, source: SocketAddr, paths: &[String]) -> Reach {
    if !paths.is_empty() {
        return Reach::Route;
    }
    if flow.transport.is_websocket() {
        return Reach::Flow(flow);
    }
    let Some(uri) = c.addr.uri().as_sip() else {
        return Reach::Route;
    };
    let host = uri.host();
    let behind_nat = match host.ip() {
        None => false,
        Some(ip) => {
            let port = uri.port().unwrap_or_else(|| {
                let tls = uri.is_secure()
                    || uri
                        .transport()
                        .is_some_and(|t| t.eq_ignore_ascii_case("tls"));
                if tls {
                    Transport::Tls.default_port()
                } else {
                    Transport::Udp.default_port()
                }
            });
            // On a connection the source port is ephemeral: compare addresses only.
            ip != source.ip() || (flow.transport == Transport::Udp && port != source.port())
        }
    };
    if c.reg_id.is_some() || host.is_invalid_domain() || behind_nat {
        Reach::Flow(flow)
    } else {
        Reach::Route
    }
}
