//! The synthetic workload: node_exporter-like hosts and an HTTP service per host,
//! deterministic from a seed, turned into remote-write bodies before anything is timed.
//!
//! Every host has one `job="node"` target (CPU seconds by cpu and mode, memory,
//! filesystem, network counters, load) and one `job="api"` target (requests by method,
//! status and handler, and a classic latency histogram per handler). API targets churn:
//! a replaced target's series end with a stale marker and a new `instance` begins, as
//! when a pod is rescheduled. Samples are sharded by series over the connections and
//! sent in time order per shard, as Prometheus's remote-write queue does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use vigil_ingest::remote_write::proto::{Label, TimeSeries};

use crate::rng::SplitMix64;

/// The NaN bit pattern Prometheus writes as a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Samples per remote-write request: Prometheus's default `max_samples_per_send`.
pub const DEFAULT_SAMPLES_PER_REQUEST: usize = 2000;
/// CPUs per host: a small VM.
const CPUS: usize = 4;
/// CPU modes with their share of a CPU's time.
const CPU_MODES: [(&str, f64); 8] = [
    ("idle", 0.70),
    ("user", 0.15),
    ("system", 0.07),
    ("iowait", 0.03),
    ("irq", 0.01),
    ("softirq", 0.02),
    ("steal", 0.01),
    ("nice", 0.01),
];
/// Handlers with their requests per second; each is twice the next so that `topk`
/// over handlers picks the same series on every server despite rate differences.
const HANDLERS: [(&str, f64); 8] = [
    ("/", 64.0),
    ("/api/v1/users", 32.0),
    ("/api/v1/users/:id", 16.0),
    ("/api/v1/orders", 8.0),
    ("/api/v1/orders/:id", 4.0),
    ("/api/v1/search", 2.0),
    ("/healthz", 1.0),
    ("/metrics", 0.5),
];
/// Handlers that also take POST (the first four of [`HANDLERS`]).
const POST_HANDLERS: usize = 4;
/// Status codes with their share of a method's requests.
const GET_STATUSES: [(&str, f64); 3] = [("200", 0.90), ("404", 0.07), ("500", 0.03)];
/// Status codes with their share of POST requests.
const POST_STATUSES: [(&str, f64); 3] = [("201", 0.90), ("400", 0.07), ("500", 0.03)];
/// Share of a handler's requests that are POSTs (when it takes them).
const POST_SHARE: f64 = 0.2;
/// Latency histogram bucket bounds (seconds), Prometheus client defaults without the last.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Filesystems per host: (device, mountpoint, fstype).
const FILESYSTEMS: [(&str, &str, &str); 2] = [("/dev/sda1", "/", "ext4"), ("/dev/sdb1", "/var/lib", "xfs")];
/// Network devices per host.
const NET_DEVICES: [&str; 2] = ["eth0", "lo"];

/// What a workload looks like; every figure derives from these knobs.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// Wanted number of series active at any time (rounded up to whole hosts).
    pub series: usize,
    /// Scrape interval.
    pub interval: Duration,
    /// Time span the data covers, ending at `end_ms`.
    pub span: Duration,
    /// Share of API targets replaced per hour (0.1 = a tenth).
    pub churn_per_hour: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Timestamp (ms) of the end of the data; the last scrape is before it.
    pub end_ms: i64,
    /// Samples per remote-write request.
    pub samples_per_request: usize,
    /// Concurrent connections (shards) the samples are spread over.
    pub shards: usize,
}

impl WorkloadSpec {
    /// Number of hosts needed for `series` active series.
    pub fn hosts(&self) -> usize {
        self.series.div_ceil(SERIES_PER_HOST).max(1)
    }

    /// Scrapes per target over the span.
    pub fn scrapes(&self) -> usize {
        (self.span.as_millis() / self.interval.as_millis().max(1)) as usize
    }

