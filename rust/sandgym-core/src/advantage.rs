//! Group advantages, zero-variance filtering and the per-prompt pass-rate history.
//!
//! Rows of one group are rollouts of the same task; their advantages compare each rollout's training
//! reward (a [`RewardPreset`] applied to it) with the others':
//!
//! - [`Estimator::Grpo`]: `(r - mean) / (std + eps)` within the group (sample std, `eps = 1e-6`, as
//!   verl and TRL's `scale_rewards="group"`);
//! - [`Estimator::DrGrpo`]: `r - mean` (Dr. GRPO: no std division);
//! - [`Estimator::Batch`]: `(r - group mean) / (batch std + eps)`, the std taken over every row passed
//!   in (ScaleRL's batch-level normalization, TRL's `scale_rewards="batch"`).
//!
//! The collector applies [`compute_advantages`] to each group as soon as its last member finishes
//! (to the whole run for `batch`); `sandgym export` and Python call it again over a stored table to
//! switch estimator or preset. Groups come from the `group_id` column, or from `(env_id, task_id)`
//! ([`GroupBy::Task`]) to regroup rows collected without groups or across runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rewards::RewardPreset;
use crate::trajectory::Trajectory;

/// Added to the std before dividing, so a near-constant group does not explode.
pub const STD_EPS: f64 = 1e-6;

/// How advantages are normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimator {
    /// GRPO: group mean baseline, group std scale.
    #[default]
    Grpo,
    /// Dr. GRPO: group mean baseline, no scale.
    DrGrpo,
    /// ScaleRL: group mean baseline, batch std scale.
    Batch,
}

/// Names accepted by [`Estimator::by_name`].
pub const ESTIMATOR_NAMES: &[&str] = &["grpo", "dr-grpo", "batch"];

impl Estimator {
    /// `grpo`, `dr-grpo` or `batch`.
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "grpo" => Ok(Estimator::Grpo),
            "dr-grpo" | "drgrpo" => Ok(Estimator::DrGrpo),
            "batch" => Ok(Estimator::Batch),
            other => Err(Error::InvalidArgument(format!(
                "unknown advantage estimator `{other}` (available: {})",
                ESTIMATOR_NAMES.join(", ")
            ))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Estimator::Grpo => "grpo",
            Estimator::DrGrpo => "dr-grpo",
            Estimator::Batch => "batch",
        }
    }
}

/// Which rows form a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// The `group_id` column (within each run); rows without one get no advantage.
    #[default]
    GroupId,
    /// `env_id` and `task_id`: every rollout of the same task, whatever run or group it came from.
    Task,
}

impl GroupBy {
    /// `group` or `task`.
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "group" | "group_id" => Ok(GroupBy::GroupId),
            "task" => Ok(GroupBy::Task),
            other => Err(Error::InvalidArgument(format!(
                "unknown grouping `{other}` (available: group, task)"
            ))),
        }
    }

    /// The key of `traj`'s group, or `None` when it has none. A `group_id` is unique within its run,
    /// so the key is the run id and the group id: two runs into one directory never merge groups.
    pub fn key(&self, traj: &Trajectory) -> Option<String> {
        match self {
            GroupBy::GroupId => traj
                .group_id
                .as_ref()
                .map(|g| format!("{}\u{1f}{g}", traj.run_id)),
            GroupBy::Task if traj.task_id.is_empty() => None,
            GroupBy::Task => Some(prompt_key(traj)),
        }
    }
}

/// The key of a prompt in pass-rate histories: `{env_id}/{task_id}`.
pub fn prompt_key(traj: &Trajectory) -> String {
    format!("{}/{}", traj.env_id, traj.task_id)
}

/// Estimator, reward preset and grouping: everything [`compute_advantages`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdvantageOptions {
    pub estimator: Estimator,
    pub preset: RewardPreset,
    pub group_by: GroupBy,
}

/// What [`compute_advantages`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdvantageSummary {
    /// Groups found.
    pub groups: usize,
    /// Groups whose rewards are all equal (every advantage 0): no learning signal.
    pub zero_variance_groups: usize,
    /// Rows that belong to no group (their advantage is left null).
    pub ungrouped_rows: usize,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation (n - 1); 0 for fewer than two values.
fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

/// Whether every reward of a group is the same (no learning signal).
pub fn is_zero_variance(rewards: &[f64]) -> bool {
    rewards.windows(2).all(|w| (w[0] - w[1]).abs() <= 1e-12)
}

/// Advantages of one group's rewards. `batch_std` is the batch's std for [`Estimator::Batch`] and is
/// ignored otherwise.
pub fn group_advantages(rewards: &[f64], estimator: Estimator, batch_std: f64) -> Vec<f64> {
    if rewards.is_empty() {
        return Vec::new();
    }
    let m = mean(rewards);
    let scale = match estimator {
        Estimator::Grpo => sample_std(rewards) + STD_EPS,
        Estimator::DrGrpo => 1.0,
        Estimator::Batch => batch_std + STD_EPS,
    };
    rewards.iter().map(|r| (r - m) / scale).collect()
}

