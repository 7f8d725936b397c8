//! Turns a decoded remote-write 1.0 request into one storage batch and reports what
//! was written and what was refused.
//!
//! Unlike Prometheus's v1 receiver, which rolls the whole request back on the first
//! out-of-order sample, Vigil keeps everything valid and refuses only what is bad
//! (as Prometheus's v2 receiver does); the caller answers 400 with [`WriteReport::message`]
//! when anything was refused, so the sender does not retry.

use vigil_storage::{Appendable, Label, Labels, MetricMetadata, StorageError};

use super::proto::{MetricType, WriteRequest};
use super::validate::{Limits, validate_labels};
use crate::exemplars::{Exemplar, ExemplarStore};

/// What one request did: counts of written and refused samples, and the first reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteReport {
    /// Float samples written (exact duplicates of stored samples included).
    pub samples_written: u64,
    /// Samples refused as older than their series' newest sample.
    pub out_of_order: u64,
    /// Samples refused for repeating a timestamp with another value.
    pub duplicate: u64,
    /// Series skipped because their labels are invalid.
    pub invalid_series: u64,
    /// Samples in those skipped series.
    pub invalid_series_samples: u64,
    /// Native histogram samples refused (not stored by Vigil yet).
    pub histograms_rejected: u64,
    /// Exemplars received and not stored (1.0 drops them; 2.0 counts refused ones).
    pub exemplars_ignored: u64,
    /// Exemplars stored (remote write 2.0 only).
    pub exemplars_written: u64,
    /// Metadata entries passed on to storage.
    pub metadata_written: u64,
    /// Metadata entries skipped for an empty or non-UTF-8 family name.
    pub metadata_invalid: u64,
    /// The first refusal, worded as Prometheus words it.
    pub first_error: Option<String>,
}

impl WriteReport {
    /// Samples (float or histogram) refused for any reason.
    pub fn samples_rejected(&self) -> u64 {
        self.out_of_order + self.duplicate + self.invalid_series_samples + self.histograms_rejected
    }

    /// True when something in the request was refused (the answer is then a 400).
    pub fn has_rejections(&self) -> bool {
        self.first_error.is_some()
    }

    /// One line for the 400 response: the first reason, then the counts.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if self.out_of_order > 0 {
            parts.push(format!("{} out of order", self.out_of_order));
        }
        if self.duplicate > 0 {
            parts.push(format!("{} duplicate sample for timestamp", self.duplicate));
        }
        if self.invalid_series > 0 {
            parts.push(format!(
                "{} in {} series with invalid labels",
                self.invalid_series_samples, self.invalid_series
            ));
        }
        if self.histograms_rejected > 0 {
            parts.push(format!("{} native histogram samples", self.histograms_rejected));
        }
        format!(
            "{}; {} samples rejected ({}), {} samples written",
            self.first_error.as_deref().unwrap_or("no error"),
            self.samples_rejected(),
            parts.join(", "),
            self.samples_written
        )
    }

    pub(crate) fn note(&mut self, reason: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(reason());
        }
    }
}

/// Validates every series, appends the valid ones and the metadata in one batch and
/// commits it; exemplars are dropped. Errors only when the storage itself fails (the
/// sender should retry).
pub fn write_v1(
    store: &dyn Appendable,
    req: WriteRequest,
    limits: &Limits,
) -> Result<WriteReport, StorageError> {
    write_v1_with_exemplars(store, &ExemplarStore::new(0), req, limits)
}

