//! The curves of `litepool tune --report`: for each searched dimension, ops/s and p99 latency
//! against the value tried, the chosen point marked, the configured profile as a dashed
//! reference line.
//!
//! Layout: one `<svg id="curve-{dimension}" class="curve">` per dimension, holding two panels
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
const H: f64 = 270.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 50.0;
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
    let width = 2.0 * W;
    format!(
        r#"<svg id="curve-{dim}" class="curve" data-group="{dim}" data-axis="{axis}" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{H:.0}" viewBox="0 0 {width:.0} {H:.0}" role="img" aria-label="{dim}: ops/s and p99 against the value"><text x="4" y="18" class="title">{dim}</text>
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
    for (sl, shown) in slots.iter().zip(shown(c, slots, px)) {
        let (tx, label) = (px(sl.u), if shown { esc(&sl.label) } else { String::new() });
        let _ = writeln!(
            s,
            r##"<line class="xtick" x1="{tx:.1}" y1="{y1:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#444"/><text class="xtick" x="{tx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            y1 + 5.0,
            y1 + 18.0
        );
    }
    let (mid, dim) = ((x0 + x1) / 2.0, esc(&c.dimension));
    let _ = writeln!(
        s,
        r#"<text class="xlabel" x="{mid:.1}" y="{:.1}" text-anchor="middle">{dim}</text>"#,
        H - 10.0
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

/// Which x tick labels are written: those that overlap no label already kept, the chosen
/// points' first (a dropped value is still in its dot's title).
fn shown(c: &Curve, slots: &[Slot], px: impl Fn(f64) -> f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|k| !slots[*k].members.iter().any(|i| c.points[*i].chosen));
    let (mut kept, mut shown) = (Vec::<(f64, f64)>::new(), vec![false; slots.len()]);
    for k in order {
        let x = px(slots[k].u);
        let half = slots[k].label.chars().count() as f64 * 3.3 + 4.0;
        shown[k] = kept.iter().all(|(a, b)| x + half < *a || x - half > *b);
        kept.extend(shown[k].then_some((x - half, x + half)));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run at `x` (`None`: categorical); a label ending in `*` marks the chosen point.
    fn pt(label: &str, x: Option<f64>, ops: f64, p99: f64) -> CurvePoint {
        let (chosen, ops_per_sec, p99_seconds) = (label.ends_with('*'), ops, p99);
        let label = label.trim_end_matches('*').to_owned();
        CurvePoint {
            label,
            x,
            ops_per_sec,
            p99_seconds,
            chosen,
        }
    }

    /// The chart of one curve.
    fn one(dimension: &str, log_x: bool, points: Vec<CurvePoint>, b: Option<(f64, f64)>) -> String {
        curves(&[curve(dimension, log_x, points)], b)
    }

    fn curve(dimension: &str, log_x: bool, points: Vec<CurvePoint>) -> Curve {
        let dimension = dimension.to_owned();
        Curve {
            dimension,
            log_x,
            points,
        }
    }

    const MIB: f64 = 1048576.0;
    const DOT: &str = r#"<circle class="dot""#;
    const RING: &str = r#"<circle class="chosen""#;

    /// The dot of a panel whose title starts with `title`.
    fn dot<'a>(panel: &'a str, title: &str) -> &'a str {
        let titles = panel.match_indices("<title>").map(|(i, _)| &panel[i + 7..]);
        let mut dots = tags(panel, DOT).into_iter().zip(titles);
        dots.find(|(_, t)| t.starts_with(title)).unwrap().0
    }

    /// The value of attribute `name` in the tag text `tag`.
    fn attr(tag: &str, name: &str) -> f64 {
        let from = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let to = from + tag[from..].find('"').unwrap();
        tag[from..to].parse().unwrap()
    }

    /// The svg of `dimension`, and its two panels.
    fn svg<'a>(out: &'a str, dimension: &str) -> (&'a str, &'a str, &'a str) {
        let id = format!(r#"<svg id="curve-{dimension}""#);
        let from = out.find(&id).unwrap();
        let svg = &out[from..from + out[from..].find("</svg>").unwrap()];
        let ops = svg.find(r#"<g class="panel ops">"#).unwrap();
        let p99 = svg.find(r#"<g class="panel p99">"#).unwrap();
        (svg, &svg[ops..p99], &svg[p99..])
    }

    /// Every tag of a panel that starts with `start`.
    fn tags<'a>(panel: &'a str, start: &str) -> Vec<&'a str> {
        let tag = |i: usize| &panel[i..i + panel[i..].find('>').unwrap()];
        panel.match_indices(start).map(|(i, _)| tag(i)).collect()
    }

    /// The x tick labels of a panel.
    fn xticks(panel: &str) -> Vec<&str> {
        let texts = panel.split(r#"<text class="xtick""#).skip(1);
        texts
            .map(|t| &t[t.find('>').unwrap() + 1..t.find('<').unwrap()])
            .collect()
    }

    /// The polyline's vertices.
    fn line(panel: &str) -> Vec<(f64, f64)> {
        let line = tags(panel, "<polyline");
        assert_eq!(line.len(), 1, "{panel}");
        let points = line[0].split('"').nth(3).unwrap().split(' ');
        let num = |v: &str| v.parse::<f64>().unwrap();
        points
            .map(|p| p.split_once(',').map(|(x, y)| (num(x), num(y))).unwrap())
            .collect()
    }

    #[test]
    fn the_chosen_marker_is_once_per_panel_at_the_chosen_point() {
        let points = vec![
            pt("16MiB", Some(16.0 * MIB), 900.0, 4e-3),
            pt("1MiB", Some(MIB), 500.0, 9e-3),
            pt("4MiB*", Some(4.0 * MIB), 1200.0, 2e-3),
        ];
        let out = one("cache_size", true, points, Some((800.0, 6e-3)));
        assert_eq!(out.matches("<svg ").count(), 1, "one svg, two panels");
        let (_, ops, p99) = svg(&out, "cache_size");
        for panel in [ops, p99] {
            let rings = tags(panel, RING);
            assert_eq!(rings.len(), 1, "{panel}");
            assert_eq!(panel.matches(r#"class="chosen""#).count(), 1);
            assert_eq!(panel.matches(">chosen</text>").count(), 1);
            let dot = dot(panel, "4MiB (chosen): 1200 ops/s");
            assert_eq!(attr(rings[0], "cx"), attr(dot, "cx"));
            assert_eq!(attr(rings[0], "cy"), attr(dot, "cy"));
            assert!(panel.contains(">configured</text>"));
        }
        // 4MiB is the best ops/s: the highest dot (smallest y) in the ops panel.
        let ring_y = attr(tags(ops, RING)[0], "cy");
        assert!(tags(ops, DOT).iter().all(|d| attr(d, "cy") >= ring_y));
        let out = one("mmap_size", true, vec![pt("0", Some(0.0), 7.0, 5e-3)], None);
        assert!(!out.contains(r#"class="chosen""#), "nothing chosen");
    }

    #[test]
    fn points_are_ordered_by_x_and_the_line_goes_through_the_median_per_x() {
        let runs = [(16, 100), (1, 200), (4, 10), (8, 300), (4, 90), (4, 20)];
        let points = runs.map(|(x, o)| pt(&x.to_string(), Some(x as f64), o as f64, 1e-3));
        let out = one("readers.max_size", false, points.into(), None);
        let (_, ops, p99) = svg(&out, "readers.max_size");
        for panel in [ops, p99] {
            let xs: Vec<f64> = line(panel).iter().map(|v| v.0).collect();
            assert_eq!(xs.len(), 4, "one vertex per distinct x: {panel}");
            assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
            assert_eq!(tags(panel, DOT).len(), 6, "every run a dot");
        }
        assert_eq!(
            xticks(ops),
            ["1", "4", "8", "16"],
            "in the order of the values"
        );
        // At x = 4 the line passes through the median run (20 ops/s).
        assert_eq!(attr(dot(ops, "4: 20 ops/s"), "cy"), line(ops)[1].1);
    }

    #[test]
    fn mmap_zero_on_a_log_axis_is_finite_and_left_of_the_smallest_positive() {
        let points = vec![
            pt("1GiB", Some(1024.0 * MIB), 900.0, 1e-3),
            pt("0*", Some(0.0), 700.0, 2e-3),
            pt("256MiB", Some(256.0 * MIB), 800.0, 1.5e-3),
        ];
        let out = one("mmap_size", true, points, Some((700.0, 2e-3)));
        assert!(!out.contains("NaN") && !out.to_lowercase().contains("inf"));
        let (_, ops, _) = svg(&out, "mmap_size");
        let xs: Vec<f64> = line(ops).iter().map(|v| v.0).collect();
        assert!(xs.iter().all(|x| x.is_finite()));
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        assert_eq!(attr(tags(ops, RING)[0], "cx"), xs[0], "0 is the leftmost");
        assert!(ops.contains(">0</text>"));
    }

    #[test]
    fn close_tick_labels_do_not_overlap_and_the_chosen_one_is_kept() {
        let x = |label: &str, mib: f64| pt(label, Some(mib * MIB), 1.0, 1e-3);
        let points = vec![x("6000KiB", 5.9), x("6500KiB*", 6.4), x("7000KiB", 6.9)];
        let out = one(
            "cache_size",
            true,
            [points, vec![x("1GiB", 1e3)]].concat(),
            None,
        );
        let ops = svg(&out, "cache_size").1;
        assert_eq!(
            xticks(ops),
            ["", "6500KiB", "", "1GiB"],
            "every tick, not every label"
        );
    }

    #[test]
    fn labels_and_dimension_names_are_escaped() {
        let points = vec![
            pt("<script>x</script>*", None, 1.0, 1e-3),
            pt("a\"b&c", None, 2.0, 1e-3),
        ];
        let out = one("<script>alert('d')</script>", false, points, None);
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains(r#"id="curve-&lt;script&gt;alert(&#39;d&#39;)&lt;/script&gt;""#));
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt; (chosen): 1 ops/s"));
        assert!(out.contains("a&quot;b&amp;c"));
    }

    #[test]
    fn degenerate_input_never_gives_nan_or_inf_a_single_point_has_no_line_empty_is_skipped() {
        let zero = |label: &str, x| pt(label, x, 0.0, 0.0);
        let cases = [
            // All zeros (with a zero baseline below).
            vec![zero("0*", Some(0.0)), zero("0", Some(0.0))],
            // All equal.
            vec![pt("8MiB", Some(8.0 * MIB), 5.0, 1e-3); 3],
            // One point.
            vec![pt("memory*", None, 123.0, 2e-4)],
            // Categorical, repeated and all zero.
            vec![
                zero("write", None),
                zero("group*", None),
                zero("write", None),
            ],
            // Extremes.
            vec![
                pt("tiny", Some(f64::MIN_POSITIVE), 1e-300, 5e-324),
                pt("huge*", Some(f64::MAX), f64::MAX, f64::MAX),
            ],
        ];
        for (k, points) in cases.into_iter().enumerate() {
            for (log_x, baseline) in [(true, Some((0.0, 0.0))), (false, None)] {
                let out = one(&format!("d{k}"), log_x, points.clone(), baseline);
                assert!(out.contains(&format!("curve-d{k}")));
                assert_eq!(
                    curves(&[curve("none", log_x, vec![])], baseline),
                    "",
                    "skipped"
                );
                assert!(!out.contains("NaN"), "{out}");
                assert!(!out.to_lowercase().contains("inf"), "{out}");
                if k == 2 {
                    // One point: a dot in each panel, no line.
                    assert!(!out.contains("<polyline"));
                    assert_eq!(out.matches(DOT).count(), 2);
                }
            }
        }
    }

    #[test]
    fn ticks_are_human_numbers() {
        assert_eq!(human_ops(12000.0), "12k");
        assert_eq!(human_ops(1.2e6), "1.2M");
        assert_eq!(human_ops(2500.0), "2.5k");
        assert_eq!(human_ops(950.0), "950");
        assert_eq!(human_secs(0.0012), "1.2ms");
        assert_eq!(human_secs(250e-6), "250µs");
        assert_eq!(human_secs(3.0), "3s");
        assert_eq!(human_secs(0.0), "0");
        let labels = |y: YAxis| y.ticks.into_iter().map(|t| t.1).collect::<Vec<String>>();
        assert_eq!(labels(YAxis::linear(&[12345.0])), ["0", "5k", "10k", "15k"]);
        let log = labels(YAxis::log(&[2e-4, 3e-2]));
        assert_eq!(log, ["100µs", "1ms", "10ms", "100ms"]);
    }
}
