//! The traffic generator: worker threads that each own a set of calls
//! (both legs' sockets), send every direction of every call at its real
//! rate (one packet per 20 ms, absolute deadlines, so no drift), receive
//! everything that comes back, and account it into measurement windows.
//!
//! One thread runs one loop: send what is due, arm a `timerfd` for the next
//! deadline, `epoll_wait` for that timer or readable sockets, drain the
//! readable sockets (non-blocking, bounded batches). The controller talks
//! to a thread through a channel ([`Command`]) and gets one
//! [`WindowResult`] per thread per measurement window. Live totals for
//! progress lines are in [`Live`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use hdrhistogram::Histogram;
use strait_srtp::SrtpContext;

use crate::packet::{self, Marker, MARKER_LEN, PCMU_PAYLOAD_LEN, RTP_HEADER_LEN};
use crate::stats::{new_histogram, DirAcc, SeqMapper, SeqTracker};
use crate::stun;
use crate::webrtc::{IceLeg, CONSENT_EVERY_PACKETS};

/// Packet interval of every stream.
pub const PTIME_NS: u64 = 20_000_000;
/// Send-time ring per direction for sequence mapping (transcoding).
const RING: usize = 128;
/// Datagrams read from one socket per readiness event at most.
const RECV_BATCH: usize = 32;
/// A stream more than this far behind its deadline skips ahead instead of bursting.
const MAX_BEHIND_NS: u64 = 1_000_000_000;

/// Nanoseconds on `CLOCK_MONOTONIC` (the clock all send and arrival times use).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the valid timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// Pins the calling thread to `cores` (empty: no change).
pub fn pin_current_thread(cores: &[usize]) -> io::Result<()> {
    if cores.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it
    // (indices are checked against its capacity), and sched_setaffinity
    // reads the set we pass with its exact size.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cores {
            if c < 8 * std::mem::size_of::<libc::cpu_set_t>() {
                libc::CPU_SET(c, &mut set);
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The media format a leg sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegCodec {
    /// PCMU, payload type 0, 160 bytes per 20 ms, RTP clock 8 kHz.
    Pcmu,
    /// Opus with the negotiated payload type, pre-encoded 20 ms frames, RTP clock 48 kHz.
    Opus {
        /// Payload type.
        pt: u8,
    },
}

/// One leg (one side) of a call, as the generator drives it.
#[derive(Debug)]
pub struct LegSpec {
    /// The generator's socket of this leg (sends this leg's media, receives the other's).
    pub socket: UdpSocket,
    /// Where the target receives this leg's media.
    pub send_to: SocketAddr,
    /// What this leg sends.
    pub codec: LegCodec,
    /// SRTP context for sending, if the leg is SRTP.
    pub srtp_tx: Option<SrtpContext>,
    /// SRTP context for receiving, if the leg is SRTP.
    pub srtp_rx: Option<SrtpContext>,
    /// ICE state of a WebRTC leg: the proxy's checks are answered, consent
    /// checks sent, and STUN, DTLS and RTCP (rtcp-mux) are told apart from
    /// media by their first byte (RFC 7983).
    pub ice: Option<IceLeg>,
}

/// One call: leg A and leg B. Direction 0 is A -> B, direction 1 is B -> A.
#[derive(Debug)]
pub struct StreamSpec {
    /// Global call index (also in the payload marker).
    pub id: u32,
    /// Leg A.
    pub a: LegSpec,
    /// Leg B.
    pub b: LegSpec,
}

/// A message from the controller to a generator thread.
#[derive(Debug)]
pub enum Command {
    /// Start sending on these calls.
    Add(Vec<StreamSpec>),
    /// Measure packets sent in `[start_ns, end_ns)`; report `drain_ns` after `end_ns`.
    Window {
        /// Window id (increasing).
        id: u64,
        /// Start, [`mono_ns`] clock.
        start_ns: u64,
        /// End (exclusive).
        end_ns: u64,
        /// How long after the end late packets still count.
        drain_ns: u64,
    },
    /// Stop sending and exit.
    Stop,
}

/// What one thread measured in one window.
#[derive(Debug)]
pub struct WindowResult {
    /// The window id.
    pub id: u64,
    /// The thread index.
    pub thread: usize,
    /// Direction A -> B, B -> A.
    pub dirs: [DirAcc; 2],
    /// Lateness of sends against their deadlines, microseconds.
    pub late_us: Histogram<u64>,
    /// Sends the kernel refused (e.g. full socket buffer): not counted as sent.
    pub send_errors: u64,
    /// Times a stream fell more than a second behind and skipped ahead.
    pub skipped: u64,
    /// Sequence-mapping re-anchors (transcoding only).
    pub reanchors: u64,
    /// Transcoded stream directions whose sequence numbers the target kept
    /// (exact latency) and those mapped by anchoring (latency a lower bound).
    pub mapping: (u64, u64),
}

/// Live totals of one thread, for progress lines.
#[derive(Debug, Default)]
pub struct Live {
    /// Packets sent.
    pub sent: AtomicU64,
    /// Packets received.
    pub received: AtomicU64,
    /// Receive-side errors (malformed, SRTP, marker, payload).
    pub errors: AtomicU64,
    /// Non-media datagrams on WebRTC legs (STUN, DTLS, RTCP), not counted as media.
    pub control: AtomicU64,
    /// Calls owned.
    pub calls: AtomicU64,
}

/// Handle of a running generator thread.
#[derive(Debug)]
pub struct GenThread {
    /// Commands to the thread.
    pub tx: Sender<Command>,
    /// Its kernel thread id (for `/proc/self/task/<tid>/stat`).
    pub tid: u32,
    /// Live totals.
    pub live: Arc<Live>,
    handle: Option<JoinHandle<()>>,
}

impl GenThread {
    /// Asks the thread to stop and waits for it.
    pub fn stop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for GenThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Shared, read-only inputs of the generator threads.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Pre-encoded 20 ms Opus frames, sent round-robin by Opus legs.
    pub opus_frames: Arc<Vec<Vec<u8>>>,
    /// The thread exits by itself at this [`mono_ns`] time.
    pub hard_deadline_ns: u64,
}

/// Starts generator thread `index`, pinned to `cores`.
pub fn spawn(
    index: usize,
    cores: Vec<usize>,
    cfg: GenConfig,
    results: Sender<WindowResult>,
) -> io::Result<GenThread> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let live = Arc::new(Live::default());
    let live2 = live.clone();
    let handle = std::thread::Builder::new()
        .name(format!("gen{index}"))
        .spawn(move || {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() } as u32;
            let setup = pin_current_thread(&cores)
                .and_then(|()| Worker::new(index, cfg, rx, results, live2));
            match setup {
                Ok(mut w) => {
                    let _ = tid_tx.send(Ok(tid));
                    w.run();
                }
                Err(e) => {
                    let _ = tid_tx.send(Err(e));
                }
            }
        })?;
    let tid = tid_rx
        .recv()
        .map_err(|_| io::Error::other("generator thread died during setup"))??;
    Ok(GenThread {
        tx,
        tid,
        live,
        handle: Some(handle),
    })
}

