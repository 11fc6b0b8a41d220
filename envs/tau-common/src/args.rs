//! Tool-argument checking shared by the tau envs: every parameter of a tau-bench tool is required, no
//! other key is accepted, and values must have the schema's JSON type (enums and lists of objects
//! included). Messages are written for the model and carry no `Error: ` prefix (the caller adds it).
//!
//! The envs differ in two details of their error texts, and each keeps its own so that an env's
//! observations do not change under its version: tau-retail and the conversation tools check the
//! whole key set up front and echo a bad value whole ([`Args::from_value`]); tau-airline reports a
//! missing parameter only when it reads it, so errors come in argument order, and shortens long
//! echoes ([`Args::checked_on_read`] with [`Args::with_echo_limit`]).

use std::borrow::Cow;

use sandgym_sdk::{ToolCall, Value, parse_arguments};
use serde_json::Map;

use crate::num::Num;

/// When a parameter absent from the call is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingCheck {
    /// By the constructor, before any value is read.
    UpFront,
    /// By the first read of that parameter.
    OnRead,
}

/// The checked arguments of one call.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    tool: Cow<'a, str>,
    map: Cow<'a, Map<String, Value>>,
    missing: MissingCheck,
    echo_limit: Option<usize>,
}

impl<'a> Args<'a> {
    /// Decodes `call.arguments` and checks that the keys are exactly `params`.
    pub fn parse(call: &'a ToolCall, params: &[&str]) -> Result<Args<'a>, String> {
        let map = parse_arguments(call)?;
        Args::checked(Cow::Borrowed(&call.name), Cow::Owned(map), params)
    }

    /// Checks an already decoded argument value (gold actions, parsed calls) against `params`: an
    /// object (or `null`, no arguments) whose keys are exactly `params`.
    pub fn from_value(
        tool: &'a str,
        arguments: &'a Value,
        params: &[&str],
    ) -> Result<Args<'a>, String> {
        match arguments {
            Value::Object(map) => Args::checked(Cow::Borrowed(tool), Cow::Borrowed(map), params),
            Value::Null => Args::checked(Cow::Borrowed(tool), Cow::Owned(Map::new()), params),
            other => Err(format!(
                "arguments of `{tool}` must be a JSON object, got {other}"
            )),
        }
    }

