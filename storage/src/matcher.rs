//! Label matchers with Prometheus's semantics.
//!
//! A missing label has the value `""`, so `{a=""}` selects series without `a` and
//! `{a!=""}` those with it. Regexes are fully anchored and `.` matches newlines, as
//! Prometheus compiles them (`^(?s:<re>)$`). A regex's `shape` (literal set, prefix,
//! suffix) is found once, so that most values are tested without running
//! the regex and the `dictionary` lookups need not test every value.

pub(crate) mod dictionary;
mod shape;

use std::fmt;
use std::sync::Arc;

use regex::Regex;
use shape::Shape;

use crate::StorageError;
use crate::labels::Labels;

/// The four matching operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// The operator as PromQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher, with its regex compiled once.
#[derive(Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The operator.
    pub op: MatchOp,
    /// The literal value or the regex source as written.
    pub value: String,
    re: Option<Regex>,
    /// What the regex reduces to; shared, as matchers are cloned per query.
    shape: Arc<Shape>,
}

impl Matcher {
    /// Builds a matcher; fails only on an invalid regex.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, StorageError> {
        let (name, value) = (name.into(), value.into());
        let (re, shape) = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                let wrapped = format!("(?s:{value})");
                let re = Regex::new(&format!("^{wrapped}$")).map_err(|e| {
                    StorageError::Invalid(format!("invalid regular expression {value:?}: {e}"))
                })?;
                (Some(re), Shape::of(&wrapped))
            }
            _ => (None, Shape::default()),
        };
        Ok(Matcher { name, op, value, re, shape: Arc::new(shape) })
    }

    /// `name = value`, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
            shape: Arc::new(Shape::default()),
        }
    }

    /// Whether `value` (the label's value, `""` when absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex => self.pattern_matches(value),
            MatchOp::NotRegex => !self.pattern_matches(value),
        }
    }

    /// Whether the regex (not its negation) matches `value`.
    fn pattern_matches(&self, value: &str) -> bool {
        match &self.shape.fast {
            Some(fast) => fast.matches(value),
            None => self.re.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// The only values the pattern (`=`'s value, or the regex ignoring negation) accepts,
    /// sorted, when they are a known finite set.
    pub(crate) fn literal_values(&self) -> Option<&[String]> {
        match (self.op, &self.shape.fast) {
            (MatchOp::Equal | MatchOp::NotEqual, _) => Some(std::slice::from_ref(&self.value)),
            (_, Some(shape::Fast::Set(set))) => Some(set),
            _ => None,
        }
    }

    /// Literal prefixes every value the regex (ignoring negation) accepts starts with
    /// (sorted, none a prefix of another); empty when none is known.
    pub(crate) fn value_prefixes(&self) -> &[String] {
        &self.shape.prefixes
    }

    /// True for `=~".*"`, which every series satisfies.
    pub(crate) fn matches_everything(&self) -> bool {
        self.op == MatchOp::Regex && self.shape.fast == Some(shape::Fast::Any)
    }

    /// Whether a series with these labels satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// True when the matcher also selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "a", v).expect("valid matcher")
    }

    #[test]
    fn regex_is_fully_anchored() {
        assert!(m(MatchOp::Regex, "foo").matches("foo"));
        assert!(!m(MatchOp::Regex, "foo").matches("foobar"));
        assert!(!m(MatchOp::Regex, "foo").matches("xfoo"));
        assert!(m(MatchOp::Regex, "foo|bar").matches("bar"));
        assert!(!m(MatchOp::Regex, "foo|bar").matches("foobar"));
        assert!(m(MatchOp::NotRegex, "foo").matches("foobar"));
    }

    #[test]
    fn dot_matches_newline() {
        assert!(m(MatchOp::Regex, "a.b").matches("a\nb"));
    }

    #[test]
    fn missing_label_is_empty_value() {
        let l = Labels::from_pairs([("b", "x")]);
        assert!(Matcher::equal("a", "").matches_labels(&l));
        assert!(!m(MatchOp::NotEqual, "").matches_labels(&l));
        assert!(m(MatchOp::Regex, ".*").matches_labels(&l));
        assert!(!m(MatchOp::Regex, ".+").matches_labels(&l));
        assert!(m(MatchOp::NotRegex, ".+").matches_labels(&l));
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(Matcher::new(MatchOp::Regex, "a", "(").is_err());
    }
}
