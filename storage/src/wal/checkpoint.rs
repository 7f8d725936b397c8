//! WAL checkpoints: once a block holds the samples before some time, the segments up to
//! a number `n` are condensed into `checkpoint.n/` (every series record, the samples
//! still newer than the block, the metadata) and deleted.
//!
//! Steps, each crash-safe: the checkpoint is written to `checkpoint.n.tmp/` and fsynced,
//! renamed to `checkpoint.n/` (directory fsynced), then segments up to `n` and older
//! checkpoints are removed. Replay reads the newest complete checkpoint and then only
//! segments above `n`, so segments that a crash left behind are ignored (and removed at
//! the next open); a leftover `.tmp` is removed at open.

use std::path::{Path, PathBuf};

use super::record::{
    Record, decode_frame, encode_metadata, encode_samples, encode_series, encode_tombstones,
};
use super::{MetadataEntry, SyncPolicy, WalWriter, segment};
use crate::error::StorageError;

/// Prefix of a checkpoint directory's name; the segment number follows.
const PREFIX: &str = "checkpoint.";

/// Suffix of a checkpoint still being written.
const TMP_SUFFIX: &str = ".tmp";

/// Bytes of records gathered before they are written out, so a checkpoint of a large
/// WAL is streamed rather than held in memory.
const FLUSH_BYTES: usize = 1 << 20;

/// The newest complete checkpoint in `wal_dir`: the segment number it covers and its path.
pub fn latest(wal_dir: &Path) -> Result<Option<(u32, PathBuf)>, StorageError> {
    let mut best: Option<(u32, PathBuf)> = None;
    for (seq, path, tmp) in list(wal_dir)? {
        if !tmp && best.as_ref().is_none_or(|(b, _)| seq > *b) {
            best = Some((seq, path));
        }
    }
    Ok(best)
}

/// Every checkpoint directory in `wal_dir`: (number, path, still temporary).
fn list(wal_dir: &Path) -> Result<Vec<(u32, PathBuf, bool)>, StorageError> {
    let entries = std::fs::read_dir(wal_dir)
        .map_err(|e| StorageError::io(format!("listing {}", wal_dir.display()), e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(format!("listing {}", wal_dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let (digits, tmp) = match rest.strip_suffix(TMP_SUFFIX) {
            Some(d) => (d, true),
            None => (rest, false),
        };
        if let Ok(seq) = digits.parse::<u32>() {
            out.push((seq, entry.path(), tmp));
        }
    }
    Ok(out)
}

/// Removes temporary checkpoints, checkpoints older than `keep` and segments up to
/// `keep` (all already covered by checkpoint `keep`).
pub fn remove_obsolete(wal_dir: &Path, keep: Option<u32>) -> Result<(), StorageError> {
    for (seq, path, tmp) in list(wal_dir)? {
        if tmp || keep.is_some_and(|k| seq < k) {
            std::fs::remove_dir_all(&path)
                .map_err(|e| StorageError::io(format!("removing {}", path.display()), e))?;
        }
    }
    if let Some(keep) = keep {
        for seq in segment::list(wal_dir)?.into_iter().filter(|&s| s <= keep) {
            crate::block::failpoint("checkpoint.removing_segments")?;
            let path = segment::path(wal_dir, seq);
            std::fs::remove_file(&path)
                .map_err(|e| StorageError::io(format!("removing {}", path.display()), e))?;
        }
    }
    segment::sync_dir(wal_dir)
}

/// Writes `checkpoint.upto/` from the previous checkpoint and segments up to `upto`,
/// keeping the series records of label sets `live` accepts, samples at or after
/// `keep_from` and `metadata`; then removes what it covers. A series `live` rejects must
/// have no sample at or after `keep_from`.
pub fn write(
    wal_dir: &Path,
    upto: u32,
    keep_from: i64,
    live: &dyn Fn(&crate::labels::Labels) -> bool,
    metadata: &[MetadataEntry],
    segment_size: u64,
) -> Result<(), StorageError> {
    let previous = latest(wal_dir)?;
    let tmp = wal_dir.join(format!("{PREFIX}{upto:08}{TMP_SUFFIX}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .map_err(|e| StorageError::io(format!("removing {}", tmp.display()), e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| StorageError::io(format!("creating {}", tmp.display()), e))?;
    let mut out = WalWriter::create(&tmp, 0, segment_size, SyncPolicy::Periodic)?;
    let mut buf = Vec::new();
    let mut sources: Vec<PathBuf> = Vec::new();
    if let Some((_, dir)) = &previous {
        sources.extend(segment::list(dir)?.into_iter().map(|s| segment::path(dir, s)));
    }
    let after = previous.as_ref().map(|(n, _)| *n);
    sources.extend(
        segment::list(wal_dir)?
            .into_iter()
            .filter(|&s| s <= upto && after.is_none_or(|a| s > a))
            .map(|s| segment::path(wal_dir, s)),
    );
    for path in &sources {
        let data =
            std::fs::read(path).map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
        let mut pos = 0;
        while pos < data.len() {
            let Ok((record, n)) = decode_frame(&data[pos..]) else {
                tracing::warn!(segment = %path.display(), offset = pos, "damaged WAL record skipped by the checkpoint");
                break;
            };
            pos += n;
            match record {
                Record::Series(entries) => {
                    let kept: Vec<_> =
                        entries.iter().filter(|e| live(&e.labels)).map(|e| (e.id, &e.labels)).collect();
                    if !kept.is_empty() {
                        encode_series(&mut buf, kept);
                    }
                }
                Record::Samples(mut samples) => {
                    samples.retain(|s| s.t >= keep_from);
                    encode_samples(&mut buf, &samples);
                }
                // Kept in place, so replay deletes exactly the samples logged before them.
                Record::Tombstones(mut entries) => {
                    entries.retain(|e| e.maxt >= keep_from);
                    if !entries.is_empty() {
                        encode_tombstones(&mut buf, &entries);
                    }
                }
                // Metadata is written once, from the head's complete set, below.
                Record::Metadata(_) => {}
            }
            if buf.len() >= FLUSH_BYTES {
                out.write(&buf)?;
                buf.clear();
            }
        }
    }
    if !metadata.is_empty() {
        encode_metadata(&mut buf, metadata);
    }
    out.write(&buf)?;
    out.sync()?;
    drop(out);
    segment::sync_dir(&tmp)?;
    crate::block::failpoint("checkpoint.before_rename")?;
    let done = wal_dir.join(format!("{PREFIX}{upto:08}"));
    std::fs::rename(&tmp, &done).map_err(|e| StorageError::io(format!("renaming {}", tmp.display()), e))?;
    segment::sync_dir(wal_dir)?;
    crate::block::failpoint("checkpoint.after_rename")?;
    remove_obsolete(wal_dir, Some(upto))
}
