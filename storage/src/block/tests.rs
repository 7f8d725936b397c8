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
fn a_flipped_byte_anywhere_is_detected_by_open_or_verification() {
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
            let found = Block::open(&block_dir).and_then(|b| b.verify_chunks());
            assert!(found.is_err(), "{file} byte {pos} flipped went unnoticed");
        }
        std::fs::write(&path, &good).expect("restore");
        Block::open(&block_dir).and_then(|b| b.verify_chunks()).expect("good again");
    }
}

#[test]
fn verification_lets_go_of_the_pages_it_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = series(200, 3000);
    let meta = write(dir.path(), &data);
    let block = Block::open(&dir.path().join(&meta.ulid)).expect("open");
    let chunks = dir.path().join(&meta.ulid).join(CHUNKS_FILE);
    let all = Matcher::new(MatchOp::Equal, "__name__", "m").expect("matcher");
    assert_eq!(block.select(std::slice::from_ref(&all), i64::MIN, i64::MAX).expect("select"), data);
    assert!(crate::mapped::resident_kib(&chunks) > 0, "reading maps the file in");
    block.verify_chunks().expect("verify");
    assert_eq!(crate::mapped::resident_kib(&chunks), 0, "verification leaves none of it resident");
    assert_eq!(block.select(&[all], i64::MIN, i64::MAX).expect("select"), data, "and it reads back");
}

