//! One comparison run: the same encoded workload and query set against each server in
//! turn, each started fresh with its own data directory and stopped by its pid.
//!
//! Per server: start (time to ready), write phase (CPU, memory, latency), wait until
//! the data answers a check query, query phase, persist (each server's own way, see
//! [`persist`]), `kill -9` and restart (time to ready and to the first check query that
//! sees all the data: crash recovery, WAL replay for the servers that have one), graceful
//! stop, data dir size, restart (the same two times), stop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::procfs;
use crate::queries::{QueryOutcome, QuerySpec, TimeRange};
use crate::server::{Running, ServerKind};
use crate::workload::EncodedWorkload;

/// Time budgets of the phases; every wait in a run is bounded by one of them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Start (or restart) to ready.
    pub ready: Duration,
    /// The whole write phase.
    pub write: Duration,
    /// Written data becoming visible to the check query.
    pub visible: Duration,
    /// The whole query phase.
    pub queries: Duration,
    /// Graceful stop before SIGKILL.
    pub stop: Duration,
    /// Restart to the first check query that sees all the data.
    pub restart_query: Duration,
}

/// How often the check query is retried while waiting for data.
const CHECK_POLL: Duration = Duration::from_millis(50);

/// What one server measured.
#[derive(Debug, Clone, Default)]
pub struct ServerRun {
    /// Display name.
    pub name: String,
    /// Version as the server reports it.
    pub version: String,
    /// The exact command line it ran with.
    pub command: String,
    /// Fresh start to ready (empty data dir).
    pub first_ready: Option<Duration>,
    /// The write phase.
    pub write: crate::write::WriteOutcome,
    /// Time after the write phase until the check query saw all the data.
    pub visible_after: Option<Duration>,
    /// The query phase.
    pub queries: Vec<QueryOutcome>,
    /// Peak resident bytes at the end of the query phase.
    pub peak_rss_after_queries: Option<u64>,
    /// Bytes of the persisted data (each server's own way, see `persist_note`).
    pub disk_persisted: Option<u64>,
    /// How the persisted figure was taken.
    pub persist_note: String,
    /// Bytes of the data dir after a graceful stop.
    pub disk_after_stop: Option<u64>,
    /// Whether the server stopped on SIGTERM in time.
    pub clean_stop: bool,
    /// Restart to ready over the loaded data after a graceful stop.
    pub restart_ready: Option<Duration>,
    /// Restart to the first check query that sees all the data after a graceful stop.
    pub restart_first_query: Option<Duration>,
    /// Restart to ready after `kill -9`.
    pub crash_ready: Option<Duration>,
    /// Restart to the first check query that sees all the data after `kill -9`.
    pub crash_first_query: Option<Duration>,
    /// Vigil's own account of opening its store after `kill -9`, from its log.
    pub crash_open: Option<OpenLog>,
    /// Vigil only: restart to ready after `kill -9` with no head snapshot (whole WAL
    /// replayed).
    pub wal_replay_ready: Option<Duration>,
    /// Vigil only: the same to the first check query that sees all the data.
    pub wal_replay_first_query: Option<Duration>,
    /// Vigil only: its own account of that open.
    pub wal_replay_open: Option<OpenLog>,
    /// Problems that left figures empty.
    pub problems: Vec<String>,
}

/// Everything a comparison needs.
pub struct Comparison<'a> {
    /// The encoded workload (shared by all servers).
    pub workload: &'a EncodedWorkload,
    /// The query set.
    pub queries: &'a [QuerySpec],
    /// Timed runs per query.
    pub repeat: usize,
    /// Phase budgets.
    pub limits: Limits,
    /// Where data dirs and logs go (one sub-directory per server).
    pub work_dir: &'a Path,
}

