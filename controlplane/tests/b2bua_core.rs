//! The B2BUA inside the sans-IO signalling core, without sockets: a browser
//! (WS flow, Chrome's offer) calls a legacy number, the call is routed to the
//! configured next hop with a plain RTP/AVP offer, the legacy 180 and 200 are
//! relayed with a WebRTC answer, the data plane gets both legs, and a BYE
//! from either side ends the call on the other and frees the legs. Also:
//! CANCEL before answer, no-answer timeout (408 + CANCEL), unknown callee
//! (404) and known but unregistered callee (480), a re-INVITE putting the
//! call on hold (relayed in the other dialog, legs updated in place), and a
//! MESSAGE relayed to the legacy side with its answer relayed back.

#[path = "sdp_fixtures/mod.rs"]
mod fixtures;
mod media_core;

use std::time::{Duration, Instant, SystemTime};

use strait::auth::client_authorization;
use strait::signalling::core::Core;
use strait::sip::transport::TransportEvent;
use strait::sip::txn::Destination;
use strait::sip::{FlowId, HeaderName, Message, Request, Response, Transport};
use strait_rules::abi::{Kind, LegRule};

const NEXT_HOP: &str = "127.0.0.1:17090";

fn core() -> Core {
    let toml = format!(
        "state_dir = \"/nonexistent\"\n[routing]\ndefault_next_hop = \"sip:{NEXT_HOP}\"\nno_answer_timeout_s = 5\n\
         [registrar]\npersist = false\n"
    );
    media_core::core(&toml, 0x9E37_79B9_7F4A_7C15)
}

fn ws_flow() -> FlowId {
    FlowId {
        transport: Transport::Ws,
        local: "127.0.0.1:8080".parse().expect("addr"),
        remote: "127.0.0.1:40001".parse().expect("addr"),
        conn: 7,
    }
}

fn udp_flow() -> FlowId {
    FlowId {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().expect("addr"),
        remote: NEXT_HOP.parse().expect("addr"),
        conn: 0,
    }
}

fn feed(core: &mut Core, now: Instant, flow: FlowId, text: &str) {
    let message = Message::parse(text.as_bytes()).expect("valid test message");
    core.handle_event(
        now,
        SystemTime::now(),
        TransportEvent::Message {
            flow,
            source: flow.remote,
            message,
        },
    );
}

/// Everything the core wants to send.
fn sent(core: &mut Core) -> Vec<(Destination, Message)> {
    std::iter::from_fn(|| core.poll_transmit())
        .map(|t| (t.dest, t.message))
        .collect()
}

fn only_response(out: &[(Destination, Message)]) -> Response {
    let rs: Vec<&Response> = out.iter().filter_map(|(_, m)| m.as_response()).collect();
    assert_eq!(rs.len(), 1, "one response in {out:#?}");
    rs[0].clone()
}

fn request(out: &[(Destination, Message)], method: &str) -> (Destination, Request) {
    out.iter()
        .find_map(|(d, m)| {
            m.as_request()
                .filter(|r| r.method.as_str() == method)
                .map(|r| (d.clone(), r.clone()))
        })
        .unwrap_or_else(|| panic!("no {method} in {out:#?}"))
}

/// Ring messages the media engine queued: (worker, kind, rule if any).
fn rules(core: &mut Core) -> Vec<(u32, Kind, Option<LegRule>)> {
    let m = core.b2bua_mut().media_mut().expect("media");
    std::iter::from_fn(|| m.poll_message())
        .map(|(w, k, b)| {
            let rule = matches!(k, Kind::AddLeg | Kind::UpdateLeg)
                .then(|| bytemuck::pod_read_unaligned::<LegRule>(&b));
            (w, k, rule)
        })
        .collect()
}

