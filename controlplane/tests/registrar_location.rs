//! Registrar behaviour (in memory): JsSIP-style registrations over
//! WebSocket, refresh, several devices, RFC 5626 flow replacement,
//! unregistration, expiry, flow closure, legacy UDP/TCP clients (NAT
//! handling), Path, CSeq ordering, and the error answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use strait::registrar::{ChangeKind, Reach, RegisterOutcome, Registrar, RegistrarSettings};
use strait::sip::{FlowId, HeaderName, Message, NameAddr, Request, Transport};

const INSTANCE_A: &str = "<urn:uuid:5d0e8f53-4a4c-4c0e-9f8a-0f0d1a2b3c4d>";
const INSTANCE_B: &str = "<urn:uuid:0b3e2c1a-9f8e-4d7c-8b6a-5f4e3d2c1b0a>";

fn settings() -> RegistrarSettings {
    RegistrarSettings {
        domains: vec!["localhost".into(), "127.0.0.1".into()],
        min_expires: 60,
        max_expires: 3600,
        default_expires: 600,
        max_bindings_per_aor: 10,
        max_bindings_total: 1000,
        store_path: None,
    }
}

fn registrar(s: RegistrarSettings) -> (Registrar, Instant) {
    let now = Instant::now();
    let (r, report) = Registrar::open(s, now, SystemTime::now()).unwrap();
    assert_eq!(report.path, None);
    (r, now)
}

fn flow(transport: Transport, remote: &str, conn: u64) -> FlowId {
    FlowId {
        transport,
        local: match transport {
            Transport::Ws => "127.0.0.1:8080",
            Transport::Wss => "127.0.0.1:8443",
            _ => "127.0.0.1:5060",
        }
        .parse()
        .unwrap(),
        remote: remote.parse().unwrap(),
        conn,
    }
}

/// A REGISTER builder.
#[derive(Clone)]
struct Reg {
    via: Vec<String>,
    to: String,
    call_id: String,
    cseq: u32,
    contacts: Vec<String>,
    expires: Option<String>,
    supported: Option<String>,
    path: Vec<String>,
}

impl Reg {
    /// What JsSIP sends (reg-id 1, +sip.instance, `.invalid` Contact).
    fn jssip(instance: &str, contact_user: &str) -> Reg {
        Reg {
            via: vec!["SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK1;rport=50123;received=192.0.2.7".into()],
            to: "sip:alice@localhost".into(),
            call_id: format!("call-{contact_user}"),
            cseq: 1,
            contacts: vec![format!(
                "<sip:{contact_user}@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"{instance}\";expires=600"
            )],
            expires: Some("600".into()),
            supported: Some("path, gruu, outbound".into()),
            path: vec![],
        }
    }

    fn legacy(contact: &str) -> Reg {
        Reg {
            via: vec!["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK9".into()],
            to: "sip:bob@localhost".into(),
            call_id: "legacy-1".into(),
            cseq: 1,
            contacts: vec![contact.into()],
            expires: Some("600".into()),
            supported: None,
            path: vec![],
        }
    }

    fn cseq(mut self, n: u32) -> Self {
        self.cseq = n;
        self
    }

    fn build(&self) -> Request {
        let mut t = String::from("REGISTER sip:localhost SIP/2.0\r\n");
        for v in &self.via {
            t += &format!("Via: {v}\r\n");
        }
        t += &format!(
            "Max-Forwards: 70\r\nTo: <{0}>\r\nFrom: <{0}>;tag=abc\r\nCall-ID: {1}\r\nCSeq: {2} REGISTER\r\n",
            self.to, self.call_id, self.cseq
        );
        for c in &self.contacts {
            t += &format!("Contact: {c}\r\n");
        }
        if let Some(e) = &self.expires {
            t += &format!("Expires: {e}\r\n");
        }
        if let Some(s) = &self.supported {
            t += &format!("Supported: {s}\r\n");
        }
        for p in &self.path {
            t += &format!("Path: {p}\r\n");
        }
        t += "User-Agent: test\r\nContent-Length: 0\r\n\r\n";
        match Message::parse(t.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }
}

fn send(
    reg: &mut Registrar,
    now: Instant,
    r: &Reg,
    f: FlowId,
    user: Option<&str>,
) -> RegisterOutcome {
    let req = r.build();
    let out = reg.handle_register(now, &req, f, f.remote, user);
    // Every answer is a well-formed response to this request.
    let resp = &out.response;
    assert_eq!(
        resp.headers.call_id().unwrap(),
        req.headers.call_id().unwrap()
    );
    assert!(resp.headers.to_addr().unwrap().tag().is_some());
    assert!(Message::parse(&resp.to_bytes()).is_ok());
    out
}

fn contacts_of(out: &RegisterOutcome) -> Vec<NameAddr<'static>> {
    out.response
        .headers
        .values(HeaderName::Contact)
        .map(|v| NameAddr::parse(v).unwrap().into_owned())
        .collect()
}

