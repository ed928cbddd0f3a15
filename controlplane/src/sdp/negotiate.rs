//! Offer/answer across the two legs of a call: [`CallMedia`].
//!
//! Every SDP Strait emits carries Strait's own addresses and ports; media is
//! relayed (and, when the two sides share no codec, transcoded) by the data
//! plane. State kept per call:
//!
//! - per leg, the `o=` session id and version (the version goes up by one
//!   each time the body Strait sends on that leg changes, RFC 3264 §8);
//! - per leg, Strait's payload-type numbering (sticky across re-INVITEs, so a
//!   peer that renumbers is remapped, never trusted to stay put);
//! - per leg, the media-section layout (answers mirror offers; re-offers keep
//!   every section, rejected ones with port 0);
//! - the browser leg's ICE credentials (regenerated on an ICE restart) and
//!   DTLS role, the legacy leg's SDES key;
//! - the pending offer, whose state changes apply only when its answer is
//!   accepted ([`CallMedia::cancel_offer`] drops it).

use std::net::IpAddr;

use super::attrs::Candidate;
use super::attrs::{
    random_session_id, Crypto, Direction, Fingerprint, HashAlgorithm, IceCredentials, RandomSource,
    Setup, SrtpMasterKey, SrtpSuite,
};
use super::error::SdpError;
use super::media::{find_audio, Codec, CodecKind, MediaInfo};
use super::model::{Connection, MediaDescription, Origin, SessionDescription};
use super::plan::{
    DtlsPlan, G711Law, IcePlan, LegPlan, MediaPlan, PayloadFormat, SdesPlan, Side, TranscodeMode,
    TranscodePlan,
};

/// Strait's media endpoint toward the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserEndpoint {
    /// Address written in `c=`, `o=` and the first host candidate (the public
    /// address when the server is behind NAT).
    pub address: IpAddr,
    /// More host candidates on the same port (e.g. the private address), lower priority.
    pub extra_addresses: Vec<IpAddr>,
    /// RTP (and multiplexed RTCP) port.
    pub port: u16,
    /// Fingerprint of Strait's DTLS certificate.
    pub fingerprint: Fingerprint,
    /// SSRC Strait sends with toward the browser; announced with
    /// `a=ssrc`/`a=msid` when set.
    pub ssrc: Option<u32>,
}

/// Strait's media endpoint toward the legacy side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEndpoint {
    /// Address written in `c=` and `o=`.
    pub address: IpAddr,
    /// RTP port.
    pub port: u16,
    /// RTCP port; `None` means RTP port + 1.
    pub rtcp_port: Option<u16>,
    /// Write `a=rtcp:<port>` (RFC 3605) even though the port is the default one.
    pub rtcp_attribute: bool,
    /// Offer SDES-keyed SRTP (`RTP/SAVP` + `a=crypto`) instead of plain RTP.
    pub offer_sdes: bool,
}

impl LegacyEndpoint {
    fn rtcp(&self) -> u16 {
        self.rtcp_port.unwrap_or(self.port.wrapping_add(1))
    }
}

/// Which codec Strait lists first in an offer to the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecPreference {
    /// The legacy side's G.711 first: no transcoding if the browser agrees.
    #[default]
    Passthrough,
    /// Opus first: better on lossy access links, costs transcoding.
    Opus,
}

/// Per-call configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// Browser-side endpoint.
    pub browser: BrowserEndpoint,
    /// Legacy-side endpoint.
    pub legacy: LegacyEndpoint,
    /// Allow Opus <-> G.711 transcoding.
    pub transcoding: bool,
    /// Codec order in offers to the browser.
    pub preference: CodecPreference,
    /// telephone-event PT offered to the legacy side when the browser gives none.
    pub dtmf_pt: u8,
    /// `a=ptime` written toward the legacy side.
    pub ptime: u32,
    /// Answer the browser with `a=rtcp-fb:<pt> nack` even when it did not offer it
    /// (RFC 4585 §4.2 forbids adding feedback types, so off by default).
    pub force_nack: bool,
    /// `o=` user name.
    pub origin_username: String,
}

impl CallConfig {
    /// Defaults: transcoding allowed, passthrough preferred, DTMF PT 101, ptime 20.
    pub fn new(browser: BrowserEndpoint, legacy: LegacyEndpoint) -> Self {
        Self {
            browser,
            legacy,
            transcoding: true,
            preference: CodecPreference::Passthrough,
            dtmf_pt: 101,
            ptime: 20,
            force_nack: false,
            origin_username: "strait".to_owned(),
        }
    }
}

/// Whether a call set up by an offer may need transcoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscodeNeed {
    /// Whatever the answer, the codecs pass through.
    No,
    /// Depends on the answer.
    Possible,
    /// The offerer has no G.711 (a browser offering only Opus): Strait transcodes.
    Required,
}

/// An offer to forward to the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The description to send.
    pub sdp: SessionDescription,
    /// Transcoding outlook.
    pub transcoding: TranscodeNeed,
    /// The browser restarted ICE (new credentials on both ends).
    pub ice_restart: bool,
}

/// An answer to send back to the offerer, and the resulting media plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The description to send.
    pub sdp: SessionDescription,
    /// What the data plane must do now.
    pub plan: MediaPlan,
}

/// The formats Strait negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Pcmu,
    Pcma,
    Opus,
    Ev8,
    Ev48,
}

impl Key {
    fn of(c: &Codec) -> Option<Self> {
        match (c.kind, c.clock_rate) {
            (CodecKind::Pcmu, _) => Some(Key::Pcmu),
            (CodecKind::Pcma, _) => Some(Key::Pcma),
            (CodecKind::Opus, _) => Some(Key::Opus),
            (CodecKind::TelephoneEvent, 8000) => Some(Key::Ev8),
            (CodecKind::TelephoneEvent, 48000) => Some(Key::Ev48),
            _ => None,
        }
    }

