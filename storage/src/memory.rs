//! A plain in-memory store: a sorted map from labels to sample vectors.
//!
//! It implements [`Querier`] and [`Appendable`] with the same acceptance rules as the
//! head, so the query engine and the ingest layer can be tested without a disk.

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::RwLock;

use crate::error::{AppendError, StorageError};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::MetricMetadata;
use crate::sample::Sample;
use crate::traits::{AppendOutcome, Appendable, Appender, Querier, SelectHints, Series, VecSampleIter};

/// In-memory series store for tests.
#[derive(Default)]
pub struct MemStorage {
    series: RwLock<BTreeMap<Labels, Vec<Sample>>>,
    metadata: RwLock<BTreeMap<String, BTreeSet<MetricMetadata>>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        MemStorage::default()
    }

    /// Drops all data.
    pub fn clear(&self) {
        self.series.write().clear();
        self.metadata.write().clear();
    }

    /// Deletes the samples in `[mint, maxt]` of the series matching every matcher.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) {
        let mut map = self.series.write();
        for (labels, samples) in map.iter_mut() {
            if matchers.iter().all(|m| m.matches_labels(labels)) {
                samples.retain(|s| s.t < mint || s.t > maxt);
            }
        }
        map.retain(|_, s| !s.is_empty());
    }

    /// Appends one sample directly, with the head's rules.
    pub fn add(&self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        let mut map = self.series.write();
        let samples = map.entry(labels.clone()).or_default();
        if let Some(last) = samples.last() {
            if t < last.t {
                return Err(AppendError::OutOfOrder);
            }
            if t == last.t {
                if v.to_bits() == last.v.to_bits() {
                    return Ok(());
                }
                return Err(AppendError::DuplicateTimestamp);
            }
        }
        samples.push(Sample::new(t, v));
        Ok(())
    }

    /// Every series matching all `matchers` (all series when empty) with all its
    /// samples, sorted by labels: what tests compare stored data with.
    pub fn matching(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
        self.series
            .read()
            .iter()
            .filter(|(l, _)| matchers.iter().all(|m| m.matches_labels(l)))
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect()
    }
}

fn has_data_in(samples: &[Sample], mint: i64, maxt: i64) -> bool {
    samples.iter().any(|s| s.t >= mint && s.t <= maxt)
}

impl Querier for MemStorage {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .matching(matchers)
            .into_iter()
            .map(|(labels, samples)| {
                let samples: Vec<Sample> =
                    samples.into_iter().filter(|s| s.t >= hints.start && s.t <= hints.end).collect();
                (labels, samples)
            })
            .filter(|(_, s)| !s.is_empty())
            .map(|(labels, samples)| Series { labels, samples: Box::new(VecSampleIter::new(samples)) })
            .collect())
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for (labels, samples) in self.matching(matchers) {
            if has_data_in(&samples, mint, maxt) {
                names.extend(labels.iter().map(|l| l.name.to_string()));
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for (labels, samples) in self.matching(matchers) {
            if let Some(v) = labels.get(name).filter(|_| has_data_in(&samples, mint, maxt)) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    fn metadata(&self) -> Vec<(String, Vec<MetricMetadata>)> {
        self.metadata.read().iter().map(|(k, v)| (k.clone(), v.iter().cloned().collect())).collect()
    }
}

/// A batch for [`MemStorage`].
pub struct MemAppender<'a> {
    store: &'a MemStorage,
    samples: Vec<(Labels, Sample)>,
    metadata: Vec<(String, MetricMetadata)>,
}

impl Appender for MemAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        self.samples.push((labels.clone(), Sample::new(t, v)));
    }

    fn update_metadata(&mut self, metric_family: &str, meta: MetricMetadata) {
        self.metadata.push((metric_family.to_string(), meta));
    }

    fn commit(self: Box<Self>) -> Result<AppendOutcome, StorageError> {
        let mut out = AppendOutcome::default();
        for (labels, s) in &self.samples {
            match self.store.add(labels, s.t, s.v) {
                Ok(()) => out.appended += 1,
                Err(e) => out.reject(labels, s.t, e),
            }
        }
        let mut md = self.store.metadata.write();
        for (name, meta) in self.metadata {
            md.entry(name).or_default().insert(meta);
        }
        Ok(out)
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender { store: self, samples: Vec::new(), metadata: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_order_and_conflicting_duplicates() {
        let s = MemStorage::new();
        let l = Labels::from_pairs([("__name__", "x")]);
        let mut app = s.appender();
        app.append(&l, 10, 1.0);
        app.append(&l, 10, 1.0);
        app.append(&l, 10, 2.0);
        app.append(&l, 5, 1.0);
        app.append(&l, 20, 3.0);
        let out = app.commit().expect("commit");
        assert_eq!((out.appended, out.duplicate, out.out_of_order), (3, 1, 1));
        let got = s.select(
            &[Matcher::equal("__name__", "x")],
            &SelectHints { start: 0, end: 100, ..Default::default() },
        );
        assert_eq!(got.expect("select").len(), 1);
    }
}
