//! The bundled code-math env through the sandbox: the monty interpreter in the wasm guest runs every
//! kind's expert program, stops runaway cells itself (well inside the host's fuel and memory limits,
//! so the episode survives), and a live interpreter session forks: both copies keep the variables
//! defined before the fork and continue independently and deterministically, and Python's `random`
//! continues the same stream in both.

use sandgym_core::{Action, Env, EnvOptions, Limits, registry};
use serde_json::{Value, json};

fn code_math(config: Value, limits: Limits) -> Env {
    registry::make("code-math", EnvOptions { config, limits }).unwrap()
}

fn python(code: &str) -> Action {
    Action::tool("python", &json!({ "code": code }))
}

/// Runs a cell; the episode must still be running afterwards.
fn cell(env: &mut Env, code: &str) -> String {
    let out = env
        .step(&python(code))
        .unwrap_or_else(|e| panic!("{code}: {e}"));
    assert!(!out.terminated && !out.truncated, "{code}: {out:?}");
    out.messages[0].content.clone()
}

#[test]
fn expert_programs_solve_every_kind_in_the_sandbox() {
    let env = code_math(Value::Null, Limits::default());
    assert_eq!(env.id(), "code-math-v0");
    let kinds: Vec<String> = [
        "sum_multiples",
        "nth_prime",
        "modpow",
        "digit_sum",
        "harmonic",
    ]
    .into_iter()
    .chain(["collatz", "savings", "population", "split_bill"])
    .map(String::from)
    .collect();
    for kind in kinds {
        for difficulty in 1..=3 {
            let mut env = code_math(
                json!({"kind": kind, "difficulty": difficulty}),
                Limits::default(),
            );
            for seed in 0..3 {
                env.reset(seed, None).unwrap();
                let out = loop {
                    let action = env.expert().unwrap().expect("an expert move while running");
                    let out = env
                        .step(&action)
                        .unwrap_or_else(|e| panic!("{kind} d{difficulty} seed {seed}: {e}"));
                    if out.terminated || out.truncated {
                        break out;
                    }
                };
                assert!(
                    out.success && out.reward == 1.0,
                    "{kind} d{difficulty} seed {seed}"
                );
            }
        }
    }
}

#[test]
fn runaway_cells_are_stopped_inside_the_guest_and_the_session_survives() {
    // Half the default fuel: the guest's own step budget must end a runaway cell well before the
    // host would have to kill the instance.
    let limits = Limits {
        fuel_per_call: 1_000_000_000,
        ..Limits::default()
    };
    let mut env = code_math(json!({"max_turns": 100, "output_bytes": 2000}), limits);
    env.reset(0, None).unwrap();
    assert_eq!(cell(&mut env, "kept = [1, 2, 3]\nlen(kept)"), "3");
    let cases = [
        ("while True:\n    pass", "TimeoutError"),
        ("n = 0\nwhile True:\n    n += 1", "TimeoutError"),
        ("big = [0] * 10**8", "MemoryError"),
        ("big = list(range(10**8))", "Error: the cell exceeded"),
        (
            "grow = []\nwhile True:\n    grow.append('x' * 1000)",
            "MemoryError",
        ),
        ("huge = 2 ** (10**10)", "MemoryError"),
        // Every call into the env's `random` suspends the interpreter and counts as a step.
        (
            "import random\nwhile True:\n    random.random()",
            "TimeoutError",
        ),
        ("import random\nrandom.getrandbits(10**12)", "MemoryError"),
        (
            "def deep(n):\n    return deep(n + 1)\ndeep(0)",
            "RecursionError",
        ),
        (
            "def fact(n):\n    return 1 if n == 0 else n * fact(n - 1)\nfact(5000)",
            "RecursionError",
        ),
        (
            "print('x' * 10**7)",
            "[output truncated: 9998001 more bytes not shown]",
        ),
        ("for i in range(10**7):\n    print(i)", "[output truncated:"),
    ];
    for (code, expected) in cases {
        let observation = cell(&mut env, code);
        assert!(observation.contains(expected), "{code}: {observation}");
        assert!(
            observation.len() <= 2200,
            "{code}: {} bytes",
            observation.len()
        );
        assert_eq!(cell(&mut env, "kept"), "[1, 2, 3]", "after {code}");
    }
    // Deeply nested or very long chained source is an error observation, not a crashed guest.
    let pathological = [
        format!("{}1{}", "(".repeat(5000), ")".repeat(5000)),
        format!("{}1{}", "[".repeat(150), "]".repeat(150)),
        format!("x = {}1", "-".repeat(16000)),
        format!("x = {}x", "not ".repeat(4000)),
        format!("x = 1{}", "+1".repeat(8000)),
        format!("x = 1{}", " + 1".repeat(20000)),
        format!("x = {}x", "x.".repeat(8000)),
        format!("x = f{}", "(1)".repeat(5000)),
        format!("x = {}0", "1 if x else ".repeat(1400)),
        format!("x = {}1", "lambda: ".repeat(2000)),
    ];
    for code in &pathological {
        let observation = cell(&mut env, code);
        assert!(
            observation.contains("Error"),
            "{}: {observation}",
            &code[..40]
        );
        assert_eq!(cell(&mut env, "kept"), "[1, 2, 3]", "after {}", &code[..40]);
    }
    assert_eq!(cell(&mut env, "sum(kept)"), "6");
}

