//! What the `openssl` crate does not wrap.
//!
//! OpenSSL's DTLS retransmission timer reads the wall clock
//! (`gettimeofday`) and would retransmit on its own from inside
//! `SSL_do_handshake`/`SSL_read`. [`park_retransmission_timer`] installs a
//! timer callback (`DTLS_set_timer_cb`, OpenSSL ≥ 1.1.1) that sets every
//! timeout to an hour, so OpenSSL never retransmits by itself during a
//! handshake; the endpoint runs the RFC 6347 timer on the `Instant`s its
//! caller passes in and retransmits the saved flight itself.

use std::ffi::c_uint;

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl_sys::SSL;

/// What the callback returns: one hour, in microseconds (fits a `c_uint`).
/// A handshake gives up long before (`DtlsConfig::max_retransmits`).
const PARKED_TIMEOUT_US: c_uint = 3_600_000_000;

type DtlsTimerCb = unsafe extern "C" fn(*mut SSL, c_uint) -> c_uint;

extern "C" {
    /// `void DTLS_set_timer_cb(SSL *s, DTLS_timer_cb cb)` from libssl.
    fn DTLS_set_timer_cb(s: *mut SSL, cb: Option<DtlsTimerCb>);
}

/// The timer callback: ignores its arguments, never unwinds.
unsafe extern "C" fn parked_timeout(_ssl: *mut SSL, _previous_us: c_uint) -> c_uint {
    PARKED_TIMEOUT_US
}

/// Makes OpenSSL's own DTLS retransmission timer (practically) never fire.
pub(crate) fn park_retransmission_timer(ssl: &mut SslRef) {
    // SAFETY: `ssl.as_ptr()` is a live `SSL*` borrowed mutably for the call;
    // `DTLS_set_timer_cb` only stores the function pointer in it.
    // `parked_timeout` matches `DTLS_timer_cb` (`unsigned int (*)(SSL *,
    // unsigned int)`), is `'static`, dereferences nothing and cannot unwind.
    unsafe { DTLS_set_timer_cb(ssl.as_ptr(), Some(parked_timeout)) }
}

/// `X509_V_ERR_CERT_REJECTED`, which OpenSSL answers with a
/// `bad_certificate` alert; the `openssl` crate has no constant for it.
pub(crate) fn cert_rejected() -> openssl::x509::X509VerifyResult {
    // SAFETY: the value is one of OpenSSL's own verify error numbers, so
    // the methods that look it up (e.g. `error_string`) find it.
    unsafe { openssl::x509::X509VerifyResult::from_raw(openssl_sys::X509_V_ERR_CERT_REJECTED) }
}