fn browser_invite(cseq: u32, branch: &str, auth: Option<&str>) -> String {
    let body = fixtures::CHROME_OFFER
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let auth = auth.map_or(String::new(), |a| format!("Proxy-Authorization: {a}\r\n"));
    format!(
        "INVITE sip:1234@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 69\r\nTo: <sip:1234@127.0.0.1>\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=brw1\r\nCall-ID: call-b2b-1\r\n\
         CSeq: {cseq} INVITE\r\nContact: <sip:x1@abc.invalid;transport=ws;ob>\r\n\
         {auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The browser's INVITE, challenged then authenticated: returns what the
/// core sent after the authenticated INVITE.
fn authenticated_invite(core: &mut Core, now: Instant) -> Vec<(Destination, Message)> {
    feed(core, now, ws_flow(), &browser_invite(1, "i1", None));
    let r = only_response(&sent(core));
    assert_eq!(r.status, 407);
    let challenge = r
        .headers
        .get(HeaderName::ProxyAuthenticate)
        .expect("challenge")
        .to_string();
    let creds = client_authorization(
        &challenge,
        "alice",
        "alice-secret",
        "INVITE",
        "sip:1234@127.0.0.1",
        b"",
        "cn1",
        1,
    )
    .expect("usable challenge");
    feed(core, now, ws_flow(), &browser_invite(2, "i2", Some(&creds)));
    sent(core)
}

fn legacy_response(invite: &Request, status: u16, sdp: Option<&str>) -> String {
    let h = &invite.headers;
    let body = sdp.unwrap_or("");
    let ct = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <sip:sipp@{NEXT_HOP}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        h.get(HeaderName::Via).expect("via"),
        h.get(HeaderName::From).expect("from"),
        {
            let to = h.get(HeaderName::To).expect("to");
            if to.contains(";tag=") {
                to.to_string()
            } else {
                format!("{to};tag=leg1")
            }
        },
        h.call_id().expect("call-id"),
        h.get(HeaderName::CSeq).expect("cseq"),
        body.len()
    )
}

const PCMU_ANSWER: &str =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 17200 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=sendrecv\r\n";

#[test]
fn browser_calls_legacy_and_either_side_hangs_up() {
    let mut core = core();
    let t0 = Instant::now();
    let out = authenticated_invite(&mut core, t0);
    let (dest, invite) = request(&out, "INVITE");
    // Routed to the next hop over UDP, with a plain offer from Strait's ports.
    match &dest {
        Destination::Target(t) => {
            assert_eq!(t.transport, Transport::Udp);
            assert_eq!(t.addr.to_string(), NEXT_HOP);
        }
        other => panic!("sent to {other:?}"),
    }
    assert_eq!(invite.uri.to_string(), format!("sip:1234@{NEXT_HOP}"));
    assert_ne!(invite.headers.call_id().expect("cid"), "call-b2b-1");
    let offer = String::from_utf8(invite.body.clone()).expect("utf-8");
    assert!(offer.contains("RTP/AVP"), "{offer}");
    assert!(!offer.contains("a=ice-ufrag") && !offer.contains("a=fingerprint"));
    assert!(rules(&mut core).is_empty(), "no legs before the answer");

    // 180 then 200 from the legacy side.
    feed(
        &mut core,
        t0,
        udp_flow(),
        &legacy_response(&invite, 180, None),
    );
    let r = only_response(&sent(&mut core));
    assert_eq!(r.status, 180);
    let browser_tag = r
        .headers
        .to_addr()
        .expect("to")
        .tag()
        .expect("tag")
        .to_string();
    feed(
        &mut core,
        t0,
        udp_flow(),
        &legacy_response(&invite, 200, Some(PCMU_ANSWER)),
    );
    let out = sent(&mut core);
    let (ack_dest, ack) = request(&out, "ACK");
    assert_eq!(ack_dest, dest);
    assert_eq!(ack.headers.cseq().expect("cseq").seq, 1);
    let ok = only_response(&out);
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers.to_addr().expect("to").tag(),
        Some(browser_tag.as_str())
    );
    let answer = String::from_utf8(ok.body.clone()).expect("utf-8");
    assert!(answer.contains("UDP/TLS/RTP/SAVPF"), "{answer}");
    assert!(answer.contains("a=fingerprint:sha-256"));
    assert!(answer.contains("a=ice-lite") || answer.contains("a=ice-ufrag"));
    // Both legs on one worker, naming each other; the browser leg waits for DTLS.
    let legs = rules(&mut core);
    assert_eq!(legs.len(), 2, "{legs:?}");
    let (wa, _, a) = legs[0];
    let (wb, _, b) = legs[1];
    let (a, b) = (a.expect("rule"), b.expect("rule"));
    assert_eq!(wa, wb);
    assert_eq!(a.peer_leg_id, b.leg_id);
    assert_eq!(b.peer_leg_id, a.leg_id);
    assert_ne!(a.flags & strait_rules::abi::flags::ICE, 0);
    assert_ne!(a.flags & strait_rules::abi::flags::SRTP_PENDING, 0);
    assert_eq!(b.remote_rtp.to_socket_addr().map(|s| s.port()), Some(17200));
    assert!(answer.contains(&format!("m=audio {} ", a.local_port)));
    assert!(offer.contains(&format!("m=audio {} ", b.local_port)));
    assert_eq!(core.b2bua().call_count(), 1);

    // The browser hangs up: BYE to the legacy side, legs removed.
    let bye = format!(
        "BYE sip:strait@127.0.0.1:8080;transport=ws SIP/2.0\r\n\
         Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKb1\r\nMax-Forwards: 70\r\n\
         To: <sip:1234@127.0.0.1>;tag={browser_tag}\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=brw1\r\n\
         Call-ID: call-b2b-1\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    feed(&mut core, t0, ws_flow(), &bye);
    let out = sent(&mut core);
    assert_eq!(only_response(&out).status, 200);
    let (bye_dest, bye_out) = request(&out, "BYE");
    assert_eq!(bye_dest, dest);
    assert_eq!(bye_out.uri.to_string(), format!("sip:sipp@{NEXT_HOP}"));
    assert_eq!(bye_out.headers.to_addr().expect("to").tag(), Some("leg1"));
    let gone = rules(&mut core);
    assert_eq!(
        gone.iter()
            .filter(|(_, k, _)| *k == Kind::RemoveLeg)
            .count(),
        2
    );
    assert_eq!(core.b2bua().call_count(), 0);
    assert_eq!(core.b2bua().media().expect("media").leg_count(), 0);
}

#[test]
fn cancel_before_answer_and_no_answer_timeout() {
    // CANCEL from the browser while the legacy side rings.
    let mut core = core();
    let t0 = Instant::now();
    let out = authenticated_invite(&mut core, t0);
    let (_, invite) = request(&out, "INVITE");
    feed(
        &mut core,
        t0,
        udp_flow(),
        &legacy_response(&invite, 180, None),
    );
    assert_eq!(only_response(&sent(&mut core)).status, 180);
    let cancel = "CANCEL sip:1234@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKi2\r\nMax-Forwards: 70\r\n\
         To: <sip:1234@127.0.0.1>\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=brw1\r\n\
         Call-ID: call-b2b-1\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n";
    feed(&mut core, t0, ws_flow(), cancel);
    let out = sent(&mut core);
    let statuses: Vec<u16> = out
        .iter()
        .filter_map(|(_, m)| m.as_response().map(|r| r.status))
        .collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&487),
        "{statuses:?}"
    );
    let (_, c) = request(&out, "CANCEL");
    assert_eq!(c.headers.call_id().ok(), invite.headers.call_id().ok());
    // The legacy side answers 487: the call is gone, no legs were ever made.
    feed(
        &mut core,
        t0,
        udp_flow(),
        &legacy_response(&invite, 487, None),
    );
    let _ = sent(&mut core);
    assert_eq!(core.b2bua().call_count(), 0);
    assert_eq!(core.b2bua().media().expect("media").leg_count(), 0);

    // Nobody answers: after no_answer_timeout_s the browser gets 408 and the
    // legacy side a CANCEL.
    let mut core = self::core();
    let out = authenticated_invite(&mut core, t0);
    let (_, invite) = request(&out, "INVITE");
    feed(
        &mut core,
        t0,
        udp_flow(),
        &legacy_response(&invite, 180, None),
    );
    let _ = sent(&mut core);
    let mut now = t0;
    let mut got = Vec::new();
    for _ in 0..100 {
        let Some(due) = core.poll_timeout() else {
            break;
        };
        if due > t0 + Duration::from_secs(6) {
            break;
        }
        now = due.max(now);
        core.handle_timeout(now, SystemTime::now());
        got.extend(sent(&mut core));
        if got
            .iter()
            .any(|(_, m)| m.as_response().is_some_and(|r| r.status == 408))
        {
            break;
        }
    }
    assert!(now >= t0 + Duration::from_secs(5), "not before the timeout");
    assert!(got
        .iter()
        .any(|(_, m)| m.as_response().is_some_and(|r| r.status == 408)));
    let _ = request(&got, "CANCEL");
    assert_eq!(core.b2bua().counters().no_answer, 1);
}

