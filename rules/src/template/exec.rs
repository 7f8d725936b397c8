//! Walks a template tree with data, variables and the query function.

use super::funcs;
use super::parse::{Arg, Cmd, Control, ControlKind, Node, Pipe, Tree};
use super::value::Value;
use super::{Querier, TemplateData};

/// Deepest `template`/`tmpl` nesting before giving up (Go stops at 100000; a template
/// calling itself is the only way to get deep).
const MAX_DEPTH: usize = 100;

/// An execution error, with the command it happened at when known.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecError {
    /// Byte offset and source text of the failing command.
    pub at: Option<(usize, String)>,
    /// What went wrong.
    pub msg: String,
}

impl From<String> for ExecError {
    fn from(msg: String) -> Self {
        ExecError { at: None, msg }
    }
}

impl From<&str> for ExecError {
    fn from(msg: &str) -> Self {
        ExecError { at: None, msg: msg.to_string() }
    }
}

type Result<T> = std::result::Result<T, ExecError>;

/// One execution of a template.
pub struct Exec<'a> {
    tree: &'a Tree,
    vars: Vec<(String, Value)>,
    data: &'a TemplateData,
    querier: &'a dyn Querier,
    depth: usize,
}

impl<'a> Exec<'a> {
    /// Starts with `$` and the Prometheus preamble variables bound.
    pub fn new(tree: &'a Tree, data: &'a TemplateData, querier: &'a dyn Querier) -> Self {
        Exec { tree, vars: Vec::new(), data, querier, depth: 0 }
    }

    /// Runs the main body.
    pub fn run(&mut self) -> Result<String> {
        let dot = self.data.to_value();
        self.bind_root(&dot);
        let mut out = String::new();
        self.walk(&self.tree.root, &dot, &mut out)?;
        Ok(out)
    }

    fn bind_root(&mut self, dot: &Value) {
        self.vars.push(("$".into(), dot.clone()));
        for (var, field) in super::PREAMBLE_VARS.iter().zip(super::PREAMBLE_FIELDS) {
            let v = dot.field(field).unwrap_or(Value::Nil);
            self.vars.push(((*var).into(), v));
        }
    }

    /// Runs the `define`d template `name` with `dot`, for `tmpl` and `{{template}}`.
    pub fn run_named(&mut self, name: &str, dot: &Value) -> std::result::Result<String, String> {
        let body = self.tree.defs.get(name).ok_or_else(|| format!("no such template {name:?}"))?;
        if self.depth >= MAX_DEPTH {
            return Err("exceeded maximum template depth".into());
        }
        let saved = std::mem::take(&mut self.vars);
        self.vars.push(("$".into(), dot.clone()));
        self.depth += 1;
        let mut out = String::new();
        let r = self.walk(body, dot, &mut out);
        self.depth -= 1;
        self.vars = saved;
        r.map(|()| out).map_err(|e| e.msg)
    }

    /// Runs a PromQL query for the `query` function.
    pub fn query(&self, q: &str) -> std::result::Result<super::QueryRows, String> {
        self.querier.query(q, self.data.eval_time_ms)
    }

    /// The external URL.
    pub fn external_url(&self) -> &str {
        &self.data.external_url
    }

    /// The path of the external URL (`pathPrefix`).
    pub fn external_url_path(&self) -> String {
        let u = &self.data.external_url;
        let after_scheme = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
        after_scheme
            .find('/')
            .map(|i| after_scheme[i..].trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// The evaluation time in Unix seconds (`now`).
    pub fn now_seconds(&self) -> f64 {
        self.data.eval_time_ms as f64 / 1000.0
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        let mark = self.vars.len();
        let r = self.walk_inner(nodes, dot, out);
        self.vars.truncate(mark);
        r
    }

    fn walk_inner(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Output(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.vars.is_empty() {
                        out.push_str(&v.to_go_string());
                    }
                }
                Node::Control(c) => self.control(c, dot, out)?,
                Node::Template(name, pipe, pos) => {
                    let arg = match pipe {
                        Some(p) => self.pipe(p, dot)?,
                        None => Value::Nil,
                    };
                    let text = self.run_named(name, &arg).map_err(|e| format!("{}:{}: {e}", pos.0, pos.1))?;
                    out.push_str(&text);
                }
            }
        }
        Ok(())
    }

