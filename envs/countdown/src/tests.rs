//! Countdown env tests: config and task validation, the verifier, the tool protocol, the expert over
//! many seeds, and determinism of the JSON bytes.

use super::*;
use sandgym_sdk::{Env, Envelope, Host, Role};

fn calc(expression: &str) -> Action {
    expression_call("calc", expression)
}

fn host(config: Value) -> Host<Countdown> {
    let mut host = Host::<Countdown>::default();
    let out: Envelope<()> =
        serde_json::from_slice(host.configure(config.to_string().as_bytes())).unwrap();
    assert_eq!(out, Envelope::Ok(()));
    host
}

fn reset(host: &mut Host<Countdown>, input: Value) -> Result<ResetOutput, String> {
    let bytes = host.reset(input.to_string().as_bytes());
    serde_json::from_slice::<Envelope<ResetOutput>>(bytes)
        .unwrap()
        .into()
}

fn step(host: &mut Host<Countdown>, action: &Action) -> StepOutput {
    let bytes = host.step(&serde_json::to_vec(action).unwrap());
    let out: Result<StepOutput, String> = serde_json::from_slice::<Envelope<StepOutput>>(bytes)
        .unwrap()
        .into();
    out.unwrap()
}

fn expert(host: &mut Host<Countdown>) -> Option<Action> {
    match serde_json::from_slice::<Envelope<Option<Action>>>(host.expert()).unwrap() {
        Envelope::Ok(action) => action,
        Envelope::Err(e) => panic!("{e}"),
    }
}

fn env_with(task: Value) -> Countdown {
    let mut env = Countdown::default();
    env.reset(0, Some(task)).unwrap();
    env
}

fn raw_call(name: &str, arguments: &str) -> Action {
    Action {
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: name.into(),
            arguments: arguments.into(),
        }],
        format_error: None,
    }
}

#[test]
fn config_is_validated() {
    assert_eq!(Config::from_json(&Value::Null), Ok(Config::default()));
    assert_eq!(
        Config::from_json(&Config::default().to_json()),
        Ok(Config::default())
    );
    let err = Config::from_json(&json!({"min_numbers": 9})).unwrap_err();
    assert!(err.contains("`min_numbers`"), "{err}");
    let err = Config::from_json(&json!({"numbers": 4})).unwrap_err();
    assert!(err.contains("unknown config key `numbers`"), "{err}");
    let err = Config::from_json(&json!({"min_value": 50, "max_value": 10})).unwrap_err();
    assert!(
        err.contains("`min_value` (50) must not exceed `max_value` (10)"),
        "{err}"
    );
    let err = Config::from_json(&json!({"use_all": "yes"})).unwrap_err();
    assert!(err.contains("`use_all`"), "{err}");
    let err = Config::from_json(&json!([1])).unwrap_err();
    assert!(err.contains("JSON object"), "{err}");
}

#[test]
fn unreachable_target_range_fails_at_reset() {
    let mut env = Countdown::default();
    env.configure(&json!({"min_numbers": 2, "max_numbers": 2, "max_value": 2, "min_target": 900}))
        .unwrap();
    let err = env.reset(1, None).unwrap_err();
    assert!(err.contains("could not generate"), "{err}");
}

#[test]
fn task_is_validated_with_field_names() {
    let mut env = Countdown::default();
    for (task, field) in [
        (json!({"target": 24}), "`numbers`"),
        (json!({"numbers": [], "target": 24}), "`numbers`"),
        (
            json!({"numbers": [1, 2, 3, 4, 5, 6, 7], "target": 24}),
            "`numbers`",
        ),
        (json!({"numbers": [1, -2], "target": 24}), "`numbers`"),
        (json!({"numbers": [1, 2.5], "target": 24}), "`numbers`"),
        (json!({"numbers": [1, 2]}), "`target`"),
        (json!({"numbers": [1, 2], "target": "3"}), "`target`"),
        (
            json!({"numbers": [1, 2], "target": 3, "solution": 3}),
            "`solution`",
        ),
        (
            json!({"numbers": [1, 2], "target": 3, "solution": "1 * 2"}),
            "`solution`",
        ),
        (
            json!({"numbers": [1, 2], "target": 3, "extra": 1}),
            "`extra`",
        ),
        (json!("1 2 3"), "JSON object"),
    ] {
        let err = env.reset(0, Some(task.clone())).unwrap_err();
        assert!(err.contains(field), "{task}: {err}");
    }
}