/// Groups rows by `group_by`: row indices per key, in first-seen order of the keys.
pub fn groups_of(rows: &[Trajectory], group_by: GroupBy) -> Vec<(String, Vec<usize>)> {
    let mut order: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(key) = group_by.key(row) else {
            continue;
        };
        match index.get(&key) {
            Some(&slot) => order[slot].1.push(i),
            None => {
                index.insert(key.clone(), order.len());
                order.push((key, vec![i]));
            }
        }
    }
    order
}

/// Sets `shaped_reward` (every row) and `advantage` (every grouped row) on `rows`. Rows outside any
/// group keep a null advantage. For [`Estimator::Batch`] the batch is `rows`.
pub fn compute_advantages(rows: &mut [Trajectory], options: &AdvantageOptions) -> AdvantageSummary {
    for row in rows.iter_mut() {
        row.shaped_reward = Some(options.preset.reward(row));
        row.advantage = None;
    }
    let groups = groups_of(rows, options.group_by);
    let grouped: Vec<f64> = groups
        .iter()
        .flat_map(|(_, members)| {
            members
                .iter()
                .map(|&i| rows[i].shaped_reward.unwrap_or(0.0))
        })
        .collect();
    let batch_std = sample_std(&grouped);
    let mut summary = AdvantageSummary {
        groups: groups.len(),
        ungrouped_rows: rows.len() - grouped.len(),
        ..AdvantageSummary::default()
    };
    for (_, members) in &groups {
        let rewards: Vec<f64> = members
            .iter()
            .map(|&i| rows[i].shaped_reward.unwrap_or(0.0))
            .collect();
        if is_zero_variance(&rewards) {
            summary.zero_variance_groups += 1;
        }
        for (&i, advantage) in
            members
                .iter()
                .zip(group_advantages(&rewards, options.estimator, batch_std))
        {
            rows[i].advantage = Some(advantage);
        }
    }
    summary
}

/// Keys of the groups whose training rewards (`shaped_reward`, else `total_reward`) are all equal.
pub fn zero_variance_keys(rows: &[Trajectory], group_by: GroupBy) -> HashSet<String> {
    groups_of(rows, group_by)
        .into_iter()
        .filter(|(_, members)| {
            let rewards: Vec<f64> = members
                .iter()
                .map(|&i| rows[i].shaped_reward.unwrap_or(rows[i].total_reward))
                .collect();
            is_zero_variance(&rewards)
        })
        .map(|(key, _)| key)
        .collect()
}

/// Drops the rows of zero-variance groups (ScaleRL: they carry no gradient); returns how many rows
/// were dropped. Ungrouped rows are kept.
pub fn drop_zero_variance(rows: &mut Vec<Trajectory>, group_by: GroupBy) -> usize {
    let flat = zero_variance_keys(rows, group_by);
    let before = rows.len();
    rows.retain(|row| group_by.key(row).is_none_or(|key| !flat.contains(&key)));
    before - rows.len()
}

/// Attempts and successes of one prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassCount {
    pub attempts: u64,
    pub successes: u64,
}

impl PassCount {
    pub fn rate(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.successes as f64 / self.attempts as f64
        }
    }
}

/// ScaleRL's "No-Positive-Resampling" threshold: prompts at or above it are dropped from later runs.
pub const DEFAULT_DROP_PASS_RATE: f64 = 0.9;

#[derive(Serialize, Deserialize)]
struct HistoryFile {
    version: u32,
    prompts: BTreeMap<String, PassCount>,
}

/// Per-prompt pass rates accumulated across runs, kept in a JSON file the user names:
/// `{"version": 1, "prompts": {"countdown-v0/<task_id>": {"attempts": 8, "successes": 7}, ...}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassRateHistory {
    pub prompts: BTreeMap<String, PassCount>,
}

