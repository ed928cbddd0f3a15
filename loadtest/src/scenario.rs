//! Call setup through ng for each scenario: offer from leg A, answer from
//! leg B, both on loopback; the rewritten SDPs tell where the target
//! receives each leg's media (and, for SRTP, the target's keys).
//!
//! | scenario | leg A | leg B | ng extras |
//! |---|---|---|---|
//! | `plain` | RTP/AVP PCMU | RTP/AVP PCMU | — |
//! | `srtp` | RTP/SAVP PCMU, SDES `AES_CM_128_HMAC_SHA1_80` | RTP/AVP PCMU | offer: `transport-protocol: RTP/AVP` |
//! | `transcode` | RTP/AVP PCMU | RTP/AVP Opus | offer: `codec: {mask: [PCMU], transcode: [opus]}` |
//! | `webrtc` | RTP/AVP PCMU | UDP/TLS/RTP/SAVPF PCMU, ICE, DTLS-SRTP, rtcp-mux (a simulated browser, [`crate::webrtc`]) | offer: `transport-protocol: UDP/TLS/RTP/SAVPF`, `ICE: force`, `rtcp-mux: [offer]`, `SDES: [off]`; answer: `transport-protocol: RTP/AVP`, `ICE: remove` |
//!
//! The first three also send `ICE: remove` and `DTLS: off` in both
//! requests; all send `replace: [origin, session-connection]`.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};
use strait::dtls::{Certificate, DtlsConfig, DtlsContext};
use strait_srtp::{Config as SrtpConfig, SrtpContext, Suite};

use crate::bencode::Value;
use crate::generator::{LegCodec, LegSpec, StreamSpec};
use crate::ng::{NgClient, NgError};
use crate::sdp::{self, MediaDesc};
use crate::webrtc::{self, BrowserLeg, HandshakeStats, LocalIce, RemoteTransport};

/// The media scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Plain RTP relay, PCMU both sides.
    Plain,
    /// SRTP (SDES) on leg A, RTP on leg B.
    Srtp,
    /// PCMU on leg A, Opus on leg B.
    Transcode,
    /// Plain RTP on leg A, a simulated browser (ICE, DTLS-SRTP, rtcp-mux) on leg B.
    Webrtc,
}

impl Scenario {
    /// The scenario's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Plain => "plain",
            Scenario::Srtp => "srtp",
            Scenario::Transcode => "transcode",
            Scenario::Webrtc => "webrtc",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "plain" => Some(Scenario::Plain),
            "srtp" => Some(Scenario::Srtp),
            "transcode" => Some(Scenario::Transcode),
            "webrtc" => Some(Scenario::Webrtc),
            _ => None,
        }
    }
}

/// Why a call could not be set up.
#[derive(Debug)]
pub enum SetupError {
    /// ng transaction failed.
    Ng(NgError),
    /// Local socket problem (no free port, ...).
    Io(io::Error),
    /// The target's SDP was missing something the scenario needs.
    BadSdp(String),
    /// The target does not transcode to Opus (no Opus in its offer to leg B).
    NoTranscoding(String),
    /// The WebRTC leg did not come up (ICE or DTLS).
    Handshake(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Ng(e) => write!(f, "{e}"),
            SetupError::Io(e) => write!(f, "local socket: {e}"),
            SetupError::BadSdp(s) => write!(f, "target SDP: {s}"),
            SetupError::NoTranscoding(s) => write!(
                f,
                "the target does not transcode PCMU to Opus (no opus in its offer to leg B): {s}"
            ),
            SetupError::Handshake(s) => write!(f, "WebRTC leg B: {s}"),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<NgError> for SetupError {
    fn from(e: NgError) -> Self {
        SetupError::Ng(e)
    }
}

impl From<io::Error> for SetupError {
    fn from(e: io::Error) -> Self {
        SetupError::Io(e)
    }
}

/// Hands out local UDP sockets on even ports of a range (the odd one above
/// is left for RTCP), skipping ports that are taken.
#[derive(Debug)]
pub struct PortAllocator {
    ip: IpAddr,
    next: u32,
    max: u32,
}

impl PortAllocator {
    /// Ports `min..=max` on `ip`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        Self {
            ip,
            next: u32::from(min + (min & 1)),
            max: u32::from(max),
        }
    }

