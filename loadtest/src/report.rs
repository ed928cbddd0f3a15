//! The HTML report: one self-contained page (inline SVG drawn here, no
//! scripts, no external resources) comparing any number of run records —
//! target CPU, p99 latency and generator CPU against concurrent calls, one
//! line per run on the same chart — plus the capacity figures and the
//! per-step tables.

use std::fmt::Write as _;

use crate::record::RunRecord;

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A "nice" tick step (1, 2 or 5 × 10^k) for about `n` ticks over `span`.
pub fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
    /// Points drawn hollow (e.g. steps that broke the service level).
    pub hollow: Vec<bool>,
}

/// An SVG line chart of `series` with an optional horizontal reference line.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
) -> String {
    let (w, h) = (640.0, 340.0);
    let (ml, mr, mt, mb) = (60.0, 20.0, 30.0, 70.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let x_max = xs.fold(0.0f64, f64::max).max(1.0);
    let y_max = ys
        .fold(0.0f64, f64::max)
        .max(hline.map_or(0.0, |(y, _)| y * 1.1))
        .max(1e-3);
    let xstep = nice_step(x_max, 6.0);
    let ystep = nice_step(y_max, 5.0);
    let x_top = (x_max / xstep).ceil() * xstep;
    let y_top = (y_max / ystep).ceil() * ystep;
    let px = |x: f64| ml + x / x_top * pw;
    let py = |y: f64| mt + ph - y / y_top * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    // Grid and ticks.
    let mut y = 0.0;
    while y <= y_top + ystep / 2.0 {
        let yy = py(y);
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            ml + pw,
            ml - 5.0,
            yy + 4.0,
            fmt_tick(y)
        );
        y += ystep;
    }
    let mut x = 0.0;
    while x <= x_top + xstep / 2.0 {
        let xx = px(x);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" y1="{mt}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            mt + ph,
            mt + ph + 15.0,
            fmt_tick(x)
        );
        x += xstep;
    }
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
        ml + pw / 2.0,
        mt + ph + 32.0,
        esc(x_label),
        mt + ph / 2.0,
        esc(y_label)
    );
    if let Some((yv, label)) = hline {
        let yy = py(yv);
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#c00" stroke-dasharray="6,4"/><text x="{:.1}" y="{:.1}" fill="#c00" text-anchor="end">{}</text>"##,
            ml + pw,
            ml + pw - 4.0,
            yy - 4.0,
            esc(label)
        );
    }
    for (i, se) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for (j, &(x, y)) in se.points.iter().enumerate() {
            let fill = if se.hollow.get(j).copied().unwrap_or(false) {
                "white"
            } else {
                color
            };
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{fill}" stroke="{color}"><title>{}: {} calls, {}</title></circle>"#,
                px(x),
                py(y),
                esc(&se.label),
                x,
                fmt_tick(y)
            );
        }
        // Legend below the plot.
        let lx = ml + (i % 3) as f64 * 190.0;
        let ly = mt + ph + 48.0 + (i / 3) as f64 * 14.0;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 4.0,
            lx + 16.0,
            esc(&se.label)
        );
    }
    s.push_str("</svg>");
    s
}

fn series_of(
    records: &[RunRecord],
    f: impl Fn(&crate::record::StepRecord) -> Option<f64>,
) -> Vec<Series> {
    records
        .iter()
        .map(|r| {
            let mut points = Vec::new();
            let mut hollow = Vec::new();
            for st in &r.steps {
                if let Some(y) = f(st) {
                    points.push((f64::from(st.calls), y));
                    hollow.push(!st.verdict.clean());
                }
            }
            Series {
                label: r.label.clone(),
                points,
                hollow,
            }
        })
        .collect()
}

