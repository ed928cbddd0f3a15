//! DTLS-SRTP endpoint tests: two endpoints exchange datagrams in memory on a
//! test-owned clock (no sockets, no sleeps). Every loop is bounded.

use std::time::{Duration, Instant};

use strait::dtls::{
    Certificate, ConfigError, DtlsConfig, DtlsContext, DtlsEndpoint, Event, FailReason,
    Fingerprint, HashAlgorithm, InputError, Role, SrtpKeys, State,
};
use strait_srtp::{Config as SrtpConfig, SrtpContext, Suite};

/// Upper bound on exchange rounds in one run.
const MAX_ROUNDS: usize = 400;

struct Side {
    ctx: DtlsContext,
}

fn side(config: DtlsConfig) -> Side {
    let cert = Certificate::generate().expect("certificate");
    Side {
        ctx: DtlsContext::new(&cert, config).expect("context"),
    }
}

fn endpoints(server: &Side, client: &Side, now: Instant) -> (DtlsEndpoint, DtlsEndpoint) {
    let s = DtlsEndpoint::new(&server.ctx, Role::Server, &[client.ctx.fingerprint()], now)
        .expect("server");
    let c = DtlsEndpoint::new(&client.ctx, Role::Client, &[server.ctx.fingerprint()], now)
        .expect("client");
    (s, c)
}

/// What one run produced.
#[derive(Default)]
struct Outcome {
    server_events: Vec<Event>,
    client_events: Vec<Event>,
    /// Every datagram put on the wire, with its sender and send time.
    wire: Vec<(Role, Instant, Vec<u8>)>,
}

impl Outcome {
    fn keys(&self) -> (SrtpKeys, SrtpKeys) {
        (
            connected(&self.server_events),
            connected(&self.client_events),
        )
    }
}

fn connected(events: &[Event]) -> SrtpKeys {
    match events {
        [Event::Connected { srtp }] => srtp.clone(),
        other => panic!("expected one Connected event, got {other:?}"),
    }
}

fn failed(events: &[Event]) -> FailReason {
    match events.last() {
        Some(Event::Failed(r)) => *r,
        other => panic!("expected a Failed event, got {other:?} in {events:?}"),
    }
}

fn terminal(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Connected { .. } | Event::Failed(_)))
}

/// Exchanges datagrams until both sides reported a terminal event (and the
/// network is quiet) or nothing is left to do. `lose(sender, n, now,
/// datagram)` drops the `n`-th datagram of `sender` when it returns true. When the
/// network is idle the clock jumps to the earliest pending timeout.
fn run(
    s: &mut DtlsEndpoint,
    c: &mut DtlsEndpoint,
    clock: &mut Instant,
    mtu: usize,
    mut lose: impl FnMut(Role, usize, Instant, &[u8]) -> bool,
) -> Outcome {
    let mut out = Outcome::default();
    let mut sent = [0usize; 2];
    for _ in 0..MAX_ROUNDS {
        let mut moved = false;
        for from in [Role::Client, Role::Server] {
            let (tx, rx) = match from {
                Role::Client => (&mut *c, &mut *s),
                Role::Server => (&mut *s, &mut *c),
            };
            while let Some(d) = tx.poll_output() {
                assert!(d.len() <= mtu, "datagram of {} bytes > MTU {mtu}", d.len());
                let i = usize::from(from == Role::Server);
                let n = sent[i];
                sent[i] += 1;
                moved = true;
                out.wire.push((from, *clock, d.clone()));
                if !lose(from, n, *clock, &d) {
                    let _ = rx.handle_packet(*clock, &d);
                }
            }
        }
        while let Some(e) = s.poll_event() {
            out.server_events.push(e);
        }
        while let Some(e) = c.poll_event() {
            out.client_events.push(e);
        }
        if moved {
            continue;
        }
        let done = terminal(&out.server_events) && terminal(&out.client_events);
        let next = [s.poll_timeout(), c.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if !done => {
                *clock = t.max(*clock);
                s.handle_timeout(*clock);
                c.handle_timeout(*clock);
            }
            _ => return out,
        }
    }
    panic!("no outcome after {MAX_ROUNDS} rounds");
}

fn lossless(_: Role, _: usize, _: Instant, _: &[u8]) -> bool {
    false
}