    /// The next free even port's socket.
    pub fn bind(&mut self) -> io::Result<UdpSocket> {
        while self.next <= self.max {
            let port = self.next as u16;
            self.next += 2;
            if let Ok(s) = UdpSocket::bind((self.ip, port)) {
                return Ok(s);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "generator port range exhausted",
        ))
    }
}

/// Fills `buf` from the kernel's random source.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    // Bounded: getrandom returns at least 1 byte per call or an error.
    for _ in 0..64 {
        if filled == buf.len() {
            return Ok(());
        }
        let rest = &mut buf[filled..];
        // SAFETY: writes at most rest.len() bytes into the valid slice rest.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            return Err(io::Error::last_os_error());
        }
        filled += n as usize;
    }
    if filled == buf.len() {
        Ok(())
    } else {
        Err(io::Error::other("getrandom returned too little"))
    }
}

fn srtp_ctx(suite: Suite, key_and_salt: &[u8]) -> Result<SrtpContext, SetupError> {
    let mut cfg = SrtpConfig::default();
    cfg.max_ssrcs = 2;
    SrtpContext::from_master(suite, key_and_salt, cfg)
        .map_err(|e| SetupError::BadSdp(format!("SRTP key: {e}")))
}

/// What every call of a run shares: the scenario and, for `webrtc`, the
/// simulated browser's certificate.
#[derive(Debug)]
pub struct SetupContext {
    /// The scenario.
    pub scenario: Scenario,
    /// DTLS context with a fresh self-signed certificate (webrtc only).
    pub dtls: Option<DtlsContext>,
    /// Longest a WebRTC leg may take to come up (ICE + DTLS).
    pub handshake_timeout: Duration,
}

impl SetupContext {
    /// The context of `scenario` (generates a certificate for `webrtc`).
    pub fn new(scenario: Scenario) -> Result<Self, String> {
        let dtls = if scenario == Scenario::Webrtc {
            let cert = Certificate::generate().map_err(|e| format!("certificate: {e}"))?;
            Some(
                DtlsContext::new(&cert, DtlsConfig::default())
                    .map_err(|e| format!("DTLS context: {e}"))?,
            )
        } else {
            None
        };
        Ok(Self {
            scenario,
            dtls,
            handshake_timeout: Duration::from_secs(5),
        })
    }
}

/// The ng exchange of one call (the run records the first call's): the
/// requests as sent and the SDPs the target returned, for checking and for
/// failure reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallTrace {
    /// The `offer` request (SDP included).
    pub offer_request: serde_json::Value,
    /// The SDP of the target's offer reply (what leg B gets).
    pub offer_reply_sdp: String,
    /// The `answer` request.
    pub answer_request: serde_json::Value,
    /// The SDP of the target's answer reply (what leg A gets).
    pub answer_reply_sdp: String,
    /// How the WebRTC leg came up (webrtc only).
    pub handshake: Option<HandshakeStats>,
}

/// A call that was set up: its ng call-id and what the generator drives.
#[derive(Debug)]
pub struct Call {
    /// ng call-id (for `delete`).
    pub call_id: String,
    /// The traffic spec.
    pub spec: StreamSpec,
}

fn base(command: &str, call_id: &str, from_tag: &str, sdp: String) -> Vec<(&'static str, Value)> {
    vec![
        ("command", Value::str(command)),
        ("call-id", Value::str(call_id)),
        ("from-tag", Value::str(from_tag)),
        ("sdp", Value::Bytes(sdp.into_bytes())),
        (
            "replace",
            Value::str_list(&["origin", "session-connection"]),
        ),
    ]
}

