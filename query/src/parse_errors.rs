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
    if parser_message == GENERIC_PARSER_ERROR && ends_expecting_more(query) {
        return format!("{} parse error: unexpected end of input", position(query, query.len()));
    }
    let (msg, pos) = prometheus_wording(query, parser_message);
    let pos = pos.or_else(|| named_token(query, &msg)).unwrap_or_else(|| first_token(query));
    format!("{} parse error: {msg}", position(query, pos))
}

/// What `promql-parser` says for any grammar error it has no better words for.
const GENERIC_PARSER_ERROR: &str = "invalid promql query";

/// Whether the query stops right after an operator or a comma, where Prometheus
/// reports "unexpected end of input".
fn ends_expecting_more(query: &str) -> bool {
    let code = query.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    code.trim_end().ends_with(['+', '-', '*', '/', '%', '^', '=', '<', '>', ','])
}

/// Aggregations whose first argument is a parameter.
const PARAMETER_AGGREGATIONS: [&str; 6] =
    ["topk", "bottomk", "quantile", "count_values", "limitk", "limit_ratio"];
/// Every aggregation operator.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// Rewrites the parser's type errors into Prometheus's words (`"rate"` not `'rate'`,
/// "range vector" not "matrix") and finds the argument they are about.
fn prometheus_wording(query: &str, message: &str) -> (String, Option<usize>) {
    let types = |m: &str| {
        m.replace("type matrix", "type range vector")
            .replace("got matrix", "got range vector")
            .replace("type vector", "type instant vector")
            .replace("got vector", "got instant vector")
    };
    let msg = requote(message);
    if let Some(rest) = message.strip_prefix("expected type ")
        && let Some(at) = rest.find(" in call to function '")
    {
        let name = rest[at + " in call to function '".len()..].split('\'').next().unwrap_or("");
        // The argument of the expected type: the range argument is the second of
        // quantile_over_time, the first elsewhere.
        let arg = usize::from(name == "quantile_over_time" && rest.starts_with("matrix"));
        let pos = crate::annotations::argument_offset(query, name, arg);
        return (types(&msg), pos);
    }
    if let Some(rest) = message.strip_prefix("expected type ")
        && rest.contains(" in aggregation expression")
    {
        let agg = first_aggregation(query);
        let is_param = rest.starts_with("scalar") || rest.starts_with("string");
        let (msg, arg) = if is_param {
            (msg.replace("aggregation expression", "aggregation parameter"), 0)
        } else {
            (msg, usize::from(agg.is_some_and(|a| PARAMETER_AGGREGATIONS.contains(&a))))
        };
        let pos = agg.and_then(|a| crate::annotations::argument_offset(query, a, arg));
        return (types(&msg), pos);
    }
    (msg, None)
}

/// The parser quotes names with '...'; Prometheus with "...".
fn requote(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('\'');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    // Only balanced pairs around a plain name are requoted.
    let mut i = 0;
    while i < rest.len() {
        let name = rest[i];
        if i + 1 < rest.len()
            && !name.is_empty()
            && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':')
        {
            out.push('"');
            out.push_str(name);
            out.push('"');
            out.push_str(rest[i + 1]);
            i += 2;
        } else {
            out.push('\'');
            out.push_str(name);
            i += 1;
        }
    }
    out
}

/// The first aggregation called in the query.
fn first_aggregation(query: &str) -> Option<&'static str> {
    AGGREGATIONS
        .iter()
        .filter_map(|a| crate::annotations::argument_offset(query, a, 0).map(|p| (p, *a)))
        .min()
        .map(|(_, a)| a)
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
                // Prometheus's lexer reports this after the parenthesis.
                None => return Some((i + 1, "unexpected right parenthesis ')'".into())),
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
        assert_eq!(describe("x)", "x"), "1:3: parse error: unexpected right parenthesis ')'");
        assert_eq!(describe("foo{", "x"), "1:5: parse error: unexpected end of input inside braces");
        assert_eq!(describe("foo{a=\"b}", "x"), "1:7: parse error: unterminated quoted string");
        assert_eq!(describe("x $ y", "x"), "1:3: parse error: unexpected character: '$'");
        assert_eq!(describe("x[5m", "x"), "1:5: parse error: unclosed left bracket");
        assert_eq!(describe("x]", "x"), "1:2: parse error: unexpected right bracket ']'");
        assert_eq!(describe("x{a=\"b\";}", "x"), "1:8: parse error: unexpected character inside braces: ';'");
        assert_eq!(describe("x +\n  y $", "x"), "2:5: parse error: unexpected character: '$'");
        assert_eq!(describe("x +", "invalid promql query"), "1:4: parse error: unexpected end of input");
    }

    #[test]
    fn type_errors_use_prometheus_words_and_point_at_the_argument() {
        assert_eq!(
            describe("rate(x)", "expected type matrix in call to function 'rate', got vector"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!(
            describe("sum(x[5m])", "expected type vector in aggregation expression, got matrix"),
            "1:5: parse error: expected type instant vector in aggregation expression, got range vector"
        );
        assert_eq!(
            describe("topk(\"a\", x)", "expected type scalar in aggregation expression, got string"),
            "1:6: parse error: expected type scalar in aggregation parameter, got string"
        );
        assert_eq!(
            describe(
                "quantile_over_time(x[5m])",
                "expected 2 argument(s) in call to 'quantile_over_time', got 1"
            ),
            "1:1: parse error: expected 2 argument(s) in call to \"quantile_over_time\", got 1"
        );
    }

    #[test]
    fn other_errors_point_at_the_named_token_or_the_start() {
        assert_eq!(
            describe("rate(foo(x))", "unknown function with name 'foo'"),
            "1:6: parse error: unknown function with name \"foo\""
        );
        assert_eq!(
            describe("  1 + x[5m]", "binary expression must contain only scalar and instant vector types"),
            "1:3: parse error: binary expression must contain only scalar and instant vector types"
        );
        // Comments and strings are not brackets.
        assert_eq!(describe("x # (\n", "m"), "1:1: parse error: m");
        assert_eq!(describe("x{a=\"(\"}", "m"), "1:1: parse error: m");
    }
}
