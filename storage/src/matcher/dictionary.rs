//! Finding the values a matcher accepts in a sorted label-value dictionary (the head's
//! and the blocks' `value → postings` maps) without testing every value when the
//! pattern allows: literal sets are looked up, literal prefixes become key ranges.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{MatchOp, Matcher};

/// Entries of `values` whose value `m` accepts (`accept`) or rejects (`!accept`), in
/// value order.
pub(crate) fn values_where<'a, V>(
    values: &'a BTreeMap<String, V>,
    m: &'a Matcher,
    accept: bool,
) -> Vec<(&'a String, &'a V)> {
    // The pattern itself (not its negation) is what the shape narrows.
    let wants_pattern = matches!(m.op, MatchOp::Equal | MatchOp::Regex) == accept;
    if !wants_pattern {
        return values.iter().filter(|(v, _)| m.matches(v) == accept).collect();
    }
    if let Some(set) = m.literal_values() {
        return set.iter().filter_map(|v| values.get_key_value(v.as_str())).collect();
    }
    let prefixes = m.value_prefixes();
    if prefixes.is_empty() {
        return values.iter().filter(|(v, _)| m.matches(v) == accept).collect();
    }
    let mut out = Vec::new();
    for p in prefixes {
        let from = (Bound::Included(p.as_str()), Bound::Unbounded);
        out.extend(
            values
                .range::<str, _>(from)
                .take_while(|(v, _)| v.starts_with(p.as_str()))
                .filter(|(v, _)| m.matches(v) == accept),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Pieces random regexes are built from: literals that share prefixes, classes,
    /// runs, alternations, and a few shapes the fast paths do not take.
    const ATOMS: [&str; 14] =
        ["a", "ab", "b", "ba", "", ".", ".*", ".+", "[ab]", "(a|ba)", "(?i)a", "a?", "\\d", "x{0,2}"];

    fn regex_strategy() -> impl Strategy<Value = String> {
        let atom = (0..ATOMS.len()).prop_map(|i| ATOMS[i].to_string());
        let concat = prop::collection::vec(atom, 1..4).prop_map(|parts| parts.concat());
        prop::collection::vec(concat, 1..3).prop_map(|alts| alts.join("|"))
    }

    fn op_strategy() -> impl Strategy<Value = MatchOp> {
        prop_oneof![
            Just(MatchOp::Equal),
            Just(MatchOp::NotEqual),
            Just(MatchOp::Regex),
            Just(MatchOp::NotRegex)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn lookups_equal_testing_every_value(
            values in prop::collection::btree_set("[abAB1x]{0,4}", 0..40),
            op in op_strategy(),
            re in regex_strategy(),
            accept in any::<bool>(),
        ) {
            let m = Matcher::new(op, "l", re.clone()).expect("valid regex");
            let plain = regex::Regex::new(&format!("^(?s:{re})$")).expect("valid regex");
            let dict: BTreeMap<String, ()> = values.iter().map(|v| (v.clone(), ())).collect();
            let got: Vec<&str> = values_where(&dict, &m, accept).into_iter().map(|(v, _)| v.as_str()).collect();
            let pattern = |v: &str| match op {
                MatchOp::Equal | MatchOp::NotEqual => v == re,
                MatchOp::Regex | MatchOp::NotRegex => plain.is_match(v),
            };
            let negated = matches!(op, MatchOp::NotEqual | MatchOp::NotRegex);
            let want: Vec<&str> =
                values.iter().map(String::as_str).filter(|v| (pattern(v) != negated) == accept).collect();
            prop_assert_eq!(got, want, "{} {:?}", m, accept);
        }

        #[test]
        fn fast_matches_agree_with_the_regex(re in regex_strategy(), value in "[abAB1x\n]{0,6}") {
            let m = Matcher::new(MatchOp::Regex, "l", re.clone()).expect("valid regex");
            let plain = regex::Regex::new(&format!("^(?s:{re})$")).expect("valid regex");
            prop_assert_eq!(m.matches(&value), plain.is_match(&value), "{}", re);
        }
    }
}
