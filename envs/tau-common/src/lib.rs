//! Shared pieces of tau-bench-style customer-service envs (`tau-retail`, `tau-airline`).
//!
//! A tau env is a DB plus domain tools; a task is a ticket, a list of gold tool calls and strings the
//! agent must say. The verifier replays the gold calls on a fresh copy of the initial DB through the
//! env's own dispatcher and compares the result with the agent's DB (tau-bench's `calculate_reward`).
//! This crate holds what does not depend on the domain:
//!
//! - [`task`]: [`TauTask`] / [`GoldAction`] / [`TaskSource`], parsed from a tau2-bench task object
//!   ([`TauTask::from_tau2`], ticket built by [`tau2_ticket`]) or the sandgym task JSON
//!   ([`TauTask::from_sandgym`]; [`TauTask::from_json`] picks the format), written back by
//!   [`TauTask::to_json`]; [`TauTask::task_id`] gives `<env>-<source>-<id>`; [`split_for_seed`] gives
//!   generated tasks a stable train/test split; [`content_id`] a content hash id.
//! - [`conversation`]: the always-present tools `respond`, `end_conversation`, `calculate`, `think`,
//!   `transfer_to_human_agents` (schemas: [`conversation_tool_schema`]; handling and the record of what
//!   was said: [`Conversation::handle`] returning a [`Reply`] with an optional [`Ending`]); schema
//!   builders [`tool_schema`], [`string_param`], [`string_list_param`] for domain tools.
//! - `timing` (host only): native reset / verify / episode timing used by the envs' `examples/bench.rs`.
//! - [`ordered`]: [`OrderedMap`], an insertion-ordered map (Python dict order) for the records' maps
//!   keyed by id and their `options`.
//! - [`records`]: record shapes both domains share ([`records::Name`], [`records::Address`]).
//! - [`args`]: [`Args`], strict argument checking (all parameters required, no extra keys, JSON types,
//!   enums, lists of objects through [`ArgObject`]).
//! - [`calc`]: [`calculate`], the original's `calculate` tool (a Python-expression subset).
//! - [`verify`]: [`canonical_hash`] (FNV-1a 64 of canonical JSON), [`DbDigest`] (a DB's digest from
//!   its base hash and the records an episode changed), [`outputs_missing`] (tau-bench's
//!   substring rule), [`verdict`] (reward 1/0 with `{"reason", "db_match", "outputs_missing", ...}`),
//!   [`replay_gold`] (gold replay with non-fatal errors, terminate/talk tools skipped).
//! - [`expert`]: [`expert_plan`] (gold calls, a `respond` with the outputs, then the ending),
//!   [`expert_plan_user`] (the same for user-simulator mode, asking to confirm each write) and
//!   [`ExpertCursor`], which follows the episode.
//! - [`user`]: the user-simulator mode ([`Mode`]): [`UserSim`] keeps the simulated customer's view
//!   and turn, [`user_system_prompt`] its instructions, [`UserSim::scripted_reply`] the scripted
//!   customer that `sandgym_expert` plays on the customer's turn.
//! - [`num`] and [`pyjson`]: Python-compatible numbers ([`Num`]: int/float distinction, [`py_round`],
//!   [`py_float_repr`]) and `json.dumps` formatting ([`dumps`]), so observations and DB arithmetic
//!   match the original tools.
//!
//! Everything is deterministic and allocation-light enough to run inside a wasm guest.

pub mod args;
pub mod calc;
pub mod conversation;
pub mod expert;
pub mod num;
pub mod ordered;
pub mod pyjson;
pub mod records;
pub mod task;
#[cfg(not(target_family = "wasm"))]
pub mod timing;
pub mod user;
pub mod verify;

pub use args::{ArgObject, Args};
pub use calc::calculate;
pub use conversation::{
    CALCULATE, CONVERSATION_TOOLS, Conversation, END_CONVERSATION, Ending, RESPOND, Reply, THINK,
    TRANSFER_TO_HUMAN_AGENTS, conversation_params, conversation_tool_schema,
    conversation_tool_schemas, string_list_param, string_param, tool_schema,
    with_conversation_tools,
};
pub use expert::{
    CLOSING_MESSAGE, ExpertCursor, confirmation_message, expert_action, expert_plan,
    expert_plan_user, outputs_message,
};
pub use num::{Num, py_float_repr, py_round};
pub use ordered::OrderedMap;
pub use pyjson::dumps;
pub use task::{GoldAction, TaskSource, TauTask, content_id, split_for_seed, tau2_ticket};
pub use user::{Handover, Mode, STOP, UserReply, UserSim, user_system_prompt};
pub use verify::{
    DbDigest, ReplayStep, Verdict, canonical_hash, canonical_json, hash_hex, is_error_result,
    output_found, outputs_missing, replay_gold, skipped_in_replay, values_equal, verdict,
};

#[cfg(test)]
mod tests;
