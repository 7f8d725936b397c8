//! Block storage end to end: data spanning several block ranges is cut into blocks by
//! the maintenance thread, survives `kill -9` with every sample exactly once, can be
//! deleted through the admin API, and a snapshot serves as a data directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use vigil_tests::{Api, Vigil, encode_write};

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 5;
/// Ten minutes of data at a 5s step: five 2-minute block ranges.
const SAMPLES: usize = 120;
const STEP_MS: i64 = 5_000;
/// Samples per series per remote-write request.
const PER_REQUEST: usize = 12;
/// The smallest block range that keeps the test well under a minute.
const BLOCK_RANGE: &str = "--storage.block-range=2m";
/// Maintenance runs this often here so blocks appear within the test's time budget.
const CONFIG: &str = "storage:\n  maintenance_interval: 200ms\n";
/// How long to wait for the first block.
const BLOCK_WAIT: Duration = Duration::from_secs(20);

fn value(series: usize, i: usize) -> f64 {
    (series * 1000 + i) as f64 + 0.5
}

fn start(data: &Path, config: &Path) -> Vigil {
    let config_arg = format!("--config.file={}", config.display());
    Vigil::start_with_args(data, &[BLOCK_RANGE, "--web.enable-admin-api", &config_arg])
}

/// Every sample of `blocks_test` as series label → (seconds, value), via a range selector.
fn all_samples(api: &Api) -> BTreeMap<String, Vec<(f64, f64)>> {
    let at = (T0 + SAMPLES as i64 * STEP_MS) as f64 / 1000.0;
    let window = format!("blocks_test[{}s]", SAMPLES as i64 * STEP_MS / 1000 + 1);
    vigil_tests::points_by_label(&api.query(&window, at), "series")
}

fn want(series: usize) -> Vec<(f64, f64)> {
    (0..SAMPLES).map(|i| ((T0 + i as i64 * STEP_MS) as f64 / 1000.0, value(series, i))).collect()
}

fn block_dirs(data: &Path) -> usize {
    std::fs::read_dir(data.join("blocks"))
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().join("meta.json").exists()).count())
        .unwrap_or(0)
}

/// A temp dir with a data dir path and the config file written; the dir lives as long
/// as the returned guard.
fn work_dir() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let config = dir.path().join("vigil.yml");
    std::fs::write(&config, CONFIG).expect("write config");
    (dir, data, config)
}