/// Protects RTP with `tx_master` and unprotects with `rx_master`.
fn srtp_round_trip(suite: Suite, tx_master: &[u8], rx_master: &[u8]) -> bool {
    let mut tx = SrtpContext::from_master(suite, tx_master, SrtpConfig::default()).expect("tx");
    let mut rx = SrtpContext::from_master(suite, rx_master, SrtpConfig::default()).expect("rx");
    let rtp = [
        0x80, 0x00, 0x12, 0x34, 0, 0, 0x03, 0x20, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let mut buf = [0u8; 128];
    buf[..rtp.len()].copy_from_slice(&rtp);
    let n = tx.protect_rtp(&mut buf, rtp.len()).expect("protect");
    assert_ne!(&buf[12..rtp.len()], &rtp[12..], "payload was not encrypted");
    match rx.unprotect_rtp(&mut buf[..n]) {
        Ok(m) => buf[..m] == rtp,
        Err(_) => false,
    }
}

fn assert_keys_pair_up(server: &SrtpKeys, client: &SrtpKeys, suite: Suite) {
    assert_eq!(server.suite(), suite);
    assert_eq!(client.suite(), suite);
    assert_eq!(server.local_master().len(), suite.master_len());
    assert_eq!(server.local_key().len(), 16);
    assert_eq!(server.local_salt().len(), suite.master_salt_len());
    assert_eq!(client.local_master(), server.remote_master());
    assert_eq!(server.local_master(), client.remote_master());
    assert_eq!(client.local_key(), server.remote_key());
    assert_eq!(client.local_salt(), server.remote_salt());
    assert_ne!(server.local_master(), server.remote_master());
    // Usable both ways, and only with the right direction's key.
    assert!(srtp_round_trip(
        suite,
        client.local_master(),
        server.remote_master()
    ));
    assert!(srtp_round_trip(
        suite,
        server.local_master(),
        client.remote_master()
    ));
    assert!(!srtp_round_trip(
        suite,
        client.local_master(),
        client.remote_master()
    ));
}

#[test]
fn handshake_completes_for_every_profile_and_role_assignment() {
    for suite in Suite::ALL {
        let mut config = DtlsConfig::default();
        config.srtp_suites = vec![suite];
        let (a, b) = (side(config.clone()), side(config));
        for (server, client) in [(&a, &b), (&b, &a)] {
            let mut now = Instant::now();
            let (mut s, mut c) = endpoints(server, client, now);
            assert_eq!(s.role(), Role::Server);
            assert_eq!(c.role(), Role::Client);
            assert_eq!(s.state(), State::Handshaking);
            // The server is silent until it hears a ClientHello.
            assert!(s.poll_output().is_none());
            assert!(s.poll_timeout().is_none());
            assert!(c.poll_timeout().is_some());
            let start = now;
            let o = run(&mut s, &mut c, &mut now, 1200, lossless);
            assert_eq!(now, start, "a lossless handshake needs no timer");
            let (sk, ck) = o.keys();
            assert_keys_pair_up(&sk, &ck, suite);
            assert_eq!(s.state(), State::Connected);
            assert_eq!(c.state(), State::Connected);
            assert!(s.poll_timeout().is_none() && c.poll_timeout().is_none());
            assert_eq!(s.counters().retransmits + c.counters().retransmits, 0);
            // Flights: ClientHello, server flight, client flight, server
            // final flight; each side's datagrams count matches.
            assert_eq!(
                c.counters().datagrams_out,
                o.wire.iter().filter(|w| w.0 == Role::Client).count() as u64
            );
        }
    }
}

#[test]
fn default_and_server_preference() {
    let run_with = |server_suites: Vec<Suite>, client_suites: Vec<Suite>| -> Suite {
        let mut sc = DtlsConfig::default();
        sc.srtp_suites = server_suites;
        let mut cc = DtlsConfig::default();
        cc.srtp_suites = client_suites;
        let (server, client) = (side(sc), side(cc));
        let mut now = Instant::now();
        let (mut s, mut c) = endpoints(&server, &client, now);
        let (sk, ck) = run(&mut s, &mut c, &mut now, 1200, lossless).keys();
        assert_eq!(sk.suite(), ck.suite());
        sk.suite()
    };
    assert_eq!(
        run_with(Suite::ALL.to_vec(), Suite::ALL.to_vec()),
        Suite::AeadAes128Gcm
    );
    assert_eq!(
        run_with(
            vec![Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm],
            Suite::ALL.to_vec()
        ),
        Suite::AesCm128HmacSha1_80
    );
    assert_eq!(
        run_with(
            Suite::ALL.to_vec(),
            vec![Suite::AesCm128HmacSha1_32, Suite::AesCm128HmacSha1_80]
        ),
        Suite::AesCm128HmacSha1_80
    );
}

#[test]
fn no_common_profile_fails_both_sides() {
    let mut sc = DtlsConfig::default();
    sc.srtp_suites = vec![Suite::AesCm128HmacSha1_32];
    let mut cc = DtlsConfig::default();
    cc.srtp_suites = vec![Suite::AeadAes128Gcm];
    let (server, client) = (side(sc), side(cc));
    let mut now = Instant::now();
    let (mut s, mut c) = endpoints(&server, &client, now);
    let o = run(&mut s, &mut c, &mut now, 1200, lossless);
    assert_eq!(failed(&o.server_events), FailReason::NoSrtpProfile);
    assert_eq!(failed(&o.client_events), FailReason::NoSrtpProfile);
    assert_eq!(s.state(), State::Failed);
    assert_eq!(
        FailReason::NoSrtpProfile.to_string(),
        "DTLS-SRTP: no protection profile negotiated"
    );
}

#[test]
fn keys_differ_between_associations() {
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let mut now = Instant::now();
    let (mut s1, mut c1) = endpoints(&a, &b, now);
    let (k1, _) = run(&mut s1, &mut c1, &mut now, 1200, lossless).keys();
    let (mut s2, mut c2) = endpoints(&a, &b, now);
    let (k2, _) = run(&mut s2, &mut c2, &mut now, 1200, lossless).keys();
    assert_ne!(k1.local_master(), k2.local_master());
    assert_ne!(k1.remote_master(), k2.remote_master());
    assert!(!format!("{k1:?}").contains(&format!("{:?}", k1.local_key())));
}

#[test]
fn fingerprint_mismatch_fails_either_side() {
    let (a, b, stranger) = (
        side(DtlsConfig::default()),
        side(DtlsConfig::default()),
        side(DtlsConfig::default()),
    );
    // The client pins the wrong server fingerprint.
    let mut now = Instant::now();
    let mut s = DtlsEndpoint::new(&a.ctx, Role::Server, &[b.ctx.fingerprint()], now).expect("s");
    let mut c =
        DtlsEndpoint::new(&b.ctx, Role::Client, &[stranger.ctx.fingerprint()], now).expect("c");
    let o = run(&mut s, &mut c, &mut now, 1200, lossless);
    assert_eq!(failed(&o.client_events), FailReason::FingerprintMismatch);
    assert_eq!(
        failed(&o.client_events).to_string(),
        "DTLS fingerprint mismatch"
    );
    assert_eq!(failed(&o.server_events), FailReason::AlertReceived(42));
    assert_eq!(
        FailReason::AlertReceived(42).to_string(),
        "DTLS fatal alert received: bad_certificate (42)"
    );
    assert!(o
        .server_events
        .iter()
        .all(|e| !matches!(e, Event::Connected { .. })));
    assert_eq!(c.state(), State::Failed);
    assert!(c.error_detail().is_some());
    assert_eq!(
        c.handle_packet(now, &o.wire[0].2),
        Err(InputError::Finished)
    );

    // The server pins the wrong client fingerprint: it must not complete.
    let mut now = Instant::now();
    let mut s =
        DtlsEndpoint::new(&a.ctx, Role::Server, &[stranger.ctx.fingerprint()], now).expect("s");
    let mut c = DtlsEndpoint::new(&b.ctx, Role::Client, &[a.ctx.fingerprint()], now).expect("c");
    let o = run(&mut s, &mut c, &mut now, 1200, lossless);
    assert_eq!(failed(&o.server_events), FailReason::FingerprintMismatch);
    assert_eq!(failed(&o.client_events), FailReason::AlertReceived(42));
    assert!(o
        .client_events
        .iter()
        .all(|e| !matches!(e, Event::Connected { .. })));
}

#[test]
fn other_hash_functions_and_multiple_fingerprints() {
    let a = side(DtlsConfig::default());
    let cert_b = Certificate::generate().expect("cert");
    let ctx_b = DtlsContext::new(&cert_b, DtlsConfig::default()).expect("ctx");
    for alg in [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ] {
        // Parse the fingerprint as it would come from SDP.
        let sdp = cert_b.fingerprint(alg).to_string();
        assert!(sdp.starts_with(alg.name()));
        let pin: Fingerprint = sdp.parse().expect("parses");
        let mut now = Instant::now();
        let mut s = DtlsEndpoint::new(&a.ctx, Role::Server, &[pin], now).expect("s");
        let mut c =
            DtlsEndpoint::new(&ctx_b, Role::Client, &[a.ctx.fingerprint()], now).expect("c");
        let o = run(&mut s, &mut c, &mut now, 1200, lossless);
        let (sk, ck) = o.keys();
        assert_eq!(sk.local_master(), ck.remote_master());
    }
    // Several fingerprints: the strongest hash function decides.
    let other = Certificate::generate().expect("cert");
    for (pins, ok) in [
        (
            vec![
                other.fingerprint(HashAlgorithm::Sha256),
                cert_b.fingerprint(HashAlgorithm::Sha256),
            ],
            true,
        ),
        (
            vec![
                cert_b.fingerprint(HashAlgorithm::Sha256),
                other.fingerprint(HashAlgorithm::Sha512),
            ],
            false,
        ),
    ] {
        let mut now = Instant::now();
        let mut s = DtlsEndpoint::new(&a.ctx, Role::Server, &pins, now).expect("s");
        let mut c =
            DtlsEndpoint::new(&ctx_b, Role::Client, &[a.ctx.fingerprint()], now).expect("c");
        let o = run(&mut s, &mut c, &mut now, 1200, lossless);
        if ok {
            let _ = o.keys();
        } else {
            assert_eq!(failed(&o.server_events), FailReason::FingerprintMismatch);
        }
    }
}

/// Parses the records of a datagram: (content type, epoch, sequence number).
fn records(d: &[u8]) -> Vec<(u8, u16, u64)> {
    let mut out = Vec::new();
    let mut rest = d;
    while rest.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let mut seq = [0u8; 8];
        seq[2..].copy_from_slice(&rest[5..11]);
        out.push((
            rest[0],
            u16::from_be_bytes([rest[3], rest[4]]),
            u64::from_be_bytes(seq),
        ));
        rest = rest.get(13 + len..).unwrap_or(&[]);
    }
    out
}

