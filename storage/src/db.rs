//! The database: the head, its write-ahead log and the blocks cut from it, behind
//! [`Querier`] and [`Appendable`].
//!
//! Queries read every block overlapping their range and the head (from its floor, the
//! end of the newest cut) and merge them: series sorted by labels, samples in time order
//! with one sample per timestamp. Block cuts, WAL checkpoints, retention and compaction
//! run in the maintenance pass (see `maintain.rs`).
//!
//! Commit protocol (one commit at a time, under the commit lock, so the head applies
//! commits in exactly the order the WAL holds them and replay rebuilds the same head):
//! 1. series are resolved or created as samples are appended to the batch (outside the
//!    lock; a new series gets its id and postings at once but no samples);
//! 2. under the lock, each sample is checked against its series (and the batch's
//!    earlier samples) with the head's rules, and refused if a block already covers its
//!    time (`min_valid`); refusals are counted;
//! 3. series records for series not yet logged, the accepted samples and the metadata
//!    are encoded into one buffer and written to the WAL with one write (and fsynced
//!    under [`SyncPolicy::Always`]);
//! 4. the accepted samples are stored in the head's chunks and become queryable.
//!
//! 5. under [`SyncPolicy::Always`], the WAL is fsynced.
//!
//! `commit` returns `Ok` only after step 3 (and 5), so an acknowledged sample is in the
//! OS's hands and survives a crash of the process. A failed write leaves nothing in the
//! log or the head; a failed fsync after a good write leaves the commit applied (replay
//! would restore it) but reports the error, so the client retries (an exact repeat is
//! accepted silently).

mod blocks;
mod import;
mod maintain;
pub(crate) mod merge;
mod replay;
mod snapshots;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

pub use import::ImportReport;
pub use maintain::{Maintenance, MaintenanceReport};

use crate::block::Block;
use crate::error::{AppendError, StorageError};
use crate::head::{Head, HeadChunks, MemSeries};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::MetricMetadata;
use crate::sample::Sample;
use crate::traits::{AppendOutcome, Appendable, Appender, Querier, SelectHints, Series, VecSampleIter};
use crate::wal::record::{encode_metadata, encode_samples, encode_series};
use crate::wal::{self, MetadataEntry, RefSample, SEGMENT_SIZE, SyncPolicy, WalWriter, checkpoint};

/// Name of the WAL directory inside the data directory.
const WAL_DIR: &str = "wal";

/// Name of the directory of blocks inside the data directory.
const BLOCKS_DIR: &str = "blocks";

/// Name of the directory of memory-mapped full head chunks inside the data directory.
const HEAD_CHUNKS_DIR: &str = "chunks_head";

/// File locked while a process has the data directory open; the OS drops the lock when
/// the process dies, so a `kill -9` never leaves it stale.
const LOCK_FILE: &str = "lock";

/// One hour in milliseconds.
const HOUR_MS: i64 = 3_600_000;

/// One day in milliseconds.
const DAY_MS: i64 = 24 * HOUR_MS;

/// Default block range: Prometheus's 2h, a head of about 3h (1.5 ranges) in memory.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * HOUR_MS;

/// Default retention of raw data: the 90 days users expect to keep on one machine.
pub const DEFAULT_RETENTION_RAW_MS: i64 = 90 * DAY_MS;

/// Upper bound of a compacted block's span, as Prometheus: larger blocks make retention
/// coarse (whole blocks are dropped) for little gain in size.
pub const MAX_BLOCK_SPAN_MS: i64 = 31 * DAY_MS;

/// Divisor of the retention giving the largest compacted block (10% of retention), so
/// retention drops at most about a tenth of the data at once.
const RETENTION_SPAN_DIVISOR: i64 = 10;

