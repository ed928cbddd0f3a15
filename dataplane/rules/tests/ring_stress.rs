//! The rings under a concurrent producer and consumer in two threads, each
//! with its own mapping of the region (as two processes would have), in both
//! directions at once. Every message carries its sequence number, a length
//! that varies from 0 to the slot maximum and a checksum of its bytes; the
//! consumer checks all three, so a torn, lost, duplicated or reordered
//! message fails the test.

use strait_rules::region::{Region, RegionLayout};
use strait_rules::ring::{Consumer, Producer, RingError, RingGeometry};

const MESSAGES: u64 = 200_000;

fn fill(seq: u64, buf: &mut [u8]) {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

fn body_len(seq: u64, max: usize) -> usize {
    (seq.wrapping_mul(2_654_435_761) % (max as u64 + 1)) as usize
}

fn produce(mut tx: Producer, max: usize) -> u64 {
    let mut full = 0u64;
    let mut seq = 0;
    while seq < MESSAGES {
        let len = body_len(seq, max);
        match tx.push_with((seq % 65_536) as u16, len, |dst| fill(seq, dst)) {
            Ok(()) => seq += 1,
            Err(RingError::Full) => {
                full += 1;
                std::thread::yield_now();
            }
            Err(e) => panic!("push failed: {e}"),
        }
    }
    full
}

fn consume(mut rx: Consumer, max: usize) {
    let mut expect = 0u64;
    let mut scratch = vec![0u8; max];
    // Bounded: every message arrives or the spin budget runs out.
    let mut idle_spins = 0u64;
    while expect < MESSAGES {
        let got = rx
            .pop(|kind, body| {
                assert_eq!(u64::from(kind), expect % 65_536, "message order");
                let len = body_len(expect, max);
                assert_eq!(body.len(), len, "length of message {expect}");
                fill(expect, &mut scratch[..len]);
                assert!(body == &scratch[..len], "bytes of message {expect}");
            })
            .expect("ring consistent");
        if got.is_some() {
            expect += 1;
            idle_spins = 0;
        } else {
            idle_spins += 1;
            assert!(idle_spins < 50_000_000, "consumer starved at {expect}");
            std::thread::yield_now();
        }
    }
    assert!(rx.is_empty());
}

#[test]
fn concurrent_producer_and_consumer_in_both_directions() {
    let path = std::env::temp_dir().join(format!("strait-ring-stress-{}", std::process::id()));
    let geo = RingGeometry {
        capacity: 64,
        slot_size: 256,
    };
    let max = geo.max_body();
    let data = Region::create(
        &path,
        RegionLayout {
            workers: 1,
            ring: geo,
            max_legs: 1,
            port_min: 30000,
            port_max: 40000,
        },
    )
    .unwrap();
    let control = Region::attach(&path).unwrap();
    let (down_tx, up_rx) = control.control_ends(0).unwrap();
    let (down_rx, up_tx) = data.worker_ends(0).unwrap();
    let threads = [
        std::thread::spawn(move || produce(down_tx, max)),
        std::thread::spawn(move || {
            consume(down_rx, max);
            0
        }),
        std::thread::spawn(move || produce(up_tx, max)),
        std::thread::spawn(move || {
            consume(up_rx, max);
            0
        }),
    ];
    let full: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // For information: how often the producers caught up with a consumer.
    eprintln!("producers saw a full ring {full} times");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn positions_survive_reattach() {
    let path = std::env::temp_dir().join(format!("strait-ring-reattach-{}", std::process::id()));
    let geo = RingGeometry {
        capacity: 4,
        slot_size: 64,
    };
    let data = Region::create(
        &path,
        RegionLayout {
            workers: 1,
            ring: geo,
            max_legs: 1,
            port_min: 30000,
            port_max: 40000,
        },
    )
    .unwrap();
    let (mut rx, _) = data.worker_ends(0).unwrap();
    for round in 0..5u8 {
        // Each "control plane" attaches, sends three messages and dies.
        let control = Region::attach(&path).unwrap();
        let (mut tx, _) = control.control_ends(0).unwrap();
        for i in 0..3u8 {
            tx.push(1, &[round, i]).unwrap();
        }
        drop(tx);
        drop(control);
        for i in 0..3u8 {
            let body = rx.pop(|_, b| b.to_vec()).unwrap().unwrap();
            assert_eq!(body, vec![round, i]);
        }
        assert!(rx.pop(|_, _| ()).unwrap().is_none());
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn oversized_and_full_are_errors_not_overwrites() {
    let path = std::env::temp_dir().join(format!("strait-ring-full-{}", std::process::id()));
    let geo = RingGeometry {
        capacity: 2,
        slot_size: 64,
    };
    let data = Region::create(
        &path,
        RegionLayout {
            workers: 1,
            ring: geo,
            max_legs: 1,
            port_min: 30000,
            port_max: 40000,
        },
    )
    .unwrap();
    let (_rx, mut tx) = data.worker_ends(0).unwrap();
    assert_eq!(tx.push(1, &[0; 57]), Err(RingError::TooLarge));
    tx.push(1, &[0; 56]).unwrap();
    tx.push(2, &[1]).unwrap();
    assert_eq!(tx.push(3, &[2]), Err(RingError::Full));
    let control = Region::attach(&path).unwrap();
    let (_, mut up) = control.control_ends(0).unwrap();
    assert_eq!(up.pop(|k, b| (k, b.len())).unwrap(), Some((1, 56)));
    tx.push(3, &[2]).unwrap();
    assert_eq!(up.pop(|k, b| (k, b.to_vec())).unwrap(), Some((2, vec![1])));
    assert_eq!(up.pop(|k, b| (k, b.to_vec())).unwrap(), Some((3, vec![2])));
    std::fs::remove_file(&path).unwrap();
}
