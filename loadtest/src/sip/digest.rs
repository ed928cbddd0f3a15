//! SIP digest authentication, client side (RFC 3261 §22.4, RFC 7616 with
//! RFC 8760's SHA-256 for SIP): parse a `WWW-Authenticate` /
//! `Proxy-Authenticate` challenge, compute the `Authorization` /
//! `Proxy-Authorization` value with `qop=auth`.

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// The digest algorithm of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (the default when absent).
    Md5,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Realm.
    pub realm: String,
    /// Nonce.
    pub nonce: String,
    /// Opaque, echoed back.
    pub opaque: Option<String>,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Whether `qop` offers `auth`.
    pub qop_auth: bool,
}

/// Splits `k=v, k="v, with comma"` into pairs.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    // Bounded: every pass consumes at least one byte.
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] == b',' {
            if !key.is_empty() {
                out.push((key, String::new()));
            }
            continue;
        }
        i += 1; // '='
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
                v.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
            i += 1; // closing quote (or past the end)
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            s[vs..i].trim().to_string()
        };
        out.push((key, value));
    }
    out
}

impl Challenge {
    /// Parses one challenge header value; `None` if it is not a usable
    /// Digest challenge (unknown algorithm, no nonce).
    pub fn parse(value: &str) -> Option<Challenge> {
        let v = value.trim();
        let rest = v
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("digest"))
            .map(|_| &v[6..])?;
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = Algorithm::Md5;
        let mut qop_auth = false;
        for (k, val) in params(rest) {
            match k.as_str() {
                "realm" => realm = Some(val),
                "nonce" => nonce = Some(val),
                "opaque" => opaque = Some(val),
                "algorithm" => {
                    algorithm = if val.eq_ignore_ascii_case("md5") {
                        Algorithm::Md5
                    } else if val.eq_ignore_ascii_case("sha-256") {
                        Algorithm::Sha256
                    } else {
                        return None;
                    }
                }
                "qop" => {
                    qop_auth = val
                        .split(',')
                        .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                }
                _ => {}
            }
        }
        Some(Challenge {
            realm: realm?,
            nonce: nonce?,
            opaque,
            algorithm,
            qop_auth,
        })
    }

    /// The best usable challenge among several header values (SHA-256 first).
    pub fn pick<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
        let mut all: Vec<Challenge> = values.filter_map(Challenge::parse).collect();
        all.sort_by_key(|c| c.algorithm != Algorithm::Sha256);
        all.into_iter().next()
    }

    /// The credentials header value for `method` on `uri`; `cnonce` is the
    /// client nonce and `nc` the nonce count.
    pub fn answer(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let a = self.algorithm;
        let ha1 = a.hash(&format!("{user}:{}:{password}", self.realm));
        let ha2 = a.hash(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let (response, qop) = if self.qop_auth {
            (
                a.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce)),
                format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""),
            )
        } else {
            (
                a.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
                String::new(),
            )
        };
        let opaque = self
            .opaque
            .as_ref()
            .map_or(String::new(), |o| format!(", opaque=\"{o}\""));
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}{qop}{opaque}",
            self.realm,
            self.nonce,
            a.token()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5 (HTTP, but the same computation).
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop_auth);
        let a = c.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        );
        assert!(
            a.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{a}"
        );
        assert!(
            a.contains("nc=00000001") && a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"")
        );
    }

    #[test]
    fn rfc7616_sha256_example() {
        // RFC 7616 §3.9.1, SHA-256 response.
        let c = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let a = c.answer(
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        assert!(
            a.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{a}"
        );
    }

    #[test]
    fn picks_sha256_and_refuses_unknown() {
        let md5 = "Digest realm=strait, nonce=\"n1\", qop=\"auth\", algorithm=MD5";
        let sha = "Digest realm=\"strait\", nonce=\"n2\", qop=\"auth\", algorithm=SHA-256";
        let c = Challenge::pick([md5, sha].into_iter()).unwrap();
        assert_eq!((c.algorithm, c.nonce.as_str()), (Algorithm::Sha256, "n2"));
        assert_eq!(Challenge::parse(md5).unwrap().realm, "strait");
        assert!(Challenge::parse("Digest realm=x, nonce=y, algorithm=SHA-512-256").is_none());
        assert!(Challenge::parse("Basic realm=x").is_none());
        assert!(Challenge::parse("Digest realm=x").is_none());
        assert!(Challenge::pick(["Basic x"].into_iter()).is_none());
    }
}
