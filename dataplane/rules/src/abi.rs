//! The message set between the planes: `#[repr(C)]`, explicit padding, every
//! size pinned by a compile-time assertion and published in the region's size
//! table, so two builds that disagree on any layout refuse to attach instead
//! of misreading each other.
//!
//! Bump [`ABI_VERSION`] whenever a layout or a meaning changes.

use bytemuck::{Pod, Zeroable};

/// Version of this message set. Checked at attach time with the size table.
pub const ABI_VERSION: u32 = 3;

/// Message kinds. Control -> data below 0x80, data -> control from 0x80.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
#[non_exhaustive]
pub enum Kind {
    /// [`LegRule`]: create a leg (or replace one with the same id).
    AddLeg = 0x01,
    /// [`LegRule`]: change an existing leg in place (keys, addresses, maps).
    UpdateLeg = 0x02,
    /// [`LegRef`]: remove a leg.
    RemoveLeg = 0x03,
    /// [`SendPacket`] followed by the bytes: send from a leg's socket (DTLS flights).
    SendPacket = 0x04,
    /// No body: ask the worker to report every leg it holds ([`Kind::LegState`]…, then [`Kind::SnapshotEnd`]).
    Snapshot = 0x05,
    /// [`Punted`] followed by the packet: something the worker does not handle.
    Punted = 0x81,
    /// [`LegEvent`]: the leg latched onto a validated remote address.
    LegLatched = 0x82,
    /// [`LegEvent`]: ICE consent expired on the leg.
    ConsentLost = 0x83,
    /// [`LegEvent`]: no media either way for the leg's timeout; the leg was removed.
    TimedOut = 0x84,
    /// [`LegRule`]: one leg of a snapshot, as the worker holds it now.
    LegState = 0x85,
    /// No body: end of a snapshot.
    SnapshotEnd = 0x86,
    /// [`RuleRejected`]: a rule could not be applied.
    RuleRejected = 0x87,
}

impl Kind {
    /// Decodes a kind read from a ring; `None` for an unknown value.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0x01 => Kind::AddLeg,
            0x02 => Kind::UpdateLeg,
            0x03 => Kind::RemoveLeg,
            0x04 => Kind::SendPacket,
            0x05 => Kind::Snapshot,
            0x81 => Kind::Punted,
            0x82 => Kind::LegLatched,
            0x83 => Kind::ConsentLost,
            0x84 => Kind::TimedOut,
            0x85 => Kind::LegState,
            0x86 => Kind::SnapshotEnd,
            0x87 => Kind::RuleRejected,
            _ => return None,
        })
    }
}

/// A transport address. `family` 0 means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Addr {
    /// 0 none, 4 IPv4 (first four bytes of `ip`), 6 IPv6.
    pub family: u8,
    /// Zero.
    pub _pad: u8,
    /// Port, host byte order.
    pub port: u16,
    /// Address bytes, network order.
    pub ip: [u8; 16],
}

impl Addr {
    /// Converts from a socket address.
    pub fn from_socket_addr(a: std::net::SocketAddr) -> Self {
        let mut ip = [0u8; 16];
        let family = match a.ip() {
            std::net::IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                4
            }
            std::net::IpAddr::V6(v6) => {
                ip = v6.octets();
                6
            }
        };
        Self {
            family,
            _pad: 0,
            port: a.port(),
            ip,
        }
    }

    /// Converts to a socket address; `None` for family 0 or an unknown family.
    pub fn to_socket_addr(&self) -> Option<std::net::SocketAddr> {
        match self.family {
            4 => {
                let o = [self.ip[0], self.ip[1], self.ip[2], self.ip[3]];
                Some((std::net::Ipv4Addr::from(o), self.port).into())
            }
            6 => Some((std::net::Ipv6Addr::from(self.ip), self.port).into()),
            _ => None,
        }
    }
}

/// SRTP master key material for one direction. `suite` 0 means plain RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SrtpKeys {
    /// 0 none, 1 AES_CM_128_HMAC_SHA1_80, 2 AES_CM_128_HMAC_SHA1_32, 3 AEAD_AES_128_GCM.
    pub suite: u8,
    /// Zero.
    pub _pad: [u8; 3],
    /// Master key (16 bytes for every supported suite).
    pub key: [u8; 16],
    /// Master salt (14 bytes for AES-CM, the first 12 for GCM).
    pub salt: [u8; 14],
    /// Zero.
    pub _pad2: [u8; 2],
}

/// Leg flags ([`LegRule::flags`]).
pub mod flags {
    /// Answer ICE connectivity checks with the rule's credentials; latch on a valid one.
    pub const ICE: u32 = 1 << 0;
    /// RTCP shares the RTP port (RFC 5761).
    pub const RTCP_MUX: u32 = 1 << 1;
    /// Keep sent packets and answer generic NACKs (browser-facing legs).
    pub const NACK_TAIL: u32 = 1 << 2;
    /// Latch on the first packet from the signalled address's host (symmetric RTP).
    pub const SYMMETRIC: u32 = 1 << 3;
    /// SRTP keys are not known yet (a DTLS handshake runs on the leg): media
    /// arriving on it is dropped and none is sent to it. Cleared by the
    /// update that brings the keys.
    pub const SRTP_PENDING: u32 = 1 << 4;
}

