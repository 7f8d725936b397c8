//! Functions over range vectors (`rate`, `*_over_time`, `deriv`, ...): each slides
//! one window along every series across all steps, including the `anchored` and
//! `smoothed` forms.

use vigil_storage::Sample;

use super::{absent_labels, arg, keeps_name};
use crate::error::QueryError;
use crate::eval::{Evaluator, Grid, Ser, Val};
use crate::mathx::{kahan_inc, quantile};
use crate::plan::Expr;
use crate::range_modifiers::RangeModifier;

pub(super) fn range_function(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[Expr],
    g: &Grid,
) -> Result<Val, QueryError> {
    // quantile_over_time takes its scalar first; the rest take the range vector first.
    let (range_arg, scalar_args): (&Expr, Vec<&Expr>) = if name == "quantile_over_time" {
        (arg(args, 1, name)?, vec![arg(args, 0, name)?])
    } else {
        (arg(args, 0, name)?, args.iter().skip(1).collect())
    };
    let mut params = Vec::with_capacity(scalar_args.len());
    for a in scalar_args {
        params.push(ev.eval_scalar(a, g)?);
    }
    if name == "quantile_over_time" {
        ev.check_quantile_param(&params[0], name, 0);
    }
    let input = ev.range_input(range_arg, g)?;
    if matches!(name, "rate" | "increase") {
        warn_possible_non_counters(ev, name, &input);
    }
    if input.modifier != RangeModifier::None {
        return modified_range_function(ev, name, &input, g);
    }
    if name == "absent_over_time" {
        let mut vals = vec![Some(1.0); g.n];
        let present = crate::eval::slide_windows(ev, &input, g, |_, _| Some(1.0))?;
        for (_, v) in &present {
            for (o, x) in vals.iter_mut().zip(v) {
                if x.is_some() {
                    *o = None;
                }
            }
        }
        return Ok(Val::Vector(vec![Ser {
            labels: absent_labels(range_arg.unparen()),
            drop_name: false,
            vals,
        }]));
    }
    if matches!(name, "double_exponential_smoothing" | "holt_winters") {
        for (p, what) in params.iter().zip(["smoothing", "trend"]) {
            if let Some(bad) = p.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
                return Err(QueryError::Execution(format!(
                    "invalid {what} factor. Expected: 0 < {} < 1, got: {bad:.6}",
                    if what == "smoothing" { "sf" } else { "tf" }
                )));
            }
        }
    }
    let p = |i: usize, step: usize| params.get(i).and_then(|v| v.get(step)).copied().unwrap_or(f64::NAN);
    let results = crate::eval::slide_windows(ev, &input, g, |pts, w| match name {
        "rate" => extrapolated_rate(pts, w, true, true),
        "increase" => extrapolated_rate(pts, w, true, false),
        "delta" => extrapolated_rate(pts, w, false, false),
        "irate" => instant_value(pts, true),
        "idelta" => instant_value(pts, false),
        "avg_over_time" => Some(avg(pts)),
        "min_over_time" => {
            Some(pts.iter().fold(pts[0].v, |m, s| if s.v < m || m.is_nan() { s.v } else { m }))
        }
        "max_over_time" => {
            Some(pts.iter().fold(pts[0].v, |m, s| if s.v > m || m.is_nan() { s.v } else { m }))
        }
        "sum_over_time" => {
            let (s, c) = pts.iter().fold((0.0, 0.0), |(s, c), x| kahan_inc(x.v, s, c));
            Some(s + c)
        }
        "count_over_time" => Some(pts.len() as f64),
        "quantile_over_time" => {
            let mut vals: Vec<f64> = pts.iter().map(|s| s.v).collect();
            Some(quantile(p(0, w.step), &mut vals))
        }
        "stddev_over_time" => Some(variance(pts).sqrt()),
        "stdvar_over_time" => Some(variance(pts)),
        "last_over_time" => pts.last().map(|s| s.v),
        "first_over_time" => pts.first().map(|s| s.v),
        "present_over_time" => Some(1.0),
        "ts_of_min_over_time" => Some(extreme_time(pts, |a, b| a < b) as f64 / 1000.0),
        "ts_of_max_over_time" => Some(extreme_time(pts, |a, b| a > b) as f64 / 1000.0),
        "ts_of_last_over_time" => pts.last().map(|s| s.t as f64 / 1000.0),
        "ts_of_first_over_time" => pts.first().map(|s| s.t as f64 / 1000.0),
        "mad_over_time" if pts.iter().any(|s| s.v.is_nan()) => Some(f64::NAN),
        "mad_over_time" => {
            let mut vals: Vec<f64> = pts.iter().map(|s| s.v).collect();
            let median = quantile(0.5, &mut vals);
            let mut dev: Vec<f64> = vals.iter().map(|v| (v - median).abs()).collect();
            Some(quantile(0.5, &mut dev))
        }
        "changes" => Some(
            pts.windows(2).filter(|w| !(w[0].v == w[1].v || (w[0].v.is_nan() && w[1].v.is_nan()))).count()
                as f64,
        ),
        "resets" => Some(pts.windows(2).filter(|w| w[1].v < w[0].v).count() as f64),
        "deriv" => (pts.len() >= 2).then(|| linear_regression(pts, pts[0].t).0),
        "predict_linear" => (pts.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(pts, w.t);
            intercept + slope * p(0, w.step)
        }),
        "double_exponential_smoothing" | "holt_winters" => smoothing(pts, p(0, w.step), p(1, w.step)),
        _ => None,
    })?;
    let keep = keeps_name(name);
    Ok(Val::Vector(
        results
            .into_iter()
            .map(|(si, vals)| {
                let s = &input.series[si];
                Ser { labels: s.labels.clone(), drop_name: if keep { s.drop_name } else { true }, vals }
            })
            .collect(),
    ))
}

