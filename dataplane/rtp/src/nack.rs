//! The NACK tail buffer: recently sent packets kept per SSRC to answer
//! RFC 4585 generic NACKs by sending them again.
//!
//! # Storage
//!
//! Everything is allocated once in [`NackBuffer::new`]: for each of
//! `max_streams` streams a ring of `tail_max` slots of `max_packet_len` bytes
//! (see [`NackBuffer::memory_bytes`]). [`insert`](NackBuffer::insert) copies a
//! packet into its slot and lookups return borrowed slices, so the per-packet
//! path never allocates. Sequence numbers are extended to 64 bits per stream
//! with wrap-aware arithmetic ([`crate::seq::diff`]); the packet `k` numbers
//! behind the newest sits `k` slots before it in the ring (no division on
//! the per-packet path), and every slot remembers which extended number it
//! holds, so a stale slot is never mistaken for a newer packet.
//!
//! # Bounds
//!
//! A packet is resent only if all of these hold:
//! - it is still in its slot (it was inserted and not overwritten);
//! - it is within the stream's *live tail*: fewer than `tail` packets (by
//!   sequence number) behind the newest one inserted;
//! - it was inserted no more than `max_age` before the NACK's `now`.
//!
//! # Adaptive tail (webrtc2sip's `avpf-tail-length min;max`)
//!
//! Each stream's live tail starts at `tail_min`. When a NACK asks for packets
//! that are still stored but already behind the live tail — i.e. evicted *by
//! count*, the case a longer tail would have saved — the tail grows once per
//! NACK to `min(tail_max, max(2 × tail, needed))`, where `needed` is the
//! tail that would have covered the furthest such request. Requests for
//! packets that are too old, never sent (gaps, future numbers, unknown SSRC)
//! or no longer stored at all do not grow it, and it never shrinks while the
//! stream lives. A grown tail serves later NACKs; the packets of the NACK that
//! triggered the growth are counted unrecoverable, not sent.
//!
//! # Answering a NACK
//!
//! [`NackBuffer::on_nack`] (or [`NackBuffer::resend`] for any list of
//! sequence numbers) classifies every requested number, updates
//! [`NackCounters`] and the tail at once, and returns a [`Resends`] iterator
//! of the packets to send, in request order, each at most once per NACK.
//! The counters assume the caller sends everything the iterator yields.

use std::time::{Duration, Instant};

use crate::rtcp::Nack;
use crate::seq;
use crate::Error;

/// Sizing and policy of a [`NackBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackConfig {
    /// Most streams (SSRCs) kept at once; more are refused and counted.
    pub max_streams: usize,
    /// Initial live tail length, in packets (at least 1).
    pub tail_min: usize,
    /// Largest live tail and the ring size per stream, in packets
    /// (`tail_min..=32768`).
    pub tail_max: usize,
    /// Largest packet kept, in bytes; larger ones are refused and counted.
    pub max_packet_len: usize,
    /// Packets older than this are not resent.
    pub max_age: Duration,
}

impl Default for NackConfig {
    /// Two streams (audio and video), webrtc2sip's example tail of
    /// `100;400`, 1500-byte packets and one second of age: 1.2 MB.
    fn default() -> Self {
        Self {
            max_streams: 2,
            tail_min: 100,
            tail_max: 400,
            max_packet_len: 1500,
            max_age: Duration::from_secs(1),
        }
    }
}

/// Largest `tail_max`: half the sequence space keeps numbers unambiguous.
pub const MAX_TAIL: usize = 1 << 15;

