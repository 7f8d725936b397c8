//! A rule group: evaluates its rules in order at one timestamp, writes their output
//! (with staleness markers for series that went away) and collects alerts to send.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use vigil_query::{Engine, QueryOptions, Value};
use vigil_storage::{Labels, Matcher, SelectHints, Storage, is_stale_nan, stale_nan};

use crate::alerting::{ALERT_NAME_LABEL, ALERTS_FOR_STATE_METRIC, Alert, AlertContext, AlertingRule};
use crate::file::{GroupSpec, RuleKind, RuleSpec};
use crate::metrics::{RuleMetrics, group_key};
use crate::template::Querier as TemplateQuerier;

/// What every group evaluates against, shared by all groups.
pub struct EvalEnv {
    /// The store queried and written.
    pub storage: Arc<dyn Storage>,
    /// The PromQL engine.
    pub engine: Engine,
    /// `global.external_labels` (for templates; the notifier adds them to alerts).
    pub external_labels: BTreeMap<String, String>,
    /// The server's external URL (templates, `generatorURL`).
    pub external_url: String,
    /// `--rules.alert.resend-delay` in ms.
    pub resend_delay_ms: i64,
    /// `--rules.alert.for-outage-tolerance` in ms.
    pub for_outage_tolerance_ms: i64,
    /// `--rules.alert.for-grace-period` in ms.
    pub for_grace_period_ms: i64,
    /// Self-monitoring.
    pub metrics: Arc<RuleMetrics>,
}

/// Health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Last evaluation succeeded.
    Ok,
    /// Last evaluation failed.
    Err,
}

impl Health {
    /// Prometheus's API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// The evaluating form of a rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// A recording rule: metric name and its (plain) labels.
    Recording {
        /// Output metric name.
        record: String,
        /// Expression.
        expr: String,
        /// Labels set on every output series.
        labels: Vec<(String, String)>,
    },
    /// An alerting rule with its alerts.
    Alerting(AlertingRule),
}

impl Rule {
    /// The rule's name.
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording { record, .. } => record,
            Rule::Alerting(a) => &a.name,
        }
    }

    /// The rule's expression.
    pub fn expr(&self) -> &str {
        match self {
            Rule::Recording { expr, .. } => expr,
            Rule::Alerting(a) => &a.expr,
        }
    }
}

/// A rule with its evaluation status and the series it wrote last time.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    /// The rule.
    pub rule: Rule,
    /// Health after the last evaluation.
    pub health: Health,
    /// The last error, if the last evaluation failed.
    pub last_error: Option<String>,
    /// Timestamp (ms) of the last evaluation.
    pub last_eval_ms: Option<i64>,
    /// Duration of the last evaluation in seconds.
    pub eval_seconds: f64,
    prev_series: HashSet<Labels>,
}

/// Alerts of one rule to hand to the notifier.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The rule's expression (for `generatorURL`).
    pub expr: String,
    /// The alerts due.
    pub alerts: Vec<Alert>,
}

/// A group of rules evaluated together.
#[derive(Debug, Clone)]
pub struct Group {
    /// File the group came from.
    pub file: String,
    /// Group name.
    pub name: String,
    /// Interval in ms.
    pub interval_ms: i64,
    /// Limit per rule (0 = none).
    pub limit: usize,
    /// Query offset in ms.
    pub query_offset_ms: i64,
    /// Group labels (already merged into each rule's labels).
    pub labels: BTreeMap<String, String>,
    /// Rules in order.
    pub rules: Vec<RuleEntry>,
    /// Timestamp (ms) of the last evaluation.
    pub last_eval_ms: Option<i64>,
    /// Duration of the last evaluation in seconds.
    pub eval_seconds: f64,
    /// The spec this group was built from, to detect unchanged groups on reload.
    pub fingerprint: String,
}

