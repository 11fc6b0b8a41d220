//! Branching and verification: walks each expert trajectory and, in every expert state `s_i`, runs the
//! expert action once and each sampled alternative on its own copy of the state, checking that every copy
//! is in `s_i` before it steps.
//!
//! Owns: recovering `(s_i, a_i, s_{i+1})` from a recorded trajectory (replayed step by step and checked
//! against the recording), the state fingerprint, the two ways of reaching `s_i` for an alternative —
//! [`Method::Fork`] (restore a snapshot) and [`Method::Replay`] (reset and replay the prefix, the
//! paper authors' method, kept as the baseline and the cross-check) — and the parallel run over episodes
//! and branches. Rows go to a sink; this module never writes files.
//!
//! **Fingerprint.** Before every step on a copy, the copy's fingerprint must equal the one taken on the
//! expert path in `s_i`, or the run fails with a `drift` error naming episode, step and branch. By
//! default ([`Verify::State`]) the fingerprint is the env's state digest (memory, globals, host RNG,
//! phase), taken before any query, and the expert path rewinds its queries before it steps, so its states
//! are what the bare action prefix produces; [`Verify::Full`] and [`Verify::Expert`] fingerprint what
//! the env shows instead (its expert action and admissible actions, or its expert action alone).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rayon::prelude::*;
use sandgym_abi::{Action, Message, Role, StepOutput};
use serde_json::Value;

use super::samplers::{SampleContext, Sampler, SamplerMemo};
use super::table::{Branch, is_error_observation};
use crate::collect::EpisodeSpec;
use crate::env::{Env, EnvOptions, EnvSnapshot};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::trajectory::Trajectory;
use crate::{parse, registry};

/// How an alternative's copy reaches the expert state `s_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Restore the snapshot taken on the expert path in `s_i` (O(K·N) env steps per trajectory).
    #[default]
    Fork,
    /// Reset and replay the expert prefix `a_0 … a_{i-1}` (O(K·N²/2) env steps): the authors' method.
    Replay,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s {
            "fork" => Ok(Method::Fork),
            "replay" => Ok(Method::Replay),
            other => Err(Error::InvalidArgument(format!(
                "unknown method `{other}` (available: fork, replay)"
            ))),
        }
    }
}

/// A recorded demonstration: the opening messages and each step's action with the answer recorded for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demo {
    pub opening: Vec<Message>,
    pub steps: Vec<(Action, Vec<Message>)>,
}

/// One expert trajectory to branch: an episode to reset, and either a recorded demonstration to replay
/// or (`demo = None`) the env's own expert, asked live in every state.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeInput {
    pub episode_id: String,
    pub spec: EpisodeSpec,
    pub demo: Option<Demo>,
}

/// The action an assistant message stands for. A text-only message that the host's parser turns into a
/// format error was a format error when it was recorded (the collector stores parsed actions), so it is
/// replayed as one.
pub fn action_of(message: &Message) -> Action {
    if !message.tool_calls.is_empty() {
        return Action {
            content: message.content.clone(),
            tool_calls: message.tool_calls.clone(),
            format_error: None,
        };
    }
    let parsed = parse::parse_action(&message.content);
    if parsed.format_error.is_some() {
        parsed
    } else {
        Action::text(message.content.clone())
    }
}

/// Splits a recorded conversation into the opening messages and `(action, answer)` steps. A last
/// assistant message without an answer (the episode failed on it) is dropped.
pub fn demo_of(messages: &[Message]) -> Demo {
    let first = messages
        .iter()
        .position(|m| m.role == Role::Assistant)
        .unwrap_or(messages.len());
    let mut demo = Demo {
        opening: messages[..first].to_vec(),
        steps: Vec::new(),
    };
    let mut i = first;
    while i < messages.len() {
        let action = action_of(&messages[i]);
        let end = messages[i + 1..]
            .iter()
            .position(|m| m.role == Role::Assistant)
            .map_or(messages.len(), |p| i + 1 + p);
        if end > i + 1 {
            demo.steps.push((action, messages[i + 1..end].to_vec()));
        }
        i = end;
    }
    demo
}

