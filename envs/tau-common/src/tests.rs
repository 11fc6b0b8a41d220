//! tau-common tests: Python-compatible numbers and JSON, `calculate` against CPython 3.11's answers,
//! task parsing in both formats, the conversation tools, the verifier helpers and the expert cursor.

use super::*;
use sandgym_sdk::{ToolCall, Value, json};

#[test]
fn py_round_matches_python() {
    // Expected values from CPython's round(x, 2).
    for (x, want) in [
        (0.125, 0.12),
        (0.375, 0.38),
        (2.675, 2.67),
        (1.005, 1.0),
        (123456789.125, 123456789.12),
        (-1.235, -1.24),
        (100.0, 100.0),
    ] {
        assert_eq!(py_round(x, 2), want, "round({x}, 2)");
    }
    assert!(py_round(-0.001, 2).is_sign_negative());
    assert!(py_round(f64::INFINITY, 2).is_infinite());
}

#[test]
fn py_float_repr_matches_python() {
    for (x, want) in [
        (4.0, "4.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (1e15, "1000000000000000.0"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-5, "1.5e-05"),
        (-0.0, "-0.0"),
        (123.456, "123.456"),
        (1e22, "1e+22"),
        (2f64.powi(1000), "1.0715086071862673e+301"),
        (f64::INFINITY, "inf"),
        (-2.5, "-2.5"),
    ] {
        assert_eq!(py_float_repr(x), want, "repr({x:e})");
    }
}

#[test]
fn num_keeps_python_int_float_typing() {
    let balance = Num::Int(60);
    let refunded = (balance + Num::Float(12.5)).round(2);
    assert_eq!(refunded, Num::Float(72.5));
    assert_eq!(Num::Int(3).round(2), Num::Int(3));
    assert_ne!(Num::Int(1), Num::Float(1.0));
    assert_ne!(Num::Float(0.0), Num::Float(-0.0));
    assert_eq!((Num::Int(5) - Num::Int(7)).abs(), Num::Int(2));
    assert!(Num::Int(10).lt(Num::Float(10.5)));
    assert!(!Num::Float(0.0).is_positive());
    assert_eq!(Num::Float(54.04).py_str(), "54.04");
    assert_eq!(Num::Int(60).py_str(), "60");
    let parsed: Vec<Num> = serde_json::from_str("[60, 60.0, 47.84, 18446744073709551615]").unwrap();
    assert_eq!(parsed[0], Num::Int(60));
    assert_eq!(parsed[1], Num::Float(60.0));
    assert_eq!(parsed[2], Num::Float(47.84));
    assert!(matches!(parsed[3], Num::Float(_)));
    assert_eq!(
        serde_json::to_string(&parsed[..3]).unwrap(),
        "[60,60.0,47.84]"
    );
}

#[test]
fn dumps_matches_python_json_dumps() {
    #[derive(serde::Serialize)]
    struct Rec {
        order_id: &'static str,
        amount: Num,
        balance: Num,
        items: Vec<&'static str>,
        note: &'static str,
    }
    let rec = Rec {
        order_id: "#W1",
        amount: Num::Float(100.0),
        balance: Num::Int(7),
        items: vec!["a", "b"],
        note: "caf\u{e9} \u{1F600} \"q\"\n\u{1}",
    };
    // json.dumps({"order_id": "#W1", "amount": 100.0, "balance": 7, "items": ["a", "b"],
    //             "note": "café 😀 \"q\"\n\x01"})
    assert_eq!(
        dumps(&rec),
        r##"{"order_id": "#W1", "amount": 100.0, "balance": 7, "items": ["a", "b"], "note": "caf\u00e9 \ud83d\ude00 \"q\"\n\u0001"}"##
    );
    assert_eq!(dumps(&json!({})), "{}");
    assert_eq!(dumps(&json!([])), "[]");
    assert_eq!(
        dumps(&json!({"b": 1e16, "a": [1, {"d": true, "c": null}]})),
        // Objects keep their key order, as Python dicts do.
        r#"{"b": 1e+16, "a": [1, {"d": true, "c": null}]}"#
    );
}

#[test]
fn calculate_matches_cpython() {
    // Each expected text is CPython 3.11's str(round(float(eval(e)), 2)) or f"Error: {exc}".
    let cases: &[(&str, &str)] = &[
        ("2 + 2", "4.0"),
        ("1/3", "0.33"),
        ("10/4", "2.5"),
        ("2**10", "1024.0"),
        ("2**-1", "0.5"),
        ("-2**2", "-4.0"),
        ("(-2)**2", "4.0"),
        ("2**3**2", "512.0"),
        ("7//2", "3.0"),
        ("-7//2", "-4.0"),
        ("7.5//2", "3.0"),
        ("-7.5//2", "-4.0"),
        ("3//-2", "-2.0"),
        ("-3//-2", "1.0"),
        ("1/0", "Error: division by zero"),
        ("1.0/0", "Error: float division by zero"),
        ("1//0", "Error: integer division or modulo by zero"),
        ("1.5//0", "Error: float floor division by zero"),
        ("0**-1", "Error: 0.0 cannot be raised to a negative power"),
        ("0.0**-1", "Error: 0.0 cannot be raised to a negative power"),
        (
            "(-8)**0.5",
            "Error: float() argument must be a string or a real number, not 'complex'",
        ),
        ("10**400", "Error: int too large to convert to float"),
        ("10.0**400", "Error: (34, 'Numerical result out of range')"),
        ("2.675*1", "2.67"),
        ("1.005 + 0", "1.0"),
        ("123456789.125", "123456789.12"),
        ("1e", "Error: invalid characters in expression"),
        ("1e16", "Error: invalid characters in expression"),
        ("x", "Error: invalid characters in expression"),
        ("2 % 3", "Error: invalid characters in expression"),
        ("0.1+0.2", "0.3"),
        ("3 * (4 + 5)", "27.0"),
        ("((1))", "1.0"),
        (
            "()",
            "Error: float() argument must be a string or a real number, not 'tuple'",
        ),
        ("1 2", "Error: invalid syntax (<string>, line 1)"),
        ("(1", "Error: '(' was never closed (<string>, line 1)"),
        ("1)", "Error: unmatched ')' (<string>, line 1)"),
        ("", "Error: invalid syntax (<string>, line 0)"),
        ("  ", "Error: invalid syntax (<string>, line 0)"),
        (
            "08",
            "Error: leading zeros in decimal integer literals are not permitted; use an 0o \
             prefix for octal integers (<string>, line 1)",
        ),
        ("00", "0.0"),
        ("01.5", "1.5"),
        ("1..2", "Error: invalid syntax (<string>, line 1)"),
        ("1.2.3", "Error: invalid syntax (<string>, line 1)"),
        ("2(3)", "Error: 'int' object is not callable"),
        ("()()", "Error: 'tuple' object is not callable"),
        ("-()", "Error: bad operand type for unary -: 'tuple'"),
        (
            "() + 1",
            "Error: can only concatenate tuple (not \"int\") to tuple",
        ),
        (
            "()*2",
            "Error: float() argument must be a string or a real number, not 'tuple'",
        ),
        ("5 - - 3", "8.0"),
        ("+-+3", "-3.0"),
        ("  1+1", "2.0"),
        ("99999999999999999999*99999999999999999999", "1e+40"),
        ("1/3*3", "1.0"),
        (".5+.5", "1.0"),
        ("5.", "5.0"),
        ("2**1000", "1.0715086071862673e+301"),
        ("2**2000", "Error: int too large to convert to float"),
        ("100000000000000000", "1e+17"),
        ("1/100000", "0.0"),
        ("-0.001", "-0.0"),
        ("1 ++ 2", "3.0"),
        ("1/0 +", "Error: invalid syntax (<string>, line 1)"),
        ("7 / 7", "1.0"),
    ];
    for (expr, want) in cases {
        assert_eq!(calculate(expr), *want, "calculate({expr:?})");
    }
}

#[test]
fn calculate_bounds_nesting_and_long_input() {
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    assert!(calculate(&deep).contains("too many nested parentheses"));
    let chain = vec!["1"; 20_000].join("+");
    assert_eq!(calculate(&chain), "20000.0");
    let unary = format!("{}5", "-".repeat(10_001));
    assert_eq!(calculate(&unary), "-5.0");
}

fn tau2_task() -> Value {
    json!({
        "id": "7",
        "description": {"purpose": null},
        "user_scenario": {
            "persona": null,
            "instructions": {
                "task_instructions": "Say yes when asked.",
                "domain": "retail",
                "reason_for_call": "You want to cancel order #W1.",
                "known_info": "You are Ann Lee in zip 12345.",
                "unknown_info": "You do not remember your email."
            }
        },
        "initial_state": null,
        "evaluation_criteria": {
            "actions": [
                {"action_id": "7_0", "name": "find_user_id_by_name_zip",
                 "arguments": {"first_name": "Ann", "last_name": "Lee", "zip": "12345"}, "info": null},
                {"action_id": "7_1", "name": "transfer_to_human_agents",
                 "arguments": {"summary": "x"}, "compare_args": []}
            ],
            "communicate_info": ["10"],
            "nl_assertions": ["Agent says 10."],
            "reward_basis": ["DB", "NL_ASSERTION"]
        }
    })
}

#[test]
fn tau2_tasks_parse_into_a_ticket() {
    let task = TauTask::from_json(&tau2_task()).unwrap();
    assert_eq!(task.id, "7");
    assert_eq!(task.source, TaskSource::Tau2);
    assert_eq!(task.actions.len(), 2);
    assert_eq!(task.actions[0].arguments["zip"], "12345");
    assert_eq!(task.outputs, ["10"]);
    assert_eq!(task.meta["reward_basis"], json!(["DB", "NL_ASSERTION"]));
    for part in [
        "You want to cancel order #W1.",
        "You are Ann Lee in zip 12345.",
        "You do not remember your email.",
        "Say yes when asked.",
    ] {
        assert!(task.instruction.contains(part), "{}", task.instruction);
    }
    assert_eq!(task.task_id("tau-retail"), "tau-retail-tau2-7");
    // The sandgym form replays the same task.
    let again = TauTask::from_json(&task.to_json()).unwrap();
    assert_eq!(again, task);
}

#[test]
fn bad_tau2_tasks_name_the_field() {
    let mut t = tau2_task();
    t["user_scenario"]["instructions"]["reason_for_call"] = json!(3);
    let err = TauTask::from_json(&t).unwrap_err();
    assert!(
        err.contains("user_scenario.instructions.reason_for_call"),
        "{err}"
    );
    let mut t = tau2_task();
    t["evaluation_criteria"]["actions"][1]["arguments"] = json!([1]);
    let err = TauTask::from_json(&t).unwrap_err();
    assert!(
        err.contains("evaluation_criteria.actions[1].arguments"),
        "{err}"
    );
    let mut t = tau2_task();
    t["initial_state"] = json!({"x": 1});
    assert!(
        TauTask::from_json(&t)
            .unwrap_err()
            .contains("initial_state")
    );
    let mut t = tau2_task();
    t.as_object_mut().unwrap().remove("id");
    assert!(TauTask::from_json(&t).unwrap_err().contains("`id`"));
    let mut t = tau2_task();
    t["evaluation_criteria"]["communicate_info"] = json!([1]);
    let err = TauTask::from_json(&t).unwrap_err();
    assert!(err.contains("communicate_info[0]"), "{err}");
}

#[test]
fn sandgym_tasks_parse_and_validate() {
    let t = json!({
        "instruction": "Cancel #W1.",
        "actions": [{"name": "cancel_pending_order", "kwargs": {"order_id": "#W1", "reason": "no longer needed"}}],
        "user_id": "ann_lee_1"
    });
    let task = TauTask::from_json(&t).unwrap();
    assert_eq!(task.source, TaskSource::Generated);
    assert_eq!(task.id.len(), 16);
    assert_eq!(task.meta["user_id"], "ann_lee_1");
    assert_eq!(task.actions[0].arguments["reason"], "no longer needed");
    assert!(task.outputs.is_empty());
    assert_eq!(TauTask::from_json(&task.to_json()).unwrap(), task);

    let err =
        TauTask::from_json(&json!({"instruction": "x", "actions": [], "bogus": 1})).unwrap_err();
    assert!(err.contains("unknown field `bogus`"), "{err}");
    let err = TauTask::from_json(&json!({"actions": []})).unwrap_err();
    assert!(err.contains("`instruction` is missing"), "{err}");
    let err = TauTask::from_json(&json!({"instruction": "x"})).unwrap_err();
    assert!(err.contains("`actions` is missing"), "{err}");
    let err = TauTask::from_json(&json!({"instruction": "x", "actions": [{"arguments": {}}]}))
        .unwrap_err();
    assert!(err.contains("actions[0].name"), "{err}");
    let err = TauTask::from_json(&json!({"instruction": "x", "actions": [], "source": "v9"}))
        .unwrap_err();
    assert!(err.contains("`source`"), "{err}");
    assert!(
        TauTask::from_json(&json!([1]))
            .unwrap_err()
            .contains("JSON object")
    );
}

#[test]
fn split_for_seed_is_stable_and_about_a_fifth() {
    let tests = (0..10_000).filter(|&s| split_for_seed(s) == "test").count();
    assert!((1500..2500).contains(&tests), "{tests}");
    assert_eq!(split_for_seed(12), split_for_seed(12));
}

#[test]
fn conversation_tools_behave_like_the_original() {
    let mut conv = Conversation::default();
    let reply = conv
        .handle(RESPOND, &json!({"content": "Hi"}))
        .unwrap()
        .unwrap();
    assert_eq!(reply.text, conversation::SOLO_RESPOND_REPLY);
    assert_eq!(reply.ending, None);
    assert_eq!(conv.responses, ["Hi"]);
    let r = conv
        .handle(CALCULATE, &json!({"expression": "1 + 2"}))
        .unwrap()
        .unwrap();
    assert_eq!(r.text, "3.0");
    let r = conv
        .handle(THINK, &json!({"thought": "hmm"}))
        .unwrap()
        .unwrap();
    assert_eq!(r.text, "");
    let r = conv
        .handle(TRANSFER_TO_HUMAN_AGENTS, &json!({"summary": "s"}))
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.text.as_str(), r.ending),
        ("Transfer successful", Some(Ending::Transfer))
    );
    let r = conv.handle(END_CONVERSATION, &json!({})).unwrap().unwrap();
    assert_eq!(r.ending, Some(Ending::EndConversation));
    assert!(conv.handle("get_user_details", &json!({})).is_none());
    // Bad arguments are errors and record nothing.
    let err = conv.handle(RESPOND, &json!({})).unwrap().unwrap_err();
    assert!(err.contains("missing argument `content`"), "{err}");
    let err = conv
        .handle(RESPOND, &json!({"content": "x", "y": 1}))
        .unwrap()
        .unwrap_err();
    assert!(err.contains("unexpected argument `y`"), "{err}");
    let err = conv
        .handle(RESPOND, &json!({"content": 5}))
        .unwrap()
        .unwrap_err();
    assert!(err.contains("must be a string"), "{err}");
    let err = conv
        .handle(END_CONVERSATION, &json!({"now": true}))
        .unwrap()
        .unwrap_err();
    assert!(err.contains("unexpected argument `now`"), "{err}");
    assert_eq!(conv.responses, ["Hi"]);
    let schemas = conversation_tool_schemas(&CONVERSATION_TOOLS);
    assert_eq!(schemas.len(), 5);
    assert_eq!(
        schemas[0]["function"]["parameters"]["required"],
        json!(["content"])
    );
}

