//! The series notation of test scripts: `name{a="b"} 1+2x3 _ stale`, and durations.

use vigil_storage::{Labels, METRIC_NAME};

/// One expanded position of a value list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Point {
    /// `_`: no sample at this position.
    Empty,
    /// A float (a written `stale` is the staleness marker's bits).
    Value(f64),
}

/// A parsed `<series> <values>` line.
#[derive(Debug, Clone)]
pub(crate) struct SeriesLine {
    pub labels: Labels,
    /// The line is a start-timestamp line (`name{...}@st ...`).
    pub start_timestamps: bool,
    /// The values hold a native histogram (`{{...}}`).
    pub histogram: bool,
    pub points: Vec<Point>,
}

/// Parses a Prometheus duration such as `1m30s`, `10s500ms` or `0` into ms.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit_ms: i64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(unit_ms)?)?;
    }
    Some(if neg { -total } else { total })
}

/// Parses a float as the scripts write it (`Inf`, `NaN` in any case, Go hex integers).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    match body {
        "inf" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(|v| sign * v as f64);
    }
    if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

/// Splits `text` into the series descriptor and the rest of the line.
fn split_series(text: &str) -> Option<(&str, &str)> {
    let mut in_quote: Option<char> = None;
    let mut escaped = false;
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        if let Some(q) = in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_quote = None;
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => in_quote = Some(c),
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&text[..=i], &text[i + 1..]));
                }
            }
            c if c.is_whitespace() && depth == 0 => return Some((&text[..i], &text[i..])),
            _ => {}
        }
    }
    Some((text, ""))
}

/// Unquotes a Go-style string literal ("..." with escapes, or `...` raw).
pub(crate) fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if s.len() < 2 || !s.ends_with(q) || !matches!(q, '"' | '`' | '\'') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' {
        return Some(inner.to_string());
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            d @ '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let v = u32::from_str_radix(&format!("{d}{rest}"), 8).ok()?;
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Parses `name{a="b", "c"="d"}`, `name`, `{}` or `{"name"}` into labels.
pub(crate) fn parse_labels(desc: &str) -> Result<Labels, String> {
    let (name, body) = match desc.find('{') {
        Some(i) => {
            let body =
                desc[i + 1..].strip_suffix('}').ok_or_else(|| format!("unclosed braces in {desc:?}"))?;
            (desc[..i].trim(), Some(body))
        }
        None => (desc.trim(), None),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push((METRIC_NAME.to_string(), name.to_string()));
    }
    if let Some(body) = body {
        for item in split_items(body) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            match find_eq(item) {
                None => {
                    let n = unquote(item).ok_or_else(|| format!("bad label item {item:?}"))?;
                    pairs.push((METRIC_NAME.to_string(), n));
                }
                Some(i) => {
                    let (k, v) = (item[..i].trim(), item[i + 1..].trim());
                    let k =
                        if k.starts_with('"') { unquote(k).ok_or("bad label name")? } else { k.to_string() };
                    let v = unquote(v).ok_or_else(|| format!("bad label value {v:?}"))?;
                    pairs.push((k, v));
                }
            }
        }
    }
    Ok(Labels::from_pairs(pairs))
}

/// Splits at commas outside quotes.
fn split_items(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut q, mut esc) = (0, None::<char>, false);
    for (i, c) in s.char_indices() {
        if let Some(qc) = q {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == qc {
                q = None;
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => q = Some(c),
            ',' => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Position of the `=` outside quotes.
fn find_eq(s: &str) -> Option<usize> {
    let mut q = None::<char>;
    for (i, c) in s.char_indices() {
        match q {
            Some(qc) if c == qc => q = None,
            Some(_) => {}
            None if c == '"' => q = Some(c),
            None if c == '=' => return Some(i),
            None => {}
        }
    }
    None
}

/// Parses a whole `<series> <values>` line.
pub(crate) fn parse_series_line(line: &str) -> Result<SeriesLine, String> {
    let (desc, rest) = split_series(line).ok_or("empty series line")?;
    let (desc, rest, start_timestamps) = match (desc.strip_suffix("@st"), rest.strip_prefix("@st")) {
        (Some(d), _) => (d, rest, true),
        (None, Some(r)) => (desc, r, true),
        (None, None) => (desc, rest, false),
    };
    let labels = parse_labels(desc)?;
    if rest.contains("{{") {
        return Ok(SeriesLine { labels, start_timestamps, histogram: true, points: Vec::new() });
    }
    let mut points = Vec::new();
    if !start_timestamps {
        for tok in rest.split_whitespace() {
            expand(tok, &mut points)?;
        }
    }
    Ok(SeriesLine { labels, start_timestamps, histogram: false, points })
}

/// Expands one value item into positions.
fn expand(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if tok == "_" {
        out.push(Point::Empty);
        return Ok(());
    }
    if tok == "stale" {
        out.push(Point::Value(vigil_storage::stale_nan()));
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad repeat {tok:?}"))?;
        out.extend(std::iter::repeat_n(Point::Empty, n));
        return Ok(());
    }
    let Some(xi) = tok.rfind('x') else {
        out.push(Point::Value(parse_number(tok).ok_or_else(|| format!("bad value {tok:?}"))?));
        return Ok(());
    };
    let times: usize = tok[xi + 1..].parse().map_err(|_| format!("bad repeat count in {tok:?}"))?;
    let head = &tok[..xi];
    let bytes = head.as_bytes();
    let split =
        (1..bytes.len()).find(|&i| matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (start, delta) = match split {
        Some(i) => (
            parse_number(&head[..i]).ok_or_else(|| format!("bad value {tok:?}"))?,
            parse_number(&head[i..]).ok_or_else(|| format!("bad increment {tok:?}"))?,
        ),
        None => (parse_number(head).ok_or_else(|| format!("bad value {tok:?}"))?, 0.0),
    };
    // Values accumulate step by step, as Prometheus's loader does.
    let mut v = start;
    for _ in 0..=times {
        out.push(Point::Value(v));
        v += delta;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(s: &str) -> Vec<Point> {
        parse_series_line(&format!("m {s}")).unwrap().points
    }

    #[test]
    fn expands_value_forms() {
        use Point::*;
        assert_eq!(vals("0+10x2"), vec![Value(0.0), Value(10.0), Value(20.0)]);
        assert_eq!(vals("5-1x1 _x2 7"), vec![Value(5.0), Value(4.0), Empty, Empty, Value(7.0)]);
        assert_eq!(vals("1x2"), vec![Value(1.0); 3]);
        assert_eq!(vals("1e3+1e-1x1"), vec![Value(1000.0), Value(1000.1)]);
        let Value(s) = vals("stale")[0] else { panic!() };
        assert!(vigil_storage::is_stale_nan(s));
        assert!(matches!(vals("-Inf")[0], Value(v) if v == f64::NEG_INFINITY));
    }

    #[test]
    fn parses_labels() {
        let l = parse_series_line(r#"http_requests{job="api, x", "my.label"="a\"b"} 1"#).unwrap().labels;
        assert_eq!(l.to_string(), r#"{__name__="http_requests", job="api, x", my.label="a\"b"}"#);
        assert!(parse_labels("{}").unwrap().is_empty());
        assert_eq!(parse_labels(r#"{"utf.name", a="1"}"#).unwrap().metric_name(), Some("utf.name"));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("10s500ms"), Some(10_500));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5x"), None);
    }
}