impl PassRateHistory {
    /// Loads a history file; a file that does not exist yet is an empty history.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(Error::Io {
                    context: path.display().to_string(),
                    source,
                });
            }
        };
        let file: HistoryFile = serde_json::from_str(&text).map_err(|e| {
            Error::InvalidArgument(format!(
                "{} is not a sandgym pass-rate history: {e}",
                path.display()
            ))
        })?;
        if file.version != 1 {
            return Err(Error::InvalidArgument(format!(
                "{}: pass-rate history version {} is not supported (this build reads version 1)",
                path.display(),
                file.version
            )));
        }
        Ok(PassRateHistory {
            prompts: file.prompts,
        })
    }

    /// Writes the history atomically (a temp file renamed over `path`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = HistoryFile {
            version: 1,
            prompts: self.prompts.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("history serializes");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pass-rates.json".into());
        let tmp: PathBuf = path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| Error::Io {
                context: path.display().to_string(),
                source,
            })
    }

    /// Counts the rows' outcomes (rows whose reset failed, without a task id, are not counted).
    pub fn record(&mut self, rows: &[Trajectory]) {
        for row in rows.iter().filter(|r| !r.task_id.is_empty()) {
            let entry = self.prompts.entry(prompt_key(row)).or_default();
            entry.attempts += 1;
            entry.successes += u64::from(row.success);
        }
    }

    /// The prompt's pass rate so far, `None` if never attempted.
    pub fn rate(&self, key: &str) -> Option<f64> {
        self.prompts
            .get(key)
            .filter(|c| c.attempts > 0)
            .map(PassCount::rate)
    }

    /// Whether a prompt is retired: attempted, with a pass rate of at least `threshold`.
    pub fn is_dropped(&self, key: &str, threshold: f64) -> bool {
        self.rate(key).is_some_and(|rate| rate >= threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: &str, task: &str, reward: f64) -> Trajectory {
        Trajectory {
            env_id: "e".into(),
            task_id: task.into(),
            group_id: Some(group.into()),
            total_reward: reward,
            success: reward > 0.5,
            ..Trajectory::default()
        }
    }

    #[test]
    fn estimators() {
        let r = [1.0, 0.0, 0.0, 1.0];
        let grpo = group_advantages(&r, Estimator::Grpo, 0.0);
        // mean 0.5, sample std sqrt(1/3).
        let s = (1.0f64 / 3.0).sqrt() + STD_EPS;
        assert!((grpo[0] - 0.5 / s).abs() < 1e-12 && (grpo[1] + 0.5 / s).abs() < 1e-12);
        assert_eq!(
            group_advantages(&r, Estimator::DrGrpo, 0.0),
            vec![0.5, -0.5, -0.5, 0.5]
        );
        let batch = group_advantages(&r, Estimator::Batch, 2.0);
        assert!((batch[0] - 0.5 / (2.0 + STD_EPS)).abs() < 1e-12);
        assert_eq!(
            group_advantages(&[1.0, 1.0], Estimator::Grpo, 0.0),
            vec![0.0, 0.0]
        );
        assert_eq!(group_advantages(&[3.0], Estimator::Grpo, 0.0), vec![0.0]);
    }

    #[test]
    fn compute_over_rows_groups_and_batches() {
        let mut rows = vec![
            row("a", "t1", 1.0),
            row("b", "t2", 1.0),
            row("a", "t1", 0.0),
            row("b", "t2", 1.0),
            Trajectory {
                group_id: None,
                ..row("x", "t3", 1.0)
            },
        ];
        let options = AdvantageOptions {
            estimator: Estimator::DrGrpo,
            ..AdvantageOptions::default()
        };
        let summary = compute_advantages(&mut rows, &options);
        assert_eq!(summary.groups, 2);
        assert_eq!(summary.zero_variance_groups, 1);
        assert_eq!(summary.ungrouped_rows, 1);
        let adv: Vec<Option<f64>> = rows.iter().map(|r| r.advantage).collect();
        assert_eq!(adv, vec![Some(0.5), Some(0.0), Some(-0.5), Some(0.0), None]);
        assert!(rows.iter().all(|r| r.shaped_reward.is_some()));

        // By task, all five rows are grouped: batch rewards [1, 0, 1, 1, 1], sample std sqrt(0.2).
        let options = AdvantageOptions {
            estimator: Estimator::Batch,
            preset: RewardPreset::by_name("env").unwrap(),
            group_by: GroupBy::Task,
        };
        compute_advantages(&mut rows, &options);
        assert!((rows[0].advantage.unwrap() - 0.5 / (0.2f64.sqrt() + STD_EPS)).abs() < 1e-9);
        // By task, the ungrouped row has a task id and forms its own group.
        assert_eq!(rows[4].advantage, Some(0.0));

        let mut kept = rows.clone();
        assert_eq!(drop_zero_variance(&mut kept, GroupBy::GroupId), 2);
        assert_eq!(kept.len(), 3);
    }

    #[test]
    fn pass_rate_history_round_trips_and_retires_easy_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rates.json");
        let mut history = PassRateHistory::load(&path).unwrap();
        assert!(history.prompts.is_empty());
        let mut rows: Vec<Trajectory> = (0..10).map(|_| row("g", "easy", 1.0)).collect();
        rows.push(row("h", "hard", 0.0));
        rows.push(row("h", "hard", 1.0));
        history.record(&rows);
        history.save(&path).unwrap();
        let back = PassRateHistory::load(&path).unwrap();
        assert_eq!(back, history);
        assert!(back.is_dropped("e/easy", 0.9));
        assert!(!back.is_dropped("e/hard", 0.9));
        assert!(!back.is_dropped("e/never", 0.9));
        std::fs::write(&path, "{\"prompts\": 3}").unwrap();
        let err = PassRateHistory::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a sandgym pass-rate history"), "{err}");
    }
}
