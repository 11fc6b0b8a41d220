//! Rows to an Arrow `RecordBatch` and back.
//!
//! Encoding fills flat buffers (offsets + child values) in one pass over the rows and wraps them as
//! arrays at the end, which is much cheaper than nested builders. Decoding looks columns up by name,
//! so it accepts any batch that passes [`check_schema`].

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, Float64Array, ListArray, PrimitiveArray,
    RecordBatch, StringArray, StructArray, UInt32Array, UInt64Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;
use sandgym_abi::{Message, Role, ToolCall};

use super::schema::{
    call, check_schema, col, list_item, message_fields, msg, schema, tool_call_fields,
};
use super::{Result, StoreError};
use crate::trajectory::Trajectory;

fn too_large(column: &str) -> StoreError {
    StoreError::Schema(format!(
        "column `{column}` holds more than 2 GiB (or 2^31 items) in one batch, beyond Arrow's 32-bit \
         offsets; write fewer rows per batch"
    ))
}

/// A utf8 column under construction: 32-bit offsets, concatenated bytes, optional validity.
struct Utf8Buf {
    column: &'static str,
    offsets: Vec<i32>,
    data: Vec<u8>,
    /// Validity per value; `None` while every value so far is present.
    validity: Option<Vec<bool>>,
}

impl Utf8Buf {
    fn new(column: &'static str, values: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(values + 1);
        offsets.push(0);
        Utf8Buf {
            column,
            offsets,
            data: Vec::with_capacity(bytes),
            validity: None,
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn push(&mut self, value: &str) -> Result<()> {
        self.data.extend_from_slice(value.as_bytes());
        let end = i32::try_from(self.data.len()).map_err(|_| too_large(self.column))?;
        self.offsets.push(end);
        if let Some(validity) = &mut self.validity {
            validity.push(true);
        }
        Ok(())
    }

    fn push_opt(&mut self, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => self.push(value),
            None => {
                let len = self.len();
                self.validity
                    .get_or_insert_with(|| vec![true; len])
                    .push(false);
                let end = *self.offsets.last().unwrap_or(&0);
                self.offsets.push(end);
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<ArrayRef> {
        let nulls = self.validity.map(NullBuffer::from);
        let array = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.offsets)),
            Buffer::from_vec(self.data),
            nulls,
        )?;
        Ok(Arc::new(array))
    }
}

/// List offsets under construction.
struct Offsets {
    column: &'static str,
    offsets: Vec<i32>,
}

impl Offsets {
    fn new(column: &'static str, lists: usize) -> Self {
        let mut offsets = Vec::with_capacity(lists + 1);
        offsets.push(0);
        Offsets { column, offsets }
    }

    /// Closes the current list after `total` child values in all.
    fn close_at(&mut self, total: usize) -> Result<()> {
        let end = i32::try_from(total).map_err(|_| too_large(self.column))?;
        self.offsets.push(end);
        Ok(())
    }

