//! Segment files: names are the sequence number as eight decimal digits.

use std::path::{Path, PathBuf};

use crate::error::StorageError;

/// Digits in a segment's file name, as Prometheus writes them (`00000001`).
const NAME_DIGITS: usize = 8;

/// The path of segment `seq` in `dir`.
pub fn path(dir: &Path, seq: u32) -> PathBuf {
    dir.join(format!("{seq:0NAME_DIGITS$}"))
}

/// Sequence numbers of the segments in `dir`, ascending; other files are ignored.
pub fn list(dir: &Path) -> Result<Vec<u32>, StorageError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
    let mut seqs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == NAME_DIGITS
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(seq) = name.parse()
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// fsyncs a directory so that created or removed entries survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(format!("syncing directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_segment_names_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["00000010", "00000002", "checkpoint.1", "123", "0000000x"] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        assert_eq!(list(dir.path()).expect("list"), vec![2, 10]);
        assert_eq!(path(dir.path(), 7).file_name().and_then(|n| n.to_str()), Some("00000007"));
    }
}
