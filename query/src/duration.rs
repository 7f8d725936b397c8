//! Prometheus's duration strings (`1m30s`, `10s500ms`, `1d`, `0s`, `0`) in milliseconds: the
//! one parser shared by the API parameters, the config, flags, rules and test scripts.
//!
//! This is Prometheus's `model.ParseDuration`, not PromQL's range syntax: zero durations
//! are valid here (`for: 0s`), so promql-parser's duration parser cannot stand in for it.

/// Units of a Prometheus duration in the order they must appear, with their size in ms.
const DURATION_UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration (`0`, or numbers with units y, w, d, h, m, s, ms, each at
/// most once and in that order) into milliseconds; `None` when it is not one.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // The longest unit that matches, so "ms" wins over "m".
        let (idx, (unit, size)) = DURATION_UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        rest = &rest[unit.len()..];
        next_unit = idx + 1;
        total = total.checked_add(n.checked_mul(*size)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration_ms("0"), Some(0));
        assert_eq!(parse_duration_ms("0s"), Some(0));
        assert_eq!(parse_duration_ms("0m"), Some(0));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("10s500ms"), Some(10_500));
        assert_eq!(parse_duration_ms("1m0s"), Some(60_000));
        assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
        assert_eq!(parse_duration_ms("3600s"), Some(3_600_000));
        assert_eq!(parse_duration_ms("2y1w"), Some(2 * 31_536_000_000 + 604_800_000));
        for bad in ["", "5x", "m", "1.5m", "-1m", "1s1m", "1m1m"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad:?}");
        }
    }
}
