//! Parity (Tsilivis et al., arXiv 2510.11495, "How RL after next-token prediction facilitates
//! learning"): given `d` bits, answer their parity (XOR: 1 iff the number of ones is odd), optionally
//! with the chain of thought the paper studies, the running prefix parities.
//!
//! This module owns the whole env: config, task generation and validation, the `answer` tool and its
//! two reward modes, the expert (correct parity with the full correct chain) and the admissible actions.
//!
//! Config knobs (defaults): `d` 50 (1..=4096); `min_d`/`max_d` (each defaults to `d`; when they differ,
//! each task draws `d` uniformly from the range); `reward` `"outcome"` (1 iff the parity is right) or
//! `"cot"` (1 iff the parity is right and the chain is given, has exactly `d` entries and every entry is
//! right); `max_turns` 4 (1..=1000). Task JSON: `{"bits": "0101..."}`.

use sandgym_sdk::{
    Action, Capabilities, EnvInfo, Message, ResetOutput, Rng, StepOutput, ToolCall, ToolEnv, Turns,
    Value, config_choice, config_int, json, parse_arguments, reject_unknown_keys, stable_hash,
    string_argument, tool_error,
};

pub const NAME: &str = "parity";
pub const VERSION: u32 = 0;
pub const MAX_D: usize = 4096;

const SYSTEM_PROMPT: &str = "You are given a sequence of bits (0 or 1). Your task is to compute \
their parity: 1 if the number of ones is odd, 0 if it is even.\n\nAnswer with the tool \
answer(parity, cot):\n- parity: \"0\" or \"1\".\n- cot (chain of thought): the running parities, one \
per bit: entry i is the parity of the first i bits, so the last entry is the answer. Write it as a \
string of 0s and 1s, with or without spaces; for the bits 1 1 0 1 it is \"1 0 0 1\".\nYou may answer \
once; answering ends the episode.";

/// Whether the reward looks at the chain of thought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RewardMode {
    /// Reward 1 iff the final parity is right.
    #[default]
    Outcome,
    /// Reward 1 iff the final parity is right and the full chain of prefix parities is right.
    Cot,
}

impl RewardMode {
    fn as_str(self) -> &'static str {
        match self {
            RewardMode::Outcome => "outcome",
            RewardMode::Cot => "cot",
        }
    }
}

/// Validated configuration knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub min_d: usize,
    pub max_d: usize,
    pub reward: RewardMode,
    pub max_turns: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_d: 50,
            max_d: 50,
            reward: RewardMode::Outcome,
            max_turns: 4,
        }
    }
}

impl Config {
    pub fn from_json(config: &Value) -> Result<Config, String> {
        reject_unknown_keys(config, &["d", "min_d", "max_d", "reward", "max_turns"])?;
        let range = 1..=MAX_D as i64;
        // `min_d`/`max_d` default to `d`, so a host that merges the default config (`d` only) with a
        // user's range still gets the range.
        let d = config_int(config, "d", 50, range.clone())?;
        let min_d = config_int(config, "min_d", d, range.clone())? as usize;
        let max_d = config_int(config, "max_d", d, range)? as usize;
        if min_d > max_d {
            return Err(format!(
                "config `min_d` ({min_d}) must not exceed `max_d` ({max_d})"
            ));
        }
        let reward = match config_choice(config, "reward", "outcome", &["outcome", "cot"])?.as_str()
        {
            "cot" => RewardMode::Cot,
            _ => RewardMode::Outcome,
        };
        let max_turns = config_int(config, "max_turns", 4, 1..=1000)?;
        Ok(Config {
            min_d,
            max_d,
            reward,
            max_turns,
        })
    }
}

/// The prefix parities of `bits` (entry i is the parity of `bits[..=i]`).
pub fn prefix_parities(bits: &[u8]) -> Vec<u8> {
    bits.iter()
        .scan(0u8, |acc, &b| {
            *acc ^= b;
            Some(*acc)
        })
        .collect()
}

fn spaced(bits: &[u8]) -> String {
    let mut s = String::with_capacity(bits.len() * 2);
    for (i, b) in bits.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(char::from(b'0' + b));
    }
    s
}

fn compact(bits: &[u8]) -> String {
    bits.iter().map(|b| char::from(b'0' + b)).collect()
}

/// Parses a bit string, skipping whitespace and commas; `what` names it in the error.
fn parse_bits(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let mut bits = Vec::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '0' => bits.push(0),
            '1' => bits.push(1),
            c if c.is_whitespace() || c == ',' => {}
            c => {
                return Err(format!(
                    "{what} must contain only 0 and 1 (spaces allowed), found '{c}' at position {i}"
                ));
            }
        }
    }
    Ok(bits)
}

