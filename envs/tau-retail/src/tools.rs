//! The retail tools: the original v1 set plus tau2's `get_item_details`, with the original's argument
//! names, check order, error texts, arithmetic and `json.dumps` answers.
//!
//! Where the original would raise a Python exception (which tau-bench prints as `Error: {exc}`), the
//! text is the same (`Error: 'key'` for a missing key); where it would leave a half-applied write, the
//! write is refused before anything changes. Both only happen on inconsistent imported data.

use sandgym_sdk::{Value, json};
use tau_common::{
    Args, CALCULATE, Num, THINK, TRANSFER_TO_HUMAN_AGENTS, calculate, conversation_tool_schema,
    dumps, string_list_param, string_param, tool_schema,
};

use crate::db::{Address, AddressOrder, Order, Payment, View};

pub const FIND_USER_ID_BY_EMAIL: &str = "find_user_id_by_email";
pub const FIND_USER_ID_BY_NAME_ZIP: &str = "find_user_id_by_name_zip";
pub const GET_USER_DETAILS: &str = "get_user_details";
pub const GET_ORDER_DETAILS: &str = "get_order_details";
pub const GET_PRODUCT_DETAILS: &str = "get_product_details";
pub const GET_ITEM_DETAILS: &str = "get_item_details";
pub const LIST_ALL_PRODUCT_TYPES: &str = "list_all_product_types";
pub const CANCEL_PENDING_ORDER: &str = "cancel_pending_order";
pub const MODIFY_PENDING_ORDER_ADDRESS: &str = "modify_pending_order_address";
pub const MODIFY_PENDING_ORDER_ITEMS: &str = "modify_pending_order_items";
pub const MODIFY_PENDING_ORDER_PAYMENT: &str = "modify_pending_order_payment";
pub const MODIFY_USER_ADDRESS: &str = "modify_user_address";
pub const RETURN_DELIVERED_ORDER_ITEMS: &str = "return_delivered_order_items";
pub const EXCHANGE_DELIVERED_ORDER_ITEMS: &str = "exchange_delivered_order_items";

/// The tools that change the DB.
pub const WRITE_TOOLS: [&str; 7] = [
    CANCEL_PENDING_ORDER,
    MODIFY_PENDING_ORDER_ADDRESS,
    MODIFY_PENDING_ORDER_ITEMS,
    MODIFY_PENDING_ORDER_PAYMENT,
    MODIFY_USER_ADDRESS,
    RETURN_DELIVERED_ORDER_ITEMS,
    EXCHANGE_DELIVERED_ORDER_ITEMS,
];

/// Every tool the agent has, in the order the schemas are listed.
pub const TOOL_NAMES: [&str; 19] = [
    FIND_USER_ID_BY_EMAIL,
    FIND_USER_ID_BY_NAME_ZIP,
    GET_USER_DETAILS,
    GET_ORDER_DETAILS,
    GET_PRODUCT_DETAILS,
    GET_ITEM_DETAILS,
    LIST_ALL_PRODUCT_TYPES,
    CANCEL_PENDING_ORDER,
    MODIFY_PENDING_ORDER_ADDRESS,
    MODIFY_PENDING_ORDER_ITEMS,
    MODIFY_PENDING_ORDER_PAYMENT,
    MODIFY_USER_ADDRESS,
    RETURN_DELIVERED_ORDER_ITEMS,
    EXCHANGE_DELIVERED_ORDER_ITEMS,
    CALCULATE,
    THINK,
    TRANSFER_TO_HUMAN_AGENTS,
    tau_common::RESPOND,
    tau_common::END_CONVERSATION,
];

pub fn is_write(name: &str) -> bool {
    WRITE_TOOLS.contains(&name)
}

const ADDRESS_PARAMS: [&str; 6] = ["address1", "address2", "city", "state", "country", "zip"];

