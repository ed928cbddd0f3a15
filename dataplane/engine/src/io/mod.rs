//! Batched UDP datagram I/O for the data-plane workers.
//!
//! Two backends implement one interface, [`DatagramIo`]:
//!
//! - [`MmsgBackend`]: non-blocking sockets, one level-triggered `epoll` set
//!   for all of them, `recvmmsg` per ready socket into a batch of buffers and
//!   `sendmmsg` per destination socket. Works everywhere.
//! - [`UringBackend`]: one io_uring per worker, a multishot `RECVMSG` armed on
//!   every socket drawing from one provided-buffer ring
//!   (`IORING_REGISTER_PBUF_RING`), in-place forwards submitted as `SENDMSG`
//!   from the very buffer the packet arrived in, and one `io_uring_enter` per
//!   loop iteration that both submits the previous iteration's sends and
//!   collects new completions.
//!
//! [`Backend`] picks one at run time from a [`BackendKind`]; `Auto` tries
//! io_uring and falls back to mmsg (seccomp profiles, old kernels and
//! `kernel.io_uring_disabled` refuse io_uring), remembering why
//! ([`Backend::uring_error`]). [`probe_uring`] answers the question alone.
//!
//! Which to prefer was measured with `bench/benches/io.rs` (a relay on
//! loopback, 172-byte packets, relay pinned to its own core): with 500-2000
//! sockets at 50k-200k packets/s io_uring spent 8-20 % less CPU per relayed
//! packet (about one `io_uring_enter` per wake-up against `epoll_wait` +
//! `recvmmsg` + `sendmmsg` per socket); with a single socket the two were
//! equal within noise. Hence `Auto`, the default, prefers io_uring.
//!
//! # Zero-copy forwarding
//!
//! [`DatagramIo::run_once`] receives a batch and hands each datagram to the
//! caller's closure as an [`RxPacket`]: metadata plus a mutable buffer of
//! [`PACKET_CAPACITY`] bytes whose first `len` bytes are the datagram, so at
//! least [`TAILROOM`] bytes remain after any datagram the backend accepts
//! (room for an SRTP auth tag). The closure edits the packet in place and
//! returns a [`Verdict`]: `Drop`, or `Send` from any of the backend's sockets
//! to any address with any length up to the capacity. All sends of the batch
//! leave from the same buffers in one batched send. Packets the worker makes
//! up (STUN answers, NACK resends, DTLS flights) are copied into the
//! [`TxQueue`] (also reachable from inside the closure) and go out with the
//! same flush.
//!
//! # Ownership and cost
//!
//! A backend belongs to one worker thread and is neither `Send` nor `Sync`
//! (io_uring is set up single-issuer): create it on the thread that runs it.
//! All buffers, rings and scratch arrays are allocated by the constructor;
//! the receive/forward path allocates nothing and takes no locks. Errors the
//! network can cause (`EAGAIN`/`ENOBUFS` on send, `ECONNREFUSED` and other
//! ICMP-induced errors, truncated datagrams) are counted in [`IoStats`] and
//! never fail the loop; `run_once` only returns `Err` when the backend itself
//! is broken (a bad epoll or ring descriptor).
//!
//! # Locked memory
//!
//! Only io_uring's rings count against `RLIMIT_MEMLOCK` (8 MiB here and not
//! raisable) when the process lacks `CAP_IPC_LOCK`: the SQ/CQ rings and the
//! provided-buffer ring (16 bytes per buffer). The packet buffers themselves
//! are ordinary memory that the kernel copies into, never pinned.
//! Registered (fixed) buffers would pin the whole pool and are deliberately
//! not used. Measured without `CAP_IPC_LOCK`: the default sizing pins about
//! 230 KiB per backend (35 fit in 8 MiB; the limit is per user, across
//! processes), the largest (32768 buffers, 4096 SQ entries) about 1.8 MiB.
//! The kernel gives the budget back asynchronously after a ring is closed,
//! so closing and re-creating rings in a tight loop can hit `ENOMEM`
//! briefly. When the kernel refuses (`ENOMEM`/`EPERM`), construction fails
//! with a [`UringError`] and `Auto` falls back to mmsg.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

mod addr;
mod mem;
mod mmsg;
mod table;
mod tx;
mod uring;

pub use mmsg::MmsgBackend;
pub use tx::TxQueue;
pub use uring::{probe_uring, UringBackend, UringError, UringStage};

