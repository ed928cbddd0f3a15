//! The control plane's side of the media plane, sans-IO: which ports and
//! legs a session holds, the rules that describe them, and the DTLS
//! handshakes run on the packets the data plane punts up.
//!
//! One [`MediaEngine`] serves every kind of session (the B2BUA's calls, and
//! sessions driven over rtpengine's ng protocol): a session is a pair of
//! legs on one worker ([`MediaEngine::open_pair`]), each described by a
//! [`LegSetup`] ([`MediaEngine::install`]) and removed with
//! [`MediaEngine::close_pair`]. The engine turns these into ring messages
//! for the workers ([`MediaEngine::poll_message`]: worker index, [`Kind`],
//! body), and takes back what the workers report
//! ([`MediaEngine::handle_ring_message`]): punted DTLS records feed the
//! leg's [`DtlsEndpoint`], whose flights go out from the leg's own socket
//! ([`Kind::SendPacket`]) and whose keys come down as a rule update that
//! clears [`flags::SRTP_PENDING`]. What a session's owner must know
//! (secured, DTLS failed, timed out, latched) comes out of
//! [`MediaEngine::poll_event`].
//!
//! Ports: the data plane gives port pair `k` (RTP `min + 2k`, RTCP one
//! above) to worker `k % workers`, and a worker forwards only between its
//! own legs, so both legs of a session take pairs of the same worker. The
//! worker with the fewest legs is chosen; within it, the least recently
//! freed pair (a port is not reused at once, so late packets of an old call
//! do not reach a new one).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use strait_rules::abi::{self, flags, Kind, LegEvent, LegRule, Punted};

use crate::dtls::{self, DtlsContext, DtlsEndpoint, Role};

/// Identifies a leg across workers (never 0).
pub type LegId = u64;

/// A DTLS-SRTP setup for a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsSetup {
    /// Strait's role in the handshake.
    pub role: Role,
    /// The peer's `a=fingerprint` values.
    pub remote_fingerprints: Vec<dtls::Fingerprint>,
}

/// SDES-SRTP keys for a leg: master key and salt per direction, with the
/// data plane's suite code (1 AES_CM_80, 2 AES_CM_32, 3 GCM).
#[derive(Clone, PartialEq, Eq)]
pub struct SdesSetup {
    /// Suite code.
    pub suite: u8,
    /// Key and salt for packets Strait receives.
    pub rx: ([u8; 16], [u8; 14]),
    /// Key and salt for packets Strait sends.
    pub tx: ([u8; 16], [u8; 14]),
}

impl std::fmt::Debug for SdesSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach logs.
        write!(f, "SdesSetup {{ suite: {} }}", self.suite)
    }
}

/// What one leg does: the session-level description the caller derives from
/// its offer/answer exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegSetup {
    /// Signalled remote RTP address (`None`: wait for ICE to latch).
    pub remote_rtp: Option<SocketAddr>,
    /// Signalled remote RTCP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP shares the RTP port.
    pub rtcp_mux: bool,
    /// ICE-lite credentials (ufrag, password) Strait answers checks with.
    pub ice: Option<(String, String)>,
    /// DTLS-SRTP on this leg.
    pub dtls: Option<DtlsSetup>,
    /// SDES-SRTP on this leg.
    pub sdes: Option<SdesSetup>,
    /// Latch on the first packet from the signalled host (symmetric RTP).
    pub symmetric: bool,
    /// Payload-type rewrites for packets leaving this leg.
    pub pt_map: Vec<(u8, u8)>,
    /// Transcoding of packets leaving this leg.
    pub transcode: Option<abi::Transcode>,
    /// Keep a NACK tail (bounds in packets) and answer NACKs.
    pub nack_tail: Option<(u16, u16)>,
    /// SSRC written on packets leaving this leg.
    pub ssrc_out: Option<u32>,
    /// Remove the leg after this long without media either way (ms, 0 never).
    pub media_timeout_ms: u32,
    /// Drop media until keys are set (an SRTP leg whose keys are not known
    /// yet: its port is bound and ICE answered meanwhile).
    pub keys_pending: bool,
}

/// The two legs of a session, on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// Worker index.
    pub worker: u32,
    /// First leg (for a call, the one facing the browser).
    pub a: LegId,
    /// Second leg.
    pub b: LegId,
    /// RTP port of leg `a` (its RTCP port is one above).
    pub port_a: u16,
    /// RTP port of leg `b`.
    pub port_b: u16,
}