/// What the buffer has done so far. All counts only grow.
///
/// Invariants: `seqs_requested == packets_resent + unrecoverable +
/// duplicates` and `unrecoverable == unknown_ssrc + missing + evicted +
/// too_old`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NackCounters {
    /// Packets stored by `insert`.
    pub packets_inserted: u64,
    /// Inserts refused because the packet exceeds `max_packet_len`.
    pub oversize_refused: u64,
    /// Inserts refused because `max_streams` streams are in use.
    pub streams_refused: u64,
    /// Inserts ignored because the packet was already outside the ring.
    pub stale_inserts: u64,
    /// NACKs processed (`on_nack`/`resend` calls).
    pub nacks_received: u64,
    /// Sequence numbers requested, duplicates included.
    pub seqs_requested: u64,
    /// Packets handed back for resending.
    pub packets_resent: u64,
    /// Requested numbers that cannot be resent (sum of the four below).
    pub unrecoverable: u64,
    /// ... because the media SSRC is not a stream of ours.
    pub unknown_ssrc: u64,
    /// ... because the packet was never stored or is no longer in its slot.
    pub missing: u64,
    /// ... because it is stored but behind the live tail (grows the tail).
    pub evicted: u64,
    /// ... because it is older than `max_age`.
    pub too_old: u64,
    /// Numbers requested twice in the same NACK (resent once).
    pub duplicates: u64,
    /// Times a stream's tail grew.
    pub tail_growths: u64,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    active: bool,
    /// The newest packet inserted.
    head: Head,
    /// Live tail length.
    tail: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Extended sequence number held; meaningful when `sent_at` is set.
    ext: u64,
    len: usize,
    sent_at: Option<Instant>,
    /// Epoch of the NACK that will resend this slot (0: none).
    pending: u64,
}

const EMPTY_SLOT: Slot = Slot {
    ext: 0,
    len: 0,
    sent_at: None,
    pending: 0,
};

/// The first packet of a stream starts in cycle 1 so that packets reordered
/// before it still get a non-negative extended number.
const FIRST_CYCLE: u64 = 1 << 16;

/// A stream's newest packet: its extended sequence number and its slot.
/// Slots of older packets are found by stepping back from it, which keeps
/// divisions off the per-packet path.
#[derive(Debug, Clone, Copy)]
struct Head {
    ext: u64,
    idx: usize,
}

impl Head {
    const fn new(seq: u16) -> Self {
        Self {
            ext: FIRST_CYCLE + seq as u64,
            idx: 0,
        }
    }

    /// How far `seq` is behind the head (0: the head itself), or `None` when
    /// it is newer. Never more than 2^15, so `ext - behind` cannot underflow
    /// (`ext >= FIRST_CYCLE`).
    #[inline]
    fn behind(&self, seq: u16) -> Option<u64> {
        let d = seq::diff(seq, self.ext as u16);
        (d <= 0).then(|| u64::from(d.unsigned_abs()))
    }

    /// Slot of the packet `behind < cap` positions before the head.
    #[inline]
    fn slot(&self, behind: u64, cap: usize) -> usize {
        let b = behind as usize;
        if b <= self.idx {
            self.idx - b
        } else {
            self.idx + cap - b
        }
    }

    /// Moves the head `delta` packets forward.
    #[inline]
    fn advance(&mut self, delta: u64, cap: usize) {
        self.ext += delta;
        let step = if delta < cap as u64 {
            delta as usize
        } else {
            (delta % cap as u64) as usize
        };
        let i = self.idx + step;
        self.idx = if i >= cap { i - cap } else { i };
    }
}

/// Oldest send time still answered at `now`; `None` when everything is
/// recent enough.
#[inline]
fn deadline(now: Instant, max_age: Duration) -> Option<Instant> {
    now.checked_sub(max_age)
}

/// Recently sent packets per SSRC, answering generic NACKs; see the
/// [module docs](self).
#[derive(Debug)]
pub struct NackBuffer {
    config: NackConfig,
    streams: Vec<Stream>,
    /// `max_streams * tail_max` slots, stream by stream.
    slots: Vec<Slot>,
    /// `max_streams * tail_max * max_packet_len` bytes, slot by slot.
    data: Vec<u8>,
    epoch: u64,
    counters: NackCounters,
}

