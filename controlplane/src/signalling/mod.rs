//! The signalling service: SIP transports from the configuration, driving
//! the sans-IO [`core::Core`] on tokio.
//!
//! [`Signalling::start`] binds the configured listeners (`sip.ws`, `sip.wss`,
//! `sip.udp`, `sip.tcp`, `sip.tls`), with the certificate from `tls.cert` /
//! `tls.key` or, when those are unset and a TLS or WSS listener is
//! configured, a self-signed one generated on first start and kept in
//! `state_dir` (`tls-cert.pem`, `tls-key.pem`) so that it survives restarts.
//! It opens the registrar (its store in `state_dir` when
//! `registrar.persist`) and spawns one task that moves events from the
//! transports into the core and the core's messages onto the wire, runs the
//! core's timers, and flushes the registrar's store once a second when it
//! has changes.
//!
//! What the core does today: REGISTER (digest authentication, then the
//! registrar), OPTIONS (200), INVITE and MESSAGE get 480 with a Reason
//! saying calls are not routed yet, BYE 481, other methods 405/501; a closed
//! flow drops its bindings. No data plane is needed.
//!
//! The core sits behind a mutex shared with the [`Signalling`] handle for
//! lookups and statistics; it is never held across an await.

pub mod b2bua;
pub mod core;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::b2bua::{CallCounters, LocalAddrs};
use self::core::{Core, CoreCounters};
use crate::config::Config;
use crate::media::{MediaCounters, MediaEngine};
use crate::registrar::{OpenReport, Registrar, RegistrarSettings, RegistrarStats, Target};
use crate::sip::transport::{tls, SipTransport, TransportConfig, TransportEvent};
use crate::sip::txn::Destination;
use crate::sip::Transport;
use strait_rules::ring::{Consumer, Producer};

/// File name of the generated certificate in `state_dir`.
pub const CERT_FILE: &str = "tls-cert.pem";
/// File name of the generated private key in `state_dir`.
pub const KEY_FILE: &str = "tls-key.pem";

/// Why the service could not start: the configuration key concerned and
/// what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The configuration key (e.g. `sip.udp`).
    pub key: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration key {}: {}", self.key, self.reason)
    }
}

impl std::error::Error for StartError {}

fn start_error(key: &str, reason: impl Into<String>) -> StartError {
    StartError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Randomness from the operating system (OpenSSL's generator).
struct OsRandom;

impl crate::auth::RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        openssl::rand::rand_bytes(buf).expect("the system random generator works");
    }
}

/// The running service. Dropping it does not stop it: call
/// [`Signalling::shutdown`].
#[derive(Debug)]
pub struct Signalling {
    transport: SipTransport,
    core: Arc<Mutex<Core>>,
    stop: watch::Sender<bool>,
    progress: watch::Receiver<u64>,
    task: Option<JoinHandle<()>>,
    open_report: OpenReport,
    generated_cert: Option<PathBuf>,
    ng: Option<crate::ng::NgRuntime<NgFront>>,
}

/// The ng listeners' handle on the core: each command runs under the
/// core's lock, on the same media engine as the B2BUA; the rules it makes
/// reach the workers' rings on the service loop's next round (2 ms).
#[derive(Debug, Clone)]
pub struct NgFront(Arc<Mutex<Core>>);

