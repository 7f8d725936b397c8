//! PromQL for Vigil.
//!
//! Parses queries with `promql-parser`, converts them into Vigil's own plan, and
//! evaluates the plan against a [`vigil_storage::Querier`] with Prometheus 3's
//! semantics. Knows nothing of HTTP.
//!
//! Public surface: [`Engine`], [`EngineOptions`], [`QueryOptions`], [`parse_selector`],
//! [`Value`], [`VectorElement`], [`MatrixSeries`], [`QueryResult`], [`QueryError`].

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

pub use engine::{Engine, EngineOptions, QueryOptions, parse_selector};
pub use error::QueryError;
pub use value::{MatrixSeries, QueryResult, Value, VectorElement};
