//! ng parity: the same ng offer/answer/delete sequences, sent by the same
//! code to rtpengine (Debian `rtpengine-daemon`, userspace) and to Strait,
//! must both yield SDPs that carry the same RTP and SRTP traffic end to end:
//!
//! - `plain`: RTP/AVP <-> RTP/AVP relay;
//! - `srtp`: SDES-SRTP (leg A) <-> RTP (leg B);
//! - `webrtc`: RTP (leg A) <-> a simulated browser on leg B (ICE, DTLS-SRTP,
//!   rtcp-mux), with the flags Kamailio sends for a WebRTC callee.
//!
//! Each target x scenario is one run of the `strait-loadtest` binary (it
//! starts the target itself, in a private network namespace when run as
//! root): 4 calls, 2 s of warm-up, 3 s measured. Every call must come up,
//! every packet sent in the window must arrive exactly once in both
//! directions with its payload intact (the receiver checks the marker and
//! the tone under it byte for byte, and SRTP authentication where the leg is
//! SRTP), every call must be deleted, and the target's SDPs must look as the
//! scenario asks. Both targets run at once (each with its own ports), so the
//! whole test takes about 25 s.
//!
//! `scripts/test.sh` installs rtpengine; Strait is built here with cargo
//! (`cargo build -p strait -p strait-dataplane`, a no-op when it is up to
//! date) unless `STRAIT_BIN` names a binary. Neither missing is a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use strait_loadtest::record::RunRecord;
use strait_loadtest::sdp;

const SCENARIOS: [&str; 3] = ["plain", "srtp", "webrtc"];
const CALLS: u64 = 4;
const STEP_SECS: u64 = 3;

/// One target's settings: ports differ per target, so both can run at once
/// even without namespaces.
struct TargetCase {
    name: &'static str,
    args: Vec<String>,
    ng: &'static str,
    gen_ports: &'static str,
    rtp_ports: (u16, u16),
}

/// Builds strait and strait-dataplane into the profile directory of the
/// loadtest binary (or takes `STRAIT_BIN`) and returns the strait path.
fn strait_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STRAIT_BIN") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "STRAIT_BIN={} does not exist", p.display());
        return p;
    }
    let loadtest = Path::new(env!("CARGO_BIN_EXE_strait-loadtest"));
    let profile_dir = loadtest.parent().expect("the binary is in a directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory is in the target directory");
    let mut build = Command::new(cargo);
    // The variables cargo sets for this test process would reach build
    // scripts' `rerun-if-env-changed` checks and rebuild half the tree (and
    // again for the next `cargo test`): the build gets a plain environment.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&k.as_ref())
        {
            build.env_remove(k.as_ref());
        }
    }
    let out = build
        .args([
            "build",
            "-p",
            "strait",
            "-p",
            "strait-dataplane",
            "--profile",
        ])
        .arg(&profile)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .expect("running cargo build");
    assert!(
        out.status.success(),
        "cargo build -p strait -p strait-dataplane failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let strait = profile_dir.join("strait");
    assert!(
        strait.exists(),
        "{} missing after the build",
        strait.display()
    );
    assert!(profile_dir.join("strait-dataplane").exists());
    strait
}

struct Outcome {
    target: &'static str,
    scenario: &'static str,
    record: Option<RunRecord>,
    stdout: String,
    stderr: String,
    ok: bool,
}