impl Comparison<'_> {
    /// The data's range in whole seconds, as queries use it.
    pub fn time_range(&self) -> TimeRange {
        TimeRange { start_s: self.workload.first_ms / 1000, end_s: self.workload.last_ms / 1000 }
    }

    /// Runs the whole sequence against one server binary.
    pub fn run_server(&self, kind: ServerKind, bin: &Path) -> ServerRun {
        let mut run = ServerRun { name: kind.name().into(), ..Default::default() };
        if let Err(e) = self.run_server_into(kind, bin, &mut run) {
            run.problems.push(format!("{e:#}"));
        }
        run
    }

    fn run_server_into(&self, kind: ServerKind, bin: &Path, run: &mut ServerRun) -> anyhow::Result<()> {
        let dir = self.work_dir.join(kind.name().to_lowercase());
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let log = dir.join("server.log");
        let t0 = Instant::now();
        let mut server = Running::spawn(kind, bin, &data, &dir, &log)?;
        run.command = server.command.clone();
        run.first_ready = Some(server.wait_ready(t0, self.limits.ready)?);
        run.version = crate::server::version(kind, bin, &server.base());
        let pid = server.pid();

        let write_url = format!("{}{}", server.base(), kind.write_path());
        run.write = crate::write::run(&write_url, self.workload, Some(pid), self.limits.write);
        let written = Instant::now();
        match self.wait_for_data(&server.base(), self.limits.visible) {
            Ok(()) => run.visible_after = Some(written.elapsed()),
            Err(e) => run.problems.push(format!("data not visible after the write phase: {e:#}")),
        }

        run.queries = crate::queries::run_all(
            &server.base(),
            self.queries,
            self.time_range(),
            self.repeat,
            self.limits.queries,
        );
        run.peak_rss_after_queries = procfs::peak_rss_bytes(pid).ok();

        let (persisted, note) = persist(kind, &server.base(), &data, self.workload.samples as u64);
        run.persist_note = note;
        match persisted {
            Ok(bytes) => run.disk_persisted = bytes,
            Err(e) => run.problems.push(format!("persisting: {e:#}")),
        }
        server.kill9();
        let t2 = Instant::now();
        let mut crashed = Running::spawn(kind, bin, &data, &dir, &log)?;
        run.crash_ready = Some(crashed.wait_ready(t2, self.limits.ready)?);
        match self.wait_for_data(&crashed.base(), self.limits.restart_query) {
            Ok(()) => run.crash_first_query = Some(t2.elapsed()),
            Err(e) => run.problems.push(format!("after kill -9: {e:#}")),
        }
        let crashed = if kind == ServerKind::Vigil {
            run.crash_open = std::fs::read_to_string(&log).ok().and_then(|l| OpenLog::last_in(&l));
            // Vigil's crash restart loads its newest head snapshot: also time a crash
            // before any snapshot, which replays the whole WAL.
            crashed.kill9();
            let _ = std::fs::remove_file(data.join(VIGIL_HEAD_SNAPSHOT));
            let t3 = Instant::now();
            let mut replayed = Running::spawn(kind, bin, &data, &dir, &log)?;
            run.wal_replay_ready = Some(replayed.wait_ready(t3, self.limits.ready)?);
            match self.wait_for_data(&replayed.base(), self.limits.restart_query) {
                Ok(()) => run.wal_replay_first_query = Some(t3.elapsed()),
                Err(e) => run.problems.push(format!("after kill -9 without a head snapshot: {e:#}")),
            }
            run.wal_replay_open = std::fs::read_to_string(&log).ok().and_then(|l| OpenLog::last_in(&l));
            replayed
        } else {
            if kind == ServerKind::Prometheus {
                // Prometheus always replays its whole WAL (over its mmapped head chunks).
                run.wal_replay_ready = run.crash_ready;
                run.wal_replay_first_query = run.crash_first_query;
            }
            crashed
        };

        run.clean_stop = crashed.stop(self.limits.stop);
        run.disk_after_stop = Some(procfs::dir_usage_bytes(&data));

        let t1 = Instant::now();
        let mut again = Running::spawn(kind, bin, &data, &dir, &log)?;
        run.restart_ready = Some(again.wait_ready(t1, self.limits.ready)?);
        match self.wait_for_data(&again.base(), self.limits.restart_query) {
            Ok(()) => run.restart_first_query = Some(t1.elapsed()),
            Err(e) => run.problems.push(format!("after restart: {e:#}")),
        }
        if !again.stop(self.limits.stop) {
            run.clean_stop = false;
        }
        Ok(())
    }

    /// Retries the check query until it sees every host, or `limit` passes.
    fn wait_for_data(&self, base: &str, limit: Duration) -> anyhow::Result<()> {
        let agent = crate::http::agent();
        let deadline = Instant::now() + limit;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            match check_query(&agent, base, self.time_range().end_s) {
                Ok(n) if n == self.workload.hosts as f64 => return Ok(()),
                Ok(n) => last = format!("check query counted {n} hosts of {}", self.workload.hosts),
                Err(CheckError::Refused(e)) => anyhow::bail!("{}", e.chars().take(300).collect::<String>()),
                Err(CheckError::Transient(e)) => last = e,
            }
            std::thread::sleep(CHECK_POLL);
        }
        anyhow::bail!("within {limit:?}: {}", last.chars().take(300).collect::<String>())
    }
}

