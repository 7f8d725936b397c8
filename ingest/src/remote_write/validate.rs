//! Validation of one series' labels as Prometheus 3 does it, turning wire labels into
//! a sorted [`Labels`].
//!
//! Prometheus 3 accepts any UTF-8 name (`http.status` is legal), refuses empty or
//! duplicate names and series without `__name__`, and treats an empty value as an
//! absent label. Vigil adds configurable size limits so that one runaway sender cannot
//! blow up the index.

use std::fmt;

use vigil_storage::{Label, Labels, METRIC_NAME};

use super::proto;

/// Default most labels per series: the widest common series (kube-state-metrics'
/// `kube_*_labels` info metrics) stay well below it; more is a cardinality bug.
pub const DEFAULT_MAX_LABEL_NAMES_PER_SERIES: usize = 128;
/// Default longest label name in bytes: names are identifiers, never prose.
pub const DEFAULT_MAX_LABEL_NAME_LENGTH: usize = 1024;
/// Default longest label value in bytes: room for URLs, SQL text and annotations,
/// while a value of megabytes is almost surely a payload sent as a label by mistake.
pub const DEFAULT_MAX_LABEL_VALUE_LENGTH: usize = 16 * 1024;

/// Per-series limits applied on ingest; `0` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most label pairs in one series (after empty values are dropped).
    pub max_label_names_per_series: usize,
    /// Longest label name in bytes.
    pub max_label_name_length: usize,
    /// Longest label value in bytes.
    pub max_label_value_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_label_names_per_series: DEFAULT_MAX_LABEL_NAMES_PER_SERIES,
            max_label_name_length: DEFAULT_MAX_LABEL_NAME_LENGTH,
            max_label_value_length: DEFAULT_MAX_LABEL_VALUE_LENGTH,
        }
    }
}

/// Why a series' labels were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidSeries {
    /// A label name or value is not UTF-8.
    NotUtf8 {
        /// The labels, lossily decoded for the message.
        labels: String,
    },
    /// A label has an empty name.
    EmptyName {
        /// The labels as received.
        labels: String,
    },
    /// Two labels share a name.
    DuplicateName {
        /// The labels as received.
        labels: String,
        /// The repeated name.
        name: String,
    },
    /// The series has no `__name__`.
    MissingMetricName {
        /// The labels as received.
        labels: String,
    },
    /// More labels than [`Limits::max_label_names_per_series`].
    TooManyLabels {
        /// The labels as received.
        labels: String,
        /// How many there are.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A label name longer than [`Limits::max_label_name_length`].
    NameTooLong {
        /// The labels as received.
        labels: String,
        /// The limit.
        limit: usize,
    },
    /// A label value longer than [`Limits::max_label_value_length`].
    ValueTooLong {
        /// The labels as received.
        labels: String,
        /// The offending label's name.
        name: String,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for InvalidSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidSeries::NotUtf8 { labels } => {
                write!(f, "invalid metric name or labels (not valid UTF-8), got {labels}")
            }
            InvalidSeries::EmptyName { labels } => {
                write!(f, "invalid metric name or labels (empty label name), got {labels}")
            }
            InvalidSeries::DuplicateName { labels, name } => {
                write!(f, "invalid labels for series, labels {labels}, duplicated label {name}")
            }
            InvalidSeries::MissingMetricName { labels } => {
                write!(f, "invalid metric name or labels (no __name__), got {labels}")
            }
            InvalidSeries::TooManyLabels { labels, count, limit } => {
                write!(f, "series has {count} labels, more than the limit of {limit}: {labels}")
            }
            InvalidSeries::NameTooLong { labels, limit } => {
                write!(f, "label name longer than the limit of {limit} bytes in series {labels}")
            }
            InvalidSeries::ValueTooLong { labels, name, limit } => {
                write!(f, "value of label {name:?} longer than the limit of {limit} bytes in series {labels}")
            }
        }
    }
}

/// Prometheus's notation `{a="1", b="2"}` for raw pairs, lossy for invalid UTF-8;
/// used in messages only.
fn describe<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let value = String::from_utf8_lossy(value);
        out.push_str(&format!("{}={:?}", String::from_utf8_lossy(name), value));
    }
    out.push('}');
    out
}

/// Validates one series' wire labels and returns them as sorted [`Labels`], with
/// empty values dropped. The labels are read where they lie in the request; only the
/// finished label set is allocated.
pub fn validate_labels(wire: &[proto::Label], limits: &Limits) -> Result<Labels, InvalidSeries> {
    let pairs: Option<Vec<(&str, &str)>> = wire
        .iter()
        .map(|l| Some((std::str::from_utf8(&l.name).ok()?, std::str::from_utf8(&l.value).ok()?)))
        .collect();
    match pairs {
        Some(pairs) => validate_refs(pairs, limits),
        None => {
            Err(InvalidSeries::NotUtf8 { labels: describe(wire.iter().map(|l| (&l.name[..], &l.value[..]))) })
        }
    }
}

