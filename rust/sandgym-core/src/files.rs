//! Reads the files users hand to sandgym: task files (JSONL or a JSON array, optionally filtered by a
//! split file) and `{"$path": ...}` references inside env configuration, which the host inlines because
//! guests cannot read files. Every error names the file (and line) at fault.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The key of a file reference in env configuration: `{"$path": "data/retail"}`.
pub const PATH_KEY: &str = "$path";

/// Replaces every `{"$path": P}` object in `config` by the content of `P`:
/// a `.json` file → its JSON; a `.jsonl` file → an array of its lines; any other file → its text;
/// a directory → an object mapping each `*.json` / `*.jsonl` file's stem to its content.
/// Relative paths are taken from the current directory.
pub fn expand_config(config: Value) -> Result<Value> {
    match config {
        Value::Object(map) => {
            if map.len() == 1
                && let Some(path) = map.get(PATH_KEY)
            {
                let Some(path) = path.as_str() else {
                    return Err(Error::InvalidArgument(format!(
                        "`{PATH_KEY}` must be a string path, got {path}"
                    )));
                };
                return load_path(Path::new(path));
            }
            map.into_iter()
                .map(|(key, value)| expand_config(value).map(|v| (key, v)))
                .collect::<Result<Map<_, _>>>()
                .map(Value::Object)
        }
        Value::Array(items) => items
            .into_iter()
            .map(expand_config)
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        other => Ok(other),
    }
}

fn load_path(path: &Path) -> Result<Value> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io_path("read", path, e))?;
    if !meta.is_dir() {
        return load_file(path);
    }
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| Error::io_path("list", path, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "jsonl")
            )
        })
        .collect();
    entries.sort();
    let mut object = Map::new();
    for file in entries {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        object.insert(stem, load_file(&file)?);
    }
    Ok(Value::Object(object))
}

fn load_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io_path("read", path, e))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| {
            Error::InvalidArgument(format!("{}: not valid JSON: {e}", path.display()))
        }),
        Some("jsonl") => parse_jsonl(&text, path).map(Value::Array),
        _ => Ok(Value::String(text)),
    }
}

fn parse_jsonl(text: &str, path: &Path) -> Result<Vec<Value>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line).map_err(|e| {
                Error::InvalidArgument(format!(
                    "{}:{}: not valid JSON: {e}",
                    path.display(),
                    number + 1
                ))
            })
        })
        .collect()
}

/// Reads tasks from a JSONL file (one task per line) or a JSON file holding an array of tasks.
pub fn read_tasks(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read task file `{}`", path.display()), e))?;
    let tasks = if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(tasks)) => tasks,
            Ok(_) => unreachable!("text starting with `[` parses to an array"),
            Err(e) => {
                return Err(Error::InvalidArgument(format!(
                    "{}: not a JSON array of tasks: {e}",
                    path.display()
                )));
            }
        }
    } else {
        parse_jsonl(&text, path)?
    };
    if tasks.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "task file `{}` holds no tasks",
            path.display()
        )));
    }
    Ok(tasks)
}

/// Keeps the tasks whose `id` is listed under `split` in a split file (a JSON object mapping split
/// names to lists of task ids, as tau2's `split_tasks.json`). Ids compare as strings.
pub fn filter_split(tasks: Vec<Value>, split_file: &Path, split: &str) -> Result<Vec<Value>> {
    let splits = load_file(split_file)?;
    let ids = splits.get(split).and_then(Value::as_array).ok_or_else(|| {
        let known: Vec<&str> = splits
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        Error::InvalidArgument(format!(
            "split `{split}` is not in `{}` (it has: {})",
            split_file.display(),
            known.join(", ")
        ))
    })?;
    let wanted: std::collections::HashSet<String> = ids.iter().map(id_text).collect();
    let kept: Vec<Value> = tasks
        .into_iter()
        .filter(|task| {
            task.get("id")
                .is_some_and(|id| wanted.contains(&id_text(id)))
        })
        .collect();
    if kept.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no task has an `id` listed in split `{split}` of `{}`",
            split_file.display()
        )));
    }
    Ok(kept)
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_references_are_inlined() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.json"), r#"{"a": 1}"#).unwrap();
        std::fs::write(dir.path().join("rows.jsonl"), "1\n\n2\n").unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored in dirs").unwrap();
        let config =
            json!({"db": {"$path": dir.path()}, "k": [{"$path": dir.path().join("notes.md")}]});
        let expanded = expand_config(config).unwrap();
        assert_eq!(expanded["db"], json!({"users": {"a": 1}, "rows": [1, 2]}));
        assert_eq!(expanded["k"][0], "ignored in dirs");
    }

    #[test]
    fn bad_references_name_the_file() {
        let err = expand_config(json!({"db": {"$path": "/no/such/dir"}})).unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let err = expand_config(json!({"$path": bad})).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }

    #[test]
    fn task_files_as_jsonl_or_array_with_splits() {
        let dir = tempfile::tempdir().unwrap();
        let array = dir.path().join("tasks.json");
        std::fs::write(&array, r#"[{"id": "0"}, {"id": "1"}, {"id": 2}]"#).unwrap();
        let lines = dir.path().join("tasks.jsonl");
        std::fs::write(&lines, "{\"id\": \"0\"}\nnot json\n").unwrap();
        assert_eq!(read_tasks(&array).unwrap().len(), 3);
        assert!(
            read_tasks(&lines)
                .unwrap_err()
                .to_string()
                .contains("tasks.jsonl:2")
        );
        let splits = dir.path().join("split.json");
        std::fs::write(&splits, r#"{"train": ["0", "2"], "test": ["1"]}"#).unwrap();
        let train = filter_split(read_tasks(&array).unwrap(), &splits, "train").unwrap();
        assert_eq!(train, vec![json!({"id": "0"}), json!({"id": 2})]);
        let err = filter_split(read_tasks(&array).unwrap(), &splits, "dev").unwrap_err();
        assert!(
            err.to_string().contains("train, test") || err.to_string().contains("test, train"),
            "{err}"
        );
    }
}
