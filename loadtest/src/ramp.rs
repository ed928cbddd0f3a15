//! Ramp decisions and the capacity figure, sans-IO: the runtime feeds the
//! measured figures of each step and gets back what to do next; at the end
//! [`capacity`] turns the steps into the published figure.
//!
//! Rules:
//! - A step *breaks* the service level when its loss is above
//!   [`Sla::max_loss`] or its p99 one-way latency above [`Sla::max_p99_ms`].
//! - The generator is *saturated* in a step when its threads used more than
//!   [`SATURATED_CPU`] of their cores or its sends were late by more than
//!   [`SATURATED_LATE_MS`] at p99. A saturated step is never "clean": the
//!   figures may describe the generator, not the target.
//! - The ramp stops at the first step that breaks or saturates, or when the
//!   next step would exceed `max` (or the time budget, decided by the caller).
//! - Capacity is *measured* when a step broke the service level with an
//!   unsaturated generator: the last clean step. Otherwise (the generator
//!   could not push the target to its break point) it is *extrapolated*:
//!   the highest clean load ÷ the target cores' busy fraction there, shown
//!   beside that busy fraction. With no clean step, or a busy fraction too
//!   small to extrapolate from, no figure is published.

use serde::{Deserialize, Serialize};

/// Generator CPU above which it counts as saturated (fraction of its cores).
pub const SATURATED_CPU: f64 = 0.90;
/// p99 send lateness above which the generator counts as saturated, ms.
pub const SATURATED_LATE_MS: f64 = 5.0;
/// Below this target busy fraction an extrapolation is refused.
pub const MIN_BUSY_TO_EXTRAPOLATE: f64 = 0.05;

/// The service level a step must hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sla {
    /// Largest acceptable loss fraction (default 0.001 = 0.1 %).
    pub max_loss: f64,
    /// Largest acceptable p99 one-way latency, ms (default 5).
    pub max_p99_ms: f64,
}

impl Default for Sla {
    fn default() -> Self {
        Self {
            max_loss: 0.001,
            max_p99_ms: 5.0,
        }
    }
}

/// The ramp's load steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RampPlan {
    /// Concurrent calls of the first step.
    pub start: u32,
    /// Calls added per step (0: a single step).
    pub step: u32,
    /// Largest number of calls.
    pub max: u32,
}

impl RampPlan {
    /// The number of steps the plan has at most.
    pub fn steps(&self) -> u32 {
        if self.step == 0 || self.max <= self.start {
            1
        } else {
            (self.max - self.start) / self.step + 1
        }
    }
}

/// What the ramp needs to know about one finished step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFigures {
    /// Concurrent calls.
    pub calls: u32,
    /// Loss fraction over both directions.
    pub loss: f64,
    /// p99 one-way latency over both directions, ms.
    pub p99_ms: f64,
    /// Generator threads' CPU as a fraction of their cores.
    pub gen_cpu: f64,
    /// p99 lateness of the generator's sends, ms.
    pub gen_late_p99_ms: f64,
    /// Mean busy fraction of the target's cores (None when unknown).
    pub target_busy: Option<f64>,
}

/// The verdict on one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepVerdict {
    /// The service level held.
    pub sla_ok: bool,
    /// Why it did not (empty when it held).
    pub sla_reason: String,
    /// The generator was saturated.
    pub gen_saturated: bool,
    /// Why (empty when it was not).
    pub gen_reason: String,
}

impl StepVerdict {
    /// A step that held the service level with an unsaturated generator.
    pub fn clean(&self) -> bool {
        self.sla_ok && !self.gen_saturated
    }
}

