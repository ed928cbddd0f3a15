//! Certificates and SDP fingerprints (RFC 8122 `a=fingerprint`).

use core::fmt;
use core::str::FromStr;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509NameBuilder, X509Ref, X509};

/// A hash function of an SDP fingerprint (the IANA "Hash Function Textual
/// Names" registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// `sha-1` (20 bytes).
    Sha1,
    /// `sha-224` (28 bytes).
    Sha224,
    /// `sha-256` (32 bytes), what browsers send.
    Sha256,
    /// `sha-384` (48 bytes).
    Sha384,
    /// `sha-512` (64 bytes).
    Sha512,
}

impl HashAlgorithm {
    /// All supported algorithms, weakest first.
    pub const ALL: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The SDP name, e.g. `"sha-256"`.
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha-1",
            HashAlgorithm::Sha224 => "sha-224",
            HashAlgorithm::Sha256 => "sha-256",
            HashAlgorithm::Sha384 => "sha-384",
            HashAlgorithm::Sha512 => "sha-512",
        }
    }

    /// Digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha224 => 28,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// Looks an algorithm up by its SDP name, ignoring ASCII case (RFC 8122
    /// §5 names are case-insensitive tokens).
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    fn digest(self) -> MessageDigest {
        match self {
            HashAlgorithm::Sha1 => MessageDigest::sha1(),
            HashAlgorithm::Sha224 => MessageDigest::sha224(),
            HashAlgorithm::Sha256 => MessageDigest::sha256(),
            HashAlgorithm::Sha384 => MessageDigest::sha384(),
            HashAlgorithm::Sha512 => MessageDigest::sha512(),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an SDP fingerprint did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FingerprintError {
    /// No `<hash-func> SP <fingerprint>` pair.
    Malformed,
    /// A hash function this endpoint does not implement (e.g. `md5`).
    UnknownAlgorithm,
    /// Not colon-separated pairs of hex digits.
    BadHex,
    /// The number of bytes does not match the hash function.
    WrongLength,
}

impl fmt::Display for FingerprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FingerprintError::Malformed => "malformed fingerprint attribute",
            FingerprintError::UnknownAlgorithm => "unsupported fingerprint hash function",
            FingerprintError::BadHex => "fingerprint is not colon-separated hex bytes",
            FingerprintError::WrongLength => "fingerprint length does not match its hash function",
        })
    }
}

impl std::error::Error for FingerprintError {}

/// A certificate fingerprint as SDP carries it: a hash function and the
/// digest of the DER certificate.
///
/// ```
/// use strait::dtls::{Fingerprint, HashAlgorithm};
///
/// let fp: Fingerprint = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:\
///     0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9".parse()?;
/// assert_eq!(fp.algorithm(), HashAlgorithm::Sha256);
/// assert_eq!(fp.as_bytes()[0], 0x0a);
/// assert!(fp.to_string().starts_with("sha-256 0A:1B:"));
/// # Ok::<(), strait::dtls::FingerprintError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    algorithm: HashAlgorithm,
    bytes: [u8; 64],
}

impl Fingerprint {
    /// Builds a fingerprint from raw digest bytes (which must be
    /// `algorithm.digest_len()` long).
    pub fn from_bytes(algorithm: HashAlgorithm, digest: &[u8]) -> Result<Self, FingerprintError> {
        if digest.len() != algorithm.digest_len() {
            return Err(FingerprintError::WrongLength);
        }
        let mut bytes = [0u8; 64];
        bytes[..digest.len()].copy_from_slice(digest);
        Ok(Self { algorithm, bytes })
    }