impl Group {
    /// Builds a group from its checked spec; `restored` says whether alerting rules
    /// may write `ALERTS` at once (false until `for` state is restored at startup).
    pub fn from_spec(
        spec: &GroupSpec,
        default_interval_ms: i64,
        default_offset_ms: i64,
        restored: bool,
    ) -> Group {
        let rules = spec.rules.iter().map(|r| RuleEntry::new(build_rule(r, restored))).collect();
        Group {
            file: spec.file.clone(),
            name: spec.name.clone(),
            interval_ms: spec.interval_ms.unwrap_or(default_interval_ms),
            limit: spec.limit,
            query_offset_ms: spec.query_offset_ms.unwrap_or(default_offset_ms),
            labels: spec.labels.clone(),
            rules,
            last_eval_ms: None,
            eval_seconds: 0.0,
            fingerprint: fingerprint(spec, default_interval_ms, default_offset_ms),
        }
    }

    /// The evaluation slot at or before `now_ms`: groups keep a stable offset inside
    /// their interval (from a hash of file and name) so they spread over it.
    pub fn slot_at_or_before(&self, now_ms: i64) -> i64 {
        let offset = (Labels::from_pairs([("file", self.file.as_str()), ("name", self.name.as_str())])
            .stable_hash()
            % self.interval_ms as u64) as i64;
        let adj = now_ms - offset;
        adj - adj.rem_euclid(self.interval_ms) + offset
    }

    /// Takes over the alerts and written series of the rules of `old` that are also in
    /// this group (matched by name and occurrence), so a reload keeps alert state.
    pub fn copy_state_from(&mut self, old: &Group) {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for entry in &mut self.rules {
            let nth = seen.entry(entry.rule.name().to_string()).or_default();
            let found = old.rules.iter().filter(|o| o.rule.name() == entry.rule.name()).nth(*nth);
            *nth += 1;
            let Some(o) = found else { continue };
            entry.prev_series = o.prev_series.clone();
            entry.health = o.health;
            entry.last_error = o.last_error.clone();
            entry.last_eval_ms = o.last_eval_ms;
            entry.eval_seconds = o.eval_seconds;
            if let (Rule::Alerting(new), Rule::Alerting(prev)) = (&mut entry.rule, &o.rule) {
                new.active = prev.active.clone();
                new.restored = prev.restored;
            }
        }
        self.last_eval_ms = old.last_eval_ms;
        self.eval_seconds = old.eval_seconds;
    }

