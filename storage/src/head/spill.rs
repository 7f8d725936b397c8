//! Full head chunks written to files in `<data>/chunks_head/` and read back through
//! memory maps, so the head keeps in memory little more than each series' open chunk.
//!
//! The files only offload memory: they are not used for recovery (the WAL rebuilds the
//! head), so every file found at open is deleted. A file is preallocated to
//! [`FILE_SIZE`] and mapped whole; chunks are appended with positional writes, and a
//! chunk's location is published (under its series' lock) only after its bytes are
//! written, so readers never see a partial chunk. A file is deleted when the last chunk
//! reference into it is dropped (head truncation, and the end of queries reading it).
//!
//! Pages read through a map count in the process's resident memory until they are
//! unmapped: a head snapshot or a block cut reads every spilled chunk, which would add
//! the whole spill to it. Such bulk readers call [`HeadChunks::release_mapped`] as they
//! go, which drops the pages from the maps (the page cache keeps them).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use memmap2::Mmap;
use parking_lot::Mutex;

use crate::chunk::XorChunk;
use crate::error::StorageError;

/// Size of one head-chunks file: room for ~400 000 chunks of ~160 bytes, few enough
/// files for a million series, small enough that a file is freed soon after the head
/// moves past its chunks.
const FILE_SIZE: u64 = 64 << 20;

/// One preallocated, mapped file of full head chunks; removed when dropped.
pub(crate) struct SpillFile {
    path: PathBuf,
    file: File,
    map: Mmap,
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        // Nothing refers to the file any more; its content is never needed again.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where stored chunks' bytes live.
enum ChunkStore {
    /// A head-chunks file, shared by the chunks in it.
    File(SpillFile),
    /// Memory, for one chunk the disk refused.
    Mem(XorChunk),
}

/// A full chunk in a spill file (or, when the disk refused it, in memory): one pointer
/// and a span, so that a series' full chunks cost 32 bytes each with their bounds.
#[derive(Clone)]
pub(crate) struct StoredChunk {
    store: Arc<ChunkStore>,
    offset: u32,
    len: u32,
}

impl StoredChunk {
    /// A chunk kept in memory.
    pub(crate) fn in_memory(chunk: XorChunk) -> Self {
        let len = u32::try_from(chunk.as_bytes().len()).unwrap_or(u32::MAX);
        StoredChunk { store: Arc::new(ChunkStore::Mem(chunk)), offset: 0, len }
    }

    /// The chunk (copied out of its file, a few hundred bytes).
    pub(crate) fn load(&self) -> XorChunk {
        match &*self.store {
            ChunkStore::Mem(c) => c.clone(),
            // Only chunks with their header are written, so this never yields the fallback.
            ChunkStore::File(_) => XorChunk::from_bytes(self.bytes()).unwrap_or_else(|_| XorChunk::empty()),
        }
    }

    /// The chunk's encoded bytes (in the map when in a file).
    pub(crate) fn bytes(&self) -> &[u8] {
        let all: &[u8] = match &*self.store {
            ChunkStore::File(f) => &f.map,
            ChunkStore::Mem(c) => c.as_bytes(),
        };
        let start = self.offset as usize;
        all.get(start..start + self.len as usize).unwrap_or_default()
    }

    /// Samples in the chunk (from its header).
    pub(crate) fn num_samples(&self) -> usize {
        self.bytes().get(..2).map_or(0, |h| usize::from(u16::from_be_bytes([h[0], h[1]])))
    }
}

/// The writer of spill files.
pub(crate) struct HeadChunks {
    dir: PathBuf,
    /// Size of each file ([`FILE_SIZE`] except in tests).
    file_size: u64,
    current: Mutex<Option<(Arc<ChunkStore>, u64)>>,
    /// Every file still referenced, for [`HeadChunks::release_mapped`].
    files: Mutex<Vec<Weak<ChunkStore>>>,
    next_seq: AtomicU32,
    /// Set after a write failed, so the failure is logged once; chunks then stay in memory.
    failed: AtomicBool,
}

impl HeadChunks {
    /// Uses `dir` (created if needed), deleting whatever an earlier run left there.
    pub(crate) fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::with_file_size(dir, FILE_SIZE)
    }