/// Vigil's head snapshot file in its data directory.
const VIGIL_HEAD_SNAPSHOT: &str = "head_snapshot";

/// What Vigil's "storage opened" log line says about one open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenLog {
    /// Time spent opening the store (blocks, snapshot, WAL replay).
    pub duration_ms: u64,
    /// Samples loaded into the head.
    pub samples: u64,
    /// Whether a head snapshot was loaded (else the whole WAL was replayed).
    pub from_snapshot: bool,
    /// Samples replayed from the WAL (the rest came from the snapshot).
    pub wal_samples: u64,
    /// Time spent replaying the WAL.
    pub wal_replay_ms: u64,
}

impl OpenLog {
    /// The last "storage opened" line's figures in `log`.
    pub fn last_in(log: &str) -> Option<OpenLog> {
        let line = log.lines().rev().find(|l| l.contains("storage opened"))?;
        let field = |name: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')).map(str::to_string)
        };
        Some(OpenLog {
            duration_ms: field("duration_ms")?.parse().ok()?,
            samples: field("samples")?.parse().ok()?,
            from_snapshot: field("from_snapshot")? == "true",
            wal_samples: field("wal_samples")?.parse().ok()?,
            wal_replay_ms: field("wal_replay_ms")?.parse().ok()?,
        })
    }

    /// Samples replayed from the WAL per second of WAL replay.
    pub fn wal_samples_per_s(&self) -> f64 {
        self.wal_samples as f64 / (self.wal_replay_ms.max(1) as f64 / 1000.0)
    }
}

/// The check query: how many hosts report a load gauge at the end of the data.
const CHECK_QUERY: &str = "count(node_load1)";

/// Why the check query gave no count.
enum CheckError {
    /// Worth retrying: the server is busy or the connection failed.
    Transient(String),
    /// The server refused the query (4xx): retrying cannot help.
    Refused(String),
}

fn check_query(agent: &ureq::Agent, base: &str, at_s: i64) -> Result<f64, CheckError> {
    let t = at_s.to_string();
    let r = crate::http::get(agent, &format!("{base}/api/v1/query"), &[("query", CHECK_QUERY), ("time", &t)])
        .map_err(|e| CheckError::Transient(format!("{e:#}")))?;
    let failed = format!("HTTP {}: {}", r.status, r.body.trim());
    if (400..500).contains(&r.status) {
        return Err(CheckError::Refused(failed));
    }
    let j: Json = serde_json::from_str(&r.body).map_err(|_| CheckError::Transient(failed.clone()))?;
    if j["status"] != "success" {
        return Err(CheckError::Transient(failed));
    }
    let v = &j["data"]["result"][0]["value"][1];
    Ok(v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0))
}

