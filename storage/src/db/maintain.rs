//! Background upkeep of a [`Db`]: cutting blocks from the head (then truncating the head
//! and checkpointing the WAL), retention, compaction, and moving corrupt blocks aside.
//!
//! Block cut, for the head's oldest range `[b - range, b)` once the head spans 1.5 ranges
//! past `b - range` (Prometheus's rule), each step safe against a crash:
//! 1. under the commit lock, `min_valid` becomes `b` (later samples before `b` are
//!    refused) and the WAL moves to a new segment, so segments up to `n` hold every
//!    commit so far;
//! 2. the head's samples in `[old min_valid, b)` are written as a block (temporary
//!    directory, fsync, rename). From here a restart takes `min_valid` from the newest
//!    block and skips WAL samples before it, so nothing is replayed twice;
//! 3. the block joins the served set; the head drops the chunks wholly before `b` (a
//!    straddling chunk stays; queries merge block and head without duplicates);
//! 4. the WAL up to segment `n` becomes a checkpoint of every series and the samples at
//!    or after `b`, and those segments are removed (see [`crate::wal::checkpoint`]).
//!
//! Compaction merges blocks whose time ranges overlap, and groups of blocks that fill a
//! window of 3×, 9×, 27× … the block range (up to [`DbOptions::max_block_span`]) once the
//! head has moved past the window. The new block is written and opened, swapped into the
//! served set in place of its parents, and the parents are deleted; a restart after a crash
//! between those steps deletes blocks named as parents by another. Queries hold the block
//! set they started with (memory maps stay valid after a file is unlinked), so neither
//! ingest nor queries wait for maintenance.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{BLOCKS_DIR, Db, WAL_DIR, blocks};
use crate::block::{Block, NewBlock, failpoint, write_block};
use crate::error::StorageError;
use crate::labels::Labels;
use crate::sample::Sample;
use crate::wal::{MetadataEntry, checkpoint};

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Blocks cut from the head.
    pub blocks_cut: u32,
    /// Compactions run (each writes one block in place of several).
    pub compactions: u32,
    /// Blocks dropped by retention.
    pub blocks_dropped: u32,
    /// Blocks found corrupt by reads and moved aside.
    pub blocks_quarantined: u32,
    /// Whether a head snapshot was written (so a crash replays only the WAL after it).
    pub head_snapshot: bool,
}

/// How often the maintenance thread checks, between passes, whether a head snapshot is
/// due: a crash soon after a burst of writes then replays little of it.
const SNAPSHOT_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How far past the wall clock sample times are trusted when deciding cuts and
/// retention: one stray sample stamped years ahead must neither push every block out of
/// retention nor make the head refuse current samples. An hour covers clock skew.
const FUTURE_SLACK_MS: i64 = 3_600_000;

/// The newest time maintenance believes: now plus [`FUTURE_SLACK_MS`].
fn trusted_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX).saturating_add(FUTURE_SLACK_MS)
}

/// A cut whose block write failed: retried first at the next pass, since `min_valid`
/// already refuses samples of its range.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingCut {
    from: i64,
    boundary: i64,
    sealed: u32,
}

impl Db {
    /// Runs one maintenance pass: moves corrupt blocks aside, cuts blocks from the head
    /// while it spans more than 1.5 block ranges, applies retention and compacts. Called
    /// by the [`Maintenance`] thread; tests call it directly.
    pub fn maintain(&self) -> Result<MaintenanceReport, StorageError> {
        let _one_at_a_time = self.maintenance.lock();
        self.scrub();
        let mut report = MaintenanceReport { blocks_quarantined: self.quarantine()?, ..Default::default() };
        let pending = self.pending_cut.lock().take();
        if let Some(p) = pending {
            self.write_cut(p)?;
            report.blocks_cut += 1;
        }
        while let Some(boundary) = self.cut_due() {
            self.cut_block(boundary)?;
            report.blocks_cut += 1;
        }
        report.blocks_dropped = self.apply_retention()?;
        // Each compaction removes at least one block, so this many rounds always suffice.
        let rounds = self.blocks.read().len();
        for _ in 0..rounds {
            let Some(group) = self.plan_compaction() else { break };
            self.compact(&group)?;
            report.compactions += 1;
        }
        // A cut checkpoints the WAL, which makes the snapshot stale: write a fresh one.
        report.head_snapshot = self.snapshot_logging_failure(report.blocks_cut > 0);
        Ok(report)
    }

