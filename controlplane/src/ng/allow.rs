//! Which peers may talk ng: a list of addresses and CIDR prefixes.
//!
//! The ng protocol has no authentication: whoever reaches the port can set
//! up and tear down media. Strait therefore listens on loopback by default,
//! and refuses to listen anywhere else without a non-empty allow-list
//! ([`check_listen`]). An empty list allows every peer (only meaningful on
//! loopback). IPv4 peers seen as IPv4-mapped IPv6 addresses (a dual-stack
//! socket) match IPv4 entries.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// An address prefix: `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The prefix `addr/prefix` (host bits cleared); `None` if `prefix` is
    /// longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(prefix)).into()),
        };
        Some(IpNet { addr, prefix })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies inside (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why an allow-list entry does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpNetError(String);

impl fmt::Display for IpNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an IP address or prefix (e.g. 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)",
            self.0
        )
    }
}

impl std::error::Error for IpNetError {}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<IpNet, IpNetError> {
        let bad = || IpNetError(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                (a, Some(p.parse::<u8>().map_err(|_| bad())?))
            }
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let full = if addr.is_ipv4() { 32 } else { 128 };
        IpNet::new(addr, prefix.unwrap_or(full)).ok_or_else(bad)
    }
}

/// The peers allowed to send ng commands; empty allows all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<IpNet>,
}

impl AllowList {
    /// From prefixes.
    pub fn new(nets: Vec<IpNet>) -> Self {
        AllowList { nets }
    }

    /// Parses each entry; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, IpNetError> {
        entries
            .iter()
            .map(|e| e.as_ref().trim().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList::new)
    }

    /// Whether the list is empty (every peer allowed).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The entries.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` may send commands.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.nets.is_empty() || self.nets.iter().any(|n| n.contains(ip))
    }
}

/// Refuses a listen address off loopback without an allow-list. The error
/// says what to do.
pub fn check_listen(listen: SocketAddr, allow: &AllowList) -> Result<(), String> {
    if listen.ip().to_canonical().is_loopback() || !allow.is_empty() {
        return Ok(());
    }
    Err(format!(
        "refusing to serve the ng control protocol on {listen} without an allow-list: ng has no \
         authentication, so anyone reaching the port could set up and tear down media. List the \
         SIP proxies that may use it in ng.allow (e.g. allow = [\"10.0.0.5\", \"10.0.1.0/24\"]) \
         or listen on loopback"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_and_match() {
        let n: IpNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.9.9.9")), "v4-mapped");
        assert!(!n.contains(ip("2001:db8::1")));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert_eq!(one.prefix(), 32);
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        let all6: IpNet = "::/0".parse().unwrap();
        assert!(all6.contains(ip("::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10/8",
            "x",
            "10.0.0.0/-1",
            "1.2.3.4/+8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_list_semantics() {
        let empty = AllowList::default();
        assert!(empty.permits(ip("203.0.113.1")));
        let l = AllowList::parse(&["127.0.0.1", " 10.0.0.0/24 "]).unwrap();
        assert!(l.permits(ip("10.0.0.9")) && l.permits(ip("127.0.0.1")));
        assert!(!l.permits(ip("10.0.1.9")));
        assert!(AllowList::parse(&["10.0.0.0/24", "nope"]).is_err());
    }

    #[test]
    fn listening_off_loopback_needs_a_list() {
        let list = AllowList::parse(&["10.0.0.5"]).unwrap();
        let empty = AllowList::default();
        assert!(check_listen("127.0.0.1:2223".parse().unwrap(), &empty).is_ok());
        assert!(check_listen("[::1]:2223".parse().unwrap(), &empty).is_ok());
        let e = check_listen("0.0.0.0:2223".parse().unwrap(), &empty).unwrap_err();
        assert!(e.contains("ng.allow") && e.contains("0.0.0.0:2223"), "{e}");
        assert!(check_listen("[::]:2223".parse().unwrap(), &empty).is_err());
        assert!(check_listen("0.0.0.0:2223".parse().unwrap(), &list).is_ok());
    }
}
