//! The committed eval set matches its generator, and the expert solves every task in it through the
//! same JSON path the sandbox uses.

use std::path::Path;

use countdown::Countdown;
use sandgym_sdk::{Action, Envelope, Host, ResetOutput, StepOutput, json};

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/countdown/eval-v0.jsonl");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn committed_file_matches_generation() {
    assert_eq!(
        committed(),
        countdown::eval_v0_jsonl(),
        "regenerate with `cargo run --example make_eval --target x86_64-unknown-linux-gnu`"
    );
}

#[test]
fn expert_solves_every_eval_task() {
    let text = committed();
    let mut ids = std::collections::BTreeSet::new();
    for line in text.lines() {
        let task: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut host = Host::<Countdown>::default();
        let input = json!({"seed": 0, "task": task}).to_string();
        let reset: Result<ResetOutput, String> =
            serde_json::from_slice::<Envelope<ResetOutput>>(host.reset(input.as_bytes()))
                .unwrap()
                .into();
        let reset = reset.unwrap();
        assert!(
            ids.insert(reset.task_id.clone()),
            "duplicate {}",
            reset.task_id
        );
        let expert: Envelope<Option<Action>> = serde_json::from_slice(host.expert()).unwrap();
        let Envelope::Ok(Some(action)) = expert else {
            panic!("no expert action for {line}")
        };
        let input = serde_json::to_vec(&action).unwrap();
        let out: Result<StepOutput, String> =
            serde_json::from_slice::<Envelope<StepOutput>>(host.step(&input))
                .unwrap()
                .into();
        let out = out.unwrap();
        assert_eq!(out.reward, 1.0, "{line}: {:?}", out.info);
        assert!(out.terminated && out.success);
        // The solver alone (ignoring the shipped solution) also solves it.
        let task = countdown::Task::from_json(&task).unwrap();
        assert!(countdown::solver::solve(&task.numbers, task.target, false).is_some());
    }
    assert_eq!(ids.len(), 100);
}
