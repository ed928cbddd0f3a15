//! Client transactions (RFC 3261 §17.1, RFC 6026) driven with a test-owned
//! clock: retransmission schedules, Timers B/D/F/K/M, ACK generation,
//! deduplication, CANCEL, reliable transports, errors.

mod sip_txn_support;

use sip_txn_support::*;
use strait::sip::txn::{make_branch, Destination, Output, TxnConfig, TxnError, TxnState};
use strait::sip::{HeaderName, Message, Method, Transport};

fn branch(n: u8) -> String {
    make_branch([n; 16])
}

fn our_invite(n: u8) -> strait::sip::Request {
    request_with("INVITE", &branch(n), "UDP", "192.0.2.1:5060", 1)
}

fn our_request(method: &str, n: u8) -> strait::sip::Request {
    request_with(method, &branch(n), "UDP", "192.0.2.1:5060", 1)
}

fn responses(outs: &[Output]) -> Vec<(u16, bool)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Response {
                response,
                retransmission,
                ..
            } => Some((response.status, *retransmission)),
            _ => None,
        })
        .collect()
}

fn acks(outs: &[Output]) -> Vec<&strait::sip::Request> {
    outs.iter()
        .filter_map(transmitted)
        .filter_map(Message::as_request)
        .filter(|r| r.method == Method::Ack)
        .collect()
}

#[test]
fn invite_udp_retransmits_with_doubling_then_timer_b() {
    let mut h = Harness::default_config();
    let (key, first) = h.send_request(our_invite(1), target(Transport::Udp));
    assert_eq!(first.len(), 1);
    assert!(matches!(first[0], Output::Transmit { key: Some(k), .. } if k == key));
    assert_eq!(h.layer.state(key), Some(TxnState::Calling));
    let outs = h.run_until(40_000);
    // Timer A: T1, 2T1, 4T1 ... uncapped; Timer B at 64*T1.
    assert_eq!(
        transmit_times(&outs),
        [500, 1500, 3500, 7500, 15_500, 31_500]
    );
    let timeouts: Vec<u64> = outs
        .iter()
        .filter(|(_, o)| matches!(o, Output::Timeout { key: k } if *k == key))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(timeouts, [32_000]);
    assert_eq!(h.layer.state(key), None);
    assert_eq!(h.layer.client_count(), 0);
    assert!(h.layer.poll_timeout().is_none());
    let c = h.layer.counters();
    assert_eq!((c.retransmissions, c.timeouts, c.terminated), (6, 1, 1));
    // Every retransmission is the same request.
    for (_, o) in &outs {
        if let Some(m) = transmitted(o) {
            assert_eq!(m.as_request().unwrap(), &our_invite(1));
        }
    }
}

#[test]
fn invite_1xx_stops_retransmission_and_timer_b_then_486_is_acked() {
    let mut h = Harness::default_config();
    let invite = our_invite(2);
    let (key, _) = h.send_request(invite.clone(), target(Transport::Udp));
    assert_eq!(transmit_times(&h.run_until(600)), [500]);
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&invite, 180, Some("b1"))),
    );
    assert_eq!(responses(&outs), [(180, false)]);
    assert_eq!(h.layer.state(key), Some(TxnState::Proceeding));
    // The same 180 again is absorbed; a 183 is new.
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&invite, 180, Some("b1"))),
    );
    assert!(outs.is_empty());
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&invite, 183, Some("b1"))),
    );
    assert_eq!(responses(&outs), [(183, false)]);
    // No retransmission and no Timer B in Proceeding.
    assert!(h.run_until(41_000).is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Proceeding));

    let busy = response(&invite, 486, Some("b1"));
    let outs = h.receive(udp_flow(), Message::Response(busy.clone()));
    assert_eq!(responses(&outs), [(486, false)]);
    let ack = acks(&outs);
    assert_eq!(ack.len(), 1);
    let ack = ack[0];
    // RFC 3261 §17.1.1.3: same Request-URI, one Via (the INVITE's top one,
    // same branch), Route, From, Call-ID; To from the response; CSeq ACK.
    assert_eq!(ack.uri, invite.uri);
    assert_eq!(ack.headers.count("Via"), 1);
    assert_eq!(ack.headers.get("Via"), invite.headers.values("Via").next());
    assert_eq!(ack.headers.get("Route"), invite.headers.get("Route"));
    assert_eq!(ack.headers.get("From"), invite.headers.get("From"));
    assert_eq!(ack.headers.get("Call-ID"), invite.headers.get("Call-ID"));
    assert_eq!(ack.to_addr().unwrap().tag(), Some("b1"));
    assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
    assert!(ack.body.is_empty());
    assert!(Message::parse(&Message::Request(ack.clone()).to_bytes()).is_ok());
    assert_eq!(h.layer.state(key), Some(TxnState::Completed));

    // A retransmitted 486 is absorbed but the ACK goes out again.
    h.set(42_000);
    let outs = h.receive(udp_flow(), Message::Response(busy.clone()));
    assert!(responses(&outs).is_empty());
    assert_eq!(acks(&outs).len(), 1);

    // Timer D (32 s) ends it; then the 486 is a stray.
    assert!(h.run_until(72_999).is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Completed));
    h.run_until(73_000);
    assert_eq!(h.layer.state(key), None);
    let strays = h.layer.counters().stray_responses;
    let outs = h.receive(udp_flow(), Message::Response(busy));
    assert!(outs.is_empty());
    assert_eq!(h.layer.counters().stray_responses, strays + 1);
}

