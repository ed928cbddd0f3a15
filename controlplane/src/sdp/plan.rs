//! The media plan: what the data plane must do for a call once an
//! offer/answer exchange has completed. Plain values; the caller converts
//! them to the data plane's `strait_rules::abi::LegRule`s.

use std::net::SocketAddr;

use super::attrs::{Direction, Fingerprint, IceCredentials, Setup, SrtpMasterKey, SrtpSuite};
use super::media::CodecKind;

/// One side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The WebRTC browser (ICE, DTLS-SRTP, rtcp-mux, Opus).
    Browser,
    /// The legacy SIP endpoint (RTP/AVP, G.711, separate RTCP).
    Legacy,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Side::Browser => Side::Legacy,
            Side::Legacy => Side::Browser,
        }
    }

    pub(crate) fn idx(self) -> usize {
        match self {
            Side::Browser => 0,
            Side::Legacy => 1,
        }
    }
}

/// G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711Law {
    /// mu-law (PCMU).
    MuLaw,
    /// A-law (PCMA).
    ALaw,
}

impl G711Law {
    /// The law of a G.711 codec kind.
    pub fn of(kind: CodecKind) -> Option<Self> {
        match kind {
            CodecKind::Pcmu => Some(G711Law::MuLaw),
            CodecKind::Pcma => Some(G711Law::ALaw),
            _ => None,
        }
    }

    /// The data plane's code (`Transcode::law`): 0 mu-law, 1 A-law.
    pub fn abi_code(self) -> u8 {
        match self {
            G711Law::MuLaw => 0,
            G711Law::ALaw => 1,
        }
    }
}

/// Which way a leg transcodes the packets leaving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscodeMode {
    /// G.711 arrives from the peer leg, Opus leaves this leg (browser leg).
    G711ToOpus,
    /// Opus arrives from the peer leg, G.711 leaves this leg (legacy leg).
    OpusToG711,
}

impl TranscodeMode {
    /// The data plane's code (`Transcode::mode`): 1 G.711->Opus, 2 Opus->G.711.
    pub fn abi_code(self) -> u8 {
        match self {
            TranscodeMode::G711ToOpus => 1,
            TranscodeMode::OpusToG711 => 2,
        }
    }
}

/// Transcoding of the packets leaving a leg.
///
/// Payload types of the input format are in the numbering of the leg the
/// packets arrive on (what Strait declared there); those of the output
/// format in the numbering of this leg's remote (what it declared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscodePlan {
    /// Direction.
    pub mode: TranscodeMode,
    /// Law on the legacy side.
    pub law: G711Law,
    /// G.711 payload type.
    pub g711_pt: u8,
    /// Opus payload type.
    pub opus_pt: u8,
    /// telephone-event/8000 payload type on the legacy side, if negotiated.
    pub g711_event_pt: Option<u8>,
    /// telephone-event/48000 payload type on the browser side, if negotiated.
    pub opus_event_pt: Option<u8>,
}

/// The payload format that leaves a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadFormat {
    /// Codec.
    pub kind: CodecKind,
    /// Payload type in the remote's numbering.
    pub pt: u8,
    /// RTP clock rate.
    pub clock_rate: u32,
}

/// ICE on a leg (Strait is ICE-lite: it answers checks and latches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcePlan {
    /// Strait's credentials (checks from the browser are signed with `local.pwd`).
    pub local: IceCredentials,
    /// The browser's credentials (its checks carry `local.ufrag:remote.ufrag`).
    pub remote: IceCredentials,
}

/// DTLS-SRTP on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsPlan {
    /// Strait's role: [`Setup::Passive`] (DTLS server, the usual toward a
    /// browser) or [`Setup::Active`] (client).
    pub local_role: Setup,
    /// Certificate fingerprint the remote must present (a SHA-256 one when offered).
    pub remote_fingerprint: Fingerprint,
}

/// SDES-keyed SRTP on a leg (legacy SRTP peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesPlan {
    /// Protection suite (same both ways).
    pub suite: SrtpSuite,
    /// Key for packets Strait sends (the one in Strait's `a=crypto`).
    pub tx: SrtpMasterKey,
    /// Key for packets Strait receives (the one in the remote's `a=crypto`).
    pub rx: SrtpMasterKey,
}

/// What the data plane does on one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegPlan {
    /// Which side this leg faces.
    pub side: Side,
    /// Strait's RTP port on this leg.
    pub local_rtp_port: u16,
    /// Strait's RTCP port, `None` with rtcp-mux.
    pub local_rtcp_port: Option<u16>,
    /// Signalled remote RTP address; `None` when unknown (a browser that
    /// trickles: latch on ICE) or on hold with `c=0.0.0.0`.
    pub remote_rtp: Option<SocketAddr>,
    /// Signalled remote RTCP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP multiplexed on the RTP port.
    pub rtcp_mux: bool,
    /// Negotiated direction from Strait's point of view on this leg.
    pub direction: Direction,
    /// Strait may send media to the remote.
    pub send: bool,
    /// Strait accepts media from the remote.
    pub recv: bool,
    /// ICE (browser leg).
    pub ice: Option<IcePlan>,
    /// DTLS-SRTP (browser leg).
    pub dtls: Option<DtlsPlan>,
    /// SDES-SRTP (legacy leg with `RTP/SAVP`).
    pub sdes: Option<SdesPlan>,
    /// Audio format that leaves this leg.
    pub codec: PayloadFormat,
    /// telephone-event payload type leaving this leg (remote's numbering), if negotiated.
    pub event_pt: Option<u8>,
    /// Payload-type rewrites for packets leaving this leg: (arriving PT, leaving PT).
    pub pt_map: Vec<(u8, u8)>,
    /// Transcoding of packets leaving this leg.
    pub transcode: Option<TranscodePlan>,
    /// Keep sent packets and answer NACKs (the browser negotiated generic NACK).
    pub nack: bool,
    /// SSRC written on packets leaving this leg (the one announced in SDP), if any.
    pub ssrc_out: Option<u32>,
    /// The remote's `a=ptime`, if given.
    pub ptime: Option<u32>,
}

/// The media plan of a call: both legs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlan {
    /// The browser leg.
    pub browser: LegPlan,
    /// The legacy leg.
    pub legacy: LegPlan,
}

impl MediaPlan {
    /// Whether Strait transcodes Opus <-> G.711 on this call.
    pub fn transcoding(&self) -> bool {
        self.browser.transcode.is_some() || self.legacy.transcode.is_some()
    }

    /// The leg facing `side`.
    pub fn leg(&self, side: Side) -> &LegPlan {
        match side {
            Side::Browser => &self.browser,
            Side::Legacy => &self.legacy,
        }
    }
}