/// Name endings of the metrics `rate` and `increase` expect (counters and the
/// counter parts of histograms and summaries).
const COUNTER_SUFFIXES: &[&str] = &["_total", "_sum", "_count", "_bucket"];

/// Prometheus notes when `rate`/`increase` are given a metric whose name does not
/// look like a counter's.
fn warn_possible_non_counters(ev: &mut Evaluator<'_>, name: &str, input: &crate::eval::RangeInput) {
    let mut seen: Vec<&str> = Vec::new();
    for s in &input.series {
        let Some(metric) = s.labels.metric_name() else { continue };
        if COUNTER_SUFFIXES.iter().any(|x| metric.ends_with(x)) || seen.contains(&metric) {
            continue;
        }
        seen.push(metric);
        let text = format!(
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"
        );
        ev.info(text, name, Some(0));
    }
}

/// Functions that accept `anchored`, as Prometheus lists them in its error.
const ANCHORED_FUNCTIONS: &[&str] = &["changes", "delta", "increase", "rate", "resets"];
/// Functions that accept `smoothed`.
const SMOOTHED_FUNCTIONS: &[&str] = &["delta", "increase", "rate"];

/// A range function over an `anchored` or `smoothed` range selector: the window's
/// points are completed from the samples around it and never extrapolated.
fn modified_range_function(
    ev: &mut Evaluator<'_>,
    name: &str,
    input: &crate::eval::RangeInput,
    g: &Grid,
) -> Result<Val, QueryError> {
    let allowed =
        if input.modifier == RangeModifier::Anchored { ANCHORED_FUNCTIONS } else { SMOOTHED_FUNCTIONS };
    if !allowed.contains(&name) {
        return Err(QueryError::Execution(format!(
            "{} modifier can only be used with: {} - not with {name}",
            input.modifier.name(),
            allowed.join(", ")
        )));
    }
    let counter = matches!(name, "rate" | "increase");
    let lookback = input.lookback;
    let results = crate::eval::slide_in_context(ev, input, g, |all, lo, hi, w| {
        let mut pts: Vec<Sample> = Vec::with_capacity(hi.saturating_sub(lo) + 2);
        match input.modifier {
            RangeModifier::Anchored => {
                if lo >= hi {
                    return None;
                }
                if lo > 0 && all[lo - 1].t > w.start - lookback {
                    pts.push(Sample::new(w.start, all[lo - 1].v));
                }
                pts.extend_from_slice(&all[lo..hi]);
            }
            _ => {
                let (first, last) = smoothed_edges(all, lo, hi, w, lookback, counter)?;
                pts.push(first);
                pts.extend(all[lo..hi].iter().filter(|s| s.t > first.t && s.t < last.t));
                pts.push(last);
            }
        }
        let v = match name {
            "changes" => {
                pts.windows(2).filter(|p| !(p[0].v == p[1].v || (p[0].v.is_nan() && p[1].v.is_nan()))).count()
                    as f64
            }
            "resets" => pts.windows(2).filter(|p| p[1].v < p[0].v).count() as f64,
            _ => {
                let (first, last) = (pts[0], pts[pts.len() - 1]);
                let mut d = last.v - first.v;
                if counter {
                    for p in pts.windows(2) {
                        if p[1].v < p[0].v {
                            d += p[0].v;
                        }
                    }
                }
                if name == "rate" { d / (w.range as f64 / 1000.0) } else { d }
            }
        };
        Some(v)
    })?;
    Ok(Val::Vector(
        results
            .into_iter()
            .map(|(si, vals)| Ser { labels: input.series[si].labels.clone(), drop_name: true, vals })
            .collect(),
    ))
}

