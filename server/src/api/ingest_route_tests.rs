//! In-process tests of the ingest routes added for remote write 2.0 and OTLP, and of
//! the exemplars they feed to `/api/v1/query_exemplars`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt;
use vigil_ingest::remote_write::encode_v2;
use vigil_ingest::remote_write::proto::MetricType;
use vigil_ingest::remote_write::proto_v2::{Exemplar, Metadata, Request as V2Request, Sample, TimeSeries};
use vigil_query::Engine;
use vigil_storage::memory::MemStorage;
use vigil_storage::{Matcher, Querier, SelectHints};

use crate::router;
use crate::state::{ApiSettings, AppState};

const V2_CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

async fn send(state: AppState, req: Request<Body>) -> (StatusCode, String, HeaderMap) {
    let resp = router(state).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

fn state(store: Arc<MemStorage>) -> AppState {
    AppState::with_store(store, Engine::default(), ApiSettings::default())
}

fn v2_write(req: &V2Request) -> Request<Body> {
    Request::post("/api/v1/write")
        .header(header::CONTENT_TYPE, V2_CONTENT_TYPE)
        .header(header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        .body(Body::from(encode_v2(req).expect("encode")))
        .expect("request")
}

/// `up{job="a"}` with two samples, metadata and an exemplar; symbols interned.
fn v2_request() -> V2Request {
    let symbols = ["", "__name__", "http_requests_total", "job", "a", "Requests.", "trace_id", "abc"];
    V2Request {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        timeseries: vec![TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![
                Sample { value: 1.0, timestamp: 1000, start_timestamp: 0 },
                Sample { value: 2.0, timestamp: 2000, start_timestamp: 0 },
            ],
            exemplars: vec![Exemplar { labels_refs: vec![6, 7], value: 1.0, timestamp: 1500 }],
            metadata: Some(Metadata { r#type: MetricType::Counter as i32, help_ref: 5, unit_ref: 0 }),
            histograms: vec![],
            created_timestamp: 0,
        }],
    }
}

fn count(store: &MemStorage, name: &str) -> usize {
    let hints = SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
    let mut n = 0;
    for mut s in store.select(&[Matcher::equal("__name__", name)], &hints).expect("select") {
        while s.samples.next().is_some() {
            n += 1;
        }
    }
    n
}

fn header_value<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().expect("ascii")).unwrap_or("<missing>")
}

#[tokio::test]
async fn remote_write_2_is_written_with_count_headers_and_metadata() {
    let store = Arc::new(MemStorage::new());
    let st = state(store.clone());
    let (status, text, headers) = send(st.clone(), v2_write(&v2_request())).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(header_value(&headers, "X-Prometheus-Remote-Write-Samples-Written"), "2");
    assert_eq!(header_value(&headers, "X-Prometheus-Remote-Write-Histograms-Written"), "0");
    assert_eq!(header_value(&headers, "X-Prometheus-Remote-Write-Exemplars-Written"), "1");
    assert_eq!(count(&store, "http_requests_total"), 2);

    let get = |uri: &str| Request::get(uri).body(Body::empty()).expect("request");
    let (_, md, _) = send(st.clone(), get("/api/v1/metadata")).await;
    assert!(
        md.contains(r#""http_requests_total":[{"type":"counter","help":"Requests.","unit":""}]"#),
        "{md}"
    );
    let q = "/api/v1/query_exemplars?query=sum(rate(http_requests_total%7Bjob%3D%22a%22%7D%5B5m%5D))&start=0&end=10";
    let (status, ex, _) = send(st, get(q)).await;
    assert_eq!(status, StatusCode::OK, "{ex}");
    assert!(
        ex.contains(r#""data":[{"seriesLabels":{"__name__":"http_requests_total","job":"a"},"exemplars":[{"labels":{"trace_id":"abc"},"value":"1","timestamp":1.5}]}]"#),
        "{ex}"
    );
}

#[tokio::test]
async fn remote_write_2_with_a_bad_symbol_reference_is_400_and_writes_nothing() {
    let store = Arc::new(MemStorage::new());
    let mut req = v2_request();
    req.timeseries.push(TimeSeries { labels_refs: vec![1, 42], ..Default::default() });
    let (status, text, headers) = send(state(store.clone()), v2_write(&req)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("invalid symbol reference 42 in series #1"), "{text}");
    assert_eq!(header_value(&headers, "X-Prometheus-Remote-Write-Samples-Written"), "0");
    assert_eq!(count(&store, "http_requests_total"), 0);
}

#[tokio::test]
async fn remote_write_2_truncated_body_is_400() {
    let store = Arc::new(MemStorage::new());
    let raw = prost::Message::encode_to_vec(&v2_request());
    let cut = snap::raw::Encoder::new().compress_vec(&raw[..raw.len() - 3]).expect("compress");
    let mut req = v2_write(&v2_request());
    *req.body_mut() = Body::from(cut);
    let (status, text, _) = send(state(store.clone()), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("protobuf:"), "{text}");
    assert_eq!(count(&store, "http_requests_total"), 0);
}

const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ingest/testdata/otlp");

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(format!("{GOLDEN_DIR}/{name}")).expect("golden file")
}

fn otlp(path: &str, content_type: &str, gzip: bool, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, content_type);
    if gzip {
        req = req.header(header::CONTENT_ENCODING, "gzip");
    }
    req.body(Body::from(body)).expect("request")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn series_count(store: &MemStorage) -> usize {
    let hints = SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
    let re = Matcher::new(vigil_storage::MatchOp::Regex, "__name__", ".+").expect("matcher");
    store.select(&[re], &hints).expect("select").len()
}

#[tokio::test]
async fn otlp_json_and_gzipped_protobuf_are_written_on_both_paths() {
    let store = Arc::new(MemStorage::new());
    let req = otlp("/api/v1/otlp/v1/metrics", "application/json", false, golden("basic.json"));
    let (status, body, headers) = send(state(store.clone()), req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(header_value(&headers, "content-type"), "application/json");
    assert_eq!(body, "{}", "a full success has no partialSuccess");
    assert_eq!(series_count(&store), 15);
    assert_eq!(count(&store, "http_server_requests_total"), 1);

    let store = Arc::new(MemStorage::new());
    let req = otlp("/v1/metrics", "application/x-protobuf", true, gzip(&golden("basic.pb")));
    let (status, body, _) = send(state(store.clone()), req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.is_empty(), "an empty protobuf response");
    assert_eq!(series_count(&store), 15);
}

#[tokio::test]
async fn otlp_refused_points_are_reported_in_partial_success() {
    let store = Arc::new(MemStorage::new());
    let req = otlp("/api/v1/otlp/v1/metrics", "application/json", false, golden("refused.json"));
    let (status, body, _) = send(state(store.clone()), req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], 3, "{body}");
    let msg = v["partialSuccess"]["errorMessage"].as_str().expect("message");
    assert!(msg.contains("delta temporality is refused") && msg.contains("exponential histogram"), "{msg}");
    assert_eq!(count(&store, "temperature_celsius"), 1);
}

#[tokio::test]
async fn otlp_bad_input_is_a_clear_error_and_writes_nothing() {
    let store = Arc::new(MemStorage::new());
    let pb = golden("basic.pb");
    let cases = [
        ("application/x-protobuf", false, pb[..pb.len() - 7].to_vec(), StatusCode::BAD_REQUEST, "protobuf:"),
        ("application/x-protobuf", true, b"\x1f\x8bnot really gzip".to_vec(), StatusCode::BAD_REQUEST, "gzip:"),
        ("application/json", false, br#"{"resourceMetrics":"many"}"#.to_vec(), StatusCode::BAD_REQUEST, "json:"),
        (
            "application/json",
            false,
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"ok","gauge":{"dataPoints":[{"timeUnixNano":"1000000","asDouble":1,"attributes":[{"key":"...","value":{"stringValue":"x"}}]}]}}]}]}]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "resulted in invalid name",
        ),
        ("text/plain", false, b"x".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported content type"),
    ];
    for (ct, gz, body, want, text) in cases {
        let (status, got, _) = send(state(store.clone()), otlp("/v1/metrics", ct, gz, body)).await;
        assert_eq!(status, want, "{ct} {text}: {got}");
        assert!(got.contains(text), "{ct}: {got}");
    }
    let mut req = otlp("/v1/metrics", "application/json", false, golden("basic.json"));
    req.headers_mut().insert(header::CONTENT_ENCODING, "br".parse().expect("header"));
    assert_eq!(send(state(store.clone()), req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(series_count(&store), 0);
}

#[tokio::test]
async fn otlp_errors_are_google_rpc_status_and_not_ready_is_503_with_retry_after() {
    use prost::Message;
    let store = Arc::new(MemStorage::new());
    let req = otlp("/v1/metrics", "application/x-protobuf", false, b"\x0a\xff".to_vec());
    let resp = router(state(store)).oneshot(req).await.expect("infallible");
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    let status = vigil_ingest::otlp::Status::decode(body.as_ref()).expect("google.rpc.Status");
    assert_eq!(status.code, vigil_ingest::otlp::CODE_INVALID_ARGUMENT);

    let starting = AppState::new(Engine::default(), ApiSettings::default());
    let req = otlp("/v1/metrics", "application/json", false, golden("basic.json"));
    let (status, body, headers) = send(starting, req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(header_value(&headers, "retry-after"), "1");
}

#[tokio::test]
async fn otlp_is_429_with_retry_after_when_too_many_requests_are_in_flight() {
    let st = state(Arc::new(MemStorage::new()));
    let all = crate::state::MAX_CONCURRENT_OTLP_REQUESTS as u32;
    let held = st.ingest_permits().clone().acquire_many_owned(all).await.expect("permits");
    let req = otlp("/v1/metrics", "application/json", false, golden("basic.json"));
    let (status, body, headers) = send(st.clone(), req).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(header_value(&headers, "retry-after"), "1");
    drop(held);
    let req = otlp("/v1/metrics", "application/json", false, golden("basic.json"));
    assert_eq!(send(st, req).await.0, StatusCode::OK);
}
