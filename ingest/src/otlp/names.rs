//! Metric and label names for OTLP data, following Prometheus's documented OTLP
//! translation: the translation strategy decides whether names are escaped to the
//! legacy character set and whether unit and type suffixes are added.
//!
//! With escaping, a metric name is cut into tokens at every character outside
//! `[a-zA-Z0-9:]` (so runs of `_` collapse), the unit's suffix tokens are added unless
//! already present, `total` is moved to the end for monotonic counters and `ratio`
//! for gauges of unit `1`, and a leading digit gets a `_` prefix. Without escaping the
//! name is kept and suffixes are appended when missing.

use std::fmt;
use std::str::FromStr;

/// How OTLP names become Prometheus names (`otlp.translation_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TranslationStrategy {
    /// Escape to `[a-zA-Z0-9_:]` and add unit and type suffixes (Prometheus's default).
    #[default]
    UnderscoreEscapingWithSuffixes,
    /// Escape, but add no suffixes.
    UnderscoreEscapingWithoutSuffixes,
    /// Keep UTF-8 names and add unit and type suffixes.
    NoUtf8EscapingWithSuffixes,
    /// Keep names exactly as sent (experimental in Prometheus: names may collide).
    NoTranslation,
}

impl TranslationStrategy {
    /// Prometheus's spelling of the strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            TranslationStrategy::UnderscoreEscapingWithSuffixes => "UnderscoreEscapingWithSuffixes",
            TranslationStrategy::UnderscoreEscapingWithoutSuffixes => "UnderscoreEscapingWithoutSuffixes",
            TranslationStrategy::NoUtf8EscapingWithSuffixes => "NoUTF8EscapingWithSuffixes",
            TranslationStrategy::NoTranslation => "NoTranslation",
        }
    }

    /// True when names are escaped to the legacy character set.
    pub fn escapes(self) -> bool {
        matches!(
            self,
            TranslationStrategy::UnderscoreEscapingWithSuffixes
                | TranslationStrategy::UnderscoreEscapingWithoutSuffixes
        )
    }

    /// True when unit and type suffixes are added.
    pub fn adds_suffixes(self) -> bool {
        matches!(
            self,
            TranslationStrategy::UnderscoreEscapingWithSuffixes
                | TranslationStrategy::NoUtf8EscapingWithSuffixes
        )
    }
}

impl fmt::Display for TranslationStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TranslationStrategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            TranslationStrategy::UnderscoreEscapingWithSuffixes,
            TranslationStrategy::UnderscoreEscapingWithoutSuffixes,
            TranslationStrategy::NoUtf8EscapingWithSuffixes,
            TranslationStrategy::NoTranslation,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| {
            format!(
                "unknown otlp.translation_strategy {s:?}: expected UnderscoreEscapingWithSuffixes, \
                 UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes or NoTranslation"
            )
        })
    }
}

/// The kind of metric a name is built for; it decides the type suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// Gauge (no type suffix; `_ratio` for unit `1`).
    Gauge,
    /// A non-monotonic sum: a gauge in Prometheus, but no `_ratio`.
    NonMonotonicSum,
    /// A monotonic cumulative sum (`_total`).
    Counter,
    /// A histogram or summary (suffixes come later: `_bucket`, `_sum`, `_count`).
    Distribution,
}

/// The Prometheus unit word for a UCUM main unit; unknown units are kept as sent.
fn main_unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The Prometheus word for a UCUM "per" unit (`By/s` → `per_second`).
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The main and per suffixes of a unit, unescaped; `{annotations}` give none.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit.trim(), None),
    };
    let usable = |u: &str| !u.is_empty() && !u.contains(['{', '}']);
    let main = if usable(main) { main_unit_word(main).to_owned() } else { String::new() };
    let per = match per {
        Some(p) if usable(p) => format!("per_{}", per_unit_word(p)),
        _ => String::new(),
    };
    (main, per)
}

/// True for the characters a legacy metric name token may hold.
fn is_metric_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Escapes a unit word: invalid characters to `_`, runs collapsed, leading `_` dropped.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_metric_token_char(c) { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out.trim_start_matches('_').to_owned()
}

