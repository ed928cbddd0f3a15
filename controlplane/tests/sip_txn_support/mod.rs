//! Helpers for the transaction layer tests: a test-owned clock, flows,
//! message builders and a driver that runs the layer's timers in order.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use strait::sip::transport::Target;
use strait::sip::txn::{Destination, Output, TxnConfig, TxnKey, TxnLayer};
use strait::sip::{FlowId, HeaderName, Message, Request, Response, Transport};

/// The layer plus a clock that only the test moves (milliseconds since t0).
pub struct Harness {
    pub layer: TxnLayer,
    pub t0: Instant,
    pub now: Instant,
}

impl Harness {
    pub fn new(config: TxnConfig) -> Harness {
        let t0 = Instant::now();
        Harness {
            layer: TxnLayer::new(config),
            t0,
            now: t0,
        }
    }

    pub fn default_config() -> Harness {
        Harness::new(TxnConfig::default())
    }

    /// Milliseconds since t0.
    pub fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.t0).as_millis()).unwrap()
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Moves the clock to `ms` (never backwards) without running timers.
    pub fn set(&mut self, ms: u64) {
        let t = self.at(ms);
        assert!(t >= self.now, "the test clock only moves forward");
        self.now = t;
    }

    /// Runs every timer due up to `ms` at its own deadline, returning the
    /// outputs with the time (ms) they were produced; the clock ends at `ms`.
    pub fn run_until(&mut self, ms: u64) -> Vec<(u64, Output)> {
        let end = self.at(ms);
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match self.layer.poll_timeout() {
                Some(t) if t <= end => {
                    assert!(t >= self.now, "timer in the past: {t:?} < {:?}", self.now);
                    self.now = t;
                    self.layer.handle_timeout(t);
                    let at = self.ms(t);
                    out.extend(self.drain().into_iter().map(|o| (at, o)));
                    if let Err(e) = self.layer.check_invariants() {
                        panic!("invariant: {e}");
                    }
                }
                _ => {
                    self.now = end;
                    return out;
                }
            }
        }
        panic!("timers never settle");
    }

    pub fn drain(&mut self) -> Vec<Output> {
        let mut v = Vec::new();
        for _ in 0..1000 {
            match self.layer.poll_output() {
                Some(o) => v.push(o),
                None => return v,
            }
        }
        panic!("outputs never drain");
    }

    /// Delivers a message at the current time; returns the outputs.
    pub fn receive(&mut self, flow: FlowId, msg: Message) -> Vec<Output> {
        self.layer.handle_message(self.now, flow, flow.remote, msg);
        let out = self.drain();
        if let Err(e) = self.layer.check_invariants() {
            panic!("invariant: {e}");
        }
        out
    }

    pub fn send_request(&mut self, req: Request, dest: Destination) -> (TxnKey, Vec<Output>) {
        let key = self
            .layer
            .send_request(self.now, req, dest)
            .expect("send_request");
        (key, self.drain())
    }

    pub fn respond(&mut self, key: TxnKey, resp: Response) -> Vec<Output> {
        self.layer
            .send_response(self.now, key, resp)
            .expect("send_response");
        self.drain()
    }
}

pub fn udp_flow() -> FlowId {
    FlowId {
        transport: Transport::Udp,
        local: "192.0.2.1:5060".parse().unwrap(),
        remote: "198.51.100.7:5060".parse().unwrap(),
        conn: 0,
    }
}

pub fn tcp_flow() -> FlowId {
    FlowId {
        transport: Transport::Tcp,
        local: "192.0.2.1:5060".parse().unwrap(),
        remote: "198.51.100.7:40123".parse().unwrap(),
        conn: 7,
    }
}

pub fn target(transport: Transport) -> Destination {
    Destination::Target(Target {
        transport,
        addr: "203.0.113.5:5060".parse::<SocketAddr>().unwrap(),
        server_name: None,
    })
}

/// A request as a peer (or our core) would build it.
pub fn request(method: &str, branch: &str, via_transport: &str) -> Request {
    request_with(method, branch, via_transport, "198.51.100.7:5060", 1)
}

pub fn request_with(
    method: &str,
    branch: &str,
    via_transport: &str,
    sent_by: &str,
    cseq: u32,
) -> Request {
    let branch_param = if branch.is_empty() {
        String::new()
    } else {
        format!(";branch={branch}")
    };
    let text = format!(
        "{method} sip:bob@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/{via_transport} {sent_by}{branch_param}\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKlower\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:proxy.example.com;lr>\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=a73kszlfl\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: 1j9FpLxk3uxtm8tn@198.51.100.7\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@198.51.100.7>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match Message::parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("bad test request: {other:?}"),
    }
}

/// The ACK a peer sends for a non-2xx response to `invite` (same branch).
pub fn ack_for(invite: &Request, to_tag: &str) -> Request {
    let mut ack = invite.clone();
    ack.method = strait::sip::Method::Ack;
    let seq = invite.cseq().unwrap().seq;
    ack.headers.set(HeaderName::CSeq, format!("{seq} ACK"));
    ack.headers.set(
        HeaderName::To,
        format!("<sip:bob@example.com>;tag={to_tag}"),
    );
    ack
}

/// A response to `req` with an optional To tag.
pub fn response(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
    let mut r = Response::from_request(req, status);
    if let Some(tag) = to_tag {
        r.set_to_tag(tag).unwrap();
    }
    r
}

/// The message of a Transmit output.
pub fn transmitted(o: &Output) -> Option<&Message> {
    match o {
        Output::Transmit { message, .. } => Some(message),
        _ => None,
    }
}

/// Status codes of transmitted responses.
pub fn sent_statuses(outs: &[Output]) -> Vec<u16> {
    outs.iter()
        .filter_map(transmitted)
        .filter_map(|m| m.as_response().map(|r| r.status))
        .collect()
}

/// Times (ms) at which something was transmitted.
pub fn transmit_times(outs: &[(u64, Output)]) -> Vec<u64> {
    outs.iter()
        .filter(|(_, o)| matches!(o, Output::Transmit { .. }))
        .map(|(t, _)| *t)
        .collect()
}

pub fn top_branch(m: &Message) -> String {
    m.headers().top_via().unwrap().branch().unwrap().to_owned()
}
