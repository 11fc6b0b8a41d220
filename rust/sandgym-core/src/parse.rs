//! Model text → structured `Action`. Understands Hermes/Qwen `<tool_call>{...}</tool_call>` blocks and
//! OpenAI JSON tool calls (a message object, a `tool_calls` list, or a bare `{"name", "arguments"}` call).
//!
//! Parsing never fails: text that looks like a tool call but is broken becomes an action with
//! `format_error` set, which the env answers with a `Format error: …` observation the model can read.

use sandgym_abi::{Action, ToolCall};
use serde_json::Value;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// Parses one model completion into an action.
pub fn parse_action(text: &str) -> Action {
    if text.contains(OPEN) || text.contains(CLOSE) {
        return parse_hermes(text);
    }
    let trimmed = strip_code_fence(text.trim());
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str::<Value>(trimmed)
        && looks_like_calls(&value)
    {
        return action_from_json(&value).unwrap_or_else(|error| Action {
            content: text.to_string(),
            tool_calls: Vec::new(),
            format_error: Some(error),
        });
    }
    Action::text(text)
}

/// Builds an action from a JSON value in the OpenAI shape: an assistant message
/// (`{"content", "tool_calls": [...]}`), a list of calls, or a single call.
/// Each call may be flat (`{"name", "arguments"}`) or nested (`{"function": {"name", "arguments"}}`),
/// with `arguments` as a JSON string or an object.
pub fn action_from_json(value: &Value) -> Result<Action, String> {
    match value {
        Value::Array(calls) => Ok(Action {
            content: String::new(),
            tool_calls: calls
                .iter()
                .enumerate()
                .map(|(i, call)| tool_call_from_json(call, i))
                .collect::<Result<_, _>>()?,
            format_error: None,
        }),
        Value::Object(map) if map.contains_key("name") || map.contains_key("function") => {
            Ok(Action {
                content: String::new(),
                tool_calls: vec![tool_call_from_json(value, 0)?],
                format_error: None,
            })
        }
        Value::Object(map) => {
            let content = match map.get("content") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => return Err(format!("`content` must be a string, got {other}")),
            };
            let tool_calls = match map.get("tool_calls") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(calls)) => calls
                    .iter()
                    .enumerate()
                    .map(|(i, call)| tool_call_from_json(call, i))
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(format!("`tool_calls` must be a list, got {other}")),
            };
            let format_error = match map.get("format_error") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            Ok(Action {
                content,
                tool_calls,
                format_error,
            })
        }
        other => Err(format!(
            "expected a JSON object or list of tool calls, got {other}"
        )),
    }
}

fn looks_like_calls(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.contains_key("tool_calls")
                || (map.contains_key("name") && map.contains_key("arguments"))
                || map.contains_key("function")
        }
        Value::Array(items) => !items.is_empty() && items.iter().all(looks_like_calls),
        _ => false,
    }
}

fn tool_call_from_json(value: &Value, index: usize) -> Result<ToolCall, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("tool call {index} must be a JSON object, got {value}"))?;
    let function = match map.get("function") {
        Some(Value::Object(function)) => function,
        Some(other) => {
            return Err(format!(
                "`function` of tool call {index} must be an object, got {other}"
            ));
        }
        None => map,
    };
    let name = match function.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_string(),
        Some(other) => {
            return Err(format!(
                "tool call {index} has a non-string or empty `name`: {other}"
            ));
        }
        None => return Err(format!("tool call {index} has no `name`")),
    };
    let arguments = match function
        .get("arguments")
        .or_else(|| function.get("parameters"))
    {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(obj @ Value::Object(_)) => obj.to_string(),
        Some(other) => {
            return Err(format!(
                "`arguments` of `{name}` must be an object or a JSON string, got {other}"
            ));
        }
    };
    let id = match map.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => format!("call_{index}"),
    };
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

fn strip_code_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

fn parse_hermes(text: &str) -> Action {
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    let fail = |error: String| Action {
        content: text.to_string(),
        tool_calls: Vec::new(),
        format_error: Some(error),
    };
    loop {
        let Some(start) = rest.find(OPEN) else {
            if rest.contains(CLOSE) {
                return fail(format!("`{CLOSE}` without a matching `{OPEN}`"));
            }
            content.push_str(rest);
            break;
        };
        content.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else {
            // Models often stop right after the JSON: accept a complete object with no closing tag.
            let body = after.trim();
            if calls.is_empty() || !body.is_empty() {
                match parse_call_body(body, calls.len()) {
                    Ok(call) if !after.contains(OPEN) => {
                        calls.push(call);
                        break;
                    }
                    _ => return fail(format!("`{OPEN}` is not closed by `{CLOSE}`")),
                }
            }
            break;
        };
        match parse_call_body(&after[..end], calls.len()) {
            Ok(call) => calls.push(call),
            Err(error) => return fail(error),
        }
        rest = &after[end + CLOSE.len()..];
    }
    Action {
        content: content.trim().to_string(),
        tool_calls: calls,
        format_error: None,
    }
}

