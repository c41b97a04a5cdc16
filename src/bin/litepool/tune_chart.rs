//! The curves of `litepool tune --report`: for each searched dimension, ops/s and p99 latency
//! against the value tried, the chosen point marked, the configured profile as a dashed
//! reference line.
//!
//! Layout: one `<svg id="curve-{dimension}" class="curve">` per dimension (in the id, each
//! character other than ASCII letters, digits, `_`, `.` and `-` becomes `-`), holding two panels
//! side by side: `<g class="panel ops">` (ops/s, linear from 0, higher is better) and
//! `<g class="panel p99">` (p99, logarithmic, lower is better). The chosen point is marked in
//! each panel: a ring `class="chosen"` (so once per panel, twice per svg) and a text "chosen".
//!
//! Written by hand, as inline SVG (no script, nothing fetched): a charting crate would bring a
//! font stack or JavaScript for a few polylines and circles. Every coordinate is finite for any
//! finite input (zeros, one point, equal values, x = 0 on a log axis); empty curves are skipped.

use std::fmt::Write as _;

use crate::report::esc;

/// One measured run on a dimension's axis.
#[derive(Debug, Clone)]
pub struct CurvePoint {
    /// The value as the user writes it: "8MiB", "memory", "4", "group commit".
    pub label: String,
    /// Numeric position (bytes, readers); `None`: categorical (placed evenly in input order).
    pub x: Option<f64>,
    pub ops_per_sec: f64,
    pub p99_seconds: f64,
    pub chosen: bool,
}

/// One dimension's runs. `log_x`: a logarithmic x axis (bytes); x ≤ 0 then sits at a tick of
/// its own left of the smallest positive value.
pub struct Curve {
    pub dimension: String,
    pub log_x: bool,
    pub points: Vec<CurvePoint>,
}

/// Panel size, and the plot area's margins within it.
const W: f64 = 460.0;
const H: f64 = 284.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 64.0;
/// Room between the y axis (and the right edge) and the first (last) x tick.
const PAD: f64 = 20.0;
/// Where x ≤ 0 ends on a log axis, as a fraction of the axis: the positive values start here.
const ZERO_GAP: f64 = 0.15;

/// One chart per dimension: ops/s against the value (higher is better) and p99 against the value
/// (lower is better, logarithmic y), the chosen point marked, `baseline` (the configured profile's ops/s
/// and p99) as a dashed reference line labelled "configured". See the module doc for the ids.
pub fn curves(curves: &[Curve], baseline: Option<(f64, f64)>) -> String {
    let drawn = curves.iter().filter(|c| !c.points.is_empty());
    drawn.map(|c| chart(c, baseline) + "\n").collect()
}

/// `v`, or 0 when it is NaN or infinite: nothing non-finite reaches a coordinate.
fn finite(v: f64) -> f64 {
    Some(v).filter(|v| v.is_finite()).unwrap_or(0.0)
}

/// A position on the x axis: where (0..=1), its tick label, the points there (indices).
struct Slot {
    u: f64,
    label: String,
    members: Vec<usize>,
}

impl Slot {
    fn new(p: &CurvePoint, i: usize) -> Slot {
        let (u, label, members) = (0.0, p.label.clone(), vec![i]);
        Slot { u, label, members }
    }
}