    /// Parses the value of an `a=fingerprint:` attribute, e.g.
    /// `"sha-256 AB:CD:…"` (hash name case-insensitive, hex digits of either
    /// case, surrounding whitespace ignored).
    pub fn parse(value: &str) -> Result<Self, FingerprintError> {
        let mut parts = value.split_ascii_whitespace();
        let (Some(name), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FingerprintError::Malformed);
        };
        Self::parse_parts(name, hex)
    }

    /// Parses a hash-function name and the colon-separated hex digest
    /// separately.
    pub fn parse_parts(name: &str, hex: &str) -> Result<Self, FingerprintError> {
        let algorithm = HashAlgorithm::from_name(name).ok_or(FingerprintError::UnknownAlgorithm)?;
        let mut bytes = [0u8; 64];
        let mut n = 0usize;
        for pair in hex.split(':') {
            let b = pair.as_bytes();
            if b.len() != 2 {
                return Err(FingerprintError::BadHex);
            }
            let byte = (hex_val(b[0]).ok_or(FingerprintError::BadHex)? << 4)
                | hex_val(b[1]).ok_or(FingerprintError::BadHex)?;
            let slot = bytes.get_mut(n).ok_or(FingerprintError::WrongLength)?;
            *slot = byte;
            n += 1;
        }
        if n != algorithm.digest_len() {
            return Err(FingerprintError::WrongLength);
        }
        Ok(Self { algorithm, bytes })
    }

    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(algorithm: HashAlgorithm, der: &[u8]) -> Self {
        let digest = openssl::hash::hash(algorithm.digest(), der)
            .expect("OpenSSL digests of supported algorithms do not fail");
        Self::from_bytes(algorithm, &digest).expect("digest length matches the algorithm")
    }

    pub(crate) fn of_x509(algorithm: HashAlgorithm, cert: &X509Ref) -> Option<Self> {
        let digest = cert.digest(algorithm.digest()).ok()?;
        Self::from_bytes(algorithm, &digest).ok()
    }

    /// The hash function.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.digest_len()]
    }

    /// The digest in SDP form: upper-case hex pairs separated by colons.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(self.algorithm.digest_len() * 3);
        for (i, b) in self.as_bytes().iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            s.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
            s.push(char::from(HEX_DIGITS[usize::from(b & 0x0f)]));
        }
        s
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Fingerprint {
    /// The `a=fingerprint:` attribute value: `"sha-256 AB:CD:…"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm, self.hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fingerprint::parse(s)
    }
}

/// Whether `cert` matches the expected fingerprints. Following RFC 8122 §5,
/// only the fingerprints with the strongest hash function offered are
/// checked, and any one of them matching is enough.
pub(crate) fn matches(cert: &X509Ref, expected: &[Fingerprint]) -> bool {
    let Some(strongest) = expected.iter().map(|f| f.algorithm).max() else {
        return false;
    };
    let Some(actual) = Fingerprint::of_x509(strongest, cert) else {
        return false;
    };
    expected
        .iter()
        .filter(|f| f.algorithm == strongest)
        .any(|f| openssl::memcmp::eq(f.as_bytes(), actual.as_bytes()))
}

/// Why a certificate could not be created or loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateError {
    /// Key generation, signing or encoding failed inside OpenSSL.
    Crypto,
    /// The certificate or key PEM did not parse.
    BadPem,
    /// The private key does not belong to the certificate.
    KeyMismatch,
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertificateError::Crypto => "certificate generation failed",
            CertificateError::BadPem => "certificate or key PEM does not parse",
            CertificateError::KeyMismatch => "private key does not match the certificate",
        })
    }
}

impl std::error::Error for CertificateError {}

