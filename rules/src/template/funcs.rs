//! Go's template builtins and Prometheus's template functions.

use super::exec::Exec;
use super::gofmt::{format_g, sprintf};
use super::value::Value;

/// Every function a template may call; anything else fails when the rule loads.
const FUNCTIONS: &[&str] = &[
    // Go builtins.
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // Prometheus.
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "urlQueryEscape",
    "tmpl",
    "now",
];

/// Whether `name` is a known function.
pub fn exists(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// SI prefixes `humanize` uses above 1.
const BIG_PREFIXES: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
/// SI prefixes `humanize` and `humanizeDuration` use below 1.
const SMALL_PREFIXES: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
/// Binary prefixes of `humanize1024`.
const BINARY_PREFIXES: [&str; 8] = ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
    }
    Ok(())
}

fn string_arg(name: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "error calling {name}: wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn float_arg(name: &str, v: &Value) -> Result<f64, String> {
    v.to_float().map_err(|e| format!("error calling {name}: {e}"))
}

/// Calls function `name` with evaluated arguments.
pub fn call(ex: &mut Exec<'_>, name: &str, args: Vec<Value>) -> Result<Value, String> {
    let s = |v: String| Ok(Value::Str(v));
    match name {
        "and" => Ok(args.iter().find(|a| !a.truthy()).or(args.last()).cloned().unwrap_or(Value::Nil)),
        "or" => Ok(args.iter().find(|a| a.truthy()).or(args.last()).cloned().unwrap_or(Value::Nil)),
        "not" => {
            want(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want(name, &args, 1)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                other => Err(format!("error calling len: len of type {}", other.type_name())),
            }
        }
        "index" => {
            let (first, keys) =
                args.split_first().ok_or("wrong number of args for index: want at least 1 got 0")?;
            let mut cur = first.clone();
            for k in keys {
                cur = match (&cur, k) {
                    (Value::Map(m), Value::Str(key)) => {
                        m.get(key).cloned().unwrap_or_else(|| cur.missing_key())
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(
                            usize::try_from(*i)
                                .map_err(|_| format!("error calling index: index out of range: {i}"))?,
                        )
                        .cloned()
                        .ok_or_else(|| format!("error calling index: index out of range: {i}"))?,
                    (c, _) => {
                        return Err(format!(
                            "error calling index: can't index item of type {}",
                            c.type_name()
                        ));
                    }
                };
            }
            Ok(cur)
        }
        "print" => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                let both_non_string =
                    i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_));
                if both_non_string {
                    out.push(' ');
                }
                out.push_str(&a.to_go_string());
            }
            s(out)
        }
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::to_go_string).collect();
            s(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let (fmt, rest) =
                args.split_first().ok_or("wrong number of args for printf: want at least 1 got 0")?;
            s(sprintf(&string_arg(name, fmt)?, rest))
        }
        "eq" => {
            let (first, rest) = args.split_first().ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("error calling eq: missing argument for comparison".into());
            }
            for r in rest {
                if compare(name, first, r)? == std::cmp::Ordering::Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2)?;
            if name != "ne" && matches!(args[0], Value::Bool(_)) {
                return Err(format!("error calling {name}: invalid type for comparison"));
            }
            let ord = compare(name, &args[0], &args[1])?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match name {
                "ne" => ord != Equal,
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            }))
        }
        "query" => {
            want(name, &args, 1)?;
            let q = string_arg(name, &args[0])?;
            let rows = ex.query(&q).map_err(|e| format!("error calling query: {e}"))?;
            Ok(Value::List(rows.into_iter().map(|(l, v)| Value::Sample(l, v)).collect()))
        }
        "first" => {
            want(name, &args, 1)?;
            match &args[0] {
                Value::List(l) => l
                    .first()
                    .cloned()
                    .ok_or_else(|| "error calling first: first() called on vector with no elements".into()),
                other => Err(format!(
                    "error calling first: wrong type for value; expected queryResult; got {}",
                    other.type_name()
                )),
            }
        }
        "label" => {
            want(name, &args, 2)?;
            let l = string_arg(name, &args[0])?;
            match &args[1] {
                Value::Sample(labels, _) => s(labels.get(&l).cloned().unwrap_or_default()),
                other => Err(format!(
                    "error calling label: wrong type for value; expected *template.sample; got {}",
                    other.type_name()
                )),
            }
        }
        "value" | "strvalue" => {
            want(name, &args, 1)?;
            match (&args[0], name) {
                (Value::Sample(_, v), "value") => Ok(Value::Float(*v)),
                (Value::Sample(labels, _), _) => s(labels.get("__value__").cloned().unwrap_or_default()),
                (other, _) => Err(format!(
                    "error calling {name}: wrong type for value; expected *template.sample; got {}",
                    other.type_name()
                )),
            }
        }
        "sortByLabel" => {
            want(name, &args, 2)?;
            let l = string_arg(name, &args[0])?;
            let Value::List(mut rows) = args[1].clone() else {
                return Err("error calling sortByLabel: wrong type for value; expected queryResult".into());
            };
            let key = |v: &Value| match v {
                Value::Sample(labels, _) => labels.get(&l).cloned().unwrap_or_default(),
                _ => String::new(),
            };
            rows.sort_by_key(key);
            Ok(Value::List(rows))
        }
        "args" => Ok(Value::Map(args.into_iter().enumerate().map(|(i, v)| (format!("arg{i}"), v)).collect())),
        "tmpl" => {
            want(name, &args, 2)?;
            let t = string_arg(name, &args[0])?;
            s(ex.run_named(&t, &args[1]).map_err(|e| format!("error calling tmpl: {e}"))?)
        }
        "safeHtml" => {
            want(name, &args, 1)?;
            s(string_arg(name, &args[0])?)
        }
        "match" => {
            want(name, &args, 2)?;
            let re = regex::Regex::new(&string_arg(name, &args[0])?)
                .map_err(|e| format!("error calling match: {e}"))?;
            Ok(Value::Bool(re.is_match(&string_arg(name, &args[1])?)))
        }
        "reReplaceAll" => {
            want(name, &args, 3)?;
            let re = regex::Regex::new(&string_arg(name, &args[0])?)
                .map_err(|e| format!("error calling reReplaceAll: {e}"))?;
            let repl = string_arg(name, &args[1])?;
            s(re.replace_all(&string_arg(name, &args[2])?, repl.as_str()).into_owned())
        }
        "title" => {
            want(name, &args, 1)?;
            s(go_title(&string_arg(name, &args[0])?))
        }
        "toUpper" => {
            want(name, &args, 1)?;
            s(string_arg(name, &args[0])?.to_uppercase())
        }
        "toLower" => {
            want(name, &args, 1)?;
            s(string_arg(name, &args[0])?.to_lowercase())
        }
        "graphLink" | "tableLink" => {
            want(name, &args, 1)?;
            let expr = string_arg(name, &args[0])?;
            let tab = if name == "tableLink" { 1 } else { 0 };
            s(format!("/graph?g0.expr={}&g0.tab={tab}", query_escape(&expr)))
        }
        "urlQueryEscape" => {
            want(name, &args, 1)?;
            s(query_escape(&string_arg(name, &args[0])?))
        }
        "stripPort" => {
            want(name, &args, 1)?;
            let hp = string_arg(name, &args[0])?;
            s(split_host_port(&hp).map(|(h, _)| h).unwrap_or(hp))
        }
        "stripDomain" => {
            want(name, &args, 1)?;
            let hp = string_arg(name, &args[0])?;
            let (host, port) = split_host_port(&hp).unwrap_or_else(|| (hp.clone(), String::new()));
            if host.parse::<std::net::IpAddr>().is_ok() {
                return s(hp);
            }
            let short = host.split('.').next().unwrap_or("").to_string();
            if port.is_empty() {
                s(short)
            } else if short.contains(':') {
                s(format!("[{short}]:{port}"))
            } else {
                s(format!("{short}:{port}"))
            }
        }
        "humanize" => {
            want(name, &args, 1)?;
            s(humanize(float_arg(name, &args[0])?))
        }
        "humanize1024" => {
            want(name, &args, 1)?;
            s(humanize1024(float_arg(name, &args[0])?))
        }
        "humanizeDuration" => {
            want(name, &args, 1)?;
            s(humanize_duration(float_arg(name, &args[0])?))
        }
        "humanizePercentage" => {
            want(name, &args, 1)?;
            s(format!("{}%", format_g(float_arg(name, &args[0])? * 100.0, Some(4))))
        }
        "humanizeTimestamp" | "toTime" => {
            want(name, &args, 1)?;
            let v = float_arg(name, &args[0])?;
            if !v.is_finite() {
                if name == "toTime" {
                    return Err("error calling toTime: value is NaN or Inf".into());
                }
                return s(format_g(v, Some(4)));
            }
            s(go_time_string(v))
        }
        "pathPrefix" => s(ex.external_url_path()),
        "externalURL" => s(ex.external_url().to_string()),
        "now" => Ok(Value::Float(ex.now_seconds())),
        "parseDuration" => {
            want(name, &args, 1)?;
            let d = crate::duration::parse_ms(&string_arg(name, &args[0])?)
                .map_err(|e| format!("error calling parseDuration: {e}"))?;
            Ok(Value::Float(d as f64 / 1000.0))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// Go's comparison of basic values; mixing kinds is an error as in Go.
fn compare(name: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    let bad = || Err(format!("error calling {name}: incompatible types for comparison"));
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Less)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Nil, Value::Nil) => Ok(Ordering::Equal),
        (Value::Nil, _) | (_, Value::Nil) if name == "eq" || name == "ne" => Ok(Ordering::Less),
        (Value::Map(_) | Value::List(_) | Value::Sample(..), _) => {
            Err(format!("error calling {name}: invalid type for comparison"))
        }
        _ => bad(),
    }
}

