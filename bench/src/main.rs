//! Benchmarks of the Rust core, each printed with a baseline measured in the same run:
//! - stepping `countdown` in the sandbox (VecEnv on rayon) vs the same env compiled natively and driven
//!   through the same JSON path (`sandgym_sdk::Host`) on the same rayon pool;
//! - single-thread step latency, sandboxed vs native;
//! - instantiation, snapshot, restore and fork of a mid-episode env;
//! - for every other bundled env (tau-bench envs): step latency, fork time and memory per live env, with
//!   a native replay from reset as the baseline for fork.
//!
//! Run: `cargo run --release -p sandgym-bench` (add `-- --quick` for a short smoke run). `--envs N`
//! batches N envs instead of 256 (64 quick) and `--core-only` skips the per-env sections: under an
//! address-space limit (`ulimit -v`) each live env reserves 1 GiB + guards, so 256 do not fit.
//! Results are recorded in docs/benchmarks.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use countdown::Countdown;
use rayon::prelude::*;
use sandgym_core::{Action, EnvOptions, StepOutput, VecEnv, registry};
use sandgym_sdk::{Envelope, Host, ResetInput};
use serde_json::json;

/// Runs `f` `repeats` times and returns the median duration of one run.
fn median(repeats: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..repeats).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

fn per_op(d: Duration, ops: u64) -> f64 {
    d.as_secs_f64() * 1e9 / ops as f64
}

fn calc_action() -> Action {
    Action::tool("calc", &json!({"expression": "(25 - 5) * 4 + 7 / 7"}))
}

/// A countdown config whose episodes never end on `calc`, so every step is the same kind of work.
fn long_episodes() -> serde_json::Value {
    json!({"max_turns": 1000})
}

/// The native baseline: the env's own code behind the SDK's JSON path, no sandbox.
struct Native {
    host: Host<Countdown>,
}

impl Native {
    fn new(seed: u64) -> Native {
        let mut host = Host::<Countdown>::default();
        host.configure(long_episodes().to_string().as_bytes());
        let input = serde_json::to_vec(&ResetInput { seed, task: None }).unwrap();
        host.reset(&input);
        Native { host }
    }

    /// Same work per step as the sandboxed path: encode the action, run the guest code, decode the output.
    fn step(&mut self, action: &Action) -> StepOutput {
        let input = serde_json::to_vec(action).unwrap();
        let output = self.host.step(&input);
        match serde_json::from_slice::<Envelope<StepOutput>>(output).unwrap() {
            Envelope::Ok(out) => out,
            Envelope::Err(e) => panic!("{e}"),
        }
    }
}

fn options() -> EnvOptions {
    EnvOptions {
        config: long_episodes(),
        ..EnvOptions::default()
    }
}

