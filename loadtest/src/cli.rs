//! Command-line parsing (no I/O: takes the arguments, returns what to do).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::ramp::{RampPlan, Sla};
use crate::run::{BusySource, RunOptions, TargetChoice};
use crate::scenario::Scenario;
use crate::target::{default_strait_bin, RtpengineOptions, StraitOptions};

/// Usage text.
pub const USAGE: &str = "\
strait-loadtest: paced RTP load through an ng-controlled media relay; finds the load where the service level breaks.

USAGE:
  strait-loadtest run --scenario plain|srtp|transcode|webrtc [options]
  strait-loadtest report RUN.json [RUN.json ...] -o report.html
  strait-loadtest signalling|calls [options]   SIP scenarios against Strait (below)

RUN OPTIONS (defaults in brackets):
  --target rtpengine|strait|ng=HOST:PORT
                                    start rtpengine or Strait here, or use a running ng target [rtpengine]
  --target-pid PID                  PID of an external target, for its CPU time
  --target-cores LIST               cores the target runs on (a started target is pinned there) [last core]
  --gen-threads N                   generator threads [1]
  --gen-cores LIST                  generator cores, threads pinned round-robin [all but the target's]
  --calls N                         a single step of N concurrent calls, or a ramp:
  --start N --step N --max N        ramp from start by step up to max calls [100, 100, 1000]
  --step-secs S                     measured seconds per step [5]
  --warmup-secs S                   traffic seconds before each measurement [4]
  --drain-ms MS                     late packets still count this long [500]
  --max-secs S                      hard limit of the whole run [180]
  --busy-source core|process        target busy fraction from /proc/stat of its cores, or from
                                    the target process's CPU time [core]
  --sla-loss-pct P                  service level: loss at most P percent [0.1]
  --sla-p99-ms MS                   service level: p99 one-way latency at most MS [5]
  --out DIR                         where the JSON record (and rtpengine log) go [loadtest-out]
  --label TEXT                      run label in the report [target and scenario]
  --netns                           run in a private network namespace (root; own loopback)
  --local-ip IP                     generator address [127.0.0.1]
  --gen-ports MIN-MAX               generator UDP ports [10000-29999]
  --rtpengine-bin PATH              [/usr/bin/rtpengine]
  --ng-listen HOST:PORT             ng address of the started rtpengine or Strait [127.0.0.1:2223]
  --rtp-ports MIN-MAX               media ports of the started rtpengine or Strait [30000-50000]
  --strait-bin PATH                 strait, with strait-dataplane beside it [$STRAIT_BIN, else strait
                                    in this executable's directory]
  --rtpengine-threads N             its --num-threads [1]
  --rtpengine-log-level N           its --log-level [5]

LIST is comma-separated core numbers and ranges, e.g. 0 or 0,2-3.
Output: progress lines on stderr, one summary line on stdout, the JSON record in --out.
";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Cli {
    /// A load run.
    Run(Box<RunOptions>),
    /// An HTML report of records.
    Report {
        /// The JSON records.
        inputs: Vec<PathBuf>,
        /// The HTML file.
        output: PathBuf,
    },
    /// Scenario (c): REGISTER or call-setup rates over WSS against Strait.
    Signalling(Box<crate::sip::signalling::SignallingOptions>),
    /// Scenario (b): full calls with media through Strait's B2BUA.
    Calls(Box<crate::sip::calls::CallsOptions>),
    /// Print usage.
    Help,
}

/// Largest number of calls accepted.
pub const MAX_CALLS: u32 = 20_000;
/// Largest `--max-secs`.
pub const MAX_RUN_SECS: f64 = 3600.0;

/// Parses a core list like `0,2-3`.
pub fn parse_cores(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a
            .trim()
            .parse()
            .map_err(|_| format!("bad core list {s:?}"))?;
        let b: usize = b
            .trim()
            .parse()
            .map_err(|_| format!("bad core list {s:?}"))?;
        if a > b || b >= 1024 {
            return Err(format!("bad core range {part:?}"));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("expected MIN-MAX, got {s:?}"))?;
    let a: u16 = a.parse().map_err(|_| format!("bad port {a:?}"))?;
    let b: u16 = b.parse().map_err(|_| format!("bad port {b:?}"))?;
    if a == 0 || a >= b {
        return Err(format!("bad port range {s:?}"));
    }
    Ok((a, b))
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: bad value {v:?}"))
}

/// Parses the arguments after the program name; `cpus` is the number of
/// online CPUs (for the core defaults).
pub fn parse(args: &[String], cpus: usize) -> Result<Cli, String> {
    let Some(cmd) = args.first() else {
        return Ok(Cli::Help);
    };
    match cmd.as_str() {
        "-h" | "--help" | "help" => Ok(Cli::Help),
        "report" => {
            let mut inputs = Vec::new();
            let mut output = None;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                if a == "-o" || a == "--output" {
                    output = Some(PathBuf::from(it.next().ok_or("-o needs a file")?));
                } else {
                    inputs.push(PathBuf::from(a));
                }
            }
            if inputs.is_empty() {
                return Err("report: give at least one JSON record".into());
            }
            Ok(Cli::Report {
                inputs,
                output: output.unwrap_or_else(|| PathBuf::from("report.html")),
            })
        }
        "run" => parse_run(&args[1..], cpus).map(|o| Cli::Run(Box::new(o))),
        "signalling" => crate::sip::cli::parse_signalling(&args[1..], cpus)
            .map(|o| Cli::Signalling(Box::new(o))),
        "calls" => crate::sip::cli::parse_calls(&args[1..], cpus).map(|o| Cli::Calls(Box::new(o))),
        other => Err(format!(
            "unknown command {other:?} (run, signalling, calls, report)"
        )),
    }
}