/// The outcome of an answer: reward, whether the chain was right (`None` if not given) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    pub reward: f64,
    pub cot_correct: Option<bool>,
    pub reason: String,
}

/// Grades an answer against `bits` under `mode`.
pub fn grade(bits: &[u8], mode: RewardMode, parity: u8, cot: Option<&[u8]>) -> Grade {
    let truth = prefix_parities(bits);
    let correct = truth.last().copied().unwrap_or(0);
    let cot_error = cot.map(|cot| {
        if cot.len() != truth.len() {
            Some(format!(
                "cot has {} entries, expected {}",
                cot.len(),
                truth.len()
            ))
        } else {
            cot.iter().zip(&truth).position(|(a, b)| a != b).map(|i| {
                format!(
                    "cot entry {} (parity of the first {} bits) is {}, expected {}",
                    i + 1,
                    i + 1,
                    cot[i],
                    truth[i]
                )
            })
        }
    });
    let cot_correct = cot_error.as_ref().map(Option::is_none);
    let parity_ok = parity == correct;
    let (solved, reason) = match (parity_ok, mode, &cot_error) {
        (false, _, _) => (false, format!("parity {parity} is wrong")),
        (true, RewardMode::Cot, None) => (
            false,
            "the cot is required (reward mode \"cot\") but was not given".to_string(),
        ),
        (true, RewardMode::Cot, Some(Some(err))) => (false, err.clone()),
        (true, RewardMode::Outcome, Some(Some(err))) => {
            (true, format!("correct parity (the cot is wrong: {err})"))
        }
        (true, _, _) => (true, "correct".to_string()),
    };
    Grade {
        reward: if solved { 1.0 } else { 0.0 },
        cot_correct,
        reason,
    }
}

/// One task: the bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub bits: Vec<u8>,
}

impl Task {
    pub fn from_json(task: &Value) -> Result<Task, String> {
        let Value::Object(map) = task else {
            return Err(format!("task must be a JSON object, got {task}"));
        };
        // `id` only names the task for split files; it does not change the game.
        if let Some(key) = map.keys().find(|k| !["bits", "id"].contains(&k.as_str())) {
            return Err(format!("task has unknown field `{key}` (known: bits, id)"));
        }
        let bits = match map.get("bits") {
            Some(Value::String(s)) => parse_bits(s, "task field `bits`")?,
            Some(other) => {
                return Err(format!(
                    "task field `bits` must be a string of 0s and 1s, got {other}"
                ));
            }
            None => return Err("task field `bits` is missing".to_string()),
        };
        if bits.is_empty() || bits.len() > MAX_D {
            return Err(format!(
                "task field `bits` must hold 1 to {MAX_D} bits, got {}",
                bits.len()
            ));
        }
        Ok(Task { bits })
    }

    pub fn to_json(&self) -> Value {
        json!({"bits": compact(&self.bits)})
    }

    pub fn id(&self) -> String {
        format!(
            "{NAME}-d{}-{:016x}",
            self.bits.len(),
            stable_hash(compact(&self.bits).as_bytes())
        )
    }

    fn statement(&self, mode: RewardMode) -> String {
        let cot = match mode {
            RewardMode::Outcome => "Giving the cot is optional.",
            RewardMode::Cot => {
                "You must give the full cot: one running parity per bit; an answer without it, or \
                 with a wrong entry, gets no reward."
            }
        };
        format!(
            "Bits ({} of them):\n{}\n\nWhat is their parity? {cot} Answer with the answer tool.",
            self.bits.len(),
            spaced(&self.bits)
        )
    }
}

pub fn generate(config: &Config, rng: &mut Rng) -> Task {
    let d = rng.range(config.min_d as i64, config.max_d as i64) as usize;
    Task {
        bits: (0..d).map(|_| (rng.next_u64() >> 63) as u8).collect(),
    }
}

/// The parity env.
#[derive(Debug, Default)]
pub struct Parity {
    config: Config,
    task: Option<Task>,
    turns: Turns,
}

fn answer(parity: u8, cot: Option<String>) -> Action {
    match cot {
        Some(cot) => Action::tool("answer", &json!({"parity": parity.to_string(), "cot": cot})),
        None => Action::tool("answer", &json!({"parity": parity.to_string()})),
    }
}

impl Parity {
    pub fn task(&self) -> Option<&Task> {
        self.task.as_ref()
    }

