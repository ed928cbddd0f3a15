//! RTP packet views (RFC 3550 §5.1, RFC 8285 header extensions).
//!
//! [`RtpPacket`] borrows a packet read-only, [`RtpPacketMut`] borrows it
//! mutably to rewrite SSRC, sequence number, timestamp, payload type and
//! marker in place. Parsing validates the fixed header, the CSRC list and the
//! header extension but not the padding, so the same view works on SRTP
//! ciphertext (whose padding is encrypted); call
//! [`RtpPacket::padding_len`] on plaintext.

use crate::Error;

/// Size of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;

/// "defined by profile" value of a one-byte header extension (RFC 8285 §4.2).
pub const EXT_PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// Mask of the two-byte header extension profile values (RFC 8285 §4.3).
pub const EXT_PROFILE_TWO_BYTE_MASK: u16 = 0xFFF0;
/// Value of the two-byte header extension profile under the mask.
pub const EXT_PROFILE_TWO_BYTE: u16 = 0x1000;

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Validates the header of `buf` and returns its length in bytes: the fixed
/// header, CSRCs and header extension (if any). Padding is not checked.
pub fn header_len(buf: &[u8]) -> Result<usize, Error> {
    if buf.len() < FIXED_HEADER_LEN {
        return Err(Error::TooShort);
    }
    if buf[0] >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    let cc = usize::from(buf[0] & 0x0F);
    let mut len = FIXED_HEADER_LEN + 4 * cc;
    if buf.len() < len {
        return Err(Error::BadCsrcCount);
    }
    if buf[0] & 0x10 != 0 {
        if buf.len() < len + 4 {
            return Err(Error::BadExtension);
        }
        let words = usize::from(be16(buf, len + 2));
        len += 4 + 4 * words;
        if buf.len() < len {
            return Err(Error::BadExtension);
        }
    }
    Ok(len)
}

/// A read-only view of an RTP packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses the header of `buf` (see [`header_len`]).
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let header_len = header_len(buf)?;
        Ok(Self { buf, header_len })
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// Length of fixed header, CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// The P bit.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }
    /// The X bit.
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }
    /// Number of CSRCs.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.buf[0] & 0x0F)
    }
    /// The M bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    /// The payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7F
    }
    /// Sequence number.
    pub fn sequence(&self) -> u16 {
        be16(self.buf, 2)
    }
    /// Timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }
    /// Synchronisation source.
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }
    /// The `i`th contributing source, if present.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        (i < self.csrc_count()).then(|| be32(self.buf, FIXED_HEADER_LEN + 4 * i))
    }
    /// All contributing sources in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let buf = self.buf;
        (0..usize::from(buf[0] & 0x0F)).map(move |i| be32(buf, FIXED_HEADER_LEN + 4 * i))
    }

    /// The header extension: its "defined by profile" field and its body.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        if !self.has_extension() {
            return None;
        }
        let at = FIXED_HEADER_LEN + 4 * self.csrc_count();
        Some((be16(self.buf, at), &self.buf[at + 4..self.header_len]))
    }

    /// Iterates RFC 8285 header extension elements `(id, data)`, for both the
    /// one-byte and the two-byte forms. Empty for other profiles. Iteration
    /// stops (yielding an `Err`) at the first malformed element.
    pub fn extension_elements(&self) -> ExtensionElements<'a> {
        match self.extension() {
            Some((p, body)) if p == EXT_PROFILE_ONE_BYTE => ExtensionElements {
                body,
                two_byte: false,
            },
            Some((p, body)) if p & EXT_PROFILE_TWO_BYTE_MASK == EXT_PROFILE_TWO_BYTE => {
                ExtensionElements {
                    body,
                    two_byte: true,
                }
            }
            _ => ExtensionElements {
                body: &[],
                two_byte: false,
            },
        }
    }

    /// Bytes after the header, including any padding (what SRTP encrypts).
    pub fn payload_with_padding(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }

    /// Number of padding bytes at the end, validated (plaintext only).
    pub fn padding_len(&self) -> Result<usize, Error> {
        padding_len(self.buf, self.header_len)
    }

    /// The payload without padding (plaintext only).
    pub fn payload(&self) -> Result<&'a [u8], Error> {
        let pad = self.padding_len()?;
        Ok(&self.buf[self.header_len..self.buf.len() - pad])
    }
}