/// The local DTLS identity: a certificate and its private key.
///
/// WebRTC certificates are self-signed and authenticated only by the
/// fingerprint in SDP. Cloning is cheap (OpenSSL reference counts).
#[derive(Clone)]
pub struct Certificate {
    pub(crate) x509: X509,
    pub(crate) key: PKey<Private>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint(HashAlgorithm::Sha256))
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Generates a self-signed ECDSA P-256 certificate (what browsers use),
    /// signed with SHA-256, with a random serial number and `CN=strait`.
    ///
    /// The validity is fixed (2000-01-01 to 9999-12-31, RFC 5280's "no
    /// well-defined expiration"), so generation reads no clock; WebRTC peers
    /// pin the fingerprint instead.
    pub fn generate() -> Result<Self, CertificateError> {
        Self::try_generate().map_err(|_| CertificateError::Crypto)
    }

    fn try_generate() -> Result<Self, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "strait")?;
        let name = name.build();

        let mut serial = BigNum::new()?;
        serial.rand(63, MsbOption::MAYBE_ZERO, false)?;

        let mut b = X509::builder()?;
        b.set_version(2)?;
        let serial = Asn1Integer::from_bn(&serial)?;
        let not_before = Asn1Time::from_str("20000101000000Z")?;
        let not_after = Asn1Time::from_str("99991231235959Z")?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            x509: b.build(),
            key,
        })
    }

    /// Loads a certificate and its private key (PKCS#8, SEC1 or any format
    /// OpenSSL reads) from PEM.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertificateError> {
        let x509 = X509::from_pem(cert_pem).map_err(|_| CertificateError::BadPem)?;
        let key = PKey::private_key_from_pem(key_pem).map_err(|_| CertificateError::BadPem)?;
        let public = x509.public_key().map_err(|_| CertificateError::BadPem)?;
        if !public.public_eq(&key) {
            return Err(CertificateError::KeyMismatch);
        }
        Ok(Self { x509, key })
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> Vec<u8> {
        self.x509
            .to_pem()
            .expect("an X509 built or parsed by OpenSSL encodes")
    }

    /// The private key as PKCS#8 PEM (keep it secret).
    pub fn key_pem(&self) -> Vec<u8> {
        self.key
            .private_key_to_pem_pkcs8()
            .expect("an EC key held by OpenSSL encodes")
    }

    /// The certificate in DER.
    pub fn der(&self) -> Vec<u8> {
        self.x509
            .to_der()
            .expect("an X509 built or parsed by OpenSSL encodes")
    }

    /// The private key as PKCS#8 DER (keep it secret).
    pub fn key_der(&self) -> Vec<u8> {
        self.key
            .private_key_to_pkcs8()
            .expect("an EC key held by OpenSSL encodes")
    }

    /// The certificate's fingerprint with the given hash function.
    pub fn fingerprint(&self, algorithm: HashAlgorithm) -> Fingerprint {
        Fingerprint::of_x509(algorithm, &self.x509)
            .expect("OpenSSL digests of supported algorithms do not fail")
    }

    /// The SHA-256 fingerprint in SDP form (`"AB:CD:…"`, without the
    /// `sha-256` prefix).
    pub fn fingerprint_sha256(&self) -> String {
        self.fingerprint(HashAlgorithm::Sha256).hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let hex32 = (0..32u8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let fp = Fingerprint::parse(&format!("  SHA-256 {hex32} ")).expect("valid");
        assert_eq!(fp.algorithm(), HashAlgorithm::Sha256);
        assert_eq!(fp.as_bytes(), (0..32u8).collect::<Vec<_>>().as_slice());
        assert_eq!(fp.to_string(), format!("sha-256 {}", hex32.to_uppercase()));
        assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));

        let hex20 = hex32[..20 * 3 - 1].to_string();
        assert_eq!(
            Fingerprint::parse(&format!("sha-1 {hex20}")).map(|f| f.algorithm()),
            Ok(HashAlgorithm::Sha1)
        );
        assert_eq!(
            Fingerprint::parse(&format!("sha-1 {hex32}")),
            Err(FingerprintError::WrongLength)
        );
        assert_eq!(
            Fingerprint::parse(&format!("md5 {hex20}")),
            Err(FingerprintError::UnknownAlgorithm)
        );
        assert_eq!(
            Fingerprint::parse("sha-256"),
            Err(FingerprintError::Malformed)
        );
        assert_eq!(
            Fingerprint::parse("sha-256 AB CD"),
            Err(FingerprintError::Malformed)
        );
        assert_eq!(
            Fingerprint::parse("sha-256 AB:C"),
            Err(FingerprintError::BadHex)
        );
        assert_eq!(
            Fingerprint::parse("sha-256 AB:ZZ"),
            Err(FingerprintError::BadHex)
        );
        assert_eq!(
            Fingerprint::parse("sha-256 AB::CD"),
            Err(FingerprintError::BadHex)
        );
        assert_eq!(
            Fingerprint::parse("sha-256 AB:é1"),
            Err(FingerprintError::BadHex)
        );
        let long = vec!["AB"; 65].join(":");
        assert_eq!(
            Fingerprint::parse(&format!("sha-512 {long}")),
            Err(FingerprintError::WrongLength)
        );
    }

    #[test]
    fn generated_certificate() {
        let c = Certificate::generate().expect("generate");
        let fp = c.fingerprint_sha256();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.bytes().enumerate().all(|(i, b)| if i % 3 == 2 {
            b == b':'
        } else {
            b.is_ascii_hexdigit() && !b.is_ascii_lowercase()
        }));
        assert_eq!(
            c.fingerprint(HashAlgorithm::Sha256),
            Fingerprint::of_der(HashAlgorithm::Sha256, &c.der())
        );
        let again = Certificate::from_pem(&c.cert_pem(), &c.key_pem()).expect("round trip");
        assert_eq!(again.fingerprint_sha256(), fp);
        assert_eq!(again.der(), c.der());

        let other = Certificate::generate().expect("generate");
        assert_ne!(other.fingerprint_sha256(), fp);
        assert_eq!(
            Certificate::from_pem(&c.cert_pem(), &other.key_pem()).map(|_| ()),
            Err(CertificateError::KeyMismatch)
        );
        assert_eq!(
            Certificate::from_pem(b"junk", &c.key_pem()).map(|_| ()),
            Err(CertificateError::BadPem)
        );

        for alg in HashAlgorithm::ALL {
            let f = c.fingerprint(alg);
            assert_eq!(f.as_bytes().len(), alg.digest_len());
            assert!(matches(&c.x509, &[f]));
            assert!(!matches(&other.x509, &[f]));
        }
        // Only the strongest offered hash function counts.
        let weak_ok = c.fingerprint(HashAlgorithm::Sha1);
        let strong_bad = other.fingerprint(HashAlgorithm::Sha512);
        assert!(!matches(&c.x509, &[weak_ok, strong_bad]));
        assert!(!matches(&c.x509, &[]));
    }
}
