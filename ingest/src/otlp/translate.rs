//! OTLP metrics → Prometheus series, as Prometheus's OTLP receiver translates them.
//!
//! Translation is pure and all-or-nothing for names: an attribute key or metric name
//! that cannot be translated fails the whole request (so nothing is half-written),
//! while data Vigil cannot store (exponential histograms, delta temporality unless
//! converted, malformed histogram points) is refused per data point and reported in
//! `partial_success`, as the OTLP spec asks.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar as OtlpExemplar, HistogramDataPoint, Metric, NumberDataPoint,
    SummaryDataPoint, exemplar, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use vigil_storage::{Label, Labels, METRIC_NAME, MetricMetadata, MetricType, Sample, stale_nan};

use super::names::{NameKind, TranslationStrategy, label_name, metric_name, unit_name};
use crate::exemplars::Exemplar;
use crate::remote_write::{Limits, validate_pairs};

/// The data-point flag OTLP sets when a point has no value (becomes a staleness marker).
const FLAG_NO_RECORDED_VALUE: u32 = 1;
/// Nanoseconds per millisecond.
const NANOS_PER_MILLI: u64 = 1_000_000;
/// Spacing of `target_info` samples: half of Prometheus's default 5m lookback delta,
/// so the info series is found at every instant between a resource's first and last point.
const TARGET_INFO_INTERVAL_MS: i64 = 150_000;
/// Most `target_info` samples one resource of one request produces: 41h of span at the
/// interval above, far more than one export batch covers. Without a bound, two points
/// years apart would make a tiny request expand into millions of samples.
const MAX_TARGET_INFO_SAMPLES: i64 = 1_000;
/// Name of the series carrying resource attributes.
const TARGET_INFO: &str = "target_info";
/// Resource attributes that identify the target (they become `job` and `instance`).
const SERVICE_NAME: &str = "service.name";
/// See [`SERVICE_NAME`].
const SERVICE_NAMESPACE: &str = "service.namespace";
/// See [`SERVICE_NAME`].
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// Most refusal messages kept for `partial_success`; the count covers the rest.
const MAX_MESSAGES: usize = 5;

/// How OTLP is translated (Prometheus's `otlp:` configuration block).
#[derive(Debug, Clone, Default)]
pub struct OtlpOptions {
    /// Name translation (`otlp.translation_strategy`).
    pub translation_strategy: TranslationStrategy,
    /// Resource attributes copied onto every series (`otlp.promote_resource_attributes`).
    pub promote_resource_attributes: Vec<String>,
    /// Copy all resource attributes but the ignored ones (`otlp.promote_all_resource_attributes`).
    pub promote_all_resource_attributes: bool,
    /// Not promoted when promoting all (`otlp.ignore_resource_attributes`).
    pub ignore_resource_attributes: Vec<String>,
    /// Keep `service.*` attributes on `target_info` too (`otlp.keep_identifying_resource_attributes`).
    pub keep_identifying_resource_attributes: bool,
    /// Add `otel_scope_*` labels (`otlp.promote_scope_metadata`).
    pub promote_scope_metadata: bool,
    /// Accumulate delta sums and histograms into cumulative series
    /// (`otlp.convert_delta_to_cumulative`); refused otherwise, as Prometheus does.
    pub convert_delta_to_cumulative: bool,
    /// Per-series label limits.
    pub limits: Limits,
}

/// One series to append.
#[derive(Debug, Clone, PartialEq)]
pub struct OutSeries {
    /// Its labels.
    pub labels: Labels,
    /// Its samples, in the order sent.
    pub samples: Vec<Sample>,
    /// True when the samples are deltas to accumulate.
    pub delta: bool,
    /// Exemplars attached to it.
    pub exemplars: Vec<Exemplar>,
}

