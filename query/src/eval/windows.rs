//! Range vectors: a range selector or subquery resolved once for the whole query,
//! then one window slid along each series across all steps.

use vigil_storage::{Sample, SelectHints, is_stale_nan};

use super::{Evaluator, Grid, Ser, Val, Windowed};
use crate::error::QueryError;
use crate::plan::Expr;
use crate::range_modifiers::RangeModifier;

/// The points of a range selector or subquery, with the window's geometry.
pub(crate) struct RangeInput {
    pub series: Vec<Windowed>,
    /// Window length in ms; windows are `(te - range, te]`.
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    /// `anchored` / `smoothed` on a range selector.
    pub modifier: RangeModifier,
    /// The lookback delta, which bounds how far outside the window those look.
    pub lookback: i64,
}

impl RangeInput {
    /// The end of the window evaluated at step time `t`.
    pub(crate) fn window_end(&self, t: i64) -> i64 {
        self.at.unwrap_or(t) - self.offset
    }
}

/// Where one step's window lies, as the range functions need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Exclusive start of the window (ms).
    pub start: i64,
    /// Inclusive end of the window (ms).
    pub end: i64,
    /// The step's own evaluation time (ms), before offset and `@`.
    pub t: i64,
    /// Window length in ms.
    pub range: i64,
    /// Index of the step in the grid.
    pub step: usize,
}

pub(super) fn range_input(ev: &mut Evaluator<'_>, e: &Expr, g: &Grid) -> Result<RangeInput, QueryError> {
    match e.unparen() {
        Expr::Range { sel, range } => {
            let eff = |t: i64| sel.at.unwrap_or(t) - sel.offset;
            // Modifiers look up to one lookback before (and, smoothed, after) the window.
            let before = if sel.modifier == RangeModifier::None { 0 } else { ev.lookback };
            let after = if sel.modifier == RangeModifier::Smoothed { ev.lookback } else { 0 };
            let hints = SelectHints {
                start: eff(g.start) - range + 1 - before,
                end: eff(g.end()) + after,
                step: g.step,
                range: *range,
                func: None,
            };
            let mut out = Vec::new();
            let mut total = 0usize;
            for mut s in ev.querier.select(&sel.matchers, &hints)? {
                ev.check_deadline()?;
                let mut samples = Vec::new();
                while let Some(x) = s.samples.next() {
                    if !is_stale_nan(x.v) {
                        samples.push(x);
                    }
                }
                ev.loaded_samples += samples.len() as u64;
                if !samples.is_empty() {
                    // Prometheus counts what one step holds at a time: the fullest window.
                    total += if g.n == 1 { samples.len() } else { fullest_window(&samples, *range) };
                    out.push(Windowed { labels: s.labels, drop_name: false, samples });
                }
            }
            ev.check_samples(total)?;
            Ok(RangeInput {
                series: out,
                range: *range,
                offset: sel.offset,
                at: sel.at,
                modifier: sel.modifier,
                lookback: ev.lookback,
            })
        }
        Expr::Subquery { expr, range, step, offset, at } => {
            let eff = |t: i64| at.unwrap_or(t) - offset;
            let lo = eff(g.start) - range;
            // Subquery steps sit on multiples of the step, strictly after each window's start.
            let mut first = lo.div_euclid(*step) * step;
            if first <= lo {
                first += step;
            }
            let last = eff(g.end()).div_euclid(*step) * step;
            let mut series = Vec::new();
            if first <= last {
                let n = usize::try_from((last - first) / step).unwrap_or(usize::MAX).saturating_add(1);
                // Every inner step holds at least one value per series: refuse grids that
                // could never fit before allocating them.
                ev.check_samples(n)?;
                let inner = Grid { start: first, step: *step, n };
                let ss = match ev.eval(expr, &inner)? {
                    Val::Vector(ss) => ss,
                    Val::Scalar(v) => vec![Ser {
                        labels: vigil_storage::Labels::empty(),
                        drop_name: false,
                        vals: v.into_iter().map(Some).collect(),
                    }],
                    _ => return Err(QueryError::Execution("subquery needs an instant vector".into())),
                };
                let ss = merge_same_labels(ss)?;
                for s in ss {
                    let samples: Vec<Sample> = s
                        .vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| Sample::new(inner.t(i), v)))
                        .collect();
                    if !samples.is_empty() {
                        series.push(Windowed { labels: s.labels, drop_name: s.drop_name, samples });
                    }
                }
            }
            Ok(RangeInput {
                series,
                range: *range,
                offset: *offset,
                at: *at,
                modifier: RangeModifier::None,
                lookback: ev.lookback,
            })
        }
        _ => Err(QueryError::Execution("expected a range vector".into())),
    }
}

/// The most samples any window of length `range` (open on the left) holds.
fn fullest_window(samples: &[Sample], range: i64) -> usize {
    let mut lo = 0;
    let mut best = 0;
    for (hi, s) in samples.iter().enumerate() {
        while samples[lo].t <= s.t - range {
            lo += 1;
        }
        best = best.max(hi + 1 - lo);
    }
    best
}