#[test]
fn args_check_keys_and_types() {
    let call = ToolCall::new(
        "c",
        "t",
        &json!({"a": "x", "l": ["1", "2"], "n": 3, "f": 2.5}),
    );
    let args = Args::parse(&call, &["a", "l", "n", "f"]).unwrap();
    assert_eq!(args.str("a").unwrap(), "x");
    assert_eq!(args.str_list("l").unwrap(), ["1", "2"]);
    assert_eq!(args.int("n").unwrap(), 3);
    assert_eq!(args.num("f").unwrap(), Num::Float(2.5));
    assert!(args.str("n").unwrap_err().contains("must be a string"));
    assert!(args.str_list("a").unwrap_err().contains("list of strings"));
    assert!(args.int("f").unwrap_err().contains("an integer"));
    assert!(
        Args::parse(&call, &["a"])
            .unwrap_err()
            .contains("unexpected argument")
    );
    let call = ToolCall::new("c", "t", &json!({"l": [1]}));
    let args = Args::parse(&call, &["l"]).unwrap();
    assert!(args.str_list("l").is_err());
    assert!(
        Args::parse(&call, &["l", "m"])
            .unwrap_err()
            .contains("missing argument `m`")
    );
    let bad = ToolCall {
        id: "c".into(),
        name: "t".into(),
        arguments: "[1]".into(),
    };
    assert!(Args::parse(&bad, &[]).unwrap_err().contains("JSON object"));
}

