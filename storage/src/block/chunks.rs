//! A block's `chunks` file: encoded chunks packed into zstd-compressed, checksummed
//! frames. A chunk is addressed by its frame's file offset and its place inside the
//! decompressed frame. Layout in `FORMAT.md`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::Mutex;

use crate::error::StorageError;

/// Magic at the start of a chunks file.
pub(crate) const CHUNKS_MAGIC: [u8; 4] = *b"VGCH";
/// Version of the chunks file layout: 2 holds bit-packed chunks, 1 (still read) the
/// byte-oriented encodings before them; the frames are the same.
pub(crate) const CHUNKS_VERSION: u8 = 2;
/// Oldest chunks file version still read.
const OLDEST_CHUNKS_VERSION: u8 = 1;
/// Bytes before the first frame: magic, version and three reserved zero bytes.
const FILE_HEADER_LEN: usize = 8;
/// Bytes of a frame header: compressed length, raw length and the CRC32 of
/// both lengths and the compressed bytes (each `u32` LE).
const FRAME_HEADER_LEN: usize = 12;
/// Raw bytes gathered before a frame is compressed: large enough that zstd finds the
/// repetition across neighbouring series (sorted by labels, so similar), small enough
/// that reading one chunk decompresses little.
const FRAME_TARGET: usize = 64 << 10;
/// Largest raw frame a reader accepts, so a corrupt length cannot make it allocate
/// without bound (a frame is at most `FRAME_TARGET` plus one chunk).
const MAX_FRAME_RAW: usize = 16 << 20;
/// zstd level: 3 is zstd's default, a good ratio at a speed that keeps block writing
/// well under a second per million samples.
const ZSTD_LEVEL: i32 = 3;

/// Where a chunk lives in a chunks file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLoc {
    /// File offset of the frame's header.
    pub(crate) frame: u64,
    /// Offset of the chunk inside the decompressed frame.
    pub(crate) offset: u32,
    /// Length of the encoded chunk.
    pub(crate) len: u32,
}

/// Writes a chunks file.
pub(crate) struct ChunksWriter {
    out: BufWriter<File>,
    /// Bytes written to the file so far.
    pos: u64,
    /// Raw chunks of the frame being gathered.
    raw: Vec<u8>,
}

impl ChunksWriter {
    /// Creates the file at `path`.
    pub(crate) fn create(path: &Path) -> Result<Self, StorageError> {
        let file =
            File::create(path).map_err(|e| StorageError::io(format!("creating {}", path.display()), e))?;
        let mut w =
            ChunksWriter { out: BufWriter::new(file), pos: 0, raw: Vec::with_capacity(FRAME_TARGET * 2) };
        let mut header = [0u8; FILE_HEADER_LEN];
        header[..4].copy_from_slice(&CHUNKS_MAGIC);
        header[4] = CHUNKS_VERSION;
        w.write_all(&header)?;
        Ok(w)
    }

