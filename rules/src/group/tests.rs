use std::sync::Arc;

use vigil_storage::memory::MemStorage;
use vigil_storage::{Labels, Matcher, Querier, SelectHints, is_stale_nan};

use super::*;
use crate::alerting::AlertState;
use crate::file::parse_file;

const SEC: i64 = 1000;

fn env(store: Arc<MemStorage>) -> EvalEnv {
    EvalEnv {
        storage: store,
        engine: Engine::default(),
        external_labels: BTreeMap::new(),
        external_url: "http://vigil".into(),
        resend_delay_ms: 60 * SEC,
        for_outage_tolerance_ms: 3600 * SEC,
        for_grace_period_ms: 10 * SEC,
        metrics: Arc::new(RuleMetrics::default()),
    }
}

fn group(text: &str, restored: bool) -> Group {
    let specs = parse_file(text, "g.yml").expect("valid rules");
    Group::from_spec(&specs[0], 60 * SEC, 0, restored)
}

fn samples(store: &MemStorage, name: &str) -> Vec<(Labels, i64, f64)> {
    let hints = SelectHints { start: i64::MIN / 2, end: i64::MAX / 2, ..SelectHints::default() };
    let mut out = Vec::new();
    for mut s in store.select(&[Matcher::equal("__name__", name)], &hints).expect("select") {
        while let Some(x) = s.samples.next() {
            out.push((s.labels.clone(), x.t, x.v));
        }
    }
    out
}

const RULES: &str = r#"
groups:
  - name: g
    interval: 10s
    rules:
      - record: job:errors:sum
        expr: sum by (job) (errors)
        labels:
          source: rule
      - record: job:errors:double
        expr: job:errors:sum * 2
      - alert: TooManyErrors
        expr: job:errors:sum > 5
        for: 20s
        annotations:
          summary: "{{ $labels.job }} has {{ $value }} errors"
"#;

#[test]
fn rules_see_earlier_results_and_write_staleness() {
    let store = Arc::new(MemStorage::new());
    let env = env(store.clone());
    store.add(&Labels::from_pairs([("__name__", "errors"), ("job", "a")]), 0, 10.0).expect("add");
    let mut g = group(RULES, true);
    assert!(g.eval(0, &env).is_empty());
    let rec = samples(&store, "job:errors:sum");
    assert_eq!(
        rec,
        vec![(
            Labels::from_pairs([("__name__", "job:errors:sum"), ("job", "a"), ("source", "rule")]),
            0,
            10.0
        )]
    );
    assert_eq!(samples(&store, "job:errors:double")[0].2, 20.0, "second rule sees the first one's output");
    let alerts = samples(&store, "ALERTS");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0.get("alertstate"), Some("pending"));
    assert!(g.rules.iter().all(|r| r.health == Health::Ok), "{:?}", g.rules);

    // The source disappears (stale marker after the lookback): outputs go stale.
    store
        .add(&Labels::from_pairs([("__name__", "errors"), ("job", "a")]), 5 * SEC, vigil_storage::stale_nan())
        .expect("add");
    g.eval(10 * SEC, &env);
    let rec = samples(&store, "job:errors:sum");
    assert_eq!(rec.len(), 2);
    assert!(is_stale_nan(rec[1].2) && rec[1].1 == 10 * SEC, "{rec:?}");
    let alerts = samples(&store, "ALERTS");
    assert!(is_stale_nan(alerts.last().expect("sample").2), "{alerts:?}");
}

#[test]
fn alert_fires_after_for_and_is_sent_once_per_resend_delay() {
    let store = Arc::new(MemStorage::new());
    let env = env(store.clone());
    let series = Labels::from_pairs([("__name__", "errors"), ("job", "a")]);
    let mut g = group(RULES, true);
    let mut sent = Vec::new();
    for step in 0..=4 {
        let ts = step * 10 * SEC;
        store.add(&series, ts, 10.0).expect("add");
        sent.push(g.eval(ts, &env));
    }
    // Pending at 0, 10s; fires at 20s (for: 20s) and is sent then, not again within a minute.
    assert!(sent[0].is_empty() && sent[1].is_empty());
    assert_eq!(sent[2].len(), 1);
    let a = &sent[2][0].alerts[0];
    assert_eq!((a.state, a.fired_at, a.active_at), (AlertState::Firing, Some(20 * SEC), 0));
    assert_eq!(a.annotations["summary"], "a has 10 errors");
    assert!(sent[3].is_empty() && sent[4].is_empty());
}

