//! The reference env, meant to be copied: "guess the number". The env picks a secret in `low..=high`;
//! the model calls `guess(n)` and hears "higher", "lower" or "correct"; a hit within `max_turns`
//! earns reward 1.
//!
//! Every [`Env`] hook below says what an author fills in and why. The rules every env follows (see
//! `docs/writing-envs.md`): all randomness comes from [`Rng`] seeded by `reset`; no clock, files or
//! network (those calls trap in the sandbox); bad input from the model is answered with a message,
//! never a panic; every tool call gets exactly one tool message, in call order.
//!
//! Config knobs (defaults): `low` 1, `high` 100 (0..=1000000), `max_turns` 10 (1..=1000).
//! Task JSON: `{"low": 1, "high": 100, "secret": 42}`.

use sandgym_sdk::{
    Action, Capabilities, Env, EnvInfo, Message, ResetOutput, Rng, StepOutput, ToolCall, ToolEnv,
    Turns, Value, config_int, function_tool, json, parse_arguments, reject_unknown_keys,
    string_argument, tool_error,
};

// The registered id is `{NAME}-v{VERSION}`. Bump VERSION whenever the same seed or task would play
// differently (new rules, new prompt, new generator): results recorded under the old id stay comparable.
pub const NAME: &str = "template";
pub const VERSION: u32 = 0;

// The system prompt is static (it is part of `info`), so keep it to the rules and the tools; anything
// that depends on the task or the config goes into the task statement that `reset` returns.
const SYSTEM_PROMPT: &str = "You are playing a guessing game. A secret whole number has been \
chosen from a range the task tells you. Call guess(n) with a whole number; the answer is \"higher\" \
(the secret is larger), \"lower\" (it is smaller) or \"correct\". Find the secret in as few guesses \
as you can: the number of turns is limited.";

/// Validated knobs. Keeping them in a struct, parsed once in `configure`, means `reset` and `step`
/// never handle raw JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub low: i64,
    pub high: i64,
    pub max_turns: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            low: 1,
            high: 100,
            max_turns: 10,
        }
    }
}

/// One task: everything needed to replay it, and nothing else, so a task file alone reproduces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    pub low: i64,
    pub high: i64,
    pub secret: i64,
}

impl Task {
    /// Tasks come from files too, so validate every field and name the bad one in the error: the
    /// message reaches whoever wrote the file.
    pub fn from_json(task: &Value) -> Result<Task, String> {
        let Value::Object(map) = task else {
            return Err(format!("task must be a JSON object, got {task}"));
        };
        if let Some(key) = map
            .keys()
            .find(|k| !["low", "high", "secret"].contains(&k.as_str()))
        {
            return Err(format!(
                "task has unknown field `{key}` (known: low, high, secret)"
            ));
        }
        // Bounded so the expert's midpoint arithmetic can never overflow.
        let field = |key: &str| -> Result<i64, String> {
            task.get(key)
                .and_then(Value::as_i64)
                .filter(|v| v.abs() <= 1_000_000_000_000)
                .ok_or_else(|| format!("task field `{key}` must be an integer in -10^12..=10^12"))
        };
        let (low, high, secret) = (field("low")?, field("high")?, field("secret")?);
        if low > high {
            return Err(format!(
                "task field `low` ({low}) must not exceed `high` ({high})"
            ));
        }
        if !(low..=high).contains(&secret) {
            return Err(format!(
                "task field `secret` ({secret}) must lie in {low}..={high}"
            ));
        }
        Ok(Task { low, high, secret })
    }

    pub fn to_json(&self) -> Value {
        json!({"low": self.low, "high": self.high, "secret": self.secret})
    }
}

/// The env's whole state. `Default` is the unconfigured instance the host creates; the host may
/// snapshot and restore the guest's memory, so all state must live here (or in other guest memory),
/// never outside the sandbox.
#[derive(Debug, Default)]
pub struct GuessNumber {
    config: Config,
    task: Option<Task>,
    /// The interval still consistent with the answers given so far; the expert bisects it.
    lo: i64,
    hi: i64,
    turns: Turns,
}

