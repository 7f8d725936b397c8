//! Byte-level helpers shared by the rewrites that run before promql-parser sees a query
//! (duration expressions, `anchored`/`smoothed`).

/// Whether `c` can start a PromQL identifier.
pub(crate) fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

/// Whether `c` can continue a PromQL identifier.
pub(crate) fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// The index just past the string literal opening at `start` (its quote character);
/// backslash escapes count in `"` and `'` strings, not in raw backtick strings.
pub(crate) fn skip_string(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return i + 1;
        }
        i += 1;
    }
    b.len()
}
