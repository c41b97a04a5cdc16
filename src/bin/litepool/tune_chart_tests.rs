//! Tests of [`super`]: the curves' coordinates, markers, escaping and degenerate input.
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
    // The chosen one first, in the first row; a neighbour in the second row; the one that fits
    // in neither is left out (every tick is drawn).
    assert_eq!(
        xticks(ops),
        ["6000KiB", "6500KiB", "", "1GiB"],
        "every tick, not every label"
    );
    let rows: Vec<f64> = tags(ops, r#"<text class="xtick""#)
        .iter()
        .map(|t| attr(t, "y"))
        .collect();
    assert!(rows[0] > rows[1] && rows[1] == rows[3], "{rows:?}");
}

#[test]
fn labels_and_dimension_names_are_escaped() {
    let points = vec![
        pt("<script>x</script>*", None, 1.0, 1e-3),
        pt("a\"b&c", None, 2.0, 1e-3),
    ];
    let out = one("<script>alert('d')</script>", false, points, None);
    assert!(!out.contains("<script>"), "{out}");
    assert!(out.contains(r#"id="curve--script-alert--d----script-""#));
    assert!(out.contains(r#"data-group="&lt;script&gt;alert(&#39;d&#39;)&lt;/script&gt;""#));
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
