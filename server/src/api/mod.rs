//! Prometheus's HTTP API v1 and the operational endpoints, as one axum router.

mod admin;
mod exemplars;
#[cfg(test)]
mod ingest_route_tests;
mod json;
mod labels;
mod metadata;
mod otlp;
pub mod params;
mod query;
mod query_tools;
pub mod response;
#[cfg(test)]
mod router_tests;
mod rules;
mod self_metrics;
mod status;
mod write;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::state::AppState;

pub use json::{format_value, push_timestamp};
pub use labels::unescape_label_name;
pub use query::format_result;
pub use status::VERSION;

/// Every route Vigil serves.
pub fn router(state: AppState) -> Router {
    let write_limit = state.settings().max_write_body_bytes;
    Router::new()
        .route("/api/v1/write", post(write::write).layer(DefaultBodyLimit::max(write_limit)))
        .route("/api/v1/otlp/v1/metrics", post(otlp::metrics).layer(DefaultBodyLimit::max(write_limit)))
        .route("/v1/metrics", post(otlp::metrics).layer(DefaultBodyLimit::max(write_limit)))
        .route("/api/v1/query", get(query::instant).post(query::instant))
        .route("/api/v1/query_range", get(query::range).post(query::range))
        .route("/api/v1/format_query", get(query_tools::format_query).post(query_tools::format_query))
        .route("/api/v1/parse_query", get(query_tools::parse_query).post(query_tools::parse_query))
        .route("/api/v1/query_exemplars", get(exemplars::query_exemplars).post(exemplars::query_exemplars))
        .route("/api/v1/series", get(labels::series).post(labels::series))
        .route("/api/v1/labels", get(labels::label_names).post(labels::label_names))
        .route("/api/v1/label/{name}/values", get(labels::label_values))
        .route("/api/v1/metadata", get(metadata::metadata))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/tsdb", get(admin::tsdb_status))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).merge(put(admin::delete_series)),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).merge(put(admin::clean_tombstones)),
        )
        .route("/api/v1/admin/tsdb/snapshot", post(admin::snapshot).merge(put(admin::snapshot)))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/-/reload", post(rules::reload).put(rules::reload))
        .route("/metrics", get(self_metrics::metrics))
        .route("/-/healthy", get(status::healthy))
        .route("/-/ready", get(status::ready))
        .with_state(state)
}