#[test]
fn invite_2xx_goes_up_every_time_and_timer_m_ends_it() {
    let mut h = Harness::default_config();
    let invite = our_invite(3);
    let (key, _) = h.send_request(invite.clone(), target(Transport::Udp));
    h.set(100);
    let ok = response(&invite, 200, Some("x1"));
    let outs = h.receive(udp_flow(), Message::Response(ok.clone()));
    assert_eq!(responses(&outs), [(200, false)]);
    // No ACK from the layer for a 2xx: the core sends it.
    assert!(acks(&outs).is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Accepted));
    // A retransmission goes up flagged; another fork's 2xx is new.
    let outs = h.receive(udp_flow(), Message::Response(ok.clone()));
    assert_eq!(responses(&outs), [(200, true)]);
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&invite, 200, Some("x2"))),
    );
    assert_eq!(responses(&outs), [(200, false)]);
    // Late provisional or non-2xx responses are absorbed.
    assert!(h
        .receive(
            udp_flow(),
            Message::Response(response(&invite, 180, Some("x3")))
        )
        .is_empty());
    assert!(h
        .receive(
            udp_flow(),
            Message::Response(response(&invite, 486, Some("x3")))
        )
        .is_empty());
    // No retransmission of the INVITE after the 2xx; Timer M at 100 + 32 s.
    let outs = h.run_until(32_099);
    assert!(outs.is_empty());
    h.run_until(32_100);
    assert_eq!(h.layer.state(key), None);
    assert!(h.receive(udp_flow(), Message::Response(ok)).is_empty());
    assert_eq!(h.layer.counters().stray_responses, 1);
}

#[test]
fn invite_over_tcp_has_no_retransmissions_and_no_timer_d() {
    let mut h = Harness::default_config();
    let invite = request_with("INVITE", &branch(4), "TCP", "192.0.2.1:5060", 1);
    let (key, first) = h.send_request(invite.clone(), target(Transport::Tcp));
    assert_eq!(first.len(), 1);
    // Only Timer B remains.
    assert_eq!(h.layer.poll_timeout(), Some(h.at(32_000)));
    h.set(1000);
    let outs = h.receive(
        tcp_flow(),
        Message::Response(response(&invite, 404, Some("n"))),
    );
    assert_eq!(responses(&outs), [(404, false)]);
    // The ACK goes on the connection the response came on; Timer D is zero.
    let dests: Vec<&Destination> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit { dest, .. } => Some(dest),
            _ => None,
        })
        .collect();
    assert_eq!(dests, [&Destination::Flow(tcp_flow())]);
    assert_eq!(acks(&outs).len(), 1);
    assert_eq!(h.layer.state(key), None);
    assert_eq!(h.layer.client_count(), 0);
    assert!(h.layer.poll_timeout().is_none());

    // Timer B still applies on TCP.
    let invite = request_with("INVITE", &branch(5), "TCP", "192.0.2.1:5060", 1);
    let (key, _) = h.send_request(invite, target(Transport::Tcp));
    let outs = h.run_until(40_000);
    assert_eq!(outs.len(), 1);
    assert!(matches!(outs[0], (33_000, Output::Timeout { key: k }) if k == key));
}

