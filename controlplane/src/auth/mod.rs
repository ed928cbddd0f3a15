//! Authentication: SIP digest (RFC 3261 §22, RFC 7616, RFC 8760) against
//! the users in the configuration, and time-limited credentials shared with
//! a web service ([`ephemeral`]: Kamailio's `auth_ephemeral`, the TURN REST
//! scheme).
//!
//! Sans-IO: the wall-clock time is a parameter (`SystemTime`; nonces carry
//! their issue time in UNIX seconds) and randomness comes from a
//! caller-provided [`RandomSource`]. Nothing here reads a clock or a socket.
//!
//! # Flow
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use strait::auth::{client_authorization, ChallengeKind, DigestAuthenticator};
//! use strait::config::Config;
//! use strait::sip::{HeaderName, Message};
//!
//! let config = Config::default_config(); // users alice / bob
//! let mut counter = 0u8;
//! let mut rng = |buf: &mut [u8]| buf.iter_mut().for_each(|b| { counter = counter.wrapping_add(1); *b = counter });
//! let mut auth = DigestAuthenticator::new(&config.auth, &mut rng);
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//!
//! let register = b"REGISTER sip:localhost SIP/2.0\r\n\
//! Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
//! To: <sip:alice@localhost>\r\nFrom: <sip:alice@localhost>;tag=1\r\n\
//! Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
//! let Message::Request(mut req) = Message::parse(register)? else { unreachable!() };
//!
//! // No credentials: answer the challenge (401, one WWW-Authenticate per algorithm).
//! let failure = auth.authenticate_request(now, &req, ChallengeKind::Www).unwrap_err();
//! let resp = auth.failure_response(now, &mut rng, &req, ChallengeKind::Www, failure);
//! assert_eq!(resp.status, 401);
//!
//! // The client answers (what JsSIP computes), and is let in.
//! let challenge = resp.headers.get(HeaderName::WwwAuthenticate).unwrap();
//! let creds = client_authorization(challenge, "alice", "alice-secret", "REGISTER", "sip:localhost", b"", "0a4f113b", 1).unwrap();
//! req.headers.push(HeaderName::Authorization, creds);
//! let user = auth.authenticate_request(now, &req, ChallengeKind::Www).unwrap();
//! assert_eq!(user.user, "alice");
//! // The same credentials again are a replay.
//! assert!(auth.authenticate_request(now, &req, ChallengeKind::Www).is_err());
//! # Ok::<(), strait::sip::ParseError>(())
//! ```
//!
//! # Design
//!
//! - **Stateless nonces.** A nonce embeds its issue time and an HMAC-SHA256
//!   tag under a per-authenticator key (random from the caller's source, or
//!   given with [`DigestAuthenticator::with_key`] so that several processes
//!   accept each other's nonces). Checking expiry needs no per-challenge
//!   state, so challenges cost no memory. A restart with a new key makes
//!   outstanding nonces unknown: clients get a fresh challenge.
//! - **Replay protection** is a bounded cache of the `nc` values seen per
//!   nonce, filled only by requests whose digest was correct (an attacker
//!   without credentials cannot fill it); see the `nonce` module notes. A
//!   nonce used without `qop` is good for one request.
//! - **Order of checks.** The digest is verified before the nonce's age, so
//!   `stale=true` is only ever sent to a client whose credentials were right
//!   (RFC 7616 §3.3: the client may then retry without asking its user).
//!   Unknown users cost the same hashing as known ones.
//! - **Algorithms.** MD5, SHA-256 and SHA-512-256 and their `-sess` forms
//!   are verified; qop `auth`, `auth-int` (the body is passed in) and none
//!   (RFC 2069). A challenge carries one header per algorithm (RFC 8760
//!   §2.4), SHA-256 first by default. **But JsSIP keeps only the last
//!   WWW-/Proxy-Authenticate header it parses (others only the first) and
//!   gives up unless it is MD5**, so [`DigestAuthenticator::offer_for`]
//!   offers browsers (top Via WS/WSS) MD5 alone, and everything else
//!   SHA-256 then MD5. The headless-Chromium test (`scripts/e2e.sh`)
//!   registers the real JsSIP page this way.
//! - **Failures** map to statuses with [`AuthFailure::action`]: no or
//!   unusable credentials, a nonce we did not issue, a stale or replayed one
//!   are answered with a new challenge (401/407, `stale=true` for the last
//!   two); malformed credentials or a `uri` that is not the Request-URI with
//!   400; an unknown user, a wrong password or expired ephemeral credentials
//!   with 403, which ends the attempt (clients do not retry a 403).

