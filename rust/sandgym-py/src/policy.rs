//! Policies from Python: a name (`"expert"`), a settings object of `sandgym.policies` (`OpenAIPolicy`,
//! `ReplayPolicy`), or any callable (`CallablePolicy`) that maps a batch of observations (chat message
//! lists) to a batch of actions.
//!
//! The callable runs on the collector's Rust threads: each batch takes the GIL only for the call (the
//! rest of collection runs without it), and a [`Batcher`] gathers the episodes in flight into one call.
//! An exception, a wrong number of actions or an action of the wrong shape ends the episodes concerned
//! with a `policy` error row; the run goes on.

use std::sync::Arc;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use sandgym_core::parse::{Format, action_from_json, parse_completion};
use sandgym_core::policy::{
    self, Batcher, Decision, OpenAiConfig, Policy, PolicyInput, PolicySpec, Usage, openai_messages,
};
use sandgym_core::trajectory::TurnChunk;
use sandgym_core::{Action, Error, Result};
use serde_json::Value;

use crate::convert::{from_py, to_py};
use crate::error::IntoPy;

/// A Python callable acting as a policy.
pub struct PyCallablePolicy {
    callable: Py<PyAny>,
    name: String,
    parser: Format,
    with_tools: bool,
}

/// The token fields a Python policy may return beside its action: the context's ids, the generated ids
/// and their log-probabilities (what a local model or a token-level server reports), and the chunks of a
/// chunked (Delethink) turn.
#[derive(Default)]
struct TurnTokens {
    prompt_ids: Vec<u32>,
    completion_ids: Vec<u32>,
    completion_logprobs: Vec<f64>,
    chunks: Vec<TurnChunk>,
    chunks_truncated: bool,
}

/// A JSON list of token ids under `key`; `what` names it in errors.
fn token_list(value: Option<Value>, what: &str) -> Result<Vec<u32>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|id| id.as_u64().and_then(|id| u32::try_from(id).ok()))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| {
                Error::Policy(format!(
                    "`{what}` must be a list of token ids (0 ≤ id < 2³²)"
                ))
            }),
        Some(_) => Err(Error::Policy(format!(
            "`{what}` must be a list of token ids"
        ))),
    }
}

/// Checks that `logprobs` is empty or has one value per id. The error reads "{subject} N {kind} ids but
/// M log-probabilities".
fn check_paired(ids: &[u32], logprobs: &[f64], subject: &str, kind: &str) -> Result<()> {
    if logprobs.is_empty() || logprobs.len() == ids.len() {
        return Ok(());
    }
    Err(Error::Policy(format!(
        "{subject} {} {kind} ids but {} log-probabilities",
        ids.len(),
        logprobs.len()
    )))
}

/// A JSON list of floats under `key`; `what` names it in errors.
fn float_list(value: Option<Value>, what: &str) -> Result<Vec<f64>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| Error::Policy(format!("`{what}` must be a list of floats"))),
        Some(_) => Err(Error::Policy(format!("`{what}` must be a list of floats"))),
    }
}

impl TurnTokens {
    /// Removes the token fields from an action dict, checking their types.
    fn take(fields: &mut serde_json::Map<String, Value>) -> Result<Self> {
        let prompt_ids = token_list(fields.remove("prompt_ids"), "prompt_ids")?;
        let completion_ids = token_list(fields.remove("completion_ids"), "completion_ids")?;
        let completion_logprobs =
            float_list(fields.remove("completion_logprobs"), "completion_logprobs")?;
        let chunks = match fields.remove("chunks") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let Value::Object(mut chunk) = item else {
                        return Err(Error::Policy(format!("`chunks[{i}]` must be a dict")));
                    };
                    let response_ids = token_list(
                        chunk.remove("response_ids"),
                        &format!("chunks[{i}].response_ids"),
                    )?;
                    let response_logprobs = float_list(
                        chunk.remove("response_logprobs"),
                        &format!("chunks[{i}].response_logprobs"),
                    )?;
                    check_paired(
                        &response_ids,
                        &response_logprobs,
                        &format!("`chunks[{i}]` has"),
                        "response",
                    )?;
                    Ok(TurnChunk {
                        prompt_ids: token_list(
                            chunk.remove("prompt_ids"),
                            &format!("chunks[{i}].prompt_ids"),
                        )?,
                        response_ids,
                        response_logprobs,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(Error::Policy("`chunks` must be a list of dicts".into())),
        };
        check_paired(
            &completion_ids,
            &completion_logprobs,
            "the policy returned",
            "completion",
        )?;
        let chunks_truncated = match fields.remove("chunks_truncated") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => flag,
            Some(_) => return Err(Error::Policy("`chunks_truncated` must be a bool".into())),
        };
        Ok(TurnTokens {
            prompt_ids,
            completion_ids,
            completion_logprobs,
            chunks,
            chunks_truncated,
        })
    }
}

