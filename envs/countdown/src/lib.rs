//! Countdown (after reasoning-gym's `countdown`): reach a target number from a handful of given
//! numbers with `+ - * /` and parentheses, using each number at most once (or exactly once with the
//! `use_all` knob), with exact integer arithmetic.
//!
//! This module owns the env: configuration, task generation and validation, the verifier, the tool
//! protocol (`calc` scratchpad, single `submit`), the expert and the admissible actions. Parsing lives
//! in [`expr`], the exact solver in [`solver`].
//!
//! Config knobs (defaults): `min_numbers` 4, `max_numbers` 4 (2..=6), `min_value` 1, `max_value` 100
//! (1..=1000000), `min_target` 10, `max_target` 999 (1..=1000000000), `max_turns` 10 (1..=1000),
//! `use_all` false. Task JSON: `{"numbers": [..], "target": N, "solution": "..."}` (`solution`
//! optional; when absent the solver finds one at reset).

pub mod expr;
pub mod solver;

use std::fmt;

use sandgym_sdk::{
    Action, Capabilities, EnvInfo, Message, ResetOutput, Rng, StepOutput, ToolCall, ToolEnv, Turns,
    Value, config_bool, config_int, function_tool, json, parse_arguments, reject_unknown_keys,
    string_argument, tool_error,
};

use expr::{ArithError, Op, evaluate};
use solver::Tree;

pub const NAME: &str = "countdown";
pub const VERSION: u32 = 0;
const TOOLS: [&str; 2] = ["calc", "submit"];

/// Bounds a task given by file may use; wider than generation allows, still small enough that the
/// solver stays cheap and every number prints compactly.
const MAX_TASK_NUMBERS: usize = solver::MAX_NUMBERS;
const MAX_TASK_VALUE: i64 = 1_000_000;
const MAX_TASK_TARGET: i64 = 1_000_000_000_000;
/// Generation draws again when an expression misses the target range; bounded so a config whose
/// range is unreachable fails at reset instead of spinning.
const MAX_ATTEMPTS: usize = 10_000;

const SYSTEM_PROMPT: &str = "You are playing Countdown. You are given a list of numbers and a \
target number. Build an arithmetic expression that equals the target, using only the given numbers, \
the operators + - * / and parentheses. Each given number may be used at most once unless the task \
says every number must be used exactly once; a number that appears twice in the list may be used \
twice. Division must be exact: no intermediate result may be a fraction. Numbers that are not in the \
list, unary minus, powers and other operators are not allowed.\n\nTools:\n- calc(expression): \
evaluates any arithmetic expression exactly, as a scratchpad. It does not end the game.\n- \
submit(expression): submits your final expression, for example \"(25 - 3) * 4\" (no '=' and no \
result). You have exactly one submission; it ends the game.";

/// Validated configuration knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub min_numbers: i64,
    pub max_numbers: i64,
    pub min_value: i64,
    pub max_value: i64,
    pub min_target: i64,
    pub max_target: i64,
    pub max_turns: i64,
    pub use_all: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_numbers: 4,
            max_numbers: 4,
            min_value: 1,
            max_value: 100,
            min_target: 10,
            max_target: 999,
            max_turns: 10,
            use_all: false,
        }
    }
}

impl Config {
    const KEYS: [&str; 8] = [
        "min_numbers",
        "max_numbers",
        "min_value",
        "max_value",
        "min_target",
        "max_target",
        "max_turns",
        "use_all",
    ];

    pub fn from_json(config: &Value) -> Result<Config, String> {
        reject_unknown_keys(config, &Self::KEYS)?;
        let d = Config::default();
        let c = Config {
            min_numbers: config_int(config, "min_numbers", d.min_numbers, 2..=6)?,
            max_numbers: config_int(config, "max_numbers", d.max_numbers, 2..=6)?,
            min_value: config_int(config, "min_value", d.min_value, 1..=MAX_TASK_VALUE)?,
            max_value: config_int(config, "max_value", d.max_value, 1..=MAX_TASK_VALUE)?,
            min_target: config_int(config, "min_target", d.min_target, 1..=1_000_000_000)?,
            max_target: config_int(config, "max_target", d.max_target, 1..=1_000_000_000)?,
            max_turns: config_int(config, "max_turns", d.max_turns, 1..=1000)?,
            use_all: config_bool(config, "use_all", d.use_all)?,
        };
        for (lo, hi, lo_name, hi_name) in [
            (c.min_numbers, c.max_numbers, "min_numbers", "max_numbers"),
            (c.min_value, c.max_value, "min_value", "max_value"),
            (c.min_target, c.max_target, "min_target", "max_target"),
        ] {
            if lo > hi {
                return Err(format!(
                    "config `{lo_name}` ({lo}) must not exceed `{hi_name}` ({hi})"
                ));
            }
        }
        Ok(c)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "min_numbers": self.min_numbers,
            "max_numbers": self.max_numbers,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "min_target": self.min_target,
            "max_target": self.max_target,
            "max_turns": self.max_turns,
            "use_all": self.use_all,
        })
    }
}

