//! Scenario (c): signalling only. REGISTER or call-setup rates over WSS
//! against a Strait the tool starts, at fixed offered rates (open loop:
//! operation `i` of a step is due at `start + i / rate`, whatever happened
//! to the ones before, and its latency counts from that due time, so a
//! slow target cannot hide behind a slowed-down generator).
//!
//! - `register`: on a pool of persistent connections (one browser and user
//!   each, round-robin), REGISTER, the 401 challenge, the authenticated
//!   REGISTER, its 200.
//! - `call`: INVITE, 407, ACK, INVITE with credentials, 100/180/200 relayed
//!   by Strait from the simulated legacy endpoint (which answers at once or
//!   after `--ring-ms`), ACK, then after `--hold-ms` a BYE and its 200. No
//!   media is sent (the SDP is a real WebRTC offer; nothing checks ICE).
//!
//! A step is clean when every operation succeeded, the p99 latency (REGISTER
//! or call setup up to the 200) is within `--sla-p99-ms` and the generator
//! kept up (its scheduling p99 lateness under 20 ms and its CPU under 90 %).
//! A ramp raises the rate step by step until a step is not clean; the
//! sustained rate is the highest clean one.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::UdpSocket as StdUdp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::browser::Browser;
use super::common::{self, cpu_between, pct, percentiles_of, say, snap, SipCommon};
use super::legacy::Legacy;
use super::sdp::{browser_offer, sha256_fingerprint, BrowserCodec, BrowserMedia};
use super::wss::Incoming;
use super::{unique, Failure};
use crate::record::{OpFigures, RateStepRecord, SipConfigRecord, SipRunRecord};

/// What each operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// REGISTER with digest.
    Register,
    /// A call setup and teardown.
    Call,
}

impl Op {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Call => "call",
        }
    }
}

/// Scheduler p99 lateness above which the generator counts as saturated, ms.
pub const SATURATED_SCHED_MS: f64 = 20.0;

/// Options of a `signalling` run.
#[derive(Debug, Clone)]
pub struct SignallingOptions {
    /// Shared options.
    pub common: SipCommon,
    /// REGISTER or call.
    pub op: Op,
    /// Offered rate of the first step, per second.
    pub start: f64,
    /// Added per step (0: a single step).
    pub step: f64,
    /// Highest rate.
    pub max: f64,
    /// Seconds of scheduling per step.
    pub step_secs: f64,
    /// Operations per step instead (fixed count).
    pub count: Option<u64>,
    /// Hold time of a call, ms.
    pub hold_ms: u64,
    /// p99 bound of a clean step, ms.
    pub sla_p99_ms: f64,
    /// Most operations in flight; beyond, a due operation is counted as
    /// failed ("not started").
    pub max_outstanding: u64,
}

impl SignallingOptions {
    /// The rates of the plan.
    pub fn rates(&self) -> Vec<f64> {
        let mut v = vec![self.start];
        if self.step > 0.0 {
            let mut r = self.start + self.step;
            // Bounded: at most 10 000 steps.
            while r <= self.max + 1e-9 && v.len() < 10_000 {
                v.push(r);
                r += self.step;
            }
        }
        v
    }

    /// Operations in a step at `rate`.
    pub fn ops_at(&self, rate: f64) -> u64 {
        self.count
            .unwrap_or_else(|| (rate * self.step_secs).round().max(1.0) as u64)
    }
}

/// One finished operation.
#[derive(Debug)]
struct Done {
    scheduled: Instant,
    /// When the primary part (REGISTER 200, INVITE 200) ended.
    primary: Result<Instant, (String, Failure)>,
    ringing: Option<Instant>,
    /// BYE: its duration, or why it failed.
    bye: Option<Result<Duration, Failure>>,
}

