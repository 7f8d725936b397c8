//! The shipped example rules load and evaluate: `HighErrorRate` goes pending, then
//! fires exactly 5 minutes later; the recording rules write the rates.

use std::path::Path;
use std::sync::Arc;

use vigil_query::Engine;
use vigil_rules::alerting::AlertState;
use vigil_rules::{EvalEnv, Group, Rule, RuleMetrics, load_file};
use vigil_storage::memory::MemStorage;
use vigil_storage::{Labels, Matcher, Querier, SelectHints};

const MIN: i64 = 60_000;

#[test]
fn healing_guard_rules_load_and_evaluate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules/healing-guard.yml");
    let specs = load_file(&path).expect("example rules are valid");
    let names: Vec<&str> = specs.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["healing_guard_alerts", "healing_guard_aggregations"]);
    assert_eq!(specs[1].interval_ms, Some(30_000));

    let store = Arc::new(MemStorage::new());
    let env = EvalEnv {
        storage: store.clone(),
        engine: Engine::default(),
        external_labels: Default::default(),
        external_url: "http://vigil:9090".into(),
        resend_delay_ms: MIN,
        for_outage_tolerance_ms: 60 * MIN,
        for_grace_period_ms: 10 * MIN,
        metrics: Arc::new(RuleMetrics::default()),
    };
    let mut alerts = Group::from_spec(&specs[0], MIN, 0, true);
    let mut aggregations = Group::from_spec(&specs[1], MIN, 0, true);

    // 5xx requests at 0.5/s and 200s at 10/s, sampled every 15s for 20 minutes.
    let errors = Labels::from_pairs([
        ("__name__", "http_requests_total"),
        ("job", "healing-guard"),
        ("status", "500"),
    ]);
    let ok = Labels::from_pairs([
        ("__name__", "http_requests_total"),
        ("job", "healing-guard"),
        ("status", "200"),
    ]);
    for i in 0..=80i64 {
        let t = i * 15_000;
        store.add(&errors, t, 0.5 * (t / 1000) as f64).expect("add");
        store.add(&ok, t, 10.0 * (t / 1000) as f64).expect("add");
    }
    let mut fired_at = None;
    let mut first_pending = None;
    for minute in 1..=20 {
        let ts = minute * MIN;
        aggregations.eval(ts - 30_000, &env);
        aggregations.eval(ts, &env);
        let sent = alerts.eval(ts, &env);
        let Rule::Alerting(rule) = &alerts.rules[0].rule else { panic!("HighErrorRate is an alerting rule") };
        assert_eq!(rule.name, "HighErrorRate");
        if let Some(a) = rule.active.values().next() {
            first_pending.get_or_insert(ts);
            if a.state == AlertState::Firing && fired_at.is_none() {
                fired_at = Some(ts);
                assert_eq!(sent.len(), 1, "sent when it starts firing");
                let sent_alert = &sent[0].alerts[0];
                assert_eq!(sent_alert.labels.get("severity"), Some("critical"));
                assert_eq!(sent_alert.annotations["summary"], "High error rate detected");
            }
        }
    }
    let first_pending = first_pending.expect("HighErrorRate became pending");
    assert_eq!(fired_at, Some(first_pending + 5 * MIN), "fires exactly `for` after it became pending");
    assert!(alerts.rules.iter().all(|r| r.health == vigil_rules::Health::Ok));

    let hints = SelectHints { start: 0, end: 30 * MIN, ..SelectHints::default() };
    let rec =
        store.select(&[Matcher::equal("__name__", "healing_guard:error_rate_5m")], &hints).expect("select");
    assert_eq!(rec.len(), 1);
    let mut samples = rec.into_iter().next().expect("series").samples;
    let mut last = None;
    while let Some(s) = samples.next() {
        last = Some(s);
    }
    let last = last.expect("recorded samples");
    assert_eq!(last.t, 20 * MIN);
    assert!((last.v - 0.5).abs() < 1e-9, "error rate {}", last.v);
    let all =
        store.select(&[Matcher::equal("__name__", "healing_guard:request_rate_5m")], &hints).expect("select");
    assert_eq!(all.len(), 2, "one recorded series per status");
}
