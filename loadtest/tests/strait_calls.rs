//! End to end against a real Strait (the built `strait` and
//! `strait-dataplane` beside this test's binary; missing is a failure, not
//! a skip): the tool starts it with a generated configuration and drives
//! it over WSS and UDP.
//!
//! - (c) signalling: 100 REGISTERs (401 + authenticated retry) at 50/s on
//!   10 connections, then 40 calls at 20/s (INVITE, 407, INVITE, 180, 200,
//!   ACK, BYE through the B2BUA to the simulated legacy endpoint): every
//!   one succeeds.
//! - (b) full calls: 4 concurrent calls, 2 from browsers to the legacy
//!   side and 2 from the legacy side to registered browsers, each with
//!   ICE, a DTLS handshake and SRTP on the browser leg; 3 s of media both
//!   ways must arrive complete and exactly once.
//!
//! As root each run is in its own network namespace (`--netns`).

use std::path::{Path, PathBuf};
use std::process::Command;

use strait_loadtest::record::SipRunRecord;

fn strait_bin() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_strait-loadtest"));
    let bin = exe.with_file_name("strait");
    assert!(
        bin.exists() && exe.with_file_name("strait-dataplane").exists(),
        "{} (and strait-dataplane beside it) missing: cargo build -p strait -p strait-dataplane \
         (cargo test --workspace builds them)",
        bin.display()
    );
    bin
}

/// Runs the tool with `args`; returns its record and stderr.
fn run(args: &[&str]) -> (SipRunRecord, String) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strait-loadtest"));
    cmd.args(args)
        .arg("--strait-bin")
        .arg(strait_bin())
        .args(["--max-secs", "50", "--out"])
        .arg(out.path());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Own network namespace: no clash with anything else on loopback.
        cmd.arg("--netns");
    }
    let res = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr).to_string();
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    assert!(stdout.starts_with("strait "), "{stdout}");
    let json = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a JSON record");
    let log = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".strait.log"));
    assert!(log, "strait's log beside the record");
    let rec: SipRunRecord = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(rec.error, None, "{stderr}");
    assert_eq!(rec.target.kind, "strait");
    (rec, stderr)
}

#[test]
fn registers_and_call_setups_over_wss() {
    // Generous latency bound: this asserts success, not performance (the
    // test suite shares the machine with compilers).
    let (rec, stderr) = run(&[
        "signalling",
        "--op",
        "register",
        "--rate",
        "50",
        "--count",
        "100",
        "--connections",
        "10",
        "--sla-p99-ms",
        "5000",
        "--sip-port",
        "21060",
        "--media-ports",
        "25000-25999",
    ]);
    assert_eq!(rec.scenario, "signalling-register");
    assert_eq!(rec.rate_steps.len(), 1, "{stderr}");
    let s = &rec.rate_steps[0];
    assert_eq!(s.scheduled, 100);
    assert_eq!(s.primary.attempted, 100);
    assert_eq!(s.primary.ok, 100, "{:?}\n{stderr}", s.primary.failures);
    assert!(s.primary.failures.is_empty(), "{:?}", s.primary.failures);
    assert_eq!(s.primary.latency.count, 100);
    assert!(s.primary.latency.p50_ms > 0.0);
    assert!(s.bye.is_none());
    assert!(
        s.target_cpu.process_cores.is_some(),
        "strait's CPU measured"
    );
    assert_eq!(rec.sustained_rate.is_some(), s.clean);

    let (rec, stderr) = run(&[
        "signalling",
        "--op",
        "call",
        "--rate",
        "20",
        "--count",
        "40",
        "--hold-ms",
        "50",
        "--connections",
        "10",
        "--sla-p99-ms",
        "5000",
        "--sip-port",
        "21160",
        "--media-ports",
        "26000-26999",
    ]);
    assert_eq!(rec.scenario, "signalling-call");
    let s = &rec.rate_steps[0];
    assert_eq!(s.primary.ok, 40, "{:?}\n{stderr}", s.primary.failures);
    let bye = s.bye.as_ref().expect("BYE figures");
    assert_eq!((bye.attempted, bye.ok), (40, 40), "{:?}", bye.failures);
    // The legacy endpoint sends 180 before its 200: Strait relays it.
    assert_eq!(s.ringing.expect("ringing figures").count, 40);
    assert!(
        stderr.contains("legacy endpoint: 40 INVITEs, 40 ACKs, 40 BYEs"),
        "{stderr}"
    );
}

#[test]
fn full_calls_both_ways_deliver_media() {
    let (rec, stderr) = run(&[
        "calls",
        "--calls",
        "4",
        "--direction",
        "both",
        "--step-secs",
        "3",
        "--warmup-secs",
        "2",
        "--sla-p99-ms",
        "1000",
        "--sip-port",
        "21260",
        "--gen-ports",
        "22000-22999",
        "--media-ports",
        "23000-23999",
    ]);
    assert_eq!(rec.scenario, "calls");
    assert_eq!(rec.call_steps.len(), 1, "{stderr}");
    let s = &rec.call_steps[0];
    assert_eq!((s.browser_calls, s.legacy_calls), (2, 2), "{stderr}");
    for (name, f) in [
        ("browser -> legacy", &s.setup_from_browser),
        ("legacy -> browser", &s.setup_from_legacy),
    ] {
        assert_eq!((f.attempted, f.ok), (2, 2), "{name}: {:?}", f.failures);
        assert_eq!(f.latency.count, 2);
    }
    assert_eq!(s.media_setup.count, 4, "ICE + DTLS of every browser leg");
    assert_eq!(s.ended_early, 0, "Strait ended no call early");
    let m = &s.media;
    assert_eq!(m.calls, 4);
    for (name, d) in [
        ("browser -> legacy", &m.a_to_b),
        ("legacy -> browser", &m.b_to_a),
    ] {
        // 4 calls x 50 packets/s x 3 s, give or take the window edges.
        assert!((540..=660).contains(&d.sent), "{name}: {d:?}\n{stderr}");
        assert_eq!(d.received, d.sent, "{name}: {d:?}\n{stderr}");
        assert_eq!((d.lost, d.duplicates, d.errors), (0, 0, 0), "{name}: {d:?}");
        assert_eq!(d.latency.count, d.received);
    }
    assert!(
        stderr.contains("hung up 4 calls (0 BYEs failed)"),
        "{stderr}"
    );
}
