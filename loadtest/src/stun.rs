//! The STUN the simulated browser speaks (RFC 8489 with the ICE attributes
//! of RFC 8445 §7 and §16), sans-IO and allocation-free: connectivity
//! checks it sends (either ICE role), the answers it checks, and the checks
//! of a full-ICE proxy it answers.
//!
//! This is the generator's own implementation, written from the RFCs and
//! not shared with Strait's data plane, so that a mistake on one side is not
//! mirrored on the other; both are checked against rtpengine's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// STUN header length.
pub const HEADER_LEN: usize = 20;
/// The magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Binding request.
pub const BINDING_REQUEST: u16 = 0x0001;
/// Binding success response.
pub const BINDING_SUCCESS: u16 = 0x0101;
/// Binding error response.
pub const BINDING_ERROR: u16 = 0x0111;

const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_PRIORITY: u16 = 0x0024;
const ATTR_USE_CANDIDATE: u16 = 0x0025;
const ATTR_FINGERPRINT: u16 = 0x8028;
const ATTR_ICE_CONTROLLED: u16 = 0x8029;
const ATTR_ICE_CONTROLLING: u16 = 0x802A;
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// Role conflict (RFC 8445 §7.3.1.1).
pub const ERROR_ROLE_CONFLICT: u16 = 487;

/// Largest message this module writes (a check with a 128-byte USERNAME).
pub const MAX_WRITTEN: usize = 256;

/// The ICE role an agent claims in its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceRole {
    /// ICE-CONTROLLING with this tie-breaker.
    Controlling(u64),
    /// ICE-CONTROLLED with this tie-breaker.
    Controlled(u64),
}

/// What a STUN message said (the parts ICE needs). Offsets point into the
/// parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Message type (method and class).
    pub typ: u16,
    /// Transaction id.
    pub tid: [u8; 12],
    /// USERNAME value as `(start, len)`.
    pub username: Option<(usize, usize)>,
    /// Offset of MESSAGE-INTEGRITY's attribute header.
    pub integrity_at: Option<usize>,
    /// PRIORITY.
    pub priority: Option<u32>,
    /// USE-CANDIDATE present.
    pub use_candidate: bool,
    /// ICE-CONTROLLING / ICE-CONTROLLED and the tie-breaker.
    pub role: Option<IceRole>,
    /// ERROR-CODE (class × 100 + number).
    pub error_code: Option<u16>,
    /// XOR-MAPPED-ADDRESS.
    pub mapped: Option<SocketAddr>,
}

impl Parsed {
    /// The USERNAME bytes of `buf` (the buffer this was parsed from).
    pub fn username<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.username
            .and_then(|(s, n)| buf.get(s..s + n))
            .unwrap_or(&[])
    }
}

/// Why a datagram was not accepted as STUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunError {
    /// Not STUN, or broken framing.
    Malformed,
    /// FINGERPRINT present and wrong.
    BadFingerprint,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// First-byte demultiplexing (RFC 7983): STUN starts with 0..=3.
pub fn looks_like_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] < 4 && be32(buf, 4) == MAGIC_COOKIE
}

