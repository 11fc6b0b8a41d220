//! `early` for Python, mirroring `sandgym_core::early`: branching runs on Rust threads with the GIL
//! released and writes its files; the reflection SFT builder takes reflections from Python.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sandgym_core::early::branch::{self, BranchOptions, Method, Verify};
use sandgym_core::early::reflection::{self, FilledReflection, Filters};
use sandgym_core::early::samplers::{self, SamplerSpec};
use sandgym_core::early::{self as core_early, DatasetOptions};
use sandgym_core::{Error, collect, registry, store};
use serde_json::Value;

use crate::env::env_options;
use crate::error::IntoPy;

fn paths(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

/// Branches expert states with alternative actions and writes the early-experience files to `out_dir`.
///
/// Args:
///     out_dir: output directory (must not hold earlier early-experience output).
///     env: env id or `.wasm` path; with `trajectories`, keeps only that env's rows.
///     trajectories: sandgym Parquet (file or directory) of expert trajectories to replay and branch;
///         None plays the env's own expert.
///     episodes, seed, tasks: the expert episodes to play without `trajectories` (tasks as JSON texts).
///     sampler, k, exclude_expert_tool, policy, temperatures: the alternative sampler.
///     method: `"fork"` or `"replay"` (from reset; the baseline). verify: `"state"`, `"full"` or `"expert"`.
///     reflect_k: alternatives per reflection prompt. iwm_expert: include the expert transition in IWM.
///
/// Returns:
///     A dict of run figures and the files written.
#[pyfunction]
#[pyo3(signature = (out_dir, env=None, trajectories=None, episodes=10, seed=0, tasks=None, sampler="uniform", k=None, exclude_expert_tool=false, policy="random", temperatures=vec![1.0], method="fork", verify="state", reflect_k=3, iwm_expert=true, max_steps=64, config=None, fuel=None, memory_mb=None, deadline_s=None, threads=None, run_id=None))]
#[allow(clippy::too_many_arguments)]
pub fn early_experience<'py>(
    py: Python<'py>,
    out_dir: PathBuf,
    env: Option<String>,
    trajectories: Option<PathBuf>,
    episodes: u64,
    seed: u64,
    tasks: Option<Vec<String>>,
    sampler: &str,
    k: Option<usize>,
    exclude_expert_tool: bool,
    policy: &str,
    temperatures: Vec<f64>,
    method: &str,
    verify: &str,
    reflect_k: usize,
    iwm_expert: bool,
    max_steps: u32,
    config: Option<&str>,
    fuel: Option<u64>,
    memory_mb: Option<usize>,
    deadline_s: Option<f64>,
    threads: Option<usize>,
    run_id: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let method: Method = method.parse().py_err()?;
    let verify: Verify = verify.parse().py_err()?;
    let sampler = samplers::by_name(&SamplerSpec {
        name: sampler.to_string(),
        k,
        exclude_expert_tool,
        policy: policy.to_string(),
        policy_spec: None,
        temperatures,
    })
    .py_err()?;
    let mut options = BranchOptions {
        method,
        verify,
        max_steps,
        env_options: env_options(config, fuel, memory_mb, deadline_s)?,
        ..BranchOptions::default()
    };
    if let Some(run_id) = run_id {
        options.run_id = run_id;
    }
    let datasets = DatasetOptions {
        reflect_k,
        iwm_expert,
    };
    let work = || -> Result<_, Error> {
        let (inputs, skipped) = match &trajectories {
            Some(path) => {
                let mut rows = store::read_dir_or_file(path)?;
                if let Some(env) = &env {
                    let id = registry::canonical_id(env)?;
                    rows.retain(|r| r.env_id == id);
                }
                branch::inputs_from_trajectories(&rows)?
            }
            None => {
                let env = env.as_deref().ok_or_else(|| {
                    Error::InvalidArgument("give `env` (and optionally `trajectories`)".into())
                })?;
                let tasks: Option<Vec<Value>> = tasks
                    .as_ref()
                    .map(|tasks| {
                        tasks
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                serde_json::from_str(t).map_err(|e| {
                                    Error::InvalidArgument(format!(
                                        "task {i} is not valid JSON: {e}"
                                    ))
                                })
                            })
                            .collect::<Result<_, _>>()
                    })
                    .transpose()?;
                let plan = collect::plan(
                    &[registry::canonical_id(env)?],
                    episodes,
                    seed,
                    tasks.as_deref(),
                );
                (branch::inputs_from_plan(&plan), 0)
            }
        };
        if inputs.is_empty() {
            return Err(Error::InvalidArgument(
                "no episode to branch (no trajectory with a complete step)".into(),
            ));
        }
        let summary =
            core_early::run_to_dir(&inputs, sampler.as_ref(), &options, &datasets, &out_dir)?;
        Ok((summary, skipped))
    };
    let (summary, skipped) = py
        .detach(|| match threads {
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| Error::InvalidArgument(format!("threads: {e}")))?
                .install(work),
            None => work(),
        })
        .py_err()?;
    let b = &summary.branching;
    let dict = PyDict::new(py);
    dict.set_item("run_id", &options.run_id)?;
    dict.set_item("sampler", sampler.name())?;
    dict.set_item("episodes", b.episodes)?;
    dict.set_item("skipped_episodes", skipped)?;
    dict.set_item("states", b.states)?;
    dict.set_item("branches", b.branches)?;
    dict.set_item("alternatives", b.alternatives)?;
    dict.set_item("short_states", b.short_states)?;
    dict.set_item("branch_errors", b.branch_errors)?;
    dict.set_item("observation_errors", b.observation_errors)?;
    dict.set_item("env_steps", b.env_steps)?;
    dict.set_item("wall_time_s", b.wall_time_s)?;
    dict.set_item("branches_per_second", b.branches_per_second())?;
    dict.set_item("expert_rows", summary.expert_rows)?;
    dict.set_item("iwm_rows", summary.iwm_rows)?;
    dict.set_item("prompt_rows", summary.prompt_rows)?;
    dict.set_item("files", paths(&summary.files))?;
    Ok(dict)
}