    fn kind(self) -> CodecKind {
        match self {
            Key::Pcmu => CodecKind::Pcmu,
            Key::Pcma => CodecKind::Pcma,
            Key::Opus => CodecKind::Opus,
            Key::Ev8 | Key::Ev48 => CodecKind::TelephoneEvent,
        }
    }

    fn rate(self) -> u32 {
        match self {
            Key::Pcmu | Key::Pcma | Key::Ev8 => 8000,
            Key::Opus | Key::Ev48 => 48000,
        }
    }

    fn rtpmap(self) -> &'static str {
        match self {
            Key::Pcmu => "PCMU/8000",
            Key::Pcma => "PCMA/8000",
            Key::Opus => "opus/48000/2",
            Key::Ev8 => "telephone-event/8000",
            Key::Ev48 => "telephone-event/48000",
        }
    }

    fn is_event(self) -> bool {
        matches!(self, Key::Ev8 | Key::Ev48)
    }
}

/// A media section as laid out on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    media: String,
    proto: String,
    format: String,
    mid: Option<String>,
}

fn layout_of(sd: &SessionDescription) -> Vec<Slot> {
    sd.media
        .iter()
        .map(|m| Slot {
            media: m.media.clone(),
            proto: m.proto.clone(),
            format: m.formats.first().cloned().unwrap_or_else(|| "0".to_owned()),
            mid: m
                .attr("mid")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        })
        .collect()
}

/// The layout of an offer Strait makes on a leg: the previous layout with
/// the audio slot refreshed, or just the audio slot.
fn offer_layout(prev: &[Slot], prev_audio: usize, audio: Slot) -> (Vec<Slot>, usize) {
    if prev_audio < prev.len() {
        let mut l = prev.to_vec();
        l[prev_audio] = audio;
        (l, prev_audio)
    } else {
        (vec![audio], 0)
    }
}

#[derive(Debug, Clone)]
struct Origins {
    session_id: u64,
    version: u64,
    last_body: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct LegState {
    /// Strait's payload-type numbering on this leg.
    pts: Vec<(Key, u8)>,
    layout: Vec<Slot>,
    audio: usize,
    local_ice: Option<IceCredentials>,
    remote_ice: Option<IceCredentials>,
    dtls_role: Option<Setup>,
    sdes_local: Option<Crypto>,
}

impl LegState {
    fn pt_of(&self, k: Key) -> Option<u8> {
        self.pts.iter().find(|(x, _)| *x == k).map(|(_, p)| *p)
    }

    /// Strait's PT for `k` on this leg: the sticky one if still free, else
    /// the first free of `prefs`, else the first free dynamic PT.
    fn assign(&mut self, k: Key, prefs: &[u8], used: &mut Vec<u8>) -> u8 {
        let candidates = self
            .pt_of(k)
            .into_iter()
            .chain(prefs.iter().copied())
            .chain(96..=127)
            .chain(35..=63);
        let pt = candidates
            .into_iter()
            .find(|p| !used.contains(p))
            .expect("fewer formats than free payload types");
        used.push(pt);
        self.pts.retain(|(x, _)| *x != k);
        self.pts.push((k, pt));
        pt
    }

