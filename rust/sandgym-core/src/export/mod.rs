//! Trainer datasets from trajectories: the layouts TRL, verl, SkyRL and Early Experience read.
//!
//! | format | one row per | columns |
//! |---|---|---|
//! | `trl-sft` | episode | `messages`, `tools` |
//! | `trl-grpo` | prompt (group) | `prompt`, `tools`, `env_id`, `task_id`, `task`, `seed`, `group_id`, reward columns |
//! | `trl-dpo` | group with distinct rewards | `prompt`, `chosen`, `rejected` (best and worst rollout), `tools`, rewards |
//! | `verl-rl` | prompt (group) | `data_source`, `prompt`, `ability`, `reward_model{style, ground_truth}`, `extra_info`, `agent_name` |
//! | `verl-sft` | episode | `messages`, `tools` |
//! | `skyrl` | prompt (group) | `data_source`, `prompt`, `env_class`, `reward_spec{method, ground_truth}`, `extra_info`, env extras |
//! | `early-expert` | agent step | `messages` = [system: agent prompt, user: `s_i`, assistant: `a_i`] |
//! | `trl-tokens` | episode with token ids | `prompt`, `tools`, `prompt_ids`, `completion_ids`, `logprobs`, `env_mask` (TRL's `rollout_func` fields), `reward`, `advantage`, ids |
//! | `verl-tokens` | episode with token ids | `prompt_ids`, `response_ids`, `response_mask`, `response_logprobs` (verl's `AgentLoopOutput` fields), `reward_score`, `advantage`, ids |
//!
//! | `trl-chunks` | chunk of a chunked (Delethink) turn | `prompt_ids`, `completion_ids`, `logprobs`, `env_mask`, `reward`, `advantage`, `trace_length`, `trace_truncated`, `traj_uid`, `turn_idx`, `chunk_idx`, ids |
//! | `verl-chunks` | chunk of a chunked (Delethink) turn | `prompt_ids`, `response_ids`, `response_mask`, `response_logprobs`, `reward_score`, `advantage`, `trace_length`, `trace_truncated`, `traj_uid`, `turn_idx`, `chunk_idx`, ids |
//!
//! The chunk layouts make every chunk its own training sample, as Delethink trains (its prompt, its
//! generation, all model tokens), with the trace-level reward and advantage broadcast to each and the
//! turn's trace length `Σ|y_l|` for the loss normalisation; episodes without chunked turns are left out.
//!
//! The token layouts hold one episode as one token sequence ([`EpisodeTokens`]), built from the token ids
//! its policy turns recorded; episodes without them, or whose server re-tokenized the conversation
//! between turns, are left out and counted (`dropped_without_tokens`, with the first reason).
//!
//! Messages follow the Hugging Face chat-template shape ([`hf_message`], from [`crate::chat`], which also
//! renders the `early-expert` states and actions): tool calls as `{"id", "type": "function",
//! "function": {"name", "arguments"}}` with `arguments` a JSON object, tool messages with both `name` and
//! `tool_call_id`. JSON-valued columns (`tools`, `arguments`) are Parquet JSON columns (`datasets`
//! ≥ 4.7 decodes them to objects; older readers see JSON strings), except `verl-sft`'s `tools`, nested
//! structs for verl's pandas-based loader (see [`schema_for`]). The ground truth of a prompt is its
//! `task` (JSON text): resetting the env with it replays the task, so a reward function or env class
//! can score a completion with the env's own verifier. The output format follows the file extension:
//! `.parquet`, or `.jsonl` (one JSON object per line).

pub mod arrow_json;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use sandgym_abi::{Message, Role};
use serde_json::{Map, Value, json};

use crate::advantage::{self, AdvantageOptions, GroupBy, PassRateHistory};
pub use crate::chat::hf_message;
use crate::chat::{render_message_action, render_state, system_prompt};
use crate::error::{Error, Result};
use crate::store::{EpisodeTokens, TableWriter};
use crate::trajectory::Trajectory;
use arrow_json::json_field;

/// The dataset layouts `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TrlSft,
    TrlGrpo,
    TrlDpo,
    VerlRl,
    VerlSft,
    Skyrl,
    EarlyExpert,
    TrlTokens,
    VerlTokens,
    TrlChunks,
    VerlChunks,
}

