//! The guest SDK: implement [`Env`] and call [`export_env!`]; the SDK does the ABI.
//!
//! It owns the guest side of ABI v1 (`docs/abi.md`): the exports, input buffers, the output buffer and the
//! JSON envelope. It also gives env authors a portable seeded [`Rng`] and small helpers for tool calls.
//! The same [`Host`] drives an env natively (no sandbox), which the benchmarks use as their baseline.

pub use sandgym_abi::{
    ABI_VERSION, Action, Capabilities, EnvInfo, Envelope, Message, ResetInput, ResetOutput, Role,
    StepOutput, ToolCall, UserTurn,
};
pub use serde_json::{self, Value, json};

/// An environment. `Default` builds the unconfigured instance the host instantiates.
pub trait Env: Default + 'static {
    /// Static description: name, version, prompt, tool schemas, capabilities, default config.
    /// `abi_version` is filled in by the SDK.
    fn info() -> EnvInfo;

    /// Applies configuration knobs (JSON object). Called once, before the first reset.
    /// Unknown keys and ill-typed values should be rejected with a message naming them.
    fn configure(&mut self, config: &Value) -> Result<(), String> {
        reject_unknown_keys(config, &[])
    }

    /// Starts an episode: plays `task` if given, otherwise generates a task from `seed`.
    /// An invalid task is an `Err` with a message saying what is wrong with it.
    fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput, String>;

    /// Applies one action. Bad tool calls and `action.format_error` are answered with observations
    /// (see [`format_error_message`], [`tool_error`]), never with a panic.
    fn step(&mut self, action: &Action) -> StepOutput;

    /// The expert's next action in the current state, if the env has an expert.
    fn expert(&mut self) -> Option<Action> {
        None
    }

    /// The admissible actions in the current state (bounded in number), if the env can list them.
    fn actions(&mut self) -> Vec<Action> {
        Vec::new()
    }
}

/// The observation for an action the host could not parse: a user message the model can read.
pub fn format_error_message(error: &str) -> Message {
    Message::user(format!(
        "Format error: {error}. Call a tool as <tool_call>{{\"name\": ..., \"arguments\": {{...}}}}</tool_call>."
    ))
}

/// The observation for an action without tool calls: a user message naming the tools to call.
pub fn no_tool_call_message(tools: &[&str]) -> Message {
    Message::user(format!(
        "No tool call found. Call one of the tools ({}) to act.",
        tools.join(", ")
    ))
}

/// The answer to a call that comes after the episode ended within the same action: every call still
/// gets exactly one tool message, so the transcript stays well-formed for chat templates.
pub fn not_executed_message(call: &ToolCall) -> Message {
    tool_error(call, "not executed: the episode already ended")
}

/// The output of a step taken after the episode ended (the host guards this too): one message per
/// call, zero reward, `terminated` so a driver that missed the end stops here.
pub fn episode_over(action: &Action) -> StepOutput {
    let text = "The episode is over; call reset to start a new one.";
    let messages = if action.tool_calls.is_empty() {
        vec![Message::user(text)]
    } else {
        action
            .tool_calls
            .iter()
            .map(|call| tool_error(call, text))
            .collect()
    };
    StepOutput {
        messages,
        reward: 0.0,
        terminated: true,
        truncated: false,
        success: false,
        info: json!({"reason": "episode already over"}),
        user_turn: None,
    }
}

/// A tool message reporting an error for `call`, in the `Error: …` form models are trained on.
pub fn tool_error(call: &ToolCall, error: impl std::fmt::Display) -> Message {
    Message::tool(call, format!("Error: {error}"))
}

/// Turn bookkeeping of a tool-calling env: whether an episode is running and how many turns it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turns {
    taken: i64,
    limit: i64,
    active: bool,
}

impl Turns {
    /// Starts an episode that may last `limit` turns.
    pub fn start(&mut self, limit: i64) {
        *self = Turns {
            taken: 0,
            limit,
            active: true,
        };
    }

    /// Ends the episode (or marks that none is running, e.g. while a reset fails).
    pub fn end(&mut self) {
        self.active = false;
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Turns taken in this episode.
    pub fn taken(&self) -> i64 {
        self.taken
    }
}

/// An env that follows the usual tool protocol, so that [`play_turn`] can run its steps.
pub trait ToolEnv {
    /// Tool names, for the hint sent when a turn has no tool call.
    const TOOL_NAMES: &'static [&'static str];