#[test]
fn non_invite_udp_timer_e_caps_at_t2_then_timer_f() {
    let mut h = Harness::default_config();
    let (key, _) = h.send_request(our_request("OPTIONS", 6), target(Transport::Udp));
    assert_eq!(h.layer.state(key), Some(TxnState::Trying));
    let outs = h.run_until(40_000);
    assert_eq!(
        transmit_times(&outs),
        [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert!(matches!(outs.last(), Some((32_000, Output::Timeout { key: k })) if *k == key));
    assert_eq!(h.layer.client_count(), 0);
}

#[test]
fn non_invite_proceeding_retransmits_at_t2_and_timer_k() {
    let mut h = Harness::default_config();
    let bye = our_request("BYE", 7);
    let (key, _) = h.send_request(bye.clone(), target(Transport::Udp));
    assert_eq!(transmit_times(&h.run_until(1000)), [500]);
    let outs = h.receive(udp_flow(), Message::Response(response(&bye, 100, None)));
    assert_eq!(responses(&outs), [(100, false)]);
    assert_eq!(h.layer.state(key), Some(TxnState::Proceeding));
    // Timer E was due at 1.5 s; from then on every T2.
    assert_eq!(transmit_times(&h.run_until(10_000)), [1500, 5500, 9500]);
    let ok = response(&bye, 200, Some("t"));
    let outs = h.receive(udp_flow(), Message::Response(ok.clone()));
    assert_eq!(responses(&outs), [(200, false)]);
    assert_eq!(h.layer.state(key), Some(TxnState::Completed));
    // Retransmitted final: absorbed; Timer K = T4.
    h.set(12_000);
    assert!(h
        .receive(udp_flow(), Message::Response(ok.clone()))
        .is_empty());
    assert!(h.run_until(14_999).is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Completed));
    assert!(h.run_until(15_000).is_empty());
    assert_eq!(h.layer.state(key), None);
    let c = h.layer.counters();
    assert_eq!(c.responses_absorbed, 1);
    assert_eq!(c.timeouts, 0);
}

#[test]
fn non_invite_over_tcp() {
    let mut h = Harness::default_config();
    let reg = request_with("REGISTER", &branch(8), "TCP", "192.0.2.1:5060", 1);
    let (key, _) = h.send_request(reg.clone(), target(Transport::Tcp));
    assert_eq!(h.layer.poll_timeout(), Some(h.at(32_000)));
    let outs = h.receive(
        tcp_flow(),
        Message::Response(response(&reg, 401, Some("r"))),
    );
    assert_eq!(responses(&outs), [(401, false)]);
    // Timer K is zero on a reliable transport.
    assert_eq!(h.layer.state(key), None);
    // Timer F on TCP.
    let reg = request_with("REGISTER", &branch(9), "TCP", "192.0.2.1:5060", 2);
    let (key, _) = h.send_request(reg, target(Transport::Tcp));
    let outs = h.run_until(40_000);
    assert_eq!(outs.len(), 1);
    assert!(matches!(outs[0], (32_000, Output::Timeout { key: k }) if k == key));
}

#[test]
fn configured_timers_are_used() {
    let mut h = Harness::new(TxnConfig {
        t1: std::time::Duration::from_millis(100),
        t2: std::time::Duration::from_millis(400),
        ..TxnConfig::default()
    });
    let (key, _) = h.send_request(our_request("OPTIONS", 10), target(Transport::Udp));
    let outs = h.run_until(7000);
    assert_eq!(
        transmit_times(&outs),
        [
            100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100, 3500, 3900, 4300, 4700, 5100, 5500,
            5900, 6300
        ]
    );
    assert!(matches!(outs.last(), Some((6400, Output::Timeout { key: k })) if *k == key));
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut h = Harness::default_config();
    let invite = our_invite(11);
    let (ikey, _) = h.send_request(invite.clone(), target(Transport::Udp));
    let ckey = h.layer.cancel(h.now, ikey).unwrap();
    // Nothing sent before a provisional response (§9.1).
    assert!(h.drain().is_empty());
    assert_eq!(h.layer.state(ckey), Some(TxnState::Held));
    // Asking again gives the same CANCEL.
    assert_eq!(h.layer.cancel(h.now, ikey), Ok(ckey));
    h.set(200);
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&invite, 180, Some("c"))),
    );
    assert_eq!(responses(&outs), [(180, false)]);
    let cancels: Vec<&strait::sip::Request> = outs
        .iter()
        .filter_map(transmitted)
        .filter_map(Message::as_request)
        .collect();
    assert_eq!(cancels.len(), 1);
    let cancel = cancels[0].clone();
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(top_branch(&Message::Request(cancel.clone())), branch(11));
    assert_eq!(cancel.headers.count("Via"), 1);
    assert_eq!(cancel.headers.get("CSeq"), Some("1 CANCEL"));
    assert_eq!(cancel.headers.get("To"), invite.headers.get("To"));
    assert_eq!(cancel.headers.get("Route"), invite.headers.get("Route"));
    assert_eq!(h.layer.state(ckey), Some(TxnState::Trying));
    // CANCEL retransmitted by its own Timer E.
    assert_eq!(transmit_times(&h.run_until(800)), [700]);
    // 200 for the CANCEL (matched by CSeq method), 487 for the INVITE.
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&cancel, 200, Some("c"))),
    );
    assert!(matches!(&outs[..], [Output::Response { key, response, .. }]
        if *key == ckey && response.status == 200));
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&invite, 487, Some("c"))),
    );
    assert!(matches!(&outs[0], Output::Transmit { .. }));
    assert!(matches!(&outs[1], Output::Response { key, response, .. }
        if *key == ikey && response.status == 487));
    assert_eq!(acks(&outs).len(), 1);
    assert_eq!(h.layer.cancel(h.now, ikey), Ok(ckey));
}

