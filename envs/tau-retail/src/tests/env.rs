//! The env protocol: info, config validation, DB import errors, the conversation tools through
//! `step`, turn limits, the expert with a transfer, admissible actions, and the JSON host path.

use sandgym_sdk::{
    Action, Env, Envelope, Host, ResetOutput, Role, StepOutput, ToolCall, Value, json,
};
use tau_common::{END_CONVERSATION, RESPOND, TRANSFER_TO_HUMAN_AGENTS};

use super::common::*;
use crate::tools::{self, TOOL_NAMES};
use crate::{MAX_ACTIONS, TauRetail};

#[test]
fn info_lists_every_tool_once() {
    let info = TauRetail::info();
    assert_eq!(info.name, "tau-retail");
    assert_eq!(info.version, 0);
    let names: Vec<&str> = info
        .tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TOOL_NAMES);
    for tool in &info.tools {
        let f = &tool["function"];
        let props = f["parameters"]["properties"].as_object().unwrap();
        let required: Vec<&str> = f["parameters"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(props.len(), required.len(), "{}", f["name"]);
        let name = f["name"].as_str().unwrap();
        if let Some(params) = tools::params(name) {
            assert_eq!(required, params, "{name}");
        }
    }
    assert!(info.system_prompt.contains("Solo mode"));
    assert!(
        info.capabilities.expert && info.capabilities.actions && info.capabilities.generates_tasks
    );
    assert_eq!(info.default_config["max_turns"], 30);
    assert_eq!(info.default_config["mode"], "solo");
}

#[test]
fn config_is_validated() {
    let mut env = TauRetail::default();
    let err = env.configure(&json!({"mode": "ticket"})).unwrap_err();
    assert!(err.contains("config `mode` must be \"solo\""), "{err}");
    let err = env.configure(&json!({"mode": 3})).unwrap_err();
    assert!(err.contains("`mode`") && err.contains("\"user\""), "{err}");
    let err = env
        .configure(&json!({"mode": "user", "max_user_turns": 0}))
        .unwrap_err();
    assert!(err.contains("`max_user_turns`"), "{err}");
    let err = env.configure(&json!({"usres": 3})).unwrap_err();
    assert!(err.contains("unknown config key `usres`"), "{err}");
    let err = env.configure(&json!({"users": 0})).unwrap_err();
    assert!(err.contains("`users`"), "{err}");
    let err = env.configure(&json!({"products": 99})).unwrap_err();
    assert!(err.contains("`products`"), "{err}");
    let err = env.configure(&json!({"max_turns": "x"})).unwrap_err();
    assert!(err.contains("`max_turns`"), "{err}");
    env.configure(&TauRetail::info().default_config).unwrap();
    env.configure(&Value::Null).unwrap();
    env.configure(&json!({"users": 30, "products": 5, "mode": "solo"}))
        .unwrap();
    assert_eq!(env.db().users.len(), 30);
    assert_eq!(env.db().products.len(), 5);
}