/// Resident set size of this process in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Step latency, fork cost and memory of a mid-episode env that plays its expert.
fn env_section(id: &str, repeats: usize, quick: bool) {
    let mut env = registry::make(id, EnvOptions::default()).unwrap();
    // Play a few expert turns so the state is mid-episode, and remember a step that can be repeated.
    env.reset(0, None).unwrap();
    let first = env.expert().unwrap().expect("bundled envs have an expert");
    let mut played = 0;
    for _ in 0..3 {
        match env.expert().unwrap() {
            Some(action) if !env.step(&action).unwrap().terminated => played += 1,
            _ => break,
        }
    }
    let n: u64 = if quick { 200 } else { 2_000 };
    let step = median(repeats, || {
        let mut replay = registry::make(id, EnvOptions::default()).unwrap();
        replay.reset(0, None).unwrap();
        let start = Instant::now();
        for i in 0..n {
            // The first expert call of an episode is a read: repeating it leaves the state alone.
            match replay.step(&first) {
                Ok(out) if !(out.terminated || out.truncated) => {}
                _ => {
                    replay.reset(i, None).unwrap();
                }
            }
        }
        start.elapsed()
    });
    let k: u64 = if quick { 50 } else { 300 };
    let fork = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k {
            black_box(env.fork().unwrap());
        }
        start.elapsed()
    });
    // The "fork" of tau-bench's definition: snapshot the state, then restore it in place.
    let snapshot_restore = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k {
            let snapshot = env.snapshot().unwrap();
            env.restore(&snapshot).unwrap();
        }
        start.elapsed()
    });
    let snapshot = env.snapshot().unwrap();
    let replay = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k.min(50) {
            let mut fresh = registry::make(id, EnvOptions::default()).unwrap();
            fresh.reset(0, None).unwrap();
            for _ in 0..played {
                let action = fresh.expert().unwrap().unwrap();
                black_box(fresh.step(&action).unwrap());
            }
        }
        start.elapsed()
    });
    let live = if quick { 16 } else { 64 };
    let before = rss_bytes();
    let envs: Vec<_> = (0..live).map(|_| env.fork().unwrap()).collect();
    let per_env = rss_bytes().saturating_sub(before) / live;
    drop(envs);
    println!(
        "{id} (mid-episode after {played} expert turns; snapshot {} KiB of {} KiB guest memory):",
        snapshot.memory_bytes() / 1024,
        env.memory_bytes() / 1024
    );
    println!(
        "  step (repeated read)      {:>9.2} us",
        per_op(step, n) / 1e3
    );
    println!(
        "  snapshot + restore        {:>9.2} us (in place)",
        per_op(snapshot_restore, k) / 1e3
    );
    println!(
        "  fork (new instance)       {:>9.2} us",
        per_op(fork, k) / 1e3
    );
    println!(
        "  baseline: sandboxed replay from make + reset {:>9.2} us",
        per_op(replay, k.min(50)) / 1e3
    );
    println!(
        "  resident memory per live forked env  {:>6.2} MiB ({live} envs)\n",
        per_env as f64 / (1 << 20) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let core_only = args.iter().any(|a| a == "--core-only");
    let (envs, rounds, repeats) = if quick { (64, 20, 3) } else { (256, 500, 7) };
    let envs = args
        .iter()
        .position(|a| a == "--envs")
        .and_then(|i| args.get(i + 1)?.parse::<usize>().ok())
        .unwrap_or(envs);
    let threads = rayon::current_num_threads();
    println!(
        "sandgym benchmarks ({} mode, {threads} rayon threads)",
        if quick { "quick" } else { "full" }
    );
    // Which memory layout this process got (it depends on `ulimit -v`), so runs can be compared.
    println!("engine: {:?}\n", sandgym_core::engine_info().unwrap());

    // --- batched stepping: sandbox vs native -------------------------------------------------
    let action = calc_action();
    let actions = vec![action.clone(); envs];
    let mut vec = VecEnv::new("countdown", envs, options()).unwrap();
    let seeds: Vec<u64> = (0..envs as u64).collect();
    let sandboxed = median(repeats, || {
        // Episodes last up to 1,000 turns: start each repetition from a fresh reset.
        vec.reset(&seeds, None).unwrap();
        let start = Instant::now();
        for _ in 0..rounds {
            for result in vec.step(&actions).unwrap() {
                black_box(result.unwrap());
            }
        }
        start.elapsed()
    });
    let native = median(repeats, || {
        let mut natives: Vec<Native> = (0..envs as u64).map(Native::new).collect();
        let start = Instant::now();
        for _ in 0..rounds {
            natives.par_iter_mut().for_each(|env| {
                black_box(env.step(&action));
            });
        }
        start.elapsed()
    });
    let steps = (envs * rounds) as u64;
    let sandboxed_rate = steps as f64 / sandboxed.as_secs_f64();
    let native_rate = steps as f64 / native.as_secs_f64();
    println!("countdown steps, {envs} envs x {rounds} rounds, rayon:");
    println!("  sandboxed VecEnv  {sandboxed_rate:>12.0} steps/s");
    println!("  native (no sandbox) {native_rate:>10.0} steps/s");
    println!(
        "  sandbox cost: {:.2}x native time\n",
        native_rate / sandboxed_rate
    );

    // --- single-thread latency -----------------------------------------------------------------
    let mut env = registry::make("countdown", options()).unwrap();
    let n = if quick { 200 } else { 900 };
    let sandbox_step = median(repeats, || {
        env.reset(1, None).unwrap();
        let start = Instant::now();
        for _ in 0..n {
            black_box(env.step(&action).unwrap());
        }
        start.elapsed()
    });
    let native_step = median(repeats, || {
        let mut one = Native::new(1);
        let start = Instant::now();
        for _ in 0..n {
            black_box(one.step(&action));
        }
        start.elapsed()
    });
    println!("single-thread step latency:");
    println!("  sandboxed {:>8.2} us", per_op(sandbox_step, n) / 1e3);
    println!("  native    {:>8.2} us", per_op(native_step, n) / 1e3);
    println!(
        "  ratio     {:>8.2}x\n",
        sandbox_step.as_secs_f64() / native_step.as_secs_f64()
    );

    // --- instantiate, snapshot, restore, fork -----------------------------------------------------
    let program = registry::program("countdown").unwrap();
    let k = if quick { 200 } else { 2_000 };
    let instantiate = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k {
            black_box(sandgym_core::Env::new("countdown-v0", &program, options()).unwrap());
        }
        start.elapsed()
    });
    env.reset(2, None).unwrap();
    for expression in ["1+2", "3*4", "100/4"] {
        env.step(&Action::tool("calc", &json!({ "expression": expression })))
            .unwrap();
    }
    let snapshot = env.snapshot().unwrap();
    let snap_time = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k {
            black_box(env.snapshot().unwrap());
        }
        start.elapsed()
    });
    let restore_time = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k {
            env.restore(&snapshot).unwrap();
        }
        start.elapsed()
    });
    let fork_time = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k {
            black_box(env.fork().unwrap());
        }
        start.elapsed()
    });
    let native_clone = median(repeats, || {
        let start = Instant::now();
        for _ in 0..k {
            // The native analogue of a fork: a fresh env replayed to the same state from reset.
            let mut replay = Native::new(2);
            for expression in ["1+2", "3*4", "100/4"] {
                black_box(replay.step(&Action::tool("calc", &json!({ "expression": expression }))));
            }
        }
        start.elapsed()
    });
    println!(
        "mid-episode state (countdown; snapshot {} KiB of {} KiB guest memory):",
        snapshot.memory_bytes() / 1024,
        env.memory_bytes() / 1024
    );
    println!(
        "  instantiate + configure  {:>8.2} us",
        per_op(instantiate, k) / 1e3
    );
    println!(
        "  snapshot                 {:>8.2} us",
        per_op(snap_time, k) / 1e3
    );
    println!(
        "  restore (in place)       {:>8.2} us",
        per_op(restore_time, k) / 1e3
    );
    println!(
        "  fork (new instance)      {:>8.2} us",
        per_op(fork_time, k) / 1e3
    );
    println!(
        "  native replay from reset {:>8.2} us  (baseline for fork)",
        per_op(native_clone, k) / 1e3
    );

    println!();
    if core_only {
        return;
    }
    for spec in registry::list().unwrap() {
        if !["countdown-v0", "parity-v0"].contains(&spec.id.as_str()) {
            env_section(&spec.id, repeats, quick);
        }
    }
}
