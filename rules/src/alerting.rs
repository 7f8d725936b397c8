//! Alerting rules: the inactive → pending → firing → resolved state machine, the
//! `ALERTS`/`ALERTS_FOR_STATE` series, when to (re)send, and `for` restoration.

use std::collections::{BTreeMap, HashSet};

use vigil_storage::{Labels, LabelsBuilder, METRIC_NAME};

use crate::template::{Querier as TemplateQuerier, Template, TemplateData};

/// How long a resolved alert is kept (and re-sent) before it is dropped
/// (Prometheus's `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;
/// The label holding the alert name.
pub const ALERT_NAME_LABEL: &str = "alertname";
/// The label holding the alert state in `ALERTS`.
pub const ALERT_STATE_LABEL: &str = "alertstate";
/// Metric of the alert-state series.
pub const ALERTS_METRIC: &str = "ALERTS";
/// Metric of the series that keeps each alert's `ActiveAt` for restarts.
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Resolved (kept a while so Alertmanager hears about it).
    Inactive,
    /// Active for less than `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// The name Prometheus uses in the API and in `alertstate`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule, identified by its labels. Times are Unix ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Labels after templating, with `alertname`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// The expression's value at the last evaluation.
    pub value: f64,
    /// State.
    pub state: AlertState,
    /// When the condition was first seen (after restore, possibly shifted).
    pub active_at: i64,
    /// When it started firing.
    pub fired_at: Option<i64>,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// When it was last sent to Alertmanager.
    pub last_sent_at: Option<i64>,
    /// The `endsAt` sent while firing.
    pub valid_until: i64,
    /// Since when it has been kept firing by `keep_firing_for`.
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Whether this alert is due to be sent at `ts` (Prometheus's `needsSending`).
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        self.last_sent_at.is_none_or(|l| l.saturating_add(resend_delay_ms) < ts)
    }
}

/// What an alerting rule needs from its surroundings to evaluate.
pub struct AlertContext<'a> {
    /// `global.external_labels`.
    pub external_labels: &'a BTreeMap<String, String>,
    /// The server's external URL.
    pub external_url: &'a str,
    /// Answers the `query` template function.
    pub querier: &'a dyn TemplateQuerier,
}

/// An alerting rule with its active alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// Alert name.
    pub name: String,
    /// PromQL expression.
    pub expr: String,
    /// `for`, in ms.
    pub for_ms: i64,
    /// `keep_firing_for`, in ms.
    pub keep_firing_for_ms: i64,
    /// Label templates (group labels merged in).
    pub labels: Vec<(String, Template)>,
    /// Annotation templates.
    pub annotations: Vec<(String, Template)>,
    /// Active (pending, firing or recently resolved) alerts by label set.
    pub active: BTreeMap<Labels, Alert>,
    /// False until `for` state was restored after startup; `ALERTS` is written only once true.
    pub restored: bool,
}

