//! OTLP end to end against the real `vigil` binary: the golden requests over HTTP
//! (JSON and protobuf) must produce exactly their expected series, and the real
//! OpenTelemetry Python SDK, exporting once uncompressed and once gzip-compressed,
//! must land as the series, labels and values Prometheus's translation gives.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use vigil_tests::{Api, Vigil, agent};

const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ingest/testdata/otlp");
/// Time of every point in the golden requests, in seconds.
const GOLDEN_TIME_S: f64 = 1_700_000_000.0;
/// Exit code of `otlp_export.py` when the SDK is not installed.
const SDK_MISSING: i32 = 3;

fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut resp = agent().post(url).header("Content-Type", content_type).send(body).expect("POST");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// `labels value` for every series an instant vector query returns.
fn instant(api: &Api, query: &str, time: f64) -> BTreeSet<String> {
    let data = api.query(query, time);
    data["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            let labels: Vec<String> = s["metric"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
                .collect();
            format!("{{{}}} {}", labels.join(", "), s["value"][1].as_str().unwrap_or("?"))
        })
        .collect()
}

/// The expected file's series as `{labels} value`, stale markers left out (an
/// instant query does not return a stale series).
fn expected(name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(format!("{GOLDEN_DIR}/{name}.expected")).expect("expected file");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.ends_with("StaleNaN"))
        .map(|l| {
            let (labels, rest) = l.rsplit_once("} ").expect("labels then samples");
            let value = rest.split_whitespace().nth(1).expect("value");
            format!("{labels}}} {value}")
        })
        .collect()
}

#[test]
fn golden_requests_over_http_give_the_expected_series() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, ct, path) in [
        ("basic.json", "application/json", "/api/v1/otlp/v1/metrics"),
        ("basic.pb", "application/x-protobuf", "/v1/metrics"),
        ("refused.json", "application/json", "/api/v1/otlp/v1/metrics"),
    ] {
        let vigil = Vigil::start(&dir.path().join(file.replace('.', "_")));
        let body = std::fs::read(format!("{GOLDEN_DIR}/{file}")).expect("golden file");
        let (status, text) = post(&format!("{}{path}", vigil.url()), ct, &body);
        assert_eq!(status, 200, "{file}: {text}");
        let name = file.split('.').next().expect("stem");
        let got = instant(&vigil.api(), "{__name__=~\".+\"}", GOLDEN_TIME_S);
        assert_eq!(got, expected(name), "{file}");
    }
}

/// Runs the SDK script; `None` when python or the SDK is missing (a failure under CI).
fn export_with_sdk(endpoint: &str, instance: &str, gzip: bool) -> Option<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("otlp_export.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(endpoint).arg(instance);
    if gzip {
        cmd.env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
    } else {
        cmd.env_remove("OTEL_EXPORTER_OTLP_COMPRESSION");
    }
    let skip = |why: String| {
        let msg = format!(
            "{why}; install it with `pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http`"
        );
        assert!(std::env::var_os("CI").is_none(), "{msg} (CI is set, so this is a failure)");
        eprintln!("SKIPPED: {msg}");
    };
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            skip(format!("python3 not runnable: {e}"));
            return None;
        }
    };
    if out.status.code() == Some(SDK_MISSING) {
        skip(format!("OpenTelemetry Python SDK missing: {}", String::from_utf8_lossy(&out.stderr).trim()));
        return None;
    }
    assert!(out.status.success(), "SDK export failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(())
}

fn value(api: &Api, query: &str, time: f64) -> Vec<(Json, f64)> {
    api.query(query, time)["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| (s["metric"].clone(), s["value"][1].as_str().and_then(|v| v.parse().ok()).expect("number")))
        .collect()
}

#[test]
fn opentelemetry_python_sdk_metrics_land_as_prometheus_translates_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start(&dir.path().join("vigil"));
    let endpoint = format!("{}/api/v1/otlp/v1/metrics", vigil.url());
    for (instance, gzip) in [("plain", false), ("gzip", true)] {
        if export_with_sdk(&endpoint, instance, gzip).is_none() {
            return;
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64();
    let api = vigil.api();
    for instance in ["plain", "gzip"] {
        let sel = |name: &str| format!("{name}{{job=\"vigil-test/otel-demo\", instance=\"{instance}\"}}");
        let requests = value(&api, &sel("demo_requests_total"), now);
        let mut by_method: Vec<(String, f64)> =
            requests.iter().map(|(m, v)| (m["http_method"].as_str().unwrap_or("").to_owned(), *v)).collect();
        by_method.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(by_method, vec![("GET".to_owned(), 5.0), ("POST".to_owned(), 2.0)], "{instance}");
        let one = |name: &str| {
            let got = value(&api, &sel(name), now);
            assert_eq!(got.len(), 1, "{name} for {instance}: {got:?}");
            got[0].1
        };
        assert_eq!(one("demo_queue_size"), 7.0);
        assert_eq!(one("demo_temperature_celsius"), 21.5);
        assert_eq!(one("demo_latency_seconds_count"), 4.0);
        assert!((one("demo_latency_seconds_sum") - 10.25).abs() < 1e-9);
        for (le, want) in [("0.1", 1.0), ("1", 2.0), ("5", 3.0), ("+Inf", 4.0)] {
            let q = format!("demo_latency_seconds_bucket{{instance=\"{instance}\", le=\"{le}\"}}");
            let got = value(&api, &q, now);
            assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), vec![want], "{q}");
        }
        let info = value(&api, &sel("target_info"), now);
        assert_eq!(info.len(), 1, "target_info for {instance}: {info:?}");
        let labels = &info[0].0;
        assert_eq!(labels["deployment_environment"], "test", "{labels}");
        assert_eq!(labels["telemetry_sdk_language"], "python", "{labels}");
        assert!(
            labels.get("service_name").is_none(),
            "identifying attributes stay off target_info: {labels}"
        );
        // PromQL over the translated series works as over scraped ones.
        let rate = value(&api, &format!("sum by (job) ({})", sel("demo_requests_total")), now);
        assert_eq!(rate.iter().map(|r| r.1).collect::<Vec<_>>(), vec![7.0]);
    }
    // The histogram was recorded inside a span: its exemplars carry the trace id, so
    // Grafana can jump from the latency panel to the trace.
    let (start, end) = ((now - 600.0).to_string(), (now + 60.0).to_string());
    let q = "histogram_quantile(0.9, rate(demo_latency_seconds_bucket{instance=\"plain\"}[5m]))";
    let ex = api.get("/api/v1/query_exemplars", &[("query", q), ("start", &start), ("end", &end)]).json();
    let groups = ex["data"].as_array().expect("exemplar groups");
    assert!(!groups.is_empty(), "no exemplars: {ex}");
    for g in groups {
        assert_eq!(g["seriesLabels"]["instance"], "plain", "{g}");
        for e in g["exemplars"].as_array().expect("exemplars") {
            let trace = e["labels"]["trace_id"].as_str().unwrap_or("");
            assert_eq!(trace.len(), 32, "a hex trace id: {e}");
        }
    }
    let md = api.get("/api/v1/metadata", &[("metric", "demo_latency_seconds")]).json();
    assert_eq!(md["data"]["demo_latency_seconds"][0]["type"], "histogram", "{md}");
    assert_eq!(md["data"]["demo_latency_seconds"][0]["unit"], "seconds", "{md}");
}
