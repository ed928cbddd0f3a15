//! The reply cache: a retransmitted request (same peer, same cookie) is
//! answered with the reply already sent, and the command is not run again.
//!
//! ng runs over UDP; a proxy that does not hear back in time sends the same
//! datagram again. Running an `offer` twice would allocate a second set of
//! ports, so every reply to a command that reached the handler is kept for
//! [`ReplyCache::ttl`]. Keys are the peer's address and the cookie (Kamailio
//! makes cookies unique per process, and each process has its own socket).
//!
//! Bounded by entry count and by bytes (cookie + reply + a fixed overhead
//! per entry); when full, the oldest entries go first. Time is passed in.
//! Entries are kept in insertion order, which is also expiry order, so
//! expiry and eviction pop from the front.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bytes charged per entry on top of the cookie and the reply (map and
/// queue bookkeeping).
pub const ENTRY_OVERHEAD: usize = 96;

#[derive(Debug)]
struct Entry {
    reply: Vec<u8>,
    inserted: Instant,
    seq: u64,
}

/// A bounded, expiring map from (peer, cookie) to the reply sent.
#[derive(Debug)]
pub struct ReplyCache {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    map: HashMap<SocketAddr, HashMap<Vec<u8>, Entry>>,
    order: VecDeque<(SocketAddr, Vec<u8>, u64)>,
    entries: usize,
    bytes: usize,
    next_seq: u64,
    evicted: u64,
}

impl ReplyCache {
    /// A cache keeping replies for `ttl`, at most `max_entries` of them and
    /// `max_bytes` in all.
    pub fn new(ttl: Duration, max_entries: usize, max_bytes: usize) -> Self {
        ReplyCache {
            ttl,
            max_entries,
            max_bytes,
            map: HashMap::new(),
            order: VecDeque::new(),
            entries: 0,
            bytes: 0,
            next_seq: 0,
            evicted: 0,
        }
    }

