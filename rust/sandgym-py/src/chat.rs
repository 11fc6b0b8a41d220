//! `sandgym_core::chat` renderers for the Python package, which writes no chat format itself.

use pyo3::prelude::*;
use sandgym_core::{Action, Error, Message, Role, chat};
use serde_json::Value;

use crate::convert::from_py;
use crate::error::to_pyerr;

/// An env's messages (dicts with `role` and `content`) as one user turn for chat templates without a
/// tool role: tool results as `<tool_response>` blocks, other messages as their text, one per line.
#[pyfunction]
pub fn render_user_turn(messages: &Bound<'_, PyAny>) -> PyResult<String> {
    let Value::Array(items) = from_py(messages)? else {
        return Err(invalid("`messages` must be a list of message dicts".into()));
    };
    let messages = items
        .iter()
        .map(message_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(chat::hermes_user_turn(&messages))
}

/// The role and content of a message dict (content `None` or absent reads as empty, as in the env's
/// own messages); other keys are not needed to render a turn.
fn message_of(item: &Value) -> PyResult<Message> {
    let role: Role = serde_json::from_value(item.get("role").cloned().unwrap_or(Value::Null))
        .map_err(|e| invalid(format!("message {item}: bad `role` ({e})")))?;
    let content = match item.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "message content must be text, got {other}"
            )));
        }
    };
    Ok(Message {
        role,
        content,
        tool_calls: Vec::new(),
        tool_call_id: None,
        name: None,
    })
}

/// One call of tool `name` with `arguments` (a JSON-serializable dict), as the text a model writes:
/// `<tool_call>{"name": …, "arguments": {…}}</tool_call>`, which the env's parser reads back.
#[pyfunction]
pub fn render_tool_call(name: &str, arguments: &Bound<'_, PyAny>) -> PyResult<String> {
    let arguments = from_py(arguments)?;
    if !arguments.is_object() {
        return Err(invalid(format!(
            "tool-call arguments must be a dict, got {arguments}"
        )));
    }
    Ok(chat::render_action(&Action::tool(name, &arguments)))
}

fn invalid(message: String) -> PyErr {
    to_pyerr(Error::InvalidArgument(message))
}

/// Adds this file's functions to `_core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(render_user_turn, m)?)?;
    m.add_function(wrap_pyfunction!(render_tool_call, m)?)
}
