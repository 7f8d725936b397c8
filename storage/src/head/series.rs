//! One in-memory series: its full chunks, its open chunk and the append rules.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::Mutex;

use super::iter::{ChunkData, ChunkRef, FullChunk, HeadSampleIter};
use super::spill::{HeadChunks, StoredChunk};
use crate::chunk::{MAX_CHUNK_BYTES, SAMPLES_PER_CHUNK, SegmentedBytes, XorEncoder};
use crate::db::merge::MergeIter;
use crate::error::AppendError;
use crate::labels::Labels;
use crate::sample::Sample;
use crate::traits::{SampleIter, VecSampleIter};

/// A series in the head. Its samples sit behind a mutex; the time bounds are mirrored in
/// atomics so that range checks over many series take no lock.
pub(crate) struct MemSeries {
    /// The id WAL records and postings use.
    pub(crate) id: u32,
    /// The series' labels.
    pub(crate) labels: Labels,
    /// Whether a series record for it is in the WAL.
    logged: AtomicBool,
    /// Set when garbage collection removed it from the head.
    removed: AtomicBool,
    /// Oldest sample's timestamp (`i64::MAX` while empty).
    min_t: AtomicI64,
    /// Newest sample's timestamp (`i64::MIN` while empty).
    max_t: AtomicI64,
    data: Mutex<SeriesData>,
}

/// A series' stored samples as a head snapshot holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeriesImage<'a> {
    /// Full chunks, oldest first.
    pub(crate) full: Vec<ImageChunk<'a>>,
    /// The open chunk, if it holds samples.
    pub(crate) open: Option<ImageChunk<'a>>,
    /// Newest sample ever stored as (t, value bits).
    pub(crate) last: Option<(i64, u64)>,
    /// Late samples (out-of-order window), sorted by time.
    pub(crate) late: Vec<(i64, u64)>,
}

/// One encoded chunk of a [`SeriesImage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageChunk<'a> {
    /// First sample's timestamp.
    pub(crate) min_t: i64,
    /// Last sample's timestamp.
    pub(crate) max_t: i64,
    /// The XOR chunk's bytes (borrowed from the snapshot file when loading).
    pub(crate) bytes: std::borrow::Cow<'a, [u8]>,
}

/// Bytes of an XOR chunk's header (its sample count): a shorter chunk is not one.
const CHUNK_HEADER_LEN: usize = 2;

/// What replaying a run of samples did.
pub(crate) struct RunOutcome {
    /// Samples stored.
    pub(crate) stored: u64,
    /// Samples refused (out of order or duplicate).
    pub(crate) rejected: u64,
    /// Oldest stored timestamp (`i64::MAX` if none).
    pub(crate) min_t: i64,
    /// Newest stored timestamp (`i64::MIN` if none).
    pub(crate) max_t: i64,
}

/// An open chunk: written into segments that never move, so a million chunks growing
/// in step do not fragment the allocator (see `chunk::SegmentedBytes`).
type OpenChunk = XorEncoder<SegmentedBytes>;

/// A sample a commit has accepted but not yet applied.
pub(crate) type Pending = Option<(i64, u64)>;

/// The samples of a series and the commit in flight.
pub(crate) struct SeriesData {
    full: FullChunks,
    /// The open chunk (its first timestamp is read back from its bytes when needed).
    open: OpenChunk,
    /// Newest stored sample as (t, value bits).
    last: Option<(i64, u64)>,
    /// Newest sample accepted by the commit being checked, so later samples of the same
    /// batch are checked against it; cleared when the commit is applied or abandoned.
    pub(crate) pending: Pending,
    /// Late samples accepted within the out-of-order window, sorted by time, kept
    /// uncompressed (the window bounds them) until a block takes them.
    ooo: LateSamples,
}

/// A series' full chunks, oldest first, in a boxed slice that grows by exactly one: a
/// series holds a handful, and a vector's capacity word and spare room would be paid by
/// every one of a million series.
#[derive(Default)]
struct FullChunks(Box<[FullChunk]>);

