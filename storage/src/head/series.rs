//! One in-memory series: its full chunks, its open chunk and the append rules.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::Mutex;

use super::iter::{ChunkData, ChunkRef, HeadSampleIter};
use super::spill::HeadChunks;
use crate::chunk::{MAX_CHUNK_BYTES, SAMPLES_PER_CHUNK, XorEncoder};
use crate::error::AppendError;
use crate::labels::Labels;
use crate::traits::SampleIter as _;

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

/// A sample a commit has accepted but not yet applied.
pub(crate) type Pending = Option<(i64, u64)>;

/// The samples of a series and the commit in flight.
pub(crate) struct SeriesData {
    full: Vec<ChunkRef>,
    open: XorEncoder,
    open_min_t: i64,
    /// Newest stored sample as (t, value bits).
    last: Option<(i64, u64)>,
    /// Newest sample accepted by the commit being checked, so later samples of the same
    /// batch are checked against it; cleared when the commit is applied or abandoned.
    pub(crate) pending: Pending,
}

impl SeriesData {
    /// Checks a sample against the newest stored or pending one: `Ok(true)` to store it,
    /// `Ok(false)` for an exact repeat accepted without storing, or why it is refused.
    pub(crate) fn check(&self, t: i64, v: u64) -> Result<bool, AppendError> {
        match self.pending.or(self.last) {
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

    /// Stores a sample that [`SeriesData::check`] accepted for storing; a full chunk
    /// is moved to `spill` when given.
    fn store(&mut self, t: i64, v: u64, spill: Option<&HeadChunks>) {
        if self.open.num_samples() >= SAMPLES_PER_CHUNK || self.open.len_bytes() >= MAX_CHUNK_BYTES {
            self.cut(spill);
        }
        if self.open.num_samples() == 0 {
            self.open_min_t = t;
        }
        // Cannot fail: check() guarantees t is after the open chunk's last sample, and
        // the chunk was just cut if it was full.
        if self.open.append(t, f64::from_bits(v)).is_ok() {
            self.last = Some((t, v));
        }
    }

    fn cut(&mut self, spill: Option<&HeadChunks>) {
        let Some(max_t) = self.open.last_t() else { return };
        let chunk = std::mem::take(&mut self.open).finish();
        let data = match spill.and_then(|s| s.write(chunk.as_bytes())) {
            Some(spilled) => ChunkData::Spilled(spilled),
            None => ChunkData::Mem(chunk),
        };
        // Grow by one: a series holds a handful of full chunks, and doubling would leave
        // up to half of the vector's room unused in every one of a million series.
        self.full.reserve_exact(1);
        self.full.push(ChunkRef { data, min_t: self.open_min_t, max_t });
    }

    /// Drops the chunks whose samples all lie before `boundary` (a block holds them now);
    /// returns how many samples were dropped. A chunk straddling `boundary` stays whole.
    fn truncate_before(&mut self, boundary: i64) -> u64 {
        if self.open.last_t().is_some_and(|t| t < boundary) {
            self.cut(None);
        }
        let mut dropped = 0;
        self.full.retain(|c| {
            let keep = c.max_t >= boundary;
            if !keep {
                dropped += c.num_samples() as u64;
            }
            keep
        });
        dropped
    }

    /// The chunks (full and a copy of the open one) that overlap `[mint, maxt]`.
    fn chunks_in(&self, mint: i64, maxt: i64) -> Vec<ChunkRef> {
        let mut out: Vec<ChunkRef> =
            self.full.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt).cloned().collect();
        if let Some(last) = self.open.last_t().filter(|&l| l >= mint && self.open_min_t <= maxt) {
            out.push(ChunkRef {
                data: ChunkData::Mem(self.open.snapshot()),
                min_t: self.open_min_t,
                max_t: last,
            });
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
                full: Vec::new(),
                open: XorEncoder::new(),
                open_min_t: 0,
                last: None,
                pending: None,
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
        let mut it = HeadSampleIter::new(data.chunks_in(i64::MIN, i64::MAX), i64::MIN, i64::MAX);
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
        let last = data.last;
        data.full.clear();
        data.open = XorEncoder::new();
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
        let empty = data.full.is_empty() && data.open.num_samples() == 0 && data.pending.is_none();
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
    pub(crate) fn append(&self, t: i64, v: u64, spill: Option<&HeadChunks>) -> Result<(), AppendError> {
        let mut data = self.data.lock();
        if data.check(t, v)? {
            self.store_locked(&mut data, t, v, spill);
        }
        Ok(())
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
        self.data.lock().chunks_in(mint, maxt).iter().any(|c| {
            (mint..=maxt).contains(&c.min_t)
                || (mint..=maxt).contains(&c.max_t)
                || c.chunk().iter().seek(mint).is_some_and(|s| s.t <= maxt)
        })
    }

    /// An iterator over the samples in `[mint, maxt]`, detached from later appends.
    pub(crate) fn iter(&self, mint: i64, maxt: i64) -> HeadSampleIter {
        HeadSampleIter::new(self.data.lock().chunks_in(mint, maxt), mint, maxt)
    }

    /// The samples in `[mint, maxt]`, copied out.
    pub(crate) fn samples_between(&self, mint: i64, maxt: i64) -> Vec<crate::sample::Sample> {
        use crate::traits::SampleIter;
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
        let first_kept =
            data.full.first().map(|c| c.min_t).or_else(|| data.open.last_t().map(|_| data.open_min_t));
        let first_new =
            HeadSampleIter::new(data.chunks_in(boundary, i64::MAX), boundary, i64::MAX).next().map(|s| s.t);
        match first_kept {
            Some(t) => self.min_t.store(t, Ordering::Relaxed),
            None => {
                self.min_t.store(i64::MAX, Ordering::Relaxed);
                self.max_t.store(i64::MIN, Ordering::Relaxed);
            }
        }
        (dropped, first_new)
    }

    /// Number of stored samples and chunks (full and open), for statistics.
    #[cfg(test)]
    pub(crate) fn chunk_count(&self) -> usize {
        let d = self.data.lock();
        d.full.len() + usize::from(d.open.num_samples() > 0)
    }
}
