//! The simulated browser of the `webrtc` scenario: leg B answers the
//! proxy's WebRTC-profile offer the way a browser does and brings the leg
//! up with ICE and DTLS-SRTP before media starts.
//!
//! - **SDP**: its own ICE credentials, one host candidate, the SHA-256
//!   fingerprint of its own certificate, `a=setup:active` (DTLS client) to
//!   an `actpass` or `passive` offer, `a=rtcp-mux`.
//! - **ICE** (RFC 8445): it checks the proxy's component-1 candidate every
//!   50 ms until a check is answered with a valid MESSAGE-INTEGRITY (the
//!   proxy's password). Toward an ICE-lite proxy (Strait) it is the
//!   controlling agent and nominates with USE-CANDIDATE; toward a full-ICE
//!   offerer (rtpengine) it is controlled, as the answerer is (§6.1.1), and
//!   answers the proxy's own checks (USERNAME `<our ufrag>:<its ufrag>`,
//!   integrity with our password). Role conflicts (487) are resolved by the
//!   tie-breakers (§7.3.1.1).
//! - **DTLS** (RFC 5763/5764): once a check succeeded, the handshake runs
//!   with Strait's sans-IO OpenSSL endpoint ([`strait::dtls`]), pinning the
//!   proxy's certificate to its SDP fingerprint; the exported SRTP keys
//!   protect what leg B sends and unprotect what it receives (rtcp-mux: one
//!   port).
//!
//! [`BrowserLeg`] is the sans-IO state machine (datagrams and time in,
//! datagrams out); [`connect`] drives it on a blocking socket during call
//! setup. After setup the generator thread keeps answering the proxy's
//! checks and sends a consent check every [`CONSENT_EVERY_PACKETS`] packets
//! ([`IceLeg`]).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use strait::dtls::{DtlsContext, DtlsEndpoint, Event, Fingerprint, Role, SrtpKeys};

use crate::sdp::ParsedMedia;
use crate::stun::{self, CheckVerdict, IceRole};

/// Interval between connectivity checks until one succeeds (RFC 8445 Ta).
pub const CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// During traffic, leg B sends a consent check (RFC 7675) every this many
/// of its media packets (2.5 s at 20 ms).
pub const CONSENT_EVERY_PACKETS: u64 = 125;
/// Checks sent before giving up on a candidate.
pub const MAX_CHECKS: u32 = 200;

/// The proxy's side of a WebRTC leg, as its SDP describes it.
#[derive(Debug, Clone)]
pub struct RemoteTransport {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
    /// The component-1 UDP candidate with the highest priority.
    pub candidate: SocketAddr,
    /// `a=fingerprint` values.
    pub fingerprints: Vec<Fingerprint>,
    /// `a=setup` value.
    pub setup: String,
    /// `a=ice-lite`.
    pub ice_lite: bool,
}

