//! Generated retail tasks: a ticket written from templates plus the gold calls that solve it, against
//! the configured DB. Seven kinds, after the original's request types: cancel, modify items, modify
//! the shipping address, modify the payment method (pending orders), return, exchange (delivered
//! orders), and a change of the default address. Each starts with authentication (email, or name +
//! zip) and the reads an agent needs. Some tickets ask for an amount, which becomes an output string.

use sandgym_sdk::{Rng, Value, json};
use serde_json::Map;
use tau_common::{GoldAction, TaskSource, TauTask, content_id, split_for_seed};

use crate::db::{Address, Db, Order, Overlay, User, View};
use crate::gen_db::random_address;
use crate::tools::{self, dispatch};

/// Task kinds, in the order the generator draws them.
pub const KINDS: [&str; 7] = [
    "cancel",
    "modify_items",
    "modify_address",
    "modify_payment",
    "return",
    "exchange",
    "user_address",
];

const MAX_ATTEMPTS: usize = 500;

struct Draft {
    actions: Vec<GoldAction>,
    request: String,
    outputs: Vec<String>,
}

fn call(name: &str, arguments: Value) -> GoldAction {
    GoldAction::new(name, arguments)
}

fn money(x: f64) -> String {
    format!("{x:.2}")
}

fn options_text(options: &tau_common::OrderedMap<Value>) -> String {
    options
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the customer names a payment method: brand and last four digits, PayPal, gift card; the id
/// is added when the description alone would be ambiguous.
fn payment_text(user: &User, payment_method_id: &str) -> String {
    let Some(pm) = user.payment_methods.get(payment_method_id) else {
        return format!("payment method {payment_method_id}");
    };
    let same_source = user
        .payment_methods
        .values()
        .filter(|m| m.source == pm.source)
        .count();
    let text = match pm.source.as_str() {
        "credit_card" => format!(
            "my {} credit card ending in {}",
            pm.brand.as_deref().unwrap_or("credit"),
            pm.last_four.as_deref().unwrap_or("????")
        ),
        "paypal" => "my PayPal account".to_string(),
        _ => "my gift card".to_string(),
    };
    if same_source > 1 {
        format!("{text} ({payment_method_id})")
    } else {
        text
    }
}

fn address_text(a: &Address) -> String {
    let line2 = if a.address2.is_empty() {
        "no second line".to_string()
    } else {
        format!("second line \"{}\"", a.address2)
    };
    format!(
        "\"{}\", {line2}, {}, {} {}, {}",
        a.address1, a.city, a.state, a.zip, a.country
    )
}

fn address_args(a: &Address) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("address1".into(), json!(a.address1));
    m.insert("address2".into(), json!(a.address2));
    m.insert("city".into(), json!(a.city));
    m.insert("state".into(), json!(a.state));
    m.insert("country".into(), json!(a.country));
    m.insert("zip".into(), json!(a.zip));
    m
}

/// Item positions whose id occurs once in the order (so a description names exactly one item).
fn single_items(order: &Order) -> Vec<usize> {
    (0..order.items.len())
        .filter(|&i| {
            order
                .items
                .iter()
                .filter(|x| x.item_id == order.items[i].item_id)
                .count()
                == 1
        })
        .collect()
}

fn item_text(order: &Order, i: usize) -> String {
    let item = &order.items[i];
    format!("the {} ({})", item.name, options_text(&item.options))
}