#[test]
fn held_cancel_is_dropped_when_a_final_response_comes_first() {
    let mut h = Harness::default_config();
    let invite = our_invite(12);
    let (ikey, _) = h.send_request(invite.clone(), target(Transport::Udp));
    let ckey = h.layer.cancel(h.now, ikey).unwrap();
    let outs = h.receive(
        udp_flow(),
        Message::Response(response(&invite, 603, Some("d"))),
    );
    // Only the ACK is sent, no CANCEL.
    assert_eq!(outs.iter().filter_map(transmitted).count(), 1);
    assert_eq!(acks(&outs).len(), 1);
    assert_eq!(h.layer.state(ckey), None);
    assert_eq!(h.layer.cancel(h.now, ikey), Ok(ckey));
    // A held CANCEL also goes when the INVITE times out.
    let (ikey, _) = h.send_request(our_invite(13), target(Transport::Udp));
    let ckey = h.layer.cancel(h.now, ikey).unwrap();
    h.run_until(40_000);
    assert_eq!(h.layer.state(ikey), None);
    assert_eq!(h.layer.state(ckey), None);
    assert_eq!(h.layer.client_count(), 0);
}

#[test]
fn cancel_errors() {
    let mut h = Harness::default_config();
    let (okey, _) = h.send_request(our_request("OPTIONS", 14), target(Transport::Udp));
    assert_eq!(h.layer.cancel(h.now, okey), Err(TxnError::NotInvite));
    let invite = our_invite(15);
    let (ikey, _) = h.send_request(invite.clone(), target(Transport::Udp));
    h.receive(
        udp_flow(),
        Message::Response(response(&invite, 200, Some("z"))),
    );
    assert_eq!(h.layer.cancel(h.now, ikey), Err(TxnError::InvalidState));
    h.run_until(100_000);
    assert_eq!(
        h.layer.cancel(h.now, ikey),
        Err(TxnError::UnknownTransaction)
    );
}

