//! Label-name and label-value lookups under matchers, shared by the head's index and the
//! blocks' indexes. Both answer from postings and the value dictionary, never from
//! samples: without matchers from the dictionary alone; with matchers, label values are
//! found by intersecting each candidate value's postings with the matched series, or,
//! when few series match, by reading those series' labels (Prometheus chooses the same
//! way, by size). Label names come from the matched series' labels, or in the head,
//! when there are fewer label pairs than matched series, from the pairs' postings.

use std::collections::BTreeSet;

use crate::matcher::Matcher;

/// Candidate values per matched series above which the matched series' labels are read
/// instead of intersecting every value's postings with them. Prometheus uses 100: one
/// series read costs about as much as a hundred postings intersections.
const VALUES_PER_SERIES_READ: u64 = 100;

/// Whether reading the labels of `matched` series is cheaper than intersecting the
/// postings of `candidates` values with them.
pub(crate) fn read_series_labels(matched: u64, candidates: usize) -> bool {
    matched.saturating_mul(VALUES_PER_SERIES_READ) <= candidates as u64
}

/// Whether label names under matchers are found faster by testing each of `pairs` label
/// pairs' postings against the `matched` series than by reading those series' labels;
/// for the head, where both are in memory and a postings test costs about as much as
/// reading one series' labels.
pub(crate) fn read_pairs_for_names(pairs: usize, matched: u64) -> bool {
    (pairs as u64) < matched
}

/// Splits `matchers` into those on label `name` and the others.
pub(crate) fn split_by_name<'a>(name: &str, matchers: &'a [Matcher]) -> (Vec<&'a Matcher>, Vec<Matcher>) {
    let (same, other): (Vec<&Matcher>, Vec<&Matcher>) = matchers.iter().partition(|m| m.name == name);
    (same, other.into_iter().cloned().collect())
}

/// Collects the label names of matched series, and knows when it has found every name
/// the index holds, so that the walk over the series can stop early.
pub(crate) struct NameCollector<'a> {
    known: usize,
    found: BTreeSet<&'a str>,
}

impl<'a> NameCollector<'a> {
    /// A collector for an index that holds `known` distinct label names.
    pub(crate) fn new(known: usize) -> Self {
        NameCollector { known, found: BTreeSet::new() }
    }

    /// Adds a series' label names; returns false once every known name was found.
    pub(crate) fn add(&mut self, names: impl Iterator<Item = &'a str>) -> bool {
        for n in names {
            if !self.found.contains(n) {
                self.found.insert(n);
            }
        }
        self.found.len() < self.known
    }

    /// The names found, sorted.
    pub(crate) fn into_sorted(self) -> Vec<String> {
        self.found.into_iter().map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_series_only_when_few_match() {
        assert!(read_series_labels(1, 1000));
        assert!(read_series_labels(10, 1000));
        assert!(!read_series_labels(11, 1000));
        assert!(!read_series_labels(1, 99));
    }

    #[test]
    fn names_come_from_pairs_only_when_they_are_fewer() {
        assert!(read_pairs_for_names(10, 11));
        assert!(!read_pairs_for_names(10, 10));
    }

    #[test]
    fn name_collection_stops_when_every_name_is_found() {
        let mut c = NameCollector::new(3);
        assert!(c.add(["b", "a"].into_iter()));
        assert!(c.add(["a"].into_iter()));
        assert!(!c.add(["c", "a"].into_iter()));
        assert_eq!(c.into_sorted(), vec!["a", "b", "c"]);
    }
}
