//! The retail database: users, orders and products exactly as tau-bench v1's JSON files, as typed
//! records whose fields serialize in the original order. Maps inside records (`payment_methods`,
//! `variants`, `options`) are [`OrderedMap`]s keeping the file's order, so a record printed with
//! `tau_common::pyjson::dumps` is byte for byte the original's `json.dumps(record)`; the tables
//! themselves are `BTreeMap`s keyed by id (no tool prints a whole table).
//!
//! The configured DB ([`Db`]) is immutable during an episode; writes go to an [`Overlay`] of changed
//! users and orders (products are never written). A fresh episode is an empty overlay, gold replay
//! uses a second overlay, and comparing two final DBs only looks at records either overlay touched;
//! their digests ([`overlay_digest`]) likewise only serialize the overlay's changed records.

use std::collections::{BTreeMap, BTreeSet};

use sandgym_sdk::Value;
use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use tau_common::{DbDigest, Num, OrderedMap};

/// Shared with the other tau-bench domain.
pub use tau_common::records::{Address, AddressOrder, Name};

/// A payment method: `source` is `credit_card` (with `brand`, `last_four`), `paypal`, or `gift_card`
/// (with `balance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_four: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Num>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// tau2's DB adds the id to each user; v1 has it only as the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub name: Name,
    pub address: Address,
    pub email: String,
    pub payment_methods: OrderedMap<PaymentMethod>,
    pub orders: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    pub name: String,
    pub product_id: String,
    pub item_id: String,
    pub price: Num,
    pub options: OrderedMap<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fulfillment {
    pub tracking_id: Vec<String>,
    pub item_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub transaction_type: String,
    pub amount: Num,
    pub payment_method_id: String,
}

/// An order; the optional fields are the ones the write tools add, in the order the original adds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    pub address: Address,
    pub items: Vec<OrderItem>,
    pub fulfillments: Vec<Fulfillment>,
    pub status: String,
    pub payment_history: Vec<Payment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_items: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_payment_method_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_items: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_new_items: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_payment_method_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_price_difference: Option<Num>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub item_id: String,
    pub options: OrderedMap<Value>,
    pub available: bool,
    pub price: Num,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub name: String,
    pub product_id: String,
    pub variants: OrderedMap<Variant>,
}

/// The whole database. Serializes canonically as `{"orders", "products", "users"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Db {
    pub orders: BTreeMap<String, Order>,
    pub products: BTreeMap<String, Product>,
    pub users: BTreeMap<String, User>,
}

/// Order statuses of the initial data.
pub const STATUSES: [&str; 4] = ["pending", "processed", "delivered", "cancelled"];

fn table<T: DeserializeOwned>(name: &str, value: &Value) -> Result<BTreeMap<String, T>, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("config `db.{name}` must be an object keyed by id"))?;
    map.iter()
        .map(|(key, record)| {
            T::deserialize(record)
                .map(|r| (key.clone(), r))
                .map_err(|e| format!("config `db.{name}[\"{key}\"]`: {e}"))
        })
        .collect()
}

/// Finds a table in the `db` config: `users` or `users.json` (a directory inlined by the host).
fn find_table<'a>(
    map: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a Value, String> {
    map.get(name)
        .or_else(|| map.get(&format!("{name}.json")))
        .ok_or_else(|| {
            format!("config `db` has no `{name}` table (expected keys users, orders, products)")
        })
}

impl Db {
    /// Loads and validates a DB given as `{"users": {...}, "orders": {...}, "products": {...}}` (the
    /// v1 files' contents; keys may carry a `.json` suffix, text files such as `wiki.md` are ignored).
    pub fn from_json(value: &Value) -> Result<Db, String> {
        let map = value.as_object().ok_or_else(|| {
            "config `db` must be an object with users, orders and products".to_string()
        })?;
        const TABLES: [&str; 3] = ["users", "orders", "products"];
        if let Some(key) = map.keys().find(|k| {
            let base = k.strip_suffix(".json").unwrap_or(k);
            !TABLES.contains(&base) && !k.ends_with(".md") && !k.ends_with(".txt")
        }) {
            return Err(format!(
                "config `db` has unknown key `{key}` (expected users, orders, products)"
            ));
        }
        let db = Db {
            users: table("users", find_table(map, "users")?)?,
            orders: table("orders", find_table(map, "orders")?)?,
            products: table("products", find_table(map, "products")?)?,
        };
        db.validate()?;
        Ok(db)
    }

