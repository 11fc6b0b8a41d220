//! The token-usage and per-turn policy columns (`prompt_tokens`, `completion_tokens`, `policy_turns`):
//! encoding and decoding, kept apart from the main batch code.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Float64Array, ListArray, RecordBatch, StringArray, StructArray, UInt32Array,
    UInt64Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

use super::schema::{col, list_item, policy_turn_fields, turn};
use super::{Result, StoreError};
use crate::trajectory::{PolicyTurn, Trajectory};

fn too_large() -> StoreError {
    StoreError::Schema(format!(
        "column `{}` holds more than 2 GiB (or 2^31 items) in one batch; write fewer rows per batch",
        col::POLICY_TURNS
    ))
}

fn offsets_of<'a>(values: impl Iterator<Item = &'a str>) -> Result<(Vec<i32>, Vec<u8>)> {
    let mut offsets = vec![0i32];
    let mut data = Vec::new();
    for value in values {
        data.extend_from_slice(value.as_bytes());
        offsets.push(i32::try_from(data.len()).map_err(|_| too_large())?);
    }
    Ok((offsets, data))
}

fn utf8(values: Vec<&str>, nulls: Option<Vec<bool>>) -> Result<ArrayRef> {
    let (offsets, data) = offsets_of(values.into_iter())?;
    Ok(Arc::new(StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        data.into(),
        nulls.map(NullBuffer::from),
    )?))
}

/// The three columns, in schema order.
pub(crate) fn encode(rows: &[Trajectory]) -> Result<[ArrayRef; 3]> {
    let turns: Vec<&PolicyTurn> = rows.iter().flat_map(|r| &r.policy_turns).collect();
    let mut list_offsets = vec![0i32];
    let mut total = 0usize;
    for row in rows {
        total += row.policy_turns.len();
        list_offsets.push(i32::try_from(total).map_err(|_| too_large())?);
    }
    let any_null = turns.iter().any(|t| t.format_error.is_none());
    let format_error_nulls = any_null.then(|| {
        turns
            .iter()
            .map(|t| t.format_error.is_some())
            .collect::<Vec<_>>()
    });
    let structs = StructArray::try_new(
        policy_turn_fields(),
        vec![
            utf8(turns.iter().map(|t| t.raw_output.as_str()).collect(), None)?,
            utf8(turns.iter().map(|t| t.parser.as_str()).collect(), None)?,
            utf8(
                turns
                    .iter()
                    .map(|t| t.format_error.as_deref().unwrap_or(""))
                    .collect(),
                format_error_nulls,
            )?,
            Arc::new(UInt32Array::from_iter_values(
                turns.iter().map(|t| t.prompt_tokens),
            )),
            Arc::new(UInt32Array::from_iter_values(
                turns.iter().map(|t| t.completion_tokens),
            )),
            Arc::new(Float64Array::from_iter_values(
                turns.iter().map(|t| t.latency_s),
            )),
        ],
        None,
    )?;
    let list = ListArray::try_new(
        list_item(DataType::Struct(policy_turn_fields())),
        OffsetBuffer::new(ScalarBuffer::from(list_offsets)),
        Arc::new(structs),
        None,
    )?;
    Ok([
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.prompt_tokens),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.completion_tokens),
        )),
        Arc::new(list),
    ])
}

/// Decoded views of the three columns; each is absent in files written before them.
pub(crate) struct Columns<'a> {
    prompt: Option<&'a UInt64Array>,
    completion: Option<&'a UInt64Array>,
    turns: Option<TurnColumns<'a>>,
}

struct TurnColumns<'a> {
    list: &'a ListArray,
    structs: &'a StructArray,
    raw_output: &'a StringArray,
    parser: &'a StringArray,
    format_error: &'a StringArray,
    prompt_tokens: &'a UInt32Array,
    completion_tokens: &'a UInt32Array,
    latency_s: &'a Float64Array,
}

fn typed<'a, T: Array + 'static>(array: Option<&'a ArrayRef>, name: &str) -> Result<&'a T> {
    array
        .and_then(|a| a.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            StoreError::Schema(format!(
                "column `{name}` is missing or has an unexpected type"
            ))
        })
}

