//! Fuzz entry points (feature `fuzz`), called by the cargo-fuzz crate.
//!
//! They must never panic on any input; they assert only invariants.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::bencode::{decode, decode_prefix, Limits};
use super::reply::{CallInfo, DeleteReply, NgError, SdpReply, Statistics};
use super::stream::StreamFramer;
use super::{
    Context, Delete, Frame, List, NgConfig, NgHandler, NgServer, NgTransport, OfferAnswer, Query,
};

/// Decodes `data`; an accepted document must encode back to exactly
/// `data`, and prefix decoding must agree (same value, whole length).
pub fn bencode(data: &[u8]) {
    let limits = Limits {
        max_size: 1 << 16,
        max_depth: 32,
        max_elements: 4096,
    };
    match decode(data, &limits) {
        Ok(v) => {
            assert_eq!(v.to_bytes(), data, "decode -> encode is not the identity");
            let (p, n) =
                decode_prefix(data, &limits).expect("a whole document decodes as a prefix");
            assert_eq!((p, n), (v, data.len()));
        }
        Err(_) => {
            // A prefix that decodes must not span the whole input (or the
            // whole-input decode would have succeeded).
            if let Ok((_, n)) = decode_prefix(data, &limits) {
                assert!(n < data.len(), "prefix spans all of a refused input");
            }
        }
    }
}

/// A handler that succeeds or fails depending on the call-id, and checks
/// what it is given.
struct Echo;

impl Echo {
    fn result(call_id: &str) -> Result<(), NgError> {
        match call_id.len() % 4 {
            0 => Ok(()),
            1 => Err(NgError::UnknownCallId),
            2 => Err(NgError::CallNotFound),
            _ => Err(NgError::LoadLimit(super::LoadLimit::Load)),
        }
    }
}

impl NgHandler for Echo {
    fn offer(&mut self, _: &Context, o: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
        assert!(!o.call_id.is_empty() && !o.from_tag.is_empty());
        Echo::result(o.call_id).map(|()| SdpReply {
            sdp: o.sdp.to_string(),
            warning: o.options.label.map(str::to_string),
        })
    }
    fn answer(&mut self, _: &Context, o: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
        assert!(o.to_tag.is_some(), "an answer always has a to-tag");
        Echo::result(o.call_id).map(|()| SdpReply::default())
    }
    fn delete(&mut self, _: &Context, d: &Delete<'_>) -> Result<DeleteReply, NgError> {
        Echo::result(d.call_id).map(|()| DeleteReply::default())
    }
    fn query(&mut self, _: &Context, q: &Query<'_>) -> Result<CallInfo, NgError> {
        Echo::result(q.call_id).map(|()| CallInfo::default())
    }
    fn list(&mut self, _: &Context, l: &List) -> Result<Vec<String>, NgError> {
        Ok((0..l.limit.min(40)).map(|i| i.to_string()).collect())
    }
    fn statistics(&mut self, _: &Context) -> Result<Statistics, NgError> {
        Ok(Statistics::default())
    }
}

