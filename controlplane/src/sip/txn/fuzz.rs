//! Fuzz entry point for the transaction layer (feature `fuzz`).
//!
//! [`txn_script`] reads the input as a script of operations (messages from
//! the network, both well-formed ones built from a few bytes and raw bytes
//! through the parser; core actions; time steps; transport errors) and checks
//! after each one that the layer's invariants hold, that every message it
//! asks to send parses back, and that time only moves forward; at the end it
//! lets an hour pass and checks that every transaction is gone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Destination, Output, TxnConfig, TxnKey, TxnLayer};
use crate::sip::message::Message;
use crate::sip::transport::{FlowId, Target, Transport};

const METHODS: [&str; 6] = ["INVITE", "OPTIONS", "BYE", "ACK", "CANCEL", "REGISTER"];
const STATUSES: [u16; 10] = [100, 180, 183, 200, 202, 302, 404, 486, 487, 503];

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

fn flow(reliable: bool, port: u16) -> FlowId {
    FlowId {
        transport: if reliable {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        local: SocketAddr::from(([192, 0, 2, 1], 5060)),
        remote: SocketAddr::from(([198, 51, 100, 7], port)),
        conn: u64::from(reliable),
    }
}

fn request_text(method: &str, branch: &str, tag: u8, cseq: u8, cseq_method: &str) -> String {
    format!(
        "{method} sip:b@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=f{tag}\r\nTo: <sip:b@example.com>\r\n\
         Call-ID: call{tag}\r\nCSeq: {cseq} {cseq_method}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn response_text(status: u16, branch: &str, to_tag: u8, method: &str) -> String {
    format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
         From: <sip:b@example.com>;tag=ours\r\nTo: <sip:c@example.net>;tag=r{to_tag}\r\n\
         Call-ID: out\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Runs the script in `data`; panics only if an invariant is broken.
pub fn txn_script(data: &[u8]) {
    let mut r = Reader { data };
    let first = r.byte().unwrap_or(0);
    let config = TxnConfig {
        trying_delay: match first % 3 {
            0 => None,
            1 => Some(Duration::ZERO),
            _ => Some(Duration::from_millis(200)),
        },
        max_client_transactions: 4,
        max_server_transactions: 4,
        proceeding_limit: Duration::from_secs(120),
        ..TxnConfig::default()
    };
    let mut layer = TxnLayer::new(config);
    // The fuzz harness owns the clock: one reading, then offsets.
    let mut now = Instant::now();
    let mut server_keys: Vec<TxnKey> = Vec::new();
    let mut client_keys: Vec<TxnKey> = Vec::new();
    let mut sent = 0u32;

    while let Some(op) = r.byte() {
        let arg = r.byte().unwrap_or(0);
        let arg2 = r.byte().unwrap_or(0);
        match op % 10 {
            0 => {
                let method = METHODS[usize::from(arg % 6)];
                let branch = if arg2 & 0x80 != 0 {
                    format!("legacy{}", arg2 % 2)
                } else {
                    format!("z9hG4bKs{}", arg2 % 2)
                };
                let cseq_method = if method == "ACK" { "ACK" } else { method };
                let text = request_text(method, &branch, 0, 1, cseq_method);
                if let Ok(m) = Message::parse(text.as_bytes()) {
                    let f = flow(arg & 0x40 != 0, 5060);
                    layer.handle_message(now, f, f.remote, m);
                }
            }
            1 => {
                let status = STATUSES[usize::from(arg % 10)];
                let method = ["INVITE", "OPTIONS", "CANCEL"][usize::from(arg2 % 3)];
                let branch = format!("z9hG4bKc{}", (arg2 >> 2) % 4);
                let text = response_text(status, &branch, arg >> 4, method);
                if let Ok(m) = Message::parse(text.as_bytes()) {
                    let f = flow(arg2 & 0x80 != 0, 5060);
                    layer.handle_message(now, f, f.remote, m);
                }
            }
            2 => {
                let method = if arg & 1 == 0 { "INVITE" } else { "OPTIONS" };
                let branch = format!("z9hG4bKc{}", sent % 4);
                sent += 1;
                let text = request_text(method, &branch, 200, 1, method);
                if let Ok(Message::Request(req)) = Message::parse(text.as_bytes()) {
                    let transport = if arg & 2 == 0 {
                        Transport::Udp
                    } else {
                        Transport::Tcp
                    };
                    let dest = Destination::Target(Target {
                        transport,
                        addr: SocketAddr::from(([203, 0, 113, 5], 5060)),
                        server_name: None,
                    });
                    if let Ok(k) = layer.send_request(now, req, dest) {
                        if client_keys.len() >= 16 {
                            client_keys.remove(0);
                        }
                        client_keys.push(k);
                    }
                }
            }
            3 => {
                if let Some(&key) = server_keys.get(usize::from(arg) % server_keys.len().max(1)) {
                    let status = STATUSES[usize::from(arg2 % 10)];
                    let text = response_text(status, "z9hG4bKs0", 1, "INVITE");
                    if let Ok(Message::Response(mut resp)) = Message::parse(text.as_bytes()) {
                        resp.status = status;
                        let _ = layer.send_response(now, key, resp);
                    }
                }
            }
            4 => {
                if let Some(&key) = client_keys.get(usize::from(arg) % client_keys.len().max(1)) {
                    let _ = layer.cancel(now, key);
                }
            }
            5 => {
                now += Duration::from_millis(u64::from(arg) * 50 + u64::from(arg2));
                layer.handle_timeout(now);
                assert!(
                    layer.poll_timeout().is_none_or(|t| t > now),
                    "timer due after handle_timeout"
                );
            }
            6 => {
                if let Some(t) = layer.poll_timeout() {
                    now = now.max(t);
                    layer.handle_timeout(now);
                    assert!(
                        layer.poll_timeout().is_none_or(|t| t > now),
                        "timer due after handle_timeout"
                    );
                }
            }
            7 => {
                let keys = if arg2 & 1 == 0 {
                    &server_keys
                } else {
                    &client_keys
                };
                if let Some(&key) = keys.get(usize::from(arg) % keys.len().max(1)) {
                    layer.transport_error(key);
                }
            }
            8 => {
                let raw = r.bytes(usize::from(arg) * 4);
                if let Ok(m) = Message::parse(raw) {
                    let f = flow(arg2 & 1 != 0, 5062);
                    layer.handle_message(now, f, f.remote, m);
                }
            }
            _ => {
                let f = flow(false, 5060);
                let text = response_text(200, "z9hG4bKack", arg, "INVITE");
                if let Ok(m) = Message::parse(text.as_bytes()) {
                    layer.send_stateless(Destination::Flow(f), m);
                }
            }
        }
        drain(&mut layer, &mut server_keys);
        if let Err(e) = layer.check_invariants() {
            panic!("invariant broken: {e}");
        }
    }

    // Let an hour pass: everything must end.
    let end = now + Duration::from_secs(3600);
    for _ in 0..100_000 {
        match layer.poll_timeout() {
            Some(t) if t <= end => {
                now = now.max(t);
                layer.handle_timeout(now);
                drain(&mut layer, &mut server_keys);
            }
            _ => break,
        }
    }
    assert_eq!(layer.client_count(), 0, "client transactions left");
    assert_eq!(layer.server_count(), 0, "server transactions left");
    assert!(layer.poll_timeout().is_none());
    if let Err(e) = layer.check_invariants() {
        panic!("invariant broken: {e}");
    }
}

fn drain(layer: &mut TxnLayer, server_keys: &mut Vec<TxnKey>) {
    // Each input yields a handful of outputs; the bound only guards the loop.
    for _ in 0..10_000 {
        let Some(out) = layer.poll_output() else {
            return;
        };
        match out {
            Output::Transmit { message, .. } => {
                let bytes = message.to_bytes();
                if let Err(e) = Message::parse(&bytes) {
                    panic!(
                        "unparsable message ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
            Output::Request { key, .. } => {
                if server_keys.len() >= 16 {
                    server_keys.remove(0);
                }
                server_keys.push(key);
            }
            _ => {}
        }
    }
    panic!("output queue does not drain");
}