/// Reads filled reflections from JSONL (`{"id", "reflection"}` per line) or Parquet (`id` and
/// `reflection` string columns) as `(prompt id, reflection)` pairs.
#[pyfunction]
pub fn read_reflections(py: Python<'_>, path: PathBuf) -> PyResult<Vec<(String, String)>> {
    let reflections = py.detach(|| reflection::read_reflections(&path)).py_err()?;
    Ok(reflections
        .into_iter()
        .map(|r| (r.id, r.reflection))
        .collect())
}

/// Builds reflection SFT rows from a prompts file and `(prompt id, reflection)` pairs.
///
/// Returns:
///     A dict with `kept`, `dropped`, `missing` and the files written.
#[pyfunction]
#[pyo3(signature = (prompts, reflections, out_dir, label_leak=false, outcome_leak=false, duplicated=false, concluded_action=false))]
#[allow(clippy::too_many_arguments)]
pub fn build_reflection_sft<'py>(
    py: Python<'py>,
    prompts: PathBuf,
    reflections: Vec<(String, String)>,
    out_dir: PathBuf,
    label_leak: bool,
    outcome_leak: bool,
    duplicated: bool,
    concluded_action: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let filters = Filters {
        label_leak,
        outcome_leak,
        duplicated,
        concluded_action,
    };
    let reflections: Vec<FilledReflection> = reflections
        .into_iter()
        .map(|(id, reflection)| FilledReflection { id, reflection })
        .collect();
    let summary = py
        .detach(|| {
            let prompts = reflection::read_prompts(&prompts)?;
            core_early::build_reflection_sft(&prompts, &reflections, &filters, &out_dir)
        })
        .py_err()?;
    let dict = PyDict::new(py);
    dict.set_item("kept", summary.kept)?;
    dict.set_item("dropped", summary.dropped)?;
    dict.set_item("missing", summary.missing)?;
    dict.set_item("files", paths(&summary.files))?;
    Ok(dict)
}