/// Why a session could not get media resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// No worker has two free port pairs, or the counter table is full.
    Exhausted,
    /// The leg does not exist.
    NoSuchLeg,
    /// The DTLS endpoint could not be created (no fingerprint ...).
    Dtls,
}

impl std::fmt::Display for MediaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MediaError::Exhausted => "no media ports or leg slots left",
            MediaError::NoSuchLeg => "no such leg",
            MediaError::Dtls => "the DTLS endpoint could not be created",
        })
    }
}

impl std::error::Error for MediaError {}

/// What happened to a leg, for its session's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// The DTLS handshake completed; the leg now carries SRTP.
    Secured(LegId),
    /// The DTLS handshake failed (fingerprint mismatch, timeout, alert ...).
    DtlsFailed(LegId, String),
    /// The leg latched onto a validated remote address.
    Latched(LegId, SocketAddr),
    /// ICE consent was lost on the leg.
    ConsentLost(LegId),
    /// No media either way for the leg's timeout: the data plane removed it.
    TimedOut(LegId),
    /// The data plane refused the leg's rule (the [`abi::reject`] reason).
    Rejected(LegId, u32),
}

/// Engine counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCounters {
    /// Pairs opened.
    pub pairs_opened: u64,
    /// Pairs closed.
    pub pairs_closed: u64,
    /// Pairs refused for lack of ports or slots.
    pub exhausted: u64,
    /// DTLS handshakes completed.
    pub dtls_secured: u64,
    /// DTLS handshakes failed.
    pub dtls_failed: u64,
    /// Punted packets for unknown legs or that are not DTLS.
    pub punted_ignored: u64,
    /// Ring messages from workers that could not be read.
    pub bad_ring_messages: u64,
}

#[derive(Debug)]
struct Leg {
    worker: u32,
    slot: u32,
    rule: LegRule,
    dtls: Option<DtlsEndpoint>,
    /// The fingerprints the endpoint was made for (a re-offer with others
    /// restarts DTLS).
    dtls_setup: Option<DtlsSetup>,
    /// Where the DTLS peer is (source of its last record).
    dtls_peer: Option<SocketAddr>,
    /// The last DTLS record that arrived before the leg had an endpoint
    /// (a browser's ClientHello racing the SDP answer that names its
    /// fingerprint): fed to the endpoint when it is made.
    early_dtls: Option<(SocketAddr, Vec<u8>)>,
    installed: bool,
}