const ALICE: &str = "sip:alice@localhost";

#[test]
fn jssip_register_over_websocket() {
    let (mut reg, now) = registrar(settings());
    let ws = flow(Transport::Wss, "192.0.2.7:50123", 1);
    let out = send(
        &mut reg,
        now,
        &Reg::jssip(INSTANCE_A, "k4k6pgls"),
        ws,
        Some("alice"),
    );
    assert_eq!(out.response.status, 200);
    assert_eq!(out.store_error, None);
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].kind, ChangeKind::Added);
    assert_eq!(
        out.response.headers.get(HeaderName::Require),
        Some("outbound")
    );
    assert_eq!(
        out.response.headers.get(HeaderName::Supported),
        Some("outbound, path")
    );
    // The Contact comes back as JsSIP sent it (it matches on +sip.instance
    // with the quotes, and on reg-id), with the granted expiry.
    let c = contacts_of(&out);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].expires(), Some(600));
    assert_eq!(
        c[0].params().value("+sip.instance"),
        Some(format!("\"{INSTANCE_A}\"").as_str())
    );
    assert_eq!(c[0].reg_id(), Some(1));
    assert!(c[0].params().contains("+sip.ice"));

    let t = reg.lookup(now, ALICE);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].reach, Reach::Flow(ws));
    assert_eq!(t[0].flow(), Some(ws));
    assert_eq!(
        t[0].request_uri.to_string(),
        "sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws"
    );
    assert!(t[0].route.is_empty());
    assert_eq!(t[0].instance.as_deref(), Some(INSTANCE_A));
    assert_eq!(t[0].reg_id, Some(1));
    let b = reg.binding(t[0].binding).unwrap();
    assert_eq!(b.aor, ALICE);
    assert_eq!(b.source, ws.remote);
    assert_eq!(b.user_agent.as_deref(), Some("test"));
    assert!(!b.reach.survives_restart());
    assert_eq!(reg.stats().flow_bound, 1);
}

#[test]
fn refresh_second_device_and_flow_replacement() {
    let (mut reg, now) = registrar(settings());
    let ws1 = flow(Transport::Wss, "192.0.2.7:50123", 1);
    let a = Reg::jssip(INSTANCE_A, "k4k6pgls");
    send(&mut reg, now, &a, ws1, Some("alice"));

    // Refresh after 300 s: same binding, new expiry.
    let t1 = now + Duration::from_secs(300);
    let out = send(&mut reg, t1, &a.clone().cseq(2), ws1, Some("alice"));
    assert_eq!(out.response.status, 200);
    assert_eq!(out.changes[0].kind, ChangeKind::Updated);
    assert_eq!(reg.len(), 1);
    assert_eq!(reg.next_expiry(), Some(t1 + Duration::from_secs(600)));

    // A second browser of the same user.
    let ws2 = flow(Transport::Wss, "198.51.100.4:40000", 2);
    let out = send(
        &mut reg,
        t1,
        &Reg::jssip(INSTANCE_B, "zz9plq1x"),
        ws2,
        Some("alice"),
    );
    assert_eq!(out.changes[0].kind, ChangeKind::Added);
    assert_eq!(contacts_of(&out).len(), 2, "the 200 lists every binding");
    assert_eq!(reg.lookup(t1, ALICE).len(), 2);

    // The first browser reconnects on a new WebSocket and registers again:
    // RFC 5626, same instance and reg-id, so the binding moves to the new flow.
    let ws3 = flow(Transport::Wss, "192.0.2.7:50999", 3);
    let out = send(&mut reg, t1, &a.clone().cseq(3), ws3, Some("alice"));
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].kind, ChangeKind::Updated);
    assert_eq!(reg.len(), 2);
    let flows: Vec<_> = reg
        .lookup(t1, ALICE)
        .iter()
        .filter_map(|t| t.flow())
        .collect();
    assert!(flows.contains(&ws3) && flows.contains(&ws2) && !flows.contains(&ws1));
    // The old connection closing later removes nothing.
    assert!(reg.flow_closed(ws1).is_empty());
    assert_eq!(reg.len(), 2);
    // The new one closing removes that browser only.
    let gone = reg.flow_closed(ws3);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].kind, ChangeKind::FlowClosed);
    assert_eq!(
        gone[0].contact,
        "sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws"
    );
    let left = reg.lookup(t1, ALICE);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].flow(), Some(ws2));
    assert!(reg.flow_closed(ws2).len() == 1 && reg.is_empty());
    assert_eq!(reg.stats(), Default::default());
}

