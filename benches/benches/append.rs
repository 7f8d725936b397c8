//! Write-path throughput of `Db`: commits of remote-write-sized batches, WAL included.
//!
//! Run with `cargo bench -p vigil-bench --bench append`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_storage::{Appendable, Db, DbOptions, Labels};

/// Series written per round: a node-exporter-sized fleet of 100 hosts × 100 metrics.
const SERIES: usize = 10_000;

/// Samples per commit, about what one remote-write request carries.
const BATCH: usize = 1_000;

/// Scrape interval in ms.
const INTERVAL_MS: i64 = 15_000;

fn fleet() -> Vec<Labels> {
    (0..SERIES)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 100)),
                ("instance", format!("host-{}:9100", i / 100)),
                ("job", "node".to_string()),
            ])
        })
        .collect()
}

fn bench_append(c: &mut Criterion) {
    let series = fleet();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    let mut round = 0i64;
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(SERIES as u64));
    group.sample_size(20);
    // Each iteration writes one sample to every series, as a decoder would hand them
    // over: fresh label sets (not shared with the head's) in batches of BATCH.
    group.bench_function("commit_1000_sample_batches", |b| {
        b.iter(|| {
            round += 1;
            for batch in series.chunks(BATCH) {
                let mut app = db.appender();
                for l in batch {
                    let fresh = Labels::from_sorted_unchecked(l.to_vec());
                    app.append(&fresh, round * INTERVAL_MS, round as f64);
                }
                black_box(app.commit().expect("commit"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
