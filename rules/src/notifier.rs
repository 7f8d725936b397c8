//! Sends alerts to Alertmanager: `POST /api/v2/alerts` in batches from a bounded
//! queue, on a dedicated thread with a blocking HTTP client.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use crate::alerting::Alert;
use crate::metrics::RuleMetrics;
use crate::timefmt::rfc3339;

/// Alerts the queue holds before dropping the oldest (Prometheus's
/// `--alertmanager.notification-queue-capacity` default).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Most alerts per request (Prometheus's `DefaultMaxBatchSize`).
pub const MAX_BATCH_SIZE: usize = 256;
/// Default per-request timeout (Prometheus's `timeout` default for alertmanagers).
const DEFAULT_TIMEOUT: &str = "10s";
/// Attempts per batch and Alertmanager: one retry covers a connection dropped by a
/// restarting Alertmanager; longer outages are covered by the one-minute resend.
const SEND_ATTEMPTS: usize = 2;
/// Pause before the retry.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Prometheus's `alerting` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Where to send alerts.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One `alertmanagers` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// `host:port` targets.
    pub static_configs: Vec<StaticConfig>,
    /// `http` (`https` needs a TLS-enabled build and is refused here).
    pub scheme: String,
    /// Path prefix before `/api/v2/alerts`.
    pub path_prefix: String,
    /// Per-request timeout, a Prometheus duration.
    pub timeout: String,
    /// Only `v2` exists in Alertmanager since 0.27.
    pub api_version: String,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            static_configs: Vec::new(),
            scheme: "http".into(),
            path_prefix: "/".into(),
            timeout: DEFAULT_TIMEOUT.into(),
            api_version: "v2".into(),
            basic_auth: None,
        }
    }
}

/// A `static_configs` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` of each Alertmanager.
    pub targets: Vec<String>,
    /// Target labels (accepted for compatibility; unused without relabelling).
    pub labels: BTreeMap<String, String>,
}

/// `basic_auth` with a password inline or in a file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<String>,
}

/// One resolved Alertmanager endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full URL of `/api/v2/alerts`.
    pub url: String,
    /// Request timeout.
    pub timeout: Duration,
    /// `Authorization` header value.
    pub auth: Option<String>,
}