fn parse_run(args: &[String], cpus: usize) -> Result<RunOptions, String> {
    let mut scenario = None;
    let mut target = "rtpengine".to_string();
    let mut target_pid = None;
    let mut target_cores = None;
    let mut gen_threads = 1usize;
    let mut gen_cores = None;
    let mut calls: Option<u32> = None;
    let (mut start, mut step, mut max) = (None, None, None);
    let mut step_secs = 5.0;
    let mut warmup_secs = 4.0;
    let mut drain_ms = 500u64;
    let mut max_secs = 180.0;
    let mut sla = Sla::default();
    let mut busy_source = BusySource::Core;
    let mut out = PathBuf::from("loadtest-out");
    let mut label = None;
    let mut netns = false;
    let mut local_ip: IpAddr = "127.0.0.1".parse().map_err(|_| "ip")?;
    let mut gen_ports = (10000u16, 29999u16);
    let mut bin = PathBuf::from("/usr/bin/rtpengine");
    let mut ng_listen: SocketAddr = "127.0.0.1:2223".parse().map_err(|_| "addr")?;
    let mut rtp_ports = (30000u16, 50000u16);
    let mut rtpe_threads = 1u32;
    let mut log_level = 5u32;
    let mut strait_bin = None;

    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--netns" {
            netns = true;
            continue;
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        match flag.as_str() {
            "--scenario" => {
                scenario =
                    Some(Scenario::from_name(v).ok_or_else(|| format!("unknown scenario {v:?}"))?)
            }
            "--target" => target = v.to_string(),
            "--target-pid" => target_pid = Some(num(flag, v)?),
            "--target-cores" => target_cores = Some(parse_cores(v)?),
            "--gen-threads" => gen_threads = num(flag, v)?,
            "--gen-cores" => gen_cores = Some(parse_cores(v)?),
            "--calls" => calls = Some(num(flag, v)?),
            "--start" => start = Some(num(flag, v)?),
            "--step" => step = Some(num(flag, v)?),
            "--max" => max = Some(num(flag, v)?),
            "--step-secs" => step_secs = num(flag, v)?,
            "--warmup-secs" => warmup_secs = num(flag, v)?,
            "--drain-ms" => drain_ms = num(flag, v)?,
            "--max-secs" => max_secs = num(flag, v)?,
            "--busy-source" => {
                busy_source = match v {
                    "core" => BusySource::Core,
                    "process" => BusySource::Process,
                    _ => return Err(format!("--busy-source: core or process, not {v:?}")),
                }
            }
            "--sla-loss-pct" => sla.max_loss = num::<f64>(flag, v)? / 100.0,
            "--sla-p99-ms" => sla.max_p99_ms = num(flag, v)?,
            "--out" => out = PathBuf::from(v),
            "--label" => label = Some(v.to_string()),
            "--local-ip" => local_ip = num(flag, v)?,
            "--gen-ports" => gen_ports = parse_range(v)?,
            "--rtpengine-bin" => bin = PathBuf::from(v),
            "--ng-listen" => ng_listen = num(flag, v)?,
            "--rtp-ports" => rtp_ports = parse_range(v)?,
            "--rtpengine-threads" => rtpe_threads = num(flag, v)?,
            "--rtpengine-log-level" => log_level = num(flag, v)?,
            "--strait-bin" => strait_bin = Some(PathBuf::from(v)),
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    let scenario = scenario.ok_or("--scenario is required")?;
    let plan = match (calls, start, step, max) {
        (Some(n), None, None, None) => RampPlan {
            start: n,
            step: 0,
            max: n,
        },
        (Some(_), ..) => return Err("--calls excludes --start/--step/--max".into()),
        (None, s, st, m) => {
            let start = s.unwrap_or(100);
            RampPlan {
                start,
                step: st.unwrap_or(100),
                max: m.unwrap_or(1000).max(start),
            }
        }
    };
    if plan.start == 0 || plan.max > MAX_CALLS {
        return Err(format!("calls must be 1..={MAX_CALLS}"));
    }
    if !(0.5..=600.0).contains(&step_secs) || !(0.0..=60.0).contains(&warmup_secs) {
        return Err("--step-secs must be 0.5..=600, --warmup-secs 0..=60".into());
    }
    if !(1.0..=MAX_RUN_SECS).contains(&max_secs) {
        return Err(format!("--max-secs must be 1..={MAX_RUN_SECS}"));
    }
    if drain_ms > 10_000 || !(1..=64).contains(&gen_threads) {
        return Err("--drain-ms at most 10000, --gen-threads 1..=64".into());
    }
    if !(sla.max_loss >= 0.0 && sla.max_p99_ms > 0.0) {
        return Err("bad service level".into());
    }
    // Default cores: target on the last core, generator on the others.
    let target_cores = target_cores.unwrap_or_else(|| {
        if (target == "rtpengine" || target == "strait") && cpus > 1 {
            vec![cpus - 1]
        } else {
            Vec::new()
        }
    });
    let gen_cores = gen_cores.unwrap_or_else(|| {
        if target_cores.is_empty() {
            Vec::new()
        } else {
            (0..cpus).filter(|c| !target_cores.contains(c)).collect()
        }
    });
    if let Some(c) = target_cores.iter().chain(&gen_cores).find(|&&c| c >= cpus) {
        return Err(format!("core {c} does not exist ({cpus} CPUs)"));
    }
    let target = if target == "rtpengine" {
        if !(ng_listen.ip().is_loopback() && local_ip.is_loopback()) {
            return Err("rtpengine is only run on loopback".into());
        }
        TargetChoice::Rtpengine(RtpengineOptions {
            bin,
            ng: ng_listen,
            port_min: rtp_ports.0,
            port_max: rtp_ports.1,
            threads: rtpe_threads,
            cores: target_cores.clone(),
            log: PathBuf::new(),
            log_level,
        })
    } else if target == "strait" {
        if !(ng_listen.ip().is_loopback() && local_ip.is_loopback()) {
            return Err("strait is only run on loopback".into());
        }
        if !rtp_ports.0.is_multiple_of(2) {
            return Err("--rtp-ports: Strait needs an even first port".into());
        }
        TargetChoice::Strait(StraitOptions {
            bin: strait_bin.unwrap_or_else(default_strait_bin),
            ng: ng_listen,
            port_min: rtp_ports.0,
            port_max: rtp_ports.1,
            cores: target_cores.clone(),
            log: PathBuf::new(),
        })
    } else if let Some(addr) = target.strip_prefix("ng=") {
        if netns {
            return Err("--netns with an external target: it would not be reachable".into());
        }
        let addr: SocketAddr = num("--target", addr)?;
        if !addr.ip().is_loopback() || !local_ip.is_loopback() {
            return Err(
                "traffic only to loopback: the ng target must be on 127.0.0.0/8 or ::1".into(),
            );
        }
        TargetChoice::Ng(addr)
    } else {
        return Err(format!(
            "unknown target {target:?} (rtpengine, strait or ng=HOST:PORT)"
        ));
    };
    Ok(RunOptions {
        scenario,
        target,
        target_pid,
        target_cores,
        gen_threads,
        gen_cores,
        plan,
        step_secs,
        warmup_secs,
        drain_ms,
        max_secs,
        busy_source,
        sla,
        out,
        label,
        netns,
        local_ip,
        gen_ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn run_defaults_split_cores() {
        let Cli::Run(o) = parse(
            &args("run --scenario plain --start 250 --step 250 --max 2500"),
            2,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.target_cores, vec![1]);
        assert_eq!(o.gen_cores, vec![0]);
        assert_eq!(
            o.plan,
            RampPlan {
                start: 250,
                step: 250,
                max: 2500
            }
        );
        assert!(matches!(o.target, TargetChoice::Rtpengine(ref r) if r.cores == vec![1]));
        assert_eq!(o.sla, Sla::default());
    }

    #[test]
    fn single_step_and_external_target() {
        let Cli::Run(o) = parse(
            &args("run --scenario srtp --calls 10 --target ng=127.0.0.1:2999 --target-pid 42 --target-cores 1 --gen-threads 2 --gen-cores 0 --sla-loss-pct 1 --sla-p99-ms 10"),
            2,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            o.plan,
            RampPlan {
                start: 10,
                step: 0,
                max: 10
            }
        );
        assert!(matches!(o.target, TargetChoice::Ng(a) if a.port() == 2999));
        assert_eq!((o.target_pid, o.gen_threads), (Some(42), 2));
        assert_eq!(o.sla.max_loss, 0.01);
        assert_eq!(o.sla.max_p99_ms, 10.0);
    }

    #[test]
    fn strait_target() {
        let Cli::Run(o) = parse(
            &args("run --scenario webrtc --target strait --strait-bin /x/strait --calls 4 --ng-listen 127.0.0.1:22998 --rtp-ports 24000-24999"),
            2,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.scenario, Scenario::Webrtc);
        assert_eq!(o.target_cores, vec![1]);
        let TargetChoice::Strait(s) = &o.target else {
            panic!("{:?}", o.target)
        };
        assert_eq!(s.bin, PathBuf::from("/x/strait"));
        assert_eq!(
            (s.port_min, s.port_max, s.cores.clone()),
            (24000, 24999, vec![1])
        );
        assert_eq!(s.ng.port(), 22998);
        assert!(parse(
            &args("run --scenario plain --target strait --rtp-ports 24001-24999"),
            2
        )
        .is_err());
        assert!(parse(
            &args("run --scenario plain --target strait --ng-listen 10.0.0.1:2223"),
            2
        )
        .is_err());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "run",
            "run --scenario nope",
            "run --scenario plain --calls 0",
            "run --scenario plain --calls 100000",
            "run --scenario plain --calls 5 --max 10",
            "run --scenario plain --target ng=10.0.0.1:2223",
            "run --scenario plain --target ng=127.0.0.1:2223 --netns",
            "run --scenario plain --target-cores 7",
            "run --scenario plain --max-secs 99999",
            "run --scenario plain --gen-ports 5-1",
            "run --scenario plain --bogus 1",
            "run --scenario",
            "report",
            "frobnicate",
        ] {
            assert!(parse(&args(bad), 2).is_err(), "{bad}");
        }
        assert!(matches!(parse(&[], 2), Ok(Cli::Help)));
    }

    #[test]
    fn core_lists_and_report() {
        assert_eq!(parse_cores("0,2-3,2").unwrap(), vec![0, 2, 3]);
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("x").is_err());
        let Cli::Report { inputs, output } =
            parse(&args("report a.json b.json -o r.html"), 2).unwrap()
        else {
            panic!()
        };
        assert_eq!(inputs.len(), 2);
        assert_eq!(output, PathBuf::from("r.html"));
    }
}
