//! Relay benchmark of the two datagram backends on loopback.
//!
//! A generator thread (pinned to core 0) sends 172-byte packets, paced to an
//! offered rate, to the relay's "leg A" sockets and drains a sink socket. The
//! relay thread (pinned to core 1) runs one backend and forwards every packet
//! in place out of the paired "leg B" socket to the sink. Measured over a
//! window after a warm-up: packets relayed per second, loss at the sink, the
//! relay thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, which includes the
//! kernel's work done in its system calls and task work) per relayed packet
//! and as a busy fraction.
//!
//! `cargo bench -p strait-bench --bench io` runs the full matrix (about a
//! minute); `cargo test --benches` runs a short smoke version. Environment:
//! `STRAIT_IO_BENCH_SECS` (window, default 2), `STRAIT_IO_BENCH_RATES`
//! (comma-separated packets/s, 0 = unpaced; default `50000,100000,200000,0`),
//! `STRAIT_IO_BENCH_STREAMS` (default `1,500`), `STRAIT_IO_BENCH_REPS`
//! (default 1), `STRAIT_IO_BENCH_KINDS` (`mmsg` or `uring`; default both),
//! `STRAIT_IO_BENCH_URING_BUFFERS` and `STRAIT_IO_BENCH_BATCH` (relay
//! sizing), `STRAIT_IO_BENCH_FIFO=0` (no real-time class for the relay and
//! the paced generator; by default they use `SCHED_FIFO` when allowed, so
//! other tenants' work on those cores disturbs the figures less).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use strait_dataplane::io::{
    Backend, BackendKind, DatagramIo, IoConfig, IoStats, MmsgBackend, Verdict,
};

const PACKET: usize = 172;
const WARMUP: u32 = 0;
const MEASURE: u32 = 1;
const STOP: u32 = 2;

