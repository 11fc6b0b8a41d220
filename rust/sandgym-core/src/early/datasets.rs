//! Dataset builders: turn branch rows into the authors' release layout — chat-message rows, one category
//! per file, each written as JSONL (`{"messages": [...]}` per line) and as Parquet (the same messages
//! plus ids).
//!
//! States, actions and observations are written by [`crate::chat`]'s transcript renderers, identically in
//! every file (and in `export`'s `early-expert` rows):
//! - `expert_sft`: system = the env's agent prompt, user = `s_i`, assistant = `a_i`;
//! - `iwm_sft` (implicit world modeling): system = [`WORLD_MODEL_PROMPT`], user = `s_i` + `Action: a`,
//!   assistant = `Observation:\n` + the next state, for the expert action and every alternative;
//! - the self-reflection prompts and SFT rows live in [`super::reflection`] and reuse these renderers.
//!
//! Knows nothing of envs or samplers: it reads [`Branch`] rows.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, ListArray, RecordBatch, StringArray, StructArray, UInt32Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use sandgym_abi::Message;
use serde_json::{Value, json};

use super::table::Branch;
use crate::chat::{render_message_action, render_observation, render_state, system_prompt};
use crate::error::{Error, Result};
use crate::store::TableWriter;

/// The system prompt of implicit-world-modeling rows: the model predicts the env's answer, not an action.
pub const WORLD_MODEL_PROMPT: &str = "You are a world model of an interactive environment. You are \
given the interaction so far (the task, then each action taken and the observation it produced) and one \
more action. Predict the observation the environment returns for that action, exactly as the environment \
would write it. Answer with `Observation:` on its own line followed by the observation, and nothing else.";

/// The user turn of an implicit-world-modeling row: the state, then the action taken.
pub fn world_model_query(state: &[Message], action: &Message) -> String {
    format!(
        "{}\n\nAction: {}",
        render_state(state),
        render_message_action(action)
    )
}

/// The target of an implicit-world-modeling row.
pub fn world_model_target(next_state: &[Message]) -> String {
    format!("Observation:\n{}", render_observation(next_state))
}

/// One chat row of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct SftRow {
    /// `{episode_id}/{step}` (expert, reflection) or `{episode_id}/{step}/{branch}` (world model).
    pub id: String,
    pub episode_id: String,
    pub step: u32,
    pub branch: u32,
    pub is_expert: bool,
    /// `(role, content)` pairs: system, user, assistant.
    pub messages: Vec<(String, String)>,
}

impl SftRow {
    /// The JSONL line of the authors' layout: `{"messages": [{"role", "content"}, …]}`.
    pub fn to_jsonl(&self) -> String {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        json!({ "messages": messages }).to_string()
    }
}

fn chat(system: String, user: String, assistant: String) -> Vec<(String, String)> {
    vec![
        ("system".into(), system),
        ("user".into(), user),
        ("assistant".into(), assistant),
    ]
}

/// The imitation row of a state (from its expert branch).
pub fn expert_row(expert: &Branch) -> SftRow {
    SftRow {
        id: format!("{}/{}", expert.episode_id, expert.step),
        episode_id: expert.episode_id.clone(),
        step: expert.step,
        branch: 0,
        is_expert: true,
        messages: chat(
            system_prompt(&expert.state),
            render_state(&expert.state),
            render_message_action(&expert.action),
        ),
    }
}

/// The world-model row of one branch; `None` when its step failed outright (no next state to predict).
pub fn world_model_row(branch: &Branch) -> Option<SftRow> {
    if branch.error_kind.is_some() {
        return None;
    }
    Some(SftRow {
        id: format!("{}/{}/{}", branch.episode_id, branch.step, branch.branch),
        episode_id: branch.episode_id.clone(),
        step: branch.step,
        branch: branch.branch,
        is_expert: branch.is_expert,
        messages: chat(
            WORLD_MODEL_PROMPT.to_string(),
            world_model_query(&branch.state, &branch.action),
            world_model_target(&branch.next_state),
        ),
    })
}

fn sft_fields() -> Fields {
    Fields::from(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, false),
    ])
}