/// Episode inputs from trajectory rows (our Parquet schema). Rows whose reset failed or that hold no
/// complete step are skipped; the count comes back with the inputs.
pub fn inputs_from_trajectories(rows: &[Trajectory]) -> Result<(Vec<EpisodeInput>, usize)> {
    let mut inputs = Vec::with_capacity(rows.len());
    let mut skipped = 0;
    for row in rows {
        if row.task.is_empty() {
            skipped += 1;
            continue;
        }
        let task: Value = serde_json::from_str(&row.task).map_err(|e| {
            Error::InvalidArgument(format!(
                "episode {}: the `task` column is not valid JSON: {e}",
                row.episode_id
            ))
        })?;
        let demo = demo_of(&row.messages);
        if demo.steps.is_empty() {
            skipped += 1;
            continue;
        }
        inputs.push(EpisodeInput {
            episode_id: row.episode_id.clone(),
            spec: EpisodeSpec {
                env_id: row.env_id.clone(),
                episode_index: row.episode_index,
                seed: row.seed,
                task: Some(task),
            },
            demo: Some(demo),
        });
    }
    Ok((inputs, skipped))
}

/// Episode inputs that ask the env's expert live, one per planned episode.
pub fn inputs_from_plan(plan: &[EpisodeSpec]) -> Vec<EpisodeInput> {
    plan.iter()
        .map(|spec| EpisodeInput {
            episode_id: spec.episode_id(),
            spec: spec.clone(),
            demo: None,
        })
        .collect()
}

/// What a state's fingerprint covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// The env's complete state ([`Env::state_digest`]: written memory, globals, host RNG, phase), taken
    /// before any query: equal exactly when every later call behaves the same. No guest call; its cost
    /// follows the memory the episode wrote.
    #[default]
    State,
    /// The expert action and the admissible actions (queried).
    Full,
    /// The expert action only: one cheap query per copy. Catches a copy of another episode, task or
    /// expert position; blind to differences the expert action does not reflect.
    Expert,
}

impl std::str::FromStr for Verify {
    type Err = Error;
    fn from_str(s: &str) -> Result<Verify> {
        match s {
            "state" => Ok(Verify::State),
            "full" => Ok(Verify::Full),
            "expert" => Ok(Verify::Expert),
            other => Err(Error::InvalidArgument(format!(
                "unknown verification `{other}` (available: state, full, expert)"
            ))),
        }
    }
}

/// The fingerprint of the env's current state (hex 128-bit XXH3; see the module docs). With
/// [`Verify::State`] it makes no guest call; otherwise it queries the env.
pub fn fingerprint(env: &mut Env, verify: Verify) -> Result<String> {
    match verify {
        Verify::State => Ok(hex(&env.state_digest())),
        _ => probe(env, verify, false, true).map(|p| p.digest),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().fold(String::with_capacity(64), |mut hex, b| {
        hex.push(DIGITS[usize::from(b >> 4)] as char);
        hex.push(DIGITS[usize::from(b & 15)] as char);
        hex
    })
}

/// What the env shows in a state, taken right after the state is reached.
struct Probe {
    digest: String,
    expert: Option<Action>,
    admissible: Arc<[Action]>,
}

/// Fingerprints the state (first, so a state digest sees no query's traces), then queries its expert
/// action when the fingerprint covers it or `expert` asks for it (a recorded demonstration brings its
/// own), and, when `verify` covers them or `admissible` asks for them, its admissible actions.
fn probe(env: &mut Env, verify: Verify, admissible: bool, expert: bool) -> Result<Probe> {
    let state = (verify == Verify::State).then(|| env.state_digest());
    let expert = if state.is_none() || expert {
        env.expert()?
    } else {
        None
    };
    let full = verify == Verify::Full;
    let admissible = if full || admissible {
        env.admissible()?
    } else {
        Arc::from([])
    };
    let digest = match state {
        Some(state) => hex(&state),
        None => {
            let mut hasher = twox_hash::XxHash3_128::new();
            hasher.write(b"sandgym-early-fingerprint-v2\0");
            hasher.write(&serde_json::to_vec(&expert).expect("actions encode"));
            if full {
                hasher.write(&[0]);
                hasher.write(&serde_json::to_vec(&*admissible).expect("actions encode"));
            }
            hex(&hasher.finish_128().to_le_bytes())
        }
    };
    Ok(Probe {
        digest,
        expert,
        admissible,
    })
}

/// Settings of a branching run.
#[derive(Debug, Clone)]
pub struct BranchOptions {
    pub run_id: String,
    pub method: Method,
    /// What every copy's fingerprint covers.
    pub verify: Verify,
    /// Expert states visited per episode at most (live experts; recorded demos stop at their end).
    pub max_steps: u32,
    pub env_options: EnvOptions,
}

impl Default for BranchOptions {
    fn default() -> Self {
        BranchOptions {
            run_id: crate::collect::new_run_id(),
            method: Method::Fork,
            verify: Verify::State,
            max_steps: 64,
            env_options: EnvOptions::default(),
        }
    }
}

/// Aggregate figures of a branching run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BranchSummary {
    pub episodes: u64,
    /// Expert states branched.
    pub states: u64,
    /// Rows: expert branches plus alternatives.
    pub branches: u64,
    pub alternatives: u64,
    /// States that offered fewer alternatives than the sampler's K.
    pub short_states: u64,
    /// Branches whose step failed outright (fault, rejected action).
    pub branch_errors: u64,
    /// Branches whose answer reports an error (invalid actions; kept).
    pub observation_errors: u64,
    /// Env steps taken, replayed prefixes included.
    pub env_steps: u64,
    pub wall_time_s: f64,
}

