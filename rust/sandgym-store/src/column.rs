//! How each Rust type a trajectory field has becomes an Arrow column, and back.
//!
//! The table of columns (`columns.rs`) names only the fields; the field's type picks its [`Column`] impl,
//! and with it the Arrow type, the nullability, the encoder and the decoder. Encoders fill flat buffers
//! (offsets + child values) in one pass and wrap them as arrays at the end, which is much cheaper than
//! Arrow's nested builders. Decoders reject a null wherever the schema allows none, naming the column and
//! the row, because other writers (pandas, polars) make every field nullable.

use std::sync::Arc;

use arrow_array::types::{Float64Type, UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, Float64Array, ListArray, PrimitiveArray,
    StringArray, StructArray, UInt32Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, Fields};
use sandgym_abi::{Message, Role, ToolCall};

use crate::trajectory::{PolicyTurn, TurnChunk};
use crate::{Result, StoreError};

/// A Rust value type that is stored as one Arrow column of the trajectory table.
pub(crate) trait Column: Sized {
    /// The column's Arrow type.
    fn data_type() -> DataType;
    /// Whether the column holds nulls (`Option` fields).
    const NULLABLE: bool = false;
    /// One array with a value per row.
    fn encode<'a, I>(column: &'static str, values: I) -> Result<ArrayRef>
    where
        Self: 'a,
        I: ExactSizeIterator<Item = &'a Self> + Clone;
    /// The typed view a column is read through.
    type Reader<'a>;
    /// Downcasts a column read back (`check_schema` has already compared its type).
    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<Self::Reader<'a>>;
    /// The value of row `i`.
    fn read(reader: &Self::Reader<'_>, i: usize, column: &'static str) -> Result<Self>;
}

pub(crate) fn too_large(column: &str) -> StoreError {
    StoreError::Schema(format!(
        "column `{column}` holds more than 2 GiB (or 2^31 items) in one batch, beyond Arrow's 32-bit \
         offsets; write fewer rows per batch"
    ))
}

pub(crate) fn null_error(column: &str, row: usize) -> StoreError {
    StoreError::Schema(format!(
        "column `{column}` is not nullable but row {row} holds a null"
    ))
}

/// Downcasts a column (or struct field) found by name.
pub(crate) fn typed<'a, T: Array + 'static>(
    array: Option<&'a ArrayRef>,
    column: &str,
) -> Result<&'a T> {
    array
        .and_then(|a| a.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            StoreError::Schema(format!(
                "column `{column}` is missing or has an unexpected type"
            ))
        })
}

/// The non-null list item field of every list column (`item`, Arrow's default name).
pub(crate) fn list_item(data_type: DataType) -> FieldRef {
    Arc::new(Field::new_list_field(data_type, false))
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

/// A utf8 column under construction: 32-bit offsets, concatenated bytes, validity once a null appears.
struct Utf8Buf {
    column: &'static str,
    offsets: Vec<i32>,
    data: Vec<u8>,
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
        let array = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.offsets)),
            Buffer::from_vec(self.data),
            self.validity.map(NullBuffer::from),
        )?;
        Ok(Arc::new(array))
    }
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

/// A non-nullable primitive value.
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

impl Column for String {
    fn data_type() -> DataType {
        DataType::Utf8
    }

    fn encode<'a, I>(column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        let bytes = values.clone().map(String::len).sum();
        let mut buf = Utf8Buf::new(column, values.len(), bytes);
        for value in values {
            buf.push(value)?;
        }
        buf.finish()
    }

    type Reader<'a> = &'a StringArray;

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<&'a StringArray> {
        typed(Some(array), column)
    }

    fn read(reader: &&StringArray, i: usize, column: &'static str) -> Result<Self> {
        text(reader, i, column, i)
    }
}

impl Column for Option<String> {
    fn data_type() -> DataType {
        DataType::Utf8
    }

    const NULLABLE: bool = true;

