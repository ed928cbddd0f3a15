//! Offer/answer between a browser and a legacy endpoint through Strait, in
//! both call directions, with re-INVITEs and failures.

mod sdp_fixtures;

use sdp_fixtures::*;
use strait::sdp::{
    find_audio, CallMedia, CodecKind, CodecPreference, Crypto, Direction, G711Law, MediaInfo,
    SdpError, SessionDescription, Setup, Side, SrtpSuite, TranscodeMode, TranscodeNeed,
};

fn r() -> impl strait::sdp::RandomSource {
    rng(9)
}

fn m_line(sd: &SessionDescription, i: usize) -> String {
    let m = &sd.media[i];
    format!(
        "m={} {} {} {}",
        m.media,
        m.port,
        m.proto,
        m.formats.join(" ")
    )
}

fn info(sd: &SessionDescription) -> MediaInfo {
    MediaInfo::from_session(sd, find_audio(sd, None).unwrap()).unwrap()
}

/// Browser calls with `offer`; the legacy side answers `answer`.
fn browser_call(
    call: &mut CallMedia,
    offer: &str,
    answer: &str,
) -> (strait::sdp::Offer, strait::sdp::Answer) {
    let o = call
        .process_offer(Side::Browser, offer.as_bytes(), &mut r())
        .unwrap();
    let a = call
        .process_answer(Side::Legacy, answer.as_bytes(), &mut r())
        .unwrap();
    (o, a)
}

/// Legacy calls with `offer`; the browser answers `answer`.
fn legacy_call(
    call: &mut CallMedia,
    offer: &str,
    answer: &str,
) -> (strait::sdp::Offer, strait::sdp::Answer) {
    let o = call
        .process_offer(Side::Legacy, offer.as_bytes(), &mut r())
        .unwrap();
    let a = call
        .process_answer(Side::Browser, answer.as_bytes(), &mut r())
        .unwrap();
    (o, a)
}

