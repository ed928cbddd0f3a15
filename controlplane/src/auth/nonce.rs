//! Stateless, signed nonces and a bounded cache of the nonce counts seen.
//!
//! A nonce is `base64url(issued ‖ random ‖ tag)`: the issue time in UNIX
//! seconds (8 bytes, big-endian), 8 random bytes from the caller's source,
//! and the first 16 bytes of HMAC-SHA256(key, issued ‖ random). Checking
//! one needs only the key: the tag proves we issued it, `issued` tells its
//! age. Nothing is stored per challenge, so unauthenticated clients cannot
//! grow our memory by asking for challenges.
//!
//! Replay protection needs state, but only per nonce that authenticated a
//! request: [`ReplayCache`] keeps, per nonce, the highest `nc` seen and a
//! 64-bit window below it (like the SRTP replay list), so requests sent in
//! parallel with the same nonce may arrive out of order. Without `qop`
//! (RFC 2069 clients, no `nc`) a nonce is good for one request. The cache
//! is bounded: entries of expired nonces are dropped, and when it is full the
//! oldest entry is evicted and a watermark remembers its issue time — a nonce
//! issued at or before the watermark that is not in the cache is refused as
//! stale (the client simply retries with a fresh one), so eviction never
//! re-opens a replay.

use std::collections::{HashMap, VecDeque};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Raw nonce length: issued (8) + random (8) + tag (16).
const RAW_LEN: usize = 32;
/// Length of the base64url text.
pub(crate) const NONCE_TEXT_LEN: usize = 43;

/// Issues and checks nonces with one key.
#[derive(Clone)]
pub(crate) struct NonceMint {
    key: [u8; 32],
}

impl std::fmt::Debug for NonceMint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceMint { key: <hidden> }")
    }
}

/// The identity of a valid nonce: its issue time and random part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NonceId {
    pub(crate) issued: u64,
    random: [u8; 8],
}

impl NonceMint {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        NonceMint { key }
    }

    fn tag(&self, head: &[u8; 16]) -> [u8; 16] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"strait digest nonce v1");
        mac.update(head);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A fresh nonce issued at `now_unix`.
    pub(crate) fn issue(&self, now_unix: u64, random: [u8; 8]) -> String {
        let mut head = [0u8; 16];
        head[..8].copy_from_slice(&now_unix.to_be_bytes());
        head[8..].copy_from_slice(&random);
        let mut raw = [0u8; RAW_LEN];
        raw[..16].copy_from_slice(&head);
        raw[16..].copy_from_slice(&self.tag(&head));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce's identity if we issued it (the tag checks out).
    pub(crate) fn check(&self, nonce: &str) -> Option<NonceId> {
        if nonce.len() != NONCE_TEXT_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_LEN];
        let n = URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw).ok()?;
        if n != RAW_LEN {
            return None;
        }
        let mut head = [0u8; 16];
        head.copy_from_slice(&raw[..16]);
        let tag = self.tag(&head);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&tag[..], &raw[16..])) {
            return None;
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&head[..8]);
        let mut random = [0u8; 8];
        random.copy_from_slice(&head[8..]);
        Some(NonceId {
            issued: u64::from_be_bytes(issued),
            random,
        })
    }
}

/// Why the replay cache refused a use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplayVerdict {
    /// First use of this (nonce, nc).
    Fresh,
    /// This (nonce, nc) was seen, or nc is too far below the highest seen,
    /// or a one-time (no qop) nonce was used again.
    Replayed,
    /// The nonce was forgotten (evicted): ask for a new one.
    Forgotten,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Highest nc seen (0 for a one-time use without qop).
    max_nc: u32,
    /// Bit i set: `max_nc - i` was seen.
    window: u64,
}

