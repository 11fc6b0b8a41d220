//! The Parquet store: writer → directory of part files → reader, and `docs/schema.md` against `schema()`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Int64Array, LargeStringArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sandgym_core::store::{self, Compression, StoreError, Writer, WriterOptions};
use sandgym_core::{Message, Role, ToolCall, Trajectory};

/// Row `i` of a varied set: empty messages, tool calls, unicode, nulls, extreme numbers.
fn row(i: u64) -> Trajectory {
    let call = ToolCall {
        id: format!("call_{i}"),
        name: "submit".to_string(),
        arguments: format!(r#"{{"answer": {i}, "note": "naïve ✓ 数学 🧮"}}"#),
    };
    let messages = match i % 4 {
        0 => Vec::new(),
        1 => vec![
            Message::system("You are a solver."),
            Message::user("Reach 24."),
        ],
        2 => vec![
            Message::system("sys"),
            Message::user("go"),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![
                    call.clone(),
                    ToolCall {
                        id: String::new(),
                        ..call.clone()
                    },
                ],
                tool_call_id: None,
                name: None,
            },
            Message::tool(&call, "Correct! 🎉"),
            Message {
                role: Role::Tool,
                content: "orphan\0with a NUL".to_string(),
                tool_calls: Vec::new(),
                tool_call_id: Some(String::new()),
                name: None,
            },
        ],
        _ => vec![
            Message::user("x".repeat(10_000)),
            Message::assistant(&sandgym_core::Action::text("ok")),
        ],
    };
    let turn_rewards: Vec<f64> = (0..i % 3).map(|t| t as f64 * 0.5 - 1.0).collect();
    Trajectory {
        run_id: "run-α".to_string(),
        episode_id: format!("countdown-v0/{i}"),
        episode_index: i,
        env_id: "countdown-v0".to_string(),
        env_name: "countdown".to_string(),
        env_version: (i % 2) as u32,
        task_id: if i.is_multiple_of(5) {
            String::new()
        } else {
            format!("task-{i}")
        },
        task: format!(r#"{{"target": {i}}}"#),
        seed: if i.is_multiple_of(2) { u64::MAX - i } else { i },
        messages,
        tools: "[]".to_string(),
        final_reward: turn_rewards.last().copied().unwrap_or(0.0),
        total_reward: turn_rewards.iter().sum(),
        turn_rewards,
        success: i.is_multiple_of(2),
        terminated: i.is_multiple_of(3),
        truncated: i % 3 == 1,
        error_kind: (i % 4 == 3).then(|| "out_of_fuel".to_string()),
        error_message: match i % 4 {
            3 => Some("fuel budget exhausted".to_string()),
            1 => Some(String::new()),
            _ => None,
        },
        num_turns: i as u32,
        num_tool_calls: u32::MAX - i as u32,
        num_tool_errors: 0,
        policy: "expert".to_string(),
        user_policy: i.is_multiple_of(4).then(|| "expert".to_string()),
        user_turns: if i.is_multiple_of(4) {
            vec![1]
        } else {
            Vec::new()
        },
        wall_time_s: i as f64 * 1e-3,
        info: "{}".to_string(),
        group_id: i
            .is_multiple_of(3)
            .then(|| format!("countdown-v0/{}", i / 4)),
        group_index: (i % 4) as u32,
        sample_seed: i.wrapping_mul(0x9E37_79B9),
        num_tool_successes: (i % 5) as u32,
        response_chars: i * 7,
        shaped_reward: (i % 2 == 1).then_some(i as f64 * 0.1 - 1.0),
        advantage: (i % 2 == 1).then_some(-(i as f64) / 8.0),
        prompt_tokens: i * 100,
        completion_tokens: i * 10,
        policy_turns: (0..i % 3)
            .map(|t| sandgym_core::trajectory::PolicyTurn {
                raw_output: format!("Action: calc ✓ {t}"),
                parser: "react".to_string(),
                format_error: (t == 1).then(|| "needs an `Action Input:`".to_string()),
                prompt_tokens: 50 + t as u32,
                completion_tokens: 5,
                latency_s: 0.25,
                prompt_ids: (100..100 + t as u32).collect(),
                completion_ids: (0..t as u32).collect(),
                completion_logprobs: vec![-0.5; t as usize],
                chunks: (0..t)
                    .map(|c| sandgym_core::trajectory::TurnChunk {
                        prompt_ids: vec![c as u32; 3],
                        response_ids: vec![7; c as usize],
                        response_logprobs: Vec::new(),
                    })
                    .collect(),
                chunks_truncated: t == 2,
            })
            .collect(),
    }
}

fn rows(range: std::ops::Range<u64>) -> Vec<Trajectory> {
    range.map(row).collect()
}

fn small_options() -> WriterOptions {
    WriterOptions {
        rows_per_batch: 3,
        row_group_rows: 4,
        rows_per_file: 5,
        channel_capacity: 2,
        ..WriterOptions::default()
    }
}

fn write_all(dir: &Path, options: WriterOptions, input: &[Trajectory]) -> store::WriteSummary {
    let writer = Writer::create(dir, options).unwrap();
    for t in input {
        writer.send(t.clone()).unwrap();
    }
    writer.finish().unwrap()
}

/// Names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip_rolls_parts_and_leaves_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let input = rows(0..13);
    let summary = write_all(&dir, small_options(), &input);

    assert_eq!(summary.rows, 13);
    assert_eq!(
        names(&dir),
        [
            "part-00000.parquet",
            "part-00001.parquet",
            "part-00002.parquet"
        ]
    );
    let expected_files: Vec<PathBuf> = names(&dir).iter().map(|n| dir.join(n)).collect();
    assert_eq!(summary.files, expected_files);
    let bytes: u64 = expected_files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(summary.bytes, bytes);

    let per_file: Vec<u64> = expected_files
        .iter()
        .map(|f| store::count_rows(f).unwrap())
        .collect();
    assert_eq!(per_file, [5, 5, 3]);
    // Row groups of at most `row_group_rows`.
    let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&expected_files[0]).unwrap())
        .unwrap()
        .metadata()
        .clone();
    let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [4, 1]);

    assert_eq!(store::count_rows(&dir).unwrap(), 13);
    assert_eq!(store::read_dir_or_file(&dir).unwrap(), input);
    assert_eq!(
        store::read_dir_or_file(&expected_files[1]).unwrap(),
        input[5..10]
    );
}

