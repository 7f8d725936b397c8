//! Prometheus duration strings (`30s`, `1h30m`) as milliseconds.

/// Parses a Prometheus duration into milliseconds.
pub fn parse_ms(text: &str) -> Result<i64, String> {
    let d = promql_parser::util::parse_duration(text)
        .map_err(|e| format!("not a valid duration string: {text:?}: {e}"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("duration out of range: {text:?}"))
}

/// Formats milliseconds as Prometheus prints a duration (`1m30s`, `0s`).
pub fn format_ms(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    promql_parser::util::display_duration(&std::time::Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_prometheus_durations() {
        assert_eq!(parse_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_ms("5m"), Ok(300_000));
        assert!(parse_ms("soon").is_err());
        assert_eq!(format_ms(90_000), "1m30s");
        assert_eq!(format_ms(0), "0s");
    }
}