/// Drops `suffix` and the one delimiter before it, when the name is longer than both.
fn trim_suffix(name: &str, suffix: &str) -> String {
    if name.ends_with(suffix) && name.len() > suffix.len() + 1 {
        let cut = name.len() - suffix.len() - 1;
        if name.is_char_boundary(cut) {
            return name[..cut].to_owned();
        }
    }
    name.to_owned()
}

/// Builds the Prometheus metric name of an OTLP metric.
pub fn metric_name(
    name: &str,
    unit: &str,
    kind: NameKind,
    strategy: TranslationStrategy,
) -> Result<String, String> {
    let built = match (strategy.escapes(), strategy.adds_suffixes()) {
        (true, true) => escaped_with_suffixes(name, unit, kind),
        (true, false) => {
            let tokens: Vec<&str> = name
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_'))
                .filter(|t| !t.is_empty())
                .collect();
            let joined = tokens.join("_");
            if joined.starts_with(|c: char| c.is_ascii_digit()) { format!("_{joined}") } else { joined }
        }
        (false, true) => utf8_with_suffixes(name, unit, kind),
        (false, false) => name.to_owned(),
    };
    if built.is_empty() {
        return Err(format!("normalization for metric {name:?} resulted in empty name"));
    }
    if built != name && built.chars().all(|c| c == '_') {
        return Err(format!("normalization for metric {name:?} resulted in invalid name {built:?}"));
    }
    Ok(built)
}

fn escaped_with_suffixes(name: &str, unit: &str, kind: NameKind) -> String {
    let mut tokens: Vec<String> =
        name.split(|c: char| !is_metric_token_char(c)).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    let (main, per) = unit_suffixes(unit);
    let (mut main, per) = (clean_unit(&main), clean_unit(&per));
    if tokens.contains(&main) {
        main.clear();
    }
    let per = if per == "per_" {
        String::new()
    } else {
        let p = per.strip_suffix('_').unwrap_or(&per).to_owned();
        if tokens.contains(&p) { String::new() } else { p }
    };
    if !per.is_empty() && main.ends_with('_') {
        main.pop();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    if unit == "1" && kind == NameKind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    let joined = tokens.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) { format!("_{joined}") } else { joined }
}

fn utf8_with_suffixes(name: &str, unit: &str, kind: NameKind) -> String {
    let mut name = name.to_owned();
    // Suffixes are stripped and re-added outermost first: `_ratio`/`_total` last.
    let ratio = unit == "1" && kind == NameKind::Gauge;
    if ratio {
        name = trim_suffix(&name, "ratio");
    }
    let total = kind == NameKind::Counter;
    if total {
        name = trim_suffix(&name, "total");
    }
    let (main, per) = unit_suffixes(unit);
    if !per.is_empty() {
        name = trim_suffix(&name, &per);
    }
    if !main.is_empty() && !name.ends_with(&main) {
        name = format!("{name}_{main}");
    }
    if !per.is_empty() {
        name = format!("{name}_{per}");
    }
    if total {
        name.push_str("_total");
    }
    if ratio {
        name.push_str("_ratio");
    }
    name
}

/// The Prometheus unit of an OTLP unit, as `/api/v1/metadata` shows it (`By/s` →
/// `bytes_per_second`, `1` and `{annotations}` → empty).
pub fn unit_name(unit: &str, strategy: TranslationStrategy) -> String {
    let (main, per) = unit_suffixes(unit);
    let (main, per) = if strategy.escapes() { (clean_unit(&main), clean_unit(&per)) } else { (main, per) };
    let joined = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    joined.trim_matches('_').to_owned()
}

