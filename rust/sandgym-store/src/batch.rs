//! Rows to an Arrow `RecordBatch` and back, column by column as `columns.rs` lists them.
//!
//! Decoding looks columns up by name, so it accepts any batch that passes [`check_schema`].

use arrow_array::RecordBatch;

use crate::Result;
use crate::columns::{decode_rows, encode_columns};
use crate::schema::{check_schema, schema};
use crate::trajectory::Trajectory;

/// Converts rows to one Arrow batch with [`schema`]. Zero rows give an empty batch.
///
/// Fails only if a text column (or list) of the batch exceeds 32-bit offsets, i.e. 2 GiB of text in
/// one column of one batch.
pub fn to_record_batch(rows: &[Trajectory]) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(schema(), encode_columns(rows)?)?)
}

/// Converts a batch back to rows: the inverse of [`to_record_batch`].
///
/// The batch must pass [`check_schema`] (otherwise the error names each missing or mistyped column);
/// columns are found by name, extra columns are ignored, and a null where the schema allows none is an
/// error naming the column and row.
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<Trajectory>> {
    check_schema(&batch.schema())?;
    decode_rows(batch)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::StringArray;
    use arrow_schema::{Field, Schema};
    use sandgym_abi::{Message, Role, ToolCall};

    use super::*;
    use crate::columns::col;

    fn sample() -> Trajectory {
        let call = ToolCall {
            id: "call_0".into(),
            name: "submit".into(),
            arguments: r#"{"expr": "1+2"}"#.into(),
        };
        Trajectory {
            run_id: "run".into(),
            episode_id: "countdown-v0/3".into(),
            episode_index: 3,
            env_id: "countdown-v0".into(),
            env_name: "countdown".into(),
            env_version: 0,
            task_id: "t3".into(),
            task: "{}".into(),
            seed: u64::MAX,
            messages: vec![
                Message::system("sys"),
                Message {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![call.clone(), call.clone()],
                    tool_call_id: None,
                    name: None,
                },
                Message::tool(&call, "ok ✓"),
            ],
            tools: "[]".into(),
            turn_rewards: vec![0.0, 1.5],
            final_reward: 1.5,
            total_reward: 1.5,
            success: true,
            terminated: true,
            truncated: false,
            error_kind: None,
            error_message: Some("x".into()),
            num_turns: 2,
            num_tool_calls: 2,
            num_tool_errors: 0,
            policy: "expert".into(),
            user_policy: Some("expert".into()),
            user_turns: vec![0, 2],
            wall_time_s: 0.25,
            info: "{}".into(),
            group_id: Some("countdown-v0/3".into()),
            group_index: 2,
            sample_seed: 77,
            // Consistent with `messages`, as the collector writes them (and decoding recounts them).
            num_tool_successes: 1,
            response_chars: 42,
            shaped_reward: Some(-0.5),
            advantage: Some(1.25),
            prompt_tokens: 30,
            completion_tokens: 7,
            policy_turns: vec![
                crate::trajectory::PolicyTurn {
                    raw_output: "<tool_call>{\"name\": \"submit\"".into(),
                    parser: "hermes".into(),
                    format_error: Some("not closed ✗".into()),
                    prompt_tokens: 10,
                    completion_tokens: 3,
                    latency_s: 0.5,
                    prompt_ids: vec![1, 2, 3, 4],
                    completion_ids: vec![7, 0, u32::MAX],
                    completion_logprobs: vec![-0.25, 0.0, -3.5],
                    chunks: vec![
                        crate::trajectory::TurnChunk {
                            prompt_ids: vec![1, 2],
                            response_ids: vec![7, 0],
                            response_logprobs: vec![-0.25, 0.0],
                        },
                        crate::trajectory::TurnChunk {
                            prompt_ids: vec![1, 2, 7],
                            response_ids: vec![u32::MAX],
                            response_logprobs: Vec::new(),
                        },
                    ],
                    chunks_truncated: true,
                },
                crate::trajectory::PolicyTurn {
                    raw_output: String::new(),
                    parser: "none".into(),
                    format_error: None,
                    prompt_tokens: 20,
                    completion_tokens: 4,
                    latency_s: 0.0,
                    prompt_ids: Vec::new(),
                    completion_ids: Vec::new(),
                    completion_logprobs: Vec::new(),
                    chunks: Vec::new(),
                    chunks_truncated: false,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let rows = vec![sample(), Trajectory::default(), sample()];
        let batch = to_record_batch(&rows).unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(from_record_batch(&batch).unwrap(), rows);
    }

    #[test]
    fn files_without_the_added_columns_still_decode() {
        let batch = to_record_batch(&[sample()]).unwrap();
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| {
                let name = batch.schema().field(i).name().clone();
                !crate::columns::ADDED_COLUMNS.contains(&name.as_str())
            })
            .collect();
        let old = batch.project(&keep).unwrap();
        let rows = from_record_batch(&old).unwrap();
        let mut want = sample();
        want.user_policy = None;
        want.user_turns = Vec::new();
        want.group_id = None;
        want.group_index = 0;
        want.sample_seed = want.seed;
        want.shaped_reward = None;
        want.advantage = None;
        want.prompt_tokens = 0;
        want.completion_tokens = 0;
        want.policy_turns = Vec::new();
        assert_eq!(rows, vec![want]);
    }

    #[test]
    fn policy_turns_without_the_added_token_fields_still_decode() {
        use arrow_array::{Array, ListArray, StructArray};
        use arrow_schema::{DataType, Fields};

        let batch = to_record_batch(&[sample()]).unwrap();
        let idx = batch.schema().index_of(col::policy_turns).unwrap();
        let list = batch
            .column(idx)
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        let structs = list
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .unwrap();
        let keep = 6; // the six fields of the first release
        let fields: Fields = structs.fields().iter().take(keep).cloned().collect();
        let old_structs =
            StructArray::try_new(fields.clone(), structs.columns()[..keep].to_vec(), None).unwrap();
        let item = Arc::new(Field::new_list_field(DataType::Struct(fields), false));
        let old_list = ListArray::try_new(
            item.clone(),
            list.offsets().clone(),
            Arc::new(old_structs),
            None,
        )
        .unwrap();
        let mut schema_fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        schema_fields[idx] = Field::new(col::policy_turns, DataType::List(item), false);
        let mut columns = batch.columns().to_vec();
        columns[idx] = Arc::new(old_list);
        let old = RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns).unwrap();
        assert!(old.column(idx).len() == 1);
        let rows = from_record_batch(&old).unwrap();
        let mut want = sample();
        for turn in &mut want.policy_turns {
            turn.prompt_ids.clear();
            turn.completion_ids.clear();
            turn.completion_logprobs.clear();
            turn.chunks.clear();
            turn.chunks_truncated = false;
        }
        assert_eq!(rows, vec![want]);
    }

    #[test]
    fn empty_batch() {
        let batch = to_record_batch(&[]).unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.schema(), schema());
        assert!(from_record_batch(&batch).unwrap().is_empty());
    }

    #[test]
    fn sliced_batch_decodes_its_own_rows() {
        let mut rows = vec![sample(), Trajectory::default(), sample()];
        rows[2].episode_index = 9;
        let batch = to_record_batch(&rows).unwrap();
        assert_eq!(from_record_batch(&batch.slice(1, 2)).unwrap(), rows[1..]);
    }

    #[test]
    fn null_in_non_nullable_column_is_named() {
        let batch = to_record_batch(&[sample()]).unwrap();
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let idx = batch.schema().index_of(col::policy).unwrap();
        fields[idx] = fields[idx].clone().with_nullable(true);
        let mut columns = batch.columns().to_vec();
        columns[idx] = Arc::new(StringArray::from(vec![None::<&str>]));
        let relaxed = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let err = from_record_batch(&relaxed).unwrap_err().to_string();
        assert!(err.contains("`policy`") && err.contains("row 0"), "{err}");
    }
}