#[test]
fn unregister_and_star() {
    let (mut reg, now) = registrar(settings());
    let ws1 = flow(Transport::Ws, "192.0.2.7:1", 1);
    let ws2 = flow(Transport::Ws, "192.0.2.8:1", 2);
    let a = Reg::jssip(INSTANCE_A, "aaaa");
    send(&mut reg, now, &a, ws1, None);
    send(&mut reg, now, &Reg::jssip(INSTANCE_B, "bbbb"), ws2, None);

    // JsSIP's un-REGISTER: expires=0 on its Contact.
    let mut un = a.clone().cseq(2);
    un.contacts = vec![format!(
        "<sip:aaaa@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"{INSTANCE_A}\";expires=0"
    )];
    un.expires = Some("0".into());
    let out = send(&mut reg, now, &un, ws1, None);
    assert_eq!(out.response.status, 200);
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].kind, ChangeKind::Unregistered);
    assert_eq!(contacts_of(&out).len(), 1, "the other device remains");
    assert!(reg.flow_closed(ws1).is_empty());

    // `*` without Expires: 0, or with another Contact, is refused.
    let mut star = Reg::jssip(INSTANCE_B, "bbbb");
    star.call_id = "other".into();
    star.contacts = vec!["*".into()];
    star.expires = None;
    assert_eq!(send(&mut reg, now, &star, ws2, None).response.status, 400);
    star.expires = Some("0".into());
    star.contacts = vec!["*".into(), "<sip:x@192.0.2.1>".into()];
    assert_eq!(send(&mut reg, now, &star, ws2, None).response.status, 400);
    assert_eq!(reg.len(), 1);
    // `Contact: *` with Expires: 0 removes all.
    star.contacts = vec!["*".into()];
    let out = send(&mut reg, now, &star, ws2, None);
    assert_eq!(out.response.status, 200);
    assert_eq!(out.changes.len(), 1);
    assert!(contacts_of(&out).is_empty());
    assert!(reg.is_empty());

    // Unregistering a contact that is not bound is a no-op 200.
    let out = send(&mut reg, now, &un.cseq(9), ws1, None);
    assert_eq!(out.response.status, 200);
    assert!(out.changes.is_empty());
}

#[test]
fn expiry_intervals_and_423() {
    let (mut reg, now) = registrar(settings());
    let udp = flow(Transport::Udp, "192.0.2.10:5060", 0);
    let mut r = Reg::legacy("<sip:bob@192.0.2.10:5060>;expires=30");
    let out = send(&mut reg, now, &r, udp, None);
    assert_eq!(out.response.status, 423);
    assert_eq!(out.response.headers.get(HeaderName::MinExpires), Some("60"));
    assert!(reg.is_empty());

    // Contact param beats the header; both beat the default; max clamps.
    r.contacts = vec![
        "<sip:bob@192.0.2.10:5060>;expires=120".into(),
        "<sip:bob@192.0.2.10:5070>".into(),
        "<sip:bob@192.0.2.10:5080>;expires=99999".into(),
    ];
    r.expires = Some("200".into());
    let out = send(&mut reg, now, &r, udp, None);
    assert_eq!(out.response.status, 200);
    let mut granted: Vec<u32> = contacts_of(&out)
        .iter()
        .map(|c| c.expires().unwrap())
        .collect();
    granted.sort();
    assert_eq!(granted, vec![120, 200, 3600]);
    r.contacts = vec!["<sip:bob@192.0.2.10:5090>".into()];
    r.expires = None;
    r.call_id = "other".into();
    let out = send(&mut reg, now, &r, udp, None);
    assert!(contacts_of(&out).iter().any(|c| c.expires() == Some(600)));

    // A REGISTER is all or nothing: one bad interval refuses all of it.
    r.contacts = vec![
        "<sip:bob@192.0.2.10:6000>".into(),
        "<sip:bob@192.0.2.10:6001>;expires=1".into(),
    ];
    assert_eq!(
        send(&mut reg, now, &r.clone().cseq(2), udp, None)
            .response
            .status,
        423
    );
    assert_eq!(reg.len(), 4);

    // Expiry: filtered from lookups at once, removed by expire().
    assert_eq!(reg.next_expiry(), Some(now + Duration::from_secs(120)));
    let t = now + Duration::from_secs(120);
    assert_eq!(reg.lookup(t, "sip:bob@localhost").len(), 3);
    let gone = reg.expire(t);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].kind, ChangeKind::Expired);
    assert_eq!(gone[0].contact, "sip:bob@192.0.2.10:5060");
    assert_eq!(reg.next_expiry(), Some(now + Duration::from_secs(200)));
    assert_eq!(reg.expire(now + Duration::from_secs(3600)).len(), 3);
    assert!(reg.is_empty() && reg.next_expiry().is_none());
}

