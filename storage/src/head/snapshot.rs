//! The head snapshot: every series with its chunks, written at a graceful close so that
//! the next start loads it instead of replaying the WAL it covers. Byte layout in
//! `head/FORMAT.md`.
//!
//! The file is written to a temporary name, fsynced and renamed into place, so it is
//! either whole or absent. It is checked (magic, version, CRC of the whole file, then a
//! full decoding pass) before anything of it is loaded, so a bad file is ignored as a
//! whole and the WAL is replayed instead.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use memmap2::Mmap;

use super::series::{ImageChunk, SeriesImage};
use super::{Head, HeadChunks};
use crate::error::StorageError;
use crate::labels::{Label, Labels};
use crate::varint::{get_uvarint, put_uvarint, put_varint, unzigzag};
use crate::wal::record::{Record, decode_frame, encode_metadata};
use crate::wal::{MetadataEntry, WalPosition};

/// File name of the snapshot in the data directory.
pub(crate) const FILE_NAME: &str = "head_snapshot";

/// File name while it is being written.
pub(crate) const TMP_NAME: &str = "head_snapshot.tmp";

/// First bytes of the file.
const MAGIC: &[u8; 4] = b"VGHS";

/// Format version; a file of another version is ignored (the WAL is replayed).
const VERSION: u8 = 1;

/// Bytes before the first series: magic, version, WAL segment (u32), WAL offset (u64).
const HEADER_LEN: usize = 4 + 1 + 4 + 8;

/// Bytes of the trailing CRC32.
const CRC_LEN: usize = 4;

/// Bytes buffered before a write to the file.
const WRITE_BUFFER: usize = 1 << 20;

/// A series as the snapshot holds it.
pub(crate) struct SnapshotSeries<'a> {
    /// The id its WAL records use.
    pub(crate) id: u32,
    /// Its labels.
    pub(crate) labels: Labels,
    /// Its samples, borrowing the file's chunk bytes.
    pub(crate) image: SeriesImage<'a>,
}

/// What a written snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrittenSnapshot {
    /// Series written.
    pub(crate) series: u64,
    /// Bytes of the file.
    pub(crate) bytes: u64,
}

/// Writes every logged series of `head` and its metadata to `dir/head_snapshot`,
/// recording that it covers the WAL before `wal`. The caller keeps the head still
/// (commit lock) while this runs. Pages of `spill` read meanwhile are released as it
/// goes.
pub(crate) fn write(
    dir: &Path,
    head: &Head,
    spill: &HeadChunks,
    wal: WalPosition,
) -> Result<WrittenSnapshot, StorageError> {
    let tmp = dir.join(TMP_NAME);
    let io = |e: std::io::Error| StorageError::io(format!("writing {}", tmp.display()), e);
    let file = File::create(&tmp).map_err(io)?;
    let mut out = HashingWriter {
        inner: BufWriter::with_capacity(WRITE_BUFFER, file),
        crc: crc32fast::Hasher::new(),
        bytes: 0,
    };
    let mut buf = Vec::with_capacity(HEADER_LEN);
    buf.extend_from_slice(MAGIC);
    buf.push(VERSION);
    buf.extend_from_slice(&wal.segment.to_le_bytes());
    buf.extend_from_slice(&wal.offset.to_le_bytes());
    let series: Vec<_> = head.all_series().into_iter().filter(|s| s.is_logged() && !s.is_removed()).collect();
    put_uvarint(&mut buf, series.len() as u64);
    out.write(&buf).map_err(io)?;
    for (i, s) in series.iter().enumerate() {
        buf.clear();
        encode_series(&mut buf, s.id, &s.labels, &s.image());
        out.write(&buf).map_err(io)?;
        spill.release_mapped_every(i);
    }
    spill.release_mapped();
    // Series are written, the metadata and checksum are not: the middle of a snapshot.
    crate::failpoint::failpoint("snapshot.writing")?;
    buf.clear();
    let metadata: Vec<MetadataEntry> =
        head.metadata_entries().into_iter().map(|(family, meta)| MetadataEntry { family, meta }).collect();
    encode_metadata(&mut buf, &metadata);
    out.write(&buf).map_err(io)?;
    let crc = out.crc.clone().finalize();
    out.write(&crc.to_le_bytes()).map_err(io)?;
    let bytes = out.bytes;
    let file = out.inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    crate::failpoint::failpoint("snapshot.before_rename")?;
    let path = dir.join(FILE_NAME);
    std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(format!("renaming {}", tmp.display()), e))?;
    crate::wal::segment::sync_dir(dir)?;
    Ok(WrittenSnapshot { series: series.len() as u64, bytes })
}

/// A writer that checksums and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.crc.update(buf);
        self.bytes += buf.len() as u64;
        self.inner.write_all(buf)
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn put_chunk(buf: &mut Vec<u8>, c: &ImageChunk<'_>) {
    put_varint(buf, c.min_t);
    put_varint(buf, c.max_t);
    put_bytes(buf, &c.bytes);
}