/// Distance between packet buffers in the pools.
pub(crate) const BUF_STRIDE: usize = 2048;

/// Largest datagram delivered to the caller; longer ones are counted in
/// [`IoStats::rx_truncated`] and dropped.
pub const MAX_DATAGRAM: usize = 1920;

/// Bytes guaranteed free after the largest accepted datagram.
pub const TAILROOM: usize = 64;

/// Size of the mutable buffer handed to the receive closure and of each
/// [`TxQueue`] buffer: the most a `Send` verdict or a queued packet may carry.
pub const PACKET_CAPACITY: usize = MAX_DATAGRAM + TAILROOM;

/// A socket registered with a backend: a dense small index, usable directly
/// to index per-socket tables. Ids of removed sockets are reused (lowest
/// first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub(crate) u32);

impl SocketId {
    /// The id as a table index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}", self.0)
    }
}

/// One received datagram lent to the receive closure.
pub struct RxPacket<'a> {
    /// The socket it arrived on.
    pub socket: SocketId,
    /// Its source address (IPv4-mapped IPv6 sources are reported as IPv4).
    pub from: SocketAddr,
    /// Datagram length: `buf[..len]` is the datagram.
    pub len: usize,
    /// The whole packet buffer, [`PACKET_CAPACITY`] bytes, editable in place
    /// (the bytes after `len` are scratch).
    pub buf: &'a mut [u8],
}

impl RxPacket<'_> {
    /// The received datagram.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The received datagram, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl fmt::Debug for RxPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxPacket")
            .field("socket", &self.socket)
            .field("from", &self.from)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// What to do with a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Recycle the buffer.
    Drop,
    /// Send the first `len` bytes of the (edited) buffer from `socket` to
    /// `to`. A `len` above [`PACKET_CAPACITY`], an unknown socket or an
    /// address the socket's family cannot reach is counted in
    /// [`IoStats::tx_errors`] and dropped.
    Send {
        /// Socket to send from (any socket of this backend).
        socket: SocketId,
        /// Destination.
        to: SocketAddr,
        /// Bytes to send from the start of the buffer.
        len: usize,
    },
}

/// Why [`TxQueue::queue_send`] refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// All out-of-band buffers are queued or in flight.
    QueueFull,
    /// Longer than [`PACKET_CAPACITY`].
    TooLong,
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::QueueFull => "send queue full",
            Self::TooLong => "packet longer than the buffer capacity",
        })
    }
}

impl std::error::Error for TxError {}

/// Counters kept by a backend (plain integers: a backend is single-threaded;
/// the worker publishes them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Datagrams delivered to the receive closure.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Receive batches: `recvmmsg` calls that returned datagrams (mmsg), or
    /// completion-queue drains that did (io_uring).
    pub rx_batches: u64,
    /// Datagrams longer than [`MAX_DATAGRAM`], dropped.
    pub rx_truncated: u64,
    /// Receive errors (ICMP-induced `ECONNREFUSED` etc., malformed
    /// completions); the loop continues.
    pub rx_errors: u64,
    /// io_uring only: times the provided-buffer ring ran dry (`ENOBUFS`); the
    /// socket's receive is re-armed, nothing is lost unless its kernel queue
    /// overflows meanwhile.
    pub rx_no_buffers: u64,
    /// Datagrams the kernel accepted for sending.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Send batches: `sendmmsg` calls (mmsg) or `io_uring_enter` calls that
    /// submitted sends (io_uring).
    pub tx_batches: u64,
    /// Sends dropped because the socket buffer was full (`EAGAIN`,
    /// `ENOBUFS`).
    pub tx_dropped: u64,
    /// Other send failures: `ECONNREFUSED` and friends, unreachable address
    /// family, unknown socket, length above capacity.
    pub tx_errors: u64,
    /// [`TxQueue`] refusals (queue full or too long).
    pub tx_queue_rejected: u64,
}

/// Which backend to use (from configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// io_uring or fail.
    Uring,
    /// recvmmsg/sendmmsg + epoll.
    Mmsg,
    /// io_uring if the kernel allows it, else mmsg.
    #[default]
    Auto,
}

/// The backend actually running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveKind {
    /// [`UringBackend`].
    Uring,
    /// [`MmsgBackend`].
    Mmsg,
}

