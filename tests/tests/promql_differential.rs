//! The same synthetic data remote-written into Vigil and into a real Prometheus 3;
//! every query of `tests/promql-differential-queries.txt` must give the same answer
//! from both (floats within a relative 1e-9, the same warnings and infos), instant and
//! range, or an error of the same type from both.

use std::time::{SystemTime, UNIX_EPOCH};

use vigil_tests::{Api, TestSeries, Vigil, diff_query_data, encode_write, peer_binary, start_prometheus};

/// Scrape-like interval of the synthetic data.
const STEP_S: i64 = 15;
/// How much data: 50 minutes, inside the hour Prometheus's head takes without question.
const SPAN_S: i64 = 50 * 60;
/// The data ends this far before now, so nothing is in the future for either server.
const END_MARGIN_S: i64 = 120;
/// Step of the range queries: not a multiple of the data interval, to test alignment.
const RANGE_STEP_S: i64 = 37;
/// Bits of Prometheus's stale marker (a NaN with a fixed payload).
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Engine feature both servers run with, so the experimental functions are compared too.
const EXPERIMENTAL: &str = "--enable-feature=promql-experimental-functions";

/// A warning Prometheus added after 3.5 (the peer here) and the newer test scripts
/// expect; Vigil gives it, 3.5 does not.
const NEWER_THAN_3_5: &str = "sort is ineffective for range queries";

/// Invalid queries whose error text (position included) must be Prometheus's, word
/// for word: Grafana shows it to the user.
const PARSE_ERRORS: &[&str] = &[
    "sum(rate(x[5m])",
    "x)",
    "foo{",
    "foo{a=\"b}",
    "x $ y",
    "x[5m",
    "x]",
    "x{a=\"b\";}",
    "rate(x)",
    "rate(foo(x))",
    "{__name__=~\".*\"}",
    "holt_winters(x[5m], 0.5, 0.5)",
    "sum(x[5m])",
    "topk(\"a\", x)",
    "rate(x[5m]",
    "quantile_over_time(x[5m])",
    "x +",
    "sum(rate(dt_requests_total[5m])) /",
];

/// Queries whose `format_query` and `parse_query` answers must be Prometheus's.
const SYNTAX_TOOLS: &[&str] = &[
    "sum by (job) (rate(dt_requests_total{code=~\"5..\"}[5m] offset 1m))",
    "a / on (b) group_left (c) d",
    "topk(3, x @ end()) > bool 2",
    "max_over_time(x[10m:30s] @ 1700000000)",
    "-x or y and z unless w",
    "histogram_quantile(0.9, sum without (instance) (rate(h_bucket[5m])))",
    "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")",
    "x{a=~`\\d+`, b!=\"c\"}",
];

/// The shape of an object: its keys, recursively (values such as timings differ).
fn keys(j: &serde_json::Value) -> Vec<String> {
    match j.as_object() {
        Some(o) => o
            .iter()
            .flat_map(|(k, v)| {
                std::iter::once(k.clone()).chain(keys(v).into_iter().map(move |s| format!("{k}.{s}")))
            })
            .collect(),
        None => Vec::new(),
    }
}

/// A deterministic generator (64-bit LCG), so both servers get identical data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

type Owned = (Vec<(String, String)>, Vec<(i64, f64)>);

fn series(name: &str, labels: &[(&str, &str)], samples: Vec<(i64, f64)>) -> Owned {
    let mut l = vec![("__name__".to_string(), name.to_string())];
    l.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l.sort();
    (l, samples)
}

