//! The worker core's packet path, driven without sockets: rules in, packets
//! in, verdicts and effects out, per-leg counters read from the real shared
//! region.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_dataplane::pipeline::{Core, CoreConfig, Discard as Why, Effects, Verdict};
use strait_dataplane::stun;
use strait_rules::abi::{self, counter, flags, Kind, LegRule};
use strait_rules::region::{Region, RegionLayout};
use strait_rules::ring::RingGeometry;
use strait_srtp::{Config, SrtpContext, Suite};

#[derive(Default)]
struct Fx {
    sent: Vec<(u16, SocketAddr, Vec<u8>)>,
    events: Vec<(Kind, Vec<u8>)>,
    punted: Vec<(abi::Punted, Vec<u8>)>,
    closed: Vec<u16>,
}

impl Effects for Fx {
    fn send(&mut self, port: u16, to: SocketAddr, bytes: &[u8]) {
        self.sent.push((port, to, bytes.to_vec()));
    }
    fn event(&mut self, kind: Kind, body: &[u8]) -> bool {
        self.events.push((kind, body.to_vec()));
        true
    }
    fn punt(&mut self, header: &abi::Punted, packet: &[u8]) -> bool {
        self.punted.push((*header, packet.to_vec()));
        true
    }
    fn close_port(&mut self, port: u16) {
        self.closed.push(port);
    }
}

