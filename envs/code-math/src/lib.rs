//! code-math: math problems solved with a Python interpreter, after "Demystifying RL in Agentic
//! Reasoning" (arXiv 2510.11701), whose agents' one tool is a code interpreter.
//!
//! Tools: `python(code)` runs a cell in a stateful interpreter session (variables persist across
//! calls; stdout, the value of the last expression, or the traceback come back, truncated) and
//! `submit(answer)` ends the episode, with reward 1 for an answer exactly equal to the task's after
//! normalization ([`answer::parse`]). The interpreter is pydantic's `monty` (a sandboxed
//! Python subset in Rust) compiled into this guest, so the session is guest memory: the host's
//! snapshots and forks copy it with everything else. Per-cell limits ([`session`]) stop a runaway
//! cell inside the guest, long before the sandbox's fuel limit would end the episode.
//!
//! Config knobs (defaults): `kind` "any" (or one of [`tasks::KINDS`]), `difficulty` 2 (1..=3),
//! `max_turns` 10 (2..=100), `cell_steps` 5000 (1000..=100000), `cell_memory_mib` 32 (1..=64),
//! `recursion_depth` 200 (10..=1000), `output_bytes` 4000 (200..=100000).
//! Task JSON: `{"question": "...", "answer": "72"}`, where `answer` may be a GSM8K solution ending in
//! `#### 72`; generated tasks add `kind`, `difficulty` and `program` (the expert's solution).

pub mod answer;
pub mod pyrandom;
pub mod session;
pub mod tasks;

use sandgym_sdk::{
    Action, Capabilities, Env, EnvInfo, Message, ResetOutput, Rng, StepOutput, ToolCall, ToolEnv,
    Turns, Value, config_choice, config_int, function_tool, json, parse_arguments,
    reject_unknown_keys, string_argument, tool_error,
};

use answer::Rational;
use session::{CellLimits, Session};
use tasks::{KINDS, Task};

pub const NAME: &str = "code-math";
pub const VERSION: u32 = 0;
const TOOLS: [&str; 2] = ["python", "submit"];
/// Source bytes one cell may have.
const MAX_CODE_BYTES: usize = 16 * 1024;

const SYSTEM_PROMPT: &str = "You solve math problems and may use a Python interpreter.\n\nTools:\n\
- python(code): runs Python code in a persistent session: variables, functions and imports stay \
defined across calls. You see what the code prints, then the value of its last expression (like a \
notebook cell), or the error with its traceback. Long output is truncated. The interpreter is a \
sandboxed subset of Python 3: no files, network, clock or third-party packages; modules available \
include math, re, json, itertools, functools, collections, dataclasses, typing, datetime (without \
now/today) and random (seeded: the same code gives the same numbers). Each call has limits on \
steps, memory and recursion depth; a call that exceeds one stops with an error and the session \
keeps everything defined before.\n\
- submit(answer): submits your final answer as an exact number: an integer, a fraction a/b, or a \
terminating decimal (no units). You have one submission; it ends the episode.";

/// Validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `any` or one of [`KINDS`].
    pub kind: String,
    pub difficulty: i64,
    pub max_turns: i64,
    pub cell_limits: CellLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kind: "any".to_string(),
            difficulty: 2,
            max_turns: 10,
            cell_limits: CellLimits {
                steps: 5_000,
                memory_bytes: 32 << 20,
                recursion_depth: 200,
                output_bytes: 4_000,
                code_bytes: MAX_CODE_BYTES,
            },
        }
    }
}

const CONFIG_KEYS: [&str; 7] = [
    "kind",
    "difficulty",
    "max_turns",
    "cell_steps",
    "cell_memory_mib",
    "recursion_depth",
    "output_bytes",
];

/// The env: the task, the interpreter session and the turn counter.
#[derive(Debug, Default)]
pub struct CodeMath {
    config: Config,
    task: Option<Task>,
    session: Option<Session>,
    turns: Turns,
    /// Whether the task's program has been run in this episode (the expert then submits).
    expert_ran_program: bool,
    /// The episode's seed, which seeds the session's Python `random`.
    seed: u64,
}

impl CodeMath {
    fn statement(&self, task: &Task) -> String {
        format!(
            "{}\n\nUse the python tool as much as you like, then call submit with the exact final \
             answer. You have {} turns.",
            task.question, self.config.max_turns
        )
    }

    fn python(&mut self, call: &ToolCall) -> Message {
        let code = match parse_arguments(call)
            .and_then(|args| string_argument(call, &args, "code", &["code"]))
        {
            Ok(code) => code,
            Err(err) => return tool_error(call, err),
        };
        if self.task.as_ref().and_then(|t| t.program.as_deref()) == Some(code.as_str()) {
            self.expert_ran_program = true;
        }
        let session = self
            .session
            .get_or_insert_with(|| Session::new(self.config.cell_limits, self.seed));
        Message::tool(call, session.run(&code).observation)
    }

    fn submit(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        let text = match parse_arguments(call)
            .and_then(|args| string_argument(call, &args, "answer", &["answer"]))
        {
            Ok(text) => text,
            Err(err) => return tool_error(call, err),
        };
        // An answer that is not a number is a format mistake, not a wrong answer: say so and let
        // the model submit again.
        let Some(value) = answer::parse(&text) else {
            return tool_error(
                call,
                format!(
                    "{text:?} is not an exact number; submit an integer, a fraction a/b or a \
                     terminating decimal, without units"
                ),
            );
        };
        let task = self.task.as_ref().expect("an active episode has a task");
        let correct = value == task.answer;
        out.terminated = true;
        out.success = correct;
        out.reward = if correct { 1.0 } else { 0.0 };
        out.info = json!({"reason": if correct { "correct answer" } else { "wrong answer" }});
        Message::tool(
            call,
            if correct {
                "Correct."
            } else {
                "Incorrect. The episode is over."
            },
        )
    }
}

