//! Policies: who chooses the next action. A policy sees the conversation and, if it asks for them, the
//! env's expert action and admissible actions (fetched by the collector); it never touches an env.
//!
//! Policies are shared across rayon workers (`Send + Sync`) and stateless per call: randomness comes from
//! the episode seed and turn in `PolicyInput`, so a run is reproducible whatever the thread schedule.

mod expert;
mod random;

pub use expert::ExpertPolicy;
pub use random::RandomPolicy;

use sandgym_abi::{Action, Message};
use serde_json::Value;

use crate::error::{Error, Result};

/// What a policy may look at to choose an action.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The conversation so far, system prompt first.
    pub messages: &'a [Message],
    /// Tool schemas of the env (OpenAI function-calling shape).
    pub tools: &'a [Value],
    /// The expert's action in this state, when the policy asked for it and the env has one.
    pub expert: Option<&'a Action>,
    /// Admissible actions in this state, when the policy asked for them and the env lists them.
    pub admissible: &'a [Action],
    /// Seed of the episode, for reproducible sampling.
    pub episode_seed: u64,
    /// Index of the turn being chosen (0-based).
    pub turn: u32,
}

/// What a policy needs the collector to fetch from the env before each turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub expert: bool,
    pub admissible: bool,
}

/// Chooses actions.
pub trait Policy: Send + Sync {
    /// Name recorded in the `policy` column.
    fn name(&self) -> &str;

    /// Which env queries the collector must answer before calling `act`.
    fn needs(&self) -> Needs {
        Needs::default()
    }

    /// The action for this turn. An error ends the episode with `error_kind = "policy"`.
    fn act(&self, input: &PolicyInput<'_>) -> Result<Action>;
}

/// Builds a policy by name: `expert` or `random`.
pub fn by_name(name: &str) -> Result<Box<dyn Policy>> {
    match name {
        "expert" => Ok(Box::new(ExpertPolicy)),
        "random" => Ok(Box::new(RandomPolicy::default())),
        other => Err(Error::InvalidArgument(format!(
            "unknown policy `{other}` (available: expert, random)"
        ))),
    }
}

/// Names accepted by [`by_name`].
pub const POLICY_NAMES: &[&str] = &["expert", "random"];
