//! Wrap-aware arithmetic on 16-bit RTP sequence numbers (RFC 3550 A.1).

/// True when `a` comes after `b`, treating the 16-bit space as a circle
/// (a distance under 2^15 forward counts as "newer").
#[inline]
pub fn is_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Signed distance from `b` to `a` in the range -32768..=32767.
#[inline]
pub fn diff(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

/// Extends 16-bit sequence numbers to 64 bits by counting wraps, tolerating
/// reordering within half the sequence space.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqExtender {
    last: Option<u64>,
}

impl SeqExtender {
    /// A fresh extender; the first sequence number seen starts cycle 0.
    pub const fn new() -> Self {
        Self { last: None }
    }

    /// Extends `seq` relative to the highest value seen so far, and advances
    /// the highest value when `seq` is newer.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let Some(last) = self.last else {
            self.last = Some(u64::from(seq));
            return u64::from(seq);
        };
        let d = i64::from(diff(seq, last as u16));
        // Never go below zero: an old packet before the first one seen stays
        // in cycle 0.
        let ext = (last as i64 + d).max(0) as u64;
        if ext > last {
            self.last = Some(ext);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_wraps() {
        assert!(is_newer(1, 0));
        assert!(is_newer(0, 65535));
        assert!(!is_newer(65535, 0));
        assert!(!is_newer(5, 5));
        assert_eq!(diff(2, 65534), 4);
        assert_eq!(diff(65534, 2), -4);
    }

    #[test]
    fn extender_counts_wraps_and_tolerates_reorder() {
        let mut e = SeqExtender::new();
        assert_eq!(e.extend(65534), 65534);
        assert_eq!(e.extend(65535), 65535);
        assert_eq!(e.extend(1), 65537);
        assert_eq!(e.extend(0), 65536); // late packet, does not regress
        assert_eq!(e.extend(2), 65538);
        let mut e = SeqExtender::new();
        assert_eq!(e.extend(3), 3);
        assert_eq!(e.extend(65535), 0, "old packet before start clamps to 0");
    }
}