/// Prometheus's `humanize`: SI prefixes with four significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_g(v, Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in BIG_PREFIXES {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in SMALL_PREFIXES {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

/// Prometheus's `humanize1024`: binary prefixes, none below 1.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return format_g(v, Some(4));
    }
    let mut prefix = "";
    for p in BINARY_PREFIXES {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

/// Prometheus's `humanizeDuration` of seconds.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return format_g(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let total = v as i64;
        let (seconds, minutes, hours, days) =
            (total % 60, (total / 60) % 60, (total / 3600) % 24, total / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", format_g(v, Some(4)));
    }
    let mut prefix = "";
    for p in SMALL_PREFIXES {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_g(v, Some(4)))
}

/// Go's `strings.Title`: upper-cases the first letter of every word.
fn go_title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() { !(c.is_ascii_alphanumeric() || c == '_') } else { c.is_whitespace() };
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('*', "%2A")
}

/// Go's `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        return Some((rest[..end].to_string(), port.to_string()));
    }
    let colon = hp.rfind(':')?;
    let host = &hp[..colon];
    if host.contains(':') {
        return None;
    }
    Some((host.to_string(), hp[colon + 1..].to_string()))
}

/// Go's `time.Time.String()` in UTC for Unix seconds, at Prometheus's millisecond
/// precision: `2015-06-23 13:19:44.128 +0000 UTC`.
pub fn go_time_string(secs: f64) -> String {
    let ms = ((secs * 1e9) as i64) / 1_000_000;
    let (s, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    let (y, m, d) = crate::timefmt::civil_from_days(days);
    let mut out = format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, (rem / 60) % 60, rem % 60);
    if frac != 0 {
        out.push_str(format!(".{frac:03}").trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}
