//! Vigil's time-series storage.
//!
//! Owns the data model ([`Labels`], [`Matcher`], [`Sample`]), the chunk codec, the
//! write-ahead log, the in-memory head, and the two interfaces everything else goes
//! through: [`Appender`] to write samples and [`Querier`] to read them. The storage
//! knows nothing of PromQL or HTTP.
//!
//! Public surface: [`Labels`], [`Label`], [`Matcher`], [`MatchOp`], [`Sample`],
//! [`Appender`], [`Appendable`], [`AppendOutcome`], [`MetricMetadata`], [`Querier`], [`SelectHints`], [`Series`],
//! [`SampleIter`], [`StorageError`], and [`memory::MemStorage`], a plain in-memory
//! store for tests of the layers above.

pub mod chunk;
mod error;
mod labels;
mod matcher;
pub mod memory;
mod metadata;
mod sample;
mod traits;
mod varint;
pub mod wal;

pub use error::{AppendError, StorageError};
pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use metadata::{MetricMetadata, MetricType};
pub use sample::{STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};
pub use traits::{
    AppendOutcome, Appendable, Appender, Querier, SampleIter, SelectHints, Series, Storage, VecSampleIter,
};