impl BranchSummary {
    pub fn branches_per_second(&self) -> f64 {
        if self.wall_time_s > 0.0 {
            self.branches as f64 / self.wall_time_s
        } else {
            0.0
        }
    }
}

/// Spare envs of one program, reused across branches: restoring into a spare is cheaper than building
/// an instance per branch.
struct Pool {
    prototype: Mutex<Env>,
    spare: Mutex<Vec<Env>>,
}

impl Pool {
    /// A spare (the lock is held only to pop it, never while the env works).
    fn spare(&self) -> Option<Env> {
        self.spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// A new instance of the configured prototype: what "from scratch" starts from. (A reused instance
    /// plays the same after a reset, but its memory still holds traces of earlier episodes, which a
    /// state digest sees.)
    fn fresh(&self) -> Result<Env> {
        self.prototype
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fork()
    }

    fn at(&self, snapshot: &EnvSnapshot) -> Result<Env> {
        match self.spare() {
            Some(mut env) => {
                env.restore(snapshot)?;
                Ok(env)
            }
            None => self
                .prototype
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fork_from(snapshot),
        }
    }

    fn give(&self, env: Env) {
        self.spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(env);
    }
}

/// Hands groups to the sink in input order whatever order the workers finish in, so a run's files do
/// not depend on scheduling: the episode whose turn it is streams straight through; groups of episodes
/// ahead of their turn wait in memory until it comes.
struct InOrder<'s> {
    sink: &'s (dyn Fn(Vec<Branch>) -> Result<()> + Sync),
    state: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// The input index whose groups go straight to the sink.
    turn: usize,
    /// Groups of later episodes, and whether each has finished.
    waiting: BTreeMap<usize, (Vec<Vec<Branch>>, bool)>,
}

impl InOrder<'_> {
    fn group(&self, episode: usize, rows: Vec<Branch>) -> Result<()> {
        let mut queue = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if episode == queue.turn {
            (self.sink)(rows)
        } else {
            queue.waiting.entry(episode).or_default().0.push(rows);
            Ok(())
        }
    }

    /// Marks an episode finished (or abandoned) and passes the turn on through every waiting episode
    /// that has finished too.
    fn finished(&self, episode: usize) -> Result<()> {
        let mut queue = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if episode != queue.turn {
            queue.waiting.entry(episode).or_default().1 = true;
            return Ok(());
        }
        queue.turn += 1;
        loop {
            let turn = queue.turn;
            let Some((groups, done)) = queue.waiting.remove(&turn) else {
                break;
            };
            for rows in groups {
                (self.sink)(rows)?;
            }
            if !done {
                break;
            }
            queue.turn += 1;
        }
        Ok(())
    }

    /// After a failed run: everything still waiting, in input order (finished states are kept).
    fn drain(&self) -> Result<()> {
        let mut queue = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, (groups, _)) in std::mem::take(&mut queue.waiting) {
            for rows in groups {
                (self.sink)(rows)?;
            }
        }
        Ok(())
    }
}

