//! RTCP packet views and writers (RFC 3550 §6, RFC 4585, RFC 5104, RFC 5506).
//!
//! # Reading
//!
//! [`packets`] walks a compound packet and yields one [`RtcpPacket`] per
//! RTCP packet. It checks that every packet has version 2, that every length
//! field fits and that the packets tile the buffer exactly: a truncated
//! packet or trailing bytes yield an `Err` and end the walk. It does *not*
//! require the compound packet to start with an SR or RR, so reduced-size
//! RTCP (RFC 5506, e.g. a lone PLI or NACK) parses too; use
//! [`is_reduced_size`] or [`validate`] when the distinction matters.
//!
//! [`RtcpPacket::view`] (or the [`views`] walk) turns a packet into a typed
//! [`RtcpView`]: SR, RR, SDES, BYE, APP, generic NACK, PLI, FIR. Packet types
//! and feedback formats not listed come back as [`RtcpView::Other`] carrying
//! the raw packet, not as an error. The typed views check their internal
//! structure once when created, so their iterators are infallible.
//!
//! # Rewriting
//!
//! [`packets_mut`] yields [`RtcpPacketMut`] views that rewrite SSRC fields in
//! place: [`RtcpPacketMut::set_sender_ssrc`],
//! [`RtcpPacketMut::set_media_ssrc`],
//! [`RtcpPacketMut::set_report_block_ssrc`], and the general
//! [`RtcpPacketMut::map_ssrcs`] that visits every SSRC field of a packet with
//! its role. Lengths never change, so SRTCP can protect the result directly.
//!
//! # Writing
//!
//! [`write_nack`], [`write_pli`], [`write_fir`], [`write_rr`], [`write_sr`]
//! and [`write_sdes_cname`] write one packet at the start of a caller-provided
//! buffer and return its length; write several back to back to build a
//! compound packet. None of them allocates.
//!
//! # Padding
//!
//! When a packet's P bit is set its last byte counts the padding octets,
//! which are excluded from the typed views (RFC 3550 §6.4.1). Padding is
//! accepted on any packet of a compound, not only the last.

use crate::Error;

/// Size of the common RTCP header (V, P, count, PT, length).
pub const HEADER_LEN: usize = 4;

/// Sender report (RFC 3550 §6.4.1).
pub const PT_SR: u8 = 200;
/// Receiver report (RFC 3550 §6.4.2).
pub const PT_RR: u8 = 201;
/// Source description (RFC 3550 §6.5).
pub const PT_SDES: u8 = 202;
/// Goodbye (RFC 3550 §6.6).
pub const PT_BYE: u8 = 203;
/// Application-defined (RFC 3550 §6.7).
pub const PT_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585 §6.2).
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585 §6.3).
pub const PT_PSFB: u8 = 206;
/// Extended reports (RFC 3611); parsed as [`RtcpView::Other`].
pub const PT_XR: u8 = 207;

/// RTPFB format of the generic NACK (RFC 4585 §6.2.1).
pub const FMT_NACK: u8 = 1;
/// PSFB format of the picture loss indication (RFC 4585 §6.3.1).
pub const FMT_PLI: u8 = 1;
/// PSFB format of the full intra request (RFC 5104 §4.3.1).
pub const FMT_FIR: u8 = 4;

/// SDES item type that ends a chunk's item list.
pub const SDES_END: u8 = 0;
/// SDES canonical end-point identifier (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

/// Size of a report block in SR and RR.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Size of the sender info in an SR (NTP, RTP timestamp, counts).
pub const SENDER_INFO_LEN: usize = 20;
/// Size of a feedback message header (common header plus the two SSRCs).
pub const FEEDBACK_HEADER_LEN: usize = 12;
/// Size of one FIR entry (SSRC, sequence number, reserved).
pub const FIR_ENTRY_LEN: usize = 8;
/// Largest report count (5-bit field).
pub const MAX_REPORT_BLOCKS: usize = 31;

// Byte readers for offsets the caller has already checked against the
// buffer length; an out-of-range offset here is a bug in this module.
#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Checks the common header at the start of `buf` and returns the packet's
/// length in bytes, including its padding.
#[inline]
fn packet_len(buf: &[u8]) -> Result<usize, Error> {
    if buf.len() < HEADER_LEN {
        return Err(Error::TooShort);
    }
    if buf[0] >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    let len = (usize::from(be16(buf, 2)) + 1) * 4;
    if len > buf.len() {
        return Err(Error::BadLength);
    }
    Ok(len)
}

/// End of a packet's content, excluding its padding.
#[inline]
fn content_end(pkt: &[u8]) -> Result<usize, Error> {
    if pkt[0] & 0x20 == 0 {
        return Ok(pkt.len());
    }
    let pad = usize::from(pkt[pkt.len() - 1]);
    if pad == 0 || pad > pkt.len() - HEADER_LEN {
        return Err(Error::BadPadding);
    }
    Ok(pkt.len() - pad)
}

/// Walks the packets of a compound (or reduced-size) RTCP packet.
pub fn packets(buf: &[u8]) -> Packets<'_> {
    Packets {
        rest: buf,
        first: true,
    }
}

/// Walks the packets of a compound packet as typed views: [`packets`]
/// followed by [`RtcpPacket::view`].
pub fn views(buf: &[u8]) -> Views<'_> {
    Views {
        inner: packets(buf),
    }
}

/// Walks the packets of a compound packet for in-place rewriting.
pub fn packets_mut(buf: &mut [u8]) -> PacketsMut<'_> {
    PacketsMut {
        rest: buf,
        first: true,
    }
}

/// True when `buf` does not start with an SR or RR, i.e. it can only be a
/// reduced-size RTCP packet (RFC 5506 §3.4). Looks at the first header only.
#[inline]
pub fn is_reduced_size(buf: &[u8]) -> bool {
    !matches!(buf.get(1), Some(&(PT_SR | PT_RR)))
}

/// What [`validate`] found in a well-formed RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompoundSummary {
    /// Number of RTCP packets.
    pub packets: usize,
    /// The first packet is neither SR nor RR (RFC 5506 reduced-size).
    pub reduced_size: bool,
}

/// Checks a whole compound packet: tiling and the internal structure of
/// every typed view. An empty buffer is [`Error::TooShort`].
pub fn validate(buf: &[u8]) -> Result<CompoundSummary, Error> {
    if buf.is_empty() {
        return Err(Error::TooShort);
    }
    let mut n = 0;
    for v in views(buf) {
        v?;
        n += 1;
    }
    Ok(CompoundSummary {
        packets: n,
        reduced_size: is_reduced_size(buf),
    })
}

/// Iterator over the packets of a compound packet; see [`packets`].
///
/// After the first `Err` it yields nothing more.
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    rest: &'a [u8],
    first: bool,
}

