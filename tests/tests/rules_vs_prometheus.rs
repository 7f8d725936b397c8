//! The same rule files evaluated by Prometheus 3 (through `promtool test rules`) and by
//! Vigil's rule engine over the same input series give the same recorded series and
//! the same alerts (labels and expanded annotations) at the same times.
//!
//! One promtool unit-test file is the specification: promtool must pass it, and a small
//! runner here replays it against Vigil, evaluating every group at every
//! `evaluation_interval` step as promtool does.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde::Deserialize;
use vigil_query::{Engine, QueryOptions, Value};
use vigil_rules::alerting::AlertState;
use vigil_rules::{EvalEnv, Group, Rule, RuleMetrics, load_file};
use vigil_storage::memory::MemStorage;
use vigil_storage::{Labels, MatchOp};
use vigil_tests::peer_binary;

const TEMPLATED_RULES: &str = r#"
groups:
  - name: templated
    rules:
      - alert: ErrorBudgetBurn
        expr: sum by (job) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.0001
        labels:
          team: '{{ toUpper "sre" }}'
        annotations:
          summary: '{{ $labels.job }}: {{ $value | humanizePercentage }} of requests fail'
          ratio: '{{ printf "%.3f" $value }}'
          total: '{{ with query "sum(healing_guard:request_rate_5m)" }}{{ . | first | value | humanize }}{{ end }} req/s'
          window: '{{ 3725 | humanizeDuration }}'
          title: '{{ "error budget burn" | title }}'
          labels: '{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}'
      - alert: TemplateChecks
        expr: sum by (job) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.0001
        annotations:
          raw: '{{ $value }}'
          missing: '[{{ $labels.nope }}]'
          quoted: '{{ printf "%q" $labels.job }}'
          replaced: '{{ reReplaceAll "(.*)-(.*)" "$2/$1" $labels.job }}'
          cond: '{{ if gt $value 0.01 }}high{{ else }}low{{ end }}'
          ts: '{{ humanizeTimestamp 1435065584.128 }}'
          bytes: '{{ humanize1024 1048576 }}'
          host: '{{ stripPort "host.example.com:9100" }}'
          sorted: '{{ range query "healing_guard:request_rate_5m" | sortByLabel "status" }}{{ .Labels.status }}={{ .Value }} {{ end }}'
          matched: '{{ match "^heal" $labels.job }}'
          count: '{{ len $labels }}'
          external: '{{ $externalLabels }}'
          trimmed: "a  {{- 1 -}}  b"
          failed: "{{ $labels.job }}\n  {{ query \"nothing\" | first | value }}"
      - alert: KeptFiring
        expr: up{job="healing-guard"} == 1
        for: 1m
        keep_firing_for: 2m
"#;

const UNIT_TESTS: &str = r#"
rule_files:
  - RULES_DIR/healing-guard.yml
  - templated.yml
evaluation_interval: 30s
tests:
  - interval: 30s
    input_series:
      - series: 'http_requests_total{job="healing-guard",instance="a",status="500"}'
        values: '0+6x40'
      - series: 'http_requests_total{job="healing-guard",instance="a",status="200"}'
        values: '0+300x40'
      - series: 'up{job="healing-guard",instance="a"}'
        values: '1x10 0x30'
      - series: 'http_request_duration_seconds_bucket{job="healing-guard",instance="a",le="0.1"}'
        values: '0+10x40'
      - series: 'http_request_duration_seconds_bucket{job="healing-guard",instance="a",le="0.5"}'
        values: '0+20x40'
      - series: 'http_request_duration_seconds_bucket{job="healing-guard",instance="a",le="+Inf"}'
        values: '0+20x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: HighErrorRate
        exp_alerts: []
      - eval_time: 6m
        alertname: HighErrorRate
        exp_alerts:
          - exp_labels: {severity: critical, job: healing-guard, instance: a, status: "500"}
            exp_annotations: {summary: High error rate detected}
      - eval_time: 6m
        alertname: ServiceDown
        exp_alerts: []
      - eval_time: 7m
        alertname: ServiceDown
        exp_alerts:
          - exp_labels: {severity: critical, job: healing-guard, instance: a}
      - eval_time: 10m
        alertname: HighResponseTime
        exp_alerts: []
      - eval_time: 11m
        alertname: HighResponseTime
        exp_alerts:
          - exp_labels: {severity: warning, job: healing-guard, instance: a}
      - eval_time: 10m
        alertname: ErrorBudgetBurn
        exp_alerts:
          - exp_labels: {job: healing-guard, team: SRE}
            exp_annotations:
              summary: 'healing-guard: 1.961% of requests fail'
              ratio: '0.020'
              total: '10.2 req/s'
              window: '1h 2m 5s'
              title: 'Error Budget Burn'
              labels: 'job=healing-guard;'
      - eval_time: 10m
        alertname: TemplateChecks
        exp_alerts:
          - exp_labels: {job: healing-guard}
            exp_annotations:
              raw: '0.019607843137254905'
              missing: '[]'
              quoted: '"healing-guard"'
              replaced: 'guard/healing'
              cond: 'high'
              ts: '2015-06-23 13:19:44.128 +0000 UTC'
              bytes: '1Mi'
              host: 'host.example.com'
              sorted: '200=10 500=0.2 '
              matched: 'true'
              count: '1'
              external: 'map[]'
              trimmed: 'a1b'
              failed: '<error expanding template: error executing template __alert_TemplateChecks: template: __alert_TemplateChecks:2:23: executing "__alert_TemplateChecks" at <first>: error calling first: first() called on vector with no elements>'
      - eval_time: 30s
        alertname: KeptFiring
        exp_alerts: []
      - eval_time: 1m
        alertname: KeptFiring
        exp_alerts:
          - exp_labels: {job: healing-guard, instance: a}
      - eval_time: 7m
        alertname: KeptFiring
        exp_alerts:
          - exp_labels: {job: healing-guard, instance: a}
      - eval_time: 7m30s
        alertname: KeptFiring
        exp_alerts: []
    promql_expr_test:
      - expr: healing_guard:error_rate_5m
        eval_time: 10m
        exp_samples:
          - labels: 'healing_guard:error_rate_5m{job="healing-guard",instance="a",status="500"}'
            value: 0.2
      - expr: healing_guard:request_rate_5m
        eval_time: 10m
        exp_samples:
          - labels: 'healing_guard:request_rate_5m{job="healing-guard",instance="a",status="200"}'
            value: 10
          - labels: 'healing_guard:request_rate_5m{job="healing-guard",instance="a",status="500"}'
            value: 0.2
      - expr: ALERTS{alertname="ServiceDown"}
        eval_time: 6m
        exp_samples:
          - labels: 'ALERTS{alertname="ServiceDown",alertstate="pending",severity="critical",job="healing-guard",instance="a"}'
            value: 1