/// What a run shares across its workers.
struct Run<'a> {
    options: &'a BranchOptions,
    sampler: &'a dyn Sampler,
    pools: HashMap<String, Pool>,
    steps: AtomicU64,
}

/// The outcome of one step, as branch-row fields.
struct Outcome {
    next_state: Vec<Message>,
    reward: f64,
    done: bool,
    success: bool,
    error: Option<Error>,
    info: String,
}

impl Outcome {
    fn of(result: Result<StepOutput>) -> Outcome {
        match result {
            Ok(out) => Outcome {
                done: out.terminated || out.truncated,
                success: out.success,
                reward: out.reward,
                info: out.info.to_string(),
                next_state: out.messages,
                error: None,
            },
            Err(err) => Outcome {
                next_state: Vec::new(),
                reward: 0.0,
                done: false,
                success: false,
                info: "{}".into(),
                error: Some(err),
            },
        }
    }
}

fn drift(input: &EpisodeInput, step: usize, what: String) -> Error {
    Error::Sandbox(format!(
        "drift in episode {} at step {step}: {what}",
        input.episode_id
    ))
}

impl Run<'_> {
    fn step(&self, env: &mut Env, action: &Action) -> Result<StepOutput> {
        self.steps.fetch_add(1, Ordering::Relaxed);
        env.step(action)
    }

    /// Whether a replay may start from a reused instance: not under [`Verify::State`], whose digest
    /// also sees what earlier episodes left in a reused instance's memory.
    fn replays_reuse_instances(&self) -> bool {
        self.options.verify != Verify::State
    }

    /// A copy of the episode in `s_i` by resetting and replaying the expert prefix `a_0 … a_{i-1}`, as
    /// the authors did: from a reset spare when [`Run::replays_reuse_instances`], else a new instance.
    fn replayed(&self, pool: &Pool, input: &EpisodeInput, prefix: &[Action]) -> Result<Env> {
        let spare = self
            .replays_reuse_instances()
            .then(|| pool.spare())
            .flatten();
        let mut env = match spare {
            Some(env) => env,
            None => pool.fresh()?,
        };
        env.reset(input.spec.seed, input.spec.task.clone())?;
        for action in prefix {
            self.step(&mut env, action)?;
        }
        Ok(env)
    }

    /// Runs one alternative on its own copy of `s_i` and returns its outcome.
    #[allow(clippy::too_many_arguments)]
    fn alternative(
        &self,
        pool: &Pool,
        input: &EpisodeInput,
        step: usize,
        branch: usize,
        snapshot: Option<&EnvSnapshot>,
        prefix: &[Action],
        digest: &str,
        action: &Action,
    ) -> Result<Outcome> {
        let mut env = match snapshot {
            Some(snapshot) => pool.at(snapshot)?,
            None => self.replayed(pool, input, prefix)?,
        };
        let seen = fingerprint(&mut env, self.options.verify)?;
        if seen != digest {
            return Err(drift(
                input,
                step,
                format!(
                    "the copy for branch {branch} has fingerprint {seen}, the expert state {digest}"
                ),
            ));
        }
        let outcome = Outcome::of(self.step(&mut env, action));
        if snapshot.is_some() || self.replays_reuse_instances() {
            pool.give(env);
        }
        Ok(outcome)
    }

    /// Branches one episode; hands the rows of each state to `sink` (expert row first).
    fn episode(
        &self,
        input: &EpisodeInput,
        sink: &(dyn Fn(Vec<Branch>) -> Result<()> + Sync),
        summary: &Mutex<BranchSummary>,
    ) -> Result<()> {
        let pool = &self.pools[&input.spec.env_id];
        // The expert path starts from a fresh instance, so its state digests do not depend on which
        // worker ran the episode (and equal those of a replay from scratch).
        let fork = self.options.method == Method::Fork;
        let mut env = pool.fresh()?;
        let result = self.walk(pool, &mut env, input, sink, summary);
        if fork {
            pool.give(env);
        }
        result
    }

    fn walk(
        &self,
        pool: &Pool,
        env: &mut Env,
        input: &EpisodeInput,
        sink: &(dyn Fn(Vec<Branch>) -> Result<()> + Sync),
        summary: &Mutex<BranchSummary>,
    ) -> Result<()> {
        let reset = env.reset(input.spec.seed, input.spec.task.clone())?;
        if let Some(demo) = &input.demo
            && demo.opening != reset.messages
        {
            return Err(Error::InvalidArgument(format!(
                "episode {}: resetting with the recorded seed and task gives other opening messages than \
                 recorded (another env build or configuration?)",
                input.episode_id
            )));
        }
        let tools = env.info().tools.clone();
        let mut messages = reset.messages;
        let mut prefix: Vec<Action> = Vec::new();
        // A state digest also sees what queries leave in guest memory, so under `Verify::State` the
        // expert path rewinds its queries (to the snapshot taken before them) before it steps: every
        // state on it is then what the bare prefix of actions produces, which a replay can check.
        let rewind_queries = self.options.verify == Verify::State;
        let memo = SamplerMemo::default();
        let steps = match &input.demo {
            Some(demo) => demo.steps.len(),
            None => self.options.max_steps as usize,
        };
        for i in 0..steps {
            if !env.is_running() {
                break;
            }
            let snapshot = if self.options.method == Method::Fork || rewind_queries {
                Some(env.snapshot()?)
            } else {
                None
            };
            let probe = probe(
                env,
                self.options.verify,
                self.sampler.wants_admissible(),
                input.demo.is_none(),
            )?;
            let copies_from = match self.options.method {
                Method::Fork => snapshot.as_ref(),
                Method::Replay => None,
            };
            let expert = match &input.demo {
                Some(demo) => demo.steps[i].0.clone(),
                None => match probe.expert {
                    Some(action) => action,
                    None => break,
                },
            };
            let seed = SplitMix64::for_stream(input.spec.seed, i as u64).next_u64();
            let alternatives = self.sampler.sample(&SampleContext {
                messages: &messages,
                tools: &tools,
                expert: &expert,
                admissible: &probe.admissible,
                seed,
                step: i as u32,
                memo: Some(&memo),
            })?;
            let outcomes: Vec<Outcome> = alternatives
                .par_iter()
                .enumerate()
                .map(|(j, action)| {
                    self.alternative(
                        pool,
                        input,
                        i,
                        j + 1,
                        copies_from,
                        &prefix,
                        &probe.digest,
                        action,
                    )
                })
                .collect::<Result<_>>()?;
            if let (true, Some(snapshot)) = (rewind_queries, &snapshot) {
                env.restore(snapshot)?;
            }
            let expert_outcome = Outcome::of(self.step(env, &expert));
            if let (Some(demo), None) = (&input.demo, &expert_outcome.error)
                && demo.steps[i].1 != expert_outcome.next_state
            {
                return Err(Error::InvalidArgument(format!(
                    "episode {}: replaying recorded step {i} gives another answer than recorded \
                     (another env build, configuration or task?)",
                    input.episode_id
                )));
            }
            let state = Arc::new(messages.clone());
            let row = |branch: usize, action: &Action, outcome: &Outcome| Branch {
                run_id: self.options.run_id.clone(),
                episode_id: input.episode_id.clone(),
                env_id: input.spec.env_id.clone(),
                task_id: reset.task_id.clone(),
                seed: input.spec.seed,
                step: i as u32,
                branch: branch as u32,
                is_expert: branch == 0,
                sampler: if branch == 0 {
                    "expert".into()
                } else {
                    self.sampler.name().into()
                },
                state: state.clone(),
                action: Message::assistant(action),
                next_state: outcome.next_state.clone(),
                reward: outcome.reward,
                done: outcome.done,
                success: outcome.success,
                observation_error: is_error_observation(&outcome.next_state),
                error_kind: outcome.error.as_ref().map(|e| e.kind().to_string()),
                error_message: outcome.error.as_ref().map(ToString::to_string),
                state_digest: probe.digest.clone(),
                info: outcome.info.clone(),
            };
            let mut rows = Vec::with_capacity(alternatives.len() + 1);
            rows.push(row(0, &expert, &expert_outcome));
            for (j, (action, outcome)) in alternatives.iter().zip(&outcomes).enumerate() {
                rows.push(row(j + 1, action, outcome));
            }
            {
                let mut s = summary.lock().expect("summary");
                s.states += 1;
                s.branches += rows.len() as u64;
                s.alternatives += alternatives.len() as u64;
                s.short_states +=
                    u64::from(self.sampler.k().is_some_and(|k| alternatives.len() < k));
                s.branch_errors += rows.iter().filter(|r| r.error_kind.is_some()).count() as u64;
                s.observation_errors += rows.iter().filter(|r| r.observation_error).count() as u64;
            }
            sink(rows)?;
            if expert_outcome.error.is_some() || expert_outcome.done {
                break;
            }
            messages.push(Message::assistant(&expert));
            messages.extend(expert_outcome.next_state);
            prefix.push(expert);
        }
        Ok(())
    }
}