    /// Start of the data (ms).
    pub fn start_ms(&self) -> i64 {
        self.end_ms - self.span.as_millis() as i64
    }
}

/// How far before now the data ends: VictoriaMetrics hides the last 30s from queries
/// (`-search.latencyOffset`), so data ending a minute or more ago is fully visible.
const END_BEFORE_NOW_MS: i64 = 60_000;

/// The default end of the data (ms): a minute before now, rounded down to a minute so
/// that step-aligned queries line up.
pub fn default_end_ms() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    now - now % 60_000 - END_BEFORE_NOW_MS
}

/// Series per host: node target plus API target.
pub const SERIES_PER_HOST: usize = NODE_SERIES + API_SERIES;
/// Series of one node target.
const NODE_SERIES: usize = CPUS * CPU_MODES.len() + 5 + FILESYSTEMS.len() * 3 + NET_DEVICES.len() * 4 + 1;
/// Series of one API target.
const API_SERIES: usize = HANDLERS.len() * GET_STATUSES.len()
    + POST_HANDLERS * POST_STATUSES.len()
    + HANDLERS.len() * (BUCKETS.len() + 3);

/// How a series' value moves from one scrape to the next.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A float counter growing by about `per_s` per second.
    FloatCounter { per_s: f64 },
    /// An integer counter growing by about `per_s` per second.
    IntCounter { per_s: f64 },
    /// A gauge random-walking by up to `step` around its start, never negative.
    Gauge { step: f64 },
    /// The `i`th cumulative bucket (`BUCKETS.len()` is `+Inf`) of the handler's histogram.
    Bucket { handler: usize, i: usize },
    /// The histogram's `_sum`.
    HistSum { handler: usize },
    /// The histogram's `_count`.
    HistCount { handler: usize },
}

/// One series: its labels pre-encoded, how it moves, and its current value.
#[derive(Debug, Clone)]
struct Series {
    id: usize,
    /// The `labels` fields of a protobuf `TimeSeries`, encoded once per series.
    label_bytes: Vec<u8>,
    kind: Kind,
    value: f64,
}

/// One scrape target with its series.
#[derive(Debug, Clone)]
struct Target {
    series: Vec<Series>,
    /// How busy this host is relative to others.
    load: f64,
}

/// Per-handler histogram observations of one scrape: (requests, latency scale in s).
type HistDraw = [(f64, f64); HANDLERS.len()];

/// The label pairs, sorted by name, encoded as the `labels` fields of a `TimeSeries`.
fn label_bytes(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut labels: Vec<Label> = pairs.iter().map(|(n, val)| Label::new(*n, *val)).collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries { labels, ..Default::default() }.encode_to_vec()
}

