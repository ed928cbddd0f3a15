//! One worker's sans-IO core: its leg table and the path of every packet.
//!
//! The runtime ([`crate::worker`]) owns the sockets and the rings and calls
//! three things here:
//!
//! - [`Core::apply`] for each rule from the control plane (add, update,
//!   remove a leg; send a packet; snapshot),
//! - [`Core::on_packet`] for each received datagram, which edits the packet
//!   in place and returns a [`Verdict`]: send it (from which local port, to
//!   where, how long) or drop it (and why),
//! - [`Core::on_timer`] now and then, which reaps idle legs and notices lost
//!   ICE consent.
//!
//! Anything else the core wants done (a STUN answer, NACK resends, a punted
//! DTLS record, an event for the control plane) goes through [`Effects`].
//!
//! A packet's path, received on leg A whose peer is leg B:
//!
//! ```text
//! demux ─ STUN ──▶ ICE check (A's ice-pwd) ─▶ answer, latch A's remote
//!       ├ DTLS, unknown ─▶ punt up
//!       ├ RTP ──▶ source check (latched/signalled: no RTP bleed) ─▶ SRTP unprotect (A rx)
//!       │        ─▶ B: payload-type map, SSRC/seq/ts rewrite, transcode ─▶ SRTP protect (B tx)
//!       │        ─▶ keep in B's NACK tail ─▶ send from B's port to B's remote
//!       └ RTCP ─▶ source check ─▶ SRTCP unprotect ─▶ answer NACKs from A's tail
//!                ─▶ SSRC rewrite ─▶ SRTCP protect (B tx) ─▶ send to B's RTCP address
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_codec::g711::Law;
use strait_codec::opus::EncoderConfig;
use strait_codec::transcode::{
    DecoderConfig, EventFormats, Formats, G711ToOpus, OpusToG711, OutputStream, PayloadFormat,
};
use strait_rtp::demux::{classify, PacketKind};
use strait_rtp::nack::{NackBuffer, NackConfig};
use strait_rtp::rtcp::{self, RtcpView, SsrcField};
use strait_rtp::rtp::{RtpPacket, RtpPacketMut};
use strait_rtp::seq::SeqExtender;
use strait_rules::abi::{self, counter, flags, reject, transcode, Kind, LegRule};
use strait_rules::region::Region;
use strait_srtp::{Config as SrtpConfig, SrtpContext, Suite};

use crate::stun;

