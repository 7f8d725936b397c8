//! Request parameters as Prometheus reads them: the URL query and a form-encoded body
//! merged like Go's `r.Form` (body values first), plus the parsers for times,
//! durations and limits with Prometheus's error texts.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};

use super::response::ApiError;

/// Largest form body read, as Go's `ParseForm` caps it (10 MB).
const MAX_FORM_BODY_BYTES: usize = 10 << 20;

/// Earliest time the API accepts, in ms: Prometheus's `minTime`, chosen so that the
/// value survives Go's time arithmetic.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// Latest time the API accepts, in ms: Prometheus's `maxTime`.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;
/// How Prometheus's clients spell [`MIN_TIME_MS`] (Go cannot parse years beyond 9999).
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
/// How Prometheus's clients spell [`MAX_TIME_MS`].
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// All parameters of one request, body values before URL values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from an URL query string and an optional form body.
    pub fn from_parts(query: Option<&str>, form_body: Option<&[u8]>) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(body) = form_body {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params { pairs }
    }

    /// The first value of `name` if it is non-empty (Go's `FormValue` with `""` as unset).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order (for repeated `match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// Optional time parameter `name` in ms, or `default` when absent; errors are worded
    /// as Prometheus's `parseTimeParam` words them.
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => parse_time(s)
                .map_err(|e| ApiError::invalid_param(name, format!("Invalid time value for '{name}': {e}"))),
        }
    }

    /// Optional duration parameter `name` in ms.
    pub fn duration_ms(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name).map(|s| parse_duration_ms(s).map_err(|e| ApiError::invalid_param(name, e))).transpose()
    }

    /// The `limit` parameter: 0 (no limit) when absent.
    pub fn limit(&self) -> Result<usize, ApiError> {
        let Some(s) = self.get("limit") else { return Ok(0) };
        let n: i64 = s.parse().map_err(|_| {
            ApiError::invalid_param("limit", format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
        })?;
        usize::try_from(n).map_err(|_| ApiError::invalid_param("limit", "limit must be non-negative"))
    }
}

fn is_form(req: &Request) -> bool {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().map(str::to_owned);
        let has_body = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) && is_form(&req);
        let body = if has_body {
            let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM_BODY_BYTES)
                .await
                .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?;
            Some(bytes)
        } else {
            drop::<Body>(req.into_body());
            None
        };
        Ok(Params::from_parts(query.as_deref(), body.as_deref()))
    }
}

/// Parses a time as Prometheus does: float Unix seconds (rounded to ms) or RFC3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(bad());
        }
        let secs = f.trunc();
        let ms = secs * 1000.0 + ((f - secs) * 1000.0).round();
        // Exactly representable bound: i64 range in f64 terms.
        if !(-9.2e18..9.2e18).contains(&ms) {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    match s {
        MIN_TIME_FORMATTED => return Ok(MIN_TIME_MS),
        MAX_TIME_FORMATTED => return Ok(MAX_TIME_MS),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(bad)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into ms since the epoch.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds are the API's resolution; finer digits are truncated as Go's
        // timestamp.FromTime does.
        let digits = &s[start..i.min(start + 3)];
        ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_secs = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && sep(i + 3, b':') => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(secs * 1000 + ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a duration as Prometheus's API does: float seconds or a Prometheus duration
/// (`1m0s`, `3600s`, `1d`, `1h30m`), into ms (truncating below a millisecond).
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if ms.is_nan() || !(-9.2e15..9.2e15).contains(&ms) {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms.trunc() as i64);
    }
    parse_prometheus_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// Units of a Prometheus duration in the order they must appear, with their size in ms.
const DURATION_UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Prometheus's duration syntax: `0`, or numbers with units y, w, d, h, m, s, ms, each
/// at most once and in that order.
pub fn parse_prometheus_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let (idx, (unit, size)) = DURATION_UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        rest = &rest[unit.len()..];
        next_unit = idx + 1;
        total = total.checked_add(n.checked_mul(*size)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_body_first_then_url_and_collects_repeats() {
        let p =
            Params::from_parts(Some("match[]=up&start=1&x="), Some(b"match[]=%7Bjob%3D%22a%22%7D&start=2"));
        assert_eq!(p.all("match[]"), vec![r#"{job="a"}"#, "up"]);
        assert_eq!(p.get("start"), Some("2"));
        assert_eq!(p.get("x"), None);
        let encoded_key = Params::from_parts(Some("match%5B%5D=a&match%5B%5D=b"), None);
        assert_eq!(encoded_key.all("match[]"), vec!["a", "b"]);
        let spaces = Params::from_parts(Some("query=sum+by%20(job)(up)"), None);
        assert_eq!(spaces.get("query"), Some("sum by (job)(up)"));
    }

    #[test]
    fn times_parse_as_floats_and_rfc3339() {
        assert_eq!(parse_time("4"), Ok(4000));
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("1970-01-01T00:00:04Z"), Ok(4000));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2015-07-01T22:10:51.7819+02:00"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        assert_eq!(parse_time(MAX_TIME_FORMATTED), Ok(MAX_TIME_MS));
        assert_eq!(
            parse_time("1999-02-29T00:00:00Z"),
            Err(r#"cannot parse "1999-02-29T00:00:00Z" to a valid timestamp"#.into())
        );
        assert!(parse_time("now").is_err());
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations_parse_as_prometheus_does() {
        assert_eq!(parse_duration_ms("1m0s"), Ok(60_000));
        assert_eq!(parse_duration_ms("3600s"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("1m5ms"), Ok(60_005));
        assert_eq!(parse_duration_ms("15"), Ok(15_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert!(parse_duration_ms("1s1m").is_err());
        assert!(parse_duration_ms("1x").is_err());
        assert!(parse_duration_ms("").is_err());
        assert_eq!(parse_duration_ms("abc"), Err(r#"cannot parse "abc" to a valid duration"#.into()));
    }

    #[test]
    fn limit_is_validated() {
        assert_eq!(Params::from_parts(Some("limit=5"), None).limit(), Ok(5));
        assert_eq!(Params::from_parts(None, None).limit(), Ok(0));
        let neg = Params::from_parts(Some("limit=-1"), None).limit().expect_err("negative");
        assert_eq!(neg.message, r#"invalid parameter "limit": limit must be non-negative"#);
        assert!(Params::from_parts(Some("limit=x"), None).limit().is_err());
    }
}
