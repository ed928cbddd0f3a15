//! Time-limited credentials shared with a web service (Kamailio's
//! `auth_ephemeral`, the TURN REST API scheme).
//!
//! A web application that has logged its user in hands the browser a user
//! name `expiry:user` (expiry in UNIX seconds) and the password
//! `base64(HMAC-SHA1(secret, "expiry:user"))`; Strait knows only the shared
//! secret, so nothing has to be provisioned per user and nothing needs to be
//! revoked: the credentials stop working at `expiry`. The browser presents
//! them on the WebSocket handshake (`wss://host/?username=…&password=…`,
//! checked with [`DigestAuthenticator::verify_ephemeral_password`]) or uses
//! them as its SIP digest credentials (checked by
//! [`DigestAuthenticator::verify`]).
//!
//! [`DigestAuthenticator::verify_ephemeral_password`]: super::DigestAuthenticator::verify_ephemeral_password
//! [`DigestAuthenticator::verify`]: super::DigestAuthenticator::verify

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// `base64(HMAC-SHA1(secret, username))`, the password that goes with an
/// ephemeral user name.
pub fn ephemeral_password(secret: &[u8], username: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Makes ephemeral credentials for `user` valid until `expires_unix`:
/// `(user name, password)`. What the web service does; useful for tests and
/// for a management API that hands out tokens.
pub fn mint_ephemeral(secret: &[u8], user: &str, expires_unix: u64) -> (String, String) {
    let username = format!("{expires_unix}:{user}");
    let password = ephemeral_password(secret, &username);
    (username, password)
}

/// Splits an ephemeral user name `expiry:user` into the expiry (UNIX
/// seconds) and the user. `None` unless the expiry is all digits (at most
/// 20) and the user is not empty.
pub fn parse_ephemeral_username(username: &str) -> Option<(u64, &str)> {
    let (expiry, user) = username.split_once(':')?;
    if expiry.is_empty() || expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if user.is_empty() {
        return None;
    }
    Some((expiry.parse().ok()?, user))
}

/// The `username` and `password` query parameters of a WebSocket handshake
/// request target (e.g. `/ws?username=1700000000%3Aalice&password=abc%2B%3D`),
/// percent-decoded. A `+` is kept as a plus sign (base64 passwords contain
/// it), not turned into a space. `None` if either is missing, repeated, or
/// not UTF-8 after decoding.
pub fn credentials_from_query(target: &str) -> Option<(String, String)> {
    let query = target.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    let (mut user, mut pass) = (None, None);
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "username" => &mut user,
            "password" => &mut pass,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(percent_decode(value)?);
    }
    Some((user?, pass?))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_base64_hmac_sha1() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?")
        // = effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        assert_eq!(
            ephemeral_password(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
        let (u, p) = mint_ephemeral(b"0123456789abcdef", "alice", 1_700_000_000);
        assert_eq!(u, "1700000000:alice");
        assert_eq!(p, ephemeral_password(b"0123456789abcdef", &u));
    }

    #[test]
    fn usernames() {
        assert_eq!(parse_ephemeral_username("123:bob"), Some((123, "bob")));
        assert_eq!(parse_ephemeral_username("123:b:c"), Some((123, "b:c")));
        for bad in [
            "bob",
            ":bob",
            "123:",
            "12a:bob",
            "99999999999999999999999:x",
        ] {
            assert_eq!(parse_ephemeral_username(bad), None, "{bad}");
        }
    }

    #[test]
    fn handshake_query() {
        assert_eq!(
            credentials_from_query("/?username=1700000000%3Aalice&password=ab+c%2F%3D&x=1"),
            Some(("1700000000:alice".into(), "ab+c/=".into()))
        );
        assert_eq!(
            credentials_from_query("/ws?password=p&username=u#frag"),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(credentials_from_query("/ws?username=u"), None);
        assert_eq!(credentials_from_query("/ws"), None);
        assert_eq!(credentials_from_query("/?username=u&password=%zz"), None);
        assert_eq!(credentials_from_query("/?username=u&password=%e"), None);
        assert_eq!(
            credentials_from_query("/?username=u&username=v&password=p"),
            None
        );
    }
}