    /// Evaluates every rule at `ts` (ms) in order; each rule sees what earlier rules
    /// wrote. Returns the alerts due for sending.
    pub fn eval(&mut self, ts: i64, env: &EvalEnv) -> Vec<Outgoing> {
        let started = Instant::now();
        let key = group_key(&self.file, &self.name);
        let qts = ts - self.query_offset_ms;
        let mut outgoing = Vec::new();
        for entry in &mut self.rules {
            let rule_started = Instant::now();
            let result = eval_rule(&mut entry.rule, ts, qts, self.limit, env);
            entry.last_eval_ms = Some(ts);
            env.metrics.rule_evaluated(&key, result.is_err());
            match result {
                Ok(samples) => {
                    if let Rule::Alerting(a) = &mut entry.rule {
                        let due = a.take_due(ts, env.resend_delay_ms, self.interval_ms);
                        if !due.is_empty() {
                            outgoing.push(Outgoing { expr: a.expr.clone(), alerts: due });
                        }
                    }
                    match write(env, &samples, &entry.prev_series, qts) {
                        Ok(()) => {
                            entry.prev_series = samples.into_iter().map(|(l, _)| l).collect();
                            entry.health = Health::Ok;
                            entry.last_error = None;
                        }
                        Err(e) => {
                            tracing::warn!(group = %self.name, rule = %entry.rule.name(), error = %e, "writing rule output failed");
                            entry.health = Health::Err;
                            entry.last_error = Some(e);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %self.name, file = %self.file, rule = %entry.rule.name(), error = %e, "evaluating rule failed");
                    entry.health = Health::Err;
                    entry.last_error = Some(e);
                }
            }
            entry.eval_seconds = rule_started.elapsed().as_secs_f64();
        }
        self.eval_seconds = started.elapsed().as_secs_f64();
        self.last_eval_ms = Some(ts);
        env.metrics.group_evaluated(&key, self.eval_seconds, ts as f64 / 1000.0);
        outgoing
    }

    /// Writes staleness markers for everything this group wrote last (when it is
    /// removed), at `ts` (ms).
    pub fn mark_all_stale(&self, env: &EvalEnv, ts: i64) {
        for entry in &self.rules {
            if let Err(e) = write(env, &[], &entry.prev_series, ts) {
                tracing::warn!(group = %self.name, error = %e, "writing staleness markers failed");
            }
        }
    }

    /// Restores the `for` clocks of pending alerts from `ALERTS_FOR_STATE`, as
    /// Prometheus does after the first evaluations following startup.
    pub fn restore_for_state(&mut self, now: i64, env: &EvalEnv) {
        for entry in &mut self.rules {
            let Rule::Alerting(rule) = &mut entry.rule else { continue };
            if rule.for_ms < env.for_grace_period_ms {
                rule.restored = true;
                continue;
            }
            let matchers = [
                Matcher::equal(vigil_storage::METRIC_NAME, ALERTS_FOR_STATE_METRIC),
                Matcher::equal(ALERT_NAME_LABEL, rule.name.clone()),
            ];
            let hints =
                SelectHints { start: now - env.for_outage_tolerance_ms, end: now, ..SelectHints::default() };
            match env.storage.select(&matchers, &hints) {
                Ok(series) => {
                    for mut s in series {
                        let mut last = None;
                        while let Some(sample) = s.samples.next() {
                            last = Some(sample);
                        }
                        let Some(last) = last.filter(|l| !is_stale_nan(l.v)) else { continue };
                        let mut b = s.labels.to_builder();
                        b.del(vigil_storage::METRIC_NAME);
                        let labels = b.build();
                        if rule.active.contains_key(&labels) {
                            rule.restore(&labels, last.t, last.v, now, env.for_grace_period_ms);
                            tracing::info!(alert = %rule.name, labels = %labels, "restored the for state of an alert");
                        }
                    }
                }
                Err(e) => tracing::error!(alert = %rule.name, error = %e, "reading ALERTS_FOR_STATE failed"),
            }
            rule.restored = true;
        }
    }
}

impl RuleEntry {
    fn new(rule: Rule) -> Self {
        RuleEntry {
            rule,
            health: Health::Unknown,
            last_error: None,
            last_eval_ms: None,
            eval_seconds: 0.0,
            prev_series: HashSet::new(),
        }
    }
}

fn build_rule(spec: &RuleSpec, restored: bool) -> Rule {
    match &spec.kind {
        RuleKind::Recording { record } => Rule::Recording {
            record: record.clone(),
            expr: spec.expr.clone(),
            labels: spec.labels.iter().map(|(k, t)| (k.clone(), t.source().to_string())).collect(),
        },
        RuleKind::Alerting { alert, for_ms, keep_firing_for_ms, annotations } => {
            Rule::Alerting(AlertingRule {
                name: alert.clone(),
                expr: spec.expr.clone(),
                for_ms: *for_ms,
                keep_firing_for_ms: *keep_firing_for_ms,
                labels: spec.labels.clone(),
                annotations: annotations.clone(),
                active: BTreeMap::new(),
                restored,
            })
        }
    }
}

fn fingerprint(spec: &GroupSpec, default_interval_ms: i64, default_offset_ms: i64) -> String {
    let mut s = format!(
        "{}|{}|{}|{}|{:?}",
        spec.name,
        spec.interval_ms.unwrap_or(default_interval_ms),
        spec.limit,
        spec.query_offset_ms.unwrap_or(default_offset_ms),
        spec.labels
    );
    for r in &spec.rules {
        let labels: Vec<(&str, &str)> = r.labels.iter().map(|(k, t)| (k.as_str(), t.source())).collect();
        s.push_str(&format!("|{}|{}|{labels:?}", r.name(), r.expr));
        if let RuleKind::Alerting { for_ms, keep_firing_for_ms, annotations, .. } = &r.kind {
            let ann: Vec<(&str, &str)> = annotations.iter().map(|(k, t)| (k.as_str(), t.source())).collect();
            s.push_str(&format!("|{for_ms}|{keep_firing_for_ms}|{ann:?}"));
        }
    }
    s
}

/// Runs the rule's expression at `qts` and turns the result into output samples.
fn eval_rule(
    rule: &mut Rule,
    ts: i64,
    qts: i64,
    limit: usize,
    env: &EvalEnv,
) -> Result<Vec<(Labels, f64)>, String> {
    let rows = query(env, rule.expr(), qts)?;
    match rule {
        Rule::Recording { record, labels, .. } => {
            let mut out = Vec::with_capacity(rows.len());
            let mut seen = HashSet::with_capacity(rows.len());
            for (metric, v) in rows {
                let mut b = metric.to_builder();
                b.set(vigil_storage::METRIC_NAME, record.clone());
                for (k, val) in labels.iter() {
                    b.set(k.clone(), val.clone());
                }
                let l = b.build();
                if !seen.insert(l.clone()) {
                    return Err(
                        "vector contains metrics with the same labelset after applying rule labels".into()
                    );
                }
                out.push((l, v));
            }
            if limit > 0 && out.len() > limit {
                return Err(format!("exceeded limit of {limit} with {} series", out.len()));
            }
            Ok(out)
        }
        Rule::Alerting(a) => {
            let tq = EngineQuerier { env };
            let ctx = AlertContext {
                external_labels: &env.external_labels,
                external_url: &env.external_url,
                querier: &tq,
            };
            a.eval(ts, rows, limit, &ctx)
        }
    }
}

/// An instant query as a rule sees it: a vector, or a scalar as one unlabelled sample.
fn query(env: &EvalEnv, expr: &str, t: i64) -> Result<Vec<(Labels, f64)>, String> {
    let querier: &dyn vigil_storage::Querier = env.storage.as_ref();
    let res =
        env.engine.instant_query(querier, expr, t, &QueryOptions::default()).map_err(|e| e.to_string())?;
    match res.value {
        Value::Vector(v) => Ok(v.into_iter().map(|e| (e.labels, e.v)).collect()),
        Value::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
        other => Err(format!("rule result is not a vector or scalar: {}", other.type_name())),
    }
}

/// The `query` template function, backed by the engine.
struct EngineQuerier<'a> {
    env: &'a EvalEnv,
}

impl TemplateQuerier for EngineQuerier<'_> {
    fn query(&self, q: &str, time_ms: i64) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        let rows = query(self.env, q, time_ms)?;
        Ok(rows
            .into_iter()
            .map(|(l, v)| (l.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect(), v))
            .collect())
    }
}

/// Appends `samples` at `t`, plus staleness markers for series in `prev` that are gone.
fn write(env: &EvalEnv, samples: &[(Labels, f64)], prev: &HashSet<Labels>, t: i64) -> Result<(), String> {
    let mut app = env.storage.appender();
    let now: HashSet<&Labels> = samples.iter().map(|(l, _)| l).collect();
    for (l, v) in samples {
        app.append(l, t, *v);
    }
    for l in prev.iter().filter(|l| !now.contains(l)) {
        app.append(l, t, stale_nan());
    }
    let outcome = app.commit().map_err(|e| e.to_string())?;
    if let Some((labels, at, err)) = outcome.first_error {
        // Prometheus logs these and keeps the rule healthy.
        tracing::warn!(series = %labels, t = at, error = %err, rejected = outcome.out_of_order + outcome.duplicate, "rule output refused by storage");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
