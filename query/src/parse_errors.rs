//! Parse errors with positions, as Prometheus writes them (`1:18: parse error: ...`),
//! which Grafana shows to the user. `promql-parser` reports no positions, so a small
//! lexer modelled on Prometheus's finds lexical errors (unbalanced brackets,
//! unterminated strings, stray characters) with their exact place; other errors get
//! the place of the token they name, or of the expression's start.

/// The text of a failed parse: `line:col: parse error: msg`.
pub(crate) fn describe(query: &str, parser_message: &str) -> String {
    if let Some((pos, msg)) = lex_error(query) {
        return format!("{} parse error: {msg}", position(query, pos));
    }
    let pos = named_token(query, parser_message).unwrap_or_else(|| first_token(query));
    format!("{} parse error: {parser_message}", position(query, pos))
}

/// `line:col:` of a byte offset, counted as Prometheus counts (1-based, in bytes).
fn position(query: &str, pos: usize) -> String {
    let pos = pos.min(query.len());
    let before = &query.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    format!("{line}:{col}:")
}

/// Where the expression starts (after leading blanks and comments).
fn first_token(query: &str) -> usize {
    let b = query.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    if i >= b.len() { 0 } else { i }
}

/// The place of a token the parser's message quotes, such as the function of
/// `unknown function with name "foo"`, when it occurs once in the query.
fn named_token(query: &str, message: &str) -> Option<usize> {
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    let token = &message[start..start + len];
    if token.is_empty() {
        return None;
    }
    let at = query.find(token)?;
    (query[at + token.len()..].find(token).is_none()).then_some(at)
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Paren,
    Brace,
    Bracket,
}

/// The first lexical error and its byte offset, with Prometheus's wording.
fn lex_error(query: &str) -> Option<(usize, String)> {
    let b = query.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let in_braces = stack.last() == Some(&Open::Brace);
        match c {
            b'"' | b'\'' => {
                let start = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None | Some(b'\n') => return Some((start, "unterminated quoted string".into())),
                        Some(b'\\') => i += 2,
                        Some(&q) if q == c => break,
                        Some(_) => i += 1,
                    }
                }
            }
            b'`' => {
                let start = i;
                i += 1;
                while b.get(i).is_some_and(|&x| x != b'`') {
                    i += 1;
                }
                if i >= b.len() {
                    return Some((start, "unterminated raw string".into()));
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' if !in_braces => stack.push(Open::Paren),
            b')' if !in_braces => match stack.pop() {
                Some(Open::Paren) => {}
                None => return Some((i, "unexpected right parenthesis ')'".into())),
                // Anything subtler is left to the parser.
                Some(_) => return None,
            },
            b'{' if in_braces => return Some((i, "unexpected left brace '{'".into())),
            b'{' => stack.push(Open::Brace),
            b'}' if in_braces => {
                stack.pop();
            }
            b'[' if !in_braces => {
                if stack.contains(&Open::Bracket) {
                    return Some((i, "unexpected left bracket '['".into()));
                }
                stack.push(Open::Bracket);
            }
            b']' if !in_braces => match stack.pop() {
                Some(Open::Bracket) => {}
                None => return Some((i, "unexpected right bracket ']'".into())),
                Some(_) => return None,
            },
            _ if in_braces => {
                let ok = c.is_ascii_alphanumeric()
                    || matches!(c, b'_' | b',' | b'=' | b'!' | b'~' | b' ' | b'\t' | b'\n' | b'\r')
                    || c >= 0x80;
                if !ok {
                    return Some((i, format!("unexpected character inside braces: {}", go_rune(query, i))));
                }
            }
            _ => {
                let ok = c.is_ascii_alphanumeric()
                    || c >= 0x80
                    || matches!(
                        c,
                        b'_' | b':'
                            | b','
                            | b'.'
                            | b'+'
                            | b'-'
                            | b'*'
                            | b'/'
                            | b'%'
                            | b'^'
                            | b'='
                            | b'!'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b'~'
                            | b' '
                            | b'\t'
                            | b'\n'
                            | b'\r'
                            | b'}'
                    );
                if !ok {
                    return Some((i, format!("unexpected character: {}", go_rune(query, i))));
                }
            }
        }
        i += 1;
    }
    let end = query.len();
    match stack.last() {
        Some(Open::Brace) => Some((end, "unexpected end of input inside braces".into())),
        Some(Open::Bracket) => Some((end, "unclosed left bracket".into())),
        Some(Open::Paren) => Some((end, "unclosed left parenthesis".into())),
        None => None,
    }
}

/// A character quoted as Go's `%q` quotes a rune: `'$'`.
fn go_rune(query: &str, i: usize) -> String {
    let c = query.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
    match c {
        '\'' => "'\\''".into(),
        '\\' => "'\\\\'".into(),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_errors_have_prometheus_positions_and_words() {
        assert_eq!(describe("sum(rate(x[5m])", "x"), "1:16: parse error: unclosed left parenthesis");
        assert_eq!(describe("x)", "x"), "1:2: parse error: unexpected right parenthesis ')'");
        assert_eq!(describe("foo{", "x"), "1:5: parse error: unexpected end of input inside braces");
        assert_eq!(describe("foo{a=\"b}", "x"), "1:7: parse error: unterminated quoted string");
        assert_eq!(describe("x $ y", "x"), "1:3: parse error: unexpected character: '$'");
        assert_eq!(describe("x[5m", "x"), "1:5: parse error: unclosed left bracket");
        assert_eq!(describe("x]", "x"), "1:2: parse error: unexpected right bracket ']'");
        assert_eq!(describe("x{a=\"b\";}", "x"), "1:8: parse error: unexpected character inside braces: ';'");
        assert_eq!(describe("x +\n  y $", "x"), "2:5: parse error: unexpected character: '$'");
    }

    #[test]
    fn other_errors_point_at_the_named_token_or_the_start() {
        assert_eq!(
            describe("rate(foo(x))", "unknown function with name \"foo\""),
            "1:6: parse error: unknown function with name \"foo\""
        );
        assert_eq!(describe("  1 + x[5m]", "binary expression must contain only scalar and instant vector types"),
            "1:3: parse error: binary expression must contain only scalar and instant vector types");
        // Comments and strings are not brackets.
        assert_eq!(describe("x # (\n", "m"), "1:1: parse error: m");
        assert_eq!(describe("x{a=\"(\"}", "m"), "1:1: parse error: m");
    }
}