fn null_error(column: &str, row: usize) -> StoreError {
    StoreError::Schema(format!(
        "column `{column}` is not nullable but row {row} holds a null"
    ))
}

impl<'a> Columns<'a> {
    pub(crate) fn new(batch: &'a RecordBatch) -> Result<Self> {
        let optional = |name: &str| batch.column_by_name(name);
        let turns = match optional(col::POLICY_TURNS) {
            None => None,
            Some(column) => {
                let list: &ListArray = typed(Some(column), col::POLICY_TURNS)?;
                let structs: &StructArray = typed(Some(list.values()), col::POLICY_TURNS)?;
                let field = |name: &str| structs.column_by_name(name);
                let path = |name: &str| format!("{}.{name}", col::POLICY_TURNS);
                Some(TurnColumns {
                    list,
                    structs,
                    raw_output: typed(field(turn::RAW_OUTPUT), &path(turn::RAW_OUTPUT))?,
                    parser: typed(field(turn::PARSER), &path(turn::PARSER))?,
                    format_error: typed(field(turn::FORMAT_ERROR), &path(turn::FORMAT_ERROR))?,
                    prompt_tokens: typed(field(turn::PROMPT_TOKENS), &path(turn::PROMPT_TOKENS))?,
                    completion_tokens: typed(
                        field(turn::COMPLETION_TOKENS),
                        &path(turn::COMPLETION_TOKENS),
                    )?,
                    latency_s: typed(field(turn::LATENCY_S), &path(turn::LATENCY_S))?,
                })
            }
        };
        Ok(Columns {
            prompt: optional(col::PROMPT_TOKENS)
                .map(|c| typed(Some(c), col::PROMPT_TOKENS))
                .transpose()?,
            completion: optional(col::COMPLETION_TOKENS)
                .map(|c| typed(Some(c), col::COMPLETION_TOKENS))
                .transpose()?,
            turns,
        })
    }

    /// Row `i`'s `(prompt_tokens, completion_tokens, policy_turns)`; zeros and no turns when absent.
    pub(crate) fn row(&self, i: usize) -> Result<(u64, u64, Vec<PolicyTurn>)> {
        let count = |a: Option<&UInt64Array>, name: &str| -> Result<u64> {
            match a {
                None => Ok(0),
                Some(a) if a.is_null(i) => Err(null_error(name, i)),
                Some(a) => Ok(a.value(i)),
            }
        };
        let prompt = count(self.prompt, col::PROMPT_TOKENS)?;
        let completion = count(self.completion, col::COMPLETION_TOKENS)?;
        let mut turns = Vec::new();
        if let Some(t) = &self.turns {
            if t.list.is_null(i) {
                return Err(null_error(col::POLICY_TURNS, i));
            }
            let offsets = t.list.value_offsets();
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                let required = |a: &dyn Array, name: &str| {
                    if t.structs.is_null(j) || a.is_null(j) {
                        Err(null_error(&format!("{}.{name}", col::POLICY_TURNS), i))
                    } else {
                        Ok(())
                    }
                };
                required(t.raw_output, turn::RAW_OUTPUT)?;
                required(t.parser, turn::PARSER)?;
                required(t.prompt_tokens, turn::PROMPT_TOKENS)?;
                required(t.completion_tokens, turn::COMPLETION_TOKENS)?;
                required(t.latency_s, turn::LATENCY_S)?;
                turns.push(PolicyTurn {
                    raw_output: t.raw_output.value(j).to_string(),
                    parser: t.parser.value(j).to_string(),
                    format_error: t
                        .format_error
                        .is_valid(j)
                        .then(|| t.format_error.value(j).to_string()),
                    prompt_tokens: t.prompt_tokens.value(j),
                    completion_tokens: t.completion_tokens.value(j),
                    latency_s: t.latency_s.value(j),
                });
            }
        }
        Ok((prompt, completion, turns))
    }
}