/// How a [`Db`] is run. Option names for the configuration (wired by the server):
/// `storage.block_range` → [`DbOptions::block_range`], `storage.retention.raw` →
/// [`DbOptions::retention_raw`], `storage.retention.size` → [`DbOptions::retention_size`],
/// `storage.out_of_order_window` → [`DbOptions::out_of_order_window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// When the WAL is fsynced; see [`SyncPolicy`].
    pub sync: SyncPolicy,
    /// Size at which a WAL segment is closed (default [`SEGMENT_SIZE`]).
    pub segment_size: u64,
    /// Time span of a block cut from the head in ms (default [`DEFAULT_BLOCK_RANGE_MS`]).
    /// The head's oldest range is written out once the head spans 1.5 ranges.
    pub block_range: i64,
    /// Blocks wholly older than this many ms before the newest sample are dropped
    /// (default [`DEFAULT_RETENTION_RAW_MS`]; 0 keeps everything).
    pub retention_raw: i64,
    /// Cap on the total bytes of blocks; the oldest are dropped past it (0 = no cap).
    pub retention_size: u64,
    /// How many ms older than a series' newest sample a late sample may be and still be
    /// accepted (default 0: refused, as Prometheus does). Late samples are kept apart,
    /// uncompressed, until the block cut takes them; none before the newest block's end.
    pub out_of_order_window: i64,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            sync: SyncPolicy::default(),
            segment_size: SEGMENT_SIZE,
            block_range: DEFAULT_BLOCK_RANGE_MS,
            retention_raw: DEFAULT_RETENTION_RAW_MS,
            retention_size: 0,
            out_of_order_window: 0,
        }
    }
}

impl DbOptions {
    /// Largest span of a compacted block: 10% of the retention, at most
    /// [`MAX_BLOCK_SPAN_MS`], at least one block range.
    pub fn max_block_span(&self) -> i64 {
        let by_retention = if self.retention_raw > 0 {
            self.retention_raw / RETENTION_SPAN_DIVISOR
        } else {
            MAX_BLOCK_SPAN_MS
        };
        by_retention.min(MAX_BLOCK_SPAN_MS).max(self.block_range)
    }
}

/// The writer side, held under the commit lock.
struct CommitState {
    wal: WalWriter,
    /// The commit being encoded; reused so commits do not allocate.
    buf: Vec<u8>,
    /// Accepted samples of the commit being checked; reused likewise.
    accepted: Vec<RefSample>,
}

