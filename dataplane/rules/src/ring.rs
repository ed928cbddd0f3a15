//! A single-producer single-consumer ring of fixed-size slots in memory that
//! two processes may share.
//!
//! Layout (all offsets from the ring's base, which is 64-byte aligned):
//!
//! ```text
//!   0   head: u64   written only by the producer (next slot to fill)
//!  64   tail: u64   written only by the consumer (next slot to read)
//! 128   slots: capacity × slot_size bytes, each [SlotHeader | body ...]
//! ```
//!
//! Head and tail live on separate cache lines so the two sides do not
//! false-share. Both are free-running 64-bit counters; the slot of counter
//! `n` is `n & (capacity - 1)`. The producer publishes a slot with a release
//! store of `head`; the consumer frees it with a release store of `tail`.
//!
//! Both counters live in the shared memory, not in the handles, so a process
//! that dies and re-attaches continues exactly where it stopped: this is what
//! lets a restarted control plane pick up its rings while the data plane keeps
//! forwarding. The other side may be buggy or hostile, so every value read
//! from shared memory (counters, lengths) is range-checked before use.

use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::MmapRaw;

/// Bytes before the first slot: two cache lines of counters.
pub const RING_CTL_LEN: usize = 128;
/// Bytes of the header in front of each slot's body.
pub const SLOT_HEADER_LEN: usize = 8;

/// Why a ring operation did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingError {
    /// No free slot: the consumer is behind.
    Full,
    /// The body does not fit in one slot.
    TooLarge,
    /// The counters in shared memory are inconsistent (the peer wrote
    /// garbage); the ring must be reset by whoever owns the region.
    Corrupt,
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RingError::Full => "ring full",
            RingError::TooLarge => "message larger than a ring slot",
            RingError::Corrupt => "ring counters corrupt",
        })
    }
}

impl std::error::Error for RingError {}

/// Geometry of one ring. `capacity` is a power of two; `slot_size` a multiple
/// of 64 that includes the slot header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingGeometry {
    /// Number of slots.
    pub capacity: u32,
    /// Bytes per slot including [`SLOT_HEADER_LEN`].
    pub slot_size: u32,
}

impl RingGeometry {
    /// Checks the geometry and returns the total bytes the ring occupies.
    pub fn byte_len(&self) -> Result<usize, &'static str> {
        if !self.capacity.is_power_of_two() {
            return Err("ring capacity must be a power of two");
        }
        if self.slot_size < 64 || !self.slot_size.is_multiple_of(64) {
            return Err("ring slot size must be a non-zero multiple of 64");
        }
        Ok(RING_CTL_LEN + self.capacity as usize * self.slot_size as usize)
    }

    /// Largest body one slot carries.
    pub fn max_body(&self) -> usize {
        self.slot_size as usize - SLOT_HEADER_LEN
    }
}

/// Raw access to one ring's memory. Shared by [`Producer`] and [`Consumer`].
/// Holds the mapping so the memory outlives every handle.
#[derive(Debug)]
struct RawRing {
    _map: Arc<MmapRaw>,
    base: *mut u8,
    geo: RingGeometry,
}

// SAFETY: a RawRing points into a mapping it keeps alive (`_map`); all
// cross-thread and cross-process coordination goes through the atomics.
unsafe impl Send for RawRing {}

impl RawRing {
    /// # Safety
    /// `offset` must be 64-byte aligned within `map` and the ring's
    /// `geo.byte_len()` bytes must lie inside it.
    unsafe fn new(map: Arc<MmapRaw>, offset: usize, geo: RingGeometry) -> Self {
        // SAFETY: the caller guarantees the offset is inside the mapping.
        let base = unsafe { map.as_mut_ptr().add(offset) };
        debug_assert_eq!(base as usize % 64, 0, "ring base is 64-byte aligned");
        Self {
            _map: map,
            base,
            geo,
        }
    }

    fn head(&self) -> &AtomicU64 {
        // SAFETY: offset 0 is inside the ring, 8-byte aligned (base is 64-byte
        // aligned) and only ever accessed atomically.
        unsafe { &*(self.base as *const AtomicU64) }
    }

    fn tail(&self) -> &AtomicU64 {
        // SAFETY: offset 64 is inside the ring, 8-byte aligned and only ever
        // accessed atomically.
        unsafe { &*(self.base.add(64) as *const AtomicU64) }
    }

    fn slot(&self, counter: u64) -> *mut u8 {
        let idx = (counter & u64::from(self.geo.capacity - 1)) as usize;
        // SAFETY: idx < capacity, so the slot lies inside the ring.
        unsafe {
            self.base
                .add(RING_CTL_LEN + idx * self.geo.slot_size as usize)
        }
    }
}

/// The writing end of a ring. Exactly one may exist per ring at a time.
#[derive(Debug)]
pub struct Producer {
    raw: RawRing,
    head: u64,
    cached_tail: u64,
}

