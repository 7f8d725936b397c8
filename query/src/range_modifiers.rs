//! The `anchored` and `smoothed` selector modifiers of Prometheus 3, which
//! `promql-parser` does not accept. Before parsing, each modifier keyword is removed
//! and recorded as a reserved matcher on the selector it follows
//! (`x[1m] anchored` becomes `x{__vigil_range_modifier__="anchored"}[1m]`); the plan
//! converter takes that matcher out again and sets [`RangeModifier`].

use crate::lexing::{is_ident, is_ident_start, skip_string};

/// The reserved label name that carries the modifier through the parser.
pub(crate) const MODIFIER_LABEL: &str = "__vigil_range_modifier__";

/// How a selector reads samples around its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum RangeModifier {
    /// Prometheus's default.
    #[default]
    None,
    /// The last sample at or before the window start (within the lookback) is added
    /// as the window's first point; no extrapolation.
    Anchored,
    /// Values at the window edges (or at the instant) are interpolated from the
    /// samples around them.
    Smoothed,
}

impl RangeModifier {
    /// Reads the value of the reserved matcher.
    pub(crate) fn from_name(s: &str) -> Option<RangeModifier> {
        match s {
            "anchored" => Some(RangeModifier::Anchored),
            "smoothed" => Some(RangeModifier::Smoothed),
            _ => None,
        }
    }

    /// The keyword.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RangeModifier::None => "",
            RangeModifier::Anchored => "anchored",
            RangeModifier::Smoothed => "smoothed",
        }
    }
}

/// Words that are never metric names of a selector.
const KEYWORDS: &[&str] = &[
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
    "fill",
    "fill_left",
    "fill_right",
];

fn skip_block(b: &[u8], open: usize, o: u8, c: u8) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') if o == b'{' => {
                let _ = q;
                i = skip_string(b, i);
                continue;
            }
            x if x == o => depth += 1,
            x if x == c => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Moves every `anchored`/`smoothed` keyword into a reserved matcher of the selector
/// before it. Queries without the keywords come back unchanged.
pub(crate) fn rewrite(query: &str) -> String {
    let lower = query.to_ascii_lowercase();
    if !lower.contains("anchored") && !lower.contains("smoothed") {
        return query.to_string();
    }
    let b = query.as_bytes();
    // Where the reserved matcher goes for the last selector seen, and whether it
    // needs its own braces.
    let mut last: Option<(usize, bool)> = None;
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            i = skip_string(b, i);
        } else if c == b'{' {
            last = Some((i + 1, false));
            i = skip_block(b, i, b'{', b'}');
        } else if c == b'[' {
            i = skip_block(b, i, b'[', b']');
        } else if c.is_ascii_digit() || c == b'.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = lower[start..i].to_string();
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let next = b.get(j).copied();
            if (word == "anchored" || word == "smoothed") && next != Some(b'(') && next != Some(b'{') {
                if let Some((at, braces)) = last {
                    let m = format!("{MODIFIER_LABEL}=\"{word}\"");
                    let text = if braces { format!("{{{m}}}") } else { format!("{m},") };
                    edits.push((at, at, text));
                    edits.push((start, i, String::new()));
                }
                continue;
            }
            if next == Some(b'(') || KEYWORDS.contains(&word.as_str()) {
                continue;
            }
            if next == Some(b'{') && j == i {
                last = Some((i + 1, false));
                i = skip_block(b, i, b'{', b'}');
            } else {
                last = Some((i, true));
            }
        } else {
            i += 1;
        }
    }
    edits.sort_by_key(|e| (e.0, e.1));
    let mut out = String::with_capacity(query.len() + 64);
    let mut pos = 0;
    for (from, to, text) in edits {
        out.push_str(&query[pos..from]);
        out.push_str(&text);
        pos = to;
    }
    out.push_str(&query[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_keywords_into_matchers() {
        assert_eq!(rewrite("rate(x[1m])"), "rate(x[1m])");
        assert_eq!(
            rewrite("increase(metric[1m] anchored)"),
            r#"increase(metric{__vigil_range_modifier__="anchored"}[1m] )"#
        );
        assert_eq!(
            rewrite(r#"rate(m{a="b"}[5m] offset 1m smoothed) + x"#),
            r#"rate(m{__vigil_range_modifier__="smoothed",a="b"}[5m] offset 1m ) + x"#
        );
        assert_eq!(
            rewrite("metric @ 100 smoothed + 0"),
            r#"metric{__vigil_range_modifier__="smoothed"} @ 100  + 0"#
        );
    }
}