/// Vigil's storage on disk: an in-memory head recovered from and protected by a WAL, and
/// immutable blocks cut from the head. Shared by reference between threads; every method
/// takes `&self`.
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    /// Holds the directory lock for the life of the database.
    _lock: std::fs::File,
    head: Head,
    /// Full head chunks on disk, memory-mapped.
    spill: HeadChunks,
    commit: Mutex<CommitState>,
    /// The blocks served, sorted by time; replaced as a whole when the set changes, so a
    /// query works on one consistent set.
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    /// Samples before this time are refused: blocks hold that range (the end of the newest
    /// cut). Changed under the commit lock.
    min_valid: AtomicI64,
    /// The head serves samples from this time on; blocks serve those before. Raised to a
    /// cut's boundary once its block is served, so the chunks the head keeps across the
    /// boundary are not read twice and nothing retention dropped reappears.
    head_floor: AtomicI64,
    /// A lower bound of the head's samples at or after `min_valid` (`i64::MAX` if none).
    head_min: AtomicI64,
    /// The newest sample time the head has seen (`i64::MIN` if none).
    head_max: AtomicI64,
    /// One maintenance pass (block cut, retention, compaction) at a time.
    maintenance: Mutex<()>,
    /// Blocks found corrupt and moved aside since open.
    corrupt_blocks: AtomicU64,
    /// A block cut whose write failed, retried by the next maintenance pass.
    pending_cut: Mutex<Option<maintain::PendingCut>>,
    /// How much WAL no head snapshot covers.
    snapshot_clock: Mutex<snapshots::SnapshotClock>,
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: loads its blocks (moving aside
    /// any that fail verification) and replays the WAL (checkpoint, then the later
    /// segments) into the head, skipping samples a block already holds. A damaged WAL tail
    /// is cut with a warning; only I/O errors fail.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, StorageError> {
        if opts.block_range <= 0 {
            return Err(StorageError::Invalid("block range must be positive".into()));
        }
        let started = Instant::now();
        let wal_dir = dir.join(WAL_DIR);
        let blocks_dir = dir.join(BLOCKS_DIR);
        for d in [&wal_dir, &blocks_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| StorageError::io(format!("creating {}", d.display()), e))?;
        }
        let lock = lock_dir(dir)?;
        let corrupt = AtomicU64::new(0);
        let loaded = blocks::load(&blocks_dir, &corrupt)?;
        let min_valid = loaded.iter().map(|b| b.meta().max_time).max().unwrap_or(i64::MIN);
        let head = Head::new();
        let spill = HeadChunks::open(&dir.join(HEAD_CHUNKS_DIR))?;
        let mut replayer = replay::Replayer::new(&head, &spill, min_valid, opts.out_of_order_window);
        let ckpt = checkpoint::latest(&wal_dir)?;
        let ckpt_seq = ckpt.as_ref().map(|(n, _)| *n);
        let snapshot = usable_snapshot(dir, &wal_dir, ckpt_seq)?;
        let from_snapshot = snapshot.is_some();
        let mut snapshot_samples = 0;
        let mut wal_started = Instant::now();
        let stats = match &snapshot {
            Some(snap) => {
                replayer.restore_snapshot(snap)?;
                snapshot_samples = replayer.samples();
                wal_started = Instant::now();
                let from = snap.wal_position();
                replayer.replay(|sink| wal::replay_from(&wal_dir, from, sink))?
            }
            None => replayer.replay(|sink| {
                if let Some((_, path)) = &ckpt {
                    wal::replay(path, &mut *sink)?;
                }
                wal::replay_after(&wal_dir, ckpt_seq, sink)
            })?,
        };
        let snapshot_bytes = snapshot.as_ref().map_or(0, |s| s.len());
        drop(snapshot);
        let replayed = replayer.samples();
        let wal_samples = replayed - snapshot_samples;
        let wal_ms = wal_started.elapsed().as_secs_f64() * 1000.0;
        let (head_min, head_max) = replayer.time_bounds();
        replayer.finish()?;
        checkpoint::remove_obsolete(&wal_dir, ckpt_seq)?;
        let next = stats
            .last_segment
            .max(ckpt_seq.unwrap_or(0))
            .checked_add(1)
            .ok_or_else(|| StorageError::Invalid("WAL segment numbers exhausted".into()))?;
        let wal = WalWriter::create(&wal_dir, next, opts.segment_size, opts.sync)?;
        crate::wal::segment::sync_dir(&wal_dir)?;
        tracing::info!(
            dir = %dir.display(),
            duration_ms = started.elapsed().as_millis() as u64,
            blocks = loaded.len(),
            from_snapshot,
            records = stats.records,
            series = head.num_series(),
            samples = replayed,
            snapshot_samples,
            wal_samples,
            wal_replay_ms = wal_ms as u64,
            wal_samples_per_second = (wal_samples as f64 * 1000.0 / wal_ms.max(1e-6)) as u64,
            truncated = stats.truncated,
            "storage opened"
        );
        Ok(Db {
            dir: dir.to_path_buf(),
            opts,
            _lock: lock,
            head,
            spill,
            commit: Mutex::new(CommitState { wal, buf: Vec::new(), accepted: Vec::new() }),
            blocks: RwLock::new(Arc::new(loaded)),
            min_valid: AtomicI64::new(min_valid),
            head_floor: AtomicI64::new(min_valid),
            head_min: AtomicI64::new(head_min),
            head_max: AtomicI64::new(head_max),
            maintenance: Mutex::new(()),
            corrupt_blocks: corrupt,
            pending_cut: Mutex::new(None),
            snapshot_clock: Mutex::new(snapshots::SnapshotClock {
                carried: stats.bytes,
                since: wal::WalPosition { segment: next, offset: 0 },
                last_bytes: snapshot_bytes,
            }),
        })
    }

    /// Head statistics and the top `limit` metric names, label names and label pairs by
    /// cardinality, for `/api/v1/status/tsdb`.
    pub fn tsdb_stats(&self, limit: usize) -> crate::stats::TsdbStats {
        let mut out = self.head_stats();
        self.head.stats(limit, &mut out);
        out
    }

    /// The head's counts and time range only: [`Db::tsdb_stats`] without the
    /// cardinality lists, cheap enough for every `/metrics` scrape.
    pub fn head_stats(&self) -> crate::stats::TsdbStats {
        let mut out = crate::stats::TsdbStats {
            num_series: self.head.num_series(),
            num_samples: self.head.num_samples(),
            num_chunks: self.head.num_chunks(),
            ..Default::default()
        };
        let (lo, hi) = (self.head_min.load(Ordering::Relaxed), self.head_max.load(Ordering::Relaxed));
        if lo <= hi {
            out.min_time = Some(lo.max(self.head_floor.load(Ordering::Relaxed)));
            out.max_time = Some(hi);
        }
        out
    }

    /// The options the database runs with.
    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    /// Metadata of the blocks served, oldest first.
    pub fn blocks(&self) -> Vec<crate::block::BlockMeta> {
        self.blocks.read().iter().map(|b| b.meta().clone()).collect()
    }

    /// Blocks found corrupt (at open or by a read) and moved aside since open; the
    /// server exports it in `/metrics`.
    pub fn corrupt_blocks(&self) -> u64 {
        self.corrupt_blocks.load(Ordering::Relaxed)
    }

    /// Samples before this time are refused (blocks hold that range); `i64::MIN` before
    /// the first block.
    pub fn min_valid_time(&self) -> i64 {
        self.min_valid.load(Ordering::Relaxed)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> u64 {
        self.head.num_series()
    }

    /// Number of samples stored in the head.
    pub fn num_samples(&self) -> u64 {
        self.head.num_samples()
    }

    /// fsyncs the WAL, making every commit so far survive a power loss. Commits go on
    /// while the device flushes.
    pub fn sync(&self) -> Result<(), StorageError> {
        let file = self.commit.lock().wal.file();
        file.sync_data().map_err(|e| StorageError::io("syncing the WAL", e))
    }

    /// Flushes and fsyncs the WAL, writes the head snapshot (see
    /// [`Db::write_head_snapshot`]) and closes the database.
    pub fn close(self) -> Result<(), StorageError> {
        self.write_head_snapshot()
    }

    /// For a graceful shutdown: fsyncs the WAL and writes every head series with its
    /// chunks to `head_snapshot` (format in `head/FORMAT.md`), recording the WAL position
    /// it covers, so the next open loads it and replays only the WAL after that
    /// position. Commits that still come in later land after that position and are
    /// replayed on top. Maintenance waits until it is written.
    pub fn write_head_snapshot(&self) -> Result<(), StorageError> {
        let started = Instant::now();
        let _no_maintenance = self.maintenance.lock();
        let state = self.commit.lock();
        state.wal.sync()?;
        let position = state.wal.position();
        let written = crate::head::snapshot::write(&self.dir, &self.head, &self.spill, position)?;
        *self.snapshot_clock.lock() =
            snapshots::SnapshotClock { carried: 0, since: position, last_bytes: written.bytes };
        tracing::info!(
            series = written.series,
            bytes = written.bytes,
            duration_ms = started.elapsed().as_millis() as u64,
            "head snapshot written"
        );
        Ok(())
    }

    /// Deletes the samples in `[mint, maxt]` of every series matching `matchers` (which
    /// must not be empty), in the head and in blocks; queries stop returning them at
    /// once. The head's deletions are logged in the WAL first; each block gets a
    /// tombstones file (see `block/FORMAT.md`), applied for good by compaction or
    /// [`Db::clean_tombstones`]. Returns the head series touched.
    pub fn delete_series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64, StorageError> {
        if matchers.is_empty() {
            return Err(StorageError::Invalid("delete_series needs at least one matcher".into()));
        }
        // A block cut in progress must not write samples this deletion removes into a
        // block that then misses its tombstones.
        let _no_maintenance = self.maintenance.lock();
        let series = self.head.matching_series(matchers);
        {
            let mut guard = self.commit.lock();
            let state = &mut *guard;
            state.buf.clear();
            if series.iter().any(|s| !s.is_logged()) {
                encode_series(
                    &mut state.buf,
                    series.iter().filter(|s| !s.is_logged()).map(|s| (s.id, &s.labels)),
                );
            }
            let entries: Vec<wal::Tombstone> =
                series.iter().map(|s| wal::Tombstone { id: s.id, mint, maxt }).collect();
            if !entries.is_empty() {
                wal::record::encode_tombstones(&mut state.buf, &entries);
            }
            state.wal.write(&state.buf)?;
            for s in &series {
                s.set_logged();
                let n = s.delete_range(mint, maxt, Some(&self.spill));
                self.head.sub_sample_count(n);
            }
            if state.wal.policy() == SyncPolicy::Always {
                state.wal.sync()?;
            }
        }
        for b in self.blocks_in(mint, maxt) {
            b.add_tombstones(matchers, mint, maxt)?;
        }
        Ok(series.len() as u64)
    }

    /// Runs the commit protocol (see the module doc) for one batch.
    fn commit_batch(&self, batch: &mut Batch) -> Result<AppendOutcome, StorageError> {
        let mut out = AppendOutcome::default();
        let mut guard = self.commit.lock();
        let state = &mut *guard;
        // A series that garbage collection removed after the batch looked it up is
        // looked up again (and recreated): the removed one is no longer queryable.
        for s in batch.series.iter_mut() {
            if s.is_removed() {
                *s = self.head.get_or_create(&s.labels.clone())?;
            }
        }
        state.buf.clear();
        state.accepted.clear();

        if batch.series.iter().any(|s| !s.is_logged()) {
            encode_series(
                &mut state.buf,
                batch.series.iter().filter(|s| !s.is_logged()).map(|s| (s.id, &s.labels)),
            );
        }
        let min_valid = self.min_valid.load(Ordering::Relaxed);
        for run in batch.runs() {
            let series = &batch.series[run.series];
            let mut data = series.lock();
            for s in &batch.samples[run.samples.clone()] {
                if s.t < min_valid {
                    // A block already holds this time range.
                    out.reject(&series.labels, s.t, AppendError::OutOfOrder);
                    continue;
                }
                let v = s.v.to_bits();
                match data.check(s.t, v, self.opts.out_of_order_window) {
                    Ok(store) => {
                        out.appended += 1;
                        if store {
                            // A late sample does not move the newest one back.
                            if data.pending.or(data.last()).is_none_or(|(pt, _)| s.t > pt) {
                                data.pending = Some((s.t, v));
                            }
                            state.accepted.push(RefSample { id: series.id, t: s.t, v });
                        }
                    }
                    Err(e) => out.reject(&series.labels, s.t, e),
                }
            }
        }
        encode_samples(&mut state.buf, &state.accepted);
        if !batch.metadata.is_empty() {
            encode_metadata(&mut state.buf, &batch.metadata);
        }

        if let Err(e) = state.wal.write(&state.buf) {
            for s in &batch.series {
                s.lock().pending = None;
            }
            return Err(e);
        }

        // The commit is in the log now and replay will restore it, so the head must hold
        // it too, even if the fsync below fails (else a later commit could be checked
        // against a head that differs from what replay rebuilds).
        for s in &batch.series {
            s.set_logged();
        }
        self.apply(batch, &state.accepted);
        for m in &batch.metadata {
            self.head.add_metadata(m.family.clone(), m.meta.clone());
        }
        if state.wal.policy() == SyncPolicy::Always {
            state.wal.sync()?;
        }
        Ok(out)
    }

    /// Stores logged samples in the head; `accepted` is in batch order, so consecutive
    /// samples of one series share a lock.
    fn apply(&self, batch: &Batch, accepted: &[RefSample]) {
        let mut rest = accepted;
        for run in batch.runs() {
            let series = &batch.series[run.series];
            let n = rest.iter().take_while(|s| s.id == series.id).count();
            let (mine, later) = rest.split_at(n);
            let mut data = series.lock();
            for s in mine {
                series.store_locked(&mut data, s.t, s.v, Some(&self.spill));
            }
            data.pending = None;
            rest = later;
        }
        self.head.add_sample_count(accepted.len() as u64);
        if let (Some(lo), Some(hi)) = (accepted.iter().map(|s| s.t).min(), accepted.iter().map(|s| s.t).max())
        {
            self.note_head_times(lo, hi);
        }
    }

    /// Widens the head's known time bounds.
    fn note_head_times(&self, lo: i64, hi: i64) {
        if lo < self.head_min.load(Ordering::Relaxed) {
            self.head_min.fetch_min(lo, Ordering::Relaxed);
        }
        if hi > self.head_max.load(Ordering::Relaxed) {
            self.head_max.fetch_max(hi, Ordering::Relaxed);
        }
    }
}

