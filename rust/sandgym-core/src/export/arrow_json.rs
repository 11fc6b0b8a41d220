//! JSON rows to Arrow arrays for a given schema: the small converter the exporters write through.
//!
//! Supports the types the trainer layouts need (utf8, int64, uint64/32/8, float64, bool, list, struct) and
//! JSON-valued utf8 columns carrying Arrow's canonical `arrow.json` extension type: such a column
//! holds any JSON value, stored as its JSON text; pyarrow reads it as `pa.json_()` and Hugging Face
//! `datasets` as its `Json()` feature (decoded back to Python objects).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StringArray, StructArray,
    UInt8Array, UInt32Array, UInt64Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Fields};
use serde_json::Value;

use crate::error::{Error, Result};

const EXTENSION_NAME: &str = "ARROW:extension:name";
const EXTENSION_METADATA: &str = "ARROW:extension:metadata";

/// A utf8 field holding JSON values (Arrow's canonical `arrow.json` extension type).
pub fn json_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable).with_metadata(HashMap::from([
        (EXTENSION_NAME.to_string(), "arrow.json".to_string()),
        (EXTENSION_METADATA.to_string(), String::new()),
    ]))
}

/// Infers a nested Arrow field for JSON values, for readers that need real nested types instead of
/// JSON text (pandas-based loaders such as verl's): objects become structs over the union of their keys
/// (missing keys read as null), arrays lists, numbers int64 or float64. Values whose kinds conflict, and
/// empty objects (Parquet has no empty groups), fall back to a JSON-text field.
pub fn infer_field(name: &str, values: &[&Value]) -> Field {
    let present: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
    let json = || json_field(name, true);
    if present.is_empty() {
        return Field::new(name, DataType::Utf8, true);
    }
    if present.iter().all(|v| v.is_boolean()) {
        return Field::new(name, DataType::Boolean, true);
    }
    if present.iter().all(|v| v.is_i64()) {
        return Field::new(name, DataType::Int64, true);
    }
    if present.iter().all(|v| v.is_number()) {
        return Field::new(name, DataType::Float64, true);
    }
    if present.iter().all(|v| v.is_string()) {
        return Field::new(name, DataType::Utf8, true);
    }
    if present.iter().all(|v| v.is_array()) {
        let items: Vec<&Value> = present
            .iter()
            .flat_map(|v| v.as_array().into_iter().flatten())
            .collect();
        let item = infer_field("item", &items);
        if items.iter().any(|v| v.is_null()) {
            return json();
        }
        return Field::new(
            name,
            DataType::List(Arc::new(item.with_nullable(false))),
            true,
        );
    }
    if present.iter().all(|v| v.is_object()) {
        let mut keys: Vec<&String> = Vec::new();
        for v in &present {
            for key in v.as_object().into_iter().flat_map(|m| m.keys()) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        if keys.is_empty() {
            return json();
        }
        let null = Value::Null;
        let fields: Vec<Field> = keys
            .iter()
            .map(|key| {
                let children: Vec<&Value> = present
                    .iter()
                    .map(|v| v.get(key.as_str()).unwrap_or(&null))
                    .collect();
                infer_field(key, &children)
            })
            .collect();
        return Field::new(name, DataType::Struct(Fields::from(fields)), true);
    }
    json()
}

fn is_json(field: &Field) -> bool {
    field.metadata().get(EXTENSION_NAME).map(String::as_str) == Some("arrow.json")
}

fn mismatch(path: &str, expected: &str, value: &Value) -> Error {
    let mut shown = value.to_string();
    if shown.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    Error::InvalidArgument(format!(
        "export column `{path}`: expected {expected}, got {shown}"
    ))
}

fn arrow_err(err: arrow_schema::ArrowError) -> Error {
    Error::Storage(format!("export: {err}"))
}

fn nulls(values: &[&Value]) -> Option<NullBuffer> {
    values
        .iter()
        .any(|v| v.is_null())
        .then(|| NullBuffer::from(values.iter().map(|v| !v.is_null()).collect::<Vec<_>>()))
}

/// Unsigned integers of type `T` (`null` for a null entry); a value out of `T`'s range is a mismatch.
fn unsigned<T: TryFrom<u64>>(values: &[&Value], path: &str) -> Result<Vec<Option<T>>> {
    let expected = format!(
        "an unsigned integer of {} bits",
        8 * std::mem::size_of::<T>()
    );
    values
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            v => v
                .as_u64()
                .and_then(|n| T::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| mismatch(path, &expected, v)),
        })
        .collect()
}