pub mod digest;
pub mod ephemeral;
mod nonce;

#[cfg(feature = "fuzz")]
pub mod fuzz;

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

use subtle::ConstantTimeEq;

pub use digest::{Algorithm, DigestInput, Qop, QopParams};
pub use ephemeral::{
    credentials_from_query, ephemeral_password, mint_ephemeral, parse_ephemeral_username,
};

use crate::config;
use crate::sip::{AuthValue, HeaderName, Request, Response, Uri};
use nonce::{NonceMint, ReplayCache, ReplayVerdict};

/// A source of random bytes, provided by the caller (e.g. the operating
/// system's generator). Any `FnMut(&mut [u8])` is one.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// Which challenge: 401 with WWW-Authenticate / Authorization (registrar,
/// UAS) or 407 with Proxy-Authenticate / Proxy-Authorization (proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// 401, `WWW-Authenticate`, answered with `Authorization`.
    Www,
    /// 407, `Proxy-Authenticate`, answered with `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// 401 or 407.
    pub fn status(self) -> u16 {
        match self {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        }
    }

    /// The header carrying the challenge.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            ChallengeKind::Www => HeaderName::WwwAuthenticate,
            ChallengeKind::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    /// The header carrying the credentials.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            ChallengeKind::Www => HeaderName::Authorization,
            ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// Who a request was authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The SIP user: what the From/To user must be. For ephemeral
    /// credentials, the part after `expiry:`.
    pub user: String,
    /// The user name of the credentials as presented.
    pub username: String,
    /// The digest algorithm used; `None` when a password was checked
    /// directly ([`DigestAuthenticator::verify_ephemeral_password`]).
    pub algorithm: Option<Algorithm>,
    /// For ephemeral credentials, when they expire (UNIX seconds).
    pub expires_unix: Option<u64>,
}

/// Why authentication failed. Small and `Copy` so the caller can count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No credentials for our realm.
    NoCredentials,
    /// Credentials that do not follow the grammar or lack a parameter.
    Malformed,
    /// A scheme other than Digest.
    UnsupportedScheme,
    /// A digest algorithm we do not know.
    UnsupportedAlgorithm,
    /// A qop other than `auth` / `auth-int`, or `userhash`.
    UnsupportedQop,
    /// The realm is not ours.
    RealmMismatch,
    /// The `uri` parameter is not the Request-URI.
    UriMismatch,
    /// A nonce we did not issue (or issued under a previous key).
    BadNonce,
    /// Right credentials, but the nonce is too old (or was forgotten).
    StaleNonce,
    /// This nonce and nonce count were used before.
    Replayed,
    /// No such user.
    UnknownUser,
    /// The digest does not match the password.
    WrongPassword,
    /// Ephemeral credentials past their expiry.
    CredentialsExpired,
}

/// What to answer after an [`AuthFailure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureAction {
    /// Send a new challenge (401/407), with `stale=true` if set.
    Challenge {
        /// Whether only the nonce was wrong (the client may retry silently).
        stale: bool,
    },
    /// Refuse with this status (400 or 403).
    Reject(u16),
}

impl AuthFailure {
    /// What to answer.
    pub fn action(self) -> FailureAction {
        match self {
            AuthFailure::Malformed | AuthFailure::UriMismatch => FailureAction::Reject(400),
            AuthFailure::UnknownUser
            | AuthFailure::WrongPassword
            | AuthFailure::CredentialsExpired => FailureAction::Reject(403),
            AuthFailure::StaleNonce | AuthFailure::Replayed => {
                FailureAction::Challenge { stale: true }
            }
            AuthFailure::NoCredentials
            | AuthFailure::UnsupportedScheme
            | AuthFailure::UnsupportedAlgorithm
            | AuthFailure::UnsupportedQop
            | AuthFailure::RealmMismatch
            | AuthFailure::BadNonce => FailureAction::Challenge { stale: false },
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::NoCredentials => "no credentials",
            AuthFailure::Malformed => "malformed credentials",
            AuthFailure::UnsupportedScheme => "unsupported authentication scheme",
            AuthFailure::UnsupportedAlgorithm => "unsupported digest algorithm",
            AuthFailure::UnsupportedQop => "unsupported qop",
            AuthFailure::RealmMismatch => "wrong realm",
            AuthFailure::UriMismatch => "digest uri differs from the Request-URI",
            AuthFailure::BadNonce => "unknown nonce",
            AuthFailure::StaleNonce => "stale nonce",
            AuthFailure::Replayed => "replayed nonce count",
            AuthFailure::UnknownUser => "unknown user",
            AuthFailure::WrongPassword => "wrong password",
            AuthFailure::CredentialsExpired => "credentials expired",
        })
    }
}

