//! `/api/v1/rules`, `/api/v1/alerts` in Prometheus's shapes and `POST /-/reload`.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
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

/// A float as Go's JSON encoder writes it: whole numbers without a fraction (`1`, not `1.0`).
fn go_number(v: f64) -> Json {
    // Go switches to exponent form beyond 1e21; durations never get there.
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 { json!(v as i64) } else { json!(v) }
}

fn alert_json(a: &Alert) -> Json {
    let mut m = Map::new();
    m.insert("labels".into(), string_map(a.labels.iter().map(|l| (l.name, l.value))));
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
            m.insert("duration".into(), go_number(a.for_ms as f64 / 1000.0));
            m.insert("keepFiringFor".into(), go_number(a.keep_firing_for_ms as f64 / 1000.0));
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
            // Prometheus omits empty labels on recording rules (`omitempty`).
            if !labels.is_empty() {
                m.insert("labels".into(), string_map(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
            }
            m.insert("type".into(), json!("recording"));
        }
    }
    m.insert("health".into(), json!(entry.health.as_str()));
    if let Some(e) = &entry.last_error {
        m.insert("lastError".into(), json!(e));
    }
    m.insert("evaluationTime".into(), go_number(entry.eval_seconds));
    m.insert("lastEvaluation".into(), json!(time_or_zero(entry.last_eval_ms)));
    Json::Object(m)
}

fn group_json(g: &Group, rules: Vec<Json>) -> Json {
    json!({
        "name": g.name,
        "file": g.file,
        "rules": rules,
        "interval": go_number(g.interval_ms as f64 / 1000.0),
        "limit": g.limit,
        "evaluationTime": go_number(g.eval_seconds),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use vigil_query::Engine;
    use vigil_storage::Labels;
    use vigil_storage::memory::MemStorage;

    use crate::config::Config;
    use crate::rules_wiring::{RulesHandle, RulesOptions};
    use crate::state::ApiSettings;

    const RULES: &str = "groups:\n  - name: fast\n    interval: 50ms\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 1h\n        labels:\n          severity: page\n        annotations:\n          summary: '{{ $labels.job }} down'\n";

    async fn get(state: &AppState, uri: &str) -> (StatusCode, Json) {
        let req = Request::get(uri).body(Body::empty()).expect("request");
        let resp = crate::router(state.clone()).oneshot(req).await.expect("infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Json::Null))
    }

    #[tokio::test]
    async fn rules_and_alerts_in_prometheus_shapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("r.yml");
        std::fs::write(&file, RULES).expect("write");
        let store = Arc::new(MemStorage::new());
        let now = vigil_rules::manager::now_ms();
        store.add(&Labels::from_pairs([("__name__", "up"), ("job", "a")]), now, 0.0).expect("add");
        let config = Config::parse(&format!("rule_files: ['{}']\n", file.display())).expect("config");
        let state = AppState::with_store(store.clone(), Engine::default(), ApiSettings::default());
        let (handle, errors) =
            RulesHandle::start(store, Engine::default(), &config, RulesOptions::default()).expect("start");
        assert!(errors.is_empty(), "{errors:?}");
        state.set_rules(handle.clone());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        let (status, body) = get(&state, "/api/v1/rules").await;
        assert_eq!(status, StatusCode::OK);
        let group = &body["data"]["groups"][0];
        assert_eq!(group["name"], "fast");
        assert_eq!(group["file"], file.display().to_string());
        assert_eq!(group["interval"], 0.05);
        let rec = &group["rules"][0];
        assert_eq!(
            (rec["type"].as_str(), rec["name"].as_str(), rec["health"].as_str()),
            (Some("recording"), Some("job:up:sum"), Some("ok"))
        );
        assert_eq!(rec["query"], "sum by (job) (up)");
        assert!(rec.get("labels").is_none(), "omitted when empty, as in Prometheus");
        let alert = &group["rules"][1];
        assert_eq!(alert["type"], "alerting");
        assert_eq!(alert["state"], "pending");
        assert_eq!(alert["duration"], 3600);
        assert_eq!(alert["labels"]["severity"], "page");
        assert_eq!(alert["annotations"]["summary"], "{{ $labels.job }} down");
        let active = &alert["alerts"][0];
        assert_eq!(
            active["labels"],
            serde_json::json!({"alertname": "Down", "job": "a", "severity": "page"})
        );
        assert_eq!(active["annotations"]["summary"], "a down");
        assert_eq!(active["value"], "0e+00");
        assert!(active["activeAt"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(alert["lastEvaluation"].as_str().is_some_and(|t| t != ZERO_TIME));

        let (_, body) = get(&state, "/api/v1/rules?type=record").await;
        assert_eq!(body["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(1));
        let (_, body) = get(&state, "/api/v1/rules?rule_group[]=other").await;
        assert_eq!(body["data"]["groups"], serde_json::json!([]));
        let (_, body) = get(&state, "/api/v1/rules?rule_name[]=Down&exclude_alerts=true").await;
        let only = &body["data"]["groups"][0]["rules"];
        assert_eq!(only.as_array().map(Vec::len), Some(1));
        assert!(only[0].get("alerts").is_none());
        let (status, body) = get(&state, "/api/v1/rules?type=bogus").await;
        assert_eq!((status, body["errorType"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_data")));

        let (_, body) = get(&state, "/api/v1/alerts").await;
        assert_eq!(body["data"]["alerts"][0]["state"], "pending");
        let req = Request::get("/metrics").body(Body::empty()).expect("request");
        let resp = crate::router(state.clone()).oneshot(req).await.expect("infallible");
        let text = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("prometheus_rule_evaluations_total{rule_group="), "{text}");
        assert!(text.contains("prometheus_rule_group_last_duration_seconds{rule_group="), "{text}");
        tokio::task::spawn_blocking(move || handle.stop()).await.expect("stop");
    }

    #[test]
    fn values_print_like_go_exponent_format() {
        assert_eq!(go_exp_float(1.0), "1e+00");
        assert_eq!(go_exp_float(0.25), "2.5e-01");
        assert_eq!(go_exp_float(12345.0), "1.2345e+04");
    }
}
