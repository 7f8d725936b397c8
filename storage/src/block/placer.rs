//! Where a block writer puts each chunk: a chunk equal to one already written is not
//! written again but shared, and a chunk that is shorter as differences from a recent
//! neighbour with the same timestamps (a histogram's next bucket) is written that way.

use std::collections::{HashMap, VecDeque};

use super::chunks::{ChunkLoc, ChunksWriter};
use super::codec::{self, Reference};
use crate::error::StorageError;
use crate::sample::Sample;

/// Recent standalone chunks a new chunk may be coded against: a histogram's buckets are
/// neighbours in label order.
const REFERENCES: usize = 4;

/// Chunk bytes held for finding repeats: bounds the memory of writing a large block;
/// past it, chunks are simply written again.
const SEEN_CHUNKS_MAX_BYTES: usize = 64 << 20;

/// The placement state of one block being written.
#[derive(Default)]
pub(crate) struct ChunkPlacer {
    /// Standalone encodings of the chunks written so far (up to the byte cap), so that a
    /// repeat (a classic histogram's `+Inf` bucket always equals its `_count`) is shared.
    seen: HashMap<Vec<u8>, ChunkLoc>,
    seen_bytes: usize,
    /// Recent standalone chunks; only these are references, so a read follows one hop.
    references: VecDeque<(Reference, ChunkLoc)>,
    buf: Vec<u8>,
    relative: Vec<u8>,
}

impl ChunkPlacer {
    /// Writes `part` (one chunk's samples) unless an equal chunk was, and returns where
    /// its bytes are.
    pub(crate) fn place(
        &mut self,
        chunks: &mut ChunksWriter,
        part: &[Sample],
    ) -> Result<ChunkLoc, StorageError> {
        self.buf.clear();
        codec::encode(part, &mut self.buf);
        if let Some(&loc) = self.seen.get(&self.buf) {
            return Ok(loc);
        }
        let offset = chunks.next_offset();
        let mut best: Option<Vec<u8>> = None;
        for (r, _) in self.references.iter().filter(|(_, l)| chunks.in_open_frame(*l)) {
            self.relative.clear();
            let shorter = best.as_ref().map_or(self.buf.len(), Vec::len);
            if codec::encode_relative(part, r, offset, &mut self.relative) && self.relative.len() < shorter {
                best = Some(self.relative.clone());
            }
        }
        let loc = chunks.add(best.as_deref().unwrap_or(&self.buf))?;
        if self.seen_bytes + self.buf.len() <= SEEN_CHUNKS_MAX_BYTES {
            self.seen_bytes += self.buf.len();
            self.seen.insert(self.buf.clone(), loc);
        }
        if best.is_none()
            && let Some(r) = codec::reference(part, loc.offset)
        {
            if self.references.len() == REFERENCES {
                self.references.pop_front();
            }
            self.references.push_back((r, loc));
        }
        Ok(loc)
    }
}
