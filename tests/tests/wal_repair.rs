//! A WAL whose last segment was cut short (a torn write at a crash): the real binary
//! starts, says so in its log, serves every commit before the damaged one, and keeps
//! accepting and keeping writes.

use std::path::{Path, PathBuf};

use vigil_tests::{Api, Vigil, encode_write};

const T0: i64 = 1_700_000_000_000;
const REQUESTS: usize = 10;
/// Bytes cut from the end of the last segment: inside the last record.
const TORN_BYTES: u64 = 5;

fn write_sample(api: &Api, i: usize) {
    let series = vec![(vec![("__name__", "wal_test")], vec![(T0 + i as i64 * 1000, i as f64)])];
    let reply = api.remote_write(encode_write(&series));
    assert_eq!(reply.status, 204, "request {i}: {}", reply.body);
}

/// The values of `wal_test` stored up to request `n`.
fn stored(api: &Api, n: usize) -> Vec<f64> {
    let at = (T0 + n as i64 * 1000) as f64 / 1000.0;
    let data = api.query(&format!("wal_test[{}s]", n + 1), at);
    data["result"][0]["values"]
        .as_array()
        .map(|vs| vs.iter().map(|p| p[1].as_str().expect("v").parse().expect("float")).collect())
        .unwrap_or_default()
}

/// The newest non-empty WAL segment.
fn last_segment(data: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .expect("list wal")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.metadata().map(|m| m.len() > 0).unwrap_or(false))
        .collect();
    segments.sort();
    segments.pop().expect("a WAL segment with data")
}

#[test]
fn a_torn_last_wal_segment_is_cut_and_the_rest_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let vigil = Vigil::start(&data);
    for i in 0..REQUESTS {
        write_sample(&vigil.api(), i);
    }
    vigil.kill9();

    let segment = last_segment(&data);
    let len = segment.metadata().expect("segment size").len();
    let file = std::fs::OpenOptions::new().write(true).open(&segment).expect("open segment");
    file.set_len(len - TORN_BYTES).expect("truncate segment");
    drop(file);

    let vigil = Vigil::start(&data);
    let want: Vec<f64> = (0..REQUESTS - 1).map(|i| i as f64).collect();
    assert_eq!(stored(&vigil.api(), REQUESTS), want, "every commit before the torn one");
    assert!(vigil.log().contains("damaged WAL record"), "no word of the repair in the log: {}", vigil.log());
    for i in REQUESTS..2 * REQUESTS {
        write_sample(&vigil.api(), i);
    }
    vigil.kill9();

    let vigil = Vigil::start(&data);
    let want: Vec<f64> = (0..2 * REQUESTS).filter(|&i| i != REQUESTS - 1).map(|i| i as f64).collect();
    assert_eq!(stored(&vigil.api(), 2 * REQUESTS), want, "writes after the repair survive a crash");
}