fn join_list(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `(position in the order, new item id)` pairs of an item change.
type Swaps = Vec<(usize, String)>;

/// Picks up to `max` items with another available variant of the same product and draws that variant:
/// `(position, new item id)` pairs, plus the product ids to read.
fn draw_swaps(rng: &mut Rng, db: &Db, order: &Order, max: usize) -> Option<(Swaps, Vec<String>)> {
    let mut candidates: Vec<usize> = single_items(order)
        .into_iter()
        .filter(|&i| {
            let item = &order.items[i];
            db.products.get(&item.product_id).is_some_and(|p| {
                p.variants
                    .values()
                    .any(|v| v.available && v.item_id != item.item_id)
            })
        })
        .collect();
    if candidates.is_empty() {
        return None;
    }
    rng.shuffle(&mut candidates);
    let n = rng.range(1, max.min(candidates.len()) as i64) as usize;
    let mut chosen: Vec<usize> = candidates[..n].to_vec();
    chosen.sort_unstable();
    let mut swaps = Vec::new();
    let mut products: Vec<String> = Vec::new();
    for i in chosen {
        let item = &order.items[i];
        let product = &db.products[&item.product_id];
        let others: Vec<&String> = product
            .variants
            .values()
            .filter(|v| v.available && v.item_id != item.item_id)
            .map(|v| &v.item_id)
            .collect();
        swaps.push((i, (*rng.choose(&others)).clone()));
        if !products.contains(&item.product_id) {
            products.push(item.product_id.clone());
        }
    }
    Some((swaps, products))
}

fn swap_text(db: &Db, order: &Order, swaps: &[(usize, String)]) -> String {
    let parts: Vec<String> = swaps
        .iter()
        .map(|(i, new_id)| {
            let item = &order.items[*i];
            let new = &db.products[&item.product_id].variants[new_id];
            format!(
                "{} to the one with {}",
                item_text(order, *i),
                options_text(&new.options)
            )
        })
        .collect();
    join_list(&parts)
}

fn orders_with<'a>(db: &'a Db, user: &User, status: &str) -> Vec<&'a Order> {
    user.orders
        .iter()
        .filter_map(|id| db.orders.get(id))
        .filter(|o| o.status == status)
        .collect()
}

