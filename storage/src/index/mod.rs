//! A block's `index` file: symbol table, series (labels and chunk references), a
//! label-value dictionary and roaring postings per label pair. Written once by
//! [`IndexWriter`], read through a memory map by [`IndexReader`]. Layout in `FORMAT.md`.

mod reader;
mod writer;

pub(crate) use reader::IndexReader;
pub(crate) use writer::IndexWriter;

use crate::block::chunks::ChunkLoc;

/// Magic at the start and the end of an index file.
const INDEX_MAGIC: [u8; 4] = *b"VGIX";
/// Version of the index layout.
const INDEX_VERSION: u8 = 1;
/// Bytes before the first section: magic, version and three reserved zero bytes.
const HEADER_LEN: usize = 8;
/// Sections in the order they are written: symbols, series, series offsets, postings,
/// postings table.
const SECTIONS: usize = 5;
/// Bytes of one table-of-contents entry: offset `u64`, length `u64`, CRC32 `u32` (LE).
const TOC_ENTRY_LEN: usize = 20;
/// Bytes of the footer: the table of contents and the trailing magic.
const FOOTER_LEN: usize = SECTIONS * TOC_ENTRY_LEN + INDEX_MAGIC.len();
/// Width of one entry of the series-offsets section (a `u64` LE).
const SERIES_OFFSET_LEN: usize = 8;

/// A chunk of a series in a block, with its time bounds (both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    /// Timestamp of the first sample.
    pub(crate) min_t: i64,
    /// Timestamp of the last sample.
    pub(crate) max_t: i64,
    /// Where the chunk is stored.
    pub(crate) loc: ChunkLoc,
}

#[cfg(test)]
mod tests;
