//! Builds the template tree from lexed items; unknown functions and unsupported
//! constructs are errors here, so they surface when rules load.

use std::collections::HashMap;

use super::funcs;
use super::lex::{Item, Tok};
use super::value::Value;

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: prints the value unless it declares variables.
    Output(Pipe),
    /// `if`, `range` or `with` with its bodies.
    Control(Control),
    /// `{{ template "name" pipeline }}`.
    Template(String, Option<Pipe>, Pos),
}

/// Which control structure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ControlKind {
    /// `if`.
    If,
    /// `range`.
    Range,
    /// `with`.
    With,
}

/// A control structure.
#[derive(Debug, Clone)]
pub struct Control {
    /// `if`, `range` or `with`.
    pub kind: ControlKind,
    /// The tested (or iterated) pipeline.
    pub pipe: Pipe,
    /// The body.
    pub body: Vec<Node>,
    /// The `else` body (an `else if` is a nested `if`).
    pub els: Vec<Node>,
}

/// Line and column of an action, for error messages.
pub type Pos = (usize, usize);

/// A pipeline: optional variable declarations and commands joined by `|`.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Declared or assigned variables.
    pub vars: Vec<String>,
    /// True for `=` (assignment), false for `:=`.
    pub assign: bool,
    /// The commands.
    pub cmds: Vec<Cmd>,
    /// The source text, for error messages.
    pub text: String,
}

/// One command: a function call or a single operand.
#[derive(Debug, Clone)]
pub struct Cmd {
    /// Operands; a function call has [`Arg::Func`] first.
    pub args: Vec<Arg>,
    /// Byte offset of its first token in the source (for Go-style error positions).
    pub offset: usize,
    /// Its source text, as Go prints the node in errors.
    pub text: String,
}

/// An operand.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.`
    Dot,
    /// `.A.B`: fields of dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// A literal.
    Lit(Value),
    /// `( pipeline ).A`.
    Sub(Box<Pipe>, Vec<String>),
}

/// A parsed template: its body and the templates it defines.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The main body.
    pub root: Vec<Node>,
    /// `{{ define "name" }}` bodies.
    pub defs: HashMap<String, Vec<Node>>,
}

/// Parses lexed items into a tree.
pub fn parse(items: Vec<Item>) -> Result<Tree, String> {
    let mut p = Parser { items, at: 0, tree: Tree::default(), vars: vec![vec!["$".to_string()]] };
    p.declare_preamble();
    let (root, end) = p.list(true)?;
    if let Some((word, pos)) = end {
        return Err(format!("{}:{}: unexpected {{{{{word}}}}}", pos.0, pos.1));
    }
    p.tree.root = root;
    Ok(p.tree)
}

struct Parser {
    items: Vec<Item>,
    at: usize,
    tree: Tree,
    /// Declared variables per scope, to reject undefined ones at parse time as Go does.
    vars: Vec<Vec<String>>,
}

/// What ended a list: `end`, `else` (with the rest of its tokens) or end of input.
type End = Option<(String, Pos)>;

impl Parser {
    fn declare_preamble(&mut self) {
        for v in super::PREAMBLE_VARS {
            self.vars[0].push(v.to_string());
        }
    }

