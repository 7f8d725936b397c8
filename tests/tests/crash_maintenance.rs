//! `kill -9` in the middle of block writing, WAL checkpointing, compaction and head
//! snapshots, twice at every step: the real binary is started with `VIGIL_TEST_PAUSE_AT=<step>`, so its
//! maintenance thread stops for good at that step while ingest goes on; once the log
//! says it stopped there the test kills the process with SIGKILL, restarts it and checks
//! that every acknowledged sample is served exactly once and that no half-written block
//! is left behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use vigil_storage::failpoint::{PAUSE_ENV, PAUSED_MARKER};
use vigil_tests::{Api, Vigil, encode_write};

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 4;
const STEP_MS: i64 = 15_000;
/// Ten minutes of samples per round: five 2-minute block ranges, so every round cuts
/// blocks and completes at least one 6-minute compaction window.
const PER_ROUND: usize = 40;
/// Samples per series per remote-write request.
const PER_REQUEST: usize = 10;
/// Small blocks, so a few minutes of sample time make many of them.
const BLOCK_RANGE: &str = "--storage.block-range=2m";
/// Maintenance runs often so each step is reached within moments of the writes.
const CONFIG: &str = "storage:\n  maintenance_interval: 100ms\n";
/// How long a step may take to be reached.
const PAUSE_WAIT: Duration = Duration::from_secs(30);
/// Crashes per step.
const CRASHES_PER_STEP: usize = 2;

/// The steps of maintenance a crash is tested at, in the order a pass reaches them.
const STEPS: [&str; 13] = [
    "cut.writing",
    "block.before_rename",
    "cut.after_block",
    "cut.before_truncate",
    "checkpoint.before_rename",
    "checkpoint.after_rename",
    "checkpoint.removing_segments",
    "compact.writing",
    "compact.after_block",
    "block.deleting",
    "compact.deleting_parents",
    "snapshot.writing",
    "snapshot.before_rename",
];

fn value(series: usize, i: usize) -> f64 {
    (series * 100_000 + i) as f64 * 0.25
}

fn time_ms(i: usize) -> i64 {
    T0 + i as i64 * STEP_MS
}

/// Writes samples `from..to` of every series; each request must be acknowledged.
fn write_round(api: &Api, from: usize, to: usize) {
    let names: Vec<String> = (0..SERIES).map(|s| s.to_string()).collect();
    for start in (from..to).step_by(PER_REQUEST) {
        let end = (start + PER_REQUEST).min(to);
        let series: Vec<_> = (0..SERIES)
            .map(|s| {
                let samples = (start..end).map(|i| (time_ms(i), value(s, i))).collect();
                (vec![("__name__", "crash_test"), ("series", names[s].as_str())], samples)
            })
            .collect();
        let reply = api.remote_write(encode_write(&series));
        assert_eq!(reply.status, 204, "samples {start}..{end}: {}", reply.body);
    }
}

/// Every stored sample of `crash_test` as series label → (ms, value).
fn stored(api: &Api, written: usize) -> BTreeMap<String, Vec<(i64, f64)>> {
    let at = time_ms(written) as f64 / 1000.0;
    let window = format!("crash_test[{}s]", written as i64 * STEP_MS / 1000 + 1);
    let by_series = vigil_tests::points_by_label(&api.query(&window, at), "series");
    let in_ms =
        |points: Vec<(f64, f64)>| points.into_iter().map(|(t, v)| ((t * 1000.0).round() as i64, v)).collect();
    by_series.into_iter().map(|(name, points)| (name, in_ms(points))).collect()
}

fn expected(written: usize) -> BTreeMap<String, Vec<(i64, f64)>> {
    (0..SERIES).map(|s| (s.to_string(), (0..written).map(|i| (time_ms(i), value(s, i))).collect())).collect()
}