/// The translation of one request.
#[derive(Debug, Clone, Default)]
pub struct Translated {
    /// Series to append.
    pub series: Vec<OutSeries>,
    /// Metadata per metric family.
    pub metadata: Vec<(String, MetricMetadata)>,
    /// Data points refused (reported in `partial_success`).
    pub rejected_points: u64,
    /// Why, the first few reasons.
    pub messages: Vec<String>,
}

impl Translated {
    fn reject(&mut self, points: usize, why: impl FnOnce() -> String) {
        if points == 0 {
            return;
        }
        self.rejected_points += points as u64;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(why());
        }
    }

    /// Total samples in all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// A request that cannot be translated; nothing of it may be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TranslateError(pub String);

/// An attribute value as Prometheus turns it into a label value.
fn value_string(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format_float(*d),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<serde_json::Value> = a.values.iter().map(json_value).collect();
            serde_json::Value::Array(items).to_string()
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let map = kv
                .values
                .iter()
                .map(|p| (p.key.clone(), p.value.as_ref().map(json_value).unwrap_or(serde_json::Value::Null)))
                .collect();
            serde_json::Value::Object(map).to_string()
        }
        Some(any_value::Value::StringValueStrindex(i)) => i.to_string(),
    }
}

fn json_value(v: &AnyValue) -> serde_json::Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => serde_json::Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Value::from(*d),
        _ => serde_json::Value::String(value_string(v)),
    }
}

/// Lower-case hex, as trace and span ids are written.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it (used for `le`
/// and `quantile` values and for double attributes).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display is the shortest round-trip form without an exponent.
        format!("{f}")
    }
}

fn get_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

/// Milliseconds from OTLP's nanoseconds.
fn millis(nanos: u64) -> i64 {
    i64::try_from(nanos / NANOS_PER_MILLI).unwrap_or(i64::MAX)
}

/// What every series of one resource and scope shares.
struct Context {
    /// Promoted resource attributes and scope labels, already translated.
    shared: Vec<(String, String)>,
    /// `otel_scope_*` labels, which override data-point attributes.
    scope: Vec<(String, String)>,
    job: Option<String>,
    instance: Option<String>,
}

struct Translator<'a> {
    opts: &'a OtlpOptions,
    out: Translated,
}