/// How long ICE consent lasts without a fresh check (RFC 7675 §5.1).
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What to do with a received packet after [`Core::on_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the first `len` bytes of the (edited) buffer from local `port`.
    Send {
        /// Local port whose socket sends.
        port: u16,
        /// Destination.
        to: SocketAddr,
        /// Bytes to send.
        len: usize,
    },
    /// Fully handled (answered, punted); nothing more to send.
    Consumed,
    /// Dropped, and counted under this reason.
    Drop(Discard),
}

/// Why a packet was dropped. Each has a counter in [`CoreStats::drops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Discard {
    /// No leg owns the local port.
    NoLeg = 0,
    /// From an address that is neither latched nor signalled (RTP bleed).
    Stranger,
    /// Unparseable RTP/RTCP.
    Malformed,
    /// SRTP/SRTCP authentication failed.
    AuthFailed,
    /// SRTP/SRTCP replay or too old.
    Replayed,
    /// Other SRTP failure (too many SSRCs, key exhausted, buffer).
    Srtp,
    /// The leg has no peer yet.
    NoPeer,
    /// The peer has no address to send to yet (ICE not latched).
    NoDestination,
    /// STUN with wrong credentials or malformed.
    BadStun,
    /// A punted packet did not fit the event ring.
    PuntRingFull,
    /// RTCP terminated here (answered NACKs, or a transcoded leg).
    RtcpTerminated,
    /// Media on a leg whose ICE consent was lost.
    NoConsent,
    /// Media on a leg whose SRTP keys are not known yet (DTLS running).
    KeysPending,
}

/// Number of [`Discard`] reasons.
pub const DROP_REASONS: usize = 13;

/// Worker-wide counters (per-leg ones live in the shared region).
#[derive(Debug, Clone, Default)]
pub struct CoreStats {
    /// Packets dropped, by [`Discard`] reason.
    pub drops: [u64; DROP_REASONS],
    /// Packets punted up.
    pub punted: u64,
    /// STUN checks answered.
    pub stun_answered: u64,
    /// Rules applied.
    pub rules_applied: u64,
    /// Rules rejected.
    pub rules_rejected: u64,
}

/// Side effects the core asks of its runtime.
pub trait Effects {
    /// Send a copy of `bytes` from local `port` to `to`.
    fn send(&mut self, port: u16, to: SocketAddr, bytes: &[u8]);
    /// Report an event up: its kind and body. Returns false if the ring is full.
    fn event(&mut self, kind: Kind, body: &[u8]) -> bool;
    /// Punt a packet up with its header. Returns false if the ring is full.
    fn punt(&mut self, header: &abi::Punted, packet: &[u8]) -> bool;
    /// A local port is no longer used by any leg: close its socket.
    fn close_port(&mut self, port: u16);
}

/// Continuity of the stream leaving a leg when its source SSRC changes.
#[derive(Debug, Clone, Copy, Default)]
struct OutStream {
    started: bool,
    in_ssrc: u32,
    seq_delta: u16,
    ts_delta: u32,
    last_seq: u16,
    last_ts: u32,
    ts_step: u32,
}

/// Loss accounting of the stream arriving on a leg.
#[derive(Debug, Clone, Copy, Default)]
struct InStream {
    ssrc: Option<u32>,
    ext: SeqExtender,
    first: u64,
    highest: u64,
    received: u64,
}

#[derive(Debug)]
struct Leg {
    rule: LegRule,
    peer: Option<usize>,
    signalled_rtp: Option<SocketAddr>,
    signalled_rtcp: Option<SocketAddr>,
    latched_rtp: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    consent_at: Option<Instant>,
    consent_lost: bool,
    srtp_rx: Option<SrtpContext>,
    srtp_tx: Option<SrtpContext>,
    nack: Option<NackBuffer>,
    transcoder: Option<Transcoder>,
    pt_map: [u8; 128],
    out: OutStream,
    inp: InStream,
    last_media: Instant,
}

impl Leg {
    fn has(&self, f: u32) -> bool {
        self.rule.flags & f != 0
    }

    fn rtcp_port(&self) -> u16 {
        if self.has(flags::RTCP_MUX) || self.rule.local_rtcp_port == 0 {
            self.rule.local_port
        } else {
            self.rule.local_rtcp_port
        }
    }

    /// Where RTP for this leg goes.
    fn rtp_dest(&self) -> Option<SocketAddr> {
        if self.consent_lost || self.has(flags::SRTP_PENDING) {
            return None;
        }
        self.latched_rtp.or(if self.has(flags::ICE) {
            None
        } else {
            self.signalled_rtp
        })
    }

    /// Where RTCP for this leg goes.
    fn rtcp_dest(&self) -> Option<SocketAddr> {
        if self.has(flags::RTCP_MUX) || self.has(flags::SRTP_PENDING) {
            return self.rtp_dest();
        }
        self.latched_rtcp.or(self.signalled_rtcp)
    }
}

fn suite_of(code: u8) -> Result<Option<Suite>, u32> {
    match code {
        0 => Ok(None),
        1 => Ok(Some(Suite::AesCm128HmacSha1_80)),
        2 => Ok(Some(Suite::AesCm128HmacSha1_32)),
        3 => Ok(Some(Suite::AeadAes128Gcm)),
        _ => Err(reject::BAD_FIELD),
    }
}

fn srtp_context(k: &abi::SrtpKeys) -> Result<Option<SrtpContext>, u32> {
    let Some(suite) = suite_of(k.suite)? else {
        return Ok(None);
    };
    let salt = &k.salt[..suite.master_salt_len()];
    SrtpContext::new(suite, &k.key, salt, SrtpConfig::default())
        .map(Some)
        .map_err(|_| reject::BAD_FIELD)
}

/// A leg's transcoder: owns the SSRC, sequence numbers and timestamps of
/// the stream leaving the leg.
#[derive(Debug)]
enum Transcoder {
    ToOpus(Box<G711ToOpus>),
    ToG711(Box<OpusToG711>),
}

impl Transcoder {
    fn from_rule(rule: &LegRule) -> Result<Option<Self>, u32> {
        let t = rule.transcode;
        if t.mode == transcode::NONE {
            return Ok(None);
        }
        let law = match t.law {
            0 => Law::Ulaw,
            1 => Law::Alaw,
            _ => return Err(reject::BAD_FIELD),
        };
        let events = (t.g711_event_pt != 0xFF && t.opus_event_pt != 0xFF).then(|| EventFormats {
            g711: PayloadFormat::new(t.g711_event_pt, 8000),
            opus: PayloadFormat::new(t.opus_event_pt, 48_000),
        });
        let formats = Formats {
            g711: PayloadFormat::new(t.g711_pt, 8000),
            law,
            opus: PayloadFormat::new(t.opus_pt, 48_000),
            telephone_event: events,
        };
        // The output stream's identity: the rule's SSRC, else one derived
        // from the leg id; sequence and timestamp start from the id too
        // (unpredictable enough for a relay; RFC 3550 asks for random).
        let mix = rule.leg_id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let output = OutputStream {
            ssrc: if rule.ssrc_out != 0 {
                rule.ssrc_out
            } else {
                (mix >> 32) as u32 | 1
            },
            initial_sequence: (mix >> 16) as u16,
            initial_timestamp: mix as u32,
        };
        match t.mode {
            transcode::G711_TO_OPUS => {
                let enc = EncoderConfig {
                    complexity: t.complexity.min(10),
                    ..EncoderConfig::default()
                };
                G711ToOpus::new(&formats, output, &enc)
                    .map(|x| Some(Transcoder::ToOpus(Box::new(x))))
                    .map_err(|_| reject::BAD_FIELD)
            }
            transcode::OPUS_TO_G711 => OpusToG711::new(&formats, output, &DecoderConfig::default())
                .map(|x| Some(Transcoder::ToG711(Box::new(x))))
                .map_err(|_| reject::BAD_FIELD),
            _ => Err(reject::BAD_FIELD),
        }
    }

    fn push(&mut self, packet: &[u8]) -> bool {
        match self {
            Transcoder::ToOpus(t) => t.push(packet).is_ok(),
            Transcoder::ToG711(t) => t.push(packet).is_ok(),
        }
    }

    fn poll(&mut self, out: &mut [u8]) -> Option<usize> {
        match self {
            Transcoder::ToOpus(t) => t.poll(out).ok().flatten(),
            Transcoder::ToG711(t) => t.poll(out).ok().flatten(),
        }
    }
}

/// Limits of one worker's core.
#[derive(Debug, Clone, Copy)]
pub struct CoreConfig {
    /// Most legs held at once.
    pub max_legs: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self { max_legs: 20_000 }
    }
}

