//! rtpengine's ng commands on the sans-IO core, without sockets: what the
//! SDP becomes for each flag set Kamailio sends, and what the data plane is
//! told (the rules the media engine queues). The same core holds the
//! B2BUA's calls, so ng sessions take ports from the same engine.
//!
//! Cases: Chrome's offer turned into a plain RTP/AVP offer and the legacy
//! answer turned back into an ICE-lite/DTLS/rtcp-mux answer (legs: ICE and
//! DTLS pending on the browser's, symmetric plain on the legacy one); the
//! WebRTC shorthand toward a browser from a plain offer; SDES toward a
//! legacy SRTP phone (the supported suite chosen, keys crossed in the
//! rules); PCMU <-> Opus transcoding added with `codec-transcode`;
//! re-offers keeping ports and keys; offers never answered dropped after
//! the media timeout; `delete`, `list`, `query`,
//! `statistics`; the load limit; unknown call-ids; bad SDP.

#[path = "sdp_fixtures/mod.rs"]
mod fixtures;
mod media_core;

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use strait::ng::{NgConfig, NgServer, NgTransport};
use strait::sdp::{MediaInfo, SessionDescription};
use strait::signalling::core::Core;
use strait_rules::abi::{flags, Kind, LegRule};

fn core(extra: &str) -> Core {
    let toml = format!("state_dir = \"/nonexistent\"\n[registrar]\npersist = false\n{extra}");
    media_core::core(&toml, 0x2545_F491_4F6C_DD1D)
}

