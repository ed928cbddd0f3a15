//! Scenario (b): full calls through Strait's B2BUA. Simulated browsers
//! (SIP over WSS, a WebRTC offer or answer, ICE checks toward Strait's
//! ICE-lite candidate, a real DTLS client handshake, SRTP with the
//! exported keys) call simulated legacy endpoints (SIP over UDP, plain RTP
//! PCMU), and legacy endpoints call registered browsers; then every call
//! carries media both ways at 50 packets/s, measured like the ng scenarios.
//!
//! Per call, setup:
//! - browser -> legacy: the browser INVITEs `sip:9<n>@127.0.0.1` (407,
//!   ACK, INVITE with credentials), Strait routes it to the legacy
//!   endpoint, which answers 180 and 200 with its RTP port and reports
//!   Strait's offer (where to send RTP); the browser ACKs the 200 and
//!   brings its leg up (ICE, DTLS) toward the candidate in Strait's answer.
//! - legacy -> browser: the legacy endpoint INVITEs `sip:lt<k>@127.0.0.1`
//!   from `l<n>`, Strait sends a WebRTC offer over the callee's WebSocket,
//!   the browser answers 180 and 200 (`a=setup:active`), the legacy side
//!   gets the 200 (where to send RTP) and ACKs, and the browser brings its
//!   leg up.
//!
//! Media (the generator threads, [`crate::generator`]): leg A is the
//! browser's socket (SRTP, Opus or PCMU as negotiated, consent checks,
//! answering STUN), leg B the legacy endpoint's (RTP PCMU). Direction
//! `a_to_b` is browser -> legacy, `b_to_a` legacy -> browser. A step is
//! clean when every call of it was set up and the media service level
//! held with an unsaturated generator ([`crate::ramp::judge`]).
//!
//! Teardown: the side that called hangs up (BYE), after traffic stopped.

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strait::dtls::{Certificate, DtlsConfig, DtlsContext};
use strait_srtp::{Config as SrtpConfig, SrtpContext, Suite};
use tokio::sync::{mpsc, oneshot};

use super::browser::{Browser, Dialog};
use super::common::{self, cpu_between, pct, percentiles_of, say, snap, SipCommon};
use super::legacy::Legacy;
use super::msg::{addr_uri, SipMsg};
use super::sdp::{browser_answer, browser_offer, pick_browser_pt, BrowserCodec, BrowserMedia};
use super::wss::Incoming;
use super::Failure;
use crate::generator::{
    self, mono_ns, Command, GenConfig, GenThread, LegCodec, LegSpec, StreamSpec, WindowResult,
    PTIME_NS,
};
use crate::ramp::{self, Decision, RampPlan, Sla, StepFigures};
use crate::record::{
    CallStepRecord, GenRecord, OpFigures, SipConfigRecord, SipRunRecord, StepRecord,
};
use crate::scenario::PortAllocator;
use crate::stats::{new_histogram, DirAcc, Percentiles};
use crate::webrtc::{self, BrowserLeg, LocalIce, RemoteTransport};

/// Who calls whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Every other call each way.
    Both,
    /// Browsers call the legacy side.
    Browser,
    /// The legacy side calls browsers.
    Legacy,
}

impl Direction {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::Browser => "browser",
            Direction::Legacy => "legacy",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "both" => Some(Direction::Both),
            "browser" => Some(Direction::Browser),
            "legacy" => Some(Direction::Legacy),
            _ => None,
        }
    }

    /// Whether call `n` is set up from a browser.
    fn browser_calls(self, n: u32) -> bool {
        match self {
            Direction::Both => n.is_multiple_of(2),
            Direction::Browser => true,
            Direction::Legacy => false,
        }
    }
}

/// Options of a `calls` run.
#[derive(Debug, Clone)]
pub struct CallsOptions {
    /// Shared options.
    pub common: SipCommon,
    /// Concurrent calls of the first step.
    pub start: u32,
    /// Added per step (0: one step).
    pub step: u32,
    /// Most calls.
    pub max: u32,
    /// Who calls whom.
    pub direction: Direction,
    /// The browsers' codec.
    pub codec: BrowserCodec,
    /// Calls set up per second while a step grows.
    pub setup_rate: f64,
    /// Measured seconds per step.
    pub step_secs: f64,
    /// Traffic seconds before each measurement.
    pub warmup_secs: f64,
    /// Late packets still count this long, ms.
    pub drain_ms: u64,
    /// Longest ICE + DTLS of one browser leg, ms.
    pub handshake_ms: u64,
    /// Media generator threads.
    pub gen_threads: usize,
    /// Media service level.
    pub sla: Sla,
}

impl CallsOptions {
    /// Defaults around `common`.
    pub fn new(common: SipCommon) -> Self {
        CallsOptions {
            common,
            start: 10,
            step: 10,
            max: 100,
            direction: Direction::Both,
            codec: BrowserCodec::Pcmu,
            setup_rate: 20.0,
            step_secs: 5.0,
            warmup_secs: 3.0,
            drain_ms: 500,
            handshake_ms: 5000,
            gen_threads: 1,
            sla: Sla {
                max_loss: 0.001,
                max_p99_ms: 20.0,
            },
        }
    }

