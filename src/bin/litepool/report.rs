//! `litepool bench --report FILE.html`: one self-contained page (inline SVG and CSS, no script,
//! nothing fetched) with a bar chart of ops/s (each workload on its own scale) and a chart of
//! p50/p99 latency (logarithmic axis) per workload × profile, the table, the machine, the exact command and the configuration used.
//!
//! Written by hand: a few dozen lines of SVG rectangles; a charting crate would bring a font
//! stack or JavaScript for what this page needs.

use std::fmt::Write as _;

use crate::userbench::{Report, Row};

/// Text for HTML (and SVG) content and attributes.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const COLORS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
];

/// How a chart turns values into bar lengths.
#[derive(Clone, Copy, PartialEq)]
pub enum Scale {
    /// Linear, each group (workload) on its own scale from 0 to its largest value: a slow
    /// workload's bars are as readable as a fast one's. The group's heading says its scale.
    PerGroup,
    /// Logarithmic over all groups, with a line at every power of ten: latencies span orders
    /// of magnitude.
    Log,
}

/// The powers of ten that bound `lo..=hi` (both > 0).
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// A horizontal bar chart: one group per workload, one bar per series (profile, or measure),
/// values labelled. `id` names the chart for tests and readers. `per_color` bars in a row share a
/// color (a profile's p50 and p99); the later ones are lighter.
pub fn bars(
    id: &str,
    title: &str,
    unit: &str,
    groups: &[(String, Vec<(String, f64)>)],
    per_color: usize,
    scale: Scale,
) -> String {
    let bar_h = 16.0;
    let label_w = 330.0;
    let plot_w = 420.0;
    let values = || groups.iter().flat_map(|(_, s)| s.iter().map(|(_, v)| *v));
    let positive = || values().filter(|v| *v > 0.0);
    let (lo, hi) = decades(
        positive().fold(f64::INFINITY, f64::min).min(1e300),
        positive().fold(0.0f64, f64::max).max(f64::MIN_POSITIVE),
    );
    let mut y = 40.0;
    let mut body = String::new();
    if scale == Scale::Log {
        let mut tick = lo;
        while tick <= hi * 1.000_001 {
            let x = label_w + plot_w * (tick / lo).log10() / (hi / lo).log10();
            let _ = writeln!(
                body,
                r##"<line class="tick" x1="{x:.1}" y1="26" x2="{x:.1}" y2="{{height}}" stroke="#ccc"/><text x="{x:.1}" y="36" class="tick" text-anchor="middle">{} {unit}</text>"##,
                fmt_value(tick)
            );
            tick *= 10.0;
        }
        y += 4.0;
    }
    for (group, series) in groups {
        let group_max = series
            .iter()
            .map(|(_, v)| *v)
            .fold(0.0f64, f64::max)
            .max(f64::MIN_POSITIVE);
        let heading = match scale {
            Scale::PerGroup if series.iter().all(|(_, v)| *v <= 0.0) => {
                format!("{} (no operation completed)", esc(group))
            }
            Scale::PerGroup => format!(
                "{} (scale 0 to {} {unit})",
                esc(group),
                fmt_value(group_max)
            ),
            Scale::Log => esc(group),
        };
        let _ = writeln!(
            body,
            r#"<text x="4" y="{}" class="group">{heading}</text>"#,
            y + 12.0,
        );
        y += 18.0;
        for (i, (name, v)) in series.iter().enumerate() {
            let w = match scale {
                Scale::PerGroup => v / group_max * plot_w,
                Scale::Log if *v > 0.0 => plot_w * (v / lo).log10() / (hi / lo).log10(),
                Scale::Log => 0.0,
            }
            .max(1.0);
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.0}" class="label" text-anchor="end">{}</text><rect class="bar" data-group="{}" data-series="{}" data-value="{v}" x="{label_w}" y="{y:.0}" width="{w:.1}" height="{bar_h}" fill="{}" fill-opacity="{}"/><text x="{:.1}" y="{:.0}" class="value">{} {unit}</text>"#,
                label_w - 6.0,
                y + 12.0,
                esc(name),
                esc(group),
                esc(name),
                COLORS[(i / per_color) % COLORS.len()],
                if i % per_color == 0 { "1" } else { "0.55" },
                label_w + w + 4.0,
                y + 12.0,
                fmt_value(*v)
            );
            y += bar_h + 3.0;
        }
        y += 8.0;
    }
    let body = body.replace("{height}", &format!("{:.0}", y));
    format!(
        r#"<svg id="{id}" class="chart" data-scale="{}" xmlns="http://www.w3.org/2000/svg" width="{}" height="{:.0}" viewBox="0 0 {} {:.0}" role="img" aria-label="{}"><text x="4" y="18" class="title">{}</text>
{body}</svg>"#,
        match scale {
            Scale::PerGroup => "per-workload",
            Scale::Log => "log",
        },
        label_w + plot_w + 120.0,
        y + 4.0,
        label_w + plot_w + 120.0,
        y + 4.0,
        esc(title),
        esc(title)
    )
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A latency of `r` in µs for the table, or `-` when no operation completed.
fn micros(r: &Row, d: std::time::Duration) -> String {
    if r.ops == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}", d.as_secs_f64() * 1e6)
    }
}

