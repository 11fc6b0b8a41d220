//! code-math tests, run natively: the expert's programs against the generator's answers, the
//! session's state and limits, the tool protocol, task files (GSM8K rows) and determinism.
//! The same limits in the wasm guest (virtual clock, memory growth) are tested by the host
//! (`rust/sandgym-core/tests/it/code_math.rs`).

use super::*;
use sandgym_sdk::serde_json;
use sandgym_sdk::{Envelope, Host};

fn env(config: Value) -> CodeMath {
    let mut env = CodeMath::default();
    env.configure(&config).unwrap();
    env
}

fn python(env: &mut CodeMath, code: &str) -> String {
    let out = env.step(&Action::tool("python", &json!({"code": code})));
    assert!(!out.terminated, "{out:?}");
    out.messages[0].content.clone()
}

fn play_expert(env: &mut CodeMath) -> (f64, Vec<String>) {
    let mut reward = 0.0;
    let mut observations = Vec::new();
    while let Some(action) = env.expert() {
        let out = env.step(&action);
        reward += out.reward;
        observations.push(out.messages[0].content.clone());
        assert!(!out.truncated);
    }
    (reward, observations)
}

#[test]
fn every_programs_output_is_the_generated_answer() {
    for kind in KINDS {
        for difficulty in 1..=3 {
            // Natively the step budget is wall-clock time (NATIVE_MICROS_PER_STEP), so a loaded
            // machine could stop a correct program: this test checks the programs, not the budget
            // (the guest's budget counts clock reads and is tested deterministically on wasm).
            let mut env =
                env(json!({"kind": kind, "difficulty": difficulty, "cell_steps": 100_000}));
            for seed in 0..4 {
                env.reset(seed, None).unwrap();
                let answer = env.task.as_ref().unwrap().answer;
                let (reward, observations) = play_expert(&mut env);
                assert_eq!(
                    observations[0].trim(),
                    answer.to_string(),
                    "{kind} d{difficulty} seed {seed}"
                );
                assert_eq!(reward, 1.0, "{kind} d{difficulty} seed {seed}");
            }
        }
    }
}

#[test]
fn session_keeps_state_and_reports_values_and_errors() {
    let mut env = env(Value::Null);
    env.reset(3, None).unwrap();
    assert_eq!(python(&mut env, "x = 6\ny = 7"), "(no output)");
    assert_eq!(
        python(&mut env, "print('product:', x * y)\nx * y"),
        "product: 42\n42"
    );
    assert_eq!(
        python(&mut env, "def f(n):\n    return n + x\n[f(1), 'a']"),
        "[7, 'a']"
    );
    let error = python(&mut env, "f(1) / 0");
    assert!(
        error.starts_with("Traceback (most recent call last):"),
        "{error}"
    );
    assert!(
        error.ends_with("ZeroDivisionError: division by zero"),
        "{error}"
    );
    let syntax = python(&mut env, "def (");
    assert!(syntax.contains("SyntaxError"), "{syntax}");
    assert_eq!(python(&mut env, "x"), "6", "state survives errors");
    let missing = python(&mut env, "import os\nos.listdir('/')");
    assert!(missing.contains("Error"), "{missing}");
    assert!(
        python(&mut env, "import datetime\ndatetime.datetime.now()")
            .contains("NotImplementedError")
    );
}