#[derive(Debug)]
struct DirState {
    ssrc: u32,
    rtp_base: u16,
    rtp_seq: u16,
    ts: u32,
    next_gen: u64,
    last_sent: Option<u64>,
    ring: Vec<(u64, u64)>,
    mapper: SeqMapper,
    tracker: SeqTracker,
}

#[derive(Debug)]
struct Stream {
    id: u32,
    legs: [LegSpec; 2],
    dirs: [DirState; 2],
    /// The target rewrites the payload (codecs differ): map sequence numbers.
    transcoded: bool,
}

#[derive(Debug)]
struct Window {
    id: u64,
    start: u64,
    end: u64,
    drain: u64,
    dirs: [DirAcc; 2],
    late_us: Histogram<u64>,
    send_errors: u64,
    skipped: u64,
    reanchors_at_start: u64,
}

struct Worker {
    index: usize,
    cfg: GenConfig,
    rx: Receiver<Command>,
    results: Sender<WindowResult>,
    live: Arc<Live>,
    epoll: OwnedFd,
    timer: OwnedFd,
    armed: u64,
    streams: Vec<Stream>,
    heap: BinaryHeap<Reverse<(u64, u32, u8)>>,
    window: Option<Window>,
    reanchors: u64,
    buf: Vec<u8>,
    tone: [u8; PCMU_PAYLOAD_LEN],
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

const TIMER_TOKEN: u64 = u64::MAX;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn epoll_add(epoll: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: both fds are open (owned by the worker); ev is a valid event.
    cvt(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    Ok(())
}

/// A stream's send phase within the 20 ms period: golden-ratio spread, so any
/// number of calls is evenly staggered.
fn phase_ns(id: u32, dir: u8) -> u64 {
    let golden =
        (u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    let base = (golden * PTIME_NS as f64) as u64 % PTIME_NS;
    (base + u64::from(dir) * PTIME_NS / 2) % PTIME_NS
}

fn ssrc_of(id: u32, dir: u8) -> u32 {
    let x = (u64::from(id) << 1 | u64::from(dir)).wrapping_mul(0x2545_F491_4F6C_DD1D);
    ((x >> 32) as u32) | 1
}

impl Worker {
    fn new(
        index: usize,
        cfg: GenConfig,
        rx: Receiver<Command>,
        results: Sender<WindowResult>,
        live: Arc<Live>,
    ) -> io::Result<Self> {
        // SAFETY: epoll_create1 has no pointer arguments; the fd is owned below.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: ep is a fresh fd nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        // SAFETY: as above, for a timerfd.
        let tf = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        // SAFETY: tf is a fresh fd nobody else owns.
        let timer = unsafe { OwnedFd::from_raw_fd(tf) };
        epoll_add(epoll.as_raw_fd(), timer.as_raw_fd(), TIMER_TOKEN)?;
        Ok(Self {
            index,
            cfg,
            rx,
            results,
            live,
            epoll,
            timer,
            armed: 0,
            streams: Vec::new(),
            heap: BinaryHeap::new(),
            window: None,
            reanchors: 0,
            buf: vec![0u8; 2048],
            tone: packet::pcmu_tone(),
        })
    }

    fn arm(&mut self, at_ns: u64) {
        if at_ns == self.armed {
            return;
        }
        self.armed = at_ns;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (at_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: the timer fd is open; spec is valid; old value not requested.
        unsafe {
            libc::timerfd_settime(
                self.timer.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
    }

    fn add(&mut self, specs: Vec<StreamSpec>) {
        let now = mono_ns();
        for s in specs {
            let local = self.streams.len() as u32;
            let ok = s.a.socket.set_nonblocking(true).is_ok()
                && s.b.socket.set_nonblocking(true).is_ok()
                && epoll_add(
                    self.epoll.as_raw_fd(),
                    s.a.socket.as_raw_fd(),
                    u64::from(local) << 1,
                )
                .is_ok()
                && epoll_add(
                    self.epoll.as_raw_fd(),
                    s.b.socket.as_raw_fd(),
                    u64::from(local) << 1 | 1,
                )
                .is_ok();
            if !ok {
                self.live.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let transcoded = s.a.codec != s.b.codec;
            let mk = |dir: u8| DirState {
                ssrc: ssrc_of(s.id, dir),
                rtp_base: (ssrc_of(s.id, dir) >> 7) as u16,
                rtp_seq: (ssrc_of(s.id, dir) >> 7) as u16,
                ts: ssrc_of(s.id, dir).rotate_left(9),
                next_gen: 0,
                last_sent: None,
                ring: if transcoded {
                    vec![(u64::MAX, 0); RING]
                } else {
                    Vec::new()
                },
                mapper: SeqMapper::default(),
                tracker: SeqTracker::new(),
            };
            let dirs = [mk(0), mk(1)];
            for dir in 0..2u8 {
                let phase = phase_ns(s.id, dir);
                // First deadline: the next period boundary + phase, at least 1 ms ahead.
                let mut due = (now / PTIME_NS) * PTIME_NS + phase;
                while due < now + 1_000_000 {
                    due += PTIME_NS;
                }
                self.heap.push(Reverse((due, local, dir)));
            }
            self.streams.push(Stream {
                id: s.id,
                legs: [s.a, s.b],
                dirs,
                transcoded,
            });
        }
        self.live
            .calls
            .store(self.streams.len() as u64, Ordering::Relaxed);
    }

    fn send(&mut self, local: u32, dir: u8, due: u64) -> u64 {
        let Some(st) = self.streams.get_mut(local as usize) else {
            return due + PTIME_NS;
        };
        let d = &mut st.dirs[usize::from(dir)];
        let leg = &mut st.legs[usize::from(dir)];
        let now = mono_ns();
        let buf = &mut self.buf;
        let len = match leg.codec {
            LegCodec::Pcmu => {
                packet::write_header(buf, 0, d.rtp_seq, d.ts, d.ssrc);
                let payload = &mut buf[RTP_HEADER_LEN..RTP_HEADER_LEN + PCMU_PAYLOAD_LEN];
                payload.copy_from_slice(&self.tone);
                Marker {
                    stream: st.id,
                    dir,
                    seq: d.next_gen,
                    send_ns: now,
                }
                .write(payload);
                d.ts = d.ts.wrapping_add(160);
                RTP_HEADER_LEN + PCMU_PAYLOAD_LEN
            }
            LegCodec::Opus { pt } => {
                packet::write_header(buf, pt, d.rtp_seq, d.ts, d.ssrc);
                let frames = &self.cfg.opus_frames;
                let frame = frames
                    .get((d.next_gen % frames.len().max(1) as u64) as usize)
                    .map(Vec::as_slice)
                    .unwrap_or(&[0xf8, 0xff, 0xfe]);
                buf[RTP_HEADER_LEN..RTP_HEADER_LEN + frame.len()].copy_from_slice(frame);
                d.ts = d.ts.wrapping_add(960);
                RTP_HEADER_LEN + frame.len()
            }
        };
        let len = match &mut leg.srtp_tx {
            Some(ctx) => ctx.protect_rtp(buf, len).unwrap_or(0),
            None => len,
        };
        let sent_ok = len > 0 && leg.socket.send_to(&buf[..len], leg.send_to).is_ok();
        if let Some(ice) = &mut leg.ice {
            if d.next_gen % CONSENT_EVERY_PACKETS == CONSENT_EVERY_PACKETS - 1 {
                let mut check = [0u8; stun::MAX_WRITTEN];
                if let Some(n) = ice.consent_check(&mut check) {
                    let _ = leg.socket.send_to(&check[..n], ice.peer);
                }
            }
        }
        let gen = d.next_gen;
        if !d.ring.is_empty() {
            d.ring[(gen % RING as u64) as usize] = (gen, now);
        }
        d.last_sent = Some(gen);
        d.next_gen += 1;
        d.rtp_seq = d.rtp_seq.wrapping_add(1);
        if sent_ok {
            self.live.sent.fetch_add(1, Ordering::Relaxed);
        }
        let mut next = due + PTIME_NS;
        let mut skipped = false;
        if now > next + MAX_BEHIND_NS {
            next += (now - next) / PTIME_NS * PTIME_NS + PTIME_NS;
            skipped = true;
        }
        if let Some(w) = &mut self.window {
            if now >= w.start && now < w.end {
                if sent_ok {
                    w.dirs[usize::from(dir)].sent += 1;
                } else {
                    w.send_errors += 1;
                }
            }
            if now >= w.start && now < w.end + w.drain {
                w.late_us.saturating_record(now.saturating_sub(due) / 1000);
                w.skipped += u64::from(skipped);
            }
        }
        next
    }

    fn receive(&mut self, local: u32, leg_index: usize) {
        let Some(st) = self.streams.get_mut(local as usize) else {
            return;
        };
        // Packets arriving on leg A belong to direction 1 (B -> A), on B to 0.
        let dir = 1 - leg_index;
        for _ in 0..RECV_BATCH {
            let leg = &mut st.legs[leg_index];
            let (n, from) = match leg.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(_) => break,
            };
            let now = mono_ns();
            if let Some(ice) = &mut leg.ice {
                let pkt = &self.buf[..n];
                let control = match pkt.first() {
                    Some(0..=3) => {
                        let mut out = [0u8; stun::MAX_WRITTEN];
                        if let Some(m) = ice.answer(pkt, from, &mut out) {
                            let _ = leg.socket.send_to(&out[..m], from);
                        }
                        true
                    }
                    Some(20..=63) => true,
                    Some(128..=191) => pkt.get(1).is_some_and(|b| (64..=95).contains(&(b & 0x7f))),
                    _ => false,
                };
                if control {
                    self.live.control.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            self.live.received.fetch_add(1, Ordering::Relaxed);
            let pkt = &mut self.buf[..n];
            let plain_len = match &mut st.legs[leg_index].srtp_rx {
                Some(ctx) => ctx.unprotect_rtp(pkt).ok(),
                None => Some(n),
            };
            let resolved = plain_len.and_then(|len| {
                let pkt = &self.buf[..len];
                let view = packet::parse(pkt)?;
                let payload = &pkt[view.payload_start..view.payload_end];
                let d = &mut st.dirs[dir];
                if let Some(m) = Marker::read(payload) {
                    if m.stream != st.id || usize::from(m.dir) != dir {
                        return None;
                    }
                    // Payload integrity: the tone under the marker arrives
                    // byte for byte (a relay that does not transcode must
                    // not touch the payload).
                    if !st.transcoded
                        && (payload.len() != PCMU_PAYLOAD_LEN
                            || payload[MARKER_LEN..] != self.tone[MARKER_LEN..])
                    {
                        return None;
                    }
                    return Some((m.seq, m.send_ns));
                }
                if !st.transcoded {
                    return None;
                }
                let before = d.mapper.reanchors;
                let gen = d.mapper.map(view.seq, d.last_sent, d.rtp_base)?;
                self.reanchors += d.mapper.reanchors - before;
                let (g, t) = d.ring[(gen % RING as u64) as usize];
                (g == gen).then_some((gen, t))
            });
            let Some(w) = &mut self.window else {
                if resolved.is_none() {
                    self.live.errors.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            };
            match resolved {
                Some((seq, send_ns)) => {
                    if send_ns >= w.start && send_ns < w.end {
                        let d = &mut st.dirs[dir];
                        d.tracker.enter_window(w.id);
                        w.dirs[dir].on_packet(&mut d.tracker, seq, send_ns, now);
                    }
                }
                None => {
                    self.live.errors.fetch_add(1, Ordering::Relaxed);
                    if now >= w.start && now < w.end + w.drain {
                        w.dirs[dir].errors += 1;
                    }
                }
            }
        }
    }

    fn close_window_if_done(&mut self, now: u64) {
        let done = self.window.as_ref().is_some_and(|w| now >= w.end + w.drain);
        if !done {
            return;
        }
        if let Some(w) = self.window.take() {
            let mut mapping = (0, 0);
            for st in self.streams.iter().filter(|s| s.transcoded) {
                for d in &st.dirs {
                    match d.mapper.mapped() {
                        Some(true) => mapping.0 += 1,
                        Some(false) => mapping.1 += 1,
                        None => {}
                    }
                }
            }
            let _ = self.results.send(WindowResult {
                mapping,
                id: w.id,
                thread: self.index,
                dirs: w.dirs,
                late_us: w.late_us,
                send_errors: w.send_errors,
                skipped: w.skipped,
                reanchors: self.reanchors - w.reanchors_at_start,
            });
        }
    }

    /// Handles pending commands; false when told to stop.
    fn commands(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Command::Add(specs)) => self.add(specs),
                Ok(Command::Window {
                    id,
                    start_ns,
                    end_ns,
                    drain_ns,
                }) => {
                    self.window = Some(Window {
                        id,
                        start: start_ns,
                        end: end_ns,
                        drain: drain_ns,
                        dirs: [DirAcc::new(), DirAcc::new()],
                        late_us: new_histogram(),
                        send_errors: 0,
                        skipped: 0,
                        reanchors_at_start: self.reanchors,
                    });
                }
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn run(&mut self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            if !self.commands() {
                return;
            }
            let now = mono_ns();
            if now >= self.cfg.hard_deadline_ns {
                return;
            }
            // Send everything due (bounded by the number of heap entries).
            let mut budget = self.heap.len();
            while budget > 0 {
                budget -= 1;
                match self.heap.peek() {
                    Some(Reverse((due, _, _))) if *due <= mono_ns() => {}
                    _ => break,
                }
                let Some(Reverse((due, local, dir))) = self.heap.pop() else {
                    break;
                };
                let next = self.send(local, dir, due);
                self.heap.push(Reverse((next, local, dir)));
            }
            self.close_window_if_done(mono_ns());
            // Sleep until the next deadline (or 10 ms to look at commands).
            let cap = mono_ns() + 10_000_000;
            let wake = self
                .heap
                .peek()
                .map_or(cap, |Reverse((due, _, _))| (*due).min(cap));
            self.arm(wake.max(1));
            // SAFETY: events is a valid buffer of events.len() entries; epoll fd open.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    20,
                )
            };
            for ev in events.iter().take(n.max(0) as usize) {
                let token = ev.u64;
                if token == TIMER_TOKEN {
                    let mut b = [0u8; 8];
                    // SAFETY: reads at most 8 bytes into b from the open timer fd.
                    unsafe { libc::read(self.timer.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
                    self.armed = 0;
                    continue;
                }
                self.receive((token >> 1) as u32, (token & 1) as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_over_the_period() {
        let mut buckets = [0u32; 10];
        for id in 0..1000 {
            let p = phase_ns(id, 0);
            assert!(p < PTIME_NS);
            assert_eq!(phase_ns(id, 1), (p + PTIME_NS / 2) % PTIME_NS);
            buckets[(p / (PTIME_NS / 10)) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (90..=110).contains(&b)),
            "{buckets:?}"
        );
    }

    #[test]
    fn loopback_streams_without_a_relay() {
        // Two "calls" wired straight to each other's sockets (no target):
        // both directions arrive, nothing is lost, latency is small.
        let (res_tx, res_rx) = std::sync::mpsc::channel();
        let now = mono_ns();
        let cfg = GenConfig {
            opus_frames: Arc::new(Vec::new()),
            hard_deadline_ns: now + 30_000_000_000,
        };
        let mut t = spawn(0, Vec::new(), cfg, res_tx).unwrap();
        let mut specs = Vec::new();
        for id in 0..2 {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let leg = |socket, send_to| LegSpec {
                socket,
                send_to,
                codec: LegCodec::Pcmu,
                srtp_tx: None,
                srtp_rx: None,
                ice: None,
            };
            specs.push(StreamSpec {
                id,
                a: leg(a, ba),
                b: leg(b, aa),
            });
        }
        t.tx.send(Command::Add(specs)).unwrap();
        let start = mono_ns() + 100_000_000;
        t.tx.send(Command::Window {
            id: 1,
            start_ns: start,
            end_ns: start + 200_000_000,
            drain_ns: 100_000_000,
        })
        .unwrap();
        let r = res_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap();
        t.stop();
        assert_eq!(r.id, 1);
        for d in &r.dirs {
            let s = d.summary();
            // About 2 calls x 10 packets in 200 ms; only "some" is certain.
            assert!(s.sent > 0, "{s:?}");
            assert_eq!(s.received, s.sent, "{s:?}");
            assert_eq!((s.duplicates, s.reordered, s.errors), (0, 0, 0));
            assert!(s.latency.max_ms < 100.0);
        }
        assert!(!r.late_us.is_empty());
    }

    #[test]
    fn altered_payloads_count_as_errors_not_as_received() {
        // A -> B goes through a "relay" thread that flips one byte of the
        // tone under the marker; B -> A goes straight. The altered direction
        // must receive nothing and count every packet as an error.
        let (res_tx, res_rx) = std::sync::mpsc::channel();
        let cfg = GenConfig {
            opus_frames: Arc::new(Vec::new()),
            hard_deadline_ns: mono_ns() + 30_000_000_000,
        };
        let mut t = spawn(0, Vec::new(), cfg, res_tx).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
        relay
            .set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let (aa, ba, ra) = (
            a.local_addr().unwrap(),
            b.local_addr().unwrap(),
            relay.local_addr().unwrap(),
        );
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let relay_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            // Bounded: at most 20 s, or until told to stop.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !stop2.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                if let Ok(n) = relay.recv(&mut buf) {
                    buf[RTP_HEADER_LEN + 100] ^= 0x01;
                    let _ = relay.send_to(&buf[..n], ba);
                }
            }
        });
        let leg = |socket, send_to| LegSpec {
            socket,
            send_to,
            codec: LegCodec::Pcmu,
            srtp_tx: None,
            srtp_rx: None,
            ice: None,
        };
        t.tx.send(Command::Add(vec![StreamSpec {
            id: 0,
            a: leg(a, ra),
            b: leg(b, aa),
        }]))
        .unwrap();
        let start = mono_ns() + 100_000_000;
        t.tx.send(Command::Window {
            id: 1,
            start_ns: start,
            end_ns: start + 200_000_000,
            drain_ns: 100_000_000,
        })
        .unwrap();
        let r = res_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap();
        t.stop();
        stop.store(true, Ordering::Relaxed);
        relay_thread.join().unwrap();
        let (altered, straight) = (r.dirs[0].summary(), r.dirs[1].summary());
        assert!(altered.sent > 0 && altered.received == 0, "{altered:?}");
        assert!(altered.errors >= altered.sent - 1, "{altered:?}");
        assert!(
            straight.sent > 0 && straight.received == straight.sent,
            "{straight:?}"
        );
        assert_eq!(straight.errors, 0);
    }
}
