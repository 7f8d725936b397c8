//! Binary operators: scalar/scalar, vector/scalar and vector/vector with Prometheus's
//! vector matching (`on`/`ignoring`, `group_left`/`group_right`) and its errors.

use std::collections::HashMap;

use vigil_storage::{Labels, METRIC_NAME};

use super::{Evaluator, Grid, Ser, Val};
use crate::error::QueryError;
use crate::plan::{BinOp, Card, VectorMatching};

/// Applies an arithmetic or comparison operator to two floats. For comparisons the
/// second value says whether the pair is kept; the first is then the left operand.
pub(crate) fn apply(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (f64::NAN, false),
    }
}

/// Evaluates `l op r` over the grid.
pub(super) fn binary(
    ev: &mut Evaluator<'_>,
    op: BinOp,
    l: Val,
    r: Val,
    m: &VectorMatching,
    return_bool: bool,
    g: &Grid,
) -> Result<Val, QueryError> {
    match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => Ok(Val::Scalar(
            a.into_iter()
                .zip(b)
                .map(|(x, y)| {
                    let (v, keep) = apply(op, x, y);
                    if op.is_comparison() { if keep { 1.0 } else { 0.0 } } else { v }
                })
                .collect(),
        )),
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(op, v, &s, false, return_bool))),
        (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(op, v, &s, true, return_bool))),
        (Val::Vector(a), Val::Vector(b)) => {
            if op.is_set() {
                Ok(Val::Vector(set_op(op, a, b, m, g)))
            } else {
                vector_vector(ev, op, a, b, m, return_bool, g).map(Val::Vector)
            }
        }
        _ => Err(QueryError::Execution("binary operation needs scalars or instant vectors".into())),
    }
}

fn vector_scalar(op: BinOp, mut v: Vec<Ser>, s: &[f64], swap: bool, return_bool: bool) -> Vec<Ser> {
    for ser in &mut v {
        for (x, &sv) in ser.vals.iter_mut().zip(s) {
            let Some(xv) = *x else { continue };
            let (a, b) = if swap { (sv, xv) } else { (xv, sv) };
            let (mut val, keep) = apply(op, a, b);
            if op.is_comparison() && swap {
                // The vector's own value is the result, whichever side it is on.
                val = b;
            }
            *x = if return_bool {
                Some(if keep { 1.0 } else { 0.0 })
            } else if keep {
                Some(val)
            } else {
                None
            };
        }
        if return_bool || !op.is_comparison() {
            ser.drop_name = true;
        }
    }
    v
}

/// The labels two series are matched on.
fn signature(labels: &Labels, m: &VectorMatching) -> Labels {
    let mut b = labels.to_builder();
    if m.on {
        b.retain(|n| m.labels.iter().any(|l| l == n));
    } else {
        b.retain(|n| n != METRIC_NAME && !m.labels.iter().any(|l| l == n));
    }
    b.build()
}

/// Numbers each side's series by their matching signature.
fn sig_ids(a: &[Ser], b: &[Ser], m: &VectorMatching) -> (Vec<usize>, Vec<usize>, Vec<Labels>) {
    let mut ids: HashMap<Labels, usize> = HashMap::new();
    let mut sigs = Vec::new();
    let mut id_of = |s: &Ser| {
        let sig = signature(&s.effective_labels(), m);
        *ids.entry(sig.clone()).or_insert_with(|| {
            sigs.push(sig);
            sigs.len() - 1
        })
    };
    let ia: Vec<usize> = a.iter().map(&mut id_of).collect();
    let ib: Vec<usize> = b.iter().map(&mut id_of).collect();
    (ia, ib, sigs)
}

fn set_op(op: BinOp, mut a: Vec<Ser>, mut b: Vec<Ser>, m: &VectorMatching, g: &Grid) -> Vec<Ser> {
    let (ia, ib, sigs) = sig_ids(&a, &b, m);
    // seen[sig] == step + 1 when some series of that signature has a value at the step.
    let mut seen = vec![0usize; sigs.len()];
    for step in 0..g.n {
        let marker = step + 1;
        match op {
            BinOp::And | BinOp::Unless => {
                for (s, &id) in b.iter().zip(&ib) {
                    if s.vals[step].is_some() {
                        seen[id] = marker;
                    }
                }
                for (s, &id) in a.iter_mut().zip(&ia) {
                    let matched = seen[id] == marker;
                    if matched == (op == BinOp::Unless) {
                        s.vals[step] = None;
                    }
                }
            }
            _ => {
                for (s, &id) in a.iter().zip(&ia) {
                    if s.vals[step].is_some() {
                        seen[id] = marker;
                    }
                }
                for (s, &id) in b.iter_mut().zip(&ib) {
                    if seen[id] == marker {
                        s.vals[step] = None;
                    }
                }
            }
        }
    }
    if op == BinOp::Or {
        a.append(&mut b);
    }
    a.retain(|s| s.vals.iter().any(Option::is_some));
    a
}

