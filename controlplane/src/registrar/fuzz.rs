//! Fuzz entry points (feature `fuzz`), called by the cargo-fuzz crate.
//!
//! They must never panic on any input; they assert only invariants.

use std::time::{Duration, Instant, SystemTime};

use super::{ChangeKind, FlowTokens, Registrar, RegistrarSettings};
use crate::sip::{FlowId, Message, Transport};

/// Feeds `data` to an in-memory registrar as a REGISTER (the input is split
/// at `\0` into several messages, the first byte of each choosing the flow
/// and the clock step). Checks that every answer is a final response with a
/// known status, that the limits hold, that lookups return only live
/// bindings, that closing every flow leaves only routable bindings, and that
/// expiring everything empties the registrar.
pub fn registrar_register(data: &[u8]) {
    let settings = RegistrarSettings {
        domains: vec!["localhost".into(), "127.0.0.1".into()],
        min_expires: 60,
        max_expires: 3600,
        default_expires: 600,
        max_bindings_per_aor: 3,
        max_bindings_total: 8,
        store_path: None,
    };
    let start = Instant::now();
    let (mut reg, _) =
        Registrar::open(settings, start, SystemTime::UNIX_EPOCH).expect("no store to open");
    let mut now = start;
    let mut flows = Vec::new();
    for chunk in data.split(|&b| b == 0) {
        let Some((&ctl, msg)) = chunk.split_first() else {
            continue;
        };
        let tokens = FlowTokens::new([1; 32]);
        if let Some(f) = tokens.decode(&String::from_utf8_lossy(msg)) {
            assert_eq!(tokens.decode(&tokens.encode(&f)), Some(f));
        }
        now += Duration::from_secs(u64::from(ctl >> 3) * 30);
        let transport = Transport::ALL[usize::from(ctl & 7) % Transport::ALL.len()];
        let conn = if transport == Transport::Udp {
            0
        } else {
            u64::from(ctl & 7)
        };
        let flow = FlowId {
            transport,
            local: "127.0.0.1:5060".parse().expect("literal"),
            remote: "192.0.2.1:40000".parse().expect("literal"),
            conn,
        };
        flows.push(flow);
        let Ok(Message::Request(req)) = Message::parse(msg) else {
            continue;
        };
        let user = (ctl & 0x40 != 0).then_some("alice");
        let out = reg.handle_register(now, &req, flow, flow.remote, user);
        let s = out.response.status;
        assert!(
            [200, 400, 403, 404, 405, 423, 439, 503].contains(&s),
            "status {s}"
        );
        if s != 200 {
            assert!(out.changes.iter().all(|c| c.kind == ChangeKind::Expired));
        }
        assert!(reg.len() <= 8);
        for aor in reg.aors().map(str::to_string).collect::<Vec<_>>() {
            let targets = reg.lookup(now, &aor);
            assert!(targets.len() <= 3);
            for t in targets {
                let b = reg
                    .binding(t.binding)
                    .expect("lookup returns existing bindings");
                assert!(b.expires_at > now);
            }
        }
        assert!(Message::parse(&out.response.to_bytes()).is_ok());
    }
    for f in flows {
        let _ = reg.flow_closed(f);
    }
    for aor in reg.aors().map(str::to_string).collect::<Vec<_>>() {
        for b in reg.bindings(&aor) {
            assert!(b.reach.connection().is_none(), "{b:?}");
        }
    }
    let _ = reg.expire(now + Duration::from_secs(3601));
    assert!(reg.is_empty());
    assert_eq!(reg.next_expiry(), None);
}