/// Makes the server persist what it holds and returns the persisted bytes (when the
/// server has a separate persisted form) with a note on how.
fn persist(kind: ServerKind, base: &str, data: &Path, samples: u64) -> (anyhow::Result<Option<u64>>, String) {
    let agent = crate::http::agent();
    match kind {
        ServerKind::Prometheus | ServerKind::Vigil => {
            // Both write their head out as one compressed block in a snapshot: the form
            // their data takes on disk once it leaves the head.
            let note = "size of a TSDB snapshot (`POST /api/v1/admin/tsdb/snapshot`, head included): the \
                        head written out as a compacted block, the long-term on-disk form; the data dir \
                        after the stop holds the WAL (and Prometheus's head chunks): the span is too short \
                        for a block to be cut"
                .to_string();
            let r = (|| -> anyhow::Result<Option<u64>> {
                let r = crate::http::post_empty(&agent, &format!("{base}/api/v1/admin/tsdb/snapshot"))?;
                let j: Json = serde_json::from_str(&r.body)?;
                let name =
                    j["data"]["name"].as_str().ok_or_else(|| anyhow::anyhow!("snapshot: {}", r.body))?;
                let snap: PathBuf = data.join("snapshots").join(name);
                let bytes = procfs::dir_usage_bytes(&snap);
                // Not part of the data dir figure taken after the stop.
                std::fs::remove_dir_all(data.join("snapshots"))?;
                Ok(Some(bytes))
            })();
            (r, note)
        }
        ServerKind::VictoriaMetrics => {
            let note = "data dir size after `GET /internal/force_flush` (in-memory parts written \
                        out as parts on disk), once every sample is in a part on disk (`vm_rows`) and \
                        the size has stopped changing: force_flush returns before the parts land"
                .to_string();
            let r = crate::http::get(&agent, &format!("{base}/internal/force_flush"), &[])
                .and_then(|r| {
                    anyhow::ensure!(r.status == 200, "force_flush: HTTP {}: {}", r.status, r.body);
                    Ok(())
                })
                .and_then(|()| settled_vm_size(&agent, base, data, samples).map(Some));
            (r, note)
        }
    }
}

/// Longest wait for VictoriaMetrics' parts to land on disk after a flush.
const VM_SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// Pause between looks at VictoriaMetrics' data dir while it settles.
const VM_SETTLE_POLL: Duration = Duration::from_secs(1);
/// Equal sizes in a row that count as settled (merges may still be running between).
const VM_SETTLE_STABLE: usize = 3;

/// VictoriaMetrics' data dir size once all `samples` are in parts on disk (its
/// `vm_rows` for small and big parts) and the size held still for a few looks.
fn settled_vm_size(agent: &ureq::Agent, base: &str, data: &Path, samples: u64) -> anyhow::Result<u64> {
    let deadline = std::time::Instant::now() + VM_SETTLE_LIMIT;
    let (mut last, mut stable) = (u64::MAX, 0usize);
    loop {
        let size = procfs::dir_usage_bytes(data);
        let on_disk = crate::http::get(agent, &format!("{base}/metrics"), &[]).map(|r| {
            r.body
                .lines()
                .filter(|l| {
                    l.starts_with("vm_rows{type=\"storage/small\"}")
                        || l.starts_with("vm_rows{type=\"storage/big\"}")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        })?;
        stable = if size == last && on_disk >= samples { stable + 1 } else { 0 };
        last = size;
        if stable >= VM_SETTLE_STABLE {
            return Ok(size);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "data dir not settled after {VM_SETTLE_LIMIT:?} ({on_disk} of {samples} samples in parts on disk)"
        );
        std::thread::sleep(VM_SETTLE_POLL);
    }
}

/// The default place for work dirs: a fresh temp dir under the system's temp root.
pub fn temp_work_dir() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("vigil-load-").tempdir()?)
}

