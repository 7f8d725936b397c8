//! Block tests: write/read round trip, matchers, and damage detection.

use super::*;
use crate::matcher::MatchOp;

fn series(n: usize, samples: i64) -> Vec<(Labels, Vec<Sample>)> {
    let mut out: Vec<(Labels, Vec<Sample>)> = (0..n)
        .map(|i| {
            let labels = Labels::from_pairs([
                ("__name__", "m"),
                ("i", &format!("{i:04}")),
                ("odd", &(i % 2).to_string()),
            ]);
            let s = (0..samples).map(|t| Sample::new(t * 1000, (t as f64) * 0.5 + i as f64)).collect();
            (labels, s)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn spec(min: i64, max: i64) -> NewBlock {
    NewBlock { min_time: min, max_time: max, level: 1, sources: vec![], parents: vec![] }
}

fn write(dir: &Path, data: &[(Labels, Vec<Sample>)]) -> BlockMeta {
    write_block(dir, spec(0, 10_000_000), data.iter().cloned().map(Ok)).expect("write").expect("non-empty")
}

#[test]
fn roundtrip_and_matchers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = series(50, 3000);
    let meta = write(dir.path(), &data);
    assert_eq!(meta.stats.num_series, 50);
    assert_eq!(meta.stats.num_samples, 150_000);
    assert_eq!(meta.compaction.sources, vec![meta.ulid.clone()]);
    let block = Block::open(&dir.path().join(&meta.ulid)).expect("open");
    let all = Matcher::new(MatchOp::Equal, "__name__", "m").expect("matcher");
    let got = block.select(std::slice::from_ref(&all), i64::MIN, i64::MAX).expect("select");
    assert_eq!(got, data);
    let odd = Matcher::new(MatchOp::Equal, "odd", "1").expect("matcher");
    let re = Matcher::new(MatchOp::Regex, "i", "00[0-2].").expect("matcher");
    let got = block.select(&[odd, re], 5_000, 7_000).expect("select");
    let want: Vec<_> = data
        .iter()
        .filter(|(l, _)| l.get("odd") == Some("1") && l.get("i").is_some_and(|i| i < "0030"))
        .map(|(l, s)| {
            (l.clone(), s.iter().copied().filter(|s| (5_000..=7_000).contains(&s.t)).collect::<Vec<_>>())
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(block.label_names(&[]).expect("names"), vec!["__name__", "i", "odd"]);
    assert_eq!(block.label_values("odd", &[]).expect("values"), vec!["0", "1"]);
    let none = Matcher::new(MatchOp::NotEqual, "odd", "1").expect("matcher");
    assert_eq!(block.label_values("odd", &[none]).expect("values"), vec!["0"]);
}

#[test]
fn an_empty_block_is_not_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let got = write_block(dir.path(), spec(0, 10), std::iter::empty()).expect("write");
    assert!(got.is_none());
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn the_range_widens_to_hold_every_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = series(1, 10);
    let meta =
        write_block(dir.path(), spec(2000, 5000), data.into_iter().map(Ok)).expect("write").expect("block");
    assert_eq!((meta.min_time, meta.max_time), (0, 9001));
}

#[test]
fn a_flipped_byte_anywhere_is_detected_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = write(dir.path(), &series(20, 500));
    let block_dir = dir.path().join(&meta.ulid);
    for file in [CHUNKS_FILE, INDEX_FILE] {
        let path = block_dir.join(file);
        let good = std::fs::read(&path).expect("read");
        for pos in (0..good.len()).step_by(good.len() / 40 + 1) {
            let mut bad = good.clone();
            bad[pos] ^= 0x10;
            std::fs::write(&path, &bad).expect("write");
            assert!(Block::open(&block_dir).is_err(), "{file} byte {pos} flipped went unnoticed");
        }
        std::fs::write(&path, &good).expect("restore");
        Block::open(&block_dir).expect("good again");
    }
}