/// Ports, slots and leg ids, and the DTLS endpoints. See the module docs.
pub struct MediaEngine {
    workers: u32,
    port_min: u16,
    /// Free port pairs per worker, by RTP port, oldest freed first.
    free_pairs: Vec<VecDeque<u16>>,
    legs_on: Vec<u32>,
    free_slots: VecDeque<u32>,
    next_leg: LegId,
    legs: HashMap<LegId, Leg>,
    dtls: DtlsContext,
    out: VecDeque<(u32, Kind, Vec<u8>)>,
    events: VecDeque<MediaEvent>,
    counters: MediaCounters,
    /// A read-only view of the data plane's region, for per-leg counters.
    observed: Option<strait_rules::region::Region>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("workers", &self.workers)
            .field("legs", &self.legs.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn suite_code(s: strait_srtp::Suite) -> u8 {
    match s {
        strait_srtp::Suite::AesCm128HmacSha1_80 => 1,
        strait_srtp::Suite::AesCm128HmacSha1_32 => 2,
        strait_srtp::Suite::AeadAes128Gcm => 3,
        // The DTLS context offers only the suites above.
        _ => 0,
    }
}

fn keys(suite: u8, key: &[u8], salt: &[u8]) -> abi::SrtpKeys {
    let mut k: abi::SrtpKeys = bytemuck::Zeroable::zeroed();
    k.suite = suite;
    let n = key.len().min(16);
    k.key[..n].copy_from_slice(&key[..n]);
    let n = salt.len().min(14);
    k.salt[..n].copy_from_slice(&salt[..n]);
    k
}

fn copy_str<const N: usize>(dst: &mut [u8; N], s: &str) -> u8 {
    let n = s.len().min(N).min(255);
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    n as u8
}

impl MediaEngine {
    /// An engine for a data plane with `layout` (workers, port range, counter
    /// slots), running DTLS with `dtls`.
    pub fn new(layout: strait_rules::region::RegionLayout, dtls: DtlsContext) -> Self {
        let workers = layout.workers.max(1);
        let mut free_pairs = vec![VecDeque::new(); workers as usize];
        let mut port = u32::from(layout.port_min);
        while port < u32::from(layout.port_max) {
            if let Some(w) = layout.worker_for_port(port as u16) {
                free_pairs[w as usize].push_back(port as u16);
            }
            port += 2;
        }
        Self {
            workers,
            port_min: layout.port_min,
            free_pairs,
            legs_on: vec![0; workers as usize],
            free_slots: (0..layout.max_legs).collect(),
            next_leg: 1,
            legs: HashMap::new(),
            dtls,
            out: VecDeque::new(),
            events: VecDeque::new(),
            counters: MediaCounters::default(),
            observed: None,
        }
    }

    /// Counters.
    pub fn counters(&self) -> MediaCounters {
        self.counters
    }

    /// Legs held.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// Free port pairs on all workers.
    pub fn free_port_pairs(&self) -> usize {
        self.free_pairs.iter().map(VecDeque::len).sum()
    }

    /// The fingerprint of Strait's DTLS certificate (for SDP).
    pub fn fingerprint(&self) -> dtls::Fingerprint {
        self.dtls.fingerprint()
    }

    /// Reads per-leg counters from `region` (a [`Region::observe`] view of
    /// the data plane this engine drives) from now on.
    ///
    /// [`Region::observe`]: strait_rules::region::Region::observe
    pub fn observe_counters(&mut self, region: strait_rules::region::Region) {
        self.observed = Some(region);
    }

    /// The data plane's counters of `leg` (indexed by
    /// [`abi::counter`]), when the region is observed.
    pub fn leg_counters(&self, leg: LegId) -> Option<[u64; abi::counter::COUNT]> {
        let slot = self.legs.get(&leg)?.slot;
        let c = self.observed.as_ref()?.counters(slot)?;
        Some(std::array::from_fn(|i| {
            c[i].load(std::sync::atomic::Ordering::Relaxed)
        }))
    }

    /// Whether the leg exists.
    pub fn has_leg(&self, leg: LegId) -> bool {
        self.legs.contains_key(&leg)
    }

    /// Takes over legs a previous control plane left in the data plane (its
    /// snapshot): their ports, slots and ids stay reserved, and the legs are
    /// freed when the data plane reports them timed out (or on
    /// [`close_pair`](Self::close_pair) by an owner that knows them).
    pub fn adopt(&mut self, legs: &[LegRule]) {
        for r in legs {
            let w = r
                .local_port
                .checked_sub(self.port_min)
                .map(|d| (u32::from(d) / 2) % self.workers);
            let Some(w) = w else { continue };
            let w = w as usize;
            self.free_pairs[w].retain(|p| *p != r.local_port);
            self.free_slots.retain(|s| *s != r.counter_slot);
            self.legs_on[w] += 1;
            self.next_leg = self.next_leg.max(r.leg_id + 1);
            self.legs.insert(
                r.leg_id,
                Leg {
                    worker: w as u32,
                    slot: r.counter_slot,
                    rule: *r,
                    dtls: None,
                    dtls_setup: None,
                    dtls_peer: None,
                    early_dtls: None,
                    installed: true,
                },
            );
        }
    }

    /// Reserves two legs on one worker: ports and counter slots. Nothing is
    /// sent to the data plane until [`install`](Self::install).
    pub fn open_pair(&mut self) -> Result<Pair, MediaError> {
        let worker = (0..self.workers as usize)
            .filter(|&w| self.free_pairs[w].len() >= 2)
            .min_by_key(|&w| self.legs_on[w]);
        let (Some(w), true) = (worker, self.free_slots.len() >= 2) else {
            self.counters.exhausted += 1;
            return Err(MediaError::Exhausted);
        };
        let pa = self.free_pairs[w].pop_front().expect("two free pairs");
        let pb = self.free_pairs[w].pop_front().expect("two free pairs");
        let mut ids = [0; 2];
        for (i, port) in [pa, pb].into_iter().enumerate() {
            let slot = self.free_slots.pop_front().expect("two free slots");
            let id = self.next_leg;
            self.next_leg += 1;
            let mut rule: LegRule = bytemuck::Zeroable::zeroed();
            rule.leg_id = id;
            rule.counter_slot = slot;
            rule.local_port = port;
            rule.local_rtcp_port = port + 1;
            self.legs.insert(
                id,
                Leg {
                    worker: w as u32,
                    slot,
                    rule,
                    dtls: None,
                    dtls_setup: None,
                    dtls_peer: None,
                    early_dtls: None,
                    installed: false,
                },
            );
            ids[i] = id;
        }
        for (me, peer) in [(ids[0], ids[1]), (ids[1], ids[0])] {
            if let Some(l) = self.legs.get_mut(&me) {
                l.rule.peer_leg_id = peer;
            }
        }
        self.legs_on[w] += 2;
        self.counters.pairs_opened += 1;
        Ok(Pair {
            worker: w as u32,
            a: ids[0],
            b: ids[1],
            port_a: pa,
            port_b: pb,
        })
    }

    /// Describes leg `leg` to the data plane (adds it the first time, updates
    /// it after). A DTLS setup creates the leg's endpoint (a client sends its
    /// ClientHello once the peer's first packet shows where it is); media
    /// waits for the handshake's keys. The same fingerprints on a later call
    /// keep the running association and its keys.
    pub fn install(
        &mut self,
        now: Instant,
        leg: LegId,
        setup: &LegSetup,
    ) -> Result<(), MediaError> {
        let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg)?;
        let r = &mut l.rule;
        r.flags = 0;
        if setup.rtcp_mux {
            r.flags |= flags::RTCP_MUX;
            r.local_rtcp_port = 0;
        } else {
            r.local_rtcp_port = r.local_port + 1;
        }
        if setup.symmetric {
            r.flags |= flags::SYMMETRIC;
        }
        r.remote_rtp = setup
            .remote_rtp
            .map_or(bytemuck::Zeroable::zeroed(), abi::Addr::from_socket_addr);
        r.remote_rtcp = setup
            .remote_rtcp
            .map_or(bytemuck::Zeroable::zeroed(), abi::Addr::from_socket_addr);
        r.ice_pwd = [0; 64];
        r.ice_ufrag = [0; 32];
        r.ice_pwd_len = 0;
        r.ice_ufrag_len = 0;
        if let Some((ufrag, pwd)) = &setup.ice {
            r.flags |= flags::ICE;
            r.ice_ufrag_len = copy_str(&mut r.ice_ufrag, ufrag);
            r.ice_pwd_len = copy_str(&mut r.ice_pwd, pwd);
        }
        if let Some((min, max)) = setup.nack_tail {
            r.flags |= flags::NACK_TAIL;
            r.nack_tail_min = min;
            r.nack_tail_max = max;
        }
        r.media_timeout_ms = setup.media_timeout_ms;
        r.pt_map = [[0xFF, 0xFF]; 16];
        for (dst, (from, to)) in r.pt_map.iter_mut().zip(setup.pt_map.iter().take(15)) {
            *dst = [*from, *to];
        }
        r.ssrc_out = setup.ssrc_out.unwrap_or(0);
        r.transcode = setup.transcode.unwrap_or(abi::Transcode {
            mode: abi::transcode::NONE,
            law: 0,
            g711_pt: 0,
            opus_pt: 0,
            g711_event_pt: 0xFF,
            opus_event_pt: 0xFF,
            complexity: 0,
            _pad: 0,
        });
        match (&setup.dtls, &setup.sdes) {
            (Some(d), _) => {
                let keep = l.dtls_setup.as_ref() == Some(d)
                    && l.dtls
                        .as_ref()
                        .is_some_and(|e| e.state() != dtls::State::Failed);
                if !keep {
                    let ep = DtlsEndpoint::new(&self.dtls, d.role, &d.remote_fingerprints, now)
                        .map_err(|_| MediaError::Dtls)?;
                    l.dtls = Some(ep);
                    l.dtls_setup = Some(d.clone());
                    l.dtls_peer = None;
                    l.rule.srtp_rx = bytemuck::Zeroable::zeroed();
                    l.rule.srtp_tx = bytemuck::Zeroable::zeroed();
                }
                if l.dtls.as_ref().map(DtlsEndpoint::state) != Some(dtls::State::Connected) {
                    l.rule.flags |= flags::SRTP_PENDING;
                }
            }
            (None, Some(s)) => {
                l.dtls = None;
                l.dtls_setup = None;
                l.rule.srtp_rx = keys(s.suite, &s.rx.0, &s.rx.1);
                l.rule.srtp_tx = keys(s.suite, &s.tx.0, &s.tx.1);
            }
            (None, None) => {
                l.dtls = None;
                l.dtls_setup = None;
                l.rule.srtp_rx = bytemuck::Zeroable::zeroed();
                l.rule.srtp_tx = bytemuck::Zeroable::zeroed();
                if setup.keys_pending {
                    l.rule.flags |= flags::SRTP_PENDING;
                }
            }
        }
        if let (Some(ep), Some((from, rec))) = (l.dtls.as_mut(), l.early_dtls.take()) {
            l.dtls_peer = Some(from);
            let _ = ep.handle_packet(now, &rec);
        }
        let kind = if l.installed {
            Kind::UpdateLeg
        } else {
            Kind::AddLeg
        };
        l.installed = true;
        let (worker, rule) = (l.worker, l.rule);
        self.out
            .push_back((worker, kind, bytemuck::bytes_of(&rule).to_vec()));
        self.flush_dtls(leg);
        Ok(())
    }

    /// Frees a leg the data plane already removed (timed out) if no session
    /// owns it (an adopted leg).
    pub fn release_orphan(&mut self, leg: LegId) {
        if self.legs.get(&leg).is_some_and(|l| !l.installed) {
            self.remove_leg(leg);
        }
    }

    /// Removes both legs of a session and frees their ports and slots.
    pub fn close_pair(&mut self, pair: &Pair) {
        let mut any = false;
        for id in [pair.a, pair.b] {
            any |= self.remove_leg(id);
        }
        if any {
            self.counters.pairs_closed += 1;
        }
    }

    fn remove_leg(&mut self, id: LegId) -> bool {
        let Some(l) = self.legs.remove(&id) else {
            return false;
        };
        if l.installed {
            let body = abi::LegRef { leg_id: id };
            self.out.push_back((
                l.worker,
                Kind::RemoveLeg,
                bytemuck::bytes_of(&body).to_vec(),
            ));
        }
        let w = l.worker as usize;
        self.free_pairs[w].push_back(l.rule.local_port);
        self.legs_on[w] = self.legs_on[w].saturating_sub(1);
        self.free_slots.push_back(l.slot);
        true
    }

    /// The next message for a worker's ring: (worker, kind, body). If the
    /// ring is full, give it back with [`unpoll_message`](Self::unpoll_message).
    pub fn poll_message(&mut self) -> Option<(u32, Kind, Vec<u8>)> {
        self.out.pop_front()
    }

    /// Puts a message taken by [`poll_message`](Self::poll_message) back at
    /// the front (its ring was full).
    pub fn unpoll_message(&mut self, msg: (u32, Kind, Vec<u8>)) {
        self.out.push_front(msg);
    }

    /// The next event for a session's owner.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due (DTLS
    /// retransmissions).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.legs
            .values()
            .filter_map(|l| l.dtls.as_ref().and_then(DtlsEndpoint::poll_timeout))
            .min()
    }

