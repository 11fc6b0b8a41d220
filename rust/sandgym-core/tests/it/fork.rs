//! Snapshot, restore and fork: byte-identical continuations and exact rewinds.

use sandgym_core::{Action, Env, EnvOptions, registry};
use serde_json::json;

fn outputs(env: &mut Env, actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match env.step(a) {
            Ok(out) => serde_json::to_string(&out).unwrap(),
            Err(err) => format!("error: {err}"),
        })
        .collect()
}

fn calc(expression: &str) -> Action {
    Action::tool("calc", &json!({ "expression": expression }))
}

fn script() -> Vec<Action> {
    vec![
        calc("1+2"),
        calc("7*6"),
        Action::text("thinking"),
        calc("(3"),
        calc("100/7"),
        calc("2*2*2"),
    ]
}

#[test]
fn fork_and_original_continue_identically() {
    let mut env = registry::make("countdown", EnvOptions::default()).unwrap();
    env.reset(11, None).unwrap();
    outputs(&mut env, &script()[..2]);
    let mut fork = env.fork().unwrap();
    let a = outputs(&mut env, &script());
    let b = outputs(&mut fork, &script());
    assert_eq!(a, b);
    // Also after a reset: both reseed identically.
    assert_eq!(
        serde_json::to_string(&env.reset(3, None).unwrap()).unwrap(),
        serde_json::to_string(&fork.reset(3, None).unwrap()).unwrap()
    );
}

#[test]
fn restore_rewinds_exactly() {
    let mut env = registry::make("countdown", EnvOptions::default()).unwrap();
    env.reset(12, None).unwrap();
    outputs(&mut env, &script()[..1]);
    let snapshot = env.snapshot().unwrap();
    let first = outputs(&mut env, &script());
    // Diverge, grow state, then rewind.
    outputs(&mut env, &[calc("1+1"), calc("2+2")]);
    env.restore(&snapshot).unwrap();
    assert_eq!(outputs(&mut env, &script()), first);
    // Restoring an old snapshot after the episode ended resumes it.
    env.restore(&snapshot).unwrap();
    assert!(env.is_running());
    assert_eq!(outputs(&mut env, &script()), first);
}

#[test]
fn fork_from_snapshot_matches_and_is_independent() {
    let mut env = registry::make("parity", EnvOptions::default()).unwrap();
    env.reset(4, None).unwrap();
    let snapshot = env.snapshot().unwrap();
    let expert = env.expert().unwrap().unwrap();
    let mut forks: Vec<Env> = (0..4).map(|_| env.fork_from(&snapshot).unwrap()).collect();
    let original = serde_json::to_string(&env.step(&expert).unwrap()).unwrap();
    for fork in &mut forks {
        assert_eq!(
            serde_json::to_string(&fork.step(&expert).unwrap()).unwrap(),
            original
        );
    }
    // Stepping the forks did not touch the snapshot.
    env.restore(&snapshot).unwrap();
    assert_eq!(
        serde_json::to_string(&env.step(&expert).unwrap()).unwrap(),
        original
    );
}

#[test]
fn snapshot_is_small() {
    let mut env = registry::make("countdown", EnvOptions::default()).unwrap();
    env.reset(0, None).unwrap();
    let snapshot = env.snapshot().unwrap();
    assert!(
        snapshot.memory_bytes() <= 4 << 20,
        "snapshot holds {} bytes",
        snapshot.memory_bytes()
    );
}

/// tau-bench envs load MiBs of database in `configure`; pre-initialization bakes it into the module's
/// copy-on-write image, so a mid-episode snapshot holds only what the episode wrote.
#[test]
fn large_configured_state_is_shared_not_copied() {
    for id in ["tau-retail", "tau-airline"] {
        let mut env = registry::make(id, EnvOptions::default()).unwrap();
        env.reset(0, None).unwrap();
        for _ in 0..3 {
            let action = env.expert().unwrap().unwrap();
            env.step(&action).unwrap();
        }
        let snapshot = env.snapshot().unwrap();
        assert!(
            snapshot.memory_bytes() * 4 < env.memory_bytes(),
            "{id}: snapshot holds {} of {} bytes",
            snapshot.memory_bytes(),
            env.memory_bytes()
        );
    }
}

/// Snapshots hold only written pages and restores rewrite only pages either side wrote: whatever the
/// mix of in-place restores and fresh forks, the state digest and every later output must match.
#[test]
fn sparse_snapshots_restore_the_exact_state() {
    for id in ["countdown", "tau-retail", "tau-airline"] {
        let mut env = registry::make(id, EnvOptions::default()).unwrap();
        env.reset(5, None).unwrap();
        // A read-only first move (countdown's expert would solve it in one step).
        env.step(&Action::text("let me look")).unwrap();
        let digest = env.state_digest();
        let snapshot = env.snapshot().unwrap();
        let mut continuation = Vec::new();
        let mut later = Vec::new();
        while env.is_running() && later.len() < 4 {
            let Some(action) = env.expert().unwrap() else {
                break;
            };
            later.push(action.clone());
            continuation.push(serde_json::to_string(&env.step(&action).unwrap()).unwrap());
        }
        assert_ne!(env.state_digest(), digest, "{id}: the episode moved on");
        for round in 0..3 {
            // Diverge with a different action, then rewind in place.
            if env.is_running() {
                let _ = env.step(&Action::text(format!("round {round}")));
            }
            env.restore(&snapshot).unwrap();
            assert_eq!(
                env.state_digest(),
                digest,
                "{id}: in-place restore, round {round}"
            );
            let mut fork = env.fork().unwrap();
            assert_eq!(fork.state_digest(), digest, "{id}: fork, round {round}");
            assert_eq!(
                outputs(&mut env, &later),
                continuation,
                "{id}: after restore"
            );
            assert_eq!(outputs(&mut fork, &later), continuation, "{id}: fork");
        }
    }
}