fn node_target(host: usize, rng: &mut SplitMix64, next_id: &mut usize) -> Target {
    let instance = format!("host-{host:05}:9100");
    let base = [("job", "node"), ("instance", instance.as_str())];
    let mut out = Vec::with_capacity(NODE_SERIES);
    let mut push = |name: &str, extra: &[(&str, &str)], kind: Kind, value: f64| {
        let mut pairs = vec![("__name__", name)];
        pairs.extend_from_slice(&base);
        pairs.extend_from_slice(extra);
        out.push(Series { id: *next_id, label_bytes: label_bytes(&pairs), kind, value });
        *next_id += 1;
    };
    for cpu in 0..CPUS {
        let cpu = cpu.to_string();
        for (mode, share) in CPU_MODES {
            let start = 1.0e5 * share * (1.0 + rng.next_f64());
            push(
                "node_cpu_seconds_total",
                &[("cpu", &cpu), ("mode", mode)],
                Kind::FloatCounter { per_s: share },
                start,
            );
        }
    }
    let total = 8.0 * (1u64 << 30) as f64;
    push("node_memory_MemTotal_bytes", &[], Kind::Gauge { step: 0.0 }, total);
    for name in [
        "node_memory_MemAvailable_bytes",
        "node_memory_MemFree_bytes",
        "node_memory_Cached_bytes",
        "node_memory_Buffers_bytes",
    ] {
        let v = (total * (0.1 + 0.4 * rng.next_f64())).round();
        push(name, &[], Kind::Gauge { step: 4.0 * (1u64 << 20) as f64 }, v);
    }
    for (device, mountpoint, fstype) in FILESYSTEMS {
        let extra = [("device", device), ("fstype", fstype), ("mountpoint", mountpoint)];
        let size = 100.0 * (1u64 << 30) as f64;
        let avail = (size * (0.2 + 0.6 * rng.next_f64())).round();
        push("node_filesystem_size_bytes", &extra, Kind::Gauge { step: 0.0 }, size);
        push("node_filesystem_avail_bytes", &extra, Kind::Gauge { step: 1.0e6 }, avail);
        push("node_filesystem_free_bytes", &extra, Kind::Gauge { step: 1.0e6 }, avail + 5.0e9);
    }
    for device in NET_DEVICES {
        let rate = if device == "lo" { 2.0e4 } else { 1.0e6 * (0.5 + rng.next_f64()) };
        let d = [("device", device)];
        push("node_network_receive_bytes_total", &d, Kind::IntCounter { per_s: rate }, 0.0);
        push("node_network_transmit_bytes_total", &d, Kind::IntCounter { per_s: rate * 0.6 }, 0.0);
        push("node_network_receive_packets_total", &d, Kind::IntCounter { per_s: rate / 800.0 }, 0.0);
        push("node_network_transmit_packets_total", &d, Kind::IntCounter { per_s: rate / 900.0 }, 0.0);
    }
    push("node_load1", &[], Kind::Gauge { step: 0.2 }, 1.0 + 2.0 * rng.next_f64());
    Target { series: out, load: 1.0 }
}

fn api_target(host: usize, generation: usize, load: f64, next_id: &mut usize) -> Target {
    let instance = format!("api-{host:05}-{generation}:8080");
    let mut out = Vec::with_capacity(API_SERIES);
    let mut push = |name: &str, extra: &[(&str, &str)], kind: Kind| {
        let mut pairs = vec![("__name__", name), ("job", "api"), ("instance", instance.as_str())];
        pairs.extend_from_slice(extra);
        out.push(Series { id: *next_id, label_bytes: label_bytes(&pairs), kind, value: 0.0 });
        *next_id += 1;
    };
    for (h, (handler, per_s)) in HANDLERS.iter().enumerate() {
        let get_share = if h < POST_HANDLERS { 1.0 - POST_SHARE } else { 1.0 };
        for (status, share) in GET_STATUSES {
            let kind = Kind::IntCounter { per_s: per_s * load * get_share * share };
            push("http_requests_total", &[("handler", handler), ("method", "GET"), ("status", status)], kind);
        }
        if h < POST_HANDLERS {
            for (status, share) in POST_STATUSES {
                let kind = Kind::IntCounter { per_s: per_s * load * POST_SHARE * share };
                push(
                    "http_requests_total",
                    &[("handler", handler), ("method", "POST"), ("status", status)],
                    kind,
                );
            }
        }
    }
    for (h, (handler, _)) in HANDLERS.iter().enumerate() {
        for i in 0..=BUCKETS.len() {
            let le = BUCKETS.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            push(
                "http_request_duration_seconds_bucket",
                &[("handler", handler), ("le", &le)],
                Kind::Bucket { handler: h, i },
            );
        }
        push("http_request_duration_seconds_sum", &[("handler", handler)], Kind::HistSum { handler: h });
        push("http_request_duration_seconds_count", &[("handler", handler)], Kind::HistCount { handler: h });
    }
    Target { series: out, load }
}