#[test]
fn a_forked_session_continues_independently_and_deterministically() {
    let mut env = code_math(json!({"max_turns": 20}), Limits::default());
    env.reset(7, None).unwrap();
    cell(
        &mut env,
        "x = 10\nitems = {'a': 1}\ndef bump(k):\n    items[k] = items.get(k, 0) + x\n    return items",
    );
    cell(&mut env, "bump('a')");

    let mut fork = env.fork().unwrap();
    assert_eq!(env.state_digest(), fork.state_digest());
    // Different cells in the two copies: each sees only its own changes.
    assert_eq!(cell(&mut env, "x = 1\nbump('b')"), "{'a': 11, 'b': 1}");
    assert_eq!(cell(&mut fork, "bump('c')"), "{'a': 11, 'c': 10}");
    assert_eq!(cell(&mut env, "x, sorted(items)"), "(1, ['a', 'b'])");
    assert_eq!(cell(&mut fork, "x, sorted(items)"), "(10, ['a', 'c'])");
    assert_ne!(env.state_digest(), fork.state_digest());

    // Same cells from the same fork point: same outputs and the same guest state.
    let mut left = fork.fork().unwrap();
    let mut right = fork.fork().unwrap();
    let cells = [
        "squares = [i * i for i in range(2000)]\nsum(squares)",
        "while True:\n    pass",
        "bump('d')",
        "1 / 0",
    ];
    for code in cells {
        assert_eq!(cell(&mut left, code), cell(&mut right, code), "{code}");
        assert_eq!(left.state_digest(), right.state_digest(), "after {code}");
    }
}

#[test]
fn a_forked_session_continues_the_same_random_stream() {
    let draw = "[random.randint(1, 10**9) for _ in range(4)], random.choice('abcdefgh')";
    let mut env = code_math(json!({"max_turns": 20}), Limits::default());
    env.reset(11, None).unwrap();
    let first = cell(&mut env, &format!("import random\n{draw}"));

    // Both copies continue the stream from the fork point, with the same numbers and state.
    let mut fork = env.fork().unwrap();
    assert_eq!(env.state_digest(), fork.state_digest());
    let next = cell(&mut env, draw);
    assert_ne!(next, first);
    assert_eq!(cell(&mut fork, draw), next);
    assert_eq!(env.state_digest(), fork.state_digest());

    // The episode replayed from its seed draws the same numbers; another seed, others.
    let mut replay = code_math(json!({"max_turns": 20}), Limits::default());
    replay.reset(11, None).unwrap();
    assert_eq!(cell(&mut replay, &format!("import random\n{draw}")), first);
    assert_eq!(cell(&mut replay, draw), next);
    replay.reset(12, None).unwrap();
    assert_ne!(cell(&mut replay, &format!("import random\n{draw}")), first);

    // Diverged copies meet again after random.seed(n).
    cell(&mut fork, "random.random()");
    let seeded = format!("random.seed(7)\n{draw}");
    assert_eq!(cell(&mut env, &seeded), cell(&mut fork, &seeded));

    // Errors are Python exceptions in the observation; the guest and the session survive.
    let error = cell(&mut env, "random.randint(5, 1)");
    assert!(
        error.ends_with("ValueError: empty range in randrange(5, 2)"),
        "{error}"
    );
    let error = cell(&mut env, "random.choice([])");
    assert!(
        error.ends_with("IndexError: Cannot choose from an empty sequence"),
        "{error}"
    );
    let error = cell(&mut env, "random.choices('ab', k=10**9)");
    assert!(error.contains("MemoryError"), "{error}");
    assert_eq!(cell(&mut env, "random.randint(3, 3)"), "3");
    // Many numbers in one call fit easily; a few thousand calls fit in the default budget.
    assert_eq!(
        cell(&mut env, "len(random.choices(range(6), k=100_000))"),
        "100000"
    );
    assert_eq!(
        cell(
            &mut env,
            "s = 0\nfor _ in range(2000):\n    s += random.random()\n0 < s < 2000"
        ),
        "True"
    );
}