#[test]
fn second_run_appends_parts_after_existing_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let first = rows(0..6);
    write_all(tmp.path(), small_options(), &first);
    // A temp file left by a killed run: readers skip it, numbering goes past it.
    std::fs::write(tmp.path().join(".part-00004.parquet.tmp"), b"PAR1 partial").unwrap();
    let second = rows(100..103);
    let summary = write_all(tmp.path(), small_options(), &second);

    assert_eq!(summary.files, [tmp.path().join("part-00005.parquet")]);
    assert_eq!(
        names(tmp.path()),
        [
            ".part-00004.parquet.tmp",
            "part-00000.parquet",
            "part-00001.parquet",
            "part-00005.parquet"
        ]
    );
    let all: Vec<Trajectory> = first.iter().chain(&second).cloned().collect();
    assert_eq!(store::read_dir_or_file(tmp.path()).unwrap(), all);
    assert_eq!(store::count_rows(tmp.path()).unwrap(), 9);
}

#[test]
fn file_schema_equals_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = write_all(tmp.path(), WriterOptions::default(), &rows(0..4));
    assert_eq!(summary.files.len(), 1);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(File::open(&summary.files[0]).unwrap()).unwrap();
    let file_schema = builder.schema();
    assert_eq!(file_schema.fields(), store::schema().fields());
    assert_eq!(
        file_schema
            .metadata()
            .get(store::SCHEMA_VERSION_KEY)
            .map(String::as_str),
        Some(store::SCHEMA_VERSION)
    );
    let names: Vec<&str> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names[..3], ["run_id", "episode_id", "episode_index"]);
    let info = names.iter().position(|n| *n == "info").unwrap();
    // Columns added after the first release follow `info`, in the order they were added.
    assert_eq!(
        names[info + 1..info + 8],
        [
            "group_id",
            "group_index",
            "sample_seed",
            "num_tool_successes",
            "response_chars",
            "shaped_reward",
            "advantage"
        ]
    );
}

