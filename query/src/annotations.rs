//! Warnings and infos as Prometheus words them, with the `(line:col)` of the
//! sub-expression they are about.
//!
//! `promql-parser` keeps no positions, so the position is found in the query text:
//! the first call of the named function (or aggregation), or one of its arguments.
//! That is exact for the usual single-use queries and points at the first use when
//! a function appears more than once.

/// Byte offset of the `arg`-th argument of the first call of `func`.
pub(crate) fn argument_offset(query: &str, func: &str, arg: usize) -> Option<usize> {
    let (line, col) = position(query, func, Some(arg))?;
    let line_start: usize = query.split('\n').take(line - 1).map(|l| l.len() + 1).sum();
    let line_text = query[line_start..].split('\n').next().unwrap_or("");
    let byte_col: usize = line_text.chars().take(col - 1).map(char::len_utf8).sum();
    Some(line_start + byte_col)
}

/// Position of the first call of `func` (`name(` at an identifier boundary), or of its
/// `arg`-th argument when `arg` is given.
pub(crate) fn position(query: &str, func: &str, arg: Option<usize>) -> Option<(usize, usize)> {
    let b = query.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut from = 0;
    let call = loop {
        let i = from + query[from..].find(func)?;
        let end = i + func.len();
        let open = end + b[end..].iter().take_while(|c| c.is_ascii_whitespace()).count();
        let boundary = (i == 0 || !is_ident(b[i - 1])) && (end == b.len() || !is_ident(b[end]));
        // Aggregations may put `by (...)`/`without (...)` before their arguments.
        if boundary
            && (b.get(open) == Some(&b'(')
                || query[open..].starts_with("by")
                || query[open..].starts_with("without"))
        {
            break (i, open);
        }
        from = i + 1;
    };
    let at = match arg {
        None => call.0,
        Some(k) => argument_start(b, call.1, k)?,
    };
    let before = &query[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

/// Byte offset where the `k`-th argument of the call whose name ends before `from`
/// begins, skipping any `by (...)`/`without (...)` clause before the arguments.
pub(crate) fn argument_start(b: &[u8], from: usize, k: usize) -> Option<usize> {
    let mut i = from;
    // Skip to the argument list: the '(' that is not a grouping clause.
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'(') {
            break;
        }
        // A grouping keyword and its list.
        while i < b.len() && b[i] != b'(' {
            i += 1;
        }
        i = close_of(b, i)? + 1;
    }
    let close = close_of(b, i)?;
    if b[i + 1..close].iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    // The argument list might be followed by a grouping clause; arguments are inside.
    let mut depth = 0;
    let mut idx = 0;
    let mut start = i + 1;
    let mut j = i;
    while j < close {
        match b[j] {
            b'"' | b'\'' | b'`' => {
                let q = b[j];
                j += 1;
                while j < close && b[j] != q {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 1 => {
                if idx == k {
                    break;
                }
                idx += 1;
                start = j + 1;
            }
            _ => {}
        }
        j += 1;
    }
    if idx != k {
        return None;
    }
    while start < close && b[start].is_ascii_whitespace() {
        start += 1;
    }
    Some(start)
}

fn close_of(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut j = open;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' | b'`' => {
                let q = b[j];
                j += 1;
                while j < b.len() && b[j] != q {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

/// Appends the position suffix Prometheus puts on annotations.
pub(crate) fn with_position(text: String, pos: Option<(usize, usize)>) -> String {
    match pos {
        Some((l, c)) => format!("{text} ({l}:{c})"),
        None => text,
    }
}

/// Formats a float as Go's `%g` does for the values annotations mention.
pub(crate) fn go_g(v: f64) -> String {
    crate::mathx::format_float(v).trim_start_matches('+').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_and_arguments() {
        assert_eq!(position("sort(series)", "sort", None), Some((1, 1)));
        assert_eq!(
            position("histogram_quantile(0.5, myHistogram1)", "histogram_quantile", Some(1)),
            Some((1, 25))
        );
        assert_eq!(position("quantile without(point)(NaN, data)", "quantile", Some(0)), Some((1, 25)));
        assert_eq!(position("x + sort_desc(y)", "sort", None), None);
        assert_eq!(position("x + sort_desc(y)", "sort_desc", None), Some((1, 5)));
    }
}
