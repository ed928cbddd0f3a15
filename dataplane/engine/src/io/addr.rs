//! `sockaddr` encoding and decoding without `unsafe`.
//!
//! Addresses live in [`NameBuf`]s: 28 bytes (the size of `sockaddr_in6`),
//! 4-byte aligned, which the kernel fills on receive and reads on send.
//! Decoding canonicalises IPv4-mapped IPv6 sources (`::ffff:a.b.c.d`) to
//! IPv4, and encoding maps IPv4 destinations onto dual-stack IPv6 sockets, so
//! callers only ever see one form of an IPv4 peer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Size of `sockaddr_in6`, the largest address we send to or receive from.
pub(crate) const NAME_LEN: usize = 28;
const SOCKADDR_IN_LEN: usize = 16;

/// Raw storage for one `sockaddr_in` / `sockaddr_in6`.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(4))]
pub(crate) struct NameBuf(pub(crate) [u8; NAME_LEN]);

impl NameBuf {
    pub(crate) const ZERO: Self = Self([0; NAME_LEN]);
}

/// Address family of a socket we own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::V4,
            SocketAddr::V6(_) => Self::V6,
        }
    }
}

/// Decodes a kernel-written address of `len` bytes; `None` if it is not a
/// complete `AF_INET`/`AF_INET6` address.
pub(crate) fn decode(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*name.first()?, *name.get(1)?]);
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flow: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope: [u8; 4] = name.get(24..28)?.try_into().ok()?;
            let ip = Ipv6Addr::from(ip);
            if let Some(v4) = ip.to_ipv4_mapped() {
                return Some(SocketAddr::V4(SocketAddrV4::new(v4, port)));
            }
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                u32::from_ne_bytes(flow),
                u32::from_ne_bytes(scope),
            )))
        }
        _ => None,
    }
}

/// Encodes `addr` for a socket of `family` into `out`; returns the address
/// length, or `None` if that socket cannot reach that address family
/// (IPv6 destination on an IPv4 socket).
pub(crate) fn encode(addr: SocketAddr, family: Family, out: &mut NameBuf) -> Option<u32> {
    match (family, addr) {
        (Family::V4, SocketAddr::V4(a)) => Some(put_v4(a, out)),
        (Family::V4, SocketAddr::V6(a)) => {
            let v4 = a.ip().to_ipv4_mapped()?;
            Some(put_v4(SocketAddrV4::new(v4, a.port()), out))
        }
        (Family::V6, SocketAddr::V6(a)) => Some(put_v6(a, out)),
        (Family::V6, SocketAddr::V4(a)) => Some(put_v6(
            SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
            out,
        )),
    }
}

fn put_v4(a: SocketAddrV4, out: &mut NameBuf) -> u32 {
    let b = &mut out.0;
    b.fill(0);
    // `AF_INET` is 2: it fits a u16.
    b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    b[2..4].copy_from_slice(&a.port().to_be_bytes());
    b[4..8].copy_from_slice(&a.ip().octets());
    SOCKADDR_IN_LEN as u32
}

fn put_v6(a: SocketAddrV6, out: &mut NameBuf) -> u32 {
    let b = &mut out.0;
    // `AF_INET6` is 10: it fits a u16.
    b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    b[2..4].copy_from_slice(&a.port().to_be_bytes());
    b[4..8].copy_from_slice(&a.flowinfo().to_ne_bytes());
    b[8..24].copy_from_slice(&a.ip().octets());
    b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
    NAME_LEN as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_maps() {
        let mut n = NameBuf::ZERO;
        let v4: SocketAddr = "192.0.2.7:5004".parse().expect("literal");
        let v6: SocketAddr = "[2001:db8::1]:6000".parse().expect("literal");
        let len = encode(v4, Family::V4, &mut n).expect("v4 on v4");
        assert_eq!(decode(&n.0[..len as usize]), Some(v4));
        let len = encode(v6, Family::V6, &mut n).expect("v6 on v6");
        assert_eq!(decode(&n.0[..len as usize]), Some(v6));
        // IPv4 peer on a dual-stack socket goes out as ::ffff:a.b.c.d and
        // comes back canonical.
        let len = encode(v4, Family::V6, &mut n).expect("v4 on v6");
        assert_eq!(len as usize, NAME_LEN);
        assert_eq!(decode(&n.0[..len as usize]), Some(v4));
        assert_eq!(encode(v6, Family::V4, &mut n), None);
        assert_eq!(decode(&n.0[..3]), None);
        assert_eq!(decode(&[0u8; 28]), None);
    }
}