/// The head snapshot, if there is one that can be used: checked whole, and covering a
/// WAL position that is still on disk (its segment present and long enough, no
/// checkpoint past it). Any other snapshot is removed with a warning (the WAL is then
/// replayed from its checkpoint, as after a crash); so is a leftover temporary file.
fn usable_snapshot(
    dir: &Path,
    wal_dir: &Path,
    ckpt_seq: Option<u32>,
) -> Result<Option<crate::head::snapshot::SnapshotFile>, StorageError> {
    use crate::head::snapshot::{FILE_NAME, SnapshotFile, TMP_NAME};
    remove_if_present(&dir.join(TMP_NAME))?;
    let path = dir.join(FILE_NAME);
    let why = match SnapshotFile::open(&path) {
        Ok(None) => return Ok(None),
        Ok(Some(snap)) => {
            let at = snap.wal_position();
            let segment = crate::wal::segment::path(wal_dir, at.segment);
            match std::fs::metadata(&segment) {
                _ if ckpt_seq.is_some_and(|c| c >= at.segment) => {
                    "the WAL it covers was checkpointed since".to_string()
                }
                Ok(m) if m.len() >= at.offset => return Ok(Some(snap)),
                Ok(m) => format!(
                    "WAL segment {} is {} bytes, the snapshot covers {}",
                    at.segment,
                    m.len(),
                    at.offset
                ),
                Err(e) => format!("WAL segment {} is gone: {e}", at.segment),
            }
        }
        Err(why) => why,
    };
    tracing::warn!(path = %path.display(), reason = %why, "ignoring the head snapshot; replaying the WAL");
    remove_if_present(&path)?;
    Ok(None)
}

