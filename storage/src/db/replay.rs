//! Rebuilding the head from the WAL at start, with the same rules as commits.
//!
//! The calling thread reads, checksums and decodes the records, creates the series and
//! hands their samples and deletions to apply lanes, each owning the series whose head
//! id falls in it. Every series thus sees its samples and deletions in log order, while
//! lanes build the head on several cores without waiting for each other.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

use crate::error::StorageError;
use crate::head::snapshot::SnapshotFile;
use crate::head::{HashKeyed, Head, HeadChunks, MemSeries};
use crate::wal::{Record, RefSample, ReplayStats, Tombstone};

/// Messages queued per lane: enough to ride out uneven record sizes, few enough (a
/// samples message holds up to 10 000 samples) to bound memory.
const MESSAGES_IN_FLIGHT: usize = 64;

/// Most apply lanes: past this, the reading thread is the bottleneck.
const MAX_LANES: usize = 4;

/// Series ids below this are kept in a vector indexed by id (the head hands ids out
/// densely from 0); larger ones, from a WAL written with sparse ids, go to a hash map,
/// so a stray huge id cannot make the vector huge (4M ids = 32 MiB at most).
const DENSE_IDS: u32 = 1 << 22;

/// Series by the id their WAL records carry (which may differ from the head's id).
#[derive(Default)]
pub(super) struct SeriesById {
    dense: Vec<Option<Arc<MemSeries>>>,
    sparse: HashKeyed<Arc<MemSeries>>,
}

impl SeriesById {
    /// Maps `id` to `series`.
    fn insert(&mut self, id: u32, series: Arc<MemSeries>) {
        if id < DENSE_IDS {
            let i = id as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(series);
        } else {
            self.sparse.insert(u64::from(id), series);
        }
    }

    fn get(&self, id: u32) -> Option<&Arc<MemSeries>> {
        if id < DENSE_IDS {
            self.dense.get(id as usize).and_then(Option::as_ref)
        } else {
            self.sparse.get(&u64::from(id))
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u32, &Arc<MemSeries>)> {
        let dense = self.dense.iter().enumerate().filter_map(|(i, s)| Some((i as u32, s.as_ref()?)));
        dense.chain(self.sparse.iter().map(|(&id, s)| (id as u32, s)))
    }
}

/// What applying samples did.
#[derive(Debug, Clone, Copy)]
struct Applied {
    stored: u64,
    rejected: u64,
    min_t: i64,
    max_t: i64,
}

impl Default for Applied {
    fn default() -> Self {
        Applied { stored: 0, rejected: 0, min_t: i64::MAX, max_t: i64::MIN }
    }
}

impl Applied {
    fn add(&mut self, other: Applied) {
        self.stored += other.stored;
        self.rejected += other.rejected;
        self.min_t = self.min_t.min(other.min_t);
        self.max_t = self.max_t.max(other.max_t);
    }
}

/// Rebuilds the head at start: from a head snapshot and from WAL records.
pub(super) struct Replayer<'a> {
    head: &'a Head,
    spill: &'a HeadChunks,
    /// The out-of-order window, as commits use it.
    window: i64,
    /// Samples before this time are in blocks already and skipped.
    min_valid: i64,
    /// Series by the id their records carry.
    by_wal_id: SeriesById,
    applied: Applied,
    unknown: u64,
    error: Option<StorageError>,
}

impl<'a> Replayer<'a> {
    /// A replayer into `head`, skipping samples before `min_valid`.
    pub(super) fn new(head: &'a Head, spill: &'a HeadChunks, min_valid: i64, window: i64) -> Self {
        Replayer {
            head,
            spill,
            window,
            min_valid,
            by_wal_id: SeriesById::default(),
            applied: Applied::default(),
            unknown: 0,
            error: None,
        }
    }

    /// Samples stored so far.
    pub(super) fn samples(&self) -> u64 {
        self.applied.stored
    }

    /// Oldest and newest sample time stored (`(i64::MAX, i64::MIN)` if none).
    pub(super) fn time_bounds(&self) -> (i64, i64) {
        (self.applied.min_t, self.applied.max_t)
    }