/// Judges one step.
pub fn judge(f: &StepFigures, sla: &Sla) -> StepVerdict {
    let mut sla_reason = Vec::new();
    if f.loss > sla.max_loss {
        sla_reason.push(format!(
            "loss {:.3}% > {:.3}%",
            f.loss * 100.0,
            sla.max_loss * 100.0
        ));
    }
    if f.p99_ms > sla.max_p99_ms {
        sla_reason.push(format!("p99 {:.2} ms > {:.2} ms", f.p99_ms, sla.max_p99_ms));
    }
    let mut gen_reason = Vec::new();
    if f.gen_cpu > SATURATED_CPU {
        gen_reason.push(format!(
            "generator CPU {:.0}% > {:.0}% of its cores",
            f.gen_cpu * 100.0,
            SATURATED_CPU * 100.0
        ));
    }
    if f.gen_late_p99_ms > SATURATED_LATE_MS {
        gen_reason.push(format!(
            "sends late by {:.2} ms at p99 > {:.0} ms",
            f.gen_late_p99_ms, SATURATED_LATE_MS
        ));
    }
    StepVerdict {
        sla_ok: sla_reason.is_empty(),
        sla_reason: sla_reason.join(", "),
        gen_saturated: !gen_reason.is_empty(),
        gen_reason: gen_reason.join(", "),
    }
}

/// Why the ramp stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A step broke the service level.
    SlaBroken,
    /// The generator saturated (without the service level breaking).
    GeneratorSaturated,
    /// The plan's last step was done.
    MaxReached,
    /// The time budget did not allow another step.
    TimeLimit,
    /// Setting up calls or traffic failed.
    Error,
}

/// What to do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the next step with this many calls.
    Next(u32),
    /// Stop.
    Stop(StopReason),
}

/// Decides what follows a step with `verdict` at `calls` under `plan`.
pub fn next_step(plan: &RampPlan, calls: u32, verdict: &StepVerdict) -> Decision {
    if !verdict.sla_ok {
        return Decision::Stop(StopReason::SlaBroken);
    }
    if verdict.gen_saturated {
        return Decision::Stop(StopReason::GeneratorSaturated);
    }
    match calls.checked_add(plan.step) {
        Some(n) if plan.step > 0 && n <= plan.max => Decision::Next(n),
        _ => Decision::Stop(StopReason::MaxReached),
    }
}

/// How the capacity figure was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityKind {
    /// The target broke the service level: last clean load, measured.
    Measured,
    /// Highest clean load ÷ target busy fraction.
    Extrapolated,
    /// No figure published.
    None,
}

/// The published capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// How it was obtained.
    pub kind: CapacityKind,
    /// Concurrent calls per target core (None when not published).
    pub calls_per_core: Option<f64>,
    /// The highest clean load (calls), if any.
    pub last_clean_calls: Option<u32>,
    /// The target cores' mean busy fraction at that load.
    pub busy_at_last_clean: Option<f64>,
    /// The load that broke the service level, if any.
    pub broke_at_calls: Option<u32>,
    /// Explanation in words.
    pub note: String,
}