/// Runs `data` through an [`NgServer`] as a datagram: a reply, if any,
/// carries the request's cookie and a decodable dictionary with a
/// `result`; the same datagram again gets the same reply (from the cache
/// for commands). The same bytes fed to a [`StreamFramer`] in two pieces
/// frame the same messages as in one.
pub fn ng_message(data: &[u8]) {
    let mut server = NgServer::new(NgConfig {
        max_message_bytes: 8192,
        ..NgConfig::default()
    });
    let peer: SocketAddr = "127.0.0.1:9".parse().expect("literal");
    let t0 = Instant::now();
    let first = server.handle(&mut Echo, NgTransport::Udp, peer, data, t0);
    if let Some(reply) = &first {
        let frame = Frame::split(reply).expect("replies carry a cookie");
        let request = Frame::split(data).expect("answered input has a cookie");
        assert_eq!(frame.cookie, request.cookie);
        let v = decode(frame.payload, &Limits::default()).expect("replies decode");
        assert!(v.get("result").and_then(|r| r.as_str()).is_some());
    }
    let again = server.handle(
        &mut Echo,
        NgTransport::Udp,
        peer,
        data,
        t0 + Duration::from_millis(1),
    );
    assert_eq!(first, again, "a retransmission gets the same reply");
    let c = server.counters();
    assert_eq!(c.received, 2);

    // Stream framing does not depend on how the bytes are cut.
    let cut = data.first().map_or(0, |&b| usize::from(b)) % (data.len() + 1);
    let frames = |parts: &[&[u8]]| {
        let mut f = StreamFramer::new(8192, Limits::default());
        let mut out = Vec::new();
        for p in parts {
            f.push(p);
            loop {
                match f.next_message() {
                    Ok(Some(m)) => out.push(Ok(m)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
        out
    };
    let whole = frames(&[data]);
    let split = frames(&[&data[..cut], &data[cut..]]);
    // The same messages whatever the cut; a cut can only delay the
    // detection of an unframeable tail (until more bytes arrive).
    let ok = |v: &[Result<Vec<u8>, _>]| v.iter().take_while(|r| r.is_ok()).count();
    assert_eq!(ok(&whole), ok(&split), "same messages whatever the cut");
    let n = ok(&whole);
    assert_eq!(whole[..n], split[..n]);
    assert!(split.len() <= whole.len(), "a cut cannot add an error");
}

/// Flag sets the rtpengine modules send, one picked per fuzz input.
const FLAG_SETS: [&str; 6] = [
    "",
    "5:flagsl7:WebRTCe",
    "18:transport-protocol7:RTP/AVP3:ICE6:remove8:rtcp-muxl5:demuxe",
    "18:transport-protocol8:RTP/SAVP",
    "18:transport-protocol17:UDP/TLS/RTP/SAVPF3:ICE5:force5:flagsl20:codec-transcode-opuse",
    "5:flagsl15:codec-strip-all13:trust-addresse",
];

/// One ng session driven with fuzzed SDPs: `data` is a flag-set selector
/// byte, then the offer SDP and the answer SDP separated by a NUL. Offer,
/// answer, a repeated offer, query and delete run on a real media engine;
/// nothing may panic, and after `delete` no leg may remain.
pub fn session(data: &[u8]) {
    use crate::media::MediaEngine;
    use strait_rules::region::RegionLayout;
    use strait_rules::ring::RingGeometry;
    thread_local! {
        // One engine for all inputs (a certificate per input would be
        // slow); every input ends with no leg, so inputs stay independent.
        static ENGINE: std::cell::RefCell<MediaEngine> = {
            let cert = crate::dtls::Certificate::generate().expect("certificate");
            let ctx = crate::dtls::DtlsContext::new(&cert, crate::dtls::DtlsConfig::default())
                .expect("context");
            let layout = RegionLayout {
                workers: 2,
                ring: RingGeometry {
                    capacity: 64,
                    slot_size: 2048,
                },
                max_legs: 8,
                port_min: 30000,
                port_max: 30015,
            };
            std::cell::RefCell::new(MediaEngine::new(layout, ctx))
        };
    }
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(2, |b| *b == 0);
    let (offer, answer) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let (Ok(offer), Ok(answer)) = (std::str::from_utf8(offer), std::str::from_utf8(answer)) else {
        return;
    };
    let flags = FLAG_SETS[usize::from(sel) % FLAG_SETS.len()];
    ENGINE.with(|e| run_session(&mut e.borrow_mut(), flags, offer, answer));
}

fn run_session(engine: &mut crate::media::MediaEngine, flags: &str, offer: &str, answer: &str) {
    let msg = |cmd: &str, sdp: &str, to_tag: bool| {
        let mut m = format!("d7:command{}:{cmd}7:call-id1:c8:from-tag1:a", cmd.len());
        m.push_str(flags);
        m.push_str(&format!("3:sdp{}:{sdp}", sdp.len()));
        if to_tag {
            m.push_str("6:to-tag1:b");
        }
        m.push('e');
        m.into_bytes()
    };
    let mut calls = super::calls::NgCalls::new(super::calls::NgCallSettings {
        public_address: "192.0.2.1".parse().expect("ip"),
        media_timeout_ms: 30_000,
        nack_tail: (100, 400),
        opus_complexity: 0,
        max_calls: 4,
    });
    let mut x = 7u64;
    let mut rng = |b: &mut [u8]| {
        for v in b {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            *v = (x >> 33) as u8;
        }
    };
    let now = Instant::now();
    let wall = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let limits = super::bencode::Limits::default();
    for (cmd, sdp, to_tag) in [
        ("offer", offer, false),
        ("answer", answer, true),
        ("offer", offer, true),
    ] {
        let m = msg(cmd, sdp, to_tag);
        let Ok(super::Request::Offer(r) | super::Request::Answer(r)) =
            super::parse_request(&m, &limits)
        else {
            continue;
        };
        let out = if cmd == "offer" {
            calls.offer(engine, &mut rng, now, wall, &r)
        } else {
            calls.answer(engine, now, wall, &r)
        };
        if let Ok(reply) = out {
            // What Strait writes is SDP it can read back.
            crate::sdp::SessionDescription::parse(reply.sdp.as_bytes())
                .expect("Strait's own SDP parses");
        }
        while engine.poll_message().is_some() {}
    }
    let _ = calls.info(engine, "c");
    let _ = calls.delete(engine, wall, "c");
    assert_eq!(engine.leg_count(), 0, "delete leaves no leg");
}