/// The x positions of a curve's points: sorted by x on a numeric axis (equal x share a slot),
/// in input order by label on a categorical one.
fn slots(c: &Curve) -> (Vec<Slot>, &'static str) {
    let numeric = c.points.iter().all(|p| p.x.is_some_and(|x| x.is_finite()));
    let mut out: Vec<Slot> = Vec::new();
    if !numeric {
        for (i, p) in c.points.iter().enumerate() {
            match out.iter_mut().find(|s| s.label == p.label) {
                Some(s) => s.members.push(i),
                None => out.push(Slot::new(p, i)),
            }
        }
        let n = out.len();
        for (k, s) in out.iter_mut().enumerate() {
            s.u = k as f64 / (n - 1).max(1) as f64;
        }
        return (centred(out), "categorical");
    }
    // On a log axis every x ≤ 0 is the one "0" position.
    let floor = if c.log_x { 0.0 } else { f64::MIN };
    let key = |i: usize| c.points[i].x.unwrap_or(0.0).max(floor);
    let mut order: Vec<usize> = (0..c.points.len()).collect();
    order.sort_by(|a, b| key(*a).total_cmp(&key(*b)));
    let mut xs: Vec<f64> = Vec::new();
    for i in order {
        match out.last_mut() {
            Some(s) if xs.last() == Some(&key(i)) => s.members.push(i),
            _ => {
                xs.push(key(i));
                out.push(Slot::new(&c.points[i], i));
            }
        }
    }
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    for (s, x) in out.iter_mut().zip(&xs) {
        s.u = if !c.log_x {
            (x - lo) / (hi - lo)
        } else if *x <= 0.0 {
            0.0
        } else {
            // Positive values: logarithmic, after the "0" position if there is one.
            let start = if lo <= 0.0 { ZERO_GAP } else { 0.0 };
            let first = xs.iter().copied().find(|v| *v > 0.0).unwrap_or(*x);
            let (a, b) = (first.log10(), hi.log10());
            // One positive value: 0 / 0 is NaN, and NaN.min(1.0) is 1 (the right end).
            start + (1.0 - start) * ((x.log10() - a) / (b - a)).min(1.0)
        };
        s.u = finite(s.u).clamp(0.0, 1.0);
    }
    (centred(out), if c.log_x { "log" } else { "linear" })
}

/// A lone slot sits in the middle of the axis.
fn centred(mut slots: Vec<Slot>) -> Vec<Slot> {
    if let [one] = slots.as_mut_slice() {
        one.u = 0.5;
    }
    slots
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    v[(n - 1) / 2] / 2.0 + v[n / 2] / 2.0
}

/// Trailing zeros off a number printed with two decimals: 12.50 → 12.5, 12.00 → 12.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Ops/s for a tick: 950, 12k, 1.2M, 3G.
pub fn human_ops(v: f64) -> String {
    let v = finite(v);
    for (unit, m) in [("G", 1e9), ("M", 1e6), ("k", 1e3)] {
        if v.abs() >= m {
            return format!("{}{unit}", trim(v / m));
        }
    }
    trim(v)
}

