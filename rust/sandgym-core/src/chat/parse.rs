//! Model text → structured `Action`, the reading half of [`crate::chat`] (whose [`super::render`] writes
//! the same formats). Understands Hermes/Qwen `<tool_call>{...}</tool_call>` blocks, OpenAI
//! JSON tool calls (a message object, a `tool_calls` list, or a bare `{"name", "arguments"}` call), ReAct
//! (`Action:` / `Action Input:` lines, `Final Answer:`), final-answer tags (`<answer>...</answer>`) and
//! fenced python blocks. [`parse_completion`] picks one [`Format`] (or detects it) and reports which
//! parser read the text; [`parse_action`] is the auto-detecting shortcut without tool schemas.
//!
//! Parsing never fails: text that looks like an action but is broken becomes an action with
//! `format_error` set, which the env answers with a `Format error: …` observation the model can read
//! (as the papers do: the error is part of the episode, not the end of it).

use sandgym_abi::{Action, ToolCall};
use serde_json::Value;

use super::{TOOL_CALL_CLOSE as CLOSE, TOOL_CALL_OPEN as OPEN};

/// The text format a model writes its actions in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Detect the format: Hermes tags, OpenAI JSON, ReAct lines, fenced python (when the env has a python
    /// tool), answer tags (when the env has a submit/answer tool); anything else is plain text.
    #[default]
    Auto,
    /// `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Hermes, Qwen).
    Hermes,
    /// An assistant message or tool-call list in the OpenAI JSON shape.
    OpenAi,
    /// `Action: tool` + `Action Input: {...}`, or `Final Answer: ...`.
    React,
    /// `<answer>...</answer>`: a call to the env's submit/answer tool (the last tag wins).
    Answer,
    /// Fenced ```python blocks: one call of the env's python tool per block.
    Python,
    /// No parsing: the whole text is the message.
    Text,
}

impl Format {
    /// Every format, in the order `--parser` lists them.
    pub const ALL: [Format; 7] = [
        Format::Auto,
        Format::Hermes,
        Format::OpenAi,
        Format::React,
        Format::Answer,
        Format::Python,
        Format::Text,
    ];

    /// The name used on the command line, in Python and in the `policy_turns.parser` column.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Hermes => "hermes",
            Format::OpenAi => "openai",
            Format::React => "react",
            Format::Answer => "answer",
            Format::Python => "python",
            Format::Text => "text",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown parser `{name}` (available: {})", names.join(", "))
            })
    }
}

/// A completion read into an action, with the parser that read it (never [`Format::Auto`]: the detected
/// one, or [`Format::Text`] when nothing matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub action: Action,
    pub parser: Format,
}

/// Parses one model completion into an action, detecting the format ([`Format::Auto`]) without tool
/// schemas (so answer tags and python blocks stay text).
pub fn parse_action(text: &str) -> Action {
    parse_completion(text, Format::Auto, &[]).action
}

/// Parses one model completion in `format`. `tools` are the env's tool schemas (OpenAI shape): answer
/// tags and `Final Answer:` become a call of the submit/answer tool and python blocks a call of the
/// python tool when the env has one. With a fixed format, text that does not use it is a format error.
pub fn parse_completion(text: &str, format: Format, tools: &[Value]) -> Parsed {
    let parsed = |action: Action, parser: Format| Parsed { action, parser };
    match format {
        Format::Text => parsed(Action::text(text), Format::Text),
        Format::Hermes => {
            if text.contains(OPEN) || text.contains(CLOSE) {
                parsed(parse_hermes(text), Format::Hermes)
            } else {
                parsed(
                    missing(text, "no `<tool_call>` block found"),
                    Format::Hermes,
                )
            }
        }
        Format::OpenAi => parsed(
            parse_openai(text, true).unwrap_or_else(|| Action::text(text)),
            Format::OpenAi,
        ),
        Format::React => parsed(
            parse_react(text, tools).unwrap_or_else(|| {
                missing(
                    text,
                    "expected `Action: <tool>` with `Action Input: {...}`, or `Final Answer: ...`",
                )
            }),
            Format::React,
        ),
        Format::Answer => parsed(
            parse_answer_tag(text, tools)
                .unwrap_or_else(|| missing(text, "no `<answer>...</answer>` found")),
            Format::Answer,
        ),
        Format::Python => parsed(
            parse_python_blocks(text, tools)
                .unwrap_or_else(|| missing(text, "no ```python code block found")),
            Format::Python,
        ),
        Format::Auto => {
            if text.contains(OPEN) || text.contains(CLOSE) {
                return parsed(parse_hermes(text), Format::Hermes);
            }
            if let Some(action) = parse_openai(text, false) {
                return parsed(action, Format::OpenAi);
            }
            if let Some(action) = parse_react(text, tools) {
                return parsed(action, Format::React);
            }
            if find_python_tool(tools).is_some()
                && let Some(action) = parse_python_blocks(text, tools)
            {
                return parsed(action, Format::Python);
            }
            if find_answer_tool(tools).is_some()
                && let Some(action) = parse_answer_tag(text, tools)
            {
                return parsed(action, Format::Answer);
            }
            parsed(Action::text(text), Format::Text)
        }
    }
}