    /// Adopts a remote's numbering (Strait answers with the offerer's PTs).
    fn adopt(&mut self, info: &MediaInfo) {
        self.pts.clear();
        for c in &info.codecs {
            if let Some(k) = Key::of(c) {
                if self.pt_of(k).is_none() {
                    self.pts.push((k, c.pt));
                }
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    from: Side,
    /// The offerer's audio section.
    remote: MediaInfo,
    /// The offerer's effective direction.
    remote_dir: Direction,
    remote_layout: Vec<Slot>,
    /// The offerer's SDES crypto line Strait will accept (legacy offerer).
    remote_crypto: Option<Crypto>,
    /// Leg state to commit with the answer.
    staged: [LegState; 2],
    /// What Strait offered to the answerer, in Strait's numbering there.
    offered: Vec<(Key, u8)>,
    offered_layout: Vec<Slot>,
    offered_audio: usize,
    offered_dir: Direction,
    offered_crypto: Option<Crypto>,
}

impl Pending {
    fn offered_pt(&self, k: Key) -> Option<u8> {
        self.offered.iter().find(|(x, _)| *x == k).map(|(_, p)| *p)
    }
}

/// One negotiated audio format on a leg: Strait's PT and the remote's.
#[derive(Debug, Clone, Copy)]
struct Pts {
    remote: u8,
    local: u8,
}

/// The outcome of an exchange on one leg, input to the plan.
#[derive(Debug)]
struct Negotiated<'a> {
    remote: &'a MediaInfo,
    remote_dir: Direction,
    local_dir: Direction,
    key: Key,
    codec: Pts,
    event: Option<Pts>,
    rtcp_mux: bool,
}

/// One line-up entry for a media section Strait writes.
#[derive(Debug)]
struct Line {
    key: Key,
    pt: u8,
    fmtp: Option<String>,
    nack: bool,
}

#[derive(Debug)]
struct BrowserAudio<'a> {
    proto: &'a str,
    lines: &'a [Line],
    dir: Direction,
    mid: Option<&'a str>,
    bundle: bool,
    rtcp_rsize: bool,
    setup: Setup,
}

#[derive(Debug)]
struct LegacyAudio<'a> {
    proto: &'a str,
    lines: &'a [Line],
    dir: Direction,
    rtcp_mux: bool,
    crypto: Option<&'a Crypto>,
}

const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";
const EVENTS_FMTP: &str = "0-16";
const BROWSER_PROTO: &str = "UDP/TLS/RTP/SAVPF";

/// Offer/answer state of one call between a browser and a legacy endpoint.
///
/// Drive it with [`process_offer`](Self::process_offer) when either side
/// sends an offer (INVITE, re-INVITE, UPDATE, or a 200 OK to an INVITE
/// without SDP) and [`process_answer`](Self::process_answer) when the other
/// side answers it. Only one offer may be pending at a time.
#[derive(Debug)]
pub struct CallMedia {
    cfg: CallConfig,
    origins: [Origins; 2],
    legs: [LegState; 2],
    pending: Option<Pending>,
    plan: Option<MediaPlan>,
    cname: String,
}

impl CallMedia {
    /// A call with no exchange yet. Draws session ids, Strait's browser-side
    /// ICE credentials and RTCP CNAME from `rng`.
    pub fn new(cfg: CallConfig, rng: &mut dyn RandomSource) -> Self {
        let origins = [(); 2].map(|_| Origins {
            session_id: random_session_id(rng),
            version: 1,
            last_body: None,
        });
        let mut legs = [LegState::default(), LegState::default()];
        legs[Side::Browser.idx()].local_ice = Some(IceCredentials::generate(rng));
        let cname = IceCredentials::generate(rng).pwd[..16].to_owned();
        Self {
            cfg,
            origins,
            legs,
            pending: None,
            plan: None,
            cname,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CallConfig {
        &self.cfg
    }

    /// The plan of the last completed exchange.
    pub fn plan(&self) -> Option<&MediaPlan> {
        self.plan.as_ref()
    }

    /// The side whose offer awaits an answer.
    pub fn pending_offer_from(&self) -> Option<Side> {
        self.pending.as_ref().map(|p| p.from)
    }

    /// Strait's current ICE credentials toward the browser.
    pub fn local_ice(&self) -> &IceCredentials {
        self.legs[Side::Browser.idx()]
            .local_ice
            .as_ref()
            .expect("browser ICE credentials are generated at construction")
    }

    /// Drops the pending offer (the answerer rejected it, or the transaction
    /// failed): the last completed exchange stays in force. Origin versions
    /// are not rolled back, as the peer has seen the offer.
    pub fn cancel_offer(&mut self) {
        self.pending = None;
    }

    /// Takes an offer from `from` and returns the offer to send to the other
    /// side. On error nothing changes; answer the offer with
    /// [`SdpError::sip_status`].
    pub fn process_offer(
        &mut self,
        from: Side,
        sdp: &[u8],
        rng: &mut dyn RandomSource,
    ) -> Result<Offer, SdpError> {
        if self.pending.is_some() {
            return Err(SdpError::OfferPending);
        }
        let sd = SessionDescription::parse(sdp)?;
        match from {
            Side::Browser => self.offer_from_browser(&sd, rng),
            Side::Legacy => self.offer_from_legacy(&sd, rng),
        }
    }

    /// Takes the answer from `from` to the pending offer and returns the
    /// answer for the offerer with the new media plan. On error the pending
    /// offer is dropped (the previous exchange stays in force), except for
    /// [`SdpError::NoPendingOffer`], which changes nothing.
    pub fn process_answer(
        &mut self,
        from: Side,
        sdp: &[u8],
        rng: &mut dyn RandomSource,
    ) -> Result<Answer, SdpError> {
        match &self.pending {
            Some(p) if p.from == from.other() => {}
            _ => return Err(SdpError::NoPendingOffer),
        }
        let p = self.pending.take().expect("checked above");
        let sd = SessionDescription::parse(sdp)?;
        if sd.media.len() != p.offered_layout.len() {
            return Err(SdpError::AnswerMismatch);
        }
        let m = &sd.media[p.offered_audio];
        if !m.media.eq_ignore_ascii_case("audio") {
            return Err(SdpError::AnswerMismatch);
        }
        if m.port == 0 {
            return Err(SdpError::AudioDeclined);
        }
        match from {
            Side::Legacy => self.answer_from_legacy(p, &sd, rng),
            Side::Browser => self.answer_from_browser(p, &sd, rng),
        }
    }

    // -- browser offers, legacy answers ------------------------------------

    fn offer_from_browser(
        &mut self,
        sd: &SessionDescription,
        rng: &mut dyn RandomSource,
    ) -> Result<Offer, SdpError> {
        let bl = &self.legs[Side::Browser.idx()];
        let prev_mid = bl.layout.get(bl.audio).and_then(|s| s.mid.clone());
        let idx = find_audio(sd, prev_mid.as_deref())?;
        let b = MediaInfo::from_session(sd, idx)?;
        let remote_ice = check_browser(&b)?;
        answer_role(b.setup, None)?;

        let mut browser_g711: Vec<Key> = Vec::new();
        for c in &b.codecs {
            if let Some(k @ (Key::Pcmu | Key::Pcma)) = Key::of(c) {
                if !browser_g711.contains(&k) {
                    browser_g711.push(k);
                }
            }
        }
        let mut g711 = browser_g711.clone();
        if self.cfg.transcoding && b.first(CodecKind::Opus).is_some() {
            for k in [Key::Pcmu, Key::Pcma] {
                if !g711.contains(&k) {
                    g711.push(k);
                }
            }
        }
        if g711.is_empty() {
            return Err(SdpError::NoCommonCodec);
        }
        let transcoding = if browser_g711.is_empty() {
            TranscodeNeed::Required
        } else if g711.len() > browser_g711.len() {
            TranscodeNeed::Possible
        } else {
            TranscodeNeed::No
        };

        let mut staged = self.legs.clone();
        let bs = &mut staged[Side::Browser.idx()];
        let ice_restart = bs
            .remote_ice
            .as_ref()
            .is_some_and(|prev| *prev != remote_ice);
        if ice_restart {
            bs.local_ice = Some(IceCredentials::generate(rng));
        }
        bs.remote_ice = Some(remote_ice);

        let ls = &mut staged[Side::Legacy.idx()];
        let mut used = Vec::new();
        let mut lines = Vec::new();
        for k in g711 {
            let pt = ls.assign(k, &[static_pt(k)], &mut used);
            lines.push(Line {
                key: k,
                pt,
                fmtp: None,
                nack: false,
            });
        }
        let ev_prefs: Vec<u8> = b
            .telephone_event(8000)
            .map(|c| c.pt)
            .into_iter()
            .chain([self.cfg.dtmf_pt])
            .collect();
        let ev = ls.assign(Key::Ev8, &ev_prefs, &mut used);
        lines.push(Line {
            key: Key::Ev8,
            pt: ev,
            fmtp: Some(EVENTS_FMTP.to_owned()),
            nack: false,
        });
        // SRTP once negotiated stays on for re-offers, whatever the config.
        let crypto = if self.cfg.legacy.offer_sdes || ls.sdes_local.is_some() {
            let c = match &ls.sdes_local {
                Some(c) => c.clone(),
                None => Crypto {
                    tag: 1,
                    suite: SrtpSuite::AesCm128HmacSha1_80,
                    key: SrtpMasterKey::generate(SrtpSuite::AesCm128HmacSha1_80, rng),
                },
            };
            ls.sdes_local = Some(c.clone());
            Some(c)
        } else {
            None
        };
        let proto = if crypto.is_some() {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        };
        let (layout, audio) = offer_layout(
            &ls.layout,
            ls.audio,
            Slot {
                media: "audio".to_owned(),
                proto: proto.to_owned(),
                format: lines[0].pt.to_string(),
                mid: None,
            },
        );
        let dir = b.direction;
        let out = self.legacy_sdp(
            &layout,
            audio,
            &LegacyAudio {
                proto,
                lines: &lines,
                dir,
                rtcp_mux: false,
                crypto: crypto.as_ref(),
            },
        );
        let out = self.stamp(Side::Legacy, out);
        self.pending = Some(Pending {
            from: Side::Browser,
            remote_dir: b.direction,
            remote_layout: layout_of(sd),
            remote: b,
            remote_crypto: None,
            staged,
            offered: lines.iter().map(|l| (l.key, l.pt)).collect(),
            offered_layout: layout,
            offered_audio: audio,
            offered_dir: dir,
            offered_crypto: crypto,
        });
        Ok(Offer {
            sdp: out,
            transcoding,
            ice_restart,
        })
    }

    fn answer_from_legacy(
        &mut self,
        p: Pending,
        sd: &SessionDescription,
        _rng: &mut dyn RandomSource,
    ) -> Result<Answer, SdpError> {
        let l = MediaInfo::from_session(sd, p.offered_audio)?;
        let sdes = check_legacy_answer(&l, p.offered_crypto.as_ref())?;
        let chosen = l
            .codecs
            .iter()
            .find(|c| {
                matches!(c.kind, CodecKind::Pcmu | CodecKind::Pcma)
                    && Key::of(c).is_some_and(|k| p.offered_pt(k).is_some())
            })
            .ok_or(SdpError::UnexpectedCodec)?;
        let lkey = Key::of(chosen).expect("chosen codec is G.711");
        let l_codec = Pts {
            remote: chosen.pt,
            local: p.offered_pt(lkey).expect("chosen codec was offered"),
        };
        let b = &p.remote;
        let (b_codec, transcoding) = match b.first(lkey.kind()) {
            Some(c) => (c, false),
            None => (
                b.first(CodecKind::Opus).ok_or(SdpError::NoCommonCodec)?,
                true,
            ),
        };
        let bkey = Key::of(b_codec).expect("G.711 or Opus");
        let l_ev = l.telephone_event(8000).and_then(|c| {
            p.offered_pt(Key::Ev8).map(|local| Pts {
                remote: c.pt,
                local,
            })
        });
        let b_ev = l_ev
            .and_then(|_| b.telephone_event(if transcoding { 48000 } else { 8000 }))
            .map(|c| Pts {
                remote: c.pt,
                local: c.pt,
            });
        let l_ev = l_ev.filter(|_| b_ev.is_some());

        let mut staged = p.staged;
        let bs = &mut staged[Side::Browser.idx()];
        let role = answer_role(b.setup, bs.dtls_role)?;
        bs.dtls_role = Some(role);
        bs.adopt(b);
        bs.layout = p.remote_layout.clone();
        bs.audio = b.index;
        let ls = &mut staged[Side::Legacy.idx()];
        ls.layout = p.offered_layout.clone();
        ls.audio = p.offered_audio;

        let l_dir = l.effective_direction();
        let ans_dir = l_dir.intersect(b.direction.reversed());
        let nack = self.cfg.force_nack || b_codec.has_nack();
        let mut lines = vec![Line {
            key: bkey,
            pt: b_codec.pt,
            fmtp: b_codec.fmtp.clone(),
            nack,
        }];
        if let Some(e) = b_ev {
            lines.push(Line {
                key: if transcoding { Key::Ev48 } else { Key::Ev8 },
                pt: e.remote,
                fmtp: None,
                nack: false,
            });
        }
        let local_ice = staged[Side::Browser.idx()]
            .local_ice
            .clone()
            .expect("browser ICE credentials are generated at construction");
        let out = self.browser_sdp(
            &local_ice,
            &p.remote_layout,
            b.index,
            &BrowserAudio {
                proto: &b.proto,
                lines: &lines,
                dir: ans_dir,
                mid: b.mid.as_deref(),
                bundle: b.bundled,
                rtcp_rsize: b.rtcp_rsize,
                setup: role,
            },
        );
        let out = self.stamp(Side::Browser, out);
        let plan = self.make_plan(
            &staged,
            Negotiated {
                remote: b,
                remote_dir: b.direction,
                local_dir: ans_dir,
                key: bkey,
                codec: Pts {
                    remote: b_codec.pt,
                    local: b_codec.pt,
                },
                event: b_ev,
                rtcp_mux: true,
            },
            Negotiated {
                remote: &l,
                remote_dir: l_dir,
                local_dir: p.offered_dir,
                key: lkey,
                codec: l_codec,
                event: l_ev,
                rtcp_mux: false,
            },
            transcoding,
            nack,
            role,
            sdes,
        );
        self.legs = staged;
        self.plan = Some(plan.clone());
        Ok(Answer { sdp: out, plan })
    }

    // -- legacy offers, browser answers ------------------------------------

    fn offer_from_legacy(
        &mut self,
        sd: &SessionDescription,
        _rng: &mut dyn RandomSource,
    ) -> Result<Offer, SdpError> {
        let idx = find_audio(sd, None)?;
        let l = MediaInfo::from_session(sd, idx)?;
        let remote_crypto = check_legacy_offer(&l)?;
        let mut legacy_g711: Vec<Key> = Vec::new();
        for c in &l.codecs {
            if let Some(k @ (Key::Pcmu | Key::Pcma)) = Key::of(c) {
                if !legacy_g711.contains(&k) {
                    legacy_g711.push(k);
                }
            }
        }
        if legacy_g711.is_empty() {
            return Err(SdpError::NoCommonCodec);
        }
        let l_ev = l.telephone_event(8000);
        let opus = self.cfg.transcoding;

        let mut staged = self.legs.clone();
        let bs = &mut staged[Side::Browser.idx()];
        let mut used = Vec::new();
        let mut opus_line = None;
        if opus {
            let pt = bs.assign(Key::Opus, &[111], &mut used);
            opus_line = Some(Line {
                key: Key::Opus,
                pt,
                fmtp: Some(OPUS_FMTP.to_owned()),
                nack: true,
            });
        }
        let mut g711_lines = Vec::new();
        for k in &legacy_g711 {
            let pt = bs.assign(*k, &[static_pt(*k)], &mut used);
            g711_lines.push(Line {
                key: *k,
                pt,
                fmtp: None,
                nack: true,
            });
        }
        let mut lines = Vec::new();
        match self.cfg.preference {
            CodecPreference::Passthrough => {
                lines.extend(g711_lines);
                lines.extend(opus_line);
            }
            CodecPreference::Opus => {
                lines.extend(opus_line);
                lines.extend(g711_lines);
            }
        }
        if let Some(le) = l_ev {
            if opus {
                let pt = bs.assign(Key::Ev48, &[110], &mut used);
                lines.push(Line {
                    key: Key::Ev48,
                    pt,
                    fmtp: None,
                    nack: false,
                });
            }
            let mut prefs = Vec::new();
            if (96..=127).contains(&le.pt) {
                prefs.push(le.pt);
            }
            prefs.extend([126, 101]);
            let pt = bs.assign(Key::Ev8, &prefs, &mut used);
            lines.push(Line {
                key: Key::Ev8,
                pt,
                fmtp: None,
                nack: false,
            });
        }
        let mid = bs
            .layout
            .get(bs.audio)
            .and_then(|s| s.mid.clone())
            .unwrap_or_else(|| "0".to_owned());
        let (layout, audio) = offer_layout(
            &bs.layout,
            bs.audio,
            Slot {
                media: "audio".to_owned(),
                proto: BROWSER_PROTO.to_owned(),
                format: lines[0].pt.to_string(),
                mid: Some(mid.clone()),
            },
        );
        let local_ice = bs
            .local_ice
            .clone()
            .expect("browser ICE credentials are generated at construction");
        let dir = l.effective_direction();
        let out = self.browser_sdp(
            &local_ice,
            &layout,
            audio,
            &BrowserAudio {
                proto: BROWSER_PROTO,
                lines: &lines,
                dir,
                mid: Some(&mid),
                bundle: true,
                rtcp_rsize: true,
                setup: Setup::ActPass,
            },
        );
        let out = self.stamp(Side::Browser, out);
        self.pending = Some(Pending {
            from: Side::Legacy,
            remote_dir: dir,
            remote_layout: layout_of(sd),
            remote: l,
            remote_crypto,
            staged,
            offered: lines.iter().map(|l| (l.key, l.pt)).collect(),
            offered_layout: layout,
            offered_audio: audio,
            offered_dir: dir,
            offered_crypto: None,
        });
        Ok(Offer {
            sdp: out,
            transcoding: if opus {
                TranscodeNeed::Possible
            } else {
                TranscodeNeed::No
            },
            ice_restart: false,
        })
    }

    fn answer_from_browser(
        &mut self,
        p: Pending,
        sd: &SessionDescription,
        rng: &mut dyn RandomSource,
    ) -> Result<Answer, SdpError> {
        let b = MediaInfo::from_session(sd, p.offered_audio)?;
        let remote_ice = check_browser(&b)?;
        let role = match b.setup {
            Some(Setup::Active) | None => Setup::Passive,
            Some(Setup::Passive) => Setup::Active,
            Some(Setup::ActPass | Setup::HoldConn) => return Err(SdpError::BadSetup),
        };
        let chosen = b
            .codecs
            .iter()
            .find(|c| {
                matches!(c.kind, CodecKind::Pcmu | CodecKind::Pcma | CodecKind::Opus)
                    && Key::of(c).is_some_and(|k| p.offered_pt(k).is_some())
            })
            .ok_or(SdpError::UnexpectedCodec)?;
        let bkey = Key::of(chosen).expect("G.711 or Opus");
        let b_codec = Pts {
            remote: chosen.pt,
            local: p.offered_pt(bkey).expect("chosen codec was offered"),
        };
        let l = &p.remote;
        let transcoding = bkey == Key::Opus;
        let l_chosen = if transcoding {
            l.codecs
                .iter()
                .find(|c| matches!(c.kind, CodecKind::Pcmu | CodecKind::Pcma))
        } else {
            l.first(bkey.kind())
        }
        .ok_or(SdpError::UnexpectedCodec)?;
        let lkey = Key::of(l_chosen).expect("G.711");
        let ev_key = if transcoding { Key::Ev48 } else { Key::Ev8 };
        let b_ev = p.offered_pt(ev_key).and_then(|local| {
            b.telephone_event(ev_key.rate()).map(|c| Pts {
                remote: c.pt,
                local,
            })
        });
        let l_ev_codec = l.telephone_event(8000).filter(|_| b_ev.is_some());
        let l_ev = l_ev_codec.map(|c| Pts {
            remote: c.pt,
            local: c.pt,
        });
        let b_ev = b_ev.filter(|_| l_ev.is_some());

        let mut staged = p.staged;
        let bs = &mut staged[Side::Browser.idx()];
        bs.remote_ice = Some(remote_ice);
        bs.dtls_role = Some(role);
        bs.layout = p.offered_layout.clone();
        bs.audio = p.offered_audio;
        let ls = &mut staged[Side::Legacy.idx()];
        ls.adopt(l);
        ls.layout = p.remote_layout.clone();
        ls.audio = l.index;
        let sdes = match &p.remote_crypto {
            Some(rc) => {
                let local = match &ls.sdes_local {
                    Some(c) if c.suite == rc.suite => Crypto {
                        tag: rc.tag,
                        ..c.clone()
                    },
                    _ => Crypto {
                        tag: rc.tag,
                        suite: rc.suite,
                        key: SrtpMasterKey::generate(rc.suite, rng),
                    },
                };
                ls.sdes_local = Some(local.clone());
                Some((
                    local.clone(),
                    SdesPlan {
                        suite: rc.suite,
                        tx: local.key,
                        rx: rc.key,
                    },
                ))
            }
            None => None,
        };

        let ans_dir = b.direction.intersect(p.remote_dir.reversed());
        let mut lines = vec![Line {
            key: lkey,
            pt: l_chosen.pt,
            fmtp: l_chosen.fmtp.clone(),
            nack: false,
        }];
        if let Some(c) = l_ev_codec {
            lines.push(Line {
                key: Key::Ev8,
                pt: c.pt,
                fmtp: Some(c.fmtp.clone().unwrap_or_else(|| EVENTS_FMTP.to_owned())),
                nack: false,
            });
        }
        let out = self.legacy_sdp(
            &p.remote_layout,
            l.index,
            &LegacyAudio {
                proto: &l.proto,
                lines: &lines,
                dir: ans_dir,
                rtcp_mux: l.rtcp_mux,
                crypto: sdes.as_ref().map(|(c, _)| c),
            },
        );
        let out = self.stamp(Side::Legacy, out);
        let nack = chosen.has_nack();
        let plan = self.make_plan(
            &staged,
            Negotiated {
                remote: &b,
                remote_dir: b.direction,
                local_dir: p.offered_dir,
                key: bkey,
                codec: b_codec,
                event: b_ev,
                rtcp_mux: true,
            },
            Negotiated {
                remote: l,
                remote_dir: p.remote_dir,
                local_dir: ans_dir,
                key: lkey,
                codec: Pts {
                    remote: l_chosen.pt,
                    local: l_chosen.pt,
                },
                event: l_ev,
                rtcp_mux: l.rtcp_mux,
            },
            transcoding,
            nack,
            role,
            sdes.map(|(_, s)| s),
        );
        self.legs = staged;
        self.plan = Some(plan.clone());
        Ok(Answer { sdp: out, plan })
    }

    // -- writers -------------------------------------------------------------

    /// Sets the origin of a description Strait sends on `side`, bumping the
    /// version when the body differs from the last one sent there.
    fn stamp(&mut self, side: Side, mut sd: SessionDescription) -> SessionDescription {
        let ip = match side {
            Side::Browser => self.cfg.browser.address,
            Side::Legacy => self.cfg.legacy.address,
        };
        let o = &mut self.origins[side.idx()];
        sd.origin = Origin {
            username: self.cfg.origin_username.clone(),
            session_id: o.session_id.to_string(),
            session_version: "0".to_owned(),
            net_type: "IN".to_owned(),
            addr_type: addr_type(ip).to_owned(),
            address: ip.to_string(),
        };
        let body = sd.to_string();
        if o.last_body.as_ref().is_some_and(|prev| *prev != body) {
            o.version += 1;
        }
        o.last_body = Some(body);
        sd.origin.session_version = o.version.to_string();
        sd
    }

    fn skeleton(&self, ip: IpAddr) -> SessionDescription {
        let mut sd = SessionDescription::new(Origin {
            username: self.cfg.origin_username.clone(),
            session_id: "0".to_owned(),
            session_version: "0".to_owned(),
            net_type: "IN".to_owned(),
            addr_type: addr_type(ip).to_owned(),
            address: ip.to_string(),
        });
        sd.connection = Some(connection(ip));
        sd
    }

    fn browser_sdp(
        &self,
        ice: &IceCredentials,
        layout: &[Slot],
        audio: usize,
        a: &BrowserAudio<'_>,
    ) -> SessionDescription {
        let cfg = &self.cfg.browser;
        let mut sd = self.skeleton(cfg.address);
        sd.push_flag("ice-lite");
        if let (true, Some(mid)) = (a.bundle, a.mid) {
            sd.push_attr("group", format!("BUNDLE {mid}"));
        }
        if cfg.ssrc.is_some() {
            sd.push_attr("msid-semantic", " WMS strait");
        }
        for (i, slot) in layout.iter().enumerate() {
            if i != audio {
                sd.media.push(rejected(slot));
                continue;
            }
            let mut m = MediaDescription::new(
                "audio",
                cfg.port,
                a.proto,
                a.lines.iter().map(|l| l.pt.to_string()).collect(),
            );
            if let Some(mid) = a.mid {
                m.push_attr("mid", mid);
            }
            m.push_attr("ice-ufrag", ice.ufrag.clone());
            m.push_attr("ice-pwd", ice.pwd.clone());
            m.push_attr("fingerprint", cfg.fingerprint.to_string());
            m.push_attr("setup", a.setup.as_str());
            m.push_flag(a.dir.as_str());
            m.push_flag("rtcp-mux");
            if a.rtcp_rsize {
                m.push_flag("rtcp-rsize");
            }
            push_lines(&mut m, a.lines);
            if let Some(ssrc) = cfg.ssrc {
                m.push_attr("msid", "strait strait-audio");
                m.push_attr("ssrc", format!("{ssrc} cname:{}", self.cname));
                m.push_attr("ssrc", format!("{ssrc} msid:strait strait-audio"));
            }
            let addrs = std::iter::once(cfg.address).chain(cfg.extra_addresses.iter().copied());
            for (n, ip) in addrs.enumerate() {
                m.push_attr("candidate", Candidate::host(n, ip, cfg.port).to_string());
            }
            m.push_flag("end-of-candidates");
            sd.media.push(m);
        }
        sd
    }

    fn legacy_sdp(&self, layout: &[Slot], audio: usize, a: &LegacyAudio<'_>) -> SessionDescription {
        let cfg = &self.cfg.legacy;
        let mut sd = self.skeleton(cfg.address);
        for (i, slot) in layout.iter().enumerate() {
            if i != audio {
                sd.media.push(rejected(slot));
                continue;
            }
            let mut m = MediaDescription::new(
                "audio",
                cfg.port,
                a.proto,
                a.lines.iter().map(|l| l.pt.to_string()).collect(),
            );
            push_lines(&mut m, a.lines);
            m.push_attr("ptime", self.cfg.ptime.to_string());
            m.push_flag(a.dir.as_str());
            if a.rtcp_mux {
                m.push_flag("rtcp-mux");
            } else if cfg.rtcp_attribute || cfg.rtcp_port.is_some() {
                m.push_attr("rtcp", cfg.rtcp().to_string());
            }
            if let Some(c) = a.crypto {
                m.push_attr("crypto", c.to_string());
            }
            sd.media.push(m);
        }
        sd
    }

    // -- plan ------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn make_plan(
        &self,
        staged: &[LegState; 2],
        b: Negotiated<'_>,
        l: Negotiated<'_>,
        transcoding: bool,
        nack: bool,
        role: Setup,
        sdes: Option<SdesPlan>,
    ) -> MediaPlan {
        let law = G711Law::of(l.key.kind()).expect("the legacy codec is G.711");
        let (b_map, l_map, b_tc, l_tc) = if transcoding {
            let b_tc = TranscodePlan {
                mode: TranscodeMode::G711ToOpus,
                law,
                g711_pt: l.codec.local,
                opus_pt: b.codec.remote,
                g711_event_pt: l.event.map(|e| e.local),
                opus_event_pt: b.event.map(|e| e.remote),
            };
            let l_tc = TranscodePlan {
                mode: TranscodeMode::OpusToG711,
                law,
                g711_pt: l.codec.remote,
                opus_pt: b.codec.local,
                g711_event_pt: l.event.map(|e| e.remote),
                opus_event_pt: b.event.map(|e| e.local),
            };
            (Vec::new(), Vec::new(), Some(b_tc), Some(l_tc))
        } else {
            (pt_map(&l, &b), pt_map(&b, &l), None, None)
        };
        let bs = &staged[Side::Browser.idx()];
        let remote_fp = b
            .remote
            .fingerprints
            .iter()
            .find(|f| f.algorithm == HashAlgorithm::Sha256)
            .or(b.remote.fingerprints.first())
            .cloned()
            .expect("browser descriptions are checked to carry a fingerprint");
        let browser = LegPlan {
            side: Side::Browser,
            local_rtp_port: self.cfg.browser.port,
            local_rtcp_port: None,
            remote_rtp: b.remote.rtp,
            remote_rtcp: b.remote.rtp,
            rtcp_mux: true,
            direction: b.local_dir.intersect(b.remote_dir.reversed()),
            send: b.local_dir.sends() && b.remote_dir.receives(),
            recv: b.local_dir.receives() && b.remote_dir.sends(),
            ice: Some(IcePlan {
                local: bs.local_ice.clone().expect("generated at construction"),
                remote: bs
                    .remote_ice
                    .clone()
                    .expect("set by every browser exchange"),
            }),
            dtls: Some(DtlsPlan {
                local_role: role,
                remote_fingerprint: remote_fp,
            }),
            sdes: None,
            codec: PayloadFormat {
                kind: b.key.kind(),
                pt: b.codec.remote,
                clock_rate: b.key.rate(),
            },
            event_pt: b.event.map(|e| e.remote),
            pt_map: b_map,
            transcode: b_tc,
            nack,
            ssrc_out: self.cfg.browser.ssrc,
            ptime: b.remote.ptime,
        };
        let lsend = l.local_dir.sends() && l.remote_dir.receives() && l.remote.rtp.is_some();
        let legacy = LegPlan {
            side: Side::Legacy,
            local_rtp_port: self.cfg.legacy.port,
            local_rtcp_port: (!l.rtcp_mux).then(|| self.cfg.legacy.rtcp()),
            remote_rtp: l.remote.rtp,
            remote_rtcp: if l.rtcp_mux {
                l.remote.rtp
            } else {
                l.remote.rtcp
            },
            rtcp_mux: l.rtcp_mux,
            direction: Direction::from_flags(lsend, l.local_dir.receives() && l.remote_dir.sends()),
            send: lsend,
            recv: l.local_dir.receives() && l.remote_dir.sends(),
            ice: None,
            dtls: None,
            sdes,
            codec: PayloadFormat {
                kind: l.key.kind(),
                pt: l.codec.remote,
                clock_rate: 8000,
            },
            event_pt: l.event.map(|e| e.remote),
            pt_map: l_map,
            transcode: l_tc,
            nack: false,
            ssrc_out: None,
            ptime: l.remote.ptime,
        };
        MediaPlan { browser, legacy }
    }
}

/// Payload-type rewrites for packets arriving from `from` and leaving toward
/// `to`: into `to`'s numbering, from Strait's numbering on `from` (what a
/// peer should send) and also from `from`'s own numbering (what sloppy peers
/// that answered with other PTs do send) unless that alias is another
/// format's PT. Identities are left out.
fn pt_map(from: &Negotiated<'_>, to: &Negotiated<'_>) -> Vec<(u8, u8)> {
    let locals: Vec<u8> = [Some(from.codec.local), from.event.map(|e| e.local)]
        .into_iter()
        .flatten()
        .collect();
    let mut pairs: Vec<(u8, u8)> = Vec::new();
    for (f, t) in [(Some(from.codec), Some(to.codec)), (from.event, to.event)] {
        let (Some(f), Some(t)) = (f, t) else { continue };
        for src in [f.local, f.remote] {
            let alias_clash = src != f.local && locals.contains(&src);
            if !alias_clash && src != t.remote && !pairs.iter().any(|(s, _)| *s == src) {
                pairs.push((src, t.remote));
            }
        }
    }
    pairs
}

fn push_lines(m: &mut MediaDescription, lines: &[Line]) {
    for l in lines {
        m.push_attr("rtpmap", format!("{} {}", l.pt, l.key.rtpmap()));
        if let Some(f) = &l.fmtp {
            m.push_attr("fmtp", format!("{} {f}", l.pt));
        }
        if l.nack && !l.key.is_event() {
            m.push_attr("rtcp-fb", format!("{} nack", l.pt));
        }
    }
}

fn rejected(slot: &Slot) -> MediaDescription {
    let mut m = MediaDescription::new(&slot.media, 0, &slot.proto, vec![slot.format.clone()]);
    if let Some(mid) = &slot.mid {
        m.push_attr("mid", mid.clone());
    }
    m
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn connection(ip: IpAddr) -> Connection {
    Connection {
        net_type: "IN".to_owned(),
        addr_type: addr_type(ip).to_owned(),
        address: ip.to_string(),
    }
}

fn static_pt(k: Key) -> u8 {
    match k {
        Key::Pcmu => 0,
        Key::Pcma => 8,
        Key::Opus => 111,
        Key::Ev48 => 110,
        Key::Ev8 => 101,
    }
}

/// Checks what every browser description must carry; returns its ICE credentials.
fn check_browser(b: &MediaInfo) -> Result<IceCredentials, SdpError> {
    if !b.profile.is_dtls() {
        return Err(SdpError::UnsupportedProfile);
    }
    let ice = b.ice.clone().ok_or(SdpError::MissingIce)?;
    if b.fingerprints.is_empty() {
        return Err(SdpError::MissingFingerprint);
    }
    if !b.rtcp_mux {
        return Err(SdpError::RtcpMuxRequired);
    }
    Ok(ice)
}

/// Strait's DTLS role answering a browser offer with `offered` (RFC 5763:
/// passive toward an actpass offerer, which is what works with Chrome; keep
/// the established role on re-offers).
fn answer_role(offered: Option<Setup>, current: Option<Setup>) -> Result<Setup, SdpError> {
    match offered {
        Some(Setup::ActPass) => Ok(current
            .filter(|r| matches!(r, Setup::Active | Setup::Passive))
            .unwrap_or(Setup::Passive)),
        // RFC 4145: an absent attribute means the offerer is active.
        Some(Setup::Active) | None => Ok(Setup::Passive),
        Some(Setup::Passive) => Ok(Setup::Active),
        Some(Setup::HoldConn) => Err(SdpError::BadSetup),
    }
}

/// A legacy offer's transport: plain RTP, or SDES SRTP with a usable key.
fn check_legacy_offer(l: &MediaInfo) -> Result<Option<Crypto>, SdpError> {
    if l.profile.is_plain() {
        Ok(None)
    } else if l.profile.is_sdes() {
        l.crypto
            .first()
            .cloned()
            .map(Some)
            .ok_or(SdpError::NoUsableCrypto)
    } else {
        Err(SdpError::UnsupportedProfile)
    }
}

/// A legacy answer's transport must match what Strait offered.
fn check_legacy_answer(
    l: &MediaInfo,
    offered: Option<&Crypto>,
) -> Result<Option<SdesPlan>, SdpError> {
    match offered {
        None if l.profile.is_plain() => Ok(None),
        Some(ours) if l.profile.is_sdes() => {
            let theirs = l
                .crypto
                .iter()
                .find(|c| c.tag == ours.tag && c.suite == ours.suite)
                .ok_or(SdpError::NoUsableCrypto)?;
            Ok(Some(SdesPlan {
                suite: ours.suite,
                tx: ours.key,
                rx: theirs.key,
            }))
        }
        _ => Err(SdpError::UnsupportedProfile),
    }
}
