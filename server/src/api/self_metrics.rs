//! `GET /metrics`: Vigil's own metrics in the OpenMetrics text format: the storage's
//! (under Prometheus's `prometheus_tsdb_*` names where the meaning is the same, so
//! Prometheus self-monitoring dashboards work) and the rule engine's and notifier's.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vigil_storage::Db;

use super::response::{ApiError, blocking};
use crate::state::AppState;

/// Content type of the OpenMetrics text `/metrics` is encoded in.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut body = String::new();
    // No storage section while the store is still opening: the rest is still useful.
    if let Ok(db) = state.db() {
        body = blocking(move || Ok(render_storage(&db))).await?;
    }
    if let Some(rules) = state.rules() {
        rules.render_metrics(&mut body);
    }
    if prometheus_client::encoding::text::encode_eof(&mut body).is_err() {
        return Err(ApiError::internal("encoding metrics failed"));
    }
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE));
    Ok(resp)
}

/// The storage's metrics, read at the time of the scrape.
fn render_storage(db: &Db) -> String {
    let mut registry = Registry::default();
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(name, help, g);
    };
    let stats = db.head_stats();
    gauge(
        &mut registry,
        "prometheus_tsdb_head_series",
        "Total number of series in the head block.",
        stats.num_series,
    );
    gauge(
        &mut registry,
        "prometheus_tsdb_head_chunks",
        "Total number of chunks in the head block.",
        stats.num_chunks,
    );
    gauge(&mut registry, "vigil_tsdb_head_samples", "Samples held in the head block.", stats.num_samples);
    if let (Some(lo), Some(hi)) = (stats.min_time, stats.max_time) {
        let g = Gauge::<i64>::default();
        g.set(lo);
        registry.register("prometheus_tsdb_head_min_time", "Minimum time bound of the head block (ms).", g);
        let g = Gauge::<i64>::default();
        g.set(hi);
        registry.register("prometheus_tsdb_head_max_time", "Maximum timestamp of the head block (ms).", g);
    }
    let blocks = db.blocks();
    gauge(
        &mut registry,
        "prometheus_tsdb_blocks_loaded",
        "Number of currently loaded data blocks.",
        blocks.len() as u64,
    );
    let bytes = blocks.iter().map(|b| b.stats.num_bytes).sum();
    gauge(
        &mut registry,
        "prometheus_tsdb_storage_blocks_bytes",
        "The number of bytes that are currently used for local storage by all blocks.",
        bytes,
    );
    let corrupt = Counter::<u64>::default();
    corrupt.inc_by(db.corrupt_blocks());
    registry.register(
        "vigil_tsdb_corrupt_blocks",
        "Blocks found corrupt (at start, by a read or by the background checksum scrub) and moved aside, never served.",
        corrupt,
    );
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode_registry(&mut out, &registry) {
        tracing::error!(error = %e, "encoding storage metrics failed");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use vigil_query::Engine;
    use vigil_storage::{DbOptions, Labels};

    use crate::state::ApiSettings;

    #[tokio::test]
    async fn storage_metrics_are_served_with_one_eof() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(vigil_storage::Db::open(dir.path(), DbOptions::default()).expect("open"));
        let mut app = vigil_storage::Appendable::appender(&*db);
        app.append(&Labels::from_pairs([("__name__", "up"), ("job", "a")]), 1_000, 1.0);
        app.commit().expect("commit");
        let state = crate::state::AppState::new(Engine::default(), ApiSettings::default());
        state.set_db(db.clone());
        state.set_ready(db);
        let req = Request::get("/metrics").body(Body::empty()).expect("request");
        let resp = crate::router(state).oneshot(req).await.expect("infallible");
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        for line in [
            "prometheus_tsdb_head_series 1",
            "prometheus_tsdb_head_chunks 1",
            "prometheus_tsdb_head_min_time 1000",
            "prometheus_tsdb_blocks_loaded 0",
            "vigil_tsdb_corrupt_blocks_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in {text}");
        }
        assert!(text.ends_with("# EOF\n") && text.matches("# EOF").count() == 1, "{text}");
    }
}
