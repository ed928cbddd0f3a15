//! The DTLS-SRTP handshake (RFC 5763/5764 over DTLS 1.2, RFC 6347), sans-IO.
//!
//! The data plane punts DTLS records (first byte 20..=63, RFC 7983) that
//! arrive on a browser-facing media port to the control plane, with the leg
//! and the source address. A [`DtlsEndpoint`] per leg consumes them
//! ([`DtlsEndpoint::handle_packet`]), produces the datagrams to send back
//! through the data plane's socket ([`DtlsEndpoint::poll_output`]), asks to
//! be woken for retransmissions ([`DtlsEndpoint::poll_timeout`],
//! [`DtlsEndpoint::handle_timeout`]) and reports [`Event::Connected`] with
//! the SRTP master keys and salts of both directions, or [`Event::Failed`].
//! Keys belong to the DTLS association, not to an address: the endpoint
//! never looks at addresses, so the browser may switch candidate pairs.
//!
//! ```
//! use std::time::Instant;
//! use strait::dtls::{Certificate, DtlsConfig, DtlsContext, DtlsEndpoint, Event, Role};
//!
//! let now = Instant::now();
//! let (cert_a, cert_b) = (Certificate::generate()?, Certificate::generate()?);
//! let ctx_a = DtlsContext::new(&cert_a, DtlsConfig::default())?;
//! let ctx_b = DtlsContext::new(&cert_b, DtlsConfig::default())?;
//! // Each side expects the fingerprint the other put in its SDP.
//! let mut server = DtlsEndpoint::new(&ctx_a, Role::Server, &[ctx_b.fingerprint()], now)?;
//! let mut client = DtlsEndpoint::new(&ctx_b, Role::Client, &[ctx_a.fingerprint()], now)?;
//! for _ in 0..10 {
//!     while let Some(d) = client.poll_output() {
//!         let _ = server.handle_packet(now, &d);
//!     }
//!     while let Some(d) = server.poll_output() {
//!         let _ = client.handle_packet(now, &d);
//!     }
//! }
//! let Some(Event::Connected { srtp: s }) = server.poll_event() else { panic!() };
//! let Some(Event::Connected { srtp: c }) = client.poll_event() else { panic!() };
//! assert_eq!(s.suite(), strait_srtp::Suite::AeadAes128Gcm);
//! assert_eq!(s.local_master(), c.remote_master());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! - **OpenSSL does the cryptography and the state machine** (`openssl`
//!   crate, DTLS 1.2 only, ECDHE with AES-GCM or ChaCha20-Poly1305, extended
//!   master secret, `use_srtp` with exactly the suites the data plane
//!   implements, in [`DtlsConfig::srtp_suites`] order). It was chosen over
//!   the pure-Rust sans-IO `dimpl` because `dimpl` hard-codes its SRTP
//!   profile preference with `SRTP_AEAD_AES_256_GCM` first, which Chrome
//!   offers and `strait-srtp` does not implement, and cannot negotiate
//!   `AES_CM_128_HMAC_SHA1_32`; `dimpl` serves as the independent
//!   implementation in the interop tests instead.
//! - **No I/O, no clock.** OpenSSL talks to an in-memory datagram channel
//!   (one `read` = one datagram). Its own retransmission timer, which reads
//!   the wall clock, is parked (a one-hour `DTLS_set_timer_cb`, the only
//!   `unsafe` here). The endpoint runs the RFC 6347 §4.2.4.1 timer itself on
//!   the caller's `Instant`s: the last flight OpenSSL wrote is kept and
//!   resent after [`DtlsConfig::initial_rto`], doubling up to
//!   [`DtlsConfig::max_rto`], at most [`DtlsConfig::max_retransmits`] times,
//!   then [`FailReason::Timeout`]. Resent plaintext (epoch 0) records get
//!   fresh record sequence numbers — the endpoint numbers all epoch-0
//!   records it sends — so the peer's replay window accepts them. After the
//!   handshake, a server resends its final flight when the client
//!   retransmits its `Finished` (RFC 6347 §4.2.4), whether or not OpenSSL's
//!   replay check let the retransmission through — at most
//!   `max_retransmits` times, since an encrypted handshake record that fails
//!   authentication triggers it too.
//! - **Datagrams are packed** from whole records up to [`DtlsConfig::mtu`]
//!   bytes (OpenSSL fragments handshake messages to fit).
//! - **The peer certificate is pinned to the SDP fingerprint** (RFC 8122:
//!   `sha-1` to `sha-512`, the strongest offered hash function decides),
//!   during the handshake from OpenSSL's verify callback — so a mismatch is
//!   answered with a `bad_certificate` alert — and again before keys are
//!   released. A mismatch fails with [`FailReason::FingerprintMismatch`]
//!   ("DTLS fingerprint mismatch").
//! - **Keys by role.** The exporter output (`EXTRACTOR-dtls_srtp`, RFC 5764
//!   §4.2) is split with [`strait_srtp::Suite::split_dtls_keying_material`];
//!   the DTLS client sends with the client key and salt, so
//!   [`SrtpKeys::local_master`] is the client half for [`Role::Client`] and
//!   the server half for [`Role::Server`].
//! - **Hostile input is counted, never fatal to the process.** Packets that
//!   are not DTLS or are too large are refused with an [`InputError`];
//!   records OpenSSL cannot authenticate are dropped by it. Buffers are
//!   bounded: one input datagram at a time, at most
//!   [`DtlsEndpoint::MAX_QUEUED_OUTPUT`] datagrams waiting in
//!   [`DtlsEndpoint::poll_output`], flights capped in size.
//!
//! Known limit: in the client role, if the server's final flight is lost,
//! recovery depends on the server answering our retransmitted flight, whose
//! encrypted `Finished` is byte-identical to the first (its record number
//! cannot be changed without the record keys; the plaintext records before
//! it do get new numbers). A Strait server and `dimpl` answer (tested); a
//! plain OpenSSL server drops it as a replay and the handshake times out
//! (checked by disabling Strait's resend); Chrome was not tested. Toward
//! browsers Strait answers `a=setup:passive` and is the server.

