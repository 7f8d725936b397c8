//! `vigil-load`: Vigil's load harness. `compare` runs the same workload against Vigil,
//! Prometheus and VictoriaMetrics and writes BENCHMARKS.md; `write` and `query` run one
//! phase against any server.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vigil_bench::compare::Size;
use vigil_bench::queries::{DEFAULT_QUERIES, QuerySpec, TimeRange, parse_query_set};
use vigil_bench::run::{CompareOptions, compare};
use vigil_bench::server::{ServerKind, peer_binary, peers_bin_dir};
use vigil_bench::workload::{WorkloadSpec, default_end_ms, generate};

/// Vigil's load harness.
#[derive(Debug, Parser)]
#[command(name = "vigil-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the workload and queries against Vigil, Prometheus and VictoriaMetrics in
    /// turn and write BENCHMARKS.md.
    Compare(CompareArgs),
    /// Send the workload to one remote-write URL and report throughput.
    Write(WriteArgs),
    /// Run the query set against one Prometheus-compatible API.
    Query(QueryArgs),
}

/// Workload knobs; unset ones come from the size preset.
#[derive(Debug, Args)]
struct WorkloadArgs {
    /// Use the quick (CI smoke) size instead of the default size.
    #[arg(long)]
    quick: bool,
    /// Active series (rounded up to whole hosts).
    #[arg(long)]
    series: Option<usize>,
    /// Scrape interval in seconds.
    #[arg(long)]
    interval_s: Option<u64>,
    /// Time span in minutes, ending now.
    #[arg(long)]
    span_min: Option<u64>,
    /// Share of API targets replaced per hour.
    #[arg(long)]
    churn: Option<f64>,
    /// Seed of the generator.
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent remote-write connections.
    #[arg(long)]
    connections: Option<usize>,
    /// Samples per remote-write request.
    #[arg(long)]
    samples_per_request: Option<usize>,
    /// End of the data as Unix milliseconds [default: a minute before now, rounded down to a minute].
    #[arg(long)]
    end_ms: Option<i64>,
}

impl WorkloadArgs {
    fn size(&self) -> Size {
        if self.quick { Size::Quick } else { Size::Default }
    }

    fn customised(&self) -> bool {
        self.series.is_some()
            || self.interval_s.is_some()
            || self.span_min.is_some()
            || self.churn.is_some()
            || self.seed.is_some()
            || self.connections.is_some()
            || self.samples_per_request.is_some()
    }

    fn spec(&self) -> WorkloadSpec {
        let mut s = self.size().spec(self.end_ms.unwrap_or_else(default_end_ms));
        s.series = self.series.unwrap_or(s.series);
        s.interval = self.interval_s.map(Duration::from_secs).unwrap_or(s.interval);
        s.span = self.span_min.map(|m| Duration::from_secs(m * 60)).unwrap_or(s.span);
        s.churn_per_hour = self.churn.unwrap_or(s.churn_per_hour);
        s.seed = self.seed.unwrap_or(s.seed);
        s.shards = self.connections.unwrap_or(s.shards);
        s.samples_per_request = self.samples_per_request.unwrap_or(s.samples_per_request);
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerArg {
    Vigil,
    Prometheus,
    Victoriametrics,
}

#[derive(Debug, Args)]
struct CompareArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// The vigil binary (build it with `cargo build --release -p vigil-server`).
    #[arg(long, default_value = "target/release/vigil")]
    vigil_bin: PathBuf,
    /// Folder of the peers' binaries [default: $VIGIL_PEERS_DIR/usr/bin or ~/.cache/vigil-peers/usr/bin].
    #[arg(long)]
    peers_bin: Option<PathBuf>,
    /// Servers to run, in order.
    #[arg(long, value_delimiter = ',', default_values = ["vigil", "prometheus", "victoriametrics"])]
    servers: Vec<ServerArg>,
    /// Query set file [default: the built-in copy of benches/queries.txt].
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Timed runs per query [default: 3 quick, 5 default].
    #[arg(long)]
    repeat: Option<usize>,
    /// Longest each server's write phase may take, in seconds [default: 60 quick, 600
    /// default]; raise it for big custom sizes (e.g. a million series).
    #[arg(long)]
    write_limit_s: Option<u64>,
}

#[derive(Debug, Args)]
struct WriteArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Remote-write URL, e.g. http://127.0.0.1:9090/api/v1/write.
    #[arg(long)]
    url: String,
    /// The server's pid, for its CPU seconds and peak memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Longest the write phase may take, in seconds.
    #[arg(long, default_value_t = 600)]
    time_limit_s: u64,
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// API base URL, e.g. http://127.0.0.1:9090.
    #[arg(long)]
    url: String,
    /// Query set file [default: the built-in copy of benches/queries.txt].
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Timed runs per query.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Start of the data, Unix seconds [default: end minus 3 hours].
    #[arg(long)]
    start_s: Option<i64>,
    /// End of the data, Unix seconds [default: a minute before now].
    #[arg(long)]
    end_s: Option<i64>,
    /// Longest the query phase may take, in seconds.
    #[arg(long, default_value_t = 600)]
    time_limit_s: u64,
}

