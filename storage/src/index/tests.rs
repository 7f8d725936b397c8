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

proptest! {
    #[test]
    fn postings_match_a_brute_force_filter(
        sets in proptest::collection::btree_set((0u8..4, 0u8..3, proptest::option::of(0u8..2)), 1..40),
        op in 0u8..4, name in 0u8..3, value in 0u8..4,
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
        let value = ["0", "1", "", "0|2"][value as usize];
        let m = Matcher::new(op, name, value).expect("matcher");
        let got: Vec<u32> = r.postings_for(std::slice::from_ref(&m)).expect("postings").iter().collect();
        let want: Vec<u32> = all
            .iter()
            .enumerate()
            .filter(|(_, l)| m.matches(l.get(name).unwrap_or("")))
            .map(|(i, _)| i as u32)
            .collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn series_out_of_order_are_refused() {
    let mut w = IndexWriter::default();
    w.add(Labels::from_pairs([("a", "2")]), vec![]).expect("add");
    assert!(w.add(Labels::from_pairs([("a", "1")]), vec![]).is_err());
}
