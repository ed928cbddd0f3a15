//! One run: start (or attach to) the target, ramp the load step by step,
//! measure, decide, tear everything down and produce the [`RunRecord`].

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpu;
use crate::generator::{self, mono_ns, Command, GenConfig, GenThread, WindowResult, PTIME_NS};
use crate::ng::NgClient;
use crate::ramp::{self, Decision, RampPlan, Sla, StepFigures, StopReason};
use crate::record::{
    utc_string, ConfigRecord, GenRecord, RunRecord, StepRecord, TargetCpuRecord, TargetRecord,
};
use crate::scenario::{self, CallTrace, PortAllocator, Scenario, SetupContext, SetupError};
use crate::stats::{new_histogram, DirAcc, Percentiles};
use crate::target::{RtpengineOptions, StraitOptions, Target};

/// Which target to drive.
#[derive(Debug, Clone)]
pub enum TargetChoice {
    /// Start rtpengine with these options.
    Rtpengine(RtpengineOptions),
    /// Start Strait with these options.
    Strait(StraitOptions),
    /// Use the ng target already listening here.
    Ng(SocketAddr),
}

/// Where the target's busy fraction comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusySource {
    /// `/proc/stat` of the target cores (what the issue asks for; counts
    /// softirq work and other processes on those cores too).
    Core,
    /// The target process's utime+stime ÷ its cores (immune to other
    /// tenants, misses softirq work accounted outside the process).
    Process,
}

impl BusySource {
    /// The name in records.
    pub fn name(self) -> &'static str {
        match self {
            BusySource::Core => "core",
            BusySource::Process => "process",
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The media scenario.
    pub scenario: Scenario,
    /// The target.
    pub target: TargetChoice,
    /// PID of an external target for CPU accounting.
    pub target_pid: Option<u32>,
    /// Cores the target runs on (busy fraction from `/proc/stat`).
    pub target_cores: Vec<usize>,
    /// Generator threads.
    pub gen_threads: usize,
    /// Generator cores (threads are pinned round-robin, one core each).
    pub gen_cores: Vec<usize>,
    /// Load steps.
    pub plan: RampPlan,
    /// Measured seconds per step.
    pub step_secs: f64,
    /// Traffic seconds before each measurement (new calls settle).
    pub warmup_secs: f64,
    /// Late packets still count this long after a window, ms.
    pub drain_ms: u64,
    /// Hard limit of the whole run, s.
    pub max_secs: f64,
    /// Which target busy fraction the ramp and capacity use.
    pub busy_source: BusySource,
    /// The service level.
    pub sla: Sla,
    /// Output directory of the JSON record.
    pub out: PathBuf,
    /// Label (default: target and scenario).
    pub label: Option<String>,
    /// Whether the process runs in its own network namespace.
    pub netns: bool,
    /// Local address of the generator's sockets.
    pub local_ip: IpAddr,
    /// Generator port range.
    pub gen_ports: (u16, u16),
}

/// Writes progress lines (stderr in the binary).
fn say(p: &mut dyn Write, t0: Instant, msg: &str) {
    let _ = writeln!(p, "[{:6.1}s] {msg}", t0.elapsed().as_secs_f64());
}

struct CpuSnap {
    cores: Vec<cpu::CoreTimes>,
    target: Option<f64>,
    gen: f64,
    wall: Instant,
}

/// CPU seconds of the target's processes (None when the main one is unknown
/// or gone); helpers that cannot be read count nothing.
fn target_cpu(pids: &[u32]) -> Option<f64> {
    let (&main, helpers) = pids.split_first()?;
    let mut total = cpu::read_pid_cpu(main).ok()?;
    for &h in helpers {
        total += cpu::read_pid_cpu(h).unwrap_or(0.0);
    }
    Some(total)
}

fn snapshot(target_pids: &[u32], tids: &[u32]) -> CpuSnap {
    CpuSnap {
        cores: cpu::read_cores().unwrap_or_default(),
        target: target_cpu(target_pids),
        gen: tids
            .iter()
            .map(|&t| cpu::read_thread_cpu(t).unwrap_or(0.0))
            .sum(),
        wall: Instant::now(),
    }
}

/// Sleeps until `until`, writing a progress line about once a second.
fn wait_with_progress(
    until: Instant,
    p: &mut dyn Write,
    t0: Instant,
    what: &str,
    threads: &[GenThread],
) {
    let live = |threads: &[GenThread]| {
        threads.iter().fold((0u64, 0u64, 0u64, 0u64), |acc, t| {
            use std::sync::atomic::Ordering::Relaxed;
            (
                acc.0 + t.live.sent.load(Relaxed),
                acc.1 + t.live.received.load(Relaxed),
                acc.2 + t.live.errors.load(Relaxed),
                acc.3 + t.live.control.load(Relaxed),
            )
        })
    };
    let mut last = (Instant::now(), live(threads));
    // Bounded: `until` is at most max_secs away and every pass sleeps.
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_secs(1)));
        let cur = live(threads);
        let dt = last.0.elapsed().as_secs_f64().max(1e-3);
        say(
            p,
            t0,
            &format!(
                "{what}: tx {:.0} pkt/s, rx {:.0} pkt/s, rx errors {}{}",
                (cur.0 - last.1 .0) as f64 / dt,
                (cur.1 - last.1 .1) as f64 / dt,
                cur.2,
                if cur.3 > 0 {
                    format!(", STUN/DTLS/RTCP received {}", cur.3)
                } else {
                    String::new()
                }
            ),
        );
        last = (Instant::now(), cur);
    }
}