fn missing(text: &str, error: &str) -> Action {
    Action {
        content: text.to_string(),
        tool_calls: Vec::new(),
        format_error: Some(error.to_string()),
    }
}

/// OpenAI JSON tool calls; `None` for text that is not such JSON, unless `strict` (then an error).
fn parse_openai(text: &str, strict: bool) -> Option<Action> {
    let trimmed = strip_code_fence(text.trim());
    match serde_json::from_str::<Value>(trimmed) {
        Ok(value) if looks_like_calls(&value) => {
            Some(action_from_json(&value).unwrap_or_else(|error| missing(text, &error)))
        }
        Ok(_) if strict => Some(missing(
            text,
            "expected a JSON object with `tool_calls`, or a list of {\"name\", \"arguments\"} calls",
        )),
        Err(e) if strict => Some(missing(text, &format!("the reply is not valid JSON ({e})"))),
        _ => None,
    }
}

/// Names an answer-submitting tool may have, in order of preference.
const ANSWER_TOOLS: &[&str] = &[
    "submit",
    "final_answer",
    "answer",
    "submit_answer",
    "finish",
];
/// Names a python-running tool may have, in order of preference.
const PYTHON_TOOLS: &[&str] = &[
    "python",
    "run_python",
    "execute_python",
    "python_exec",
    "code_interpreter",
    "execute_code",
    "run_code",
];

/// The `function` object of a tool schema (OpenAI shape, or already the function).
fn function_of(tool: &Value) -> &Value {
    tool.get("function").unwrap_or(tool)
}

fn tool_name(tool: &Value) -> Option<&str> {
    function_of(tool).get("name").and_then(Value::as_str)
}

/// The tool's one string-valued parameter that a bare text argument fills: its only parameter, else its
/// only required one, else one named `preferred`.
fn single_parameter(tool: &Value, preferred: &str) -> Option<String> {
    let parameters = function_of(tool).get("parameters")?;
    let properties = parameters.get("properties")?.as_object()?;
    if properties.len() == 1 {
        return properties.keys().next().cloned();
    }
    if let Some(Value::Array(required)) = parameters.get("required")
        && required.len() == 1
        && let Some(name) = required[0].as_str()
    {
        return Some(name.to_string());
    }
    properties
        .contains_key(preferred)
        .then(|| preferred.to_string())
}

/// The env's tool whose name is the first of `names` present, with the parameter a bare value fills.
fn find_tool(tools: &[Value], names: &[&str], preferred: &str) -> Option<(String, String)> {
    names.iter().find_map(|wanted| {
        let tool = tools.iter().find(|t| tool_name(t) == Some(*wanted))?;
        Some((wanted.to_string(), single_parameter(tool, preferred)?))
    })
}

fn find_answer_tool(tools: &[Value]) -> Option<(String, String)> {
    find_tool(tools, ANSWER_TOOLS, "answer")
}

fn find_python_tool(tools: &[Value]) -> Option<(String, String)> {
    find_tool(tools, PYTHON_TOOLS, "code")
}

/// An action calling `(tool, parameter)` with `value`, keeping `content` as the assistant's text.
fn call_with(content: &str, tool: &(String, String), value: &str) -> Action {
    let mut arguments = serde_json::Map::new();
    arguments.insert(tool.1.clone(), Value::String(value.to_string()));
    Action {
        content: content.trim().to_string(),
        tool_calls: vec![ToolCall::new("call_0", &tool.0, &Value::Object(arguments))],
        format_error: None,
    }
}

/// A final answer (`<answer>` tag or ReAct `Final Answer:`): a call of the answer tool when the env has
/// one, otherwise the answer as the message text.
fn final_answer(text: &str, content: &str, answer: &str, tools: &[Value]) -> Action {
    let answer = answer.trim();
    if answer.is_empty() {
        return missing(text, "the final answer is empty");
    }
    match find_answer_tool(tools) {
        Some(tool) => call_with(content, &tool, answer),
        None => Action::text(answer),
    }
}