#[test]
fn verifier_accepts_solutions_and_rejects_perturbations() {
    let numbers = [25, 3, 7, 100];
    assert_eq!(
        verify(&numbers, 88, false, "(25 - 3) * (100 / 25)"),
        Err(Rejection::OverUsed {
            number: 25,
            used: 2,
            given: 1
        })
    );
    assert_eq!(
        verify(&numbers, 88, false, "(25 - 3) * 4"),
        Err(Rejection::Unavailable(4))
    );
    assert_eq!(verify(&numbers, 75, false, "100 - 25"), Ok(()));
    assert_eq!(verify(&numbers, 75, false, " 100-25 "), Ok(()));
    assert_eq!(
        verify(&numbers, 75, false, "100 - 25 + 3 - 3"),
        Err(Rejection::OverUsed {
            number: 3,
            used: 2,
            given: 1
        })
    );
    assert_eq!(
        verify(&numbers, 75, false, "100 - 24"),
        Err(Rejection::Unavailable(24))
    );
    assert_eq!(
        verify(&numbers, 75, false, "100 - 7"),
        Err(Rejection::WrongValue {
            value: 93,
            target: 75
        })
    );
    assert_eq!(
        verify(&numbers, 75, false, "-25 + 100"),
        Err(Rejection::UnaryMinus)
    );
    assert_eq!(
        verify(&numbers, 75, false, "100 - 25 ="),
        Err(Rejection::Parse(
            "unexpected '=' at position 9: give only the expression, without '=' or the result"
                .into()
        ))
    );
    assert_eq!(
        verify(&numbers, 75, true, "100 - 25"),
        Err(Rejection::Unused(3))
    );
    assert_eq!(verify(&numbers, 129, true, "100 + 25 + 7 - 3"), Ok(()));
    assert_eq!(
        verify(&numbers, 1, false, "7 / 3"),
        Err(Rejection::Arithmetic(ArithError::Inexact { a: 7, b: 3 }))
    );
    // Duplicated numbers may be used as often as they are given.
    assert_eq!(verify(&[5, 5, 2], 50, false, "5 * 5 * 2"), Ok(()));
    assert_eq!(
        Rejection::Unavailable(7).to_string(),
        "uses 7 which is not available"
    );
    assert_eq!(
        Rejection::WrongValue {
            value: 23,
            target: 24
        }
        .to_string(),
        "value 23 != target 24"
    );
    assert!(
        Rejection::Parse("empty expression".into())
            .to_string()
            .starts_with("parse error: ")
    );
}

#[test]
fn generated_tasks_are_valid_and_solutions_verify() {
    for config in [
        Config::default(),
        Config::from_json(&json!({"min_numbers": 2, "max_numbers": 6, "use_all": true})).unwrap(),
        Config::from_json(&json!({"min_numbers": 6, "max_numbers": 6, "min_target": 100})).unwrap(),
    ] {
        for seed in 0..300 {
            let task = generate(&config, &mut Rng::new(seed)).unwrap();
            let n = task.numbers.len() as i64;
            assert!((config.min_numbers..=config.max_numbers).contains(&n));
            assert!(
                task.numbers
                    .iter()
                    .all(|v| (config.min_value..=config.max_value).contains(v))
            );
            assert!((config.min_target..=config.max_target).contains(&task.target));
            let solution = task.solution.as_deref().unwrap();
            assert_eq!(
                verify(&task.numbers, task.target, config.use_all, solution),
                Ok(()),
                "{task:?}"
            );
            assert_eq!(Task::from_json(&task.to_json()), Ok(task));
        }
    }
}