/// Removes a file, doing nothing when it is absent.
fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StorageError::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// The sorted, deduplicated union of sorted lists (the head's and the blocks' answers);
/// a single list is returned as it is.
fn merge_sorted(mut parts: Vec<Vec<String>>) -> Vec<String> {
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut all: Vec<String> = parts.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Takes the data directory's exclusive lock, so two processes never write one WAL.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StorageError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Invalid(format!(
            "data directory {} is in use by another process",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StorageError::io(format!("locking {}", path.display()), e))
        }
    }
}

impl Db {
    /// The blocks overlapping `[mint, maxt]`.
    fn blocks_in(&self, mint: i64, maxt: i64) -> Vec<Arc<Block>> {
        self.blocks.read().iter().filter(|b| b.meta().overlaps(mint, maxt)).cloned().collect()
    }

    /// Whether the head's time range (from the floor, below which blocks serve, to its
    /// newest sample) overlaps `[mint, maxt]`; label lookups check this, as Prometheus
    /// does, instead of each series' samples.
    fn head_overlaps(&self, mint: i64, maxt: i64) -> bool {
        let lo = self.head_min.load(Ordering::Relaxed).max(self.head_floor.load(Ordering::Acquire));
        let hi = self.head_max.load(Ordering::Relaxed);
        lo <= hi && lo <= maxt && hi >= mint
    }
}

