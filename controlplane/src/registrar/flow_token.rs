//! Flow tokens (RFC 5626 §5.2): a [`FlowId`] written into the user part of
//! a URI we put in Path or Record-Route, signed so that it cannot be forged.
//!
//! When Strait proxies a request from a browser it can Record-Route with
//! `sip:<token>@strait.example;lr;ob`; requests of the dialog coming back
//! from the legacy side carry that Route, and [`FlowTokens::decode`] gives
//! the browser's WebSocket flow without any per-dialog state — what
//! Kamailio's `outbound` module does, and the stateless counterpart of
//! nathelper's `;alias=` Contact parameter.
//!
//! Format: `base64url(tag ‖ flow)`, where `flow` is the transport (1 byte),
//! the local and remote addresses (family 4/6, address, port) and the
//! connection id (8 bytes), and `tag` the first 10 bytes of
//! HMAC-SHA256(key, flow). At most 76 characters, all URI-user safe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::sip::{FlowId, Transport};

const TAG_LEN: usize = 10;
/// Longest raw token: tag + transport + 2 × (family + IPv6 + port) + conn.
const MAX_RAW: usize = TAG_LEN + 1 + 2 * (1 + 16 + 2) + 8;

/// Signs and checks flow tokens with one key.
#[derive(Clone)]
pub struct FlowTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for FlowTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowTokens { key: <hidden> }")
    }
}

fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Some(h)
}

fn get_addr(b: &mut &[u8]) -> Option<SocketAddr> {
    let ip = match take(b, 1)?[0] {
        4 => {
            let mut o = [0u8; 4];
            o.copy_from_slice(take(b, 4)?);
            IpAddr::V4(Ipv4Addr::from(o))
        }
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(take(b, 16)?);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    let p = take(b, 2)?;
    Some(SocketAddr::new(ip, u16::from_be_bytes([p[0], p[1]])))
}

impl FlowTokens {
    /// Tokens signed with `key` (keep it for the life of the process, or
    /// share it between processes that must accept each other's tokens).
    pub fn new(key: [u8; 32]) -> Self {
        FlowTokens { key }
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"strait flow token v1");
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&full[..TAG_LEN]);
        t
    }

    /// The token for `flow`.
    pub fn encode(&self, flow: &FlowId) -> String {
        let mut body = Vec::with_capacity(MAX_RAW);
        body.push(match flow.transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
            Transport::Ws => 3,
            Transport::Wss => 4,
        });
        put_addr(&mut body, flow.local);
        put_addr(&mut body, flow.remote);
        body.extend_from_slice(&flow.conn.to_be_bytes());
        let mut raw = self.tag(&body).to_vec();
        raw.extend_from_slice(&body);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The flow of a token we issued; `None` for anything else (never
    /// panics).
    pub fn decode(&self, token: &str) -> Option<FlowId> {
        let mut raw = [0u8; MAX_RAW + 3];
        if token.len() > (MAX_RAW * 4).div_ceil(3) {
            return None;
        }
        let n = URL_SAFE_NO_PAD.decode_slice(token, &mut raw).ok()?;
        let raw = raw.get(..n)?;
        let (tag, body) = raw.split_at_checked(TAG_LEN)?;
        let expected = self.tag(body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], tag)) {
            return None;
        }
        let mut b = body;
        let transport = match take(&mut b, 1)?[0] {
            0 => Transport::Udp,
            1 => Transport::Tcp,
            2 => Transport::Tls,
            3 => Transport::Ws,
            4 => Transport::Wss,
            _ => return None,
        };
        let local = get_addr(&mut b)?;
        let remote = get_addr(&mut b)?;
        let mut c = [0u8; 8];
        c.copy_from_slice(take(&mut b, 8)?);
        if !b.is_empty() {
            return None;
        }
        Some(FlowId {
            transport,
            local,
            remote,
            conn: u64::from_be_bytes(c),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let t = FlowTokens::new([3; 32]);
        let flows = [
            FlowId {
                transport: Transport::Wss,
                local: "127.0.0.1:8443".parse().unwrap(),
                remote: "192.0.2.7:50123".parse().unwrap(),
                conn: 17,
            },
            FlowId {
                transport: Transport::Udp,
                local: "[2001:db8::1]:5060".parse().unwrap(),
                remote: "[2001:db8::2]:40000".parse().unwrap(),
                conn: 0,
            },
        ];
        for f in flows {
            let s = t.encode(&f);
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert!(s.len() <= 76, "{}", s.len());
            assert_eq!(t.decode(&s), Some(f));
            // Another key, or any change, is refused.
            assert_eq!(FlowTokens::new([4; 32]).decode(&s), None);
            for i in 0..s.len() {
                let mut b = s.clone().into_bytes();
                b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                assert_eq!(t.decode(std::str::from_utf8(&b).unwrap()), None, "{i}");
            }
            assert_eq!(t.decode(&s[..s.len() - 1]), None);
            assert_eq!(t.decode(&format!("{s}AA")), None);
        }
        for junk in ["", "%%%", "A", &"A".repeat(500)] {
            assert_eq!(t.decode(junk), None);
        }
    }
}