/// The parameters of a domain tool (all required), `None` for unknown names.
pub fn params(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        FIND_USER_ID_BY_EMAIL => &["email"],
        FIND_USER_ID_BY_NAME_ZIP => &["first_name", "last_name", "zip"],
        GET_USER_DETAILS => &["user_id"],
        GET_ORDER_DETAILS => &["order_id"],
        GET_PRODUCT_DETAILS => &["product_id"],
        GET_ITEM_DETAILS => &["item_id"],
        LIST_ALL_PRODUCT_TYPES => &[],
        CANCEL_PENDING_ORDER => &["order_id", "reason"],
        MODIFY_PENDING_ORDER_ADDRESS => &[
            "order_id", "address1", "address2", "city", "state", "country", "zip",
        ],
        MODIFY_PENDING_ORDER_ITEMS => {
            &["order_id", "item_ids", "new_item_ids", "payment_method_id"]
        }
        MODIFY_PENDING_ORDER_PAYMENT => &["order_id", "payment_method_id"],
        MODIFY_USER_ADDRESS => &[
            "user_id", "address1", "address2", "city", "state", "country", "zip",
        ],
        RETURN_DELIVERED_ORDER_ITEMS => &["order_id", "item_ids", "payment_method_id"],
        EXCHANGE_DELIVERED_ORDER_ITEMS => {
            &["order_id", "item_ids", "new_item_ids", "payment_method_id"]
        }
        CALCULATE => &["expression"],
        THINK => &["thought"],
        _ => return None,
    })
}

const ORDER_ID: &str = "The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the order id.";
const PAYMENT_METHOD_ID: &str = "The payment method id to pay or receive refund for the item price \
difference, such as 'gift_card_0000000' or 'credit_card_0000000'. These can be looked up from the user \
or order details.";

fn address_params() -> Vec<(&'static str, Value)> {
    vec![
        (
            "address1",
            string_param("The first line of the address, such as '123 Main St'."),
        ),
        (
            "address2",
            string_param("The second line of the address, such as 'Apt 1' or ''."),
        ),
        ("city", string_param("The city, such as 'San Francisco'.")),
        ("state", string_param("The state, such as 'CA'.")),
        ("country", string_param("The country, such as 'USA'.")),
        ("zip", string_param("The zip code, such as '12345'.")),
    ]
}

