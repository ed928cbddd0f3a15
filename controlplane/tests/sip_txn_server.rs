//! Server transactions (RFC 3261 §17.2, RFC 6026) driven with a test-owned
//! clock: 100 Trying, retransmitted requests, Timers G/H/I/J/L, ACK
//! handling, CANCEL, overload, RFC 2543 matching, reliable transports.

mod sip_txn_support;

use std::time::Duration;

use sip_txn_support::*;
use strait::sip::txn::{Destination, Output, TxnConfig, TxnError, TxnKey, TxnState};
use strait::sip::{Message, Request, Response};

const BRANCH: &str = "z9hG4bKnashds8";

fn new_request(outs: &[Output]) -> (TxnKey, Request) {
    let found: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Request { key, request, .. } => Some((*key, request.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one new request in {outs:?}");
    found.into_iter().next().unwrap()
}

fn count_requests(outs: &[Output]) -> usize {
    outs.iter()
        .filter(|o| matches!(o, Output::Request { .. }))
        .count()
}

#[test]
fn invite_gets_100_after_200ms_and_retransmissions_get_the_last_provisional() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let outs = h.receive(udp_flow(), Message::Request(invite.clone()));
    let (key, got) = new_request(&outs);
    assert_eq!(outs.len(), 1, "no 100 yet");
    assert_eq!(got, invite);
    assert_eq!(h.layer.state(key), Some(TxnState::Proceeding));
    let outs = h.run_until(300);
    assert_eq!(outs.len(), 1);
    let (t, o) = &outs[0];
    assert_eq!(*t, 200);
    let Output::Transmit {
        dest,
        message,
        key: k,
    } = o
    else {
        panic!("{o:?}")
    };
    assert_eq!(*k, Some(key));
    assert_eq!(*dest, Destination::Flow(udp_flow()));
    let trying = message.as_response().unwrap();
    assert_eq!(trying.status, 100);
    assert_eq!(trying.headers.to_addr().unwrap().tag(), None);
    assert_eq!(trying.headers.count("Via"), 2);
    // The retransmitted INVITE gets the 100 again and is not passed up.
    h.set(500);
    let outs = h.receive(udp_flow(), Message::Request(invite.clone()));
    assert_eq!(sent_statuses(&outs), [100]);
    assert_eq!(count_requests(&outs), 0);
    // After the core's 180, the 180.
    let ringing = response(&invite, 180, Some("uas1"));
    assert_eq!(sent_statuses(&h.respond(key, ringing)), [180]);
    h.set(1500);
    let outs = h.receive(udp_flow(), Message::Request(invite.clone()));
    assert_eq!(sent_statuses(&outs), [180]);
    assert_eq!(h.layer.counters().requests_absorbed, 2);
    assert_eq!(h.layer.counters().server_created, 1);
}

#[test]
fn no_100_when_the_core_answers_in_time_or_when_configured() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    h.set(150);
    assert_eq!(
        sent_statuses(&h.respond(key, response(&invite, 180, Some("a")))),
        [180]
    );
    assert!(h.run_until(10_000).is_empty());

    // Immediate 100: before the request reaches the core.
    let mut h = Harness::new(TxnConfig {
        trying_delay: Some(Duration::ZERO),
        ..TxnConfig::default()
    });
    let outs = h.receive(udp_flow(), Message::Request(invite.clone()));
    assert_eq!(sent_statuses(&outs), [100]);
    assert!(matches!(outs[0], Output::Transmit { .. }));
    assert!(matches!(outs[1], Output::Request { .. }));

    // Never: a retransmission gets nothing either.
    let mut h = Harness::new(TxnConfig {
        trying_delay: None,
        ..TxnConfig::default()
    });
    h.receive(udp_flow(), Message::Request(invite.clone()));
    assert!(h.run_until(1000).is_empty());
    assert!(h.receive(udp_flow(), Message::Request(invite)).is_empty());
}

#[test]
fn retransmitted_invite_before_the_timer_gets_100_at_once() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    h.receive(udp_flow(), Message::Request(invite.clone()));
    h.set(100);
    assert_eq!(
        sent_statuses(&h.receive(udp_flow(), Message::Request(invite))),
        [100]
    );
    // ... and not again at 200 ms.
    assert!(h.run_until(1000).is_empty());
}

