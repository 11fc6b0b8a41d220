//! The one configuration of a collection run, as data: every setting of `sandgym collect` and
//! `sandgym.collect(...)` except the policies (objects, passed to [`crate::collect::run()`] beside it).
//! It reads from and writes to JSON (`#[serde(default, deny_unknown_fields)]`: a missing field takes its
//! default, a misspelled one is an error), so the CLI, the Python binding and, later, a remote worker
//! all describe a run the same way. Turning the data into run settings (limits, advantage options) is
//! here too, so each check is written once.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::advantage::{AdvantageOptions, DEFAULT_DROP_PASS_RATE, Estimator, GroupBy};
use crate::error::{Error, Result};
use crate::rewards::{Overlong, RewardPreset};
use crate::sandbox::Limits;

/// Every setting of a collection run that is data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectConfig {
    /// Env ids (`countdown-v0`) or paths to `.wasm` files; empty means every bundled env.
    pub envs: Vec<String>,
    /// Episodes per env.
    pub episodes: u64,
    /// Seed of each env's first episode; episode `i` uses `seed + i`.
    pub seed: u64,
    /// Turns after which an episode is truncated (user turns are bounded by it too).
    pub max_turns: u32,
    /// Tasks to play in turn instead of generated ones, inline (each env's task format).
    pub tasks: Option<Vec<Value>>,
    /// Tasks to play from a file instead: JSONL (one task per line) or a JSON array (tau2's
    /// `tasks.json`). Not together with `tasks`.
    pub tasks_file: Option<PathBuf>,
    /// Play only the tasks of `tasks_file` in this split (needs `split_file`).
    pub split: Option<String>,
    /// JSON object mapping split names to task ids (tau2's `split_tasks.json`); needs `split`.
    pub split_file: Option<PathBuf>,
    /// The env's configuration (a JSON object, or null for none). `{"$path": "FILE_OR_DIR"}` anywhere in
    /// it is replaced at run time by the file's JSON (or a directory's `*.json` files by name).
    pub config: Value,
    /// Fuel (about one unit per wasm instruction) per guest call; `None` keeps the default.
    pub fuel: Option<u64>,
    /// Guest memory cap in MiB; `None` keeps the default.
    pub memory_mb: Option<usize>,
    /// Wall-clock deadline per guest call in seconds (positive); `None` keeps the default.
    pub deadline_s: Option<f64>,
    /// Worker threads; `None` runs on rayon's global pool (one per core).
    pub threads: Option<usize>,
    /// Identifies the run in every row; `None` generates one from the clock and process id.
    pub run_id: Option<String>,
    /// Skip the planned episodes (groups) whose rows are already in `out_dir` (needs `out_dir`).
    pub resume: bool,
    /// Directory for the Parquet part files; `None` keeps the rows in memory (in plan order).
    pub out_dir: Option<PathBuf>,
    /// Rollouts per planned episode: with more than 1, each becomes a group of this many episodes on
    /// the same task and seed, sampled with different seeds, sharing a `group_id`.
    pub group_size: u32,
    /// Advantage estimator computed as each group completes: `grpo`, `dr-grpo` or `batch`. `None`:
    /// `grpo` with groups or with a non-default `reward`, else no advantages.
    pub advantage: Option<String>,
    /// Reward preset the advantages use: `env`, `outcome`, `demystify-paper` or `demystify-code`.
    pub reward: String,
    /// Overlong shaping `[max_len, buffer, penalty]` on the characters the agent wrote.
    pub overlong: Option<(u64, u64, f64)>,
    /// Per-prompt pass-rate history (JSON, created if missing): prompts at or above `drop_pass_rate`
    /// are not played, and the run's outcomes are added to it.
    pub pass_rates: Option<PathBuf>,
    /// Pass rate at or above which a prompt is dropped (ScaleRL: 0.9).
    pub drop_pass_rate: f64,
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig {
            envs: Vec::new(),
            episodes: 100,
            seed: 0,
            max_turns: 64,
            tasks: None,
            tasks_file: None,
            split: None,
            split_file: None,
            config: Value::Null,
            fuel: None,
            memory_mb: None,
            deadline_s: None,
            threads: None,
            run_id: None,
            resume: false,
            out_dir: None,
            group_size: 1,
            advantage: None,
            reward: "env".into(),
            overlong: None,
            pass_rates: None,
            drop_pass_rate: DEFAULT_DROP_PASS_RATE,
        }
    }
}

