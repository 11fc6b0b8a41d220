//! Every tool on the small DB: success paths with exact state changes, every error path, and bad
//! arguments that must leave the DB unchanged.

use sandgym_sdk::{Env, Value, json};

use super::common::*;
use crate::TauRetail;
use crate::tools::*;

fn run(env: &mut TauRetail, name: &str, args: Value) -> String {
    env.run_tool(name, &args)
}

fn user(env: &mut TauRetail, id: &str) -> Value {
    serde_json::from_str(&run(env, GET_USER_DETAILS, json!({"user_id": id}))).unwrap()
}

fn order(env: &mut TauRetail, id: &str) -> Value {
    serde_json::from_str(&run(env, GET_ORDER_DETAILS, json!({"order_id": id}))).unwrap()
}

fn balance(env: &mut TauRetail, gift_card: &str) -> Value {
    user(env, "ann_lee_1")["payment_methods"][gift_card]["balance"].clone()
}

/// Runs a call that must fail with `want` and change nothing.
fn assert_error(env: &mut TauRetail, name: &str, args: Value, want: &str) {
    let before = env.agent_db_json().unwrap();
    let got = run(env, name, args.clone());
    assert_eq!(got, want, "{name}({args})");
    assert_eq!(
        env.agent_db_json().unwrap(),
        before,
        "{name}({args}) changed the DB"
    );
}

#[test]
fn lookups() {
    let mut env = small_env();
    assert_eq!(
        run(
            &mut env,
            FIND_USER_ID_BY_EMAIL,
            json!({"email": "ann.lee@example.com"})
        ),
        "ann_lee_1"
    );
    assert_eq!(
        run(
            &mut env,
            FIND_USER_ID_BY_EMAIL,
            json!({"email": "BOB.kim@EXAMPLE.com"})
        ),
        "bob_kim_2"
    );
    assert_error(
        &mut env,
        FIND_USER_ID_BY_EMAIL,
        json!({"email": "nobody@example.com"}),
        "Error: user not found",
    );
    assert_eq!(
        run(
            &mut env,
            FIND_USER_ID_BY_NAME_ZIP,
            json!({"first_name": "ann", "last_name": "LEE", "zip": "89501"})
        ),
        "ann_lee_1"
    );
    assert_error(
        &mut env,
        FIND_USER_ID_BY_NAME_ZIP,
        json!({"first_name": "Ann", "last_name": "Lee", "zip": "89502"}),
        "Error: user not found",
    );
}

#[test]
fn reads_answer_with_json_dumps_of_the_record() {
    let mut env = small_env();
    let db = small_db();
    assert_eq!(user(&mut env, "ann_lee_1"), db["users"]["ann_lee_1"]);
    assert_eq!(order(&mut env, "#W2"), db["orders"]["#W2"]);
    let text = run(&mut env, GET_ORDER_DETAILS, json!({"order_id": "#W6"}));
    assert_eq!(
        text,
        r##"{"order_id": "#W6", "user_id": "ann_lee_1", "address": {"address1": "1 Main St", "address2": "Apt 2", "city": "Reno", "country": "USA", "state": "NV", "zip": "89501"}, "items": [{"name": "Lamp", "product_id": "1000000001", "item_id": "2000000001", "price": 10.5, "options": {"color": "red"}}], "fulfillments": [], "status": "delivered", "payment_history": [{"transaction_type": "payment", "amount": 10.5, "payment_method_id": "gift_card_1"}]}"##
    );
    assert_error(
        &mut env,
        GET_USER_DETAILS,
        json!({"user_id": "ann"}),
        "Error: user not found",
    );
    assert_error(
        &mut env,
        GET_ORDER_DETAILS,
        json!({"order_id": "W1"}),
        "Error: order not found",
    );
    let product: Value = serde_json::from_str(&run(
        &mut env,
        GET_PRODUCT_DETAILS,
        json!({"product_id": "1000000001"}),
    ))
    .unwrap();
    assert_eq!(product, db["products"]["1000000001"]);
    assert_error(
        &mut env,
        GET_PRODUCT_DETAILS,
        json!({"product_id": "2000000001"}),
        "Error: product not found",
    );
    assert_eq!(
        run(&mut env, GET_ITEM_DETAILS, json!({"item_id": "2000000003"})),
        r#"{"item_id": "2000000003", "options": {"color": "green"}, "available": false, "price": 9.0}"#
    );
    assert_error(
        &mut env,
        GET_ITEM_DETAILS,
        json!({"item_id": "1000000001"}),
        "Error: item not found",
    );
    assert_eq!(
        run(&mut env, LIST_ALL_PRODUCT_TYPES, json!({})),
        r#"{"Desk": "1000000002", "Lamp": "1000000001"}"#
    );
    assert_eq!(
        run(
            &mut env,
            "calculate",
            json!({"expression": "(10.5 + 12.25) * 2"})
        ),
        "45.5"
    );
    assert_eq!(
        run(&mut env, "calculate", json!({"expression": "1 / 0"})),
        "Error: division by zero"
    );
    assert_eq!(run(&mut env, "think", json!({"thought": "hmm"})), "");
}

