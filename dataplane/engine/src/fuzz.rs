//! Fuzz entry points, compiled only with the `fuzz` feature.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use strait_rules::abi::{self, flags, Kind, LegRule};
use strait_rules::region::{Region, RegionLayout};
use strait_rules::ring::RingGeometry;

use crate::pipeline::{Core, CoreConfig, Effects, Verdict};
use crate::stun;

/// STUN Binding request validation on arbitrary bytes, and the answer to
/// anything it accepts must itself parse.
pub fn stun_check(data: &[u8]) {
    if let Ok(req) = stun::check_binding_request(data, b"ufrag", b"password-password") {
        let mut out = [0u8; 128];
        let from: SocketAddr = "127.0.0.1:5000".parse().expect("literal");
        let n =
            stun::write_binding_success(&mut out, &req.transaction_id, from, b"password-password")
                .expect("128 bytes suffice");
        assert_eq!(stun::parse_xor_mapped_address(&out[..n]), Some(from));
    }
    let _ = stun::parse_xor_mapped_address(data);
}

struct NoFx;
impl Effects for NoFx {
    fn send(&mut self, _: u16, _: SocketAddr, bytes: &[u8]) {
        assert!(bytes.len() <= 2048);
    }
    fn event(&mut self, _: Kind, _: &[u8]) -> bool {
        true
    }
    fn punt(&mut self, _: &abi::Punted, _: &[u8]) -> bool {
        true
    }
    fn close_port(&mut self, _: u16) {}
}

fn region() -> Arc<Region> {
    static REGION: OnceLock<Arc<Region>> = OnceLock::new();
    REGION
        .get_or_init(|| {
            let path = std::env::temp_dir().join(format!("strait-fuzz-{}", std::process::id()));
            Arc::new(
                Region::create(
                    path,
                    RegionLayout {
                        workers: 1,
                        ring: RingGeometry {
                            capacity: 16,
                            slot_size: 2048,
                        },
                        max_legs: 8,
                        port_min: 30000,
                        port_max: 30099,
                    },
                )
                .expect("temp region"),
            )
        })
        .clone()
}

/// The whole per-packet path on arbitrary datagrams: a browser leg (ICE,
/// SRTP, NACK tail, transcoding toward it) and a legacy leg; the input is a
/// series of `[len_hi, len_lo, port_sel, src_sel, bytes...]` records. No
/// input may panic, and sends never exceed the buffer.
pub fn pipeline(data: &[u8]) {
    let mut core = Core::new(CoreConfig::default(), region());
    let now = Instant::now();
    let mut fx = NoFx;
    let mut browser: LegRule = bytemuck::Zeroable::zeroed();
    browser.leg_id = 1;
    browser.peer_leg_id = 2;
    browser.local_port = 30000;
    browser.flags = flags::ICE | flags::RTCP_MUX | flags::NACK_TAIL;
    browser.ice_ufrag[..5].copy_from_slice(b"ufrag");
    browser.ice_ufrag_len = 5;
    browser.ice_pwd[..17].copy_from_slice(b"password-password");
    browser.ice_pwd_len = 17;
    browser.nack_tail_min = 8;
    browser.nack_tail_max = 64;
    browser.srtp_rx.suite = 1;
    browser.srtp_tx.suite = 3;
    browser.transcode = abi::Transcode {
        mode: abi::transcode::G711_TO_OPUS,
        law: 0,
        g711_pt: 0,
        opus_pt: 111,
        g711_event_pt: 101,
        opus_event_pt: 110,
        complexity: 0,
        _pad: 0,
    };
    browser.pt_map[0] = [0xFF, 0xFF];
    let mut legacy = browser;
    legacy.leg_id = 2;
    legacy.peer_leg_id = 1;
    legacy.local_port = 30002;
    legacy.local_rtcp_port = 30003;
    legacy.flags = flags::SYMMETRIC;
    legacy.srtp_rx.suite = 0;
    legacy.srtp_tx.suite = 0;
    legacy.transcode.mode = abi::transcode::OPUS_TO_G711;
    legacy.remote_rtp = abi::Addr::from_socket_addr("127.0.0.1:5000".parse().expect("literal"));
    legacy.remote_rtcp = abi::Addr::from_socket_addr("127.0.0.1:5001".parse().expect("literal"));
    for rule in [browser, legacy] {
        core.apply(now, Kind::AddLeg as u16, bytemuck::bytes_of(&rule), &mut fx);
    }
    let sources: [SocketAddr; 3] = [
        "127.0.0.1:5000".parse().expect("literal"),
        "127.0.0.1:5001".parse().expect("literal"),
        "127.0.0.1:40000".parse().expect("literal"),
    ];
    let ports = [30000u16, 30002, 30003, 30004];
    let mut rest = data;
    let mut buf = [0u8; 2048];
    let mut t = now;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 1921;
        let port = ports[usize::from(rest[2]) % ports.len()];
        let from = sources[usize::from(rest[3]) % sources.len()];
        rest = &rest[4..];
        let len = len.min(rest.len());
        buf[..len].copy_from_slice(&rest[..len]);
        rest = &rest[len..];
        t += Duration::from_millis(20);
        if let Verdict::Send { len: out, .. } =
            core.on_packet(t, port, from, &mut buf, len, &mut fx)
        {
            assert!(out <= buf.len());
        }
        core.on_timer(t, &mut fx);
    }
}
