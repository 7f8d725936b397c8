//! Vigil's own query plan: the parser's AST converted once, with times in i64
//! milliseconds, `offset`/`@` resolved against the query's start and end, and regex
//! matchers compiled as storage matchers. The evaluator sees only this, so the
//! parser can be patched or replaced without touching evaluation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self as pp, AtModifier, LabelModifier, Offset, VectorMatchCardinality};
use vigil_storage::{METRIC_NAME, MatchOp, Matcher};

use crate::duration_expr::{DurationContext, rewrite as rewrite_durations};
use crate::error::QueryError;
use crate::functions;
use crate::range_modifiers::{MODIFIER_LABEL, RangeModifier, rewrite as rewrite_modifiers};

/// A node of the plan.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// A number literal.
    Number(f64),
    /// A string literal.
    String(String),
    /// An instant vector selector.
    Selector(Selector),
    /// A range vector selector `sel[range]`.
    Range { sel: Selector, range: i64 },
    /// A subquery `expr[range:step]`.
    Subquery { expr: Box<Expr>, range: i64, step: i64, offset: i64, at: Option<i64> },
    /// A function call.
    Call { func: &'static str, args: Vec<Expr> },
    /// An aggregation.
    Aggregate { op: AggOp, expr: Box<Expr>, param: Option<Box<Expr>>, grouping: Grouping },
    /// A binary operation.
    Binary { op: BinOp, lhs: Box<Expr>, rhs: Box<Expr>, matching: VectorMatching, return_bool: bool },
    /// Unary minus.
    Neg(Box<Expr>),
    /// Parentheses, kept because a few functions look through them and some don't.
    Paren(Box<Expr>),
}

/// The static type of a plan node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Scalar,
    String,
    Vector,
    Matrix,
}

impl Expr {
    /// The type this node evaluates to.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Expr::Number(_) => Kind::Scalar,
            Expr::String(_) => Kind::String,
            Expr::Selector(_) | Expr::Aggregate { .. } => Kind::Vector,
            Expr::Range { .. } | Expr::Subquery { .. } => Kind::Matrix,
            Expr::Call { func, .. } => functions::return_kind(func),
            Expr::Binary { lhs, rhs, .. } => {
                if lhs.kind() == Kind::Scalar && rhs.kind() == Kind::Scalar {
                    Kind::Scalar
                } else {
                    Kind::Vector
                }
            }
            Expr::Neg(e) | Expr::Paren(e) => e.kind(),
        }
    }

    /// The expression with any parentheses around it removed.
    pub(crate) fn unparen(&self) -> &Expr {
        match self {
            Expr::Paren(e) => e.unparen(),
            e => e,
        }
    }
}

/// A series selector with its time modifiers resolved.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    pub matchers: Vec<Matcher>,
    /// `offset` in ms; negative looks into the future.
    pub offset: i64,
    /// `@` time in ms, `start()`/`end()` already resolved.
    pub at: Option<i64>,
    /// `anchored` / `smoothed`.
    pub modifier: RangeModifier,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
    Limitk,
    LimitRatio,
}

/// `by (...)` or `without (...)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    /// True for `==`, `!=`, `>`, `<`, `>=`, `<=`.
    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le)
    }

    /// True for `and`, `or`, `unless`.
    pub(crate) fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// How two vectors' series are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// `on`/`ignoring` and `group_left`/`group_right` of a binary operation.
#[derive(Debug, Clone)]
pub(crate) struct VectorMatching {
    pub card: Card,
    /// True for `on(...)`, false for `ignoring(...)` (also the default).
    pub on: bool,
    pub labels: Vec<String>,
    /// Extra labels copied from the "one" side (`group_left(a, b)`).
    pub include: Vec<String>,
    /// `fill_left(v)`: value used when the (after `group_right`, swapped) left side
    /// has no series for a match group.
    pub fill_lhs: Option<f64>,
    /// `fill_right(v)`: the same for the right ("one") side.
    pub fill_rhs: Option<f64>,
}

/// Query-wide times that `@ start()` / `@ end()` refer to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanContext {
    pub start: i64,
    pub end: i64,
    /// The query's step (0 for an instant query), for `step()` in durations.
    pub step: i64,
    pub default_step: i64,
    pub experimental: bool,
}

/// Parses a query and converts it into the plan; parse errors name their position.
pub(crate) fn parse(query: &str, ctx: &PlanContext) -> Result<Expr, QueryError> {
    parse_unplaced(query, ctx).map_err(|e| place_error(query, e))
}

