//! The `strait` binary.
//!
//! Today it is the control plane's skeleton: it starts the data plane on
//! the embedded default configuration (or attaches to one already running),
//! recovers its session table, and reports traffic until SIGINT/SIGTERM.
//! SIP signalling (WS/WSS, UDP/TCP/TLS), the registrar and the B2BUA are
//! not built yet, so nothing creates calls through this binary; legs can be
//! set up with `strait-dpctl`.
#![allow(clippy::print_stdout)] // A command-line program: stdout is its interface.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait::dataplane::{DataPlane, Spawn};

fn main() -> ExitCode {
    let spawn = Spawn {
        program: Spawn::sibling_program(),
        shm: "/dev/shm/strait-dataplane".into(),
        cores: Vec::new(),
        bind: std::net::Ipv4Addr::LOCALHOST.into(),
        ports: (20000, 29999),
        io: "auto".into(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("strait: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut dp = match DataPlane::attach_or_spawn(&spawn) {
        Ok(dp) => dp,
        Err(e) => {
            eprintln!("strait: {e}");
            return ExitCode::FAILURE;
        }
    };
    match dp.snapshot(Duration::from_secs(5)) {
        Ok(legs) => println!(
            "strait: attached to the data plane at {} ({} workers, {} legs recovered)",
            dp.path().display(),
            dp.workers(),
            legs.len()
        ),
        Err(e) => {
            eprintln!("strait: {e}");
            dp.stop_spawned(Duration::from_secs(5));
            return ExitCode::FAILURE;
        }
    }
    println!("strait: SIP signalling is not built yet; media legs can be set up with strait-dpctl. Ctrl-C stops.");
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let t = dp.totals();
            println!(
                "strait: packets in={} out={} dropped={}",
                t.packets_in, t.packets_out, t.dropped
            );
        }
    }
    dp.stop_spawned(Duration::from_secs(5));
    println!("strait: stopped");
    ExitCode::SUCCESS
}
