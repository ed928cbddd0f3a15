//! The ng listeners on loopback: a proxy's view over UDP and TCP, with a
//! small in-memory call table as the handler.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use strait::ng::bencode::{decode, Limits, Owned, Value};
use strait::ng::reply::{CallInfo, DeleteReply, NgError, SdpReply, Statistics, TagInfo};
use strait::ng::{
    AllowList, Context, Delete, List, NgConfig, NgHandler, NgRuntime, OfferAnswer, Query,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Calls by call-id: the tags seen.
#[derive(Default)]
struct Calls {
    calls: BTreeMap<String, Vec<String>>,
    offers: usize,
}

impl NgHandler for Calls {
    fn offer(&mut self, _: &Context, o: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
        self.offers += 1;
        self.calls
            .entry(o.call_id.to_string())
            .or_default()
            .push(o.from_tag.to_string());
        Ok(SdpReply {
            sdp: o.sdp.replace("192.0.2.1", "127.0.0.1"),
            warning: None,
        })
    }

    fn answer(&mut self, _: &Context, o: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
        let tags = self
            .calls
            .get_mut(o.call_id)
            .ok_or(NgError::UnknownCallId)?;
        tags.push(o.to_tag.unwrap_or_default().to_string());
        Ok(SdpReply {
            sdp: o.sdp.to_string(),
            warning: None,
        })
    }

    fn delete(&mut self, _: &Context, d: &Delete<'_>) -> Result<DeleteReply, NgError> {
        self.calls
            .remove(d.call_id)
            .map(|_| DeleteReply::default())
            .ok_or(NgError::CallNotFound)
    }

    fn query(&mut self, _: &Context, q: &Query<'_>) -> Result<CallInfo, NgError> {
        let tags = self.calls.get(q.call_id).ok_or(NgError::UnknownCallId)?;
        Ok(CallInfo {
            tags: tags
                .iter()
                .map(|t| TagInfo {
                    tag: t.clone(),
                    ..TagInfo::default()
                })
                .collect(),
            ..CallInfo::default()
        })
    }

    fn list(&mut self, _: &Context, _: &List) -> Result<Vec<String>, NgError> {
        Ok(self.calls.keys().cloned().collect())
    }

    fn statistics(&mut self, _: &Context) -> Result<Statistics, NgError> {
        let mut s = Statistics::default();
        s.current.sessions_total = self.calls.len() as u64;
        Ok(s)
    }
}

/// Test ports stay below 32768 (clear of the ephemeral range): try a few
/// in a fixed window until one is free.
async fn start(config: NgConfig) -> NgRuntime<Calls> {
    for port in 22_300..22_400 {
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        match NgRuntime::start(listen, config.clone(), Calls::default()).await {
            Ok(rt) => return rt,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("start: {e}"),
        }
    }
    panic!("no free port in 22300..22400");
}

async fn client() -> UdpSocket {
    for port in 22_400..22_500 {
        if let Ok(s) = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
            return s;
        }
    }
    panic!("no free client port");
}

/// A TCP connection from a local port below 32768 too.
async fn tcp_client(to: SocketAddr) -> TcpStream {
    for port in 22_500..22_600 {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        if sock.bind(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
            continue;
        }
        if let Ok(s) = sock.connect(to).await {
            return s;
        }
    }
    panic!("no free client port");
}

/// Sends a datagram and waits (bounded) for the reply.
async fn request(sock: &UdpSocket, to: SocketAddr, cookie: &str, d: &Owned) -> Owned {
    let mut msg = format!("{cookie} ").into_bytes();
    d.encode(&mut msg);
    sock.send_to(&msg, to).await.expect("send");
    recv(sock, cookie).await
}

