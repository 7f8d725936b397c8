//! What a regex matcher's pattern reduces to, found once when the matcher is built:
//! a fast test for one value (Prometheus's "fast regex matcher" idea) and a way to find
//! the matching values in a sorted dictionary without testing every value.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Most strings a literal set may expand to (as Prometheus's `maxSetMatches`); beyond it
/// the regex is tested value by value.
const MAX_SET: usize = 256;
/// Most characters a class may have to be expanded into a literal set (`[0-9]` has 10).
const MAX_CLASS_CHARS: u32 = 16;
/// Most literal prefixes kept to narrow a dictionary scan; more narrow too little.
const MAX_PREFIXES: usize = 64;

/// How one value is tested faster than by running the regex.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fast {
    /// Exactly these strings (sorted, deduplicated).
    Set(Vec<String>),
    /// Any string (`.*`).
    Any,
    /// Any non-empty string (`.+`).
    NonEmpty,
    /// Strings that start with this (`foo.*`).
    Prefix(String),
    /// Strings that end with this (`.*foo`).
    Suffix(String),
}

impl Fast {
    /// Whether `value` matches.
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            Fast::Set(set) => set.binary_search_by(|s| s.as_str().cmp(value)).is_ok(),
            Fast::Any => true,
            Fast::NonEmpty => !value.is_empty(),
            Fast::Prefix(p) => {
                value.len() >= p.len() && same_bytes(&value.as_bytes()[..p.len()], p.as_bytes())
            }
            Fast::Suffix(s) => {
                value.len() >= s.len() && same_bytes(&value.as_bytes()[value.len() - s.len()..], s.as_bytes())
            }
        }
    }
}

/// Whether two byte strings of equal length are equal, compared inline: label values
/// are short, and a `memcmp` call per value measured slower in scans over many values.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// What is known about a regex beyond its compiled form.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Shape {
    /// A test that replaces the regex, when one applies.
    pub(crate) fast: Option<Fast>,
    /// Every matching string starts with one of these (sorted, none a prefix of another,
    /// none empty); empty when nothing narrower than "any string" is known.
    pub(crate) prefixes: Vec<String>,
}

impl Shape {
    /// Analyses `pattern`, already wrapped as the matcher compiles it (`(?s:...)`); an
    /// unparsable pattern or one with look-around assertions gets no shape.
    pub(crate) fn of(pattern: &str) -> Shape {
        let Ok(hir) = regex_syntax::parse(pattern) else { return Shape::default() };
        // Anchors and word boundaries inside the pattern make literal reasoning unsound.
        if !hir.properties().look_set().is_empty() {
            return Shape::default();
        }
        let fast = literal_set(&hir, MAX_SET)
            .map(|mut set| {
                set.sort_unstable();
                set.dedup();
                Fast::Set(set)
            })
            .or_else(|| simple(&hir));
        let prefixes = match &fast {
            Some(Fast::Set(set)) => minimal_prefixes(set.clone()),
            _ => extracted_prefixes(&hir),
        };
        Shape { fast, prefixes }
    }
}

/// The strings `hir` matches when they are a finite set of at most `limit`.
fn literal_set(hir: &Hir, limit: usize) -> Option<Vec<String>> {
    match hir.kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(l) => Some(vec![String::from_utf8(l.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(c)) => {
            let count: u32 = c.ranges().iter().map(|r| u32::from(r.end()) - u32::from(r.start()) + 1).sum();
            if count > MAX_CLASS_CHARS || count as usize > limit {
                return None;
            }
            Some(c.ranges().iter().flat_map(|r| r.start()..=r.end()).map(String::from).collect())
        }
        HirKind::Class(Class::Bytes(_)) | HirKind::Look(_) | HirKind::Repetition(_) => None,
        HirKind::Capture(c) => literal_set(&c.sub, limit),
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for s in subs {
                out.extend(literal_set(s, limit)?);
                if out.len() > limit {
                    return None;
                }
            }
            Some(out)
        }
        HirKind::Concat(subs) => {
            let mut out = vec![String::new()];
            for s in subs {
                let tails = literal_set(s, limit)?;
                if out.len() * tails.len() > limit {
                    return None;
                }
                out = out.iter().flat_map(|head| tails.iter().map(move |t| format!("{head}{t}"))).collect();
            }
            Some(out)
        }
    }
}

/// `.*`, `.+`, `lit.*` and `.*lit` (captures around parts allowed). A substring
/// (`.*lit.*`) is left to the regex, whose precomputed substring search measured faster
/// than `str::contains` per value.
fn simple(hir: &Hir) -> Option<Fast> {
    let hir = uncaptured(hir);
    if let Some(min) = any_run(hir) {
        return Some(if min == 0 { Fast::Any } else { Fast::NonEmpty });
    }
    let HirKind::Concat(parts) = hir.kind() else { return None };
    let parts: Vec<&Hir> = parts.iter().map(uncaptured).collect();
    let any = |h: &Hir| any_run(h) == Some(0);
    match parts.as_slice() {
        [lit, star] if any(star) => literal(lit).map(Fast::Prefix),
        [star, lit] if any(star) => literal(lit).map(Fast::Suffix),
        _ => None,
    }
}

