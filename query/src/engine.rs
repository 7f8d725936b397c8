//! The engine's entry points: instant and range queries with their options.

use std::time::Duration;

use vigil_storage::{Matcher, Querier};

use crate::error::QueryError;
use crate::value::QueryResult;

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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            default_subquery_step: Duration::from_secs(60),
            experimental_functions: false,
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
        let _ = (querier, query, time_ms, opts);
        Err(QueryError::Execution("PromQL evaluation is not implemented yet".into()))
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
        let _ = (querier, query, start_ms, end_ms, step_ms, opts);
        Err(QueryError::Execution("PromQL evaluation is not implemented yet".into()))
    }
}

/// Parses a series selector such as `up{job="x"}` or `{__name__=~".+",}` into
/// matchers, as the `match[]` parameter of the metadata endpoints needs.
pub fn parse_selector(selector: &str) -> Result<Vec<Matcher>, QueryError> {
    let _ = selector;
    Err(QueryError::Parse("selector parsing is not implemented yet".into()))
}
