//! Db tests with blocks: cuts, queries across blocks and head, crashes at every step of
//! block writing, WAL truncation and compaction, retention, corrupt blocks, and a
//! model-based test against `MemStorage`.

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::failpoint::FAILPOINT;
use crate::matcher::MatchOp;
use crate::memory::MemStorage;

/// Block range of these tests: one second, so a few thousand ms of samples make blocks.
const RANGE: i64 = 1000;

/// Options of the tests that cut blocks: small ranges and segments, no retention.
pub(super) fn opts() -> DbOptions {
    DbOptions { block_range: RANGE, retention_raw: 0, segment_size: 4096, ..Default::default() }
}

fn open(dir: &Path) -> Db {
    Db::open(dir, opts()).expect("open")
}

fn everything() -> Matcher {
    Matcher::new(MatchOp::Regex, "__name__", ".+").expect("matcher")
}

use super::tests::dump_range as dump;

fn all(q: &dyn Querier) -> Vec<(Labels, Vec<(i64, u64)>)> {
    dump(q, i64::MIN, i64::MAX)
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", if i.is_multiple_of(2) { "up" } else { "req_total" }),
        ("i", &i.to_string()),
    ])
}

/// Appends `t` for series 0..n with a value that depends on both, to `db` and `model`.
fn append_all(db: &Db, model: &MemStorage, n: usize, ts: impl IntoIterator<Item = i64>) {
    for t in ts {
        let mut app = db.appender();
        for i in 0..n {
            let v = (t / 100) as f64 * 0.5 + i as f64;
            app.append(&series(i), t, v);
            model.add(&series(i), t, v).expect("model");
        }
        let out = app.commit().expect("commit");
        assert_eq!(out.rejected(), 0);
    }
}

/// Samples in blocks must not repeat: their count equals the model's before `min_valid`.
fn assert_blocks_hold_each_sample_once(db: &Db, model: &MemStorage) {
    let blocks = db.blocks.read().clone();
    let in_blocks: u64 = blocks
        .iter()
        .map(|b| {
            let found = b.select(&[everything()], i64::MIN, i64::MAX).expect("block select");
            found.iter().map(|(_, s)| s.len() as u64).sum::<u64>()
        })
        .sum();
    let expected: usize =
        all(model).iter().map(|(_, s)| s.iter().filter(|(t, _)| *t < db.min_valid_time()).count()).sum();
    assert_eq!(in_blocks, expected as u64, "blocks hold some sample twice or lose one");
}

#[test]
fn blocks_are_cut_and_queries_merge_them_with_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 5, (0..500).map(|i| i * 10));
    let samples_before = db.num_samples();
    let report = db.maintain().expect("maintain");
    assert!(report.blocks_cut >= 3, "{report:?}");
    assert!(!db.blocks().is_empty());
    assert!(db.num_samples() < samples_before, "the head dropped what the blocks hold");
    assert_eq!(db.min_valid_time() % RANGE, 0);
    assert_eq!(all(&db), all(&model));
    assert_eq!(dump(&db, 1250, 3350), dump(&model, 1250, 3350));
    assert_blocks_hold_each_sample_once(&db, &model);

    // A sample the blocks' range covers is refused; later ones go on.
    let mut app = db.appender();
    app.append(&series(0), db.min_valid_time() - 1, 1.0);
    app.append(&series(0), 10_000, 1.0);
    model.add(&series(0), 10_000, 1.0).expect("model");
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.out_of_order), (1, 1));

    // The WAL was checkpointed: no segment older than the checkpoint is left.
    let wal_dir = dir.path().join(WAL_DIR);
    let (ckpt, _) = checkpoint::latest(&wal_dir).expect("list").expect("a checkpoint");
    assert!(crate::wal::segment::list(&wal_dir).expect("list").iter().all(|&s| s > ckpt));
    drop(db);

    let db = open(dir.path());
    assert_eq!(all(&db), all(&model));
    assert_eq!(db.label_values("i", &[], i64::MIN, i64::MAX).expect("values"), vec!["0", "1", "2", "3", "4"]);
    assert_eq!(db.label_names(&[], 0, 500).expect("names"), vec!["__name__", "i"]);
    append_all(&db, &model, 5, (1001..1300).map(|i| i * 10));
    db.maintain().expect("maintain");
    assert_eq!(all(&db), all(&model));
    assert_blocks_hold_each_sample_once(&db, &model);
    db.close().expect("close");
}

