//! The portable backend: non-blocking sockets, one level-triggered epoll set,
//! `recvmmsg` per ready socket, `sendmmsg` per sending socket.
//!
//! One iteration: `epoll_wait` (or `epoll_pwait2` for sub-millisecond
//! timeouts) for up to 256 ready sockets; for each, one `recvmmsg` into the
//! free part of the receive batch; when the batch is full (and at the end),
//! every datagram goes through the closure, then the sends (in-place forwards
//! and [`TxQueue`] copies) are grouped by sending socket, keeping their order
//! per socket, and each group goes out in `sendmmsg` calls. Sockets not
//! drained this time stay ready (level-triggered) and come back next time,
//! behind the others (epoll rotates its ready list), so one busy socket
//! cannot starve the rest.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::addr::{self, NameBuf, NAME_LEN};
use super::mem::Region;
use super::table::SocketTable;
use super::tx::TxQueue;
use super::{
    prepare_socket, split_timeout, ActiveKind, DatagramIo, IoConfig, IoStats, RxPacket, SocketId,
    Verdict, BUF_STRIDE, MAX_DATAGRAM, PACKET_CAPACITY,
};

const MAX_EVENTS: usize = 256;

/// A send waiting for the flush.
#[derive(Clone, Copy, Debug)]
struct Out {
    socket: SocketId,
    seq: u32,
    ptr: *mut u8,
    len: u32,
    to: SocketAddr,
}

/// recvmmsg/sendmmsg + epoll backend. See the [module docs](super).
pub struct MmsgBackend {
    epfd: OwnedFd,
    config: IoConfig,
    sockets: SocketTable,
    events: Vec<libc::epoll_event>,
    batch: usize,
    rx_mem: Region,
    rx_hdrs: Box<[libc::mmsghdr]>,
    rx_iov: Box<[libc::iovec]>,
    rx_names: Box<[NameBuf]>,
    rx_socket: Box<[SocketId]>,
    out: Vec<Out>,
    tx_hdrs: Box<[libc::mmsghdr]>,
    tx_iov: Box<[libc::iovec]>,
    tx_names: Box<[NameBuf]>,
    tx: TxQueue,
    stats: IoStats,
    pwait2: bool,
}

