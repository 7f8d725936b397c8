//! The evaluator: walks the plan once per query over a grid of steps.
//!
//! Values are column-shaped: a vector is a list of series, each holding one optional
//! value per step of the grid. Selectors are read from storage once for the whole
//! grid; range functions slide one window along each series across all steps
//! ([`windows`]); operators and aggregations then work step by step over those columns
//! ([`binary`], [`aggregate`]). Instant queries are a grid of one step.

mod aggregate;
mod binary;
mod windows;

use std::collections::HashMap;
use std::time::Instant;

use vigil_storage::{Labels, METRIC_NAME, Querier, Sample, SelectHints, is_stale_nan};

use crate::error::QueryError;
use crate::functions;
use crate::plan::{Expr, Selector};
use crate::range_modifiers::RangeModifier;

pub(crate) use windows::{RangeInput, Window, slide as slide_windows, slide_in_context};

/// The evaluation times: `n` steps from `start`, `step` apart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Grid {
    /// Timestamp of step `i`.
    pub(crate) fn t(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Timestamp of the last step.
    pub(crate) fn end(&self) -> i64 {
        self.t(self.n.saturating_sub(1))
    }
}

/// One series of an instant-vector value: a value (or none) per step.
#[derive(Debug, Clone)]
pub(crate) struct Ser {
    pub labels: Labels,
    /// The metric name is to be removed when the result leaves the engine
    /// (Prometheus's delayed name removal).
    pub drop_name: bool,
    pub vals: Vec<Option<f64>>,
}

impl Ser {
    /// The labels with `__name__` removed if it is marked for dropping.
    pub(crate) fn effective_labels(&self) -> Labels {
        if self.drop_name && self.labels.metric_name().is_some() {
            self.labels.to_builder().del(METRIC_NAME).build()
        } else {
            self.labels.clone()
        }
    }
}

/// One series of a range vector: raw points.
#[derive(Debug, Clone)]
pub(crate) struct Windowed {
    pub labels: Labels,
    pub drop_name: bool,
    pub samples: Vec<Sample>,
}

impl Windowed {
    /// The labels with `__name__` removed if it is marked for dropping.
    pub(crate) fn effective_labels(&self) -> Labels {
        if self.drop_name && self.labels.metric_name().is_some() {
            self.labels.to_builder().del(METRIC_NAME).build()
        } else {
            self.labels.clone()
        }
    }
}

/// An intermediate value.
#[derive(Debug)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<Ser>),
    /// A range vector; only ever the result of an instant query (e.g. `x[5m]`).
    Matrix(Vec<Windowed>),
}

/// The top-level query's time range, for `start()`, `end()`, `range()` and `step()`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QueryRange {
    pub start: i64,
    pub end: i64,
    /// 0 for an instant query.
    pub step: i64,
}

/// A selected series and its sample (if any) per step.
pub(crate) type InstantSeries = (Labels, Vec<Option<Sample>>);

/// State of one query's evaluation.
pub(crate) struct Evaluator<'a> {
    pub querier: &'a dyn Querier,
    /// The query text, to place annotations.
    pub text: &'a str,
    pub query: QueryRange,
    pub lookback: i64,
    pub deadline: Instant,
    pub max_samples: usize,
    /// Keep names marked for dropping until the end (Prometheus's feature flag).
    pub delayed_name_removal: bool,
    pub cancel: crate::engine::CancelToken,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// Samples read by selectors so far (the `totalQueryableSamples` statistic).
    pub loaded_samples: u64,
    /// Largest sample count one value held (the `peakSamples` statistic).
    pub peak_samples: std::sync::atomic::AtomicUsize,
}