#[test]
fn cseq_ordering() {
    let (mut reg, now) = registrar(settings());
    let udp = flow(Transport::Udp, "192.0.2.10:5060", 0);
    let r = Reg::legacy("<sip:bob@192.0.2.10:5060>").cseq(10);
    assert_eq!(send(&mut reg, now, &r, udp, None).response.status, 200);
    // Same Call-ID, CSeq not higher: refused, binding unchanged.
    for n in [10, 9] {
        let mut late = r.clone().cseq(n);
        late.expires = Some("0".into());
        let out = send(&mut reg, now, &late, udp, None);
        assert_eq!(out.response.status, 400, "{n}");
        assert!(out.response.reason.contains("CSeq"));
        assert_eq!(reg.len(), 1);
    }
    // Another Call-ID may update with any CSeq.
    let mut other = r.clone().cseq(1);
    other.call_id = "rebooted".into();
    let out = send(&mut reg, now, &other, udp, None);
    assert_eq!(out.response.status, 200);
    assert_eq!(out.changes[0].kind, ChangeKind::Updated);
    let b = reg.bindings("sip:bob@localhost").next().unwrap();
    assert_eq!((b.call_id.as_str(), b.cseq), ("rebooted", 1));
    // `*` leaves bindings whose CSeq is not below the request's.
    let mut star = other.clone().cseq(1);
    star.contacts = vec!["*".into()];
    star.expires = Some("0".into());
    let out = send(&mut reg, now, &star, udp, None);
    assert_eq!(out.response.status, 200);
    assert_eq!(reg.len(), 1);
    let out = send(&mut reg, now, &star.cseq(2), udp, None);
    assert_eq!(out.changes.len(), 1);
    assert!(reg.is_empty());
}

#[test]
fn aor_checks() {
    let (mut reg, now) = registrar(settings());
    let ws = flow(Transport::Wss, "192.0.2.7:1", 1);
    let a = Reg::jssip(INSTANCE_A, "aaaa");
    // Authenticated as bob, registering alice.
    let out = send(&mut reg, now, &a, ws, Some("bob"));
    assert_eq!(out.response.status, 403);
    assert!(out.changes.is_empty() && reg.is_empty());
    // A domain that is not ours.
    let mut foreign = a.clone();
    foreign.to = "sip:alice@example.net".into();
    assert_eq!(
        send(&mut reg, now, &foreign, ws, Some("alice"))
            .response
            .status,
        404
    );
    // No user part; a non-SIP AOR.
    foreign.to = "sip:localhost".into();
    assert_eq!(send(&mut reg, now, &foreign, ws, None).response.status, 400);
    foreign.to = "tel:+15551234".into();
    assert_eq!(send(&mut reg, now, &foreign, ws, None).response.status, 400);
    // The configured domains are aliases: registered as alice@127.0.0.1 ...
    let mut by_ip = a.clone();
    by_ip.to = "sip:alice@127.0.0.1".into();
    assert_eq!(
        send(&mut reg, now, &by_ip, ws, Some("alice"))
            .response
            .status,
        200
    );
    // ... found as alice@localhost (the canonical AOR uses the first domain).
    assert_eq!(reg.lookup(now, "sip:alice@localhost").len(), 1);
    assert_eq!(reg.lookup(now, "sip:alice@LOCALHOST;transport=ws").len(), 1);
    assert_eq!(reg.aors().collect::<Vec<_>>(), vec![ALICE]);
    assert!(reg.lookup(now, "sip:alice@example.net").is_empty());
    assert!(reg.lookup(now, "sip:carol@localhost").is_empty());
}