#[test]
fn cancel_refunds_every_payment_and_credits_gift_cards_at_once() {
    let mut env = small_env();
    assert_error(
        &mut env,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W0", "reason": "no longer needed"}),
        "Error: order not found",
    );
    for id in ["#W2", "#W3", "#W4"] {
        assert_error(
            &mut env,
            CANCEL_PENDING_ORDER,
            json!({"order_id": id, "reason": "no longer needed"}),
            "Error: non-pending order cannot be cancelled",
        );
    }
    assert_error(
        &mut env,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W1", "reason": "too pricey"}),
        "Error: invalid reason",
    );
    assert_eq!(balance(&mut env, "gift_card_1"), json!(60));
    let text = run(
        &mut env,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W1", "reason": "ordered by mistake"}),
    );
    let o: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["cancel_reason"], "ordered by mistake");
    assert_eq!(
        o["payment_history"],
        json!([{"transaction_type": "payment", "amount": 21.0, "payment_method_id": "gift_card_1"},
               {"transaction_type": "refund", "amount": 21.0, "payment_method_id": "gift_card_1"}])
    );
    assert!(text.ends_with(r#""status": "cancelled", "payment_history": [{"transaction_type": "payment", "amount": 21.0, "payment_method_id": "gift_card_1"}, {"transaction_type": "refund", "amount": 21.0, "payment_method_id": "gift_card_1"}], "cancel_reason": "ordered by mistake"}"#), "{text}");
    // int 60 + 21.0 is the float 81.0, as in Python.
    assert_eq!(balance(&mut env, "gift_card_1"), json!(81.0));
    assert_error(
        &mut env,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W1", "reason": "ordered by mistake"}),
        "Error: non-pending order cannot be cancelled",
    );
    // A card payment is refunded without touching any balance.
    run(
        &mut env,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W5", "reason": "no longer needed"}),
    );
    assert_eq!(
        order(&mut env, "#W5")["payment_history"][1]["transaction_type"],
        "refund"
    );
    assert_eq!(balance(&mut env, "gift_card_1"), json!(81.0));
}

#[test]
fn gift_card_balances_are_rounded_to_cents_like_python() {
    let mut db = small_db();
    db["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]["balance"] = json!(0.1);
    db["orders"]["#W1"]["payment_history"][0]["amount"] = json!(0.2);
    let mut env = env_with(json!({"db": db}));
    env.reset(0, Some(json!({"instruction": "x", "actions": []})))
        .unwrap();
    run(
        &mut env,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W1", "reason": "no longer needed"}),
    );
    // 0.1 + 0.2 == 0.30000000000000004 in floats; round(…, 2) gives 0.3.
    assert_eq!(balance(&mut env, "gift_card_1"), json!(0.3));
    // 2.675 is stored as 2.67499999…: Python's round gives 2.67, not 2.68.
    let mut db = small_db();
    db["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]["balance"] = json!(2.675);
    db["orders"]["#W5"]["payment_history"][0]["amount"] = json!(0.0);
    let mut env = env_with(json!({"db": db}));
    env.reset(0, Some(json!({"instruction": "x", "actions": []})))
        .unwrap();
    run(
        &mut env,
        MODIFY_PENDING_ORDER_PAYMENT,
        json!({"order_id": "#W5", "payment_method_id": "gift_card_1"}),
    );
    assert_eq!(balance(&mut env, "gift_card_1"), json!(2.67));
}

#[test]
fn modify_address_of_pending_orders_and_users() {
    let mut env = small_env();
    let addr = json!({"address1": "5 New Rd", "address2": "", "city": "Omaha", "state": "NE", "country": "USA", "zip": "68101"});
    let mut args = addr.clone();
    args["order_id"] = json!("#W5");
    let o: Value =
        serde_json::from_str(&run(&mut env, MODIFY_PENDING_ORDER_ADDRESS, args.clone())).unwrap();
    assert_eq!(o["address"], addr);
    assert_eq!(o["status"], "pending");
    args["order_id"] = json!("#W3");
    assert_error(
        &mut env,
        MODIFY_PENDING_ORDER_ADDRESS,
        args.clone(),
        "Error: non-pending order cannot be modified",
    );
    args["order_id"] = json!("#W0");
    assert_error(
        &mut env,
        MODIFY_PENDING_ORDER_ADDRESS,
        args,
        "Error: order not found",
    );
    let mut args = addr.clone();
    args["user_id"] = json!("bob_kim_2");
    let u: Value = serde_json::from_str(&run(&mut env, MODIFY_USER_ADDRESS, args.clone())).unwrap();
    assert_eq!(u["address"], addr);
    assert_eq!(user(&mut env, "bob_kim_2")["address"], addr);
    args["user_id"] = json!("bob");
    assert_error(&mut env, MODIFY_USER_ADDRESS, args, "Error: user not found");
}

#[test]
fn modify_items_pays_or_refunds_the_difference() {
    let mut env = small_env();
    let call = |order: &str, items: Value, new: Value, pm: &str| json!({"order_id": order, "item_ids": items, "new_item_ids": new, "payment_method_id": pm});
    let e = &mut env;
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call("#W0", json!([]), json!([]), "gift_card_1"),
        "Error: order not found",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W2",
            json!(["2000000001"]),
            json!(["2000000002"]),
            "gift_card_1",
        ),
        "Error: non-pending order cannot be modified",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000002"]),
            json!(["2000000001"]),
            "gift_card_1",
        ),
        "Error: 2000000002 not found",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000001", "2000000001", "2000000001"]),
            json!(["2000000002", "2000000002", "2000000002"]),
            "gift_card_1",
        ),
        "Error: 2000000001 not found",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000001"]),
            json!(["2000000002", "2000000004"]),
            "gift_card_1",
        ),
        "Error: the number of items to be exchanged should match",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000001"]),
            json!(["2000000003"]),
            "gift_card_1",
        ),
        "Error: new item 2000000003 not found or available",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000001"]),
            json!(["3000000001"]),
            "gift_card_1",
        ),
        "Error: new item 3000000001 not found or available",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000001"]),
            json!(["2000000002"]),
            "paypal_2",
        ),
        "Error: payment method not found",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000001"]),
            json!(["2000000004"]),
            "gift_card_2",
        ),
        "Error: insufficient gift card balance to pay for the new item",
    );

    // Two identical items, both changed: the original's loop takes the first unchanged match each time.
    let o: Value = serde_json::from_str(&run(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        call(
            "#W1",
            json!(["2000000001", "2000000001"]),
            json!(["2000000002", "2000000004"]),
            "credit_card_1",
        ),
    ))
    .unwrap();
    assert_eq!(o["status"], "pending (item modified)");
    assert_eq!(o["items"][0]["item_id"], "2000000002");
    assert_eq!(o["items"][0]["price"], json!(12.25));
    assert_eq!(o["items"][0]["options"], json!({"color": "blue"}));
    assert_eq!(o["items"][1]["item_id"], "2000000004");
    assert_eq!(o["items"][1]["price"], json!(80.0));
    // (12.25 - 10.5) + (80.0 - 10.5) = 71.25, charged to the card; no gift card moves.
    assert_eq!(
        o["payment_history"][1],
        json!({"transaction_type": "payment", "amount": 71.25, "payment_method_id": "credit_card_1"})
    );
    assert_eq!(balance(e, "gift_card_1"), json!(60));
}