mod cert;
mod endpoint;
mod ffi;
#[cfg(feature = "fuzz")]
pub mod fuzz;
mod record;

use core::fmt;
use std::time::Duration;

use openssl::ssl::{
    SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use strait_srtp::Suite;

pub use cert::{Certificate, CertificateError, Fingerprint, FingerprintError, HashAlgorithm};
pub use endpoint::{
    DtlsCounters, DtlsEndpoint, Event, FailReason, InputError, Role, SrtpKeys, State,
};

/// Endpoint settings, shared by all endpoints of a [`DtlsContext`].
///
/// ```
/// let mut config = strait::dtls::DtlsConfig::default();
/// config.srtp_suites = vec![strait_srtp::Suite::AesCm128HmacSha1_80];
/// config.max_retransmits = 3;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DtlsConfig {
    /// SRTP protection profiles to offer (client) or accept (server), most
    /// preferred first; a server picks by its own order. Default
    /// [`Suite::ALL`] (GCM first).
    pub srtp_suites: Vec<Suite>,
    /// Largest datagram sent, in bytes (UDP payload). Default 1200, as
    /// browsers use. Range 256..=9000.
    pub mtu: usize,
    /// First retransmission timeout. Default 1 s (RFC 6347 §4.2.4.1).
    pub initial_rto: Duration,
    /// Largest retransmission timeout after doubling. Default 60 s; at most
    /// an hour.
    pub max_rto: Duration,
    /// Retransmissions of one flight before the handshake fails with
    /// [`FailReason::Timeout`]. Default 5: with the default timeouts, a
    /// peer that never answers is given up on 63 s after the flight was
    /// first sent.
    pub max_retransmits: u32,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        Self {
            srtp_suites: Suite::ALL.to_vec(),
            mtu: 1200,
            initial_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(60),
            max_retransmits: 5,
        }
    }
}

