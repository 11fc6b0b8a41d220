//! ABI v1 wire types between the sandgym host and a guest environment.
//!
//! Both sides depend on this crate, so a change to the wire format is a compile error on both sides
//! rather than a silent drift. It knows nothing of wasmtime, Parquet or Python. The calling convention
//! (exports, memory ownership, result envelope) is documented in `docs/abi.md`; this crate owns the
//! JSON payloads that travel through it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ABI version spoken by this crate. A guest exports it from `sandgym_abi_version`; the host refuses
/// a module whose version differs.
pub const ABI_VERSION: u32 = 1;

/// Names of the guest's exports. Optional exports are marked as such in `docs/abi.md`.
pub mod exports {
    pub const MEMORY: &str = "memory";
    pub const ABI_VERSION: &str = "sandgym_abi_version";
    pub const ALLOC: &str = "sandgym_alloc";
    pub const DEALLOC: &str = "sandgym_dealloc";
    pub const INFO: &str = "sandgym_info";
    pub const CONFIGURE: &str = "sandgym_configure";
    pub const RESET: &str = "sandgym_reset";
    pub const STEP: &str = "sandgym_step";
    pub const EXPERT: &str = "sandgym_expert";
    pub const ACTIONS: &str = "sandgym_actions";
}

/// Packs a guest pointer and length into the `i64` that output-returning exports return.
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// Splits a packed `i64` into (pointer, length).
pub fn unpack(packed: i64) -> (u32, u32) {
    let bits = packed as u64;
    ((bits >> 32) as u32, bits as u32)
}

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The lowercase name used in the OpenAI chat schema.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One tool call in the OpenAI shape, flattened: `arguments` is the JSON-encoded argument object as a
/// string, exactly as a model emitted it (it may be invalid JSON; the env reports that to the model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    /// A call whose arguments are serialized from a JSON value.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: &Value) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.to_string(),
        }
    }
}

/// One chat message in the OpenAI Chat Completions shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    fn plain(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(Role::User, content)
    }

    /// The result of one tool call, answering the call with `call`'s id.
    pub fn tool(call: &ToolCall, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id.clone()),
            name: Some(call.name.clone()),
        }
    }

    /// The assistant message an action stands for.
    pub fn assistant(action: &Action) -> Self {
        Message {
            role: Role::Assistant,
            content: action.content.clone(),
            tool_calls: action.tool_calls.clone(),
            tool_call_id: None,
            name: None,
        }
    }
}

/// What an agent does in one turn: an assistant message with optional tool calls.
///
/// `format_error` is set by the host's parser when the model's text could not be turned into a
/// well-formed action; the guest SDK then answers with a `Format error: …` observation and counts the turn.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_error: Option<String>,
}

impl Action {
    /// An action that makes exactly one tool call with id `call_0`.
    pub fn tool(name: impl Into<String>, arguments: &Value) -> Self {
        Action {
            content: String::new(),
            tool_calls: vec![ToolCall::new("call_0", name, arguments)],
            format_error: None,
        }
    }

    /// An action that only says something.
    pub fn text(content: impl Into<String>) -> Self {
        Action {
            content: content.into(),
            ..Action::default()
        }
    }
}

/// Which optional parts of the ABI a guest implements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `sandgym_expert` returns the expert's next action.
    #[serde(default)]
    pub expert: bool,
    /// `sandgym_actions` lists the admissible actions of the current state.
    #[serde(default)]
    pub actions: bool,
    /// `sandgym_reset` generates a task from the seed when given no task.
    #[serde(default)]
    pub generates_tasks: bool,
}

/// Static description of an environment, returned by `sandgym_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvInfo {
    pub abi_version: u32,
    /// Environment name without version, e.g. `countdown`.
    pub name: String,
    /// Integer version; the registered id is `{name}-v{version}`.
    pub version: u32,
    pub description: String,
    pub system_prompt: String,
    /// Tool schemas in the OpenAI function-calling shape (`{"type": "function", "function": {...}}`).
    pub tools: Vec<Value>,
    pub capabilities: Capabilities,
    /// The configuration knobs with their default values.
    #[serde(default)]
    pub default_config: Value,
}