impl FullChunks {
    fn push(&mut self, c: FullChunk) {
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.reserve_exact(1);
        v.push(c);
        self.0 = v.into_boxed_slice();
    }

    fn retain(&mut self, keep: impl FnMut(&FullChunk) -> bool) {
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.retain(keep);
        self.0 = v.into_boxed_slice();
    }

    fn clear(&mut self) {
        self.0 = Box::default();
    }
}

impl std::ops::Deref for FullChunks {
    type Target = [FullChunk];
    fn deref(&self) -> &[FullChunk] {
        &self.0
    }
}

/// Late samples of a series, sorted by time; boxed so that the many series without any
/// pay one pointer, not a vector header.
#[derive(Default)]
#[allow(clippy::box_collection, reason = "8 bytes per series instead of a 24-byte empty vector")]
struct LateSamples(Option<Box<Vec<(i64, u64)>>>);

impl LateSamples {
    fn as_slice(&self) -> &[(i64, u64)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The value stored at `t`.
    fn get(&self, t: i64) -> Option<u64> {
        let s = self.as_slice();
        s.binary_search_by_key(&t, |&(x, _)| x).ok().map(|i| s[i].1)
    }

    /// Inserts `(t, v)` unless `t` is present.
    fn insert_new(&mut self, t: i64, v: u64) {
        let vec = self.0.get_or_insert_with(Box::default);
        if let Err(i) = vec.binary_search_by_key(&t, |&(x, _)| x) {
            vec.insert(i, (t, v));
        }
    }

    /// Drops the samples before `boundary`; returns how many.
    fn drop_before(&mut self, boundary: i64) -> u64 {
        let Some(vec) = self.0.as_mut() else { return 0 };
        let before = vec.len();
        vec.retain(|&(t, _)| t >= boundary);
        let dropped = (before - vec.len()) as u64;
        if vec.is_empty() {
            self.0 = None;
        }
        dropped
    }
}

impl SeriesData {
    /// Checks a sample against the newest stored or pending one: `Ok(true)` to store it,
    /// `Ok(false)` for an exact repeat accepted without storing, or why it is refused. A
    /// sample older than the newest is taken if it is at most `window` ms older and its
    /// timestamp is not stored yet.
    pub(crate) fn check(&self, t: i64, v: u64, window: i64) -> Result<bool, AppendError> {
        match self.pending.or(self.last) {
            Some((lt, _)) if t < lt && window > 0 && t >= lt.saturating_sub(window) => self.check_late(t, v),
            Some((lt, _)) if t < lt => Err(AppendError::OutOfOrder),
            Some((lt, lv)) if t == lt => {
                if v == lv {
                    Ok(false)
                } else {
                    Err(AppendError::DuplicateTimestamp)
                }
            }
            _ => Ok(true),
        }
    }

    /// Newest stored sample as (t, value bits).
    pub(crate) fn last(&self) -> Option<(i64, u64)> {
        self.last
    }

    /// Whether exactly this sample is stored.
    fn holds(&self, t: i64, v: u64) -> bool {
        matches!(self.check_late(t, v), Ok(false))
    }

    /// A late sample against what is stored at its timestamp.
    fn check_late(&self, t: i64, v: u64) -> Result<bool, AppendError> {
        let stored = match self.ooo.get(t) {
            Some(v) => Some(v),
            None => HeadSampleIter::new(self.chunks_in(t, t), t, t).next().map(|s| s.v.to_bits()),
        };
        match stored {
            None => Ok(true),
            Some(sv) if sv == v => Ok(false),
            Some(_) => Err(AppendError::DuplicateTimestamp),
        }
    }

