//! Restart tests: the head snapshot written at a graceful close, its fallbacks, and
//! crash replay after it.

use std::path::Path;
use std::time::Instant;

use super::tests::dump_range;
use super::*;

fn dump(db: &Db) -> Vec<(Labels, Vec<(i64, u64)>)> {
    dump_range(db, i64::MIN, i64::MAX)
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
