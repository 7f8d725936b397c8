//! Head tests: append rules, chunk cutting, iteration, and a comparison of selection and
//! label queries against `MemStorage`, the reference model.

use proptest::prelude::*;

use super::*;
use crate::error::AppendError;
use crate::matcher::MatchOp;
use crate::memory::MemStorage;
use crate::sample::{STALE_NAN_BITS, Sample};
use crate::traits::{Querier, SampleIter};

fn hints(start: i64, end: i64) -> SelectHints {
    SelectHints { start, end, ..Default::default() }
}

fn collect(mut it: Box<dyn SampleIter>) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    while let Some(s) = it.next() {
        out.push((s.t, s.v.to_bits()));
    }
    out
}

fn append(head: &Head, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
    let s = head.get_or_create(labels).expect("series");
    s.append(t, v.to_bits(), None, 0)
}

#[test]
fn append_rules_match_memstorage() {
    let head = Head::new();
    let l = Labels::from_pairs([("__name__", "x")]);
    assert_eq!(append(&head, &l, 10, 1.0), Ok(()));
    assert_eq!(append(&head, &l, 10, 1.0), Ok(()));
    assert_eq!(append(&head, &l, 10, 2.0), Err(AppendError::DuplicateTimestamp));
    assert_eq!(append(&head, &l, 5, 1.0), Err(AppendError::OutOfOrder));
    assert_eq!(append(&head, &l, 20, f64::from_bits(STALE_NAN_BITS)), Ok(()));
    // NaN bits compare as bits: the same NaN again is an exact repeat.
    assert_eq!(append(&head, &l, 20, f64::from_bits(STALE_NAN_BITS)), Ok(()));
    assert_eq!(append(&head, &l, 20, f64::NAN), Err(AppendError::DuplicateTimestamp));
    let got = head.select(&[Matcher::equal("__name__", "x")], &hints(0, 100));
    assert_eq!(got.len(), 1);
    let samples = collect(got.into_iter().next().expect("one").samples);
    assert_eq!(samples, vec![(10, 1.0f64.to_bits()), (20, STALE_NAN_BITS)]);
}

#[test]
fn chunks_are_cut_and_seek_skips_them() {
    let head = Head::new();
    let l = Labels::from_pairs([("__name__", "x")]);
    for i in 0..1000 {
        append(&head, &l, i * 10, i as f64).expect("append");
    }
    let s = head.get_or_create(&l).expect("series");
    assert_eq!(s.chunk_count(), 1000usize.div_ceil(crate::chunk::SAMPLES_PER_CHUNK));
    let mut it = s.iter(1005, 8000);
    assert_eq!(it.next(), Some(Sample::new(1010, 101.0)));
    assert_eq!(it.seek(5000), Some(Sample::new(5000, 500.0)));
    assert_eq!(it.seek(4000), Some(Sample::new(5010, 501.0)));
    assert_eq!(it.seek(7995), Some(Sample::new(8000, 800.0)));
    assert_eq!(it.next(), None);
    assert_eq!(s.iter(0, 9990).seek(-5), Some(Sample::new(0, 0.0)));
    assert_eq!(s.iter(20_000, 30_000).next(), None);
    assert!(s.has_data_in(1001, 1010));
    assert!(!s.has_data_in(1001, 1009));
    assert!(!s.has_data_in(-10, -1));
}

#[test]
fn hash_collisions_keep_both_series() {
    let map = stripe::StripedSeries::new();
    let a = Labels::from_pairs([("a", "1")]);
    let b = Labels::from_pairs([("b", "2")]);
    let (sa, created_a) =
        map.get_or_insert_with(7, &a, || Ok(Arc::new(MemSeries::new(1, a.clone(), false)))).expect("a");
    let (sb, created_b) =
        map.get_or_insert_with(7, &b, || Ok(Arc::new(MemSeries::new(2, b.clone(), false)))).expect("b");
    assert!(created_a && created_b);
    assert_eq!((sa.id, sb.id), (1, 2));
    assert_eq!(map.get(7, &a).map(|s| s.id), Some(1));
    assert_eq!(map.get(7, &b).map(|s| s.id), Some(2));
}

#[test]
fn replayed_ids_are_kept_and_new_ids_follow_them() {
    let head = Head::new();
    let a = Labels::from_pairs([("a", "1")]);
    let b = Labels::from_pairs([("b", "1")]);
    assert_eq!(head.replay_series(5, &a).expect("a").id, 5);
    assert_eq!(head.replay_series(9, &a).expect("alias").id, 5);
    let taken = head.replay_series(5, &b).expect("b");
    assert!(taken.id != 5 && !taken.is_logged());
    let c = head.get_or_create(&Labels::from_pairs([("c", "1")])).expect("c");
    assert!(c.id > 5 && c.id != taken.id);
}

