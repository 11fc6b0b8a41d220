//! The bundled reasoning suite through the sandbox: every task's expert solves a sample of seeds in the
//! wasm guest, the default mix covers every task, forks continue interactive tasks, and a bad config
//! is refused with the knob's name.

use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::{EnvOptions, policy, registry};
use serde_json::{Value, json};

const SEEDS_PER_TASK: u64 = 25;

fn reasoning(config: Value) -> sandgym_core::Env {
    registry::make(
        "reasoning",
        EnvOptions {
            config,
            ..EnvOptions::default()
        },
    )
    .unwrap()
}

fn task_names() -> Vec<String> {
    let env = reasoning(Value::Null);
    assert_eq!(env.id(), "reasoning-v0");
    let default_config = env.info().default_config.as_object().unwrap();
    let names: Vec<String> = default_config
        .iter()
        .filter(|(_, value)| value.is_object())
        .map(|(name, _)| name.clone())
        .collect();
    assert!(names.len() >= 16, "{names:?}");
    names
}

/// Plays the expert to the end of the episode (interactive tasks take many turns).
fn play_expert(env: &mut sandgym_core::Env) -> sandgym_core::StepOutput {
    loop {
        let action = env.expert().unwrap().expect("an expert move while running");
        let out = env.step(&action).unwrap();
        if out.terminated || out.truncated {
            return out;
        }
    }
}

#[test]
fn every_task_expert_succeeds_in_the_sandbox() {
    for name in task_names() {
        let mut env = reasoning(json!({"task": name, "difficulty": 2}));
        for seed in 0..SEEDS_PER_TASK {
            let reset = env.reset(seed, None).unwrap();
            assert_eq!(reset.task["task"], json!(name));
            assert!(!env.actions().unwrap().is_empty(), "{name} seed {seed}");
            let out = play_expert(&mut env);
            assert!(
                out.success && out.reward == 1.0,
                "{name} seed {seed}: {out:?}"
            );
        }
    }
}

#[test]
fn expert_collection_over_the_default_mix_succeeds() {
    let plan = collect::plan(&["reasoning-v0".to_string()], 64, 0, None);
    let rows = std::sync::Mutex::new(Vec::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    let summary = collect::collect(
        &plan,
        &policy::ExpertPolicy,
        &CollectOptions::default(),
        &sink,
        &|_| {},
    )
    .unwrap();
    assert_eq!(summary.episodes, 64);
    assert_eq!(summary.successes, 64);
    assert_eq!(summary.errors, 0);
}

#[test]
fn a_forked_maze_continues_independently() {
    let mut env = reasoning(json!({"task": "maze"}));
    env.reset(7, None).unwrap();
    let first = env.expert().unwrap().unwrap();
    env.step(&first).unwrap();
    let mut fork = env.fork().unwrap();
    let wrong = env
        .actions()
        .unwrap()
        .into_iter()
        .find(|a| Some(a) != env.expert().unwrap().as_ref());
    if let Some(wrong) = wrong {
        env.step(&wrong).unwrap();
    }
    let out = play_expert(&mut fork);
    assert!(out.success, "{out:?}");
    let out = play_expert(&mut env);
    assert!(out.success, "the expert recovers from a detour: {out:?}");
}

#[test]
fn a_bad_knob_is_refused_by_name() {
    let err = registry::make(
        "reasoning",
        EnvOptions {
            config: json!({"task": "gcd", "gcd": {"max_value": 0}}),
            ..EnvOptions::default()
        },
    )
    .err()
    .expect("a bad knob is refused");
    assert!(err.to_string().contains("gcd.max_value"), "{err}");
}