fn draft(rng: &mut Rng, db: &Db, kind: &str, user_id: &str, user: &User) -> Option<Draft> {
    let order_read = |o: &Order| call(tools::GET_ORDER_DETAILS, json!({"order_id": o.order_id}));
    let methods: Vec<&String> = user.payment_methods.keys().collect();
    match kind {
        "cancel" => {
            let orders = orders_with(db, user, "pending");
            let order = *rng.choose_opt(&orders)?;
            let (reason, why) = *rng.choose(&[
                ("no longer needed", "I no longer need it"),
                ("ordered by mistake", "I ordered it by mistake"),
            ]);
            let mut outputs = Vec::new();
            let mut request = format!("Please cancel my order {} because {why}.", order.order_id);
            if rng.bernoulli(0.3) {
                let total: f64 = order
                    .payment_history
                    .iter()
                    .map(|p| p.amount.as_f64())
                    .sum();
                outputs.push(money(total));
                request.push_str(" Also, tell me the total amount that will be refunded.");
            }
            Some(Draft {
                actions: vec![
                    order_read(order),
                    call(
                        tools::CANCEL_PENDING_ORDER,
                        json!({"order_id": order.order_id, "reason": reason}),
                    ),
                ],
                request,
                outputs,
            })
        }
        "modify_items" | "exchange" => {
            let status = if kind == "exchange" {
                "delivered"
            } else {
                "pending"
            };
            let orders = orders_with(db, user, status);
            let order = *rng.choose_opt(&orders)?;
            let (swaps, products) = draw_swaps(rng, db, order, 2)?;
            let pm = (*rng.choose(&methods)).clone();
            let item_ids: Vec<&String> = swaps
                .iter()
                .map(|(i, _)| &order.items[*i].item_id)
                .collect();
            let new_ids: Vec<&String> = swaps.iter().map(|(_, n)| n).collect();
            let mut actions = vec![order_read(order)];
            actions.extend(
                products
                    .iter()
                    .map(|p| call(tools::GET_PRODUCT_DETAILS, json!({"product_id": p}))),
            );
            let (tool, verb) = if kind == "exchange" {
                (tools::EXCHANGE_DELIVERED_ORDER_ITEMS, "exchange")
            } else {
                (tools::MODIFY_PENDING_ORDER_ITEMS, "change")
            };
            actions.push(call(
                tool,
                json!({"order_id": order.order_id, "item_ids": item_ids,
                       "new_item_ids": new_ids, "payment_method_id": pm}),
            ));
            let which = if kind == "exchange" {
                "my delivered order"
            } else {
                "my pending order"
            };
            let mut request = format!(
                "In {which} {}, I want to {verb} {}. That is everything I want to {verb}. Use {} \
                 for any price difference.",
                order.order_id,
                swap_text(db, order, &swaps),
                payment_text(user, &pm)
            );
            let mut outputs = Vec::new();
            if kind == "exchange" && rng.bernoulli(0.4) {
                let diff: f64 = swaps
                    .iter()
                    .map(|(i, n)| {
                        let item = &order.items[*i];
                        db.products[&item.product_id].variants[n].price.as_f64()
                            - item.price.as_f64()
                    })
                    .sum();
                outputs.push(money(diff.abs()));
                request.push_str(" Please tell me the price difference.");
            }
            Some(Draft {
                actions,
                request,
                outputs,
            })
        }
        "modify_address" => {
            let orders = orders_with(db, user, "pending");
            let order = *rng.choose_opt(&orders)?;
            let address = random_address(rng);
            if address == order.address {
                return None;
            }
            let mut args = address_args(&address);
            args.insert("order_id".into(), json!(order.order_id));
            Some(Draft {
                actions: vec![
                    order_read(order),
                    call(tools::MODIFY_PENDING_ORDER_ADDRESS, Value::Object(args)),
                ],
                request: format!(
                    "Please ship my order {} to this address instead: {}.",
                    order.order_id,
                    address_text(&address)
                ),
                outputs: Vec::new(),
            })
        }
        "modify_payment" => {
            let orders = orders_with(db, user, "pending");
            let order = *rng.choose_opt(&orders)?;
            let current = &order.payment_history.first()?.payment_method_id;
            let others: Vec<&String> = methods.iter().copied().filter(|m| *m != current).collect();
            let pm = (*rng.choose_opt(&others)?).clone();
            Some(Draft {
                actions: vec![
                    order_read(order),
                    call(
                        tools::MODIFY_PENDING_ORDER_PAYMENT,
                        json!({"order_id": order.order_id, "payment_method_id": pm}),
                    ),
                ],
                request: format!(
                    "For my order {}, I would like to pay with {} instead.",
                    order.order_id,
                    payment_text(user, &pm)
                ),
                outputs: Vec::new(),
            })
        }
        "return" => {
            let orders = orders_with(db, user, "delivered");
            let order = *rng.choose_opt(&orders)?;
            let mut positions = single_items(order);
            if positions.is_empty() {
                return None;
            }
            rng.shuffle(&mut positions);
            let n = rng.range(1, positions.len().min(3) as i64) as usize;
            let mut chosen = positions[..n].to_vec();
            chosen.sort_unstable();
            let original = order.payment_history.first()?.payment_method_id.clone();
            let gift_cards: Vec<&String> = user
                .payment_methods
                .values()
                .filter(|m| m.source == "gift_card" && m.id != original)
                .map(|m| &m.id)
                .collect();
            let (pm, refund_text) = match rng.choose_opt(&gift_cards) {
                Some(gc) if rng.bernoulli(0.4) => ((*gc).clone(), payment_text(user, gc)),
                _ => (
                    original.clone(),
                    format!(
                        "the original payment method ({})",
                        payment_text(user, &original)
                    ),
                ),
            };
            let item_ids: Vec<&String> = chosen.iter().map(|&i| &order.items[i].item_id).collect();
            let items: Vec<String> = chosen.iter().map(|&i| item_text(order, i)).collect();
            let mut request = format!(
                "I want to return {} from my order {}. Please refund it to {refund_text}.",
                join_list(&items),
                order.order_id
            );
            let mut outputs = Vec::new();
            if rng.bernoulli(0.5) {
                let refund: f64 = chosen.iter().map(|&i| order.items[i].price.as_f64()).sum();
                outputs.push(money(refund));
                request.push_str(" How much money will I get back in total?");
            }
            Some(Draft {
                actions: vec![
                    order_read(order),
                    call(
                        tools::RETURN_DELIVERED_ORDER_ITEMS,
                        json!({"order_id": order.order_id, "item_ids": item_ids,
                               "payment_method_id": pm}),
                    ),
                ],
                request,
                outputs,
            })
        }
        "user_address" => {
            let address = random_address(rng);
            if address == user.address {
                return None;
            }
            let mut args = address_args(&address);
            args.insert("user_id".into(), json!(user_id));
            Some(Draft {
                actions: vec![call(tools::MODIFY_USER_ADDRESS, Value::Object(args))],
                request: format!(
                    "I moved. Please update my default address to {}.",
                    address_text(&address)
                ),
                outputs: Vec::new(),
            })
        }
        _ => None,
    }
}

