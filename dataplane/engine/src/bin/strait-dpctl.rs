//! `strait-dpctl`: a minimal control plane for the data plane, for
//! operators, benchmarks and tests. It attaches to a running
//! `strait-dataplane`'s region and:
//!
//! - `relay`: sets up N relayed streams (leg A receives from a source port,
//!   leg B delivers to a sink port; plain RTP or SDES-SRTP -> RTP) and writes
//!   a pairs file in the format of the rtpengine anchor's load generator
//!   (`<relay port> <sink port> <base64 key|-> <source port>`); with `--hold`
//!   it stays attached, draining events, until killed;
//! - `snapshot`: re-attaches and recovers the session table from the
//!   workers (what a restarted control plane does), printing it;
//! - `counters`: sums the per-leg counters from shared memory without
//!   stopping any worker.
#![allow(clippy::print_stdout)] // A command-line program: stdout is its interface.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strait_rules::abi::{self, counter, Kind, LegRule};
use strait_rules::control;
use strait_rules::region::Region;
use strait_rules::ring::{Consumer, Producer, RingError};

const USAGE: &str = "usage:
  strait-dpctl relay    --shm PATH --streams N [--variant plain|srtp] [--a-base P] [--b-base P]
                        [--pairs-out FILE] [--timeout-ms MS] [--hold]
  strait-dpctl snapshot --shm PATH
  strait-dpctl counters --shm PATH";

struct Opts {
    cmd: String,
    shm: String,
    streams: u32,
    srtp: bool,
    a_base: u16,
    b_base: u16,
    pairs_out: Option<String>,
    timeout_ms: u32,
    hold: bool,
}

fn parse() -> Result<Opts, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or("missing command")?;
    let mut o = Opts {
        cmd,
        shm: "/dev/shm/strait-dataplane".into(),
        streams: 1,
        srtp: false,
        a_base: 10000,
        b_base: 20000,
        pairs_out: None,
        timeout_ms: 0,
        hold: false,
    };
    while let Some(flag) = it.next() {
        if flag == "--hold" {
            o.hold = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("{flag} {v}: not a number"))
        };
        match flag.as_str() {
            "--shm" => o.shm = v,
            "--streams" => o.streams = num(&v)?,
            "--variant" => {
                o.srtp = match v.as_str() {
                    "plain" => false,
                    "srtp" => true,
                    _ => return Err(format!("--variant {v}: expected plain or srtp")),
                }
            }
            "--a-base" => o.a_base = num(&v)? as u16,
            "--b-base" => o.b_base = num(&v)? as u16,
            "--pairs-out" => o.pairs_out = Some(v),
            "--timeout-ms" => o.timeout_ms = num(&v)?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

/// A small deterministic generator for key material (xorshift64*), seeded
/// from the clock and pid: test keys, not secrets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn push(tx: &mut Producer, kind: Kind, body: &[u8]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tx.push(kind as u16, body) {
            Ok(()) => return Ok(()),
            Err(RingError::Full) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200))
            }
            Err(e) => return Err(format!("rule ring: {e}")),
        }
    }
}

/// Drains events from every worker for `wait`, returning rejections.
fn drain(rx: &mut [Consumer], wait: Duration) -> Result<Vec<abi::RuleRejected>, String> {
    let mut rejected = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        let mut any = false;
        for c in rx.iter_mut() {
            while let Some(r) = c
                .pop(|kind, body| {
                    (kind == Kind::RuleRejected as u16)
                        .then(|| bytemuck::try_pod_read_unaligned::<abi::RuleRejected>(body).ok())
                        .flatten()
                })
                .map_err(|e| format!("event ring: {e}"))?
            {
                any = true;
                rejected.extend(r);
            }
        }
        if Instant::now() >= deadline {
            return Ok(rejected);
        }
        if !any {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn relay(o: &Opts) -> Result<(), String> {
    let region = Region::attach(&o.shm).map_err(|e| e.to_string())?;
    let layout = region.layout();
    let mut ends: Vec<(Producer, Consumer)> = (0..layout.workers)
        .map(|w| region.control_ends(w).expect("w < workers"))
        .collect();
    let mut rng = Rng(((std::process::id() as u64) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64))
        | 1);
    let mut pairs = String::new();
    for i in 0..o.streams {
        let pa = layout.port_min as u32 + 4 * i;
        let pb = pa + 2;
        if pb + 1 > u32::from(layout.port_max) {
            return Err(format!(
                "{} streams need more ports than {}-{}",
                o.streams, layout.port_min, layout.port_max
            ));
        }
        let src = u32::from(o.a_base) + i;
        let sink = u32::from(o.b_base) + i;
        if src > 65535 || sink > 65535 {
            return Err("source or sink port past 65535".into());
        }
        let mut a: LegRule = bytemuck::Zeroable::zeroed();
        a.leg_id = u64::from(2 * i + 1);
        a.peer_leg_id = u64::from(2 * i + 2);
        a.counter_slot = 2 * i;
        a.local_port = pa as u16;
        a.local_rtcp_port = pa as u16 + 1;
        a.media_timeout_ms = o.timeout_ms;
        a.remote_rtp =
            abi::Addr::from_socket_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, src as u16)));
        a.remote_rtcp =
            abi::Addr::from_socket_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, src as u16 + 1)));
        a.pt_map[0] = [0xFF, 0xFF];
        let mut key = "-".to_string();
        if o.srtp {
            let mut material = [0u8; 30];
            rng.fill(&mut material);
            a.srtp_rx.suite = 1;
            a.srtp_rx.key.copy_from_slice(&material[..16]);
            a.srtp_rx.salt.copy_from_slice(&material[16..]);
            key = base64(&material);
        }
        let mut b = a;
        b.leg_id = u64::from(2 * i + 2);
        b.peer_leg_id = u64::from(2 * i + 1);
        b.counter_slot = 2 * i + 1;
        b.local_port = pb as u16;
        b.local_rtcp_port = pb as u16 + 1;
        b.remote_rtp =
            abi::Addr::from_socket_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, sink as u16)));
        b.remote_rtcp =
            abi::Addr::from_socket_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, sink as u16 + 1)));
        b.srtp_rx = bytemuck::Zeroable::zeroed();
        let wa = layout.worker_for_port(a.local_port).expect("port in range") as usize;
        let wb = layout.worker_for_port(b.local_port).expect("port in range") as usize;
        push(&mut ends[wa].0, Kind::AddLeg, bytemuck::bytes_of(&a))?;
        push(&mut ends[wb].0, Kind::AddLeg, bytemuck::bytes_of(&b))?;
        pairs.push_str(&format!("{pa} {sink} {key} {src}\n"));
    }
    // The producers stay alive (and attached) for --hold; the consumers drain events.
    let (_producers, mut rx): (Vec<Producer>, Vec<Consumer>) = ends.into_iter().unzip();
    let rejected = drain(&mut rx, Duration::from_millis(300))?;
    if !rejected.is_empty() {
        return Err(format!(
            "{} rules rejected, first: leg {} reason {}",
            rejected.len(),
            rejected[0].leg_id,
            rejected[0].reason
        ));
    }
    if let Some(path) = &o.pairs_out {
        std::fs::write(path, pairs).map_err(|e| format!("{path}: {e}"))?;
    }
    println!("ready streams={} legs={}", o.streams, 2 * o.streams);
    let _ = std::io::stdout().flush();
    if o.hold {
        // Stay attached as "the control plane" until killed.
        loop {
            let rejected = drain(&mut rx, Duration::from_millis(500))?;
            if !rejected.is_empty() {
                eprintln!("{} rules rejected", rejected.len());
            }
        }
    }
    Ok(())
}