#[test]
fn zero_rows() {
    let tmp = tempfile::tempdir().unwrap();
    // A writer that got no rows publishes nothing.
    let summary = write_all(tmp.path(), WriterOptions::default(), &[]);
    assert_eq!(summary, store::WriteSummary::default());
    assert!(names(tmp.path()).is_empty());
    assert!(store::read_dir_or_file(tmp.path()).unwrap().is_empty());
    assert_eq!(store::count_rows(tmp.path()).unwrap(), 0);

    // A zero-row file (as another tool might write) reads as no rows.
    let path = tmp.path().join("empty.parquet");
    let mut writer =
        ArrowWriter::try_new(File::create(&path).unwrap(), store::schema(), None).unwrap();
    writer.write(&store::to_record_batch(&[]).unwrap()).unwrap();
    writer.close().unwrap();
    assert!(store::read_dir_or_file(&path).unwrap().is_empty());
    assert_eq!(store::count_rows(&path).unwrap(), 0);
}

#[test]
fn compressions_round_trip() {
    for compression in [Compression::None, Compression::Snappy, Compression::Zstd(3)] {
        let tmp = tempfile::tempdir().unwrap();
        let input = rows(0..7);
        let options = WriterOptions {
            compression,
            ..small_options()
        };
        write_all(tmp.path(), options, &input);
        assert_eq!(
            store::read_dir_or_file(tmp.path()).unwrap(),
            input,
            "{compression:?}"
        );
    }
}

#[test]
fn reader_rejects_foreign_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("foreign.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
    let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    for err in [
        store::read_dir_or_file(&path).unwrap_err(),
        store::read_dir_or_file(tmp.path()).unwrap_err(),
    ] {
        let message = err.to_string();
        assert!(matches!(err, StoreError::Schema(_)), "{message}");
        assert!(message.contains("foreign.parquet"), "{message}");
        assert!(
            message.contains("not a sandgym trajectory table"),
            "{message}"
        );
        assert!(
            message.contains("`run_id`") && message.contains("`info`"),
            "{message}"
        );
    }
    assert!(store::count_rows(&path).is_err());
}

#[test]
fn reader_names_a_mistyped_column() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("mistyped.parquet");
    let batch = store::to_record_batch(&rows(0..3)).unwrap();
    let idx = batch.schema().index_of("seed").unwrap();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[idx] = Field::new("seed", DataType::Int64, false);
    let mut columns = batch.columns().to_vec();
    columns[idx] = Arc::new(Int64Array::from(vec![1, 2, 3]));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let message = store::read_dir_or_file(&path).unwrap_err().to_string();
    assert!(
        message.contains("`seed` is Int64 but should be uint64"),
        "{message}"
    );
    assert!(!message.contains("missing"), "{message}");
}

#[test]
fn dropping_a_writer_publishes_what_it_has() {
    let tmp = tempfile::tempdir().unwrap();
    let input = rows(0..7);
    {
        let writer = Writer::create(tmp.path(), small_options()).unwrap();
        for t in &input {
            writer.send(t.clone()).unwrap();
        }
    }
    assert_eq!(
        names(tmp.path()),
        ["part-00000.parquet", "part-00001.parquet"]
    );
    assert_eq!(store::read_dir_or_file(tmp.path()).unwrap(), input);
}

#[test]
fn writer_is_shared_by_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = Writer::create(tmp.path(), small_options()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let writer = &writer;
            scope.spawn(move || {
                for i in 0..25 {
                    writer.send(row(t * 25 + i)).unwrap();
                }
            });
        }
    });
    let summary = writer.finish().unwrap();
    assert_eq!(summary.rows, 100);
    assert_eq!(summary.files.len(), 20);
    let mut back = store::read_dir_or_file(tmp.path()).unwrap();
    back.sort_by_key(|t| t.episode_index);
    assert_eq!(back, rows(0..100));
}

