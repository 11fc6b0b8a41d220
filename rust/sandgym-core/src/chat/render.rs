//! `Action` / `Message` / states → text or chat JSON, the writing half of [`crate::chat`] (whose
//! [`super::parse`] reads the same formats back). Three families, each written byte for byte as the
//! files and requests built on it have always been:
//!
//! - **Hermes** (`<tool_call>` JSON): [`render_action`] writes one call per line, inline, the form of
//!   early-experience states and datasets; [`hermes_text_messages`] writes a whole conversation for chat
//!   templates without tools, the way Qwen's template does (calls on their own lines, tool results as
//!   `<tool_response>` blocks in user turns, tools described by [`hermes_tool_prompt`]);
//!   [`hermes_user_turn`] folds one env answer into such a user turn (the SkyRL adapter's `"user"` mode).
//!   [`fold_system_prompt`] adapts any of these to templates without a system role (Gemma's).
//! - **OpenAI JSON**: [`openai_messages`] is the chat-completions wire shape (`arguments` a JSON string),
//!   [`hf_message`] the Hugging Face chat-template shape of exported datasets (`arguments` an object).
//! - **Transcript**: [`render_state`], [`render_observation`] and [`system_prompt`] write a state `s_i`
//!   as one text (`Action: …` / `Observation:` blocks), the user turn of early-experience rows.

use sandgym_abi::{Action, Message, Role};
use serde_json::{Map, Value, json};

use super::{TOOL_CALL_CLOSE, TOOL_CALL_OPEN, TOOL_RESPONSE_CLOSE, TOOL_RESPONSE_OPEN};

/// Renders an action in the env's action format as the host's parser reads it back: the text, then one
/// `<tool_call>{"name": …, "arguments": {…}}</tool_call>` line per call (arguments kept verbatim when
/// they are not valid JSON). Call ids are not written; the parser numbers calls `call_0, call_1, …`.
pub fn render_action(action: &Action) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !action.content.trim().is_empty() {
        parts.push(action.content.trim().to_string());
    }
    for call in &action.tool_calls {
        let arguments = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(arguments) => arguments.to_string(),
            Err(_) => call.arguments.clone(),
        };
        let body = format!(
            "{{\"name\": {}, \"arguments\": {arguments}}}",
            Value::String(call.name.clone())
        );
        parts.push(format!("{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"));
    }
    parts.join("\n")
}

/// Renders an assistant message (as stored) in the action format of [`render_action`].
pub fn render_message_action(message: &Message) -> String {
    render_action(&Action {
        content: message.content.clone(),
        tool_calls: message.tool_calls.clone(),
        format_error: None,
    })
}

/// A tool result as Qwen's chat template writes it: `<tool_response>\n…\n</tool_response>`.
pub fn tool_response(content: &str) -> String {
    format!("{TOOL_RESPONSE_OPEN}\n{content}\n{TOOL_RESPONSE_CLOSE}")
}

/// The text of an assistant message as Qwen's chat template writes it: the content, then each call as
/// `<tool_call>\n{"name":…,"arguments":{…}}\n</tool_call>` on its own lines (arguments that are not valid
/// JSON become a JSON string).
pub fn hermes_assistant_text(message: &Message) -> String {
    let mut content = message.content.clone();
    for call in &message.tool_calls {
        let arguments: Value =
            serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!(call.arguments));
        if !content.is_empty() {
            content.push('\n');
        }
        content.push_str(&format!(
            "{TOOL_CALL_OPEN}\n{}\n{TOOL_CALL_CLOSE}",
            json!({"name": call.name, "arguments": arguments})
        ));
    }
    content
}

/// One env answer as the text of a single user turn, for chat templates without a tool role: each tool
/// result as a [`tool_response`] block, any other message as its content, one per line.
pub fn hermes_user_turn(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| match m.role {
            Role::Tool => tool_response(&m.content),
            _ => m.content.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Hermes/Qwen tool instructions appended to the system prompt when tools go in the prompt.
pub fn hermes_tool_prompt(tools: &[Value]) -> String {
    let mut text = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for tool in tools {
        text.push('\n');
        text.push_str(&tool.to_string());
    }
    text.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and arguments \
         within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \
         \"arguments\": <args-json-object>}\n</tool_call>",
    );
    text
}

/// The conversation as plain chat (system, user, assistant only): tools described in the system prompt,
/// earlier calls as `<tool_call>` text, tool results as user messages of `<tool_response>` blocks
/// (consecutive results merged), as Qwen's chat template renders them.
pub fn hermes_text_messages(messages: &[Message], tools: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(messages.len() + 1);
    let tool_prompt = hermes_tool_prompt(tools);
    let mut has_system = false;
    let mut last_was_tool = false;
    for m in messages {
        match m.role {
            Role::System if !has_system => {
                has_system = true;
                out.push(
                    json!({"role": "system", "content": format!("{}\n\n{tool_prompt}", m.content)}),
                );
                last_was_tool = false;
            }
            Role::Tool => {
                let block = tool_response(&m.content);
                match out.last_mut() {
                    Some(Value::Object(prev)) if last_was_tool => {
                        let joined = format!(
                            "{}\n{block}",
                            prev.get("content").and_then(Value::as_str).unwrap_or("")
                        );
                        prev.insert("content".into(), json!(joined));
                    }
                    _ => out.push(json!({"role": "user", "content": block})),
                }
                last_was_tool = true;
            }
            Role::Assistant => {
                out.push(json!({"role": "assistant", "content": hermes_assistant_text(m)}));
                last_was_tool = false;
            }
            role => {
                out.push(json!({"role": role.as_str(), "content": m.content}));
                last_was_tool = false;
            }
        }
    }
    if !has_system {
        out.insert(0, json!({"role": "system", "content": tool_prompt}));
    }
    out
}

/// Messages in the OpenAI chat-completions wire shape (tool calls nested under `function` with
/// `arguments` as the JSON text, `content` null for an assistant message that only calls tools).
pub fn openai_messages(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let mut out = Map::new();
            out.insert("role".into(), json!(m.role.as_str()));
            if m.role == Role::Assistant && !m.tool_calls.is_empty() {
                out.insert(
                    "content".into(),
                    if m.content.is_empty() {
                        Value::Null
                    } else {
                        json!(m.content)
                    },
                );
                out.insert(
                    "tool_calls".into(),
                    m.tool_calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                   "function": {"name": c.name, "arguments": c.arguments}})
                        })
                        .collect(),
                );
            } else {
                out.insert("content".into(), json!(m.content));
            }
            if let Some(id) = &m.tool_call_id {
                out.insert("tool_call_id".into(), json!(id));
            }
            if let Some(name) = &m.name {
                out.insert("name".into(), json!(name));
            }
            Value::Object(out)
        })
        .collect()
}

