//! PromQL functions: which are supported, what they return, and their evaluation.
//! Functions over range vectors live in [`range`]; the rest here work on the columns
//! of an instant vector.

mod range;

pub(crate) use range::interpolate;

use std::collections::HashMap;
use std::f64::consts::PI;

use regex::Regex;
use vigil_storage::{Labels, METRIC_NAME, MatchOp};

use crate::error::QueryError;
use crate::eval::{Evaluator, Grid, Ser, Val};
use crate::histogram::{Bucket, bucket_quantile};
use crate::plan::{Expr, Kind};

/// Functions over a range vector.
const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "absent_over_time",
    "mad_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "changes",
    "resets",
    "deriv",
    "predict_linear",
    "double_exponential_smoothing",
    "holt_winters",
];

/// Functions applying a float function to every value of an instant vector.
const MATH_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn", "sin", "cos", "tan", "asin", "acos",
    "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "deg", "rad",
];

/// Date functions with an optional vector argument (default `vector(time())`).
const DATE_FUNCTIONS: &[&str] =
    &["year", "month", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute"];

/// Everything else that is implemented.
const OTHER_FUNCTIONS: &[&str] = &[
    "time",
    "pi",
    "vector",
    "scalar",
    "timestamp",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "label_replace",
    "label_join",
    "sort",
    "sort_desc",
    "sort_by_label",
    "sort_by_label_desc",
    "absent",
    "histogram_quantile",
    "histogram_fraction",
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
    "info",
    "min_of",
    "max_of",
    "start",
    "end",
    "range",
    "step",
];

/// Whether the engine evaluates the function.
pub(crate) fn is_supported(name: &str) -> bool {
    [RANGE_FUNCTIONS, MATH_FUNCTIONS, DATE_FUNCTIONS, OTHER_FUNCTIONS].iter().any(|l| l.contains(&name))
}

/// The type a call of the function returns.
pub(crate) fn return_kind(name: &str) -> Kind {
    match name {
        "time" | "pi" | "scalar" | "start" | "end" | "range" | "step" | "min_of" | "max_of" => Kind::Scalar,
        _ => Kind::Vector,
    }
}

/// Functions whose result keeps the input's metric name.
pub(super) fn keeps_name(name: &str) -> bool {
    matches!(
        name,
        "last_over_time"
            | "first_over_time"
            | "sort"
            | "sort_desc"
            | "sort_by_label"
            | "sort_by_label_desc"
            | "label_replace"
            | "label_join"
    )
}

pub(super) fn arg<'e>(args: &'e [Expr], i: usize, name: &str) -> Result<&'e Expr, QueryError> {
    args.get(i).ok_or_else(|| QueryError::Execution(format!("missing argument {i} of {name}()")))
}

fn string_arg(args: &[Expr], i: usize, name: &str) -> Result<String, QueryError> {
    match arg(args, i, name)?.unparen() {
        Expr::String(s) => Ok(s.clone()),
        _ => Err(QueryError::Execution(format!("argument {i} of {name}() must be a string literal"))),
    }
}