/// The OpenAI schemas of all tools, in [`TOOL_NAMES`] order.
pub fn schemas() -> Vec<Value> {
    let order_id = || ("order_id", string_param(ORDER_ID));
    let payment = || ("payment_method_id", string_param(PAYMENT_METHOD_ID));
    let user_id = || {
        (
            "user_id",
            string_param("The user id, such as 'sara_doe_496'."),
        )
    };
    let mut order_address = vec![order_id()];
    order_address.extend(address_params());
    let mut user_address = vec![user_id()];
    user_address.extend(address_params());
    let mut tools = vec![
        tool_schema(
            FIND_USER_ID_BY_EMAIL,
            "Find user id by email. If the user is not found, the function will return an error \
             message.",
            &[(
                "email",
                string_param("The email of the user, such as 'something@example.com'."),
            )],
        ),
        tool_schema(
            FIND_USER_ID_BY_NAME_ZIP,
            "Find user id by first name, last name, and zip code. If the user is not found, the \
             function will return an error message. By default, find user id by email, and only \
             call this function if the user is not found by email or cannot remember email.",
            &[
                (
                    "first_name",
                    string_param("The first name of the customer, such as 'John'."),
                ),
                (
                    "last_name",
                    string_param("The last name of the customer, such as 'Doe'."),
                ),
                (
                    "zip",
                    string_param("The zip code of the customer, such as '12345'."),
                ),
            ],
        ),
        tool_schema(
            GET_USER_DETAILS,
            "Get the details of a user, including their orders and payment methods.",
            &[user_id()],
        ),
        tool_schema(
            GET_ORDER_DETAILS,
            "Get the status and details of an order.",
            &[order_id()],
        ),
        tool_schema(
            GET_PRODUCT_DETAILS,
            "Get the inventory details of a product: its variant items with their options, \
             availability and price.",
            &[(
                "product_id",
                string_param(
                    "The product id, such as '6086499569'. Be careful the product id is different \
                     from the item id.",
                ),
            )],
        ),
        tool_schema(
            GET_ITEM_DETAILS,
            "Get the inventory details of an item (one variant of a product).",
            &[(
                "item_id",
                string_param(
                    "The item id, such as '6086499569'. Be careful the item id is different from \
                     the product id.",
                ),
            )],
        ),
        tool_schema(
            LIST_ALL_PRODUCT_TYPES,
            "List the name and product id of all product types. Each product type has a variety \
             of different items with unique item ids and options.",
            &[],
        ),
        tool_schema(
            CANCEL_PENDING_ORDER,
            "Cancel a pending order. If the order is already processed or delivered, it cannot be \
             cancelled. The agent needs to explain the cancellation detail and ask for explicit \
             user confirmation (yes/no) to proceed. If the user confirms, the order status will \
             be changed to 'cancelled' and the payment will be refunded. The refund will be added \
             to the user's gift card balance immediately if the payment was made using a gift \
             card, otherwise the refund would take 5-7 business days to process. The function \
             returns the order details after the cancellation.",
            &[
                order_id(),
                (
                    "reason",
                    json!({
                        "type": "string",
                        "enum": ["no longer needed", "ordered by mistake"],
                        "description": "The reason for cancellation, which should be either 'no \
                                        longer needed' or 'ordered by mistake'.",
                    }),
                ),
            ],
        ),
        tool_schema(
            MODIFY_PENDING_ORDER_ADDRESS,
            "Modify the shipping address of a pending order. The agent needs to explain the \
             modification detail and ask for explicit user confirmation (yes/no) to proceed.",
            &order_address,
        ),
        tool_schema(
            MODIFY_PENDING_ORDER_ITEMS,
            "Modify items in a pending order to new items of the same product type. For a \
             pending order, this function can only be called once. The agent needs to explain \
             the exchange detail and ask for explicit user confirmation (yes/no) to proceed.",
            &[
                order_id(),
                (
                    "item_ids",
                    string_list_param(
                        "The item ids to be modified, each such as '1008292230'. There could be \
                         duplicate items in the list.",
                    ),
                ),
                (
                    "new_item_ids",
                    string_list_param(
                        "The item ids to be modified for, each such as '1008292230'. There could \
                         be duplicate items in the list. Each new item id should match the item \
                         id in the same position and be of the same product.",
                    ),
                ),
                payment(),
            ],
        ),
        tool_schema(
            MODIFY_PENDING_ORDER_PAYMENT,
            "Modify the payment method of a pending order. The agent needs to explain the \
             modification detail and ask for explicit user confirmation (yes/no) to proceed.",
            &[order_id(), payment()],
        ),
        tool_schema(
            MODIFY_USER_ADDRESS,
            "Modify the default address of a user. The agent needs to explain the modification \
             detail and ask for explicit user confirmation (yes/no) to proceed.",
            &user_address,
        ),
        tool_schema(
            RETURN_DELIVERED_ORDER_ITEMS,
            "Return some items of a delivered order. The order status will be changed to 'return \
             requested'. The agent needs to explain the return detail and ask for explicit user \
             confirmation (yes/no) to proceed. The user will receive follow-up email for how and \
             where to return the item.",
            &[
                order_id(),
                (
                    "item_ids",
                    string_list_param(
                        "The item ids to be returned, each such as '1008292230'. There could be \
                         duplicate items in the list.",
                    ),
                ),
                payment(),
            ],
        ),
        tool_schema(
            EXCHANGE_DELIVERED_ORDER_ITEMS,
            "Exchange items in a delivered order to new items of the same product type. For a \
             delivered order, return or exchange can be only done once by the agent. The agent \
             needs to explain the exchange detail and ask for explicit user confirmation (yes/no) \
             to proceed.",
            &[
                order_id(),
                (
                    "item_ids",
                    string_list_param(
                        "The item ids to be exchanged, each such as '1008292230'. There could be \
                         duplicate items in the list.",
                    ),
                ),
                (
                    "new_item_ids",
                    string_list_param(
                        "The item ids to be exchanged for, each such as '1008292230'. There could \
                         be duplicate items in the list. Each new item id should match the item \
                         id in the same position and be of the same product.",
                    ),
                ),
                payment(),
            ],
        ),
    ];
    for name in [
        CALCULATE,
        THINK,
        TRANSFER_TO_HUMAN_AGENTS,
        tau_common::RESPOND,
        tau_common::END_CONVERSATION,
    ] {
        tools.push(conversation_tool_schema(name).expect("a conversation tool"));
    }
    tools
}

