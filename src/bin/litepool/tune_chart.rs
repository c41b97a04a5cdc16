//! The curves of `litepool tune --report`: for each searched dimension, ops/s and p99 latency
//! against the value tried, the chosen point marked, the configured profile as a dashed
//! reference line.
//!
//! Layout: one `<svg id="curve-{dimension}" class="curve">` per dimension, holding two panels
//! side by side: `<g class="panel ops">` (ops/s, linear from 0, higher is better) and
//! `<g class="panel p99">` (p99, logarithmic, lower is better). The chosen point is marked in
//! each panel: a ring `class="chosen"` (so once per panel, twice per svg) and a text "chosen".
//!
//! Written by hand, as inline SVG (no script, nothing fetched): a few polylines, circles and
//! lines; a charting crate would bring a font stack or JavaScript for that. Every coordinate
//! is finite for any finite input (zeros, a single point, all-equal values, x = 0 on a
//! logarithmic axis); curves without points are skipped.

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
    let mut out = String::new();
    for c in curves.iter().filter(|c| !c.points.is_empty()) {
        out.push_str(&chart(c, baseline));
        out.push('\n');
    }
    out
}

/// `v`, or 0 when it is NaN or infinite: nothing non-finite reaches a coordinate.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// A position on the x axis: where (0..=1), its tick label, the points there (indices).
struct Slot {
    u: f64,
    label: String,
    members: Vec<usize>,
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
                None => out.push(Slot {
                    u: 0.0,
                    label: p.label.clone(),
                    members: vec![i],
                }),
            }
        }
        let n = out.len();
        for (k, s) in out.iter_mut().enumerate() {
            s.u = if n > 1 {
                k as f64 / (n - 1) as f64
            } else {
                0.5
            };
        }
        return (out, "categorical");
    }
    // On a log axis every x ≤ 0 is the one "0" position.
    let key = |i: usize| {
        let x = c.points[i].x.unwrap_or(0.0);
        if c.log_x {
            x.max(0.0)
        } else {
            x
        }
    };
    let mut order: Vec<usize> = (0..c.points.len()).collect();
    order.sort_by(|a, b| key(*a).total_cmp(&key(*b)));
    let mut xs: Vec<f64> = Vec::new();
    for i in order {
        if xs.last() == Some(&key(i)) {
            if let Some(s) = out.last_mut() {
                s.members.push(i);
            }
        } else {
            xs.push(key(i));
            out.push(Slot {
                u: 0.0,
                label: c.points[i].label.clone(),
                members: vec![i],
            });
        }
    }
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    for (s, x) in out.iter_mut().zip(&xs) {
        s.u = if xs.len() == 1 {
            0.5
        } else if !c.log_x {
            (x - lo) / (hi - lo)
        } else if *x <= 0.0 {
            0.0
        } else {
            // Positive values: logarithmic, after the "0" position if there is one.
            let start = if lo <= 0.0 { ZERO_GAP } else { 0.0 };
            let first = xs.iter().copied().find(|v| *v > 0.0).unwrap_or(*x);
            let (a, b) = (first.log10(), hi.log10());
            if b > a {
                start + (1.0 - start) * (x.log10() - a) / (b - a)
            } else {
                1.0
            }
        };
        s.u = finite(s.u).clamp(0.0, 1.0);
    }
    (out, if c.log_x { "log" } else { "linear" })
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        v[n / 2 - 1] / 2.0 + v[n / 2] / 2.0
    }
}