/// Gives a "parse error: ..." its `line:col:` prefix, as Prometheus writes it.
fn place_error(query: &str, e: QueryError) -> QueryError {
    match e {
        QueryError::Parse(m) => match m.strip_prefix("parse error: ") {
            Some(rest) => QueryError::Parse(crate::parse_errors::describe(query, rest)),
            None => QueryError::Parse(m),
        },
        other => other,
    }
}

fn parse_unplaced(query: &str, ctx: &PlanContext) -> Result<Expr, QueryError> {
    if has_high_byte_escape(query) {
        return Err(QueryError::Execution(
            "byte escapes above \\x7f in strings are not supported yet".into(),
        ));
    }
    let dctx = DurationContext { step: ctx.step, range: ctx.end - ctx.start };
    let query = crate::raw_strings::rewrite_raw_strings(query);
    let query = rewrite_modifiers(&crate::info::patch_selectors(&query));
    let query = rewrite_durations(&query, dctx).map_err(|e| QueryError::Parse(parse_error_text(&e)))?;
    let ast = pp::parse(&query).map_err(|e| QueryError::Parse(parse_error_text(&e)))?;
    convert(&ast, ctx)
}

/// The parser's syntax tree of `query` as written (raw strings rewritten, nothing
/// else), for `/api/v1/parse_query` and `/api/v1/format_query`.
pub(crate) fn syntax_tree(query: &str) -> Result<pp::Expr, QueryError> {
    let rewritten = crate::raw_strings::rewrite_raw_strings(query);
    pp::parse(&rewritten).map_err(|e| place_error(query, QueryError::Parse(parse_error_text(&e))))
}

/// Whether a quoted string of the query has a `\xNN` escape above 0x7f. Go turns
/// those into raw bytes (possibly invalid UTF-8) while `promql-parser` turns them into
/// characters, so such queries are refused rather than answered differently.
fn has_high_byte_escape(query: &str) -> bool {
    let b = query.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            None if matches!(b[i], b'"' | b'\'') => quote = Some(b[i]),
            None => {}
            Some(q) if b[i] == q => quote = None,
            Some(_) if b[i] == b'\\' => {
                if b.get(i + 1) == Some(&b'x')
                    && b.get(i + 2).is_some_and(|c| matches!(c, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
                {
                    return true;
                }
                i += 1;
            }
            Some(_) => {}
        }
        i += 1;
    }
    false
}

/// The parser's error as "parse error: ..."; [`place_error`] adds the position.
fn parse_error_text(e: &str) -> String {
    format!("parse error: {e}")
}

fn ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => ms(&d),
        Err(e) => -ms(&e.duration()),
    }
}

fn at_ms(a: &Option<AtModifier>, ctx: &PlanContext) -> Option<i64> {
    a.as_ref().map(|a| match a {
        AtModifier::Start => ctx.start,
        AtModifier::End => ctx.end,
        AtModifier::At(t) => system_time_ms(t),
    })
}

fn convert_matcher(m: &promql_parser::label::Matcher) -> Result<Matcher, QueryError> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Equal,
        PMatchOp::NotEqual => MatchOp::NotEqual,
        PMatchOp::Re(_) => MatchOp::Regex,
        PMatchOp::NotRe(_) => MatchOp::NotRegex,
    };
    Matcher::new(op, m.name.clone(), m.value.clone())
        .map_err(|e| QueryError::Parse(format!("parse error: {e}")))
}

/// Converts a parsed vector selector into storage matchers and resolved times.
fn convert_selector(vs: &pp::VectorSelector, ctx: &PlanContext) -> Result<Selector, QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::Parse("parse error: `or` inside a selector is not PromQL".into()));
    }
    let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        matchers.push(Matcher::equal(METRIC_NAME, name.clone()));
    }
    let mut modifier = RangeModifier::None;
    for m in &vs.matchers.matchers {
        if m.name == MODIFIER_LABEL {
            modifier = RangeModifier::from_name(&m.value).unwrap_or_default();
            continue;
        }
        matchers.push(convert_matcher(m)?);
    }
    Ok(Selector { matchers, offset: offset_ms(&vs.offset), at: at_ms(&vs.at, ctx), modifier })
}

fn agg_op(op: &str) -> Result<AggOp, QueryError> {
    Ok(match op {
        "sum" => AggOp::Sum,
        "avg" => AggOp::Avg,
        "min" => AggOp::Min,
        "max" => AggOp::Max,
        "count" => AggOp::Count,
        "group" => AggOp::Group,
        "stddev" => AggOp::Stddev,
        "stdvar" => AggOp::Stdvar,
        "topk" => AggOp::Topk,
        "bottomk" => AggOp::Bottomk,
        "quantile" => AggOp::Quantile,
        "count_values" => AggOp::CountValues,
        "limitk" => AggOp::Limitk,
        "limit_ratio" => AggOp::LimitRatio,
        other => return Err(QueryError::Execution(format!("aggregation {other} is not supported yet"))),
    })
}

