//! `strait-dataplane`: the data-plane process. Creates the shared-memory
//! region, starts one pinned worker per configured core and forwards media
//! by the rules the control plane puts in the rings, until SIGTERM/SIGINT.
//! It keeps running when the control plane exits or is killed.
#![allow(clippy::print_stdout)] // A command-line program: stdout is its interface.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strait_dataplane::io::{BackendKind, IoConfig};
use strait_dataplane::pipeline::CoreConfig;
use strait_dataplane::worker::{self, WorkerConfig};
use strait_rules::region::{Region, RegionLayout};
use strait_rules::ring::RingGeometry;

const USAGE: &str = "usage: strait-dataplane [--shm PATH] [--workers N] [--cores LIST] [--bind IP]
                        [--port-min P] [--port-max P] [--io auto|uring|mmsg] [--max-legs N]

  --shm PATH      shared-memory region the control plane attaches to (default /dev/shm/strait-dataplane)
  --workers N     number of workers (default: the number of --cores, else 1)
  --cores LIST    comma-separated cores to pin workers to, in order (default: no pinning)
  --bind IP       address media sockets bind to (default 127.0.0.1)
  --port-min P    lowest media port, even (default 20000)
  --port-max P    highest media port (default 29999; keep the range clear of the kernel's
                  ephemeral ports, net.ipv4.ip_local_port_range, 32768-60999 by default)
  --io KIND       I/O backend: auto (io_uring, else recvmmsg), uring or mmsg (default auto)
  --max-legs N    legs per worker, and counter slots in the region (default 20000)
  --coalesce-us U under load (over 20k packets/s per worker), let packets accumulate up to U µs per
                  wake-up: fewer system calls and context switches for at most U µs of added
                  latency (default 200; 0 handles every packet at once)";

struct Args {
    shm: String,
    workers: Option<u32>,
    cores: Vec<usize>,
    bind: IpAddr,
    port_min: u16,
    port_max: u16,
    io: BackendKind,
    max_legs: u32,
    coalesce_us: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        shm: "/dev/shm/strait-dataplane".into(),
        workers: None,
        cores: Vec::new(),
        bind: "127.0.0.1".parse().expect("literal address"),
        port_min: 20000,
        port_max: 29999,
        io: BackendKind::Auto,
        max_legs: 20_000,
        coalesce_us: worker::COALESCE_WINDOW.as_micros() as u64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag} {value}: {what}");
        match flag.as_str() {
            "--shm" => a.shm = value,
            "--workers" => a.workers = Some(value.parse().map_err(|_| bad("not a number"))?),
            "--cores" => {
                a.cores = value
                    .split(',')
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad("expected a comma-separated list of core numbers"))?
            }
            "--bind" => a.bind = value.parse().map_err(|_| bad("not an IP address"))?,
            "--port-min" => a.port_min = value.parse().map_err(|_| bad("not a port"))?,
            "--port-max" => a.port_max = value.parse().map_err(|_| bad("not a port"))?,
            "--io" => {
                a.io = match value.as_str() {
                    "auto" => BackendKind::Auto,
                    "uring" => BackendKind::Uring,
                    "mmsg" => BackendKind::Mmsg,
                    _ => return Err(bad("expected auto, uring or mmsg")),
                }
            }
            "--max-legs" => a.max_legs = value.parse().map_err(|_| bad("not a number"))?,
            "--coalesce-us" => {
                a.coalesce_us = value.parse().map_err(|_| bad("not a number"))?;
                if a.coalesce_us > 10_000 {
                    return Err(bad("at most 10000 µs"));
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("strait-dataplane: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let workers = args.workers.unwrap_or(if args.cores.is_empty() {
        1
    } else {
        args.cores.len() as u32
    });
    let layout = RegionLayout {
        workers,
        ring: RingGeometry {
            capacity: 4096,
            slot_size: 2048,
        },
        max_legs: args.max_legs.saturating_mul(workers),
        port_min: args.port_min,
        port_max: args.port_max,
    };
    let region = match Region::create(&args.shm, layout) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("strait-dataplane: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("strait-dataplane: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut threads = Vec::new();
    for index in 0..workers {
        let config = WorkerConfig {
            index,
            core: args.cores.get(index as usize).copied(),
            bind_ip: args.bind,
            io: IoConfig {
                kind: args.io,
                ..IoConfig::default()
            },
            core_config: CoreConfig {
                max_legs: args.max_legs as usize,
            },
            coalesce_window: std::time::Duration::from_micros(args.coalesce_us),
        };
        let (region, worker_stop) = (region.clone(), stop.clone());
        let t = std::thread::Builder::new()
            .name(format!("strait-worker-{index}"))
            .spawn(move || {
                let r = worker::run(config, region, worker_stop.clone());
                // One worker failing stops the process: its ports are dead.
                if r.is_err() {
                    worker_stop.store(true, Ordering::Relaxed);
                }
                r
            });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("strait-dataplane: cannot start worker {index}: {e}");
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
    println!(
        "strait-dataplane: ready shm={} workers={workers} ports={}-{} bind={}",
        args.shm, args.port_min, args.port_max, args.bind
    );
    let mut failed = false;
    for (i, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok(Ok(report)) => println!(
                "strait-dataplane: worker {i} ({}) rx={} tx={} punted={} rules={} rejected={} drops={:?}",
                report.backend,
                report.io.rx_packets,
                report.io.tx_packets,
                report.core.punted,
                report.core.rules_applied,
                report.core.rules_rejected,
                report.core.drops
            ),
            Ok(Err(e)) => {
                eprintln!("strait-dataplane: worker {i} failed: {e}");
                failed = true;
            }
            Err(_) => {
                eprintln!("strait-dataplane: worker {i} panicked");
                failed = true;
            }
        }
    }
    let _ = std::fs::remove_file(&args.shm);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
