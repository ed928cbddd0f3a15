//! Replay window (RFC 3711 §3.3.2) as a ring bitmap.
//!
//! Bit `index % ring_bits` records whether `index` was received. Indices
//! within `size` of the highest one map to distinct bits because
//! `ring_bits >= size`; advancing the top clears the bits of the indices
//! skipped over, so advancing by one costs one bit operation whatever the
//! window size.

use crate::Error;

pub(crate) struct ReplayWindow {
    /// Ring bitmap, allocated once at construction.
    bits: Box<[u64]>,
    /// Packets accepted behind the highest one (including it).
    size: u64,
    /// Highest index accepted so far (valid when `started`).
    top: u64,
    started: bool,
}

impl ReplayWindow {
    /// `size >= 1`; the ring has `ceil(size / 64)` words.
    pub(crate) fn new(size: u32) -> Self {
        let words = (size as usize).div_ceil(64).max(1);
        Self {
            bits: vec![0u64; words].into_boxed_slice(),
            size: u64::from(size.max(1)),
            top: 0,
            started: false,
        }
    }

    /// Forgets everything (a slot is reused for a new SSRC).
    pub(crate) fn reset(&mut self) {
        self.bits.fill(0);
        self.top = 0;
        self.started = false;
    }

    /// The highest accepted index, if any.
    pub(crate) fn top(&self) -> Option<u64> {
        self.started.then_some(self.top)
    }

    fn ring_bits(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn slot(&self, index: u64) -> (usize, u64) {
        let bit = index % self.ring_bits();
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    /// Whether `index` would be accepted. Does not modify the window.
    pub(crate) fn check(&self, index: u64) -> Result<(), Error> {
        if !self.started || index > self.top {
            return Ok(());
        }
        if self.top - index >= self.size {
            return Err(Error::TooOld);
        }
        let (w, m) = self.slot(index);
        match self.bits.get(w) {
            Some(word) if word & m != 0 => Err(Error::Replayed),
            _ => Ok(()),
        }
    }

    /// Records `index` as received (after it passed [`Self::check`] and
    /// authentication). Indices older than the window are ignored.
    pub(crate) fn accept(&mut self, index: u64) {
        if !self.started {
            self.bits.fill(0);
            self.started = true;
            self.top = index;
        } else if index > self.top {
            let advance = index - self.top;
            if advance >= self.ring_bits() {
                self.bits.fill(0);
            } else {
                for i in self.top + 1..index {
                    let (w, m) = self.slot(i);
                    if let Some(word) = self.bits.get_mut(w) {
                        *word &= !m;
                    }
                }
            }
            self.top = index;
        } else if self.top - index >= self.size {
            return;
        }
        let (w, m) = self.slot(index);
        if let Some(word) = self.bits.get_mut(w) {
            *word |= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic() {
        let mut w = ReplayWindow::new(64);
        assert_eq!(w.check(1000), Ok(()));
        w.accept(1000);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(999), Ok(()));
        assert_eq!(w.check(1000 - 63), Ok(()));
        assert_eq!(w.check(1000 - 64), Err(Error::TooOld));
        w.accept(999);
        assert_eq!(w.check(999), Err(Error::Replayed));
        w.accept(1001);
        assert_eq!(w.check(1001), Err(Error::Replayed));
        assert_eq!(w.check(999), Err(Error::Replayed));
        assert_eq!(w.check(998), Ok(()));
        assert_eq!(w.top(), Some(1001));
        // A jump larger than the ring clears everything behind.
        w.accept(100_000);
        assert_eq!(w.check(100_000 - 1), Ok(()));
        assert_eq!(w.check(1001), Err(Error::TooOld));
    }

    #[test]
    fn matches_reference_model() {
        // Compare against a naive set-based model over a pseudo-random walk.
        for size in [64u32, 65, 100, 128, 1000] {
            let mut w = ReplayWindow::new(size);
            let mut seen = std::collections::BTreeSet::new();
            let mut top: Option<u64> = None;
            let mut x: u64 = 0x1234_5678;
            let mut cur: u64 = 5000;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let delta = (x % 301) as i64 - 200;
                let idx = (cur as i64 + delta).max(0) as u64;
                let expect = match top {
                    None => Ok(()),
                    Some(t) if idx > t => Ok(()),
                    Some(t) if t - idx >= u64::from(size) => Err(Error::TooOld),
                    Some(_) if seen.contains(&idx) => Err(Error::Replayed),
                    Some(_) => Ok(()),
                };
                assert_eq!(w.check(idx), expect, "size {size} idx {idx}");
                if expect.is_ok() {
                    w.accept(idx);
                    seen.insert(idx);
                    top = Some(top.map_or(idx, |t| t.max(idx)));
                    cur = top.unwrap_or(idx);
                }
                if x.is_multiple_of(5) {
                    cur += 1;
                }
            }
        }
    }
}
