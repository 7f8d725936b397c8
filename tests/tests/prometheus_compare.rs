//! A real Prometheus 3 scrapes itself and remote-writes into Vigil; the same queries
//! at the same evaluation times must give the same answers from both.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_tests::{Api, Vigil, diff_query_data, peer_binary, self_scrape_config, start_prometheus};

/// How long Prometheus scrapes before we compare: enough for several 1s scrapes and
/// a few remote-write batches.
const WARMUP: Duration = Duration::from_secs(25);
/// Evaluate this far in the past so remote write (1s batch deadline) has delivered.
const DELIVERY_MARGIN_S: f64 = 5.0;
/// Comparisons are retried this many times in case a batch was still in flight.
const ATTEMPTS: usize = 4;

const INSTANT_QUERIES: &[&str] = &[
    "up",
    "rate(prometheus_http_requests_total[1m])",
    "sum by (job) (rate(prometheus_tsdb_head_samples_appended_total[1m]))",
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[1m])))",
    "max_over_time(go_goroutines[30s])",
    "sum(go_memstats_alloc_bytes) / 1024",
    "topk(3, prometheus_tsdb_head_series)",
    "count by (job) ({job=\"prometheus\"})",
    "absent(no_such_metric)",
    "prometheus_build_info * on (instance) group_left up",
    "1 + 1",
];

const RANGE_QUERIES: &[&str] = &[
    "up",
    "rate(prometheus_http_requests_total{handler=\"/metrics\"}[1m])",
    "sum by (job) (rate(prometheus_tsdb_head_samples_appended_total[1m]))",
    "irate(process_cpu_seconds_total[30s])",
    "avg_over_time(go_goroutines[10s])",
];

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64().floor()
}

/// Every query must have an answer, or agreeing on nothing would pass.
fn assert_not_empty(data: &serde_json::Value, q: &str) {
    let empty = data["result"].as_array().is_some_and(|a| a.is_empty());
    assert!(!empty, "Prometheus answered {q} with nothing; the comparison would be vacuous");
}

fn compare_all(vigil: &Api, prom: &Api) -> Vec<String> {
    let t = now_s() - DELIVERY_MARGIN_S;
    let mut diffs = Vec::new();
    for q in INSTANT_QUERIES {
        let theirs = prom.query(q, t);
        assert_not_empty(&theirs, q);
        let d = diff_query_data(&vigil.query(q, t), &theirs);
        diffs.extend(d.into_iter().map(|d| format!("instant {q} @ {t}: {d}")));
    }
    for q in RANGE_QUERIES {
        let (start, end) = (t - 20.0, t);
        let d =
            diff_query_data(&vigil.query_range(q, start, end, 2.0), &prom.query_range(q, start, end, 2.0));
        diffs.extend(d.into_iter().map(|d| format!("range {q} [{start},{end}]: {d}")));
    }
    diffs
}

#[test]
fn vigil_answers_like_prometheus_on_remote_written_data() {
    let Some(prometheus) = peer_binary("prometheus") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start(&dir.path().join("vigil"));

    let config = |prom_addr: &str| self_scrape_config(prom_addr, &vigil.url(), "");
    let prom = start_prometheus(&prometheus, dir.path(), config, &[]);
    std::thread::sleep(WARMUP);

    let (vigil_api, prom_api) = (vigil.api(), Api::new(&prom.url()));
    let mut diffs = Vec::new();
    for _ in 0..ATTEMPTS {
        diffs = compare_all(&vigil_api, &prom_api);
        if diffs.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("Vigil and Prometheus differ:\n{}", diffs.join("\n"));
}