#[test]
fn imported_db_is_validated_with_clear_errors() {
    let mut env = TauRetail::default();
    let bad = |db: Value| {
        let mut env = TauRetail::default();
        env.configure(&json!({"db": db})).unwrap_err()
    };
    assert!(bad(json!([1])).contains("config `db` must be an object"));
    let mut db = small_db();
    db.as_object_mut().unwrap().remove("orders");
    assert!(bad(db).contains("no `orders` table"));
    let mut db = small_db();
    db["users"]["ann_lee_1"]["email"] = json!(5);
    let err = bad(db);
    assert!(
        err.contains("db.users[\"ann_lee_1\"]") && err.contains("invalid type"),
        "{err}"
    );
    let mut db = small_db();
    db["orders"]["#W1"]["colour"] = json!("red");
    let err = bad(db);
    assert!(
        err.contains("db.orders[\"#W1\"]") && err.contains("unknown field `colour`"),
        "{err}"
    );
    let mut db = small_db();
    db["orders"]["#W1"]["user_id"] = json!("ghost");
    assert!(bad(db).contains("unknown user `ghost`"));
    let mut db = small_db();
    db["products"]["1000000001"]["variants"]["2000000001"]["item_id"] = json!("x");
    assert!(bad(db).contains("has item_id `x`"));
    let mut db = small_db();
    db["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]
        .as_object_mut()
        .unwrap()
        .remove("balance");
    assert!(bad(db).contains("gift card without `balance`"));
    let mut db = small_db();
    db["extra"] = json!({});
    assert!(bad(db).contains("unknown key `extra`"));
    // A directory inlined by the host: file names as keys, text files ignored.
    let db = small_db();
    let dir = json!({"users.json": db["users"], "orders.json": db["orders"],
                     "products.json": db["products"], "wiki.md": "policy", "readme.md": "x"});
    env.configure(&json!({"db": dir})).unwrap();
    assert_eq!(env.db().orders.len(), 7);
}

#[test]
fn conversation_tools_through_step() {
    let mut env = small_env();
    let out = env.step(&act(RESPOND, json!({"content": "Hello Ann"})));
    assert_eq!(text(&out), tau_common::conversation::SOLO_RESPOND_REPLY);
    assert!(!out.terminated);
    let out = env.step(&act("calculate", json!({"expression": "2 + 2"})));
    assert_eq!(text(&out), "4.0");
    // Bad JSON arguments and unknown tools are tool errors that use a turn.
    let out = env.step(&Action {
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "c".into(),
            name: tools::GET_USER_DETAILS.into(),
            arguments: "{oops".into(),
        }],
        format_error: None,
    });
    assert!(text(&out).starts_with("Error: arguments of `get_user_details` are not valid JSON"));
    let out = env.step(&act("refund_everything", json!({})));
    assert_eq!(text(&out), "Error: unknown tool `refund_everything`");
    let out = env.step(&Action::text("I will help."));
    assert_eq!(out.messages[0].role, Role::User);
    assert!(out.messages[0].content.contains("No tool call"));
    // Several calls in one turn; the ones after the end are not executed.
    let mut action = act(
        tools::FIND_USER_ID_BY_EMAIL,
        json!({"email": "ann.lee@example.com"}),
    );
    action
        .tool_calls
        .push(ToolCall::new("call_1", END_CONVERSATION, &json!({})));
    action.tool_calls.push(ToolCall::new(
        "call_2",
        tools::CANCEL_PENDING_ORDER,
        &json!({"order_id": "#W1", "reason": "no longer needed"}),
    ));
    let before = env.agent_db_json().unwrap();
    let out = env.step(&action);
    assert_eq!(out.messages.len(), 3);
    assert_eq!(out.messages[0].content, "ann_lee_1");
    assert_eq!(out.messages[1].content, "The conversation has ended.");
    assert!(out.messages[2].content.contains("not executed"));
    assert!(out.terminated && out.success, "{}", out.info);
    assert_eq!(
        out.reward, 1.0,
        "the task changes nothing, so neither did the agent"
    );
    assert_eq!(env.agent_db_json().unwrap(), before);
    assert!(env.step(&act(END_CONVERSATION, json!({}))).terminated);
    assert!(env.expert().is_none());
    assert!(env.actions().is_empty());
}

#[test]
fn transfer_ends_and_verifies() {
    let mut env = small_env();
    env.step(&act(
        tools::CANCEL_PENDING_ORDER,
        json!({"order_id": "#W1", "reason": "no longer needed"}),
    ));
    let out = env.step(&act(TRANSFER_TO_HUMAN_AGENTS, json!({"summary": "angry"})));
    assert_eq!(text(&out), "Transfer successful");
    assert!(out.terminated);
    assert_eq!(out.reward, 0.0);
    assert_eq!(out.info["reason"], "db mismatch");
    assert_eq!(out.info["ended_by"], "transfer_to_human_agents");
}

#[test]
fn turn_limit_truncates_without_reward() {
    let mut env = env_with(json!({"db": small_db(), "max_turns": 2}));
    env.reset(0, Some(json!({"instruction": "x", "actions": []})))
        .unwrap();
    let out = env.step(&act("think", json!({"thought": "a"})));
    assert!(!out.truncated);
    let out = env.step(&act("think", json!({"thought": "b"})));
    assert!(out.truncated && !out.terminated);
    assert_eq!(out.reward, 0.0);
    assert_eq!(out.info["reason"], "turn limit reached");
}