/// Input of `sandgym_reset`: a task to play, or `None` to generate one from the seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResetInput {
    pub seed: u64,
    #[serde(default)]
    pub task: Option<Value>,
}

/// The simulated user's turn: what a user policy sees when the env waits for the user (tau-bench's
/// user simulator). The user is a second player whose replies travel through `sandgym_step` like the
/// agent's actions; the guest knows whose turn it is.
///
/// `messages` is the user's own conversation, from the user's side: a system message with the
/// user's instructions first, then the agent's words as `user` messages and the user's own earlier
/// replies as `assistant` messages, so a chat model can play the user without any reshaping. The
/// reply is plain text (an `Action` with `content` only); tau-bench's `###STOP###` in it ends the
/// episode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTurn {
    pub messages: Vec<Message>,
}

/// Output of `sandgym_reset`: the opening messages (system prompt and task) and the task played.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetOutput {
    pub messages: Vec<Message>,
    /// A stable id for the task (the same task always has the same id).
    pub task_id: String,
    /// The task as JSON; feeding it back to `sandgym_reset` replays the same task.
    pub task: Value,
    #[serde(default)]
    pub info: Value,
    /// Set when the next `sandgym_step` is the simulated user's reply, not an agent action (an env
    /// in a user-simulator mode, where the user opens the conversation). Optional: absent in the
    /// JSON of guests that have no simulated user, so ABI v1 guests stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_turn: Option<UserTurn>,
}

/// Output of `sandgym_step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutput {
    /// Messages answering the action: one tool message per tool call, or a user message.
    pub messages: Vec<Message>,
    pub reward: f64,
    /// The task ended (solved, failed, or given up).
    pub terminated: bool,
    /// The env's own turn limit was hit; the task did not end on its own.
    pub truncated: bool,
    /// Whether the task counts as solved; meaningful once `terminated`.
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub info: Value,
    /// Set when the env now waits for the simulated user (see [`UserTurn`]): the next
    /// `sandgym_step` carries the user's reply. Never set together with `terminated` / `truncated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_turn: Option<UserTurn>,
}

/// The result envelope every output-returning export writes: `{"ok": …}` or `{"err": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Envelope<T> {
    Ok(T),
    Err(String),
}

impl<T> From<Result<T, String>> for Envelope<T> {
    fn from(result: Result<T, String>) -> Self {
        match result {
            Ok(value) => Envelope::Ok(value),
            Err(message) => Envelope::Err(message),
        }
    }
}

impl<T> From<Envelope<T>> for Result<T, String> {
    fn from(envelope: Envelope<T>) -> Self {
        match envelope {
            Envelope::Ok(value) => Ok(value),
            Envelope::Err(message) => Err(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_full_range() {
        for (ptr, len) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x10_0000, 17)] {
            assert_eq!(unpack(pack(ptr, len)), (ptr, len));
        }
    }

    #[test]
    fn envelope_wire_shape() {
        let ok: Envelope<u32> = Ok(3).into();
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"ok":3}"#);
        let err: Envelope<u32> = Err("bad".to_string()).into();
        assert_eq!(serde_json::to_string(&err).unwrap(), r#"{"err":"bad"}"#);
    }

    #[test]
    fn user_turn_is_optional_on_the_wire() {
        // An ABI v1 guest that predates user turns writes no `user_turn`: it must still decode.
        let old = r#"{"messages":[],"reward":0.0,"terminated":false,"truncated":false}"#;
        let out: StepOutput = serde_json::from_str(old).unwrap();
        assert_eq!(out.user_turn, None);
        assert!(!serde_json::to_string(&out).unwrap().contains("user_turn"));
        let with = StepOutput {
            user_turn: Some(UserTurn {
                messages: vec![Message::system("you are a customer")],
            }),
            ..out
        };
        let back: StepOutput =
            serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert_eq!(back, with);
    }

    #[test]
    fn message_omits_empty_fields() {
        let json = serde_json::to_string(&Message::user("hi")).unwrap();
        assert_eq!(json, r#"{"role":"user","content":"hi"}"#);
    }
}