impl NackBuffer {
    /// Allocates all storage. Fails with [`Error::InvalidArgument`] when
    /// `tail_min` is 0, `tail_min > tail_max`, `tail_max > MAX_TAIL`,
    /// `max_streams` or `max_packet_len` is 0, or the size overflows.
    pub fn new(config: NackConfig) -> Result<Self, Error> {
        let NackConfig {
            max_streams,
            tail_min,
            tail_max,
            max_packet_len,
            ..
        } = config;
        if tail_min == 0
            || tail_min > tail_max
            || tail_max > MAX_TAIL
            || max_streams == 0
            || max_packet_len == 0
        {
            return Err(Error::InvalidArgument);
        }
        let slots = max_streams
            .checked_mul(tail_max)
            .ok_or(Error::InvalidArgument)?;
        let bytes = slots
            .checked_mul(max_packet_len)
            .ok_or(Error::InvalidArgument)?;
        Ok(Self {
            config,
            streams: vec![
                Stream {
                    ssrc: 0,
                    active: false,
                    head: Head::new(0),
                    tail: tail_min,
                };
                max_streams
            ],
            slots: vec![EMPTY_SLOT; slots],
            data: vec![0; bytes],
            epoch: 0,
            counters: NackCounters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NackConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &NackCounters {
        &self.counters
    }

    /// Bytes of packet storage allocated.
    pub fn memory_bytes(&self) -> usize {
        self.data.len()
    }

    /// Number of streams in use.
    pub fn stream_count(&self) -> usize {
        self.streams.iter().filter(|s| s.active).count()
    }

    /// The live tail length of stream `ssrc`, if it is ours.
    pub fn tail_len(&self, ssrc: u32) -> Option<usize> {
        self.find(ssrc).map(|i| self.streams[i].tail)
    }

    /// Forgets stream `ssrc` (its slots become free for a new SSRC).
    /// Returns whether it existed.
    pub fn remove_stream(&mut self, ssrc: u32) -> bool {
        let Some(i) = self.find(ssrc) else {
            return false;
        };
        self.streams[i].active = false;
        true
    }

    #[inline]
    fn find(&self, ssrc: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.active && s.ssrc == ssrc)
    }

    #[inline]
    fn stream_slots(&mut self, i: usize) -> (&mut [Slot], &mut [u8]) {
        let cap = self.config.tail_max;
        let len = cap * self.config.max_packet_len;
        (
            &mut self.slots[i * cap..(i + 1) * cap],
            &mut self.data[i * len..(i + 1) * len],
        )
    }

    /// Stores a copy of the sent (protected) `packet` of stream `ssrc` with
    /// sequence number `seq`, sent at `now`. A new SSRC takes a free stream.
    ///
    /// Fails, counting the refusal, with [`Error::PacketTooLarge`] or
    /// [`Error::TooManyStreams`]. A packet already outside the ring is
    /// ignored and counted in `stale_inserts`; storing the same number again
    /// replaces the stored copy.
    pub fn insert(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        packet: &[u8],
    ) -> Result<(), Error> {
        if packet.len() > self.config.max_packet_len {
            self.counters.oversize_refused += 1;
            return Err(Error::PacketTooLarge);
        }
        let i = match self.find(ssrc) {
            Some(i) => i,
            None => {
                let Some(i) = self.streams.iter().position(|s| !s.active) else {
                    self.counters.streams_refused += 1;
                    return Err(Error::TooManyStreams);
                };
                self.streams[i] = Stream {
                    ssrc,
                    active: true,
                    head: Head::new(seq),
                    tail: self.config.tail_min,
                };
                let (slots, _) = self.stream_slots(i);
                slots.fill(EMPTY_SLOT);
                i
            }
        };
        let cap = self.config.tail_max;
        let max_len = self.config.max_packet_len;
        let head = &mut self.streams[i].head;
        let (ext, idx) = match head.behind(seq) {
            None => {
                let ahead = seq::diff(seq, head.ext as u16).unsigned_abs();
                head.advance(u64::from(ahead), cap);
                (head.ext, head.idx)
            }
            Some(b) if b >= cap as u64 => {
                self.counters.stale_inserts += 1;
                return Ok(());
            }
            Some(b) => (head.ext - b, head.slot(b, cap)),
        };
        let (slots, data) = self.stream_slots(i);
        slots[idx] = Slot {
            ext,
            len: packet.len(),
            sent_at: Some(now),
            pending: 0,
        };
        data[idx * max_len..idx * max_len + packet.len()].copy_from_slice(packet);
        self.counters.packets_inserted += 1;
        Ok(())
    }

    /// Looks up one packet under the same rules as a NACK (stored, within
    /// the live tail, not too old) without counting or growing anything.
    pub fn get(&self, now: Instant, ssrc: u32, seq: u16) -> Option<&[u8]> {
        let i = self.find(ssrc)?;
        let s = &self.streams[i];
        let cap = self.config.tail_max;
        let b = s.head.behind(seq).filter(|&b| b < s.tail as u64)?;
        let idx = s.head.slot(b, cap);
        let slot = &self.slots[i * cap + idx];
        let sent_at = slot.sent_at?;
        if slot.ext != s.head.ext - b
            || deadline(now, self.config.max_age).is_some_and(|d| sent_at < d)
        {
            return None;
        }
        let at = (i * cap + idx) * self.config.max_packet_len;
        Some(&self.data[at..at + slot.len])
    }

    /// Answers a parsed generic NACK: the media SSRC picks the stream and
    /// the lost sequence numbers are looked up. See [`resend`](Self::resend).
    pub fn on_nack<'n>(
        &mut self,
        now: Instant,
        nack: &Nack<'n>,
    ) -> Resends<'_, crate::rtcp::LostSeqs<'n>> {
        self.resend(now, nack.media_ssrc(), nack.lost_seqs())
    }

    /// Answers a request for sequence numbers `seqs` of stream `ssrc`:
    /// updates the counters and the live tail (see the [module docs](self))
    /// and returns the packets to send again. `seqs` is walked twice, hence
    /// `Clone`.
    pub fn resend<I>(&mut self, now: Instant, ssrc: u32, seqs: I) -> Resends<'_, I>
    where
        I: Iterator<Item = u16> + Clone,
    {
        self.counters.nacks_received += 1;
        self.epoch += 1;
        let epoch = self.epoch;
        let Some(i) = self.find(ssrc) else {
            let n = seqs.count() as u64;
            self.counters.seqs_requested += n;
            self.counters.unrecoverable += n;
            self.counters.unknown_ssrc += n;
            return Resends {
                seqs: None,
                slots: &mut [],
                data: &[],
                head: Head::new(0),
                max_len: 0,
                epoch,
            };
        };
        let cap = self.config.tail_max;
        let deadline = deadline(now, self.config.max_age);
        let max_len = self.config.max_packet_len;
        let Stream { head, tail, .. } = self.streams[i];
        let c = &mut self.counters;
        let slots = &mut self.slots[i * cap..(i + 1) * cap];
        // Tail that would have covered the furthest evicted request.
        let mut needed = 0u64;
        for seq in seqs.clone() {
            c.seqs_requested += 1;
            let found = head.behind(seq).filter(|&b| b < cap as u64).and_then(|b| {
                let slot = &mut slots[head.slot(b, cap)];
                let sent_at = slot.sent_at.filter(|_| slot.ext == head.ext - b)?;
                Some((b, sent_at, slot))
            });
            let Some((behind, sent_at, slot)) = found else {
                c.unrecoverable += 1;
                c.missing += 1;
                continue;
            };
            if deadline.is_some_and(|d| sent_at < d) {
                c.unrecoverable += 1;
                c.too_old += 1;
                continue;
            }
            if behind >= tail as u64 {
                c.unrecoverable += 1;
                c.evicted += 1;
                needed = needed.max(behind + 1);
                continue;
            }
            if slot.pending == epoch {
                c.duplicates += 1;
                continue;
            }
            slot.pending = epoch;
            c.packets_resent += 1;
        }
        if needed > 0 {
            let stream = &mut self.streams[i];
            let grown = (stream.tail * 2)
                .max(usize::try_from(needed).unwrap_or(usize::MAX))
                .min(cap);
            if grown > stream.tail {
                stream.tail = grown;
                c.tail_growths += 1;
            }
        }
        let len = cap * max_len;
        Resends {
            seqs: Some(seqs),
            slots,
            data: &self.data[i * len..(i + 1) * len],
            head,
            max_len,
            epoch,
        }
    }
}

/// Packets to resend for one NACK, in request order; see
/// [`NackBuffer::resend`]. Dropping it early skips the rest (they stay
/// counted as resent).
#[derive(Debug)]
pub struct Resends<'a, I> {
    seqs: Option<I>,
    slots: &'a mut [Slot],
    data: &'a [u8],
    head: Head,
    max_len: usize,
    epoch: u64,
}