#[test]
fn modify_items_refund_to_gift_card_and_only_once() {
    let mut env = small_env();
    let e = &mut env;
    // 12.25 -> 10.5: a refund of 1.75 credited to the gift card.
    let o: Value = serde_json::from_str(&run(e, MODIFY_PENDING_ORDER_ITEMS, json!({"order_id": "#W5", "item_ids": ["2000000002"], "new_item_ids": ["2000000001"], "payment_method_id": "gift_card_1"}))).unwrap();
    assert_eq!(
        o["payment_history"][1],
        json!({"transaction_type": "refund", "amount": 1.75, "payment_method_id": "gift_card_1"})
    );
    assert_eq!(balance(e, "gift_card_1"), json!(61.75));
    assert_error(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        json!({"order_id": "#W5", "item_ids": ["2000000001"], "new_item_ids": ["2000000002"], "payment_method_id": "gift_card_1"}),
        "Error: non-pending order cannot be modified",
    );
    assert_error(
        e,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W5", "reason": "no longer needed"}),
        "Error: non-pending order cannot be cancelled",
    );
    // An empty modification is accepted as in the original: a zero refund row (int 0).
    let text = run(
        e,
        MODIFY_PENDING_ORDER_ITEMS,
        json!({"order_id": "#W9", "item_ids": [], "new_item_ids": [], "payment_method_id": "paypal_2"}),
    );
    assert!(
        text.contains(
            r#"{"transaction_type": "refund", "amount": 0, "payment_method_id": "paypal_2"}"#
        ),
        "{text}"
    );
}