    fn plan(&self) -> RampPlan {
        RampPlan {
            start: self.start,
            step: self.step,
            max: self.max,
        }
    }
}

/// Requests from Strait on the browsers' connections, routed to the call
/// that waits for them.
#[derive(Default)]
struct Router {
    /// New INVITEs by the caller's user part (`l<n>`).
    invites: HashMap<String, oneshot::Sender<(usize, SipMsg)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers and routes what Strait sends the browsers.
async fn dispatch(
    mut rx: mpsc::UnboundedReceiver<Incoming>,
    browsers: Arc<Vec<Browser>>,
    router: Arc<Mutex<Router>>,
    ended_by_strait: Arc<AtomicU64>,
) {
    while let Some(Incoming { conn, msg }) = rx.recv().await {
        let Some(b) = browsers.get(conn) else {
            continue;
        };
        match msg.method() {
            None | Some("ACK") => {}
            Some("INVITE") if msg.to_tag().is_none() => {
                let user = msg
                    .header("From")
                    .map(addr_uri)
                    .and_then(|u| u.strip_prefix("sip:"))
                    .and_then(|u| u.split_once('@'))
                    .map(|(u, _)| u.to_string())
                    .unwrap_or_default();
                let waiter = lock(&router).invites.remove(&user);
                match waiter {
                    Some(w) => {
                        if let Err((_, msg)) = w.send((conn, msg)) {
                            b.respond(&msg, 480, "Temporarily Unavailable");
                        }
                    }
                    None => b.respond(&msg, 480, "Temporarily Unavailable"),
                }
            }
            Some("INVITE") => b.respond(&msg, 488, "Not Acceptable Here"),
            Some("BYE") => {
                // The legacy side hung up (teardown) or Strait ended the call.
                ended_by_strait.fetch_add(1, Ordering::Relaxed);
                b.respond(&msg, 200, "OK");
            }
            Some(_) => b.respond(&msg, 200, "OK"),
        }
    }
}

/// An established call: its media and how to end it.
struct CallUp {
    spec: StreamSpec,
    hangup: Hangup,
    from_browser: bool,
    setup: Duration,
    media_setup: Duration,
}

enum Hangup {
    Browser(usize, Dialog),
    Legacy(Dialog),
}

/// What every call setup needs.
struct Shared {
    browsers: Arc<Vec<Browser>>,
    legacy: Legacy,
    router: Arc<Mutex<Router>>,
    dtls: Arc<DtlsContext>,
    fingerprint: String,
    ports: Mutex<PortAllocator>,
    codec: BrowserCodec,
    timeout: Duration,
    handshake: Duration,
}

fn srtp(suite: Suite, master: &[u8]) -> Result<SrtpContext, Failure> {
    let mut cfg = SrtpConfig::default();
    cfg.max_ssrcs = 2;
    SrtpContext::from_master(suite, master, cfg).map_err(|e| Failure::Media(format!("SRTP: {e}")))
}

fn media_addr(sdp: &str) -> Result<(SocketAddr, crate::sdp::ParsedMedia), Failure> {
    let m = crate::sdp::parse(sdp).ok_or(Failure::Protocol("no audio in the SDP"))?;
    let ip = m.addr.ok_or(Failure::Protocol("no c= in the SDP"))?;
    Ok((SocketAddr::new(ip, m.port), m))
}

/// The browser leg's codec from Strait's SDP toward it.
fn leg_codec(m: &crate::sdp::ParsedMedia) -> LegCodec {
    match m.payload_types.first() {
        Some(&pt) if m.payload_type_of("opus") == Some(pt) => LegCodec::Opus { pt },
        _ => LegCodec::Pcmu,
    }
}

impl Shared {
    fn bind(&self) -> Result<StdUdp, Failure> {
        lock(&self.ports)
            .bind()
            .map_err(|e| Failure::Media(format!("local socket: {e}")))
    }

    fn browser_media(&self, sock: &StdUdp, n: u32) -> Result<(BrowserMedia, LocalIce), Failure> {
        let local = LocalIce::random().map_err(|e| Failure::Media(e.to_string()))?;
        let addr = sock
            .local_addr()
            .map_err(|e| Failure::Media(e.to_string()))?;
        Ok((
            BrowserMedia {
                addr,
                ufrag: local.ufrag.clone(),
                pwd: local.pwd.clone(),
                fingerprint: self.fingerprint.clone(),
                ssrc: n.wrapping_mul(2_654_435_761) | 1,
            },
            local,
        ))
    }