#[test]
fn compaction_merges_completed_windows_into_higher_levels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 3, (0..200).map(|i| i * 50));
    let report = db.maintain().expect("maintain");
    assert!(report.compactions >= 2, "{report:?}");
    let blocks = db.blocks();
    assert!(blocks.iter().any(|b| b.compaction.level >= 2), "{blocks:?}");
    assert!(blocks.iter().any(|b| b.max_time - b.min_time >= 3 * RANGE));
    for w in blocks.windows(2) {
        assert!(w[0].max_time <= w[1].min_time, "blocks overlap: {blocks:?}");
    }
    let sources: usize = blocks.iter().map(|b| b.compaction.sources.len()).sum();
    assert!(sources > blocks.len());
    assert_eq!(all(&db), all(&model));
    assert_blocks_hold_each_sample_once(&db, &model);
    drop(db);
    let db = open(dir.path());
    assert_eq!(all(&db), all(&model));
    let dirs = std::fs::read_dir(dir.path().join(BLOCKS_DIR)).expect("ls").count();
    assert_eq!(dirs, db.blocks().len(), "parents were deleted");
}

#[test]
fn overlapping_blocks_are_merged_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks_dir = dir.path().join(BLOCKS_DIR);
    std::fs::create_dir_all(&blocks_dir).expect("mkdir");
    let spec = |min, max| crate::block::NewBlock {
        min_time: min,
        max_time: max,
        level: 1,
        sources: vec![],
        parents: vec![],
    };
    let s =
        |ts: &[i64]| vec![Ok((series(0), ts.iter().map(|&t| Sample::new(t, t as f64)).collect::<Vec<_>>()))];
    crate::block::write_block(&blocks_dir, spec(0, 1000), s(&[0, 100, 500]).into_iter()).expect("write");
    crate::block::write_block(&blocks_dir, spec(400, 1400), s(&[500, 600, 1300]).into_iter()).expect("write");
    let db = open(dir.path());
    assert_eq!(db.blocks().len(), 2);
    let want =
        vec![(series(0), [0i64, 100, 500, 600, 1300].iter().map(|&t| (t, (t as f64).to_bits())).collect())];
    assert_eq!(all(&db), want);
    let report = db.maintain().expect("maintain");
    assert_eq!(report.compactions, 1);
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(db.blocks()[0].stats.num_samples, 5);
    assert_eq!(all(&db), want);
}

#[test]
fn retention_drops_old_blocks_by_time_and_by_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions { retention_raw: 3 * RANGE, ..opts() }).expect("open");
    let model = MemStorage::new();
    append_all(&db, &model, 2, (0..100).map(|i| i * 100));
    let report = db.maintain().expect("maintain");
    assert!(report.blocks_dropped > 0, "{report:?}");
    let newest = 9900 + 1;
    for b in db.blocks() {
        assert!(b.max_time > newest - 3 * RANGE, "{b:?} is past retention");
    }
    let oldest = db.blocks().first().map(|b| b.min_time).expect("a block is kept");
    assert_eq!(dump(&db, i64::MIN, oldest - 1), vec![]);
    assert_eq!(dump(&db, oldest, i64::MAX), dump(&model, oldest, i64::MAX));
    drop(db);

    let db = Db::open(dir.path(), DbOptions { retention_size: 1, ..opts() }).expect("open");
    db.maintain().expect("maintain");
    assert!(db.blocks().is_empty(), "every block is over a one-byte cap");
    assert_eq!(std::fs::read_dir(dir.path().join(BLOCKS_DIR)).expect("ls").count(), 0);
}

/// Flips one byte in the middle of a file without truncating it (a mapped file must not
/// shrink).
fn flip_byte(path: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open");
    let len = f.metadata().expect("meta").len();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(len / 2)).expect("seek");
    f.read_exact(&mut b).expect("read");
    f.seek(SeekFrom::Start(len / 2)).expect("seek");
    f.write_all(&[b[0] ^ 0x40]).expect("write");
}

