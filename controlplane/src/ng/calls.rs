//! Media sessions driven over ng: what `offer`, `answer` and `delete` do to
//! SDP and to the data plane, sans-IO.
//!
//! A call (one Call-ID) has two parties, each identified by its SIP tag: the
//! party whose offer created the call (its `from-tag`) and the one that
//! answered (the `to-tag`). Each party faces one leg of a pair opened on the
//! shared [`MediaEngine`], so ng calls and the B2BUA's calls live in the same
//! data plane, ports and counter slots.
//!
//! Rewriting is generic, the way the rtpengine module's scripts expect it:
//! the SDP a party sent is passed on to the other with Strait's address and
//! port, and with the transport profile the flags ask for toward the
//! recipient (`transport-protocol`, `ICE`, `DTLS`, `SDES`, `rtcp-mux-*`, the
//! `WebRTC` shorthand). Toward the sender Strait keeps the sender's own
//! profile: it answers ICE (as ICE-lite) when the sender used ICE, DTLS-SRTP
//! when it offered `UDP/TLS/...`, SDES when it offered `a=crypto`. Codecs pass
//! through (minus `codec-strip`/`codec-mask`); `codec-transcode`/`codec-offer`
//! add PCMU, PCMA or Opus when the sender has the other family, and the data
//! plane transcodes if the recipient picks the added codec.
//!
//! Only the first active audio section is relayed; other sections are
//! declined (port 0) toward the recipient.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use strait_rules::abi::{self, counter};

use super::message::{DtlsOption, IceOption, OfferAnswer, SdesOption, TransportProtocol};
use super::reply::{
    CallInfo, CurrentStatistics, DeleteReply, MediaInfo as ReplyMedia, NgError, SdpReply,
    StreamInfo, StreamStats, TagInfo, TotalStatistics,
};
use crate::dtls::{self, Role};
use crate::media::{
    DtlsSetup, LegId, LegSetup, MediaEngine, MediaError, MediaEvent, Pair, SdesSetup,
};
use crate::sdp::{
    find_audio, Attribute, Candidate, Codec, CodecKind, Connection, Crypto, IceCredentials,
    MediaInfo, RandomSource, SessionDescription, Setup, SrtpMasterKey, SrtpSuite,
};

/// Settings of [`NgCalls`].
#[derive(Clone, Debug)]
pub struct NgCallSettings {
    /// Address written into SDP.
    pub public_address: IpAddr,
    /// A leg with no media either way for this long is removed (ms).
    pub media_timeout_ms: u32,
    /// NACK tail buffer (min, max packets) on legs whose party asked for NACK.
    pub nack_tail: (u16, u16),
    /// Opus encoder complexity when transcoding.
    pub opus_complexity: u8,
    /// Most ng calls at once (further offers get the load-limit error).
    pub max_calls: usize,
}

/// What [`NgCalls`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NgCallCounters {
    /// Calls created by an offer.
    pub created: u64,
    /// Calls ended by `delete`.
    pub deleted: u64,
    /// Calls ended because the data plane timed their media out.
    pub timed_out: u64,
    /// Offers refused (load limit, no ports).
    pub refused: u64,
    /// Calls whose legs transcode.
    pub transcoded: u64,
    /// Calls offered and never answered within the media timeout.
    pub offer_timeouts: u64,
}

/// What Strait presents to one party: the profile of the SDP it sends there.
#[derive(Clone, Debug, Default)]
struct Face {
    /// `m=` protocol as written toward the party.
    proto: String,
    /// Strait's ICE credentials, when it does ICE(-lite) with the party.
    ice: Option<IceCredentials>,
    /// Strait's `a=setup` toward the party, when DTLS-SRTP.
    setup: Option<Setup>,
    /// Strait's `a=crypto` lines toward the party (several in an offer, the
    /// chosen one in an answer).
    crypto: Vec<Crypto>,
    /// rtcp-mux offered (or accepted) toward the party.
    rtcp_mux: bool,
    /// No separate RTCP port at all (`rtcp-mux-require`).
    mux_only: bool,
    /// Write `a=rtcp`.
    rtcp_attr: bool,
    /// AVPF: keep `a=rtcp-fb`.
    feedback: bool,
    /// Add `a=mid` when the SDP has none.
    generate_mid: bool,
    /// Rewrite `o=`'s address.
    replace_origin: bool,
    /// Put the section in an `a=group:BUNDLE` (a browser configured for
    /// `max-bundle` refuses SDP without one).
    bundle: bool,
}

#[derive(Debug)]
struct Party {
    tag: String,
    label: Option<String>,
    created: i64,
    port: u16,
    leg: LegId,
    face: Option<Face>,
    /// The party's latest SDP, its audio section.
    heard: Option<MediaInfo>,
    /// Codecs Strait added (for transcoding) in its offer to this party.
    added: Vec<Codec>,
    /// The DTLS role settled with the party (kept across re-offers).
    dtls_role: Option<Role>,
}

impl Party {
    fn new(tag: &str, label: Option<&str>, created: i64, leg: LegId, port: u16) -> Self {
        Party {
            tag: tag.to_owned(),
            label: label.map(str::to_owned),
            created,
            port,
            leg,
            face: None,
            heard: None,
            added: Vec::new(),
            dtls_role: None,
        }
    }
}