/// [`write_v1`], keeping the exemplars of valid series in `exemplars` after the commit.
pub fn write_v1_with_exemplars(
    store: &dyn Appendable,
    exemplars: &ExemplarStore,
    req: WriteRequest,
    limits: &Limits,
) -> Result<WriteReport, StorageError> {
    let mut pending = Vec::new();
    let mut report = WriteReport::default();
    let mut app = store.appender();
    for ts in req.timeseries {
        let labels = match validate_labels(&ts.labels, limits) {
            Ok(labels) => labels,
            Err(invalid) => {
                report.invalid_series += 1;
                report.invalid_series_samples += (ts.samples.len() + ts.histograms.len()) as u64;
                report.note(|| invalid.to_string());
                continue;
            }
        };
        for s in &ts.samples {
            app.append(&labels, s.timestamp, s.value);
        }
        for ex in ts.exemplars {
            let utf8 = |b: bytes::Bytes| String::from_utf8(b.to_vec()).ok();
            let pairs: Option<Vec<Label>> = ex
                .labels
                .into_iter()
                .map(|l| Some(Label { name: utf8(l.name)?, value: utf8(l.value)? }))
                .collect();
            match pairs {
                Some(mut pairs) if pairs.iter().all(|p| !p.name.is_empty()) => {
                    pairs.retain(|p| !p.value.is_empty());
                    pairs.sort();
                    let ex_labels = Labels::from_sorted_unchecked(pairs);
                    pending.push((
                        labels.clone(),
                        Exemplar { labels: ex_labels, value: ex.value, t: ex.timestamp },
                    ));
                }
                _ => report.exemplars_ignored += 1,
            }
        }
        if !ts.histograms.is_empty() {
            report.histograms_rejected += ts.histograms.len() as u64;
            report.note(|| {
                format!(
                    "native histograms are not supported by Vigil yet (series {labels}); \
                     send classic histograms or disable send_native_histograms"
                )
            });
        }
    }
    for md in req.metadata {
        if md.metric_family_name.is_empty() {
            report.metadata_invalid += 1;
            continue;
        }
        let meta = MetricMetadata { kind: MetricType::to_storage(md.r#type), help: md.help, unit: md.unit };
        app.update_metadata(&md.metric_family_name, meta);
        report.metadata_written += 1;
    }
    let outcome = app.commit()?;
    report.samples_written = outcome.appended;
    report.out_of_order = outcome.out_of_order;
    report.duplicate = outcome.duplicate;
    if let Some((labels, t, err)) = &outcome.first_error {
        report.note(|| format!("{err} for series {labels} at timestamp {t}"));
    }
    for (series, ex) in pending {
        match exemplars.add(&series, ex) {
            Ok(()) => report.exemplars_written += 1,
            Err(_) => report.exemplars_ignored += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::proto::{
        self, Histogram, Label, MetricMetadata as WireMeta, Sample, TimeSeries,
    };
    use vigil_storage::memory::MemStorage;
    use vigil_storage::{Matcher, Querier};

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
            exemplars: vec![],
            histograms: vec![],
        }
    }

    fn stored(store: &MemStorage, name: &str) -> Vec<(i64, f64)> {
        let series = store.matching(&[Matcher::equal("__name__", name)]);
        series.into_iter().flat_map(|(_, samples)| samples.into_iter().map(|x| (x.t, x.v))).collect()
    }

    #[test]
    fn writes_valid_series_and_metadata() {
        let store = MemStorage::new();
        let req = WriteRequest {
            timeseries: vec![series(&[("__name__", "up"), ("job", "a")], &[(1, 1.0), (2, 0.0)])],
            metadata: vec![WireMeta {
                r#type: proto::MetricType::Gauge as i32,
                metric_family_name: "up".into(),
                help: "Target up.".into(),
                unit: String::new(),
            }],
        };
        let report = write_v1(&store, req, &Limits::default()).expect("write");
        assert!(!report.has_rejections(), "{report:?}");
        assert_eq!((report.samples_written, report.metadata_written), (2, 1));
        assert_eq!(stored(&store, "up"), vec![(1, 1.0), (2, 0.0)]);
        let md = store.metadata();
        assert_eq!(md[0].0, "up");
        assert_eq!(md[0].1[0].kind, vigil_storage::MetricType::Gauge);
    }

    #[test]
    fn invalid_series_is_skipped_and_the_rest_written() {
        let store = MemStorage::new();
        let req = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "bad"), ("a", "1"), ("a", "2")], &[(1, 1.0), (2, 1.0)]),
                series(&[("__name__", "good")], &[(1, 1.0)]),
            ],
            metadata: vec![],
        };
        let report = write_v1(&store, req, &Limits::default()).expect("write");
        assert_eq!((report.samples_written, report.invalid_series, report.invalid_series_samples), (1, 1, 2));
        let msg = report.message();
        assert!(msg.starts_with("invalid labels for series"), "{msg}");
        assert!(
            msg.contains("2 samples rejected (2 in 1 series with invalid labels), 1 samples written"),
            "{msg}"
        );
        assert_eq!(stored(&store, "good"), vec![(1, 1.0)]);
        assert!(stored(&store, "bad").is_empty());
    }

    #[test]
    fn out_of_order_and_duplicates_are_counted_with_prometheus_wording() {
        let store = MemStorage::new();
        let first =
            WriteRequest { timeseries: vec![series(&[("__name__", "x")], &[(10, 1.0)])], metadata: vec![] };
        write_v1(&store, first, &Limits::default()).expect("write");
        let second = WriteRequest {
            timeseries: vec![series(&[("__name__", "x")], &[(5, 1.0), (10, 2.0), (10, 1.0), (20, 3.0)])],
            metadata: vec![],
        };
        let report = write_v1(&store, second, &Limits::default()).expect("write");
        assert_eq!((report.samples_written, report.out_of_order, report.duplicate), (2, 1, 1));
        let msg = report.message();
        assert!(msg.starts_with(r#"out of order sample for series {__name__="x"} at timestamp 5"#), "{msg}");
        assert!(msg.contains("1 out of order, 1 duplicate sample for timestamp"), "{msg}");
        assert_eq!(stored(&store, "x"), vec![(10, 1.0), (20, 3.0)]);
    }

    #[test]
    fn exemplars_of_valid_series_are_kept_when_a_store_is_given() {
        let store = MemStorage::new();
        let exemplars = ExemplarStore::default();
        let mut ts = series(&[("__name__", "c_total")], &[(10, 1.0)]);
        ts.exemplars.push(proto::Exemplar {
            labels: vec![Label::new("trace_id", "abc")],
            value: 1.0,
            timestamp: 9,
        });
        ts.exemplars.push(proto::Exemplar { labels: vec![Label::new("", "x")], value: 1.0, timestamp: 9 });
        let req = WriteRequest { timeseries: vec![ts.clone()], metadata: vec![] };
        let report = write_v1_with_exemplars(&store, &exemplars, req, &Limits::default()).expect("write");
        assert_eq!((report.exemplars_written, report.exemplars_ignored), (1, 1));
        assert_eq!(exemplars.len(), 1);
        let dropped =
            write_v1(&store, WriteRequest { timeseries: vec![ts], metadata: vec![] }, &Limits::default())
                .expect("write");
        assert_eq!((dropped.exemplars_written, dropped.exemplars_ignored), (0, 2));
    }

    #[test]
    fn native_histograms_are_refused_with_a_clear_reason() {
        let store = MemStorage::new();
        let mut ts = series(&[("__name__", "h")], &[(1, 1.0)]);
        ts.histograms.push(Histogram { timestamp: 1, schema: 3, ..Default::default() });
        let report =
            write_v1(&store, WriteRequest { timeseries: vec![ts], metadata: vec![] }, &Limits::default())
                .expect("write");
        assert_eq!((report.samples_written, report.histograms_rejected), (1, 1));
        assert!(report.message().contains("native histograms are not supported by Vigil yet"));
    }
}