impl RemoteTransport {
    /// Reads the proxy's ICE and DTLS parameters; an error names what is
    /// missing or malformed.
    pub fn from_sdp(m: &ParsedMedia) -> Result<Self, String> {
        let ufrag = m.ice_ufrag.clone().ok_or("no a=ice-ufrag")?;
        let pwd = m.ice_pwd.clone().ok_or("no a=ice-pwd")?;
        if ufrag.len() < 4 || pwd.len() < 22 {
            return Err(format!(
                "ICE credentials too short (RFC 8839: ufrag >= 4, pwd >= 22 characters): {ufrag:?} {pwd:?}"
            ));
        }
        let candidate = m
            .candidates
            .iter()
            .filter(|c| c.component == 1)
            .max_by_key(|c| c.priority)
            .map(|c| c.addr)
            .ok_or("no component-1 UDP a=candidate")?;
        if m.fingerprints.is_empty() {
            return Err("no a=fingerprint".into());
        }
        let fingerprints = m
            .fingerprints
            .iter()
            .map(|f| Fingerprint::parse(f).map_err(|e| format!("a=fingerprint:{f}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let setup = m.setup.clone().ok_or("no a=setup")?;
        Ok(Self {
            ufrag,
            pwd,
            candidate,
            fingerprints,
            setup,
            ice_lite: m.ice_lite,
        })
    }

    /// Our DTLS role and `a=setup` value in answer to the proxy's: a browser
    /// answers `actpass` with `active` (it is the client).
    pub fn our_setup(&self) -> Result<(Role, &'static str), String> {
        match self.setup.as_str() {
            "actpass" | "passive" => Ok((Role::Client, "active")),
            "active" => Ok((Role::Server, "passive")),
            other => Err(format!("a=setup:{other} is not actpass, passive or active")),
        }
    }
}

/// Characters of ICE credentials (RFC 8839 ice-char).
const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Our ICE credentials and tie-breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIce {
    /// `a=ice-ufrag` (8 characters).
    pub ufrag: String,
    /// `a=ice-pwd` (24 characters).
    pub pwd: String,
    /// Tie-breaker for role conflicts.
    pub tiebreaker: u64,
}

impl LocalIce {
    /// Fresh random credentials.
    pub fn random() -> io::Result<Self> {
        let mut r = [0u8; 40];
        crate::scenario::random_bytes(&mut r)?;
        let text = |b: &[u8]| -> String {
            b.iter()
                .map(|&x| char::from(ICE_CHARS[usize::from(x & 63)]))
                .collect()
        };
        let mut t = [0u8; 8];
        t.copy_from_slice(&r[32..40]);
        Ok(Self {
            ufrag: text(&r[..8]),
            pwd: text(&r[8..32]),
            tiebreaker: u64::from_be_bytes(t),
        })
    }
}

/// The media-level attributes of leg B's answer (without `a=`).
pub fn answer_attrs(
    local: &LocalIce,
    fingerprint: &Fingerprint,
    setup: &str,
    addr: SocketAddr,
) -> Vec<String> {
    vec![
        format!("ice-ufrag:{}", local.ufrag),
        format!("ice-pwd:{}", local.pwd),
        format!("fingerprint:{fingerprint}"),
        format!("setup:{setup}"),
        "rtcp-mux".into(),
        format!(
            "candidate:1 1 UDP {} {} {} typ host",
            stun::HOST_PRIORITY,
            addr.ip(),
            addr.port()
        ),
    ]
}

/// What happened while a leg came up (for the run record and failures).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HandshakeStats {
    /// Connectivity checks we sent.
    pub checks_sent: u32,
    /// Valid answers to them.
    pub checks_succeeded: u32,
    /// The proxy's checks we answered (full-ICE proxies send them).
    pub peer_checks_answered: u32,
    /// The proxy's checks that failed validation (dropped).
    pub peer_checks_dropped: u32,
    /// Whether the proxy nominated (USE-CANDIDATE in its check).
    pub nominated_by_peer: bool,
    /// Role conflicts seen (487 received or sent).
    pub role_conflicts: u32,
    /// Our final ICE role: `controlling` or `controlled`.
    pub ice_role: String,
    /// DTLS datagrams sent.
    pub dtls_out: u32,
    /// DTLS datagrams received.
    pub dtls_in: u32,
    /// Other datagrams that arrived during setup (early media).
    pub other_in: u32,
    /// Milliseconds from start to the first successful check.
    pub ice_ms: Option<u64>,
    /// Milliseconds from start to the SRTP keys.
    pub dtls_ms: Option<u64>,
    /// The negotiated SRTP suite.
    pub srtp_suite: Option<String>,
}

/// How the leg came up, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Keys exported.
    Connected(SrtpKeys),
    /// ICE or DTLS failed.
    Failed(String),
}

/// Sans-IO ICE (full agent, one candidate pair) plus DTLS client or server
/// for one leg.
pub struct BrowserLeg {
    local: LocalIce,
    remote: RemoteTransport,
    role: IceRole,
    /// `<remote ufrag>:<local ufrag>`: USERNAME of our checks.
    username: String,
    started: Instant,
    next_check: Instant,
    tids: VecDeque<[u8; 12]>,
    tid_seq: u64,
    /// Where a check succeeded (DTLS goes there).
    peer: Option<SocketAddr>,
    dtls: DtlsEndpoint,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    outcome: Option<Outcome>,
    stats: HandshakeStats,
}

impl fmt::Debug for BrowserLeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserLeg")
            .field("local", &self.local.ufrag)
            .field("remote", &self.remote.ufrag)
            .field("candidate", &self.remote.candidate)
            .field("peer", &self.peer)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn role_name(r: IceRole) -> &'static str {
    match r {
        IceRole::Controlling(_) => "controlling",
        IceRole::Controlled(_) => "controlled",
    }
}