    /// The env's turn bookkeeping.
    fn turns(&mut self) -> &mut Turns;

    /// Runs one tool call and returns its tool message; sets `reward`, `terminated`, `success` and
    /// `info` on `out` when the call ends the episode.
    fn call_tool(&mut self, call: &ToolCall, out: &mut StepOutput) -> Message;
}

/// Plays one step of the usual tool protocol:
/// - after the episode ended, say so ([`episode_over`]); the host guards this too;
/// - every step is a turn, whatever the action was;
/// - `format_error` set (the host could not parse the model's text): [`format_error_message`], no tool runs;
/// - no tool calls: a user message asking for one;
/// - otherwise exactly one tool message per call, in call order, calls after the episode ended within
///   the action included ([`not_executed_message`]), so the transcript stays valid for chat templates;
/// - reaching the turn limit without terminating sets `truncated`.
pub fn play_turn<E: ToolEnv>(env: &mut E, action: &Action) -> StepOutput {
    if !env.turns().active {
        return episode_over(action);
    }
    env.turns().taken += 1;
    let mut out = StepOutput {
        messages: Vec::with_capacity(action.tool_calls.len().max(1)),
        reward: 0.0,
        terminated: false,
        truncated: false,
        success: false,
        info: json!({}),
        user_turn: None,
    };
    if let Some(error) = &action.format_error {
        out.messages.push(format_error_message(error));
        out.info = json!({"reason": "format error"});
    } else if action.tool_calls.is_empty() {
        out.messages.push(no_tool_call_message(E::TOOL_NAMES));
        out.info = json!({"reason": "no tool call"});
    } else {
        for call in &action.tool_calls {
            let message = if out.terminated {
                not_executed_message(call)
            } else {
                env.call_tool(call, &mut out)
            };
            out.messages.push(message);
        }
    }
    let turns = env.turns();
    if !out.terminated && turns.taken >= turns.limit {
        out.truncated = true;
        out.info = json!({"reason": "turn limit reached"});
    }
    if out.terminated || out.truncated {
        turns.active = false;
    }
    out
}

/// Decodes a call's `arguments` into an object, with an error message meant for the model.
pub fn parse_arguments(call: &ToolCall) -> Result<serde_json::Map<String, Value>, String> {
    let text = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "arguments of `{}` must be a JSON object, got {other}",
            call.name
        )),
        Err(err) => Err(format!(
            "arguments of `{}` are not valid JSON: {err}",
            call.name
        )),
    }
}

/// Reads a required string argument, rejecting any argument not in `allowed`.
pub fn string_argument(
    call: &ToolCall,
    args: &serde_json::Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> Result<String, String> {
    if let Some(extra) = args.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unexpected argument `{extra}` for `{}`", call.name));
    }
    match args.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!(
            "argument `{key}` of `{}` must be a string, got {other}",
            call.name
        )),
        None => Err(format!("missing argument `{key}` for `{}`", call.name)),
    }
}

/// Fails when `config` is not an object or has a key outside `known`.
pub fn reject_unknown_keys(config: &Value, known: &[&str]) -> Result<(), String> {
    match config {
        Value::Null => Ok(()),
        Value::Object(map) => match map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(format!(
                "unknown config key `{key}` (known: {})",
                known.join(", ")
            )),
            None => Ok(()),
        },
        other => Err(format!("config must be a JSON object, got {other}")),
    }
}

fn config_value<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    config.get(key).filter(|v| !v.is_null())
}

/// Reads an optional integer knob of a config object (absent or `null` gives `default`), checking it
/// lies in `range`; the error names the key so a bad config is easy to fix.
pub fn config_int(
    config: &Value,
    key: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, String> {
    let Some(value) = config_value(config, key) else {
        return Ok(default);
    };
    match value.as_i64() {
        Some(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "config `{key}` must be an integer in {}..={}, got {value}",
            range.start(),
            range.end()
        )),
    }
}

/// Reads an optional boolean knob of a config object (absent or `null` gives `default`).
pub fn config_bool(config: &Value, key: &str, default: bool) -> Result<bool, String> {
    match config_value(config, key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("config `{key}` must be true or false, got {other}")),
    }
}

