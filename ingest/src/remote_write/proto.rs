//! The remote-write 1.0 protobuf messages (`prometheus.WriteRequest` and friends),
//! declared with prost derives so that tests and the load harness can encode requests
//! with the same types the server decodes.
//!
//! Field numbers follow Prometheus's `prompb/types.proto` and `remote.proto`. Label
//! names and values are declared as `bytes` (wire-identical to `string`) so that one
//! series with invalid UTF-8 is rejected on its own instead of failing the request.

/// `prometheus.WriteRequest`: the body of a remote-write 1.0 request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Type, help and unit of metric families.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: its labels and samples (plus exemplars and native histograms).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Label pairs; the spec asks senders to sort them by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars (Vigil does not store them yet and ignores them).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histogram samples (rejected: Vigil does not store them yet).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// One label pair, as raw bytes that must be UTF-8. Decoded from a [`bytes::Bytes`]
/// body, both are slices of it: no allocation per label (there were two, about twenty
/// per sample in all, most of the server's ingest CPU at a million series).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: bytes::Bytes,
    /// Label value.
    #[prost(bytes = "bytes", tag = "2")]
    pub value: bytes::Bytes,
}

impl Label {
    /// A label from two strings.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label { name: name.into().into(), value: value.into().into() }
    }
}

/// One float sample.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// An exemplar attached to a series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// The exemplar's own labels (e.g. a trace id).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// A native histogram sample (decoded only to be counted and refused).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Observation count, integer or float.
    #[prost(oneof = "HistogramCount", tags = "1, 2")]
    pub count: Option<HistogramCount>,
    /// Sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket resolution schema.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Width of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Zero-bucket count, integer or float.
    #[prost(oneof = "HistogramZeroCount", tags = "6, 7")]
    pub zero_count: Option<HistogramZeroCount>,
    /// Spans of negative buckets.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Negative bucket counts as deltas (integer histograms).
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Negative bucket counts (float histograms).
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Spans of positive buckets.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Positive bucket counts as deltas (integer histograms).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Positive bucket counts (float histograms).
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Counter-reset hint.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Custom bucket bounds (schema -53).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// The count of a [`Histogram`].
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum HistogramCount {
    /// Integer count.
    #[prost(uint64, tag = "1")]
    CountInt(u64),
    /// Float count.
    #[prost(double, tag = "2")]
    CountFloat(f64),
}

/// The zero-bucket count of a [`Histogram`].
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum HistogramZeroCount {
    /// Integer count.
    #[prost(uint64, tag = "6")]
    ZeroCountInt(u64),
    /// Float count.
    #[prost(double, tag = "7")]
    ZeroCountFloat(f64),
}

/// A run of consecutive buckets in a [`Histogram`].
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span.
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Number of buckets.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Type, help and unit of one metric family.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// The family's type.
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    /// The family name (e.g. `http_requests_total` for a counter).
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// HELP text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Prometheus's `MetricMetadata.MetricType` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Type not reported.
    Unknown = 0,
    /// Counter.
    Counter = 1,
    /// Gauge.
    Gauge = 2,
    /// Classic histogram.
    Histogram = 3,
    /// Gauge histogram.
    Gaugehistogram = 4,
    /// Summary.
    Summary = 5,
    /// Info.
    Info = 6,
    /// State set.
    Stateset = 7,
}

impl MetricType {
    /// The storage layer's name for this type; unknown numbers map to `Unknown`.
    pub fn to_storage(raw: i32) -> vigil_storage::MetricType {
        use vigil_storage::MetricType as S;
        match MetricType::try_from(raw) {
            Ok(MetricType::Counter) => S::Counter,
            Ok(MetricType::Gauge) => S::Gauge,
            Ok(MetricType::Histogram) => S::Histogram,
            Ok(MetricType::Gaugehistogram) => S::GaugeHistogram,
            Ok(MetricType::Summary) => S::Summary,
            Ok(MetricType::Info) => S::Info,
            Ok(MetricType::Stateset) => S::StateSet,
            Ok(MetricType::Unknown) | Err(_) => S::Unknown,
        }
    }
}
