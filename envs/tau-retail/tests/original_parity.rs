//! Byte parity of tool observations with the original tau-bench v1 retail tools, on the v1 DB, for
//! every tau2 retail task's gold actions plus perturbed calls (reads of neighbouring records, unknown
//! ids, each gold write repeated). Skips when the original data is absent (`SANDGYM_TAU_DATA`).
//!
//! Expected answers come from the original files, never from our code:
//! - a read of a record no write touched is `json.dumps(record)` of the file's record (the tools
//!   `GetUserDetails`, `GetOrderDetails`, `GetProductDetails` return exactly that), and the lookups
//!   and `list_all_product_types` are computed from the files as the v1 tools do;
//! - a write answers `json.dumps` of the changed record, whose values come from our DB (their
//!   arithmetic is tested elsewhere); here its key sequence is checked against a key-level shadow of
//!   the DB that applies each v1 tool's dict operations (keys in file order, then keys the tool adds, in
//!   the order it adds them; dicts a tool replaces, in the order the tool builds them);
//! - an error must be one of that tool's v1 messages.

#[path = "../../tau-common/tests/support/parity.rs"]
mod parity;

use std::collections::BTreeSet;

use parity::{Tally, data_dir, read_json, skeleton};
use sandgym_sdk::{Action, Env, Value, json};
use tau_common::dumps;
use tau_retail::TauRetail;

const PAYMENT_ROW: [&str; 3] = ["transaction_type", "amount", "payment_method_id"];
/// The dict `ModifyPendingOrderAddress.invoke` and `ModifyUserAddress.invoke` build.
const WRITTEN_ADDRESS: [&str; 6] = ["address1", "address2", "city", "state", "country", "zip"];

/// Each write tool's error messages in v1 (`*`: an interpolated id).
fn v1_errors(tool: &str) -> &'static [&'static str] {
    match tool {
        "cancel_pending_order" => &[
            "order not found",
            "non-pending order cannot be cancelled",
            "invalid reason",
        ],
        "modify_pending_order_address" => {
            &["order not found", "non-pending order cannot be modified"]
        }
        "modify_pending_order_items" => &[
            "order not found",
            "non-pending order cannot be modified",
            "* not found",
            "the number of items to be exchanged should match",
            "new item * not found or available",
            "payment method not found",
            "insufficient gift card balance to pay for the new item",
        ],
        "modify_pending_order_payment" => &[
            "order not found",
            "non-pending order cannot be modified",
            "payment method not found",
            "there should be exactly one payment for a pending order",
            "the new payment method should be different from the current one",
            "insufficient gift card balance to pay for the order",
        ],
        "modify_user_address" => &["user not found"],
        "return_delivered_order_items" => &[
            "order not found",
            "non-delivered order cannot be returned",
            "payment method not found",
            "payment method should be either the original payment method or a gift card",
            "some item not found",
        ],
        "exchange_delivered_order_items" => &[
            "order not found",
            "non-delivered order cannot be exchanged",
            "* not found",
            "the number of items to be exchanged should match",
            "new item * not found or available",
            "payment method not found",
            "insufficient gift card balance to pay for the price difference",
        ],
        _ => &[],
    }
}

/// The v1 DB (file key order) and a key-level shadow of it that the checker mutates.
struct Checker {
    env: TauRetail,
    shadow: Value,
    touched: BTreeSet<(String, String)>,
    tally: Tally,
    what: String,
}

fn s<'a>(args: &'a Value, key: &str) -> &'a str {
    args[key].as_str().unwrap_or_default()
}

