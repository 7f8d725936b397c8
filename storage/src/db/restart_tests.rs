//! Restart tests: the head snapshot written at a graceful close, its fallbacks, and
//! crash replay after it.

use std::path::Path;
use std::time::Instant;

use super::tests::dump_range;
use super::*;
use crate::head::snapshot::FILE_NAME as SNAPSHOT;
use crate::matcher::MatchOp;
use crate::memory::MemStorage;
use crate::metadata::MetricType;
use crate::sample::STALE_NAN_BITS;

fn dump(q: &dyn Querier) -> Vec<(Labels, Vec<(i64, u64)>)> {
    dump_range(q, i64::MIN, i64::MAX)
}

fn open(dir: &Path) -> Db {
    Db::open(dir, DbOptions::default()).expect("open")
}

/// Labels of the `i`th synthetic series.
fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 50).as_str()),
        ("instance", format!("host-{}", i / 50).as_str()),
        ("job", "node"),
    ])
}

/// Appends one sample per series at each of `steps` scrapes, 15 s apart from `start`,
/// in commits of `per_commit` samples, as remote-write requests arrive.
fn load(db: &Db, n: usize, start: i64, steps: i64, per_commit: usize) {
    let labels: Vec<Labels> = (0..n).map(series).collect();
    for step in 0..steps {
        let t = start + step * 15_000;
        for part in labels.chunks(per_commit) {
            let mut app = db.appender();
            for (i, l) in part.iter().enumerate() {
                app.append(l, t, ((step as usize * 31 + i * 7) % 1000) as f64 / 8.0);
            }
            app.commit().expect("commit");
        }
    }
}

/// Appends `t` for series 0..n (value from both) to `db` and `model`.
fn append_all(db: &Db, model: &MemStorage, n: usize, ts: impl IntoIterator<Item = i64>) {
    for t in ts {
        let mut app = db.appender();
        for i in 0..n {
            let v = (t / 100) as f64 * 0.5 + i as f64;
            app.append(&series(i), t, v);
            model.add(&series(i), t, v).expect("model");
        }
        assert_eq!(app.commit().expect("commit").rejected(), 0);
    }
}

fn snapshot_exists(dir: &Path) -> bool {
    dir.join(SNAPSHOT).exists()
}

#[test]
fn a_graceful_close_writes_a_snapshot_that_restores_the_head_bit_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DbOptions { out_of_order_window: 10_000, ..DbOptions::default() };
    let db = Db::open(dir.path(), opts.clone()).expect("open");
    let odd = [f64::from_bits(STALE_NAN_BITS), f64::from_bits(0x7ff8_0000_dead_beef), -0.0, f64::INFINITY];
    for t in 0..300i64 {
        let mut app = db.appender();
        for i in 0..5 {
            let v = if t % 37 == 0 {
                odd[(t as usize / 37 + i) % odd.len()]
            } else {
                (t * i as i64) as f64 / 3.0
            };
            app.append(&series(i), t * 1000, v);
        }
        app.update_metadata(
            "metric_1",
            MetricMetadata { kind: MetricType::Counter, help: "H.".into(), unit: "".into() },
        );
        app.commit().expect("commit");
    }
    // A late sample (out-of-order window) and a deletion that leaves the newest sample.
    let mut app = db.appender();
    app.append(&series(0), 299_000 - 500, 42.0);
    app.commit().expect("commit");
    let m = [Matcher::new(MatchOp::Equal, "__name__", "metric_2").expect("matcher")];
    db.delete_series(&m, 290_000, i64::MAX).expect("delete");
    let before = dump(&db);
    let (series_n, samples) = (db.num_series(), db.num_samples());
    db.close().expect("close");
    assert!(snapshot_exists(dir.path()));

    let db = Db::open(dir.path(), opts.clone()).expect("reopen");
    assert_eq!(dump(&db), before);
    assert_eq!((db.num_series(), db.num_samples()), (series_n, samples));
    assert_eq!(
        db.metadata(),
        vec![(
            "metric_1".to_string(),
            vec![MetricMetadata { kind: MetricType::Counter, help: "H.".into(), unit: "".into() }]
        )]
    );
    // The append rules survive: the deleted series still refuses what precedes its
    // newest sample ever stored; the others take a new sample.
    let mut app = db.appender();
    app.append(&series(2), 280_000, 1.0);
    app.append(&series(1), 300_000, 1.0);
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.out_of_order), (1, 1));
    let after = dump(&db);
    drop(db);
    // A crash now: the snapshot plus the WAL after it give the same head.
    let db = Db::open(dir.path(), opts).expect("reopen after crash");
    assert_eq!(dump(&db), after);
}

