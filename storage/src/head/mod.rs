//! The head: every series in memory, its chunks, the label index and metric metadata.
//!
//! Series are found by label hash in [`stripe`] maps and by id in the [`index`], whose
//! roaring postings answer matchers. Each [`series`] keeps full, immutable chunks and one
//! open chunk. Label lookups answer from the index alone. The head enforces the append
//! rules but knows nothing of the WAL; the database logs a commit before applying it
//! here.

mod index;
mod iter;
mod series;
pub(crate) mod snapshot;
mod spill;
mod stripe;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::RwLock;

pub(crate) use series::MemSeries;
pub(crate) use spill::HeadChunks;
pub(crate) use stripe::HashKeyed;

use crate::error::StorageError;
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::MetricMetadata;
use crate::traits::{SelectHints, Series};
use index::Index;
use stripe::StripedSeries;

/// All in-memory series.
pub(crate) struct Head {
    by_hash: StripedSeries,
    index: RwLock<Index>,
    next_id: AtomicU32,
    samples: AtomicU64,
    metadata: RwLock<BTreeMap<String, BTreeSet<MetricMetadata>>>,
}

impl Head {
    /// An empty head.
    pub(crate) fn new() -> Self {
        Head {
            by_hash: StripedSeries::new(),
            index: RwLock::new(Index::default()),
            next_id: AtomicU32::new(0),
            samples: AtomicU64::new(0),
            metadata: RwLock::new(BTreeMap::new()),
        }
    }

    /// The series with these labels, created (unlogged, without samples) if new.
    pub(crate) fn get_or_create(&self, labels: &Labels) -> Result<Arc<MemSeries>, StorageError> {
        let hash = labels.stable_hash();
        if let Some(s) = self.by_hash.get(hash, labels) {
            return Ok(s);
        }
        let (s, _) = self.by_hash.get_or_insert_with(hash, labels, || {
            let mut index = self.index.write();
            let s = Arc::new(MemSeries::new(self.fresh_id(&index)?, labels.clone(), false));
            index.insert(s.clone());
            Ok(s)
        })?;
        Ok(s)
    }