fn error(text: impl std::fmt::Display) -> String {
    format!("Error: {text}")
}

/// Python's `KeyError` as tau-bench prints it.
fn key_error(key: &str) -> String {
    format!("Error: '{key}'")
}

/// Runs domain tool `name` (anything but `respond`, `end_conversation` and
/// `transfer_to_human_agents`, which the env handles) with `arguments` on `view`; returns the tool
/// message's content. Argument problems and unknown tools are `Error: …` answers that change nothing.
pub fn dispatch(view: &mut View, name: &str, arguments: &Value) -> String {
    let Some(params) = params(name) else {
        return error(format!("unknown tool `{name}`"));
    };
    match Args::from_value(name, arguments, params).and_then(|args| run(view, &args)) {
        Ok(text) => text,
        Err(e) => error(e),
    }
}

/// Runs a tool whose argument keys are checked; `Err` only for ill-typed arguments.
fn run(view: &mut View, args: &Args) -> Result<String, String> {
    Ok(match args.tool() {
        FIND_USER_ID_BY_EMAIL => find_user_id_by_email(view, &args.str("email")?),
        FIND_USER_ID_BY_NAME_ZIP => find_user_id_by_name_zip(
            view,
            &args.str("first_name")?,
            &args.str("last_name")?,
            &args.str("zip")?,
        ),
        GET_USER_DETAILS => match view.user(&args.str("user_id")?) {
            Some(user) => dumps(user),
            None => error("user not found"),
        },
        GET_ORDER_DETAILS => match view.order(&args.str("order_id")?) {
            Some(order) => dumps(order),
            None => error("order not found"),
        },
        GET_PRODUCT_DETAILS => match view.product(&args.str("product_id")?) {
            Some(product) => dumps(product),
            None => error("product not found"),
        },
        GET_ITEM_DETAILS => {
            let item_id = args.str("item_id")?;
            match view
                .base
                .products
                .values()
                .find_map(|p| p.variants.get(&item_id))
            {
                Some(variant) => dumps(variant),
                None => error("item not found"),
            }
        }
        LIST_ALL_PRODUCT_TYPES => {
            let types: std::collections::BTreeMap<&str, &str> = view
                .base
                .products
                .values()
                .map(|p| (p.name.as_str(), p.product_id.as_str()))
                .collect();
            dumps(&types)
        }
        CANCEL_PENDING_ORDER => {
            cancel_pending_order(view, &args.str("order_id")?, &args.str("reason")?)
        }
        MODIFY_PENDING_ORDER_ADDRESS => {
            let order_id = args.str("order_id")?;
            let address = address(args)?;
            modify_pending_order_address(view, &order_id, address)
        }
        MODIFY_PENDING_ORDER_ITEMS => modify_pending_order_items(
            view,
            &args.str("order_id")?,
            &args.str_list("item_ids")?,
            &args.str_list("new_item_ids")?,
            &args.str("payment_method_id")?,
        ),
        MODIFY_PENDING_ORDER_PAYMENT => modify_pending_order_payment(
            view,
            &args.str("order_id")?,
            &args.str("payment_method_id")?,
        ),
        MODIFY_USER_ADDRESS => {
            let user_id = args.str("user_id")?;
            let address = address(args)?;
            match view.user_mut(&user_id) {
                Some(user) => {
                    user.address = address;
                    dumps(&*user)
                }
                None => error("user not found"),
            }
        }
        RETURN_DELIVERED_ORDER_ITEMS => return_delivered_order_items(
            view,
            &args.str("order_id")?,
            &args.str_list("item_ids")?,
            &args.str("payment_method_id")?,
        ),
        EXCHANGE_DELIVERED_ORDER_ITEMS => exchange_delivered_order_items(
            view,
            &args.str("order_id")?,
            &args.str_list("item_ids")?,
            &args.str_list("new_item_ids")?,
            &args.str("payment_method_id")?,
        ),
        CALCULATE => calculate(&args.str("expression")?),
        THINK => {
            args.str("thought")?;
            String::new()
        }
        other => error(format!("unknown tool `{other}`")),
    })
}