/// Writes every sample (each request acknowledged) and waits until a block is cut.
fn write_all_and_wait_for_a_block(vigil: &Vigil) {
    let api = vigil.api();
    let names: Vec<String> = (0..SERIES).map(|s| s.to_string()).collect();
    for r in 0..SAMPLES / PER_REQUEST {
        let series: Vec<_> = (0..SERIES)
            .map(|s| {
                let samples = (r * PER_REQUEST..(r + 1) * PER_REQUEST)
                    .map(|i| (T0 + i as i64 * STEP_MS, value(s, i)))
                    .collect();
                (vec![("__name__", "blocks_test"), ("series", names[s].as_str())], samples)
            })
            .collect();
        let reply = api.remote_write(encode_write(&series));
        assert_eq!(reply.status, 204, "request {r}: {}", reply.body);
    }
    let deadline = Instant::now() + BLOCK_WAIT;
    while block_dirs(&vigil.data_dir) == 0 {
        assert!(Instant::now() < deadline, "no block cut within {BLOCK_WAIT:?}; log: {}", vigil.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn blocks_survive_kill_9_and_serve_deletes_and_snapshots() {
    let (_dir, data, config) = work_dir();

    let vigil = start(&data, &config);
    write_all_and_wait_for_a_block(&vigil);
    vigil.kill9();

    // Every acknowledged sample, exactly once, whether it now lives in a block, the WAL or both.
    let vigil = start(&data, &config);
    let api = vigil.api();
    let got = all_samples(&api);
    assert_eq!(got.len(), SERIES, "series after restart: {:?}", got.keys());
    for s in 0..SERIES {
        assert_eq!(got[&s.to_string()], want(s), "series {s}");
    }
    let stats = api.get("/api/v1/status/tsdb", &[]).json();
    assert_eq!(stats["status"], "success", "{stats}");
    assert!(stats["data"]["seriesCountByMetricName"].is_array(), "{stats}");

    // delete_series hides the series at once, in blocks and head alike.
    let reply =
        api.post_form("/api/v1/admin/tsdb/delete_series", &[("match[]", "blocks_test{series=\"0\"}")]);
    assert_eq!(reply.status, 204, "{}", reply.body);
    let got = all_samples(&api);
    assert_eq!(got.len(), SERIES - 1, "after delete: {:?}", got.keys());
    assert!(!got.contains_key("0"));

    // A snapshot is a data directory another Vigil can serve.
    let reply = api.post_form("/api/v1/admin/tsdb/snapshot", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let name = reply.json()["data"]["name"].as_str().expect("snapshot name").to_string();
    let snapshot_dir = data.join("snapshots").join(&name);
    assert!(block_dirs(&snapshot_dir) > 0, "snapshot {name} has no blocks");
    let copy = Vigil::start_with_args(&snapshot_dir, &[BLOCK_RANGE]);
    let restored = all_samples(&copy.api());
    assert_eq!(restored.len(), SERIES - 1, "snapshot series: {:?}", restored.keys());
    for s in 1..SERIES {
        assert_eq!(restored[&s.to_string()], want(s), "snapshot series {s}");
    }
    assert!(copy.terminate(), "snapshot server exits cleanly");
    assert!(
        vigil.terminate(),
        "server exits cleanly: {}",
        std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
    );
}

/// The oldest block: its directory and `[minTime, maxTime)`.
fn oldest_block(data: &Path) -> (std::path::PathBuf, i64, i64) {
    std::fs::read_dir(data.join("blocks"))
        .expect("list blocks")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path().join("meta.json")).expect("meta"))
                    .expect("json");
            (e.path(), meta["minTime"].as_i64().expect("minTime"), meta["maxTime"].as_i64().expect("maxTime"))
        })
        .min_by_key(|b| b.1)
        .expect("a block")
}

#[test]
fn a_corrupt_byte_in_a_block_is_reported_moved_aside_and_never_served() {
    let (_dir, data, config) = work_dir();
    let vigil = start(&data, &config);
    write_all_and_wait_for_a_block(&vigil);
    assert!(vigil.terminate(), "graceful stop");

    let (block, min_t, max_t) = oldest_block(&data);
    let chunks = block.join("chunks");
    let mut bytes = std::fs::read(&chunks).expect("read chunks");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&chunks, bytes).expect("write chunks");

    let vigil = start(&data, &config);
    let api = vigil.api();
    let deadline = Instant::now() + BLOCK_WAIT;
    loop {
        let metrics = api.get("/metrics", &[]).body;
        if metrics.lines().any(|l| l == "vigil_tsdb_corrupt_blocks_total 1") {
            break;
        }
        assert!(Instant::now() < deadline, "corrupt block not counted in /metrics: {metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut aside = block.clone().into_os_string();
    aside.push(".corrupt");
    assert!(!block.exists() && Path::new(&aside).exists(), "block not moved aside");
    assert!(vigil.log().contains("corrupt"), "not reported in the log: {}", vigil.log());
    // The block's samples are gone (its range left the WAL when it was cut); every
    // other sample is served, and nothing from the damaged block.
    let got = all_samples(&api);
    for s in 0..SERIES {
        let outside: Vec<(f64, f64)> = want(s)
            .into_iter()
            .filter(|(t, _)| {
                let ms = (t * 1000.0).round() as i64;
                ms < min_t || ms >= max_t
            })
            .collect();
        assert_eq!(got.get(&s.to_string()).cloned().unwrap_or_default(), outside, "series {s}");
    }
}
