//! PromQL functions: which are supported, what they return, and their evaluation.
//! Range functions slide a window along each series ([`crate::eval`]'s `slide`);
//! the rest work on the columns of an instant vector.

use std::collections::HashMap;
use std::f64::consts::PI;

use regex::Regex;
use vigil_storage::{Labels, METRIC_NAME, MatchOp, Sample};

use crate::error::QueryError;
use crate::eval::{Evaluator, Grid, Ser, Val};
use crate::histogram::{Bucket, bucket_quantile};
use crate::mathx::{kahan_inc, quantile};
use crate::plan::{Expr, Kind};
use crate::range_modifiers::RangeModifier;

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
fn keeps_name(name: &str) -> bool {
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

fn arg<'e>(args: &'e [Expr], i: usize, name: &str) -> Result<&'e Expr, QueryError> {
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
        return range_function(ev, name, args, g);
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
fn absent_labels(e: &Expr) -> Labels {
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
    let v = ev.eval_vector(arg(args, 1, name)?, g)?;
    let mut gid: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
    for (i, s) in v.iter().enumerate() {
        let raw = s.labels.get("le").unwrap_or("");
        let Some(le) = parse_go_float(raw) else {
            let text = format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {raw:?} for metric name {:?}",
                s.labels.metric_name().unwrap_or("")
            );
            ev.warn(text, name, Some(1));
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
                let (q, forced) = bucket_quantile(phi[step], &mut buckets);
                *slot = Some(q);
                forced_monotonic |= forced;
            }
        }
        if forced_monotonic {
            let metric =
                members.first().and_then(|&(_, i)| v[i].labels.metric_name()).unwrap_or("").to_string();
            let text = format!(
                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {metric:?}"
            );
            ev.info(text, name, Some(1));
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

fn range_function(ev: &mut Evaluator<'_>, name: &str, args: &[Expr], g: &Grid) -> Result<Val, QueryError> {
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
