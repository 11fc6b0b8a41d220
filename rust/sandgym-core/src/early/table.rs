//! The branches table: one row per (expert state, action) outcome, its Arrow schema and a Parquet writer.
//!
//! Owns the row type [`Branch`] and its columns (documented in `docs/schema.md`, "Branches table"). Chat
//! messages use the same struct as the trajectory table's `messages` column, so readers handle both alike.
//! Knows nothing of envs, samplers or datasets.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, ListArray, RecordBatch, StringArray, StructArray,
    UInt32Array, UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use sandgym_abi::{Message, ToolCall};

use crate::error::{Error, Result};
use crate::store::TableWriter;

/// Schema-level metadata key and value naming the branches layout.
pub const BRANCHES_SCHEMA_KEY: &str = "sandgym.branches_schema_version";
pub const BRANCHES_SCHEMA_VERSION: &str = "1";

/// One outcome: the expert state `s_i`, one action taken there (the expert's or an alternative) and what
/// the env answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub run_id: String,
    /// The source episode: the input trajectory's `episode_id`, or `{env_id}/{index}` for live experts.
    pub episode_id: String,
    pub env_id: String,
    pub task_id: String,
    pub seed: u64,
    /// Index `i` of the expert state in the episode (0 = right after reset).
    pub step: u32,
    /// 0 for the expert action, 1..=K for the alternatives in sampling order.
    pub branch: u32,
    pub is_expert: bool,
    /// `expert` for branch 0, else the sampler's name.
    pub sampler: String,
    /// `s_i`: the conversation up to the state, system prompt first (shared by a state's rows).
    pub state: Arc<Vec<Message>>,
    /// The action, as the assistant message it stands for.
    pub action: Message,
    /// The env's answer to the action (tool or user messages); `s_i` + action + this = the next state.
    pub next_state: Vec<Message>,
    pub reward: f64,
    /// The action ended the episode (terminated or truncated by the env).
    pub done: bool,
    pub success: bool,
    /// The answer reports an error (an `Error…` tool result or a `Format error…` message): an invalid
    /// action's outcome, kept as a valid world-model target.
    pub observation_error: bool,
    /// Why the step failed outright (guest fault, rejected action); `next_state` is then empty.
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    /// Hex SHA-256 fingerprint of the state the action was taken in; equal across a state's branches.
    pub state_digest: String,
    /// The step's `info`, as JSON text.
    pub info: String,
}

impl Default for Branch {
    fn default() -> Self {
        Branch {
            run_id: String::new(),
            episode_id: String::new(),
            env_id: String::new(),
            task_id: String::new(),
            seed: 0,
            step: 0,
            branch: 0,
            is_expert: false,
            sampler: String::new(),
            state: Arc::default(),
            action: Message::assistant(&sandgym_abi::Action::default()),
            next_state: Vec::new(),
            reward: 0.0,
            done: false,
            success: false,
            observation_error: false,
            error_kind: None,
            error_message: None,
            state_digest: String::new(),
            info: String::new(),
        }
    }
}

/// Whether the answer to an action reports an error.
pub fn is_error_observation(messages: &[Message]) -> bool {
    messages
        .iter()
        .any(|m| m.content.starts_with("Error") || m.content.starts_with("Format error"))
}

fn tool_call_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("arguments", DataType::Utf8, false),
    ])
}

fn item(data_type: DataType) -> Arc<Field> {
    Arc::new(Field::new_list_field(data_type, false))
}

fn message_fields() -> Fields {
    Fields::from(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, false),
        Field::new(
            "tool_calls",
            DataType::List(item(DataType::Struct(tool_call_fields()))),
            false,
        ),
        Field::new("tool_call_id", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
    ])
}

fn messages_type() -> DataType {
    DataType::List(item(DataType::Struct(message_fields())))
}

/// The branches table's Arrow schema.
pub fn branches_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
            let fields = vec![
                utf8("run_id"),
                utf8("episode_id"),
                utf8("env_id"),
                utf8("task_id"),
                Field::new("seed", DataType::UInt64, false),
                Field::new("step", DataType::UInt32, false),
                Field::new("branch", DataType::UInt32, false),
                Field::new("is_expert", DataType::Boolean, false),
                utf8("sampler"),
                Field::new("state", messages_type(), false),
                Field::new("action", DataType::Struct(message_fields()), false),
                Field::new("next_state", messages_type(), false),
                Field::new("reward", DataType::Float64, false),
                Field::new("done", DataType::Boolean, false),
                Field::new("success", DataType::Boolean, false),
                Field::new("observation_error", DataType::Boolean, false),
                Field::new("error_kind", DataType::Utf8, true),
                Field::new("error_message", DataType::Utf8, true),
                utf8("state_digest"),
                utf8("info"),
            ];
            Arc::new(
                Schema::new(fields).with_metadata(std::collections::HashMap::from([(
                    BRANCHES_SCHEMA_KEY.to_string(),
                    BRANCHES_SCHEMA_VERSION.to_string(),
                )])),
            )
        })
        .clone()
}

fn offsets(lengths: impl Iterator<Item = usize>) -> Result<OffsetBuffer<i32>> {
    let lengths: Vec<usize> = lengths.collect();
    let total: usize = lengths.iter().sum();
    if i32::try_from(total).is_err() {
        return Err(Error::Storage(
            "a branches batch is too large for 32-bit offsets".into(),
        ));
    }
    Ok(OffsetBuffer::from_lengths(lengths))
}