    /// Time passes: DTLS retransmissions and handshake timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<LegId> = self
            .legs
            .iter()
            .filter(|(_, l)| {
                l.dtls
                    .as_ref()
                    .and_then(DtlsEndpoint::poll_timeout)
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(ep) = self.legs.get_mut(&id).and_then(|l| l.dtls.as_mut()) {
                ep.handle_timeout(now);
            }
            self.flush_dtls(id);
        }
    }

    /// A message a worker put on its event ring.
    pub fn handle_ring_message(&mut self, now: Instant, kind: u16, body: &[u8]) {
        match Kind::from_u16(kind) {
            Some(Kind::Punted) => self.on_punted(now, body),
            Some(k @ (Kind::LegLatched | Kind::ConsentLost | Kind::TimedOut)) => {
                let Some(ev) = body
                    .get(..std::mem::size_of::<LegEvent>())
                    .and_then(|b| bytemuck::try_pod_read_unaligned::<LegEvent>(b).ok())
                else {
                    self.counters.bad_ring_messages += 1;
                    return;
                };
                if !self.legs.contains_key(&ev.leg_id) {
                    return;
                }
                match k {
                    Kind::LegLatched => {
                        if let Some(a) = ev.addr.to_socket_addr() {
                            self.events.push_back(MediaEvent::Latched(ev.leg_id, a));
                        }
                    }
                    Kind::ConsentLost => self.events.push_back(MediaEvent::ConsentLost(ev.leg_id)),
                    _ => {
                        // The worker removed the leg already; its owner frees
                        // it (an adopted leg without owner is freed here when
                        // its peer is gone too).
                        if let Some(l) = self.legs.get_mut(&ev.leg_id) {
                            l.installed = false;
                        }
                        self.events.push_back(MediaEvent::TimedOut(ev.leg_id));
                    }
                }
            }
            Some(Kind::RuleRejected) => {
                let Some(r) = body
                    .get(..std::mem::size_of::<abi::RuleRejected>())
                    .and_then(|b| bytemuck::try_pod_read_unaligned::<abi::RuleRejected>(b).ok())
                else {
                    self.counters.bad_ring_messages += 1;
                    return;
                };
                if self.legs.contains_key(&r.leg_id) {
                    self.events
                        .push_back(MediaEvent::Rejected(r.leg_id, r.reason));
                }
            }
            // Snapshot answers belong to whoever asked for one.
            Some(Kind::LegState | Kind::SnapshotEnd) => {}
            _ => self.counters.bad_ring_messages += 1,
        }
    }