impl GuessNumber {
    /// Handles one tool call. Every failure is a message to the model (it can read it and retry);
    /// the turn still counts, which keeps a model from stalling forever with broken calls.
    fn call(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        if call.name != "guess" {
            return tool_error(
                call,
                format!("unknown tool `{}`; the only tool is guess", call.name),
            );
        }
        let guess = parse_arguments(call)
            .and_then(|args| string_argument(call, &args, "n", &["n"]))
            .and_then(|text| {
                text.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("argument `n` must be a whole number, got {text:?}"))
            });
        let guess = match guess {
            Ok(n) => n,
            Err(err) => return tool_error(call, err),
        };
        let task = self.task.expect("an active episode has a task");
        if guess == task.secret {
            // Terminal success: reward, `terminated` and `success` together.
            out.terminated = true;
            out.success = true;
            out.reward = 1.0;
            out.info = json!({"reason": "found the secret"});
            return Message::tool(call, "correct");
        }
        // Track what the answers reveal, so the expert (and `actions`) act on the same knowledge a
        // player has, not on the secret itself.
        if guess < task.secret {
            self.lo = self.lo.max(guess.saturating_add(1));
            Message::tool(call, "higher")
        } else {
            self.hi = self.hi.min(guess.saturating_sub(1));
            Message::tool(call, "lower")
        }
    }
}

/// The usual tool protocol (`sandgym_sdk::play_turn`) drives `step`: it counts turns, answers format
/// errors and turns without a tool call, gives every call exactly one tool message and truncates at the
/// turn limit. An env only says how to run one call.
impl ToolEnv for GuessNumber {
    const TOOL_NAMES: &'static [&'static str] = &["guess"];

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        self.call(call, out)
    }
}

impl Env for GuessNumber {
    /// Static description: the host reads it once per module. `abi_version` is filled in by the SDK.
    /// Tools use the OpenAI function-calling schema; `function_tool` builds one with string
    /// parameters. `default_config` lists every knob with its default, so users can discover them.
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: "Guess a secret number with higher/lower hints (the reference env)."
                .to_string(),
            system_prompt: SYSTEM_PROMPT.to_string(),
            tools: vec![function_tool(
                "guess",
                "Guess the secret number. Answers higher, lower or correct.",
                &[("n", "A whole number, e.g. \"50\".")],
            )],
            // Claim only what is implemented: the host relies on these.
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: json!({"low": 1, "high": 100, "max_turns": 10}),
        }
    }

    /// Called once before the first reset with the user's knobs (a JSON object, or null). Reject
    /// unknown keys and bad values with a message naming the key: a typo must fail loudly, not be
    /// ignored. Difficulty knobs belong here.
    fn configure(&mut self, config: &Value) -> Result<(), String> {
        reject_unknown_keys(config, &["low", "high", "max_turns"])?;
        let d = Config::default();
        let c = Config {
            low: config_int(config, "low", d.low, 0..=1_000_000)?,
            high: config_int(config, "high", d.high, 0..=1_000_000)?,
            max_turns: config_int(config, "max_turns", d.max_turns, 1..=1000)?,
        };
        if c.low > c.high {
            return Err(format!(
                "config `low` ({}) must not exceed `high` ({})",
                c.low, c.high
            ));
        }
        self.config = c;
        Ok(())
    }

    /// Starts an episode. With `task == None`, generate one from `seed` using only `Rng::new(seed)`:
    /// the same seed must give the same task on every machine, natively and in the sandbox. With a
    /// task, validate it and play it (the seed may still drive randomness inside the episode).
    /// Return the opening messages (system prompt, then the task statement), a stable `task_id`,
    /// and the task JSON that replays this exact task.
    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.turns.end();
        let task = match task {
            None => {
                let mut rng = Rng::new(seed);
                Task {
                    low: self.config.low,
                    high: self.config.high,
                    secret: rng.range(self.config.low, self.config.high),
                }
            }
            Some(value) => Task::from_json(&value)?,
        };
        let statement = format!(
            "The secret is a whole number from {} to {} (inclusive). You have {} turns. Make \
             your first guess.",
            task.low, task.high, self.config.max_turns
        );
        let output = ResetOutput {
            messages: vec![Message::system(SYSTEM_PROMPT), Message::user(statement)],
            task_id: format!("{NAME}-{}-{}-{}", task.low, task.high, task.secret),
            task: task.to_json(),
            info: json!({}),
            user_turn: None,
        };
        self.task = Some(task);
        self.lo = task.low;
        self.hi = task.high;
        self.turns.start(self.config.max_turns);
        Ok(output)
    }

    /// Applies one action. The shape every env follows:
    /// - after the episode ended, say so (`episode_over`); the host guards this too;
    /// - every step is a turn, whatever the action was;
    /// - `format_error` set: the host could not parse the model's text; answer with
    ///   `format_error_message` (no tool ran, reward 0);
    /// - no tool calls: a user message asking for one;
    /// - otherwise exactly one tool message per call, in call order, even for calls after the episode
    ///   ended mid-action (`not_executed_message`), so the transcript stays valid for chat templates;
    /// - reaching `max_turns` without terminating sets `truncated`.
    fn step(&mut self, action: &Action) -> StepOutput {
        sandgym_sdk::play_turn(self, action)
    }

    /// The expert's next action (used for demonstrations, SFT data and tests), or `None` when there
    /// is none. Keep it deterministic and cheap: precompute at reset if it needs search. Here:
    /// bisect the interval the answers allow, which finds any secret in 1..=100 within 7 guesses.
    fn expert(&mut self) -> Option<Action> {
        if !self.turns.is_active() {
            return None;
        }
        let mid = self.lo + (self.hi - self.lo) / 2;
        Some(Action::tool("guess", &json!({"n": mid.to_string()})))
    }

    /// A short (bounded), deterministic list of sensible actions in the current state, for search and
    /// exploration baselines. Include the expert's action and at least one other.
    fn actions(&mut self) -> Vec<Action> {
        if !self.turns.is_active() {
            return Vec::new();
        }
        let mut candidates = vec![self.lo, self.lo + (self.hi - self.lo) / 2, self.hi];
        candidates.dedup();
        candidates
            .into_iter()
            .map(|n| Action::tool("guess", &json!({"n": n.to_string()})))
            .collect()
    }
}