/// A small deterministic generator (64-bit LCG) for realistic-looking test data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Series of one data shape: 15s scrapes with a few ms of jitter over two hours.
fn shaped(shape: &str, n: usize) -> Vec<(Labels, Vec<Sample>)> {
    /// Samples per series: two hours of 15s scrapes, one default block.
    const SAMPLES: i64 = 480;
    let mut rng = Lcg(42);
    let mut out: Vec<(Labels, Vec<Sample>)> = (0..n)
        .map(|i| {
            let labels =
                Labels::from_pairs([("__name__", shape), ("instance", &format!("host-{i:05}:9100"))]);
            let mut v = (rng.next() % 1_000_000) as f64;
            let samples = (0..SAMPLES)
                .map(|k| {
                    // A scrape loop lands on its tick or a millisecond or two off it.
                    let jitter = if rng.next().is_multiple_of(4) { (rng.next() % 5) as i64 - 2 } else { 0 };
                    let t = 1_700_000_000_000 + k * 15_000 + jitter;
                    v = match shape {
                        "counter" => v + (rng.next() % 500) as f64,
                        "gauge" => ((v * 100.0).round() + (rng.next() % 2001) as f64 - 1000.0) / 100.0,
                        "constant" => 1.0,
                        // CPU seconds: about 15 s per 15 s scrape, two decimals.
                        "cpu_seconds" => ((v * 100.0).round() + 1490.0 + (rng.next() % 21) as f64) / 100.0,
                        // Memory bytes: pages come and go.
                        "memory_bytes" => v + 4096.0 * ((rng.next() % 9) as f64 - 4.0),
                        _ => f64::from_bits(0x3ff0_0000_0000_0000 | (rng.next() << 20)),
                    };
                    Sample::new(t, v)
                })
                .collect();
            (labels, samples)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Bytes of the head's XOR chunks (cut at 120 samples, as the head does) for `data`.
fn head_bytes(data: &[(Labels, Vec<Sample>)]) -> usize {
    data.iter()
        .flat_map(|(_, s)| s.chunks(crate::chunk::SAMPLES_PER_CHUNK))
        .map(|part| {
            let mut e = crate::chunk::XorEncoder::new();
            for s in part {
                e.append(s.t, s.v).expect("append");
            }
            e.len_bytes()
        })
        .sum()
}

#[test]
fn at_rest_encoding_beats_head_chunks_on_realistic_shapes() {
    /// Series per shape: enough for zstd frames to see many neighbours.
    const SERIES: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    println!("shape      head XOR B/sample   block chunks B/sample   block incl. index B/sample");
    for shape in ["counter", "gauge", "constant", "cpu_seconds", "memory_bytes", "random_float"] {
        let data = shaped(shape, SERIES);
        let samples: usize = data.iter().map(|(_, s)| s.len()).sum();
        let head = head_bytes(&data);
        let meta = write_block(dir.path(), spec(i64::MIN, i64::MAX), data.iter().cloned().map(Ok))
            .expect("write")
            .expect("block");
        let chunks =
            std::fs::metadata(dir.path().join(&meta.ulid).join(CHUNKS_FILE)).expect("stat").len() as usize;
        let per = |b: usize| b as f64 / samples as f64;
        println!(
            "{shape:<12} {:>10.3} {:>22.3} {:>26.3}",
            per(head),
            per(chunks),
            per(meta.stats.num_bytes as usize)
        );
        let block = Block::open(&dir.path().join(&meta.ulid)).expect("open");
        let all = Matcher::new(MatchOp::Equal, "__name__", shape).expect("matcher");
        assert_eq!(block.select(&[all], i64::MIN, i64::MAX).expect("select"), data, "{shape} round trip");
        if shape != "random_float" {
            assert!(chunks < head, "{shape}: block {chunks} B, head {head} B");
        }
    }
}

#[test]
fn version_1_blocks_are_still_read_and_unknown_versions_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = series(3, 50);
    let meta = write(dir.path(), &data);
    let block_dir = dir.path().join(&meta.ulid);
    let (chunks, meta_file) = (block_dir.join(CHUNKS_FILE), block_dir.join(META_FILE));
    let (good_chunks, good_meta) =
        (std::fs::read(&chunks).expect("read"), std::fs::read_to_string(&meta_file).expect("read"));
    assert_eq!(good_chunks[4], 2, "chunks file version");
    assert!(good_meta.contains("\"version\": 2"), "{good_meta}");
    let with = |chunks_version: u8, meta_version: u32| {
        let mut c = good_chunks.clone();
        c[4] = chunks_version;
        std::fs::write(&chunks, c).expect("write");
        std::fs::write(
            &meta_file,
            good_meta.replace("\"version\": 2", &format!("\"version\": {meta_version}")),
        )
        .expect("write");
        Block::open(&block_dir)
    };
    let old = with(1, 1).expect("a version 1 block opens");
    let all = Matcher::new(MatchOp::NotEqual, "__name__", "").expect("matcher");
    assert_eq!(old.select(&[all], i64::MIN, i64::MAX).expect("select"), data);
    assert!(with(3, 2).is_err(), "an unknown chunks file version is refused");
    assert!(with(2, 3).is_err(), "an unknown block version is refused");
}

#[test]
fn equal_chunks_are_stored_once_and_read_back_for_each_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let samples: Vec<Sample> = (0..400).map(|i| Sample::new(i * 15_000, (i * i % 977) as f64)).collect();
    let labels = |name: &str| Labels::from_pairs([("__name__", name)]);
    let twins = vec![(labels("a_count"), samples.clone()), (labels("b_bucket"), samples.clone())];
    let mut other = samples.clone();
    other[7].v += 1.0;
    let apart = vec![(labels("a_count"), samples), (labels("b_bucket"), other)];
    let chunks_of = |data: &Vec<(Labels, Vec<Sample>)>| {
        let meta = write(dir.path(), data);
        let block = Block::open(&dir.path().join(&meta.ulid)).expect("open");
        let all = Matcher::new(MatchOp::NotEqual, "__name__", "").expect("matcher");
        assert_eq!(&block.select(&[all], i64::MIN, i64::MAX).expect("select"), data);
        let loc = |ordinal| block.index.series(ordinal).expect("series").1[0].loc;
        loc(0) == loc(1)
    };
    assert!(chunks_of(&twins), "equal chunks share one location");
    assert!(!chunks_of(&apart), "different chunks do not");
}