async fn recv(sock: &UdpSocket, cookie: &str) -> Owned {
    let mut buf = vec![0u8; 65_536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("a reply within 10 s")
        .expect("recv");
    parse(&buf[..n], cookie)
}

fn parse(wire: &[u8], cookie: &str) -> Owned {
    let (c, payload) = wire.split_at(cookie.len());
    assert_eq!(c, cookie.as_bytes(), "reply cookie");
    assert_eq!(payload.first(), Some(&b' '));
    decode(&payload[1..], &Limits::default())
        .expect("reply decodes")
        .to_owned_value()
}

fn s(v: &str) -> Owned {
    Owned::str(v)
}

fn get<'a>(v: &'a Owned, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn offer(call: &str) -> Owned {
    // As Kamailio's rtpengine_offer("trust-address replace-origin
    // replace-session-connection rtcp-mux-demux ICE=remove RTP/AVP") sends it.
    Owned::dict()
        .with("supports", Value::List(vec![s("load limit")]))
        .with("sdp", s(SDP))
        .with("ICE", s("remove"))
        .with("flags", Value::List(vec![s("trust-address")]))
        .with(
            "replace",
            Value::List(vec![s("origin"), s("session-connection")]),
        )
        .with("transport-protocol", s("RTP/AVP"))
        .with("rtcp-mux", Value::List(vec![s("demux")]))
        .with("received-from", Value::List(vec![s("IP4"), s("127.0.0.1")]))
        .with("call-id", s(call))
        .with("from-tag", s("from1"))
        .with("command", s("offer"))
}

#[tokio::test]
async fn udp_round_trip_as_a_proxy_sees_it() {
    let rt = start(NgConfig::default()).await;
    let to = rt.local_addr();
    assert!(to.port() < 32_768);
    let sock = client().await;

    let pong = request(
        &sock,
        to,
        "5323_1",
        &Owned::dict().with("command", s("ping")),
    )
    .await;
    assert_eq!(get(&pong, "result"), Some("pong"));

    let q = Owned::dict()
        .with("command", s("query"))
        .with("call-id", s("nobody"));
    let r = request(&sock, to, "q1", &q).await;
    assert_eq!(get(&r, "result"), Some("error"));
    assert_eq!(get(&r, "error-reason"), Some("Unknown call-id"));

    let r = request(&sock, to, "o1", &offer("call-1")).await;
    assert_eq!(get(&r, "result"), Some("ok"), "{r:?}");
    assert_eq!(
        get(&r, "sdp"),
        Some(SDP.replace("192.0.2.1", "127.0.0.1").as_str())
    );
    assert_eq!(r.get("warning"), None, "every option was understood");

    // The proxy did not hear back and sends the same datagram again: same
    // reply, no second offer.
    let again = request(&sock, to, "o1", &offer("call-1")).await;
    assert_eq!(again, r);
    assert_eq!(rt.with_handler(|h| h.offers), 1);

    let answer = Owned::dict()
        .with("command", s("answer"))
        .with("sdp", s(SDP))
        .with("call-id", s("call-1"))
        .with("from-tag", s("from1"))
        .with("to-tag", s("to1"));
    let r = request(&sock, to, "a1", &answer).await;
    assert_eq!(get(&r, "result"), Some("ok"));

    let r = request(&sock, to, "q2", &q.clone().with("call-id", s("call-1"))).await;
    // `call-id` twice: the first ("nobody") counts, as in rtpengine.
    assert_eq!(get(&r, "error-reason"), Some("Unknown call-id"));
    let q1 = Owned::dict()
        .with("command", s("query"))
        .with("call-id", s("call-1"));
    let r = request(&sock, to, "q3", &q1).await;
    let tags = r.get("tags").and_then(Value::as_dict).expect("tags");
    assert_eq!(tags.len(), 2);

    let r = request(&sock, to, "l1", &Owned::dict().with("command", s("list"))).await;
    assert_eq!(
        r.get("calls").and_then(Value::as_list).map(<[_]>::len),
        Some(1)
    );

    let del = Owned::dict()
        .with("command", s("delete"))
        .with("call-id", s("call-1"))
        .with("from-tag", s("from1"));
    let r = request(&sock, to, "d1", &del).await;
    assert_eq!((get(&r, "result"), r.get("warning")), (Some("ok"), None));
    let r = request(&sock, to, "d2", &del).await;
    assert_eq!(
        get(&r, "warning"),
        Some("Call-ID not found or tags didn't match")
    );

    let r = request(
        &sock,
        to,
        "u1",
        &Owned::dict().with("command", s("block DTMF")),
    )
    .await;
    assert_eq!(get(&r, "error-reason"), Some("Unrecognized command"));

    let c = rt.counters();
    assert_eq!(c.retransmissions, 1);
    assert_eq!(c.commands.offer, 1);
    assert_eq!(c.unrecognized_commands, 1);
    let t = rt.transport_counters();
    assert_eq!(t.udp_received, 11);
    assert_eq!(t.sent, 11);
    rt.shutdown();
}

#[tokio::test]
async fn tcp_stream_of_back_to_back_messages() {
    let rt = start(NgConfig::default()).await;
    let mut tcp = tcp_client(rt.local_addr()).await;
    // Two messages in one write, the third split across writes.
    let mut wire = b"t1 d7:command4:pingeT2 ".to_vec();
    offer("tcp-call").encode(&mut wire);
    let cut = wire.len() - 7;
    tcp.write_all(&wire[..cut]).await.unwrap();
    tcp.write_all(&wire[cut..]).await.unwrap();
    tcp.write_all(b"t3 d7:command4:pinge").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        if got.ends_with(b"t3 d6:result4:ponge") {
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("data within 10 s")
            .expect("read");
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"t1 d6:result4:pongeT2 d6:result2:ok3:sdp"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.ends_with(b"t3 d6:result4:ponge"));

    // An unframeable stream gets an error reply, then the connection closes.
    tcp.write_all(b"t4 l4:spame").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("closed within 10 s")
        .expect("read");
    let r = parse(&rest, "t4");
    assert_eq!(get(&r, "error-reason"), Some("Invalid NG data format"));
    assert_eq!(rt.transport_counters().tcp_unframeable, 1);
}

#[tokio::test]
async fn allow_list_is_enforced_and_required_off_loopback() {
    // Off loopback without an allow-list: refused at start, with the reason.
    let e = NgRuntime::start(
        "0.0.0.0:22299".parse().unwrap(),
        NgConfig::default(),
        Calls::default(),
    )
    .await
    .expect_err("must refuse");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("ng.allow"), "{e}");

    // On loopback with a list that excludes 127.0.0.1: TCP is disconnected,
    // UDP is dropped and counted.
    let rt = start(NgConfig {
        allow: AllowList::parse(&["10.0.0.0/8"]).unwrap(),
        ..NgConfig::default()
    })
    .await;
    let mut tcp = tcp_client(rt.local_addr()).await;
    let _ = tcp.write_all(b"x d7:command4:pinge").await;
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("closed within 10 s");
    assert!(r.is_err() || rest.is_empty(), "no reply to a refused peer");
    assert_eq!(rt.transport_counters().tcp_refused, 1);

    let sock = client().await;
    sock.send_to(b"x d7:command4:pinge", rt.local_addr())
        .await
        .unwrap();
    // Bounded wait for the server to have seen it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rt.counters().dropped_not_allowed == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "datagram not counted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rt.counters().replies, 0);
}