#[test]
fn a_corrupt_block_is_detected_moved_aside_and_never_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 50, (0..60).map(|i| i * 100));
    db.maintain().expect("maintain");
    let victim = db.blocks()[0].clone();
    let victim_dir = dir.path().join(BLOCKS_DIR).join(&victim.ulid);

    // Damage under a running database: the read fails instead of serving bad data.
    flip_byte(&victim_dir.join(crate::block::CHUNKS_FILE));
    let hints = SelectHints { start: victim.min_time, end: victim.max_time - 1, ..Default::default() };
    let err = db.select(&[everything()], &hints).err().expect("corruption is reported");
    assert!(matches!(err, StorageError::Corrupt(_)), "{err}");
    let report = db.maintain().expect("maintain");
    assert_eq!((report.blocks_quarantined, db.corrupt_blocks()), (1, 1));
    assert!(db.blocks().iter().all(|b| b.ulid != victim.ulid));
    assert!(
        dir.path().join(BLOCKS_DIR).join(format!("{}{}", victim.ulid, crate::block::CORRUPT_SUFFIX)).exists()
    );
    let later = db.min_valid_time().min(victim.max_time);
    assert_eq!(dump(&db, later, i64::MAX), dump(&model, later, i64::MAX));
    drop(db);

    // Damage to an index is found at open: the block is moved aside and the rest served.
    let db = open(dir.path());
    let (second, third) = (db.blocks()[0].clone(), db.blocks()[1].clone());
    drop(db);
    flip_byte(&dir.path().join(BLOCKS_DIR).join(&second.ulid).join(crate::block::INDEX_FILE));
    // Damage to chunks no query reads is found by the first maintenance pass's scrub.
    flip_byte(&dir.path().join(BLOCKS_DIR).join(&third.ulid).join(crate::block::CHUNKS_FILE));
    let db = open(dir.path());
    assert_eq!(db.corrupt_blocks(), 1);
    assert!(db.blocks().iter().all(|b| b.ulid != second.ulid));
    let report = db.maintain().expect("maintain");
    assert_eq!((report.blocks_quarantined, db.corrupt_blocks()), (1, 2));
    assert!(db.blocks().iter().all(|b| b.ulid != third.ulid));
    assert_eq!(dump(&db, third.max_time, i64::MAX), dump(&model, third.max_time, i64::MAX));
}

/// Every step of block cutting, WAL truncation and compaction that a crash can stop.
const CRASH_POINTS: [&str; 11] = [
    "cut.writing",
    "compact.writing",
    "block.before_rename",
    "cut.after_block",
    "cut.before_truncate",
    "checkpoint.before_rename",
    "checkpoint.after_rename",
    "checkpoint.removing_segments",
    "compact.after_block",
    "compact.deleting_parents",
    "block.deleting",
];

/// Runs maintenance stopped at `point` (as a crash would), then reopens.
fn crash_at(dir: &Path, db: Db, point: &'static str, must_reach: bool) -> Db {
    FAILPOINT.with(|f| f.set(Some(point)));
    let result = db.maintain();
    FAILPOINT.with(|f| f.set(None));
    if must_reach {
        assert!(result.is_err(), "maintenance never reached {point}");
    }
    // Dropping without close is what a crash leaves: every commit was written to the OS.
    drop(db);
    open(dir)
}

#[test]
fn a_crash_at_any_step_of_maintenance_loses_and_duplicates_nothing() {
    for point in CRASH_POINTS {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        let model = MemStorage::new();
        append_all(&db, &model, 4, (0..40).map(|i| i * 100));
        db.maintain().expect("first cuts");
        append_all(&db, &model, 4, (40..90).map(|i| i * 100));
        let db = crash_at(dir.path(), db, point, true);
        assert_eq!(all(&db), all(&model), "after a crash at {point}");
        assert_blocks_hold_each_sample_once(&db, &model);
        append_all(&db, &model, 4, (90..120).map(|i| i * 100));
        db.maintain().expect("maintain after restart");
        assert_eq!(all(&db), all(&model), "after recovering from {point}");
        assert_blocks_hold_each_sample_once(&db, &model);
        drop(db);
        let db = open(dir.path());
        assert_eq!(all(&db), all(&model), "after reopening from {point}");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path().join(BLOCKS_DIR))
            .expect("ls")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !crate::block::is_block_id(n))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
    }
}