/// The capacity figure from the steps (in order) and why the ramp stopped;
/// `target_cores` is the number of cores the target was pinned to (None
/// if unknown: then only an extrapolation via busy fraction can give a
/// per-core figure).
pub fn capacity(
    steps: &[(StepFigures, StepVerdict)],
    stop: StopReason,
    target_cores: Option<usize>,
) -> Capacity {
    let last_clean = steps.iter().rev().find(|(_, v)| v.clean());
    let broke = steps.iter().find(|(_, v)| !v.sla_ok);
    let mut c = Capacity {
        kind: CapacityKind::None,
        calls_per_core: None,
        last_clean_calls: last_clean.map(|(f, _)| f.calls),
        busy_at_last_clean: last_clean.and_then(|(f, _)| f.target_busy),
        broke_at_calls: broke.map(|(f, _)| f.calls),
        note: String::new(),
    };
    let Some((clean, _)) = last_clean else {
        c.note = match steps.first() {
            None => "no step completed".into(),
            Some((f, v)) if v.gen_saturated => format!(
                "no capacity published: the generator was saturated already at {} calls ({})",
                f.calls, v.gen_reason
            ),
            Some((f, v)) => format!(
                "no capacity published: the first step ({} calls) already broke the service level ({})",
                f.calls, v.sla_reason
            ),
        };
        return c;
    };
    if let (StopReason::SlaBroken, Some((bf, bv))) = (stop, broke) {
        if !bv.gen_saturated {
            c.kind = CapacityKind::Measured;
            c.calls_per_core = target_cores
                .filter(|&n| n > 0)
                .map(|n| f64::from(clean.calls) / n as f64);
            c.note = format!(
                "measured: {} calls held, {} calls broke the service level ({})",
                clean.calls, bf.calls, bv.sla_reason
            );
            if c.calls_per_core.is_none() {
                c.note
                    .push_str("; target cores unknown, no per-core figure");
            }
            return c;
        }
    }
    let why = match (stop, broke) {
        (StopReason::SlaBroken, Some((bf, bv))) => format!(
            "the break at {} calls ({}) came with a saturated generator ({}), so it is not the target's",
            bf.calls, bv.sla_reason, bv.gen_reason
        ),
        (StopReason::GeneratorSaturated, _) => {
            let (sf, sv) = steps
                .iter()
                .rev()
                .find(|(_, v)| v.gen_saturated)
                .unwrap_or(&steps[steps.len() - 1]);
            format!(
                "the generator saturated at {} calls ({}) before the target broke",
                sf.calls, sv.gen_reason
            )
        }
        (StopReason::MaxReached, _) => "the ramp reached --max without a break".into(),
        (StopReason::TimeLimit, _) => "the time limit ended the ramp before a break".into(),
        _ => "the ramp ended before a break".into(),
    };
    match clean.target_busy {
        Some(b) if b >= MIN_BUSY_TO_EXTRAPOLATE => {
            c.kind = CapacityKind::Extrapolated;
            c.calls_per_core = Some(f64::from(clean.calls) / b);
            c.note = format!(
                "extrapolated: {} calls at {:.0}% target core busy -> {:.0} calls per core; {}",
                clean.calls,
                b * 100.0,
                f64::from(clean.calls) / b,
                why
            );
        }
        Some(b) => {
            c.note = format!(
                "no capacity published: target core only {:.1}% busy at {} calls, too little to extrapolate; {}",
                b * 100.0,
                clean.calls,
                why
            );
        }
        None => {
            c.note = format!(
                "no capacity published: target CPU unknown (give --target-pid/--target-cores); {why}"
            );
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(calls: u32, loss: f64, p99: f64, gen: f64, busy: f64) -> StepFigures {
        StepFigures {
            calls,
            loss,
            p99_ms: p99,
            gen_cpu: gen,
            gen_late_p99_ms: 0.1,
            target_busy: Some(busy),
        }
    }

    fn run(plan: RampPlan, figs: &[StepFigures]) -> (Vec<(StepFigures, StepVerdict)>, StopReason) {
        let sla = Sla::default();
        let mut steps = Vec::new();
        let mut calls = plan.start;
        for f in figs {
            assert_eq!(f.calls, calls, "ramp asked for another load");
            let v = judge(f, &sla);
            steps.push((*f, v.clone()));
            match next_step(&plan, calls, &v) {
                Decision::Next(n) => calls = n,
                Decision::Stop(r) => return (steps, r),
            }
        }
        panic!("ramp did not stop");
    }

    const PLAN: RampPlan = RampPlan {
        start: 100,
        step: 100,
        max: 500,
    };

    #[test]
    fn judge_applies_thresholds() {
        let sla = Sla::default();
        assert!(judge(&fig(1, 0.001, 5.0, 0.9, 0.5), &sla).clean());
        let v = judge(&fig(1, 0.0011, 1.0, 0.1, 0.5), &sla);
        assert!(!v.sla_ok && v.sla_reason.contains("loss"));
        let v = judge(&fig(1, 0.0, 5.01, 0.1, 0.5), &sla);
        assert!(!v.sla_ok && v.sla_reason.contains("p99"));
        let v = judge(&fig(1, 0.0, 1.0, 0.91, 0.5), &sla);
        assert!(v.sla_ok && v.gen_saturated && !v.clean());
        let mut late = fig(1, 0.0, 1.0, 0.1, 0.5);
        late.gen_late_p99_ms = 5.5;
        assert!(judge(&late, &sla).gen_saturated);
        assert_eq!(PLAN.steps(), 5);
        assert_eq!(
            RampPlan {
                start: 10,
                step: 0,
                max: 10
            }
            .steps(),
            1
        );
    }

    #[test]
    fn measured_when_target_breaks() {
        let (steps, stop) = run(
            PLAN,
            &[
                fig(100, 0.0, 0.5, 0.3, 0.2),
                fig(200, 0.0, 1.0, 0.4, 0.4),
                fig(300, 0.0, 9.0, 0.5, 0.9),
            ],
        );
        assert_eq!(stop, StopReason::SlaBroken);
        let c = capacity(&steps, stop, Some(1));
        assert_eq!(c.kind, CapacityKind::Measured);
        assert_eq!(c.calls_per_core, Some(200.0));
        assert_eq!(
            (c.last_clean_calls, c.broke_at_calls),
            (Some(200), Some(300))
        );
        let two = capacity(&steps, stop, Some(2));
        assert_eq!(two.calls_per_core, Some(100.0));
    }

    #[test]
    fn extrapolated_when_generator_saturates() {
        let (steps, stop) = run(
            PLAN,
            &[
                fig(100, 0.0, 0.5, 0.5, 0.2),
                fig(200, 0.0, 1.0, 0.8, 0.4),
                fig(300, 0.0, 1.0, 0.95, 0.55),
            ],
        );
        assert_eq!(stop, StopReason::GeneratorSaturated);
        let c = capacity(&steps, stop, Some(1));
        assert_eq!(c.kind, CapacityKind::Extrapolated);
        assert_eq!(c.last_clean_calls, Some(200));
        assert_eq!(c.busy_at_last_clean, Some(0.4));
        assert_eq!(c.calls_per_core, Some(500.0));
        assert!(c.note.contains("extrapolated") && c.note.contains("saturated at 300"));
    }

    #[test]
    fn break_with_saturated_generator_is_not_measured() {
        let (steps, stop) = run(
            PLAN,
            &[
                fig(100, 0.0, 0.5, 0.5, 0.25),
                fig(200, 0.01, 1.0, 0.97, 0.5),
            ],
        );
        assert_eq!(stop, StopReason::SlaBroken);
        let c = capacity(&steps, stop, Some(1));
        assert_eq!(c.kind, CapacityKind::Extrapolated);
        assert_eq!(c.calls_per_core, Some(400.0));
        assert!(c.note.contains("saturated generator"));
    }

    #[test]
    fn max_reached_extrapolates_and_idle_target_refuses() {
        let figs: Vec<_> = (1..=5)
            .map(|i| fig(i * 100, 0.0, 0.2, 0.2, 0.1 * f64::from(i)))
            .collect();
        let (steps, stop) = run(PLAN, &figs);
        assert_eq!(stop, StopReason::MaxReached);
        let c = capacity(&steps, stop, Some(1));
        assert_eq!(c.kind, CapacityKind::Extrapolated);
        assert_eq!(c.calls_per_core, Some(1000.0));

        let (steps, stop) = run(
            RampPlan {
                start: 10,
                step: 0,
                max: 10,
            },
            &[fig(10, 0.0, 0.2, 0.1, 0.01)],
        );
        assert_eq!(stop, StopReason::MaxReached);
        let c = capacity(&steps, stop, Some(1));
        assert_eq!(c.kind, CapacityKind::None);
        assert!(c.note.contains("too little"));
    }

    #[test]
    fn nothing_clean_publishes_nothing() {
        let (steps, stop) = run(PLAN, &[fig(100, 0.5, 0.5, 0.2, 0.9)]);
        let c = capacity(&steps, stop, Some(1));
        assert_eq!(c.kind, CapacityKind::None);
        assert_eq!(c.calls_per_core, None);
        assert!(c.note.contains("first step"));
        let (steps, stop) = run(PLAN, &[fig(100, 0.0, 0.5, 0.99, 0.9)]);
        assert_eq!(stop, StopReason::GeneratorSaturated);
        let c = capacity(&steps, stop, Some(1));
        assert_eq!(c.kind, CapacityKind::None);
        assert!(c.note.contains("saturated already"));
        assert_eq!(
            capacity(&[], StopReason::Error, None).kind,
            CapacityKind::None
        );
    }
}
