//! Group rollouts: `G` episodes of the same task with different sampling seeds, the buffer that holds
//! a group's rows until its last member finishes (so advantages can be computed before they are
//! written), and the pass-rate filter applied to a plan before it runs.
//!
//! Every member of group `i` resets with the planned seed and task (so all play the same task) and
//! differs only in its `sample_seed`, the seed its policy samples with: member `j` samples with
//! `seed + j · 0x9E3779B97F4A7C15 (mod 2^64)`, so member 0 samples exactly like an ungrouped episode,
//! the `G` seeds of a group are always distinct, and a rerun reproduces them.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::advantage::{self, AdvantageOptions, Estimator, PassRateHistory};
use crate::collect::EpisodeSpec;
use crate::env::EnvOptions;
use crate::error::Result;
use crate::registry;
use crate::trajectory::Trajectory;

/// The sampling seed of member `index` of a group whose episodes reset with `seed`.
pub fn sample_seed(seed: u64, index: u32) -> u64 {
    seed.wrapping_add(u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The `group_id` of the group planned as `spec`: `{env_id}/{episode_index}`.
pub fn group_id(spec: &EpisodeSpec) -> String {
    spec.episode_id()
}

/// The `episode_id` of member `index` of `spec`'s group: `{env_id}/{episode_index}/{index}`.
pub fn member_episode_id(spec: &EpisodeSpec, index: u32) -> String {
    format!("{}/{index}", spec.episode_id())
}

/// Holds finished rows until their group is complete, computes the group's advantages, and hands the
/// rows on. With [`Estimator::Batch`] the whole run is the batch: rows are held until [`finish`].
///
/// [`finish`]: GroupBuffer::finish
pub struct GroupBuffer {
    expected: usize,
    options: Option<AdvantageOptions>,
    pending: Mutex<HashMap<String, Vec<Trajectory>>>,
}

impl GroupBuffer {
    /// A buffer for groups of `expected` rows, computing advantages with `options` (none when `None`).
    pub fn new(expected: usize, options: Option<AdvantageOptions>) -> Self {
        GroupBuffer {
            expected: expected.max(1),
            options,
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn holds_all(&self) -> bool {
        self.options
            .is_some_and(|o| o.estimator == Estimator::Batch)
    }

    fn complete(&self, mut rows: Vec<Trajectory>) -> Vec<Trajectory> {
        rows.sort_by_key(|r| r.group_index);
        if let Some(options) = &self.options {
            advantage::compute_advantages(&mut rows, options);
        }
        rows
    }

    /// Adds a row; returns the rows now ready to be written (its whole group, or nothing yet).
    pub fn push(&self, row: Trajectory) -> Vec<Trajectory> {
        let key = row
            .group_id
            .clone()
            .unwrap_or_else(|| row.episode_id.clone());
        let mut pending = self.pending.lock().expect("group buffer");
        let group = pending.entry(key.clone()).or_default();
        group.push(row);
        if self.holds_all() || group.len() < self.expected {
            return Vec::new();
        }
        let rows = pending.remove(&key).unwrap_or_default();
        drop(pending);
        self.complete(rows)
    }

    /// The rows still held (incomplete groups, or the whole run for `batch`), with advantages.
    pub fn finish(&self) -> Vec<Trajectory> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("group buffer"));
        let mut groups: Vec<(String, Vec<Trajectory>)> = pending.into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        if self.holds_all() {
            let mut rows: Vec<Trajectory> = groups
                .into_iter()
                .flat_map(|(_, mut rows)| {
                    rows.sort_by_key(|r| r.group_index);
                    rows
                })
                .collect();
            if let Some(options) = &self.options {
                advantage::compute_advantages(&mut rows, options);
            }
            return rows;
        }
        groups
            .into_iter()
            .flat_map(|(_, rows)| self.complete(rows))
            .collect()
    }
}

/// [`crate::collect::skip_done`] for groups of `group_size`: drops the planned groups whose members are
/// all stored in `out_dir` already. A group stored only in part (a run killed between two part files)
/// is an error naming it: its advantages were computed over the whole group, so it cannot be completed
/// by running the missing members alone.
pub fn skip_done_groups(
    plan: Vec<EpisodeSpec>,
    out_dir: &std::path::Path,
    group_size: u32,
) -> Result<(Vec<EpisodeSpec>, usize)> {
    if group_size <= 1 {
        return crate::collect::skip_done(plan, out_dir);
    }
    let done = crate::store::episode_ids(out_dir)?;
    let before = plan.len();
    let mut rest = Vec::with_capacity(plan.len());
    for spec in plan {
        let stored = (0..group_size)
            .filter(|&j| done.contains(&member_episode_id(&spec, j)))
            .count();
        if stored == group_size as usize {
            continue;
        }
        if stored > 0 {
            return Err(crate::error::Error::InvalidArgument(format!(
                "group {} is stored in part ({stored} of {group_size} members) in {}; remove its rows \
                 or collect into a new directory",
                group_id(&spec),
                out_dir.display()
            )));
        }
        rest.push(spec);
    }
    let skipped = before - rest.len();
    Ok((rest, skipped))
}

/// What [`filter_plan`] dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanFilter {
    /// Planned episodes (groups) kept.
    pub kept: usize,
    /// Planned episodes dropped because their prompt's pass rate is at or above the threshold.
    pub dropped: usize,
}

/// Drops the planned episodes whose prompt (`{env_id}/{task_id}`) has a pass rate of at least
/// `threshold` in `history` (ScaleRL's No-Positive-Resampling). The task id of a planned episode is
/// known only once the env has reset with its seed and task, so each planned episode costs one reset
/// (on a fork of one configured env per env id) — far less than playing it. With an empty history
/// nothing is reset and the plan is kept whole.
pub fn filter_plan(
    plan: Vec<EpisodeSpec>,
    history: &PassRateHistory,
    threshold: f64,
    env_options: &EnvOptions,
) -> Result<(Vec<EpisodeSpec>, PlanFilter)> {
    if history.prompts.is_empty() {
        let kept = plan.len();
        return Ok((plan, PlanFilter { kept, dropped: 0 }));
    }
    let mut envs: HashMap<String, crate::env::Env> = HashMap::new();
    let mut kept = Vec::with_capacity(plan.len());
    let mut dropped = 0;
    for spec in plan {
        if !envs.contains_key(&spec.env_id) {
            envs.insert(
                spec.env_id.clone(),
                registry::make(&spec.env_id, env_options.clone())?,
            );
        }
        let env = envs.get_mut(&spec.env_id).expect("env just made");
        // A reset that fails keeps the episode: the collector will record its error.
        let task_id = env
            .reset(spec.seed, spec.task.clone())
            .map(|r| r.task_id)
            .unwrap_or_default();
        let key = format!("{}/{task_id}", spec.env_id);
        if !task_id.is_empty() && history.is_dropped(&key, threshold) {
            dropped += 1;
        } else {
            kept.push(spec);
        }
    }
    let summary = PlanFilter {
        kept: kept.len(),
        dropped,
    };
    Ok((kept, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_seeds_differ_and_member_zero_is_the_episode_seed() {
        for seed in [0u64, 7, u64::MAX] {
            let seeds: Vec<u64> = (0..64).map(|j| sample_seed(seed, j)).collect();
            assert_eq!(seeds[0], seed);
            let unique: std::collections::HashSet<_> = seeds.iter().collect();
            assert_eq!(unique.len(), seeds.len());
        }
    }

    #[test]
    fn buffer_releases_complete_groups_with_advantages() {
        let buffer = GroupBuffer::new(2, Some(AdvantageOptions::default()));
        let row = |g: &str, j: u32, r: f64| Trajectory {
            group_id: Some(g.into()),
            group_index: j,
            total_reward: r,
            ..Trajectory::default()
        };
        assert!(buffer.push(row("a", 1, 1.0)).is_empty());
        assert!(buffer.push(row("b", 0, 1.0)).is_empty());
        let done = buffer.push(row("a", 0, 0.0));
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].group_index, 0);
        assert!(done[0].advantage.unwrap() < 0.0 && done[1].advantage.unwrap() > 0.0);
        // The incomplete group comes out at the end, its advantage computed over what it has.
        let rest = buffer.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].advantage, Some(0.0));
    }
}
