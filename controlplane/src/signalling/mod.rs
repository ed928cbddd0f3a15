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

pub mod core;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::core::{Core, CoreCounters};
use crate::config::Config;
use crate::registrar::{OpenReport, Registrar, RegistrarSettings, RegistrarStats, Target};
use crate::sip::transport::{tls, SipTransport, TransportConfig, TransportEvent};
use crate::sip::txn::Destination;
use crate::sip::Transport;

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
}

impl Signalling {
    /// Starts the service for `config` (within a tokio runtime with time and
    /// I/O enabled).
    pub async fn start(config: &Config) -> Result<Signalling, StartError> {
        let mut tc = TransportConfig {
            idle_timeout: Duration::from_secs(u64::from(config.sip.ws_idle_timeout_s.max(1))),
            ws_allowed_origins: config.sip.ws_origins.clone(),
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
        let core = Arc::new(Mutex::new(Core::new(config, registrar, Box::new(OsRandom))));
        let (stop, stop_rx) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(0);
        let task = tokio::spawn(run(
            transport.clone(),
            events,
            Arc::clone(&core),
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
        })
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

    /// The registrar's statistics.
    pub fn registrar_stats(&self) -> RegistrarStats {
        self.core().registrar().stats()
    }

    /// Stops the loop and the transports, and flushes the registrar.
    pub async fn shutdown(mut self) {
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

/// Sends what the core queued.
fn transmit(transport: &SipTransport, core: &mut Core) {
    while let Some(t) = core.poll_transmit() {
        let ok = match &t.dest {
            Destination::Flow(flow) => transport.send(flow, &t.message).is_ok(),
            // Only server transactions exist yet: their answers go on flows.
            Destination::Target(_) => false,
        };
        if !ok {
            core.transport_error(Instant::now(), SystemTime::now(), t.key);
        }
    }
}

/// The service loop.
async fn run(
    transport: SipTransport,
    mut events: mpsc::Receiver<TransportEvent>,
    core: Arc<Mutex<Core>>,
    mut stop: watch::Receiver<bool>,
    progress: watch::Sender<u64>,
) {
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let due = lock(&core).poll_timeout();
        let timer = async {
            match due {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                let mut c = lock(&core);
                c.handle_event(Instant::now(), SystemTime::now(), ev);
                transmit(&transport, &mut c);
                drop(c);
                progress.send_modify(|n| *n += 1);
            }
            () = timer => {
                let mut c = lock(&core);
                c.handle_timeout(Instant::now(), SystemTime::now());
                transmit(&transport, &mut c);
                drop(c);
                progress.send_modify(|n| *n += 1);
            }
            _ = flush.tick() => {
                let mut c = lock(&core);
                if c.registrar().needs_flush() {
                    // One fsync for the changes of the last second; the
                    // in-memory registrar stays right if it fails.
                    let _ = c.registrar_mut().flush();
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}