fn tau2_like_task() -> Value {
    json!({
        "id": "x1",
        "user_scenario": {"instructions": {
            "reason_for_call": "You want to cancel order #W1 because you ordered it by mistake, and know how many lamps exist.",
            "known_info": "You are Ann Lee, zip 89501.",
            "unknown_info": null,
            "task_instructions": "."
        }},
        "initial_state": null,
        "evaluation_criteria": {
            "actions": [
                {"action_id": "x1_0", "name": "find_user_id_by_name_zip", "arguments": {"first_name": "Ann", "last_name": "Lee", "zip": "89501"}},
                {"action_id": "x1_1", "name": "get_order_details", "arguments": {"order_id": "#W404"}},
                {"action_id": "x1_2", "name": "cancel_pending_order", "arguments": {"order_id": "#W1", "reason": "ordered by mistake"}},
                {"action_id": "x1_3", "name": "transfer_to_human_agents", "arguments": {"summary": "wants more"}, "compare_args": []}
            ],
            "communicate_info": ["4"],
            "nl_assertions": null,
            "reward_basis": ["DB"]
        }
    })
}

#[test]
fn tau2_task_with_failing_read_outputs_and_transfer() {
    let mut env = env_with(json!({"db": small_db()}));
    let reset = env.reset(0, Some(tau2_like_task())).unwrap();
    assert_eq!(reset.task_id, "tau-retail-tau2-x1");
    assert_eq!(reset.messages[0].role, Role::System);
    assert!(reset.messages[1].content.contains("cancel order #W1"));
    assert!(reset.messages[1].content.contains("Ann Lee, zip 89501"));
    assert!(
        !reset.messages[1].content.contains("How the customer"),
        "'.' instructions are dropped"
    );
    assert_eq!(reset.info["gold_errors"][0]["name"], "get_order_details");
    assert_eq!(reset.info["source"], "tau2");
    let (out, taken) = run_expert(&mut env);
    let names: Vec<&str> = taken
        .iter()
        .map(|a| a.tool_calls[0].name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "find_user_id_by_name_zip",
            "get_order_details",
            "cancel_pending_order",
            RESPOND,
            TRANSFER_TO_HUMAN_AGENTS
        ]
    );
    assert_eq!(out.reward, 1.0, "{}", out.info);
    assert_eq!(out.info["ended_by"], "transfer_to_human_agents");
}

#[test]
fn expert_resumes_after_agent_detours() {
    let mut env = env_with(json!({"db": small_db()}));
    env.reset(0, Some(tau2_like_task())).unwrap();
    // The agent does the gold write first, then reads something unrelated.
    env.step(&act(
        tools::FIND_USER_ID_BY_NAME_ZIP,
        json!({"first_name": "Ann", "last_name": "Lee", "zip": "89501"}),
    ));
    env.step(&act(
        tools::CANCEL_PENDING_ORDER,
        json!({"order_id": "#W1", "reason": "ordered by mistake"}),
    ));
    env.step(&act(
        tools::GET_PRODUCT_DETAILS,
        json!({"product_id": "1000000001"}),
    ));
    let next = env.expert().unwrap();
    assert_eq!(next.tool_calls[0].name, RESPOND);
    let (out, _) = run_expert(&mut env);
    assert_eq!(out.reward, 1.0, "{}", out.info);
}