#[test]
fn restore_shifts_a_pending_alert_by_the_downtime() {
    let store = Arc::new(MemStorage::new());
    let env = env(store.clone());
    let series = Labels::from_pairs([("__name__", "errors"), ("job", "a")]);
    let text = RULES.replace("for: 20s", "for: 600s");
    let mut before = group(&text, true);
    for step in 0..=3 {
        store.add(&series, step * 10 * SEC, 10.0).expect("add");
        before.eval(step * 10 * SEC, &env);
    }
    // Down at 30s, back at 100s: a new group starts pending at 100s, then restores.
    let mut after = group(&text, false);
    store.add(&series, 100 * SEC, 10.0).expect("add");
    after.eval(100 * SEC, &env);
    after.restore_for_state(100 * SEC, &env);
    let Rule::Alerting(a) = &after.rules[2].rule else { panic!("alerting rule") };
    let alert = a.active.values().next().expect("alert");
    assert_eq!(alert.active_at, 70 * SEC, "0s + (100s - 30s) downtime");
    assert!(a.restored);
}

#[test]
fn slots_are_stable_and_inside_the_interval() {
    let g = group(RULES, true);
    let s = g.slot_at_or_before(1_000_000);
    assert!(s <= 1_000_000 && 1_000_000 - s < g.interval_ms);
    assert_eq!(g.slot_at_or_before(s + g.interval_ms - 1), s);
    assert_eq!(g.slot_at_or_before(s + g.interval_ms), s + g.interval_ms);
}

#[test]
fn failing_rule_is_unhealthy_and_others_run() {
    let store = Arc::new(MemStorage::new());
    let env = env(store.clone());
    let text = "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: label_replace(vector(1), \"x\", \"y\", \"\", \"(\")\n      - record: b\n        expr: vector(2)\n";
    let mut g = group(text, true);
    g.eval(0, &env);
    assert_eq!(g.rules[0].health, Health::Err);
    assert!(g.rules[0].last_error.is_some());
    assert_eq!(g.rules[1].health, Health::Ok);
    assert_eq!(samples(&store, "b")[0].2, 2.0);
}

#[test]
fn query_offset_evaluates_and_writes_in_the_past() {
    let store = Arc::new(MemStorage::new());
    let env = env(store.clone());
    let src = Labels::from_pairs([("__name__", "src")]);
    store.add(&src, 0, 1.0).expect("add");
    store.add(&src, 60 * SEC, 2.0).expect("add");
    let text =
        "groups:\n  - name: g\n    query_offset: 1m\n    rules:\n      - record: copy\n        expr: src\n";
    let mut g = group(text, true);
    g.eval(120 * SEC, &env);
    assert_eq!(samples(&store, "copy"), vec![(Labels::from_pairs([("__name__", "copy")]), 60 * SEC, 2.0)]);
}

#[test]
fn limit_fails_a_recording_rule_and_writes_nothing() {
    let store = Arc::new(MemStorage::new());
    let env = env(store.clone());
    for i in ["a", "b"] {
        store.add(&Labels::from_pairs([("__name__", "src"), ("i", i)]), 0, 1.0).expect("add");
    }
    let text = "groups:\n  - name: g\n    limit: 1\n    rules:\n      - record: copy\n        expr: src\n";
    let mut g = group(text, true);
    g.eval(0, &env);
    assert_eq!(g.rules[0].health, Health::Err);
    assert_eq!(g.rules[0].last_error.as_deref(), Some("exceeded limit of 1 with 2 series"));
    assert!(samples(&store, "copy").is_empty());
}
