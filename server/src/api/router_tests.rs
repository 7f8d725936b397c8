//! In-process tests of the whole router: requests in, Prometheus's answers out.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use vigil_ingest::remote_write::encode_v1;
use vigil_ingest::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use vigil_query::Engine;
use vigil_storage::memory::MemStorage;
use vigil_storage::{Labels, Matcher, Querier, SelectHints};

use crate::router;
use crate::state::{ApiSettings, AppState};

fn ready_state(store: Arc<MemStorage>) -> AppState {
    AppState::with_store(store, Engine::default(), ApiSettings::default())
}

async fn send(state: AppState, req: Request<Body>) -> (StatusCode, String, Option<String>) {
    let resp = router(state).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let ct = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().expect("ascii").to_string());
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, String::from_utf8(body.to_vec()).expect("utf8"), ct)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

fn post_form(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .expect("request")
}

fn remote_write(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/write")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(Body::from(body))
        .expect("request")
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        ..Default::default()
    }
}

fn encoded(timeseries: Vec<TimeSeries>) -> Vec<u8> {
    encode_v1(&WriteRequest { timeseries, metadata: vec![] }).expect("encode")
}

fn all_series(store: &MemStorage) -> Vec<(Labels, usize)> {
    let hints = SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
    let re = Matcher::new(vigil_storage::MatchOp::Regex, "__name__", ".*").expect("matcher");
    let mut out = Vec::new();
    for mut s in store.select(&[re], &hints).expect("select") {
        let mut n = 0;
        while s.samples.next().is_some() {
            n += 1;
        }
        out.push((s.labels, n));
    }
    out
}

