//! The engine's entry points: instant and range queries with their options.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vigil_storage::{Labels, Matcher, Querier, Sample};

use crate::error::QueryError;
use crate::eval::{Evaluator, Grid, QueryRange, Ser, Val, finish_vector};
use crate::plan::{self, Expr, Kind, PlanContext};
use crate::value::{MatrixSeries, QueryResult, QueryStats, Value, VectorElement};

/// Settings of the engine; defaults are Prometheus's.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (default 5m).
    pub lookback_delta: Duration,
    /// Longest a query may run (default 2m).
    pub timeout: Duration,
    /// Most samples a query may hold in memory at once (default 50,000,000).
    pub max_samples: usize,
    /// Step of a subquery written without one, e.g. `x[5m:]` (Prometheus: the rule
    /// evaluation interval, 1m by default).
    pub default_subquery_step: Duration,
    /// Allows experimental functions (`--enable-feature=promql-experimental-functions`).
    pub experimental_functions: bool,
    /// Keeps the metric name until the end of evaluation and drops it only then
    /// (`--enable-feature=promql-delayed-name-removal`; off by default, as in
    /// Prometheus 3, and on in Prometheus's test scripts).
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            default_subquery_step: Duration::from_secs(60),
            experimental_functions: false,
            delayed_name_removal: false,
        }
    }
}

/// Per-query overrides the API accepts (`timeout`, `lookback_delta`).
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Overrides [`EngineOptions::timeout`] when shorter.
    pub timeout: Option<Duration>,
    /// Overrides [`EngineOptions::lookback_delta`].
    pub lookback_delta: Option<Duration>,
}

