//! `/api/v1/query` and `/api/v1/query_range`: parameter checks with Prometheus's texts,
//! evaluation off the async threads, and the result in Prometheus's JSON shapes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use vigil_query::{CancelToken, QueryError, QueryOptions, QueryResult, QueryStats, Value};
use vigil_storage::Labels;

use super::json;
use super::params::{Params, parse_duration_ms, parse_time};
use super::response::{ApiError, ApiSuccess, ErrorType, TRUNCATED_WARNING};
use crate::state::AppState;

/// Most points a range query may return per series, as Prometheus limits it: enough
/// for 60s resolution over a week or 1h over a year.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Now in ms since the epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `GET|POST /api/v1/query`.
pub async fn instant(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let store = state.storage()?;
    let limit = params.limit()?;
    let time = params.time_or("time", now_ms())?;
    let opts = query_options(&params)?;
    let stats = wants_stats(&params);
    let query = params.get("query").unwrap_or("").to_string();
    let engine = state.engine().clone();
    let guard = CancelOnDrop::default();
    let cancel = guard.0.clone();
    let result = tokio::task::spawn_blocking(move || {
        engine.instant_query_cancellable(&*store, &query, time, &opts, &cancel)
    })
    .await
    .map_err(|e| ApiError::internal(format!("query evaluation panicked: {e}")))?;
    drop(guard);
    Ok(format_answer(result.map_err(query_error)?, limit, stats))
}