impl crate::ng::NgHandler for NgFront {
    fn offer(
        &mut self,
        ctx: &crate::ng::Context,
        req: &crate::ng::OfferAnswer<'_>,
    ) -> Result<crate::ng::SdpReply, crate::ng::NgError> {
        lock(&self.0).offer(ctx, req)
    }
    fn answer(
        &mut self,
        ctx: &crate::ng::Context,
        req: &crate::ng::OfferAnswer<'_>,
    ) -> Result<crate::ng::SdpReply, crate::ng::NgError> {
        lock(&self.0).answer(ctx, req)
    }
    fn delete(
        &mut self,
        ctx: &crate::ng::Context,
        req: &crate::ng::Delete<'_>,
    ) -> Result<crate::ng::DeleteReply, crate::ng::NgError> {
        lock(&self.0).delete(ctx, req)
    }
    fn query(
        &mut self,
        ctx: &crate::ng::Context,
        req: &crate::ng::Query<'_>,
    ) -> Result<crate::ng::CallInfo, crate::ng::NgError> {
        lock(&self.0).query(ctx, req)
    }
    fn list(
        &mut self,
        ctx: &crate::ng::Context,
        req: &crate::ng::List,
    ) -> Result<Vec<String>, crate::ng::NgError> {
        lock(&self.0).list(ctx, req)
    }
    fn statistics(
        &mut self,
        ctx: &crate::ng::Context,
    ) -> Result<crate::ng::Statistics, crate::ng::NgError> {
        lock(&self.0).statistics(ctx)
    }
}

/// The data plane as the service drives it: its layout, the control ends
/// of its rings, and the legs a previous control plane left there.
#[derive(Debug)]
pub struct MediaPlane {
    /// Workers, ports and counter slots.
    pub layout: strait_rules::region::RegionLayout,
    /// One (rules, events) ring pair per worker.
    pub ends: Vec<(Producer, Consumer)>,
    /// Legs found in the data plane at attach time (kept until they time out).
    pub adopted: Vec<strait_rules::abi::LegRule>,
}

impl Signalling {
    /// Starts the service for `config` without a data plane: calls get 503.
    pub async fn start(config: &Config) -> Result<Signalling, StartError> {
        Self::start_with(config, None).await
    }