/// Splits the next packet off `rest`, turning a short tail after the first
/// packet into [`Error::BadLength`] (trailing bytes).
#[inline]
fn split_packet(rest: &[u8], first: bool) -> Result<(usize, usize), Error> {
    let len = match packet_len(rest) {
        Err(Error::TooShort) if !first => return Err(Error::BadLength),
        r => r?,
    };
    let end = content_end(&rest[..len])?;
    Ok((len, end))
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<RtcpPacket<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let first = core::mem::replace(&mut self.first, false);
        match split_packet(self.rest, first) {
            Ok((len, end)) => {
                let (pkt, tail) = self.rest.split_at(len);
                self.rest = tail;
                Some(Ok(RtcpPacket { buf: pkt, end }))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for Packets<'_> {}

/// Iterator over typed views of a compound packet; see [`views`].
#[derive(Debug, Clone)]
pub struct Views<'a> {
    inner: Packets<'a>,
}

impl<'a> Iterator for Views<'a> {
    type Item = Result<RtcpView<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.inner.next()?.and_then(|p| p.view());
        if r.is_err() {
            self.inner.rest = &[];
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for Views<'_> {}

/// One RTCP packet with a valid common header.
#[derive(Debug, Clone, Copy)]
pub struct RtcpPacket<'a> {
    buf: &'a [u8],
    /// End of the content (before padding).
    end: usize,
}

impl<'a> RtcpPacket<'a> {
    /// Parses a single RTCP packet that must fill `buf` exactly.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let (len, end) = split_packet(buf, true)?;
        if len != buf.len() {
            return Err(Error::BadLength);
        }
        Ok(Self { buf, end })
    }

    /// The whole packet, header and padding included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// The P bit.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }
    /// Number of padding bytes at the end.
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.end
    }
    /// The 5-bit count field: report count, source count, APP subtype or
    /// feedback message type (FMT) depending on the packet type.
    pub fn count(&self) -> u8 {
        self.buf[0] & 0x1F
    }
    /// Alias of [`count`](Self::count) for feedback packets.
    pub fn fmt(&self) -> u8 {
        self.count()
    }
    /// The packet type.
    pub fn packet_type(&self) -> u8 {
        self.buf[1]
    }
    /// The length field: packet length in 32-bit words minus one.
    pub fn length_words(&self) -> u16 {
        be16(self.buf, 2)
    }
    /// Bytes after the common header, padding excluded.
    pub fn body(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..self.end]
    }
    /// Bytes 4..8 when present: the sender's SSRC for SR, RR, APP and the
    /// feedback packets (and XR and most other types); the first chunk's or
    /// first source's SSRC for SDES and BYE.
    pub fn sender_ssrc(&self) -> Option<u32> {
        (self.end >= 8).then(|| be32(self.buf, 4))
    }

    /// The typed view of this packet. Unknown types and formats are
    /// [`RtcpView::Other`]; known ones whose structure disagrees with their
    /// length are an error.
    pub fn view(&self) -> Result<RtcpView<'a>, Error> {
        let p = *self;
        Ok(match (p.packet_type(), p.count()) {
            (PT_SR, _) => RtcpView::SenderReport(SenderReport::new(p)?),
            (PT_RR, _) => RtcpView::ReceiverReport(ReceiverReport::new(p)?),
            (PT_SDES, _) => RtcpView::Sdes(Sdes::new(p)?),
            (PT_BYE, _) => RtcpView::Bye(Bye::new(p)?),
            (PT_APP, _) => RtcpView::App(App::new(p)?),
            (PT_RTPFB, FMT_NACK) => RtcpView::Nack(Nack::new(p)?),
            (PT_PSFB, FMT_PLI) => RtcpView::Pli(Pli::new(p)?),
            (PT_PSFB, FMT_FIR) => RtcpView::Fir(Fir::new(p)?),
            _ => RtcpView::Other(p),
        })
    }
}

/// A typed RTCP packet.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RtcpView<'a> {
    /// SR, PT 200.
    SenderReport(SenderReport<'a>),
    /// RR, PT 201.
    ReceiverReport(ReceiverReport<'a>),
    /// SDES, PT 202.
    Sdes(Sdes<'a>),
    /// BYE, PT 203.
    Bye(Bye<'a>),
    /// APP, PT 204.
    App(App<'a>),
    /// RTPFB generic NACK, PT 205 FMT 1.
    Nack(Nack<'a>),
    /// PSFB picture loss indication, PT 206 FMT 1.
    Pli(Pli<'a>),
    /// PSFB full intra request, PT 206 FMT 4.
    Fir(Fir<'a>),
    /// Any other packet type or feedback format, raw.
    Other(RtcpPacket<'a>),
}

impl<'a> RtcpView<'a> {
    /// The underlying packet.
    pub fn packet(&self) -> RtcpPacket<'a> {
        match self {
            RtcpView::SenderReport(v) => v.pkt,
            RtcpView::ReceiverReport(v) => v.pkt,
            RtcpView::Sdes(v) => v.pkt,
            RtcpView::Bye(v) => v.pkt,
            RtcpView::App(v) => v.pkt,
            RtcpView::Nack(v) => v.pkt,
            RtcpView::Pli(v) => v.pkt,
            RtcpView::Fir(v) => v.pkt,
            RtcpView::Other(p) => *p,
        }
    }
}

// ---------------------------------------------------------------------------
// Reports

/// The sender info of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (seconds in the high word, fraction in the low).
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to the NTP timestamp.
    pub rtp_timestamp: u32,
    /// Sender's packet count.
    pub packet_count: u32,
    /// Sender's octet count.
    pub octet_count: u32,
}

impl SenderInfo {
    fn read(b: &[u8], at: usize) -> Self {
        Self {
            ntp_timestamp: (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4)),
            rtp_timestamp: be32(b, at + 8),
            packet_count: be32(b, at + 12),
            octet_count: be32(b, at + 16),
        }
    }

    fn write(&self, b: &mut [u8], at: usize) {
        b[at..at + 8].copy_from_slice(&self.ntp_timestamp.to_be_bytes());
        put32(b, at + 8, self.rtp_timestamp);
        put32(b, at + 12, self.packet_count);
        put32(b, at + 16, self.octet_count);
    }
}

/// A reception report block of an SR or RR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// SSRC of the source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative number of packets lost, a signed 24-bit value (duplicates
    /// can make it negative). Writers clamp it to -2^23..=2^23-1.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub ext_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 seconds.
    pub dlsr: u32,
}

/// Smallest cumulative-lost value a report block can carry.
pub const CUMULATIVE_LOST_MIN: i32 = -(1 << 23);
/// Largest cumulative-lost value a report block can carry.
pub const CUMULATIVE_LOST_MAX: i32 = (1 << 23) - 1;

impl ReportBlock {
    /// Reads a block from the first 24 bytes of `b`, if there are that many.
    pub fn read(b: &[u8]) -> Option<Self> {
        let b = b.get(..REPORT_BLOCK_LEN)?;
        let lost = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        Some(Self {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            // Sign-extend the low 24 bits.
            cumulative_lost: ((lost << 8) as i32) >> 8,
            ext_highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            lsr: be32(b, 16),
            dlsr: be32(b, 20),
        })
    }

    /// Writes the block into the first 24 bytes of `out`.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, Error> {
        let b = out
            .get_mut(..REPORT_BLOCK_LEN)
            .ok_or(Error::BufferTooSmall)?;
        let lost = self
            .cumulative_lost
            .clamp(CUMULATIVE_LOST_MIN, CUMULATIVE_LOST_MAX) as u32
            & 0x00FF_FFFF;
        put32(b, 0, self.ssrc);
        put32(b, 4, (u32::from(self.fraction_lost) << 24) | lost);
        put32(b, 8, self.ext_highest_seq);
        put32(b, 12, self.jitter);
        put32(b, 16, self.lsr);
        put32(b, 20, self.dlsr);
        Ok(REPORT_BLOCK_LEN)
    }
}

/// Iterator over report blocks.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        self.chunks.next().and_then(ReportBlock::read)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// Checks that `count` report blocks fit after `at` and returns where they
/// end.
fn blocks_end(p: &RtcpPacket<'_>, at: usize) -> Result<usize, Error> {
    let end = at + REPORT_BLOCK_LEN * usize::from(p.count());
    if end > p.end {
        return Err(Error::BadLength);
    }
    Ok(end)
}

/// Sender report view.
#[derive(Debug, Clone, Copy)]
pub struct SenderReport<'a> {
    pkt: RtcpPacket<'a>,
    blocks_end: usize,
}

const SR_BLOCKS_AT: usize = 8 + SENDER_INFO_LEN;
const RR_BLOCKS_AT: usize = 8;

impl<'a> SenderReport<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        let blocks_end = blocks_end(&pkt, SR_BLOCKS_AT)?;
        Ok(Self { pkt, blocks_end })
    }
    /// The underlying packet.
    pub fn packet(&self) -> RtcpPacket<'a> {
        self.pkt
    }
    /// SSRC of the sender.
    pub fn ssrc(&self) -> u32 {
        be32(self.pkt.buf, 4)
    }
    /// The sender info.
    pub fn sender_info(&self) -> SenderInfo {
        SenderInfo::read(self.pkt.buf, 8)
    }
    /// The report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks {
            chunks: self.pkt.buf[SR_BLOCKS_AT..self.blocks_end].chunks_exact(REPORT_BLOCK_LEN),
        }
    }
    /// Profile-specific extension after the report blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        &self.pkt.buf[self.blocks_end..self.pkt.end]
    }
}