impl Producer {
    /// # Safety
    /// As `RawRing::new`, and no other `Producer` for the same ring may be
    /// used concurrently (in this or any other process).
    pub(crate) unsafe fn new(map: Arc<MmapRaw>, offset: usize, geo: RingGeometry) -> Self {
        // SAFETY: forwarded from the caller.
        let raw = unsafe { RawRing::new(map, offset, geo) };
        let head = raw.head().load(Ordering::Acquire);
        let cached_tail = raw.tail().load(Ordering::Acquire);
        Self {
            raw,
            head,
            cached_tail,
        }
    }

    /// Slots the consumer has not yet read.
    pub fn len(&self) -> usize {
        let tail = self.raw.tail().load(Ordering::Acquire);
        self.head.wrapping_sub(tail) as usize
    }

    /// True when nothing is waiting for the consumer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes one message of `kind` whose body `fill` writes into the slot
    /// (a buffer of exactly `len` bytes). Fails without side effects when the
    /// ring is full or `len` does not fit a slot.
    pub fn push_with(
        &mut self,
        kind: u16,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), RingError> {
        if len > self.raw.geo.max_body() {
            return Err(RingError::TooLarge);
        }
        let cap = u64::from(self.raw.geo.capacity);
        if self.head.wrapping_sub(self.cached_tail) >= cap {
            self.cached_tail = self.raw.tail().load(Ordering::Acquire);
            let used = self.head.wrapping_sub(self.cached_tail);
            if used > cap {
                return Err(RingError::Corrupt);
            }
            if used == cap {
                return Err(RingError::Full);
            }
        }
        let slot = self.raw.slot(self.head);
        // SAFETY: the slot is inside the ring and, because head - tail <
        // capacity, the consumer does not read it until we publish `head`.
        // The slot spans slot_size >= SLOT_HEADER_LEN + len bytes.
        unsafe {
            let hdr = core::slice::from_raw_parts_mut(slot, SLOT_HEADER_LEN);
            hdr[0..2].copy_from_slice(&kind.to_le_bytes());
            hdr[2..4].copy_from_slice(&[0, 0]);
            hdr[4..8].copy_from_slice(&(len as u32).to_le_bytes());
            fill(core::slice::from_raw_parts_mut(
                slot.add(SLOT_HEADER_LEN),
                len,
            ));
        }
        self.head = self.head.wrapping_add(1);
        self.raw.head().store(self.head, Ordering::Release);
        Ok(())
    }

    /// Writes one message of `kind` with `body`.
    pub fn push(&mut self, kind: u16, body: &[u8]) -> Result<(), RingError> {
        self.push_with(kind, body.len(), |dst| dst.copy_from_slice(body))
    }
}

/// The reading end of a ring. Exactly one may exist per ring at a time.
#[derive(Debug)]
pub struct Consumer {
    raw: RawRing,
    tail: u64,
    cached_head: u64,
}

impl Consumer {
    /// # Safety
    /// As `RawRing::new`, and no other `Consumer` for the same ring may be
    /// used concurrently (in this or any other process).
    pub(crate) unsafe fn new(map: Arc<MmapRaw>, offset: usize, geo: RingGeometry) -> Self {
        // SAFETY: forwarded from the caller.
        let raw = unsafe { RawRing::new(map, offset, geo) };
        let tail = raw.tail().load(Ordering::Acquire);
        let cached_head = raw.head().load(Ordering::Acquire);
        Self {
            raw,
            tail,
            cached_head,
        }
    }

    /// Reads the next message, if any, handing `(kind, body)` to `read`, then
    /// frees its slot. The body borrows the slot and must not escape `read`.
    pub fn pop<R>(&mut self, read: impl FnOnce(u16, &[u8]) -> R) -> Result<Option<R>, RingError> {
        if self.tail == self.cached_head {
            self.cached_head = self.raw.head().load(Ordering::Acquire);
            if self.tail == self.cached_head {
                return Ok(None);
            }
        }
        if self.cached_head.wrapping_sub(self.tail) > u64::from(self.raw.geo.capacity) {
            return Err(RingError::Corrupt);
        }
        let slot = self.raw.slot(self.tail);
        // SAFETY: the slot is inside the ring and was published by the
        // producer's release store of `head` (acquired above); the producer
        // does not touch it again until we advance `tail`. The length is
        // range-checked against the slot before the body is borrowed.
        let out = unsafe {
            let hdr = core::slice::from_raw_parts(slot, SLOT_HEADER_LEN);
            let kind = u16::from_le_bytes([hdr[0], hdr[1]]);
            let len = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            if len > self.raw.geo.max_body() {
                return Err(RingError::Corrupt);
            }
            read(
                kind,
                core::slice::from_raw_parts(slot.add(SLOT_HEADER_LEN), len),
            )
        };
        self.tail = self.tail.wrapping_add(1);
        self.raw.tail().store(self.tail, Ordering::Release);
        Ok(Some(out))
    }

    /// Messages published and not yet read.
    pub fn len(&self) -> usize {
        self.raw
            .head()
            .load(Ordering::Acquire)
            .wrapping_sub(self.tail) as usize
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