#[test]
fn invite_2xx_accepted_absorbs_retransmissions_and_passes_acks_up() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    h.set(1000);
    let ok = response(&invite, 200, Some("dlg"));
    let outs = h.respond(key, ok.clone());
    assert_eq!(sent_statuses(&outs), [200]);
    assert_eq!(h.layer.state(key), Some(TxnState::Accepted));
    // INVITE retransmissions are absorbed (RFC 6026), not passed up, and the
    // layer does not retransmit the 2xx on its own.
    h.set(1500);
    assert!(h
        .receive(udp_flow(), Message::Request(invite.clone()))
        .is_empty());
    assert!(h.run_until(5000).is_empty());
    // The core's own 2xx retransmission goes through.
    assert_eq!(sent_statuses(&h.respond(key, ok.clone())), [200]);
    // The ACK for the 2xx has its own branch: end-to-end, to the core.
    let mut ack = ack_for(&invite, "dlg");
    ack.headers.set_first_value(
        strait::sip::HeaderName::Via,
        "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKack2xx",
    );
    let outs = h.receive(udp_flow(), Message::Request(ack.clone()));
    assert!(
        matches!(&outs[..], [Output::Ack { key: None, request, flow, .. }]
            if *request == ack && *flow == udp_flow())
    );
    // Retransmitted ACKs too: the core absorbs them with its dialog.
    assert_eq!(h.receive(udp_flow(), Message::Request(ack)).len(), 1);
    // Timer L: 64*T1 after the 2xx.
    assert!(h.run_until(32_999).is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Accepted));
    h.run_until(33_000);
    assert_eq!(h.layer.state(key), None);
    assert_eq!(
        h.layer.send_response(h.now, key, ok),
        Err(TxnError::UnknownTransaction)
    );
    // A late retransmission of the INVITE is now a new request.
    let outs = h.receive(udp_flow(), Message::Request(invite));
    assert_eq!(count_requests(&outs), 1);
}

#[test]
fn invite_non_2xx_timer_g_until_ack_then_timer_i() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    h.set(1000);
    let busy = response(&invite, 486, Some("b"));
    assert_eq!(sent_statuses(&h.respond(key, busy.clone())), [486]);
    assert_eq!(h.layer.state(key), Some(TxnState::Completed));
    // Timer G: T1, 2T1, 4T1, capped at T2.
    let outs = h.run_until(5000);
    assert_eq!(transmit_times(&outs), [1500, 2500, 4500]);
    // A retransmitted INVITE gets the 486 again.
    assert_eq!(
        sent_statuses(&h.receive(udp_flow(), Message::Request(invite.clone()))),
        [486]
    );
    // The ACK (same branch) is absorbed: Confirmed, no more 486.
    let ack = ack_for(&invite, "b");
    assert!(h
        .receive(udp_flow(), Message::Request(ack.clone()))
        .is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Confirmed));
    assert!(h.receive(udp_flow(), Message::Request(ack)).is_empty());
    assert!(h.receive(udp_flow(), Message::Request(invite)).is_empty());
    // Timer I = T4.
    assert!(h.run_until(9999).is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Confirmed));
    assert!(h.run_until(10_000).is_empty());
    assert_eq!(h.layer.state(key), None);
    assert_eq!(h.layer.counters().acks_absorbed, 2);
}

#[test]
fn invite_non_2xx_without_ack_timer_h() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    h.respond(key, response(&invite, 404, Some("n")));
    let outs = h.run_until(60_000);
    assert_eq!(
        transmit_times(&outs),
        [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert!(outs[..outs.len() - 1].iter().all(|(_, o)| transmitted(o)
        .and_then(Message::as_response)
        .map(|r| r.status)
        == Some(404)));
    assert!(matches!(outs.last(), Some((32_000, Output::Timeout { key: k })) if *k == key));
    assert_eq!(h.layer.server_count(), 0);
    assert_eq!(h.layer.counters().timeouts, 1);
}

#[test]
fn invite_over_tcp_no_timer_g_and_timer_i_zero() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "TCP");
    let (key, _) = new_request(&h.receive(tcp_flow(), Message::Request(invite.clone())));
    h.run_until(300); // the 100
    let outs = h.respond(key, response(&invite, 480, Some("t")));
    assert!(
        matches!(&outs[..], [Output::Transmit { dest: Destination::Flow(f), .. }] if *f == tcp_flow())
    );
    // Only Timer H is left.
    assert_eq!(h.layer.poll_timeout(), Some(h.at(300 + 32_000)));
    h.set(2000);
    assert!(h
        .receive(tcp_flow(), Message::Request(ack_for(&invite, "t")))
        .is_empty());
    assert_eq!(h.layer.state(key), None, "Timer I is zero on TCP");

    // Timer H on TCP.
    let invite = request("INVITE", "z9hG4bKsecond", "TCP");
    let (key, _) = new_request(&h.receive(tcp_flow(), Message::Request(invite.clone())));
    h.respond(key, response(&invite, 480, Some("t")));
    let outs = h.run_until(100_000);
    assert!(matches!(&outs[..], [(34_000, Output::Timeout { key: k })] if *k == key));
}

