//! One DTLS association: the sans-IO endpoint around an OpenSSL `SSL`.

use core::fmt;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ssl::{ErrorCode, Ssl, SslStream, SslVerifyMode};
use strait_srtp::Suite;

use super::cert::{self, Fingerprint};
use super::record::{self, HEADER_LEN};
use super::{ffi, ConfigError, DtlsContext};

/// RFC 5764 §4.2 exporter label.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// OpenSSL reports a received fatal alert as reason `1000 + description`
/// (`SSL_AD_REASON_OFFSET`).
const ALERT_REASON_OFFSET: i32 = 1000;
/// `SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE`.
const REASON_NO_PEER_CERT: i32 = 199;

/// Verify-callback outcomes shared with OpenSSL's callback.
const VERIFY_PENDING: u8 = 0;
const VERIFY_OK: u8 = 1;
const VERIFY_MISMATCH: u8 = 2;

/// Largest datagram accepted by [`DtlsEndpoint::handle_packet`].
const MAX_DATAGRAM: usize = 8192;
/// Cap on what OpenSSL may write in one step (a flight is a few kB).
const MAX_WRITTEN: usize = 64 * 1024;
/// `SSL_read` calls per input datagram once connected.
const MAX_READS_PER_PACKET: usize = 8;

/// Which side of the DTLS handshake this endpoint plays (RFC 5763 §5:
/// `a=setup:passive` is the server, `active` the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Waits for the peer's ClientHello (`a=setup:passive`, Strait's
    /// default toward browsers).
    Server,
    /// Sends the ClientHello as soon as it is created (`a=setup:active`).
    Client,
}

/// Where the association is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Handshake in progress (or, for a server, not yet begun).
    Handshaking,
    /// Keys exported; still answers the peer's retransmissions.
    Connected,
    /// The handshake failed; input is refused.
    Failed,
    /// Closed by either side after connecting; input is refused.
    Closed,
}

/// Why the handshake (or the association) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailReason {
    /// The peer's certificate does not match its SDP fingerprint.
    FingerprintMismatch,
    /// The peer sent no certificate.
    NoPeerCertificate,
    /// A flight was retransmitted [`super::DtlsConfig::max_retransmits`]
    /// times without an answer.
    Timeout,
    /// The peer sent a fatal alert with this description (e.g. 42
    /// `bad_certificate`, 40 `handshake_failure`).
    AlertReceived(u8),
    /// The handshake completed without a DTLS-SRTP protection profile (no
    /// common profile, or the peer does not do `use_srtp`).
    NoSrtpProfile,
    /// A protection profile the data plane does not implement was
    /// negotiated (its id).
    UnsupportedSrtpProfile(u16),
    /// Exporting the keying material failed.
    KeyExport,
    /// Any other handshake or record-layer error reported by OpenSSL (see
    /// [`DtlsEndpoint::error_detail`]).
    Protocol,
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::FingerprintMismatch => f.write_str("DTLS fingerprint mismatch"),
            FailReason::NoPeerCertificate => f.write_str("DTLS peer sent no certificate"),
            FailReason::Timeout => f.write_str("DTLS handshake timeout"),
            FailReason::AlertReceived(d) => {
                write!(f, "DTLS fatal alert received: {} ({d})", alert_name(*d))
            }
            FailReason::NoSrtpProfile => f.write_str("DTLS-SRTP: no protection profile negotiated"),
            FailReason::UnsupportedSrtpProfile(id) => {
                write!(f, "DTLS-SRTP: unsupported protection profile {id:#06x}")
            }
            FailReason::KeyExport => f.write_str("DTLS-SRTP key export failed"),
            FailReason::Protocol => f.write_str("DTLS handshake failed"),
        }
    }
}

impl std::error::Error for FailReason {}

/// Names of the alerts a peer is likely to send (RFC 5246 §7.2).
fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        90 => "user_canceled",
        110 => "unsupported_extension",
        _ => "alert",
    }
}

/// Why a packet was refused by [`DtlsEndpoint::handle_packet`]. Count it and
/// drop it; the association is unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputError {
    /// Shorter than a record header or first byte outside 20..=63 (RFC 7983).
    NotDtls,
    /// Larger than any DTLS datagram this endpoint accepts (8192 bytes).
    TooLarge,
    /// The endpoint has failed or closed.
    Finished,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputError::NotDtls => "not a DTLS datagram",
            InputError::TooLarge => "DTLS datagram too large",
            InputError::Finished => "DTLS association already failed or closed",
        })
    }
}

