//! Duration expressions (`x[5m+1m]`, `offset (1h*2)`, `[step()*4]`, `min_of`/`max_of`),
//! which Prometheus 3 accepts and `promql-parser` does not: they are computed here and
//! written back into the query text as plain millisecond durations before parsing.
//!
//! Inside `[...]` the whole text (each side of a subquery's `:`) is an expression;
//! after `offset` one operand is (an optional sign and a literal, a parenthesised
//! expression or a call), so `x offset 1m + 2` stays `(x offset 1m) + 2`.

use crate::lexing::{is_ident, skip_string};

/// Query-wide values that `step()` and `range()` stand for, in ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationContext {
    pub step: i64,
    pub range: i64,
}

/// Rewrites every duration expression of `query` into a literal; a query without
/// any comes back unchanged.
pub(crate) fn rewrite(query: &str, ctx: DurationContext) -> Result<String, String> {
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            let end = skip_string(b, i);
            out.push_str(&query[i..end]);
            i = end;
            continue;
        }
        if c == b'#' {
            out.push_str(&query[i..]);
            break;
        }
        if c == b'[' {
            let Some(close) = find_close(b, i) else {
                out.push_str(&query[i..]);
                break;
            };
            let inner = &query[i + 1..close];
            out.push('[');
            out.push_str(&rewrite_brackets(inner, ctx)?);
            out.push(']');
            i = close + 1;
            continue;
        }
        if is_word_at(b, i, "offset") {
            let after = i + "offset".len();
            let ws = b[after..].iter().take_while(|c| c.is_ascii_whitespace()).count();
            let mut p = Parser { s: &query[after + ws..], pos: 0, ctx };
            match p.unary_operand() {
                // The parser refuses `offset 0`, which means no offset at all.
                Ok(v) if (v * 1000.0).round() == 0.0 => {}
                Ok(v) => {
                    out.push_str(&query[i..after + ws]);
                    out.push_str(&format_ms(v)?);
                }
                Err(_) => {
                    out.push_str(&query[i..after + ws]);
                    i = after + ws;
                    continue;
                }
            }
            i = after + ws + p.pos;
            continue;
        }
        let ch_len = query[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&query[i..i + ch_len]);
        i += ch_len;
    }
    Ok(out)
}