fn bin_op(op: &str) -> Result<BinOp, QueryError> {
    Ok(match op {
        "+" => BinOp::Add,
        "-" => BinOp::Sub,
        "*" => BinOp::Mul,
        "/" => BinOp::Div,
        "%" => BinOp::Mod,
        "^" => BinOp::Pow,
        "atan2" => BinOp::Atan2,
        "==" => BinOp::Eq,
        "!=" => BinOp::Ne,
        ">" => BinOp::Gt,
        "<" => BinOp::Lt,
        ">=" => BinOp::Ge,
        "<=" => BinOp::Le,
        "and" => BinOp::And,
        "or" => BinOp::Or,
        "unless" => BinOp::Unless,
        other => return Err(QueryError::Execution(format!("binary operator {other} is not supported yet"))),
    })
}

fn label_list(l: &LabelModifier) -> Vec<String> {
    l.labels().labels.clone()
}

/// Converts the parser's AST into the plan.
pub(crate) fn convert(e: &pp::Expr, ctx: &PlanContext) -> Result<Expr, QueryError> {
    Ok(match e {
        pp::Expr::NumberLiteral(n) => Expr::Number(n.val),
        pp::Expr::StringLiteral(s) => Expr::String(s.val.clone()),
        pp::Expr::Paren(p) => Expr::Paren(Box::new(convert(&p.expr, ctx)?)),
        pp::Expr::Unary(u) => Expr::Neg(Box::new(convert(&u.expr, ctx)?)),
        pp::Expr::VectorSelector(vs) => Expr::Selector(convert_selector(vs, ctx)?),
        pp::Expr::MatrixSelector(m) => {
            Expr::Range { sel: convert_selector(&m.vs, ctx)?, range: ms(&m.range) }
        }
        pp::Expr::Subquery(s) => Expr::Subquery {
            expr: Box::new(convert(&s.expr, ctx)?),
            range: ms(&s.range),
            step: s.step.as_ref().map(ms).filter(|s| *s > 0).unwrap_or(ctx.default_step),
            offset: offset_ms(&s.offset),
            at: at_ms(&s.at, ctx),
        },
        pp::Expr::Call(c) => {
            let name = c.func.name;
            if c.func.experimental && !ctx.experimental {
                return Err(QueryError::Parse(format!("parse error: function {name:?} is not enabled")));
            }
            if !functions::is_supported(name) {
                return Err(QueryError::Execution(format!("function {name}() is not supported yet")));
            }
            let args = c.args.args.iter().map(|a| convert(a, ctx)).collect::<Result<Vec<_>, _>>()?;
            Expr::Call { func: name, args }
        }
        pp::Expr::Aggregate(a) => {
            let name = a.op.to_string();
            let op = agg_op(&name)?;
            if matches!(op, AggOp::Limitk | AggOp::LimitRatio) && !ctx.experimental {
                return Err(QueryError::Parse(format!(
                    "parse error: {name}() is experimental and must be enabled with --enable-feature=promql-experimental-functions"
                )));
            }
            let grouping = match &a.modifier {
                None => Grouping::default(),
                Some(m) => Grouping { without: !m.is_include(), labels: label_list(m) },
            };
            Expr::Aggregate {
                op,
                expr: Box::new(convert(&a.expr, ctx)?),
                param: a.param.as_ref().map(|p| convert(p, ctx)).transpose()?.map(Box::new),
                grouping,
            }
        }
        pp::Expr::Binary(b) => {
            let op = bin_op(&b.op.to_string())?;
            let default = pp::BinModifier::default();
            let m = b.modifier.as_ref().unwrap_or(&default);
            let (card, include) = match &m.card {
                VectorMatchCardinality::OneToOne => (Card::OneToOne, Vec::new()),
                VectorMatchCardinality::ManyToOne(l) => (Card::ManyToOne, l.labels.clone()),
                VectorMatchCardinality::OneToMany(l) => (Card::OneToMany, l.labels.clone()),
                VectorMatchCardinality::ManyToMany => (Card::ManyToMany, Vec::new()),
            };
            let card = if op.is_set() { Card::ManyToMany } else { card };
            let (on, labels) = match &m.matching {
                Some(l) => (l.is_include(), label_list(l)),
                None => (false, Vec::new()),
            };
            Expr::Binary {
                op,
                lhs: Box::new(convert(&b.lhs, ctx)?),
                rhs: Box::new(convert(&b.rhs, ctx)?),
                matching: VectorMatching {
                    card,
                    on,
                    labels,
                    include,
                    fill_lhs: m.fill_values.lhs,
                    fill_rhs: m.fill_values.rhs,
                },
                return_bool: m.return_bool,
            }
        }
        pp::Expr::Extension(_) => {
            return Err(QueryError::Execution("extension expressions are not supported".into()));
        }
    })
}