/// A tiny bencode writer for requests (the server parses them for real).
enum B<'a> {
    S(&'a str),
    L(Vec<B<'a>>),
}

fn bencode(pairs: &[(&str, B<'_>)]) -> Vec<u8> {
    fn item(out: &mut Vec<u8>, v: &B<'_>) {
        match v {
            B::S(s) => out.extend_from_slice(format!("{}:{s}", s.len()).as_bytes()),
            B::L(l) => {
                out.push(b'l');
                for x in l {
                    item(out, x);
                }
                out.push(b'e');
            }
        }
    }
    let mut sorted: Vec<_> = pairs.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let mut out = b"d".to_vec();
    for (k, v) in sorted {
        item(&mut out, &B::S(k));
        item(&mut out, v);
    }
    out.push(b'e');
    out
}

struct Ng {
    server: NgServer,
    core: Core,
    n: u32,
}

impl Ng {
    fn new(extra: &str) -> Self {
        Ng {
            server: NgServer::new(NgConfig::default()),
            core: core(extra),
            n: 0,
        }
    }

    /// Sends one command; returns the reply's text (bencode).
    fn send(&mut self, pairs: &[(&str, B<'_>)]) -> String {
        self.n += 1;
        let mut msg = format!("c{} ", self.n).into_bytes();
        msg.extend(bencode(pairs));
        let peer: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let reply = self
            .server
            .handle(&mut self.core, NgTransport::Udp, peer, &msg, Instant::now())
            .expect("a reply");
        String::from_utf8(reply).expect("utf-8 reply")
    }

    /// Sends an offer or answer and returns the SDP of the reply.
    fn sdp(&mut self, pairs: &[(&str, B<'_>)]) -> String {
        let r = self.send(pairs);
        assert!(r.contains("6:result2:ok"), "not ok: {r}");
        let at = r.find("3:sdp").expect("sdp key") + 5;
        let rest = &r[at..];
        let colon = rest.find(':').expect("length");
        let len: usize = rest[..colon].parse().expect("length");
        rest[colon + 1..colon + 1 + len].to_owned()
    }

    fn rules(&mut self) -> Vec<(Kind, Option<LegRule>)> {
        let m = self.core.b2bua_mut().media_mut().expect("media");
        std::iter::from_fn(|| m.poll_message())
            .map(|(_, k, b)| {
                let rule = matches!(k, Kind::AddLeg | Kind::UpdateLeg)
                    .then(|| bytemuck::pod_read_unaligned::<LegRule>(&b));
                (k, rule)
            })
            .collect()
    }

    fn leg_count(&self) -> usize {
        self.core.b2bua().media().expect("media").leg_count()
    }
}

fn audio(sdp: &str) -> MediaInfo {
    let sd = SessionDescription::parse(sdp.as_bytes()).expect("valid SDP");
    let i = strait::sdp::find_audio(&sd, None).expect("audio");
    MediaInfo::from_session(&sd, i).expect("audio info")
}

const LEGACY_ANSWER: &str = "v=0\r\no=sipp 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 40100 RTP/AVP 0 126\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:126 telephone-event/8000\r\n";

#[test]
fn browser_offer_to_legacy_and_back_as_kamailio_sends_it() {
    let mut ng = Ng::new("");
    let offer = ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("call-1")),
        ("from-tag", B::S("browser")),
        ("sdp", B::S(fixtures::CHROME_OFFER)),
        ("flags", B::L(vec![B::S("trust-address")])),
        (
            "replace",
            B::L(vec![B::S("origin"), B::S("session-connection")]),
        ),
        ("ICE", B::S("remove")),
        ("DTLS", B::S("off")),
        ("transport-protocol", B::S("RTP/AVP")),
        ("rtcp-mux", B::L(vec![B::S("demux")])),
    ]);
    let m = audio(&offer);
    assert_eq!(m.proto, "RTP/AVP");
    assert_eq!(m.address, Some("127.0.0.1".parse().expect("ip")));
    assert!(m.ice.is_none() && m.candidates.is_empty(), "{offer}");
    assert!(m.fingerprints.is_empty() && m.setup.is_none(), "{offer}");
    assert!(!m.rtcp_mux, "rtcp-mux-demux: not offered on: {offer}");
    assert_eq!(m.rtcp.map(|a| a.port()), Some(m.port + 1));
    assert!(
        !offer.contains("a=rtcp-fb"),
        "AVP carries no feedback: {offer}"
    );
    assert!(!offer.contains("BUNDLE"), "{offer}");
    let pts: Vec<u8> = m.codecs.iter().map(|c| c.pt).collect();
    assert!(
        pts.starts_with(&[111]) && pts.contains(&0),
        "codecs pass: {pts:?}"
    );
    // Both ports are bound at the offer (the answerer's media and checks
    // may come before its answer): the browser's leg in full, the legacy
    // one waiting for its address.
    let early: Vec<LegRule> = ng.rules().iter().filter_map(|(_, r)| *r).collect();
    assert_eq!(early.len(), 2);
    let pending = early
        .iter()
        .find(|r| r.local_port == m.port)
        .expect("legacy leg");
    assert_eq!(pending.remote_rtp.to_socket_addr(), None);
    assert!(
        pending.flags & flags::SRTP_PENDING == 0,
        "plain: nothing to wait for"
    );
    let b = early
        .iter()
        .find(|r| r.local_port != m.port)
        .expect("browser leg");
    assert!(b.flags & flags::ICE != 0 && b.flags & flags::SRTP_PENDING != 0);

    let answer = ng.sdp(&[
        ("command", B::S("answer")),
        ("call-id", B::S("call-1")),
        ("from-tag", B::S("browser")),
        ("to-tag", B::S("legacy")),
        ("sdp", B::S(LEGACY_ANSWER)),
        ("ICE", B::S("force")),
        ("transport-protocol", B::S("UDP/TLS/RTP/SAVPF")),
        ("rtcp-mux", B::L(vec![B::S("offer")])),
    ]);
    let a = audio(&answer);
    assert_eq!(a.proto, "UDP/TLS/RTP/SAVPF");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(a.ice.is_some() && !a.candidates.is_empty(), "{answer}");
    assert_eq!(a.candidates[0].port, a.port);
    assert_eq!(a.setup, Some(strait::sdp::Setup::Passive), "{answer}");
    assert_eq!(a.fingerprints.len(), 1);
    assert!(a.rtcp_mux, "{answer}");
    assert_eq!(a.mid.as_deref(), Some("0"), "the offer's mid: {answer}");
    assert!(
        a.bundled,
        "Chrome bundled it: the answer keeps the group: {answer}"
    );
    assert_eq!(
        a.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
        [0, 126],
        "the legacy side's choice, in the browser's numbering"
    );
    assert_ne!(a.port, m.port, "one port per side");

    let rules = ng.rules();
    let legs: Vec<LegRule> = rules.iter().filter_map(|(_, r)| *r).collect();
    assert_eq!(legs.len(), 2, "{rules:?}");
    let browser = legs
        .iter()
        .find(|r| r.local_port == a.port)
        .expect("browser leg");
    let legacy = legs
        .iter()
        .find(|r| r.local_port == m.port)
        .expect("legacy leg");
    assert_eq!(browser.peer_leg_id, legacy.leg_id);
    assert_eq!(legacy.peer_leg_id, browser.leg_id);
    assert!(browser.flags & flags::ICE != 0);
    assert!(browser.flags & flags::RTCP_MUX != 0);
    assert!(browser.flags & flags::SRTP_PENDING != 0, "keys from DTLS");
    assert!(legacy.flags & (flags::ICE | flags::RTCP_MUX | flags::SRTP_PENDING) == 0);
    assert!(legacy.flags & flags::SYMMETRIC != 0);
    assert_eq!(
        legacy.remote_rtp.to_socket_addr(),
        Some("127.0.0.1:40100".parse().expect("addr"))
    );
    assert_eq!(legacy.srtp_tx.suite, 0, "plain toward the legacy side");
    let ice = a.ice.expect("ice");
    assert_eq!(
        &browser.ice_ufrag[..usize::from(browser.ice_ufrag_len)],
        ice.ufrag.as_bytes()
    );

    // list, query, statistics, delete.
    assert!(ng.send(&[("command", B::S("list"))]).contains("6:call-1"));
    let q = ng.send(&[("command", B::S("query")), ("call-id", B::S("call-1"))]);
    assert!(q.contains("7:browser") && q.contains("6:legacy"), "{q}");
    let st = ng.send(&[("command", B::S("statistics"))]);
    assert!(st.contains("13:sessionstotali1e"), "{st}");
    assert_eq!(ng.leg_count(), 2);
    let d = ng.send(&[
        ("command", B::S("delete")),
        ("call-id", B::S("call-1")),
        ("from-tag", B::S("browser")),
    ]);
    assert!(d.contains("6:result2:ok"), "{d}");
    assert_eq!(ng.leg_count(), 0, "delete frees both legs");
    assert!(ng.rules().iter().all(|(k, _)| *k == Kind::RemoveLeg));
    assert!(!ng.send(&[("command", B::S("list"))]).contains("call-1"));
    let again = ng.send(&[("command", B::S("delete")), ("call-id", B::S("call-1"))]);
    assert!(
        again.contains("warning") || again.contains("error"),
        "{again}"
    );
}

#[test]
fn webrtc_shorthand_toward_a_browser_and_its_answer() {
    let mut ng = Ng::new("");
    let offer = ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("call-2")),
        ("from-tag", B::S("phone")),
        ("sdp", B::S(fixtures::SIPP_OFFER)),
        ("flags", B::L(vec![B::S("WebRTC")])),
    ]);
    let m = audio(&offer);
    let early: Vec<LegRule> = ng.rules().iter().filter_map(|(_, r)| *r).collect();
    let waiting = early
        .iter()
        .find(|r| r.local_port == m.port)
        .expect("browser leg bound at the offer");
    assert!(
        waiting.flags & flags::ICE != 0 && waiting.flags & flags::SRTP_PENDING != 0,
        "checks answered, media held until the DTLS keys"
    );
    assert_eq!(m.proto, "UDP/TLS/RTP/SAVPF");
    assert!(
        m.ice.is_some() && m.candidates.len() == 1,
        "mux-only: {offer}"
    );
    assert_eq!(m.setup, Some(strait::sdp::Setup::ActPass));
    assert!(m.rtcp_mux && m.crypto.is_empty(), "{offer}");
    assert!(!offer.contains("a=rtcp:"), "no-rtcp-attribute: {offer}");
    assert_eq!(m.mid.as_deref(), Some("0"), "generate-mid");
    assert!(m.bundled, "a=group:BUNDLE for max-bundle browsers: {offer}");
    assert!(m.codecs.iter().all(|c| c.has_nack()), "AVPF: nack offered");

    let answer = ng.sdp(&[
        ("command", B::S("answer")),
        ("call-id", B::S("call-2")),
        ("from-tag", B::S("phone")),
        ("to-tag", B::S("browser")),
        ("sdp", B::S(fixtures::CHROME_ANSWER)),
    ]);
    let a = audio(&answer);
    assert_eq!(a.proto, "RTP/AVP", "the offerer keeps its profile");
    assert!(a.ice.is_none() && a.fingerprints.is_empty() && !a.rtcp_mux);
    let legs: Vec<LegRule> = ng.rules().iter().filter_map(|(_, r)| *r).collect();
    let browser = legs
        .iter()
        .find(|r| r.local_port == m.port)
        .expect("browser leg");
    assert!(browser.flags & flags::ICE != 0 && browser.flags & flags::RTCP_MUX != 0);
    assert!(browser.flags & flags::SRTP_PENDING != 0);
    assert!(
        browser.flags & flags::NACK_TAIL != 0,
        "Chrome answered nack: the tail buffer answers it"
    );
}

#[test]
fn sdes_toward_a_legacy_srtp_phone() {
    let mut ng = Ng::new("");
    // A plain offer asked to go out as SDES-SRTP.
    let offer = ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("call-3")),
        ("from-tag", B::S("a")),
        ("sdp", B::S(fixtures::SIPP_OFFER)),
        ("transport-protocol", B::S("RTP/SAVP")),
    ]);
    let m = audio(&offer);
    let _ = ng.rules(); // the ports bound at the offer
    assert_eq!(m.proto, "RTP/SAVP");
    assert_eq!(m.crypto.len(), 2, "both AES-CM suites offered: {offer}");
    // The SRTP phone answers with the second one.
    let chosen = &m.crypto[1];
    let reply_key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    let answer_sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 41000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
         a=crypto:{} {} inline:{reply_key}\r\n",
        chosen.tag,
        chosen.suite.as_str()
    );
    let answer = ng.sdp(&[
        ("command", B::S("answer")),
        ("call-id", B::S("call-3")),
        ("from-tag", B::S("a")),
        ("to-tag", B::S("b")),
        ("sdp", B::S(&answer_sdp)),
    ]);
    assert_eq!(audio(&answer).proto, "RTP/AVP");
    assert!(!answer.contains("crypto"), "{answer}");
    let legs: Vec<LegRule> = ng.rules().iter().filter_map(|(_, r)| *r).collect();
    let srtp = legs
        .iter()
        .find(|r| r.local_port == m.port)
        .expect("srtp leg");
    assert_eq!(srtp.srtp_tx.suite, chosen.suite.abi_code());
    assert_eq!(
        srtp.srtp_tx.key, chosen.key.key,
        "Strait sends with its key"
    );
    let theirs =
        strait::sdp::Crypto::parse(&format!("1 {} inline:{reply_key}", chosen.suite.as_str()))
            .expect("crypto");
    assert_eq!(srtp.srtp_rx.key, theirs.key.key, "and receives with theirs");
    let plain = legs
        .iter()
        .find(|r| r.local_port != m.port)
        .expect("plain leg");
    assert_eq!((plain.srtp_rx.suite, plain.srtp_tx.suite), (0, 0));

    // An SDES offer answered as SDES: the supported suite of three.
    let offer = ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("call-4")),
        ("from-tag", B::S("srtp-phone")),
        ("sdp", B::S(fixtures::SDES_OFFER)),
        ("transport-protocol", B::S("RTP/AVP")),
    ]);
    assert!(!offer.contains("crypto") && audio(&offer).proto == "RTP/AVP");
    let answer = ng.sdp(&[
        ("command", B::S("answer")),
        ("call-id", B::S("call-4")),
        ("from-tag", B::S("srtp-phone")),
        ("to-tag", B::S("plain")),
        (
            "sdp",
            B::S(
                &LEGACY_ANSWER
                    .replace("RTP/AVP 0 126", "RTP/AVP 8 101")
                    .replace(
                        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:126",
                        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101",
                    ),
            ),
        ),
    ]);
    let a = audio(&answer);
    assert_eq!(a.proto, "RTP/SAVP");
    assert_eq!(a.crypto.len(), 1, "{answer}");
    assert_eq!(a.crypto[0].tag, 3, "the only usable line of the offer");
}

