//! SIP transports on loopback: stream reassembly, keepalives, WebSocket
//! handshake policy and fragmentation, TLS/WSS, flows opening and closing,
//! bounded resources, outgoing connections. Every wait has a generous
//! deadline that only turns a hang into a failure; no test depends on timing.

mod sip_support;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::UnboundedReceiver;

use strait::sip::transport::{
    tls, CloseReason, SendError, SipTransport, Target, Transport, TransportConfig, TransportEvent,
};
use strait::sip::{Framing, Limits, Message, StreamFramer, StreamItem};

const GUARD: Duration = Duration::from_secs(20);

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().expect("literal")
}

async fn start(config: TransportConfig) -> (SipTransport, UnboundedReceiver<TransportEvent>) {
    let (t, events) = SipTransport::start(config).await.expect("start");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(sip_support::serve(t.clone(), events, tx));
    (t, rx)
}

/// Waits (bounded) for the first event matching `pred`.
async fn wait_event<F>(rx: &mut UnboundedReceiver<TransportEvent>, mut pred: F) -> TransportEvent
where
    F: FnMut(&TransportEvent) -> bool,
{
    tokio::time::timeout(GUARD, async {
        loop {
            let ev = rx.recv().await.expect("event channel open");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("event in time")
}

fn options(call_id: &str, via_host: &str, transport: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:strait.example SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {via_host};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:strait.example>\r\n\
         From: <sip:test@client.invalid>;tag=1\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Reads one SIP message from a stream.
async fn read_sip<S: AsyncRead + Unpin>(s: &mut S, framer: &mut StreamFramer) -> Message {
    tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(StreamItem::Message(b)) = framer.next_item().expect("framing") {
                return Message::parse_with(&b, &Limits::default(), Framing::Stream)
                    .expect("parse");
            }
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "connection closed while waiting for a message");
            framer.push(&buf[..n]).expect("push");
        }
    })
    .await
    .expect("message in time")
}

fn status(m: &Message) -> u16 {
    m.as_response().expect("a response").status
}

async fn read_to_eof<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .expect("EOF in time")
        .ok();
    out
}