impl AlertingRule {
    /// Feeds one evaluation's result at `ts` (ms): each element is (labels, value).
    /// Returns the `ALERTS` and `ALERTS_FOR_STATE` samples to write at `ts`.
    pub fn eval(
        &mut self,
        ts: i64,
        result: Vec<(Labels, f64)>,
        limit: usize,
        ctx: &AlertContext<'_>,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let mut fresh: BTreeMap<Labels, Alert> = BTreeMap::new();
        for (metric, value) in result {
            let data = TemplateData {
                labels: metric.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect(),
                external_labels: ctx.external_labels.clone(),
                external_url: ctx.external_url.to_string(),
                value,
                eval_time_ms: ts,
            };
            let mut lb = metric.to_builder();
            lb.del(METRIC_NAME);
            for (name, t) in &self.labels {
                lb.set(name.clone(), t.expand(&data, ctx.querier));
            }
            lb.set(ALERT_NAME_LABEL, self.name.clone());
            let labels = lb.build();
            let annotations =
                self.annotations.iter().map(|(k, t)| (k.clone(), t.expand(&data, ctx.querier))).collect();
            if fresh.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels".into()
                );
            }
            let alert = Alert {
                labels: labels.clone(),
                annotations,
                value,
                state: AlertState::Pending,
                active_at: ts,
                fired_at: None,
                resolved_at: None,
                last_sent_at: None,
                valid_until: 0,
                keep_firing_since: None,
            };
            fresh.insert(labels, alert);
        }
        let seen: HashSet<Labels> = fresh.keys().cloned().collect();
        for (labels, a) in fresh {
            match self.active.get_mut(&labels) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(labels, a);
                }
            }
        }

        let mut out = Vec::new();
        let mut active_count = 0usize;
        let mut gone = Vec::new();
        for (labels, a) in self.active.iter_mut() {
            if !seen.contains(labels) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < self.keep_firing_for_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    gone.push(labels.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_count += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                out.push((series(ALERTS_METRIC, labels, Some(a.state)), 1.0));
                out.push((
                    series(ALERTS_FOR_STATE_METRIC, labels, None),
                    (a.active_at.div_euclid(1000)) as f64,
                ));
            }
        }
        for l in gone {
            self.active.remove(&l);
        }
        if limit > 0 && active_count > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {active_count} alerts"));
        }
        Ok(out)
    }

    /// Alerts due at `ts`, marked as sent; Prometheus's `sendAlerts`.
    pub fn take_due(&mut self, ts: i64, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let mut due = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = Some(ts);
                // Allow for two evaluation or Alertmanager send failures.
                a.valid_until = ts + 4 * resend_delay_ms.max(interval_ms);
                due.push(a.clone());
            }
        }
        due
    }

    /// Highest state of any alert (for the rules API).
    pub fn state(&self) -> AlertState {
        let mut s = AlertState::Inactive;
        for a in self.active.values() {
            match a.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => s = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        s
    }

    /// Applies a restored `ALERTS_FOR_STATE` sample to the alert with `labels`, as
    /// Prometheus's `RestoreForState` does; `down_at` is the sample's time (ms) and
    /// `active_at_s` its value (Unix seconds).
    pub fn restore(&mut self, labels: &Labels, down_at: i64, active_at_s: f64, now: i64, grace_ms: i64) {
        let Some(a) = self.active.get_mut(labels) else { return };
        a.active_at = restored_active_at(self.for_ms, down_at, active_at_s, now, grace_ms);
    }
}

/// The `ActiveAt` to use after a restart: `for` keeps counting where it stopped, but
/// never fires sooner than one grace period after the restart.
pub fn restored_active_at(for_ms: i64, down_at: i64, active_at_s: f64, now: i64, grace_ms: i64) -> i64 {
    // Prometheus works in whole seconds here (`time.Unix(t/1000, 0)`).
    let down_at = down_at.div_euclid(1000) * 1000;
    let active_at = (active_at_s as i64) * 1000;
    let remaining = for_ms - (down_at - active_at);
    if remaining <= 0 {
        // It was firing when we went down; the next evaluation fires it again.
        active_at
    } else if remaining < grace_ms {
        now + grace_ms - for_ms
    } else {
        active_at + (now - down_at)
    }
}