/// A preset size of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Smoke run for CI: about a minute for all three servers.
    Quick,
    /// The reported run: well under 15 minutes for all three servers here.
    Default,
}

impl Size {
    /// The preset's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Size::Quick => "quick",
            Size::Default => "default",
        }
    }

    /// The preset workload, ending at `end_ms`.
    pub fn spec(self, end_ms: i64) -> crate::workload::WorkloadSpec {
        let (series, span_h) = match self {
            Size::Quick => (QUICK_SERIES, 1),
            Size::Default => (DEFAULT_SERIES, DEFAULT_SPAN_HOURS),
        };
        crate::workload::WorkloadSpec {
            series,
            interval: Duration::from_secs(SCRAPE_INTERVAL_S),
            span: Duration::from_secs(span_h * 3600),
            churn_per_hour: CHURN_PER_HOUR,
            seed: DEFAULT_SEED,
            end_ms,
            samples_per_request: crate::workload::DEFAULT_SAMPLES_PER_REQUEST,
            shards: CONNECTIONS,
        }
    }

    /// Timed runs per query.
    pub fn repeat(self) -> usize {
        match self {
            Size::Quick => 3,
            Size::Default => 5,
        }
    }

    /// Phase budgets.
    pub fn limits(self) -> Limits {
        let s = Duration::from_secs;
        match self {
            Size::Quick => Limits {
                ready: s(60),
                write: s(60),
                visible: s(30),
                queries: s(60),
                stop: s(30),
                restart_query: s(30),
            },
            Size::Default => Limits {
                ready: s(120),
                // Room for a busy shared machine: one run saw Prometheus at ~23k samples/s.
                write: s(600),
                visible: s(60),
                queries: s(180),
                stop: s(60),
                restart_query: s(120),
            },
        }
    }
}

/// Quick size: enough hosts for aggregations to mean something, tiny enough for CI.
const QUICK_SERIES: usize = 2_000;
/// Default size: three servers finish in under 15 minutes on 2 shared, busy cores.
const DEFAULT_SERIES: usize = 10_000;
/// Default span: three hours, short of Prometheus's head compaction (1.5 x 2h blocks).
const DEFAULT_SPAN_HOURS: u64 = 3;
/// Prometheus's most common scrape interval.
const SCRAPE_INTERVAL_S: u64 = 15;
/// A tenth of the API targets replaced per hour: a busy Kubernetes cluster.
const CHURN_PER_HOUR: f64 = 0.1;
/// The seed every preset uses, so runs compare like with like.
const DEFAULT_SEED: u64 = 42;
/// Concurrent remote-write connections: Prometheus's shards for this volume, two cores.
const CONNECTIONS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_storage_opened_line() {
        let log = "2026-11-30T03:00:00Z  INFO vigil_storage::db: storage opened dir=/d duration_ms=900 \
                   blocks=0 from_snapshot=true records=1 series=2 samples=5 snapshot_samples=5 \
                   wal_samples=0 wal_replay_ms=0\n\
                   2026-11-30T03:01:00Z  INFO vigil_storage::db: storage opened dir=/d duration_ms=500 \
                   blocks=0 from_snapshot=false records=9 series=2 samples=1000 snapshot_samples=0 \
                   wal_samples=1000 wal_replay_ms=400 wal_samples_per_second=2500\n\
                   2026-11-30T03:01:01Z  INFO vigil_server: store open";
        let got = OpenLog::last_in(log).expect("found");
        assert_eq!(
            got,
            OpenLog {
                duration_ms: 500,
                samples: 1000,
                from_snapshot: false,
                wal_samples: 1000,
                wal_replay_ms: 400
            }
        );
        assert_eq!(got.wal_samples_per_s(), 2500.0);
        assert_eq!(OpenLog::last_in("nothing here"), None);
    }
}