/// Gives every selector and subquery without `@` the time `at`, leaving the inside of
/// subqueries alone (they are pinned as a whole).
pub(crate) fn pin_at(e: &mut Expr, at: i64) {
    match e {
        Expr::Selector(s) | Expr::Range { sel: s, .. } => {
            s.at.get_or_insert(at);
        }
        // Once the subquery itself is pinned, what it evaluates inside stays as written.
        Expr::Subquery { at: sub_at, .. } => {
            sub_at.get_or_insert(at);
        }
        Expr::Neg(x) | Expr::Paren(x) => pin_at(x, at),
        Expr::Call { args, .. } => args.iter_mut().for_each(|a| pin_at(a, at)),
        Expr::Aggregate { expr, param, .. } => {
            pin_at(expr, at);
            if let Some(p) = param {
                pin_at(p, at);
            }
        }
        Expr::Binary { lhs, rhs, .. } => {
            pin_at(lhs, at);
            pin_at(rhs, at);
        }
        Expr::Number(_) | Expr::String(_) => {}
    }
}

/// The matchers of every selector in a query, read straight from the parser's AST so
/// that it works even where the plan would refuse the query (unsupported functions).
pub(crate) fn selector_matchers(query: &str) -> Option<Vec<Vec<Matcher>>> {
    fn walk(e: &pp::Expr, out: &mut Vec<Vec<Matcher>>) {
        let ctx = PlanContext { start: 0, end: 0, step: 0, default_step: 1, experimental: true };
        match e {
            pp::Expr::VectorSelector(vs) => out.extend(convert_selector(vs, &ctx).ok().map(|s| s.matchers)),
            pp::Expr::MatrixSelector(m) => out.extend(convert_selector(&m.vs, &ctx).ok().map(|s| s.matchers)),
            pp::Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            pp::Expr::Unary(u) => walk(&u.expr, out),
            pp::Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            pp::Expr::Paren(p) => walk(&p.expr, out),
            pp::Expr::Subquery(s) => walk(&s.expr, out),
            pp::Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            _ => {}
        }
    }
    let dctx = DurationContext { step: 0, range: 0 };
    let ast = pp::parse(&rewrite_durations(&rewrite_modifiers(query), dctx).ok()?).ok()?;
    let mut out = Vec::new();
    walk(&ast, &mut out);
    Some(out)
}

/// Parses a bare series selector (`up`, `{job="a"}`) into matchers.
pub(crate) fn parse_selector(s: &str) -> Result<Vec<Matcher>, QueryError> {
    let ctx = PlanContext { start: 0, end: 0, step: 0, default_step: 60_000, experimental: false };
    match parse(s, &ctx)? {
        Expr::Selector(sel) if sel.offset == 0 && sel.at.is_none() && sel.modifier == RangeModifier::None => {
            Ok(sel.matchers)
        }
        _ => Err(QueryError::Parse(format!("invalid parameter \"match[]\": {s:?} is not a series selector"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PlanContext {
        PlanContext { start: 1_000, end: 9_000, step: 0, default_step: 60_000, experimental: true }
    }

    #[test]
    fn resolves_offset_and_at_to_milliseconds() {
        let Expr::Range { sel, range } = parse("x[5m] offset -1m @ end()", &ctx()).unwrap() else {
            panic!("not a range selector");
        };
        assert_eq!((range, sel.offset, sel.at), (300_000, -60_000, Some(9_000)));
        assert_eq!(sel.matchers, vec![Matcher::equal("__name__", "x")]);
    }

    #[test]
    fn subquery_without_step_uses_default() {
        let Expr::Subquery { step, range, .. } = parse("x[5m:]", &ctx()).unwrap() else {
            panic!("not a subquery");
        };
        assert_eq!((step, range), (60_000, 300_000));
    }

    #[test]
    fn parse_selector_accepts_api_forms() {
        assert_eq!(parse_selector("up").unwrap().len(), 1);
        let m = parse_selector(r#"{__name__=~".+",}"#).unwrap();
        assert_eq!(m[0].op, MatchOp::Regex);
        assert!(m[0].matches("up"));
        assert_eq!(parse_selector(r#"http_requests_total{job="a"}"#).unwrap().len(), 2);
        assert!(parse_selector("rate(x[5m])").is_err());
    }
}