/// Answers what Strait sends the browsers unasked (OPTIONS, BYE of a call
/// it ended, anything else) so nothing hangs there.
async fn answer_incoming(
    mut rx: mpsc::UnboundedReceiver<Incoming>,
    browsers: Arc<Vec<Browser>>,
    unexpected: Arc<AtomicU64>,
) {
    while let Some(Incoming { conn, msg }) = rx.recv().await {
        let Some(b) = browsers.get(conn) else {
            continue;
        };
        match msg.method() {
            Some("ACK") | None => {}
            Some("INVITE") => {
                unexpected.fetch_add(1, Ordering::Relaxed);
                b.respond(&msg, 486, "Busy Here");
            }
            Some("BYE") => {
                unexpected.fetch_add(1, Ordering::Relaxed);
                b.respond(&msg, 200, "OK");
            }
            Some(_) => b.respond(&msg, 200, "OK"),
        }
    }
}

async fn one_op(
    op: Op,
    b: Browser,
    n: u64,
    hold: Duration,
    timeout: Duration,
    sink: std::net::SocketAddr,
    scheduled: Instant,
) -> Done {
    let deadline = Instant::now() + timeout;
    match op {
        Op::Register => Done {
            scheduled,
            primary: b
                .register(3600, deadline)
                .await
                .map(|()| Instant::now())
                .map_err(|f| ("REGISTER".into(), f)),
            ringing: None,
            bye: None,
        },
        Op::Call => {
            let media = BrowserMedia {
                addr: sink,
                ufrag: format!("{:0>8}", unique("u")),
                pwd: format!("{:0>24}", unique("p")),
                fingerprint: sha256_fingerprint(&[0x5A; 32]),
                ssrc: (n as u32).wrapping_mul(2_654_435_761) | 1,
            };
            let offer = browser_offer(&media, BrowserCodec::Pcmu, n);
            let ruri = format!("sip:9{n:09}@127.0.0.1");
            match b.invite(&ruri, &offer, deadline).await {
                Ok((mut d, times)) => {
                    let ok_at = times.answered.unwrap_or_else(Instant::now);
                    if !hold.is_zero() {
                        tokio::time::sleep(hold).await;
                    }
                    let bye_start = Instant::now();
                    let bye = b
                        .bye(&mut d, bye_start + timeout)
                        .await
                        .map(|()| bye_start.elapsed());
                    Done {
                        scheduled,
                        primary: Ok(ok_at),
                        ringing: times.ringing,
                        bye: Some(bye),
                    }
                }
                Err(f) => Done {
                    scheduled,
                    primary: Err(("INVITE".into(), f)),
                    ringing: None,
                    bye: None,
                },
            }
        }
    }
}

#[derive(Default)]
struct StepAcc {
    primary: OpFigures,
    primary_lat: Vec<Duration>,
    ringing: Vec<Duration>,
    bye: OpFigures,
    bye_lat: Vec<Duration>,
    last_done: Option<Instant>,
}

impl StepAcc {
    fn add(&mut self, d: Done) {
        match d.primary {
            Ok(at) => {
                self.primary.ok += 1;
                self.primary_lat
                    .push(at.saturating_duration_since(d.scheduled));
                self.last_done = Some(self.last_done.map_or(at, |l| l.max(at)));
            }
            Err((what, f)) => {
                *self
                    .primary
                    .failures
                    .entry(format!("{what} {}", f.key()))
                    .or_default() += 1;
            }
        }
        if let Some(r) = d.ringing {
            self.ringing.push(r.saturating_duration_since(d.scheduled));
        }
        if let Some(b) = d.bye {
            self.bye.attempted += 1;
            match b {
                Ok(t) => {
                    self.bye.ok += 1;
                    self.bye_lat.push(t);
                }
                Err(f) => {
                    *self
                        .bye
                        .failures
                        .entry(format!("BYE {}", f.key()))
                        .or_default() += 1;
                }
            }
        }
    }

    fn failed(&self) -> u64 {
        self.primary.failures.values().sum::<u64>() + self.bye.failures.values().sum::<u64>()
    }
}

