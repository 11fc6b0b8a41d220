//! Verifier helpers, after tau-bench's `calculate_reward`: the agent's final DB must equal the DB the
//! gold actions produce from the initial DB, and every output string must have been said.
//!
//! tau-bench compares `sha256(str(to_hashable(db)))`; Python's `str` of floats is not reproducible in
//! Rust, so equality here is structural (the env's own `PartialEq`, or [`values_equal`]). The hashes in
//! `info` are [`DbDigest`]s: FNV-1a 64 over the canonical JSON ([`canonical_hash`]) of the base DB,
//! computed once per configured DB, folded with the canonical JSON of the records an episode changed
//! (so the per-episode cost follows the records touched, not the DB size). Stable across platforms.

use std::io;

use sandgym_sdk::{Value, json};
use serde::Serialize;

use crate::conversation::{END_CONVERSATION, RESPOND, TRANSFER_TO_HUMAN_AGENTS};
use crate::ordered::canonical;
use crate::task::GoldAction;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An `io::Write` sink folding the bytes into FNV-1a (the same function as `sandgym_sdk::stable_hash`).
#[derive(Debug, Clone)]
struct FnvWriter(u64);

impl io::Write for FnvWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compact JSON of `value`: canonical for a type whose struct fields are in a fixed order and whose
/// maps are `BTreeMap`s or [`OrderedMap`](crate::OrderedMap)s (written sorted here, whatever their insertion order).
/// `serde_json::Value` objects keep their own key order (serde_json's `preserve_order` is on, so that
/// observations follow the original files), so two equal `Value`s built in different orders write
/// differently; the DBs hashed here are typed records.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> String {
    canonical(|| serde_json::to_string(value).expect("serializing plain data cannot fail"))
}

/// FNV-1a 64 of [`canonical_json`], streamed (no copy of a large DB is built).
pub fn canonical_hash<T: Serialize + ?Sized>(value: &T) -> u64 {
    let mut writer = FnvWriter(FNV_OFFSET);
    canonical(|| serde_json::to_writer(&mut writer, value))
        .expect("serializing plain data cannot fail");
    writer.0
}

/// The digest of an effective DB `base + changes`, built from the base DB's [`canonical_hash`] (computed
/// once) and the records that differ from the base: FNV-1a 64 over the base hash as 16 hex digits, then,
/// for each changed record in (table, key) order, the compact JSON `["<table>","<key>",<record>]`
/// (`null` for a record absent from the effective DB) followed by a newline.
///
/// The caller feeds exactly the records whose effective value differs from the base one (dropping
/// records written back to their base value), in ascending (table, key) order; then equal effective DBs
/// give equal digests, and an unchanged DB's digest depends only on the base hash.
#[derive(Debug, Clone)]
pub struct DbDigest {
    writer: FnvWriter,
}

impl DbDigest {
    /// Starts from the base DB's [`canonical_hash`].
    pub fn new(base_hash: u64) -> DbDigest {
        let mut writer = FnvWriter(FNV_OFFSET);
        io::Write::write_all(&mut writer, hash_hex(base_hash).as_bytes()).expect("infallible");
        DbDigest { writer }
    }

    /// Folds in one changed record (`None`: absent from the effective DB).
    pub fn change<T: Serialize + ?Sized>(&mut self, table: &str, key: &str, record: Option<&T>) {
        canonical(|| serde_json::to_writer(&mut self.writer, &(table, key, record)))
            .expect("serializing plain data cannot fail");
        io::Write::write_all(&mut self.writer, b"\n").expect("infallible");
    }

    /// Folds in the records of `keys` (ascending) whose effective value differs from the base one.
    pub fn changes<'a, T: Serialize + PartialEq + 'a>(
        &mut self,
        table: &str,
        keys: impl IntoIterator<Item = &'a String>,
        effective: impl Fn(&str) -> Option<&'a T>,
        base: impl Fn(&str) -> Option<&'a T>,
    ) {
        for key in keys {
            let record = effective(key);
            if record != base(key) {
                self.change(table, key, record);
            }
        }
    }

