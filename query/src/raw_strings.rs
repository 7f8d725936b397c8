//! Backtick (raw) strings, which `promql-parser` escape-checks as if they were
//! double-quoted (so `` {a=~`\d+`} `` fails): rewritten into double-quoted strings
//! whose escapes give back exactly the raw text, before parsing.

/// Rewrites every `` `raw` `` string outside quotes and comments into `"raw"` with
/// `\` and `"` (and line breaks) escaped; everything else is left as it is.
pub(crate) fn rewrite_raw_strings(query: &str) -> String {
    if !query.contains('`') {
        return query.to_string();
    }
    let mut out = String::with_capacity(query.len() + 8);
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                copy_quoted(&mut chars, c, &mut out);
            }
            '#' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '`' => {
                out.push('"');
                let mut closed = false;
                for d in chars.by_ref() {
                    match d {
                        '`' => {
                            closed = true;
                            break;
                        }
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        _ => out.push(d),
                    }
                }
                // An unterminated raw string stays unterminated, so the parser reports it.
                if closed {
                    out.push('"');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Copies a quoted string's rest (after its opening `quote`) including the close.
fn copy_quoted(chars: &mut std::str::Chars<'_>, quote: char, out: &mut String) {
    while let Some(d) = chars.next() {
        out.push(d);
        if d == '\\' {
            if let Some(e) = chars.next() {
                out.push(e);
            }
        } else if d == quote {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_become_equivalent_quoted_strings() {
        assert_eq!(rewrite_raw_strings(r"x{a=~`\d+`}"), r#"x{a=~"\\d+"}"#);
        assert_eq!(rewrite_raw_strings(r#"x{a=`say "hi"`}"#), r#"x{a="say \"hi\""}"#);
        assert_eq!(rewrite_raw_strings("x{a=`l1\nl2`}"), r#"x{a="l1\nl2"}"#);
        // Backticks inside other strings and comments are not strings.
        assert_eq!(rewrite_raw_strings(r#"x{a="`\"`"} # `c`"#), r#"x{a="`\"`"} # `c`"#);
        assert_eq!(rewrite_raw_strings("x{a='`'}"), "x{a='`'}");
        assert_eq!(rewrite_raw_strings("x{a=`open"), "x{a=\"open");
    }
}
