//! Helpers for Vigil's end-to-end tests, which live in `tests/`.
//!
//! [`Vigil`] builds and starts the real `vigil` binary on a free loopback port and stops
//! it (by its process id) when dropped; [`peer_binary`] finds the real Prometheus and
//! friends installed by `.ci/peers.sh`; [`encode_write`] builds remote-write bodies;
//! [`Api`] is a small client for Prometheus's HTTP API that Vigil and Prometheus share.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// How long a freshly started server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The `vigil` binary: `$VIGIL_BIN`, or built once per test process with cargo.
pub fn vigil_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("VIGIL_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "vigil-server",
                "--bin",
                "vigil",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build for the vigil binary");
        assert!(out.status.success(), "cargo build of vigil failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter_map(|j| j.get("executable").and_then(Json::as_str).map(PathBuf::from))
            .find(|p| p.file_name().is_some_and(|n| n == "vigil"))
            .expect("cargo reported the vigil executable")
    })
}

/// A running `vigil` process, killed when dropped.
pub struct Vigil {
    child: Child,
    /// Where it listens, e.g. `127.0.0.1:41234`.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl Vigil {
    /// Starts vigil on a free port with `data_dir` and waits until `/-/ready` says 200.
    pub fn start(data_dir: &Path) -> Vigil {
        Self::start_with_args(data_dir, &[])
    }

