//! Vigil's time-series storage.
//!
//! Owns the data model ([`Labels`], [`Matcher`], [`Sample`]), the chunk codec, the
//! write-ahead log, the in-memory head, and the two interfaces everything else goes
//! through: [`Appender`] to write samples and [`Querier`] to read them. The storage
//! knows nothing of PromQL or HTTP.
//!
//! Layout (after Prometheus's `tsdb/`): [`chunk`] encodes a series' samples (Gorilla
//! XOR chunks), [`wal`] logs every commit in checksummed segment files, the private
//! `head` module keeps all series in memory (striped hash map, roaring postings, open
//! and full chunks), and [`db`] ties them together: [`Db`] replays the WAL at open and
//! runs the commit protocol. Each on-disk format has a `FORMAT.md` beside its code.
//!
//! Public surface:
//! - data model: [`Labels`], [`Label`], [`LabelsBuilder`], [`Matcher`], [`MatchOp`],
//!   [`Sample`], the staleness marker ([`STALE_NAN_BITS`]), [`MetricMetadata`];
//! - interfaces: [`Appender`] (with the provided `append_many`), [`Appendable`],
//!   [`AppendOutcome`], [`Querier`], [`SelectHints`], [`Series`], [`SampleIter`],
//!   [`Storage`]; errors [`StorageError`] and [`AppendError`];
//! - the store: [`Db`], [`DbOptions`], [`SyncPolicy`] (when the WAL is fsynced);
//! - codecs for benches and tools: [`chunk::XorChunk`], [`chunk::XorEncoder`],
//!   [`chunk::XorIter`], and the WAL's [`wal::record`] and [`wal::replay`];
//! - [`memory::MemStorage`], a plain in-memory store for tests of the layers above and
//!   the reference model the head is tested against.

pub mod block;
pub mod chunk;
pub mod db;
mod error;
mod head;
mod index;
mod labels;
mod matcher;
pub mod memory;
mod metadata;
mod sample;
mod traits;
mod varint;
pub mod wal;

pub use db::{Db, DbAppender, DbOptions};
pub use error::{AppendError, StorageError};
pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use metadata::{MetricMetadata, MetricType};
pub use sample::{STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};
pub use traits::{
    AppendOutcome, Appendable, Appender, Querier, SampleIter, SelectHints, Series, Storage, VecSampleIter,
};
pub use wal::SyncPolicy;