impl ToolEnv for CodeMath {
    const TOOL_NAMES: &'static [&'static str] = &TOOLS;

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        match call.name.as_str() {
            "python" => self.python(call),
            "submit" => self.submit(call, out),
            other => tool_error(
                call,
                format!("unknown tool `{other}`; the tools are python and submit"),
            ),
        }
    }
}

impl Env for CodeMath {
    fn info() -> EnvInfo {
        let d = Config::default();
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: "Math problems with a stateful Python interpreter (monty) in the guest; \
                          generated number-theory and word problems, or GSM8K-style files."
                .to_string(),
            system_prompt: SYSTEM_PROMPT.to_string(),
            tools: vec![
                function_tool(
                    "python",
                    "Run Python code in the persistent session; returns printed output, the value \
                     of the last expression, or the traceback.",
                    &[("code", "Python source code to run.")],
                ),
                function_tool(
                    "submit",
                    "Submit the final answer (ends the episode).",
                    &[(
                        "answer",
                        "The exact answer, e.g. \"42\", \"7/3\" or \"12.5\".",
                    )],
                ),
            ],
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: json!({
                "kind": d.kind,
                "difficulty": d.difficulty,
                "max_turns": d.max_turns,
                "cell_steps": d.cell_limits.steps,
                "cell_memory_mib": d.cell_limits.memory_bytes >> 20,
                "recursion_depth": d.cell_limits.recursion_depth,
                "output_bytes": d.cell_limits.output_bytes,
            }),
        }
    }

    fn configure(&mut self, config: &Value) -> Result<(), String> {
        reject_unknown_keys(config, &CONFIG_KEYS)?;
        let d = Config::default();
        let mut kinds = vec!["any"];
        kinds.extend(KINDS);
        let limits = d.cell_limits;
        self.config = Config {
            kind: config_choice(config, "kind", &d.kind, &kinds)?,
            difficulty: config_int(config, "difficulty", d.difficulty, 1..=3)?,
            max_turns: config_int(config, "max_turns", d.max_turns, 2..=100)?,
            cell_limits: CellLimits {
                steps: config_int(config, "cell_steps", limits.steps as i64, 1_000..=100_000)?
                    as u64,
                memory_bytes: (config_int(
                    config,
                    "cell_memory_mib",
                    (limits.memory_bytes >> 20) as i64,
                    1..=64,
                )? as usize)
                    << 20,
                recursion_depth: config_int(
                    config,
                    "recursion_depth",
                    limits.recursion_depth as i64,
                    10..=1_000,
                )? as usize,
                output_bytes: config_int(
                    config,
                    "output_bytes",
                    limits.output_bytes as i64,
                    200..=100_000,
                )? as usize,
                code_bytes: MAX_CODE_BYTES,
            },
        };
        Ok(())
    }

    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.turns.end();
        let task = match task {
            Some(value) => Task::from_json(&value)?,
            None => {
                let mut rng = Rng::new(seed);
                let kind = if self.config.kind == "any" {
                    *rng.choose(&KINDS)
                } else {
                    self.config.kind.as_str()
                };
                tasks::generate(kind, self.config.difficulty, &mut rng)
            }
        };
        let output = ResetOutput {
            messages: vec![
                Message::system(SYSTEM_PROMPT),
                Message::user(self.statement(&task)),
            ],
            task_id: task.task_id(),
            task: task.to_json(),
            info: json!({"kind": task.kind}),
            user_turn: None,
        };
        // A fresh interpreter per episode, created on the first python call: an episode that never
        // runs code pays nothing, and no state leaks from the previous episode.
        self.session = None;
        self.seed = seed;
        self.task = Some(task);
        self.expert_ran_program = false;
        self.turns.start(self.config.max_turns);
        Ok(output)
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        sandgym_sdk::play_turn(self, action)
    }

    /// Generated tasks: run the task's program, then submit the answer (which the tests prove the
    /// program prints). Imported tasks have no program: the expert submits the known answer.
    fn expert(&mut self) -> Option<Action> {
        if !self.turns.is_active() {
            return None;
        }
        let task = self.task.as_ref()?;
        match &task.program {
            Some(program) if !self.expert_ran_program => {
                Some(Action::tool("python", &json!({"code": program})))
            }
            _ => Some(Action::tool(
                "submit",
                &json!({"answer": task.answer.to_string()}),
            )),
        }
    }

    fn actions(&mut self) -> Vec<Action> {
        let Some(expert) = self.expert() else {
            return Vec::new();
        };
        let task = self
            .task
            .as_ref()
            .expect("the expert acted, so a task is set");
        let wrong = Rational::integer(task.answer.numerator() + 1).to_string();
        vec![
            expert,
            Action::tool("python", &json!({"code": "print(2 + 2)"})),
            Action::tool("submit", &json!({"answer": wrong})),
        ]
    }
}

sandgym_sdk::export_env!(CodeMath);

#[cfg(test)]
mod tests;
