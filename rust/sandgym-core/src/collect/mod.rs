//! Runs episodes: asks the policy, steps the env, appends turns. The only module that sees both policy
//! and env. Episodes run in parallel on rayon; each finished `Trajectory` goes to a sink (usually the
//! background Parquet writer). A failing episode becomes a row with its error, never a failed run.
//!
//! - [`plan`] decides which episodes run (plan, groups' seeds, resume, pass-rate filter, shards);
//! - [`config`] is the one [`CollectConfig`] of a run, as data (what the CLI and Python fill in);
//! - [`run()`] runs a config end to end: plan, filter, resume, collect, write, pass-rate history;
//! - [`user`] plays the simulated user's turns;
//! - this file is the episode loop ([`run_episode`], [`collect`], [`collect_to_dir`]).

pub mod config;
pub mod plan;
mod run;
pub mod user;

pub use config::CollectConfig;
pub use plan::{EpisodeSpec, PlanFilter, plan, shard, skip_done};
pub use run::{RunEvent, RunReport, run};

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rayon::prelude::*;
use sandgym_abi::{Action, Message, Role};
use serde_json::Value;

use crate::env::{Env, EnvOptions};
use crate::error::{Error, Result};
use crate::policy::{Policy, PolicyInput};
use crate::registry;
use crate::store::{WriteSummary, Writer, WriterOptions};
use crate::trajectory::Trajectory;

/// Settings shared by every episode of a run.
#[derive(Clone)]
pub struct CollectOptions {
    pub run_id: String,
    /// Turns after which an episode is cut off (`truncated`); user turns are bounded by it too.
    pub max_turns: u32,
    /// Env configuration and sandbox limits.
    pub env_options: EnvOptions,
    /// The policy that plays the simulated user when an env asks for a user turn (tau envs with
    /// `"mode": "user"`). Any policy works: it sees the user's own view (`UserTurn::messages`), no
    /// tools, and, if it asks, the env's scripted user reply and the user's admissible replies. An
    /// env that asks for a user turn when this is `None` ends the episode with a `policy` error.
    pub user_policy: Option<Arc<dyn Policy>>,
    /// Rollouts per planned episode (`--group-size`): with `G > 1`, each planned episode becomes a
    /// group of `G` episodes on the same task and seed, sampled with different seeds
    /// (`groups::sample_seed`), sharing a `group_id`.
    pub group_size: u32,
    /// Advantages computed as each group completes (for `batch`, over the whole run); `None`
    /// computes none.
    pub advantage: Option<crate::advantage::AdvantageOptions>,
}

impl std::fmt::Debug for CollectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectOptions")
            .field("run_id", &self.run_id)
            .field("max_turns", &self.max_turns)
            .field("env_options", &self.env_options)
            .field("user_policy", &self.user_policy.as_ref().map(|p| p.name()))
            .field("group_size", &self.group_size)
            .field("advantage", &self.advantage)
            .finish()
    }
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            run_id: new_run_id(),
            max_turns: 64,
            env_options: EnvOptions::default(),
            user_policy: None,
            group_size: 1,
            advantage: None,
        }
    }
}

/// A run id from the clock and process id: unique enough to tell runs apart in one dataset.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "run-{}-{:x}",
        now.as_secs(),
        (now.subsec_nanos() as u64) ^ u64::from(std::process::id())
    )
}

/// Aggregate figures of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectSummary {
    pub episodes: u64,
    pub successes: u64,
    pub errors: u64,
    /// Env steps taken across all episodes.
    pub steps: u64,
    pub total_reward: f64,
    pub wall_time_s: f64,
}

impl CollectSummary {
    pub fn success_rate(&self) -> f64 {
        if self.episodes == 0 {
            0.0
        } else {
            self.successes as f64 / self.episodes as f64
        }
    }

    pub fn steps_per_second(&self) -> f64 {
        if self.wall_time_s > 0.0 {
            self.steps as f64 / self.wall_time_s
        } else {
            0.0
        }
    }
}

fn count_tool_errors(messages: &[Message]) -> u32 {
    messages
        .iter()
        .filter(|m| {
            (m.role == Role::Tool && m.content.starts_with("Error"))
                || (m.role == Role::User && m.content.starts_with("Format error"))
        })
        .count() as u32
}

