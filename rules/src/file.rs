//! Rule files in Prometheus's format: parsing with positions, validation like
//! `promtool check rules`, and the checked form the evaluator runs.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::duration;
use crate::template::Template;

/// A rule file as written (`groups:` at the top).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    interval: Option<String>,
    #[serde(default)]
    limit: u64,
    query_offset: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<Spanned<String>>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A checked rule group, ready to evaluate.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The file it came from, as listed.
    pub file: String,
    /// Name, unique within the file.
    pub name: String,
    /// Evaluation interval in ms, when the group sets one.
    pub interval_ms: Option<i64>,
    /// Most series (recording) or alerts (alerting) one rule may produce; 0 = no limit.
    pub limit: usize,
    /// How far back from now the group evaluates, when it sets one.
    pub query_offset_ms: Option<i64>,
    /// Labels added to every rule's output (rule labels win).
    pub labels: BTreeMap<String, String>,
    /// The rules in order.
    pub rules: Vec<RuleSpec>,
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// The PromQL expression.
    pub expr: String,
    /// Rule labels (templated for alerting rules), with the group's labels merged in.
    pub labels: Vec<(String, Template)>,
    /// What the rule produces.
    pub kind: RuleKind,
}

/// Recording or alerting, with what only that kind has.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Writes its result as the metric `record`.
    Recording {
        /// Output metric name.
        record: String,
    },
    /// Keeps alerts and sends them to Alertmanager.
    Alerting {
        /// Alert name (the `alertname` label).
        alert: String,
        /// How long an alert stays pending before it fires, in ms.
        for_ms: i64,
        /// How long a firing alert keeps firing after its condition is gone, in ms.
        keep_firing_for_ms: i64,
        /// Annotation templates, by name.
        annotations: Vec<(String, Template)>,
    },
}

impl RuleSpec {
    /// The rule's name: the recorded metric or the alert name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

/// Loads and checks one rule file; every problem found is one message naming the file
/// and, where known, the line, column, group and rule.
pub fn load_file(path: &Path) -> Result<Vec<GroupSpec>, Vec<String>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {e}")])?;
    parse_file(&text, &name)
}

/// Parses and checks rule-file text; `name` prefixes every error.
pub fn parse_file(text: &str, name: &str) -> Result<Vec<GroupSpec>, Vec<String>> {
    let has_content = text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#') && l != "---"
    });
    if !has_content {
        return Ok(Vec::new());
    }
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
        vec![match e.location() {
            Some(at) => format!("{name}:{}:{}: {}", at.line(), at.column(), e.without_snippet()),
            None => format!("{name}: {}", e.without_snippet()),
        }]
    })?;
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    for g in raw.groups {
        let at = format!("{name}:{}:{}", g.referenced.line(), g.referenced.column());
        let g = g.value;
        if g.name.is_empty() {
            errors.push(format!("{at}: group name must not be empty"));
            continue;
        }
        if !seen.insert(g.name.clone()) {
            errors.push(format!("{at}: group name {:?} is repeated in the same file", g.name));
        }
        match check_group(g, name, &at) {
            Ok(spec) => groups.push(spec),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(groups) } else { Err(errors) }
}

