//! Generated DBs and tasks: the expert solves 300 seeds, perturbed endings fail with a reason, and the
//! same seed gives the same task and DB bytes.

use std::collections::BTreeMap;

use sandgym_sdk::{Env, json};
use tau_common::{END_CONVERSATION, GoldAction, RESPOND, TauTask, expert_plan};

use super::common::*;
use crate::gen_db::{GenConfig, generate_db};
use crate::gen_task::KINDS;
use crate::tools;

#[test]
fn generated_db_has_the_original_shape() {
    let db = generate_db(GenConfig {
        seed: 0,
        users: 200,
        products: 30,
    });
    db.validate().unwrap();
    assert_eq!(db.users.len(), 200);
    assert_eq!(db.products.len(), 30);
    assert!(db.orders.len() > 250, "{}", db.orders.len());
    let counts = db.status_counts();
    for status in crate::db::STATUSES {
        assert!(counts.get(status).copied().unwrap_or(0) > 10, "{counts:?}");
    }
    let mut sources = BTreeMap::new();
    for user in db.users.values() {
        assert!(!user.payment_methods.is_empty());
        for pm in user.payment_methods.values() {
            *sources.entry(pm.source.clone()).or_insert(0) += 1;
            if pm.source == "gift_card" {
                assert!(
                    pm.balance.unwrap().is_int(),
                    "gift card balances are ints, as in v1"
                );
            }
        }
        for order_id in &user.orders {
            assert!(db.orders.contains_key(order_id));
        }
    }
    assert_eq!(sources.len(), 3, "{sources:?}");
    for product in db.products.values() {
        assert!(product.variants.values().filter(|v| v.available).count() >= 2);
    }
    let unavailable = db
        .products
        .values()
        .flat_map(|p| p.variants.values())
        .filter(|v| !v.available)
        .count();
    assert!(unavailable > 10, "{unavailable}");
    // Same knobs, same DB; another seed, another DB.
    let again = generate_db(GenConfig {
        seed: 0,
        users: 200,
        products: 30,
    });
    assert_eq!(db, again);
    let other = generate_db(GenConfig {
        seed: 1,
        users: 200,
        products: 30,
    });
    assert_ne!(db, other);
}

#[test]
fn expert_solves_300_generated_tasks() {
    let mut env = env_with(json!({}));
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut splits: BTreeMap<String, usize> = BTreeMap::new();
    let mut with_outputs = 0;
    for seed in 0..300 {
        let reset = env.reset(seed, None).unwrap();
        assert!(reset.task_id.starts_with("tau-retail-generated-"));
        let task = TauTask::from_json(&reset.task).unwrap();
        *kinds
            .entry(task.meta["kind"].as_str().unwrap().to_string())
            .or_default() += 1;
        *splits.entry(task.split.clone().unwrap()).or_default() += 1;
        if !task.outputs.is_empty() {
            with_outputs += 1;
        }
        assert!(
            reset.info["gold_errors"].as_array().unwrap().is_empty(),
            "seed {seed}: {}",
            reset.info
        );
        let (out, _) = run_expert(&mut env);
        assert!(out.terminated && out.success, "seed {seed}: {}", out.info);
        assert_eq!(out.reward, 1.0);
        assert_eq!(out.info["reason"], "solved");
        assert_eq!(out.info["agent_db_hash"], out.info["gold_db_hash"]);
    }
    assert_eq!(kinds.len(), KINDS.len(), "{kinds:?}");
    assert!(splits["test"] > 30 && splits["train"] > 200, "{splits:?}");
    assert!(with_outputs > 20, "{with_outputs}");
}

/// Plays `plan` one call per turn and returns the final step.
fn play(env: &mut crate::TauRetail, plan: &[GoldAction]) -> sandgym_sdk::StepOutput {
    let mut last = None;
    for action in plan {
        let out = env.step(&action.to_action());
        let done = out.terminated || out.truncated;
        last = Some(out);
        if done {
            break;
        }
    }
    last.expect("a non-empty plan")
}

#[test]
fn perturbed_endings_fail_with_a_reason() {
    let mut env = env_with(json!({}));
    let mut wrong_outputs_checked = 0;
    for seed in 0..100 {
        let reset = env.reset(seed, None).unwrap();
        let task = TauTask::from_json(&reset.task).unwrap();
        let plan = expert_plan(&task);
        // Skip the last write.
        let last_write = plan.iter().rposition(|a| tools::is_write(&a.name)).unwrap();
        let mut skipped = plan.clone();
        skipped.remove(last_write);
        let out = play(&mut env, &skipped);
        assert!(out.terminated, "seed {seed}");
        assert_eq!(out.reward, 0.0, "seed {seed}");
        assert_eq!(out.info["db_match"], false);
        assert!(
            out.info["reason"]
                .as_str()
                .unwrap()
                .starts_with("db mismatch"),
            "{}",
            out.info
        );
        assert_ne!(out.info["agent_db_hash"], out.info["gold_db_hash"]);
        // Say something wrong instead of the outputs.
        if !task.outputs.is_empty() {
            env.reset(seed, None).unwrap();
            let wrong: Vec<GoldAction> = plan
                .iter()
                .map(|a| {
                    if a.name == RESPOND {
                        GoldAction::new(RESPOND, json!({"content": "All done, have a nice day."}))
                    } else {
                        a.clone()
                    }
                })
                .collect();
            let out = play(&mut env, &wrong);
            assert_eq!(out.reward, 0.0, "seed {seed}");
            assert_eq!(out.info["reason"], "outputs missing");
            assert_eq!(out.info["outputs_missing"], json!(task.outputs));
            wrong_outputs_checked += 1;
        }
    }
    assert!(wrong_outputs_checked > 5);
}

#[test]
fn ending_early_fails_and_repeating_a_write_is_harmless() {
    let mut env = env_with(json!({}));
    env.reset(3, None).unwrap();
    let out = env.step(&act(END_CONVERSATION, json!({})));
    assert!(out.terminated);
    assert_eq!(out.reward, 0.0);
    assert_eq!(out.info["ended_by"], "end_conversation");
}

#[test]
fn same_seed_same_task_and_db_bytes() {
    let run = |seed: u64| {
        let mut env = env_with(json!({"seed": 5, "users": 80, "products": 12}));
        let reset = env.reset(seed, None).unwrap();
        let before = env.agent_db_json().unwrap();
        let (out, actions) = run_expert(&mut env);
        (
            serde_json::to_string(&reset).unwrap(),
            before,
            env.agent_db_json().unwrap(),
            serde_json::to_string(&out).unwrap(),
            actions,
        )
    };
    for seed in [0, 1, 17, 12345] {
        assert_eq!(run(seed), run(seed), "seed {seed}");
    }
    assert_ne!(run(0).0, run(1).0);
    // The DB knobs change the DB.
    let mut a = env_with(json!({"seed": 1}));
    let mut b = env_with(json!({"seed": 2}));
    assert_ne!(a.db(), b.db());
}

#[test]
fn a_generated_task_replays_from_its_json() {
    let mut env = env_with(json!({}));
    let first = env.reset(42, None).unwrap();
    let again = env.reset(7, Some(first.task.clone())).unwrap();
    assert_eq!(again.task_id, first.task_id);
    assert_eq!(again.task, first.task);
    assert_eq!(again.messages, first.messages);
    let (out, _) = run_expert(&mut env);
    assert_eq!(out.reward, 1.0);
}
