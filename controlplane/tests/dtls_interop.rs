//! Interop with an independent DTLS 1.2 implementation: `dimpl` (pure Rust,
//! sans-IO, RustCrypto), with a certificate made by `rcgen`. Both sides run
//! in memory on a test-owned clock; every loop is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dimpl::{DtlsCertificate, Output, SrtpProfile};
use strait::dtls::{
    Certificate, DtlsConfig, DtlsContext, DtlsEndpoint, Event, FailReason, Fingerprint,
    HashAlgorithm, Role, SrtpKeys,
};
use strait_srtp::{Config as SrtpConfig, SrtpContext, Suite};

const MAX_ROUNDS: usize = 400;

/// The dimpl side: the engine plus what it reported.
struct Peer {
    dtls: dimpl::Dtls,
    buf: Vec<u8>,
    out: Vec<Vec<u8>>,
    timeout: Option<Instant>,
    connected: bool,
    peer_cert: Option<Vec<u8>>,
    keying: Option<(Vec<u8>, SrtpProfile)>,
    error: Option<String>,
}

impl Peer {
    fn new(cert: &rcgen_cert::Generated, client: bool, now: Instant) -> Self {
        let config = Arc::new(dimpl::Config::default());
        let certificate = DtlsCertificate {
            certificate: cert.der.clone(),
            private_key: cert.key_der.clone(),
        };
        let mut dtls = dimpl::Dtls::new_12(config, certificate, now);
        dtls.set_active(client);
        // dimpl wants a first timeout before anything else.
        dtls.handle_timeout(now).expect("first timeout");
        let mut peer = Self {
            dtls,
            buf: vec![0; 2048],
            out: Vec::new(),
            timeout: None,
            connected: false,
            peer_cert: None,
            keying: None,
            error: None,
        };
        peer.drain();
        peer
    }

    fn drain(&mut self) {
        for _ in 0..64 {
            let mut grow = None;
            match self.dtls.poll_output(&mut self.buf) {
                Output::Packet(p) => self.out.push(p.to_vec()),
                Output::Timeout(t) => {
                    self.timeout = Some(t);
                    return;
                }
                Output::Connected => self.connected = true,
                Output::PeerCert(der) => self.peer_cert = Some(der.to_vec()),
                Output::KeyingMaterial(km, profile) => self.keying = Some((km.to_vec(), profile)),
                Output::BufferTooSmall { needed } => grow = Some(needed),
                _ => {}
            }
            if let Some(n) = grow {
                self.buf.resize(n, 0);
            }
        }
        panic!("dimpl kept producing output");
    }

    fn receive(&mut self, d: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.dtls.handle_packet(d) {
                self.error = Some(format!("{e:?}"));
            }
        }
        self.drain();
    }

    fn tick(&mut self, now: Instant) {
        if self.error.is_none() {
            if let Err(e) = self.dtls.handle_timeout(now) {
                self.error = Some(format!("{e:?}"));
            }
        }
        self.drain();
    }
}

/// A P-256 certificate from rcgen, independent of OpenSSL.
mod rcgen_cert {
    pub struct Generated {
        pub der: Vec<u8>,
        pub key_der: Vec<u8>,
    }