#[test]
fn outputs_rule_is_tau_bench_substring_rule() {
    let said = vec!["The total is $1,234.50 and you have 10 options.".to_string()];
    assert!(output_found("1234.50", &said));
    assert!(output_found("10 OPTIONS", &said));
    assert!(
        !output_found("1,234.50", &said),
        "the output keeps its commas"
    );
    assert!(!output_found("99", &said));
    assert_eq!(
        outputs_missing(&["10".into(), "7".into()], &said),
        vec!["7".to_string()]
    );
}

#[test]
fn verdict_and_hash() {
    let v = verdict(true, 1, 1, vec![], "end_conversation");
    assert_eq!((v.reward, v.success), (1.0, true));
    assert_eq!(v.info["reason"], "solved");
    let v = verdict(false, 1, 2, vec!["x".into()], "transfer_to_human_agents");
    assert_eq!((v.reward, v.success), (0.0, false));
    assert_eq!(v.info["reason"], "db mismatch and outputs missing");
    assert_eq!(v.info["outputs_missing"], json!(["x"]));
    assert_eq!(v.info["gold_db_hash"], "0000000000000002");
    let a = json!({"a": "x", "b": [1, 2.5]});
    let b: Value = serde_json::from_str(r#"{"b": [1, 2.5], "a": "x"}"#).unwrap();
    // Equal whatever the key order, as Python dicts; `Value` objects keep their order when written.
    assert!(values_equal(&a, &b));
    assert_eq!(canonical_json(&b), r#"{"b":[1,2.5],"a":"x"}"#);
    assert_eq!(
        canonical_hash(&a),
        sandgym_sdk::stable_hash(canonical_json(&a).as_bytes())
    );
    assert!(!values_equal(&json!({"x": 1}), &json!({"x": 1.0})));
    assert_ne!(
        canonical_hash(&json!({"x": 1})),
        canonical_hash(&json!({"x": 1.0}))
    );
}

#[test]
fn replay_skips_talk_and_terminate_tools_and_survives_errors() {
    let actions = vec![
        GoldAction::new("add", json!({"n": 2})),
        GoldAction::new("fail", json!({})),
        GoldAction::new(TRANSFER_TO_HUMAN_AGENTS, json!({"summary": "s"})),
        GoldAction::new("add", json!({"n": 3})),
    ];
    let mut db = 0i64;
    let steps = replay_gold(&mut db, &actions, |db, a| match a.name.as_str() {
        "add" => {
            *db += a.arguments["n"].as_i64().unwrap();
            db.to_string()
        }
        _ => "Error: nope".to_string(),
    });
    assert_eq!(db, 5);
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.error, s.skipped))
            .collect::<Vec<_>>(),
        [(false, false), (true, false), (false, true), (false, false)]
    );
}

