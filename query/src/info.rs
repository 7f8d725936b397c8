//! `info(v, {selector})`: adds the data labels of info series (by default
//! `target_info`) that share the identifying labels `instance` and `job` with each
//! series of `v`, looked up at the same (offset- and `@`-shifted) time as `v`'s data.

use std::collections::HashMap;

use vigil_storage::{Labels, METRIC_NAME, MatchOp, Matcher};

use crate::error::QueryError;
use crate::eval::{Evaluator, Grid, Ser, Val};
use crate::plan::{Expr, Selector};

/// Labels that tie a series to its info series.
const IDENTIFYING_LABELS: &[&str] = &["instance", "job"];

/// The info metric used when the selector names none.
const DEFAULT_INFO_METRIC: &str = "target_info";

/// Reserved label of a matcher added to `info()`'s selector before parsing: the
/// parser refuses selectors whose matchers all match the empty string (`{data=~".*"}`),
/// which `info()` accepts. `info()` removes it again before selecting anything.
pub(crate) const INFO_SELECTOR_LABEL: &str = "__vigil_info_selector__";

/// Adds the reserved matcher to the selector argument of every `info(...)` call.
pub(crate) fn patch_selectors(query: &str) -> String {
    if !query.contains("info") {
        return query.to_string();
    }
    let b = query.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut inserts = Vec::new();
    for (i, _) in query.match_indices("info") {
        let end = i + 4;
        if (i > 0 && is_ident(b[i - 1])) || (end < b.len() && is_ident(b[end])) {
            continue;
        }
        if let Some(arg) = crate::annotations::argument_start(b, end, 1)
            && b.get(arg) == Some(&b'{')
        {
            inserts.push(arg + 1);
        }
    }
    let mut out = query.to_string();
    for at in inserts.into_iter().rev() {
        out.insert_str(at, &format!("{INFO_SELECTOR_LABEL}=~\".+\","));
    }
    out
}

/// Names of info metrics when the selector only excludes some.
const ANY_INFO_METRIC: &str = ".+_info";

/// How the time an expression's data is read at relates to the step time.
#[derive(Debug, Clone, Copy)]
enum RefTime {
    /// `t - offset`.
    Shifted(i64),
    /// A fixed time (an `@` modifier), minus later offsets.
    Fixed(i64),
}

impl RefTime {
    fn minus(self, offset: i64) -> RefTime {
        match self {
            RefTime::Shifted(o) => RefTime::Shifted(o + offset),
            RefTime::Fixed(t) => RefTime::Fixed(t - offset),
        }
    }
}

/// Follows the first data-carrying argument down to a selector, composing `@` and offsets.
fn ref_time(e: &Expr, acc: RefTime) -> RefTime {
    match e {
        Expr::Selector(s) | Expr::Range { sel: s, .. } => match s.at {
            Some(at) => RefTime::Fixed(at - s.offset),
            None => acc.minus(s.offset),
        },
        Expr::Subquery { expr, offset, at, .. } => {
            let here = match at {
                Some(at) => RefTime::Fixed(at - offset),
                None => acc.minus(*offset),
            };
            ref_time(expr, here)
        }
        Expr::Paren(x) | Expr::Neg(x) => ref_time(x, acc),
        Expr::Aggregate { expr, .. } => ref_time(expr, acc),
        Expr::Binary { lhs, .. } => ref_time(lhs, acc),
        Expr::Call { args, .. } => args
            .iter()
            .find(|a| !matches!(a.unparen(), Expr::Number(_) | Expr::String(_)))
            .map_or(acc, |a| ref_time(a, acc)),
        Expr::Number(_) | Expr::String(_) => acc,
    }
}

