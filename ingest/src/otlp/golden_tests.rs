//! Golden requests: OTLP/JSON files in `testdata/otlp/` with the series, timestamps
//! and values each must produce (`NAME.expected`), written from Prometheus's documented
//! translation rules; and the same requests as protobuf (`NAME.pb`), which must decode
//! to the same message. Regenerate the `.pb` files with `VIGIL_BLESS=1`.

use super::*;
use vigil_storage::is_stale_nan;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/otlp");
const GOLDEN: &[&str] = &["basic", "refused"];

/// `labels t value` per sample, sorted, as the `.expected` files write them.
fn lines(t: &Translated) -> Vec<String> {
    let mut out: Vec<String> = t
        .series
        .iter()
        .flat_map(|s| {
            s.samples.iter().map(move |x| {
                let v = if is_stale_nan(x.v) { "StaleNaN".to_owned() } else { format_float(x.v) };
                format!("{} {} {v}", s.labels, x.t)
            })
        })
        .collect();
    out.sort();
    out
}

fn expected(name: &str) -> (Vec<String>, u64) {
    let text = std::fs::read_to_string(format!("{DIR}/{name}.expected")).expect("expected file");
    let rejected = text
        .lines()
        .find_map(|l| l.strip_prefix("# rejected "))
        .map(|n| n.trim().parse().expect("count"))
        .unwrap_or(0);
    let mut series: Vec<String> =
        text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_owned).collect();
    series.sort();
    (series, rejected)
}

#[test]
fn golden_json_requests_translate_to_the_expected_series() {
    for name in GOLDEN {
        let body = std::fs::read(format!("{DIR}/{name}.json")).expect("golden request");
        let req = decode_request(&body, Encoding::Json).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = translate(&req, &OtlpOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (want, rejected) = expected(name);
        assert_eq!(lines(&got), want, "{name}");
        assert_eq!(got.rejected_points, rejected, "{name}: {:?}", got.messages);
    }
}

#[test]
fn golden_protobuf_requests_decode_like_their_json() {
    for name in GOLDEN {
        let json = std::fs::read(format!("{DIR}/{name}.json")).expect("golden request");
        let req = decode_request(&json, Encoding::Json).expect("json");
        let path = format!("{DIR}/{name}.pb");
        if std::env::var_os("VIGIL_BLESS").is_some() {
            std::fs::write(&path, encode_request(&req, Encoding::Protobuf)).expect("write golden pb");
        }
        let pb = std::fs::read(&path).expect("golden pb");
        assert_eq!(decode_request(&pb, Encoding::Protobuf).expect("protobuf"), req, "{name}");
    }
}

#[test]
fn refusals_say_why() {
    let body = std::fs::read(format!("{DIR}/refused.json")).expect("golden request");
    let req = decode_request(&body, Encoding::Json).expect("json");
    let got = translate(&req, &OtlpOptions::default()).expect("translate");
    let all = got.messages.join("\n");
    assert!(all.contains("invalid temporality and type combination for metric \"jobs.done\""), "{all}");
    assert!(all.contains("exponential histogram \"latency\" refused"), "{all}");
}