#[test]
fn codec_transcode_adds_opus_and_the_legs_transcode() {
    let mut ng = Ng::new("");
    let offer = ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("call-6")),
        ("from-tag", B::S("pcmu-phone")),
        ("sdp", B::S(fixtures::SIPP_OFFER)),
        (
            "flags",
            B::L(vec![B::S("WebRTC"), B::S("codec-transcode-opus")]),
        ),
    ]);
    let m = audio(&offer);
    let _ = ng.rules(); // the ports bound at the offer
    let opus = m
        .codecs
        .iter()
        .find(|c| c.kind == strait::sdp::CodecKind::Opus)
        .expect("opus added: {offer}");
    let browser_answer = fixtures::CHROME_ANSWER.to_owned();
    let ba = audio(&browser_answer);
    let opus_answer = ba
        .codecs
        .iter()
        .find(|c| c.kind == strait::sdp::CodecKind::Opus)
        .expect("chrome answers opus");
    // The browser answers with opus only, in the PT Strait offered.
    let sdp = browser_answer
        .replace(
            &format!(
                "UDP/TLS/RTP/SAVPF {}",
                ba.codecs
                    .iter()
                    .map(|c| c.pt.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            &format!("UDP/TLS/RTP/SAVPF {}", opus.pt),
        )
        .replace(
            &format!("a=rtpmap:{} ", opus_answer.pt),
            &format!("a=rtpmap:{} ", opus.pt),
        );
    let answer = ng.sdp(&[
        ("command", B::S("answer")),
        ("call-id", B::S("call-6")),
        ("from-tag", B::S("pcmu-phone")),
        ("to-tag", B::S("browser")),
        ("sdp", B::S(&sdp)),
    ]);
    let a = audio(&answer);
    assert_eq!(
        a.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
        [0],
        "the phone keeps PCMU: {answer}"
    );
    let legs: Vec<LegRule> = ng.rules().iter().filter_map(|(_, r)| *r).collect();
    let to_browser = legs
        .iter()
        .find(|r| r.local_port == m.port)
        .expect("browser leg");
    let to_phone = legs
        .iter()
        .find(|r| r.local_port != m.port)
        .expect("phone leg");
    assert_eq!(
        to_browser.transcode.mode, 1,
        "G.711 -> Opus toward the browser"
    );
    assert_eq!(to_phone.transcode.mode, 2, "Opus -> G.711 toward the phone");
    assert_eq!(to_phone.transcode.opus_pt, opus.pt);
    assert_eq!(to_phone.transcode.g711_pt, 0);
    assert_eq!(to_phone.transcode.law, 0, "mu-law");
    let st = ng.send(&[("command", B::S("statistics"))]);
    assert!(st.contains("15:transcodedmediai1e"), "{st}");
}

#[test]
fn reoffer_keeps_ports_and_keys_and_errors_are_replies() {
    let mut ng = Ng::new("[ng]\nmax_sessions = 2\n");
    let first = ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("r")),
        ("from-tag", B::S("a")),
        ("sdp", B::S(fixtures::SIPP_OFFER)),
        ("transport-protocol", B::S("RTP/SAVP")),
    ]);
    let again = ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("r")),
        ("from-tag", B::S("a")),
        ("sdp", B::S(fixtures::SIPP_OFFER)),
        ("transport-protocol", B::S("RTP/SAVP")),
    ]);
    let (f, g) = (audio(&first), audio(&again));
    assert_eq!(f.port, g.port, "same port on a repeated offer");
    assert_eq!(f.crypto, g.crypto, "same keys on a repeated offer");
    assert_eq!(ng.leg_count(), 2);

    // Answer without offer, unknown call-id.
    let r = ng.send(&[
        ("command", B::S("answer")),
        ("call-id", B::S("nope")),
        ("from-tag", B::S("a")),
        ("to-tag", B::S("b")),
        ("sdp", B::S(LEGACY_ANSWER)),
    ]);
    assert!(r.contains("Unknown call-id"), "{r}");
    // Not SDP.
    let r = ng.send(&[
        ("command", B::S("offer")),
        ("call-id", B::S("bad")),
        ("from-tag", B::S("a")),
        ("sdp", B::S("hello")),
    ]);
    assert!(r.contains("error"), "{r}");
    assert_eq!(ng.leg_count(), 2, "a refused offer holds no ports");
    // The load limit: one more call fits, the third is refused with
    // rtpengine's string.
    ng.sdp(&[
        ("command", B::S("offer")),
        ("call-id", B::S("r2")),
        ("from-tag", B::S("a")),
        ("sdp", B::S(fixtures::SIPP_OFFER)),
    ]);
    let r = ng.send(&[
        ("command", B::S("offer")),
        ("call-id", B::S("r3")),
        ("from-tag", B::S("a")),
        ("sdp", B::S(fixtures::SIPP_OFFER)),
    ]);
    assert!(r.contains("Parallel session limit reached"), "{r}");
    assert_eq!(ng.leg_count(), 4);

    // Never answered: after the media timeout (60 s by default) the calls
    // give their ports back; nothing else would (their legs are not in the
    // data plane yet).
    let later = Instant::now() + std::time::Duration::from_secs(59);
    assert!(ng.core.poll_timeout().is_some_and(|t| t > later));
    ng.core.handle_timeout(later, SystemTime::now());
    assert_eq!(ng.leg_count(), 4, "not yet");
    ng.core
        .handle_timeout(later + std::time::Duration::from_secs(2), SystemTime::now());
    assert_eq!(ng.leg_count(), 0);
    let st = ng.send(&[("command", B::S("statistics"))]);
    assert!(st.contains("20:offertimeoutsessionsi2e"), "{st}");
}