impl AlertingConfig {
    /// Checks the section and resolves every target.
    pub fn targets(&self) -> Result<Vec<Target>, String> {
        let mut out = Vec::new();
        for am in &self.alertmanagers {
            if am.api_version != "v2" {
                return Err(format!(
                    "alerting.alertmanagers: api_version {:?} is not supported (only v2)",
                    am.api_version
                ));
            }
            if am.scheme != "http" {
                return Err(format!(
                    "alerting.alertmanagers: scheme {:?} is not supported by this build (only http)",
                    am.scheme
                ));
            }
            let timeout = crate::duration::parse_ms(&am.timeout)
                .map_err(|e| format!("alerting.alertmanagers: timeout: {e}"))?;
            let auth = match &am.basic_auth {
                None => None,
                Some(b) => {
                    let password = match (&b.password, &b.password_file) {
                        (Some(p), None) => p.clone(),
                        (None, Some(f)) => std::fs::read_to_string(f)
                            .map_err(|e| {
                                format!("alerting.alertmanagers: basic_auth.password_file {f}: {e}")
                            })?
                            .trim()
                            .to_string(),
                        (None, None) => String::new(),
                        (Some(_), Some(_)) => {
                            return Err("alerting.alertmanagers: basic_auth: at most one of password and password_file".into());
                        }
                    };
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{password}", b.username));
                    Some(format!("Basic {token}"))
                }
            };
            let prefix = am.path_prefix.trim_end_matches('/');
            for sc in &am.static_configs {
                for t in &sc.targets {
                    out.push(Target {
                        url: format!("{}://{t}{prefix}/api/v2/alerts", am.scheme),
                        timeout: Duration::from_millis(timeout.max(1) as u64),
                        auth: auth.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Alertmanager's `postableAlert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostableAlert {
    /// Labels (external labels added).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 start.
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// RFC 3339 end.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    /// Link back to the expression.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

impl PostableAlert {
    /// Prometheus's mapping (`SendAlerts`): starts when it fired, ends when resolved
    /// or, while firing, at `ValidUntil` so Alertmanager resolves it if we go silent.
    pub fn from_alert(a: &Alert, expr: &str, external_url: &str) -> PostableAlert {
        let ends = a.resolved_at.unwrap_or(a.valid_until);
        PostableAlert {
            labels: a.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect(),
            annotations: a.annotations.clone(),
            starts_at: rfc3339(a.fired_at.unwrap_or(a.active_at)),
            ends_at: rfc3339(ends),
            generator_url: generator_url(external_url, expr),
        }
    }
}

/// Where an alert links: Vigil's query API for the rule's expression.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    format!("{}/api/v1/query?query={q}", external_url.trim_end_matches('/'))
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    targets: Mutex<Vec<Target>>,
    external_labels: BTreeMap<String, String>,
    capacity: usize,
    metrics: Arc<RuleMetrics>,
}

struct Queue {
    alerts: VecDeque<PostableAlert>,
    stopping: bool,
}

/// The notifier: a queue and the thread that drains it.
pub struct Notifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    /// Starts the sending thread.
    pub fn start(
        targets: Vec<Target>,
        external_labels: BTreeMap<String, String>,
        capacity: usize,
        metrics: Arc<RuleMetrics>,
    ) -> Notifier {
        metrics.notifier_configured(capacity, targets.len());
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { alerts: VecDeque::new(), stopping: false }),
            wake: Condvar::new(),
            targets: Mutex::new(targets),
            external_labels,
            capacity,
            metrics,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("vigil-notifier".into()).spawn(move || run(&s)).ok();
        if thread.is_none() {
            tracing::error!("could not start the notifier thread; alerts will not be sent");
        }
        Notifier { shared, thread: Mutex::new(thread) }
    }

    /// Replaces the Alertmanagers (on reload).
    pub fn set_targets(&self, targets: Vec<Target>) {
        self.shared.metrics.notifier_configured(self.shared.capacity, targets.len());
        *self.shared.targets.lock() = targets;
    }

    /// Queues alerts, adding external labels they do not already have; when the queue
    /// is full the oldest alerts are dropped (and counted).
    pub fn send(&self, mut alerts: Vec<PostableAlert>) {
        if alerts.is_empty() {
            return;
        }
        for a in &mut alerts {
            for (k, v) in &self.shared.external_labels {
                a.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut q = self.shared.queue.lock();
        q.alerts.extend(alerts);
        let over = q.alerts.len().saturating_sub(self.shared.capacity);
        if over > 0 {
            q.alerts.drain(..over);
            self.shared.metrics.dropped(over);
            tracing::warn!(dropped = over, "alert notification queue full, dropped the oldest alerts");
        }
        self.shared.metrics.queue_length(q.alerts.len());
        drop(q);
        self.shared.wake.notify_one();
    }

    /// Alerts waiting to be sent.
    pub fn queue_len(&self) -> usize {
        self.shared.queue.lock().alerts.len()
    }

    /// Sends what is queued, then stops the thread.
    pub fn stop(&self) {
        self.shared.queue.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared) {
    let agent_for = |t: &Target| -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(t.timeout))
            .http_status_as_error(false)
            .build()
            .into()
    };
    loop {
        let batch: Vec<PostableAlert> = {
            let mut q = shared.queue.lock();
            while q.alerts.is_empty() && !q.stopping {
                shared.wake.wait(&mut q);
            }
            if q.alerts.is_empty() {
                return;
            }
            let n = q.alerts.len().min(MAX_BATCH_SIZE);
            let batch = q.alerts.drain(..n).collect();
            shared.metrics.queue_length(q.alerts.len());
            batch
        };
        let body = match serde_json::to_vec(&batch) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "encoding alerts failed");
                continue;
            }
        };
        let targets = shared.targets.lock().clone();
        if targets.is_empty() {
            continue;
        }
        let mut delivered = false;
        for t in &targets {
            match post(&agent_for(t), t, &body) {
                Ok(()) => {
                    shared.metrics.sent(&t.url, batch.len());
                    delivered = true;
                }
                Err(e) => {
                    shared.metrics.errored(&t.url, batch.len());
                    tracing::error!(alertmanager = %t.url, count = batch.len(), error = %e, "sending alerts failed");
                }
            }
        }
        if !delivered {
            shared.metrics.dropped(batch.len());
        }
    }
}

fn post(agent: &ureq::Agent, t: &Target, body: &[u8]) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..SEND_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(RETRY_DELAY);
        }
        let mut req = agent.post(&t.url).header("Content-Type", "application/json");
        if let Some(a) = &t.auth {
            req = req.header("Authorization", a);
        }
        match req.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                last = format!("bad response status {status}: {}", text.trim());
                // A 4xx means the batch itself is refused: retrying cannot help.
                if status < 500 {
                    return Err(last);
                }
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    fn alert(name: &str) -> PostableAlert {
        PostableAlert {
            labels: [("alertname".to_string(), name.to_string())].into(),
            annotations: BTreeMap::new(),
            starts_at: rfc3339(0),
            ends_at: rfc3339(1000),
            generator_url: generator_url("http://v:9090/", "up == 0"),
        }
    }