/// Leading system messages moved to the head of the first user message (or kept as a user message when
/// there is none), as Gemma's chat template does.
pub fn fold_system_prompt(messages: Vec<Value>) -> Vec<Value> {
    let is_system = |m: &Value| m.get("role").and_then(Value::as_str) == Some("system");
    let split = messages.iter().take_while(|m| is_system(m)).count();
    if split == 0 {
        return messages;
    }
    let system: Vec<&str> = messages[..split]
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .collect();
    let system = system.join("\n\n");
    let mut rest: Vec<Value> = messages[split..].to_vec();
    match rest.first_mut() {
        Some(Value::Object(first)) if first.get("role").and_then(Value::as_str) == Some("user") => {
            let content = first.get("content").and_then(Value::as_str).unwrap_or("");
            let joined = format!("{system}\n\n{content}");
            first.insert("content".into(), json!(joined));
        }
        _ => rest.insert(0, json!({"role": "user", "content": system})),
    }
    rest
}

/// One message in the Hugging Face chat shape (`arguments` parsed to JSON; kept as a JSON string value
/// when the model emitted invalid JSON).
pub fn hf_message(message: &Message) -> Value {
    let tool_calls: Option<Vec<Value>> = (!message.tool_calls.is_empty()).then(|| {
        message
            .tool_calls
            .iter()
            .map(|call| {
                let arguments = serde_json::from_str::<Value>(&call.arguments)
                    .unwrap_or_else(|_| Value::String(call.arguments.clone()));
                json!({"id": call.id, "type": "function",
                       "function": {"name": call.name, "arguments": arguments}})
            })
            .collect()
    });
    json!({
        "role": message.role.as_str(),
        "content": message.content,
        "tool_calls": tool_calls,
        "tool_call_id": message.tool_call_id,
        "name": message.name,
    })
}

/// Renders the env's answer to one action: the content of each message; with several tool results, each
/// on its own line prefixed by the tool's name.
pub fn render_observation(messages: &[Message]) -> String {
    let tools = messages.iter().filter(|m| m.role == Role::Tool).count();
    messages
        .iter()
        .map(|m| match (&m.role, &m.name) {
            (Role::Tool, Some(name)) if tools > 1 => format!("[{name}] {}", m.content),
            _ => m.content.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The agent prompt of a state: its system messages' contents.
pub fn system_prompt(state: &[Message]) -> String {
    state
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Renders a state `s_i` as one text: the opening user message(s), then for each step so far
/// `Action: <action>` and `Observation:\n<observation>`. System messages are left out (they are the
/// system prompt).
pub fn render_state(state: &[Message]) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let mut i = 0;
    while i < state.len() {
        let message = &state[i];
        match message.role {
            Role::System => i += 1,
            Role::Assistant => {
                blocks.push(format!("Action: {}", render_message_action(message)));
                let end = state[i + 1..]
                    .iter()
                    .position(|m| m.role == Role::Assistant)
                    .map_or(state.len(), |p| i + 1 + p);
                if end > i + 1 {
                    blocks.push(format!(
                        "Observation:\n{}",
                        render_observation(&state[i + 1..end])
                    ));
                }
                i = end;
            }
            _ => {
                blocks.push(message.content.clone());
                i += 1;
            }
        }
    }
    blocks.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgym_abi::ToolCall;

    #[test]
    fn state_rendering_lists_actions_and_observations() {
        let call = ToolCall::new("call_0", "calc", &json!({"expression": "1+2"}));
        let state = vec![
            Message::system("sys"),
            Message::user("Reach 24."),
            Message::assistant(&Action {
                content: String::new(),
                tool_calls: vec![call.clone()],
                format_error: None,
            }),
            Message::tool(&call, "3"),
        ];
        assert_eq!(
            render_state(&state),
            "Reach 24.\n\nAction: <tool_call>{\"name\": \"calc\", \"arguments\": {\"expression\":\"1+2\"}}</tool_call>\n\nObservation:\n3"
        );
        assert_eq!(system_prompt(&state), "sys");
    }

    #[test]
    fn user_turn_wraps_tool_results_only() {
        let a = ToolCall::new("call_0", "calc", &json!({"expression": "1+2"}));
        let b = ToolCall::new("call_1", "calc", &json!({"expression": "2*3"}));
        let turn = hermes_user_turn(&[
            Message::tool(&a, "3"),
            Message::tool(&b, "6"),
            Message::user("2 turns left"),
        ]);
        assert_eq!(
            turn,
            "<tool_response>\n3\n</tool_response>\n<tool_response>\n6\n</tool_response>\n2 turns left"
        );
        assert_eq!(hermes_user_turn(&[]), "");
    }
}