const ANSWER_OPEN: &str = "<answer>";
const ANSWER_CLOSE: &str = "</answer>";

/// `<answer>...</answer>`; `None` when there is no answer tag at all. The last complete tag wins (models
/// restate their answer); an opening tag left unclosed at the end is a format error.
fn parse_answer_tag(text: &str, tools: &[Value]) -> Option<Action> {
    let start = text.rfind(ANSWER_OPEN);
    let end = text.rfind(ANSWER_CLOSE);
    match (start, end) {
        (None, None) => None,
        (Some(s), Some(e)) if s < e => {
            let answer = &text[s + ANSWER_OPEN.len()..e];
            let content = format!("{}{}", &text[..s], &text[e + ANSWER_CLOSE.len()..]);
            Some(final_answer(text, &content, answer, tools))
        }
        (Some(_), _) => Some(missing(text, "`<answer>` is not closed by `</answer>`")),
        (None, Some(_)) => Some(missing(text, "`</answer>` without a matching `<answer>`")),
    }
}

/// Fenced python blocks (```python or ```py): one call of the python tool per block, the text around them
/// kept as content. `None` when there is no python fence.
fn parse_python_blocks(text: &str, tools: &[Value]) -> Option<Action> {
    let mut rest = text;
    let mut blocks = Vec::new();
    let mut content = String::new();
    loop {
        let Some(start) = find_python_fence(rest) else {
            content.push_str(rest);
            break;
        };
        content.push_str(&rest[..start.0]);
        let body = &rest[start.1..];
        let Some(end) = body.find("```") else {
            return Some(missing(text, "the ```python block is not closed by ```"));
        };
        blocks.push(body[..end].trim_matches('\n').to_string());
        rest = &body[end + 3..];
    }
    if blocks.is_empty() {
        return None;
    }
    let Some(tool) = find_python_tool(tools) else {
        return Some(missing(
            text,
            "this env has no python tool to run the code block",
        ));
    };
    if let Some(i) = blocks.iter().position(|b| b.trim().is_empty()) {
        return Some(missing(text, &format!("python block {i} is empty")));
    }
    let tool_calls = blocks
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let mut arguments = serde_json::Map::new();
            arguments.insert(tool.1.clone(), Value::String(code.clone()));
            ToolCall::new(format!("call_{i}"), &tool.0, &Value::Object(arguments))
        })
        .collect();
    Some(Action {
        content: content.trim().to_string(),
        tool_calls,
        format_error: None,
    })
}

/// Byte range (start of the fence, start of the code) of the first ```python / ```py fence.
fn find_python_fence(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = text[from..].find("```") {
        let at = from + i;
        let after = &text[at + 3..];
        let tag_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        let tag = &after[..tag_len];
        if tag.eq_ignore_ascii_case("python") || tag.eq_ignore_ascii_case("py") {
            let line_end = after[tag_len..]
                .find('\n')
                .map_or(after.len(), |n| tag_len + n + 1);
            return Some((at, at + 3 + line_end));
        }
        from = at + 3;
    }
    None
}

/// The value after `label` on a line that starts with it (after whitespace), and the byte offset just
/// after the label.
fn find_label(text: &str, label: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(label) {
            return Some(offset + (line.len() - trimmed.len()) + label.len());
        }
        offset += line.len();
    }
    None
}

/// ReAct: `Action: <tool>` then `Action Input: <json or text>` (up to `Observation:`), or
/// `Final Answer: ...`. `None` when the text has neither label.
fn parse_react(text: &str, tools: &[Value]) -> Option<Action> {
    let action_at = find_label(text, "Action:");
    let final_at = find_label(text, "Final Answer:");
    match (action_at, final_at) {
        (None, None) => None,
        (Some(a), Some(f)) if f < a => Some(react_final(text, f, tools)),
        (None, Some(f)) => Some(react_final(text, f, tools)),
        (Some(a), _) => Some(react_action(text, a, tools)),
    }
}

fn react_final(text: &str, at: usize, tools: &[Value]) -> Action {
    let label_start = text[..at].rfind("Final Answer:").unwrap_or(0);
    final_answer(text, &text[..label_start], &text[at..], tools)
}