    fn encode<'a, I>(column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        let bytes = values.clone().flatten().map(String::len).sum();
        let mut buf = Utf8Buf::new(column, values.len(), bytes);
        for value in values {
            buf.push_opt(value.as_deref())?;
        }
        buf.finish()
    }

    type Reader<'a> = &'a StringArray;

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<&'a StringArray> {
        typed(Some(array), column)
    }

    fn read(reader: &&StringArray, i: usize, _column: &'static str) -> Result<Self> {
        Ok(opt_text(reader, i))
    }
}

/// The fixed-width Rust types stored as Arrow primitives.
pub(crate) trait Primitive: Copy + 'static {
    type Arrow: ArrowPrimitiveType<Native = Self>;
    const DATA_TYPE: DataType;
}

impl Primitive for u64 {
    type Arrow = UInt64Type;
    const DATA_TYPE: DataType = DataType::UInt64;
}

impl Primitive for u32 {
    type Arrow = UInt32Type;
    const DATA_TYPE: DataType = DataType::UInt32;
}

impl Primitive for f64 {
    type Arrow = Float64Type;
    const DATA_TYPE: DataType = DataType::Float64;
}

macro_rules! primitive_columns {
    ($($rust:ty),*) => {$(
        impl Column for $rust {
            fn data_type() -> DataType {
                <$rust as Primitive>::DATA_TYPE
            }

            fn encode<'a, I>(_column: &'static str, values: I) -> Result<ArrayRef>
            where
                I: ExactSizeIterator<Item = &'a Self> + Clone,
            {
                Ok(Arc::new(PrimitiveArray::<<$rust as Primitive>::Arrow>::from_iter_values(
                    values.copied(),
                )))
            }

            type Reader<'a> = &'a PrimitiveArray<<$rust as Primitive>::Arrow>;

            fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<Self::Reader<'a>> {
                typed(Some(array), column)
            }

            fn read(reader: &Self::Reader<'_>, i: usize, column: &'static str) -> Result<Self> {
                num(reader, i, column, i)
            }
        }
    )*};
}

primitive_columns!(u64, u32, f64);

impl Column for Option<f64> {
    fn data_type() -> DataType {
        DataType::Float64
    }

    const NULLABLE: bool = true;

    fn encode<'a, I>(_column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        Ok(Arc::new(Float64Array::from_iter(values.copied())))
    }

    type Reader<'a> = &'a Float64Array;

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<&'a Float64Array> {
        typed(Some(array), column)
    }

    fn read(reader: &&Float64Array, i: usize, _column: &'static str) -> Result<Self> {
        Ok(reader.is_valid(i).then(|| reader.value(i)))
    }
}

impl Column for bool {
    fn data_type() -> DataType {
        DataType::Boolean
    }

    fn encode<'a, I>(_column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        Ok(Arc::new(BooleanArray::from(
            values.copied().collect::<Vec<_>>(),
        )))
    }

    type Reader<'a> = &'a BooleanArray;

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<&'a BooleanArray> {
        typed(Some(array), column)
    }

    fn read(reader: &&BooleanArray, i: usize, column: &'static str) -> Result<Self> {
        if reader.is_null(i) {
            return Err(null_error(column, i));
        }
        Ok(reader.value(i))
    }
}

/// A list of primitives (`turn_rewards`, `user_turns`).
impl<T: Primitive> Column for Vec<T> {
    fn data_type() -> DataType {
        DataType::List(list_item(T::DATA_TYPE))
    }

    fn encode<'a, I>(column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        let mut offsets = Offsets::new(column, values.len());
        let mut items = Vec::with_capacity(values.clone().map(Vec::len).sum());
        for list in values {
            items.extend_from_slice(list);
            offsets.close_at(items.len())?;
        }
        Ok(Arc::new(ListArray::try_new(
            list_item(T::DATA_TYPE),
            offsets.finish(),
            Arc::new(PrimitiveArray::<T::Arrow>::from_iter_values(items)),
            None,
        )?))
    }

    type Reader<'a> = (&'a ListArray, &'a PrimitiveArray<T::Arrow>);

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<Self::Reader<'a>> {
        let list: &ListArray = typed(Some(array), column)?;
        Ok((list, typed(Some(list.values()), column)?))
    }

    fn read(reader: &Self::Reader<'_>, i: usize, column: &'static str) -> Result<Self> {
        let (list, items) = reader;
        list_range(list, i, column, i)?
            .map(|j| num(items, j, &format!("{column}.item"), i))
            .collect()
    }
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
pub(crate) struct MessageColumns<'a> {
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

