//! A Go `text/template` interpreter for the subset Prometheus users write in alert
//! labels and annotations, with Prometheus's data (`$labels`, `$value`, …) and
//! functions. Anything outside the subset (unknown functions, `block`, `break`,
//! `continue`) is a parse error, so a rule using it fails to load instead of
//! expanding differently from Prometheus.

mod exec;
mod funcs;
mod gofmt;
mod lex;
mod parse;
mod value;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use funcs::{go_time_string, humanize, humanize_duration, humanize1024};
pub use gofmt::format_g;
pub use value::Value;

/// Variables Prometheus's preamble defines, in order, and the data fields they hold.
const PREAMBLE_VARS: [&str; 4] = ["$labels", "$externalLabels", "$externalURL", "$value"];
const PREAMBLE_FIELDS: [&str; 4] = ["Labels", "ExternalLabels", "ExternalURL", "Value"];

/// Rows of a `query` result: labels and value.
pub type QueryRows = Vec<(BTreeMap<String, String>, f64)>;

/// Answers the `query` template function: an instant query at `time_ms`.
pub trait Querier {
    /// The result as (labels, value) pairs, or the error text.
    fn query(&self, q: &str, time_ms: i64) -> Result<QueryRows, String>;
}

/// Length of Prometheus's preamble `{{$labels := .Labels}}{{$externalLabels :=
/// .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`, which shifts
/// the columns Go reports on line 1.
const PREAMBLE_LEN: usize = 112;

/// Line and column as Go's `ErrorContext` reports them for byte `offset`: the column is
/// the 0-based byte offset in the line, line 1 counting the preamble.
fn go_position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    match before.rfind('\n') {
        None => (1, PREAMBLE_LEN + before.len()),
        Some(nl) => (1 + before.matches('\n').count(), before.len() - nl - 1),
    }
}

/// A querier for contexts without storage: every query fails.
pub struct NoQuerier;

impl Querier for NoQuerier {
    fn query(&self, _: &str, _: i64) -> Result<QueryRows, String> {
        Err("queries are not available here".into())
    }
}

/// What a template sees: the alert's labels and value plus the server's settings.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    /// The alert's labels (`$labels`).
    pub labels: BTreeMap<String, String>,
    /// `global.external_labels` (`$externalLabels`).
    pub external_labels: BTreeMap<String, String>,
    /// The server's external URL (`$externalURL`).
    pub external_url: String,
    /// The alert's value (`$value`).
    pub value: f64,
    /// The evaluation time in ms (queries run at it, `now` returns it).
    pub eval_time_ms: i64,
}

impl TemplateData {
    fn to_value(&self) -> Value {
        let mut m = BTreeMap::new();
        m.insert("Labels".into(), Value::string_map(&self.labels));
        m.insert("ExternalLabels".into(), Value::string_map(&self.external_labels));
        m.insert("ExternalURL".into(), Value::Str(self.external_url.clone()));
        m.insert("Value".into(), Value::Float(self.value));
        Value::Map(m)
    }
}

/// A parsed template, cheap to clone.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    source: String,
    tree: Arc<parse::Tree>,
}

impl Template {
    /// Parses `text`; `name` appears in expansion errors (Prometheus uses
    /// `__alert_<AlertName>`).
    pub fn parse(name: &str, text: &str) -> Result<Template, String> {
        let items = lex::split(text).map_err(|e| format!("{name}:{e}"))?;
        let tree = parse::parse(items).map_err(|e| format!("{name}:{e}"))?;
        Ok(Template { name: name.to_string(), source: text.to_string(), tree: Arc::new(tree) })
    }

    /// A template that is plain text, never expanded.
    pub fn literal(text: &str) -> Template {
        let tree = parse::Tree { root: vec![parse::Node::Text(text.to_string())], defs: Default::default() };
        Template { name: String::new(), source: text.to_string(), tree: Arc::new(tree) }
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Expands the template, or returns the error text in Go's words, with the
    /// position Go reports (Prometheus prepends its variable preamble to line 1).
    pub fn try_expand(&self, data: &TemplateData, querier: &dyn Querier) -> Result<String, String> {
        exec::Exec::new(&self.tree, data, querier).run().map_err(|e| {
            let n = &self.name;
            match e.at {
                Some((offset, node)) => {
                    let (line, col) = go_position(&self.source, offset);
                    format!("error executing template {n}: template: {n}:{line}:{col}: executing \"{n}\" at <{node}>: {}", e.msg)
                }
                None => format!("error executing template {n}: template: {n}: {}", e.msg),
            }
        })
    }

    /// Expands the template as Prometheus does for alerts: on error the result is the
    /// error text in `<error expanding template: …>` and a warning is logged.
    pub fn expand(&self, data: &TemplateData, querier: &dyn Querier) -> String {
        match self.try_expand(data, querier) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(template = %self.name, error = %e, "expanding alert template failed");
                format!("<error expanding template: {e}>")
            }
        }
    }
}

#[cfg(test)]
mod tests;
