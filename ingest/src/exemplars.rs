//! Exemplars kept in memory, as Prometheus's exemplar storage does: one bounded
//! circular buffer shared by all series (the oldest exemplar is evicted first), with
//! out-of-order and duplicate exemplars of a series refused. Not persisted: a restart
//! forgets them, as it does in Prometheus without the WAL replay of exemplars.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use vigil_storage::{Labels, Matcher};

/// Default capacity, as Prometheus's `storage.exemplars.max_exemplars` default.
pub const DEFAULT_MAX_EXEMPLARS: usize = 100_000;
/// Longest exemplar label set in runes (names and values together), as OpenMetrics
/// and Prometheus limit it.
pub const MAX_EXEMPLAR_LABEL_RUNES: usize = 128;

/// One exemplar: its own labels (such as `trace_id`), value and time in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's labels.
    pub labels: Labels,
    /// The observed value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub t: i64,
}

/// Why an exemplar was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExemplarError {
    /// Exemplar storage is turned off (`max_exemplars: 0`).
    #[error("exemplar storage is disabled")]
    Disabled,
    /// Older than the newest exemplar of its series.
    #[error("out of order exemplar")]
    OutOfOrder,
    /// Same time, value and labels as the newest exemplar of its series.
    #[error("duplicate exemplar")]
    Duplicate,
    /// Its labels are longer than [`MAX_EXEMPLAR_LABEL_RUNES`].
    #[error("exemplar label set longer than {MAX_EXEMPLAR_LABEL_RUNES} runes")]
    LabelsTooLong,
}

/// The series and exemplars one query returns.
pub type SeriesExemplars = (Labels, Vec<Exemplar>);

/// The bounded, shared exemplar buffer.
pub struct ExemplarStore {
    inner: Mutex<Ring>,
}

struct Ring {
    capacity: usize,
    entries: VecDeque<(Labels, Exemplar)>,
    /// Per series: how many of its exemplars are in the buffer and its newest one.
    newest: HashMap<Labels, (usize, Exemplar)>,
}

impl ExemplarStore {
    /// A buffer holding at most `max_exemplars` (0 disables exemplar storage).
    pub fn new(max_exemplars: usize) -> Self {
        let ring = Ring { capacity: max_exemplars, entries: VecDeque::new(), newest: HashMap::new() };
        ExemplarStore { inner: Mutex::new(ring) }
    }

    /// Checks an exemplar without storing it.
    pub fn validate(&self, series: &Labels, ex: &Exemplar) -> Result<(), ExemplarError> {
        let ring = self.inner.lock();
        ring.check(series, ex)
    }

    /// Stores an exemplar of `series`, evicting the oldest one when full.
    pub fn add(&self, series: &Labels, ex: Exemplar) -> Result<(), ExemplarError> {
        let mut ring = self.inner.lock();
        ring.check(series, &ex)?;
        if ring.entries.len() == ring.capacity
            && let Some((old_series, _)) = ring.entries.pop_front()
            && let Some(entry) = ring.newest.get_mut(&old_series)
        {
            entry.0 -= 1;
            if entry.0 == 0 {
                ring.newest.remove(&old_series);
            }
        }
        let entry = ring.newest.entry(series.clone()).or_insert((0, ex.clone()));
        entry.0 += 1;
        entry.1 = ex.clone();
        ring.entries.push_back((series.clone(), ex));
        Ok(())
    }