    #[test]
    fn config_resolves_targets() {
        let cfg: AlertingConfig = serde_saphyr::from_str(
            "alertmanagers:\n  - static_configs:\n      - targets: ['am:9093']\n    path_prefix: /am/\n    basic_auth:\n      username: u\n      password: p\n",
        )
        .expect("config");
        let t = cfg.targets().expect("targets");
        assert_eq!(t[0].url, "http://am:9093/am/api/v2/alerts");
        assert_eq!(t[0].auth.as_deref(), Some("Basic dTpw"));
        let https: AlertingConfig =
            serde_saphyr::from_str("alertmanagers:\n  - scheme: https\n").expect("config");
        assert!(https.targets().expect_err("https").contains("not supported"));
    }

    #[test]
    fn generator_url_points_at_the_query_api() {
        assert_eq!(
            generator_url("http://v:9090/", "up == 0"),
            "http://v:9090/api/v1/query?query=up+%3D%3D+0"
        );
    }

    #[test]
    fn full_queue_drops_oldest() {
        let metrics = Arc::new(RuleMetrics::default());
        let n = Notifier::start(vec![], BTreeMap::new(), 2, metrics);
        // No targets: the thread drains batches without sending; stop it first so the
        // queue only fills.
        n.stop();
        n.send(vec![alert("a"), alert("b"), alert("c")]);
        assert_eq!(n.queue_len(), 2);
        assert_eq!(n.shared.queue.lock().alerts[0].labels["alertname"], "b");
    }

    #[test]
    fn posts_batches_with_external_labels() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(conn);
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("line");
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().expect("length");
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).expect("body");
            reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").expect("reply");
            (head, String::from_utf8(body).expect("utf8"))
        });
        let metrics = Arc::new(RuleMetrics::default());
        let target = Target {
            url: format!("http://{addr}/api/v2/alerts"),
            timeout: Duration::from_secs(5),
            auth: None,
        };
        let n = Notifier::start(vec![target], [("region".to_string(), "eu".to_string())].into(), 10, metrics);
        n.send(vec![alert("a")]);
        let (head, body) = server.join().expect("server");
        n.stop();
        assert!(head.starts_with("POST /api/v2/alerts HTTP/1.1"), "{head}");
        let got: Vec<PostableAlert> = serde_json::from_str(&body).expect("json");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels["region"], "eu");
        assert_eq!(got[0].ends_at, "1970-01-01T00:00:01Z");
    }
}