/// Counters with resets, gauges, classic histograms, a series that goes stale and
/// comes back, one with gaps longer than the lookback, and an info metric.
fn synthetic(start_ms: i64) -> Vec<Owned> {
    let n = SPAN_S / STEP_S;
    let t = |i: i64| start_ms + i * STEP_S * 1000;
    let mut rng = Lcg(42);
    let mut out = Vec::new();
    for job in ["api", "web"] {
        for instance in ["a", "b", "c"] {
            for code in ["200", "500"] {
                let mut v = 0.0;
                let mut s = Vec::new();
                for i in 0..n {
                    v += (rng.next() * 10.0).floor();
                    if rng.next() < 0.02 {
                        v = (rng.next() * 3.0).floor();
                    }
                    s.push((t(i), v));
                }
                let l = [("job", job), ("instance", instance), ("code", code)];
                out.push(series("dt_requests_total", &l, s));
            }
            let g = (0..n).map(|i| (t(i), 20.0 * (i as f64 / 17.0).sin() + rng.next() * 3.0 - 5.0)).collect();
            out.push(series("dt_temperature_celsius", &[("job", job), ("instance", instance)], g));
            let info = (0..n).map(|i| (t(i), 1.0)).collect();
            let version = if instance == "c" { "2.0" } else { "1.0" };
            out.push(series(
                "dt_build_info",
                &[("job", job), ("instance", instance), ("version", version)],
                info,
            ));
        }
        // A classic histogram: cumulative buckets, sum and count, with one reset.
        let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
        let mut counts = [0.0f64; 6];
        let mut sum = 0.0;
        let mut per_bucket: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 6];
        let (mut sums, mut totals) = (Vec::new(), Vec::new());
        for i in 0..n {
            if i == n / 2 && job == "web" {
                counts = [0.0; 6];
                sum = 0.0;
            }
            for _ in 0..(rng.next() * 20.0) as usize {
                let obs = rng.next() * rng.next() * 1.5;
                sum += obs;
                let first = bounds.iter().position(|b| b.parse::<f64>().is_ok_and(|b| obs <= b)).unwrap_or(5);
                for c in counts.iter_mut().skip(first) {
                    *c += 1.0;
                }
            }
            for (b, c) in counts.iter().enumerate() {
                per_bucket[b].push((t(i), *c));
            }
            sums.push((t(i), sum));
            totals.push((t(i), counts[5]));
        }
        for (b, s) in bounds.iter().zip(per_bucket) {
            out.push(series("dt_latency_seconds_bucket", &[("job", job), ("le", b)], s));
        }
        out.push(series("dt_latency_seconds_sum", &[("job", job)], sums));
        out.push(series("dt_latency_seconds_count", &[("job", job)], totals));
    }
    // Goes stale (explicit marker) at a third, comes back at two thirds.
    let stale = f64::from_bits(STALE_NAN_BITS);
    let mut flappy = Vec::new();
    for i in 0..n {
        if i < n / 3 || i >= 2 * n / 3 {
            flappy.push((t(i), (i % 7) as f64));
        } else if i == n / 3 {
            flappy.push((t(i), stale));
        }
    }
    out.push(series("dt_flappy", &[("instance", "a")], flappy));
    // Missing samples: gaps of 2 and 8 minutes.
    let gappy =
        (0..n).filter(|i| !(40..48).contains(i) && !(100..132).contains(i)).map(|i| (t(i), i as f64 * 0.5));
    out.push(series("dt_gappy", &[("instance", "b")], gappy.collect()));
    // Prometheus breaks ties (topk, limitk) by its series order, which is the order
    // series were created; Vigil's is label order. Creating them in label order makes
    // the two agree, so the comparison tests the algorithms rather than that order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn load(api: &Api, data: &[Owned]) {
    let borrowed: Vec<TestSeries<'_>> = data
        .iter()
        .map(|(l, s)| (l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(), s.clone()))
        .collect();
    let r = api.remote_write(encode_write(&borrowed));
    assert!((200..300).contains(&r.status), "remote write: HTTP {} {}", r.status, r.body);
}

