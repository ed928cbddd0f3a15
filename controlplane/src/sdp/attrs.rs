//! Typed views of the attributes the gateway acts on, and the few values it
//! generates (ICE credentials, SDES keys) from caller-supplied randomness.

use std::fmt;

use super::error::SdpError;
use super::model::parse_decimal;

/// Randomness supplied by the caller (the module never reads an OS source).
///
/// Implemented for every `FnMut(&mut [u8])` closure, so a test can pass a
/// deterministic generator and the binary a CSPRNG.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// A random `u64` below 2^62, fit for an `o=` session id (stacks that parse it
/// as a signed 64-bit number, and add to it, keep working).
pub(crate) fn random_session_id(rng: &mut dyn RandomSource) -> u64 {
    let mut b = [0u8; 8];
    rng.fill(&mut b);
    (u64::from_be_bytes(b) >> 2).max(1)
}

/// Media direction (RFC 3264 §5.1), from the point of view of the party
/// whose description carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// Builds a direction from its two halves.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Parses an attribute name.
    pub fn from_attr(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the describing party sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the describing party receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end (sendonly <-> recvonly).
    pub fn reversed(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// Both halves restricted to what `other` allows too.
    pub fn intersect(self, other: Self) -> Self {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written.
    pub name: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels, if given.
    pub channels: Option<u8>,
}

impl Rtpmap {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self, SdpError> {
        let err = SdpError::BadAttribute("rtpmap");
        let (pt, enc) = v.trim().split_once([' ', '\t']).ok_or(err)?;
        let pt = parse_pt(pt).ok_or(err)?;
        let mut parts = enc.trim().split('/');
        let name = parts.next().filter(|n| !n.is_empty()).ok_or(err)?;
        let clock_rate = parts.next().and_then(parse_decimal::<u32>).ok_or(err)?;
        let channels = match parts.next() {
            Some(c) => Some(parse_decimal::<u8>(c).ok_or(err)?),
            None => None,
        };
        if parts.next().is_some() || clock_rate == 0 {
            return Err(err);
        }
        Ok(Self {
            pt,
            name: name.to_owned(),
            clock_rate,
            channels,
        })
    }
}

/// Parses a payload type (0..=127).
pub(crate) fn parse_pt(s: &str) -> Option<u8> {
    parse_decimal::<u8>(s).filter(|pt| *pt <= 127)
}

/// Splits `<pt> <rest>` (fmtp, rtcp-fb); `None` for `*`.
pub(crate) fn split_pt_value(v: &str) -> Option<(Option<u8>, &str)> {
    let v = v.trim();
    let (pt, rest) = match v.split_once([' ', '\t']) {
        Some((pt, rest)) => (pt, rest.trim()),
        None => (v, ""),
    };
    if pt == "*" {
        return Some((None, rest));
    }
    Some((Some(parse_pt(pt)?), rest))
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    /// RTCP port.
    pub port: u16,
    /// Address, if given.
    pub address: Option<String>,
}

impl RtcpAttr {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self, SdpError> {
        let err = SdpError::BadAttribute("rtcp");
        let mut it = v.split_ascii_whitespace();
        let port = it.next().and_then(parse_decimal::<u16>).ok_or(err)?;
        let address = match (it.next(), it.next(), it.next(), it.next()) {
            (None, ..) => None,
            (Some(_net), Some(_addr_type), Some(a), None) => Some(a.to_owned()),
            _ => return Err(err),
        };
        Ok(Self { port, address })
    }
}

/// `a=setup` (RFC 4145, RFC 5763).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The endpoint initiates (DTLS client).
    Active,
    /// The endpoint accepts (DTLS server).
    Passive,
    /// Either (offers only).
    ActPass,
    /// No connection now.
    HoldConn,
}

impl Setup {
    /// Parses the attribute value.
    pub fn parse(v: &str) -> Result<Self, SdpError> {
        match v.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(Setup::Active),
            "passive" => Ok(Setup::Passive),
            "actpass" => Ok(Setup::ActPass),
            "holdconn" => Ok(Setup::HoldConn),
            _ => Err(SdpError::BadAttribute("setup")),
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// Hash function of a certificate fingerprint (RFC 8122).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// `sha-1`.
    Sha1,
    /// `sha-224`.
    Sha224,
    /// `sha-256`.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl HashAlgorithm {
    /// The name in `a=fingerprint`.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha-1",
            HashAlgorithm::Sha224 => "sha-224",
            HashAlgorithm::Sha256 => "sha-256",
            HashAlgorithm::Sha384 => "sha-384",
            HashAlgorithm::Sha512 => "sha-512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha224 => 28,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [
            HashAlgorithm::Sha1,
            HashAlgorithm::Sha224,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ]
        .into_iter()
        .find(|h| h.as_str().eq_ignore_ascii_case(s))
    }
}

