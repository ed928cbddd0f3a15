//! The web phone page on the WS/WSS listeners, over real loopback sockets:
//! plain HTTP GETs get the embedded files, other paths 404, other methods
//! 405, malformed or oversized heads 400/431 (counted), `web_phone = false`
//! 404 for everything, and WebSocket upgrades still work on the same
//! listener. Every wait has a generous deadline that only turns a hang into a
//! failure; no test depends on timing.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;

use strait::sip::transport::{tls, SipTransport, Transport, TransportConfig, TransportEvent};
use strait::sip::Message;

const GUARD: Duration = Duration::from_secs(20);

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().expect("literal")
}

fn web_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/web"))
}

/// One HTTP response, read to EOF (the server closes after answering).
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_to_eof<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .expect("EOF in time")
        .expect("read");
    out
}

fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().expect("status code");
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Resp {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// Sends `request` as is and reads the whole answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, request: &[u8]) -> Resp {
    s.write_all(request).await.expect("write");
    s.flush().await.expect("flush");
    let r = parse_response(&read_to_eof(s).await);
    assert_eq!(r.header("Connection"), Some("close"), "{r:?}");
    let len: usize = r
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .expect("a number");
    if !request.starts_with(b"HEAD ") {
        assert_eq!(len, r.body.len(), "Content-Length matches the body");
    }
    r
}

async fn get(addr: SocketAddr, path: &str) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    exchange(&mut s, req.as_bytes()).await
}

async fn start(config: TransportConfig) -> (SipTransport, Receiver<TransportEvent>) {
    SipTransport::start(config).await.expect("start")
}

/// A WebSocket upgrade offering `sip`: returns the response head.
async fn ws_upgrade<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> String {
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: strait.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: sip\r\n\r\n",
    )
    .await
    .expect("write");
    s.flush().await.expect("flush");
    let mut head = Vec::new();
    tokio::time::timeout(GUARD, async {
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.expect("read") == 0 {
                break;
            }
            head.push(b[0]);
        }
    })
    .await
    .expect("handshake answer in time");
    String::from_utf8(head).expect("ASCII head")
}

/// A masked client text frame.
fn ws_text(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | u8::try_from(n).expect("small"));
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&u16::try_from(n).expect("fits").to_be_bytes());
    }
    let key = [0x11, 0x22, 0x33, 0x44];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

const OPTIONS: &[u8] = b"OPTIONS sip:strait.example SIP/2.0\r\n\
    Via: SIP/2.0/WS client.invalid;branch=z9hG4bK-web1\r\n\
    Max-Forwards: 70\r\nTo: <sip:strait.example>\r\nFrom: <sip:t@client.invalid>;tag=1\r\n\
    Call-ID: web-phone-upgrade\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

