//! The head's index: series by id and postings per label pair.

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::series::MemSeries;
use crate::matcher::{MatchOp, Matcher};

/// Series ids to series, and label pairs to the ids of the series that carry them.
#[derive(Default)]
pub(crate) struct Index {
    /// Series by id; ids are dense except where a replay or a failed commit left gaps.
    by_id: Vec<Option<Arc<MemSeries>>>,
    /// name → value → ids, sorted so names and values list in order.
    postings: BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
    /// Every series id.
    all: RoaringBitmap,
}

impl Index {
    /// Whether `id` is taken.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    /// The series with `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&Arc<MemSeries>> {
        self.by_id.get(id as usize).and_then(Option::as_ref)
    }

    /// Number of series.
    pub(crate) fn len(&self) -> u64 {
        self.all.len()
    }

    /// Adds a series under its id (which must be free).
    pub(crate) fn insert(&mut self, s: Arc<MemSeries>) {
        let id = s.id;
        for l in &s.labels {
            self.postings.entry(l.name.clone()).or_default().entry(l.value.clone()).or_default().insert(id);
        }
        self.all.insert(id);
        let slot = id as usize;
        if self.by_id.len() <= slot {
            self.by_id.resize(slot + 1, None);
        }
        self.by_id[slot] = Some(s);
    }

    /// Removes the series with `id` and its postings.
    pub(crate) fn remove(&mut self, id: u32) {
        let Some(s) = self.by_id.get_mut(id as usize).and_then(Option::take) else { return };
        for l in &s.labels {
            if let Some(values) = self.postings.get_mut(&l.name) {
                if let Some(ids) = values.get_mut(&l.value) {
                    ids.remove(id);
                    if ids.is_empty() {
                        values.remove(&l.value);
                    }
                }
                if values.is_empty() {
                    self.postings.remove(&l.name);
                }
            }
        }
        self.all.remove(id);
    }

    /// Cardinality statistics (see [`crate::stats::TsdbStats`]); fills the lists and
    /// the label-pair count.
    pub(crate) fn stats(&self, limit: usize, out: &mut crate::stats::TsdbStats) {
        use crate::stats::{NameCount, top};
        let (mut by_name, mut values, mut bytes, mut pairs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut num_pairs = 0u64;
        for (name, vals) in &self.postings {
            values.push(NameCount { name: name.clone(), value: vals.len() as u64 });
            let mut b = 0u64;
            for (value, ids) in vals {
                num_pairs += 1;
                b += value.len() as u64 * ids.len();
                pairs.push(NameCount { name: format!("{name}={value}"), value: ids.len() });
                if name == crate::labels::METRIC_NAME {
                    by_name.push(NameCount { name: value.clone(), value: ids.len() });
                }
            }
            bytes.push(NameCount { name: name.clone(), value: b });
        }
        out.num_label_pairs = num_pairs;
        out.series_count_by_metric_name = top(by_name, limit);
        out.label_value_count_by_label_name = top(values, limit);
        out.memory_in_bytes_by_label_name = top(bytes, limit);
        out.series_count_by_label_value_pair = top(pairs, limit);
    }

    /// Every series id.
    pub(crate) fn all(&self) -> &RoaringBitmap {
        &self.all
    }

    /// Values of label `name` with their postings, in value order.
    pub(crate) fn values(&self, name: &str) -> impl Iterator<Item = (&String, &RoaringBitmap)> {
        self.postings.get(name).into_iter().flatten()
    }

    /// Ids of the series that satisfy every matcher (Prometheus semantics: a matcher
    /// that matches `""` also selects series without the label).
    pub(crate) fn postings_for(&self, matchers: &[Matcher]) -> RoaringBitmap {
        let (selecting, excluding): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        // Matchers that reject "" select the union of their matching values' postings.
        let mut result: Option<RoaringBitmap> = None;
        for m in selecting {
            let ids = match m.op {
                MatchOp::Equal => {
                    self.postings.get(&m.name).and_then(|v| v.get(&m.value)).cloned().unwrap_or_default()
                }
                _ => self
                    .values(&m.name)
                    .filter(|(v, _)| m.matches(v))
                    .fold(RoaringBitmap::new(), |acc, (_, b)| acc | b),
            };
            result = Some(match result {
                Some(r) => r & ids,
                None => ids,
            });
            if result.as_ref().is_some_and(RoaringBitmap::is_empty) {
                return RoaringBitmap::new();
            }
        }
        // Matchers that accept "" keep every series except those whose value they reject.
        let mut result = result.unwrap_or_else(|| self.all.clone());
        for m in excluding {
            match m.op {
                MatchOp::NotEqual => {
                    if let Some(b) = self.postings.get(&m.name).and_then(|v| v.get(&m.value)) {
                        result -= b;
                    }
                }
                _ => {
                    for (_, b) in self.values(&m.name).filter(|(v, _)| !m.matches(v)) {
                        result -= b;
                    }
                }
            }
        }
        result
    }

    /// The series for `ids`, skipping ids without one.
    pub(crate) fn series<'a>(
        &'a self,
        ids: &'a RoaringBitmap,
    ) -> impl Iterator<Item = &'a Arc<MemSeries>> + 'a {
        ids.iter().filter_map(|id| self.get(id))
    }
}
