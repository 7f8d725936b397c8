//! The remote-write 2.0 protobuf messages (`io.prometheus.write.v2.Request` and
//! friends), declared with prost derives so tests, benches and the load harness encode
//! requests with the same types the server decodes.
//!
//! Field numbers follow Prometheus's `prompb/io/prometheus/write/v2/types.proto`
//! (spec 2.0-rc.4): labels, help and unit are references into the request's symbols
//! table. Native histograms reuse the 1.0 [`Histogram`] message: fields 1-16 are the
//! same, and 2.0's `start_timestamp` (17) is skipped as an unknown field, since Vigil
//! only counts and refuses them.

pub use super::proto::Histogram;

/// `io.prometheus.write.v2.Request`: the body of a remote-write 2.0 request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// Interned strings; `symbols[0]` must be the empty string.
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    /// The series with their samples.
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series: label references, samples or histograms, exemplars and metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Pairs of symbol indexes: name, value, name, value, ...
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Float samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples (refused: Vigil does not store them yet).
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    /// Exemplars of this series.
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
    /// Type, help and unit of the series' family.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
    /// The series' created timestamp in ms (0 = not sent), as senders built before
    /// spec 2.0-rc.4 send it (Prometheus 3.5 among them); later senders put a start
    /// timestamp on each sample instead and reserve this field.
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

/// One float sample with its optional start (created) timestamp.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    /// When the counter (re)started, in ms; 0 = not sent.
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// An exemplar: its own labels (by reference), value and time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Pairs of symbol indexes, like [`TimeSeries::labels_refs`].
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Type, help and unit of a series' family; help and unit by reference.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Metadata {
    /// The family's type (same numbers as 1.0's [`super::proto::MetricType`]; 0 = unspecified).
    #[prost(enumeration = "super::proto::MetricType", tag = "1")]
    pub r#type: i32,
    /// Symbol index of the HELP text.
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    /// Symbol index of the unit.
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}