    fn finish(self) -> OffsetBuffer<i32> {
        OffsetBuffer::new(ScalarBuffer::from(self.offsets))
    }
}

/// Converts rows to one Arrow batch with [`schema`]. Zero rows give an empty batch.
///
/// Fails only if a text column (or list) of the batch exceeds 32-bit offsets, i.e. 2 GiB of text in
/// one column of one batch.
pub fn to_record_batch(rows: &[Trajectory]) -> Result<RecordBatch> {
    let n = rows.len();
    let n_messages: usize = rows.iter().map(|r| r.messages.len()).sum();
    let n_calls: usize = rows
        .iter()
        .flat_map(|r| &r.messages)
        .map(|m| m.tool_calls.len())
        .sum();
    let n_rewards: usize = rows.iter().map(|r| r.turn_rewards.len()).sum();
    let bytes = |f: fn(&Trajectory) -> usize| rows.iter().map(f).sum::<usize>();

    let mut run_id = Utf8Buf::new(col::RUN_ID, n, bytes(|r| r.run_id.len()));
    let mut episode_id = Utf8Buf::new(col::EPISODE_ID, n, bytes(|r| r.episode_id.len()));
    let mut env_id = Utf8Buf::new(col::ENV_ID, n, bytes(|r| r.env_id.len()));
    let mut env_name = Utf8Buf::new(col::ENV_NAME, n, bytes(|r| r.env_name.len()));
    let mut task_id = Utf8Buf::new(col::TASK_ID, n, bytes(|r| r.task_id.len()));
    let mut task = Utf8Buf::new(col::TASK, n, bytes(|r| r.task.len()));
    let mut tools = Utf8Buf::new(col::TOOLS, n, bytes(|r| r.tools.len()));
    let mut error_kind = Utf8Buf::new(col::ERROR_KIND, n, 0);
    let mut error_message = Utf8Buf::new(col::ERROR_MESSAGE, n, 0);
    let mut policy = Utf8Buf::new(col::POLICY, n, bytes(|r| r.policy.len()));
    let mut user_policy = Utf8Buf::new(col::USER_POLICY, n, 0);
    let mut user_turn_offsets = Offsets::new(col::USER_TURNS, n);
    let mut user_turns: Vec<u32> = Vec::new();
    let mut info = Utf8Buf::new(col::INFO, n, bytes(|r| r.info.len()));
    let mut group_id = Utf8Buf::new(col::GROUP_ID, n, 0);

    let mut message_offsets = Offsets::new(col::MESSAGES, n);
    let mut role = Utf8Buf::new("messages.role", n_messages, n_messages * 6);
    let content_bytes = rows
        .iter()
        .flat_map(|r| &r.messages)
        .map(|m| m.content.len())
        .sum();
    let mut content = Utf8Buf::new("messages.content", n_messages, content_bytes);
    let mut call_offsets = Offsets::new("messages.tool_calls", n_messages);
    let mut call_id = Utf8Buf::new("messages.tool_calls.id", n_calls, 0);
    let mut call_name = Utf8Buf::new("messages.tool_calls.name", n_calls, 0);
    let mut call_arguments = Utf8Buf::new("messages.tool_calls.arguments", n_calls, 0);
    let mut tool_call_id = Utf8Buf::new("messages.tool_call_id", n_messages, 0);
    let mut message_name = Utf8Buf::new("messages.name", n_messages, 0);

    let mut reward_offsets = Offsets::new(col::TURN_REWARDS, n);
    let mut rewards = Vec::with_capacity(n_rewards);

    for row in rows {
        run_id.push(&row.run_id)?;
        episode_id.push(&row.episode_id)?;
        env_id.push(&row.env_id)?;
        env_name.push(&row.env_name)?;
        task_id.push(&row.task_id)?;
        task.push(&row.task)?;
        tools.push(&row.tools)?;
        error_kind.push_opt(row.error_kind.as_deref())?;
        error_message.push_opt(row.error_message.as_deref())?;
        policy.push(&row.policy)?;
        user_policy.push_opt(row.user_policy.as_deref())?;
        user_turns.extend_from_slice(&row.user_turns);
        user_turn_offsets.close_at(user_turns.len())?;
        info.push(&row.info)?;
        group_id.push_opt(row.group_id.as_deref())?;

        for message in &row.messages {
            role.push(message.role.as_str())?;
            content.push(&message.content)?;
            for tool_call in &message.tool_calls {
                call_id.push(&tool_call.id)?;
                call_name.push(&tool_call.name)?;
                call_arguments.push(&tool_call.arguments)?;
            }
            call_offsets.close_at(call_id.len())?;
            tool_call_id.push_opt(message.tool_call_id.as_deref())?;
            message_name.push_opt(message.name.as_deref())?;
        }
        message_offsets.close_at(role.len())?;

        rewards.extend_from_slice(&row.turn_rewards);
        reward_offsets.close_at(rewards.len())?;
    }

    let calls = StructArray::try_new(
        tool_call_fields(),
        vec![
            call_id.finish()?,
            call_name.finish()?,
            call_arguments.finish()?,
        ],
        None,
    )?;
    let tool_calls = ListArray::try_new(
        list_item(DataType::Struct(tool_call_fields())),
        call_offsets.finish(),
        Arc::new(calls),
        None,
    )?;
    let messages_struct = StructArray::try_new(
        message_fields(),
        vec![
            role.finish()?,
            content.finish()?,
            Arc::new(tool_calls),
            tool_call_id.finish()?,
            message_name.finish()?,
        ],
        None,
    )?;
    let messages = ListArray::try_new(
        list_item(DataType::Struct(message_fields())),
        message_offsets.finish(),
        Arc::new(messages_struct),
        None,
    )?;
    let turn_rewards = ListArray::try_new(
        list_item(DataType::Float64),
        reward_offsets.finish(),
        Arc::new(Float64Array::from(rewards)),
        None,
    )?;

    let user_turns = ListArray::try_new(
        list_item(DataType::UInt32),
        user_turn_offsets.finish(),
        Arc::new(UInt32Array::from(user_turns)),
        None,
    )?;

    let u64s = |f: fn(&Trajectory) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
    };
    let u32s = |f: fn(&Trajectory) -> u32| -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(f)))
    };
    let f64s = |f: fn(&Trajectory) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let bools = |f: fn(&Trajectory) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };

    // Same order as `schema()`.
    let columns: Vec<ArrayRef> = vec![
        run_id.finish()?,
        episode_id.finish()?,
        u64s(|r| r.episode_index),
        env_id.finish()?,
        env_name.finish()?,
        u32s(|r| r.env_version),
        task_id.finish()?,
        task.finish()?,
        u64s(|r| r.seed),
        Arc::new(messages),
        tools.finish()?,
        Arc::new(turn_rewards),
        f64s(|r| r.final_reward),
        f64s(|r| r.total_reward),
        bools(|r| r.success),
        bools(|r| r.terminated),
        bools(|r| r.truncated),
        error_kind.finish()?,
        error_message.finish()?,
        u32s(|r| r.num_turns),
        u32s(|r| r.num_tool_calls),
        u32s(|r| r.num_tool_errors),
        policy.finish()?,
        user_policy.finish()?,
        Arc::new(user_turns),
        f64s(|r| r.wall_time_s),
        info.finish()?,
        group_id.finish()?,
        u32s(|r| r.group_index),
        u64s(|r| r.sample_seed),
        u32s(|r| r.num_tool_successes),
        u64s(|r| r.response_chars),
        Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| r.shaped_reward),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.advantage))),
    ];
    let mut columns = columns;
    columns.extend(super::policy_turns::encode(rows)?);
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Where a value sits, for error messages.
fn null_error(column: &str, row: usize) -> StoreError {
    StoreError::Schema(format!(
        "column `{column}` is not nullable but row {row} holds a null"
    ))
}