impl Translator<'_> {
    fn label(&self, key: &str) -> Result<String, TranslateError> {
        label_name(key, self.opts.translation_strategy).map_err(TranslateError)
    }

    /// Data-point attributes, sorted by key, translated; colliding names joined by `;`.
    fn attrs(&self, attrs: &[KeyValue], into: &mut BTreeMap<String, String>) -> Result<(), TranslateError> {
        let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        for kv in sorted {
            let name = self.label(&kv.key)?;
            let value = kv.value.as_ref().map(value_string).unwrap_or_default();
            into.entry(name)
                .and_modify(|v| {
                    v.push(';');
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        Ok(())
    }

    /// The labels of one output series.
    fn labels(
        &self,
        ctx: &Context,
        attrs: &[KeyValue],
        extras: &[(&str, &str)],
    ) -> Result<Labels, TranslateError> {
        let mut map = BTreeMap::new();
        self.attrs(attrs, &mut map)?;
        for (k, v) in &ctx.shared {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &ctx.scope {
            map.insert(k.clone(), v.clone());
        }
        if let Some(job) = &ctx.job {
            map.insert("job".into(), job.clone());
        }
        if let Some(instance) = &ctx.instance {
            map.insert("instance".into(), instance.clone());
        }
        for (k, v) in extras {
            let reserved = k.len() > 4 && k.starts_with("__") && k.ends_with("__");
            let name = if reserved { (*k).to_owned() } else { self.label(k)? };
            map.insert(name, (*v).to_owned());
        }
        let pairs = map.into_iter().map(|(name, value)| Label { name, value }).collect();
        validate_pairs(pairs, &self.opts.limits).map_err(|e| TranslateError(e.to_string()))
    }

    fn exemplars(&self, exs: &[OtlpExemplar]) -> Result<Vec<Exemplar>, TranslateError> {
        exs.iter()
            .map(|e| {
                let mut map = BTreeMap::new();
                self.attrs(&e.filtered_attributes, &mut map)?;
                if !e.trace_id.is_empty() {
                    map.insert("trace_id".into(), hex(&e.trace_id));
                }
                if !e.span_id.is_empty() {
                    map.insert("span_id".into(), hex(&e.span_id));
                }
                let value = match e.value {
                    Some(exemplar::Value::AsDouble(d)) => d,
                    Some(exemplar::Value::AsInt(i)) => i as f64,
                    None => 0.0,
                };
                let labels =
                    map.into_iter().filter(|(_, v)| !v.is_empty()).map(|(name, value)| Label { name, value });
                Ok(Exemplar {
                    labels: Labels::from_sorted_unchecked(labels.collect()),
                    value,
                    t: millis(e.time_unix_nano),
                })
            })
            .collect()
    }

    fn push(&mut self, labels: Labels, t: i64, v: f64, delta: bool, exemplars: Vec<Exemplar>) {
        self.out.series.push(OutSeries { labels, samples: vec![Sample { t, v }], delta, exemplars });
    }

    fn resource_context(&self, resource: Option<&Resource>) -> Result<Context, TranslateError> {
        let attrs = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let name = get_attr(attrs, SERVICE_NAME).map(value_string);
        let job = name.map(|n| match get_attr(attrs, SERVICE_NAMESPACE).map(value_string) {
            Some(ns) if !ns.is_empty() => format!("{ns}/{n}"),
            _ => n,
        });
        let instance = get_attr(attrs, SERVICE_INSTANCE_ID).map(value_string);
        let opts = self.opts;
        let promoted: Vec<&KeyValue> = attrs
            .iter()
            .filter(|kv| {
                if opts.promote_all_resource_attributes {
                    !opts.ignore_resource_attributes.contains(&kv.key)
                } else {
                    opts.promote_resource_attributes.contains(&kv.key)
                }
            })
            .collect();
        let mut shared = BTreeMap::new();
        let owned: Vec<KeyValue> = promoted.into_iter().cloned().collect();
        self.attrs(&owned, &mut shared)?;
        Ok(Context { shared: shared.into_iter().collect(), scope: Vec::new(), job, instance })
    }

    fn scope_labels(
        &self,
        scope: Option<&InstrumentationScope>,
        schema_url: &str,
    ) -> Result<Vec<(String, String)>, TranslateError> {
        let Some(scope) = scope.filter(|_| self.opts.promote_scope_metadata) else { return Ok(Vec::new()) };
        let mut out = vec![
            ("otel_scope_name".to_owned(), scope.name.clone()),
            ("otel_scope_version".to_owned(), scope.version.clone()),
            ("otel_scope_schema_url".to_owned(), schema_url.to_owned()),
        ];
        for kv in &scope.attributes {
            let name = self.label(&format!("otel_scope_{}", kv.key))?;
            out.push((name, kv.value.as_ref().map(value_string).unwrap_or_default()));
        }
        Ok(out)
    }

    /// Checks a sum's or histogram's temporality: `Ok(delta)` when usable.
    fn temporality(&mut self, metric: &Metric, raw: i32, points: usize) -> Option<bool> {
        match AggregationTemporality::try_from(raw) {
            Ok(AggregationTemporality::Cumulative) => Some(false),
            Ok(AggregationTemporality::Delta) if self.opts.convert_delta_to_cumulative => Some(true),
            Ok(AggregationTemporality::Delta) => {
                self.out.reject(points, || {
                    format!(
                        "invalid temporality and type combination for metric {:?}: delta temporality is refused \
                         (turn on otlp.convert_delta_to_cumulative, or convert in the collector)",
                        metric.name
                    )
                });
                None
            }
            _ => {
                self.out
                    .reject(points, || format!("metric {:?} has no aggregation temporality", metric.name));
                None
            }
        }
    }

    fn metadata(&mut self, family: &str, kind: MetricType, metric: &Metric) {
        let unit = unit_name(&metric.unit, self.opts.translation_strategy);
        self.out
            .metadata
            .push((family.to_owned(), MetricMetadata { kind, help: metric.description.clone(), unit }));
    }

    fn number_points(
        &mut self,
        ctx: &Context,
        name: &str,
        points: &[NumberDataPoint],
        delta: bool,
    ) -> Result<(), TranslateError> {
        for p in points {
            let labels = self.labels(ctx, &p.attributes, &[(METRIC_NAME, name)])?;
            let v = if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                stale_nan()
            } else {
                match p.value {
                    Some(number_data_point::Value::AsDouble(d)) => d,
                    Some(number_data_point::Value::AsInt(i)) => i as f64,
                    None => 0.0,
                }
            };
            let exemplars = self.exemplars(&p.exemplars)?;
            self.push(labels, millis(p.time_unix_nano), v, delta, exemplars);
        }
        Ok(())
    }

    fn histogram_points(
        &mut self,
        ctx: &Context,
        base: &str,
        metric: &Metric,
        points: &[HistogramDataPoint],
        delta: bool,
    ) -> Result<(), TranslateError> {
        let (bucket, sum, count) = (format!("{base}_bucket"), format!("{base}_sum"), format!("{base}_count"));
        for p in points {
            if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
                self.out.reject(1, || {
                    format!(
                        "histogram {:?} has {} bucket counts for {} bounds (expected one more count than bounds)",
                        metric.name,
                        p.bucket_counts.len(),
                        p.explicit_bounds.len()
                    )
                });
                continue;
            }
            let t = millis(p.time_unix_nano);
            let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
            let value = |v: f64| if stale { stale_nan() } else { v };
            let mut exemplars = self.exemplars(&p.exemplars)?;
            if let Some(s) = p.sum {
                let labels = self.labels(ctx, &p.attributes, &[(METRIC_NAME, &sum)])?;
                self.push(labels, t, value(s), delta, Vec::new());
            }
            let labels = self.labels(ctx, &p.attributes, &[(METRIC_NAME, &count)])?;
            self.push(labels, t, value(p.count as f64), delta, Vec::new());
            let mut cumulative = 0u64;
            for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                cumulative = cumulative.saturating_add(*n);
                let le = format_float(*bound);
                let labels = self.labels(ctx, &p.attributes, &[(METRIC_NAME, &bucket), ("le", &le)])?;
                let (mine, rest): (Vec<Exemplar>, Vec<Exemplar>) =
                    exemplars.into_iter().partition(|e| e.value <= *bound);
                exemplars = rest;
                self.push(labels, t, value(cumulative as f64), delta, mine);
            }
            let labels = self.labels(ctx, &p.attributes, &[(METRIC_NAME, &bucket), ("le", "+Inf")])?;
            self.push(labels, t, value(p.count as f64), delta, exemplars);
        }
        Ok(())
    }

    fn summary_points(
        &mut self,
        ctx: &Context,
        base: &str,
        points: &[SummaryDataPoint],
    ) -> Result<(), TranslateError> {
        let (sum, count) = (format!("{base}_sum"), format!("{base}_count"));
        for p in points {
            let t = millis(p.time_unix_nano);
            let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
            let value = |v: f64| if stale { stale_nan() } else { v };
            let labels = self.labels(ctx, &p.attributes, &[(METRIC_NAME, &sum)])?;
            self.push(labels, t, value(p.sum), false, Vec::new());
            let labels = self.labels(ctx, &p.attributes, &[(METRIC_NAME, &count)])?;
            self.push(labels, t, value(p.count as f64), false, Vec::new());
            for q in &p.quantile_values {
                let quantile = format_float(q.quantile);
                let labels =
                    self.labels(ctx, &p.attributes, &[(METRIC_NAME, base), ("quantile", &quantile)])?;
                self.push(labels, t, value(q.value), false, Vec::new());
            }
        }
        Ok(())
    }

    fn metric(&mut self, ctx: &Context, metric: &Metric) -> Result<(), TranslateError> {
        let strategy = self.opts.translation_strategy;
        let name_err = |e: String| TranslateError(e);
        match &metric.data {
            None => {}
            Some(Data::Gauge(g)) => {
                let name =
                    metric_name(&metric.name, &metric.unit, NameKind::Gauge, strategy).map_err(name_err)?;
                self.metadata(&name, MetricType::Gauge, metric);
                self.number_points(ctx, &name, &g.data_points, false)?;
            }
            Some(Data::Sum(s)) => {
                let Some(delta) = self.temporality(metric, s.aggregation_temporality, s.data_points.len())
                else {
                    return Ok(());
                };
                let (kind, mtype) = if s.is_monotonic {
                    (NameKind::Counter, MetricType::Counter)
                } else {
                    (NameKind::NonMonotonicSum, MetricType::Gauge)
                };
                let name = metric_name(&metric.name, &metric.unit, kind, strategy).map_err(name_err)?;
                self.metadata(&name, mtype, metric);
                self.number_points(ctx, &name, &s.data_points, delta)?;
            }
            Some(Data::Histogram(h)) => {
                let Some(delta) = self.temporality(metric, h.aggregation_temporality, h.data_points.len())
                else {
                    return Ok(());
                };
                let name = metric_name(&metric.name, &metric.unit, NameKind::Distribution, strategy)
                    .map_err(name_err)?;
                self.metadata(&name, MetricType::Histogram, metric);
                self.histogram_points(ctx, &name, metric, &h.data_points, delta)?;
            }
            Some(Data::Summary(s)) => {
                let name = metric_name(&metric.name, &metric.unit, NameKind::Distribution, strategy)
                    .map_err(name_err)?;
                self.metadata(&name, MetricType::Summary, metric);
                self.summary_points(ctx, &name, &s.data_points)?;
            }
            Some(Data::ExponentialHistogram(e)) => {
                self.out.reject(e.data_points.len(), || {
                    format!(
                        "exponential histogram {:?} refused: it maps to a native histogram, which Vigil does not \
                         store yet (use explicit-bucket histograms)",
                        metric.name
                    )
                });
            }
        }
        Ok(())
    }

    /// `target_info` for a resource whose points span `[first, last]` ms.
    fn target_info(
        &mut self,
        ctx: &Context,
        resource: Option<&Resource>,
        first: i64,
        last: i64,
    ) -> Result<(), TranslateError> {
        let attrs = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let identifying = [SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID];
        let others = attrs.iter().filter(|kv| !identifying.contains(&kv.key.as_str())).count();
        if others == 0 || (ctx.job.is_none() && ctx.instance.is_none()) {
            return Ok(());
        }
        let kept: Vec<KeyValue> = attrs
            .iter()
            .filter(|kv| {
                self.opts.keep_identifying_resource_attributes || !identifying.contains(&kv.key.as_str())
            })
            .cloned()
            .collect();
        let bare = Context {
            shared: Vec::new(),
            scope: Vec::new(),
            job: ctx.job.clone(),
            instance: ctx.instance.clone(),
        };
        let labels = self.labels(&bare, &kept, &[(METRIC_NAME, TARGET_INFO)])?;
        let mut samples = Vec::new();
        // Past the bound, only the newest part of the span gets samples.
        let mut t = first.max(last.saturating_sub(MAX_TARGET_INFO_SAMPLES * TARGET_INFO_INTERVAL_MS));
        while t < last {
            samples.push(Sample { t, v: 1.0 });
            t = t.saturating_add(TARGET_INFO_INTERVAL_MS);
        }
        samples.push(Sample { t: last, v: 1.0 });
        self.out.series.push(OutSeries { labels, samples, delta: false, exemplars: Vec::new() });
        Ok(())
    }
}

