//! Expansion checked against the outputs Prometheus documents and tests for its
//! template functions.

use std::collections::BTreeMap;

use super::*;

struct FakeQuerier;

impl Querier for FakeQuerier {
    fn query(&self, q: &str, _: i64) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        let row = |inst: &str, v: f64| {
            let mut l = BTreeMap::new();
            l.insert("__name__".to_string(), "up".to_string());
            l.insert("instance".to_string(), inst.to_string());
            (l, v)
        };
        match q {
            "up" => Ok(vec![row("b", 1.0), row("a", 11.0)]),
            "none" => Ok(vec![]),
            _ => Err(format!("bad query {q}")),
        }
    }
}

fn data() -> TemplateData {
    let mut labels = BTreeMap::new();
    labels.insert("instance".into(), "host1.example.com:9100".into());
    labels.insert("job".into(), "node".into());
    let mut ext = BTreeMap::new();
    ext.insert("region".into(), "eu".into());
    TemplateData {
        labels,
        external_labels: ext,
        external_url: "http://vigil:9090/prefix".into(),
        value: 0.0123,
        eval_time_ms: 0,
    }
}

fn run(text: &str) -> String {
    Template::parse("test", text).expect("parse").try_expand(&data(), &FakeQuerier).expect("expand")
}

fn run_err(text: &str) -> String {
    Template::parse("test", text).expect("parse").try_expand(&data(), &FakeQuerier).expect_err("error")
}

#[test]
fn labels_value_and_external_labels() {
    assert_eq!(
        run("{{ $labels.job }} on {{ $labels.instance }}: {{ $value }}"),
        "node on host1.example.com:9100: 0.0123"
    );
    assert_eq!(
        run("{{ .Labels.job }}/{{ $externalLabels.region }}/{{ $externalURL }}"),
        "node/eu/http://vigil:9090/prefix"
    );
    // Prometheus runs templates with missingkey=zero: a missing label is "".
    assert_eq!(run("[{{ $labels.missing }}|{{ index $labels \"missing\" }}]"), "[|]");
    assert_eq!(run("[{{ $args := args 1 }}{{ $args.arg5 }}]"), "[<no value>]");
}