#[test]
fn the_background_thread_cuts_blocks_without_blocking_ingest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(open(dir.path()));
    let model = MemStorage::new();
    let bg = Db::spawn_maintenance(db.clone(), std::time::Duration::from_millis(5)).expect("spawn");
    append_all(&db, &model, 3, (0..400).map(|i| i * 25));
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while db.min_valid_time() < 9000 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    bg.stop();
    assert_eq!(db.min_valid_time(), 9000);
    assert!(!db.blocks().is_empty());
    assert_eq!(all(&*db), all(&model));
}

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Op {
    /// Advance time by `dt` and append to the series in `mask` (bit i = series i).
    Append {
        dt: i64,
        mask: u8,
        value: i8,
    },
    /// Append a sample `back` ms before the newest time to series `i`.
    AppendOld {
        i: usize,
        back: i64,
    },
    /// Delete `len` ms of series `i` ending `back` ms before the newest time.
    Delete {
        i: usize,
        back: i64,
        len: i64,
    },
    /// Rewrite blocks with tombstones.
    CleanTombstones,
    Maintain,
    /// A crash (drop without close), then a restart.
    Reopen,
    /// A graceful close (head snapshot), then a restart.
    Close,
    /// A head snapshot as at shutdown, with commits still coming after it.
    Snapshot,
    /// Maintenance stopped at a crash point, then a restart.
    Crash(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1i64..400, 1u8..16, any::<i8>()).prop_map(|(dt, mask, value)| Op::Append { dt, mask, value }),
        1 => (0usize..4, 0i64..3000).prop_map(|(i, back)| Op::AppendOld { i, back }),
        1 => (0usize..4, 0i64..3000, 0i64..2000).prop_map(|(i, back, len)| Op::Delete { i, back, len }),
        1 => Just(Op::CleanTombstones),
        2 => Just(Op::Maintain),
        1 => Just(Op::Reopen),
        1 => Just(Op::Close),
        1 => Just(Op::Snapshot),
        1 => (0..CRASH_POINTS.len()).prop_map(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn db_with_blocks_matches_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Some(open(dir.path()));
        let model = MemStorage::new();
        let mut now = 0i64;
        // Series a deletion touched: the model forgets their newest sample, the head does
        // not, so old appends to them are not compared.
        let mut deleted_from = [false; 4];
        for op in ops {
            let d = db.take().expect("open db");
            let d = match op {
                Op::Append { dt, mask, value } => {
                    now += dt;
                    let mut app = d.appender();
                    for i in (0..4).filter(|i| mask & (1 << i) != 0) {
                        let v = f64::from(value) / 4.0 + i as f64;
                        app.append(&series(i), now, v);
                        model.add(&series(i), now, v).expect("model");
                    }
                    let out = app.commit().expect("commit");
                    prop_assert_eq!(out.rejected(), 0);
                    d
                }
                Op::AppendOld { i, .. } if deleted_from[i] => d,
                Op::AppendOld { i, back } => {
                    let t = now - back;
                    let too_old = t < d.min_valid_time();
                    let mut app = d.appender();
                    app.append(&series(i), t, 7.0);
                    let out = app.commit().expect("commit");
                    let model_ok = !too_old && model.add(&series(i), t, 7.0).is_ok();
                    prop_assert_eq!(out.rejected() == 0, model_ok, "t={} min_valid={}", t, d.min_valid_time());
                    d
                }
                Op::Maintain => {
                    d.maintain().expect("maintain");
                    d
                }
                Op::Delete { i, back, len } => {
                    let m = [Matcher::new(MatchOp::Equal, "i", i.to_string()).expect("matcher")];
                    d.delete_series(&m, now - back - len, now - back).expect("delete");
                    model.delete(&m, now - back - len, now - back);
                    deleted_from[i] = true;
                    d
                }
                Op::CleanTombstones => {
                    d.clean_tombstones().expect("clean");
                    d
                }
                Op::Reopen => {
                    drop(d);
                    open(dir.path())
                }
                Op::Close => {
                    d.close().expect("close");
                    open(dir.path())
                }
                Op::Snapshot => {
                    d.snapshot_running().expect("snapshot");
                    d
                }
                Op::Crash(p) => crash_at(dir.path(), d, CRASH_POINTS[p], false),
            };
            prop_assert_eq!(all(&d), all(&model));
            assert_blocks_hold_each_sample_once(&d, &model);
            db = Some(d);
        }
    }
}