    pub fn generate() -> Generated {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        Generated {
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

struct RunResult {
    ours: Vec<Event>,
    peer_connected: bool,
    peer_error: Option<String>,
    elapsed: Duration,
}

/// Exchanges datagrams until both sides finished or nothing is pending.
/// `lose(from_us, n, datagram)` drops a datagram when it returns true.
fn run(
    ours: &mut DtlsEndpoint,
    peer: &mut Peer,
    start: Instant,
    mut lose: impl FnMut(bool, usize, &[u8]) -> bool,
) -> RunResult {
    let mut now = start;
    let mut events = Vec::new();
    let mut sent = [0usize; 2];
    for _ in 0..MAX_ROUNDS {
        let mut moved = false;
        while let Some(d) = ours.poll_output() {
            assert!(d.len() <= 1200);
            moved = true;
            sent[0] += 1;
            if !lose(true, sent[0] - 1, &d) {
                peer.receive(&d);
            }
        }
        for d in std::mem::take(&mut peer.out) {
            moved = true;
            sent[1] += 1;
            if !lose(false, sent[1] - 1, &d) {
                let _ = ours.handle_packet(now, &d);
            }
        }
        while let Some(e) = ours.poll_event() {
            events.push(e);
        }
        if moved {
            continue;
        }
        let ours_done = events
            .iter()
            .any(|e| matches!(e, Event::Connected { .. } | Event::Failed(_)));
        let peer_done = peer.connected || peer.error.is_some();
        if ours_done && peer_done {
            break;
        }
        let next = [ours.poll_timeout(), peer.timeout]
            .into_iter()
            .flatten()
            .min();
        let Some(t) = next else { break };
        // dimpl keeps a far-future idle timer once connected.
        if t > start + Duration::from_secs(600) {
            break;
        }
        now = t.max(now);
        ours.handle_timeout(now);
        peer.tick(now);
    }
    RunResult {
        ours: events,
        peer_connected: peer.connected,
        peer_error: peer.error.clone(),
        elapsed: now - start,
    }
}

fn suite_of(p: SrtpProfile) -> Suite {
    match p {
        SrtpProfile::AES128_CM_SHA1_80 => Suite::AesCm128HmacSha1_80,
        SrtpProfile::AEAD_AES_128_GCM => Suite::AeadAes128Gcm,
        other => panic!("unexpected profile {other:?}"),
    }
}

/// Checks our keys against dimpl's exporter output and uses them.
fn check_keys(ours: &SrtpKeys, role: Role, peer: &Peer) {
    let (material, profile) = peer.keying.as_ref().expect("dimpl exported keys");
    let suite = suite_of(*profile);
    assert_eq!(ours.suite(), suite);
    let parts = suite
        .split_dtls_keying_material(material)
        .expect("material length");
    let client = [parts.client_key, parts.client_salt].concat();
    let server = [parts.server_key, parts.server_salt].concat();
    let (mine, theirs) = match role {
        Role::Client => (client, server),
        Role::Server => (server, client),
    };
    assert_eq!(ours.local_master(), mine.as_slice());
    assert_eq!(ours.remote_master(), theirs.as_slice());

    // Protect with our key, unprotect with the key dimpl derived for us.
    let mut tx =
        SrtpContext::from_master(suite, ours.local_master(), SrtpConfig::default()).expect("tx");
    let mut rx = SrtpContext::from_master(suite, &mine, SrtpConfig::default()).expect("rx");
    let rtp = [
        0x80, 0, 0, 7, 0, 0, 0, 160, 1, 2, 3, 4, 0xde, 0xad, 0xbe, 0xef,
    ];
    let mut buf = [0u8; 64];
    buf[..rtp.len()].copy_from_slice(&rtp);
    let n = tx.protect_rtp(&mut buf, rtp.len()).expect("protect");
    let m = rx.unprotect_rtp(&mut buf[..n]).expect("unprotect");
    assert_eq!(&buf[..m], &rtp);
}

fn ours(suites: &[Suite]) -> (Certificate, DtlsContext) {
    let cert = Certificate::generate().expect("cert");
    let mut config = DtlsConfig::default();
    config.srtp_suites = suites.to_vec();
    let ctx = DtlsContext::new(&cert, config).expect("ctx");
    (cert, ctx)
}

#[test]
fn interop_with_dimpl_in_both_roles_for_each_common_profile() {
    for suite in [Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_80] {
        for role in [Role::Server, Role::Client] {
            let (cert, ctx) = ours(&[suite]);
            let peer_cert = rcgen_cert::generate();
            let pin = Fingerprint::of_der(HashAlgorithm::Sha256, &peer_cert.der);
            let t0 = Instant::now();
            let mut peer = Peer::new(&peer_cert, role == Role::Server, t0);
            let mut me = DtlsEndpoint::new(&ctx, role, &[pin], t0).expect("endpoint");
            let r = run(&mut me, &mut peer, t0, |_, _, _| false);
            assert!(r.peer_connected, "{suite:?} {role:?}: {:?}", r.peer_error);
            let [Event::Connected { srtp }] = r.ours.as_slice() else {
                panic!("{suite:?} {role:?}: {:?}", r.ours);
            };
            check_keys(srtp, role, &peer);
            // dimpl saw our certificate.
            assert_eq!(peer.peer_cert.as_deref(), Some(cert.der().as_slice()));
            assert_eq!(r.elapsed, Duration::ZERO);
        }
    }
}

#[test]
fn default_suites_against_dimpl_pick_gcm() {
    // dimpl offers AES-256-GCM first, which the data plane cannot do; we
    // never offer or accept it.
    for role in [Role::Server, Role::Client] {
        let (_cert, ctx) = ours(&Suite::ALL);
        let peer_cert = rcgen_cert::generate();
        let pin = Fingerprint::of_der(HashAlgorithm::Sha256, &peer_cert.der);
        let t0 = Instant::now();
        let mut peer = Peer::new(&peer_cert, role == Role::Server, t0);
        let mut me = DtlsEndpoint::new(&ctx, role, &[pin], t0).expect("endpoint");
        let r = run(&mut me, &mut peer, t0, |_, _, _| false);
        let [Event::Connected { srtp }] = r.ours.as_slice() else {
            panic!("{role:?}: {:?}", r.ours);
        };
        assert_eq!(srtp.suite(), Suite::AeadAes128Gcm);
        check_keys(srtp, role, &peer);
    }
}

#[test]
fn dimpl_with_the_wrong_certificate_is_rejected() {
    let (_cert, ctx) = ours(&Suite::ALL);
    let peer_cert = rcgen_cert::generate();
    let other = rcgen_cert::generate();
    let wrong = Fingerprint::of_der(HashAlgorithm::Sha256, &other.der);
    for role in [Role::Server, Role::Client] {
        let t0 = Instant::now();
        let mut peer = Peer::new(&peer_cert, role == Role::Server, t0);
        let mut me = DtlsEndpoint::new(&ctx, role, &[wrong], t0).expect("endpoint");
        let r = run(&mut me, &mut peer, t0, |_, _, _| false);
        assert_eq!(
            r.ours.last(),
            Some(&Event::Failed(FailReason::FingerprintMismatch)),
            "{role:?}"
        );
        assert!(r.ours.iter().all(|e| !matches!(e, Event::Connected { .. })));
        if role == Role::Server {
            // Our server never sent its Finished, so dimpl cannot connect.
            assert!(!r.peer_connected);
        }
    }
}

#[test]
fn lost_flights_recover_against_dimpl() {
    // Lose the first datagram each side sends, then our server's final
    // flight: dimpl retransmits with fresh record numbers, and we answer.
    for role in [Role::Server, Role::Client] {
        let (_cert, ctx) = ours(&Suite::ALL);
        let peer_cert = rcgen_cert::generate();
        let pin = Fingerprint::of_der(HashAlgorithm::Sha256, &peer_cert.der);
        let t0 = Instant::now();
        let mut peer = Peer::new(&peer_cert, role == Role::Server, t0);
        let mut me = DtlsEndpoint::new(&ctx, role, &[pin], t0).expect("endpoint");
        let r = run(&mut me, &mut peer, t0, |_, n, _| n == 0);
        assert!(r.peer_connected, "{role:?}: {:?}", r.peer_error);
        let [Event::Connected { srtp }] = r.ours.as_slice() else {
            panic!("{role:?}: {:?}", r.ours);
        };
        check_keys(srtp, role, &peer);
        assert!(r.elapsed > Duration::ZERO);
    }

    let (_cert, ctx) = ours(&Suite::ALL);
    let peer_cert = rcgen_cert::generate();
    let pin = Fingerprint::of_der(HashAlgorithm::Sha256, &peer_cert.der);
    let t0 = Instant::now();
    let mut peer = Peer::new(&peer_cert, true, t0);
    let mut me = DtlsEndpoint::new(&ctx, Role::Server, &[pin], t0).expect("endpoint");
    let mut dropped = false;
    let r = run(&mut me, &mut peer, t0, |from_us, _, d| {
        // Our final flight is the first one with a ChangeCipherSpec.
        if from_us && !dropped && d.first() == Some(&20) {
            dropped = true;
            return true;
        }
        false
    });
    assert!(dropped);
    assert!(r.peer_connected, "{:?}", r.peer_error);
    assert!(me.counters().final_flight_resends >= 1);
    let [Event::Connected { srtp }] = r.ours.as_slice() else {
        panic!("{:?}", r.ours);
    };
    check_keys(srtp, Role::Server, &peer);
}

#[test]
fn client_role_recovers_when_dimpl_loses_its_final_flight() {
    // Our Finished is resent byte-identical (its record number cannot be
    // changed without the keys) but our plaintext records carry new
    // numbers; dimpl takes that as a retransmission and resends.
    let (_cert, ctx) = ours(&Suite::ALL);
    let peer_cert = rcgen_cert::generate();
    let pin = Fingerprint::of_der(HashAlgorithm::Sha256, &peer_cert.der);
    let t0 = Instant::now();
    let mut peer = Peer::new(&peer_cert, false, t0);
    let mut me = DtlsEndpoint::new(&ctx, Role::Client, &[pin], t0).expect("endpoint");
    let mut dropped = false;
    let r = run(&mut me, &mut peer, t0, |from_us, _, d| {
        if !from_us && !dropped && d.first() == Some(&20) {
            dropped = true;
            return true;
        }
        false
    });
    assert!(dropped);
    assert!(r.peer_connected, "{:?}", r.peer_error);
    assert_eq!(me.counters().retransmits, 1);
    assert_eq!(r.elapsed, Duration::from_secs(1));
    let [Event::Connected { srtp }] = r.ours.as_slice() else {
        panic!("{:?}", r.ours);
    };
    check_keys(srtp, Role::Client, &peer);
}
