//! The trajectory table's Arrow schema (built from the column list in `columns.rs`), and the check that a
//! schema read from elsewhere is ours.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Schema, SchemaRef};

use crate::column::ADDED_TURN_FIELDS;
use crate::columns::{ADDED_COLUMNS, fields};
use crate::{Result, StoreError};

/// Schema-level metadata key holding the layout version.
pub const SCHEMA_VERSION_KEY: &str = "sandgym.schema_version";
/// The layout version this build writes and reads. Bump it on any incompatible column change.
pub const SCHEMA_VERSION: &str = "1";

fn build_schema() -> Schema {
    let metadata = HashMap::from([(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())]);
    Schema::new_with_metadata(fields(), metadata)
}

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
/// nullable; nulls are then rejected value by value when decoding), structs may carry extra fields, and
/// struct fields added since the first release may be absent.
fn compatible(expected: &DataType, actual: &DataType) -> bool {
    match (expected, actual) {
        (DataType::List(e), DataType::List(a)) => compatible(e.data_type(), a.data_type()),
        (DataType::Struct(e), DataType::Struct(a)) => {
            e.iter()
                .all(|ef| match a.iter().find(|af| af.name() == ef.name()) {
                    Some(af) => compatible(ef.data_type(), af.data_type()),
                    None => ADDED_TURN_FIELDS.contains(&ef.name().as_str()),
                })
        }
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
    use arrow_schema::Field;

    use super::*;
    use crate::columns::col;

    #[test]
    fn own_schema_passes_check() {
        check_schema(&schema()).unwrap();
    }

    #[test]
    fn check_names_missing_and_mistyped_columns() {
        let fields: Vec<Field> = schema()
            .fields()
            .iter()
            .filter(|f| f.name() != col::seed)
            .map(|f| {
                if f.name() == col::num_turns {
                    Field::new(col::num_turns, DataType::Int64, false)
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
                if f.name() == col::user_turns {
                    Field::new(col::user_turns, DataType::Utf8, false)
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
            type_name(s.field_with_name(col::turn_rewards).unwrap().data_type()),
            "list<float64>"
        );
        assert_eq!(
            type_name(s.field_with_name(col::messages).unwrap().data_type()),
            "list<struct<role: utf8, content: utf8, tool_calls: list<struct<id: utf8, name: utf8, \
             arguments: utf8>>, tool_call_id: utf8, name: utf8>>"
        );
    }
}