#[test]
fn series_without_samples_leave_the_head_and_a_batch_racing_that_still_lands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 4, (0..5).map(|i| i * 100));
    append_all(&db, &model, 1, (5..40).map(|i| i * 100));
    assert_eq!(db.num_series(), 4);
    // A batch looks series 3 up before maintenance removes it from the head.
    let mut app = db.appender();
    app.append(&series(3), 4000, 9.0);
    model.add(&series(3), 4000, 9.0).expect("model");
    db.maintain().expect("maintain");
    assert_eq!(db.num_series(), 1, "series 1..3 have nothing left in the head");
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.rejected()), (1, 0));
    assert_eq!(all(&db), all(&model));
    drop(db);
    let db = open(dir.path());
    assert_eq!(all(&db), all(&model));
    assert_eq!(db.num_series(), 2, "the checkpoint no longer carries removed series");
}

#[test]
fn tsdb_stats_count_cardinality_in_prometheus_terms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 5, [100, 200]);
    let s = db.tsdb_stats(2);
    assert_eq!((s.num_series, s.num_samples, s.min_time, s.max_time), (5, 10, Some(100), Some(200)));
    assert_eq!(s.num_label_pairs, 2 + 5);
    let nc = |n: &str, v| crate::stats::NameCount { name: n.to_string(), value: v };
    assert_eq!(s.series_count_by_metric_name, vec![nc("up", 3), nc("req_total", 2)]);
    assert_eq!(s.label_value_count_by_label_name, vec![nc("i", 5), nc("__name__", 2)]);
    assert_eq!(s.series_count_by_label_value_pair, vec![nc("__name__=up", 3), nc("__name__=req_total", 2)]);
    assert_eq!(s.memory_in_bytes_by_label_name, vec![nc("__name__", 3 * 2 + 2 * 9), nc("i", 5)]);
}

#[test]
fn a_snapshot_is_a_data_directory_holding_blocks_and_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 3, (0..40).map(|i| i * 100));
    db.maintain().expect("maintain");
    let snap = dir.path().join("snapshots").join("one");
    let metas = db.snapshot(&snap, true).expect("snapshot");
    assert_eq!(metas.len(), db.blocks().len() + 1, "every block and the head");
    assert!(db.snapshot(&snap, true).is_err(), "an existing target is refused");
    // Later writes and maintenance do not touch the snapshot.
    append_all(&db, &model, 3, (40..80).map(|i| i * 100));
    db.maintain().expect("maintain");
    let restored = open(&snap);
    assert_eq!(all(&restored), dump(&model, i64::MIN, 3900));
    let without_head = dir.path().join("snapshots").join("two");
    let metas = db.snapshot(&without_head, false).expect("snapshot");
    assert_eq!(metas.len(), db.blocks().len());
}

#[test]
fn import_writes_history_as_blocks_that_merge_with_existing_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 2, (100..110).map(|i| i * 100));
    let history: Vec<(Labels, Vec<Sample>)> = (0..3)
        .map(|i| {
            let mut s: Vec<Sample> =
                (0..60).rev().map(|k| Sample::new(k * 100 + i, (k * 3 + i) as f64)).collect();
            s.push(Sample::new(20_000, 1.0)); // newer than the head's oldest sample
            s.push(Sample::new(i, 5.0)); // repeats the first timestamp
            (series(i as usize), s)
        })
        .collect();
    // The reference: what the head holds plus the history before the head's first sample,
    // first of each repeated timestamp kept.
    let mut reference: std::collections::BTreeMap<Labels, std::collections::BTreeMap<i64, f64>> =
        std::collections::BTreeMap::new();
    for (l, samples) in all(&model) {
        reference.entry(l).or_default().extend(samples.into_iter().map(|(t, v)| (t, f64::from_bits(v))));
    }
    for (l, samples) in &history {
        let r = reference.entry(l.clone()).or_default();
        for x in samples.iter().filter(|x| x.t < 10_000) {
            r.entry(x.t).or_insert(x.v);
        }
    }
    let model = MemStorage::new();
    for (l, samples) in &reference {
        for (&t, &v) in samples {
            model.add(l, t, v).expect("model");
        }
    }
    let report = db.import(history.clone()).expect("import");
    assert_eq!((report.imported, report.too_new, report.duplicates, report.blocks), (180, 3, 3, 6));
    assert_eq!(all(&db), all(&model));
    // Importing again adds nothing once compaction folds the overlapping blocks.
    db.import(history).expect("import");
    db.maintain().expect("maintain");
    assert_eq!(all(&db), all(&model));
    assert_blocks_hold_each_sample_once(&db, &model);
    drop(db);
    let db = open(dir.path());
    assert_eq!(all(&db), all(&model));
}