/// Merges series of a subquery's inner result that have the same labels once names are
/// dropped, keeping the drop mark (the outer function decides what to do with it).
fn merge_same_labels(ss: Vec<Ser>) -> Result<Vec<Ser>, QueryError> {
    let mut out: Vec<Ser> = Vec::with_capacity(ss.len());
    let mut index = std::collections::HashMap::new();
    for s in ss {
        let key = s.effective_labels();
        match index.get(&key) {
            None => {
                index.insert(key.clone(), out.len());
                out.push(Ser { labels: key, drop_name: s.drop_name, vals: s.vals });
            }
            Some(&i) => {
                let o: &mut Ser = &mut out[i];
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

/// One input series' index and its value per step.
pub(crate) type SlideResult = (usize, Vec<Option<f64>>);

/// Slides the window along every series and applies `f` to each step's points;
/// `f` returning `None` leaves no value at that step. Output labels are the input's.
pub(crate) fn slide(
    ev: &Evaluator<'_>,
    input: &RangeInput,
    g: &Grid,
    f: impl Fn(&[Sample], &Window) -> Option<f64> + Sync,
) -> Result<Vec<SlideResult>, QueryError> {
    slide_in_context(ev, input, g, |all, lo, hi, w| if lo < hi { f(&all[lo..hi], w) } else { None })
}

/// Fewest series for which the work is split over threads; below it, starting
/// threads costs more than it saves.
const PARALLEL_MIN_SERIES: usize = 256;

/// Most threads one range function uses.
const MAX_WORKERS: usize = 8;

/// Like [`slide`], but `f` sees the whole series and the window as `all[lo..hi]`, so
/// it can look at the samples around the window. Series are split over the cores.
pub(crate) fn slide_in_context(
    ev: &Evaluator<'_>,
    input: &RangeInput,
    g: &Grid,
    f: impl Fn(&[Sample], usize, usize, &Window) -> Option<f64> + Sync,
) -> Result<Vec<SlideResult>, QueryError> {
    let len = input.series.len();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS);
    if workers <= 1 || len < PARALLEL_MIN_SERIES {
        return slide_series(ev, input, g, &f, 0..len);
    }
    let chunk = len.div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let range = (w * chunk).min(len)..((w + 1) * chunk).min(len);
                let f = &f;
                scope.spawn(move || slide_series(ev, input, g, f, range))
            })
            .collect();
        let mut out = Vec::with_capacity(len);
        for h in handles {
            let part =
                h.join().map_err(|_| QueryError::Execution("an evaluation thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

fn slide_series(
    ev: &Evaluator<'_>,
    input: &RangeInput,
    g: &Grid,
    f: &(impl Fn(&[Sample], usize, usize, &Window) -> Option<f64> + Sync),
    range: std::ops::Range<usize>,
) -> Result<Vec<SlideResult>, QueryError> {
    let mut out = Vec::with_capacity(range.len());
    for si in range {
        let s = &input.series[si];
        ev.check_deadline()?;
        let pts = &s.samples;
        let (mut lo, mut hi) = (0usize, 0usize);
        let mut vals = Vec::with_capacity(g.n);
        let mut any = false;
        for i in 0..g.n {
            let t = g.t(i);
            let end = input.window_end(t);
            let start = end - input.range;
            // With `@` every step sees the same window, but functions such as
            // predict_linear still depend on the step's own time, so each is evaluated.
            while lo < pts.len() && pts[lo].t <= start {
                lo += 1;
            }
            if hi < lo {
                hi = lo;
            }
            while hi < pts.len() && pts[hi].t <= end {
                hi += 1;
            }
            let v = f(pts, lo, hi, &Window { start, end, t, range: input.range, step: i });
            any |= v.is_some();
            vals.push(v);
        }
        if any {
            out.push((si, vals));
        }
    }
    Ok(out)
}

/// The range vector as seen at time `t` (an instant query of `x[5m]`).
pub(super) fn materialize(input: &RangeInput, t: i64) -> Vec<Windowed> {
    let end = input.window_end(t);
    let start = end - input.range;
    input
        .series
        .iter()
        .filter_map(|s| {
            let samples: Vec<Sample> =
                s.samples.iter().copied().filter(|x| x.t > start && x.t <= end).collect();
            (!samples.is_empty()).then(|| Windowed {
                labels: s.labels.clone(),
                drop_name: s.drop_name,
                samples,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullest_window_is_open_on_the_left() {
        let s: Vec<Sample> = [0, 10, 20, 30, 35].iter().map(|&t| Sample::new(t, 1.0)).collect();
        // (t-10, t] holds at most two samples: 30 and 35.
        assert_eq!(fullest_window(&s, 10), 2);
        assert_eq!(fullest_window(&s, 16), 3);
        assert_eq!(fullest_window(&s, 100), 5);
    }
}
