//! A sans-IO signalling core with a media engine (no data plane behind it:
//! the tests read the rules it queues), shared by the B2BUA and ng tests.

use std::time::{Instant, SystemTime};

use strait::config::Config;
use strait::dtls::{Certificate, DtlsConfig, DtlsContext};
use strait::media::MediaEngine;
use strait::registrar::{Registrar, RegistrarSettings};
use strait::signalling::core::Core;
use strait_rules::region::RegionLayout;
use strait_rules::ring::RingGeometry;

/// A core for `toml` (a configuration), with an in-memory registrar, a
/// deterministic xorshift64 generator seeded with `seed` (no short cycle:
/// tags and branches do not repeat within a test), and a media engine for
/// 2 workers, 64 legs, ports 30000-30099.
pub fn core(toml: &str, seed: u64) -> Core {
    let config = Config::from_toml(toml).expect("config");
    let mut settings = RegistrarSettings::from_config(&config);
    settings.store_path = None;
    let (registrar, _) =
        Registrar::open(settings, Instant::now(), SystemTime::now()).expect("in memory");
    let mut x = seed;
    let rng = move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    };
    let cert = Certificate::generate().expect("cert");
    let ctx = DtlsContext::new(&cert, DtlsConfig::default()).expect("ctx");
    let layout = RegionLayout {
        workers: 2,
        ring: RingGeometry {
            capacity: 64,
            slot_size: 2048,
        },
        max_legs: 64,
        port_min: 30000,
        port_max: 30099,
    };
    Core::with_media(
        &config,
        registrar,
        Box::new(rng),
        Some(MediaEngine::new(layout, ctx)),
    )
}