impl Querier for Db {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        // Floor, then head, then blocks. A cut swaps its block in, then raises the floor,
        // then truncates the head: a head read before the truncation holds every sample
        // from the floor read on, and a head read after it follows the swap, so the
        // blocks read next include the new block. Merging removes any overlap.
        let floor = self.head_floor.load(Ordering::Acquire);
        let head_hints = SelectHints { start: hints.start.max(floor), ..hints.clone() };
        let head = self.head.select(matchers, &head_hints);
        let mut sources = Vec::new();
        for b in self.blocks_in(hints.start, hints.end) {
            let found = b.select(matchers, hints.start, hints.end)?;
            sources.push(
                found
                    .into_iter()
                    .map(|(labels, s)| Series { labels, samples: Box::new(VecSampleIter::new(s)) })
                    .collect(),
            );
        }
        sources.push(head);
        Ok(merge::merge_series(sources))
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>, StorageError> {
        let mut parts = Vec::new();
        if self.head_overlaps(mint, maxt) {
            parts.push(self.head.label_names(matchers));
        }
        for b in self.blocks_in(mint, maxt) {
            parts.push(b.label_names(matchers)?);
        }
        Ok(merge_sorted(parts))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut parts = Vec::new();
        if self.head_overlaps(mint, maxt) {
            parts.push(self.head.label_values(name, matchers));
        }
        for b in self.blocks_in(mint, maxt) {
            parts.push(b.label_values(name, matchers)?);
        }
        Ok(merge_sorted(parts))
    }