/// Receiver report view.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverReport<'a> {
    pkt: RtcpPacket<'a>,
    blocks_end: usize,
}

impl<'a> ReceiverReport<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        let blocks_end = blocks_end(&pkt, RR_BLOCKS_AT)?;
        Ok(Self { pkt, blocks_end })
    }
    /// The underlying packet.
    pub fn packet(&self) -> RtcpPacket<'a> {
        self.pkt
    }
    /// SSRC of the packet's sender.
    pub fn ssrc(&self) -> u32 {
        be32(self.pkt.buf, 4)
    }
    /// The report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks {
            chunks: self.pkt.buf[RR_BLOCKS_AT..self.blocks_end].chunks_exact(REPORT_BLOCK_LEN),
        }
    }
    /// Profile-specific extension after the report blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        &self.pkt.buf[self.blocks_end..self.pkt.end]
    }
}

// ---------------------------------------------------------------------------
// SDES

/// Splits one SDES chunk off the start of `b` (4-byte aligned): returns the
/// length of its item list (before the terminating null item) and of the
/// whole chunk including the null padding.
fn split_chunk(b: &[u8]) -> Result<(usize, usize), Error> {
    if b.len() < 8 {
        return Err(Error::BadLength);
    }
    let mut at = 4;
    loop {
        match b.get(at) {
            None => return Err(Error::BadLength),
            Some(&SDES_END) => {
                let chunk = (at + 1).next_multiple_of(4);
                if chunk > b.len() {
                    return Err(Error::BadLength);
                }
                return Ok((at - 4, chunk));
            }
            Some(_) => {
                let len = usize::from(*b.get(at + 1).ok_or(Error::BadLength)?);
                at += 2 + len;
            }
        }
    }
}

/// SDES view: a list of chunks, one per source.
#[derive(Debug, Clone, Copy)]
pub struct Sdes<'a> {
    pkt: RtcpPacket<'a>,
}

impl<'a> Sdes<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        let mut rest = pkt.body();
        for _ in 0..pkt.count() {
            let (_, chunk) = split_chunk(rest)?;
            rest = &rest[chunk..];
        }
        if !rest.is_empty() {
            return Err(Error::BadLength);
        }
        Ok(Self { pkt })
    }
    /// The underlying packet.
    pub fn packet(&self) -> RtcpPacket<'a> {
        self.pkt
    }
    /// The chunks.
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            rest: self.pkt.body(),
        }
    }
}

/// Iterator over SDES chunks.
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;

    fn next(&mut self) -> Option<SdesChunk<'a>> {
        // Validated by `Sdes::new`; stop quietly rather than panic.
        let (items, chunk) = split_chunk(self.rest).ok()?;
        let c = SdesChunk {
            ssrc: be32(self.rest, 0),
            items: &self.rest[4..4 + items],
        };
        self.rest = &self.rest[chunk..];
        Some(c)
    }
}

/// One SDES chunk: an SSRC/CSRC and its items.
#[derive(Debug, Clone, Copy)]
pub struct SdesChunk<'a> {
    ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The SSRC or CSRC the items describe.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }
    /// The items, in order.
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems { rest: self.items }
    }
    /// The first CNAME item's value, if any.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|i| i.kind == SDES_CNAME).map(|i| i.value)
    }
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (1 CNAME, 2 NAME, ... 8 PRIV).
    pub kind: u8,
    /// Item value (UTF-8 text for the standard items; not checked).
    pub value: &'a [u8],
}

/// Iterator over the items of an SDES chunk.
#[derive(Debug, Clone)]
pub struct SdesItems<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        let (&kind, rest) = self.rest.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let value = rest.get(..usize::from(len))?;
        self.rest = &rest[value.len()..];
        Some(SdesItem { kind, value })
    }
}

// ---------------------------------------------------------------------------
// BYE and APP

/// BYE view: the sources leaving and an optional reason.
#[derive(Debug, Clone, Copy)]
pub struct Bye<'a> {
    pkt: RtcpPacket<'a>,
}

impl<'a> Bye<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        let body = pkt.body();
        let ssrcs = 4 * usize::from(pkt.count());
        let Some(rest) = body.get(ssrcs..) else {
            return Err(Error::BadLength);
        };
        if let Some((&len, text)) = rest.split_first() {
            let len = usize::from(len);
            // The reason is padded with up to three bytes to a word.
            if len > text.len() || text.len() - len >= 4 {
                return Err(Error::BadLength);
            }
        }
        Ok(Self { pkt })
    }
    /// The underlying packet.
    pub fn packet(&self) -> RtcpPacket<'a> {
        self.pkt
    }
    /// The SSRC/CSRCs leaving.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let n = 4 * usize::from(self.pkt.count());
        self.pkt.body()[..n].chunks_exact(4).map(|c| be32(c, 0))
    }
    /// The reason for leaving, if given.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let n = 4 * usize::from(self.pkt.count());
        let (&len, text) = self.pkt.body()[n..].split_first()?;
        text.get(..usize::from(len))
    }
}

/// APP view.
#[derive(Debug, Clone, Copy)]
pub struct App<'a> {
    pkt: RtcpPacket<'a>,
}

impl<'a> App<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        if pkt.end < 12 {
            return Err(Error::BadLength);
        }
        Ok(Self { pkt })
    }
    /// The underlying packet.
    pub fn packet(&self) -> RtcpPacket<'a> {
        self.pkt
    }
    /// The subtype (the count field).
    pub fn subtype(&self) -> u8 {
        self.pkt.count()
    }
    /// SSRC/CSRC of the sender.
    pub fn ssrc(&self) -> u32 {
        be32(self.pkt.buf, 4)
    }
    /// The four-character name.
    pub fn name(&self) -> [u8; 4] {
        let b = self.pkt.buf;
        [b[8], b[9], b[10], b[11]]
    }
    /// Application-dependent data.
    pub fn data(&self) -> &'a [u8] {
        &self.pkt.buf[12..self.pkt.end]
    }
}

