//! The JSON record of one run (one file per run in `--out`), read back by
//! the HTML report.

use serde::{Deserialize, Serialize};

use crate::ramp::{Capacity, RampPlan, Sla, StepVerdict, StopReason};
use crate::scenario::CallTrace;
use crate::stats::DirSummary;

/// The whole record of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// `strait-loadtest <version>`.
    pub tool: String,
    /// Start time, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_utc: String,
    /// Free-text label (default: target and scenario).
    pub label: String,
    /// The target.
    pub target: TargetRecord,
    /// `plain`, `srtp`, `transcode` or `webrtc`.
    pub scenario: String,
    /// Settings.
    pub config: ConfigRecord,
    /// Busy fraction of each target and generator core during one second
    /// before the run (other tenants' load: should be near 0).
    pub baseline_core_busy: Vec<(usize, f64)>,
    /// The load steps, in order.
    pub steps: Vec<StepRecord>,
    /// Why the run stopped.
    pub stop: StopReason,
    /// The capacity figure (or why there is none).
    pub capacity: Capacity,
    /// A fatal error, if the run ended on one.
    pub error: Option<String>,
    /// The one-line summary.
    pub summary: String,
    /// Wall time of the whole run, s.
    pub elapsed_secs: f64,
    /// The first call's ng exchange (requests, the target's SDPs, the
    /// WebRTC handshake), recorded also when it failed.
    #[serde(default)]
    pub first_call: Option<CallTrace>,
}

/// The target of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetRecord {
    /// `rtpengine` or `strait` (started by the tool), `ng` (external).
    pub kind: String,
    /// Version, if known.
    pub version: Option<String>,
    /// ng address.
    pub ng: String,
    /// PID used for CPU accounting.
    pub pid: Option<u32>,
    /// Cores it runs on (busy fraction from `/proc/stat`).
    pub cores: Vec<usize>,
}

/// Settings of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// Generator threads.
    pub gen_threads: usize,
    /// Generator cores.
    pub gen_cores: Vec<usize>,
    /// Load steps.
    pub plan: RampPlan,
    /// Measured seconds per step.
    pub step_secs: f64,
    /// Seconds of traffic before each measurement.
    pub warmup_secs: f64,
    /// Drain time after each measurement, ms.
    pub drain_ms: u64,
    /// Hard limit of the whole run, s.
    pub max_secs: f64,
    /// Which target busy fraction the capacity uses: `core` or `process`.
    pub busy_source: String,
    /// The service level.
    pub sla: Sla,
    /// Whether the run was in a private network namespace.
    pub netns: bool,
    /// Online CPUs of the machine.
    pub machine_cpus: usize,
}

/// One load step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Concurrent calls.
    pub calls: u32,
    /// Length of the measurement window, s.
    pub secs: f64,
    /// Packets per second offered to the target (both directions).
    pub offered_pps: f64,
    /// Seconds spent on ng setup of this step's new calls.
    pub setup_secs: f64,
    /// Direction leg A -> leg B.
    pub a_to_b: DirSummary,
    /// Direction leg B -> leg A.
    pub b_to_a: DirSummary,
    /// Loss over both directions.
    pub loss: f64,
    /// Median one-way latency over both directions, ms.
    pub p50_ms: f64,
    /// p99 one-way latency over both directions, ms.
    pub p99_ms: f64,
    /// p99 jitter (RFC 3550 estimate) over both directions, ms.
    pub jitter_p99_ms: f64,
    /// Transcoding only: stream directions whose RTP sequence numbers the
    /// target kept (latency exact) and those mapped by anchoring (latency a
    /// lower bound), see `stats::SeqMapper`.
    pub seq_mapping: Option<(u64, u64)>,
    /// The generator.
    pub generator: GenRecord,
    /// The target's CPU.
    pub target_cpu: TargetCpuRecord,
    /// Service level and saturation verdict.
    pub verdict: StepVerdict,
}

/// The generator's own load in one step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenRecord {
    /// Threads.
    pub threads: usize,
    /// CPU of the generator threads (utime+stime) ÷ (window × cores they may use).
    pub cpu: f64,
    /// CPU seconds of the generator threads in the window.
    pub cpu_secs: f64,
    /// Busy fraction of each generator core (`/proc/stat`, all processes).
    pub core_busy: Vec<f64>,
    /// Send lateness against the deadlines, p50, ms.
    pub late_p50_ms: f64,
    /// p99, ms.
    pub late_p99_ms: f64,
    /// Max, ms.
    pub late_max_ms: f64,
    /// Sends refused by the kernel.
    pub send_errors: u64,
    /// Times a stream fell a second behind and skipped ahead.
    pub skipped: u64,
}

/// The target's CPU in one step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetCpuRecord {
    /// The busy fraction the ramp and capacity use (per `busy_source`).
    pub busy: Option<f64>,
    /// `core`: mean busy fraction of the target cores from `/proc/stat`
    /// (includes softirq work and any other process on those cores);
    /// `process`: the target process's CPU ÷ its number of cores.
    pub busy_source: String,
    /// Mean busy fraction of the target cores from `/proc/stat`, if known.
    pub core_busy_mean: Option<f64>,
    /// Per target core.
    pub core_busy: Vec<f64>,
    /// The target process's CPU (utime+stime) in cores, if its PID is known.
    pub process_cores: Option<f64>,
}