/// Names accepted by [`Format::by_name`], in the order of the table above.
pub const FORMAT_NAMES: &[&str] = &[
    "trl-sft",
    "trl-grpo",
    "trl-dpo",
    "verl-rl",
    "verl-sft",
    "skyrl",
    "early-expert",
    "trl-tokens",
    "verl-tokens",
    "trl-chunks",
    "verl-chunks",
];

impl Format {
    pub fn by_name(name: &str) -> Result<Self> {
        Ok(match name {
            "trl-sft" => Format::TrlSft,
            "trl-grpo" => Format::TrlGrpo,
            "trl-dpo" => Format::TrlDpo,
            "verl-rl" => Format::VerlRl,
            "verl-sft" => Format::VerlSft,
            "skyrl" => Format::Skyrl,
            "early-expert" => Format::EarlyExpert,
            "trl-tokens" => Format::TrlTokens,
            "verl-tokens" => Format::VerlTokens,
            "trl-chunks" => Format::TrlChunks,
            "verl-chunks" => Format::VerlChunks,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown export format `{other}` (available: {})",
                    FORMAT_NAMES.join(", ")
                )));
            }
        })
    }

    pub fn name(&self) -> &'static str {
        FORMAT_NAMES[*self as usize]
    }
}

/// Filters and settings of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    pub format: Format,
    /// Recompute `shaped_reward` and `advantage` with these settings before exporting; `None` keeps
    /// the stored values (rows without a stored `shaped_reward` rank by `total_reward`).
    pub advantage: Option<AdvantageOptions>,
    /// How rows form groups (prompts) for the per-prompt formats and DPO pairs.
    pub group_by: GroupBy,
    /// Keep only successful episodes (SFT and early-expert formats).
    pub success_only: bool,
    /// Keep rows whose episode failed with an error (`error_kind` set); dropped by default.
    pub include_errors: bool,
    /// Drop groups whose rewards are all equal (ScaleRL's zero-variance filtering).
    pub drop_zero_variance: bool,
    /// Drop prompts whose pass rate in this history is at least `drop_pass_rate`.
    pub pass_rates: Option<PassRateHistory>,
    pub drop_pass_rate: f64,
    /// verl: `extra_info.split`.
    pub split: String,
    /// verl and SkyRL: `data_source` is `{data_source_prefix}{env_name}`.
    pub data_source_prefix: String,
    /// SkyRL: `env_class`.
    pub env_class: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: Format::TrlSft,
            advantage: None,
            group_by: GroupBy::GroupId,
            success_only: false,
            include_errors: false,
            drop_zero_variance: false,
            pass_rates: None,
            drop_pass_rate: advantage::DEFAULT_DROP_PASS_RATE,
            split: "train".into(),
            data_source_prefix: "sandgym/".into(),
            env_class: "sandgym".into(),
        }
    }
}

/// What an export kept and dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    pub rows_in: usize,
    pub rows_out: usize,
    pub dropped_errors: usize,
    pub dropped_unsuccessful: usize,
    pub dropped_zero_variance: usize,
    pub dropped_pass_rate: usize,
    /// DPO: groups left out because all their rollouts tie (no chosen/rejected pair).
    pub groups_without_pair: usize,
    /// Token layouts: episodes left out because they have no token sequence.
    pub dropped_without_tokens: usize,
    /// Why the first of them has none (a [`crate::store::TokenGap`]).
    pub first_token_gap: Option<String>,
}

fn message_fields() -> Fields {
    let function = Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        json_field("arguments", true),
    ]);
    let call = Fields::from(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("function", DataType::Struct(function), false),
    ]);
    Fields::from(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, true),
        Field::new(
            "tool_calls",
            DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(call),
                false,
            ))),
            true,
        ),
        Field::new("tool_call_id", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
    ])
}

fn messages_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(message_fields()),
            false,
        ))),
        false,
    )
}