    /// Rewrites every block that has tombstones without the deleted samples (as
    /// `POST /api/v1/admin/tsdb/clean_tombstones`); returns the blocks rewritten.
    pub fn clean_tombstones(&self) -> Result<u32, StorageError> {
        let _one_at_a_time = self.maintenance.lock();
        let marked: Vec<Arc<Block>> =
            self.blocks.read().iter().filter(|b| b.has_tombstones()).cloned().collect();
        for b in &marked {
            self.compact(std::slice::from_ref(b))?;
        }
        Ok(marked.len() as u32)
    }

    /// Starts a thread that calls [`Db::maintain`] every `every` until the returned
    /// handle is stopped or dropped, and in between checks every few seconds whether a
    /// head snapshot is due (see `snapshots.rs`), so that a burst of writes is soon
    /// covered, and releases the head-chunk pages queries mapped in. Failures are logged
    /// and retried at the next tick.
    pub fn spawn_maintenance(db: Arc<Db>, every: Duration) -> Result<Maintenance, StorageError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let tick = every.min(SNAPSHOT_CHECK_EVERY);
        let thread = std::thread::Builder::new()
            .name("vigil-maintenance".into())
            .spawn(move || {
                let (lock, cv) = &*signal;
                let mut last_pass = std::time::Instant::now();
                loop {
                    {
                        let mut stopped = lock.lock();
                        if !*stopped {
                            cv.wait_for(&mut stopped, tick);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    // Queries read spilled head chunks through maps: let go of those
                    // pages every tick so they do not pile up in resident memory.
                    db.spill.release_mapped();
                    if last_pass.elapsed() < every {
                        db.snapshot_when_due();
                        continue;
                    }
                    last_pass = std::time::Instant::now();
                    if let Err(e) = db.maintain() {
                        tracing::warn!(error = %e, "storage maintenance failed; retrying at the next tick");
                    }
                }
            })
            .map_err(|e| StorageError::io("starting the maintenance thread", e))?;
        Ok(Maintenance { stop, thread: Some(thread) })
    }

    /// Writes a consistent copy of the database into `dest` (which must not exist yet)
    /// for backups, as Prometheus's snapshot: every block hard-linked (copied across
    /// file systems), plus, with `with_head`, the head's samples written as one more
    /// block. `dest` is then a data directory that [`Db::open`] can serve (restore by
    /// pointing the storage path at it). Returns the blocks in the snapshot.
    pub fn snapshot(
        &self,
        dest: &Path,
        with_head: bool,
    ) -> Result<Vec<crate::block::BlockMeta>, StorageError> {
        // Keeps maintenance from deleting a block while it is being linked.
        let _one_at_a_time = self.maintenance.lock();
        if dest.exists() {
            return Err(StorageError::Invalid(format!("snapshot target {} already exists", dest.display())));
        }
        let target = dest.join(BLOCKS_DIR);
        std::fs::create_dir_all(&target)
            .map_err(|e| StorageError::io(format!("creating {}", target.display()), e))?;
        let mut metas = Vec::new();
        for b in self.blocks.read().clone().iter() {
            let to = target.join(&b.meta().ulid);
            std::fs::create_dir(&to)
                .map_err(|e| StorageError::io(format!("creating {}", to.display()), e))?;
            for name in [
                crate::block::CHUNKS_FILE,
                crate::block::INDEX_FILE,
                crate::block::META_FILE,
                crate::block::TOMBSTONES_FILE,
            ] {
                let (from, into) = (b.dir().join(name), to.join(name));
                if !from.exists() {
                    continue;
                }
                if std::fs::hard_link(&from, &into).is_err() {
                    std::fs::copy(&from, &into)
                        .map_err(|e| StorageError::io(format!("copying {}", from.display()), e))?;
                }
            }
            metas.push(b.meta().clone());
        }
        if with_head {
            let floor = self.head_floor.load(Ordering::Relaxed);
            let hi = self.head_max.load(Ordering::Relaxed);
            let series = self.head.all_series_sorted();
            let data = self.head_samples(&series, floor, hi);
            let spec = NewBlock {
                min_time: floor.max(self.head_min.load(Ordering::Relaxed).min(hi)),
                max_time: hi.saturating_add(1),
                level: 1,
                sources: Vec::new(),
                parents: Vec::new(),
            };
            metas.extend(write_block(&target, spec, data)?);
            self.spill.release_mapped();
        }
        crate::wal::segment::sync_dir(&target)?;
        Ok(metas)
    }

    /// Each series' labels and samples in `[mint, maxt]`, for a block written from the
    /// head; releases the head-chunk pages it maps in as it goes.
    fn head_samples<'a>(
        &'a self,
        series: &'a [Arc<crate::head::MemSeries>],
        mint: i64,
        maxt: i64,
    ) -> impl Iterator<Item = Result<(Labels, Vec<Sample>), StorageError>> + 'a {
        series.iter().enumerate().map(move |(i, s)| {
            self.spill.release_mapped_every(i);
            Ok((s.labels.clone(), s.samples_between(mint, maxt)))
        })
    }

    /// The end of the head's oldest block range when the head spans 1.5 ranges past its
    /// start (Prometheus's rule: half a range stays in memory for late samples).
    fn cut_due(&self) -> Option<i64> {
        let range = self.opts.block_range;
        let lo = self.head_min.load(Ordering::Relaxed).max(self.min_valid.load(Ordering::Relaxed));
        let hi = self.head_max.load(Ordering::Relaxed).min(trusted_now());
        if lo > hi {
            return None;
        }
        let boundary = lo.div_euclid(range).checked_add(1)?.checked_mul(range)?;
        (hi >= boundary.saturating_add(range / 2)).then_some(boundary)
    }

    /// Steps 1 to 4 of a block cut (see the module doc).
    fn cut_block(&self, boundary: i64) -> Result<(), StorageError> {
        let (from, sealed) = {
            let mut commit = self.commit.lock();
            let sealed = commit.wal.cut_segment()?;
            (self.min_valid.swap(boundary, Ordering::Relaxed), sealed)
        };
        self.write_cut(PendingCut { from, boundary, sealed })
    }

    fn write_cut(&self, cut: PendingCut) -> Result<(), StorageError> {
        let range = self.opts.block_range;
        let series = self.head.all_series_sorted();
        let data = self.head_samples(&series, cut.from, cut.boundary - 1);
        let spec = NewBlock {
            min_time: cut.boundary.saturating_sub(range),
            max_time: cut.boundary,
            level: 1,
            sources: Vec::new(),
            parents: Vec::new(),
        };
        let meta = match write_block(&self.dir.join(BLOCKS_DIR), spec, data) {
            Ok(meta) => meta,
            Err(e) => {
                *self.pending_cut.lock() = Some(cut);
                return Err(e);
            }
        };
        self.spill.release_mapped();
        failpoint("cut.after_block")?;
        if let Some(meta) = meta {
            let block = Block::open(&self.dir.join(BLOCKS_DIR).join(&meta.ulid))?;
            block.verify_chunks()?;
            tracing::info!(
                block = %meta.ulid,
                min_time = meta.min_time,
                max_time = meta.max_time,
                series = meta.stats.num_series,
                samples = meta.stats.num_samples,
                bytes = meta.stats.num_bytes,
                "block cut from the head"
            );
            self.swap_blocks(&HashSet::new(), Some(Arc::new(block)));
        }
        // After the swap, before the truncation: the order `Db::select` relies on.
        self.head_floor.fetch_max(cut.boundary, Ordering::Release);
        failpoint("cut.before_truncate")?;
        self.head_min.store(i64::MAX, Ordering::Relaxed);
        self.head.truncate_before(cut.boundary, |t| {
            self.head_min.fetch_min(t, Ordering::Relaxed);
        });
        let collected = {
            let _no_commit_in_flight = self.commit.lock();
            self.head.gc()
        };
        if collected > 0 {
            tracing::info!(series = collected, "series without samples left the head");
        }
        let metadata: Vec<MetadataEntry> = self
            .head
            .metadata()
            .into_iter()
            .flat_map(|(family, metas)| {
                metas.into_iter().map(move |meta| MetadataEntry { family: family.clone(), meta })
            })
            .collect();
        let live = |labels: &Labels| self.head.contains(labels);
        checkpoint::write(
            &self.dir.join(WAL_DIR),
            cut.sealed,
            cut.boundary,
            &live,
            &metadata,
            self.opts.segment_size,
        )
    }

    /// Replaces the served set: drops the blocks named in `remove`, adds `add`.
    fn swap_blocks(&self, remove: &HashSet<String>, add: Option<Arc<Block>>) {
        let mut guard = self.blocks.write();
        let mut next: Vec<Arc<Block>> =
            guard.iter().filter(|b| !remove.contains(&b.meta().ulid)).cloned().collect();
        next.extend(add);
        blocks::sort(&mut next);
        *guard = Arc::new(next);
    }

    /// Verifies every chunk checksum of blocks not yet verified since open (a failure
    /// flags the block for [`Db::quarantine`]).
    fn scrub(&self) {
        let current = self.blocks.read().clone();
        for b in current.iter() {
            // The error is logged and the block flagged by verify_chunks itself.
            let _ = b.verify_chunks();
        }
    }

    /// Moves blocks that reads or verification found corrupt out of the served set and aside on disk.
    fn quarantine(&self) -> Result<u32, StorageError> {
        let bad: Vec<Arc<Block>> = self.blocks.read().iter().filter(|b| b.is_corrupt()).cloned().collect();
        if bad.is_empty() {
            return Ok(0);
        }
        self.swap_blocks(&bad.iter().map(|b| b.meta().ulid.clone()).collect(), None);
        for b in &bad {
            blocks::move_aside(b.dir())?;
            self.corrupt_blocks.fetch_add(1, Ordering::Relaxed);
        }
        Ok(bad.len() as u32)
    }

    /// Drops blocks past the retention time (relative to the newest sample or block end,
    /// ignoring times beyond [`trusted_now`]) and, oldest first, blocks beyond the size cap.
    fn apply_retention(&self) -> Result<u32, StorageError> {
        let current = self.blocks.read().clone();
        let newest = current
            .iter()
            .map(|b| b.meta().max_time)
            .chain(std::iter::once(self.head_max.load(Ordering::Relaxed).saturating_add(1)))
            .filter(|&t| t <= trusted_now())
            .max()
            .unwrap_or(i64::MIN);
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        if self.opts.retention_raw > 0 {
            let cutoff = newest.saturating_sub(self.opts.retention_raw);
            doomed.extend(current.iter().filter(|b| b.meta().max_time <= cutoff).cloned());
        }
        if self.opts.retention_size > 0 {
            let mut total: u64 =
                current.iter().filter(|b| !doomed.iter().any(|d| Arc::ptr_eq(d, b))).map(|b| b.size()).sum();
            for b in current.iter() {
                if total <= self.opts.retention_size {
                    break;
                }
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    total -= b.size();
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        self.swap_blocks(&doomed.iter().map(|b| b.meta().ulid.clone()).collect(), None);
        for b in &doomed {
            tracing::info!(block = %b.meta().ulid, max_time = b.meta().max_time, "block dropped by retention");
            blocks::delete(b.dir())?;
        }
        Ok(doomed.len() as u32)
    }

    /// The next group of blocks to compact: overlapping blocks first, then blocks filling
    /// a completed window of the next level.
    fn plan_compaction(&self) -> Option<Vec<Arc<Block>>> {
        let current = self.blocks.read().clone();
        let mut i = 0;
        while i < current.len() {
            let mut end = current[i].meta().max_time;
            let mut j = i + 1;
            while j < current.len() && current[j].meta().min_time < end {
                end = end.max(current[j].meta().max_time);
                j += 1;
            }
            if j - i > 1 {
                return Some(current[i..j].to_vec());
            }
            i = j;
        }
        let min_valid = self.min_valid.load(Ordering::Relaxed);
        let max_span = self.opts.max_block_span();
        // Each level spans three of the level below, as Prometheus's 2h → 6h → 18h ….
        const LEVEL_FACTOR: i64 = 3;
        let mut window = self.opts.block_range.checked_mul(LEVEL_FACTOR)?;
        while window <= max_span {
            let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
            for b in current.iter() {
                let m = b.meta();
                let w = m.min_time.div_euclid(window);
                let end = w.checked_add(1).and_then(|x| x.checked_mul(window));
                if m.max_time - m.min_time < window && end.is_some_and(|e| m.max_time <= e) {
                    groups.entry(w).or_default().push(b.clone());
                }
            }
            for (w, group) in groups {
                let complete =
                    w.checked_add(1).and_then(|x| x.checked_mul(window)).is_some_and(|e| e <= min_valid);
                if group.len() >= 2 && complete {
                    return Some(group);
                }
            }
            window = window.checked_mul(LEVEL_FACTOR)?;
        }
        None
    }

    /// Merges `group` into one block and swaps it in for them.
    fn compact(&self, group: &[Arc<Block>]) -> Result<(), StorageError> {
        let parents: Vec<String> = group.iter().map(|b| b.meta().ulid.clone()).collect();
        let sources: BTreeSet<String> =
            group.iter().flat_map(|b| b.meta().compaction.sources.iter().cloned()).collect();
        let spec = NewBlock {
            min_time: group.iter().map(|b| b.meta().min_time).min().unwrap_or(0),
            max_time: group.iter().map(|b| b.meta().max_time).max().unwrap_or(0),
            level: group.iter().map(|b| b.meta().compaction.level).max().unwrap_or(0) + 1,
            sources: sources.into_iter().collect(),
            parents: parents.clone(),
        };
        let meta = write_block(&self.dir.join(BLOCKS_DIR), spec, MergedBlocks::new(group))?;
        failpoint("compact.after_block")?;
        let added = match &meta {
            Some(meta) => {
                let block = Block::open(&self.dir.join(BLOCKS_DIR).join(&meta.ulid))?;
                block.verify_chunks()?;
                Some(Arc::new(block))
            }
            None => None,
        };
        tracing::info!(parents = ?parents, block = ?meta.as_ref().map(|m| &m.ulid), "blocks compacted");
        self.swap_blocks(&parents.iter().cloned().collect(), added);
        for b in group {
            failpoint("compact.deleting_parents")?;
            blocks::delete(b.dir())?;
        }
        Ok(())
    }
}

/// The series of several blocks merged by labels, each with the union of its samples
/// (on equal timestamps the block listed later wins).
struct MergedBlocks {
    cursors: Vec<BlockCursor>,
    failed: bool,
}

struct BlockCursor {
    block: Arc<Block>,
    next: u32,
    cur: Option<(Labels, Vec<Sample>)>,
}

impl BlockCursor {
    fn advance(&mut self) -> Result<(), StorageError> {
        self.cur = None;
        if self.next < self.block.num_series() {
            self.cur = Some(self.block.read(self.next, i64::MIN, i64::MAX)?);
            self.next += 1;
        }
        Ok(())
    }
}

impl MergedBlocks {
    fn new(group: &[Arc<Block>]) -> Self {
        let cursors = group.iter().map(|b| BlockCursor { block: b.clone(), next: 0, cur: None }).collect();
        MergedBlocks { cursors, failed: false }
    }

    fn step(&mut self) -> Result<Option<(Labels, Vec<Sample>)>, StorageError> {
        for c in &mut self.cursors {
            if c.cur.is_none() && c.next == 0 {
                c.advance()?;
            }
        }
        let Some(labels) = self.cursors.iter().filter_map(|c| c.cur.as_ref().map(|(l, _)| l)).min().cloned()
        else {
            return Ok(None);
        };
        let mut samples = Vec::new();
        for c in &mut self.cursors {
            if c.cur.as_ref().is_some_and(|(l, _)| *l == labels) {
                if let Some((_, s)) = c.cur.take() {
                    samples.extend(s);
                }
                c.advance()?;
            }
        }
        samples.sort_by_key(|s| s.t);
        samples.dedup_by(|later, earlier| {
            let same = later.t == earlier.t;
            if same {
                *earlier = *later;
            }
            same
        });
        Ok(Some((labels, samples)))
    }
}

impl Iterator for MergedBlocks {
    type Item = Result<(Labels, Vec<Sample>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(x) => x.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The running maintenance thread; stopping or dropping it ends the thread after the
/// pass in progress.
pub struct Maintenance {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.halt();
    }
}