#[derive(Debug)]
struct NgCall {
    created: i64,
    last_signal: i64,
    pair: Pair,
    parties: [Party; 2],
    /// The party whose offer awaits an answer.
    pending: Option<usize>,
    /// Until an answer installs the legs the data plane cannot time the
    /// call out: it is dropped at this time instead.
    offer_expires: Option<Instant>,
    transcoding: bool,
}

impl NgCall {
    /// Whether an answer has installed the legs.
    fn answered(&self) -> bool {
        self.parties.iter().all(|p| p.heard.is_some()) && self.offer_expires.is_none()
    }
}

/// How long a call offered but never answered keeps its ports: the media
/// timeout (its legs are not in the data plane yet, so nothing else would
/// reap it if the proxy never sends `answer` or `delete`).
fn offer_timeout(s: &NgCallSettings) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(s.media_timeout_ms.max(1000)))
}

/// The ng calls. See the module docs.
#[derive(Debug)]
pub struct NgCalls {
    settings: NgCallSettings,
    calls: HashMap<String, NgCall>,
    counters: NgCallCounters,
    started: Option<Instant>,
    durations_s: (u64, u64),
}

fn sdp_err(_: crate::sdp::SdpError) -> NgError {
    NgError::FailedToParseSdp
}

fn media_err(e: MediaError) -> NgError {
    match e {
        MediaError::Exhausted => NgError::OutOfPorts,
        _ => NgError::Other("media engine error".into()),
    }
}

/// Whether two codecs are the same format (name, clock rate, channels).
fn same_codec(a: &Codec, b: &Codec) -> bool {
    a.name.eq_ignore_ascii_case(&b.name) && a.clock_rate == b.clock_rate && a.channels == b.channels
}

fn is_g711(k: CodecKind) -> bool {
    matches!(k, CodecKind::Pcmu | CodecKind::Pcma)
}

/// The codec a `codec-*` item names, when Strait can transcode to it.
fn transcodable(item: &str) -> Option<CodecKind> {
    let name = item.split('/').next().unwrap_or("");
    if name.eq_ignore_ascii_case("PCMU") {
        Some(CodecKind::Pcmu)
    } else if name.eq_ignore_ascii_case("PCMA") {
        Some(CodecKind::Pcma)
    } else if name.eq_ignore_ascii_case("opus") {
        Some(CodecKind::Opus)
    } else {
        None
    }
}