    /// Starts the service for `config` (within a tokio runtime with time and
    /// I/O enabled), anchoring calls' media in `media`.
    pub async fn start_with(
        config: &Config,
        media: Option<MediaPlane>,
    ) -> Result<Signalling, StartError> {
        let mut tc = TransportConfig {
            idle_timeout: Duration::from_secs(u64::from(config.sip.ws_idle_timeout_s.max(1))),
            ws_allowed_origins: config.sip.ws_origins.clone(),
            web_phone: config.sip.web_phone,
            ..TransportConfig::default()
        };
        let listeners = [
            ("sip.udp", Transport::Udp, config.sip.udp),
            ("sip.tcp", Transport::Tcp, config.sip.tcp),
            ("sip.tls", Transport::Tls, config.sip.tls),
            ("sip.ws", Transport::Ws, config.sip.ws),
            ("sip.wss", Transport::Wss, config.sip.wss),
        ];
        for (key, t, addr) in listeners {
            let Some(addr) = addr else { continue };
            probe_bind(t, addr)
                .map_err(|e| start_error(key, format!("cannot bind {addr}: {e}")))?;
            match t {
                Transport::Udp => tc.udp.push(addr),
                Transport::Tcp => tc.tcp.push(addr),
                Transport::Tls => tc.tls.push(addr),
                Transport::Ws => tc.ws.push(addr),
                Transport::Wss => tc.wss.push(addr),
            }
        }
        let needs_tls = !tc.tls.is_empty() || !tc.wss.is_empty();
        let needs_state = needs_tls || config.registrar.persist;
        if needs_state {
            std::fs::create_dir_all(&config.state_dir).map_err(|e| {
                start_error(
                    "state_dir",
                    format!("cannot create {}: {e}", config.state_dir.display()),
                )
            })?;
        }
        let mut generated_cert = None;
        if needs_tls {
            let (ck, generated) = certificate(config)?;
            generated_cert = generated;
            tc.tls_server =
                Some(tls::server_config(ck).map_err(|e| start_error("tls.cert", e.to_string()))?);
        }
        let now = Instant::now();
        let (registrar, open_report) = Registrar::open(
            RegistrarSettings::from_config(config),
            now,
            SystemTime::now(),
        )
        .map_err(|e| start_error("state_dir", format!("registrar store: {e}")))?;
        let (transport, events) = SipTransport::start(tc)
            .await
            .map_err(|e| start_error("sip", format!("cannot start the SIP transports: {e}")))?;
        let (engine, ends) = match media {
            Some(mp) => {
                let cert = crate::dtls::Certificate::generate()
                    .map_err(|e| start_error("media", format!("DTLS certificate: {e}")))?;
                let ctx = crate::dtls::DtlsContext::new(&cert, crate::dtls::DtlsConfig::default())
                    .map_err(|e| start_error("media", format!("DTLS context: {e:?}")))?;
                let mut engine = MediaEngine::new(mp.layout, ctx);
                engine.adopt(&mp.adopted);
                // Per-leg counters for ng's query (read-only view; a
                // missing region only leaves them at zero).
                if let Ok(region) = strait_rules::region::Region::observe(&config.media.shm) {
                    engine.observe_counters(region);
                }
                (Some(engine), mp.ends)
            }
            None => (None, Vec::new()),
        };
        let mut core = Core::with_media(config, registrar, Box::new(OsRandom), engine);
        core.b2bua_mut().set_addrs(LocalAddrs {
            listeners: transport.listeners().to_vec(),
            resolved: resolve_next_hops(config),
        });
        let has_media = core.b2bua().media().is_some();
        let core = Arc::new(Mutex::new(core));
        // ng drives the media plane: without one there is nothing to serve.
        let ng = match config.ng.listen {
            Some(listen) if has_media => Some(
                crate::ng::NgRuntime::start(
                    listen,
                    crate::ng::NgConfig::from_config(&config.ng),
                    NgFront(Arc::clone(&core)),
                )
                .await
                .map_err(|e| start_error("ng.listen", format!("cannot listen on {listen}: {e}")))?,
            ),
            _ => None,
        };
        let (stop, stop_rx) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(0);
        let task = tokio::spawn(run(
            transport.clone(),
            events,
            Arc::clone(&core),
            ends,
            stop_rx,
            progress_tx,
        ));
        Ok(Signalling {
            transport,
            core,
            stop,
            progress,
            task: Some(task),
            open_report,
            generated_cert,
            ng,
        })
    }

    /// Where the ng listeners are bound (UDP and TCP), when they run.
    pub fn ng_addr(&self) -> Option<SocketAddr> {
        self.ng.as_ref().map(crate::ng::NgRuntime::local_addr)
    }

    /// The bound listeners (ports resolved), in configuration order.
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        self.transport.listeners()
    }

    /// The first listener of a transport.
    pub fn local_addr(&self, t: Transport) -> Option<SocketAddr> {
        self.transport.local_addr(t)
    }

    /// What the registrar store reported when it was opened (restored
    /// bindings, a corrupt file moved aside ...).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// The certificate generated at this start, if one was.
    pub fn generated_certificate(&self) -> Option<&Path> {
        self.generated_cert.as_deref()
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic in the loop task poisons the lock; the data is still
        // usable for reading.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where a call to `aor` would go now ([`Registrar::lookup`]).
    pub fn lookup(&self, aor: &str) -> Vec<Target> {
        self.core().registrar().lookup(Instant::now(), aor)
    }

    /// A receiver of the number of transport events and timeouts the core
    /// has handled so far: it changes after each, so a caller can wait for
    /// an effect (a binding gone after a close) without polling on a timer.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.clone()
    }

    /// The core's counters.
    pub fn counters(&self) -> CoreCounters {
        self.core().counters()
    }

    /// Calls in progress, the B2BUA's counters, and the media engine's
    /// (legs held, counters) if a data plane is attached.
    pub fn calls(&self) -> (usize, CallCounters, Option<(usize, MediaCounters)>) {
        let c = self.core();
        let b = c.b2bua();
        (
            b.call_count(),
            b.counters(),
            b.media().map(|m| (m.leg_count(), m.counters())),
        )
    }

    /// The registrar's statistics.
    pub fn registrar_stats(&self) -> RegistrarStats {
        self.core().registrar().stats()
    }

    /// Stops the loop and the transports, and flushes the registrar.
    pub async fn shutdown(mut self) {
        if let Some(ng) = self.ng.take() {
            ng.shutdown();
        }
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.transport.shutdown();
        let _ = self.core().registrar_mut().flush();
    }
}