#[test]
fn legacy_call_to_unknown_user_is_404_and_to_unregistered_user_480() {
    let mut core = core();
    let t0 = Instant::now();
    let body = fixtures::SIPP_OFFER
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    for (user, status) in [("nobody", 404), ("bob", 480)] {
        let invite = format!(
            "INVITE sip:{user}@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {NEXT_HOP};branch=z9hG4bKl{user}\r\nMax-Forwards: 70\r\n\
             To: <sip:{user}@127.0.0.1>\r\nFrom: <sip:sipp@{NEXT_HOP}>;tag=s1\r\n\
             Call-ID: leg-{user}\r\nCSeq: 1 INVITE\r\nContact: <sip:sipp@{NEXT_HOP}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        feed(&mut core, t0, udp_flow(), &invite);
        let out = sent(&mut core);
        let r = out
            .iter()
            .filter_map(|(_, m)| m.as_response())
            .find(|r| r.status >= 200)
            .expect("a final response");
        assert_eq!(r.status, status, "{user}");
    }
    assert_eq!(core.b2bua().media().expect("media").leg_count(), 0);
}

/// Sets up an answered browser -> legacy call; returns the legacy INVITE, the
/// browser dialog's To tag and the legacy leg's destination.
fn answered_call(core: &mut Core, now: Instant) -> (Request, String, Destination) {
    let out = authenticated_invite(core, now);
    let (dest, invite) = request(&out, "INVITE");
    feed(
        core,
        now,
        udp_flow(),
        &legacy_response(&invite, 200, Some(PCMU_ANSWER)),
    );
    let out = sent(core);
    let ok = only_response(&out);
    assert_eq!(ok.status, 200);
    let tag = ok
        .headers
        .to_addr()
        .expect("to")
        .tag()
        .expect("tag")
        .to_string();
    let _ = rules(core);
    (invite, tag, dest)
}

#[test]
fn browser_puts_the_call_on_hold_with_a_reinvite() {
    let mut core = core();
    let t0 = Instant::now();
    let (_, tag, dest) = answered_call(&mut core, t0);
    let body = fixtures::CHROME_OFFER
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .replace("a=sendrecv", "a=sendonly");
    let reinvite = format!(
        "INVITE sip:strait@127.0.0.1:8080;transport=ws SIP/2.0\r\n\
         Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKr1\r\nMax-Forwards: 70\r\n\
         To: <sip:1234@127.0.0.1>;tag={tag}\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=brw1\r\n\
         Call-ID: call-b2b-1\r\nCSeq: 3 INVITE\r\nContact: <sip:x1@abc.invalid;transport=ws;ob>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    feed(&mut core, t0, ws_flow(), &reinvite);
    let out = sent(&mut core);
    let (d, re) = request(&out, "INVITE");
    assert_eq!(d, dest);
    // In the legacy dialog: its tags, the callee's Contact, the next CSeq.
    assert_eq!(re.uri.to_string(), format!("sip:sipp@{NEXT_HOP}"));
    assert_eq!(re.headers.to_addr().expect("to").tag(), Some("leg1"));
    assert!(re.headers.cseq().expect("cseq").seq > 1);
    let offer = String::from_utf8(re.body.clone()).expect("utf-8");
    assert!(offer.contains("a=sendonly"), "{offer}");
    // The legacy side accepts the hold.
    let answer = PCMU_ANSWER.replace("a=sendrecv", "a=recvonly");
    feed(
        &mut core,
        t0,
        udp_flow(),
        &legacy_response(&re, 200, Some(&answer)),
    );
    let out = sent(&mut core);
    let _ = request(&out, "ACK");
    let ok = only_response(&out);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.cseq().expect("cseq").seq, 3);
    let sdp = String::from_utf8(ok.body.clone()).expect("utf-8");
    assert!(sdp.contains("a=recvonly"), "{sdp}");
    // The legs are updated in place, not re-created; DTLS keeps running.
    let legs = rules(&mut core);
    assert_eq!(legs.len(), 2, "{legs:?}");
    assert!(legs.iter().all(|(_, k, _)| *k == Kind::UpdateLeg));
    assert_eq!(core.b2bua().call_count(), 1);
}

#[test]
fn browser_message_is_relayed_to_the_legacy_side_and_answered() {
    let mut core = core();
    let t0 = Instant::now();
    let message = |cseq: u32, auth: Option<&str>| {
        let auth = auth.map_or(String::new(), |a| format!("Proxy-Authorization: {a}\r\n"));
        format!(
            "MESSAGE sip:1234@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bKm{cseq}\r\nMax-Forwards: 70\r\n\
             To: <sip:1234@127.0.0.1>\r\nFrom: <sip:alice@127.0.0.1>;tag=m1\r\n\
             Call-ID: msg-1\r\nCSeq: {cseq} MESSAGE\r\n{auth}Content-Type: text/plain\r\n\
             Content-Length: 5\r\n\r\nhello"
        )
    };
    feed(&mut core, t0, ws_flow(), &message(1, None));
    let r = only_response(&sent(&mut core));
    assert_eq!(r.status, 407);
    let creds = client_authorization(
        r.headers
            .get(HeaderName::ProxyAuthenticate)
            .expect("challenge"),
        "alice",
        "alice-secret",
        "MESSAGE",
        "sip:1234@127.0.0.1",
        b"hello",
        "cn2",
        1,
    )
    .expect("usable");
    feed(&mut core, t0, ws_flow(), &message(2, Some(&creds)));
    let out = sent(&mut core);
    let (d, m) = request(&out, "MESSAGE");
    assert!(matches!(d, Destination::Target(_)));
    assert_eq!(m.body, b"hello");
    assert_eq!(m.headers.get(HeaderName::ContentType), Some("text/plain"));
    feed(&mut core, t0, udp_flow(), &legacy_response(&m, 202, None));
    let r = only_response(&sent(&mut core));
    assert_eq!(r.status, 202);
    assert_eq!(r.headers.call_id().ok(), Some("msg-1"));
    assert_eq!(core.b2bua().counters().messages, 1);
}
