//! PromQL for Vigil.
//!
//! Parses queries with `promql-parser` (after rewriting what it lacks: duration
//! expressions, `anchored`/`smoothed`, raw backtick strings; its errors get
//! Prometheus's `line:col` and wording in `parse_errors`), converts them once into Vigil's own plan
//! (`plan`), and evaluates the plan against a [`vigil_storage::Querier`] with
//! Prometheus 3's semantics (`eval`, `functions`). Knows nothing of HTTP.
//!
//! Evaluation is column-shaped: every selector is read once per query for all steps,
//! range functions slide one window along each series, and operators and
//! aggregations then work step by step.
//!
//! Public surface: [`Engine`], [`CancelToken`], [`EngineOptions`], [`QueryOptions`], [`parse_selector`],
//! [`Value`], [`VectorElement`], [`MatrixSeries`], [`QueryResult`], [`QueryStats`], [`QueryError`], and
//! [`promqltest`], the runner for Prometheus's PromQL test scripts.

mod annotations;
mod duration;
mod duration_expr;
mod engine;
mod error;
mod eval;
mod functions;
mod histogram;
mod info;
mod lexing;
mod mathx;
mod parse_errors;
mod plan;
pub mod promqltest;
mod range_modifiers;
mod raw_strings;
mod value;

pub use duration::parse_duration_ms;
pub use engine::{CancelToken, Engine, EngineOptions, QueryOptions, parse_selector, syntax_tree};
pub use error::QueryError;
/// The parser whose syntax tree [`syntax_tree`] returns.
pub use promql_parser;
pub use value::{MatrixSeries, QueryResult, QueryStats, Value, VectorElement};