#[test]
fn a_damaged_or_foreign_snapshot_is_ignored_and_the_wal_replayed() {
    for damage in ["flip", "truncate", "version", "garbage", "torn write"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        load(&db, 20, 0, 200, 7);
        let before = dump(&db);
        db.close().expect("close");
        let path = dir.path().join(SNAPSHOT);
        let mut bytes = std::fs::read(&path).expect("read");
        match damage {
            "flip" => {
                let i = bytes.len() / 2;
                bytes[i] ^= 0x10;
            }
            "truncate" => bytes.truncate(bytes.len() - 9),
            "version" => bytes[4] = 99,
            "torn write" => {
                // A crash while writing a newer snapshot leaves its temporary file.
                std::fs::write(dir.path().join(crate::head::snapshot::TMP_NAME), &bytes[..bytes.len() / 2])
                    .expect("write tmp");
                std::fs::remove_file(&path).expect("rm");
            }
            _ => bytes = b"not a snapshot at all".to_vec(),
        }
        if damage != "torn write" {
            std::fs::write(&path, &bytes).expect("write");
        }
        let db = open(dir.path());
        assert_eq!(dump(&db), before, "{damage}");
        assert!(!snapshot_exists(dir.path()), "{damage}: the bad snapshot is removed");
        assert!(!dir.path().join(crate::head::snapshot::TMP_NAME).exists());
    }
}

#[test]
fn writes_after_the_snapshot_are_replayed_on_top_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = MemStorage::new();
    let db = open(dir.path());
    append_all(&db, &model, 6, (0..50).map(|i| i * 100));
    db.write_head_snapshot().expect("snapshot");
    // Commits still arriving after the snapshot (same segment), then a crash.
    append_all(&db, &model, 8, (50..80).map(|i| i * 100));
    drop(db);
    let db = open(dir.path());
    assert_eq!(dump(&db), dump(&model));
    // A graceful close, a restart, more writes, a crash: each sample once.
    db.close().expect("close");
    let db = open(dir.path());
    append_all(&db, &model, 9, (80..120).map(|i| i * 100));
    drop(db);
    let db = open(dir.path());
    assert_eq!(dump(&db), dump(&model));
    assert_eq!(db.num_samples(), dump(&model).iter().map(|(_, s)| s.len() as u64).sum::<u64>());
}

#[test]
fn deletions_after_the_snapshot_stay_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = MemStorage::new();
    let db = open(dir.path());
    append_all(&db, &model, 4, (0..60).map(|i| i * 100));
    db.close().expect("close");
    let db = open(dir.path());
    let m = [Matcher::new(MatchOp::Regex, "instance", "host-0").expect("matcher")];
    db.delete_series(&m, 1000, 4000).expect("delete");
    model.delete(&m, 1000, 4000);
    drop(db);
    let db = open(dir.path());
    assert_eq!(dump(&db), dump(&model), "after a crash");
    db.close().expect("close");
    let db = open(dir.path());
    assert_eq!(dump(&db), dump(&model), "after a graceful restart");
}

#[test]
fn a_snapshot_whose_wal_was_checkpointed_since_is_stale_and_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = MemStorage::new();
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("open");
    append_all(&db, &model, 4, (0..20).map(|i| i * 100));
    db.close().expect("close");
    let old = std::fs::read(dir.path().join(SNAPSHOT)).expect("read snapshot");
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("reopen");
    // Cuts blocks and checkpoints the WAL past the snapshot, then deletes: a stale
    // snapshot would bring back both the cut and the deleted samples.
    append_all(&db, &model, 4, (20..60).map(|i| i * 100));
    db.maintain().expect("maintain");
    assert!(db.min_valid_time() > 0, "a block was cut");
    let m = [Matcher::new(MatchOp::Equal, "instance", "host-0").expect("matcher")];
    db.delete_series(&m, 0, 5500).expect("delete");
    model.delete(&m, 0, 5500);
    drop(db);
    // As if the crash came before the snapshot the cut asks for was written.
    std::fs::write(dir.path().join(SNAPSHOT), &old).expect("put the old snapshot back");
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("reopen after crash");
    assert_eq!(dump(&db), dump(&model));
    assert!(!snapshot_exists(dir.path()), "the stale snapshot is removed");
}

#[test]
fn a_cut_writes_a_fresh_snapshot_and_a_crash_after_it_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = MemStorage::new();
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("open");
    append_all(&db, &model, 4, (0..60).map(|i| i * 100));
    let report = db.maintain().expect("maintain");
    assert!(report.blocks_cut > 0 && report.head_snapshot, "{report:?}");
    append_all(&db, &model, 4, (60..70).map(|i| i * 100));
    drop(db);
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("reopen after crash");
    assert_eq!(dump(&db), dump(&model));
}