/// The queries, one per line; blank lines and `#` comments are skipped.
fn queries() -> Vec<String> {
    let text = include_str!("../promql-differential-queries.txt");
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

/// Compares one request's answers: both errors (same type), or equal data.
fn compare(ours: &Api, theirs: &Api, path: &str, params: &[(&str, &str)]) -> Option<String> {
    let (a, b) = (ours.get(path, params).json(), theirs.get(path, params).json());
    if b["status"] != "success" || a["status"] != "success" {
        if a["status"] == b["status"] && a["errorType"] == b["errorType"] {
            return None;
        }
        return Some(format!("vigil {a} vs prometheus {b}"));
    }
    let mut diffs = diff_query_data(&a["data"], &b["data"]);
    for field in ["warnings", "infos"] {
        let list = |j: &serde_json::Value| {
            let mut v: Vec<String> = j[field]
                .as_array()
                .map(|a| a.iter().map(|x| x.to_string()).filter(|w| !w.contains(NEWER_THAN_3_5)).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        if list(&a) != list(&b) {
            diffs.push(format!("{field}: vigil {:?} vs prometheus {:?}", list(&a), list(&b)));
        }
    }
    (!diffs.is_empty()).then(|| diffs.into_iter().take(5).collect::<Vec<_>>().join("; "))
}

#[test]
fn vigil_answers_every_query_as_prometheus_does() {
    let Some(prometheus) = peer_binary("prometheus") else { return };
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    let end_s = (now_s - END_MARGIN_S) / 60 * 60;
    let start_s = end_s - SPAN_S;
    let data = synthetic(start_s * 1000);

    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start_with_args(&dir.path().join("vigil"), &[EXPERIMENTAL]);
    let config = |_: &str| "global:\n  evaluation_interval: 1m\n".to_string();
    let extra = [
        "--web.enable-remote-write-receiver",
        EXPERIMENTAL,
        // Duration expressions (`[5m+1m]`) are behind this flag in Prometheus 3.5.
        "--enable-feature=promql-duration-expr",
    ];
    let prom = start_prometheus(&prometheus, dir.path(), config, &extra);
    let (ours, theirs) = (vigil.api(), Api::new(&prom.url()));
    load(&ours, &data);
    load(&theirs, &data);

    let all = queries();
    assert!(all.len() >= 300, "only {} queries", all.len());
    // `VIGIL_DIFF_FILTER=text` runs only the queries containing `text` (for debugging).
    let filter = std::env::var("VIGIL_DIFF_FILTER").unwrap_or_default();
    let queries: Vec<&String> = all.iter().filter(|q| q.contains(filter.as_str())).collect();
    let instants = [end_s, end_s - 17 * 60 - 7, start_s + 25 * 60];
    let (rs, re, st) = ((start_s + 5 * 60).to_string(), end_s.to_string(), RANGE_STEP_S.to_string());
    let (as_, ae) = ((start_s + 15 * 60).to_string(), (start_s + 40 * 60).to_string());
    let mut failures = Vec::new();
    let mut nonempty = 0;
    for q in &queries {
        for t in instants {
            let ts = t.to_string();
            if let Some(d) = compare(&ours, &theirs, "/api/v1/query", &[("query", q), ("time", &ts)]) {
                failures.push(format!("instant {q} @ {t}: {d}"));
            }
        }
        let params = [("query", q.as_str()), ("start", &rs), ("end", &re), ("step", &st)];
        if let Some(d) = compare(&ours, &theirs, "/api/v1/query_range", &params) {
            failures.push(format!("range {q}: {d}"));
        }
        // Steps on the data's own timestamps, over the stale and gappy stretch.
        let params = [("query", q.as_str()), ("start", &as_), ("end", &ae), ("step", "15")];
        if let Some(d) = compare(&ours, &theirs, "/api/v1/query_range", &params) {
            failures.push(format!("aligned range {q}: {d}"));
        }
        let b = theirs.get("/api/v1/query", &[("query", q.as_str()), ("time", &end_s.to_string())]).json();
        nonempty += b["data"]["result"].as_array().is_some_and(|a| !a.is_empty()) as usize;
    }
    for q in PARSE_ERRORS.iter().filter(|q| q.contains(filter.as_str())) {
        let params = [("query", *q), ("time", "0")];
        let (a, b) = (ours.get("/api/v1/query", &params).json(), theirs.get("/api/v1/query", &params).json());
        assert_eq!(b["errorType"], "bad_data", "{q}: {b}");
        if a["error"] != b["error"] {
            failures.push(format!("parse error of {q}: vigil {} vs prometheus {}", a["error"], b["error"]));
        }
    }
    for q in SYNTAX_TOOLS.iter().filter(|q| q.contains(filter.as_str())) {
        for path in ["/api/v1/format_query", "/api/v1/parse_query"] {
            let (a, b) = (ours.get(path, &[("query", q)]).json(), theirs.get(path, &[("query", q)]).json());
            assert_eq!(b["status"], "success", "{path} {q}: {b}");
            if a != b {
                failures.push(format!("{path} {q}: vigil {a} vs prometheus {b}"));
            }
        }
    }
    // The per-request lookback delta.
    for q in ["dt_gappy", "dt_flappy", "sum(dt_temperature_celsius)"] {
        for lookback in ["20s", "1m", "10m"] {
            let params =
                [("query", q), ("start", &as_), ("end", &ae), ("step", "15"), ("lookback_delta", lookback)];
            if let Some(d) = compare(&ours, &theirs, "/api/v1/query_range", &params) {
                failures.push(format!("lookback_delta={lookback} {q}: {d}"));
            }
        }
    }
    // `stats=all` has Prometheus's shape (Grafana's query inspector reads it).
    for path in ["/api/v1/query", "/api/v1/query_range"] {
        let params = [
            ("query", "sum(rate(dt_requests_total[5m]))"),
            ("time", re.as_str()),
            ("start", rs.as_str()),
            ("end", re.as_str()),
            ("step", st.as_str()),
            ("stats", "all"),
        ];
        let (a, b) = (ours.get(path, &params).json(), theirs.get(path, &params).json());
        let (ka, kb) = (keys(&a["data"]["stats"]), keys(&b["data"]["stats"]));
        assert!(!kb.is_empty(), "Prometheus gave no stats: {b}");
        if ka != kb {
            failures.push(format!("{path} stats keys: vigil {ka:?} vs prometheus {kb:?}"));
        }
    }
    println!(
        "{} queries (instant at 3 times, 2 ranges), {} parse errors, {} syntax-tool queries: {} differences",
        queries.len(),
        PARSE_ERRORS.len(),
        SYNTAX_TOOLS.len(),
        failures.len()
    );
    // Agreeing on nothing proves nothing: most queries must have an answer.
    assert!(
        !filter.is_empty() || nonempty * 10 >= queries.len() * 7,
        "only {nonempty} of {} queries had data",
        queries.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} queries differ:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}
