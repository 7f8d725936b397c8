//! The query phase: a dashboard-like query set (see `benches/queries.txt`) run against
//! any Prometheus-compatible HTTP API after one warm-up, with median and p90 latency
//! and the number of result series for the cross-server check.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::stats::quantile;

/// The query set kept in the repository.
pub const DEFAULT_QUERIES: &str = include_str!("../queries.txt");

/// Which part of the data a range query covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last hour of the data.
    LastHour,
    /// The whole span.
    Span,
}

/// One query of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryKind {
    /// `/api/v1/query_range`.
    Range {
        /// Time window.
        window: Window,
        /// Step in seconds.
        step_s: u64,
        /// PromQL expression.
        expr: String,
    },
    /// `/api/v1/labels`.
    Labels {
        /// Optional `match[]` selector.
        matcher: Option<String>,
    },
    /// `/api/v1/label/<label>/values`.
    LabelValues {
        /// The label name.
        label: String,
        /// Optional `match[]` selector.
        matcher: Option<String>,
    },
    /// `/api/v1/series`.
    Series {
        /// The `match[]` selector.
        matcher: String,
    },
}

/// A named query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// Short name used in reports.
    pub name: String,
    /// What to ask.
    pub kind: QueryKind,
}

/// Parses a query set file (format in `benches/queries.txt`).
pub fn parse_query_set(text: &str) -> anyhow::Result<Vec<QuerySpec>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| anyhow::anyhow!("queries line {}: {why}: {line}", n + 1);
        let mut words = line.splitn(3, ' ');
        let name = words.next().ok_or_else(|| bad("no name"))?.to_string();
        let kind = words.next().ok_or_else(|| bad("no kind"))?;
        let rest = words.next().map(str::trim).filter(|r| !r.is_empty());
        let kind = match kind {
            "range" => {
                let mut parts = rest.ok_or_else(|| bad("range needs WINDOW STEP EXPR"))?.splitn(3, ' ');
                let window = match parts.next() {
                    Some("1h") => Window::LastHour,
                    Some("span") => Window::Span,
                    _ => return Err(bad("WINDOW must be 1h or span")),
                };
                let step = parts.next().ok_or_else(|| bad("no STEP"))?;
                let step_s = step.strip_suffix('s').and_then(|s| s.parse().ok()).filter(|s| *s > 0);
                let step_s = step_s.ok_or_else(|| bad("STEP must be like 15s"))?;
                let expr =
                    parts.next().map(str::trim).filter(|e| !e.is_empty()).ok_or_else(|| bad("no EXPR"))?;
                QueryKind::Range { window, step_s, expr: expr.to_string() }
            }
            "labels" => QueryKind::Labels { matcher: rest.map(str::to_string) },
            "label_values" => {
                let rest = rest.ok_or_else(|| bad("label_values needs LABEL"))?;
                let (label, matcher) = match rest.split_once(' ') {
                    Some((l, m)) => (l, Some(m.trim().to_string())),
                    None => (rest, None),
                };
                QueryKind::LabelValues { label: label.to_string(), matcher }
            }
            "series" => {
                QueryKind::Series { matcher: rest.ok_or_else(|| bad("series needs MATCH"))?.to_string() }
            }
            _ => return Err(bad("KIND must be range, labels, label_values or series")),
        };
        out.push(QuerySpec { name, kind });
    }
    anyhow::ensure!(!out.is_empty(), "the query set is empty");
    Ok(out)
}

/// What one query measured on one server.
#[derive(Debug, Clone, Default)]
pub struct QueryOutcome {
    /// The query's name.
    pub name: String,
    /// Median latency of the timed runs.
    pub median: Option<Duration>,
    /// 90th percentile latency of the timed runs.
    pub p90: Option<Duration>,
    /// Result series (range) or items (labels, values, series) of the last run.
    pub result_count: Option<usize>,
    /// The first error, when a run failed.
    pub error: Option<String>,
}

/// The data's time range as the queries see it (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    /// Start of the data.
    pub start_s: i64,
    /// End of the data.
    pub end_s: i64,
}

/// Longest error text kept per query.
const KEPT_ERROR_CHARS: usize = 300;

