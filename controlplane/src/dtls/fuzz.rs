//! Fuzz entry points (feature `fuzz`), called by the cargo-fuzz crate.
//!
//! They must never panic on any input; they assert only invariants of the
//! endpoint.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Certificate, DtlsConfig, DtlsContext, DtlsEndpoint, Event, Fingerprint, Role, State};

/// One context per process: generating a key per input would dominate.
fn context() -> &'static (DtlsContext, Fingerprint) {
    static CONTEXT: OnceLock<(DtlsContext, Fingerprint)> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let local = Certificate::generate().expect("certificate generation works");
        let peer = Certificate::generate().expect("certificate generation works");
        let ctx = DtlsContext::new(&local, DtlsConfig::default()).expect("default config is valid");
        (ctx, peer.fingerprint(super::HashAlgorithm::Sha256))
    })
}

/// Feeds arbitrary datagrams to a fresh server endpoint.
///
/// `data` is a sequence of chunks `[ctl, len_hi, len_lo, bytes…]`: `len`
/// (mod 2048, capped by what is left) bytes form one datagram; if `ctl` is
/// odd the clock first advances by `ctl * 100 ms` and the timer runs. Checks
/// that no datagram exceeds the MTU, that the counters account for every
/// datagram, that the endpoint never connects (no input can present the
/// pinned certificate's key), and that the state matches the events.
pub fn dtls_handle(data: &[u8]) {
    feed(Role::Server, data);
}

/// Like [`dtls_handle`] with a fresh client endpoint (which has sent its
/// ClientHello), so server flights get parsed.
pub fn dtls_handle_client(data: &[u8]) {
    feed(Role::Client, data);
}

fn feed(role: Role, data: &[u8]) {
    let (ctx, pin) = context();
    let start = Instant::now();
    let mut now = start;
    let Ok(mut ep) = DtlsEndpoint::new(ctx, role, &[*pin], now) else {
        panic!("endpoint creation does not depend on input");
    };
    let mut rest = data;
    let mut fed = 0u64;
    let mut failed = false;
    while let [ctl, hi, lo, tail @ ..] = rest {
        if ctl % 2 == 1 {
            now += Duration::from_millis(100) * u32::from(*ctl);
            ep.handle_timeout(now);
        }
        let len = (usize::from(u16::from_be_bytes([*hi, *lo])) % 2048).min(tail.len());
        let (datagram, after) = tail.split_at(len);
        rest = after;
        let _ = ep.handle_packet(now, datagram);
        fed += 1;
        while let Some(d) = ep.poll_output() {
            assert!(d.len() <= ctx.config().mtu, "datagram above the MTU");
        }
        while let Some(e) = ep.poll_event() {
            match e {
                Event::Connected { .. } => panic!("connected without the pinned key"),
                Event::Failed(_) => failed = true,
                Event::Closed => panic!("closed without connecting"),
            }
        }
        if let Some(t) = ep.poll_timeout() {
            assert!(t > start, "timer set in the past");
        }
    }
    let c = ep.counters();
    assert_eq!(
        c.packets_in + c.packets_refused,
        fed,
        "datagrams unaccounted"
    );
    assert_eq!(
        ep.state() == State::Failed,
        failed,
        "state and events disagree"
    );
}

/// Parses `data` as an SDP fingerprint attribute value; an accepted one
/// must print back to a string that parses to the same fingerprint.
pub fn dtls_fingerprint(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(fp) = text.parse::<Fingerprint>() {
        let printed = fp.to_string();
        assert_eq!(
            printed.parse::<Fingerprint>(),
            Ok(fp),
            "print/parse round trip"
        );
        assert_eq!(fp.as_bytes().len(), fp.algorithm().digest_len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_bodies_run() {
        dtls_handle(&[]);
        dtls_handle(&[0, 0, 20, 22, 0xfe, 0xfd]);
        let mut seed = Vec::new();
        for i in 0..40u8 {
            seed.extend_from_slice(&[i, 0, 60]);
            seed.extend((0..60u8).map(|b| b.wrapping_mul(i) ^ 0x16));
        }
        dtls_handle(&seed);
        dtls_handle_client(&seed);
        dtls_fingerprint(b"sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33");
        dtls_fingerprint(b"sha-256 zz");
        dtls_fingerprint(&[0xff, 0xfe]);
    }
}
