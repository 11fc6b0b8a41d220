//! Parity env tests: grading in both reward modes, the tool protocol, validation, the expert over many
//! seeds, and determinism of the JSON bytes.

use super::*;
use sandgym_sdk::{Env, Envelope, Host, Role};

fn env(config: Value, bits: &str) -> Parity {
    let mut env = Parity::default();
    env.configure(&config).unwrap();
    env.reset(0, Some(json!({"bits": bits}))).unwrap();
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

fn call(args: Value) -> Action {
    Action::tool("answer", &args)
}

#[test]
fn prefix_parities_are_running_xor() {
    assert_eq!(prefix_parities(&[1, 1, 0, 1]), [1, 0, 0, 1]);
    assert_eq!(prefix_parities(&[0]), [0]);
    assert!(prefix_parities(&[]).is_empty());
}

#[test]
fn config_is_validated() {
    assert_eq!(Config::from_json(&Value::Null), Ok(Config::default()));
    assert_eq!(
        Config::from_json(&Parity::info().default_config),
        Ok(Config::default())
    );
    let c = Config::from_json(&json!({"d": 8})).unwrap();
    assert_eq!((c.min_d, c.max_d), (8, 8));
    let c =
        Config::from_json(&json!({"d": 50, "min_d": 10, "max_d": 20, "reward": "cot"})).unwrap();
    assert_eq!((c.min_d, c.max_d, c.reward), (10, 20, RewardMode::Cot));
    for (config, key) in [
        (json!({"d": 0}), "`d`"),
        (json!({"d": 4097}), "`d`"),
        (json!({"min_d": 30, "max_d": 20}), "`min_d`"),
        (json!({"reward": "process"}), "`reward`"),
        (json!({"max_turns": 0}), "`max_turns`"),
        (json!({"p_cot": 0.5}), "`p_cot`"),
    ] {
        let err = Config::from_json(&config).unwrap_err();
        assert!(err.contains(key), "{config}: {err}");
    }
}

#[test]
fn task_is_validated_with_field_names() {
    let mut env = Parity::default();
    for (task, needle) in [
        (json!({}), "`bits` is missing"),
        (json!({"bits": ""}), "1 to 4096 bits"),
        (json!({"bits": "0".repeat(MAX_D + 1)}), "1 to 4096 bits"),
        (json!({"bits": "0120"}), "found '2'"),
        (json!({"bits": [0, 1]}), "`bits` must be a string"),
        (json!({"bits": "01", "d": 2}), "unknown field `d`"),
        (json!(5), "JSON object"),
    ] {
        let err = env.reset(0, Some(task.clone())).unwrap_err();
        assert!(err.contains(needle), "{task}: {err}");
    }
    let out = env.reset(0, Some(json!({"bits": "0 1 1, 0"}))).unwrap();
    assert_eq!(out.task, json!({"bits": "0110"}));
    assert!(out.messages[1].content.contains("0 1 1 0"));
}

#[test]
fn outcome_mode_grades_the_parity_only() {
    let out = env(json!({}), "1101").step(&call(json!({"parity": "1"})));
    assert!(out.terminated && out.success);
    assert_eq!(out.reward, 1.0);
    assert_eq!(out.info, json!({"reason": "correct", "cot_correct": null}));

    let out = env(json!({}), "1101").step(&call(json!({"parity": 0})));
    assert!(out.terminated && !out.success);
    assert_eq!(out.reward, 0.0);
    assert_eq!(out.info["reason"], "parity 0 is wrong");

    let out = env(json!({}), "1101").step(&call(json!({"parity": "1", "cot": "1 1 0 1"})));
    assert_eq!(out.reward, 1.0);
    assert_eq!(out.info["cot_correct"], false);
    assert!(out.info["reason"].as_str().unwrap().contains("cot entry 2"));
}

#[test]
fn cot_mode_needs_the_full_correct_chain() {
    let cot = json!({"reward": "cot"});
    for (args, reward, cot_correct, reason) in [
        (
            json!({"parity": "1", "cot": "1001"}),
            1.0,
            json!(true),
            "correct",
        ),
        (
            json!({"parity": "1", "cot": " 1 0 0 1\n"}),
            1.0,
            json!(true),
            "correct",
        ),
        (
            json!({"parity": "1"}),
            0.0,
            json!(null),
            "the cot is required",
        ),
        (
            json!({"parity": "1", "cot": "001"}),
            0.0,
            json!(false),
            "cot has 3 entries, expected 4",
        ),
        (
            json!({"parity": "1", "cot": "10011"}),
            0.0,
            json!(false),
            "cot has 5 entries",
        ),
        (
            json!({"parity": "1", "cot": "1011"}),
            0.0,
            json!(false),
            "cot entry 3",
        ),
        (
            json!({"parity": "0", "cot": "1001"}),
            0.0,
            json!(true),
            "parity 0 is wrong",
        ),
    ] {
        let out = env(cot.clone(), "1101").step(&call(args.clone()));
        assert!(out.terminated, "{args}");
        assert_eq!(out.reward, reward, "{args}: {:?}", out.info);
        assert_eq!(out.success, reward == 1.0);
        assert_eq!(out.info["cot_correct"], cot_correct, "{args}");
        assert!(
            out.info["reason"].as_str().unwrap().starts_with(reason),
            "{args}: {:?}",
            out.info
        );
    }
}

#[test]
fn bad_tool_calls_are_answered_and_count_as_turns() {
    let mut env = env(json!({"max_turns": 8}), "1101");
    for (action, needle) in [
        (
            raw_call("guess", r#"{"parity": "1"}"#),
            "unknown tool `guess`",
        ),
        (raw_call("answer", "{}"), "missing argument `parity`"),
        (
            raw_call("answer", r#"{"parity": "2"}"#),
            "must be \"0\" or \"1\"",
        ),
        (
            raw_call("answer", r#"{"parity": "1", "cot": "10x1"}"#),
            "found 'x'",
        ),
        (
            raw_call("answer", r#"{"parity": "1", "cot": [1, 0]}"#),
            "`cot` must be a string",
        ),
        (
            raw_call("answer", r#"{"parity": "1", "why": "x"}"#),
            "unexpected argument `why`",
        ),
        (raw_call("answer", "{\"parity\""), "not valid JSON"),
    ] {
        let out = env.step(&action);
        assert_eq!(out.messages.len(), 1);
        assert!(
            out.messages[0].content.starts_with("Error: "),
            "{:?}",
            out.messages
        );
        assert!(
            out.messages[0].content.contains(needle),
            "{:?}",
            out.messages
        );
        assert!(!out.terminated && !out.truncated);
    }
    let out = env.step(&Action {
        format_error: Some("bad".into()),
        ..Action::default()
    });
    assert!(out.truncated && !out.terminated);
    assert!(out.messages[0].content.starts_with("Format error: bad"));
    let after = env.step(&call(json!({"parity": "1"})));
    assert!(after.terminated && after.reward == 0.0);
    assert!(after.messages[0].content.contains("episode is over"));
}

#[test]
fn text_only_action_asks_for_a_tool_call() {
    let mut env = env(json!({"max_turns": 2}), "1");
    let out = env.step(&Action::text("the parity is 1"));
    assert_eq!(out.messages[0].role, Role::User);
    assert!(out.messages[0].content.contains("answer"));
    assert!(!out.truncated);
    assert!(env.step(&Action::text("1")).truncated);
}

#[test]
fn extra_calls_after_the_answer_are_not_executed() {
    let mut env = env(json!({}), "11");
    let mut action = call(json!({"parity": "0"}));
    action
        .tool_calls
        .push(ToolCall::new("call_1", "answer", &json!({"parity": "1"})));
    let out = env.step(&action);
    assert_eq!(out.messages.len(), 2);
    assert_eq!(out.messages[1].tool_call_id.as_deref(), Some("call_1"));
    assert!(out.messages[1].content.contains("not executed"));
    assert_eq!(out.reward, 1.0);
}

#[test]
fn expert_wins_on_1000_seeds_in_both_modes() {
    for (mode, config) in [
        ("outcome", json!({})),
        ("cot", json!({"reward": "cot", "min_d": 1, "max_d": 300})),
    ] {
        let mut host = Host::<Parity>::default();
        host.configure(config.to_string().as_bytes());
        for seed in 0..1000u64 {
            let input = json!({"seed": seed}).to_string();
            let reset: Envelope<ResetOutput> =
                serde_json::from_slice(host.reset(input.as_bytes())).unwrap();
            assert!(matches!(reset, Envelope::Ok(_)));
            let expert: Envelope<Option<Action>> = serde_json::from_slice(host.expert()).unwrap();
            let Envelope::Ok(Some(action)) = expert else {
                panic!("no expert")
            };
            let step: Envelope<StepOutput> =
                serde_json::from_slice(host.step(&serde_json::to_vec(&action).unwrap())).unwrap();
            let Envelope::Ok(out) = step else {
                panic!("step failed")
            };
            assert_eq!(out.reward, 1.0, "{mode} seed {seed}: {:?}", out.info);
            assert!(out.terminated && out.success);
            assert_eq!(out.info["cot_correct"], true);
        }
    }
}

#[test]
fn actions_are_bounded_and_mostly_wrong() {
    for bits in ["1", "10", "1101", &"01".repeat(40)] {
        let mut probe = env(json!({"reward": "cot"}), bits);
        let expert = probe.expert().unwrap();
        let actions = probe.actions();
        assert!(actions.len() <= 8);
        assert_eq!(actions[0], expert);
        for (i, action) in actions.iter().enumerate() {
            assert!(!actions[..i].contains(action), "duplicate {action:?}");
            let out = env(json!({"reward": "cot"}), bits).step(action);
            assert!(out.terminated, "{action:?}");
            assert_eq!(out.success, i == 0, "{bits} {action:?}: {:?}", out.info);
        }
    }
}

#[test]
fn generation_respects_the_d_range_and_is_deterministic() {
    let config = Config::from_json(&json!({"min_d": 3, "max_d": 9})).unwrap();
    let mut seen = [false; 10];
    for seed in 0..200 {
        let task = generate(&config, &mut Rng::new(seed));
        assert!((3..=9).contains(&task.bits.len()));
        seen[task.bits.len()] = true;
        assert_eq!(task, generate(&config, &mut Rng::new(seed)));
    }
    assert!(seen[3..=9].iter().all(|s| *s));
    let ones: usize = (0..100)
        .map(|s| {
            generate(&Config::default(), &mut Rng::new(s))
                .bits
                .iter()
                .filter(|b| **b == 1)
                .count()
        })
        .sum();
    assert!(
        (2000..3000).contains(&ones),
        "bits look biased: {ones} ones of 5000"
    );
}

#[test]
fn same_seed_gives_same_bytes_and_replays() {
    let run = |seed: u64| -> (Vec<u8>, ResetOutput) {
        let mut host = Host::<Parity>::default();
        host.configure(br#"{"min_d": 1, "max_d": 64}"#);
        let reset = host
            .reset(json!({"seed": seed}).to_string().as_bytes())
            .to_vec();
        let mut bytes = reset.clone();
        bytes.extend_from_slice(host.actions());
        bytes.extend_from_slice(host.expert());
        let Envelope::Ok(out) = serde_json::from_slice::<Envelope<ResetOutput>>(&reset).unwrap()
        else {
            panic!()
        };
        (bytes, out)
    };
    assert_eq!(run(5).0, run(5).0);
    assert_ne!(run(5).0, run(6).0);
    let (_, first) = run(5);
    assert!(first.task_id.starts_with("parity-d"));
    let mut env = Parity::default();
    env.configure(&json!({"min_d": 1, "max_d": 64})).unwrap();
    assert_eq!(env.reset(99, Some(first.task.clone())).unwrap(), first);
}