/// The interpolated points at a smoothed window's start and end, or `None` when the
/// data lies entirely before or after the window.
fn smoothed_edges(
    all: &[Sample],
    lo: usize,
    hi: usize,
    w: &crate::eval::Window,
    lookback: i64,
    counter: bool,
) -> Option<(Sample, Sample)> {
    // Start: interpolate between the last sample at or before it and the next one.
    let first = if lo > 0 && all[lo - 1].t > w.start - lookback {
        let a = all[lo - 1];
        match all.get(lo) {
            Some(&b) => Sample::new(w.start, interpolate(a, b, w.start, counter)),
            None => return None,
        }
    } else if lo < hi {
        all[lo]
    } else {
        return None;
    };
    // End: interpolate between the last sample at or before it and the next one.
    let last = if hi > 0 {
        let a = all[hi - 1];
        match all.get(hi) {
            Some(&b) if b.t < w.end + lookback && a.t != w.end => {
                Sample::new(w.end, interpolate(a, b, w.end, counter))
            }
            _ if a.t > w.start => a,
            _ => return None,
        }
    } else {
        return None;
    };
    Some((first, last))
}

/// The value at `t` on the line from `a` to `b`; across a counter reset the counter
/// is taken to have restarted from zero at `a`.
pub(crate) fn interpolate(a: Sample, b: Sample, t: i64, counter: bool) -> f64 {
    if t <= a.t {
        return a.v;
    }
    let frac = (t - a.t) as f64 / (b.t - a.t) as f64;
    if counter && b.v < a.v {
        return b.v * frac;
    }
    a.v + (b.v - a.v) * frac
}

