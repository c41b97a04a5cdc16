//! `litepool tune --report FILE.html`: one self-contained page with each searched dimension's
//! curves ([`crate::tune_chart`]), the final comparison, the verdict, the snippet and the
//! configuration used.

use std::fmt::Write as _;

use crate::report::{bars, esc, Scale};
use crate::tune_chart::{self, Curve, CurvePoint};
use crate::tune_out::{Point, Tuned};

/// Where a point sits on its dimension's axis: bytes of cache or map, readers.
fn value_key(p: &Point) -> Option<u64> {
    // The refinement's values sit on their dimension's axis ("refine cache_size").
    match p.dimension.strip_prefix("refine ").unwrap_or(&p.dimension) {
        "cache_size" => p.set.cache_size.map(|c| c.bytes_per_connection(4096)),
        "mmap_size" => p.set.mmap_size.map(|m| m.bytes()),
        "readers.max_size" => p.readers.map(u64::from),
        _ => None,
    }
}

/// Each searched dimension's runs as a curve (in the order the dimensions were searched), and
/// the configured profile's median ops/s and p99 as the baseline. The confirmation's runs are
/// left out: they are its own chart.
fn curves_of(t: &Tuned) -> (Vec<Curve>, Option<(f64, f64)>) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let configured: Vec<&Point> = t
        .points
        .iter()
        .filter(|p| p.dimension == "configured")
        .collect();
    let baseline = median(configured.iter().map(|p| p.row.ops_per_sec).collect()).zip(median(
        configured
            .iter()
            .map(|p| p.row.latency.p99.as_secs_f64())
            .collect(),
    ));
    let mut curves: Vec<Curve> = Vec::new();
    for (i, p) in t.points.iter().enumerate() {
        if p.dimension == "configured" || t.confirmation.iter().any(|c| c.name == p.dimension) {
            continue;
        }
        let point = CurvePoint {
            label: p.value.clone(),
            x: value_key(p).map(|k| k as f64),
            ops_per_sec: p.row.ops_per_sec,
            p99_seconds: p.row.latency.p99.as_secs_f64(),
            chosen: t.dimensions.iter().any(|d| d.chosen == Some(i)),
        };
        match curves.iter_mut().find(|c| c.dimension == p.dimension) {
            Some(c) => c.points.push(point),
            None => curves.push(Curve {
                dimension: p.dimension.clone(),
                log_x: matches!(p.dimension.as_str(), "cache_size" | "mmap_size"),
                points: vec![point],
            }),
        }
    }
    (curves, baseline)
}

/// The HTML page: each dimension's curve (ops/s, p99), the chosen points marked, the
/// confirmation, the configuration used. Everything from the user's configuration is escaped.
pub fn html(t: &Tuned, config_text: &str) -> String {
    let (curves, baseline) = curves_of(t);
    let confirm: Vec<(String, Vec<(String, f64)>)> = vec![(
        "median of the repeated runs".into(),
        t.confirmation
            .iter()
            .map(|c| (c.name.clone(), c.median()))
            .collect(),
    )];
    let mut reasons = String::new();
    for d in &t.dimensions {
        let value = d
            .chosen
            .map_or("kept as it was".to_owned(), |i| t.points[i].value.clone());
        let _ = write!(
            reasons,
            "<li><b>{}</b>: {}: {}</li>",
            esc(&d.name),
            esc(&value),
            esc(&d.reason)
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>litepool tune</title>
<style>
body {{ font: 14px/1.4 sans-serif; margin: 24px; color: #222; }}
svg text {{ font: 12px sans-serif; fill: #222; }}
svg .title {{ font-weight: bold; font-size: 14px; }}
svg .group {{ font-weight: bold; }}
svg .panel-title {{ font-weight: bold; }}
svg .xtick, svg .ytick {{ font-size: 11px; }}
svg text.chosen-label {{ fill: #e15759; font-weight: bold; }}
svg text.baseline {{ fill: #777; }}
pre {{ background: #f6f6f6; padding: 8px; overflow-x: auto; }}
</style></head><body>
<h1>litepool tune: {db}</h1>
<p>{path}, {size}; workloads {workloads}; mixed on {threads} threads; every run at synchronous = {sync}, durability = {dur}. {measured} runs in {elapsed:.1}s (budget {budget:.0}s).</p>
<ul>{reasons}</ul>
<h2>Each dimension</h2>
{curves}<h2>Final comparison</h2>
{confirm_chart}
<p id="verdict">{verdict}</p>
<pre id="snippet">{snippet}</pre>
<p>Configuration:</p>
<pre id="config">{config}</pre>
</body></html>
"#,
        db = esc(&t.database),
        path = esc(&t.path),
        size = esc(&litepool::budget::human(t.file_bytes)),
        workloads = esc(&t.workloads.join(", ")),
        threads = t.threads,
        sync = esc(&t.synchronous),
        dur = esc(&t.durability),
        measured = t.measured,
        elapsed = t.elapsed_seconds,
        budget = t.time_budget_seconds,
        curves = tune_chart::curves(&curves, baseline),
        confirm_chart = bars(
            "confirmation",
            "Median ops/s of the repeated runs",
            "ops/s",
            &confirm,
            1,
            Scale::PerGroup
        ),
        verdict = esc(&t.verdict),
        snippet = esc(&t.snippet),
        config = esc(config_text),
    )
}