    pub fn finish(&self) -> u64 {
        self.writer.0
    }
}

/// A hash as 16 hex digits.
pub fn hash_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Structural equality of two JSON values (objects compare as maps; numbers by their exact JSON
/// representation, so `1` differs from `1.0` as in the original's `str`-based hash).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    a == b
}

/// tau-bench's outputs rule: `output` occurs, case-insensitively, in some response with its commas
/// removed (the output itself keeps its commas).
pub fn output_found(output: &str, responses: &[String]) -> bool {
    let needle = output.to_lowercase();
    responses
        .iter()
        .any(|r| r.to_lowercase().replace(',', "").contains(&needle))
}

/// The outputs never said, in task order.
pub fn outputs_missing(outputs: &[String], responses: &[String]) -> Vec<String> {
    outputs
        .iter()
        .filter(|o| !output_found(o, responses))
        .cloned()
        .collect()
}

/// The verifier's result: reward 1 iff the DB matches and no output is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub reward: f64,
    pub success: bool,
    /// `{"reason", "db_match", "outputs_missing", "agent_db_hash", "gold_db_hash", "ended_by"}`.
    pub info: Value,
}

/// Builds the verdict. `reason` is `"solved"`, `"db mismatch"`, `"outputs missing"` or
/// `"db mismatch and outputs missing"`.
pub fn verdict(
    db_match: bool,
    agent_db_hash: u64,
    gold_db_hash: u64,
    outputs_missing: Vec<String>,
    ended_by: &str,
) -> Verdict {
    let success = db_match && outputs_missing.is_empty();
    let reason = match (db_match, outputs_missing.is_empty()) {
        (true, true) => "solved",
        (false, true) => "db mismatch",
        (true, false) => "outputs missing",
        (false, false) => "db mismatch and outputs missing",
    };
    Verdict {
        reward: if success { 1.0 } else { 0.0 },
        success,
        info: json!({
            "reason": reason,
            "db_match": db_match,
            "outputs_missing": outputs_missing,
            "agent_db_hash": hash_hex(agent_db_hash),
            "gold_db_hash": hash_hex(gold_db_hash),
            "ended_by": ended_by,
        }),
    }
}

/// Whether a tool result is an error: the original's `Error: …` texts and its `Unknown action …`.
pub fn is_error_result(result: &str) -> bool {
    result.starts_with("Error") || result.starts_with("Unknown action")
}

/// Whether gold replay skips `name` for the DB: the talking and ending tools change nothing, and
/// tau-bench does not replay its terminate tool (`transfer_to_human_agents`).
pub fn skipped_in_replay(name: &str) -> bool {
    matches!(name, RESPOND | END_CONVERSATION | TRANSFER_TO_HUMAN_AGENTS)
}

/// The outcome of one gold action in a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStep {
    pub name: String,
    /// The tool's answer (empty when skipped).
    pub result: String,
    pub error: bool,
    pub skipped: bool,
}

/// Replays gold `actions` on `db` (a fresh copy of the initial DB) through the env's own `dispatch`.
/// Errors are not fatal: tau2 gold lists contain failing reads, and a failing tool changes nothing.
pub fn replay_gold<D>(
    db: &mut D,
    actions: &[GoldAction],
    mut dispatch: impl FnMut(&mut D, &GoldAction) -> String,
) -> Vec<ReplayStep> {
    actions
        .iter()
        .map(|action| {
            if skipped_in_replay(&action.name) {
                return ReplayStep {
                    name: action.name.clone(),
                    result: String::new(),
                    error: false,
                    skipped: true,
                };
            }
            let result = dispatch(db, action);
            ReplayStep {
                name: action.name.clone(),
                error: is_error_result(&result),
                result,
                skipped: false,
            }
        })
        .collect()
}
