//! `Env` and `Snapshot` for Python, mirroring `sandgym_core::env` (the batched `VecEnv` is in
//! `vec.rs`). Arguments are converted first, then the core runs with the GIL released; results come
//! back as plain dicts.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use sandgym_core::collect::{self, user};
use sandgym_core::parse::{Format, action_from_json, parse_action, parse_completion};
use sandgym_core::policy::Policy;
use sandgym_core::{Action, EnvOptions, Error, ResetOutput, StepOutput, UserTurn, registry};
use serde_json::Value;

use crate::convert::{from_py, parse_json_arg, serialize_to_py};
use crate::error::{IntoPy, to_pyerr};
use crate::policy::PyUserFunction;

/// Builds env options from the keyword arguments every constructor shares.
pub fn env_options(
    config: Option<&str>,
    fuel: Option<u64>,
    memory_mb: Option<usize>,
    deadline_s: Option<f64>,
) -> PyResult<EnvOptions> {
    let limits = collect::config::limits(fuel, memory_mb, deadline_s).py_err()?;
    Ok(EnvOptions {
        config: sandgym_core::files::expand_config(parse_json_arg(config, "config")?).py_err()?,
        limits,
    })
}

/// Decodes an action: JSON text or a dict in the OpenAI shape (`content`, `tool_calls`).
pub fn action_from_py(action: &Bound<'_, PyAny>) -> PyResult<Action> {
    let value = match action.cast::<pyo3::types::PyString>() {
        Ok(text) => serde_json::from_str(text.to_str()?).map_err(|e| {
            to_pyerr(Error::InvalidArgument(format!(
                "action is not valid JSON: {e}"
            )))
        })?,
        Err(_) => from_py(action)?,
    };
    action_from_json(&value).map_err(|e| to_pyerr(Error::InvalidArgument(e)))
}

pub fn reset_to_py<'py>(py: Python<'py>, out: &ResetOutput) -> PyResult<Bound<'py, PyAny>> {
    serialize_to_py(py, out)
}

pub fn step_to_py<'py>(
    py: Python<'py>,
    out: &StepOutput,
    action: Option<&Action>,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = serialize_to_py(py, out)?;
    if let Some(action) = action {
        dict.cast::<PyDict>()?
            .set_item("action", serialize_to_py(py, action)?)?;
    }
    Ok(dict)
}

/// A copy of an env's state, taken with `Env.snapshot()` and restored with `Env.restore()`.
#[pyclass(module = "sandgym._core", frozen)]
pub struct Snapshot {
    pub(crate) inner: sandgym_core::EnvSnapshot,
}

#[pymethods]
impl Snapshot {
    /// Bytes of guest memory held by the snapshot.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }
}

/// One sandboxed environment (low level; `sandgym.make` wraps it in a Gymnasium env).
#[pyclass(module = "sandgym._core", name = "Env")]
pub struct PyEnv {
    inner: sandgym_core::Env,
}

#[pymethods]
impl PyEnv {
    /// Makes an env from a registered id (`countdown-v0`) or a path to a `.wasm` file.
    ///
    /// Args:
    ///     env_id: registered id or path.
    ///     config: JSON object text with the env's configuration knobs.
    ///     fuel: fuel units per guest call.
    ///     memory_mb: guest memory cap in MiB.
    ///     deadline_s: wall-clock limit per guest call in seconds.
    #[new]
    #[pyo3(signature = (env_id, config=None, fuel=None, memory_mb=None, deadline_s=None))]
    fn new(
        py: Python<'_>,
        env_id: &str,
        config: Option<&str>,
        fuel: Option<u64>,
        memory_mb: Option<usize>,
        deadline_s: Option<f64>,
    ) -> PyResult<Self> {
        let options = env_options(config, fuel, memory_mb, deadline_s)?;
        let inner = py.detach(|| registry::make(env_id, options)).py_err()?;
        Ok(PyEnv { inner })
    }