    fn write_all(&mut self, b: &[u8]) -> Result<(), StorageError> {
        self.out.write_all(b).map_err(|e| StorageError::io("writing a block's chunks", e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Offset in its frame the next chunk added will have.
    pub(crate) fn next_offset(&self) -> u32 {
        self.raw.len() as u32
    }

    /// Whether the chunk at `loc` is in the frame still being gathered, the one the next
    /// chunk added joins.
    pub(crate) fn in_open_frame(&self, loc: ChunkLoc) -> bool {
        loc.frame == self.pos && !self.raw.is_empty()
    }

    /// Adds one encoded chunk and returns where it will be.
    pub(crate) fn add(&mut self, chunk: &[u8]) -> Result<ChunkLoc, StorageError> {
        let loc = ChunkLoc { frame: self.pos, offset: self.raw.len() as u32, len: chunk.len() as u32 };
        self.raw.extend_from_slice(chunk);
        if self.raw.len() >= FRAME_TARGET {
            self.flush_frame()?;
        }
        Ok(loc)
    }

    fn flush_frame(&mut self) -> Result<(), StorageError> {
        if self.raw.is_empty() {
            return Ok(());
        }
        let packed = compress(&self.raw)?;
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[0..4].copy_from_slice(&(packed.len() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&(self.raw.len() as u32).to_le_bytes());
        let crc = frame_crc(&header[..8], &packed);
        header[8..12].copy_from_slice(&crc.to_le_bytes());
        self.write_all(&header)?;
        self.write_all(&packed)?;
        self.raw.clear();
        Ok(())
    }

    /// Writes the last frame, fsyncs and closes the file; returns its size.
    pub(crate) fn finish(mut self) -> Result<u64, StorageError> {
        self.flush_frame()?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| StorageError::io("flushing a block's chunks", e.into_error()))?;
        file.sync_all().map_err(|e| StorageError::io("syncing a block's chunks", e))?;
        Ok(self.pos)
    }
}

/// A memory-mapped chunks file.
pub(crate) struct ChunksReader {
    map: Mmap,
    /// The last frame decompressed, as queries read neighbouring series in label order.
    cache: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

impl ChunksReader {
    /// Maps the file at `path` and checks its header.
    pub(crate) fn open(path: &Path) -> Result<Self, StorageError> {
        let map = map_file(path)?;
        if map.len() < FILE_HEADER_LEN
            || map[..4] != CHUNKS_MAGIC
            || !(OLDEST_CHUNKS_VERSION..=CHUNKS_VERSION).contains(&map[4])
            || map[5..FILE_HEADER_LEN] != [0, 0, 0]
        {
            return Err(StorageError::Corrupt(format!("{}: bad chunks file header", path.display())));
        }
        Ok(ChunksReader { map, cache: Mutex::new(None) })
    }

    /// Size of the file in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The frame at `offset`: its compressed bytes (checksum verified) and raw length.
    fn frame(&self, offset: u64) -> Result<(&[u8], usize), StorageError> {
        let start = usize::try_from(offset).map_err(|_| corrupt("frame offset out of range"))?;
        let header = start
            .checked_add(FRAME_HEADER_LEN)
            .and_then(|end| self.map.get(start..end))
            .ok_or_else(|| corrupt("frame header past the end of the chunks file"))?;
        let word = |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (packed_len, raw_len, crc) = (word(0) as usize, word(4) as usize, word(8));
        let body_start = start + FRAME_HEADER_LEN;
        let body = body_start
            .checked_add(packed_len)
            .and_then(|end| self.map.get(body_start..end))
            .ok_or_else(|| corrupt("frame past the end of the chunks file"))?;
        if frame_crc(&header[..8], body) != crc {
            return Err(corrupt("chunk frame checksum mismatch"));
        }
        if raw_len > MAX_FRAME_RAW {
            return Err(corrupt("chunk frame too large"));
        }
        Ok((body, raw_len))
    }

    /// Checks every frame's checksum, front to back, then lets go of the pages the
    /// sweep mapped in (it read the whole file).
    pub(crate) fn verify(&self) -> Result<(), StorageError> {
        let swept = self.sweep();
        crate::mapped::release(&self.map);
        swept
    }

    fn sweep(&self) -> Result<(), StorageError> {
        let mut pos = FILE_HEADER_LEN as u64;
        while pos < self.len() {
            let (body, _) = self.frame(pos)?;
            pos += (FRAME_HEADER_LEN + body.len()) as u64;
        }
        Ok(())
    }

    /// The encoded chunk at `loc`.
    pub(crate) fn chunk(&self, loc: ChunkLoc) -> Result<ChunkBytes, StorageError> {
        let raw = {
            let cache = self.cache.lock();
            cache.as_ref().filter(|(off, _)| *off == loc.frame).map(|(_, raw)| raw.clone())
        };
        let raw = match raw {
            Some(raw) => raw,
            None => {
                let (body, raw_len) = self.frame(loc.frame)?;
                let raw = zstd::bulk::decompress(body, raw_len)
                    .map_err(|e| corrupt_owned(format!("chunk frame: {e}")))?;
                let raw = Arc::new(raw);
                *self.cache.lock() = Some((loc.frame, raw.clone()));
                raw
            }
        };
        let start = loc.offset as usize;
        let end = start.checked_add(loc.len as usize).filter(|&e| e <= raw.len());
        let Some(end) = end else { return Err(corrupt("chunk past the end of its frame")) };
        Ok(ChunkBytes { raw, start, end })
    }
}

/// One chunk's bytes inside a shared decompressed frame.
pub(crate) struct ChunkBytes {
    raw: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl ChunkBytes {
    /// The chunk's samples (following a relative chunk to its reference in the frame).
    pub(crate) fn decode(&self) -> Result<Vec<crate::sample::Sample>, StorageError> {
        super::codec::decode_in_frame(&self.raw, self.start, self.end)
    }
}

/// Compresses a frame's raw bytes.
pub(crate) fn compress(raw: &[u8]) -> Result<Vec<u8>, StorageError> {
    zstd::bulk::compress(raw, ZSTD_LEVEL).map_err(|e| StorageError::io("compressing a chunk frame", e))
}

/// CRC32 of a frame's two length fields and its compressed bytes.
fn frame_crc(lengths: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(lengths);
    h.update(body);
    h.finalize()
}

fn corrupt(why: &str) -> StorageError {
    StorageError::Corrupt(why.to_string())
}

fn corrupt_owned(why: String) -> StorageError {
    StorageError::Corrupt(why)
}

/// Maps a file read-only. Block files are written once and never modified in place (only
/// renamed or removed), which is what makes the mapping sound.
pub(crate) fn map_file(path: &Path) -> Result<Mmap, StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
    // SAFETY: vigil never truncates or rewrites a block file once it is complete; other
    // processes are kept out of the data directory by its lock file.
    unsafe { Mmap::map(&file) }.map_err(|e| StorageError::io(format!("mapping {}", path.display()), e))
}
