//! The reasoning suite: procedural tasks with exact verifiers, difficulty knobs and experts, after
//! reasoning-gym's task definitions (see `docs/envs/reasoning.md`).
//!
//! This module owns the env: configuration (which task or mix of tasks, difficulty, per-task knobs),
//! the tool protocol, and dispatch to the task families in [`tasks`], each of which generates,
//! verifies and solves its own instances. Answer tasks end with one `submit(answer)`; interactive
//! tasks (maze: `move(direction)`, tower of Hanoi: `move_disk(from, to)`) keep state across steps
//! and end when solved or when their move budget is spent.
//!
//! Config (defaults): `task` "mix" (or a task name), `weights` null (mix weights by task name,
//! default 1 each), `difficulty` 1 (1..=5: the level every knob defaults to), `max_turns` null (3 for
//! answer tasks, move budget + 5 for interactive ones), and per task an object of knob overrides
//! keyed by the task name, e.g. `{"task": "gcd", "gcd": {"max_value": 100000}}`.
//! Task JSON: the task's fields plus `"task": "<name>"`.

pub mod expr;
pub mod tasks;

use sandgym_sdk::{
    Action, Capabilities, EnvInfo, Message, ResetOutput, Rng, StepOutput, ToolCall, ToolEnv, Turns,
    Value, config_int, json, parse_arguments, reject_unknown_keys, stable_hash, string_argument,
    tool_error, typed_function_tool,
};

use tasks::{FAMILIES, Family, Instance, Knobs, LEVELS};

pub const NAME: &str = "reasoning";
pub const VERSION: u32 = 0;
const TOOLS: [&str; 3] = ["submit", "move", "move_disk"];
/// Turns an answer task allows by default: the submission plus room for a stray turn or two.
const ANSWER_TASK_TURNS: i64 = 3;
/// Turns an interactive task allows beyond its move budget by default.
const GAME_EXTRA_TURNS: i64 = 5;
const MIX: &str = "mix";

const SYSTEM_PROMPT: &str = "You are solving reasoning tasks. Each task states a question and how \
to answer it.\n\nTools:\n- submit(answer): submits your final answer as text, in the format the \
task asks for. You have exactly one submission; it ends the task.\n- move(direction): in a maze, \
steps up, down, left or right.\n- move_disk(from, to): in the Tower of Hanoi, moves the top disk \
of peg `from` onto peg `to`.\nUse the tool the task names; moves are checked one at a time.";

/// One task family in the configured mix, with its weight and resolved knobs.
#[derive(Debug, Clone)]
pub struct MixEntry {
    pub family: &'static dyn Family,
    pub weight: u64,
    pub knobs: Knobs,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mix: Vec<MixEntry>,
    pub difficulty: usize,
    pub max_turns: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_json(&Value::Null).expect("the default config is valid")
    }
}

impl Config {
    pub fn from_json(config: &Value) -> Result<Config, String> {
        let mut keys = vec!["task", "weights", "difficulty", "max_turns"];
        keys.extend(tasks::family_names());
        reject_unknown_keys(config, &keys)?;
        let names = tasks::family_names();
        let task = match config.get("task") {
            None | Some(Value::Null) => MIX.to_string(),
            Some(Value::String(s)) if s == MIX || names.contains(&s.as_str()) => s.clone(),
            Some(other) => {
                return Err(format!(
                    "config `task` must be \"{MIX}\" or one of {}, got {other}",
                    names.join(", ")
                ));
            }
        };
        let difficulty = config_int(config, "difficulty", 1, 1..=LEVELS as i64)? as usize;
        let max_turns = match config.get("max_turns") {
            None | Some(Value::Null) => None,
            Some(_) => Some(config_int(config, "max_turns", 1, 1..=10_000)?),
        };
        let weights = match config.get("weights") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) if task == MIX => Some(map),
            Some(Value::Object(_)) => {
                return Err("config `weights` applies only with `task` \"mix\"".to_string());
            }
            Some(other) => {
                return Err(format!(
                    "config `weights` must be an object of task name → weight, got {other}"
                ));
            }
        };
        if let Some(unknown) = weights.and_then(|w| w.keys().find(|k| !names.contains(&k.as_str())))
        {
            return Err(format!(
                "config `weights` names unknown task `{unknown}` (known: {})",
                names.join(", ")
            ));
        }
        let mut mix = Vec::new();
        for family in FAMILIES.iter().copied() {
            // Knobs of every family are validated, even outside the mix: a typo fails loudly.
            let knobs = tasks::resolve_knobs(
                family,
                difficulty,
                config.get(family.name()).unwrap_or(&Value::Null),
            )?;
            let weight = if task == MIX {
                match weights.and_then(|w| w.get(family.name())) {
                    None => 1,
                    Some(w) => w.as_u64().filter(|w| *w <= 1_000_000).ok_or_else(|| {
                        format!(
                            "config `weights.{}` must be an integer in 0..=1000000, got {w}",
                            family.name()
                        )
                    })?,
                }
            } else {
                u64::from(family.name() == task)
            };
            if weight > 0 {
                mix.push(MixEntry {
                    family,
                    weight,
                    knobs,
                });
            }
        }
        if mix.is_empty() {
            return Err("config `weights` gives every task weight 0".to_string());
        }
        Ok(Config {
            mix,
            difficulty,
            max_turns,
        })
    }

    /// Draws the family of a generated task (weighted), then the task, from the same stream.
    fn generate(&self, rng: &mut Rng) -> Result<(&'static dyn Family, Instance), String> {
        let total: u64 = self.mix.iter().map(|e| e.weight).sum();
        let mut pick = if self.mix.len() == 1 {
            0
        } else {
            rng.below(total)
        };
        let entry = self
            .mix
            .iter()
            .find(|e| {
                let hit = pick < e.weight;
                pick = pick.saturating_sub(e.weight);
                hit
            })
            .expect("pick < total weight");
        let instance = entry
            .family
            .generate(rng, &entry.knobs)
            .map_err(|e| format!("task `{}`: {e}", entry.family.name()))?;
        Ok((entry.family, instance))
    }
}