    /// Checks a decoded argument object against `params` (all required, nothing else allowed).
    pub fn from_map(
        tool: &'a str,
        map: Map<String, Value>,
        params: &[&str],
    ) -> Result<Args<'a>, String> {
        Args::checked(Cow::Borrowed(tool), Cow::Owned(map), params)
    }

    /// Refuses keys outside `params` now but reports a missing parameter only when it is read, so
    /// a call's first error in argument order is the one shown (an ill-typed earlier argument before
    /// a missing later one). tau-airline's tools read every argument before touching the DB.
    pub fn checked_on_read(
        tool: &'a str,
        map: &'a Map<String, Value>,
        params: &[&str],
    ) -> Result<Args<'a>, String> {
        reject_unexpected(tool, map, params)?;
        Ok(Args {
            tool: Cow::Borrowed(tool),
            map: Cow::Borrowed(map),
            missing: MissingCheck::OnRead,
            echo_limit: None,
        })
    }

    fn checked(
        tool: Cow<'a, str>,
        map: Cow<'a, Map<String, Value>>,
        params: &[&str],
    ) -> Result<Args<'a>, String> {
        reject_unexpected(&tool, &map, params)?;
        if let Some(missing) = params.iter().find(|p| !map.contains_key(**p)) {
            return Err(missing_argument(&tool, missing));
        }
        Ok(Args {
            tool,
            map,
            missing: MissingCheck::UpFront,
            echo_limit: None,
        })
    }

    /// Shortens echoed bad values longer than `limit` characters to their start and `...` (a model
    /// that passes a whole record where an id belongs does not get it read back in full).
    pub fn with_echo_limit(mut self, limit: usize) -> Args<'a> {
        self.echo_limit = Some(limit);
        self
    }

    /// The tool these arguments belong to.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The raw value of a parameter (`Null` if absent, which the up-front check rules out for
    /// declared ones).
    pub fn value(&self, key: &str) -> &Value {
        self.map.get(key).unwrap_or(&Value::Null)
    }

    /// The value of a parameter about to be converted; a missing one is an error when missing
    /// parameters are reported on read.
    fn read(&self, key: &str) -> Result<&Value, String> {
        match self.map.get(key) {
            Some(value) => Ok(value),
            None if self.missing == MissingCheck::OnRead => Err(missing_argument(&self.tool, key)),
            None => Ok(&Value::Null),
        }
    }

    fn type_error(&self, key: &str, expected: &str, value: &Value) -> String {
        format!(
            "argument `{key}` of `{}` must be {expected}, got {}",
            self.tool,
            echo(value, self.echo_limit)
        )
    }

    /// A string parameter (JSON strings only).
    pub fn str(&self, key: &str) -> Result<String, String> {
        match self.read(key)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.type_error(key, "a string", other)),
        }
    }

    /// A string parameter that must be one of `allowed` (a schema enum).
    pub fn choice(&self, key: &str, allowed: &[&str]) -> Result<String, String> {
        let value = self.str(key)?;
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(format!(
                "argument `{key}` of `{}` must be one of {}, got \"{value}\"",
                self.tool,
                allowed.join(", ")
            ))
        }
    }

    /// A list-of-strings parameter.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, String> {
        let value = self.read(key)?;
        match value {
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.type_error(key, "a list of strings", value)),
            other => Err(self.type_error(key, "a list of strings", other)),
        }
    }

    /// An integer parameter (a JSON integer; `2.0` is refused).
    pub fn int(&self, key: &str) -> Result<i64, String> {
        let value = self.read(key)?;
        value
            .as_i64()
            .ok_or_else(|| self.type_error(key, "an integer", value))
    }

    /// A number parameter with Python's int/float distinction.
    pub fn num(&self, key: &str) -> Result<Num, String> {
        let value = self.read(key)?;
        number(value).ok_or_else(|| self.type_error(key, "a number", value))
    }

    /// A list parameter of any element type.
    pub fn array(&self, key: &str) -> Result<&Vec<Value>, String> {
        match self.read(key)? {
            Value::Array(items) => Ok(items),
            other => Err(self.type_error(key, "a list", other)),
        }
    }

    /// A list-of-objects parameter whose items have exactly the keys `fields`. Every item's shape is
    /// checked before any field is read, so the first malformed item is reported whatever its
    /// fields hold; read the fields through the returned [`ArgObject`]s.
    pub fn objects<'s>(
        &'s self,
        key: &'s str,
        fields: &[&str],
    ) -> Result<Vec<ArgObject<'s>>, String> {
        let items = match self.read(key)? {
            Value::Array(items) => items,
            other => return Err(self.type_error(key, "an array", other)),
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let Value::Object(map) = item else {
                    return Err(format!(
                        "item {index} of `{key}` must be an object with {}, got {}",
                        fields.join(", "),
                        echo(item, self.echo_limit)
                    ));
                };
                if let Some(extra) = map.keys().find(|k| !fields.contains(&k.as_str())) {
                    return Err(format!(
                        "item {index} of `{key}` has unexpected field `{extra}` (expected {})",
                        fields.join(", ")
                    ));
                }
                if let Some(missing) = fields.iter().find(|f| !map.contains_key(**f)) {
                    return Err(format!(
                        "item {index} of `{key}` is missing field `{missing}`"
                    ));
                }
                Ok(ArgObject {
                    list: key,
                    index,
                    map,
                    echo_limit: self.echo_limit,
                })
            })
            .collect()
    }
}

/// One object of a list-of-objects parameter, its keys already checked by [`Args::objects`].
#[derive(Debug, Clone, Copy)]
pub struct ArgObject<'a> {
    list: &'a str,
    index: usize,
    map: &'a Map<String, Value>,
    echo_limit: Option<usize>,
}

impl ArgObject<'_> {
    fn type_error(&self, field: &str, expected: &str, value: &Value) -> String {
        format!(
            "field `{field}` of item {} of `{}` must be {expected}, got {}",
            self.index,
            self.list,
            echo(value, self.echo_limit)
        )
    }

    fn field(&self, field: &str) -> &Value {
        self.map.get(field).unwrap_or(&Value::Null)
    }

    /// A string field.
    pub fn str(&self, field: &str) -> Result<String, String> {
        match self.field(field) {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.type_error(field, "a string", other)),
        }
    }

    /// A number field with Python's int/float distinction.
    pub fn num(&self, field: &str) -> Result<Num, String> {
        let value = self.field(field);
        number(value).ok_or_else(|| self.type_error(field, "a number", value))
    }
}

fn reject_unexpected(tool: &str, map: &Map<String, Value>, params: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !params.contains(&k.as_str())) {
        Some(extra) => Err(format!("unexpected argument `{extra}` for `{tool}`")),
        None => Ok(()),
    }
}

fn missing_argument(tool: &str, key: &str) -> String {
    format!("missing argument `{key}` for `{tool}`")
}

/// A JSON number as Python would load it: an integer that fits `i64` stays an int, anything else is
/// a float.
fn number(value: &Value) -> Option<Num> {
    let Value::Number(n) = value else {
        return None;
    };
    Some(match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    })
}