/// Records a step's info and, when the episode ended, how; returns whether it ended.
fn record_outcome(traj: &mut Trajectory, out: &sandgym_abi::StepOutput) -> bool {
    traj.info = out.info.to_string();
    let over = out.terminated || out.truncated;
    if over {
        traj.terminated = out.terminated;
        traj.truncated = out.truncated;
        traj.success = out.success;
    }
    over
}

fn record_error(traj: &mut Trajectory, err: &Error) {
    traj.error_kind = Some(err.kind().to_string());
    traj.error_message = Some(err.to_string());
}

/// Plays one episode on `env` and returns its row. Never fails: errors end the episode and are recorded.
///
/// When the env asks for a user turn (a `user_turn` in its output), the collector asks
/// `options.user_policy` instead of the agent's policy and records which messages it wrote
/// (`Trajectory::user_turns`). The reward of a user turn (the verifier runs when the user ends the
/// conversation) is added to the agent turn before it, so `turn_rewards` keeps one entry per agent
/// turn; only a user who ends the episode before the agent acted gets an entry of its own.
pub fn run_episode(
    env: &mut Env,
    spec: &EpisodeSpec,
    policy: &dyn Policy,
    options: &CollectOptions,
) -> Trajectory {
    run_member(env, spec, None, policy, options)
}

/// The row of a planned episode, or of member `member` of its group: the row without a group, or
/// the group's `group_id`, `group_index` and sampling seed.
fn blank_row(spec: &EpisodeSpec, member: Option<u32>, run_id: &str, policy: &str) -> Trajectory {
    let (episode_id, group_id, group_index, sample_seed) = match member {
        None => (spec.episode_id(), None, 0, spec.seed),
        Some(j) => (
            plan::member_episode_id(spec, j),
            Some(plan::group_id(spec)),
            j,
            plan::sample_seed(spec.seed, j),
        ),
    };
    Trajectory {
        run_id: run_id.to_string(),
        episode_id,
        episode_index: spec.episode_index,
        env_id: spec.env_id.clone(),
        seed: spec.seed,
        policy: policy.to_string(),
        group_id,
        group_index,
        sample_seed,
        ..Trajectory::default()
    }
}