impl std::error::Error for InputError {}

/// SRTP master keys and salts from the handshake, assigned by role: `local`
/// protects what this side sends, `remote` unprotects what it receives.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    suite: Suite,
    /// Master key then master salt, `suite.master_len()` bytes used.
    local: [u8; 30],
    remote: [u8; 30],
}

impl SrtpKeys {
    fn new(suite: Suite, local: (&[u8], &[u8]), remote: (&[u8], &[u8])) -> Self {
        fn concat(key: &[u8], salt: &[u8]) -> [u8; 30] {
            let mut m = [0u8; 30];
            m[..key.len()].copy_from_slice(key);
            m[key.len()..key.len() + salt.len()].copy_from_slice(salt);
            m
        }
        Self {
            suite,
            local: concat(local.0, local.1),
            remote: concat(remote.0, remote.1),
        }
    }

    /// The negotiated suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Master key and salt this side protects with (SDES `inline:` layout,
    /// what [`strait_srtp::SrtpContext::from_master`] takes).
    pub fn local_master(&self) -> &[u8] {
        &self.local[..self.suite.master_len()]
    }

    /// Master key and salt the peer protects with.
    pub fn remote_master(&self) -> &[u8] {
        &self.remote[..self.suite.master_len()]
    }

    /// Master key this side protects with.
    pub fn local_key(&self) -> &[u8] {
        &self.local[..self.suite.master_key_len()]
    }

    /// Master salt this side protects with.
    pub fn local_salt(&self) -> &[u8] {
        &self.local_master()[self.suite.master_key_len()..]
    }

    /// Master key the peer protects with.
    pub fn remote_key(&self) -> &[u8] {
        &self.remote[..self.suite.master_key_len()]
    }

    /// Master salt the peer protects with.
    pub fn remote_salt(&self) -> &[u8] {
        &self.remote_master()[self.suite.master_key_len()..]
    }
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// What the endpoint reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed, the peer certificate matched its
    /// fingerprint, and SRTP keys were exported.
    Connected {
        /// The keys for the data plane.
        srtp: SrtpKeys,
    },
    /// The handshake or the association failed; the endpoint is finished.
    Failed(FailReason),
    /// The peer closed the association (`close_notify`) after connecting.
    Closed,
}

/// Per-endpoint counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DtlsCounters {
    /// Datagrams accepted by `handle_packet` and given to OpenSSL.
    pub packets_in: u64,
    /// Datagrams refused by `handle_packet` (see [`InputError`]).
    pub packets_refused: u64,
    /// Datagrams queued for sending.
    pub datagrams_out: u64,
    /// Timer-driven retransmissions of a flight.
    pub retransmits: u64,
    /// Resends of the final flight in answer to the peer's retransmission.
    pub final_flight_resends: u64,
    /// Datagrams dropped because the output queue was full.
    pub output_dropped: u64,
    /// Application-data reads discarded after connecting (DTLS carries only
    /// the handshake here).
    pub app_data_ignored: u64,
}

