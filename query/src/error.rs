//! Errors of parsing and evaluation, each mapping to one Prometheus API error type.

use thiserror::Error;

/// Why a query did not produce a result.
#[derive(Debug, Error)]
pub enum QueryError {
    /// The query text does not parse (API: `bad_data`, 400). Text as Prometheus words it.
    #[error("{0}")]
    Parse(String),
    /// Evaluation failed (API: `execution`, 422), e.g. many-to-many matching.
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than its timeout (API: `timeout`, 503).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The client went away or the query was cancelled (API: `canceled`, 499).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// The query loaded more samples than allowed (API: `execution`, 422).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// Storage failed underneath (API: `internal`, 500).
    #[error("{0}")]
    Storage(#[from] vigil_storage::StorageError),
}
