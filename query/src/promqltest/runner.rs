//! Reads a script command by command and runs it against storage and the engine.

use std::collections::BTreeMap;

use regex::Regex;
use vigil_storage::memory::MemStorage;
use vigil_storage::{Labels, METRIC_NAME};

use super::compare::{Expected, check_instant, check_matrix, describe_expected, describe_value};
use super::notation::{Point, parse_duration, parse_number, parse_series_line, unquote};
use super::{Outcome, Report, Status};
use crate::engine::{Engine, EngineOptions, QueryOptions};
use crate::plan;
use crate::value::{Value, VectorElement};

/// Skip reason for evals that touch native-histogram data.
const NEEDS_NATIVE_HISTOGRAMS: &str = "needs native histograms";
/// Skip reason for evals that touch series loaded with start timestamps.
const NEEDS_START_TIMESTAMPS: &str = "needs start timestamps (@st)";
/// Skip reason for evals that rely on `__type__`/`__unit__` labels.
const NEEDS_TYPE_AND_UNIT: &str = "needs type-and-unit labels";

/// How an expected message is matched.
#[derive(Debug, Clone)]
enum MsgMatch {
    Any,
    Exact(String),
    Regex(String),
}

impl MsgMatch {
    fn matches(&self, text: &str) -> bool {
        match self {
            MsgMatch::Any => true,
            MsgMatch::Exact(m) => m == text,
            MsgMatch::Regex(r) => Regex::new(r).is_ok_and(|re| re.is_match(text)),
        }
    }

    fn describe(&self) -> String {
        match self {
            MsgMatch::Any => "any".into(),
            MsgMatch::Exact(m) => format!("msg {m:?}"),
            MsgMatch::Regex(r) => format!("regex {r:?}"),
        }
    }
}

/// Annotation expectations of one kind (warnings or infos).
#[derive(Debug, Clone, Default)]
struct AnnotationCheck {
    lines: Vec<MsgMatch>,
    none: bool,
}

impl AnnotationCheck {
    fn check(&self, kind: &str, got: &[String]) -> Result<(), String> {
        if self.none && !got.is_empty() {
            return Err(format!("no {kind}s expected, got {got:?}"));
        }
        if self.lines.is_empty() {
            return Ok(());
        }
        for m in &self.lines {
            if !got.iter().any(|g| m.matches(g)) {
                return Err(format!("expected a {kind} matching {}, got {got:?}", m.describe()));
            }
        }
        for g in got {
            if !self.lines.iter().any(|m| m.matches(g)) {
                return Err(format!("unexpected {kind} {g:?}"));
            }
        }
        Ok(())
    }
}

/// One parsed `eval` command.
struct Eval {
    query: String,
    /// `(start, end, step)`; an instant query has start == end and step 0.
    range: Option<(i64, i64, i64)>,
    at: i64,
    fail: Option<MsgMatch>,
    warn: AnnotationCheck,
    info: AnnotationCheck,
    ordered: bool,
    range_vector: Option<(i64, i64, i64)>,
    expected: Expected,
    needs_histograms: bool,
}

/// What has been loaded since the last `clear`, to decide what to skip.
#[derive(Default)]
struct Loaded {
    histograms: Vec<Labels>,
    start_timestamps: Vec<Labels>,
    type_and_unit: Vec<Labels>,
}