/// The in-memory "socket" OpenSSL reads and writes: one datagram in at a
/// time; whatever OpenSSL writes (whole records) is collected.
#[derive(Debug)]
struct Channel {
    input: Vec<u8>,
    has_input: bool,
    written: Vec<u8>,
    overflow: bool,
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.has_input {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.has_input = false;
        let n = self.input.len().min(buf.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        Ok(n)
    }
}

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written.len() + buf.len() > MAX_WRITTEN {
            self.overflow = true;
        } else {
            self.written.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sans-IO DTLS 1.2 endpoint with DTLS-SRTP key export.
///
/// Drive it with [`handle_packet`](Self::handle_packet) for every punted
/// DTLS datagram and [`handle_timeout`](Self::handle_timeout) when
/// [`poll_timeout`](Self::poll_timeout) is due; after each call drain
/// [`poll_output`](Self::poll_output) (send each datagram from the leg's
/// port to the peer's current address) and
/// [`poll_event`](Self::poll_event).
pub struct DtlsEndpoint {
    stream: SslStream<Channel>,
    role: Role,
    state: State,
    expected: Vec<Fingerprint>,
    verify: Arc<AtomicU8>,
    mtu: usize,
    initial_rto: Duration,
    max_rto: Duration,
    max_retransmits: u32,
    /// The last flight, as OpenSSL wrote it (one entry per record).
    flight: Vec<Vec<u8>>,
    /// Whether `flight` is our final flight (the server's last one).
    flight_final: bool,
    rto: Duration,
    retries: u32,
    deadline: Option<Instant>,
    final_resends: u32,
    /// Next record sequence number for epoch-0 records we send.
    epoch0_seq: u64,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    counters: DtlsCounters,
    scratch: Box<[u8]>,
    error_detail: Option<String>,
}

impl fmt::Debug for DtlsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsEndpoint")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("deadline", &self.deadline)
            .field("retries", &self.retries)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl DtlsEndpoint {
    /// Most datagrams kept waiting for [`poll_output`](Self::poll_output);
    /// more are dropped and counted.
    pub const MAX_QUEUED_OUTPUT: usize = 64;

    /// Creates an endpoint that will accept only a peer certificate matching
    /// `remote_fingerprints` (the peer's SDP `a=fingerprint` lines; must not
    /// be empty). A [`Role::Client`] sends its ClientHello at once
    /// (`now` starts its retransmission timer): create it once the peer is
    /// reachable (ICE has a working pair) or hold its datagrams until then.
    /// A [`Role::Server`] should exist before the peer's ClientHello can
    /// arrive; one punted earlier is only recovered by the peer's
    /// retransmission.
    pub fn new(
        ctx: &DtlsContext,
        role: Role,
        remote_fingerprints: &[Fingerprint],
        now: Instant,
    ) -> Result<Self, ConfigError> {
        if remote_fingerprints.is_empty() {
            return Err(ConfigError::NoRemoteFingerprint);
        }
        let config = ctx.config();
        let mut ssl = Ssl::new(&ctx.ssl).map_err(|_| ConfigError::OpenSsl)?;
        ffi::park_retransmission_timer(&mut ssl);
        let mtu = u32::try_from(config.mtu).map_err(|_| ConfigError::BadMtu)?;
        ssl.set_mtu(mtu).map_err(|_| ConfigError::BadMtu)?;

        let verify = Arc::new(AtomicU8::new(VERIFY_PENDING));
        let expected = remote_fingerprints.to_vec();
        let (outcome, pins) = (Arc::clone(&verify), expected.clone());
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |_chain_ok, store| {
                // Self-signed certificates never chain; only the leaf's
                // fingerprint counts.
                if store.error_depth() != 0 {
                    return true;
                }
                let ok = store
                    .current_cert()
                    .is_some_and(|c| cert::matches(c, &pins));
                if ok {
                    let _ = outcome.compare_exchange(
                        VERIFY_PENDING,
                        VERIFY_OK,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                } else {
                    outcome.store(VERIFY_MISMATCH, Ordering::Relaxed);
                    // Answered with a `bad_certificate` alert.
                    store.set_error(ffi::cert_rejected());
                }
                ok
            },
        );
        match role {
            Role::Server => ssl.set_accept_state(),
            Role::Client => ssl.set_connect_state(),
        }
        let channel = Channel {
            input: Vec::with_capacity(2048),
            has_input: false,
            written: Vec::with_capacity(4096),
            overflow: false,
        };
        let stream = SslStream::new(ssl, channel).map_err(|_| ConfigError::OpenSsl)?;
        let mut endpoint = Self {
            stream,
            role,
            state: State::Handshaking,
            expected,
            verify,
            mtu: config.mtu,
            initial_rto: config.initial_rto,
            max_rto: config.max_rto,
            max_retransmits: config.max_retransmits,
            flight: Vec::new(),
            flight_final: false,
            rto: config.initial_rto,
            retries: 0,
            deadline: None,
            final_resends: 0,
            epoch0_seq: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            counters: DtlsCounters::default(),
            scratch: vec![0u8; 2048].into_boxed_slice(),
            error_detail: None,
        };
        if role == Role::Client {
            endpoint.drive_handshake(now);
        }
        Ok(endpoint)
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The association's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Counters.
    pub fn counters(&self) -> &DtlsCounters {
        &self.counters
    }

    /// OpenSSL's description of the last error, if a failure came from it
    /// (for logs; not for matching).
    pub fn error_detail(&self) -> Option<&str> {
        self.error_detail.as_deref()
    }

    /// Feeds one datagram the data plane punted for this leg. Refused
    /// datagrams leave the association untouched.
    pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]) -> Result<(), InputError> {
        let refusal = if datagram.len() > MAX_DATAGRAM {
            Some(InputError::TooLarge)
        } else if datagram.len() < HEADER_LEN || !(20..=63).contains(&datagram[0]) {
            Some(InputError::NotDtls)
        } else if matches!(self.state, State::Failed | State::Closed) {
            Some(InputError::Finished)
        } else {
            None
        };
        if let Some(e) = refusal {
            self.counters.packets_refused += 1;
            return Err(e);
        }
        self.counters.packets_in += 1;
        let channel = self.stream.get_mut();
        channel.input.clear();
        channel.input.extend_from_slice(datagram);
        channel.has_input = true;
        match self.state {
            State::Handshaking => self.drive_handshake(now),
            State::Connected => self.drive_connected(record::has_encrypted_handshake(datagram)),
            State::Failed | State::Closed => {}
        }
        // A datagram OpenSSL did not read (it was done) is not kept.
        self.stream.get_mut().has_input = false;
        Ok(())
    }

    /// Runs the retransmission timer: call when
    /// [`poll_timeout`](Self::poll_timeout) is due (calling early or late is
    /// harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Handshaking {
            return;
        }
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.retries >= self.max_retransmits {
            self.fail(FailReason::Timeout);
            return;
        }
        self.retries += 1;
        self.counters.retransmits += 1;
        self.transmit_flight();
        self.rto = self.rto.saturating_mul(2).min(self.max_rto);
        self.deadline = Some(now + self.rto);
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called,
    /// if a retransmission is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Handshaking => self.deadline,
            _ => None,
        }
    }

    /// The next datagram to send to the peer.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sends `close_notify` if connected and finishes the endpoint (no
    /// event is reported for a local close).
    pub fn close(&mut self) {
        if self.state == State::Connected {
            let _ = self.stream.shutdown();
            let written = self.take_written();
            self.send(&written);
        }
        if matches!(self.state, State::Handshaking | State::Connected) {
            self.state = State::Closed;
            self.deadline = None;
            self.flight.clear();
        }
    }

    fn drive_handshake(&mut self, now: Instant) {
        let result = self.stream.do_handshake();
        let written = self.take_written();
        if self.stream.get_ref().overflow {
            self.send(&written);
            self.fail(FailReason::Protocol);
            return;
        }
        match result {
            Ok(()) => {
                // A server's last write is its final flight: no timer, but
                // kept to answer a retransmitted client Finished.
                if !written.is_empty() {
                    self.start_flight(written, true, now);
                }
                self.deadline = None;
                self.complete();
            }
            Err(e) if e.code() == ErrorCode::WANT_READ => {
                if !written.is_empty() {
                    self.start_flight(written, false, now);
                }
            }
            Err(e) => {
                // Usually a fatal alert we send; deliver it.
                self.send(&written);
                let reason = self.classify(&e);
                self.error_detail = Some(e.to_string());
                self.fail(reason);
            }
        }
    }

    fn drive_connected(&mut self, peer_finished: bool) {
        for _ in 0..MAX_READS_PER_PACKET {
            match self.stream.ssl_read(&mut self.scratch) {
                Ok(_) => self.counters.app_data_ignored += 1,
                Err(e) if e.code() == ErrorCode::WANT_READ => break,
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.state = State::Closed;
                    self.events.push_back(Event::Closed);
                    break;
                }
                Err(e) => {
                    let reason = self.classify(&e);
                    self.error_detail = Some(e.to_string());
                    self.fail(reason);
                    break;
                }
            }
        }
        let written = self.take_written();
        if !written.is_empty() {
            // OpenSSL answered a retransmitted Finished with its final
            // flight (or wrote an alert).
            if self.role == Role::Server {
                self.final_resends += 1;
                self.counters.final_flight_resends += 1;
            }
            self.send(&written);
        } else if self.role == Role::Server
            && self.state == State::Connected
            && peer_finished
            && self.flight_final
            && self.final_resends < self.max_retransmits
        {
            // The client retransmitted its Finished but OpenSSL's replay
            // check dropped it (same record number): resend our last flight
            // ourselves (RFC 6347 §4.2.4).
            self.final_resends += 1;
            self.counters.final_flight_resends += 1;
            self.transmit_flight();
        }
    }

    /// Checks the peer, exports the keys, reports `Connected`.
    fn complete(&mut self) {
        let ssl = self.stream.ssl();
        let Some(peer) = ssl.peer_certificate() else {
            return self.fail_after_handshake(FailReason::NoPeerCertificate);
        };
        if self.verify.load(Ordering::Relaxed) != VERIFY_OK || !cert::matches(&peer, &self.expected)
        {
            return self.fail_after_handshake(FailReason::FingerprintMismatch);
        }
        let Some(profile) = ssl.selected_srtp_profile() else {
            return self.fail_after_handshake(FailReason::NoSrtpProfile);
        };
        let raw = profile.id().as_raw();
        let Some(suite) = u16::try_from(raw)
            .ok()
            .and_then(Suite::from_dtls_profile_id)
        else {
            let id = u16::try_from(raw).unwrap_or(u16::MAX);
            return self.fail_after_handshake(FailReason::UnsupportedSrtpProfile(id));
        };
        let mut material = [0u8; 64];
        let material = &mut material[..suite.dtls_keying_material_len()];
        if ssl
            .export_keying_material(material, EXPORTER_LABEL, None)
            .is_err()
        {
            return self.fail_after_handshake(FailReason::KeyExport);
        }
        let parts = suite
            .split_dtls_keying_material(material)
            .expect("material has the suite's DTLS keying-material length");
        let client = (parts.client_key, parts.client_salt);
        let server = (parts.server_key, parts.server_salt);
        let srtp = match self.role {
            Role::Client => SrtpKeys::new(suite, client, server),
            Role::Server => SrtpKeys::new(suite, server, client),
        };
        material.fill(0);
        self.state = State::Connected;
        self.events.push_back(Event::Connected { srtp });
    }

    /// Fails an association OpenSSL considers established, telling the
    /// peer with `close_notify`.
    fn fail_after_handshake(&mut self, reason: FailReason) {
        let _ = self.stream.shutdown();
        let written = self.take_written();
        self.send(&written);
        self.fail(reason);
    }

    fn fail(&mut self, reason: FailReason) {
        if matches!(self.state, State::Failed | State::Closed) {
            return;
        }
        self.state = State::Failed;
        self.deadline = None;
        self.flight.clear();
        self.events.push_back(Event::Failed(reason));
    }

    fn classify(&self, e: &openssl::ssl::Error) -> FailReason {
        if self.verify.load(Ordering::Relaxed) == VERIFY_MISMATCH {
            return FailReason::FingerprintMismatch;
        }
        let reasons = e
            .ssl_error()
            .into_iter()
            .flat_map(|stack| stack.errors())
            .map(|err| err.reason_code());
        for r in reasons {
            if let Some(d) = r
                .checked_sub(ALERT_REASON_OFFSET)
                .and_then(|d| u8::try_from(d).ok())
            {
                return FailReason::AlertReceived(d);
            }
            if r == REASON_NO_PEER_CERT {
                return FailReason::NoPeerCertificate;
            }
        }
        FailReason::Protocol
    }

    /// The records OpenSSL wrote since the last call.
    fn take_written(&mut self) -> Vec<Vec<u8>> {
        let channel = self.stream.get_mut();
        let records = record::records(&channel.written)
            .map(|(_, r)| r.to_vec())
            .collect();
        channel.written.clear();
        records
    }

    fn start_flight(&mut self, records: Vec<Vec<u8>>, last: bool, now: Instant) {
        self.flight = records;
        self.flight_final = last;
        self.transmit_flight();
        if last {
            self.deadline = None;
        } else {
            self.rto = self.initial_rto;
            self.retries = 0;
            self.deadline = Some(now + self.rto);
        }
    }

    fn transmit_flight(&mut self) {
        let flight = std::mem::take(&mut self.flight);
        self.send(&flight);
        self.flight = flight;
    }

    /// Renumbers epoch-0 records, packs them into datagrams, queues them.
    fn send(&mut self, records: &[Vec<u8>]) {
        if records.is_empty() {
            return;
        }
        let mut renumbered = Vec::with_capacity(records.len());
        for r in records {
            let mut r = r.clone();
            if record::parse_header(&r).is_some_and(|h| h.epoch == 0)
                && record::set_sequence(&mut r, self.epoch0_seq)
            {
                self.epoch0_seq += 1;
            }
            renumbered.push(r);
        }
        for datagram in record::pack(renumbered.iter().map(Vec::as_slice), self.mtu) {
            if self.out.len() >= Self::MAX_QUEUED_OUTPUT {
                self.counters.output_dropped += 1;
            } else {
                self.counters.datagrams_out += 1;
                self.out.push_back(datagram);
            }
        }
    }
}