fn address(args: &Args) -> Result<Address, String> {
    let mut fields = ADDRESS_PARAMS.iter().map(|k| args.str(k));
    Ok(Address {
        address1: fields.next().expect("6 fields")?,
        address2: fields.next().expect("6 fields")?,
        city: fields.next().expect("6 fields")?,
        state: fields.next().expect("6 fields")?,
        country: fields.next().expect("6 fields")?,
        zip: fields.next().expect("6 fields")?,
        order: AddressOrder::Written,
    })
}

fn find_user_id_by_email(view: &View, email: &str) -> String {
    let wanted = email.to_lowercase();
    view.users()
        .find(|(_, u)| u.email.to_lowercase() == wanted)
        .map_or_else(|| error("user not found"), |(id, _)| id.clone())
}

fn find_user_id_by_name_zip(view: &View, first: &str, last: &str, zip: &str) -> String {
    let (first, last) = (first.to_lowercase(), last.to_lowercase());
    view.users()
        .find(|(_, u)| {
            u.name.first_name.to_lowercase() == first
                && u.name.last_name.to_lowercase() == last
                && u.address.zip == zip
        })
        .map_or_else(|| error("user not found"), |(id, _)| id.clone())
}

/// Python's `list.count` check of the original: each id may be asked for at most as often as the order
/// has it. Returns the first id asked for too often.
fn first_missing<'a>(order: &Order, item_ids: &'a [String]) -> Option<&'a String> {
    item_ids.iter().find(|id| {
        let asked = item_ids.iter().filter(|x| x == id).count();
        let held = order.items.iter().filter(|i| &i.item_id == *id).count();
        asked > held
    })
}

/// Adds `delta` to a gift card's balance and rounds it to 2 dp, as the original does after every change.
fn credit(view: &mut View, user_id: &str, payment_method_id: &str, delta: Num, subtract: bool) {
    if let Some(pm) = view
        .user_mut(user_id)
        .and_then(|u| u.payment_methods.get_mut(payment_method_id))
    {
        let balance = pm.balance.unwrap_or_default();
        let updated = if subtract {
            balance - delta
        } else {
            balance + delta
        };
        pm.balance = Some(updated.round(2));
    }
}

fn cancel_pending_order(view: &mut View, order_id: &str, reason: &str) -> String {
    let Some(order) = view.order(order_id) else {
        return error("order not found");
    };
    if order.status != "pending" {
        return error("non-pending order cannot be cancelled");
    }
    if reason != "no longer needed" && reason != "ordered by mistake" {
        return error("invalid reason");
    }
    let user_id = order.user_id.clone();
    let payments = order.payment_history.clone();
    // The original credits gift cards (by id) inside the loop; check they exist first so a bad DB
    // cannot leave a half-applied cancellation.
    for p in &payments {
        if p.payment_method_id.contains("gift_card") {
            let has_balance = view
                .user(&user_id)
                .and_then(|u| u.payment_methods.get(&p.payment_method_id))
                .is_some_and(|pm| pm.balance.is_some());
            if !has_balance {
                return key_error(&p.payment_method_id);
            }
        }
    }
    let refunds: Vec<Payment> = payments
        .iter()
        .map(|p| Payment {
            transaction_type: "refund".to_string(),
            amount: p.amount,
            payment_method_id: p.payment_method_id.clone(),
        })
        .collect();
    for p in &payments {
        if p.payment_method_id.contains("gift_card") {
            credit(view, &user_id, &p.payment_method_id, p.amount, false);
        }
    }
    let order = view.order_mut(order_id).expect("checked above");
    order.status = "cancelled".to_string();
    order.cancel_reason = Some(reason.to_string());
    order.payment_history.extend(refunds);
    dumps(&*order)
}

fn modify_pending_order_address(view: &mut View, order_id: &str, address: Address) -> String {
    let Some(order) = view.order(order_id) else {
        return error("order not found");
    };
    if order.status != "pending" {
        return error("non-pending order cannot be modified");
    }
    let order = view.order_mut(order_id).expect("checked above");
    order.address = address;
    dumps(&*order)
}

