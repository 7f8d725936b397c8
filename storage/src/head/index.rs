//! The head's index: series by id and postings per label pair.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use roaring::{MultiOps, RoaringBitmap};

use super::series::MemSeries;
use crate::lookup::{NameCollector, read_pairs_for_names, read_series_labels, split_by_name};
use crate::matcher::dictionary::values_where;
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
            self.postings
                .entry(l.name.to_string())
                .or_default()
                .entry(l.value.to_string())
                .or_default()
                .insert(id);
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
            if let Some(values) = self.postings.get_mut(l.name) {
                if let Some(ids) = values.get_mut(l.value) {
                    ids.remove(id);
                    if ids.is_empty() {
                        values.remove(l.value);
                    }
                }
                if values.is_empty() {
                    self.postings.remove(l.name);
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

    /// Ids of the series that satisfy every matcher (Prometheus semantics: a matcher
    /// that matches `""` also selects series without the label). Values are found
    /// through the sorted dictionary (see [`values_where`]), not by testing each one when
    /// the pattern has a literal set or prefix.
    pub(crate) fn postings_for(&self, matchers: &[Matcher]) -> RoaringBitmap {
        let (selecting, excluding): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        // Matchers that reject "" select the union of their matching values' postings.
        let mut result: Option<RoaringBitmap> = None;
        for m in selecting {
            let ids = match (m.op, self.postings.get(&m.name)) {
                (_, None) => RoaringBitmap::new(),
                (MatchOp::Equal, Some(values)) => values.get(&m.value).cloned().unwrap_or_default(),
                (_, Some(values)) => values_where(values, m, true).into_iter().map(|(_, b)| b).union(),
            };
            let r = match result {
                Some(r) => r & ids,
                None => ids,
            };
            if r.is_empty() {
                return r;
            }
            result = Some(r);
        }
        // Matchers that accept "" keep every series except those whose value they reject.
        let mut result = result.unwrap_or_else(|| self.all.clone());
        for m in excluding.into_iter().filter(|m| !m.matches_everything()) {
            let Some(values) = self.postings.get(&m.name) else { continue };
            for (_, b) in values_where(values, m, false) {
                result -= b;
            }
            if result.is_empty() {
                break;
            }
        }
        result
    }

    /// Sorted label names of the series matching `matchers` (all series when empty).
    pub(crate) fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        if matchers.is_empty() {
            return self.postings.keys().cloned().collect();
        }
        let ids = self.postings_for(matchers);
        // Few label pairs against many matched series: ask each name's postings instead.
        let pairs: usize = self.postings.values().map(BTreeMap::len).sum();
        if read_pairs_for_names(pairs, ids.len()) {
            return self
                .postings
                .iter()
                .filter(|(_, values)| values.values().any(|b| !b.is_disjoint(&ids)))
                .map(|(name, _)| name.clone())
                .collect();
        }
        let mut names = NameCollector::new(self.postings.len());
        for s in self.series(&ids) {
            if !names.add(s.labels.iter().map(|l| l.name)) {
                break;
            }
        }
        names.into_sorted()
    }

    /// Sorted values of label `name` over the series matching `matchers` (all when empty).
    pub(crate) fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let Some(values) = self.postings.get(name) else { return Vec::new() };
        if matchers.is_empty() {
            return values.keys().cloned().collect();
        }
        let (same, other) = split_by_name(name, matchers);
        // Matchers on `name` itself only filter the dictionary.
        let mut candidates: Vec<(&String, &RoaringBitmap)> = match same.split_first() {
            Some((first, rest)) => {
                let mut c = values_where(values, first, true);
                c.retain(|(v, _)| rest.iter().all(|m| m.matches(v)));
                c
            }
            None => values.iter().collect(),
        };
        if !other.is_empty() && !candidates.is_empty() {
            let ids = self.postings_for(&other);
            if read_series_labels(ids.len(), candidates.len()) {
                let found: BTreeSet<&str> = self.series(&ids).filter_map(|s| s.labels.get(name)).collect();
                candidates.retain(|(v, _)| found.contains(v.as_str()));
            } else {
                candidates.retain(|(_, b)| !b.is_disjoint(&ids));
            }
        }
        candidates.into_iter().map(|(v, _)| v.clone()).collect()
    }

    /// The series for `ids`, skipping ids without one.
    pub(crate) fn series<'a>(
        &'a self,
        ids: &'a RoaringBitmap,
    ) -> impl Iterator<Item = &'a Arc<MemSeries>> + 'a {
        ids.iter().filter_map(|id| self.get(id))
    }
}