/// Cancels a running query from another thread; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that has not been cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Asks every query holding this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Evaluates PromQL against any [`Querier`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// An engine with these options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `time_ms`.
    pub fn instant_query(
        &self,
        querier: &dyn Querier,
        query: &str,
        time_ms: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        self.instant_query_pinned(querier, query, time_ms, None, opts, &CancelToken::default())
    }

    /// [`Engine::instant_query`] that stops with [`QueryError::Canceled`] once `cancel`
    /// is cancelled (e.g. when the HTTP client went away).
    pub fn instant_query_cancellable(
        &self,
        querier: &dyn Querier,
        query: &str,
        time_ms: i64,
        opts: &QueryOptions,
        cancel: &CancelToken,
    ) -> Result<QueryResult, QueryError> {
        self.instant_query_pinned(querier, query, time_ms, None, opts, cancel)
    }

    /// An instant query whose selectors and subqueries without `@` are first pinned
    /// to `pin` (the test runner's step-invariance check).
    pub(crate) fn instant_query_pinned(
        &self,
        querier: &dyn Querier,
        query: &str,
        time_ms: i64,
        pin: Option<i64>,
        opts: &QueryOptions,
        cancel: &CancelToken,
    ) -> Result<QueryResult, QueryError> {
        let started = Instant::now();
        let mut plan = self.plan(query, time_ms, time_ms, 0)?;
        if let Some(p) = pin {
            plan::pin_at(&mut plan, p);
        }
        let preparation = started.elapsed();
        let grid = Grid { start: time_ms, step: INSTANT_STEP_MS, n: 1 };
        let mut ev = self.evaluator(
            querier,
            query,
            opts,
            cancel,
            QueryRange { start: time_ms, end: time_ms, step: 0 },
        );
        let value = match ev.eval(&plan, &grid)? {
            Val::Scalar(v) => Value::Scalar { t: time_ms, v: v[0] },
            Val::Str(s) => Value::String { t: time_ms, v: s },
            Val::Vector(ss) => Value::Vector(
                finish_vector(ss)?
                    .into_iter()
                    .filter_map(|s| s.vals[0].map(|v| VectorElement { labels: s.labels, t: time_ms, v }))
                    .collect(),
            ),
            Val::Matrix(ws) => Value::Matrix(
                ws.into_iter()
                    .map(|w| MatrixSeries { labels: w.effective_labels(), samples: w.samples })
                    .collect(),
            ),
        };
        let stats = ev.stats(preparation, started.elapsed() - preparation, Duration::ZERO);
        Ok(QueryResult { value, warnings: ev.warnings, infos: ev.infos, stats })
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms` (inclusive) and
    /// returns a matrix (or an error for string results, as Prometheus does).
    pub fn range_query(
        &self,
        querier: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        self.range_query_cancellable(querier, query, start_ms, end_ms, step_ms, opts, &CancelToken::default())
    }

    /// [`Engine::range_query`] that stops with [`QueryError::Canceled`] once `cancel`
    /// is cancelled (e.g. when the HTTP client went away).
    #[allow(clippy::too_many_arguments)]
    pub fn range_query_cancellable(
        &self,
        querier: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &QueryOptions,
        cancel: &CancelToken,
    ) -> Result<QueryResult, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::Parse(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::Parse("end timestamp must not be before start time".into()));
        }
        let started = Instant::now();
        let plan = self.plan(query, start_ms, end_ms, step_ms)?;
        let preparation = started.elapsed();
        match plan.kind() {
            Kind::Scalar | Kind::Vector => {}
            Kind::Matrix => {
                return Err(QueryError::Parse(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
                        .into(),
                ));
            }
            Kind::String => {
                return Err(QueryError::Parse(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector"
                        .into(),
                ));
            }
        }
        let n = usize::try_from((end_ms - start_ms) / step_ms)
            .map_err(|_| QueryError::Parse("bad range".into()))?
            + 1;
        if n > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        let grid = Grid { start: start_ms, step: step_ms, n };
        let mut ev = self.evaluator(
            querier,
            query,
            opts,
            cancel,
            QueryRange { start: start_ms, end: end_ms, step: step_ms },
        );
        let series = match ev.eval(&plan, &grid)? {
            Val::Scalar(v) => vec![Ser {
                labels: Labels::empty(),
                drop_name: false,
                vals: v.into_iter().map(Some).collect(),
            }],
            Val::Vector(ss) => finish_vector(ss)?,
            _ => return Err(QueryError::Execution("range query did not give a vector".into())),
        };
        let mut out: Vec<MatrixSeries> = series
            .into_iter()
            .map(|s| MatrixSeries {
                labels: s.labels,
                samples: s
                    .vals
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| Sample::new(grid.t(i), v)))
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        ev.check_samples(out.iter().map(|s| s.samples.len()).sum())?;
        let sorting = Instant::now();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        let result_sort = sorting.elapsed();
        let stats = ev.stats(preparation, sorting - started - preparation, result_sort);
        Ok(QueryResult { value: Value::Matrix(out), warnings: ev.warnings, infos: ev.infos, stats })
    }

    /// Parses and plans `query` without running it: the errors a query would give
    /// before evaluation (syntax, types, disabled functions).
    pub fn check_syntax(&self, query: &str) -> Result<(), QueryError> {
        self.plan(query, 0, 0, 0).map(|_| ())
    }

    fn plan(&self, query: &str, start: i64, end: i64, step: i64) -> Result<Expr, QueryError> {
        let ctx = PlanContext {
            start,
            end,
            step,
            default_step: i64::try_from(self.opts.default_subquery_step.as_millis()).unwrap_or(i64::MAX),
            experimental: self.opts.experimental_functions,
        };
        plan::parse(query, &ctx)
    }

    fn evaluator<'a>(
        &self,
        querier: &'a dyn Querier,
        text: &'a str,
        opts: &QueryOptions,
        cancel: &CancelToken,
        query: QueryRange,
    ) -> Evaluator<'a> {
        let timeout = opts.timeout.map_or(self.opts.timeout, |t| t.min(self.opts.timeout));
        let lookback = opts.lookback_delta.unwrap_or(self.opts.lookback_delta);
        Evaluator {
            querier,
            text,
            query,
            lookback: i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX),
            deadline: Instant::now() + timeout,
            max_samples: self.opts.max_samples,
            delayed_name_removal: self.opts.delayed_name_removal,
            cancel: cancel.clone(),
            warnings: Vec::new(),
            infos: Vec::new(),
            loaded_samples: 0,
            peak_samples: Default::default(),
        }
    }
}

impl Evaluator<'_> {
    fn stats(&self, preparation: Duration, inner_eval: Duration, result_sort: Duration) -> QueryStats {
        QueryStats {
            preparation,
            inner_eval,
            result_sort,
            total_queryable_samples: self.loaded_samples,
            peak_samples: self.peak_samples.load(Ordering::Relaxed),
        }
    }
}

/// Step of the one-step grid of an instant query (any positive value works).
const INSTANT_STEP_MS: i64 = 1;

/// The syntax tree of `query` from `promql-parser` (for the API's `parse_query` and
/// `format_query`); fails on syntax the parser itself lacks (duration expressions,
/// `anchored`/`smoothed`) even where [`Engine::check_syntax`] accepts it.
pub fn syntax_tree(query: &str) -> Result<promql_parser::parser::Expr, QueryError> {
    plan::syntax_tree(query)
}

/// Parses a series selector such as `up{job="x"}` or `{__name__=~".+",}` into
/// matchers, as the `match[]` parameter of the metadata endpoints needs.
pub fn parse_selector(selector: &str) -> Result<Vec<Matcher>, QueryError> {
    plan::parse_selector(selector)
}

#[cfg(test)]
mod tests {
    use vigil_storage::memory::MemStorage;
    use vigil_storage::{Labels, stale_nan};

    use super::*;

    fn store() -> MemStorage {
        let s = MemStorage::new();
        let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        for (t, v) in [(0, 1.0), (60_000, 2.0), (120_000, stale_nan()), (180_000, 4.0)] {
            s.add(&l, t, v).unwrap();
        }
        s
    }

    fn instant(s: &MemStorage, q: &str, t: i64) -> Value {
        Engine::default().instant_query(s, q, t, &QueryOptions::default()).unwrap().value
    }

    fn values(v: &Value) -> Vec<f64> {
        match v {
            Value::Vector(e) => e.iter().map(|e| e.v).collect(),
            Value::Scalar { v, .. } => vec![*v],
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn lookback_is_open_on_the_left_and_staleness_ends_a_series() {
        let s = store();
        assert_eq!(values(&instant(&s, "x", 90_000)), vec![2.0]);
        // The stale marker at 120s hides the sample at 60s.
        assert!(values(&instant(&s, "x", 150_000)).is_empty());
        assert_eq!(values(&instant(&s, "x", 180_000)), vec![4.0]);
        // 5m after the last sample it is out of reach (the window excludes its start).
        assert_eq!(values(&instant(&s, "x", 180_000 + 299_999)), vec![4.0]);
        assert!(values(&instant(&s, "x", 180_000 + 300_000)).is_empty());
        // A shorter lookback per query.
        let opts = QueryOptions { lookback_delta: Some(Duration::from_secs(10)), ..Default::default() };
        let r = Engine::default().instant_query(&s, "x", 65_000, &opts).unwrap();
        assert_eq!(values(&r.value), vec![2.0]);
        let r = Engine::default().instant_query(&s, "x", 70_000, &opts).unwrap();
        assert!(values(&r.value).is_empty());
    }

    #[test]
    fn range_vectors_drop_stale_markers() {
        let s = store();
        assert_eq!(values(&instant(&s, "count_over_time(x[10m])", 180_000)), vec![3.0]);
    }

    #[test]
    fn range_query_returns_a_sorted_matrix_and_refuses_strings() {
        let s = store();
        let e = Engine::default();
        let r = e.range_query(&s, "x or vector(5)", 0, 60_000, 60_000, &QueryOptions::default()).unwrap();
        let Value::Matrix(m) = r.value else { panic!("not a matrix") };
        assert!(m.windows(2).all(|w| w[0].labels < w[1].labels));
        let err = e.range_query(&s, "\"a\"", 0, 60_000, 60_000, &QueryOptions::default()).unwrap_err();
        assert!(err.to_string().contains("invalid expression type \"string\" for range query"));
    }

    #[test]
    fn enforces_sample_limit_and_timeout() {
        let s = store();
        let small = Engine::new(EngineOptions { max_samples: 1, ..Default::default() });
        let err = small.range_query(&s, "x", 0, 60_000, 30_000, &QueryOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "query processing would load too many samples into memory in query execution"
        );
        let opts = QueryOptions { timeout: Some(Duration::ZERO), ..Default::default() };
        let err = Engine::default().instant_query(&s, "x", 0, &opts).unwrap_err();
        assert!(matches!(err, QueryError::Timeout(_)), "{err}");
        let cancel = CancelToken::new();
        cancel.clone().cancel();
        let err = Engine::default()
            .range_query_cancellable(&s, "x", 0, 60_000, 30_000, &QueryOptions::default(), &cancel)
            .unwrap_err();
        assert_eq!(err.to_string(), "query was canceled in query execution");
    }

    #[test]
    fn range_functions_split_over_threads_keep_series_order() {
        // Enough series to take the parallel path; each grows by its index per minute.
        let s = MemStorage::new();
        for i in 0..600 {
            let l = Labels::from_pairs([("__name__", "c_total".to_string()), ("i", format!("{i:04}"))]);
            for k in 0..20 {
                s.add(&l, k * 60_000, (i * k) as f64).unwrap();
            }
        }
        let r = Engine::default()
            .range_query(&s, "increase(c_total[2m])", 600_000, 900_000, 60_000, &QueryOptions::default())
            .unwrap();
        let Value::Matrix(m) = r.value else { panic!("not a matrix") };
        assert_eq!(m.len(), 600);
        for (i, series) in m.iter().enumerate() {
            assert_eq!(series.labels.get("i"), Some(format!("{i:04}").as_str()));
            // Window (t-2m, t] holds two samples 1m apart; extrapolated to 2m: 2 * i.
            assert!(series.samples.iter().all(|p| (p.v - 2.0 * i as f64).abs() < 1e-9), "{series:?}");
        }
    }

    #[test]
    fn native_histogram_functions_ignore_floats() {
        let s = store();
        let r =
            Engine::default().instant_query(&s, "histogram_count(x)", 0, &QueryOptions::default()).unwrap();
        assert_eq!(r.value, Value::Vector(vec![]));
    }

    #[test]
    fn metric_names_are_dropped_at_once_unless_delayed() {
        let s = MemStorage::new();
        let l = Labels::from_pairs([("__name__", "x_total")]);
        for k in 0..10 {
            s.add(&l, k * 60_000, k as f64).unwrap();
        }
        let q = r#"label_replace(rate(x_total[5m]), "n", "$1", "__name__", "(.*)")"#;
        let labels =
            |e: &Engine| match e.instant_query(&s, q, 540_000, &QueryOptions::default()).unwrap().value {
                Value::Vector(v) => v[0].labels.clone(),
                other => panic!("unexpected {other:?}"),
            };
        assert_eq!(labels(&Engine::default()).to_string(), "{}");
        let delayed = Engine::new(EngineOptions { delayed_name_removal: true, ..Default::default() });
        assert_eq!(labels(&delayed).to_string(), r#"{n="x_total"}"#);
        // Two series that differ only by name collide as soon as the name goes.
        let y = Labels::from_pairs([("__name__", "y_total")]);
        for k in 0..10 {
            s.add(&y, k * 60_000, k as f64).unwrap();
        }
        let q = r#"sum(rate({__name__=~"x_total|y_total"}[5m]))"#;
        let err = Engine::default().instant_query(&s, q, 540_000, &QueryOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
    }

    #[test]
    fn experimental_functions_need_the_flag() {
        let s = store();
        let err =
            Engine::default().instant_query(&s, "sort_by_label(x, \"job\")", 0, &QueryOptions::default());
        assert!(matches!(err, Err(QueryError::Parse(_))));
        let on = Engine::new(EngineOptions { experimental_functions: true, ..Default::default() });
        assert!(on.instant_query(&s, "sort_by_label(x, \"job\")", 0, &QueryOptions::default()).is_ok());
    }
}
