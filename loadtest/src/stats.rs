//! Receive-side statistics, sans-IO: every function takes the send and
//! arrival times (nanoseconds on one monotonic clock) as arguments.
//!
//! Per stream and direction a [`SeqTracker`] classifies each arriving
//! packet by its generator sequence number (unique, duplicate, reordered)
//! and keeps the RFC 3550 §6.4.1 interarrival jitter estimate
//! `J += (|D| - J) / 16`, where `D` is the change of the one-way transit
//! time between consecutive arrivals. Per direction a [`DirAcc`] sums the
//! counters over all streams and keeps hdrhistograms (microseconds) of the
//! one-way latency and of the jitter estimate after every packet.
//!
//! A measurement window covers packets by their *send* time: a packet sent
//! inside `[start, end)` counts as sent, and as received if it arrives
//! before the window is closed (the runtime closes it a drain period after
//! `end`). Loss is `sent - unique received`.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Sequence numbers remembered for duplicate detection, per stream and direction.
pub const SEQ_WINDOW: u64 = 1024;
/// Largest value the histograms hold (60 s in microseconds); larger values saturate.
pub const HIST_MAX_US: u64 = 60_000_000;

/// A new histogram with the crate's bounds (1 µs .. 60 s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    // Fixed, valid bounds: construction cannot fail; fall back to an
    // auto-resizing histogram rather than panicking if it ever did.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable!("3 significant digits is always valid"))
}

/// How one arriving packet was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First copy, in order (highest sequence so far).
    InOrder,
    /// First copy, but a higher sequence number had already arrived.
    Reordered,
    /// A copy of a packet already received.
    Duplicate,
    /// Older than [`SEQ_WINDOW`] behind the highest: counted as received and
    /// reordered, duplicates of it cannot be detected.
    TooOld,
}