    /// Stores a sample that [`SeriesData::check`] accepted for storing (a late one in
    /// the out-of-order buffer, where the first of a repeated timestamp stays); a full
    /// chunk is moved to `spill` when given.
    fn store(&mut self, t: i64, v: u64, spill: Option<&HeadChunks>) {
        if self.last.is_some_and(|(lt, _)| t <= lt) {
            // Two samples of one batch can share a late timestamp (each checked before
            // the other was stored): keep the first, as replay does.
            let in_chunks = || HeadSampleIter::new(self.chunks_in(t, t), t, t).next().is_some();
            if self.ooo.get(t).is_none() && !in_chunks() {
                self.ooo.insert_new(t, v);
            }
            return;
        }
        if self.open.num_samples() >= SAMPLES_PER_CHUNK || self.open.len_bytes() >= MAX_CHUNK_BYTES {
            self.cut(spill);
        }
        // Cannot fail: check() guarantees t is after the open chunk's last sample, and
        // the chunk was just cut if it was full.
        if self.open.append(t, f64::from_bits(v)).is_ok() {
            self.last = Some((t, v));
        }
    }

    fn cut(&mut self, spill: Option<&HeadChunks>) {
        let (Some(min_t), Some(max_t)) = (self.open.first_t(), self.open.last_t()) else { return };
        // Spill through a stack copy of the segments: nothing to allocate and free for
        // every chunk of every series.
        let data = match spill.and_then(|s| self.open.with_bytes(|b| s.write(b))) {
            Some(spilled) => {
                self.open = OpenChunk::default();
                spilled
            }
            None => StoredChunk::in_memory(std::mem::take(&mut self.open).finish()),
        };
        self.full.push(FullChunk { data, min_t, max_t });
    }

    /// Appends decoded samples at or after `min_valid` in order, as a replay would.
    fn store_samples(
        &mut self,
        it: crate::chunk::XorIter,
        min_valid: i64,
        spill: Option<&HeadChunks>,
        out: &mut RunOutcome,
    ) {
        for s in it {
            if s.t < min_valid || self.last.is_some_and(|(lt, _)| s.t <= lt) {
                continue;
            }
            self.store(s.t, s.v.to_bits(), spill);
            out.stored += 1;
            out.min_t = out.min_t.min(s.t);
            out.max_t = out.max_t.max(s.t);
        }
    }

    /// Drops the chunks whose samples all lie before `boundary` (a block holds them now);
    /// returns how many samples were dropped. A chunk straddling `boundary` stays whole.
    fn truncate_before(&mut self, boundary: i64) -> u64 {
        if self.open.last_t().is_some_and(|t| t < boundary) {
            self.cut(None);
        }
        let mut dropped = self.ooo.drop_before(boundary);
        self.full.retain(|c| {
            let keep = c.max_t >= boundary;
            if !keep {
                dropped += c.data.num_samples() as u64;
            }
            keep
        });
        dropped
    }

    /// The samples in `[mint, maxt]`: the chunks merged with the late samples.
    fn samples_in(&self, mint: i64, maxt: i64) -> Box<dyn SampleIter> {
        let chunks = Box::new(HeadSampleIter::new(self.chunks_in(mint, maxt), mint, maxt));
        let late: Vec<Sample> = self
            .ooo
            .as_slice()
            .iter()
            .filter(|&&(t, _)| t >= mint && t <= maxt)
            .map(|&(t, v)| Sample::new(t, f64::from_bits(v)))
            .collect();
        if late.is_empty() {
            return chunks;
        }
        Box::new(MergeIter::new(vec![chunks, Box::new(VecSampleIter::new(late))]))
    }

    /// The chunks (full and a copy of the open one) that overlap `[mint, maxt]`.
    fn chunks_in(&self, mint: i64, maxt: i64) -> Vec<ChunkRef> {
        let mut out: Vec<ChunkRef> =
            self.full.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt).map(ChunkRef::from).collect();
        if let (Some(first), Some(last)) = (self.open.first_t(), self.open.last_t())
            && last >= mint
            && first <= maxt
        {
            out.push(ChunkRef { data: ChunkData::Mem(self.open.snapshot()), min_t: first, max_t: last });
        }
        out
    }
}