    /// The env id (canonical `name-vN`, or the path it was loaded from).
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// The env's static description as a dict.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_py(py, self.inner.info())
    }

    /// Starts an episode; `task` (JSON text) plays a given task instead of generating one from `seed`.
    #[pyo3(signature = (seed, task=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: u64,
        task: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let task = match parse_json_arg(task, "task")? {
            Value::Null => None,
            task => Some(task),
        };
        let out = py.detach(|| self.inner.reset(seed, task)).py_err()?;
        reset_to_py(py, &out)
    }

    /// Applies an action in the OpenAI shape: a dict, or its JSON text.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action = action_from_py(action)?;
        let out = py.detach(|| self.inner.step(&action)).py_err()?;
        step_to_py(py, &out, None)
    }

    /// Parses a model completion (Hermes `<tool_call>` or OpenAI JSON) and applies it.
    /// The result carries the parsed `action`.
    fn step_text<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
        let action = parse_action(text);
        let out = py.detach(|| self.inner.step(&action)).py_err()?;
        step_to_py(py, &out, Some(&action))
    }

    /// Sends the simulated user's reply (plain text) when the last output carried a `user_turn`.
    /// Refused on the agent's turn.
    fn user_step<'py>(&mut self, py: Python<'py>, content: &str) -> PyResult<Bound<'py, PyAny>> {
        let out = py.detach(|| self.inner.user_step(content)).py_err()?;
        step_to_py(py, &out, None)
    }

    /// Lets `policy` answer the pending simulated-user turn `turn` (the last output's `user_turn`,
    /// `{"messages": [...]}`) and sends its reply, as the collector does
    /// (`sandgym_core::collect::user`). `policy` is a policy (`"expert"`: the env's scripted user) or a
    /// function from the user's view to its reply text; the env is free while it runs, so the function
    /// may use it. `seed` (the episode's) and `index` (the user turn's number) seed a sampling policy.
    /// What the function raises is raised as is.
    fn play_user<'py>(
        slf: &Bound<'py, Self>,
        policy: &Bound<'py, PyAny>,
        turn: &Bound<'py, PyAny>,
        seed: u64,
        index: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let turn: UserTurn = serde_json::from_value(from_py(turn)?).map_err(|e| {
            to_pyerr(Error::InvalidArgument(format!(
                "the user turn is not {{\"messages\": [...]}}: {e}"
            )))
        })?;
        let function = (!policy.is_instance_of::<PyString>() && policy.is_callable())
            .then(|| Arc::new(PyUserFunction::new(policy.clone().unbind())));
        let policy: Arc<dyn Policy> = match &function {
            Some(function) => function.clone(),
            None => crate::policy::policy_from_py(policy)?,
        };
        let hints = {
            let mut this = slf.borrow_mut();
            let env = &mut this.inner;
            py.detach(|| user::prepare(env, policy.as_ref())).py_err()?
        };
        let content = match user::reply(policy.as_ref(), &turn, &hints, seed, index) {
            Ok(content) => content,
            Err(err) => {
                return Err(function
                    .and_then(|f| f.take_raised())
                    .unwrap_or_else(|| to_pyerr(err)));
            }
        };
        let out = {
            let mut this = slf.borrow_mut();
            let env = &mut this.inner;
            py.detach(|| env.user_step(&content)).py_err()?
        };
        step_to_py(py, &out, None)
    }

    /// Whether the env waits for the simulated user's reply (`user_step`) rather than an action.
    #[getter]
    fn awaits_user(&self) -> bool {
        self.inner.awaits_user()
    }

    /// The expert's next action, or None.
    fn expert<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let action = self.inner.expert().py_err()?;
        serialize_to_py(py, &action)
    }

    /// The admissible actions in the current state.
    fn actions<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let actions = self.inner.actions().py_err()?;
        serialize_to_py(py, &actions)
    }

    /// Copies the env's state.
    fn snapshot(&mut self) -> PyResult<Snapshot> {
        Ok(Snapshot {
            inner: self.inner.snapshot().py_err()?,
        })
    }

    /// Rewinds to a snapshot of this env or of a fork of it.
    fn restore(&mut self, snapshot: &Snapshot) -> PyResult<()> {
        self.inner.restore(&snapshot.inner).py_err()
    }

    /// An independent copy in the same state.
    fn fork(&mut self) -> PyResult<PyEnv> {
        Ok(PyEnv {
            inner: self.inner.fork().py_err()?,
        })
    }

    /// Current guest memory in bytes.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }

    /// Whether an episode is in progress.
    #[getter]
    fn running(&self) -> bool {
        self.inner.is_running()
    }
}

/// Parses a model completion into an action dict (`content`, `tool_calls`, `format_error`) with the
/// named parser (`auto` detects); `tools` (the env's schemas) let answer tags and python blocks become
/// calls of the env's submit / python tool.
#[pyfunction]
#[pyo3(signature = (text, parser = "auto", tools = None))]
pub fn parse_action_text<'py>(
    py: Python<'py>,
    text: &str,
    parser: &str,
    tools: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let format: Format = parser
        .parse()
        .map_err(|message: String| Error::InvalidArgument(message))
        .py_err()?;
    let tools = match tools.map(from_py).transpose()? {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tools)) => tools,
        Some(_) => {
            return Err(Error::InvalidArgument(
                "`tools` must be a list of tool schemas".into(),
            ))
            .py_err();
        }
    };
    serialize_to_py(py, &parse_completion(text, format, &tools).action)
}

/// The bundled env ids (`countdown-v0`, ...), without loading any env.
#[pyfunction]
pub fn bundled_env_ids() -> Vec<String> {
    registry::bundled_ids()
}

/// Every bundled env as `{"id": ..., "info": {...}}`.
#[pyfunction]
pub fn list_envs<'py>(py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let specs = py.detach(registry::list).py_err()?;
    specs
        .iter()
        .map(|spec| {
            let dict = PyDict::new(py);
            dict.set_item("id", &spec.id)?;
            dict.set_item("info", serialize_to_py(py, &spec.info)?)?;
            Ok(dict.into_any())
        })
        .collect()
}
