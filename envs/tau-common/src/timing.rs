//! Native timing of tau-bench envs (reset, verify, whole expert episode), shared by the envs'
//! `examples/bench.rs`: on the generated DB and, when present, the original v1 DB with the tau2 tasks
//! (`SANDGYM_TAU_DATA` or `<repo>/../shared/data/tau-bench`; the data is never copied into the repo).
//! Host-only: guests never include it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sandgym_sdk::{Env, Value, json};

fn data_dir() -> PathBuf {
    match std::env::var_os("SANDGYM_TAU_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tau-bench"),
    }
}

fn read_json(path: PathBuf) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn ms(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e3 / n.max(1) as f64
}

/// Times `n` resets, then `n` expert episodes (reset, expert steps; the last step is the verify).
fn bench<E: Env>(label: &str, env: &mut E, tasks: &[Option<Value>], n: usize) {
    let task = |i: usize| tasks[i % tasks.len()].clone();
    let start = Instant::now();
    for i in 0..n {
        env.reset(i as u64, task(i)).expect("reset");
    }
    let reset = start.elapsed();
    let (mut verify, mut solved) = (Duration::ZERO, 0);
    let start = Instant::now();
    for i in 0..n {
        env.reset(i as u64, task(i)).expect("reset");
        while let Some(action) = env.expert() {
            let t = Instant::now();
            let out = env.step(&action);
            if out.terminated || out.truncated {
                verify += t.elapsed();
                solved += usize::from(out.success);
            }
        }
    }
    let episode = start.elapsed();
    println!(
        "{label}: reset {:.3} ms, verify {:.3} ms, expert episode {:.3} ms ({solved}/{n} solved)",
        ms(reset, n),
        ms(verify, n),
        ms(episode, n)
    );
}

/// Times an env natively on the generated DB and, when present, on the original v1 `domain` DB with the
/// tau2 tasks; `tables` are the DB's table names (the v1 file stems).
pub fn run<E: Env>(domain: &str, tables: &[&str]) {
    let n = 200;
    let mut env = E::default();
    let start = Instant::now();
    env.configure(&json!({})).expect("configure");
    println!("generated: configure {:.3} ms", ms(start.elapsed(), 1));
    bench("generated DB, generated tasks", &mut env, &[None], n);

    let dir = data_dir();
    let mut db = serde_json::Map::new();
    for table in tables {
        let Some(value) = read_json(dir.join(format!("v1/{domain}/{table}.json"))) else {
            println!("v1 data not found under {}; skipping", dir.display());
            return;
        };
        db.insert(table.to_string(), value);
    }
    let start = Instant::now();
    env.configure(&json!({ "db": db })).expect("configure v1");
    println!("v1: configure {:.3} ms", ms(start.elapsed(), 1));
    bench("v1 DB, generated tasks", &mut env, &[None], n);
    if let Some(Value::Array(tasks)) = read_json(dir.join(format!("tau2/{domain}/tasks.json"))) {
        let tasks: Vec<Option<Value>> = tasks.into_iter().map(Some).collect();
        bench("v1 DB, tau2 tasks", &mut env, &tasks, tasks.len());
    }
}
