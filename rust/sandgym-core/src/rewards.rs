//! Reward presets and per-trajectory tool-use metrics.
//!
//! A [`RewardPreset`] turns a finished [`Trajectory`] into the scalar that advantages are computed from
//! (the `shaped_reward` column). The presets follow "Demystifying Reinforcement Learning in Agentic
//! Reasoning" (arXiv:2510.11701), in both the paper's and the released code's variants, plus DAPO-style
//! overlong shaping:
//!
//! | preset | success | failure |
//! |---|---|---|
//! | `env` | `total_reward` | `total_reward` |
//! | `outcome` | `+1` | `-1` |
//! | `demystify-paper` (Eq. 8) | `1 + min(0.1·n, cap)` | `-1 + min(0.1·n, cap)` |
//! | `demystify-code` (`recipe/demystify/reward.py`) | `+1` | `min(-0.6, -1 + (turns - 2) / 2 · 0.1)` |
//!
//! with `n` the tool calls and `turns` the conversation's messages after the system prompt (user,
//! assistant and tool messages: the released code's `num_turns`). "Success" is the env's `success`
//! flag. Overlong shaping (Eq. 9) adds `0` up to `max_len - buffer`, then falls linearly to `-factor`
//! at `max_len`, and is `-factor` beyond; the length is `response_chars` (see [`response_chars`]).

use sandgym_abi::Role;

use crate::error::{Error, Result};
use crate::trajectory::Trajectory;

pub use crate::trajectory::{response_chars, tool_successes};

/// The outcome part of a reward preset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The env's own reward, `total_reward`.
    Env,
    /// `+1` on success, `-1` otherwise (ScaleRL's pass/fail reward).
    PassFail,
    /// The paper's Eq. 8: `±1 + min(bonus · tool_calls, cap)`. The paper clips the bonus without giving
    /// the cap in its body; the default `cap = 0.4` matches the released code's `-0.6` ceiling.
    DemystifyPaper { bonus: f64, cap: f64 },
    /// The released code: `+1` on success, else `min(-0.6, -1 + (turns - 2) / 2 · 0.1)`.
    DemystifyCode,
}

/// DAPO-style overlong shaping (the paper's Eq. 9) on `response_chars`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlong {
    /// `L_max`: the length at and beyond which the full penalty applies.
    pub max_len: u64,
    /// `L_cache`: the soft band before `max_len` in which the penalty grows linearly (code: 4,096).
    pub buffer: u64,
    /// The full penalty (code: 1.0).
    pub factor: f64,
}

impl Overlong {
    /// Checks `0 < buffer <= max_len` and a finite, non-negative factor.
    pub fn new(max_len: u64, buffer: u64, factor: f64) -> Result<Self> {
        if buffer == 0 || buffer > max_len {
            return Err(Error::InvalidArgument(format!(
                "overlong shaping needs 0 < buffer <= max length, got buffer {buffer} and max length {max_len}"
            )));
        }
        if !(factor.is_finite() && factor >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "overlong penalty factor must be finite and >= 0, got {factor}"
            )));
        }
        Ok(Overlong {
            max_len,
            buffer,
            factor,
        })
    }

    /// The shaping term for a response of `len`: 0, then linear down to `-factor`, then `-factor`.
    pub fn penalty(&self, len: u64) -> f64 {
        let expected = self.max_len - self.buffer;
        if len <= expected {
            0.0
        } else if len <= self.max_len {
            (expected as f64 - len as f64) / self.buffer as f64 * self.factor
        } else {
            -self.factor
        }
    }
}

/// How a trajectory's training reward is computed: an outcome term plus optional overlong shaping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardPreset {
    pub outcome: Outcome,
    pub overlong: Option<Overlong>,
}

impl Default for RewardPreset {
    fn default() -> Self {
        RewardPreset {
            outcome: Outcome::Env,
            overlong: None,
        }
    }
}

/// Names accepted by [`RewardPreset::by_name`].
pub const PRESET_NAMES: &[&str] = &["env", "outcome", "demystify-paper", "demystify-code"];

