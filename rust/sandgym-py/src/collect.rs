//! `collect` for Python: the core's one run function (`sandgym_core::collect::run`) on a config that
//! `sandgym.collect` builds, with the GIL released, into Parquet files or an in-memory Arrow table.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sandgym_core::collect::{self, CollectConfig};
use sandgym_core::store;
use sandgym_core::{Error, files};

use crate::arrow::ArrowTable;
use crate::error::IntoPy;

/// Runs the collection a `CollectConfig` describes (JSON text built by `sandgym.collect` from its keyword
/// arguments; see `sandgym_core::collect::CollectConfig` for the fields) with the GIL released.
///
/// Args:
///     config: the run's config as JSON; unknown fields are an error.
///     policy: `"expert"` (the default), `"random"`, or a `sandgym.policies` object (`OpenAIPolicy`,
///         `ReplayPolicy`, `CallablePolicy`).
///     user_policy: a policy as for `policy` (usually `"expert"` or `"random"`): plays the simulated
///         user when an env asks for user turns (tau envs with `{"mode": "user"}`).
///
/// Returns:
///     `(summary, table)`: a dict of run figures, and an `ArrowTable` (None when `out_dir` is given).
#[pyfunction]
#[pyo3(signature = (config, policy=None, user_policy=None))]
pub fn collect_episodes<'py>(
    py: Python<'py>,
    config: &str,
    policy: Option<Bound<'py, PyAny>>,
    user_policy: Option<Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyDict>, Option<ArrowTable>)> {
    let config = CollectConfig::from_json(config).py_err()?;
    let policy = match &policy {
        Some(policy) => crate::policy::policy_from_py(policy)?,
        None => sandgym_core::policy::build(&sandgym_core::policy::PolicySpec::named("expert"))
            .py_err()?,
    };
    let user_policy = user_policy
        .as_ref()
        .map(crate::policy::policy_from_py)
        .transpose()?;
    let (report, table) = py
        .detach(|| {
            let report = collect::run(&config, policy.as_ref(), user_policy, &|_| {})?;
            let table = match &report.rows {
                Some(rows) => Some(ArrowTable::new(
                    store::schema(),
                    vec![store::to_record_batch(rows).map_err(Error::storage)?],
                )),
                None => None,
            };
            Ok::<_, Error>((report, table))
        })
        .py_err()?;
    let summary = &report.summary;
    let dict = PyDict::new(py);
    dict.set_item("run_id", &report.run_id)?;
    dict.set_item("episodes", summary.episodes)?;
    dict.set_item("successes", summary.successes)?;
    dict.set_item("success_rate", summary.success_rate())?;
    dict.set_item("errors", summary.errors)?;
    dict.set_item("steps", summary.steps)?;
    dict.set_item("total_reward", summary.total_reward)?;
    dict.set_item("wall_time_s", summary.wall_time_s)?;
    dict.set_item("steps_per_second", summary.steps_per_second())?;
    if let Some(written) = &report.written {
        let files: Vec<String> = written
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        dict.set_item("files", files)?;
        dict.set_item("rows", written.rows)?;
        dict.set_item("bytes", written.bytes)?;
    }
    Ok((dict, table))
}

/// Reads tasks from a JSONL file or a JSON array file, optionally keeping one split of a split file.
#[pyfunction]
#[pyo3(signature = (path, split=None, split_file=None))]
pub fn read_tasks<'py>(
    py: Python<'py>,
    path: PathBuf,
    split: Option<&str>,
    split_file: Option<PathBuf>,
) -> PyResult<Vec<Bound<'py, pyo3::PyAny>>> {
    let tasks = files::read_tasks(&path).py_err()?;
    let tasks = match (split, split_file) {
        (Some(split), Some(split_file)) => {
            files::filter_split(tasks, &split_file, split).py_err()?
        }
        (None, None) => tasks,
        _ => {
            return Err(crate::error::to_pyerr(Error::InvalidArgument(
                "`split` and `split_file` go together".into(),
            )));
        }
    };
    tasks
        .iter()
        .map(|task| crate::convert::to_py(py, task))
        .collect()
}

/// Reads sandgym Parquet (a file or a directory of parts) back into an Arrow table, checking the schema.
#[pyfunction]
pub fn read_trajectories(py: Python<'_>, path: PathBuf) -> PyResult<ArrowTable> {
    let batch = py
        .detach(|| {
            let rows = store::read_dir_or_file(&path).map_err(Error::storage)?;
            store::to_record_batch(&rows).map_err(Error::storage)
        })
        .py_err()?;
    Ok(ArrowTable::new(store::schema(), vec![batch]))
}