#[test]
fn actions_are_bounded_and_include_the_expert_and_seen_ids() {
    let mut env = env_with(json!({"db": small_db()}));
    env.reset(0, Some(tau2_like_task())).unwrap();
    let actions = env.actions();
    assert_eq!(actions[0], env.expert().unwrap());
    assert!(
        actions
            .iter()
            .any(|a| a.tool_calls[0].name == tools::GET_ORDER_DETAILS
                && a.tool_calls[0].arguments.contains("#W1")),
        "order ids in the ticket are known"
    );
    env.step(&act(
        tools::GET_USER_DETAILS,
        json!({"user_id": "ann_lee_1"}),
    ));
    env.step(&act(tools::GET_ORDER_DETAILS, json!({"order_id": "#W2"})));
    let actions = env.actions();
    assert!(actions.len() <= MAX_ACTIONS);
    let has = |name: &str, needle: &str| {
        actions
            .iter()
            .any(|a| a.tool_calls[0].name == name && a.tool_calls[0].arguments.contains(needle))
    };
    assert!(has(tools::CANCEL_PENDING_ORDER, "#W1"));
    assert!(has(tools::RETURN_DELIVERED_ORDER_ITEMS, "#W2"));
    assert!(has(tools::GET_ORDER_DETAILS, "#W6"));
    assert!(has(tools::GET_PRODUCT_DETAILS, "1000000001"));
    assert!(has(tools::GET_ITEM_DETAILS, "2000000002"));
    assert!(has(END_CONVERSATION, "{}"));
    // Every listed action runs without a panic and the expert still wins.
    for action in actions {
        let mut fork = env_with(json!({"db": small_db()}));
        fork.reset(0, Some(tau2_like_task())).unwrap();
        fork.step(&action);
    }
    // Many seen ids stay within the bound.
    let mut env = env_with(json!({}));
    env.reset(0, None).unwrap();
    env.step(&act(tools::LIST_ALL_PRODUCT_TYPES, json!({})));
    assert!(env.actions().len() <= MAX_ACTIONS);
    let products: Vec<String> = env.db().products.keys().cloned().collect();
    for id in &products[..3] {
        env.step(&act(tools::GET_PRODUCT_DETAILS, json!({"product_id": id})));
    }
    assert_eq!(env.actions().len(), MAX_ACTIONS);
}

#[test]
fn bad_tasks_are_reset_errors() {
    let mut env = small_env();
    let err = env
        .reset(0, Some(json!({"instruction": 3, "actions": []})))
        .unwrap_err();
    assert!(err.contains("`instruction`"), "{err}");
    let err = env
        .reset(0, Some(json!({"id": "1", "user_scenario": {}})))
        .unwrap_err();
    assert!(err.contains("user_scenario.instructions"), "{err}");
    // The env is not running after a failed reset.
    assert!(env.expert().is_none());
}

#[test]
fn host_json_round_trip() {
    let mut host = Host::<TauRetail>::default();
    let ok: Envelope<()> =
        serde_json::from_slice(host.configure(br#"{"users": 40, "products": 8}"#)).unwrap();
    assert_eq!(ok, Envelope::Ok(()));
    let reset: Result<ResetOutput, String> =
        serde_json::from_slice::<Envelope<ResetOutput>>(host.reset(br#"{"seed": 9}"#))
            .unwrap()
            .into();
    let reset = reset.unwrap();
    assert_eq!(reset.messages.len(), 2);
    loop {
        let action: Option<Action> =
            match serde_json::from_slice::<Envelope<Option<Action>>>(host.expert()).unwrap() {
                Envelope::Ok(a) => a,
                Envelope::Err(e) => panic!("{e}"),
            };
        let action = action.expect("expert move");
        let out: Result<StepOutput, String> = serde_json::from_slice::<Envelope<StepOutput>>(
            host.step(&serde_json::to_vec(&action).unwrap()),
        )
        .unwrap()
        .into();
        let out = out.unwrap();
        if out.terminated {
            assert_eq!(out.reward, 1.0);
            break;
        }
    }
}

#[test]
fn overlay_digest_ignores_records_equal_to_base() {
    use crate::db::{Db, Overlay, overlay_digest};
    let db = Db::from_json(&small_db()).unwrap();
    let base = tau_common::canonical_hash(&db);
    let empty = overlay_digest(&db, base, &Overlay::default());
    let mut same = Overlay::default();
    let (id, order) = db.orders.iter().next().unwrap();
    same.orders.insert(id.clone(), order.clone());
    assert_eq!(overlay_digest(&db, base, &same), empty);
    let mut changed = same.clone();
    changed.orders.get_mut(id).unwrap().status = "cancelled (test)".into();
    assert_ne!(overlay_digest(&db, base, &changed), empty);
    assert_ne!(overlay_digest(&db, base + 1, &same), empty);
}