fn workloads(report: &Report) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in &report.results {
        if !names.contains(&r.workload) {
            names.push(r.workload.clone());
        }
    }
    names
}

fn rows_of<'a>(report: &'a Report, workload: &str) -> Vec<&'a Row> {
    report
        .results
        .iter()
        .filter(|r| r.workload == workload)
        .collect()
}

/// The page.
pub fn html(report: &Report, config_text: &str) -> String {
    let names = workloads(report);
    let ops: Vec<(String, Vec<(String, f64)>)> = names
        .iter()
        .map(|w| {
            let series = rows_of(report, w)
                .into_iter()
                .map(|r| (r.profile.clone(), r.ops_per_sec))
                .collect();
            (w.clone(), series)
        })
        .collect();
    let latency: Vec<(String, Vec<(String, f64)>)> = names
        .iter()
        .map(|w| {
            // A run with no completed operation has no latency to draw.
            let series = rows_of(report, w)
                .into_iter()
                .filter(|r| r.ops > 0)
                .flat_map(|r| {
                    [
                        (
                            format!("{} p50", r.profile),
                            r.latency.p50.as_secs_f64() * 1e6,
                        ),
                        (
                            format!("{} p99", r.profile),
                            r.latency.p99.as_secs_f64() * 1e6,
                        ),
                    ]
                })
                .collect();
            (w.clone(), series)
        })
        .collect();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "<table id=\"results\"><tr><th>workload</th><th>profile</th><th>threads</th><th>ops/s</th><th>p50 µs</th><th>p99 µs</th><th>max µs</th><th>busy</th><th>errors</th><th>interrupted</th><th>seconds</th></tr>"
    );
    for r in &report.results {
        let _ = writeln!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"ops\">{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"interrupted\">{}</td><td class=\"seconds\">{:.3}</td></tr>",
            esc(&r.workload),
            esc(&r.profile),
            r.threads,
            r.ops_per_sec,
            micros(r, r.latency.p50),
            micros(r, r.latency.p99),
            micros(r, r.latency.max),
            r.busy,
            r.errors,
            r.interrupted,
            r.seconds
        );
    }
    table.push_str("</table>\n");
    let data: String = report
        .data
        .iter()
        .map(|(db, what)| format!("<li><b>{}</b>: {}</li>", esc(db), esc(what)))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>litepool bench</title>
<style>
body {{ font: 14px/1.4 sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 12px 0; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
td:first-child, td:nth-child(2), th {{ text-align: left; }}
svg text {{ font: 12px sans-serif; fill: #222; }}
svg .title {{ font-weight: bold; font-size: 14px; }}
svg .group {{ font-weight: bold; }}
pre {{ background: #f6f6f6; padding: 8px; overflow-x: auto; }}
</style></head><body>
<h1>litepool bench: {kind}</h1>
<p>Runs of {seconds} (a statement still running at the end of its run is interrupted and counted apart); the mixed run on {threads} threads; {cpus} CPUs; ratios are against <b>{first}</b>.</p>
<ul>{data}</ul>
<h2>Throughput</h2>
{ops_chart}
<h2>Latency</h2>
{latency_chart}
<h2>Results</h2>
{table}
<h2>How this was run</h2>
<p>Machine: {os} {arch}, {cpus} CPUs; scratch copies in {tmp}.</p>
<pre id="command">{command}</pre>
<p>Configuration ({sources}):</p>
<pre id="config">{config}</pre>
</body></html>
"#,
        kind = esc(report.kind),
        seconds = esc(&report.took()),
        threads = report.threads,
        cpus = report.cpus,
        first = esc(report.profiles.first().map_or("", String::as_str)),
        ops_chart = bars(
            "ops",
            "Completed operations per second (higher is better), each workload on its own scale",
            "ops/s",
            &ops,
            1,
            Scale::PerGroup
        ),
        latency_chart = bars(
            "latency",
            "Latency of completed operations, p50 and p99 (lower is better), logarithmic axis",
            "µs",
            &latency,
            2,
            Scale::Log
        ),
        os = std::env::consts::OS,
        arch = std::env::consts::ARCH,
        tmp = esc(&std::env::temp_dir().display().to_string()),
        command = esc(&report.command),
        sources = esc(&report.sources.join(" + ")),
        config = esc(config_text),
    )
}