/// What one leg does. A call is two legs naming each other as peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct LegRule {
    /// Control-plane-chosen identifier, unique across workers.
    pub leg_id: u64,
    /// The leg media is forwarded to.
    pub peer_leg_id: u64,
    /// Index of this leg's counters in the region's counter table.
    pub counter_slot: u32,
    /// [`flags`] bits.
    pub flags: u32,
    /// Local RTP port (owned by the worker the rule is sent to).
    pub local_port: u16,
    /// Local RTCP port, or 0 with [`flags::RTCP_MUX`].
    pub local_rtcp_port: u16,
    /// Remove the leg after this long without media either way; 0 never.
    pub media_timeout_ms: u32,
    /// Signalled remote RTP address.
    pub remote_rtp: Addr,
    /// Signalled remote RTCP address.
    pub remote_rtcp: Addr,
    /// Local ICE password (what the browser's checks are signed with).
    pub ice_pwd: [u8; 64],
    /// Local ICE username fragment.
    pub ice_ufrag: [u8; 32],
    /// Bytes of `ice_pwd` in use.
    pub ice_pwd_len: u8,
    /// Bytes of `ice_ufrag` in use.
    pub ice_ufrag_len: u8,
    /// Zero.
    pub _pad: [u8; 2],
    /// NACK tail length bounds (packets).
    pub nack_tail_min: u16,
    /// See `nack_tail_min`.
    pub nack_tail_max: u16,
    /// Keys for packets received on this leg.
    pub srtp_rx: SrtpKeys,
    /// Keys for packets sent on this leg.
    pub srtp_tx: SrtpKeys,
    /// Payload type map for packets leaving this leg: pairs (from, to); 0xFF ends.
    pub pt_map: [[u8; 2]; 16],
    /// SSRC written on packets leaving this leg; 0 keeps the source's.
    /// A transcoding leg always sends its own SSRC (this one, or one derived
    /// from the leg id when 0).
    pub ssrc_out: u32,
    /// Transcoding of packets leaving this leg.
    pub transcode: Transcode,
    /// Zero.
    pub _pad2: u32,
}

/// Transcoding of the packets leaving a leg ([`LegRule::transcode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Transcode {
    /// 0 none (relay), 1 G.711 in -> Opus out, 2 Opus in -> G.711 out.
    pub mode: u8,
    /// G.711 law on the legacy side: 0 mu-law (PCMU), 1 A-law (PCMA).
    pub law: u8,
    /// G.711 payload type on the legacy side.
    pub g711_pt: u8,
    /// Opus payload type on the browser side.
    pub opus_pt: u8,
    /// telephone-event payload type on the legacy side (8 kHz); 0xFF none.
    pub g711_event_pt: u8,
    /// telephone-event payload type on the browser side (48 kHz); 0xFF none.
    pub opus_event_pt: u8,
    /// Opus encoder complexity 0..=10 (mode 1).
    pub complexity: u8,
    /// Zero.
    pub _pad: u8,
}

/// Values of [`Transcode::mode`].
pub mod transcode {
    /// Relay without transcoding.
    pub const NONE: u8 = 0;
    /// G.711 arrives from the peer, Opus leaves this leg.
    pub const G711_TO_OPUS: u8 = 1;
    /// Opus arrives from the peer, G.711 leaves this leg.
    pub const OPUS_TO_G711: u8 = 2;
}

/// Names a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct LegRef {
    /// The leg.
    pub leg_id: u64,
}

/// Header of a [`Kind::SendPacket`]; the packet follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SendPacket {
    /// The leg whose socket sends.
    pub leg_id: u64,
    /// Destination.
    pub to: Addr,
    /// Zero.
    pub _pad: u32,
}

/// Header of a [`Kind::Punted`]; the packet follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Punted {
    /// The leg owning the port it arrived on, or 0 if none.
    pub leg_id: u64,
    /// Source address.
    pub from: Addr,
    /// Local port it arrived on.
    pub local_port: u16,
    /// Zero.
    pub _pad: u16,
}

/// Body of leg events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct LegEvent {
    /// The leg.
    pub leg_id: u64,
    /// The address concerned (latched address), if any.
    pub addr: Addr,
    /// Zero.
    pub _pad: u32,
}

/// Body of [`Kind::RuleRejected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct RuleRejected {
    /// The leg the rule named (0 if the rule was unreadable).
    pub leg_id: u64,
    /// The rule's [`Kind`] as a number.
    pub kind: u16,
    /// Zero.
    pub _pad: u16,
    /// Why, as [`reject`] code.
    pub reason: u32,
}

