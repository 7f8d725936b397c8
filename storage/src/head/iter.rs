//! Iterating a series' chunks within a time range.

use super::spill::StoredChunk;
use crate::chunk::{XorChunk, XorIter};
use crate::sample::Sample;
use crate::traits::SampleIter;

/// Where a chunk's bytes are.
#[derive(Clone)]
pub(crate) enum ChunkData {
    /// In memory: a copy of the open chunk for a reader.
    Mem(XorChunk),
    /// A full chunk (in a memory-mapped head-chunks file, or kept in memory).
    Stored(StoredChunk),
}

/// A full chunk as a series keeps it, with its time bounds (32 bytes: a series holds
/// several in a three-hour head).
#[derive(Clone)]
pub(crate) struct FullChunk {
    /// The encoded samples.
    pub(crate) data: StoredChunk,
    /// Timestamp of the first sample.
    pub(crate) min_t: i64,
    /// Timestamp of the last sample.
    pub(crate) max_t: i64,
}

impl From<&FullChunk> for ChunkRef {
    fn from(c: &FullChunk) -> Self {
        ChunkRef { data: ChunkData::Stored(c.data.clone()), min_t: c.min_t, max_t: c.max_t }
    }
}

/// A chunk of a series with its time bounds; cloning shares the encoded bytes.
#[derive(Clone)]
pub(crate) struct ChunkRef {
    /// The encoded samples.
    pub(crate) data: ChunkData,
    /// Timestamp of the first sample.
    pub(crate) min_t: i64,
    /// Timestamp of the last sample.
    pub(crate) max_t: i64,
}

/// Samples of a list of chunks, restricted to `[mint, maxt]`; `seek` skips whole chunks
/// by their max time.
pub(crate) struct HeadSampleIter {
    chunks: Vec<ChunkRef>,
    /// Index of the next chunk to open.
    next_chunk: usize,
    cur: Option<XorIter>,
    cur_max_t: i64,
    mint: i64,
    maxt: i64,
}

impl ChunkRef {
    /// The chunk (copied out of its file when spilled).
    pub(crate) fn chunk(&self) -> XorChunk {
        match &self.data {
            ChunkData::Mem(c) => c.clone(),
            ChunkData::Stored(s) => s.load(),
        }
    }
}

impl HeadSampleIter {
    /// Iterates `chunks` (in time order, non-overlapping) within `[mint, maxt]`.
    pub(crate) fn new(chunks: Vec<ChunkRef>, mint: i64, maxt: i64) -> Self {
        HeadSampleIter { chunks, next_chunk: 0, cur: None, cur_max_t: i64::MIN, mint, maxt }
    }

    fn finish(&mut self) -> Option<Sample> {
        self.cur = None;
        self.next_chunk = self.chunks.len();
        None
    }

    fn bounded(&mut self, s: Sample) -> Option<Sample> {
        if s.t > self.maxt { self.finish() } else { Some(s) }
    }
}

impl SampleIter for HeadSampleIter {
    fn next(&mut self) -> Option<Sample> {
        self.seek(self.mint)
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        let t = t.max(self.mint);
        loop {
            if let Some(cur) = self.cur.as_mut().filter(|_| self.cur_max_t >= t)
                && let Some(s) = cur.seek(t)
            {
                return self.bounded(s);
            }
            // Open the next chunk that can hold a sample at or after `t`.
            let skip = self.chunks[self.next_chunk.min(self.chunks.len())..]
                .iter()
                .take_while(|c| c.max_t < t)
                .count();
            self.next_chunk += skip;
            let Some(c) = self.chunks.get(self.next_chunk) else { return self.finish() };
            self.cur = Some(c.chunk().iter());
            self.cur_max_t = c.max_t;
            self.next_chunk += 1;
        }
    }
}
