//! Interop with the `openssl s_client` / `s_server` command-line tools
//! (`-dtls1_2 -use_srtp`) over loopback UDP: the endpoint is driven by a
//! socket loop here, the tools use OpenSSL's own datagram BIO and timers.
//! The keying material the tools print (`-keymatexport`) must equal ours.
//! Every wait is bounded; if the `openssl` binary is missing the tests say
//! so and pass.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strait::dtls::{
    Certificate, DtlsConfig, DtlsContext, DtlsEndpoint, Event, HashAlgorithm, Role, SrtpKeys,
};
use strait_srtp::Suite;

/// Longest a whole exchange may take.
const DEADLINE: Duration = Duration::from_secs(20);

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn profile_name(s: Suite) -> &'static str {
    match s {
        Suite::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
        Suite::AesCm128HmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
        Suite::AesCm128HmacSha1_32 => "SRTP_AES128_CM_SHA1_32",
        other => panic!("no profile for {other:?}"),
    }
}

/// A certificate for the tool, written to a fresh temporary directory.
struct ToolIdentity {
    cert: Certificate,
    dir: PathBuf,
}

impl ToolIdentity {
    fn new(tag: &str) -> Self {
        let cert = Certificate::generate().expect("cert");
        let dir = std::env::temp_dir().join(format!("strait-dtls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("cert.pem"), cert.cert_pem()).expect("write cert");
        std::fs::write(dir.join("key.pem"), cert.key_pem()).expect("write key");
        Self { cert, dir }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "-cert".into(),
            self.dir.join("cert.pem").display().to_string(),
            "-key".into(),
            self.dir.join("key.pem").display().to_string(),
        ]
    }
}

impl Drop for ToolIdentity {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Collects the tool's stdout lines on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (bounded) for a line the predicate accepts.
fn wait_for_line(lines: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool) -> Option<String> {
    let end = Instant::now() + DEADLINE;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let line = lines.recv_timeout(left).ok()?;
        if want(&line) {
            return Some(line);
        }
    }
    None
}

/// Waits (bounded) for the `Keying material: <hex>` line.
fn keying_material(lines: &mpsc::Receiver<String>) -> Vec<u8> {
    let line = wait_for_line(lines, |l| l.trim().starts_with("Keying material: "))
        .expect("the tool printed no keying material");
    let hex = line.trim().trim_start_matches("Keying material: ");
    assert_eq!(hex.len() % 2, 0, "odd hex: {hex}");
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Runs the endpoint over `socket` until it reports an event.
fn drive(
    ep: &mut DtlsEndpoint,
    socket: &UdpSocket,
    mut peer: Option<std::net::SocketAddr>,
) -> Event {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let end = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Some(addr) = peer {
            while let Some(d) = ep.poll_output() {
                let _ = socket.send_to(&d, addr);
            }
        }
        if let Some(e) = ep.poll_event() {
            return e;
        }
        // A refused send (tool not listening yet) shows up as an error
        // here; the retransmission timer covers it.
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            peer = Some(from);
            let _ = ep.handle_packet(Instant::now(), &buf[..n]);
        }
        ep.handle_timeout(Instant::now());
    }
    panic!("no DTLS event within {DEADLINE:?}");
}

fn check_material(keys: &SrtpKeys, role: Role, material: &[u8]) {
    let parts = keys
        .suite()
        .split_dtls_keying_material(material)
        .expect("material length");
    let client = [parts.client_key, parts.client_salt].concat();
    let server = [parts.server_key, parts.server_salt].concat();
    let (local, remote) = match role {
        Role::Client => (client, server),
        Role::Server => (server, client),
    };
    assert_eq!(keys.local_master(), local.as_slice());
    assert_eq!(keys.remote_master(), remote.as_slice());
}

fn context(suite: Suite) -> DtlsContext {
    let mut config = DtlsConfig::default();
    config.srtp_suites = vec![suite];
    DtlsContext::new(&Certificate::generate().expect("cert"), config).expect("ctx")
}

#[test]
fn our_server_with_openssl_s_client() {
    // scripts/deps.sh installs the openssl CLI: missing is a failure.
    assert!(openssl_available(), "the openssl binary is missing");
    for suite in Suite::ALL {
        let tool = ToolIdentity::new(&format!("client-{}", suite.dtls_profile_id()));
        let ctx = context(suite);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-dtls1_2",
                "-connect",
                &format!("127.0.0.1:{port}"),
            ])
            .args(tool.args())
            .args(["-use_srtp", profile_name(suite)])
            .args(["-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen"])
            .arg(suite.dtls_keying_material_len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s_client");
        let lines = lines_of(&mut child);
        let pin = tool.cert.fingerprint(HashAlgorithm::Sha256);
        let mut ep = DtlsEndpoint::new(&ctx, Role::Server, &[pin], Instant::now()).expect("ep");
        let event = drive(&mut ep, &socket, None);
        let material = keying_material(&lines);
        // Closing stdin makes s_client shut down.
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
        let Event::Connected { srtp } = event else {
            panic!("{suite:?}: {event:?} ({:?})", ep.error_detail());
        };
        assert_eq!(srtp.suite(), suite);
        check_material(&srtp, Role::Server, &material);
    }
}

#[test]
fn our_client_with_openssl_s_server() {
    // scripts/deps.sh installs the openssl CLI: missing is a failure.
    assert!(openssl_available(), "the openssl binary is missing");
    for suite in Suite::ALL {
        let tool = ToolIdentity::new(&format!("server-{}", suite.dtls_profile_id()));
        let ctx = context(suite);
        // A free port for the tool (released just before it binds).
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-dtls1_2",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .args(tool.args())
            .args(["-verify", "1", "-naccept", "1"])
            .args(["-use_srtp", profile_name(suite)])
            .args(["-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen"])
            .arg(suite.dtls_keying_material_len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s_server");
        let lines = lines_of(&mut child);
        // s_server prints ACCEPT once it listens.
        let ready = wait_for_line(&lines, |l| l.contains("ACCEPT")).is_some();
        assert!(ready, "s_server did not start");
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let server = format!("127.0.0.1:{port}").parse().expect("addr");
        let pin = tool.cert.fingerprint(HashAlgorithm::Sha256);
        let mut ep = DtlsEndpoint::new(&ctx, Role::Client, &[pin], Instant::now()).expect("ep");
        let event = drive(&mut ep, &socket, Some(server));
        let material = keying_material(&lines);
        let _ = child.kill();
        let _ = child.wait();
        let Event::Connected { srtp } = event else {
            panic!("{suite:?}: {event:?} ({:?})", ep.error_detail());
        };
        assert_eq!(srtp.suite(), suite);
        check_material(&srtp, Role::Client, &material);
    }
}
