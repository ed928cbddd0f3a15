//! Command-line parsing of the `signalling` and `calls` commands (no I/O).

use std::path::PathBuf;

use super::calls::{CallsOptions, Direction};
use super::common::SipCommon;
use super::sdp::BrowserCodec;
use super::signalling::{Op, SignallingOptions};
use crate::cli::parse_cores;

/// Usage of the SIP commands (appended to the tool's usage).
pub const USAGE: &str = "\
  strait-loadtest signalling --op register|call [options]   (c) REGISTER or call-setup rate over WSS
  strait-loadtest calls [options]                           (b) full calls with media through the B2BUA

Both start strait (--strait-bin, default: beside this binary or $STRAIT_BIN) with a generated configuration:
WSS on --sip-port + 1, UDP on --sip-port, the simulated legacy endpoint (UDP) on --sip-port + 20 as its
default next hop, users lt0000.. (one per connection).

SIGNALLING OPTIONS (defaults in brackets):
  --op register|call                 what each operation is [register]
  --rate R                           a single step at R operations/s, or a ramp:
  --start R --step R --max R         from start by step up to max operations/s
                                     [register: 1000, 1000, 20000; call: 250, 250, 5000]
  --step-secs S                      seconds of operations per step [5]
  --count N                          operations per step instead of step-secs x rate
  --hold-ms MS                       call: time between the ACK and the BYE, at most 50000 [0]
  --sla-p99-ms MS                    clean step: no failure and p99 (REGISTER, or INVITE to 200) at most MS [200]
  --max-outstanding N                operations in flight at most; beyond, a due one counts as failed [10000]

CALLS OPTIONS:
  --calls N                          one step of N concurrent calls, or a ramp:
  --start N --step N --max N         [10, 10, 100]
  --direction both|browser|legacy    who calls: browsers the legacy side, the legacy side browsers, or half each [both]
  --codec pcmu|opus                  the browsers offer PCMU and Opus (PCMU passes through) or Opus only [pcmu]
  --setup-rate R                     calls set up per second while growing a step [20]
  --step-secs S --warmup-secs S      measured seconds per step, traffic seconds before [5, 3]
  --drain-ms MS                      late packets still count this long [500]
  --handshake-ms MS                  longest ICE + DTLS of a browser leg [5000]
  --gen-threads N                    media generator threads [1]
  --sla-loss-pct P --sla-p99-ms MS   media service level [0.1, 20]

COMMON OPTIONS:
  --strait-bin PATH                  the strait binary (strait-dataplane beside it)
  --target-cores LIST --gen-cores LIST   [last core; the others]
  --sip-port N                       [20060]
  --media-ports MIN-MAX              strait's media ports [24000-31998]
  --gen-ports MIN-MAX                the simulated endpoints' RTP ports [10000-19998]
  --connections N                    WSS connections, one browser (user) each [100; calls: 2 x calls]
  --ring-ms MS                       the legacy endpoint sends 180, waits MS, then 200 [0]
  --timeout-ms MS                    deadline of one operation [5000]
  --sip-threads N                    SIP runtime threads [one per generator core]
  --max-secs S                       hard limit of the whole run [300]
  --out DIR --label TEXT --netns     as for run
";

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: bad value {v:?}"))
}

fn range(flag: &str, v: &str) -> Result<(u16, u16), String> {
    let (a, b) = v
        .split_once('-')
        .ok_or_else(|| format!("{flag}: expected MIN-MAX, got {v:?}"))?;
    let (a, b): (u16, u16) = (num(flag, a)?, num(flag, b)?);
    if a == 0 || a >= b {
        return Err(format!("{flag}: bad range {v:?}"));
    }
    Ok((a, b))
}