#[test]
fn expert_plan_and_cursor() {
    let task = TauTask::from_json(&tau2_task()).unwrap();
    let plan = expert_plan(&task);
    let names: Vec<&str> = plan.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "find_user_id_by_name_zip",
            RESPOND,
            TRANSFER_TO_HUMAN_AGENTS
        ]
    );
    assert!(
        plan[1].arguments["content"]
            .as_str()
            .unwrap()
            .contains("10")
    );

    let plan = vec![
        GoldAction::new("read", json!({"id": 1})),
        GoldAction::new("write", json!({"id": 1})),
        GoldAction::new("read", json!({"id": 2})),
        GoldAction::new(END_CONVERSATION, json!({})),
    ];
    let is_write = |n: &str| n == "write";
    let mut cursor = ExpertCursor::new(plan);
    assert_eq!(cursor.peek().unwrap().name, "read");
    // An unrelated call does not move the cursor.
    cursor.observe(&ToolCall::new("c", "read", &json!({"id": 9})), is_write);
    assert_eq!(cursor.peek().unwrap().arguments["id"], 1);
    // A later read past a pending write does not skip the write.
    cursor.observe(&ToolCall::new("c", "read", &json!({"id": 2})), is_write);
    assert_eq!(cursor.peek().unwrap().arguments["id"], 1);
    // Skipping a read to do the write is fine.
    cursor.observe(&ToolCall::new("c", "write", &json!({"id": 1})), is_write);
    assert_eq!(cursor.peek().unwrap().arguments["id"], 2);
    cursor.observe(&ToolCall::new("c", "read", &json!({"id": 2})), is_write);
    assert_eq!(
        cursor.next_action().unwrap().tool_calls[0].name,
        END_CONVERSATION
    );
}