// ---------------------------------------------------------------------------
// Feedback (RFC 4585, RFC 5104)

/// Checks the feedback header and that the FCI is a whole number of
/// `entry`-byte entries (at least `min_entries` of them).
fn feedback_fci(pkt: &RtcpPacket<'_>, entry: usize, min_entries: usize) -> Result<(), Error> {
    if pkt.end < FEEDBACK_HEADER_LEN {
        return Err(Error::BadLength);
    }
    let fci = pkt.end - FEEDBACK_HEADER_LEN;
    let ok = match (fci.checked_div(entry), fci.checked_rem(entry)) {
        (Some(n), Some(0)) => n >= min_entries,
        (Some(_), Some(_)) => false,
        // `entry == 0`: a format without FCI.
        _ => fci == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::BadLength)
    }
}

/// The FCI of a feedback packet already checked by [`feedback_fci`].
fn fci<'a>(pkt: &RtcpPacket<'a>) -> &'a [u8] {
    &pkt.buf[FEEDBACK_HEADER_LEN..pkt.end]
}

macro_rules! feedback_accessors {
    () => {
        /// The underlying packet.
        pub fn packet(&self) -> RtcpPacket<'a> {
            self.pkt
        }
        /// SSRC of the packet sender.
        pub fn sender_ssrc(&self) -> u32 {
            be32(self.pkt.buf, 4)
        }
        /// SSRC of the media source the feedback is about.
        pub fn media_ssrc(&self) -> u32 {
            be32(self.pkt.buf, 8)
        }
    };
}

/// Generic NACK view (RTPFB FMT 1): one or more (PID, BLP) entries.
#[derive(Debug, Clone, Copy)]
pub struct Nack<'a> {
    pkt: RtcpPacket<'a>,
}

impl<'a> Nack<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        feedback_fci(&pkt, 4, 1)?;
        Ok(Self { pkt })
    }
    feedback_accessors!();

    /// The (PID, BLP) entries.
    pub fn entries(&self) -> NackEntries<'a> {
        NackEntries {
            chunks: fci(&self.pkt).chunks_exact(4),
        }
    }
    /// Every sequence number reported lost, entry by entry, PID first and
    /// then the BLP bits from least significant. Entries are not merged, so
    /// overlapping entries repeat numbers. Does not allocate.
    pub fn lost_seqs(&self) -> LostSeqs<'a> {
        LostSeqs {
            entries: self.entries(),
            pid: 0,
            mask: 0,
        }
    }
}

/// One generic NACK entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NackEntry {
    /// Packet ID: a lost sequence number.
    pub pid: u16,
    /// Bitmask of following lost packets: bit i set means `pid + i + 1` is
    /// lost too.
    pub blp: u16,
}

impl NackEntry {
    /// The sequence numbers this entry reports lost (1 to 17 of them).
    pub fn seqs(&self) -> LostSeqs<'static> {
        let empty: &'static [u8] = &[];
        LostSeqs {
            entries: NackEntries {
                chunks: empty.chunks_exact(4),
            },
            pid: self.pid,
            mask: 1 | (u32::from(self.blp) << 1),
        }
    }
}

/// Iterator over generic NACK entries.
#[derive(Debug, Clone)]
pub struct NackEntries<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for NackEntries<'_> {
    type Item = NackEntry;

    fn next(&mut self) -> Option<NackEntry> {
        let c = self.chunks.next()?;
        Some(NackEntry {
            pid: be16(c, 0),
            blp: be16(c, 2),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for NackEntries<'_> {}

/// Iterator over the sequence numbers a generic NACK reports lost.
#[derive(Debug, Clone)]
pub struct LostSeqs<'a> {
    entries: NackEntries<'a>,
    pid: u16,
    /// Bit i set: `pid + i` still to yield.
    mask: u32,
}

impl Iterator for LostSeqs<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        while self.mask == 0 {
            let e = self.entries.next()?;
            self.pid = e.pid;
            self.mask = 1 | (u32::from(e.blp) << 1);
        }
        let i = self.mask.trailing_zeros();
        self.mask &= self.mask - 1;
        Some(self.pid.wrapping_add(i as u16))
    }
}

impl core::iter::FusedIterator for LostSeqs<'_> {}

/// Picture loss indication view (PSFB FMT 1); it has no FCI.
#[derive(Debug, Clone, Copy)]
pub struct Pli<'a> {
    pkt: RtcpPacket<'a>,
}

impl<'a> Pli<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        feedback_fci(&pkt, 0, 0)?;
        Ok(Self { pkt })
    }
    feedback_accessors!();
}

/// Full intra request view (PSFB FMT 4). The media SSRC field is unused
/// (zero); the targets are in the entries.
#[derive(Debug, Clone, Copy)]
pub struct Fir<'a> {
    pkt: RtcpPacket<'a>,
}

impl<'a> Fir<'a> {
    fn new(pkt: RtcpPacket<'a>) -> Result<Self, Error> {
        feedback_fci(&pkt, FIR_ENTRY_LEN, 1)?;
        Ok(Self { pkt })
    }
    feedback_accessors!();

    /// The (SSRC, command sequence number) entries.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = FirEntry> + 'a {
        fci(&self.pkt)
            .chunks_exact(FIR_ENTRY_LEN)
            .map(|c| FirEntry {
                ssrc: be32(c, 0),
                seq_nr: c[4],
            })
    }
}

/// One FIR entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirEntry {
    /// SSRC of the media sender asked for a decoder refresh point.
    pub ssrc: u32,
    /// Command sequence number.
    pub seq_nr: u8,
}

// ---------------------------------------------------------------------------
// In-place rewriting

/// Iterator over mutable packets of a compound packet; see [`packets_mut`].
#[derive(Debug)]
pub struct PacketsMut<'a> {
    rest: &'a mut [u8],
    first: bool,
}

impl<'a> Iterator for PacketsMut<'a> {
    type Item = Result<RtcpPacketMut<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let first = core::mem::replace(&mut self.first, false);
        let rest = core::mem::take(&mut self.rest);
        match split_packet(rest, first) {
            Ok((len, end)) => {
                let (pkt, tail) = rest.split_at_mut(len);
                self.rest = tail;
                Some(Ok(RtcpPacketMut { buf: pkt, end }))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl core::iter::FusedIterator for PacketsMut<'_> {}

/// Which SSRC field [`RtcpPacketMut::map_ssrcs`] is visiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SsrcField {
    /// Sender SSRC of SR, RR, APP, feedback and unknown packet types.
    Sender,
    /// SSRC of the `n`th report block of an SR or RR.
    ReportBlock(usize),
    /// Media source SSRC of a feedback packet.
    Media,
    /// Target SSRC of the `n`th FIR entry.
    FirEntry(usize),
    /// SSRC/CSRC of the `n`th SDES chunk.
    SdesChunk(usize),
    /// The `n`th SSRC/CSRC of a BYE.
    Bye(usize),
}

/// One RTCP packet, mutably borrowed for rewriting SSRC fields.
#[derive(Debug)]
pub struct RtcpPacketMut<'a> {
    buf: &'a mut [u8],
    end: usize,
}

impl<'a> RtcpPacketMut<'a> {
    /// Parses a single RTCP packet that must fill `buf` exactly.
    pub fn parse(buf: &'a mut [u8]) -> Result<Self, Error> {
        let end = RtcpPacket::parse(buf)?.end;
        Ok(Self { buf, end })
    }

