//! The io_uring backend.
//!
//! - One ring per worker, set up single-issuer with deferred task work
//!   (`IORING_SETUP_DEFER_TASKRUN`, kernel 6.1+; older kernels get
//!   cooperative task work, then plain), so the kernel only runs completions
//!   inside our `io_uring_enter`.
//! - One provided-buffer ring (`IORING_REGISTER_PBUF_RING`) of
//!   `IoConfig::uring_buffers` 2048-byte buffers shared by all sockets. Each
//!   socket has one multishot `RECVMSG` armed; the kernel picks a buffer per
//!   datagram and writes `io_uring_recvmsg_out` (16 bytes), the source
//!   address (a 48-byte field) and the payload at offset 64, leaving
//!   [`TAILROOM`](super::TAILROOM) bytes after the largest accepted payload.
//! - A `Send` verdict becomes a `SENDMSG` from that same buffer (its
//!   `msghdr`, `iovec` and address live in a per-buffer slot, so nothing is
//!   copied or allocated); the buffer returns to the ring when the send
//!   completes. A `Drop` returns it at once.
//! - Sends carry `MSG_DONTWAIT`: a full socket buffer completes with `EAGAIN`
//!   (counted, dropped) instead of parking the buffer on a poll.
//! - Sends are pushed onto the submission queue while completions are
//!   handled and submitted by the next `io_uring_enter`, which also waits for
//!   and reaps new completions: one system call per loop iteration under
//!   load.
//! - A multishot receive that ends (buffer ring empty: `ENOBUFS`, an
//!   ICMP-induced error, completion queue overflow) is re-armed on the next
//!   iteration; removal cancels it by user data, whose generation bits let
//!   late completions of a removed socket be recognised and recycled.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, EnterFlags, IoUring, SubmissionQueue, Submitter};

use super::addr::{self, NameBuf};
use super::mem::Region;
use super::table::{SocketTable, GEN_MASK};
use super::tx::TxQueue;
use super::{
    prepare_socket, split_timeout, ActiveKind, DatagramIo, IoConfig, IoStats, RxPacket, SocketId,
    Verdict, BUF_STRIDE, MAX_DATAGRAM, PACKET_CAPACITY,
};

/// Where the payload starts in a receive buffer: 16-byte
/// `io_uring_recvmsg_out` + a 48-byte name field.
const HEADROOM: usize = 64;
const RECVMSG_OUT_LEN: usize = 16;
const NAME_FIELD: u32 = (HEADROOM - RECVMSG_OUT_LEN) as u32;
/// Length given to the kernel for each receive buffer.
const RX_BUF_LEN: u32 = (HEADROOM + MAX_DATAGRAM) as u32;
const _: () = assert!(HEADROOM + PACKET_CAPACITY <= BUF_STRIDE);
const BGID: u16 = 0;

const KIND_SHIFT: u32 = 56;
const UD_RECV: u64 = 1;
const UD_SEND: u64 = 2;
const UD_CANCEL: u64 = 3;
const UD_PROBE: u64 = 4;

fn recv_ud(index: u32, gen: u32) -> u64 {
    (UD_RECV << KIND_SHIFT) | (u64::from(gen & GEN_MASK) << 32) | u64::from(index)
}

/// Which part of the io_uring set-up failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UringStage {
    /// The configuration is impossible (`uring_buffers` not a power of two
    /// in 1..=32768).
    Config,
    /// `io_uring_setup` refused (seccomp, `kernel.io_uring_disabled`,
    /// `ENOMEM` from the locked-memory limit, `ENOSYS`).
    Setup,
    /// A required feature is missing (`IORING_FEAT_EXT_ARG`, kernel 5.11).
    Features,
    /// Buffer memory could not be mapped.
    Memory,
    /// `IORING_REGISTER_PBUF_RING` refused (kernel < 5.19, locked memory).
    BufferRing,
    /// Multishot `RECVMSG` unsupported (kernel < 6.0).
    Multishot,
}

impl fmt::Display for UringStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Config => "configuration",
            Self::Setup => "io_uring_setup",
            Self::Features => "feature check",
            Self::Memory => "buffer allocation",
            Self::BufferRing => "provided-buffer ring registration",
            Self::Multishot => "multishot recvmsg check",
        })
    }
}

