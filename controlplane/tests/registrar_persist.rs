//! The persistent location store: what survives a restart (only bindings
//! reachable by address), wall-clock expiry across the restart, deletes,
//! and what happens with a corrupt or locked database file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use strait::config::Config;
use strait::registrar::{
    Reach, Registrar, RegistrarSettings, DEFAULT_MAX_BINDINGS_PER_AOR, STORE_FILE,
};
use strait::sip::{FlowId, Message, Request, Transport};

fn settings(path: &Path) -> RegistrarSettings {
    RegistrarSettings {
        domains: vec!["localhost".into()],
        min_expires: 60,
        max_expires: 3600,
        default_expires: 600,
        max_bindings_per_aor: 10,
        max_bindings_total: 1000,
        store_path: Some(path.to_path_buf()),
    }
}

fn wall(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

const T0: u64 = 1_700_000_000;

fn flow(transport: Transport, remote: &str, conn: u64) -> FlowId {
    FlowId {
        transport,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: remote.parse().unwrap(),
        conn,
    }
}

fn register(to: &str, call_id: &str, cseq: u32, via: &str, contact: &str) -> Request {
    let t = format!(
        "REGISTER sip:localhost SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
To: <{to}>\r\nFrom: <{to}>;tag=1\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n\
Contact: {contact}\r\nSupported: outbound, path\r\nUser-Agent: ua/1\r\nContent-Length: 0\r\n\r\n"
    );
    match Message::parse(t.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

const UDP_VIA: &str = "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport";
const WS_VIA: &str = "SIP/2.0/WSS abc.invalid;branch=z9hG4bK2";

/// Registers four clients: a browser over WSS, a phone behind NAT over UDP,
/// a phone on a public address over UDP, and a `.invalid` client over TCP.
fn populate(reg: &mut Registrar, now: Instant) -> (FlowId, FlowId, FlowId, FlowId) {
    let ws = flow(Transport::Wss, "192.0.2.7:50000", 1);
    let nat = flow(Transport::Udp, "203.0.113.9:40001", 0);
    let public = flow(Transport::Udp, "192.0.2.10:5060", 0);
    let tcp = flow(Transport::Tcp, "192.0.2.11:50001", 2);
    let cases = [
        (
            "sip:alice@localhost",
            "c-ws",
            WS_VIA,
            "<sip:k4k6@abc.invalid;transport=ws>;reg-id=1;+sip.instance=\"<urn:uuid:a>\"",
            ws,
        ),
        (
            "sip:bob@localhost",
            "c-nat",
            UDP_VIA,
            "<sip:bob@10.0.0.5:5060>;expires=300",
            nat,
        ),
        (
            "sip:bob@localhost",
            "c-pub",
            UDP_VIA,
            "<sip:bob@192.0.2.10:5060>",
            public,
        ),
        (
            "sip:carol@localhost",
            "c-tcp",
            UDP_VIA,
            "<sip:x@abc.invalid;transport=tcp>",
            tcp,
        ),
    ];
    for (to, call_id, via, contact, f) in cases {
        let out = reg.handle_register(
            now,
            &register(to, call_id, 5, via, contact),
            f,
            f.remote,
            None,
        );
        assert_eq!(out.response.status, 200, "{to}");
        assert_eq!(out.store_error, None);
    }
    assert_eq!(reg.len(), 4);
    (ws, nat, public, tcp)
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join(STORE_FILE);
    (dir, path)
}

#[test]
fn settings_from_config() {
    let c = Config::default_config();
    let s = RegistrarSettings::from_config(&c);
    assert_eq!(s.store_path, Some(c.state_dir.join("registrar.redb")));
    assert_eq!(s.max_bindings_per_aor, DEFAULT_MAX_BINDINGS_PER_AOR);
    assert_eq!(s.domains, c.sip.domains);
    let off = Config::from_toml("[registrar]\npersist = false\n").unwrap();
    assert_eq!(RegistrarSettings::from_config(&off).store_path, None);
}

#[test]
fn restart_restores_only_address_reachable_bindings() {
    let (_dir, path) = tmp();
    let t0 = Instant::now();
    let (mut reg, report) = Registrar::open(settings(&path), t0, wall(T0)).unwrap();
    assert_eq!(report.path.as_deref(), Some(path.as_path()));
    assert_eq!(report.restored, 0);
    assert!(
        path.exists(),
        "the state directory and the file are created"
    );
    let (_ws, nat, public, _tcp) = populate(&mut reg, t0);
    let before: Vec<_> = reg.bindings("sip:bob@localhost").cloned().collect();
    // Writes are synced by flush() (the caller's timer), or on drop.
    assert!(reg.needs_flush());
    assert_eq!(reg.flush(), Ok(true));
    assert!(!reg.needs_flush());
    assert_eq!(reg.flush(), Ok(false));
    assert_eq!(reg.stats().store_errors, 0);
    drop(reg);

    // "Restart" 100 s later (a new process: another Instant base).
    let t1 = Instant::now() + Duration::from_secs(5000);
    let (mut reg, report) = Registrar::open(settings(&path), t1, wall(T0 + 100)).unwrap();
    assert_eq!(report.restored, 2, "{report:?}");
    assert_eq!(report.dropped_expired + report.dropped_undecodable, 0);
    assert_eq!(report.moved_aside, None);
    assert!(
        reg.lookup(t1, "sip:alice@localhost").is_empty(),
        "the browser's WebSocket is gone"
    );
    assert!(
        reg.lookup(t1, "sip:carol@localhost").is_empty(),
        "so is the TCP connection"
    );
    let bob = reg.lookup(t1, "sip:bob@localhost");
    assert_eq!(bob.len(), 2);
    let reaches: Vec<Reach> = bob.iter().map(|t| t.reach).collect();
    assert!(reaches.contains(&Reach::Flow(nat)));
    assert!(reaches.contains(&Reach::Route));
    for old in &before {
        let b = reg.binding(old.id).expect("ids survive");
        assert_eq!(b.contact, old.contact);
        assert_eq!(
            (b.call_id.as_str(), b.cseq),
            (old.call_id.as_str(), old.cseq)
        );
        assert_eq!(b.source, old.source);
        assert_eq!(b.user_agent.as_deref(), Some("ua/1"));
        // Expiry carried over in wall-clock time: 100 s have passed.
        let left = b.expires_at.duration_since(t1);
        let was = old.expires_at.duration_since(t0);
        assert_eq!(left + Duration::from_secs(100), was);
    }
    assert_eq!(reg.next_expiry(), Some(t1 + Duration::from_secs(200)));

    // CSeq ordering still holds against the restored state.
    let stale = register(
        "sip:bob@localhost",
        "c-pub",
        5,
        UDP_VIA,
        "<sip:bob@192.0.2.10:5060>",
    );
    assert_eq!(
        reg.handle_register(t1, &stale, public, public.remote, None)
            .response
            .status,
        400
    );
    // A new binding gets a fresh id.
    let new = register(
        "sip:dave@localhost",
        "c-new",
        1,
        UDP_VIA,
        "<sip:dave@192.0.2.20:5060>",
    );
    let d = flow(Transport::Udp, "192.0.2.20:5060", 0);
    let out = reg.handle_register(t1, &new, d, d.remote, None);
    assert!(before.iter().all(|b| b.id != out.changes[0].id));
    assert!(out.changes[0].id.0 > before.iter().map(|b| b.id.0).max().unwrap());
}

#[test]
fn expired_while_down_unregistered_and_expired_are_not_restored() {
    let (_dir, path) = tmp();
    let t0 = Instant::now();
    let (mut reg, _) = Registrar::open(settings(&path), t0, wall(T0)).unwrap();
    let (_, nat, public, _) = populate(&mut reg, t0);
    // Unregister the public phone.
    let un = register(
        "sip:bob@localhost",
        "c-pub",
        6,
        UDP_VIA,
        "<sip:bob@192.0.2.10:5060>;expires=0",
    );
    let out = reg.handle_register(t0, &un, public, public.remote, None);
    assert_eq!(out.changes.len(), 1);
    drop(reg);

    // Down for 400 s: the NAT phone (300 s) expired meanwhile.
    let t1 = Instant::now();
    let (reg, report) = Registrar::open(settings(&path), t1, wall(T0 + 400)).unwrap();
    assert_eq!(
        (report.restored, report.dropped_expired),
        (0, 1),
        "{report:?}"
    );
    assert!(reg.is_empty());
    // The dropped record is gone from the file too.
    drop(reg);
    let (reg, report) = Registrar::open(settings(&path), t1, wall(T0)).unwrap();
    assert_eq!((report.restored, report.dropped_expired), (0, 0));
    drop(reg);

    // expire() deletes from the store.
    let (mut reg, _) = Registrar::open(settings(&path), t1, wall(T0)).unwrap();
    let r = register(
        "sip:bob@localhost",
        "c-nat2",
        1,
        UDP_VIA,
        "<sip:bob@10.0.0.5:5060>;expires=60",
    );
    reg.handle_register(t1, &r, nat, nat.remote, None);
    assert_eq!(reg.expire(t1 + Duration::from_secs(60)).len(), 1);
    drop(reg);
    let (reg, report) = Registrar::open(settings(&path), t1, wall(T0)).unwrap();
    assert_eq!(report.restored, 0);
    assert!(reg.is_empty());
}

#[test]
fn a_binding_that_moves_to_a_connection_leaves_the_store() {
    let (_dir, path) = tmp();
    let t0 = Instant::now();
    let (mut reg, _) = Registrar::open(settings(&path), t0, wall(T0)).unwrap();
    let udp = flow(Transport::Udp, "203.0.113.9:40001", 0);
    let contact = "<sip:dev@abc.invalid>;reg-id=1;+sip.instance=\"<urn:uuid:z>\"";
    let r = register("sip:bob@localhost", "c", 1, UDP_VIA, contact);
    assert_eq!(
        reg.handle_register(t0, &r, udp, udp.remote, None)
            .response
            .status,
        200
    );
    // The same device (instance, reg-id) moves to a TLS connection.
    let tls = flow(Transport::Tls, "203.0.113.9:40002", 9);
    let r = register(
        "sip:bob@localhost",
        "c",
        2,
        "SIP/2.0/TLS abc.invalid;branch=z9hG4bK3",
        contact,
    );
    let out = reg.handle_register(t0, &r, tls, tls.remote, None);
    assert_eq!(out.response.status, 200);
    assert_eq!(
        reg.lookup(t0, "sip:bob@localhost")[0].reach,
        Reach::Flow(tls)
    );
    drop(reg);
    let (reg, report) = Registrar::open(settings(&path), t0, wall(T0 + 1)).unwrap();
    assert_eq!(report.restored, 0);
    assert!(reg.is_empty());
}

#[test]
fn corrupt_store_is_moved_aside_and_recreated() {
    let (dir, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        b"this is not a redb database, just some garbage bytes\n".repeat(200),
    )
    .unwrap();
    let t0 = Instant::now();
    let (mut reg, report) = Registrar::open(settings(&path), t0, wall(T0)).unwrap();
    let (aside, why) = report.moved_aside.clone().expect("corruption is reported");
    assert!(!why.is_empty());
    assert_eq!(aside.parent(), path.parent());
    assert!(aside
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("registrar.redb.corrupt-"));
    assert!(std::fs::read(&aside)
        .unwrap()
        .starts_with(b"this is not a redb"));
    // The fresh store works and persists.
    populate(&mut reg, t0);
    drop(reg);
    let (_reg, report) = Registrar::open(settings(&path), t0, wall(T0 + 1)).unwrap();
    assert_eq!(report.restored, 2);
    assert_eq!(report.moved_aside, None);
    drop(dir);
}

#[test]
fn damaged_records_are_dropped_not_fatal() {
    // A valid database whose content came from elsewhere: truncate the file
    // after some writes so that the tail is lost; opening must either
    // recover or move the file aside, never fail or panic.
    let (_dir, path) = tmp();
    let t0 = Instant::now();
    let (mut reg, _) = Registrar::open(settings(&path), t0, wall(T0)).unwrap();
    populate(&mut reg, t0);
    drop(reg);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let (reg, report) = Registrar::open(settings(&path), t0, wall(T0 + 1)).unwrap();
    assert!(report.restored <= 2);
    assert_eq!(reg.len(), report.restored);
}

#[test]
fn a_store_in_use_is_an_error_not_moved_aside() {
    let (_dir, path) = tmp();
    let t0 = Instant::now();
    let (_first, _) = Registrar::open(settings(&path), t0, wall(T0)).unwrap();
    let e = Registrar::open(settings(&path), t0, wall(T0)).unwrap_err();
    assert_eq!(e.path, path);
    assert!(!e.to_string().is_empty());
    let siblings = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(siblings, 1, "nothing was moved aside");
}

#[test]
fn unwritable_state_directory_is_an_error() {
    let (dir, _) = tmp();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    // A path below a regular file cannot be created.
    let e = Registrar::open(
        settings(&file.join("sub").join(STORE_FILE)),
        Instant::now(),
        wall(T0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("location store"));
}