#[test]
fn modify_payment_moves_the_single_payment() {
    let mut env = small_env();
    let e = &mut env;
    let call = |order: &str, pm: &str| json!({"order_id": order, "payment_method_id": pm});
    assert_error(
        e,
        MODIFY_PENDING_ORDER_PAYMENT,
        call("#W0", "paypal_1"),
        "Error: order not found",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_PAYMENT,
        call("#W3", "paypal_1"),
        "Error: non-pending order cannot be modified",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_PAYMENT,
        call("#W5", "paypal_2"),
        "Error: payment method not found",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_PAYMENT,
        call("#W5", "credit_card_1"),
        "Error: the new payment method should be different from the current one",
    );
    assert_error(
        e,
        MODIFY_PENDING_ORDER_PAYMENT,
        call("#W5", "gift_card_2"),
        "Error: insufficient gift card balance to pay for the order",
    );
    let o: Value = serde_json::from_str(&run(
        e,
        MODIFY_PENDING_ORDER_PAYMENT,
        call("#W5", "gift_card_1"),
    ))
    .unwrap();
    assert_eq!(
        o["payment_history"],
        json!([{"transaction_type": "payment", "amount": 12.25, "payment_method_id": "credit_card_1"},
               {"transaction_type": "payment", "amount": 12.25, "payment_method_id": "gift_card_1"},
               {"transaction_type": "refund", "amount": 12.25, "payment_method_id": "credit_card_1"}])
    );
    assert_eq!(o["status"], "pending");
    assert_eq!(balance(e, "gift_card_1"), json!(47.75));
    assert_error(
        e,
        MODIFY_PENDING_ORDER_PAYMENT,
        call("#W5", "paypal_1"),
        "Error: there should be exactly one payment for a pending order",
    );
    // Paying away from a gift card credits it at once.
    run(e, MODIFY_PENDING_ORDER_PAYMENT, call("#W1", "paypal_1"));
    assert_eq!(balance(e, "gift_card_1"), json!(68.75));
}