    fn control(&mut self, c: &Control, dot: &Value, out: &mut String) -> Result<()> {
        let mark = self.vars.len();
        let r = self.control_inner(c, dot, out);
        self.vars.truncate(mark);
        r
    }

    fn control_inner(&mut self, c: &Control, dot: &Value, out: &mut String) -> Result<()> {
        if c.kind == ControlKind::Range {
            return self.range(c, dot, out);
        }
        let v = self.pipe(&c.pipe, dot)?;
        if !v.truthy() {
            return self.walk(&c.els, dot, out);
        }
        let inner_dot = if c.kind == ControlKind::With { v } else { dot.clone() };
        self.walk(&c.body, &inner_dot, out)
    }

    fn range(&mut self, c: &Control, dot: &Value, out: &mut String) -> Result<()> {
        // The pipeline's variables are bound per element, not to the whole value.
        let plain = Pipe { vars: vec![], ..c.pipe.clone() };
        let v = self.pipe(&plain, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
            Value::List(l) => l.into_iter().enumerate().map(|(i, v)| (Value::Int(i as i64), v)).collect(),
            Value::Nil => Vec::new(),
            Value::Int(n) if n >= 0 => (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            other => {
                let at = c.pipe.cmds.first().map(|cmd| (cmd.offset, c.pipe.text.clone()));
                return Err(ExecError {
                    at,
                    msg: format!("range can't iterate over {}", other.to_go_string()),
                });
            }
        };
        if items.is_empty() {
            return self.walk(&c.els, dot, out);
        }
        let mark = self.vars.len();
        for (k, elem) in items {
            self.vars.truncate(mark);
            match c.pipe.vars.as_slice() {
                [one] => self.vars.push((one.clone(), elem.clone())),
                [key, val] => {
                    self.vars.push((key.clone(), k));
                    self.vars.push((val.clone(), elem.clone()));
                }
                _ => {}
            }
            self.walk(&c.body, &elem, out)?;
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            // Errors point at the innermost command that failed, as Go's do.
            let v = self.cmd(cmd, dot, last.take()).map_err(|mut e| {
                e.at.get_or_insert_with(|| (cmd.offset, cmd.text.clone()));
                e
            })?;
            last = Some(v);
        }
        let v = last.unwrap_or(Value::Nil);
        for name in &p.vars {
            if p.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, fin: Option<Value>) -> Result<Value> {
        match cmd.args.first() {
            Some(Arg::Func(name)) => {
                let mut args = Vec::with_capacity(cmd.args.len());
                for a in &cmd.args[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(fin);
                funcs::call(self, name, args)
                    .map_err(|msg| ExecError { at: Some((cmd.offset, cmd.text.clone())), msg })
            }
            Some(a) => {
                if cmd.args.len() > 1 || fin.is_some() {
                    return Err("can't give argument to non-function".into());
                }
                self.arg(a, dot)
            }
            None => Err("empty command".into()),
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(fields) => fields_of(dot.clone(), fields),
            Arg::Var(name, fields) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                fields_of(v, fields)
            }
            Arg::Func(name) => Ok(funcs::call(self, name, Vec::new())?),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Sub(p, fields) => {
                let mark = self.vars.len();
                let v = self.pipe(p, dot);
                self.vars.truncate(mark);
                fields_of(v?, fields)
            }
        }
    }
}

fn fields_of(mut v: Value, fields: &[String]) -> Result<Value> {
    for f in fields {
        v = v.field(f)?;
    }
    Ok(v)
}
