//! The interfaces between storage and the rest of Vigil: [`Appender`] and [`Querier`].

use crate::error::{AppendError, StorageError};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::MetricMetadata;
use crate::sample::Sample;

/// Writes a batch of samples; nothing is visible or durable until [`Appender::commit`].
pub trait Appender: Send {
    /// Buffers one float sample for the series `labels` (already validated by the caller).
    fn append(&mut self, labels: &Labels, t: i64, v: f64);

    /// Buffers several samples of one series; stores override it to look the series up
    /// once instead of once per sample.
    fn append_many(&mut self, labels: &Labels, samples: &[Sample]) {
        for s in samples {
            self.append(labels, s.t, s.v);
        }
    }

    /// Buffers the type/help/unit of a metric family, kept for `/api/v1/metadata`.
    fn update_metadata(&mut self, metric_family: &str, meta: MetricMetadata);

    /// Writes the batch: samples that conflict with stored data are refused and counted,
    /// the rest is logged to the WAL and then made queryable. `Ok` means durable.
    fn commit(self: Box<Self>) -> Result<AppendOutcome, StorageError>;
}

/// Hands out appenders; implemented by every writable store.
pub trait Appendable: Send + Sync {
    /// A new, empty batch.
    fn appender(&self) -> Box<dyn Appender + '_>;
}

/// A store that can be both written and read; what the server holds.
pub trait Storage: Querier + Appendable {}

impl<T: Querier + Appendable> Storage for T {}

/// What a commit did with its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendOutcome {
    /// Samples written (including exact duplicates accepted silently).
    pub appended: u64,
    /// Samples refused as older than the series' newest sample.
    pub out_of_order: u64,
    /// Samples refused for repeating a timestamp with another value.
    pub duplicate: u64,
    /// The first refusal, to name in an error message.
    pub first_error: Option<(Labels, i64, AppendError)>,
}

impl AppendOutcome {
    /// Samples refused for any reason.
    pub fn rejected(&self) -> u64 {
        self.out_of_order + self.duplicate
    }

    /// Counts one refusal.
    pub fn reject(&mut self, labels: &Labels, t: i64, err: AppendError) {
        match err {
            AppendError::OutOfOrder => self.out_of_order += 1,
            AppendError::DuplicateTimestamp => self.duplicate += 1,
        }
        if self.first_error.is_none() {
            self.first_error = Some((labels.clone(), t, err));
        }
    }
}

/// What a query will do with the selected data, so storage can choose how to serve it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectHints {
    /// Earliest timestamp needed, in ms (inclusive).
    pub start: i64,
    /// Latest timestamp needed, in ms (inclusive).
    pub end: i64,
    /// Query step in ms (0 for an instant query).
    pub step: i64,
    /// Range of the enclosing range selector in ms (0 for an instant selector).
    pub range: i64,
    /// The function applied to the selection, when known (e.g. `rate`).
    pub func: Option<String>,
}

/// One selected series and its samples in time order.
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Its samples between the hinted start and end.
    pub samples: Box<dyn SampleIter>,
}

/// Walks a series' samples in increasing time order.
pub trait SampleIter: Send {
    /// The next sample, or `None` at the end.
    fn next(&mut self) -> Option<Sample>;

    /// Skips to the first sample at or after `t` and returns it (it is consumed, like `next`).
    fn seek(&mut self, t: i64) -> Option<Sample> {
        loop {
            let s = self.next()?;
            if s.t >= t {
                return Some(s);
            }
        }
    }
}

/// A [`SampleIter`] over an owned vector.
pub struct VecSampleIter {
    samples: Vec<Sample>,
    pos: usize,
}

impl VecSampleIter {
    /// Iterates `samples`, which must be in time order.
    pub fn new(samples: Vec<Sample>) -> Self {
        VecSampleIter { samples, pos: 0 }
    }
}

impl SampleIter for VecSampleIter {
    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.pos).copied()?;
        self.pos += 1;
        Some(s)
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        let rest = &self.samples[self.pos.min(self.samples.len())..];
        self.pos += rest.partition_point(|s| s.t < t);
        self.next()
    }
}

/// Reads series and label index data; the query engine uses nothing else.
pub trait Querier: Send + Sync {
    /// Series matching all `matchers` (an empty list matches none), sorted by labels,
    /// with samples in `[hints.start, hints.end]`.
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError>;

    /// Sorted label names of series matching `matchers` (all series when empty) in the
    /// parts of the store whose time range overlaps `[mint, maxt]`. As in Prometheus, a
    /// store split in parts (the head, each block) checks only each part's range, not
    /// each series' samples, so a series without samples in the range may still count
    /// when its part overlaps it; [`crate::memory::MemStorage`] checks each series.
    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>, StorageError>;

    /// Sorted values of label `name` over series matching `matchers` (all when empty),
    /// with the time range applied as for [`Querier::label_names`].
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Metadata per metric family, sorted by family name.
    fn metadata(&self) -> Vec<(String, Vec<MetricMetadata>)>;
}