fn padding_len(buf: &[u8], header_len: usize) -> Result<usize, Error> {
    if buf[0] & 0x20 == 0 {
        return Ok(0);
    }
    let pad = usize::from(*buf.last().expect("header_len >= 12 so buf is not empty"));
    if pad == 0 || pad > buf.len() - header_len {
        return Err(Error::BadPadding);
    }
    Ok(pad)
}

/// Iterator over RFC 8285 header extension elements.
#[derive(Debug, Clone)]
pub struct ExtensionElements<'a> {
    body: &'a [u8],
    two_byte: bool,
}

impl<'a> Iterator for ExtensionElements<'a> {
    type Item = Result<(u8, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&first, rest) = self.body.split_first()?;
            if first == 0 {
                // Padding byte between elements.
                self.body = rest;
                continue;
            }
            let (id, len, hdr) = if self.two_byte {
                let Some(&l) = rest.first() else {
                    self.body = &[];
                    return Some(Err(Error::BadExtension));
                };
                (first, usize::from(l), 2)
            } else {
                let id = first >> 4;
                if id == 15 || id == 0 {
                    // Id 15 is reserved: stop processing (RFC 8285 §4.2).
                    // Id 0 is only valid as a padding byte (0x00, skipped
                    // above); with a length it is malformed, so stop too.
                    self.body = &[];
                    return None;
                }
                (id, usize::from(first & 0x0F) + 1, 1)
            };
            if self.body.len() < hdr + len {
                self.body = &[];
                return Some(Err(Error::BadExtension));
            }
            let data = &self.body[hdr..hdr + len];
            self.body = &self.body[hdr + len..];
            return Some(Ok((id, data)));
        }
    }
}

/// A mutable view of an RTP packet for in-place rewriting.
#[derive(Debug)]
pub struct RtpPacketMut<'a> {
    buf: &'a mut [u8],
    header_len: usize,
}

impl<'a> RtpPacketMut<'a> {
    /// Parses the header of `buf` (see [`header_len`]).
    pub fn parse(buf: &'a mut [u8]) -> Result<Self, Error> {
        let header_len = header_len(buf)?;
        Ok(Self { buf, header_len })
    }

    /// A read-only view of the same packet.
    pub fn as_ref(&self) -> RtpPacket<'_> {
        RtpPacket {
            buf: self.buf,
            header_len: self.header_len,
        }
    }
    /// Length of fixed header, CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// Sets the M bit.
    pub fn set_marker(&mut self, m: bool) {
        self.buf[1] = (self.buf[1] & 0x7F) | (u8::from(m) << 7);
    }
    /// Sets the payload type (low 7 bits of `pt`).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7F);
    }
    /// Sets the sequence number.
    pub fn set_sequence(&mut self, seq: u16) {
        self.buf[2..4].copy_from_slice(&seq.to_be_bytes());
    }
    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }
    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
    /// Bytes after the header, including padding.
    pub fn payload_with_padding_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.header_len..]
    }
    /// The payload without padding (plaintext only).
    pub fn payload_mut(&mut self) -> Result<&mut [u8], Error> {
        let pad = padding_len(self.buf, self.header_len)?;
        let end = self.buf.len() - pad;
        Ok(&mut self.buf[self.header_len..end])
    }
    /// The whole packet.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buf
    }
}

/// Fields of a fixed RTP header without CSRCs or extension, for writing a
/// fresh packet (e.g. a transcoder's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FixedHeader {
    /// The M bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
}