/// Whether a datagram starts a ClientHello (handshake type 1, epoch 0).
fn has_client_hello(d: &[u8]) -> bool {
    d.len() > 13 && d[0] == 22 && d[3..5] == [0, 0] && d[13] == 1
}

/// Whether a datagram carries a ChangeCipherSpec or an epoch-1 record.
fn has_ccs(d: &[u8]) -> bool {
    records(d).iter().any(|r| r.0 == 20 || r.1 == 1)
}

#[test]
fn lost_client_hello_is_retransmitted_with_a_new_record_number() {
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let t0 = Instant::now();
    let mut now = t0;
    let (mut s, mut c) = endpoints(&a, &b, now);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    let o = run(&mut s, &mut c, &mut now, 1200, |from, n, _, _| {
        from == Role::Client && n == 0
    });
    let (sk, ck) = o.keys();
    assert_eq!(sk.local_master(), ck.remote_master());
    let hellos: Vec<_> = o
        .wire
        .iter()
        .filter(|w| w.0 == Role::Client && records(&w.2).iter().all(|r| r.0 == 22 && r.1 == 0))
        .take(2)
        .collect();
    assert_eq!(hellos.len(), 2);
    assert_eq!(hellos[0].1, t0);
    assert_eq!(hellos[1].1, t0 + Duration::from_secs(1));
    // Same ClientHello, new record sequence number.
    assert_eq!(records(&hellos[0].2)[0].2, 0);
    assert_eq!(records(&hellos[1].2)[0].2, 1);
    assert_eq!(hellos[0].2[13..], hellos[1].2[13..]);
    assert_eq!(c.counters().retransmits, 1);
    assert_eq!(s.counters().retransmits, 0);
}

