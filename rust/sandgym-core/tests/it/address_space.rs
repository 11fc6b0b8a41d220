//! Under an address-space limit (`ulimit -v`, `RLIMIT_AS`: common on clusters and in containers) the
//! collector keeps every episode: instances reserve what a guest can use, not 4 GiB each, and what the
//! OS still refuses is a `resource_exhausted` row, not an `invalid_module` one (issue 13).
//!
//! A limit is process-wide and the engine reads it once, so each test re-runs itself in a child process
//! (this binary, `--exact` its own name) that sets the limit first; the parent checks the child passed.

use std::process::Command;

use sandgym_core::collect::{self, CollectOptions};
use sandgym_core::{Error, Trajectory, policy, registry};
use serde_json::{Value, json};

use crate::common::{guest, tight};

/// Set in the child: the `RLIMIT_AS` soft limit to apply, in bytes.
const CHILD_LIMIT: &str = "SANDGYM_TEST_RLIMIT_AS";

/// `ulimit -v 16000000` (KiB), the limit of the issue.
const ULIMIT_V_16000000: u64 = 16_000_000 * 1024;

/// In the child, applies the limit and returns true. In the parent, runs the test `name` in a child
/// with `limit` and returns false once the child passed.
fn in_limited_child(name: &str, limit: u64) -> bool {
    if let Ok(value) = std::env::var(CHILD_LIMIT) {
        set_limit(value.parse().expect("a limit in bytes"));
        return true;
    }
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_LIMIT, limit.to_string())
        // The default allocator under a limit is under test, not a pool a developer configured.
        .env_remove("SANDGYM_POOL_SLOTS")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child under RLIMIT_AS = {limit} bytes failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    false
}

fn set_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct it is given; the soft limit may move freely under the hard one.
    #[expect(unsafe_code, reason = "setrlimit(RLIMIT_AS) in the child process")]
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// The process's mapped address space now (`VmSize`), to set a limit relative to it.
fn mapped_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// Hostile tasks, each with the error kinds its episode may end with (`None`: it behaves).
fn hostile_tasks() -> Vec<(Value, &'static [&'static str])> {
    vec![
        (json!({"mode": "panic"}), &["guest_trap"]),
        (json!({"mode": "loop"}), &["out_of_fuel"]),
        (json!({"mode": "membomb"}), &["memory_limit"]),
        (
            json!({"mode": "recursion"}),
            &["stack_overflow", "guest_trap"],
        ),
        (json!({"mode": "exit"}), &["guest_exit"]),
        (json!({"mode": "clock"}), &["forbidden_call"]),
        (json!({"mode": "badjson"}), &["malformed_output"]),
        (json!({"mode": "badptr"}), &["malformed_output"]),
        (json!({"mode": "ok"}), &[]),
    ]
}

/// Collects `plan` on a pool of `threads` workers; `Err` when the run itself failed.
fn collect_on(
    threads: usize,
    plan: &[collect::EpisodeSpec],
) -> Result<(collect::CollectSummary, Vec<Trajectory>), Error> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    // Thread stacks and malloc arenas exist before a test lowers the limit under them.
    pool.broadcast(|_| drop(std::hint::black_box(vec![1u8; 4096])));
    collect_in(&pool, plan)
}

fn collect_in(
    pool: &rayon::ThreadPool,
    plan: &[collect::EpisodeSpec],
) -> Result<(collect::CollectSummary, Vec<Trajectory>), Error> {
    let rows = std::sync::Mutex::new(Vec::<Trajectory>::new());
    let sink = |t| {
        rows.lock().unwrap().push(t);
        Ok(())
    };
    let options = CollectOptions {
        env_options: tight(),
        ..CollectOptions::default()
    };
    let summary = pool.install(|| {
        collect::collect(
            plan,
            &policy::RandomPolicy::default(),
            &options,
            &sink,
            &|_| {},
        )
    })?;
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|t| t.episode_index);
    Ok((summary, rows))
}