#[test]
fn runaway_cells_end_with_an_error_and_the_session_survives() {
    let mut env = env(json!({"output_bytes": 1000, "max_turns": 50}));
    env.reset(0, None).unwrap();
    python(&mut env, "kept = 123");
    let cases = [
        ("while True:\n    pass", "TimeoutError"),
        ("big = [0] * 10**8", "MemoryError"),
        ("big = 'x' * 10**9", "MemoryError"),
        (
            "def deep(n):\n    return deep(n + 1)\ndeep(0)",
            "RecursionError",
        ),
    ];
    for (code, expected) in cases {
        let observation = python(&mut env, code);
        assert!(observation.contains(expected), "{code}: {observation}");
        assert!(
            observation.len() < 1200,
            "{code}: {} bytes",
            observation.len()
        );
        assert_eq!(python(&mut env, "kept"), "123", "after {code}");
    }
    let printed = python(&mut env, "print('y' * 10**7)");
    assert!(printed.starts_with(&"y".repeat(1000)), "{}", &printed[..50]);
    assert!(
        printed.ends_with("[output truncated: 9999001 more bytes not shown]"),
        "{}",
        &printed[900..]
    );
    let many = python(&mut env, "for i in range(10**5):\n    print(i)");
    assert!(many.contains("[output truncated:"), "{many}");
    assert_eq!(python(&mut env, "kept + 1"), "124");
}

#[test]
fn submit_checks_exact_answers_and_rejects_non_numbers() {
    let task = json!({"question": "What is 3/4 + 1/2?", "answer": "5/4"});
    let mut env = env(Value::Null);
    env.reset(0, Some(task.clone())).unwrap();
    let out = env.step(&Action::tool("submit", &json!({"answer": "about one"})));
    assert!(
        !out.terminated && out.messages[0].content.starts_with("Error: "),
        "{out:?}"
    );
    let out = env.step(&Action::tool("submit", &json!({"answer": "1.25"})));
    assert!(out.terminated && out.success && out.reward == 1.0);
    env.reset(0, Some(task)).unwrap();
    let out = env.step(&Action::tool("submit", &json!({"answer": "1.24"})));
    assert!(out.terminated && !out.success && out.reward == 0.0);
    assert_eq!(out.messages[0].content, "Incorrect. The episode is over.");
}

#[test]
fn bad_calls_are_answered_and_the_turn_limit_truncates() {
    let mut env = env(json!({"max_turns": 3}));
    env.reset(0, None).unwrap();
    let out = env.step(&Action::tool("shell", &json!({"cmd": "ls"})));
    assert!(out.messages[0].content.contains("unknown tool"), "{out:?}");
    let out = env.step(&Action::tool("python", &json!({"source": "1"})));
    assert!(out.messages[0].content.starts_with("Error: "), "{out:?}");
    let out = env.step(&Action::text("thinking"));
    assert!(out.truncated && !out.terminated);
    let long = "x = 1\n".repeat(5_000);
    let mut env = self::env(Value::Null);
    env.reset(0, None).unwrap();
    assert!(python(&mut env, &long).contains("the limit is 16384"));
}

#[test]
fn gsm8k_rows_import_and_the_expert_submits_their_answer() {
    let row = json!({
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as \
                     many clips in May. How many clips did Natalia sell altogether?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = \
                   <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    });
    let mut env = env(Value::Null);
    let reset = env.reset(5, Some(row.clone())).unwrap();
    assert_eq!(reset.task["answer"], "72");
    assert_eq!(reset.task["kind"], "imported");
    let replay = env.reset(9, Some(reset.task.clone())).unwrap();
    assert_eq!(replay.task_id, reset.task_id);
    assert_eq!(play_expert(&mut env).0, 1.0);
    assert_eq!(
        env.reset(1, Some(json!({"question": "q", "answer": "1,000"})))
            .unwrap()
            .task["answer"],
        "1000"
    );

    for (task, field) in [
        (json!({"question": "q"}), "`answer`"),
        (json!({"question": "", "answer": "1"}), "`question`"),
        (json!({"question": "q", "answer": "#### many"}), "`answer`"),
        (
            json!({"question": "q", "answer": "1", "source": "x"}),
            "`source`",
        ),
        (
            json!({"question": "q", "answer": "1", "difficulty": 9}),
            "`difficulty`",
        ),
    ] {
        let err = env.reset(0, Some(task)).unwrap_err();
        assert!(err.contains(field), "{err}");
    }
}