    /// ICE and DTLS of the browser leg toward what Strait's SDP `m` says.
    async fn bring_up(
        &self,
        sock: StdUdp,
        local: LocalIce,
        m: &crate::sdp::ParsedMedia,
    ) -> Result<(LegSpec, Duration), Failure> {
        let remote = RemoteTransport::from_sdp(m).map_err(Failure::Media)?;
        let (role, _) = remote.our_setup().map_err(Failure::Media)?;
        let send_to = remote.candidate;
        let ctx = Arc::clone(&self.dtls);
        let within = self.handshake;
        let t = Instant::now();
        let (keys, leg, sock) = tokio::task::spawn_blocking(move || {
            let mut leg = BrowserLeg::new(&ctx, local, remote, role, Instant::now())?;
            let keys = webrtc::connect(&sock, &mut leg, within)?;
            Ok::<_, String>((keys, leg, sock))
        })
        .await
        .map_err(|e| Failure::Media(e.to_string()))?
        .map_err(Failure::Media)?;
        let took = t.elapsed();
        let spec = LegSpec {
            socket: sock,
            send_to,
            codec: leg_codec(m),
            srtp_tx: Some(srtp(keys.suite(), keys.local_master())?),
            srtp_rx: Some(srtp(keys.suite(), keys.remote_master())?),
            ice: Some(leg.ice_leg()),
        };
        Ok((spec, took))
    }

    /// Browser `k` calls the legacy side (call number `n`).
    async fn call_from_browser(&self, n: u32, k: usize) -> Result<CallUp, (bool, Failure)> {
        let fail = |f| (true, f);
        let b = &self.browsers[k];
        let bsock = self.bind().map_err(fail)?;
        let lsock = self.bind().map_err(fail)?;
        let (media, local) = self.browser_media(&bsock, n).map_err(fail)?;
        let laddr = lsock
            .local_addr()
            .map_err(|e| fail(Failure::Media(e.to_string())))?;
        let user = format!("9{n:09}");
        let offered = self.legacy.expect(&user, laddr);
        let offer = browser_offer(&media, self.codec, u64::from(n));
        let start = Instant::now();
        let r = b
            .invite(
                &format!("sip:{user}@127.0.0.1"),
                &offer,
                start + self.timeout,
            )
            .await;
        let (dialog, times) = match r {
            Ok(x) => x,
            Err(f) => {
                self.legacy.unexpect(&user);
                return Err(fail(f));
            }
        };
        let setup = times.answered.unwrap_or_else(Instant::now) - start;
        let hang = |f| (true, f);
        let offered = tokio::time::timeout(self.timeout, offered)
            .await
            .map_err(|_| hang(Failure::Protocol("the legacy side saw no INVITE")))?
            .map_err(|_| hang(Failure::Protocol("the legacy side saw no INVITE")))?;
        let (legacy_to, _) = media_addr(&offered.sdp).map_err(hang)?;
        let (_, strait_m) = media_addr(&dialog.remote_sdp).map_err(hang)?;
        let result = self.bring_up(bsock, local, &strait_m).await;
        let hangup = Hangup::Browser(k, dialog);
        let (a, media_setup) = match result {
            Ok(x) => x,
            Err(f) => {
                self.hang_up(hangup).await;
                return Err((true, f));
            }
        };
        Ok(CallUp {
            spec: StreamSpec {
                id: n,
                a,
                b: LegSpec {
                    socket: lsock,
                    send_to: legacy_to,
                    codec: LegCodec::Pcmu,
                    srtp_tx: None,
                    srtp_rx: None,
                    ice: None,
                },
            },
            hangup,
            from_browser: true,
            setup,
            media_setup,
        })
    }

