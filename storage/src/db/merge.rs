//! Merging the series of several sources (blocks and the head) into one sorted list.

use std::collections::BTreeMap;

use crate::labels::Labels;
use crate::sample::Sample;
use crate::traits::{SampleIter, Series};

/// Merges per-source series lists: one series per label set, sorted by labels, whose
/// samples are the union of the sources' in time order. Where sources share a timestamp
/// (a block and the head both holding a sample during a block cut, or overlapping
/// blocks) the later source in `sources` wins; stored sources agree there anyway.
pub(crate) fn merge_series(sources: Vec<Vec<Series>>) -> Vec<Series> {
    if sources.len() == 1 {
        return sources.into_iter().flatten().collect();
    }
    let mut by_labels: BTreeMap<Labels, Vec<Box<dyn SampleIter>>> = BTreeMap::new();
    for list in sources {
        for s in list {
            by_labels.entry(s.labels).or_default().push(s.samples);
        }
    }
    by_labels
        .into_iter()
        .map(|(labels, mut iters)| {
            let samples: Box<dyn SampleIter> = if iters.len() == 1 {
                iters.pop().unwrap_or_else(|| Box::new(crate::traits::VecSampleIter::new(Vec::new())))
            } else {
                Box::new(MergeIter::new(iters))
            };
            Series { labels, samples }
        })
        .collect()
}

/// Samples of several iterators in time order, one per timestamp.
pub(crate) struct MergeIter {
    /// Each source with the sample it would yield next.
    heads: Vec<(Box<dyn SampleIter>, Option<Sample>)>,
    started: bool,
}

impl MergeIter {
    /// Merges `iters` (in priority order: later wins on equal timestamps).
    pub(crate) fn new(iters: Vec<Box<dyn SampleIter>>) -> Self {
        MergeIter { heads: iters.into_iter().map(|i| (i, None)).collect(), started: false }
    }

    fn start(&mut self) {
        if !self.started {
            self.started = true;
            for (it, head) in &mut self.heads {
                *head = it.next();
            }
        }
    }

    /// Takes the earliest head sample, advancing every source that holds its timestamp.
    fn pop(&mut self) -> Option<Sample> {
        let t = self.heads.iter().filter_map(|(_, h)| h.map(|s| s.t)).min()?;
        let mut out = None;
        for (it, head) in &mut self.heads {
            if let Some(s) = head.filter(|s| s.t == t) {
                out = Some(s);
                *head = it.next();
            }
        }
        out
    }
}

impl SampleIter for MergeIter {
    fn next(&mut self) -> Option<Sample> {
        self.start();
        self.pop()
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        self.start();
        for (it, head) in &mut self.heads {
            if head.is_some_and(|s| s.t < t) {
                *head = it.seek(t);
            }
        }
        self.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::VecSampleIter;

    fn iter(ts: &[(i64, f64)]) -> Box<dyn SampleIter> {
        Box::new(VecSampleIter::new(ts.iter().map(|&(t, v)| Sample::new(t, v)).collect()))
    }

    #[test]
    fn merges_in_time_order_without_duplicates_and_seeks() {
        let mut m = MergeIter::new(vec![
            iter(&[(1, 1.0), (3, 3.0), (5, 5.0)]),
            iter(&[(2, 2.0), (3, 30.0), (6, 6.0)]),
        ]);
        let mut got = Vec::new();
        while let Some(s) = m.next() {
            got.push((s.t, s.v));
        }
        assert_eq!(got, vec![(1, 1.0), (2, 2.0), (3, 30.0), (5, 5.0), (6, 6.0)]);
        let mut m = MergeIter::new(vec![iter(&[(1, 1.0), (3, 3.0), (5, 5.0)]), iter(&[(2, 2.0), (6, 6.0)])]);
        assert_eq!(m.seek(4).map(|s| s.t), Some(5));
        assert_eq!(m.next().map(|s| s.t), Some(6));
        assert_eq!(m.next(), None);
    }
}