/// Upgrades, sends an OPTIONS and waits for it to arrive as a message.
async fn upgrade_and_deliver<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    ev: &mut Receiver<TransportEvent>,
) {
    let head = ws_upgrade(s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: sip\r\n"),
        "{head}"
    );
    s.write_all(&ws_text(OPTIONS)).await.expect("write");
    s.flush().await.expect("flush");
    let got = tokio::time::timeout(GUARD, async {
        loop {
            match ev.recv().await.expect("event channel open") {
                TransportEvent::Message { message, .. } => return message,
                _ => continue,
            }
        }
    })
    .await
    .expect("message in time");
    let Message::Request(r) = got else {
        panic!("expected the OPTIONS request")
    };
    assert_eq!(r.headers.call_id().expect("Call-ID"), "web-phone-upgrade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_listener_serves_the_page_and_still_upgrades() {
    let (t, mut ev) = start(TransportConfig {
        ws: vec![lo()],
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Ws).expect("ws listener");

    let index = std::fs::read(web_dir().join("index.html")).expect("web/index.html");
    for path in ["/", "/index.html", "/?user=alice"] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.body, index, "{path} is web/index.html");
        let html = String::from_utf8_lossy(&r.body);
        assert!(html.contains("<title>Strait web phone</title>"));
        // The page loads the two scripts from where they are served.
        assert!(html.contains(r#"<script src="jssip.js"></script>"#));
        assert!(html.contains(r#"<script src="phone.js"></script>"#));
    }

    let phone = get(addr, "/phone.js").await;
    assert_eq!(phone.status, 200);
    assert_eq!(
        phone.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        phone.body,
        std::fs::read(web_dir().join("phone.js")).expect("web/phone.js")
    );

    let jssip = get(addr, "/jssip.js").await;
    assert_eq!(jssip.status, 200);
    assert_eq!(
        jssip.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    // The npm-built bundle when it exists (build.rs embeds it and rebuilds
    // when it changes), else the placeholder that says how to build it.
    match std::fs::read(web_dir().join("build/jssip.js")) {
        Ok(bundle) if !bundle.is_empty() => {
            assert_eq!(jssip.body, bundle, "/jssip.js is web/build/jssip.js");
            assert!(String::from_utf8_lossy(&jssip.body).contains("JsSIP"));
        }
        _ => assert!(String::from_utf8_lossy(&jssip.body).contains("JsSIP bundle not built")),
    }

    // HEAD: the same headers, no body.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = exchange(&mut s, b"HEAD /phone.js HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("Content-Length"),
        Some(phone.body.len().to_string().as_str())
    );

    for path in [
        "/nope",
        "/build/jssip.js",
        "/web/index.html",
        "/../index.html",
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 404, "{path}");
    }
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let post = exchange(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));

    // Served files and refusals are counted; no flow was opened for them.
    let c = t.counters(Transport::Ws);
    assert_eq!((c.http_served, c.http_refused), (6, 5), "{c:?}");
    assert_eq!(c.flows_opened, 0);

    // The WebSocket side of the same listener is unaffected.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    upgrade_and_deliver(&mut s, &mut ev).await;
    assert_eq!(t.counters(Transport::Ws).flows_opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_phone_off_answers_404_but_upgrades() {
    let (t, mut ev) = start(TransportConfig {
        ws: vec![lo()],
        web_phone: false,
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Ws).expect("ws listener");
    for path in ["/", "/index.html", "/phone.js", "/jssip.js", "/nope"] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&r.body).contains("Strait web phone"));
    }
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(
        exchange(&mut s, b"DELETE / HTTP/1.1\r\n\r\n").await.status,
        404
    );
    let c = t.counters(Transport::Ws);
    assert_eq!((c.http_served, c.http_refused), (0, 6), "{c:?}");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    upgrade_and_deliver(&mut s, &mut ev).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_listener_serves_the_page_over_tls() {
    let ck = tls::self_signed(&["localhost"]).expect("certificate");
    let chain = ck.chain.clone();
    let (t, mut ev) = start(TransportConfig {
        wss: vec![lo()],
        tls_server: Some(tls::server_config(ck).expect("server config")),
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Wss).expect("wss listener");
    let connector =
        tokio_rustls::TlsConnector::from(tls::client_config(&chain).expect("client config"));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");

    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut s = connector
        .connect(name.clone(), tcp)
        .await
        .expect("TLS handshake");
    let r = exchange(&mut s, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("<title>Strait web phone</title>"));

    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut s = connector.connect(name, tcp).await.expect("TLS handshake");
    upgrade_and_deliver(&mut s, &mut ev).await;
    assert_eq!(t.counters(Transport::Wss).http_served, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_answered_counted_and_survived() {
    let (t, mut ev) = start(TransportConfig {
        ws: vec![lo()],
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Ws).expect("ws listener");

    // Not HTTP at all.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let r = exchange(&mut s, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").await;
    assert_eq!(r.status, 400);
    // A request line only a fuzzer would send.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let r = exchange(&mut s, b"GET /\x7f HTTP/1.1\r\n\r\n").await;
    assert_eq!(r.status, 400);
    // A head that never ends within the size limit: answered 431 once the
    // limit is reached, without waiting for the rest.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut big = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    big.resize(64 * 1024, b'a');
    // The server stops reading at its limit and answers; the rest of our
    // write may fail with a reset, which is fine.
    let _ = s.write_all(&big).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(GUARD, s.read_to_end(&mut raw))
        .await
        .expect("answer in time");
    assert!(
        raw.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // Too many header lines.
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let r = exchange(&mut s, format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).await;
    assert_eq!(r.status, 431);

    let c = t.counters(Transport::Ws);
    assert_eq!((c.malformed_answered, c.too_large), (4, 2), "{c:?}");
    assert_eq!((c.http_served, c.flows_opened), (0, 0), "{c:?}");

    // A head written one byte at a time is still understood.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    for b in b"GET /phone.js HTTP/1.1\r\nHost: x\r\n\r\n" {
        s.write_all(&[*b]).await.expect("write");
        s.flush().await.expect("flush");
    }
    assert_eq!(parse_response(&read_to_eof(&mut s).await).status, 200);

    // And the listener still upgrades.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    upgrade_and_deliver(&mut s, &mut ev).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_head_is_cut_off_at_the_handshake_deadline() {
    let (t, _ev) = start(TransportConfig {
        ws: vec![lo()],
        handshake_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Ws).expect("ws listener");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // The server closes without answering once the deadline passes.
    assert!(read_to_eof(&mut s).await.is_empty());
    let c = t.counters(Transport::Ws);
    assert_eq!((c.handshake_failures, c.http_served), (1, 0), "{c:?}");
    // Its connection slot is released (the task ends just after the close).
    tokio::time::timeout(GUARD, async {
        while t.connection_count() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("connection released in time");
}
