//! Every acknowledged sample survives `kill -9` and a restart.

use std::collections::BTreeMap;

use vigil_tests::{Vigil, encode_write};

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 20;
const REQUESTS: usize = 40;
const SAMPLES_PER_REQUEST: usize = 5;
const STEP_MS: i64 = 1_000;

fn value(series: usize, i: usize) -> f64 {
    // Mixes integers and fractions so both value encodings are exercised.
    (series * 1000 + i) as f64 + if i.is_multiple_of(3) { 0.25 } else { 0.0 }
}

#[test]
fn acknowledged_samples_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let vigil = Vigil::start(&data);
    let api = vigil.api();
    let names: Vec<String> = (0..SERIES).map(|s| s.to_string()).collect();
    for r in 0..REQUESTS {
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
    vigil.kill9();

    let vigil = Vigil::start(&data);
    let total = REQUESTS * SAMPLES_PER_REQUEST;
    let at = (T0 + total as i64 * STEP_MS) as f64 / 1000.0;
    let window = format!("crash_test[{}s]", total as i64 * STEP_MS / 1000 + 1);
    let data = vigil.api().query(&window, at);
    let mut got: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in data["result"].as_array().expect("matrix result") {
        let points = s["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p| (p[0].as_f64().expect("ts"), p[1].as_str().expect("v").parse::<f64>().expect("float")))
            .collect();
        got.insert(s["metric"]["series"].as_str().expect("series label").to_string(), points);
    }
    assert_eq!(got.len(), SERIES, "series after restart: {:?}", got.keys());
    for s in 0..SERIES {
        let want: Vec<(f64, f64)> =
            (0..total).map(|i| ((T0 + i as i64 * STEP_MS) as f64 / 1000.0, value(s, i))).collect();
        assert_eq!(got[&s.to_string()], want, "series {s}");
    }
    assert!(vigil.log().contains("replay"), "the restart should log its WAL replay: {}", vigil.log());
}