/// The conversation (`messages`): a list of message structs, each with a list of tool-call structs.
impl Column for Vec<Message> {
    fn data_type() -> DataType {
        DataType::List(list_item(DataType::Struct(message_fields())))
    }

    fn encode<'a, I>(column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        let messages = || values.clone().flatten();
        let n_messages = messages().count();
        let n_calls = messages().map(|m| m.tool_calls.len()).sum();
        let content_bytes = messages().map(|m| m.content.len()).sum();

        let mut message_offsets = Offsets::new(column, values.len());
        let mut role = Utf8Buf::new("messages.role", n_messages, n_messages * 6);
        let mut content = Utf8Buf::new("messages.content", n_messages, content_bytes);
        let mut call_offsets = Offsets::new("messages.tool_calls", n_messages);
        let mut call_id = Utf8Buf::new("messages.tool_calls.id", n_calls, 0);
        let mut call_name = Utf8Buf::new("messages.tool_calls.name", n_calls, 0);
        let mut call_arguments = Utf8Buf::new("messages.tool_calls.arguments", n_calls, 0);
        let mut tool_call_id = Utf8Buf::new("messages.tool_call_id", n_messages, 0);
        let mut message_name = Utf8Buf::new("messages.name", n_messages, 0);
        for conversation in values {
            for message in conversation {
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
        let structs = StructArray::try_new(
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
        Ok(Arc::new(ListArray::try_new(
            list_item(DataType::Struct(message_fields())),
            message_offsets.finish(),
            Arc::new(structs),
            None,
        )?))
    }

    type Reader<'a> = MessageColumns<'a>;

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<MessageColumns<'a>> {
        let list: &ListArray = typed(Some(array), column)?;
        let structs: &StructArray = typed(Some(list.values()), column)?;
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

    fn read(c: &MessageColumns<'_>, row: usize, column: &'static str) -> Result<Self> {
        let range = list_range(c.list, row, column, row)?;
        let mut messages = Vec::with_capacity(range.len());
        for m in range {
            if c.structs.is_null(m) {
                return Err(null_error("messages.item", row));
            }
            let mut tool_calls = Vec::new();
            for k in list_range(c.calls, m, "messages.tool_calls", row)? {
                if c.calls_struct.is_null(k) {
                    return Err(null_error("messages.tool_calls.item", row));
                }
                tool_calls.push(ToolCall {
                    id: text(c.call_id, k, "messages.tool_calls.id", row)?,
                    name: text(c.call_name, k, "messages.tool_calls.name", row)?,
                    arguments: text(c.call_arguments, k, "messages.tool_calls.arguments", row)?,
                });
            }
            let role = text(c.role, m, "messages.role", row)?;
            messages.push(Message {
                role: parse_role(&role, row)?,
                content: text(c.content, m, "messages.content", row)?,
                tool_calls,
                tool_call_id: opt_text(c.tool_call_id, m),
                name: opt_text(c.name, m),
            });
        }
        Ok(messages)
    }
}

/// Field names inside the `policy_turns` list's struct.
pub(crate) mod turn {
    pub const RAW_OUTPUT: &str = "raw_output";
    pub const PARSER: &str = "parser";
    pub const FORMAT_ERROR: &str = "format_error";
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    pub const COMPLETION_TOKENS: &str = "completion_tokens";
    pub const LATENCY_S: &str = "latency_s";
    pub const PROMPT_IDS: &str = "prompt_ids";
    pub const COMPLETION_IDS: &str = "completion_ids";
    pub const COMPLETION_LOGPROBS: &str = "completion_logprobs";
    pub const CHUNKS: &str = "chunks";
    pub const CHUNKS_TRUNCATED: &str = "chunks_truncated";
}

/// Field names inside a turn's `chunks` list's struct.
pub(crate) mod chunk {
    pub const PROMPT_IDS: &str = "prompt_ids";
    pub const RESPONSE_IDS: &str = "response_ids";
    pub const RESPONSE_LOGPROBS: &str = "response_logprobs";
}

/// Fields of the `policy_turns` struct added after its first release: files written before lack them, and
/// they read as empty lists (and `chunks_truncated` as false).
pub(crate) const ADDED_TURN_FIELDS: [&str; 5] = [
    turn::PROMPT_IDS,
    turn::COMPLETION_IDS,
    turn::COMPLETION_LOGPROBS,
    turn::CHUNKS,
    turn::CHUNKS_TRUNCATED,
];

/// A list-of-struct column: one list per row, `lens` items each, whose struct fields are `children` (one
/// array per field over all items of all rows, in order).
fn struct_list(
    column: &'static str,
    lens: impl ExactSizeIterator<Item = usize>,
    fields: Fields,
    children: Vec<ArrayRef>,
) -> Result<ArrayRef> {
    let mut offsets = Offsets::new(column, lens.len());
    let mut total = 0;
    for len in lens {
        total += len;
        offsets.close_at(total)?;
    }
    let item = list_item(DataType::Struct(fields.clone()));
    let structs = StructArray::try_new(fields, children, None)?;
    Ok(Arc::new(ListArray::try_new(
        item,
        offsets.finish(),
        Arc::new(structs),
        None,
    )?))
}

/// The fields of one chunk: three lists.
fn chunk_fields() -> Fields {
    Fields::from(vec![
        Field::new(chunk::PROMPT_IDS, <Vec<u32>>::data_type(), false),
        Field::new(chunk::RESPONSE_IDS, <Vec<u32>>::data_type(), false),
        Field::new(chunk::RESPONSE_LOGPROBS, <Vec<f64>>::data_type(), false),
    ])
}

/// Decoded views of a `chunks` column's children.
pub(crate) struct ChunkColumns<'a> {
    list: &'a ListArray,
    prompt_ids: <Vec<u32> as Column>::Reader<'a>,
    response_ids: <Vec<u32> as Column>::Reader<'a>,
    response_logprobs: <Vec<f64> as Column>::Reader<'a>,
}

/// A turn's chunks (`policy_turns.chunks`): a list of structs of three lists.
impl Column for Vec<TurnChunk> {
    fn data_type() -> DataType {
        DataType::List(list_item(DataType::Struct(chunk_fields())))
    }