/// Schema of the dataset Parquet files.
pub fn sft_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("episode_id", DataType::Utf8, false),
        Field::new("step", DataType::UInt32, false),
        Field::new("branch", DataType::UInt32, false),
        Field::new("is_expert", DataType::Boolean, false),
        Field::new(
            "messages",
            DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(sft_fields()),
                false,
            ))),
            false,
        ),
    ]))
}

fn sft_batch(rows: &[SftRow]) -> Result<RecordBatch> {
    let flat: Vec<&(String, String)> = rows.iter().flat_map(|r| &r.messages).collect();
    let messages = StructArray::new(
        sft_fields(),
        vec![
            Arc::new(StringArray::from_iter_values(flat.iter().map(|m| &m.0))) as ArrayRef,
            Arc::new(StringArray::from_iter_values(flat.iter().map(|m| &m.1))),
        ],
        None,
    );
    let list = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Struct(sft_fields()), false)),
        OffsetBuffer::from_lengths(rows.iter().map(|r| r.messages.len())),
        Arc::new(messages),
        None,
    );
    RecordBatch::try_new(
        sft_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.id))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.episode_id),
            )),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.step))),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.branch))),
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.is_expert).collect::<Vec<_>>(),
            )),
            Arc::new(list),
        ],
    )
    .map_err(|e| Error::Storage(format!("dataset batch: {e}")))
}

/// A temporary file renamed into place on `finish`.
pub(crate) struct Staged {
    path: PathBuf,
    temp: PathBuf,
}

impl Staged {
    pub(crate) fn new(path: &Path) -> Result<(Staged, File)> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io_path("create", dir, e))?;
        }
        let name = path
            .file_name()
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{} is not a file path", path.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let temp = path.with_file_name(format!(".{name}.tmp"));
        let file = File::create(&temp).map_err(|e| Error::io_path("create", &temp, e))?;
        Ok((
            Staged {
                path: path.to_path_buf(),
                temp,
            },
            file,
        ))
    }

    pub(crate) fn temp(&self) -> &Path {
        &self.temp
    }

    pub(crate) fn publish(self) -> Result<PathBuf> {
        fs::rename(&self.temp, &self.path).map_err(|e| Error::io_path("rename", &self.temp, e))?;
        Ok(self.path)
    }
}

/// Streams rows of one dataset category to `{name}.jsonl` and `{name}.parquet` in a directory.
pub struct SftWriter {
    jsonl: (Staged, BufWriter<File>),
    parquet: (Staged, TableWriter),
    rows: u64,
}

impl SftWriter {
    pub fn create(dir: &Path, name: &str) -> Result<SftWriter> {
        let (jsonl, file) = Staged::new(&dir.join(format!("{name}.jsonl")))?;
        let (parquet, pfile) = Staged::new(&dir.join(format!("{name}.parquet")))?;
        let writer = TableWriter::new(pfile, sft_schema(), None)
            .map_err(|e| Error::Storage(format!("{}: {e}", parquet.temp().display())))?;
        Ok(SftWriter {
            jsonl: (jsonl, BufWriter::new(file)),
            parquet: (parquet, writer),
            rows: 0,
        })
    }

    pub fn write(&mut self, rows: &[SftRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            writeln!(self.jsonl.1, "{}", row.to_jsonl())
                .map_err(|e| Error::io_path("write", self.jsonl.0.temp(), e))?;
        }
        self.parquet
            .1
            .write(&sft_batch(rows)?)
            .map_err(|e| Error::Storage(format!("{}: {e}", self.parquet.0.temp().display())))?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes both files and renames them into place; returns `(jsonl, parquet)` paths.
    pub fn finish(self) -> Result<(PathBuf, PathBuf)> {
        let (jsonl, mut writer) = self.jsonl;
        writer
            .flush()
            .map_err(|e| Error::io_path("write", jsonl.temp(), e))?;
        drop(writer);
        let (parquet, pwriter) = self.parquet;
        pwriter
            .close()
            .map_err(|e| Error::Storage(format!("{}: {e}", parquet.temp().display())))?;
        Ok((jsonl.publish()?, parquet.publish()?))
    }
}