/// One Countdown puzzle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub numbers: Vec<i64>,
    pub target: i64,
    /// A known solution, if any (the generating expression, or one given with the task).
    pub solution: Option<String>,
}

impl Task {
    /// Parses and validates a task given by file; errors name the offending field.
    pub fn from_json(task: &Value) -> Result<Task, String> {
        let Value::Object(map) = task else {
            return Err(format!("task must be a JSON object, got {task}"));
        };
        if let Some(key) = map
            .keys()
            .find(|k| !["numbers", "target", "solution", "id"].contains(&k.as_str()))
        {
            // `id` only names the task for split files; it does not change the game.
            return Err(format!(
                "task has unknown field `{key}` (known: numbers, target, solution, id)"
            ));
        }
        let numbers_error = || {
            format!(
                "task field `numbers` must be an array of 1 to {MAX_TASK_NUMBERS} integers in \
                 0..={MAX_TASK_VALUE}, got {}",
                map.get("numbers").unwrap_or(&Value::Null)
            )
        };
        let numbers: Vec<i64> = match map.get("numbers") {
            Some(Value::Array(items)) if (1..=MAX_TASK_NUMBERS).contains(&items.len()) => items
                .iter()
                .map(|v| v.as_i64().filter(|n| (0..=MAX_TASK_VALUE).contains(n)))
                .collect::<Option<_>>()
                .ok_or_else(numbers_error)?,
            _ => return Err(numbers_error()),
        };
        let target = match map.get("target") {
            Some(v) => v
                .as_i64()
                .filter(|t| t.abs() <= MAX_TASK_TARGET)
                .ok_or_else(|| {
                    format!(
                        "task field `target` must be an integer with absolute value at most \
                         {MAX_TASK_TARGET}, got {v}"
                    )
                })?,
            None => return Err("task field `target` is missing".to_string()),
        };
        let solution = match map.get("solution") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "task field `solution` must be a string, got {other}"
                ));
            }
        };
        Ok(Task {
            numbers,
            target,
            solution,
        })
    }

    pub fn to_json(&self) -> Value {
        // Keys in sorted order, as the committed eval file has them (serde_json keeps insertion
        // order in this workspace: `preserve_order`, for the tau envs).
        let mut task = json!({"numbers": self.numbers});
        if let Some(solution) = &self.solution {
            task["solution"] = json!(solution);
        }
        task["target"] = json!(self.target);
        task
    }

    /// Stable and readable: the numbers in the given order and the target.
    pub fn id(&self) -> String {
        let numbers: Vec<String> = self.numbers.iter().map(i64::to_string).collect();
        format!("{NAME}-{}-t{}", numbers.join("_"), self.target)
    }

    fn statement(&self, use_all: bool) -> String {
        let numbers: Vec<String> = self.numbers.iter().map(i64::to_string).collect();
        let usage = if use_all {
            "Every number must be used exactly once."
        } else {
            "Each number may be used at most once; you do not have to use all of them."
        };
        format!(
            "Numbers: {}\nTarget: {}\n\nWrite an expression with these numbers, + - * / and \
             parentheses that equals the target. {usage} Division must be exact (no fractions). \
             Use calc to try ideas, then call submit with your final expression.",
            numbers.join(", "),
            self.target
        )
    }
}

