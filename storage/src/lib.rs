//! Vigil's time-series storage.
//!
//! Owns the data model ([`Labels`], [`Matcher`], [`Sample`]), the chunk codec, the
//! write-ahead log, the in-memory head, and the two interfaces everything else goes
//! through: [`Appender`] to write samples and [`Querier`] to read them. The storage
//! knows nothing of PromQL or HTTP.
//!
//! Layout (after Prometheus's `tsdb/`): [`chunk`] encodes a series' samples in the head
//! (Gorilla XOR chunks), [`wal`] logs every commit in checksummed segment files and
//! condenses them into checkpoints, the private `head` module keeps recent series in
//! memory (striped hash map, roaring postings, open and full chunks), [`block`] writes
//! and reads immutable block directories (`meta.json`, the private `index` module's
//! index, zstd-compressed chunks re-encoded for size), and [`db`] ties them together:
//! [`Db`] loads the head snapshot and replays the WAL after it (or the whole WAL after
//! its checkpoint) at open, runs the commit protocol, merges blocks and head in
//! queries, and its maintenance pass ([`Db::maintain`], or a thread started by
//! [`Db::spawn_maintenance`]) cuts blocks from the head, truncates the WAL, applies
//! retention, compacts, moves corrupt blocks aside and writes head snapshots so that a
//! crash replays only the WAL after the newest. Each on-disk format has a
//! `FORMAT.md` beside its code.
//!
//! Data directory: `wal/` (segments and `checkpoint.N/`), `blocks/<id>/`,
//! `chunks_head/` (full head chunks, memory-mapped; rebuilt at open), `head_snapshot`
//! (the head at the last graceful close or snapshot while running, `head/FORMAT.md`)
//! and `lock`.
//!
//! Storage-side APIs for the server: [`Db::maintain`] / [`Db::spawn_maintenance`],
//! [`Db::write_head_snapshot`] (at shutdown, so the next start skips the WAL replay),
//! [`Db::delete_series`] and [`Db::clean_tombstones`] (`/api/v1/admin/tsdb/…`),
//! [`Db::snapshot`] (backups: restore by serving the snapshot directory),
//! [`Db::import`] (backfill for `vigil import`), [`Db::tsdb_stats`]
//! (`/api/v1/status/tsdb`), [`Db::corrupt_blocks`] (for `/metrics`) and [`Db::blocks`].
//!
//! Options ([`DbOptions`]), with the configuration names the server maps to them:
//! `storage.block_range` → `block_range` (ms, default 2h), `storage.retention.raw` →
//! `retention_raw` (ms, default 90d, 0 = forever), `storage.retention.size` →
//! `retention_size` (bytes of blocks, 0 = no cap), `storage.out_of_order_window` →
//! `out_of_order_window` (ms, default 0 = late samples refused); compacted blocks span at most
//! [`DbOptions::max_block_span`] (10% of retention, at most 31 days).
//!
//! Public surface:
//! - data model: [`Labels`], [`Label`], [`LabelsBuilder`], [`Matcher`], [`MatchOp`],
//!   [`Sample`], the staleness marker ([`STALE_NAN_BITS`]), [`MetricMetadata`];
//! - interfaces: [`Appender`] (with the provided `append_many`), [`Appendable`],
//!   [`AppendOutcome`], [`Querier`], [`SelectHints`], [`Series`], [`SampleIter`],
//!   [`Storage`]; errors [`StorageError`] and [`AppendError`];
//! - the store: [`Db`], [`DbOptions`], [`SyncPolicy`] (when the WAL is fsynced),
//!   [`db::Maintenance`], [`db::MaintenanceReport`], [`db::ImportReport`],
//!   [`block::BlockMeta`], [`stats::TsdbStats`];
//! - codecs for benches and tools: [`chunk::XorChunk`], [`chunk::XorEncoder`],
//!   [`chunk::XorIter`], [`block::encode_chunk`] and [`block::decode_chunk`] (the
//!   at-rest encoding, before zstd) and the WAL's [`wal::record`] and [`wal::replay`];
//! - [`memory::MemStorage`], a plain in-memory store for tests of the layers above and
//!   the reference model the head and `Db` are tested against.
//!
//! Label lookups and regex matchers answer from the indexes' sorted value dictionaries:
//! a regex's literal set is looked up and its literal prefixes restrict the scan to key
//! ranges (the private `matcher::dictionary`), and label names and values come from
//! postings without samples (the private `lookup` module).
//!
//! Not done yet: a downsampled tier; an FST over block label values (regexes without a
//! literal prefix still test every value of their label, with the fast tests of
//! `matcher::shape` where the pattern allows).

pub mod block;
pub mod chunk;
pub mod db;
mod error;
pub mod failpoint;
mod head;
mod index;
mod labels;
mod lookup;
mod mapped;
mod matcher;
pub mod memory;
mod metadata;
mod sample;
pub mod stats;
mod traits;
mod varint;
pub mod wal;

pub use db::{Db, DbAppender, DbOptions};
pub use error::{AppendError, StorageError};
pub use labels::{Label, LabelRef, Labels, LabelsBuilder, LabelsIter, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use metadata::{MetricMetadata, MetricType};
pub use sample::{STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};
pub use traits::{
    AppendOutcome, Appendable, Appender, Querier, SampleIter, SelectHints, Series, Storage, VecSampleIter,
};
pub use wal::SyncPolicy;