/// Validates one series' labels, already UTF-8 (from remote write 2.0's symbols or the
/// OTLP translator), and returns them sorted, with empty values dropped.
pub fn validate_pairs(pairs: Vec<Label>, limits: &Limits) -> Result<Labels, InvalidSeries> {
    validate_refs(pairs.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect(), limits)
}

/// Validates borrowed UTF-8 pairs in any order and packs them into sorted [`Labels`].
fn validate_refs(mut pairs: Vec<(&str, &str)>, limits: &Limits) -> Result<Labels, InvalidSeries> {
    let text = |pairs: &[(&str, &str)]| describe(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    if pairs.iter().any(|(n, _)| n.is_empty()) {
        return Err(InvalidSeries::EmptyName { labels: text(&pairs) });
    }
    // Senders are asked to sort by name; a stable sort is nearly free when they did.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        let name = w[0].0.to_string();
        return Err(InvalidSeries::DuplicateName { labels: text(&pairs), name });
    }
    pairs.retain(|(_, v)| !v.is_empty());
    if limits.max_label_names_per_series > 0 && pairs.len() > limits.max_label_names_per_series {
        return Err(InvalidSeries::TooManyLabels {
            labels: text(&pairs),
            count: pairs.len(),
            limit: limits.max_label_names_per_series,
        });
    }
    if limits.max_label_name_length > 0 && pairs.iter().any(|(n, _)| n.len() > limits.max_label_name_length) {
        return Err(InvalidSeries::NameTooLong { labels: text(&pairs), limit: limits.max_label_name_length });
    }
    let value_limit = limits.max_label_value_length;
    if let Some((n, _)) = pairs.iter().find(|(_, v)| value_limit > 0 && v.len() > value_limit) {
        return Err(InvalidSeries::ValueTooLong {
            labels: text(&pairs),
            name: n.to_string(),
            limit: value_limit,
        });
    }
    if !pairs.iter().any(|(n, _)| *n == METRIC_NAME) {
        return Err(InvalidSeries::MissingMetricName { labels: text(&pairs) });
    }
    Ok(Labels::from_sorted_refs(pairs.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::Label as L;

    fn check(labels: Vec<L>) -> Result<Labels, InvalidSeries> {
        validate_labels(&labels, &Limits::default())
    }

    #[test]
    fn sorts_and_accepts_utf8_names() {
        let got =
            check(vec![L::new("http.status", "200"), L::new("__name__", "req.total"), L::new("a", "x")])
                .expect("valid");
        assert_eq!(got.to_string(), r#"{__name__="req.total", a="x", http.status="200"}"#);
    }

    #[test]
    fn drops_empty_values() {
        let got = check(vec![L::new("__name__", "up"), L::new("job", "")]).expect("valid");
        assert_eq!(got.to_string(), r#"{__name__="up"}"#);
    }

    #[test]
    fn refuses_empty_and_duplicate_names_and_missing_metric_name() {
        assert!(matches!(
            check(vec![L::new("__name__", "up"), L::new("", "x")]),
            Err(InvalidSeries::EmptyName { .. })
        ));
        assert!(matches!(
            check(vec![L::new("__name__", "up"), L::new("a", "1"), L::new("a", "2")]),
            Err(InvalidSeries::DuplicateName { name, .. }) if name == "a"
        ));
        assert!(matches!(check(vec![L::new("job", "x")]), Err(InvalidSeries::MissingMetricName { .. })));
        assert!(matches!(check(vec![L::new("__name__", "")]), Err(InvalidSeries::MissingMetricName { .. })));
    }

    #[test]
    fn refuses_invalid_utf8() {
        let bad =
            L { name: bytes::Bytes::from_static(b"a"), value: bytes::Bytes::from_static(&[0xff, 0xfe]) };
        let err = check(vec![L::new("__name__", "up"), bad]).expect_err("invalid");
        assert!(matches!(err, InvalidSeries::NotUtf8 { .. }));
        assert!(err.to_string().contains("__name__"), "{err}");
    }

    #[test]
    fn enforces_limits_and_zero_disables_them() {
        let tight =
            Limits { max_label_names_per_series: 1, max_label_name_length: 3, max_label_value_length: 2 };
        let ls = || vec![L::new("__name__", "u"), L::new("job", "x")];
        assert!(matches!(validate_labels(&ls(), &tight), Err(InvalidSeries::TooManyLabels { count: 2, .. })));
        let tight = Limits { max_label_names_per_series: 0, ..tight };
        assert!(matches!(validate_labels(&ls(), &tight), Err(InvalidSeries::NameTooLong { .. })));
        let tight = Limits { max_label_name_length: 0, ..tight };
        let long = vec![L::new("__name__", "up!")];
        assert!(matches!(validate_labels(&long, &tight), Err(InvalidSeries::ValueTooLong { .. })));
        let off =
            Limits { max_label_names_per_series: 0, max_label_name_length: 0, max_label_value_length: 0 };
        assert!(validate_labels(&ls(), &off).is_ok());
    }
}
