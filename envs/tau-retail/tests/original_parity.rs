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

use parity::{Checker, Domain, Read, check_gold_tasks, data_dir, read_json, s, skeleton, v1_db};
use sandgym_sdk::{Value, json};
use tau_common::dumps;
use tau_retail::TauRetail;

const PAYMENT_ROW: [&str; 3] = ["transaction_type", "amount", "payment_method_id"];
/// The dict `ModifyPendingOrderAddress.invoke` and `ModifyUserAddress.invoke` build.
const WRITTEN_ADDRESS: [&str; 6] = ["address1", "address2", "city", "state", "country", "zip"];

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

impl Domain for TauRetail {
    const NAME: &'static str = "tau-retail";
    const READS: &'static [Read] = &[
        Read::new("user", "Error: user not found"),
        Read::new("order", "Error: order not found"),
        Read::new("product", "Error: product not found"),
    ];
    const LIST_TOOL: &'static str = "list_all_product_types";

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

    fn check_other(c: &mut Checker<Self>, name: &str, args: &Value, obs: &str) {
        let what = c.what.clone();
        match name {
            "find_user_id_by_email" => {
                // `FindUserIdByEmail.invoke`: the first user, in file order, with that email.
                let email = s(args, "email").to_lowercase();
                let expected = c.shadow["users"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, u)| u["email"].as_str().unwrap().to_lowercase() == email)
                    .map_or("Error: user not found".to_string(), |(id, _)| id.clone());
                c.tally.bytes(&what, name, obs, &expected);
            }
            "find_user_id_by_name_zip" => {
                // `FindUserIdByNameZip.invoke`: names compared lowercased, zip exactly.
                let (first, last) = (
                    s(args, "first_name").to_lowercase(),
                    s(args, "last_name").to_lowercase(),
                );
                let expected = c.shadow["users"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, u)| {
                        u["name"]["first_name"].as_str().unwrap().to_lowercase() == first
                            && u["name"]["last_name"].as_str().unwrap().to_lowercase() == last
                            && u["address"]["zip"] == args["zip"]
                    })
                    .map_or("Error: user not found".to_string(), |(id, _)| id.clone());
                c.tally.bytes(&what, name, obs, &expected);
            }
            "list_all_product_types" => {
                // `ListAllProductTypes.invoke`: `{name: product_id}` sorted by name.
                let mut pairs: Vec<(String, Value)> = c.shadow["products"]
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
                c.tally.bytes(&what, name, obs, &expected);
            }
            _ if !TauRetail::v1_errors(name).is_empty() => write(c, name, args, obs),
            // `calculate`, `think`, and tau2's `get_item_details`: not compared here.
            _ => {}
        }
    }
}

fn write(c: &mut Checker<TauRetail>, name: &str, args: &Value, obs: &str) {
    let what = c.what.clone();
    if obs.starts_with("Error") {
        c.tally.error(&what, name, obs, TauRetail::v1_errors(name));
        return;
    }
    if name == "modify_user_address" {
        let user = &mut c.shadow["users"][s(args, "user_id")];
        user["address"] = skeleton(&WRITTEN_ADDRESS);
        c.touched
            .insert(("users".into(), s(args, "user_id").into()));
        let user = user.clone();
        c.tally.keys(&what, name, obs, &user);
        return;
    }
    let order_id = s(args, "order_id");
    let products = c.shadow["products"].clone();
    let order = &mut c.shadow["orders"][order_id];
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
    c.touched.insert(("orders".into(), order_id.into()));
    // Gift-card balances change in place (no key moves), but mark the user all the same.
    c.touched.insert(("users".into(), user_id));
    c.tally.keys(&what, name, obs, &order);
}

#[test]
fn observations_are_byte_identical_to_the_v1_tools() {
    let Some(dir) = data_dir("v1/retail/users.json") else {
        return;
    };
    let db = v1_db(&dir, "retail", &["users", "orders", "products"]);
    let tasks = read_json(dir.join("tau2/retail/tasks.json"));
    check_gold_tasks::<TauRetail>(&db, &tasks);
}
