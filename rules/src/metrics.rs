//! Self-monitoring of rule evaluation and notification, under Prometheus's metric names.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type LabelSet = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Metrics of the rule manager and the notifier; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct RuleMetrics {
    group_duration: Family<LabelSet, FloatGauge>,
    group_last_eval: Family<LabelSet, FloatGauge>,
    group_interval: Family<LabelSet, FloatGauge>,
    group_rules: Family<LabelSet, Gauge>,
    iterations: Family<LabelSet, Counter>,
    missed: Family<LabelSet, Counter>,
    evaluations: Family<LabelSet, Counter>,
    failures: Family<LabelSet, Counter>,
    sent: Family<LabelSet, Counter>,
    errors: Family<LabelSet, Counter>,
    dropped: Counter,
    queue_length: Gauge,
    queue_capacity: Gauge,
    alertmanagers: Gauge,
}

/// The `rule_group` label Prometheus uses: `file;group`.
pub fn group_key(file: &str, group: &str) -> LabelSet {
    vec![("rule_group".into(), format!("{file};{group}"))]
}

fn am_key(url: &str) -> LabelSet {
    vec![("alertmanager".into(), url.to_string())]
}

impl RuleMetrics {
    /// Registers every metric in `registry` (counters get `_total` appended).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            self.group_duration.clone(),
        );
        r.register(
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
            self.group_last_eval.clone(),
        );
        r.register(
            "prometheus_rule_group_interval_seconds",
            "The interval of a rule group.",
            self.group_interval.clone(),
        );
        r.register("prometheus_rule_group_rules", "The number of rules.", self.group_rules.clone());
        r.register(
            "prometheus_rule_group_iterations",
            "The number of scheduled evaluations of a rule group.",
            self.iterations.clone(),
        );
        r.register(
            "prometheus_rule_group_iterations_missed",
            "The number of rule group evaluations missed due to slow rule group evaluation.",
            self.missed.clone(),
        );
        r.register(
            "prometheus_rule_evaluations",
            "The total number of rule evaluations.",
            self.evaluations.clone(),
        );
        r.register(
            "prometheus_rule_evaluation_failures",
            "The total number of rule evaluation failures.",
            self.failures.clone(),
        );
        r.register("prometheus_notifications_sent", "Total number of alerts sent.", self.sent.clone());
        r.register(
            "prometheus_notifications_errors",
            "Total number of sent alerts affected by errors.",
            self.errors.clone(),
        );
        r.register(
            "prometheus_notifications_dropped",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            self.dropped.clone(),
        );
        r.register(
            "prometheus_notifications_queue_length",
            "The number of alert notifications in the queue.",
            self.queue_length.clone(),
        );
        r.register(
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
            self.queue_capacity.clone(),
        );
        r.register(
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
            self.alertmanagers.clone(),
        );
    }

    /// A group (re)started with this interval and rule count.
    pub fn group_started(&self, key: &LabelSet, interval_s: f64, rules: usize) {
        self.group_interval.get_or_create(key).set(interval_s);
        self.group_rules.get_or_create(key).set(rules as i64);
    }

    /// A group went away: its series disappear from `/metrics`.
    pub fn group_removed(&self, key: &LabelSet) {
        for f in [&self.group_duration, &self.group_last_eval, &self.group_interval] {
            f.remove(key);
        }
        self.group_rules.remove(key);
        for f in [&self.iterations, &self.missed, &self.evaluations, &self.failures] {
            f.remove(key);
        }
    }

    /// One evaluation of a group finished.
    pub fn group_evaluated(&self, key: &LabelSet, duration_s: f64, eval_ts_s: f64) {
        self.iterations.get_or_create(key).inc();
        self.group_duration.get_or_create(key).set(duration_s);
        self.group_last_eval.get_or_create(key).set(eval_ts_s);
    }

    /// `n` iterations were skipped because the group overran.
    pub fn missed(&self, key: &LabelSet, n: u64) {
        self.missed.get_or_create(key).inc_by(n);
        self.iterations.get_or_create(key).inc_by(n);
    }

    /// One rule evaluated (and whether it failed).
    pub fn rule_evaluated(&self, key: &LabelSet, failed: bool) {
        self.evaluations.get_or_create(key).inc();
        if failed {
            self.failures.get_or_create(key).inc();
        }
    }

    /// `n` alerts delivered to Alertmanager `url`.
    pub fn sent(&self, url: &str, n: usize) {
        self.sent.get_or_create(&am_key(url)).inc_by(n as u64);
    }

    /// `n` alerts failed to reach Alertmanager `url`.
    pub fn errored(&self, url: &str, n: usize) {
        self.errors.get_or_create(&am_key(url)).inc_by(n as u64);
    }

    /// `n` alerts dropped (queue full, or no Alertmanager took them).
    pub fn dropped(&self, n: usize) {
        self.dropped.inc_by(n as u64);
    }

    /// The queue now holds `n` alerts.
    pub fn queue_length(&self, n: usize) {
        self.queue_length.set(n as i64);
    }

    /// Static settings of the notifier.
    pub fn notifier_configured(&self, capacity: usize, alertmanagers: usize) {
        self.queue_capacity.set(capacity as i64);
        self.alertmanagers.set(alertmanagers as i64);
    }
}