fn encode_series(buf: &mut Vec<u8>, id: u32, labels: &Labels, image: &SeriesImage<'_>) {
    put_uvarint(buf, u64::from(id));
    put_uvarint(buf, labels.len() as u64);
    for l in labels.iter() {
        put_bytes(buf, l.name.as_bytes());
        put_bytes(buf, l.value.as_bytes());
    }
    match image.last {
        Some((t, v)) => {
            buf.push(1);
            put_varint(buf, t);
            buf.extend_from_slice(&v.to_le_bytes());
        }
        None => buf.push(0),
    }
    put_uvarint(buf, image.full.len() as u64);
    for c in &image.full {
        put_chunk(buf, c);
    }
    match &image.open {
        Some(c) => {
            buf.push(1);
            put_chunk(buf, c);
        }
        None => buf.push(0),
    }
    put_uvarint(buf, image.late.len() as u64);
    for &(t, v) in &image.late {
        put_varint(buf, t);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// A snapshot file, mapped and checked whole.
pub(crate) struct SnapshotFile {
    map: Mmap,
    wal: WalPosition,
}

impl SnapshotFile {
    /// Maps and checks `path`: `Ok(None)` when there is no snapshot, `Err` with the
    /// reason when it cannot be used (I/O, magic, version, checksum, structure).
    pub(crate) fn open(path: &Path) -> Result<Option<SnapshotFile>, String> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("opening: {e}")),
        };
        // SAFETY: the file is only ever replaced by a rename, never written in place, and
        // the data directory is locked by this process.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("mapping: {e}"))?;
        if map.len() < HEADER_LEN + CRC_LEN || &map[..4] != MAGIC {
            return Err("not a head snapshot".into());
        }
        if map[4] != VERSION {
            return Err(format!("format version {} (this build reads {VERSION})", map[4]));
        }
        let (body, crc) = map.split_at(map.len() - CRC_LEN);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err("checksum mismatch".into());
        }
        let wal = WalPosition {
            segment: u32::from_le_bytes([map[5], map[6], map[7], map[8]]),
            offset: u64::from_le_bytes([
                map[9], map[10], map[11], map[12], map[13], map[14], map[15], map[16],
            ]),
        };
        let snap = SnapshotFile { map, wal };
        // Decode everything once before anything is loaded: a file that fails half-way
        // must not leave half a head.
        snap.each_series(|_| {})?;
        Ok(Some(snap))
    }

    /// Bytes of the file.
    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The WAL position the snapshot covers up to: replay resumes there.
    pub(crate) fn wal_position(&self) -> WalPosition {
        self.wal
    }

    /// Hands each series to `f`, in file order; returns the metadata.
    pub(crate) fn each_series<'s>(
        &'s self,
        mut f: impl FnMut(SnapshotSeries<'s>),
    ) -> Result<Vec<MetadataEntry>, String> {
        let body = &self.map[HEADER_LEN..self.map.len() - CRC_LEN];
        let mut r = Reader { buf: body };
        let n = r.uvarint()?;
        for _ in 0..n {
            f(r.series()?);
        }
        let (record, used) = decode_frame(r.buf).map_err(|e| format!("metadata: {e}"))?;
        if used != r.buf.len() {
            return Err("bytes after the metadata".into());
        }
        match record {
            Record::Metadata(entries) => Ok(entries),
            _ => Err("metadata record expected".into()),
        }
    }
}

/// A cursor over the snapshot's bytes; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Result<u64, String> {
        let (v, n) = get_uvarint(self.buf).ok_or("bad varint")?;
        self.buf = &self.buf[n..];
        Ok(v)
    }

    fn varint(&mut self) -> Result<i64, String> {
        self.uvarint().map(unzigzag)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err("field longer than the file".into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| "length too large")?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "label not UTF-8".into())
    }

    /// A count of items each at least `min_size` bytes long, checked against what is
    /// left so a bad count cannot make a huge allocation.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.uvarint()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_size) <= self.buf.len() => Ok(n),
            _ => Err("count larger than the file".into()),
        }
    }

    fn chunk(&mut self) -> Result<ImageChunk<'a>, String> {
        let min_t = self.varint()?;
        let max_t = self.varint()?;
        let bytes = self.bytes()?.into();
        if min_t > max_t {
            return Err("chunk ends before it starts".into());
        }
        Ok(ImageChunk { min_t, max_t, bytes })
    }

    fn series(&mut self) -> Result<SnapshotSeries<'a>, String> {
        let id = u32::try_from(self.uvarint()?).map_err(|_| "series id too large")?;
        let n = self.count(2)?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            labels.push(Label::new(self.string()?, self.string()?));
        }
        if labels.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err("labels not sorted".into());
        }
        let labels = Labels::from_sorted_unchecked(labels);
        let last = match self.u8()? {
            0 => None,
            1 => Some((self.varint()?, self.u64()?)),
            _ => return Err("bad flag".into()),
        };
        let n = self.count(3)?;
        let mut full = Vec::with_capacity(n);
        for _ in 0..n {
            full.push(self.chunk()?);
        }
        let open = match self.u8()? {
            0 => None,
            1 => Some(self.chunk()?),
            _ => return Err("bad flag".into()),
        };
        let n = self.count(9)?;
        let mut late = Vec::with_capacity(n);
        for _ in 0..n {
            late.push((self.varint()?, self.u64()?));
        }
        Ok(SnapshotSeries { id, labels, image: SeriesImage { full, open, last, late } })
    }
}
