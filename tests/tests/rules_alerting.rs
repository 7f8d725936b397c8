//! Rules end to end: data remote-written into Vigil makes an alert fire, a real
//! Alertmanager receives it with its labels and expanded annotations and later sees
//! it resolved; a restart while an alert is pending keeps its `for` clock.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use vigil_tests::{Api, Peer, Vigil, agent, encode_write, free_port, peer_binary};

/// How often the writer sends a sample.
const WRITE_EVERY: Duration = Duration::from_millis(500);
/// Longest wait for any expected state.
const WAIT: Duration = Duration::from_secs(45);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// Writes `http_requests_total{status="500"}` twice a second; while `erroring` is set
/// the counter grows by one per second, otherwise it stays flat.
struct Writer {
    url: Arc<Mutex<String>>,
    erroring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(url: String) -> Writer {
        let url = Arc::new(Mutex::new(url));
        let erroring = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (u, e, s) = (url.clone(), erroring.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut counter = 0.0;
            while !s.load(Ordering::Relaxed) {
                if e.load(Ordering::Relaxed) {
                    counter += WRITE_EVERY.as_secs_f64();
                }
                let body = encode_write(&[(
                    vec![
                        ("__name__", "http_requests_total"),
                        ("instance", "web-1"),
                        ("job", "healing-guard"),
                        ("status", "500"),
                    ],
                    vec![(now_ms(), counter)],
                )]);
                // Vigil may be restarting: a failed write is simply retried next time.
                let base = u.lock().map(|g| g.clone()).unwrap_or_default();
                let _ = std::panic::catch_unwind(|| Api::new(&base).remote_write(body));
                std::thread::sleep(WRITE_EVERY);
            }
        });
        Writer { url, erroring, stop, thread: Some(thread) }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_config(dir: &Path, rules: &str, alertmanager: Option<&str>) -> String {
    std::fs::write(dir.join("rules.yml"), rules).expect("write rules");
    let mut cfg = String::from("global:\n  external_labels:\n    cluster: e2e\nrule_files:\n  - rules.yml\n");
    if let Some(am) = alertmanager {
        cfg.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am}']\n"
        ));
    }
    let path = dir.join("vigil.yml");
    std::fs::write(&path, cfg).expect("write config");
    path.display().to_string()
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Debian's Alertmanager reads its default notification templates from the fixed path
/// `/usr/share/prometheus/alertmanager/`. When the peer is unpacked elsewhere (as
/// `install.sh` does) and we are root, its `usr/share` is bind-mounted over
/// `/usr/share` in a private mount namespace for the Alertmanager process only.
fn alertmanager_command(am_bin: &Path, args: Vec<String>) -> (std::path::PathBuf, Vec<String>) {
    const DEFAULT_TEMPLATE: &str = "/usr/share/prometheus/alertmanager/default.tmpl";
    let peer_share = am_bin.parent().and_then(Path::parent).map(|usr| usr.join("share"));
    let unshare = Path::new("/usr/bin/unshare");
    match peer_share {
        Some(share)
            if !Path::new(DEFAULT_TEMPLATE).exists()
                && share.join("prometheus/alertmanager/default.tmpl").exists()
                && unshare.exists() =>
        {
            let mut wrapped = vec![
                "--mount".to_string(),
                "--propagation".into(),
                "private".into(),
                "sh".into(),
                "-c".into(),
                format!("mount --bind '{}' /usr/share && exec \"$0\" \"$@\"", share.display()),
                am_bin.display().to_string(),
            ];
            wrapped.extend(args);
            (unshare.to_path_buf(), wrapped)
        }
        _ => (am_bin.to_path_buf(), args),
    }
}

fn am_alerts(am: &Peer) -> Vec<Json> {
    let mut resp = agent().get(format!("{}/api/v2/alerts", am.url())).call().expect("alertmanager");
    let body = resp.body_mut().read_to_string().expect("body");
    serde_json::from_str::<Json>(&body).expect("json").as_array().cloned().unwrap_or_default()
}

fn vigil_alerts(api: &Api) -> Vec<Json> {
    api.get("/api/v1/alerts", &[]).json()["data"]["alerts"].as_array().cloned().unwrap_or_default()
}

