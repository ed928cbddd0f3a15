//! The ICE-lite responder's STUN: Binding requests with short-term
//! credentials (RFC 5389/8489 §9.1, RFC 8445 §7.3), checked and answered in
//! place without allocation.
//!
//! A browser's connectivity check carries USERNAME `<our ufrag>:<its ufrag>`,
//! PRIORITY, ICE-CONTROLLING, often USE-CANDIDATE, then MESSAGE-INTEGRITY
//! (HMAC-SHA1 keyed with our ice-pwd over the message up to that attribute,
//! with the length field covering it) and FINGERPRINT (CRC-32 ^ 0x5354554e).
//! [`check_binding_request`] validates all of that; [`write_binding_success`]
//! writes the answer: XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT.

use std::net::{IpAddr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// STUN magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_PRIORITY: u16 = 0x0024;
const ATTR_USE_CANDIDATE: u16 = 0x0025;
const ATTR_FINGERPRINT: u16 = 0x8028;
const ATTR_ICE_CONTROLLED: u16 = 0x8029;
const ATTR_ICE_CONTROLLING: u16 = 0x802A;
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Why a STUN message was not accepted as a valid check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StunError {
    /// Not a well-formed STUN message (length, cookie, attribute framing).
    Malformed,
    /// A well-formed STUN message that is not a Binding request.
    NotBindingRequest,
    /// USERNAME missing or not `<local ufrag>:<anything>`.
    BadUsername,
    /// MESSAGE-INTEGRITY missing or wrong.
    BadIntegrity,
    /// FINGERPRINT wrong (it is optional, but must be right when present).
    BadFingerprint,
    /// Output buffer too small.
    BufferTooSmall,
}

impl core::fmt::Display for StunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            StunError::Malformed => "malformed STUN message",
            StunError::NotBindingRequest => "not a STUN Binding request",
            StunError::BadUsername => "STUN USERNAME does not match the local ufrag",
            StunError::BadIntegrity => "STUN MESSAGE-INTEGRITY missing or wrong",
            StunError::BadFingerprint => "STUN FINGERPRINT wrong",
            StunError::BufferTooSmall => "STUN output buffer too small",
        })
    }
}

impl std::error::Error for StunError {}

