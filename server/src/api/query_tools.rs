//! `/api/v1/format_query` and `/api/v1/parse_query`: a query pretty-printed, or its
//! syntax tree in the JSON shape Prometheus 3.5's UI tree view reads.

use axum::extract::State;
use serde_json::{Value as Json, json};
use vigil_query::promql_parser::label::Matcher;
use vigil_query::promql_parser::parser::{
    self as pp, AtModifier, Expr, LabelModifier, Offset, VectorMatchCardinality,
};
use vigil_query::syntax_tree;

use super::params::Params;
use super::query::query_error;
use super::response::{ApiError, ApiSuccess};
use crate::state::AppState;

/// `GET|POST /api/v1/format_query`: the query as Prometheus's pretty printer writes it.
pub async fn format_query(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let tree = parse(&state, &params)?;
    Ok(ApiSuccess::new(Json::String(tree.prettify()).to_string()))
}

/// `GET|POST /api/v1/parse_query`: the query's syntax tree as JSON.
pub async fn parse_query(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let tree = parse(&state, &params)?;
    Ok(ApiSuccess::new(translate(&tree).to_string()))
}

/// Checks the query as the engine would (errors, disabled functions), then returns
/// the parser's tree of it.
fn parse(state: &AppState, params: &Params) -> Result<Expr, ApiError> {
    let query = params.get("query").unwrap_or("");
    state.engine().check_syntax(query).map_err(query_error)?;
    syntax_tree(query).map_err(|_| {
        ApiError::bad_data(
            "invalid parameter \"query\": showing duration expressions or anchored/smoothed selectors is not supported yet",
        )
    })
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    let ms = |d: &std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

/// `timestamp` (ms, for `@ <time>`) and `startOrEnd` (for `@ start()`/`@ end()`).
fn at_fields(at: &Option<AtModifier>) -> (Json, Json) {
    match at {
        None => (Json::Null, Json::Null),
        Some(AtModifier::Start) => (Json::Null, json!("start")),
        Some(AtModifier::End) => (Json::Null, json!("end")),
        Some(AtModifier::At(t)) => {
            let ms = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
            };
            (json!(ms), Json::Null)
        }
    }
}

/// The matchers as Prometheus keeps them: the braces' matchers, then the metric name.
fn matchers(vs: &pp::VectorSelector) -> Json {
    let one = |m: &Matcher| json!({"name": m.name, "value": m.value, "type": m.op.to_string()});
    let mut out: Vec<Json> = vs.matchers.matchers.iter().map(one).collect();
    if let Some(name) = &vs.name
        && !vs.matchers.matchers.iter().any(|m| m.name == "__name__")
    {
        out.push(json!({"name": "__name__", "value": name, "type": "="}));
    }
    Json::Array(out)
}

/// Formats a number as Go's `strconv.FormatFloat(v, 'f', -1, 64)` does.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn label_list(l: Option<&vigil_query::promql_parser::label::Labels>) -> Json {
    json!(l.map(|l| l.labels.clone()).unwrap_or_default())
}

