//! Immutable blocks on disk: a directory per time range holding `meta.json`, an index
//! file (the private `index` module) and a `chunks` file, read through memory maps.
//!
//! A block is written under a temporary name (`<id>.tmp`) and renamed into place only
//! when every file in it is complete and fsynced, so a crash leaves either no block or a
//! whole one. Opening a block verifies its index checksums; chunk frames are verified
//! when read and, in the background, all at once. Chunks are re-encoded for size at rest
//! ([`encode_chunk`]) and zstd-compressed in frames; a `tombstones` file records
//! deletions. Layouts are in `FORMAT.md` beside this file.

mod bitpack;
pub(crate) mod chunks;
pub(crate) mod codec;
mod meta;
mod placer;
mod tombstones;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub use meta::{BlockCompaction, BlockMeta, BlockStats};

/// Encodes samples (1 to 1920, strictly increasing timestamps) with the at-rest chunk
/// encoding (before zstd), appending to `out`; for benches and tools.
pub fn encode_chunk(samples: &[Sample], out: &mut Vec<u8>) {
    codec::encode(&samples[..samples.len().min(codec::MAX_CHUNK_SAMPLES)], out);
}

/// Decodes a chunk written by [`encode_chunk`]; errors, never panics, on bad input.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<Sample>, StorageError> {
    codec::decode(bytes)
}

/// Compresses raw chunk bytes as a block frame does (zstd, same level); for benches.
pub fn compress_frame(raw: &[u8]) -> Result<Vec<u8>, StorageError> {
    chunks::compress(raw)
}
pub(crate) use meta::{META_FILE, is_block_id, new_id};
pub(crate) use tombstones::TOMBSTONES_FILE;

use crate::error::StorageError;
use crate::index::{ChunkMeta, IndexReader, IndexWriter};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::sample::Sample;
use chunks::{ChunksReader, ChunksWriter};
use meta::BLOCK_VERSION;

/// Name of the index file in a block directory.
pub(crate) const INDEX_FILE: &str = "index";
/// Name of the chunks file in a block directory.
pub(crate) const CHUNKS_FILE: &str = "chunks";
/// Suffix of a block directory still being written (removed at open).
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Suffix of a block directory being deleted (removed at open).
pub(crate) const DELETING_SUFFIX: &str = ".deleting";
/// Suffix given to a block directory that failed verification: kept for inspection,
/// never served.
pub(crate) const CORRUPT_SUFFIX: &str = ".corrupt";

/// An open, verified block.
pub(crate) struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunksReader,
    /// Set when a read found damage; maintenance then moves the block aside.
    corrupt: AtomicBool,
    /// Set once every chunk frame's checksum was checked ([`Block::verify_chunks`]).
    verified: AtomicBool,
    /// Deleted ranges per series ordinal, applied to every read.
    tombstones: parking_lot::RwLock<tombstones::Tombstones>,
}

impl Block {
    /// Opens the block in `dir`, verifying its meta and every index section's checksum.
    /// Chunk frames are checked when read, and all of them by [`Block::verify_chunks`],
    /// which maintenance runs in the background so that a restart does not read every
    /// block in full.
    pub(crate) fn open(dir: &Path) -> Result<Block, StorageError> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join(INDEX_FILE))?;
        let chunks = ChunksReader::open(&dir.join(CHUNKS_FILE))?;
        if u64::from(index.num_series()) != meta.stats.num_series {
            return Err(StorageError::Corrupt(format!(
                "{}: series count differs from meta.json",
                dir.display()
            )));
        }
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            corrupt: AtomicBool::new(false),
            verified: AtomicBool::new(false),
            tombstones: parking_lot::RwLock::new(tombstones::read(dir)?),
        })
    }

    /// Checks every chunk frame's checksum once; a failure flags the block corrupt.
    pub(crate) fn verify_chunks(&self) -> Result<(), StorageError> {
        if self.verified.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.chunks.verify().map_err(|e| self.damaged(e))?;
        self.verified.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The block's metadata.
    pub(crate) fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk of the index and chunks files.
    pub(crate) fn size(&self) -> u64 {
        self.meta.stats.num_bytes
    }

    /// Whether a read found damage.
    pub(crate) fn is_corrupt(&self) -> bool {
        self.corrupt.load(Ordering::Relaxed)
    }

    /// Marks the block damaged (logging why) and passes the error on.
    fn damaged(&self, e: StorageError) -> StorageError {
        if !self.corrupt.swap(true, Ordering::Relaxed) {
            tracing::error!(block = %self.dir.display(), error = %e, "corrupt block; it will be moved aside");
        }
        e
    }

    /// Whether any samples of the block are deleted.
    pub(crate) fn has_tombstones(&self) -> bool {
        !self.tombstones.read().is_empty()
    }

    /// Deletes the samples in `[mint, maxt]` of the series matching `matchers`, durably
    /// (the tombstones file is replaced before this returns).
    pub(crate) fn add_tombstones(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<(), StorageError> {
        let ids = self.index.postings_for(matchers).map_err(|e| self.damaged(e))?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut t = self.tombstones.write();
        let mut next = t.clone();
        for id in &ids {
            next.entry(id).or_default().push((mint, maxt));
        }
        tombstones::write(&self.dir, &next)?;
        *t = next;
        Ok(())
    }

    /// Number of series.
    pub(crate) fn num_series(&self) -> u32 {
        self.index.num_series()
    }

    /// Labels and samples in `[mint, maxt]` of the series matching `matchers`, in label
    /// order; series without samples in range are left out.
    pub(crate) fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, StorageError> {
        let ids = self.index.postings_for(matchers).map_err(|e| self.damaged(e))?;
        let mut out = Vec::new();
        for id in &ids {
            let (labels, samples) = self.read(id, mint, maxt)?;
            if !samples.is_empty() {
                out.push((labels, samples));
            }
        }
        Ok(out)
    }

    /// Labels and samples in `[mint, maxt]` of the series with `ordinal`.
    pub(crate) fn read(
        &self,
        ordinal: u32,
        mint: i64,
        maxt: i64,
    ) -> Result<(Labels, Vec<Sample>), StorageError> {
        let (labels, metas) = self.index.series(ordinal).map_err(|e| self.damaged(e))?;
        let mut samples = Vec::new();
        for m in metas.iter().filter(|m| m.max_t >= mint && m.min_t <= maxt) {
            let bytes = self.chunks.chunk(m.loc).map_err(|e| self.damaged(e))?;
            let decoded = bytes.decode().map_err(|e| self.damaged(e))?;
            samples.extend(decoded.into_iter().filter(|s| s.t >= mint && s.t <= maxt));
        }
        if let Some(ranges) = self.tombstones.read().get(&ordinal) {
            samples.retain(|s| !tombstones::deleted(ranges, s.t));
        }
        Ok((labels, samples))
    }

    /// Label names of series matching `matchers` (all when empty), sorted; from the
    /// index alone (the caller checks that the block's range overlaps the request).
    pub(crate) fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.index.label_names_for(matchers).map_err(|e| self.damaged(e))
    }

    /// Values of label `name` over series matching `matchers` (all when empty), sorted;
    /// from the index alone.
    pub(crate) fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.index.label_values_for(name, matchers).map_err(|e| self.damaged(e))
    }
}