impl std::error::Error for AuthFailure {}

/// Algorithms offered by default, preferred first (RFC 8760 §2.4).
pub const DEFAULT_ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

/// Algorithms offered to browsers: JsSIP and SIP.js support only MD5, and
/// JsSIP 3.13 keeps only the last challenge header it parses, so a second
/// (SHA-256) header would make it give up.
pub const BROWSER_ALGORITHMS: [Algorithm; 1] = [Algorithm::Md5];

/// Default size of the replay cache: nonces that authenticated a request
/// and have not expired (about 80 bytes each). Beyond it the oldest entries
/// are forgotten and their nonces refused as stale; with the default nonce
/// lifetime (300 s) that happens only above ~200 authentications per second,
/// and then affects only nonces older than the cache's span.
pub const DEFAULT_REPLAY_CAPACITY: usize = 65_536;

/// Nonces issued further than this in the future (clock stepped back) are
/// not trusted.
const FUTURE_SKEW_S: u64 = 60;

/// Verifies digest credentials and ephemeral tokens; issues challenges.
pub struct DigestAuthenticator {
    realm: String,
    users: HashMap<String, String>,
    ephemeral_secret: Option<Vec<u8>>,
    nonce_lifetime_s: u64,
    mint: NonceMint,
    replay: ReplayCache,
}

