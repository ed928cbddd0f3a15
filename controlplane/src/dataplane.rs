//! The control plane's handle on the data plane: start the
//! `strait-dataplane` process (or find one running), attach to its
//! shared-memory region, and recover the session table it holds.
//!
//! The data plane outlives the control plane on purpose: established calls
//! keep flowing while the control plane restarts. Attaching takes the
//! region's exclusive lock, so two control planes never drive one data plane.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strait_rules::abi::{counter, LegRule};
use strait_rules::control;
use strait_rules::region::{Region, RegionError};
use strait_rules::ring::{Consumer, Producer};

/// How to start a data plane.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// The `strait-dataplane` executable.
    pub program: PathBuf,
    /// Shared-memory region path.
    pub shm: PathBuf,
    /// Cores to pin workers to (one worker each); empty: one unpinned worker.
    pub cores: Vec<usize>,
    /// Address media sockets bind to.
    pub bind: std::net::IpAddr,
    /// Media port range.
    pub ports: (u16, u16),
    /// I/O backend: "auto", "uring" or "mmsg".
    pub io: String,
}

impl Spawn {
    /// The `strait-dataplane` next to the running executable.
    pub fn sibling_program() -> PathBuf {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("strait-dataplane")))
            .unwrap_or_else(|| PathBuf::from("strait-dataplane"))
    }
}

/// An attached data plane.
#[derive(Debug)]
pub struct DataPlane {
    region: Region,
    ends: Vec<(Producer, Consumer)>,
    child: Option<Child>,
}

/// Summed per-leg counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Packets received on all legs.
    pub packets_in: u64,
    /// Packets sent on all legs.
    pub packets_out: u64,
    /// Packets dropped (strangers, malformed, SRTP failures).
    pub dropped: u64,
}

impl DataPlane {
    /// Attaches to the data plane at `shm` if one runs there, else starts
    /// one with `spawn` and attaches to it.
    pub fn attach_or_spawn(spawn: &Spawn) -> Result<Self, String> {
        match Region::attach(&spawn.shm) {
            Ok(region) => return Ok(Self::with_region(region, None)),
            Err(RegionError::Io(..)) | Err(RegionError::NotInitialised(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        let mut cmd = Command::new(&spawn.program);
        cmd.arg("--shm")
            .arg(&spawn.shm)
            .args(["--bind", &spawn.bind.to_string()])
            .args(["--port-min", &spawn.ports.0.to_string()])
            .args(["--port-max", &spawn.ports.1.to_string()])
            .args(["--io", &spawn.io])
            .stdout(Stdio::piped());
        if !spawn.cores.is_empty() {
            let cores: Vec<String> = spawn.cores.iter().map(|c| c.to_string()).collect();
            cmd.args(["--cores", &cores.join(",")]);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spawn.program.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                let ready = line.contains("ready");
                // Relay the data plane's own report lines to our stdout.
                let _ = writeln!(std::io::stdout(), "{line}");
                if ready {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = child.kill();
            return Err("the data plane did not become ready within 10 s".into());
        }
        let region = Region::attach(&spawn.shm).map_err(|e| e.to_string())?;
        Ok(Self::with_region(region, Some(child)))
    }

    fn with_region(region: Region, child: Option<Child>) -> Self {
        let ends = (0..region.layout().workers)
            .map(|w| region.control_ends(w).expect("w < workers"))
            .collect();
        Self {
            region,
            ends,
            child,
        }
    }

    /// The region's path.
    pub fn path(&self) -> &Path {
        self.region.path()
    }

    /// The region's layout (workers, port range, counter slots).
    pub fn layout(&self) -> strait_rules::region::RegionLayout {
        self.region.layout()
    }

    /// Hands the ring ends to the one who drives the workers from now on
    /// (the signalling service); [`snapshot`](Self::snapshot) needs them, so
    /// take it first.
    pub fn take_ends(&mut self) -> Vec<(Producer, Consumer)> {
        std::mem::take(&mut self.ends)
    }

    /// Number of workers.
    pub fn workers(&self) -> u32 {
        self.region.layout().workers
    }

    /// Asks every worker for its legs and collects them (the session table
    /// a restarted control plane recovers).
    pub fn snapshot(&mut self, timeout: Duration) -> Result<Vec<LegRule>, String> {
        let mut legs = Vec::new();
        for (w, (tx, rx)) in self.ends.iter_mut().enumerate() {
            legs.extend(
                control::snapshot(tx, rx, timeout).map_err(|e| format!("worker {w}: {e}"))?,
            );
        }
        Ok(legs)
    }

    /// Sums the per-leg counters.
    pub fn totals(&self) -> Totals {
        let sum = control::leg_totals(&self.region);
        Totals {
            packets_in: sum[counter::PACKETS_IN],
            packets_out: sum[counter::PACKETS_OUT],
            dropped: sum[counter::DROPPED],
        }
    }

    /// Stops a data plane this handle started (SIGTERM, then waits up to
    /// `timeout`); one that was already running is left alone.
    pub fn stop_spawned(&mut self, timeout: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