/// Trailing zeros off a number printed with two decimals: 12.50 → 12.5, 12.00 → 12.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Ops/s for a tick: 950, 12k, 1.2M, 3G.
pub fn human_ops(v: f64) -> String {
    let v = finite(v);
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

/// Seconds for a tick or a title: 800ns, 250µs, 1.2ms, 3s.
pub fn human_secs(v: f64) -> String {
    let v = finite(v);
    if v == 0.0 {
        "0".to_owned()
    } else if v < 1e-6 {
        format!("{}ns", trim(v * 1e9))
    } else if v < 1e-3 {
        format!("{}µs", trim(v * 1e6))
    } else if v < 1.0 {
        format!("{}ms", trim(v * 1e3))
    } else {
        format!("{}s", trim(v))
    }
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
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let n = (max / step).ceil().clamp(1.0, 10.0) as usize;
        let hi = step * n as f64;
        let ticks = (0..=n)
            .map(|k| (k as f64 * step, human_ops(k as f64 * step)))
            .collect();
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
        let (lo, hi) = if hi > 0.0 {
            (lo.clamp(1e-12, 1e12), hi.clamp(1e-12, 1e12))
        } else {
            (1e-3, 1e-3)
        };
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
        let t = if self.log {
            if v <= self.lo {
                0.0
            } else {
                (v / self.lo).log10() / (self.hi / self.lo).log10()
            }
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        finite(t).clamp(0.0, 1.0)
    }
}

/// One dimension's svg: the two panels side by side.
fn chart(c: &Curve, baseline: Option<(f64, f64)>) -> String {
    let (slots, axis) = slots(c);
    let ops: Vec<f64> = c.points.iter().map(|p| finite(p.ops_per_sec)).collect();
    let p99: Vec<f64> = c.points.iter().map(|p| finite(p.p99_seconds)).collect();
    let base = baseline.map(|(o, p)| (finite(o), finite(p)));
    let dim = esc(&c.dimension);
    let mut body = String::new();
    let panels = [
        ("ops", "ops/s (higher is better)", &ops, base.map(|b| b.0)),
        (
            "p99",
            "p99 latency (lower is better, log)",
            &p99,
            base.map(|b| b.1),
        ),
    ];
    for (k, (class, title, values, base)) in panels.into_iter().enumerate() {
        let mut all = values.clone();
        all.extend(base);
        let y = if class == "ops" {
            YAxis::linear(&all)
        } else {
            YAxis::log(&all)
        };
        body.push_str(&panel(
            c,
            &slots,
            k as f64 * W,
            (class, title),
            values,
            &y,
            base,
        ));
    }
    let width = 2.0 * W;
    format!(
        r#"<svg id="curve-{dim}" class="curve" data-group="{dim}" data-axis="{axis}" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{H:.0}" viewBox="0 0 {width:.0} {H:.0}" role="img" aria-label="{dim}: ops/s and p99 against the value"><text x="4" y="18" class="title">{dim}</text>
{body}</svg>"#
    )
}

/// One panel at horizontal offset `ox`: axes and ticks, the baseline, the median line, the
/// dots, the chosen marker.
fn panel(
    c: &Curve,
    slots: &[Slot],
    ox: f64,
    (class, title): (&str, &str),
    values: &[f64],
    y: &YAxis,
    base: Option<f64>,
) -> String {
    let (x0, x1, y0, y1) = (ox + LEFT, ox + W - RIGHT, TOP, H - BOTTOM);
    let px = |u: f64| x0 + PAD + u * (x1 - x0 - 2.0 * PAD);
    let py = |v: f64| y1 - y.frac(v) * (y1 - y0);
    let color = if class == "ops" { "#4e79a7" } else { "#f28e2b" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<g class="panel {class}"><text x="{x0:.1}" y="38" class="panel-title">{}</text><line class="axis" x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="#444"/><line class="axis" x1="{x0:.1}" y1="{y1:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#444"/>"##,
        esc(title)
    );
    for (v, label) in &y.ticks {
        let ty = py(*v);
        let _ = writeln!(
            s,
            r##"<line class="grid" x1="{x0:.1}" y1="{ty:.1}" x2="{x1:.1}" y2="{ty:.1}" stroke="#e4e4e4"/><text class="ytick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            ty + 4.0,
            esc(label)
        );
    }
    for sl in slots {
        let tx = px(sl.u);
        let _ = writeln!(
            s,
            r##"<line class="xtick" x1="{tx:.1}" y1="{y1:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#444"/><text class="xtick" x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y1 + 5.0,
            y1 + 18.0,
            esc(&sl.label)
        );
    }
    let _ = writeln!(
        s,
        r#"<text class="xlabel" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 10.0,
        esc(&c.dimension)
    );
    if let Some(b) = base {
        let by = py(b);
        let _ = writeln!(
            s,
            r##"<line class="baseline" x1="{x0:.1}" y1="{by:.1}" x2="{x1:.1}" y2="{by:.1}" stroke="#777" stroke-dasharray="5 4"/><text class="baseline" x="{:.1}" y="{:.1}" text-anchor="end" fill="#777">configured</text>"##,
            x1 - 2.0,
            by - 4.0
        );
    }
    if slots.len() > 1 {
        let line: Vec<String> = slots
            .iter()
            .map(|sl| {
                let m = median(sl.members.iter().map(|i| values[*i]).collect());
                format!("{:.1},{:.1}", px(sl.u), py(m))
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline class="median" points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            line.join(" ")
        );
    }
    let mut chosen = String::new();
    for sl in slots {
        for i in &sl.members {
            let p = &c.points[*i];
            let (cx, cy) = (px(sl.u), py(values[*i]));
            let _ = writeln!(
                s,
                r#"<circle class="dot" cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="{color}"><title>{}{}: {:.0} ops/s, p99 {}</title></circle>"#,
                esc(&p.label),
                if p.chosen { " (chosen)" } else { "" },
                finite(p.ops_per_sec),
                human_secs(p.p99_seconds)
            );
            if p.chosen {
                let _ = writeln!(
                    chosen,
                    r##"<circle class="chosen" cx="{cx:.1}" cy="{cy:.1}" r="8" fill="none" stroke="#e15759" stroke-width="2.5"/><text class="chosen-label" x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="#e15759">chosen</text>"##,
                    (cy - 12.0).max(y0 - 2.0)
                );
            }
        }
    }
    // The marker last: drawn over the line and the other dots.
    s.push_str(&chosen);
    s.push_str("</g>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(label: &str, x: Option<f64>, ops: f64, p99: f64, chosen: bool) -> CurvePoint {
        CurvePoint {
            label: label.to_owned(),
            x,
            ops_per_sec: ops,
            p99_seconds: p99,
            chosen,
        }
    }

    const MIB: f64 = 1048576.0;

    /// The value of attribute `name` in the tag text `tag`.
    fn attr(tag: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        let from = tag.find(&key).unwrap() + key.len();
        let len = tag[from..].find('"').unwrap();
        tag[from..from + len].parse().unwrap()
    }

    /// The svg of `dimension`, and its two panels.
    fn svg<'a>(out: &'a str, dimension: &str) -> (&'a str, &'a str, &'a str) {
        let from = out
            .find(&format!(r#"<svg id="curve-{dimension}""#))
            .unwrap();
        let svg = &out[from..from + out[from..].find("</svg>").unwrap()];
        let ops = svg.find(r#"<g class="panel ops">"#).unwrap();
        let p99 = svg.find(r#"<g class="panel p99">"#).unwrap();
        (svg, &svg[ops..p99], &svg[p99..])
    }

    /// Every tag of a panel that starts with `start`.
    fn tags<'a>(panel: &'a str, start: &str) -> Vec<&'a str> {
        panel
            .match_indices(start)
            .map(|(i, _)| &panel[i..i + panel[i..].find('>').unwrap()])
            .collect()
    }

    fn polyline_xs(panel: &str) -> Vec<f64> {
        let line = tags(panel, "<polyline");
        assert_eq!(line.len(), 1, "{panel}");
        let from = line[0].find("points=\"").unwrap() + 8;
        let pts = &line[0][from..from + line[0][from..].find('"').unwrap()];
        pts.split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn one_svg_per_dimension_with_an_ops_and_a_p99_panel_empty_ones_skipped() {
        let out = curves(
            &[
                Curve {
                    dimension: "cache_size".into(),
                    log_x: true,
                    points: vec![pt("2MiB", Some(2.0 * MIB), 1000.0, 1e-3, false)],
                },
                Curve {
                    dimension: "nothing".into(),
                    log_x: false,
                    points: vec![],
                },
            ],
            None,
        );
        assert_eq!(out.matches("<svg ").count(), 1, "{out}");
        assert!(!out.contains("curve-nothing"));
        let (_, ops, p99) = svg(&out, "cache_size");
        assert!(ops.contains("ops/s") && p99.contains("p99"));
        assert!(!out.contains("class=\"baseline\""), "no baseline given");
    }

    #[test]
    fn the_chosen_marker_is_once_per_panel_at_the_chosen_point() {
        let out = curves(
            &[
                Curve {
                    dimension: "cache_size".into(),
                    log_x: true,
                    points: vec![
                        pt("16MiB", Some(16.0 * MIB), 900.0, 4e-3, false),
                        pt("1MiB", Some(MIB), 500.0, 9e-3, false),
                        pt("4MiB", Some(4.0 * MIB), 1200.0, 2e-3, true),
                    ],
                },
                Curve {
                    dimension: "mmap_size".into(),
                    log_x: true,
                    points: vec![pt("0", Some(0.0), 700.0, 5e-3, false)],
                },
            ],
            Some((800.0, 6e-3)),
        );
        for panel in [svg(&out, "cache_size").1, svg(&out, "cache_size").2] {
            let rings = tags(panel, r#"<circle class="chosen""#);
            assert_eq!(rings.len(), 1, "{panel}");
            assert_eq!(panel.matches(r#"class="chosen""#).count(), 1);
            assert_eq!(panel.matches(">chosen</text>").count(), 1);
            let dot = tags(panel, r#"<circle class="dot""#)
                .into_iter()
                .zip(panel.match_indices("<title>").map(|(i, _)| &panel[i..]))
                .find(|(_, title)| title.starts_with("<title>4MiB (chosen): 1200 ops/s"))
                .unwrap()
                .0;
            assert_eq!(attr(rings[0], "cx"), attr(dot, "cx"));
            assert_eq!(attr(rings[0], "cy"), attr(dot, "cy"));
            assert!(panel.contains(">configured</text>"));
        }
        assert!(!svg(&out, "mmap_size").0.contains(r#"class="chosen""#));
        // 4MiB is the best ops/s: the highest dot (smallest y) in the ops panel.
        let ops = svg(&out, "cache_size").1;
        let ring_y = attr(tags(ops, r#"<circle class="chosen""#)[0], "cy");
        for d in tags(ops, r#"<circle class="dot""#) {
            assert!(attr(d, "cy") >= ring_y);
        }
    }

    #[test]
    fn points_are_ordered_by_x_and_the_line_goes_through_the_median_per_x() {
        let out = curves(
            &[Curve {
                dimension: "readers.max_size".into(),
                log_x: false,
                points: vec![
                    pt("16", Some(16.0), 100.0, 1e-3, false),
                    pt("1", Some(1.0), 200.0, 1e-3, false),
                    pt("4", Some(4.0), 10.0, 1e-3, false),
                    pt("8", Some(8.0), 300.0, 1e-3, false),
                    pt("4", Some(4.0), 90.0, 1e-3, false),
                    pt("4", Some(4.0), 20.0, 1e-3, false),
                ],
            }],
            None,
        );
        let (_, ops, p99) = svg(&out, "readers.max_size");
        for panel in [ops, p99] {
            let xs = polyline_xs(panel);
            assert_eq!(xs.len(), 4, "one vertex per distinct x: {panel}");
            assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
            assert_eq!(
                tags(panel, r#"<circle class="dot""#).len(),
                6,
                "every run a dot"
            );
        }
        // The x ticks in the order of the values.
        let labels: Vec<&str> = ops
            .match_indices(r#"<text class="xtick""#)
            .map(|(i, _)| {
                let t = &ops[i..];
                &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()]
            })
            .collect();
        assert_eq!(labels, ["1", "4", "8", "16"]);
        // At x = 4 the line passes through the median run (20 ops/s).
        let line = tags(ops, "<polyline")[0];
        let vertex = line.split('"').nth(3).unwrap().split(' ').nth(1).unwrap();
        let median_y: f64 = vertex.split(',').nth(1).unwrap().parse().unwrap();
        let dot = tags(ops, r#"<circle class="dot""#)
            .into_iter()
            .zip(ops.match_indices("<title>").map(|(i, _)| &ops[i..]))
            .find(|(_, t)| t.starts_with("<title>4: 20 ops/s"))
            .unwrap()
            .0;
        assert_eq!(attr(dot, "cy"), median_y);
    }

    #[test]
    fn mmap_zero_on_a_log_axis_is_finite_and_left_of_the_smallest_positive() {
        let out = curves(
            &[Curve {
                dimension: "mmap_size".into(),
                log_x: true,
                points: vec![
                    pt("1GiB", Some(1024.0 * MIB), 900.0, 1e-3, false),
                    pt("0", Some(0.0), 700.0, 2e-3, true),
                    pt("256MiB", Some(256.0 * MIB), 800.0, 1.5e-3, false),
                ],
            }],
            Some((700.0, 2e-3)),
        );
        assert!(!out.contains("NaN") && !out.to_lowercase().contains("inf"));
        let (_, ops, _) = svg(&out, "mmap_size");
        let xs = polyline_xs(ops);
        assert!(xs.iter().all(|x| x.is_finite()));
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        let ring = tags(ops, r#"<circle class="chosen""#)[0];
        assert_eq!(attr(ring, "cx"), xs[0], "0 is the leftmost");
        assert!(ops.contains(">0</text>"));
    }

    #[test]
    fn labels_and_dimension_names_are_escaped() {
        let out = curves(
            &[Curve {
                dimension: "<script>alert('d')</script>".into(),
                log_x: false,
                points: vec![
                    pt("<script>x</script>", None, 1.0, 1e-3, true),
                    pt("a\"b&c", None, 2.0, 1e-3, false),
                ],
            }],
            None,
        );
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains(r#"id="curve-&lt;script&gt;alert(&#39;d&#39;)&lt;/script&gt;""#));
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt; (chosen): 1 ops/s"));
        assert!(out.contains("a&quot;b&amp;c"));
    }

    #[test]
    fn degenerate_input_never_gives_nan_or_inf() {
        let cases = vec![
            // All zeros, with a zero baseline.
            vec![
                pt("0", Some(0.0), 0.0, 0.0, true),
                pt("0", Some(0.0), 0.0, 0.0, false),
            ],
            // All equal.
            vec![pt("8MiB", Some(8.0 * MIB), 5.0, 1e-3, false); 3],
            // One point.
            vec![pt("memory", None, 123.0, 2e-4, true)],
            // Categorical, repeated and equal.
            vec![
                pt("transaction", None, 0.0, 0.0, false),
                pt("group commit", None, 0.0, 0.0, true),
                pt("transaction", None, 0.0, 0.0, false),
            ],
            // Extremes.
            vec![
                pt("tiny", Some(f64::MIN_POSITIVE), 1e-300, 5e-324, false),
                pt("huge", Some(f64::MAX), f64::MAX, f64::MAX, true),
            ],
        ];
        for (k, points) in cases.into_iter().enumerate() {
            for (log_x, baseline) in [(true, Some((0.0, 0.0))), (false, None)] {
                let c = Curve {
                    dimension: format!("d{k}"),
                    log_x,
                    points: points.clone(),
                };
                let out = curves(&[c], baseline);
                assert!(out.contains(&format!("curve-d{k}")));
                assert!(!out.contains("NaN"), "{out}");
                assert!(!out.to_lowercase().contains("inf"), "{out}");
            }
        }
    }

    #[test]
    fn a_single_point_is_a_dot_without_a_line() {
        let out = curves(
            &[Curve {
                dimension: "temp_store".into(),
                log_x: false,
                points: vec![pt("memory", None, 50.0, 1e-3, true)],
            }],
            None,
        );
        assert!(!out.contains("<polyline"));
        assert_eq!(
            out.matches(r#"<circle class="dot""#).count(),
            2,
            "one per panel"
        );
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
        let y = YAxis::linear(&[12345.0]);
        assert!(y.hi >= 12345.0 && y.ticks.len() <= 11);
        let labels: Vec<&str> = y.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "5k", "10k", "15k"]);
        let y = YAxis::log(&[2e-4, 3e-2]);
        let labels: Vec<&str> = y.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["100µs", "1ms", "10ms", "100ms"]);
    }
}
