//! The system under test: either an rtpengine this tool starts (userspace
//! forwarding only, pinned to the target cores, ng and media on loopback,
//! log to a file) and stops again, or an already running ng target.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ng::NgClient;

/// How to start rtpengine.
#[derive(Debug, Clone)]
pub struct RtpengineOptions {
    /// The binary (default `/usr/bin/rtpengine`).
    pub bin: PathBuf,
    /// ng listen address (loopback).
    pub ng: SocketAddr,
    /// Media port range.
    pub port_min: u16,
    /// Media port range end.
    pub port_max: u16,
    /// `--num-threads`.
    pub threads: u32,
    /// Cores to pin it to (empty: no pinning).
    pub cores: Vec<usize>,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// `--log-level` (5 = notice).
    pub log_level: u32,
}

/// A running (or external) target.
#[derive(Debug)]
pub struct Target {
    /// `rtpengine` or `ng`.
    pub kind: String,
    /// Version string, if known.
    pub version: Option<String>,
    /// ng address.
    pub ng: SocketAddr,
    /// PID for CPU accounting, if known.
    pub pid: Option<u32>,
    /// Log file of a started target.
    pub log: Option<PathBuf>,
    child: Option<Child>,
}

/// Version of an rtpengine binary (`rtpengine --version`).
pub fn rtpengine_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.split_whitespace().nth(1).map(str::to_string)
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until the ng address answers `ping` (bounded by `within`); `child`
/// is checked for an early exit.
pub fn wait_for_ng(
    ng: SocketAddr,
    within: Duration,
    mut child: Option<&mut Child>,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut client = NgClient::new(ng, Duration::from_millis(200), 1).map_err(|e| e.to_string())?;
    loop {
        if client.ping().is_ok() {
            return Ok(());
        }
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(format!("target exited during startup ({status})"));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no ng pong from {ng} within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Target {
    /// Starts rtpengine and waits (up to 10 s) until it answers ng pings.
    pub fn start_rtpengine(o: &RtpengineOptions) -> Result<Target, String> {
        if !o.bin.exists() {
            return Err(format!(
                "{} not found (apt-get install rtpengine-daemon)",
                o.bin.display()
            ));
        }
        let log = File::create(&o.log).map_err(|e| format!("{}: {e}", o.log.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&o.bin);
        cmd.args([
            "--config-file=none".to_string(),
            "--foreground".into(),
            "--log-stderr".into(),
            "--table=-1".into(),
            format!("--interface={}", o.ng.ip()),
            format!("--listen-ng={}", o.ng),
            format!("--port-min={}", o.port_min),
            format!("--port-max={}", o.port_max),
            format!("--num-threads={}", o.threads.max(1)),
            format!("--log-level={}", o.log_level),
            "--timeout=600".into(),
            "--delete-delay=0".into(),
        ])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
        let cores = o.cores.clone();
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe syscalls (prctl, sched_setaffinity) on
        // stack data; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // Die with us, so an interrupted run leaves nothing behind.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if !cores.is_empty() {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_ZERO(&mut set);
                    for &c in &cores {
                        if c < 8 * std::mem::size_of::<libc::cpu_set_t>() {
                            libc::CPU_SET(c, &mut set);
                        }
                    }
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", o.bin.display()))?;
        let pid = child.id();
        if let Err(e) = wait_for_ng(o.ng, Duration::from_secs(10), Some(&mut child)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "rtpengine did not come up: {e}\n{}",
                log_tail(&o.log, 8)
            ));
        }
        Ok(Target {
            kind: "rtpengine".into(),
            version: rtpengine_version(&o.bin),
            ng: o.ng,
            pid: Some(pid),
            log: Some(o.log.clone()),
            child: Some(child),
        })
    }

    /// An already running target at `ng` (checked with a ping).
    pub fn external(ng: SocketAddr, pid: Option<u32>) -> Result<Target, String> {
        wait_for_ng(ng, Duration::from_secs(3), None)?;
        Ok(Target {
            kind: "ng".into(),
            version: None,
            ng,
            pid,
            log: None,
            child: None,
        })
    }

    /// Whether a started target is still running (external ones: always true).
    pub fn alive(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Stops a target this tool started: SIGTERM, up to 5 s, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signalling our own child by its pid; it has not been
            // reaped yet (we hold the Child), so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}