    /// Exemplars in `[start, end]` of series matching any of `selectors` (each a list
    /// of matchers that must all match), grouped by series, sorted by series labels
    /// and then time.
    pub fn query(&self, selectors: &[Vec<Matcher>], start: i64, end: i64) -> Vec<SeriesExemplars> {
        let ring = self.inner.lock();
        let mut by_series: HashMap<&Labels, Vec<Exemplar>> = HashMap::new();
        for (series, ex) in &ring.entries {
            if ex.t < start || ex.t > end {
                continue;
            }
            if !selectors.iter().any(|ms| ms.iter().all(|m| m.matches_labels(series))) {
                continue;
            }
            by_series.entry(series).or_default().push(ex.clone());
        }
        let mut out: Vec<SeriesExemplars> = by_series
            .into_iter()
            .map(|(s, mut exs)| {
                exs.sort_by_key(|e| e.t);
                (s.clone(), exs)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// How many exemplars are held.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// True when no exemplar is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ExemplarStore {
    fn default() -> Self {
        ExemplarStore::new(DEFAULT_MAX_EXEMPLARS)
    }
}

impl Ring {
    fn check(&self, series: &Labels, ex: &Exemplar) -> Result<(), ExemplarError> {
        if self.capacity == 0 {
            return Err(ExemplarError::Disabled);
        }
        let runes: usize = ex.labels.iter().map(|l| l.name.chars().count() + l.value.chars().count()).sum();
        if runes > MAX_EXEMPLAR_LABEL_RUNES {
            return Err(ExemplarError::LabelsTooLong);
        }
        if let Some((_, newest)) = self.newest.get(series) {
            if ex.t < newest.t {
                return Err(ExemplarError::OutOfOrder);
            }
            if ex.t == newest.t && ex.value.to_bits() == newest.value.to_bits() && ex.labels == newest.labels
            {
                return Err(ExemplarError::Duplicate);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(trace: &str, value: f64, t: i64) -> Exemplar {
        Exemplar { labels: Labels::from_pairs([("trace_id", trace)]), value, t }
    }

    fn series(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name)])
    }

    #[test]
    fn stores_and_queries_by_matcher_and_time() {
        let store = ExemplarStore::new(10);
        store.add(&series("a"), ex("1", 1.0, 10)).expect("add");
        store.add(&series("a"), ex("2", 2.0, 20)).expect("add");
        store.add(&series("b"), ex("3", 3.0, 15)).expect("add");
        let got = store.query(&[vec![Matcher::equal("__name__", "a")]], 0, 15);
        assert_eq!(got, vec![(series("a"), vec![ex("1", 1.0, 10)])]);
        let all = store.query(
            &[vec![Matcher::equal("__name__", "a")], vec![Matcher::equal("__name__", "b")]],
            0,
            100,
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1.len(), 2);
    }

    #[test]
    fn refuses_out_of_order_and_duplicates() {
        let store = ExemplarStore::new(10);
        store.add(&series("a"), ex("1", 1.0, 10)).expect("add");
        assert_eq!(store.add(&series("a"), ex("1", 1.0, 10)), Err(ExemplarError::Duplicate));
        assert_eq!(store.add(&series("a"), ex("0", 1.0, 5)), Err(ExemplarError::OutOfOrder));
        store.add(&series("a"), ex("2", 1.0, 10)).expect("same time, other labels");
        let long = "x".repeat(MAX_EXEMPLAR_LABEL_RUNES);
        assert_eq!(store.add(&series("a"), ex(&long, 1.0, 11)), Err(ExemplarError::LabelsTooLong));
        assert_eq!(ExemplarStore::new(0).add(&series("a"), ex("1", 1.0, 1)), Err(ExemplarError::Disabled));
    }

    #[test]
    fn evicts_the_oldest_when_full() {
        let store = ExemplarStore::new(2);
        for t in 1..=5 {
            store.add(&series("a"), ex("t", t as f64, t)).expect("add");
        }
        assert_eq!(store.len(), 2);
        let got = store.query(&[vec![Matcher::equal("__name__", "a")]], 0, 100);
        assert_eq!(got[0].1.iter().map(|e| e.t).collect::<Vec<_>>(), vec![4, 5]);
        // Once all of a series' exemplars are evicted its order check is forgotten too.
        store.add(&series("b"), ex("b", 1.0, 1)).expect("add");
        store.add(&series("b"), ex("b", 2.0, 2)).expect("add");
        store.add(&series("a"), ex("a", 1.0, 1)).expect("a was evicted entirely");
    }
}
