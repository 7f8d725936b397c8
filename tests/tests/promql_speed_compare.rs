//! Times the benchmark queries of `benches/benches/promql.rs` over HTTP on Vigil and
//! on Prometheus 3, on the same day of data remote-written into both, and prints the
//! ratio. Ignored by default (it loads 15.8M samples); run it with a release binary:
//!
//! ```text
//! cargo build --release -p vigil-server
//! VIGIL_BIN=target/release/vigil cargo test --release -p vigil-tests \
//!     --test promql_speed_compare -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_tests::{Api, TestSeries, Vigil, diff_query_data, encode_write, peer_binary, start_prometheus};

/// Same shape as the criterion benchmark: 100 instances × 100 series of `m`, and
/// 100 instances × 10 buckets of `h_bucket`, one sample a minute for a day.
const INSTANCES: usize = 100;
const SERIES_PER_INSTANCE: usize = 100;
const BOUNDS: [&str; 10] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
const STEPS: i64 = 24 * 60;
const STEP_S: i64 = 60;
/// Minutes of data per remote-write request (time-ordered, as Prometheus's head wants).
const MINUTES_PER_REQUEST: i64 = 10;
/// Timed runs per query and server; the best is reported.
const RUNS: usize = 3;

const QUERIES: [&str; 2] =
    ["sum by (instance) (rate(m[5m]))", "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))"];

fn counter(seed: usize, i: i64) -> f64 {
    let slope = 1.0 + (seed % 17) as f64;
    i as f64 * slope + (i % 7) as f64
}

/// Label sets and the seed of each series, in the benchmark's order.
fn series() -> Vec<(Vec<(String, String)>, usize)> {
    let mut out = Vec::new();
    for inst in 0..INSTANCES {
        let instance = format!("host-{inst:03}:9100");
        for s in 0..SERIES_PER_INSTANCE {
            let l = vec![
                ("__name__".into(), "m".into()),
                ("instance".into(), instance.clone()),
                ("series".into(), s.to_string()),
            ];
            out.push((l, inst * SERIES_PER_INSTANCE + s));
        }
        let mut cumulative = 0;
        for (b, le) in BOUNDS.iter().enumerate() {
            cumulative += b + 1;
            let l = vec![
                ("__name__".into(), "h_bucket".into()),
                ("instance".into(), instance.clone()),
                ("le".into(), le.to_string()),
            ];
            out.push((l, cumulative));
        }
    }
    out
}

fn load(apis: &[&Api], start_s: i64) {
    let all = series();
    let mut first = 0;
    while first <= STEPS {
        let last = (first + MINUTES_PER_REQUEST - 1).min(STEPS);
        let batch: Vec<TestSeries<'_>> = all
            .iter()
            .map(|(l, seed)| {
                let labels = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let samples =
                    (first..=last).map(|i| ((start_s + i * STEP_S) * 1000, counter(*seed, i))).collect();
                (labels, samples)
            })
            .collect();
        let body = encode_write(&batch);
        for api in apis {
            let r = api.remote_write(body.clone());
            assert!((200..300).contains(&r.status), "remote write: HTTP {} {}", r.status, r.body);
        }
        first = last + 1;
    }
}

fn best_time(api: &Api, q: &str, start: f64, end: f64) -> (Duration, serde_json::Value) {
    let mut best = Duration::MAX;
    let mut data = serde_json::Value::Null;
    for _ in 0..RUNS {
        let t = Instant::now();
        data = api.query_range(q, start, end, STEP_S as f64);
        best = best.min(t.elapsed());
    }
    (best, data)
}

#[test]
#[ignore = "loads 15.8M samples; run by hand with a release binary"]
fn time_benchmark_queries_on_vigil_and_prometheus() {
    let Some(prometheus) = peer_binary("prometheus") else { return };
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    let start_s = (now_s - STEPS * STEP_S - 120) / 60 * 60;
    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start(&dir.path().join("vigil"));
    let config = |_: &str| "global:\n  evaluation_interval: 1m\n".to_string();
    let extra = ["--web.enable-remote-write-receiver"];
    let prom = start_prometheus(&prometheus, dir.path(), config, &extra);
    let (ours, theirs) = (vigil.api(), Api::new(&prom.url()));
    let loading = Instant::now();
    load(&[&ours, &theirs], start_s);
    println!("loaded both in {:?}", loading.elapsed());

    let (start, end) = (start_s as f64, (start_s + STEPS * STEP_S) as f64);
    for q in QUERIES {
        let (tv, a) = best_time(&ours, q, start, end);
        let (tp, b) = best_time(&theirs, q, start, end);
        let diffs = diff_query_data(&a, &b);
        println!(
            "{q}: vigil {tv:?}, prometheus {tp:?}, vigil/prometheus {:.2}, answers {}",
            tv.as_secs_f64() / tp.as_secs_f64(),
            if diffs.is_empty() { "agree".to_string() } else { format!("differ: {}", diffs[0]) }
        );
        assert!(a["result"].as_array().is_some_and(|r| !r.is_empty()), "{q}: empty answer");
    }
}
