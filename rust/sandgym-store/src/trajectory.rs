//! The in-memory trajectory row: one finished episode, as the collectors produce it and the store writes it.
//!
//! Plain data only. It knows nothing of envs, policies or Parquet; `docs/schema.md` documents each field
//! as the column it becomes.

use sandgym_abi::{Message, Role};

/// One finished (or failed) episode. Field order and meaning match the Parquet columns (`columns.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trajectory {
    /// Identifies the collection run that produced this row.
    pub run_id: String,
    /// Unique within the run: `{env_id}/{episode_index}`.
    pub episode_id: String,
    /// Index of the episode among its env's episodes in the run's plan (stable across resumed runs).
    pub episode_index: u64,
    /// Registered id (`countdown-v0`) or the path of a `.wasm` loaded by path.
    pub env_id: String,
    pub env_name: String,
    pub env_version: u32,
    /// Stable id of the task played; empty if reset failed before a task existed.
    pub task_id: String,
    /// The task as JSON; resetting with it replays the same task.
    pub task: String,
    pub seed: u64,
    /// The whole conversation, system prompt first, in the OpenAI chat shape.
    pub messages: Vec<Message>,
    /// Tool schemas offered to the agent, as a JSON array string (OpenAI function-calling shape).
    pub tools: String,
    /// Reward of each step, in order.
    pub turn_rewards: Vec<f64>,
    /// Reward of the last step (0 when no step was taken).
    pub final_reward: f64,
    /// Sum of `turn_rewards`.
    pub total_reward: f64,
    pub success: bool,
    pub terminated: bool,
    pub truncated: bool,
    /// Stable snake_case code from `Error::kind`, or `None` when the episode ran cleanly.
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    /// Agent turns taken (steps, including format errors).
    pub num_turns: u32,
    pub num_tool_calls: u32,
    /// Tool results that report an error, plus format errors.
    pub num_tool_errors: u32,
    /// Name of the policy that acted.
    pub policy: String,
    /// Name of the user policy that played the simulated user; `None` when no user turn was asked
    /// for (every env without a user-simulator mode).
    pub user_policy: Option<String>,
    /// Indices into `messages` of the messages the user policy wrote, in order. With the agent's
    /// assistant messages they are every move of the episode, so resetting with `task` and `seed`
    /// and replaying them (`Env::step` / `Env::user_step`) reproduces it.
    pub user_turns: Vec<u32>,
    /// Wall-clock seconds the episode took, env and policy together.
    pub wall_time_s: f64,
    /// `info` of the last step (or of the reset when no step was taken), as a JSON string.
    pub info: String,
    /// The group this episode belongs to when several rollouts of one task were collected
    /// (`--group-size G`): `{env_id}/{episode_index}`; `None` without groups.
    pub group_id: Option<String>,
    /// Index of the episode within its group (`0..G`); 0 without groups.
    pub group_index: u32,
    /// Seed of the policy's sampling (the random policy's stream, an LLM's `seed`): `seed` itself
    /// without groups, a different reproducible value per group member otherwise.
    pub sample_seed: u64,
    /// Tool results that do not report an error (successful tool calls).
    pub num_tool_successes: u32,
    /// Characters the agent wrote: assistant contents plus tool-call names and arguments.
    pub response_chars: u64,
    /// The reward advantages were computed from (the reward preset applied to the episode); `None`
    /// when no advantage was computed.
    pub shaped_reward: Option<f64>,
    /// The episode's advantage within its group (or batch), by the estimator chosen; `None` when none
    /// was computed.
    pub advantage: Option<f64>,
    /// Prompt tokens over the agent's turns, as the model server reported them (0 for policies without
    /// a model, or servers that report no usage).
    pub prompt_tokens: u64,
    /// Completion tokens over the agent's turns, as the model server reported them.
    pub completion_tokens: u64,
    /// One entry per agent turn, in order: the model's raw output, how it was parsed, token usage.
    pub policy_turns: Vec<PolicyTurn>,
}

/// How the policy produced one agent turn (the `policy_turns` column's struct).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyTurn {
    /// The model's raw output; empty for policies that choose structured actions.
    pub raw_output: String,
    /// The parser that read `raw_output` (`hermes`, `openai`, `react`, `answer`, `python`, `text`), or
    /// `none` for a structured action.
    pub parser: String,
    /// Why the output could not be read as an action (the env answered with a format-error observation);
    /// `None` when it parsed.
    pub format_error: Option<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Seconds the policy took to decide.
    pub latency_s: f64,
    /// The token ids of the context the model generated from (the whole templated conversation so far),
    /// as the server returned them (vLLM's `return_token_ids`: `prompt_token_ids`) or the policy reported
    /// them; empty when unknown.
    pub prompt_ids: Vec<u32>,
    /// The token ids the model generated for this turn, as the server returned them (vLLM's
    /// `return_token_ids`); empty when it returned none.
    pub completion_ids: Vec<u32>,
    /// The log-probability of each generated token, as the server returned them (`logprobs`); empty when
    /// it returned none.
    pub completion_logprobs: Vec<f64>,
    /// The chunks of a Markovian-thinking (Delethink) turn, in order: each its own prompt and generation;
    /// empty for a turn generated in one piece.
    pub chunks: Vec<TurnChunk>,
    /// The chunked turn was ended by its iteration cap, not by the model; false for a turn the model
    /// ended or one generated in one piece.
    pub chunks_truncated: bool,
}

/// One chunk of a chunked (Delethink) turn: the prompt it saw and what it generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnChunk {
    pub prompt_ids: Vec<u32>,
    pub response_ids: Vec<u32>,
    /// One per response id, or empty when the generator gave none.
    pub response_logprobs: Vec<f64>,
}

/// Tool results that do not report an error: tool messages whose content does not start with `Error`
/// (the `num_tool_successes` column).
pub fn tool_successes(messages: &[Message]) -> u32 {
    messages
        .iter()
        .filter(|m| m.role == Role::Tool && !m.content.starts_with("Error"))
        .count() as u32
}

/// Characters (Unicode scalar values) the agent wrote: the content of every assistant message plus the
/// name and arguments of each of its tool calls (the `response_chars` column).
pub fn response_chars(messages: &[Message]) -> u64 {
    messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| {
            m.content.chars().count()
                + m.tool_calls
                    .iter()
                    .map(|c| c.name.chars().count() + c.arguments.chars().count())
                    .sum::<usize>()
        })
        .sum::<usize>() as u64
}

#[cfg(test)]
mod tests {
    use sandgym_abi::ToolCall;

    use super::*;

    #[test]
    fn metrics_count_successful_calls_and_agent_characters() {
        let call = ToolCall {
            id: "c".into(),
            name: "calc".into(),
            arguments: "{\"e\":\"1\"}".into(),
        };
        let messages = vec![
            Message::system("sys"),
            Message::user("question"),
            Message {
                role: Role::Assistant,
                content: "héllo".into(),
                tool_calls: vec![call.clone(), call.clone()],
                tool_call_id: None,
                name: None,
            },
            Message::tool(&call, "3"),
            Message::tool(&call, "Error: bad"),
        ];
        assert_eq!(tool_successes(&messages), 1);
        assert_eq!(response_chars(&messages), 5 + 2 * (4 + 9));
    }
}
