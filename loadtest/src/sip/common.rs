//! What the two SIP scenarios share: options, progress lines, starting
//! Strait and the pool of simulated browsers, CPU snapshots, the record
//! skeleton.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::browser::Browser;
use super::launch::{self, Strait, StraitOptions};
use super::wss::{self, Conn, Incoming};
use crate::cpu;
use crate::record::{SipConfigRecord, SipRunRecord, TargetCpuRecord, TargetRecord};
use crate::stats::{new_histogram, Percentiles};

/// Options both SIP scenarios take.
#[derive(Debug, Clone)]
pub struct SipCommon {
    /// The `strait` binary.
    pub strait_bin: PathBuf,
    /// Cores for Strait and its data plane.
    pub target_cores: Vec<usize>,
    /// Cores for this tool (its threads are pinned there).
    pub gen_cores: Vec<usize>,
    /// Strait's UDP port; its WSS port is one above, the legacy endpoint
    /// listens 20 above.
    pub sip_port: u16,
    /// Strait's media ports.
    pub media_ports: (u16, u16),
    /// Our media ports (the simulated endpoints' RTP sockets).
    pub gen_ports: (u16, u16),
    /// Persistent WSS connections (one browser, one user each).
    pub connections: usize,
    /// Ring time of the legacy endpoint, ms.
    pub ring_ms: u64,
    /// Deadline of one operation, ms.
    pub timeout_ms: u64,
    /// Hard limit of the run, s.
    pub max_secs: f64,
    /// Worker threads of the SIP runtime (0: one per generator core).
    pub sip_threads: usize,
    /// Output directory.
    pub out: PathBuf,
    /// Label.
    pub label: Option<String>,
    /// Private network namespace (set up by the binary).
    pub netns: bool,
    /// Strait's log file (set by the binary).
    pub strait_log: PathBuf,
    /// The command line (for the record).
    pub command: String,
}

impl SipCommon {
    /// Defaults for `cpus` online CPUs: Strait on the last core, this tool
    /// on the others.
    pub fn defaults(cpus: usize) -> Self {
        let target_cores = if cpus > 1 { vec![cpus - 1] } else { Vec::new() };
        let gen_cores = if cpus > 1 {
            (0..cpus - 1).collect()
        } else {
            Vec::new()
        };
        SipCommon {
            strait_bin: crate::target::default_strait_bin(),
            target_cores,
            gen_cores,
            sip_port: 20060,
            media_ports: (24000, 31998),
            gen_ports: (10000, 19998),
            connections: 100,
            ring_ms: 0,
            timeout_ms: 5000,
            max_secs: 300.0,
            sip_threads: 0,
            out: PathBuf::from("loadtest-out"),
            label: None,
            netns: false,
            strait_log: PathBuf::new(),
            command: String::new(),
        }
    }

    /// Loopback.
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    /// Strait's UDP listener.
    pub fn udp(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.sip_port)
    }

    /// Strait's WSS listener.
    pub fn wss(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.sip_port + 1)
    }

    /// The legacy endpoint.
    pub fn legacy(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.sip_port + 20)
    }

    /// The per-operation deadline.
    pub fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Writes a progress line.
pub fn say(p: &mut dyn Write, t0: Instant, msg: &str) {
    let _ = writeln!(p, "[{:6.1}s] {msg}", t0.elapsed().as_secs_f64());
}