impl fmt::Display for ActiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uring => "io_uring",
            Self::Mmsg => "recvmmsg/sendmmsg",
        })
    }
}

/// Backend sizing. The defaults suit one worker with thousands of sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoConfig {
    /// Which backend [`Backend::open`] builds.
    pub kind: BackendKind,
    /// mmsg: datagrams received (and handed to the closure) per batch
    /// (io_uring hands over whatever the completion queue holds).
    pub batch: usize,
    /// io_uring: receive buffers in the provided-buffer ring (2 KiB of plain
    /// memory and 16 pinned bytes each); a power of two up to 32768. They are
    /// shared by all sockets and held while a packet waits in the completion
    /// queue, is handled, or is being forwarded, so the ring must cover about
    /// two iterations' worth of datagrams: when it runs dry, receives end with
    /// `ENOBUFS` ([`IoStats::rx_no_buffers`]) and are re-armed, which costs
    /// CPU exactly when the worker is overloaded. 4096 (8 MiB per worker) had
    /// no such event relaying 500 sockets at saturation here; 2048 had many.
    pub uring_buffers: u16,
    /// io_uring: submission queue entries (the completion queue gets four
    /// times as many, and at least twice `uring_buffers`).
    pub uring_sq_entries: u32,
    /// Out-of-band send buffers in the [`TxQueue`].
    pub tx_buffers: u16,
    /// `SO_RCVBUF` applied to each added socket (`None`: leave as is).
    pub socket_rcvbuf: Option<usize>,
    /// `SO_SNDBUF` applied to each added socket (`None`: leave as is).
    pub socket_sndbuf: Option<usize>,
}

impl Default for IoConfig {
    fn default() -> Self {
        Self {
            kind: BackendKind::Auto,
            batch: 64,
            uring_buffers: 4096,
            uring_sq_entries: 512,
            tx_buffers: 256,
            socket_rcvbuf: None,
            socket_sndbuf: None,
        }
    }
}

/// The interface a data-plane worker drives; implemented by both backends
/// and by [`Backend`].
pub trait DatagramIo {
    /// The backend in use.
    fn kind(&self) -> ActiveKind;

    /// Registers a socket (made non-blocking here) and starts receiving on it.
    fn add_socket(&mut self, socket: UdpSocket) -> io::Result<SocketId>;

    /// Binds a new UDP socket to `addr` and registers it.
    fn bind(&mut self, addr: SocketAddr) -> io::Result<SocketId> {
        self.add_socket(UdpSocket::bind(addr)?)
    }

    /// Flushes queued sends, stops receiving on `id` and closes it. The id may
    /// be handed out again by the next [`add_socket`](Self::add_socket).
    fn remove_socket(&mut self, id: SocketId) -> io::Result<()>;

    /// Local address of a registered socket.
    fn local_addr(&self, id: SocketId) -> Option<SocketAddr>;

    /// Number of registered sockets.
    fn socket_count(&self) -> usize;

    /// The out-of-band send queue.
    fn tx_queue(&mut self) -> &mut TxQueue;

    /// Queues a copy of `data` to go out with the next flush.
    fn queue_send(&mut self, socket: SocketId, to: SocketAddr, data: &[u8]) -> Result<(), TxError> {
        self.tx_queue().queue_send(socket, to, data)
    }