"#;

#[derive(Deserialize)]
struct UnitFile {
    rule_files: Vec<String>,
    evaluation_interval: String,
    tests: Vec<UnitTest>,
}

#[derive(Deserialize)]
struct UnitTest {
    interval: String,
    input_series: Vec<InputSeries>,
    alert_rule_test: Vec<AlertTest>,
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Deserialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Deserialize)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ExprTest {
    expr: String,
    eval_time: String,
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
struct ExpSample {
    labels: String,
    value: f64,
}

fn ms(d: &str) -> i64 {
    vigil_rules::duration::parse_ms(d).expect("duration")
}

/// A series selector with only `=` matchers as a label set.
fn labels_of(selector: &str) -> Labels {
    let matchers = vigil_query::parse_selector(selector).expect("series selector");
    assert!(matchers.iter().all(|m| m.op == MatchOp::Equal), "{selector}");
    Labels::from_pairs(matchers.iter().map(|m| (m.name.clone(), m.value.clone())))
}

/// promtool's expanding notation, for the forms used here: `a+bxN` and `axN`.
fn expand(values: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for token in values.split_whitespace() {
        let (head, times) = token.split_once('x').expect("aXn notation");
        let n: usize = times.parse().expect("count");
        let (start, step) = match head.find(['+', '-']).filter(|&i| i > 0) {
            Some(i) => (head[..i].parse::<f64>().expect("start"), head[i..].parse::<f64>().expect("step")),
            None => (head.parse::<f64>().expect("value"), 0.0),
        };
        out.extend((0..=n).map(|k| start + step * k as f64));
    }
    out
}

fn firing(groups: &[Group], alertname: &str) -> Vec<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for g in groups {
        for r in &g.rules {
            let Rule::Alerting(a) = &r.rule else { continue };
            if a.name != alertname {
                continue;
            }
            for alert in a.active.values().filter(|x| x.state == AlertState::Firing) {
                let labels = alert
                    .labels
                    .iter()
                    .filter(|l| l.name != "alertname")
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                out.push((labels, alert.annotations.clone()));
            }
        }
    }
    out.sort();
    out
}