fn check_group(g: RawGroup, file: &str, at: &str) -> Result<GroupSpec, Vec<String>> {
    let mut errors = Vec::new();
    let mut dur = |key: &str, v: &Option<String>| match v.as_deref().map(duration::parse_ms) {
        None => None,
        Some(Ok(ms)) => Some(ms),
        Some(Err(e)) => {
            errors.push(format!("{at}: group {:?}: {key}: {e}", g.name));
            None
        }
    };
    let interval_ms = dur("interval", &g.interval);
    let query_offset_ms = dur("query_offset", &g.query_offset);
    if interval_ms == Some(0) {
        errors.push(format!("{at}: group {:?}: interval must be positive", g.name));
    }
    for k in g.labels.keys() {
        if !is_label_name(k) {
            errors.push(format!("{at}: group {:?}: invalid label name: {k}", g.name));
        }
    }
    let mut rules = Vec::new();
    for (i, r) in g.rules.into_iter().enumerate() {
        let rule_at = format!("{file}:{}:{}", r.referenced.line(), r.referenced.column());
        match check_rule(r.value, &g.labels) {
            Ok(spec) => rules.push(spec),
            Err((rule_name, msgs)) => {
                for m in msgs {
                    errors.push(format!("{rule_at}: group {:?}, rule {}, {rule_name:?}: {m}", g.name, i + 1));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(GroupSpec {
        file: file.to_string(),
        name: g.name,
        interval_ms,
        limit: usize::try_from(g.limit).unwrap_or(usize::MAX),
        query_offset_ms,
        labels: g.labels,
        rules,
    })
}

type RuleError = (String, Vec<String>);

fn check_rule(r: RawRule, group_labels: &BTreeMap<String, String>) -> Result<RuleSpec, RuleError> {
    let rule_name = r.record.clone().or_else(|| r.alert.clone()).unwrap_or_default();
    let mut errs = Vec::new();
    match (&r.record, &r.alert) {
        (Some(_), Some(_)) => errs.push("only one of 'record' and 'alert' must be set".to_string()),
        (None, None) => errs.push("one of 'record' or 'alert' must be set".to_string()),
        _ => {}
    }
    let expr = r.expr.as_ref().map(|e| e.value.clone()).unwrap_or_default();
    if expr.trim().is_empty() {
        errs.push("field 'expr' must be set in rule".to_string());
    } else if let Err(e) = promql_parser::parser::parse(&expr) {
        let pos = r.expr.as_ref().map(|e| format!(" (at {}:{})", e.referenced.line(), e.referenced.column()));
        errs.push(format!("could not parse expression{}: {e}", pos.unwrap_or_default()));
    }
    if let Some(record) = &r.record {
        if !r.annotations.is_empty() {
            errs.push("invalid field 'annotations' in recording rule".into());
        }
        if r.for_.is_some() {
            errs.push("invalid field 'for' in recording rule".into());
        }
        if r.keep_firing_for.is_some() {
            errs.push("invalid field 'keep_firing_for' in recording rule".into());
        }
        if !is_metric_name(record) {
            errs.push(format!("invalid recording rule name: {record}"));
        }
    }
    if let Some(alert) = &r.alert
        && alert.is_empty()
    {
        errs.push("invalid alert name: \"\"".into());
    }
    let mut merged = group_labels.clone();
    merged.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    for k in merged.keys() {
        if k == "__name__" || !is_label_name(k) {
            errs.push(format!("invalid label name: {k}"));
        }
    }
    let is_alert = r.alert.is_some();
    let mut compile = |what: &str, map: &BTreeMap<String, String>| -> Vec<(String, Template)> {
        let mut out = Vec::new();
        for (k, v) in map {
            // Recording-rule labels are plain values in Prometheus, never templates.
            let parsed = if is_alert {
                Template::parse(&format!("__alert_{rule_name}"), v)
            } else {
                Ok(Template::literal(v))
            };
            match parsed {
                Ok(t) => out.push((k.clone(), t)),
                Err(e) => errs.push(format!("{what} {k:?}: template: {e}")),
            }
        }
        out
    };
    let labels = compile("label", &merged);
    let annotations = compile("annotation", &r.annotations);
    let mut dur = |key: &str, v: &Option<String>| match v.as_deref().map(duration::parse_ms) {
        None => 0,
        Some(Ok(ms)) => ms,
        Some(Err(e)) => {
            errs.push(format!("{key}: {e}"));
            0
        }
    };
    let for_ms = dur("for", &r.for_);
    let keep_firing_for_ms = dur("keep_firing_for", &r.keep_firing_for);
    if !errs.is_empty() {
        return Err((rule_name, errs));
    }
    let kind = match (r.record, r.alert) {
        (Some(record), None) => RuleKind::Recording { record },
        (None, Some(alert)) => RuleKind::Alerting { alert, for_ms, keep_firing_for_ms, annotations },
        _ => return Err((rule_name, vec!["one of 'record' or 'alert' must be set".into()])),
    };
    Ok(RuleSpec { expr, labels, kind })
}

/// Prometheus's legacy label-name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Prometheus's legacy metric-name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
groups:
  - name: example
    interval: 30s
    labels:
      team: infra
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: "{{ $labels.job }}"
        annotations:
          summary: "{{ $labels.instance }} down"
"#;

    #[test]
    fn parses_groups_and_rules() {
        let groups = parse_file(GOOD, "good.yml").expect("valid");
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!((g.name.as_str(), g.interval_ms, g.limit), ("example", Some(30_000), 0));
        assert_eq!(g.rules.len(), 2);
        assert_eq!(g.rules[0].name(), "job:up:sum");
        assert!(matches!(
            g.rules[1].kind,
            RuleKind::Alerting { for_ms: 300_000, keep_firing_for_ms: 60_000, .. }
        ));
        let names: Vec<_> = g.rules[1].labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["severity", "team"]);
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let errs = parse_file("groups:\n  - name: x\n    rulez: []\n", "f.yml").expect_err("unknown key");
        assert!(errs[0].starts_with("f.yml:3:5: "), "{errs:?}");
        assert!(errs[0].contains("rulez"), "{errs:?}");
    }

    #[test]
    fn bad_expression_names_group_and_rule() {
        let text = "groups:\n  - name: g\n    rules:\n      - alert: Broken\n        expr: rate(x[5m]\n";
        let errs = parse_file(text, "f.yml").expect_err("bad expr");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("f.yml:4:9: group \"g\", rule 1, \"Broken\": could not parse expression"),
            "{errs:?}"
        );
    }

    #[test]
    fn bad_template_names_the_rule() {
        let text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          x: '{{ nosuchfunc }}'\n";
        let errs = parse_file(text, "f.yml").expect_err("bad template");
        assert!(errs[0].contains("\"A\": annotation \"x\": template:"), "{errs:?}");
        assert!(errs[0].contains("nosuchfunc"), "{errs:?}");
    }

    #[test]
    fn structural_mistakes_are_reported() {
        let text = r#"
groups:
  - name: g
    rules:
      - record: "bad name"
        expr: up
        for: 1m
      - record: a
        alert: b
        expr: up
  - name: g
    rules: []
"#;
        let errs = parse_file(text, "f.yml").expect_err("invalid");
        let all = errs.join("\n");
        assert!(all.contains("invalid recording rule name: bad name"), "{all}");
        assert!(all.contains("invalid field 'for' in recording rule"), "{all}");
        assert!(all.contains("only one of 'record' and 'alert' must be set"), "{all}");
        assert!(all.contains("is repeated in the same file"), "{all}");
    }

    #[test]
    fn empty_file_has_no_groups() {
        assert!(parse_file("# nothing\n", "f.yml").expect("empty").is_empty());
    }
}