/// Why io_uring cannot be used: the stage and the `errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UringError {
    /// What was being done.
    pub stage: UringStage,
    /// The kernel's answer (`errno`).
    pub errno: i32,
}

impl UringError {
    fn new(stage: UringStage, e: &io::Error) -> Self {
        Self {
            stage,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

impl fmt::Display for UringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "io_uring unavailable: {} failed: {}",
            self.stage,
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for UringError {}

impl From<UringError> for io::Error {
    fn from(e: UringError) -> Self {
        io::Error::new(io::Error::from_raw_os_error(e.errno).kind(), e)
    }
}

/// Tells whether io_uring with everything this backend needs (provided
/// buffer rings, multishot `RECVMSG`, timed waits) works in this process,
/// by building and dropping a minimal [`UringBackend`]. Touches no network.
pub fn probe_uring() -> Result<(), UringError> {
    let config = IoConfig {
        uring_buffers: 8,
        uring_sq_entries: 8,
        tx_buffers: 1,
        ..IoConfig::default()
    };
    UringBackend::new(&config).map(drop)
}

/// One `io_uring_buf` of the provided-buffer ring (kernel ABI). The `resv`
/// field of entry 0 is the ring's tail, written by us, read by the kernel.
#[repr(C)]
struct RawBuf {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// Our side of the provided-buffer ring.
#[derive(Debug)]
struct BufRing {
    mem: Region,
    mask: u16,
    /// Local tail: entries up to here are written, not necessarily published.
    tail: u16,
    /// Buffers currently owned by the kernel (published or about to be).
    in_kernel: usize,
}

impl BufRing {
    /// Appends buffer `bid` at `addr` (published by [`Self::publish`]).
    #[inline]
    fn push(&mut self, addr: *mut u8, bid: u16) {
        let idx = usize::from(self.tail & self.mask);
        // SAFETY: idx <= mask < entries and the region holds `entries`
        // RawBufs. The entry is beyond the published tail, so the kernel does
        // not read it now. Fields are written through raw pointers, without a
        // reference, because entry 0's `resv` is the tail the kernel reads.
        unsafe {
            let e = self.mem.ptr().cast::<RawBuf>().add(idx);
            (&raw mut (*e).addr).write(addr as u64);
            (&raw mut (*e).len).write(RX_BUF_LEN);
            (&raw mut (*e).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        self.in_kernel += 1;
    }

    /// Makes pushed entries visible to the kernel.
    #[inline]
    fn publish(&self) {
        // SAFETY: entry 0's `resv` is the 2-byte aligned tail inside the
        // mapping; the kernel only reads it, so an atomic store is the
        // agreed protocol (release: entries before tail).
        let tail = unsafe { AtomicU16::from_ptr(&raw mut (*self.mem.ptr().cast::<RawBuf>()).resv) };
        tail.store(self.tail, Ordering::Release);
    }
}

/// `msghdr` + `iovec` + address for one in-flight send; one per buffer.
#[repr(C)]
struct SendSlot {
    hdr: libc::msghdr,
    iov: libc::iovec,
    name: NameBuf,
}

/// Everything but the ring, so completions can be handled while the ring's
/// queues are borrowed.
struct State {
    config: IoConfig,
    pbuf: BufRing,
    pool: Region,
    n_rx: u16,
    slots: Box<[SendSlot]>,
    recv_hdr: Box<libc::msghdr>,
    tx: TxQueue,
    sockets: SocketTable,
    rearm: Vec<(u32, u32)>,
    /// Operations whose last completion has not been seen.
    inflight: usize,
    /// Sends pushed since the last submit.
    unsubmitted_sends: usize,
    stats: IoStats,
}

/// io_uring backend. See the [module docs](super) and this module's source
/// header for the design.
pub struct UringBackend {
    ring: ManuallyDrop<IoUring>,
    st: ManuallyDrop<State>,
}

impl fmt::Debug for UringBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringBackend")
            .field("buffers", &self.st.n_rx)
            .field("buffers_in_kernel", &self.st.pbuf.in_kernel)
            .field("sockets", &self.st.sockets.live())
            .field("inflight", &self.st.inflight)
            .field("stats", &self.st.stats)
            .finish_non_exhaustive()
    }
}

fn build_ring(sq: u32, cq: u32) -> io::Result<IoUring> {
    let mut last = io::Error::from_raw_os_error(libc::EINVAL);
    for variant in 0..3 {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq).setup_clamp().setup_submit_all();
        match variant {
            0 => {
                b.setup_single_issuer().setup_defer_taskrun();
            }
            1 => {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            _ => {}
        }
        match b.build(sq) {
            Ok(r) => return Ok(r),
            // Unknown flag on an older kernel: try fewer.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

impl UringBackend {
    /// Sets up the ring, the buffer pool and the provided-buffer ring, and
    /// checks that multishot `RECVMSG` works. Any failure is an error the
    /// caller can answer by using [`MmsgBackend`](super::MmsgBackend).
    pub fn new(config: &IoConfig) -> Result<Self, UringError> {
        let n = config.uring_buffers;
        if n == 0 || !n.is_power_of_two() || n > 32768 {
            return Err(UringError {
                stage: UringStage::Config,
                errno: libc::EINVAL,
            });
        }
        let sq = config.uring_sq_entries.clamp(8, 4096).next_power_of_two();
        let cq = (sq * 4).max(u32::from(n) * 2).next_power_of_two();
        let ring = build_ring(sq, cq).map_err(|e| UringError::new(UringStage::Setup, &e))?;
        if !ring.params().is_feature_ext_arg() {
            return Err(UringError {
                stage: UringStage::Features,
                errno: libc::EOPNOTSUPP,
            });
        }
        let mem_err = |e: io::Error| UringError::new(UringStage::Memory, &e);
        let pool = Region::new(usize::from(n) * BUF_STRIDE).map_err(mem_err)?;
        let pbuf_mem =
            Region::new(usize::from(n) * std::mem::size_of::<RawBuf>()).map_err(mem_err)?;
        // SAFETY: the region is page-aligned, holds `n` entries and lives in
        // `State` until after the ring is closed (see Drop).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(pbuf_mem.ptr() as u64, n, BGID, 0)
        }
        .map_err(|e| UringError::new(UringStage::BufferRing, &e))?;
        let tx = TxQueue::new(config.tx_buffers).map_err(mem_err)?;
        let n_tx = usize::from(config.tx_buffers.max(1));

        // SAFETY: msghdr is a plain C struct; all-zero is valid.
        let mut recv_hdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        // Only the name and control lengths matter for a multishot RECVMSG.
        recv_hdr.msg_namelen = NAME_FIELD;
        let mut slots: Box<[SendSlot]> = (0..usize::from(n) + n_tx)
            .map(|_| SendSlot {
                // SAFETY: as above.
                hdr: unsafe { std::mem::zeroed() },
                iov: libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
                name: NameBuf::ZERO,
            })
            .collect();
        for s in slots.iter_mut() {
            s.hdr.msg_iov = &raw mut s.iov;
            s.hdr.msg_iovlen = 1;
            s.hdr.msg_name = (&raw mut s.name).cast();
        }
        let mut st = State {
            config: config.clone(),
            pbuf: BufRing {
                mem: pbuf_mem,
                mask: n - 1,
                tail: 0,
                in_kernel: 0,
            },
            pool,
            n_rx: n,
            slots,
            recv_hdr,
            tx,
            sockets: SocketTable::default(),
            rearm: Vec::new(),
            inflight: 0,
            unsubmitted_sends: 0,
            stats: IoStats::default(),
        };
        for bid in 0..n {
            let p = st.buf_ptr(bid);
            st.pbuf.push(p, bid);
        }
        st.pbuf.publish();
        let mut b = Self {
            ring: ManuallyDrop::new(ring),
            st: ManuallyDrop::new(st),
        };
        b.check_multishot()?;
        Ok(b)
    }

    /// Arms a multishot RECVMSG on an unbound UDP socket and cancels it:
    /// kernels without multishot receive reject it with `EINVAL`.
    fn check_multishot(&mut self) -> Result<(), UringError> {
        let fail = |e: &io::Error| UringError::new(UringStage::Multishot, e);
        let probe = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .map_err(|e| fail(&e))?;
        let recv = opcode::RecvMsgMulti::new(
            types::Fd(probe.as_raw_fd()),
            &raw const *self.st.recv_hdr,
            BGID,
        )
        .build()
        .user_data(UD_PROBE << KIND_SHIFT);
        let cancel = opcode::AsyncCancel::new(UD_PROBE << KIND_SHIFT)
            .build()
            .user_data(UD_CANCEL << KIND_SHIFT);
        {
            let mut sq = self.ring.submission();
            // SAFETY: `recv_hdr` lives as long as the ring; the probe socket
            // outlives the request, which is cancelled and reaped below.
            unsafe { sq.push_multiple(&[recv, cancel]) }
                .map_err(|_| fail(&io::Error::from_raw_os_error(libc::EBUSY)))?;
        }
        // Tracked like any request, so a failed check still reaps both in Drop.
        self.st.inflight += 2;
        let ts = types::Timespec::new().sec(1);
        let mut verdict = Err(fail(&io::Error::from_raw_os_error(libc::ETIME)));
        let mut seen = 0;
        for _ in 0..4 {
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(2 - seen, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(e) => return Err(fail(&e)),
            }
            let (_, _, cq) = self.ring.split();
            for cqe in cq {
                seen += 1;
                self.st.inflight = self.st.inflight.saturating_sub(1);
                if cqe.user_data() >> KIND_SHIFT == UD_PROBE {
                    if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                        self.st.pbuf.in_kernel -= 1;
                        self.st.recycle(bid);
                    }
                    verdict = match -cqe.result() {
                        libc::ECANCELED => Ok(()),
                        e => Err(fail(&io::Error::from_raw_os_error(e))),
                    };
                }
            }
            if seen >= 2 {
                break;
            }
        }
        self.st.pbuf.publish();
        verdict
    }

    /// Submits what is queued and, unless `timeout` is zero or completions
    /// are already waiting, waits up to `timeout` for one.
    fn enter(&mut self, timeout: Duration) -> io::Result<()> {
        self.enter_want(timeout, 1)
    }

    /// Like [`enter`](Self::enter), but waits for `want` completions beyond
    /// our own sends (or the timeout) even when some are already waiting.
    fn enter_want(&mut self, timeout: Duration, want: u32) -> io::Result<()> {
        let st = &mut *self.st;
        let (submitter, mut sq, mut cq) = self.ring.split();
        st.push_pending(&submitter, &mut sq);
        st.pbuf.publish();
        sq.sync();
        cq.sync();
        let to_submit = sq.len();
        let sends = st.unsubmitted_sends;
        let r = if timeout.is_zero() || (want <= 1 && !cq.is_empty()) {
            // SAFETY: no extended argument; the queued entries point at
            // memory owned by `st` that stays valid until they complete.
            unsafe {
                submitter.enter::<libc::sigset_t>(
                    to_submit as u32,
                    0,
                    EnterFlags::GETEVENTS.bits(),
                    None,
                )
            }
        } else {
            let (s, ns) = split_timeout(timeout);
            let ts = types::Timespec::new().sec(s).nsec(ns);
            // The sends being submitted complete at once (MSG_DONTWAIT); wait
            // for one completion beyond them, so a wake-up brings news
            // rather than just our own send completions.
            let want = (sends + want.max(1) as usize).saturating_sub(cq.len());
            submitter.submit_with_args(want.max(1), &types::SubmitArgs::new().timespec(&ts))
        };
        st.note_submitted(to_submit);
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Handles the completions available now.
    fn reap<F>(&mut self, f: &mut F) -> usize
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        let st = &mut *self.st;
        let (submitter, mut sq, mut cq) = self.ring.split();
        cq.sync();
        let mut delivered = 0;
        for cqe in &mut cq {
            delivered += st.handle(&cqe, &submitter, &mut sq, f);
        }
        drop(cq);
        if delivered > 0 {
            st.stats.rx_batches += 1;
        }
        st.push_pending(&submitter, &mut sq);
        st.pbuf.publish();
        delivered
    }
}

impl State {
    #[inline]
    fn buf_ptr(&self, bid: u16) -> *mut u8 {
        // SAFETY: bid < n_rx and the pool holds n_rx strides.
        unsafe { self.pool.ptr().add(usize::from(bid) * BUF_STRIDE) }
    }

    #[inline]
    fn recycle(&mut self, bid: u16) {
        let p = self.buf_ptr(bid);
        self.pbuf.push(p, bid);
    }

    fn note_submitted(&mut self, submitted: usize) {
        if submitted > 0 && self.unsubmitted_sends > 0 {
            self.stats.tx_batches += 1;
            self.unsubmitted_sends = 0;
        }
    }

    /// Pushes `e`; if the queue is full, submits it first. `false` if the
    /// entry still could not be queued.
    fn push(
        &mut self,
        submitter: &Submitter<'_>,
        sq: &mut SubmissionQueue<'_>,
        e: &squeue::Entry,
    ) -> bool {
        // SAFETY: every entry built here points only at memory owned by
        // `self` (buffers, send slots, recv_hdr) that stays untouched until
        // its completion is reaped, and at descriptors kept open until
        // their requests are submitted (remove_socket submits first).
        if unsafe { sq.push(e) }.is_ok() {
            return true;
        }
        self.pbuf.publish();
        sq.sync();
        let n = sq.len();
        if submitter.submit().is_ok() {
            self.note_submitted(n);
        }
        sq.sync();
        // SAFETY: as above.
        unsafe { sq.push(e) }.is_ok()
    }

    /// Queues a send of `len` bytes at `ptr`, in buffer `slot` (receive
    /// buffers first, then TxQueue buffers), from `socket` to `to`. On
    /// failure the caller still owns the buffer.
    fn send(
        &mut self,
        submitter: &Submitter<'_>,
        sq: &mut SubmissionQueue<'_>,
        (slot, ptr, len): (usize, *mut u8, usize),
        socket: SocketId,
        to: SocketAddr,
    ) -> bool {
        let Some(sock) = self.sockets.get(socket) else {
            self.stats.tx_errors += 1;
            return false;
        };
        let (fd, family) = (sock.fd, sock.family);
        let s = &mut self.slots[slot];
        let Some(namelen) = addr::encode(to, family, &mut s.name) else {
            self.stats.tx_errors += 1;
            return false;
        };
        s.hdr.msg_namelen = namelen;
        s.iov.iov_base = ptr.cast();
        s.iov.iov_len = len;
        let e = opcode::SendMsg::new(types::Fd(fd), &raw const s.hdr)
            .flags(libc::MSG_DONTWAIT as u32)
            .build()
            .user_data((UD_SEND << KIND_SHIFT) | slot as u64);
        if self.push(submitter, sq, &e) {
            self.inflight += 1;
            self.unsubmitted_sends += 1;
            true
        } else {
            self.stats.tx_dropped += 1;
            false
        }
    }

    /// Re-arms ended receives and turns queued TxQueue copies into sends.
    fn push_pending(&mut self, submitter: &Submitter<'_>, sq: &mut SubmissionQueue<'_>) {
        if !self.rearm.is_empty() && self.pbuf.in_kernel > 0 {
            let mut done = 0;
            while done < self.rearm.len() {
                let (index, gen) = self.rearm[done];
                if let Some(slot) = self.sockets.current(index, gen) {
                    let e = opcode::RecvMsgMulti::new(
                        types::Fd(slot.fd),
                        &raw const *self.recv_hdr,
                        BGID,
                    )
                    .build()
                    .user_data(recv_ud(index, gen));
                    if !self.push(submitter, sq, &e) {
                        break;
                    }
                    self.inflight += 1;
                }
                done += 1;
            }
            self.rearm.drain(..done);
        }
        let n_rx = usize::from(self.n_rx);
        for k in 0..self.tx.pending().len() {
            let p = self.tx.pending()[k];
            let ptr = self.tx.ptr(p.buf);
            let buf = (n_rx + usize::from(p.buf), ptr, p.len as usize);
            if !self.send(submitter, sq, buf, p.socket, p.to) {
                self.tx.release(p.buf);
            }
        }
        self.tx.clear_pending();
    }

    /// Handles one completion; returns 1 if a packet went to `f`.
    fn handle<F>(
        &mut self,
        cqe: &cqueue::Entry,
        submitter: &Submitter<'_>,
        sq: &mut SubmissionQueue<'_>,
        f: &mut F,
    ) -> usize
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        let ud = cqe.user_data();
        let res = cqe.result();
        let flags = cqe.flags();
        match ud >> KIND_SHIFT {
            UD_RECV => {
                let index = ud as u32;
                let gen = (ud >> 32) as u32 & GEN_MASK;
                let current = self.sockets.current(index, gen).is_some();
                if !cqueue::more(flags) {
                    self.inflight = self.inflight.saturating_sub(1);
                    if current {
                        self.rearm.push((index, gen));
                    }
                }
                let mut delivered = 0;
                if let Some(bid) = cqueue::buffer_select(flags) {
                    self.pbuf.in_kernel = self.pbuf.in_kernel.saturating_sub(1);
                    if bid >= self.n_rx {
                        self.stats.rx_errors += 1;
                    } else if res >= 0 && current {
                        delivered =
                            self.deliver(bid, res as usize, SocketId(index), submitter, sq, f);
                    } else {
                        self.recycle(bid);
                    }
                }
                if res < 0 {
                    match -res {
                        libc::ENOBUFS => self.stats.rx_no_buffers += 1,
                        libc::ECANCELED => {}
                        _ => self.stats.rx_errors += 1,
                    }
                }
                delivered
            }
            UD_SEND => {
                self.inflight = self.inflight.saturating_sub(1);
                let slot = ud as u32 as usize;
                let n_rx = usize::from(self.n_rx);
                if slot < n_rx {
                    self.recycle(slot as u16);
                } else if slot - n_rx < usize::from(u16::MAX) {
                    self.tx.release((slot - n_rx) as u16);
                }
                if res >= 0 {
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += res as u64;
                } else if -res == libc::EAGAIN || -res == libc::ENOBUFS {
                    self.stats.tx_dropped += 1;
                } else {
                    self.stats.tx_errors += 1;
                }
                0
            }
            UD_CANCEL => {
                self.inflight = self.inflight.saturating_sub(1);
                0
            }
            _ => 0,
        }
    }

    /// Hands buffer `bid` (filled with `res` bytes) to `f` and acts on the
    /// verdict.
    fn deliver<F>(
        &mut self,
        bid: u16,
        res: usize,
        socket: SocketId,
        submitter: &Submitter<'_>,
        sq: &mut SubmissionQueue<'_>,
        f: &mut F,
    ) -> usize
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        let base = self.buf_ptr(bid);
        // SAFETY: the completion handed buffer `bid` to us: the kernel no
        // longer writes to it and it is not in the ring until we recycle or
        // send it; bid < n_rx so the stride is inside the pool. The slice is
        // gone before the buffer is given back.
        let whole = unsafe { std::slice::from_raw_parts_mut(base, BUF_STRIDE) };
        let (head, buf) = whole.split_at_mut(HEADROOM);
        let word = |i: usize| u32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let (namelen, payloadlen, oflags) = (word(0), word(8), word(12));
        if res < HEADROOM {
            self.stats.rx_errors += 1;
            self.recycle(bid);
            return 0;
        }
        let len = (payloadlen as usize).min(res - HEADROOM);
        if oflags & libc::MSG_TRUNC as u32 != 0 || len > MAX_DATAGRAM {
            self.stats.rx_truncated += 1;
            self.recycle(bid);
            return 0;
        }
        let name_end = RECVMSG_OUT_LEN + namelen.min(NAME_FIELD) as usize;
        let Some(from) = addr::decode(&head[RECVMSG_OUT_LEN..name_end]) else {
            self.stats.rx_errors += 1;
            self.recycle(bid);
            return 0;
        };
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += len as u64;
        let buf = &mut buf[..PACKET_CAPACITY];
        match f(
            RxPacket {
                socket,
                from,
                len,
                buf,
            },
            &mut self.tx,
        ) {
            Verdict::Drop => self.recycle(bid),
            Verdict::Send { socket, to, len } => {
                if len > PACKET_CAPACITY {
                    self.stats.tx_errors += 1;
                    self.recycle(bid);
                } else if !self.send(
                    submitter,
                    sq,
                    (usize::from(bid), base.wrapping_add(HEADROOM), len),
                    socket,
                    to,
                ) {
                    self.recycle(bid);
                }
            }
        }
        1
    }
}

impl DatagramIo for UringBackend {
    fn kind(&self) -> ActiveKind {
        ActiveKind::Uring
    }

    fn add_socket(&mut self, socket: UdpSocket) -> io::Result<SocketId> {
        prepare_socket(&socket, &self.st.config)?;
        let (id, gen) = self.st.sockets.insert(socket)?;
        let st = &mut *self.st;
        // Room for every live socket's re-arm plus stale entries of removed
        // ones, so completions never grow the list.
        let want = 2 * st.sockets.live();
        if st.rearm.capacity() < want {
            st.rearm.reserve(want - st.rearm.len());
        }
        st.rearm.push((id.0, gen));
        Ok(id)
    }

    fn remove_socket(&mut self, id: SocketId) -> io::Result<()> {
        let Some(slot) = self.st.sockets.get(id) else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        let gen = slot.gen;
        let st = &mut *self.st;
        let (submitter, mut sq, _) = self.ring.split();
        st.push_pending(&submitter, &mut sq);
        let cancel = opcode::AsyncCancel::new(recv_ud(id.0, gen))
            .build()
            .user_data(UD_CANCEL << KIND_SHIFT);
        if st.push(&submitter, &mut sq, &cancel) {
            st.inflight += 1;
        }
        st.pbuf.publish();
        sq.sync();
        let n = sq.len();
        // Everything referring to this descriptor must reach the kernel
        // before it is closed.
        submitter.submit()?;
        st.note_submitted(n);
        drop(sq);
        st.sockets.remove(id);
        Ok(())
    }

    fn local_addr(&self, id: SocketId) -> Option<SocketAddr> {
        self.st.sockets.get(id).and_then(|s| s.local)
    }

    fn socket_count(&self) -> usize {
        self.st.sockets.live()
    }

    fn tx_queue(&mut self) -> &mut TxQueue {
        &mut self.st.tx
    }

    fn run_once<F>(&mut self, timeout: Duration, mut f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        self.enter(timeout)?;
        Ok(self.reap(&mut f))
    }

    fn run_batch<F>(&mut self, timeout: Duration, want: u32, mut f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        self.enter_want(timeout, want)?;
        Ok(self.reap(&mut f))
    }

    fn flush(&mut self) -> io::Result<()> {
        let st = &mut *self.st;
        let (submitter, mut sq, _) = self.ring.split();
        st.push_pending(&submitter, &mut sq);
        st.pbuf.publish();
        sq.sync();
        let n = sq.len();
        if n > 0 {
            submitter.submit()?;
            st.note_submitted(n);
        }
        Ok(())
    }

    fn stats(&self) -> IoStats {
        IoStats {
            tx_queue_rejected: self.st.tx.rejected(),
            ..self.st.stats
        }
    }
}

impl Drop for UringBackend {
    fn drop(&mut self) {
        // Push out what is queued, cancel everything, forget the sockets (so
        // nothing is re-armed; the kernel keeps its own file references until
        // the cancelled requests complete) and reap until nothing refers to
        // our memory.
        let _ = self.flush();
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
            .build()
            .user_data(UD_CANCEL << KIND_SHIFT);
        {
            let st = &mut *self.st;
            let (submitter, mut sq, _) = self.ring.split();
            if st.push(&submitter, &mut sq, &cancel) {
                st.inflight += 1;
            }
            sq.sync();
            let _ = submitter.submit();
            st.sockets = SocketTable::default();
            st.rearm.clear();
        }
        let mut discard = |_: RxPacket<'_>, _: &mut TxQueue| Verdict::Drop;
        for _ in 0..200 {
            if self.st.inflight == 0 {
                break;
            }
            if self.enter(Duration::from_millis(5)).is_err() {
                break;
            }
            self.reap(&mut discard);
        }
        let clean = self.st.inflight == 0;
        // SAFETY: neither field is used again. Closing the ring first ends
        // the kernel's use of the buffer ring registration.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        if clean {
            // SAFETY: as above; nothing in flight refers to this memory.
            unsafe { ManuallyDrop::drop(&mut self.st) };
        }
        // Otherwise the buffers are leaked on purpose: a request the kernel
        // never completed could still write into them.
    }
}