fn react_action(text: &str, at: usize, tools: &[Value]) -> Action {
    let label_start = text[..at].rfind("Action:").unwrap_or(0);
    let thought = &text[..label_start];
    let after = &text[at..];
    let line_end = after.find('\n').unwrap_or(after.len());
    let name = after[..line_end]
        .trim()
        .trim_matches('`')
        .trim_end_matches("()")
        .trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return missing(
            text,
            &format!("`Action:` must name one tool, got {:?}", name),
        );
    }
    let rest = &after[line_end..];
    let input = match find_label(rest, "Action Input:") {
        Some(i) => {
            let value = &rest[i..];
            let end = find_label(value, "Observation:")
                .map(|o| value[..o].rfind("Observation:").unwrap_or(o))
                .unwrap_or(value.len());
            Some(strip_code_fence(value[..end].trim()).trim().to_string())
        }
        None => None,
    };
    let tool = tools.iter().find(|t| tool_name(t) == Some(name));
    let arguments = match input.as_deref() {
        None | Some("") => {
            let takes_arguments = tool
                .and_then(|t| function_of(t).pointer("/parameters/properties"))
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty());
            if takes_arguments {
                return missing(
                    text,
                    &format!("`Action: {name}` needs an `Action Input:` line with its arguments"),
                );
            }
            "{}".to_string()
        }
        Some(input) => match serde_json::from_str::<Value>(input) {
            Ok(Value::Object(map)) => Value::Object(map).to_string(),
            parsed => {
                // A bare value fills the tool's one parameter (`Action Input: 3 * 8`).
                let parameter = tool.and_then(|t| single_parameter(t, "input"));
                match (parameter, parsed) {
                    (Some(p), Ok(Value::String(s))) => serde_json::json!({ p: s }).to_string(),
                    (Some(p), _) => serde_json::json!({ p: input }).to_string(),
                    (None, _) => {
                        return missing(
                            text,
                            &format!(
                                "`Action Input:` of `{name}` must be a JSON object of its arguments"
                            ),
                        );
                    }
                }
            }
        },
    };
    Action {
        content: thought.trim().to_string(),
        tool_calls: vec![ToolCall {
            id: "call_0".to_string(),
            name: name.to_string(),
            arguments,
        }],
        format_error: None,
    }
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

    fn countdown_tools() -> Vec<Value> {
        let param = json!({"type": "object", "properties": {"expression": {"type": "string"}},
                           "required": ["expression"]});
        vec![
            json!({"type": "function", "function": {"name": "calc", "parameters": param}}),
            json!({"type": "function", "function": {"name": "submit", "parameters": param}}),
        ]
    }

    fn python_tools() -> Vec<Value> {
        vec![
            json!({"type": "function", "function": {"name": "python", "parameters": {
            "type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}),
        ]
    }

    fn args(action: &Action) -> Value {
        serde_json::from_str(&action.tool_calls[0].arguments).unwrap()
    }

    #[test]
    fn react_action_with_json_or_bare_input() {
        let tools = countdown_tools();
        let p = parse_completion(
            "Thought: add them\nAction: calc\nAction Input: {\"expression\": \"1+2\"}\nObservation: 3",
            Format::Auto,
            &tools,
        );
        assert_eq!(p.parser, Format::React);
        assert_eq!(p.action.content, "Thought: add them");
        assert_eq!(p.action.tool_calls[0].name, "calc");
        assert_eq!(args(&p.action), json!({"expression": "1+2"}));
        let bare = parse_completion(
            "Action: `submit`\nAction Input: 3 * 8\n",
            Format::React,
            &tools,
        );
        assert_eq!(bare.action.tool_calls[0].name, "submit");
        assert_eq!(args(&bare.action), json!({"expression": "3 * 8"}));
        let quoted = parse_completion("Action: calc\nAction Input: \"2*2\"", Format::React, &tools);
        assert_eq!(args(&quoted.action), json!({"expression": "2*2"}));
    }

    #[test]
    fn react_final_answer_calls_the_answer_tool() {
        let tools = countdown_tools();
        let p = parse_completion(
            "Thought: done.\nFinal Answer: (25-3)*4",
            Format::Auto,
            &tools,
        );
        assert_eq!(p.parser, Format::React);
        assert_eq!(p.action.tool_calls[0].name, "submit");
        assert_eq!(args(&p.action), json!({"expression": "(25-3)*4"}));
        // Without an answer tool the answer is the message.
        let text = parse_completion("Final Answer: 42", Format::React, &[]);
        assert_eq!(text.action, Action::text("42"));
    }

    #[test]
    fn react_errors_become_format_errors() {
        let tools = countdown_tools();
        for text in [
            "Action: calc\nThought: forgot the input",
            "Action: \nAction Input: {}",
            "Action: do two things\nAction Input: {}",
            "Final Answer:   ",
        ] {
            let a = parse_completion(text, Format::Auto, &tools).action;
            assert!(a.format_error.is_some(), "{text}");
            assert!(a.tool_calls.is_empty());
        }
        // A tool with several parameters cannot take a bare input.
        let two = vec![
            json!({"function": {"name": "f", "parameters": {"properties": {
            "a": {"type": "string"}, "b": {"type": "string"}}}}}),
        ];
        let a = parse_completion("Action: f\nAction Input: hello", Format::React, &two).action;
        assert!(a.format_error.unwrap().contains("JSON object"));
        // Forced ReAct on plain text is an error; auto leaves it as text.
        assert!(
            parse_completion("hello", Format::React, &tools)
                .action
                .format_error
                .is_some()
        );
        assert_eq!(
            parse_completion("hello", Format::Auto, &tools).parser,
            Format::Text
        );
    }

    #[test]
    fn answer_tags() {
        let tools = countdown_tools();
        let p = parse_completion(
            "I think <answer>1+2</answer> no wait <answer> 3*8 </answer>",
            Format::Auto,
            &tools,
        );
        assert_eq!(p.parser, Format::Answer);
        assert_eq!(args(&p.action), json!({"expression": "3*8"}));
        assert_eq!(p.action.content, "I think <answer>1+2</answer> no wait");
        for broken in ["<answer>3*8", "3*8</answer>", "<answer> </answer>"] {
            let a = parse_completion(broken, Format::Auto, &tools).action;
            assert!(a.format_error.is_some(), "{broken}");
        }
        // No answer tool: auto keeps the text, the answer format gives the bare answer.
        assert_eq!(
            parse_completion("<answer>7</answer>", Format::Auto, &[]).parser,
            Format::Text
        );
        assert_eq!(
            parse_completion("<answer>7</answer>", Format::Answer, &[]).action,
            Action::text("7")
        );
    }

    #[test]
    fn python_blocks() {
        let tools = python_tools();
        let p = parse_completion(
            "Let me compute.\n```python\nprint(1+2)\n```\nand\n```py\nx = 3\n```",
            Format::Auto,
            &tools,
        );
        assert_eq!(p.parser, Format::Python);
        assert_eq!(p.action.tool_calls.len(), 2);
        assert_eq!(args(&p.action), json!({"code": "print(1+2)"}));
        assert_eq!(p.action.tool_calls[1].id, "call_1");
        assert_eq!(p.action.content, "Let me compute.\n\nand");
        let open = parse_completion("```python\nprint(1)", Format::Auto, &tools).action;
        assert!(open.format_error.unwrap().contains("not closed"));
        // Envs without a python tool: auto leaves the text alone, the python format says why.
        assert_eq!(
            parse_completion("```python\n1\n```", Format::Auto, &[]).parser,
            Format::Text
        );
        let none = parse_completion("```python\n1\n```", Format::Python, &[]).action;
        assert!(none.format_error.unwrap().contains("no python tool"));
        // Other fences are not python.
        assert_eq!(
            parse_completion("```bash\nls\n```", Format::Auto, &tools).parser,
            Format::Text
        );
    }

    #[test]
    fn forced_formats_and_names() {
        let tools = countdown_tools();
        assert!(
            parse_completion("plain", Format::Hermes, &tools)
                .action
                .format_error
                .is_some()
        );
        assert!(
            parse_completion("plain", Format::OpenAi, &tools)
                .action
                .format_error
                .is_some()
        );
        assert!(
            parse_completion("{\"a\": 1}", Format::OpenAi, &tools)
                .action
                .format_error
                .is_some()
        );
        let text = parse_completion("<tool_call>x</tool_call>", Format::Text, &tools);
        assert_eq!(text.action, Action::text("<tool_call>x</tool_call>"));
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>().unwrap(), format);
        }
        assert!("yaml".parse::<Format>().unwrap_err().contains("available"));
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
            "Action:",
            "Action Input:",
            "Final Answer:",
            "Observation:",
            "<answer>",
            "</answer>",
            "```python\n",
            "```py",
            "calc",
            "submit",
            "\u{e9}",
        ];
        let tool_sets = [Vec::new(), countdown_tools(), python_tools()];
        let mut rng = crate::rng::SplitMix64(7);
        for _ in 0..40_000 {
            let text: String = (0..rng.below(12))
                .map(|_| pieces[rng.below(pieces.len())])
                .collect();
            let format = Format::ALL[rng.below(Format::ALL.len())];
            let parsed = parse_completion(&text, format, &tool_sets[rng.below(3)]);
            assert_ne!(parsed.parser, Format::Auto);
            let action = parsed.action;
            if action.format_error.is_some() {
                assert!(action.tool_calls.is_empty(), "{text}");
            }
            for call in &action.tool_calls {
                assert!(!call.name.is_empty(), "{text}");
            }
        }
    }
}
