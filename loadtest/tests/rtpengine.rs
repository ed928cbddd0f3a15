//! End to end against a real rtpengine: the binary starts it (userspace
//! forwarding, loopback), sets up 10 plain calls through ng, sends both
//! directions for 2 s and must see every packet come back exactly once.
//! `scripts/deps.sh` installs `rtpengine-daemon` for the test suite, so a
//! missing `/usr/bin/rtpengine` is a failure, not a skip.

use std::path::Path;
use std::process::Command;

use strait_loadtest::record::RunRecord;

#[test]
fn ten_plain_calls_through_rtpengine_lose_nothing() {
    assert!(
        Path::new("/usr/bin/rtpengine").exists(),
        "/usr/bin/rtpengine is missing (apt-get install rtpengine-daemon; scripts/test.sh does)"
    );
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strait-loadtest"));
    cmd.args([
        "run",
        "--scenario",
        "plain",
        "--calls",
        "10",
        "--step-secs",
        "2",
        "--warmup-secs",
        "2",
        "--max-secs",
        "60",
        "--gen-ports",
        "23000-23999",
        "--rtp-ports",
        "24000-24999",
        "--ng-listen",
        "127.0.0.1:22999",
        // Generous: this asserts delivery, not performance (the test suite
        // shares the machine with compilers).
        "--sla-p99-ms",
        "1000",
        "--out",
    ])
    .arg(out.path());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Own network namespace: no clash with anything else on loopback.
        cmd.arg("--netns");
    }
    let res = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    assert!(stdout.contains("rtpengine"), "{stdout}");

    let json = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a JSON record");
    let rec: RunRecord = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(rec.error, None);
    assert_eq!(rec.steps.len(), 1);
    let step = &rec.steps[0];
    assert_eq!(step.calls, 10);
    for (name, d) in [("A->B", &step.a_to_b), ("B->A", &step.b_to_a)] {
        // 10 calls x 50 packets/s x 2 s, give or take the window edges.
        assert!((900..=1100).contains(&d.sent), "{name}: {d:?}\n{stderr}");
        assert_eq!(d.received, d.sent, "{name}: {d:?}\n{stderr}");
        assert_eq!((d.lost, d.duplicates, d.errors), (0, 0, 0), "{name}: {d:?}");
        assert_eq!(d.latency.count, d.received);
    }
    assert_eq!(step.loss, 0.0);
    assert!(rec.target.version.is_some());
}
