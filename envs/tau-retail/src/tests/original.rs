//! With the original data (skipped when absent): the v1 retail DB and all 114 tau2 retail tasks.

use std::collections::BTreeMap;

use sandgym_sdk::{Env, Value, json};

use super::common::*;
use crate::TauRetail;
use crate::tools;

fn v1_env(dir: &std::path::Path) -> TauRetail {
    env_with(json!({"db": v1_db(dir)}))
}

#[test]
fn v1_db_loads_with_the_original_counts() {
    let Some(dir) = tau_data_dir() else { return };
    let mut env = v1_env(&dir);
    let db = env.db();
    assert_eq!(db.users.len(), 500);
    assert_eq!(db.orders.len(), 1000);
    assert_eq!(db.products.len(), 50);
    let variants: usize = db.products.values().map(|p| p.variants.len()).sum();
    assert_eq!(variants, 591);
    let counts = db.status_counts();
    let want: BTreeMap<String, usize> = [
        ("pending", 423),
        ("delivered", 373),
        ("processed", 102),
        ("cancelled", 102),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, want);
}

#[test]
fn all_tau2_retail_tasks_solve_with_the_expert() {
    let Some(dir) = tau_data_dir() else { return };
    let tasks = read_json(dir.join("tau2/retail/tasks.json"));
    let tasks = tasks.as_array().expect("a list of tasks");
    assert_eq!(tasks.len(), 114);
    let mut env = v1_env(&dir);
    let mut failed_writes = Vec::new();
    for task in tasks {
        let id = task["id"].as_str().unwrap().to_string();
        let reset = env
            .reset(0, Some(task.clone()))
            .unwrap_or_else(|e| panic!("task {id}: {e}"));
        assert_eq!(reset.task_id, format!("tau-retail-tau2-{id}"));
        for (i, step) in env.gold_steps().iter().enumerate() {
            if step.error && tools::is_write(&step.name) {
                failed_writes.push(format!(
                    "task {id} action {i} {}: {}",
                    step.name, step.result
                ));
            }
        }
        let (out, _) = run_expert(&mut env);
        assert!(out.terminated, "task {id}: {:?}", out.info);
        assert_eq!(out.reward, 1.0, "task {id}: {}", out.info);
        assert!(out.success);
        // Replaying the task's own JSON gives the same id.
        let again = env.reset(0, Some(reset.task.clone())).unwrap();
        assert_eq!(again.task_id, reset.task_id);
    }
    // Two gold writes fail in the original too (tau2's tools make the same checks): task 64 exchanges
    // a pending order (its next action, modify-items, is the one that applies), and task 105 pays an
    // exchange price difference with a gift card whose balance (17) does not cover it.
    assert_eq!(
        failed_writes,
        [
            "task 64 action 6 exchange_delivered_order_items: Error: non-delivered order cannot be exchanged",
            "task 105 action 0 exchange_delivered_order_items: Error: insufficient gift card balance to pay for the price difference",
        ]
    );
}

#[test]
fn generated_tasks_work_on_the_v1_db() {
    let Some(dir) = tau_data_dir() else { return };
    let mut env = v1_env(&dir);
    for seed in 0..40 {
        env.reset(seed, None).unwrap();
        let (out, _) = run_expert(&mut env);
        assert_eq!(out.reward, 1.0, "seed {seed}: {}", out.info);
    }
}

#[test]
fn v1_reads_answer_like_json_dumps() {
    let Some(dir) = tau_data_dir() else { return };
    let mut env = v1_env(&dir);
    env.reset(0, Some(json!({"instruction": "x", "actions": []})))
        .unwrap();
    let user = env.run_tool(
        tools::GET_USER_DETAILS,
        &json!({"user_id": "noah_brown_6181"}),
    );
    let parsed: Value = serde_json::from_str(&user).unwrap();
    let users = read_json(dir.join("v1/retail/users.json"));
    assert_eq!(parsed, users["noah_brown_6181"]);
    assert!(
        user.starts_with(r#"{"name": {"first_name": "Noah", "last_name": "Brown"}, "address": "#),
        "{user}"
    );
    let found = env.run_tool(
        tools::FIND_USER_ID_BY_EMAIL,
        &json!({"email": "NOAH.BROWN7922@example.com"}),
    );
    assert_eq!(found, "noah_brown_6181");
    let types = env.run_tool(tools::LIST_ALL_PRODUCT_TYPES, &json!({}));
    let types: serde_json::Map<String, Value> = serde_json::from_str(&types).unwrap();
    assert_eq!(types.len(), 50);
}