/// Takes a common option: `Ok(true)` if `flag` was one.
fn common_flag(c: &mut SipCommon, flag: &str, v: &str) -> Result<bool, String> {
    match flag {
        "--strait-bin" => c.strait_bin = PathBuf::from(v),
        "--target-cores" => c.target_cores = parse_cores(v)?,
        "--gen-cores" => c.gen_cores = parse_cores(v)?,
        "--sip-port" => c.sip_port = num(flag, v)?,
        "--media-ports" => c.media_ports = range(flag, v)?,
        "--gen-ports" => c.gen_ports = range(flag, v)?,
        "--connections" => c.connections = num(flag, v)?,
        "--ring-ms" => c.ring_ms = num(flag, v)?,
        "--timeout-ms" => c.timeout_ms = num(flag, v)?,
        "--sip-threads" => c.sip_threads = num(flag, v)?,
        "--max-secs" => c.max_secs = num(flag, v)?,
        "--out" => c.out = PathBuf::from(v),
        "--label" => c.label = Some(v.to_string()),
        _ => return Ok(false),
    }
    Ok(true)
}

fn check_common(c: &SipCommon, cpus: usize, core_default: bool) -> Result<(), String> {
    if let Some(x) = c
        .target_cores
        .iter()
        .chain(&c.gen_cores)
        .find(|&&x| x >= cpus)
    {
        return Err(format!("core {x} does not exist ({cpus} CPUs)"));
    }
    if !core_default && c.target_cores.iter().any(|x| c.gen_cores.contains(x)) {
        return Err("--target-cores and --gen-cores overlap".into());
    }
    if c.sip_port == 0 || c.sip_port > 65_000 {
        return Err("--sip-port must be 1..=65000".into());
    }
    let sip = (c.sip_port, c.sip_port + 20);
    for (name, (a, b)) in [
        ("--media-ports", c.media_ports),
        ("--gen-ports", c.gen_ports),
    ] {
        if a <= sip.1 && sip.0 <= b {
            return Err(format!(
                "{name} overlap the SIP ports {}..={}",
                sip.0, sip.1
            ));
        }
    }
    let (m, g) = (c.media_ports, c.gen_ports);
    if m.0 <= g.1 && g.0 <= m.1 {
        return Err("--media-ports and --gen-ports overlap".into());
    }
    if !(1..=20_000).contains(&c.connections) {
        return Err("--connections must be 1..=20000".into());
    }
    if !(100..=120_000).contains(&c.timeout_ms) || c.ring_ms > 60_000 {
        return Err("--timeout-ms must be 100..=120000, --ring-ms at most 60000".into());
    }
    if !(1.0..=crate::cli::MAX_RUN_SECS).contains(&c.max_secs) {
        return Err(format!(
            "--max-secs must be 1..={}",
            crate::cli::MAX_RUN_SECS
        ));
    }
    if c.sip_threads > 64 {
        return Err("--sip-threads at most 64".into());
    }
    Ok(())
}

/// The flags, with `--netns` taken out into the bool.
fn pairs(args: &[String]) -> Result<(Vec<(String, String)>, bool), String> {
    let mut out = Vec::new();
    let mut netns = false;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--netns" {
            netns = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        out.push((flag.clone(), v.clone()));
    }
    Ok((out, netns))
}

