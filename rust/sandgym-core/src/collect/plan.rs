//! Which episodes a run plays: the plan (`EpisodeSpec`s, seeds and tasks), the members of each planned
//! episode's group and their sampling seeds, and what trims a plan before it runs: resume (rows already
//! stored), the pass-rate filter (prompts already solved) and sharding (one part of the plan per
//! worker). Nothing here plays an episode; the pass-rate filter only resets envs to learn task ids.
//!
//! Every member of group `i` resets with the planned seed and task (so all play the same task) and
//! differs only in its `sample_seed`, the seed its policy samples with: member `j` samples with
//! `seed + j · 0x9E3779B97F4A7C15 (mod 2^64)`, so member 0 samples exactly like an ungrouped episode,
//! the `G` seeds of a group are always distinct, and a rerun reproduces them.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::advantage::PassRateHistory;
use crate::env::{Env, EnvOptions};
use crate::error::{Error, Result};
use crate::registry;

/// One planned episode.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeSpec {
    pub env_id: String,
    /// Index of the episode among its env's episodes (`seed` - first seed); with the env id it makes the
    /// `episode_id`, stable when the same plan is run again with more episodes.
    pub episode_index: u64,
    pub seed: u64,
    /// The task to play, or `None` to let the env generate one from the seed.
    pub task: Option<Value>,
}

impl EpisodeSpec {
    /// The row's `episode_id`: `{env_id}/{episode_index}`, stable for the same plan.
    pub fn episode_id(&self) -> String {
        format!("{}/{}", self.env_id, self.episode_index)
    }
}

/// Plans `episodes` episodes per env with seeds `seed, seed + 1, …`. With `tasks`, episode `i` of each env
/// plays `tasks[i % tasks.len()]` instead of a generated task.
pub fn plan(
    env_ids: &[String],
    episodes: u64,
    seed: u64,
    tasks: Option<&[Value]>,
) -> Vec<EpisodeSpec> {
    let mut specs = Vec::with_capacity(env_ids.len() * episodes as usize);
    for env_id in env_ids {
        for i in 0..episodes {
            specs.push(EpisodeSpec {
                env_id: env_id.clone(),
                episode_index: i,
                seed: seed.wrapping_add(i),
                task: tasks
                    .filter(|t| !t.is_empty())
                    .map(|t| t[(i % t.len() as u64) as usize].clone()),
            });
        }
    }
    specs
}

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

/// Shard `index` of `count` (0-based): the planned episodes `index, index + count, index + 2·count, …`.
/// The `count` shards are disjoint and together hold the whole plan, in plan order; a group stays in
/// one shard (it is one planned episode). Interleaving rather than cutting into blocks keeps every
/// shard's mix of envs and tasks like the whole plan's.
pub fn shard(plan: &[EpisodeSpec], index: usize, count: usize) -> Result<Vec<EpisodeSpec>> {
    if count == 0 || index >= count {
        return Err(Error::InvalidArgument(format!(
            "shard {index} of {count}: the index must be below the count, and the count at least 1"
        )));
    }
    Ok(plan.iter().skip(index).step_by(count).cloned().collect())
}

/// Drops the episodes whose rows already exist in `out_dir`, so a run that was killed can be resumed by
/// running the same plan again. Returns the remaining plan and how many episodes were skipped.
pub fn skip_done(plan: Vec<EpisodeSpec>, out_dir: &Path) -> Result<(Vec<EpisodeSpec>, usize)> {
    let done = crate::store::episode_ids(out_dir).map_err(Error::storage)?;
    let before = plan.len();
    let rest: Vec<EpisodeSpec> = plan
        .into_iter()
        .filter(|spec| !done.contains(&spec.episode_id()))
        .collect();
    let skipped = before - rest.len();
    Ok((rest, skipped))
}

/// [`skip_done`] for groups of `group_size`: drops the planned groups whose members are all stored in
/// `out_dir` already. A group stored only in part (a run killed between two part files) is an error
/// naming it: its advantages were computed over the whole group, so it cannot be completed by running
/// the missing members alone.
pub fn skip_done_groups(
    plan: Vec<EpisodeSpec>,
    out_dir: &Path,
    group_size: u32,
) -> Result<(Vec<EpisodeSpec>, usize)> {
    if group_size <= 1 {
        return skip_done(plan, out_dir);
    }
    let done = crate::store::episode_ids(out_dir).map_err(Error::storage)?;
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
            return Err(Error::InvalidArgument(format!(
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
/// (on one configured env per env id) — far less than playing it. With an empty history nothing is
/// reset and the plan is kept whole.
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
    let mut envs: HashMap<String, Env> = HashMap::new();
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
    fn shards_are_disjoint_cover_the_plan_and_are_deterministic() {
        let ids = ["a-v0".to_string(), "b-v0".to_string()];
        let whole = plan(&ids, 7, 3, None);
        for count in 1..=20 {
            let shards: Vec<Vec<EpisodeSpec>> = (0..count)
                .map(|i| shard(&whole, i, count).unwrap())
                .collect();
            assert_eq!(
                shards,
                (0..count)
                    .map(|i| shard(&whole, i, count).unwrap())
                    .collect::<Vec<_>>()
            );
            let mut ids: Vec<String> = shards
                .iter()
                .flatten()
                .map(EpisodeSpec::episode_id)
                .collect();
            assert_eq!(ids.len(), whole.len(), "{count} shards");
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), whole.len(), "{count} shards overlap");
            // Sizes differ by at most one, and each shard keeps plan order.
            let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            for part in &shards {
                let positions: Vec<usize> = part
                    .iter()
                    .map(|s| whole.iter().position(|w| w == s).unwrap())
                    .collect();
                assert!(positions.windows(2).all(|w| w[0] < w[1]));
            }
        }
        assert_eq!(shard(&whole, 0, 1).unwrap(), whole);
        assert!(shard(&whole, 2, 2).is_err());
        assert!(shard(&whole, 0, 0).is_err());
    }
}
