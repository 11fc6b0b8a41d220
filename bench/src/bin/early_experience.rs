//! Early-experience branching, forking vs replaying from reset (the paper authors' method), on the same
//! inputs: expert demonstrations are recorded once, then branched both ways; the two runs must produce the
//! same rows, and the figure is branches per second.
//!
//! - `countdown`, 15-step demonstrations (14 `calc` turns, then the expert's submission), K = 8 uniform;
//! - `tau-retail`, the env's expert (4-7 steps), K = 5 tool-schema alternatives.
//!
//! Run: `cargo run --release -p sandgym-bench --bin early_experience` (add `-- --quick` for a smoke run).
//! Results are recorded in docs/benchmarks.md.

use std::sync::Mutex;
use std::time::Instant;

use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::early::branch::{
    self, BranchOptions, BranchSummary, EpisodeInput, Method, Verify,
};
use sandgym_core::early::samplers::{Sampler, ToolSchemaSampler, UniformSampler};
use sandgym_core::early::table::Branch;
use sandgym_core::policy::{ExpertPolicy, Needs, Policy, PolicyInput};
use sandgym_core::{Action, EnvOptions, Trajectory};
use serde_json::json;

/// `calc` with the env's admissible calculations for `calcs` turns, then the expert.
struct CalcThenExpert {
    calcs: u32,
}

impl Policy for CalcThenExpert {
    fn name(&self) -> &str {
        "calc-then-expert"
    }
    fn needs(&self) -> Needs {
        Needs {
            expert: true,
            admissible: true,
        }
    }
    fn act(&self, input: &PolicyInput<'_>) -> sandgym_core::Result<Action> {
        let calcs: Vec<&Action> = input
            .admissible
            .iter()
            .filter(|a| a.tool_calls.first().is_some_and(|c| c.name == "calc"))
            .collect();
        if input.turn < self.calcs && !calcs.is_empty() {
            return Ok(calcs[input.turn as usize % calcs.len()].clone());
        }
        input
            .expert
            .cloned()
            .ok_or_else(|| sandgym_core::Error::Policy("no expert action".into()))
    }
}

/// Looks things up with the env's admissible read-only tools (`get_*`, `find_*`) for `reads` turns, then
/// plays the expert: a long tau-bench demonstration, like an agent that checks before it acts.
struct ReadsThenExpert {
    reads: u32,
}

impl Policy for ReadsThenExpert {
    fn name(&self) -> &str {
        "reads-then-expert"
    }
    fn needs(&self) -> Needs {
        Needs {
            expert: true,
            admissible: true,
        }
    }
    fn act(&self, input: &PolicyInput<'_>) -> sandgym_core::Result<Action> {
        let expert = input
            .expert
            .cloned()
            .ok_or_else(|| sandgym_core::Error::Policy("no expert action".into()))?;
        let reads: Vec<&Action> = input
            .admissible
            .iter()
            .filter(|a| {
                **a != expert
                    && a.tool_calls
                        .first()
                        .is_some_and(|c| c.name.starts_with("get_") || c.name.starts_with("find_"))
            })
            .collect();
        if input.turn < self.reads && !reads.is_empty() {
            return Ok(reads[input.turn as usize % reads.len()].clone());
        }
        Ok(expert)
    }
}

