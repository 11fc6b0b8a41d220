//! `VecEnv` for Python, mirroring `sandgym_core::vec`: one call per batch, run with the GIL released,
//! one dict per slot (a failed slot's carries `error_kind` / `error_message`). `sandgym.VecEnv`, the
//! Gymnasium vector env, is built on `apply`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use sandgym_core::vec::{SlotOp, SlotResult};
use sandgym_core::{Action, Error, StepOutput};
use serde_json::Value;

use crate::convert::{parse_json_arg, serialize_to_py};
use crate::env::{action_from_py, env_options, reset_to_py, step_to_py};
use crate::error::IntoPy;

/// A task argument: JSON text, or None (and JSON `null`) for a generated task.
fn task_arg(text: Option<&str>) -> PyResult<Option<Value>> {
    parse_json_arg(text, "task").map(|v| (!v.is_null()).then_some(v))
}

/// Converts one slot's result: the dict, or a dict with `error_kind` / `error_message` for a failure.
fn slot_to_py<'py, T>(
    py: Python<'py>,
    result: &Result<T, Error>,
    convert: impl Fn(Python<'py>, &T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match result {
        Ok(value) => convert(py, value),
        Err(err) => {
            let dict = PyDict::new(py);
            dict.set_item("error_kind", err.kind())?;
            dict.set_item("error_message", err.to_string())?;
            Ok(dict.into_any())
        }
    }
}

fn steps_to_py<'py>(
    py: Python<'py>,
    results: &[Result<StepOutput, Error>],
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    results
        .iter()
        .map(|r| slot_to_py(py, r, |py, o| step_to_py(py, o, None)))
        .collect()
}

/// A slot's reset in `apply`: its seed and its task as JSON text (None: the env generates one).
type SlotReset = (u64, Option<String>);

/// A batch of `n` envs of one id, stepped in parallel on Rust threads with the GIL released.
///
/// Every method returns one dict per env; a failed env's dict has `error_kind` and `error_message`
/// (the other envs are unaffected) and needs a reset.
#[pyclass(module = "sandgym._core", name = "VecEnv")]
pub struct PyVecEnv {
    inner: sandgym_core::VecEnv,
}

#[pymethods]
impl PyVecEnv {
    #[new]
    #[pyo3(signature = (env_id, n, config=None, fuel=None, memory_mb=None, deadline_s=None))]
    fn new(
        py: Python<'_>,
        env_id: &str,
        n: usize,
        config: Option<&str>,
        fuel: Option<u64>,
        memory_mb: Option<usize>,
        deadline_s: Option<f64>,
    ) -> PyResult<Self> {
        let options = env_options(config, fuel, memory_mb, deadline_s)?;
        let inner = py
            .detach(|| sandgym_core::VecEnv::new(env_id, n, options))
            .py_err()?;
        Ok(PyVecEnv { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The env id of every slot.
    #[getter]
    fn id(&self) -> String {
        self.inner.envs()[0].id().to_string()
    }

    /// The env's static description as a dict.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serialize_to_py(py, self.inner.envs()[0].info())
    }

    /// Resets slot `i` with `seeds[i]` and, when given, the task `tasks[i]` (JSON text or None).
    #[pyo3(signature = (seeds, tasks=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seeds: Vec<u64>,
        tasks: Option<Vec<Option<String>>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let tasks: Option<Vec<Option<Value>>> = tasks
            .map(|tasks| {
                tasks
                    .iter()
                    .map(|t| task_arg(t.as_deref()))
                    .collect::<PyResult<_>>()
            })
            .transpose()?;
        let results = py
            .detach(|| self.inner.reset(&seeds, tasks.as_deref()))
            .py_err()?;
        results
            .iter()
            .map(|r| slot_to_py(py, r, reset_to_py))
            .collect()
    }

    /// Steps slot `i` with `actions[i]`, each a dict in the OpenAI shape or its JSON text.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let actions: Vec<Action> = actions
            .iter()
            .map(action_from_py)
            .collect::<PyResult<_>>()?;
        let results = py.detach(|| self.inner.step(&actions)).py_err()?;
        steps_to_py(py, &results)
    }

    /// Parses each model completion and steps its env with it.
    fn step_text<'py>(
        &mut self,
        py: Python<'py>,
        texts: Vec<String>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let results = py.detach(|| self.inner.step_text(&texts)).py_err()?;
        steps_to_py(py, &results)
    }

    /// Runs one batch, all slots in one parallel pass: slot `i` is reset with `resets[i]` (a
    /// `(seed, task JSON or None)` pair) when that is given, else stepped with `actions[i]` (model
    /// text, parsed; or an action dict), else left alone. Returns per slot its output dict (`None`
    /// for a slot left alone). With `with_actions`, a text step's dict carries the parsed `action`.
    #[pyo3(signature = (actions, resets=None, with_actions=false))]
    fn apply<'py>(
        &mut self,
        py: Python<'py>,
        actions: Vec<Option<Bound<'py, PyAny>>>,
        resets: Option<Vec<Option<SlotReset>>>,
        with_actions: bool,
    ) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
        let resets = resets.unwrap_or_else(|| vec![None; actions.len()]);
        if resets.len() != actions.len() {
            return Err(Error::InvalidArgument(format!(
                "resets: got {} entries for {} actions",
                resets.len(),
                actions.len()
            )))
            .py_err();
        }
        let ops = actions
            .iter()
            .zip(&resets)
            .map(|(action, reset)| {
                Ok(match (reset, action) {
                    (Some((seed, task)), _) => SlotOp::Reset {
                        seed: *seed,
                        task: task_arg(task.as_deref())?,
                    },
                    (None, Some(action)) => match action.cast::<PyString>() {
                        Ok(text) => SlotOp::StepText(text.to_str()?.to_owned()),
                        Err(_) => SlotOp::Step(action_from_py(action)?),
                    },
                    (None, None) => SlotOp::Skip,
                })
            })
            .collect::<PyResult<Vec<SlotOp>>>()?;
        let results = py.detach(|| self.inner.apply(ops)).py_err()?;
        results
            .iter()
            .map(|result| match result {
                SlotResult::Skipped => Ok(None),
                SlotResult::Reset(reset) => slot_to_py(py, reset, reset_to_py).map(Some),
                SlotResult::Step { action, output } => {
                    let action = action.as_ref().filter(|_| with_actions);
                    slot_to_py(py, output, |py, out| step_to_py(py, out, action)).map(Some)
                }
            })
            .collect()
    }

    /// Steps every slot with the same action `rounds` times, resetting finished slots with fresh seeds,
    /// entirely in Rust. Returns the number of steps taken. For benchmarks and smoke tests.
    fn run_steps(
        &mut self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        rounds: usize,
    ) -> PyResult<u64> {
        let action = action_from_py(action)?;
        let n = self.inner.len();
        let actions = vec![action; n];
        py.detach(|| {
            let mut steps = 0u64;
            let mut next_seed = 1u64 << 40;
            for _ in 0..rounds {
                for (slot, result) in self.inner.step(&actions)?.into_iter().enumerate() {
                    steps += 1;
                    let done = match result {
                        Ok(out) => out.terminated || out.truncated,
                        Err(_) => true,
                    };
                    if done {
                        next_seed += 1;
                        self.inner.envs_mut()[slot].reset(next_seed, None)?;
                    }
                }
            }
            Ok::<u64, Error>(steps)
        })
        .py_err()
    }
}
