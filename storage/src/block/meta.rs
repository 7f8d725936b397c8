//! A block's `meta.json` and block ids.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// Name of the metadata file in a block directory.
pub(crate) const META_FILE: &str = "meta.json";

/// Version of the block layout written in `meta.json`: 2 since chunks are bit-packed
/// (chunks file version 2).
pub(crate) const BLOCK_VERSION: u32 = 2;
/// Oldest block layout still read: version 1 differs only in its chunk encodings, which
/// the decoder still knows.
const OLDEST_READABLE_VERSION: u32 = 1;

/// Crockford's base32 alphabet, as ULIDs use: ids sort as strings in time order.
const BASE32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters of an id: 10 for a 48-bit millisecond time, 16 for 80 bits of entropy.
pub(crate) const ID_LEN: usize = 26;

/// What a block holds, written as `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// The block's id (ULID-like: sortable by creation time), also its directory name.
    pub ulid: String,
    /// Start of the block's time range in ms (inclusive).
    pub min_time: i64,
    /// End of the block's time range in ms (exclusive).
    pub max_time: i64,
    /// Counts of what the block holds.
    pub stats: BlockStats,
    /// How the block came to be.
    pub compaction: BlockCompaction,
    /// Layout version (2; version 1 blocks are still read).
    pub version: u32,
}

/// Counts of a block's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Samples.
    pub num_samples: u64,
    /// Series.
    pub num_series: u64,
    /// Chunks.
    pub num_chunks: u64,
    /// Bytes of the index and chunks files.
    pub num_bytes: u64,
}

/// A block's lineage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCompaction {
    /// 1 for a block cut from the head, one more than its inputs' highest for a compacted one.
    pub level: u32,
    /// Ids of the level-1 blocks whose data this block holds.
    pub sources: Vec<String>,
    /// Ids of the blocks this one was compacted from (their removal may be pending).
    #[serde(default)]
    pub parents: Vec<String>,
}

impl BlockMeta {
    /// Reads `meta.json` in `dir`.
    pub(crate) fn read(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(META_FILE);
        let bytes =
            std::fs::read(&path).map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
        let meta: BlockMeta = serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("{}: {e}", path.display())))?;
        if !(OLDEST_READABLE_VERSION..=BLOCK_VERSION).contains(&meta.version)
            || meta.min_time >= meta.max_time
        {
            return Err(StorageError::Corrupt(format!(
                "{}: unsupported version or empty range",
                path.display()
            )));
        }
        Ok(meta)
    }

    /// Writes `meta.json` into `dir` and fsyncs it.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), StorageError> {
        let path = dir.join(META_FILE);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| StorageError::Invalid(format!("encoding block meta: {e}")))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&bytes)?;
            f.sync_all()
        };
        write().map_err(|e| StorageError::io(format!("writing {}", path.display()), e))
    }

    /// Whether the block's range meets `[mint, maxt]` (inclusive).
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && self.max_time > mint
    }
}

/// Whether `name` has the shape of a block id.
pub(crate) fn is_block_id(name: &str) -> bool {
    name.len() == ID_LEN && name.bytes().all(|b| BASE32.contains(&b))
}

/// A fresh id: the current time in ms then 80 bits mixed from the time in ns, the
/// process id and a counter, so two ids made in one millisecond still differ.
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let ms = now.as_millis() as u64 & ((1 << 48) - 1);
    let seed =
        [now.as_nanos() as u64, u64::from(std::process::id()), COUNTER.fetch_add(1, Ordering::Relaxed)];
    let mut seed_bytes = [0u8; 24];
    for (i, s) in seed.iter().enumerate() {
        seed_bytes[i * 8..(i + 1) * 8].copy_from_slice(&s.to_le_bytes());
    }
    let entropy = xxhash_rust::xxh3::xxh3_128(&seed_bytes) & ((1u128 << 80) - 1);
    let value: u128 = (u128::from(ms) << 80) | entropy;
    (0..ID_LEN).rev().map(|i| char::from(BASE32[((value >> (5 * i)) & 31) as usize])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_distinct_and_time_sorted() {
        let a = new_id();
        let b = new_id();
        assert!(is_block_id(&a) && is_block_id(&b), "{a} {b}");
        assert_ne!(a, b);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(new_id()[..10] > a[..10]);
    }

    #[test]
    fn meta_roundtrips_through_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = BlockMeta {
            ulid: new_id(),
            min_time: 0,
            max_time: 7_200_000,
            stats: BlockStats { num_samples: 3, num_series: 1, num_chunks: 1, num_bytes: 100 },
            compaction: BlockCompaction { level: 1, sources: vec!["x".into()], parents: vec![] },
            version: BLOCK_VERSION,
        };
        meta.write(dir.path()).expect("write");
        assert_eq!(BlockMeta::read(dir.path()).expect("read"), meta);
        let text = std::fs::read_to_string(dir.path().join(META_FILE)).expect("read");
        assert!(text.contains("\"minTime\": 0"), "{text}");
    }
}