impl PyCallablePolicy {
    fn observations<'py>(
        &self,
        py: Python<'py>,
        inputs: &[PolicyInput<'_>],
    ) -> PyResult<Bound<'py, PyList>> {
        let items = inputs
            .iter()
            .map(|input| to_py(py, &Value::Array(openai_messages(input.messages))))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// One returned item → a decision: a string is parsed, a dict is an assistant message in the
    /// OpenAI shape (`content`, `tool_calls`) with an optional `usage`.
    fn read_item(&self, item: &Bound<'_, PyAny>, tools: &[Value]) -> Result<Decision> {
        if let Ok(text) = item.cast::<PyString>() {
            let text = text
                .to_str()
                .map_err(|e| Error::Policy(format!("the action is not valid text: {e}")))?
                .to_string();
            let parsed = parse_completion(&text, self.parser, tools);
            return Ok(Decision {
                action: parsed.action,
                raw_output: text,
                parser: parsed.parser.name().to_string(),
                ..Decision::default()
            });
        }
        if item.cast::<PyDict>().is_ok() {
            let mut value = from_py(item)
                .map_err(|e| Error::Policy(format!("the action dict is not JSON-like: {e}")))?;
            let fields = value.as_object_mut().expect("a dict converts to an object");
            let usage = fields.remove("usage").unwrap_or(Value::Null);
            let count = |key: &str| {
                usage
                    .get(key)
                    .and_then(Value::as_u64)
                    .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
            };
            let tokens = TurnTokens::take(fields)?;
            fields.remove("role");
            let mut decision = match fields.remove("text") {
                // Model text with its tokens: parsed as a str would be.
                Some(Value::String(text)) if fields.is_empty() => {
                    let parsed = parse_completion(&text, self.parser, tools);
                    Decision {
                        action: parsed.action,
                        raw_output: text,
                        parser: parsed.parser.name().to_string(),
                        ..Decision::default()
                    }
                }
                Some(_) => {
                    return Err(Error::Policy(
                        "an action dict with `text` takes only the token fields and `usage` beside \
                         it, and `text` must be a str"
                            .into(),
                    ));
                }
                None => {
                    let action = action_from_json(&value).map_err(|e| {
                        Error::Policy(format!(
                            "the action dict is not an assistant message ({e}); expected \
                             {{\"content\": str, \"tool_calls\": [...]}} or {{\"text\": str}}"
                        ))
                    })?;
                    Decision {
                        action,
                        raw_output: value.to_string(),
                        parser: Format::OpenAi.name().to_string(),
                        ..Decision::default()
                    }
                }
            };
            decision.usage = Usage {
                prompt_tokens: count("prompt_tokens"),
                completion_tokens: count("completion_tokens"),
            };
            (
                decision.prompt_ids,
                decision.completion_ids,
                decision.completion_logprobs,
            ) = (
                tokens.prompt_ids,
                tokens.completion_ids,
                tokens.completion_logprobs,
            );
            decision.chunks = tokens.chunks;
            decision.chunks_truncated = tokens.chunks_truncated;
            return Ok(decision);
        }
        let type_name = item
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        Err(Error::Policy(format!(
            "the policy returned a {type_name}; an action is a str (model text) or a dict \
             (an assistant message with `content` and/or `tool_calls`, or `text`; either with optional \
             `prompt_ids`, `completion_ids`, `completion_logprobs`, `chunks`, `chunks_truncated` and `usage`)"
        )))
    }

    fn call(&self, py: Python<'_>, inputs: &[PolicyInput<'_>]) -> Vec<Result<Decision>> {
        let all = |message: String| {
            (0..inputs.len())
                .map(|_| Err(Error::Policy(message.clone())))
                .collect()
        };
        let observations = match self.observations(py, inputs) {
            Ok(o) => o,
            Err(e) => return all(format!("could not build the observations: {e}")),
        };
        let callable = self.callable.bind(py);
        let returned = if self.with_tools {
            let tools: Vec<Value> = inputs
                .iter()
                .map(|i| Value::Array(i.tools.to_vec()))
                .collect();
            match to_py(py, &Value::Array(tools)) {
                Ok(tools) => callable.call1((observations, tools)),
                Err(e) => return all(format!("could not build the tool lists: {e}")),
            }
        } else {
            callable.call1((observations,))
        };
        let returned = match returned {
            Ok(r) => r,
            Err(e) => {
                let traceback = e
                    .traceback(py)
                    .and_then(|t| t.format().ok())
                    .unwrap_or_default();
                return all(format!(
                    "python policy `{}` raised {e}\n{traceback}",
                    self.name
                ));
            }
        };
        let items: Vec<Bound<'_, PyAny>> = match returned.try_iter() {
            Ok(iter) => match iter.collect::<PyResult<_>>() {
                Ok(items) => items,
                Err(e) => return all(format!("iterating the returned actions raised {e}")),
            },
            Err(_) => {
                return all(format!(
                    "python policy `{}` must return a list of actions, one per observation",
                    self.name
                ));
            }
        };
        if items.len() != inputs.len() {
            return all(format!(
                "python policy `{}` returned {} actions for {} observations",
                self.name,
                items.len(),
                inputs.len()
            ));
        }
        items
            .iter()
            .zip(inputs)
            .map(|(item, input)| self.read_item(item, input.tools))
            .collect()
    }
}

