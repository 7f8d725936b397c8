//! A block's `tombstones` file: deleted time ranges per series ordinal. The only block
//! file that changes after the block is written: replaced whole (temporary file, fsync,
//! rename, directory fsync), never modified in place. Layout in `FORMAT.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::error::StorageError;
use crate::varint::{get_uvarint, put_uvarint, put_varint, unzigzag};

/// Name of the tombstones file in a block directory.
pub(crate) const TOMBSTONES_FILE: &str = "tombstones";
/// Magic at the start of a tombstones file.
const MAGIC: [u8; 4] = *b"VGTS";
/// Version of the layout.
const VERSION: u8 = 1;
/// Bytes before the entries: magic, version, three zero bytes.
const HEADER_LEN: usize = 8;
/// Bytes of the trailing CRC32.
const CRC_LEN: usize = 4;

/// Deleted ranges (inclusive) by series ordinal.
pub(crate) type Tombstones = BTreeMap<u32, Vec<(i64, i64)>>;

/// Whether `t` lies in one of `ranges`.
pub(crate) fn deleted(ranges: &[(i64, i64)], t: i64) -> bool {
    ranges.iter().any(|&(a, b)| t >= a && t <= b)
}

/// Reads the tombstones of the block in `dir` (none when the file is absent).
pub(crate) fn read(dir: &Path) -> Result<Tombstones, StorageError> {
    let path = dir.join(TOMBSTONES_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tombstones::new()),
        Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e)),
    };
    let bad = || StorageError::Corrupt(format!("{}: damaged tombstones", path.display()));
    if bytes.len() < HEADER_LEN + CRC_LEN || bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err(bad());
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(bad());
    }
    let mut buf = &body[HEADER_LEN..];
    let mut next = || -> Result<u64, StorageError> {
        let (v, n) = get_uvarint(buf).ok_or_else(bad)?;
        buf = &buf[n..];
        Ok(v)
    };
    let count = next()?;
    let mut out = Tombstones::new();
    for _ in 0..count {
        let ordinal = u32::try_from(next()?).map_err(|_| bad())?;
        let mint = unzigzag(next()?);
        let maxt = unzigzag(next()?);
        out.entry(ordinal).or_default().push((mint, maxt));
    }
    Ok(out)
}

/// Replaces the tombstones file of the block in `dir`.
pub(crate) fn write(dir: &Path, t: &Tombstones) -> Result<(), StorageError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 16 * t.len() + CRC_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.resize(HEADER_LEN, 0);
    put_uvarint(&mut out, t.values().map(|r| r.len() as u64).sum());
    for (&ordinal, ranges) in t {
        for &(mint, maxt) in ranges {
            put_uvarint(&mut out, u64::from(ordinal));
            put_varint(&mut out, mint);
            put_varint(&mut out, maxt);
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join(format!("{TOMBSTONES_FILE}.tmp"));
    let path = dir.join(TOMBSTONES_FILE);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| StorageError::io(format!("writing {}", path.display()), e))?;
    crate::wal::segment::sync_dir(dir)
}
