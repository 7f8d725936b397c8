//! Turns a decoded remote-write 2.0 request into storage appends.
//!
//! Everything structural is checked before the first append: symbol references, label
//! sets, metadata and exemplar references. Any error there refuses the whole request
//! (400, nothing written), so a sender never has half a request stored under a 4xx it
//! will not retry. What is left to refuse per sample is decided by storage at commit
//! (out of order, duplicate) and by what Vigil cannot store yet (native histograms),
//! all counted in the [`WriteReport`].

use std::collections::HashSet;

use thiserror::Error;
use vigil_storage::{Appendable, Label, Labels, MetricMetadata, StorageError};

use super::proto::MetricType;
use super::proto_v2::{Request, TimeSeries};
use super::validate::{Limits, validate_pairs};
use super::write::WriteReport;
use crate::exemplars::{Exemplar, ExemplarStore};

/// How remote write 2.0 is taken in.
#[derive(Debug, Clone, Default)]
pub struct V2Options {
    /// Per-series label limits.
    pub limits: Limits,
    /// Append a zero sample at each sample's start timestamp, as Prometheus's
    /// `created-timestamp-zero-ingestion` feature does, so `rate()` sees counter resets.
    pub created_timestamp_zero_ingestion: bool,
}

/// Why a remote-write 2.0 request was refused or failed.
#[derive(Debug, Error)]
pub enum V2Error {
    /// The request is malformed; nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed; the sender should retry.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One series after every reference was resolved and its labels validated.
struct Resolved<'a> {
    labels: Labels,
    ts: &'a TimeSeries,
    exemplars: Vec<Exemplar>,
}

/// The symbol at `r`, or an error naming where the bad reference was.
fn symbol(symbols: &[String], r: u32, what: impl Fn() -> String) -> Result<&str, V2Error> {
    symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
        V2Error::Invalid(format!(
            "invalid symbol reference {r} in {} (the symbols table has {} entries)",
            what(),
            symbols.len()
        ))
    })
}

/// Resolves a `labels_refs` list into label pairs.
fn resolve_refs(symbols: &[String], refs: &[u32], what: &dyn Fn() -> String) -> Result<Vec<Label>, V2Error> {
    if !refs.len().is_multiple_of(2) {
        return Err(V2Error::Invalid(format!(
            "odd number of label references ({}) in {}: they must be name/value pairs",
            refs.len(),
            what()
        )));
    }
    refs.chunks_exact(2)
        .map(|pair| {
            let name = symbol(symbols, pair[0], what)?;
            let value = symbol(symbols, pair[1], what)?;
            Ok(Label { name: name.to_owned(), value: value.to_owned() })
        })
        .collect()
}

