//! Aggregation operators, computed step by step over the columns of their input.

use std::collections::HashMap;

use vigil_storage::{Labels, METRIC_NAME};

use super::{Evaluator, Grid, Ser, Val};
use crate::error::QueryError;
use crate::mathx::{format_float, kahan_inc, quantile};
use crate::plan::{AggOp, Expr, Grouping};

/// Running state of one group at one step.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: f64,
    value: f64,
    comp: f64,
    mean: f64,
    incremental: bool,
}

fn group_labels(l: &Labels, g: &Grouping) -> Labels {
    let mut b = l.to_builder();
    if g.without {
        b.retain(|n| n != METRIC_NAME && !g.labels.iter().any(|x| x == n));
    } else {
        b.retain(|n| g.labels.iter().any(|x| x == n));
    }
    b.build()
}

pub(super) fn aggregate(
    ev: &mut Evaluator<'_>,
    op: AggOp,
    expr: &Expr,
    param: Option<&Expr>,
    grouping: &Grouping,
    g: &Grid,
) -> Result<Val, QueryError> {
    let param_scalar = match (op, param) {
        (AggOp::Topk | AggOp::Bottomk | AggOp::Quantile | AggOp::Limitk | AggOp::LimitRatio, Some(p)) => {
            Some(ev.eval_scalar(p, g)?)
        }
        _ => None,
    };
    let param_string = match (op, param) {
        (AggOp::CountValues, Some(p)) => match ev.eval(p, g)? {
            Val::Str(s) => Some(s),
            _ => return Err(QueryError::Execution("count_values needs a string parameter".into())),
        },
        _ => None,
    };
    let mut input = ev.eval_vector(expr, g)?;
    input.retain(|s| s.vals.iter().any(Option::is_some));
    for s in &mut input {
        if s.drop_name {
            s.labels = s.effective_labels();
            s.drop_name = false;
        }
    }
    // Number the groups in order of first appearance.
    let mut gid: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Labels> = Vec::new();
    let member: Vec<usize> = input
        .iter()
        .map(|s| {
            let k = group_labels(&s.labels, grouping);
            *gid.entry(k.clone()).or_insert_with(|| {
                groups.push(k);
                groups.len() - 1
            })
        })
        .collect();

    match op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk => {
            let k = param_scalar.unwrap_or_default();
            check_k(&k)?;
            return Ok(Val::Vector(select_k(op, input, &member, groups.len(), &k, g)));
        }
        AggOp::LimitRatio => {
            let mut ratio = param_scalar.unwrap_or_default();
            if ratio.iter().any(|r| r.is_nan()) {
                return Err(QueryError::Execution("Ratio value is NaN".into()));
            }
            if let Some(bad) = ratio.iter().copied().find(|r| !(-1.0..=1.0).contains(r)) {
                let capped = bad.clamp(-1.0, 1.0);
                let text = format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                    crate::annotations::go_g(bad),
                    crate::annotations::go_g(capped)
                );
                ev.warn(text, "limit_ratio", Some(0));
                ratio.iter_mut().for_each(|r| *r = r.clamp(-1.0, 1.0));
            }
            return Ok(Val::Vector(limit_ratio(input, &ratio)));
        }
        AggOp::Quantile => {
            let phi = param_scalar.unwrap_or_default();
            ev.check_quantile_param(&phi, "quantile", 0);
            return Ok(Val::Vector(quantiles(&input, &member, groups, &phi, g)));
        }
        AggOp::CountValues => {
            let label = param_string.unwrap_or_default();
            return count_values(&input, &member, &groups, &label, g).map(Val::Vector);
        }
        _ => {}
    }

    let mut acc = vec![vec![None::<Acc>; g.n]; groups.len()];
    for (s, &gi) in input.iter().zip(&member) {
        for (step, v) in s.vals.iter().enumerate() {
            let Some(v) = *v else { continue };
            let slot = &mut acc[gi][step];
            match slot {
                None if matches!(op, AggOp::Stddev | AggOp::Stdvar) => {
                    // Start from zero so that a lone NaN or Inf gives NaN, as in Prometheus.
                    let mut a = Acc::default();
                    add(op, &mut a, v);
                    *slot = Some(a);
                }
                None => *slot = Some(Acc { count: 1.0, value: v, comp: 0.0, mean: v, incremental: false }),
                Some(a) => add(op, a, v),
            }
        }
    }
    let out = groups
        .into_iter()
        .zip(acc)
        .map(|(labels, accs)| Ser {
            labels,
            drop_name: false,
            vals: accs.into_iter().map(|a| a.map(|a| finish(op, &a))).collect(),
        })
        .collect();
    Ok(Val::Vector(out))
}

