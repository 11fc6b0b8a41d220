//! Tests against the original tau-bench data (v1 airline DB, tau2 airline tasks), read from
//! `SANDGYM_TAU_DATA` or `<repo>/../shared/data/tau-bench`. Each test skips (passes with a note) when
//! the files are absent; the data is never copied into the repository.

use std::path::PathBuf;
use std::sync::OnceLock;

use sandgym_sdk::{Action, Env, Value, json};
use tau_airline::TauAirline;
use tau_airline::db::Db;
use tau_airline::tools;

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

/// `{"users", "flights", "reservations"}` of the v1 airline DB, or `None` when the files are absent.
fn v1_db_json() -> Option<&'static Value> {
    static DB: OnceLock<Option<Value>> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = data_dir().join("v1/airline");
        let mut db = serde_json::Map::new();
        for table in ["users", "flights", "reservations"] {
            db.insert(table.into(), read_json(dir.join(format!("{table}.json")))?);
        }
        Some(Value::Object(db))
    })
    .as_ref()
}

fn tau2_tasks() -> Option<Vec<Value>> {
    match read_json(data_dir().join("tau2/airline/tasks.json"))? {
        Value::Array(tasks) => Some(tasks),
        other => panic!("tasks.json is not a list: {other}"),
    }
}

macro_rules! require {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => {
                eprintln!(
                    "original tau-bench data not found under {}; skipping",
                    data_dir().display()
                );
                return;
            }
        }
    };
}

fn env_with_v1(db: &Value) -> TauAirline {
    let mut env = TauAirline::default();
    env.configure(&json!({"db": db})).expect("the v1 DB loads");
    env
}

