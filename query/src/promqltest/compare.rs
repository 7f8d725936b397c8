//! Comparing an engine answer with a script's expectation, as Prometheus's runner does.

use std::collections::HashMap;

use vigil_storage::{Labels, is_stale_nan};

use super::notation::Point;
use crate::value::Value;

/// Relative tolerance of float comparison (Prometheus's runner uses 1e-6).
const EPSILON: f64 = 1e-6;

/// Whether two floats are equal within the runner's tolerance.
pub(crate) fn float_eq(a: f64, b: f64) -> bool {
    if a.to_bits() == b.to_bits() {
        return true;
    }
    if is_stale_nan(a) || is_stale_nan(b) {
        return false;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    let sum = a.abs() + b.abs();
    if a == 0.0 || b == 0.0 || sum < f64::MIN_POSITIVE {
        return diff < EPSILON * f64::MIN_POSITIVE;
    }
    diff / sum < EPSILON
}

/// The expected answer of an eval.
#[derive(Debug, Clone)]
pub(crate) enum Expected {
    /// Series lines (none: the result must be empty).
    Series(Vec<(Labels, Vec<Point>)>),
    /// A bare number: a scalar result.
    Scalar(f64),
    /// `expect string "..."`.
    String(String),
}

fn fmt_points(points: &[Point]) -> String {
    points
        .iter()
        .map(|p| match p {
            Point::Empty => "_".to_string(),
            Point::Value(v) => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders the expectation for a failure message.
pub(crate) fn describe_expected(e: &Expected) -> String {
    match e {
        Expected::Scalar(v) => format!("scalar {v}"),
        Expected::String(s) => format!("string {s:?}"),
        Expected::Series(s) if s.is_empty() => "empty result".into(),
        Expected::Series(s) => {
            s.iter().map(|(l, p)| format!("{l} {}", fmt_points(p))).collect::<Vec<_>>().join(" | ")
        }
    }
}

/// Renders an answer for a failure message.
pub(crate) fn describe_value(v: &Value) -> String {
    match v {
        Value::Scalar { v, .. } => format!("scalar {v}"),
        Value::String { v, .. } => format!("string {v:?}"),
        Value::Vector(els) if els.is_empty() => "empty vector".into(),
        Value::Vector(els) => {
            els.iter().map(|e| format!("{} {}", e.labels, e.v)).collect::<Vec<_>>().join(" | ")
        }
        Value::Matrix(ms) if ms.is_empty() => "empty matrix".into(),
        Value::Matrix(ms) => ms
            .iter()
            .map(|s| {
                let pts = s.samples.iter().map(|p| format!("{}@{}", p.v, p.t)).collect::<Vec<_>>().join(" ");
                format!("{} {pts}", s.labels)
            })
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

/// Checks an instant query's answer.
pub(crate) fn check_instant(e: &Expected, ordered: bool, got: &Value) -> Result<(), String> {
    match (e, got) {
        (Expected::Scalar(x), Value::Scalar { v, .. }) => {
            if float_eq(*x, *v) {
                Ok(())
            } else {
                Err("scalar differs".into())
            }
        }
        (Expected::String(x), Value::String { v, .. }) => {
            if x == v {
                Ok(())
            } else {
                Err("string differs".into())
            }
        }
        (Expected::Series(exp), Value::Vector(els)) => {
            if exp.len() != els.len() {
                return Err(format!("expected {} series, got {}", exp.len(), els.len()));
            }
            let mut want = Vec::with_capacity(exp.len());
            for (l, pts) in exp {
                match pts.as_slice() {
                    [Point::Value(v)] => want.push((l, *v)),
                    _ => return Err(format!("expected line for {l} must hold exactly one value")),
                }
            }
            if ordered {
                for (i, ((l, v), el)) in want.iter().zip(els).enumerate() {
                    if **l != el.labels || !float_eq(*v, el.v) {
                        return Err(format!("element {i} differs"));
                    }
                }
                return Ok(());
            }
            let got: HashMap<&Labels, f64> = els.iter().map(|e| (&e.labels, e.v)).collect();
            for (l, v) in want {
                match got.get(l) {
                    None => return Err(format!("missing series {l}")),
                    Some(g) if !float_eq(v, *g) => return Err(format!("value of {l} differs")),
                    Some(_) => {}
                }
            }
            Ok(())
        }
        _ => Err(format!("expected {}, got a {}", kind(e), got.type_name())),
    }
}

fn kind(e: &Expected) -> &'static str {
    match e {
        Expected::Scalar(_) => "a scalar",
        Expected::String(_) => "a string",
        Expected::Series(_) => "series",
    }
}

/// Checks a matrix answer: each expected series' k-th value sits at `start + k·step`.
pub(crate) fn check_matrix(e: &Expected, start: i64, step: i64, got: &Value) -> Result<(), String> {
    let (Expected::Series(exp), Value::Matrix(ms)) = (e, got) else {
        return Err(format!("expected {}, got a {}", kind(e), got.type_name()));
    };
    if exp.len() != ms.len() {
        return Err(format!("expected {} series, got {}", exp.len(), ms.len()));
    }
    if ms.windows(2).any(|w| w[0].labels > w[1].labels) {
        return Err("matrix is not sorted by labels".into());
    }
    let got: HashMap<&Labels, &[vigil_storage::Sample]> =
        ms.iter().map(|s| (&s.labels, s.samples.as_slice())).collect();
    for (l, pts) in exp {
        let Some(samples) = got.get(l) else {
            return Err(format!("missing series {l}"));
        };
        let want: Vec<(i64, f64)> = pts
            .iter()
            .enumerate()
            .filter_map(|(k, p)| match p {
                Point::Value(v) => Some((start + k as i64 * step, *v)),
                Point::Empty => None,
            })
            .collect();
        if want.len() != samples.len() {
            return Err(format!("series {l}: expected {} points, got {}", want.len(), samples.len()));
        }
        for ((t, v), s) in want.iter().zip(samples.iter()) {
            if *t != s.t || !float_eq(*v, s.v) {
                return Err(format!("series {l}: point at {t} differs"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_tolerance_matches_prometheus() {
        assert!(float_eq(1.0, 1.0 + 1e-9));
        assert!(!float_eq(1.0, 1.0001));
        assert!(float_eq(f64::NAN, f64::NAN));
        assert!(!float_eq(0.0, 1e-300));
        assert!(!float_eq(f64::NAN, vigil_storage::stale_nan()));
        assert!(float_eq(f64::INFINITY, f64::INFINITY));
    }
}
