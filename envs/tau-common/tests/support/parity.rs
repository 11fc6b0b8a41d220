//! Helpers shared by the tau envs' tests against the original tau-bench data: where the data is, the v1
//! DB, and the parity checker's loop over every tau2 task's gold actions (included with `#[path]` from
//! `tau-retail/tests`, `tau-airline/tests` and tau-retail's unit tests; in a subdirectory, so it is no
//! test target of tau-common itself).
//!
//! The expected observations are computed from the original files, parsed with serde_json's
//! `preserve_order` (on in this workspace), so a parsed record keeps the file's key order exactly as
//! Python's `json.load` does, and `tau_common::dumps` of it is `json.dumps(record)`.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sandgym_sdk::{Action, Env, Value, json};
use tau_common::dumps;

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

/// The v1 DB of `domain` (`retail`, `airline`): `{table: the file's records}` for each of `tables`.
pub fn v1_db(dir: &Path, domain: &str, tables: &[&str]) -> Value {
    let files = dir.join("v1").join(domain);
    Value::Object(
        tables
            .iter()
            .map(|t| (t.to_string(), read_json(files.join(format!("{t}.json")))))
            .collect(),
    )
}

/// A string argument (`""` when absent).
pub fn s<'a>(args: &'a Value, key: &str) -> &'a str {
    args[key].as_str().unwrap_or_default()
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

/// A read tool, `get_{record}_details(record_id)` over the table `{record}s` (as both domains name
/// them), and v1's answer when there is no such record.
pub struct Read {
    pub record: &'static str,
    pub missing: &'static str,
}

impl Read {
    pub const fn new(record: &'static str, missing: &'static str) -> Read {
        Read { record, missing }
    }

    pub fn tool(&self) -> String {
        format!("get_{}_details", self.record)
    }

    pub fn table(&self) -> String {
        format!("{}s", self.record)
    }

    /// The argument naming the record.
    pub fn key(&self) -> String {
        format!("{}_id", self.record)
    }
}

/// What a domain plugs into [`check_gold_tasks`].
pub trait Domain: Env + Default {
    /// The env's name, for the report.
    const NAME: &'static str;
    /// The read tools, checked by [`Checker::read`] and perturbed to a neighbouring and an unknown id.
    const READS: &'static [Read];
    /// The catalogue tool, called once at the end of each task.
    const LIST_TOOL: &'static str;
    /// Each write tool's error messages in v1 (`*`: an interpolated id); empty for other tools.
    fn v1_errors(tool: &str) -> &'static [&'static str];
    /// Checks `obs`, the answer to `name(args)` for a tool that is no read.
    fn check_other(checker: &mut Checker<Self>, name: &str, args: &Value, obs: &str);
    /// Perturbed calls for a gold call that is neither a read nor a write (none by default).
    fn perturb(_checker: &mut Checker<Self>, _name: &str, _args: &Value) {}
}

/// The env under test, a key-level shadow of the v1 DB that applies each v1 tool's dict operations, the
/// records writes touched, and the tally.
pub struct Checker<E> {
    pub env: E,
    pub shadow: Value,
    pub touched: BTreeSet<(String, String)>,
    pub tally: Tally,
    /// What is being checked, for mismatch reports.
    pub what: String,
}

/// `E` configured with the v1 `db` and a turn limit no task reaches.
pub fn configured<E: Env + Default>(db: &Value) -> E {
    let mut env = E::default();
    env.configure(&json!({"db": db, "max_turns": 1000}))
        .expect("the v1 DB loads");
    env
}

/// The single tool message answering `name(args)`.
pub fn observe<E: Env>(env: &mut E, name: &str, args: &Value) -> String {
    let out = env.step(&Action::tool(name, args));
    assert_eq!(out.messages.len(), 1, "{name}: {:?}", out.messages);
    out.messages[0].content.clone()
}

impl<E: Domain> Checker<E> {
    /// Calls `name(args)` and checks the answer.
    pub fn check(&mut self, name: &str, args: &Value) {
        let obs = observe(&mut self.env, name, args);
        match E::READS.iter().find(|r| r.tool() == name) {
            Some(r) => self.read(name, &r.table(), s(args, &r.key()), &obs, r.missing),
            None => E::check_other(self, name, args, &obs),
        }
    }

    /// A read of `table[id]`: the file's bytes while untouched, else the shadow's key order.
    pub fn read(&mut self, name: &str, table: &str, id: &str, obs: &str, missing: &str) {
        let what = self.what.clone();
        match self.shadow[table].get(id) {
            None => self.tally.bytes(&what, name, obs, missing),
            Some(record) if self.touched.contains(&(table.into(), id.into())) => {
                let record = record.clone();
                self.tally.keys(&what, name, obs, &record);
            }
            Some(record) => {
                let expected = dumps(record);
                self.tally.bytes(&what, name, obs, &expected);
            }
        }
    }

    /// The id after `id` in `table`'s file order (wrapping), for reads of a record nobody asked for.
    pub fn neighbour(&self, table: &str, id: &str) -> Option<String> {
        let keys: Vec<&String> = self.shadow[table].as_object()?.keys().collect();
        let i = keys.iter().position(|k| *k == id)?;
        Some(keys[(i + 1) % keys.len()].clone())
    }

    /// Marks `table[id]` as written: its reads are compared by key sequence from now on.
    pub fn touch(&mut self, table: &str, id: &str) {
        self.touched.insert((table.into(), id.into()));
    }
}

/// Plays every task's gold actions on `db` (each task from a fresh DB), each followed by perturbed
/// calls (the next record of the same table and an unknown id for a read, the write again, the
/// domain's own), then the catalogue tool; reports and fails on any mismatch.
pub fn check_gold_tasks<E: Domain>(db: &Value, tasks: &Value) {
    let mut checker = Checker {
        env: configured::<E>(db),
        shadow: Value::Null,
        touched: BTreeSet::new(),
        tally: Tally::default(),
        what: String::new(),
    };
    for task in tasks.as_array().unwrap() {
        checker.env.reset(0, Some(task.clone())).unwrap();
        checker.shadow = db.clone();
        checker.touched.clear();
        let id = task["id"].as_str().unwrap();
        let actions = task["evaluation_criteria"]["actions"].as_array().unwrap();
        for (n, action) in actions.iter().enumerate() {
            let (name, args) = (action["name"].as_str().unwrap(), &action["arguments"]);
            if name == "transfer_to_human_agents" {
                continue; // it ends the episode and answers a constant
            }
            checker.what = format!("task {id} gold #{n}");
            checker.check(name, args);
            checker.what = format!("task {id} perturbed #{n}");
            if let Some(read) = E::READS.iter().find(|r| r.tool() == name) {
                let (table, key) = (read.table(), read.key());
                let id = s(args, &key);
                if let Some(next) = checker.neighbour(&table, id) {
                    checker.check(name, &json!({ &key: next }));
                }
                checker.check(name, &json!({ &key: format!("{id}x") }));
            } else if !E::v1_errors(name).is_empty() {
                checker.check(name, args);
            } else {
                E::perturb(&mut checker, name, args);
            }
        }
        checker.what = format!("task {id} list");
        checker.check(E::LIST_TOOL, &json!({}));
    }
    checker.tally.report(E::NAME);
    assert!(checker.tally.bytes_compared > 1000);
}