fn run(case: &TargetCase, scenario: &'static str) -> Outcome {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strait-loadtest"));
    cmd.args(["run", "--scenario", scenario])
        .args(&case.args)
        .args(["--calls", &CALLS.to_string()])
        .args(["--step-secs", &STEP_SECS.to_string()])
        .args(["--warmup-secs", "2", "--max-secs", "40"])
        .args(["--ng-listen", case.ng, "--gen-ports", case.gen_ports])
        .arg("--rtp-ports")
        .arg(format!("{}-{}", case.rtp_ports.0, case.rtp_ports.1))
        // Generous: this asserts delivery, not performance (the test suite
        // shares the machine with compilers and runs both targets at once).
        .args(["--sla-p99-ms", "2000", "--out"])
        .arg(out.path());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Own network namespace: no clash with anything else on loopback.
        cmd.arg("--netns");
    }
    let res = cmd.output().unwrap();
    let record = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    // The target's log, for failure reports.
    let log = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    Outcome {
        target: case.name,
        scenario,
        record,
        stdout: String::from_utf8_lossy(&res.stdout).into_owned(),
        stderr: format!(
            "{}\n--- target log (last 40 lines)\n{}",
            String::from_utf8_lossy(&res.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
        ok: res.status.success(),
    }
}

/// Everything wrong with one outcome (empty: it passed).
fn problems(o: &Outcome, rtp_ports: (u16, u16)) -> Vec<String> {
    let mut p = Vec::new();
    if !o.ok {
        p.push(format!(
            "exit status not success; stdout: {}",
            o.stdout.trim()
        ));
    }
    let Some(rec) = &o.record else {
        p.push("no JSON record".into());
        return p;
    };
    if let Some(e) = &rec.error {
        p.push(format!("run error: {e}"));
    }
    if rec.target.kind != o.target {
        p.push(format!("target kind {}", rec.target.kind));
    }
    // Traffic: every call up, every packet exactly once both ways, intact.
    match rec.steps.as_slice() {
        [step] => {
            if u64::from(step.calls) != CALLS {
                p.push(format!("{} calls instead of {CALLS}", step.calls));
            }
            let expected = CALLS * 50 * STEP_SECS;
            for (name, d) in [("A->B", &step.a_to_b), ("B->A", &step.b_to_a)] {
                if !(expected - 20..=expected + 20).contains(&d.sent) {
                    p.push(format!("{name}: sent {} (expected ~{expected})", d.sent));
                }
                if d.received != d.sent || d.lost != 0 {
                    p.push(format!(
                        "{name}: sent {} received {} lost {}",
                        d.sent, d.received, d.lost
                    ));
                }
                if d.duplicates != 0 || d.errors != 0 {
                    p.push(format!(
                        "{name}: {} duplicates, {} receive errors (bad SRTP, payload or marker)",
                        d.duplicates, d.errors
                    ));
                }
                if d.latency.count != d.received {
                    p.push(format!("{name}: latency samples {}", d.latency.count));
                }
            }
        }
        steps => p.push(format!("{} steps instead of 1", steps.len())),
    }
    if !o
        .stderr
        .contains(&format!("deleted {CALLS} calls (0 failed)"))
    {
        p.push("not every call was deleted".into());
    }
    // The target's SDPs.
    let Some(fc) = &rec.first_call else {
        p.push("no first-call trace".into());
        return p;
    };
    let to_b = sdp::parse(&fc.offer_reply_sdp);
    let to_a = sdp::parse(&fc.answer_reply_sdp);
    let (Some(to_b), Some(to_a)) = (to_b, to_a) else {
        p.push(format!(
            "unparsable SDPs:\n{}\n{}",
            fc.offer_reply_sdp, fc.answer_reply_sdp
        ));
        return p;
    };
    let in_range = |port: u16| (rtp_ports.0..=rtp_ports.1).contains(&port);
    for (side, m) in [("offer to B", &to_b), ("answer to A", &to_a)] {
        if !in_range(m.port) || !m.addr.is_some_and(|a| a.is_loopback()) {
            p.push(format!(
                "{side}: media at {:?}:{} outside the target's loopback ports",
                m.addr, m.port
            ));
        }
        if m.payload_type_of("PCMU") != Some(0) {
            p.push(format!("{side}: no PCMU/0 ({:?})", m.rtpmaps));
        }
    }
    let want = |cond: bool, what: &str, p: &mut Vec<String>| {
        if !cond {
            p.push(what.to_string());
        }
    };
    let no_ice_dtls = |m: &sdp::ParsedMedia| {
        m.ice_ufrag.is_none()
            && m.candidates.is_empty()
            && m.fingerprints.is_empty()
            && m.setup.is_none()
    };
    match o.scenario {
        "plain" => {
            want(
                to_b.proto == "RTP/AVP",
                "plain: offer to B not RTP/AVP",
                &mut p,
            );
            want(
                to_a.proto == "RTP/AVP",
                "plain: answer to A not RTP/AVP",
                &mut p,
            );
            want(
                to_b.cryptos.is_empty() && to_a.cryptos.is_empty(),
                "plain: a=crypto in an RTP/AVP SDP",
                &mut p,
            );
            want(
                no_ice_dtls(&to_b) && no_ice_dtls(&to_a),
                "plain: ICE/DTLS attributes despite ICE remove, DTLS off",
                &mut p,
            );
        }
        "srtp" => {
            want(
                to_b.proto == "RTP/AVP" && to_b.cryptos.is_empty(),
                "srtp: offer to B is not plain RTP/AVP without a=crypto",
                &mut p,
            );
            want(
                to_a.proto == "RTP/SAVP",
                "srtp: answer to A not RTP/SAVP",
                &mut p,
            );
            let ours = fc.offer_request["sdp"]
                .as_str()
                .and_then(sdp::parse)
                .map(|m| m.cryptos)
                .unwrap_or_default();
            let theirs: Vec<_> = to_a
                .cryptos
                .iter()
                .filter_map(|c| sdp::parse_crypto(c))
                .filter(|(s, _)| *s == "AES_CM_128_HMAC_SHA1_80")
                .collect();
            match theirs.as_slice() {
                [(_, key)] => {
                    want(
                        key.trim_end_matches('=').len() == 40,
                        "srtp: answer key is not 30 bytes of base64",
                        &mut p,
                    );
                    want(
                        !ours.iter().any(|c| c.contains(key)),
                        "srtp: the target answered with our own key",
                        &mut p,
                    );
                }
                _ => p.push(format!(
                    "srtp: answer to A needs one AES_CM_128_HMAC_SHA1_80 a=crypto: {:?}",
                    to_a.cryptos
                )),
            }
        }
        "webrtc" => {
            want(
                to_b.proto == "UDP/TLS/RTP/SAVPF",
                "webrtc: offer to B not UDP/TLS/RTP/SAVPF",
                &mut p,
            );
            want(
                to_b.ice_ufrag.is_some() && to_b.ice_pwd.is_some(),
                "webrtc: offer to B lacks ice-ufrag/ice-pwd",
                &mut p,
            );
            want(
                to_b.candidates
                    .iter()
                    .any(|c| c.component == 1 && c.addr.port() == to_b.port && c.typ == "host"),
                "webrtc: offer to B lacks a component-1 host candidate on its media port",
                &mut p,
            );
            want(
                to_b.fingerprints.iter().any(|f| f.starts_with("sha-256 ")),
                "webrtc: offer to B lacks a sha-256 fingerprint",
                &mut p,
            );
            want(
                matches!(to_b.setup.as_deref(), Some("actpass" | "passive")),
                "webrtc: offer to B setup is not actpass/passive",
                &mut p,
            );
            want(to_b.rtcp_mux, "webrtc: offer to B lacks rtcp-mux", &mut p);
            want(
                to_b.cryptos.is_empty(),
                "webrtc: a=crypto despite SDES off",
                &mut p,
            );
            want(
                to_a.proto == "RTP/AVP",
                "webrtc: answer to A not RTP/AVP",
                &mut p,
            );
            want(
                no_ice_dtls(&to_a) && to_a.cryptos.is_empty(),
                "webrtc: answer to A carries ICE/DTLS/SDES attributes",
                &mut p,
            );
            match &fc.handshake {
                Some(h) => {
                    want(h.checks_succeeded >= 1, "webrtc: no check answered", &mut p);
                    want(h.srtp_suite.is_some(), "webrtc: no SRTP suite", &mut p);
                    // A full-ICE offerer (rtpengine) controls and checks us;
                    // an ICE-lite one (Strait) leaves control to the browser.
                    if to_b.ice_lite {
                        want(
                            h.ice_role == "controlling",
                            "webrtc: browser not controlling toward ICE-lite",
                            &mut p,
                        );
                    } else {
                        want(
                            h.ice_role == "controlled",
                            "webrtc: browser not controlled toward a full-ICE offerer",
                            &mut p,
                        );
                    }
                }
                None => p.push("webrtc: no handshake record".into()),
            }
        }
        _ => unreachable!(),
    }
    p
}

/// The ng requests with what differs per run (ids, tags, addresses in the
/// SDP) taken out: the keys and flags.
fn request_shape(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["call-id", "from-tag", "to-tag", "sdp"] {
            if o.contains_key(k) {
                o.insert(k.into(), serde_json::Value::from("<varies>"));
            }
        }
    }
    v
}