/// Why a [`DtlsContext`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`DtlsConfig::srtp_suites`] is empty.
    NoSrtpSuites,
    /// A suite in [`DtlsConfig::srtp_suites`] has no DTLS-SRTP profile name
    /// known here.
    UnsupportedSuite,
    /// [`DtlsConfig::mtu`] is outside 256..=9000.
    BadMtu,
    /// A zero [`DtlsConfig::initial_rto`], `max_rto < initial_rto`, or a
    /// `max_rto` above an hour.
    BadTimers,
    /// OpenSSL refused the certificate, key or settings.
    OpenSsl,
    /// An endpoint was created without any remote fingerprint.
    NoRemoteFingerprint,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::NoSrtpSuites => "no SRTP suites configured for DTLS-SRTP",
            ConfigError::UnsupportedSuite => "SRTP suite has no DTLS-SRTP profile",
            ConfigError::BadMtu => "DTLS MTU must be within 256..=9000",
            ConfigError::BadTimers => "DTLS retransmission timeouts are invalid",
            ConfigError::OpenSsl => "OpenSSL rejected the DTLS context settings",
            ConfigError::NoRemoteFingerprint => {
                "no remote DTLS fingerprint to verify the peer with"
            }
        })
    }
}

impl std::error::Error for ConfigError {}

/// Largest accepted [`DtlsConfig::max_rto`].
const MAX_RTO_LIMIT: Duration = Duration::from_secs(3600);

/// The OpenSSL name of a suite's DTLS-SRTP protection profile.
fn openssl_profile_name(suite: Suite) -> Option<&'static str> {
    match suite {
        Suite::AeadAes128Gcm => Some("SRTP_AEAD_AES_128_GCM"),
        Suite::AesCm128HmacSha1_80 => Some("SRTP_AES128_CM_SHA1_80"),
        Suite::AesCm128HmacSha1_32 => Some("SRTP_AES128_CM_SHA1_32"),
        _ => None,
    }
}

/// Cipher suites: ECDHE only, AEAD only. ECDSA first (our certificate);
/// RSA so that a peer with an RSA certificate can still be a server.
const CIPHER_LIST: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-RSA-CHACHA20-POLY1305";

/// A local certificate plus settings, from which endpoints are made.
///
/// Build one per certificate and share it (it is `Send + Sync`); creating
/// an endpoint from it is cheap.
pub struct DtlsContext {
    ssl: SslContext,
    config: DtlsConfig,
    fingerprint: Fingerprint,
}

impl fmt::Debug for DtlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsContext")
            .field("config", &self.config)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DtlsContext {
    /// Validates `config` and prepares an OpenSSL context with the
    /// certificate.
    pub fn new(cert: &Certificate, config: DtlsConfig) -> Result<Self, ConfigError> {
        if config.srtp_suites.is_empty() {
            return Err(ConfigError::NoSrtpSuites);
        }
        let profiles = config
            .srtp_suites
            .iter()
            .map(|&s| openssl_profile_name(s))
            .collect::<Option<Vec<_>>>()
            .ok_or(ConfigError::UnsupportedSuite)?
            .join(":");
        if !(256..=9000).contains(&config.mtu) {
            return Err(ConfigError::BadMtu);
        }
        if config.initial_rto.is_zero()
            || config.max_rto < config.initial_rto
            || config.max_rto > MAX_RTO_LIMIT
        {
            return Err(ConfigError::BadTimers);
        }
        let ssl = Self::build(cert, &profiles).map_err(|_| ConfigError::OpenSsl)?;
        Ok(Self {
            ssl,
            config,
            fingerprint: cert.fingerprint(HashAlgorithm::Sha256),
        })
    }

    fn build(cert: &Certificate, profiles: &str) -> Result<SslContext, openssl::error::ErrorStack> {
        let mut b = SslContextBuilder::new(SslMethod::dtls())?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_cipher_list(CIPHER_LIST)?;
        b.set_certificate(&cert.x509)?;
        b.set_private_key(&cert.key)?;
        b.check_private_key()?;
        b.set_tlsext_use_srtp(profiles)?;
        // No resumption: every association is a full handshake (RFC 5763).
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(
            SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION | SslOptions::NO_QUERY_MTU,
        );
        // The real check is per endpoint (the fingerprint callback); this
        // makes the server request a certificate and require one.
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        Ok(b.build())
    }

    /// The settings.
    pub fn config(&self) -> &DtlsConfig {
        &self.config
    }

    /// The local certificate's SHA-256 fingerprint, for the local SDP's
    /// `a=fingerprint:`.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}