impl fmt::Debug for DigestAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestAuthenticator")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("ephemeral", &self.ephemeral_secret.is_some())
            .field("nonce_lifetime_s", &self.nonce_lifetime_s)
            .field("replay_entries", &self.replay.len())
            .finish()
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DigestAuthenticator {
    /// An authenticator for `config`, with a nonce key drawn from `rng`.
    pub fn new<R: RandomSource + ?Sized>(config: &config::Auth, rng: &mut R) -> Self {
        let mut key = [0u8; 32];
        rng.fill(&mut key);
        Self::with_key(config, key)
    }

    /// An authenticator with a given nonce key (processes sharing a key
    /// accept each other's nonces).
    pub fn with_key(config: &config::Auth, key: [u8; 32]) -> Self {
        DigestAuthenticator {
            realm: config.realm.clone(),
            users: config
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password.clone()))
                .collect(),
            ephemeral_secret: config
                .ephemeral_secret
                .as_ref()
                .map(|s| s.as_bytes().to_vec()),
            nonce_lifetime_s: u64::from(config.nonce_lifetime_s),
            mint: NonceMint::new(key),
            replay: ReplayCache::new(DEFAULT_REPLAY_CAPACITY),
        }
    }

    /// Changes the replay cache capacity (clears it).
    pub fn set_replay_capacity(&mut self, capacity: usize) {
        self.replay = ReplayCache::new(capacity);
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Whether ephemeral credentials are accepted.
    pub fn ephemeral_enabled(&self) -> bool {
        self.ephemeral_secret.is_some()
    }

    /// The algorithms to offer for `req`: [`BROWSER_ALGORITHMS`] (MD5 only)
    /// when its top Via is WS or WSS, else [`DEFAULT_ALGORITHMS`].
    pub fn offer_for(req: &Request) -> &'static [Algorithm] {
        match req.headers.top_via() {
            Ok(v)
                if v.transport().eq_ignore_ascii_case("WS")
                    || v.transport().eq_ignore_ascii_case("WSS") =>
            {
                &BROWSER_ALGORITHMS
            }
            _ => &DEFAULT_ALGORITHMS,
        }
    }

    /// Challenge header values (one per algorithm, SHA-256 then MD5) with a
    /// fresh nonce; `stale=true` if `stale`.
    pub fn challenge<R: RandomSource + ?Sized>(
        &self,
        now: SystemTime,
        rng: &mut R,
        stale: bool,
    ) -> Vec<String> {
        self.challenge_with(now, rng, stale, &DEFAULT_ALGORITHMS)
    }

    /// Challenge header values for the given algorithms, in that order, all
    /// with the same fresh nonce and `qop="auth"`.
    pub fn challenge_with<R: RandomSource + ?Sized>(
        &self,
        now: SystemTime,
        rng: &mut R,
        stale: bool,
        algorithms: &[Algorithm],
    ) -> Vec<String> {
        let mut random = [0u8; 8];
        rng.fill(&mut random);
        let nonce = self.mint.issue(unix_seconds(now), random);
        let realm = digest::quoted(&self.realm);
        algorithms
            .iter()
            .map(|a| {
                let mut v =
                    format!("Digest realm={realm}, nonce=\"{nonce}\", qop=\"auth\", algorithm={a}");
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Verifies one Authorization / Proxy-Authorization value for a request
    /// with this method, Request-URI (as text) and body.
    pub fn verify(
        &mut self,
        now: SystemTime,
        method: &str,
        request_uri: &str,
        authorization: &str,
        body: &[u8],
    ) -> Result<AuthenticatedUser, AuthFailure> {
        let now_unix = unix_seconds(now);
        let v = AuthValue::parse(authorization).map_err(|_| AuthFailure::Malformed)?;
        if !v.scheme().eq_ignore_ascii_case("Digest") {
            return Err(AuthFailure::UnsupportedScheme);
        }
        // Each parameter at most once.
        for (i, (n, _)) in v.params().iter().enumerate() {
            if n.is_empty()
                || v.params()[..i]
                    .iter()
                    .any(|(m, _)| m.eq_ignore_ascii_case(n))
            {
                return Err(AuthFailure::Malformed);
            }
        }
        let need = |name: &str| v.param(name).ok_or(AuthFailure::Malformed);
        let username = need("username")?;
        let realm = need("realm")?;
        let nonce = need("nonce")?;
        let uri = need("uri")?;
        let response = need("response")?;
        if *realm != *self.realm {
            return Err(AuthFailure::RealmMismatch);
        }
        let algorithm = match v.param("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(AuthFailure::UnsupportedAlgorithm)?,
        };
        if v.param("userhash")
            .is_some_and(|h| h.eq_ignore_ascii_case("true"))
        {
            return Err(AuthFailure::UnsupportedQop);
        }
        let nc_text;
        let cnonce_text;
        let qop = match v.param("qop") {
            None => None,
            Some(q) => {
                let qop = Qop::parse(&q).ok_or(AuthFailure::UnsupportedQop)?;
                nc_text = need("nc")?;
                cnonce_text = need("cnonce")?;
                if nc_text.len() != 8
                    || !nc_text.bytes().all(|b| b.is_ascii_hexdigit())
                    || cnonce_text.is_empty()
                {
                    return Err(AuthFailure::Malformed);
                }
                Some(QopParams {
                    qop,
                    nc: &nc_text,
                    cnonce: &cnonce_text,
                })
            }
        };
        let nc = match qop {
            Some(q) => {
                let n = u32::from_str_radix(q.nc, 16).map_err(|_| AuthFailure::Malformed)?;
                if n == 0 {
                    return Err(AuthFailure::Malformed);
                }
                Some(n)
            }
            None => None,
        };
        if algorithm.is_session() && qop.is_none() {
            return Err(AuthFailure::Malformed);
        }
        if response.len() != algorithm.hex_len() || !response.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(AuthFailure::Malformed);
        }
        if !uri_matches(request_uri, &uri) {
            return Err(AuthFailure::UriMismatch);
        }
        let id = self.mint.check(&nonce).ok_or(AuthFailure::BadNonce)?;
        if id.issued > now_unix.saturating_add(FUTURE_SKEW_S) {
            return Err(AuthFailure::BadNonce);
        }

        // Who, and with which password.
        let mut ephemeral_expiry = None;
        let mut user = username.to_string();
        let derived;
        let password: Option<&str> =
            match (&self.ephemeral_secret, parse_ephemeral_username(&username)) {
                (Some(secret), Some((expiry, u))) => {
                    ephemeral_expiry = Some(expiry);
                    user = u.to_string();
                    derived = ephemeral_password(secret, &username);
                    Some(&derived)
                }
                _ => self.users.get(&*username).map(String::as_str),
            };
        let input = DigestInput {
            algorithm,
            username: &username,
            realm: &self.realm,
            // Unknown users cost the same work as known ones.
            password: password.unwrap_or("\u{0}unknown"),
            method,
            uri: &uri,
            nonce: &nonce,
            qop,
            body,
        };
        let expected = input.response();
        let given = response.to_ascii_lowercase();
        let same: bool = expected.as_bytes().ct_eq(given.as_bytes()).into();
        if password.is_none() {
            return Err(AuthFailure::UnknownUser);
        }
        if !same {
            return Err(AuthFailure::WrongPassword);
        }
        if now_unix.saturating_sub(id.issued) > self.nonce_lifetime_s {
            return Err(AuthFailure::StaleNonce);
        }
        if ephemeral_expiry.is_some_and(|e| e <= now_unix) {
            return Err(AuthFailure::CredentialsExpired);
        }
        let oldest_valid = now_unix.saturating_sub(self.nonce_lifetime_s);
        match self.replay.record(id, nc, oldest_valid) {
            ReplayVerdict::Fresh => {}
            ReplayVerdict::Replayed => return Err(AuthFailure::Replayed),
            ReplayVerdict::Forgotten => return Err(AuthFailure::StaleNonce),
        }
        Ok(AuthenticatedUser {
            user,
            username: username.into_owned(),
            algorithm: Some(algorithm),
            expires_unix: ephemeral_expiry,
        })
    }

    /// Checks ephemeral credentials given directly (e.g. the `username` and
    /// `password` query parameters of the WebSocket handshake, see
    /// [`credentials_from_query`]).
    pub fn verify_ephemeral_password(
        &self,
        now_unix: u64,
        username: &str,
        password: &str,
    ) -> Result<AuthenticatedUser, AuthFailure> {
        let secret = self
            .ephemeral_secret
            .as_ref()
            .ok_or(AuthFailure::UnknownUser)?;
        let (expiry, user) = parse_ephemeral_username(username).ok_or(AuthFailure::UnknownUser)?;
        let expected = ephemeral_password(secret, username);
        let same: bool = expected.as_bytes().ct_eq(password.as_bytes()).into();
        if !same {
            return Err(AuthFailure::WrongPassword);
        }
        if expiry <= now_unix {
            return Err(AuthFailure::CredentialsExpired);
        }
        Ok(AuthenticatedUser {
            user: user.to_string(),
            username: username.to_string(),
            algorithm: None,
            expires_unix: Some(expiry),
        })
    }

    /// Authenticates a request: takes the first credentials of `kind` for
    /// our realm (a request may carry credentials for several realms) and
    /// [`verifies`](Self::verify) them against the request's method,
    /// Request-URI and body.
    pub fn authenticate_request(
        &mut self,
        now: SystemTime,
        req: &Request,
        kind: ChallengeKind,
    ) -> Result<AuthenticatedUser, AuthFailure> {
        let mut malformed = false;
        let mut chosen = None;
        for value in req.headers.get_all(kind.credentials_header()) {
            match AuthValue::parse(value) {
                Ok(v) => {
                    if v.scheme().eq_ignore_ascii_case("Digest")
                        && v.param("realm").as_deref() == Some(self.realm.as_str())
                    {
                        chosen = Some(value);
                        break;
                    }
                }
                Err(_) => malformed = true,
            }
        }
        match chosen {
            Some(value) => self.verify(
                now,
                req.method.as_str(),
                &req.uri.to_string(),
                value,
                &req.body,
            ),
            None if malformed => Err(AuthFailure::Malformed),
            None => Err(AuthFailure::NoCredentials),
        }
    }

    /// A 401/407 for `req` with a fresh challenge (algorithms in the
    /// [`offer_for`](Self::offer_for) order).
    pub fn challenge_response<R: RandomSource + ?Sized>(
        &self,
        now: SystemTime,
        rng: &mut R,
        req: &Request,
        kind: ChallengeKind,
        stale: bool,
    ) -> Response {
        let mut resp = Response::from_request(req, kind.status());
        let _ = resp.set_to_tag(&to_tag_for(req));
        for v in self.challenge_with(now, rng, stale, Self::offer_for(req)) {
            resp.headers.push(kind.challenge_header(), v);
        }
        resp
    }

    /// The answer to a failed [`authenticate_request`](Self::authenticate_request):
    /// a new challenge, or 400/403 with the reason in the phrase (the same
    /// for an unknown user and a wrong password, so that user names cannot
    /// be probed).
    pub fn failure_response<R: RandomSource + ?Sized>(
        &self,
        now: SystemTime,
        rng: &mut R,
        req: &Request,
        kind: ChallengeKind,
        failure: AuthFailure,
    ) -> Response {
        match failure.action() {
            FailureAction::Challenge { stale } => {
                self.challenge_response(now, rng, req, kind, stale)
            }
            FailureAction::Reject(status) => {
                let mut resp = Response::from_request(req, status);
                // Unknown user and wrong password look the same from outside.
                let why = match failure {
                    AuthFailure::UnknownUser | AuthFailure::WrongPassword => "bad credentials",
                    AuthFailure::CredentialsExpired => "credentials expired",
                    AuthFailure::UriMismatch => "digest uri differs from the Request-URI",
                    _ => "malformed credentials",
                };
                let reason = format!("{} ({why})", resp.reason);
                resp = resp.with_reason(&reason);
                let _ = resp.set_to_tag(&to_tag_for(req));
                resp
            }
        }
    }
}

/// Whether the digest `uri` designates the Request-URI: the same text, or
/// equivalent URIs (RFC 3261 §19.1.4).
fn uri_matches(request_uri: &str, digest_uri: &str) -> bool {
    if request_uri == digest_uri {
        return true;
    }
    match (Uri::parse(request_uri), Uri::parse(digest_uri)) {
        (Ok(a), Ok(b)) => a.equivalent(&b),
        _ => false,
    }
}

/// A deterministic To tag for a response generated here (the same request
/// gets the same tag, as RFC 3261 §8.2.7 wants for stateless answers).
pub(crate) fn to_tag_for(req: &Request) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.headers.get(HeaderName::CallId).hash(&mut h);
    req.headers.get(HeaderName::From).hash(&mut h);
    req.headers.get(HeaderName::CSeq).hash(&mut h);
    format!("sr{:016x}", h.finish())
}