#[test]
fn return_delivered_items() {
    let mut env = small_env();
    let e = &mut env;
    let call = |order: &str, items: Value, pm: &str| json!({"order_id": order, "item_ids": items, "payment_method_id": pm});
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W0", json!(["2000000001"]), "credit_card_1"),
        "Error: order not found",
    );
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W1", json!(["2000000001"]), "gift_card_1"),
        "Error: non-delivered order cannot be returned",
    );
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W2", json!(["2000000001"]), "paypal_2"),
        "Error: payment method not found",
    );
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W2", json!(["2000000001"]), "paypal_1"),
        "Error: payment method should be either the original payment method or a gift card",
    );
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W2", json!(["2000000004"]), "credit_card_1"),
        "Error: some item not found",
    );
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W2", json!(["2000000001", "2000000001"]), "credit_card_1"),
        "Error: some item not found",
    );
    let o: Value = serde_json::from_str(&run(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W2", json!(["2000000002", "2000000001"]), "credit_card_1"),
    ))
    .unwrap();
    assert_eq!(o["status"], "return requested");
    assert_eq!(o["return_items"], json!(["2000000001", "2000000002"]));
    assert_eq!(o["return_payment_method_id"], "credit_card_1");
    assert_eq!(
        balance(e, "gift_card_1"),
        json!(60),
        "a return changes no balance"
    );
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W2", json!(["2000000001"]), "credit_card_1"),
        "Error: non-delivered order cannot be returned",
    );
    // Any gift card of the user may take the refund.
    let o: Value = serde_json::from_str(&run(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        call("#W6", json!(["2000000001"]), "gift_card_2"),
    ))
    .unwrap();
    assert_eq!(o["return_payment_method_id"], "gift_card_2");
}

#[test]
fn exchange_delivered_items() {
    let mut env = small_env();
    let e = &mut env;
    let call = |order: &str, items: Value, new: Value, pm: &str| json!({"order_id": order, "item_ids": items, "new_item_ids": new, "payment_method_id": pm});
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call("#W0", json!([]), json!([]), "credit_card_1"),
        "Error: order not found",
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call("#W1", json!([]), json!([]), "credit_card_1"),
        "Error: non-delivered order cannot be exchanged",
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call(
            "#W2",
            json!(["2000000004"]),
            json!(["2000000001"]),
            "credit_card_1",
        ),
        "Error: 2000000004 not found",
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call("#W2", json!(["2000000001"]), json!([]), "credit_card_1"),
        "Error: the number of items to be exchanged should match",
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call(
            "#W2",
            json!(["2000000001"]),
            json!(["2000000003"]),
            "credit_card_1",
        ),
        "Error: new item 2000000003 not found or available",
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call(
            "#W2",
            json!(["2000000001"]),
            json!(["2000000002"]),
            "paypal_2",
        ),
        "Error: payment method not found",
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call(
            "#W2",
            json!(["2000000001"]),
            json!(["2000000004"]),
            "gift_card_2",
        ),
        "Error: insufficient gift card balance to pay for the price difference",
    );
    let o: Value = serde_json::from_str(&run(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call(
            "#W2",
            json!(["2000000002", "2000000001"]),
            json!(["2000000004", "2000000002"]),
            "credit_card_1",
        ),
    ))
    .unwrap();
    assert_eq!(o["status"], "exchange requested");
    assert_eq!(o["exchange_items"], json!(["2000000001", "2000000002"]));
    assert_eq!(o["exchange_new_items"], json!(["2000000002", "2000000004"]));
    assert_eq!(o["exchange_payment_method_id"], "credit_card_1");
    // (80 - 12.25) + (12.25 - 10.5), rounded to cents.
    assert_eq!(o["exchange_price_difference"], json!(69.5));
    assert_eq!(
        o["items"][0]["item_id"], "2000000001",
        "an exchange keeps the items until returned"
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call("#W2", json!([]), json!([]), "credit_card_1"),
        "Error: non-delivered order cannot be exchanged",
    );
    // A cheaper exchange paid by a low gift card is fine (negative difference).
    let text = run(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        call("#W6", json!([]), json!([]), "gift_card_2"),
    );
    assert!(
        text.ends_with(r#""exchange_price_difference": 0}"#),
        "{text}"
    );
}