#[test]
fn config_is_validated() {
    let mut env = CodeMath::default();
    assert!(
        env.configure(&json!({"kind": "riddles"}))
            .unwrap_err()
            .contains("`kind`")
    );
    assert!(
        env.configure(&json!({"cell_steps": 5}))
            .unwrap_err()
            .contains("`cell_steps`")
    );
    assert!(
        env.configure(&json!({"speed": 1}))
            .unwrap_err()
            .contains("`speed`")
    );
    let defaults = CodeMath::info().default_config;
    env.configure(&defaults).unwrap();
    assert_eq!(env.config, Config::default());
}

fn host_reset_bytes(seed: u64, actions: &[Action]) -> Vec<Vec<u8>> {
    let mut host = Host::<CodeMath>::default();
    let _: Envelope<()> = serde_json::from_slice(host.configure(b"null")).unwrap();
    let mut transcript = vec![
        host.reset(json!({"seed": seed}).to_string().as_bytes())
            .to_vec(),
    ];
    for action in actions {
        transcript.push(host.step(&serde_json::to_vec(action).unwrap()).to_vec());
    }
    transcript
}

#[test]
fn same_seed_and_cells_give_the_same_bytes() {
    let cells = [
        "s = {'pear', 'fig', 'apple', 'kiwi'}\nprint(s, {3: 'c', 1: 'a'})",
        "d = {w: len(w) for w in s}\nsorted(d.items())",
        "1 / 0",
    ];
    let actions: Vec<Action> = cells
        .iter()
        .map(|code| Action::tool("python", &json!({"code": code})))
        .collect();
    for seed in [0, 7] {
        assert_eq!(
            host_reset_bytes(seed, &actions),
            host_reset_bytes(seed, &actions)
        );
    }
    let mut env = env(Value::Null);
    let first = env.reset(11, None).unwrap();
    assert_eq!(
        env.reset(2, Some(first.task.clone())).unwrap().task,
        first.task
    );
}

#[test]
fn source_shape_skips_strings_and_comments() {
    use session::{SourceShape, source_shape};
    let shape = |code: &str| {
        let SourceShape { nesting, operators } = source_shape(code);
        (nesting, operators)
    };
    assert_eq!(shape("f(g([1, {2: (3)}]))"), (5, 5));
    assert_eq!(shape("s = '((((' + \"[[\"  # ((((((\nt = (1)"), (1, 2));
    assert_eq!(shape("doc = '''\n(((\n'''\nx = [[0]]"), (2, 3));
    assert_eq!(shape(r"s = '\'((' + '('"), (0, 2));
    assert_eq!(shape("x = 1.5 + a.b ** -2 if not y else 0"), (0, 8));
    assert_eq!(shape("total = (1 +\n 2 +\n 3)\ny = 1"), (1, 4));
    let mut env = env(json!({"max_turns": 20}));
    env.reset(0, None).unwrap();
    let deep = format!("{}1{}", "(".repeat(101), ")".repeat(101));
    assert!(python(&mut env, &deep).starts_with("SyntaxError: brackets nested 101 levels deep"));
    let chain = format!("x = 1{}", "+1".repeat(1_000));
    let refused = python(&mut env, &chain);
    assert!(
        refused.starts_with("SyntaxError: 1001 operators in one statement"),
        "{refused}"
    );
    let strings = format!("s = '{}'\nlen(s)", "(+".repeat(5000));
    assert_eq!(python(&mut env, &strings), "10000");
    assert_eq!(python(&mut env, &format!("1{}", "+1".repeat(20))), "21");
}

/// Draws from Python's `random` in a fresh episode with `seed`.
fn draws(seed: u64, code: &str) -> String {
    let mut env = env(Value::Null);
    env.reset(seed, None).unwrap();
    python(&mut env, code)
}

const DRAW: &str =
    "import random\n[random.random(), random.randint(1, 10**6), random.choice('abcdefgh')]";

