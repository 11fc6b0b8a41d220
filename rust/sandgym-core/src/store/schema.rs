//! The trajectory table's Arrow schema: the single source of the column layout, and the check that a
//! schema read from elsewhere is ours.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};

use super::{Result, StoreError};

/// Schema-level metadata key holding the layout version.
pub const SCHEMA_VERSION_KEY: &str = "sandgym.schema_version";
/// The layout version this build writes and reads. Bump it on any incompatible column change.
pub const SCHEMA_VERSION: &str = "1";

/// Top-level column names, in schema order (the `Trajectory` field order).
pub(crate) mod col {
    pub const RUN_ID: &str = "run_id";
    pub const EPISODE_ID: &str = "episode_id";
    pub const EPISODE_INDEX: &str = "episode_index";
    pub const ENV_ID: &str = "env_id";
    pub const ENV_NAME: &str = "env_name";
    pub const ENV_VERSION: &str = "env_version";
    pub const TASK_ID: &str = "task_id";
    pub const TASK: &str = "task";
    pub const SEED: &str = "seed";
    pub const MESSAGES: &str = "messages";
    pub const TOOLS: &str = "tools";
    pub const TURN_REWARDS: &str = "turn_rewards";
    pub const FINAL_REWARD: &str = "final_reward";
    pub const TOTAL_REWARD: &str = "total_reward";
    pub const SUCCESS: &str = "success";
    pub const TERMINATED: &str = "terminated";
    pub const TRUNCATED: &str = "truncated";
    pub const ERROR_KIND: &str = "error_kind";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const NUM_TURNS: &str = "num_turns";
    pub const NUM_TOOL_CALLS: &str = "num_tool_calls";
    pub const NUM_TOOL_ERRORS: &str = "num_tool_errors";
    pub const POLICY: &str = "policy";
    pub const USER_POLICY: &str = "user_policy";
    pub const USER_TURNS: &str = "user_turns";
    pub const WALL_TIME_S: &str = "wall_time_s";
    pub const INFO: &str = "info";
    pub const GROUP_ID: &str = "group_id";
    pub const GROUP_INDEX: &str = "group_index";
    pub const SAMPLE_SEED: &str = "sample_seed";
    pub const NUM_TOOL_SUCCESSES: &str = "num_tool_successes";
    pub const RESPONSE_CHARS: &str = "response_chars";
    pub const SHAPED_REWARD: &str = "shaped_reward";
    pub const ADVANTAGE: &str = "advantage";
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    pub const COMPLETION_TOKENS: &str = "completion_tokens";
    pub const POLICY_TURNS: &str = "policy_turns";
}

/// Field names inside the `policy_turns` list's struct.
pub(crate) mod turn {
    pub const RAW_OUTPUT: &str = "raw_output";
    pub const PARSER: &str = "parser";
    pub const FORMAT_ERROR: &str = "format_error";
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    pub const COMPLETION_TOKENS: &str = "completion_tokens";
    pub const LATENCY_S: &str = "latency_s";
}

/// The fields of one policy turn.
pub(crate) fn policy_turn_fields() -> Fields {
    Fields::from(vec![
        Field::new(turn::RAW_OUTPUT, DataType::Utf8, false),
        Field::new(turn::PARSER, DataType::Utf8, false),
        Field::new(turn::FORMAT_ERROR, DataType::Utf8, true),
        Field::new(turn::PROMPT_TOKENS, DataType::UInt32, false),
        Field::new(turn::COMPLETION_TOKENS, DataType::UInt32, false),
        Field::new(turn::LATENCY_S, DataType::Float64, false),
    ])
}

/// Field names inside the `messages` list's struct.
pub(crate) mod msg {
    pub const ROLE: &str = "role";
    pub const CONTENT: &str = "content";
    pub const TOOL_CALLS: &str = "tool_calls";
    pub const TOOL_CALL_ID: &str = "tool_call_id";
    pub const NAME: &str = "name";
}

/// Field names inside the `tool_calls` list's struct.
pub(crate) mod call {
    pub const ID: &str = "id";
    pub const NAME: &str = "name";
    pub const ARGUMENTS: &str = "arguments";
}

/// The fields of one tool call: `struct<id, name, arguments>`, all non-null utf8.
pub(crate) fn tool_call_fields() -> Fields {
    Fields::from(vec![
        Field::new(call::ID, DataType::Utf8, false),
        Field::new(call::NAME, DataType::Utf8, false),
        Field::new(call::ARGUMENTS, DataType::Utf8, false),
    ])
}

/// The non-null list item field used by every list column (`item`, Arrow's default name).
pub(crate) fn list_item(data_type: DataType) -> FieldRef {
    Arc::new(Field::new_list_field(data_type, false))
}

