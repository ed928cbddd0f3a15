//! The `strait` binary.
//!
//! It starts the data plane on the configuration (or attaches to one
//! already running), recovers its session table, then runs the SIP
//! signalling service (WS/WSS, UDP/TCP/TLS listeners, digest-authenticated
//! REGISTER, the registrar, the B2BUA that bridges browsers and legacy SIP,
//! the web phone page) and rtpengine's ng control protocol (for Kamailio
//! and OpenSIPS) until SIGINT/SIGTERM, reporting traffic and signalling
//! counters.
#![allow(clippy::print_stdout)] // A command-line program: stdout is its interface.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait::config::Config;
use strait::dataplane::{DataPlane, Spawn};
use strait::signalling::{MediaPlane, Signalling, StartError};

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
    let adopted = match dp.snapshot(Duration::from_secs(5)) {
        Ok(legs) => {
            println!(
                "strait: attached to the data plane at {} ({} workers, {} legs recovered)",
                dp.path().display(),
                dp.workers(),
                legs.len()
            );
            legs
        }
        Err(e) => {
            eprintln!("strait: {e}");
            dp.stop_spawned(Duration::from_secs(5));
            return ExitCode::FAILURE;
        }
    };
    let media = MediaPlane {
        layout: dp.layout(),
        ends: dp.take_ends(),
        adopted,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("strait: cannot start the signalling runtime: {e}");
            dp.stop_spawned(Duration::from_secs(5));
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(serve(&config, &dp, media, &stop));
    dp.stop_spawned(Duration::from_secs(5));
    if let Err(e) = served {
        eprintln!("strait: {e}");
        return ExitCode::FAILURE;
    }
    println!("strait: stopped");
    ExitCode::SUCCESS
}

/// Runs the signalling service until `stop` is set, reporting traffic
/// every 10 s and signalling counters every 60 s.
async fn serve(
    config: &Config,
    dp: &DataPlane,
    media: MediaPlane,
    stop: &AtomicBool,
) -> Result<(), StartError> {
    let svc = Signalling::start_with(config, Some(media)).await?;
    let report = svc.open_report();
    if let Some((path, why)) = &report.moved_aside {
        eprintln!(
            "strait: warning: the registrar store was unreadable ({why}); moved to {} and started empty",
            path.display()
        );
    }
    if report.restored > 0 {
        println!("strait: {} registrations restored", report.restored);
    }
    if let Some(cert) = svc.generated_certificate() {
        println!(
            "strait: generated a self-signed certificate {} (set tls.cert/tls.key for a real one)",
            cert.display()
        );
    }
    for (t, addr) in svc.listeners() {
        println!(
            "strait: listening sip+{} {addr}",
            t.as_str().to_ascii_lowercase()
        );
    }
    if let Some(addr) = svc.ng_addr() {
        println!("strait: listening ng (udp+tcp) {addr}");
    }
    println!("strait: ready. Ctrl-C stops.");
    let mut last_traffic = Instant::now();
    let mut last_counters = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        if last_traffic.elapsed() >= Duration::from_secs(10) {
            last_traffic = Instant::now();
            let t = dp.totals();
            let (calls, _, media) = svc.calls();
            println!(
                "strait: calls={calls} legs={} packets in={} out={} dropped={}",
                media.map_or(0, |m| m.0),
                t.packets_in,
                t.packets_out,
                t.dropped
            );
        }
        if last_counters.elapsed() >= Duration::from_secs(60) {
            last_counters = Instant::now();
            let r = svc.registrar_stats();
            let (_, cc, media) = svc.calls();
            println!(
                "strait: sip {}; bindings={} aors={}; calls {cc:?}; media {:?}",
                svc.counters(),
                r.bindings,
                r.aors,
                media.map(|m| m.1)
            );
        }
    }
    svc.shutdown().await;
    Ok(())
}