impl BrowserLeg {
    /// A leg with our credentials `local` toward `remote`, DTLS `role`,
    /// certificate from `ctx`.
    pub fn new(
        ctx: &DtlsContext,
        local: LocalIce,
        remote: RemoteTransport,
        role: Role,
        now: Instant,
    ) -> Result<Self, String> {
        // RFC 8445 §6.1.1: a full agent facing a lite one controls; between
        // two full agents the offerer (the proxy here) controls.
        let ice_role = if remote.ice_lite {
            IceRole::Controlling(local.tiebreaker)
        } else {
            IceRole::Controlled(local.tiebreaker)
        };
        let dtls = DtlsEndpoint::new(ctx, role, &remote.fingerprints, now)
            .map_err(|e| format!("DTLS endpoint: {e}"))?;
        let username = format!("{}:{}", remote.ufrag, local.ufrag);
        Ok(Self {
            local,
            remote,
            role: ice_role,
            username,
            started: now,
            next_check: now,
            tids: VecDeque::with_capacity(8),
            tid_seq: 0,
            peer: None,
            dtls,
            out: VecDeque::new(),
            outcome: None,
            stats: HandshakeStats {
                ice_role: role_name(ice_role).into(),
                ..HandshakeStats::default()
            },
        })
    }

    /// What happened so far.
    pub fn stats(&self) -> &HandshakeStats {
        &self.stats
    }