impl Evaluator<'_> {
    /// Adds a warning once; `func`/`arg` say which call (or argument) it is about.
    pub(crate) fn warn(&mut self, text: String, func: &str, arg: Option<usize>) {
        let w = crate::annotations::with_position(text, crate::annotations::position(self.text, func, arg));
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// Adds an info once, placed like [`Evaluator::warn`].
    pub(crate) fn info(&mut self, text: String, func: &str, arg: Option<usize>) {
        let w = crate::annotations::with_position(text, crate::annotations::position(self.text, func, arg));
        if !self.infos.contains(&w) {
            self.infos.push(w);
        }
    }

    /// Warns about quantiles outside [0, 1] as Prometheus does.
    pub(crate) fn check_quantile_param(&mut self, phi: &[f64], func: &str, arg: usize) {
        if let Some(bad) = phi.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0) {
            let text = format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                crate::annotations::go_g(*bad)
            );
            self.warn(text, func, Some(arg));
        }
    }

    /// Fails once the query's deadline has passed or it was cancelled.
    pub(crate) fn check_deadline(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout("query execution"));
        }
        if self.cancel.is_cancelled() {
            return Err(QueryError::Canceled("query execution"));
        }
        Ok(())
    }

    /// Fails when a value would hold more samples than allowed.
    pub(crate) fn check_samples(&self, n: usize) -> Result<(), QueryError> {
        self.peak_samples.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
        if n > self.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// Evaluates an expression over the grid.
    pub(crate) fn eval(&mut self, e: &Expr, g: &Grid) -> Result<Val, QueryError> {
        let v = self.eval_node(e, g)?;
        if self.delayed_name_removal {
            return Ok(v);
        }
        // Without delayed removal a name marked for dropping goes right away.
        Ok(match v {
            Val::Vector(ss) if ss.iter().any(|s| s.drop_name) => Val::Vector(finish_vector(ss)?),
            Val::Matrix(mut ws) => {
                for w in &mut ws {
                    if w.drop_name {
                        w.labels = w.effective_labels();
                        w.drop_name = false;
                    }
                }
                Val::Matrix(ws)
            }
            other => other,
        })
    }

    fn eval_node(&mut self, e: &Expr, g: &Grid) -> Result<Val, QueryError> {
        self.check_deadline()?;
        match e {
            Expr::Number(v) => Ok(Val::Scalar(vec![*v; g.n])),
            Expr::String(s) => Ok(Val::Str(s.clone())),
            Expr::Paren(e) => self.eval(e, g),
            Expr::Neg(e) => Ok(match self.eval(e, g)? {
                Val::Scalar(v) => Val::Scalar(v.into_iter().map(|x| -x).collect()),
                Val::Vector(mut ss) => {
                    for s in &mut ss {
                        s.drop_name = true;
                        s.vals.iter_mut().flatten().for_each(|v| *v = -*v);
                    }
                    Val::Vector(ss)
                }
                _ => {
                    return Err(QueryError::Execution(
                        "unary minus needs a scalar or an instant vector".into(),
                    ));
                }
            }),
            Expr::Selector(sel) => {
                let ss = self.select_instant(sel, g)?;
                Ok(Val::Vector(
                    ss.into_iter()
                        .map(|(labels, pts)| Ser {
                            labels,
                            drop_name: false,
                            vals: pts.into_iter().map(|p| p.map(|s| s.v)).collect(),
                        })
                        .collect(),
                ))
            }
            Expr::Range { .. } | Expr::Subquery { .. } => {
                // A range vector as a value exists only for an instant query.
                let input = self.range_input(e, g)?;
                let t = g.end();
                Ok(Val::Matrix(windows::materialize(&input, t)))
            }
            Expr::Call { func, args } => functions::call(self, func, args, g),
            Expr::Aggregate { op, expr, param, grouping } => {
                aggregate::aggregate(self, *op, expr, param.as_deref(), grouping, g)
            }
            Expr::Binary { op, lhs, rhs, matching, return_bool } => {
                let l = self.eval(lhs, g)?;
                let r = self.eval(rhs, g)?;
                binary::binary(self, *op, l, r, matching, *return_bool, g)
            }
        }
    }

    /// Evaluates an expression that must give an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &Expr, g: &Grid) -> Result<Vec<Ser>, QueryError> {
        match self.eval(e, g)? {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::Execution("expected an instant vector".into())),
        }
    }

    /// Evaluates an expression that must give a scalar.
    pub(crate) fn eval_scalar(&mut self, e: &Expr, g: &Grid) -> Result<Vec<f64>, QueryError> {
        match self.eval(e, g)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::Execution("expected a scalar".into())),
        }
    }

    /// Reads a selector's series once for all steps and picks, per step, the newest
    /// sample in the lookback window `(t - lookback, t]`; a stale marker hides the series.
    pub(crate) fn select_instant(
        &mut self,
        sel: &Selector,
        g: &Grid,
    ) -> Result<Vec<InstantSeries>, QueryError> {
        let eff = |t: i64| sel.at.unwrap_or(t) - sel.offset;
        let (lo, hi) = (eff(g.start), eff(g.end()));
        let smoothed = sel.modifier == RangeModifier::Smoothed;
        let after = if smoothed { self.lookback } else { 0 };
        let hints = SelectHints {
            start: lo - self.lookback + 1,
            end: hi + after,
            step: g.step,
            range: 0,
            func: None,
        };
        let series = self.querier.select(&sel.matchers, &hints)?;
        let mut out = Vec::with_capacity(series.len());
        let mut total = 0usize;
        for mut s in series {
            self.check_deadline()?;
            let mut samples = Vec::new();
            while let Some(x) = s.samples.next() {
                samples.push(x);
            }
            let mut pts = Vec::with_capacity(g.n);
            let mut idx = 0usize;
            let mut any = false;
            for i in 0..g.n {
                let te = eff(g.t(i));
                // Steps are increasing, so the cursor only moves forward (unless `@` pins it).
                if idx > 0 && samples[idx - 1].t > te {
                    idx = samples.partition_point(|x| x.t <= te);
                }
                while idx < samples.len() && samples[idx].t <= te {
                    idx += 1;
                }
                let p = if idx == 0 {
                    None
                } else {
                    let x = samples[idx - 1];
                    (x.t > te - self.lookback && !is_stale_nan(x.v)).then_some(x)
                };
                // `smoothed`: the value on the line to the next sample.
                let p = match (p, samples.get(idx)) {
                    (Some(a), Some(&b))
                        if smoothed && a.t < te && b.t < te + self.lookback && !is_stale_nan(b.v) =>
                    {
                        Some(Sample::new(a.t, crate::functions::interpolate(a, b, te, false)))
                    }
                    _ => p,
                };
                any |= p.is_some();
                total += p.is_some() as usize;
                pts.push(p);
            }
            if any {
                out.push((s.labels, pts));
            }
        }
        self.loaded_samples += total as u64;
        self.check_samples(total)?;
        Ok(out)
    }

    /// Resolves a range selector or subquery into per-series points covering every
    /// step's window.
    pub(crate) fn range_input(&mut self, e: &Expr, g: &Grid) -> Result<RangeInput, QueryError> {
        windows::range_input(self, e, g)
    }
}

/// Removes names marked for dropping and merges series that end up with the same
/// labels; two of them with a value at the same step is Prometheus's error.
pub(crate) fn finish_vector(ss: Vec<Ser>) -> Result<Vec<Ser>, QueryError> {
    let mut out: Vec<Ser> = Vec::with_capacity(ss.len());
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(ss.len());
    for s in ss {
        if s.vals.iter().all(Option::is_none) {
            continue;
        }
        let labels = s.effective_labels();
        match index.get(&labels) {
            None => {
                index.insert(labels.clone(), out.len());
                out.push(Ser { labels, drop_name: false, vals: s.vals });
            }
            Some(&i) => {
                let o = &mut out[i];
                for (a, b) in o.vals.iter_mut().zip(s.vals) {
                    if b.is_some() {
                        if a.is_some() {
                            return Err(QueryError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        *a = b;
                    }
                }
            }
        }
    }
    Ok(out)
}
