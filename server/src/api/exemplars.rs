//! `/api/v1/query_exemplars`: Vigil does not store exemplars yet (remote write drops
//! them), so every valid request honestly has no exemplars. Grafana probes this
//! endpoint when a data source loads and breaks on anything but a success.

use axum::extract::State;

use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params};
use super::response::{ApiError, ApiSuccess};
use crate::state::AppState;

/// `GET|POST /api/v1/query_exemplars`.
pub async fn query_exemplars(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    state.storage()?;
    let start = params.time_or("start", MIN_TIME_MS)?;
    let end = params.time_or("end", MAX_TIME_MS)?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    Ok(ApiSuccess::new("[]".into()))
}