/// Translates the syntax tree into Prometheus's JSON shape.
fn translate(e: &Expr) -> Json {
    match e {
        Expr::Aggregate(a) => {
            let (grouping, without) = match &a.modifier {
                None => (json!([]), false),
                Some(LabelModifier::Include(l)) => (label_list(Some(l)), false),
                Some(LabelModifier::Exclude(l)) => (label_list(Some(l)), true),
            };
            json!({
                "type": "aggregation",
                "op": a.op.to_string(),
                "expr": translate(&a.expr),
                "param": a.param.as_deref().map_or(Json::Null, translate),
                "grouping": grouping,
                "without": without,
            })
        }
        Expr::Binary(b) => {
            let both_vectors = b.lhs.value_type() == pp::value::ValueType::Vector
                && b.rhs.value_type() == pp::value::ValueType::Vector;
            let matching = match (&b.modifier, both_vectors) {
                (_, false) => Json::Null,
                (None, true) => {
                    let card = if b.op.is_set_operator() { "many-to-many" } else { "one-to-one" };
                    json!({"card": card, "labels": [], "on": false, "include": []})
                }
                (Some(m), true) => {
                    let (card, include) = match &m.card {
                        VectorMatchCardinality::OneToOne => ("one-to-one", json!([])),
                        VectorMatchCardinality::ManyToOne(l) => ("many-to-one", label_list(Some(l))),
                        VectorMatchCardinality::OneToMany(l) => ("one-to-many", label_list(Some(l))),
                        VectorMatchCardinality::ManyToMany => ("many-to-many", json!([])),
                    };
                    let (labels, on) = match &m.matching {
                        None => (json!([]), false),
                        Some(LabelModifier::Include(l)) => (label_list(Some(l)), true),
                        Some(LabelModifier::Exclude(l)) => (label_list(Some(l)), false),
                    };
                    json!({"card": card, "labels": labels, "on": on, "include": include})
                }
            };
            json!({
                "type": "binaryExpr",
                "op": b.op.to_string(),
                "lhs": translate(&b.lhs),
                "rhs": translate(&b.rhs),
                "matching": matching,
                "bool": b.modifier.as_ref().is_some_and(|m| m.return_bool),
            })
        }
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": c.func.return_type.to_string(),
            },
            "args": c.args.args.iter().map(|a| translate(a)).collect::<Vec<_>>(),
        }),
        Expr::MatrixSelector(m) => {
            let (timestamp, start_or_end) = at_fields(&m.vs.at);
            json!({
                "type": "matrixSelector",
                "name": m.vs.name.clone().unwrap_or_default(),
                "range": i64::try_from(m.range.as_millis()).unwrap_or(i64::MAX),
                "offset": offset_ms(&m.vs.offset),
                "matchers": matchers(&m.vs),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
            })
        }
        Expr::Subquery(s) => {
            let (timestamp, start_or_end) = at_fields(&s.at);
            let ms = |d: &std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            json!({
                "type": "subquery",
                "expr": translate(&s.expr),
                "range": ms(&s.range),
                "offset": offset_ms(&s.offset),
                "step": s.step.as_ref().map_or(0, ms),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
            })
        }
        Expr::NumberLiteral(n) => json!({"type": "numberLiteral", "val": go_float(n.val)}),
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": translate(&p.expr)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.val}),
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": "-", "expr": translate(&u.expr)}),
        Expr::VectorSelector(vs) => {
            let (timestamp, start_or_end) = at_fields(&vs.at);
            json!({
                "type": "vectorSelector",
                "name": vs.name.clone().unwrap_or_default(),
                "offset": offset_ms(&vs.offset),
                "matchers": matchers(vs),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
            })
        }
        Expr::Extension(_) => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(q: &str) -> Json {
        translate(&syntax_tree(q).expect("parse"))
    }

    #[test]
    fn selectors_and_modifiers_translate() {
        let t = tree(r#"rate(http_requests_total{job=~`a\d`}[5m] offset -1m)"#);
        assert_eq!(t["type"], "call");
        assert_eq!(t["func"]["name"], "rate");
        assert_eq!(t["func"]["argTypes"], json!(["matrix"]));
        assert_eq!(t["func"]["returnType"], "vector");
        let m = &t["args"][0];
        assert_eq!(m["type"], "matrixSelector");
        assert_eq!(m["range"], 300_000);
        assert_eq!(m["offset"], -60_000);
        assert_eq!(m["matchers"][0], json!({"name": "job", "value": "a\\d", "type": "=~"}));
        assert_eq!(
            m["matchers"][1],
            json!({"name": "__name__", "value": "http_requests_total", "type": "="})
        );
        let at = tree("x @ end()");
        assert_eq!(at["startOrEnd"], "end");
        assert_eq!(at["timestamp"], Json::Null);
        assert_eq!(tree("x @ 10")["timestamp"], 10_000);
    }

    #[test]
    fn operators_and_aggregations_translate() {
        let t = tree("sum without (a) (x) / on (b) group_left (c) y");
        assert_eq!(t["type"], "binaryExpr");
        assert_eq!(t["op"], "/");
        assert_eq!(
            t["matching"],
            json!({"card": "many-to-one", "labels": ["b"], "on": true, "include": ["c"]})
        );
        assert_eq!(t["lhs"]["type"], "aggregation");
        assert_eq!(t["lhs"]["grouping"], json!(["a"]));
        assert_eq!(t["lhs"]["without"], true);
        assert_eq!(t["lhs"]["param"], Json::Null);
        assert_eq!(tree("1 > bool 2")["matching"], Json::Null);
        assert_eq!(tree("1 > bool 2")["bool"], true);
        assert_eq!(tree("x and y")["matching"]["card"], "many-to-many");
        assert_eq!(tree("-x")["type"], "unaryExpr");
        assert_eq!(tree("x[5m:]")["step"], 0);
        assert_eq!(tree("1e30")["val"], "1000000000000000000000000000000");
    }
}