impl CollectConfig {
    /// Reads a config from JSON text; unknown fields are an error naming them.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("collect config: {e}")))
    }

    /// The config as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a collect config is JSON")
    }

    /// The sandbox limits of the run.
    pub fn limits(&self) -> Result<Limits> {
        limits(self.fuel, self.memory_mb, self.deadline_s)
    }

    /// The advantage settings of the run: `grpo` by default with groups.
    pub fn advantage_options(&self) -> Result<Option<AdvantageOptions>> {
        advantage_options(
            self.advantage.as_deref(),
            &self.reward,
            self.overlong,
            GroupBy::GroupId,
            (self.group_size > 1).then_some(Estimator::Grpo),
        )
    }
}

/// Sandbox limits from the settings every interface shares; `None` keeps a default. The deadline must
/// be positive and finite.
pub fn limits(
    fuel: Option<u64>,
    memory_mb: Option<usize>,
    deadline_s: Option<f64>,
) -> Result<Limits> {
    let mut limits = Limits::default();
    if let Some(fuel) = fuel {
        limits.fuel_per_call = fuel;
    }
    if let Some(mb) = memory_mb {
        limits.memory_bytes = mb << 20;
    }
    if let Some(seconds) = deadline_s {
        if !(seconds > 0.0 && seconds.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "deadline_s must be positive, got {seconds}"
            )));
        }
        limits.deadline = Duration::from_secs_f64(seconds);
    }
    Ok(limits)
}

/// A reward preset from its name and optional overlong shaping `(max_len, buffer, penalty)`.
pub fn reward_preset(reward: &str, overlong: Option<(u64, u64, f64)>) -> Result<RewardPreset> {
    let overlong = overlong
        .map(|(max, buffer, penalty)| Overlong::new(max, buffer, penalty))
        .transpose()?;
    Ok(RewardPreset::by_name(reward)?.with_overlong(overlong))
}

/// Advantage settings from an estimator name, a reward preset name and overlong shaping
/// `(max_len, buffer, penalty)`: `Some` when an estimator is named, or when the preset is not the
/// default (then with `default_estimator`, or `grpo`); else `default_estimator`'s.
pub fn advantage_options(
    estimator: Option<&str>,
    reward: &str,
    overlong: Option<(u64, u64, f64)>,
    group_by: GroupBy,
    default_estimator: Option<Estimator>,
) -> Result<Option<AdvantageOptions>> {
    let preset = reward_preset(reward, overlong)?;
    let estimator = match estimator {
        Some(name) => Some(Estimator::by_name(name)?),
        None if preset != RewardPreset::default() => Some(default_estimator.unwrap_or_default()),
        None => default_estimator,
    };
    Ok(estimator.map(|estimator| AdvantageOptions {
        estimator,
        preset,
        group_by,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_every_field() {
        let config = CollectConfig {
            envs: vec!["countdown-v0".into(), "parity-v0".into()],
            episodes: 7,
            seed: 3,
            max_turns: 9,
            tasks: Some(vec![serde_json::json!({"numbers": [1, 2], "target": 3})]),
            config: serde_json::json!({"d": 16, "db": {"$path": "x"}}),
            fuel: Some(1_000),
            memory_mb: Some(32),
            deadline_s: Some(1.5),
            threads: Some(2),
            run_id: Some("r".into()),
            resume: true,
            out_dir: Some("out".into()),
            group_size: 4,
            advantage: Some("dr-grpo".into()),
            reward: "outcome".into(),
            overlong: Some((100, 10, 0.5)),
            pass_rates: Some("rates.json".into()),
            drop_pass_rate: 0.75,
            ..CollectConfig::default()
        };
        assert_eq!(CollectConfig::from_json(&config.to_json()).unwrap(), config);
        let files = CollectConfig {
            tasks_file: Some("tasks.json".into()),
            split: Some("test".into()),
            split_file: Some("split.json".into()),
            ..CollectConfig::default()
        };
        assert_eq!(CollectConfig::from_json(&files.to_json()).unwrap(), files);
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_ones_are_refused() {
        assert_eq!(
            CollectConfig::from_json("{}").unwrap(),
            CollectConfig::default()
        );
        let some = CollectConfig::from_json(r#"{"episodes": 3, "envs": ["parity-v0"]}"#).unwrap();
        assert_eq!((some.episodes, some.max_turns), (3, 64));
        let err = CollectConfig::from_json(r#"{"episodes": 3, "epsiodes": 4}"#).unwrap_err();
        assert_eq!(err.kind(), "invalid_argument");
        assert!(err.to_string().contains("epsiodes"), "{err}");
    }

    #[test]
    fn limits_refuse_a_deadline_that_is_not_positive() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(limits(None, None, Some(bad)).is_err());
        }
        let ok = limits(Some(5), Some(2), Some(0.5)).unwrap();
        assert_eq!((ok.fuel_per_call, ok.memory_bytes), (5, 2 << 20));
    }
}