/// The report page for `records`.
pub fn render(records: &[RunRecord]) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>strait-loadtest report</title><style>\
body{font-family:sans-serif;margin:24px;max-width:1400px}table{border-collapse:collapse;margin:8px 0 20px}\
td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;text-align:right}th{background:#f3f3f3}\
td.l,th.l{text-align:left}.bad{color:#b00}.warn{color:#a60}.charts{display:flex;flex-wrap:wrap;gap:12px}\
code{background:#f5f5f5;padding:1px 3px}</style></head><body>\n<h1>strait-loadtest report</h1>\n");
    let sla = records.first().map(|r| r.config.sla).unwrap_or_default();
    let _ = writeln!(
        h,
        "<p>Service level: loss &le; {:.3}% and p99 one-way latency &le; {} ms. Hollow points: steps that broke the service level or had a saturated generator (not clean).</p>",
        sla.max_loss * 100.0,
        sla.max_p99_ms
    );
    h.push_str("<h2>Capacity</h2>\n<table><tr><th class=l>run</th><th class=l>target</th><th class=l>scenario</th><th>capacity (calls/core)</th><th class=l>kind</th><th>last clean calls</th><th>target busy there</th><th>broke at</th><th class=l>note</th><th class=l>started</th></tr>\n");
    for r in records {
        let c = &r.capacity;
        let kind = format!("{:?}", c.kind).to_lowercase();
        let class = match c.kind {
            crate::ramp::CapacityKind::Measured => "",
            crate::ramp::CapacityKind::Extrapolated => " class=warn",
            crate::ramp::CapacityKind::None => " class=bad",
        };
        let _ = writeln!(
            h,
            "<tr><td class=l>{}</td><td class=l>{} {}</td><td class=l>{}</td><td{class}><b>{}</b></td><td class=l>{kind}</td><td>{}</td><td>{}</td><td>{}</td><td class=l>{}</td><td class=l>{}</td></tr>",
            esc(&r.label),
            esc(&r.target.kind),
            esc(r.target.version.as_deref().unwrap_or("")),
            esc(&r.scenario),
            c.calls_per_core.map_or("&mdash;".into(), |v| format!("{v:.0}")),
            c.last_clean_calls.map_or("&mdash;".into(), |v| v.to_string()),
            c.busy_at_last_clean.map_or("&mdash;".into(), |v| format!("{:.0}%", v * 100.0)),
            c.broke_at_calls.map_or("&mdash;".into(), |v| v.to_string()),
            esc(&c.note),
            esc(&r.started_utc),
        );
    }
    h.push_str("</table>\n<div class=charts>\n");
    h.push_str(&line_chart(
        "Target CPU (busy fraction of its cores)",
        "concurrent calls",
        "target core busy, %",
        &series_of(records, |s| s.target_cpu.busy.map(|b| b * 100.0)),
        None,
    ));
    h.push_str(&line_chart(
        "p99 one-way latency",
        "concurrent calls",
        "p99 latency, ms",
        &series_of(records, |s| Some(s.p99_ms)),
        Some((sla.max_p99_ms, "SLA")),
    ));
    h.push_str(&line_chart(
        "Loss (both directions)",
        "concurrent calls",
        "loss, %",
        &series_of(records, |s| Some(s.loss * 100.0)),
        Some((sla.max_loss * 100.0, "SLA")),
    ));
    h.push_str(&line_chart(
        "Generator CPU (fraction of its cores)",
        "concurrent calls",
        "generator CPU, %",
        &series_of(records, |s| Some(s.generator.cpu * 100.0)),
        Some((crate::ramp::SATURATED_CPU * 100.0, "saturated")),
    ));
    h.push_str("</div>\n");
    for r in records {
        let _ = writeln!(
            h,
            "<h2>{}</h2>\n<p>{} &mdash; target <code>{}</code> {} at {} on cores {:?} (pid {}); generator {} thread(s) on cores {:?}; {} s per step after {} s warm-up; netns {}; stop: {:?}{}</p>",
            esc(&r.label),
            esc(&r.summary),
            esc(&r.target.kind),
            esc(r.target.version.as_deref().unwrap_or("")),
            esc(&r.target.ng),
            r.target.cores,
            r.target.pid.map_or("?".into(), |p| p.to_string()),
            r.config.gen_threads,
            r.config.gen_cores,
            r.config.step_secs,
            r.config.warmup_secs,
            r.config.netns,
            r.stop,
            r.error.as_deref().map_or(String::new(), |e| format!("; <span class=bad>error: {}</span>", esc(e))),
        );
        h.push_str("<table><tr><th>calls</th><th>pkt/s</th><th>loss A&rarr;B</th><th>loss B&rarr;A</th><th>dup</th><th>reord</th><th>errors</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>jitter p99 ms</th><th>target busy</th><th>target proc</th><th>gen CPU</th><th>gen late p99 ms</th><th class=l>verdict</th></tr>\n");
        for s in &r.steps {
            let max = s.a_to_b.latency.max_ms.max(s.b_to_a.latency.max_ms);
            let verdict = match (s.verdict.sla_ok, s.verdict.gen_saturated) {
                (true, false) => "clean".to_string(),
                (ok, sat) => {
                    let mut v = Vec::new();
                    if !ok {
                        v.push(format!("SLA broken: {}", s.verdict.sla_reason));
                    }
                    if sat {
                        v.push(format!("generator saturated: {}", s.verdict.gen_reason));
                    }
                    v.join("; ")
                }
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{:.0}</td><td>{:.4}%</td><td>{:.4}%</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{:.0}%</td><td>{:.2}</td><td class=l>{}</td></tr>",
                s.calls,
                s.offered_pps,
                s.a_to_b.loss * 100.0,
                s.b_to_a.loss * 100.0,
                s.a_to_b.duplicates + s.b_to_a.duplicates,
                s.a_to_b.reordered + s.b_to_a.reordered,
                s.a_to_b.errors + s.b_to_a.errors,
                s.p50_ms,
                s.p99_ms,
                max,
                s.jitter_p99_ms,
                s.target_cpu.busy.map_or("?".into(), |b| format!("{:.0}%", b * 100.0)),
                s.target_cpu.process_cores.map_or("?".into(), |b| format!("{:.0}%", b * 100.0)),
                s.generator.cpu * 100.0,
                s.generator.late_p99_ms,
                esc(&verdict),
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<p>Generated by strait-loadtest. Latency is one-way, generator clock on both ends (same host). \
Capacity per core: measured = last clean load when the target broke the service level with an unsaturated generator; \
extrapolated = highest clean load &divide; target core busy fraction there.</p>\n</body></html>\n");
    h
}

/// The report page for media runs `records` and SIP scenario runs `sip`
/// (Strait's `signalling` and `calls`: their own tables, after the media runs).
pub fn render_all(records: &[RunRecord], sip: &[crate::record::SipRunRecord]) -> String {
    let page = render(records);
    if sip.is_empty() {
        return page;
    }
    let mut h = String::from("<h2>SIP scenarios (Strait)</h2>\n");
    for r in sip {
        let _ = writeln!(
            h,
            "<h3>{}</h3>\n<p>{} &mdash; <code>strait-loadtest {}</code>; target <code>strait</code> on cores {:?}; {} connections; stop: {}{}</p>",
            esc(&r.label),
            esc(&r.summary),
            esc(&r.command),
            r.target.cores,
            r.config.connections,
            esc(&r.stop),
            r.error.as_deref().map_or(String::new(), |e| format!("; <span class=bad>error: {}</span>", esc(e))),
        );
        if !r.rate_steps.is_empty() {
            h.push_str("<table><tr><th>offered /s</th><th>achieved /s</th><th>ok</th><th class=l>failures</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>BYE p99 ms</th><th>strait CPU</th><th>with data plane</th><th>target cores busy</th><th>gen CPU</th><th>sched late p99 ms</th><th class=l>verdict</th></tr>\n");
            for s in &r.rate_steps {
                let failures: Vec<String> = s
                    .primary
                    .failures
                    .iter()
                    .chain(s.bye.iter().flat_map(|b| b.failures.iter()))
                    .map(|(k, v)| format!("{} &times; {v}", esc(k)))
                    .collect();
                let pc = |x: Option<f64>| {
                    x.map_or("&mdash;".to_string(), |v| format!("{:.0}%", v * 100.0))
                };
                let _ = writeln!(
                    h,
                    "<tr><td>{:.0}</td><td>{:.1}</td><td>{}</td><td class=l>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}%</td><td>{:.1}</td><td class=l{}>{}</td></tr>",
                    s.offered_rate,
                    s.achieved_rate,
                    s.primary.ok,
                    if failures.is_empty() { "0".to_string() } else { failures.join(", ") },
                    s.primary.latency.p50_ms,
                    s.primary.latency.p99_ms,
                    s.primary.latency.max_ms,
                    s.bye.as_ref().map_or("&mdash;".to_string(), |b| format!("{:.1}", b.latency.p99_ms)),
                    pc(s.strait_cores),
                    pc(s.target_cpu.process_cores),
                    pc(s.target_cpu.busy),
                    s.gen_cpu * 100.0,
                    s.sched_late_p99_ms,
                    if s.clean { "" } else { " class=bad" },
                    if s.clean { "clean".to_string() } else { esc(&s.reason) },
                );
            }
            h.push_str("</table>\n");
        }
        if !r.call_steps.is_empty() {
            h.push_str("<table><tr><th>calls</th><th>from browsers</th><th>from legacy</th><th>setup failures</th><th>setup p99 ms (b&rarr;l / l&rarr;b)</th><th>ICE+DTLS p99 ms</th><th>loss b&rarr;l</th><th>loss l&rarr;b</th><th>p99 ms b&rarr;l</th><th>p99 ms l&rarr;b</th><th>target busy</th><th>gen CPU</th><th class=l>verdict</th></tr>\n");
            for s in &r.call_steps {
                let m = &s.media;
                let failed = s.setup_from_browser.failures.values().sum::<u64>()
                    + s.setup_from_legacy.failures.values().sum::<u64>();
                let verdict = if m.verdict.clean() && failed == 0 {
                    "clean".to_string()
                } else {
                    let mut v = Vec::new();
                    if failed > 0 {
                        v.push(format!("{failed} setups failed"));
                    }
                    if !m.verdict.sla_ok {
                        v.push(m.verdict.sla_reason.clone());
                    }
                    if m.verdict.gen_saturated {
                        v.push(format!("generator saturated: {}", m.verdict.gen_reason));
                    }
                    v.join("; ")
                };
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{failed}</td><td>{:.0} / {:.0}</td><td>{:.0}</td><td>{:.3}%</td><td>{:.3}%</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{:.0}%</td><td class=l>{}</td></tr>",
                    m.calls,
                    s.browser_calls,
                    s.legacy_calls,
                    s.setup_from_browser.latency.p99_ms,
                    s.setup_from_legacy.latency.p99_ms,
                    s.media_setup.p99_ms,
                    m.a_to_b.loss * 100.0,
                    m.b_to_a.loss * 100.0,
                    m.a_to_b.latency.p99_ms,
                    m.b_to_a.latency.p99_ms,
                    m.target_cpu.busy.map_or("&mdash;".into(), |b| format!("{:.0}%", b * 100.0)),
                    m.generator.cpu * 100.0,
                    esc(&verdict),
                );
            }
            h.push_str("</table>\n");
        }
    }
    match page.rfind("</body>") {
        Some(i) => format!("{}{h}{}", &page[..i], &page[i..]),
        None => page + &h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ramp::{self, RampPlan, Sla, StepVerdict, StopReason};
    use crate::record::*;
    use crate::stats::DirSummary;

    fn record(label: &str, busy: &[f64], p99: &[f64]) -> RunRecord {
        let steps: Vec<StepRecord> = busy
            .iter()
            .zip(p99)
            .enumerate()
            .map(|(i, (&b, &p))| StepRecord {
                calls: 250 * (i as u32 + 1),
                secs: 5.0,
                offered_pps: 25_000.0 * (i as f64 + 1.0),
                setup_secs: 0.1,
                a_to_b: DirSummary::default(),
                b_to_a: DirSummary::default(),
                loss: 0.0,
                p50_ms: p / 3.0,
                p99_ms: p,
                jitter_p99_ms: 0.1,
                seq_mapping: None,
                generator: GenRecord {
                    cpu: 0.3,
                    ..Default::default()
                },
                target_cpu: TargetCpuRecord {
                    busy: Some(b),
                    busy_source: "core".into(),
                    core_busy_mean: Some(b),
                    core_busy: vec![b],
                    process_cores: Some(b * 0.9),
                },
                verdict: ramp::judge(
                    &ramp::StepFigures {
                        calls: 0,
                        loss: 0.0,
                        p99_ms: p,
                        gen_cpu: 0.3,
                        gen_late_p99_ms: 0.1,
                        target_busy: Some(b),
                    },
                    &Sla::default(),
                ),
            })
            .collect();
        RunRecord {
            tool: "strait-loadtest test".into(),
            started_utc: "2026-01-01T00:00:00Z".into(),
            label: label.into(),
            target: TargetRecord {
                kind: "rtpengine".into(),
                version: Some("10.5".into()),
                ng: "127.0.0.1:2223".into(),
                pid: Some(1),
                cores: vec![1],
            },
            scenario: "plain".into(),
            config: ConfigRecord {
                gen_threads: 1,
                gen_cores: vec![0],
                plan: RampPlan {
                    start: 250,
                    step: 250,
                    max: 1000,
                },
                step_secs: 5.0,
                warmup_secs: 4.0,
                drain_ms: 500,
                max_secs: 180.0,
                busy_source: "core".into(),
                sla: Sla::default(),
                netns: true,
                machine_cpus: 2,
            },
            baseline_core_busy: vec![(0, 0.01), (1, 0.0)],
            steps,
            stop: StopReason::SlaBroken,
            capacity: ramp::Capacity {
                kind: ramp::CapacityKind::Measured,
                calls_per_core: Some(500.0),
                last_clean_calls: Some(500),
                busy_at_last_clean: Some(0.6),
                broke_at_calls: Some(750),
                note: "measured <test>".into(),
            },
            error: None,
            summary: "summary & more".into(),
            elapsed_secs: 30.0,
            first_call: None,
        }
    }

    #[test]
    fn renders_two_runs_on_the_same_charts() {
        let a = record("rtpengine plain", &[0.3, 0.6, 0.9], &[0.5, 1.0, 9.0]);
        let b = record(
            "strait <plain>",
            &[0.1, 0.2, 0.3, 0.4],
            &[0.2, 0.2, 0.3, 0.3],
        );
        // Through JSON, as the `report` command reads them.
        let a: RunRecord = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        let html = render(&[a, b]);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(
            !html.contains("https://") && !html.contains(" src="),
            "self-contained"
        );
        assert_eq!(html.matches("<svg").count(), 4);
        // Each chart has one polyline per run.
        assert_eq!(html.matches("<polyline").count(), 8);
        // Labels escaped, both present.
        assert!(html.contains("strait &lt;plain&gt;"));
        assert!(html.contains("rtpengine plain"));
        assert!(html.contains("measured &lt;test&gt;"));
        assert!(html.contains("summary &amp; more"));
        // The broken step is drawn hollow and listed as broken.
        assert!(html.contains("fill=\"white\""));
        assert!(html.contains("SLA broken: p99 9.00 ms"));
        // 3 + 4 step rows.
        assert_eq!(html.matches("<tr><td>").count(), 7);
    }

    #[test]
    fn renders_sip_runs_after_the_media_runs() {
        let media = record("media", &[0.2], &[1.0]);
        let mut rate = RateStepRecord {
            offered_rate: 200.0,
            scheduled: 2000,
            achieved_rate: 199.5,
            clean: false,
            reason: "3 failed <x>".into(),
            ..RateStepRecord::default()
        };
        rate.primary.ok = 1997;
        rate.primary.failures.insert("REGISTER 503".into(), 3);
        let call = CallStepRecord {
            browser_calls: 5,
            legacy_calls: 5,
            setup_from_browser: OpFigures::default(),
            setup_from_legacy: OpFigures::default(),
            media_setup: crate::stats::Percentiles::default(),
            ended_early: 0,
            media: media.steps[0].clone(),
        };
        let sip = SipRunRecord {
            tool: "t".into(),
            started_utc: "2026-01-01T00:00:00Z".into(),
            label: "strait signalling".into(),
            scenario: "signalling-register".into(),
            target: media.target.clone(),
            command: "signalling --op register --rate 200".into(),
            config: SipConfigRecord::default(),
            baseline_core_busy: Vec::new(),
            rate_steps: vec![rate],
            call_steps: vec![call],
            stop: "sla_broken".into(),
            sustained_rate: None,
            max_clean_calls: None,
            error: None,
            summary: "sum".into(),
            elapsed_secs: 1.0,
        };
        // The record survives JSON, and is not mistaken for a media record.
        let json = serde_json::to_string(&sip).unwrap();
        let back: SipRunRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.rate_steps[0].primary.failures["REGISTER 503"], 3);
        assert!(serde_json::from_str::<RunRecord>(&json).is_err());
        let html = render_all(std::slice::from_ref(&media), &[sip]);
        assert!(html.contains("SIP scenarios (Strait)"));
        assert!(html.contains("REGISTER 503 &times; 3"));
        assert!(html.contains("3 failed &lt;x&gt;"));
        assert!(html.contains("strait-loadtest signalling --op register --rate 200"));
        assert!(html.find("SIP scenarios").unwrap() > html.find("media").unwrap());
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(
            render_all(std::slice::from_ref(&media), &[]),
            render(&[media])
        );
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.9, 5.0), 0.2);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }

    #[test]
    fn chart_handles_empty_series() {
        let svg = line_chart(
            "t",
            "x",
            "y",
            &[Series {
                label: "none".into(),
                points: vec![],
                hollow: vec![],
            }],
            None,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let _ = StepVerdict::clean;
    }
}