#[test]
fn random_is_seeded_by_the_episode_and_by_random_seed() {
    assert_eq!(draws(5, DRAW), draws(5, DRAW), "same seed, same numbers");
    assert_ne!(
        draws(5, DRAW),
        draws(6, DRAW),
        "another seed, other numbers"
    );
    // The task generator's choices do not depend on what the cells draw, nor the draws on the task.
    let task = json!({"question": "q", "answer": "1"});
    let mut imported = env(Value::Null);
    imported.reset(5, Some(task)).unwrap();
    assert_eq!(python(&mut imported, DRAW), draws(5, DRAW));

    // random.seed(n) restarts the stream from n, whatever the episode seed; seed() restarts the
    // episode's own stream.
    let seeded = "random.seed(2024)\n[random.randrange(1000) for _ in range(8)]";
    let mut a = env(json!({"max_turns": 20}));
    let mut b = env(json!({"max_turns": 20}));
    a.reset(1, None).unwrap();
    b.reset(2, None).unwrap();
    let first_a = python(&mut a, DRAW);
    python(&mut b, DRAW);
    let stream = python(&mut a, seeded);
    assert_eq!(python(&mut b, seeded), stream);
    assert_eq!(
        python(&mut a, seeded),
        stream,
        "seed(n) again restarts the same stream"
    );
    assert_ne!(
        python(&mut a, "random.seed(2025)\nrandom.randrange(10**9)"),
        stream
    );
    assert_eq!(
        python(&mut a, &format!("random.seed()\n{DRAW}")),
        first_a,
        "seed() is the episode's stream again"
    );
    assert_eq!(
        python(
            &mut a,
            "random.seed('abc'); x = random.random()\nrandom.seed(b'abc')\nx == random.random()"
        ),
        "True"
    );
    // A new episode starts a new session: the stream restarts from the new seed.
    a.reset(2, None).unwrap();
    b.reset(2, None).unwrap();
    assert_eq!(python(&mut a, DRAW), python(&mut b, DRAW));
}

