//! Reading the WAL back at start, trimming it at the first damaged record.

use std::fs::OpenOptions;
use std::path::Path;

use super::record::{Record, decode_frame};
use super::segment;
use crate::error::StorageError;

/// A place in the WAL: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPosition {
    /// Segment number.
    pub segment: u32,
    /// Bytes into the segment.
    pub offset: u64,
}

/// What a replay read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Highest segment number left on disk (0 when there is none).
    pub last_segment: u32,
    /// Records handed to the caller.
    pub records: u64,
    /// Bytes of records handed to the caller.
    pub bytes: u64,
    /// Whether damage was found and the log cut there.
    pub truncated: bool,
}

/// Hands every record of every segment in `dir`, in order, to `apply`.
///
/// At the first record that is cut short, fails its checksum or does not decode, the
/// segment is truncated just before it and all later segments are removed, each with a
/// warning: the log then ends with the last good record. Only I/O errors fail.
pub fn replay(dir: &Path, apply: impl FnMut(Record)) -> Result<ReplayStats, StorageError> {
    replay_after(dir, None, apply)
}

/// Like [`replay`], but only the segments numbered above `after` (those up to it are
/// covered by a checkpoint).
pub fn replay_after(
    dir: &Path,
    after: Option<u32>,
    apply: impl FnMut(Record),
) -> Result<ReplayStats, StorageError> {
    let start = match after {
        None => WalPosition { segment: 0, offset: 0 },
        Some(a) => WalPosition { segment: a.saturating_add(1), offset: 0 },
    };
    if after == Some(u32::MAX) {
        return Ok(ReplayStats::default());
    }
    replay_from(dir, start, apply)
}

/// Like [`replay`], but only the records at or after `start` (what a head snapshot
/// covers lies before it). Segments before `start.segment` are left alone; an offset
/// past the end of its segment is an error, as the caller checked it.
pub fn replay_from(
    dir: &Path,
    start: WalPosition,
    mut apply: impl FnMut(Record),
) -> Result<ReplayStats, StorageError> {
    let mut seqs = segment::list(dir)?;
    seqs.retain(|&s| s >= start.segment);
    let mut stats = ReplayStats { last_segment: seqs.last().copied().unwrap_or(0), ..Default::default() };
    for (i, &seq) in seqs.iter().enumerate() {
        let path = segment::path(dir, seq);
        // The first segment is read from the start position only: a snapshot usually
        // covers most of it.
        let skip = if seq == start.segment { start.offset } else { 0 };
        let data = read_from(&path, skip)?;
        let mut pos = 0;
        while pos < data.len() {
            match decode_frame(&data[pos..]) {
                Ok((record, n)) => {
                    apply(record);
                    stats.records += 1;
                    stats.bytes += n as u64;
                    pos += n;
                }
                Err(why) => {
                    tracing::warn!(
                        segment = %path.display(),
                        offset = skip + pos as u64,
                        dropped_bytes = data.len() - pos,
                        reason = %why,
                        "damaged WAL record; truncating the log after the last good record"
                    );
                    truncate(&path, skip + pos as u64)?;
                    for &later in &seqs[i + 1..] {
                        let p = segment::path(dir, later);
                        tracing::warn!(segment = %p.display(), "removing WAL segment after the damage");
                        std::fs::remove_file(&p)
                            .map_err(|e| StorageError::io(format!("removing {}", p.display()), e))?;
                    }
                    segment::sync_dir(dir)?;
                    stats.last_segment = seq;
                    stats.truncated = true;
                    return Ok(stats);
                }
            }
        }
    }
    Ok(stats)
}

/// The bytes of the file at `path` from `offset` on; an offset past its end is an error.
fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, StorageError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e| StorageError::io(format!("reading {}", path.display()), e);
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if offset > len {
        return Err(StorageError::Invalid(format!("replay starts past the end of {}", path.display())));
    }
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut data = Vec::with_capacity((len - offset) as usize);
    f.read_to_end(&mut data).map_err(io)?;
    Ok(data)
}