fn pcmu_answer() -> String {
    legacy_answer(
        "0 126",
        &[
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:126 telephone-event/8000",
            "a=fmtp:126 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ],
    )
}

// --- browser -> legacy --------------------------------------------------------

#[test]
fn chrome_offer_becomes_a_plain_legacy_offer() {
    let mut c = call(config());
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(o.transcoding, TranscodeNeed::No);
    assert!(!o.ice_restart);
    let sid = o.sdp.origin.session_id.clone();
    let expected = format!(
        "v=0\r\n\
         o=strait {sid} 1 IN IP4 192.0.2.1\r\n\
         s=-\r\n\
         c=IN IP4 192.0.2.1\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 0 8 126\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:126 telephone-event/8000\r\n\
         a=fmtp:126 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    );
    assert_eq!(o.sdp.to_string(), expected);
    for gone in [
        "a=ice",
        "a=fingerprint",
        "a=setup",
        "a=mid",
        "a=group",
        "a=rtcp-fb",
        "a=extmap",
        "a=ssrc",
        "a=msid",
        "a=rtcp-mux",
        "a=candidate",
        "a=rtpmap:111",
    ] {
        lacks(&o.sdp, gone);
    }
    assert_eq!(c.pending_offer_from(), Some(Side::Browser));
    assert!(c.plan().is_none(), "no plan before the answer");
}

#[test]
fn legacy_pcmu_answer_becomes_a_webrtc_answer() {
    let mut c = call(config());
    let (_, a) = browser_call(&mut c, CHROME_OFFER, &pcmu_answer());
    let ice = c.local_ice().clone();
    let sid = a.sdp.origin.session_id.clone();
    let fp = ["5A"; 32].join(":");
    let expected = format!(
        "v=0\r\n\
         o=strait {sid} 1 IN IP4 203.0.113.1\r\n\
         s=-\r\n\
         c=IN IP4 203.0.113.1\r\n\
         t=0 0\r\n\
         a=ice-lite\r\n\
         a=group:BUNDLE 0\r\n\
         m=audio 40000 UDP/TLS/RTP/SAVPF 0 126\r\n\
         a=mid:0\r\n\
         a=ice-ufrag:{}\r\n\
         a=ice-pwd:{}\r\n\
         a=fingerprint:sha-256 {fp}\r\n\
         a=setup:passive\r\n\
         a=sendrecv\r\n\
         a=rtcp-mux\r\n\
         a=rtcp-rsize\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:126 telephone-event/8000\r\n\
         a=candidate:1 1 udp 2130706431 203.0.113.1 40000 typ host\r\n\
         a=candidate:2 1 udp 2130706175 10.0.0.1 40000 typ host\r\n\
         a=end-of-candidates\r\n",
        ice.ufrag, ice.pwd
    );
    assert_eq!(a.sdp.to_string(), expected);
    // Chrome offered no NACK for audio: none is added (RFC 4585 §4.2).
    lacks(&a.sdp, "a=rtcp-fb");
    assert_eq!(c.pending_offer_from(), None);

    let p = &a.plan;
    assert!(!p.transcoding());
    let b = &p.browser;
    assert_eq!(b.side, Side::Browser);
    assert_eq!(b.remote_rtp, Some("192.168.1.23:54321".parse().unwrap()));
    assert!(b.rtcp_mux && b.local_rtcp_port.is_none());
    assert_eq!(b.local_rtp_port, 40000);
    let ice_plan = b.ice.as_ref().unwrap();
    assert_eq!(ice_plan.local, ice);
    assert_eq!(ice_plan.remote.ufrag, "Fm2R");
    let dtls = b.dtls.as_ref().unwrap();
    assert_eq!(dtls.local_role, Setup::Passive);
    assert_eq!(dtls.remote_fingerprint.bytes[0], 0x7B);
    assert_eq!(
        (b.codec.kind, b.codec.pt, b.event_pt),
        (CodecKind::Pcmu, 0, Some(126))
    );
    assert!(b.pt_map.is_empty() && b.transcode.is_none());
    assert!(b.send && b.recv && b.direction == Direction::SendRecv);
    assert!(!b.nack);
    let l = &p.legacy;
    assert_eq!(l.remote_rtp, Some("192.0.2.9:20000".parse().unwrap()));
    assert_eq!(l.remote_rtcp, Some("192.0.2.9:20001".parse().unwrap()));
    assert_eq!(
        (l.local_rtp_port, l.local_rtcp_port, l.rtcp_mux),
        (30000, Some(30001), false)
    );
    assert!(l.ice.is_none() && l.dtls.is_none() && l.sdes.is_none());
    assert_eq!(
        (l.codec.kind, l.codec.pt, l.event_pt),
        (CodecKind::Pcmu, 0, Some(126))
    );
    assert!(l.pt_map.is_empty());
    assert_eq!(l.ptime, Some(20));
    assert_eq!(c.plan(), Some(p));
}

#[test]
fn legacy_answer_with_other_event_pt_is_remapped() {
    let mut c = call(config());
    let ans = legacy_answer(
        "0 101",
        &["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"],
    );
    let (_, a) = browser_call(&mut c, CHROME_OFFER, &ans);
    has(&a.sdp, "m=audio 40000 UDP/TLS/RTP/SAVPF 0 126");
    let p = &a.plan;
    // Browser's 126 leaves toward the legacy side as 101.
    assert_eq!(p.legacy.pt_map, vec![(126, 101)]);
    assert_eq!(p.legacy.event_pt, Some(101));
    // The legacy side should send 126 (our offer) but may send 101: both reach the browser as 126.
    assert_eq!(p.browser.pt_map, vec![(101, 126)]);
}

#[test]
fn legacy_picks_pcma_passthrough() {
    let mut c = call(config());
    let ans = legacy_answer(
        "8 126",
        &["a=rtpmap:8 PCMA/8000", "a=rtpmap:126 telephone-event/8000"],
    );
    let (_, a) = browser_call(&mut c, CHROME_OFFER, &ans);
    has(&a.sdp, "m=audio 40000 UDP/TLS/RTP/SAVPF 8 126");
    has(&a.sdp, "a=rtpmap:8 PCMA/8000");
    lacks(&a.sdp, "a=rtpmap:0 ");
    assert!(!a.plan.transcoding());
    assert_eq!(a.plan.legacy.codec.kind, CodecKind::Pcma);
}

#[test]
fn legacy_without_telephone_event_drops_dtmf_on_both_sides() {
    let mut c = call(config());
    let (_, a) = browser_call(&mut c, CHROME_OFFER, &legacy_answer("0", &[]));
    has(&a.sdp, "m=audio 40000 UDP/TLS/RTP/SAVPF 0");
    lacks(&a.sdp, "a=rtpmap:126");
    assert_eq!(
        (a.plan.browser.event_pt, a.plan.legacy.event_pt),
        (None, None)
    );
}

#[test]
fn opus_only_browser_is_transcoded_to_g711() {
    let mut c = call(config());
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER_OPUS_ONLY.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(o.transcoding, TranscodeNeed::Required);
    has(&o.sdp, "m=audio 30000 RTP/AVP 0 8 126");
    has(&o.sdp, "a=rtpmap:126 telephone-event/8000");
    let ans = legacy_answer(
        "8 126",
        &["a=rtpmap:8 PCMA/8000", "a=rtpmap:126 telephone-event/8000"],
    );
    let a = c
        .process_answer(Side::Legacy, ans.as_bytes(), &mut r())
        .unwrap();
    has(&a.sdp, "m=audio 40000 UDP/TLS/RTP/SAVPF 111 110");
    has(&a.sdp, "a=rtpmap:111 opus/48000/2");
    has(&a.sdp, "a=fmtp:111 minptime=10;useinbandfec=1");
    has(&a.sdp, "a=rtpmap:110 telephone-event/48000");
    // The browser offered NACK for Opus, so Strait answers it (and will serve it).
    has(&a.sdp, "a=rtcp-fb:111 nack");
    lacks(&a.sdp, "a=rtcp-fb:111 transport-cc");
    let p = &a.plan;
    assert!(p.transcoding());
    let tb = p.browser.transcode.unwrap();
    assert_eq!(tb.mode, TranscodeMode::G711ToOpus);
    assert_eq!(tb.mode.abi_code(), 1);
    assert_eq!((tb.law, tb.g711_pt, tb.opus_pt), (G711Law::ALaw, 8, 111));
    assert_eq!((tb.g711_event_pt, tb.opus_event_pt), (Some(126), Some(110)));
    let tl = p.legacy.transcode.unwrap();
    assert_eq!(tl.mode, TranscodeMode::OpusToG711);
    assert_eq!((tl.law.abi_code(), tl.g711_pt, tl.opus_pt), (1, 8, 111));
    assert_eq!((tl.g711_event_pt, tl.opus_event_pt), (Some(126), Some(110)));
    assert!(p.browser.pt_map.is_empty() && p.legacy.pt_map.is_empty());
    assert!(p.browser.nack);
    assert_eq!(
        (p.browser.codec.kind, p.browser.codec.clock_rate),
        (CodecKind::Opus, 48000)
    );
    assert_eq!(p.browser.event_pt, Some(110));
}

#[test]
fn opus_only_browser_without_transcoding_is_refused() {
    let mut cfg = config();
    cfg.transcoding = false;
    let mut c = call(cfg);
    let e = c
        .process_offer(Side::Browser, CHROME_OFFER_OPUS_ONLY.as_bytes(), &mut r())
        .unwrap_err();
    assert_eq!(e, SdpError::NoCommonCodec);
    assert_eq!(e.sip_status(), 488);
    assert_eq!(c.pending_offer_from(), None);
}

#[test]
fn browser_pcma_only_offers_pcmu_too_for_transcoding() {
    let mut c = call(config());
    // Browser offers Opus + PCMA only.
    let offer = CHROME_OFFER.replace("111 63 9 0 8 13 110 126", "111 8 110 126");
    let o = c
        .process_offer(Side::Browser, offer.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(o.transcoding, TranscodeNeed::Possible);
    has(&o.sdp, "m=audio 30000 RTP/AVP 8 0 126");
    // The legacy side only does PCMU: Opus <-> PCMU.
    let a = c
        .process_answer(
            Side::Legacy,
            legacy_answer("0 126", &["a=rtpmap:126 telephone-event/8000"]).as_bytes(),
            &mut r(),
        )
        .unwrap();
    has(&a.sdp, "m=audio 40000 UDP/TLS/RTP/SAVPF 111 110");
    assert_eq!(a.plan.legacy.transcode.unwrap().law, G711Law::MuLaw);
}

#[test]
fn video_and_trickle_offers() {
    let mut c = call(config());
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER_VIDEO.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(o.sdp.media.len(), 1, "only audio goes to the legacy side");
    lacks(&o.sdp, "m=video");
    let a = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    assert_eq!(
        a.sdp.media.len(),
        2,
        "the answer mirrors the offer's sections"
    );
    assert_eq!(m_line(&a.sdp, 1), "m=video 0 UDP/TLS/RTP/SAVPF 96");
    assert_eq!(a.sdp.media[1].attr("mid"), Some("1"));
    has(&a.sdp, "a=group:BUNDLE 0");
    // A later Strait offer to the browser keeps both sections.
    let reoffer = ASTERISK_OFFER.replace("o=- 1710263480 1710263480", "o=- 1710263480 1710263481");
    let mut c2 = call(config());
    browser_call(&mut c2, CHROME_OFFER_VIDEO, &pcmu_answer());
    let o2 = c2
        .process_offer(Side::Legacy, reoffer.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(o2.sdp.media.len(), 2);
    assert_eq!(o2.sdp.media[0].attr("mid"), Some("0"));
    assert_eq!(m_line(&o2.sdp, 1), "m=video 0 UDP/TLS/RTP/SAVPF 96");

    // Trickle offer (c=0.0.0.0, port 9, mDNS candidate) is not a hold.
    let mut c = call(config());
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER_MDNS.as_bytes(), &mut r())
        .unwrap();
    has(&o.sdp, "a=sendrecv");
    let a = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    assert_eq!(a.plan.browser.remote_rtp, None, "latched by ICE");
    assert!(a.plan.browser.send && a.plan.legacy.send);
    lacks(&a.sdp, "a=rtcp-rsize");
}

// --- legacy -> browser --------------------------------------------------------

#[test]
fn phone_offer_becomes_a_webrtc_offer() {
    let mut c = call(config());
    let o = c
        .process_offer(Side::Legacy, PHONE_OFFER_LF.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(o.transcoding, TranscodeNeed::Possible);
    let sd = &o.sdp;
    assert_eq!(
        m_line(sd, 0),
        "m=audio 40000 UDP/TLS/RTP/SAVPF 8 0 111 110 101"
    );
    for line in [
        "c=IN IP4 203.0.113.1",
        "a=ice-lite",
        "a=group:BUNDLE 0",
        "a=mid:0",
        "a=setup:actpass",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=sendrecv",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtcp-fb:8 nack",
        "a=rtcp-fb:111 nack",
        "a=candidate:1 1 udp 2130706431 203.0.113.1 40000 typ host",
        "a=end-of-candidates",
    ] {
        has(sd, line);
    }
    has(sd, &format!("a=ice-ufrag:{}", c.local_ice().ufrag));
    has(
        sd,
        &format!("a=fingerprint:sha-256 {}", ["5A"; 32].join(":")),
    );
    for gone in [
        "a=rtpmap:18",
        "a=rtpmap:9 ",
        "a=rtcp:",
        "a=ptime",
        "a=crypto",
        "a=rtcp-fb:101",
        "a=rtcp-fb:110",
    ] {
        lacks(sd, gone);
    }
    // Strait's own offer is a valid browser description.
    let me = info(sd);
    assert!(me.profile.is_dtls() && me.rtcp_mux && me.ice.is_some() && me.bundled);
}

#[test]
fn chrome_answers_pcma_passthrough() {
    let mut c = call(config());
    let (_, a) = legacy_call(&mut c, PHONE_OFFER_LF, &chrome_answer_with("8 101"));
    let sid = a.sdp.origin.session_id.clone();
    let expected = format!(
        "v=0\r\n\
         o=strait {sid} 1 IN IP4 192.0.2.1\r\n\
         s=-\r\n\
         c=IN IP4 192.0.2.1\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 8 101\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    );
    assert_eq!(a.sdp.to_string(), expected);
    let p = &a.plan;
    assert!(!p.transcoding());
    assert_eq!(
        p.legacy.remote_rtp,
        Some("198.51.100.20:11780".parse().unwrap())
    );
    assert_eq!(
        p.legacy.remote_rtcp,
        Some("198.51.100.20:11781".parse().unwrap()),
        "from a=rtcp"
    );
    assert_eq!(
        p.browser.remote_rtp,
        Some("192.168.1.23:61234".parse().unwrap())
    );
    assert_eq!(
        p.browser.dtls.as_ref().unwrap().local_role,
        Setup::Passive,
        "Chrome answered active"
    );
    assert_eq!(p.browser.ice.as_ref().unwrap().remote.ufrag, "Qw8p");
    assert!(p.browser.nack, "Chrome answered a=rtcp-fb:8 nack");
    assert_eq!((p.browser.codec.pt, p.legacy.codec.pt), (8, 8));
    assert!(p.browser.pt_map.is_empty() && p.legacy.pt_map.is_empty());
}

#[test]
fn chrome_answers_opus_and_strait_transcodes_to_the_legacy_law() {
    let mut c = call(config());
    let pcma_only = PHONE_OFFER_LF.replace("RTP/AVP 8 0 18 9 101", "RTP/AVP 8 101");
    let (o, a) = legacy_call(&mut c, &pcma_only, &chrome_answer_with("111 110"));
    assert_eq!(
        m_line(&o.sdp, 0),
        "m=audio 40000 UDP/TLS/RTP/SAVPF 8 111 110 101"
    );
    has(&a.sdp, "m=audio 30000 RTP/AVP 8 101");
    let p = &a.plan;
    assert!(p.transcoding());
    let tb = p.browser.transcode.unwrap();
    assert_eq!(
        (tb.mode, tb.law, tb.g711_pt, tb.opus_pt),
        (TranscodeMode::G711ToOpus, G711Law::ALaw, 8, 111)
    );
    assert_eq!((tb.g711_event_pt, tb.opus_event_pt), (Some(101), Some(110)));
    let tl = p.legacy.transcode.unwrap();
    assert_eq!(
        (tl.mode, tl.g711_pt, tl.opus_pt),
        (TranscodeMode::OpusToG711, 8, 111)
    );
}

#[test]
fn opus_preference_puts_opus_first() {
    let mut cfg = config();
    cfg.preference = CodecPreference::Opus;
    let mut c = call(cfg);
    let o = c
        .process_offer(Side::Legacy, ASTERISK_OFFER.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(
        m_line(&o.sdp, 0),
        "m=audio 40000 UDP/TLS/RTP/SAVPF 111 0 8 110 101"
    );
    // Without transcoding, Opus is not offered at all.
    let mut cfg = config();
    cfg.transcoding = false;
    let mut c = call(cfg);
    let o = c
        .process_offer(Side::Legacy, ASTERISK_OFFER.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(o.transcoding, TranscodeNeed::No);
    assert_eq!(m_line(&o.sdp, 0), "m=audio 40000 UDP/TLS/RTP/SAVPF 0 8 101");
}

#[test]
fn sipp_offer_without_events() {
    let mut c = call(config());
    let o = c
        .process_offer(Side::Legacy, SIPP_OFFER.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(m_line(&o.sdp, 0), "m=audio 40000 UDP/TLS/RTP/SAVPF 0 111");
    lacks(&o.sdp, "a=rtpmap:110");
    lacks(&o.sdp, "a=rtpmap:101");
    let a = c
        .process_answer(Side::Browser, chrome_answer_with("0").as_bytes(), &mut r())
        .unwrap();
    assert_eq!(m_line(&a.sdp, 0), "m=audio 30000 RTP/AVP 0");
    lacks(&a.sdp, "a=fmtp");
    assert_eq!(
        a.plan.legacy.remote_rtcp,
        Some("127.0.0.1:6001".parse().unwrap())
    );
}

#[test]
fn g729_only_legacy_offer_is_refused() {
    let mut c = call(config());
    let e = c
        .process_offer(Side::Legacy, G729_OFFER.as_bytes(), &mut r())
        .unwrap_err();
    assert_eq!(e, SdpError::NoCommonCodec);
    assert_eq!(e.to_string(), "no common audio codec");
    assert_eq!(c.pending_offer_from(), None);
    // The call object is still usable.
    assert!(c
        .process_offer(Side::Legacy, ASTERISK_OFFER.as_bytes(), &mut r())
        .is_ok());
}

#[test]
fn dtls_roles_both_ways() {
    // Browser answers passive to Strait's actpass: Strait is the DTLS client.
    let mut c = call(config());
    let ans = chrome_answer_with("0 101").replace("a=setup:active", "a=setup:passive");
    let (_, a) = legacy_call(&mut c, ASTERISK_OFFER, &ans);
    assert_eq!(
        a.plan.browser.dtls.as_ref().unwrap().local_role,
        Setup::Active
    );
    // Browser offers passive: Strait answers active.
    let mut c = call(config());
    let offer = CHROME_OFFER.replace("a=setup:actpass", "a=setup:passive");
    let (_, a) = browser_call(&mut c, &offer, &pcmu_answer());
    has(&a.sdp, "a=setup:active");
    assert_eq!(
        a.plan.browser.dtls.as_ref().unwrap().local_role,
        Setup::Active
    );
    // Browser offers active: Strait answers passive.
    let mut c = call(config());
    let offer = CHROME_OFFER.replace("a=setup:actpass", "a=setup:active");
    let (_, a) = browser_call(&mut c, &offer, &pcmu_answer());
    has(&a.sdp, "a=setup:passive");
    // An actpass answer is invalid.
    let mut c = call(config());
    c.process_offer(Side::Legacy, ASTERISK_OFFER.as_bytes(), &mut r())
        .unwrap();
    let ans = chrome_answer_with("0 101").replace("a=setup:active", "a=setup:actpass");
    assert_eq!(
        c.process_answer(Side::Browser, ans.as_bytes(), &mut r())
            .unwrap_err(),
        SdpError::BadSetup
    );
}

// --- re-INVITEs ---------------------------------------------------------------

#[test]
fn browser_hold_and_resume_with_versions() {
    let mut c = call(config());
    let (o1, a1) = browser_call(&mut c, CHROME_OFFER, &pcmu_answer());
    assert_eq!((version(&o1.sdp), version(&a1.sdp)), (1, 1));

    // Chrome puts the call on hold: a=sendonly.
    let hold = CHROME_OFFER
        .replace("o=- 4215775240449105457 2", "o=- 4215775240449105457 3")
        .replace("a=sendrecv", "a=sendonly");
    let o2 = c
        .process_offer(Side::Browser, hold.as_bytes(), &mut r())
        .unwrap();
    has(&o2.sdp, "a=sendonly");
    lacks(&o2.sdp, "a=sendrecv");
    assert_eq!(version(&o2.sdp), 2);
    assert_eq!(o2.sdp.origin.session_id, o1.sdp.origin.session_id);
    has(&o2.sdp, "m=audio 30000 RTP/AVP 0 8 126");
    // A sloppy legacy side answers sendrecv: coerced to recvonly for the browser.
    let a2 = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    has(&a2.sdp, "a=recvonly");
    assert_eq!(version(&a2.sdp), 2);
    assert_eq!(a2.sdp.origin.session_id, a1.sdp.origin.session_id);
    let p = &a2.plan;
    assert_eq!((p.browser.send, p.browser.recv), (false, true));
    assert_eq!(p.browser.direction, Direction::RecvOnly);
    assert_eq!((p.legacy.send, p.legacy.recv), (true, false));

    // Resume.
    let o3 = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    has(&o3.sdp, "a=sendrecv");
    assert_eq!(version(&o3.sdp), 3);
    let a3 = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    assert_eq!(version(&a3.sdp), 3);
    assert!(a3.plan.browser.send && a3.plan.legacy.send);

    // A session refresh with the same SDP: same body, same version (RFC 3264 §8).
    let o4 = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(version(&o4.sdp), 3);
    assert_eq!(o4.sdp, o3.sdp);
    let a4 = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    assert_eq!(version(&a4.sdp), 3);
}

#[test]
fn legacy_old_style_and_inactive_hold() {
    let mut c = call(config());
    legacy_call(&mut c, ASTERISK_OFFER, &chrome_answer_with("0 101"));
    // Old-style hold: c=0.0.0.0.
    let hold = ASTERISK_OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
    let o = c
        .process_offer(Side::Legacy, hold.as_bytes(), &mut r())
        .unwrap();
    has(&o.sdp, "a=sendonly");
    has(&o.sdp, "c=IN IP4 203.0.113.1");
    assert_eq!(version(&o.sdp), 2);
    let ans = chrome_answer_with("0 101").replace("a=sendrecv", "a=recvonly");
    let a = c
        .process_answer(Side::Browser, ans.as_bytes(), &mut r())
        .unwrap();
    has(&a.sdp, "a=recvonly");
    assert_eq!(version(&a.sdp), 2);
    let p = &a.plan;
    assert_eq!(p.legacy.remote_rtp, None);
    assert!(!p.legacy.send && p.legacy.recv);
    assert!(p.browser.send && !p.browser.recv);
    // inactive.
    let inactive = ASTERISK_OFFER.replace("a=sendrecv", "a=inactive");
    let o = c
        .process_offer(Side::Legacy, inactive.as_bytes(), &mut r())
        .unwrap();
    has(&o.sdp, "a=inactive");
    let ans = chrome_answer_with("0 101").replace("a=sendrecv", "a=inactive");
    let a = c
        .process_answer(Side::Browser, ans.as_bytes(), &mut r())
        .unwrap();
    has(&a.sdp, "a=inactive");
    assert!(!a.plan.legacy.send && !a.plan.legacy.recv && !a.plan.browser.send);
    // Resume.
    let o = c
        .process_offer(Side::Legacy, ASTERISK_OFFER.as_bytes(), &mut r())
        .unwrap();
    has(&o.sdp, "a=sendrecv");
    assert_eq!(version(&o.sdp), 4);
    // Strait's ICE credentials and the mid stay put across re-offers.
    assert_eq!(
        o.sdp.media[0].attr("ice-ufrag").unwrap(),
        c.local_ice().ufrag
    );
    assert_eq!(o.sdp.media[0].attr("mid"), Some("0"));
}

#[test]
fn reinvite_changing_payload_types_is_remapped() {
    let mut c = call(config());
    legacy_call(&mut c, ASTERISK_OFFER, &chrome_answer_with("0 101"));
    // The legacy side now numbers telephone-event 96.
    let renumbered = ASTERISK_OFFER
        .replace("RTP/AVP 0 8 3 101", "RTP/AVP 0 8 3 96")
        .replace(
            "telephone-event/8000",
            "telephone-event/8000\r\na=rtpmap:96 telephone-event/8000",
        )
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "")
        .replace("a=fmtp:101", "a=fmtp:96");
    let o = c
        .process_offer(Side::Legacy, renumbered.as_bytes(), &mut r())
        .unwrap();
    // Strait keeps its browser-side numbering: telephone-event/8000 stays 101.
    assert_eq!(
        m_line(&o.sdp, 0),
        "m=audio 40000 UDP/TLS/RTP/SAVPF 0 8 111 110 101"
    );
    let a = c
        .process_answer(
            Side::Browser,
            chrome_answer_with("0 101").as_bytes(),
            &mut r(),
        )
        .unwrap();
    has(&a.sdp, "m=audio 30000 RTP/AVP 0 96");
    has(&a.sdp, "a=rtpmap:96 telephone-event/8000");
    has(&a.sdp, "a=fmtp:96 0-16");
    assert_eq!(a.plan.legacy.pt_map, vec![(101, 96)]);
    assert_eq!(a.plan.browser.pt_map, vec![(96, 101)]);
    assert_eq!(a.plan.legacy.event_pt, Some(96));

    // Then the legacy side drops PCMU: codec renegotiated to PCMA.
    let pcma = ASTERISK_OFFER.replace("RTP/AVP 0 8 3 101", "RTP/AVP 8 101");
    let o = c
        .process_offer(Side::Legacy, pcma.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(
        m_line(&o.sdp, 0),
        "m=audio 40000 UDP/TLS/RTP/SAVPF 8 111 110 101"
    );
    let a = c
        .process_answer(
            Side::Browser,
            chrome_answer_with("8 111 110 101").as_bytes(),
            &mut r(),
        )
        .unwrap();
    assert_eq!(a.plan.legacy.codec.kind, CodecKind::Pcma);
    assert_eq!(a.plan.browser.codec.kind, CodecKind::Pcma);
    assert!(!a.plan.transcoding());
}

#[test]
fn browser_reoffer_with_new_ice_credentials_restarts_ice() {
    let mut c = call(config());
    browser_call(&mut c, CHROME_OFFER, &pcmu_answer());
    let before = c.local_ice().clone();
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    assert!(!o.ice_restart);
    c.process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    assert_eq!(*c.local_ice(), before);

    let restart = CHROME_OFFER
        .replace("a=ice-ufrag:Fm2R", "a=ice-ufrag:N3wU")
        .replace(
            "a=ice-pwd:tGHOHbsFZ3I5QpdQJQ/mo+Ce",
            "a=ice-pwd:NewPasswordNewPassword12",
        );
    let o = c
        .process_offer(Side::Browser, restart.as_bytes(), &mut r())
        .unwrap();
    assert!(o.ice_restart);
    // Not committed until the answer.
    assert_eq!(*c.local_ice(), before);
    let a = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    let after = c.local_ice().clone();
    assert_ne!(after, before);
    assert!(after.is_valid());
    has(&a.sdp, &format!("a=ice-ufrag:{}", after.ufrag));
    let ice = a.plan.browser.ice.as_ref().unwrap();
    assert_eq!(
        (ice.local.clone(), ice.remote.ufrag.as_str()),
        (after, "N3wU")
    );
}

#[test]
fn cancelled_reoffer_keeps_the_previous_plan() {
    let mut c = call(config());
    let (_, a1) = browser_call(&mut c, CHROME_OFFER, &pcmu_answer());
    let hold = CHROME_OFFER.replace("a=sendrecv", "a=sendonly");
    c.process_offer(Side::Browser, hold.as_bytes(), &mut r())
        .unwrap();
    c.cancel_offer();
    assert_eq!(c.plan(), Some(&a1.plan));
    assert_eq!(c.pending_offer_from(), None);
    // The next offer still gets a fresh version (the rejected one was seen).
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    assert_eq!(version(&o.sdp), 3);
}

// --- SDES, options -------------------------------------------------------------

#[test]
fn sdes_legacy_offer_gets_an_sdes_answer() {
    let mut c = call(config());
    let o = c
        .process_offer(Side::Legacy, SDES_OFFER.as_bytes(), &mut r())
        .unwrap();
    lacks(&o.sdp, "a=crypto");
    let a = c
        .process_answer(
            Side::Browser,
            chrome_answer_with("8 101").as_bytes(),
            &mut r(),
        )
        .unwrap();
    has(&a.sdp, "m=audio 30000 RTP/SAVP 8 101");
    let line = a.sdp.media[0].attr("crypto").unwrap();
    let mine = Crypto::parse(line).unwrap();
    assert_eq!((mine.tag, mine.suite), (3, SrtpSuite::AesCm128HmacSha1_32));
    let s = a.plan.legacy.sdes.unwrap();
    assert_eq!(s.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(&s.rx.key, b"70xwPH5@/,L:S1wY");
    assert_eq!(s.tx, mine.key);
    assert_ne!(s.tx.key, s.rx.key);
    // SAVP without a usable crypto line.
    let mut c = call(config());
    let bad = SDES_OFFER.replace("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20\r\n", "");
    assert_eq!(
        c.process_offer(Side::Legacy, bad.as_bytes(), &mut r())
            .unwrap_err(),
        SdpError::NoUsableCrypto
    );
}

#[test]
fn sdes_stays_on_when_the_browser_reoffers() {
    let mut c = call(config());
    let (_, a) = legacy_call(&mut c, SDES_OFFER, &chrome_answer_with("8 101"));
    let mine = Crypto::parse(a.sdp.media[0].attr("crypto").unwrap()).unwrap();
    let o = c
        .process_offer(
            Side::Browser,
            CHROME_OFFER.replace("a=sendrecv", "a=sendonly").as_bytes(),
            &mut r(),
        )
        .unwrap();
    has(&o.sdp, "a=sendonly");
    assert_eq!(o.sdp.media[0].proto, "RTP/SAVP");
    let again = Crypto::parse(o.sdp.media[0].attr("crypto").unwrap()).unwrap();
    assert_eq!(again, mine, "same tag, suite and key as negotiated");
    let ans = legacy_answer(
        "8 126",
        &["a=rtpmap:126 telephone-event/8000", "a=recvonly"],
    )
    .replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n";
    let a = c
        .process_answer(Side::Legacy, ans.as_bytes(), &mut r())
        .unwrap();
    has(&a.sdp, "a=recvonly");
    let s = a.plan.legacy.sdes.unwrap();
    assert_eq!((s.suite, s.tx), (SrtpSuite::AesCm128HmacSha1_32, mine.key));
}

#[test]
fn strait_offers_sdes_when_configured() {
    let mut cfg = config();
    cfg.legacy.offer_sdes = true;
    let mut c = call(cfg);
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    has(&o.sdp, "m=audio 30000 RTP/SAVP 0 8 126");
    let ours = Crypto::parse(o.sdp.media[0].attr("crypto").unwrap()).unwrap();
    assert_eq!((ours.tag, ours.suite), (1, SrtpSuite::AesCm128HmacSha1_80));
    // Answer with plain RTP: refused.
    let e = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap_err();
    assert_eq!(e, SdpError::UnsupportedProfile);
    // Answer with SAVP and a matching crypto line.
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    let again = Crypto::parse(o.sdp.media[0].attr("crypto").unwrap()).unwrap();
    assert_eq!(again, ours, "the key is kept across re-offers");
    let ans = pcmu_answer().replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
    let a = c
        .process_answer(Side::Legacy, ans.as_bytes(), &mut r())
        .unwrap();
    let s = a.plan.legacy.sdes.unwrap();
    assert_eq!((s.tx, &s.rx.key), (ours.key, b"YS___semctl () {"));
}

#[test]
fn ssrc_rtcp_attribute_and_legacy_rtcp_mux_options() {
    let mut cfg = config();
    cfg.browser.ssrc = Some(0x0102_0304);
    cfg.legacy.rtcp_attribute = true;
    let mut c = call(cfg);
    let o = c
        .process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    has(&o.sdp, "a=rtcp:30001");
    let a = c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .unwrap();
    let ssrc = a.sdp.media[0].attrs("ssrc").next().unwrap().to_owned();
    assert!(ssrc.starts_with("16909060 cname:"), "{ssrc}");
    has(&a.sdp, "a=msid:strait strait-audio");
    assert_eq!(a.plan.browser.ssrc_out, Some(16909060));

    // A legacy peer offering rtcp-mux gets it.
    let mut c = call(config());
    let mux = ASTERISK_OFFER.replace("a=sendrecv", "a=sendrecv\r\na=rtcp-mux");
    let (_, a) = legacy_call(&mut c, &mux, &chrome_answer_with("0 101"));
    has(&a.sdp, "a=rtcp-mux");
    let l = &a.plan.legacy;
    assert!(l.rtcp_mux);
    assert_eq!(l.local_rtcp_port, None);
    assert_eq!(l.remote_rtcp, l.remote_rtp);
}

// --- failures -----------------------------------------------------------------

#[test]
fn browser_offers_missing_webrtc_essentials_are_refused() {
    let strip = |needle: &str| -> String {
        CHROME_OFFER
            .lines()
            .filter(|l| !l.starts_with(needle))
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    };
    let cases = [
        (strip("a=fingerprint"), SdpError::MissingFingerprint),
        (strip("a=ice-pwd"), SdpError::MissingIce),
        (strip("a=rtcp-mux"), SdpError::RtcpMuxRequired),
        (
            CHROME_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
            SdpError::UnsupportedProfile,
        ),
        (
            CHROME_OFFER.replace("m=audio 54321", "m=audio 0"),
            SdpError::AudioDeclined,
        ),
        (
            CHROME_OFFER.replace("m=audio", "m=video"),
            SdpError::NoAudio,
        ),
        (
            CHROME_OFFER.replace("a=setup:actpass", "a=setup:holdconn"),
            SdpError::BadSetup,
        ),
        (
            CHROME_OFFER.replace("a=setup:actpass", "a=setup:maybe"),
            SdpError::BadAttribute("setup"),
        ),
        (
            CHROME_OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus"),
            SdpError::BadAttribute("rtpmap"),
        ),
        (
            CHROME_OFFER.replace("111 63 9 0 8 13 110 126", "9 13"),
            SdpError::NoCommonCodec,
        ),
        (
            CHROME_OFFER.replace("v=0", "v=0\r\nv=0"),
            SdpError::Malformed {
                line: 2,
                reason: "duplicate v= line",
            },
        ),
        (
            "garbage".to_owned(),
            SdpError::Malformed {
                line: 1,
                reason: "not a <type>=<value> line",
            },
        ),
        (
            "s=-\r\n".to_owned(),
            SdpError::Malformed {
                line: 1,
                reason: "the first line must be v=",
            },
        ),
    ];
    for (offer, want) in cases {
        let mut c = call(config());
        assert_eq!(
            c.process_offer(Side::Browser, offer.as_bytes(), &mut r())
                .unwrap_err(),
            want
        );
        assert_eq!(c.pending_offer_from(), None);
        assert_eq!(want.sip_status(), 488);
    }
}

#[test]
fn bad_answers_are_refused() {
    let start = || {
        let mut c = call(config());
        c.process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
            .unwrap();
        c
    };
    let cases = [
        (
            legacy_answer("0", &[]).replace("m=audio 20000", "m=audio 0"),
            SdpError::AudioDeclined,
        ),
        (
            legacy_answer("18", &["a=rtpmap:18 G729/8000"]),
            SdpError::UnexpectedCodec,
        ),
        (
            legacy_answer("0", &[]) + "m=video 0 RTP/AVP 31\r\n",
            SdpError::AnswerMismatch,
        ),
        (
            legacy_answer("0", &[]).replace("m=audio", "m=video"),
            SdpError::AnswerMismatch,
        ),
        (
            legacy_answer("0", &[]).replace("c=IN IP4 192.0.2.9", "c=IN IP4 sbc.example.net"),
            SdpError::UnsupportedAddress,
        ),
        (
            legacy_answer("0", &[]).replace("RTP/AVP", "UDP/TLS/RTP/SAVPF"),
            SdpError::UnsupportedProfile,
        ),
    ];
    for (ans, want) in cases {
        let mut c = start();
        assert_eq!(
            c.process_answer(Side::Legacy, ans.as_bytes(), &mut r())
                .unwrap_err(),
            want,
            "{ans}"
        );
        assert_eq!(
            c.pending_offer_from(),
            None,
            "a failed answer drops the offer"
        );
        assert!(c.plan().is_none());
    }
    // Browser answers to Strait's offer.
    let browser_cases = [
        (
            chrome_answer_with("0 101").replace("a=fingerprint", "a=x-fingerprint"),
            SdpError::MissingFingerprint,
        ),
        (chrome_answer_with("13"), SdpError::UnexpectedCodec),
        (
            chrome_answer_with("0 101").replace("a=rtcp-mux\r\n", ""),
            SdpError::RtcpMuxRequired,
        ),
    ];
    for (ans, want) in browser_cases {
        let mut c = call(config());
        c.process_offer(Side::Legacy, ASTERISK_OFFER.as_bytes(), &mut r())
            .unwrap();
        assert_eq!(
            c.process_answer(Side::Browser, ans.as_bytes(), &mut r())
                .unwrap_err(),
            want
        );
    }
}

#[test]
fn offer_answer_sequencing() {
    let mut c = call(config());
    assert_eq!(
        c.process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
            .unwrap_err(),
        SdpError::NoPendingOffer
    );
    c.process_offer(Side::Browser, CHROME_OFFER.as_bytes(), &mut r())
        .unwrap();
    // Glare: a second offer while one is pending.
    let e = c
        .process_offer(Side::Legacy, ASTERISK_OFFER.as_bytes(), &mut r())
        .unwrap_err();
    assert_eq!((e, e.sip_status()), (SdpError::OfferPending, 491));
    // An "answer" from the offerer's own side changes nothing.
    assert_eq!(
        c.process_answer(Side::Browser, CHROME_ANSWER.as_bytes(), &mut r())
            .unwrap_err(),
        SdpError::NoPendingOffer
    );
    assert_eq!(c.pending_offer_from(), Some(Side::Browser));
    assert!(c
        .process_answer(Side::Legacy, pcmu_answer().as_bytes(), &mut r())
        .is_ok());
}

#[test]
fn strait_output_always_reparses_to_the_same_media() {
    // Everything Strait writes is canonical and parses to what it meant.
    let mut c = call(config());
    let (o, a) = browser_call(&mut c, CHROME_OFFER_VIDEO, &pcmu_answer());
    for sd in [&o.sdp, &a.sdp] {
        let text = sd.to_string();
        let back = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(&back, sd);
    }
    let b = info(&a.sdp);
    assert!(b.ice_lite && b.bundled && b.rtcp_mux);
    assert_eq!(b.setup, Some(Setup::Passive));
    assert_eq!(b.rtp, Some("203.0.113.1:40000".parse().unwrap()));
    assert_eq!(b.candidates.len(), 2);
    let l = info(&o.sdp);
    assert_eq!(l.rtp, Some("192.0.2.1:30000".parse().unwrap()));
    assert_eq!(l.rtcp, Some("192.0.2.1:30001".parse().unwrap()));
}