fn record(
    env: &str,
    episodes: u64,
    policy: &dyn Policy,
    env_options: &EnvOptions,
) -> Vec<Trajectory> {
    let plan = collect::plan(&[env.to_string()], episodes, 0, None);
    let rows = Mutex::new(Vec::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    let options = CollectOptions {
        env_options: env_options.clone(),
        ..CollectOptions::default()
    };
    collect::collect(&plan, policy, &options, &sink, &|_| {}).unwrap();
    let mut rows: Vec<Trajectory> = rows.into_inner().unwrap();
    rows.sort_by_key(|t| t.episode_index);
    assert!(rows.iter().all(|t| t.error_kind.is_none()));
    rows
}

fn run(
    inputs: &[EpisodeInput],
    sampler: &dyn Sampler,
    method: Method,
    verify: Verify,
    env_options: &EnvOptions,
) -> (BranchSummary, Vec<Branch>) {
    let rows = Mutex::new(Vec::new());
    let sink = |group: Vec<Branch>| {
        rows.lock().unwrap().extend(group);
        Ok(())
    };
    let options = BranchOptions {
        run_id: "bench".into(),
        method,
        verify,
        env_options: env_options.clone(),
        ..BranchOptions::default()
    };
    let summary = branch::branch_episodes(inputs, sampler, &options, &sink).unwrap();
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by(|a, b| (&a.episode_id, a.step, a.branch).cmp(&(&b.episode_id, b.step, b.branch)));
    (summary, rows)
}

fn compare(
    title: &str,
    inputs: &[EpisodeInput],
    sampler: &dyn Sampler,
    env_options: &EnvOptions,
    repeats: usize,
) {
    // Warm the module cache and the instance pool once.
    run(
        &inputs[..1],
        sampler,
        Method::Fork,
        Verify::Full,
        env_options,
    );
    let only = std::env::var("EARLY_BENCH_VERIFY").ok();
    for verify in [Verify::State, Verify::Full, Verify::Expert] {
        if only
            .as_deref()
            .is_some_and(|v| v != format!("{verify:?}").to_lowercase())
        {
            continue;
        }
        compare_with(title, inputs, sampler, verify, env_options, repeats);
    }
}

fn compare_with(
    title: &str,
    inputs: &[EpisodeInput],
    sampler: &dyn Sampler,
    verify: Verify,
    env_options: &EnvOptions,
    repeats: usize,
) {
    let only = std::env::var("EARLY_BENCH_ONLY").ok();
    if only.as_deref() == Some("fork") {
        for _ in 0..repeats * 4 {
            run(inputs, sampler, Method::Fork, verify, env_options);
        }
        return;
    }
    // Fork and replay runs alternate, and each pair gives a ratio: load on this machine that comes and
    // goes then slows both sides of a pair alike instead of one method's whole series.
    let mut forks = Vec::with_capacity(repeats);
    let mut replays = Vec::with_capacity(repeats);
    let mut ratios = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let fork = run(inputs, sampler, Method::Fork, verify, env_options);
        let replay = run(inputs, sampler, Method::Replay, verify, env_options);
        assert_eq!(
            fork.1, replay.1,
            "fork and replay must produce the same rows"
        );
        ratios.push(fork.0.branches_per_second() / replay.0.branches_per_second());
        forks.push(fork.0);
        replays.push(replay.0);
    }
    let median_by = |runs: &mut Vec<BranchSummary>| {
        runs.sort_by(|a, b| a.wall_time_s.total_cmp(&b.wall_time_s));
        runs[runs.len() / 2].clone()
    };
    let (fork, replay) = (median_by(&mut forks), median_by(&mut replays));
    ratios.sort_by(f64::total_cmp);
    println!("{title} (verify {verify:?})");
    println!(
        "  {} episodes, {:.1} expert states each, {} branches ({} alternatives)",
        inputs.len(),
        fork.states as f64 / inputs.len() as f64,
        fork.branches,
        fork.alternatives
    );
    for (name, s) in [("fork", &fork), ("replay from reset", &replay)] {
        println!(
            "  {name:<18} {:>9.0} branches/s  {:>8} env steps  {:.3} s (median of {repeats})",
            s.branches_per_second(),
            s.env_steps,
            s.wall_time_s
        );
    }
    println!(
        "  ratio fork / replay: {:.1}x median of {repeats} alternating pairs, range {:.1}-{:.1}x \
         (identical rows: yes)\n",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

/// Per-operation costs in a mid-episode state: what one forked branch is made of.
fn costs(env_id: &str, inputs: &[EpisodeInput], env_options: &EnvOptions) {
    let input = &inputs[0];
    let demo = input.demo.as_ref().unwrap();
    let mut env = sandgym_core::registry::make(env_id, env_options.clone()).unwrap();
    env.reset(input.spec.seed, input.spec.task.clone()).unwrap();
    let mid = demo.steps.len() / 2;
    for (action, _) in &demo.steps[..mid] {
        env.step(action).unwrap();
    }
    let n = 200;
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let snapshot = env.snapshot().unwrap();
    let restore = time(&mut || env.restore(&snapshot).unwrap());
    let expert = time(&mut || {
        env.expert().unwrap();
    });
    let actions = time(&mut || {
        env.admissible().unwrap();
    });
    let snapshot_cost = time(&mut || {
        env.snapshot().unwrap();
    });
    // Right after a restore, as a forked copy is checked (the restore leaves the written pages known).
    env.restore(&snapshot).unwrap();
    let digest = time(&mut || {
        env.state_digest();
    });
    let step = time(&mut || {
        env.restore(&snapshot).unwrap();
        env.step(&demo.steps[mid].0).unwrap();
    }) - restore;
    let reset = time(&mut || {
        env.reset(input.spec.seed, input.spec.task.clone()).unwrap();
    });
    println!(
        "  per op at step {mid}: snapshot ({} KiB) {snapshot_cost:.1} us, restore {restore:.1} us, state digest \
         {digest:.1} us, expert() {expert:.1} us, actions() {actions:.1} us, step {step:.1} us, reset \
         {reset:.1} us",
        snapshot.memory_bytes() / 1024
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (episodes, repeats) = if quick { (4, 1) } else { (32, 7) };
    println!(
        "early-experience branching ({} mode, {} rayon threads)\n",
        if quick { "quick" } else { "full" },
        rayon::current_num_threads()
    );

    // For profiling one workload: EARLY_BENCH_WORKLOAD=countdown|tau|tau-expert.
    let workload = std::env::var("EARLY_BENCH_WORKLOAD").ok();
    let wanted = |name: &str| workload.as_deref().is_none_or(|w| w == name);

    let countdown = EnvOptions {
        config: json!({"max_turns": 64}),
        ..EnvOptions::default()
    };
    if wanted("countdown") {
        let demos = record(
            "countdown-v0",
            episodes,
            &CalcThenExpert { calcs: 14 },
            &countdown,
        );
        assert!(demos.iter().all(|t| t.num_turns == 15));
        let (inputs, _) = branch::inputs_from_trajectories(&demos).unwrap();
        costs("countdown-v0", &inputs, &countdown);
        compare(
            "countdown, 15-step demonstrations, K = 8 uniform admissible:",
            &inputs,
            &UniformSampler { k: 8 },
            &countdown,
            repeats,
        );
    }

    let tau = EnvOptions::default();
    let tool_schema = ToolSchemaSampler {
        k: 5,
        exclude_expert_tool: true,
    };
    if wanted("tau") {
        let demos = record(
            "tau-retail-v0",
            episodes,
            &ReadsThenExpert { reads: 13 },
            &tau,
        );
        let turns: Vec<u32> = demos.iter().map(|t| t.num_turns).collect();
        assert!(
            demos.iter().all(|t| t.success),
            "read-then-expert demos must still succeed"
        );
        let (inputs, _) = branch::inputs_from_trajectories(&demos).unwrap();
        costs("tau-retail-v0", &inputs, &tau);
        compare(
            &format!(
                "tau-retail, demonstrations of {}-{} steps (reads, then the expert), K = 5 tool-schema \
             (expert's tool excluded):",
                turns.iter().min().unwrap(),
                turns.iter().max().unwrap()
            ),
            &inputs,
            &tool_schema,
            &tau,
            repeats,
        );
    }

    if wanted("tau-expert") {
        let demos = record("tau-retail-v0", episodes, &ExpertPolicy, &tau);
        let (inputs, _) = branch::inputs_from_trajectories(&demos).unwrap();
        compare(
            "tau-retail, expert demonstrations, K = 5 tool-schema (expert's tool excluded):",
            &inputs,
            &tool_schema,
            &tau,
            repeats,
        );
    }
}