    /// The legacy side calls browser `k` (call number `n`).
    async fn call_from_legacy(&self, n: u32, k: usize) -> Result<CallUp, (bool, Failure)> {
        let fail = |f| (false, f);
        let b = self.browsers[k].clone();
        let bsock = self.bind().map_err(fail)?;
        let lsock = self.bind().map_err(fail)?;
        let (media, local) = self.browser_media(&bsock, n).map_err(fail)?;
        let laddr = lsock
            .local_addr()
            .map_err(|e| fail(Failure::Media(e.to_string())))?;
        let from = format!("l{n:09}");
        let (tx, rx) = oneshot::channel();
        lock(&self.router).invites.insert(from.clone(), tx);
        let start = Instant::now();
        let deadline = start + self.timeout;
        let legacy = self.legacy.clone();
        let (callee, from2) = (b.user.clone(), from.clone());
        let caller = tokio::spawn(async move {
            legacy
                .invite(&callee, "127.0.0.1", &from2, laddr, deadline)
                .await
        });
        // The INVITE Strait sends the browser.
        let incoming = tokio::time::timeout_at(deadline.into(), rx).await;
        let (conn, invite) = match incoming {
            Ok(Ok(x)) => x,
            _ => {
                lock(&self.router).invites.remove(&from);
                let r = caller.await;
                return Err(fail(match r {
                    Ok(Err(f)) => f,
                    _ => Failure::Protocol("the browser saw no INVITE"),
                }));
            }
        };
        let answered = (|| {
            let (_, offer) = media_addr(invite.body_str())?;
            let pt = pick_browser_pt(&offer, self.codec)
                .ok_or(Failure::Protocol("no PCMU or Opus in Strait's offer"))?;
            let answer = browser_answer(&media, invite.body_str(), &offer, pt, u64::from(n));
            let callee = self
                .browsers
                .get(conn)
                .ok_or(Failure::Protocol("unknown connection"))?;
            let mut offer = offer;
            // Our answer decides the browser leg's codec.
            offer.payload_types = vec![pt];
            callee.answer(&invite, &answer).map(|_| offer)
        })();
        let offer = match answered {
            Ok(o) => o,
            Err(f) => {
                if let Some(cb) = self.browsers.get(conn) {
                    cb.respond(&invite, 488, "Not Acceptable Here");
                }
                let _ = caller.await;
                return Err(fail(f));
            }
        };
        let (dialog, times) = match caller.await {
            Ok(Ok(x)) => x,
            Ok(Err(f)) => return Err(fail(f)),
            Err(e) => return Err(fail(Failure::Media(e.to_string()))),
        };
        let setup = times.answered.unwrap_or_else(Instant::now) - start;
        let hangup = Hangup::Legacy(dialog);
        let legacy_to = match &hangup {
            Hangup::Legacy(d) => media_addr(&d.remote_sdp).map(|(a, _)| a),
            Hangup::Browser(..) => Err(Failure::Protocol("unreachable")),
        };
        let legacy_to = match legacy_to {
            Ok(a) => a,
            Err(f) => {
                self.hang_up(hangup).await;
                return Err(fail(f));
            }
        };
        let (a, media_setup) = match self.bring_up(bsock, local, &offer).await {
            Ok(x) => x,
            Err(f) => {
                self.hang_up(hangup).await;
                return Err(fail(f));
            }
        };
        Ok(CallUp {
            spec: StreamSpec {
                id: n,
                a,
                b: LegSpec {
                    socket: lsock,
                    send_to: legacy_to,
                    codec: LegCodec::Pcmu,
                    srtp_tx: None,
                    srtp_rx: None,
                    ice: None,
                },
            },
            hangup,
            from_browser: false,
            setup,
            media_setup,
        })
    }