const NAMES: [&str; 4] = ["__name__", "a", "b", "c"];
const VALUES: [&str; 4] = ["x", "y", "xy", "z\n"];
/// Regexes of every shape the matcher and the dictionary lookups treat apart: literal
/// sets (with `""`, classes and case folding), prefixes, suffixes, substrings, runs, and
/// ones only the regex engine answers.
const REGEXES: [&str; 14] =
    ["", "x", "x.*", ".*", ".+", "y|xy", "z.?", "|y", "x[y]", "(?i)X", ".*y", ".*y.*", "x(y|z).*", "^x"];

fn labels_strategy() -> impl Strategy<Value = Labels> {
    prop::collection::vec((0usize..NAMES.len(), 0usize..VALUES.len()), 0..4)
        .prop_map(|pairs| Labels::from_pairs(pairs.into_iter().map(|(n, v)| (NAMES[n], VALUES[v]))))
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let ops = prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::Regex),
        Just(MatchOp::NotRegex)
    ];
    let name = prop_oneof![(0usize..NAMES.len()).prop_map(|i| NAMES[i]), Just("missing")];
    (ops, name, 0usize..REGEXES.len(), 0usize..VALUES.len(), any::<bool>()).prop_map(
        |(op, name, r, v, empty)| {
            let value = match op {
                MatchOp::Regex | MatchOp::NotRegex => REGEXES[r],
                _ if empty => "",
                _ => VALUES[v],
            };
            Matcher::new(op, name, value).expect("valid regex")
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn queries_match_the_reference_model(
        writes in prop::collection::vec((labels_strategy(), 0i64..400, 0u8..4), 0..150),
        selections in prop::collection::vec(
            (prop::collection::vec(matcher_strategy(), 0..3), -10i64..400, 0i64..300), 1..6),
        name_index in 0usize..NAMES.len(),
    ) {
        let head = Head::new();
        let model = MemStorage::new();
        for (labels, t, v) in &writes {
            let v = f64::from(*v);
            prop_assert_eq!(append(&head, labels, *t, v), model.add(labels, *t, v));
        }
        for (matchers, start, len) in &selections {
            let (start, end) = (*start, start + len);
            let got = head.select(matchers, &hints(start, end));
            let want = model.select(matchers, &hints(start, end)).expect("model select");
            let got: Vec<_> = got.into_iter().map(|s| (s.labels, collect(s.samples))).collect();
            let want: Vec<_> = want.into_iter().map(|s| (s.labels, collect(s.samples))).collect();
            prop_assert_eq!(got, want, "select {:?} [{}, {}]", matchers, start, end);
            // Label lookups answer from the index, over every series the head holds (each
            // has samples here: a series is only created by a successful append).
            prop_assert_eq!(
                head.label_names(matchers),
                model.label_names(matchers, i64::MIN, i64::MAX).expect("model names"),
                "names {:?}", matchers
            );
            let name = NAMES[name_index];
            prop_assert_eq!(
                head.label_values(name, matchers),
                model.label_values(name, matchers, i64::MIN, i64::MAX).expect("model values"),
                "values of {} {:?}", name, matchers
            );
        }
    }
}

/// With many values, label values come from reading the few matched series or from
/// intersecting each value's postings with many; both agree with the reference model.
#[test]
fn label_values_by_series_and_by_intersection_agree_with_the_model() {
    let head = Head::new();
    let model = MemStorage::new();
    for i in 0..600 {
        let mut pairs = vec![("a".to_string(), format!("v{i:03}")), ("b".to_string(), (i % 5).to_string())];
        if i % 250 == 7 {
            pairs.push(("rare".to_string(), "x".to_string()));
        }
        let l = Labels::from_pairs(pairs);
        append(&head, &l, 1, 1.0).expect("append");
        model.add(&l, 1, 1.0).expect("model");
    }
    let cases = [
        vec![Matcher::equal("rare", "x")],
        vec![Matcher::equal("b", "3")],
        vec![Matcher::equal("b", "3"), Matcher::new(MatchOp::Regex, "a", "v1.*").expect("re")],
        vec![Matcher::new(MatchOp::NotRegex, "b", "1|2").expect("re"), Matcher::equal("rare", "x")],
    ];
    for matchers in &cases {
        let want = model.label_values("a", matchers, i64::MIN, i64::MAX).expect("model");
        assert_eq!(head.label_values("a", matchers), want, "{matchers:?}");
        let want = model.label_names(matchers, i64::MIN, i64::MAX).expect("model");
        assert_eq!(head.label_names(matchers), want, "{matchers:?}");
    }
}