/// A fraction as a percent string.
pub fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The record skeleton of a run.
pub fn new_record(c: &SipCommon, scenario: &str, config: SipConfigRecord) -> SipRunRecord {
    SipRunRecord {
        tool: format!("strait-loadtest {}", env!("CARGO_PKG_VERSION")),
        started_utc: crate::record::utc_string(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        ),
        label: c
            .label
            .clone()
            .unwrap_or_else(|| format!("strait {scenario}")),
        scenario: scenario.to_string(),
        target: TargetRecord {
            kind: "strait".into(),
            version: Some(Strait::version()),
            ng: format!("sip wss {} udp {}", c.wss(), c.udp()),
            pid: None,
            cores: c.target_cores.clone(),
        },
        command: c.command.clone(),
        config: SipConfigRecord {
            connections: c.connections,
            ring_ms: c.ring_ms,
            timeout_ms: c.timeout_ms,
            gen_cores: c.gen_cores.clone(),
            max_secs: c.max_secs,
            netns: c.netns,
            machine_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ..config
        },
        baseline_core_busy: Vec::new(),
        rate_steps: Vec::new(),
        call_steps: Vec::new(),
        stop: "completed".into(),
        sustained_rate: None,
        max_clean_calls: None,
        error: None,
        summary: String::new(),
        elapsed_secs: 0.0,
    }
}

