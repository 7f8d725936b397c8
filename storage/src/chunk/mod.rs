//! Chunk codecs: how a run of one series' samples is packed into bytes.
//!
//! [`XorChunk`] is the Gorilla-style codec (delta-of-delta timestamps, XOR-compressed
//! float values) that the head uses for every series; its byte layout is in
//! `FORMAT.md` beside this file. [`XorEncoder`] builds a chunk sample by sample and
//! [`XorIter`] reads one back, with `seek`. An encoder writes into a vector or, for the
//! head's open chunks, into [`SegmentedBytes`] that never move.

mod bits;
mod sink;
mod xor;

pub use sink::{ChunkBytes, SEGMENT_DATA, SegmentedBytes};
pub use xor::{XorChunk, XorEncoder, XorIter};

use thiserror::Error;

/// Samples per chunk before the head cuts a new one: Prometheus's default, which at
/// about 1.3 bytes per sample keeps a chunk near 160 bytes (30 minutes of a 15s scrape),
/// so a seek decodes little while per-chunk overhead stays small.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Size in bytes at which the head cuts a chunk early, so that incompressible values
/// (random floats cost up to ~10 bytes per sample) do not make chunks unboundedly large.
pub const MAX_CHUNK_BYTES: usize = 1024;

/// Why a chunk could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkError {
    /// A sample's timestamp was not after the previous one.
    #[error("timestamp {t} is not after the chunk's last timestamp {last}")]
    NotIncreasing {
        /// The refused timestamp.
        t: i64,
        /// The newest timestamp in the chunk.
        last: i64,
    },
    /// The chunk already holds the most samples its header can count.
    #[error("chunk is full")]
    Full,
    /// The bytes are not a valid chunk.
    #[error("corrupt chunk: {0}")]
    Corrupt(&'static str),
}