fn strs(args: &Value, key: &str) -> Vec<String> {
    args[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Checker {
    fn observe(&mut self, name: &str, args: &Value) -> String {
        let out = self.env.step(&Action::tool(name, args));
        assert_eq!(out.messages.len(), 1, "{name}: {:?}", out.messages);
        out.messages[0].content.clone()
    }

    /// A read of `table[id]`: the file's bytes while untouched, else the shadow's key order.
    fn read(&mut self, name: &str, table: &str, id: &str, obs: &str, missing: &str) {
        let what = self.what.clone();
        match self.shadow[table].get(id) {
            None => self.tally.bytes(&what, name, obs, missing),
            Some(record) if self.touched.contains(&(table.into(), id.into())) => {
                let record = record.clone();
                self.tally.keys(&what, name, obs, &record);
            }
            Some(record) => {
                let expected = dumps(record);
                self.tally.bytes(&what, name, obs, &expected);
            }
        }
    }

    fn check(&mut self, name: &str, args: &Value) {
        let obs = self.observe(name, args);
        let what = self.what.clone();
        match name {
            "get_user_details" => self.read(
                name,
                "users",
                s(args, "user_id"),
                &obs,
                "Error: user not found",
            ),
            "get_order_details" => self.read(
                name,
                "orders",
                s(args, "order_id"),
                &obs,
                "Error: order not found",
            ),
            "get_product_details" => self.read(
                name,
                "products",
                s(args, "product_id"),
                &obs,
                "Error: product not found",
            ),
            "find_user_id_by_email" => {
                // `FindUserIdByEmail.invoke`: the first user, in file order, with that email.
                let email = s(args, "email").to_lowercase();
                let expected = self.shadow["users"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, u)| u["email"].as_str().unwrap().to_lowercase() == email)
                    .map_or("Error: user not found".to_string(), |(id, _)| id.clone());
                self.tally.bytes(&what, name, &obs, &expected);
            }
            "find_user_id_by_name_zip" => {
                // `FindUserIdByNameZip.invoke`: names compared lowercased, zip exactly.
                let (first, last) = (
                    s(args, "first_name").to_lowercase(),
                    s(args, "last_name").to_lowercase(),
                );
                let expected = self.shadow["users"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, u)| {
                        u["name"]["first_name"].as_str().unwrap().to_lowercase() == first
                            && u["name"]["last_name"].as_str().unwrap().to_lowercase() == last
                            && u["address"]["zip"] == args["zip"]
                    })
                    .map_or("Error: user not found".to_string(), |(id, _)| id.clone());
                self.tally.bytes(&what, name, &obs, &expected);
            }
            "list_all_product_types" => {
                // `ListAllProductTypes.invoke`: `{name: product_id}` sorted by name.
                let mut pairs: Vec<(String, Value)> = self.shadow["products"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().to_string(),
                            p["product_id"].clone(),
                        )
                    })
                    .collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                let expected = dumps(&pairs.into_iter().collect::<serde_json::Map<_, _>>());
                self.tally.bytes(&what, name, &obs, &expected);
            }
            _ if !v1_errors(name).is_empty() => self.write(name, args, &obs),
            // `calculate`, `think`, and tau2's `get_item_details`: not compared here.
            _ => {}
        }
    }

    fn write(&mut self, name: &str, args: &Value, obs: &str) {
        let what = self.what.clone();
        if obs.starts_with("Error") {
            self.tally.error(&what, name, obs, v1_errors(name));
            return;
        }
        if name == "modify_user_address" {
            let user = &mut self.shadow["users"][s(args, "user_id")];
            user["address"] = skeleton(&WRITTEN_ADDRESS);
            self.touched
                .insert(("users".into(), s(args, "user_id").into()));
            let user = user.clone();
            self.tally.keys(&what, name, obs, &user);
            return;
        }
        let order_id = s(args, "order_id");
        let products = self.shadow["products"].clone();
        let order = &mut self.shadow["orders"][order_id];
        let rows = order["payment_history"].as_array().unwrap().len();
        let history = |order: &mut Value, n: usize| {
            for _ in 0..n {
                order["payment_history"]
                    .as_array_mut()
                    .unwrap()
                    .push(skeleton(&PAYMENT_ROW));
            }
        };
        // `order[key] = v` is Python's `order[key] = v`: an existing key keeps its place, a new one
        // goes last (serde_json's `preserve_order`).
        match name {
            // `CancelPendingOrder.invoke`: status, then `cancel_reason` (new), then one refund per row.
            "cancel_pending_order" => {
                order["status"] = json!("cancelled");
                order["cancel_reason"] = args["reason"].clone();
                history(order, rows);
            }
            // `ModifyPendingOrderAddress.invoke` replaces the address with a dict of its own order.
            "modify_pending_order_address" => {
                order["address"] = skeleton(&WRITTEN_ADDRESS);
            }
            // `ModifyPendingOrderItems.invoke`: one payment/refund row; each item (the first one still
            // carrying the old id) takes the new id, price and the variant's own `options` dict.
            "modify_pending_order_items" => {
                history(order, 1);
                for (old, new) in strs(args, "item_ids")
                    .iter()
                    .zip(strs(args, "new_item_ids"))
                {
                    let item = order["items"]
                        .as_array_mut()
                        .unwrap()
                        .iter_mut()
                        .find(|i| i["item_id"] == json!(old))
                        .expect("a modified item");
                    let product = item["product_id"].as_str().unwrap().to_string();
                    item["item_id"] = json!(new);
                    item["options"] = products[&product]["variants"][&new]["options"].clone();
                }
                order["status"] = json!("pending (item modified)");
            }
            // `ModifyPendingOrderPayment.invoke`: a payment and a refund row.
            "modify_pending_order_payment" => history(order, 2),
            // `ReturnDeliveredOrderItems.invoke`: status, then two new keys.
            "return_delivered_order_items" => {
                order["status"] = json!("return requested");
                order["return_items"] = Value::Null;
                order["return_payment_method_id"] = Value::Null;
            }
            // `ExchangeDeliveredOrderItems.invoke`: status, then four new keys.
            "exchange_delivered_order_items" => {
                order["status"] = json!("exchange requested");
                for key in [
                    "exchange_items",
                    "exchange_new_items",
                    "exchange_payment_method_id",
                    "exchange_price_difference",
                ] {
                    order[key] = Value::Null;
                }
            }
            other => unreachable!("{other}"),
        }
        let order = order.clone();
        let user_id = order["user_id"].as_str().unwrap().to_string();
        self.touched.insert(("orders".into(), order_id.into()));
        // Gift-card balances change in place (no key moves), but mark the user all the same.
        self.touched.insert(("users".into(), user_id));
        self.tally.keys(&what, name, obs, &order);
    }

    /// The id after `id` in `table`'s file order (wrapping), for reads of a record nobody asked for.
    fn neighbour(&self, table: &str, id: &str) -> Option<String> {
        let keys: Vec<&String> = self.shadow[table].as_object()?.keys().collect();
        let i = keys.iter().position(|k| *k == id)?;
        Some(keys[(i + 1) % keys.len()].clone())
    }
}