fn add(op: AggOp, a: &mut Acc, v: f64) {
    a.count += 1.0;
    match op {
        AggOp::Sum => (a.value, a.comp) = kahan_inc(v, a.value, a.comp),
        AggOp::Avg => {
            if !a.incremental {
                let (s, c) = kahan_inc(v, a.value, a.comp);
                if !s.is_infinite() {
                    (a.value, a.comp) = (s, c);
                    return;
                }
                // The sum would overflow: continue with an incremental mean.
                a.incremental = true;
                a.mean = a.value / (a.count - 1.0);
                a.comp /= a.count - 1.0;
            }
            let q = (a.count - 1.0) / a.count;
            (a.mean, a.comp) = kahan_inc(v / a.count, q * a.mean, q * a.comp);
        }
        AggOp::Min if a.value > v || a.value.is_nan() => a.value = v,
        AggOp::Max if a.value < v || a.value.is_nan() => a.value = v,
        AggOp::Stddev | AggOp::Stdvar => {
            let delta = v - a.mean;
            a.mean += delta / a.count;
            a.value += delta * (v - a.mean);
        }
        _ => {}
    }
}

fn finish(op: AggOp, a: &Acc) -> f64 {
    match op {
        AggOp::Sum => a.value + a.comp,
        AggOp::Avg => {
            if a.incremental {
                a.mean + a.comp
            } else {
                a.value / a.count + a.comp / a.count
            }
        }
        AggOp::Count => a.count,
        AggOp::Group => 1.0,
        AggOp::Stdvar => a.value / a.count,
        AggOp::Stddev => (a.value / a.count).sqrt(),
        _ => a.value,
    }
}

/// Prometheus refuses a `k` that is NaN or does not fit an int64.
fn check_k(k: &[f64]) -> Result<(), QueryError> {
    for &v in k {
        if v.is_nan() {
            return Err(QueryError::Execution("Parameter value is NaN".into()));
        }
        if !(-I64_LIMIT..I64_LIMIT).contains(&v) {
            return Err(QueryError::Execution(format!("Scalar value {v} overflows int64")));
        }
    }
    Ok(())
}

/// 2^63: the first float beyond int64's range.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// `topk`, `bottomk` and `limitk`: the output series are input series, kept only at
/// the steps where they were chosen.
fn select_k(op: AggOp, input: Vec<Ser>, member: &[usize], ngroups: usize, k: &[f64], g: &Grid) -> Vec<Ser> {
    let mut out: Vec<Ser> = Vec::new();
    let mut out_of: Vec<Option<usize>> = vec![None; input.len()];
    let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); ngroups];
    for step in 0..g.n {
        let kf = k.get(step).copied().unwrap_or(0.0);
        if kf.is_nan() || kf < 1.0 {
            continue;
        }
        let k = if kf >= input.len() as f64 { input.len() } else { kf as usize };
        by_group.iter_mut().for_each(Vec::clear);
        for (i, s) in input.iter().enumerate() {
            if s.vals[step].is_some() {
                by_group[member[i]].push(i);
            }
        }
        for members in &mut by_group {
            let val = |i: &usize| input[*i].vals[step].unwrap_or(f64::NAN);
            if op != AggOp::Limitk {
                *members = go_heap_select(members, k, op == AggOp::Topk, |i| val(&i));
            }
            match op {
                // NaN counts as the smallest value for topk and the largest for bottomk.
                AggOp::Topk => members.sort_by(|a, b| {
                    let (x, y) = (val(a), val(b));
                    y.partial_cmp(&x).unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
                }),
                AggOp::Bottomk => members.sort_by(|a, b| {
                    let (x, y) = (val(a), val(b));
                    x.partial_cmp(&y).unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
                }),
                _ => {}
            }
            for &i in members.iter().take(k) {
                let oi = *out_of[i].get_or_insert_with(|| {
                    out.push(Ser {
                        labels: input[i].labels.clone(),
                        drop_name: input[i].drop_name,
                        vals: vec![None; g.n],
                    });
                    out.len() - 1
                });
                out[oi].vals[step] = input[i].vals[step];
            }
        }
    }
    out
}