impl std::fmt::Debug for MmsgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgBackend")
            .field("epfd", &self.epfd)
            .field("sockets", &self.sockets.live())
            .field("batch", &self.batch)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn zeroed_hdrs(n: usize) -> Box<[libc::mmsghdr]> {
    // SAFETY: mmsghdr is a plain C struct (integers and raw pointers) for
    // which all-zero bytes are a valid value.
    (0..n)
        .map(|_| unsafe { std::mem::zeroed::<libc::mmsghdr>() })
        .collect()
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl MmsgBackend {
    /// Creates the epoll set and the buffers (`config.batch` receive
    /// buffers, `config.tx_buffers` out-of-band ones).
    pub fn new(config: &IoConfig) -> io::Result<Self> {
        let batch = config.batch.clamp(1, 1024);
        // SAFETY: epoll_create1 has no memory-safety preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tx = TxQueue::new(config.tx_buffers)?;
        let out_cap = batch + usize::from(config.tx_buffers.max(1));
        let rx_mem = Region::new(batch * BUF_STRIDE)?;
        let mut b = Self {
            epfd,
            config: config.clone(),
            sockets: SocketTable::default(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
            batch,
            rx_mem,
            rx_hdrs: zeroed_hdrs(batch),
            rx_iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                batch
            ]
            .into(),
            rx_names: vec![NameBuf::ZERO; batch].into(),
            rx_socket: vec![SocketId(0); batch].into(),
            out: Vec::with_capacity(out_cap),
            tx_hdrs: zeroed_hdrs(out_cap),
            tx_iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                out_cap
            ]
            .into(),
            tx_names: vec![NameBuf::ZERO; out_cap].into(),
            tx,
            stats: IoStats::default(),
            pwait2: true,
        };
        // Point each receive header at its buffer and name slot once; these
        // boxed slices never move or grow.
        for k in 0..batch {
            // SAFETY: k < batch and the region holds batch strides.
            b.rx_iov[k].iov_base = unsafe { b.rx_mem.ptr().add(k * BUF_STRIDE) }.cast();
            b.rx_iov[k].iov_len = MAX_DATAGRAM;
            let iov: *mut libc::iovec = &raw mut b.rx_iov[k];
            let name: *mut NameBuf = &raw mut b.rx_names[k];
            let h = &mut b.rx_hdrs[k].msg_hdr;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            h.msg_name = name.cast();
            h.msg_namelen = NAME_LEN as u32;
        }
        for k in 0..out_cap {
            let iov: *mut libc::iovec = &raw mut b.tx_iov[k];
            let name: *mut NameBuf = &raw mut b.tx_names[k];
            let h = &mut b.tx_hdrs[k].msg_hdr;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            h.msg_name = name.cast();
        }
        Ok(b)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        let max = self.events.len() as libc::c_int;
        let n = if timeout.is_zero() {
            // SAFETY: `events` has room for `max` entries.
            unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), self.events.as_mut_ptr(), max, 0) }
        } else {
            let mut n = -1;
            if self.pwait2 {
                let (s, ns) = split_timeout(timeout);
                let ts = libc::timespec {
                    tv_sec: libc::time_t::try_from(s).unwrap_or(libc::time_t::MAX),
                    tv_nsec: libc::c_long::from(ns as i32),
                };
                // SAFETY: `events` has room for `max` entries; `ts` lives
                // across the call; a null sigmask means "unchanged".
                n = unsafe {
                    libc::epoll_pwait2(
                        self.epfd.as_raw_fd(),
                        self.events.as_mut_ptr(),
                        max,
                        &ts,
                        std::ptr::null(),
                    )
                };
                if n < 0 && errno() == libc::ENOSYS {
                    self.pwait2 = false;
                }
            }
            if !self.pwait2 {
                // Round up so a sub-millisecond timeout still sleeps.
                let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
                // SAFETY: as above.
                n = unsafe {
                    libc::epoll_wait(self.epfd.as_raw_fd(), self.events.as_mut_ptr(), max, ms)
                };
            }
            n
        };
        if n < 0 {
            let e = errno();
            return if e == libc::EINTR {
                Ok(0)
            } else {
                Err(io::Error::from_raw_os_error(e))
            };
        }
        Ok(n as usize)
    }

    /// Hands the `n` received datagrams to `f`, then sends.
    fn process<F>(&mut self, n: usize, f: &mut F) -> usize
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        let mut delivered = 0;
        for k in 0..n {
            let h = &mut self.rx_hdrs[k];
            let len = h.msg_len as usize;
            let flags = h.msg_hdr.msg_flags;
            let namelen = (h.msg_hdr.msg_namelen as usize).min(NAME_LEN);
            h.msg_hdr.msg_namelen = NAME_LEN as u32;
            h.msg_hdr.msg_flags = 0;
            if flags & libc::MSG_TRUNC != 0 || len > MAX_DATAGRAM {
                self.stats.rx_truncated += 1;
                continue;
            }
            let Some(from) = addr::decode(&self.rx_names[k].0[..namelen]) else {
                self.stats.rx_errors += 1;
                continue;
            };
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += len as u64;
            delivered += 1;
            // SAFETY: k < batch; stride k of the receive region belongs to
            // receive slot k alone and the kernel is not writing to it (the
            // recvmmsg that filled it has returned). The slice is dropped
            // before the slot is reused by the next recvmmsg.
            let ptr = unsafe { self.rx_mem.ptr().add(k * BUF_STRIDE) };
            // SAFETY: see above; PACKET_CAPACITY <= BUF_STRIDE.
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr, PACKET_CAPACITY) };
            let socket = self.rx_socket[k];
            match f(
                RxPacket {
                    socket,
                    from,
                    len,
                    buf,
                },
                &mut self.tx,
            ) {
                Verdict::Drop => {}
                Verdict::Send { socket, to, len } => {
                    if len > PACKET_CAPACITY {
                        self.stats.tx_errors += 1;
                    } else {
                        let seq = self.out.len() as u32;
                        self.out.push(Out {
                            socket,
                            seq,
                            ptr,
                            len: len as u32,
                            to,
                        });
                    }
                }
            }
        }
        self.flush_out();
        delivered
    }

    /// Sends everything in `out` plus the [`TxQueue`]'s pending copies.
    fn flush_out(&mut self) {
        for p in self.tx.pending() {
            let seq = self.out.len() as u32;
            self.out.push(Out {
                socket: p.socket,
                seq,
                ptr: self.tx.ptr(p.buf),
                len: p.len,
                to: p.to,
            });
        }
        if !self.out.is_empty() {
            // Group by socket, keeping each socket's sends in order.
            self.out.sort_unstable_by_key(|o| (o.socket, o.seq));
            let mut i = 0;
            while i < self.out.len() {
                let socket = self.out[i].socket;
                let mut j = i + 1;
                while j < self.out.len() && self.out[j].socket == socket {
                    j += 1;
                }
                self.send_group(i, j);
                i = j;
            }
            self.out.clear();
        }
        for k in 0..self.tx.pending().len() {
            let buf = self.tx.pending()[k].buf;
            self.tx.release(buf);
        }
        self.tx.clear_pending();
    }

    /// Sends `out[i..j]`, which all leave from the same socket.
    fn send_group(&mut self, i: usize, j: usize) {
        let Some(slot) = self.sockets.get(self.out[i].socket) else {
            self.stats.tx_errors += (j - i) as u64;
            return;
        };
        let (fd, family) = (slot.fd, slot.family);
        let mut m = 0;
        for o in &self.out[i..j] {
            let Some(namelen) = addr::encode(o.to, family, &mut self.tx_names[m]) else {
                self.stats.tx_errors += 1;
                continue;
            };
            self.tx_iov[m].iov_base = o.ptr.cast();
            self.tx_iov[m].iov_len = o.len as usize;
            let h = &mut self.tx_hdrs[m];
            h.msg_hdr.msg_namelen = namelen;
            h.msg_len = 0;
            m += 1;
        }
        let mut off = 0;
        let mut eintr = 0;
        while off < m {
            // SAFETY: headers off..m point at their own iovec and name slots
            // (set up in `new`, never moved) and at buffers that stay
            // untouched until this call returns.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.tx_hdrs.as_mut_ptr().add(off),
                    (m - off) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                let r = r as usize;
                self.stats.tx_batches += 1;
                self.stats.tx_packets += r as u64;
                for h in &self.tx_hdrs[off..off + r] {
                    self.stats.tx_bytes += u64::from(h.msg_len);
                }
                off += r;
                continue;
            }
            match errno() {
                libc::EINTR if eintr < 3 => eintr += 1,
                libc::EAGAIN | libc::ENOBUFS => {
                    self.stats.tx_dropped += (m - off) as u64;
                    break;
                }
                // ECONNREFUSED, EPERM, ENETUNREACH, EINVAL...: skip the one
                // message the kernel refused and go on with the rest.
                _ => {
                    self.stats.tx_errors += 1;
                    off += 1;
                }
            }
        }
    }

    /// Clears a pending socket error and drains its error queue so a
    /// level-triggered `EPOLLERR` does not spin.
    fn clear_error(&mut self, fd: RawFd) {
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err`/`len` are valid for one c_int as SO_ERROR requires.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut err).cast(),
                &mut len,
            )
        };
        if r == 0 && err != 0 {
            self.stats.rx_errors += 1;
        }
        let mut scratch = [0u8; 256];
        for _ in 0..8 {
            let mut iov = libc::iovec {
                iov_base: scratch.as_mut_ptr().cast(),
                iov_len: scratch.len(),
            };
            let mut control = [0u64; 32];
            // SAFETY: all-zero is a valid msghdr.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control);
            // SAFETY: `msg` points at live local buffers of the given sizes.
            let r = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
            if r < 0 {
                break;
            }
            self.stats.rx_errors += 1;
        }
    }
}

impl DatagramIo for MmsgBackend {
    fn kind(&self) -> ActiveKind {
        ActiveKind::Mmsg
    }

    fn add_socket(&mut self, socket: UdpSocket) -> io::Result<SocketId> {
        prepare_socket(&socket, &self.config)?;
        let fd = socket.as_raw_fd();
        let (id, _) = self.sockets.insert(socket)?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: u64::from(id.0),
        };
        // SAFETY: `ev` is a valid event; both descriptors are open.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r != 0 {
            let e = io::Error::last_os_error();
            self.sockets.remove(id);
            return Err(e);
        }
        Ok(id)
    }

    fn remove_socket(&mut self, id: SocketId) -> io::Result<()> {
        self.flush_out();
        let Some(slot) = self.sockets.get(id) else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        let fd = slot.fd;
        // SAFETY: both descriptors are open; DEL ignores the event pointer.
        unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            );
        }
        self.sockets.remove(id);
        Ok(())
    }

    fn local_addr(&self, id: SocketId) -> Option<SocketAddr> {
        self.sockets.get(id).and_then(|s| s.local)
    }

    fn socket_count(&self) -> usize {
        self.sockets.live()
    }

    fn tx_queue(&mut self) -> &mut TxQueue {
        &mut self.tx
    }

    fn run_batch<F>(&mut self, timeout: Duration, want: u32, mut f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        if want <= 1 || timeout.is_zero() {
            return self.run_once(timeout, f);
        }
        // epoll cannot wait for "n datagrams across sockets": let them
        // accumulate for the window, then take everything that is ready.
        if self.tx.queued() > 0 {
            self.flush_out();
        }
        std::thread::sleep(timeout);
        // Take everything that accumulated, not just one epoll round.
        let mut total = 0;
        for _ in 0..64 {
            let n = self.run_once(Duration::ZERO, &mut f)?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    fn run_once<F>(&mut self, timeout: Duration, mut f: F) -> io::Result<usize>
    where
        F: FnMut(RxPacket<'_>, &mut TxQueue) -> Verdict,
    {
        if self.tx.queued() > 0 {
            self.flush_out();
        }
        let nev = self.wait(timeout)?;
        let mut delivered = 0;
        let mut nrx = 0;
        for e in 0..nev {
            let ev = self.events[e];
            let (bits, data) = (ev.events, ev.u64);
            let id = SocketId(data as u32);
            let Some(slot) = self.sockets.get(id) else {
                continue;
            };
            let fd = slot.fd;
            if nrx == self.batch {
                delivered += self.process(nrx, &mut f);
                nrx = 0;
            }
            let want = self.batch - nrx;
            // SAFETY: headers nrx..batch point at their own iovecs, names and
            // buffers, none of which is borrowed now.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    self.rx_hdrs.as_mut_ptr().add(nrx),
                    want as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r > 0 {
                let r = r as usize;
                self.rx_socket[nrx..nrx + r].fill(id);
                nrx += r;
                self.stats.rx_batches += 1;
            } else if r < 0 {
                let e = errno();
                if e != libc::EAGAIN && e != libc::EINTR {
                    // ECONNREFUSED etc.: the error is consumed by the call.
                    self.stats.rx_errors += 1;
                }
            }
            if bits & libc::EPOLLERR as u32 != 0 {
                self.clear_error(fd);
            }
        }
        if nrx > 0 {
            delivered += self.process(nrx, &mut f);
        }
        Ok(delivered)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_out();
        Ok(())
    }

    fn stats(&self) -> IoStats {
        IoStats {
            tx_queue_rejected: self.tx.rejected(),
            ..self.stats
        }
    }
}