/// Pins this thread to the generator cores and records one second of
/// core load before the run (warned about above 10 %).
pub fn baseline(
    c: &SipCommon,
    p: &mut dyn Write,
    t0: Instant,
    r: &mut SipRunRecord,
) -> Result<(), String> {
    crate::generator::pin_current_thread(&c.gen_cores)
        .map_err(|e| format!("pinning to {:?}: {e}", c.gen_cores))?;
    r.baseline_core_busy = cpu::baseline(c.target_cores.iter().chain(&c.gen_cores).copied());
    let shown: Vec<String> = r
        .baseline_core_busy
        .iter()
        .map(|(c, b)| format!("core {c} {}", pct(*b)))
        .collect();
    if r.baseline_core_busy.iter().any(|(_, b)| *b > 0.10) {
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
    Ok(())
}

/// Starts Strait for `c` with `users` users.
pub fn start_strait(c: &SipCommon, users: usize, no_answer_s: u32) -> Result<Strait, String> {
    let dir = std::env::temp_dir().join(format!(
        "strait-loadtest-sip-{}-{}",
        std::process::id(),
        crate::generator::mono_ns() % 1_000_000_007
    ));
    let o = StraitOptions {
        bin: c.strait_bin.clone(),
        wss: c.wss(),
        udp: c.udp(),
        next_hop: c.legacy(),
        media_ports: c.media_ports,
        cores: c.target_cores.clone(),
        users: launch::users(users),
        no_answer_s,
        dir: dir.clone(),
        log: c.strait_log.clone(),
    };
    let r = Strait::start(&o);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

/// The SIP runtime: worker threads pinned to the generator cores.
pub fn runtime(c: &SipCommon) -> Result<tokio::runtime::Runtime, String> {
    let threads = if c.sip_threads > 0 {
        c.sip_threads
    } else {
        c.gen_cores.len().max(1)
    };
    let cores = c.gen_cores.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("sip")
        .on_thread_start(move || {
            let _ = crate::generator::pin_current_thread(&cores);
        })
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Opens `n` connections to Strait's WSS listener (32 at a time), one
/// browser (user `lt<i>`) on each, and registers every one of them.
pub async fn open_browsers(
    c: &SipCommon,
    strait: &Strait,
    n: usize,
    p: &mut dyn Write,
    t0: Instant,
) -> Result<(Vec<Browser>, mpsc::UnboundedReceiver<Incoming>), String> {
    let tls = wss::client_config(strait.cert.clone()).map_err(|e| e.to_string())?;
    if strait.cert.is_none() {
        say(
            p,
            t0,
            "warning: Strait's certificate not found in its state directory: accepting any",
        );
    }
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let users = launch::users(n);
    let mut browsers: Vec<Browser> = Vec::with_capacity(n);
    for chunk in users.chunks(32).enumerate() {
        let (ci, chunk) = chunk;
        let mut tasks = Vec::new();
        for (j, (user, pw)) in chunk.iter().enumerate() {
            let index = ci * 32 + j;
            let tls = Arc::clone(&tls);
            let in_tx = in_tx.clone();
            let wss = strait.wss;
            let within = c.op_timeout();
            let (user, pw) = (user.clone(), pw.clone());
            tasks.push(tokio::spawn(async move {
                let conn = Conn::connect(index, wss, tls, in_tx, within)
                    .await
                    .map_err(|e| format!("connection {index}: {e}"))?;
                let b = Browser::new(conn, &user, &pw, "127.0.0.1");
                b.register(3600, Instant::now() + within)
                    .await
                    .map_err(|e| format!("{user}: first REGISTER {e}"))?;
                Ok::<Browser, String>(b)
            }));
        }
        for t in tasks {
            browsers.push(t.await.map_err(|e| e.to_string())??);
        }
    }
    say(
        p,
        t0,
        &format!("{n} browsers connected over WSS and registered"),
    );
    Ok((browsers, in_rx))
}

/// CPU counters at one moment.
#[derive(Debug, Clone)]
pub struct CpuSnap {
    cores: Vec<cpu::CoreTimes>,
    strait: Option<f64>,
    all: Option<f64>,
    me: f64,
    wall: Instant,
}

impl CpuSnap {
    /// Seconds since `earlier`.
    pub fn wall_secs_since(&self, earlier: &CpuSnap) -> f64 {
        self.wall
            .duration_since(earlier.wall)
            .as_secs_f64()
            .max(1e-3)
    }

    /// Busy fraction of `cores` since `earlier` (mean, per core).
    pub fn core_busy(&self, cores: &[usize], earlier: &CpuSnap) -> (f64, Vec<f64>) {
        cpu::busy_of(cores, &earlier.cores, &self.cores)
    }
}

/// Takes a snapshot (`pids[0]` is Strait, the rest its data plane).
pub fn snap(pids: &[u32]) -> CpuSnap {
    let per: Vec<Option<f64>> = pids.iter().map(|&p| cpu::read_pid_cpu(p).ok()).collect();
    CpuSnap {
        cores: cpu::read_cores().unwrap_or_default(),
        strait: per.first().copied().flatten(),
        all: per
            .first()
            .copied()
            .flatten()
            .map(|s| s + per.iter().skip(1).flatten().sum::<f64>()),
        me: cpu::read_pid_cpu(std::process::id()).unwrap_or(0.0),
        wall: Instant::now(),
    }
}

/// The target's CPU, Strait's own cores, and this tool's CPU fraction
/// between two snapshots.
pub fn cpu_between(c: &SipCommon, a: &CpuSnap, b: &CpuSnap) -> (TargetCpuRecord, Option<f64>, f64) {
    let secs = b.wall.duration_since(a.wall).as_secs_f64().max(1e-3);
    let (busy, core_busy) = if c.target_cores.is_empty() {
        (None, Vec::new())
    } else {
        let (m, per) = cpu::busy_of(&c.target_cores, &a.cores, &b.cores);
        (Some(m), per)
    };
    let process_cores = match (a.all, b.all) {
        (Some(x), Some(y)) => Some((y - x).max(0.0) / secs),
        _ => None,
    };
    let strait = match (a.strait, b.strait) {
        (Some(x), Some(y)) => Some((y - x).max(0.0) / secs),
        _ => None,
    };
    let gen_cores = c.gen_cores.len().max(1) as f64;
    let gen = (b.me - a.me).max(0.0) / secs / gen_cores;
    (
        TargetCpuRecord {
            busy,
            busy_source: "core".into(),
            core_busy_mean: busy,
            core_busy,
            process_cores,
        },
        strait,
        gen,
    )
}

/// Histogram helper: records `d` (µs, saturating).
pub fn record_us(h: &mut hdrhistogram::Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    let _ = h.record(us.min(crate::stats::HIST_MAX_US));
}

/// Percentiles of durations.
pub fn percentiles_of(ds: &[Duration]) -> Percentiles {
    let mut h = new_histogram();
    for d in ds {
        record_us(&mut h, *d);
    }
    Percentiles::of(&h)
}
