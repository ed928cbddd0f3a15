//! Fuzz entry points (feature `fuzz`), called by the cargo-fuzz crate.
//!
//! They must never panic on any input; they assert only invariants.

use std::time::{Duration, SystemTime};

use super::{
    client_authorization, credentials_from_query, AuthFailure, DigestAuthenticator, FailureAction,
};
use crate::config::{Auth, User};

fn authenticator() -> DigestAuthenticator {
    let config = Auth {
        realm: "strait".into(),
        users: vec![User {
            name: "alice".into(),
            password: "alice-secret".into(),
        }],
        ephemeral_secret: Some("0123456789abcdef0123".into()),
        nonce_lifetime_s: 300,
        legacy_requires_auth: false,
    };
    DigestAuthenticator::with_key(&config, [42; 32])
}

/// Verifies arbitrary bytes as an Authorization header value (first line:
/// the value; the rest, if any, is the body). Must not panic; a failure must
/// map to a 400/403 or a challenge. Then the same input is spliced into a
/// valid answer to a real challenge (replacing the response parameter's
/// value and the nonce count), which must not be accepted unless it is
/// exactly the valid answer.
pub fn auth_verify(data: &[u8]) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut auth = authenticator();
    let text = String::from_utf8_lossy(data);
    let (value, body) = text.split_once('\n').unwrap_or((&text, ""));
    match auth.verify(now, "REGISTER", "sip:localhost", value, body.as_bytes()) {
        Ok(user) => assert!(!user.user.is_empty()),
        Err(f) => match f.action() {
            FailureAction::Reject(s) => assert!(s == 400 || s == 403),
            FailureAction::Challenge { .. } => {}
        },
    }
    let _ = credentials_from_query(&text);
    let _ = auth.verify_ephemeral_password(1_700_000_000, value, body);

    // A valid answer with the fuzz input as the response value.
    let mut zero = |b: &mut [u8]| b.fill(0);
    let challenge = auth.challenge(now, &mut zero, false);
    let good = client_authorization(
        &challenge[0],
        "alice",
        "alice-secret",
        "REGISTER",
        "sip:localhost",
        b"",
        "cn",
        1,
    )
    .expect("our own challenge is usable");
    let start = good.find("response=\"").expect("has a response") + 10;
    let end = start + good[start..].find('"').expect("quoted");
    let inner = value.replace('"', "");
    let forged = format!("{}{}{}", &good[..start], inner, &good[end..]);
    match auth.verify(now, "REGISTER", "sip:localhost", &forged, b"") {
        Ok(_) => assert!(inner.eq_ignore_ascii_case(&good[start..end])),
        Err(f) => assert_ne!(f, AuthFailure::Replayed),
    }
}