/// What [`write_block`] is to write besides the series.
pub(crate) struct NewBlock {
    /// Start of the range (inclusive).
    pub(crate) min_time: i64,
    /// End of the range (exclusive). The range written is widened to hold every sample.
    pub(crate) max_time: i64,
    /// Compaction level.
    pub(crate) level: u32,
    /// Level-1 ancestors (empty for a block cut from the head: its own id is used).
    pub(crate) sources: Vec<String>,
    /// Blocks it replaces.
    pub(crate) parents: Vec<String>,
}

pub(crate) use crate::failpoint::failpoint;

/// Writes a block into `parent` from `series` (strictly increasing labels, samples in time
/// order within the range) and returns its metadata, or `None` when no series has a
/// sample (no block is written then).
pub(crate) fn write_block(
    parent: &Path,
    spec: NewBlock,
    series: impl Iterator<Item = Result<(Labels, Vec<Sample>), StorageError>>,
) -> Result<Option<BlockMeta>, StorageError> {
    let id = new_id();
    let tmp = parent.join(format!("{id}{TMP_SUFFIX}"));
    std::fs::create_dir_all(&tmp).map_err(|e| StorageError::io(format!("creating {}", tmp.display()), e))?;
    let result = write_files(&tmp, &id, spec, series);
    let meta = match result {
        Ok(Some(meta)) => meta,
        other => {
            let _ = std::fs::remove_dir_all(&tmp);
            return other;
        }
    };
    failpoint("block.before_rename")?;
    let dir = parent.join(&id);
    std::fs::rename(&tmp, &dir).map_err(|e| StorageError::io(format!("renaming {}", tmp.display()), e))?;
    crate::wal::segment::sync_dir(parent)?;
    Ok(Some(meta))
}

fn write_files(
    tmp: &Path,
    id: &str,
    spec: NewBlock,
    series: impl Iterator<Item = Result<(Labels, Vec<Sample>), StorageError>>,
) -> Result<Option<BlockMeta>, StorageError> {
    let mut chunks = ChunksWriter::create(&tmp.join(CHUNKS_FILE))?;
    let mut index = IndexWriter::default();
    let mut stats = BlockStats::default();
    let mut placer = placer::ChunkPlacer::default();
    let (mut min_time, mut max_time) = (spec.min_time, spec.max_time);
    for s in series {
        let (labels, samples) = s?;
        if samples.is_empty() {
            continue;
        }
        let mut metas = Vec::new();
        for part in samples.chunks(codec::MAX_CHUNK_SAMPLES) {
            let loc = placer.place(&mut chunks, part)?;
            let (Some(first), Some(last)) = (part.first(), part.last()) else { continue };
            min_time = min_time.min(first.t);
            max_time = max_time.max(last.t.saturating_add(1));
            metas.push(ChunkMeta { min_t: first.t, max_t: last.t, loc });
        }
        stats.num_samples += samples.len() as u64;
        stats.num_chunks += metas.len() as u64;
        index.add(labels, metas)?;
    }
    if index.len() == 0 {
        return Ok(None);
    }
    // Chunks are written, the index and meta are not: the middle of writing a block.
    failpoint(if spec.level > 1 { "compact.writing" } else { "cut.writing" })?;
    stats.num_series = index.len() as u64;
    stats.num_bytes = chunks.finish()? + index.write(&tmp.join(INDEX_FILE))?;
    let sources = if spec.sources.is_empty() { vec![id.to_string()] } else { spec.sources };
    let meta = BlockMeta {
        ulid: id.to_string(),
        min_time,
        max_time,
        stats,
        compaction: BlockCompaction { level: spec.level, sources, parents: spec.parents },
        version: BLOCK_VERSION,
    };
    meta.write(tmp)?;
    crate::wal::segment::sync_dir(tmp)?;
    Ok(Some(meta))
}

#[cfg(test)]
mod tests;