struct Runner<'a> {
    o: &'a RunOptions,
    p: &'a mut dyn Write,
    t0: Instant,
    deadline: Instant,
    threads: Vec<GenThread>,
    results: Receiver<WindowResult>,
    gen_cores_used: usize,
    call_ids: Vec<String>,
    window_id: u64,
    setup: SetupContext,
    first_call: Option<CallTrace>,
}

/// The value of a fraction as a percent string.
fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

impl Runner<'_> {
    /// Adds calls until `calls` are up. Err on a fatal setup problem.
    fn grow(
        &mut self,
        ng: &mut NgClient,
        ports: &mut PortAllocator,
        run_tag: &str,
        calls: u32,
    ) -> Result<f64, String> {
        let started = Instant::now();
        let have = self.call_ids.len() as u32;
        let n_threads = self.threads.len().max(1);
        let mut batches: Vec<Vec<generator::StreamSpec>> =
            (0..n_threads).map(|_| Vec::new()).collect();
        let mut failures = 0u32;
        for id in have..calls {
            if Instant::now() >= self.deadline {
                return Err("time limit reached during call setup".into());
            }
            let mut trace = CallTrace::default();
            let result = scenario::setup_call(
                ng,
                &self.setup,
                id,
                ports,
                run_tag,
                (id == 0).then_some(&mut trace),
            );
            if id == 0 {
                if let Some(h) = &trace.handshake {
                    say(
                        self.p,
                        self.t0,
                        &format!(
                            "call 0: WebRTC leg B: ICE {} ({} checks sent, {} answered by the target, {} of its checks answered{}), SRTP {} after {} ms",
                            h.ice_role,
                            h.checks_sent,
                            h.checks_succeeded,
                            h.peer_checks_answered,
                            if h.nominated_by_peer { ", nominated by it" } else { "" },
                            h.srtp_suite.as_deref().unwrap_or("none"),
                            h.dtls_ms.map_or("?".into(), |m| m.to_string()),
                        ),
                    );
                }
                self.first_call = Some(trace);
            }
            match result {
                Ok(call) => {
                    self.call_ids.push(call.call_id);
                    batches[id as usize % n_threads].push(call.spec);
                }
                Err(e @ SetupError::NoTranscoding(_)) => return Err(e.to_string()),
                Err(e @ SetupError::Io(_)) => return Err(e.to_string()),
                Err(e) => {
                    failures += 1;
                    say(self.p, self.t0, &format!("call {id}: setup failed: {e}"));
                    if failures > 3 + (calls - have) / 100 {
                        return Err(format!("{failures} call setups failed, last: {e}"));
                    }
                }
            }
            // Hand calls over in chunks so traffic starts while setup goes on.
            if (id + 1 - have).is_multiple_of(200) || id + 1 == calls {
                for (t, b) in self.threads.iter().zip(batches.iter_mut()) {
                    if !b.is_empty() {
                        let _ = t.tx.send(Command::Add(std::mem::take(b)));
                    }
                }
                say(
                    self.p,
                    self.t0,
                    &format!("set up {} of {calls} calls", self.call_ids.len()),
                );
            }
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Measures one window of the current load.
    fn measure(
        &mut self,
        calls: u32,
        setup_secs: f64,
        target_pids: &[u32],
    ) -> Result<StepRecord, String> {
        let o = self.o;
        let tids: Vec<u32> = self.threads.iter().map(|t| t.tid).collect();
        let before = snapshot(target_pids, &tids);
        let start = mono_ns();
        let len_ns = (o.step_secs * 1e9) as u64;
        let drain_ns = o.drain_ms * 1_000_000;
        self.window_id += 1;
        for t in &self.threads {
            let _ = t.tx.send(Command::Window {
                id: self.window_id,
                start_ns: start,
                end_ns: start + len_ns,
                drain_ns,
            });
        }
        let end_at = Instant::now() + Duration::from_nanos(len_ns);
        wait_with_progress(
            end_at,
            self.p,
            self.t0,
            &format!("{calls} calls: measuring"),
            &self.threads,
        );
        let after = snapshot(target_pids, &tids);
        let mut dirs = [DirAcc::new(), DirAcc::new()];
        let mut late = new_histogram();
        let (mut send_errors, mut skipped, mut reanchors) = (0, 0, 0);
        let mut mapping = (0, 0);
        let mut got = 0;
        let wait_until = Instant::now() + Duration::from_nanos(drain_ns) + Duration::from_secs(5);
        while got < self.threads.len() {
            let left = wait_until.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(r) if r.id == self.window_id => {
                    got += 1;
                    dirs[0].merge(&r.dirs[0]);
                    dirs[1].merge(&r.dirs[1]);
                    let _ = late.add(&r.late_us);
                    send_errors += r.send_errors;
                    skipped += r.skipped;
                    reanchors += r.reanchors;
                    mapping.0 += r.mapping.0;
                    mapping.1 += r.mapping.1;
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "only {got} of {} generator threads reported",
                        self.threads.len()
                    ))
                }
            }
        }
        if o.scenario == Scenario::Transcode {
            say(
                self.p,
                self.t0,
                &format!(
                    "sequence mapping: {} directions with the target keeping our RTP sequence numbers (exact latency), {} anchored (latency a lower bound)",
                    mapping.0, mapping.1
                ),
            );
        }
        if reanchors > 0 {
            say(
                self.p,
                self.t0,
                &format!("sequence mapping re-anchored {reanchors} times"),
            );
        }
        let secs = after
            .wall
            .duration_since(before.wall)
            .as_secs_f64()
            .max(1e-3);
        let (busy, core_busy) = if o.target_cores.is_empty() {
            (None, Vec::new())
        } else {
            let (m, per) = cpu::busy_of(&o.target_cores, &before.cores, &after.cores);
            (Some(m), per)
        };
        let (_, gen_core_busy) = cpu::busy_of(&o.gen_cores, &before.cores, &after.cores);
        let gen_cpu_secs = (after.gen - before.gen).max(0.0);
        let mut both = dirs[0].clone();
        both.merge(&dirs[1]);
        let all = both.summary();
        let lat = Percentiles::of(&late);
        let generator = GenRecord {
            threads: self.threads.len(),
            cpu: gen_cpu_secs / (secs * self.gen_cores_used as f64),
            cpu_secs: gen_cpu_secs,
            core_busy: gen_core_busy,
            late_p50_ms: lat.p50_ms,
            late_p99_ms: lat.p99_ms,
            late_max_ms: lat.max_ms,
            send_errors,
            skipped,
        };
        let process_cores = match (before.target, after.target) {
            (Some(b), Some(a)) => Some((a - b).max(0.0) / secs),
            _ => None,
        };
        let n_cores = o.target_cores.len().max(1) as f64;
        let target_cpu = TargetCpuRecord {
            busy: match o.busy_source {
                BusySource::Core => busy,
                BusySource::Process => process_cores.map(|c| c / n_cores),
            },
            busy_source: o.busy_source.name().into(),
            core_busy_mean: busy,
            core_busy,
            process_cores,
        };
        if let (Some(core), Some(proc_)) = (busy, process_cores) {
            let other = core - proc_ / n_cores;
            if other > 0.10 {
                say(
                    self.p,
                    self.t0,
                    &format!(
                        "warning: {} of the target cores went to something other than the target process (softirq or other tenants)",
                        pct(other)
                    ),
                );
            }
        }
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
            // Packets the generator could not send are its own failure.
            verdict.gen_saturated = true;
            let why = format!("{send_errors} sends refused by the kernel");
            verdict.gen_reason = if verdict.gen_reason.is_empty() {
                why
            } else {
                format!("{}, {why}", verdict.gen_reason)
            };
        }
        Ok(StepRecord {
            calls,
            secs: len_ns as f64 / 1e9,
            offered_pps: f64::from(calls) * 2.0 * 1e9 / PTIME_NS as f64,
            setup_secs,
            a_to_b: dirs[0].summary(),
            b_to_a: dirs[1].summary(),
            loss: all.loss,
            p50_ms: all.latency.p50_ms,
            p99_ms: all.latency.p99_ms,
            jitter_p99_ms: all.jitter.p99_ms,
            seq_mapping: (o.scenario == Scenario::Transcode).then_some(mapping),
            generator,
            target_cpu,
            verdict,
        })
    }
}

