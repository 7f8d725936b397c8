//! Index round trip and postings against a brute-force filter.

use proptest::prelude::*;

use super::*;
use crate::block::chunks::ChunkLoc;
use crate::labels::Labels;
use crate::matcher::{MatchOp, Matcher};

fn meta(i: u64) -> ChunkMeta {
    ChunkMeta {
        min_t: -5 + i as i64,
        max_t: 100 + i as i64,
        loc: ChunkLoc { frame: 8 + i, offset: i as u32, len: 7 },
    }
}

/// Equalities, literal sets, prefixes, suffixes and regexes that match `""`.
const REGEXES: [&str; 10] = ["0", "1", "", "0|2", "1.*", ".*1", "|1", ".+", "(?i)0|1x", "[0-1]"];

proptest! {
    #[test]
    fn postings_match_a_brute_force_filter(
        sets in proptest::collection::btree_set((0u8..4, 0u8..3, proptest::option::of(0u8..2)), 1..40),
        op in 0u8..4, name in 0u8..3, value in 0usize..REGEXES.len(),
        others in proptest::collection::vec((0u8..4, 0u8..3, 0usize..REGEXES.len()), 0..2),
    ) {
        let mut all: Vec<Labels> = sets
            .iter()
            .map(|(a, b, c)| {
                let mut pairs = vec![("a".to_string(), a.to_string()), ("b".to_string(), b.to_string())];
                if let Some(c) = c {
                    pairs.push(("c".to_string(), c.to_string()));
                }
                Labels::from_pairs(pairs)
            })
            .collect();
        all.sort();
        all.dedup();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index");
        let mut w = IndexWriter::default();
        for (i, l) in all.iter().enumerate() {
            w.add(l.clone(), vec![meta(i as u64), meta(i as u64 + 1000)]).expect("add");
        }
        w.write(&path).expect("write");
        let r = IndexReader::open(&path).expect("open");
        prop_assert_eq!(r.num_series() as usize, all.len());
        for (i, l) in all.iter().enumerate() {
            let (labels, chunks) = r.series(i as u32).expect("series");
            prop_assert_eq!(&labels, l);
            prop_assert_eq!(chunks, vec![meta(i as u64), meta(i as u64 + 1000)]);
        }
        let op = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex][op as usize];
        let name = ["a", "b", "c"][name as usize];
        let value = REGEXES[value];
        let mut matchers = vec![Matcher::new(op, name, value).expect("matcher")];
        for (op, name, value) in others {
            let op = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex][op as usize];
            matchers.push(Matcher::new(op, ["a", "b", "c"][name as usize], REGEXES[value]).expect("matcher"));
        }
        let got: Vec<u32> = r.postings_for(&matchers).expect("postings").iter().collect();
        let matching: Vec<(u32, &Labels)> = all
            .iter()
            .enumerate()
            .filter(|(_, l)| matchers.iter().all(|m| m.matches_labels(l)))
            .map(|(i, l)| (i as u32, l))
            .collect();
        let want: Vec<u32> = matching.iter().map(|(i, _)| *i).collect();
        prop_assert_eq!(got, want, "{:?}", matchers);
        // Label lookups against the matching series' labels.
        let names: std::collections::BTreeSet<String> =
            matching.iter().flat_map(|(_, l)| l.iter().map(|x| x.name.to_string())).collect();
        prop_assert_eq!(r.label_names_for(&matchers).expect("names"), names.into_iter().collect::<Vec<_>>());
        for lookup in ["a", "c", "missing"] {
            let values: std::collections::BTreeSet<String> =
                matching.iter().filter_map(|(_, l)| l.get(lookup).map(str::to_string)).collect();
            prop_assert_eq!(
                r.label_values_for(lookup, &matchers).expect("values"),
                values.into_iter().collect::<Vec<_>>(),
                "values of {} {:?}", lookup, matchers
            );
        }
    }
}

#[test]
fn series_out_of_order_are_refused() {
    let mut w = IndexWriter::default();
    w.add(Labels::from_pairs([("a", "2")]), vec![]).expect("add");
    assert!(w.add(Labels::from_pairs([("a", "1")]), vec![]).is_err());
}

/// With many values, label values come from reading the few matched series or from
/// intersecting each value's postings with many; both agree with a brute-force filter.
#[test]
fn label_values_by_series_and_by_intersection_agree_with_brute_force() {
    let mut all: Vec<Labels> = (0..600)
        .map(|i| {
            let mut pairs =
                vec![("a".to_string(), format!("v{i:03}")), ("b".to_string(), (i % 5).to_string())];
            if i % 250 == 7 {
                pairs.push(("rare".to_string(), "x".to_string()));
            }
            Labels::from_pairs(pairs)
        })
        .collect();
    all.sort();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index");
    let mut w = IndexWriter::default();
    for (i, l) in all.iter().enumerate() {
        w.add(l.clone(), vec![meta(i as u64)]).expect("add");
    }
    w.write(&path).expect("write");
    let r = IndexReader::open(&path).expect("open");
    let cases = [
        vec![Matcher::equal("rare", "x")],
        vec![Matcher::equal("b", "3")],
        vec![Matcher::equal("b", "3"), Matcher::new(MatchOp::Regex, "a", "v1.*").expect("re")],
        vec![Matcher::new(MatchOp::NotRegex, "b", "1|2").expect("re"), Matcher::equal("rare", "x")],
    ];
    for matchers in &cases {
        let want: std::collections::BTreeSet<String> = all
            .iter()
            .filter(|l| matchers.iter().all(|m| m.matches_labels(l)))
            .filter_map(|l| l.get("a").map(str::to_string))
            .collect();
        assert_eq!(r.label_values_for("a", matchers).expect("values"), want.into_iter().collect::<Vec<_>>());
    }
    assert_eq!(r.label_names_for(&cases[0]).expect("names"), vec!["a", "b", "rare"]);
    assert_eq!(r.label_names_for(&cases[1]).expect("names"), vec!["a", "b"]);
}