    /// The result, once there is one.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Instant {
        let dtls = self.dtls.poll_timeout();
        let check = (self.peer.is_none()).then_some(self.next_check);
        match (dtls, check) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.started + Duration::from_secs(3600),
        }
    }

    fn fail(&mut self, why: String) {
        if self.outcome.is_none() {
            self.outcome = Some(Outcome::Failed(why));
        }
    }

    fn next_tid(&mut self) -> [u8; 12] {
        self.tid_seq += 1;
        let mut t = [0u8; 12];
        t[..8].copy_from_slice(&self.tid_seq.to_be_bytes());
        t[8..].copy_from_slice(&(self.local.tiebreaker as u32).to_be_bytes());
        t
    }

    fn send_check(&mut self) {
        let tid = self.next_tid();
        let mut buf = [0u8; stun::MAX_WRITTEN];
        let nominate = matches!(self.role, IceRole::Controlling(_));
        let Some(n) = stun::write_check(
            &mut buf,
            &tid,
            self.username.as_bytes(),
            self.remote.pwd.as_bytes(),
            stun::PRFLX_PRIORITY,
            self.role,
            nominate,
        ) else {
            self.fail("ICE username too long for a check".into());
            return;
        };
        if self.tids.len() == 8 {
            self.tids.pop_front();
        }
        self.tids.push_back(tid);
        self.stats.checks_sent += 1;
        self.out
            .push_back((self.remote.candidate, buf[..n].to_vec()));
    }

    /// Runs the check timer and the DTLS retransmission timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        if self.peer.is_none() && now >= self.next_check {
            if self.stats.checks_sent >= MAX_CHECKS {
                self.fail(format!(
                    "no valid answer to {} connectivity checks sent to {}",
                    self.stats.checks_sent, self.remote.candidate
                ));
                return;
            }
            self.send_check();
            self.next_check = now + CHECK_INTERVAL;
        }
        self.dtls.handle_timeout(now);
        self.pump_dtls(now);
    }

    /// Moves DTLS output (once a pair works) and events.
    fn pump_dtls(&mut self, now: Instant) {
        if let Some(peer) = self.peer {
            while let Some(d) = self.dtls.poll_output() {
                self.stats.dtls_out += 1;
                self.out.push_back((peer, d));
            }
        }
        while let Some(ev) = self.dtls.poll_event() {
            match ev {
                Event::Connected { srtp } => {
                    self.stats.dtls_ms = Some(ms_since(self.started, now));
                    self.stats.srtp_suite = Some(srtp.suite().name().to_string());
                    if self.outcome.is_none() {
                        self.outcome = Some(Outcome::Connected(srtp));
                    }
                }
                Event::Failed(reason) => {
                    let detail = self.dtls.error_detail().unwrap_or("").to_string();
                    self.fail(format!("DTLS: {reason} {detail}"));
                }
                Event::Closed => self.fail("DTLS closed by the proxy".into()),
                _ => {}
            }
        }
    }

    /// Feeds one datagram that arrived on the leg's socket from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        match data.first() {
            Some(0..=3) => self.handle_stun(now, from, data),
            Some(20..=63) => {
                self.stats.dtls_in += 1;
                // Refused datagrams leave the association alone; nothing to do.
                let _ = self.dtls.handle_packet(now, data);
                self.pump_dtls(now);
            }
            _ => self.stats.other_in += 1,
        }
    }

    fn handle_stun(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Ok(p) = stun::parse(data) else {
            self.stats.other_in += 1;
            return;
        };
        match p.typ {
            stun::BINDING_REQUEST => {
                let verdict = stun::judge_check(
                    data,
                    &p,
                    self.local.ufrag.as_bytes(),
                    self.remote.ufrag.as_bytes(),
                    self.local.pwd.as_bytes(),
                    self.role,
                );
                let mut buf = [0u8; stun::MAX_WRITTEN];
                let reply = match verdict {
                    CheckVerdict::Drop => {
                        self.stats.peer_checks_dropped += 1;
                        None
                    }
                    CheckVerdict::RoleConflict => {
                        self.stats.role_conflicts += 1;
                        stun::write_error(
                            &mut buf,
                            &p.tid,
                            stun::ERROR_ROLE_CONFLICT,
                            self.local.pwd.as_bytes(),
                        )
                    }
                    CheckVerdict::SwitchAndAnswer(r) => {
                        self.stats.role_conflicts += 1;
                        self.role = r;
                        self.stats.ice_role = role_name(r).into();
                        stun::write_success(&mut buf, &p.tid, from, self.local.pwd.as_bytes())
                    }
                    CheckVerdict::Answer => {
                        stun::write_success(&mut buf, &p.tid, from, self.local.pwd.as_bytes())
                    }
                };
                if let Some(n) = reply {
                    if !matches!(verdict, CheckVerdict::RoleConflict) {
                        self.stats.peer_checks_answered += 1;
                        if p.use_candidate {
                            self.stats.nominated_by_peer = true;
                        }
                    }
                    self.out.push_back((from, buf[..n].to_vec()));
                }
            }
            stun::BINDING_SUCCESS | stun::BINDING_ERROR => {
                if !self.tids.contains(&p.tid)
                    || !stun::integrity_ok(data, &p, self.remote.pwd.as_bytes())
                {
                    self.stats.other_in += 1;
                    return;
                }
                if p.typ == stun::BINDING_ERROR {
                    if p.error_code == Some(stun::ERROR_ROLE_CONFLICT) {
                        // RFC 8445 §7.2.5.1: switch roles and check again.
                        self.stats.role_conflicts += 1;
                        self.role = match self.role {
                            IceRole::Controlling(t) => IceRole::Controlled(t),
                            IceRole::Controlled(t) => IceRole::Controlling(t),
                        };
                        self.stats.ice_role = role_name(self.role).into();
                        self.next_check = now;
                    } else {
                        self.fail(format!(
                            "connectivity check answered with error {:?}",
                            p.error_code
                        ));
                    }
                    return;
                }
                self.stats.checks_succeeded += 1;
                if self.peer.is_none() {
                    self.stats.ice_ms = Some(ms_since(self.started, now));
                    self.peer = Some(from);
                    self.pump_dtls(now);
                }
            }
            _ => self.stats.other_in += 1,
        }
    }

    /// What the generator thread needs to keep the leg alive during traffic.
    pub fn ice_leg(&self) -> IceLeg {
        IceLeg {
            local_ufrag: self.local.ufrag.clone().into_bytes(),
            local_pwd: self.local.pwd.clone().into_bytes(),
            remote_ufrag: self.remote.ufrag.clone().into_bytes(),
            remote_pwd: self.remote.pwd.clone().into_bytes(),
            username: self.username.clone().into_bytes(),
            role: self.role,
            peer: self.peer.unwrap_or(self.remote.candidate),
            tid_seq: self.tid_seq,
        }
    }
}

fn ms_since(t0: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(t0).as_millis() as u64
}