/// Runs a `signalling` scenario; progress on `p`.
pub fn run(o: &SignallingOptions, p: &mut dyn Write) -> SipRunRecord {
    let t0 = Instant::now();
    let c = &o.common;
    let config = SipConfigRecord {
        hold_ms: o.hold_ms,
        sla_p99_ms: o.sla_p99_ms,
        step_secs: o.step_secs,
        start: o.start,
        step: o.step,
        max: o.max,
        count: o.count,
        ..SipConfigRecord::default()
    };
    let mut r = common::new_record(c, &format!("signalling-{}", o.op.name()), config);
    let outcome = run_inner(o, p, t0, &mut r);
    if let Err(e) = outcome {
        r.stop = "error".into();
        r.error = Some(e);
    }
    r.sustained_rate = r
        .rate_steps
        .iter()
        .take_while(|s| s.clean)
        .map(|s| s.offered_rate)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    r.elapsed_secs = t0.elapsed().as_secs_f64();
    r.summary = summary_line(&r, o.op);
    r
}

/// The one-line summary.
pub fn summary_line(r: &SipRunRecord, op: Op) -> String {
    let what = match op {
        Op::Register => "REGISTER/s (401 + authenticated retry)",
        Op::Call => "call setups/s (INVITE 407 INVITE 180 200 ACK, then BYE)",
    };
    let head = match r.sustained_rate {
        Some(x) => format!("sustained {x:.0} {what} over WSS"),
        None => format!("no clean step of {what}"),
    };
    let mut line = format!("strait signalling-{}: {head}", op.name());
    if let Some(s) = r
        .rate_steps
        .iter()
        .filter(|s| s.clean)
        .max_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate))
    {
        line.push_str(&format!(
            " (at that rate: {} ok, p50 {:.1} ms, p99 {:.1} ms, strait {} of a core",
            s.primary.ok,
            s.primary.latency.p50_ms,
            s.primary.latency.p99_ms,
            s.strait_cores.map_or("?".into(), pct),
        ));
        line.push(')');
    }
    if let Some(b) = r.rate_steps.iter().find(|s| !s.clean) {
        line.push_str(&format!(
            "; {:.0}/s not clean: {}",
            b.offered_rate, b.reason
        ));
    }
    if let Some(e) = &r.error {
        line.push_str(&format!("; ERROR: {e}"));
    }
    line
}

