//! `early` for Python: the core's one early-experience run (`sandgym_core::early::run`) on a config
//! `sandgym.early_experience` builds, with the GIL released; the reflection SFT builder takes reflections from Python.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sandgym_core::early::reflection::{self, FilledReflection, Filters};
use sandgym_core::early::{self as core_early, EarlyConfig};

use crate::error::IntoPy;

fn paths(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

/// Branches expert states with alternative actions and writes the early-experience files: runs the
/// `EarlyConfig` (JSON text built by `sandgym.early_experience`; see `sandgym_core::early::EarlyConfig`
/// for the fields) with the GIL released.
///
/// Returns:
///     A dict of run figures and the files written.
#[pyfunction]
pub fn early_experience<'py>(py: Python<'py>, config: &str) -> PyResult<Bound<'py, PyDict>> {
    let config = EarlyConfig::from_json(config).py_err()?;
    let report = py.detach(|| core_early::run(&config, None)).py_err()?;
    let summary = &report.summary;
    let b = &summary.branching;
    let dict = PyDict::new(py);
    dict.set_item("run_id", &report.run_id)?;
    dict.set_item("sampler", &report.sampler)?;
    dict.set_item("episodes", b.episodes)?;
    dict.set_item("skipped_episodes", report.skipped)?;
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
