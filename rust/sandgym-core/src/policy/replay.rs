//! The `replay` policy: plays back the agent's actions of earlier trajectories (a Parquet file or
//! directory written by sandgym).
//!
//! An episode is matched to a recorded one by its conversation: the recorded trajectory whose messages
//! begin with the episode's conversation so far (so the same task, and the same observations up to now)
//! gives its next assistant message as the action. Among several (a group of rollouts of one task), the
//! one recorded with the episode's sampling seed is preferred, then the one with its seed. A conversation
//! no recorded trajectory continues (the env answered differently, or the recording ended) is an error
//! for that episode, so a replay that drifts is visible instead of silently wrong.

use std::collections::HashMap;
use std::path::Path;

use sandgym_abi::{Action, Message, Role};

use super::{Policy, PolicyInput};
use crate::error::{Error, Result};
use crate::trajectory::Trajectory;

/// Replays recorded actions; see the module docs.
#[derive(Debug, Clone)]
pub struct ReplayPolicy {
    /// Recorded episodes by their opening (the messages before the first assistant message).
    by_opening: HashMap<String, Vec<Trajectory>>,
    episodes: usize,
}

/// The key of a conversation's opening: its messages before the first assistant message.
fn opening_key(messages: &[Message]) -> String {
    let end = messages
        .iter()
        .position(|m| m.role == Role::Assistant)
        .unwrap_or(messages.len());
    serde_json::to_string(&messages[..end]).unwrap_or_default()
}

impl ReplayPolicy {
    /// Reads the trajectories to replay from a Parquet file or a directory of part files.
    pub fn from_path(path: &Path) -> Result<Self> {
        let rows = crate::store::read_dir_or_file(path).map_err(|e| {
            Error::InvalidArgument(format!(
                "the replay policy cannot read trajectories from {}: {e}",
                path.display()
            ))
        })?;
        if rows.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} holds no trajectories to replay",
                path.display()
            )));
        }
        Ok(Self::from_trajectories(rows))
    }

    /// Replays these trajectories.
    pub fn from_trajectories(rows: Vec<Trajectory>) -> Self {
        let episodes = rows.len();
        let mut by_opening: HashMap<String, Vec<Trajectory>> = HashMap::new();
        for row in rows {
            by_opening
                .entry(opening_key(&row.messages))
                .or_default()
                .push(row);
        }
        ReplayPolicy {
            by_opening,
            episodes,
        }
    }

    /// How many recorded episodes it holds.
    pub fn episodes(&self) -> usize {
        self.episodes
    }
}

impl Policy for ReplayPolicy {
    fn name(&self) -> &str {
        "replay"
    }

    fn act(&self, input: &PolicyInput<'_>) -> Result<Action> {
        let seen = input.messages;
        let Some(candidates) = self.by_opening.get(&opening_key(seen)) else {
            return Err(Error::Policy(
                "replay: no recorded episode starts like this one (another task or env?)".into(),
            ));
        };
        let continues = |t: &&Trajectory| {
            t.messages.len() > seen.len()
                && t.messages[..seen.len()] == *seen
                && t.messages[seen.len()].role == Role::Assistant
        };
        let matching: Vec<&Trajectory> = candidates.iter().filter(continues).collect();
        let chosen = matching
            .iter()
            .find(|t| t.sample_seed == input.episode_seed)
            .or_else(|| matching.iter().find(|t| t.seed == input.episode_seed))
            .or_else(|| matching.first());
        let Some(recorded) = chosen else {
            return Err(Error::Policy(format!(
                "replay: none of the {} recorded episode(s) of this task continues the conversation \
                 at turn {} (the env answered differently, or the recording ends here)",
                candidates.len(),
                input.turn
            )));
        };
        let message = &recorded.messages[seen.len()];
        // A recorded format error is replayed as one, so the env gives the same observation.
        let format_error = recorded
            .messages
            .get(seen.len() + 1)
            .filter(|m| m.role == Role::User)
            .and_then(|m| m.content.strip_prefix("Format error: "))
            .map(|rest| {
                rest.split_once(". Call a tool as")
                    .map_or(rest, |(error, _)| error)
                    .to_string()
            });
        Ok(Action {
            content: message.content.clone(),
            tool_calls: message.tool_calls.clone(),
            format_error,
        })
    }
}
