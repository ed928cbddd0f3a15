//! The `strait-loadtest` binary: see `strait_loadtest::cli::USAGE`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use strait_loadtest::cli::{self, Cli};
use strait_loadtest::record::{RunRecord, SipRunRecord};
use strait_loadtest::run::{self, TargetChoice};

/// Raises the open-file limit to the hard limit (each call needs two
/// sockets here and four in rtpengine).
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the valid rlimit we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Moves this (still single-threaded) process into a new network
/// namespace with its own loopback up.
fn enter_netns() -> Result<(), String> {
    // SAFETY: unshare has no pointer arguments; called before any thread
    // is started, so the whole process (and its children) move.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {} (needs root)",
            std::io::Error::last_os_error()
        ));
    }
    let st = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("ip link set lo up: {e}"))?;
    if !st.success() {
        return Err(format!("ip link set lo up: {st}"));
    }
    Ok(())
}

/// Before a SIP scenario: the namespace, the file limit, the output
/// directory; returns the records' base name (Strait's log goes beside).
fn prepare_sip(
    c: &mut strait_loadtest::sip::common::SipCommon,
    kind: &str,
    err: &mut dyn Write,
) -> Result<String, ExitCode> {
    if c.netns {
        if let Err(e) = enter_netns() {
            let _ = writeln!(err, "strait-loadtest: {e}");
            return Err(ExitCode::from(1));
        }
    }
    raise_nofile();
    if let Err(e) = std::fs::create_dir_all(&c.out) {
        let _ = writeln!(err, "strait-loadtest: {}: {e}", c.out.display());
        return Err(ExitCode::from(1));
    }
    let stamp = strait_loadtest::record::utc_string(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .replace([':', '-'], "");
    let base = format!("{stamp}-strait-{kind}-{}", std::process::id());
    c.strait_log = c.out.join(format!("{base}.strait.log"));
    Ok(base)
}

/// After a SIP scenario: the JSON record, the summary line, the exit code.
fn finish_sip(
    dir: &std::path::Path,
    base: &str,
    record: &SipRunRecord,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    let path = dir.join(format!("{base}.json"));
    let json = serde_json::to_string_pretty(record).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, json) {
        let _ = writeln!(err, "strait-loadtest: {}: {e}", path.display());
    } else {
        let _ = writeln!(err, "record: {}", path.display());
    }
    let _ = writeln!(out, "{}", record.summary);
    if record.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let cli = match cli::parse(&args, cpus) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "strait-loadtest: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match cli {
        Cli::Help => {
            let _ = write!(out, "{}\n{}", cli::USAGE, strait_loadtest::sip::cli::USAGE);
            ExitCode::SUCCESS
        }
        Cli::Report { inputs, output } => {
            let mut records: Vec<RunRecord> = Vec::new();
            let mut sip_records: Vec<SipRunRecord> = Vec::new();
            for p in &inputs {
                let text = std::fs::read_to_string(p).map_err(|e| e.to_string());
                // A SIP scenario record (signalling, calls) has its own shape.
                if let Some(r) = text
                    .as_ref()
                    .ok()
                    .and_then(|t| serde_json::from_str::<SipRunRecord>(t).ok())
                {
                    sip_records.push(r);
                    continue;
                }
                let parsed = text.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
                match parsed {
                    Ok(r) => records.push(r),
                    Err(e) => {
                        let _ = writeln!(err, "strait-loadtest: {}: {e}", p.display());
                        return ExitCode::from(1);
                    }
                }
            }
            let html = strait_loadtest::report::render_all(&records, &sip_records);
            if let Err(e) = std::fs::write(&output, html) {
                let _ = writeln!(err, "strait-loadtest: {}: {e}", output.display());
                return ExitCode::from(1);
            }
            let _ = writeln!(
                out,
                "wrote {} ({} runs)",
                output.display(),
                records.len() + sip_records.len()
            );
            ExitCode::SUCCESS
        }
        Cli::Signalling(mut o) => {
            let kind = format!("signalling-{}", o.op.name());
            let base = match prepare_sip(&mut o.common, &kind, &mut err) {
                Ok(b) => b,
                Err(code) => return code,
            };
            let record = strait_loadtest::sip::signalling::run(&o, &mut err);
            finish_sip(&o.common.out, &base, &record, &mut out, &mut err)
        }
        Cli::Calls(mut o) => {
            let base = match prepare_sip(&mut o.common, "calls", &mut err) {
                Ok(b) => b,
                Err(code) => return code,
            };
            let record = strait_loadtest::sip::calls::run(&o, &mut err);
            finish_sip(&o.common.out, &base, &record, &mut out, &mut err)
        }
        Cli::Run(mut o) => {
            if o.netns {
                if let Err(e) = enter_netns() {
                    let _ = writeln!(err, "strait-loadtest: {e}");
                    return ExitCode::from(1);
                }
            }
            raise_nofile();
            if let Err(e) = std::fs::create_dir_all(&o.out) {
                let _ = writeln!(err, "strait-loadtest: {}: {e}", o.out.display());
                return ExitCode::from(1);
            }
            let stamp = strait_loadtest::record::utc_string(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            )
            .replace([':', '-'], "");
            let kind = match &o.target {
                TargetChoice::Rtpengine(_) => "rtpengine",
                TargetChoice::Strait(_) => "strait",
                TargetChoice::Ng(_) => "ng",
            };
            let base = format!(
                "{stamp}-{kind}-{}-{}",
                o.scenario.name(),
                std::process::id()
            );
            if let TargetChoice::Rtpengine(r) = &mut o.target {
                r.log = o.out.join(format!("{base}.rtpengine.log"));
            }
            if let TargetChoice::Strait(s) = &mut o.target {
                s.log = o.out.join(format!("{base}.strait.log"));
            }
            let record = run::run(&o, &mut err);
            let path: PathBuf = o.out.join(format!("{base}.json"));
            let json = serde_json::to_string_pretty(&record).unwrap_or_default();
            if let Err(e) = std::fs::write(&path, json) {
                let _ = writeln!(err, "strait-loadtest: {}: {e}", path.display());
            } else {
                let _ = writeln!(err, "record: {}", path.display());
            }
            let _ = writeln!(out, "{}", record.summary);
            if record.error.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