fn pin(core: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and core < CPU_SETSIZE.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` lives across the call.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// Protects the calling thread from other tenants' work on its core:
/// `SCHED_FIFO` when `realtime` and allowed (only for threads that sleep when
/// idle), else nice -20 when allowed, else nothing.
fn boost(realtime: bool) -> &'static str {
    if realtime && std::env::var("STRAIT_IO_BENCH_FIFO").as_deref() != Ok("0") {
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: pid 0 is the calling thread; `param` lives across the call.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
            return "fifo";
        }
    }
    // SAFETY: plain system calls on the calling thread.
    let r = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, -20)
    };
    if r == 0 {
        "nice-20"
    } else {
        "normal"
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[derive(Clone, Copy, Debug, Default)]
struct RelayWindow {
    stats: IoStats,
    cpu: Duration,
    wall: Duration,
    kind: Option<strait_dataplane::io::ActiveKind>,
    class: &'static str,
}

#[derive(Clone, Copy, Debug, Default)]
struct GenWindow {
    sent: u64,
    received: u64,
}

struct Run {
    kind: BackendKind,
    streams: usize,
    rate: u64,
    window: Duration,
    warmup: Duration,
}

fn sub(a: IoStats, b: IoStats) -> IoStats {
    IoStats {
        rx_packets: a.rx_packets - b.rx_packets,
        rx_batches: a.rx_batches - b.rx_batches,
        tx_packets: a.tx_packets - b.tx_packets,
        tx_batches: a.tx_batches - b.tx_batches,
        tx_dropped: a.tx_dropped - b.tx_dropped,
        tx_errors: a.tx_errors - b.tx_errors,
        rx_no_buffers: a.rx_no_buffers - b.rx_no_buffers,
        rx_errors: a.rx_errors - b.rx_errors,
        ..IoStats::default()
    }
}

fn run(r: &Run, pinned: bool) -> (RelayWindow, GenWindow) {
    let phase = Arc::new(AtomicU32::new(WARMUP));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<(Vec<SocketAddr>, SocketAddr)>();
    let (sink_tx, sink_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let big = Some(4 << 20);

    // Relay.
    let relay_phase = phase.clone();
    let (kind, streams) = (r.kind, r.streams);
    let relay = thread::spawn(move || {
        if pinned {
            pin(1);
        }
        let class = boost(true);
        let defaults = IoConfig::default();
        let config = IoConfig {
            kind,
            socket_rcvbuf: big,
            socket_sndbuf: big,
            uring_buffers: env_or("STRAIT_IO_BENCH_URING_BUFFERS", defaults.uring_buffers),
            batch: env_or("STRAIT_IO_BENCH_BATCH", defaults.batch),
            ..defaults
        };
        let mut b = Backend::open(&config).expect("relay backend");
        let sink = sink_rx.recv().expect("sink address");
        let mut out = Vec::with_capacity(2 * streams);
        let mut leg_a = Vec::with_capacity(streams);
        for _ in 0..streams {
            let a = b
                .bind("127.0.0.1:0".parse().expect("addr"))
                .expect("bind a");
            let c = b
                .bind("127.0.0.1:0".parse().expect("addr"))
                .expect("bind b");
            leg_a.push(b.local_addr(a).expect("addr"));
            out.resize(c.index() + 1, c);
            out[a.index()] = c;
        }
        addr_tx.send((leg_a, sink)).expect("main alive");
        let mut start = None;
        let mut result = RelayWindow {
            kind: Some(b.kind()),
            class,
            ..RelayWindow::default()
        };
        let mut forward = |p: strait_dataplane::io::RxPacket<'_>,
                           _: &mut strait_dataplane::io::TxQueue| {
            Verdict::Send {
                socket: out[p.socket.index()],
                to: sink,
                len: p.len,
            }
        };
        loop {
            b.run_once(Duration::from_millis(1), &mut forward)
                .expect("relay loop");
            match relay_phase.load(Ordering::Relaxed) {
                MEASURE if start.is_none() => {
                    start = Some((b.stats(), thread_cpu(), Instant::now()))
                }
                STOP => break,
                _ => {}
            }
        }
        if let Some((s0, c0, t0)) = start {
            result.stats = sub(b.stats(), s0);
            result.cpu = thread_cpu() - c0;
            result.wall = t0.elapsed();
        }
        result
    });

    // Generator + sink, on an mmsg backend of its own (the same for both
    // relays).
    let gen_phase = phase.clone();
    let rate = r.rate;
    let generator = thread::spawn(move || {
        if pinned {
            pin(0);
        }
        // An unpaced generator never sleeps: no real-time class for it.
        boost(rate > 0);
        let config = IoConfig {
            kind: BackendKind::Mmsg,
            tx_buffers: 256,
            socket_rcvbuf: big,
            socket_sndbuf: big,
            ..IoConfig::default()
        };
        let mut g = MmsgBackend::new(&config).expect("generator backend");
        let src = g.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let sink = g
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind sink");
        sink_tx
            .send(g.local_addr(sink).expect("addr"))
            .expect("relay alive");
        let (targets, _) = addr_rx.recv().expect("relay ready");
        let mut packet = [0u8; PACKET];
        packet[0] = 0x80;
        let t0 = Instant::now();
        let mut sent = 0u64;
        let mut received = 0u64;
        let mut next = 0usize;
        let mut mark: Option<(u64, u64)> = None;
        let mut window = GenWindow::default();
        loop {
            let p = gen_phase.load(Ordering::Relaxed);
            if p == STOP {
                break;
            }
            if p == MEASURE && mark.is_none() {
                mark = Some((sent, received));
            }
            let due = if rate == 0 {
                sent + 64
            } else {
                (t0.elapsed().as_secs_f64() * rate as f64) as u64
            };
            let mut burst = due.saturating_sub(sent).min(256);
            while burst > 0 {
                packet[2..4].copy_from_slice(&(sent as u16).to_be_bytes());
                if g.queue_send(src, targets[next], &packet).is_err() {
                    break;
                }
                next = (next + 1) % targets.len();
                sent += 1;
                burst -= 1;
            }
            g.flush().expect("flush");
            g.poll(|_, _| Verdict::Drop).expect("drain sink");
            if rate > 0 && sent >= due {
                // Paced: sleep a little instead of spinning (bursts of about
                // rate x 60 us).
                thread::sleep(Duration::from_micros(50));
            }
            received = g.stats().rx_packets;
            if let Some((s0, r0)) = mark {
                window = GenWindow {
                    sent: sent - s0,
                    received: received - r0,
                };
            }
        }
        window
    });

    thread::sleep(r.warmup);
    phase.store(MEASURE, Ordering::Relaxed);
    thread::sleep(r.window);
    phase.store(STOP, Ordering::Relaxed);
    let gw = generator.join().expect("generator");
    let rw = relay.join().expect("relay");
    (rw, gw)
}

fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn list(var: &str, default: &str) -> Vec<u64> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("STRAIT_IO_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let (window, warmup) = if full {
        (Duration::from_secs_f64(secs), Duration::from_millis(500))
    } else {
        (Duration::from_millis(100), Duration::from_millis(50))
    };
    let rates = if full {
        list("STRAIT_IO_BENCH_RATES", "50000,100000,200000,0")
    } else {
        vec![20_000]
    };
    let streams = if full {
        list("STRAIT_IO_BENCH_STREAMS", "1,500")
    } else {
        vec![1, 50]
    };
    let reps = if full {
        list("STRAIT_IO_BENCH_REPS", "1")
            .first()
            .copied()
            .unwrap_or(1)
    } else {
        1
    };
    let kinds: Vec<BackendKind> = match std::env::var("STRAIT_IO_BENCH_KINDS").as_deref() {
        Ok("mmsg") => vec![BackendKind::Mmsg],
        Ok("uring") => vec![BackendKind::Uring],
        _ => vec![BackendKind::Mmsg, BackendKind::Uring],
    };
    let pinned = thread::available_parallelism()
        .map(|n| n.get() >= 2)
        .unwrap_or(false);
    let uring = strait_dataplane::io::probe_uring();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "io relay bench: {PACKET}-byte packets, generator core 0, relay core 1 (pinned: {pinned}), \
         window {:.1} s; io_uring: {}",
        window.as_secs_f64(),
        match uring {
            Ok(()) => "available".to_string(),
            Err(e) => e.to_string(),
        }
    );
    let _ = writeln!(
        out,
        "{:<8} {:>7} {:>7} {:>9} {:>9} {:>9} {:>6} {:>6} {:>7} {:>8} {:>7} {:>7} {:>6}",
        "backend",
        "streams",
        "offered",
        "sent/s",
        "relayed/s",
        "sink/s",
        "loss%",
        "sink%",
        "busy",
        "cpu/pkt",
        "pkt/rx",
        "pkt/tx",
        "nobuf"
    );
    let mut class = "";
    for &s in &streams {
        for &rate in &rates {
            for _ in 0..reps {
                for &kind in &kinds {
                    if kind == BackendKind::Uring && uring.is_err() {
                        continue;
                    }
                    let r = Run {
                        kind,
                        streams: s.max(1) as usize,
                        rate,
                        window,
                        warmup,
                    };
                    let (rw, gw) = run(&r, pinned);
                    class = rw.class;
                    let wall = rw.wall.as_secs_f64().max(1e-9);
                    let w = window.as_secs_f64();
                    let st = rw.stats;
                    let pct = |lost: u64, of: u64| {
                        if of > 0 {
                            100.0 * lost as f64 / of as f64
                        } else {
                            0.0
                        }
                    };
                    let _ = writeln!(
                        out,
                        "{:<8} {:>7} {:>7} {:>9.0} {:>9.0} {:>9.0} {:>6.2} {:>6.2} {:>6.1}% {:>6.2}us {:>7.1} {:>7.1} {:>6}",
                        match rw.kind {
                            Some(strait_dataplane::io::ActiveKind::Uring) => "io_uring",
                            _ => "mmsg",
                        },
                        s,
                        if rate == 0 { "max".to_string() } else { format!("{}k", rate / 1000) },
                        gw.sent as f64 / w,
                        st.tx_packets as f64 / wall,
                        gw.received as f64 / w,
                        // Relay loss: offered but never received by the relay.
                        pct(gw.sent.saturating_sub(st.rx_packets), gw.sent),
                        // Sink loss: relayed but not drained by the (shared) generator core.
                        pct(st.tx_packets.saturating_sub(gw.received), st.tx_packets),
                        100.0 * rw.cpu.as_secs_f64() / wall,
                        if st.tx_packets > 0 { rw.cpu.as_secs_f64() * 1e6 / st.tx_packets as f64 } else { 0.0 },
                        st.rx_packets as f64 / st.rx_batches.max(1) as f64,
                        st.tx_packets as f64 / st.tx_batches.max(1) as f64,
                        st.rx_no_buffers,
                    );
                    if !full {
                        assert!(st.tx_packets > 0, "{kind:?} relayed nothing");
                    }
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "relay thread scheduling: {class} (busy = relay thread CPU time / wall time; cpu/pkt = \
         relay thread CPU time per relayed packet, kernel work in its system calls included)"
    );
}
