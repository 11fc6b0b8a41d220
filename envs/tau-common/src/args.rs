//! Tool-argument checking shared by the tau envs: every parameter of a tau-bench tool is required, no
//! other key is accepted, and values must have the schema's JSON type. Messages are written for the
//! model and carry no `Error: ` prefix (the caller adds it).

use sandgym_sdk::{ToolCall, Value, parse_arguments};
use serde_json::Map;

use crate::num::Num;

/// The checked arguments of one call.
#[derive(Debug, Clone)]
pub struct Args {
    tool: String,
    map: Map<String, Value>,
}

impl Args {
    /// Decodes `call.arguments` and checks that the keys are exactly `params`.
    pub fn parse(call: &ToolCall, params: &[&str]) -> Result<Args, String> {
        let map = parse_arguments(call)?;
        Args::from_map(&call.name, map, params)
    }

    /// Checks an already decoded argument value (gold actions) against `params`.
    pub fn from_value(tool: &str, arguments: &Value, params: &[&str]) -> Result<Args, String> {
        match arguments {
            Value::Object(map) => Args::from_map(tool, map.clone(), params),
            Value::Null => Args::from_map(tool, Map::new(), params),
            other => Err(format!(
                "arguments of `{tool}` must be a JSON object, got {other}"
            )),
        }
    }

    /// Checks a decoded argument object against `params` (all required, nothing else allowed).
    pub fn from_map(tool: &str, map: Map<String, Value>, params: &[&str]) -> Result<Args, String> {
        if let Some(extra) = map.keys().find(|k| !params.contains(&k.as_str())) {
            return Err(format!("unexpected argument `{extra}` for `{tool}`"));
        }
        if let Some(missing) = params.iter().find(|p| !map.contains_key(**p)) {
            return Err(format!("missing argument `{missing}` for `{tool}`"));
        }
        Ok(Args {
            tool: tool.to_string(),
            map,
        })
    }

    /// The tool these arguments belong to.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The raw value of a parameter (`Null` if absent, which `parse` rules out for declared ones).
    pub fn value(&self, key: &str) -> &Value {
        self.map.get(key).unwrap_or(&Value::Null)
    }

    fn type_error(&self, key: &str, expected: &str) -> String {
        format!(
            "argument `{key}` of `{}` must be {expected}, got {}",
            self.tool,
            self.value(key)
        )
    }

    /// A string parameter (JSON strings only).
    pub fn str(&self, key: &str) -> Result<String, String> {
        match self.value(key) {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.type_error(key, "a string")),
        }
    }

    /// A list-of-strings parameter.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.value(key) {
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.type_error(key, "a list of strings")),
            _ => Err(self.type_error(key, "a list of strings")),
        }
    }

    /// An integer parameter (a JSON integer; `2.0` is refused).
    pub fn int(&self, key: &str) -> Result<i64, String> {
        match self.value(key) {
            Value::Number(n) => n.as_i64().ok_or_else(|| self.type_error(key, "an integer")),
            _ => Err(self.type_error(key, "an integer")),
        }
    }

    /// A number parameter with Python's int/float distinction.
    pub fn num(&self, key: &str) -> Result<Num, String> {
        match self.value(key) {
            Value::Number(n) => Ok(match n.as_i64() {
                Some(i) => Num::Int(i),
                None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
            }),
            _ => Err(self.type_error(key, "a number")),
        }
    }

    /// A list parameter of any element type (for lists of objects; check elements yourself).
    pub fn array(&self, key: &str) -> Result<&Vec<Value>, String> {
        match self.value(key) {
            Value::Array(items) => Ok(items),
            _ => Err(self.type_error(key, "a list")),
        }
    }
}