/// Runs a script's text; `file` names it in the report.
pub fn run_script(file: &str, text: &str, opts: &EngineOptions) -> Report {
    let lines: Vec<&str> = text.lines().collect();
    let storage = MemStorage::new();
    let engine = Engine::new(opts.clone());
    let mut loaded = Loaded::default();
    let mut report = Report::default();
    let mut i = 0;
    while i < lines.len() {
        let header = lines[i].trim();
        if header.is_empty() || header.starts_with('#') {
            i += 1;
            continue;
        }
        let header_line = i + 1;
        let word = header.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let mut block: Vec<(usize, &str)> = Vec::new();
        let mut j = i + 1;
        // `clear` takes no block; a command may follow it directly.
        while j < lines.len() && word != "clear" {
            let l = lines[j].trim();
            if l.is_empty() || l.starts_with('#') {
                break;
            }
            block.push((j + 1, l));
            j += 1;
        }
        i = j;
        let fail = |msg: String| Outcome {
            file: file.to_string(),
            line: header_line,
            query: header.to_string(),
            status: Status::Failed { expected: "a valid script command".into(), got: msg },
        };
        match word.as_str() {
            "clear" => {
                storage.clear();
                loaded = Loaded::default();
            }
            "load" | "load_with_nhcb" => {
                if let Err(e) = load(&storage, &mut loaded, header, &block, word == "load_with_nhcb") {
                    report.outcomes.push(fail(e));
                }
            }
            w if w.starts_with("eval") => match parse_eval(header, &block) {
                Ok(ev) => {
                    let status = run_eval(&engine, &storage, &loaded, &ev, header, &block);
                    report.outcomes.push(Outcome {
                        file: file.to_string(),
                        line: header_line,
                        query: ev.query,
                        status,
                    });
                }
                Err(e) => report.outcomes.push(fail(e)),
            },
            _ => report.outcomes.push(fail(format!("unknown command {word:?}"))),
        }
    }
    report
}

fn load(
    storage: &MemStorage,
    loaded: &mut Loaded,
    header: &str,
    block: &[(usize, &str)],
    nhcb: bool,
) -> Result<(), String> {
    let interval = header
        .split_whitespace()
        .nth(1)
        .and_then(parse_duration)
        .ok_or_else(|| format!("bad load interval in {header:?}"))?;
    let mut series: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
    for (_, line) in block {
        let s = parse_series_line(line)?;
        if s.start_timestamps {
            loaded.start_timestamps.push(s.labels);
        } else if s.histogram {
            loaded.histograms.push(s.labels);
        } else {
            if s.labels.get("__type__").is_some() || s.labels.get("__unit__").is_some() {
                loaded.type_and_unit.push(s.labels.clone());
            }
            series.insert(s.labels, s.points);
        }
    }
    if nhcb {
        // The converted native histogram is named after the `_bucket` series, minus `le`.
        for l in series.keys() {
            if let Some(base) = l.metric_name().and_then(|n| n.strip_suffix("_bucket")) {
                let h = l.to_builder().del("le").set(METRIC_NAME, base.to_string()).build();
                if !loaded.histograms.contains(&h) {
                    loaded.histograms.push(h);
                }
            }
        }
    }
    for (labels, points) in series {
        for (k, p) in points.iter().enumerate() {
            if let Point::Value(v) = p {
                // Out-of-order samples are refused as Prometheus's test storage refuses them.
                let _ = storage.add(&labels, k as i64 * interval, *v);
            }
        }
    }
    Ok(())
}

/// Pops the first whitespace-separated word.
fn pop_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

fn expect_word<'a>(s: &'a str, w: &str) -> Result<&'a str, String> {
    match pop_word(s) {
        Some((x, rest)) if x == w => Ok(rest),
        _ => Err(format!("expected {w:?} in eval header")),
    }
}

fn duration_word(s: &str) -> Result<(i64, &str), String> {
    let (w, rest) = pop_word(s).ok_or("missing duration")?;
    Ok((parse_duration(w).ok_or_else(|| format!("bad duration {w:?}"))?, rest))
}

fn msg_match(rest: &str) -> MsgMatch {
    let rest = rest.trim();
    if let Some(m) = rest.strip_prefix("msg:") {
        MsgMatch::Exact(m.trim().to_string())
    } else if let Some(r) = rest.strip_prefix("regex:") {
        MsgMatch::Regex(r.trim().to_string())
    } else {
        MsgMatch::Any
    }
}

