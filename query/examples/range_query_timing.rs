//! Times a few range queries over synthetic counters held in `MemStorage`.
//!
//! `cargo run --release -p vigil-query --example range_query_timing -- [series] [hours]`
//! (defaults: 1000 series, 24 hours of 15s samples, queried at a 60s step).

use std::time::Instant;

use vigil_query::{Engine, EngineOptions, QueryOptions, Value};
use vigil_storage::Labels;
use vigil_storage::memory::MemStorage;

/// Scrape interval of the synthetic data (ms).
const SCRAPE_MS: i64 = 15_000;
/// Query step (ms).
const STEP_MS: i64 = 60_000;
/// Series per `instance` label value.
const SERIES_PER_INSTANCE: usize = 10;
/// Classic histogram buckets of the synthetic histogram.
const BUCKETS: &[&str] = &["0.1", "0.5", "1", "5", "+Inf"];

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let hours: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(24);
    let end = hours * 3_600_000;
    let store = MemStorage::new();
    let t0 = Instant::now();
    for s in 0..series {
        let l = Labels::from_pairs([
            ("__name__", "m".to_string()),
            ("instance", format!("i{}", s / SERIES_PER_INSTANCE)),
            ("id", s.to_string()),
        ]);
        let mut v = 0.0;
        for (k, t) in (0..=end).step_by(SCRAPE_MS as usize).enumerate() {
            v += (k % 7) as f64;
            store.add(&l, t, v).expect("in order");
        }
    }
    for (bi, le) in BUCKETS.iter().enumerate() {
        let l = Labels::from_pairs([("__name__", "h_bucket"), ("le", le)]);
        let mut v = 0.0;
        for t in (0..=end).step_by(SCRAPE_MS as usize) {
            v += (bi + 1) as f64;
            store.add(&l, t, v).expect("in order");
        }
    }
    println!("loaded {series} series x {hours}h in {:?}", t0.elapsed());
    let engine = Engine::new(EngineOptions::default());
    for q in [
        "sum by (instance) (rate(m[5m]))",
        "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
        "m",
        "avg_over_time(m[10m]) > 100",
    ] {
        let t = Instant::now();
        let r = engine.range_query(&store, q, 0, end, STEP_MS, &QueryOptions::default()).expect("query");
        let points: usize = match &r.value {
            Value::Matrix(m) => m.iter().map(|s| s.samples.len()).sum(),
            _ => 0,
        };
        println!("{q}: {:?} ({points} points)", t.elapsed());
    }
}
