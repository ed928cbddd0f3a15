//! The signalling service end to end on loopback: a browser-style client
//! registers over WebSocket (digest challenge, wrong password, OPTIONS,
//! INVITE and MESSAGE challenged, binding gone when the socket closes), a legacy
//! client over UDP, a generated certificate that survives a restart, and a
//! listener that cannot bind named by its configuration key.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use strait::auth::client_authorization;
use strait::config::Config;
use strait::signalling::Signalling;
use strait::sip::{HeaderName, Message, Response, Transport};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(10);

fn config(state_dir: &std::path::Path, udp: &str, wss: &str) -> Config {
    let text = format!(
        "state_dir = {:?}\n[sip]\nws = \"127.0.0.1:0\"\nwss = \"{wss}\"\nudp = \"{udp}\"\n\
         tcp = \"off\"\ntls = \"off\"\n[registrar]\npersist = false\n",
        state_dir.display().to_string()
    );
    Config::from_toml(&text).expect("test configuration is valid")
}

type Ws = WebSocketStream<TcpStream>;

async fn ws_connect(addr: SocketAddr) -> Ws {
    let mut req = format!("ws://{addr}/")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().expect("header"));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (ws, resp) = timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("sip")
    );
    ws
}

async fn ws_request(ws: &mut Ws, text: &str) -> Response {
    ws.send(WsMessage::text(text.to_string()))
        .await
        .expect("send");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a response in time")
            .expect("stream open")
            .expect("read");
        let data: Vec<u8> = match msg {
            WsMessage::Text(t) => t.as_bytes().to_vec(),
            WsMessage::Binary(b) => b.to_vec(),
            _ => continue,
        };
        match Message::parse(&data).expect("a SIP message") {
            Message::Response(r) if r.status >= 200 => return r,
            Message::Response(_) => continue,
            Message::Request(r) => panic!("unexpected request {}", r.method.as_str()),
        }
    }
}

async fn udp_request(sock: &UdpSocket, to: SocketAddr, text: &str) -> Response {
    sock.send_to(text.as_bytes(), to).await.expect("send");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .expect("a response in time")
            .expect("recv");
        if let Ok(Message::Response(r)) = Message::parse(&buf[..n]) {
            if r.status >= 200 {
                return r;
            }
        }
    }
}

const INSTANCE: &str = "<urn:uuid:5d0e8f53-4a4c-4c0e-9f8a-0f0d1a2b3c4d>";