/// `ALERTS{…, alertstate}` or `ALERTS_FOR_STATE{…}` for an alert's labels.
fn series(metric: &str, labels: &Labels, state: Option<AlertState>) -> Labels {
    let mut b: LabelsBuilder = labels.to_builder();
    b.set(METRIC_NAME, metric);
    if let Some(s) = state {
        b.set(ALERT_STATE_LABEL, s.as_str());
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::NoQuerier;

    const MIN: i64 = 60_000;

    fn rule(for_ms: i64, keep_ms: i64) -> AlertingRule {
        AlertingRule {
            name: "HighErrorRate".into(),
            expr: "x > 1".into(),
            for_ms,
            keep_firing_for_ms: keep_ms,
            labels: vec![("severity".into(), Template::parse("l", "critical").expect("template"))],
            annotations: vec![(
                "summary".into(),
                Template::parse("a", "{{ $labels.instance }} at {{ $value }}").expect("template"),
            )],
            active: BTreeMap::new(),
            restored: true,
        }
    }

    fn eval(r: &mut AlertingRule, ts: i64, present: bool) -> Vec<(Labels, f64)> {
        let ext = BTreeMap::new();
        let ctx = AlertContext { external_labels: &ext, external_url: "http://v", querier: &NoQuerier };
        let input = if present {
            vec![(Labels::from_pairs([("__name__", "x"), ("instance", "a")]), 2.0)]
        } else {
            vec![]
        };
        r.eval(ts, input, 0, &ctx).expect("eval")
    }

    fn only(r: &AlertingRule) -> &Alert {
        r.active.values().next().expect("one alert")
    }

    #[test]
    fn pending_then_firing_exactly_at_for_then_resolved() {
        let mut r = rule(5 * MIN, 0);
        let out = eval(&mut r, 0, true);
        assert_eq!(only(&r).state, AlertState::Pending);
        assert_eq!(only(&r).annotations["summary"], "a at 2");
        assert_eq!(
            only(&r).labels,
            Labels::from_pairs([("alertname", "HighErrorRate"), ("instance", "a"), ("severity", "critical")])
        );
        assert_eq!(out[0].0.get("alertstate"), Some("pending"));
        assert_eq!(
            out[1],
            (
                Labels::from_pairs([
                    ("__name__", "ALERTS_FOR_STATE"),
                    ("alertname", "HighErrorRate"),
                    ("instance", "a"),
                    ("severity", "critical")
                ]),
                0.0
            )
        );
        eval(&mut r, 5 * MIN - 1, true);
        assert_eq!(only(&r).state, AlertState::Pending);
        assert!(r.take_due(5 * MIN - 1, MIN, MIN).is_empty(), "pending alerts are never sent");
        let out = eval(&mut r, 5 * MIN, true);
        assert_eq!((only(&r).state, only(&r).fired_at), (AlertState::Firing, Some(5 * MIN)));
        assert_eq!(out[0].0.get("alertstate"), Some("firing"));
        let sent = r.take_due(5 * MIN, MIN, 30_000);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].valid_until, 5 * MIN + 4 * MIN);
        assert!(r.take_due(6 * MIN, MIN, 30_000).is_empty(), "resent only after the resend delay");
        assert_eq!(r.take_due(6 * MIN + 1, MIN, 30_000).len(), 1);
        let out = eval(&mut r, 7 * MIN, false);
        assert!(out.is_empty());
        assert_eq!((only(&r).state, only(&r).resolved_at), (AlertState::Inactive, Some(7 * MIN)));
        assert_eq!(r.take_due(7 * MIN, MIN, 30_000).len(), 1, "resolution is sent at once");
        eval(&mut r, 7 * MIN + RESOLVED_RETENTION_MS, false);
        assert_eq!(r.active.len(), 1, "kept for the retention period");
        eval(&mut r, 7 * MIN + RESOLVED_RETENTION_MS + 1, false);
        assert!(r.active.is_empty());
    }

    #[test]
    fn pending_alert_that_goes_away_is_dropped() {
        let mut r = rule(5 * MIN, 0);
        eval(&mut r, 0, true);
        eval(&mut r, MIN, false);
        assert!(r.active.is_empty());
        eval(&mut r, 2 * MIN, true);
        assert_eq!(only(&r).active_at, 2 * MIN, "the clock starts again");
    }

    #[test]
    fn for_zero_fires_on_first_evaluation() {
        let mut r = rule(0, 0);
        eval(&mut r, 10, true);
        assert_eq!(only(&r).state, AlertState::Firing);
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let mut r = rule(0, 2 * MIN);
        eval(&mut r, 0, true);
        eval(&mut r, MIN, false);
        assert_eq!((only(&r).state, only(&r).keep_firing_since), (AlertState::Firing, Some(MIN)));
        eval(&mut r, 2 * MIN, false);
        assert_eq!(only(&r).state, AlertState::Firing);
        eval(&mut r, 3 * MIN, false);
        assert_eq!((only(&r).state, only(&r).resolved_at), (AlertState::Inactive, Some(3 * MIN)));
    }

    #[test]
    fn limit_clears_alerts() {
        let mut r = rule(0, 0);
        let ext = BTreeMap::new();
        let ctx = AlertContext { external_labels: &ext, external_url: "", querier: &NoQuerier };
        let input = vec![(Labels::from_pairs([("i", "1")]), 1.0), (Labels::from_pairs([("i", "2")]), 1.0)];
        let err = r.eval(0, input, 1, &ctx).expect_err("over limit");
        assert_eq!(err, "exceeded limit of 1 with 2 alerts");
        assert!(r.active.is_empty());
    }

    #[test]
    fn restore_follows_prometheus_arithmetic() {
        let for_ms = 30 * MIN;
        let grace = 10 * MIN;
        // Pending 5m when we went down at 10m, back at 20m: 25m remain, shift by downtime.
        assert_eq!(restored_active_at(for_ms, 10 * MIN, 300.0, 20 * MIN, grace), 15 * MIN);
        // Pending 25m: only 5m remain, less than the grace period.
        assert_eq!(restored_active_at(for_ms, 30 * MIN, 300.0, 40 * MIN, grace), 40 * MIN + grace - for_ms);
        // Already firing.
        assert_eq!(restored_active_at(for_ms, 40 * MIN, 300.0, 50 * MIN, grace), 5 * MIN);
    }
}
