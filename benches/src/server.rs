//! Starting and stopping the servers under test: Vigil, Prometheus 3 and
//! VictoriaMetrics, each on a free loopback port with its own data directory, each
//! stopped by its own process id.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often readiness and shutdown are polled.
const POLL: Duration = Duration::from_millis(20);

/// The servers the harness knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Vigil itself.
    Vigil,
    /// Prometheus 3 with its remote-write receiver.
    Prometheus,
    /// Single-node VictoriaMetrics.
    VictoriaMetrics,
}

impl ServerKind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Vigil => "Vigil",
            ServerKind::Prometheus => "Prometheus",
            ServerKind::VictoriaMetrics => "VictoriaMetrics",
        }
    }

    /// The path that answers 200 once the server serves.
    pub fn ready_path(self) -> &'static str {
        match self {
            ServerKind::Vigil | ServerKind::Prometheus => "/-/ready",
            ServerKind::VictoriaMetrics => "/health",
        }
    }

    /// The remote-write path.
    pub fn write_path(self) -> &'static str {
        "/api/v1/write"
    }

    /// The command-line arguments that start it on `addr` over `data_dir`; `config`
    /// is a file the server may need (Prometheus insists on a config file).
    pub fn args(self, addr: &str, data_dir: &Path, config: &Path) -> Vec<String> {
        let d = data_dir.display();
        match self {
            ServerKind::Vigil => vec![
                format!("--web.listen-address={addr}"),
                format!("--storage.path={d}"),
                // For the snapshot that persists the head for the disk figure.
                "--web.enable-admin-api".into(),
            ],
            ServerKind::Prometheus => vec![
                format!("--config.file={}", config.display()),
                format!("--web.listen-address={addr}"),
                format!("--storage.tsdb.path={d}"),
                "--web.enable-remote-write-receiver".into(),
                // For the snapshot that persists the head for the disk figure.
                "--web.enable-admin-api".into(),
                "--log.level=warn".into(),
            ],
            ServerKind::VictoriaMetrics => vec![
                format!("-httpListenAddr={addr}"),
                format!("-storageDataPath={d}"),
                // Data is generated ending now; a year of retention keeps all of it.
                "-retentionPeriod=1y".into(),
                // Repeated identical queries would otherwise be answered from VM's
                // rollup result cache, which measures the cache, not the query.
                "-search.disableCache".into(),
                "-loggerLevel=WARN".into(),
            ],
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running server, killed when dropped.
pub struct Running {
    /// Which server.
    pub kind: ServerKind,
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Its log file (stderr and stdout).
    pub log: PathBuf,
    /// The exact command line, for the report.
    pub command: String,
}

impl Running {
    /// Starts `bin` as `kind` over `data_dir`, logging to `log`; does not wait.
    pub fn spawn(
        kind: ServerKind,
        bin: &Path,
        data_dir: &Path,
        work: &Path,
        log: &Path,
    ) -> anyhow::Result<Running> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let config = work.join("prometheus.yml");
        if kind == ServerKind::Prometheus && !config.exists() {
            std::fs::write(&config, "global:\n  scrape_interval: 15s\n")?;
        }
        let args = kind.args(&addr, data_dir, &config);
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| anyhow::anyhow!("start {}: {e}", bin.display()))?;
        let command = std::iter::once(bin.display().to_string()).chain(args).collect::<Vec<_>>().join(" ");
        Ok(Running { kind, child, addr, log: log.to_path_buf(), command })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the ready path answers 200; returns how long that took since `since`.
    pub fn wait_ready(&mut self, since: Instant, timeout: Duration) -> anyhow::Result<Duration> {
        let agent = crate::http::agent();
        let url = format!("{}{}", self.base(), self.kind.ready_path());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                anyhow::bail!(
                    "{} exited with {status} before ready; log tail:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            if let Ok(r) = agent.get(&url).call()
                && r.status() == 200
            {
                return Ok(since.elapsed());
            }
            std::thread::sleep(POLL);
        }
        anyhow::bail!("{} not ready within {timeout:?}; log tail:\n{}", self.kind.name(), self.log_tail())
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM to the pid and waits for the exit; SIGKILL after `timeout`.
    /// Returns whether it exited on its own in time.
    pub fn stop(mut self, timeout: Duration) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

/// Log lines quoted when a server fails.
const LOG_TAIL_LINES: usize = 15;

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where `.ci/peers.sh` installs the peers: `$VIGIL_PEERS_DIR/usr/bin`, or
/// `~/.cache/vigil-peers/usr/bin`.
pub fn peers_bin_dir() -> PathBuf {
    let prefix = std::env::var_os("VIGIL_PEERS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vigil-peers")
    });
    prefix.join("usr/bin")
}

/// The installed binary of a peer, if present.
pub fn peer_binary(kind: ServerKind, dir: &Path) -> Option<PathBuf> {
    let name = match kind {
        ServerKind::Vigil => return None,
        ServerKind::Prometheus => "prometheus",
        ServerKind::VictoriaMetrics => "victoria-metrics",
    };
    let p = dir.join(name);
    p.is_file().then_some(p)
}

/// The server's version as it reports it (`--version` or its build-info API).
pub fn version(kind: ServerKind, bin: &Path, base: &str) -> String {
    let agent = crate::http::agent();
    if kind == ServerKind::VictoriaMetrics {
        // VM's metrics carry its version, but Debian's build leaves it empty and prints
        // nothing for --version; the package's changelog names the version then.
        if let Ok(r) = crate::http::get(&agent, &format!("{base}/metrics"), &[]) {
            let found = r.body.lines().find_map(|l| {
                let rest = l.strip_prefix("vm_app_version{")?;
                let v = rest.split("version=\"").nth(1)?;
                v.split('"').next().filter(|v| !v.is_empty()).map(str::to_string)
            });
            if let Some(v) = found {
                return v;
            }
        }
        if let Some(v) = debian_changelog_version(bin, "victoria-metrics") {
            return v;
        }
    }
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The version in the first line of a Debian package's changelog installed beside
/// `bin` (`<prefix>/usr/share/doc/<package>/changelog.Debian.gz`), e.g. `1.145.0+ds1-2`.
fn debian_changelog_version(bin: &Path, package: &str) -> Option<String> {
    let usr = bin.parent()?.parent()?;
    let changelog = usr.join("share/doc").join(package).join("changelog.Debian.gz");
    let out = Command::new("zcat").arg(&changelog).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?;
    let v = first.split_once('(')?.1.split_once(')')?.0;
    Some(format!("victoria-metrics {v} (Debian package)"))
}