/// Reasons in [`RuleRejected::reason`].
pub mod reject {
    /// The body has the wrong size for its kind.
    pub const BAD_SIZE: u32 = 1;
    /// Unknown message kind.
    pub const UNKNOWN_KIND: u32 = 2;
    /// A field is out of range (port 0, lengths past their arrays, unknown suite...).
    pub const BAD_FIELD: u32 = 3;
    /// The leg does not exist.
    pub const NO_SUCH_LEG: u32 = 4;
    /// A local port is already used by another leg, or could not be opened.
    pub const PORT_UNAVAILABLE: u32 = 5;
    /// The worker's leg table is full.
    pub const TABLE_FULL: u32 = 6;
    /// The counter slot is outside the region's counter table.
    pub const BAD_COUNTER_SLOT: u32 = 7;
}

/// Per-leg counters in shared memory, written only by the owning worker.
pub mod counter {
    /// Packets received on the leg.
    pub const PACKETS_IN: usize = 0;
    /// Bytes received on the leg.
    pub const BYTES_IN: usize = 1;
    /// Packets sent on the leg.
    pub const PACKETS_OUT: usize = 2;
    /// Bytes sent on the leg.
    pub const BYTES_OUT: usize = 3;
    /// Packets inferred lost from sequence gaps.
    pub const LOST: usize = 4;
    /// SRTP/SRTCP authentication failures.
    pub const SRTP_AUTH_FAILED: usize = 5;
    /// SRTP/SRTCP replays rejected.
    pub const REPLAYS: usize = 6;
    /// Generic NACKs received.
    pub const NACKS: usize = 7;
    /// Packets resent for NACKs.
    pub const RESENDS: usize = 8;
    /// Packets dropped for any other reason (strangers, malformed).
    pub const DROPPED: usize = 9;
    /// Number of counters per leg.
    pub const COUNT: usize = 16;
}

/// Per-worker counters in shared memory ([`crate::region::Region::worker_stats`]),
/// written only by the worker, a few times per second.
pub mod worker_stat {
    /// Datagrams received.
    pub const RX_PACKETS: usize = 0;
    /// Datagrams sent.
    pub const TX_PACKETS: usize = 1;
    /// Receive batches (wake-ups that brought datagrams).
    pub const RX_BATCHES: usize = 2;
    /// Sends dropped for a full socket buffer.
    pub const TX_DROPPED: usize = 3;
    /// Other send and receive errors.
    pub const IO_ERRORS: usize = 4;
    /// Packets punted to the control plane.
    pub const PUNTED: usize = 5;
    /// STUN checks answered.
    pub const STUN_ANSWERED: usize = 6;
    /// Rules applied.
    pub const RULES_APPLIED: usize = 7;
    /// Rules rejected.
    pub const RULES_REJECTED: usize = 8;
    /// Events that did not fit the event ring.
    pub const EVENTS_LOST: usize = 9;
    /// Legs held now.
    pub const LEGS: usize = 10;
    /// 1 when the worker runs io_uring, 2 recvmmsg/sendmmsg.
    pub const BACKEND: usize = 11;
    /// First of the per-reason drop counters (the data plane's drop reasons,
    /// in their declaration order).
    pub const DROPS: usize = 16;
    /// Number of counters per worker.
    pub const COUNT: usize = 32;
}

const _: () = {
    assert!(core::mem::size_of::<Addr>() == 20);
    assert!(core::mem::size_of::<SrtpKeys>() == 36);
    assert!(core::mem::size_of::<LegRule>() == 296);
    assert!(core::mem::size_of::<Transcode>() == 8);
    assert!(core::mem::size_of::<LegRef>() == 8);
    assert!(core::mem::size_of::<SendPacket>() == 32);
    assert!(core::mem::size_of::<Punted>() == 32);
    assert!(core::mem::size_of::<LegEvent>() == 32);
    assert!(core::mem::size_of::<RuleRejected>() == 16);
};

/// The size table published in the region header: one entry per ABI struct,
/// in this order. Attaching compares it entry by entry.
pub const SIZE_TABLE: [(&str, u32); 11] = [
    ("Addr", core::mem::size_of::<Addr>() as u32),
    ("SrtpKeys", core::mem::size_of::<SrtpKeys>() as u32),
    ("LegRule", core::mem::size_of::<LegRule>() as u32),
    ("LegRef", core::mem::size_of::<LegRef>() as u32),
    ("SendPacket", core::mem::size_of::<SendPacket>() as u32),
    ("Punted", core::mem::size_of::<Punted>() as u32),
    ("LegEvent", core::mem::size_of::<LegEvent>() as u32),
    ("RuleRejected", core::mem::size_of::<RuleRejected>() as u32),
    ("Transcode", core::mem::size_of::<Transcode>() as u32),
    ("counters per leg", counter::COUNT as u32 * 8),
    ("counters per worker", worker_stat::COUNT as u32 * 8),
];