/// Builds the Prometheus label name of an OTLP attribute key: with escaping, invalid
/// characters become `_`, a leading digit gets `key_` and a single leading `_` gets
/// `key`; names that end up empty or all underscores are refused.
pub fn label_name(key: &str, strategy: TranslationStrategy) -> Result<String, String> {
    if key.is_empty() {
        return Err("label name is empty".to_owned());
    }
    if !strategy.escapes() {
        return Ok(key.to_owned());
    }
    let mut out: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out = format!("key_{out}");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out = format!("key{out}");
    }
    if out != key && out.chars().all(|c| c == '_') {
        return Err(format!("normalization for label name {key:?} resulted in invalid name {out:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NameKind::*;
    use TranslationStrategy::*;

    fn build(name: &str, unit: &str, kind: NameKind) -> String {
        metric_name(name, unit, kind, UnderscoreEscapingWithSuffixes).expect("valid")
    }

    #[test]
    fn documented_examples() {
        assert_eq!(build("http.server.duration", "s", Distribution), "http_server_duration_seconds");
        assert_eq!(
            build("http.server.request.duration", "s", Distribution),
            "http_server_request_duration_seconds"
        );
        assert_eq!(build("requests.count", "1", Counter), "requests_count_total");
        assert_eq!(build("memory.usage", "By", Gauge), "memory_usage_bytes");
        assert_eq!(build("system.cpu.utilization", "1", Gauge), "system_cpu_utilization_ratio");
        assert_eq!(build("system.network.io", "By/s", Gauge), "system_network_io_bytes_per_second");
        assert_eq!(build("queue.length", "{items}", Gauge), "queue_length");
        assert_eq!(build("temp", "Cel", Gauge), "temp_celsius");
    }

    #[test]
    fn suffix_tokens_are_not_repeated_and_total_moves_to_the_end() {
        assert_eq!(build("latency_seconds", "s", Gauge), "latency_seconds");
        assert_eq!(build("requests_total_count", "", Counter), "requests_count_total");
        assert_eq!(build("a__b...c", "", Gauge), "a_b_c");
        assert_eq!(build("2xx.responses", "", Counter), "_2xx_responses_total");
        assert_eq!(build("disk.io", "KiBy", NonMonotonicSum), "disk_io_kibibytes");
        assert_eq!(build("load", "1", NonMonotonicSum), "load", "no _ratio for non-monotonic sums");
        assert_eq!(build("odd", "foo/bar", Gauge), "odd_foo_per_bar");
    }

    #[test]
    fn other_strategies() {
        let s = |name, unit, kind, strat| metric_name(name, unit, kind, strat).expect("valid");
        assert_eq!(
            s("http.server.duration", "s", Distribution, UnderscoreEscapingWithoutSuffixes),
            "http_server_duration"
        );
        assert_eq!(
            s("http.server.duration", "s", Distribution, NoUtf8EscapingWithSuffixes),
            "http.server.duration_seconds"
        );
        assert_eq!(s("requests", "1", Counter, NoUtf8EscapingWithSuffixes), "requests_total");
        assert_eq!(s("requests_total", "", Counter, NoUtf8EscapingWithSuffixes), "requests_total");
        assert_eq!(s("cpu.util", "1", Gauge, NoUtf8EscapingWithSuffixes), "cpu.util_ratio");
        assert_eq!(s("net.io", "By/s", Gauge, NoUtf8EscapingWithSuffixes), "net.io_bytes_per_second");
        assert_eq!(s("http.server.duration", "s", Distribution, NoTranslation), "http.server.duration");
    }

    #[test]
    fn untranslatable_names_are_errors() {
        assert!(metric_name("...", "", Gauge, UnderscoreEscapingWithSuffixes).is_err());
        assert!(metric_name("", "", Gauge, NoTranslation).is_err());
        assert!(label_name("", UnderscoreEscapingWithSuffixes).is_err());
        assert!(label_name("..", UnderscoreEscapingWithSuffixes).is_err());
    }

    #[test]
    fn label_names() {
        let l = |k| label_name(k, UnderscoreEscapingWithSuffixes).expect("valid");
        assert_eq!(l("http.method"), "http_method");
        assert_eq!(l("123abc"), "key_123abc");
        assert_eq!(l("_private"), "key_private");
        assert_eq!(l("__reserved__"), "__reserved__");
        assert_eq!(l("a..b"), "a__b", "runs of underscores in labels are kept");
        assert_eq!(label_name("http.method", NoUtf8EscapingWithSuffixes).expect("valid"), "http.method");
    }

    #[test]
    fn strategy_round_trips_through_its_name() {
        for s in [
            UnderscoreEscapingWithSuffixes,
            UnderscoreEscapingWithoutSuffixes,
            NoUtf8EscapingWithSuffixes,
            NoTranslation,
        ] {
            assert_eq!(s.as_str().parse::<TranslationStrategy>(), Ok(s));
        }
        assert!("bogus".parse::<TranslationStrategy>().is_err());
    }
}