/// `list<struct<role, content>>`: prompts of verl and SkyRL (text-only system and user messages).
fn plain_messages_field(name: &str) -> Field {
    let fields = Fields::from(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, false),
    ]);
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(fields),
            false,
        ))),
        false,
    )
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn list_of(name: &str, item: DataType, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(item, false))),
        nullable,
    )
}

/// The names of a token row's response ids, log-probabilities, mask and reward: TRL's or verl's.
fn token_names(trl: bool) -> [&'static str; 4] {
    if trl {
        ["completion_ids", "logprobs", "env_mask", "reward"]
    } else {
        [
            "response_ids",
            "response_logprobs",
            "response_mask",
            "reward_score",
        ]
    }
}

/// The columns of a token row: the sequence in TRL's `rollout_func` names (log-probabilities always) or
/// verl's `AgentLoopOutput` names (null without them), then the reward, advantage and ids.
fn token_fields(trl: bool) -> Vec<Field> {
    let [ids, logprobs, mask, reward] = token_names(trl);
    let logprobs = list_of(logprobs, DataType::Float64, !trl);
    let mask = list_of(mask, DataType::UInt8, false);
    // Each trainer's own order: TRL's rollout_func output, verl's AgentLoopOutput.
    let (third, fourth) = if trl {
        (logprobs, mask)
    } else {
        (mask, logprobs)
    };
    vec![
        list_of("prompt_ids", DataType::UInt32, false),
        list_of(ids, DataType::UInt32, false),
        third,
        fourth,
        Field::new(reward, DataType::Float64, false),
        Field::new("advantage", DataType::Float64, true),
        utf8("env_id"),
        utf8("task_id"),
        utf8("episode_id"),
        utf8("group_id"),
        Field::new("seed", DataType::UInt64, false),
    ]
}

/// Where a chunk row sits: its trace (`traj_uid`, the episode), turn and chunk, the trace's length, and
/// whether its iteration cap truncated it.
fn chunk_row_fields() -> Vec<Field> {
    vec![
        utf8("traj_uid"),
        Field::new("turn_idx", DataType::UInt32, false),
        Field::new("chunk_idx", DataType::UInt32, false),
        Field::new("trace_length", DataType::UInt64, false),
        Field::new("trace_truncated", DataType::Boolean, false),
    ]
}

fn f64_list(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(DataType::Float64, false))),
        false,
    )
}

/// The columns of a format.
pub fn export_schema(format: Format) -> SchemaRef {
    let fields: Vec<Field> = match format {
        Format::TrlSft | Format::VerlSft => {
            vec![messages_field("messages"), json_field("tools", false)]
        }
        Format::TrlGrpo => vec![
            messages_field("prompt"),
            json_field("tools", false),
            utf8("env_id"),
            utf8("task_id"),
            utf8("task"),
            Field::new("seed", DataType::UInt64, false),
            utf8("group_id"),
            Field::new("num_samples", DataType::UInt64, false),
            f64_list("rewards"),
            f64_list("advantages"),
            Field::new("mean_reward", DataType::Float64, false),
            Field::new("pass_rate", DataType::Float64, false),
        ],
        Format::TrlDpo => vec![
            messages_field("prompt"),
            messages_field("chosen"),
            messages_field("rejected"),
            json_field("tools", false),
            utf8("env_id"),
            utf8("task_id"),
            utf8("group_id"),
            Field::new("chosen_reward", DataType::Float64, false),
            Field::new("rejected_reward", DataType::Float64, false),
        ],
        Format::VerlRl => vec![
            utf8("data_source"),
            plain_messages_field("prompt"),
            utf8("ability"),
            Field::new(
                "reward_model",
                DataType::Struct(Fields::from(vec![utf8("style"), utf8("ground_truth")])),
                false,
            ),
            Field::new(
                "extra_info",
                DataType::Struct(Fields::from(vec![
                    utf8("split"),
                    Field::new("index", DataType::Int64, false),
                    utf8("env_id"),
                    utf8("task_id"),
                    Field::new("seed", DataType::UInt64, false),
                    json_field("tools", false),
                    Field::new("pass_rate", DataType::Float64, false),
                ])),
                false,
            ),
            utf8("agent_name"),
        ],
        Format::Skyrl => vec![
            utf8("data_source"),
            plain_messages_field("prompt"),
            utf8("env_class"),
            Field::new(
                "reward_spec",
                DataType::Struct(Fields::from(vec![utf8("method"), utf8("ground_truth")])),
                false,
            ),
            Field::new(
                "extra_info",
                DataType::Struct(Fields::from(vec![
                    Field::new("index", DataType::Int64, false),
                    utf8("split"),
                    Field::new("pass_rate", DataType::Float64, false),
                ])),
                false,
            ),
            utf8("env_id"),
            utf8("task_id"),
            utf8("task"),
            Field::new("seed", DataType::UInt64, false),
            json_field("tools", false),
        ],
        Format::EarlyExpert => vec![plain_messages_field("messages")],
        Format::TrlTokens => [messages_field("prompt"), json_field("tools", false)]
            .into_iter()
            .chain(token_fields(true))
            .collect(),
        Format::VerlTokens => token_fields(false),
        Format::TrlChunks => [token_fields(true), chunk_row_fields()].concat(),
        Format::VerlChunks => [token_fields(false), chunk_row_fields()].concat(),
    };
    Arc::new(Schema::new(fields))
}