const FIRING_RULES: &str = r#"
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: rate(http_requests_total{status=~"5.."}[5s]) > 0.01
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: High error rate detected
          description: '{{ $labels.instance }} of {{ $labels.job }} fails {{ $value | humanize }} requests/s ({{ $externalLabels.cluster }})'
"#;

#[test]
fn high_error_rate_reaches_alertmanager_and_resolves() {
    let Some(am_bin) = peer_binary("prometheus-alertmanager") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let am_addr = format!("127.0.0.1:{}", free_port());
    std::fs::write(dir.path().join("am.yml"), "route:\n  receiver: default\nreceivers:\n  - name: default\n")
        .expect("am config");
    let am_args = vec![
        format!("--config.file={}", dir.path().join("am.yml").display()),
        format!("--storage.path={}", dir.path().join("am-data").display()),
        format!("--web.listen-address={am_addr}"),
        "--cluster.listen-address=".into(),
    ];
    let (bin, args) = alertmanager_command(&am_bin, am_args);
    let am = Peer::start(&bin, &args, am_addr.clone(), "/-/ready", &dir.path().join("am.log"));
    let config = write_config(dir.path(), FIRING_RULES, Some(&am_addr));
    let vigil = Vigil::start_with_args(
        &dir.path().join("data"),
        &[
            "--config.file",
            &config,
            "--rules.alert.resend-delay=1s",
            "--web.external-url=http://vigil.example:9090/",
        ],
    );
    let writer = Writer::start(vigil.url());

    let alert = wait_for("HighErrorRate in Alertmanager", || {
        am_alerts(&am).into_iter().find(|a| a["labels"]["alertname"] == "HighErrorRate")
    });
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["instance"], "web-1");
    assert_eq!(alert["labels"]["job"], "healing-guard");
    assert_eq!(alert["labels"]["status"], "500");
    assert_eq!(alert["labels"]["cluster"], "e2e", "external labels are attached");
    assert_eq!(alert["annotations"]["summary"], "High error rate detected");
    // The rate depends on how many samples the window holds at that moment.
    let description = alert["annotations"]["description"].as_str().expect("description");
    let rate = description
        .strip_prefix("web-1 of healing-guard fails ")
        .and_then(|r| r.strip_suffix(" requests/s (e2e)"))
        .unwrap_or_else(|| panic!("unexpected description {description:?}"));
    assert!(!rate.is_empty() && !rate.contains('<') && !rate.contains(' '), "humanized value: {rate:?}");
    assert_eq!(alert["status"]["state"], "active");
    let generator = alert["generatorURL"].as_str().expect("generatorURL");
    assert!(generator.starts_with("http://vigil.example:9090/api/v1/query?query=rate%28"), "{generator}");
    // Firing alerts carry an endsAt in the future (4 x max(interval, resend delay)).
    assert!(alert["endsAt"].as_str().expect("endsAt") > alert["startsAt"].as_str().expect("startsAt"));

    // Vigil's own API agrees, and /metrics counts the notifications.
    let ours = vigil_alerts(&vigil.api());
    assert!(
        ours.iter().any(|a| a["labels"]["alertname"] == "HighErrorRate" && a["state"] == "firing"),
        "{ours:?}"
    );
    let rules = vigil.api().get("/api/v1/rules", &[("type", "alert")]).json();
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(
        (rule["name"].as_str(), rule["state"].as_str(), rule["health"].as_str()),
        (Some("HighErrorRate"), Some("firing"), Some("ok"))
    );
    let metrics = vigil.api().get("/metrics", &[]).body;
    assert!(metrics.contains("prometheus_notifications_sent_total{alertmanager="), "{metrics}");

    // The errors stop: the alert resolves and Alertmanager drops it from its active list.
    writer.erroring.store(false, Ordering::Relaxed);
    wait_for("HighErrorRate resolved in Alertmanager", || {
        (!am_alerts(&am).iter().any(|a| a["labels"]["alertname"] == "HighErrorRate")).then_some(())
    });
    assert!(vigil_alerts(&vigil.api()).is_empty());
    drop(writer);
}

const PENDING_RULES: &str = r#"
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: rate(http_requests_total{status=~"5.."}[5s]) > 0.01
        for: 5m
