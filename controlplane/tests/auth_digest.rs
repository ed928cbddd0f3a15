//! Digest authentication: RFC test vectors, vectors computed by JsSIP
//! (3.13.8, `lib/DigestAuthentication.js` run under node), and the
//! challenge → answer → verify flows, replay, staleness and ephemeral
//! credentials.

use std::time::{Duration, SystemTime};

use strait::auth::{
    client_authorization, credentials_from_query, mint_ephemeral, Algorithm, AuthFailure,
    ChallengeKind, DigestAuthenticator, DigestInput, FailureAction, Qop, QopParams,
};
use strait::config::{Auth, User};
use strait::sip::{AuthValue, HeaderName, Message, Request};

const SECRET: &str = "a-shared-secret-for-tests";

fn config() -> Auth {
    Auth {
        realm: "strait".into(),
        users: vec![
            User {
                name: "alice".into(),
                password: "alice-secret".into(),
            },
            User {
                name: "bob".into(),
                password: "bob-secret".into(),
            },
        ],
        ephemeral_secret: Some(SECRET.into()),
        nonce_lifetime_s: 300,
        legacy_requires_auth: false,
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

const T0: u64 = 1_700_000_000;

fn zeros(b: &mut [u8]) {
    b.fill(0)
}

fn counter() -> impl FnMut(&mut [u8]) {
    let mut n = 0u8;
    move |b: &mut [u8]| {
        for x in b {
            n = n.wrapping_add(1);
            *x = n;
        }
    }
}

fn register(via_transport: &str, user: &str) -> Request {
    let text = format!(
        "REGISTER sip:localhost SIP/2.0\r\n\
Via: SIP/2.0/{via_transport} df7jal23ls0d.invalid;branch=z9hG4bK4711;rport\r\n\
Max-Forwards: 69\r\n\
To: <sip:{user}@localhost>\r\n\
From: <sip:{user}@localhost>;tag=8d6f3c\r\n\
Call-ID: 6ve6dvhrs3sg5hbf6ilg3p\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws>;reg-id=1;+sip.instance=\"<urn:uuid:5d0e8f53-4a4c-4c0e-9f8a-0f0d1a2b3c4d>\";expires=600\r\n\
Supported: path, gruu, outbound\r\n\
User-Agent: JsSIP 3.13.8\r\n\
Content-Length: 0\r\n\r\n"
    );
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

/// What JsSIP does with a 401: take the first challenge, MD5 only, qop auth.
fn jssip_answer(resp_challenge: &str, user: &str, password: &str, nc: u32) -> String {
    let c = AuthValue::parse(resp_challenge).unwrap();
    assert_eq!(
        c.param("algorithm").as_deref(),
        Some("MD5"),
        "JsSIP gives up on anything but MD5 in the first challenge"
    );
    client_authorization(
        resp_challenge,
        user,
        password,
        "REGISTER",
        "sip:localhost",
        b"",
        "k3sl2c0q5n8d",
        nc,
    )
    .unwrap()
}

#[test]
fn rfc7616_example_md5_and_sha256() {
    // RFC 7616 §3.9.1.
    let qop = QopParams {
        qop: Qop::Auth,
        nc: "00000001",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    };
    let mut input = DigestInput {
        algorithm: Algorithm::Sha256,
        username: "Mufasa",
        realm: "http-auth@example.org",
        password: "Circle of Life",
        method: "GET",
        uri: "/dir/index.html",
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        qop: Some(qop),
        body: b"",
    };
    assert_eq!(
        input.response(),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    input.algorithm = Algorithm::Md5;
    assert_eq!(input.response(), "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn rfc2617_example() {
    // RFC 2617 §3.5.
    let input = DigestInput {
        algorithm: Algorithm::Md5,
        username: "Mufasa",
        realm: "testrealm@host.com",
        password: "Circle Of Life",
        method: "GET",
        uri: "/dir/index.html",
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop: Some(QopParams {
            qop: Qop::Auth,
            nc: "00000001",
            cnonce: "0a4f113b",
        }),
        body: b"",
    };
    assert_eq!(input.response(), "6629fae49393a05397450978507c4ef1");
}

#[test]
fn jssip_computed_vectors() {
    // Output of JsSIP's DigestAuthentication.authenticate() for the same inputs.
    let base = DigestInput {
        algorithm: Algorithm::Md5,
        username: "alice",
        realm: "strait",
        password: "alice-secret",
        method: "REGISTER",
        uri: "sip:localhost",
        nonce: "AAAAAGVT8QABAgMEBQYHCAkKCwwNDg8QERITFBUWFxg",
        qop: Some(QopParams {
            qop: Qop::Auth,
            nc: "00000001",
            cnonce: "f2/wE4q74E6z",
        }),
        body: b"",
    };
    assert_eq!(base.response(), "57645d920bcfa730d9a8d74a2b869fd0");
    let auth_int = DigestInput {
        method: "INVITE",
        uri: "sip:bob@localhost",
        nonce: "n1",
        qop: Some(QopParams {
            qop: Qop::AuthInt,
            nc: "00000001",
            cnonce: "abc",
        }),
        body: b"v=0\r\n",
        ..base
    };
    assert_eq!(auth_int.response(), "40c4e6e9ab635fc88c4df871eeff0688");
    let rfc2069 = DigestInput {
        nonce: "n2",
        qop: None,
        ..base
    };
    assert_eq!(rfc2069.response(), "4912fcb925ad93f4d3d0c581e83d73fc");
}

#[test]
fn jssip_authorization_header_verifies_and_cannot_be_replayed() {
    let mut auth = DigestAuthenticator::with_key(&config(), [7; 32]);
    let challenge = auth.challenge_with(at(T0), &mut zeros, false, &[Algorithm::Md5]);
    assert!(challenge[0].contains("nonce=\"AAAAAGVT8QAAAAAAAAAAAKIo1GO14PUYHfYpYKC80_c\""));
    // Exactly what JsSIP 3.13.8 sent for that challenge (nc 1, then 2).
    let first = r#"Digest algorithm=MD5, username="alice", realm="strait", nonce="AAAAAGVT8QAAAAAAAAAAAKIo1GO14PUYHfYpYKC80_c", uri="sip:localhost", response="9899801c0e2e22e512f79bc13118b72d", qop=auth, cnonce="k3sl2c0q5n8d", nc=00000001"#;
    let second = r#"Digest algorithm=MD5, username="alice", realm="strait", nonce="AAAAAGVT8QAAAAAAAAAAAKIo1GO14PUYHfYpYKC80_c", uri="sip:localhost", response="489b17bfaaba7a6ce9eb46c388b84aad", qop=auth, cnonce="k3sl2c0q5n8d", nc=00000002"#;
    let now = at(T0 + 5);
    let user = auth
        .verify(now, "REGISTER", "sip:localhost", first, b"")
        .unwrap();
    assert_eq!(user.user, "alice");
    assert_eq!(user.algorithm, Some(Algorithm::Md5));
    assert_eq!(
        auth.verify(now, "REGISTER", "sip:localhost", first, b""),
        Err(AuthFailure::Replayed)
    );
    assert!(auth
        .verify(now, "REGISTER", "sip:localhost", second, b"")
        .is_ok());
    assert_eq!(
        auth.verify(now, "REGISTER", "sip:localhost", second, b""),
        Err(AuthFailure::Replayed)
    );
    // Another method or URI with the same answer is not accepted.
    let third = second.replace("nc=00000002", "nc=00000003");
    assert_eq!(
        auth.verify(now, "REGISTER", "sip:localhost", &third, b""),
        Err(AuthFailure::WrongPassword)
    );
    assert_eq!(
        auth.verify(now, "REGISTER", "sip:other", second, b""),
        Err(AuthFailure::UriMismatch)
    );
}

#[test]
fn jssip_register_flow_over_websocket() {
    let mut rng = counter();
    let mut auth = DigestAuthenticator::new(&config(), &mut rng);
    let mut req = register("WSS", "alice");
    let now = at(T0);

    let f = auth
        .authenticate_request(now, &req, ChallengeKind::Www)
        .unwrap_err();
    assert_eq!(f, AuthFailure::NoCredentials);
    let resp = auth.failure_response(now, &mut rng, &req, ChallengeKind::Www, f);
    assert_eq!(resp.status, 401);
    assert!(resp.headers.to_addr().unwrap().tag().is_some());
    let challenges: Vec<&str> = resp.headers.get_all(HeaderName::WwwAuthenticate).collect();
    // Browsers get MD5 alone: JsSIP keeps only the last challenge header
    // and gives up on anything but MD5 (seen with the real page in
    // headless Chromium).
    assert_eq!(challenges.len(), 1, "MD5 only toward browsers");
    let first = AuthValue::parse(challenges[0]).unwrap();
    assert_eq!(first.param("algorithm").as_deref(), Some("MD5"));
    assert_eq!(first.param("qop").as_deref(), Some("auth"));
    assert_eq!(first.param("realm").as_deref(), Some("strait"));
    assert!(first.param("stale").is_none());

    let creds = jssip_answer(challenges[0], "alice", "alice-secret", 1);
    req.headers.push(HeaderName::Authorization, creds);
    let user = auth
        .authenticate_request(at(T0 + 1), &req, ChallengeKind::Www)
        .unwrap();
    assert_eq!(user.user, "alice");
    assert_eq!(user.username, "alice");
    assert_eq!(user.expires_unix, None);

    // Replayed: a new challenge with stale=true (the client may retry silently).
    let f = auth
        .authenticate_request(at(T0 + 2), &req, ChallengeKind::Www)
        .unwrap_err();
    assert_eq!(f, AuthFailure::Replayed);
    let resp = auth.failure_response(at(T0 + 2), &mut rng, &req, ChallengeKind::Www, f);
    assert_eq!(resp.status, 401);
    let c = AuthValue::parse(resp.headers.get(HeaderName::WwwAuthenticate).unwrap()).unwrap();
    assert_eq!(c.param("stale").as_deref(), Some("true"));
    assert_ne!(c.param("nonce"), first.param("nonce"));
}

#[test]
fn legacy_clients_get_sha256_first() {
    let mut rng = counter();
    let mut auth = DigestAuthenticator::new(&config(), &mut rng);
    let mut req = register("UDP", "bob");
    let now = at(T0);
    let resp = auth.challenge_response(now, &mut rng, &req, ChallengeKind::Www, false);
    let challenge = resp.headers.get(HeaderName::WwwAuthenticate).unwrap();
    assert!(challenge.contains("algorithm=SHA-256"));
    let creds = client_authorization(
        challenge,
        "bob",
        "bob-secret",
        "REGISTER",
        "sip:localhost",
        b"",
        "xyz",
        1,
    )
    .unwrap();
    req.headers.push(HeaderName::Authorization, creds);
    let user = auth
        .authenticate_request(now, &req, ChallengeKind::Www)
        .unwrap();
    assert_eq!(user.algorithm, Some(Algorithm::Sha256));
    // The default challenge is SHA-256 first too.
    let plain = auth.challenge(now, &mut rng, false);
    assert!(plain[0].contains("algorithm=SHA-256") && plain[1].contains("algorithm=MD5"));
}

#[test]
fn expired_nonce_is_stale_only_with_the_right_password() {
    let mut auth = DigestAuthenticator::with_key(&config(), [1; 32]);
    let c = auth.challenge(at(T0), &mut zeros, false);
    let answer = |pw: &str| {
        client_authorization(&c[1], "alice", pw, "REGISTER", "sip:localhost", b"", "c", 1).unwrap()
    };
    let late = at(T0 + 301);
    assert_eq!(
        auth.verify(late, "REGISTER", "sip:localhost", &answer("wrong"), b""),
        Err(AuthFailure::WrongPassword)
    );
    let f = auth
        .verify(
            late,
            "REGISTER",
            "sip:localhost",
            &answer("alice-secret"),
            b"",
        )
        .unwrap_err();
    assert_eq!(f, AuthFailure::StaleNonce);
    assert_eq!(f.action(), FailureAction::Challenge { stale: true });
    // Within the lifetime it is fine.
    assert!(auth
        .verify(
            at(T0 + 300),
            "REGISTER",
            "sip:localhost",
            &answer("alice-secret"),
            b""
        )
        .is_ok());
}

#[test]
fn failures_and_their_statuses() {
    let mut auth = DigestAuthenticator::with_key(&config(), [2; 32]);
    let now = at(T0);
    let c = auth.challenge(now, &mut zeros, false);
    let md5 = &c[1];
    let answer = |user: &str, pw: &str, uri: &str| {
        client_authorization(md5, user, pw, "REGISTER", uri, b"", "cn", 1).unwrap()
    };
    let v = |auth: &mut DigestAuthenticator, value: &str| {
        auth.verify(now, "REGISTER", "sip:localhost", value, b"")
    };

    let e = v(&mut auth, &answer("alice", "nope", "sip:localhost")).unwrap_err();
    assert_eq!(
        (e, e.action()),
        (AuthFailure::WrongPassword, FailureAction::Reject(403))
    );
    let e = v(&mut auth, &answer("mallory", "x", "sip:localhost")).unwrap_err();
    assert_eq!(
        (e, e.action()),
        (AuthFailure::UnknownUser, FailureAction::Reject(403))
    );
    let e = v(&mut auth, &answer("alice", "alice-secret", "sip:elsewhere")).unwrap_err();
    assert_eq!(
        (e, e.action()),
        (AuthFailure::UriMismatch, FailureAction::Reject(400))
    );
    // The uri may be written differently if it is the same URI.
    assert!(v(&mut auth, &answer("alice", "alice-secret", "sip:LOCALHOST")).is_ok());

    // nc 2: nc 1 of this nonce was used by alice just above.
    let good = client_authorization(
        md5,
        "bob",
        "bob-secret",
        "REGISTER",
        "sip:localhost",
        b"",
        "cn",
        2,
    )
    .unwrap();
    let e = v(
        &mut auth,
        &good.replace("realm=\"strait\"", "realm=\"other\""),
    )
    .unwrap_err();
    assert_eq!(
        (e, e.action()),
        (
            AuthFailure::RealmMismatch,
            FailureAction::Challenge { stale: false }
        )
    );
    let e = v(&mut auth, &good.replace("algorithm=MD5", "algorithm=SHA-1")).unwrap_err();
    assert_eq!(e, AuthFailure::UnsupportedAlgorithm);
    let e = v(&mut auth, &good.replace("qop=auth", "qop=auth-conf")).unwrap_err();
    assert_eq!(e, AuthFailure::UnsupportedQop);
    let e = v(&mut auth, &good.replace("Digest ", "Basic ")).unwrap_err();
    assert_eq!(e, AuthFailure::UnsupportedScheme);
    let e = v(&mut auth, &good.replace(", nc=00000002", "")).unwrap_err();
    assert_eq!(
        (e, e.action()),
        (AuthFailure::Malformed, FailureAction::Reject(400))
    );
    let e = v(&mut auth, &format!("{good}, nonce=\"x\"")).unwrap_err();
    assert_eq!(e, AuthFailure::Malformed, "duplicate parameter");
    let e = v(&mut auth, &good.replace("nc=00000002", "nc=00000000")).unwrap_err();
    assert_eq!(e, AuthFailure::Malformed);
    for garbage in ["", "Digest", "Digest username=", "Digest ,,,", "\u{0}\u{1}"] {
        assert!(v(&mut auth, garbage).is_err(), "{garbage:?}");
    }

    // A nonce signed with another key (e.g. before a restart).
    let other = DigestAuthenticator::with_key(&config(), [3; 32]);
    let foreign = other.challenge(now, &mut zeros, false);
    let f = client_authorization(
        &foreign[1],
        "bob",
        "bob-secret",
        "REGISTER",
        "sip:localhost",
        b"",
        "c",
        1,
    )
    .unwrap();
    let e = v(&mut auth, &f).unwrap_err();
    assert_eq!(
        (e, e.action()),
        (
            AuthFailure::BadNonce,
            FailureAction::Challenge { stale: false }
        )
    );
    assert!(v(&mut auth, &good).is_ok());
    assert!(!e.to_string().is_empty());
}

#[test]
fn rfc2069_auth_int_and_sess() {
    let mut auth = DigestAuthenticator::with_key(&config(), [4; 32]);
    let now = at(T0);
    let mut rng = counter();
    let mut fresh_nonce = || {
        let c = auth.challenge(now, &mut rng, false);
        AuthValue::parse(&c[0])
            .unwrap()
            .param("nonce")
            .unwrap()
            .into_owned()
    };
    let (nonce, nonce2) = (fresh_nonce(), fresh_nonce());
    assert_ne!(nonce, nonce2);

    // No qop (RFC 2069): one use per nonce.
    let old = DigestInput {
        algorithm: Algorithm::Md5,
        username: "alice",
        realm: "strait",
        password: "alice-secret",
        method: "INVITE",
        uri: "sip:bob@localhost",
        nonce: &nonce,
        qop: None,
        body: b"",
    };
    let value = format!(
        "Digest username=\"alice\", realm=\"strait\", nonce=\"{nonce}\", uri=\"sip:bob@localhost\", response=\"{}\"",
        old.response()
    );
    assert!(auth
        .verify(now, "INVITE", "sip:bob@localhost", &value, b"")
        .is_ok());
    assert_eq!(
        auth.verify(now, "INVITE", "sip:bob@localhost", &value, b""),
        Err(AuthFailure::Replayed)
    );

    // auth-int covers the body.
    let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
    let int = DigestInput {
        algorithm: Algorithm::Sha256Sess,
        qop: Some(QopParams {
            qop: Qop::AuthInt,
            nc: "00000001",
            cnonce: "zz",
        }),
        body,
        nonce: &nonce2,
        ..old
    };
    let value = format!(
        "Digest username=\"alice\", realm=\"strait\", nonce=\"{nonce2}\", uri=\"sip:bob@localhost\", response=\"{}\", algorithm=SHA-256-sess, qop=auth-int, nc=00000001, cnonce=\"zz\"",
        int.response()
    );
    assert_eq!(
        auth.verify(now, "INVITE", "sip:bob@localhost", &value, b"v=1"),
        Err(AuthFailure::WrongPassword),
        "another body"
    );
    let user = auth
        .verify(now, "INVITE", "sip:bob@localhost", &value, body)
        .unwrap();
    assert_eq!(user.algorithm, Some(Algorithm::Sha256Sess));
}

#[test]
fn nonce_counts_out_of_order_and_bounded_cache() {
    let mut auth = DigestAuthenticator::with_key(&config(), [5; 32]);
    auth.set_replay_capacity(2);
    let mut rng = counter();
    let now = at(T0);
    let nonces: Vec<String> = (0..3)
        .map(|_| auth.challenge(now, &mut rng, false)[1].clone())
        .collect();
    let ans = |c: &str, nc: u32| {
        client_authorization(
            c,
            "alice",
            "alice-secret",
            "REGISTER",
            "sip:localhost",
            b"",
            "q",
            nc,
        )
        .unwrap()
    };
    let mut v = |value: String| auth.verify(now, "REGISTER", "sip:localhost", &value, b"");
    // Parallel requests may arrive out of order.
    assert!(v(ans(&nonces[0], 2)).is_ok());
    assert!(v(ans(&nonces[0], 1)).is_ok());
    assert_eq!(v(ans(&nonces[0], 2)), Err(AuthFailure::Replayed));
    assert!(v(ans(&nonces[1], 1)).is_ok());
    // A third nonce evicts the first: its replay is refused as stale, not accepted.
    assert!(v(ans(&nonces[2], 1)).is_ok());
    assert_eq!(v(ans(&nonces[0], 3)), Err(AuthFailure::StaleNonce));
    assert_eq!(v(ans(&nonces[0], 1)), Err(AuthFailure::StaleNonce));
}

#[test]
fn proxy_challenge_and_several_realms() {
    let mut rng = counter();
    let mut auth = DigestAuthenticator::new(&config(), &mut rng);
    let mut req = register("TCP", "alice");
    let now = at(T0);
    let resp = auth.challenge_response(now, &mut rng, &req, ChallengeKind::Proxy, false);
    assert_eq!(resp.status, 407);
    assert_eq!(resp.headers.count(HeaderName::ProxyAuthenticate), 2);
    assert!(!resp.headers.contains(HeaderName::WwwAuthenticate));
    let c = resp.headers.get(HeaderName::ProxyAuthenticate).unwrap();
    // Credentials for another realm first, then ours.
    req.headers.push(
        HeaderName::ProxyAuthorization,
        "Digest username=\"x\", realm=\"carrier\", nonce=\"1\", uri=\"sip:localhost\", response=\"00\"",
    );
    req.headers.push(
        HeaderName::ProxyAuthorization,
        client_authorization(
            c,
            "alice",
            "alice-secret",
            "REGISTER",
            "sip:localhost",
            b"",
            "a",
            1,
        )
        .unwrap(),
    );
    // Authorization (401 kind) is not looked at for a 407 challenge and vice versa.
    assert_eq!(
        auth.authenticate_request(now, &req, ChallengeKind::Www),
        Err(AuthFailure::NoCredentials)
    );
    assert_eq!(
        auth.authenticate_request(now, &req, ChallengeKind::Proxy)
            .unwrap()
            .user,
        "alice"
    );
    let forbidden = auth.failure_response(
        now,
        &mut rng,
        &req,
        ChallengeKind::Proxy,
        AuthFailure::WrongPassword,
    );
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.reason, "Forbidden (bad credentials)");
    let unknown = auth.failure_response(
        now,
        &mut rng,
        &req,
        ChallengeKind::Proxy,
        AuthFailure::UnknownUser,
    );
    assert_eq!(unknown.reason, forbidden.reason, "no user probing");
    assert!(!forbidden.headers.contains(HeaderName::ProxyAuthenticate));
}

#[test]
fn ephemeral_digest_credentials() {
    let mut rng = counter();
    let mut auth = DigestAuthenticator::new(&config(), &mut rng);
    assert!(auth.ephemeral_enabled());
    let now = at(T0);
    let c = auth.challenge_with(now, &mut rng, false, &[Algorithm::Md5]);
    let (user, pass) = mint_ephemeral(SECRET.as_bytes(), "carol", T0 + 3600);
    let ans = |u: &str, p: &str, nc| {
        client_authorization(&c[0], u, p, "REGISTER", "sip:localhost", b"", "e", nc).unwrap()
    };
    let ok = auth
        .verify(now, "REGISTER", "sip:localhost", &ans(&user, &pass, 1), b"")
        .unwrap();
    assert_eq!(ok.user, "carol");
    assert_eq!(ok.username, format!("{}:carol", T0 + 3600));
    assert_eq!(ok.expires_unix, Some(T0 + 3600));
    // Wrong password, and a tampered expiry, are refused.
    assert_eq!(
        auth.verify(
            now,
            "REGISTER",
            "sip:localhost",
            &ans(&user, "bm9wZQ==", 2),
            b""
        ),
        Err(AuthFailure::WrongPassword)
    );
    let longer = format!("{}:carol", T0 + 99_999);
    assert_eq!(
        auth.verify(
            now,
            "REGISTER",
            "sip:localhost",
            &ans(&longer, &pass, 3),
            b""
        ),
        Err(AuthFailure::WrongPassword)
    );
    // Expired.
    let (old_user, old_pass) = mint_ephemeral(SECRET.as_bytes(), "carol", T0 - 1);
    let e = auth
        .verify(
            now,
            "REGISTER",
            "sip:localhost",
            &ans(&old_user, &old_pass, 4),
            b"",
        )
        .unwrap_err();
    assert_eq!(
        (e, e.action()),
        (AuthFailure::CredentialsExpired, FailureAction::Reject(403))
    );

    // Without a secret, an `expiry:user` name is just an unknown user.
    let mut no_eph = config();
    no_eph.ephemeral_secret = None;
    let mut plain = DigestAuthenticator::with_key(&no_eph, [9; 32]);
    let c2 = plain.challenge_with(now, &mut zeros, false, &[Algorithm::Md5]);
    let a = client_authorization(
        &c2[0],
        &user,
        &pass,
        "REGISTER",
        "sip:localhost",
        b"",
        "e",
        1,
    )
    .unwrap();
    assert_eq!(
        plain.verify(now, "REGISTER", "sip:localhost", &a, b""),
        Err(AuthFailure::UnknownUser)
    );
}

#[test]
fn ephemeral_password_on_the_websocket_handshake() {
    let auth = DigestAuthenticator::with_key(&config(), [0; 32]);
    let (user, pass) = mint_ephemeral(SECRET.as_bytes(), "dave", T0 + 60);
    // As the browser would put them in the URL (password percent-encoded).
    let enc: String = pass
        .bytes()
        .map(|b| match b {
            b'+' => "%2B".to_string(),
            b'/' => "%2F".to_string(),
            b'=' => "%3D".to_string(),
            _ => char::from(b).to_string(),
        })
        .collect();
    let target = format!("/?username={}&password={enc}", user.replace(':', "%3A"));
    let (u, p) = credentials_from_query(&target).unwrap();
    let ok = auth.verify_ephemeral_password(T0, &u, &p).unwrap();
    assert_eq!(ok.user, "dave");
    assert_eq!(ok.algorithm, None);
    assert_eq!(
        auth.verify_ephemeral_password(T0 + 60, &u, &p),
        Err(AuthFailure::CredentialsExpired)
    );
    assert_eq!(
        auth.verify_ephemeral_password(T0, &u, "AAAA"),
        Err(AuthFailure::WrongPassword)
    );
    assert_eq!(
        auth.verify_ephemeral_password(T0, "dave", &p),
        Err(AuthFailure::UnknownUser)
    );
    let mut no_eph = config();
    no_eph.ephemeral_secret = None;
    assert_eq!(
        DigestAuthenticator::with_key(&no_eph, [0; 32]).verify_ephemeral_password(T0, &u, &p),
        Err(AuthFailure::UnknownUser)
    );
}