fn parse_eval(header: &str, block: &[(usize, &str)]) -> Result<Eval, String> {
    let (cmd, rest) = pop_word(header).ok_or("empty eval")?;
    let cmd = cmd.to_ascii_lowercase();
    let mut ev = Eval {
        query: String::new(),
        range: None,
        at: 0,
        fail: None,
        warn: AnnotationCheck::default(),
        info: AnnotationCheck::default(),
        ordered: false,
        range_vector: None,
        expected: Expected::Series(Vec::new()),
        needs_histograms: false,
    };
    match cmd.as_str() {
        "eval" => {}
        "eval_fail" => ev.fail = Some(MsgMatch::Any),
        "eval_warn" => ev.warn.lines.push(MsgMatch::Any),
        "eval_info" => ev.info.lines.push(MsgMatch::Any),
        "eval_ordered" => ev.ordered = true,
        other => return Err(format!("unknown eval form {other:?}")),
    }
    let (mode, rest) = pop_word(rest).ok_or("missing eval mode")?;
    let query = match mode {
        "instant" => {
            let rest = expect_word(rest, "at")?;
            let (t, rest) = duration_word(rest)?;
            ev.at = t;
            rest
        }
        "range" => {
            let rest = expect_word(rest, "from")?;
            let (start, rest) = duration_word(rest)?;
            let rest = expect_word(rest, "to")?;
            let (end, rest) = duration_word(rest)?;
            let rest = expect_word(rest, "step")?;
            let (step, rest) = duration_word(rest)?;
            ev.range = Some((start, end, step));
            rest
        }
        other => return Err(format!("unknown eval mode {other:?}")),
    };
    ev.query = query.trim().to_string();
    let mut series = Vec::new();
    for (_, l) in block {
        if let Some(rest) = l.strip_prefix("expected_fail_message") {
            ev.fail = Some(MsgMatch::Exact(rest.trim().to_string()));
        } else if let Some(rest) = l.strip_prefix("expected_fail_regexp") {
            ev.fail = Some(MsgMatch::Regex(rest.trim().to_string()));
        } else if let Some(rest) = l.strip_prefix("expect ") {
            let (kind, rest) = pop_word(rest).ok_or("empty expect line")?;
            match kind {
                "fail" => ev.fail = Some(msg_match(rest)),
                "warn" => ev.warn.lines.push(msg_match(rest)),
                "no_warn" => ev.warn.none = true,
                "info" => ev.info.lines.push(msg_match(rest)),
                "no_info" => ev.info.none = true,
                "ordered" => ev.ordered = true,
                "range" => {
                    let rest = expect_word(rest, "vector")?;
                    let rest = expect_word(rest, "from")?;
                    let (start, rest) = duration_word(rest)?;
                    let rest = expect_word(rest, "to")?;
                    let (end, rest) = duration_word(rest)?;
                    let rest = expect_word(rest, "step")?;
                    let (step, _) = duration_word(rest)?;
                    ev.range_vector = Some((start, end, step));
                    ev.at = end;
                }
                "string" => {
                    ev.expected =
                        Expected::String(unquote(rest.trim()).ok_or_else(|| format!("bad string {rest:?}"))?);
                }
                other => return Err(format!("unknown expectation {other:?}")),
            }
        } else if let Some(v) = parse_number(l) {
            ev.expected = Expected::Scalar(v);
        } else {
            let s = parse_series_line(l)?;
            ev.needs_histograms |= s.histogram;
            series.push((s.labels, s.points));
        }
    }
    if !series.is_empty() {
        ev.expected = Expected::Series(series);
    }
    Ok(ev)
}