fn names(list: &[std::borrow::Cow<'_, str>], c: &Codec) -> bool {
    list.iter().any(|n| {
        let name = n.split('/').next().unwrap_or("");
        name.eq_ignore_ascii_case("all") || name.eq_ignore_ascii_case(&c.name)
    })
}

fn new_codec(kind: CodecKind, pt: u8) -> Codec {
    let (name, rate, ch, fmtp) = match kind {
        CodecKind::Pcmu => ("PCMU", 8000, 1, None),
        CodecKind::Pcma => ("PCMA", 8000, 1, None),
        _ => (
            "opus",
            48000,
            2,
            Some("minptime=10;useinbandfec=1".to_owned()),
        ),
    };
    Codec {
        pt,
        name: name.to_owned(),
        clock_rate: rate,
        channels: ch,
        fmtp,
        rtcp_fb: Vec::new(),
        kind,
    }
}

fn conn(addr: IpAddr) -> Connection {
    Connection {
        net_type: "IN".to_owned(),
        addr_type: if addr.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
        address: addr.to_string(),
    }
}

fn to_dtls_fingerprint(f: &crate::sdp::Fingerprint) -> Option<dtls::Fingerprint> {
    let alg = dtls::HashAlgorithm::from_name(f.algorithm.as_str())?;
    dtls::Fingerprint::from_bytes(alg, &f.bytes).ok()
}

/// Attributes Strait rewrites in the audio section (the rest pass through).
const REWRITTEN: [&str; 17] = [
    "rtpmap",
    "fmtp",
    "rtcp-fb",
    "candidate",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "remote-candidates",
    "fingerprint",
    "setup",
    "crypto",
    "rtcp",
    "rtcp-mux",
    "rtcp-mux-only",
    "tls-id",
];

/// Session-level attributes Strait rewrites.
const SESSION_REWRITTEN: [&str; 7] = [
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "fingerprint",
    "setup",
    "group",
];

fn wall_of(now: std::time::SystemTime) -> i64 {
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl NgCalls {
    /// No calls yet.
    pub fn new(settings: NgCallSettings) -> Self {
        NgCalls {
            settings,
            calls: HashMap::new(),
            counters: NgCallCounters::default(),
            started: None,
            durations_s: (0, 0),
        }
    }

    /// Counters.
    pub fn counters(&self) -> NgCallCounters {
        self.counters
    }

    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether there is no call.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Call-IDs in progress.
    pub fn call_ids(&self) -> impl Iterator<Item = &str> {
        self.calls.keys().map(String::as_str)
    }

    /// `offer`: the SDP of the party `req.from_tag` (the offerer), rewritten
    /// for the other party.
    pub fn offer(
        &mut self,
        media: &mut MediaEngine,
        rng: &mut dyn RandomSource,
        now: Instant,
        wall: std::time::SystemTime,
        req: &OfferAnswer<'_>,
    ) -> Result<SdpReply, NgError> {
        self.started.get_or_insert(now);
        let wall = wall_of(wall);
        let sd = SessionDescription::parse(req.sdp.as_bytes()).map_err(sdp_err)?;
        let idx = find_audio(&sd, None).map_err(|_| NgError::IncompleteSdp)?;
        let info = MediaInfo::from_session(&sd, idx).map_err(sdp_err)?;
        if !self.calls.contains_key(req.call_id) {
            if self.calls.len() >= self.settings.max_calls {
                self.counters.refused += 1;
                return Err(NgError::LoadLimit(super::reply::LoadLimit::MaxSessions));
            }
            let pair = media.open_pair().map_err(|e| {
                self.counters.refused += 1;
                media_err(e)
            })?;
            let label = req.options.label;
            let call = NgCall {
                created: wall,
                last_signal: wall,
                parties: [
                    Party::new(req.from_tag, label, wall, pair.a, pair.port_a),
                    Party::new(
                        req.to_tag.unwrap_or(""),
                        req.options.to_label,
                        wall,
                        pair.b,
                        pair.port_b,
                    ),
                ],
                pair,
                pending: None,
                offer_expires: None,
                transcoding: false,
            };
            self.calls.insert(req.call_id.to_owned(), call);
            self.counters.created += 1;
        }
        let settings = self.settings.clone();
        let call = self
            .calls
            .get_mut(req.call_id)
            .ok_or(NgError::UnknownCallId)?;
        call.last_signal = wall;
        let s = if call.parties[1].tag == req.from_tag && !req.from_tag.is_empty() {
            1
        } else {
            if call.parties[0].tag != req.from_tag {
                // Another offerer on this Call-ID (a new dialogue): it
                // takes over the offering side.
                call.parties[0].tag = req.from_tag.to_owned();
            }
            0
        };
        let r = 1 - s;
        if let Some(t) = req.to_tag.filter(|t| !t.is_empty()) {
            call.parties[r].tag = t.to_owned();
        }
        let o = &req.options;

        // Toward the sender: its own profile.
        let sender_face = {
            let old = call.parties[s].face.take().unwrap_or_default();
            let ice = info.ice.is_some().then(|| {
                old.ice
                    .clone()
                    .unwrap_or_else(|| IceCredentials::generate(rng))
            });
            let setup = (info.profile.is_dtls() && !info.fingerprints.is_empty()).then(|| {
                match (info.setup, call.parties[s].dtls_role) {
                    (Some(Setup::Active), _) => Setup::Passive,
                    (Some(Setup::Passive), _) => Setup::Active,
                    (_, Some(Role::Client)) => Setup::Active,
                    (_, Some(Role::Server)) => Setup::Passive,
                    _ if o.dtls_reverse == Some(DtlsOption::Active) => Setup::Active,
                    _ => Setup::Passive,
                }
            });
            let crypto = if info.profile.is_sdes() && setup.is_none() {
                info.crypto
                    .first()
                    .map(|c| {
                        let key = old
                            .crypto
                            .iter()
                            .find(|k| k.suite == c.suite)
                            .map_or_else(|| SrtpMasterKey::generate(c.suite, rng), |k| k.key);
                        vec![Crypto {
                            tag: c.tag,
                            suite: c.suite,
                            key,
                        }]
                    })
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            let rtcp_mux = info.rtcp_mux && !o.rtcp_mux.reject;
            Face {
                proto: info.proto.clone(),
                ice,
                setup,
                crypto,
                rtcp_mux,
                mux_only: false,
                rtcp_attr: !o.flags.no_rtcp_attribute,
                feedback: info.proto.to_ascii_uppercase().ends_with("AVPF"),
                generate_mid: false,
                replace_origin: o.replace.origin || o.replace.origin_full,
                bundle: info.bundled,
            }
        };
        call.parties[s].face = Some(sender_face);

        // Toward the recipient: what the flags ask for.
        let tp = o
            .transport_protocol
            .or_else(|| TransportProtocol::parse(&info.proto));
        let proto = tp.map_or_else(|| info.proto.clone(), |t| t.as_str().to_owned());
        let old = call.parties[r].face.take().unwrap_or_default();
        let ice = match o.ice {
            Some(IceOption::Remove) => false,
            Some(IceOption::Force | IceOption::ForceRelay | IceOption::Optional) => true,
            Some(IceOption::Default) | None => info.ice.is_some(),
        };
        let dtls = tp.is_some_and(TransportProtocol::is_dtls);
        let setup = dtls.then(|| match (call.parties[r].dtls_role, o.dtls) {
            (Some(Role::Server), _) => Setup::Passive,
            (Some(Role::Client), _) => Setup::Active,
            (None, Some(DtlsOption::Passive)) => Setup::Passive,
            (None, Some(DtlsOption::Active)) => Setup::Active,
            _ => Setup::ActPass,
        });
        let sdes = tp.is_some_and(|t| t.is_secure() && !t.is_dtls()) && !o.sdes_off();
        let crypto = if !sdes {
            Vec::new()
        } else if call.parties[r].heard.as_ref().is_some_and(|h| {
            h.crypto
                .first()
                .is_some_and(|c| old.crypto.iter().any(|k| k.tag == c.tag))
        }) {
            // A re-offer keeps the suite and key settled before.
            let chosen = call.parties[r]
                .heard
                .as_ref()
                .and_then(|h| h.crypto.first());
            old.crypto
                .iter()
                .filter(|k| chosen.is_some_and(|c| c.tag == k.tag))
                .cloned()
                .collect()
        } else {
            let mut suites = vec![
                SrtpSuite::AesCm128HmacSha1_80,
                SrtpSuite::AesCm128HmacSha1_32,
            ];
            let only: Vec<&str> = o
                .sdes
                .iter()
                .filter_map(|x| match x {
                    SdesOption::Only(s) => Some(*s),
                    _ => None,
                })
                .collect();
            suites.retain(|s| {
                (only.is_empty() || only.iter().any(|n| n.eq_ignore_ascii_case(s.as_str())))
                    && !o.sdes.iter().any(
                        |x| matches!(x, SdesOption::No(n) if n.eq_ignore_ascii_case(s.as_str())),
                    )
            });
            suites
                .into_iter()
                .zip(1u32..)
                .map(|(suite, tag)| Crypto {
                    tag,
                    suite,
                    key: old
                        .crypto
                        .iter()
                        .find(|k| k.suite == suite)
                        .map_or_else(|| SrtpMasterKey::generate(suite, rng), |k| k.key),
                })
                .collect()
        };
        let mux = &o.rtcp_mux;
        let rtcp_mux = !mux.reject && (mux.offer || mux.require || (info.rtcp_mux && !mux.demux));
        let recipient_face = Face {
            proto,
            ice: ice.then(|| {
                old.ice
                    .clone()
                    .unwrap_or_else(|| IceCredentials::generate(rng))
            }),
            setup,
            crypto,
            rtcp_mux,
            mux_only: mux.require,
            rtcp_attr: !o.flags.no_rtcp_attribute,
            feedback: tp.is_some_and(TransportProtocol::is_feedback),
            generate_mid: o.flags.generate_mid || (dtls && ice),
            replace_origin: o.replace.origin || o.replace.origin_full,
            bundle: dtls && ice,
        };

        // Codecs toward the recipient.
        let mut codecs: Vec<Codec> = info
            .codecs
            .iter()
            .filter(|c| !names(&o.codec.strip, c) && !names(&o.codec.mask, c))
            .cloned()
            .collect();
        let mut added = Vec::new();
        let has = |k: CodecKind| info.codecs.iter().any(|c| c.kind == k);
        for item in o.codec.transcode.iter().chain(o.codec.offer.iter()) {
            let Some(kind) = transcodable(item) else {
                continue;
            };
            if codecs.iter().any(|c| c.kind == kind) {
                continue;
            }
            let possible = if kind == CodecKind::Opus {
                has(CodecKind::Pcmu) || has(CodecKind::Pcma)
            } else {
                has(CodecKind::Opus)
            };
            if !possible {
                continue;
            }
            let pt = match kind {
                CodecKind::Pcmu => Some(0),
                CodecKind::Pcma => Some(8),
                _ => (96u8..=127).find(|p| !codecs.iter().any(|c| c.pt == *p)),
            };
            let Some(pt) = pt.filter(|p| !codecs.iter().any(|c| c.pt == *p)) else {
                continue;
            };
            let c = new_codec(kind, pt);
            codecs.push(c.clone());
            added.push(c);
        }
        if recipient_face.feedback {
            for c in &mut codecs {
                if c.kind != CodecKind::TelephoneEvent && !c.has_nack() {
                    c.rtcp_fb.push("nack".to_owned());
                }
            }
        }
        if codecs.is_empty() {
            return Err(NgError::Other(
                "No codecs left after codec-strip/mask".into(),
            ));
        }
        let port = call.parties[r].port;
        let out = render(
            &sd,
            idx,
            &recipient_face,
            &codecs,
            SocketAddr::new(settings.public_address, port),
            media.fingerprint(),
            None,
        );
        if !call.answered() {
            // Bind both ports now, as rtpengine does: the answerer's media
            // and ICE checks may arrive before its answer reaches us. The
            // offerer's leg is known in full; the answerer's waits.
            let sender_face = call.parties[s].face.clone().unwrap_or_default();
            let sender = leg_setup(
                &settings,
                &info,
                &sender_face,
                role_of(sender_face.setup),
                Vec::new(),
                None,
            );
            media
                .install(now, call.parties[s].leg, &sender)
                .map_err(media_err)?;
            media
                .install(
                    now,
                    call.parties[r].leg,
                    &pending_setup(&settings, &recipient_face),
                )
                .map_err(media_err)?;
        }
        call.parties[r].face = Some(recipient_face);
        call.parties[r].added = added;
        call.parties[s].heard = Some(info);
        call.parties[s].label = o.label.map(str::to_owned).or(call.parties[s].label.take());
        call.pending = Some(s);
        if !call.answered() {
            call.offer_expires = Some(now + offer_timeout(&settings));
        }
        Ok(SdpReply {
            sdp: out,
            warning: None,
        })
    }

    /// `answer`: the SDP of the party `req.to_tag` (the answerer), rewritten
    /// for the offerer; the legs go to the data plane.
    pub fn answer(
        &mut self,
        media: &mut MediaEngine,
        now: Instant,
        wall: std::time::SystemTime,
        req: &OfferAnswer<'_>,
    ) -> Result<SdpReply, NgError> {
        let wall = wall_of(wall);
        let settings = self.settings.clone();
        let call = self
            .calls
            .get_mut(req.call_id)
            .ok_or(NgError::UnknownCallId)?;
        let sd = SessionDescription::parse(req.sdp.as_bytes()).map_err(sdp_err)?;
        let idx = find_audio(&sd, None).map_err(|_| NgError::IncompleteSdp)?;
        let info = MediaInfo::from_session(&sd, idx).map_err(sdp_err)?;
        // The offerer is the party that sent the pending offer, else the one
        // whose tag is the answer's from-tag (a repeated answer).
        let o_idx = match call.pending {
            Some(p) => p,
            None => {
                if call.parties[1].tag == req.from_tag {
                    1
                } else {
                    0
                }
            }
        };
        let a_idx = 1 - o_idx;
        if call.parties[o_idx].heard.is_none() {
            return Err(NgError::InvalidDialogue);
        }
        if let Some(t) = req.to_tag.filter(|t| !t.is_empty()) {
            call.parties[a_idx].tag = t.to_owned();
        }
        if let Some(l) = req.options.label {
            call.parties[a_idx].label = Some(l.to_owned());
        }
        call.last_signal = wall;
        let offer = call.parties[o_idx]
            .heard
            .clone()
            .ok_or(NgError::InvalidDialogue)?;
        let added = call.parties[a_idx].added.clone();

        // The answerer's face: settle what Strait offered against what it took.
        let mut a_face = call.parties[a_idx].face.clone().unwrap_or_default();
        a_face.rtcp_mux = a_face.rtcp_mux && info.rtcp_mux;
        if a_face.ice.is_some() && info.ice.is_none() {
            a_face.ice = None;
        }
        if let Some(c) = info.crypto.first() {
            a_face
                .crypto
                .retain(|k| k.tag == c.tag && k.suite == c.suite);
        } else {
            a_face.crypto.clear();
        }
        if a_face.setup.is_some() && info.fingerprints.is_empty() {
            a_face.setup = None;
        }
        let a_role = a_face.setup.map(|ours| match (ours, info.setup) {
            (Setup::Active, _) | (Setup::ActPass, Some(Setup::Passive)) => Role::Client,
            _ => Role::Server,
        });
        if a_role.is_some() {
            a_face.setup = Some(if a_role == Some(Role::Client) {
                Setup::Active
            } else {
                Setup::Passive
            });
        }
        let o_face = call.parties[o_idx].face.clone().unwrap_or_default();
        let o_role = role_of(o_face.setup);

        // Codecs: pass through what both have, else transcode to what
        // Strait added.
        let primary = info
            .codecs
            .iter()
            .find(|c| c.kind != CodecKind::TelephoneEvent && !c.name.eq_ignore_ascii_case("CN"));
        let mut to_offerer: Vec<Codec> = Vec::new();
        let mut map_to_o: Vec<(u8, u8)> = Vec::new();
        let mut map_to_a: Vec<(u8, u8)> = Vec::new();
        let mut tc_o = None;
        let mut tc_a = None;
        let transcode_to = primary.filter(|p| {
            !offer.codecs.iter().any(|c| same_codec(c, p)) && added.iter().any(|c| same_codec(c, p))
        });
        if let Some(p) = transcode_to {
            // The offerer keeps its own codec of the other family.
            let want_opus = is_g711(p.kind);
            let oc = offer
                .codecs
                .iter()
                .find(|c| {
                    if want_opus {
                        c.kind == CodecKind::Opus
                    } else {
                        is_g711(c.kind)
                    }
                })
                .ok_or(NgError::Other("no codec to transcode from".into()))?
                .clone();
            let (g711_party, g711, opus) = if want_opus {
                (a_idx, p.clone(), oc.clone())
            } else {
                (o_idx, oc.clone(), p.clone())
            };
            let law =
                crate::sdp::G711Law::of(g711.kind).ok_or(NgError::Other("not G.711".into()))?;
            let ev8 = |m: &MediaInfo| m.telephone_event(8000).map(|c| c.pt);
            let ev48 = |m: &MediaInfo| m.telephone_event(48000).map(|c| c.pt);
            let (g_info, o_info) = if g711_party == a_idx {
                (&info, &offer)
            } else {
                (&offer, &info)
            };
            let (g_ev, o_ev) = match (ev8(g_info), ev48(o_info)) {
                (Some(g), Some(o)) => (g, o),
                _ => (0xFF, 0xFF),
            };
            let mk = |mode: u8| abi::Transcode {
                mode,
                law: law.abi_code(),
                g711_pt: g711.pt,
                opus_pt: opus.pt,
                g711_event_pt: g_ev,
                opus_event_pt: o_ev,
                complexity: settings.opus_complexity,
                _pad: 0,
            };
            let (to_g711, to_opus) = (mk(2), mk(1));
            if g711_party == a_idx {
                tc_a = Some(to_g711);
                tc_o = Some(to_opus);
            } else {
                tc_a = Some(to_opus);
                tc_o = Some(to_g711);
            }
            to_offerer.push(oc.clone());
            if let Some(te) = offer
                .codecs
                .iter()
                .find(|c| c.kind == CodecKind::TelephoneEvent && c.clock_rate == oc.clock_rate)
            {
                if info
                    .codecs
                    .iter()
                    .any(|c| c.kind == CodecKind::TelephoneEvent)
                {
                    to_offerer.push(te.clone());
                }
            }
        } else {
            for c in &info.codecs {
                if let Some(oc) = offer.codecs.iter().find(|x| same_codec(x, c)) {
                    let mut out = c.clone();
                    out.pt = oc.pt;
                    out.rtcp_fb = if o_face.feedback {
                        oc.rtcp_fb.clone()
                    } else {
                        Vec::new()
                    };
                    if oc.pt != c.pt {
                        map_to_o.push((c.pt, oc.pt));
                        map_to_a.push((oc.pt, c.pt));
                    }
                    to_offerer.push(out);
                }
            }
            if to_offerer.is_empty() {
                // Nothing in common: relay the answer's formats as they are.
                to_offerer = info.codecs.clone();
            }
        }
        let transcoding = tc_o.is_some();

        let o_setup = leg_setup(&settings, &offer, &o_face, o_role, map_to_o, tc_o);
        let a_setup = leg_setup(&settings, &info, &a_face, a_role, map_to_a, tc_a);
        let (o_leg, a_leg) = (call.parties[o_idx].leg, call.parties[a_idx].leg);
        media.install(now, o_leg, &o_setup).map_err(media_err)?;
        media.install(now, a_leg, &a_setup).map_err(media_err)?;

        let out = render(
            &sd,
            idx,
            &o_face,
            &to_offerer,
            SocketAddr::new(settings.public_address, call.parties[o_idx].port),
            media.fingerprint(),
            offer.mid.as_deref(),
        );
        call.parties[a_idx].dtls_role = a_role;
        call.parties[o_idx].dtls_role = o_role;
        call.parties[a_idx].face = Some(a_face);
        call.parties[a_idx].heard = Some(info);
        call.pending = None;
        call.offer_expires = None;
        if transcoding && !call.transcoding {
            self.counters.transcoded += 1;
        }
        call.transcoding = transcoding;
        Ok(SdpReply {
            sdp: out,
            warning: None,
        })
    }

    /// `delete`: ends the call (whatever tags are given) and frees its legs.
    pub fn delete(
        &mut self,
        media: &mut MediaEngine,
        wall: std::time::SystemTime,
        call_id: &str,
    ) -> Result<DeleteReply, NgError> {
        let info = self.info(media, call_id)?;
        self.remove(media, call_id, wall_of(wall));
        self.counters.deleted += 1;
        Ok(DeleteReply {
            stats: Some(info),
            warning: None,
        })
    }

    fn remove(&mut self, media: &mut MediaEngine, call_id: &str, wall: i64) {
        if let Some(call) = self.calls.remove(call_id) {
            media.close_pair(&call.pair);
            let d = u64::try_from(wall.saturating_sub(call.created)).unwrap_or(0);
            self.durations_s.0 += d;
            self.durations_s.1 += 1;
        }
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls.values().filter_map(|c| c.offer_expires).min()
    }

    /// Drops calls offered and never answered within the media timeout.
    pub fn handle_timeout(
        &mut self,
        media: &mut MediaEngine,
        now: Instant,
        wall: std::time::SystemTime,
    ) {
        let expired: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.offer_expires.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for id in expired {
            self.remove(media, &id, wall_of(wall));
            self.counters.offer_timeouts += 1;
        }
    }

    /// Whether `leg` belongs to an ng call.
    pub fn owns_leg(&self, leg: LegId) -> bool {
        self.calls
            .values()
            .any(|c| c.pair.a == leg || c.pair.b == leg)
    }

    /// A media event for one of the ng calls' legs (see [`Self::owns_leg`]):
    /// a leg the data plane timed out ends its call.
    pub fn handle_event(
        &mut self,
        media: &mut MediaEngine,
        wall: std::time::SystemTime,
        ev: &MediaEvent,
    ) {
        if let MediaEvent::TimedOut(leg) = ev {
            let id = self
                .calls
                .iter()
                .find(|(_, c)| c.pair.a == *leg || c.pair.b == *leg)
                .map(|(k, _)| k.clone());
            if let Some(id) = id {
                self.remove(media, &id, wall_of(wall));
                self.counters.timed_out += 1;
            }
        }
    }

    /// `query`: parties, media and the data plane's counters.
    pub fn info(&self, media: &MediaEngine, call_id: &str) -> Result<CallInfo, NgError> {
        let call = self.calls.get(call_id).ok_or(NgError::UnknownCallId)?;
        let mut totals = StreamStats::default();
        let tags = call
            .parties
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let other = &call.parties[1 - i];
                let c = media.leg_counters(p.leg).unwrap_or([0; counter::COUNT]);
                let stats = StreamStats {
                    packets: c[counter::PACKETS_IN],
                    bytes: c[counter::BYTES_IN],
                    errors: c[counter::SRTP_AUTH_FAILED] + c[counter::DROPPED],
                };
                totals.packets += stats.packets;
                totals.bytes += stats.bytes;
                totals.errors += stats.errors;
                let face = p.face.as_ref();
                let mut flags = vec!["initialized".to_owned()];
                if face.is_some_and(|f| f.rtcp_mux) {
                    flags.push("rtcp-mux".to_owned());
                }
                if face.is_some_and(|f| f.setup.is_some()) {
                    flags.push("DTLS-SRTP".to_owned());
                }
                if face.is_some_and(|f| !f.crypto.is_empty()) {
                    flags.push("SDES".to_owned());
                }
                if face.is_some_and(|f| f.ice.is_some()) {
                    flags.push("ICE".to_owned());
                }
                TagInfo {
                    tag: p.tag.clone(),
                    label: p.label.clone(),
                    created: p.created,
                    in_dialogue_with: Some(other.tag.clone()).filter(|t| !t.is_empty()),
                    medias: vec![ReplyMedia {
                        index: 1,
                        media_type: "audio".to_owned(),
                        protocol: face.map(|f| f.proto.clone()),
                        flags,
                        streams: vec![StreamInfo {
                            local_port: Some(p.port),
                            endpoint: p.heard.as_ref().and_then(|h| h.rtp),
                            advertised_endpoint: p.heard.as_ref().and_then(|h| h.rtp),
                            crypto_suite: face
                                .and_then(|f| f.crypto.first())
                                .map(|c| c.suite.as_str().to_owned()),
                            last_packet: 0,
                            flags: vec!["RTP".to_owned()],
                            stats,
                        }],
                    }],
                }
            })
            .collect();
        Ok(CallInfo {
            created: call.created,
            last_signal: call.last_signal,
            tags,
            totals_rtp: totals,
            totals_rtcp: StreamStats::default(),
        })
    }

    /// Current and total figures for `statistics` (ng calls only; the
    /// caller adds the B2BUA's).
    pub fn statistics(&self, now: Instant) -> (CurrentStatistics, TotalStatistics) {
        let current = CurrentStatistics {
            sessions_own: self.calls.len() as u64,
            sessions_foreign: 0,
            sessions_total: self.calls.len() as u64,
            transcoded_media: self.calls.values().filter(|c| c.transcoding).count() as u64,
            ..CurrentStatistics::default()
        };
        let total = TotalStatistics {
            uptime_s: self
                .started
                .map_or(0, |s| now.saturating_duration_since(s).as_secs()),
            managed_sessions: self.counters.created,
            rejected_sessions: self.counters.refused,
            timeout_sessions: self.counters.timed_out,
            offer_timeout_sessions: self.counters.offer_timeouts,
            regular_terminated_sessions: self.counters.deleted,
            avg_call_duration_s: if self.durations_s.1 == 0 {
                0.0
            } else {
                self.durations_s.0 as f64 / self.durations_s.1 as f64
            },
            ..TotalStatistics::default()
        };
        (current, total)
    }
}

/// The data plane's setup of the leg facing a party whose SDP is `m` and to
/// which Strait presents `face`.
fn leg_setup(
    settings: &NgCallSettings,
    m: &MediaInfo,
    face: &Face,
    role: Option<Role>,
    pt_map: Vec<(u8, u8)>,
    transcode: Option<abi::Transcode>,
) -> LegSetup {
    let mux = face.rtcp_mux && m.rtcp_mux;
    let dtls = role.map(|role| DtlsSetup {
        role,
        remote_fingerprints: m
            .fingerprints
            .iter()
            .filter_map(to_dtls_fingerprint)
            .collect(),
    });
    let ours = face.crypto.first();
    let theirs = m
        .crypto
        .iter()
        .find(|c| ours.is_some_and(|k| k.suite == c.suite));
    let sdes = match (ours, theirs) {
        (Some(ours), Some(theirs)) if dtls.is_none() => Some(SdesSetup {
            suite: ours.suite.abi_code(),
            rx: (theirs.key.key, theirs.key.salt),
            tx: (ours.key.key, ours.key.salt),
        }),
        _ => None,
    };
    let nack = face.feedback
        && m.codecs
            .iter()
            .any(|c| c.kind != CodecKind::TelephoneEvent && c.has_nack());
    LegSetup {
        remote_rtp: m.rtp,
        remote_rtcp: if mux { m.rtp } else { m.rtcp },
        rtcp_mux: mux,
        ice: face
            .ice
            .as_ref()
            .filter(|_| m.ice.is_some())
            .map(|i| (i.ufrag.clone(), i.pwd.clone())),
        dtls,
        sdes,
        symmetric: m.ice.is_none(),
        pt_map,
        transcode,
        nack_tail: nack.then_some(settings.nack_tail),
        ssrc_out: None,
        media_timeout_ms: settings.media_timeout_ms,
        keys_pending: false,
    }
}

/// The setup of the leg facing a party that has not answered yet: its port
/// is bound and ICE checks are answered, media waits for the answer (and,
/// for SRTP, for the keys it brings).
fn pending_setup(settings: &NgCallSettings, face: &Face) -> LegSetup {
    LegSetup {
        remote_rtp: None,
        remote_rtcp: None,
        rtcp_mux: face.rtcp_mux,
        ice: face.ice.as_ref().map(|i| (i.ufrag.clone(), i.pwd.clone())),
        dtls: None,
        sdes: None,
        symmetric: face.ice.is_none(),
        pt_map: Vec::new(),
        transcode: None,
        nack_tail: None,
        ssrc_out: None,
        media_timeout_ms: settings.media_timeout_ms,
        keys_pending: face.setup.is_some() || !face.crypto.is_empty(),
    }
}

fn role_of(setup: Option<Setup>) -> Option<Role> {
    setup.map(|s| {
        if s == Setup::Active {
            Role::Client
        } else {
            Role::Server
        }
    })
}

/// The SDP for a party: `base` (the other party's SDP) with Strait's address
/// and port and the party's face, carrying `codecs` in the audio section.
fn render(
    base: &SessionDescription,
    idx: usize,
    face: &Face,
    codecs: &[Codec],
    local: SocketAddr,
    fingerprint: dtls::Fingerprint,
    mid: Option<&str>,
) -> String {
    let (addr, port) = (local.ip(), local.port());
    let mut sd = base.clone();
    if face.replace_origin {
        let c = conn(addr);
        sd.origin.addr_type = c.addr_type;
        sd.origin.address = c.address;
    }
    sd.connection = Some(conn(addr));
    sd.attributes.retain(|a| {
        !SESSION_REWRITTEN
            .iter()
            .any(|n| a.name.eq_ignore_ascii_case(n))
    });
    if face.ice.is_some() {
        sd.attributes.push(Attribute::flag("ice-lite"));
    }
    let mut bundle = None;
    for (j, m) in sd.media.iter_mut().enumerate() {
        if j != idx {
            m.port = 0;
            continue;
        }
        m.port = port;
        m.port_count = None;
        m.proto = face.proto.clone();
        m.formats = codecs.iter().map(|c| c.pt.to_string()).collect();
        m.connection = None;
        m.attributes.retain(|a| {
            !REWRITTEN.iter().any(|n| a.name.eq_ignore_ascii_case(n))
                && (face.feedback || !a.name.eq_ignore_ascii_case("rtcp-rsize"))
        });
        if let Some(mid) = mid {
            // An answer carries the offer's mid (RFC 8843 §7.3).
            m.attributes.retain(|a| !a.name.eq_ignore_ascii_case("mid"));
            m.push_attr("mid", mid);
        } else if face.generate_mid && !m.has_attr("mid") {
            m.push_attr("mid", "0");
        }
        if face.bundle {
            bundle = m.attr("mid").map(str::to_owned);
        }
        for c in codecs {
            let rtpmap = if c.channels > 1 {
                format!("{} {}/{}/{}", c.pt, c.name, c.clock_rate, c.channels)
            } else {
                format!("{} {}/{}", c.pt, c.name, c.clock_rate)
            };
            m.push_attr("rtpmap", rtpmap);
            if let Some(f) = &c.fmtp {
                m.push_attr("fmtp", format!("{} {f}", c.pt));
            }
            if face.feedback {
                for fb in &c.rtcp_fb {
                    m.push_attr("rtcp-fb", format!("{} {fb}", c.pt));
                }
            }
        }
        if face.rtcp_attr && !face.mux_only {
            m.push_attr("rtcp", port.saturating_add(1).to_string());
        }
        if face.rtcp_mux {
            m.push_flag("rtcp-mux");
        }
        if let Some(ice) = &face.ice {
            m.push_attr("ice-ufrag", ice.ufrag.clone());
            m.push_attr("ice-pwd", ice.pwd.clone());
            m.push_attr("candidate", Candidate::host(0, addr, port).to_string());
            if !face.mux_only {
                let mut c2 = Candidate::host(0, addr, port.saturating_add(1));
                c2.component = 2;
                c2.priority = c2.priority.saturating_sub(1);
                m.push_attr("candidate", c2.to_string());
            }
        }
        if let Some(setup) = face.setup {
            m.push_attr("setup", setup.as_str());
            m.push_attr(
                "fingerprint",
                format!("{} {}", fingerprint.algorithm().name(), fingerprint.hex()),
            );
        }
        for c in &face.crypto {
            m.push_attr("crypto", c.to_string());
        }
    }
    if let Some(mid) = bundle {
        sd.attributes
            .push(Attribute::new("group", format!("BUNDLE {mid}")));
    }
    sd.to_string()
}