#[test]
fn random_has_cpythons_ranges_and_errors() {
    let mut env = env(json!({"max_turns": 100}));
    env.reset(9, None).unwrap();
    assert!(
        python(&mut env, "random.random()").contains("NameError"),
        "no import, no module"
    );
    python(&mut env, "import random");
    let checks = [
        "all(1 <= random.randint(1, 6) <= 6 for _ in range(500))",
        "sorted(set(random.randint(1, 3) for _ in range(300))) == [1, 2, 3]",
        "all(random.randrange(10, 20, 3) in (10, 13, 16, 19) for _ in range(200))",
        "all(random.randrange(10, 0, -4) in (10, 6, 2) for _ in range(200))",
        "all(0 <= random.randrange(7) < 7 for _ in range(200))",
        "all(0.0 <= random.random() < 1.0 for _ in range(500))",
        "all(2.0 <= random.uniform(2, 5) <= 5.0 for _ in range(200))",
        "0 <= random.randrange(10**30) < 10**30",
        "random.getrandbits(0) == 0 and 0 <= random.getrandbits(80) < 2**80",
        "xs = list(range(20))\nrandom.shuffle(xs)\nsorted(xs) == list(range(20)) and xs != list(range(20))",
        "s = random.sample(range(10**12), 5)\nlen(set(s)) == 5 and all(0 <= v < 10**12 for v in s)",
        "sorted(random.sample('abcde', 5)) == list('abcde')",
        "sorted(random.sample(['x', 'y'], 5, counts=[1, 4])) == ['x', 'y', 'y', 'y', 'y']",
        "set(random.choices('ab', [0, 1], k=20)) == {'b'}",
        "len(random.choices(range(3), k=7)) == 7",
        "inner = [[1], [2]]\nrandom.choice(inner).append(3)\n[3] in [x[1:] for x in inner]",
        "random.choice(range(5, 6)) == 5",
        "isinstance(random.gauss(10, 2), float) and random.expovariate(3) >= 0",
        "from random import randint as r, shuffle\nr(4, 4) == 4",
        "import math, random as rnd\nrnd.randint(2, 2) == 2 and math.pi > 3",
        "def roll():\n    import random\n    return random.randint(1, 6)\n1 <= roll() <= 6",
    ];
    for code in checks {
        assert_eq!(python(&mut env, code), "True", "{code}");
    }
    // Errors are Python exceptions in the observation, catchable, and the session goes on.
    let errors = [
        (
            "random.randint(5, 1)",
            "ValueError: empty range in randrange(5, 2)",
        ),
        (
            "random.randrange(0)",
            "ValueError: empty range for randrange()",
        ),
        (
            "random.randrange(1, 5, 0)",
            "ValueError: zero step for randrange()",
        ),
        (
            "random.randrange(1.5)",
            "TypeError: 'float' object cannot be interpreted as an integer",
        ),
        (
            "random.choice([])",
            "IndexError: Cannot choose from an empty sequence",
        ),
        (
            "random.sample([1, 2], 3)",
            "ValueError: Sample larger than population or is negative",
        ),
        (
            "random.sample({1, 2}, 1)",
            "TypeError: Population must be a sequence.",
        ),
        (
            "random.choices('ab', [1])",
            "ValueError: The number of weights does not match",
        ),
        (
            "random.getrandbits(-1)",
            "ValueError: number of bits must be non-negative",
        ),
        (
            "random.getrandbits(10**12)",
            "MemoryError: getrandbits(1000000000000)",
        ),
        (
            "random.choices('ab', k=10**9)",
            "MemoryError: choices(k=1000000000)",
        ),
        (
            "random.randint(1)",
            "TypeError: Random.randint() missing 1 required positional argument: 'b'",
        ),
        (
            "random.seed([1])",
            "TypeError: The only supported seed types are",
        ),
        (
            "t = (1, 2)\nrandom.shuffle(t)",
            "TypeError: 'tuple' object does not support item assignment",
        ),
        ("random.Random()", "AttributeError"),
        (
            "from random import Random",
            "ImportError: cannot import name 'Random' from 'random'",
        ),
        ("import random.shuffle", "ModuleNotFoundError"),
    ];
    for (code, expected) in errors {
        let observation = python(&mut env, code);
        assert!(
            observation.starts_with("Traceback"),
            "{code}: {observation}"
        );
        assert!(observation.contains(expected), "{code}: {observation}");
        assert_eq!(
            python(&mut env, "random.randint(7, 7)"),
            "7",
            "after {code}"
        );
    }
    assert_eq!(
        python(
            &mut env,
            "try:\n    random.randint(3, 1)\nexcept ValueError as e:\n    print('caught:', e)"
        ),
        "caught: empty range in randrange(3, 2)\n"
    );
    assert_eq!(python(&mut env, "random"), "<class 'random'>");
    // Other unknown names stay undefined.
    assert!(
        python(&mut env, "randint(1, 2)").ends_with("NameError: name 'randint' is not defined")
    );
    assert!(python(&mut env, "x = nothing").ends_with("NameError: name 'nothing' is not defined"));
}

#[test]
fn the_docs_list_the_random_functions() {
    let doc = include_str!("../../../docs/envs/code-math.md");
    let start = doc
        .find("Module functions, `random` (seeded)")
        .expect("docs/envs/code-math.md lists the random module's functions");
    let line = &doc[start..start + doc[start..].find("**Not provided**").unwrap()];
    for name in pyrandom::EXPORTS {
        assert!(
            line.contains(&format!("`{name}`")),
            "docs miss random.{name}: {line}"
        );
    }
    assert!(!doc.contains("Missing modules** (`ModuleNotFoundError`): `random`"));
}
