//! Query results: what an evaluation returns to the API layer.

use vigil_storage::{Labels, Sample};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorElement {
    /// The series' labels (metric name dropped where PromQL drops it).
    pub labels: Labels,
    /// Evaluation timestamp in ms.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One series of a range vector or of a range query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its points in time order.
    pub samples: Vec<Sample>,
}

/// The value of a query, in the four PromQL result types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at a timestamp (ms).
    Scalar {
        /// Timestamp in ms.
        t: i64,
        /// The number.
        v: f64,
    },
    /// A string at a timestamp (ms).
    String {
        /// Timestamp in ms.
        t: i64,
        /// The text.
        v: String,
    },
    /// An instant vector, in the order PromQL leaves it (sorted only under `sort*`).
    Vector(Vec<VectorElement>),
    /// A range vector, or the result of a range query (series sorted by labels).
    Matrix(Vec<MatrixSeries>),
}

impl Value {
    /// The `resultType` name of Prometheus's API.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// A query's value with the annotations Prometheus would attach.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The result.
    pub value: Value,
    /// Warnings (`warnings` in the API response).
    pub warnings: Vec<String>,
    /// Informational notes (`infos` in the API response).
    pub infos: Vec<String>,
    /// What the query cost (`stats` in the API response when asked for).
    pub stats: QueryStats,
}

/// Timings and sample counts of one query, as Prometheus reports them with `stats=all`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryStats {
    /// Parsing and planning.
    pub preparation: std::time::Duration,
    /// Evaluation of the plan.
    pub inner_eval: std::time::Duration,
    /// Sorting the result.
    pub result_sort: std::time::Duration,
    /// Samples read from storage by the query's selectors.
    pub total_queryable_samples: u64,
    /// Most samples one intermediate value held.
    pub peak_samples: usize,
}
