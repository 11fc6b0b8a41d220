//! The simulated user's turn: when an env asks for a user reply (a `user_turn` in its output, tau envs
//! with `"mode": "user"`), a user policy answers it. The collector plays user turns with
//! [`play_user_turn`]; the Python `SandgymEnv` with a `user_policy` calls the same steps through the
//! binding. A user policy is any [`Policy`]: it sees the user's own view (`UserTurn::messages`), no
//! tools, and, if it asks, the env's scripted user reply (its expert) and the user's admissible replies.
//!
//! The turn is split in three steps — [`prepare`] (reads the env), [`reply`] (asks the policy, without
//! the env) and `Env::user_step` — so a caller whose policy needs the env itself while it answers (a
//! Python function calling `env.expert_action()`) can release the env in between.

use sandgym_abi::{Action, StepOutput, UserTurn};

use crate::env::Env;
use crate::error::{Error, Result};
use crate::policy::{Policy, PolicyInput};

/// Seed stream of the user policy: distinct from the agent's (which uses the episode's sampling seed
/// itself), so a random agent and a random user do not draw the same numbers.
pub fn user_seed(sample_seed: u64) -> u64 {
    sample_seed ^ 0x5553_4552_5f50_4f4c // "USER_POL"
}

/// The user policy, or the error an episode ends with when the env asks for a user without one.
pub fn require(user_policy: Option<&dyn Policy>) -> Result<&dyn Policy> {
    user_policy.ok_or_else(|| {
        Error::Policy(
            "the env asks for a simulated user's turn (e.g. a tau env with \"mode\": \"user\"), \
             but no user policy was given (`--user-policy`, `user_policy=`)"
                .into(),
        )
    })
}

/// What the env tells a user policy beyond the user's view: fetched only when the policy needs it.
#[derive(Debug, Clone, Default)]
pub struct UserHints {
    /// The env's scripted user reply (`Env::expert` on a user turn).
    pub expert: Option<Action>,
    /// The user's admissible replies.
    pub admissible: Vec<Action>,
}

/// Reads from `env` what `policy` needs to answer the pending user turn.
pub fn prepare(env: &mut Env, policy: &dyn Policy) -> Result<UserHints> {
    let needs = policy.needs();
    Ok(UserHints {
        expert: if needs.expert { env.expert()? } else { None },
        admissible: if needs.admissible {
            env.actions()?
        } else {
            Vec::new()
        },
    })
}

/// Asks `policy` for the user's reply to `turn` (user turn number `index` of the episode); a reply
/// is plain text, so an answer with tool calls is a `policy` error.
pub fn reply(
    policy: &dyn Policy,
    turn: &UserTurn,
    hints: &UserHints,
    sample_seed: u64,
    index: u32,
) -> Result<String> {
    let action = policy.act(&PolicyInput {
        messages: &turn.messages,
        tools: &[],
        expert: hints.expert.as_ref(),
        admissible: &hints.admissible,
        episode_seed: user_seed(sample_seed),
        turn: index,
    })?;
    if !action.tool_calls.is_empty() {
        return Err(Error::Policy(format!(
            "user policy `{}` answered with tool calls; a user turn is plain text",
            policy.name()
        )));
    }
    Ok(action.content)
}

/// Plays the pending user turn `turn` on `env` with `user_policy` and returns the step's output.
pub fn play_user_turn(
    env: &mut Env,
    turn: &UserTurn,
    user_policy: Option<&dyn Policy>,
    sample_seed: u64,
    index: u32,
) -> Result<StepOutput> {
    let policy = require(user_policy)?;
    let hints = prepare(env, policy)?;
    let content = reply(policy, turn, &hints, sample_seed, index)?;
    env.user_step(&content)
}