/// `a=fingerprint:<hash> <XX:XX:...>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function.
    pub algorithm: HashAlgorithm,
    /// Digest bytes (length checked against the algorithm).
    pub bytes: Vec<u8>,
}

impl Fingerprint {
    /// Parses the attribute value. Unknown hash functions and digests of the
    /// wrong length are errors.
    pub fn parse(v: &str) -> Result<Self, SdpError> {
        let err = SdpError::BadAttribute("fingerprint");
        let mut it = v.split_ascii_whitespace();
        let (Some(alg), Some(hexs), None) = (it.next(), it.next(), it.next()) else {
            return Err(err);
        };
        let algorithm = HashAlgorithm::from_name(alg).ok_or(err)?;
        let mut bytes = Vec::with_capacity(algorithm.digest_len());
        for pair in hexs.split(':') {
            let b = pair.as_bytes();
            if b.len() != 2 {
                return Err(err);
            }
            let hi = hex_val(b[0]).ok_or(err)?;
            let lo = hex_val(b[1]).ok_or(err)?;
            bytes.push(hi << 4 | lo);
        }
        if bytes.len() != algorithm.digest_len() {
            return Err(err);
        }
        Ok(Self { algorithm, bytes })
    }

    /// A SHA-256 fingerprint from digest bytes.
    pub fn sha256(digest: [u8; 32]) -> Self {
        Self {
            algorithm: HashAlgorithm::Sha256,
            bytes: digest.to_vec(),
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Fingerprint {
    /// `sha-256 AB:CD:...` (upper-case hex, as browsers write it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.as_str())?;
        for (i, b) in self.bytes.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ":" })?;
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// ICE credentials (`a=ice-ufrag`, `a=ice-pwd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// Username fragment.
    pub ufrag: String,
    /// Password.
    pub pwd: String,
}

const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl IceCredentials {
    /// Random credentials: an 8-character ufrag and a 24-character password
    /// (RFC 8839 asks for at least 4 and 22 `ice-char`s, 24 and 128 bits).
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        let mut b = [0u8; 32];
        rng.fill(&mut b);
        let s: String = b
            .iter()
            .map(|x| ICE_CHARS[usize::from(x & 63)] as char)
            .collect();
        Self {
            ufrag: s[..8].to_owned(),
            pwd: s[8..].to_owned(),
        }
    }

    /// Whether both values are valid RFC 8839 `ice-char` strings of legal length
    /// (ufrag 4..=256, pwd 22..=256).
    pub fn is_valid(&self) -> bool {
        let ok = |s: &str, min: usize| {
            (min..=256).contains(&s.len()) && s.bytes().all(|b| ICE_CHARS.contains(&b))
        };
        ok(&self.ufrag, 4) && ok(&self.pwd, 22)
    }
}

/// An ICE candidate (`a=candidate`, RFC 8839 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation.
    pub foundation: String,
    /// Component id (1 RTP, 2 RTCP).
    pub component: u16,
    /// Transport (`udp`, `tcp`).
    pub transport: String,
    /// Priority.
    pub priority: u32,
    /// Connection address: an IP literal or a host name (browsers hide
    /// addresses behind mDNS `*.local` names).
    pub address: String,
    /// Port.
    pub port: u16,
    /// Candidate type (`host`, `srflx`, `prflx`, `relay`).
    pub typ: String,
    /// `raddr`, if given.
    pub raddr: Option<String>,
    /// `rport`, if given.
    pub rport: Option<u16>,
    /// Other extension attributes (`generation 0`, `tcptype active`, ...), in order.
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// Parses the attribute value (without the `candidate:` prefix).
    pub fn parse(v: &str) -> Result<Self, SdpError> {
        let err = SdpError::BadAttribute("candidate");
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        if f.len() < 8 || !f[6].eq_ignore_ascii_case("typ") || !f.len().is_multiple_of(2) {
            return Err(err);
        }
        let mut c = Self {
            foundation: f[0].to_owned(),
            component: parse_decimal(f[1]).ok_or(err)?,
            transport: f[2].to_owned(),
            priority: parse_decimal(f[3]).ok_or(err)?,
            address: f[4].to_owned(),
            port: parse_decimal(f[5]).ok_or(err)?,
            typ: f[7].to_owned(),
            raddr: None,
            rport: None,
            extensions: Vec::new(),
        };
        for kv in f[8..].chunks_exact(2) {
            let (k, v) = (kv[0], kv[1]);
            if k.eq_ignore_ascii_case("raddr") {
                c.raddr = Some(v.to_owned());
            } else if k.eq_ignore_ascii_case("rport") {
                c.rport = Some(parse_decimal(v).ok_or(err)?);
            } else {
                c.extensions.push((k.to_owned(), v.to_owned()));
            }
        }
        Ok(c)
    }

    /// A host candidate for component 1 over UDP. `index` orders several
    /// addresses (0 is preferred); priority follows RFC 8445 §5.1.2.1 with
    /// type preference 126.
    pub fn host(index: usize, address: std::net::IpAddr, port: u16) -> Self {
        let local_pref = 65535u32.saturating_sub(u32::try_from(index).unwrap_or(u32::MAX));
        Self {
            foundation: (index + 1).to_string(),
            component: 1,
            transport: "udp".to_owned(),
            priority: (126 << 24) | (local_pref << 8) | (256 - 1),
            address: address.to_string(),
            port,
            typ: "host".to_owned(),
            raddr: None,
            rport: None,
            extensions: Vec::new(),
        }
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.typ
        )?;
        if let Some(a) = &self.raddr {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.rport {
            write!(f, " rport {p}")?;
        }
        for (k, v) in &self.extensions {
            write!(f, " {k} {v}")?;
        }
        Ok(())
    }
}