/// The default config as shown in `info`: every knob of every task at difficulty 1.
fn default_config_json() -> Value {
    let mut config = json!({"task": MIX, "weights": null, "difficulty": 1, "max_turns": null});
    for entry in Config::default().mix {
        config[entry.family.name()] = json!(entry.knobs.0);
    }
    config
}

/// Reads a task given as JSON: `{"task": "<name>", ...fields}`.
fn task_from_json(value: &Value) -> Result<(&'static dyn Family, Instance), String> {
    let Value::Object(map) = value else {
        return Err(format!("task must be a JSON object, got {value}"));
    };
    let name = map.get("task").and_then(Value::as_str).ok_or_else(|| {
        format!(
            "task field `task` must name the task, one of {}",
            tasks::family_names().join(", ")
        )
    })?;
    let family = tasks::family(name).ok_or_else(|| {
        format!(
            "task field `task` names unknown task `{name}` (known: {})",
            tasks::family_names().join(", ")
        )
    })?;
    let mut fields = map.clone();
    fields.remove("task");
    let instance = family.load(&fields)?;
    Ok((family, instance))
}

/// The reasoning env.
#[derive(Debug, Default)]
pub struct Reasoning {
    config: Option<Config>,
    instance: Option<Instance>,
    /// Moves spent in an interactive task, illegal ones included.
    moves: usize,
    turns: Turns,
}

pub fn submit(answer: &str) -> Action {
    Action::tool("submit", &json!({"answer": answer}))
}

impl Reasoning {
    pub fn instance(&self) -> Option<&Instance> {
        self.instance.as_ref()
    }

    fn call(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        if !TOOLS.contains(&call.name.as_str()) {
            return tool_error(
                call,
                format!(
                    "unknown tool `{}`; the tools are {}",
                    call.name,
                    TOOLS.join(", ")
                ),
            );
        }
        let args = match parse_arguments(call) {
            Ok(args) => args,
            Err(err) => return tool_error(call, err),
        };
        match self
            .instance
            .as_mut()
            .expect("an active episode has a task")
        {
            Instance::Answer(puzzle) => {
                if call.name != "submit" {
                    return tool_error(
                        call,
                        format!(
                            "this task has no moves; answer it with submit(answer), not {}",
                            call.name
                        ),
                    );
                }
                let answer = match string_argument(call, &args, "answer", &["answer"]) {
                    Ok(answer) => answer,
                    Err(err) => return tool_error(call, err),
                };
                out.terminated = true;
                let verdict = if answer.len() > tasks::MAX_ANSWER_LEN {
                    Err(format!(
                        "the answer is longer than {} bytes",
                        tasks::MAX_ANSWER_LEN
                    ))
                } else {
                    puzzle.verify(&answer)
                };
                match verdict {
                    Ok(()) => {
                        out.reward = 1.0;
                        out.success = true;
                        out.info = json!({"reason": "correct"});
                        Message::tool(call, "Correct. The task is solved.")
                    }
                    Err(reason) => {
                        let text = format!("Incorrect: {reason}. The task is over.");
                        out.info = json!({"reason": reason});
                        Message::tool(call, text)
                    }
                }
            }
            Instance::Game(game) => {
                if call.name != game.tool() {
                    return tool_error(
                        call,
                        format!(
                            "this task is played with {}, not {}",
                            game.tool(),
                            call.name
                        ),
                    );
                }
                self.moves += 1;
                let message = match game.apply(&args) {
                    Ok(observation) => Message::tool(call, observation),
                    Err(err) => tool_error(call, err),
                };
                if game.is_solved() {
                    out.terminated = true;
                    out.success = true;
                    out.reward = 1.0;
                    out.info = json!({"reason": "solved", "moves": self.moves});
                } else if self.moves >= game.move_budget() {
                    out.terminated = true;
                    out.info = json!({"reason": "move budget spent", "moves": self.moves});
                }
                message
            }
        }
    }
}