    /// Waits at most `timeout` (`Duration::ZERO`: do not block) for datagrams,
    /// hands each to `f`, and sends what it returns. Returns the number of
    /// datagrams handed to `f`.
    ///
    /// mmsg sends each batch before returning; io_uring pushes the sends onto
    /// its submission queue and submits them with the next wait (one system
    /// call per iteration). [`flush`](Self::flush) forces them out.
    fn run_once<F>(&mut self, timeout: Duration, f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict;

    /// Like [`run_once`](Self::run_once), but lets datagrams accumulate:
    /// waits until `want` datagrams are ready or `timeout` passes, then
    /// handles all that are ready. Under load this turns many wake-ups with
    /// one datagram each into one wake-up with many, at the price of up to
    /// `timeout` of added latency. `want <= 1` is `run_once`.
    fn run_batch<F>(&mut self, timeout: Duration, want: u32, f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        let _ = want;
        self.run_once(timeout, f)
    }

    /// Non-blocking [`run_once`](Self::run_once).
    fn poll<F>(&mut self, f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        self.run_once(Duration::ZERO, f)
    }

    /// Busy-poll budget: up to `spins` non-blocking polls, returning as soon
    /// as one delivers packets; if none does, one wait of at most `timeout`.
    fn run_busy<F>(&mut self, spins: u32, timeout: Duration, mut f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        for _ in 0..spins {
            let n = self.run_once(Duration::ZERO, &mut f)?;
            if n > 0 {
                return Ok(n);
            }
        }
        self.run_once(timeout, f)
    }

    /// Hands all queued sends to the kernel now.
    fn flush(&mut self) -> io::Result<()>;

    /// Counters.
    fn stats(&self) -> IoStats;
}

enum Inner {
    Uring(UringBackend),
    Mmsg(MmsgBackend),
}

/// The backend chosen at run time ([`BackendKind`]); dispatches to
/// [`UringBackend`] or [`MmsgBackend`].
pub struct Backend {
    inner: Inner,
    uring_error: Option<UringError>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("kind", &self.kind())
            .field("uring_error", &self.uring_error)
            .field("sockets", &self.socket_count())
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// Builds the backend `config.kind` asks for. With `Auto`, an io_uring
    /// that cannot be set up (refused, too old, out of locked memory) is
    /// replaced by mmsg and the reason kept in [`uring_error`](Self::uring_error).
    pub fn open(config: &IoConfig) -> io::Result<Self> {
        match config.kind {
            BackendKind::Uring => Ok(Self {
                inner: Inner::Uring(UringBackend::new(config)?),
                uring_error: None,
            }),
            BackendKind::Mmsg => Ok(Self {
                inner: Inner::Mmsg(MmsgBackend::new(config)?),
                uring_error: None,
            }),
            BackendKind::Auto => match UringBackend::new(config) {
                Ok(u) => Ok(Self {
                    inner: Inner::Uring(u),
                    uring_error: None,
                }),
                Err(e) => Ok(Self {
                    inner: Inner::Mmsg(MmsgBackend::new(config)?),
                    uring_error: Some(e),
                }),
            },
        }
    }

    /// Why io_uring was not used, when `Auto` fell back to mmsg.
    pub fn uring_error(&self) -> Option<UringError> {
        self.uring_error
    }
}

macro_rules! dispatch {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Inner::Uring($b) => $e,
            Inner::Mmsg($b) => $e,
        }
    };
}

impl DatagramIo for Backend {
    fn kind(&self) -> ActiveKind {
        dispatch!(&self.inner, b => b.kind())
    }
    fn add_socket(&mut self, socket: UdpSocket) -> io::Result<SocketId> {
        dispatch!(&mut self.inner, b => b.add_socket(socket))
    }
    fn remove_socket(&mut self, id: SocketId) -> io::Result<()> {
        dispatch!(&mut self.inner, b => b.remove_socket(id))
    }
    fn local_addr(&self, id: SocketId) -> Option<SocketAddr> {
        dispatch!(&self.inner, b => b.local_addr(id))
    }
    fn socket_count(&self) -> usize {
        dispatch!(&self.inner, b => b.socket_count())
    }
    fn tx_queue(&mut self) -> &mut TxQueue {
        dispatch!(&mut self.inner, b => b.tx_queue())
    }
    #[inline]
    fn run_once<F>(&mut self, timeout: Duration, f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        dispatch!(&mut self.inner, b => b.run_once(timeout, f))
    }
    fn run_batch<F>(&mut self, timeout: Duration, want: u32, f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        dispatch!(&mut self.inner, b => b.run_batch(timeout, want, f))
    }
    fn flush(&mut self) -> io::Result<()> {
        dispatch!(&mut self.inner, b => b.flush())
    }
    fn stats(&self) -> IoStats {
        dispatch!(&self.inner, b => b.stats())
    }
}

/// Applies the configured socket buffer sizes and non-blocking mode.
pub(crate) fn prepare_socket(socket: &UdpSocket, config: &IoConfig) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let s = socket2::SockRef::from(socket);
    if let Some(n) = config.socket_rcvbuf {
        s.set_recv_buffer_size(n)?;
    }
    if let Some(n) = config.socket_sndbuf {
        s.set_send_buffer_size(n)?;
    }
    Ok(())
}

/// Timeout as a `timespec`-style (seconds, nanoseconds) pair.
pub(crate) fn split_timeout(t: Duration) -> (u64, u32) {
    (t.as_secs(), t.subsec_nanos())
}