#[test]
fn db_digest_depends_on_base_and_changes_only() {
    let digest = |base: u64, changes: &[(&str, &str, Option<Value>)]| {
        let mut d = DbDigest::new(base);
        for (table, key, record) in changes {
            d.change(table, key, record.as_ref());
        }
        d.finish()
    };
    let none: &[(&str, &str, Option<Value>)] = &[];
    assert_eq!(digest(1, none), digest(1, none));
    assert_ne!(digest(1, none), digest(2, none));
    let one = [("users", "u1", Some(json!({"x": 1})))];
    assert_eq!(digest(1, &one), digest(1, &one));
    assert_ne!(digest(1, &one), digest(1, none));
    assert_ne!(digest(1, &one), digest(1, &[("users", "u1", None)]));
    assert_ne!(
        digest(1, &one),
        digest(1, &[("users", "u1", Some(json!({"x": 1.0})))])
    );
    assert_ne!(
        digest(1, &one),
        digest(1, &[("orders", "u1", Some(json!({"x": 1})))])
    );
    // `changes` drops records equal to their base version.
    let base: std::collections::BTreeMap<String, i64> = [("a".into(), 1), ("b".into(), 2)].into();
    let effective: std::collections::BTreeMap<String, i64> =
        [("a".into(), 1), ("b".into(), 3)].into();
    let mut d = DbDigest::new(7);
    d.changes("t", effective.keys(), |k| effective.get(k), |k| base.get(k));
    let mut want = DbDigest::new(7);
    want.change("t", "b", Some(&3));
    assert_eq!(d.finish(), want.finish());
}

#[test]
fn num_arithmetic_follows_python() {
    use crate::Num;
    assert!(matches!(Num::Int(3).times(4), Num::Int(12)));
    assert_eq!(Num::Float(1.5).times(2), Num::Float(3.0));
    // Python ints do not overflow; beyond i64 the value is kept approximately, as a float.
    assert!(matches!(Num::Int(i64::MAX).times(2), Num::Float(_)));
    assert!(matches!(-Num::Int(5), Num::Int(-5)));
    assert_eq!(-Num::Float(2.5), Num::Float(-2.5));
    // sum() starts from the int 0: all ints stay an int, one float makes a float.
    assert!(matches!(
        [Num::Int(1), Num::Int(2)].into_iter().sum::<Num>(),
        Num::Int(3)
    ));
    assert!(matches!(
        [Num::Int(1), Num::Float(2.0)].into_iter().sum::<Num>(),
        Num::Float(_)
    ));
    assert!(matches!(
        std::iter::empty::<Num>().sum::<Num>(),
        Num::Int(0)
    ));
}