// Generates the wasm exports (`sandgym_reset`, `sandgym_step`, ...) for this type. Only active when
// compiling for wasm32, so native tests link the same code without exports.
sandgym_sdk::export_env!(GuessNumber);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expert_always_finds_the_secret_in_time() {
        for seed in 0..500 {
            let mut env = GuessNumber::default();
            env.reset(seed, None).unwrap();
            let mut reward = 0.0;
            while let Some(action) = env.expert() {
                let out = env.step(&action);
                reward += out.reward;
                assert!(!out.truncated, "seed {seed}");
            }
            assert_eq!(reward, 1.0, "seed {seed}");
        }
    }

    #[test]
    fn bad_input_is_answered_and_the_turn_limit_truncates() {
        let mut env = GuessNumber::default();
        env.configure(&json!({"max_turns": 3})).unwrap();
        env.reset(0, Some(json!({"low": 1, "high": 10, "secret": 7})))
            .unwrap();
        let out = env.step(&Action::tool("guess", &json!({"n": "seven"})));
        assert!(out.messages[0].content.starts_with("Error: "));
        let out = env.step(&Action::tool("guess", &json!({"n": 3})));
        assert_eq!(out.messages[0].content, "higher");
        let out = env.step(&Action::text("hmm"));
        assert!(out.truncated && !out.terminated);
        assert!(env.step(&Action::text("hmm")).terminated);
    }

    #[test]
    fn tasks_are_validated_and_replay() {
        let mut env = GuessNumber::default();
        let err = env
            .reset(0, Some(json!({"low": 1, "high": 10, "secret": 11})))
            .unwrap_err();
        assert!(err.contains("`secret`"), "{err}");
        let err = env
            .reset(0, Some(json!({"low": 1, "high": 10, "secret": 3, "x": 1})))
            .unwrap_err();
        assert!(err.contains("`x`"), "{err}");
        let first = env.reset(9, None).unwrap();
        assert_eq!(env.reset(1, Some(first.task.clone())).unwrap(), first);
    }
}