/// A bad value as the error shows it: its JSON text, cut to `limit` characters (the last three
/// being `...`) when a limit is set.
fn echo(value: &Value, limit: Option<usize>) -> String {
    let text = value.to_string();
    match limit {
        Some(limit) if text.len() > limit => {
            let mut end = limit.saturating_sub(3);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &text[..end])
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgym_sdk::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn up_front_reports_missing_before_types_and_on_read_in_argument_order() {
        let call = map(json!({"user_id": 3}));
        let params = ["user_id", "amount"];
        let err = Args::from_map("send_certificate", call.clone(), &params).unwrap_err();
        assert_eq!(err, "missing argument `amount` for `send_certificate`");
        let args = Args::checked_on_read("send_certificate", &call, &params).unwrap();
        assert_eq!(
            args.str("user_id").unwrap_err(),
            "argument `user_id` of `send_certificate` must be a string, got 3"
        );
        assert_eq!(
            args.num("amount").unwrap_err(),
            "missing argument `amount` for `send_certificate`"
        );
        let extra = map(json!({"user_id": "u", "x": 1}));
        assert_eq!(
            Args::checked_on_read("send_certificate", &extra, &params).unwrap_err(),
            "unexpected argument `x` for `send_certificate`"
        );
    }

    #[test]
    fn echo_limit_shortens_long_values_on_a_char_boundary() {
        let long = "é".repeat(40);
        let call = map(json!({"user_id": [long]}));
        let whole = Args::from_map("t", call.clone(), &["user_id"]).unwrap();
        let err = whole.str("user_id").unwrap_err();
        assert!(err.ends_with(&format!("got [\"{long}\"]")), "{err}");
        let short = whole.with_echo_limit(20);
        let err = short.str("user_id").unwrap_err();
        let echoed = err.split("got ").nth(1).unwrap();
        assert!(echoed.ends_with("...") && echoed.len() <= 20, "{echoed}");
        assert!(echoed.starts_with("[\"éé"), "{echoed}");
    }

    #[test]
    fn choice_accepts_only_listed_values() {
        let call = map(json!({"cabin": "first", "insurance": "no"}));
        let args = Args::from_map("book", call, &["cabin", "insurance"]).unwrap();
        assert_eq!(args.choice("insurance", &["yes", "no"]).unwrap(), "no");
        assert_eq!(
            args.choice("cabin", &["economy", "business"]).unwrap_err(),
            "argument `cabin` of `book` must be one of economy, business, got \"first\""
        );
    }

    #[test]
    fn objects_check_every_item_shape_before_fields() {
        let fields = ["payment_id", "amount"];
        let check = |list: Value| {
            let call = map(json!({ "payments": list }));
            let args = Args::from_map("book", call, &["payments"]).unwrap();
            args.objects("payments", &fields).and_then(|items| {
                items
                    .iter()
                    .map(|item| Ok((item.str("payment_id")?, item.num("amount")?)))
                    .collect::<Result<Vec<_>, String>>()
            })
        };
        assert_eq!(
            check(json!([{"payment_id": "gc", "amount": 10}, {"payment_id": "cc", "amount": 2.5}]))
                .unwrap(),
            [
                ("gc".to_string(), Num::Int(10)),
                ("cc".to_string(), Num::Float(2.5))
            ]
        );
        // Item 1's shape is reported although item 0 has an ill-typed field.
        assert_eq!(
            check(json!([{"payment_id": 1, "amount": 10}, 7])).unwrap_err(),
            "item 1 of `payments` must be an object with payment_id, amount, got 7"
        );
        assert_eq!(
            check(json!([{"payment_id": 1, "amount": 10}])).unwrap_err(),
            "field `payment_id` of item 0 of `payments` must be a string, got 1"
        );
        assert_eq!(
            check(json!([{"payment_id": "gc", "amount": "10"}])).unwrap_err(),
            "field `amount` of item 0 of `payments` must be a number, got \"10\""
        );
        assert_eq!(
            check(json!([{"payment_id": "gc"}])).unwrap_err(),
            "item 0 of `payments` is missing field `amount`"
        );
        assert_eq!(
            check(json!([{"payment_id": "gc", "amount": 1, "note": ""}])).unwrap_err(),
            "item 0 of `payments` has unexpected field `note` (expected payment_id, amount)"
        );
        assert_eq!(
            check(json!({"payment_id": "gc"})).unwrap_err(),
            "argument `payments` of `book` must be an array, got {\"payment_id\":\"gc\"}"
        );
    }

    #[test]
    fn numbers_keep_pythons_int_float_distinction() {
        let call = map(json!({"a": 3, "b": 3.0, "c": u64::MAX}));
        let args = Args::from_map("t", call, &["a", "b", "c"]).unwrap();
        assert_eq!(args.num("a").unwrap(), Num::Int(3));
        assert_eq!(args.num("b").unwrap(), Num::Float(3.0));
        assert_eq!(args.num("c").unwrap(), Num::Float(u64::MAX as f64));
        assert!(args.int("b").unwrap_err().contains("must be an integer"));
    }
}