/// A struct array of messages (the items of a messages list, or the `action` column).
fn message_struct(messages: &[&Message]) -> Result<StructArray> {
    let calls: Vec<&ToolCall> = messages.iter().flat_map(|m| &m.tool_calls).collect();
    let call_struct = StructArray::new(
        tool_call_fields(),
        vec![
            Arc::new(StringArray::from_iter_values(calls.iter().map(|c| &c.id))) as ArrayRef,
            Arc::new(StringArray::from_iter_values(calls.iter().map(|c| &c.name))),
            Arc::new(StringArray::from_iter_values(
                calls.iter().map(|c| &c.arguments),
            )),
        ],
        None,
    );
    let tool_calls = ListArray::new(
        item(DataType::Struct(tool_call_fields())),
        offsets(messages.iter().map(|m| m.tool_calls.len()))?,
        Arc::new(call_struct),
        None,
    );
    Ok(StructArray::new(
        message_fields(),
        vec![
            Arc::new(StringArray::from_iter_values(
                messages.iter().map(|m| m.role.as_str()),
            )) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                messages.iter().map(|m| &m.content),
            )),
            Arc::new(tool_calls),
            Arc::new(StringArray::from(
                messages
                    .iter()
                    .map(|m| m.tool_call_id.as_deref())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                messages
                    .iter()
                    .map(|m| m.name.as_deref())
                    .collect::<Vec<_>>(),
            )),
        ],
        None,
    ))
}

fn messages_list<'a>(lists: impl Iterator<Item = &'a [Message]> + Clone) -> Result<ListArray> {
    let flat: Vec<&Message> = lists.clone().flatten().collect();
    Ok(ListArray::new(
        item(DataType::Struct(message_fields())),
        offsets(lists.map(<[Message]>::len))?,
        Arc::new(message_struct(&flat)?),
        None,
    ))
}

/// Branch rows as one Arrow batch of [`branches_schema`].
pub fn branches_batch(rows: &[Branch]) -> Result<RecordBatch> {
    let text = |f: fn(&Branch) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opt = |f: fn(&Branch) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let flag = |f: fn(&Branch) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let actions: Vec<&Message> = rows.iter().map(|r| &r.action).collect();
    let columns: Vec<ArrayRef> = vec![
        text(|r| &r.run_id),
        text(|r| &r.episode_id),
        text(|r| &r.env_id),
        text(|r| &r.task_id),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seed))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.step))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.branch))),
        flag(|r| r.is_expert),
        text(|r| &r.sampler),
        Arc::new(messages_list(rows.iter().map(|r| r.state.as_slice()))?),
        Arc::new(message_struct(&actions)?),
        Arc::new(messages_list(rows.iter().map(|r| r.next_state.as_slice()))?),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.reward),
        )),
        flag(|r| r.done),
        flag(|r| r.success),
        flag(|r| r.observation_error),
        opt(|r| r.error_kind.as_deref()),
        opt(|r| r.error_message.as_deref()),
        text(|r| &r.state_digest),
        text(|r| &r.info),
    ];
    RecordBatch::try_new(branches_schema(), columns)
        .map_err(|e| Error::Storage(format!("branches batch: {e}")))
}

/// Streams branch rows into one Parquet file, written under a hidden temporary name and renamed into
/// place by [`BranchWriter::finish`] (a killed run leaves no half-written file under the final name).
pub struct BranchWriter {
    path: PathBuf,
    temp: PathBuf,
    writer: TableWriter,
    rows: u64,
}

fn storage(path: &Path, err: impl std::fmt::Display) -> Error {
    Error::Storage(format!("{}: {err}", path.display()))
}

impl BranchWriter {
    /// Creates `path`'s directory if needed and opens the temporary file next to it.
    pub fn create(path: &Path) -> Result<BranchWriter> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
            fs::create_dir_all(dir).map_err(|e| Error::io_path("create", dir, e))?;
        }
        let name = path
            .file_name()
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{} is not a file path", path.display()))
            })?
            .to_string_lossy();
        let temp = path.with_file_name(format!(".{name}.tmp"));
        let file = File::create(&temp).map_err(|e| Error::io_path("create", &temp, e))?;
        let writer = TableWriter::new(file, branches_schema(), Some(16_384))
            .map_err(|e| storage(&temp, e))?;
        Ok(BranchWriter {
            path: path.to_path_buf(),
            temp,
            writer,
            rows: 0,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, rows: &[Branch]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = branches_batch(rows)?;
        self.writer
            .write(&batch)
            .map_err(|e| storage(&self.temp, e))?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes the file and renames it into place; returns the final path.
    pub fn finish(self) -> Result<PathBuf> {
        self.writer.close().map_err(|e| storage(&self.temp, e))?;
        fs::rename(&self.temp, &self.path).map_err(|e| Error::io_path("rename", &self.temp, e))?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgym_abi::Action;

    #[test]
    fn message_columns_match_the_trajectory_schema() {
        let ours = branches_schema();
        let theirs = crate::store::schema();
        assert_eq!(
            ours.field_with_name("state").unwrap().data_type(),
            theirs.field_with_name("messages").unwrap().data_type()
        );
    }

    #[test]
    fn batch_has_one_row_per_branch() {
        let row = Branch {
            state: Arc::new(vec![Message::system("s"), Message::user("u")]),
            action: Message::assistant(&Action::tool("f", &serde_json::json!({"a": 1}))),
            next_state: vec![Message::user("ok")],
            error_kind: Some("rejected".into()),
            ..Branch::default()
        };
        let batch = branches_batch(&[row.clone(), row]).unwrap();
        assert_eq!(batch.num_rows(), 2);
    }
}
