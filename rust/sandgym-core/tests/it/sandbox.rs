//! Bundled envs through the real sandbox: info, determinism, configuration, module cache.

use sandgym_core::{Action, EnvOptions, registry};
use serde_json::json;

use crate::common::play_expert;

#[test]
fn bundled_envs_have_info_and_tools() {
    let specs = registry::list().unwrap();
    let ids: Vec<_> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids[..2], ["countdown-v0", "parity-v0"]);
    assert!(
        ids.contains(&"tau-retail-v0") && ids.contains(&"tau-airline-v0"),
        "{ids:?}"
    );
    for spec in specs {
        assert_eq!(spec.info.abi_version, sandgym_core::abi::ABI_VERSION);
        assert!(!spec.info.tools.is_empty());
        assert!(spec.info.capabilities.expert);
        for tool in &spec.info.tools {
            assert_eq!(tool["type"], "function");
            assert!(tool["function"]["name"].is_string());
        }
    }
}

#[test]
fn same_seed_same_bytes() {
    for id in ["countdown-v0", "parity-v0"] {
        let mut a = registry::make(id, EnvOptions::default()).unwrap();
        let mut b = registry::make(id, EnvOptions::default()).unwrap();
        for seed in [0, 1, 99] {
            let ra = a.reset(seed, None).unwrap();
            let rb = b.reset(seed, None).unwrap();
            assert_eq!(
                serde_json::to_string(&ra).unwrap(),
                serde_json::to_string(&rb).unwrap()
            );
            let sa = a.step(&Action::text("hello")).unwrap();
            let sb = b.step(&Action::text("hello")).unwrap();
            assert_eq!(
                serde_json::to_string(&sa).unwrap(),
                serde_json::to_string(&sb).unwrap()
            );
        }
        let r0 = a.reset(0, None).unwrap();
        let r1 = a.reset(1, None).unwrap();
        assert_ne!(
            r0.task_id, r1.task_id,
            "{id}: different seeds give different tasks"
        );
    }
}

#[test]
fn expert_solves_and_replayed_task_matches() {
    for id in ["countdown-v0", "parity-v0"] {
        let mut env = registry::make(id, EnvOptions::default()).unwrap();
        for seed in 0..20 {
            let reset = env.reset(seed, None).unwrap();
            let out = play_expert(&mut env);
            assert!(out.success && out.reward > 0.0, "{id} seed {seed}");
            let replay = env.reset(seed + 1000, Some(reset.task.clone())).unwrap();
            assert_eq!(
                replay.task_id, reset.task_id,
                "{id}: replaying the task JSON gives the same task"
            );
        }
    }
}

#[test]
fn step_before_reset_and_after_end_needs_reset() {
    let mut env = registry::make("parity", EnvOptions::default()).unwrap();
    assert_eq!(
        env.step(&Action::text("x")).unwrap_err().kind(),
        "reset_needed"
    );
    env.reset(0, None).unwrap();
    play_expert(&mut env);
    assert_eq!(
        env.step(&Action::text("x")).unwrap_err().kind(),
        "reset_needed"
    );
}

#[test]
fn bad_config_and_bad_task_are_rejected_with_a_reason() {
    let options = EnvOptions {
        config: json!({"no_such_knob": 1}),
        ..EnvOptions::default()
    };
    let err = registry::make("countdown", options).err().unwrap();
    assert_eq!(err.kind(), "rejected");
    assert!(err.to_string().contains("no_such_knob"), "{err}");
    let mut env = registry::make("countdown", EnvOptions::default()).unwrap();
    let err = env.reset(0, Some(json!({"numbers": "seven"}))).unwrap_err();
    assert_eq!(err.kind(), "rejected", "{err}");
    // A rejected task does not break the env.
    env.reset(0, None).unwrap();
}

#[test]
fn format_errors_and_bad_calls_are_observations() {
    let mut env = registry::make("countdown", EnvOptions::default()).unwrap();
    env.reset(5, None).unwrap();
    let bad = sandgym_core::parse::parse_action("<tool_call>{not json</tool_call>");
    let out = env.step(&bad).unwrap();
    assert!(
        out.messages[0].content.starts_with("Format error"),
        "{:?}",
        out.messages
    );
    assert!(!out.terminated);
    let unknown = Action::tool("launch", &json!({}));
    let out = env.step(&unknown).unwrap();
    assert!(
        out.messages[0].content.starts_with("Error"),
        "{:?}",
        out.messages
    );
    assert_eq!(out.messages[0].tool_call_id.as_deref(), Some("call_0"));
}

#[test]
fn env_loaded_by_path_works_like_bundled() {
    // `template` is not bundled: it loads only by path, like any user's module.
    for name in ["countdown", "template"] {
        let path = crate::common::guest(name);
        let mut env = registry::make(&path, EnvOptions::default()).unwrap();
        assert_eq!(env.id(), path);
        for seed in 0..5 {
            env.reset(seed, None).unwrap();
            assert!(play_expert(&mut env).success, "{name} seed {seed}");
        }
    }
}