#[tokio::test]
async fn write_valid_request_is_204_and_stored() {
    let store = Arc::new(MemStorage::new());
    let body =
        encoded(vec![series(&[("__name__", "up"), ("http.status", "200")], &[(1000, 1.0), (2000, 1.0)])]);
    let (status, text, _) = send(ready_state(store.clone()), remote_write(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let stored = all_series(&store);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0.get("http.status"), Some("200"));
    assert_eq!(stored[0].1, 2);
}

#[tokio::test]
async fn malformed_protobuf_and_bad_snappy_are_400_with_a_reason() {
    let store = Arc::new(MemStorage::new());
    let not_proto = snap::raw::Encoder::new().compress_vec(b"\x0a\xff\xff\xff").expect("compress");
    let (status, text, ct) = send(ready_state(store.clone()), remote_write(not_proto)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("protobuf:"), "{text}");
    assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"));

    let (status, text, _) =
        send(ready_state(store.clone()), remote_write(b"\xff\xff\xff\xff\xff".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("snappy:"), "{text}");
    assert!(all_series(&store).is_empty());
}

#[tokio::test]
async fn invalid_label_is_400_and_nothing_is_stored() {
    let store = Arc::new(MemStorage::new());
    let body = encoded(vec![series(&[("__name__", "x"), ("", "v")], &[(1000, 1.0)])]);
    let (status, text, _) = send(ready_state(store.clone()), remote_write(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("empty label name"), "{text}");
    assert!(text.contains("0 samples written"), "{text}");
    assert!(all_series(&store).is_empty());
}

#[tokio::test]
async fn partial_rejection_writes_the_rest_and_says_how_many() {
    let store = Arc::new(MemStorage::new());
    let body = encoded(vec![
        series(&[("__name__", "good")], &[(1000, 1.0), (2000, 2.0), (1500, 3.0)]),
        series(&[("__name__", "bad"), ("a", "1"), ("a", "2")], &[(1000, 1.0)]),
    ]);
    let (status, text, _) = send(ready_state(store.clone()), remote_write(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("invalid labels for series"), "{text}");
    assert!(
        text.contains(
            "2 samples rejected (1 out of order, 1 in 1 series with invalid labels), 2 samples written"
        ),
        "{text}"
    );
    let stored = all_series(&store);
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].0.metric_name(), stored[0].1), (Some("good"), 2));
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let store = Arc::new(MemStorage::new());
    let body = encoded(vec![series(&[("__name__", "x")], &[(1000, 1.0)])]);
    let tiny_body = ApiSettings { max_write_body_bytes: 8, ..ApiSettings::default() };
    let state = AppState::with_store(store.clone(), Engine::default(), tiny_body);
    let (status, text, _) = send(state, remote_write(body.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");

    let tiny_raw = ApiSettings { max_write_decompressed_bytes: 8, ..ApiSettings::default() };
    let state = AppState::with_store(store.clone(), Engine::default(), tiny_raw);
    let (status, text, _) = send(state, remote_write(body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text.contains("exceeds the limit of 8 bytes"), "{text}");
    assert!(all_series(&store).is_empty());
}

#[tokio::test]
async fn unknown_protos_and_other_encodings_are_415() {
    let store = Arc::new(MemStorage::new());
    let body = encoded(vec![series(&[("__name__", "x")], &[(1000, 1.0)])]);
    let mut v3 = remote_write(body.clone());
    v3.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-protobuf;proto=io.prometheus.write.v3.Request".parse().expect("header"),
    );
    let (status, text, _) = send(ready_state(store.clone()), v3).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(text.contains("unknown remote write protobuf message io.prometheus.write.v3.Request"), "{text}");

    let mut gzip = remote_write(body.clone());
    gzip.headers_mut().insert(header::CONTENT_ENCODING, "gzip".parse().expect("header"));
    let (status, _, _) = send(ready_state(store.clone()), gzip).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let mut v1_explicit = remote_write(body);
    v1_explicit.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-protobuf;proto=prometheus.WriteRequest".parse().expect("header"),
    );
    let (status, _, _) = send(ready_state(store.clone()), v1_explicit).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(all_series(&store).len(), 1);
}

fn store_with(pairs: &[(&[(&str, &str)], i64)]) -> Arc<MemStorage> {
    let store = Arc::new(MemStorage::new());
    for (labels, t) in pairs {
        store.add(&Labels::from_pairs(labels.iter().copied()), *t, 1.0).expect("add");
    }
    store
}

#[tokio::test]
async fn post_with_url_params_and_empty_body_reads_the_url() {
    let store = store_with(&[
        (&[("__name__", "old"), ("early", "x")], 1_000_000),
        (&[("__name__", "new")], 5_000_000),
    ]);
    let all = send(ready_state(store.clone()), post_form("/api/v1/labels", "")).await;
    assert_eq!(all.1, r#"{"status":"success","data":["__name__","early"]}"#);
    let late = send(ready_state(store.clone()), post_form("/api/v1/labels?start=4000&end=6000", "")).await;
    assert_eq!(late.0, StatusCode::OK);
    assert_eq!(late.1, r#"{"status":"success","data":["__name__"]}"#);
    // Body values win over URL values, as in Go's r.Form.
    let both =
        send(ready_state(store), post_form("/api/v1/labels?start=0&end=10", "start=4000&end=6000")).await;
    assert_eq!(both.1, r#"{"status":"success","data":["__name__"]}"#);

    let (status, text, _) = send(
        ready_state(Arc::new(MemStorage::new())),
        post_form("/api/v1/query_range?query=up&start=10&end=5&step=1", ""),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text,
        r#"{"status":"error","errorType":"bad_data","error":"end timestamp must not be before start time"}"#
    );
}

#[tokio::test]
async fn label_values_unescape_utf8_names_and_honour_limit() {
    let store = store_with(&[
        (&[("__name__", "a"), ("http.status", "200")], 1000),
        (&[("__name__", "b"), ("http.status", "500")], 1000),
    ]);
    let (status, text, ct) =
        send(ready_state(store.clone()), get("/api/v1/label/U__http_2e_status/values")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(text, r#"{"status":"success","data":["200","500"]}"#);
    let (_, text, _) = send(ready_state(store), get("/api/v1/label/__name__/values?limit=1")).await;
    assert_eq!(text, r#"{"status":"success","data":["a"],"warnings":["results truncated due to limit"]}"#);
}

#[tokio::test]
async fn error_envelopes_match_prometheus() {
    let state = || ready_state(Arc::new(MemStorage::new()));
    let cases: &[(Request<Body>, StatusCode, &str)] = &[
        (
            get("/api/v1/query_range?query=up&start=0&end=10&step=x"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": cannot parse \"x\" to a valid duration"}"#,
        ),
        (
            get("/api/v1/query_range?query=up&start=0&end=10&step=0"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"zero or negative query resolution step widths are not accepted. Try a positive integer"}"#,
        ),
        (
            get("/api/v1/query_range?query=up&start=0&end=11001&step=1"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#,
        ),
        (
            get("/api/v1/query_range?query=up&start=abc&end=1&step=1"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": cannot parse \"abc\" to a valid timestamp"}"#,
        ),
        (
            get("/api/v1/query?query=1%2B1&time=yesterday"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": Invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp"}"#,
        ),
        (
            get("/api/v1/series"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}"#,
        ),
        (
            get("/api/v1/labels?limit=-1"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"limit\": limit must be non-negative"}"#,
        ),
        (
            get("/api/v1/metadata?limit=x"),
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"limit must be a number"}"#,
        ),
    ];
    for (req, want_status, want_body) in cases.iter().map(|(r, s, b)| (clone_req(r), *s, *b)) {
        let uri = req.uri().to_string();
        let (status, body, ct) = send(state(), req).await;
        assert_eq!((status, body.as_str()), (want_status, want_body), "{uri}");
        assert_eq!(ct.as_deref(), Some("application/json"), "{uri}");
    }
}

fn clone_req(r: &Request<Body>) -> Request<Body> {
    Request::builder().method(r.method()).uri(r.uri()).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn metadata_from_remote_write_is_served() {
    use vigil_ingest::remote_write::proto::{MetricMetadata, MetricType};
    let store = Arc::new(MemStorage::new());
    let meta = |name: &str, kind: MetricType, help: &str| MetricMetadata {
        r#type: kind as i32,
        metric_family_name: name.into(),
        help: help.into(),
        unit: String::new(),
    };
    let req = WriteRequest {
        timeseries: vec![],
        metadata: vec![meta("b_total", MetricType::Counter, "B."), meta("a", MetricType::Gauge, "A <1>.")],
    };
    let (status, _, _) =
        send(ready_state(store.clone()), remote_write(encode_v1(&req).expect("encode"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, text, _) = send(ready_state(store.clone()), get("/api/v1/metadata")).await;
    assert_eq!(
        text,
        r#"{"status":"success","data":{"a":[{"type":"gauge","help":"A \u003c1\u003e.","unit":""}],"b_total":[{"type":"counter","help":"B.","unit":""}]}}"#
    );
    let (_, text, _) = send(ready_state(store.clone()), get("/api/v1/metadata?limit=1")).await;
    assert_eq!(
        text,
        r#"{"status":"success","data":{"a":[{"type":"gauge","help":"A \u003c1\u003e.","unit":""}]}}"#
    );
    let (_, text, _) = send(ready_state(store.clone()), get("/api/v1/metadata?metric=b_total")).await;
    assert_eq!(text, r#"{"status":"success","data":{"b_total":[{"type":"counter","help":"B.","unit":""}]}}"#);
    let (_, text, _) = send(ready_state(store.clone()), get("/api/v1/metadata?limit=0")).await;
    assert_eq!(text, r#"{"status":"success","data":{}}"#);

    let again = WriteRequest {
        timeseries: vec![],
        metadata: vec![meta("b_total", MetricType::Counter, "B, reworded.")],
    };
    send(ready_state(store.clone()), remote_write(encode_v1(&again).expect("encode"))).await;
    let (_, text, _) = send(ready_state(store.clone()), get("/api/v1/metadata?metric=b_total")).await;
    assert_eq!(text.matches(r#""type":"counter""#).count(), 2, "{text}");
    let (_, text, _) =
        send(ready_state(store), get("/api/v1/metadata?metric=b_total&limit_per_metric=1")).await;
    assert_eq!(text.matches(r#""type":"counter""#).count(), 1, "{text}");
}

#[tokio::test]
async fn grafanas_exemplar_probe_succeeds_with_millisecond_times() {
    let state = ready_state(Arc::new(MemStorage::new()));
    let probe = "/api/v1/query_exemplars?query=test&start=1764460000000&end=1764461800000";
    let (status, text, _) = send(state.clone(), get(probe)).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"status":"success","data":[]}"#));
    let (status, _, _) = send(state, post_form("/api/v1/query_exemplars?start=5&end=1", "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn buildinfo_is_all_strings_without_features() {
    let (status, text, _) =
        send(ready_state(Arc::new(MemStorage::new())), get("/api/v1/status/buildinfo")).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let data = v["data"].as_object().expect("object");
    assert_eq!(data["version"], env!("CARGO_PKG_VERSION"));
    for key in ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(data[key].is_string(), "{key}");
    }
    assert!(data["goVersion"].as_str().is_some_and(|v| v.starts_with("rustc ")), "{text}");
    assert!(!data.contains_key("features"));
}

#[tokio::test]
async fn not_ready_answers_503_until_the_store_is_open() {
    let state = AppState::new(Engine::default(), ApiSettings::default());
    let (status, _, _) = send(state.clone(), get("/-/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = send(state.clone(), get("/-/healthy")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, text, _) = send(state.clone(), get("/api/v1/labels")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.starts_with(r#"{"status":"error","errorType":"unavailable","error":"#), "{text}");
    let (status, _, _) = send(state.clone(), remote_write(encoded(vec![]))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    state.set_ready(Arc::new(MemStorage::new()));
    let (status, _, _) = send(state.clone(), get("/-/ready")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, text, _) = send(state, get("/api/v1/labels")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"status":"success","data":[]}"#));
}

/// Label lookups on the real store: regex `match[]` (literal set, prefix) and the time
/// range, which as in Prometheus selects the head as a whole, not series by series.
#[tokio::test]
async fn label_lookups_on_the_database_honour_regex_matches_and_the_heads_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db =
        Arc::new(vigil_storage::Db::open(dir.path(), vigil_storage::DbOptions::default()).expect("open"));
    let mut app = vigil_storage::Appendable::appender(&*db);
    for (handler, status, t) in [
        ("/api/v1/users", "500", 1_000_000),
        ("/api/v1/orders", "200", 2_000_000),
        ("/metrics", "503", 3_000_000),
    ] {
        let labels = Labels::from_pairs([
            ("__name__", "http_requests_total"),
            ("handler", handler),
            ("status", status),
        ]);
        app.append(&labels, t, 1.0);
    }
    app.append(&Labels::from_pairs([("__name__", "up"), ("instance", "a")]), 3_000_000, 1.0);
    app.commit().expect("commit");
    let state = || AppState::with_store(db.clone(), Engine::default(), ApiSettings::default());
    let ok = |data: &str| format!(r#"{{"status":"success","data":{data}}}"#);

    let (_, text, _) = send(state(), get("/api/v1/label/handler/values?match[]={status=~%225..%22}")).await;
    assert_eq!(text, ok(r#"["/api/v1/users","/metrics"]"#));
    let (_, text, _) =
        send(state(), get("/api/v1/label/status/values?match[]={handler=~%22/api/v1/(users|orders).*%22}"))
            .await;
    assert_eq!(text, ok(r#"["200","500"]"#));
    let (_, text, _) = send(state(), get("/api/v1/labels?match[]={__name__=~%22up|down%22}")).await;
    assert_eq!(text, ok(r#"["__name__","instance"]"#));
    // The head spans 1000s to 3000s: a range inside it counts every head series, even
    // one whose only sample lies outside the range; a range outside it counts none.
    let (_, text, _) = send(state(), get("/api/v1/label/handler/values?start=2500&end=2600")).await;
    assert_eq!(text, ok(r#"["/api/v1/orders","/api/v1/users","/metrics"]"#));
    let (_, text, _) = send(state(), get("/api/v1/labels?start=4000&end=5000")).await;
    assert_eq!(text, ok("[]"));
    let (_, text, _) = send(state(), get("/api/v1/label/handler/values?start=0&end=999")).await;
    assert_eq!(text, ok("[]"));
}