    fn with_file_size(dir: &Path, file_size: u64) -> Result<Self, StorageError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| StorageError::io(format!("clearing {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        Ok(HeadChunks {
            dir: dir.to_path_buf(),
            file_size,
            current: Mutex::new(None),
            files: Mutex::new(Vec::new()),
            next_seq: AtomicU32::new(0),
            failed: AtomicBool::new(false),
        })
    }

    /// Stores a full chunk's bytes; `None` (after logging once) when the disk refuses,
    /// in which case the caller keeps the chunk in memory.
    pub(crate) fn write(&self, bytes: &[u8]) -> Option<StoredChunk> {
        match self.try_write(bytes) {
            Ok(c) => Some(c),
            Err(e) => {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot write head chunks to disk; keeping them in memory");
                }
                None
            }
        }
    }

    fn try_write(&self, bytes: &[u8]) -> Result<StoredChunk, StorageError> {
        let len = bytes.len() as u64;
        if len > self.file_size || bytes.len() < 2 {
            return Err(StorageError::Invalid("chunk larger than a head-chunks file".into()));
        }
        let mut current = self.current.lock();
        let full = current.as_ref().is_none_or(|(_, pos)| pos + len > self.file_size);
        if full {
            *current = Some((self.new_file()?, 0));
        }
        let Some((store, pos)) = current.as_mut() else {
            return Err(StorageError::Invalid("no head-chunks file".into()));
        };
        let ChunkStore::File(file) = &**store else {
            return Err(StorageError::Invalid("head-chunks file in memory".into()));
        };
        file.file.write_all_at(bytes, *pos).map_err(|e| StorageError::io("writing a head chunk", e))?;
        let chunk = StoredChunk { store: store.clone(), offset: *pos as u32, len: len as u32 };
        *pos += len;
        Ok(chunk)
    }

    fn new_file(&self) -> Result<Arc<ChunkStore>, StorageError> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{seq:08}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io(format!("creating {}", path.display()), e))?;
        file.set_len(self.file_size)
            .map_err(|e| StorageError::io(format!("sizing {}", path.display()), e))?;
        // SAFETY: the file is private to this process (the data directory is locked), is
        // never truncated, and bytes are read only after they were written.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| StorageError::io(format!("mapping {}", path.display()), e))?;
        let spill = Arc::new(ChunkStore::File(SpillFile { path, file, map }));
        let mut files = self.files.lock();
        files.retain(|f| f.strong_count() > 0);
        files.push(Arc::downgrade(&spill));
        Ok(spill)
    }

    /// Unmaps the pages read so far from every file, so that they stop counting in the
    /// process's resident memory; later reads fault them in again from the page cache.
    pub(crate) fn release_mapped(&self) {
        let stores: Vec<Arc<ChunkStore>> = self.files.lock().iter().filter_map(Weak::upgrade).collect();
        for store in stores {
            if let ChunkStore::File(f) = &*store {
                // Published chunks are never rewritten: the same bytes fault back in.
                crate::mapped::release(&f.map);
            }
        }
    }

    /// Calls [`HeadChunks::release_mapped`] on every [`RELEASE_EVERY`]th call, for a
    /// loop over series reading their chunks (`i` counts its iterations).
    pub(crate) fn release_mapped_every(&self, i: usize) {
        if i % RELEASE_EVERY == RELEASE_EVERY - 1 {
            self.release_mapped();
        }
    }
}

/// Series a bulk reader visits between releases of mapped pages: at most a few pages
/// per series (one per full chunk), so it holds some tens of MiB at worst.
const RELEASE_EVERY: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::XorEncoder;

    fn chunk(seed: i64) -> XorChunk {
        let mut e = XorEncoder::new();
        for i in 0..10 {
            e.append(seed + i, (seed * i) as f64).expect("append");
        }
        e.finish()
    }

    /// Spills `n` distinct chunks; returns each with where it went.
    fn write_chunks(h: &HeadChunks, n: i64) -> Vec<(XorChunk, StoredChunk)> {
        (0..n)
            .map(|i| {
                let c = chunk(i * 1000);
                let s = h.write(c.as_bytes()).expect("spilled");
                (c, s)
            })
            .collect()
    }

    #[test]
    fn chunks_read_back_and_files_go_when_unreferenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = || std::fs::read_dir(dir.path().join("h")).map(|d| d.count()).unwrap_or(0);
        std::fs::create_dir_all(dir.path().join("h")).expect("mkdir");
        std::fs::write(dir.path().join("h").join("00000007"), b"left by a crash").expect("write");
        let h = HeadChunks::with_file_size(&dir.path().join("h"), 100).expect("open");
        assert_eq!(files(), 0, "files of an earlier run are removed");
        let written = write_chunks(&h, 5);
        for (c, s) in &written {
            assert_eq!(&s.load(), c);
            assert_eq!(s.num_samples(), 10);
        }
        let used = files();
        assert!(used >= 2, "small files roll over: {used}");
        drop(written);
        assert_eq!(files(), 1, "only the file being written stays");
        assert!(h.write(&[0u8; 101]).is_none(), "a chunk larger than a file stays in memory");
    }

    #[test]
    fn released_pages_leave_resident_memory_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = HeadChunks::with_file_size(&dir.path().join("h"), 1 << 20).expect("open");
        let written = write_chunks(&h, 2000);
        let ChunkStore::File(file) = &*written[0].1.store else { panic!("spilled to a file") };
        let path = file.path.clone();
        for (c, s) in &written {
            assert_eq!(&s.load(), c);
        }
        assert!(crate::mapped::resident_kib(&path) > 0, "reading maps pages in");
        h.release_mapped();
        assert_eq!(crate::mapped::resident_kib(&path), 0, "released pages are no longer resident in the map");
        for (c, s) in &written {
            assert_eq!(&s.load(), c, "a released chunk reads back the same");
        }
    }
}