// ------------------------------------------------------------------------------------------------
// TCP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reassembles_a_message_written_byte_by_byte() {
    let (t, mut ev) = start(TransportConfig {
        tcp: vec![lo()],
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(t.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    s.set_nodelay(true).unwrap();
    let local = s.local_addr().unwrap();
    for b in options("bytewise", "client.invalid", "TCP") {
        s.write_all(&[b]).await.unwrap();
        s.flush().await.unwrap();
    }
    let mut f = StreamFramer::new(Limits::default());
    let resp = read_sip(&mut s, &mut f).await;
    assert_eq!(status(&resp), 200);
    assert_eq!(resp.headers().call_id().unwrap(), "bytewise");
    // The server transport added received and rport (RFC 3261 §18.2.1, RFC 3581).
    let via = resp.headers().top_via().unwrap();
    assert_eq!(via.received(), Some(local.ip()));
    assert_eq!(via.rport(), Some(local.port()));

    // Two messages and a ping in one write.
    let mut two = options("first", "client.invalid", "TCP");
    two.extend_from_slice(b"\r\n\r\n");
    two.extend(options("second", "client.invalid", "TCP"));
    s.write_all(&two).await.unwrap();
    let a = read_sip(&mut s, &mut f).await;
    let b = read_sip(&mut s, &mut f).await;
    assert_eq!(
        (
            a.headers().call_id().unwrap(),
            b.headers().call_id().unwrap()
        ),
        ("first", "second")
    );

    let ev = wait_event(&mut ev, |e| matches!(e, TransportEvent::Message { .. })).await;
    let TransportEvent::Message { flow, source, .. } = ev else {
        unreachable!()
    };
    assert_eq!(
        (flow.transport, flow.remote, source),
        (Transport::Tcp, local, local)
    );
    assert_eq!(t.counters(Transport::Tcp).rx_messages, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_crlf_keepalive_is_answered() {
    let (t, _ev) = start(TransportConfig {
        tcp: vec![lo()],
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(t.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    s.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(GUARD, s.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    s.write_all(&options("after-ping", "client.invalid", "TCP"))
        .await
        .unwrap();
    let resp = read_sip(&mut s, &mut StreamFramer::new(Limits::default())).await;
    assert_eq!(status(&resp), 200);
    assert_eq!(t.counters(Transport::Tcp).keepalives, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_malformed_request_gets_a_400_naming_the_problem() {
    let (t, mut ev) = start(TransportConfig {
        tcp: vec![lo()],
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(t.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    let bad = String::from_utf8(options("badmf", "client.invalid", "TCP"))
        .unwrap()
        .replace("Max-Forwards: 70", "Max-Forwards: 7000");
    s.write_all(bad.as_bytes()).await.unwrap();
    let mut f = StreamFramer::new(Limits::default());
    let resp = read_sip(&mut s, &mut f).await;
    assert_eq!(status(&resp), 400);
    let reason = &resp.as_response().unwrap().reason;
    assert_eq!(reason, "Bad Request (malformed Max-Forwards header)");
    // The framing was fine, so the connection goes on.
    s.write_all(&options("good", "client.invalid", "TCP"))
        .await
        .unwrap();
    assert_eq!(status(&read_sip(&mut s, &mut f).await), 200);
    let e = wait_event(&mut ev, |e| matches!(e, TransportEvent::Malformed { .. })).await;
    assert!(matches!(
        e,
        TransportEvent::Malformed { answered: true, .. }
    ));
    assert_eq!(t.counters(Transport::Tcp).malformed_answered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_oversized_input_is_refused_and_the_connection_closed() {
    let (t, mut ev) = start(TransportConfig {
        tcp: vec![lo()],
        limits: Limits {
            max_message_size: 2048,
            max_headers: 32,
        },
        linger: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Tcp).unwrap();

    // A header announcing a body over the limit: 513, then close.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let big = String::from_utf8(options("big", "client.invalid", "TCP"))
        .unwrap()
        .replace("Content-Length: 0", "Content-Length: 100000");
    s.write_all(big.as_bytes()).await.unwrap();
    let rest = read_to_eof(&mut s).await;
    assert!(
        rest.starts_with(b"SIP/2.0 513 "),
        "{}",
        String::from_utf8_lossy(&rest)
    );

    // Endless garbage without an end of headers: closed, unanswered.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(&[b'x'; 5000]).await;
    assert!(read_to_eof(&mut s).await.is_empty());

    let mut framing_closes = 0;
    while framing_closes < 2 {
        let e = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
        if let TransportEvent::FlowClosed { reason, .. } = e {
            assert!(matches!(reason, CloseReason::Framing(_)), "{reason:?}");
            framing_closes += 1;
        }
    }
    assert_eq!(t.counters(Transport::Tcp).too_large, 2);
    assert_eq!(t.flow_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_disconnects_report_the_flow_closed_and_free_it() {
    let (t, mut ev) = start(TransportConfig {
        tcp: vec![lo()],
        ws: vec![lo()],
        ..Default::default()
    })
    .await;

    // TCP: a complete message, then half of another, then gone.
    let mut s = TcpStream::connect(t.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    s.write_all(&options("abrupt", "client.invalid", "TCP"))
        .await
        .unwrap();
    assert_eq!(
        status(&read_sip(&mut s, &mut StreamFramer::new(Limits::default())).await),
        200
    );
    s.write_all(&options("half", "client.invalid", "TCP")[..40])
        .await
        .unwrap();
    let opened = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowOpened { .. })).await;
    let TransportEvent::FlowOpened { flow, .. } = opened else {
        unreachable!()
    };
    assert!(t.is_open(&flow));
    drop(s);
    let closed = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
    let TransportEvent::FlowClosed { flow: f, reason } = closed else {
        unreachable!()
    };
    assert_eq!((f, reason), (flow, CloseReason::PeerClosed));
    assert!(!t.is_open(&flow));
    assert_eq!(
        t.send(&flow, &Message::parse(&options("x", "h", "TCP")).unwrap()),
        Err(SendError::UnknownFlow)
    );

    // WS: in the middle of a frame.
    let mut s = TcpStream::connect(t.local_addr(Transport::Ws).unwrap())
        .await
        .unwrap();
    let head = ws_handshake(&mut s, Some("sip"), None).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let frame = ws_frame(0x1, true, &options("ws-abrupt", "x.invalid", "WS"));
    s.write_all(&frame[..frame.len() / 2]).await.unwrap();
    drop(s);
    let closed = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
    let TransportEvent::FlowClosed { flow, .. } = closed else {
        unreachable!()
    };
    assert_eq!(flow.transport, Transport::Ws);
    assert_eq!(t.flow_count(), 0);
    assert_eq!(t.connection_count(), 0);
    for tr in [Transport::Tcp, Transport::Ws] {
        let c = t.counters(tr);
        assert_eq!((c.flows_opened, c.flows_closed), (1, 1), "{tr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_off_when_its_queue_fills() {
    let (t, mut ev) = start(TransportConfig {
        tcp: vec![lo()],
        send_queue: 4,
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(t.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    s.write_all(&options("stuck", "client.invalid", "TCP"))
        .await
        .unwrap();
    let TransportEvent::Message { flow, .. } =
        wait_event(&mut ev, |e| matches!(e, TransportEvent::Message { .. })).await
    else {
        unreachable!()
    };
    // 60 KB messages the client never reads: the kernel buffers fill, then
    // the bounded queue, and the flow is closed instead of buffering more.
    let mut big = Message::parse(&options("big", "client.invalid", "TCP")).unwrap();
    if let Message::Request(r) = &mut big {
        r.set_body(Some("text/plain"), vec![b'a'; 60_000]);
    }
    let mut full = false;
    for _ in 0..100_000 {
        match t.send(&flow, &big) {
            Ok(()) => tokio::task::yield_now().await,
            Err(SendError::QueueFull) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full, "the queue never filled");
    let e = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
    assert!(
        matches!(
            e,
            TransportEvent::FlowClosed {
                reason: CloseReason::SendQueueFull,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(t.flow_count(), 0);
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_is_enforced() {
    let (t, mut ev) = start(TransportConfig {
        tcp: vec![lo()],
        max_connections: 1,
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Tcp).unwrap();
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(&options("one", "client.invalid", "TCP"))
        .await
        .unwrap();
    assert_eq!(
        status(&read_sip(&mut first, &mut StreamFramer::new(Limits::default())).await),
        200
    );
    let mut second = TcpStream::connect(addr).await.unwrap();
    let _ = second
        .write_all(&options("two", "client.invalid", "TCP"))
        .await;
    assert!(read_to_eof(&mut second).await.is_empty());
    assert_eq!(t.counters(Transport::Tcp).connections_refused, 1);
    drop(first);
    wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
    // The slot is free again.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(&options("three", "client.invalid", "TCP"))
        .await
        .unwrap();
    assert_eq!(
        status(&read_sip(&mut third, &mut StreamFramer::new(Limits::default())).await),
        200
    );
}

// ------------------------------------------------------------------------------------------------
// UDP

async fn recv_udp(s: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(GUARD, s.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::parse(&buf[..n]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_answers_requests_and_malformed_requests_but_not_responses() {
    let (t, _ev) = start(TransportConfig {
        udp: vec![lo()],
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Udp).unwrap();
    let s = UdpSocket::bind(lo()).await.unwrap();
    // Keepalive and a stray response: ignored. Then a request: answered.
    s.send_to(b"\r\n\r\n", addr).await.unwrap();
    s.send_to(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: stray\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", addr).await.unwrap();
    s.send_to(&options("udp-1", "client.invalid", "UDP"), addr)
        .await
        .unwrap();
    let r = recv_udp(&s).await;
    assert_eq!((status(&r), r.headers().call_id().unwrap()), (200, "udp-1"));
    // Body shorter than Content-Length.
    let short = String::from_utf8(options("udp-2", "client.invalid", "UDP"))
        .unwrap()
        .replace("Content-Length: 0", "Content-Length: 10");
    s.send_to(short.as_bytes(), addr).await.unwrap();
    let r = recv_udp(&s).await;
    assert_eq!(status(&r), 400);
    assert!(r.as_response().unwrap().reason.contains("Content-Length"));
    let c = t.counters(Transport::Udp);
    assert_eq!(
        (c.keepalives, c.rx_messages, c.malformed_answered),
        (1, 2, 1)
    );

    // send_to over UDP.
    let req = Message::parse(&options("out", "strait.invalid", "UDP")).unwrap();
    let target = Target {
        transport: Transport::Udp,
        addr: s.local_addr().unwrap(),
        server_name: None,
    };
    let flow = t.send_to(&target, &req).await.unwrap();
    assert_eq!(
        (flow.transport, flow.conn, flow.local),
        (Transport::Udp, 0, addr)
    );
    let got = recv_udp(&s).await;
    assert_eq!(got.headers().call_id().unwrap(), "out");
}

// ------------------------------------------------------------------------------------------------
// WebSocket

/// Sends a client handshake and returns the response head.
async fn ws_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    protocol: Option<&str>,
    origin: Option<&str>,
) -> String {
    let mut req = String::from(
        "GET /sip?user=alice HTTP/1.1\r\nHost: strait.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    if let Some(p) = protocol {
        req.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    if let Some(o) = origin {
        req.push_str(&format!("Origin: {o}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    tokio::time::timeout(GUARD, async {
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.unwrap() == 0 {
                break;
            }
            head.push(b[0]);
        }
    })
    .await
    .unwrap();
    String::from_utf8(head).unwrap()
}

/// A masked client frame.
fn ws_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// Reads one server frame: (opcode, payload).
async fn ws_read<S: AsyncRead + Unpin>(s: &mut S) -> (u8, Vec<u8>) {
    tokio::time::timeout(GUARD, async {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.unwrap();
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let n = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).await.unwrap();
                usize::from(u16::from_be_bytes(l))
            }
            127 => {
                let mut l = [0u8; 8];
                s.read_exact(&mut l).await.unwrap();
                usize::try_from(u64::from_be_bytes(l)).unwrap()
            }
            n => usize::from(n),
        };
        let mut p = vec![0u8; n];
        s.read_exact(&mut p).await.unwrap();
        (h[0] & 0x0f, p)
    })
    .await
    .expect("frame in time")
}

/// Reads frames until a data frame (answering pings).
async fn ws_read_data<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> (u8, Vec<u8>) {
    loop {
        let (op, p) = ws_read(s).await;
        match op {
            0x9 => s.write_all(&ws_frame(0xA, true, &p)).await.unwrap(),
            0xA => {}
            _ => return (op, p),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_fragmented_and_binary_messages_are_reassembled() {
    let (t, mut ev) = start(TransportConfig {
        ws: vec![lo()],
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(t.local_addr(Transport::Ws).unwrap())
        .await
        .unwrap();
    let head = ws_handshake(&mut s, Some("foo, sip"), Some("https://app.example")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: sip\r\n"),
        "{head}"
    );

    let TransportEvent::FlowOpened { flow, ws } =
        wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowOpened { .. })).await
    else {
        unreachable!()
    };
    let ws = ws.expect("handshake info");
    assert_eq!(
        (ws.path.as_str(), ws.origin.as_deref()),
        ("/sip?user=alice", Some("https://app.example"))
    );
    assert_eq!(flow.transport, Transport::Ws);

    // One SIP message in three frames: text, continuation, continuation+FIN.
    let msg = options("fragmented", "df7jal23ls0d.invalid", "WS");
    let (a, rest) = msg.split_at(50);
    let (b, c) = rest.split_at(100);
    let mut frames = ws_frame(0x1, false, a);
    frames.extend(ws_frame(0x0, false, b));
    frames.extend(ws_frame(0x0, true, c));
    s.write_all(&frames).await.unwrap();
    let (op, p) = ws_read_data(&mut s).await;
    assert_eq!(op, 0x1, "answered as text");
    let resp = Message::parse(&p).unwrap();
    assert_eq!(
        (status(&resp), resp.headers().call_id().unwrap()),
        (200, "fragmented")
    );
    let via = resp.headers().top_via().unwrap();
    assert!(via.host().is_invalid_domain());
    assert_eq!(via.received(), Some("127.0.0.1".parse().unwrap()));

    // A binary message works too.
    s.write_all(&ws_frame(
        0x2,
        true,
        &options("binary", "df7jal23ls0d.invalid", "WS"),
    ))
    .await
    .unwrap();
    let (_, p) = ws_read_data(&mut s).await;
    assert_eq!(
        Message::parse(&p).unwrap().headers().call_id().unwrap(),
        "binary"
    );

    // CRLF keepalive in a WebSocket message (what SIP.js sends).
    s.write_all(&ws_frame(0x1, true, b"\r\n\r\n"))
        .await
        .unwrap();
    assert_eq!(ws_read_data(&mut s).await, (0x1, b"\r\n".to_vec()));
    assert_eq!(t.counters(Transport::Ws).keepalives, 1);

    // A message over the limit (64 KiB) closes with 1009.
    s.write_all(&ws_frame(0x1, true, &vec![b'x'; 70_000]))
        .await
        .unwrap();
    let (op, p) = ws_read(&mut s).await;
    assert_eq!((op, &p[..2]), (0x8, 1009u16.to_be_bytes().as_slice()));
    let e = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
    assert!(
        matches!(
            e,
            TransportEvent::FlowClosed {
                reason: CloseReason::TooLarge,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_handshake_without_the_sip_subprotocol_is_refused() {
    let (t, mut ev) = start(TransportConfig {
        ws: vec![lo()],
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Ws).unwrap();
    for proto in [None, Some("chat"), Some("sipx")] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = ws_handshake(&mut s, proto, None).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{proto:?}: {head}");
        let body = read_to_eof(&mut s).await;
        assert!(String::from_utf8_lossy(&body).contains("'sip' subprotocol"));
    }
    assert_eq!(t.counters(Transport::Ws).subprotocol_refused, 3);
    assert_eq!(t.flow_count(), 0);
    // Nothing was opened.
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(ws_handshake(&mut s, Some("sip"), None)
        .await
        .starts_with("HTTP/1.1 101"));
    let e = wait_event(&mut ev, |_| true).await;
    assert!(matches!(e, TransportEvent::FlowOpened { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_origin_allow_list() {
    let (t, _ev) = start(TransportConfig {
        ws: vec![lo()],
        ws_allowed_origins: vec!["https://good.example".into()],
        ..Default::default()
    })
    .await;
    let addr = t.local_addr(Transport::Ws).unwrap();
    for origin in [Some("https://evil.example"), None] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = ws_handshake(&mut s, Some("sip"), origin).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{origin:?}: {head}");
    }
    assert_eq!(t.counters(Transport::Ws).origin_refused, 2);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = ws_handshake(&mut s, Some("sip"), Some("https://GOOD.example")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(&ws_frame(0x1, true, &options("allowed", "x.invalid", "WS")))
        .await
        .unwrap();
    let (_, p) = ws_read_data(&mut s).await;
    assert_eq!(status(&Message::parse(&p).unwrap()), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_server_pings_and_closes_idle_flows() {
    let (t, mut ev) = start(TransportConfig {
        ws: vec![lo()],
        ws_ping_interval: Some(Duration::from_millis(20)),
        idle_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(t.local_addr(Transport::Ws).unwrap())
        .await
        .unwrap();
    assert!(ws_handshake(&mut s, Some("sip"), None)
        .await
        .starts_with("HTTP/1.1 101"));
    // A ping arrives; we do not answer, so the flow eventually idles out.
    let (op, _) = ws_read(&mut s).await;
    assert_eq!(op, 0x9);
    let e = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
    assert!(
        matches!(
            e,
            TransportEvent::FlowClosed {
                reason: CloseReason::IdleTimeout,
                ..
            }
        ),
        "{e:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// TLS and WSS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_wss_with_a_self_signed_certificate() {
    let ck = tls::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let chain = ck.chain.clone();
    let (t, mut ev) = start(TransportConfig {
        tls: vec![lo()],
        wss: vec![lo()],
        tls_server: Some(tls::server_config(ck).unwrap()),
        tls_client: Some(tls::client_config(&chain).unwrap()),
        ..Default::default()
    })
    .await;
    let connector = tokio_rustls::TlsConnector::from(tls::client_config(&chain).unwrap());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    // SIP over TLS.
    let tcp = TcpStream::connect(t.local_addr(Transport::Tls).unwrap())
        .await
        .unwrap();
    let mut s = connector.connect(name.clone(), tcp).await.unwrap();
    s.write_all(&options("tls", "client.invalid", "TLS"))
        .await
        .unwrap();
    s.flush().await.unwrap();
    let resp = read_sip(&mut s, &mut StreamFramer::new(Limits::default())).await;
    assert_eq!(
        (status(&resp), resp.headers().call_id().unwrap()),
        (200, "tls")
    );

    // SIP over secure WebSocket.
    let tcp = TcpStream::connect(t.local_addr(Transport::Wss).unwrap())
        .await
        .unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    assert!(ws_handshake(&mut s, Some("sip"), None)
        .await
        .starts_with("HTTP/1.1 101"));
    s.write_all(&ws_frame(0x1, true, &options("wss", "x.invalid", "WSS")))
        .await
        .unwrap();
    s.flush().await.unwrap();
    let (_, p) = ws_read_data(&mut s).await;
    assert_eq!(
        Message::parse(&p).unwrap().headers().call_id().unwrap(),
        "wss"
    );

    // A plain-text client on the TLS port fails the handshake.
    let mut plain = TcpStream::connect(t.local_addr(Transport::Tls).unwrap())
        .await
        .unwrap();
    let _ = plain
        .write_all(&options("plain", "client.invalid", "TCP"))
        .await;
    read_to_eof(&mut plain).await;
    assert_eq!(t.counters(Transport::Tls).handshake_failures, 1);

    // Outgoing TLS, to our own TLS listener: the request arrives on an
    // inbound flow, its answer comes back on the outgoing one.
    let req = Message::parse(&options("loop", "strait.invalid", "TLS")).unwrap();
    let target = Target {
        transport: Transport::Tls,
        addr: t.local_addr(Transport::Tls).unwrap(),
        server_name: Some("localhost".into()),
    };
    let out = t.send_to(&target, &req).await.unwrap();
    let e = wait_event(&mut ev, |e| {
        matches!(
            e,
            TransportEvent::Message {
                message: Message::Response(_),
                ..
            }
        )
    })
    .await;
    let TransportEvent::Message { flow, message, .. } = e else {
        unreachable!()
    };
    assert_eq!(flow, out);
    assert_eq!(
        (status(&message), message.headers().call_id().unwrap()),
        (200, "loop")
    );
}

// ------------------------------------------------------------------------------------------------
// Outgoing connections

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_tcp_connection_is_reused_and_carries_answers() {
    let (t, mut ev) = start(TransportConfig {
        tcp: vec![lo()],
        ..Default::default()
    })
    .await;
    let peer = TcpListener::bind(lo()).await.unwrap();
    let target = Target {
        transport: Transport::Tcp,
        addr: peer.local_addr().unwrap(),
        server_name: None,
    };
    let req = Message::parse(&options("out-1", "strait.invalid", "TCP")).unwrap();
    let flow = t.send_to(&target, &req).await.unwrap();
    let (mut conn, _) = tokio::time::timeout(GUARD, peer.accept())
        .await
        .unwrap()
        .unwrap();
    let mut f = StreamFramer::new(Limits::default());
    let got = read_sip(&mut conn, &mut f).await;
    assert_eq!(got.headers().call_id().unwrap(), "out-1");

    // The same connection is reused.
    let req2 = Message::parse(&options("out-2", "strait.invalid", "TCP")).unwrap();
    assert_eq!(t.send_to(&target, &req2).await.unwrap(), flow);
    assert_eq!(
        read_sip(&mut conn, &mut f)
            .await
            .headers()
            .call_id()
            .unwrap(),
        "out-2"
    );

    // The peer's answer arrives on that flow.
    let Message::Request(r) = &got else {
        panic!("request")
    };
    let resp = strait::sip::Response::from_request(r, 200);
    conn.write_all(&resp.to_bytes()).await.unwrap();
    let e = wait_event(&mut ev, |e| matches!(e, TransportEvent::Message { .. })).await;
    let TransportEvent::Message {
        flow: f2, message, ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!((f2, status(&message)), (flow, 200));

    // Closing it from our side is reported; what was sent before the close
    // still arrives.
    let req3 = Message::parse(&options("last-words", "strait.invalid", "TCP")).unwrap();
    t.send(&flow, &req3).unwrap();
    assert!(t.close(&flow));
    let rest = read_to_eof(&mut conn).await;
    let mut f3 = StreamFramer::new(Limits::default());
    f3.push(&rest).unwrap();
    let Some(StreamItem::Message(last)) = f3.next_item().unwrap() else {
        panic!("no message before the close: {rest:?}")
    };
    assert_eq!(
        Message::parse(&last).unwrap().headers().call_id().unwrap(),
        "last-words"
    );
    let e = wait_event(&mut ev, |e| matches!(e, TransportEvent::FlowClosed { .. })).await;
    assert!(
        matches!(
            e,
            TransportEvent::FlowClosed {
                reason: CloseReason::Closed,
                ..
            }
        ),
        "{e:?}"
    );

    // Nothing listens here any more.
    drop(peer);
    assert_eq!(
        t.send_to(&target, &req).await,
        Err(SendError::ConnectFailed)
    );
    // WebSocket flows are only opened by browsers.
    let ws_target = Target {
        transport: Transport::Ws,
        addr: target.addr,
        server_name: None,
    };
    assert_eq!(
        t.send_to(&ws_target, &req).await,
        Err(SendError::Unsupported)
    );
    t.shutdown();
    assert_eq!(t.send_to(&target, &req).await, Err(SendError::Shutdown));
}