    /// Checks the invariants the tools rely on: keys match ids, orders belong to known users and name
    /// known products, gift cards have a balance, sources are known.
    pub fn validate(&self) -> Result<(), String> {
        for (key, user) in &self.users {
            if let Some(id) = &user.user_id
                && id != key
            {
                return Err(format!("config `db.users[\"{key}\"]` has user_id `{id}`"));
            }
            for (pm_key, pm) in &user.payment_methods {
                if &pm.id != pm_key {
                    return Err(format!(
                        "config `db.users[\"{key}\"].payment_methods[\"{pm_key}\"]` has id `{}`",
                        pm.id
                    ));
                }
                if !["credit_card", "paypal", "gift_card"].contains(&pm.source.as_str()) {
                    return Err(format!(
                        "config `db.users[\"{key}\"].payment_methods[\"{pm_key}\"]` has unknown \
                         source `{}`",
                        pm.source
                    ));
                }
                if pm.source == "gift_card" && pm.balance.is_none() {
                    return Err(format!(
                        "config `db.users[\"{key}\"].payment_methods[\"{pm_key}\"]` is a gift card \
                         without `balance`"
                    ));
                }
            }
        }
        for (key, order) in &self.orders {
            if &order.order_id != key {
                return Err(format!(
                    "config `db.orders[\"{key}\"]` has order_id `{}`",
                    order.order_id
                ));
            }
            if !self.users.contains_key(&order.user_id) {
                return Err(format!(
                    "config `db.orders[\"{key}\"]` belongs to unknown user `{}`",
                    order.user_id
                ));
            }
            for item in &order.items {
                if !self.products.contains_key(&item.product_id) {
                    return Err(format!(
                        "config `db.orders[\"{key}\"]` has an item of unknown product `{}`",
                        item.product_id
                    ));
                }
            }
        }
        for (key, product) in &self.products {
            if &product.product_id != key {
                return Err(format!(
                    "config `db.products[\"{key}\"]` has product_id `{}`",
                    product.product_id
                ));
            }
            for (item_key, variant) in &product.variants {
                if &variant.item_id != item_key {
                    return Err(format!(
                        "config `db.products[\"{key}\"].variants[\"{item_key}\"]` has item_id `{}`",
                        variant.item_id
                    ));
                }
            }
        }
        Ok(())
    }

    /// Order counts per status.
    pub fn status_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for order in self.orders.values() {
            *counts.entry(order.status.clone()).or_insert(0) += 1;
        }
        counts
    }
}

/// The users and orders an episode changed, as full copies of the changed records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    pub users: BTreeMap<String, User>,
    pub orders: BTreeMap<String, Order>,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.orders.is_empty()
    }
}

/// The DB as an episode sees it: the base with an overlay on top.
pub struct View<'a> {
    pub base: &'a Db,
    pub overlay: &'a mut Overlay,
}

impl<'a> View<'a> {
    pub fn new(base: &'a Db, overlay: &'a mut Overlay) -> Self {
        View { base, overlay }
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.overlay
            .users
            .get(id)
            .or_else(|| self.base.users.get(id))
    }

    pub fn order(&self, id: &str) -> Option<&Order> {
        self.overlay
            .orders
            .get(id)
            .or_else(|| self.base.orders.get(id))
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.base.products.get(id)
    }

    /// The user for writing (copied into the overlay on first write).
    pub fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        if !self.overlay.users.contains_key(id) {
            let user = self.base.users.get(id)?.clone();
            self.overlay.users.insert(id.to_string(), user);
        }
        self.overlay.users.get_mut(id)
    }

    /// The order for writing (copied into the overlay on first write).
    pub fn order_mut(&mut self, id: &str) -> Option<&mut Order> {
        if !self.overlay.orders.contains_key(id) {
            let order = self.base.orders.get(id)?.clone();
            self.overlay.orders.insert(id.to_string(), order);
        }
        self.overlay.orders.get_mut(id)
    }

    /// Users in key order with the overlay applied (the original iterates its dict in file order;
    /// ids are unique, so only lookups that match several users could differ).
    pub fn users(&self) -> impl Iterator<Item = (&String, &User)> {
        self.base
            .users
            .iter()
            .map(|(k, u)| (k, self.overlay.users.get(k).unwrap_or(u)))
    }
}

/// Whether the DBs `base + a` and `base + b` are equal: only records either overlay holds can differ.
pub fn overlays_equal(base: &Db, a: &Overlay, b: &Overlay) -> bool {
    fn table_equal<T: PartialEq>(
        base: &BTreeMap<String, T>,
        a: &BTreeMap<String, T>,
        b: &BTreeMap<String, T>,
    ) -> bool {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        keys.into_iter()
            .all(|k| a.get(k).or_else(|| base.get(k)) == b.get(k).or_else(|| base.get(k)))
    }
    table_equal(&base.users, &a.users, &b.users) && table_equal(&base.orders, &a.orders, &b.orders)
}

/// The [`DbDigest`] of `base + overlay` (`base_hash`: the base's canonical hash): folds in the overlay's
/// orders, then users, that differ from their base version, so the cost follows the overlay's size.
pub fn overlay_digest(base: &Db, base_hash: u64, overlay: &Overlay) -> u64 {
    let mut digest = DbDigest::new(base_hash);
    digest.changes(
        "orders",
        overlay.orders.keys(),
        |k| overlay.orders.get(k),
        |k| base.orders.get(k),
    );
    digest.changes(
        "users",
        overlay.users.keys(),
        |k| overlay.users.get(k),
        |k| base.users.get(k),
    );
    digest.finish()
}

/// Serializes `base + overlay` exactly as the equivalent [`Db`] would serialize (for the hash).
pub struct Effective<'a> {
    pub base: &'a Db,
    pub overlay: &'a Overlay,
}

struct MergedTable<'a, T> {
    base: &'a BTreeMap<String, T>,
    overlay: &'a BTreeMap<String, T>,
}

impl<T: Serialize> Serialize for MergedTable<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.base.len()))?;
        for (key, record) in self.base {
            map.serialize_entry(key, self.overlay.get(key).unwrap_or(record))?;
        }
        map.end()
    }
}

impl Serialize for Effective<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry(
            "orders",
            &MergedTable {
                base: &self.base.orders,
                overlay: &self.overlay.orders,
            },
        )?;
        map.serialize_entry("products", &self.base.products)?;
        map.serialize_entry(
            "users",
            &MergedTable {
                base: &self.base.users,
                overlay: &self.overlay.users,
            },
        )?;
        map.end()
    }
}