/// [`run_episode`] for member `member` of the episode's group (`None`: no group).
pub fn run_member(
    env: &mut Env,
    spec: &EpisodeSpec,
    member: Option<u32>,
    policy: &dyn Policy,
    options: &CollectOptions,
) -> Trajectory {
    let started = Instant::now();
    let info = env.info();
    let row = blank_row(spec, member, &options.run_id, policy.name());
    let sample_seed = row.sample_seed;
    let mut traj = Trajectory {
        run_id: options.run_id.clone(),
        episode_id: row.episode_id,
        group_id: row.group_id,
        group_index: row.group_index,
        sample_seed,
        episode_index: spec.episode_index,
        env_id: env.id().to_string(),
        env_name: info.name.clone(),
        env_version: info.version,
        seed: spec.seed,
        tools: Value::Array(info.tools.clone()).to_string(),
        policy: policy.name().to_string(),
        info: "{}".into(),
        task: spec.task.as_ref().map(Value::to_string).unwrap_or_default(),
        ..Trajectory::default()
    };
    let tools = info.tools.clone();
    let needs = policy.needs();
    let user_policy = options.user_policy.as_deref();
    let mut pending_user = match env.reset(spec.seed, spec.task.clone()) {
        Ok(reset) => {
            traj.task_id = reset.task_id;
            traj.task = reset.task.to_string();
            traj.messages = reset.messages;
            traj.info = reset.info.to_string();
            reset.user_turn
        }
        Err(err) => {
            record_error(&mut traj, &err);
            traj.wall_time_s = started.elapsed().as_secs_f64();
            return traj;
        }
    };
    let mut turn = 0u32;
    let mut user_turn = 0u32;
    let outcome: Result<()> = (|| {
        while turn < options.max_turns {
            if let Some(pending) = pending_user.take() {
                if user_turn >= options.max_turns {
                    // The env's own bound should come first; this one protects against an env that
                    // keeps asking the user forever.
                    traj.truncated = true;
                    return Ok(());
                }
                traj.user_policy = user_policy.map(|p| p.name().to_string());
                let mut out =
                    user::play_user_turn(env, &pending, user_policy, sample_seed, user_turn)?;
                user_turn += 1;
                for message in std::mem::take(&mut out.messages) {
                    traj.user_turns.push(traj.messages.len() as u32);
                    traj.messages.push(message);
                }
                match traj.turn_rewards.last_mut() {
                    Some(last) => *last += out.reward,
                    None if out.reward != 0.0 || out.terminated || out.truncated => {
                        traj.turn_rewards.push(out.reward)
                    }
                    None => {}
                }
                if record_outcome(&mut traj, &out) {
                    return Ok(());
                }
                pending_user = out.user_turn;
                continue;
            }
            let expert = if needs.expert { env.expert()? } else { None };
            let admissible: Vec<Action> = if needs.admissible {
                env.actions()?
            } else {
                Vec::new()
            };
            let decision = crate::policy::decide(
                policy,
                &PolicyInput {
                    messages: &traj.messages,
                    tools: &tools,
                    expert: expert.as_ref(),
                    admissible: &admissible,
                    episode_seed: sample_seed,
                    turn,
                },
            )?;
            let action = decision.action;
            traj.prompt_tokens += u64::from(decision.usage.prompt_tokens);
            traj.completion_tokens += u64::from(decision.usage.completion_tokens);
            traj.policy_turns.push(crate::trajectory::PolicyTurn {
                raw_output: decision.raw_output,
                parser: decision.parser,
                format_error: action.format_error.clone(),
                prompt_tokens: decision.usage.prompt_tokens,
                completion_tokens: decision.usage.completion_tokens,
                latency_s: decision.latency_s,
                prompt_ids: decision.prompt_ids,
                completion_ids: decision.completion_ids,
                completion_logprobs: decision.completion_logprobs,
                chunks: decision.chunks,
                chunks_truncated: decision.chunks_truncated,
            });
            traj.messages.push(Message::assistant(&action));
            traj.num_tool_calls += action.tool_calls.len() as u32;
            turn += 1;
            let mut out = env.step(&action)?;
            traj.messages.extend(std::mem::take(&mut out.messages));
            traj.turn_rewards.push(out.reward);
            if record_outcome(&mut traj, &out) {
                return Ok(());
            }
            pending_user = out.user_turn;
        }
        traj.truncated = true;
        Ok(())
    })();
    if let Err(err) = outcome {
        record_error(&mut traj, &err);
    }
    traj.num_turns = turn;
    traj.num_tool_errors = count_tool_errors(&traj.messages);
    traj.num_tool_successes = crate::rewards::tool_successes(&traj.messages);
    traj.response_chars = crate::rewards::response_chars(&traj.messages);
    traj.final_reward = traj.turn_rewards.last().copied().unwrap_or(0.0);
    traj.total_reward = traj.turn_rewards.iter().sum();
    traj.wall_time_s = started.elapsed().as_secs_f64();
    traj
}