    fn metadata(&self) -> Vec<(String, Vec<MetricMetadata>)> {
        self.head.metadata()
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(DbAppender { db: self, batch: Batch::default(), last_labels: None, error: None })
    }
}

/// Consecutive samples of one series in a batch.
struct Run {
    series: usize,
    samples: std::ops::Range<usize>,
}

/// A batch of samples grouped in runs of one series each.
#[derive(Default)]
struct Batch {
    /// One entry per run (a series appended in two runs appears twice).
    series: Vec<Arc<MemSeries>>,
    /// Where each run's samples end in `samples`.
    run_ends: Vec<usize>,
    samples: Vec<Sample>,
    metadata: Vec<MetadataEntry>,
}

impl Batch {
    fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        let mut start = 0;
        self.run_ends.iter().enumerate().map(move |(i, &end)| {
            let run = Run { series: i, samples: start..end };
            start = end;
            run
        })
    }
}

/// A batch for [`Db`]; samples are checked, logged and applied at commit.
pub struct DbAppender<'a> {
    db: &'a Db,
    batch: Batch,
    /// Labels of the current run, to skip the lookup when the next sample repeats them.
    last_labels: Option<Labels>,
    /// The first failure to create a series, reported by `commit`.
    error: Option<StorageError>,
}

impl DbAppender<'_> {
    /// Starts a new run unless `labels` continue the current one.
    fn enter_series(&mut self, labels: &Labels) -> bool {
        if let Some(last) = &self.last_labels
            && (last.same_storage(labels) || last == labels)
        {
            return true;
        }
        match self.db.head.get_or_create(labels) {
            Ok(s) => {
                self.batch.series.push(s);
                self.batch.run_ends.push(self.batch.samples.len());
                self.last_labels = Some(labels.clone());
                true
            }
            Err(e) => {
                self.error.get_or_insert(e);
                self.last_labels = None;
                false
            }
        }
    }
}

impl Appender for DbAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        if self.enter_series(labels) {
            self.batch.samples.push(Sample::new(t, v));
            if let Some(end) = self.batch.run_ends.last_mut() {
                *end = self.batch.samples.len();
            }
        }
    }

    fn append_many(&mut self, labels: &Labels, samples: &[Sample]) {
        if self.enter_series(labels) {
            self.batch.samples.extend_from_slice(samples);
            if let Some(end) = self.batch.run_ends.last_mut() {
                *end = self.batch.samples.len();
            }
        }
    }

    fn update_metadata(&mut self, metric_family: &str, meta: MetricMetadata) {
        self.batch.metadata.push(MetadataEntry { family: metric_family.to_string(), meta });
    }

    fn commit(self: Box<Self>) -> Result<AppendOutcome, StorageError> {
        let mut me = *self;
        if let Some(e) = me.error {
            return Err(e);
        }
        me.db.commit_batch(&mut me.batch)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod block_tests;

#[cfg(test)]
mod restart_tests;