#[test]
fn non_invite_absorbs_then_repeats_the_last_response_then_timer_j() {
    let mut h = Harness::default_config();
    let options = request("OPTIONS", BRANCH, "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(options.clone())));
    assert_eq!(h.layer.state(key), Some(TxnState::Trying));
    // Trying: a retransmission is absorbed silently, and no 100 is sent.
    h.set(500);
    assert!(h
        .receive(udp_flow(), Message::Request(options.clone()))
        .is_empty());
    assert!(h.run_until(900).is_empty());
    // Proceeding: the provisional is repeated.
    assert_eq!(
        sent_statuses(&h.respond(key, response(&options, 100, None))),
        [100]
    );
    assert_eq!(h.layer.state(key), Some(TxnState::Proceeding));
    h.set(1500);
    assert_eq!(
        sent_statuses(&h.receive(udp_flow(), Message::Request(options.clone()))),
        [100]
    );
    h.set(2000);
    let ok = response(&options, 200, Some("o"));
    assert_eq!(sent_statuses(&h.respond(key, ok.clone())), [200]);
    assert_eq!(
        h.layer.send_response(h.now, key, ok),
        Err(TxnError::InvalidState)
    );
    h.set(3500);
    assert_eq!(
        sent_statuses(&h.receive(udp_flow(), Message::Request(options.clone()))),
        [200]
    );
    // The layer itself never retransmits a non-INVITE response.
    assert!(h.run_until(33_999).is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Completed));
    h.run_until(34_000);
    assert_eq!(h.layer.state(key), None);
    assert_eq!(h.layer.counters().requests_absorbed, 3);
}

#[test]
fn non_invite_over_tcp_timer_j_zero() {
    let mut h = Harness::default_config();
    let reg = request("REGISTER", BRANCH, "TCP");
    let (key, _) = new_request(&h.receive(tcp_flow(), Message::Request(reg.clone())));
    let outs = h.respond(key, response(&reg, 200, Some("r")));
    assert_eq!(sent_statuses(&outs), [200]);
    assert_eq!(h.layer.state(key), None);
    assert!(h.layer.poll_timeout().is_none());
}

#[test]
fn unanswered_requests_are_bounded() {
    let mut h = Harness::new(TxnConfig {
        trying_delay: None,
        proceeding_limit: Duration::from_secs(90),
        ..TxnConfig::default()
    });
    let (okey, _) = new_request(&h.receive(
        udp_flow(),
        Message::Request(request("OPTIONS", BRANCH, "UDP")),
    ));
    let (ikey, _) = new_request(&h.receive(
        udp_flow(),
        Message::Request(request("INVITE", BRANCH, "UDP")),
    ));
    let outs = h.run_until(200_000);
    let timeouts: Vec<(u64, TxnKey)> = outs
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Timeout { key } => Some((*t, *key)),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, [(32_000, okey), (90_000, ikey)]);
    assert_eq!(h.layer.server_count(), 0);
}

#[test]
fn cancel_gets_200_the_core_answers_487_and_the_ack_is_absorbed() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let (ikey, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    h.respond(ikey, response(&invite, 180, Some("callee")));
    h.set(3000);
    let cancel = {
        let mut c = request("CANCEL", BRANCH, "UDP");
        c.headers.remove("Contact");
        c
    };
    let outs = h.receive(udp_flow(), Message::Request(cancel.clone()));
    assert_eq!(outs.len(), 2, "{outs:?}");
    let ok = transmitted(&outs[0]).unwrap().as_response().unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.get("CSeq"), Some("1 CANCEL"));
    // The To tag of the INVITE's provisional response (§9.2).
    assert_eq!(ok.headers.to_addr().unwrap().tag(), Some("callee"));
    assert!(matches!(&outs[1], Output::Cancel { key, request, flow, .. }
            if *key == ikey && *request == cancel && *flow == udp_flow()));
    // A retransmitted CANCEL gets the 200 again, not a second Cancel.
    h.set(3500);
    let outs = h.receive(udp_flow(), Message::Request(cancel.clone()));
    assert_eq!(sent_statuses(&outs), [200]);
    assert_eq!(outs.len(), 1);
    // The core ends the INVITE with 487; the peer's ACK is absorbed.
    assert_eq!(
        sent_statuses(&h.respond(ikey, response(&invite, 487, Some("callee")))),
        [487]
    );
    assert!(h
        .receive(udp_flow(), Message::Request(ack_for(&invite, "callee")))
        .is_empty());
    assert_eq!(h.layer.state(ikey), Some(TxnState::Confirmed));
    // Everything ends: CANCEL's Timer J, INVITE's Timer I.
    h.run_until(100_000);
    assert_eq!(h.layer.server_count(), 0);
}

