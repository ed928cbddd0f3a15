//! First-byte demultiplexing of one UDP port shared by STUN, DTLS, RTP and
//! RTCP (RFC 7983, updated by RFC 9443), with RTP and RTCP told apart by the
//! second byte (RFC 5761 §4).
//!
//! | first byte | kind |
//! |---|---|
//! | 0..=3 | STUN (needs 20 bytes and the magic cookie) |
//! | 16..=19 | ZRTP (needs 12 bytes and the `ZRTP` cookie) |
//! | 20..=63 | DTLS (needs a 13-byte record header) |
//! | 64..=79 | TURN channel data (needs 4 bytes) |
//! | 128..=191 | RTP (12 bytes) or RTCP (8 bytes) |
//! | anything else | unknown (QUIC's 80..=127 included) |
//!
//! Within 128..=191 (version 2), a second byte in 192..=223 is RTCP: those
//! values are RTCP packet types (SR 200, RR 201, ... PSFB 206, XR 207), which
//! as RTP would be payload types 64..=95 with the marker set, and RFC 5761
//! forbids those payload types on a multiplexed port.
//!
//! [`classify`] only looks at the first bytes and the length: it is a few
//! compares and runs on every packet. The protocol parsers validate the rest.

/// STUN magic cookie (RFC 5389 §6).
pub const STUN_MAGIC_COOKIE: u32 = 0x2112_A442;
/// ZRTP magic cookie, "ZRTP" (RFC 6189 §5).
pub const ZRTP_MAGIC_COOKIE: u32 = 0x5A52_5450;

/// Smallest STUN message: the header.
pub const STUN_MIN_LEN: usize = 20;
/// Smallest DTLS record: the record header.
pub const DTLS_MIN_LEN: usize = 13;
/// Smallest RTP packet: the fixed header.
pub const RTP_MIN_LEN: usize = 12;
/// Smallest RTCP packet that carries anything (header and sender SSRC).
pub const RTCP_MIN_LEN: usize = 8;
/// Smallest ZRTP packet: its header.
pub const ZRTP_MIN_LEN: usize = 12;
/// Smallest TURN ChannelData message: channel number and length.
pub const TURN_CHANNEL_MIN_LEN: usize = 4;

/// What a datagram on a multiplexed port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketKind {
    /// STUN (ICE connectivity checks, consent freshness).
    Stun,
    /// ZRTP.
    Zrtp,
    /// DTLS record (handshake for DTLS-SRTP).
    Dtls,
    /// TURN ChannelData.
    TurnChannel,
    /// RTP (SRTP when protected).
    Rtp,
    /// RTCP (SRTCP when protected).
    Rtcp,
    /// None of the above, or too short for its first byte's kind.
    Unknown,
}