    fn call(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        if call.name != "answer" {
            return tool_error(
                call,
                format!("unknown tool `{}`; the only tool is answer", call.name),
            );
        }
        let parsed = parse_arguments(call).and_then(|args| {
            let allowed = ["parity", "cot"];
            let parity = match string_argument(call, &args, "parity", &allowed)?.trim() {
                "0" => 0,
                "1" => 1,
                other => {
                    return Err(format!(
                        "argument `parity` must be \"0\" or \"1\", got {other:?}"
                    ));
                }
            };
            let cot = match args.get("cot") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(parse_bits(s, "argument `cot`")?),
                Some(other) => {
                    return Err(format!(
                        "argument `cot` must be a string of 0s and 1s, got {other}"
                    ));
                }
            };
            Ok((parity, cot))
        });
        let (parity, cot) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return tool_error(call, err),
        };
        let task = self.task.as_ref().expect("an active episode has a task");
        let grade = grade(&task.bits, self.config.reward, parity, cot.as_deref());
        out.terminated = true;
        out.reward = grade.reward;
        out.success = grade.reward > 0.0;
        out.info = json!({"reason": grade.reason, "cot_correct": grade.cot_correct});
        let verdict = if out.success { "Correct" } else { "Incorrect" };
        Message::tool(
            call,
            format!("{verdict}: {}. The episode is over.", grade.reason),
        )
    }
}

impl ToolEnv for Parity {
    const TOOL_NAMES: &'static [&'static str] = &["answer"];

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        self.call(call, out)
    }
}

impl sandgym_sdk::Env for Parity {
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: "Compute the parity of d bits, optionally with the chain of prefix \
                          parities (Tsilivis et al., 2025); one answer."
                .to_string(),
            system_prompt: SYSTEM_PROMPT.to_string(),
            tools: vec![json!({
                "type": "function",
                "function": {
                    "name": "answer",
                    "description": "Give the parity of the bits (and optionally the running \
                                    parities). Ends the episode.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "parity": {"type": "string", "enum": ["0", "1"],
                                       "description": "1 if the number of ones is odd, else 0."},
                            "cot": {"type": "string",
                                    "description": "Running parities, one per bit: entry i is the \
                                                    parity of the first i bits (0s and 1s, spaces \
                                                    allowed)."},
                        },
                        "required": ["parity"],
                    },
                },
            })],
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: json!({"d": 50, "reward": "outcome", "max_turns": 4}),
        }
    }

    fn configure(&mut self, config: &Value) -> Result<(), String> {
        self.config = Config::from_json(config)?;
        Ok(())
    }

    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.turns.end();
        let task = match task {
            None => generate(&self.config, &mut Rng::new(seed)),
            Some(value) => Task::from_json(&value)?,
        };
        let output = ResetOutput {
            messages: vec![
                Message::system(SYSTEM_PROMPT),
                Message::user(task.statement(self.config.reward)),
            ],
            task_id: task.id(),
            task: task.to_json(),
            info: json!({"d": task.bits.len(), "reward": self.config.reward.as_str()}),
            user_turn: None,
        };
        self.task = Some(task);
        self.turns.start(self.config.max_turns);
        Ok(output)
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        sandgym_sdk::play_turn(self, action)
    }

    fn expert(&mut self) -> Option<Action> {
        let task = self.task.as_ref().filter(|_| self.turns.is_active())?;
        let cot = prefix_parities(&task.bits);
        Some(answer(*cot.last()?, Some(spaced(&cot))))
    }

    fn actions(&mut self) -> Vec<Action> {
        let Some(task) = self.task.as_ref().filter(|_| self.turns.is_active()) else {
            return Vec::new();
        };
        let cot = prefix_parities(&task.bits);
        let d = cot.len();
        let p = cot[d - 1];
        let mut first_wrong = cot.clone();
        first_wrong[0] ^= 1;
        // Misreading one bit in the middle flips every later prefix: a consistent but wrong chain.
        let mut misread = cot.clone();
        for entry in &mut misread[d / 2..] {
            *entry ^= 1;
        }
        vec![
            answer(p, Some(spaced(&cot))),
            answer(p, None),
            answer(p ^ 1, None),
            answer(p, Some(spaced(&first_wrong))),
            answer(p, Some(spaced(&cot[..d - 1]))),
            answer(p ^ 1, Some(spaced(&cot))),
            answer(misread[d - 1], Some(spaced(&misread))),
        ]
    }
}

sandgym_sdk::export_env!(Parity);

#[cfg(test)]
mod tests;