    fn on_punted(&mut self, now: Instant, body: &[u8]) {
        let hl = std::mem::size_of::<Punted>();
        let Some(h) = body
            .get(..hl)
            .and_then(|b| bytemuck::try_pod_read_unaligned::<Punted>(b).ok())
        else {
            self.counters.bad_ring_messages += 1;
            return;
        };
        let pkt = &body[hl..];
        // RFC 7983: DTLS records start with 20..=63.
        let is_dtls = pkt.first().is_some_and(|b| (20..=63).contains(b));
        let (Some(from), true) = (h.from.to_socket_addr(), is_dtls) else {
            self.counters.punted_ignored += 1;
            return;
        };
        let Some(l) = self.legs.get_mut(&h.leg_id) else {
            self.counters.punted_ignored += 1;
            return;
        };
        let Some(ep) = l.dtls.as_mut() else {
            // Keys pending without an endpoint yet: keep the record (one,
            // bounded by the ring slot) for when the answer brings one.
            if l.rule.flags & flags::SRTP_PENDING != 0 {
                l.early_dtls = Some((from, pkt.to_vec()));
            } else {
                self.counters.punted_ignored += 1;
            }
            return;
        };
        l.dtls_peer = Some(from);
        // Bad records are counted by the endpoint; a failure is an event.
        let _ = ep.handle_packet(now, pkt);
        self.flush_dtls(h.leg_id);
    }