/// Reads an optional string knob of a config object that must be one of `allowed`.
pub fn config_choice(
    config: &Value,
    key: &str,
    default: &str,
    allowed: &[&str],
) -> Result<String, String> {
    match config_value(config, key) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        Some(other) => Err(format!(
            "config `{key}` must be one of {}, got {other}",
            allowed
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// FNV-1a, 64-bit: a stable hash for task ids. `std`'s hashers are randomly seeded (and seeding them
/// calls WASI `random_get`, which the sandbox forbids), so ids must not come from them.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Builds one OpenAI function-calling tool schema with string parameters (`(name, description)`).
pub fn function_tool(name: &str, description: &str, params: &[(&str, &str)]) -> Value {
    let typed: Vec<(&str, Value)> = params
        .iter()
        .map(|(p, d)| (*p, json!({"type": "string", "description": d})))
        .collect();
    typed_function_tool(name, description, &typed)
}

/// Builds one OpenAI function-calling tool schema whose parameters are all required, each given with
/// its JSON schema (`(name, schema)`).
pub fn typed_function_tool(name: &str, description: &str, params: &[(&str, Value)]) -> Value {
    let properties: serde_json::Map<String, Value> = params
        .iter()
        .map(|(p, schema)| (p.to_string(), schema.clone()))
        .collect();
    let required: Vec<&str> = params.iter().map(|(p, _)| *p).collect();
    json!({
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        }
    })
}

/// A small, portable, seeded PRNG (SplitMix64): the same seed gives the same stream on every platform,
/// so tasks generated natively and in the sandbox are identical.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Uniform in the inclusive range `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Drives an [`Env`] through the ABI's JSON payloads. The wasm exports call it; native code (benchmarks,
/// tests) can call it directly to run the exact same code path without a sandbox.
pub struct Host<E: Env> {
    env: E,
    output: Vec<u8>,
}

impl<E: Env> Default for Host<E> {
    fn default() -> Self {
        Host {
            env: E::default(),
            output: Vec::new(),
        }
    }
}

impl<E: Env> Host<E> {
    fn respond<T: serde::Serialize>(&mut self, result: Result<T, String>) -> &[u8] {
        self.output.clear();
        let envelope: Envelope<T> = result.into();
        if let Err(err) = serde_json::to_writer(&mut self.output, &envelope) {
            self.output.clear();
            let fallback: Envelope<()> = Envelope::Err(format!("cannot encode output: {err}"));
            serde_json::to_writer(&mut self.output, &fallback).expect("encoding a string");
        }
        &self.output
    }

    fn decode<T: serde::de::DeserializeOwned>(input: &[u8], what: &str) -> Result<T, String> {
        serde_json::from_slice(input).map_err(|e| format!("invalid {what} JSON: {e}"))
    }

    /// The driven env, for native tests and guests that hand-write some exports.
    pub fn env(&self) -> &E {
        &self.env
    }

    pub fn env_mut(&mut self) -> &mut E {
        &mut self.env
    }

    pub fn info(&mut self) -> &[u8] {
        let mut info = E::info();
        info.abi_version = ABI_VERSION;
        self.respond(Ok(info))
    }

    pub fn configure(&mut self, input: &[u8]) -> &[u8] {
        let result = Self::decode::<Value>(input, "config").and_then(|c| self.env.configure(&c));
        if result.is_ok() {
            // Whatever configuration built stays put; episodes allocate elsewhere (see `heap`).
            heap::seal();
        }
        self.respond(result)
    }

    pub fn reset(&mut self, input: &[u8]) -> &[u8] {
        let result = Self::decode::<ResetInput>(input, "reset input")
            .and_then(|r| self.env.reset(r.seed, r.task));
        self.respond(result)
    }

    pub fn step(&mut self, input: &[u8]) -> &[u8] {
        let result = Self::decode::<Action>(input, "action").map(|a| self.env.step(&a));
        self.respond(result)
    }

    pub fn expert(&mut self) -> &[u8] {
        let action = self.env.expert();
        self.respond(Ok(action))
    }

    pub fn actions(&mut self) -> &[u8] {
        let actions = self.env.actions();
        self.respond(Ok(actions))
    }
}

/// Exports an [`Env`] implementation as a sandgym guest module (ABI v1).
///
/// ```ignore
/// #[derive(Default)]
/// struct MyEnv { /* state */ }
/// impl sandgym_sdk::Env for MyEnv { /* ... */ }
/// sandgym_sdk::export_env!(MyEnv);
/// ```
#[macro_export]
macro_rules! export_env {
    ($env:ty) => {
        #[cfg(target_arch = "wasm32")]
        mod __sandgym_exports {
            use super::*;
            use std::cell::RefCell;

            thread_local! {
                static HOST: RefCell<$crate::Host<$env>> = RefCell::new(Default::default());
            }

            fn output(bytes: &[u8]) -> i64 {
                $crate::__private::pack(bytes.as_ptr() as u32, bytes.len() as u32)
            }

            /// Takes ownership of an input buffer the host filled after `sandgym_alloc`.
            fn input(ptr: i32, len: i32) -> Vec<u8> {
                if len <= 0 {
                    return Vec::new();
                }
                // SAFETY: the host obtained `ptr` from `sandgym_alloc(len)` and filled `len` bytes;
                // ownership passes back to the guest here, exactly once per call (docs/abi.md).
                unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) }
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_abi_version() -> i32 {
                $crate::ABI_VERSION as i32
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_alloc(len: i32) -> i32 {
                let mut buf =
                    std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(len.max(0) as usize));
                buf.as_mut_ptr() as i32
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_dealloc(ptr: i32, len: i32) {
                drop(input(ptr, len));
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_info() -> i64 {
                HOST.with_borrow_mut(|h| output(h.info()))
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_configure(ptr: i32, len: i32) -> i64 {
                let bytes = input(ptr, len);
                HOST.with_borrow_mut(|h| output(h.configure(&bytes)))
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_reset(ptr: i32, len: i32) -> i64 {
                let bytes = input(ptr, len);
                HOST.with_borrow_mut(|h| output(h.reset(&bytes)))
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_step(ptr: i32, len: i32) -> i64 {
                let bytes = input(ptr, len);
                HOST.with_borrow_mut(|h| output(h.step(&bytes)))
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_expert() -> i64 {
                HOST.with_borrow_mut(|h| output(h.expert()))
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn sandgym_actions() -> i64 {
                HOST.with_borrow_mut(|h| output(h.actions()))
            }
        }
    };
}

pub mod heap;
mod rational;
pub use rational::Rational;

#[doc(hidden)]
pub mod __private {
    pub use sandgym_abi::pack;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.range(-3, 5);
            assert_eq!(x, b.range(-3, 5));
            assert!((-3..=5).contains(&x));
        }
    }

    #[test]
    fn config_readers_default_and_validate() {
        let config = json!({"n": 3, "flag": true, "mode": "b", "bad": "x"});
        assert_eq!(config_int(&config, "n", 1, 1..=5), Ok(3));
        assert_eq!(config_int(&config, "missing", 1, 1..=5), Ok(1));
        assert_eq!(config_int(&Value::Null, "n", 1, 1..=5), Ok(1));
        assert!(
            config_int(&config, "n", 1, 4..=5)
                .unwrap_err()
                .contains("`n`")
        );
        assert!(config_int(&config, "bad", 1, 1..=5).is_err());
        assert_eq!(config_bool(&config, "flag", false), Ok(true));
        assert!(config_bool(&config, "n", false).is_err());
        assert_eq!(
            config_choice(&config, "mode", "a", &["a", "b"]),
            Ok("b".into())
        );
        assert!(config_choice(&config, "bad", "a", &["a", "b"]).is_err());
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(stable_hash(b"01"), stable_hash(b"10"));
    }

    #[test]
    fn episode_over_answers_every_call() {
        let mut action = Action::tool("a", &json!({}));
        action
            .tool_calls
            .push(ToolCall::new("call_1", "b", &json!({})));
        let out = episode_over(&action);
        assert!(out.terminated);
        let ids: Vec<_> = out
            .messages
            .iter()
            .map(|m| m.tool_call_id.clone())
            .collect();
        assert_eq!(
            ids,
            [Some("call_0".to_string()), Some("call_1".to_string())]
        );
        assert_eq!(
            episode_over(&Action::text("hi")).messages[0].role,
            Role::User
        );
    }

    #[test]
    fn parse_arguments_reports_errors_for_the_model() {
        let call = ToolCall::new("c", "calc", &json!({"expression": "1+2"}));
        assert_eq!(parse_arguments(&call).unwrap()["expression"], "1+2");
        let bad = ToolCall {
            id: "c".into(),
            name: "calc".into(),
            arguments: "{oops".into(),
        };
        assert!(
            parse_arguments(&bad)
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}