/// `GET|POST /api/v1/query_range`.
pub async fn range(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let store = state.storage()?;
    let start =
        parse_time(params.get("start").unwrap_or("")).map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time(params.get("end").unwrap_or("")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    let step = parse_duration_ms(params.get("step").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (i128::from(end) - i128::from(start)) / i128::from(step) > i128::from(MAX_POINTS_PER_SERIES) {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let opts = query_options(&params)?;
    let limit = params.limit()?;
    let stats = wants_stats(&params);
    let query = params.get("query").unwrap_or("").to_string();
    let engine = state.engine().clone();
    let guard = CancelOnDrop::default();
    let cancel = guard.0.clone();
    let result = tokio::task::spawn_blocking(move || {
        engine.range_query_cancellable(&*store, &query, start, end, step, &opts, &cancel)
    })
    .await
    .map_err(|e| ApiError::internal(format!("query evaluation panicked: {e}")))?;
    drop(guard);
    Ok(format_answer(result.map_err(query_error)?, limit, stats))
}

/// Cancels the query when dropped: axum drops a handler's future when the client
/// disconnects, and the evaluation on the blocking thread then stops at its next check.
#[derive(Default)]
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Prometheus adds `stats` to the answer for any non-empty `stats` parameter.
fn wants_stats(params: &Params) -> bool {
    params.get("stats").is_some_and(|s| !s.is_empty())
}

/// `timeout` and `lookback_delta`, as the engine takes them.
fn query_options(params: &Params) -> Result<QueryOptions, ApiError> {
    let timeout = params.duration_ms("timeout")?;
    let lookback = match params.get("lookback_delta") {
        None => None,
        Some(s) => Some(
            parse_duration_ms(s)
                .map_err(|e| ApiError::bad_data(format!("error parsing lookback delta duration: {e}")))?,
        ),
    };
    let to_duration = |ms: i64| Duration::from_millis(ms.max(0) as u64);
    Ok(QueryOptions { timeout: timeout.map(to_duration), lookback_delta: lookback.map(to_duration) })
}

/// Maps an engine error to Prometheus's error type and text.
pub fn query_error(err: QueryError) -> ApiError {
    let kind = match &err {
        QueryError::Parse(_) => return ApiError::invalid_param("query", err),
        QueryError::Execution(_) | QueryError::TooManySamples(_) => ErrorType::Execution,
        QueryError::Timeout(_) => ErrorType::Timeout,
        QueryError::Canceled(_) => ErrorType::Canceled,
        QueryError::Storage(_) => ErrorType::Internal,
    };
    ApiError { kind, message: err.to_string() }
}

/// The `data` of a query answer: `{"resultType":…,"result":…}`, cut to `limit` series
/// (0 = all) with Prometheus's warning when cut.
pub fn format_result(result: QueryResult, limit: usize) -> ApiSuccess {
    format_answer(result, limit, false)
}

/// [`format_result`] with the `stats` object Prometheus adds when asked for.
pub fn format_answer(result: QueryResult, limit: usize, with_stats: bool) -> ApiSuccess {
    let QueryResult { mut value, mut warnings, infos, stats } = result;
    let truncated = match &mut value {
        Value::Vector(v) if limit > 0 && v.len() > limit => {
            v.truncate(limit);
            true
        }
        Value::Matrix(m) if limit > 0 && m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if truncated {
        warnings.push(TRUNCATED_WARNING.into());
    }
    let mut data = String::from(r#"{"resultType":"#);
    json::push_str(&mut data, value.type_name());
    data.push_str(r#","result":"#);
    push_value(&mut data, &value);
    if with_stats {
        data.push_str(r#","stats":"#);
        push_stats(&mut data, &stats);
    }
    data.push('}');
    ApiSuccess { data, warnings, infos }
}

/// Prometheus's `stats` object: timings in seconds and sample counts. Per-step counts
/// are left out, as Prometheus leaves them out unless `promql-per-step-stats` is on.
fn push_stats(out: &mut String, s: &QueryStats) {
    let eval = s.preparation + s.inner_eval + s.result_sort;
    let timings = [
        ("evalTotalTime", eval),
        ("resultSortTime", s.result_sort),
        ("queryPreparationTime", s.preparation),
        ("innerEvalTime", s.inner_eval),
        ("execQueueTime", Duration::ZERO),
        ("execTotalTime", eval),
    ];
    out.push_str(r#"{"timings":{"#);
    for (i, (name, d)) in timings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::push_str(out, name);
        out.push(':');
        out.push_str(&d.as_secs_f64().to_string());
    }
    out.push_str(&format!(
        r#"}},"samples":{{"totalQueryableSamples":{},"peakSamples":{}}}}}"#,
        s.total_queryable_samples, s.peak_samples
    ));
}

fn push_metric(out: &mut String, labels: &Labels) {
    json::push_str_object(out, labels.iter().map(|l| (l.name, l.value)));
}

/// Appends a query value in Prometheus's JSON shape.
pub fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Scalar { t, v } => json::push_point(out, *t, *v),
        Value::String { t, v } => {
            out.push('[');
            json::push_timestamp(out, *t);
            out.push(',');
            json::push_str(out, v);
            out.push(']');
        }
        Value::Vector(elems) => {
            out.push('[');
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_metric(out, &e.labels);
                out.push_str(r#","value":"#);
                json::push_point(out, e.t, e.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_metric(out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json::push_point(out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_query::{MatrixSeries, VectorElement};
    use vigil_storage::Sample;

    fn result(value: Value) -> QueryResult {
        QueryResult { value, warnings: vec![], infos: vec![], stats: QueryStats::default() }
    }

    #[test]
    fn dropping_the_request_cancels_its_query() {
        let guard = CancelOnDrop::default();
        let token = guard.0.clone();
        assert!(!token.is_cancelled());
        drop(guard);
        assert!(token.is_cancelled());
    }

    #[test]
    fn stats_object_has_prometheus_shape() {
        let mut r = result(Value::Scalar { t: 0, v: 1.0 });
        r.stats.total_queryable_samples = 7;
        r.stats.peak_samples = 3;
        r.stats.inner_eval = Duration::from_millis(1500);
        let data: serde_json::Value = serde_json::from_str(&format_answer(r, 0, true).data).expect("json");
        let stats = &data["stats"];
        assert_eq!(stats["samples"]["totalQueryableSamples"], 7);
        assert_eq!(stats["samples"]["peakSamples"], 3);
        assert_eq!(stats["timings"]["innerEvalTime"], 1.5);
        assert_eq!(stats["timings"]["evalTotalTime"], 1.5);
        for k in ["resultSortTime", "queryPreparationTime", "execQueueTime", "execTotalTime"] {
            assert!(stats["timings"][k].is_f64() || stats["timings"][k].is_u64(), "{k}");
        }
        let plain = result(Value::Scalar { t: 0, v: 1.0 });
        assert!(!format_answer(plain, 0, false).data.contains("stats"));
    }

    #[test]
    fn grafana_health_check_scalar_is_exact() {
        let got = format_result(result(Value::Scalar { t: 4000, v: 2.0 }), 0).to_json();
        assert_eq!(got, r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#);
    }

    #[test]
    fn vector_matrix_and_string_shapes() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a<b")]);
        let vector = Value::Vector(vec![VectorElement { labels: labels.clone(), t: 1500, v: f64::INFINITY }]);
        assert_eq!(
            format_result(result(vector), 0).data,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\u003cb"},"value":[1.500,"+Inf"]}]}"#
        );
        let matrix = Value::Matrix(vec![MatrixSeries {
            labels: Labels::empty(),
            samples: vec![Sample::new(1000, 1e-7), Sample::new(2001, f64::NAN)],
        }]);
        assert_eq!(
            format_result(result(matrix), 0).data,
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1e-07"],[2.001,"NaN"]]}]}"#
        );
        let string = Value::String { t: 0, v: "hi".into() };
        assert_eq!(format_result(result(string), 0).data, r#"{"resultType":"string","result":[0,"hi"]}"#);
    }

    #[test]
    fn limit_truncates_with_warning() {
        let e = |v| VectorElement { labels: Labels::empty(), t: 0, v };
        let got = format_result(result(Value::Vector(vec![e(1.0), e(2.0)])), 1);
        assert_eq!(got.warnings, vec![TRUNCATED_WARNING.to_string()]);
        assert!(got.data.ends_with(r#"[{"metric":{},"value":[0,"1"]}]}"#), "{}", got.data);
    }

    #[test]
    fn engine_errors_map_to_prometheus_types() {
        let parse = query_error(QueryError::Parse("1:3: parse error: unexpected end of input".into()));
        assert_eq!(parse.kind, ErrorType::BadData);
        assert_eq!(parse.message, r#"invalid parameter "query": 1:3: parse error: unexpected end of input"#);
        assert_eq!(query_error(QueryError::Execution("x".into())).kind, ErrorType::Execution);
        assert_eq!(query_error(QueryError::Timeout("query execution")).kind, ErrorType::Timeout);
    }
}