#[test]
fn v1_db_loads_with_the_original_counts() {
    let json = require!(v1_db_json());
    let db = Db::from_json(json).unwrap();
    assert_eq!(db.users.len(), 500);
    assert_eq!(db.flights.len(), 300);
    assert_eq!(db.reservations.len(), 2000);
    assert_eq!(db.airports().len(), 20);
    // Every record reads back as exactly the original record (fields, values, int/float kinds).
    let mut db = db;
    for (id, user) in json["users"].as_object().unwrap() {
        let text = tools::call(
            &mut db,
            "get_user_details",
            json!({"user_id": id}).as_object().unwrap(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            &serde_json::from_str::<Value>(&text).unwrap(),
            user,
            "user {id}"
        );
    }
    for (id, r) in json["reservations"].as_object().unwrap() {
        let args = json!({"reservation_id": id});
        let text = tools::call(
            &mut db,
            "get_reservation_details",
            args.as_object().unwrap(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            &serde_json::from_str::<Value>(&text).unwrap(),
            r,
            "reservation {id}"
        );
    }
    assert_eq!(db.to_json(), *json);
}

#[test]
fn v1_searches_behave_like_the_original() {
    let json = require!(v1_db_json());
    let mut db = Db::from_json(json).unwrap();
    let mut call = |name: &str, args: Value| -> Value {
        let text = tools::call(&mut db, name, args.as_object().unwrap())
            .unwrap()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    // A direct search lists the available flights of the route on the date, without `dates`.
    let direct = call(
        "search_direct_flight",
        json!({"origin": "JFK", "destination": "SEA", "date": "2024-05-20"}),
    );
    for f in direct.as_array().unwrap() {
        assert_eq!(f["origin"], "JFK");
        assert_eq!(f["status"], "available");
        assert!(f.get("dates").is_none());
    }
    // One-stop legs connect, and second legs after an overnight first leg are dated the next day.
    let mut pairs = 0;
    for date in ["2024-05-20", "2024-05-24", "2024-05-28"] {
        for dest in ["SEA", "SFO", "LAX", "MIA"] {
            let found = call(
                "search_onestop_flight",
                json!({"origin": "JFK", "destination": dest, "date": date}),
            );
            for pair in found.as_array().unwrap() {
                pairs += 1;
                let (a, b) = (&pair[0], &pair[1]);
                assert_eq!(a["destination"], b["origin"]);
                assert_eq!(a["date"], date);
                let overnight = a["scheduled_arrival_time_est"]
                    .as_str()
                    .unwrap()
                    .contains("+1");
                assert_eq!(overnight, b["date"] != date);
            }
        }
    }
    assert!(pairs > 0);
    // Statuses.
    assert_eq!(
        tools::call(
            &mut db,
            "get_flight_status",
            json!({"flight_number": "HAT001", "date": "2024-05-03"})
                .as_object()
                .unwrap()
        ),
        Some(Ok("cancelled".to_string()))
    );
}

fn play_expert(env: &mut TauAirline) -> (f64, Value, usize) {
    for n in 1..=100 {
        let action: Action = env.expert().expect("the expert has a move");
        let out = env.step(&action);
        if out.terminated || out.truncated {
            return (out.reward, out.info, n);
        }
    }
    panic!("the expert did not finish");
}

#[test]
fn all_tau2_airline_tasks_are_solved_by_the_expert() {
    let json = require!(v1_db_json());
    let tasks = require!(tau2_tasks());
    assert_eq!(tasks.len(), 50);
    let mut env = env_with_v1(json);
    let mut writes = 0;
    for task in &tasks {
        let id = task["id"].as_str().unwrap();
        let out = env.reset(0, Some(task.clone())).unwrap();
        assert_eq!(out.task_id, format!("tau-airline-tau2-{id}"));
        assert!(out.messages[1].content.contains("Request: "));
        // Every gold action succeeds on the v1 DB: reads and writes alike.
        let mut db = env.initial_db().clone();
        for action in tau_airline::gold_actions(&env) {
            let args = action.arguments.as_object().unwrap();
            match tools::call(&mut db, &action.name, args) {
                Some(Ok(_)) => {
                    if tools::WRITE_TOOLS.contains(&action.name.as_str()) {
                        writes += 1;
                    }
                }
                Some(Err(e)) => panic!("task {id}: gold `{}` failed: {e}", action.name),
                None => assert!(
                    ["calculate", "transfer_to_human_agents"].contains(&action.name.as_str()),
                    "task {id}: {}",
                    action.name
                ),
            }
        }
        let (gold, errors) = env.gold_db();
        assert_eq!(errors, 0, "task {id}");
        assert_eq!(gold, &db, "task {id}");
        let (reward, info, steps) = play_expert(&mut env);
        assert_eq!(reward, 1.0, "task {id}: {info}");
        assert_eq!(info["gold_errors"], 0);
        assert!(steps <= 30, "task {id} needs {steps} turns");
    }
    assert_eq!(writes, 49, "the 50 tasks hold 49 gold writes");
}

#[test]
fn tau2_tasks_fail_when_the_agent_does_nothing() {
    let json = require!(v1_db_json());
    let tasks = require!(tau2_tasks());
    let mut env = env_with_v1(json);
    let mut failed = 0;
    for task in &tasks {
        env.reset(0, Some(task.clone())).unwrap();
        let out = env.step(&Action::tool("end_conversation", &json!({})));
        let has_write = task["evaluation_criteria"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| tools::WRITE_TOOLS.contains(&a["name"].as_str().unwrap()));
        let has_outputs = !task["evaluation_criteria"]["communicate_info"]
            .as_array()
            .unwrap()
            .is_empty();
        assert_eq!(
            out.reward == 0.0,
            has_write || has_outputs,
            "task {}",
            task["id"]
        );
        if out.reward == 0.0 {
            failed += 1;
        }
    }
    assert!(failed >= 25, "{failed}");
}

#[test]
fn generated_tasks_work_on_the_v1_db() {
    let json = require!(v1_db_json());
    let mut env = env_with_v1(json);
    for seed in 0..40 {
        env.reset(seed, None).unwrap();
        let (reward, info, _) = play_expert(&mut env);
        assert_eq!(reward, 1.0, "seed {seed}: {info}");
    }
}
