//! Values a template works with, printed as Go prints them.

use std::collections::BTreeMap;

use super::gofmt;

/// A template value; maps keep keys sorted, as Go's `range` and printing do.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's nil / a missing map key (prints `<no value>`).
    Nil,
    /// A bool.
    Bool(bool),
    /// An integer (Go `int`).
    Int(i64),
    /// A float (Go `float64`).
    Float(f64),
    /// A string.
    Str(String),
    /// A map with string keys.
    Map(BTreeMap<String, Value>),
    /// A slice.
    List(Vec<Value>),
    /// One query result: labels and value (`.Labels`, `.Value`).
    Sample(BTreeMap<String, String>, f64),
}

impl Value {
    /// A map of strings, as `$labels` is.
    pub fn string_map(m: &BTreeMap<String, String>) -> Value {
        Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::Str(v.clone()))).collect())
    }

    /// Go's truth: false, 0, nil and empty strings, maps and slices are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Sample(..) => true,
        }
    }

    /// The Go type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_) => "map[string]interface {}",
            Value::List(_) => "[]interface {}",
            Value::Sample(..) => "*template.sample",
        }
    }

    /// A field or map key of this value (`.Name`).
    pub fn field(&self, name: &str) -> Result<Value, String> {
        match self {
            Value::Map(m) => Ok(m.get(name).cloned().unwrap_or_else(|| self.missing_key())),
            Value::Sample(labels, v) => match name {
                "Labels" => Ok(Value::string_map(labels)),
                "Value" => Ok(Value::Float(*v)),
                _ => Err(format!("can't evaluate field {name} in type *template.sample")),
            },
            Value::Nil => Ok(Value::Nil),
            other => Err(format!("can't evaluate field {name} in type {}", other.type_name())),
        }
    }

    /// What a missing key of this map yields. Prometheus executes templates with
    /// `missingkey=zero`: the zero value of the element type, so `""` for label maps
    /// (`map[string]string`) and nil (printed `<no value>`) for other maps.
    pub fn missing_key(&self) -> Value {
        match self {
            Value::Map(m) if m.values().all(|v| matches!(v, Value::Str(_))) => Value::Str(String::new()),
            _ => Value::Nil,
        }
    }

    /// Prints the value as Go's `fmt.Sprint` does.
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Nil => "<no value>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => gofmt::format_g(*f, None),
            Value::Str(s) => s.clone(),
            Value::Map(m) => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", v.nested())).collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(Value::nested).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Sample(labels, v) => {
                let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{map[{}] {}}}", parts.join(" "), gofmt::format_g(*v, None))
            }
        }
    }

    /// Printing inside a container, where Go shows nil as `<nil>`.
    fn nested(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            other => other.to_go_string(),
        }
    }

    /// The value as a float, as Prometheus's `convertToFloat` accepts it.
    pub fn to_float(&self) -> Result<f64, String> {
        match self {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Str(s) => {
                parse_float(s).ok_or_else(|| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
            }
            other => Err(format!("can't convert {} to float", other.type_name())),
        }
    }
}

/// Parses a float as Go's `strconv.ParseFloat` does (with `Inf`/`NaN` spellings).
pub fn parse_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}
