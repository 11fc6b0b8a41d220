//! The one list of the trajectory table's columns.
//!
//! Each column is a field of [`Trajectory`] under the same name, in the same order; its Rust type picks
//! how it is stored ([`Column`]). From this list come the column names ([`col`]), the schema's fields,
//! the columns added after version 1 first shipped ([`ADDED_COLUMNS`]), the encoder and the decoder.
//! The decoder builds every `Trajectory` with a struct literal, so a field missing here does not compile.

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Field;

use crate::Result;
use crate::column::Column;
use crate::trajectory::Trajectory;

/// One column's schema field, its type found from the field it reads.
fn field<T: Column>(name: &'static str, _get: fn(&Trajectory) -> &T) -> Field {
    Field::new(name, T::data_type(), T::NULLABLE)
}

/// One column of `rows`, encoded.
fn encode<T: Column>(
    name: &'static str,
    rows: &[Trajectory],
    get: fn(&Trajectory) -> &T,
) -> Result<ArrayRef> {
    T::encode(name, rows.iter().map(get))
}

/// A typed view of the column named `name`; `None` when the batch lacks it (only added columns may be
/// absent: `check_schema` has run).
fn open<'a, T: Column>(
    batch: &'a RecordBatch,
    name: &'static str,
    _get: fn(&Trajectory) -> &T,
) -> Result<Option<T::Reader<'a>>> {
    batch
        .column_by_name(name)
        .map(|array| T::reader(array, name))
        .transpose()
}

/// Row `i` of an opened column, or the type's default when the column is absent.
fn read<T: Column + Default>(
    reader: &Option<T::Reader<'_>>,
    i: usize,
    name: &'static str,
) -> Result<T> {
    match reader {
        Some(reader) => T::read(reader, i, name),
        None => Ok(T::default()),
    }
}

/// The value an absent column takes, from the rest of the row.
fn recompute<T>(row: &Trajectory, fill: fn(&Trajectory) -> T) -> T {
    fill(row)
}

/// `name` only if the entry is marked `added` (the mark selects the repetition).
macro_rules! name_if_added {
    ($field:ident $added:ident) => {
        stringify!($field)
    };
}

/// Generates everything derived from the column list. Entries are `field` or `field: added`, the latter
/// optionally `= |row| value` for the value to fill in when a file predates the column (from the rest of
/// the row); an added column without one reads as the type's default.
macro_rules! trajectory_columns {
    ($( $field:ident $( : $added:ident $( = $fill:expr )? )? ),* $(,)?) => {
        /// Top-level column names, in schema order.
        #[allow(non_upper_case_globals)]
        pub mod col {
            $( pub const $field: &str = stringify!($field); )*
        }

        /// Columns added to schema version 1 after its first release. Files written before may lack
        /// them: the schema check lets them be absent and decoding fills them in (from the rest of the
        /// row where a value can be recomputed, otherwise the type's default), so older datasets stay
        /// readable. Adding a column keeps the version only this way; changing or removing one bumps it.
        pub const ADDED_COLUMNS: &[&str] = &[ $( $( name_if_added!($field $added), )? )* ];

        /// The schema's fields, in order.
        pub(crate) fn fields() -> Vec<Field> {
            vec![ $( field(col::$field, |r: &Trajectory| &r.$field) ),* ]
        }

        /// The columns of `rows`, in schema order.
        pub(crate) fn encode_columns(rows: &[Trajectory]) -> Result<Vec<ArrayRef>> {
            Ok(vec![ $( encode(col::$field, rows, |r: &Trajectory| &r.$field)? ),* ])
        }

        /// The rows of a batch that passed `check_schema`.
        pub(crate) fn decode_rows(batch: &RecordBatch) -> Result<Vec<Trajectory>> {
            $( let $field = open(batch, col::$field, |r: &Trajectory| &r.$field)?; )*
            let mut rows = Vec::with_capacity(batch.num_rows());
            for i in 0..batch.num_rows() {
                #[allow(unused_mut)]
                let mut row = Trajectory {
                    $( $field: read(&$field, i, col::$field)?, )*
                };
                $( $( $(
                    if $field.is_none() {
                        row.$field = recompute(&row, $fill);
                    }
                )? )? )*
                rows.push(row);
            }
            Ok(rows)
        }
    };
}

trajectory_columns! {
    run_id,
    episode_id,
    episode_index,
    env_id,
    env_name,
    env_version,
    task_id,
    task,
    seed,
    messages,
    tools,
    turn_rewards,
    final_reward,
    total_reward,
    success,
    terminated,
    truncated,
    error_kind,
    error_message,
    num_turns,
    num_tool_calls,
    num_tool_errors,
    policy,
    user_policy: added,
    user_turns: added,
    wall_time_s,
    info,
    group_id: added,
    group_index: added,
    sample_seed: added = |row| row.seed,
    num_tool_successes: added = |row| crate::trajectory::tool_successes(&row.messages),
    response_chars: added = |row| crate::trajectory::response_chars(&row.messages),
    shaped_reward: added,
    advantage: added,
    prompt_tokens: added,
    completion_tokens: added,
    policy_turns: added,
}
