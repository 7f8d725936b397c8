//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/{name}/values`: index lookups
//! under repeated `match[]` selectors, a time range and a `limit`.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use vigil_storage::{Labels, Matcher, SelectHints, Storage};

use super::json;
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params};
use super::response::{ApiError, ApiSuccess, TRUNCATED_WARNING, blocking};
use crate::state::AppState;

/// Hint storage uses for lookups that need labels only, as Prometheus names it.
const SERIES_ONLY_FUNC: &str = "series";

/// Start, end, parsed `match[]` sets and `limit`, shared by the three endpoints.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// Earliest sample time in ms.
    pub start: i64,
    /// Latest sample time in ms.
    pub end: i64,
    /// One matcher list per `match[]`; results are the union over them.
    pub matcher_sets: Vec<Vec<Matcher>>,
    /// Most results (0 = all).
    pub limit: usize,
}

fn lookup(params: &Params, prefix_match_errors: bool) -> Result<Lookup, ApiError> {
    let start = params.time_or("start", MIN_TIME_MS)?;
    let end = params.time_or("end", MAX_TIME_MS)?;
    let bad_match = |e: String| {
        if prefix_match_errors { ApiError::invalid_param("match[]", e) } else { ApiError::bad_data(e) }
    };
    let mut matcher_sets = Vec::new();
    for selector in params.all("match[]") {
        let set = vigil_query::parse_selector(selector).map_err(|e| bad_match(e.to_string()))?;
        // A selector matching everything would scan the whole index, so Prometheus refuses it.
        if set.iter().all(Matcher::matches_empty) {
            return Err(bad_match("match[] must contain at least one non-empty matcher".into()));
        }
        matcher_sets.push(set);
    }
    let limit = params.limit()?;
    Ok(Lookup { start, end, matcher_sets, limit })
}

/// Keeps at most `limit` items (0 = all) and returns the warning if any were cut.
fn cut<T>(items: &mut Vec<T>, limit: usize) -> Vec<String> {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        vec![TRUNCATED_WARNING.to_string()]
    } else {
        Vec::new()
    }
}

fn exec(e: vigil_storage::StorageError) -> ApiError {
    ApiError::execution(e.to_string())
}

/// The `data` and warnings of `/api/v1/series`: the sorted union of the series matching
/// any matcher set with samples in the range, cut to the limit.
pub fn find_series(store: &dyn Storage, q: &Lookup) -> Result<ApiSuccess, ApiError> {
    let hints =
        SelectHints { start: q.start, end: q.end, func: Some(SERIES_ONLY_FUNC.into()), ..Default::default() };
    let mut all = BTreeSet::new();
    for set in &q.matcher_sets {
        all.extend(store.select(set, &hints).map_err(exec)?.into_iter().map(|s| s.labels));
    }
    let mut found: Vec<Labels> = all.into_iter().collect();
    let warnings = cut(&mut found, q.limit);
    let mut data = String::from("[");
    for (i, labels) in found.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::push_str_object(&mut data, labels.iter().map(|l| (l.name, l.value)));
    }
    data.push(']');
    Ok(ApiSuccess { data, warnings, infos: vec![] })
}

/// The answer of `/api/v1/labels`: sorted label names (union over matcher sets).
pub fn find_label_names(store: &dyn Storage, q: &Lookup) -> Result<ApiSuccess, ApiError> {
    let mut names = if q.matcher_sets.is_empty() {
        store.label_names(&[], q.start, q.end).map_err(exec)?
    } else {
        let mut all = BTreeSet::new();
        for set in &q.matcher_sets {
            all.extend(store.label_names(set, q.start, q.end).map_err(exec)?);
        }
        all.into_iter().collect()
    };
    string_list(&mut names, q.limit)
}

/// The answer of `/api/v1/label/{name}/values`: sorted values (union over matcher sets).
pub fn find_label_values(store: &dyn Storage, name: &str, q: &Lookup) -> Result<ApiSuccess, ApiError> {
    let mut values = if q.matcher_sets.is_empty() {
        store.label_values(name, &[], q.start, q.end).map_err(exec)?
    } else {
        let mut all = BTreeSet::new();
        for set in &q.matcher_sets {
            all.extend(store.label_values(name, set, q.start, q.end).map_err(exec)?);
        }
        all.into_iter().collect()
    };
    string_list(&mut values, q.limit)
}