#[test]
fn humanize_family_matches_prometheus_tests() {
    // Prometheus template_test.go: humanize over 0, 1, 1234567, .12 and others.
    let cases: [(f64, &str); 6] = [
        (0.0, "0"),
        (1.0, "1"),
        (1234567.0, "1.235M"),
        (0.12, "120m"),
        (-1234567.0, "-1.235M"),
        (0.000012, "12u"),
    ];
    for (v, want) in cases {
        assert_eq!(humanize(v), want, "humanize {v}");
    }
    for (v, want) in [(0.0, "0"), (1.0, "1"), (1048576.0, "1Mi"), (0.12, "0.12"), (-1048576.0, "-1Mi")] {
        assert_eq!(humanize1024(v), want, "humanize1024 {v}");
    }
    let durations: [(f64, &str); 15] = [
        (0.0, "0s"),
        (1.0, "1s"),
        (60.0, "1m 0s"),
        (3600.0, "1h 0m 0s"),
        (86400.0, "1d 0h 0m 0s"),
        (86400.0 + 3600.0, "1d 1h 0m 0s"),
        (-(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0), "-2d 3h 4m 5s"),
        (899.99, "14m 59s"),
        (0.1, "100ms"),
        (0.0001, "100us"),
        (0.12345, "123.5ms"),
        (60.1, "1m 0s"),
        (60.5, "1m 0s"),
        (1.2345, "1.234s"),
        (12.345, "12.35s"),
    ];
    for (v, want) in durations {
        assert_eq!(humanize_duration(v), want, "humanizeDuration {v}");
    }
    assert_eq!(run("{{ 0.1234567 | humanizePercentage }}|{{ humanizePercentage 1.2 }}"), "12.35%|120%");
    assert_eq!(run("{{ 1435065584.128 | humanizeTimestamp }}"), "2015-06-23 13:19:44.128 +0000 UTC");
    assert_eq!(run("{{ humanizeTimestamp 0 }}"), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(run("{{ \"1234567\" | humanize }}"), "1.235M");
    assert_eq!(run("{{ humanize $value }}"), "12.3m");
}

#[test]
fn string_functions() {
    assert_eq!(
        run("{{ \"aa bb CC\" | title }}|{{ toUpper \"aBc\" }}|{{ toLower \"aBc\" }}"),
        "Aa Bb CC|ABC|abc"
    );
    assert_eq!(run("{{ match \"a+\" \"aaa\" }} {{ match \"^b\" \"ab\" }}"), "true false");
    assert_eq!(run("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}"), "xa");
    assert_eq!(run("{{ reReplaceAll \":.*\" \"\" $labels.instance }}"), "host1.example.com");
    assert_eq!(
        run("{{ stripPort \"foo.com:12345\" }}|{{ stripPort \"[::1]:12345\" }}|{{ stripPort \"foo.com\" }}"),
        "foo.com|::1|foo.com"
    );
    assert_eq!(
        run("{{ stripDomain \"foo.example.com:12345\" }}|{{ stripDomain \"127.0.0.1:1\" }}"),
        "foo:12345|127.0.0.1:1"
    );
    assert_eq!(run("{{ safeHtml \"<b>\" }}"), "<b>");
    assert_eq!(run("{{ tableLink \"up == 0\" }}"), "/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    assert_eq!(run("{{ pathPrefix }}"), "/prefix");
    assert_eq!(run("{{ parseDuration \"1m30s\" }}"), "90");
}

#[test]
fn printf_and_builtins() {
    assert_eq!(run("{{ printf \"%.2f\" $value }}"), "0.01");
    assert_eq!(run("{{ printf \"%q\" $labels.job }}"), "\"node\"");
    assert_eq!(run("{{ $value | printf \"%.1f%%\" }}"), "0.0%");
    assert_eq!(run("{{ len $labels }} {{ index $labels \"job\" }}"), "2 node");
    assert_eq!(run("{{ if and (eq $labels.job \"node\") (gt $value 0.01) }}yes{{ end }}"), "yes");
    assert_eq!(run("{{ or \"\" \"fallback\" }} {{ not true }}"), "fallback false");
    assert!(run_err("{{ gt $value 1 }}").contains("incompatible types for comparison"));
    assert_eq!(run("{{ print 1 2 \"a\" 3 }}"), "1 2a3");
}

#[test]
fn control_structures_and_variables() {
    assert_eq!(
        run("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"),
        "instance=host1.example.com:9100;job=node;"
    );
    assert_eq!(run("{{ range $labels }}{{ . }},{{ end }}"), "host1.example.com:9100,node,");
    assert_eq!(run("{{ range $x := query \"none\" }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(
        run("{{ if eq $labels.job \"x\" }}a{{ else if eq $labels.job \"node\" }}b{{ else }}c{{ end }}"),
        "b"
    );
    assert_eq!(run("{{ with $labels.job }}job={{ . }}{{ else }}none{{ end }}"), "job=node");
    assert_eq!(run("{{ $x := \"a\" }}{{ if true }}{{ $x = \"b\" }}{{ end }}{{ $x }}"), "b");
    assert_eq!(run("a  {{- \" b \" -}}  c\n"), "a b c\n");
    assert_eq!(
        run("{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" $labels.job }}{{ tmpl \"t\" 1 }}"),
        "[node][1]"
    );
    assert_eq!(run("{{ $args := args 1 \"x\" }}{{ $args.arg1 }}"), "x");
}

#[test]
fn query_functions() {
    assert_eq!(run("{{ query \"up\" | first | value }}"), "1");
    assert_eq!(run("{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}"), "b");
    assert_eq!(
        run(
            "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}"
        ),
        "a:11 b:1 "
    );
    assert_eq!(run("{{ with query \"none\" }}x{{ else }}no data{{ end }}"), "no data");
    assert!(run_err("{{ query \"none\" | first }}").contains("first() called on vector with no elements"));
}

#[test]
fn unsupported_constructs_fail_at_parse_time() {
    for bad in [
        "{{ nosuch }}",
        "{{ block \"x\" . }}{{ end }}",
        "{{ range $labels }}{{ break }}{{ end }}",
        "{{ if }",
        "{{ end }}",
        "{{ $undefined }}",
        "{{ if true }}x",
    ] {
        assert!(Template::parse("t", bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn expansion_errors_become_the_text() {
    // Outputs of Prometheus 3.5 (promtool test rules) for the same templates.
    let cases = [
        (
            r#"{{ humanize "abc" }}"#,
            r#"<error expanding template: error executing template __alert_X: template: __alert_X:1:115: executing "__alert_X" at <humanize "abc">: error calling humanize: strconv.ParseFloat: parsing "abc": invalid syntax>"#,
        ),
        (
            "line1\n  {{ $labels.job | printf \"%s\" | humanize }}",
            r#"<error expanding template: error executing template __alert_X: template: __alert_X:2:33: executing "__alert_X" at <humanize>: error calling humanize: strconv.ParseFloat: parsing "node": invalid syntax>"#,
        ),
        (
            r#"{{ query "up" | first | label "job" }} {{ query "none" | first }}"#,
            r#"<error expanding template: error executing template __alert_X: template: __alert_X:1:169: executing "__alert_X" at <first>: error calling first: first() called on vector with no elements>"#,
        ),
    ];
    for (text, want) in cases {
        let t = Template::parse("__alert_X", text).expect("parse");
        assert_eq!(t.expand(&data(), &FakeQuerier), want);
    }
}
