//! User-simulator mode on the original data: every tau2 airline task on the v1 DB, played by the
//! expert agent against the scripted customer. Skips (passes with a note) when the files are absent.

use std::path::PathBuf;

use sandgym_sdk::{Env, Value, json};
use tau_airline::TauAirline;

fn data_dir() -> PathBuf {
    match std::env::var_os("SANDGYM_TAU_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tau-bench"),
    }
}

fn read_json(path: PathBuf) -> Option<Value> {
    let text = std::fs::read_to_string(&path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn all_tau2_airline_tasks_solve_with_the_scripted_customer() {
    let dir = data_dir();
    let mut db = serde_json::Map::new();
    for table in ["users", "flights", "reservations"] {
        let Some(value) = read_json(dir.join(format!("v1/airline/{table}.json"))) else {
            eprintln!(
                "original tau-bench data not found under {}; skipping",
                dir.display()
            );
            return;
        };
        db.insert(table.into(), value);
    }
    let Some(Value::Array(tasks)) = read_json(dir.join("tau2/airline/tasks.json")) else {
        eprintln!(
            "tau2 airline tasks not found under {}; skipping",
            dir.display()
        );
        return;
    };
    let mut env = TauAirline::default();
    env.configure(&json!({"db": db, "mode": "user"})).unwrap();
    for task in &tasks {
        let id = task["id"].as_str().unwrap();
        let reset = env.reset(0, Some(task.clone())).unwrap();
        assert!(reset.user_turn.is_some(), "task {id}");
        let mut done = None;
        for _ in 0..200 {
            let action = env.expert().expect("a move on either side's turn");
            let out = env.step(&action);
            if out.terminated || out.truncated {
                done = Some(out);
                break;
            }
        }
        let out = done.unwrap_or_else(|| panic!("task {id} did not end"));
        assert!(out.terminated, "task {id}: {}", out.info);
        assert_eq!(out.reward, 1.0, "task {id}: {}", out.info);
    }
}