/// One worker's leg table and packet path. See the [module docs](self).
pub struct Core {
    config: CoreConfig,
    legs: Vec<Option<Leg>>,
    free: Vec<usize>,
    by_id: HashMap<u64, usize>,
    /// Local port -> leg index + 1 (0: none).
    by_port: Box<[u32]>,
    region: Arc<Region>,
    stats: CoreStats,
    /// Output of transcoders, before protection (room for any packet plus
    /// an SRTP tag).
    scratch: Box<[u8; 2048]>,
}

impl core::fmt::Debug for Core {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Core")
            .field("legs", &self.by_id.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core whose per-leg counters live in `region`.
    pub fn new(config: CoreConfig, region: Arc<Region>) -> Self {
        Self {
            config,
            legs: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            by_port: vec![0u32; 65_536].into_boxed_slice(),
            region,
            stats: CoreStats::default(),
            scratch: Box::new([0; 2048]),
        }
    }

    /// Worker-wide counters.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// Number of legs held.
    pub fn leg_count(&self) -> usize {
        self.by_id.len()
    }

    /// The address a leg is latched to, if any.
    pub fn latched(&self, leg_id: u64) -> Option<SocketAddr> {
        let i = *self.by_id.get(&leg_id)?;
        self.legs[i].as_ref()?.latched_rtp
    }

    /// Local ports an add-leg rule needs that no leg of this core has yet:
    /// the runtime opens these sockets before calling [`Core::apply`].
    pub fn ports_to_open(&self, rule: &LegRule) -> [Option<u16>; 2] {
        let own = |p: u16| {
            let i = self.by_port[usize::from(p)];
            i != 0
                && self.legs[i as usize - 1]
                    .as_ref()
                    .is_some_and(|l| l.rule.leg_id == rule.leg_id)
        };
        let rtp = (rule.local_port != 0 && !own(rule.local_port)).then_some(rule.local_port);
        let rtcp = (rule.flags & flags::RTCP_MUX == 0
            && rule.local_rtcp_port != 0
            && !own(rule.local_rtcp_port))
        .then_some(rule.local_rtcp_port);
        [rtp, rtcp]
    }

    fn count(&self, slot: u32, idx: usize, n: u64) {
        if let Some(c) = self.region.counters(slot) {
            // Single writer (this worker): a relaxed load and store is enough.
            let cell = &c[idx];
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
    }

    fn set_counter(&self, slot: u32, idx: usize, v: u64) {
        if let Some(c) = self.region.counters(slot) {
            c[idx].store(v, Ordering::Relaxed);
        }
    }

    /// Reports a rule the runtime could not apply (e.g. its port would not
    /// bind) as a [`Kind::RuleRejected`] event, counted like the core's own.
    pub fn reject_rule(&mut self, fx: &mut impl Effects, kind: u16, leg_id: u64, reason: u32) {
        self.stats.rules_rejected += 1;
        let body = abi::RuleRejected {
            leg_id,
            kind,
            _pad: 0,
            reason,
        };
        fx.event(Kind::RuleRejected, bytemuck::bytes_of(&body));
    }

    /// Applies one message from the control plane. Failures are reported up
    /// as [`Kind::RuleRejected`] events and counted.
    pub fn apply(&mut self, now: Instant, kind: u16, body: &[u8], fx: &mut impl Effects) {
        let result = match Kind::from_u16(kind) {
            Some(Kind::AddLeg) | Some(Kind::UpdateLeg) => match read::<LegRule>(body) {
                Some(rule) => self
                    .upsert(now, rule, kind == Kind::UpdateLeg as u16)
                    .map_err(|r| (rule.leg_id, r)),
                None => Err((0, reject::BAD_SIZE)),
            },
            Some(Kind::RemoveLeg) => match read::<abi::LegRef>(body) {
                Some(r) => self
                    .remove(r.leg_id, fx)
                    .then_some(())
                    .ok_or((r.leg_id, reject::NO_SUCH_LEG)),
                None => Err((0, reject::BAD_SIZE)),
            },
            Some(Kind::SendPacket) => {
                let n = core::mem::size_of::<abi::SendPacket>();
                match body.get(..n).and_then(read::<abi::SendPacket>) {
                    Some(h) => match (self.by_id.get(&h.leg_id), h.to.to_socket_addr()) {
                        (Some(&i), Some(to)) => {
                            let port = self.legs[i].as_ref().map_or(0, |l| l.rule.local_port);
                            fx.send(port, to, &body[n..]);
                            Ok(())
                        }
                        (None, _) => Err((h.leg_id, reject::NO_SUCH_LEG)),
                        (_, None) => Err((h.leg_id, reject::BAD_FIELD)),
                    },
                    None => Err((0, reject::BAD_SIZE)),
                }
            }
            Some(Kind::Snapshot) => {
                for leg in self.legs.iter().flatten() {
                    fx.event(Kind::LegState, bytemuck::bytes_of(&leg.rule));
                }
                fx.event(Kind::SnapshotEnd, &[]);
                Ok(())
            }
            _ => Err((0, reject::UNKNOWN_KIND)),
        };
        match result {
            Ok(()) => self.stats.rules_applied += 1,
            Err((leg_id, reason)) => self.reject_rule(fx, kind, leg_id, reason),
        }
    }

    fn upsert(&mut self, now: Instant, rule: LegRule, update: bool) -> Result<(), u32> {
        if rule.leg_id == 0
            || rule.local_port == 0
            || usize::from(rule.ice_pwd_len) > rule.ice_pwd.len()
            || usize::from(rule.ice_ufrag_len) > rule.ice_ufrag.len()
            || (rule.flags & flags::ICE != 0 && (rule.ice_pwd_len == 0 || rule.ice_ufrag_len == 0))
            || rule.nack_tail_min > rule.nack_tail_max
        {
            return Err(reject::BAD_FIELD);
        }
        if rule.counter_slot >= self.region.layout().max_legs {
            return Err(reject::BAD_COUNTER_SLOT);
        }
        let existing = self.by_id.get(&rule.leg_id).copied();
        if update && existing.is_none() {
            return Err(reject::NO_SUCH_LEG);
        }
        for p in [rule.local_port, rule.local_rtcp_port] {
            let owner = self.by_port[usize::from(p)];
            if p != 0 && owner != 0 && Some(owner as usize - 1) != existing {
                return Err(reject::PORT_UNAVAILABLE);
            }
        }
        let mut pt_map = core::array::from_fn(|i| i as u8);
        for [from, to] in rule.pt_map {
            if from == 0xFF {
                break;
            }
            if from > 127 || to > 127 {
                return Err(reject::BAD_FIELD);
            }
            pt_map[usize::from(from)] = to;
        }
        let nack = if rule.flags & flags::NACK_TAIL != 0 {
            let cfg = NackConfig {
                tail_min: usize::from(rule.nack_tail_min.max(1)),
                tail_max: usize::from(rule.nack_tail_max.max(rule.nack_tail_min).max(1)),
                ..NackConfig::default()
            };
            Some(NackBuffer::new(cfg).map_err(|_| reject::BAD_FIELD)?)
        } else {
            None
        };
        // Keys that did not change keep their contexts (and so their ROC and
        // replay state); new keys start fresh. Everything fallible happens
        // before the old leg is touched.
        let old_rule = existing.and_then(|i| self.legs[i].as_ref()).map(|o| o.rule);
        let same_rx = old_rule.is_some_and(|o| o.srtp_rx == rule.srtp_rx);
        let same_tx = old_rule.is_some_and(|o| o.srtp_tx == rule.srtp_tx);
        let new_rx = if same_rx {
            None
        } else {
            Some(srtp_context(&rule.srtp_rx)?)
        };
        let new_tx = if same_tx {
            None
        } else {
            Some(srtp_context(&rule.srtp_tx)?)
        };
        let transcoder = Transcoder::from_rule(&rule)?;
        if existing.is_none() && self.by_id.len() >= self.config.max_legs {
            return Err(reject::TABLE_FULL);
        }
        let mut old = existing.and_then(|i| self.legs[i].take());
        let srtp_rx = match new_rx {
            Some(ctx) => ctx,
            None => old.as_mut().and_then(|o| o.srtp_rx.take()),
        };
        let srtp_tx = match new_tx {
            Some(ctx) => ctx,
            None => old.as_mut().and_then(|o| o.srtp_tx.take()),
        };
        let idx = match existing {
            Some(i) => i,
            None => match self.free.pop() {
                Some(i) => i,
                None => {
                    self.legs.push(None);
                    self.legs.len() - 1
                }
            },
        };
        if let Some(o) = &old {
            for p in [o.rule.local_port, o.rule.local_rtcp_port] {
                if p != 0 {
                    self.by_port[usize::from(p)] = 0;
                }
            }
        }
        let mut leg = Leg {
            rule,
            peer: self.by_id.get(&rule.peer_leg_id).copied(),
            signalled_rtp: rule.remote_rtp.to_socket_addr(),
            signalled_rtcp: rule.remote_rtcp.to_socket_addr(),
            latched_rtp: None,
            latched_rtcp: None,
            consent_at: None,
            consent_lost: false,
            srtp_rx,
            srtp_tx,
            nack,
            transcoder,
            pt_map,
            out: OutStream::default(),
            inp: InStream::default(),
            last_media: now,
        };
        if let Some(o) = old {
            // An update keeps what the leg has learnt.
            leg.latched_rtp = o.latched_rtp;
            leg.latched_rtcp = o.latched_rtcp;
            leg.consent_at = o.consent_at;
            leg.consent_lost = o.consent_lost;
            leg.out = o.out;
            leg.inp = o.inp;
            leg.last_media = o.last_media;
            if o.rule.transcode == rule.transcode && o.rule.ssrc_out == rule.ssrc_out {
                leg.transcoder = o.transcoder;
            }
            if leg.rule.flags & flags::NACK_TAIL != 0
                && o.rule.nack_tail_min == rule.nack_tail_min
                && o.rule.nack_tail_max == rule.nack_tail_max
            {
                leg.nack = o.nack;
            }
        }
        self.by_port[usize::from(rule.local_port)] = idx as u32 + 1;
        if rule.flags & flags::RTCP_MUX == 0 && rule.local_rtcp_port != 0 {
            self.by_port[usize::from(rule.local_rtcp_port)] = idx as u32 + 1;
        }
        self.legs[idx] = Some(leg);
        self.by_id.insert(rule.leg_id, idx);
        // Legs that named this one as their peer before it existed.
        for (i, l) in self.legs.iter_mut().enumerate() {
            if let Some(l) = l {
                if l.rule.peer_leg_id == rule.leg_id && i != idx {
                    l.peer = Some(idx);
                }
            }
        }
        Ok(())
    }

    fn remove(&mut self, leg_id: u64, fx: &mut impl Effects) -> bool {
        let Some(idx) = self.by_id.remove(&leg_id) else {
            return false;
        };
        let leg = self.legs[idx].take().expect("by_id points at a live leg");
        for p in [leg.rule.local_port, leg.rule.local_rtcp_port] {
            if p != 0 && self.by_port[usize::from(p)] == idx as u32 + 1 {
                self.by_port[usize::from(p)] = 0;
                fx.close_port(p);
            }
        }
        for l in self.legs.iter_mut().flatten() {
            if l.peer == Some(idx) {
                l.peer = None;
            }
        }
        self.free.push(idx);
        true
    }

    fn drop_packet(&mut self, slot: Option<u32>, why: Discard) -> Verdict {
        self.stats.drops[why as usize] += 1;
        if let Some(slot) = slot {
            let idx = match why {
                Discard::AuthFailed => counter::SRTP_AUTH_FAILED,
                Discard::Replayed => counter::REPLAYS,
                _ => counter::DROPPED,
            };
            self.count(slot, idx, 1);
        }
        Verdict::Drop(why)
    }

    fn event(&self, fx: &mut impl Effects, kind: Kind, leg_id: u64, addr: Option<SocketAddr>) {
        let body = abi::LegEvent {
            leg_id,
            addr: addr.map_or(bytemuck::Zeroable::zeroed(), abi::Addr::from_socket_addr),
            _pad: 0,
        };
        fx.event(kind, bytemuck::bytes_of(&body));
    }

    /// Handles one datagram that arrived on local `port` from `from`, held
    /// in `buf[..len]`. `buf` must have room past `len` for an SRTP tag
    /// ([`Suite::rtp_overhead`]; 64 bytes is plenty). See [`Verdict`].
    pub fn on_packet(
        &mut self,
        now: Instant,
        port: u16,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
        fx: &mut impl Effects,
    ) -> Verdict {
        let li = self.by_port[usize::from(port)];
        if li == 0 || len > buf.len() {
            return self.drop_packet(None, Discard::NoLeg);
        }
        let a = li as usize - 1;
        let on_rtcp_port = {
            let leg = self.legs[a].as_ref().expect("by_port points at a live leg");
            port != leg.rule.local_port
        };
        match classify(&buf[..len]) {
            PacketKind::Stun => self.on_stun(now, a, port, from, &buf[..len], fx),
            PacketKind::Rtp if !on_rtcp_port => self.on_rtp(now, a, from, buf, len, fx),
            PacketKind::Rtp | PacketKind::Rtcp => self.on_rtcp(now, a, from, buf, len, fx),
            _ => self.punt(a, port, from, &buf[..len], fx),
        }
    }

    fn punt(
        &mut self,
        a: usize,
        port: u16,
        from: SocketAddr,
        pkt: &[u8],
        fx: &mut impl Effects,
    ) -> Verdict {
        let leg_id = self.legs[a].as_ref().map_or(0, |l| l.rule.leg_id);
        let header = abi::Punted {
            leg_id,
            from: abi::Addr::from_socket_addr(from),
            local_port: port,
            _pad: 0,
        };
        if fx.punt(&header, pkt) {
            self.stats.punted += 1;
            Verdict::Consumed
        } else {
            self.drop_packet(None, Discard::PuntRingFull)
        }
    }

    fn on_stun(
        &mut self,
        now: Instant,
        a: usize,
        port: u16,
        from: SocketAddr,
        pkt: &[u8],
        fx: &mut impl Effects,
    ) -> Verdict {
        let leg = self.legs[a].as_mut().expect("caller checked");
        if !leg.has(flags::ICE) {
            return self.punt(a, port, from, pkt, fx);
        }
        let ufrag = &leg.rule.ice_ufrag[..usize::from(leg.rule.ice_ufrag_len)];
        let pwd = &leg.rule.ice_pwd[..usize::from(leg.rule.ice_pwd_len)];
        match stun::check_binding_request(pkt, ufrag, pwd) {
            Ok(req) => {
                let mut resp = [0u8; 128];
                let n = stun::write_binding_success(&mut resp, &req.transaction_id, from, pwd)
                    .expect("128 bytes hold any Binding success we write");
                fx.send(port, from, &resp[..n]);
                self.stats.stun_answered += 1;
                leg.consent_at = Some(now);
                leg.consent_lost = false;
                let latch = leg.latched_rtp.is_none()
                    || (req.use_candidate && leg.latched_rtp != Some(from));
                if latch {
                    leg.latched_rtp = Some(from);
                    let id = leg.rule.leg_id;
                    self.event(fx, Kind::LegLatched, id, Some(from));
                }
                Verdict::Consumed
            }
            Err(stun::StunError::NotBindingRequest) => self.punt(a, port, from, pkt, fx),
            Err(_) => {
                let slot = leg.rule.counter_slot;
                self.drop_packet(Some(slot), Discard::BadStun)
            }
        }
    }

    /// Source check for media on leg `a`: latched or signalled only.
    fn admit(&mut self, a: usize, from: SocketAddr, rtcp: bool, fx: &mut impl Effects) -> bool {
        let leg = self.legs[a].as_mut().expect("caller checked");
        let mux = leg.has(flags::RTCP_MUX);
        let (latched, signalled) = if rtcp && !mux {
            (leg.latched_rtcp, leg.signalled_rtcp)
        } else {
            (leg.latched_rtp, leg.signalled_rtp)
        };
        if latched == Some(from) {
            return true;
        }
        if leg.has(flags::ICE) || latched.is_some() {
            return false;
        }
        let ok = match signalled {
            Some(s) if s == from => true,
            Some(s) => leg.has(flags::SYMMETRIC) && s.ip() == from.ip(),
            None => false,
        };
        if ok {
            if rtcp && !mux {
                leg.latched_rtcp = Some(from);
            } else {
                leg.latched_rtp = Some(from);
                let id = leg.rule.leg_id;
                self.event(fx, Kind::LegLatched, id, Some(from));
            }
        }
        ok
    }

    /// What every media packet on leg `a` goes through first: the source
    /// check (no RTP bleed), the counters, the activity clock and SRTP or
    /// SRTCP unprotection. Returns the leg's counter slot and the plaintext
    /// length, or the verdict for a packet that stops here.
    fn ingress(
        &mut self,
        now: Instant,
        a: usize,
        from: SocketAddr,
        pkt: &mut [u8],
        rtcp: bool,
        fx: &mut impl Effects,
    ) -> Result<(u32, usize), Verdict> {
        let slot_a = self.legs[a]
            .as_ref()
            .expect("caller checked")
            .rule
            .counter_slot;
        if !self.admit(a, from, rtcp, fx) {
            return Err(self.drop_packet(Some(slot_a), Discard::Stranger));
        }
        if self.legs[a]
            .as_ref()
            .is_some_and(|l| l.has(flags::SRTP_PENDING))
        {
            return Err(self.drop_packet(Some(slot_a), Discard::KeysPending));
        }
        self.count(slot_a, counter::PACKETS_IN, 1);
        self.count(slot_a, counter::BYTES_IN, pkt.len() as u64);
        let leg_a = self.legs[a].as_mut().expect("caller checked");
        leg_a.last_media = now;
        let unprotected = match (leg_a.srtp_rx.as_mut(), rtcp) {
            (Some(ctx), false) => ctx.unprotect_rtp(pkt),
            (Some(ctx), true) => ctx.unprotect_rtcp(pkt),
            (None, _) => Ok(pkt.len()),
        };
        unprotected
            .map(|n| (slot_a, n))
            .map_err(|e| self.drop_packet(Some(slot_a), srtp_drop(e)))
    }

    fn on_rtp(
        &mut self,
        now: Instant,
        a: usize,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
        fx: &mut impl Effects,
    ) -> Verdict {
        let (slot_a, len) = match self.ingress(now, a, from, &mut buf[..len], false, fx) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let leg_a = self.legs[a].as_mut().expect("caller checked");
        let Ok(pkt) = RtpPacket::parse(&buf[..len]) else {
            return self.drop_packet(Some(slot_a), Discard::Malformed);
        };
        let (in_ssrc, in_seq, in_ts) = (pkt.ssrc(), pkt.sequence(), pkt.timestamp());
        // Loss accounting on arrival.
        let inp = &mut leg_a.inp;
        if inp.ssrc != Some(in_ssrc) {
            *inp = InStream {
                ssrc: Some(in_ssrc),
                ..InStream::default()
            };
            let e = inp.ext.extend(in_seq);
            inp.first = e;
            inp.highest = e;
        } else {
            let e = inp.ext.extend(in_seq);
            inp.highest = inp.highest.max(e);
        }
        inp.received += 1;
        let expected = inp.highest - inp.first + 1;
        let lost = expected.saturating_sub(inp.received);
        let peer = leg_a.peer;
        self.set_counter(slot_a, counter::LOST, lost);

        let Some(b) = peer else {
            return self.drop_packet(Some(slot_a), Discard::NoPeer);
        };
        let Some(leg_b) = self.legs[b].as_mut() else {
            return self.drop_packet(Some(slot_a), Discard::NoPeer);
        };
        let Some(to) = leg_b.rtp_dest() else {
            let slot_b = leg_b.rule.counter_slot;
            return self.drop_packet(Some(slot_b), Discard::NoDestination);
        };
        if leg_b.transcoder.is_some() {
            return self.transcode(now, b, &buf[..len], to, slot_a, fx);
        }
        // Rewrite for leg B.
        // Rewrite for leg B.
        let (out_seq, out_ssrc) = {
            let mut m = RtpPacketMut::parse(&mut buf[..len]).expect("parsed above");
            let pt = m.as_ref().payload_type();
            m.set_payload_type(leg_b.pt_map[usize::from(pt)]);
            let o = &mut leg_b.out;
            if !o.started {
                *o = OutStream {
                    started: true,
                    in_ssrc,
                    ts_step: 160,
                    ..OutStream::default()
                };
            } else if o.in_ssrc != in_ssrc && leg_b.rule.ssrc_out != 0 {
                // A new source behind a fixed outgoing SSRC: continue the
                // outgoing sequence and timeline where the old source left.
                o.in_ssrc = in_ssrc;
                o.seq_delta = o.last_seq.wrapping_add(1).wrapping_sub(in_seq);
                o.ts_delta = o.last_ts.wrapping_add(o.ts_step).wrapping_sub(in_ts);
            } else if o.in_ssrc != in_ssrc {
                *o = OutStream {
                    started: true,
                    in_ssrc,
                    ts_step: 160,
                    ..OutStream::default()
                };
            }
            let seq = in_seq.wrapping_add(o.seq_delta);
            let ts = in_ts.wrapping_add(o.ts_delta);
            if strait_rtp::seq::is_newer(seq, o.last_seq) || o.last_seq == 0 {
                let step = ts.wrapping_sub(o.last_ts);
                if o.last_ts != 0 && step > 0 && step < 48_000 && seq == o.last_seq.wrapping_add(1)
                {
                    o.ts_step = step;
                }
                o.last_seq = seq;
                o.last_ts = ts;
            }
            m.set_sequence(seq);
            m.set_timestamp(ts);
            let ssrc = if leg_b.rule.ssrc_out != 0 {
                m.set_ssrc(leg_b.rule.ssrc_out);
                leg_b.rule.ssrc_out
            } else {
                in_ssrc
            };
            (seq, ssrc)
        };
        let out_len = match leg_b.srtp_tx.as_mut() {
            Some(ctx) => match ctx.protect_rtp(buf, len) {
                Ok(n) => n,
                Err(e) => {
                    let slot_b = leg_b.rule.counter_slot;
                    return self.drop_packet(Some(slot_b), srtp_drop(e));
                }
            },
            None => len,
        };
        if let Some(nack) = leg_b.nack.as_mut() {
            // Refusals are counted inside the buffer; the packet still goes.
            let _ = nack.insert(now, out_ssrc, out_seq, &buf[..out_len]);
        }
        leg_b.last_media = now;
        let (port, slot_b) = (leg_b.rule.local_port, leg_b.rule.counter_slot);
        self.count(slot_b, counter::PACKETS_OUT, 1);
        self.count(slot_b, counter::BYTES_OUT, out_len as u64);
        Verdict::Send {
            port,
            to,
            len: out_len,
        }
    }

    /// The transcoding egress of leg `b`: the transcoder takes the packet
    /// and may emit zero, one or more packets of its own stream, each
    /// protected, kept for NACKs and queued in order.
    fn transcode(
        &mut self,
        now: Instant,
        b: usize,
        packet: &[u8],
        to: SocketAddr,
        slot_a: u32,
        fx: &mut impl Effects,
    ) -> Verdict {
        let leg_b = self.legs[b].as_mut().expect("caller checked");
        let tc = leg_b.transcoder.as_mut().expect("caller checked");
        if !tc.push(packet) {
            return self.drop_packet(Some(slot_a), Discard::Malformed);
        }
        let (mut packets, mut bytes, mut failed) = (0u64, 0u64, 0u64);
        let port = leg_b.rule.local_port;
        let scratch = &mut self.scratch[..];
        while let Some(n) = tc.poll(scratch) {
            let n = match leg_b.srtp_tx.as_mut() {
                Some(ctx) => match ctx.protect_rtp(scratch, n) {
                    Ok(m) => m,
                    Err(_) => {
                        failed += 1;
                        continue;
                    }
                },
                None => n,
            };
            if let Some(nack) = leg_b.nack.as_mut() {
                let seq = u16::from_be_bytes([scratch[2], scratch[3]]);
                let ssrc = u32::from_be_bytes([scratch[8], scratch[9], scratch[10], scratch[11]]);
                let _ = nack.insert(now, ssrc, seq, &scratch[..n]);
            }
            fx.send(port, to, &scratch[..n]);
            packets += 1;
            bytes += n as u64;
        }
        leg_b.last_media = now;
        let slot_b = leg_b.rule.counter_slot;
        self.count(slot_b, counter::PACKETS_OUT, packets);
        self.count(slot_b, counter::BYTES_OUT, bytes);
        if failed > 0 {
            self.stats.drops[Discard::Srtp as usize] += failed;
            self.count(slot_b, counter::DROPPED, failed);
        }
        Verdict::Consumed
    }

    fn on_rtcp(
        &mut self,
        now: Instant,
        a: usize,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
        fx: &mut impl Effects,
    ) -> Verdict {
        let (slot_a, len) = match self.ingress(now, a, from, &mut buf[..len], true, fx) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let leg_a = self.legs[a].as_mut().expect("caller checked");
        if rtcp::validate(&buf[..len]).is_err() {
            return self.drop_packet(Some(slot_a), Discard::Malformed);
        }
        // Answer NACKs for what leg A sent, from A's tail; they are not
        // forwarded (the legacy side cannot answer them).
        let mut only_feedback_we_answer = true;
        let mut resends = 0u64;
        let mut nacks = 0u64;
        let dest_a = leg_a.rtp_dest();
        let port_a = leg_a.rule.local_port;
        for view in rtcp::views(&buf[..len]).flatten() {
            match view {
                RtcpView::Nack(n) => {
                    nacks += 1;
                    if let (Some(tail), Some(to)) = (leg_a.nack.as_mut(), dest_a) {
                        for p in tail.on_nack(now, &n) {
                            fx.send(port_a, to, p);
                            resends += 1;
                        }
                    }
                }
                _ => only_feedback_we_answer = false,
            }
        }
        let peer = leg_a.peer;
        let a_transcodes = leg_a.transcoder.is_some();
        let ssrc_out_a = leg_a.rule.ssrc_out;
        let in_ssrc_a_out = leg_a.out.in_ssrc;
        if nacks > 0 {
            self.count(slot_a, counter::NACKS, nacks);
            self.count(slot_a, counter::RESENDS, resends);
        }
        if only_feedback_we_answer {
            return self.drop_packet(None, Discard::RtcpTerminated);
        }
        let Some(b) = peer else {
            return self.drop_packet(Some(slot_a), Discard::NoPeer);
        };
        let Some(leg_b) = self.legs[b].as_mut() else {
            return self.drop_packet(Some(slot_a), Discard::NoPeer);
        };
        if leg_b.transcoder.is_some() || a_transcodes {
            // Reports about a transcoded stream describe packets the other
            // side never saw: they end here.
            return self.drop_packet(None, Discard::RtcpTerminated);
        }
        let Some(to) = leg_b.rtcp_dest() else {
            let slot_b = leg_b.rule.counter_slot;
            return self.drop_packet(Some(slot_b), Discard::NoDestination);
        };
        // SSRC rewriting mirrors the RTP path: what A sends goes out under
        // B's SSRC; reports about the stream A received (which left A under
        // A's SSRC) name the original source again.
        let ssrc_out_b = leg_b.rule.ssrc_out;
        if ssrc_out_b != 0 || ssrc_out_a != 0 {
            for mut p in rtcp::packets_mut(&mut buf[..len]).flatten() {
                // Invalid packets are left as they are (validated above).
                let _ = p.map_ssrcs(|field, old| match field {
                    // The sender's own streams go out under B's SSRC.
                    SsrcField::Sender | SsrcField::SdesChunk(_) | SsrcField::Bye(_)
                        if ssrc_out_b != 0 =>
                    {
                        ssrc_out_b
                    }
                    // Reports and feedback about the stream A was sent name
                    // its original source again.
                    SsrcField::ReportBlock(_) | SsrcField::Media | SsrcField::FirEntry(_)
                        if ssrc_out_a != 0 && old == ssrc_out_a =>
                    {
                        in_ssrc_a_out
                    }
                    _ => old,
                });
            }
        }
        let out_len = match leg_b.srtp_tx.as_mut() {
            Some(ctx) => match ctx.protect_rtcp(buf, len) {
                Ok(n) => n,
                Err(e) => {
                    let slot_b = leg_b.rule.counter_slot;
                    return self.drop_packet(Some(slot_b), srtp_drop(e));
                }
            },
            None => len,
        };
        let (port, slot_b) = (leg_b.rtcp_port(), leg_b.rule.counter_slot);
        self.count(slot_b, counter::PACKETS_OUT, 1);
        self.count(slot_b, counter::BYTES_OUT, out_len as u64);
        Verdict::Send {
            port,
            to,
            len: out_len,
        }
    }

    /// Reaps legs idle for their media timeout and notices lost ICE consent.
    /// Call every few hundred milliseconds; cost is linear in legs.
    pub fn on_timer(&mut self, now: Instant, fx: &mut impl Effects) {
        let mut expired: Vec<u64> = Vec::new();
        for i in 0..self.legs.len() {
            let Some(leg) = self.legs[i].as_mut() else {
                continue;
            };
            let timeout = Duration::from_millis(u64::from(leg.rule.media_timeout_ms));
            if leg.rule.media_timeout_ms != 0
                && now.saturating_duration_since(leg.last_media) >= timeout
            {
                expired.push(leg.rule.leg_id);
                continue;
            }
            if let Some(at) = leg.consent_at {
                if !leg.consent_lost && now.saturating_duration_since(at) >= CONSENT_TIMEOUT {
                    leg.consent_lost = true;
                    let id = leg.rule.leg_id;
                    let addr = leg.latched_rtp;
                    self.event(fx, Kind::ConsentLost, id, addr);
                }
            }
        }
        for id in expired {
            let addr = self
                .by_id
                .get(&id)
                .and_then(|&i| self.legs[i].as_ref()?.latched_rtp);
            self.remove(id, fx);
            self.event(fx, Kind::TimedOut, id, addr);
        }
    }
}

fn srtp_drop(e: strait_srtp::Error) -> Discard {
    match e {
        strait_srtp::Error::AuthFailed => Discard::AuthFailed,
        strait_srtp::Error::Replayed | strait_srtp::Error::TooOld => Discard::Replayed,
        strait_srtp::Error::TooShort | strait_srtp::Error::BadHeader => Discard::Malformed,
        _ => Discard::Srtp,
    }
}

fn read<T: bytemuck::Pod>(body: &[u8]) -> Option<T> {
    (body.len() == core::mem::size_of::<T>()).then(|| bytemuck::pod_read_unaligned(body))
}
