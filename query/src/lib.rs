//! PromQL for Vigil.
//!
//! Parses queries with `promql-parser` (after rewriting what it lacks: duration
//! expressions, `anchored`/`smoothed`), converts them once into Vigil's own plan
//! (`plan`), and evaluates the plan against a [`vigil_storage::Querier`] with
//! Prometheus 3's semantics (`eval`, `functions`). Knows nothing of HTTP.
//!
//! Evaluation is column-shaped: every selector is read once per query for all steps,
//! range functions slide one window along each series, and operators and
//! aggregations then work step by step.
//!
//! Public surface: [`Engine`], [`CancelToken`], [`EngineOptions`], [`QueryOptions`], [`parse_selector`],
//! [`Value`], [`VectorElement`], [`MatrixSeries`], [`QueryResult`], [`QueryError`], and
//! [`promqltest`], the runner for Prometheus's PromQL test scripts.

mod annotations;
mod duration_expr;
mod engine;
mod error;
mod eval;
mod functions;
mod histogram;
mod info;
mod mathx;
mod plan;
pub mod promqltest;
mod range_modifiers;
mod value;

pub use engine::{CancelToken, Engine, EngineOptions, QueryOptions, parse_selector};
pub use error::QueryError;
pub use value::{MatrixSeries, QueryResult, Value, VectorElement};