impl RewardPreset {
    /// A preset by name (see [`PRESET_NAMES`]), without overlong shaping.
    pub fn by_name(name: &str) -> Result<Self> {
        let outcome = match name {
            "env" => Outcome::Env,
            "outcome" => Outcome::PassFail,
            "demystify-paper" => Outcome::DemystifyPaper {
                bonus: 0.1,
                cap: 0.4,
            },
            "demystify-code" => Outcome::DemystifyCode,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown reward preset `{other}` (available: {})",
                    PRESET_NAMES.join(", ")
                )));
            }
        };
        Ok(RewardPreset {
            outcome,
            overlong: None,
        })
    }

    /// The preset's name, as accepted by [`RewardPreset::by_name`].
    pub fn name(&self) -> &'static str {
        match self.outcome {
            Outcome::Env => "env",
            Outcome::PassFail => "outcome",
            Outcome::DemystifyPaper { .. } => "demystify-paper",
            Outcome::DemystifyCode => "demystify-code",
        }
    }

    /// Adds overlong shaping.
    pub fn with_overlong(mut self, overlong: Option<Overlong>) -> Self {
        self.overlong = overlong;
        self
    }

    /// The training reward of `traj`.
    pub fn reward(&self, traj: &Trajectory) -> f64 {
        let outcome = match self.outcome {
            Outcome::Env => traj.total_reward,
            Outcome::PassFail => sign(traj.success),
            Outcome::DemystifyPaper { bonus, cap } => {
                sign(traj.success) + (bonus * f64::from(traj.num_tool_calls)).min(cap)
            }
            Outcome::DemystifyCode => {
                if traj.success {
                    1.0
                } else {
                    let turns = traj
                        .messages
                        .iter()
                        .filter(|m| m.role != Role::System)
                        .count() as f64;
                    (-1.0 + (turns - 2.0) / 2.0 * 0.1).min(-0.6)
                }
            }
        };
        let length = match self.overlong {
            Some(overlong) => overlong.penalty(traj.response_chars),
            None => 0.0,
        };
        outcome + length
    }
}

fn sign(success: bool) -> f64 {
    if success { 1.0 } else { -1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgym_abi::{Action, Message};

    fn traj(success: bool, tool_calls: u32, messages: usize) -> Trajectory {
        let mut all = vec![Message::system("s"), Message::user("q")];
        while all.len() < messages + 1 {
            all.push(Message::assistant(&Action::text("a")));
        }
        Trajectory {
            success,
            num_tool_calls: tool_calls,
            total_reward: 0.25,
            messages: all,
            ..Trajectory::default()
        }
    }

    #[test]
    fn presets_match_the_papers_formulas() {
        let env = RewardPreset::by_name("env").unwrap();
        assert_eq!(env.reward(&traj(true, 0, 2)), 0.25);
        let outcome = RewardPreset::by_name("outcome").unwrap();
        assert_eq!(outcome.reward(&traj(true, 3, 2)), 1.0);
        assert_eq!(outcome.reward(&traj(false, 3, 2)), -1.0);

        let paper = RewardPreset::by_name("demystify-paper").unwrap();
        assert!((paper.reward(&traj(true, 2, 2)) - 1.2).abs() < 1e-12);
        assert!((paper.reward(&traj(false, 2, 2)) + 0.8).abs() < 1e-12);
        // The bonus is clipped: 10 calls give +0.4, not +1.0.
        assert!((paper.reward(&traj(false, 10, 2)) + 0.6).abs() < 1e-12);

        let code = RewardPreset::by_name("demystify-code").unwrap();
        assert_eq!(code.reward(&traj(true, 5, 12)), 1.0);
        // user + answer: no bonus.
        assert!((code.reward(&traj(false, 0, 2)) + 1.0).abs() < 1e-12);
        // user + (call + result) + answer: one round, +0.1.
        assert!((code.reward(&traj(false, 1, 4)) + 0.9).abs() < 1e-12);
        // Many rounds: capped at -0.6.
        assert_eq!(code.reward(&traj(false, 20, 42)), -0.6);
        assert!(RewardPreset::by_name("nope").is_err());
    }

    #[test]
    fn overlong_shaping_is_dapo_style() {
        let o = Overlong::new(100, 40, 1.0).unwrap();
        assert_eq!(o.penalty(0), 0.0);
        assert_eq!(o.penalty(60), 0.0);
        assert!((o.penalty(80) + 0.5).abs() < 1e-12);
        assert_eq!(o.penalty(100), -1.0);
        assert_eq!(o.penalty(1000), -1.0);
        assert!(Overlong::new(10, 20, 1.0).is_err());
        assert!(Overlong::new(10, 0, 1.0).is_err());
        let preset = RewardPreset::by_name("outcome")
            .unwrap()
            .with_overlong(Some(o));
        let mut t = traj(true, 0, 2);
        t.response_chars = 90;
        assert!((preset.reward(&t) - 0.25).abs() < 1e-12);
    }
}