    fn encode<'a, I>(column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        let all: Vec<&TurnChunk> = values.clone().flatten().collect();
        let children = vec![
            <Vec<u32>>::encode(column, all.iter().map(|c| &c.prompt_ids))?,
            <Vec<u32>>::encode(column, all.iter().map(|c| &c.response_ids))?,
            <Vec<f64>>::encode(column, all.iter().map(|c| &c.response_logprobs))?,
        ];
        struct_list(column, values.map(Vec::len), chunk_fields(), children)
    }

    type Reader<'a> = ChunkColumns<'a>;

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<ChunkColumns<'a>> {
        let list: &ListArray = typed(Some(array), column)?;
        let structs: &StructArray = typed(Some(list.values()), column)?;
        let field = |name: &str| {
            structs
                .column_by_name(name)
                .ok_or_else(|| StoreError::Schema(format!("column `{column}.{name}` is missing")))
        };
        Ok(ChunkColumns {
            list,
            prompt_ids: <Vec<u32>>::reader(field(chunk::PROMPT_IDS)?, column)?,
            response_ids: <Vec<u32>>::reader(field(chunk::RESPONSE_IDS)?, column)?,
            response_logprobs: <Vec<f64>>::reader(field(chunk::RESPONSE_LOGPROBS)?, column)?,
        })
    }

    fn read(c: &ChunkColumns<'_>, row: usize, column: &'static str) -> Result<Self> {
        list_range(c.list, row, column, row)?
            .map(|j| {
                Ok(TurnChunk {
                    prompt_ids: <Vec<u32>>::read(&c.prompt_ids, j, column)?,
                    response_ids: <Vec<u32>>::read(&c.response_ids, j, column)?,
                    response_logprobs: <Vec<f64>>::read(&c.response_logprobs, j, column)?,
                })
            })
            .collect()
    }
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
        Field::new(turn::PROMPT_IDS, <Vec<u32>>::data_type(), false),
        Field::new(turn::COMPLETION_IDS, <Vec<u32>>::data_type(), false),
        Field::new(turn::COMPLETION_LOGPROBS, <Vec<f64>>::data_type(), false),
        Field::new(turn::CHUNKS, <Vec<TurnChunk>>::data_type(), false),
        Field::new(turn::CHUNKS_TRUNCATED, DataType::Boolean, false),
    ])
}