fn xor_address(v: &[u8], tid: &[u8; 12]) -> Option<SocketAddr> {
    if v.len() < 8 {
        return None;
    }
    let port = be16(v, 2) ^ (MAGIC_COOKIE >> 16) as u16;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match (v[1], v.len()) {
        (1, 8) => {
            let mut o = [0u8; 4];
            for (i, b) in o.iter_mut().enumerate() {
                *b = v[4 + i] ^ cookie[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(o)), port))
        }
        (2, 20) => {
            let mut o = [0u8; 16];
            for (i, b) in o.iter_mut().enumerate() {
                let k = if i < 4 { cookie[i] } else { tid[i - 4] };
                *b = v[4 + i] ^ k;
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => None,
    }
}

/// Parses a STUN message; checks its framing and, when present, its
/// FINGERPRINT. Attributes after MESSAGE-INTEGRITY other than FINGERPRINT
/// are ignored (RFC 8489 §14.5).
pub fn parse(buf: &[u8]) -> Result<Parsed, StunError> {
    if !looks_like_stun(buf)
        || usize::from(be16(buf, 2)) + HEADER_LEN != buf.len()
        || !be16(buf, 2).is_multiple_of(4)
    {
        return Err(StunError::Malformed);
    }
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&buf[8..20]);
    let mut p = Parsed {
        typ: be16(buf, 0),
        tid,
        username: None,
        integrity_at: None,
        priority: None,
        use_candidate: false,
        role: None,
        error_code: None,
        mapped: None,
    };
    let mut at = HEADER_LEN;
    // Bounded: every pass advances `at` by at least 4.
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
        let v = &buf[at + 4..at + 4 + len];
        if typ == ATTR_FINGERPRINT {
            if len != 4 || at + 8 != buf.len() {
                return Err(StunError::Malformed);
            }
            if be32(v, 0) != crc32fast::hash(&buf[..at]) ^ FINGERPRINT_XOR {
                return Err(StunError::BadFingerprint);
            }
        } else if p.integrity_at.is_none() {
            match typ {
                ATTR_USERNAME => p.username = Some((at + 4, len)),
                ATTR_MESSAGE_INTEGRITY if len == 20 => p.integrity_at = Some(at),
                ATTR_MESSAGE_INTEGRITY => return Err(StunError::Malformed),
                ATTR_PRIORITY if len == 4 => p.priority = Some(be32(v, 0)),
                ATTR_USE_CANDIDATE => p.use_candidate = true,
                ATTR_ICE_CONTROLLING | ATTR_ICE_CONTROLLED if len == 8 => {
                    let t = (u64::from(be32(v, 0)) << 32) | u64::from(be32(v, 4));
                    p.role = Some(if typ == ATTR_ICE_CONTROLLING {
                        IceRole::Controlling(t)
                    } else {
                        IceRole::Controlled(t)
                    });
                }
                ATTR_ERROR_CODE if len >= 4 => {
                    p.error_code = Some(u16::from(v[2] & 7) * 100 + u16::from(v[3]));
                }
                ATTR_XOR_MAPPED_ADDRESS => p.mapped = xor_address(v, &p.tid),
                _ => {}
            }
        }
        at += 4 + padded;
    }
    Ok(p)
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(key) else {
        return [0; 20];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Whether the message parsed as `p` from `buf` carries a MESSAGE-INTEGRITY
/// made with `key` (short-term credentials: the password).
pub fn integrity_ok(buf: &[u8], p: &Parsed, key: &[u8]) -> bool {
    let Some(mi) = p.integrity_at else {
        return false;
    };
    let Some(got) = buf.get(mi + 4..mi + 24) else {
        return false;
    };
    // The length field as it was when the integrity was computed: covering
    // everything up to and including MESSAGE-INTEGRITY.
    let len = ((mi + 24 - HEADER_LEN) as u16).to_be_bytes();
    let want = hmac_sha1(key, &[&buf[..2], &len, &buf[4..mi]]);
    got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Appends an attribute at `*at`; None if it does not fit.
fn put_attr(out: &mut [u8], at: &mut usize, typ: u16, value: &[u8]) -> Option<()> {
    let padded = (value.len() + 3) & !3;
    let dst = out.get_mut(*at..*at + 4 + padded)?;
    dst[0..2].copy_from_slice(&typ.to_be_bytes());
    dst[2..4].copy_from_slice(&(value.len() as u16).to_be_bytes());
    dst[4..4 + value.len()].copy_from_slice(value);
    dst[4 + value.len()..].fill(0);
    *at += 4 + padded;
    Some(())
}

/// Adds MESSAGE-INTEGRITY (keyed with `key`) and FINGERPRINT after the
/// attributes written up to `at`; returns the message length.
fn finish(out: &mut [u8], mut at: usize, key: &[u8]) -> Option<usize> {
    if out.len() < at + 24 + 8 {
        return None;
    }
    out[2..4].copy_from_slice(&((at + 24 - HEADER_LEN) as u16).to_be_bytes());
    let mac = hmac_sha1(key, &[&out[..at]]);
    put_attr(out, &mut at, ATTR_MESSAGE_INTEGRITY, &mac)?;
    out[2..4].copy_from_slice(&((at + 8 - HEADER_LEN) as u16).to_be_bytes());
    let crc = crc32fast::hash(&out[..at]) ^ FINGERPRINT_XOR;
    put_attr(out, &mut at, ATTR_FINGERPRINT, &crc.to_be_bytes())?;
    Some(at)
}

fn header(out: &mut [u8], typ: u16, tid: &[u8; 12]) -> Option<usize> {
    let h = out.get_mut(..HEADER_LEN)?;
    h[0..2].copy_from_slice(&typ.to_be_bytes());
    h[2..4].fill(0);
    h[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    h[8..20].copy_from_slice(tid);
    Some(HEADER_LEN)
}

/// Writes a connectivity check: USERNAME `username` (`<remote ufrag>:<local
/// ufrag>`), PRIORITY, the role attribute, USE-CANDIDATE when `nominate`,
/// MESSAGE-INTEGRITY keyed with the remote agent's password `pwd`,
/// FINGERPRINT. Returns its length (None if `out` is too small or the
/// username longer than 128 bytes).
pub fn write_check(
    out: &mut [u8],
    tid: &[u8; 12],
    username: &[u8],
    pwd: &[u8],
    priority: u32,
    role: IceRole,
    nominate: bool,
) -> Option<usize> {
    if username.len() > 128 {
        return None;
    }
    let mut at = header(out, BINDING_REQUEST, tid)?;
    put_attr(out, &mut at, ATTR_USERNAME, username)?;
    put_attr(out, &mut at, ATTR_PRIORITY, &priority.to_be_bytes())?;
    match role {
        IceRole::Controlling(t) => put_attr(out, &mut at, ATTR_ICE_CONTROLLING, &t.to_be_bytes())?,
        IceRole::Controlled(t) => put_attr(out, &mut at, ATTR_ICE_CONTROLLED, &t.to_be_bytes())?,
    }
    if nominate {
        put_attr(out, &mut at, ATTR_USE_CANDIDATE, &[])?;
    }
    finish(out, at, pwd)
}

/// Writes a Binding success response to transaction `tid`: XOR-MAPPED-ADDRESS
/// `mapped` (the request's source), MESSAGE-INTEGRITY keyed with our
/// password `pwd`, FINGERPRINT.
pub fn write_success(
    out: &mut [u8],
    tid: &[u8; 12],
    mapped: SocketAddr,
    pwd: &[u8],
) -> Option<usize> {
    let mut at = header(out, BINDING_SUCCESS, tid)?;
    let mut v = [0u8; 20];
    let port = mapped.port() ^ (MAGIC_COOKIE >> 16) as u16;
    v[2..4].copy_from_slice(&port.to_be_bytes());
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let n = match mapped.ip() {
        IpAddr::V4(ip) => {
            v[1] = 1;
            for (i, b) in ip.octets().iter().enumerate() {
                v[4 + i] = b ^ cookie[i];
            }
            8
        }
        IpAddr::V6(ip) => {
            v[1] = 2;
            for (i, b) in ip.octets().iter().enumerate() {
                v[4 + i] = b ^ if i < 4 { cookie[i] } else { tid[i - 4] };
            }
            20
        }
    };
    put_attr(out, &mut at, ATTR_XOR_MAPPED_ADDRESS, &v[..n])?;
    finish(out, at, pwd)
}

/// Writes a Binding error response `code` (e.g. 487 role conflict) with
/// MESSAGE-INTEGRITY and FINGERPRINT.
pub fn write_error(out: &mut [u8], tid: &[u8; 12], code: u16, pwd: &[u8]) -> Option<usize> {
    let mut at = header(out, BINDING_ERROR, tid)?;
    let v = [0, 0, (code / 100) as u8, (code % 100) as u8];
    put_attr(out, &mut at, ATTR_ERROR_CODE, &v)?;
    finish(out, at, pwd)
}

/// What to do with a connectivity check addressed to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckVerdict {
    /// Answer success.
    Answer,
    /// Answer 487: the peer must switch roles.
    RoleConflict,
    /// We switch roles (to the one given), then answer success.
    SwitchAndAnswer(IceRole),
    /// Not for us (wrong USERNAME or integrity): drop silently.
    Drop,
}

/// Validates a check from the peer (`p` parsed from `buf`): USERNAME must be
/// `<local_ufrag>:<remote_ufrag>` and the integrity keyed with `local_pwd`;
/// role conflicts are resolved by the tie-breakers (RFC 8445 §7.3.1.1).
pub fn judge_check(
    buf: &[u8],
    p: &Parsed,
    local_ufrag: &[u8],
    remote_ufrag: &[u8],
    local_pwd: &[u8],
    my_role: IceRole,
) -> CheckVerdict {
    if p.typ != BINDING_REQUEST {
        return CheckVerdict::Drop;
    }
    let u = p.username(buf);
    let name_ok = u.len() == local_ufrag.len() + 1 + remote_ufrag.len()
        && u.starts_with(local_ufrag)
        && u[local_ufrag.len()] == b':'
        && u.ends_with(remote_ufrag);
    if !name_ok || !integrity_ok(buf, p, local_pwd) {
        return CheckVerdict::Drop;
    }
    match (my_role, p.role) {
        (IceRole::Controlling(mine), Some(IceRole::Controlling(theirs))) => {
            if mine >= theirs {
                CheckVerdict::RoleConflict
            } else {
                CheckVerdict::SwitchAndAnswer(IceRole::Controlled(mine))
            }
        }
        (IceRole::Controlled(mine), Some(IceRole::Controlled(theirs))) => {
            if mine >= theirs {
                CheckVerdict::SwitchAndAnswer(IceRole::Controlling(mine))
            } else {
                CheckVerdict::RoleConflict
            }
        }
        _ => CheckVerdict::Answer,
    }
}

/// Host-candidate priority of component 1 (RFC 8445 §5.1.2.1: type
/// preference 126, local preference 65535).
pub const HOST_PRIORITY: u32 = (126 << 24) | (65535 << 8) | 255;
/// Peer-reflexive priority a check carries (type preference 110).
pub const PRFLX_PRIORITY: u32 = (110 << 24) | (65535 << 8) | 255;

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc5769_sample_request() {
        // RFC 5769 §2.1: username "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt".
        let buf = unhex(
            "000100582112a442b7e7a701bc34d686fa87dfae\
             802200105354554e20746573742063 6c69656e74\
             002400046e0001ff80290008932ff9b151263b36\
             000600096576746a3a68367659202020\
             000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2\
             80280004e57a3bcf",
        );
        let p = parse(&buf).unwrap();
        assert_eq!(p.typ, BINDING_REQUEST);
        assert_eq!(p.priority, Some(0x6e00_01ff));
        assert_eq!(p.role, Some(IceRole::Controlled(0x932f_f9b1_5126_3b36)));
        assert_eq!(p.username(&buf), b"evtj:h6vY");
        assert!(integrity_ok(&buf, &p, b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!integrity_ok(&buf, &p, b"VOkJxbRl1RmTxUk/WvJxBT"));
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(parse(&bad), Err(StunError::BadFingerprint));
        assert_eq!(parse(&buf[..buf.len() - 4]), Err(StunError::Malformed));
    }

    #[test]
    fn rfc5769_sample_responses() {
        // §2.2 (IPv4) and §2.3 (IPv6), password "VOkJxbRl1RmTxUk/WvJxBt".
        let v4 = unhex(
            "0101003c2112a442b7e7a701bc34d686fa87dfae\
             8022000b7465737420766563746f7220\
             002000080001a147e112a643\
             000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7\
             80280004c07d4c96",
        );
        let p = parse(&v4).unwrap();
        assert_eq!(p.typ, BINDING_SUCCESS);
        assert_eq!(p.mapped, Some("192.0.2.1:32853".parse().unwrap()));
        assert!(integrity_ok(&v4, &p, b"VOkJxbRl1RmTxUk/WvJxBt"));
        let v6 = unhex(
            "010100482112a442b7e7a701bc34d686fa87dfae\
             8022000b7465737420766563746f7220\
             002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9\
             00080014a382954e4be67bf11784c97c8292c275bfe3ed41\
             80280004c8fb0b4c",
        );
        let p = parse(&v6).unwrap();
        assert_eq!(
            p.mapped,
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
        assert!(integrity_ok(&v6, &p, b"VOkJxbRl1RmTxUk/WvJxBt"));
    }

    #[test]
    fn written_messages_parse_back() {
        let tid = [9u8; 12];
        let mut out = [0u8; MAX_WRITTEN];
        let n = write_check(
            &mut out,
            &tid,
            b"proxy:gen1",
            b"proxy-password-123456",
            PRFLX_PRIORITY,
            IceRole::Controlling(7),
            true,
        )
        .unwrap();
        let p = parse(&out[..n]).unwrap();
        assert_eq!((p.typ, p.tid), (BINDING_REQUEST, tid));
        assert!(p.use_candidate);
        assert_eq!(p.role, Some(IceRole::Controlling(7)));
        assert_eq!(p.priority, Some(PRFLX_PRIORITY));
        // The proxy's view: addressed to "proxy", from "gen1".
        assert_eq!(
            judge_check(
                &out[..n],
                &p,
                b"proxy",
                b"gen1",
                b"proxy-password-123456",
                IceRole::Controlled(1)
            ),
            CheckVerdict::Answer
        );
        assert_eq!(
            judge_check(
                &out[..n],
                &p,
                b"proxy",
                b"gen1",
                b"wrong",
                IceRole::Controlled(1)
            ),
            CheckVerdict::Drop
        );
        assert_eq!(
            judge_check(
                &out[..n],
                &p,
                b"proxy",
                b"gen1",
                b"proxy-password-123456",
                IceRole::Controlling(8)
            ),
            CheckVerdict::RoleConflict
        );
        assert_eq!(
            judge_check(
                &out[..n],
                &p,
                b"proxy",
                b"gen1",
                b"proxy-password-123456",
                IceRole::Controlling(6)
            ),
            CheckVerdict::SwitchAndAnswer(IceRole::Controlled(6))
        );
        for from in ["127.0.0.1:40000", "[::1]:5004"] {
            let from: SocketAddr = from.parse().unwrap();
            let n = write_success(&mut out, &tid, from, b"pw").unwrap();
            let p = parse(&out[..n]).unwrap();
            assert_eq!((p.typ, p.mapped), (BINDING_SUCCESS, Some(from)));
            assert!(integrity_ok(&out[..n], &p, b"pw"));
        }
        let n = write_error(&mut out, &tid, ERROR_ROLE_CONFLICT, b"pw").unwrap();
        let p = parse(&out[..n]).unwrap();
        assert_eq!((p.typ, p.error_code), (BINDING_ERROR, Some(487)));
        assert!(write_check(
            &mut [0u8; 40],
            &tid,
            b"a:b",
            b"p",
            1,
            IceRole::Controlled(1),
            false
        )
        .is_none());
    }

    #[test]
    fn interoperates_with_the_data_plane_implementation() {
        // Strait's data plane checks what we write, and we check what it writes.
        let tid = [3u8; 12];
        let mut out = [0u8; MAX_WRITTEN];
        let n = write_check(
            &mut out,
            &tid,
            b"lite:browser",
            b"lite-password-0123456789",
            PRFLX_PRIORITY,
            IceRole::Controlling(42),
            true,
        )
        .unwrap();
        let req = strait_dataplane::stun::check_binding_request(
            &out[..n],
            b"lite",
            b"lite-password-0123456789",
        )
        .unwrap();
        assert!(req.use_candidate);
        assert_eq!(req.controlling, Some(true));
        let from: SocketAddr = "127.0.0.1:12345".parse().unwrap();
        let m = strait_dataplane::stun::write_binding_success(
            &mut out,
            &tid,
            from,
            b"lite-password-0123456789",
        )
        .unwrap();
        let p = parse(&out[..m]).unwrap();
        assert_eq!(p.mapped, Some(from));
        assert!(integrity_ok(&out[..m], &p, b"lite-password-0123456789"));
    }

    #[test]
    fn junk_is_refused() {
        assert_eq!(parse(&[]), Err(StunError::Malformed));
        assert_eq!(parse(&[0x80; 40]), Err(StunError::Malformed));
        let mut h = [0u8; 24];
        h[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        h[3] = 4;
        h[20..22].copy_from_slice(&0x0006u16.to_be_bytes());
        h[22..24].copy_from_slice(&100u16.to_be_bytes()); // longer than the message
        assert_eq!(parse(&h), Err(StunError::Malformed));
    }
}