fn uncaptured(mut hir: &Hir) -> &Hir {
    while let HirKind::Capture(c) = hir.kind() {
        hir = &c.sub;
    }
    hir
}

fn literal(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
        _ => None,
    }
}

/// The minimum length of `hir` when it is an unbounded run of any character.
fn any_run(hir: &Hir) -> Option<u32> {
    let HirKind::Repetition(r) = hir.kind() else { return None };
    let HirKind::Class(Class::Unicode(c)) = uncaptured(&r.sub).kind() else { return None };
    let whole = matches!(c.ranges(), [r] if r.start() == '\0' && r.end() == char::MAX);
    (whole && r.max.is_none() && r.min <= 1).then_some(r.min)
}

/// Literal prefixes every match starts with, from the regex crate's own extractor.
fn extracted_prefixes(hir: &Hir) -> Vec<String> {
    let mut ex = Extractor::new();
    ex.kind(ExtractKind::Prefix).limit_total(MAX_PREFIXES);
    let seq = ex.extract(hir);
    let Some(lits) = seq.literals() else { return Vec::new() };
    let mut out = Vec::with_capacity(lits.len());
    for l in lits {
        let bytes = l.as_bytes();
        // A prefix cut inside a character is shortened to the last whole one.
        let s = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        out.push(s.to_string());
    }
    minimal_prefixes(out)
}

/// Sorts `prefixes` and drops any that extends another; empty if any is empty (then
/// every string qualifies and there is nothing to narrow).
fn minimal_prefixes(mut prefixes: Vec<String>) -> Vec<String> {
    prefixes.sort_unstable();
    prefixes.dedup();
    let mut out: Vec<String> = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        if p.is_empty() {
            return Vec::new();
        }
        if out.last().is_some_and(|last| p.starts_with(last.as_str())) {
            continue;
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(re: &str) -> Shape {
        Shape::of(&format!("(?s:{re})"))
    }

    fn set(items: &[&str]) -> Option<Fast> {
        Some(Fast::Set(items.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn recognises_literal_sets() {
        assert_eq!(shape("foo").fast, set(&["foo"]));
        assert_eq!(shape("b|a|c|a").fast, set(&["a", "b", "c"]));
        assert_eq!(shape("(foo|bar)").fast, set(&["bar", "foo"]));
        assert_eq!(shape("foo(bar|baz)").fast, set(&["foobar", "foobaz"]));
        assert_eq!(shape("5[0-2]").fast, set(&["50", "51", "52"]));
        assert_eq!(shape("|x").fast, set(&["", "x"]));
        assert_eq!(shape("(?i)ab").fast, set(&["AB", "Ab", "aB", "ab"]));
        assert_eq!(shape("foobar|foobaz").prefixes, vec!["foobar", "foobaz"]);
    }

    #[test]
    fn recognises_runs_prefixes_and_suffixes() {
        assert_eq!(shape(".*").fast, Some(Fast::Any));
        assert_eq!(shape(".+").fast, Some(Fast::NonEmpty));
        assert_eq!(shape("(.*)").fast, Some(Fast::Any));
        assert_eq!(shape("foo.*").fast, Some(Fast::Prefix("foo".into())));
        assert_eq!(shape(".*foo").fast, Some(Fast::Suffix("foo".into())));
        assert_eq!(shape(".*foo.*").fast, None);
        assert_eq!(shape("foo.+").fast, None);
    }

    #[test]
    fn extracts_prefixes_for_the_dictionary() {
        assert_eq!(shape("foo.*").prefixes, vec!["foo"]);
        assert_eq!(shape("foo(bar|baz).*").prefixes, vec!["foobar", "foobaz"]);
        assert_eq!(shape("/api/v1/(users|orders).*").prefixes, vec!["/api/v1/orders", "/api/v1/users"]);
        assert_eq!(shape("5..").prefixes, vec!["5"]);
        assert!(shape(".*foo").prefixes.is_empty());
        assert!(shape("x*").prefixes.is_empty());
        assert!(shape("|x.*").prefixes.is_empty());
    }

    #[test]
    fn look_arounds_and_non_newline_dots_get_no_fast_path() {
        assert_eq!(shape("^foo$"), Shape::default());
        assert_eq!(shape(r"\bfoo"), Shape::default());
        assert_eq!(shape("(?-s:.*)").fast, None);
    }

    #[test]
    fn minimal_prefixes_drop_extensions() {
        let got = minimal_prefixes(vec!["ab".into(), "a".into(), "b".into(), "abc".into(), "b".into()]);
        assert_eq!(got, vec!["a", "b"]);
    }
}