/// Result labels of a matched pair, taken from the "many" side.
fn result_labels(many: &Labels, one: &Labels, m: &VectorMatching) -> Labels {
    let mut b = many.to_builder();
    if m.card == Card::OneToOne {
        if m.on {
            b.retain(|n| m.labels.iter().any(|l| l == n));
        } else {
            b.retain(|n| !m.labels.iter().any(|l| l == n));
        }
    }
    for n in &m.include {
        match one.get(n) {
            Some(v) => b.set(n.clone(), v.to_string()),
            None => b.del(n),
        };
    }
    b.build()
}

fn vector_vector(
    ev: &mut Evaluator<'_>,
    op: BinOp,
    a: Vec<Ser>,
    b: Vec<Ser>,
    m: &VectorMatching,
    return_bool: bool,
    g: &Grid,
) -> Result<Vec<Ser>, QueryError> {
    let one_to_many = m.card == Card::OneToMany;
    // The left side is always the "many" side below.
    let (many, one) = if one_to_many { (b, a) } else { (a, b) };
    let (im, io, sigs) = sig_ids(&many, &one, m);
    let many_labels: Vec<Labels> = many.iter().map(Ser::effective_labels).collect();
    let one_labels: Vec<Labels> = one.iter().map(Ser::effective_labels).collect();
    let drop_name = return_bool || !op.is_comparison();

    let mut out: Vec<Ser> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    let mut pair_out: HashMap<(usize, usize), usize> = HashMap::new();
    // one_at[sig] = (step + 1, series index) of the "one" side's series at the step.
    let mut one_at = vec![(0usize, 0usize); sigs.len()];
    let mut matched = vec![0usize; sigs.len()];
    let mut many_at = vec![0usize; sigs.len()];
    let mut inserted: HashMap<(usize, usize), usize> = HashMap::new();
    for step in 0..g.n {
        if step % 256 == 0 {
            ev.check_deadline()?;
        }
        let marker = step + 1;
        for (j, &id) in io.iter().enumerate() {
            if one[j].vals[step].is_none() {
                continue;
            }
            if one_at[id].0 == marker {
                let side = if one_to_many { "left" } else { "right" };
                let first = &one_labels[one_at[id].1];
                let sig = match_labels(&one_labels[j], m);
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{first}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    one_labels[j]
                )));
            }
            one_at[id] = (marker, j);
        }
        for (i, &id) in im.iter().enumerate() {
            let Some(lv) = many[i].vals[step] else { continue };
            if one_at[id].0 != marker {
                continue;
            }
            let j = one_at[id].1;
            let Some(rv) = one[j].vals[step] else { continue };
            let oi = match pair_out.get(&(i, j)) {
                Some(&oi) => oi,
                None => {
                    let labels = result_labels(&many[i].labels, &one[j].labels, m);
                    let key = if drop_name || many[i].drop_name {
                        labels.to_builder().del(METRIC_NAME).build()
                    } else {
                        labels.clone()
                    };
                    let oi = *out_index.entry(key).or_insert_with(|| {
                        out.push(Ser {
                            labels,
                            drop_name: drop_name || many[i].drop_name,
                            vals: vec![None; g.n],
                        });
                        out.len() - 1
                    });
                    pair_out.insert((i, j), oi);
                    oi
                }
            };
            if m.card == Card::OneToOne {
                if matched[id] == marker {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
                matched[id] = marker;
            } else if inserted.insert((id, oi), marker) == Some(marker) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches".into(),
                ));
            }
            let (x, y) = if one_to_many { (rv, lv) } else { (lv, rv) };
            let (v, keep) = apply(op, x, y);
            let v = if return_bool {
                if keep { 1.0 } else { 0.0 }
            } else if keep {
                v
            } else {
                continue;
            };
            out[oi].vals[step] = Some(v);
        }
        if m.fill_rhs.is_none() && m.fill_lhs.is_none() {
            continue;
        }
        // fill_right: a "many" series without a partner meets the fill value.
        if let Some(fv) = m.fill_rhs {
            for (i, &id) in im.iter().enumerate() {
                let Some(lv) = many[i].vals[step] else { continue };
                if one_at[id].0 == marker {
                    continue;
                }
                let (x, y) = if one_to_many { (fv, lv) } else { (lv, fv) };
                let Some(v) = combine(op, x, y, return_bool) else { continue };
                let oi = *pair_out.entry((i, usize::MAX)).or_insert_with(|| {
                    let labels = result_labels(&many[i].labels, &Labels::empty(), m);
                    output(&mut out, &mut out_index, labels, drop_name || many[i].drop_name, g.n)
                });
                out[oi].vals[step] = Some(v);
            }
        }
        // fill_left: a match group with no "many" series gets one, labelled by the group.
        if let Some(fv) = m.fill_lhs {
            for (i, &id) in im.iter().enumerate() {
                if many[i].vals[step].is_some() {
                    many_at[id] = marker;
                }
            }
            for (j, &id) in io.iter().enumerate() {
                let Some(rv) = one[j].vals[step] else { continue };
                if many_at[id] == marker {
                    continue;
                }
                let (x, y) = if one_to_many { (rv, fv) } else { (fv, rv) };
                let Some(v) = combine(op, x, y, return_bool) else { continue };
                let oi = *pair_out
                    .entry((usize::MAX, j))
                    .or_insert_with(|| output(&mut out, &mut out_index, sigs[id].clone(), true, g.n));
                out[oi].vals[step] = Some(v);
            }
        }
    }
    let _ = &many_labels;
    out.retain(|s| s.vals.iter().any(Option::is_some));
    Ok(out)
}