/// Why a submitted expression is not a solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Parse(String),
    UnaryMinus,
    Unavailable(i64),
    OverUsed {
        number: i64,
        used: usize,
        given: usize,
    },
    Unused(i64),
    Arithmetic(ArithError),
    WrongValue {
        value: i64,
        target: i64,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Parse(msg) => write!(f, "parse error: {msg}"),
            Rejection::UnaryMinus => write!(f, "unary minus is not allowed in a submission"),
            Rejection::Unavailable(n) => write!(f, "uses {n} which is not available"),
            Rejection::OverUsed {
                number,
                used,
                given,
            } => write!(
                f,
                "uses {number} {used} times but it is given {}",
                times(*given)
            ),
            Rejection::Unused(n) => write!(
                f,
                "does not use {n}; every given number must be used exactly once"
            ),
            Rejection::Arithmetic(err) => write!(f, "{err}"),
            Rejection::WrongValue { value, target } => {
                write!(f, "value {value} != target {target}")
            }
        }
    }
}

fn times(n: usize) -> String {
    match n {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        n => format!("{n} times"),
    }
}

/// The verifier: `Ok(())` iff `expression` reaches `target` from `numbers` under the rules.
pub fn verify(
    numbers: &[i64],
    target: i64,
    use_all: bool,
    expression: &str,
) -> Result<(), Rejection> {
    let eval = evaluate(expression).map_err(Rejection::Parse)?;
    if eval.unary_minus {
        return Err(Rejection::UnaryMinus);
    }
    let count = |list: &[i64], n: i64| list.iter().filter(|&&x| x == n).count();
    for &n in &eval.literals {
        let given = count(numbers, n);
        let used = count(&eval.literals, n);
        if given == 0 {
            return Err(Rejection::Unavailable(n));
        }
        if used > given {
            return Err(Rejection::OverUsed {
                number: n,
                used,
                given,
            });
        }
    }
    if use_all
        && let Some(&n) = numbers
            .iter()
            .find(|&&n| count(&eval.literals, n) < count(numbers, n))
    {
        return Err(Rejection::Unused(n));
    }
    let value = eval.value.map_err(Rejection::Arithmetic)?;
    if value != target {
        return Err(Rejection::WrongValue { value, target });
    }
    Ok(())
}

/// Draws a task like reasoning-gym does: random numbers, a random expression over (a subset of) them
/// with positive integer intermediates, and its value as the target. The expression is the solution.
pub fn generate(config: &Config, rng: &mut Rng) -> Result<Task, String> {
    for _ in 0..MAX_ATTEMPTS {
        let n = rng.range(config.min_numbers, config.max_numbers) as usize;
        let numbers: Vec<i64> = (0..n)
            .map(|_| rng.range(config.min_value, config.max_value))
            .collect();
        // Using most but not always all numbers keeps "at most once" from being a no-op rule.
        let k = if config.use_all || n <= 2 {
            n
        } else {
            rng.range(n as i64 - 1, n as i64) as usize
        };
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let mut tree = Tree::default();
        let mut items: Vec<(i64, usize)> = order[..k]
            .iter()
            .map(|&i| (numbers[i], tree.leaf(numbers[i])))
            .collect();
        while items.len() > 1 {
            let i = rng.below(items.len() as u64) as usize;
            let mut j = rng.below(items.len() as u64 - 1) as usize;
            if j >= i {
                j += 1;
            }
            let Some(item) = random_combination(rng, &mut tree, items[i], items[j]) else {
                break;
            };
            items.remove(i.max(j));
            items.remove(i.min(j));
            items.push(item);
        }
        let (target, root) = items[0];
        if items.len() == 1
            && (config.min_target..=config.max_target).contains(&target)
            && !numbers.contains(&target)
        {
            return Ok(Task {
                numbers,
                target,
                solution: Some(tree.render(root)),
            });
        }
    }
    Err(format!(
        "could not generate a task within {MAX_ATTEMPTS} attempts: the target range {}..={} \
         seems unreachable with {}..={} numbers in {}..={}",
        config.min_target,
        config.max_target,
        config.min_numbers,
        config.max_numbers,
        config.min_value,
        config.max_value
    ))
}

/// Combines two values with a random operator whose result is a positive integer (larger operand
/// first for `-` and `/`, so generated solutions read naturally). `None` only on overflow.
fn random_combination(
    rng: &mut Rng,
    tree: &mut Tree,
    (a, na): (i64, usize),
    (b, nb): (i64, usize),
) -> Option<(i64, usize)> {
    let mut ops = Op::ALL;
    rng.shuffle(&mut ops);
    let ((x, nx), (y, ny)) = if a >= b {
        ((a, na), (b, nb))
    } else {
        ((b, nb), (a, na))
    };
    for op in ops {
        let trivial = match op {
            Op::Sub => x == y,
            Op::Div => y <= 1,
            _ => false,
        };
        if trivial {
            continue;
        }
        if let Ok(value) = op.apply(x, y) {
            return Some((value, tree.bin(op, nx, ny)));
        }
    }
    None
}