/// Why an eval cannot run yet, if it cannot.
fn skip_reason(ev: &Eval, loaded: &Loaded, header: &str, block: &[(usize, &str)]) -> Option<&'static str> {
    let text = std::iter::once(header).chain(block.iter().map(|(_, l)| *l));
    if text.clone().any(|l| l.contains("__type__") || l.contains("__unit__")) {
        return Some(NEEDS_TYPE_AND_UNIT);
    }
    if ev.query.contains("start_timestamp") || ev.query.contains("@st") {
        return Some(NEEDS_START_TIMESTAMPS);
    }
    if ev.needs_histograms || ev.query.contains("{{") {
        return Some(NEEDS_NATIVE_HISTOGRAMS);
    }
    let Some(sels) = plan::selector_matchers(&ev.query) else {
        // The parser refuses the query (e.g. histogram trim operators): fall back to
        // looking for the names of histogram series in its text.
        let named = loaded.histograms.iter().filter_map(|l| l.metric_name()).any(|n| mentions(&ev.query, n));
        return named.then_some(NEEDS_NATIVE_HISTOGRAMS);
    };
    let touches =
        |set: &[Labels]| sels.iter().any(|ms| set.iter().any(|l| ms.iter().all(|m| m.matches_labels(l))));
    if touches(&loaded.histograms) {
        return Some(NEEDS_NATIVE_HISTOGRAMS);
    }
    if touches(&loaded.start_timestamps) {
        return Some(NEEDS_START_TIMESTAMPS);
    }
    if touches(&loaded.type_and_unit) {
        return Some(NEEDS_TYPE_AND_UNIT);
    }
    None
}