#[test]
fn observations_are_byte_identical_to_the_v1_tools() {
    let Some(dir) = data_dir("v1/retail/users.json") else {
        return;
    };
    let retail = dir.join("v1/retail");
    let db = json!({
        "users": read_json(retail.join("users.json")),
        "orders": read_json(retail.join("orders.json")),
        "products": read_json(retail.join("products.json")),
    });
    let tasks = read_json(dir.join("tau2/retail/tasks.json"));
    let mut env = TauRetail::default();
    env.configure(&json!({"db": db.clone(), "max_turns": 1000}))
        .expect("the v1 DB loads");
    let mut checker = Checker {
        env,
        shadow: Value::Null,
        touched: BTreeSet::new(),
        tally: Tally::default(),
        what: String::new(),
    };
    for task in tasks.as_array().unwrap() {
        checker.env.reset(0, Some(task.clone())).unwrap();
        checker.shadow = db.clone();
        checker.touched.clear();
        let id = task["id"].as_str().unwrap();
        let actions = task["evaluation_criteria"]["actions"].as_array().unwrap();
        for (n, action) in actions.iter().enumerate() {
            let (name, args) = (action["name"].as_str().unwrap(), &action["arguments"]);
            if name == "transfer_to_human_agents" {
                continue; // it ends the episode and answers a constant
            }
            checker.what = format!("task {id} gold #{n}");
            checker.check(name, args);
            // Perturbed calls: the next record of the same table, an unknown id, the write again.
            checker.what = format!("task {id} perturbed #{n}");
            let read = match name {
                "get_user_details" => Some(("users", "user_id")),
                "get_order_details" => Some(("orders", "order_id")),
                "get_product_details" => Some(("products", "product_id")),
                _ => None,
            };
            if let Some((table, key)) = read {
                if let Some(next) = checker.neighbour(table, s(args, key)) {
                    checker.check(name, &json!({ key: next }));
                }
                checker.check(name, &json!({ key: format!("{}x", s(args, key)) }));
            } else if !v1_errors(name).is_empty() {
                checker.check(name, args);
            }
        }
        checker.what = format!("task {id} list");
        checker.check("list_all_product_types", &json!({}));
    }
    checker.tally.report("tau-retail");
    assert!(checker.tally.bytes_compared > 1000);
}