fn step_figures(s: &StepRecord) -> StepFigures {
    StepFigures {
        calls: s.calls,
        loss: s.loss,
        p99_ms: s.p99_ms,
        gen_cpu: s.generator.cpu,
        gen_late_p99_ms: s.generator.late_p99_ms,
        target_busy: s.target_cpu.busy,
    }
}

/// The one-line summary of a record.
pub fn summary_line(r: &RunRecord) -> String {
    let who = match &r.target.version {
        Some(v) => format!("{}-{v}", r.target.kind),
        None => r.target.kind.clone(),
    };
    let cap = &r.capacity;
    let head = match (cap.kind, cap.calls_per_core) {
        (ramp::CapacityKind::Measured, Some(c)) => format!("capacity {c:.0} calls/core (measured)"),
        (ramp::CapacityKind::Measured, None) => format!(
            "capacity {} calls (measured; target cores unknown)",
            cap.last_clean_calls.unwrap_or(0)
        ),
        (ramp::CapacityKind::Extrapolated, Some(c)) => format!(
            "capacity ~{c:.0} calls/core (EXTRAPOLATED from {} calls at {} target core busy)",
            cap.last_clean_calls.unwrap_or(0),
            pct(cap.busy_at_last_clean.unwrap_or(0.0))
        ),
        _ => "no capacity figure".to_string(),
    };
    let mut line = format!("{who} {}: {head}", r.scenario);
    if let Some(last) = r.steps.iter().rev().find(|s| s.verdict.clean()) {
        line.push_str(&format!(
            "; last clean {} calls: loss {:.3}%, p99 {:.2} ms, target busy {}, generator cpu {}",
            last.calls,
            last.loss * 100.0,
            last.p99_ms,
            last.target_cpu.busy.map_or("?".into(), pct),
            pct(last.generator.cpu)
        ));
    }
    if let Some(b) = r.steps.iter().find(|s| !s.verdict.sla_ok) {
        line.push_str(&format!(
            "; broke at {} calls ({})",
            b.calls, b.verdict.sla_reason
        ));
    }
    line.push_str(&format!("; stop: {:?}", r.stop));
    if let Some(e) = &r.error {
        line.push_str(&format!("; error: {e}"));
    }
    line
}