    fn fresh_id(&self, index: &Index) -> Result<u32, StorageError> {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id == u32::MAX {
                self.next_id.store(u32::MAX, Ordering::Relaxed);
                return Err(StorageError::Invalid("series id space exhausted".into()));
            }
            if !index.contains(id) {
                return Ok(id);
            }
        }
    }

    /// Recreates a series from a WAL series record under its logged id. Returns the
    /// existing series when the labels are already known, or one with a fresh id (to be
    /// logged again) when `id` is taken.
    pub(crate) fn replay_series(&self, id: u32, labels: &Labels) -> Result<Arc<MemSeries>, StorageError> {
        let hash = labels.stable_hash();
        let (s, _) = self.by_hash.get_or_insert_with(hash, labels, || {
            let mut index = self.index.write();
            let s = if index.contains(id) || id == u32::MAX {
                MemSeries::new(self.fresh_id(&index)?, labels.clone(), false)
            } else {
                self.next_id.fetch_max(id + 1, Ordering::Relaxed);
                MemSeries::new(id, labels.clone(), true)
            };
            let s = Arc::new(s);
            index.insert(s.clone());
            Ok(s)
        })?;
        Ok(s)
    }

    /// Counts samples stored by a commit or replay.
    pub(crate) fn add_sample_count(&self, n: u64) {
        self.samples.fetch_add(n, Ordering::Relaxed);
    }

    /// Every series, in id order.
    pub(crate) fn all_series(&self) -> Vec<Arc<MemSeries>> {
        let index = self.index.read();
        index.series(index.all()).cloned().collect()
    }

    /// Every metadata entry as (family, metadata), sorted.
    pub(crate) fn metadata_entries(&self) -> Vec<(String, MetricMetadata)> {
        let md = self.metadata.read();
        md.iter().flat_map(|(f, set)| set.iter().map(move |m| (f.clone(), m.clone()))).collect()
    }

    /// Every series, sorted by labels.
    pub(crate) fn all_series_sorted(&self) -> Vec<Arc<MemSeries>> {
        let mut all: Vec<Arc<MemSeries>> = {
            let index = self.index.read();
            index.series(index.all()).cloned().collect()
        };
        all.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        all
    }

    /// Drops every chunk entirely before `boundary`; calls `first_after` with each series'
    /// first sample time at or after `boundary`.
    pub(crate) fn truncate_before(&self, boundary: i64, mut first_after: impl FnMut(i64)) {
        let all: Vec<Arc<MemSeries>> = {
            let index = self.index.read();
            index.series(index.all()).cloned().collect()
        };
        let mut dropped = 0;
        for s in all {
            let (n, first) = s.truncate_before(boundary);
            dropped += n;
            if let Some(t) = first {
                first_after(t);
            }
        }
        self.samples.fetch_sub(dropped.min(self.samples.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// Removes every series without samples (their data went to blocks, or a commit
    /// never stored any); returns how many. The caller holds the commit lock.
    pub(crate) fn gc(&self) -> u64 {
        let all: Vec<Arc<MemSeries>> = {
            let index = self.index.read();
            index.series(index.all()).cloned().collect()
        };
        let mut removed = 0;
        for s in all {
            if s.remove_if_empty() {
                self.by_hash.remove(s.labels.stable_hash(), &s);
                self.index.write().remove(s.id);
                removed += 1;
            }
        }
        removed
    }

    /// The series matching `matchers` (none when empty).
    pub(crate) fn matching_series(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        if matchers.is_empty() {
            return Vec::new();
        }
        let index = self.index.read();
        let ids = index.postings_for(matchers);
        index.series(&ids).cloned().collect()
    }

    /// Counts samples removed by a deletion.
    pub(crate) fn sub_sample_count(&self, n: u64) {
        self.samples.fetch_sub(n.min(self.samples.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// Whether a series with these labels is in the head.
    pub(crate) fn contains(&self, labels: &Labels) -> bool {
        self.by_hash.get(labels.stable_hash(), labels).is_some()
    }

    /// Cardinality statistics of the index.
    pub(crate) fn stats(&self, limit: usize, out: &mut crate::stats::TsdbStats) {
        self.index.read().stats(limit, out);
    }

    /// Number of series.
    pub(crate) fn num_series(&self) -> u64 {
        self.index.read().len()
    }

    /// Number of chunks, full and open; visits every series, so for statistics only.
    pub(crate) fn num_chunks(&self) -> u64 {
        let index = self.index.read();
        index.series(index.all()).map(|s| s.chunk_count() as u64).sum()
    }

    /// Number of samples stored.
    pub(crate) fn num_samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// Records metadata of a metric family.
    pub(crate) fn add_metadata(&self, family: String, meta: MetricMetadata) {
        let mut md = self.metadata.write();
        if !md.get(&family).is_some_and(|set| set.contains(&meta)) {
            md.entry(family).or_default().insert(meta);
        }
    }

    /// Series matching `matchers` (all when empty) with a sample in `[mint, maxt]`.
    fn matching(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Arc<MemSeries>> {
        let index = self.index.read();
        let ids = if matchers.is_empty() { index.all().clone() } else { index.postings_for(matchers) };
        index.series(&ids).filter(|s| s.has_data_in(mint, maxt)).cloned().collect()
    }

    /// Series matching `matchers` (none when empty) with samples in
    /// `[hints.start, hints.end]`, sorted by labels, as [`crate::Querier::select`] returns them.
    pub(crate) fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Vec<Series> {
        if matchers.is_empty() {
            return Vec::new();
        }
        let mut found = self.matching(matchers, hints.start, hints.end);
        found.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        found
            .into_iter()
            .map(|s| Series { labels: s.labels.clone(), samples: s.iter(hints.start, hints.end) })
            .collect()
    }

    /// Sorted label names of the series matching `matchers` (all when empty), from the
    /// index alone: whether the head's time range overlaps a request is the caller's
    /// check, as in Prometheus; single series are not checked for samples in range.
    pub(crate) fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.index.read().label_names(matchers)
    }

    /// Sorted values of label `name` over the series matching `matchers` (all when
    /// empty), from the index alone (see [`Head::label_names`]).
    pub(crate) fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.index.read().label_values(name, matchers)
    }

    /// Metadata per metric family, sorted by family name.
    pub(crate) fn metadata(&self) -> Vec<(String, Vec<MetricMetadata>)> {
        self.metadata.read().iter().map(|(k, v)| (k.clone(), v.iter().cloned().collect())).collect()
    }
}

#[cfg(test)]
mod tests;