/// Seconds for a tick or a title: 800ns, 250µs, 1.2ms, 3s.
pub fn human_secs(v: f64) -> String {
    let v = finite(v);
    if v == 0.0 {
        return "0".to_owned();
    }
    for (unit, m) in [("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)] {
        if v >= m {
            return format!("{}{unit}", trim(v / m));
        }
    }
    format!("{}ns", trim(v * 1e9))
}

/// A y axis: value → 0..=1 (bottom to top), and its ticks.
struct YAxis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl YAxis {
    /// Linear from 0 to a round number above every value; steps of 1, 2, 2.5 or 5 × 10ⁿ.
    fn linear(values: &[f64]) -> YAxis {
        let max = values.iter().copied().fold(0.0f64, f64::max);
        let max = if max > 0.0 { max.min(1e300) } else { 1.0 };
        let raw = max / 4.0;
        let mag = 10f64.powf(raw.log10().floor());
        let m = [1.0, 2.0, 2.5, 5.0].into_iter().find(|m| m * mag >= raw);
        let step = mag * m.unwrap_or(10.0);
        let n = (max / step).ceil().clamp(1.0, 10.0) as usize;
        let hi = step * n as f64;
        let tick = |k: usize| (k as f64 * step, human_ops(k as f64 * step));
        let ticks = (0..=n).map(tick).collect();
        YAxis {
            log: false,
            lo: 0.0,
            hi,
            ticks,
        }
    }

    /// Logarithmic between the powers of ten around the positive values; values ≤ 0 sit at the
    /// bottom.
    fn log(values: &[f64]) -> YAxis {
        let positive = || values.iter().copied().filter(|v| *v > 0.0);
        let lo = positive().fold(f64::INFINITY, f64::min);
        let hi = positive().fold(0.0f64, f64::max);
        let hi = Some(hi)
            .filter(|h| *h > 0.0)
            .unwrap_or(1e-3)
            .clamp(1e-12, 1e12);
        let lo = lo.clamp(1e-12, hi);
        let a = lo.log10().floor();
        let b = hi.log10().ceil().max(a + 1.0);
        // At most nine labelled powers of ten.
        let every = ((b - a) / 8.0).ceil().max(1.0);
        let mut ticks = Vec::new();
        let mut e = a;
        while e <= b + 1e-9 {
            let v = 10f64.powf(e);
            ticks.push((v, human_secs(v)));
            e += every;
        }
        YAxis {
            log: true,
            lo: 10f64.powf(a),
            hi: 10f64.powf(b),
            ticks,
        }
    }

    fn frac(&self, v: f64) -> f64 {
        let t = if !self.log {
            (v - self.lo) / (self.hi - self.lo)
        } else if v <= self.lo {
            0.0
        } else {
            (v / self.lo).log10() / (self.hi / self.lo).log10()
        };
        finite(t).clamp(0.0, 1.0)
    }
}

/// One dimension's svg: the two panels side by side.
fn chart(c: &Curve, baseline: Option<(f64, f64)>) -> String {
    let (slots, axis) = slots(c);
    let base = |k: usize| baseline.map(|b| finite([b.0, b.1][k]));
    let body: String = (0..2).map(|k| panel(c, &slots, k, base(k))).collect();
    let dim = esc(&c.dimension);
    // An HTML id has no spaces: every other character becomes '-' ("refine cache_size").
    let id: String = c
        .dimension
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || "_.-".contains(ch) {
                ch
            } else {
                '-'
            }
        })
        .collect();
    let width = 2.0 * W;
    format!(
        r#"<svg id="curve-{id}" class="curve" data-group="{dim}" data-axis="{axis}" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{H:.0}" viewBox="0 0 {width:.0} {H:.0}" role="img" aria-label="{dim}: ops/s and p99 against the value"><text x="4" y="18" class="title">{dim}</text>
{body}</svg>"#
    )
}

