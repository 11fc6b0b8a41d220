//! Policies: who chooses the next action. A policy sees the conversation and, if it asks for them, the
//! env's expert action and admissible actions (fetched by the collector); it never touches an env.
//!
//! Policies are shared across rayon workers (`Send + Sync`) and stateless per call: randomness comes from
//! the episode seed and turn in `PolicyInput`, so a run is reproducible whatever the thread schedule.
//!
//! One batched interface serves every policy: [`Policy::act_batch`] takes the observations of many
//! episodes and returns one [`Decision`] each (the action, the model's raw text, how it was parsed,
//! token usage). Simple policies implement [`Policy::act`] and get `act_batch` for free; model-backed
//! ones (`openai`, the Python callable) implement `act_batch` and declare [`Policy::concurrency`], the
//! number of episodes the collector keeps in flight for them. [`Batcher`] turns the collector's
//! one-episode calls into real batches for policies that want them (a Python model called once per
//! batch).

mod batch;
mod expert;
mod openai;
mod random;
mod replay;

pub use crate::chat::openai_messages;
pub use batch::Batcher;
pub use expert::ExpertPolicy;
pub use openai::{OpenAiConfig, OpenAiPolicy};
pub use random::RandomPolicy;
pub use replay::ReplayPolicy;

use std::path::PathBuf;
use std::sync::Arc;

use sandgym_abi::{Action, Message};
use serde_json::Value;

use crate::chat::Format;
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

/// Tokens a model spent on one turn, as its server reported them (zero when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// One turn's decision: the action and how it came about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub action: Action,
    /// The model's raw output (its text, plus its structured tool calls as JSON when the server parsed
    /// them); empty for policies that choose structured actions.
    pub raw_output: String,
    /// Which parser read `raw_output` (a [`Format`] name, never `auto`), or `none` for a structured
    /// action. Whether it failed is `action.format_error`.
    pub parser: String,
    pub usage: Usage,
    /// Seconds the policy took for this decision (the request, for a model served over HTTP).
    pub latency_s: f64,
    /// The context's token ids, when the model's server returned them (vLLM's `prompt_token_ids` with
    /// `return_token_ids`) or the policy reported them.
    pub prompt_ids: Vec<u32>,
    /// The generated token ids, when the model's server returned them (vLLM's `return_token_ids`).
    pub completion_ids: Vec<u32>,
    /// The generated tokens' log-probabilities, when the server returned them (`logprobs`).
    pub completion_logprobs: Vec<f64>,
    /// The chunks of a chunked (Delethink) turn, when the policy generated it in chunks.
    pub chunks: Vec<crate::trajectory::TurnChunk>,
    /// Whether the iteration cap, not the model, ended the chunked turn.
    pub chunks_truncated: bool,
}

impl Decision {
    /// A structured action chosen without model text (expert, random, replay).
    pub fn structured(action: Action) -> Self {
        Decision {
            action,
            parser: "none".to_string(),
            ..Decision::default()
        }
    }
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

    /// Decisions for many episodes' turns at once, one result per input in order. An error ends only its
    /// own episode. The default calls [`Policy::act`] for each input.
    fn act_batch(&self, inputs: &[PolicyInput<'_>]) -> Vec<Result<Decision>> {
        inputs
            .iter()
            .map(|input| self.act(input).map(Decision::structured))
            .collect()
    }

    /// How many episodes the collector should keep in flight for this policy (e.g. concurrent requests
    /// to a model server); `None` lets the collector use its usual worker count (one per core).
    fn concurrency(&self) -> Option<usize> {
        None
    }
}

/// The one decision for one input, through the batched interface.
pub fn decide(policy: &dyn Policy, input: &PolicyInput<'_>) -> Result<Decision> {
    let mut decisions = policy.act_batch(std::slice::from_ref(input));
    match (decisions.pop(), decisions.is_empty()) {
        (Some(decision), true) => decision,
        _ => Err(Error::Policy(format!(
            "policy `{}` returned {} decisions for 1 input",
            policy.name(),
            decisions.len() + 1
        ))),
    }
}

/// What to build a policy from: its name and the settings of the policies that need any.
#[derive(Debug, Clone, Default)]
pub struct PolicySpec {
    /// `expert`, `random`, `openai` or `replay`.
    pub name: String,
    /// Settings of the `openai` policy.
    pub openai: OpenAiConfig,
    /// Trajectories (a Parquet file or directory) the `replay` policy plays back.
    pub replay_from: Option<PathBuf>,
}

impl PolicySpec {
    /// A spec for a policy that needs no settings (`expert`, `random`).
    pub fn named(name: &str) -> Self {
        PolicySpec {
            name: name.to_string(),
            ..PolicySpec::default()
        }
    }
}

/// Builds a policy from its spec. `openai` checks its settings (and asks the server for its model when
/// none is given); `replay` reads its trajectories.
pub fn build(spec: &PolicySpec) -> Result<Arc<dyn Policy>> {
    match spec.name.as_str() {
        "expert" => Ok(Arc::new(ExpertPolicy)),
        "random" => Ok(Arc::new(RandomPolicy::default())),
        "openai" => {
            let policy = OpenAiPolicy::new(spec.openai.clone())?;
            if spec.openai.n > 1 {
                let batch = policy.concurrency().unwrap_or(1);
                Ok(Arc::new(Batcher::new(policy, batch)))
            } else {
                Ok(Arc::new(policy))
            }
        }
        "replay" => match &spec.replay_from {
            Some(path) => Ok(Arc::new(ReplayPolicy::from_path(path)?)),
            None => Err(Error::InvalidArgument(
                "the replay policy needs trajectories to replay (`--replay PATH`, `replay_from=`)"
                    .into(),
            )),
        },
        other => Err(Error::InvalidArgument(format!(
            "unknown policy `{other}` (available: {})",
            POLICY_NAMES.join(", ")
        ))),
    }
}

/// Builds a policy that needs no settings by name: `expert` or `random` (or `openai` with its defaults).
pub fn by_name(name: &str) -> Result<Box<dyn Policy>> {
    match name {
        "expert" => Ok(Box::new(ExpertPolicy)),
        "random" => Ok(Box::new(RandomPolicy::default())),
        "openai" | "replay" => Err(Error::InvalidArgument(format!(
            "the `{name}` policy needs settings; build it with `policy::build`"
        ))),
        other => Err(Error::InvalidArgument(format!(
            "unknown policy `{other}` (available: {})",
            POLICY_NAMES.join(", ")
        ))),
    }
}

/// Names accepted by [`build`] (Python adds `python`: any callable).
pub const POLICY_NAMES: &[&str] = &["expert", "random", "openai", "replay"];

/// The parser names accepted by `--parser` / `parser=`.
pub fn parser_names() -> Vec<&'static str> {
    Format::ALL.iter().map(|f| f.name()).collect()
}
