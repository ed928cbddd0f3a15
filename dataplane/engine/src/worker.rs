//! One data-plane worker: a thread pinned to one core that owns an I/O
//! backend (its sockets), a [`Core`] (its legs) and its pair of rings.
//!
//! The loop, in order, each iteration:
//! 1. read the clock once;
//! 2. apply up to [`RULES_PER_ITERATION`] rules from the control plane,
//!    opening the sockets an added leg needs first;
//! 3. receive a batch and run every packet through [`Core::on_packet`],
//!    sending the verdicts from the same buffers;
//! 4. every [`TIMER_INTERVAL`], reap idle legs and check ICE consent.
//!
//! When nothing arrives it busy-polls briefly and then sleeps in the kernel
//! for at most [`IDLE_WAIT`], so rules are picked up within a millisecond.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_rules::abi::{self, reject, Kind, LegRule};
use strait_rules::region::Region;
use strait_rules::ring::Producer;

use crate::io::{Backend, DatagramIo, IoConfig, IoStats, SocketId, TxQueue, Verdict as IoVerdict};
use crate::pipeline::{Core, CoreConfig, CoreStats, Effects, Verdict};

/// Most rules applied per loop iteration, so a flood of rules cannot starve
/// media.
pub const RULES_PER_ITERATION: usize = 256;
/// How often idle legs are reaped and consent is checked.
pub const TIMER_INTERVAL: Duration = Duration::from_millis(200);
/// Longest kernel wait when idle.
pub const IDLE_WAIT: Duration = Duration::from_millis(1);
/// Default of [`WorkerConfig::coalesce_window`].
pub const COALESCE_WINDOW: Duration = Duration::from_micros(200);
/// Under load, a batch is handled as soon as this many datagrams are ready.
pub const COALESCE_BATCH: u32 = 64;
/// Packet rate (per second) above which the worker coalesces: at least a
/// few packets per window, so waiting pays.
pub const COALESCE_RATE: u64 = 20_000;
/// Window over which the packet rate is measured.
const RATE_WINDOW: Duration = Duration::from_millis(50);

/// How one worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Index of this worker (its ring pair in the region).
    pub index: u32,
    /// Core to pin to, if any.
    pub core: Option<usize>,
    /// Local address media sockets bind to.
    pub bind_ip: IpAddr,
    /// I/O backend settings.
    pub io: IoConfig,
    /// Leg table limits.
    pub core_config: CoreConfig,
    /// Under load, how long datagrams may accumulate before a batch is
    /// handled: the bound on the latency coalescing adds. Zero disables
    /// coalescing.
    pub coalesce_window: Duration,
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// The backend that ran.
    pub backend: String,
    /// I/O counters.
    pub io: IoStats,
    /// Core counters.
    pub core: CoreStats,
    /// Events that did not fit the event ring.
    pub events_lost: u64,
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is valid;
    // CPU_SET writes inside it (core is checked against its capacity) and
    // sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        if core >= 8 * core::mem::size_of::<libc::cpu_set_t>() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "core index too large",
            ));
        }
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The effects of the core, carried out on this worker's backend and rings.
struct Fx<'a> {
    txq: &'a mut TxQueue,
    port_socket: &'a [Option<SocketId>],
    events: &'a mut Producer,
    to_close: &'a mut Vec<u16>,
    events_lost: &'a mut u64,
}

impl Effects for Fx<'_> {
    fn send(&mut self, port: u16, to: SocketAddr, bytes: &[u8]) {
        if let Some(sock) = self.port_socket[usize::from(port)] {
            // A full queue is counted by the backend.
            let _ = self.txq.queue_send(sock, to, bytes);
        }
    }

    fn event(&mut self, kind: Kind, body: &[u8]) -> bool {
        let ok = self.events.push(kind as u16, body).is_ok();
        if !ok {
            *self.events_lost += 1;
        }
        ok
    }

    fn punt(&mut self, header: &abi::Punted, packet: &[u8]) -> bool {
        let h = bytemuck::bytes_of(header);
        self.events
            .push_with(Kind::Punted as u16, h.len() + packet.len(), |dst| {
                dst[..h.len()].copy_from_slice(h);
                dst[h.len()..].copy_from_slice(packet);
            })
            .is_ok()
    }

    fn close_port(&mut self, port: u16) {
        self.to_close.push(port);
    }
}