fn run_inner(
    o: &SignallingOptions,
    p: &mut dyn Write,
    t0: Instant,
    r: &mut SipRunRecord,
) -> Result<(), String> {
    let c = &o.common;
    let deadline = t0 + Duration::from_secs_f64(c.max_secs);
    common::baseline(c, p, t0, r)?;
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
    let rt = common::runtime(c)?;
    let result = rt.block_on(async {
        // Where the browsers' offers point and legacy answers point: a
        // socket nobody reads (no media in this scenario).
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
        let (browsers, in_rx) =
            common::open_browsers(c, &strait, c.connections, p, t0).await?;
        let browsers = Arc::new(browsers);
        let unexpected = Arc::new(AtomicU64::new(0));
        tokio::spawn(answer_incoming(in_rx, browsers.clone(), unexpected.clone()));
        let pids = strait.pids();
        let rates = o.rates();
        let total = rates.len();
        let mut global = 0u64;
        for (i, rate) in rates.into_iter().enumerate() {
            let n = o.ops_at(rate);
            let secs = n as f64 / rate;
            let need = Duration::from_secs_f64(secs) + c.op_timeout() + Duration::from_millis(o.hold_ms) + Duration::from_secs(2);
            if Instant::now() + need > deadline {
                say(p, t0, "time limit: no room for another step");
                r.stop = "time_limit".into();
                break;
            }
            say(
                p,
                t0,
                &format!(
                    "step {}/{total}: {rate:.0} {}/s, {n} operations over {secs:.1} s",
                    i + 1,
                    o.op.name()
                ),
            );
            let before = snap(&pids);
            let step = run_step(o, &browsers, rate, n, &mut global, sink_addr, p, t0).await;
            let after = snap(&pids);
            let mut step = step;
            let (tcpu, strait_cores, gen_cpu) = cpu_between(c, &before, &after);
            step.target_cpu = tcpu;
            step.strait_cores = strait_cores;
            step.gen_cpu = gen_cpu;
            judge(&mut step, o);
            say(
                p,
                t0,
                &format!(
                    "{rate:.0}/s: {} ok, {} failed {:?}, achieved {:.1}/s, latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms{} | strait {} of a core (with data plane {}), target cores busy {} | generator cpu {}, schedule late p99 {:.1} ms | {}",
                    step.primary.ok,
                    step.primary.failures.values().sum::<u64>() + step.bye.as_ref().map_or(0, |b| b.failures.values().sum::<u64>()),
                    step.primary.failures.iter().chain(step.bye.iter().flat_map(|b| b.failures.iter())).collect::<BTreeMap<_, _>>(),
                    step.achieved_rate,
                    step.primary.latency.p50_ms,
                    step.primary.latency.p99_ms,
                    step.primary.latency.max_ms,
                    step.bye.as_ref().map_or(String::new(), |b| format!(", BYE p99 {:.1} ms", b.latency.p99_ms)),
                    step.strait_cores.map_or("?".into(), pct),
                    step.target_cpu.process_cores.map_or("?".into(), pct),
                    step.target_cpu.busy.map_or("?".into(), pct),
                    pct(step.gen_cpu),
                    step.sched_late_p99_ms,
                    if step.clean { "clean".to_string() } else { format!("NOT CLEAN: {}", step.reason) },
                ),
            );
            let clean = step.clean;
            r.rate_steps.push(step);
            if !strait.alive() {
                return Err("strait exited".to_string());
            }
            if !clean {
                r.stop = "sla_broken".into();
                break;
            }
        }
        let u = unexpected.load(Ordering::Relaxed);
        if u > 0 {
            say(p, t0, &format!("note: Strait sent {u} unexpected INVITE/BYE to the browsers"));
        }
        let lc = legacy.counters();
        say(
            p,
            t0,
            &format!(
                "legacy endpoint: {} INVITEs, {} ACKs, {} BYEs, {} retransmissions",
                lc.invites_in.load(Ordering::Relaxed),
                lc.acks_in.load(Ordering::Relaxed),
                lc.byes_in.load(Ordering::Relaxed),
                lc.retransmits.load(Ordering::Relaxed)
            ),
        );
        for b in browsers.iter() {
            b.conn.close();
        }
        drop(sink);
        Ok::<(), String>(())
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    strait.stop();
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_step(
    o: &SignallingOptions,
    browsers: &Arc<Vec<Browser>>,
    rate: f64,
    n: u64,
    global: &mut u64,
    sink: std::net::SocketAddr,
    p: &mut dyn Write,
    t0: Instant,
) -> RateStepRecord {
    let c = &o.common;
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let mut acc = StepAcc::default();
    let mut late = crate::stats::new_histogram();
    let start = Instant::now() + Duration::from_millis(20);
    let mut outstanding = 0u64;
    let mut last_progress = Instant::now();
    let mut done_since = 0u64;
    let hold = Duration::from_millis(o.hold_ms);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        while let Ok(d) = rx.try_recv() {
            outstanding -= 1;
            done_since += 1;
            acc.add(d);
        }
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        }
        common::record_us(&mut late, Instant::now().saturating_duration_since(due));
        acc.primary.attempted += 1;
        if outstanding >= o.max_outstanding {
            *acc.primary
                .failures
                .entry(format!(
                    "{} {}",
                    o.op.name().to_uppercase(),
                    Failure::Overload.key()
                ))
                .or_default() += 1;
        } else {
            let b = browsers[(*global % browsers.len() as u64) as usize].clone();
            let tx = tx.clone();
            let (op, timeout, num) = (o.op, c.op_timeout(), *global);
            outstanding += 1;
            tokio::spawn(async move {
                let d = one_op(op, b, num, hold, timeout, sink, due).await;
                let _ = tx.send(d);
            });
        }
        *global += 1;
        if last_progress.elapsed() >= Duration::from_secs(1) {
            let dt = last_progress.elapsed().as_secs_f64();
            say(
                p,
                t0,
                &format!(
                    "{rate:.0}/s: started {}/{n}, done {:.0}/s, in flight {outstanding}, ok {}, failed {}",
                    i + 1,
                    done_since as f64 / dt,
                    acc.primary.ok,
                    acc.failed()
                ),
            );
            last_progress = Instant::now();
            done_since = 0;
        }
    }
    let sched_end = Instant::now();
    drop(tx);
    // Everything still in flight ends by its own deadline (+ hold + BYE).
    let wait_until = Instant::now() + 2 * c.op_timeout() + hold + Duration::from_secs(2);
    while outstanding > 0 {
        match tokio::time::timeout_at(wait_until.into(), rx.recv()).await {
            Ok(Some(d)) => {
                outstanding -= 1;
                acc.add(d);
            }
            _ => break,
        }
    }
    if outstanding > 0 {
        *acc.primary
            .failures
            .entry("lost (no result)".into())
            .or_default() += outstanding;
    }
    let span = acc
        .last_done
        .unwrap_or(sched_end)
        .max(sched_end)
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-3);
    let mut primary = acc.primary.clone();
    primary.latency = percentiles_of(&acc.primary_lat);
    let bye = (o.op == Op::Call).then(|| {
        let mut b = acc.bye.clone();
        b.latency = percentiles_of(&acc.bye_lat);
        b
    });
    RateStepRecord {
        offered_rate: rate,
        scheduled: n,
        secs: sched_end.saturating_duration_since(start).as_secs_f64(),
        achieved_rate: primary.ok as f64 / span,
        primary,
        bye,
        ringing: (o.op == Op::Call).then(|| percentiles_of(&acc.ringing)),
        sched_late_p99_ms: crate::stats::Percentiles::of(&late).p99_ms,
        ..RateStepRecord::default()
    }
}

