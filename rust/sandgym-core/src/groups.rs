//! Group rollouts: the buffer that holds a group's rows until its last member finishes, so the group's
//! advantages can be computed before its rows are written. Which episodes make a group, and the seeds
//! its members sample with, are planned in [`crate::collect::plan`]; this module only sees rows.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::advantage::{self, AdvantageOptions, Estimator};
use crate::trajectory::Trajectory;

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

#[cfg(test)]
mod tests {
    use super::*;

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