/// SRTP protection profiles usable with SDES (RFC 4568, RFC 7714).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    AesCm128HmacSha1_32,
    /// `AEAD_AES_128_GCM`.
    AeadAes128Gcm,
}

impl SrtpSuite {
    /// The name in `a=crypto`.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// Master salt length in bytes (14 for AES-CM, 12 for GCM).
    pub fn salt_len(self) -> usize {
        match self {
            SrtpSuite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    /// The data plane's suite code (`strait_rules::abi::SrtpKeys::suite`).
    pub fn abi_code(self) -> u8 {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => 1,
            SrtpSuite::AesCm128HmacSha1_32 => 2,
            SrtpSuite::AeadAes128Gcm => 3,
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
            SrtpSuite::AeadAes128Gcm,
        ]
        .into_iter()
        .find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

/// An SRTP master key and salt (salt zero-padded to 14 bytes for GCM).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpMasterKey {
    /// Master key.
    pub key: [u8; 16],
    /// Master salt; only the suite's [`SrtpSuite::salt_len`] bytes are used.
    pub salt: [u8; 14],
}

impl fmt::Debug for SrtpMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys never reach logs.
        f.write_str("SrtpMasterKey(..)")
    }
}

impl SrtpMasterKey {
    /// A random key for `suite`.
    pub fn generate(suite: SrtpSuite, rng: &mut dyn RandomSource) -> Self {
        let mut k = Self {
            key: [0; 16],
            salt: [0; 14],
        };
        rng.fill(&mut k.key);
        let n = suite.salt_len();
        rng.fill(&mut k.salt[..n]);
        k
    }

    /// `inline:` key parameter text for `suite` (base64 of key || salt).
    pub fn inline(&self, suite: SrtpSuite) -> String {
        let mut raw = self.key.to_vec();
        raw.extend_from_slice(&self.salt[..suite.salt_len()]);
        format!("inline:{}", base64_encode(&raw))
    }
}

/// `a=crypto:<tag> <suite> inline:<key>[|lifetime][|MKI:len] [session params]`
/// (RFC 4568), restricted to what the data plane can use: one inline key, no
/// MKI, no session parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Tag.
    pub tag: u32,
    /// Suite.
    pub suite: SrtpSuite,
    /// The inline master key and salt.
    pub key: SrtpMasterKey,
}

impl Crypto {
    /// Parses the attribute value. Unsupported suites, several keys, an MKI,
    /// session parameters and malformed keys are errors.
    pub fn parse(v: &str) -> Result<Self, SdpError> {
        let err = SdpError::BadAttribute("crypto");
        let mut it = v.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(params), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(err);
        };
        let tag = parse_decimal::<u32>(tag)
            .filter(|t| *t < 1_000_000_000)
            .ok_or(err)?;
        let suite = SrtpSuite::from_name(suite).ok_or(err)?;
        if params.contains(';') {
            return Err(err);
        }
        let inline = params
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("inline:"))
            .and_then(|_| params.get(7..))
            .ok_or(err)?;
        let mut parts = inline.split('|');
        let b64 = parts.next().ok_or(err)?;
        for p in parts {
            // A lifetime is fine (we rekey per call anyway); an MKI is not.
            if p.contains(':') {
                return Err(err);
            }
        }
        let raw = base64_decode(b64).ok_or(err)?;
        let n = suite.salt_len();
        if raw.len() != 16 + n {
            return Err(err);
        }
        let mut key = SrtpMasterKey {
            key: [0; 16],
            salt: [0; 14],
        };
        key.key.copy_from_slice(&raw[..16]);
        key.salt[..n].copy_from_slice(&raw[16..]);
        Ok(Self { tag, suite, key })
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.tag,
            self.suite.as_str(),
            self.key.inline(self.suite)
        )
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional; `None` on any other character.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be padding zeros and fewer than a byte; a single
    // trailing character (6 bits) is not valid base64.
    if bits >= 6 || acc != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Z").is_none());
        assert!(base64_decode("Zh==").is_none()); // non-zero padding bits
    }
}