trait ChooseOpt {
    fn choose_opt<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T>;
}

impl ChooseOpt for Rng {
    fn choose_opt<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(self.choose(items))
        }
    }
}

/// Whether every gold write succeeds on a fresh copy of `db`.
pub fn gold_writes_succeed(db: &Db, actions: &[GoldAction]) -> bool {
    let mut overlay = Overlay::default();
    let mut view = View::new(db, &mut overlay);
    actions.iter().all(|a| {
        let result = dispatch(&mut view, &a.name, &a.arguments);
        !tools::is_write(&a.name) || !result.starts_with("Error")
    }) && !overlay.is_empty()
}

/// Generates a task for `seed` against `db`: a ticket, gold actions whose writes all succeed and
/// change the DB, outputs, and the split derived from the seed.
pub fn generate_task(db: &Db, seed: u64) -> Result<TauTask, String> {
    let mut rng = Rng::new(seed);
    let user_ids: Vec<&String> = db.users.keys().collect();
    if user_ids.is_empty() {
        return Err("cannot generate a task: the DB has no users".to_string());
    }
    for _ in 0..MAX_ATTEMPTS {
        let kind = *rng.choose(&KINDS);
        let user_id = *rng.choose(&user_ids);
        let user = &db.users[user_id];
        let Some(draft) = draft(&mut rng, db, kind, user_id, user) else {
            continue;
        };
        let (auth, intro) = if rng.bernoulli(0.6) {
            (
                call(tools::FIND_USER_ID_BY_EMAIL, json!({"email": user.email})),
                format!("Hi, my email is {}.", user.email),
            )
        } else {
            (
                call(
                    tools::FIND_USER_ID_BY_NAME_ZIP,
                    json!({"first_name": user.name.first_name,
                           "last_name": user.name.last_name, "zip": user.address.zip}),
                ),
                format!(
                    "Hello, this is {} {}; my zip code is {}. I don't remember which email I used.",
                    user.name.first_name, user.name.last_name, user.address.zip
                ),
            )
        };
        let mut actions = vec![
            auth,
            call(tools::GET_USER_DETAILS, json!({"user_id": user_id})),
        ];
        actions.extend(draft.actions);
        if !gold_writes_succeed(db, &actions) {
            continue;
        }
        let instruction = format!("{intro} {} Thank you!", draft.request);
        let id = content_id(&instruction, &actions, &draft.outputs);
        return Ok(TauTask {
            id,
            instruction,
            actions,
            outputs: draft.outputs,
            split: Some(split_for_seed(seed).to_string()),
            source: TaskSource::Generated,
            meta: json!({"kind": kind, "user_id": user_id, "seed": seed}),
        });
    }
    Err(format!(
        "could not generate a task within {MAX_ATTEMPTS} attempts: the DB seems to lack users with \
         pending or delivered orders"
    ))
}