impl MemSeries {
    /// An empty series.
    pub(crate) fn new(id: u32, labels: Labels, logged: bool) -> Self {
        MemSeries {
            id,
            labels,
            logged: AtomicBool::new(logged),
            removed: AtomicBool::new(false),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            data: Mutex::new(SeriesData {
                full: FullChunks::default(),
                open: OpenChunk::default(),
                last: None,
                pending: None,
                ooo: LateSamples::default(),
            }),
        }
    }

    /// Whether the WAL holds a series record for it.
    pub(crate) fn is_logged(&self) -> bool {
        self.logged.load(Ordering::Acquire)
    }

    /// Deletes the samples in `[mint, maxt]` by re-encoding the rest; returns how many
    /// were deleted. The newest-sample rule is kept: later appends must still be newer
    /// than the newest sample ever stored.
    pub(crate) fn delete_range(&self, mint: i64, maxt: i64, spill: Option<&HeadChunks>) -> u64 {
        let mut data = self.data.lock();
        let mut it = data.samples_in(i64::MIN, i64::MAX);
        let mut kept = Vec::new();
        let mut deleted = 0;
        while let Some(s) = it.next() {
            if s.t >= mint && s.t <= maxt {
                deleted += 1;
            } else {
                kept.push(s);
            }
        }
        if deleted == 0 {
            return 0;
        }
        let last = data.last.take();
        data.full.clear();
        data.ooo = LateSamples::default();
        data.open = OpenChunk::default();
        for s in &kept {
            data.store(s.t, s.v.to_bits(), spill);
        }
        data.last = last;
        match (kept.first(), kept.last()) {
            (Some(a), Some(b)) => {
                self.min_t.store(a.t, Ordering::Relaxed);
                self.max_t.store(b.t, Ordering::Relaxed);
            }
            _ => {
                self.min_t.store(i64::MAX, Ordering::Relaxed);
                self.max_t.store(i64::MIN, Ordering::Relaxed);
            }
        }
        deleted
    }

    /// Whether garbage collection removed it from the head.
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Marks it removed if it holds no sample and no commit is checking it; the caller
    /// holds the commit lock, so no commit is between its check and its apply.
    pub(crate) fn remove_if_empty(&self) -> bool {
        let data = self.data.lock();
        let empty = data.full.is_empty()
            && data.open.num_samples() == 0
            && data.ooo.as_slice().is_empty()
            && data.pending.is_none();
        if empty {
            self.removed.store(true, Ordering::Release);
        }
        empty
    }

    /// Records that the WAL now holds its series record.
    pub(crate) fn set_logged(&self) {
        self.logged.store(true, Ordering::Release);
    }

    /// Locks the samples.
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, SeriesData> {
        self.data.lock()
    }

    /// Stores an accepted sample (under the caller's lock) and widens the time bounds.
    pub(crate) fn store_locked(&self, data: &mut SeriesData, t: i64, v: u64, spill: Option<&HeadChunks>) {
        data.store(t, v, spill);
        self.min_t.fetch_min(t, Ordering::Relaxed);
        self.max_t.fetch_max(t, Ordering::Relaxed);
    }

    /// Checks and stores one sample with the head's rules.
    #[cfg(test)]
    pub(crate) fn append(
        &self,
        t: i64,
        v: u64,
        spill: Option<&HeadChunks>,
        window: i64,
    ) -> Result<(), AppendError> {
        let mut data = self.data.lock();
        if data.check(t, v, window)? {
            self.store_locked(&mut data, t, v, spill);
        }
        Ok(())
    }

