//! The out-of-band send queue shared by both backends.

use std::net::SocketAddr;

use super::mem::Region;
use super::{SocketId, TxError, BUF_STRIDE, PACKET_CAPACITY};

/// A queued copy waiting for the next flush.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub(crate) buf: u16,
    pub(crate) socket: SocketId,
    pub(crate) to: SocketAddr,
    pub(crate) len: u32,
}

/// Copies of small out-of-band packets (STUN answers, NACK resends, DTLS
/// flights) that go out with the backend's next flush, beside the in-place
/// forwards of the batch.
///
/// A fixed pool of [`PACKET_CAPACITY`]-byte buffers is allocated up front
/// (`IoConfig::tx_buffers`); when all are queued or still in flight,
/// [`queue_send`](Self::queue_send) returns [`TxError::QueueFull`] and the
/// caller drops or retries later (mmsg frees a buffer when `sendmmsg`
/// returns; io_uring when the send's completion is reaped, i.e. on the next
/// iteration). The receive closure gets `&mut TxQueue`, so answers can be
/// queued while a packet is being handled.
#[derive(Debug)]
pub struct TxQueue {
    mem: Region,
    free: Vec<u16>,
    pending: Vec<Pending>,
    rejected: u64,
}

impl TxQueue {
    pub(crate) fn new(buffers: u16) -> std::io::Result<Self> {
        let n = usize::from(buffers.max(1));
        let mem = Region::new(n * BUF_STRIDE)?;
        // Pop order: lowest index first.
        let free = (0..n as u16).rev().collect();
        Ok(Self {
            mem,
            free,
            pending: Vec::with_capacity(n),
            rejected: 0,
        })
    }

    /// Queues a copy of `data` to be sent from `socket` to `to`.
    pub fn queue_send(
        &mut self,
        socket: SocketId,
        to: SocketAddr,
        data: &[u8],
    ) -> Result<(), TxError> {
        if data.len() > PACKET_CAPACITY {
            self.rejected += 1;
            return Err(TxError::TooLong);
        }
        self.queue_with(socket, to, |buf| {
            buf[..data.len()].copy_from_slice(data);
            data.len()
        })
    }

    /// Queues a packet written in place by `fill`, which gets a
    /// [`PACKET_CAPACITY`]-byte buffer and returns the length it wrote (for
    /// example a NACK resend encrypted straight into the send buffer).
    pub fn queue_with<F>(
        &mut self,
        socket: SocketId,
        to: SocketAddr,
        fill: F,
    ) -> Result<(), TxError>
    where
        F: FnOnce(&mut [u8]) -> usize,
    {
        let Some(buf) = self.free.pop() else {
            self.rejected += 1;
            return Err(TxError::QueueFull);
        };
        let len = fill(self.slice_mut(buf));
        if len > PACKET_CAPACITY {
            self.free.push(buf);
            self.rejected += 1;
            return Err(TxError::TooLong);
        }
        // `len <= PACKET_CAPACITY` fits a u32.
        self.pending.push(Pending {
            buf,
            socket,
            to,
            len: len as u32,
        });
        Ok(())
    }

    /// Buffers available to [`queue_send`](Self::queue_send) right now.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Packets queued and not yet handed to the kernel.
    pub fn queued(&self) -> usize {
        self.pending.len()
    }

    /// Sends refused so far (queue full or too long).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    fn slice_mut(&mut self, buf: u16) -> &mut [u8] {
        // SAFETY: `buf` came off the free list, so neither the kernel nor any
        // other slice uses its stride; the stride lies inside the region
        // (`buf < n`, region >= n * BUF_STRIDE) and PACKET_CAPACITY <=
        // BUF_STRIDE. The slice borrows `self` mutably, so it cannot outlive
        // or alias another one handed out here.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(buf), PACKET_CAPACITY) }
    }

    /// Address of buffer `buf` (for the kernel).
    pub(crate) fn ptr(&self, buf: u16) -> *mut u8 {
        debug_assert!(usize::from(buf) * BUF_STRIDE < self.mem.len());
        // SAFETY: buffer indices are < the pool size the region was mapped
        // for, so the offset stays inside the mapping.
        unsafe { self.mem.ptr().add(usize::from(buf) * BUF_STRIDE) }
    }

    /// Number of queued packets; entries are read with [`Self::pending`].
    pub(crate) fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// Forgets the queued entries; their buffers stay owned by the backend
    /// until it calls [`Self::release`].
    pub(crate) fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Returns buffer `buf` to the free list once the kernel is done with it.
    pub(crate) fn release(&mut self, buf: u16) {
        debug_assert!(!self.free.contains(&buf));
        self.free.push(buf);
    }
}
