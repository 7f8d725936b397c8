//! `/api/v1/query_exemplars`: the exemplars of the series any selector in the
//! `query` expression selects, from the in-memory exemplar store, in Prometheus's
//! shape. Grafana sends a panel's whole expression and probes this endpoint when a
//! data source loads.

use axum::extract::State;
use promql_parser::label::MatchOp as PromOp;
use promql_parser::parser::{Expr, VectorSelector};
use vigil_storage::{MatchOp, Matcher};

use super::json;
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params};
use super::response::{ApiError, ApiSuccess};
use crate::state::AppState;

/// Collects the vector selectors of an expression, each as storage matchers (a
/// selector with `or` alternatives gives one entry per alternative).
fn selectors(expr: &Expr, out: &mut Vec<Vec<Matcher>>) -> Result<(), ApiError> {
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                selectors(p, out)?;
            }
            selectors(&a.expr, out)
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out)?;
            selectors(&b.rhs, out)
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::VectorSelector(vs) => push_selector(vs, out),
        Expr::MatrixSelector(ms) => push_selector(&ms.vs, out),
        Expr::Call(c) => c.args.args.iter().try_for_each(|a| selectors(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

fn push_selector(vs: &VectorSelector, out: &mut Vec<Vec<Matcher>>) -> Result<(), ApiError> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, ApiError> {
        let mut converted = Vec::with_capacity(ms.len() + 1);
        if let Some(name) = &vs.name
            && !ms.iter().any(|m| m.name == vigil_storage::METRIC_NAME)
        {
            converted.push(Matcher::equal(vigil_storage::METRIC_NAME, name.clone()));
        }
        for m in ms {
            let op = match m.op {
                PromOp::Equal => MatchOp::Equal,
                PromOp::NotEqual => MatchOp::NotEqual,
                PromOp::Re(_) => MatchOp::Regex,
                PromOp::NotRe(_) => MatchOp::NotRegex,
            };
            let matcher = Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| ApiError::bad_data(format!("invalid matcher in query: {e}")))?;
            converted.push(matcher);
        }
        Ok(converted)
    };
    out.push(convert(&vs.matchers.matchers)?);
    for alt in &vs.matchers.or_matchers {
        out.push(convert(alt)?);
    }
    Ok(())
}

/// `GET|POST /api/v1/query_exemplars` with `query`, `start` and `end`.
pub async fn query_exemplars(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    state.storage()?;
    let start = params.time_or("start", MIN_TIME_MS)?;
    let end = params.time_or("end", MAX_TIME_MS)?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    let mut sets = Vec::new();
    if let Some(q) = params.get("query") {
        let expr = promql_parser::parser::parse(q)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
        selectors(&expr, &mut sets)?;
    }
    let found = state.exemplars().query(&sets, start, end);
    let mut data = String::from("[");
    for (i, (series, exemplars)) in found.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str("{\"seriesLabels\":");
        push_labels(&mut data, series);
        data.push_str(",\"exemplars\":[");
        for (j, ex) in exemplars.iter().enumerate() {
            if j > 0 {
                data.push(',');
            }
            data.push_str("{\"labels\":");
            push_labels(&mut data, &ex.labels);
            data.push_str(",\"value\":");
            json::push_str(&mut data, &json::format_value(ex.value));
            data.push_str(",\"timestamp\":");
            push_model_time(&mut data, ex.t);
            data.push('}');
        }
        data.push_str("]}");
    }
    data.push(']');
    Ok(ApiSuccess::new(data))
}

/// Appends a time as Prometheus's `model.Time` marshals it: seconds with the shortest
/// fraction (`1.5`, not `1.500`), unquoted.
fn push_model_time(out: &mut String, t_ms: i64) {
    let mut s = String::new();
    json::push_timestamp(&mut s, t_ms);
    if s.contains('.') {
        s.truncate(s.trim_end_matches('0').len());
    }
    out.push_str(&s);
}

/// Appends labels as a JSON object.
fn push_labels(out: &mut String, labels: &vigil_storage::Labels) {
    json::push_str_object(out, labels.iter().map(|l| (l.name, l.value)));
}