pub(crate) fn info(ev: &mut Evaluator<'_>, args: &[Expr], g: &Grid) -> Result<Val, QueryError> {
    let base_expr = args.first().ok_or_else(|| QueryError::Execution("info() needs an argument".into()))?;
    let selector_matchers: Vec<Matcher> = match args.get(1).map(Expr::unparen) {
        None => Vec::new(),
        Some(Expr::Selector(s)) => {
            s.matchers.iter().filter(|m| m.name != INFO_SELECTOR_LABEL).cloned().collect()
        }
        Some(_) => {
            return Err(QueryError::Execution(
                "info(): the second argument must be a series selector".into(),
            ));
        }
    };
    let (mut name_matchers, data_matchers): (Vec<Matcher>, Vec<Matcher>) =
        selector_matchers.into_iter().partition(|m| m.name == METRIC_NAME);
    let has_positive = name_matchers.iter().any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex));
    if name_matchers.is_empty() {
        name_matchers.push(Matcher::equal(METRIC_NAME, DEFAULT_INFO_METRIC));
    } else if !has_positive {
        // Only exclusions given: the candidates are still info metrics.
        let any_info = Matcher::new(MatchOp::Regex, METRIC_NAME, ANY_INFO_METRIC)
            .map_err(|e| QueryError::Execution(e.to_string()))?;
        name_matchers.push(any_info);
    }
    let is_info_series = |l: &Labels| has_positive && name_matchers.iter().all(|m| m.matches_labels(l));

    let base = ev.eval_vector(base_expr, g)?;
    let (offset, at) = match ref_time(base_expr, RefTime::Shifted(0)) {
        RefTime::Shifted(o) => (o, None),
        RefTime::Fixed(t) => (0, Some(t)),
    };
    let mut info_matchers = name_matchers.clone();
    info_matchers.extend(data_matchers.iter().cloned());
    let infos = ev
        .select_instant(&Selector { matchers: info_matchers, offset, at, modifier: Default::default() }, g)?;

    // Info series by identifying labels.
    let ident = |l: &Labels| -> Vec<String> {
        IDENTIFYING_LABELS.iter().map(|n| l.get(n).unwrap_or("").to_string()).collect()
    };
    let mut by_ident: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
    for (i, (l, _)) in infos.iter().enumerate() {
        by_ident.entry(ident(l)).or_default().push(i);
    }
    let data_names: Option<Vec<&str>> =
        (!data_matchers.is_empty()).then(|| data_matchers.iter().map(|m| m.name.as_str()).collect());
    let all_match_empty = data_matchers.iter().all(Matcher::matches_empty);

    let mut out: Vec<Ser> = Vec::new();
    let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
    let mut put = |labels: Labels, drop_name: bool, step: usize, v: f64, out: &mut Vec<Ser>| {
        let oi = *index.entry((labels.clone(), drop_name)).or_insert_with(|| {
            out.push(Ser { labels, drop_name, vals: vec![None; g.n] });
            out.len() - 1
        });
        out[oi].vals[step] = Some(v);
    };
    for s in &base {
        if is_info_series(&s.labels) {
            for (step, v) in s.vals.iter().enumerate() {
                if let Some(v) = v {
                    put(s.labels.clone(), s.drop_name, step, *v, &mut out);
                }
            }
            continue;
        }
        let candidates = by_ident.get(&ident(&s.labels));
        for (step, v) in s.vals.iter().enumerate() {
            let Some(v) = *v else { continue };
            // Per info metric name, the series with the newest sample wins.
            let mut newest: HashMap<&str, (i64, usize)> = HashMap::new();
            for &i in candidates.into_iter().flatten() {
                if let Some(sample) = infos[i].1[step] {
                    let name = infos[i].0.metric_name().unwrap_or("");
                    let e = newest.entry(name).or_insert((sample.t, i));
                    if sample.t > e.0 {
                        *e = (sample.t, i);
                    }
                }
            }
            if newest.is_empty() {
                if all_match_empty {
                    put(s.labels.clone(), s.drop_name, step, v, &mut out);
                }
                continue;
            }
            let mut b = s.labels.to_builder();
            let mut added: HashMap<String, String> = HashMap::new();
            let mut chosen: Vec<usize> = newest.values().map(|&(_, i)| i).collect();
            chosen.sort_unstable();
            for i in chosen {
                for l in infos[i].0.iter() {
                    if l.name == METRIC_NAME || IDENTIFYING_LABELS.contains(&l.name) {
                        continue;
                    }
                    if data_names.as_ref().is_some_and(|n| !n.contains(&l.name)) {
                        continue;
                    }
                    if s.labels.get(l.name).is_some() {
                        continue;
                    }
                    if let Some(prev) = added.get(l.name) {
                        if *prev != l.value {
                            return Err(QueryError::Execution(format!(
                                "conflicting label: {} has values {prev:?} and {:?} in different info metrics",
                                l.name, l.value
                            )));
                        }
                        continue;
                    }
                    added.insert(l.name.to_string(), l.value.to_string());
                    b.set(l.name, l.value);
                }
            }
            put(b.build(), s.drop_name, step, v, &mut out);
        }
    }
    Ok(Val::Vector(out))
}
