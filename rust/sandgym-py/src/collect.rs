//! `collect` for Python, mirroring `sandgym_core::collect`: episodes run on Rust threads with the GIL
//! released, into Parquet files or into an in-memory Arrow table.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::store::{self, WriterOptions};
use sandgym_core::{Error, Trajectory, files, registry};
use serde_json::Value;

use crate::arrow::ArrowTable;
use crate::env::env_options;
use crate::error::IntoPy;

/// Collects `episodes` episodes per env with a built-in policy.
///
/// Args:
///     envs: env ids or `.wasm` paths.
///     episodes: episodes per env; episode i uses seed `seed + i`.
///     policy: `"expert"` (the default), `"random"`, or a `sandgym.policies` object (`OpenAIPolicy`, `ReplayPolicy`,
///         `CallablePolicy`).
///     out_dir: write Parquet part files there; when None, return the rows as an Arrow table.
///     tasks: JSON texts of tasks to play in turn instead of generated ones.
///     threads: worker threads (default: one per core).
///     resume: skip episodes whose rows are already in `out_dir`.
///     user_policy: a policy as for `policy` (usually `"expert"` or `"random"`): plays the simulated user when an env asks for user
///         turns (tau envs with `{"mode": "user"}`).
///     group_size: rollouts per planned episode (a group per task, different sampling seeds).
///     advantage: estimator (`grpo`, `dr-grpo`, `batch`); default `grpo` with groups.
///     reward: reward preset the advantages use (`env`, `outcome`, `demystify-paper`, `demystify-code`).
///     overlong: overlong shaping `(max_len, buffer, penalty)` on response characters.
///     pass_rates: pass-rate history file: retired prompts are skipped, outcomes are added.
///     drop_pass_rate: pass rate at or above which a prompt is retired.
///
/// Returns:
///     `(summary, table)`: a dict of run figures, and an `ArrowTable` (None when `out_dir` is given).
#[pyfunction]
#[pyo3(signature = (envs, episodes, seed=0, policy=None, max_turns=64, out_dir=None, tasks=None, config=None, fuel=None, memory_mb=None, deadline_s=None, threads=None, run_id=None, resume=false, user_policy=None, group_size=1, advantage=None, reward="env", overlong=None, pass_rates=None, drop_pass_rate=0.9))]
#[allow(clippy::too_many_arguments)]
pub fn collect_episodes<'py>(
    py: Python<'py>,
    envs: Vec<String>,
    episodes: u64,
    seed: u64,
    policy: Option<Bound<'py, PyAny>>,
    max_turns: u32,
    out_dir: Option<PathBuf>,
    tasks: Option<Vec<String>>,
    config: Option<&str>,
    fuel: Option<u64>,
    memory_mb: Option<usize>,
    deadline_s: Option<f64>,
    threads: Option<usize>,
    run_id: Option<String>,
    resume: bool,
    user_policy: Option<Bound<'py, PyAny>>,
    group_size: u32,
    advantage: Option<&str>,
    reward: &str,
    overlong: Option<(u64, u64, f64)>,
    pass_rates: Option<PathBuf>,
    drop_pass_rate: f64,
) -> PyResult<(Bound<'py, PyDict>, Option<ArrowTable>)> {
    let policy = match &policy {
        Some(policy) => crate::policy::policy_from_py(policy)?,
        None => sandgym_core::policy::build(&sandgym_core::policy::PolicySpec::named("expert"))
            .py_err()?,
    };
    let user_policy = user_policy
        .as_ref()
        .map(crate::policy::policy_from_py)
        .transpose()?;
    let tasks: Option<Vec<Value>> = tasks
        .map(|tasks| {
            tasks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    serde_json::from_str(t).map_err(|e| {
                        Error::InvalidArgument(format!("task {i} is not valid JSON: {e}"))
                    })
                })
                .collect::<Result<_, _>>()
        })
        .transpose()
        .py_err()?;
    let mut options = CollectOptions {
        max_turns,
        env_options: env_options(config, fuel, memory_mb, deadline_s)?,
        user_policy,
        group_size: group_size.max(1),
        advantage: crate::export::advantage_of(
            advantage,
            reward,
            overlong,
            sandgym_core::advantage::GroupBy::GroupId,
            (group_size > 1).then_some(sandgym_core::advantage::Estimator::Grpo),
        )
        .py_err()?,
        ..CollectOptions::default()
    };
    let mut history = pass_rates
        .as_deref()
        .map(sandgym_core::advantage::PassRateHistory::load)
        .transpose()
        .py_err()?;
    if let Some(run_id) = run_id {
        options.run_id = run_id;
    }
    let mut work = || -> Result<_, Error> {
        let env_ids: Vec<String> = envs
            .iter()
            .map(|id| registry::canonical_id(id))
            .collect::<Result<_, _>>()?;
        let mut plan = collect::plan(&env_ids, episodes, seed, tasks.as_deref());
        if let Some(history) = history.as_ref() {
            plan = sandgym_core::groups::filter_plan(
                plan,
                history,
                drop_pass_rate,
                &options.env_options,
            )?
            .0;
        }
        match &out_dir {
            Some(dir) => {
                if resume {
                    plan = sandgym_core::groups::skip_done_groups(plan, dir, options.group_size)?.0;
                }
                let (summary, written) = collect::collect_to_dir(
                    &plan,
                    policy.as_ref(),
                    &options,
                    dir,
                    WriterOptions::default(),
                    &|_| {},
                )?;
                if let Some(history) = history.as_mut() {
                    for file in &written.files {
                        history.record(&store::read_file(file)?);
                    }
                }
                Ok((summary, Some(written), None))
            }
            None if resume => Err(Error::InvalidArgument("`resume` needs `out_dir`".into())),
            None => {
                let rows = Mutex::new(Vec::<Trajectory>::with_capacity(plan.len()));
                let sink = |t: Trajectory| -> Result<(), Error> {
                    rows.lock().expect("rows").push(t);
                    Ok(())
                };
                let summary = collect::collect(&plan, policy.as_ref(), &options, &sink, &|_| {})?;
                let mut rows = rows.into_inner().expect("rows");
                // Plan order: env by env, episodes in index order.
                let env_rank =
                    |id: &str| env_ids.iter().position(|e| e == id).unwrap_or(usize::MAX);
                rows.sort_by_key(|t| (env_rank(&t.env_id), t.episode_index, t.group_index));
                if let Some(history) = history.as_mut() {
                    history.record(&rows);
                }
                let batch = store::to_record_batch(&rows)?;
                Ok((
                    summary,
                    None,
                    Some(ArrowTable::new(store::schema(), vec![batch])),
                ))
            }
        }
    };
    let (summary, written, table) = py
        .detach(|| match threads {
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| Error::InvalidArgument(format!("threads: {e}")))?
                .install(work),
            None => work(),
        })
        .py_err()?;
    if let (Some(history), Some(path)) = (&history, pass_rates.as_deref()) {
        history.save(path).py_err()?;
    }
    let dict = PyDict::new(py);
    dict.set_item("run_id", &options.run_id)?;
    dict.set_item("episodes", summary.episodes)?;
    dict.set_item("successes", summary.successes)?;
    dict.set_item("success_rate", summary.success_rate())?;
    dict.set_item("errors", summary.errors)?;
    dict.set_item("steps", summary.steps)?;
    dict.set_item("total_reward", summary.total_reward)?;
    dict.set_item("wall_time_s", summary.wall_time_s)?;
    dict.set_item("steps_per_second", summary.steps_per_second())?;
    if let Some(written) = written {
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
            let rows = store::read_dir_or_file(&path)?;
            store::to_record_batch(&rows).map_err(Error::from)
        })
        .py_err()?;
    Ok(ArrowTable::new(store::schema(), vec![batch]))
}