/// Advances every series of `target` by one scrape of `interval_s` seconds.
fn step(target: &mut Target, interval_s: f64, rng: &mut SplitMix64) {
    let mut draws: HistDraw = [(0.0, 0.0); HANDLERS.len()];
    for (h, (_, per_s)) in HANDLERS.iter().enumerate() {
        let n = (per_s * target.load * interval_s * (0.5 + rng.next_f64())).floor();
        // Slower handlers further down the list; each scrape jitters the latency scale.
        let scale = 0.01 * (1.0 + h as f64) * (0.8 + 0.4 * rng.next_f64());
        draws[h] = (n, scale);
    }
    for s in &mut target.series {
        s.value = match s.kind {
            Kind::FloatCounter { per_s } => s.value + per_s * interval_s * (0.5 + rng.next_f64()),
            Kind::IntCounter { per_s } => s.value + (per_s * interval_s * (0.5 + rng.next_f64())).floor(),
            Kind::Gauge { step } => (s.value + step * (2.0 * rng.next_f64() - 1.0)).round().max(0.0),
            Kind::Bucket { handler, i } => {
                let (n, scale) = draws[handler];
                let cdf = BUCKETS.get(i).map_or(1.0, |le| 1.0 - (-le / scale).exp());
                s.value + (n * cdf).floor()
            }
            Kind::HistSum { handler } => s.value + draws[handler].0 * draws[handler].1,
            Kind::HistCount { handler } => s.value + draws[handler].0,
        };
    }
}

/// One encoded remote-write body and how many samples it carries.
#[derive(Debug, Clone)]
pub struct EncodedRequest {
    /// Snappy-compressed protobuf `WriteRequest`.
    pub body: Vec<u8>,
    /// Samples in it (stale markers included).
    pub samples: usize,
}

/// The whole workload, encoded: one request list per shard, each in time order.
#[derive(Debug, Clone)]
pub struct EncodedWorkload {
    /// Requests per shard (connection).
    pub shards: Vec<Vec<EncodedRequest>>,
    /// Samples in all requests.
    pub samples: usize,
    /// Stale markers among them.
    pub stale_markers: usize,
    /// API targets replaced over the span (churn events).
    pub targets_replaced: usize,
    /// Distinct series written.
    pub series_total: usize,
    /// Series active at the end (not ended by a stale marker).
    pub series_active: usize,
    /// Hosts (one node and one API target each).
    pub hosts: usize,
    /// Compressed bytes of all requests.
    pub bytes: usize,
    /// First sample timestamp (ms).
    pub first_ms: i64,
    /// Last sample timestamp (ms).
    pub last_ms: i64,
}

/// Builds a shard's requests as samples arrive, writing the protobuf bytes directly:
/// with the labels encoded once per series, a sample costs a few bytes of copying
/// instead of a labels clone and a message tree (the default size has ~36M samples).
struct ShardBuffer {
    /// The `WriteRequest` being built, protobuf-encoded.
    raw: Vec<u8>,
    /// Samples in `raw`.
    pending: usize,
    out: Vec<EncodedRequest>,
    per_request: usize,
    snappy: snap::raw::Encoder,
}

/// Protobuf tag of `WriteRequest.timeseries` (field 1, length-delimited).
const TAG_TIMESERIES: u8 = 0x0A;
/// Protobuf tag of `TimeSeries.samples` (field 2, length-delimited).
const TAG_SAMPLES: u8 = 0x12;
/// Protobuf tag of `Sample.value` (field 1, 64-bit).
const TAG_VALUE: u8 = 0x09;
/// Protobuf tag of `Sample.timestamp` (field 2, varint).
const TAG_TIMESTAMP: u8 = 0x10;