fn string_list(items: &mut Vec<String>, limit: usize) -> Result<ApiSuccess, ApiError> {
    let warnings = cut(items, limit);
    let mut data = String::new();
    json::push_str_array(&mut data, items.iter().map(String::as_str));
    Ok(ApiSuccess { data, warnings, infos: vec![] })
}

/// `GET|POST /api/v1/series`.
pub async fn series(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let store = state.storage()?;
    if params.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let q = lookup(&params, true)?;
    blocking(move || find_series(&*store, &q)).await
}

/// `GET|POST /api/v1/labels`.
pub async fn label_names(State(state): State<AppState>, params: Params) -> Result<ApiSuccess, ApiError> {
    let store = state.storage()?;
    let q = lookup(&params, false)?;
    blocking(move || find_label_names(&*store, &q)).await
}

/// `GET /api/v1/label/{name}/values`; `U__`-escaped UTF-8 names are decoded first.
pub async fn label_values(
    State(state): State<AppState>,
    Path(raw_name): Path<String>,
    params: Params,
) -> Result<ApiSuccess, ApiError> {
    let store = state.storage()?;
    let name = unescape_label_name(&raw_name);
    if name.is_empty() {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let q = lookup(&params, false)?;
    blocking(move || find_label_values(&*store, &name, &q)).await
}

/// Most hex digits in one escaped code point (`10FFFF`).
const MAX_ESCAPE_HEX_DIGITS: usize = 6;

/// Decodes Prometheus's "value encoding" escape for UTF-8 names in URL paths:
/// `U__` prefix, `__` for `_`, `_<hex>_` for any code point (1 to 6 hex digits).
/// Anything malformed leaves the name as given, as Prometheus does.
pub fn unescape_label_name(name: &str) -> String {
    let Some(escaped) = name.strip_prefix("U__") else { return name.to_string() };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let mut code: u32 = 0;
        let mut digits = 0;
        loop {
            match chars.next() {
                None => return name.to_string(),
                Some('_') if digits == 0 => {
                    out.push('_');
                    break;
                }
                Some('_') => match char::from_u32(code) {
                    Some(decoded) => {
                        out.push(decoded);
                        break;
                    }
                    None => return name.to_string(),
                },
                Some(h) => match h.to_digit(16) {
                    Some(d) if digits < MAX_ESCAPE_HEX_DIGITS => {
                        code = code * 16 + d;
                        digits += 1;
                    }
                    _ => return name.to_string(),
                },
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_storage::memory::MemStorage;

    #[test]
    fn unescapes_value_encoded_names() {
        assert_eq!(unescape_label_name("U__my_20_lovely__http_2e_status:sum"), "my lovely_http.status:sum");
        assert_eq!(unescape_label_name("U__http_2e_status"), "http.status");
        assert_eq!(unescape_label_name("U___e9_t_20ac_"), "ét€");
        assert_eq!(unescape_label_name("U___1F600_"), "😀");
        assert_eq!(unescape_label_name("job"), "job");
        // Malformed escapes leave the name untouched.
        assert_eq!(unescape_label_name("U__a_zz_"), "U__a_zz_");
        assert_eq!(unescape_label_name("U__a_2e"), "U__a_2e");
        assert_eq!(unescape_label_name("U__a_1234567_"), "U__a_1234567_");
        assert_eq!(unescape_label_name("U__a_d800_"), "U__a_d800_");
    }

    fn store() -> MemStorage {
        let s = MemStorage::new();
        let add = |pairs: &[(&str, &str)], t: i64| s.add(&Labels::from_pairs(pairs.iter().copied()), t, 1.0);
        add(&[("__name__", "up"), ("job", "a")], 1000).expect("add");
        add(&[("__name__", "up"), ("job", "b")], 1000).expect("add");
        add(&[("__name__", "down"), ("job", "c"), ("zone", "z")], 5000).expect("add");
        s
    }

    fn lookup_of(sets: &[&[(&str, &str)]], limit: usize) -> Lookup {
        let matcher_sets =
            sets.iter().map(|set| set.iter().map(|(n, v)| Matcher::equal(*n, *v)).collect()).collect();
        Lookup { start: MIN_TIME_MS, end: MAX_TIME_MS, matcher_sets, limit }
    }

    #[test]
    fn series_is_the_sorted_union_over_match_sets() {
        let q = lookup_of(&[&[("job", "b")], &[("__name__", "down")], &[("job", "a")], &[("job", "b")]], 0);
        let got = find_series(&store(), &q).expect("series");
        assert_eq!(
            got.data,
            r#"[{"__name__":"down","job":"c","zone":"z"},{"__name__":"up","job":"a"},{"__name__":"up","job":"b"}]"#
        );
        let limited = find_series(&store(), &Lookup { limit: 2, ..q }).expect("series");
        assert_eq!(limited.warnings, vec![TRUNCATED_WARNING.to_string()]);
        assert_eq!(limited.data.matches("__name__").count(), 2);
    }

    #[test]
    fn label_names_and_values_union_and_time_range() {
        let s = store();
        let names = find_label_names(&s, &lookup_of(&[&[("job", "a")], &[("job", "c")]], 0)).expect("names");
        assert_eq!(names.data, r#"["__name__","job","zone"]"#);
        let early = Lookup { start: 0, end: 2000, ..lookup_of(&[], 0) };
        assert_eq!(find_label_names(&s, &early).expect("names").data, r#"["__name__","job"]"#);
        let values = find_label_values(&s, "job", &lookup_of(&[&[("__name__", "up")]], 1)).expect("values");
        assert_eq!(values.data, r#"["a"]"#);
        assert_eq!(values.warnings, vec![TRUNCATED_WARNING.to_string()]);
    }

    /// On the real store, regex `match[]` sets are resolved through the value dictionary
    /// and unioned; a time range outside the head's finds nothing.
    #[test]
    fn label_values_on_the_database_union_regex_sets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = vigil_storage::Db::open(dir.path(), vigil_storage::DbOptions::default()).expect("open");
        let mut app = vigil_storage::Appendable::appender(&db);
        for (pod, ns) in [("api-1", "prod"), ("api-2", "prod"), ("web-1", "dev"), ("db-1", "prod")] {
            app.append(&Labels::from_pairs([("__name__", "up"), ("pod", pod), ("ns", ns)]), 10_000, 1.0);
        }
        app.commit().expect("commit");
        let re = |name: &str, value: &str| {
            Matcher::new(vigil_storage::MatchOp::Regex, name, value).expect("valid regex")
        };
        let sets =
            vec![vec![re("pod", "api-.*"), Matcher::equal("ns", "prod")], vec![re("pod", "db-1|web-1|x")]];
        let q = Lookup { start: MIN_TIME_MS, end: MAX_TIME_MS, matcher_sets: sets, limit: 0 };
        let got = find_label_values(&db, "pod", &q).expect("values");
        assert_eq!(got.data, r#"["api-1","api-2","db-1","web-1"]"#);
        let names = find_label_names(&db, &Lookup { matcher_sets: vec![vec![re("ns", "d.*")]], ..q.clone() });
        assert_eq!(names.expect("names").data, r#"["__name__","ns","pod"]"#);
        let later = Lookup { start: 20_000, end: 30_000, ..q };
        assert_eq!(find_label_values(&db, "pod", &later).expect("values").data, "[]");
    }

    /// Grafana's escaping (utf8_support.ts): legacy characters kept, `_` doubled,
    /// anything else as `_<hex>_`.
    fn grafana_escape(name: &str) -> String {
        let mut out = String::from("U__");
        for c in name.chars() {
            match c {
                '_' => out.push_str("__"),
                c if c.is_ascii_alphanumeric() || c == ':' => out.push(c),
                c => out.push_str(&format!("_{:x}_", c as u32)),
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn unescaping_inverts_grafanas_escaping(name in "\\PC{1,12}") {
            proptest::prop_assert_eq!(unescape_label_name(&grafana_escape(&name)), name);
        }

        #[test]
        fn unescaping_never_panics(raw in "U__[_0-9a-fA-Fxz]{0,16}") {
            let _ = unescape_label_name(&raw);
        }
    }

    #[test]
    fn cut_warns_only_when_truncating() {
        let mut v = vec![1, 2, 3];
        assert!(cut(&mut v, 0).is_empty());
        assert!(cut(&mut v, 3).is_empty());
        assert_eq!(cut(&mut v, 2), vec![TRUNCATED_WARNING.to_string()]);
        assert_eq!(v, vec![1, 2]);
    }
}