/// What a valid connectivity check said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRequest {
    /// The 96-bit transaction id, echoed in the answer.
    pub transaction_id: [u8; 12],
    /// USE-CANDIDATE present (the controlling agent nominates this pair).
    pub use_candidate: bool,
    /// PRIORITY, if present.
    pub priority: Option<u32>,
    /// ICE-CONTROLLING (true) or ICE-CONTROLLED (false), if present.
    pub controlling: Option<bool>,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A cheap test for "this is a STUN message": length, top bits, cookie.
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN
        && buf[0] & 0xC0 == 0
        && be32(buf, 4) == MAGIC_COOKIE
        && usize::from(be16(buf, 2)) + HEADER_LEN == buf.len()
        && be16(buf, 2).is_multiple_of(4)
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Validates a connectivity check addressed to `local_ufrag` and signed with
/// `local_pwd`. Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are
/// ignored, as RFC 8489 §14.5 requires.
pub fn check_binding_request(
    buf: &[u8],
    local_ufrag: &[u8],
    local_pwd: &[u8],
) -> Result<BindingRequest, StunError> {
    if !is_stun(buf) {
        return Err(StunError::Malformed);
    }
    if be16(buf, 0) != BINDING_REQUEST {
        return Err(StunError::NotBindingRequest);
    }
    let mut req = BindingRequest {
        transaction_id: buf[8..20].try_into().expect("header is 20 bytes"),
        use_candidate: false,
        priority: None,
        controlling: None,
    };
    let mut username_ok = false;
    let mut integrity_at = None;
    let mut at = HEADER_LEN;
    while at < buf.len() {
        if buf.len() - at < 4 {
            return Err(StunError::Malformed);
        }
        let typ = be16(buf, at);
        let len = usize::from(be16(buf, at + 2));
        let padded = (len + 3) & !3;
        if buf.len() - at - 4 < padded {
            return Err(StunError::Malformed);
        }
        let value = &buf[at + 4..at + 4 + len];
        if typ == ATTR_FINGERPRINT {
            if len != 4 || at + 8 != buf.len() {
                return Err(StunError::Malformed);
            }
            let want = crc32fast::hash(&buf[..at]) ^ FINGERPRINT_XOR;
            if be32(value, 0) != want {
                return Err(StunError::BadFingerprint);
            }
        } else if integrity_at.is_none() {
            match typ {
                ATTR_USERNAME => {
                    username_ok = value.len() > local_ufrag.len()
                        && value.starts_with(local_ufrag)
                        && value[local_ufrag.len()] == b':';
                }
                ATTR_MESSAGE_INTEGRITY => {
                    if len != 20 {
                        return Err(StunError::Malformed);
                    }
                    integrity_at = Some(at);
                }
                ATTR_PRIORITY if len == 4 => req.priority = Some(be32(value, 0)),
                ATTR_USE_CANDIDATE => req.use_candidate = true,
                ATTR_ICE_CONTROLLING => req.controlling = Some(true),
                ATTR_ICE_CONTROLLED => req.controlling = Some(false),
                _ => {}
            }
        }
        at += 4 + padded;
    }
    if !username_ok {
        return Err(StunError::BadUsername);
    }
    let Some(mi) = integrity_at else {
        return Err(StunError::BadIntegrity);
    };
    // The length field as it was when the integrity was computed: covering
    // everything up to and including MESSAGE-INTEGRITY.
    let len_for_mi = ((mi + 24 - HEADER_LEN) as u16).to_be_bytes();
    let mac = hmac(local_pwd, &[&buf[..2], &len_for_mi, &buf[4..mi]]);
    if !constant_time_eq(&mac, &buf[mi + 4..mi + 24]) {
        return Err(StunError::BadIntegrity);
    }
    Ok(req)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Writes a Binding success response to `req` into `out`: XOR-MAPPED-ADDRESS
/// of `mapped` (the request's source), MESSAGE-INTEGRITY keyed with
/// `local_pwd`, FINGERPRINT. Returns its length.
pub fn write_binding_success(
    out: &mut [u8],
    transaction_id: &[u8; 12],
    mapped: SocketAddr,
    local_pwd: &[u8],
) -> Result<usize, StunError> {
    let addr_len = match mapped.ip() {
        IpAddr::V4(_) => 8,
        IpAddr::V6(_) => 20,
    };
    let total = HEADER_LEN + 4 + addr_len + 24 + 8;
    let Some(out) = out.get_mut(..total) else {
        return Err(StunError::BufferTooSmall);
    };
    out[0..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(transaction_id);
    let mut at = HEADER_LEN;
    out[at..at + 2].copy_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&(addr_len as u16).to_be_bytes());
    out[at + 4] = 0;
    let port = mapped.port() ^ (MAGIC_COOKIE >> 16) as u16;
    out[at + 6..at + 8].copy_from_slice(&port.to_be_bytes());
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match mapped.ip() {
        IpAddr::V4(ip) => {
            out[at + 5] = 0x01;
            for (i, b) in ip.octets().iter().enumerate() {
                out[at + 8 + i] = b ^ cookie[i];
            }
        }
        IpAddr::V6(ip) => {
            out[at + 5] = 0x02;
            for (i, b) in ip.octets().iter().enumerate() {
                let k = if i < 4 {
                    cookie[i]
                } else {
                    transaction_id[i - 4]
                };
                out[at + 8 + i] = b ^ k;
            }
        }
    }
    at += 4 + addr_len;
    // MESSAGE-INTEGRITY: the length field must already cover it.
    out[2..4].copy_from_slice(&((at + 24 - HEADER_LEN) as u16).to_be_bytes());
    let mac = hmac(local_pwd, &[&out[..at]]);
    out[at..at + 2].copy_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&20u16.to_be_bytes());
    out[at + 4..at + 24].copy_from_slice(&mac);
    at += 24;
    out[2..4].copy_from_slice(&((at + 8 - HEADER_LEN) as u16).to_be_bytes());
    let crc = crc32fast::hash(&out[..at]) ^ FINGERPRINT_XOR;
    out[at..at + 2].copy_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&4u16.to_be_bytes());
    out[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(at + 8)
}