fn find_close(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (k, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_word_at(b: &[u8], i: usize, w: &str) -> bool {
    let end = i + w.len();
    end <= b.len()
        && b[i..end].eq_ignore_ascii_case(w.as_bytes())
        && (i == 0 || !is_ident(b[i - 1]))
        && (end == b.len() || !is_ident(b[end]))
}

/// Rewrites the inside of `[...]`: `range` or `range:step`.
fn rewrite_brackets(inner: &str, ctx: DurationContext) -> Result<String, String> {
    let mut parts = Vec::new();
    for (k, part) in inner.split(':').enumerate() {
        let t = part.trim();
        if t.is_empty() || is_plain_duration(t) {
            parts.push(part.to_string());
            continue;
        }
        let mut p = Parser { s: t, pos: 0, ctx };
        let v = p.expr()?;
        p.skip_ws();
        if p.pos != t.len() {
            return Err(format!("unexpected character in duration expression: {:?}", &t[p.pos..]));
        }
        if v <= 0.0 && k == 0 {
            return Err(format!("range duration must be positive, got {}", format_ms(v)?));
        }
        parts.push(format_ms(v)?);
    }
    Ok(parts.join(":"))
}

fn is_plain_duration(t: &str) -> bool {
    !t.is_empty()
        && t.bytes().all(|c| c.is_ascii_alphanumeric())
        && t.as_bytes()[0].is_ascii_digit()
        && !t.contains(['e', 'E', 'x', 'X'])
}

/// Seconds as a millisecond literal.
fn format_ms(secs: f64) -> Result<String, String> {
    if !secs.is_finite() {
        return Err(format!("duration expression gives {secs}"));
    }
    let ms = (secs * 1000.0).round() as i64;
    Ok(if ms < 0 { format!("-{}ms", -ms) } else { format!("{ms}ms") })
}

/// A recursive-descent evaluator over seconds.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
    ctx: DurationContext,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.as_bytes().get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.as_bytes().get(self.pos).copied()
    }

    fn expr(&mut self) -> Result<f64, String> {
        let mut v = self.term()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let r = self.term()?;
            v = if c == b'+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        while let Some(c @ (b'*' | b'/' | b'%')) = self.peek() {
            self.pos += 1;
            let r = self.unary()?;
            v = match c {
                b'*' => v * r,
                b'/' => v / r,
                _ => v % r,
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    /// `^` binds tighter than unary minus and is right-associative.
    fn power(&mut self) -> Result<f64, String> {
        let base = self.primary()?;
        if self.peek() == Some(b'^') {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    /// The operand after `offset`: a sign, then a primary with any `^` on it.
    fn unary_operand(&mut self) -> Result<f64, String> {
        let start = self.pos;
        let r = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                self.primary().map(|v| -v)
            }
            Some(b'+') => {
                self.pos += 1;
                self.primary()
            }
            _ => self.primary(),
        };
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    fn primary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let v = self.expr()?;
                if self.peek() != Some(b')') {
                    return Err("missing ')' in duration expression".into());
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.literal(),
            Some(c) if c.is_ascii_alphabetic() => self.call(),
            _ => Err("expected a duration".into()),
        }
    }

    fn call(&mut self) -> Result<f64, String> {
        let b = self.s.as_bytes();
        let start = self.pos;
        while self.pos < b.len() && (b[self.pos].is_ascii_alphanumeric() || b[self.pos] == b'_') {
            self.pos += 1;
        }
        let name = self.s[start..self.pos].to_ascii_lowercase();
        if self.peek() != Some(b'(') {
            return Err(format!("unexpected {name:?} in duration expression"));
        }
        self.pos += 1;
        let v = match name.as_str() {
            "step" => self.ctx.step as f64 / 1000.0,
            "range" => self.ctx.range as f64 / 1000.0,
            "min_of" | "max_of" => {
                let a = self.expr()?;
                if self.peek() != Some(b',') {
                    return Err(format!("{name}() needs two arguments"));
                }
                self.pos += 1;
                let c = self.expr()?;
                if name == "min_of" { a.min(c) } else { a.max(c) }
            }
            _ => return Err(format!("unknown function {name}() in duration expression")),
        };
        if self.peek() != Some(b')') {
            return Err(format!("missing ')' after {name}("));
        }
        self.pos += 1;
        Ok(v)
    }

    /// A number (seconds) or a duration literal such as `1h30m` or `500ms`.
    fn literal(&mut self) -> Result<f64, String> {
        let b = self.s.as_bytes();
        let start = self.pos;
        while self.pos < b.len() && (b[self.pos].is_ascii_alphanumeric() || b[self.pos] == b'.') {
            // Stop before an exponent sign is not needed: durations never use exponents.
            self.pos += 1;
        }
        let text = &self.s[start..self.pos];
        if let Ok(v) = text.parse::<f64>() {
            return Ok(v);
        }
        crate::promqltest::parse_duration_ms(text)
            .map(|ms| ms as f64 / 1000.0)
            .ok_or_else(|| format!("bad duration {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(q: &str) -> String {
        rewrite(q, DurationContext { step: 10_000, range: 60_000 }).unwrap()
    }

    #[test]
    fn plain_queries_are_unchanged() {
        assert_eq!(rw(r#"rate(x{a="[1m+1m]"}[5m]) offset 1m"#), r#"rate(x{a="[1m+1m]"}[5m]) offset 60000ms"#);
        assert_eq!(rw("x[5m:1m]"), "x[5m:1m]");
    }

    #[test]
    fn computes_bracket_expressions() {
        assert_eq!(rw("x[26m+4m]"), "x[1800000ms]");
        assert_eq!(rw("x[2m*(10+5)]"), "x[1800000ms]");
        assert_eq!(rw("x[1800]"), "x[1800]");
        assert_eq!(rw("x[29s+1s:20*500ms]"), "x[30000ms:10000ms]");
        assert_eq!(rw("x[1+(STep()-5)*2]"), "x[11000ms]");
        assert_eq!(rw("x[max_of(min_of(step()+1,1h),1ms)]"), "x[11000ms]");
        assert_eq!(rw("x[30m1s-30m1s % 1m]"), "x[1800000ms]");
    }

    #[test]
    fn offset_takes_one_operand() {
        assert_eq!(rw("x offset 100 + 2"), "x offset 100000ms + 2");
        assert_eq!(rw("x offset (100 + 2)"), "x offset 102000ms");
        assert_eq!(rw("x offset -min_of(step(), 1s)+8000"), "x offset -1000ms+8000");
        assert_eq!(rw("x offset (-2 ^ 2)"), "x offset -4000ms");
    }
}