/// Runs the whole thing. Progress goes to `progress`; the record is
/// returned (and written by the caller).
pub fn run(o: &RunOptions, progress: &mut dyn Write) -> RunRecord {
    let t0 = Instant::now();
    let started_utc = utc_string(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    let deadline = t0 + Duration::from_secs_f64(o.max_secs);
    let machine_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut record = RunRecord {
        tool: format!("strait-loadtest {}", env!("CARGO_PKG_VERSION")),
        started_utc,
        label: String::new(),
        target: TargetRecord {
            kind: match &o.target {
                TargetChoice::Rtpengine(_) => "rtpengine".into(),
                TargetChoice::Strait(_) => "strait".into(),
                TargetChoice::Ng(_) => "ng".into(),
            },
            version: None,
            ng: match &o.target {
                TargetChoice::Rtpengine(r) => r.ng.to_string(),
                TargetChoice::Strait(s) => s.ng.to_string(),
                TargetChoice::Ng(a) => a.to_string(),
            },
            pid: o.target_pid,
            cores: o.target_cores.clone(),
        },
        scenario: o.scenario.name().into(),
        config: ConfigRecord {
            gen_threads: o.gen_threads,
            gen_cores: o.gen_cores.clone(),
            plan: o.plan,
            step_secs: o.step_secs,
            warmup_secs: o.warmup_secs,
            drain_ms: o.drain_ms,
            max_secs: o.max_secs,
            busy_source: o.busy_source.name().into(),
            sla: o.sla,
            netns: o.netns,
            machine_cpus,
        },
        baseline_core_busy: Vec::new(),
        steps: Vec::new(),
        stop: StopReason::Error,
        capacity: ramp::capacity(&[], StopReason::Error, None),
        error: None,
        summary: String::new(),
        elapsed_secs: 0.0,
        first_call: None,
    };
    let (stop, error) = run_inner(o, progress, t0, deadline, &mut record);
    record.stop = stop;
    record.error = error;
    let steps: Vec<_> = record
        .steps
        .iter()
        .map(|s| (step_figures(s), s.verdict.clone()))
        .collect();
    let cores = (!o.target_cores.is_empty()).then_some(o.target_cores.len());
    record.capacity = ramp::capacity(&steps, stop, cores);
    if record.label.is_empty() {
        record.label = format!("{} {}", record.target.kind, record.scenario);
    }
    record.elapsed_secs = t0.elapsed().as_secs_f64();
    record.summary = summary_line(&record);
    record
}

fn run_inner(
    o: &RunOptions,
    p: &mut dyn Write,
    t0: Instant,
    deadline: Instant,
    record: &mut RunRecord,
) -> (StopReason, Option<String>) {
    // The controller (ng setup, CPU sampling) stays off the target's cores.
    if let Err(e) = generator::pin_current_thread(&o.gen_cores) {
        return (
            StopReason::Error,
            Some(format!("pinning to {:?}: {e}", o.gen_cores)),
        );
    }
    // How busy are our cores before we start? (Other tenants distort the figures.)
    record.baseline_core_busy = cpu::baseline(o.target_cores.iter().chain(&o.gen_cores).copied());
    let shown: Vec<String> = record
        .baseline_core_busy
        .iter()
        .map(|(c, b)| format!("core {c} {}", pct(*b)))
        .collect();
    if record.baseline_core_busy.iter().any(|(_, b)| *b > 0.10) {
        say(
            p,
            t0,
            &format!(
                "WARNING: cores already busy before the run ({}): other load distorts the figures",
                shown.join(", ")
            ),
        );
    } else {
        say(p, t0, &format!("before the run: {}", shown.join(", ")));
    }
    let mut target = match &o.target {
        TargetChoice::Rtpengine(r) => {
            say(
                p,
                t0,
                &format!("starting rtpengine on cores {:?}, ng {}", r.cores, r.ng),
            );
            match Target::start_rtpengine(r) {
                Ok(t) => t,
                Err(e) => return (StopReason::Error, Some(e)),
            }
        }
        TargetChoice::Strait(s) => {
            say(
                p,
                t0,
                &format!(
                    "starting {} on cores {:?}, ng {}",
                    s.bin.display(),
                    s.cores,
                    s.ng
                ),
            );
            match Target::start_strait(s) {
                Ok(t) => {
                    say(
                        p,
                        t0,
                        &format!(
                            "strait pid {:?}, data plane pids {:?}",
                            t.pid, t.helper_pids
                        ),
                    );
                    t
                }
                Err(e) => return (StopReason::Error, Some(e)),
            }
        }
        TargetChoice::Ng(a) => match Target::external(*a, o.target_pid) {
            Ok(t) => t,
            Err(e) => return (StopReason::Error, Some(e)),
        },
    };
    record.target.version = target.version.clone();
    record.target.pid = target.pid;
    record.label = o.label.clone().unwrap_or_default();
    let target_pids: Vec<u32> = target
        .pid
        .into_iter()
        .chain(target.helper_pids.iter().copied())
        .collect();
    let setup = match SetupContext::new(o.scenario) {
        Ok(s) => s,
        Err(e) => return (StopReason::Error, Some(e)),
    };

    let opus = if o.scenario == Scenario::Transcode {
        match scenario::opus_frames(50) {
            Ok(f) => f,
            Err(e) => return (StopReason::Error, Some(format!("opus encoder: {e}"))),
        }
    } else {
        Vec::new()
    };
    let cfg = GenConfig {
        opus_frames: Arc::new(opus),
        hard_deadline_ns: mono_ns() + ((o.max_secs + 30.0) * 1e9) as u64,
    };
    let (res_tx, res_rx) = channel();
    let mut threads = Vec::new();
    for i in 0..o.gen_threads.max(1) {
        let cores = o
            .gen_cores
            .get(i % o.gen_cores.len().max(1))
            .map(|&c| vec![c])
            .unwrap_or_default();
        match generator::spawn(i, cores, cfg.clone(), res_tx.clone()) {
            Ok(t) => threads.push(t),
            Err(e) => {
                return (
                    StopReason::Error,
                    Some(format!("generator thread {i}: {e}")),
                )
            }
        }
    }
    let gen_cores_used = if o.gen_cores.is_empty() {
        threads.len().min(record.config.machine_cpus)
    } else {
        threads.len().min(o.gen_cores.len())
    }
    .max(1);
    let mut ng = match NgClient::new(target.ng, Duration::from_millis(1000), 4) {
        Ok(c) => c,
        Err(e) => return (StopReason::Error, Some(format!("ng socket: {e}"))),
    };
    let mut runner = Runner {
        o,
        p,
        t0,
        deadline,
        threads,
        results: res_rx,
        gen_cores_used,
        call_ids: Vec::new(),
        window_id: 0,
        setup,
        first_call: None,
    };
    let run_tag = format!("slt{}-{}", std::process::id(), mono_ns() % 1_000_000_007);
    let mut ports = PortAllocator::new(o.local_ip, o.gen_ports.0, o.gen_ports.1);
    let mut calls = o.plan.start;
    let mut step_no = 0;
    let total_steps = o.plan.steps();
    let drain = Duration::from_millis(o.drain_ms);
    let outcome = loop {
        step_no += 1;
        // Will the step fit in the budget? (setup time is estimated from the last step)
        let last_setup_per_call = record
            .steps
            .last()
            .map_or(0.002, |s| s.setup_secs / f64::from(s.calls.max(1)));
        let new_calls = calls.saturating_sub(runner.call_ids.len() as u32);
        let need = Duration::from_secs_f64(
            o.warmup_secs + o.step_secs + last_setup_per_call * f64::from(new_calls) + 1.0,
        ) + drain;
        if Instant::now() + need > deadline {
            say(runner.p, t0, "time limit: no room for another step");
            break (StopReason::TimeLimit, None);
        }
        say(
            runner.p,
            t0,
            &format!(
                "step {step_no}/{total_steps}: {calls} calls ({} pkt/s offered)",
                calls * 100
            ),
        );
        let grown = runner.grow(&mut ng, &mut ports, &run_tag, calls);
        if record.first_call.is_none() {
            record.first_call = runner.first_call.take();
        }
        let setup_secs = match grown {
            Ok(s) => s,
            Err(e) => break (StopReason::Error, Some(e)),
        };
        let warm_until = Instant::now() + Duration::from_secs_f64(o.warmup_secs);
        wait_with_progress(
            warm_until,
            runner.p,
            t0,
            &format!("{calls} calls: warming up"),
            &runner.threads,
        );
        if !target.alive() {
            break (StopReason::Error, Some("the target process exited".into()));
        }
        let step = match runner.measure(calls, setup_secs, &target_pids) {
            Ok(s) => s,
            Err(e) => break (StopReason::Error, Some(e)),
        };
        say(
            runner.p,
            t0,
            &format!(
                "{calls} calls: loss {:.4}% (A->B {}, B->A {}), dup {}, reord {}, p50 {:.2} ms, p99 {:.2} ms, jitter p99 {:.2} ms | target busy {} (process {}) | generator cpu {}, late p99 {:.2} ms | {}{}",
                step.loss * 100.0,
                step.a_to_b.lost,
                step.b_to_a.lost,
                step.a_to_b.duplicates + step.b_to_a.duplicates,
                step.a_to_b.reordered + step.b_to_a.reordered,
                step.p50_ms,
                step.p99_ms,
                step.jitter_p99_ms,
                step.target_cpu.busy.map_or("?".into(), pct),
                step.target_cpu.process_cores.map_or("?".into(), pct),
                pct(step.generator.cpu),
                step.generator.late_p99_ms,
                if step.verdict.sla_ok { "SLA ok".to_string() } else { format!("SLA BROKEN: {}", step.verdict.sla_reason) },
                if step.verdict.gen_saturated { format!(" | GENERATOR SATURATED: {}", step.verdict.gen_reason) } else { String::new() },
            ),
        );
        let verdict = step.verdict.clone();
        record.steps.push(step);
        match ramp::next_step(&o.plan, calls, &verdict) {
            Decision::Next(n) => calls = n,
            Decision::Stop(r) => break (r, None),
        }
    };
    // Teardown: stop traffic, delete calls (bounded), stop the target.
    for t in &mut runner.threads {
        t.stop();
    }
    let ids = std::mem::take(&mut runner.call_ids);
    let mut failed = 0;
    let mut ng = NgClient::new(target.ng, Duration::from_millis(300), 2).ok();
    let del_deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        if Instant::now() >= del_deadline || !target.alive() {
            failed += 1;
            continue;
        }
        if let Some(c) = ng.as_mut() {
            if scenario::delete_call(c, id).is_err() {
                failed += 1;
            }
        }
    }
    say(
        runner.p,
        t0,
        &format!("deleted {} calls ({failed} failed)", ids.len() - failed),
    );
    target.stop();
    outcome
}
