//! The JSON record of one run (one file per run in `--out`), read back by
//! the HTML report.

use serde::{Deserialize, Serialize};

use crate::ramp::{Capacity, RampPlan, Sla, StepVerdict, StopReason};
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
    /// `plain`, `srtp` or `transcode`.
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
}

/// The target of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetRecord {
    /// `rtpengine` (started by the tool), `ng` (external), later `strait`.
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