fn snapshot(o: &Opts) -> Result<(), String> {
    let region = Region::attach(&o.shm).map_err(|e| e.to_string())?;
    let layout = region.layout();
    let mut legs: Vec<LegRule> = Vec::new();
    for w in 0..layout.workers {
        let (mut tx, mut rx) = region.control_ends(w).expect("w < workers");
        legs.extend(
            control::snapshot(&mut tx, &mut rx, Duration::from_secs(5))
                .map_err(|e| format!("worker {w}: {e}"))?,
        );
    }
    legs.sort_by_key(|l| l.leg_id);
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. piped into `head`) ends the listing quietly.
    let _ = writeln!(out, "legs={}", legs.len());
    for l in &legs {
        let r = writeln!(
            out,
            "leg {} peer {} port {} remote {} srtp_rx {} srtp_tx {} flags {:#x}",
            l.leg_id,
            l.peer_leg_id,
            l.local_port,
            l.remote_rtp
                .to_socket_addr()
                .map_or("-".to_string(), |a| a.to_string()),
            l.srtp_rx.suite,
            l.srtp_tx.suite,
            l.flags
        );
        if r.is_err() {
            break;
        }
    }
    Ok(())
}

fn counters(o: &Opts) -> Result<(), String> {
    // Read-only: works beside an attached control plane.
    let region = Region::observe(&o.shm).map_err(|e| e.to_string())?;
    let sum = control::leg_totals(&region);
    println!(
        "packets_in={} bytes_in={} packets_out={} bytes_out={} lost={} srtp_auth_failed={} replays={} nacks={} resends={} dropped={}",
        sum[counter::PACKETS_IN],
        sum[counter::BYTES_IN],
        sum[counter::PACKETS_OUT],
        sum[counter::BYTES_OUT],
        sum[counter::LOST],
        sum[counter::SRTP_AUTH_FAILED],
        sum[counter::REPLAYS],
        sum[counter::NACKS],
        sum[counter::RESENDS],
        sum[counter::DROPPED]
    );
    use strait_rules::abi::worker_stat as w;
    for i in 0..region.layout().workers {
        let c = region.worker_stats(i).expect("i < workers");
        let v = |k: usize| c[k].load(Ordering::Relaxed);
        let drops: Vec<String> = (0..strait_dataplane::pipeline::DROP_REASONS)
            .map(|d| v(w::DROPS + d).to_string())
            .collect();
        println!(
            "worker {i}: backend={} legs={} rx={} tx={} rx_batches={} tx_dropped={} io_errors={} punted={} stun_answered={} rules={} rejected={} events_lost={} drops_by_reason={}",
            match v(w::BACKEND) {
                1 => "io_uring",
                2 => "recvmmsg",
                _ => "-",
            },
            v(w::LEGS),
            v(w::RX_PACKETS),
            v(w::TX_PACKETS),
            v(w::RX_BATCHES),
            v(w::TX_DROPPED),
            v(w::IO_ERRORS),
            v(w::PUNTED),
            v(w::STUN_ANSWERED),
            v(w::RULES_APPLIED),
            v(w::RULES_REJECTED),
            v(w::EVENTS_LOST),
            drops.join(",")
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("strait-dpctl: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let r = match o.cmd.as_str() {
        "relay" => relay(&o),
        "snapshot" => snapshot(&o),
        "counters" => counters(&o),
        _ => Err(format!("unknown command {}", o.cmd)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strait-dpctl: {e}");
            ExitCode::FAILURE
        }
    }
}
