//! Prometheus's TSDB admin API (`/api/v1/admin/tsdb/*`, only with
//! `--web.enable-admin-api`) and `/api/v1/status/tsdb`, served from the block store.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use vigil_storage::Db;
use vigil_storage::stats::{NameCount, TsdbStats};

use super::json;
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params};
use super::response::{ApiError, ApiSuccess, ErrorType, blocking};
use crate::state::AppState;

/// Directory under the data directory that snapshots go to, as in Prometheus.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Entries per list in `/api/v1/status/tsdb` when `limit` is absent (Prometheus's default).
const DEFAULT_STATS_LIMIT: usize = 10;

/// The block store, if the admin API is on; Prometheus's error otherwise.
fn admin_db(state: &AppState) -> Result<Arc<Db>, ApiError> {
    if !state.settings().enable_admin_api {
        return Err(ApiError { kind: ErrorType::Unavailable, message: "admin APIs disabled".into() });
    }
    state.db()
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`: hides the samples of every series matching
/// any `match[]` within `[start, end]` at once; 204 on success.
pub async fn delete_series(State(state): State<AppState>, params: Params) -> Result<StatusCode, ApiError> {
    let db = admin_db(&state)?;
    let selectors = params.all("match[]");
    if selectors.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = params.time_or("start", MIN_TIME_MS)?;
    let end = params.time_or("end", MAX_TIME_MS)?;
    let mut sets = Vec::new();
    for s in selectors {
        sets.push(vigil_query::parse_selector(s).map_err(|e| ApiError::bad_data(e.to_string()))?);
    }
    blocking(move || {
        for set in &sets {
            db.delete_series(set, start, end).map_err(|e| ApiError::internal(e.to_string()))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`: rewrites blocks without deleted data; 204.
pub async fn clean_tombstones(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let db = admin_db(&state)?;
    blocking(move || db.clean_tombstones().map_err(|e| ApiError::internal(e.to_string()))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot`: copies the data (without the head when
/// `skip_head=true`) to `<data>/snapshots/<name>` and answers `{"name": "<name>"}`.
pub async fn snapshot(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let db = admin_db(&state)?;
    let skip_head = match params.get("skip_head") {
        None => false,
        Some(v) => parse_go_bool(v).ok_or_else(|| {
            ApiError::bad_data(format!("unable to parse boolean 'skip_head' argument: {v:?}"))
        })?,
    };
    let name = snapshot_name(SystemTime::now());
    let dest = db.dir().join(SNAPSHOTS_DIR).join(&name);
    blocking(move || {
        db.snapshot(&dest, !skip_head)
            .map_err(|e| ApiError::internal(format!("create snapshot: {e}")))
            .map(|_| ())
    })
    .await?;
    let mut data = String::new();
    json::push_str_object(&mut data, [("name", name.as_str())]);
    Ok(ApiSuccess::new(data))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A snapshot directory name as Prometheus makes them: UTC time, then 16 random hex
/// digits (`20171210T211224Z-2be650b6d019eb54`), so names sort by time and never clash.
fn snapshot_name(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let stamp: String = vigil_rules::timefmt::rfc3339(since.as_secs() as i64 * 1000)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    // A fresh RandomState is randomly keyed: a dependency-free random 63-bit number.
    let random = std::collections::hash_map::RandomState::new().hash_one(since.as_nanos()) >> 1;
    format!("{stamp}-{random:016x}")
}

/// `GET /api/v1/status/tsdb`: head statistics and the top `limit` (default 10) entries
/// by cardinality, in Prometheus's shape.
pub async fn tsdb_status(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let limit = match params.get("limit") {
        None => DEFAULT_STATS_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ApiError::bad_data("limit must be a positive number")),
        },
    };
    let db = state.db()?;
    let stats = blocking(move || Ok(db.tsdb_stats(limit))).await?;
    Ok(ApiSuccess::new(format_tsdb_stats(&stats)))
}

/// The `data` of `/api/v1/status/tsdb`. An empty head reports Prometheus's sentinels
/// (`minTime` the largest, `maxTime` the smallest int64).
fn format_tsdb_stats(s: &TsdbStats) -> String {
    let mut out = format!(
        r#"{{"headStats":{{"numSeries":{},"numLabelPairs":{},"chunkCount":{},"minTime":{},"maxTime":{}}}"#,
        s.num_series,
        s.num_label_pairs,
        s.num_chunks,
        s.min_time.unwrap_or(i64::MAX),
        s.max_time.unwrap_or(i64::MIN),
    );
    for (key, list) in [
        ("seriesCountByMetricName", &s.series_count_by_metric_name),
        ("labelValueCountByLabelName", &s.label_value_count_by_label_name),
        ("memoryInBytesByLabelName", &s.memory_in_bytes_by_label_name),
        ("seriesCountByLabelValuePair", &s.series_count_by_label_value_pair),
    ] {
        out.push(',');
        json::push_str(&mut out, key);
        out.push(':');
        push_counts(&mut out, list);
    }
    out.push('}');
    out
}

fn push_counts(out: &mut String, list: &[NameCount]) {
    out.push('[');
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"name":"#);
        json::push_str(out, &c.name);
        out.push_str(&format!(r#","value":{}}}"#, c.value));
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use vigil_query::Engine;
    use vigil_storage::{Appendable, DbOptions, Labels, Querier, SelectHints};

    use crate::state::ApiSettings;

    /// A state around a real block store holding `up{job="a"}` and `up{job="b"}` at t=1000..3000.
    fn state_with_db(dir: &std::path::Path, admin: bool) -> (AppState, Arc<Db>) {
        let db = Arc::new(Db::open(dir, DbOptions::default()).expect("open"));
        let mut app = db.appender();
        for job in ["a", "b"] {
            let labels = Labels::from_pairs([("__name__", "up"), ("job", job)]);
            for t in [1000, 2000, 3000] {
                app.append(&labels, t, 1.0);
            }
        }
        app.commit().expect("commit");
        let settings = ApiSettings { enable_admin_api: admin, ..ApiSettings::default() };
        let state = AppState::new(Engine::default(), settings);
        state.set_db(db.clone());
        state.set_ready(db.clone());
        (state, db)
    }

    async fn send(state: &AppState, method: &str, uri: &str) -> (StatusCode, String) {
        let req = Request::builder().method(method).uri(uri).body(Body::empty()).expect("request");
        let resp = crate::router(state.clone()).oneshot(req).await.expect("infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        (status, String::from_utf8(body.to_vec()).expect("utf8"))
    }

    fn samples(db: &Db, job: &str) -> usize {
        let m = vigil_query::parse_selector(&format!("up{{job=\"{job}\"}}")).expect("selector");
        let hints = SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
        db.select(&m, &hints)
            .expect("select")
            .into_iter()
            .map(|mut s| std::iter::from_fn(|| s.samples.next()).count())
            .sum()
    }

    #[tokio::test]
    async fn admin_endpoints_are_off_without_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, db) = state_with_db(dir.path(), false);
        for uri in [
            "/api/v1/admin/tsdb/delete_series?match[]=up",
            "/api/v1/admin/tsdb/snapshot",
            "/api/v1/admin/tsdb/clean_tombstones",
        ] {
            let (status, body) = send(&state, "POST", uri).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
            assert_eq!(body, r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#);
        }
        assert_eq!(samples(&db, "a"), 3);
        assert!(!dir.path().join(SNAPSHOTS_DIR).exists());
    }

    #[tokio::test]
    async fn delete_series_hides_samples_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, db) = state_with_db(dir.path(), true);
        let (status, body) = send(&state, "POST", "/api/v1/admin/tsdb/delete_series").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("no match[] parameter provided"), "{body}");
        let (status, body) =
            send(&state, "PUT", "/api/v1/admin/tsdb/delete_series?match[]=up{job=%22a%22}&start=1.5&end=2.5")
                .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!((samples(&db, "a"), samples(&db, "b")), (2, 3));
        let (status, _) =
            send(&state, "POST", "/api/v1/admin/tsdb/delete_series?match[]=up{job=%22b%22}").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!((samples(&db, "a"), samples(&db, "b")), (2, 0));
        let (status, _) = send(&state, "POST", "/api/v1/admin/tsdb/clean_tombstones").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn snapshot_is_a_servable_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, _db) = state_with_db(dir.path(), true);
        let (status, body) = send(&state, "POST", "/api/v1/admin/tsdb/snapshot?skip_head=maybe").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = send(&state, "POST", "/api/v1/admin/tsdb/snapshot").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["status"], "success");
        let name = v["data"]["name"].as_str().expect("name");
        let copy = Db::open(&dir.path().join(SNAPSHOTS_DIR).join(name), DbOptions::default())
            .expect("open snapshot");
        assert_eq!((samples(&copy, "a"), samples(&copy, "b")), (3, 3));
    }

    #[tokio::test]
    async fn tsdb_status_counts_the_head() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, _db) = state_with_db(dir.path(), false);
        let (status, body) = send(&state, "GET", "/api/v1/status/tsdb?limit=1").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["data"]["headStats"]["numSeries"], 2);
        assert_eq!(v["data"]["headStats"]["minTime"], 1000);
        assert_eq!(v["data"]["headStats"]["maxTime"], 3000);
        assert_eq!(v["data"]["seriesCountByMetricName"], serde_json::json!([{"name": "up", "value": 2}]));
        assert_eq!(v["data"]["labelValueCountByLabelName"].as_array().expect("list").len(), 1);
        let (status, body) = send(&state, "GET", "/api/v1/status/tsdb?limit=0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    #[test]
    fn snapshot_names_look_like_prometheus() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_512_940_344_500);
        let (a, b) = (snapshot_name(t), snapshot_name(t));
        assert!(a.starts_with("20171210T211224Z-"), "{a}");
        assert_eq!(a.len(), "20171210T211224Z-".len() + 16, "{a}");
        assert_ne!(a, b, "random suffix");
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("true"), Some(true));
        assert_eq!(parse_go_bool("0"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
    }

    #[test]
    fn stats_have_prometheus_keys() {
        let stats = TsdbStats {
            num_series: 2,
            num_label_pairs: 3,
            num_samples: 9,
            num_chunks: 4,
            min_time: Some(1000),
            max_time: Some(2000),
            series_count_by_metric_name: vec![NameCount { name: "up".into(), value: 2 }],
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&format_tsdb_stats(&stats)).expect("json");
        assert_eq!(v["headStats"]["numSeries"], 2);
        assert_eq!(v["headStats"]["minTime"], 1000);
        assert_eq!(v["headStats"]["chunkCount"], 4);
        assert_eq!(v["seriesCountByMetricName"][0]["name"], "up");
        assert_eq!(v["seriesCountByMetricName"][0]["value"], 2);
        assert_eq!(v["memoryInBytesByLabelName"], serde_json::json!([]));
        let empty: serde_json::Value =
            serde_json::from_str(&format_tsdb_stats(&TsdbStats::default())).expect("json");
        assert_eq!(empty["headStats"]["maxTime"], i64::MIN);
    }
}
