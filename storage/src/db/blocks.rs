//! The set of blocks on disk: loading it at open, moving corrupt blocks aside and
//! deleting blocks, each crash-safe.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::block::{Block, CORRUPT_SUFFIX, DELETING_SUFFIX, TMP_SUFFIX, is_block_id};
use crate::error::StorageError;
use crate::wal::segment::sync_dir;

/// Opens every block in `dir`, oldest first. Unfinished writes and deletions left by a
/// crash are removed; blocks that fail verification are moved aside (counted in
/// `corrupt`); blocks already compacted into another (named in its parents) are deleted.
pub(crate) fn load(dir: &Path, corrupt: &AtomicU64) -> Result<Vec<Arc<Block>>, StorageError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
    let mut blocks = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETING_SUFFIX) {
            tracing::info!(dir = %path.display(), "removing a block left unfinished by a crash");
            remove_dir(&path)?;
            continue;
        }
        if !is_block_id(&name) {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(e) => {
                tracing::error!(block = %path.display(), error = %e, "corrupt block moved aside, not served");
                corrupt.fetch_add(1, Ordering::Relaxed);
                move_aside(&path)?;
            }
        }
    }
    let replaced: HashSet<String> =
        blocks.iter().flat_map(|b| b.meta().compaction.parents.iter().cloned()).collect();
    let (gone, mut kept): (Vec<_>, Vec<_>) =
        blocks.into_iter().partition(|b| replaced.contains(&b.meta().ulid));
    for b in gone {
        tracing::info!(block = %b.dir().display(), "removing a block already compacted into another");
        delete(b.dir())?;
    }
    sort(&mut kept);
    sync_dir(dir)?;
    Ok(kept)
}

/// Orders blocks by time range, then id.
pub(crate) fn sort(blocks: &mut [Arc<Block>]) {
    blocks.sort_by(|a, b| {
        let (a, b) = (a.meta(), b.meta());
        (a.min_time, a.max_time, &a.ulid).cmp(&(b.min_time, b.max_time, &b.ulid))
    });
}

/// Renames a block directory so that it is never loaded again but kept for inspection.
pub(crate) fn move_aside(path: &Path) -> Result<(), StorageError> {
    let aside = with_suffix(path, CORRUPT_SUFFIX);
    std::fs::rename(path, &aside)
        .map_err(|e| StorageError::io(format!("moving {} aside", path.display()), e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Deletes a block directory: renamed first (atomically out of the set), then removed.
pub(crate) fn delete(path: &Path) -> Result<(), StorageError> {
    let doomed = with_suffix(path, DELETING_SUFFIX);
    std::fs::rename(path, &doomed)
        .map_err(|e| StorageError::io(format!("renaming {}", path.display()), e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    remove_dir(&doomed)
}

fn remove_dir(path: &Path) -> Result<(), StorageError> {
    std::fs::remove_dir_all(path).map_err(|e| StorageError::io(format!("removing {}", path.display()), e))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}
