//! Helpers shared by the tau envs' parity tests against the original tau-bench data (included with
//! `#[path]` from `tau-retail/tests` and `tau-airline/tests`; in a subdirectory, so it is no test target
//! of tau-common itself).
//!
//! The expected observations are computed from the original files, parsed with serde_json's
//! `preserve_order` (on in this workspace), so a parsed record keeps the file's key order exactly as
//! Python's `json.load` does, and `tau_common::dumps` of it is `json.dumps(record)`.

#![allow(dead_code)]

use std::path::PathBuf;

use sandgym_sdk::Value;

/// Where the original data lives (`SANDGYM_TAU_DATA`, else `../shared/data/tau-bench` next to the
/// repository), if `probe` exists under it.
pub fn data_dir(probe: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("SANDGYM_TAU_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tau-bench"),
    };
    if dir.join(probe).is_file() {
        Some(dir)
    } else {
        eprintln!(
            "note: original tau-bench data not found at {} (set SANDGYM_TAU_DATA); skipping",
            dir.display()
        );
        None
    }
}

pub fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `actual` has the same key sequence as `expected` in every object, recursively (arrays
/// element by element; scalars are not compared, and `null` in `expected` stands for any value: a
/// key a tool adds whose value is a list). `Err` names the first path that differs.
pub fn same_keys(actual: &Value, expected: &Value, path: &str) -> Result<(), String> {
    match (actual, expected) {
        (_, Value::Null) => Ok(()),
        (Value::Object(a), Value::Object(e)) => {
            let (ka, ke): (Vec<&String>, Vec<&String>) = (a.keys().collect(), e.keys().collect());
            if ka != ke {
                return Err(format!("{path}: keys {ka:?}, expected {ke:?}"));
            }
            for (k, v) in a {
                same_keys(v, &e[k], &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Err(format!(
                    "{path}: {} elements, expected {}",
                    a.len(),
                    e.len()
                ));
            }
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                same_keys(x, y, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
            Err(format!("{path}: shape differs"))
        }
        _ => Ok(()),
    }
}

/// An object skeleton with `keys` in order (values `null`), for keys a tool adds.
pub fn skeleton(keys: &[&str]) -> Value {
    Value::Object(keys.iter().map(|k| (k.to_string(), Value::Null)).collect())
}

/// Counts of compared observations; mismatches are collected and reported together.
#[derive(Debug, Default)]
pub struct Tally {
    /// Observations compared byte for byte with the original's answer.
    pub bytes_compared: usize,
    pub bytes_equal: usize,
    /// Write answers whose key sequence was compared with the original's (values come from our DB).
    pub keys_compared: usize,
    pub keys_equal: usize,
    /// Error answers checked against the original's messages for that tool.
    pub errors_checked: usize,
    pub tools: std::collections::BTreeSet<String>,
    pub mismatches: Vec<String>,
}

impl Tally {
    pub fn bytes(&mut self, what: &str, tool: &str, actual: &str, expected: &str) {
        self.bytes_compared += 1;
        self.tools.insert(tool.to_string());
        if actual == expected {
            self.bytes_equal += 1;
        } else {
            let at = actual
                .bytes()
                .zip(expected.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(actual.len().min(expected.len()));
            let from = at.saturating_sub(60);
            self.mismatches.push(format!(
                "{what} `{tool}`: differs at byte {at}:\n   ours: …{}\n   orig: …{}",
                actual.get(from..(at + 60).min(actual.len())).unwrap_or(""),
                expected
                    .get(from..(at + 60).min(expected.len()))
                    .unwrap_or("")
            ));
        }
    }

    pub fn keys(&mut self, what: &str, tool: &str, actual: &str, expected: &Value) {
        self.keys_compared += 1;
        self.tools.insert(tool.to_string());
        let parsed: Value = match serde_json::from_str(actual) {
            Ok(v) => v,
            Err(e) => {
                self.mismatches
                    .push(format!("{what} `{tool}`: not JSON ({e}): {actual}"));
                return;
            }
        };
        match same_keys(&parsed, expected, "") {
            Ok(()) => self.keys_equal += 1,
            Err(e) => self.mismatches.push(format!("{what} `{tool}`: {e}")),
        }
    }

    pub fn error(&mut self, what: &str, tool: &str, actual: &str, allowed: &[&str]) {
        self.errors_checked += 1;
        self.tools.insert(tool.to_string());
        // `*` in an allowed message stands for an id the original interpolates.
        let matches = |pattern: &str| match pattern.split_once('*') {
            None => actual == format!("Error: {pattern}"),
            Some((head, tail)) => {
                actual.starts_with(&format!("Error: {head}")) && actual.ends_with(tail)
            }
        };
        if !allowed.iter().any(|a| matches(a)) {
            self.mismatches.push(format!(
                "{what} `{tool}`: {actual:?} is none of the original's errors {allowed:?}"
            ));
        }
    }

    pub fn report(&self, domain: &str) {
        eprintln!(
            "{domain}: {} of {} observations byte-identical; {} of {} write answers with the original \
             key order; {} error texts checked; tools: {:?}",
            self.bytes_equal,
            self.bytes_compared,
            self.keys_equal,
            self.keys_compared,
            self.errors_checked,
            self.tools
        );
        assert!(
            self.mismatches.is_empty(),
            "{} mismatches, first ones:\n{}",
            self.mismatches.len(),
            self.mismatches
                .iter()
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