    /// Loads a checked head snapshot: each series under its WAL id (so the WAL after
    /// the snapshot applies on top), its chunks, and the metadata.
    pub(super) fn restore_snapshot(&mut self, snapshot: &SnapshotFile) -> Result<(), StorageError> {
        let (head, spill, min_valid) = (self.head, self.spill, self.min_valid);
        let mut failed = None;
        let mut applied = Applied::default();
        let by_wal_id = &mut self.by_wal_id;
        let metadata = snapshot
            .each_series(|s| match head.replay_series(s.id, &s.labels) {
                Ok(series) => {
                    let out = series.restore(s.image, min_valid, Some(spill));
                    head.add_sample_count(out.stored);
                    applied.add(Applied {
                        stored: out.stored,
                        rejected: out.rejected,
                        min_t: out.min_t,
                        max_t: out.max_t,
                    });
                    by_wal_id.insert(s.id, series);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            })
            // It decoded whole when it was opened; failing now means the file changed.
            .map_err(|why| StorageError::Invalid(format!("head snapshot changed while loading: {why}")))?;
        self.applied.add(applied);
        if let Some(e) = failed {
            return Err(e);
        }
        for e in metadata {
            head.add_metadata(e.family, e.meta);
        }
        Ok(())
    }

    /// Runs `read` (one or more of the `wal::replay*` functions, handed the record
    /// sink) on this thread, applying what it decodes on apply lanes; returns what
    /// `read` returns.
    pub(super) fn replay(
        &mut self,
        read: impl FnOnce(&mut dyn FnMut(Record)) -> Result<ReplayStats, StorageError>,
    ) -> Result<ReplayStats, StorageError> {
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_LANES);
        let (head, spill, min_valid, window) = (self.head, self.spill, self.min_valid, self.window);
        std::thread::scope(|scope| {
            let mut senders = Vec::with_capacity(lanes);
            let mut handles = Vec::with_capacity(lanes);
            for lane in 0..lanes {
                let (tx, rx) = sync_channel::<LaneMessage>(MESSAGES_IN_FLIGHT);
                let mut own = SeriesById::default();
                for (id, s) in self.by_wal_id.iter().filter(|(_, s)| lane_of(s, lanes) == lane) {
                    own.insert(id, s.clone());
                }
                handles.push(scope.spawn(move || {
                    let mut out = Applied::default();
                    for message in rx {
                        match message {
                            LaneMessage::Series(id, s) => own.insert(id, s),
                            LaneMessage::Samples(samples) => {
                                let a = apply_samples(&own, &samples, min_valid, spill, window);
                                head.add_sample_count(a.stored);
                                out.add(a);
                            }
                            LaneMessage::Delete(t) => {
                                if let Some(s) = own.get(t.id) {
                                    head.sub_sample_count(s.delete_range(t.mint, t.maxt, Some(spill)));
                                }
                            }
                        }
                    }
                    out
                }));
                senders.push(tx);
            }
            let mut dispatch = Dispatch { replayer: self, lanes: senders, split: vec![Vec::new(); lanes] };
            let stats = read(&mut |r| dispatch.record(r));
            drop(dispatch);
            for h in handles {
                let out = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                self.applied.add(out);
            }
            stats
        })
    }

    /// Reports what was skipped; fails if a series could not be recreated.
    pub(super) fn finish(self) -> Result<(), StorageError> {
        if self.unknown > 0 {
            tracing::warn!(
                samples = self.unknown,
                "WAL samples for series without a series record were skipped"
            );
        }
        if self.applied.rejected > 0 {
            tracing::warn!(
                samples = self.applied.rejected,
                "WAL samples out of order or duplicate at replay were skipped"
            );
        }
        self.error.map_or(Ok(()), Err)
    }
}

/// Work for an apply lane.
enum LaneMessage {
    /// A WAL id now names this series.
    Series(u32, Arc<MemSeries>),
    /// Samples of the lane's series, in log order.
    Samples(Vec<RefSample>),
    /// A deletion in one of the lane's series.
    Delete(Tombstone),
}

/// The lane of a series: by its head id, so two WAL ids naming one series (a series
/// recreated after garbage collection) share a lane and keep their order.
fn lane_of(series: &MemSeries, lanes: usize) -> usize {
    series.id as usize % lanes
}

/// The reading side: creates series and routes samples and deletions to their lanes.
struct Dispatch<'r, 'a> {
    replayer: &'r mut Replayer<'a>,
    lanes: Vec<SyncSender<LaneMessage>>,
    /// Samples of the record being routed, per lane.
    split: Vec<Vec<RefSample>>,
}

impl Dispatch<'_, '_> {
    /// Sends to a lane; fails only if the lane is gone, which happens only when it
    /// panicked, and the scope then re-raises that panic.
    fn send(&self, lane: usize, message: LaneMessage) {
        let _ = self.lanes[lane].send(message);
    }

    fn record(&mut self, record: Record) {
        let n = self.lanes.len();
        match record {
            Record::Series(entries) => {
                for e in entries {
                    match self.replayer.head.replay_series(e.id, &e.labels) {
                        Ok(s) => {
                            self.replayer.by_wal_id.insert(e.id, s.clone());
                            self.send(lane_of(&s, n), LaneMessage::Series(e.id, s));
                        }
                        Err(err) => {
                            self.replayer.error.get_or_insert(err);
                        }
                    }
                }
            }
            Record::Samples(samples) => {
                for run in samples.chunk_by(|a, b| a.id == b.id) {
                    match self.replayer.by_wal_id.get(run[0].id) {
                        Some(s) => self.split[lane_of(s, n)].extend_from_slice(run),
                        None => self.replayer.unknown += run.len() as u64,
                    }
                }
                for lane in 0..n {
                    if !self.split[lane].is_empty() {
                        let part = std::mem::take(&mut self.split[lane]);
                        self.send(lane, LaneMessage::Samples(part));
                    }
                }
            }
            Record::Metadata(entries) => {
                for e in entries {
                    self.replayer.head.add_metadata(e.family, e.meta);
                }
            }
            Record::Tombstones(entries) => {
                for t in entries {
                    if let Some(s) = self.replayer.by_wal_id.get(t.id) {
                        let lane = lane_of(s, n);
                        self.send(lane, LaneMessage::Delete(t));
                    }
                }
            }
        }
    }
}

/// Applies samples of a lane's series: per run of one series, one lookup and one lock.
fn apply_samples(
    own: &SeriesById,
    samples: &[RefSample],
    min_valid: i64,
    spill: &HeadChunks,
    window: i64,
) -> Applied {
    let mut out = Applied::default();
    for run in samples.chunk_by(|a, b| a.id == b.id) {
        // The dispatcher routed only ids it knew, and told this lane about them first.
        let Some(series) = own.get(run[0].id) else { continue };
        let r = series.replay_run(run, min_valid, Some(spill), window);
        out.add(Applied { stored: r.stored, rejected: r.rejected, min_t: r.min_t, max_t: r.max_t });
    }
    out
}