#[test]
fn send_reports_the_writer_threads_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gone");
    let writer = Writer::create(
        &dir,
        WriterOptions {
            rows_per_batch: 1,
            channel_capacity: 1,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let mut first = None;
    for i in 0..2_000 {
        if let Err(err) = writer.send(row(i)) {
            first = Some(err);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let first = first.expect("send never failed");
    assert!(
        matches!(&first, StoreError::Io(e) if e.kind() == std::io::ErrorKind::NotFound),
        "{first}"
    );
    assert!(first.to_string().contains("gone"), "{first}");
    let again = writer.send(row(0)).unwrap_err();
    assert!(matches!(again, StoreError::WriterStopped(_)), "{again}");
    assert!(matches!(writer.finish(), Err(StoreError::WriterStopped(_))));
}

/// Parses the `| column | type | nullable | meaning |` table that follows `heading` in `docs/schema.md`.
fn doc_table(doc: &str, heading: &str) -> Vec<(String, String, bool)> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in docs/schema.md"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 4, "row {line:?}");
            let name = cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`'));
            let name = name.unwrap_or_else(|| panic!("column cell not in backticks: {line:?}"));
            let nullable = match cells[2] {
                "yes" => true,
                "no" => false,
                other => panic!("nullable must be yes or no, got {other:?}"),
            };
            (
                name.to_string(),
                cells[1].trim_matches('`').to_string(),
                nullable,
            )
        })
        .collect()
}

fn fields_as_rows(fields: &arrow_schema::Fields) -> Vec<(String, String, bool)> {
    fields
        .iter()
        .map(|f| {
            (
                f.name().clone(),
                store::type_name(f.data_type()),
                f.is_nullable(),
            )
        })
        .collect()
}

/// The struct fields inside a `list<struct<…>>` field.
fn list_struct_fields(field: &Field) -> arrow_schema::Fields {
    match field.data_type() {
        DataType::List(item) => match item.data_type() {
            DataType::Struct(fields) => fields.clone(),
            other => panic!("{other}"),
        },
        other => panic!("{other}"),
    }
}

#[test]
fn docs_schema_tables_match_schema() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema.md"))
            .unwrap();
    let schema = store::schema();
    assert_eq!(
        doc_table(&doc, "## Columns"),
        fields_as_rows(schema.fields())
    );

    let messages = list_struct_fields(schema.field_with_name("messages").unwrap());
    assert_eq!(
        doc_table(&doc, "## The message struct"),
        fields_as_rows(&messages)
    );
    let calls = list_struct_fields(messages.find("tool_calls").unwrap().1);
    assert_eq!(
        doc_table(&doc, "## The tool call struct"),
        fields_as_rows(&calls)
    );
}

#[test]
fn reader_accepts_large_types_from_other_writers() {
    // polars rewrites strings as large_string and lists as large_list, without our metadata.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("polars.parquet");
    let input = rows(0..5);
    let batch = store::to_record_batch(&input).unwrap();
    let idx = batch.schema().index_of("policy").unwrap();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[idx] = Field::new("policy", DataType::LargeUtf8, true);
    let mut columns = batch.columns().to_vec();
    columns[idx] = Arc::new(LargeStringArray::from_iter_values(
        input.iter().map(|t| t.policy.as_str()),
    ));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    assert_eq!(store::read_dir_or_file(&path).unwrap(), input);
    assert_eq!(store::count_rows(&path).unwrap(), 5);
}

#[test]
fn tmp_dump_for_byte_compare() {
    let Ok(dir) = std::env::var("SANDGYM_DUMP_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    for (name, options) in [
        ("small", small_options()),
        ("default", WriterOptions::default()),
    ] {
        write_all(&dir.join(name), options, &rows(0..13));
    }
    let mut w = ArrowWriter::try_new(
        File::create(dir.join("batch.parquet")).unwrap(),
        store::schema(),
        None,
    )
    .unwrap();
    w.write(&store::to_record_batch(&rows(0..40)).unwrap())
        .unwrap();
    w.close().unwrap();
}