/// Runs every episode of `plan` in parallel and hands each finished row to `sink`; `progress` is called
/// with the number of finished episodes after each one. Envs are made once per worker and env id, and
/// reused across that worker's episodes.
pub fn collect(
    plan: &[EpisodeSpec],
    policy: &dyn Policy,
    options: &CollectOptions,
    sink: &(dyn Fn(Trajectory) -> Result<()> + Sync),
    progress: &(dyn Fn(usize) + Sync),
) -> Result<CollectSummary> {
    // A policy that declares its concurrency (requests to a model server) gets that many episodes in
    // flight: the run moves to a pool of that many workers.
    if let Some(threads) = policy
        .concurrency()
        .filter(|&n| n.max(1) != rayon::current_num_threads())
    {
        return crate::pool::install(Some(threads), || {
            collect(plan, policy, options, sink, progress)
        });
    }
    // Fail fast on what would break every episode (an unknown env, a configuration it rejects), and keep
    // the configured env as the prototype each worker forks: configuring once per env id, not per worker.
    let mut prototypes: HashMap<&str, Mutex<Env>> = HashMap::new();
    for spec in plan {
        if !prototypes.contains_key(spec.env_id.as_str()) {
            let env = registry::make(&spec.env_id, options.env_options.clone())?;
            prototypes.insert(spec.env_id.as_str(), Mutex::new(env));
        }
    }
    let started = Instant::now();
    let finished = AtomicUsize::new(0);
    let successes = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let steps = AtomicU64::new(0);
    let reward = Mutex::new(0.0f64);
    let first_sink_error: Mutex<Option<Error>> = Mutex::new(None);
    // One work item per episode: the planned episode itself, or each member of its group.
    let group_size = options.group_size.max(1);
    let work: Vec<(&EpisodeSpec, Option<u32>)> = plan
        .iter()
        .flat_map(|spec| (0..group_size).map(move |j| (spec, (group_size > 1).then_some(j))))
        .collect();
    // Rows wait here until their group is complete when advantages are computed.
    let buffer = (group_size > 1 || options.advantage.is_some())
        .then(|| crate::groups::GroupBuffer::new(group_size as usize, options.advantage));
    // A group's rows reach the sink together, not interleaved with another thread's group.
    let delivering = Mutex::new(());
    let deliver = |rows: Vec<Trajectory>| -> Result<()> {
        let _turn = delivering.lock().expect("deliver");
        for row in rows {
            sink(row)?;
        }
        Ok(())
    };
    work.par_iter()
        .for_each_init(HashMap::<String, Env>::new, |envs, &(spec, member)| {
            if first_sink_error.lock().expect("sink error").is_some() {
                return;
            }
            let traj = match envs.get_mut(&spec.env_id) {
                Some(env) => run_member(env, spec, member, policy, options),
                None => {
                    // Fork in a statement of its own: a guard in the match scrutinee would hold the
                    // prototype's lock for the whole episode and serialize every worker's first one.
                    let forked = prototypes[spec.env_id.as_str()]
                        .lock()
                        .expect("prototype")
                        .fork();
                    match forked {
                        Ok(env) => {
                            let env = envs.entry(spec.env_id.clone()).or_insert(env);
                            run_member(env, spec, member, policy, options)
                        }
                        Err(err) => {
                            let mut traj = blank_row(spec, member, &options.run_id, policy.name());
                            record_error(&mut traj, &err);
                            traj
                        }
                    }
                }
            };
            successes.fetch_add(u64::from(traj.success), Ordering::Relaxed);
            errors.fetch_add(u64::from(traj.error_kind.is_some()), Ordering::Relaxed);
            steps.fetch_add(u64::from(traj.num_turns), Ordering::Relaxed);
            *reward.lock().expect("reward") += traj.total_reward;
            let sent = match &buffer {
                Some(buffer) => deliver(buffer.push(traj)),
                None => sink(traj),
            };
            if let Err(err) = sent {
                first_sink_error
                    .lock()
                    .expect("sink error")
                    .get_or_insert(err);
                return;
            }
            progress(finished.fetch_add(1, Ordering::Relaxed) + 1);
        });
    if let Some(err) = first_sink_error.into_inner().expect("sink error") {
        return Err(err);
    }
    if let Some(buffer) = &buffer {
        deliver(buffer.finish())?;
    }
    Ok(CollectSummary {
        episodes: finished.into_inner() as u64,
        successes: successes.into_inner(),
        errors: errors.into_inner(),
        steps: steps.into_inner(),
        total_reward: reward.into_inner().expect("reward"),
        wall_time_s: started.elapsed().as_secs_f64(),
    })
}

/// [`collect`] into Parquet part files in `out_dir`, through the background writer.
pub fn collect_to_dir(
    plan: &[EpisodeSpec],
    policy: &dyn Policy,
    options: &CollectOptions,
    out_dir: &Path,
    writer_options: WriterOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(CollectSummary, WriteSummary)> {
    let writer = Writer::create(out_dir, writer_options).map_err(Error::storage)?;
    let sink = |traj: Trajectory| -> Result<()> { writer.send(traj).map_err(Error::storage) };
    let summary = collect(plan, policy, options, &sink, progress);
    // Finalize what was written even when the run failed part way: finished episodes are kept.
    let written = writer.finish().map_err(Error::storage);
    let summary = summary?;
    Ok((summary, written?))
}