/// Looks up a column (or struct field) by name and downcasts it.
fn typed<'a, T: Array + 'static>(array: Option<&'a ArrayRef>, column: &str) -> Result<&'a T> {
    array
        .and_then(|a| a.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            StoreError::Schema(format!(
                "column `{column}` is missing or has an unexpected type"
            ))
        })
}

/// A non-nullable utf8 value.
fn text(array: &StringArray, i: usize, column: &str, row: usize) -> Result<String> {
    if array.is_null(i) {
        return Err(null_error(column, row));
    }
    Ok(array.value(i).to_string())
}

/// A nullable utf8 value.
fn opt_text(array: &StringArray, i: usize) -> Option<String> {
    array.is_valid(i).then(|| array.value(i).to_string())
}

/// A non-nullable numeric value.
fn num<T: ArrowPrimitiveType>(
    array: &PrimitiveArray<T>,
    i: usize,
    column: &str,
    row: usize,
) -> Result<T::Native> {
    if array.is_null(i) {
        return Err(null_error(column, row));
    }
    Ok(array.value(i))
}

/// A non-nullable bool value.
fn flag(array: &BooleanArray, i: usize, column: &str) -> Result<bool> {
    if array.is_null(i) {
        return Err(null_error(column, i));
    }
    Ok(array.value(i))
}