/// The Parquet schema of `rows` of `format`: [`export_schema`], except that `verl-sft` stores `tools`
/// as nested structs inferred from the rows (verl reads Parquet through pandas, which hands a JSON
/// column over as text, and its chat templating needs the tool schemas as objects).
pub fn schema_for(format: Format, rows: &[Value]) -> SchemaRef {
    let base = export_schema(format);
    if format != Format::VerlSft {
        return base;
    }
    let tools: Vec<&Value> = rows.iter().map(|r| &r["tools"]).collect();
    let inferred = arrow_json::infer_field("tools", &tools);
    let fields: Vec<Field> = base
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "tools" {
                inferred.clone()
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Index of the first assistant message: the prompt is every message before it.
fn prompt_len(messages: &[Message]) -> usize {
    messages
        .iter()
        .position(|m| m.role == Role::Assistant)
        .unwrap_or(messages.len())
}

/// One row of [`token_fields`]: a token sequence of `traj` with its reward, advantage and ids. TRL wants
/// log-probabilities always (0.0 where the server gave none); verl takes none as null.
fn token_row(
    trl: bool,
    traj: &Trajectory,
    prompt_ids: &[u32],
    response_ids: &[u32],
    mask: &[u8],
    logprobs: Option<&[f64]>,
) -> Map<String, Value> {
    let [ids, lps, mask_name, reward] = token_names(trl);
    let logprobs = match logprobs {
        Some(lp) => json!(lp),
        None if trl => json!(vec![0.0; response_ids.len()]),
        None => Value::Null,
    };
    Map::from_iter([
        ("prompt_ids".to_string(), json!(prompt_ids)),
        (ids.to_string(), json!(response_ids)),
        (lps.to_string(), logprobs),
        (mask_name.to_string(), json!(mask)),
        (reward.to_string(), json!(training_reward(traj))),
        ("advantage".to_string(), json!(traj.advantage)),
        ("env_id".to_string(), json!(traj.env_id)),
        ("task_id".to_string(), json!(traj.task_id)),
        ("episode_id".to_string(), json!(traj.episode_id)),
        (
            "group_id".to_string(),
            json!(traj.group_id.clone().unwrap_or_default()),
        ),
        ("seed".to_string(), json!(traj.seed)),
    ])
}

fn tools_value(traj: &Trajectory) -> Value {
    serde_json::from_str(&traj.tools).unwrap_or_else(|_| json!([]))
}

fn training_reward(traj: &Trajectory) -> f64 {
    traj.shaped_reward.unwrap_or(traj.total_reward)
}

/// A prompt's key: its group under `group_by`, else its task, else the episode itself.
fn prompt_group(traj: &Trajectory, group_by: GroupBy) -> String {
    group_by
        .key(traj)
        .or_else(|| GroupBy::Task.key(traj))
        .unwrap_or_else(|| traj.episode_id.clone())
}

fn hf_messages(messages: &[Message]) -> Value {
    Value::Array(messages.iter().map(hf_message).collect())
}

fn plain_messages(messages: &[Message]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect(),
    )
}

/// Rows of one prompt, in first-seen order.
fn prompt_groups(rows: &[Trajectory], group_by: GroupBy) -> Vec<(String, Vec<&Trajectory>)> {
    let mut order: Vec<(String, Vec<&Trajectory>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for row in rows {
        let key = prompt_group(row, group_by);
        match index.get(&key) {
            Some(&slot) => order[slot].1.push(row),
            None => {
                index.insert(key.clone(), order.len());
                order.push((key, vec![row]));
            }
        }
    }
    for (_, members) in &mut order {
        members.sort_by_key(|r| r.group_index);
    }
    order
}

/// Builds the rows of `format` (as JSON objects keyed by column) from already filtered trajectories.
pub fn build_rows(
    rows: &[Trajectory],
    options: &ExportOptions,
    summary: &mut ExportSummary,
) -> Vec<Value> {
    let mut out = Vec::new();
    match options.format {
        Format::TrlSft | Format::VerlSft => {
            for traj in rows {
                out.push(
                    json!({"messages": hf_messages(&traj.messages), "tools": tools_value(traj)}),
                );
            }
        }
        Format::EarlyExpert => {
            for traj in rows {
                let system = system_prompt(&traj.messages);
                for (i, message) in traj.messages.iter().enumerate() {
                    if message.role != Role::Assistant {
                        continue;
                    }
                    let state = &traj.messages[..i];
                    out.push(json!({"messages": [
                        {"role": "system", "content": system},
                        {"role": "user", "content": render_state(state)},
                        {"role": "assistant", "content": render_message_action(message)},
                    ]}));
                }
            }
        }
        Format::TrlGrpo | Format::VerlRl | Format::Skyrl => {
            for (index, (key, members)) in prompt_groups(rows, options.group_by)
                .into_iter()
                .enumerate()
            {
                let first = members[0];
                let prompt = &first.messages[..prompt_len(&first.messages)];
                let rewards: Vec<f64> = members.iter().map(|r| training_reward(r)).collect();
                let pass_rate =
                    members.iter().filter(|r| r.success).count() as f64 / members.len() as f64;
                let data_source = format!("{}{}", options.data_source_prefix, first.env_name);
                out.push(match options.format {
                    Format::TrlGrpo => json!({
                        "prompt": hf_messages(prompt),
                        "tools": tools_value(first),
                        "env_id": first.env_id,
                        "task_id": first.task_id,
                        "task": first.task,
                        "seed": first.seed,
                        "group_id": first.group_id.clone().unwrap_or(key),
                        "num_samples": members.len(),
                        "advantages": members.iter().map(|r| r.advantage.unwrap_or(0.0)).collect::<Vec<_>>(),
                        "mean_reward": rewards.iter().sum::<f64>() / rewards.len() as f64,
                        "rewards": rewards,
                        "pass_rate": pass_rate,
                    }),
                    Format::VerlRl => {
                        let tools = tools_value(first);
                        let has_tools = tools.as_array().is_some_and(|t| !t.is_empty());
                        json!({
                            "data_source": data_source,
                            "prompt": plain_messages(prompt),
                            "ability": if has_tools { "tool_use" } else { "reasoning" },
                            "reward_model": {"style": "rule", "ground_truth": first.task},
                            "extra_info": {
                                "split": options.split,
                                "index": index,
                                "env_id": first.env_id,
                                "task_id": first.task_id,
                                "seed": first.seed,
                                "tools": tools,
                                "pass_rate": pass_rate,
                            },
                            "agent_name": if has_tools { "tool_agent" } else { "single_turn_agent" },
                        })
                    }
                    _ => json!({
                        "data_source": data_source,
                        "prompt": plain_messages(prompt),
                        "env_class": options.env_class,
                        "reward_spec": {"method": "rule", "ground_truth": first.task},
                        "extra_info": {"index": index, "split": options.split, "pass_rate": pass_rate},
                        "env_id": first.env_id,
                        "task_id": first.task_id,
                        "task": first.task,
                        "seed": first.seed,
                        "tools": tools_value(first),
                    }),
                });
            }
        }
        Format::TrlChunks | Format::VerlChunks => {
            for traj in rows {
                let chunked = traj
                    .policy_turns
                    .iter()
                    .filter(|t| !t.chunks.is_empty())
                    .count();
                if chunked == 0 {
                    summary.dropped_without_tokens += 1;
                    summary.first_token_gap.get_or_insert_with(|| {
                        format!(
                            "episode {}: no turn was generated in chunks",
                            traj.episode_id
                        )
                    });
                    continue;
                }
                for (turn_idx, turn) in traj.policy_turns.iter().enumerate() {
                    let trace_length: usize =
                        turn.chunks.iter().map(|c| c.response_ids.len()).sum();
                    for (chunk_idx, chunk) in turn.chunks.iter().enumerate() {
                        let logprobs = (chunk.response_logprobs.len() == chunk.response_ids.len())
                            .then_some(chunk.response_logprobs.as_slice());
                        let mut row = token_row(
                            options.format == Format::TrlChunks,
                            traj,
                            &chunk.prompt_ids,
                            &chunk.response_ids,
                            &vec![1u8; chunk.response_ids.len()],
                            logprobs,
                        );
                        row.insert("traj_uid".into(), json!(traj.episode_id));
                        row.insert("turn_idx".into(), json!(turn_idx));
                        row.insert("chunk_idx".into(), json!(chunk_idx));
                        row.insert("trace_length".into(), json!(trace_length));
                        row.insert("trace_truncated".into(), json!(turn.chunks_truncated));
                        out.push(Value::Object(row));
                    }
                }
            }
        }
        Format::TrlTokens | Format::VerlTokens => {
            for traj in rows {
                let tokens = match EpisodeTokens::from_turns(&traj.policy_turns) {
                    Ok(tokens) => tokens,
                    Err(gap) => {
                        summary.dropped_without_tokens += 1;
                        summary
                            .first_token_gap
                            .get_or_insert_with(|| format!("episode {}: {gap}", traj.episode_id));
                        continue;
                    }
                };
                let trl = options.format == Format::TrlTokens;
                let mut row = token_row(
                    trl,
                    traj,
                    &tokens.prompt_ids,
                    &tokens.response_ids,
                    &tokens.response_mask,
                    tokens.response_logprobs.as_deref(),
                );
                if trl {
                    // The prompt makes the rows a TRL train_dataset too (replayed by the rollout function).
                    let prompt = hf_messages(&traj.messages[..prompt_len(&traj.messages)]);
                    row.insert("prompt".into(), prompt);
                    row.insert("tools".into(), tools_value(traj));
                }
                out.push(Value::Object(row));
            }
        }
        Format::TrlDpo => {
            for (key, members) in prompt_groups(rows, options.group_by) {
                // Best: highest reward, earliest member on ties; worst: lowest reward, latest on ties.
                let best = members
                    .iter()
                    .copied()
                    .reduce(|a, b| {
                        if training_reward(b) > training_reward(a) {
                            b
                        } else {
                            a
                        }
                    })
                    .expect("groups are not empty");
                let worst = members
                    .iter()
                    .copied()
                    .reduce(|a, b| {
                        if training_reward(b) <= training_reward(a) {
                            b
                        } else {
                            a
                        }
                    })
                    .expect("groups are not empty");
                if training_reward(best) <= training_reward(worst) {
                    summary.groups_without_pair += 1;
                    continue;
                }
                let split = prompt_len(&best.messages);
                out.push(json!({
                    "prompt": hf_messages(&best.messages[..split]),
                    "chosen": hf_messages(&best.messages[split..]),
                    "rejected": hf_messages(&worst.messages[prompt_len(&worst.messages)..]),
                    "tools": tools_value(best),
                    "env_id": best.env_id,
                    "task_id": best.task_id,
                    "group_id": best.group_id.clone().unwrap_or(key),
                    "chosen_reward": training_reward(best),
                    "rejected_reward": training_reward(worst),
                }));
            }
        }
    }
    out
}

/// Applies the options' filters (and advantage recomputation) to `rows`.
pub fn filter_rows(
    mut rows: Vec<Trajectory>,
    options: &ExportOptions,
    summary: &mut ExportSummary,
) -> Vec<Trajectory> {
    summary.rows_in = rows.len();
    if !options.include_errors {
        let before = rows.len();
        rows.retain(|r| r.error_kind.is_none());
        summary.dropped_errors = before - rows.len();
    }
    if let Some(history) = &options.pass_rates {
        let before = rows.len();
        rows.retain(|r| {
            r.task_id.is_empty()
                || !history.is_dropped(&advantage::prompt_key(r), options.drop_pass_rate)
        });
        summary.dropped_pass_rate = before - rows.len();
    }
    if let Some(adv) = &options.advantage {
        advantage::compute_advantages(&mut rows, adv);
    }
    if options.drop_zero_variance {
        let flat: HashSet<String> = {
            let groups = prompt_groups(&rows, options.group_by);
            groups
                .into_iter()
                .filter(|(_, members)| {
                    let rewards: Vec<f64> = members.iter().map(|r| training_reward(r)).collect();
                    advantage::is_zero_variance(&rewards)
                })
                .map(|(key, _)| key)
                .collect()
        };
        let before = rows.len();
        rows.retain(|r| !flat.contains(&prompt_group(r, options.group_by)));
        summary.dropped_zero_variance = before - rows.len();
    }
    let sft_like = matches!(
        options.format,
        Format::TrlSft | Format::VerlSft | Format::EarlyExpert
    );
    if options.success_only && sft_like {
        let before = rows.len();
        rows.retain(|r| r.success);
        summary.dropped_unsuccessful = before - rows.len();
    }
    rows
}

/// Removes JSON `null` members from objects, recursively (for JSONL, where an absent key reads better
/// than `"tool_calls": null`).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// How the output file is written, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Parquet,
    Jsonl,
}

impl FileKind {
    pub fn of(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Ok(FileKind::Parquet),
            Some("jsonl") => Ok(FileKind::Jsonl),
            _ => Err(Error::InvalidArgument(format!(
                "{}: the output must end in .parquet or .jsonl",
                path.display()
            ))),
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        context: path.display().to_string(),
        source,
    }
}

/// Writes `rows` (JSON objects of `format`) to `out`, atomically: a hidden temp file renamed into place.
pub fn write_rows(format: Format, rows: &[Value], out: &Path) -> Result<()> {
    let kind = FileKind::of(out)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = out.with_file_name(format!(".{name}.tmp"));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    }
    let result = (|| -> Result<()> {
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        match kind {
            FileKind::Jsonl => {
                let mut w = BufWriter::new(file);
                for row in rows {
                    serde_json::to_writer(&mut w, &strip_nulls(row.clone()))
                        .map_err(|e| Error::InvalidArgument(format!("export: {e}")))?;
                    w.write_all(b"\n").map_err(|e| io_err(&tmp, e))?;
                }
                w.flush().map_err(|e| io_err(&tmp, e))?;
            }
            FileKind::Parquet => {
                let schema = schema_for(format, rows);
                let mut writer =
                    TableWriter::new(file, schema.clone(), None).map_err(Error::storage)?;
                for chunk in rows.chunks(4096) {
                    let batch = arrow_json::to_batch(&schema, chunk)?;
                    writer.write(&batch).map_err(Error::storage)?;
                }
                writer.close().map_err(Error::storage)?;
            }
        }
        fs::rename(&tmp, out).map_err(|e| io_err(out, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Filters `rows`, builds the `options.format` rows and writes them to `out` (`.parquet` or `.jsonl`).
pub fn export(rows: Vec<Trajectory>, options: &ExportOptions, out: &Path) -> Result<ExportSummary> {
    FileKind::of(out)?;
    let mut summary = ExportSummary::default();
    let rows = filter_rows(rows, options, &mut summary);
    let built = build_rows(&rows, options, &mut summary);
    summary.rows_out = built.len();
    write_rows(options.format, &built, out)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgym_abi::{Action, ToolCall};

    fn traj(group: &str, j: u32, reward: f64) -> Trajectory {
        let call = ToolCall {
            id: "call_0".into(),
            name: "calc".into(),
            arguments: r#"{"expression": "1+2"}"#.into(),
        };
        Trajectory {
            env_id: "countdown-v0".into(),
            env_name: "countdown".into(),
            episode_id: format!("countdown-v0/{group}/{j}"),
            task_id: format!("t{group}"),
            task: r#"{"target": 3}"#.into(),
            group_id: Some(group.into()),
            group_index: j,
            total_reward: reward,
            success: reward > 0.0,
            tools: r#"[{"type": "function", "function": {"name": "calc"}}]"#.into(),
            messages: vec![
                Message::system("sys"),
                Message::user("make 3"),
                Message::assistant(&Action {
                    content: String::new(),
                    tool_calls: vec![call.clone()],
                    format_error: None,
                }),
                Message::tool(&call, "3"),
                Message::assistant(&Action::text(format!("answer {j}"))),
            ],
            ..Trajectory::default()
        }
    }

    #[test]
    fn dpo_pairs_best_and_worst_and_skips_ties() {
        let rows = vec![
            traj("a", 0, 0.0),
            traj("a", 1, 1.0),
            traj("a", 2, 0.5),
            traj("b", 0, 1.0),
            traj("b", 1, 1.0),
        ];
        let options = ExportOptions {
            format: Format::TrlDpo,
            ..ExportOptions::default()
        };
        let mut summary = ExportSummary::default();
        let built = build_rows(&rows, &options, &mut summary);
        assert_eq!(built.len(), 1);
        assert_eq!(summary.groups_without_pair, 1);
        let row = &built[0];
        assert_eq!(row["prompt"].as_array().unwrap().len(), 2);
        assert_eq!(row["chosen"][2]["content"], "answer 1");
        assert_eq!(row["rejected"][2]["content"], "answer 0");
        assert_eq!(
            row["chosen"][0]["tool_calls"][0]["function"]["arguments"]["expression"],
            "1+2"
        );
        assert_eq!(row["chosen"][1]["tool_call_id"], "call_0");
    }

    #[test]
    fn prompt_formats_have_one_row_per_group() {
        let rows = vec![traj("a", 0, 0.0), traj("a", 1, 1.0), traj("b", 0, 1.0)];
        for format in [Format::TrlGrpo, Format::VerlRl, Format::Skyrl] {
            let options = ExportOptions {
                format,
                ..ExportOptions::default()
            };
            let mut summary = ExportSummary::default();
            let built = build_rows(&rows, &options, &mut summary);
            assert_eq!(built.len(), 2, "{format:?}");
            // Every row converts to the format's Arrow schema.
            arrow_json::to_batch(&export_schema(format), &built).unwrap();
        }
    }

    #[test]
    fn filters_drop_errors_zero_variance_and_retired_prompts() {
        let mut rows = vec![
            traj("a", 0, 0.0),
            traj("a", 1, 1.0),
            traj("b", 0, 1.0),
            traj("b", 1, 1.0),
        ];
        rows.push(Trajectory {
            error_kind: Some("deadline".into()),
            ..traj("c", 0, 0.0)
        });
        let mut history = PassRateHistory::default();
        history.record(&[traj("a", 0, 1.0)]);
        let options = ExportOptions {
            format: Format::TrlSft,
            drop_zero_variance: true,
            ..ExportOptions::default()
        };
        let mut summary = ExportSummary::default();
        let kept = filter_rows(rows.clone(), &options, &mut summary);
        assert_eq!(kept.len(), 2);
        assert_eq!(summary.dropped_errors, 1);
        assert_eq!(summary.dropped_zero_variance, 2);
        let options = ExportOptions {
            pass_rates: Some(history),
            success_only: true,
            ..ExportOptions::default()
        };
        let mut summary = ExportSummary::default();
        let kept = filter_rows(rows, &options, &mut summary);
        assert_eq!(summary.dropped_pass_rate, 2);
        assert_eq!(summary.dropped_unsuccessful, 0);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn unknown_extension_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.csv");
        let err = export(vec![traj("a", 0, 1.0)], &ExportOptions::default(), &out).unwrap_err();
        assert!(err.to_string().contains(".parquet or .jsonl"), "{err}");
        assert!(!out.exists());
    }
}