/// The fields of one chat message.
pub(crate) fn message_fields() -> Fields {
    Fields::from(vec![
        Field::new(msg::ROLE, DataType::Utf8, false),
        Field::new(msg::CONTENT, DataType::Utf8, false),
        Field::new(
            msg::TOOL_CALLS,
            DataType::List(list_item(DataType::Struct(tool_call_fields()))),
            false,
        ),
        Field::new(msg::TOOL_CALL_ID, DataType::Utf8, true),
        Field::new(msg::NAME, DataType::Utf8, true),
    ])
}

fn build_schema() -> Schema {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    let fields = vec![
        utf8(col::RUN_ID),
        utf8(col::EPISODE_ID),
        Field::new(col::EPISODE_INDEX, DataType::UInt64, false),
        utf8(col::ENV_ID),
        utf8(col::ENV_NAME),
        Field::new(col::ENV_VERSION, DataType::UInt32, false),
        utf8(col::TASK_ID),
        utf8(col::TASK),
        Field::new(col::SEED, DataType::UInt64, false),
        Field::new(
            col::MESSAGES,
            DataType::List(list_item(DataType::Struct(message_fields()))),
            false,
        ),
        utf8(col::TOOLS),
        Field::new(
            col::TURN_REWARDS,
            DataType::List(list_item(DataType::Float64)),
            false,
        ),
        Field::new(col::FINAL_REWARD, DataType::Float64, false),
        Field::new(col::TOTAL_REWARD, DataType::Float64, false),
        Field::new(col::SUCCESS, DataType::Boolean, false),
        Field::new(col::TERMINATED, DataType::Boolean, false),
        Field::new(col::TRUNCATED, DataType::Boolean, false),
        Field::new(col::ERROR_KIND, DataType::Utf8, true),
        Field::new(col::ERROR_MESSAGE, DataType::Utf8, true),
        Field::new(col::NUM_TURNS, DataType::UInt32, false),
        Field::new(col::NUM_TOOL_CALLS, DataType::UInt32, false),
        Field::new(col::NUM_TOOL_ERRORS, DataType::UInt32, false),
        utf8(col::POLICY),
        Field::new(col::USER_POLICY, DataType::Utf8, true),
        Field::new(
            col::USER_TURNS,
            DataType::List(list_item(DataType::UInt32)),
            false,
        ),
        Field::new(col::WALL_TIME_S, DataType::Float64, false),
        utf8(col::INFO),
        Field::new(col::GROUP_ID, DataType::Utf8, true),
        Field::new(col::GROUP_INDEX, DataType::UInt32, false),
        Field::new(col::SAMPLE_SEED, DataType::UInt64, false),
        Field::new(col::NUM_TOOL_SUCCESSES, DataType::UInt32, false),
        Field::new(col::RESPONSE_CHARS, DataType::UInt64, false),
        Field::new(col::SHAPED_REWARD, DataType::Float64, true),
        Field::new(col::ADVANTAGE, DataType::Float64, true),
        Field::new(col::PROMPT_TOKENS, DataType::UInt64, false),
        Field::new(col::COMPLETION_TOKENS, DataType::UInt64, false),
        Field::new(
            col::POLICY_TURNS,
            DataType::List(list_item(DataType::Struct(policy_turn_fields()))),
            false,
        ),
    ];
    let metadata = HashMap::from([(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())]);
    Schema::new_with_metadata(fields, metadata)
}

/// Columns added to schema version 1 after its first release (the simulated user's turns; groups,
/// advantages and tool-use metrics; token usage and policy turns). Files written before may lack them: the check lets them be absent
/// and decoding fills their value (no user policy, no user turns, no group, `sample_seed = seed`,
/// metrics recounted from `messages`, no advantage), so older datasets stay readable. Adding a column
/// keeps the version only this way; changing or removing one bumps it.
pub const ADDED_COLUMNS: [&str; 12] = [
    col::USER_POLICY,
    col::USER_TURNS,
    col::GROUP_ID,
    col::GROUP_INDEX,
    col::SAMPLE_SEED,
    col::NUM_TOOL_SUCCESSES,
    col::RESPONSE_CHARS,
    col::SHAPED_REWARD,
    col::ADVANTAGE,
    col::PROMPT_TOKENS,
    col::COMPLETION_TOKENS,
    col::POLICY_TURNS,
];

/// The trajectory table's schema: one column per `Trajectory` field, same names and order, with
/// `sandgym.schema_version = "1"` as schema metadata. `docs/schema.md` documents every column.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA.get_or_init(|| Arc::new(build_schema())).clone()
}