#[test]
fn cancel_without_invite_gets_481_and_after_final_no_event() {
    let mut h = Harness::default_config();
    let cancel = request("CANCEL", "z9hG4bKnothere", "UDP");
    let outs = h.receive(udp_flow(), Message::Request(cancel));
    assert_eq!(sent_statuses(&outs), [481]);
    assert!(matches!(outs[0], Output::Transmit { key: None, .. }));
    assert_eq!(h.layer.counters().cancels_unmatched, 1);
    assert_eq!(h.layer.server_count(), 0);

    // After the final response the CANCEL is answered 200 but has no effect.
    let invite = request("INVITE", BRANCH, "UDP");
    let (ikey, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    h.respond(ikey, response(&invite, 200, Some("done")));
    let outs = h.receive(
        udp_flow(),
        Message::Request(request("CANCEL", BRANCH, "UDP")),
    );
    assert_eq!(sent_statuses(&outs), [200]);
    assert_eq!(outs.len(), 1);
    // A CANCEL of an INVITE not answered at all gets a derived To tag.
    let invite = request("INVITE", "z9hG4bKother", "UDP");
    h.receive(udp_flow(), Message::Request(invite));
    let outs = h.receive(
        udp_flow(),
        Message::Request(request("CANCEL", "z9hG4bKother", "UDP")),
    );
    let ok = transmitted(&outs[0]).unwrap().as_response().unwrap();
    assert!(ok.headers.to_addr().unwrap().tag().is_some());
    assert!(matches!(outs[1], Output::Cancel { .. }));
}

#[test]
fn over_the_limit_new_requests_get_503_and_retransmissions_still_match() {
    let mut h = Harness::new(TxnConfig {
        max_server_transactions: 2,
        ..TxnConfig::default()
    });
    let a = request("OPTIONS", "z9hG4bKa", "UDP");
    let b = request("INVITE", "z9hG4bKb", "UDP");
    let (akey, _) = new_request(&h.receive(udp_flow(), Message::Request(a.clone())));
    new_request(&h.receive(udp_flow(), Message::Request(b.clone())));
    // A third request: stateless 503 with Retry-After, nothing for the core.
    let c = request("INVITE", "z9hG4bKc", "UDP");
    let outs = h.receive(udp_flow(), Message::Request(c.clone()));
    assert_eq!(outs.len(), 1);
    let r = transmitted(&outs[0]).unwrap().as_response().unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.headers.get("Retry-After"), Some("5"));
    assert!(r.headers.to_addr().unwrap().tag().is_some());
    assert_eq!(h.layer.server_count(), 2);
    // Its ACK is absorbed, not passed to the core.
    let tag = r.headers.to_addr().unwrap().tag().unwrap().to_owned();
    assert!(h
        .receive(udp_flow(), Message::Request(ack_for(&c, &tag)))
        .is_empty());
    // Retransmissions of existing transactions still match.
    assert!(h
        .receive(udp_flow(), Message::Request(a.clone()))
        .is_empty());
    // A CANCEL of the existing INVITE is accepted over the limit.
    let outs = h.receive(
        udp_flow(),
        Message::Request(request("CANCEL", "z9hG4bKb", "UDP")),
    );
    assert_eq!(sent_statuses(&outs), [200]);
    let counters = h.layer.counters();
    assert_eq!(counters.overload_rejected, 1);
    assert_eq!(counters.acks_absorbed, 1);
    // Once a transaction is gone there is room again.
    h.respond(akey, response(&a, 200, Some("x")));
    h.run_until(40_000);
    let d = request("OPTIONS", "z9hG4bKd", "UDP");
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(d))),
        1
    );
}