fn parse_call_body(body: &str, index: usize) -> Result<ToolCall, String> {
    let body = strip_code_fence(body.trim());
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("the tool call is not valid JSON ({e})"))?;
    tool_call_from_json(&value, index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hermes_single_call_with_thoughts() {
        let a = parse_action(
            "Let me add.\n<tool_call>\n{\"name\": \"calc\", \"arguments\": {\"expression\": \"1+2\"}}\n</tool_call>",
        );
        assert_eq!(a.content, "Let me add.");
        assert_eq!(a.tool_calls.len(), 1);
        assert_eq!(a.tool_calls[0].name, "calc");
        assert_eq!(a.tool_calls[0].id, "call_0");
        let args: Value = serde_json::from_str(&a.tool_calls[0].arguments).unwrap();
        assert_eq!(args, json!({"expression": "1+2"}));
        assert!(a.format_error.is_none());
    }

    #[test]
    fn hermes_multiple_calls_get_distinct_ids() {
        let a = parse_action(
            "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call><tool_call>{\"name\":\"b\",\"arguments\":\"{}\"}</tool_call>",
        );
        let names: Vec<_> = a
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(names, [("call_0", "a"), ("call_1", "b")]);
    }

    #[test]
    fn hermes_unclosed_complete_json_is_accepted() {
        let a =
            parse_action("<tool_call>{\"name\":\"submit\",\"arguments\":{\"expression\":\"3*8\"}}");
        assert!(a.format_error.is_none());
        assert_eq!(a.tool_calls[0].name, "submit");
    }

    #[test]
    fn broken_calls_become_format_errors() {
        for text in [
            "<tool_call>{\"name\": \"calc\", \"arguments\": {</tool_call>",
            "<tool_call>not json at all</tool_call>",
            "<tool_call>{\"arguments\": {}}</tool_call>",
            "oops </tool_call>",
            "<tool_call>{\"name\": 3}</tool_call>",
            "<tool_call>{\"name\": \"x\", \"arguments\": [1]}</tool_call>",
        ] {
            let a = parse_action(text);
            assert!(a.format_error.is_some(), "{text}");
            assert!(a.tool_calls.is_empty());
            assert_eq!(a.content, text);
        }
    }

    #[test]
    fn openai_json_shapes() {
        let msg = parse_action(
            r#"{"role":"assistant","content":null,"tool_calls":[{"id":"x1","type":"function","function":{"name":"calc","arguments":"{\"expression\":\"2*3\"}"}}]}"#,
        );
        assert_eq!(msg.tool_calls[0].id, "x1");
        assert_eq!(msg.tool_calls[0].arguments, "{\"expression\":\"2*3\"}");
        let bare = parse_action(r#"{"name": "submit", "arguments": {"expression": "1"}}"#);
        assert_eq!(bare.tool_calls[0].name, "submit");
        let list = parse_action(
            r#"```json
[{"function": {"name": "a", "arguments": {}}}]
```"#,
        );
        assert_eq!(list.tool_calls[0].name, "a");
    }

    #[test]
    fn plain_text_and_unrelated_json_stay_text() {
        assert_eq!(parse_action("The answer is 4.").content, "The answer is 4.");
        let a = parse_action(r#"{"answer": 4}"#);
        assert!(a.tool_calls.is_empty() && a.format_error.is_none());
    }

    /// Random splices of tool-call fragments never panic, and every result is either well-formed calls
    /// or a format error, never both.
    #[test]
    fn random_fragments_never_panic() {
        let pieces = [
            "<tool_call>",
            "</tool_call>",
            "{",
            "}",
            "[",
            "]",
            "\"name\"",
            ":",
            "\"calc\"",
            ",",
            "\"arguments\"",
            "{\"expression\": \"1+2\"}",
            "null",
            "\"",
            "```",
            "json",
            " ",
            "\n",
            "\u{1F600}",
            "\\",
            "tool_calls",
            "function",
            "42",
        ];
        let mut rng = crate::rng::SplitMix64(7);
        for _ in 0..20_000 {
            let text: String = (0..rng.below(12))
                .map(|_| pieces[rng.below(pieces.len())])
                .collect();
            let action = parse_action(&text);
            if action.format_error.is_some() {
                assert!(action.tool_calls.is_empty(), "{text}");
            }
            for call in &action.tool_calls {
                assert!(!call.name.is_empty(), "{text}");
            }
        }
    }
}