fn judge(s: &mut RateStepRecord, o: &SignallingOptions) {
    let mut why = Vec::new();
    let failed = s.primary.failures.values().sum::<u64>()
        + s.bye
            .as_ref()
            .map_or(0, |b| b.failures.values().sum::<u64>());
    if failed > 0 {
        why.push(format!("{failed} failed"));
    }
    if s.primary.latency.p99_ms > o.sla_p99_ms {
        why.push(format!(
            "p99 {:.1} ms > {} ms",
            s.primary.latency.p99_ms, o.sla_p99_ms
        ));
    }
    if s.sched_late_p99_ms > SATURATED_SCHED_MS {
        why.push(format!(
            "generator saturated: schedule late p99 {:.1} ms",
            s.sched_late_p99_ms
        ));
    }
    if s.gen_cpu > crate::ramp::SATURATED_CPU {
        why.push(format!("generator saturated: cpu {}", pct(s.gen_cpu)));
    }
    s.clean = why.is_empty();
    s.reason = why.join(", ");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SignallingOptions {
        SignallingOptions {
            common: SipCommon::defaults(2),
            op: Op::Register,
            start: 100.0,
            step: 100.0,
            max: 350.0,
            step_secs: 5.0,
            count: None,
            hold_ms: 0,
            sla_p99_ms: 200.0,
            max_outstanding: 1000,
        }
    }

    #[test]
    fn plans_rates_and_counts() {
        let mut o = opts();
        assert_eq!(o.rates(), vec![100.0, 200.0, 300.0]);
        assert_eq!(o.ops_at(200.0), 1000);
        o.count = Some(7);
        assert_eq!(o.ops_at(200.0), 7);
        o.step = 0.0;
        assert_eq!(o.rates(), vec![100.0]);
    }

    #[test]
    fn judges_steps() {
        let o = opts();
        let mut s = RateStepRecord::default();
        s.primary.latency.p99_ms = 50.0;
        judge(&mut s, &o);
        assert!(s.clean, "{}", s.reason);
        s.primary.failures.insert("REGISTER 503".into(), 1);
        s.primary.latency.p99_ms = 250.0;
        s.gen_cpu = 0.99;
        judge(&mut s, &o);
        assert!(!s.clean);
        assert!(
            s.reason.contains("1 failed")
                && s.reason.contains("p99 250.0")
                && s.reason.contains("cpu")
        );
    }
}