#[test]
fn every_lost_flight_is_recovered() {
    // Which flight to lose, identified by sender and content.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Flight {
        ClientHello,
        ServerHello,
        ClientFinished,
        ServerFinished,
    }
    for flight in [
        Flight::ClientHello,
        Flight::ServerHello,
        Flight::ClientFinished,
        Flight::ServerFinished,
    ] {
        for all_datagrams in [false, true] {
            let mut config = DtlsConfig::default();
            // Small datagrams: flights span several, lose one or all.
            config.mtu = 400;
            let (a, b) = (side(config.clone()), side(config));
            let t0 = Instant::now();
            let mut now = t0;
            let (mut s, mut c) = endpoints(&a, &b, now);
            let mut first_sent: Option<Instant> = None;
            let mut lost = 0;
            let o = run(&mut s, &mut c, &mut now, 400, |from, _, at, d| {
                let this = match from {
                    Role::Client if has_client_hello(d) => Flight::ClientHello,
                    Role::Client => Flight::ClientFinished,
                    Role::Server if has_ccs(d) => Flight::ServerFinished,
                    Role::Server => Flight::ServerHello,
                };
                if this != flight {
                    return false;
                }
                // Lose (part of) the first transmission only.
                let first = *first_sent.get_or_insert(at) == at;
                if first && (all_datagrams || lost == 0) {
                    lost += 1;
                    return true;
                }
                false
            });
            assert!(lost >= 1, "{flight:?}: nothing was lost");
            let (sk, ck) = o.keys();
            assert_eq!(sk.local_master(), ck.remote_master(), "{flight:?}");
            assert!(now > t0, "{flight:?}: recovery needs the timer");
            let resends = s.counters().retransmits
                + c.counters().retransmits
                + s.counters().final_flight_resends;
            assert!(resends >= 1, "{flight:?}: nothing was resent");
            if flight == Flight::ServerFinished {
                // The client retransmitted its flight; the server answered
                // with its final flight.
                assert!(c.counters().retransmits >= 1);
                assert!(s.counters().final_flight_resends >= 1);
            }
        }
    }
}