impl Policy for PyCallablePolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn act(&self, input: &PolicyInput<'_>) -> Result<Action> {
        policy::decide(self, input).map(|d| d.action)
    }

    fn act_batch(&self, inputs: &[PolicyInput<'_>]) -> Vec<Result<Decision>> {
        let started = Instant::now();
        // The GIL is held for this call only.
        let mut decisions = Python::attach(|py| self.call(py, inputs));
        let latency_s = started.elapsed().as_secs_f64();
        for decision in decisions.iter_mut().flatten() {
            decision.latency_s = latency_s;
        }
        decisions
    }
}

fn spec_error(message: String) -> PyErr {
    crate::error::to_pyerr(Error::InvalidArgument(message))
}

/// A policy from what Python passed: a policy name, or an object whose `_spec()` returns
/// `(kind, settings_json, callable_or_None)` (the classes of `sandgym.policies`).
pub fn policy_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Policy>> {
    if let Ok(name) = obj.extract::<String>() {
        return policy::build(&PolicySpec::named(&name)).py_err();
    }
    if !obj.hasattr("_spec")? {
        return Err(spec_error(
            "a policy is a name (\"expert\", \"random\"), a sandgym.policies object, or a callable"
                .into(),
        ));
    }
    let (kind, settings, callable): (String, String, Option<Py<PyAny>>) =
        obj.call_method0("_spec")?.extract()?;
    let settings: Value = serde_json::from_str(&settings)
        .map_err(|e| spec_error(format!("policy settings are not JSON: {e}")))?;
    let get_str = |key: &str| settings.get(key).and_then(Value::as_str);
    match kind.as_str() {
        "python" => {
            let callable =
                callable.ok_or_else(|| spec_error("python policy without a callable".into()))?;
            let parser: Format = get_str("parser")
                .unwrap_or("auto")
                .parse()
                .map_err(spec_error)?;
            let batch_size = settings
                .get("batch_size")
                .and_then(Value::as_u64)
                .unwrap_or(8)
                .max(1) as usize;
            let name = get_str("name").unwrap_or("python").to_string();
            let with_tools = settings
                .get("with_tools")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let inner = PyCallablePolicy {
                callable,
                name: format!("python:{name}"),
                parser,
                with_tools,
            };
            Ok(Arc::new(Batcher::new(inner, batch_size)))
        }
        "openai" => {
            let config = OpenAiConfig::from_json(&settings).py_err()?;
            policy::build(&PolicySpec {
                name: "openai".into(),
                openai: config,
                replay_from: None,
            })
            .py_err()
        }
        "replay" => {
            let path =
                get_str("path").ok_or_else(|| spec_error("replay policy without a path".into()))?;
            policy::build(&PolicySpec {
                name: "replay".into(),
                replay_from: Some(path.into()),
                ..PolicySpec::default()
            })
            .py_err()
        }
        other => policy::build(&PolicySpec::named(other)).py_err(),
    }
}

/// A Python function playing the simulated user in `SandgymEnv`: called with the user's view (its
/// chat messages, as in `info["user_turn"]["messages"]`), it returns the reply text. What it raises
/// (or a reply that is not a str, a `TypeError`) is kept and raised again by the caller as is, not as
/// a `PolicyError`: the function is the caller's own code.
pub struct PyUserFunction {
    callable: Py<PyAny>,
    raised: std::sync::Mutex<Option<PyErr>>,
}

impl PyUserFunction {
    pub fn new(callable: Py<PyAny>) -> Self {
        PyUserFunction {
            callable,
            raised: std::sync::Mutex::new(None),
        }
    }

    /// What the function raised during the last `act`, if anything.
    pub fn take_raised(&self) -> Option<PyErr> {
        self.raised.lock().expect("raised").take()
    }

    fn call(&self, py: Python<'_>, input: &PolicyInput<'_>) -> PyResult<String> {
        let view = crate::convert::serialize_to_py(py, &input.messages)?;
        let reply = self.callable.bind(py).call1((view,))?;
        match reply.cast::<PyString>() {
            Ok(text) => Ok(text.to_str()?.to_string()),
            Err(_) => {
                let type_name = reply
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into());
                Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "user_policy must return the reply text, got {type_name}"
                )))
            }
        }
    }
}

impl Policy for PyUserFunction {
    fn name(&self) -> &str {
        "python:user"
    }

    fn act(&self, input: &PolicyInput<'_>) -> Result<Action> {
        Python::attach(|py| self.call(py, input))
            .map(|content| Action {
                content,
                ..Action::default()
            })
            .map_err(|err| {
                let message = err.to_string();
                *self.raised.lock().expect("raised") = Some(err);
                Error::Policy(format!("user_policy raised {message}"))
            })
    }
}