impl ToolEnv for Reasoning {
    const TOOL_NAMES: &'static [&'static str] = &TOOLS;

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        self.call(call, out)
    }
}

impl sandgym_sdk::Env for Reasoning {
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: format!(
                "Procedural reasoning tasks after reasoning-gym with exact verifiers, difficulty \
                 knobs and experts: {}.",
                tasks::family_names().join(", ")
            ),
            system_prompt: SYSTEM_PROMPT.to_string(),
            tools: vec![
                typed_function_tool(
                    "submit",
                    "Submit the final answer, in the format the task asks for. Ends the task.",
                    &[(
                        "answer",
                        json!({"type": "string", "description": "The final answer as text."}),
                    )],
                ),
                typed_function_tool(
                    "move",
                    "Maze only: step one cell in a direction.",
                    &[(
                        "direction",
                        json!({"type": "string", "enum": ["up", "down", "left", "right"],
                               "description": "The direction to step."}),
                    )],
                ),
                typed_function_tool(
                    "move_disk",
                    "Tower of Hanoi only: move the top disk of one peg onto another.",
                    &[
                        (
                            "from",
                            json!({"type": "integer", "description": "The peg to take the top disk from (1-3)."}),
                        ),
                        (
                            "to",
                            json!({"type": "integer", "description": "The peg to put it on (1-3)."}),
                        ),
                    ],
                ),
            ],
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: default_config_json(),
        }
    }

    fn configure(&mut self, config: &Value) -> Result<(), String> {
        self.config = Some(Config::from_json(config)?);
        Ok(())
    }

    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.turns.end();
        let config = self.config.get_or_insert_with(Config::default);
        let (family, instance) = match task {
            None => config.generate(&mut Rng::new(seed))?,
            Some(value) => task_from_json(&value)?,
        };
        let mut task_json = instance.to_json();
        task_json.insert("task".to_string(), json!(family.name()));
        let task_json = Value::Object(task_json);
        let (statement, default_turns) = match &instance {
            Instance::Answer(puzzle) => (
                format!(
                    "{}\n\nCall submit(answer) with your final answer; you have one submission.",
                    puzzle.statement()
                ),
                ANSWER_TASK_TURNS,
            ),
            Instance::Game(game) => (
                game.statement(),
                game.move_budget() as i64 + GAME_EXTRA_TURNS,
            ),
        };
        let output = ResetOutput {
            messages: vec![Message::system(SYSTEM_PROMPT), Message::user(statement)],
            task_id: format!(
                "{NAME}-{}-{:016x}",
                family.name(),
                stable_hash(task_json.to_string().as_bytes())
            ),
            task: task_json,
            info: json!({"task": family.name()}),
            user_turn: None,
        };
        self.turns.start(config.max_turns.unwrap_or(default_turns));
        self.instance = Some(instance);
        self.moves = 0;
        Ok(output)
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        sandgym_sdk::play_turn(self, action)
    }

    fn expert(&mut self) -> Option<Action> {
        if !self.turns.is_active() {
            return None;
        }
        match self.instance.as_ref()? {
            Instance::Answer(puzzle) => Some(submit(&puzzle.expert_answer())),
            Instance::Game(game) => game
                .expert_move()
                .map(|args| Action::tool(game.tool(), &args)),
        }
    }

    /// Answer tasks: the expert's submission and near misses. Interactive tasks: every legal move.
    fn actions(&mut self) -> Vec<Action> {
        const LIMIT: usize = 8;
        if !self.turns.is_active() {
            return Vec::new();
        }
        match self.instance.as_ref() {
            None => Vec::new(),
            Some(Instance::Answer(puzzle)) => {
                let mut actions = vec![submit(&puzzle.expert_answer())];
                for wrong in puzzle.wrong_answers() {
                    let action = submit(&wrong);
                    if actions.len() < LIMIT && !actions.contains(&action) {
                        actions.push(action);
                    }
                }
                actions
            }
            Some(Instance::Game(game)) => game
                .legal_moves()
                .iter()
                .map(|args| Action::tool(game.tool(), args))
                .collect(),
        }
    }
}

sandgym_sdk::export_env!(Reasoning);

#[cfg(test)]
mod tests;