/// Decoded views of the `policy_turns` column's children.
pub(crate) struct TurnColumns<'a> {
    list: &'a ListArray,
    structs: &'a StructArray,
    raw_output: &'a StringArray,
    parser: &'a StringArray,
    format_error: &'a StringArray,
    prompt_tokens: &'a UInt32Array,
    completion_tokens: &'a UInt32Array,
    latency_s: &'a Float64Array,
    prompt_ids: Option<<Vec<u32> as Column>::Reader<'a>>,
    completion_ids: Option<<Vec<u32> as Column>::Reader<'a>>,
    completion_logprobs: Option<<Vec<f64> as Column>::Reader<'a>>,
    chunks: Option<ChunkColumns<'a>>,
    chunks_truncated: Option<&'a BooleanArray>,
}

/// How the policy produced each agent turn (`policy_turns`): a list of structs.
impl Column for Vec<PolicyTurn> {
    fn data_type() -> DataType {
        DataType::List(list_item(DataType::Struct(policy_turn_fields())))
    }

    fn encode<'a, I>(column: &'static str, values: I) -> Result<ArrayRef>
    where
        I: ExactSizeIterator<Item = &'a Self> + Clone,
    {
        // Each field is encoded as the top-level columns of its type are, over all turns of all rows.
        let all: Vec<&PolicyTurn> = values.clone().flatten().collect();
        let children = vec![
            String::encode("policy_turns.raw_output", all.iter().map(|t| &t.raw_output))?,
            String::encode("policy_turns.parser", all.iter().map(|t| &t.parser))?,
            <Option<String>>::encode(
                "policy_turns.format_error",
                all.iter().map(|t| &t.format_error),
            )?,
            u32::encode(
                "policy_turns.prompt_tokens",
                all.iter().map(|t| &t.prompt_tokens),
            )?,
            u32::encode(
                "policy_turns.completion_tokens",
                all.iter().map(|t| &t.completion_tokens),
            )?,
            f64::encode("policy_turns.latency_s", all.iter().map(|t| &t.latency_s))?,
            <Vec<u32>>::encode("policy_turns.prompt_ids", all.iter().map(|t| &t.prompt_ids))?,
            <Vec<u32>>::encode(
                "policy_turns.completion_ids",
                all.iter().map(|t| &t.completion_ids),
            )?,
            <Vec<f64>>::encode(
                "policy_turns.completion_logprobs",
                all.iter().map(|t| &t.completion_logprobs),
            )?,
            <Vec<TurnChunk>>::encode("policy_turns.chunks", all.iter().map(|t| &t.chunks))?,
            bool::encode(
                "policy_turns.chunks_truncated",
                all.iter().map(|t| &t.chunks_truncated),
            )?,
        ];
        struct_list(column, values.map(Vec::len), policy_turn_fields(), children)
    }

    type Reader<'a> = TurnColumns<'a>;

    fn reader<'a>(array: &'a ArrayRef, column: &'static str) -> Result<TurnColumns<'a>> {
        let list: &ListArray = typed(Some(array), column)?;
        let structs: &StructArray = typed(Some(list.values()), column)?;
        let field = |name: &str| -> Result<&'a ArrayRef> {
            structs
                .column_by_name(name)
                .ok_or_else(|| StoreError::Schema(format!("column `{column}.{name}` is missing")))
        };
        let path = |name: &str| format!("{column}.{name}");
        Ok(TurnColumns {
            list,
            structs,
            raw_output: typed(Some(field(turn::RAW_OUTPUT)?), &path(turn::RAW_OUTPUT))?,
            parser: typed(Some(field(turn::PARSER)?), &path(turn::PARSER))?,
            format_error: typed(Some(field(turn::FORMAT_ERROR)?), &path(turn::FORMAT_ERROR))?,
            prompt_tokens: typed(
                Some(field(turn::PROMPT_TOKENS)?),
                &path(turn::PROMPT_TOKENS),
            )?,
            completion_tokens: typed(
                Some(field(turn::COMPLETION_TOKENS)?),
                &path(turn::COMPLETION_TOKENS),
            )?,
            latency_s: typed(Some(field(turn::LATENCY_S)?), &path(turn::LATENCY_S))?,
            prompt_ids: structs
                .column_by_name(turn::PROMPT_IDS)
                .map(|a| <Vec<u32>>::reader(a, "policy_turns.prompt_ids"))
                .transpose()?,
            completion_ids: structs
                .column_by_name(turn::COMPLETION_IDS)
                .map(|a| <Vec<u32>>::reader(a, "policy_turns.completion_ids"))
                .transpose()?,
            completion_logprobs: structs
                .column_by_name(turn::COMPLETION_LOGPROBS)
                .map(|a| <Vec<f64>>::reader(a, "policy_turns.completion_logprobs"))
                .transpose()?,
            chunks: structs
                .column_by_name(turn::CHUNKS)
                .map(|a| <Vec<TurnChunk>>::reader(a, "policy_turns.chunks"))
                .transpose()?,
            chunks_truncated: structs
                .column_by_name(turn::CHUNKS_TRUNCATED)
                .map(|a| bool::reader(a, "policy_turns.chunks_truncated"))
                .transpose()?,
        })
    }

    fn read(t: &TurnColumns<'_>, row: usize, column: &'static str) -> Result<Self> {
        let mut turns = Vec::new();
        for j in list_range(t.list, row, column, row)? {
            let required = |a: &dyn Array, name: &str| {
                if t.structs.is_null(j) || a.is_null(j) {
                    Err(null_error(&format!("{column}.{name}"), row))
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
                format_error: opt_text(t.format_error, j),
                prompt_tokens: t.prompt_tokens.value(j),
                completion_tokens: t.completion_tokens.value(j),
                latency_s: t.latency_s.value(j),
                prompt_ids: match &t.prompt_ids {
                    Some(reader) => <Vec<u32>>::read(reader, j, "policy_turns.prompt_ids")?,
                    None => Vec::new(),
                },
                completion_ids: match &t.completion_ids {
                    Some(reader) => <Vec<u32>>::read(reader, j, "policy_turns.completion_ids")?,
                    None => Vec::new(),
                },
                completion_logprobs: match &t.completion_logprobs {
                    Some(reader) => {
                        <Vec<f64>>::read(reader, j, "policy_turns.completion_logprobs")?
                    }
                    None => Vec::new(),
                },
                chunks: match &t.chunks {
                    Some(reader) => <Vec<TurnChunk>>::read(reader, j, "policy_turns.chunks")?,
                    None => Vec::new(),
                },
                chunks_truncated: match &t.chunks_truncated {
                    Some(reader) => bool::read(reader, j, "policy_turns.chunks_truncated")?,
                    None => false,
                },
            });
        }
        Ok(turns)
    }
}