/// Appends `v` as a protobuf varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl ShardBuffer {
    fn new(per_request: usize) -> Self {
        ShardBuffer {
            raw: Vec::new(),
            pending: 0,
            out: Vec::new(),
            per_request,
            snappy: snap::raw::Encoder::new(),
        }
    }

    fn push(&mut self, s: &Series, timestamp: i64, value: f64) -> anyhow::Result<()> {
        let mut sample = Vec::with_capacity(20);
        sample.push(TAG_VALUE);
        sample.extend_from_slice(&value.to_le_bytes());
        sample.push(TAG_TIMESTAMP);
        // int64 is encoded as the varint of its two's complement.
        put_varint(&mut sample, timestamp as u64);
        let mut sample_field = vec![TAG_SAMPLES];
        put_varint(&mut sample_field, sample.len() as u64);
        let series_len = s.label_bytes.len() + sample_field.len() + sample.len();
        self.raw.push(TAG_TIMESERIES);
        put_varint(&mut self.raw, series_len as u64);
        self.raw.extend_from_slice(&s.label_bytes);
        self.raw.extend_from_slice(&sample_field);
        self.raw.extend_from_slice(&sample);
        self.pending += 1;
        if self.pending >= self.per_request {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let body = self.snappy.compress_vec(&self.raw)?;
        self.out.push(EncodedRequest { body, samples: self.pending });
        self.raw.clear();
        self.pending = 0;
        Ok(())
    }
}

/// When each host's API target is replaced: sorted scrape indexes per host.
fn churn_schedule(spec: &WorkloadSpec, rng: &mut SplitMix64) -> Vec<Vec<usize>> {
    let hosts = spec.hosts();
    let scrapes = spec.scrapes();
    let hours = spec.span.as_secs_f64() / 3600.0;
    let events = (spec.churn_per_hour.max(0.0) * hours * hosts as f64).round() as usize;
    let mut at = vec![Vec::new(); hosts];
    if scrapes < 2 {
        return at;
    }
    for _ in 0..events {
        let host = rng.below(hosts as u64) as usize;
        // Never at the first scrape, so every generation has at least one sample.
        let k = 1 + rng.below(scrapes as u64 - 1) as usize;
        at[host].push(k);
    }
    for v in &mut at {
        v.sort_unstable();
        v.dedup();
    }
    at
}