/// The value of `x op y`, or `None` when a comparison filters the pair out.
fn combine(op: BinOp, x: f64, y: f64, return_bool: bool) -> Option<f64> {
    let (v, keep) = apply(op, x, y);
    if return_bool { Some(if keep { 1.0 } else { 0.0 }) } else { keep.then_some(v) }
}

/// The index of the output series with these labels, creating it if needed.
fn output(
    out: &mut Vec<Ser>,
    index: &mut HashMap<Labels, usize>,
    labels: Labels,
    drop_name: bool,
    n: usize,
) -> usize {
    let key = if drop_name { labels.to_builder().del(METRIC_NAME).build() } else { labels.clone() };
    *index.entry(key).or_insert_with(|| {
        out.push(Ser { labels, drop_name, vals: vec![None; n] });
        out.len() - 1
    })
}

/// The labels a series is matched on, for error messages.
fn match_labels(l: &Labels, m: &VectorMatching) -> Labels {
    let mut b = l.to_builder();
    if m.on {
        b.retain(|n| m.labels.iter().any(|x| x == n));
    } else {
        b.retain(|n| !m.labels.iter().any(|x| x == n));
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser(pairs: &[(&str, &str)], v: f64) -> Ser {
        Ser { labels: Labels::from_pairs(pairs.iter().copied()), drop_name: false, vals: vec![Some(v)] }
    }

    fn matching(card: Card, on: bool, labels: &[&str]) -> VectorMatching {
        VectorMatching {
            card,
            on,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            include: vec![],
            fill_lhs: None,
            fill_rhs: None,
        }
    }

    fn evaluator(q: &vigil_storage::memory::MemStorage) -> Evaluator<'_> {
        Evaluator {
            querier: q,
            text: "",
            query: Default::default(),
            lookback: 300_000,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
            max_samples: 1000,
            delayed_name_removal: true,
            cancel: Default::default(),
            warnings: vec![],
            infos: vec![],
            loaded_samples: 0,
            peak_samples: Default::default(),
        }
    }

    #[test]
    fn duplicate_on_the_one_side_is_many_to_many_error() {
        let store = vigil_storage::memory::MemStorage::new();
        let mut ev = evaluator(&store);
        let g = Grid { start: 0, step: 1, n: 1 };
        let l = vec![ser(&[("__name__", "a"), ("x", "1")], 1.0)];
        let r = vec![
            ser(&[("__name__", "b"), ("x", "1"), ("y", "1")], 1.0),
            ser(&[("__name__", "b"), ("x", "1"), ("y", "2")], 2.0),
        ];
        let err =
            vector_vector(&mut ev, BinOp::Add, l, r, &matching(Card::OneToOne, true, &["x"]), false, &g)
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("found duplicate series for the match group {x=\"1\"} on the right hand-side"),
            "{err}"
        );
        assert!(
            err.ends_with("many-to-many matching not allowed: matching labels must be unique on one side")
        );
    }

    #[test]
    fn two_left_series_on_one_right_needs_group_left() {
        let store = vigil_storage::memory::MemStorage::new();
        let mut ev = evaluator(&store);
        let g = Grid { start: 0, step: 1, n: 1 };
        let l = vec![ser(&[("x", "1"), ("y", "1")], 1.0), ser(&[("x", "1"), ("y", "2")], 2.0)];
        let r = vec![ser(&[("x", "1")], 10.0)];
        let err = vector_vector(
            &mut ev,
            BinOp::Add,
            l.clone(),
            r.clone(),
            &matching(Card::OneToOne, true, &["x"]),
            false,
            &g,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
        );
        let ok =
            vector_vector(&mut ev, BinOp::Add, l, r, &matching(Card::ManyToOne, true, &["x"]), false, &g)
                .unwrap();
        let vals: Vec<f64> = ok.iter().map(|s| s.vals[0].unwrap()).collect();
        assert_eq!(vals, vec![11.0, 12.0]);
    }
}
