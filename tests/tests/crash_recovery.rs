//! Every acknowledged sample survives `kill -9` and a restart, also after a graceful
//! stop wrote a head snapshot and more writes followed it.

use std::ops::Range;
use std::path::Path;

use vigil_tests::{Api, Vigil, encode_write};

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 20;
const REQUESTS: usize = 40;
const SAMPLES_PER_REQUEST: usize = 5;
const STEP_MS: i64 = 1_000;

fn value(series: usize, i: usize) -> f64 {
    // Mixes integers and fractions so both value encodings are exercised.
    (series * 1000 + i) as f64 + if i.is_multiple_of(3) { 0.25 } else { 0.0 }
}

/// Sends remote-write requests `requests`, each with the next samples of every series,
/// and checks that each was acknowledged.
fn write_requests(api: &Api, requests: Range<usize>) {
    let names: Vec<String> = (0..SERIES).map(|s| s.to_string()).collect();
    for r in requests {
        let series: Vec<_> = (0..SERIES)
            .map(|s| {
                let samples = (0..SAMPLES_PER_REQUEST)
                    .map(|k| {
                        let i = r * SAMPLES_PER_REQUEST + k;
                        (T0 + i as i64 * STEP_MS, value(s, i))
                    })
                    .collect();
                (vec![("__name__", "crash_test"), ("series", names[s].as_str())], samples)
            })
            .collect();
        let reply = api.remote_write(encode_write(&series));
        assert_eq!(reply.status, 204, "request {r}: {}", reply.body);
    }
}

/// Checks that the first `requests` requests' samples are all there, once each.
fn assert_all_there(vigil: &Vigil, requests: usize) {
    let total = requests * SAMPLES_PER_REQUEST;
    let at = (T0 + total as i64 * STEP_MS) as f64 / 1000.0;
    let window = format!("crash_test[{}s]", total as i64 * STEP_MS / 1000 + 1);
    let data = vigil.api().query(&window, at);
    let got = vigil_tests::points_by_label(&data, "series");
    assert_eq!(got.len(), SERIES, "series after restart: {:?}", got.keys());
    for s in 0..SERIES {
        let want: Vec<(f64, f64)> =
            (0..total).map(|i| ((T0 + i as i64 * STEP_MS) as f64 / 1000.0, value(s, i))).collect();
        assert_eq!(got[&s.to_string()], want, "series {s}");
    }
    // The head holds each sample once: its count is exactly what was acknowledged.
    let samples = format!("replayed_samples={}", SERIES * total);
    assert!(vigil.log().contains(&samples), "expected {samples} in the log: {}", vigil.log());
}

fn log_of(data: &Path) -> String {
    std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
}

#[test]
fn acknowledged_samples_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let vigil = Vigil::start(&data);
    write_requests(&vigil.api(), 0..REQUESTS);
    vigil.kill9();

    let vigil = Vigil::start(&data);
    assert_all_there(&vigil, REQUESTS);
    assert!(vigil.log().contains("replay"), "the restart should log its WAL replay: {}", vigil.log());
    assert!(vigil.log().contains("from_snapshot=false"), "a crash leaves no head snapshot: {}", vigil.log());
}

#[test]
fn writes_after_a_graceful_stop_survive_kill_9_once_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let vigil = Vigil::start(&data);
    write_requests(&vigil.api(), 0..REQUESTS / 2);
    assert!(vigil.terminate(), "graceful stop: {}", log_of(&data));
    assert!(log_of(&data).contains("head snapshot written"), "{}", log_of(&data));

    let vigil = Vigil::start(&data);
    assert!(vigil.log().contains("from_snapshot=true"), "the head snapshot is loaded: {}", vigil.log());
    assert_all_there(&vigil, REQUESTS / 2);
    write_requests(&vigil.api(), REQUESTS / 2..REQUESTS);
    vigil.kill9();

    // The snapshot plus the WAL written after it: every sample, none twice.
    let vigil = Vigil::start(&data);
    assert!(vigil.log().contains("from_snapshot=true"), "{}", vigil.log());
    assert_all_there(&vigil, REQUESTS);
    assert!(vigil.terminate(), "graceful stop");
    let vigil = Vigil::start(&data);
    assert_all_there(&vigil, REQUESTS);
}