/// The metric family a series belongs to: histogram and summary series carry their
/// `_bucket`/`_sum`/`_count` suffix, the family name does not.
fn family_name(name: &str, kind: vigil_storage::MetricType) -> &str {
    use vigil_storage::MetricType as T;
    let suffixes: &[&str] = match kind {
        T::Histogram | T::GaugeHistogram => &["_bucket", "_sum", "_count"],
        T::Summary => &["_sum", "_count"],
        _ => &[],
    };
    suffixes.iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

/// Checks the whole request, then appends it: start-timestamp zero samples (when
/// enabled) in a first batch whose refusals are ignored, as Prometheus ignores them,
/// then the samples and metadata in one batch, then the exemplars.
pub fn write_v2(
    store: &dyn Appendable,
    exemplars: &ExemplarStore,
    req: Request,
    opts: &V2Options,
) -> Result<WriteReport, V2Error> {
    let symbols = &req.symbols;
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(V2Error::Invalid(format!("symbols[0] must be the empty string, got {:?}", symbols[0])));
    }
    let mut resolved = Vec::with_capacity(req.timeseries.len());
    for (i, ts) in req.timeseries.iter().enumerate() {
        let what = || format!("series #{i}");
        let pairs = resolve_refs(symbols, &ts.labels_refs, &what)?;
        let labels =
            validate_pairs(pairs, &opts.limits).map_err(|e| V2Error::Invalid(format!("series #{i}: {e}")))?;
        if !ts.samples.is_empty() && !ts.histograms.is_empty() {
            return Err(V2Error::Invalid(format!(
                "series {labels} has both samples and histograms; a series must carry one kind"
            )));
        }
        if let Some(md) = &ts.metadata {
            symbol(symbols, md.help_ref, || format!("the help of series {labels}"))?;
            symbol(symbols, md.unit_ref, || format!("the unit of series {labels}"))?;
        }
        let mut exs = Vec::with_capacity(ts.exemplars.len());
        for ex in &ts.exemplars {
            let what = || format!("an exemplar of series {labels}");
            let pairs = resolve_refs(symbols, &ex.labels_refs, &what)?;
            if pairs.iter().any(|p| p.name.is_empty()) {
                return Err(V2Error::Invalid(format!("{}: empty label name", what())));
            }
            let mut pairs: Vec<Label> = pairs.into_iter().filter(|p| !p.value.is_empty()).collect();
            pairs.sort();
            exs.push(Exemplar {
                labels: Labels::from_sorted_unchecked(pairs),
                value: ex.value,
                t: ex.timestamp,
            });
        }
        resolved.push(Resolved { labels, ts, exemplars: exs });
    }

    if opts.created_timestamp_zero_ingestion {
        let mut app = store.appender();
        for r in &resolved {
            let mut last_start = 0;
            for s in &r.ts.samples {
                let start = if s.start_timestamp != 0 { s.start_timestamp } else { r.ts.created_timestamp };
                if start != 0 && start < s.timestamp && start != last_start {
                    app.append(&r.labels, start, 0.0);
                    last_start = start;
                }
            }
        }
        // Refusals (out of order, duplicate) mean the series already has data there.
        app.commit()?;
    }

    let mut report = WriteReport::default();
    let mut app = store.appender();
    let mut families = HashSet::new();
    for r in &resolved {
        for s in &r.ts.samples {
            app.append(&r.labels, s.timestamp, s.value);
        }
        if !r.ts.histograms.is_empty() {
            report.histograms_rejected += r.ts.histograms.len() as u64;
            report.note(|| {
                format!(
                    "native histograms are not supported by Vigil yet (series {}); \
                     send classic histograms or disable send_native_histograms",
                    r.labels
                )
            });
        }
        if let Some(md) = &r.ts.metadata {
            let kind = MetricType::to_storage(md.r#type);
            let help = symbols.get(md.help_ref as usize).map(String::as_str).unwrap_or("");
            let unit = symbols.get(md.unit_ref as usize).map(String::as_str).unwrap_or("");
            let name = r.labels.metric_name().unwrap_or("");
            let family = family_name(name, kind);
            let unspecified =
                kind == vigil_storage::MetricType::Unknown && help.is_empty() && unit.is_empty();
            if !unspecified && families.insert(family) {
                let meta = MetricMetadata { kind, help: help.to_owned(), unit: unit.to_owned() };
                app.update_metadata(family, meta);
                report.metadata_written += 1;
            }
        }
    }
    let outcome = app.commit()?;
    report.samples_written = outcome.appended;
    report.out_of_order = outcome.out_of_order;
    report.duplicate = outcome.duplicate;
    if let Some((labels, t, err)) = &outcome.first_error {
        report.note(|| format!("{err} for series {labels} at timestamp {t}"));
    }
    for r in resolved {
        for ex in r.exemplars {
            match exemplars.add(&r.labels, ex) {
                Ok(()) => report.exemplars_written += 1,
                // Exemplar refusals do not fail the write, as in Prometheus.
                Err(_) => report.exemplars_ignored += 1,
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::proto_v2::{Exemplar as WireExemplar, Histogram, Metadata, Sample};
    use vigil_storage::memory::MemStorage;
    use vigil_storage::{Matcher, Querier, SelectHints};

    /// Builds a request from readable series, interning strings as senders do.
    struct Builder {
        req: Request,
    }

    impl Builder {
        fn new() -> Self {
            Builder { req: Request { symbols: vec![String::new()], timeseries: vec![] } }
        }

        fn sym(&mut self, s: &str) -> u32 {
            if let Some(i) = self.req.symbols.iter().position(|x| x == s) {
                return i as u32;
            }
            self.req.symbols.push(s.to_owned());
            (self.req.symbols.len() - 1) as u32
        }

        fn refs(&mut self, labels: &[(&str, &str)]) -> Vec<u32> {
            labels.iter().flat_map(|(n, v)| [self.sym(n), self.sym(v)]).collect()
        }

        fn series(mut self, labels: &[(&str, &str)], samples: &[(i64, f64, i64)]) -> Self {
            let labels_refs = self.refs(labels);
            let samples = samples
                .iter()
                .map(|&(timestamp, value, start_timestamp)| Sample { value, timestamp, start_timestamp })
                .collect();
            self.req.timeseries.push(TimeSeries { labels_refs, samples, ..Default::default() });
            self
        }

        fn metadata(mut self, kind: MetricType, help: &str, unit: &str) -> Self {
            let (help_ref, unit_ref) = (self.sym(help), self.sym(unit));
            if let Some(ts) = self.req.timeseries.last_mut() {
                ts.metadata = Some(Metadata { r#type: kind as i32, help_ref, unit_ref });
            }
            self
        }

        fn exemplar(mut self, labels: &[(&str, &str)], value: f64, timestamp: i64) -> Self {
            let labels_refs = self.refs(labels);
            if let Some(ts) = self.req.timeseries.last_mut() {
                ts.exemplars.push(WireExemplar { labels_refs, value, timestamp });
            }
            self
        }
    }

    fn stored(store: &MemStorage, name: &str) -> Vec<(i64, f64)> {
        let series = store.matching(&[Matcher::equal("__name__", name)]);
        series.into_iter().flat_map(|(_, samples)| samples.into_iter().map(|x| (x.t, x.v))).collect()
    }

    fn write(store: &MemStorage, req: Request, opts: &V2Options) -> Result<WriteReport, V2Error> {
        write_v2(store, &ExemplarStore::default(), req, opts)
    }

    #[test]
    fn resolves_symbols_and_writes_samples_metadata_and_exemplars() {
        let store = MemStorage::new();
        let exemplars = ExemplarStore::default();
        let req = Builder::new()
            .series(&[("__name__", "http_requests_total"), ("job", "api")], &[(10, 1.0, 0), (20, 3.0, 0)])
            .metadata(MetricType::Counter, "Requests.", "")
            .exemplar(&[("trace_id", "abc")], 1.0, 15)
            .series(&[("__name__", "lat_seconds_bucket"), ("le", "0.5")], &[(10, 2.0, 0)])
            .metadata(MetricType::Histogram, "Latency.", "seconds")
            .req;
        let report = write_v2(&store, &exemplars, req, &V2Options::default()).expect("write");
        assert!(!report.has_rejections(), "{report:?}");
        assert_eq!((report.samples_written, report.exemplars_written, report.metadata_written), (3, 1, 2));
        assert_eq!(stored(&store, "http_requests_total"), vec![(10, 1.0), (20, 3.0)]);
        let md = store.metadata();
        let names: Vec<&str> = md.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, vec!["http_requests_total", "lat_seconds"]);
        assert_eq!(md[1].1[0].unit, "seconds");
        let got = exemplars.query(&[vec![Matcher::equal("job", "api")]], 0, 100);
        assert_eq!(got[0].1[0].labels.get("trace_id"), Some("abc"));
    }

    #[test]
    fn an_invalid_reference_anywhere_writes_nothing() {
        let store = MemStorage::new();
        let mut req = Builder::new()
            .series(&[("__name__", "good")], &[(1, 1.0, 0)])
            .series(&[("__name__", "also_good")], &[(1, 1.0, 0)])
            .req;
        req.timeseries[1].labels_refs.push(99);
        req.timeseries[1].labels_refs.push(1);
        let err = write(&store, req, &V2Options::default()).expect_err("invalid ref");
        assert!(err.to_string().contains("invalid symbol reference 99 in series #1"), "{err}");
        assert!(stored(&store, "good").is_empty());
    }

    #[test]
    fn odd_refs_bad_first_symbol_bad_metadata_and_invalid_labels_are_refused() {
        let store = MemStorage::new();
        let mut odd = Builder::new().series(&[("__name__", "x")], &[(1, 1.0, 0)]).req;
        odd.timeseries[0].labels_refs.push(1);
        assert!(
            write(&store, odd, &V2Options::default()).expect_err("odd").to_string().contains("odd number")
        );
        let mut first = Builder::new().series(&[("__name__", "x")], &[(1, 1.0, 0)]).req;
        first.symbols[0] = "x".into();
        assert!(write(&store, first, &V2Options::default()).is_err());
        let mut md = Builder::new().series(&[("__name__", "x")], &[(1, 1.0, 0)]).req;
        md.timeseries[0].metadata = Some(Metadata { r#type: 1, help_ref: 500, unit_ref: 0 });
        assert!(write(&store, md, &V2Options::default()).expect_err("help").to_string().contains("help"));
        let dup = Builder::new().series(&[("__name__", "x"), ("a", "1"), ("a", "2")], &[(1, 1.0, 0)]).req;
        assert!(
            write(&store, dup, &V2Options::default()).expect_err("dup").to_string().contains("duplicated")
        );
        let mut ex =
            Builder::new().series(&[("__name__", "x")], &[(1, 1.0, 0)]).exemplar(&[("t", "1")], 1.0, 1).req;
        ex.timeseries[0].exemplars[0].labels_refs[1] = 77;
        assert!(write(&store, ex, &V2Options::default()).expect_err("ex").to_string().contains("exemplar"));
        assert!(stored(&store, "x").is_empty());
    }

    #[test]
    fn start_timestamps_inject_a_zero_sample_only_when_enabled() {
        let store = MemStorage::new();
        let req = || Builder::new().series(&[("__name__", "c_total")], &[(100, 5.0, 50), (200, 7.0, 50)]).req;
        write(&store, req(), &V2Options::default()).expect("write");
        assert_eq!(stored(&store, "c_total"), vec![(100, 5.0), (200, 7.0)]);

        let store = MemStorage::new();
        let opts = V2Options { created_timestamp_zero_ingestion: true, ..Default::default() };
        let report = write(&store, req(), &opts).expect("write");
        assert_eq!(report.samples_written, 2, "the zero sample is not counted as sent");
        assert_eq!(stored(&store, "c_total"), vec![(50, 0.0), (100, 5.0), (200, 7.0)]);
        // Sent again, the zero sample is now out of order: silently skipped.
        let again = Builder::new().series(&[("__name__", "c_total")], &[(300, 9.0, 50)]).req;
        let report = write(&store, again, &opts).expect("write");
        assert!(!report.has_rejections(), "{report:?}");
    }

    #[test]
    fn a_series_created_timestamp_from_older_senders_counts_as_the_start() {
        let store = MemStorage::new();
        let mut req = Builder::new().series(&[("__name__", "c_total")], &[(100, 5.0, 0), (200, 7.0, 0)]).req;
        req.timeseries[0].created_timestamp = 40;
        let opts = V2Options { created_timestamp_zero_ingestion: true, ..Default::default() };
        write(&store, req, &opts).expect("write");
        assert_eq!(stored(&store, "c_total"), vec![(40, 0.0), (100, 5.0), (200, 7.0)]);
    }

    #[test]
    fn native_histograms_are_refused_and_counted() {
        let store = MemStorage::new();
        let mut req =
            Builder::new().series(&[("__name__", "h")], &[]).series(&[("__name__", "f")], &[(1, 1.0, 0)]).req;
        req.timeseries[0].histograms.push(Histogram { timestamp: 1, schema: 3, ..Default::default() });
        let report = write(&store, req, &V2Options::default()).expect("write");
        assert_eq!((report.samples_written, report.histograms_rejected), (1, 1));
        assert!(report.message().contains("native histograms are not supported by Vigil yet"));
    }

    #[test]
    fn samples_and_histograms_in_one_series_are_refused() {
        let store = MemStorage::new();
        let mut req = Builder::new().series(&[("__name__", "h")], &[(1, 1.0, 0)]).req;
        req.timeseries[0].histograms.push(Histogram { timestamp: 1, ..Default::default() });
        assert!(write(&store, req, &V2Options::default()).is_err());
        assert!(stored(&store, "h").is_empty());
    }

    const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

    fn golden_request() -> Request {
        Builder::new()
            .series(
                &[
                    ("__name__", "http_requests_total"),
                    ("code", "200"),
                    ("instance", "a:9090"),
                    ("job", "api"),
                ],
                &[(1_700_000_000_000, 10.0, 1_699_999_990_000), (1_700_000_015_000, 12.0, 1_699_999_990_000)],
            )
            .metadata(MetricType::Counter, "Requests served.", "")
            .exemplar(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")], 1.0, 1_700_000_001_000)
            .series(
                &[("__name__", "process_resident_memory_bytes"), ("instance", "a:9090"), ("job", "api")],
                &[(1_700_000_000_000, 1.5e6, 0)],
            )
            .metadata(MetricType::Gauge, "Resident memory size in bytes.", "bytes")
            .req
    }

    /// The checked-in body pins the 2.0 wire format (field numbers, symbols, snappy);
    /// the `.expected` file lists the samples it must store. Regenerate the body with
    /// `VIGIL_BLESS=1 cargo test -p vigil-ingest golden` only after a deliberate change.
    #[test]
    fn golden_v2_request_decodes_and_stores_the_expected_samples() {
        let body_path = format!("{GOLDEN_DIR}/write_request_v2.snappy");
        let encoded = crate::remote_write::encode_v2(&golden_request()).expect("encode");
        if std::env::var_os("VIGIL_BLESS").is_some() {
            std::fs::write(&body_path, &encoded).expect("write golden");
        }
        let golden = std::fs::read(&body_path).expect("golden body");
        assert_eq!(encoded, golden);
        let req = crate::remote_write::decode_v2(&golden, 1 << 20).expect("decode");
        let store = MemStorage::new();
        let exemplars = ExemplarStore::default();
        let report = write_v2(&store, &exemplars, req, &V2Options::default()).expect("write");
        assert_eq!((report.samples_written, report.exemplars_written, report.metadata_written), (3, 1, 2));
        let hints = SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
        let re = Matcher::new(vigil_storage::MatchOp::Regex, "__name__", ".+").expect("matcher");
        let mut got = Vec::new();
        for mut s in store.select(&[re], &hints).expect("select") {
            while let Some(x) = s.samples.next() {
                got.push(format!("{} {} {}", s.labels, x.t, x.v));
            }
        }
        let text =
            std::fs::read_to_string(format!("{GOLDEN_DIR}/write_request_v2.expected")).expect("expected");
        let want: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
        assert_eq!(got, want);
        let md = store.metadata();
        assert_eq!(md[1].0, "process_resident_memory_bytes");
        assert_eq!((md[1].1[0].kind, md[1].1[0].unit.as_str()), (vigil_storage::MetricType::Gauge, "bytes"));
    }

    proptest::proptest! {
        /// Whatever the references, a request is either refused with nothing stored or
        /// fully resolved; it never panics.
        #[test]
        fn refused_requests_store_nothing(
            series in proptest::collection::vec(proptest::collection::vec(0u32..8, 0..6), 1..5),
        ) {
            let symbols = ["", "__name__", "a", "b", "job", "x", "a"].iter().map(|s| s.to_string()).collect();
            let timeseries = series
                .into_iter()
                .map(|labels_refs| TimeSeries {
                    labels_refs,
                    samples: vec![Sample { value: 1.0, timestamp: 1, start_timestamp: 0 }],
                    ..Default::default()
                })
                .collect();
            let store = MemStorage::new();
            let hints = SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
            let re = Matcher::new(vigil_storage::MatchOp::Regex, "__name__", ".*").expect("matcher");
            match write(&store, Request { symbols, timeseries }, &V2Options::default()) {
                Err(V2Error::Invalid(_)) => proptest::prop_assert!(store.select(&[re], &hints).expect("select").is_empty()),
                Err(V2Error::Storage(e)) => proptest::prop_assert!(false, "storage error {e}"),
                Ok(report) => proptest::prop_assert!(report.samples_written >= 1),
            }
        }
    }
}