    /// Checks and stores a run of replayed samples of this series under one lock,
    /// skipping those before `min_valid` (a block holds them).
    pub(crate) fn replay_run(
        &self,
        run: &[crate::wal::RefSample],
        min_valid: i64,
        spill: Option<&HeadChunks>,
        window: i64,
    ) -> RunOutcome {
        let mut out = RunOutcome { stored: 0, rejected: 0, min_t: i64::MAX, max_t: i64::MIN };
        let mut data = self.data.lock();
        for s in run.iter().filter(|s| s.t >= min_valid) {
            match data.check(s.t, s.v, window) {
                Ok(true) => {
                    data.store(s.t, s.v, spill);
                    out.stored += 1;
                    out.min_t = out.min_t.min(s.t);
                    out.max_t = out.max_t.max(s.t);
                }
                Ok(false) => {}
                // A snapshot taken while commits went on may already hold samples the WAL
                // after its position repeats: those are not refusals.
                Err(_) if data.holds(s.t, s.v) => {}
                Err(_) => out.rejected += 1,
            }
        }
        // Plain loads first: under the series lock the bounds rarely need an atomic
        // read-modify-write, and replay runs this for every sample.
        if out.stored > 0 && out.min_t < self.min_t.load(Ordering::Relaxed) {
            self.min_t.fetch_min(out.min_t, Ordering::Relaxed);
        }
        if out.stored > 0 && out.max_t > self.max_t.load(Ordering::Relaxed) {
            self.max_t.fetch_max(out.max_t, Ordering::Relaxed);
        }
        out
    }