/// Runs `q` once against `base` (`http://host:port`); returns its result count.
pub fn run_once(agent: &ureq::Agent, base: &str, q: &QuerySpec, range: TimeRange) -> anyhow::Result<usize> {
    let (start, end) = (range.start_s.to_string(), range.end_s.to_string());
    let reply = match &q.kind {
        QueryKind::Range { window, step_s, expr } => {
            let from = match window {
                Window::LastHour => (range.end_s - 3600).max(range.start_s),
                Window::Span => range.start_s,
            };
            let (from, step) = (from.to_string(), step_s.to_string());
            let params = [("query", expr.as_str()), ("start", &from), ("end", &end), ("step", &step)];
            crate::http::get(agent, &format!("{base}/api/v1/query_range"), &params)?
        }
        QueryKind::Labels { matcher } => {
            let mut params = vec![("start", start.as_str()), ("end", end.as_str())];
            params.extend(matcher.as_deref().map(|m| ("match[]", m)));
            crate::http::get(agent, &format!("{base}/api/v1/labels"), &params)?
        }
        QueryKind::LabelValues { label, matcher } => {
            let mut params = vec![("start", start.as_str()), ("end", end.as_str())];
            params.extend(matcher.as_deref().map(|m| ("match[]", m)));
            crate::http::get(agent, &format!("{base}/api/v1/label/{label}/values"), &params)?
        }
        QueryKind::Series { matcher } => {
            let params = [("match[]", matcher.as_str()), ("start", &start), ("end", &end)];
            crate::http::get(agent, &format!("{base}/api/v1/series"), &params)?
        }
    };
    let json: Json = serde_json::from_str(&reply.body)
        .map_err(|e| anyhow::anyhow!("HTTP {}: not JSON ({e}): {}", reply.status, reply.body.trim()))?;
    if json["status"] != "success" {
        anyhow::bail!("HTTP {}: {}", reply.status, reply.body.trim());
    }
    let data = &json["data"];
    let items = match &q.kind {
        QueryKind::Range { .. } => &data["result"],
        _ => data,
    };
    items.as_array().map(Vec::len).ok_or_else(|| anyhow::anyhow!("no result array: {}", reply.body.trim()))
}

/// Runs every query once to warm up, then `repeat` timed times each, stopping when
/// `time_limit` is spent.
pub fn run_all(
    base: &str,
    set: &[QuerySpec],
    range: TimeRange,
    repeat: usize,
    time_limit: Duration,
) -> Vec<QueryOutcome> {
    let agent = crate::http::agent();
    let deadline = Instant::now() + time_limit;
    set.iter()
        .map(|q| {
            let mut out = QueryOutcome { name: q.name.clone(), ..Default::default() };
            if Instant::now() >= deadline {
                out.error = Some("skipped: the query phase ran out of time".into());
                return out;
            }
            if let Err(e) = run_once(&agent, base, q, range) {
                out.error = Some(e.to_string().chars().take(KEPT_ERROR_CHARS).collect());
                return out;
            }
            let mut times = Vec::with_capacity(repeat);
            for _ in 0..repeat.max(1) {
                if Instant::now() >= deadline && !times.is_empty() {
                    break;
                }
                let t0 = Instant::now();
                match run_once(&agent, base, q, range) {
                    Ok(n) => {
                        times.push(t0.elapsed());
                        out.result_count = Some(n);
                    }
                    Err(e) => {
                        out.error = Some(e.to_string().chars().take(KEPT_ERROR_CHARS).collect());
                        break;
                    }
                }
            }
            out.median = quantile(&times, 0.5);
            out.p90 = quantile(&times, 0.9);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_query_set_parses() {
        let set = parse_query_set(DEFAULT_QUERIES).unwrap();
        assert!(set.len() >= 10);
        assert!(
            set.iter().any(|q| matches!(&q.kind, QueryKind::Range { window: Window::Span, step_s: 60, .. }))
        );
        let names: std::collections::HashSet<_> = set.iter().map(|q| &q.name).collect();
        assert_eq!(names.len(), set.len(), "names are unique");
    }

    #[test]
    fn lines_parse_into_kinds() {
        let set = parse_query_set(
            "# c\n\na range 1h 15s sum(rate(x[5m]))\nb labels\nc label_values instance up{job=\"a\"}\nd series up\n",
        )
        .unwrap();
        assert_eq!(
            set[0].kind,
            QueryKind::Range { window: Window::LastHour, step_s: 15, expr: "sum(rate(x[5m]))".into() }
        );
        assert_eq!(set[1].kind, QueryKind::Labels { matcher: None });
        assert_eq!(
            set[2].kind,
            QueryKind::LabelValues { label: "instance".into(), matcher: Some("up{job=\"a\"}".into()) }
        );
        assert_eq!(set[3].kind, QueryKind::Series { matcher: "up".into() });
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "a range 2h 15s x",
            "a range 1h fast x",
            "a range 1h 15s",
            "a series",
            "a frobnicate",
            "",
            "# only",
        ] {
            assert!(parse_query_set(bad).is_err(), "{bad:?}");
        }
    }
}