#[test]
fn random_loss_in_both_directions() {
    // 20% loss each way, deterministic pattern; the retry budget of five
    // retransmissions per flight is enough for every handshake here.
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let mut rng = Rng(0x5eed);
    let mut recovered = 0;
    for _ in 0..30 {
        let t0 = Instant::now();
        let mut now = t0;
        let (mut s, mut c) = endpoints(&a, &b, now);
        let o = run(&mut s, &mut c, &mut now, 1200, |_, _, _, _| {
            rng.next().is_multiple_of(5)
        });
        let (sk, ck) = o.keys();
        assert_eq!(sk.local_master(), ck.remote_master());
        assert_eq!(ck.local_master(), sk.remote_master());
        if now > t0 {
            recovered += 1;
        }
    }
    assert!(recovered >= 5, "the loss pattern hardly hit: {recovered}");
}

#[test]
fn retransmissions_double_then_the_handshake_times_out() {
    // A client whose ClientHello is never answered.
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let t0 = Instant::now();
    let (_s, mut c) = endpoints(&a, &b, t0);
    let mut sends = Vec::new();
    let mut now = t0;
    let mut outcome = None;
    for _ in 0..20 {
        while c.poll_output().is_some() {
            sends.push(now - t0);
        }
        if let Some(e) = c.poll_event() {
            outcome = Some(e);
            break;
        }
        let Some(t) = c.poll_timeout() else { break };
        // Early calls do nothing.
        c.handle_timeout(t - Duration::from_millis(1));
        assert!(c.poll_output().is_none());
        now = t;
        c.handle_timeout(now);
    }
    let secs: Vec<u64> = sends.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [0, 1, 3, 7, 15, 31]);
    assert_eq!(now - t0, Duration::from_secs(63));
    assert_eq!(outcome, Some(Event::Failed(FailReason::Timeout)));
    assert_eq!(FailReason::Timeout.to_string(), "DTLS handshake timeout");
    assert_eq!(c.state(), State::Failed);
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.counters().retransmits, 5);

    // A server whose flight is never answered, with a short capped timer.
    let mut config = DtlsConfig::default();
    config.initial_rto = Duration::from_millis(100);
    config.max_rto = Duration::from_millis(150);
    config.max_retransmits = 3;
    let server = side(config);
    let t0 = Instant::now();
    let (mut s, mut c) = endpoints(&server, &b, t0);
    let hello = c.poll_output().expect("client hello");
    s.handle_packet(t0, &hello).expect("accepted");
    let mut sends = Vec::new();
    let mut now = t0;
    for _ in 0..20 {
        if s.poll_output().is_some() {
            sends.push((now - t0).as_millis());
            while s.poll_output().is_some() {}
        }
        if s.poll_event().is_some() {
            break;
        }
        let Some(t) = s.poll_timeout() else { break };
        now = t;
        s.handle_timeout(now);
    }
    assert_eq!(sends, [0, 100, 250, 400]);
    assert_eq!((now - t0).as_millis(), 550);
    assert_eq!(s.state(), State::Failed);
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn refused_input_is_counted() {
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let now = Instant::now();
    let (mut s, _c) = endpoints(&a, &b, now);
    assert_eq!(s.handle_packet(now, &[]), Err(InputError::NotDtls));
    assert_eq!(s.handle_packet(now, &[22; 12]), Err(InputError::NotDtls));
    assert_eq!(s.handle_packet(now, &[0; 40]), Err(InputError::NotDtls)); // STUN
    assert_eq!(s.handle_packet(now, &[0x80; 40]), Err(InputError::NotDtls)); // RTP
    assert_eq!(s.handle_packet(now, &[19; 40]), Err(InputError::NotDtls));
    assert_eq!(s.handle_packet(now, &[64; 40]), Err(InputError::NotDtls));
    assert_eq!(s.handle_packet(now, &[22; 9000]), Err(InputError::TooLarge));
    assert_eq!(s.counters().packets_refused, 7);
    assert_eq!(s.counters().packets_in, 0);
    assert_eq!(s.state(), State::Handshaking);
    assert_eq!(InputError::NotDtls.to_string(), "not a DTLS datagram");
}