/// The times of a metric's data points, in ns (for the span of `target_info`).
fn point_times(metric: &Metric) -> impl Iterator<Item = u64> + '_ {
    let times: Vec<u64> = match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::Histogram(h)) => h.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::Summary(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::ExponentialHistogram(_)) | None => Vec::new(),
    };
    times.into_iter()
}

/// Translates a whole request.
pub fn translate(
    req: &ExportMetricsServiceRequest,
    opts: &OtlpOptions,
) -> Result<Translated, TranslateError> {
    let mut tr = Translator { opts, out: Translated::default() };
    for rm in &req.resource_metrics {
        let mut ctx = tr.resource_context(rm.resource.as_ref())?;
        let (mut first, mut last) = (u64::MAX, 0u64);
        for sm in &rm.scope_metrics {
            ctx.scope = tr.scope_labels(sm.scope.as_ref(), &sm.schema_url)?;
            for metric in &sm.metrics {
                tr.metric(&ctx, metric)?;
                for t in point_times(metric) {
                    first = first.min(t);
                    last = last.max(t);
                }
            }
        }
        if last > 0 {
            tr.target_info(&ctx, rm.resource.as_ref(), millis(first), millis(last))?;
        }
    }
    Ok(tr.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exemplars::ExemplarStore;
    use crate::otlp::{DeltaState, write_otlp};
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum};
    use proptest::prelude::*;
    use vigil_storage::Matcher;
    use vigil_storage::memory::MemStorage;

    const T: u64 = 1_700_000_000_000_000_000;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn point(attrs: Vec<KeyValue>, v: f64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs,
            time_unix_nano: T,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn request(
        resource: Vec<KeyValue>,
        scope: Option<InstrumentationScope>,
        metrics: Vec<Metric>,
    ) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource { attributes: resource, ..Default::default() }),
                scope_metrics: vec![ScopeMetrics { scope, metrics, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.into(),
            data: Some(Data::Gauge(Gauge { data_points: points })),
            ..Default::default()
        }
    }

    fn labels_of(t: &Translated, name: &str) -> Vec<String> {
        t.series
            .iter()
            .filter(|s| s.labels.metric_name() == Some(name))
            .map(|s| s.labels.to_string())
            .collect()
    }

    fn service() -> Vec<KeyValue> {
        vec![
            kv("service.name", "api"),
            kv("service.instance.id", "i-1"),
            kv("k8s.pod.name", "pod-a"),
            kv("region", "eu"),
        ]
    }

    #[test]
    fn promoted_resource_attributes_go_on_every_series_and_point_attributes_win() {
        let req = request(
            service(),
            None,
            vec![gauge("g", vec![point(vec![kv("region", "us")], 1.0), point(vec![], 2.0)])],
        );
        let opts = OtlpOptions {
            promote_resource_attributes: vec!["k8s.pod.name".into(), "region".into()],
            ..Default::default()
        };
        let got = translate(&req, &opts).expect("translate");
        assert_eq!(
            labels_of(&got, "g"),
            vec![
                r#"{__name__="g", instance="i-1", job="api", k8s_pod_name="pod-a", region="us"}"#,
                r#"{__name__="g", instance="i-1", job="api", k8s_pod_name="pod-a", region="eu"}"#,
            ]
        );
        let all = OtlpOptions {
            promote_all_resource_attributes: true,
            ignore_resource_attributes: vec!["region".into()],
            ..Default::default()
        };
        let got = translate(&req, &all).expect("translate");
        assert_eq!(
            labels_of(&got, "g")[1],
            r#"{__name__="g", instance="i-1", job="api", k8s_pod_name="pod-a", service_instance_id="i-1", service_name="api"}"#
        );
    }

    #[test]
    fn target_info_samples_are_bounded_whatever_the_span() {
        let early = NumberDataPoint { time_unix_nano: 1, ..point(vec![], 1.0) };
        let req = request(service(), None, vec![gauge("g", vec![early, point(vec![], 2.0)])]);
        let got = translate(&req, &OtlpOptions::default()).expect("translate");
        let info =
            got.series.iter().find(|s| s.labels.metric_name() == Some("target_info")).expect("target_info");
        assert!(info.samples.len() as i64 <= MAX_TARGET_INFO_SAMPLES + 1, "{} samples", info.samples.len());
        assert_eq!(info.samples.last().map(|s| s.t), Some(millis(T)));
    }

    #[test]
    fn scope_metadata_and_identifying_attributes_when_configured() {
        let scope = InstrumentationScope { name: "lib".into(), version: "2.0".into(), ..Default::default() };
        let req = request(service(), Some(scope), vec![gauge("g", vec![point(vec![], 1.0)])]);
        let plain = translate(&req, &OtlpOptions::default()).expect("translate");
        assert_eq!(labels_of(&plain, "g"), vec![r#"{__name__="g", instance="i-1", job="api"}"#]);
        assert_eq!(
            labels_of(&plain, "target_info"),
            vec![r#"{__name__="target_info", instance="i-1", job="api", k8s_pod_name="pod-a", region="eu"}"#]
        );
        let opts = OtlpOptions {
            promote_scope_metadata: true,
            keep_identifying_resource_attributes: true,
            ..Default::default()
        };
        let got = translate(&req, &opts).expect("translate");
        assert_eq!(
            labels_of(&got, "g"),
            vec![
                r#"{__name__="g", instance="i-1", job="api", otel_scope_name="lib", otel_scope_version="2.0"}"#
            ]
        );
        assert!(
            labels_of(&got, "target_info")[0].contains(r#"service_instance_id="i-1", service_name="api""#)
        );
    }

    #[test]
    fn colliding_attribute_names_are_joined_in_key_order_and_utf8_strategies_keep_names() {
        let req = request(
            vec![],
            None,
            vec![gauge("my.gauge", vec![point(vec![kv("a_b", "2"), kv("a.b", "1")], 1.0)])],
        );
        let got = translate(&req, &OtlpOptions::default()).expect("translate");
        assert_eq!(labels_of(&got, "my_gauge"), vec![r#"{__name__="my_gauge", a_b="1;2"}"#]);
        assert!(labels_of(&got, "target_info").is_empty(), "no service attributes, no target_info");
        let utf8 = OtlpOptions {
            translation_strategy: TranslationStrategy::NoUtf8EscapingWithSuffixes,
            ..Default::default()
        };
        let got = translate(&req, &utf8).expect("translate");
        assert_eq!(labels_of(&got, "my.gauge"), vec![r#"{__name__="my.gauge", a.b="1", a_b="2"}"#]);
    }

    #[test]
    fn untranslatable_names_fail_the_whole_request() {
        let req = request(
            vec![],
            None,
            vec![gauge("ok", vec![point(vec![], 1.0)]), gauge("!!!", vec![point(vec![], 1.0)])],
        );
        let err = translate(&req, &OtlpOptions::default()).expect_err("bad metric name");
        assert!(err.0.contains("resulted in"), "{err}");
        let req = request(vec![], None, vec![gauge("ok", vec![point(vec![kv("", "x")], 1.0)])]);
        assert!(translate(&req, &OtlpOptions::default()).expect_err("empty key").0.contains("empty"));
    }

    fn histogram(
        name: &str,
        temporality: AggregationTemporality,
        counts: Vec<u64>,
        bounds: Vec<f64>,
        exemplars: Vec<OtlpExemplar>,
    ) -> Metric {
        let count = counts.iter().sum();
        Metric {
            name: name.into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                aggregation_temporality: temporality as i32,
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: T,
                    count,
                    sum: Some(1.5),
                    bucket_counts: counts,
                    explicit_bounds: bounds,
                    exemplars,
                    ..Default::default()
                }],
            })),
            ..Default::default()
        }
    }

    #[test]
    fn histogram_exemplars_land_on_their_bucket_and_bad_bucket_counts_are_refused() {
        let ex = |v: f64, trace: u8| OtlpExemplar {
            time_unix_nano: T,
            trace_id: vec![trace; 16],
            value: Some(exemplar::Value::AsDouble(v)),
            ..Default::default()
        };
        let req = request(
            vec![],
            None,
            vec![
                histogram(
                    "lat",
                    AggregationTemporality::Cumulative,
                    vec![1, 1, 1],
                    vec![0.1, 1.0],
                    vec![ex(0.5, 0xab), ex(9.0, 0xcd)],
                ),
                histogram("bad", AggregationTemporality::Cumulative, vec![1, 1], vec![0.1, 1.0], vec![]),
            ],
        );
        let got = translate(&req, &OtlpOptions::default()).expect("translate");
        assert_eq!(got.rejected_points, 1, "{:?}", got.messages);
        assert!(got.messages[0].contains("2 bucket counts for 2 bounds"), "{:?}", got.messages);
        let on = |le: &str| {
            got.series
                .iter()
                .find(|s| s.labels.get("le") == Some(le))
                .map(|s| {
                    s.exemplars
                        .iter()
                        .map(|e| e.labels.get("trace_id").unwrap_or("").len())
                        .collect::<Vec<_>>()
                })
                .expect("bucket")
        };
        assert_eq!((on("0.1"), on("1"), on("+Inf")), (vec![], vec![32], vec![32]));
        let store = MemStorage::new();
        let exemplars = ExemplarStore::default();
        write_otlp(&store, &exemplars, &DeltaState::new(), got).expect("write");
        let found = exemplars.query(&[vec![Matcher::equal("__name__", "lat_seconds_bucket")]], 0, i64::MAX);
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn delta_sums_are_refused_by_default_and_accumulated_when_converting() {
        let delta_sum = |v: f64| Metric {
            name: "jobs".into(),
            data: Some(Data::Sum(Sum {
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
                data_points: vec![NumberDataPoint {
                    time_unix_nano: T + v as u64 * 1_000_000_000,
                    ..point(vec![], v)
                }],
            })),
            ..Default::default()
        };
        let refused = translate(&request(vec![], None, vec![delta_sum(1.0)]), &OtlpOptions::default())
            .expect("translate");
        assert_eq!((refused.series.len(), refused.rejected_points), (0, 1));

        let opts = OtlpOptions { convert_delta_to_cumulative: true, ..Default::default() };
        let (store, deltas, exemplars) = (MemStorage::new(), DeltaState::new(), ExemplarStore::default());
        for v in [2.0, 3.0] {
            let t = translate(&request(vec![], None, vec![delta_sum(v)]), &opts).expect("translate");
            assert!(t.series[0].delta);
            write_otlp(&store, &exemplars, &deltas, t).expect("write");
        }
        let hints = vigil_storage::SelectHints { start: i64::MIN, end: i64::MAX, ..Default::default() };
        let mut series =
            vigil_storage::Querier::select(&store, &[Matcher::equal("__name__", "jobs_total")], &hints)
                .expect("select");
        let mut values = Vec::new();
        while let Some(s) = series[0].samples.next() {
            values.push(s.v);
        }
        assert_eq!(values, vec![2.0, 5.0]);
    }

    proptest! {
        #[test]
        fn arbitrary_names_units_and_attributes_never_panic(
            name in "\\PC{0,12}", unit in "\\PC{0,6}", key in "\\PC{0,8}", value in "\\PC{0,8}",
        ) {
            let mut metric = gauge(&name, vec![point(vec![kv(&key, &value)], 1.0)]);
            metric.unit = unit;
            let req = request(vec![kv("service.name", &value), kv(&key, &value)], None, vec![metric]);
            for strategy in [TranslationStrategy::UnderscoreEscapingWithSuffixes, TranslationStrategy::NoUtf8EscapingWithSuffixes, TranslationStrategy::NoTranslation, TranslationStrategy::UnderscoreEscapingWithoutSuffixes] {
                let _ = translate(&req, &OtlpOptions { translation_strategy: strategy, ..Default::default() });
            }
        }
    }
}
