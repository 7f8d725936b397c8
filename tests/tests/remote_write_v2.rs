//! A real Prometheus 3 scrapes itself and sends remote write 2.0
//! (`protobuf_message: io.prometheus.write.v2.Request`) to Vigil; Vigil must then
//! know the same series, metric names and raw sample values as Prometheus's own
//! storage, and the metadata Prometheus sent with them.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use vigil_tests::{Api, Vigil, diff_query_data, peer_binary, self_scrape_config, start_prometheus};

/// How long Prometheus scrapes before we compare: several 1s scrapes and batches.
const WARMUP: Duration = Duration::from_secs(20);
/// Compare a window this far in the past so remote write (1s batches) has delivered.
const DELIVERY_MARGIN_S: f64 = 5.0;
/// Width of the compared window.
const WINDOW_S: f64 = 10.0;
/// Comparisons are retried this many times in case a batch was still in flight.
const ATTEMPTS: usize = 4;

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64().floor()
}

/// The `data` array of a successful API answer as a set of JSON strings.
fn data_set(api: &Api, path: &str, params: &[(&str, &str)]) -> BTreeSet<String> {
    let r = api.get(path, params);
    let j = r.json();
    assert_eq!(j["status"], "success", "{path}: HTTP {} {}", r.status, r.body);
    j["data"].as_array().map(|a| a.iter().map(Json::to_string).collect()).unwrap_or_default()
}

fn set_diff(what: &str, ours: &BTreeSet<String>, theirs: &BTreeSet<String>) -> Vec<String> {
    let mut diffs: Vec<String> =
        ours.difference(theirs).map(|s| format!("{what}: only in vigil: {s}")).collect();
    diffs.extend(theirs.difference(ours).map(|s| format!("{what}: only in prometheus: {s}")));
    diffs
}

fn compare(vigil: &Api, prom: &Api) -> Vec<String> {
    let end = now_s() - DELIVERY_MARGIN_S;
    let (s, e) = ((end - WINDOW_S).to_string(), end.to_string());
    let window = [("start", s.as_str()), ("end", e.as_str())];
    let mut diffs = Vec::new();
    let names = |api: &Api| data_set(api, "/api/v1/label/__name__/values", &window);
    diffs.extend(set_diff("metric names", &names(vigil), &names(prom)));
    let series = |api: &Api| {
        let params = [("match[]", "{job=\"prometheus\"}"), window[0], window[1]];
        data_set(api, "/api/v1/series", &params)
    };
    diffs.extend(set_diff("series", &series(vigil), &series(prom)));
    // Raw samples through a range selector: exactly what each stored.
    for q in ["up[10s]", "go_goroutines[10s]", "prometheus_tsdb_head_samples_appended_total[10s]"] {
        let d = diff_query_data(&vigil.query(q, end), &prom.query(q, end));
        diffs.extend(d.into_iter().map(|d| format!("{q} @ {end}: {d}")));
    }
    diffs
}

#[test]
fn prometheus_remote_write_2_lands_in_vigil_as_in_prometheus() {
    let Some(prometheus) = peer_binary("prometheus") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start(&dir.path().join("vigil"));

    let config = |prom_addr: &str| {
        self_scrape_config(prom_addr, &vigil.url(), "protobuf_message: io.prometheus.write.v2.Request")
    };
    let prom = start_prometheus(&prometheus, dir.path(), config, &["--enable-feature=metadata-wal-records"]);
    let log = dir.path().join("prometheus.log");
    std::thread::sleep(WARMUP);

    let (vigil_api, prom_api) = (vigil.api(), Api::new(&prom.url()));
    let mut diffs = Vec::new();
    for _ in 0..ATTEMPTS {
        diffs = compare(&vigil_api, &prom_api);
        if diffs.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let prom_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        diffs.is_empty(),
        "Vigil and Prometheus differ:\n{}\nPrometheus log:\n{prom_log}\nVigil log:\n{}",
        diffs.join("\n"),
        vigil.log()
    );
    // Remote write 2.0 carries metadata with every series; Vigil serves it per family
    // as Prometheus serves what it scraped.
    for family in [
        "go_goroutines",
        "prometheus_http_requests_total",
        "prometheus_http_request_duration_seconds",
        "go_gc_duration_seconds",
    ] {
        let ours = vigil_api.get("/api/v1/metadata", &[("metric", family)]).json();
        let theirs = prom_api.get("/api/v1/metadata", &[("metric", family)]).json();
        assert!(theirs["data"][family].is_array(), "Prometheus has no metadata for {family}: {theirs}");
        assert_eq!(ours["data"][family], theirs["data"][family], "metadata of {family}");
    }
    let log = vigil.log();
    assert!(log.contains("io.prometheus.write.v2.Request"), "no remote write 2.0 request arrived:\n{log}");
    assert!(!log.contains("prometheus.WriteRequest"), "Prometheus fell back to remote write 1.0:\n{log}");
}

/// POSTs a remote-write 2.0 body; returns status, body and the samples-written header.
fn post_v2(url: &str, body: &[u8]) -> (u16, String, String) {
    let mut resp = vigil_tests::agent()
        .post(format!("{url}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        .send(body)
        .expect("POST");
    let written = resp
        .headers()
        .get("X-Prometheus-Remote-Write-Samples-Written")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<missing>")
        .to_owned();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default(), written)
}

#[test]
fn bad_remote_write_2_bodies_are_refused_and_change_nothing() {
    use vigil_ingest::remote_write::encode_v2;
    use vigil_ingest::remote_write::proto_v2::{Request, Sample, TimeSeries};
    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start(&dir.path().join("data"));
    let symbols: Vec<String> = ["", "__name__", "good", "bad"].iter().map(|s| s.to_string()).collect();
    let series = |refs: Vec<u32>| TimeSeries {
        labels_refs: refs,
        samples: vec![Sample { value: 1.0, timestamp: 1_700_000_000_000, start_timestamp: 0 }],
        ..Default::default()
    };
    let good = Request { symbols: symbols.clone(), timeseries: vec![series(vec![1, 2])] };
    let (status, body, written) = post_v2(&vigil.url(), &encode_v2(&good).expect("encode"));
    assert_eq!((status, written.as_str()), (204, "1"), "{body}");

    let raw = prost::Message::encode_to_vec(&good);
    let truncated = snap::raw::Encoder::new().compress_vec(&raw[..raw.len() - 2]).expect("compress");
    let bad_ref = Request { symbols, timeseries: vec![series(vec![1, 3]), series(vec![1, 9])] };
    for (what, body, reason) in [
        ("invalid symbol reference", encode_v2(&bad_ref).expect("encode"), "invalid symbol reference 9"),
        ("truncated protobuf", truncated, "protobuf"),
        ("bad snappy", b"not snappy".to_vec(), "snappy"),
    ] {
        let (status, text, written) = post_v2(&vigil.url(), &body);
        assert_eq!(status, 400, "{what}: {text}");
        assert!(text.contains(reason), "{what}: {text}");
        assert_eq!(written, "0", "{what}");
    }
    let names = vigil.api().get("/api/v1/label/__name__/values", &[]).json();
    assert_eq!(names["data"], serde_json::json!(["good"]), "nothing of a refused request is stored");
}
