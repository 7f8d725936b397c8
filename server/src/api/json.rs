//! A small JSON writer that produces Prometheus's exact bytes: sample values as
//! strings formatted like Go's `strconv.FormatFloat`, timestamps as seconds with a
//! three-digit millisecond fraction, and strings escaped as Go's JSON encoder does
//! (`<`, `>`, `&` as `\u003c`…), so responses can be compared byte for byte.

use std::fmt::Write;

/// Smallest magnitude Prometheus writes without an exponent.
const PLAIN_MIN: f64 = 1e-6;
/// Magnitude from which Prometheus switches to exponent notation (Go's JSON cutoff).
const PLAIN_MAX: f64 = 1e21;

/// Formats a sample value as Prometheus does: `+Inf`, `-Inf`, `NaN`, plain decimal with
/// the shortest digits that round-trip, and exponent notation (`1e-07`, `1e+21`) only
/// below a millionth or from 1e21 up.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = v.abs();
    if abs == 0.0 || (PLAIN_MIN..PLAIN_MAX).contains(&abs) {
        // Rust's Display prints the shortest round-trip digits and never an exponent,
        // which is Go's FormatFloat(v, 'f', -1, 64).
        return format!("{v}");
    }
    // Go writes the exponent with a sign and at least two digits; Rust with neither.
    let lower = format!("{v:e}");
    let (mantissa, exp) = lower.split_once('e').unwrap_or((&lower, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

/// Appends a timestamp in ms as Prometheus writes it: seconds, then `.` and exactly
/// three digits of milliseconds unless they are zero (`1.5s` → `1.500`).
pub fn push_timestamp(out: &mut String, t_ms: i64) {
    let (sign, abs) = if t_ms < 0 { ("-", t_ms.unsigned_abs()) } else { ("", t_ms as u64) };
    let (secs, ms) = (abs / 1000, abs % 1000);
    if ms == 0 {
        let _ = write!(out, "{sign}{secs}");
    } else {
        let _ = write!(out, "{sign}{secs}.{ms:03}");
    }
}

/// Appends `s` as a JSON string with Go's escaping.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `[<ts>,"<value>"]`, the shape of one point.
pub fn push_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t_ms);
    out.push(',');
    push_str(out, &format_value(v));
    out.push(']');
}

/// Appends a JSON array of strings.
pub fn push_str_array<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    out.push('[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, s);
    }
    out.push(']');
}

/// Appends a JSON object of string pairs, in the order given.
pub fn push_str_object<'a>(out: &mut String, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_str(out, v);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_as_go_does() {
        let cases: &[(f64, &str)] = &[
            (2.0, "2"),
            (0.1, "0.1"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789012.5, "123456789012.5"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.000001, "0.000001"),
            (1e-7, "1e-07"),
            (-2.5e-10, "-2.5e-10"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (f64::from_bits(vigil_storage::STALE_NAN_BITS), "NaN"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ];
        for &(v, want) in cases {
            assert_eq!(format_value(v), want, "{v:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_finite_value_round_trips_and_uses_exponents_only_outside_the_plain_range(bits: u64) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            let s = format_value(v);
            proptest::prop_assert_eq!(s.parse::<f64>().map(f64::to_bits), Ok(v.to_bits()), "{}", s);
            let plain = v == 0.0 || (PLAIN_MIN..PLAIN_MAX).contains(&v.abs());
            proptest::prop_assert_eq!(!s.contains('e'), plain, "{}", s);
        }

        #[test]
        fn timestamps_round_trip_through_the_time_parser(t in -10_000_000_000_000i64..10_000_000_000_000i64) {
            let mut s = String::new();
            push_timestamp(&mut s, t);
            proptest::prop_assert_eq!(crate::api::params::parse_time(&s), Ok(t), "{}", s);
        }
    }

    #[test]
    fn timestamps_are_seconds_with_three_millisecond_digits() {
        let cases: &[(i64, &str)] = &[
            (4000, "4"),
            (1500, "1.500"),
            (1, "0.001"),
            (1_435_781_451_781, "1435781451.781"),
            (-1500, "-1.500"),
            (0, "0"),
        ];
        for &(t, want) in cases {
            let mut s = String::new();
            push_timestamp(&mut s, t);
            assert_eq!(s, want, "{t}");
        }
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\n<&>\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u003c\u0026\u003e\u0001é""#);
    }
}