#[test]
fn request_validation_and_client_limit() {
    let mut h = Harness::new(TxnConfig {
        max_client_transactions: 2,
        ..TxnConfig::default()
    });
    let now = h.now;
    let l = &mut h.layer;
    let ack = our_request("ACK", 20);
    assert_eq!(
        l.send_request(now, ack, target(Transport::Udp)),
        Err(TxnError::AckNotTransaction)
    );
    let legacy = request("OPTIONS", "1234abcd", "UDP");
    assert_eq!(
        l.send_request(now, legacy, target(Transport::Udp)),
        Err(TxnError::MissingBranch)
    );
    let nobranch = request("OPTIONS", "", "UDP");
    assert_eq!(
        l.send_request(now, nobranch, target(Transport::Udp)),
        Err(TxnError::MissingBranch)
    );
    let k = l
        .send_request(now, our_request("OPTIONS", 21), target(Transport::Udp))
        .unwrap();
    assert_eq!(
        l.send_request(now, our_request("OPTIONS", 21), target(Transport::Udp)),
        Err(TxnError::DuplicateTransaction)
    );
    l.send_request(now, our_request("OPTIONS", 22), target(Transport::Udp))
        .unwrap();
    assert_eq!(
        l.send_request(now, our_request("OPTIONS", 23), target(Transport::Udp)),
        Err(TxnError::TooManyTransactions)
    );
    assert_eq!(l.counters().client_limit_refused, 1);
    assert_eq!(
        l.send_response(now, k, strait::sip::Response::new(200)),
        Err(TxnError::WrongRole)
    );
    // The transport fails: the core is told and the transaction goes.
    h.drain();
    h.layer.transport_error(k);
    let outs = h.drain();
    assert!(matches!(&outs[..], [Output::TransportError { key }] if *key == k));
    assert_eq!(h.layer.state(k), None);
    assert_eq!(h.layer.counters().transport_errors, 1);
    h.layer.transport_error(k); // unknown now: ignored
    assert!(h.drain().is_empty());
}

#[test]
fn stray_and_malformed_responses_are_dropped_and_counted() {
    let mut h = Harness::default_config();
    let invite = our_invite(30);
    let (key, _) = h.send_request(invite.clone(), target(Transport::Udp));
    // Unknown branch.
    let other = our_invite(31);
    assert!(h
        .receive(
            udp_flow(),
            Message::Response(response(&other, 200, Some("s")))
        )
        .is_empty());
    // Right branch, wrong CSeq method.
    let mut wrong = response(&invite, 200, Some("s"));
    wrong.headers.set(HeaderName::CSeq, "1 OPTIONS");
    assert!(h.receive(udp_flow(), Message::Response(wrong)).is_empty());
    // No branch at all.
    let mut nobranch = response(&invite, 200, Some("s"));
    nobranch
        .headers
        .set(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060");
    assert!(h
        .receive(udp_flow(), Message::Response(nobranch))
        .is_empty());
    assert_eq!(h.layer.counters().stray_responses, 3);
    // Branches compare case-insensitively.
    let mut upper = response(&invite, 180, Some("s"));
    let via = invite.headers.values("Via").next().unwrap().to_owned();
    let b = branch(30);
    upper.headers.set_first_value(
        HeaderName::Via,
        via.replace(&b, &format!("z9hG4bK{}", b[7..].to_ascii_uppercase())),
    );
    assert_eq!(
        responses(&h.receive(udp_flow(), Message::Response(upper))),
        [(180, false)]
    );
    assert_eq!(h.layer.state(key), Some(TxnState::Proceeding));
}

#[test]
fn proceeding_invite_is_bounded() {
    let mut h = Harness::new(TxnConfig {
        proceeding_limit: std::time::Duration::from_secs(60),
        ..TxnConfig::default()
    });
    let invite = our_invite(40);
    let (key, _) = h.send_request(invite.clone(), target(Transport::Udp));
    h.set(1000);
    h.receive(
        udp_flow(),
        Message::Response(response(&invite, 180, Some("p"))),
    );
    let outs = h.run_until(100_000);
    assert_eq!(outs.len(), 1);
    assert!(matches!(outs[0], (61_000, Output::Timeout { key: k }) if k == key));
}

#[test]
fn reliable_target_moves_to_the_flow_given_by_set_flow() {
    let mut h = Harness::default_config();
    let invite = request_with("INVITE", &branch(41), "TLS", "192.0.2.1:5061", 1);
    let (key, _) = h.send_request(invite.clone(), target(Transport::Tls));
    let sent_on = strait::sip::FlowId {
        transport: Transport::Tls,
        ..tcp_flow()
    };
    h.layer.set_flow(key, sent_on).unwrap();
    // A response on some other connection does not move the transaction:
    // the ACK goes where the INVITE went.
    let other = strait::sip::FlowId {
        conn: 99,
        ..sent_on
    };
    let outs = h.receive(other, Message::Response(response(&invite, 500, Some("q"))));
    let dests: Vec<&Destination> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit { dest, .. } => Some(dest),
            _ => None,
        })
        .collect();
    assert_eq!(dests, [&Destination::Flow(sent_on)]);
    assert_eq!(
        h.layer.set_flow(key, sent_on),
        Err(TxnError::UnknownTransaction)
    );
}
