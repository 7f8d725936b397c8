//! `/api/v1/metadata`: type, help and unit per metric family, as senders reported them.

use axum::extract::State;

use super::json;
use super::params::Params;
use super::response::{ApiError, ApiSuccess};
use crate::state::AppState;

/// Reads an optional integer parameter; negative means "no limit", as in Prometheus.
fn int_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|s| s.parse::<i64>().map_err(|_| ApiError::bad_data(format!("{name} must be a number"))))
        .transpose()
}

/// `GET /api/v1/metadata` with `limit` (families), `limit_per_metric` and `metric`.
pub async fn metadata(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let store = state.storage()?;
    let limit = int_param(&params, "limit")?.unwrap_or(-1);
    let per_metric = int_param(&params, "limit_per_metric")?.unwrap_or(-1);
    let metric = params.get("metric");
    let all = tokio::task::spawn_blocking(move || store.metadata())
        .await
        .map_err(|e| ApiError::internal(format!("metadata lookup panicked: {e}")))?;
    let mut data = String::from("{");
    // Prometheus: limit=0 answers nothing, a negative limit everything.
    let families = usize::try_from(limit).unwrap_or(usize::MAX);
    // limit_per_metric=0 or negative means unlimited.
    let per_family = usize::try_from(per_metric).ok().filter(|&n| n > 0).unwrap_or(usize::MAX);
    let selected = all.iter().filter(|(f, _)| metric.is_none_or(|m| m == f)).take(families);
    for (i, (family, entries)) in selected.enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::push_str(&mut data, family);
        data.push_str(":[");
        for (j, md) in entries.iter().take(per_family).enumerate() {
            if j > 0 {
                data.push(',');
            }
            json::push_str_object(
                &mut data,
                [("type", md.kind.as_str()), ("help", md.help.as_str()), ("unit", md.unit.as_str())],
            );
        }
        data.push(']');
    }
    data.push('}');
    Ok(ApiSuccess::new(data))
}