#[test]
fn expert_wins_on_1000_seeds() {
    let mut host = host(json!({}));
    for seed in 0..1000 {
        let opening = reset(&mut host, json!({"seed": seed})).unwrap();
        assert_eq!(opening.messages.len(), 2);
        assert_eq!(opening.messages[0].role, Role::System);
        let action = expert(&mut host).expect("generated tasks are solvable");
        let out = step(&mut host, &action);
        assert_eq!(out.reward, 1.0, "seed {seed}: {:?}", out.info);
        assert!(out.terminated && out.success && !out.truncated);
        assert_eq!(out.messages.len(), 1);
        assert_eq!(out.messages[0].tool_call_id.as_deref(), Some("call_0"));
        assert_eq!(expert(&mut host), None);
    }
}

#[test]
fn expert_wins_with_use_all_and_six_numbers() {
    let mut host = host(json!({"min_numbers": 6, "max_numbers": 6, "use_all": true}));
    for seed in 0..200 {
        reset(&mut host, json!({"seed": seed})).unwrap();
        let action = expert(&mut host).unwrap();
        let out = step(&mut host, &action);
        assert_eq!(out.reward, 1.0, "seed {seed}: {:?}", out.info);
    }
}

#[test]
fn solver_handles_tasks_given_without_solution() {
    let mut env = env_with(json!({"numbers": [3, 3, 8, 8], "target": 24}));
    let action = env.expert().unwrap();
    assert_eq!(env.step(&action).reward, 1.0);

    let mut env = Countdown::default();
    env.configure(&json!({"use_all": true})).unwrap();
    let opening = env
        .reset(0, Some(json!({"numbers": [3, 3, 8, 8], "target": 24})))
        .unwrap();
    assert_eq!(opening.info["solvable"], false);
    assert_eq!(env.expert(), None);
    assert!(opening.messages[1].content.contains("exactly once"));

    // A shipped solution that skips a number is replaced under use_all.
    let task = json!({"numbers": [2, 3, 4], "target": 6, "solution": "2 * 3"});
    let mut env = Countdown::default();
    env.configure(&json!({"use_all": true})).unwrap();
    env.reset(0, Some(task)).unwrap();
    let action = env.expert().unwrap();
    let out = env.step(&action);
    assert_eq!(out.reward, 1.0, "{action:?}");
}

#[test]
fn reset_output_replays_the_task() {
    let mut host = host(json!({}));
    let first = reset(&mut host, json!({"seed": 42})).unwrap();
    assert!(first.task_id.starts_with("countdown-"));
    let replay = reset(&mut host, json!({"seed": 7, "task": first.task})).unwrap();
    assert_eq!(replay, first);
    let other = reset(&mut host, json!({"seed": 43})).unwrap();
    assert_ne!(other.task_id, first.task_id);
}

#[test]
fn calc_is_a_scratchpad() {
    let mut env = env_with(json!({"numbers": [25, 3, 7, 100], "target": 75}));
    let out = env.step(&calc("(1000 - 3) * -2"));
    assert_eq!(out.messages[0].content, "-1994");
    assert_eq!(out.messages[0].role, Role::Tool);
    assert!(!out.terminated && !out.truncated);
    assert_eq!(out.reward, 0.0);
    let out = env.step(&calc("7 / 2"));
    assert!(
        out.messages[0]
            .content
            .starts_with("Error: division 7 / 2 is not exact")
    );
    let out = env.step(&calc("7 +"));
    assert!(out.messages[0].content.starts_with("Error: parse error:"));
    let out = env.step(&submit("100 - 25"));
    assert!(out.terminated && out.success);
    assert_eq!(out.info["reason"], "solved");
}

