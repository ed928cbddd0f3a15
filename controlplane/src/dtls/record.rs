//! DTLS record-layer framing (RFC 6347 §4.1): just enough to split
//! datagrams into records, classify them, renumber the plaintext epoch and
//! pack records into datagrams. Nothing here decrypts.

/// DTLS record header: type(1) version(2) epoch(2) sequence_number(6)
/// length(2).
pub(crate) const HEADER_LEN: usize = 13;

/// Content type of handshake records.
pub(crate) const CONTENT_HANDSHAKE: u8 = 22;

/// Largest 48-bit record sequence number.
const MAX_SEQ: u64 = (1 << 48) - 1;

/// The fields of a record header that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Content type (20 change_cipher_spec, 21 alert, 22 handshake,
    /// 23 application_data).
    pub content_type: u8,
    /// Epoch: 0 until ChangeCipherSpec, then 1.
    pub epoch: u16,
    /// Length of the fragment that follows the header.
    pub len: usize,
}

/// Parses the header at the start of `b`, if there is a whole one.
pub(crate) fn parse_header(b: &[u8]) -> Option<Header> {
    let h = b.get(..HEADER_LEN)?;
    Some(Header {
        content_type: h[0],
        epoch: u16::from_be_bytes([h[3], h[4]]),
        len: usize::from(u16::from_be_bytes([h[11], h[12]])),
    })
}

/// Iterates over the records of a datagram: `(header, whole record)`. Stops
/// at the first record whose header or body is truncated.
pub(crate) fn records(datagram: &[u8]) -> Records<'_> {
    Records { rest: datagram }
}

/// Iterator returned by [`records`].
#[derive(Debug)]
pub(crate) struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = (Header, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let header = parse_header(self.rest)?;
        let total = HEADER_LEN.checked_add(header.len)?;
        if total > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (record, rest) = self.rest.split_at(total);
        self.rest = rest;
        Some((header, record))
    }
}

/// Whether the datagram carries a handshake record of epoch 1 or later: in a
/// connected association, the peer's retransmitted `Finished`.
pub(crate) fn has_encrypted_handshake(datagram: &[u8]) -> bool {
    records(datagram).any(|(h, _)| h.content_type == CONTENT_HANDSHAKE && h.epoch >= 1)
}

/// Overwrites the 48-bit sequence number of the record at the start of
/// `record`. Returns `false` (and leaves it alone) if there is no header or
/// `seq` does not fit.
pub(crate) fn set_sequence(record: &mut [u8], seq: u64) -> bool {
    if seq > MAX_SEQ {
        return false;
    }
    match record.get_mut(5..11) {
        Some(field) => {
            field.copy_from_slice(&seq.to_be_bytes()[2..]);
            true
        }
        None => false,
    }
}

/// Packs whole records into datagrams of at most `mtu` bytes, in order. A
/// record longer than `mtu` travels alone.
pub(crate) fn pack<'a>(records: impl IntoIterator<Item = &'a [u8]>, mtu: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for r in records {
        if !current.is_empty() && current.len() + r.len() > mtu {
            out.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(r);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ty: u8, epoch: u16, seq: u64, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ty, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&seq.to_be_bytes()[2..]);
        r.extend_from_slice(&u16::try_from(body.len()).expect("small").to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn split_and_classify() {
        let a = record(22, 0, 1, &[1, 2, 3]);
        let b = record(20, 0, 2, &[1]);
        let c = record(22, 1, 0, &[9; 40]);
        let mut d = [a.clone(), b.clone(), c.clone()].concat();
        let got: Vec<_> = records(&d).map(|(h, r)| (h, r.to_vec())).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1, a);
        assert_eq!(got[1].0.content_type, 20);
        assert_eq!(got[2].0.epoch, 1);
        assert_eq!(got[2].0.len, 40);
        assert!(has_encrypted_handshake(&d));
        assert!(!has_encrypted_handshake(&a));
        // A truncated last record is not returned.
        d.pop();
        assert_eq!(records(&d).count(), 2);
        assert!(!has_encrypted_handshake(&d));
        assert_eq!(records(&d[..12]).count(), 0);
        assert_eq!(records(&[]).count(), 0);
    }

    #[test]
    fn renumber() {
        let mut r = record(22, 0, 5, &[0; 4]);
        assert!(set_sequence(&mut r, 0x0102_0304_0506));
        assert_eq!(&r[5..11], &[1, 2, 3, 4, 5, 6]);
        assert!(!set_sequence(&mut r, 1 << 48));
        assert!(!set_sequence(&mut r[..10], 1));
    }

    #[test]
    fn packing() {
        let a = vec![1u8; 500];
        let b = vec![2u8; 600];
        let c = vec![3u8; 200];
        let big = vec![4u8; 1500];
        let out = pack([&a[..], &b[..], &c[..], &big[..], &c[..]], 1200);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].len(), 1100);
        assert_eq!(out[1], c);
        assert_eq!(out[2], big);
        assert_eq!(out[3], c);
        assert!(pack(std::iter::empty(), 1200).is_empty());
    }
}