/// First seed of the shipped eval set `datasets/countdown/eval-v0.jsonl`; far from the small seeds
/// training runs count up from, so eval tasks are not training tasks.
pub const EVAL_V0_SEED_BASE: u64 = 0x0e7a_1000_0000_0000;
pub const EVAL_V0_SIZE: u64 = 100;

/// The eval set's JSONL text: tasks generated with the default config from consecutive seeds.
pub fn eval_v0_jsonl() -> String {
    let config = Config::default();
    (0..EVAL_V0_SIZE)
        .map(|i| {
            let task = generate(&config, &mut Rng::new(EVAL_V0_SEED_BASE + i))
                .expect("the default config always generates");
            format!("{}\n", task.to_json())
        })
        .collect()
}

/// The Countdown env.
#[derive(Debug, Default)]
pub struct Countdown {
    config: Config,
    task: Option<Task>,
    /// Found at reset so `expert` is cheap.
    solution: Option<String>,
    turns: Turns,
}

impl Countdown {
    pub fn task(&self) -> Option<&Task> {
        self.task.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Finds a solution valid under the current rules: the task's own if it is one, else the solver's.
    fn solution_for(&self, task: &Task) -> Result<Option<String>, String> {
        if let Some(given) = &task.solution {
            match verify(&task.numbers, task.target, self.config.use_all, given) {
                Ok(()) => return Ok(Some(given.clone())),
                // Valid under "at most once" but this config wants every number: search instead.
                Err(Rejection::Unused(_)) => {}
                Err(reason) => {
                    return Err(format!("task field `solution` is not a solution: {reason}"));
                }
            }
        }
        Ok(solver::solve(
            &task.numbers,
            task.target,
            self.config.use_all,
        ))
    }

    fn call(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        let args = match parse_arguments(call) {
            Ok(args) => args,
            Err(err) => return tool_error(call, err),
        };
        let expression = match call.name.as_str() {
            "calc" | "submit" => {
                match string_argument(call, &args, "expression", &["expression"]) {
                    Ok(expression) => expression,
                    Err(err) => return tool_error(call, err),
                }
            }
            other => {
                return tool_error(
                    call,
                    format!("unknown tool `{other}`; the tools are calc and submit"),
                );
            }
        };
        if call.name == "calc" {
            return match evaluate(&expression) {
                Ok(eval) => match eval.value {
                    Ok(value) => Message::tool(call, value.to_string()),
                    Err(err) => tool_error(call, err),
                },
                Err(err) => tool_error(call, format!("parse error: {err}")),
            };
        }
        let task = self.task.as_ref().expect("an active episode has a task");
        out.terminated = true;
        match verify(&task.numbers, task.target, self.config.use_all, &expression) {
            Ok(()) => {
                out.reward = 1.0;
                out.success = true;
                out.info = json!({"reason": "solved"});
                Message::tool(
                    call,
                    format!(
                        "Correct: {} = {}. You solved it.",
                        expression.trim(),
                        task.target
                    ),
                )
            }
            Err(reason) => {
                let reason = reason.to_string();
                let text = format!("Incorrect: {reason}. The episode is over.");
                out.info = json!({"reason": reason});
                Message::tool(call, text)
            }
        }
    }
}

fn submit(expression: &str) -> Action {
    expression_call("submit", expression)
}

/// A call of `tool` with `{"expression": expression}`.
fn expression_call(tool: &str, expression: &str) -> Action {
    call_with_arguments(tool, expression_arguments(expression))
}

/// `{"expression": expression}` serialized exactly as `json!(..).to_string()` would, without building
/// the map: `actions()` makes up to 32 of these in every state it is asked.
fn expression_arguments(expression: &str) -> String {
    let mut out = Vec::with_capacity(expression.len() + 18);
    out.extend_from_slice(b"{\"expression\":");
    serde_json::to_writer(&mut out, expression).expect("a string serializes");
    out.push(b'}');
    String::from_utf8(out).expect("JSON is UTF-8")
}

fn call_with_arguments(tool: &str, arguments: String) -> Action {
    Action {
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: tool.into(),
            arguments,
        }],
        ..Action::default()
    }
}

impl ToolEnv for Countdown {
    const TOOL_NAMES: &'static [&'static str] = &TOOLS;

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message {
        self.call(call, out)
    }
}