#[test]
fn rtpengine_and_strait_carry_the_same_traffic_for_the_same_ng_sequences() {
    assert!(
        Path::new("/usr/bin/rtpengine").exists(),
        "/usr/bin/rtpengine is missing (apt-get install rtpengine-daemon; scripts/test.sh does)"
    );
    let t0 = std::time::Instant::now();
    let strait = strait_binary();
    eprintln!(
        "strait built/checked in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let cases = [
        TargetCase {
            name: "rtpengine",
            args: vec!["--target".into(), "rtpengine".into()],
            ng: "127.0.0.1:22981",
            gen_ports: "23000-23499",
            rtp_ports: (24000, 24499),
        },
        TargetCase {
            name: "strait",
            args: vec![
                "--target".into(),
                "strait".into(),
                "--strait-bin".into(),
                strait.display().to_string(),
            ],
            ng: "127.0.0.1:22982",
            gen_ports: "23500-23999",
            rtp_ports: (24500, 24999),
        },
    ];
    let outcomes: Vec<(Outcome, (u16, u16))> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                s.spawn(move || {
                    SCENARIOS
                        .iter()
                        .map(|sc| (run(case, sc), case.rtp_ports))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("run thread"))
            .collect()
    });
    let mut report = String::new();
    for (o, ports) in &outcomes {
        eprintln!(
            "{} {}: {:.1} s: {}",
            o.target,
            o.scenario,
            o.record.as_ref().map_or(0.0, |r| r.elapsed_secs),
            o.stdout.trim()
        );
        let p = problems(o, *ports);
        if !p.is_empty() {
            let trace = o
                .record
                .as_ref()
                .and_then(|r| r.first_call.as_ref())
                .map(|t| serde_json::to_string_pretty(t).unwrap_or_default())
                .unwrap_or_default();
            report.push_str(&format!(
                "\n===== {} {}: {}\n--- first call (ng requests, target SDPs, handshake):\n{trace}\n--- stderr:\n{}\n",
                o.target,
                o.scenario,
                p.join("; "),
                o.stderr
            ));
        }
    }
    assert!(report.is_empty(), "{report}");
    // The same sequences: both targets got requests of the same shape.
    for sc in SCENARIOS {
        let shapes: Vec<_> = outcomes
            .iter()
            .filter(|(o, _)| o.scenario == sc)
            .filter_map(|(o, _)| o.record.as_ref()?.first_call.as_ref())
            .map(|t| {
                (
                    request_shape(&t.offer_request),
                    request_shape(&t.answer_request),
                )
            })
            .collect();
        assert_eq!(shapes.len(), 2, "{sc}");
        assert_eq!(shapes[0], shapes[1], "{sc}: different ng requests");
    }
}
