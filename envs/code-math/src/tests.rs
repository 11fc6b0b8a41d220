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
            let mut env = env(json!({"kind": kind, "difficulty": difficulty}));
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
