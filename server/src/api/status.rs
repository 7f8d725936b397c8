//! `/api/v1/status/buildinfo`, `/-/healthy` and `/-/ready`.

use axum::extract::State;
use axum::http::StatusCode;

use super::json;
use super::response::ApiSuccess;
use crate::state::AppState;

/// Vigil's version, from the crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git revision, when the build set `VIGIL_REVISION`.
const REVISION: &str = match option_env!("VIGIL_REVISION") {
    Some(r) => r,
    None => "unknown",
};
/// Git branch, when the build set `VIGIL_BRANCH`.
const BRANCH: &str = match option_env!("VIGIL_BRANCH") {
    Some(b) => b,
    None => "unknown",
};
/// Who built it, when the build set `VIGIL_BUILD_USER`.
const BUILD_USER: &str = match option_env!("VIGIL_BUILD_USER") {
    Some(u) => u,
    None => "unknown",
};
/// When it was built, when the build set `VIGIL_BUILD_DATE`.
const BUILD_DATE: &str = match option_env!("VIGIL_BUILD_DATE") {
    Some(d) => d,
    None => "unknown",
};
/// What `goVersion` says for a Rust build: the compiler, as `build.rs` recorded it.
const TOOLCHAIN: &str = match option_env!("VIGIL_RUSTC_VERSION") {
    Some(v) => v,
    None => "rust",
};

/// `GET /api/v1/status/buildinfo`: every field a string and no `features`, so Grafana
/// treats Vigil as Prometheus (a non-empty `features` would mean Mimir).
pub async fn buildinfo() -> ApiSuccess {
    let mut data = String::new();
    json::push_str_object(
        &mut data,
        [
            ("version", VERSION),
            ("revision", REVISION),
            ("branch", BRANCH),
            ("buildUser", BUILD_USER),
            ("buildDate", BUILD_DATE),
            ("goVersion", TOOLCHAIN),
        ],
    );
    ApiSuccess::new(data)
}

/// `GET|HEAD /-/healthy`: the process serves HTTP.
pub async fn healthy() -> (StatusCode, &'static str) {
    (StatusCode::OK, "Vigil is Healthy.\n")
}

/// `GET|HEAD /-/ready`: 200 once the store is open and its WAL replayed, 503 before.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.is_ready() {
        (StatusCode::OK, "Vigil is Ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
    }
}