/// Drives `leg` on the blocking `socket` until the SRTP keys are there, the
/// leg failed, or `within` passed.
pub fn connect(
    socket: &UdpSocket,
    leg: &mut BrowserLeg,
    within: Duration,
) -> Result<SrtpKeys, String> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 4096];
    // Bounded: every pass either waits for a datagram or a timer, and the
    // deadline ends it.
    loop {
        let now = Instant::now();
        leg.handle_timeout(now);
        while let Some((to, d)) = leg.poll_transmit() {
            socket
                .send_to(&d, to)
                .map_err(|e| format!("send to {to}: {e}"))?;
        }
        match leg.outcome() {
            Some(Outcome::Connected(keys)) => return Ok(keys.clone()),
            Some(Outcome::Failed(why)) => return Err(format!("{why} ({:?})", leg.stats())),
            None => {}
        }
        if now >= deadline {
            return Err(format!(
                "ICE/DTLS not done within {within:?} ({:?})",
                leg.stats()
            ));
        }
        let wait = leg
            .poll_timeout()
            .min(deadline)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => leg.handle_datagram(Instant::now(), from, &buf[..n]),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

/// A WebRTC leg's ICE state during traffic: answers the proxy's checks and
/// sends consent checks, allocation-free.
#[derive(Debug, Clone)]
pub struct IceLeg {
    local_ufrag: Vec<u8>,
    local_pwd: Vec<u8>,
    remote_ufrag: Vec<u8>,
    remote_pwd: Vec<u8>,
    username: Vec<u8>,
    role: IceRole,
    /// Where consent checks go.
    pub peer: SocketAddr,
    tid_seq: u64,
}

impl IceLeg {
    /// Answers a STUN request `data` from `from` into `out`: the length of
    /// the answer to send back, if any. Answers to our consent checks and
    /// anything invalid yield `None`.
    pub fn answer(&mut self, data: &[u8], from: SocketAddr, out: &mut [u8]) -> Option<usize> {
        let p = stun::parse(data).ok()?;
        match stun::judge_check(
            data,
            &p,
            &self.local_ufrag,
            &self.remote_ufrag,
            &self.local_pwd,
            self.role,
        ) {
            CheckVerdict::Drop => None,
            CheckVerdict::RoleConflict => {
                stun::write_error(out, &p.tid, stun::ERROR_ROLE_CONFLICT, &self.local_pwd)
            }
            CheckVerdict::SwitchAndAnswer(r) => {
                self.role = r;
                stun::write_success(out, &p.tid, from, &self.local_pwd)
            }
            CheckVerdict::Answer => stun::write_success(out, &p.tid, from, &self.local_pwd),
        }
    }

    /// Writes a consent check (RFC 7675) into `out`; its length.
    pub fn consent_check(&mut self, out: &mut [u8]) -> Option<usize> {
        self.tid_seq += 1;
        let mut tid = [0u8; 12];
        tid[..8].copy_from_slice(&self.tid_seq.to_be_bytes());
        tid[8..].copy_from_slice(&[0x63, 0x6f, 0x6e, 0x73]);
        let nominate = matches!(self.role, IceRole::Controlling(_));
        stun::write_check(
            out,
            &tid,
            &self.username,
            &self.remote_pwd,
            stun::PRFLX_PRIORITY,
            self.role,
            nominate,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp;
    use strait::dtls::{Certificate, DtlsConfig};

    /// An ICE-lite, DTLS-server proxy made of Strait's own pieces (its data
    /// plane's STUN responder and its DTLS endpoint), in memory.
    struct LiteProxy {
        ufrag: String,
        pwd: String,
        addr: SocketAddr,
        dtls: DtlsEndpoint,
        keys: Option<SrtpKeys>,
        checks: u32,
    }

    impl LiteProxy {
        fn handle(&mut self, now: Instant, from: SocketAddr, d: &[u8]) -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            if strait_dataplane::stun::is_stun(d) {
                if let Ok(req) = strait_dataplane::stun::check_binding_request(
                    d,
                    self.ufrag.as_bytes(),
                    self.pwd.as_bytes(),
                ) {
                    assert!(req.use_candidate, "a browser nominates toward ICE-lite");
                    assert_eq!(req.controlling, Some(true));
                    self.checks += 1;
                    let mut b = [0u8; 128];
                    let n = strait_dataplane::stun::write_binding_success(
                        &mut b,
                        &req.transaction_id,
                        from,
                        self.pwd.as_bytes(),
                    )
                    .unwrap();
                    out.push(b[..n].to_vec());
                }
            } else {
                let _ = self.dtls.handle_packet(now, d);
            }
            while let Some(d) = self.dtls.poll_output() {
                out.push(d);
            }
            while let Some(ev) = self.dtls.poll_event() {
                if let Event::Connected { srtp } = ev {
                    self.keys = Some(srtp);
                }
            }
            out
        }
    }

    fn lite_sdp(ufrag: &str, pwd: &str, fp: &Fingerprint, addr: SocketAddr) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\na=ice-lite\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\na=ice-ufrag:{ufrag}\r\n\
             a=ice-pwd:{pwd}\r\na=fingerprint:{fp}\r\na=setup:actpass\r\na=rtcp-mux\r\n\
             a=candidate:1 1 UDP 2130706431 {ip} {port} typ host\r\n",
            port = addr.port(),
            ip = addr.ip()
        )
    }

    #[test]
    fn comes_up_against_an_ice_lite_dtls_server() {
        let now = Instant::now();
        let proxy_cert = Certificate::generate().unwrap();
        let proxy_ctx = DtlsContext::new(&proxy_cert, DtlsConfig::default()).unwrap();
        let our_ctx =
            DtlsContext::new(&Certificate::generate().unwrap(), DtlsConfig::default()).unwrap();
        let proxy_addr: SocketAddr = "127.0.0.1:30000".parse().unwrap();
        let our_addr: SocketAddr = "127.0.0.1:10000".parse().unwrap();
        let sdp_text = lite_sdp(
            "LiteUfrg",
            "lite-password-0123456789",
            &proxy_ctx.fingerprint(),
            proxy_addr,
        );
        let remote = RemoteTransport::from_sdp(&sdp::parse(&sdp_text).unwrap()).unwrap();
        assert!(remote.ice_lite);
        assert_eq!(remote.candidate, proxy_addr);
        let (role, setup) = remote.our_setup().unwrap();
        assert_eq!((role, setup), (Role::Client, "active"));
        let local = LocalIce::random().unwrap();
        assert_eq!((local.ufrag.len(), local.pwd.len()), (8, 24));
        let attrs = answer_attrs(&local, &our_ctx.fingerprint(), setup, our_addr);
        assert!(attrs.contains(&"setup:active".to_string()));
        assert!(attrs.contains(&"rtcp-mux".to_string()));
        let mut proxy = LiteProxy {
            ufrag: "LiteUfrg".into(),
            pwd: "lite-password-0123456789".into(),
            addr: proxy_addr,
            dtls: DtlsEndpoint::new(&proxy_ctx, Role::Server, &[our_ctx.fingerprint()], now)
                .unwrap(),
            keys: None,
            checks: 0,
        };
        let mut leg = BrowserLeg::new(&our_ctx, local, remote, role, now).unwrap();
        // The first check is lost: the leg must retry after CHECK_INTERVAL.
        leg.handle_timeout(now);
        assert!(leg.poll_transmit().is_some());
        assert!(leg.poll_transmit().is_none());
        let mut t = now;
        for _ in 0..50 {
            t += Duration::from_millis(10);
            leg.handle_timeout(t);
            while let Some((to, d)) = leg.poll_transmit() {
                assert_eq!(to, proxy.addr);
                for back in proxy.handle(t, our_addr, &d) {
                    leg.handle_datagram(t, proxy_addr, &back);
                }
            }
            if leg.outcome().is_some() {
                break;
            }
        }
        let Some(Outcome::Connected(keys)) = leg.outcome().cloned() else {
            panic!("{leg:?}");
        };
        let proxy_keys = proxy.keys.clone().expect("proxy connected");
        assert_eq!(keys.local_master(), proxy_keys.remote_master());
        assert_eq!(keys.remote_master(), proxy_keys.local_master());
        let s = leg.stats();
        assert_eq!(s.checks_sent, 2);
        assert_eq!(proxy.checks, 1);
        assert_eq!(s.ice_role, "controlling");
        assert!(s.ice_ms.unwrap() >= 50 && s.dtls_ms.is_some());
        // During traffic: consent checks the proxy accepts.
        let mut ice = leg.ice_leg();
        let mut b = [0u8; stun::MAX_WRITTEN];
        let n = ice.consent_check(&mut b).unwrap();
        assert_eq!(proxy.handle(t, our_addr, &b[..n]).len(), 1);
        assert_eq!(proxy.checks, 2);
    }

    #[test]
    fn controlled_toward_a_full_offerer_and_answers_its_checks() {
        let now = Instant::now();
        let proxy_ctx =
            DtlsContext::new(&Certificate::generate().unwrap(), DtlsConfig::default()).unwrap();
        let our_ctx =
            DtlsContext::new(&Certificate::generate().unwrap(), DtlsConfig::default()).unwrap();
        let proxy_addr: SocketAddr = "127.0.0.1:30000".parse().unwrap();
        let full = lite_sdp(
            "FullUfrg",
            "full-password-0123456789",
            &proxy_ctx.fingerprint(),
            proxy_addr,
        )
        .replace("a=ice-lite\r\n", "");
        let remote = RemoteTransport::from_sdp(&sdp::parse(&full).unwrap()).unwrap();
        let local = LocalIce {
            ufrag: "mine".into(),
            pwd: "my-password-0123456789ab".into(),
            tiebreaker: 5,
        };
        let mut leg = BrowserLeg::new(&our_ctx, local, remote, Role::Client, now).unwrap();
        leg.handle_timeout(now);
        let (_, check) = leg.poll_transmit().unwrap();
        let p = stun::parse(&check).unwrap();
        assert_eq!(p.username(&check), b"FullUfrg:mine");
        assert_eq!(p.role, Some(IceRole::Controlled(5)));
        assert!(!p.use_candidate);
        assert!(stun::integrity_ok(&check, &p, b"full-password-0123456789"));
        // The proxy's own (controlling, nominating) check is answered.
        let mut b = [0u8; stun::MAX_WRITTEN];
        let n = stun::write_check(
            &mut b,
            &[1; 12],
            b"mine:FullUfrg",
            b"my-password-0123456789ab",
            1,
            IceRole::Controlling(9),
            true,
        )
        .unwrap();
        leg.handle_datagram(now, proxy_addr, &b[..n]);
        let (to, resp) = leg.poll_transmit().unwrap();
        assert_eq!(to, proxy_addr);
        let r = stun::parse(&resp).unwrap();
        assert_eq!((r.typ, r.mapped), (stun::BINDING_SUCCESS, Some(proxy_addr)));
        assert!(stun::integrity_ok(&resp, &r, b"my-password-0123456789ab"));
        assert!(leg.stats().nominated_by_peer);
        // A check with the wrong password is dropped, not answered.
        let n = stun::write_check(
            &mut b,
            &[2; 12],
            b"mine:FullUfrg",
            b"wrong-password",
            1,
            IceRole::Controlling(9),
            true,
        )
        .unwrap();
        leg.handle_datagram(now, proxy_addr, &b[..n]);
        assert!(leg.poll_transmit().is_none());
        assert_eq!(leg.stats().peer_checks_dropped, 1);
        // The same through the traffic-time responder.
        let mut ice = leg.ice_leg();
        let mut out = [0u8; stun::MAX_WRITTEN];
        assert!(ice.answer(&b[..n], proxy_addr, &mut out).is_none());
        let n = stun::write_check(
            &mut b,
            &[3; 12],
            b"mine:FullUfrg",
            b"my-password-0123456789ab",
            1,
            IceRole::Controlling(9),
            false,
        )
        .unwrap();
        let m = ice.answer(&b[..n], proxy_addr, &mut out).unwrap();
        assert_eq!(stun::parse(&out[..m]).unwrap().typ, stun::BINDING_SUCCESS);
        // A success answer with a bad integrity does not count.
        let m = stun::write_success(&mut out, &p.tid, proxy_addr, b"not-the-proxy").unwrap();
        leg.handle_datagram(now, proxy_addr, &out[..m]);
        assert_eq!(leg.stats().checks_succeeded, 0);
        let m =
            stun::write_success(&mut out, &p.tid, proxy_addr, b"full-password-0123456789").unwrap();
        leg.handle_datagram(now, proxy_addr, &out[..m]);
        assert_eq!(leg.stats().checks_succeeded, 1);
        // DTLS ClientHello goes out once the pair works.
        let (to, hello) = leg.poll_transmit().unwrap();
        assert_eq!((to, hello[0]), (proxy_addr, 22));
    }

    #[test]
    fn missing_transport_attributes_are_named() {
        let base = "v=0\r\nm=audio 1 UDP/TLS/RTP/SAVPF 0\r\n";
        let e = RemoteTransport::from_sdp(&sdp::parse(base).unwrap()).unwrap_err();
        assert!(e.contains("ice-ufrag"), "{e}");
        let no_fp = format!(
            "{base}a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
             a=candidate:1 1 UDP 1 127.0.0.1 5 typ host\r\n"
        );
        let e = RemoteTransport::from_sdp(&sdp::parse(&no_fp).unwrap()).unwrap_err();
        assert!(e.contains("fingerprint"), "{e}");
    }
}
