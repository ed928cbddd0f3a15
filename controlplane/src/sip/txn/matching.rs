//! Transaction matching keys (RFC 3261 §17.1.3, §17.2.3; RFC 2543 fallback)
//! and branch generation.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::sip::header::HeaderName;
use crate::sip::message::{Request, Response};
use crate::sip::typed::{Method, Via, BRANCH_MAGIC_COOKIE};
use crate::sip::uri::Host;
use crate::sip::ParseError;

/// The alphabet of [`make_branch`]: URL-safe base64, all token characters.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A new RFC 3261 branch: the magic cookie `z9hG4bK` followed by the 128
/// caller-provided random bits, encoded as 22 token characters.
///
/// The branch must be unique across space and time and should be hard to
/// guess (a guessable branch lets an off-path attacker inject responses or a
/// CANCEL), so pass bytes from a cryptographic source, e.g.
/// `ring::rand::SystemRandom` or `getrandom`.
pub fn make_branch(random: [u8; 16]) -> String {
    let mut out = String::with_capacity(BRANCH_MAGIC_COOKIE.len() + 22);
    out.push_str(BRANCH_MAGIC_COOKIE);
    let bits = u128::from_be_bytes(random);
    // 22 groups of 6 bits, most significant first; the first holds only the
    // top 2 bits.
    for i in 0..22u32 {
        let v = (bits >> (126 - 6 * i)) & 0x3f;
        out.push(char::from(ALPHABET[v as usize]));
    }
    out
}

/// Whether `branch` starts with the RFC 3261 magic cookie and has something
/// after it.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > BRANCH_MAGIC_COOKIE.len() && branch.starts_with(BRANCH_MAGIC_COOKIE)
}

/// Matches a response to a client transaction: the branch of the top Via
/// (compared case-insensitively, RFC 3261 §7.3.1) and the CSeq method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientMatch {
    branch: Box<str>,
    method: Method,
}

impl ClientMatch {
    pub(crate) fn new(branch: &str, method: Method) -> ClientMatch {
        ClientMatch {
            branch: branch.to_ascii_lowercase().into(),
            method,
        }
    }

    /// The key a response matches, or `None` if its top Via has no branch.
    pub(crate) fn of_response(resp: &Response) -> Result<Option<ClientMatch>, ParseError> {
        let via = resp.headers.top_via()?;
        let cseq = resp.headers.cseq()?;
        Ok(via.branch().map(|b| ClientMatch::new(b, cseq.method)))
    }

    /// The same branch with another method (the CANCEL of an INVITE).
    pub(crate) fn with_method(&self, method: Method) -> ClientMatch {
        ClientMatch {
            branch: self.branch.clone(),
            method,
        }
    }
}

/// Matches a request to a server transaction. ACK is keyed as INVITE (it
/// belongs to the INVITE transaction); CANCEL has its own transaction and is
/// related to the INVITE with [`ServerMatch::with_method`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ServerMatch {
    /// RFC 3261 §17.2.3: branch, sent-by and method.
    Rfc3261 {
        branch: Box<str>,
        sent_by: Box<str>,
        method: Method,
    },
    /// RFC 2543 (branch without the magic cookie, or none): Request-URI,
    /// From tag, Call-ID, CSeq number and top Via (without the `received`
    /// and `rport` our transport adds), plus the method. The To tag is not
    /// compared, see the module documentation.
    Rfc2543 {
        uri: Box<str>,
        from_tag: Box<str>,
        call_id: Box<str>,
        cseq: u32,
        via: Box<str>,
        method: Method,
    },
}

fn key_method(m: &Method) -> Method {
    if *m == Method::Ack {
        Method::Invite
    } else {
        m.clone()
    }
}

fn host_key(host: &Host<'_>) -> String {
    match host.ip() {
        Some(ip) => ip.to_string(),
        None => host.to_string().to_ascii_lowercase(),
    }
}

impl ServerMatch {
    pub(crate) fn of_request(req: &Request) -> Result<ServerMatch, ParseError> {
        let via = req.headers.top_via()?;
        let method = key_method(&req.method);
        if let Some(branch) = via.branch().filter(|b| is_rfc3261_branch(b)) {
            let mut sent_by = host_key(via.host());
            if let Some(p) = via.port() {
                sent_by.push(':');
                sent_by.push_str(&p.to_string());
            }
            return Ok(ServerMatch::Rfc3261 {
                branch: branch.to_ascii_lowercase().into(),
                sent_by: sent_by.into(),
                method,
            });
        }
        let mut v: Via<'_> = via;
        v.params_mut().remove("received");
        v.params_mut().remove("rport");
        let from_tag = req.headers.from_addr()?.tag().unwrap_or("").into();
        Ok(ServerMatch::Rfc2543 {
            uri: req.uri.to_string().into(),
            from_tag,
            call_id: req.headers.call_id()?.into(),
            cseq: req.headers.cseq()?.seq,
            via: v.to_string().to_ascii_lowercase().into(),
            method,
        })
    }

    /// The same key with another method.
    pub(crate) fn with_method(&self, m: Method) -> ServerMatch {
        let mut k = self.clone();
        match &mut k {
            ServerMatch::Rfc3261 { method, .. } | ServerMatch::Rfc2543 { method, .. } => {
                *method = m;
            }
        }
        k
    }
}

/// The To tag of a response.
pub(crate) fn to_tag(resp: &Response) -> Option<String> {
    resp.headers.to_addr().ok()?.tag().map(str::to_owned)
}

/// A deterministic To tag for a response the layer generates itself (the
/// same request gets the same tag, RFC 3261 §8.2.7).
pub(crate) fn derived_tag(req: &Request) -> String {
    let mut h = DefaultHasher::new();
    "strait-txn".hash(&mut h);
    for name in [
        HeaderName::Via,
        HeaderName::CallId,
        HeaderName::From,
        HeaderName::CSeq,
    ] {
        req.headers.get(name).hash(&mut h);
    }
    format!("t{:016x}", h.finish())
}

/// A 64-bit digest of a body, to recognise identical provisional responses.
pub(crate) fn body_digest(body: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_format() {
        let b = make_branch([0xff; 16]);
        assert!(is_rfc3261_branch(&b));
        assert_eq!(b.len(), 7 + 22);
        assert!(b[7..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(make_branch([0; 16]), make_branch([1; 16]));
        assert_eq!(make_branch([0; 16]), "z9hG4bKAAAAAAAAAAAAAAAAAAAAAA");
        // Every input bit shows in the output.
        let base = make_branch([0; 16]);
        for byte in 0..16 {
            for bit in 0..8 {
                let mut r = [0u8; 16];
                r[byte] = 1 << bit;
                assert_ne!(make_branch(r), base, "byte {byte} bit {bit}");
            }
        }
    }
}