#[test]
fn garbage_does_not_disturb_a_handshake() {
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let mut rng = Rng(0x1234_5678_9abc_def1);
    // Random datagrams that pass the first-byte check, into a fresh server,
    // then a real handshake on the same endpoint.
    let mut now = Instant::now();
    let (mut s, mut c) = endpoints(&a, &b, now);
    for _ in 0..500 {
        let len = 13 + (rng.next() % 300) as usize;
        let mut d = rng.bytes(len);
        d[0] = 20 + (rng.next() % 44) as u8;
        let _ = s.handle_packet(now, &d);
        assert!(s.poll_event().is_none(), "random bytes ended the handshake");
    }
    while s.poll_output().is_some() {}
    let o = run(&mut s, &mut c, &mut now, 1200, lossless);
    let _ = o.keys();
    assert_eq!(
        s.counters().packets_in,
        500 + o.wire.iter().filter(|w| w.0 == Role::Client).count() as u64
    );
}

#[test]
fn truncated_and_mutated_records_do_not_panic() {
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let mut now = Instant::now();
    let (mut s, mut c) = endpoints(&a, &b, now);
    let o = run(&mut s, &mut c, &mut now, 1200, lossless);
    let _ = o.keys();
    let mut rng = Rng(42);
    for (from, _, d) in &o.wire {
        for cut in 0..d.len() {
            // Every prefix, to a fresh endpoint of the receiving role.
            let (mut s2, mut c2) = endpoints(&a, &b, now);
            let rx = if *from == Role::Client {
                &mut s2
            } else {
                &mut c2
            };
            let _ = rx.handle_packet(now, &d[..cut]);
            while rx.poll_output().is_some() {}
            while rx.poll_event().is_some() {}
            if cut.is_multiple_of(7) {
                // And some bit flips.
                let mut m = d.clone();
                let i = (rng.next() as usize) % m.len();
                m[i] ^= 1 << (rng.next() % 8);
                let _ = rx.handle_packet(now, &m);
                while rx.poll_output().is_some() {}
            }
        }
    }
}