/// Checks that `addr` can be bound, to name the configuration key in the
/// error (the transports report only the first failure, without saying
/// which listener). Port 0 needs no check.
fn probe_bind(t: Transport, addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    if t == Transport::Udp {
        std::net::UdpSocket::bind(addr).map(drop)
    } else {
        std::net::TcpListener::bind(addr).map(drop)
    }
}

/// The configured certificate, or the one generated in `state_dir`
/// (generated now if missing; the path is returned then).
fn certificate(config: &Config) -> Result<(tls::CertifiedKey, Option<PathBuf>), StartError> {
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        let ck = tls::load_pem(cert, key).map_err(|e| {
            start_error(
                "tls.cert",
                format!("cannot load {} / {}: {e}", cert.display(), key.display()),
            )
        })?;
        return Ok((ck, None));
    }
    let cert = config.state_dir.join(CERT_FILE);
    let key = config.state_dir.join(KEY_FILE);
    let mut generated = None;
    if !cert.exists() || !key.exists() {
        let mut names: Vec<String> = vec!["localhost".to_string()];
        names.extend(config.sip.domains.iter().cloned());
        names.dedup();
        let ck = rcgen::generate_simple_self_signed(names)
            .map_err(|e| start_error("tls.cert", format!("cannot generate a certificate: {e}")))?;
        write_private(&key, ck.signing_key.serialize_pem().as_bytes())
            .and_then(|()| std::fs::write(&cert, ck.cert.pem()))
            .map_err(|e| {
                start_error("state_dir", format!("cannot write {}: {e}", cert.display()))
            })?;
        generated = Some(cert.clone());
    }
    let ck = tls::load_pem(&cert, &key)
        .map_err(|e| start_error("state_dir", format!("cannot load {}: {e}", cert.display())))?;
    Ok((ck, generated))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

/// Next hops named by host name, resolved once at start (a name that does
/// not resolve is left out: calls routed to it get 503).
fn resolve_next_hops(config: &Config) -> std::collections::HashMap<String, std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    let mut out = std::collections::HashMap::new();
    let hops = config
        .routing
        .default_next_hop
        .iter()
        .chain(config.routing.routes.iter().map(|r| &r.next_hop));
    for hop in hops {
        let Ok(u) = crate::sip::SipUri::parse(hop) else {
            continue;
        };
        if u.host().ip().is_some() {
            continue;
        }
        let host = u.host().to_string();
        if let Some(a) = (host.as_str(), 0)
            .to_socket_addrs()
            .ok()
            .and_then(|mut i| i.next())
        {
            out.insert(host, a.ip());
        }
    }
    out
}

/// Sends what the core queued over existing flows; messages for transport
/// addresses (the legacy side) are returned, to be sent without the lock.
fn transmit(transport: &SipTransport, core: &mut Core) -> Vec<self::core::Transmit> {
    let mut later = Vec::new();
    while let Some(t) = core.poll_transmit() {
        match &t.dest {
            Destination::Flow(flow) => {
                if transport.send(flow, &t.message).is_err() {
                    core.transport_error(Instant::now(), SystemTime::now(), t.key);
                }
            }
            Destination::Target(_) => later.push(t),
        }
    }
    later
}