#[test]
fn bad_requests() {
    let (mut reg, now) = registrar(settings());
    let udp = flow(Transport::Udp, "192.0.2.10:5060", 0);
    for (contact, why) in [
        ("<tel:+15551234>", "SIP URI"),
        ("<sip:bob@192.0.2.10>;expires=soon", "expires"),
    ] {
        let out = send(&mut reg, now, &Reg::legacy(contact), udp, None);
        assert_eq!(out.response.status, 400, "{contact}");
        assert!(out.response.reason.contains(why), "{}", out.response.reason);
    }
    let mut r = Reg::legacy("<sip:bob@192.0.2.10>");
    r.expires = Some("never".into());
    assert_eq!(send(&mut reg, now, &r, udp, None).response.status, 400);
    // Two Contacts with reg-id (outbound allows one flow per REGISTER).
    let mut two = Reg::jssip(INSTANCE_A, "aaaa");
    two.contacts.push(format!(
        "<sip:bbbb@df7jal23ls0d.invalid;transport=ws>;reg-id=2;+sip.instance=\"{INSTANCE_A}\""
    ));
    let ws = flow(Transport::Ws, "192.0.2.7:1", 1);
    assert_eq!(send(&mut reg, now, &two, ws, None).response.status, 400);
    // Not a REGISTER.
    let mut req = Reg::legacy("<sip:bob@192.0.2.10>").build();
    req.method = strait::sip::Method::Options;
    req.headers.set(HeaderName::CSeq, "1 OPTIONS");
    let out = reg.handle_register(now, &req, udp, udp.remote, None);
    assert_eq!(out.response.status, 405);
    assert_eq!(
        out.response.headers.get(HeaderName::Allow),
        Some("REGISTER")
    );
    assert!(reg.is_empty());
}

#[test]
fn outbound_rules_439_and_path() {
    let (mut reg, now) = registrar(settings());
    let tcp = flow(Transport::Tcp, "192.0.2.50:41000", 5);
    // Through a proxy (two Vias) without Path: we are not the first hop.
    let mut r = Reg::jssip(INSTANCE_A, "aaaa");
    r.via
        .insert(0, "SIP/2.0/TCP 192.0.2.50;branch=z9hG4bKp".into());
    assert_eq!(send(&mut reg, now, &r, tcp, None).response.status, 439);
    // Without `outbound` in Supported, reg-id is ignored: a plain binding.
    let mut plain = r.clone();
    plain.supported = Some("path".into());
    let out = send(&mut reg, now, &plain, tcp, None);
    assert_eq!(out.response.status, 200);
    assert!(!out.response.headers.contains(HeaderName::Require));
    assert_eq!(
        out.response.headers.get(HeaderName::Supported),
        Some("path")
    );
    assert_eq!(reg.lookup(now, ALICE)[0].reg_id, None);
    reg.remove_aor(ALICE);

    // With a Path whose first URI has `ob`: outbound applies, and the
    // binding is reached through the edge proxy (Route = Path).
    r.path = vec![
        "<sip:edge.example.com;lr;ob>".into(),
        "<sip:core.example.com;lr>".into(),
    ];
    let out = send(&mut reg, now, &r, tcp, None);
    assert_eq!(out.response.status, 200);
    assert_eq!(
        out.response.headers.get(HeaderName::Require),
        Some("outbound")
    );
    let echoed: Vec<&str> = out.response.headers.get_all(HeaderName::Path).collect();
    assert_eq!(
        echoed,
        vec!["<sip:edge.example.com;lr;ob>", "<sip:core.example.com;lr>"]
    );
    let t = reg.lookup(now, ALICE);
    assert_eq!(t[0].reach, Reach::Route);
    assert_eq!(
        t[0].route,
        vec!["<sip:edge.example.com;lr;ob>", "<sip:core.example.com;lr>"]
    );
    assert_eq!(t[0].reg_id, Some(1));
    // Path bindings do not depend on the connection to the proxy.
    assert!(reg.flow_closed(tcp).is_empty());
    assert_eq!(reg.len(), 1);
    // A client that does not support path gets no Path back.
    r.supported = Some("outbound".into());
    let out = send(&mut reg, now, &r.cseq(2), tcp, None);
    assert!(!out.response.headers.contains(HeaderName::Path));
}