/// The record of a SIP scenario run against Strait (`signalling`: REGISTER
/// or call-setup rates over WSS; `calls`: concurrent full calls with media).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SipRunRecord {
    /// `strait-loadtest <version>`.
    pub tool: String,
    /// Start time, UTC.
    pub started_utc: String,
    /// Free-text label.
    pub label: String,
    /// `signalling-register`, `signalling-call` or `calls`.
    pub scenario: String,
    /// The target (always a Strait the tool started).
    pub target: TargetRecord,
    /// The command line after the program name.
    pub command: String,
    /// Settings.
    pub config: SipConfigRecord,
    /// Busy fraction of each target and generator core before the run.
    pub baseline_core_busy: Vec<(usize, f64)>,
    /// `signalling`: one entry per offered rate.
    pub rate_steps: Vec<RateStepRecord>,
    /// `calls`: one entry per number of concurrent calls.
    pub call_steps: Vec<CallStepRecord>,
    /// Why the run stopped (`completed`, `sla_broken`, `time_limit`, `error`).
    pub stop: String,
    /// `signalling`: the highest offered rate (per second) of a clean step.
    pub sustained_rate: Option<f64>,
    /// `calls`: the most concurrent calls of a clean step.
    pub max_clean_calls: Option<u32>,
    /// A fatal error.
    pub error: Option<String>,
    /// The one-line summary.
    pub summary: String,
    /// Wall time, s.
    pub elapsed_secs: f64,
}

/// Settings of a SIP scenario run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SipConfigRecord {
    /// Persistent WSS connections (one simulated browser and user each).
    pub connections: usize,
    /// Ring time of the simulated legacy endpoint, ms.
    pub ring_ms: u64,
    /// Time between the ACK and the BYE of a `signalling` call, ms.
    pub hold_ms: u64,
    /// Deadline of one operation, ms.
    pub timeout_ms: u64,
    /// Largest p99 latency of a clean step, ms (`signalling`: REGISTER or
    /// call setup; `calls`: one-way media latency).
    pub sla_p99_ms: f64,
    /// `calls`: largest media loss of a clean step (fraction).
    pub sla_max_loss: f64,
    /// Seconds per step (`signalling`: scheduling time; `calls`: measurement window).
    pub step_secs: f64,
    /// `calls`: warm-up seconds before each measurement.
    pub warmup_secs: f64,
    /// Steps: first, increment, last (ops/s for `signalling`, calls for `calls`).
    pub start: f64,
    /// Increment (0: one step).
    pub step: f64,
    /// Last.
    pub max: f64,
    /// `signalling`: operations per step instead of `step_secs` × rate.
    pub count: Option<u64>,
    /// `calls`: call directions (`both`, `browser`, `legacy`).
    pub direction: String,
    /// `calls`: the browsers' codec (`pcmu`, `opus`).
    pub codec: String,
    /// Generator cores.
    pub gen_cores: Vec<usize>,
    /// Hard limit of the run, s.
    pub max_secs: f64,
    /// Private network namespace.
    pub netns: bool,
    /// Online CPUs.
    pub machine_cpus: usize,
}

/// Latency figures of one kind of operation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpFigures {
    /// Started.
    pub attempted: u64,
    /// Succeeded.
    pub ok: u64,
    /// Failed, by cause (`503`, `timeout`, ...; prefixed by the request).
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Latency of the successful ones from their scheduled start, ms.
    pub latency: crate::stats::Percentiles,
}

/// One offered rate of a `signalling` run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateStepRecord {
    /// Offered operations per second.
    pub offered_rate: f64,
    /// Operations scheduled.
    pub scheduled: u64,
    /// Seconds over which they were scheduled.
    pub secs: f64,
    /// Successful operations per second (over the scheduling time plus the
    /// time the last one took).
    pub achieved_rate: f64,
    /// REGISTER (401 + authenticated retry) or call setup (INVITE, 407,
    /// INVITE, 1xx, 200) from the scheduled start to the final 200.
    pub primary: OpFigures,
    /// Calls: the BYE after the hold time (from its sending to its 200).
    pub bye: Option<OpFigures>,
    /// Calls: first 18x from the scheduled start.
    pub ringing: Option<crate::stats::Percentiles>,
    /// Lateness of the scheduler against the schedule, p99, ms.
    pub sched_late_p99_ms: f64,
    /// The target's CPU (`busy` from its cores; `process_cores` counts
    /// `strait` and its data plane).
    pub target_cpu: TargetCpuRecord,
    /// `strait` alone (the signalling), in cores.
    pub strait_cores: Option<f64>,
    /// This tool's CPU ÷ the cores it may use.
    pub gen_cpu: f64,
    /// Failures 0, p99 within the bound, generator not saturated.
    pub clean: bool,
    /// Why not.
    pub reason: String,
}

/// One load step of a `calls` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallStepRecord {
    /// Calls set up from browsers toward the legacy side (in total so far).
    pub browser_calls: u32,
    /// Calls set up from the legacy side toward browsers.
    pub legacy_calls: u32,
    /// Call setup (signalling) of this step's new calls, browser -> legacy.
    pub setup_from_browser: OpFigures,
    /// The same, legacy -> browser.
    pub setup_from_legacy: OpFigures,
    /// ICE + DTLS of the browser legs, from the 200 (or ACK) to the SRTP keys.
    pub media_setup: crate::stats::Percentiles,
    /// BYEs Strait sent browsers before the teardown (calls it ended), so far.
    pub ended_early: u64,
    /// The media measurement (`a_to_b` = browser -> legacy, `b_to_a` =
    /// legacy -> browser), with the generator's and target's CPU.
    pub media: StepRecord,
}

/// Formats a UNIX time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_string(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    // Civil-from-days (proleptic Gregorian), days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_strings() {
        assert_eq!(utc_string(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_string(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_string(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