#[test]
fn wrong_submission_ends_the_episode_with_a_reason() {
    let mut env = env_with(json!({"numbers": [25, 3, 7, 100], "target": 75}));
    let out = env.step(&submit("100 - 7"));
    assert!(out.terminated && !out.success);
    assert_eq!(out.reward, 0.0);
    assert_eq!(out.info["reason"], "value 93 != target 75");
    assert!(out.messages[0].content.contains("value 93 != target 75"));
    let after = env.step(&submit("100 - 25"));
    assert!(after.terminated);
    assert_eq!(after.reward, 0.0);
    assert!(after.messages[0].content.contains("episode is over"));
    assert!(env.actions().is_empty());
    assert_eq!(env.expert(), None);
}

#[test]
fn bad_tool_calls_are_answered_and_count_as_turns() {
    let mut env = Countdown::default();
    env.configure(&json!({"max_turns": 8})).unwrap();
    env.reset(0, Some(json!({"numbers": [25, 3, 7, 100], "target": 75})))
        .unwrap();
    let bad = [
        (
            raw_call("guess", r#"{"expression": "1"}"#),
            "unknown tool `guess`",
        ),
        (raw_call("submit", "{}"), "missing argument `expression`"),
        (
            raw_call("submit", r#"{"expression": "1", "x": 2}"#),
            "unexpected argument `x`",
        ),
        (
            raw_call("calc", r#"{"expression": [1]}"#),
            "must be a string",
        ),
        (raw_call("calc", "{not json"), "not valid JSON"),
        (raw_call("calc", "[1]"), "must be a JSON object"),
    ];
    for (action, expected) in &bad {
        let out = env.step(action);
        assert_eq!(out.messages.len(), 1);
        assert!(
            out.messages[0].content.starts_with("Error: "),
            "{:?}",
            out.messages
        );
        assert!(
            out.messages[0].content.contains(expected),
            "{:?}",
            out.messages
        );
        assert!(!out.terminated && !out.truncated);
    }
    let out = env.step(&Action::text("I think it is 75"));
    assert_eq!(out.messages[0].role, Role::User);
    assert!(out.messages[0].content.contains("calc, submit"));
    let out = env.step(&Action {
        format_error: Some("unclosed <tool_call>".into()),
        ..Action::default()
    });
    assert_eq!(out.messages[0].role, Role::User);
    assert!(
        out.messages[0]
            .content
            .starts_with("Format error: unclosed <tool_call>")
    );
    assert!(
        out.truncated && !out.terminated,
        "the 8th turn hits max_turns"
    );
    assert_eq!(out.info["reason"], "turn limit reached");
    assert!(env.step(&calc("1")).terminated);
}

#[test]
fn every_call_gets_one_message_in_order() {
    let mut env = env_with(json!({"numbers": [25, 3, 7, 100], "target": 75}));
    let mut action = calc("1 + 1");
    action.tool_calls.push(ToolCall::new(
        "call_1",
        "submit",
        &json!({"expression": "100 - 25"}),
    ));
    action
        .tool_calls
        .push(ToolCall::new("call_2", "calc", &json!({"expression": "2"})));
    let out = env.step(&action);
    let ids: Vec<_> = out
        .messages
        .iter()
        .map(|m| m.tool_call_id.as_deref().unwrap())
        .collect();
    assert_eq!(ids, ["call_0", "call_1", "call_2"]);
    assert_eq!(out.messages[0].content, "2");
    assert!(out.messages[2].content.contains("not executed"));
    assert!(out.success);
}

#[test]
fn actions_are_bounded_and_admissible() {
    for seed in 0..200 {
        let mut env = Countdown::default();
        env.configure(&json!({"min_numbers": 2, "max_numbers": 6}))
            .unwrap();
        env.reset(seed, None).unwrap();
        let expert = env.expert().unwrap();
        let actions = env.actions();
        assert!(actions.len() <= 32 && actions.len() >= 2);
        assert_eq!(actions[0], expert);
        assert!(actions.iter().any(|a| *a != expert));
        for action in &actions {
            let mut probe = Countdown::default();
            probe
                .configure(&json!({"min_numbers": 2, "max_numbers": 6}))
                .unwrap();
            probe.reset(seed, None).unwrap();
            let out = probe.step(action);
            assert!(
                !out.messages[0].content.starts_with("Error"),
                "{action:?}: {:?}",
                out.messages
            );
            if action.tool_calls[0].name == "submit" {
                assert_eq!(out.success, *action == expert);
            }
        }
    }
}

#[test]
fn same_seed_gives_same_bytes() {
    let run = |seed: u64| -> Vec<u8> {
        let mut host = host(json!({"min_numbers": 3, "max_numbers": 6}));
        let mut bytes = host
            .reset(json!({"seed": seed}).to_string().as_bytes())
            .to_vec();
        bytes.extend_from_slice(host.actions());
        bytes.extend_from_slice(host.expert());
        bytes.extend_from_slice(host.step(&serde_json::to_vec(&calc("1 + 2")).unwrap()));
        bytes
    };
    for seed in [0, 1, 99, u64::MAX] {
        assert_eq!(run(seed), run(seed));
    }
    assert_ne!(run(1), run(2));
}

#[test]
fn info_describes_the_env() {
    let info = Countdown::info();
    assert_eq!(info.name, "countdown");
    assert_eq!(info.tools.len(), 2);
    assert_eq!(info.default_config, Config::default().to_json());
    let mut host = Host::<Countdown>::default();
    let info: Envelope<EnvInfo> = serde_json::from_slice(host.info()).unwrap();
    let Envelope::Ok(info) = info else { panic!() };
    assert_eq!(info.abi_version, sandgym_sdk::ABI_VERSION);
}

#[test]
fn expression_calls_serialize_like_a_json_object() {
    for expression in ["3 + 4", "(25 - 3) * 4", "say \"hi\"\\n", "", "ünïcode ✓"] {
        for tool in TOOLS {
            assert_eq!(
                expression_call(tool, expression),
                Action::tool(tool, &json!({"expression": expression}))
            );
        }
    }
}

/// The admissible list by its definition: the solution, the wrong submissions, then every pair's
/// operations, each action once, at most 32.
fn actions_by_definition(env: &Countdown) -> Vec<Action> {
    let task = env.task.as_ref().unwrap();
    let mut actions: Vec<Action> = Vec::new();
    let mut push = |action: Action| {
        if actions.len() < 32 && !actions.contains(&action) {
            actions.push(action);
        }
    };
    if let Some(solution) = &env.solution {
        push(Action::tool("submit", &json!({"expression": solution})));
    }
    let numbers: Vec<String> = task.numbers.iter().map(i64::to_string).collect();
    for wrong in [numbers.join(" + "), numbers.join(" * "), numbers[0].clone()] {
        if verify(&task.numbers, task.target, env.config.use_all, &wrong).is_err() {
            push(Action::tool("submit", &json!({"expression": wrong})));
        }
    }
    for i in 0..task.numbers.len() {
        for j in i + 1..task.numbers.len() {
            let (a, b) = (
                task.numbers[i].max(task.numbers[j]),
                task.numbers[i].min(task.numbers[j]),
            );
            for op in ["+", "*", "-", "/"] {
                if op != "/" || (b != 0 && a % b == 0) {
                    let expression = format!("{a} {op} {b}");
                    push(Action::tool("calc", &json!({"expression": expression})));
                }
            }
        }
    }
    actions
}

#[test]
fn listed_actions_follow_their_definition() {
    let configs = [
        json!({"min_numbers": 2, "max_numbers": 6}),
        json!({"min_numbers": 6, "max_numbers": 6, "max_value": 5}),
        json!({"min_numbers": 3, "max_numbers": 4, "max_value": 3, "use_all": true}),
    ];
    for config in configs {
        for seed in 0..300 {
            let mut env = Countdown::default();
            env.configure(&config).unwrap();
            env.reset(seed, None).unwrap();
            let actions = env.actions();
            assert_eq!(actions, actions_by_definition(&env), "{config} seed {seed}");
            for (i, action) in actions.iter().enumerate() {
                assert!(
                    !actions[..i].contains(action),
                    "{config} seed {seed}: {action:?} twice"
                );
            }
        }
    }
}