/// Builds the array of `field` from one JSON value per row (`null` for a null entry; a missing struct
/// key is null too).
pub fn build(field: &Field, values: &[&Value], path: &str) -> Result<ArrayRef> {
    if is_json(field) {
        let texts: Vec<Option<String>> = values
            .iter()
            .map(|v| (!v.is_null()).then(|| v.to_string()))
            .collect();
        return Ok(Arc::new(StringArray::from(texts)));
    }
    let array: ArrayRef = match field.data_type() {
        DataType::Utf8 => Arc::new(StringArray::from(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.as_str())),
                    other => Err(mismatch(path, "a string", other)),
                })
                .collect::<Result<Vec<_>>>()?,
        )),
        DataType::Int64 => Arc::new(Int64Array::from(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    v => v
                        .as_i64()
                        .map(Some)
                        .ok_or_else(|| mismatch(path, "an integer", v)),
                })
                .collect::<Result<Vec<_>>>()?,
        )),
        DataType::UInt64 => Arc::new(UInt64Array::from(unsigned::<u64>(values, path)?)),
        DataType::UInt32 => Arc::new(UInt32Array::from(unsigned::<u32>(values, path)?)),
        DataType::UInt8 => Arc::new(UInt8Array::from(unsigned::<u8>(values, path)?)),
        DataType::Float64 => Arc::new(Float64Array::from(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    v => v
                        .as_f64()
                        .map(Some)
                        .ok_or_else(|| mismatch(path, "a number", v)),
                })
                .collect::<Result<Vec<_>>>()?,
        )),
        DataType::Boolean => Arc::new(BooleanArray::from(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bool(b) => Ok(Some(*b)),
                    other => Err(mismatch(path, "a bool", other)),
                })
                .collect::<Result<Vec<_>>>()?,
        )),
        DataType::List(item) => {
            let mut offsets: Vec<i32> = Vec::with_capacity(values.len() + 1);
            offsets.push(0);
            let mut children: Vec<&Value> = Vec::new();
            for v in values {
                match v {
                    Value::Null => {}
                    Value::Array(items) => children.extend(items.iter()),
                    other => return Err(mismatch(path, "a list", other)),
                }
                let end = i32::try_from(children.len()).map_err(|_| {
                    Error::InvalidArgument(format!("export column `{path}`: too many items"))
                })?;
                offsets.push(end);
            }
            let child = build(item, &children, &format!("{path}.item"))?;
            Arc::new(
                ListArray::try_new(
                    item.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    child,
                    nulls(values),
                )
                .map_err(arrow_err)?,
            )
        }
        DataType::Struct(fields) => Arc::new(build_struct(fields, values, path)?),
        other => {
            return Err(Error::InvalidArgument(format!(
                "export column `{path}`: type {other} is not supported by the JSON converter"
            )));
        }
    };
    Ok(array)
}

fn build_struct(fields: &Fields, values: &[&Value], path: &str) -> Result<StructArray> {
    let null = Value::Null;
    let mut columns = Vec::with_capacity(fields.len());
    for field in fields {
        let mut children = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::Null => children.push(&null),
                Value::Object(map) => children.push(map.get(field.name()).unwrap_or(&null)),
                other => return Err(mismatch(path, "an object", other)),
            }
        }
        let child_path = if path.is_empty() {
            field.name().clone()
        } else {
            format!("{path}.{}", field.name())
        };
        columns.push(build(field, &children, &child_path)?);
    }
    StructArray::try_new(fields.clone(), columns, nulls(values)).map_err(arrow_err)
}

/// Builds a record batch of `schema` from rows (JSON objects keyed by column name).
pub fn to_batch(
    schema: &arrow_schema::SchemaRef,
    rows: &[Value],
) -> Result<arrow_array::RecordBatch> {
    let refs: Vec<&Value> = rows.iter().collect();
    let structs = build_struct(schema.fields(), &refs, "")?;
    let (_, columns, _) = structs.into_parts();
    arrow_array::RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_schema::Schema;
    use serde_json::json;

    #[test]
    fn inferred_fields_unite_object_keys_and_fall_back_to_json_text() {
        let a = json!({"name": "f", "parameters": {"properties": {"x": {"type": "string"}}}});
        let b = json!({"name": "g", "parameters": {"properties": {"y": {"type": "integer"}}, "required": ["y"]}});
        let odd = json!({"name": 3});
        let field = infer_field("tools", &[&a, &b]);
        let schema = Arc::new(Schema::new(vec![field]));
        let batch = to_batch(&schema, &[json!({"tools": a}), json!({"tools": b})]).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let mixed = infer_field("t", &[&json!({"name": "f"}), &odd]);
        let DataType::Struct(fields) = mixed.data_type() else {
            panic!("{mixed:?}")
        };
        assert!(is_json(&fields[0]));
        assert!(is_json(&infer_field("e", &[&json!({})])));
    }

    #[test]
    fn nested_rows_convert_and_mismatches_are_named() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, false),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new(
                    "item",
                    DataType::Struct(Fields::from(vec![
                        Field::new("x", DataType::Int64, true),
                        json_field("j", true),
                    ])),
                    false,
                ))),
                true,
            ),
        ]));
        let rows = vec![
            json!({"a": "r0", "l": [{"x": 1, "j": {"k": [1, 2]}}, {"x": null}]}),
            json!({"a": "r1", "l": null}),
        ];
        let batch = to_batch(&schema, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert!(batch.column(1).is_null(1));
        let list = batch
            .column(1)
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        let items = list.value(0);
        let items = items.as_any().downcast_ref::<StructArray>().unwrap();
        let j = items
            .column_by_name("j")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(j.value(0), r#"{"k":[1,2]}"#);
        assert!(j.is_null(1));

        let bad = vec![json!({"a": 3, "l": []})];
        let err = to_batch(&schema, &bad).unwrap_err().to_string();
        assert!(
            err.contains("`a`") && err.contains("expected a string"),
            "{err}"
        );
    }
}
