//! PromQL range queries over a day of data on the real head storage: the dashboard
//! panel `sum by (instance) (rate(m[5m]))` over 10,000 series, and a latency
//! heatmap's `histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))`.
//!
//! Run with `cargo bench -p vigil-bench --bench promql`. The same data and queries on
//! Prometheus over HTTP: `tests/tests/promql_speed_compare.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_query::{Engine, QueryOptions};
use vigil_storage::{Appendable, Db, DbOptions, Labels, Sample};

/// Instances; `m` has SERIES_PER_INSTANCE series on each, 10,000 in all.
const INSTANCES: usize = 100;
/// Series of `m` per instance.
const SERIES_PER_INSTANCE: usize = 100;
/// Bucket bounds of the histogram `h` (one `h_bucket` series per instance and bound).
const BOUNDS: [&str; 10] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
/// One day of data.
const SPAN_MS: i64 = 24 * 3600 * 1000;
/// Data interval and query step: one minute.
const STEP_MS: i64 = 60_000;
/// Series written per commit.
const COMMIT_SERIES: usize = 500;

/// Counter samples for a day: a per-series slope with a little wobble.
fn counter(seed: usize) -> Vec<Sample> {
    let slope = 1.0 + (seed % 17) as f64;
    (0..=SPAN_MS / STEP_MS).map(|i| Sample::new(i * STEP_MS, (i as f64) * slope + (i % 7) as f64)).collect()
}

fn load(db: &Db) {
    let mut series: Vec<(Labels, Vec<Sample>)> = Vec::new();
    for inst in 0..INSTANCES {
        let instance = format!("host-{inst:03}:9100");
        for s in 0..SERIES_PER_INSTANCE {
            let labels = Labels::from_pairs([
                ("__name__", "m".to_string()),
                ("instance", instance.clone()),
                ("series", s.to_string()),
            ]);
            series.push((labels, counter(inst * SERIES_PER_INSTANCE + s)));
        }
        let mut cumulative = 0usize;
        for (b, le) in BOUNDS.iter().enumerate() {
            cumulative += b + 1;
            let labels = Labels::from_pairs([
                ("__name__", "h_bucket".to_string()),
                ("instance", instance.clone()),
                ("le", le.to_string()),
            ]);
            series.push((labels, counter(cumulative)));
        }
    }
    for chunk in series.chunks(COMMIT_SERIES) {
        let mut app = db.appender();
        for (labels, samples) in chunk {
            app.append_many(labels, samples);
        }
        app.commit().expect("commit");
    }
}

fn bench_promql(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    load(&db);
    let engine = Engine::default();
    let opts = QueryOptions::default();
    let mut group = c.benchmark_group("promql_range_1d_step60s");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, query) in [
        ("sum_by_instance_rate_10k_series", "sum by (instance) (rate(m[5m]))"),
        ("histogram_quantile_sum_by_le_rate", "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = engine.range_query(&db, query, 0, SPAN_MS, STEP_MS, &opts).expect("query");
                black_box(r)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_promql);
criterion_main!(benches);