/// Parses the arguments after `signalling`.
pub fn parse_signalling(args: &[String], cpus: usize) -> Result<SignallingOptions, String> {
    let mut c = SipCommon::defaults(cpus);
    c.command = format!("signalling {}", args.join(" "));
    let (flags, netns) = pairs(args)?;
    c.netns = netns;
    let mut o = SignallingOptions {
        common: c,
        op: Op::Register,
        start: 100.0,
        step: 100.0,
        max: 1000.0,
        step_secs: 5.0,
        count: None,
        hold_ms: 0,
        sla_p99_ms: 200.0,
        max_outstanding: 10_000,
    };
    let (mut rate, mut start, mut step, mut max) = (None, None, None, None);
    let mut cores_given = false;
    for (flag, v) in &flags {
        cores_given |= flag == "--target-cores" || flag == "--gen-cores";
        if common_flag(&mut o.common, flag, v)? {
            continue;
        }
        match flag.as_str() {
            "--op" => {
                o.op = match v.as_str() {
                    "register" => Op::Register,
                    "call" => Op::Call,
                    _ => return Err(format!("--op: register or call, not {v:?}")),
                }
            }
            "--rate" => rate = Some(num::<f64>(flag, v)?),
            "--start" => start = Some(num::<f64>(flag, v)?),
            "--step" => step = Some(num::<f64>(flag, v)?),
            "--max" => max = Some(num::<f64>(flag, v)?),
            "--step-secs" => o.step_secs = num(flag, v)?,
            "--count" => o.count = Some(num(flag, v)?),
            "--hold-ms" => o.hold_ms = num(flag, v)?,
            "--sla-p99-ms" => o.sla_p99_ms = num(flag, v)?,
            "--max-outstanding" => o.max_outstanding = num(flag, v)?,
            _ => return Err(format!("unknown signalling option {flag:?}")),
        }
    }
    match (rate, start, step, max) {
        (Some(r), None, None, None) => {
            o.start = r;
            o.step = 0.0;
            o.max = r;
        }
        (Some(_), ..) => return Err("--rate excludes --start/--step/--max".into()),
        (None, s, st, m) => {
            let (d_start, d_step, d_max) = match o.op {
                Op::Register => (1000.0, 1000.0, 20_000.0),
                Op::Call => (250.0, 250.0, 5000.0),
            };
            o.start = s.unwrap_or(d_start);
            o.step = st.unwrap_or(d_step);
            o.max = m.unwrap_or(d_max).max(o.start);
        }
    }
    let ok = |x: f64| x.is_finite() && (0.0..=100_000.0).contains(&x);
    if !(ok(o.start) && ok(o.step) && ok(o.max)) || o.start < 0.1 {
        return Err("rates must be 0.1..=100000 per second".into());
    }
    if !(0.5..=600.0).contains(&o.step_secs) {
        return Err("--step-secs must be 0.5..=600".into());
    }
    if o.count.is_some_and(|n| n == 0 || n > 10_000_000) {
        return Err("--count must be 1..=10000000".into());
    }
    if o.hold_ms > 50_000
        || o.sla_p99_ms.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        || o.max_outstanding == 0
    {
        return Err(
            "--hold-ms at most 50000 (Strait ends calls without media after 60 s), --sla-p99-ms above 0, --max-outstanding at least 1".into(),
        );
    }
    check_common(&o.common, cpus, !cores_given)?;
    Ok(o)
}