/// The child index range of list entry `i`, which must not be null.
fn list_range(
    list: &ListArray,
    i: usize,
    column: &str,
    row: usize,
) -> Result<std::ops::Range<usize>> {
    if list.is_null(i) {
        return Err(null_error(column, row));
    }
    let offsets = list.value_offsets();
    // Offsets were validated when the array was built; they are non-negative and ascending.
    Ok(offsets[i] as usize..offsets[i + 1] as usize)
}

fn parse_role(value: &str, row: usize) -> Result<Role> {
    Ok(match value {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(StoreError::Schema(format!(
                "column `messages.role` holds unknown role {other:?} in row {row}"
            )));
        }
    })
}

/// Decoded views of the `messages` column's children.
struct MessageColumns<'a> {
    list: &'a ListArray,
    structs: &'a StructArray,
    role: &'a StringArray,
    content: &'a StringArray,
    calls: &'a ListArray,
    calls_struct: &'a StructArray,
    call_id: &'a StringArray,
    call_name: &'a StringArray,
    call_arguments: &'a StringArray,
    tool_call_id: &'a StringArray,
    name: &'a StringArray,
}

impl<'a> MessageColumns<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Self> {
        let list: &ListArray = typed(batch.column_by_name(col::MESSAGES), col::MESSAGES)?;
        let structs: &StructArray = typed(Some(list.values()), col::MESSAGES)?;
        let field = |name: &str| structs.column_by_name(name);
        let calls: &ListArray = typed(field(msg::TOOL_CALLS), "messages.tool_calls")?;
        let calls_struct: &StructArray = typed(Some(calls.values()), "messages.tool_calls")?;
        let call_field = |name: &str| calls_struct.column_by_name(name);
        Ok(MessageColumns {
            list,
            structs,
            role: typed(field(msg::ROLE), "messages.role")?,
            content: typed(field(msg::CONTENT), "messages.content")?,
            calls,
            calls_struct,
            call_id: typed(call_field(call::ID), "messages.tool_calls.id")?,
            call_name: typed(call_field(call::NAME), "messages.tool_calls.name")?,
            call_arguments: typed(call_field(call::ARGUMENTS), "messages.tool_calls.arguments")?,
            tool_call_id: typed(field(msg::TOOL_CALL_ID), "messages.tool_call_id")?,
            name: typed(field(msg::NAME), "messages.name")?,
        })
    }

    fn row(&self, row: usize) -> Result<Vec<Message>> {
        let range = list_range(self.list, row, col::MESSAGES, row)?;
        let mut messages = Vec::with_capacity(range.len());
        for m in range {
            if self.structs.is_null(m) {
                return Err(null_error("messages.item", row));
            }
            let mut tool_calls = Vec::new();
            for c in list_range(self.calls, m, "messages.tool_calls", row)? {
                if self.calls_struct.is_null(c) {
                    return Err(null_error("messages.tool_calls.item", row));
                }
                tool_calls.push(ToolCall {
                    id: text(self.call_id, c, "messages.tool_calls.id", row)?,
                    name: text(self.call_name, c, "messages.tool_calls.name", row)?,
                    arguments: text(self.call_arguments, c, "messages.tool_calls.arguments", row)?,
                });
            }
            let role = text(self.role, m, "messages.role", row)?;
            messages.push(Message {
                role: parse_role(&role, row)?,
                content: text(self.content, m, "messages.content", row)?,
                tool_calls,
                tool_call_id: opt_text(self.tool_call_id, m),
                name: opt_text(self.name, m),
            });
        }
        Ok(messages)
    }
}