/// Parses XOR-MAPPED-ADDRESS from a Binding success response (used by tests
/// and the load generator's simulated browsers).
pub fn parse_xor_mapped_address(buf: &[u8]) -> Option<SocketAddr> {
    if !is_stun(buf) {
        return None;
    }
    let mut at = HEADER_LEN;
    while buf.len().saturating_sub(at) >= 4 {
        let typ = be16(buf, at);
        let len = usize::from(be16(buf, at + 2));
        let v = buf.get(at + 4..at + 4 + len)?;
        if typ == ATTR_XOR_MAPPED_ADDRESS && len >= 8 {
            let port = be16(v, 2) ^ (MAGIC_COOKIE >> 16) as u16;
            let cookie = MAGIC_COOKIE.to_be_bytes();
            return match (v[1], len) {
                (1, 8) => {
                    let mut o = [0u8; 4];
                    for i in 0..4 {
                        o[i] = v[4 + i] ^ cookie[i];
                    }
                    Some((std::net::Ipv4Addr::from(o), port).into())
                }
                (2, 20) => {
                    let mut o = [0u8; 16];
                    for i in 0..16 {
                        o[i] = v[4 + i] ^ if i < 4 { cookie[i] } else { buf[8 + i - 4] };
                    }
                    Some((std::net::Ipv6Addr::from(o), port).into())
                }
                _ => None,
            };
        }
        at += 4 + ((len + 3) & !3);
    }
    None
}