fn no_ice_no_dtls(req: &mut Vec<(&'static str, Value)>) {
    req.push(("ICE", Value::str("remove")));
    req.push(("DTLS", Value::str("off")));
}

fn relay_addr(m: &sdp::ParsedMedia, fallback: IpAddr) -> SocketAddr {
    SocketAddr::new(m.addr.unwrap_or(fallback), m.port)
}

fn bad(msg: String, sdp_text: &str) -> SetupError {
    SetupError::BadSdp(format!("{msg}\n--- SDP:\n{sdp_text}"))
}

/// Sets up call `id` through `ng`, with local sockets from `ports`;
/// `run_tag` makes call-ids unique per run. With `trace`, the exchange is
/// recorded there as it goes (also when it fails half-way).
pub fn setup_call(
    ng: &mut NgClient,
    ctx: &SetupContext,
    id: u32,
    ports: &mut PortAllocator,
    run_tag: &str,
    mut trace: Option<&mut CallTrace>,
) -> Result<Call, SetupError> {
    let scenario = ctx.scenario;
    let a_sock = ports.bind()?;
    let b_sock = ports.bind()?;
    let a_addr = a_sock.local_addr()?;
    let b_addr = b_sock.local_addr()?;
    let call_id = format!("{run_tag}-{id}");
    let from_tag = format!("{run_tag}-a{id}");
    let to_tag = format!("{run_tag}-b{id}");
    let pcmu = vec![(0u8, "PCMU/8000".to_string())];
    let mut a_key = [0u8; 30];
    let mut offer_desc = MediaDesc {
        addr: a_addr.ip(),
        port: a_addr.port(),
        proto: "RTP/AVP",
        formats: pcmu.clone(),
        fmtp: Vec::new(),
        crypto: None,
        attrs: Vec::new(),
        session_id: u64::from(id) + 1,
    };
    let mut offer_flags = Vec::new();
    match scenario {
        Scenario::Plain => no_ice_no_dtls(&mut offer_flags),
        Scenario::Srtp => {
            no_ice_no_dtls(&mut offer_flags);
            random_bytes(&mut a_key)?;
            offer_desc.proto = "RTP/SAVP";
            offer_desc.crypto = Some(format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{}",
                base64::engine::general_purpose::STANDARD.encode(a_key)
            ));
            offer_flags.push(("transport-protocol", Value::str("RTP/AVP")));
        }
        Scenario::Transcode => {
            no_ice_no_dtls(&mut offer_flags);
            offer_flags.push((
                "codec",
                Value::dict([
                    ("mask", Value::str_list(&["PCMU"])),
                    ("transcode", Value::str_list(&["opus"])),
                ]),
            ));
        }
        Scenario::Webrtc => {
            // What Kamailio's rtpengine module sends for
            // rtpengine_offer("UDP/TLS/RTP/SAVPF ICE=force rtcp-mux-offer SDES-off ...").
            offer_flags.push(("transport-protocol", Value::str("UDP/TLS/RTP/SAVPF")));
            offer_flags.push(("ICE", Value::str("force")));
            offer_flags.push(("rtcp-mux", Value::str_list(&["offer"])));
            offer_flags.push(("SDES", Value::str_list(&["off"])));
        }
    }
    let mut offer = base("offer", &call_id, &from_tag, offer_desc.render());
    offer.extend(offer_flags);
    let offer = Value::dict(offer);
    if let Some(t) = trace.as_deref_mut() {
        t.offer_request = offer.to_json();
    }
    let reply = ng.request(&offer)?;
    let to_b_text = reply.text("sdp").unwrap_or_default();
    if let Some(t) = trace.as_deref_mut() {
        t.offer_reply_sdp = to_b_text.clone();
    }
    let to_b = sdp::parse(&to_b_text)
        .ok_or_else(|| bad("offer reply without an audio SDP".into(), &to_b_text))?;

    let mut answer_desc = MediaDesc {
        addr: b_addr.ip(),
        port: b_addr.port(),
        proto: "RTP/AVP",
        formats: pcmu.clone(),
        fmtp: Vec::new(),
        crypto: None,
        attrs: Vec::new(),
        session_id: u64::from(id) + 1_000_000,
    };
    let mut answer_flags = Vec::new();
    let mut b_codec = LegCodec::Pcmu;
    let mut browser = None;
    if scenario != Scenario::Transcode && to_b.payload_type_of("PCMU") != Some(0) {
        return Err(bad(
            format!("no PCMU/0 in the offer to leg B: {:?}", to_b.rtpmaps),
            &to_b_text,
        ));
    }
    match scenario {
        Scenario::Plain | Scenario::Srtp => {
            no_ice_no_dtls(&mut answer_flags);
            if to_b.proto != "RTP/AVP" {
                return Err(bad(
                    format!("offer to leg B uses {} instead of RTP/AVP", to_b.proto),
                    &to_b_text,
                ));
            }
        }
        Scenario::Transcode => {
            no_ice_no_dtls(&mut answer_flags);
            let Some(pt) = to_b.payload_type_of("opus") else {
                return Err(SetupError::NoTranscoding(format!(
                    "payload types offered: {:?}",
                    to_b.rtpmaps
                )));
            };
            answer_desc.formats = vec![(pt, "opus/48000/2".into())];
            answer_desc.fmtp = vec![(pt, "minptime=10;useinbandfec=1".into())];
            b_codec = LegCodec::Opus { pt };
        }
        Scenario::Webrtc => {
            if to_b.proto != "UDP/TLS/RTP/SAVPF" {
                return Err(bad(
                    format!(
                        "offer to leg B uses {} instead of UDP/TLS/RTP/SAVPF",
                        to_b.proto
                    ),
                    &to_b_text,
                ));
            }
            if !to_b.rtcp_mux {
                return Err(bad("offer to leg B without a=rtcp-mux".into(), &to_b_text));
            }
            if !to_b.cryptos.is_empty() {
                return Err(bad(
                    "offer to leg B carries a=crypto despite SDES: [off]".into(),
                    &to_b_text,
                ));
            }
            let remote = RemoteTransport::from_sdp(&to_b).map_err(|e| bad(e, &to_b_text))?;
            let (role, setup) = remote.our_setup().map_err(|e| bad(e, &to_b_text))?;
            let Some(dtls) = ctx.dtls.as_ref() else {
                return Err(SetupError::Handshake("no DTLS context".into()));
            };
            let local = LocalIce::random()?;
            answer_desc.proto = "UDP/TLS/RTP/SAVPF";
            answer_desc.attrs = webrtc::answer_attrs(&local, &dtls.fingerprint(), setup, b_addr);
            let leg = BrowserLeg::new(dtls, local, remote, role, Instant::now())
                .map_err(SetupError::Handshake)?;
            browser = Some(leg);
            // Kamailio: rtpengine_answer("RTP/AVP ICE=remove ...") toward the legacy side.
            answer_flags.push(("transport-protocol", Value::str("RTP/AVP")));
            answer_flags.push(("ICE", Value::str("remove")));
        }
    }
    let mut answer = base("answer", &call_id, &from_tag, answer_desc.render());
    answer.push(("to-tag", Value::str(&to_tag)));
    answer.extend(answer_flags);
    let answer = Value::dict(answer);
    if let Some(t) = trace.as_deref_mut() {
        t.answer_request = answer.to_json();
    }
    let reply = ng.request(&answer)?;
    let to_a_text = reply.text("sdp").unwrap_or_default();
    if let Some(t) = trace.as_deref_mut() {
        t.answer_reply_sdp = to_a_text.clone();
    }
    let to_a = sdp::parse(&to_a_text)
        .ok_or_else(|| bad("answer reply without an audio SDP".into(), &to_a_text))?;
    if to_a.payload_type_of("PCMU") != Some(0) {
        return Err(bad(
            format!("no PCMU/0 in the answer to leg A: {:?}", to_a.rtpmaps),
            &to_a_text,
        ));
    }
    let want_a = if scenario == Scenario::Srtp {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    if to_a.proto != want_a {
        return Err(bad(
            format!("answer to leg A uses {} instead of {want_a}", to_a.proto),
            &to_a_text,
        ));
    }
    if scenario == Scenario::Webrtc
        && (to_a.ice_ufrag.is_some()
            || !to_a.candidates.is_empty()
            || !to_a.fingerprints.is_empty())
    {
        return Err(bad(
            "answer to plain-RTP leg A carries ICE or DTLS attributes".into(),
            &to_a_text,
        ));
    }
    let (a_tx, a_rx) = if scenario == Scenario::Srtp {
        let key = to_a
            .cryptos
            .iter()
            .filter_map(|c| sdp::parse_crypto(c))
            .find(|(suite, _)| *suite == "AES_CM_128_HMAC_SHA1_80")
            .map(|(_, key)| key)
            .ok_or_else(|| {
                bad(
                    format!(
                        "no AES_CM_128_HMAC_SHA1_80 crypto in the answer to leg A: {:?}",
                        to_a.cryptos
                    ),
                    &to_a_text,
                )
            })?;
        let target_key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|e| SetupError::BadSdp(format!("crypto key not base64: {e}")))?;
        (
            Some(srtp_ctx(Suite::AesCm128HmacSha1_80, &a_key)?),
            Some(srtp_ctx(Suite::AesCm128HmacSha1_80, &target_key)?),
        )
    } else {
        (None, None)
    };
    let mut b_leg = LegSpec {
        send_to: relay_addr(&to_b, b_addr.ip()),
        socket: b_sock,
        codec: b_codec,
        srtp_tx: None,
        srtp_rx: None,
        ice: None,
    };
    if let Some(mut leg) = browser {
        // The browser brings its leg up before media starts (the proxy
        // answers our checks from the candidate it offered).
        let result = webrtc::connect(&b_leg.socket, &mut leg, ctx.handshake_timeout);
        if let Some(t) = trace {
            t.handshake = Some(leg.stats().clone());
        }
        let keys = result.map_err(SetupError::Handshake)?;
        let ice = leg.ice_leg();
        b_leg.send_to = ice.peer;
        b_leg.srtp_tx = Some(srtp_ctx(keys.suite(), keys.local_master())?);
        b_leg.srtp_rx = Some(srtp_ctx(keys.suite(), keys.remote_master())?);
        b_leg.ice = Some(ice);
    }
    let spec = StreamSpec {
        id,
        a: LegSpec {
            socket: a_sock,
            send_to: relay_addr(&to_a, a_addr.ip()),
            codec: LegCodec::Pcmu,
            srtp_tx: a_tx,
            srtp_rx: a_rx,
            ice: None,
        },
        b: b_leg,
    };
    Ok(Call { call_id, spec })
}