    async fn hang_up(&self, h: Hangup) -> bool {
        let deadline = Instant::now() + self.timeout;
        match h {
            Hangup::Browser(k, mut d) => self.browsers[k].bye(&mut d, deadline).await.is_ok(),
            Hangup::Legacy(mut d) => self.legacy.bye(&mut d, deadline).await.is_ok(),
        }
    }
}

/// Setup figures of one step.
#[derive(Default)]
struct SetupAcc {
    from_browser: OpFigures,
    from_legacy: OpFigures,
    browser_lat: Vec<Duration>,
    legacy_lat: Vec<Duration>,
    media: Vec<Duration>,
}

impl SetupAcc {
    fn failed(&self) -> u64 {
        self.from_browser.failures.values().sum::<u64>()
            + self.from_legacy.failures.values().sum::<u64>()
    }
}

/// Runs a `calls` scenario; progress on `p`.
pub fn run(o: &CallsOptions, p: &mut dyn Write) -> SipRunRecord {
    let t0 = Instant::now();
    let c = &o.common;
    let config = SipConfigRecord {
        sla_p99_ms: o.sla.max_p99_ms,
        sla_max_loss: o.sla.max_loss,
        step_secs: o.step_secs,
        warmup_secs: o.warmup_secs,
        start: f64::from(o.start),
        step: f64::from(o.step),
        max: f64::from(o.max),
        direction: o.direction.name().into(),
        codec: o.codec.name().into(),
        ..SipConfigRecord::default()
    };
    let mut r = common::new_record(c, "calls", config);
    if let Err(e) = run_inner(o, p, t0, &mut r) {
        r.stop = "error".into();
        r.error = Some(e);
    }
    r.max_clean_calls = r
        .call_steps
        .iter()
        .take_while(|s| step_clean(s))
        .map(|s| s.media.calls)
        .max();
    r.elapsed_secs = t0.elapsed().as_secs_f64();
    r.summary = summary_line(&r);
    r
}

fn step_clean(s: &CallStepRecord) -> bool {
    s.media.verdict.clean()
        && s.setup_from_browser.failures.is_empty()
        && s.setup_from_legacy.failures.is_empty()
}

/// The one-line summary.
pub fn summary_line(r: &SipRunRecord) -> String {
    let mut line = format!(
        "strait calls ({}, {}): ",
        r.config.direction, r.config.codec
    );
    match r.max_clean_calls {
        Some(n) => line.push_str(&format!("{n} concurrent full calls clean")),
        None => line.push_str("no clean step"),
    }
    if let Some(s) = r.call_steps.iter().rev().find(|s| step_clean(s)) {
        let m = &s.media;
        line.push_str(&format!(
            " (browser->legacy loss {:.3}% p99 {:.2} ms, legacy->browser loss {:.3}% p99 {:.2} ms; setup p99 {:.0}/{:.0} ms; strait {} busy)",
            m.a_to_b.loss * 100.0,
            m.a_to_b.latency.p99_ms,
            m.b_to_a.loss * 100.0,
            m.b_to_a.latency.p99_ms,
            s.setup_from_browser.latency.p99_ms,
            s.setup_from_legacy.latency.p99_ms,
            m.target_cpu.busy.map_or("?".into(), pct),
        ));
    }
    if let Some(b) = r.call_steps.iter().find(|s| !step_clean(s)) {
        let mut why = Vec::new();
        let f = b.setup_from_browser.failures.values().sum::<u64>()
            + b.setup_from_legacy.failures.values().sum::<u64>();
        if f > 0 {
            why.push(format!("{f} setups failed"));
        }
        if !b.media.verdict.sla_ok {
            why.push(b.media.verdict.sla_reason.clone());
        }
        if b.media.verdict.gen_saturated {
            why.push(format!(
                "generator saturated: {}",
                b.media.verdict.gen_reason
            ));
        }
        line.push_str(&format!(
            "; {} calls not clean: {}",
            b.media.calls,
            why.join(", ")
        ));
    }
    if let Some(e) = &r.error {
        line.push_str(&format!("; ERROR: {e}"));
    }
    line
}

fn live_totals(threads: &[GenThread]) -> (u64, u64, u64) {
    threads.iter().fold((0, 0, 0), |acc, t| {
        (
            acc.0 + t.live.sent.load(Ordering::Relaxed),
            acc.1 + t.live.received.load(Ordering::Relaxed),
            acc.2 + t.live.errors.load(Ordering::Relaxed),
        )
    })
}

async fn wait_progress(
    until: Instant,
    p: &mut dyn Write,
    t0: Instant,
    what: &str,
    threads: &[GenThread],
) {
    let mut last = (Instant::now(), live_totals(threads));
    // Bounded by `until`; every pass sleeps.
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        tokio::time::sleep((until - now).min(Duration::from_secs(1))).await;
        let cur = live_totals(threads);
        let dt = last.0.elapsed().as_secs_f64().max(1e-3);
        say(
            p,
            t0,
            &format!(
                "{what}: tx {:.0} pkt/s, rx {:.0} pkt/s, rx errors {}",
                (cur.0 - last.1 .0) as f64 / dt,
                (cur.1 - last.1 .1) as f64 / dt,
                cur.2
            ),
        );
        last = (Instant::now(), cur);
    }
}