/// What a client sends in answer to a challenge: parses the challenge
/// `challenge` (one WWW-Authenticate / Proxy-Authenticate value), picks its
/// qop (`auth` when offered, else none) and computes the Authorization value
/// for `username` / `password`, the request's method, Request-URI and body,
/// with the given client nonce and nonce count. `None` if the challenge is
/// not a usable Digest challenge. Used by tests, and by a B2BUA answering a
/// carrier's challenge.
#[allow(clippy::too_many_arguments)]
pub fn client_authorization(
    challenge: &str,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let c = AuthValue::parse(challenge).ok()?;
    if !c.scheme().eq_ignore_ascii_case("Digest") {
        return None;
    }
    let realm = c.param("realm")?;
    let nonce = c.param("nonce")?;
    let algorithm = match c.param("algorithm") {
        None => Algorithm::Md5,
        Some(a) => Algorithm::parse(&a)?,
    };
    let offered = c.param("qop");
    let qop = offered.as_deref().and_then(|q| {
        q.split(',')
            .map(str::trim)
            .find(|t| t.eq_ignore_ascii_case("auth"))
            .map(|_| Qop::Auth)
    });
    if offered.is_some() && qop.is_none() {
        return None;
    }
    let nc_text = format!("{nc:08x}");
    let input = DigestInput {
        algorithm,
        username,
        realm: &realm,
        password,
        method,
        uri,
        nonce: &nonce,
        qop: qop.map(|q| QopParams {
            qop: q,
            nc: &nc_text,
            cnonce,
        }),
        body,
    };
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{}\", algorithm={}",
        digest::quoted(username),
        digest::quoted(&realm),
        digest::quoted(&nonce),
        digest::quoted(uri),
        input.response(),
        algorithm
    );
    if let Some(q) = qop {
        out.push_str(&format!(
            ", qop={}, nc={nc_text}, cnonce={}",
            q.as_str(),
            digest::quoted(cnonce)
        ));
    }
    if let Some(o) = c.param("opaque") {
        out.push_str(&format!(", opaque={}", digest::quoted(&o)));
    }
    Some(out)
}