/// Evaluates a function call over the grid.
pub(crate) fn call(ev: &mut Evaluator<'_>, name: &str, args: &[Expr], g: &Grid) -> Result<Val, QueryError> {
    if RANGE_FUNCTIONS.contains(&name) {
        return range::range_function(ev, name, args, g);
    }
    if MATH_FUNCTIONS.contains(&name) {
        let f = math_fn(name);
        let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
        map_values(&mut v, |x| Some(f(x)));
        return Ok(Val::Vector(v));
    }
    if DATE_FUNCTIONS.contains(&name) {
        let mut v = match args.first() {
            Some(a) => ev.eval_vector(a, g)?,
            None => vec![Ser {
                labels: Labels::empty(),
                drop_name: false,
                vals: (0..g.n).map(|i| Some(g.t(i) as f64 / 1000.0)).collect(),
            }],
        };
        map_values(&mut v, |x| Some(date_part(name, x)));
        return Ok(Val::Vector(v));
    }
    match name {
        "time" => Ok(Val::Scalar((0..g.n).map(|i| g.t(i) as f64 / 1000.0).collect())),
        "pi" => Ok(Val::Scalar(vec![PI; g.n])),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(arg(args, 0, name)?, g)?;
            let b = ev.eval_scalar(arg(args, 1, name)?, g)?;
            let f = if name == "min_of" { go_min } else { go_max };
            Ok(Val::Scalar(a.into_iter().zip(b).map(|(x, y)| f(x, y)).collect()))
        }
        "start" => Ok(Val::Scalar(vec![ev.query.start as f64 / 1000.0; g.n])),
        "end" => Ok(Val::Scalar(vec![ev.query.end as f64 / 1000.0; g.n])),
        "range" => Ok(Val::Scalar(vec![(ev.query.end - ev.query.start) as f64 / 1000.0; g.n])),
        "step" => Ok(Val::Scalar(vec![ev.query.step as f64 / 1000.0; g.n])),
        "vector" => {
            let s = ev.eval_scalar(arg(args, 0, name)?, g)?;
            Ok(Val::Vector(vec![Ser {
                labels: Labels::empty(),
                drop_name: false,
                vals: s.into_iter().map(Some).collect(),
            }]))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(args, 0, name)?, g)?;
            Ok(Val::Scalar(
                (0..g.n)
                    .map(|i| {
                        let mut it = v.iter().filter_map(|s| s.vals[i]);
                        match (it.next(), it.next()) {
                            (Some(x), None) => x,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ))
        }
        "timestamp" => timestamp(ev, arg(args, 0, name)?, g),
        "round" => {
            let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
            let to = match args.get(1) {
                Some(a) => ev.eval_scalar(a, g)?,
                None => vec![1.0; g.n],
            };
            map_values_at(&mut v, |i, x| {
                let inv = 1.0 / to[i];
                Some((x * inv + 0.5).floor() / inv)
            });
            Ok(Val::Vector(v))
        }
        "clamp" => {
            let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
            let lo = ev.eval_scalar(arg(args, 1, name)?, g)?;
            let hi = ev.eval_scalar(arg(args, 2, name)?, g)?;
            map_values_at(&mut v, |i, x| {
                (hi[i] >= lo[i] || lo[i].is_nan() || hi[i].is_nan()).then(|| go_max(lo[i], go_min(hi[i], x)))
            });
            Ok(Val::Vector(v))
        }
        "clamp_min" | "clamp_max" => {
            let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
            let b = ev.eval_scalar(arg(args, 1, name)?, g)?;
            let is_min = name == "clamp_min";
            map_values_at(&mut v, |i, x| Some(if is_min { go_max(x, b[i]) } else { go_min(x, b[i]) }));
            Ok(Val::Vector(v))
        }
        "label_replace" => label_replace(ev, args, g),
        "label_join" => label_join(ev, args, g),
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
            warn_sort_in_range_query(ev, name);
            if g.n == 1 {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.total_cmp(&x),
                        _ => x.total_cmp(&y),
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
            warn_sort_in_range_query(ev, name);
            let names = (1..args.len()).map(|i| string_arg(args, i, name)).collect::<Result<Vec<_>, _>>()?;
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                let (la, lb) = (a.effective_labels(), b.effective_labels());
                let mut o = std::cmp::Ordering::Equal;
                for n in &names {
                    o = natural_cmp(la.get(n).unwrap_or(""), lb.get(n).unwrap_or(""));
                    if o.is_ne() {
                        break;
                    }
                }
                let o = if o.is_eq() { la.cmp(&lb) } else { o };
                if desc { o.reverse() } else { o }
            });
            Ok(Val::Vector(v))
        }
        "absent" => {
            let a = arg(args, 0, name)?;
            let v = ev.eval_vector(a, g)?;
            let labels = absent_labels(a);
            let vals = (0..g.n).map(|i| v.iter().all(|s| s.vals[i].is_none()).then_some(1.0)).collect();
            Ok(Val::Vector(vec![Ser { labels, drop_name: false, vals }]))
        }
        "histogram_quantile" => histogram_quantile(ev, args, g),
        "histogram_fraction" => histogram_fraction(ev, args, g),
        // These read native histograms only; float samples (all Vigil stores) are
        // ignored, as Prometheus ignores them.
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
            ev.eval_vector(arg(args, 0, name)?, g)?;
            Ok(Val::Vector(Vec::new()))
        }
        "info" => crate::info::info(ev, args, g),
        other => Err(QueryError::Execution(format!("function {other}() is not supported yet"))),
    }
}