"#;

fn for_state(api: &Api) -> Option<f64> {
    let data = api.query("ALERTS_FOR_STATE", now_ms() as f64 / 1000.0);
    data["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok())
}

#[test]
fn restart_keeps_the_for_clock_of_a_pending_alert() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), PENDING_RULES, None);
    let data = dir.path().join("data");
    let args = ["--config.file", &config, "--rules.alert.for-grace-period=2s"];
    let vigil = Vigil::start_with_args(&data, &args);
    let writer = Writer::start(vigil.url());
    let api = vigil.api();
    let active_at = wait_for("a pending alert with ALERTS_FOR_STATE", || for_state(&api));
    let pending = vigil_alerts(&api);
    assert_eq!(pending[0]["state"], "pending", "{pending:?}");
    // Stay pending a while so the restored clock differs clearly from a fresh one.
    std::thread::sleep(Duration::from_secs(6));
    assert!(vigil.terminate(), "clean shutdown");

    let restarted_at = now_ms() as f64 / 1000.0;
    let vigil = Vigil::start_with_args(&data, &args);
    *writer.url.lock().expect("url lock") = vigil.url();
    let api = vigil.api();
    // After restart, ALERTS_FOR_STATE is written again once the state is restored.
    let restored = wait_for("restored ALERTS_FOR_STATE", || {
        let t = now_ms() as f64 / 1000.0;
        let written: f64 =
            api.query("timestamp(ALERTS_FOR_STATE)", t)["result"][0]["value"][1].as_str()?.parse().ok()?;
        (written > restarted_at + 1.0).then_some(())?;
        api.query("ALERTS_FOR_STATE", t)["result"][0]["value"][1].as_str()?.parse::<f64>().ok()
    });
    // The clock continued: activeAt moved forward by about the downtime only, so the
    // alert has been pending for the ~6s before the restart, not since the restart.
    assert!(restored > active_at, "shifted by the downtime: {active_at} -> {restored}");
    assert!(
        restored <= restarted_at - 4.0,
        "restored {restored} should be well before the restart at {restarted_at}"
    );
    let alerts = vigil_alerts(&api);
    assert_eq!(alerts[0]["state"], "pending", "{alerts:?}");
    drop(writer);
}

#[test]
fn reload_applies_good_rules_and_keeps_old_ones_on_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), PENDING_RULES, None);
    let vigil = Vigil::start_with_args(&dir.path().join("data"), &["--config.file", &config]);
    let api = vigil.api();
    let names = |api: &Api| -> Vec<String> {
        let rules = api.get("/api/v1/rules", &[]).json();
        rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(names(&api), ["HighErrorRate"]);

    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: e2e\n    rules:\n      - alert: Broken\n        expr: rate(x[5m]\n",
    )
    .expect("write bad rules");
    let reply = api.post_form("/-/reload", &[]);
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert!(
        reply.body.contains("could not parse expression") && reply.body.contains("\"Broken\""),
        "{}",
        reply.body
    );
    assert_eq!(names(&api), ["HighErrorRate"], "the old rules keep running");
    assert!(vigil.log().contains("reload failed"), "the error is logged");

    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: e2e\n    rules:\n      - record: job:up:sum\n        expr: sum(up)\n",
    )
    .expect("write new rules");
    let reply = api.post_form("/-/reload", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(names(&api), ["job:up:sum"]);
}

#[test]
fn check_rules_validates_like_promtool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules/healing-guard.yml");
    let out = std::process::Command::new(vigil_tests::vigil_binary())
        .args(["check", "rules"])
        .arg(&example)
        .output()
        .expect("run vigil check rules");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 5 rules found"));

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "groups:\n  - name: g\n    rules:\n      - alert: Bad\n        expr: up\n        annotations:\n          x: '{{ nosuch }}'\n")
        .expect("write");
    let out = std::process::Command::new(vigil_tests::vigil_binary())
        .args(["check", "rules"])
        .arg(&example)
        .arg(&bad)
        .output()
        .expect("run vigil check rules");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:9: group \"g\", rule 1, \"Bad\"", bad.display())), "{err}");
    assert!(err.contains("function \"nosuch\" not defined"), "{err}");
}
