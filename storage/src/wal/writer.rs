//! Appends commits to the current segment, rolling to a new one when it is full.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{SyncPolicy, segment};
use crate::error::StorageError;

/// The open end of the WAL. Not synchronised: the database holds it under its commit lock.
pub struct WalWriter {
    dir: PathBuf,
    file: Arc<File>,
    seq: u32,
    size: u64,
    segment_size: u64,
    policy: SyncPolicy,
    /// Set when a failed write could not be undone; later writes would follow garbage.
    broken: bool,
}

impl WalWriter {
    /// Starts a new, empty segment `seq` in `dir` (never appends to an old one, whose
    /// tail replay may have just trimmed).
    pub fn create(dir: &Path, seq: u32, segment_size: u64, policy: SyncPolicy) -> Result<Self, StorageError> {
        let file = open_segment(dir, seq)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            file: Arc::new(file),
            seq,
            size: 0,
            segment_size,
            policy,
            broken: false,
        })
    }

    /// Sequence number of the segment being written.
    pub fn segment(&self) -> u32 {
        self.seq
    }

    /// Where the next commit will be written: everything logged so far lies before it.
    pub fn position(&self) -> super::WalPosition {
        super::WalPosition { segment: self.seq, offset: self.size }
    }

    /// Writes one commit's records with a single write to the OS. A commit never spans
    /// segments. On error nothing of `buf` stays in the log. The caller fsyncs with
    /// [`WalWriter::sync`] when its policy says so ([`WalWriter::policy`]).
    pub fn write(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        if self.broken {
            return Err(StorageError::Invalid(
                "the WAL is unusable after a failed write; restart to recover".into(),
            ));
        }
        if buf.is_empty() {
            return Ok(());
        }
        if self.size > 0 && self.size + buf.len() as u64 > self.segment_size {
            self.roll()?;
        }
        if let Err(e) = (&*self.file).write_all(buf) {
            // Undo a partial write so the next commit does not land after garbage.
            if self.file.set_len(self.size).is_err() {
                self.broken = true;
            }
            return Err(StorageError::io(format!("writing WAL segment {}", self.seq), e));
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    /// When commits are fsynced.
    pub fn policy(&self) -> SyncPolicy {
        self.policy
    }

    /// A handle on the current segment, so that a caller can fsync it without holding the
    /// commit lock.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// fsyncs the current segment.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(|e| StorageError::io("syncing the WAL", e))
    }

    /// Seals the current segment (fsynced) and starts the next; returns the sealed
    /// segment's number, so every commit so far lies in segments up to it.
    pub fn cut_segment(&mut self) -> Result<u32, StorageError> {
        let sealed = self.seq;
        self.roll()?;
        Ok(sealed)
    }

    fn roll(&mut self) -> Result<(), StorageError> {
        self.sync()?;
        let next = self
            .seq
            .checked_add(1)
            .ok_or_else(|| StorageError::Invalid("WAL segment numbers exhausted".into()))?;
        self.file = Arc::new(open_segment(&self.dir, next)?);
        segment::sync_dir(&self.dir)?;
        self.seq = next;
        self.size = 0;
        Ok(())
    }
}

fn open_segment(dir: &Path, seq: u32) -> Result<File, StorageError> {
    let path = segment::path(dir, seq);
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io(format!("creating WAL segment {}", path.display()), e))
}