/// Generates and encodes the workload of `spec`.
pub fn generate(spec: &WorkloadSpec) -> anyhow::Result<EncodedWorkload> {
    anyhow::ensure!(
        spec.shards > 0 && spec.samples_per_request > 0,
        "shards and samples per request must be positive"
    );
    anyhow::ensure!(
        spec.interval.as_millis() > 0 && spec.scrapes() > 0,
        "the span must hold at least one scrape interval"
    );
    let mut rng = SplitMix64::new(spec.seed);
    let hosts = spec.hosts();
    let interval_ms = spec.interval.as_millis() as i64;
    let interval_s = spec.interval.as_secs_f64();
    let mut next_id = 0usize;
    let mut nodes: Vec<Target> = (0..hosts).map(|h| node_target(h, &mut rng, &mut next_id)).collect();
    // Host load spreads over 0.5x..2x so per-instance aggregates differ.
    let loads: Vec<f64> = (0..hosts).map(|_| 0.5 * 4f64.powf(rng.next_f64())).collect();
    let mut apis: Vec<Target> = (0..hosts).map(|h| api_target(h, 0, loads[h], &mut next_id)).collect();
    let mut generation = vec![0usize; hosts];
    let churn = churn_schedule(spec, &mut rng);
    // Each host is scraped at its own offset within the interval; sorting hosts by
    // offset makes the stream time-ordered.
    let offsets: Vec<i64> = (0..hosts).map(|_| rng.below(interval_ms as u64) as i64).collect();
    let mut order: Vec<usize> = (0..hosts).collect();
    order.sort_by_key(|&h| (offsets[h], h));

    let mut shards: Vec<ShardBuffer> =
        (0..spec.shards).map(|_| ShardBuffer::new(spec.samples_per_request)).collect();
    let stale = f64::from_bits(STALE_NAN_BITS);
    let (mut samples, mut stale_markers, mut targets_replaced) = (0usize, 0usize, 0usize);
    let start = spec.start_ms();
    let mut last_ms = start;
    for k in 0..spec.scrapes() {
        for &h in &order {
            let t = start + k as i64 * interval_ms + offsets[h];
            last_ms = last_ms.max(t);
            if churn[h].binary_search(&k).is_ok() {
                for s in &apis[h].series {
                    shards[s.id % spec.shards].push(s, t, stale)?;
                }
                stale_markers += apis[h].series.len();
                targets_replaced += 1;
                samples += apis[h].series.len();
                generation[h] += 1;
                apis[h] = api_target(h, generation[h], loads[h], &mut next_id);
            }
            for target in [&mut nodes[h], &mut apis[h]] {
                if k > 0 {
                    step(target, interval_s, &mut rng);
                }
                for s in &target.series {
                    shards[s.id % spec.shards].push(s, t, s.value)?;
                }
                samples += target.series.len();
            }
        }
    }
    let mut out = Vec::with_capacity(shards.len());
    for mut shard in shards {
        shard.flush()?;
        out.push(shard.out);
    }
    let bytes = out.iter().flatten().map(|r| r.body.len()).sum();
    Ok(EncodedWorkload {
        shards: out,
        samples,
        stale_markers,
        targets_replaced,
        series_total: next_id,
        series_active: hosts * SERIES_PER_HOST,
        hosts,
        bytes,
        first_ms: start + offsets.iter().copied().min().unwrap_or(0),
        last_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_ingest::remote_write::decode_v1;

    fn spec(seed: u64) -> WorkloadSpec {
        WorkloadSpec {
            series: 400,
            interval: Duration::from_secs(15),
            span: Duration::from_secs(3600),
            churn_per_hour: 0.5,
            seed,
            end_ms: 1_700_000_040_000,
            samples_per_request: 500,
            shards: 3,
        }
    }

    fn decode_all(w: &EncodedWorkload) -> Vec<Vec<TimeSeries>> {
        w.shards
            .iter()
            .map(|reqs| reqs.iter().flat_map(|r| decode_v1(&r.body, 1 << 26).unwrap().timeseries).collect())
            .collect()
    }

    #[test]
    fn hand_encoded_requests_decode_as_written() {
        let series = Series {
            id: 0,
            label_bytes: label_bytes(&[("job", "a"), ("__name__", "up")]),
            kind: Kind::Gauge { step: 0.0 },
            value: 0.0,
        };
        let mut buf = ShardBuffer::new(2);
        buf.push(&series, 1_700_000_000_123, 0.0).unwrap();
        assert!(buf.out.is_empty(), "not full yet");
        buf.push(&series, 1_700_000_015_123, -2.5).unwrap();
        assert_eq!(buf.out.len(), 1);
        buf.push(&series, 1_700_000_030_123, f64::from_bits(STALE_NAN_BITS)).unwrap();
        buf.flush().unwrap();
        let reqs: Vec<_> = buf.out.iter().map(|r| decode_v1(&r.body, 1 << 20).unwrap()).collect();
        assert_eq!((buf.out[0].samples, buf.out[1].samples), (2, 1));
        let ts = &reqs[0].timeseries[1];
        assert_eq!(ts.labels, vec![Label::new("__name__", "up"), Label::new("job", "a")]);
        assert_eq!((ts.samples[0].timestamp, ts.samples[0].value), (1_700_000_015_123, -2.5));
        assert_eq!(reqs[0].timeseries[0].samples[0].value, 0.0);
        assert_eq!(reqs[1].timeseries[0].samples[0].value.to_bits(), STALE_NAN_BITS);
    }

    #[test]
    fn deterministic_from_the_seed() {
        let (a, b, c) =
            (generate(&spec(1)).unwrap(), generate(&spec(1)).unwrap(), generate(&spec(2)).unwrap());
        let bodies =
            |w: &EncodedWorkload| w.shards.iter().flatten().map(|r| r.body.clone()).collect::<Vec<_>>();
        assert_eq!(bodies(&a), bodies(&b));
        assert_ne!(bodies(&a), bodies(&c));
    }

    #[test]
    fn counts_add_up_and_each_shard_is_time_ordered_per_series() {
        let s = spec(3);
        let w = generate(&s).unwrap();
        let decoded = decode_all(&w);
        let total: usize = decoded.iter().map(Vec::len).sum();
        assert_eq!(total, w.samples);
        assert_eq!(w.hosts, 3);
        assert!(w.stale_markers > 0, "churn at 0.5/h over 1h ends some targets");
        assert_eq!(w.series_total, w.series_active + w.stale_markers);
        let mut last: std::collections::HashMap<Vec<Label>, i64> = Default::default();
        let mut seen_stale = std::collections::HashSet::new();
        for shard in &decoded {
            for ts in shard {
                let sample = ts.samples[0];
                assert!(sample.timestamp >= s.start_ms() && sample.timestamp < s.end_ms);
                if let Some(prev) = last.insert(ts.labels.clone(), sample.timestamp) {
                    assert!(prev < sample.timestamp, "series out of order in its shard");
                }
                assert!(!seen_stale.contains(&ts.labels), "a sample after a series' stale marker");
                if sample.value.to_bits() == STALE_NAN_BITS {
                    seen_stale.insert(ts.labels.clone());
                }
            }
        }
        assert_eq!(last.len(), w.series_total);
    }

    #[test]
    fn counters_never_decrease_and_buckets_are_cumulative() {
        let w = generate(&spec(4)).unwrap();
        let mut series: std::collections::HashMap<Vec<Label>, Vec<(i64, f64)>> = Default::default();
        for ts in decode_all(&w).into_iter().flatten() {
            let s = ts.samples[0];
            if s.value.to_bits() != STALE_NAN_BITS {
                series.entry(ts.labels).or_default().push((s.timestamp, s.value));
            }
        }
        let name = |l: &[Label]| String::from_utf8(l[0].value.to_vec()).unwrap();
        for (labels, mut points) in series.clone() {
            points.sort_by_key(|p| p.0);
            let n = name(&labels);
            if n.ends_with("_total") || n.contains("_bucket") || n.ends_with("_count") || n.ends_with("_sum")
            {
                assert!(points.windows(2).all(|w| w[0].1 <= w[1].1), "{n} decreased");
            }
        }
        // At any scrape, bucket counts grow with `le` and `+Inf` equals `_count`.
        let key = |l: &[Label], drop: &str| -> Vec<Label> {
            l.iter()
                .filter(|x| x.name[..] != b"__name__"[..] && x.name[..] != *drop.as_bytes())
                .cloned()
                .collect()
        };
        type AtScrape = (Vec<Label>, i64);
        let mut buckets: std::collections::HashMap<AtScrape, Vec<(f64, f64)>> = Default::default();
        let mut counts: std::collections::HashMap<(Vec<Label>, i64), f64> = Default::default();
        for (labels, points) in &series {
            let n = name(labels);
            for &(t, v) in points {
                if n == "http_request_duration_seconds_bucket" {
                    let le = labels.iter().find(|l| l.name[..] == b"le"[..]).unwrap();
                    let le: f64 = String::from_utf8(le.value.to_vec()).unwrap().parse().unwrap();
                    buckets.entry((key(labels, "le"), t)).or_default().push((le, v));
                } else if n == "http_request_duration_seconds_count" {
                    counts.insert((key(labels, ""), t), v);
                }
            }
        }
        assert!(!buckets.is_empty());
        for (k, mut b) in buckets {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            assert_eq!(b.len(), BUCKETS.len() + 1);
            assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "buckets not cumulative");
            assert_eq!(b.last().unwrap().1, counts[&k]);
        }
    }
}