/// Replays the unit tests against Vigil's rule engine; returns every mismatch.
fn run_on_vigil(dir: &Path, file: &UnitFile) -> Vec<String> {
    let mut failures = Vec::new();
    let eval_interval = ms(&file.evaluation_interval);
    for test in &file.tests {
        let store = Arc::new(MemStorage::new());
        let step = ms(&test.interval);
        for s in &test.input_series {
            let labels = labels_of(&s.series);
            for (i, v) in expand(&s.values).into_iter().enumerate() {
                store.add(&labels, i as i64 * step, v).expect("add");
            }
        }
        let env = EvalEnv {
            storage: store.clone(),
            engine: Engine::default(),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            resend_delay_ms: 60_000,
            for_outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
            metrics: Arc::new(RuleMetrics::default()),
        };
        let mut groups: Vec<Group> = Vec::new();
        for f in &file.rule_files {
            for spec in load_file(&dir.join(f)).expect("rule file") {
                groups.push(Group::from_spec(&spec, eval_interval, 0, true));
            }
        }
        let max = test.alert_rule_test.iter().map(|t| ms(&t.eval_time)).max().unwrap_or(0);
        let mut ts = 0;
        while ts <= max {
            for g in &mut groups {
                g.eval(ts, &env);
            }
            for t in
                test.alert_rule_test.iter().filter(|t| (ts..ts + eval_interval).contains(&ms(&t.eval_time)))
            {
                let mut want: Vec<_> =
                    t.exp_alerts.iter().map(|a| (a.exp_labels.clone(), a.exp_annotations.clone())).collect();
                want.sort();
                let got = firing(&groups, &t.alertname);
                if got != want {
                    failures.push(format!("{} at {}: want {want:?}, got {got:?}", t.alertname, t.eval_time));
                }
            }
            ts += eval_interval;
        }
        for t in &test.promql_expr_test {
            let res = env
                .engine
                .instant_query(store.as_ref(), &t.expr, ms(&t.eval_time), &QueryOptions::default())
                .expect("query");
            let Value::Vector(v) = res.value else { panic!("{} is not a vector", t.expr) };
            let mut got: Vec<(Labels, f64)> = v.into_iter().map(|e| (e.labels, e.v)).collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want: Vec<(Labels, f64)> =
                t.exp_samples.iter().map(|s| (labels_of(&s.labels), s.value)).collect();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            let same = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(g, w)| g.0 == w.0 && (g.1 - w.1).abs() <= 1e-9 * w.1.abs().max(1.0));
            if !same {
                failures.push(format!("{} at {}: want {want:?}, got {got:?}", t.expr, t.eval_time));
            }
        }
    }
    failures
}

#[test]
fn vigil_and_prometheus_agree_on_the_example_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules");
    std::fs::write(dir.path().join("templated.yml"), TEMPLATED_RULES).expect("write rules");
    let unit = UNIT_TESTS.replace("RULES_DIR", &rules_dir.display().to_string());
    let unit_path = dir.path().join("unit.yml");
    std::fs::write(&unit_path, &unit).expect("write unit tests");

    // Vigil first: it needs no peer.
    let file: UnitFile = serde_saphyr::from_str(&unit).expect("unit test file");
    let failures = run_on_vigil(dir.path(), &file);
    assert!(failures.is_empty(), "Vigil differs:\n{}", failures.join("\n"));

    // Prometheus: promtool must agree with the same expectations.
    let Some(promtool) = peer_binary("promtool") else { return };
    let out = Command::new(promtool)
        .arg("test")
        .arg("rules")
        .arg(&unit_path)
        .current_dir(dir.path())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool disagrees:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const SHAPE_RULES: &str = r#"
groups:
  - name: shapes
    interval: 1s
    limit: 10
    rules:
      - record: plain
        expr: vector(1)
      - record: labelled
        expr: vector(2)
        labels:
          team: sre
      - alert: Pending
        expr: vector(1) > 0
        for: 1h
        keep_firing_for: 5m
        labels:
          severity: page
        annotations:
          summary: 'value {{ $value }}'
      - alert: Firing
        expr: label_replace(vector(3), "instance", "a:1", "", "")
        labels:
          severity: '{{ $labels.instance }}'
      - alert: Broken
        expr: label_replace(vector(1), "x", "y", "", "(")
"#;

/// Drops what differs between two runs by nature: times, durations and the file's
/// directory.
fn normalize(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match k.as_str() {
                    "lastEvaluation" | "evaluationTime" | "activeAt" => *x = serde_json::Value::Null,
                    "file" => {
                        let base = x
                            .as_str()
                            .and_then(|f| Path::new(f).file_name())
                            .map(|f| f.to_string_lossy().into_owned());
                        *x = serde_json::Value::from(base);
                    }
                    // Error texts are worded by each engine.
                    "lastError" => *x = serde_json::Value::from(!x.as_str().unwrap_or("").is_empty()),
                    _ => normalize(x),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

#[test]
fn rules_and_alerts_api_match_prometheus() {
    let Some(prometheus) = peer_binary("prometheus") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rules.yml"), SHAPE_RULES).expect("write rules");
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "global:\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\n")
        .expect("write config");
    let addr = format!("127.0.0.1:{}", vigil_tests::free_port());
    let prom = vigil_tests::Peer::start(
        &prometheus,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("prom-data").display()),
            format!("--web.listen-address={addr}"),
        ],
        addr,
        "/-/ready",
        &dir.path().join("prometheus.log"),
    );
    let vigil = vigil_tests::Vigil::start_with_args(
        &dir.path().join("data"),
        &["--config.file", &config.display().to_string()],
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    let theirs = vigil_tests::Api::new(&prom.url());
    let ours = vigil.api();
    for (path, params) in [
        ("/api/v1/rules", vec![]),
        ("/api/v1/rules", vec![("type", "alert"), ("rule_name[]", "Firing")]),
        ("/api/v1/rules", vec![("type", "record"), ("exclude_alerts", "true")]),
        ("/api/v1/alerts", vec![]),
    ] {
        let mut a = ours.get(path, &params).json();
        let mut b = theirs.get(path, &params).json();
        normalize(&mut a);
        normalize(&mut b);
        assert_eq!(a, b, "{path} {params:?}\nvigil: {a}\nprometheus: {b}");
    }
}