#[test]
fn deletions_apply_at_once_survive_restarts_and_are_compacted_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    append_all(&db, &model, 3, (0..80).map(|i| i * 100));
    db.maintain().expect("maintain");
    assert!(db.min_valid_time() > 3000);
    let m = [Matcher::new(MatchOp::Regex, "i", "0|2").expect("matcher")];
    // A range across blocks and the head.
    let (mint, maxt) = (2050, db.min_valid_time() + 650);
    assert!(db.delete_series(&[], mint, maxt).is_err(), "no matcher, no deletion");
    assert_eq!(db.delete_series(&m, mint, maxt).expect("delete"), 2);
    model.delete(&m, mint, maxt);
    assert_eq!(all(&db), all(&model));
    let with_tombstones = std::fs::read_dir(dir.path().join(BLOCKS_DIR))
        .expect("ls")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().join(crate::block::TOMBSTONES_FILE).exists()))
        .count();
    assert!(with_tombstones >= 1);
    drop(db); // as a crash would: the head's part is only in the WAL
    let db = open(dir.path());
    assert_eq!(all(&db), all(&model));
    let cleaned = db.clean_tombstones().expect("clean");
    assert!(cleaned >= 1);
    assert_eq!(db.clean_tombstones().expect("clean"), 0, "nothing left to clean");
    assert_eq!(all(&db), all(&model));
    append_all(&db, &model, 3, (80..120).map(|i| i * 100));
    db.maintain().expect("maintain");
    assert_eq!(all(&db), all(&model));
    assert_blocks_hold_each_sample_once(&db, &model);
    drop(db);
    let db = open(dir.path());
    assert_eq!(all(&db), all(&model));
}

#[test]
fn a_sample_stamped_far_in_the_future_neither_wipes_blocks_nor_stalls_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions { retention_raw: 3 * RANGE, ..opts() }).expect("open");
    let model = MemStorage::new();
    append_all(&db, &model, 1, (0..40).map(|i| i * 100));
    let year_3000 = 32_503_680_000_000;
    let mut app = db.appender();
    app.append(&series(7), year_3000, 1.0);
    app.commit().expect("commit");
    db.maintain().expect("maintain");
    assert!(db.min_valid_time() < 10_000, "the head still takes current samples");
    append_all(&db, &model, 1, (40..50).map(|i| i * 100));
    let kept_from = db.blocks().first().map(|b| b.min_time).expect("retention kept recent blocks");
    assert!(kept_from <= 1000, "retention counts from real data, not from the year 3000");
    assert_eq!(dump(&db, kept_from, 10_000), dump(&model, kept_from, 10_000));
}

#[test]
fn queries_during_cuts_and_compactions_see_every_committed_sample() {
    /// Samples each series gets: enough for many cuts and compactions.
    const STEPS: i64 = 3000;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(open(dir.path()));
    let committed = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let writer = {
        let (db, committed) = (db.clone(), committed.clone());
        std::thread::spawn(move || {
            for k in 0..STEPS {
                let mut app = db.appender();
                for i in 0..3 {
                    app.append(&series(i), k * 10, k as f64);
                }
                app.commit().expect("commit");
                committed.store(k, Ordering::Release);
            }
        })
    };
    let maintainer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut cuts = 0;
            while cuts < 25 {
                cuts += db.maintain().expect("maintain").blocks_cut;
                std::thread::yield_now();
            }
        })
    };
    let mut checks = 0;
    while committed.load(Ordering::Acquire) < STEPS - 1 {
        let k = committed.load(Ordering::Acquire);
        if k < 0 {
            continue;
        }
        for (labels, samples) in dump(&*db, 0, k * 10) {
            assert_eq!(samples.len() as i64, k + 1, "{labels} misses samples up to step {k}");
        }
        checks += 1;
    }
    writer.join().expect("writer");
    maintainer.join().expect("maintainer");
    assert!(checks > 0);
    assert!(db.blocks().len() >= 2);
}