/// Receive state of one stream direction within one window.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    window: u64,
    highest: Option<u64>,
    seen: [u64; (SEQ_WINDOW / 64) as usize],
    last_transit: Option<i64>,
    jitter_ns: f64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl SeqTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self {
            window: u64::MAX,
            highest: None,
            seen: [0; (SEQ_WINDOW / 64) as usize],
            last_transit: None,
            jitter_ns: 0.0,
        }
    }

    /// Forgets everything if `window` differs from the window of the last
    /// packet (each measurement window starts from scratch).
    pub fn enter_window(&mut self, window: u64) {
        if self.window != window {
            *self = Self::new();
            self.window = window;
        }
    }

    fn bit(&self, seq: u64) -> bool {
        let i = seq % SEQ_WINDOW;
        self.seen[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, seq: u64, on: bool) {
        let i = seq % SEQ_WINDOW;
        let word = &mut self.seen[(i / 64) as usize];
        if on {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }

    /// Classifies the packet with generator sequence `seq`, sent at
    /// `send_ns` and arrived at `recv_ns`, and updates the jitter estimate
    /// for first copies.
    pub fn on_packet(&mut self, seq: u64, send_ns: u64, recv_ns: u64) -> Arrival {
        let arrival = match self.highest {
            None => {
                self.highest = Some(seq);
                self.set(seq, true);
                Arrival::InOrder
            }
            Some(h) if seq > h => {
                if seq - h >= SEQ_WINDOW {
                    self.seen = [0; (SEQ_WINDOW / 64) as usize];
                } else {
                    for s in h + 1..seq {
                        self.set(s, false);
                    }
                }
                self.set(seq, true);
                self.highest = Some(seq);
                Arrival::InOrder
            }
            Some(h) if h - seq >= SEQ_WINDOW => Arrival::TooOld,
            Some(_) if self.bit(seq) => Arrival::Duplicate,
            Some(_) => {
                self.set(seq, true);
                Arrival::Reordered
            }
        };
        if arrival != Arrival::Duplicate {
            // Wrapping: the times come off the wire (a corrupt or foreign
            // packet must not overflow the arithmetic).
            let transit = recv_ns.wrapping_sub(send_ns) as i64;
            if let Some(last) = self.last_transit {
                let d = transit.wrapping_sub(last).unsigned_abs() as f64;
                self.jitter_ns += (d - self.jitter_ns) / 16.0;
            }
            self.last_transit = Some(transit);
        }
        arrival
    }

    /// The current RFC 3550 jitter estimate in nanoseconds.
    pub fn jitter_ns(&self) -> f64 {
        self.jitter_ns
    }
}

/// Counters and histograms of one direction over one window.
#[derive(Debug, Clone)]
pub struct DirAcc {
    /// Packets sent inside the window.
    pub sent: u64,
    /// First copies received of packets sent inside the window.
    pub received: u64,
    /// Extra copies.
    pub duplicates: u64,
    /// First copies that arrived after a higher sequence number.
    pub reordered: u64,
    /// Packets dropped by the receiver: malformed, failed SRTP
    /// authentication, wrong stream marker, or unmappable sequence number.
    pub errors: u64,
    /// One-way latency, microseconds.
    pub latency_us: Histogram<u64>,
    /// RFC 3550 jitter estimate after each packet, microseconds.
    pub jitter_us: Histogram<u64>,
}

impl Default for DirAcc {
    fn default() -> Self {
        Self::new()
    }
}

impl DirAcc {
    /// Empty.
    pub fn new() -> Self {
        Self {
            sent: 0,
            received: 0,
            duplicates: 0,
            reordered: 0,
            errors: 0,
            latency_us: new_histogram(),
            jitter_us: new_histogram(),
        }
    }

    /// Accounts one arriving packet of a stream whose tracker is `tracker`.
    pub fn on_packet(&mut self, tracker: &mut SeqTracker, seq: u64, send_ns: u64, recv_ns: u64) {
        match tracker.on_packet(seq, send_ns, recv_ns) {
            Arrival::Duplicate => {
                self.duplicates += 1;
                return;
            }
            Arrival::Reordered | Arrival::TooOld => self.reordered += 1,
            Arrival::InOrder => {}
        }
        self.received += 1;
        let lat_us = recv_ns.saturating_sub(send_ns) / 1000;
        self.latency_us.saturating_record(lat_us);
        self.jitter_us
            .saturating_record((tracker.jitter_ns() / 1000.0) as u64);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &DirAcc) {
        self.sent += other.sent;
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.errors += other.errors;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.jitter_us.add(&other.jitter_us);
    }

    /// The figures of this direction.
    pub fn summary(&self) -> DirSummary {
        let lost = self.sent.saturating_sub(self.received);
        DirSummary {
            sent: self.sent,
            received: self.received,
            lost,
            loss: ratio(lost, self.sent),
            duplicates: self.duplicates,
            reordered: self.reordered,
            errors: self.errors,
            latency: Percentiles::of(&self.latency_us),
            jitter: Percentiles::of(&self.jitter_us),
        }
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Percentiles of a histogram in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The figures of one direction over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirSummary {
    /// Packets sent in the window.
    pub sent: u64,
    /// Unique packets received of those.
    pub received: u64,
    /// `sent - received`.
    pub lost: u64,
    /// `lost / sent` (0 when nothing was sent).
    pub loss: f64,
    /// Duplicate copies received.
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// Packets dropped by the receiver (malformed, SRTP auth, marker).
    pub errors: u64,
    /// One-way latency.
    pub latency: Percentiles,
    /// RFC 3550 interarrival jitter estimates.
    pub jitter: Percentiles,
}

/// Maps the RTP sequence numbers a target sends back to the generator's
/// sequence numbers, for streams whose payload the target rewrites
/// (transcoding), so the payload marker is gone.
///
/// The RTP sequence number is extended to 64 bits (wrap-around handled
/// relative to the highest seen). The first packet decides the mode:
///
/// - **preserved**: if its sequence number is one the generator sent
///   recently (counting from the sender's first RTP sequence number
///   `rtp_base`), the target keeps the sender's numbering (rtpengine does
///   when transcoding 20 ms to 20 ms) and the mapping is exact;
/// - **anchored**: otherwise (the target numbers its output itself) it is
///   taken to be the most recently sent packet, the smallest non-negative
///   latency, so the latency is a lower bound; if a later packet would map
///   to a packet not sent yet the anchor moves ([`SeqMapper::reanchors`]).
#[derive(Debug, Clone, Default)]
pub struct SeqMapper {
    highest: Option<u64>,
    offset: i64,
    /// How often the anchor had to move.
    pub reanchors: u64,
    /// Whether the target was found to keep the sender's sequence numbers.
    pub preserved: bool,
}

impl SeqMapper {
    /// Extends `rtp_seq` to 64 bits relative to the highest seen so far.
    pub fn extend(&mut self, rtp_seq: u16) -> u64 {
        match self.highest {
            None => {
                let ext = (1u64 << 32) + u64::from(rtp_seq);
                self.highest = Some(ext);
                ext
            }
            Some(h) => {
                let delta = rtp_seq.wrapping_sub(h as u16) as i16;
                let ext = h.wrapping_add_signed(i64::from(delta));
                if ext > h {
                    self.highest = Some(ext);
                }
                ext
            }
        }
    }

    /// `Some(preserved)` once the first packet fixed the mode.
    pub fn mapped(&self) -> Option<bool> {
        self.highest.map(|_| self.preserved)
    }

    /// The generator sequence number of the packet with RTP sequence
    /// `rtp_seq`, given the highest generator sequence sent so far in that
    /// direction (`None` before anything was sent: nothing to map to) and
    /// the RTP sequence number the sender started from.
    pub fn map(&mut self, rtp_seq: u16, latest_sent: Option<u64>, rtp_base: u16) -> Option<u64> {
        let latest = latest_sent?;
        let first = self.highest.is_none();
        let ext = self.extend(rtp_seq) as i64;
        if first {
            let candidate = u64::from(rtp_seq.wrapping_sub(rtp_base));
            self.preserved = candidate <= latest && latest - candidate < PRESERVED_WINDOW;
            let gen = if self.preserved { candidate } else { latest };
            self.offset = ext.wrapping_sub(gen as i64);
        }
        let mut gen = ext.wrapping_sub(self.offset);
        if gen > latest as i64 {
            self.offset = ext.wrapping_sub(latest as i64);
            self.reanchors += 1;
            gen = latest as i64;
        }
        u64::try_from(gen).ok()
    }
}

/// How recent (in packets) the first packet must be for [`SeqMapper`] to
/// take the sequence numbers as preserved.
pub const PRESERVED_WINDOW: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wild_timestamps_do_not_overflow() {
        // Found by the loadtest_rtp_receive fuzz target: a send time far past
        // the receive time overflowed the transit arithmetic.
        let mut t = SeqTracker::default();
        assert_eq!(t.on_packet(1, u64::MAX, 0), Arrival::InOrder);
        assert_eq!(t.on_packet(2, 0, u64::MAX), Arrival::InOrder);
        assert!(t.jitter_ns().is_finite());
    }

    const MS: u64 = 1_000_000;

    /// Feeds `(seq, send, recv)` into a fresh direction; returns its summary.
    fn run(sent: u64, packets: &[(u64, u64, u64)]) -> (DirSummary, f64) {
        let mut acc = DirAcc::new();
        acc.sent = sent;
        let mut t = SeqTracker::new();
        t.enter_window(1);
        for &(seq, s, r) in packets {
            acc.on_packet(&mut t, seq, s, r);
        }
        (acc.summary(), t.jitter_ns())
    }

    #[test]
    fn clean_stream() {
        let p: Vec<_> = (0..100)
            .map(|i| (i, i * 20 * MS, i * 20 * MS + MS))
            .collect();
        let (s, j) = run(100, &p);
        assert_eq!(
            (s.received, s.lost, s.duplicates, s.reordered),
            (100, 0, 0, 0)
        );
        assert_eq!(s.loss, 0.0);
        assert_eq!(s.latency.p50_ms, 1.0);
        assert_eq!(s.latency.max_ms, 1.0);
        assert_eq!(j, 0.0);
    }

    #[test]
    fn loss_duplicates_and_reordering() {
        // 10 sent; 3 and 7 lost; 5 duplicated; 8 arrives after 9.
        let seqs = [0, 1, 2, 4, 5, 5, 6, 9, 8];
        let p: Vec<_> = seqs
            .iter()
            .map(|&i| (i, i * 20 * MS, i * 20 * MS + MS))
            .collect();
        let (s, _) = run(10, &p);
        assert_eq!(s.received, 8);
        assert_eq!(s.lost, 2);
        assert!((s.loss - 0.2).abs() < 1e-12);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.reordered, 1);
    }

    #[test]
    fn late_loss_is_not_reordering_and_old_duplicates_are_caught() {
        let mut t = SeqTracker::new();
        assert_eq!(t.on_packet(10, 0, 1), Arrival::InOrder);
        assert_eq!(t.on_packet(12, 0, 1), Arrival::InOrder);
        assert_eq!(t.on_packet(11, 0, 1), Arrival::Reordered);
        assert_eq!(t.on_packet(11, 0, 1), Arrival::Duplicate);
        assert_eq!(t.on_packet(10, 0, 1), Arrival::Duplicate);
        // Advancing by SEQ_WINDOW - 2: seq 12 is still remembered, the slots
        // of the skipped numbers are cleared, seq 10 fell out of the window.
        assert_eq!(t.on_packet(10 + SEQ_WINDOW, 0, 1), Arrival::InOrder);
        assert_eq!(t.on_packet(12, 0, 1), Arrival::Duplicate);
        assert_eq!(t.on_packet(13, 0, 1), Arrival::Reordered);
        assert_eq!(t.on_packet(9 + SEQ_WINDOW, 0, 1), Arrival::Reordered);
        assert_eq!(t.on_packet(10, 0, 1), Arrival::TooOld);
        // A big jump forgets everything.
        assert_eq!(t.on_packet(100_000, 0, 1), Arrival::InOrder);
        assert_eq!(t.on_packet(99_999, 0, 1), Arrival::Reordered);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        // Transit alternates 1 ms, 3 ms: |D| = 2 ms every packet after the first.
        let p: Vec<_> = (0..200u64)
            .map(|i| {
                (
                    i,
                    i * 20 * MS,
                    i * 20 * MS + if i % 2 == 0 { MS } else { 3 * MS },
                )
            })
            .collect();
        let (s, j) = run(200, &p);
        // J converges to |D| = 2 ms.
        assert!((j - 2.0 * MS as f64).abs() < 1_000.0, "{j}");
        assert!(
            s.jitter.max_ms <= 2.0 && s.jitter.max_ms > 1.99,
            "{:?}",
            s.jitter
        );
        // First step: J = 2 ms / 16.
        let mut t = SeqTracker::new();
        t.on_packet(0, 0, MS);
        t.on_packet(1, 20 * MS, 23 * MS);
        assert_eq!(t.jitter_ns(), 2.0 * MS as f64 / 16.0);
        // A duplicate does not move the estimate.
        t.on_packet(1, 20 * MS, 40 * MS);
        assert_eq!(t.jitter_ns(), 2.0 * MS as f64 / 16.0);
    }

    #[test]
    fn windows_reset_trackers_and_merge_adds() {
        let mut t = SeqTracker::new();
        t.enter_window(1);
        t.on_packet(5, 0, 1);
        t.enter_window(1);
        assert_eq!(t.on_packet(5, 0, 1), Arrival::Duplicate);
        t.enter_window(2);
        assert_eq!(t.on_packet(5, 0, 1), Arrival::InOrder);

        let mut a = DirAcc::new();
        a.sent = 10;
        let mut b = DirAcc::new();
        b.sent = 5;
        let mut tb = SeqTracker::new();
        b.on_packet(&mut tb, 0, 0, 4 * MS);
        a.merge(&b);
        let s = a.summary();
        assert_eq!((s.sent, s.received, s.lost), (15, 1, 14));
        // hdrhistogram reports the bucket's highest value (3 significant digits).
        assert!((s.latency.p99_ms - 4.0).abs() < 0.005, "{:?}", s.latency);
    }

    #[test]
    fn seq_mapper_anchors_and_wraps() {
        // The target numbers its output itself (65534 is far from base 100).
        let mut m = SeqMapper::default();
        assert_eq!(m.map(100, None, 100), None);
        // First arrival while generator packet 7 was the latest sent.
        assert_eq!(m.map(65534, Some(7), 100), Some(7));
        assert!(!m.preserved);
        assert_eq!(m.map(65535, Some(8), 100), Some(8));
        assert_eq!(m.map(0, Some(9), 100), Some(9)); // wrap
        assert_eq!(m.map(2, Some(12), 100), Some(11)); // 1 lost
        assert_eq!(m.map(1, Some(12), 100), Some(10)); // late
        assert_eq!(m.reanchors, 0);
        // The target skipped ahead: mapped to a packet not sent yet -> re-anchor.
        assert_eq!(m.map(50, Some(13), 100), Some(13));
        assert_eq!(m.reanchors, 1);
        assert_eq!(m.map(51, Some(14), 100), Some(14));
    }

    #[test]
    fn seq_mapper_uses_preserved_numbering() {
        // Sender started at RTP seq 65530; the target keeps the numbers and
        // delays by one frame: packet 3 (seq 65533) arrives when 4 was sent.
        let mut m = SeqMapper::default();
        assert_eq!(m.map(65533, Some(4), 65530), Some(3));
        assert!(m.preserved);
        assert_eq!(m.map(65535, Some(6), 65530), Some(5));
        assert_eq!(m.map(1, Some(8), 65530), Some(7)); // across the wrap
        assert_eq!(m.map(0, Some(8), 65530), Some(6)); // late
        assert_eq!(m.reanchors, 0);
        // Too old to trust: anchored instead.
        let mut old = SeqMapper::default();
        assert_eq!(
            old.map(10, Some(10 + PRESERVED_WINDOW), 0),
            Some(10 + PRESERVED_WINDOW)
        );
        assert!(!old.preserved);
    }
}