/// The price difference of swapping `item_ids` for `new_item_ids` (Python's running `+=` from int 0),
/// or the original's error.
fn price_difference(
    view: &View,
    order: &Order,
    item_ids: &[String],
    new_item_ids: &[String],
) -> Result<Num, String> {
    let mut diff = Num::Int(0);
    for (item_id, new_item_id) in item_ids.iter().zip(new_item_ids) {
        let item = order
            .items
            .iter()
            .find(|i| &i.item_id == item_id)
            .ok_or_else(|| error("list index out of range"))?;
        let product = view
            .product(&item.product_id)
            .ok_or_else(|| key_error(&item.product_id))?;
        let variant = product
            .variants
            .get(new_item_id)
            .filter(|v| v.available)
            .ok_or_else(|| error(format!("new item {new_item_id} not found or available")))?;
        diff = diff + (variant.price - item.price);
    }
    Ok(diff)
}

/// Swaps items in place like the original's second loop: each pair changes the first item that still
/// has the old id to the new variant (id, price, options).
fn swap_items(
    view: &View,
    order: &mut Order,
    item_ids: &[String],
    new_item_ids: &[String],
) -> Result<(), String> {
    for (item_id, new_item_id) in item_ids.iter().zip(new_item_ids) {
        let item = order
            .items
            .iter_mut()
            .find(|i| &i.item_id == item_id)
            .ok_or_else(|| error("list index out of range"))?;
        let variant = view
            .product(&item.product_id)
            .and_then(|p| p.variants.get(new_item_id))
            .ok_or_else(|| key_error(new_item_id))?;
        item.item_id = new_item_id.clone();
        item.price = variant.price;
        item.options = variant.options.clone();
    }
    Ok(())
}

/// The checks item modifications and exchanges share, in the original's order: the order exists and has
/// the required status (`(status, error when it has another)`), every item is in it, the two lists have
/// the same length, and every new item is an available variant of the same product. Returns the order's
/// user id and the price difference (new minus old).
fn check_item_swap(
    view: &View,
    order_id: &str,
    (status, wrong_status): (&str, &str),
    item_ids: &[String],
    new_item_ids: &[String],
) -> Result<(String, Num), String> {
    let Some(order) = view.order(order_id) else {
        return Err(error("order not found"));
    };
    if order.status != status {
        return Err(error(wrong_status));
    }
    if let Some(missing) = first_missing(order, item_ids) {
        return Err(error(format!("{missing} not found")));
    }
    if item_ids.len() != new_item_ids.len() {
        return Err(error("the number of items to be exchanged should match"));
    }
    let diff = price_difference(view, order, item_ids, new_item_ids)?;
    Ok((order.user_id.clone(), diff))
}

fn modify_pending_order_items(
    view: &mut View,
    order_id: &str,
    item_ids: &[String],
    new_item_ids: &[String],
    payment_method_id: &str,
) -> String {
    let (user_id, diff) = match check_item_swap(
        view,
        order_id,
        ("pending", "non-pending order cannot be modified"),
        item_ids,
        new_item_ids,
    ) {
        Ok(checked) => checked,
        Err(e) => return e,
    };
    let order = view.order(order_id).expect("checked above");
    let Some(user) = view.user(&user_id) else {
        return key_error(&user_id);
    };
    let Some(pm) = user.payment_methods.get(payment_method_id) else {
        return error("payment method not found");
    };
    let gift_card = pm.source == "gift_card";
    if gift_card && pm.balance.unwrap_or_default().lt(diff) {
        return error("insufficient gift card balance to pay for the new item");
    }
    let mut updated = order.clone();
    updated.payment_history.push(Payment {
        transaction_type: if diff.is_positive() {
            "payment"
        } else {
            "refund"
        }
        .to_string(),
        amount: diff.abs(),
        payment_method_id: payment_method_id.to_string(),
    });
    if let Err(e) = swap_items(view, &mut updated, item_ids, new_item_ids) {
        return e;
    }
    updated.status = "pending (item modified)".to_string();
    if gift_card {
        credit(view, &user_id, payment_method_id, diff, true);
    }
    let text = dumps(&updated);
    view.overlay.orders.insert(order_id.to_string(), updated);
    text
}