#[test]
fn late_samples_within_the_window_are_merged_in_and_cut_into_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = DbOptions { out_of_order_window: 300, ..opts() };
    let db = Db::open(dir.path(), o.clone()).expect("open");
    let s = series(0);
    let mut app = db.appender();
    for t in [1000, 1100, 1400, 1500] {
        app.append(&s, t, t as f64);
    }
    app.append(&s, 1300, 1300.0); // late, within the window, in the same batch
    app.append(&s, 1100, 5.0); // beyond the window of 1500
    app.append(&s, 1199, 1199.0); // beyond the window too
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.duplicate, out.out_of_order), (5, 0, 2));
    let mut app = db.appender();
    app.append(&s, 1250, 1250.0);
    app.append(&s, 1250, 1250.0);
    app.append(&s, 1600, 1600.0);
    app.append(&s, 1350, 1350.0);
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.rejected()), (4, 0));
    let mut app = db.appender();
    app.append(&s, 1300, 7.0); // a late sample's time, other value
    app.append(&s, 1400, 7.0); // an in-order sample's time, other value
    app.append(&s, 1400, 1400.0); // exact repeat
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.duplicate), (1, 2));
    let want: Vec<(i64, u64)> =
        [1000, 1100, 1250, 1300, 1350, 1400, 1500, 1600].iter().map(|&t| (t, (t as f64).to_bits())).collect();
    assert_eq!(all(&db), vec![(s.clone(), want.clone())]);
    assert_eq!(dump(&db, 1200, 1360), vec![(s.clone(), want[2..5].to_vec())]);
    drop(db);
    let db = Db::open(dir.path(), o.clone()).expect("reopen");
    assert_eq!(all(&db), vec![(s.clone(), want.clone())]);
    // Push the head on so the late samples go into a block.
    let mut app = db.appender();
    for t in (17..40).map(|i| i * 100) {
        app.append(&s, t, t as f64);
    }
    app.commit().expect("commit");
    db.maintain().expect("maintain");
    assert!(db.min_valid_time() >= 2000);
    let early: Vec<(i64, u64)> = want
        .iter()
        .copied()
        .chain([1700i64, 1800, 1900].iter().map(|&t| (t, (t as f64).to_bits())))
        .collect();
    assert_eq!(dump(&db, 0, 1999), vec![(s.clone(), early)]);
    let mut app = db.appender();
    app.append(&s, db.min_valid_time() - 1, 0.0);
    assert_eq!(app.commit().expect("commit").out_of_order, 1, "no late sample before the newest block's end");
    drop(db);
    let db = Db::open(dir.path(), o).expect("reopen");
    assert_blocks_hold_each_sample_once(&db, &{
        let m = MemStorage::new();
        for (t, v) in all(&db).into_iter().flat_map(|(_, s)| s) {
            m.add(&s, t, f64::from_bits(v)).expect("model");
        }
        m
    });
}

/// One step of the model-based test with an out-of-order window.
#[derive(Debug, Clone)]
enum LateOp {
    /// Advance time by `dt` and append to series 0 and 1.
    Append {
        dt: i64,
    },
    /// Append a sample `back` ms before the newest time to series `i`.
    Late {
        i: usize,
        back: i64,
    },
    Maintain,
    Reopen,
    /// A graceful close (head snapshot), then a restart.
    Close,
}

