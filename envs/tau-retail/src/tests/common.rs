//! Test helpers: env construction, the expert loop, a small hand-built DB, the original data's path.

use std::path::PathBuf;

use sandgym_sdk::{Action, Env, StepOutput, Value, json};

use crate::TauRetail;

/// An env configured with `config`.
pub fn env_with(config: Value) -> TauRetail {
    let mut env = TauRetail::default();
    env.configure(&config).expect("valid config");
    env
}

/// Follows the expert until the episode ends; returns the last step output and the actions taken.
pub fn run_expert(env: &mut TauRetail) -> (StepOutput, Vec<Action>) {
    let mut taken = Vec::new();
    for _ in 0..200 {
        let action = env
            .expert()
            .expect("the expert has a move while the episode runs");
        let out = env.step(&action);
        taken.push(action);
        if out.terminated || out.truncated {
            return (out, taken);
        }
    }
    panic!("the expert did not finish");
}

/// One tool call as an action.
pub fn act(name: &str, args: Value) -> Action {
    Action::tool(name, &args)
}

/// The content of the single tool message of a step.
pub fn text(out: &StepOutput) -> &str {
    assert_eq!(out.messages.len(), 1, "{:?}", out.messages);
    &out.messages[0].content
}

#[path = "../../../tau-common/tests/support/parity.rs"]
mod parity;
pub use parity::read_json;

/// Where the original tau-bench data lives (`SANDGYM_TAU_DATA` or `../../shared/data/tau-bench` from
/// the `envs/` dir), if present.
pub fn tau_data_dir() -> Option<PathBuf> {
    parity::data_dir("v1/retail/users.json")
}

/// The v1 retail DB as a `db` config value.
pub fn v1_db(dir: &std::path::Path) -> Value {
    parity::v1_db(dir, "retail", &["users", "orders", "products"])
}

/// A small DB exercising every tool path: two users, one product with four variants (one
/// unavailable), orders in each status, gift cards with int balances.
pub fn small_db() -> Value {
    let address = json!({"address1": "1 Main St", "address2": "Apt 2", "city": "Reno",
                         "country": "USA", "state": "NV", "zip": "89501"});
    let item = |item_id: &str, price: f64, color: &str| {
        json!({"name": "Lamp", "product_id": "1000000001", "item_id": item_id, "price": price,
               "options": {"color": color}})
    };
    let order = |id: &str, user: &str, status: &str, items: Value, pay: Value| {
        json!({"order_id": id, "user_id": user, "address": address, "items": items,
               "fulfillments": [], "status": status, "payment_history": pay})
    };
    let pay = |amount: f64, pm: &str| json!([{"transaction_type": "payment", "amount": amount, "payment_method_id": pm}]);
    json!({
        "users": {
            "ann_lee_1": {
                "name": {"first_name": "Ann", "last_name": "Lee"},
                "address": address,
                "email": "ann.lee@example.com",
                "payment_methods": {
                    "credit_card_1": {"source": "credit_card", "brand": "visa", "last_four": "1111", "id": "credit_card_1"},
                    "gift_card_1": {"source": "gift_card", "balance": 60, "id": "gift_card_1"},
                    "gift_card_2": {"source": "gift_card", "balance": 5, "id": "gift_card_2"},
                    "paypal_1": {"source": "paypal", "id": "paypal_1"}
                },
                "orders": ["#W1", "#W2", "#W3", "#W4", "#W5", "#W6"]
            },
            "bob_kim_2": {
                "name": {"first_name": "Bob", "last_name": "Kim"},
                "address": {"address1": "9 Oak Rd", "address2": "", "city": "Tulsa",
                            "country": "USA", "state": "OK", "zip": "74101"},
                "email": "Bob.Kim@example.com",
                "payment_methods": {"paypal_2": {"source": "paypal", "id": "paypal_2"}},
                "orders": ["#W9"]
            }
        },
        "products": {
            "1000000001": {
                "name": "Lamp", "product_id": "1000000001",
                "variants": {
                    "2000000001": {"item_id": "2000000001", "options": {"color": "red"}, "available": true, "price": 10.5},
                    "2000000002": {"item_id": "2000000002", "options": {"color": "blue"}, "available": true, "price": 12.25},
                    "2000000003": {"item_id": "2000000003", "options": {"color": "green"}, "available": false, "price": 9.0},
                    "2000000004": {"item_id": "2000000004", "options": {"color": "gold"}, "available": true, "price": 80.0}
                }
            },
            "1000000002": {
                "name": "Desk", "product_id": "1000000002",
                "variants": {
                    "3000000001": {"item_id": "3000000001", "options": {"wood": "oak"}, "available": true, "price": 100.0}
                }
            }
        },
        "orders": {
            "#W1": order("#W1", "ann_lee_1", "pending",
                         json!([item("2000000001", 10.5, "red"), item("2000000001", 10.5, "red")]),
                         pay(21.0, "gift_card_1")),
            "#W2": order("#W2", "ann_lee_1", "delivered",
                         json!([item("2000000001", 10.5, "red"), item("2000000002", 12.25, "blue")]),
                         pay(22.75, "credit_card_1")),
            "#W3": order("#W3", "ann_lee_1", "processed", json!([item("2000000002", 12.25, "blue")]),
                         pay(12.25, "paypal_1")),
            "#W4": order("#W4", "ann_lee_1", "cancelled", json!([item("2000000002", 12.25, "blue")]),
                         json!([{"transaction_type": "payment", "amount": 12.25, "payment_method_id": "paypal_1"},
                                {"transaction_type": "refund", "amount": 12.25, "payment_method_id": "paypal_1"}])),
            "#W5": order("#W5", "ann_lee_1", "pending", json!([item("2000000002", 12.25, "blue")]),
                         pay(12.25, "credit_card_1")),
            "#W6": order("#W6", "ann_lee_1", "delivered", json!([item("2000000001", 10.5, "red")]),
                         pay(10.5, "gift_card_1")),
            "#W9": order("#W9", "bob_kim_2", "pending", json!([item("2000000002", 12.25, "blue")]),
                         pay(12.25, "paypal_2"))
        }
    })
}

/// An env on [`small_db`] with an episode running (a task that changes nothing is enough for tools).
pub fn small_env() -> TauRetail {
    let mut env = env_with(json!({"db": small_db()}));
    env.reset(
        0,
        Some(json!({"id": "t", "instruction": "Help Ann.", "actions": []})),
    )
    .unwrap();
    env
}