/// Panel `k` (0: ops/s, 1: p99): axes and ticks, the baseline, the median line, the dots, the
/// chosen marker.
fn panel(c: &Curve, slots: &[Slot], k: usize, base: Option<f64>) -> String {
    let (class, title, color) = [
        ("ops", "ops/s (higher is better)", "#4e79a7"),
        ("p99", "p99 latency (lower is better, log)", "#f28e2b"),
    ][k];
    let value = |p: &CurvePoint| finite([p.ops_per_sec, p.p99_seconds][k]);
    let values: Vec<f64> = c.points.iter().map(value).collect();
    let all: Vec<f64> = values.iter().copied().chain(base).collect();
    let y = [YAxis::linear, YAxis::log][k](&all);
    let ox = k as f64 * W;
    let (x0, x1, y0, y1) = (ox + LEFT, ox + W - RIGHT, TOP, H - BOTTOM);
    let px = |u: f64| x0 + PAD + u * (x1 - x0 - 2.0 * PAD);
    let py = |v: f64| y1 - y.frac(v) * (y1 - y0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<g class="panel {class}"><text x="{x0:.1}" y="38" class="panel-title">{title}</text><line class="axis" x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="#444"/><line class="axis" x1="{x0:.1}" y1="{y1:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#444"/>"##
    );
    for (v, label) in &y.ticks {
        let (ty, label) = (py(*v), esc(label));
        let _ = writeln!(
            s,
            r##"<line class="grid" x1="{x0:.1}" y1="{ty:.1}" x2="{x1:.1}" y2="{ty:.1}" stroke="#e4e4e4"/><text class="ytick" x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            x0 - 6.0,
            ty + 4.0
        );
    }
    for (sl, row) in slots.iter().zip(shown(c, slots, px)) {
        let tx = px(sl.u);
        let label = row.map_or(String::new(), |_| esc(&sl.label));
        let _ = writeln!(
            s,
            r##"<line class="xtick" x1="{tx:.1}" y1="{y1:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#444"/><text class="xtick" x="{tx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            y1 + 5.0,
            y1 + 18.0 + 13.0 * row.unwrap_or(0) as f64
        );
    }
    let (mid, dim) = ((x0 + x1) / 2.0, esc(&c.dimension));
    let _ = writeln!(
        s,
        r#"<text class="xlabel" x="{mid:.1}" y="{:.1}" text-anchor="middle">{dim}</text>"#,
        H - 8.0
    );
    if let Some(b) = base {
        let (by, lx) = (py(b), x1 - 2.0);
        let _ = writeln!(
            s,
            r##"<line class="baseline" x1="{x0:.1}" y1="{by:.1}" x2="{x1:.1}" y2="{by:.1}" stroke="#777" stroke-dasharray="5 4"/><text class="baseline" x="{lx:.1}" y="{:.1}" text-anchor="end" fill="#777">configured</text>"##,
            by - 4.0
        );
    }
    if slots.len() > 1 {
        let vertex = |sl: &Slot| {
            let m = median(sl.members.iter().map(|i| values[*i]).collect());
            format!("{:.1},{:.1}", px(sl.u), py(m))
        };
        let line = slots.iter().map(vertex).collect::<Vec<_>>().join(" ");
        let _ = writeln!(
            s,
            r#"<polyline class="median" points="{line}" fill="none" stroke="{color}" stroke-width="2"/>"#
        );
    }
    let mut chosen = String::new();
    for sl in slots {
        for i in &sl.members {
            let p = &c.points[*i];
            let (cx, cy) = (px(sl.u), py(values[*i]));
            let (label, mark) = (esc(&p.label), if p.chosen { " (chosen)" } else { "" });
            let (ops, p99) = (finite(p.ops_per_sec), human_secs(p.p99_seconds));
            let _ = writeln!(
                s,
                r#"<circle class="dot" cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="{color}"><title>{label}{mark}: {ops:.0} ops/s, p99 {p99}</title></circle>"#
            );
            if p.chosen {
                let ly = (cy - 12.0).max(y0 - 2.0);
                let _ = writeln!(
                    chosen,
                    r##"<circle class="chosen" cx="{cx:.1}" cy="{cy:.1}" r="8" fill="none" stroke="#e15759" stroke-width="2.5"/><text class="chosen-label" x="{cx:.1}" y="{ly:.1}" text-anchor="middle" fill="#e15759">chosen</text>"##
                );
            }
        }
    }
    // The marker last: drawn over the line and the other dots.
    s.push_str(&chosen);
    s.push_str("</g>\n");
    s
}

/// The row (0 or 1, one under the other) each x tick label is written in, if any: a label
/// goes in the first row where it overlaps no label already kept, the chosen points' first (a
/// dropped value is still in its dot's title).
fn shown(c: &Curve, slots: &[Slot], px: impl Fn(f64) -> f64) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|k| !slots[*k].members.iter().any(|i| c.points[*i].chosen));
    let mut kept = [Vec::<(f64, f64)>::new(), Vec::new()];
    let mut shown = vec![None; slots.len()];
    for k in order {
        let x = px(slots[k].u);
        let half = slots[k].label.chars().count() as f64 * 3.3 + 4.0;
        let free = |row: &Vec<(f64, f64)>| row.iter().all(|(a, b)| x + half < *a || x - half > *b);
        shown[k] = (0..2).find(|&r| free(&kept[r]));
        if let Some(r) = shown[k] {
            kept[r].push((x - half, x + half));
        }
    }
    shown
}

#[cfg(test)]
#[path = "tune_chart_tests.rs"]
mod tests;