/// Runs the branching over every input in parallel (episodes and, within a state, branches on rayon);
/// each state's rows go to `sink` as one group, the expert row first, in input order (episode by episode,
/// states in order), whatever order the workers finish in. The first error (drift, a demo
/// that does not replay, a sink failure) stops the run and is returned.
pub fn branch_episodes(
    inputs: &[EpisodeInput],
    sampler: &dyn Sampler,
    options: &BranchOptions,
    sink: &(dyn Fn(Vec<Branch>) -> Result<()> + Sync),
) -> Result<BranchSummary> {
    let mut pools: HashMap<String, Pool> = HashMap::new();
    for input in inputs {
        if pools.contains_key(&input.spec.env_id) {
            continue;
        }
        let env = registry::make(&input.spec.env_id, options.env_options.clone())?;
        let caps = &env.info().capabilities;
        if sampler.requires_admissible() && !caps.actions {
            return Err(Error::InvalidArgument(format!(
                "the `{}` sampler needs admissible actions, and env `{}` does not list them \
                 (try --sampler tool-schema)",
                sampler.name(),
                env.id()
            )));
        }
        if input.demo.is_none() && !caps.expert {
            return Err(Error::InvalidArgument(format!(
                "env `{}` has no expert policy: give expert trajectories instead",
                env.id()
            )));
        }
        pools.insert(
            input.spec.env_id.clone(),
            Pool {
                prototype: Mutex::new(env),
                spare: Mutex::new(Vec::new()),
            },
        );
    }
    let run = Run {
        options,
        sampler,
        pools,
        steps: AtomicU64::new(0),
    };
    let started = Instant::now();
    let summary = Mutex::new(BranchSummary::default());
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let in_order = InOrder {
        sink,
        state: Mutex::default(),
    };
    inputs.par_iter().enumerate().for_each(|(index, input)| {
        if failed.load(Ordering::Relaxed) {
            return;
        }
        let result = run
            .episode(input, &|rows| in_order.group(index, rows), &summary)
            .and_then(|()| in_order.finished(index));
        match result {
            Ok(()) => summary.lock().expect("summary").episodes += 1,
            Err(err) => {
                failed.store(true, Ordering::Relaxed);
                first_error.lock().expect("error").get_or_insert(err);
            }
        }
    });
    if let Some(err) = first_error.into_inner().expect("error") {
        // Keep the states that did finish (a sink failure is the error already being returned).
        let _ = in_order.drain();
        return Err(err);
    }
    let mut summary = summary.into_inner().expect("summary");
    summary.env_steps = run.steps.into_inner();
    summary.wall_time_s = started.elapsed().as_secs_f64();
    Ok(summary)
}