fn modify_pending_order_payment(
    view: &mut View,
    order_id: &str,
    payment_method_id: &str,
) -> String {
    let Some(order) = view.order(order_id) else {
        return error("order not found");
    };
    if order.status != "pending" {
        return error("non-pending order cannot be modified");
    }
    let user_id = order.user_id.clone();
    let Some(user) = view.user(&user_id) else {
        return key_error(&user_id);
    };
    let Some(pm) = user.payment_methods.get(payment_method_id) else {
        return error("payment method not found");
    };
    let Some(first) = order.payment_history.first() else {
        return error("list index out of range");
    };
    if order.payment_history.len() > 1 || first.transaction_type != "payment" {
        return error("there should be exactly one payment for a pending order");
    }
    if first.payment_method_id == payment_method_id {
        return error("the new payment method should be different from the current one");
    }
    let amount = first.amount;
    let old_id = first.payment_method_id.clone();
    let new_is_gift = pm.source == "gift_card";
    if new_is_gift && pm.balance.unwrap_or_default().lt(amount) {
        return error("insufficient gift card balance to pay for the order");
    }
    let old_is_gift = old_id.contains("gift_card");
    if old_is_gift
        && user
            .payment_methods
            .get(&old_id)
            .and_then(|m| m.balance)
            .is_none()
    {
        return key_error(&old_id);
    }
    let order = view.order_mut(order_id).expect("checked above");
    order.payment_history.extend([
        Payment {
            transaction_type: "payment".to_string(),
            amount,
            payment_method_id: payment_method_id.to_string(),
        },
        Payment {
            transaction_type: "refund".to_string(),
            amount,
            payment_method_id: old_id.clone(),
        },
    ]);
    let text = dumps(&*order);
    if new_is_gift {
        credit(view, &user_id, payment_method_id, amount, true);
    }
    if old_is_gift {
        credit(view, &user_id, &old_id, amount, false);
    }
    text
}

fn return_delivered_order_items(
    view: &mut View,
    order_id: &str,
    item_ids: &[String],
    payment_method_id: &str,
) -> String {
    let Some(order) = view.order(order_id) else {
        return error("order not found");
    };
    if order.status != "delivered" {
        return error("non-delivered order cannot be returned");
    }
    let Some(user) = view.user(&order.user_id) else {
        return key_error(&order.user_id);
    };
    if !user.payment_methods.contains_key(payment_method_id) {
        return error("payment method not found");
    }
    if !payment_method_id.contains("gift_card") {
        let Some(first) = order.payment_history.first() else {
            return error("list index out of range");
        };
        if first.payment_method_id != payment_method_id {
            return error(
                "payment method should be either the original payment method or a gift card",
            );
        }
    }
    if first_missing(order, item_ids).is_some() {
        return error("some item not found");
    }
    let order = view.order_mut(order_id).expect("checked above");
    order.status = "return requested".to_string();
    let mut sorted = item_ids.to_vec();
    sorted.sort();
    order.return_items = Some(sorted);
    order.return_payment_method_id = Some(payment_method_id.to_string());
    dumps(&*order)
}

fn exchange_delivered_order_items(
    view: &mut View,
    order_id: &str,
    item_ids: &[String],
    new_item_ids: &[String],
    payment_method_id: &str,
) -> String {
    let (user_id, diff) = match check_item_swap(
        view,
        order_id,
        ("delivered", "non-delivered order cannot be exchanged"),
        item_ids,
        new_item_ids,
    ) {
        Ok((user_id, diff)) => (user_id, diff.round(2)),
        Err(e) => return e,
    };
    let Some(user) = view.user(&user_id) else {
        return key_error(&user_id);
    };
    let Some(pm) = user.payment_methods.get(payment_method_id) else {
        return error("payment method not found");
    };
    if pm.source == "gift_card" && pm.balance.unwrap_or_default().lt(diff) {
        return error("insufficient gift card balance to pay for the price difference");
    }
    let order = view.order_mut(order_id).expect("checked above");
    order.status = "exchange requested".to_string();
    let mut items = item_ids.to_vec();
    items.sort();
    let mut new_items = new_item_ids.to_vec();
    new_items.sort();
    order.exchange_items = Some(items);
    order.exchange_new_items = Some(new_items);
    order.exchange_payment_method_id = Some(payment_method_id.to_string());
    order.exchange_price_difference = Some(diff);
    dumps(&*order)
}