/// Converts a batch back to rows: the inverse of [`to_record_batch`].
///
/// The batch must pass [`check_schema`] (otherwise the error names each missing or mistyped column);
/// columns are found by name, extra columns are ignored, and a null where the schema allows none is an
/// error naming the column and row.
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<Trajectory>> {
    check_schema(&batch.schema())?;

    let string = |name: &str| typed::<StringArray>(batch.column_by_name(name), name);
    let run_id = string(col::RUN_ID)?;
    let episode_id = string(col::EPISODE_ID)?;
    let env_id = string(col::ENV_ID)?;
    let env_name = string(col::ENV_NAME)?;
    let task_id = string(col::TASK_ID)?;
    let task = string(col::TASK)?;
    let tools = string(col::TOOLS)?;
    let error_kind = string(col::ERROR_KIND)?;
    let error_message = string(col::ERROR_MESSAGE)?;
    let policy = string(col::POLICY)?;
    // Added columns (see `ADDED_COLUMNS`): absent in files written before them.
    let user_policy = batch
        .column_by_name(col::USER_POLICY)
        .map(|c| typed::<StringArray>(Some(c), col::USER_POLICY))
        .transpose()?;
    let user_turns = batch
        .column_by_name(col::USER_TURNS)
        .map(|c| typed::<ListArray>(Some(c), col::USER_TURNS))
        .transpose()?;
    let user_turn_values = user_turns
        .map(|l| typed::<UInt32Array>(Some(l.values()), col::USER_TURNS))
        .transpose()?;
    let info = string(col::INFO)?;
    let optional = |name: &str| batch.column_by_name(name);
    let group_id = optional(col::GROUP_ID)
        .map(|c| typed::<StringArray>(Some(c), col::GROUP_ID))
        .transpose()?;
    let group_index = optional(col::GROUP_INDEX)
        .map(|c| typed::<UInt32Array>(Some(c), col::GROUP_INDEX))
        .transpose()?;
    let sample_seed = optional(col::SAMPLE_SEED)
        .map(|c| typed::<UInt64Array>(Some(c), col::SAMPLE_SEED))
        .transpose()?;
    let num_tool_successes = optional(col::NUM_TOOL_SUCCESSES)
        .map(|c| typed::<UInt32Array>(Some(c), col::NUM_TOOL_SUCCESSES))
        .transpose()?;
    let response_chars = optional(col::RESPONSE_CHARS)
        .map(|c| typed::<UInt64Array>(Some(c), col::RESPONSE_CHARS))
        .transpose()?;
    let shaped_reward = optional(col::SHAPED_REWARD)
        .map(|c| typed::<Float64Array>(Some(c), col::SHAPED_REWARD))
        .transpose()?;
    let advantage = optional(col::ADVANTAGE)
        .map(|c| typed::<Float64Array>(Some(c), col::ADVANTAGE))
        .transpose()?;
    let opt_f64 = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    let usage = super::policy_turns::Columns::new(batch)?;

    let u64s = |name: &str| typed::<UInt64Array>(batch.column_by_name(name), name);
    let episode_index = u64s(col::EPISODE_INDEX)?;
    let seed = u64s(col::SEED)?;
    let u32s = |name: &str| typed::<UInt32Array>(batch.column_by_name(name), name);
    let env_version = u32s(col::ENV_VERSION)?;
    let num_turns = u32s(col::NUM_TURNS)?;
    let num_tool_calls = u32s(col::NUM_TOOL_CALLS)?;
    let num_tool_errors = u32s(col::NUM_TOOL_ERRORS)?;
    let f64s = |name: &str| typed::<Float64Array>(batch.column_by_name(name), name);
    let final_reward = f64s(col::FINAL_REWARD)?;
    let total_reward = f64s(col::TOTAL_REWARD)?;
    let wall_time_s = f64s(col::WALL_TIME_S)?;
    let bools = |name: &str| typed::<BooleanArray>(batch.column_by_name(name), name);
    let success = bools(col::SUCCESS)?;
    let terminated = bools(col::TERMINATED)?;
    let truncated = bools(col::TRUNCATED)?;

    let messages = MessageColumns::new(batch)?;
    let turn_rewards: &ListArray =
        typed(batch.column_by_name(col::TURN_REWARDS), col::TURN_REWARDS)?;
    let reward_values: &Float64Array = typed(Some(turn_rewards.values()), col::TURN_REWARDS)?;

    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut turns = Vec::new();
        if let (Some(list), Some(values)) = (user_turns, user_turn_values) {
            for t in list_range(list, i, col::USER_TURNS, i)? {
                turns.push(num(values, t, "user_turns.item", i)?);
            }
        }
        let mut rewards = Vec::new();
        for r in list_range(turn_rewards, i, col::TURN_REWARDS, i)? {
            rewards.push(num(reward_values, r, "turn_rewards.item", i)?);
        }
        let seed = num(seed, i, col::SEED, i)?;
        let messages = messages.row(i)?;
        let (prompt_tokens, completion_tokens, policy_turns) = usage.row(i)?;
        rows.push(Trajectory {
            prompt_tokens,
            completion_tokens,
            policy_turns,
            group_id: group_id.and_then(|a| opt_text(a, i)),
            group_index: group_index
                .map(|a| num(a, i, col::GROUP_INDEX, i))
                .transpose()?
                .unwrap_or(0),
            sample_seed: sample_seed
                .map(|a| num(a, i, col::SAMPLE_SEED, i))
                .transpose()?
                .unwrap_or(seed),
            num_tool_successes: match num_tool_successes {
                Some(a) => num(a, i, col::NUM_TOOL_SUCCESSES, i)?,
                None => crate::rewards::tool_successes(&messages),
            },
            response_chars: match response_chars {
                Some(a) => num(a, i, col::RESPONSE_CHARS, i)?,
                None => crate::rewards::response_chars(&messages),
            },
            shaped_reward: shaped_reward.and_then(|a| opt_f64(a, i)),
            advantage: advantage.and_then(|a| opt_f64(a, i)),
            run_id: text(run_id, i, col::RUN_ID, i)?,
            episode_id: text(episode_id, i, col::EPISODE_ID, i)?,
            episode_index: num(episode_index, i, col::EPISODE_INDEX, i)?,
            env_id: text(env_id, i, col::ENV_ID, i)?,
            env_name: text(env_name, i, col::ENV_NAME, i)?,
            env_version: num(env_version, i, col::ENV_VERSION, i)?,
            task_id: text(task_id, i, col::TASK_ID, i)?,
            task: text(task, i, col::TASK, i)?,
            seed,
            messages,
            tools: text(tools, i, col::TOOLS, i)?,
            turn_rewards: rewards,
            final_reward: num(final_reward, i, col::FINAL_REWARD, i)?,
            total_reward: num(total_reward, i, col::TOTAL_REWARD, i)?,
            success: flag(success, i, col::SUCCESS)?,
            terminated: flag(terminated, i, col::TERMINATED)?,
            truncated: flag(truncated, i, col::TRUNCATED)?,
            error_kind: opt_text(error_kind, i),
            error_message: opt_text(error_message, i),
            num_turns: num(num_turns, i, col::NUM_TURNS, i)?,
            num_tool_calls: num(num_tool_calls, i, col::NUM_TOOL_CALLS, i)?,
            num_tool_errors: num(num_tool_errors, i, col::NUM_TOOL_ERRORS, i)?,
            policy: text(policy, i, col::POLICY, i)?,
            user_policy: user_policy.and_then(|a| opt_text(a, i)),
            user_turns: turns,
            wall_time_s: num(wall_time_s, i, col::WALL_TIME_S, i)?,
            info: text(info, i, col::INFO, i)?,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, Schema};

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
                },
                crate::trajectory::PolicyTurn {
                    raw_output: String::new(),
                    parser: "none".into(),
                    format_error: None,
                    prompt_tokens: 20,
                    completion_tokens: 4,
                    latency_s: 0.0,
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
                !crate::store::schema::ADDED_COLUMNS.contains(&name.as_str())
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
        let idx = batch.schema().index_of(col::POLICY).unwrap();
        fields[idx] = fields[idx].clone().with_nullable(true);
        let mut columns = batch.columns().to_vec();
        columns[idx] = Arc::new(StringArray::from(vec![None::<&str>]));
        let relaxed = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let err = from_record_batch(&relaxed).unwrap_err().to_string();
        assert!(err.contains("`policy`") && err.contains("row 0"), "{err}");
    }
}