fn truncate(path: &Path, len: u64) -> Result<(), StorageError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
    f.set_len(len)
        .and_then(|()| f.sync_all())
        .map_err(|e| StorageError::io(format!("truncating {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::wal::record::{RefSample, encode_samples, encode_series};
    use crate::wal::{SyncPolicy, WalWriter};

    /// Writes `commits` commits of one samples record each, rolling segments every
    /// `segment_size` bytes; returns the records written.
    fn write_log(dir: &Path, commits: u32, segment_size: u64) -> Vec<Record> {
        let mut w = WalWriter::create(dir, 1, segment_size, SyncPolicy::Periodic).expect("create");
        let labels = Labels::from_pairs([("__name__", "m")]);
        let mut records = Vec::new();
        for i in 0..commits {
            let mut buf = Vec::new();
            if i == 0 {
                encode_series(&mut buf, [(0, &labels)]);
                records
                    .push(Record::Series(vec![super::super::SeriesEntry { id: 0, labels: labels.clone() }]));
            }
            let s = vec![RefSample { id: 0, t: i64::from(i), v: u64::from(i) }];
            encode_samples(&mut buf, &s);
            records.push(Record::Samples(s));
            w.write(&buf).expect("write");
        }
        records
    }

    fn read_log(dir: &Path) -> (Vec<Record>, ReplayStats) {
        let mut got = Vec::new();
        let stats = replay(dir, |r| got.push(r)).expect("replay");
        (got, stats)
    }

    fn last_segment_path(dir: &Path) -> std::path::PathBuf {
        segment::path(dir, *segment::list(dir).expect("list").last().expect("a segment"))
    }

    #[test]
    fn clean_log_replays_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = write_log(dir.path(), 50, 200);
        assert!(segment::list(dir.path()).expect("list").len() > 3);
        let (got, stats) = read_log(dir.path());
        assert_eq!(got, written);
        assert!(!stats.truncated);
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_good_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = write_log(dir.path(), 10, 1 << 20);
        let path = last_segment_path(dir.path());
        let len = std::fs::metadata(&path).expect("meta").len();
        truncate(&path, len - 3).expect("tear");
        let (got, stats) = read_log(dir.path());
        assert!(stats.truncated);
        assert_eq!(got, written[..written.len() - 1]);
        // The cut is durable: a second replay sees the same, without damage.
        let (again, stats) = read_log(dir.path());
        assert_eq!(again, got);
        assert!(!stats.truncated);
    }

    #[test]
    fn replay_from_a_position_reads_only_later_records_and_cuts_damage_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = write_log(dir.path(), 10, 1 << 20);
        let path = last_segment_path(dir.path());
        let data = std::fs::read(&path).expect("read");
        // The position after the first four records (series + 3 samples).
        let mut offset = 0;
        for _ in 0..4 {
            offset += decode_frame(&data[offset..]).expect("frame").1;
        }
        let seq = *segment::list(dir.path()).expect("list").last().expect("a segment");
        let from = WalPosition { segment: seq, offset: offset as u64 };
        let mut got = Vec::new();
        replay_from(dir.path(), from, |r| got.push(r)).expect("replay");
        assert_eq!(got, written[4..]);
        // A torn tail after the position is cut where it is in the file.
        truncate(&path, data.len() as u64 - 3).expect("tear");
        let mut got = Vec::new();
        let stats = replay_from(dir.path(), from, |r| got.push(r)).expect("replay");
        assert!(stats.truncated);
        assert_eq!(got, written[4..written.len() - 1]);
        let (all, stats) = read_log(dir.path());
        assert!(!stats.truncated);
        assert_eq!(all, written[..written.len() - 1]);
        let past = WalPosition { segment: seq, offset: data.len() as u64 + 10 };
        assert!(replay_from(dir.path(), past, |_| {}).is_err(), "a position past the end is refused");
    }

    #[test]
    fn garbage_after_the_tail_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = write_log(dir.path(), 10, 1 << 20);
        let path = last_segment_path(dir.path());
        let mut data = std::fs::read(&path).expect("read");
        data.extend_from_slice(&[0x13, 0x00, 0x00, 0x00, 0x02, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
        std::fs::write(&path, &data).expect("write");
        let (got, stats) = read_log(dir.path());
        assert!(stats.truncated);
        assert_eq!(got, written);
    }

    #[test]
    fn flipped_byte_in_an_early_segment_drops_it_and_later_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = write_log(dir.path(), 40, 100);
        let seqs = segment::list(dir.path()).expect("list");
        assert!(seqs.len() >= 4);
        // Records before the damaged segment survive; count them with a clean replay.
        let before: usize = {
            let mut n = 0;
            for &s in &seqs[..2] {
                let data = std::fs::read(segment::path(dir.path(), s)).expect("read");
                let mut pos = 0;
                while pos < data.len() {
                    pos += decode_frame(&data[pos..]).expect("frame").1;
                    n += 1;
                }
            }
            n
        };
        let victim = segment::path(dir.path(), seqs[2]);
        let mut data = std::fs::read(&victim).expect("read");
        data[super::super::record::HEADER_LEN + 2] ^= 0x01;
        std::fs::write(&victim, &data).expect("write");
        let (got, stats) = read_log(dir.path());
        assert!(stats.truncated);
        assert_eq!(got, written[..before]);
        assert_eq!(segment::list(dir.path()).expect("list"), seqs[..3].to_vec());
        assert_eq!(std::fs::metadata(&victim).expect("meta").len(), 0);
    }
}