#[test]
fn connected_endpoints_ignore_other_associations() {
    let (a, b) = (side(DtlsConfig::default()), side(DtlsConfig::default()));
    let mut now = Instant::now();
    let (mut s, mut c) = endpoints(&a, &b, now);
    let (sk, _) = run(&mut s, &mut c, &mut now, 1200, lossless).keys();
    // A second, complete association between the same certificates.
    let (mut s2, mut c2) = endpoints(&a, &b, now);
    let other = run(&mut s2, &mut c2, &mut now, 1200, lossless);
    let _ = other.keys();
    let mut rng = Rng(7);
    for (from, _, d) in &other.wire {
        let rx = if *from == Role::Client {
            &mut s
        } else {
            &mut c
        };
        assert_eq!(rx.handle_packet(now, d), Ok(()));
        let mut m = d.clone();
        let i = 13 + (rng.next() as usize) % (m.len() - 13);
        m[i] ^= 0x55;
        assert_eq!(rx.handle_packet(now, &m), Ok(()));
    }
    for _ in 0..200 {
        let len = 13 + (rng.next() % 200) as usize;
        let mut d = rng.bytes(len);
        d[0] = 20 + (rng.next() % 44) as u8;
        let _ = s.handle_packet(now, &d);
        let _ = c.handle_packet(now, &d);
    }
    assert_eq!(s.state(), State::Connected);
    assert_eq!(c.state(), State::Connected);
    assert!(s.poll_event().is_none() && c.poll_event().is_none());
    // The server may have answered what looked like a retransmitted
    // Finished, but within its budget.
    assert!(s.counters().final_flight_resends <= 5);
    // Still the same association: it closes cleanly.
    c.close();
    assert_eq!(c.state(), State::Closed);
    while let Some(d) = c.poll_output() {
        s.handle_packet(now, &d).expect("accepted");
    }
    assert_eq!(s.poll_event(), Some(Event::Closed));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(
        s.handle_packet(now, &other.wire[0].2),
        Err(InputError::Finished)
    );
    let _ = sk;
}

#[test]
fn small_mtu_fragments_flights() {
    let mut config = DtlsConfig::default();
    config.mtu = 300;
    let (a, b) = (side(config.clone()), side(config));
    let mut now = Instant::now();
    let (mut s, mut c) = endpoints(&a, &b, now);
    let o = run(&mut s, &mut c, &mut now, 300, lossless);
    let _ = o.keys();
    assert!(o.wire.iter().filter(|w| w.0 == Role::Server).count() >= 3);
}

#[test]
fn types_can_move_between_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<DtlsEndpoint>();
    send::<Event>();
    send_sync::<DtlsContext>();
    send_sync::<Certificate>();
}

#[test]
fn configuration_is_validated() {
    let cert = Certificate::generate().expect("cert");
    let bad = |f: fn(&mut DtlsConfig)| {
        let mut c = DtlsConfig::default();
        f(&mut c);
        DtlsContext::new(&cert, c).map(|_| ())
    };
    assert_eq!(
        bad(|c| c.srtp_suites.clear()),
        Err(ConfigError::NoSrtpSuites)
    );
    assert_eq!(bad(|c| c.mtu = 100), Err(ConfigError::BadMtu));
    assert_eq!(bad(|c| c.mtu = 65_000), Err(ConfigError::BadMtu));
    assert_eq!(
        bad(|c| c.initial_rto = Duration::ZERO),
        Err(ConfigError::BadTimers)
    );
    assert_eq!(
        bad(|c| c.max_rto = Duration::from_millis(10)),
        Err(ConfigError::BadTimers)
    );
    assert_eq!(
        bad(|c| c.max_rto = Duration::MAX),
        Err(ConfigError::BadTimers)
    );
    let ctx = DtlsContext::new(&cert, DtlsConfig::default()).expect("ctx");
    assert_eq!(ctx.fingerprint(), cert.fingerprint(HashAlgorithm::Sha256));
    assert_eq!(
        DtlsEndpoint::new(&ctx, Role::Server, &[], Instant::now()).map(|_| ()),
        Err(ConfigError::NoRemoteFingerprint)
    );
}