#[test]
fn legacy_clients_and_nat() {
    let (mut reg, now) = registrar(settings());
    // A phone on a public address: routed by its Contact.
    let direct = flow(Transport::Udp, "192.0.2.10:5060", 0);
    send(
        &mut reg,
        now,
        &Reg::legacy("<sip:bob@192.0.2.10:5060>"),
        direct,
        None,
    );
    // A phone behind NAT: private Contact, public source → the UDP flow
    // (received/rport, our socket).
    let natted = flow(Transport::Udp, "203.0.113.9:40001", 0);
    let mut r = Reg::legacy("<sip:bob@10.0.0.5:5060>;q=0.5");
    r.call_id = "nat".into();
    send(&mut reg, now, &r, natted, None);
    // Same IP, other port (symmetric NAT or a random source port).
    let port = flow(Transport::Udp, "192.0.2.11:33333", 0);
    let mut r = Reg::legacy("<sip:bob@192.0.2.11>;q=1.0");
    r.call_id = "port".into();
    send(&mut reg, now, &r, port, None);
    // A domain Contact is trusted.
    let dns = flow(Transport::Udp, "192.0.2.12:5060", 0);
    let mut r = Reg::legacy("<sip:bob@pbx.example.com>;q=0.1");
    r.call_id = "dns".into();
    send(&mut reg, now, &r, dns, None);

    let t = reg.lookup(now, "sip:bob@localhost");
    assert_eq!(t.len(), 4);
    // Best q first (absent = 1.0; ties: most recent first).
    let order: Vec<String> = t.iter().map(|t| t.request_uri.to_string()).collect();
    assert_eq!(
        order,
        vec![
            "sip:bob@192.0.2.11",
            "sip:bob@192.0.2.10:5060",
            "sip:bob@10.0.0.5:5060",
            "sip:bob@pbx.example.com"
        ]
    );
    assert_eq!(t[0].reach, Reach::Flow(port));
    assert_eq!(t[1].reach, Reach::Route);
    assert_eq!(t[2].reach, Reach::Flow(natted));
    assert_eq!(t[3].reach, Reach::Route);
    assert!(t.iter().all(|t| {
        let b = reg.binding(t.binding).unwrap();
        b.reach.survives_restart() && b.reach.connection().is_none()
    }));

    // TCP: the source port is ephemeral, so only the address is compared.
    let tcp = flow(Transport::Tcp, "192.0.2.20:51515", 7);
    let mut r = Reg::legacy("<sip:carol@192.0.2.20:5060;transport=tcp>");
    r.to = "sip:carol@localhost".into();
    send(&mut reg, now, &r, tcp, None);
    // ... a `.invalid` Contact over TCP is bound to the connection.
    let tcp2 = flow(Transport::Tcp, "192.0.2.21:51516", 8);
    let mut r = Reg::legacy("<sip:x1@abc.invalid;transport=tcp>");
    r.to = "sip:carol@localhost".into();
    r.call_id = "tcp2".into();
    send(&mut reg, now, &r, tcp2, None);
    let t = reg.lookup(now, "sip:carol@localhost");
    assert_eq!(t[0].reach, Reach::Flow(tcp2));
    assert_eq!(t[1].reach, Reach::Route);
    assert!(
        reg.flow_closed(tcp).is_empty(),
        "a routable binding survives its connection"
    );
    assert_eq!(reg.flow_closed(tcp2).len(), 1);
    assert_eq!(reg.lookup(now, "sip:carol@localhost").len(), 1);
}

