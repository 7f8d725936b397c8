//! Db tests: commit, reopen, damage, concurrency.

use std::path::Path;

use super::*;
use crate::error::AppendError;
use crate::metadata::MetricType;
use crate::sample::STALE_NAN_BITS;
use crate::wal::segment;

fn hints(start: i64, end: i64) -> SelectHints {
    SelectHints { start, end, ..Default::default() }
}

/// Every series with samples in `[start, end]`, as (t, value bits) for exact comparison.
pub(super) fn dump_range(q: &dyn Querier, start: i64, end: i64) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let all = Matcher::new(crate::matcher::MatchOp::Regex, "__name__", ".*").expect("matcher");
    q.select(&[all], &hints(start, end))
        .expect("select")
        .into_iter()
        .map(|mut s| {
            let mut out = Vec::new();
            while let Some(x) = s.samples.next() {
                out.push((x.t, x.v.to_bits()));
            }
            (s.labels, out)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

/// Every series with all its samples.
fn dump(db: &Db) -> Vec<(Labels, Vec<(i64, u64)>)> {
    dump_range(db, i64::MIN, i64::MAX)
}

fn open(dir: &Path) -> Db {
    Db::open(dir, DbOptions::default()).expect("open")
}

fn metric(name: &str, job: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", job)])
}

#[test]
fn a_second_open_of_the_same_dir_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let err = Db::open(dir.path(), DbOptions::default()).err().expect("locked");
    assert!(err.to_string().contains("in use"), "{err}");
    db.close().expect("close");
    open(dir.path());
}

#[test]
fn db_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
}

#[test]
fn reopen_restores_samples_bit_exactly_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = [
        1.5,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(STALE_NAN_BITS),
        f64::from_bits(0x7ff8_0000_dead_beef),
    ];
    let db = open(dir.path());
    for round in 0..3i64 {
        let mut app = db.appender();
        for (i, &v) in values.iter().enumerate() {
            app.append(&metric("m", &format!("j{i}")), round * 1000 - 5_000, v);
            app.append_many(&metric("n", "x"), &[Sample::new(round * 1000 + i as i64, v)]);
        }
        app.update_metadata(
            "m",
            MetricMetadata { kind: MetricType::Gauge, help: "M.".into(), unit: "s".into() },
        );
        let out = app.commit().expect("commit");
        assert_eq!((out.appended, out.rejected()), (12, 0));
    }
    let before = dump(&db);
    assert_eq!(before.len(), 7);
    assert_eq!(db.num_samples(), 36);
    drop(db);

    let db = open(dir.path());
    assert_eq!(dump(&db), before);
    assert_eq!(db.num_samples(), 36);
    assert_eq!(
        db.metadata(),
        vec![(
            "m".to_string(),
            vec![MetricMetadata { kind: MetricType::Gauge, help: "M.".into(), unit: "s".into() }]
        )]
    );
    db.close().expect("close");
}

#[test]
fn out_of_order_and_duplicates_are_counted_within_and_across_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let l = metric("x", "a");
    let other = metric("x", "b");
    let mut app = db.appender();
    app.append(&l, 10, 1.0);
    app.append(&other, 10, 1.0);
    app.append(&l, 10, 1.0); // exact repeat in a later run of the same series
    app.append(&l, 10, 2.0);
    app.append(&l, 5, 1.0);
    app.append(&l, 20, 3.0);
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.duplicate, out.out_of_order), (4, 1, 1));
    assert_eq!(out.first_error, Some((l.clone(), 10, AppendError::DuplicateTimestamp)));

    let mut app = db.appender();
    app.append(&l, 20, 3.0);
    app.append(&l, 19, 3.0);
    app.append(&l, 20, 4.0);
    app.append(&l, 30, 4.0);
    let out = app.commit().expect("commit");
    assert_eq!((out.appended, out.duplicate, out.out_of_order), (2, 1, 1));
    let want = vec![
        (l.clone(), vec![(10, 1.0f64.to_bits()), (20, 3.0f64.to_bits()), (30, 4.0f64.to_bits())]),
        (other, vec![(10, 1.0f64.to_bits())]),
    ];
    assert_eq!(dump(&db), want);
    drop(db);
    assert_eq!(dump(&open(dir.path())), want);
}

/// Damages a segment's bytes.
type Damage = fn(Vec<u8>) -> Vec<u8>;

/// Ways a WAL segment gets damaged.
const DAMAGE: [(&str, Damage); 3] = [
    ("truncated mid-record", |mut d| {
        d.truncate(d.len() - 4);
        d
    }),
    ("garbage appended", |mut d| {
        d.extend_from_slice(&[0x07, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 1, 2]);
        d
    }),
    ("flipped byte in the last record", |mut d| {
        let i = d.len() - 3;
        d[i] ^= 0x20;
        d
    }),
];