    /// A read-only view of the same packet.
    pub fn as_ref(&self) -> RtcpPacket<'_> {
        RtcpPacket {
            buf: self.buf,
            end: self.end,
        }
    }
    /// The packet type.
    pub fn packet_type(&self) -> u8 {
        self.buf[1]
    }
    /// The whole packet.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buf
    }

    /// Sets bytes 4..8 (see [`RtcpPacket::sender_ssrc`]). For SDES and BYE
    /// this is the first chunk's or first source's SSRC. Fails with
    /// [`Error::TooShort`] when the packet has no such field.
    pub fn set_sender_ssrc(&mut self, ssrc: u32) -> Result<(), Error> {
        if self.end < 8 {
            return Err(Error::TooShort);
        }
        put32(self.buf, 4, ssrc);
        Ok(())
    }

    /// Sets the media source SSRC of an RTPFB or PSFB packet.
    pub fn set_media_ssrc(&mut self, ssrc: u32) -> Result<(), Error> {
        if !matches!(self.packet_type(), PT_RTPFB | PT_PSFB) {
            return Err(Error::Unsupported);
        }
        if self.end < FEEDBACK_HEADER_LEN {
            return Err(Error::TooShort);
        }
        put32(self.buf, 8, ssrc);
        Ok(())
    }

    /// Sets the SSRC of report block `i` of an SR or RR.
    pub fn set_report_block_ssrc(&mut self, i: usize, ssrc: u32) -> Result<(), Error> {
        let at = match self.packet_type() {
            PT_SR => SR_BLOCKS_AT,
            PT_RR => RR_BLOCKS_AT,
            _ => return Err(Error::Unsupported),
        };
        let end = blocks_end(&self.as_ref(), at)?;
        let pos = at + i * REPORT_BLOCK_LEN;
        if i >= MAX_REPORT_BLOCKS || pos >= end {
            return Err(Error::InvalidArgument);
        }
        put32(self.buf, pos, ssrc);
        Ok(())
    }

    /// Calls `f(field, old)` for every SSRC field of the packet and stores
    /// what it returns. The packet is validated first (as by
    /// [`RtcpPacket::view`]) and left untouched if invalid. Unknown packet
    /// types only have their [`SsrcField::Sender`] (bytes 4..8) visited.
    pub fn map_ssrcs(&mut self, mut f: impl FnMut(SsrcField, u32) -> u32) -> Result<(), Error> {
        let view = self.as_ref().view()?;
        let end = self.end;
        let mut map = |buf: &mut [u8], at: usize, field: SsrcField| {
            let new = f(field, be32(buf, at));
            put32(buf, at, new);
        };
        match view {
            RtcpView::SenderReport(_) | RtcpView::ReceiverReport(_) => {
                let at = if self.packet_type() == PT_SR {
                    SR_BLOCKS_AT
                } else {
                    RR_BLOCKS_AT
                };
                map(self.buf, 4, SsrcField::Sender);
                for i in 0..usize::from(self.buf[0] & 0x1F) {
                    map(
                        self.buf,
                        at + i * REPORT_BLOCK_LEN,
                        SsrcField::ReportBlock(i),
                    );
                }
            }
            RtcpView::Sdes(_) => {
                let mut at = HEADER_LEN;
                for i in 0..usize::from(self.buf[0] & 0x1F) {
                    let (_, chunk) = split_chunk(&self.buf[at..end])?;
                    map(self.buf, at, SsrcField::SdesChunk(i));
                    at += chunk;
                }
            }
            RtcpView::Bye(_) => {
                for i in 0..usize::from(self.buf[0] & 0x1F) {
                    map(self.buf, HEADER_LEN + 4 * i, SsrcField::Bye(i));
                }
            }
            RtcpView::App(_) => map(self.buf, 4, SsrcField::Sender),
            RtcpView::Nack(_) | RtcpView::Pli(_) => {
                map(self.buf, 4, SsrcField::Sender);
                map(self.buf, 8, SsrcField::Media);
            }
            RtcpView::Fir(_) => {
                map(self.buf, 4, SsrcField::Sender);
                map(self.buf, 8, SsrcField::Media);
                let n = (end - FEEDBACK_HEADER_LEN) / FIR_ENTRY_LEN;
                for i in 0..n {
                    map(
                        self.buf,
                        FEEDBACK_HEADER_LEN + i * FIR_ENTRY_LEN,
                        SsrcField::FirEntry(i),
                    );
                }
            }
            RtcpView::Other(_) => {
                if end >= 8 {
                    map(self.buf, 4, SsrcField::Sender);
                }
                if matches!(self.packet_type(), PT_RTPFB | PT_PSFB) && end >= 12 {
                    map(self.buf, 8, SsrcField::Media);
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Writers

/// Writes the common header for a packet of `len` bytes (a multiple of 4).
fn write_header(out: &mut [u8], count: u8, pt: u8, len: usize) -> Result<(), Error> {
    debug_assert!(len & 3 == 0 && len >= HEADER_LEN);
    let words = u16::try_from(len / 4 - 1).map_err(|_| Error::InvalidArgument)?;
    out[0] = 0x80 | (count & 0x1F);
    out[1] = pt;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

/// Writes a generic NACK (RTPFB FMT 1) reporting `seqs` lost and returns
/// its length.
///
/// Each number either joins the current entry (when it lies 1..=16 after
/// its PID) or starts a new one, so an ascending (wrap-aware) list packs
/// optimally; any order is still reported correctly, just less compactly.
/// Repeats of the current PID are skipped. An empty list is
/// [`Error::InvalidArgument`].
pub fn write_nack<I>(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    seqs: I,
) -> Result<usize, Error>
where
    I: IntoIterator<Item = u16>,
{
    if out.len() < FEEDBACK_HEADER_LEN {
        return Err(Error::BufferTooSmall);
    }
    let mut len = FEEDBACK_HEADER_LEN;
    let mut cur: Option<NackEntry> = None;
    let flush = |out: &mut [u8], e: NackEntry, len: &mut usize| -> Result<(), Error> {
        let slot = out.get_mut(*len..*len + 4).ok_or(Error::BufferTooSmall)?;
        slot[..2].copy_from_slice(&e.pid.to_be_bytes());
        slot[2..].copy_from_slice(&e.blp.to_be_bytes());
        *len += 4;
        Ok(())
    };
    for seq in seqs {
        if let Some(e) = cur.as_mut() {
            let d = seq.wrapping_sub(e.pid);
            if d == 0 {
                continue;
            }
            if d <= 16 {
                e.blp |= 1 << (d - 1);
                continue;
            }
            flush(out, *e, &mut len)?;
        }
        cur = Some(NackEntry { pid: seq, blp: 0 });
    }
    let Some(e) = cur else {
        return Err(Error::InvalidArgument);
    };
    flush(out, e, &mut len)?;
    write_header(out, FMT_NACK, PT_RTPFB, len)?;
    put32(out, 4, sender_ssrc);
    put32(out, 8, media_ssrc);
    Ok(len)
}

/// Writes a picture loss indication (PSFB FMT 1) and returns 12.
pub fn write_pli(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Result<usize, Error> {
    let out = out
        .get_mut(..FEEDBACK_HEADER_LEN)
        .ok_or(Error::BufferTooSmall)?;
    write_header(out, FMT_PLI, PT_PSFB, FEEDBACK_HEADER_LEN)?;
    put32(out, 4, sender_ssrc);
    put32(out, 8, media_ssrc);
    Ok(FEEDBACK_HEADER_LEN)
}

/// Writes a full intra request (PSFB FMT 4) with the given entries (media
/// SSRC zero, RFC 5104 §4.3.1.2) and returns its length. No entries is
/// [`Error::InvalidArgument`].
pub fn write_fir(out: &mut [u8], sender_ssrc: u32, entries: &[FirEntry]) -> Result<usize, Error> {
    if entries.is_empty() {
        return Err(Error::InvalidArgument);
    }
    let len = FEEDBACK_HEADER_LEN + FIR_ENTRY_LEN * entries.len();
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    write_header(out, FMT_FIR, PT_PSFB, len)?;
    put32(out, 4, sender_ssrc);
    put32(out, 8, 0);
    for (e, b) in entries
        .iter()
        .zip(out[FEEDBACK_HEADER_LEN..].chunks_exact_mut(FIR_ENTRY_LEN))
    {
        put32(b, 0, e.ssrc);
        b[4..].copy_from_slice(&[e.seq_nr, 0, 0, 0]);
    }
    Ok(len)
}

fn write_blocks(out: &mut [u8], blocks: &[ReportBlock]) -> Result<(), Error> {
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(REPORT_BLOCK_LEN)) {
        b.write(o)?;
    }
    Ok(())
}

/// Writes a receiver report with up to 31 report blocks and returns its
/// length.
pub fn write_rr(out: &mut [u8], ssrc: u32, blocks: &[ReportBlock]) -> Result<usize, Error> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(Error::InvalidArgument);
    }
    let len = RR_BLOCKS_AT + REPORT_BLOCK_LEN * blocks.len();
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    write_header(out, blocks.len() as u8, PT_RR, len)?;
    put32(out, 4, ssrc);
    write_blocks(&mut out[RR_BLOCKS_AT..], blocks)?;
    Ok(len)
}

/// Writes a sender report with up to 31 report blocks and returns its
/// length.
pub fn write_sr(
    out: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, Error> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(Error::InvalidArgument);
    }
    let len = SR_BLOCKS_AT + REPORT_BLOCK_LEN * blocks.len();
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    write_header(out, blocks.len() as u8, PT_SR, len)?;
    put32(out, 4, ssrc);
    info.write(out, 8);
    write_blocks(&mut out[SR_BLOCKS_AT..], blocks)?;
    Ok(len)
}

/// Writes an SDES packet with one chunk holding a CNAME item and returns
/// its length. A CNAME longer than 255 bytes is [`Error::InvalidArgument`].
pub fn write_sdes_cname(out: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, Error> {
    let n = u8::try_from(cname.len()).map_err(|_| Error::InvalidArgument)?;
    // Header, SSRC, type, length, text, then at least one null octet.
    let len = (HEADER_LEN + 4 + 2 + cname.len() + 1).next_multiple_of(4);
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    write_header(out, 1, PT_SDES, len)?;
    put32(out, 4, ssrc);
    out[8] = SDES_CNAME;
    out[9] = n;
    out[10..10 + cname.len()].copy_from_slice(cname);
    out[10 + cname.len()..].fill(0);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// SR with one block + SDES CNAME + generic NACK, hand-assembled.
    fn compound() -> Vec<u8> {
        let mut p = vec![
            0x81, 200, 0, 12, // SR, RC=1, 13 words
            0x11, 0x22, 0x33, 0x44, // SSRC
            0xE0, 0, 0, 1, 0x80, 0, 0, 0, // NTP
            0, 0, 0x03, 0xC0, // RTP ts 960
            0, 0, 0, 10, // packet count
            0, 0, 0x06, 0xB8, // octet count 1720
            0xAA, 0xBB, 0xCC, 0xDD, // block ssrc
            0x40, 0xFF, 0xFF, 0xFE, // fraction 64, cumulative -2
            0, 1, 0, 5, // ext highest seq
            0, 0, 0, 7, // jitter
            1, 2, 3, 4, // lsr
            0, 0, 0x80, 0, // dlsr
        ];
        p.extend_from_slice(&[
            0x81, 202, 0, 3, // SDES SC=1, 4 words
            0x11, 0x22, 0x33, 0x44, // ssrc
            1, 5, b'a', b'b', b'c', b'd', b'e', 0, // CNAME "abcde" + end
        ]);
        p.extend_from_slice(&[
            0x81, 205, 0, 3, // RTPFB NACK, 4 words
            0x11, 0x22, 0x33, 0x44, // sender
            0xAA, 0xBB, 0xCC, 0xDD, // media
            0xFF, 0xFE, 0x00, 0x05, // pid 65534, blp bits 0 and 2
        ]);
        p
    }

    #[test]
    fn walks_compound() {
        let p = compound();
        let v: Vec<_> = views(&p).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 3);
        let RtcpView::SenderReport(sr) = v[0] else {
            panic!("not SR")
        };
        assert_eq!(sr.ssrc(), 0x11223344);
        let si = sr.sender_info();
        assert_eq!(si.ntp_timestamp, 0xE000_0001_8000_0000);
        assert_eq!(
            (si.rtp_timestamp, si.packet_count, si.octet_count),
            (960, 10, 1720)
        );
        let blocks: Vec<_> = sr.report_blocks().collect();
        assert_eq!(
            blocks,
            vec![ReportBlock {
                ssrc: 0xAABBCCDD,
                fraction_lost: 64,
                cumulative_lost: -2,
                ext_highest_seq: 0x10005,
                jitter: 7,
                lsr: 0x01020304,
                dlsr: 0x8000,
            }]
        );
        assert!(sr.extension().is_empty());
        let RtcpView::Sdes(sdes) = v[1] else {
            panic!("not SDES")
        };
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].ssrc(), 0x11223344);
        assert_eq!(chunks[0].cname(), Some(&b"abcde"[..]));
        let RtcpView::Nack(nack) = v[2] else {
            panic!("not NACK")
        };
        assert_eq!(
            (nack.sender_ssrc(), nack.media_ssrc()),
            (0x11223344, 0xAABBCCDD)
        );
        assert_eq!(
            nack.lost_seqs().collect::<Vec<_>>(),
            vec![65534, 65535, 1],
            "BLP wraps past 65535"
        );
        assert_eq!(
            validate(&p),
            Ok(CompoundSummary {
                packets: 3,
                reduced_size: false
            })
        );
    }

    #[test]
    fn tiling_errors() {
        let p = compound();
        // Trailing bytes, short and long.
        for extra in [1usize, 3, 4, 7] {
            let mut q = p.clone();
            q.extend(std::iter::repeat_n(0x80, extra));
            assert!(
                matches!(packets(&q).last(), Some(Err(Error::BadLength))),
                "extra {extra}"
            );
            assert!(validate(&q).is_err());
        }
        // Overrun: truncate the last packet.
        let q = &p[..p.len() - 1];
        assert!(matches!(packets(q).last(), Some(Err(Error::BadLength))));
        // Bad version in the second packet.
        let mut q = p.clone();
        q[52] = 0x41;
        let r: Vec<_> = packets(&q).collect();
        assert_eq!(r.len(), 2);
        assert!(matches!(r[1], Err(Error::BadVersion)));
        // Too short overall.
        assert!(matches!(
            packets(&[0x80, 201]).next(),
            Some(Err(Error::TooShort))
        ));
        assert_eq!(validate(&[]), Err(Error::TooShort));
        // RtcpPacket::parse needs an exact fit.
        assert_eq!(RtcpPacket::parse(&p).err(), Some(Error::BadLength));
        assert!(RtcpPacket::parse(&p[52..68]).is_ok());
    }

    #[test]
    fn reduced_size_single_packets() {
        let mut b = [0u8; 64];
        let n = write_pli(&mut b, 1, 2).unwrap();
        assert_eq!(
            validate(&b[..n]),
            Ok(CompoundSummary {
                packets: 1,
                reduced_size: true
            })
        );
        let v = views(&b[..n]).next().unwrap().unwrap();
        let RtcpView::Pli(pli) = v else {
            panic!("not PLI")
        };
        assert_eq!((pli.sender_ssrc(), pli.media_ssrc()), (1, 2));
        let n = write_nack(&mut b, 3, 4, [10u16]).unwrap();
        assert!(is_reduced_size(&b[..n]));
        assert!(matches!(views(&b[..n]).next(), Some(Ok(RtcpView::Nack(_)))));
        let n = write_rr(&mut b, 3, &[]).unwrap();
        assert!(!is_reduced_size(&b[..n]));
    }

    #[test]
    fn padding() {
        // RR with 4 bytes of padding (P bit set, last byte 4).
        let p = [0xA0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4];
        let pkt = packets(&p).next().unwrap().unwrap();
        assert_eq!(pkt.padding_len(), 4);
        let RtcpView::ReceiverReport(rr) = pkt.view().unwrap() else {
            panic!("not RR")
        };
        assert_eq!(rr.ssrc(), 9);
        assert!(rr.extension().is_empty());
        let mut bad = p;
        bad[11] = 0;
        assert!(matches!(packets(&bad).next(), Some(Err(Error::BadPadding))));
        bad[11] = 9;
        assert!(matches!(packets(&bad).next(), Some(Err(Error::BadPadding))));
    }

    #[test]
    fn bye_app_fir_and_unknown() {
        let bye = [
            0x82, 203, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 4, b'g', b'o', b'n', b'e', 0, 0, 0,
        ];
        let RtcpView::Bye(b) = views(&bye).next().unwrap().unwrap() else {
            panic!("not BYE")
        };
        assert_eq!(b.ssrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(b.reason(), Some(&b"gone"[..]));
        let mut bad = bye;
        bad[12] = 8; // reason longer than the packet
        assert!(views(&bad).next().unwrap().is_err());
        let bye0 = [0x80, 203, 0, 0];
        let RtcpView::Bye(b) = views(&bye0).next().unwrap().unwrap() else {
            panic!("not BYE")
        };
        assert_eq!((b.ssrcs().len(), b.reason()), (0, None));

        let app = [
            0x85, 204, 0, 3, 0, 0, 0, 7, b'q', b'o', b'e', b'!', 1, 2, 3, 4,
        ];
        let RtcpView::App(a) = views(&app).next().unwrap().unwrap() else {
            panic!("not APP")
        };
        assert_eq!((a.subtype(), a.ssrc(), &a.name()), (5, 7, b"qoe!"));
        assert_eq!(a.data(), &[1, 2, 3, 4]);

        let mut b = [0u8; 64];
        let entries = [
            FirEntry { ssrc: 5, seq_nr: 1 },
            FirEntry {
                ssrc: 6,
                seq_nr: 255,
            },
        ];
        let n = write_fir(&mut b, 9, &entries).unwrap();
        assert_eq!(n, 28);
        let RtcpView::Fir(f) = views(&b[..n]).next().unwrap().unwrap() else {
            panic!("not FIR")
        };
        assert_eq!((f.sender_ssrc(), f.media_ssrc()), (9, 0));
        assert_eq!(f.entries().collect::<Vec<_>>(), entries);

        // TWCC (RTPFB FMT 15) and XR are Other, not errors.
        let twcc = [0x8F, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        assert!(matches!(
            views(&twcc).next(),
            Some(Ok(RtcpView::Other(p))) if p.fmt() == 15
        ));
        let xr = [0x80, 207, 0, 1, 0, 0, 0, 1];
        assert!(matches!(views(&xr).next(), Some(Ok(RtcpView::Other(_)))));
    }

    #[test]
    fn malformed_typed_views() {
        // SR claiming one block but with none.
        let sr = [
            0x81, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(validate(&sr), Err(Error::BadLength));
        // NACK without FCI; PLI with FCI; FIR with half an entry.
        let nack = [0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(validate(&nack), Err(Error::BadLength));
        let pli = [0x81, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0];
        assert_eq!(validate(&pli), Err(Error::BadLength));
        let fir = [0x84, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5];
        assert_eq!(validate(&fir), Err(Error::BadLength));
        // SDES: missing terminator, wrong chunk count, trailing chunk.
        let sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
        assert_eq!(validate(&sdes), Err(Error::BadLength));
        let sdes = [0x82, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(validate(&sdes), Err(Error::BadLength));
        let sdes = [0x80, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(validate(&sdes), Err(Error::BadLength));
        let sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(validate(&sdes).is_ok(), "chunk with no items");
    }

    #[test]
    fn rewrites_ssrcs_in_place() {
        let mut p = compound();
        p.extend_from_slice(&[
            0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 3, 0, 0, 0,
        ]);
        let mut seen = Vec::new();
        for pkt in packets_mut(&mut p) {
            let mut pkt = pkt.unwrap();
            pkt.map_ssrcs(|f, old| {
                seen.push((f, old));
                old.wrapping_add(1)
            })
            .unwrap();
        }
        assert_eq!(
            seen,
            vec![
                (SsrcField::Sender, 0x11223344),
                (SsrcField::ReportBlock(0), 0xAABBCCDD),
                (SsrcField::SdesChunk(0), 0x11223344),
                (SsrcField::Sender, 0x11223344),
                (SsrcField::Media, 0xAABBCCDD),
                (SsrcField::Sender, 1),
                (SsrcField::Media, 0),
                (SsrcField::FirEntry(0), 7),
            ]
        );
        let v: Vec<_> = views(&p).collect::<Result<_, _>>().unwrap();
        let RtcpView::SenderReport(sr) = v[0] else {
            panic!()
        };
        assert_eq!(sr.ssrc(), 0x11223345);
        assert_eq!(sr.report_blocks().next().unwrap().ssrc, 0xAABBCCDE);
        let RtcpView::Fir(f) = v[3] else { panic!() };
        assert_eq!(f.entries().next().unwrap().ssrc, 8);

        let mut it = packets_mut(&mut p);
        let mut sr = it.next().unwrap().unwrap();
        sr.set_sender_ssrc(5).unwrap();
        sr.set_report_block_ssrc(0, 6).unwrap();
        assert_eq!(sr.set_report_block_ssrc(1, 6), Err(Error::InvalidArgument));
        assert_eq!(sr.set_media_ssrc(1), Err(Error::Unsupported));
        let _sdes = it.next().unwrap().unwrap();
        let mut nack = it.next().unwrap().unwrap();
        nack.set_media_ssrc(77).unwrap();
        let v: Vec<_> = views(&p).collect::<Result<_, _>>().unwrap();
        let RtcpView::SenderReport(sr) = v[0] else {
            panic!()
        };
        assert_eq!((sr.ssrc(), sr.report_blocks().next().unwrap().ssrc), (5, 6));
        let RtcpView::Nack(n) = v[2] else { panic!() };
        assert_eq!(n.media_ssrc(), 77);

        let mut bye0 = [0x80, 203, 0, 0];
        let mut b = RtcpPacketMut::parse(&mut bye0).unwrap();
        assert_eq!(b.set_sender_ssrc(1), Err(Error::TooShort));
    }

    #[test]
    fn writers_report_small_buffers() {
        let mut b = [0u8; 15];
        assert_eq!(
            write_nack(&mut b, 1, 2, [1u16, 100]),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(write_nack(&mut b, 1, 2, []), Err(Error::InvalidArgument));
        assert_eq!(write_pli(&mut b[..11], 1, 2), Err(Error::BufferTooSmall));
        assert_eq!(
            write_rr(&mut b, 1, &[ReportBlock::default()]),
            Err(Error::BufferTooSmall)
        );
        let many = [ReportBlock::default(); 32];
        let mut big = [0u8; 2048];
        assert_eq!(write_rr(&mut big, 1, &many), Err(Error::InvalidArgument));
        assert_eq!(
            write_sdes_cname(&mut big, 1, &[b'x'; 256]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(write_fir(&mut big, 1, &[]), Err(Error::InvalidArgument));
    }

    #[test]
    fn cumulative_lost_clamps() {
        let mut b = [0u8; 24];
        for (v, want) in [
            (i32::MAX, CUMULATIVE_LOST_MAX),
            (i32::MIN, CUMULATIVE_LOST_MIN),
            (-1, -1),
            (0, 0),
        ] {
            ReportBlock {
                cumulative_lost: v,
                ..Default::default()
            }
            .write(&mut b)
            .unwrap();
            assert_eq!(ReportBlock::read(&b).unwrap().cumulative_lost, want);
        }
    }

    fn arb_block() -> impl Strategy<Value = ReportBlock> {
        (
            any::<u32>(),
            any::<u8>(),
            CUMULATIVE_LOST_MIN..=CUMULATIVE_LOST_MAX,
            any::<[u32; 4]>(),
        )
            .prop_map(|(ssrc, fraction_lost, cumulative_lost, r)| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost,
                ext_highest_seq: r[0],
                jitter: r[1],
                lsr: r[2],
                dlsr: r[3],
            })
    }

    proptest! {
        #[test]
        fn nack_round_trip(seqs in proptest::collection::vec(any::<u16>(), 1..60), sorted: bool) {
            let mut seqs = seqs;
            if sorted {
                seqs.sort_unstable();
            }
            let mut b = [0u8; 1024];
            let n = write_nack(&mut b, 7, 8, seqs.iter().copied()).unwrap();
            let RtcpView::Nack(nack) = RtcpPacket::parse(&b[..n]).unwrap().view().unwrap() else {
                panic!("not a NACK");
            };
            prop_assert_eq!((nack.sender_ssrc(), nack.media_ssrc()), (7, 8));
            let mut got: Vec<u16> = nack.lost_seqs().collect();
            got.sort_unstable();
            got.dedup();
            let mut want = seqs.clone();
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(got, want);
            prop_assert!(nack.entries().len() <= seqs.len());
        }

        #[test]
        fn nack_consecutive_run_packs(start: u16, run in 1usize..200) {
            let mut b = [0u8; 1024];
            let seqs = (0..run).map(|i| start.wrapping_add(i as u16));
            let n = write_nack(&mut b, 1, 2, seqs.clone()).unwrap();
            prop_assert_eq!(n, FEEDBACK_HEADER_LEN + 4 * run.div_ceil(17));
            let RtcpView::Nack(nack) = RtcpPacket::parse(&b[..n]).unwrap().view().unwrap() else {
                panic!("not a NACK");
            };
            prop_assert!(nack.lost_seqs().eq(seqs));
        }

        #[test]
        fn rr_sr_round_trip(ssrc: u32, blocks in proptest::collection::vec(arb_block(), 0..=31),
                            ntp: u64, rtp: u32, pc: u32, oc: u32) {
            let mut b = [0u8; 1024];
            let n = write_rr(&mut b, ssrc, &blocks).unwrap();
            let RtcpView::ReceiverReport(rr) = RtcpPacket::parse(&b[..n]).unwrap().view().unwrap() else {
                panic!("not RR");
            };
            prop_assert_eq!(rr.ssrc(), ssrc);
            prop_assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks.clone());
            let info = SenderInfo { ntp_timestamp: ntp, rtp_timestamp: rtp, packet_count: pc, octet_count: oc };
            let n = write_sr(&mut b, ssrc, &info, &blocks).unwrap();
            let RtcpView::SenderReport(sr) = RtcpPacket::parse(&b[..n]).unwrap().view().unwrap() else {
                panic!("not SR");
            };
            prop_assert_eq!(sr.ssrc(), ssrc);
            prop_assert_eq!(sr.sender_info(), info);
            prop_assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks);
        }

        #[test]
        fn compound_round_trip(ssrc: u32, media: u32, cname in proptest::collection::vec(any::<u8>(), 0..=255),
                               seqs in proptest::collection::vec(any::<u16>(), 1..20)) {
            let mut b = [0u8; 2048];
            let mut n = write_rr(&mut b, ssrc, &[ReportBlock { ssrc: media, ..Default::default() }]).unwrap();
            n += write_sdes_cname(&mut b[n..], ssrc, &cname).unwrap();
            n += write_nack(&mut b[n..], ssrc, media, seqs.iter().copied()).unwrap();
            n += write_pli(&mut b[n..], ssrc, media).unwrap();
            prop_assert_eq!(validate(&b[..n]), Ok(CompoundSummary { packets: 4, reduced_size: false }));
            let v: Vec<_> = views(&b[..n]).collect::<Result<_, _>>().unwrap();
            let RtcpView::Sdes(s) = v[1] else { panic!("not SDES") };
            let c = s.chunks().next().unwrap();
            prop_assert_eq!(c.ssrc(), ssrc);
            prop_assert_eq!(c.cname(), Some(&cname[..]));
            prop_assert_eq!(c.items().count(), 1);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            for v in views(&data) {
                let Ok(v) = v else { break };
                let _ = v.packet().sender_ssrc();
                if let RtcpView::Nack(n) = v {
                    prop_assert!(n.lost_seqs().count() <= 17 * n.entries().len());
                }
            }
            let mut d = data.clone();
            for p in packets_mut(&mut d) {
                let Ok(mut p) = p else { break };
                let _ = p.map_ssrcs(|_, s| s);
            }
            prop_assert_eq!(d, data, "identity map leaves bytes unchanged");
        }
    }
}
