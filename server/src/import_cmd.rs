//! `vigil import --from-openmetrics FILE --storage.path DIR`: backfills history from the
//! OpenMetrics text that `promtool tsdb dump-openmetrics` writes, straight into blocks.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use vigil_storage::db::ImportReport;
use vigil_storage::{Db, DbOptions, Labels, Sample};

/// The `# EOF` line that ends every OpenMetrics document.
const EOF_LINE: &str = "# EOF";
/// Milliseconds per second: OpenMetrics timestamps are seconds, Vigil's are ms.
const MS_PER_SECOND: f64 = 1000.0;
/// Metric types `# TYPE` may name in OpenMetrics.
const METRIC_TYPES: [&str; 8] =
    ["counter", "gauge", "histogram", "gaugehistogram", "stateset", "info", "summary", "unknown"];

/// A line the parser refused, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed file: every series with its samples (file order), and counts for the report.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Samples per series.
    pub series: BTreeMap<Labels, Vec<Sample>>,
    /// Sample lines read.
    pub samples: u64,
}

/// Parses OpenMetrics text as `promtool tsdb dump-openmetrics` writes it: sample lines
/// `name{labels} value timestamp_seconds` (an exemplar after ` # ` is ignored), `# TYPE`,
/// `# HELP` and `# UNIT` lines, and the final `# EOF`. Any malformed line, a sample
/// without a timestamp, a missing `# EOF` or text after it is an error.
pub fn parse_openmetrics(text: &str) -> Result<Parsed, ParseError> {
    let mut parsed = Parsed::default();
    let mut eof_at = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ParseError { line, message };
        if let Some(at) = eof_at {
            if raw.trim().is_empty() {
                continue;
            }
            return Err(err(format!("content after {EOF_LINE} (line {at})")));
        }
        if raw == EOF_LINE {
            eof_at = Some(line);
            continue;
        }
        if let Some(comment) = raw.strip_prefix('#') {
            check_comment(comment).map_err(err)?;
            continue;
        }
        if raw.is_empty() {
            return Err(err("empty line (not allowed in OpenMetrics)".into()));
        }
        let (labels, sample) = parse_sample(raw).map_err(err)?;
        parsed.series.entry(labels).or_default().push(sample);
        parsed.samples += 1;
    }
    if eof_at.is_none() {
        return Err(ParseError { line: text.lines().count(), message: format!("missing {EOF_LINE}") });
    }
    Ok(parsed)
}

/// Checks a `# TYPE|HELP|UNIT name ...` line (text after the `#`).
fn check_comment(comment: &str) -> Result<(), String> {
    let mut words = comment
        .strip_prefix(' ')
        .ok_or("comment must be '# TYPE', '# HELP', '# UNIT' or '# EOF'")?
        .splitn(3, ' ');
    let kind = words.next().unwrap_or_default();
    let name = words.next().unwrap_or_default();
    if !matches!(kind, "TYPE" | "HELP" | "UNIT") {
        return Err(format!("unknown comment '# {kind}' (want TYPE, HELP, UNIT or EOF)"));
    }
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?} in # {kind}"));
    }
    if kind == "TYPE" {
        let t = words.next().unwrap_or_default();
        if !METRIC_TYPES.contains(&t) {
            return Err(format!("unknown metric type {t:?}"));
        }
    }
    Ok(())
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `name{a="1",b="2"} value timestamp [# exemplar]`.
fn parse_sample(line: &str) -> Result<(Labels, Sample), String> {
    let name_end = line.find(['{', ' ']).ok_or("sample line needs a value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut pairs = vec![(vigil_storage::METRIC_NAME.to_string(), name.to_string())];
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut pairs)?;
    }
    let rest = rest.strip_prefix(' ').ok_or("expected a space before the value")?;
    let rest = rest.split(" # ").next().unwrap_or_default();
    let mut fields = rest.split(' ');
    let value = fields.next().unwrap_or_default();
    let v = parse_value(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    let ts = fields.next().ok_or("sample without a timestamp (cannot be placed in a block)")?;
    let t = parse_timestamp(ts).ok_or_else(|| format!("invalid timestamp {ts:?}"))?;
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected text after the timestamp: {extra:?}"));
    }
    Ok((Labels::from_pairs(pairs), Sample::new(t, v)))
}