/// The scenario: trapping guests on 2 threads under `ulimit -v 16000000`. Every trap replaces
/// an instance (the new one exists before the old is dropped), so with the prototype up to 5 memories
/// are live; at 4 GiB + guards each, the replacements failed as `invalid_module`.
#[test]
fn trapping_guests_under_ulimit_v_keep_every_episode() {
    if !in_limited_child(
        "address_space::trapping_guests_under_ulimit_v_keep_every_episode",
        ULIMIT_V_16000000,
    ) {
        return;
    }
    let cases = hostile_tasks();
    let tasks: Vec<Value> = cases.iter().map(|(task, _)| task.clone()).collect();
    let episodes = 6 * tasks.len() as u64;
    let plan = collect::plan(&[guest("hostile")], episodes, 0, Some(&tasks));
    let (summary, rows) = collect_on(2, &plan).expect("the run completes");
    assert_eq!(summary.episodes, episodes);
    assert_eq!(rows.len() as u64, episodes, "every episode has a row");
    for row in &rows {
        let (task, kinds) = &cases[row.episode_index as usize % cases.len()];
        let kind = row.error_kind.as_deref();
        assert!(
            match kind {
                None => kinds.is_empty() && row.success,
                Some(kind) => kinds.contains(&kind),
            },
            "episode {} ({task}) ended with {kind:?}: {:?}",
            row.episode_index,
            row.error_message
        );
    }
}

/// The engine saw the limit and sized memories to the cap (plus 32 MiB guards either side); which
/// allocator it took is inspectable.
#[test]
fn engine_sizes_reservations_to_the_cap_under_a_limit() {
    if !in_limited_child(
        "address_space::engine_sizes_reservations_to_the_cap_under_a_limit",
        ULIMIT_V_16000000,
    ) {
        return;
    }
    let info = sandgym_core::engine_info().unwrap();
    assert_eq!(info.address_space_limit, Some(ULIMIT_V_16000000));
    assert_eq!(info.memory_reservation, 1 << 30, "{info:?}");
    assert!(!info.bounds_checks_elided, "{info:?}");
    // No pool: it would reserve its slots up front, and only a handful fit.
    assert_eq!(
        (info.allocator, info.pool_slots),
        ("on_demand", None),
        "{info:?}"
    );
    assert_eq!(info.bytes_per_instance, (1 << 30) + (64 << 20), "{info:?}");
    let mut env = registry::make(&guest("hostile"), tight()).unwrap();
    env.reset(0, Some(json!({"mode": "ok"}))).unwrap();
}

/// A limit too small for even one instance: a clear `resource_exhausted` error naming the limit, no
/// panic; a collection fails fast with it (every episode would). When the prototype fits but no worker's
/// copy does, each episode gets a `resource_exhausted` row and the run goes on.
#[test]
fn too_small_a_limit_is_resource_exhausted() {
    if !in_limited_child(
        "address_space::too_small_a_limit_is_resource_exhausted",
        ULIMIT_V_16000000,
    ) {
        return;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.broadcast(|_| drop(std::hint::black_box(vec![1u8; 4096])));
    // Compile the guest while there is room (a failed allocation in the compiler would abort).
    let _program = registry::program(&guest("hostile")).unwrap();
    let info = sandgym_core::engine_info().unwrap();
    assert_eq!(info.allocator, "on_demand", "{info:?}");
    let slack = 256 << 20;
    assert!(info.bytes_per_instance > slack);

    set_limit(mapped_bytes() + slack);
    let err = registry::make(&guest("hostile"), tight())
        .err()
        .expect("no instance fits");
    assert_eq!(err.kind(), "resource_exhausted", "{err}");
    let message = err.to_string();
    for part in ["address space", "RLIMIT_AS", "raise the limit", "hostile"] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    let plan = collect::plan(&[guest("hostile")], 4, 0, None);
    let err = collect_in(&pool, &plan).expect_err("the run cannot start");
    assert_eq!(err.kind(), "resource_exhausted", "{err}");

    // Room for the prototype only: every worker's fork is refused, in its episode's row.
    set_limit(mapped_bytes() + info.bytes_per_instance + slack);
    let (summary, rows) = collect_in(&pool, &plan).expect("the run goes on");
    assert_eq!((summary.episodes, rows.len()), (4, 4));
    for row in &rows {
        assert_eq!(
            row.error_kind.as_deref(),
            Some("resource_exhausted"),
            "{:?}",
            row.error_message
        );
    }
}
