//! The write-ahead log in `<data>/wal/`: every commit is appended here before it is
//! applied to the head, and replayed into the head at start.
//!
//! Segments are numbered files ([`segment`]) of checksummed records ([`record`]), written
//! by [`WalWriter`] and read back by [`replay`]. The byte layout, the recovery rules and
//! the fsync policy are in `FORMAT.md` beside this file.

pub mod checkpoint;
pub mod record;
mod replay;
pub mod segment;
mod writer;

pub use record::{MetadataEntry, Record, RefSample, SeriesEntry, Tombstone};
pub use replay::{ReplayStats, WalPosition, replay, replay_after, replay_from};
pub use writer::WalWriter;

/// Size at which a segment is closed and the next one started: Prometheus's value, large
/// enough that rolls (each one fsyncs) are rare, small enough that a damaged segment or a
/// later checkpoint handles a bounded amount of data.
pub const SEGMENT_SIZE: u64 = 128 << 20;

/// When the WAL is fsynced; either way a commit is written to the OS before it is
/// acknowledged, so acknowledged data survives a crash (`kill -9`) of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// fsync at each segment roll, on `Db::sync()` (the server calls it every few
    /// seconds) and on close. A power loss or kernel crash can lose the commits written
    /// since the last fsync, as with Prometheus's default.
    #[default]
    Periodic,
    /// fsync every commit before acknowledging it: survives power loss, costs one
    /// device flush per commit.
    Always,
}