/// Parses `a="1",b="2"}` into `pairs`; returns what follows the `}`.
fn parse_labels<'a>(mut rest: &'a str, pairs: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        if pairs.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label {name:?}"));
        }
        let body = rest[eq + 1..].strip_prefix('"').ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i + 1,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("invalid escape in label value: {:?}", other.map(|c| c.1))),
                },
                Some((_, c)) => value.push(c),
            }
        };
        pairs.push((name.to_string(), value));
        rest = &body[end..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

/// A float as OpenMetrics writes it (`1.5`, `-2e3`, `NaN`, `+Inf`, `-Inf`).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) => {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Seconds (with an optional fraction) to ms.
fn parse_timestamp(s: &str) -> Option<i64> {
    let secs = parse_value(s).filter(|v| v.is_finite())?;
    let ms = (secs * MS_PER_SECOND).round();
    (ms.abs() < i64::MAX as f64).then_some(ms as i64)
}

/// Reads and imports `file` into the data directory `dir`, writing a summary to `out`.
/// Errors on a malformed file (nothing is imported then) or a store failure.
pub fn run(file: &Path, dir: &Path, opts: DbOptions, out: &mut dyn Write) -> anyhow::Result<ImportReport> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let parsed = parse_openmetrics(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let series_count = parsed.series.len();
    let db = Db::open(dir, opts)?;
    let report = db.import(parsed.series.into_iter().collect())?;
    db.close()?;
    writeln!(
        out,
        "imported {} samples of {series_count} series into {} blocks ({} sample lines read)",
        report.imported, report.blocks, parsed.samples
    )?;
    if report.too_new + report.duplicates > 0 {
        writeln!(
            out,
            "skipped {} samples at or after the oldest sample already in the head (append those instead) and {} repeating a timestamp of their series",
            report.too_new, report.duplicates
        )?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_storage::{Querier, SelectHints};

    const DUMP: &str = "# HELP up Whether the target is up.\n# TYPE up gauge\nup{instance=\"a:9100\",job=\"node\"} 1 1700000000\nup{instance=\"a:9100\",job=\"node\"} 0 1700000015.5\nup{job=\"say \\\"hi\\\"\\n\"} +Inf 1700000000.001 # {trace_id=\"x\"} 1\nprocess_cpu_seconds_total 12.5e1 1700000030\n# EOF\n";

    #[test]
    fn parses_promtool_dumps() {
        let p = parse_openmetrics(DUMP).expect("valid");
        assert_eq!(p.samples, 4);
        assert_eq!(p.series.len(), 3);
        let up = Labels::from_pairs([("__name__", "up"), ("instance", "a:9100"), ("job", "node")]);
        assert_eq!(
            p.series[&up],
            vec![Sample::new(1_700_000_000_000, 1.0), Sample::new(1_700_000_015_500, 0.0)]
        );
        let quoted = Labels::from_pairs([("__name__", "up"), ("job", "say \"hi\"\n")]);
        assert_eq!(p.series[&quoted], vec![Sample::new(1_700_000_000_001, f64::INFINITY)]);
        let cpu = Labels::from_pairs([("__name__", "process_cpu_seconds_total")]);
        assert_eq!(p.series[&cpu], vec![Sample::new(1_700_000_030_000, 125.0)]);
    }

    #[test]
    fn malformed_lines_are_errors_with_their_number() {
        for (text, line, want) in [
            ("up 1 1\n", 1, "missing # EOF"),
            ("up 1 1\n# EOF\nup 1 2\n", 3, "after # EOF"),
            ("up 1\n# EOF\n", 1, "without a timestamp"),
            ("# TYPE up gauge\nup{job=\"a\" 1 1\n# EOF\n", 2, "expected ','"),
            ("up{job=a} 1 1\n# EOF\n", 1, "quoted"),
            ("up{job=\"a\",job=\"b\"} 1 1\n# EOF\n", 1, "duplicate label"),
            ("up one 1\n# EOF\n", 1, "invalid value"),
            ("up 1 soon\n# EOF\n", 1, "invalid timestamp"),
            ("1up 1 1\n# EOF\n", 1, "invalid metric name"),
            ("# TYPE up gauges\n# EOF\n", 1, "unknown metric type"),
            ("# BOGUS up\n# EOF\n", 1, "unknown comment"),
            ("up{job=\"a\\t\"} 1 1\n# EOF\n", 1, "invalid escape"),
            ("up 1 1 2\n# EOF\n", 1, "after the timestamp"),
            ("up 1 1\n\n# EOF\n", 2, "empty line"),
        ] {
            let e = parse_openmetrics(text).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.message.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn imports_into_blocks_and_reports_skips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dump.om");
        std::fs::write(
            &file,
            format!(
                "{}up{{job=\"node\",instance=\"a:9100\"}} 7 1700000000\n# EOF\n",
                DUMP.trim_end_matches("# EOF\n")
            ),
        )
        .expect("write");
        let data = dir.path().join("data");
        let mut out = Vec::new();
        let report = run(&file, &data, DbOptions::default(), &mut out).expect("import");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!((report.imported, report.duplicates), (4, 1), "{text}");
        assert!(text.contains("imported 4 samples of 3 series"), "{text}");
        assert!(text.contains("1 repeating a timestamp"), "{text}");
        let db = Db::open(&data, DbOptions::default()).expect("reopen");
        assert!(!db.blocks().is_empty());
        let m = vigil_query::parse_selector("up{job=\"node\"}").expect("selector");
        let hints = SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
        let mut series = db.select(&m, &hints).expect("select");
        assert_eq!(series.len(), 1);
        let got: Vec<Sample> = std::iter::from_fn(|| series[0].samples.next()).collect();
        assert_eq!(got, vec![Sample::new(1_700_000_000_000, 1.0), Sample::new(1_700_000_015_500, 0.0)]);
    }

    #[test]
    fn malformed_files_import_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.om");
        std::fs::write(&file, "up 1 1\n").expect("write");
        let err =
            run(&file, &dir.path().join("data"), DbOptions::default(), &mut Vec::new()).expect_err("no EOF");
        assert!(format!("{err:#}").contains("missing # EOF"), "{err:#}");
        assert!(!dir.path().join("data").exists());
    }
}