    /// How long replies are kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Bytes charged for the entries held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries dropped before their time to stay within the bounds.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn cost(cookie: &[u8], reply: &[u8]) -> usize {
        cookie.len() + reply.len() + ENTRY_OVERHEAD
    }

    /// The reply sent for this peer and cookie, if still held at `now`.
    pub fn get(&mut self, peer: SocketAddr, cookie: &[u8], now: Instant) -> Option<&[u8]> {
        self.expire(now);
        self.map
            .get(&peer)
            .and_then(|m| m.get(cookie))
            .map(|e| e.reply.as_slice())
    }

    /// Keeps `reply` for this peer and cookie from `now`. A reply larger
    /// than the whole byte bound is not kept; otherwise the oldest entries
    /// make room. Replaces an entry with the same key.
    pub fn insert(&mut self, peer: SocketAddr, cookie: &[u8], reply: Vec<u8>, now: Instant) {
        self.expire(now);
        let cost = Self::cost(cookie, &reply);
        if self.max_entries == 0 || cost > self.max_bytes || self.ttl.is_zero() {
            return;
        }
        self.remove(peer, cookie);
        while self.entries >= self.max_entries || self.bytes + cost > self.max_bytes {
            match self.pop_oldest() {
                None => break,
                Some(true) => self.evicted += 1,
                Some(false) => {}
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.map.entry(peer).or_default().insert(
            cookie.to_vec(),
            Entry {
                reply,
                inserted: now,
                seq,
            },
        );
        self.order.push_back((peer, cookie.to_vec(), seq));
        self.entries += 1;
        self.bytes += cost;
    }

    /// Drops the entries older than the TTL at `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some((peer, cookie, seq)) = self.order.front() {
            let expired = match self.map.get(peer).and_then(|m| m.get(cookie.as_slice())) {
                // Stale queue slot (entry replaced or removed): just drop it.
                Some(e) if e.seq != *seq => true,
                None => true,
                Some(e) => now.saturating_duration_since(e.inserted) >= self.ttl,
            };
            if !expired {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Removes the front of the queue and its entry if it is current:
    /// `Some(true)` when an entry went, `Some(false)` for a stale slot,
    /// `None` when the queue is empty.
    fn pop_oldest(&mut self) -> Option<bool> {
        let (peer, cookie, seq) = self.order.pop_front()?;
        let live = self
            .map
            .get(&peer)
            .and_then(|m| m.get(cookie.as_slice()))
            .is_some_and(|e| e.seq == seq);
        if live {
            self.remove(peer, &cookie);
        }
        Some(live)
    }

    fn remove(&mut self, peer: SocketAddr, cookie: &[u8]) {
        let Some(m) = self.map.get_mut(&peer) else {
            return;
        };
        if let Some(e) = m.remove(cookie) {
            self.entries -= 1;
            self.bytes -= Self::cost(cookie, &e.reply);
        }
        if m.is_empty() {
            self.map.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn hit_until_expiry_per_peer_and_cookie() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 10, 1 << 20);
        c.insert(peer(1), b"c1", b"reply".to_vec(), t0);
        assert_eq!(c.get(peer(1), b"c1", t0), Some(&b"reply"[..]));
        assert_eq!(c.get(peer(2), b"c1", t0), None, "other peer");
        assert_eq!(c.get(peer(1), b"c2", t0), None, "other cookie");
        let almost = t0 + Duration::from_secs(29);
        assert!(c.get(peer(1), b"c1", almost).is_some());
        assert_eq!(c.get(peer(1), b"c1", t0 + Duration::from_secs(30)), None);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
        assert_eq!(c.evicted(), 0);
        // A clock that goes back does not expire anything.
        c.insert(peer(1), b"c1", b"r".to_vec(), almost);
        assert!(c.get(peer(1), b"c1", t0).is_some());
    }

    #[test]
    fn entry_bound_evicts_oldest() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 3, 1 << 20);
        for i in 0..5u8 {
            c.insert(
                peer(1),
                &[i],
                vec![i],
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.evicted(), 2);
        let now = t0 + Duration::from_millis(10);
        assert!(c.get(peer(1), &[0], now).is_none());
        assert!(c.get(peer(1), &[1], now).is_none());
        for i in 2..5u8 {
            assert_eq!(c.get(peer(1), &[i], now), Some(&[i][..]));
        }
    }

    #[test]
    fn byte_bound_evicts_and_refuses_oversized() {
        let t0 = Instant::now();
        let entry = ReplyCache::cost(b"ck", &[0; 100]);
        let mut c = ReplyCache::new(Duration::from_secs(30), 100, 2 * entry + 10);
        c.insert(peer(1), b"ck", vec![1; 100], t0);
        c.insert(peer(2), b"ck", vec![2; 100], t0);
        assert_eq!((c.len(), c.bytes()), (2, 2 * entry));
        c.insert(peer(3), b"ck", vec![3; 100], t0);
        assert_eq!((c.len(), c.bytes(), c.evicted()), (2, 2 * entry, 1));
        assert!(c.get(peer(1), b"ck", t0).is_none());
        assert!(c.get(peer(3), b"ck", t0).is_some());
        // Larger than the whole bound: not kept, nothing evicted for it.
        c.insert(peer(4), b"ck", vec![4; 1000], t0);
        assert!(c.get(peer(4), b"ck", t0).is_none());
        assert_eq!(c.len(), 2);
        assert!(c.bytes() <= 2 * entry + 10);
    }

    #[test]
    fn replacing_a_key_keeps_accounting_right() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(5), 10, 1 << 20);
        c.insert(peer(1), b"k", vec![0; 10], t0);
        c.insert(peer(1), b"k", vec![0; 20], t0 + Duration::from_secs(3));
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), ReplyCache::cost(b"k", &[0; 20]));
        // The first insertion's queue slot is stale; the entry lives on from
        // its second insertion.
        assert!(c.get(peer(1), b"k", t0 + Duration::from_secs(6)).is_some());
        assert!(c.get(peer(1), b"k", t0 + Duration::from_secs(8)).is_none());
        assert_eq!((c.len(), c.bytes()), (0, 0));
    }

    #[test]
    fn zero_bounds_keep_nothing() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::ZERO, 10, 1 << 20);
        c.insert(peer(1), b"k", vec![1], t0);
        assert!(c.get(peer(1), b"k", t0).is_none());
        let mut c = ReplyCache::new(Duration::from_secs(1), 0, 1 << 20);
        c.insert(peer(1), b"k", vec![1], t0);
        assert!(c.is_empty());
    }
}