/// Sends messages to transport addresses (UDP at once; TCP/TLS may connect).
async fn send_later(
    transport: &SipTransport,
    core: &Mutex<Core>,
    later: Vec<self::core::Transmit>,
) {
    for t in later {
        let Destination::Target(target) = &t.dest else {
            continue;
        };
        if transport.send_to(target, &t.message).await.is_err() {
            let more = {
                let mut c = lock(core);
                c.transport_error(Instant::now(), SystemTime::now(), t.key);
                transmit(transport, &mut c)
            };
            // A failure's consequences (an error response on a flow) went
            // out above; new sends to addresses are rare here: queue them.
            for m in more {
                if let Destination::Target(tt) = &m.dest {
                    let _ = transport.send_to(tt, &m.message).await;
                }
            }
        }
    }
}

/// Moves the media engine's rule messages onto the workers' rings (what
/// does not fit waits for the next round).
fn push_rings(core: &mut Core, ends: &mut [(Producer, Consumer)]) {
    let Some(engine) = core.b2bua_mut().media_mut() else {
        return;
    };
    while let Some(msg) = engine.poll_message() {
        let Some((tx, _)) = ends.get_mut(msg.0 as usize) else {
            continue;
        };
        if tx.push(msg.1 as u16, &msg.2).is_err() {
            engine.unpoll_message(msg);
            return;
        }
    }
}

/// Reads the workers' event rings (punted packets, leg events) into the core.
fn pop_rings(core: &mut Core, ends: &mut [(Producer, Consumer)]) -> bool {
    let mut any = false;
    for (_, rx) in ends.iter_mut() {
        // Bounded per round so one busy worker cannot starve signalling.
        for _ in 0..256 {
            match rx.pop(|k, b| (k, b.to_vec())) {
                Ok(Some((kind, body))) => {
                    any = true;
                    core.handle_ring_message(Instant::now(), SystemTime::now(), kind, &body);
                }
                Ok(None) => break,
                Err(_) => break,
            }
        }
    }
    any
}

/// The service loop.
async fn run(
    transport: SipTransport,
    mut events: mpsc::Receiver<TransportEvent>,
    core: Arc<Mutex<Core>>,
    mut ends: Vec<(Producer, Consumer)>,
    mut stop: watch::Receiver<bool>,
    progress: watch::Sender<u64>,
) {
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The rings have no doorbell: poll them while a data plane is attached.
    let mut rings = tokio::time::interval(Duration::from_millis(2));
    rings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let has_rings = !ends.is_empty();
    loop {
        let due = lock(&core).poll_timeout();
        let timer = async {
            match due {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        let ring_tick = async {
            if has_rings {
                rings.tick().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let later = tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                let mut c = lock(&core);
                c.handle_event(Instant::now(), SystemTime::now(), ev);
                let later = transmit(&transport, &mut c);
                push_rings(&mut c, &mut ends);
                drop(c);
                progress.send_modify(|n| *n += 1);
                later
            }
            () = timer => {
                let mut c = lock(&core);
                c.handle_timeout(Instant::now(), SystemTime::now());
                let later = transmit(&transport, &mut c);
                push_rings(&mut c, &mut ends);
                drop(c);
                progress.send_modify(|n| *n += 1);
                later
            }
            () = ring_tick => {
                let mut c = lock(&core);
                let any = pop_rings(&mut c, &mut ends);
                let later = transmit(&transport, &mut c);
                push_rings(&mut c, &mut ends);
                drop(c);
                if any {
                    progress.send_modify(|n| *n += 1);
                }
                later
            }
            _ = flush.tick() => {
                let mut c = lock(&core);
                if c.registrar().needs_flush() {
                    // One fsync for the changes of the last second; the
                    // in-memory registrar stays right if it fails.
                    let _ = c.registrar_mut().flush();
                }
                Vec::new()
            }
            _ = stop.wait_for(|s| *s) => break,
        };
        if !later.is_empty() {
            send_later(&transport, &core, later).await;
            let mut c = lock(&core);
            push_rings(&mut c, &mut ends);
        }
    }
}