    /// Sends the endpoint's flights and acts on its events.
    fn flush_dtls(&mut self, id: LegId) {
        let Some(l) = self.legs.get_mut(&id) else {
            return;
        };
        let Some(ep) = l.dtls.as_mut() else {
            return;
        };
        // A client's first flight waits until the peer has shown where it is
        // (its first packet, or ICE).
        let to = l.dtls_peer.or_else(|| l.rule.remote_rtp.to_socket_addr());
        if let Some(to) = to {
            while let Some(d) = ep.poll_output() {
                let h = abi::SendPacket {
                    leg_id: id,
                    to: abi::Addr::from_socket_addr(to),
                    _pad: 0,
                };
                let mut body = bytemuck::bytes_of(&h).to_vec();
                body.extend_from_slice(&d);
                self.out.push_back((l.worker, Kind::SendPacket, body));
            }
        }
        while let Some(ev) = ep.poll_event() {
            match ev {
                dtls::Event::Connected { srtp } => {
                    let suite = suite_code(srtp.suite());
                    l.rule.srtp_rx = keys(suite, srtp.remote_key(), srtp.remote_salt());
                    l.rule.srtp_tx = keys(suite, srtp.local_key(), srtp.local_salt());
                    l.rule.flags &= !flags::SRTP_PENDING;
                    if l.installed {
                        self.out.push_back((
                            l.worker,
                            Kind::UpdateLeg,
                            bytemuck::bytes_of(&l.rule).to_vec(),
                        ));
                    }
                    self.counters.dtls_secured += 1;
                    self.events.push_back(MediaEvent::Secured(id));
                }
                dtls::Event::Failed(reason) => {
                    self.counters.dtls_failed += 1;
                    let detail = ep.error_detail().map(str::to_owned);
                    let text = match detail {
                        Some(d) => format!("{reason:?}: {d}"),
                        None => format!("{reason:?}"),
                    };
                    self.events.push_back(MediaEvent::DtlsFailed(id, text));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_rules::region::RegionLayout;
    use strait_rules::ring::RingGeometry;

    fn layout(workers: u32, ports: (u16, u16), max_legs: u32) -> RegionLayout {
        RegionLayout {
            workers,
            ring: RingGeometry {
                capacity: 64,
                slot_size: 2048,
            },
            max_legs,
            port_min: ports.0,
            port_max: ports.1,
        }
    }

    fn engine(workers: u32, ports: (u16, u16), max_legs: u32) -> MediaEngine {
        let cert = dtls::Certificate::generate().expect("cert");
        let ctx = DtlsContext::new(&cert, dtls::DtlsConfig::default()).expect("ctx");
        MediaEngine::new(layout(workers, ports, max_legs), ctx)
    }

    /// Carries DTLS records between `peer` and leg `p.a` through the punt and
    /// SendPacket path until both are quiet (bounded). Returns where the
    /// engine's records went, how many the peer refused, and the engine's
    /// other messages.
    #[allow(clippy::type_complexity)]
    fn pump(
        e: &mut MediaEngine,
        peer: &mut DtlsEndpoint,
        p: &Pair,
        from: SocketAddr,
        now: Instant,
    ) -> (Vec<Option<SocketAddr>>, usize, Vec<(Kind, Vec<u8>)>) {
        let (mut sent_to, mut peer_errors, mut others) = (Vec::new(), 0, Vec::new());
        for _ in 0..20 {
            while let Some(rec) = peer.poll_output() {
                let h = Punted {
                    leg_id: p.a,
                    from: abi::Addr::from_socket_addr(from),
                    local_port: p.port_a,
                    _pad: 0,
                };
                let mut body = bytemuck::bytes_of(&h).to_vec();
                body.extend_from_slice(&rec);
                e.handle_ring_message(now, Kind::Punted as u16, &body);
            }
            while let Some((_, kind, body)) = e.poll_message() {
                if kind == Kind::SendPacket {
                    let hl = std::mem::size_of::<abi::SendPacket>();
                    let h: abi::SendPacket = bytemuck::pod_read_unaligned(&body[..hl]);
                    sent_to.push(h.to.to_socket_addr());
                    if peer.handle_packet(now, &body[hl..]).is_err() {
                        peer_errors += 1;
                    }
                } else {
                    others.push((kind, body));
                }
            }
        }
        (sent_to, peer_errors, others)
    }

    #[test]
    fn pairs_stay_on_one_worker_and_resources_come_back() {
        let mut e = engine(2, (30000, 30015), 64);
        let lay = layout(2, (30000, 30015), 64);
        let total = e.free_port_pairs();
        assert_eq!(total, 8);
        let mut pairs = Vec::new();
        while let Ok(p) = e.open_pair() {
            assert_eq!(lay.worker_for_port(p.port_a), Some(p.worker));
            assert_eq!(lay.worker_for_port(p.port_b), Some(p.worker));
            assert_ne!(p.port_a, p.port_b);
            pairs.push(p);
        }
        assert_eq!(pairs.len(), 4, "8 pairs make 4 sessions");
        assert_eq!(e.counters().exhausted, 1);
        // Balanced: two sessions per worker.
        assert_eq!(pairs.iter().filter(|p| p.worker == 0).count(), 2);
        let now = Instant::now();
        e.install(now, pairs[0].a, &LegSetup::default())
            .expect("install");
        let (w, kind, body) = e.poll_message().expect("a rule");
        assert_eq!((w, kind), (pairs[0].worker, Kind::AddLeg));
        let rule: LegRule = bytemuck::pod_read_unaligned(&body);
        assert_eq!(rule.peer_leg_id, pairs[0].b);
        assert_eq!(rule.local_port, pairs[0].port_a);
        e.install(now, pairs[0].a, &LegSetup::default())
            .expect("update");
        assert_eq!(e.poll_message().map(|m| m.1), Some(Kind::UpdateLeg));
        for p in &pairs {
            e.close_pair(p);
        }
        // Only the installed leg is removed from the data plane.
        assert_eq!(e.poll_message().map(|m| m.1), Some(Kind::RemoveLeg));
        assert!(e.poll_message().is_none());
        assert_eq!(e.free_port_pairs(), total);
        assert_eq!(e.leg_count(), 0);
        // Freed ports go to the back: a new session gets ports that rested
        // longest, not the ones just freed.
        let mut e = engine(1, (30000, 30015), 64);
        let first = e.open_pair().expect("pair");
        e.close_pair(&first);
        let next = e.open_pair().expect("pair");
        assert!(![next.port_a, next.port_b].contains(&first.port_a));
        assert!(![next.port_a, next.port_b].contains(&first.port_b));
    }

    #[test]
    fn adopted_legs_keep_their_ports_and_ids() {
        let mut e = engine(1, (30000, 30007), 16);
        let mut r: LegRule = bytemuck::Zeroable::zeroed();
        r.leg_id = 41;
        r.counter_slot = 0;
        r.local_port = 30000;
        e.adopt(&[r]);
        let p = e.open_pair().expect("pair");
        assert!(p.a > 41 && p.b > 41);
        assert!(![p.port_a, p.port_b].contains(&30000));
        // The data plane times the orphan out: it is freed.
        let ev = LegEvent {
            leg_id: 41,
            addr: bytemuck::Zeroable::zeroed(),
            _pad: 0,
        };
        e.handle_ring_message(
            Instant::now(),
            Kind::TimedOut as u16,
            bytemuck::bytes_of(&ev),
        );
        assert_eq!(e.poll_event(), Some(MediaEvent::TimedOut(41)));
        e.release_orphan(41);
        assert_eq!(e.leg_count(), 2);
        assert!(
            e.poll_message().is_none(),
            "no RemoveLeg for a leg already gone"
        );
    }

    #[test]
    fn counter_slots_bound_sessions() {
        let mut e = engine(1, (30000, 30099), 3);
        assert!(e.open_pair().is_ok());
        assert_eq!(e.open_pair(), Err(MediaError::Exhausted));
    }

    #[test]
    fn dtls_leg_waits_for_keys_and_handshake_with_a_client_secures_it() {
        let mut e = engine(1, (30000, 30099), 16);
        let now = Instant::now();
        // The peer: a DTLS client with its own certificate.
        let peer_cert = dtls::Certificate::generate().expect("cert");
        let peer_ctx = DtlsContext::new(&peer_cert, dtls::DtlsConfig::default()).expect("ctx");
        let mut peer =
            DtlsEndpoint::new(&peer_ctx, Role::Client, &[e.fingerprint()], now).expect("client");
        let p = e.open_pair().expect("pair");
        let setup = LegSetup {
            rtcp_mux: true,
            ice: Some(("ufrag".into(), "passwordpasswordpassword".into())),
            dtls: Some(DtlsSetup {
                role: Role::Server,
                remote_fingerprints: vec![peer_cert.fingerprint(dtls::HashAlgorithm::Sha256)],
            }),
            ..LegSetup::default()
        };
        e.install(now, p.a, &setup).expect("install");
        let (_, _, body) = e.poll_message().expect("add");
        let rule: LegRule = bytemuck::pod_read_unaligned(&body);
        assert_ne!(rule.flags & flags::SRTP_PENDING, 0);
        assert_ne!(rule.flags & flags::ICE, 0);
        assert_eq!(rule.srtp_rx.suite, 0);
        let from: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        // Pump records both ways through the punt/SendPacket path.
        let (sent_to, peer_errors, others) = pump(&mut e, &mut peer, &p, from, now);
        assert!(!sent_to.is_empty());
        assert!(sent_to.iter().all(|t| *t == Some(from)), "{sent_to:?}");
        assert_eq!(peer_errors, 0);
        for (kind, body) in others {
            assert_eq!(kind, Kind::UpdateLeg);
            let rule: LegRule = bytemuck::pod_read_unaligned(&body);
            assert_eq!(rule.flags & flags::SRTP_PENDING, 0);
            assert_ne!(rule.srtp_rx.suite, 0);
            assert_eq!(rule.srtp_rx.suite, rule.srtp_tx.suite);
            assert_ne!(rule.srtp_rx.key, rule.srtp_tx.key);
        }
        assert_eq!(e.poll_event(), Some(MediaEvent::Secured(p.a)));
        let Some(dtls::Event::Connected { srtp }) = peer.poll_event() else {
            panic!("the peer connected");
        };
        assert_eq!(srtp.local_key().len(), 16);
        // The same setup again keeps the association (no new handshake).
        e.install(now, p.a, &setup).expect("re-install");
        let (_, _, body) = e.poll_message().expect("update");
        let rule: LegRule = bytemuck::pod_read_unaligned(&body);
        assert_eq!(rule.flags & flags::SRTP_PENDING, 0);
        assert_ne!(rule.srtp_rx.suite, 0);
    }

    #[test]
    fn wrong_fingerprint_fails_the_handshake_with_an_event() {
        let mut e = engine(1, (30000, 30099), 16);
        let now = Instant::now();
        let peer_cert = dtls::Certificate::generate().expect("cert");
        let other = dtls::Certificate::generate().expect("cert");
        let peer_ctx = DtlsContext::new(&peer_cert, dtls::DtlsConfig::default()).expect("ctx");
        let mut peer =
            DtlsEndpoint::new(&peer_ctx, Role::Client, &[e.fingerprint()], now).expect("client");
        let p = e.open_pair().expect("pair");
        let setup = LegSetup {
            dtls: Some(DtlsSetup {
                role: Role::Server,
                remote_fingerprints: vec![other.fingerprint(dtls::HashAlgorithm::Sha256)],
            }),
            ..LegSetup::default()
        };
        e.install(now, p.a, &setup).expect("install");
        let from: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let _ = pump(&mut e, &mut peer, &p, from, now);
        assert!(matches!(e.poll_event(), Some(MediaEvent::DtlsFailed(id, _)) if id == p.a));
        assert_eq!(e.counters().dtls_failed, 1);
    }
}