/// Runs a worker until `stop` is set. Call on the thread that will run it.
pub fn run(
    config: WorkerConfig,
    region: Arc<Region>,
    stop: Arc<AtomicBool>,
) -> io::Result<WorkerReport> {
    if let Some(core) = config.core {
        pin_to_core(core)?;
    }
    let mut io = Backend::open(&config.io)?;
    let (mut rules, mut events) = region.worker_ends(config.index).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "worker index outside the region",
        )
    })?;
    let mut core = Core::new(config.core_config, region.clone());
    let mut port_socket: Vec<Option<SocketId>> = vec![None; 65_536];
    let mut socket_port: Vec<u16> = Vec::new();
    let mut to_close: Vec<u16> = Vec::with_capacity(64);
    let mut events_lost = 0u64;
    let mut next_timer = Instant::now() + TIMER_INTERVAL;
    let mut rate_window_end = Instant::now() + RATE_WINDOW;
    let (mut window_packets, mut coalesce) = (0u64, false);
    let layout = region.layout();

    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();

        for _ in 0..RULES_PER_ITERATION {
            let applied = rules.pop(|kind, body| {
                let open = |io: &mut Backend,
                            port_socket: &mut Vec<Option<SocketId>>,
                            socket_port: &mut Vec<u16>,
                            rule: &LegRule|
                 -> Result<(), u32> {
                    for port in core.ports_to_open(rule).into_iter().flatten() {
                        if layout.worker_for_port(port) != Some(config.index) {
                            return Err(reject::PORT_UNAVAILABLE);
                        }
                        let sock = io
                            .bind(SocketAddr::new(config.bind_ip, port))
                            .map_err(|_| reject::PORT_UNAVAILABLE)?;
                        port_socket[usize::from(port)] = Some(sock);
                        if socket_port.len() <= sock.index() {
                            socket_port.resize(sock.index() + 1, 0);
                        }
                        socket_port[sock.index()] = port;
                    }
                    Ok(())
                };
                let is_leg = kind == Kind::AddLeg as u16 || kind == Kind::UpdateLeg as u16;
                let opened = match (is_leg, bytemuck::try_pod_read_unaligned::<LegRule>(body)) {
                    (true, Ok(rule)) => open(&mut io, &mut port_socket, &mut socket_port, &rule)
                        .map_err(|r| (rule.leg_id, r)),
                    _ => Ok(()),
                };
                let mut fx = Fx {
                    txq: io.tx_queue(),
                    port_socket: &port_socket,
                    events: &mut events,
                    to_close: &mut to_close,
                    events_lost: &mut events_lost,
                };
                match opened {
                    Ok(()) => core.apply(now, kind, body, &mut fx),
                    Err((leg_id, reason)) => core.reject_rule(&mut fx, kind, leg_id, reason),
                }
            });
            match applied {
                Ok(Some(())) => {}
                Ok(None) => break,
                Err(e) => return Err(io::Error::other(format!("rule ring: {e}"))),
            }
        }
        close_ports(&mut io, &mut to_close, &mut port_socket);

        let (wait, want) = if coalesce && !config.coalesce_window.is_zero() {
            (config.coalesce_window, COALESCE_BATCH)
        } else {
            (IDLE_WAIT, 1)
        };
        let handled = io.run_batch(wait, want, |pkt, txq| {
            let port = socket_port.get(pkt.socket.index()).copied().unwrap_or(0);
            let len = pkt.len;
            let from = pkt.from;
            let mut fx = Fx {
                txq,
                port_socket: &port_socket,
                events: &mut events,
                to_close: &mut to_close,
                events_lost: &mut events_lost,
            };
            match core.on_packet(now, port, from, pkt.buf, len, &mut fx) {
                Verdict::Send { port, to, len } => match port_socket[usize::from(port)] {
                    Some(socket) => IoVerdict::Send { socket, to, len },
                    None => IoVerdict::Drop,
                },
                Verdict::Consumed | Verdict::Drop(_) => IoVerdict::Drop,
            }
        })?;
        window_packets += handled as u64;
        if now >= rate_window_end {
            let rate = window_packets * 1000 / RATE_WINDOW.as_millis() as u64;
            coalesce = rate >= COALESCE_RATE;
            window_packets = 0;
            rate_window_end = now + RATE_WINDOW;
        }

        if now >= next_timer {
            next_timer = now + TIMER_INTERVAL;
            let mut fx = Fx {
                txq: io.tx_queue(),
                port_socket: &port_socket,
                events: &mut events,
                to_close: &mut to_close,
                events_lost: &mut events_lost,
            };
            core.on_timer(now, &mut fx);
            close_ports(&mut io, &mut to_close, &mut port_socket);
            publish(&region, config.index, &io, &core, events_lost);
        }
    }
    io.flush()?;
    Ok(WorkerReport {
        backend: io.kind().to_string(),
        io: io.stats(),
        core: core.stats().clone(),
        events_lost,
    })
}

/// Copies the worker's counters into shared memory for the control plane.
fn publish(region: &Region, index: u32, io: &Backend, core: &Core, events_lost: u64) {
    use strait_rules::abi::worker_stat as w;
    let Some(cells) = region.worker_stats(index) else {
        return;
    };
    let io_stats = io.stats();
    let stats = core.stats();
    let backend = match io.kind() {
        crate::io::ActiveKind::Uring => 1,
        crate::io::ActiveKind::Mmsg => 2,
    };
    let values = [
        (w::RX_PACKETS, io_stats.rx_packets),
        (w::TX_PACKETS, io_stats.tx_packets),
        (w::RX_BATCHES, io_stats.rx_batches),
        (w::TX_DROPPED, io_stats.tx_dropped),
        (w::IO_ERRORS, io_stats.rx_errors + io_stats.tx_errors),
        (w::PUNTED, stats.punted),
        (w::STUN_ANSWERED, stats.stun_answered),
        (w::RULES_APPLIED, stats.rules_applied),
        (w::RULES_REJECTED, stats.rules_rejected),
        (w::EVENTS_LOST, events_lost),
        (w::LEGS, core.leg_count() as u64),
        (w::BACKEND, backend),
    ];
    for (i, v) in values {
        cells[i].store(v, Ordering::Relaxed);
    }
    for (i, v) in stats.drops.iter().enumerate() {
        if let Some(cell) = cells.get(w::DROPS + i) {
            cell.store(*v, Ordering::Relaxed);
        }
    }
}

fn close_ports(io: &mut Backend, to_close: &mut Vec<u16>, port_socket: &mut [Option<SocketId>]) {
    for port in to_close.drain(..) {
        if let Some(sock) = port_socket[usize::from(port)].take() {
            let _ = io.remove_socket(sock);
        }
    }
}