impl<'a, I: Iterator<Item = u16>> Iterator for Resends<'a, I> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let seqs = self.seqs.as_mut()?;
        let cap = self.slots.len();
        for seq in seqs.by_ref() {
            let Some(b) = self.head.behind(seq).filter(|&b| b < cap as u64) else {
                continue;
            };
            let idx = self.head.slot(b, cap);
            let slot = &mut self.slots[idx];
            if slot.pending == self.epoch && slot.ext == self.head.ext - b {
                slot.pending = 0;
                let at = idx * self.max_len;
                return self.data.get(at..at + slot.len);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::{self, RtcpView};
    use crate::rtp::{FixedHeader, RtpPacket};

    fn config(tail_min: usize, tail_max: usize) -> NackConfig {
        NackConfig {
            max_streams: 2,
            tail_min,
            tail_max,
            max_packet_len: 200,
            max_age: Duration::from_millis(1000),
        }
    }

    /// A 172-byte RTP packet whose header carries `seq`.
    fn packet(ssrc: u32, seq: u16) -> [u8; 172] {
        let mut p = [0u8; 172];
        FixedHeader {
            sequence: seq,
            ssrc,
            payload_type: 111,
            ..Default::default()
        }
        .write(&mut p)
        .expect("172 > 12");
        p[171] = seq as u8;
        p
    }

    fn seqs_of<'a>(r: impl Iterator<Item = &'a [u8]>) -> Vec<u16> {
        r.map(|p| RtpPacket::parse(p).unwrap().sequence()).collect()
    }

    fn fill(b: &mut NackBuffer, t: Instant, ssrc: u32, seqs: impl Iterator<Item = u16>) {
        for s in seqs {
            b.insert(t, ssrc, s, &packet(ssrc, s)).unwrap();
        }
    }

    fn check_invariants(c: &NackCounters) {
        assert_eq!(
            c.seqs_requested,
            c.packets_resent + c.unrecoverable + c.duplicates
        );
        assert_eq!(
            c.unrecoverable,
            c.unknown_ssrc + c.missing + c.evicted + c.too_old
        );
    }

    #[test]
    fn rejects_bad_config() {
        for (min, max) in [(0, 4), (5, 4), (1, MAX_TAIL + 1)] {
            assert_eq!(
                NackBuffer::new(config(min, max)).err(),
                Some(Error::InvalidArgument)
            );
        }
        let c = NackConfig {
            max_streams: 0,
            ..config(1, 2)
        };
        assert_eq!(NackBuffer::new(c).err(), Some(Error::InvalidArgument));
        let b = NackBuffer::new(config(4, 16)).unwrap();
        assert_eq!(b.memory_bytes(), 2 * 16 * 200);
    }

    #[test]
    fn lookup_across_wrap() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(16, 16)).unwrap();
        fill(&mut b, t, 1, (65530..=65535).chain(0..=5));
        for s in (65530..=65535).chain(0..=5) {
            let p = b.get(t, 1, s).expect("stored");
            assert_eq!(RtpPacket::parse(p).unwrap().sequence(), s);
        }
        let r = b.resend(t, 1, [65534u16, 65535, 0, 1].into_iter());
        assert_eq!(seqs_of(r), vec![65534, 65535, 0, 1]);
        assert_eq!(b.get(t, 1, 6), None, "future number");
        assert_eq!(b.get(t, 1, 65529), None, "before the first packet");
        assert_eq!(b.counters().packets_resent, 4);
        check_invariants(b.counters());
    }

    #[test]
    fn reordered_insert_before_first() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(8, 8)).unwrap();
        fill(&mut b, t, 1, [1u16, 0, 65535, 2].into_iter());
        for s in [65535u16, 0, 1, 2] {
            assert!(b.get(t, 1, s).is_some(), "{s}");
        }
    }

    #[test]
    fn eviction_by_count() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(4, 4)).unwrap();
        fill(&mut b, t, 1, 0..10);
        assert_eq!(
            (0..10)
                .filter(|&s| b.get(t, 1, s).is_some())
                .collect::<Vec<_>>(),
            vec![6, 7, 8, 9]
        );
        let r = b.resend(t, 1, 0..10);
        assert_eq!(seqs_of(r), vec![6, 7, 8, 9]);
        let c = *b.counters();
        assert_eq!((c.packets_resent, c.missing, c.evicted), (4, 6, 0));
        assert_eq!(b.tail_len(1), Some(4), "nothing stored to grow for");
        // A stale insert is ignored.
        b.insert(t, 1, 2, &packet(1, 2)).unwrap();
        assert_eq!(b.counters().stale_inserts, 1);
        assert_eq!(b.get(t, 1, 2), None);
        check_invariants(b.counters());
    }

    #[test]
    fn eviction_by_age() {
        let t0 = Instant::now();
        let mut b = NackBuffer::new(config(8, 8)).unwrap();
        fill(&mut b, t0, 1, 0..2);
        let t1 = t0 + Duration::from_millis(600);
        fill(&mut b, t1, 1, 2..4);
        let t2 = t0 + Duration::from_millis(1001);
        assert_eq!(b.get(t2, 1, 1), None);
        assert!(b.get(t2, 1, 2).is_some());
        let r = b.resend(t2, 1, 0..4);
        assert_eq!(seqs_of(r), vec![2, 3]);
        let c = *b.counters();
        assert_eq!((c.too_old, c.packets_resent, c.tail_growths), (2, 2, 0));
        // Exactly max_age old is still fine.
        assert!(b.get(t0 + Duration::from_millis(1600), 1, 3).is_some());
        check_invariants(b.counters());
    }

    #[test]
    fn tail_grows_on_evicted_requests_up_to_max() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(4, 16)).unwrap();
        fill(&mut b, t, 1, 100..140); // highest 139
        assert_eq!(b.tail_len(1), Some(4));
        assert_eq!(b.get(t, 1, 135), None, "behind the live tail");
        // 134 is 5 behind: evicted by count -> tail max(2*4, 6) = 8.
        let r = b.resend(t, 1, [134u16, 139].into_iter());
        assert_eq!(seqs_of(r), vec![139]);
        assert_eq!(b.tail_len(1), Some(8));
        assert_eq!(b.counters().evicted, 1);
        assert!(b.get(t, 1, 134).is_some(), "served after growth");
        // 127 is 12 behind -> max(16, 13) capped at 16.
        assert_eq!(b.resend(t, 1, [127u16].into_iter()).count(), 0);
        assert_eq!(b.tail_len(1), Some(16));
        // 120 is 19 behind: beyond the ring, missing, no growth past max.
        assert_eq!(b.resend(t, 1, [120u16].into_iter()).count(), 0);
        assert_eq!(b.tail_len(1), Some(16));
        let r = b.resend(t, 1, [127u16].into_iter());
        assert_eq!(seqs_of(r), vec![127]);
        let c = *b.counters();
        assert_eq!((c.evicted, c.missing, c.tail_growths), (2, 1, 2));
        check_invariants(&c);
    }

    #[test]
    fn too_old_and_never_sent_do_not_grow() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(2, 16)).unwrap();
        fill(&mut b, t, 1, (0..10).filter(|s| s % 3 != 0)); // gaps at 3, 6, 9
        let later = t + Duration::from_secs(5);
        b.insert(later, 1, 10, &packet(1, 10)).unwrap();
        // 6 is a gap; 4 is stored but both evicted and too old; 11 is future.
        assert_eq!(b.resend(later, 1, [6u16, 4, 11].into_iter()).count(), 0);
        let c = *b.counters();
        assert_eq!((c.missing, c.too_old, c.evicted), (2, 1, 0));
        assert_eq!(b.tail_len(1), Some(2));
        check_invariants(&c);
    }

    #[test]
    fn unknown_ssrc_and_stream_limit() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(4, 4)).unwrap();
        fill(&mut b, t, 1, 0..4);
        fill(&mut b, t, 2, 0..4);
        assert_eq!(b.insert(t, 3, 0, &packet(3, 0)), Err(Error::TooManyStreams));
        assert_eq!(b.insert(t, 1, 4, &[0u8; 201]), Err(Error::PacketTooLarge));
        assert_eq!(b.stream_count(), 2);
        assert_eq!(b.resend(t, 3, 0..3).count(), 0);
        let c = *b.counters();
        assert_eq!(
            (
                c.streams_refused,
                c.oversize_refused,
                c.unknown_ssrc,
                c.unrecoverable
            ),
            (1, 1, 3, 3)
        );
        // Removing a stream frees its place; the new stream starts empty.
        assert!(b.remove_stream(2));
        assert!(!b.remove_stream(2));
        b.insert(t, 3, 100, &packet(3, 100)).unwrap();
        assert_eq!(b.get(t, 3, 0), None);
        assert!(b.get(t, 3, 100).is_some());
        assert!(b.get(t, 1, 3).is_some(), "other stream untouched");
        check_invariants(b.counters());
    }

    #[test]
    fn duplicates_resent_once_per_nack() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(8, 8)).unwrap();
        fill(&mut b, t, 7, 0..8);
        let r = b.resend(t, 7, [3u16, 4, 3, 3].into_iter());
        assert_eq!(seqs_of(r), vec![3, 4]);
        assert_eq!(b.counters().duplicates, 2);
        // The next NACK may ask again (the browser retries).
        let r = b.resend(t, 7, [3u16].into_iter());
        assert_eq!(seqs_of(r), vec![3]);
        // An iterator dropped early leaves no stale marks behind.
        drop(b.resend(t, 7, [1u16, 2].into_iter()));
        let r = b.resend(t, 7, [2u16, 1].into_iter());
        assert_eq!(seqs_of(r), vec![2, 1]);
        // Re-inserting the same number replaces the copy.
        let mut p = packet(7, 5);
        p[100] = 0xEE;
        b.insert(t, 7, 5, &p).unwrap();
        assert_eq!(b.get(t, 7, 5).unwrap()[100], 0xEE);
        check_invariants(b.counters());
    }

    proptest::proptest! {
        /// Compares the ring against a plain map of everything inserted,
        /// under random jittery sending, gaps, reordering and clock steps.
        #[test]
        fn matches_reference_model(
            start: u16,
            ops in proptest::collection::vec((0u8..4, -40i32..40, 0u64..300), 1..300),
            tail_min in 1usize..20,
            extra in 0usize..40,
        ) {
            use std::collections::BTreeMap;
            let tail_max = tail_min + extra;
            let cfg = NackConfig { max_streams: 1, tail_min, tail_max, max_packet_len: 200,
                                   max_age: Duration::from_millis(1000) };
            let mut b = NackBuffer::new(cfg).unwrap();
            let t0 = Instant::now();
            let mut now = t0;
            // ext -> time inserted; head ext; tail.
            let mut model: BTreeMap<i64, Instant> = BTreeMap::new();
            let mut head: Option<i64> = None;
            let mut tail = tail_min as i64;
            let ext_of = |head: i64, seq: u16| head + i64::from(seq::diff(seq, head as u16));
            let mut next = i64::from(start);
            for (op, delta, ms) in ops {
                now += Duration::from_millis(ms);
                if op < 3 {
                    // Insert: mostly forward, sometimes a gap or a late packet.
                    let ext = if op == 0 { next + i64::from(delta) } else { next };
                    next = next.max(ext) + 1;
                    let seq = ext as u16;
                    b.insert(now, 9, seq, &packet(9, seq)).unwrap();
                    let h = head.unwrap_or(ext);
                    let e = ext_of(h, seq);
                    if e > h {
                        head = Some(e);
                    } else {
                        head = Some(h);
                    }
                    let h = head.unwrap();
                    if h - e < tail_max as i64 {
                        model.insert(e, now);
                    }
                } else if let Some(h) = head {
                    let first = (h + i64::from(delta) - 20) as u16;
                    let seqs: Vec<u16> = (0..8u16).map(|k| first.wrapping_add(k * 3)).collect();
                    let mut want = Vec::new();
                    let mut needed = 0;
                    for &s in &seqs {
                        let e = ext_of(h, s);
                        let Some(&at) = model.get(&e) else { continue };
                        if e > h || h - e >= tail_max as i64 {
                            continue;
                        }
                        if now.duration_since(at) > cfg.max_age {
                            continue;
                        }
                        if h - e >= tail {
                            needed = needed.max(h - e + 1);
                            continue;
                        }
                        want.push(s);
                    }
                    if needed > 0 {
                        tail = (tail * 2).max(needed).min(tail_max as i64);
                    }
                    let got = seqs_of(b.resend(now, 9, seqs.into_iter()));
                    proptest::prop_assert_eq!(got, want);
                    proptest::prop_assert_eq!(b.tail_len(9), Some(tail as usize));
                }
            }
            check_invariants(b.counters());
        }
    }

    #[test]
    fn answers_parsed_nack() {
        let t = Instant::now();
        let mut b = NackBuffer::new(config(32, 32)).unwrap();
        fill(&mut b, t, 0xAABB, 65520..=65535);
        fill(&mut b, t, 0xAABB, 0..10);
        let mut buf = [0u8; 64];
        let lost = [65530u16, 65533, 65535, 2, 9, 10];
        let n = rtcp::write_nack(&mut buf, 1, 0xAABB, lost).unwrap();
        let Ok(RtcpView::Nack(nack)) = rtcp::RtcpPacket::parse(&buf[..n]).unwrap().view() else {
            panic!("not a NACK");
        };
        let r = b.on_nack(t, &nack);
        assert_eq!(seqs_of(r), vec![65530, 65533, 65535, 2, 9]);
        let c = *b.counters();
        assert_eq!((c.nacks_received, c.packets_resent, c.missing), (1, 5, 1));
        check_invariants(&c);
    }
}