/// The out-of-order window of the model-based test.
const WINDOW: i64 = 700;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn late_samples_match_a_model(ops in proptest::collection::vec(prop_oneof![
        4 => (1i64..300).prop_map(|dt| LateOp::Append { dt }),
        4 => (0usize..2, 0i64..1000).prop_map(|(i, back)| LateOp::Late { i, back }),
        1 => Just(LateOp::Maintain),
        1 => Just(LateOp::Reopen),
        1 => Just(LateOp::Close),
    ], 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = DbOptions { out_of_order_window: WINDOW, ..opts() };
        let mut db = Some(Db::open(dir.path(), o.clone()).expect("open"));
        let mut reference: [std::collections::BTreeMap<i64, u64>; 2] = Default::default();
        let mut now = 0i64;
        for op in ops {
            let d = db.take().expect("open db");
            let d = match op {
                LateOp::Append { dt } => {
                    now += dt;
                    let mut app = d.appender();
                    for (i, r) in reference.iter_mut().enumerate() {
                        app.append(&series(i), now, now as f64);
                        r.insert(now, (now as f64).to_bits());
                    }
                    prop_assert_eq!(app.commit().expect("commit").rejected(), 0);
                    d
                }
                LateOp::Late { i, back } => {
                    let t = now - back;
                    let v = t as f64 + 0.5;
                    let newest = reference[i].keys().next_back().copied();
                    let accept = t >= d.min_valid_time()
                        && match newest {
                            None => true,
                            Some(n) if t > n => true,
                            // A stored time takes only an exact repeat (accepted silently).
                            Some(n) if t >= n - WINDOW => reference[i].get(&t).is_none_or(|&sv| sv == v.to_bits()),
                            Some(_) => false,
                        };
                    let mut app = d.appender();
                    app.append(&series(i), t, v);
                    let out = app.commit().expect("commit");
                    prop_assert_eq!(out.rejected() == 0, accept, "t={} newest={:?}", t, newest);
                    if accept {
                        reference[i].insert(t, v.to_bits());
                    }
                    d
                }
                LateOp::Maintain => {
                    d.maintain().expect("maintain");
                    d
                }
                LateOp::Reopen => {
                    drop(d);
                    Db::open(dir.path(), o.clone()).expect("reopen")
                }
                LateOp::Close => {
                    d.close().expect("close");
                    Db::open(dir.path(), o.clone()).expect("reopen")
                }
            };
            let want: Vec<(Labels, Vec<(i64, u64)>)> = {
                let mut w: Vec<_> = reference
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| !r.is_empty())
                    .map(|(i, r)| (series(i), r.iter().map(|(&t, &v)| (t, v)).collect::<Vec<_>>()))
                    .collect();
                w.sort_by(|a, b| a.0.cmp(&b.0));
                w
            };
            prop_assert_eq!(all(&d), want);
            db = Some(d);
        }
    }
}

/// Label lookups take a block or the head when its time range overlaps the request
/// (Prometheus's rule), from the index alone.
#[test]
fn label_lookups_take_the_blocks_and_head_that_overlap_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let model = MemStorage::new();
    // Series 0 lives in [0, 3000) (compacted into one block), series 1 in [3000, 5000).
    for (i, ts) in [(0usize, 0..300i64), (1, 300..500)] {
        for t in ts {
            let mut app = db.appender();
            app.append(&series(i), t * 10, 1.0);
            model.add(&series(i), t * 10, 1.0).expect("model");
            app.commit().expect("commit");
        }
    }
    db.maintain().expect("maintain");
    assert!(db.blocks().iter().any(|b| b.max_time <= 3000), "a block ends by 3000: {:?}", db.blocks());
    let values =
        |matchers: &[Matcher], mint, maxt| db.label_values("i", matchers, mint, maxt).expect("values");
    let by_name = [Matcher::new(MatchOp::Regex, "__name__", "up|req_total").expect("matcher")];
    assert_eq!(values(&[], 0, 999), vec!["0"]);
    assert_eq!(values(&by_name, 0, 999), vec!["0"]);
    assert_eq!(values(&[], 4500, 4990), vec!["1"]);
    assert_eq!(values(&[], 0, 4990), vec!["0", "1"]);
    assert!(values(&[], 6000, 7000).is_empty());
    assert!(db.label_names(&[], 6000, 7000).expect("names").is_empty());
    assert_eq!(db.label_names(&by_name, 0, 999).expect("names"), vec!["__name__", "i"]);
    assert_eq!(all(&db), all(&model));
}
