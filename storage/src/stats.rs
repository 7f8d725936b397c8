//! Cardinality statistics of the head, in the shape of Prometheus's
//! `/api/v1/status/tsdb` (the server serialises them).

/// A name (metric name, label name or `name=value` pair) with a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCount {
    /// What is counted.
    pub name: String,
    /// How many.
    pub value: u64,
}

/// Head statistics and the top entries by cardinality, each list sorted by count
/// (descending), then name, and cut to the requested limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsdbStats {
    /// Series in the head.
    pub num_series: u64,
    /// Distinct label pairs in the head.
    pub num_label_pairs: u64,
    /// Samples stored in the head.
    pub num_samples: u64,
    /// Chunks in the head, full (memory-mapped) and open (`chunkCount`).
    pub num_chunks: u64,
    /// Oldest sample time the head serves (ms), `None` when empty.
    pub min_time: Option<i64>,
    /// Newest sample time in the head (ms), `None` when empty.
    pub max_time: Option<i64>,
    /// Series per metric name (`seriesCountByMetricName`).
    pub series_count_by_metric_name: Vec<NameCount>,
    /// Distinct values per label name (`labelValueCountByLabelName`).
    pub label_value_count_by_label_name: Vec<NameCount>,
    /// Bytes of label values per label name, summed over series (`memoryInBytesByLabelName`).
    pub memory_in_bytes_by_label_name: Vec<NameCount>,
    /// Series per `name=value` pair (`seriesCountByLabelValuePair`).
    pub series_count_by_label_value_pair: Vec<NameCount>,
}

/// Sorts by count descending, then name, and keeps the first `limit`.
pub(crate) fn top(mut v: Vec<NameCount>, limit: usize) -> Vec<NameCount> {
    v.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    v.truncate(limit);
    v
}