impl sandgym_sdk::Env for Countdown {
    fn info() -> EnvInfo {
        EnvInfo {
            abi_version: 0,
            name: NAME.to_string(),
            version: VERSION,
            description: "Reach a target number from given numbers with + - * / and parentheses \
                          (exact arithmetic, each number at most once); one submission."
                .to_string(),
            system_prompt: SYSTEM_PROMPT.to_string(),
            tools: vec![
                function_tool(
                    "calc",
                    "Evaluate an arithmetic expression exactly (integers, + - * /, parentheses). \
                     A scratchpad: it does not end the game.",
                    &[(
                        "expression",
                        "The expression to evaluate, e.g. \"(25 - 3) * 4\".",
                    )],
                ),
                function_tool(
                    "submit",
                    "Submit the final expression. It must use only the given numbers, each at \
                     most once, and equal the target. Ends the game.",
                    &[(
                        "expression",
                        "The final expression, without '=' or the result.",
                    )],
                ),
            ],
            capabilities: Capabilities {
                expert: true,
                actions: true,
                generates_tasks: true,
            },
            default_config: Config::default().to_json(),
        }
    }

    fn configure(&mut self, config: &Value) -> Result<(), String> {
        self.config = Config::from_json(config)?;
        Ok(())
    }

    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String> {
        self.turns.end();
        let mut task = match task {
            None => generate(&self.config, &mut Rng::new(seed))?,
            Some(value) => Task::from_json(&value)?,
        };
        let solution = self.solution_for(&task)?;
        if task.solution.is_none() {
            task.solution = solution.clone();
        }
        let output = ResetOutput {
            messages: vec![
                Message::system(SYSTEM_PROMPT),
                Message::user(task.statement(self.config.use_all)),
            ],
            task_id: task.id(),
            task: task.to_json(),
            info: json!({"solvable": solution.is_some()}),
            user_turn: None,
        };
        self.task = Some(task);
        self.solution = solution;
        self.turns.start(self.config.max_turns);
        Ok(output)
    }

    fn step(&mut self, action: &Action) -> StepOutput {
        sandgym_sdk::play_turn(self, action)
    }

    fn expert(&mut self) -> Option<Action> {
        if !self.turns.is_active() {
            return None;
        }
        self.solution.as_deref().map(submit)
    }

    fn actions(&mut self) -> Vec<Action> {
        const LIMIT: usize = 32;
        let Some(task) = self.task.as_ref().filter(|_| self.turns.is_active()) else {
            return Vec::new();
        };
        // This query runs in every state an early-experience collector branches from, so duplicates
        // are found on strings and number pairs before any action is built.
        let mut submissions: Vec<String> = Vec::with_capacity(4);
        if let Some(solution) = &self.solution {
            submissions.push(solution.clone());
        }
        let numbers: Vec<String> = task.numbers.iter().map(i64::to_string).collect();
        // Plausible but (almost always) wrong submissions, kept only when they really are wrong.
        for wrong in [numbers.join(" + "), numbers.join(" * "), numbers[0].clone()] {
            if !submissions.contains(&wrong)
                && verify(&task.numbers, task.target, self.config.use_all, &wrong).is_err()
            {
                submissions.push(wrong);
            }
        }
        let mut actions: Vec<Action> = submissions
            .iter()
            .take(LIMIT)
            .map(|expression| expression_call("submit", expression))
            .collect();
        let mut pairs: Vec<(i64, i64)> = Vec::new();
        for i in 0..task.numbers.len() {
            for j in i + 1..task.numbers.len() {
                let (a, b) = (
                    task.numbers[i].max(task.numbers[j]),
                    task.numbers[i].min(task.numbers[j]),
                );
                if pairs.contains(&(a, b)) {
                    continue;
                }
                pairs.push((a, b));
                let ops: &[char] = if b != 0 && a % b == 0 {
                    &['+', '*', '-', '/']
                } else {
                    &['+', '*', '-']
                };
                for op in ops {
                    if actions.len() == LIMIT {
                        return actions;
                    }
                    // Integers and operators never need JSON escaping.
                    let arguments = format!("{{\"expression\":\"{a} {op} {b}\"}}");
                    actions.push(call_with_arguments("calc", arguments));
                }
            }
        }
        actions
    }
}

sandgym_sdk::export_env!(Countdown);

#[cfg(test)]
mod tests;