    /// Like [`Vigil::start`] with extra command-line arguments.
    pub fn start_with_args(data_dir: &Path, extra: &[&str]) -> Vigil {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// Like [`Vigil::start_with_args`] with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Vigil {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(data_dir.with_extension("log")).expect("create the log file");
        let child = Command::new(vigil_binary())
            .arg("--web.listen-address")
            .arg(&addr)
            .arg("--storage.path")
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vigil");
        let v = Vigil { child, addr, data_dir: data_dir.to_path_buf() };
        v.wait_ready();
        v
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An API client for this server.
    pub fn api(&self) -> Api {
        Api::new(&self.url())
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let agent = agent();
        while Instant::now() < deadline {
            if let Ok(r) = agent.get(format!("{}/-/ready", self.url())).call()
                && r.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("vigil at {} did not become ready; log: {}", self.addr, self.log());
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL vigil");
        self.child.wait().expect("reap vigil");
    }

    /// Sends SIGTERM and waits for a graceful exit; returns whether it exited with 0.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP agent that hands back 4xx/5xx responses instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One series to put in a remote-write request: labels and (ms, value) samples.
pub type TestSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// A snappy-compressed remote-write 1.0 body holding `series`.
pub fn encode_write(series: &[TestSeries<'_>]) -> Vec<u8> {
    use vigil_ingest::remote_write::proto;
    let req = proto::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| proto::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| proto::Label {
                        name: n.as_bytes().to_vec().into(),
                        value: v.as_bytes().to_vec().into(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| proto::Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    vigil_ingest::remote_write::encode_v1(&req).expect("snappy compress")
}

/// An HTTP response reduced to what tests look at.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A client for Prometheus's HTTP API, for Vigil and Prometheus alike.
pub struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Api {
        Api { base: base.trim_end_matches('/').to_string(), agent: agent() }
    }

    /// POSTs a remote-write body with the headers Prometheus sends.
    pub fn remote_write(&self, body: Vec<u8>) -> Reply {
        let r = self
            .agent
            .post(format!("{}/api/v1/write", self.base))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(&body[..]);
        reply(r)
    }

    /// GETs `path` with query parameters.
    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(format!("{}{}", self.base, path));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        reply(req.call())
    }

    /// POSTs `params` form-encoded to `path`.
    pub fn post_form(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        let r = self.agent.post(format!("{}{}", self.base, path)).send_form(params.iter().copied());
        reply(r)
    }

    /// `data` of a successful instant query at `time` (Unix seconds); panics on error.
    pub fn query(&self, query: &str, time: f64) -> Json {
        let t = time.to_string();
        success_data(self.get("/api/v1/query", &[("query", query), ("time", &t)]), query)
    }

    /// `data` of a successful range query; panics on error.
    pub fn query_range(&self, query: &str, start: f64, end: f64, step: f64) -> Json {
        let (s, e, st) = (start.to_string(), end.to_string(), step.to_string());
        let params = [("query", query), ("start", s.as_str()), ("end", e.as_str()), ("step", st.as_str())];
        success_data(self.get("/api/v1/query_range", &params), query)
    }
}

fn success_data(r: Reply, what: &str) -> Json {
    let j = r.json();
    assert_eq!(j["status"], "success", "{what}: HTTP {} {}", r.status, r.body);
    j["data"].clone()
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut resp = r.expect("HTTP request");
    let status = resp.status().as_u16();
    let mut body = String::new();
    let _ = resp.body_mut().as_reader().read_to_string(&mut body);
    Reply { status, body }
}

/// Where `.ci/peers.sh` puts the peers: `$VIGIL_PEERS_DIR/usr/bin` or
/// `~/.cache/vigil-peers/usr/bin`.
fn peers_bin_dir() -> PathBuf {
    let prefix = std::env::var_os("VIGIL_PEERS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vigil-peers")
    });
    prefix.join("usr/bin")
}

/// The path of a peer binary (`prometheus`, `promtool`, ...). When it is missing the
/// test is skipped with a message, or fails when `CI` is set.
pub fn peer_binary(name: &str) -> Option<PathBuf> {
    let p = peers_bin_dir().join(name);
    if p.is_file() {
        return Some(p);
    }
    let msg = format!("peer `{name}` not found at {}; install it with `.ci/peers.sh`", p.display());
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, so a missing peer is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// A child process killed (by pid) when dropped, for peers such as Prometheus.
pub struct Peer {
    child: Child,
    /// Where it listens.
    pub addr: String,
}

impl Peer {
    /// Spawns `bin` with `args`; `addr` is where it will listen; waits for `ready_path`.
    pub fn start(bin: &Path, args: &[String], addr: String, ready_path: &str, log: &Path) -> Peer {
        let log_file = std::fs::File::create(log).expect("create peer log");
        let child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let peer = Peer { child, addr };
        let deadline = Instant::now() + READY_TIMEOUT;
        let agent = agent();
        loop {
            if let Ok(r) = agent.get(format!("http://{}{}", peer.addr, ready_path)).call()
                && r.status() == 200
            {
                return peer;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become ready: {}",
                bin.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Compares two query `data` objects (from Vigil and from Prometheus): same result type,
/// same series, same timestamps, values equal within a relative `1e-9`. Returns the
/// differences, empty when they agree.
pub fn diff_query_data(ours: &Json, theirs: &Json) -> Vec<String> {
    let mut diffs = Vec::new();
    if ours["resultType"] != theirs["resultType"] {
        diffs.push(format!("resultType {} vs {}", ours["resultType"], theirs["resultType"]));
        return diffs;
    }
    match theirs["resultType"].as_str() {
        Some("scalar") | Some("string") => compare_points(&ours["result"], &theirs["result"], "", &mut diffs),
        Some("vector") | Some("matrix") => {
            let index = |d: &Json| -> std::collections::BTreeMap<String, Json> {
                d["result"]
                    .as_array()
                    .map(|a| a.iter().map(|s| (s["metric"].to_string(), s.clone())).collect())
                    .unwrap_or_default()
            };
            let (a, b) = (index(ours), index(theirs));
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                diffs.push(format!("only in vigil: {k}"));
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                diffs.push(format!("only in prometheus: {k}"));
            }
            for (k, sa) in a.iter() {
                let Some(sb) = b.get(k) else { continue };
                if let (Some(pa), Some(pb)) = (sa["values"].as_array(), sb["values"].as_array()) {
                    if pa.len() != pb.len() {
                        diffs.push(format!("{k}: {} points vs {}", pa.len(), pb.len()));
                    }
                    for (x, y) in pa.iter().zip(pb) {
                        compare_points(x, y, k, &mut diffs);
                    }
                } else {
                    compare_points(&sa["value"], &sb["value"], k, &mut diffs);
                }
            }
        }
        other => diffs.push(format!("unexpected resultType {other:?}")),
    }
    diffs
}

fn compare_points(a: &Json, b: &Json, what: &str, diffs: &mut Vec<String>) {
    let ta = a[0].as_f64();
    let tb = b[0].as_f64();
    if ta != tb {
        diffs.push(format!("{what}: timestamp {a} vs {b}"));
        return;
    }
    let (va, vb) = (a[1].as_str().unwrap_or(""), b[1].as_str().unwrap_or(""));
    let (fa, fb) = (va.parse::<f64>(), vb.parse::<f64>());
    let same = match (fa, fb) {
        (Ok(x), Ok(y)) if x.is_nan() && y.is_nan() => true,
        (Ok(x), Ok(y)) if x == y => true,
        (Ok(x), Ok(y)) => ((x - y) / x.abs().max(y.abs())).abs() <= 1e-9,
        _ => va == vb,
    };
    if !same {
        diffs.push(format!("{what}: value {a} vs {b}"));
    }
}

/// Starts a real Prometheus on a free loopback port with its data under `dir`: the
/// config is `config(address)` (so it can scrape itself), extra flags follow; waits
/// for `/-/ready`. Its log is `dir/prometheus.log`.
pub fn start_prometheus(bin: &Path, dir: &Path, config: impl FnOnce(&str) -> String, extra: &[&str]) -> Peer {
    let addr = format!("127.0.0.1:{}", free_port());
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config(&addr)).expect("write prometheus.yml");
    let mut args = vec![
        format!("--config.file={}", config_path.display()),
        format!("--storage.tsdb.path={}", dir.join("prom").display()),
        format!("--web.listen-address={addr}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    Peer::start(bin, &args, addr, "/-/ready", &dir.join("prometheus.log"))
}

/// A Prometheus config that scrapes itself at `prom_addr` every second and remote-writes
/// to Vigil at `vigil_url` with a 1s batch deadline; `extra` adds lines to the
/// remote-write entry (e.g. `protobuf_message: ...`).
pub fn self_scrape_config(prom_addr: &str, vigil_url: &str, extra: &str) -> String {
    let extra = if extra.is_empty() { String::new() } else { format!("    {extra}\n") };
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['{prom_addr}']\n\
         remote_write:\n  - url: {vigil_url}/api/v1/write\n{extra}    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n"
    )
}

/// The points of a matrix result (`data` of a range-selector query) per series, keyed
/// by the value of `label`, as (seconds, value).
pub fn points_by_label(data: &Json, label: &str) -> std::collections::BTreeMap<String, Vec<(f64, f64)>> {
    let mut out = std::collections::BTreeMap::new();
    for s in data["result"].as_array().expect("matrix result") {
        let points = s["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p| (p[0].as_f64().expect("ts"), p[1].as_str().expect("v").parse::<f64>().expect("float")))
            .collect();
        out.insert(s["metric"][label].as_str().expect("the label").to_string(), points);
    }
    out
}