#[test]
fn limits() {
    let mut s = settings();
    s.max_bindings_per_aor = 2;
    s.max_bindings_total = 3;
    let (mut reg, now) = registrar(s);
    let udp = |n: u16| flow(Transport::Udp, &format!("192.0.2.10:{n}"), 0);
    let contact = |n: u16| format!("<sip:bob@192.0.2.10:{n}>");
    for n in [5060, 5061] {
        assert_eq!(
            send(&mut reg, now, &Reg::legacy(&contact(n)), udp(n), None)
                .response
                .status,
            200
        );
    }
    let out = send(&mut reg, now, &Reg::legacy(&contact(5062)), udp(5062), None);
    assert_eq!(out.response.status, 403);
    assert!(out.response.reason.contains("Too Many Contacts"));
    // Replacing one within the same REGISTER is fine.
    let mut swap = Reg::legacy(&contact(5062)).cseq(2);
    swap.contacts.push(format!("{};expires=0", contact(5060)));
    assert_eq!(
        send(&mut reg, now, &swap, udp(5062), None).response.status,
        200
    );
    assert_eq!(reg.len(), 2);
    // Total limit.
    let mut carol = Reg::legacy("<sip:carol@192.0.2.30>");
    carol.to = "sip:carol@localhost".into();
    assert_eq!(
        send(&mut reg, now, &carol, udp(1), None).response.status,
        200
    );
    let mut dave = Reg::legacy("<sip:dave@192.0.2.31>");
    dave.to = "sip:dave@localhost".into();
    let out = send(&mut reg, now, &dave, udp(2), None);
    assert_eq!(out.response.status, 503);
    assert_eq!(out.response.headers.get(HeaderName::RetryAfter), Some("60"));
    // A REGISTER with absurdly many Contacts is refused outright.
    let mut many = Reg::legacy(&contact(7000));
    many.call_id = "many".into();
    many.contacts = (7000..7005).map(contact).collect();
    let out = send(&mut reg, now, &many, udp(7000), None);
    assert_eq!(out.response.status, 403);
    // Refreshes still work when full.
    assert_eq!(
        send(&mut reg, now, &carol.cseq(2), udp(1), None)
            .response
            .status,
        200
    );
    assert_eq!(reg.len(), 3);
}

#[test]
fn many_flows_closing_leave_nothing_behind() {
    // WebSocket edges leak on abrupt disconnects elsewhere: here a closed
    // flow takes its bindings and its index entries with it.
    let (mut reg, now) = registrar(settings());
    for i in 0..200u64 {
        let ws = flow(Transport::Wss, &format!("192.0.2.7:{}", 10_000 + i), i + 1);
        let mut r = Reg::jssip(&format!("<urn:uuid:{i}>"), &format!("c{i}"));
        r.to = format!("sip:user{}@localhost", i % 50);
        assert_eq!(send(&mut reg, now, &r, ws, None).response.status, 200);
        if i % 2 == 1 {
            assert_eq!(reg.flow_closed(ws).len(), 1);
        }
    }
    assert_eq!(reg.len(), 100);
    assert_eq!(reg.stats().flow_bound, 100);
    for i in (0..200u64).step_by(2) {
        let ws = flow(Transport::Wss, &format!("192.0.2.7:{}", 10_000 + i), i + 1);
        assert_eq!(reg.flow_closed(ws).len(), 1);
    }
    assert!(reg.is_empty());
    assert_eq!(reg.stats().aors, 0);
    assert_eq!(reg.stats().flow_bound, 0);
    assert_eq!(reg.next_expiry(), None);
}

#[test]
fn source_address_is_kept_for_received() {
    let (mut reg, now) = registrar(settings());
    let udp = flow(Transport::Udp, "203.0.113.9:40001", 0);
    let req = Reg::legacy("<sip:bob@10.0.0.5>").build();
    let src: SocketAddr = "203.0.113.9:40001".parse().unwrap();
    let out = reg.handle_register(now, &req, udp, src, None);
    assert_eq!(out.response.status, 200);
    let b = reg.bindings("sip:bob@localhost").next().unwrap();
    assert_eq!(b.source, src);
    assert_eq!(b.reach, Reach::Flow(udp));
    assert!(b.path.is_empty());
}

#[test]
fn expired_bindings_found_by_a_failing_register_are_reported() {
    let (mut reg, now) = registrar(settings());
    let udp = flow(Transport::Udp, "192.0.2.10:5060", 0);
    let r = Reg::legacy("<sip:bob@192.0.2.10:5060>;expires=60");
    assert_eq!(send(&mut reg, now, &r, udp, None).response.status, 200);
    // 61 s later, before the caller's timer ran expire(): a REGISTER for the
    // same AOR that is refused still clears (and reports) the dead binding.
    let mut bad = Reg::legacy("<sip:bob@192.0.2.10:5070>;expires=5").cseq(2);
    bad.call_id = "x".into();
    let out = send(&mut reg, now + Duration::from_secs(61), &bad, udp, None);
    assert_eq!(out.response.status, 423);
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].kind, ChangeKind::Expired);
    assert!(reg.is_empty());
    assert_eq!(reg.next_expiry(), None);
}