#[inline]
fn word_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Classifies a datagram by its first byte (and the second for RTP/RTCP);
/// see the [module docs](self) for the ranges and minimal lengths.
#[inline]
pub fn classify(buf: &[u8]) -> PacketKind {
    let Some(&b0) = buf.first() else {
        return PacketKind::Unknown;
    };
    let len = buf.len();
    match b0 {
        128..=191 => {
            // Version 2: RTP or RTCP. `len >= 8` implies a second byte.
            if len < RTCP_MIN_LEN {
                PacketKind::Unknown
            } else if matches!(buf[1], 192..=223) {
                PacketKind::Rtcp
            } else if len >= RTP_MIN_LEN {
                PacketKind::Rtp
            } else {
                PacketKind::Unknown
            }
        }
        0..=3 if len >= STUN_MIN_LEN && word_at(buf, 4) == Some(STUN_MAGIC_COOKIE) => {
            PacketKind::Stun
        }
        20..=63 if len >= DTLS_MIN_LEN => PacketKind::Dtls,
        64..=79 if len >= TURN_CHANNEL_MIN_LEN => PacketKind::TurnChannel,
        16..=19 if len >= ZRTP_MIN_LEN && word_at(buf, 4) == Some(ZRTP_MAGIC_COOKIE) => {
            PacketKind::Zrtp
        }
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pkt(b0: u8, b1: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = b0;
        if len > 1 {
            p[1] = b1;
        }
        p
    }

    #[test]
    fn first_byte_ranges() {
        // RFC 7983 §7 / RFC 9443 ranges at their boundaries, with a
        // cookie-less 20-byte STUN-range packet being Unknown.
        for (b0, want) in [
            (4u8, PacketKind::Unknown),
            (15, PacketKind::Unknown),
            (20, PacketKind::Dtls),
            (22, PacketKind::Dtls),
            (63, PacketKind::Dtls),
            (64, PacketKind::TurnChannel),
            (79, PacketKind::TurnChannel),
            (80, PacketKind::Unknown),
            (127, PacketKind::Unknown),
            (128, PacketKind::Rtp),
            (191, PacketKind::Rtp),
            (192, PacketKind::Unknown),
            (255, PacketKind::Unknown),
            (0, PacketKind::Unknown),
            (16, PacketKind::Unknown),
        ] {
            assert_eq!(classify(&pkt(b0, 0, 40)), want, "first byte {b0}");
        }
    }

    #[test]
    fn stun_needs_cookie_and_header() {
        // RFC 5769 §2.1 sample request header.
        let mut p = vec![0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42];
        p.extend_from_slice(&[
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ]);
        assert_eq!(classify(&p), PacketKind::Stun);
        assert_eq!(classify(&p[..19]), PacketKind::Unknown);
        for b0 in 1..=3 {
            p[0] = b0;
            assert_eq!(classify(&p), PacketKind::Stun);
        }
        p[7] = 0x43;
        assert_eq!(classify(&p), PacketKind::Unknown);
    }

    #[test]
    fn zrtp_needs_cookie() {
        let mut p = pkt(0x10, 0, 12);
        assert_eq!(classify(&p), PacketKind::Unknown);
        p[4..8].copy_from_slice(b"ZRTP");
        assert_eq!(classify(&p), PacketKind::Zrtp);
        assert_eq!(classify(&p[..11]), PacketKind::Unknown);
    }

    #[test]
    fn rtp_vs_rtcp() {
        for (b1, want) in [
            (0u8, PacketKind::Rtp),        // PCMU
            (111, PacketKind::Rtp),        // Opus
            (64, PacketKind::Rtp),         // PT 64, no marker
            (95, PacketKind::Rtp),         // PT 95, no marker
            (191, PacketKind::Rtp),        // PT 63 + marker
            (192, PacketKind::Rtcp),       // lowest RFC 5761 RTCP value
            (200, PacketKind::Rtcp),       // SR
            (206, PacketKind::Rtcp),       // PSFB
            (207, PacketKind::Rtcp),       // XR
            (223, PacketKind::Rtcp),       // highest
            (224, PacketKind::Rtp),        // PT 96 + marker
            (0x80 | 111, PacketKind::Rtp), // Opus + marker
        ] {
            assert_eq!(classify(&pkt(0x80, b1, 12)), want, "second byte {b1}");
        }
        // Minimal lengths.
        assert_eq!(classify(&pkt(0x80, 201, 8)), PacketKind::Rtcp);
        assert_eq!(classify(&pkt(0x80, 201, 7)), PacketKind::Unknown);
        assert_eq!(classify(&pkt(0x80, 0, 11)), PacketKind::Unknown);
        assert_eq!(classify(&pkt(0x80, 0, 1)), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&pkt(22, 0, 12)), PacketKind::Unknown);
        assert_eq!(classify(&pkt(64, 0, 3)), PacketKind::Unknown);
    }

    proptest! {
        #[test]
        fn agrees_with_parsers(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            match classify(&data) {
                PacketKind::Rtp => {
                    prop_assert!(data.len() >= 12 && data[0] >> 6 == 2);
                    prop_assert!(!(192..=223).contains(&data[1]));
                }
                PacketKind::Rtcp => {
                    prop_assert!(data.len() >= 8 && data[0] >> 6 == 2);
                    prop_assert!((192..=223).contains(&data[1]));
                }
                PacketKind::Stun => {
                    prop_assert!(data.len() >= 20 && data[0] < 4);
                    prop_assert_eq!(&data[4..8], &[0x21, 0x12, 0xA4, 0x42]);
                }
                PacketKind::Dtls => prop_assert!((20..=63).contains(&data[0]) && data.len() >= 13),
                PacketKind::TurnChannel => prop_assert!((64..=79).contains(&data[0])),
                PacketKind::Zrtp => prop_assert_eq!(&data[4..8], b"ZRTP"),
                PacketKind::Unknown => {}
            }
        }
    }
}