    /// A copy of its stored samples for a head snapshot.
    pub(crate) fn image(&self) -> SeriesImage<'static> {
        let data = self.data.lock();
        let full = data
            .full
            .iter()
            .map(|c| ImageChunk { min_t: c.min_t, max_t: c.max_t, bytes: c.data.bytes().to_vec().into() })
            .collect();
        let open = data.open.first_t().zip(data.open.last_t()).map(|(min_t, max_t)| ImageChunk {
            min_t,
            max_t,
            bytes: data.open.with_bytes(<[u8]>::to_vec).into(),
        });
        SeriesImage { full, open, last: data.last, late: data.ooo.as_slice().to_vec() }
    }

    /// Fills an empty series from a head snapshot's image, dropping samples before
    /// `min_valid` (a block holds them). Full chunks are stored as they are (spilled when
    /// `spill` is given); the open chunk's samples are appended again so that appends
    /// can go on. Returns what was stored.
    pub(crate) fn restore(
        &self,
        image: SeriesImage<'_>,
        min_valid: i64,
        spill: Option<&HeadChunks>,
    ) -> RunOutcome {
        let mut out = RunOutcome { stored: 0, rejected: 0, min_t: i64::MAX, max_t: i64::MIN };
        let mut data = self.data.lock();
        let whole = image.full.iter().all(|c| c.min_t >= min_valid);
        for c in &image.full {
            if whole && c.bytes.len() >= CHUNK_HEADER_LEN {
                // Straight from the snapshot's map into a head-chunks file: no copy.
                let stored = match spill.and_then(|s| s.write(&c.bytes)) {
                    Some(spilled) => spilled,
                    None => {
                        let Ok(chunk) = crate::chunk::XorChunk::from_bytes(&*c.bytes) else { continue };
                        StoredChunk::in_memory(chunk)
                    }
                };
                let samples = stored.num_samples();
                data.full.push(FullChunk { data: stored, min_t: c.min_t, max_t: c.max_t });
                out.stored += samples as u64;
                out.min_t = out.min_t.min(c.min_t);
                out.max_t = out.max_t.max(c.max_t);
            } else if let Ok(chunk) = crate::chunk::XorChunk::from_bytes(&*c.bytes) {
                // A chunk straddles the newest block's end (rare: the first start after a
                // cut): keep only its samples the block does not hold, re-encoded.
                data.store_samples(chunk.iter(), min_valid, spill, &mut out);
            } else {
                out.rejected += 1;
            }
        }
        if let Some(open) = &image.open
            && let Ok(chunk) = crate::chunk::XorChunk::from_bytes(&*open.bytes)
        {
            data.store_samples(chunk.iter(), min_valid, spill, &mut out);
        }
        for &(t, v) in image.late.iter().filter(|&&(t, _)| t >= min_valid) {
            data.ooo.insert_new(t, v);
            out.stored += 1;
            out.min_t = out.min_t.min(t);
            out.max_t = out.max_t.max(t);
        }
        // The newest sample ever stored, even if deleted since: later appends are checked
        // against it, as before the restart.
        data.last = image.last.or(data.last);
        if out.stored > 0 {
            self.min_t.fetch_min(out.min_t, Ordering::Relaxed);
            self.max_t.fetch_max(out.max_t, Ordering::Relaxed);
        }
        out
    }

    /// Whether any sample lies in `[mint, maxt]`.
    pub(crate) fn has_data_in(&self, mint: i64, maxt: i64) -> bool {
        let (lo, hi) = (self.min_t.load(Ordering::Relaxed), self.max_t.load(Ordering::Relaxed));
        if lo > maxt || hi < mint || mint > maxt {
            return false;
        }
        if (mint..=maxt).contains(&lo) || (mint..=maxt).contains(&hi) {
            return true;
        }
        // The range lies strictly inside the series' span: look at the chunks.
        let data = self.data.lock();
        if data.ooo.as_slice().iter().any(|&(t, _)| (mint..=maxt).contains(&t)) {
            return true;
        }
        data.chunks_in(mint, maxt).iter().any(|c| {
            (mint..=maxt).contains(&c.min_t)
                || (mint..=maxt).contains(&c.max_t)
                || c.chunk().iter().seek(mint).is_some_and(|s| s.t <= maxt)
        })
    }

    /// An iterator over the samples in `[mint, maxt]`, detached from later appends.
    pub(crate) fn iter(&self, mint: i64, maxt: i64) -> Box<dyn SampleIter> {
        self.data.lock().samples_in(mint, maxt)
    }

    /// The samples in `[mint, maxt]`, copied out.
    pub(crate) fn samples_between(&self, mint: i64, maxt: i64) -> Vec<crate::sample::Sample> {
        let mut it = self.iter(mint, maxt);
        let mut out = Vec::new();
        while let Some(s) = it.next() {
            out.push(s);
        }
        out
    }

    /// Drops the chunks entirely before `boundary` and narrows the time bounds; returns
    /// the samples dropped and the first sample time at or after `boundary`, if any.
    pub(crate) fn truncate_before(&self, boundary: i64) -> (u64, Option<i64>) {
        let mut data = self.data.lock();
        let dropped = data.truncate_before(boundary);
        let first_late = data.ooo.as_slice().first().map(|&(t, _)| t);
        let first_kept = data
            .full
            .first()
            .map(|c| c.min_t)
            .or_else(|| data.open.first_t())
            .into_iter()
            .chain(first_late)
            .min();
        let first_new = data.samples_in(boundary, i64::MAX).next().map(|s| s.t);
        match first_kept {
            Some(t) => self.min_t.store(t, Ordering::Relaxed),
            None => {
                self.min_t.store(i64::MAX, Ordering::Relaxed);
                self.max_t.store(i64::MIN, Ordering::Relaxed);
            }
        }
        (dropped, first_new)
    }

    /// Number of chunks, full and open, for statistics.
    pub(crate) fn chunk_count(&self) -> usize {
        let d = self.data.lock();
        d.full.len() + usize::from(d.open.num_samples() > 0)
    }
}

#[cfg(test)]
mod size_tests {
    /// A million series are a million of these: growing one should be a decision.
    #[test]
    fn a_series_stays_within_its_budget() {
        // 168 bytes plus the Arc's two counters fit a 192-byte allocator size class.
        assert!(
            std::mem::size_of::<super::MemSeries>() <= 168,
            "{}",
            std::mem::size_of::<super::MemSeries>()
        );
        assert_eq!(std::mem::size_of::<crate::labels::Labels>(), 16);
        // A series holds ~5 full chunks in a three-hour head.
        assert_eq!(std::mem::size_of::<super::FullChunk>(), 32);
    }
}