#[test]
fn matching_uses_sent_by_and_method() {
    let mut h = Harness::default_config();
    let a = request_with("OPTIONS", BRANCH, "UDP", "198.51.100.7:5060", 1);
    let b = request_with("OPTIONS", BRANCH, "UDP", "198.51.100.8:5060", 1);
    let c = request_with("INFO", BRANCH, "UDP", "198.51.100.7:5060", 1);
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(a))),
        1
    );
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(b))),
        1
    );
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(c))),
        1
    );
    // The same, with the branch in another case and the host in upper case.
    let a2 = request_with("OPTIONS", "Z9HG4BKNASHDS8", "UDP", "198.51.100.7:5060", 1);
    // (without the exact cookie this is an RFC 2543 branch: a new one)
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(a2))),
        1
    );
    let a3 = request_with("OPTIONS", "z9hG4bKNASHDS8", "UDP", "198.51.100.7:5060", 1);
    assert!(h.receive(udp_flow(), Message::Request(a3)).is_empty());
    let d = request_with("OPTIONS", "z9hG4bKdom", "UDP", "Host.Example.COM", 1);
    let d2 = request_with("OPTIONS", "z9hG4bKdom", "UDP", "host.example.com", 1);
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(d))),
        1
    );
    assert!(h.receive(udp_flow(), Message::Request(d2)).is_empty());
    assert_eq!(h.layer.server_count(), 5);
}

#[test]
fn rfc2543_requests_match_without_a_cookie() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "", "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    // Retransmission: absorbed.
    h.set(100);
    assert_eq!(
        sent_statuses(&h.receive(udp_flow(), Message::Request(invite.clone()))),
        [100]
    );
    // Another CSeq is another transaction.
    let other = request_with("INVITE", "", "UDP", "198.51.100.7:5060", 2);
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(other))),
        1
    );
    // CANCEL matches the INVITE; the ACK for the 487 is absorbed.
    let cancel = request("CANCEL", "", "UDP");
    let outs = h.receive(udp_flow(), Message::Request(cancel));
    assert!(matches!(outs[1], Output::Cancel { key: k, .. } if k == key));
    h.respond(key, response(&invite, 487, Some("l")));
    assert!(h
        .receive(udp_flow(), Message::Request(ack_for(&invite, "l")))
        .is_empty());
    assert_eq!(h.layer.state(key), Some(TxnState::Confirmed));
    // An old-style branch without the cookie works the same way.
    let legacy = request("OPTIONS", "1234abcd", "UDP");
    assert_eq!(
        count_requests(&h.receive(udp_flow(), Message::Request(legacy.clone()))),
        1
    );
    assert!(h.receive(udp_flow(), Message::Request(legacy)).is_empty());
}

#[test]
fn accepted_rfc2543_ack_goes_to_the_core_with_its_key() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "", "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    h.respond(key, response(&invite, 200, Some("ok")));
    let outs = h.receive(udp_flow(), Message::Request(ack_for(&invite, "ok")));
    assert!(matches!(&outs[..], [Output::Ack { key: Some(k), .. }] if *k == key));
}

#[test]
fn response_errors_and_transport_errors() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(invite.clone())));
    let now = h.now;
    assert_eq!(
        h.layer.send_response(now, key, Response::new(99)),
        Err(TxnError::BadStatus)
    );
    assert_eq!(h.layer.cancel(now, key), Err(TxnError::WrongRole));
    // Accepted: a transport error is reported, the transaction stays to
    // absorb retransmissions until Timer L.
    h.respond(key, response(&invite, 200, Some("a")));
    assert_eq!(
        h.layer
            .send_response(now, key, response(&invite, 486, Some("a"))),
        Err(TxnError::InvalidState)
    );
    h.layer.transport_error(key);
    assert!(matches!(&h.drain()[..], [Output::TransportError { key: k }] if *k == key));
    assert_eq!(h.layer.state(key), Some(TxnState::Accepted));
    assert!(h.receive(udp_flow(), Message::Request(invite)).is_empty());
    // Proceeding: the transaction ends.
    let info = request("INFO", BRANCH, "UDP");
    let (key, _) = new_request(&h.receive(udp_flow(), Message::Request(info)));
    h.layer.transport_error(key);
    assert!(matches!(&h.drain()[..], [Output::TransportError { key: k }] if *k == key));
    assert_eq!(h.layer.state(key), None);
    assert_eq!(h.layer.counters().transport_errors, 2);
}

#[test]
fn stray_ack_for_2xx_after_the_transaction_still_reaches_the_core() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", BRANCH, "UDP");
    let ack = ack_for(&invite, "x");
    // No transaction at all: an ACK is never answered, always passed up.
    let outs = h.receive(udp_flow(), Message::Request(ack));
    assert!(matches!(&outs[..], [Output::Ack { key: None, .. }]));
    assert_eq!(h.layer.server_count(), 0);
}
