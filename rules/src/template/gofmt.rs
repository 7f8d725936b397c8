//! Go's `fmt` number formatting and the `printf` verbs alert templates use.

use super::value::Value;

/// Formats `v` like Go's `%g` (`prec` = `None` is the shortest representation, as
/// `%v` prints a float64).
pub fn format_g(v: f64, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    // Digits and exponent of the (rounded) value in scientific form.
    let sci = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v),
        None => format!("{v:e}"),
    };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = mant.trim_start_matches('-').replace('.', "").len() as i32;
    let limit = match prec {
        Some(p) => p.max(1) as i32,
        None => SHORTEST_EXPONENT_LIMIT,
    };
    if exp < -4 || exp >= limit {
        let m = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = match prec {
            Some(p) => (p.max(1) as i32 - 1 - exp).max(0) as usize,
            None => (digits - 1 - exp).max(0) as usize,
        };
        strip_zeros(&format!("{v:.decimals$}"))
    }
}

/// Go's shortest `%v`/`%g` of a float64 uses exponent form from this exponent on
/// (strconv uses precision 6 for the decision when printing the shortest digits).
const SHORTEST_EXPONENT_LIMIT: i32 = 6;

fn strip_zeros(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One parsed `%` directive.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %F %e %g %q %x %X %t %c %%`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = read_num(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(read_num(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let body = match format_one(verb, &spec, arg) {
            Some(s) => s,
            None => {
                let shown = match arg {
                    Value::Str(s) => s.clone(),
                    other => other.to_go_string(),
                };
                out.push_str(&format!("%!{verb}({}={shown})", arg.type_name()));
                continue;
            }
        };
        out.push_str(&pad(
            &body,
            &spec,
            matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g' | 'x' | 'X') && !matches!(arg, Value::Str(_)),
        ));
    }
    let extra: Vec<&Value> = args.collect();
    if !extra.is_empty() {
        let parts: Vec<String> =
            extra.iter().map(|v| format!("{}={}", v.type_name(), v.to_go_string())).collect();
        out.push_str(&format!("%!(EXTRA {})", parts.join(", ")));
    }
    out
}

fn read_num(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn sign(v: f64, spec: &Spec, s: String) -> String {
    if v >= 0.0 && !s.starts_with('-') {
        if spec.plus {
            return format!("+{s}");
        }
        if spec.space {
            return format!(" {s}");
        }
    }
    s
}

fn format_float(verb: char, spec: &Spec, v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = match verb {
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), v),
        'e' => {
            let s = format!("{:.*e}", spec.prec.unwrap_or(6), v);
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        _ => format_g(v, spec.prec),
    };
    sign(v, spec, s)
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> Option<String> {
    match (verb, arg) {
        ('v', Value::Float(f)) => Some(sign(*f, spec, format_g(*f, spec.prec))),
        ('v', other) => Some(other.to_go_string()),
        ('s', Value::Str(s)) => Some(match spec.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        }),
        ('s', Value::Float(_) | Value::Int(_) | Value::Bool(_)) => None,
        ('s', other) => Some(other.to_go_string()),
        ('q', Value::Str(s)) => Some(go_quote(s)),
        ('d', Value::Int(i)) => Some(sign(*i as f64, spec, i.to_string())),
        ('f' | 'F' | 'e' | 'g', Value::Float(f)) => Some(format_float(verb, spec, *f)),
        ('t', Value::Bool(b)) => Some(b.to_string()),
        ('x', Value::Int(i)) => Some(format!("{i:x}")),
        ('X', Value::Int(i)) => Some(format!("{i:X}")),
        ('x', Value::Str(s)) => Some(s.bytes().map(|b| format!("{b:02x}")).collect()),
        ('X', Value::Str(s)) => Some(s.bytes().map(|b| format!("{b:02X}")).collect()),
        ('c', Value::Int(i)) => char::from_u32(*i as u32).map(String::from),
        _ => None,
    }
}

fn pad(body: &str, spec: &Spec, numeric: bool) -> String {
    let len = body.chars().count();
    let Some(w) = spec.width.filter(|w| *w > len) else {
        return body.to_string();
    };
    let fill = w - len;
    if spec.minus {
        format!("{body}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, digits) = match body.strip_prefix('-') {
            Some(d) => ("-", d),
            None => match body.strip_prefix('+') {
                Some(d) => ("+", d),
                None => ("", body),
            },
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

/// Go's `strconv.Quote` for printable text.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_matches_go() {
        assert_eq!(format_g(1.0, None), "1");
        assert_eq!(format_g(0.0123, None), "0.0123");
        assert_eq!(format_g(1e-5, None), "1e-05");
        assert_eq!(format_g(1e6, None), "1e+06");
        assert_eq!(format_g(123456.0, None), "123456");
        assert_eq!(format_g(123456789.0, None), "1.23456789e+08");
        assert_eq!(format_g(1234.5678, Some(4)), "1235");
        assert_eq!(format_g(12345.0, Some(4)), "1.234e+04");
        assert_eq!(format_g(0.5, Some(4)), "0.5");
        assert_eq!(format_g(0.00001234, Some(4)), "1.234e-05");
        assert_eq!(format_g(f64::INFINITY, Some(4)), "+Inf");
    }

    #[test]
    fn sprintf_verbs() {
        let f = Value::Float(2.25);
        assert_eq!(sprintf("%.2f", std::slice::from_ref(&f)), "2.25");
        assert_eq!(sprintf("%q", &[Value::Str("a\"b".into())]), "\"a\\\"b\"");
        assert_eq!(
            sprintf("%5.1f|%-4d|%04d", &[f.clone(), Value::Int(7), Value::Int(-3)]),
            "  2.2|7   |-003"
        );
        assert_eq!(sprintf("%d", &[Value::Str("x".into())]), "%!d(string=x)");
        assert_eq!(sprintf("%s %s", &[Value::Str("a".into())]), "a %!s(MISSING)");
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(sprintf("%v", &[f]), "2.25");
    }
}