#[test]
fn snapshots_written_while_commits_go_on_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = std::sync::Arc::new(MemStorage::new());
    let db = std::sync::Arc::new(open(dir.path()));
    let writer = {
        let (db, model) = (db.clone(), model.clone());
        std::thread::spawn(move || {
            for t in 0..400i64 {
                let mut app = db.appender();
                for i in 0..(3 + (t as usize % 5)) {
                    app.append(&series(i), t * 10, (t * i as i64) as f64);
                    model.add(&series(i), t * 10, (t * i as i64) as f64).expect("model");
                }
                assert_eq!(app.commit().expect("commit").rejected(), 0);
                if t % 97 == 0 {
                    let m = [Matcher::new(MatchOp::Equal, "__name__", "metric_1").expect("matcher")];
                    db.delete_series(&m, t * 10 - 300, t * 10 - 100).expect("delete");
                    model.delete(&m, t * 10 - 300, t * 10 - 100);
                }
            }
        })
    };
    let mut snapshots = 0;
    while !writer.is_finished() {
        db.snapshot_running().expect("snapshot");
        snapshots += 1;
    }
    writer.join().expect("writer");
    assert!(snapshots > 1);
    let want = dump(&*db);
    assert_eq!(want, dump(&*model));
    drop(db);
    let db = open(dir.path());
    assert_eq!(dump(&db), want);
    let samples: u64 = want.iter().map(|(_, s)| s.len() as u64).sum();
    assert_eq!(db.num_samples(), samples, "no sample counted twice");
}

#[test]
fn a_snapshot_taken_after_a_cut_drops_what_blocks_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = MemStorage::new();
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("open");
    // 150 samples: a full chunk (120) that the cut leaves straddling its boundary.
    append_all(&db, &model, 3, (0..150).map(|i| i * 30));
    db.maintain().expect("maintain");
    assert!(db.min_valid_time() > 0);
    append_all(&db, &model, 3, (150..170).map(|i| i * 30));
    drop(db);
    // The head a WAL replay builds (the chunks the running head kept across the cut
    // are not replayed) is what the snapshot must give too.
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("reopen after crash");
    let replayed = db.num_samples();
    db.close().expect("close");
    let db = Db::open(dir.path(), super::block_tests::opts()).expect("reopen");
    assert_eq!(dump(&db), dump(&model));
    assert_eq!(db.num_samples(), replayed, "the head holds only what blocks do not");
    append_all(&db, &model, 3, (52..90).map(|i| i * 100));
    db.maintain().expect("maintain");
    assert_eq!(dump(&db), dump(&model));
    let blocks: u64 = db
        .blocks
        .read()
        .iter()
        .map(|b| {
            let all = Matcher::new(MatchOp::Regex, "__name__", ".+").expect("matcher");
            b.select(&[all], i64::MIN, i64::MAX)
                .expect("select")
                .iter()
                .map(|(_, s)| s.len() as u64)
                .sum::<u64>()
        })
        .sum();
    let expected: usize =
        dump(&model).iter().map(|(_, s)| s.iter().filter(|(t, _)| *t < db.min_valid_time()).count()).sum();
    assert_eq!(blocks, expected as u64, "blocks hold each sample once");
}

/// Restart speed on the load harness's shape (run with `--release --ignored`): prints
/// the crash (WAL replay) and graceful (snapshot) open times.
#[test]
#[ignore = "a measurement: cargo test --release -p vigil-storage restart_speed -- --ignored --nocapture"]
fn restart_speed() {
    let (n, steps) = (10_000, 720);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    load(&db, n, 0, steps, 2_500);
    let want = db.num_samples();
    assert_eq!(want, (n as i64 * steps) as u64);
    drop(db);
    for round in 0..6 {
        let t = Instant::now();
        let db = open(dir.path());
        let took = t.elapsed();
        assert_eq!(db.num_samples(), want);
        println!("crash replay {round}: {took:?}, {:.1} M samples/s", want as f64 / took.as_secs_f64() / 1e6);
        drop(db);
    }
    for round in 0..3 {
        let db = open(dir.path());
        let t = Instant::now();
        db.close().expect("close");
        let wrote = t.elapsed();
        let t = Instant::now();
        let db = open(dir.path());
        let took = t.elapsed();
        assert_eq!(db.num_samples(), want);
        println!("graceful {round}: snapshot written in {wrote:?}, opened in {took:?}");
        drop(db);
    }
}