/// Range queries are always sorted by labels; Prometheus says so when asked to sort.
fn warn_sort_in_range_query(ev: &mut Evaluator<'_>, name: &str) {
    if ev.query.step > 0 {
        let text = "PromQL warning: sort is ineffective for range queries since results are always ordered by labels";
        ev.warn(text.into(), name, None);
    }
}

/// Applies `f` to every value; a `None` removes the point. Marks the name for dropping.
fn map_values(v: &mut [Ser], mut f: impl FnMut(f64) -> Option<f64>) {
    map_values_at(v, |_, x| f(x))
}

fn map_values_at(v: &mut [Ser], mut f: impl FnMut(usize, f64) -> Option<f64>) {
    for s in v {
        s.drop_name = true;
        for (i, x) in s.vals.iter_mut().enumerate() {
            if let Some(val) = *x {
                *x = f(i, val);
            }
        }
    }
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

fn math_fn(name: &str) -> fn(f64) -> f64 {
    match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |x: f64| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x: f64| x * 180.0 / PI,
        "rad" => |x: f64| x * PI / 180.0,
        _ => |x: f64| x,
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(name: &str, v: f64) -> f64 {
    // Prometheus truncates the value to whole seconds first.
    let secs = v as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let month_len = [31, if is_leap(y) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    match name {
        "year" => y as f64,
        "month" => m as f64,
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => (month_len[..(m - 1) as usize].iter().sum::<u32>() + d) as f64,
        "days_in_month" => month_len[(m - 1) as usize] as f64,
        "hour" => (sod / 3600) as f64,
        "minute" => (sod % 3600 / 60) as f64,
        _ => f64::NAN,
    }
}

/// Compares strings with runs of digits ordered by their numeric value.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = dx.iter().skip_while(|c| **c == b'0').count();
                let ty = dy.iter().skip_while(|c| **c == b'0').count();
                let o = tx.cmp(&ty).then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]));
                if o.is_ne() {
                    return o;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn timestamp(ev: &mut Evaluator<'_>, a: &Expr, g: &Grid) -> Result<Val, QueryError> {
    if let Expr::Selector(sel) = a.unparen() {
        let ss = ev.select_instant(sel, g)?;
        return Ok(Val::Vector(
            ss.into_iter()
                .map(|(labels, pts)| Ser {
                    labels,
                    drop_name: true,
                    vals: pts.into_iter().map(|p| p.map(|s| s.t as f64 / 1000.0)).collect(),
                })
                .collect(),
        ));
    }
    let mut v = ev.eval_vector(a, g)?;
    map_values_at(&mut v, |i, _| Some(g.t(i) as f64 / 1000.0));
    Ok(Val::Vector(v))
}

/// Labels of `absent()`'s answer: the selector's equality matchers (a label matched
/// more than once is left out).
pub(super) fn absent_labels(e: &Expr) -> Labels {
    let sel = match e {
        Expr::Selector(s) | Expr::Range { sel: s, .. } => s,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().to_builder();
    let mut seen: Vec<&str> = Vec::new();
    for m in &sel.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !seen.contains(&m.name.as_str()) {
            b.set(m.name.clone(), m.value.clone());
            seen.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

fn label_replace(ev: &mut Evaluator<'_>, args: &[Expr], g: &Grid) -> Result<Val, QueryError> {
    let name = "label_replace";
    let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
    let dst = string_arg(args, 1, name)?;
    let repl = string_arg(args, 2, name)?;
    let src = string_arg(args, 3, name)?;
    let re_src = string_arg(args, 4, name)?;
    let re = Regex::new(&format!("^(?s:{re_src})$")).map_err(|_| {
        QueryError::Execution(format!("invalid regular expression in label_replace(): {re_src}"))
    })?;
    if dst.is_empty() {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    for s in &mut v {
        let val = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&val) {
            let mut out = String::new();
            caps.expand(&repl, &mut out);
            s.labels = s.labels.to_builder().set(dst.clone(), out).build();
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(v))
}

fn label_join(ev: &mut Evaluator<'_>, args: &[Expr], g: &Grid) -> Result<Val, QueryError> {
    let name = "label_join";
    let mut v = ev.eval_vector(arg(args, 0, name)?, g)?;
    let dst = string_arg(args, 1, name)?;
    let sep = string_arg(args, 2, name)?;
    let srcs = (3..args.len()).map(|i| string_arg(args, i, name)).collect::<Result<Vec<_>, _>>()?;
    if dst.is_empty() {
        return Err(QueryError::Execution(format!("invalid destination label name in label_join(): {dst}")));
    }
    for s in &mut v {
        let joined = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect::<Vec<_>>().join(&sep);
        s.labels = s.labels.to_builder().set(dst.clone(), joined).build();
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    Ok(Val::Vector(v))
}

fn histogram_quantile(ev: &mut Evaluator<'_>, args: &[Expr], g: &Grid) -> Result<Val, QueryError> {
    let name = "histogram_quantile";
    let phi = ev.eval_scalar(arg(args, 0, name)?, g)?;
    ev.check_quantile_param(&phi, name, 0);
    classic_buckets(ev, args, g, name, 1, |step, buckets| bucket_quantile(phi[step], buckets))
}

/// `histogram_fraction(lower, upper, buckets)` over classic buckets.
fn histogram_fraction(ev: &mut Evaluator<'_>, args: &[Expr], g: &Grid) -> Result<Val, QueryError> {
    let name = "histogram_fraction";
    let lower = ev.eval_scalar(arg(args, 0, name)?, g)?;
    let upper = ev.eval_scalar(arg(args, 1, name)?, g)?;
    classic_buckets(ev, args, g, name, 2, |step, buckets| {
        crate::histogram::bucket_fraction(lower[step], upper[step], buckets)
    })
}

/// Groups argument `arg_index` into classic histograms by their labels without `le`
/// and computes `f` per step over each group's buckets.
fn classic_buckets(
    ev: &mut Evaluator<'_>,
    args: &[Expr],
    g: &Grid,
    name: &str,
    arg_index: usize,
    f: impl Fn(usize, &mut Vec<Bucket>) -> (f64, bool),
) -> Result<Val, QueryError> {
    let v = ev.eval_vector(arg(args, arg_index, name)?, g)?;
    let mut gid: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
    for (i, s) in v.iter().enumerate() {
        let raw = s.labels.get("le").unwrap_or("");
        let Some(le) = parse_go_float(raw) else {
            let text = format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {raw:?} for metric name {:?}",
                s.labels.metric_name().unwrap_or("")
            );
            ev.warn(text, name, Some(arg_index));
            continue;
        };
        // The name stays in the key (dropped at the end), as with delayed name removal.
        let key = s.labels.to_builder().del("le").build();
        let gi = *gid.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[gi].1.push((le, i));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut buckets = Vec::new();
    for (labels, members) in groups {
        let mut forced_monotonic = false;
        let mut vals = vec![None; g.n];
        for (step, slot) in vals.iter_mut().enumerate() {
            buckets.clear();
            buckets.extend(
                members.iter().filter_map(|&(le, i)| v[i].vals[step].map(|c| Bucket { upper: le, count: c })),
            );
            if !buckets.is_empty() {
                let (q, forced) = f(step, &mut buckets);
                *slot = Some(q);
                forced_monotonic |= forced;
            }
        }
        if forced_monotonic {
            let metric =
                members.first().and_then(|&(_, i)| v[i].labels.metric_name()).unwrap_or("").to_string();
            let text = format!(
                "PromQL info: input to {name} needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#{name}) for metric name {metric:?}"
            );
            ev.info(text, name, Some(arg_index));
        }
        out.push(Ser { labels, drop_name: true, vals });
    }
    Ok(Val::Vector(out))
}

/// Parses a bucket bound as Go's `strconv.ParseFloat` would (`+Inf`, `1e3`, ...).
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("infinity") || t.eq_ignore_ascii_case("+infinity") {
        return if t.is_empty() { None } else { Some(f64::INFINITY) };
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_parts() {
        // 2020-02-29T13:45:00Z
        let t = 1_582_983_900.0;
        assert_eq!(date_part("year", t), 2020.0);
        assert_eq!(date_part("month", t), 2.0);
        assert_eq!(date_part("day_of_month", t), 29.0);
        assert_eq!(date_part("days_in_month", t), 29.0);
        assert_eq!(date_part("day_of_year", t), 60.0);
        assert_eq!(date_part("day_of_week", t), 6.0);
        assert_eq!(date_part("hour", t), 13.0);
        assert_eq!(date_part("minute", t), 45.0);
    }
}
