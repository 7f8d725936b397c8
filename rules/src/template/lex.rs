//! Splits template text into literal text and `{{ … }}` actions, and actions into tokens.

/// A piece of template source.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Literal text, already trimmed by neighbouring `{{-` / `-}}`.
    Text(String),
    /// The tokens of one action, each token's byte offset in the source, and the
    /// action's line and column (1-based).
    Action(Vec<Tok>, Vec<usize>, usize, usize),
}

/// A token inside an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `.` alone: the current data.
    Dot,
    /// `.Name` (field or map key of what precedes it, or of dot).
    Field(String),
    /// `$name` or `$`.
    Var(String),
    /// A function or keyword name.
    Ident(String),
    /// A quoted or raw string literal, unescaped.
    Str(String),
    /// A number literal as written.
    Num(String),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `|`.
    Pipe,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,`.
    Comma,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

/// Splits `src` into text and actions; comments are dropped.
pub fn split(src: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut consumed = 0usize;
    let mut trim_next = false;
    loop {
        let Some(open) = rest.find(LEFT) else {
            push_text(&mut items, rest, trim_next, false);
            return Ok(items);
        };
        let mut body_start = open + LEFT.len();
        let trim_left = rest[body_start..].starts_with("- ")
            || rest[body_start..].starts_with("-\t")
            || rest[body_start..].starts_with("-\n");
        push_text(&mut items, &rest[..open], trim_next, trim_left);
        if trim_left {
            body_start += 1;
        }
        let (line, col) = position(src, consumed + open);
        let after = &rest[body_start..];
        let close = find_close(after).ok_or_else(|| format!("{line}:{col}: unclosed action"))?;
        let mut body = &after[..close];
        let mut close_len = RIGHT.len();
        trim_next = false;
        let trimmed = body.trim_end();
        if trimmed.ends_with(" -") || trimmed.ends_with("\t-") || trimmed.ends_with("\n-") {
            trim_next = true;
            body = &trimmed[..trimmed.len() - 1];
        } else if trimmed == "-" {
            return Err(format!("{line}:{col}: bad trim marker"));
        }
        let inner = body.trim();
        if inner.starts_with("/*") {
            if !inner.ends_with("*/") {
                return Err(format!("{line}:{col}: unclosed comment"));
            }
        } else {
            let (toks, offsets) = tokens_at(inner).map_err(|e| format!("{line}:{col}: {e}"))?;
            if toks.is_empty() {
                return Err(format!("{line}:{col}: missing value for command"));
            }
            let inner_start = consumed + body_start + (body.len() - body.trim_start().len());
            let offsets = offsets.into_iter().map(|o| o + inner_start).collect();
            items.push(Item::Action(toks, offsets, line, col));
        }
        close_len += close;
        let skip = body_start + close_len;
        consumed += skip;
        rest = &rest[skip..];
    }
}

/// Where `}}` closes an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'`' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start();
    }
    if trim_end {
        t = t.trim_end();
    }
    if !t.is_empty() {
        items.push(Item::Text(t.to_string()));
    }
}

fn position(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Tokenises the inside of one action.
#[cfg(test)]
pub fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    tokens_at(s).map(|(t, _)| t)
}

/// Tokenises the inside of one action, with each token's byte offset in `s`.
pub fn tokens_at(s: &str) -> Result<(Vec<Tok>, Vec<usize>), String> {
    let chars: Vec<char> = s.chars().collect();
    let byte_at: Vec<usize> = s.char_indices().map(|(b, _)| b).collect();
    let mut out = Vec::new();
    let mut starts = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && is_ident_char(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        let (before, start) = (out.len(), i);
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '$' => {
                i += 1;
                out.push(Tok::Var(format!("${}", word(&mut i))));
            }
            '.' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                out.push(Tok::Num(number(&chars, &mut i)));
            }
            '.' => {
                i += 1;
                let name = word(&mut i);
                out.push(if name.is_empty() { Tok::Dot } else { Tok::Field(name) });
            }
            '"' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated quoted string".into());
                }
                i += 1;
                let quoted: String = chars[start..i].iter().collect();
                out.push(Tok::Str(unquote(&quoted)?));
            }
            '`' => {
                let start = i + 1;
                i += 1;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated raw quoted string".into());
                }
                out.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            '\'' => {
                // A Go rune constant is an integer.
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or("unterminated character constant")?;
                let lit: Vec<char> = chars[i + 1..i + 1 + end].to_vec();
                if lit.len() != 1 {
                    return Err("unsupported character constant".into());
                }
                out.push(Tok::Num((lit[0] as u32).to_string()));
                i += end + 2;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                out.push(Tok::Num(number(&chars, &mut i)));
            }
            c if is_ident_char(c) => {
                let w = word(&mut i);
                out.push(match w.as_str() {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(w),
                });
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
        if out.len() > before {
            starts.push(byte_at.get(start).copied().unwrap_or(s.len()));
        }
    }
    Ok((out, starts))
}

fn number(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    *i += 1;
    while *i < chars.len() {
        let c = chars[*i];
        let prev = chars[*i - 1];
        if c.is_ascii_alphanumeric()
            || c == '.'
            || c == '_'
            || ((c == '+' || c == '-') && (prev == 'e' || prev == 'E'))
        {
            *i += 1;
        } else {
            break;
        }
    }
    chars[start..*i].iter().collect()
}

/// Unquotes a Go double-quoted string literal.
fn unquote(q: &str) -> Result<String, String> {
    let inner = &q[1..q.len() - 1];
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(c @ ('x' | 'u' | 'U')) => {
                let n = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = it.by_ref().take(n).collect();
                let code = u32::from_str_radix(&hex, 16).map_err(|_| format!("bad escape in {q}"))?;
                out.push(char::from_u32(code).ok_or_else(|| format!("bad escape in {q}"))?);
            }
            _ => return Err(format!("unsupported escape in string {q}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_actions_and_trims() {
        let items = split("a {{- $labels.job -}} b{{/* c */}}!").expect("lex");
        assert_eq!(
            items,
            vec![
                Item::Text("a".into()),
                Item::Action(vec![Tok::Var("$labels".into()), Tok::Field("job".into())], vec![6, 13], 1, 3),
                Item::Text("b".into()),
                Item::Text("!".into()),
            ]
        );
    }

    #[test]
    fn tokenises_literals_and_pipes() {
        let toks = tokens(r#"printf "%.2f\n" 1.5 | printf "%s" -2 `raw`"#).expect("tokens");
        assert_eq!(
            toks,
            vec![
                Tok::Ident("printf".into()),
                Tok::Str("%.2f\n".into()),
                Tok::Num("1.5".into()),
                Tok::Pipe,
                Tok::Ident("printf".into()),
                Tok::Str("%s".into()),
                Tok::Num("-2".into()),
                Tok::Str("raw".into()),
            ]
        );
        assert!(split("{{ x").is_err());
        assert_eq!(split("{{ \"}}\" }}").expect("quoted close").len(), 1);
    }
}