fn run_inner(
    o: &CallsOptions,
    p: &mut dyn Write,
    t0: Instant,
    r: &mut SipRunRecord,
) -> Result<(), String> {
    let c = &o.common;
    let deadline = t0 + Duration::from_secs_f64(c.max_secs);
    common::baseline(c, p, t0, r)?;
    let cert = Certificate::generate().map_err(|e| format!("certificate: {e}"))?;
    let dtls = DtlsContext::new(&cert, DtlsConfig::default())
        .map_err(|e| format!("DTLS context: {e:?}"))?;
    let fingerprint = dtls.fingerprint().to_string();
    let opus = if o.codec == BrowserCodec::Opus {
        crate::scenario::opus_frames(50).map_err(|e| format!("opus encoder: {e}"))?
    } else {
        Vec::new()
    };
    say(
        p,
        t0,
        &format!(
            "starting strait ({}) on cores {:?}: wss {}, udp {}, legacy endpoint {}",
            c.strait_bin.display(),
            c.target_cores,
            c.wss(),
            c.udp(),
            c.legacy()
        ),
    );
    let mut strait = common::start_strait(c, c.connections, 60)?;
    r.target.pid = Some(strait.pid);
    let pids = strait.pids();
    let gen_cfg = GenConfig {
        opus_frames: Arc::new(opus),
        hard_deadline_ns: mono_ns() + ((c.max_secs + 60.0) * 1e9) as u64,
    };
    let (res_tx, res_rx) = channel();
    let mut threads = Vec::new();
    for i in 0..o.gen_threads.max(1) {
        let cores = c
            .gen_cores
            .get(i % c.gen_cores.len().max(1))
            .map(|&x| vec![x])
            .unwrap_or_default();
        threads.push(
            generator::spawn(i, cores, gen_cfg.clone(), res_tx.clone())
                .map_err(|e| format!("generator thread {i}: {e}"))?,
        );
    }
    let rt = common::runtime(c)?;
    let result = rt.block_on(async {
        let sink = StdUdp::bind((c.ip(), 0)).map_err(|e| format!("sink socket: {e}"))?;
        let sink_addr = sink.local_addr().map_err(|e| e.to_string())?;
        let legacy = Legacy::start(
            c.legacy(),
            c.udp(),
            sink_addr,
            Duration::from_millis(c.ring_ms),
        )
        .await
        .map_err(|e| format!("legacy endpoint on {}: {e}", c.legacy()))?;
        let (browsers, in_rx) = common::open_browsers(c, &strait, c.connections, p, t0).await?;
        let browsers = Arc::new(browsers);
        let router = Arc::new(Mutex::new(Router::default()));
        let ended = Arc::new(AtomicU64::new(0));
        tokio::spawn(dispatch(in_rx, browsers.clone(), router.clone(), ended.clone()));
        let shared = Arc::new(Shared {
            browsers,
            legacy: legacy.clone(),
            router,
            dtls: Arc::new(dtls),
            fingerprint,
            ports: Mutex::new(PortAllocator::new(c.ip(), c.gen_ports.0, c.gen_ports.1)),
            codec: o.codec,
            timeout: c.op_timeout(),
            handshake: Duration::from_millis(o.handshake_ms),
        });
        let mut hangups: Vec<Hangup> = Vec::new();
        let out = ramp_loop(o, &shared, &mut threads, &res_rx, &pids, &mut hangups, &ended, deadline, p, t0, r, &mut strait).await;
        // Teardown: traffic first, then every call hung up by its caller.
        for t in &mut threads {
            t.stop();
        }
        let total = hangups.len();
        let ended_before = ended.load(Ordering::Relaxed);
        let mut tasks = Vec::new();
        for h in hangups {
            let s = Arc::clone(&shared);
            tasks.push(tokio::spawn(async move { s.hang_up(h).await }));
        }
        let mut failed = 0;
        for t in tasks {
            if !matches!(t.await, Ok(true)) {
                failed += 1;
            }
        }
        say(
            p,
            t0,
            &format!(
                "hung up {} calls ({failed} BYEs failed); strait ended {ended_before} calls toward browsers before the teardown",
                total - failed
            ),
        );
        for b in shared.browsers.iter() {
            b.conn.close();
        }
        drop(sink);
        out
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    strait.stop();
    result
}

#[allow(clippy::too_many_arguments)]
async fn ramp_loop(
    o: &CallsOptions,
    shared: &Arc<Shared>,
    threads: &mut [GenThread],
    res_rx: &Receiver<WindowResult>,
    pids: &[u32],
    hangups: &mut Vec<Hangup>,
    ended: &Arc<AtomicU64>,
    deadline: Instant,
    p: &mut dyn Write,
    t0: Instant,
    r: &mut SipRunRecord,
    strait: &mut super::launch::Strait,
) -> Result<(), String> {
    let c = &o.common;
    let plan = o.plan();
    let total_steps = plan.steps();
    let mut calls = plan.start;
    let mut next_n = 0u32;
    let (mut up_browser, mut up_legacy) = (0u32, 0u32);
    let mut window_id = 0u64;
    let mut next_browser = 0usize;
    let n_browsers = shared.browsers.len();
    for step_no in 1.. {
        let have = up_browser + up_legacy;
        let new = calls.saturating_sub(have);
        let need = Duration::from_secs_f64(
            f64::from(new) / o.setup_rate + o.warmup_secs + o.step_secs + 2.0,
        ) + c.op_timeout()
            + Duration::from_millis(o.drain_ms);
        if Instant::now() + need > deadline {
            say(p, t0, "time limit: no room for another step");
            r.stop = "time_limit".into();
            return Ok(());
        }
        say(
            p,
            t0,
            &format!(
                "step {step_no}/{total_steps}: {calls} calls ({new} new, {} pkt/s offered)",
                calls * 100
            ),
        );
        // Grow: `new` setups at the setup rate, each its own task.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let start = Instant::now();
        for i in 0..new {
            let due = start + Duration::from_secs_f64(f64::from(i) / o.setup_rate);
            tokio::time::sleep_until(due.into()).await;
            let n = next_n;
            next_n += 1;
            let k = next_browser % n_browsers;
            next_browser += 1;
            let s = Arc::clone(shared);
            let tx = tx.clone();
            let from_browser = o.direction.browser_calls(n);
            tokio::spawn(async move {
                let res = if from_browser {
                    s.call_from_browser(n, k).await
                } else {
                    s.call_from_legacy(n, k).await
                };
                let _ = tx.send(res);
            });
        }
        drop(tx);
        let mut acc = SetupAcc::default();
        let mut batches: Vec<Vec<StreamSpec>> = (0..threads.len()).map(|_| Vec::new()).collect();
        let mut got = 0u32;
        let mut last_say = Instant::now();
        let wait_until =
            Instant::now() + c.op_timeout() * 2 + Duration::from_millis(o.handshake_ms);
        while got < new {
            let res = match tokio::time::timeout_at(wait_until.into(), rx.recv()).await {
                Ok(Some(res)) => res,
                _ => break,
            };
            got += 1;
            match res {
                Ok(up) => {
                    let fig = if up.from_browser {
                        up_browser += 1;
                        acc.browser_lat.push(up.setup);
                        &mut acc.from_browser
                    } else {
                        up_legacy += 1;
                        acc.legacy_lat.push(up.setup);
                        &mut acc.from_legacy
                    };
                    fig.attempted += 1;
                    fig.ok += 1;
                    acc.media.push(up.media_setup);
                    let tn = up.spec.id as usize % batches.len();
                    batches[tn].push(up.spec);
                    hangups.push(up.hangup);
                }
                Err((from_browser, f)) => {
                    let fig = if from_browser {
                        &mut acc.from_browser
                    } else {
                        &mut acc.from_legacy
                    };
                    fig.attempted += 1;
                    *fig.failures.entry(f.key()).or_default() += 1;
                    if acc.failed() <= 5 {
                        say(
                            p,
                            t0,
                            &format!(
                                "call setup failed ({}): {f}",
                                if from_browser {
                                    "browser -> legacy"
                                } else {
                                    "legacy -> browser"
                                }
                            ),
                        );
                    }
                }
            }
            if last_say.elapsed() >= Duration::from_secs(1) || got == new {
                say(
                    p,
                    t0,
                    &format!(
                        "set up {} of {calls} calls ({} failed this step)",
                        up_browser + up_legacy,
                        acc.failed()
                    ),
                );
                last_say = Instant::now();
            }
        }
        if got < new {
            *acc.from_browser
                .failures
                .entry("no result".into())
                .or_default() += u64::from(new - got);
        }
        for (t, b) in threads.iter().zip(batches.iter_mut()) {
            if !b.is_empty() {
                let _ = t.tx.send(Command::Add(std::mem::take(b)));
            }
        }
        acc.from_browser.latency = percentiles_of(&acc.browser_lat);
        acc.from_legacy.latency = percentiles_of(&acc.legacy_lat);
        let up = up_browser + up_legacy;
        if up == 0 {
            return Err(format!(
                "no call could be set up: {:?} {:?}",
                acc.from_browser.failures, acc.from_legacy.failures
            ));
        }
        let warm_until = Instant::now() + Duration::from_secs_f64(o.warmup_secs);
        wait_progress(
            warm_until,
            p,
            t0,
            &format!("{up} calls: warming up"),
            threads,
        )
        .await;
        if !strait.alive() {
            return Err("strait exited".into());
        }
        window_id += 1;
        let media = measure(o, threads, res_rx, pids, window_id, up, p, t0).await?;
        let step = CallStepRecord {
            browser_calls: up_browser,
            legacy_calls: up_legacy,
            setup_from_browser: acc.from_browser,
            setup_from_legacy: acc.from_legacy,
            media_setup: percentiles_of(&acc.media),
            ended_early: ended.load(Ordering::Relaxed),
            media,
        };
        let m = &step.media;
        say(
            p,
            t0,
            &format!(
                "{up} calls ({up_browser} from browsers, {up_legacy} from legacy): setup p99 {:.0} ms / {:.0} ms, ICE+DTLS p99 {:.0} ms | browser->legacy loss {:.4}% p99 {:.2} ms, legacy->browser loss {:.4}% p99 {:.2} ms, jitter p99 {:.2} ms | target busy {} (processes {}) | generator cpu {}, late p99 {:.2} ms | {}{}",
                step.setup_from_browser.latency.p99_ms,
                step.setup_from_legacy.latency.p99_ms,
                step.media_setup.p99_ms,
                m.a_to_b.loss * 100.0,
                m.a_to_b.latency.p99_ms,
                m.b_to_a.loss * 100.0,
                m.b_to_a.latency.p99_ms,
                m.jitter_p99_ms,
                m.target_cpu.busy.map_or("?".into(), pct),
                m.target_cpu.process_cores.map_or("?".into(), pct),
                pct(m.generator.cpu),
                m.generator.late_p99_ms,
                if m.verdict.sla_ok { "SLA ok".to_string() } else { format!("SLA BROKEN: {}", m.verdict.sla_reason) },
                if m.verdict.gen_saturated { format!(" | GENERATOR SATURATED: {}", m.verdict.gen_reason) } else { String::new() },
            ),
        );
        let clean = step_clean(&step);
        let verdict = step.media.verdict.clone();
        r.call_steps.push(step);
        if !clean {
            r.stop = "sla_broken".into();
            return Ok(());
        }
        match ramp::next_step(&plan, calls, &verdict) {
            Decision::Next(n) => calls = n,
            Decision::Stop(_) => return Ok(()),
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    o: &CallsOptions,
    threads: &[GenThread],
    res_rx: &Receiver<WindowResult>,
    pids: &[u32],
    id: u64,
    calls: u32,
    p: &mut dyn Write,
    t0: Instant,
) -> Result<StepRecord, String> {
    let c = &o.common;
    let tids: Vec<u32> = threads.iter().map(|t| t.tid).collect();
    let gen_cpu = |tids: &[u32]| -> f64 {
        tids.iter()
            .map(|&t| crate::cpu::read_thread_cpu(t).unwrap_or(0.0))
            .sum()
    };
    let before = snap(pids);
    let gen_before = gen_cpu(&tids);
    let start = mono_ns();
    let len_ns = (o.step_secs * 1e9) as u64;
    let drain_ns = o.drain_ms * 1_000_000;
    for t in threads {
        let _ = t.tx.send(Command::Window {
            id,
            start_ns: start,
            end_ns: start + len_ns,
            drain_ns,
        });
    }
    wait_progress(
        Instant::now() + Duration::from_nanos(len_ns),
        p,
        t0,
        &format!("{calls} calls: measuring"),
        threads,
    )
    .await;
    let after = snap(pids);
    let gen_after = gen_cpu(&tids);
    let mut dirs = [DirAcc::new(), DirAcc::new()];
    let mut late = new_histogram();
    let (mut send_errors, mut skipped) = (0, 0);
    let mut mapping = (0, 0);
    let mut got = 0;
    let wait_until = Instant::now() + Duration::from_nanos(drain_ns) + Duration::from_secs(5);
    while got < threads.len() {
        // The generator threads report on a std channel: poll it without
        // blocking the runtime.
        match res_rx.try_recv() {
            Ok(w) if w.id == id => {
                got += 1;
                dirs[0].merge(&w.dirs[0]);
                dirs[1].merge(&w.dirs[1]);
                let _ = late.add(&w.late_us);
                send_errors += w.send_errors;
                skipped += w.skipped;
                mapping.0 += w.mapping.0;
                mapping.1 += w.mapping.1;
            }
            Ok(_) => {}
            Err(_) => {
                if Instant::now() >= wait_until {
                    return Err(format!(
                        "only {got} of {} generator threads reported",
                        threads.len()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let secs = after.wall_secs_since(&before);
    let (target_cpu, _, _) = cpu_between(c, &before, &after);
    let gen_cores_used = threads.len().min(c.gen_cores.len().max(1)).max(1);
    let gen_cpu_secs = (gen_after - gen_before).max(0.0);
    let (_, gen_core_busy) = after.core_busy(&c.gen_cores, &before);
    let lat = Percentiles::of(&late);
    let generator = GenRecord {
        threads: threads.len(),
        cpu: gen_cpu_secs / (secs * gen_cores_used as f64),
        cpu_secs: gen_cpu_secs,
        core_busy: gen_core_busy,
        late_p50_ms: lat.p50_ms,
        late_p99_ms: lat.p99_ms,
        late_max_ms: lat.max_ms,
        send_errors,
        skipped,
    };
    let mut both = dirs[0].clone();
    both.merge(&dirs[1]);
    let all = both.summary();
    let figures = StepFigures {
        calls,
        loss: all.loss,
        p99_ms: all.latency.p99_ms,
        gen_cpu: generator.cpu,
        gen_late_p99_ms: generator.late_p99_ms,
        target_busy: target_cpu.busy,
    };
    let mut verdict = ramp::judge(&figures, &o.sla);
    if send_errors > 0 {
        verdict.gen_saturated = true;
        let why = format!("{send_errors} sends refused by the kernel");
        verdict.gen_reason = if verdict.gen_reason.is_empty() {
            why
        } else {
            format!("{}, {why}", verdict.gen_reason)
        };
    }
    let transcoded = o.codec == BrowserCodec::Opus;
    Ok(StepRecord {
        calls,
        secs: len_ns as f64 / 1e9,
        offered_pps: f64::from(calls) * 2.0 * 1e9 / PTIME_NS as f64,
        setup_secs: 0.0,
        a_to_b: dirs[0].summary(),
        b_to_a: dirs[1].summary(),
        loss: all.loss,
        p50_ms: all.latency.p50_ms,
        p99_ms: all.latency.p99_ms,
        jitter_p99_ms: all.jitter.p99_ms,
        seq_mapping: transcoded.then_some(mapping),
        generator,
        target_cpu,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_and_codecs() {
        assert!(Direction::Both.browser_calls(0) && !Direction::Both.browser_calls(1));
        assert!(Direction::Browser.browser_calls(1));
        assert!(!Direction::Legacy.browser_calls(0));
        assert_eq!(Direction::from_name("legacy"), Some(Direction::Legacy));
        let m = crate::sdp::parse(
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\n",
        )
        .unwrap();
        assert_eq!(leg_codec(&m), LegCodec::Opus { pt: 111 });
        let m = crate::sdp::parse("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5 RTP/AVP 0\r\n").unwrap();
        assert_eq!(leg_codec(&m), LegCodec::Pcmu);
        assert_eq!(
            media_addr("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5 RTP/AVP 0\r\n")
                .unwrap()
                .0,
            "127.0.0.1:5".parse().unwrap()
        );
        assert!(media_addr("v=0\r\n").is_err());
    }
}
