//! The digest computation of RFC 2617, RFC 7616 and RFC 8760 (SIP), for
//! both sides: what a server checks and what a client sends.

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// A digest algorithm (RFC 7616 §3.4.1; RFC 8760 for SIP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5` (RFC 2617; the default when `algorithm` is absent).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (RFC 8760).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm, strongest first.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Md5,
        Algorithm::Md5Sess,
    ];

    /// The token used in `algorithm=` (RFC 7616 spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Parses an `algorithm=` token (case-insensitive).
    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether this is a `-sess` variant (HA1 also covers nonce and cnonce).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 32,
            _ => 64,
        }
    }

    /// Lower-case hex of the hash of the concatenated `parts`.
    pub fn hex(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex_of::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex_of::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex_of::<Sha512_256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex_of<D: Digest>(parts: &[&[u8]]) -> String {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    let out = d.finalize();
    let mut s = String::with_capacity(out.len() * 2);
    for b in out {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// Quality of protection (RFC 7616 §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: method and URI are covered.
    Auth,
    /// `auth-int`: the body is covered too.
    AuthInt,
}

impl Qop {
    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// Parses a token (case-insensitive).
    pub fn parse(s: &str) -> Option<Qop> {
        if s.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// `qop`, `nc` and `cnonce` of a response (absent for RFC 2069 clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QopParams<'a> {
    /// The chosen qop.
    pub qop: Qop,
    /// The nonce count as sent: 8 hex digits.
    pub nc: &'a str,
    /// The client nonce.
    pub cnonce: &'a str,
}

/// Everything the digest `response` depends on.
#[derive(Clone, Copy, Debug)]
pub struct DigestInput<'a> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The `username` as sent.
    pub username: &'a str,
    /// The realm.
    pub realm: &'a str,
    /// The password.
    pub password: &'a str,
    /// The request method (`REGISTER`, `INVITE` ...).
    pub method: &'a str,
    /// The `uri` parameter (the Request-URI as the client wrote it).
    pub uri: &'a str,
    /// The server nonce.
    pub nonce: &'a str,
    /// qop, nc, cnonce; `None` for the RFC 2069 form.
    pub qop: Option<QopParams<'a>>,
    /// The message body (only used with `auth-int`).
    pub body: &'a [u8],
}

impl DigestInput<'_> {
    /// `H(username:realm:password)`, and for `-sess`
    /// `H(H(username:realm:password):nonce:cnonce)`.
    pub fn ha1(&self) -> String {
        let a = self.algorithm;
        let base = a.hex(&[
            self.username.as_bytes(),
            b":",
            self.realm.as_bytes(),
            b":",
            self.password.as_bytes(),
        ]);
        if a.is_session() {
            let cnonce = self.qop.map_or("", |q| q.cnonce);
            a.hex(&[
                base.as_bytes(),
                b":",
                self.nonce.as_bytes(),
                b":",
                cnonce.as_bytes(),
            ])
        } else {
            base
        }
    }

    /// `H(method:uri)` or, with `auth-int`, `H(method:uri:H(body))`.
    pub fn ha2(&self) -> String {
        let a = self.algorithm;
        match self.qop {
            Some(QopParams {
                qop: Qop::AuthInt, ..
            }) => {
                let hb = a.hex(&[self.body]);
                a.hex(&[
                    self.method.as_bytes(),
                    b":",
                    self.uri.as_bytes(),
                    b":",
                    hb.as_bytes(),
                ])
            }
            _ => a.hex(&[self.method.as_bytes(), b":", self.uri.as_bytes()]),
        }
    }

    /// The `response` value (lower-case hex).
    pub fn response(&self) -> String {
        let a = self.algorithm;
        let (ha1, ha2) = (self.ha1(), self.ha2());
        match self.qop {
            Some(q) => a.hex(&[
                ha1.as_bytes(),
                b":",
                self.nonce.as_bytes(),
                b":",
                q.nc.as_bytes(),
                b":",
                q.cnonce.as_bytes(),
                b":",
                q.qop.as_str().as_bytes(),
                b":",
                ha2.as_bytes(),
            ]),
            None => a.hex(&[
                ha1.as_bytes(),
                b":",
                self.nonce.as_bytes(),
                b":",
                ha2.as_bytes(),
            ]),
        }
    }
}

/// Writes `text` as a quoted string (`"` and `\` escaped).
pub(crate) fn quoted(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_tokens_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
            assert_eq!(Algorithm::parse(&a.as_str().to_lowercase()), Some(a));
            assert_eq!(a.hex(&[b"x"]).len(), a.hex_len());
        }
        assert_eq!(Algorithm::parse("SHA-1"), None);
        assert_eq!(Qop::parse("AUTH-INT"), Some(Qop::AuthInt));
        assert_eq!(Qop::parse("auth-conf"), None);
    }

    #[test]
    fn hashes_are_the_standard_ones() {
        // FIPS 180 / RFC 1321 test strings.
        assert_eq!(
            Algorithm::Md5.hex(&[b"abc"]),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            Algorithm::Sha256.hex(&[b"a", b"bc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Algorithm::Sha512_256.hex(&[b"abc"]),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\c"), r#""a\"b\\c""#);
    }
}