/// `rate`, `increase` and `delta` with Prometheus's extrapolation: to the window's
/// edges when the data reaches close to them, else by half an average interval, and
/// never below zero for counters.
pub(crate) fn extrapolated_rate(
    pts: &[Sample],
    w: &crate::eval::Window,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (first, last) = (pts[0], pts[pts.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for s in &pts[1..] {
            if s.v < prev {
                result += prev;
            }
            prev = s.v;
        }
    }
    let mut to_start = (first.t - w.start) as f64 / 1000.0;
    let mut to_end = (w.end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_gap = sampled / (pts.len() - 1) as f64;
    // A gap to the edge of up to 110% of the average interval counts as "reaching" it.
    let threshold = avg_gap * EXTRAPOLATION_THRESHOLD;
    if to_start >= threshold {
        to_start = avg_gap / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter cannot go below zero: stop extrapolating where it would reach it.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_gap / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// How far past the average sample interval a window edge may be and still be
/// extrapolated to (Prometheus's `extrapolationThreshold`).
const EXTRAPOLATION_THRESHOLD: f64 = 1.1;

/// Timestamp of the first point whose value beats all earlier ones under `better`
/// (a NaN is beaten by anything).
fn extreme_time(pts: &[Sample], better: impl Fn(f64, f64) -> bool) -> i64 {
    let mut best = pts[0];
    for s in &pts[1..] {
        if better(s.v, best.v) || best.v.is_nan() {
            best = *s;
        }
    }
    best.t
}

/// `irate` and `idelta`: from the last two points.
fn instant_value(pts: &[Sample], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (prev, last) = (pts[pts.len() - 2], pts[pts.len() - 1]);
    let mut v = if is_rate && last.v < prev.v { last.v } else { last.v - prev.v };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

fn avg(pts: &[Sample]) -> f64 {
    let (mut sum, mut count) = (pts[0].v, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, s) in pts[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(s.v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(s.v / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

fn variance(pts: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in pts {
        count += 1.0;
        let delta = s.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (s.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// Least-squares slope and intercept, with x measured in seconds from `intercept_t`.
fn linear_regression(pts: &[Sample], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].v;
    let mut const_y = true;
    for (i, s) in pts.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn smoothing(pts: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, pts[0].v);
    let mut b = pts[1].v - pts[0].v;
    for (i, s) in pts.iter().enumerate().skip(1) {
        let x = sf * s.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Window;

    fn win(start: i64, end: i64) -> Window {
        Window { start, end, t: end, range: end - start, step: 0 }
    }

    #[test]
    fn rate_extrapolates_to_window_edges() {
        // Samples every 10s from 10s to 50s, window (0, 60s]: both edges within 1.1×10s.
        let pts: Vec<Sample> = (1..=5).map(|i| Sample::new(i * 10_000, i as f64 * 10.0)).collect();
        let r = extrapolated_rate(&pts, &win(0, 60_000), true, true).unwrap();
        // 40 over 40s sampled, extrapolated by 10s each side => 60 over 60s.
        assert!((r - 1.0).abs() < 1e-12, "{r}");
    }

    #[test]
    fn rate_stops_extrapolating_at_counter_zero() {
        // First value 1 at 30s, slope 1/s: zero point is 1s before the first sample.
        let pts = vec![Sample::new(30_000, 1.0), Sample::new(60_000, 31.0)];
        let inc = extrapolated_rate(&pts, &win(0, 60_000), true, false).unwrap();
        // Sampled 30s; start extrapolation capped at 1s (zero point); no end gap.
        assert!((inc - 30.0 * 31.0 / 30.0).abs() < 1e-9, "{inc}");
    }

    #[test]
    fn rate_handles_counter_resets() {
        let pts = vec![Sample::new(0, 10.0), Sample::new(10_000, 2.0), Sample::new(20_000, 5.0)];
        let inc = extrapolated_rate(&pts, &win(-10_000, 20_000), true, false).unwrap();
        // The reset adds 10: increase 5 over 20s. The 10s gap to the window start is
        // under 1.1 × the 10s interval and the zero point lies 40s back, so the full
        // 10s is extrapolated: factor 30/20.
        assert!((inc - 7.5).abs() < 1e-9, "{inc}");
    }

    #[test]
    fn delta_is_not_capped_at_zero() {
        let pts = vec![Sample::new(10_000, 5.0), Sample::new(20_000, 1.0)];
        let d = extrapolated_rate(&pts, &win(0, 30_000), false, false).unwrap();
        assert!((d - (-12.0)).abs() < 1e-9, "{d}");
    }

    #[test]
    fn irate_uses_last_two_points() {
        let pts = vec![Sample::new(0, 1.0), Sample::new(10_000, 5.0), Sample::new(20_000, 3.0)];
        assert_eq!(instant_value(&pts, true), Some(0.3));
        assert_eq!(instant_value(&pts, false), Some(-2.0));
    }
}
