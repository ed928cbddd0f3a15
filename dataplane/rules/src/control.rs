//! What every control plane does with a region, in one place: recover the
//! session table from the workers, and read the counters.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::abi::{counter, Kind, LegRule};
use crate::region::Region;
use crate::ring::{Consumer, Producer, RingError};

/// Why a snapshot failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A ring refused the request or returned garbage.
    Ring(RingError),
    /// The worker did not finish answering in time.
    Timeout,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Ring(e) => write!(f, "ring: {e}"),
            SnapshotError::Timeout => f.write_str("the worker did not answer the snapshot"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Asks one worker for every leg it holds, over its control ends, and
/// collects them until the end marker. Events queued before the request (a
/// dead predecessor's) are read and skipped.
pub fn snapshot(
    tx: &mut Producer,
    rx: &mut Consumer,
    timeout: Duration,
) -> Result<Vec<LegRule>, SnapshotError> {
    tx.push(Kind::Snapshot as u16, &[])
        .map_err(SnapshotError::Ring)?;
    let deadline = Instant::now() + timeout;
    let mut legs = Vec::new();
    loop {
        let got = rx
            .pop(|kind, body| {
                if kind == Kind::LegState as u16 {
                    if let Ok(r) = bytemuck::try_pod_read_unaligned::<LegRule>(body) {
                        legs.push(r);
                    }
                }
                kind == Kind::SnapshotEnd as u16
            })
            .map_err(SnapshotError::Ring)?;
        match got {
            Some(true) => return Ok(legs),
            Some(false) => {}
            None if Instant::now() > deadline => return Err(SnapshotError::Timeout),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// The per-leg counters summed over every slot ([`counter`] indices).
pub fn leg_totals(region: &Region) -> [u64; counter::COUNT] {
    let mut sum = [0u64; counter::COUNT];
    for slot in 0..region.layout().max_legs {
        let c = region.counters(slot).expect("slot < max_legs");
        for (s, v) in sum.iter_mut().zip(c.iter()) {
            *s += v.load(Ordering::Relaxed);
        }
    }
    sum
}
