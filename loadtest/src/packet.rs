//! RTP packets of the load generator.
//!
//! A PCMU packet is a 12-byte RTP header and 160 bytes of mu-law audio (a
//! 20 ms tone), of which the first [`MARKER_LEN`] bytes carry the marker:
//! magic `SLT1`, stream id, direction, generator sequence number and send
//! time. The relay forwards (or decrypts/encrypts) the payload unchanged
//! except when transcoding, where the marker is lost and the receiver maps
//! RTP sequence numbers instead ([`crate::stats::SeqMapper`]).

/// RTP fixed header length.
pub const RTP_HEADER_LEN: usize = 12;
/// PCMU payload of 20 ms.
pub const PCMU_PAYLOAD_LEN: usize = 160;
/// Bytes of the payload used by the marker.
pub const MARKER_LEN: usize = 28;
/// Marker magic.
pub const MAGIC: [u8; 4] = *b"SLT1";

/// The marker the generator writes into a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Global stream (call) index.
    pub stream: u32,
    /// Direction: 0 = leg A to leg B, 1 = B to A.
    pub dir: u8,
    /// Generator sequence number in this direction (no wrap).
    pub seq: u64,
    /// Send time, ns on the run's monotonic clock.
    pub send_ns: u64,
}

impl Marker {
    /// Writes the marker into the start of `payload` (at least [`MARKER_LEN`] bytes).
    pub fn write(&self, payload: &mut [u8]) {
        if payload.len() < MARKER_LEN {
            return;
        }
        payload[0..4].copy_from_slice(&MAGIC);
        payload[4..8].copy_from_slice(&self.stream.to_be_bytes());
        payload[8] = self.dir;
        payload[9..12].copy_from_slice(&[0xff; 3]);
        payload[12..20].copy_from_slice(&self.seq.to_be_bytes());
        payload[20..28].copy_from_slice(&self.send_ns.to_be_bytes());
    }

    /// Reads a marker from the start of `payload`, if there is one.
    pub fn read(payload: &[u8]) -> Option<Marker> {
        let p = payload.get(..MARKER_LEN)?;
        if p[0..4] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        Some(Marker {
            stream: u32_at(4),
            dir: p[8],
            seq: u64_at(12),
            send_ns: u64_at(20),
        })
    }
}

/// Writes a 12-byte RTP header (version 2, no padding/extension/CSRC).
pub fn write_header(buf: &mut [u8], pt: u8, seq: u16, ts: u32, ssrc: u32) {
    if buf.len() < RTP_HEADER_LEN {
        return;
    }
    buf[0] = 0x80;
    buf[1] = pt & 0x7f;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// The parts of a received RTP packet the receiver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView {
    /// Payload type.
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// SSRC.
    pub ssrc: u32,
    /// Offset of the payload.
    pub payload_start: usize,
    /// End of the payload (before padding).
    pub payload_end: usize,
}

/// Parses an RTP header (CSRCs, extension and padding accounted for).
/// `None` for anything that is not a well-formed RTP version 2 packet, or
/// an RTCP packet (payload types 72-76 with the marker bit, RFC 5761).
pub fn parse(pkt: &[u8]) -> Option<RtpView> {
    if pkt.len() < RTP_HEADER_LEN || pkt[0] >> 6 != 2 {
        return None;
    }
    if (200..=204).contains(&pkt[1]) {
        return None;
    }
    let cc = usize::from(pkt[0] & 0x0f);
    let mut start = RTP_HEADER_LEN + 4 * cc;
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(start..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        let pad = usize::from(*pkt.last()?);
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(RtpView {
        pt: pkt[1] & 0x7f,
        seq: u16::from_be_bytes([pkt[2], pkt[3]]),
        ssrc: u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
        payload_start: start,
        payload_end: end,
    })
}

/// 20 ms of a 400 Hz + 1 kHz mu-law tone (the audio under the marker).
pub fn pcmu_tone() -> [u8; PCMU_PAYLOAD_LEN] {
    let pcm = tone_pcm(0);
    let mut out = [0u8; PCMU_PAYLOAD_LEN];
    strait_codec::g711::encode_ulaw(&pcm, &mut out);
    out
}

/// 20 ms (160 samples at 8 kHz) of the tone, starting at frame `frame`.
pub fn tone_pcm(frame: usize) -> [i16; 160] {
    let mut pcm = [0i16; 160];
    for (i, s) in pcm.iter_mut().enumerate() {
        let t = (frame * 160 + i) as f64 / 8000.0;
        let v = 0.3 * (2.0 * std::f64::consts::PI * 400.0 * t).sin()
            + 0.2 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin();
        *s = (v * 32767.0) as i16;
    }
    pcm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip() {
        let m = Marker {
            stream: 70_000,
            dir: 1,
            seq: 1 << 40,
            send_ns: 123_456_789_012,
        };
        let mut p = pcmu_tone();
        m.write(&mut p);
        assert_eq!(Marker::read(&p), Some(m));
        assert_eq!(Marker::read(&pcmu_tone()), None);
        assert_eq!(Marker::read(&p[..MARKER_LEN - 1]), None);
    }

    #[test]
    fn header_round_trip_and_bad_packets() {
        let mut b = [0u8; 20];
        write_header(&mut b, 0, 65535, 160, 0xdead_beef);
        let v = parse(&b).unwrap();
        assert_eq!((v.pt, v.seq, v.ssrc), (0, 65535, 0xdead_beef));
        assert_eq!((v.payload_start, v.payload_end), (12, 20));
        assert_eq!(parse(&b[..11]), None);
        let mut rtcp = b;
        rtcp[1] = 200;
        assert_eq!(parse(&rtcp), None);
        let mut ext = b;
        ext[0] |= 0x10; // extension header claims 1 word; 4 + 4 bytes fit in 8
        ext[14..16].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(parse(&ext).unwrap().payload_start, 20);
        ext[14..16].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(parse(&ext), None);
        let mut pad = b;
        pad[0] |= 0x20;
        pad[19] = 9;
        assert_eq!(parse(&pad), None);
        pad[19] = 8;
        assert_eq!(parse(&pad).unwrap().payload_end, 12);
    }
}
