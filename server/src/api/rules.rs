//! `/api/v1/rules`, `/api/v1/alerts` in Prometheus's shapes, `POST /-/reload` and the
//! rule engine's `/metrics`.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};
use vigil_rules::alerting::{Alert, AlertState};
use vigil_rules::timefmt::rfc3339;
use vigil_rules::{Group, Rule};

use super::params::Params;
use super::response::{ApiError, ApiSuccess};
use crate::state::AppState;

/// Go's zero `time.Time`, which Prometheus prints for rules never evaluated.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// Content type of the OpenMetrics text `/metrics` is encoded in.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn time_or_zero(ms: Option<i64>) -> String {
    ms.map(rfc3339).unwrap_or_else(|| ZERO_TIME.into())
}

fn string_map<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Json {
    Json::Object(pairs.map(|(k, v)| (k.to_string(), Json::String(v.to_string()))).collect())
}

/// Prometheus prints alert values with Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
fn go_exp_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn alert_json(a: &Alert) -> Json {
    let mut m = Map::new();
    m.insert("labels".into(), string_map(a.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))));
    m.insert("annotations".into(), string_map(a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("activeAt".into(), json!(rfc3339(a.active_at)));
    if let Some(k) = a.keep_firing_since {
        m.insert("keepFiringSince".into(), json!(rfc3339(k)));
    }
    m.insert("value".into(), json!(go_exp_float(a.value)));
    Json::Object(m)
}

fn active_alerts(rule: &vigil_rules::alerting::AlertingRule) -> impl Iterator<Item = &Alert> {
    rule.active.values().filter(|a| a.state != AlertState::Inactive)
}

fn rule_json(entry: &vigil_rules::group::RuleEntry, with_alerts: bool) -> Json {
    let mut m = Map::new();
    match &entry.rule {
        Rule::Alerting(a) => {
            m.insert("state".into(), json!(a.state().as_str()));
            m.insert("name".into(), json!(a.name));
            m.insert("query".into(), json!(a.expr));
            m.insert("duration".into(), json!(a.for_ms as f64 / 1000.0));
            m.insert("keepFiringFor".into(), json!(a.keep_firing_for_ms as f64 / 1000.0));
            m.insert("labels".into(), string_map(a.labels.iter().map(|(k, t)| (k.as_str(), t.source()))));
            m.insert(
                "annotations".into(),
                string_map(a.annotations.iter().map(|(k, t)| (k.as_str(), t.source()))),
            );
            if with_alerts {
                m.insert("alerts".into(), Json::Array(active_alerts(a).map(alert_json).collect()));
            }
            m.insert("type".into(), json!("alerting"));
        }
        Rule::Recording { record, expr, labels } => {
            m.insert("name".into(), json!(record));
            m.insert("query".into(), json!(expr));
            m.insert("labels".into(), string_map(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
            m.insert("type".into(), json!("recording"));
        }
    }
    m.insert("health".into(), json!(entry.health.as_str()));
    if let Some(e) = &entry.last_error {
        m.insert("lastError".into(), json!(e));
    }
    m.insert("evaluationTime".into(), json!(entry.eval_seconds));
    m.insert("lastEvaluation".into(), json!(time_or_zero(entry.last_eval_ms)));
    Json::Object(m)
}

fn group_json(g: &Group, rules: Vec<Json>) -> Json {
    json!({
        "name": g.name,
        "file": g.file,
        "rules": rules,
        "interval": g.interval_ms as f64 / 1000.0,
        "limit": g.limit,
        "evaluationTime": g.eval_seconds,
        "lastEvaluation": time_or_zero(g.last_eval_ms),
    })
}

fn groups(state: &AppState) -> Result<Vec<Group>, ApiError> {
    state.storage()?;
    let rules = state.rules().ok_or_else(ApiError::unavailable)?;
    Ok(rules.manager().groups())
}

/// `GET /api/v1/rules` with `type`, `rule_name[]`, `rule_group[]`, `file[]` and
/// `exclude_alerts`.
pub async fn rules(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let typ = params.get("type").unwrap_or("").to_ascii_lowercase();
    let (want_alerting, want_recording) = match typ.as_str() {
        "" => (true, true),
        "alert" => (true, false),
        "record" => (false, true),
        other => return Err(ApiError::invalid_param("type", format!("not supported value {other:?}"))),
    };
    let exclude_alerts = match params.get("exclude_alerts") {
        None => false,
        Some(v) => v.parse::<bool>().map_err(|e| ApiError::invalid_param("exclude_alerts", e))?,
    };
    let set = |name: &str| -> HashSet<String> { params.all(name).into_iter().map(String::from).collect() };
    let (names, group_names, files) = (set("rule_name[]"), set("rule_group[]"), set("file[]"));
    let rule_filtered = !typ.is_empty() || !names.is_empty();
    let mut out = Vec::new();
    for g in groups(&state)? {
        if (!group_names.is_empty() && !group_names.contains(&g.name))
            || (!files.is_empty() && !files.contains(&g.file))
        {
            continue;
        }
        let rules: Vec<Json> = g
            .rules
            .iter()
            .filter(|r| match r.rule {
                Rule::Alerting(_) => want_alerting,
                Rule::Recording { .. } => want_recording,
            })
            .filter(|r| names.is_empty() || names.contains(r.rule.name()))
            .map(|r| rule_json(r, !exclude_alerts))
            .collect();
        if rule_filtered && rules.is_empty() {
            continue;
        }
        out.push(group_json(&g, rules));
    }
    let data = json!({ "groups": out });
    Ok(ApiSuccess::new(data.to_string()))
}

/// `GET /api/v1/alerts`: every pending and firing alert.
pub async fn alerts(State(state): State<AppState>) -> Result<ApiSuccess, ApiError> {
    let mut out = Vec::new();
    for g in groups(&state)? {
        for r in &g.rules {
            if let Rule::Alerting(a) = &r.rule {
                out.extend(active_alerts(a).map(alert_json));
            }
        }
    }
    Ok(ApiSuccess::new(json!({ "alerts": out }).to_string()))
}

/// `POST /-/reload`: re-reads the configuration and rule files; a bad file keeps the
/// old rules and answers 500 with the error, as Prometheus does.
pub async fn reload(State(state): State<AppState>) -> Response {
    let Some(rules) = state.rules().cloned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "Vigil is starting: the rule engine is not running yet\n")
            .into_response();
    };
    match tokio::task::spawn_blocking(move || rules.reload()).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response()
        }
    }
}

/// `GET /metrics`: the rule engine's and notifier's self-monitoring.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.rules().map(|r| r.render_metrics()).unwrap_or_else(|| "# EOF\n".into());
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_like_go_exponent_format() {
        assert_eq!(go_exp_float(1.0), "1e+00");
        assert_eq!(go_exp_float(0.25), "2.5e-01");
        assert_eq!(go_exp_float(12345.0), "1.2345e+04");
    }
}