/// What JsSIP sends.
fn jssip_register(user: &str, cseq: u32, branch: &str, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:localhost SIP/2.0\r\n\
         Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 69\r\n\
         To: <sip:{user}@localhost>\r\n\
         From: \"{user}\" <sip:{user}@localhost>;tag=8mh2c5obuv\r\n\
         Call-ID: q7drd6a4ef6a3vbb8nkk{user}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;\
         +sip.instance=\"{INSTANCE}\";expires=600\r\n\
         Expires: 600\r\n\
         Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n\
         Supported: path,gruu,outbound\r\n\
         User-Agent: JsSIP 3.10.0\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

fn ws_simple(method: &str, branch: &str) -> String {
    format!(
        "{method} sip:bob@localhost SIP/2.0\r\n\
         Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 69\r\nTo: <sip:bob@localhost>\r\n\
         From: <sip:alice@localhost>;tag=ftag{branch}\r\nCall-ID: call{branch}\r\n\
         CSeq: 1 {method}\r\nContact: <sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn first_challenge(r: &Response) -> String {
    r.headers
        .get(HeaderName::WwwAuthenticate)
        .expect("a WWW-Authenticate")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_registers_over_websocket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svc = Signalling::start(&config(dir.path(), "127.0.0.1:0", "off"))
        .await
        .expect("service starts");
    let ws_addr = svc.local_addr(Transport::Ws).expect("ws listener");
    let mut ws = ws_connect(ws_addr).await;

    // No credentials: 401 with an MD5 challenge first (what JsSIP reads).
    let r = ws_request(&mut ws, &jssip_register("alice", 1, "a1", None)).await;
    assert_eq!(r.status, 401);
    let challenge = first_challenge(&r);
    assert!(challenge.contains("algorithm=MD5"), "{challenge}");
    assert!(challenge.contains("realm=\"strait\""), "{challenge}");

    // The answer lets alice in.
    let creds = client_authorization(
        &challenge,
        "alice",
        "alice-secret",
        "REGISTER",
        "sip:localhost",
        b"",
        "c0ffee01",
        1,
    )
    .expect("usable challenge");
    let r = ws_request(&mut ws, &jssip_register("alice", 2, "a2", Some(&creds))).await;
    assert_eq!(r.status, 200, "{:?}", r.reason);
    let contact = r.headers.get(HeaderName::Contact).expect("Contact in 200");
    assert!(
        contact.contains("k4k6pgls@df7jal23ls0d.invalid"),
        "{contact}"
    );
    assert!(contact.contains("expires=600"), "{contact}");
    let targets = svc.lookup("sip:alice@localhost");
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].request_uri.to_string(),
        "sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws"
    );

    // Wrong password: 403, and no binding for bob.
    let r = ws_request(&mut ws, &jssip_register("bob", 1, "b1", None)).await;
    assert_eq!(r.status, 401);
    let creds = client_authorization(
        &first_challenge(&r),
        "bob",
        "not-bobs-password",
        "REGISTER",
        "sip:localhost",
        b"",
        "c0ffee02",
        1,
    )
    .expect("usable challenge");
    let r = ws_request(&mut ws, &jssip_register("bob", 2, "b2", Some(&creds))).await;
    assert_eq!(r.status, 403);
    assert!(svc.lookup("sip:bob@localhost").is_empty());

    // OPTIONS: 200 with what we support.
    let r = ws_request(&mut ws, &ws_simple("OPTIONS", "o1")).await;
    assert_eq!(r.status, 200);
    let allow = r.headers.get(HeaderName::Allow).expect("Allow");
    assert!(
        allow.contains("REGISTER") && allow.contains("INVITE"),
        "{allow}"
    );
    assert!(r.headers.get(HeaderName::Supported).is_some());
    assert!(r.headers.get(HeaderName::Accept).is_some());

    // INVITE and MESSAGE from a browser must authenticate (407).
    for (method, branch) in [("INVITE", "i1"), ("MESSAGE", "m1")] {
        let r = ws_request(&mut ws, &ws_simple(method, branch)).await;
        assert_eq!(r.status, 407, "{method}");
        assert!(r.headers.get(HeaderName::ProxyAuthenticate).is_some());
    }
    // An unknown method: 501.
    let r = ws_request(&mut ws, &ws_simple("FROB", "f1")).await;
    assert_eq!(r.status, 501);

    let counters = svc.counters();
    assert_eq!(counters.requests[0], 4, "REGISTERs: {counters}");
    assert_eq!(counters.auth_challenges, 4);
    assert_eq!(counters.auth_rejections, 1);

    // The browser goes away: so does its binding.
    let mut progress = svc.progress();
    ws.close(None).await.expect("close");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !svc.lookup("sip:alice@localhost").is_empty() {
        tokio::time::timeout_at(deadline, progress.changed())
            .await
            .expect("binding removed in time")
            .expect("service running");
    }
    assert_eq!(svc.registrar_stats().bindings, 0);
    assert!(svc.counters().bindings_dropped_on_close >= 1);
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_client_registers_over_udp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svc = Signalling::start(&config(dir.path(), "127.0.0.1:0", "off"))
        .await
        .expect("service starts");
    let server = svc.local_addr(Transport::Udp).expect("udp listener");
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let me = sock.local_addr().expect("addr");
    let register = |cseq: u32, auth: Option<&str>| {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKudp{cseq};rport\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\n\
             From: <sip:bob@127.0.0.1>;tag=legacy1\r\nCall-ID: legacy-call-1\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <sip:bob@{me}>\r\nExpires: 3600\r\n\
             User-Agent: desk-phone/1.0\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let r = udp_request(&sock, server, &register(1, None)).await;
    assert_eq!(r.status, 401);
    let challenge = first_challenge(&r);
    // Not a browser: the stronger algorithm first.
    assert!(challenge.contains("algorithm=SHA-256"), "{challenge}");
    let creds = client_authorization(
        &challenge,
        "bob",
        "bob-secret",
        "REGISTER",
        "sip:127.0.0.1",
        b"",
        "0a4f113b",
        1,
    )
    .expect("usable challenge");
    let r = udp_request(&sock, server, &register(2, Some(&creds))).await;
    assert_eq!(r.status, 200, "{:?}", r.reason);
    let contact = r.headers.get(HeaderName::Contact).expect("Contact");
    assert!(contact.contains(&me.to_string()), "{contact}");
    // Both configured domains name the same AOR.
    let targets = svc.lookup("sip:bob@localhost");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].request_uri.to_string(), format!("sip:bob@{me}"));
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_certificate_is_generated_once_and_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state"); // created by the service
    let cfg = config(&state, "127.0.0.1:0", "127.0.0.1:0");
    let svc = Signalling::start(&cfg).await.expect("service starts");
    assert!(svc.local_addr(Transport::Wss).is_some());
    let cert = svc
        .generated_certificate()
        .expect("a certificate was generated")
        .to_path_buf();
    let pem = std::fs::read(&cert).expect("certificate kept");
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    svc.shutdown().await;

    let svc = Signalling::start(&cfg).await.expect("service restarts");
    assert!(
        svc.generated_certificate().is_none(),
        "reused, not regenerated"
    );
    assert_eq!(std::fs::read(&cert).expect("still there"), pem);
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_cannot_bind_names_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let cfg = config(dir.path(), &addr.to_string(), "off");
    let err = Signalling::start(&cfg)
        .await
        .expect_err("the port is taken");
    assert_eq!(err.key, "sip.udp");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("configuration key sip.udp: cannot bind {addr}:")),
        "{text}"
    );
}
