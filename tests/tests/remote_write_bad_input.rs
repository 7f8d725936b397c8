//! Bad remote-write bodies get a 400 with a reason and change nothing in the store.

use vigil_tests::{Api, Vigil, encode_write};

const T0: i64 = 1_700_000_000_000;

fn snapshot(api: &Api) -> (String, String) {
    let series = api.get("/api/v1/series", &[("match[]", r#"{__name__=~".+"}"#)]);
    assert_eq!(series.status, 200, "{}", series.body);
    let t = ((T0 + 600_000) / 1000).to_string();
    let q = api.get("/api/v1/query", &[("query", "{__name__=~\".+\"}[1h]"), ("time", &t)]);
    assert_eq!(q.status, 200, "{}", q.body);
    (series.body, q.body)
}

#[test]
fn bad_bodies_are_refused_with_a_reason_and_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start(&dir.path().join("data"));
    let api = vigil.api();

    let good = encode_write(&[(
        vec![("__name__", "good_metric"), ("job", "a")],
        vec![(T0, 1.0), (T0 + 15_000, 2.0)],
    )]);
    assert_eq!(api.remote_write(good).status, 204);
    let before = snapshot(&api);
    assert!(before.0.contains("good_metric"), "{}", before.0);

    let garbage_protobuf = snap::raw::Encoder::new().compress_vec(&[0xff; 64]).expect("compress");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed protobuf", garbage_protobuf),
        ("bad snappy", b"this is not snappy at all".to_vec()),
        (
            "duplicate label name",
            encode_write(&[(vec![("__name__", "bad_metric"), ("job", "a"), ("job", "b")], vec![(T0, 1.0)])]),
        ),
        ("empty label name", encode_write(&[(vec![("__name__", "bad_metric"), ("", "x")], vec![(T0, 1.0)])])),
    ];
    for (what, body) in cases {
        let r = api.remote_write(body);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert!(!r.body.trim().is_empty(), "{what}: a 400 must say why");
    }
    assert_eq!(snapshot(&api), before, "a refused request changed the store");
}

#[test]
fn partial_rejection_writes_the_rest_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vigil = Vigil::start(&dir.path().join("data"));
    let api = vigil.api();
    let first = encode_write(&[(vec![("__name__", "m"), ("i", "1")], vec![(T0 + 60_000, 1.0)])]);
    assert_eq!(api.remote_write(first).status, 204);

    let mixed = encode_write(&[
        (vec![("__name__", "m"), ("i", "1")], vec![(T0, 5.0)]),
        (vec![("__name__", "m"), ("i", "2")], vec![(T0, 7.0)]),
    ]);
    let r = api.remote_write(mixed);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("out of order"), "{}", r.body);

    let t = ((T0 + 60_000) / 1000).to_string();
    let q = api.get("/api/v1/query", &[("query", "m"), ("time", &t)]).json();
    let result = q["data"]["result"].as_array().expect("vector").clone();
    assert_eq!(result.len(), 2, "{q}");
}