impl FixedHeader {
    /// Writes the 12-byte header at the start of `out` and returns 12.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, Error> {
        let Some(h) = out.get_mut(..FIXED_HEADER_LEN) else {
            return Err(Error::BufferTooSmall);
        };
        h[0] = 0x80;
        h[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7F);
        h[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        h[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Ok(FIXED_HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt_with_ext_and_csrc() -> Vec<u8> {
        let mut p = vec![
            0xB2, 0xE0, 0x12, 0x34, // V=2 P=1 X=1 CC=2, M=1 PT=96
            0, 0, 0x10, 0, // ts
            0xDE, 0xAD, 0xBE, 0xEF, // ssrc
            0, 0, 0, 1, // csrc 1
            0, 0, 0, 2, // csrc 2
            0xBE, 0xDE, 0, 2, // one-byte ext, 2 words
            0x10, 0xAA, 0x21, 0xBB, // id1 len1 [AA], id2 len2 [BB CC]
            0xCC, 0x00, 0x00, 0x00, // padding
        ];
        p.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 3]); // payload + 3 pad
        p
    }

    #[test]
    fn parses_full_header() {
        let p = pkt_with_ext_and_csrc();
        let r = RtpPacket::parse(&p).unwrap();
        assert_eq!(r.header_len(), 12 + 8 + 4 + 8);
        assert!(r.marker());
        assert_eq!(r.payload_type(), 96);
        assert_eq!(r.sequence(), 0x1234);
        assert_eq!(r.timestamp(), 0x1000);
        assert_eq!(r.ssrc(), 0xDEADBEEF);
        assert_eq!(r.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(r.csrc(2), None);
        let els: Vec<_> = r.extension_elements().map(|e| e.unwrap()).collect();
        assert_eq!(els, vec![(1, &[0xAA][..]), (2, &[0xBB, 0xCC][..])]);
        assert_eq!(r.padding_len(), Ok(3));
        assert_eq!(r.payload().unwrap(), &[1, 2, 3, 4, 5]);
    }

    #[test]
    fn two_byte_extension() {
        let mut p = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[0x10, 0x00, 0, 2, 7, 3, 1, 2, 3, 8, 0, 0]);
        let r = RtpPacket::parse(&p).unwrap();
        let els: Vec<_> = r.extension_elements().map(|e| e.unwrap()).collect();
        assert_eq!(els, vec![(7, &[1, 2, 3][..]), (8, &[][..])]);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]).err(), Some(Error::TooShort));
        assert_eq!(RtpPacket::parse(&[0x40; 12]).err(), Some(Error::BadVersion));
        let mut p = vec![0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(RtpPacket::parse(&p).err(), Some(Error::BadCsrcCount));
        p[0] = 0x90;
        assert_eq!(RtpPacket::parse(&p).err(), Some(Error::BadExtension));
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1]);
        assert_eq!(RtpPacket::parse(&p).err(), Some(Error::BadExtension));
        p[0] = 0xA0;
        p.truncate(12);
        p.push(0);
        assert_eq!(
            RtpPacket::parse(&p).unwrap().padding_len(),
            Err(Error::BadPadding)
        );
        p[12] = 2;
        assert_eq!(
            RtpPacket::parse(&p).unwrap().padding_len(),
            Err(Error::BadPadding)
        );
    }

    #[test]
    fn rewrites_in_place() {
        let mut p = pkt_with_ext_and_csrc();
        let mut m = RtpPacketMut::parse(&mut p).unwrap();
        m.set_sequence(7);
        m.set_timestamp(0x01020304);
        m.set_ssrc(42);
        m.set_payload_type(0);
        m.set_marker(false);
        m.payload_mut().unwrap()[0] = 9;
        let r = RtpPacket::parse(&p).unwrap();
        assert_eq!(
            (
                r.sequence(),
                r.timestamp(),
                r.ssrc(),
                r.payload_type(),
                r.marker()
            ),
            (7, 0x01020304, 42, 0, false)
        );
        assert_eq!(r.payload().unwrap()[0], 9);
        assert_eq!(r.csrcs().count(), 2, "CSRCs untouched");
    }

    #[test]
    fn writes_fixed_header() {
        let mut out = [0u8; 20];
        let h = FixedHeader {
            marker: true,
            payload_type: 111,
            sequence: 65535,
            timestamp: 960,
            ssrc: 5,
        };
        assert_eq!(h.write(&mut out), Ok(12));
        let r = RtpPacket::parse(&out).unwrap();
        assert_eq!(r.payload_type(), 111);
        assert!(r.marker());
        assert_eq!(r.sequence(), 65535);
        assert_eq!(h.write(&mut out[..11]), Err(Error::BufferTooSmall));
    }
}