    /// Parses nodes until `end`/`else` (returned) or the end of input.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, End), String> {
        let mut nodes = Vec::new();
        while self.at < self.items.len() {
            let item = self.items[self.at].clone();
            self.at += 1;
            let (toks, offs, line, col) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(toks, offs, line, col) => (toks, offs, line, col),
            };
            let pos = (line, col);
            let keyword = match toks.first() {
                Some(Tok::Ident(w)) => w.as_str(),
                _ => "",
            };
            match keyword {
                "end" => {
                    if toks.len() != 1 {
                        return Err(format!("{line}:{col}: unexpected tokens after end"));
                    }
                    return Ok((nodes, Some(("end".into(), pos))));
                }
                "else" => {
                    // Put the tokens back so the caller can see `else if` / `else with`.
                    self.at -= 1;
                    return Ok((nodes, Some(("else".into(), pos))));
                }
                "if" | "range" | "with" => {
                    let kind = match keyword {
                        "if" => ControlKind::If,
                        "range" => ControlKind::Range,
                        _ => ControlKind::With,
                    };
                    nodes.push(Node::Control(self.control(kind, &toks[1..], &offs[1..], pos)?));
                }
                "define" => {
                    if !top {
                        return Err(format!("{line}:{col}: define is only allowed at the top level"));
                    }
                    let name = match &toks[1..] {
                        [Tok::Str(n)] => n.clone(),
                        _ => return Err(format!("{line}:{col}: define needs one quoted name")),
                    };
                    self.vars.push(vec!["$".into()]);
                    let (body, end) = self.list(false)?;
                    self.vars.pop();
                    match end {
                        Some((w, _)) if w == "end" => {}
                        _ => return Err(format!("{line}:{col}: unexpected EOF in define")),
                    }
                    self.tree.defs.insert(name, body);
                }
                "template" => {
                    let (name, rest) = match &toks[1..] {
                        [Tok::Str(n), rest @ ..] => (n.clone(), rest),
                        _ => return Err(format!("{line}:{col}: template needs a quoted name")),
                    };
                    let pipe =
                        if rest.is_empty() { None } else { Some(self.pipe(rest, &offs[2..], pos, false)?) };
                    nodes.push(Node::Template(name, pipe, pos));
                }
                "block" | "break" | "continue" => {
                    return Err(format!(
                        "{line}:{col}: {{{{{keyword}}}}} is not supported by Vigil's template engine"
                    ));
                }
                _ => {
                    let pipe = self.pipe(&toks, &offs, pos, true)?;
                    nodes.push(Node::Output(pipe));
                }
            }
        }
        Ok((nodes, None))
    }

    fn control(
        &mut self,
        kind: ControlKind,
        toks: &[Tok],
        offs: &[usize],
        pos: Pos,
    ) -> Result<Control, String> {
        self.vars.push(Vec::new());
        let pipe = self.pipe(toks, offs, pos, true)?;
        let (body, end) = self.list(false)?;
        self.vars.pop();
        let (word, epos) = end.ok_or_else(|| format!("{}:{}: unexpected EOF", pos.0, pos.1))?;
        let mut els = Vec::new();
        if word == "else" {
            let Some(Item::Action(etoks, eoffs, _, _)) = self.items.get(self.at).cloned() else {
                return Err(format!("{}:{}: bad else", epos.0, epos.1));
            };
            self.at += 1;
            match etoks.get(1) {
                None => {
                    self.vars.push(Vec::new());
                    let (e, end) = self.list(false)?;
                    self.vars.pop();
                    match end {
                        Some((w, _)) if w == "end" => {}
                        _ => return Err(format!("{}:{}: expected end after else", epos.0, epos.1)),
                    }
                    els = e;
                }
                // `else if` / `else with`: a nested control that consumes the shared `end`.
                Some(Tok::Ident(w))
                    if (w == "if" && kind == ControlKind::If)
                        || (w == "with" && kind == ControlKind::With) =>
                {
                    els.push(Node::Control(self.control(kind, &etoks[2..], &eoffs[2..], epos)?));
                }
                _ => return Err(format!("{}:{}: unexpected tokens after else", epos.0, epos.1)),
            }
        }
        Ok(Control { kind, pipe, body, els })
    }

    fn pipe(&mut self, toks: &[Tok], offs: &[usize], pos: Pos, allow_decl: bool) -> Result<Pipe, String> {
        let err = |m: &str| format!("{}:{}: {m}", pos.0, pos.1);
        let mut vars = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        let mut rest_offs = offs;
        let decl_end = toks.iter().position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(d) = decl_end {
            if !allow_decl {
                return Err(err("variable declaration not allowed here"));
            }
            for (i, t) in toks[..d].iter().enumerate() {
                match (i % 2, t) {
                    (0, Tok::Var(v)) => vars.push(v.clone()),
                    (1, Tok::Comma) => {}
                    _ => return Err(err("bad variable declaration")),
                }
            }
            if vars.is_empty() || vars.len() > 2 {
                return Err(err("too many declarations"));
            }
            assign = matches!(toks[d], Tok::Assign);
            rest = &toks[d + 1..];
            rest_offs = &offs[d + 1..];
        }
        let text = render(toks);
        let mut cmds = Vec::new();
        for (a, b) in split_pipes(rest) {
            if a == b {
                return Err(err("missing command in pipeline"));
            }
            cmds.push(self.cmd(&rest[a..b], &rest_offs[a..b], &err)?);
        }
        if cmds.is_empty() {
            return Err(err("missing value for command"));
        }
        if assign {
            for v in &vars {
                if !self.known(v) {
                    return Err(err(&format!("undefined variable: {v}")));
                }
            }
        } else if let Some(scope) = self.vars.last_mut() {
            scope.extend(vars.iter().cloned());
        }
        Ok(Pipe { vars, assign, cmds, text })
    }

    fn known(&self, v: &str) -> bool {
        self.vars.iter().any(|s| s.iter().any(|x| x == v))
    }

    fn cmd(&mut self, toks: &[Tok], offs: &[usize], err: &dyn Fn(&str) -> String) -> Result<Cmd, String> {
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let arg = match &toks[i] {
                Tok::Dot => Arg::Dot,
                Tok::Field(f) => {
                    let mut fields = vec![f.clone()];
                    while let Some(Tok::Field(f)) = toks.get(i + 1) {
                        fields.push(f.clone());
                        i += 1;
                    }
                    Arg::Field(fields)
                }
                Tok::Var(v) => {
                    if !self.known(v) {
                        return Err(err(&format!("undefined variable \"{v}\"")));
                    }
                    Arg::Var(v.clone(), self.fields_after(toks, &mut i))
                }
                Tok::Ident(name) => {
                    if !funcs::exists(name) {
                        return Err(err(&format!("function \"{name}\" not defined")));
                    }
                    if i != 0 {
                        // A function in argument position is called without arguments.
                        let sub = Pipe {
                            vars: vec![],
                            assign: false,
                            cmds: vec![Cmd {
                                args: vec![Arg::Func(name.clone())],
                                offset: offs[i],
                                text: name.clone(),
                            }],
                            text: name.clone(),
                        };
                        Arg::Sub(Box::new(sub), vec![])
                    } else {
                        Arg::Func(name.clone())
                    }
                }
                Tok::Str(s) => Arg::Lit(Value::Str(s.clone())),
                Tok::Num(n) => Arg::Lit(number(n).ok_or_else(|| err(&format!("bad number syntax: {n:?}")))?),
                Tok::Bool(b) => Arg::Lit(Value::Bool(*b)),
                Tok::Nil => Arg::Lit(Value::Nil),
                Tok::LParen => {
                    let close = matching_paren(toks, i).ok_or_else(|| err("unclosed left paren"))?;
                    let inner = self.pipe(&toks[i + 1..close], &offs[i + 1..close], (0, 0), false)?;
                    i = close;
                    Arg::Sub(Box::new(inner), self.fields_after(toks, &mut i))
                }
                other => return Err(err(&format!("unexpected {other:?} in operand"))),
            };
            args.push(arg);
            i += 1;
        }
        Ok(Cmd { args, offset: offs.first().copied().unwrap_or(0), text: render(toks) })
    }

    fn fields_after(&self, toks: &[Tok], i: &mut usize) -> Vec<String> {
        let mut fields = Vec::new();
        while let Some(Tok::Field(f)) = toks.get(*i + 1) {
            fields.push(f.clone());
            *i += 1;
        }
        fields
    }
}

fn matching_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Index ranges of the commands of a pipeline (split at top-level `|`).
fn split_pipes(toks: &[Tok]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => depth -= 1,
            Tok::Pipe if depth == 0 => {
                out.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, toks.len()));
    out
}

/// A Go number constant: integers stay integers, the rest are floats.
fn number(n: &str) -> Option<Value> {
    let clean = n.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Value::Int(if neg { -i } else { i }));
    }
    let f: f64 = lower.parse().ok()?;
    Some(Value::Float(if neg { -f } else { f }))
}

fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        let piece = match t {
            Tok::Dot => ".".into(),
            Tok::Field(f) => format!(".{f}"),
            Tok::Var(v) | Tok::Ident(v) | Tok::Num(v) => v.clone(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Bool(b) => b.to_string(),
            Tok::Nil => "nil".into(),
            Tok::Pipe => "|".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Declare => ":=".into(),
            Tok::Assign => "=".into(),
            Tok::Comma => ",".into(),
        };
        let glued = matches!(t, Tok::Field(_) | Tok::RParen) || out.ends_with('(');
        if !out.is_empty() && !glued {
            out.push(' ');
        }
        out.push_str(&piece);
    }
    out
}
