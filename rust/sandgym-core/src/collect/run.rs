//! One collection run from a [`CollectConfig`], end to end: resolve env ids, expand the env config,
//! read the tasks, plan, drop prompts by pass rate, skip what a killed run already wrote, play the
//! episodes in a pool of `threads`, write Parquet (or keep the rows in memory, in plan order) and
//! update the pass-rate history. The CLI's `sandgym collect` and Python's `sandgym.collect` are thin
//! wrappers around [`run`]: they build the config, pass the policies, and show the report.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::config::CollectConfig;
use super::plan::{self, EpisodeSpec, PlanFilter};
use super::{CollectOptions, CollectSummary, collect, collect_to_dir, new_run_id};
use crate::advantage::PassRateHistory;
use crate::env::EnvOptions;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::store::{self, WriteSummary, WriterOptions};
use crate::trajectory::Trajectory;
use crate::{files, registry};

/// What a run reports while it goes, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The pass-rate filter ran (only with `pass_rates`): planned episodes kept and dropped.
    Filtered(PlanFilter),
    /// Resume (only with `resume`) skipped this many planned episodes already stored in `out_dir`.
    Resumed(usize),
    /// Episodes start: this many will be played (each member of a group counts).
    Started(usize),
    /// This many episodes have finished.
    Finished(usize),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The run id every row carries.
    pub run_id: String,
    /// The canonical ids of the envs played, in plan order.
    pub env_ids: Vec<String>,
    pub summary: CollectSummary,
    /// The files written (with `out_dir`).
    pub written: Option<WriteSummary>,
    /// The rows, in plan order: env by env, episodes by index, group members by index (without
    /// `out_dir`).
    pub rows: Option<Vec<Trajectory>>,
    /// What the pass-rate filter kept and dropped (with `pass_rates`).
    pub filter: Option<PlanFilter>,
    /// Planned episodes skipped by resume because their rows were stored already.
    pub skipped: usize,
    /// Prompts in the saved pass-rate history (with `pass_rates`).
    pub pass_rate_prompts: Option<usize>,
}

/// Runs the collection `config` describes with `policy` (and `user_policy` for the simulated users of
/// envs that have them); `events` hears what happens as it happens. Episode failures are rows; an
/// error here is a run that could not start (bad config, unknown env) or could not write.
pub fn run(
    config: &CollectConfig,
    policy: &dyn Policy,
    user_policy: Option<Arc<dyn Policy>>,
    events: &(dyn Fn(RunEvent) + Sync),
) -> Result<RunReport> {
    crate::pool::install(config.threads, || {
        run_here(config, policy, user_policy, events)
    })
}

fn env_ids(config: &CollectConfig) -> Result<Vec<String>> {
    if config.envs.is_empty() {
        return Ok(registry::list()?.into_iter().map(|s| s.id).collect());
    }
    config
        .envs
        .iter()
        .map(|id| registry::canonical_id(id))
        .collect()
}

fn tasks(config: &CollectConfig) -> Result<Option<Vec<Value>>> {
    match (&config.tasks, &config.tasks_file) {
        (Some(_), Some(_)) => Err(Error::InvalidArgument(
            "give `tasks` or `tasks_file`, not both".into(),
        )),
        (Some(tasks), None) => {
            if config.split.is_some() || config.split_file.is_some() {
                return Err(Error::InvalidArgument(
                    "`split` selects tasks of `tasks_file`".into(),
                ));
            }
            Ok(Some(tasks.clone()))
        }
        (None, Some(path)) => {
            let all = files::read_tasks(path)?;
            match (&config.split, &config.split_file) {
                (Some(split), Some(split_file)) => {
                    files::filter_split(all, split_file, split).map(Some)
                }
                (None, None) => Ok(Some(all)),
                _ => Err(Error::InvalidArgument(
                    "`split` and `split_file` go together".into(),
                )),
            }
        }
        (None, None) if config.split.is_some() || config.split_file.is_some() => Err(
            Error::InvalidArgument("`split` selects tasks of `tasks_file`".into()),
        ),
        (None, None) => Ok(None),
    }
}

/// The settings every episode of the run shares.
fn options(config: &CollectConfig, user_policy: Option<Arc<dyn Policy>>) -> Result<CollectOptions> {
    Ok(CollectOptions {
        run_id: config.run_id.clone().unwrap_or_else(new_run_id),
        max_turns: config.max_turns,
        env_options: EnvOptions {
            config: files::expand_config(config.config.clone())?,
            limits: config.limits()?,
        },
        user_policy,
        group_size: config.group_size.max(1),
        advantage: config.advantage_options()?,
    })
}

fn run_here(
    config: &CollectConfig,
    policy: &dyn Policy,
    user_policy: Option<Arc<dyn Policy>>,
    events: &(dyn Fn(RunEvent) + Sync),
) -> Result<RunReport> {
    let env_ids = env_ids(config)?;
    let tasks = tasks(config)?;
    let options = options(config, user_policy)?;
    if config.resume && config.out_dir.is_none() {
        return Err(Error::InvalidArgument("`resume` needs `out_dir`".into()));
    }
    let mut history = config
        .pass_rates
        .as_deref()
        .map(PassRateHistory::load)
        .transpose()?;
    let mut plan: Vec<EpisodeSpec> =
        plan::plan(&env_ids, config.episodes, config.seed, tasks.as_deref());
    let mut filter = None;
    if let Some(history) = &history {
        let (kept, dropped) =
            plan::filter_plan(plan, history, config.drop_pass_rate, &options.env_options)?;
        events(RunEvent::Filtered(dropped.clone()));
        filter = Some(dropped);
        plan = kept;
    }
    let mut skipped = 0;
    if let (true, Some(dir)) = (config.resume, &config.out_dir) {
        let (rest, done) = plan::skip_done_groups(plan, dir, options.group_size)?;
        events(RunEvent::Resumed(done));
        skipped = done;
        plan = rest;
    }
    events(RunEvent::Started(plan.len() * options.group_size as usize));
    let progress = |done: usize| events(RunEvent::Finished(done));
    let (summary, written, rows) = match &config.out_dir {
        Some(dir) => {
            let (summary, written) = collect_to_dir(
                &plan,
                policy,
                &options,
                dir,
                WriterOptions::default(),
                &progress,
            )?;
            if let Some(history) = history.as_mut() {
                for file in &written.files {
                    history.record(&store::read_file(file).map_err(Error::storage)?);
                }
            }
            (summary, Some(written), None)
        }
        None => {
            let rows = Mutex::new(Vec::<Trajectory>::with_capacity(plan.len()));
            let sink = |t: Trajectory| -> Result<()> {
                rows.lock().expect("rows").push(t);
                Ok(())
            };
            let summary = collect(&plan, policy, &options, &sink, &progress)?;
            let mut rows = rows.into_inner().expect("rows");
            let env_rank = |id: &str| env_ids.iter().position(|e| e == id).unwrap_or(usize::MAX);
            rows.sort_by_key(|t| (env_rank(&t.env_id), t.episode_index, t.group_index));
            if let Some(history) = history.as_mut() {
                history.record(&rows);
            }
            (summary, None, Some(rows))
        }
    };
    let mut pass_rate_prompts = None;
    if let (Some(history), Some(path)) = (&history, config.pass_rates.as_deref()) {
        history.save(path)?;
        pass_rate_prompts = Some(history.prompts.len());
    }
    Ok(RunReport {
        run_id: options.run_id,
        env_ids,
        summary,
        written,
        rows,
        filter,
        skipped,
        pass_rate_prompts,
    })
}