/// Per-nonce record of the nonce counts used, bounded in size.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    map: HashMap<NonceId, Entry>,
    /// Nonces in order of first use, for expiry and eviction.
    order: VecDeque<NonceId>,
    capacity: usize,
    /// Nonces issued at or before this time and absent from the map are
    /// refused.
    watermark: Option<u64>,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ReplayCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            watermark: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Drops entries of nonces issued before `oldest_valid` (they fail the
    /// expiry check anyway).
    fn purge(&mut self, oldest_valid: u64) {
        while let Some(front) = self.order.front() {
            if front.issued >= oldest_valid {
                break;
            }
            let id = *front;
            self.order.pop_front();
            self.map.remove(&id);
        }
    }

    /// Records a use of `id` with nonce count `nc` (`None` without qop).
    /// `oldest_valid` is the issue time below which nonces have expired.
    pub(crate) fn record(
        &mut self,
        id: NonceId,
        nc: Option<u32>,
        oldest_valid: u64,
    ) -> ReplayVerdict {
        self.purge(oldest_valid);
        if let Some(e) = self.map.get_mut(&id) {
            let Some(nc) = nc else {
                return ReplayVerdict::Replayed;
            };
            if e.max_nc == 0 {
                // First used without qop: one-time.
                return ReplayVerdict::Replayed;
            }
            if nc > e.max_nc {
                let shift = nc - e.max_nc;
                e.window = if shift >= 64 { 0 } else { e.window << shift };
                e.window |= 1;
                e.max_nc = nc;
                return ReplayVerdict::Fresh;
            }
            let back = e.max_nc - nc;
            if back >= 64 || e.window & (1u64 << back) != 0 {
                return ReplayVerdict::Replayed;
            }
            e.window |= 1u64 << back;
            return ReplayVerdict::Fresh;
        }
        if self.watermark.is_some_and(|w| id.issued <= w) {
            return ReplayVerdict::Forgotten;
        }
        while self.map.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if self.map.remove(&old).is_some() {
                self.watermark = Some(self.watermark.map_or(old.issued, |w| w.max(old.issued)));
            }
        }
        self.map.insert(
            id,
            Entry {
                max_nc: nc.unwrap_or(0),
                window: 1,
            },
        );
        self.order.push_back(id);
        ReplayVerdict::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_signed_and_timed() {
        let mint = NonceMint::new([7; 32]);
        let n = mint.issue(1_700_000_000, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(n.len(), NONCE_TEXT_LEN);
        assert!(!n.contains(['"', '\\', ',', ' ']));
        let id = mint.check(&n).expect("our own nonce");
        assert_eq!(id.issued, 1_700_000_000);
        // Another key, or any changed character, is refused.
        assert!(NonceMint::new([8; 32]).check(&n).is_none());
        for i in 0..n.len() {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(b).unwrap();
            assert!(mint.check(&s).is_none(), "{i}");
        }
        assert!(mint.check("").is_none());
        assert!(mint.check(&"!".repeat(NONCE_TEXT_LEN)).is_none());
    }

    fn id(issued: u64, r: u8) -> NonceId {
        NonceId {
            issued,
            random: [r; 8],
        }
    }

    #[test]
    fn nc_window() {
        let mut c = ReplayCache::new(10);
        let a = id(100, 1);
        assert_eq!(c.record(a, Some(1), 0), ReplayVerdict::Fresh);
        assert_eq!(c.record(a, Some(1), 0), ReplayVerdict::Replayed);
        assert_eq!(c.record(a, Some(3), 0), ReplayVerdict::Fresh);
        // Out of order but inside the window.
        assert_eq!(c.record(a, Some(2), 0), ReplayVerdict::Fresh);
        assert_eq!(c.record(a, Some(2), 0), ReplayVerdict::Replayed);
        assert_eq!(c.record(a, Some(100), 0), ReplayVerdict::Fresh);
        // Too far behind.
        assert_eq!(c.record(a, Some(4), 0), ReplayVerdict::Replayed);
        assert_eq!(c.record(a, Some(37), 0), ReplayVerdict::Fresh);
        // Without qop: one use only.
        let b = id(100, 2);
        assert_eq!(c.record(b, None, 0), ReplayVerdict::Fresh);
        assert_eq!(c.record(b, None, 0), ReplayVerdict::Replayed);
        assert_eq!(c.record(b, Some(1), 0), ReplayVerdict::Replayed);
        assert_eq!(c.record(a, None, 0), ReplayVerdict::Replayed);
    }

    #[test]
    fn bounded_with_watermark() {
        let mut c = ReplayCache::new(3);
        for r in 0..3 {
            assert_eq!(
                c.record(id(10 + u64::from(r), r), Some(1), 0),
                ReplayVerdict::Fresh
            );
        }
        // A fourth evicts the oldest (issued 10).
        assert_eq!(c.record(id(20, 9), Some(1), 0), ReplayVerdict::Fresh);
        assert_eq!(c.len(), 3);
        // The evicted nonce cannot be replayed: it is "forgotten".
        assert_eq!(c.record(id(10, 0), Some(1), 0), ReplayVerdict::Forgotten);
        // Nor can a never-seen nonce issued no later than the watermark.
        assert_eq!(c.record(id(9, 5), Some(1), 0), ReplayVerdict::Forgotten);
        // Expired entries are dropped without raising the watermark.
        // (The caller refuses expired nonces before asking the cache.)
        assert_eq!(c.record(id(30, 7), Some(1), 25), ReplayVerdict::Fresh);
        assert_eq!(c.len(), 1);
        assert_eq!(c.watermark, Some(10));
    }
}