/// Whether `query` contains `name` as a whole identifier.
fn mentions(query: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    query.match_indices(name).any(|(i, _)| {
        let before = query[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = query[i + name.len()..].chars().next().is_none_or(|c| !is_ident(c));
        before && after
    })
}

fn run_eval(
    engine: &Engine,
    storage: &MemStorage,
    loaded: &Loaded,
    ev: &Eval,
    header: &str,
    block: &[(usize, &str)],
) -> Status {
    if let Some(reason) = skip_reason(ev, loaded, header, block) {
        return Status::Skipped(reason.to_string());
    }
    let opts = QueryOptions::default();
    let result = match ev.range {
        Some((start, end, step)) => engine.range_query(storage, &ev.query, start, end, step, &opts),
        None => engine.instant_query(storage, &ev.query, ev.at, &opts),
    };
    let failed = |got: String| Status::Failed { expected: expectation_text(ev), got };
    let res = match (result, &ev.fail) {
        (Err(e), Some(m)) => {
            let text = e.to_string();
            return if m.matches(&text) { Status::Passed } else { failed(format!("error {text:?}")) };
        }
        (Ok(r), Some(_)) => return failed(describe_value(&r.value)),
        (Err(e), None) => return failed(format!("error: {e}")),
        (Ok(r), None) => r,
    };
    if let Err(e) = ev.warn.check("warning", &res.warnings).and_then(|_| ev.info.check("info", &res.infos)) {
        return failed(e);
    }
    let check = match (ev.range, ev.range_vector) {
        (Some((start, _, step)), _) => check_matrix(&ev.expected, start, step, &res.value),
        (None, Some((start, _, step))) => check_matrix(&ev.expected, start, step, &res.value),
        (None, None) => check_instant(&ev.expected, ev.ordered, &res.value),
    };
    if let Err(why) = check {
        return failed(format!("{} ({why})", describe_value(&res.value)));
    }
    if let Err(why) = step_invariance_check(engine, storage, ev) {
        return failed(format!("with every selector pinned by @: {why}"));
    }
    match range_mode_check(engine, storage, ev) {
        Ok(()) => Status::Passed,
        Err(why) => failed(format!("in range mode: {why}")),
    }
}

/// Prometheus's runner also evaluates every instant eval as a range query from t-1m
/// to t+1m and expects the same answer at t.
fn range_mode_check(engine: &Engine, storage: &MemStorage, ev: &Eval) -> Result<(), String> {
    let lower = ev.query.to_ascii_lowercase();
    let uses_query_range = ["start()", "end()", "range()", "step()"].iter().any(|f| lower.contains(f));
    if ev.range.is_some()
        || ev.range_vector.is_some()
        || ev.ordered
        || ev.fail.is_some()
        || uses_query_range
        || matches!(ev.expected, Expected::String(_))
    {
        return Ok(());
    }
    let t = ev.at;
    let res = engine
        .range_query(
            storage,
            &ev.query,
            t - RANGE_MODE_SPAN_MS,
            t + RANGE_MODE_SPAN_MS,
            RANGE_MODE_SPAN_MS,
            &QueryOptions::default(),
        )
        .map_err(|e| format!("error: {e}"))?;
    let Value::Matrix(ms) = &res.value else { return Err("range query did not return a matrix".into()) };
    let at_t: Vec<VectorElement> = ms
        .iter()
        .filter_map(|s| {
            s.samples.iter().find(|p| p.t == t).map(|p| VectorElement { labels: s.labels.clone(), t, v: p.v })
        })
        .collect();
    let value = match &ev.expected {
        Expected::Scalar(_) => match at_t.as_slice() {
            [e] if e.labels.is_empty() => Value::Scalar { t, v: e.v },
            _ => Value::Vector(at_t),
        },
        _ => Value::Vector(at_t),
    };
    check_instant(&ev.expected, false, &value).map_err(|why| format!("{} ({why})", describe_value(&value)))
}

/// Functions whose answer depends on the evaluation time itself, for which
/// Prometheus's runner skips the step-invariance check.
const TIME_DEPENDENT_FUNCTIONS: &[&str] = &[
    "time",
    "timestamp",
    "predict_linear",
    "start",
    "end",
    "range",
    "step",
    "year",
    "month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
];

/// Prometheus's runner pins every selector of an instant eval to its time with `@`
/// and expects the same answer at other evaluation times.
fn step_invariance_check(engine: &Engine, storage: &MemStorage, ev: &Eval) -> Result<(), String> {
    if ev.range.is_some() || ev.fail.is_some() || matches!(ev.expected, Expected::String(_)) {
        return Ok(());
    }
    let lower = ev.query.to_ascii_lowercase();
    if TIME_DEPENDENT_FUNCTIONS.iter().any(|f| mentions(&lower, f)) {
        return Ok(());
    }
    let t = ev.at;
    let times: Vec<i64> = if t == 0 { vec![-1000, 0, 1000] } else { vec![-10 * t, 0, t / 5, t, 10 * t] };
    for at in times {
        let res = engine
            .instant_query_pinned(
                storage,
                &ev.query,
                at,
                Some(t),
                &QueryOptions::default(),
                &Default::default(),
            )
            .map_err(|e| format!("error at {at}ms: {e}"))?;
        let check = match ev.range_vector {
            Some((start, _, step)) => check_matrix(&ev.expected, start, step, &res.value),
            None => check_instant(&ev.expected, ev.ordered, &res.value),
        };
        check.map_err(|why| format!("at {at}ms: {} ({why})", describe_value(&res.value)))?;
    }
    Ok(())
}

/// Half-width and step of the range-mode rerun (Prometheus uses one minute).
const RANGE_MODE_SPAN_MS: i64 = 60_000;

fn expectation_text(ev: &Eval) -> String {
    match &ev.fail {
        Some(m) => format!("an error ({})", m.describe()),
        None => describe_expected(&ev.expected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = r#"
load 1m
    m{a="1"}  0+10x5
    m{a="2"}  1 _ 3 stale 5

eval instant at 1m m
    m{a="1"} 10
    m{a="2"} 1

eval range from 0 to 4m step 1m m{a="2"}
    m{a="2"} 1 1 3 _ 5

eval instant at 3m rate(m{a="1"}[2m])
    {a="1"} 0.16666666666666666

eval range from 0 to 2m step 1m time()
    {} 0 60 120

eval instant at 1m m
    m{a="1"} 11

eval instant at 0 sum(m) + on() group_left m
    expect fail
"#;

    #[test]
    fn runs_the_readme_example() {
        let r = run_script("example.test", SCRIPT, &super::super::script_engine_options());
        assert_eq!(r.passed(), 5, "{r}");
        let fails: Vec<String> = r.failures().map(|o| o.location()).collect();
        assert_eq!(fails, vec!["example.test:19"], "{r}");
        assert!(r.to_string().ends_with("5 passed, 1 failed, 0 skipped"));
    }

    #[test]
    fn skips_histogram_evals() {
        let s = "load 1m\n    h {{schema:0 sum:1 count:1}}\n\neval instant at 0 h\n    {} 1\n";
        let r = run_script("h.test", s, &super::super::script_engine_options());
        assert_eq!(r.skipped(), 1, "{r}");
    }
}
