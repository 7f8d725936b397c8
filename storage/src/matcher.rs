//! Label matchers with Prometheus's semantics.
//!
//! A missing label has the value `""`, so `{a=""}` selects series without `a` and
//! `{a!=""}` those with it. Regexes are fully anchored and `.` matches newlines, as
//! Prometheus compiles them (`^(?s:<re>)$`).

use std::fmt;

use regex::Regex;

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
}

impl Matcher {
    /// Builds a matcher; fails only on an invalid regex.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, StorageError> {
        let (name, value) = (name.into(), value.into());
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?s:{value})$")).map_err(|e| {
                    StorageError::Invalid(format!("invalid regular expression {value:?}: {e}"))
                })?)
            }
            _ => None,
        };
        Ok(Matcher { name, op, value, re })
    }

    /// `name = value`, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into(), re: None }
    }

    /// Whether `value` (the label's value, `""` when absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(value)),
        }
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
