//! PromQL range queries over 10,000 series of one hour at 15s (2.4M samples) in a real
//! `Db`: a rate-and-sum dashboard panel and a `histogram_quantile` over the same data
//! shape, evaluated by `Engine::range_query` at a 15s step.
//!
//! Run with `cargo bench -p vigil-bench --bench promql`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_query::{Engine, EngineOptions, QueryOptions};
use vigil_storage::{Appendable, Db, DbOptions, Labels};

/// Series in the store.
const SERIES: usize = 10_000;
/// Distinct `instance` values (100 series each).
const INSTANCES: usize = 100;
/// Histogram bucket bounds; `le` splits each instance's series into buckets.
const BUCKETS: [&str; 10] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
/// Scrape interval (ms).
const STEP_MS: i64 = 15_000;
/// Samples per series: one hour at 15s.
const SAMPLES: i64 = 240;
/// Start of the data (ms).
const T0: i64 = 1_700_000_000_000;

fn load(db: &Db) {
    let series: Vec<Labels> = (0..SERIES)
        .map(|i| {
            let (instance, handler, bucket) =
                (i % INSTANCES, (i / INSTANCES) / BUCKETS.len(), i % BUCKETS.len());
            Labels::from_pairs([
                ("__name__", "bench_request_duration_seconds_bucket".to_string()),
                ("handler", format!("/h{handler}")),
                ("instance", format!("inst-{instance}")),
                ("job", "bench".to_string()),
                ("le", BUCKETS[bucket].to_string()),
            ])
        })
        .collect();
    for k in 0..SAMPLES {
        let mut app = db.appender();
        for (i, l) in series.iter().enumerate() {
            // Cumulative buckets: a larger `le` counts more requests.
            let per_scrape = (1 + i % BUCKETS.len()) as f64 * (1 + i % 7) as f64;
            app.append(l, T0 + k * STEP_MS, k as f64 * per_scrape);
        }
        app.commit().expect("commit");
    }
}

fn bench_range_queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    load(&db);
    let engine = Engine::new(EngineOptions::default());
    let (start, end) = (T0 + 10 * 60_000, T0 + (SAMPLES - 1) * STEP_MS);
    let mut group = c.benchmark_group("promql_range_10k_series");
    group.sample_size(10);
    for (name, q) in [
        ("sum_by_instance_rate", "sum by (instance) (rate(bench_request_duration_seconds_bucket[5m]))"),
        (
            "histogram_quantile_by_le",
            "histogram_quantile(0.95, sum by (le) (rate(bench_request_duration_seconds_bucket[5m])))",
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = engine.range_query(&db, black_box(q), start, end, STEP_MS, &QueryOptions::default());
                black_box(r.expect("query"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_range_queries);
criterion_main!(benches);