/// Picks `k` of `members` (in input order) for `topk` (`top`) or `bottomk` the way
/// Prometheus does: a binary heap of the best `k` so far, replacing its root only by a
/// strictly better value. Which of several equal values survive depends on that heap's
/// exact moves, so they are replayed here (Go's `container/heap`).
fn go_heap_select(members: &[usize], k: usize, top: bool, val: impl Fn(usize) -> f64) -> Vec<usize> {
    // The root is the worst kept value; NaN is always "worse".
    let less = |a: usize, b: usize| {
        let (x, y) = (val(a), val(b));
        x.is_nan() || if top { x < y } else { x > y }
    };
    let mut h: Vec<usize> = Vec::with_capacity(k);
    for &m in members {
        if h.len() < k {
            h.push(m);
            let last = h.len() - 1;
            heap_up(&mut h, last, &less);
        } else if k > 0 {
            let (root, v) = (val(h[0]), val(m));
            let better = if top { root < v } else { root > v };
            if better || (root.is_nan() && !v.is_nan()) {
                h[0] = m;
                if k > 1 && !heap_down(&mut h, 0, &less) {
                    heap_up(&mut h, 0, &less);
                }
            }
        }
    }
    h
}

fn heap_up(h: &mut [usize], mut j: usize, less: &impl Fn(usize, usize) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j], h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Sifts `i0` down; true if it moved.
fn heap_down(h: &mut [usize], i0: usize, less: &impl Fn(usize, usize) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(h[j1 + 1], h[j1]) {
            j = j1 + 1;
        }
        if !less(h[j], h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

/// Where a series falls in [0, 1] for `limit_ratio`: its label hash scaled by
/// u64::MAX, so the same series are chosen by every query and every server. The hash
/// is Prometheus's (`stringlabels` build, the default since 3.0): xxh64 over each
/// name and value, each preceded by its length as a uvarint.
fn ratio_offset(labels: &Labels) -> f64 {
    let mut buf = Vec::new();
    for l in labels.iter() {
        push_uvarint(&mut buf, l.name.len());
        buf.extend_from_slice(l.name.as_bytes());
        push_uvarint(&mut buf, l.value.len());
        buf.extend_from_slice(l.value.as_bytes());
    }
    xxhash_rust::xxh64::xxh64(&buf, 0) as f64 / u64::MAX as f64
}

fn push_uvarint(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// `limit_ratio(r, v)`: keeps the series whose offset lies below `r` (or, for a
/// negative `r`, at or above `1 + r`), at every step.
fn limit_ratio(mut input: Vec<Ser>, ratio: &[f64]) -> Vec<Ser> {
    for s in &mut input {
        let off = ratio_offset(&s.labels);
        for (v, &r) in s.vals.iter_mut().zip(ratio) {
            let keep = (r >= 0.0 && off < r) || (r < 0.0 && off >= 1.0 + r);
            if !keep {
                *v = None;
            }
        }
    }
    input.retain(|s| s.vals.iter().any(Option::is_some));
    input
}

fn quantiles(input: &[Ser], member: &[usize], groups: Vec<Labels>, phi: &[f64], g: &Grid) -> Vec<Ser> {
    let mut out: Vec<Ser> =
        groups.into_iter().map(|labels| Ser { labels, drop_name: false, vals: vec![None; g.n] }).collect();
    let mut buf: Vec<Vec<f64>> = vec![Vec::new(); out.len()];
    for step in 0..g.n {
        buf.iter_mut().for_each(Vec::clear);
        for (s, &gi) in input.iter().zip(member) {
            if let Some(v) = s.vals[step] {
                buf[gi].push(v);
            }
        }
        for (gi, vals) in buf.iter_mut().enumerate() {
            if !vals.is_empty() {
                out[gi].vals[step] = Some(quantile(phi.get(step).copied().unwrap_or(f64::NAN), vals));
            }
        }
    }
    out
}

fn count_values(
    input: &[Ser],
    member: &[usize],
    groups: &[Labels],
    label: &str,
    g: &Grid,
) -> Result<Vec<Ser>, QueryError> {
    if label.is_empty() {
        return Err(QueryError::Execution(format!("invalid label name {label:?}")));
    }
    let mut out: Vec<Ser> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for step in 0..g.n {
        for (s, &gi) in input.iter().zip(member) {
            let Some(v) = s.vals[step] else { continue };
            let labels = groups[gi].to_builder().set(label, format_float(v)).build();
            let oi = *index.entry(labels.clone()).or_insert_with(|| {
                out.push(Ser { labels, drop_name: false, vals: vec![None; g.n] });
                out.len() - 1
            });
            let slot = &mut out[oi].vals[step];
            *slot = Some(slot.unwrap_or(0.0) + 1.0);
        }
    }
    Ok(out)
}