/// Writes a Binding request as a browser would send it (USERNAME, PRIORITY,
/// ICE-CONTROLLING, optional USE-CANDIDATE, MESSAGE-INTEGRITY keyed with the
/// remote agent's password, FINGERPRINT). For tests and the load generator.
pub fn write_binding_request(
    out: &mut [u8],
    transaction_id: &[u8; 12],
    username: &[u8],
    pwd: &[u8],
    priority: u32,
    use_candidate: bool,
) -> Result<usize, StunError> {
    let ulen_padded = (username.len() + 3) & !3;
    let total = HEADER_LEN + 4 + ulen_padded + 8 + 12 + if use_candidate { 4 } else { 0 } + 24 + 8;
    if username.len() > 512 {
        return Err(StunError::Malformed);
    }
    let Some(out) = out.get_mut(..total) else {
        return Err(StunError::BufferTooSmall);
    };
    out.fill(0);
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(transaction_id);
    let mut at = HEADER_LEN;
    let mut attr = |out: &mut [u8], typ: u16, value: &[u8]| {
        out[at..at + 2].copy_from_slice(&typ.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&(value.len() as u16).to_be_bytes());
        out[at + 4..at + 4 + value.len()].copy_from_slice(value);
        at += 4 + ((value.len() + 3) & !3);
        at
    };
    attr(out, ATTR_USERNAME, username);
    attr(out, ATTR_PRIORITY, &priority.to_be_bytes());
    attr(out, ATTR_ICE_CONTROLLING, &[0x5A; 8]);
    let mut mi_at = if use_candidate {
        attr(out, ATTR_USE_CANDIDATE, &[])
    } else {
        at
    };
    mi_at = mi_at.max(at);
    out[2..4].copy_from_slice(&((mi_at + 24 - HEADER_LEN) as u16).to_be_bytes());
    let mac = hmac(pwd, &[&out[..mi_at]]);
    out[mi_at..mi_at + 2].copy_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
    out[mi_at + 2..mi_at + 4].copy_from_slice(&20u16.to_be_bytes());
    out[mi_at + 4..mi_at + 24].copy_from_slice(&mac);
    let fp_at = mi_at + 24;
    out[2..4].copy_from_slice(&((fp_at + 8 - HEADER_LEN) as u16).to_be_bytes());
    let crc = crc32fast::hash(&out[..fp_at]) ^ FINGERPRINT_XOR;
    out[fp_at..fp_at + 2].copy_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
    out[fp_at + 2..fp_at + 4].copy_from_slice(&4u16.to_be_bytes());
    out[fp_at + 4..fp_at + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(fp_at + 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.1 sample request (SOFTWARE "STUN test client", PRIORITY, ICE-CONTROLLED,
    /// username "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt").
    const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae\
        802200105354554e20746573742063 6c69656e74\
        002400046e0001ff80290008932ff9b151263b36\
        000600096576746a3a68367659202020\
        000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2\
        80280004e57a3bcf";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc5769_sample_request_validates() {
        let buf = unhex(RFC5769_REQUEST);
        let req = check_binding_request(&buf, b"evtj", b"VOkJxbRl1RmTxUk/WvJxBt").unwrap();
        assert_eq!(req.priority, Some(0x6e0001ff));
        assert_eq!(req.controlling, Some(false));
        assert!(!req.use_candidate);
        assert_eq!(
            check_binding_request(&buf, b"evtj", b"wrong"),
            Err(StunError::BadIntegrity)
        );
        assert_eq!(
            check_binding_request(&buf, b"h6vY", b"VOkJxbRl1RmTxUk/WvJxBt"),
            Err(StunError::BadUsername)
        );
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            check_binding_request(&bad, b"evtj", b"VOkJxbRl1RmTxUk/WvJxBt"),
            Err(StunError::BadFingerprint)
        );
        let mut bad = buf.clone();
        bad[30] ^= 1; // inside SOFTWARE, covered by the integrity
        assert!(check_binding_request(&bad, b"evtj", b"VOkJxbRl1RmTxUk/WvJxBt").is_err());
    }

    #[test]
    fn rfc5769_sample_ipv4_response_address() {
        // RFC 5769 §2.2: XOR-MAPPED-ADDRESS of 192.0.2.1:32853.
        let resp = unhex(
            "0101003c2112a442b7e7a701bc34d686fa87dfae\
             8022000b7465737420766563746f7220\
             002000080001a147e112a643\
             000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7\
             80280004c07d4c96",
        );
        assert_eq!(
            parse_xor_mapped_address(&resp),
            Some("192.0.2.1:32853".parse().unwrap())
        );
    }

    #[test]
    fn request_and_response_round_trip_v4_and_v6() {
        let tid = [7u8; 12];
        for from in ["127.0.0.1:40000", "[::1]:5004"] {
            let from: SocketAddr = from.parse().unwrap();
            let mut req = [0u8; 256];
            let n = write_binding_request(
                &mut req,
                &tid,
                b"local:remote",
                b"pwd-of-local-agent-1234",
                99,
                true,
            )
            .unwrap();
            let r = check_binding_request(&req[..n], b"local", b"pwd-of-local-agent-1234").unwrap();
            assert!(r.use_candidate);
            assert_eq!(r.priority, Some(99));
            assert_eq!(r.controlling, Some(true));
            let mut resp = [0u8; 128];
            let m = write_binding_success(
                &mut resp,
                &r.transaction_id,
                from,
                b"pwd-of-local-agent-1234",
            )
            .unwrap();
            assert!(is_stun(&resp[..m]));
            assert_eq!(parse_xor_mapped_address(&resp[..m]), Some(from));
            assert_eq!(
                write_binding_success(&mut resp[..40], &tid, from, b"x"),
                Err(StunError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn truncated_and_garbage_inputs_are_errors() {
        let buf = unhex(RFC5769_REQUEST);
        for n in 0..buf.len() {
            assert!(check_binding_request(&buf[..n], b"evtj", b"VOkJxbRl1RmTxUk/WvJxBt").is_err());
        }
        let mut b = buf.clone();
        b[22] = 0xFF; // attribute length past the end
        b[23] = 0xFF;
        assert_eq!(
            check_binding_request(&b, b"evtj", b"x"),
            Err(StunError::Malformed)
        );
    }
}
