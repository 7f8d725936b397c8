//! The database: the head plus its write-ahead log, behind [`Querier`] and [`Appendable`].
//!
//! Commit protocol (one commit at a time, under the commit lock, so the head applies
//! commits in exactly the order the WAL holds them and replay rebuilds the same head):
//! 1. series are resolved or created as samples are appended to the batch (outside the
//!    lock; a new series gets its id and postings at once but no samples);
//! 2. under the lock, each sample is checked against its series (and the batch's
//!    earlier samples) with the head's rules; refusals are counted;
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::error::StorageError;
use crate::head::{HashKeyed, Head, MemSeries};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::MetricMetadata;
use crate::sample::Sample;
use crate::traits::{AppendOutcome, Appendable, Appender, Querier, SelectHints, Series};
use crate::wal::record::{encode_metadata, encode_samples, encode_series};
use crate::wal::{self, MetadataEntry, Record, RefSample, SEGMENT_SIZE, SyncPolicy, WalWriter};

/// Name of the WAL directory inside the data directory.
const WAL_DIR: &str = "wal";

/// File locked while a process has the data directory open; the OS drops the lock when
/// the process dies, so a `kill -9` never leaves it stale.
const LOCK_FILE: &str = "lock";

/// How a [`Db`] is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// When the WAL is fsynced; see [`SyncPolicy`].
    pub sync: SyncPolicy,
    /// Size at which a WAL segment is closed (default [`SEGMENT_SIZE`]).
    pub segment_size: u64,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { sync: SyncPolicy::default(), segment_size: SEGMENT_SIZE }
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

/// Vigil's storage on disk: an in-memory head recovered from and protected by a WAL.
/// Shared by reference between threads; every method takes `&self`.
pub struct Db {
    dir: PathBuf,
    /// Holds the directory lock for the life of the database.
    _lock: std::fs::File,
    head: Head,
    commit: Mutex<CommitState>,
}

impl Db {
    /// Opens (creating if needed) the database in `dir` and replays its WAL into the head.
    /// A damaged WAL tail is cut with a warning; only I/O errors fail.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, StorageError> {
        let started = Instant::now();
        let wal_dir = dir.join(WAL_DIR);
        std::fs::create_dir_all(&wal_dir)
            .map_err(|e| StorageError::io(format!("creating {}", wal_dir.display()), e))?;
        let lock = lock_dir(dir)?;
        let head = Head::new();
        let mut replayer = Replayer::new(&head);
        let stats = wal::replay(&wal_dir, |r| replayer.apply(r))?;
        replayer.finish()?;
        let next = stats
            .last_segment
            .checked_add(1)
            .ok_or_else(|| StorageError::Invalid("WAL segment numbers exhausted".into()))?;
        let wal = WalWriter::create(&wal_dir, next, opts.segment_size, opts.sync)?;
        crate::wal::segment::sync_dir(&wal_dir)?;
        tracing::info!(
            dir = %dir.display(),
            duration_ms = started.elapsed().as_millis() as u64,
            records = stats.records,
            series = head.num_series(),
            samples = head.num_samples(),
            truncated = stats.truncated,
            "WAL replayed"
        );
        Ok(Db {
            dir: dir.to_path_buf(),
            _lock: lock,
            head,
            commit: Mutex::new(CommitState { wal, buf: Vec::new(), accepted: Vec::new() }),
        })
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

    /// Flushes and fsyncs the WAL and closes the database.
    pub fn close(self) -> Result<(), StorageError> {
        let state = self.commit.into_inner();
        state.wal.sync()
    }

    /// Runs the commit protocol (see the module doc) for one batch.
    fn commit_batch(&self, batch: &Batch) -> Result<AppendOutcome, StorageError> {
        let mut out = AppendOutcome::default();
        let mut guard = self.commit.lock();
        let state = &mut *guard;
        state.buf.clear();
        state.accepted.clear();

        if batch.series.iter().any(|s| !s.is_logged()) {
            encode_series(
                &mut state.buf,
                batch.series.iter().filter(|s| !s.is_logged()).map(|s| (s.id, &s.labels)),
            );
        }
        for run in batch.runs() {
            let series = &batch.series[run.series];
            let mut data = series.lock();
            for s in &batch.samples[run.samples.clone()] {
                let v = s.v.to_bits();
                match data.check(s.t, v) {
                    Ok(store) => {
                        out.appended += 1;
                        if store {
                            data.pending = Some((s.t, v));
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
                series.store_locked(&mut data, s.t, s.v);
            }
            data.pending = None;
            rest = later;
        }
        self.head.add_sample_count(accepted.len() as u64);
    }
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

impl Querier for Db {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        self.head.select(matchers, hints)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>, StorageError> {
        self.head.label_names(matchers, mint, maxt)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, StorageError> {
        self.head.label_values(name, matchers, mint, maxt)
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
        if let Some(e) = self.error {
            return Err(e);
        }
        self.db.commit_batch(&self.batch)
    }
}

/// Applies WAL records to the head at start, with the same rules as commits.
struct Replayer<'a> {
    head: &'a Head,
    /// Series by the id their records carry (which may differ from the head's id).
    by_wal_id: HashKeyed<Arc<MemSeries>>,
    samples: u64,
    rejected: u64,
    unknown: u64,
    error: Option<StorageError>,
}

impl<'a> Replayer<'a> {
    fn new(head: &'a Head) -> Self {
        Replayer { head, by_wal_id: HashKeyed::default(), samples: 0, rejected: 0, unknown: 0, error: None }
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Series(entries) => {
                for e in entries {
                    match self.head.replay_series(e.id, &e.labels) {
                        Ok(s) => {
                            self.by_wal_id.insert(u64::from(e.id), s);
                        }
                        Err(err) => {
                            self.error.get_or_insert(err);
                        }
                    }
                }
            }
            Record::Samples(samples) => {
                let mut stored = 0;
                for s in samples {
                    match self.by_wal_id.get(&u64::from(s.id)) {
                        Some(series) => match series.append(s.t, s.v) {
                            Ok(()) => stored += 1,
                            Err(_) => self.rejected += 1,
                        },
                        None => self.unknown += 1,
                    }
                }
                self.samples += stored;
                self.head.add_sample_count(stored);
            }
            Record::Metadata(entries) => {
                for e in entries {
                    self.head.add_metadata(e.family, e.meta);
                }
            }
        }
    }

    fn finish(self) -> Result<(), StorageError> {
        if self.unknown > 0 {
            tracing::warn!(
                samples = self.unknown,
                "WAL samples for series without a series record were skipped"
            );
        }
        if self.rejected > 0 {
            tracing::warn!(
                samples = self.rejected,
                "WAL samples out of order or duplicate at replay were skipped"
            );
        }
        self.error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;
