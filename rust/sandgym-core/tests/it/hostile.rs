//! Hostile guests: each misbehaviour gives its typed error and leaves the host (and the env) usable.

use sandgym_core::{Action, Env, Error, registry};
use serde_json::json;

use crate::common::{guest, tight};

fn hostile() -> Env {
    registry::make(&guest("hostile"), tight()).expect("hostile guest loads")
}

/// Resets into `mode`, steps once, returns the error; then checks the env recovers on the next reset.
fn fault(mode: &str) -> Error {
    let mut env = hostile();
    env.reset(1, Some(json!({"mode": mode})))
        .expect("reset behaves");
    let err = env
        .step(&Action::text("go"))
        .expect_err("the hostile step must fail");
    // The faulted instance is replaced at the next reset, and the env works again.
    env.reset(2, Some(json!({"mode": "ok"})))
        .expect("env recovers after a fault");
    let out = env.step(&Action::text("go")).expect("recovered env steps");
    assert!(out.terminated);
    err
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let err = fault("loop");
    assert_eq!(err.kind(), "out_of_fuel", "{err}");
}

#[test]
fn infinite_loop_hits_the_deadline_without_fuel_limit() {
    let mut options = tight();
    options.limits.fuel_per_call = u64::MAX;
    options.limits.deadline = std::time::Duration::from_millis(200);
    let mut env = registry::make(&guest("hostile"), options).unwrap();
    env.reset(1, Some(json!({"mode": "loop"}))).unwrap();
    let started = std::time::Instant::now();
    let err = env.step(&Action::text("go")).unwrap_err();
    assert_eq!(err.kind(), "deadline", "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let err = fault("membomb");
    assert_eq!(err.kind(), "memory_limit", "{err}");
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let err = fault("recursion");
    assert!(
        matches!(err.kind(), "stack_overflow" | "guest_trap"),
        "{err}"
    );
}

#[test]
fn panic_is_a_trap_with_stderr() {
    let err = fault("panic");
    assert_eq!(err.kind(), "guest_trap", "{err}");
    assert!(
        err.guest_stderr()
            .unwrap()
            .contains("hostile guest panicked on purpose"),
        "stderr: {:?}",
        err.guest_stderr()
    );
}

#[test]
fn huge_output_is_malformed_or_bounded() {
    let err = fault("bigout");
    assert!(
        matches!(err.kind(), "malformed_output" | "memory_limit"),
        "{err}"
    );
}

#[test]
fn invalid_json_and_utf8_and_pointers_are_malformed_output() {
    for mode in ["badjson", "badutf8", "badptr"] {
        let err = fault(mode);
        assert_eq!(err.kind(), "malformed_output", "{mode}: {err}");
    }
}

#[test]
fn clock_access_is_a_forbidden_call() {
    let err = fault("clock");
    assert_eq!(err.kind(), "forbidden_call", "{err}");
    assert!(err.to_string().contains("clock_time_get"), "{err}");
}

#[test]
fn proc_exit_is_a_guest_exit() {
    let err = fault("exit");
    assert_eq!(err.kind(), "guest_exit", "{err}");
    assert!(err.to_string().contains("code 3"), "{err}");
}

#[test]
fn non_wasi_import_is_refused_at_load() {
    let err = registry::make(&guest("hostile_import"), tight())
        .err()
        .expect("must be refused");
    assert_eq!(err.kind(), "forbidden_import", "{err}");
    assert!(err.to_string().contains("evil"), "{err}");
}

#[test]
fn stdout_is_captured_not_leaked() {
    let mut env = hostile();
    env.reset(1, Some(json!({"mode": "stdout"}))).unwrap();
    env.step(&Action::text("go")).unwrap();
    assert!(env.take_stdout().contains("hello from hostile"));
}

#[test]
fn garbage_bytes_are_an_invalid_module() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.wasm");
    std::fs::write(&path, b"\0asm but not really a module").unwrap();
    let err = registry::make(path.to_str().unwrap(), tight())
        .err()
        .unwrap();
    assert_eq!(err.kind(), "invalid_module", "{err}");
}

#[test]
fn unknown_env_and_missing_file() {
    assert_eq!(
        registry::make("no-such-env", tight()).err().unwrap().kind(),
        "unknown_env"
    );
    assert_eq!(
        registry::make("./missing.wasm", tight())
            .err()
            .unwrap()
            .kind(),
        "unknown_env"
    );
}

#[test]
fn faults_in_one_env_leave_others_running() {
    let mut healthy = registry::make("countdown", tight()).unwrap();
    healthy.reset(3, None).unwrap();
    let _ = fault("loop");
    let _ = fault("membomb");
    assert!(crate::common::play_expert(&mut healthy).success);
}