/// Per series, how `got` differs from `want`: missing or extra series, sample counts and
/// the first differing sample.
fn differences(
    got: &BTreeMap<String, Vec<(i64, f64)>>,
    want: &BTreeMap<String, Vec<(i64, f64)>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, w) in want {
        let Some(g) = got.get(name) else {
            out.push(format!("series {name} missing"));
            continue;
        };
        if g != w {
            let first = g.iter().zip(w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
            out.push(format!(
                "series {name}: {} samples, want {}; first difference at {first}: got {:?}, want {:?}",
                g.len(),
                w.len(),
                g.get(first),
                w.get(first)
            ));
        }
    }
    out.extend(got.keys().filter(|k| !want.contains_key(*k)).map(|k| format!("unexpected series {k}")));
    out
}

/// Waits until the log says maintenance stopped at `step`.
fn wait_for_pause(vigil: &Vigil, step: &str) {
    let marker = format!("{PAUSED_MARKER}{step}");
    let deadline = Instant::now() + PAUSE_WAIT;
    while !vigil.log().lines().any(|l| l == marker) {
        assert!(Instant::now() < deadline, "maintenance never reached {step}; log: {}", vigil.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Entries of `blocks/` that are not finished blocks (temporary or half-deleted ones).
fn leftovers(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("blocks"))
        .expect("list blocks")
        .filter_map(|e| e.ok())
        .filter(|e| !e.path().join("meta.json").exists() || e.file_name().to_string_lossy().contains('.'))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The blocks on disk tile time without overlaps, and together hold each written
/// sample before the newest block's end exactly once (by their `meta.json` counts).
fn assert_blocks_hold_each_sample_once(data: &Path, written: usize) {
    let mut ranges: Vec<(i64, i64, u64)> = std::fs::read_dir(data.join("blocks"))
        .expect("list blocks")
        .filter_map(|e| e.ok())
        .map(|e| {
            let bytes = std::fs::read(e.path().join("meta.json")).expect("read meta.json");
            let meta: serde_json::Value = serde_json::from_slice(&bytes).expect("parse meta.json");
            let field = |v: &serde_json::Value| v.as_i64().expect("integer field");
            let samples = meta["stats"]["numSamples"].as_u64().expect("numSamples");
            (field(&meta["minTime"]), field(&meta["maxTime"]), samples)
        })
        .collect();
    ranges.sort();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping blocks: {pair:?}");
    }
    let Some(&(_, end, _)) = ranges.last() else { return };
    let want = SERIES as u64 * (0..written).filter(|&i| time_ms(i) < end).count() as u64;
    let have: u64 = ranges.iter().map(|r| r.2).sum();
    assert_eq!(have, want, "samples in blocks {ranges:?}");
}

#[test]
fn kill_9_during_block_writing_checkpointing_and_compaction_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let config = dir.path().join("vigil.yml");
    std::fs::write(&config, CONFIG).expect("write config");
    let config_arg = format!("--config.file={}", config.display());
    let args = [BLOCK_RANGE, config_arg.as_str()];

    let mut written = 0;
    for round in 0..STEPS.len() * CRASHES_PER_STEP {
        let step = STEPS[round % STEPS.len()];
        let vigil = Vigil::start_with_env(&data, &args, &[(PAUSE_ENV, step)]);
        write_round(&vigil.api(), written, written + PER_ROUND);
        written += PER_ROUND;
        wait_for_pause(&vigil, step);
        vigil.kill9();
        if step == "cut.writing" || step == "compact.writing" {
            let unfinished = leftovers(&data);
            assert!(unfinished.iter().any(|n| n.ends_with(".tmp")), "{step}: no block half-written");
        }

        let vigil = Vigil::start_with_args(&data, &args);
        let differences = differences(&stored(&vigil.api(), written), &expected(written));
        assert!(differences.is_empty(), "round {round}, after a kill -9 at {step}: {differences:?}");
        // After a graceful stop (which finishes the maintenance pass in progress), so that
        // a block being written right now is not taken for a leftover.
        assert!(vigil.terminate(), "round {round}: graceful stop failed");
        assert_eq!(leftovers(&data), Vec::<String>::new(), "round {round}, after a kill -9 at {step}");
        assert_blocks_hold_each_sample_once(&data, written);
    }
    let blocks = std::fs::read_dir(data.join("blocks")).expect("list blocks").count();
    assert!(blocks > 0, "no blocks were ever written");
}