fn load_queries(path: &Option<PathBuf>) -> anyhow::Result<Vec<QuerySpec>> {
    match path {
        Some(p) => parse_query_set(&std::fs::read_to_string(p)?),
        None => parse_query_set(DEFAULT_QUERIES),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Compare(a) => run_compare(a),
        Cmd::Write(a) => run_write(a),
        Cmd::Query(a) => run_query(a),
    }
}

fn run_compare(a: CompareArgs) -> anyhow::Result<()> {
    let size = a.workload.size();
    let peers = a.peers_bin.clone().unwrap_or_else(peers_bin_dir);
    let servers = a
        .servers
        .iter()
        .map(|s| match s {
            ServerArg::Vigil => (ServerKind::Vigil, a.vigil_bin.is_file().then(|| a.vigil_bin.clone())),
            ServerArg::Prometheus => (ServerKind::Prometheus, peer_binary(ServerKind::Prometheus, &peers)),
            ServerArg::Victoriametrics => {
                (ServerKind::VictoriaMetrics, peer_binary(ServerKind::VictoriaMetrics, &peers))
            }
        })
        .collect();
    let opts = CompareOptions {
        spec: a.workload.spec(),
        size: if a.workload.customised() {
            format!("custom (from {})", size.name())
        } else {
            size.name().into()
        },
        repeat: a.repeat.unwrap_or(size.repeat()),
        limits: {
            let mut limits = size.limits();
            if let Some(s) = a.write_limit_s {
                limits.write = std::time::Duration::from_secs(s);
            }
            limits
        },
        servers,
        queries: load_queries(&a.queries)?,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let result = compare(&opts, &mut |line| eprintln!("vigil-load: {line}"))?;
    std::fs::write(&a.out, &result.report)?;
    eprintln!("vigil-load: wrote {}", a.out.display());
    print!("{}", result.report);
    Ok(())
}

fn run_write(a: WriteArgs) -> anyhow::Result<()> {
    let spec = a.workload.spec();
    let w = generate(&spec)?;
    eprintln!(
        "vigil-load: {} samples, {} series, data from {} to {} (Unix s)",
        w.samples,
        w.series_total,
        w.first_ms / 1000,
        w.last_ms / 1000
    );
    let o = vigil_bench::write::run(&a.url, &w, a.pid, Duration::from_secs(a.time_limit_s));
    println!("samples_ok {}", o.samples_ok);
    println!("samples_per_s {:.0}", o.samples_per_s());
    println!("requests {} errors {} unsent {}", o.requests, o.errors, o.unsent);
    println!("latency_ms p50 {:.2} p99 {:.2}", o.p50.as_secs_f64() * 1e3, o.p99.as_secs_f64() * 1e3);
    if let Some(c) = o.server_cpu_s {
        println!("server_cpu_s {c:.2} per_million_samples {:.3}", c * 1e6 / o.samples_ok.max(1) as f64);
    }
    if let Some(r) = o.server_peak_rss {
        println!(
            "server_peak_rss_bytes {r} per_active_series {:.0}",
            r as f64 / w.series_active.max(1) as f64
        );
    }
    for e in &o.first_errors {
        println!("error: {e}");
    }
    Ok(())
}

fn run_query(a: QueryArgs) -> anyhow::Result<()> {
    let set = load_queries(&a.queries)?;
    let end_s = a.end_s.unwrap_or_else(|| default_end_ms() / 1000);
    let range = TimeRange { start_s: a.start_s.unwrap_or(end_s - 3 * 3600), end_s };
    let base = a.url.trim_end_matches('/');
    let out = vigil_bench::queries::run_all(base, &set, range, a.repeat, Duration::from_secs(a.time_limit_s));
    println!("{:<28} {:>10} {:>10} {:>8}  error", "query", "median_ms", "p90_ms", "series");
    for q in out {
        let f = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3));
        let n = q.result_count.map_or("-".into(), |n| n.to_string());
        println!(
            "{:<28} {:>10} {:>10} {:>8}  {}",
            q.name,
            f(q.median),
            f(q.p90),
            n,
            q.error.unwrap_or_default()
        );
    }
    Ok(())
}