#[test]
fn bad_arguments_and_unknown_tools_change_nothing() {
    let mut env = small_env();
    let e = &mut env;
    let good = json!({"order_id": "#W1", "reason": "no longer needed"});
    assert_error(
        e,
        CANCEL_PENDING_ORDER,
        json!({"order_id": "#W1"}),
        "Error: missing argument `reason` for `cancel_pending_order`",
    );
    let mut extra = good.clone();
    extra["force"] = json!(true);
    assert_error(
        e,
        CANCEL_PENDING_ORDER,
        extra,
        "Error: unexpected argument `force` for `cancel_pending_order`",
    );
    assert_error(
        e,
        CANCEL_PENDING_ORDER,
        json!({"order_id": 1, "reason": "no longer needed"}),
        "Error: argument `order_id` of `cancel_pending_order` must be a string, got 1",
    );
    assert_error(
        e,
        CANCEL_PENDING_ORDER,
        json!([1]),
        "Error: arguments of `cancel_pending_order` must be a JSON object, got [1]",
    );
    assert_error(
        e,
        "delete_everything",
        json!({}),
        "Error: unknown tool `delete_everything`",
    );
    assert_error(
        e,
        RETURN_DELIVERED_ORDER_ITEMS,
        json!({"order_id": "#W2", "item_ids": "2000000001", "payment_method_id": "credit_card_1"}),
        "Error: argument `item_ids` of `return_delivered_order_items` must be a list of strings, got \"2000000001\"",
    );
    assert_error(
        e,
        EXCHANGE_DELIVERED_ORDER_ITEMS,
        json!({"order_id": "#W2", "item_ids": [2000000001u64], "new_item_ids": ["2000000002"], "payment_method_id": "credit_card_1"}),
        "Error: argument `item_ids` of `exchange_delivered_order_items` must be a list of strings, got [2000000001]",
    );
    // Every write with each argument missing, and with one extra argument.
    let writes = [
        (CANCEL_PENDING_ORDER, good.clone()),
        (
            MODIFY_PENDING_ORDER_ADDRESS,
            json!({"order_id": "#W5", "address1": "a", "address2": "", "city": "c", "state": "s", "country": "USA", "zip": "1"}),
        ),
        (
            MODIFY_PENDING_ORDER_ITEMS,
            json!({"order_id": "#W9", "item_ids": ["2000000002"], "new_item_ids": ["2000000001"], "payment_method_id": "paypal_2"}),
        ),
        (
            MODIFY_PENDING_ORDER_PAYMENT,
            json!({"order_id": "#W5", "payment_method_id": "paypal_1"}),
        ),
        (
            MODIFY_USER_ADDRESS,
            json!({"user_id": "ann_lee_1", "address1": "a", "address2": "", "city": "c", "state": "s", "country": "USA", "zip": "1"}),
        ),
        (
            RETURN_DELIVERED_ORDER_ITEMS,
            json!({"order_id": "#W2", "item_ids": ["2000000001"], "payment_method_id": "credit_card_1"}),
        ),
        (
            EXCHANGE_DELIVERED_ORDER_ITEMS,
            json!({"order_id": "#W6", "item_ids": ["2000000001"], "new_item_ids": ["2000000002"], "payment_method_id": "credit_card_1"}),
        ),
    ];
    for (name, args) in &writes {
        for key in args.as_object().unwrap().keys() {
            let mut missing = args.clone();
            missing.as_object_mut().unwrap().remove(key);
            let before = e.agent_db_json().unwrap();
            let got = run(e, name, missing);
            assert!(
                got.starts_with("Error: missing argument"),
                "{name} without {key}: {got}"
            );
            assert_eq!(e.agent_db_json().unwrap(), before);
            let mut wrong = args.clone();
            wrong[key] = json!({"x": 1});
            let got = run(e, name, wrong);
            assert!(
                got.contains("must be"),
                "{name} with ill-typed {key}: {got}"
            );
            assert_eq!(e.agent_db_json().unwrap(), before);
        }
        let mut extra = args.clone();
        extra["extra"] = json!("x");
        let before = e.agent_db_json().unwrap();
        assert!(run(e, name, extra).starts_with("Error: unexpected argument `extra`"));
        assert_eq!(e.agent_db_json().unwrap(), before);
    }
    // The good calls all work afterwards.
    for (name, args) in &writes {
        let got = run(e, name, args.clone());
        assert!(!got.starts_with("Error"), "{name}: {got}");
    }
}