/// Parses the arguments after `calls`.
pub fn parse_calls(args: &[String], cpus: usize) -> Result<CallsOptions, String> {
    let mut c = SipCommon::defaults(cpus);
    c.command = format!("calls {}", args.join(" "));
    let (flags, netns) = pairs(args)?;
    c.netns = netns;
    let mut o = CallsOptions::new(c);
    let (mut calls, mut start, mut step, mut max) = (None, None, None, None);
    let mut connections_given = false;
    let mut cores_given = false;
    for (flag, v) in &flags {
        connections_given |= flag == "--connections";
        cores_given |= flag == "--target-cores" || flag == "--gen-cores";
        if common_flag(&mut o.common, flag, v)? {
            continue;
        }
        match flag.as_str() {
            "--calls" => calls = Some(num::<u32>(flag, v)?),
            "--start" => start = Some(num::<u32>(flag, v)?),
            "--step" => step = Some(num::<u32>(flag, v)?),
            "--max" => max = Some(num::<u32>(flag, v)?),
            "--direction" => {
                o.direction = Direction::from_name(v)
                    .ok_or_else(|| format!("--direction: both, browser or legacy, not {v:?}"))?
            }
            "--codec" => {
                o.codec = BrowserCodec::from_name(v)
                    .ok_or_else(|| format!("--codec: pcmu or opus, not {v:?}"))?
            }
            "--setup-rate" => o.setup_rate = num(flag, v)?,
            "--step-secs" => o.step_secs = num(flag, v)?,
            "--warmup-secs" => o.warmup_secs = num(flag, v)?,
            "--drain-ms" => o.drain_ms = num(flag, v)?,
            "--handshake-ms" => o.handshake_ms = num(flag, v)?,
            "--gen-threads" => o.gen_threads = num(flag, v)?,
            "--sla-loss-pct" => o.sla.max_loss = num::<f64>(flag, v)? / 100.0,
            "--sla-p99-ms" => o.sla.max_p99_ms = num(flag, v)?,
            _ => return Err(format!("unknown calls option {flag:?}")),
        }
    }
    match (calls, start, step, max) {
        (Some(n), None, None, None) => {
            o.start = n;
            o.step = 0;
            o.max = n;
        }
        (Some(_), ..) => return Err("--calls excludes --start/--step/--max".into()),
        (None, s, st, m) => {
            o.start = s.unwrap_or(10);
            o.step = st.unwrap_or(10);
            o.max = m.unwrap_or(100).max(o.start);
        }
    }
    if o.start == 0 || o.max > 5_000 {
        return Err("calls must be 1..=5000".into());
    }
    let even_ports = u32::from(o.common.gen_ports.1 - o.common.gen_ports.0) / 2 + 1;
    if 2 * o.max > even_ports {
        return Err(format!(
            "--gen-ports has {even_ports} even ports: room for {} calls (two sockets each)",
            even_ports / 2
        ));
    }
    if !connections_given {
        o.common.connections = (2 * o.max as usize).clamp(1, 20_000);
    }
    if !(0.1..=1000.0).contains(&o.setup_rate) {
        return Err("--setup-rate must be 0.1..=1000".into());
    }
    if !(0.5..=600.0).contains(&o.step_secs) || !(0.0..=60.0).contains(&o.warmup_secs) {
        return Err("--step-secs must be 0.5..=600, --warmup-secs 0..=60".into());
    }
    if o.drain_ms > 10_000 || !(100..=60_000).contains(&o.handshake_ms) {
        return Err("--drain-ms at most 10000, --handshake-ms 100..=60000".into());
    }
    if !(1..=64).contains(&o.gen_threads) {
        return Err("--gen-threads 1..=64".into());
    }
    if !(o.sla.max_loss >= 0.0 && o.sla.max_p99_ms > 0.0) {
        return Err("bad service level".into());
    }
    check_common(&o.common, cpus, !cores_given)?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn signalling_options() {
        let o = parse_signalling(&args("--op call --rate 50 --count 100 --hold-ms 10"), 2).unwrap();
        assert_eq!(o.op, Op::Call);
        assert_eq!(
            (o.start, o.step, o.max, o.count),
            (50.0, 0.0, 50.0, Some(100))
        );
        assert_eq!(o.common.target_cores, vec![1]);
        assert_eq!(o.common.gen_cores, vec![0]);
        let o = parse_signalling(&args("--start 200 --step 200 --max 1000 --netns"), 2).unwrap();
        assert_eq!(o.rates().len(), 5);
        assert!(o.common.netns);
        for bad in [
            "--op nope",
            "--rate 5 --max 10",
            "--rate 0",
            "--target-cores 7",
            "--target-cores 0 --gen-cores 0",
            "--media-ports 20000-20100",
            "--gen-ports 24000-25000",
            "--connections 0",
            "--bogus 1",
            "--rate",
        ] {
            assert!(parse_signalling(&args(bad), 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn calls_options() {
        let o = parse_calls(&args("--calls 4 --direction legacy --codec opus"), 2).unwrap();
        assert_eq!((o.start, o.step, o.max), (4, 0, 4));
        assert_eq!(o.direction, Direction::Legacy);
        assert_eq!(o.codec, BrowserCodec::Opus);
        assert_eq!(o.common.connections, 8);
        for bad in [
            "--calls 0",
            "--calls 5 --step 1",
            "--direction up",
            "--gen-threads 0",
            "--calls 6 --gen-ports 10000-10020",
        ] {
            assert!(parse_calls(&args(bad), 2).is_err(), "{bad}");
        }
    }
}
