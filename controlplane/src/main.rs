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

use strait::config::Config;
use strait::dataplane::{DataPlane, Spawn};

const USAGE: &str = "usage: strait [--config FILE] [--check-config] [--print-default-config]

  --config FILE            TOML configuration; keys it lacks take the embedded default
  --check-config           validate the configuration and exit
  --print-default-config   print the embedded default configuration (every key, documented)";

fn main() -> ExitCode {
    let mut config_path = None;
    let mut check_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => match args.next() {
                Some(p) => config_path = Some(std::path::PathBuf::from(p)),
                None => {
                    eprintln!("strait: --config needs a file\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--check-config" => check_only = true,
            "--print-default-config" => {
                print!("{}", strait::config::DEFAULT_TOML);
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("strait: unknown option {a}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let config = match &config_path {
        Some(p) => Config::load(p),
        None => Ok(Config::default_config()),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strait: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("strait: configuration is valid");
        return ExitCode::SUCCESS;
    }
    let spawn = Spawn {
        program: Spawn::sibling_program(),
        shm: config.media.shm.clone(),
        cores: config.media.cores.clone(),
        bind: config.media.bind,
        ports: (config.media.port_min, config.media.port_max),
        io: config.media.io.clone(),
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