/// Deletes a call (errors are returned, the caller counts them).
pub fn delete_call(ng: &mut NgClient, call_id: &str) -> Result<(), NgError> {
    ng.request(&Value::dict([
        ("command", Value::str("delete")),
        ("call-id", Value::str(call_id)),
    ]))
    .map(|_| ())
}

/// Pre-encodes `frames` 20 ms Opus frames of the test tone with `strait-codec`.
pub fn opus_frames(frames: usize) -> Result<Vec<Vec<u8>>, String> {
    let cfg = strait_codec::EncoderConfig::default();
    let mut enc = strait_codec::opus::Encoder::new(&cfg).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(frames);
    let mut buf = vec![0u8; strait_codec::opus::MAX_FRAME_BYTES];
    for i in 0..frames {
        let pcm = crate::packet::tone_pcm(i);
        let n = enc.encode(&pcm, &mut buf).map_err(|e| e.to_string())?;
        out.push(buf[..n].to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names() {
        for s in [
            Scenario::Plain,
            Scenario::Srtp,
            Scenario::Transcode,
            Scenario::Webrtc,
        ] {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("x"), None);
    }

    #[test]
    fn ports_are_even_and_skip_taken_ones() {
        let mut p = PortAllocator::new("127.0.0.1".parse().unwrap(), 0, 0);
        // Port 0 = kernel's choice: one socket, then exhausted.
        assert!(p.bind().is_ok());
        assert!(p.bind().is_err());
    }

    #[test]
    fn opus_frames_are_encoded() {
        let f = opus_frames(5).unwrap();
        assert_eq!(f.len(), 5);
        assert!(f.iter().all(|x| !x.is_empty() && x.len() < 400));
        assert_eq!(strait_codec::opus::packet_samples(&f[0]), Some(160));
    }

    #[test]
    fn random_bytes_fill() {
        let mut a = [0u8; 30];
        let mut b = [0u8; 30];
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