#[test]
fn damaged_wal_tail_keeps_earlier_commits_and_the_db_stays_writable() {
    for (what, damage) in DAMAGE {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        for t in 0..10 {
            let mut app = db.appender();
            app.append(&metric("m", "a"), t, t as f64);
            app.commit().expect("commit");
        }
        drop(db);
        let wal_dir = dir.path().join(WAL_DIR);
        let last = *segment::list(&wal_dir).expect("list").last().expect("segment");
        let path = segment::path(&wal_dir, last);
        std::fs::write(&path, damage(std::fs::read(&path).expect("read"))).expect("damage");

        let db = open(dir.path());
        // Garbage after intact records loses nothing; damage inside the last record loses it.
        let kept = if what == "garbage appended" { 10 } else { 9 };
        let want: Vec<_> = (0..kept).map(|t| (t, (t as f64).to_bits())).collect();
        assert_eq!(dump(&db), vec![(metric("m", "a"), want.clone())], "{what}");
        let mut app = db.appender();
        app.append(&metric("m", "a"), 10, 99.0);
        app.append(&metric("m", "b"), 10, 1.0);
        assert_eq!(app.commit().expect("commit").appended, 2, "{what}");
        db.close().expect("close");

        let db = open(dir.path());
        let mut want_a = want;
        want_a.push((10, 99.0f64.to_bits()));
        assert_eq!(
            dump(&db),
            vec![(metric("m", "a"), want_a), (metric("m", "b"), vec![(10, 1.0f64.to_bits())])],
            "{what}"
        );
    }
}

#[test]
fn segments_roll_and_replay_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DbOptions { sync: SyncPolicy::Always, segment_size: 256, ..Default::default() };
    let db = Db::open(dir.path(), opts.clone()).expect("open");
    for t in 0..200 {
        let mut app = db.appender();
        app.append(&metric("m", &format!("{}", t % 7)), t, t as f64);
        app.commit().expect("commit");
    }
    db.sync().expect("sync");
    let before = dump(&db);
    drop(db);
    assert!(segment::list(&dir.path().join(WAL_DIR)).expect("list").len() > 10);
    let db = Db::open(dir.path(), opts).expect("reopen");
    assert_eq!(dump(&db), before);
}

#[test]
fn concurrent_commits_replay_to_the_same_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    std::thread::scope(|scope| {
        for worker in 0..4i64 {
            let db = &db;
            scope.spawn(move || {
                for batch in 0..50i64 {
                    let mut app = db.appender();
                    for s in 0..20i64 {
                        // Workers overlap on series and race on timestamps, so some
                        // samples are refused; the WAL must record exactly the accepted ones.
                        let labels = metric("race", &format!("{}", (s + worker) % 10));
                        app.append(&labels, batch * 10 + (s + worker) % 3, (worker * 1000 + s) as f64);
                    }
                    app.commit().expect("commit");
                }
            });
        }
    });
    let before = dump(&db);
    assert_eq!(before.len(), 10);
    drop(db);
    assert_eq!(dump(&open(dir.path())), before);
}

mod crash {
    use proptest::prelude::*;

    use super::*;
    use crate::memory::MemStorage;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Random commits, then the WAL cut at a random byte (a crash mid-write): every
        /// commit that ended before the cut is restored exactly, and every series holds
        /// a prefix of what was committed to it.
        #[test]
        fn a_cut_wal_restores_every_commit_before_the_cut(
            commits in prop::collection::vec(
                prop::collection::vec((0usize..5, 0i64..50, prop_oneof![Just(STALE_NAN_BITS), 0u64..4]), 1..20),
                1..15),
            cut_fraction in 0.0f64..1.0,
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = open(dir.path());
            let wal_dir = dir.path().join(WAL_DIR);
            let segment = segment::path(&wal_dir, *segment::list(&wal_dir).expect("list").last().expect("one"));
            let model = MemStorage::new();
            let mut ends = Vec::new();
            for commit in &commits {
                let mut app = db.appender();
                for &(s, t, v) in commit {
                    app.append(&metric("m", &s.to_string()), t, f64::from_bits(v));
                }
                app.commit().expect("commit");
                ends.push(std::fs::metadata(&segment).expect("meta").len());
            }
            let full = dump(&db);
            drop(db);

            let total = *ends.last().expect("commits");
            let cut = (total as f64 * cut_fraction) as u64;
            std::fs::OpenOptions::new().write(true).open(&segment).expect("open").set_len(cut).expect("cut");
            for (commit, &end) in commits.iter().zip(&ends) {
                if end > cut {
                    break;
                }
                let mut app = model.appender();
                for &(s, t, v) in commit {
                    app.append(&metric("m", &s.to_string()), t, f64::from_bits(v));
                }
                app.commit().expect("model commit");
            }

            let db = open(dir.path());
            let restored = dump(&db);
            let all = Matcher::new(crate::matcher::MatchOp::Regex, "__name__", ".*").expect("matcher");
            let before_cut: Vec<_> = model
                .select(&[all], &hints(i64::MIN, i64::MAX))
                .expect("select")
                .into_iter()
                .map(|mut s| {
                    let mut out = Vec::new();
                    while let Some(x) = s.samples.next() {
                        out.push((x.t, x.v.to_bits()));
                    }
                    (s.labels, out)
                })
                .collect();
            for (labels, samples) in &before_cut {
                let got = restored.iter().find(|(l, _)| l == labels).map(|(_, s)| s.clone()).unwrap_or_default();
                prop_assert!(got.starts_with(samples), "{labels}: {got:?} lacks {samples:?}");
            }
            for (labels, samples) in &restored {
                let committed = full.iter().find(|(l, _)| l == labels).map(|(_, s)| s.clone()).unwrap_or_default();
                prop_assert!(committed.starts_with(samples), "{labels}: {samples:?} not a prefix of {committed:?}");
            }
        }
    }
}