/// Renders a data type in the notation `docs/schema.md` uses: `utf8`, `uint64`, `uint32`, `float64`,
/// `bool`, `list<T>`, `struct<name: T, …>` (nested nullability is not shown). Other types fall back to
/// Arrow's own display.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 => "utf8".to_string(),
        DataType::UInt64 => "uint64".to_string(),
        DataType::UInt32 => "uint32".to_string(),
        DataType::Float64 => "float64".to_string(),
        DataType::Boolean => "bool".to_string(),
        DataType::List(item) => format!("list<{}>", type_name(item.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// Whether data of type `actual` can be decoded as `expected`: the same types, except that list item
/// names and nested nullability may differ (other writers name list items `element` or make everything
/// nullable; nulls are then rejected value by value when decoding), and structs may carry extra fields.
fn compatible(expected: &DataType, actual: &DataType) -> bool {
    match (expected, actual) {
        (DataType::List(e), DataType::List(a)) => compatible(e.data_type(), a.data_type()),
        (DataType::Struct(e), DataType::Struct(a)) => e.iter().all(|ef| {
            a.iter()
                .find(|af| af.name() == ef.name())
                .is_some_and(|af| compatible(ef.data_type(), af.data_type()))
        }),
        _ => expected == actual,
    }
}

/// Checks that `actual` can be read as a trajectory table: every column of [`schema`] present under its
/// name with a compatible type, and no other schema version in the metadata. Extra columns are allowed
/// and ignored. The error names every missing or mistyped column.
pub fn check_schema(actual: &Schema) -> Result<()> {
    if let Some(version) = actual.metadata().get(SCHEMA_VERSION_KEY)
        && version != SCHEMA_VERSION
    {
        return Err(StoreError::Schema(format!(
            "trajectory schema version {version} is not supported (this build reads version {SCHEMA_VERSION})"
        )));
    }
    let expected = schema();
    let mut missing = Vec::new();
    let mut mistyped = Vec::new();
    for field in expected.fields() {
        match actual.field_with_name(field.name()) {
            Err(_) if ADDED_COLUMNS.contains(&field.name().as_str()) => {}
            Err(_) => missing.push(format!("`{}`", field.name())),
            Ok(found) if !compatible(field.data_type(), found.data_type()) => {
                mistyped.push(format!(
                    "`{}` is {} but should be {}",
                    field.name(),
                    type_name(found.data_type()),
                    type_name(field.data_type())
                ));
            }
            Ok(_) => {}
        }
    }
    if missing.is_empty() && mistyped.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing column(s) {}", missing.join(", ")));
    }
    if !mistyped.is_empty() {
        problems.push(format!("mistyped column(s): {}", mistyped.join("; ")));
    }
    Err(StoreError::Schema(format!(
        "not a sandgym trajectory table: {}",
        problems.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_schema_passes_check() {
        check_schema(&schema()).unwrap();
    }

    #[test]
    fn check_names_missing_and_mistyped_columns() {
        let fields: Vec<Field> = schema()
            .fields()
            .iter()
            .filter(|f| f.name() != col::SEED)
            .map(|f| {
                if f.name() == col::NUM_TURNS {
                    Field::new(col::NUM_TURNS, DataType::Int64, false)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let err = check_schema(&Schema::new(fields)).unwrap_err().to_string();
        assert!(err.contains("missing column(s) `seed`"), "{err}");
        assert!(
            err.contains("`num_turns` is Int64 but should be uint32"),
            "{err}"
        );
    }

    #[test]
    fn added_columns_may_be_absent_but_not_mistyped() {
        let without: Vec<Field> = schema()
            .fields()
            .iter()
            .filter(|f| !ADDED_COLUMNS.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        check_schema(&Schema::new(without)).unwrap();
        let mistyped: Vec<Field> = schema()
            .fields()
            .iter()
            .map(|f| {
                if f.name() == col::USER_TURNS {
                    Field::new(col::USER_TURNS, DataType::Utf8, false)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let err = check_schema(&Schema::new(mistyped))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`user_turns` is utf8"), "{err}");
    }

    #[test]
    fn check_rejects_other_version() {
        let other = Schema::new_with_metadata(
            schema().fields().clone(),
            HashMap::from([(SCHEMA_VERSION_KEY.to_string(), "2".to_string())]),
        );
        let err = check_schema(&other).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
    }

    #[test]
    fn lenient_about_list_item_names_and_nullability() {
        let relaxed: Vec<Field> = schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::List(item) => Field::new(
                    f.name(),
                    DataType::List(Arc::new(Field::new(
                        "element",
                        item.data_type().clone(),
                        true,
                    ))),
                    true,
                ),
                _ => f.as_ref().clone().with_nullable(true),
            })
            .collect();
        check_schema(&Schema::new(relaxed)).unwrap();
    }

    #[test]
    fn type_names() {
        let s = schema();
        assert_eq!(
            type_name(s.field_with_name(col::TURN_REWARDS).unwrap().data_type()),
            "list<float64>"
        );
        assert_eq!(
            type_name(s.field_with_name(col::MESSAGES).unwrap().data_type()),
            "list<struct<role: utf8, content: utf8, tool_calls: list<struct<id: utf8, name: utf8, \
             arguments: utf8>>, tool_call_id: utf8, name: utf8>>"
        );
    }
}