struct World {
    core: Core,
    region: Arc<Region>,
    fx: Fx,
    now: Instant,
    path: std::path::PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn world(name: &str) -> World {
    let path = std::env::temp_dir().join(format!("strait-pipe-{}-{name}", std::process::id()));
    let region = Arc::new(
        Region::create(
            &path,
            RegionLayout {
                workers: 1,
                ring: RingGeometry {
                    capacity: 64,
                    slot_size: 2048,
                },
                max_legs: 64,
                port_min: 30000,
                port_max: 40000,
            },
        )
        .unwrap(),
    );
    World {
        core: Core::new(CoreConfig::default(), region.clone()),
        region,
        fx: Fx::default(),
        now: Instant::now(),
        path,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn leg(id: u64, peer: u64, port: u16, remote: &str) -> LegRule {
    let mut r: LegRule = bytemuck::Zeroable::zeroed();
    r.leg_id = id;
    r.peer_leg_id = peer;
    r.counter_slot = id as u32;
    r.local_port = port;
    r.flags = flags::RTCP_MUX;
    r.remote_rtp = abi::Addr::from_socket_addr(addr(remote));
    r.pt_map[0] = [0xFF, 0xFF];
    r
}

fn keys(suite: u8, k: u8) -> abi::SrtpKeys {
    abi::SrtpKeys {
        suite,
        _pad: [0; 3],
        key: [k; 16],
        salt: [k.wrapping_add(1); 14],
        _pad2: [0; 2],
    }
}

impl World {
    fn add(&mut self, rule: LegRule) {
        let before = self.fx.events.len();
        self.core.apply(
            self.now,
            Kind::AddLeg as u16,
            bytemuck::bytes_of(&rule),
            &mut self.fx,
        );
        assert!(
            !self.fx.events[before..]
                .iter()
                .any(|(k, _)| *k == Kind::RuleRejected),
            "rule rejected: {:?}",
            self.fx.events
        );
    }
    fn packet(&mut self, port: u16, from: &str, bytes: &[u8]) -> (Verdict, Vec<u8>) {
        let mut buf = [0u8; 2048];
        buf[..bytes.len()].copy_from_slice(bytes);
        let v = self.core.on_packet(
            self.now,
            port,
            addr(from),
            &mut buf,
            bytes.len(),
            &mut self.fx,
        );
        let out = match v {
            Verdict::Send { len, .. } => buf[..len].to_vec(),
            _ => Vec::new(),
        };
        (v, out)
    }
    fn counter(&self, slot: u32, idx: usize) -> u64 {
        self.region.counters(slot).unwrap()[idx].load(Ordering::Relaxed)
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn plain_relay_rewrites_and_counts() {
    let mut w = world("plain");
    let mut a = leg(1, 2, 30000, "127.0.0.1:5000");
    a.flags = 0; // legacy leg: separate RTCP port
    a.local_rtcp_port = 30001;
    a.remote_rtcp = abi::Addr::from_socket_addr(addr("127.0.0.1:5001"));
    let mut b = leg(2, 1, 30002, "127.0.0.1:6000");
    b.pt_map[0] = [0, 8];
    b.pt_map[1] = [0xFF, 0xFF];
    b.ssrc_out = 0xABCD;
    w.add(a);
    w.add(b);
    let (v, out) = w.packet(30000, "127.0.0.1:5000", &rtp(0, 10, 1600, 77, &[1; 160]));
    assert_eq!(
        v,
        Verdict::Send {
            port: 30002,
            to: addr("127.0.0.1:6000"),
            len: 172
        }
    );
    assert_eq!(out[1] & 0x7F, 8, "payload type mapped");
    assert_eq!(&out[8..12], &0xABCDu32.to_be_bytes(), "SSRC rewritten");
    assert_eq!(&out[12..], &[1; 160][..]);
    // And back: B's media reaches A's signalled address from A's port.
    let (v, _) = w.packet(30002, "127.0.0.1:6000", &rtp(0, 1, 0, 99, &[2; 160]));
    assert_eq!(
        v,
        Verdict::Send {
            port: 30000,
            to: addr("127.0.0.1:5000"),
            len: 172
        }
    );
    assert_eq!(w.counter(1, counter::PACKETS_IN), 1);
    assert_eq!(w.counter(2, counter::PACKETS_OUT), 1);
    assert_eq!(w.counter(2, counter::BYTES_OUT), 172);
    // Legacy RTCP arrives on A's RTCP port and goes to B (muxed) from B's port.
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 77];
    let (v, out) = w.packet(30001, "127.0.0.1:5001", &rr);
    assert_eq!(
        v,
        Verdict::Send {
            port: 30002,
            to: addr("127.0.0.1:6000"),
            len: 8
        }
    );
    assert_eq!(
        &out[4..8],
        &0xABCDu32.to_be_bytes(),
        "RTCP sender SSRC follows the RTP rewrite"
    );
}

#[test]
fn strangers_are_dropped_and_counted() {
    let mut w = world("stranger");
    w.add(leg(1, 2, 30000, "127.0.0.1:5000"));
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    let (v, _) = w.packet(30000, "127.0.0.1:5999", &rtp(0, 1, 0, 1, &[0; 160]));
    assert_eq!(v, Verdict::Drop(Why::Stranger));
    let (v, _) = w.packet(30000, "127.0.0.2:5000", &rtp(0, 1, 0, 1, &[0; 160]));
    assert_eq!(v, Verdict::Drop(Why::Stranger));
    assert_eq!(w.counter(1, counter::DROPPED), 2);
    assert_eq!(w.counter(2, counter::PACKETS_OUT), 0);
    let (v, _) = w.packet(31000, "127.0.0.1:5000", &rtp(0, 1, 0, 1, &[0; 160]));
    assert_eq!(v, Verdict::Drop(Why::NoLeg));
}

#[test]
fn symmetric_leg_latches_on_the_signalled_host() {
    let mut w = world("symmetric");
    let mut a = leg(1, 2, 30000, "127.0.0.1:5000");
    a.flags |= flags::SYMMETRIC;
    w.add(a);
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    // NAT changed the port: accepted and latched.
    let (v, _) = w.packet(30000, "127.0.0.1:5123", &rtp(0, 1, 0, 1, &[0; 160]));
    assert!(matches!(v, Verdict::Send { .. }));
    assert_eq!(w.core.latched(1), Some(addr("127.0.0.1:5123")));
    // Replies go to the latched address.
    let (v, _) = w.packet(30002, "127.0.0.1:6000", &rtp(0, 1, 0, 2, &[0; 160]));
    assert_eq!(
        v,
        Verdict::Send {
            port: 30000,
            to: addr("127.0.0.1:5123"),
            len: 172
        }
    );
    // Once latched, the signalled address itself is a stranger.
    let (v, _) = w.packet(30000, "127.0.0.1:5000", &rtp(0, 2, 160, 1, &[0; 160]));
    assert_eq!(v, Verdict::Drop(Why::Stranger));
}

#[test]
fn srtp_to_rtp_and_back_with_auth_and_replay_counted() {
    let mut w = world("srtp");
    let mut a = leg(1, 2, 30000, "127.0.0.1:5000");
    a.srtp_rx = keys(1, 3);
    a.srtp_tx = keys(1, 4);
    w.add(a);
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    let suite = Suite::AesCm128HmacSha1_80;
    let mut browser_tx = SrtpContext::new(suite, &[3; 16], &[4; 14], Config::default()).unwrap();
    let mut browser_rx = SrtpContext::new(suite, &[4; 16], &[5; 14], Config::default()).unwrap();
    let plain = rtp(0, 65535, 1000, 0x1111, &[9; 160]);
    let mut buf = [0u8; 256];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = browser_tx.protect_rtp(&mut buf, plain.len()).unwrap();
    let protected = buf[..n].to_vec();
    let (v, out) = w.packet(30000, "127.0.0.1:5000", &protected);
    assert!(matches!(v, Verdict::Send { port: 30002, .. }), "{v:?}");
    assert_eq!(out, plain, "decrypted in place");
    let (v, _) = w.packet(30000, "127.0.0.1:5000", &protected);
    assert_eq!(v, Verdict::Drop(Why::Replayed));
    let mut tampered = protected.clone();
    tampered[20] ^= 1;
    let (v, _) = w.packet(30000, "127.0.0.1:5000", &tampered);
    assert_eq!(v, Verdict::Drop(Why::AuthFailed));
    assert_eq!(w.counter(1, counter::REPLAYS), 1);
    assert_eq!(w.counter(1, counter::SRTP_AUTH_FAILED), 1);
    // Legacy RTP toward the browser leaves encrypted with A's tx keys.
    let back = rtp(0, 7, 0, 0x2222, &[5; 160]);
    let (v, out) = w.packet(30002, "127.0.0.1:6000", &back);
    assert!(
        matches!(
            v,
            Verdict::Send {
                port: 30000,
                len: 182,
                ..
            }
        ),
        "{v:?}"
    );
    let mut buf = out.clone();
    let m = browser_rx.unprotect_rtp(&mut buf).unwrap();
    assert_eq!(&buf[..m], &back[..]);
}

#[test]
fn ice_leg_answers_checks_latches_and_only_then_carries_media() {
    let mut w = world("ice");
    let mut a = leg(1, 2, 30000, "127.0.0.1:5000");
    a.flags |= flags::ICE;
    a.ice_ufrag[..4].copy_from_slice(b"strt");
    a.ice_ufrag_len = 4;
    let pwd = b"0123456789abcdefghijklmn";
    a.ice_pwd[..pwd.len()].copy_from_slice(pwd);
    a.ice_pwd_len = pwd.len() as u8;
    w.add(a);
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    let browser = "127.0.0.1:45000";
    // Before any check: media both ways goes nowhere.
    let (v, _) = w.packet(30000, browser, &rtp(111, 1, 0, 5, &[0; 50]));
    assert_eq!(v, Verdict::Drop(Why::Stranger));
    let (v, _) = w.packet(30002, "127.0.0.1:6000", &rtp(0, 1, 0, 6, &[0; 160]));
    assert_eq!(v, Verdict::Drop(Why::NoDestination));
    // A check with the wrong password is dropped, unanswered.
    let mut req = [0u8; 256];
    let n =
        stun::write_binding_request(&mut req, &[1; 12], b"strt:brws", b"wrong", 1, true).unwrap();
    let (v, _) = w.packet(30000, browser, &req[..n]);
    assert_eq!(v, Verdict::Drop(Why::BadStun));
    assert!(w.fx.sent.is_empty());
    // A good one is answered from the leg's port and latches.
    let n = stun::write_binding_request(&mut req, &[2; 12], b"strt:brws", pwd, 1, true).unwrap();
    let (v, _) = w.packet(30000, browser, &req[..n]);
    assert_eq!(v, Verdict::Consumed);
    let (port, to, resp) = w.fx.sent.pop().unwrap();
    assert_eq!((port, to), (30000, addr(browser)));
    assert_eq!(stun::parse_xor_mapped_address(&resp), Some(addr(browser)));
    assert_eq!(w.core.latched(1), Some(addr(browser)));
    assert!(w.fx.events.iter().any(|(k, _)| *k == Kind::LegLatched));
    let (v, _) = w.packet(30000, browser, &rtp(111, 2, 960, 5, &[0; 50]));
    assert!(matches!(v, Verdict::Send { port: 30002, .. }));
    let (v, _) = w.packet(30002, "127.0.0.1:6000", &rtp(0, 2, 160, 6, &[0; 160]));
    assert_eq!(
        v,
        Verdict::Send {
            port: 30000,
            to: addr(browser),
            len: 172
        }
    );
    // Consent expires without checks: media toward the browser stops.
    w.now += Duration::from_secs(31);
    w.core.on_timer(w.now, &mut w.fx);
    assert!(w.fx.events.iter().any(|(k, _)| *k == Kind::ConsentLost));
    let (v, _) = w.packet(30002, "127.0.0.1:6000", &rtp(0, 3, 320, 6, &[0; 160]));
    assert_eq!(v, Verdict::Drop(Why::NoDestination));
}

#[test]
fn dtls_and_unknown_packets_are_punted() {
    let mut w = world("punt");
    w.add(leg(1, 2, 30000, "127.0.0.1:5000"));
    let hello = [22u8, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let (v, _) = w.packet(30000, "127.0.0.1:5000", &hello);
    assert_eq!(v, Verdict::Consumed);
    let (h, p) = &w.fx.punted[0];
    assert_eq!((h.leg_id, h.local_port), (1, 30000));
    assert_eq!(h.from.to_socket_addr(), Some(addr("127.0.0.1:5000")));
    assert_eq!(p, &hello.to_vec());
}

#[test]
fn nacks_from_the_browser_are_answered_from_the_tail_not_forwarded() {
    let mut w = world("nack");
    let mut a = leg(1, 2, 30000, "127.0.0.1:5000"); // browser leg
    a.flags |= flags::NACK_TAIL;
    a.nack_tail_min = 8;
    a.nack_tail_max = 32;
    a.srtp_tx = keys(1, 8);
    a.srtp_rx = keys(1, 9);
    a.ssrc_out = 0x5555;
    w.add(a);
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    let mut sent = Vec::new();
    for i in 0..10u16 {
        let (v, out) = w.packet(
            30002,
            "127.0.0.1:6000",
            &rtp(0, 100 + i, 160 * u32::from(i), 7, &[i as u8; 160]),
        );
        assert!(matches!(v, Verdict::Send { port: 30000, .. }));
        sent.push(out);
    }
    // The browser NACKs seq 103 and 105 (pid 103, blp bit 1).
    let mut nack = vec![
        0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0x55, 0x55, 0, 103, 0, 0b10,
    ];
    let mut browser_tx = SrtpContext::new(
        Suite::AesCm128HmacSha1_80,
        &[9; 16],
        &[10; 14],
        Config::default(),
    )
    .unwrap();
    let len = nack.len();
    nack.resize(len + 64, 0);
    let n = browser_tx.protect_rtcp(&mut nack, len).unwrap();
    let (v, _) = w.packet(30000, "127.0.0.1:5000", &nack[..n]);
    assert_eq!(v, Verdict::Drop(Why::RtcpTerminated));
    let resent: Vec<_> = w.fx.sent.iter().map(|(_, _, p)| p.clone()).collect();
    assert_eq!(
        resent,
        vec![sent[3].clone(), sent[5].clone()],
        "the same protected packets again"
    );
    assert_eq!(w.counter(1, counter::NACKS), 1);
    assert_eq!(w.counter(1, counter::RESENDS), 2);
}

#[test]
fn idle_legs_are_reaped_and_reported() {
    let mut w = world("reap");
    let mut a = leg(1, 2, 30000, "127.0.0.1:5000");
    a.media_timeout_ms = 5_000;
    w.add(a);
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    w.now += Duration::from_secs(4);
    let (v, _) = w.packet(30000, "127.0.0.1:5000", &rtp(0, 1, 0, 1, &[0; 160]));
    assert!(matches!(v, Verdict::Send { .. }));
    w.now += Duration::from_secs(4);
    w.core.on_timer(w.now, &mut w.fx);
    assert_eq!(w.core.leg_count(), 2, "media 4 s ago keeps it");
    w.now += Duration::from_secs(2);
    w.core.on_timer(w.now, &mut w.fx);
    assert_eq!(w.core.leg_count(), 1);
    assert_eq!(w.fx.closed, vec![30000]);
    let timed_out: Vec<abi::LegEvent> =
        w.fx.events
            .iter()
            .filter(|(k, _)| *k == Kind::TimedOut)
            .map(|(_, b)| bytemuck::pod_read_unaligned(b))
            .collect();
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0].leg_id, 1);
    // Its peer now has no peer.
    let (v, _) = w.packet(30002, "127.0.0.1:6000", &rtp(0, 1, 0, 1, &[0; 160]));
    assert_eq!(v, Verdict::Drop(Why::NoPeer));
}

#[test]
fn bad_rules_are_rejected_with_reasons() {
    let mut w = world("reject");
    let reasons = |fx: &Fx| -> Vec<u32> {
        fx.events
            .iter()
            .filter(|(k, _)| *k == Kind::RuleRejected)
            .map(|(_, b)| bytemuck::pod_read_unaligned::<abi::RuleRejected>(b).reason)
            .collect()
    };
    let now = w.now;
    w.core.apply(now, Kind::AddLeg as u16, &[0; 10], &mut w.fx);
    w.core.apply(now, 0x7F, &[], &mut w.fx);
    w.core
        .apply(now, Kind::RemoveLeg as u16, &9u64.to_le_bytes(), &mut w.fx);
    let mut bad = leg(3, 0, 30010, "127.0.0.1:1");
    bad.srtp_rx.suite = 9;
    w.core.apply(
        now,
        Kind::AddLeg as u16,
        bytemuck::bytes_of(&bad),
        &mut w.fx,
    );
    let mut bad = leg(4, 0, 30010, "127.0.0.1:1");
    bad.counter_slot = 1000;
    w.core.apply(
        now,
        Kind::AddLeg as u16,
        bytemuck::bytes_of(&bad),
        &mut w.fx,
    );
    w.add(leg(5, 0, 30012, "127.0.0.1:1"));
    w.core.apply(
        now,
        Kind::AddLeg as u16,
        bytemuck::bytes_of(&leg(6, 0, 30012, "127.0.0.1:1")),
        &mut w.fx,
    );
    w.core.apply(
        now,
        Kind::UpdateLeg as u16,
        bytemuck::bytes_of(&leg(7, 0, 30014, "127.0.0.1:1")),
        &mut w.fx,
    );
    use abi::reject::*;
    assert_eq!(
        reasons(&w.fx),
        vec![
            BAD_SIZE,
            UNKNOWN_KIND,
            NO_SUCH_LEG,
            BAD_FIELD,
            BAD_COUNTER_SLOT,
            PORT_UNAVAILABLE,
            NO_SUCH_LEG
        ]
    );
    assert_eq!(w.core.leg_count(), 1);
    assert_eq!(w.core.stats().rules_rejected, 7);
}

#[test]
fn update_keeps_latch_and_srtp_state_when_keys_do_not_change() {
    let mut w = world("update");
    let mut a = leg(1, 2, 30000, "127.0.0.1:5000");
    a.flags |= flags::SYMMETRIC;
    a.srtp_rx = keys(3, 1);
    w.add(a);
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    let mut tx =
        SrtpContext::new(Suite::AeadAes128Gcm, &[1; 16], &[2; 12], Config::default()).unwrap();
    let mut send = |w: &mut World, seq: u16| {
        let p = rtp(0, seq, 0, 3, &[1; 160]);
        let mut buf = [0u8; 256];
        buf[..p.len()].copy_from_slice(&p);
        let n = tx.protect_rtp(&mut buf, p.len()).unwrap();
        w.packet(30000, "127.0.0.1:5555", &buf[..n]).0
    };
    for seq in [65534, 65535, 0, 1] {
        assert!(
            matches!(send(&mut w, seq), Verdict::Send { .. }),
            "seq {seq}"
        );
    }
    // Re-INVITE: new payload type map, same keys.
    let mut a2 = a;
    a2.pt_map[0] = [0, 8];
    a2.pt_map[1] = [0xFF, 0xFF];
    w.core.apply(
        w.now,
        Kind::UpdateLeg as u16,
        bytemuck::bytes_of(&a2),
        &mut w.fx,
    );
    assert_eq!(w.core.latched(1), Some(addr("127.0.0.1:5555")));
    assert!(
        matches!(send(&mut w, 2), Verdict::Send { .. }),
        "ROC kept across the update"
    );
    // New keys: the old sender's packets no longer authenticate.
    let mut a3 = a2;
    a3.srtp_rx = keys(3, 7);
    w.core.apply(
        w.now,
        Kind::UpdateLeg as u16,
        bytemuck::bytes_of(&a3),
        &mut w.fx,
    );
    assert_eq!(send(&mut w, 3), Verdict::Drop(Why::AuthFailed));
}

#[test]
fn snapshot_reports_every_leg_then_ends() {
    let mut w = world("snapshot");
    w.add(leg(1, 2, 30000, "127.0.0.1:5000"));
    w.add(leg(2, 1, 30002, "127.0.0.1:6000"));
    w.core.apply(w.now, Kind::Snapshot as u16, &[], &mut w.fx);
    let kinds: Vec<Kind> = w.fx.events.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![Kind::LegState, Kind::LegState, Kind::SnapshotEnd]
    );
    let mut ids: Vec<u64> = w.fx.events[..2]
        .iter()
        .map(|(_, b)| bytemuck::pod_read_unaligned::<LegRule>(b).leg_id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
}

fn ulaw_tone(frame: u32) -> Vec<u8> {
    (0..160)
        .map(|i| {
            let t = (frame * 160 + i) as f64 / 8000.0;
            let x = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            strait_codec::g711::Law::Ulaw.encode(x)
        })
        .collect()
}

fn rms_ulaw(payload: &[u8]) -> f64 {
    let sum: f64 = payload
        .iter()
        .map(|&c| {
            let x = f64::from(strait_codec::g711::Law::Ulaw.decode(c));
            x * x
        })
        .sum();
    (sum / payload.len() as f64).sqrt()
}

#[test]
fn transcoding_legs_carry_a_tone_g711_to_opus_and_back() {
    let mut w = world("transcode");
    let t = |mode| abi::Transcode {
        mode,
        law: 0,
        g711_pt: 0,
        opus_pt: 111,
        g711_event_pt: 101,
        opus_event_pt: 110,
        complexity: 5,
        _pad: 0,
    };
    // Leg 1: legacy phone (PCMU); what leaves it is G.711 made from Opus.
    let mut legacy = leg(1, 2, 30000, "127.0.0.1:5000");
    legacy.transcode = t(abi::transcode::OPUS_TO_G711);
    legacy.ssrc_out = 0x1EAC;
    // Leg 2: browser (SRTP); what leaves it is Opus made from G.711.
    let mut browser = leg(2, 1, 30002, "127.0.0.1:6000");
    browser.transcode = t(abi::transcode::G711_TO_OPUS);
    browser.srtp_tx = keys(1, 20);
    browser.srtp_rx = keys(1, 30);
    browser.ssrc_out = 0xB0B;
    w.add(legacy);
    w.add(browser);
    let suite = Suite::AesCm128HmacSha1_80;
    let mut to_browser = SrtpContext::new(suite, &[20; 16], &[21; 14], Config::default()).unwrap();
    let mut from_browser =
        SrtpContext::new(suite, &[30; 16], &[31; 14], Config::default()).unwrap();

    // 50 frames of a 440 Hz tone from the phone.
    let mut opus = Vec::new();
    for f in 0..50u32 {
        let (v, _) = w.packet(
            30000,
            "127.0.0.1:5000",
            &rtp(0, f as u16, f * 160, 0x77, &ulaw_tone(f)),
        );
        assert_eq!(
            v,
            Verdict::Consumed,
            "transcoded output is queued, in order"
        );
        for (port, to, mut p) in w.fx.sent.drain(..) {
            assert_eq!((port, to), (30002, addr("127.0.0.1:6000")));
            let n = to_browser.unprotect_rtp(&mut p).unwrap();
            p.truncate(n);
            opus.push(p);
        }
    }
    assert_eq!(opus.len(), 50, "one Opus packet per 20 ms frame");
    for (i, p) in opus.iter().enumerate() {
        assert_eq!(p[1] & 0x7F, 111);
        assert_eq!(&p[8..12], &0xB0Bu32.to_be_bytes());
        if i > 0 {
            let prev = &opus[i - 1];
            let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
            let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            assert_eq!(seq(p), seq(prev).wrapping_add(1));
            assert_eq!(ts(p), ts(prev).wrapping_add(960), "48 kHz clock, 20 ms");
        }
        assert!(p.len() < 12 + 160, "Opus is smaller than G.711");
    }
    // The browser sends those Opus packets back: the phone gets the tone.
    let mut g711 = Vec::new();
    for p in &opus {
        let mut buf = p.clone();
        buf.resize(p.len() + 16, 0);
        let n = from_browser.protect_rtp(&mut buf, p.len()).unwrap();
        let (v, _) = w.packet(30002, "127.0.0.1:6000", &buf[..n]);
        assert_eq!(v, Verdict::Consumed);
        for (port, to, p) in w.fx.sent.drain(..) {
            assert_eq!((port, to), (30000, addr("127.0.0.1:5000")));
            g711.push(p);
        }
    }
    assert_eq!(g711.len(), 50);
    assert!(g711.iter().all(|p| p.len() == 172 && p[1] & 0x7F == 0));
    let input = rms_ulaw(&ulaw_tone(30));
    let output = rms_ulaw(&g711[30][12..]);
    assert!(
        output > 0.5 * input && output < 1.5 * input,
        "tone survives G.711 -> Opus -> G.711: rms {output:.0} vs {input:.0}"
    );
    // RTCP on a transcoded path ends at the relay.
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 0x77];
    let (v, _) = w.packet(30000, "127.0.0.1:5000", &rr);
    assert_eq!(v, Verdict::Drop(Why::RtcpTerminated));
    assert_eq!(w.counter(2, counter::PACKETS_OUT), 50);
    assert_eq!(w.counter(1, counter::PACKETS_OUT), 50);
}
