//! The airline database: users, flights and reservations, in the shape of tau-bench v1's JSON files.
//!
//! Records are typed structs whose field order is the original's, so a record printed with
//! `tau_common::pyjson::dumps` reads like the Python original's `json.dumps`. Tables are `BTreeMap`s
//! keyed by id (deterministic order). Money (prices, balances, payment amounts) is [`Num`], which keeps
//! Python's int/float distinction; counts (seats, bags) are integers.
//!
//! [`Db::from_json`] loads and validates an imported DB (the v1 files, or tau2's `db.json`, whose users
//! also carry `user_id`), naming the record and field at fault.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tau_common::OrderedMap;
pub use tau_common::num::Num;

/// Shared with the other tau-bench domain.
pub use tau_common::records::{Address, AddressOrder, Name};

/// "Now" in the airline world (EST), as the policy states it.
pub const NOW: &str = "2024-05-15T15:00:00";
/// The date part of [`NOW`].
pub const TODAY: &str = "2024-05-15";
pub const CABINS: [&str; 3] = ["basic_economy", "economy", "business"];
pub const FLIGHT_TYPES: [&str; 2] = ["one_way", "round_trip"];
pub const MEMBERSHIPS: [&str; 3] = ["regular", "silver", "gold"];
pub const PAYMENT_SOURCES: [&str; 3] = ["credit_card", "gift_card", "certificate"];
pub const FLIGHT_STATUSES: [&str; 6] = [
    "available",
    "landed",
    "cancelled",
    "on time",
    "flying",
    "delayed",
];

/// Seats or prices per cabin, in the original's key order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerCabin<T> {
    pub basic_economy: T,
    pub economy: T,
    pub business: T,
}

impl<T: Copy> PerCabin<T> {
    /// The value for a cabin name; `None` for an unknown cabin.
    pub fn get(&self, cabin: &str) -> Option<T> {
        match cabin {
            "basic_economy" => Some(self.basic_economy),
            "economy" => Some(self.economy),
            "business" => Some(self.business),
            _ => None,
        }
    }
}

/// A stored payment method. Credit cards carry `brand` and `last_four`; gift cards and certificates an
/// `amount` (balance). Field order matches both original shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_four: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Num>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passenger {
    pub first_name: String,
    pub last_name: String,
    pub dob: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Present in tau2's DB only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub name: Name,
    pub address: Address,
    pub email: String,
    pub dob: String,
    pub payment_methods: OrderedMap<PaymentMethod>,
    pub saved_passengers: Vec<Passenger>,
    pub membership: String,
    pub reservations: Vec<String>,
}

/// A flight on one date. Which optional fields are present depends on `status` (checked on load):
/// available: seats and prices; landed: actual times; on time / delayed: estimated times; flying:
/// actual departure and estimated arrival; cancelled: none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlightDate {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_seats: Option<PerCabin<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<PerCabin<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_departure_time_est: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_arrival_time_est: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_departure_time_est: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_arrival_time_est: Option<String>,
}

impl FlightDate {
    pub fn status_only(status: &str) -> Self {
        FlightDate {
            status: status.to_string(),
            available_seats: None,
            prices: None,
            actual_departure_time_est: None,
            actual_arrival_time_est: None,
            estimated_departure_time_est: None,
            estimated_arrival_time_est: None,
        }
    }

    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// Seats and prices of an `available` date.
    pub fn offer(&self) -> Option<(PerCabin<i64>, PerCabin<Num>)> {
        match (self.is_available(), self.available_seats, self.prices) {
            (true, Some(seats), Some(prices)) => Some((seats, prices)),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), String> {
        let fields = [
            ("available_seats", self.available_seats.is_some()),
            ("prices", self.prices.is_some()),
            (
                "actual_departure_time_est",
                self.actual_departure_time_est.is_some(),
            ),
            (
                "actual_arrival_time_est",
                self.actual_arrival_time_est.is_some(),
            ),
            (
                "estimated_departure_time_est",
                self.estimated_departure_time_est.is_some(),
            ),
            (
                "estimated_arrival_time_est",
                self.estimated_arrival_time_est.is_some(),
            ),
        ];
        let required: &[&str] = match self.status.as_str() {
            "available" => &["available_seats", "prices"],
            "landed" => &["actual_departure_time_est", "actual_arrival_time_est"],
            "on time" | "delayed" => {
                &["estimated_departure_time_est", "estimated_arrival_time_est"]
            }
            "flying" => &["actual_departure_time_est", "estimated_arrival_time_est"],
            "cancelled" => &[],
            other => {
                return Err(format!(
                    "status must be one of {}, got \"{other}\"",
                    FLIGHT_STATUSES.join(", ")
                ));
            }
        };
        for (field, present) in fields {
            if present && !required.contains(&field) {
                return Err(format!(
                    "field `{field}` does not belong to status \"{}\"",
                    self.status
                ));
            }
            if !present && required.contains(&field) {
                return Err(format!("status \"{}\" needs field `{field}`", self.status));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flight {
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    /// `HH:MM:SS`.
    pub scheduled_departure_time_est: String,
    /// `HH:MM:SS`, with `+1` appended when the flight lands the next day.
    pub scheduled_arrival_time_est: String,
    pub dates: BTreeMap<String, FlightDate>,
}

/// One flight segment of a reservation, with the per-passenger price paid for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationFlight {
    pub origin: String,
    pub destination: String,
    pub flight_number: String,
    pub date: String,
    pub price: Num,
    /// Key order only; not part of the value (equality ignores it).
    #[serde(skip)]
    pub order: SegmentOrder,
}

/// The key order a [`ReservationFlight`] prints in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SegmentOrder {
    /// The v1 files' order: `origin, destination, flight_number, date, price`.
    #[default]
    File,
    /// Written by `book_reservation` or `update_reservation_flights`. The original copies the
    /// argument `{flight_number, date}` and then sets `price`, `origin`, `destination` (v1's
    /// `BookReservation.invoke` and `UpdateReservationFlights.invoke`, kept segments included).
    Written,
}

impl PartialEq for ReservationFlight {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.origin,
            &self.destination,
            &self.flight_number,
            &self.date,
            &self.price,
        ) == (
            &other.origin,
            &other.destination,
            &other.flight_number,
            &other.date,
            &other.price,
        )
    }
}

impl Serialize for ReservationFlight {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("ReservationFlight", 5)?;
        // Hashes (canonical mode) use one order, so equal segments hash alike.
        if self.order == SegmentOrder::Written && !tau_common::ordered::is_canonical() {
            s.serialize_field("flight_number", &self.flight_number)?;
            s.serialize_field("date", &self.date)?;
            s.serialize_field("price", &self.price)?;
            s.serialize_field("origin", &self.origin)?;
            s.serialize_field("destination", &self.destination)?;
        } else {
            s.serialize_field("origin", &self.origin)?;
            s.serialize_field("destination", &self.destination)?;
            s.serialize_field("flight_number", &self.flight_number)?;
            s.serialize_field("date", &self.date)?;
            s.serialize_field("price", &self.price)?;
        }
        s.end()
    }
}

/// One payment (positive) or refund (negative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub payment_id: String,
    pub amount: Num,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    pub reservation_id: String,
    pub user_id: String,
    pub origin: String,
    pub destination: String,
    pub flight_type: String,
    pub cabin: String,
    pub flights: Vec<ReservationFlight>,
    pub passengers: Vec<Passenger>,
    pub payment_history: Vec<Payment>,
    pub created_at: String,
    pub total_baggages: i64,
    pub nonfree_baggages: i64,
    pub insurance: String,
    /// `"cancelled"` once cancelled; absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Reservation {
    pub fn is_cancelled(&self) -> bool {
        self.status.as_deref() == Some("cancelled")
    }
}

/// The whole mutable world of the airline domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Db {
    pub users: BTreeMap<String, User>,
    pub flights: BTreeMap<String, Flight>,
    pub reservations: BTreeMap<String, Reservation>,
}

fn table<T: DeserializeOwned>(
    db: &BTreeMap<&str, &Value>,
    name: &str,
    singular: &str,
) -> Result<BTreeMap<String, T>, String> {
    let Some(value) = db.get(name).copied() else {
        return Err(format!("db: missing table `{name}`"));
    };
    let Value::Object(records) = value else {
        return Err(format!(
            "db: table `{name}` must be an object keyed by id, got {}",
            kind(value)
        ));
    };
    records
        .iter()
        .map(|(key, record)| {
            T::deserialize(record)
                .map(|r| (key.clone(), r))
                .map_err(|e| format!("db: {singular} `{key}`: {e}"))
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{what} must be one of {}, got \"{value}\"",
            allowed.join(", ")
        ))
    }
}

impl Db {
    /// Loads and validates `{"users": {...}, "flights": {...}, "reservations": {...}}`.
    pub fn from_json(value: &Value) -> Result<Db, String> {
        let Value::Object(map) = value else {
            return Err(format!(
                "db must be an object with tables users, flights, reservations, got {}",
                kind(value)
            ));
        };
        // A directory inlined by the host may also bring `users.json`-style keys or notes.
        let mut tables: BTreeMap<&str, &Value> = BTreeMap::new();
        for (key, value) in map {
            if key.ends_with(".md") || key.ends_with(".txt") {
                continue;
            }
            let name = key.strip_suffix(".json").unwrap_or(key);
            if !["users", "flights", "reservations"].contains(&name) {
                return Err(format!(
                    "db: unknown table `{key}` (known: users, flights, reservations)"
                ));
            }
            tables.insert(name, value);
        }
        let db = Db {
            users: table(&tables, "users", "user")?,
            flights: table(&tables, "flights", "flight")?,
            reservations: table(&tables, "reservations", "reservation")?,
        };
        db.validate()?;
        Ok(db)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("the DB serializes")
    }

    /// Checks the invariants the tools rely on: ids match their keys, enums hold known values, every
    /// reference resolves, and each flight date has the fields its status needs.
    pub fn validate(&self) -> Result<(), String> {
        for (key, user) in &self.users {
            let at = |e: String| format!("db: user `{key}`: {e}");
            if let Some(id) = &user.user_id
                && id != key
            {
                return Err(at(format!("field `user_id` is \"{id}\", not its key")));
            }
            one_of("field `membership`", &user.membership, &MEMBERSHIPS).map_err(at)?;
            for (pid, method) in &user.payment_methods {
                let at = |e: String| at(format!("payment method `{pid}`: {e}"));
                if &method.id != pid {
                    return Err(at(format!("field `id` is \"{}\", not its key", method.id)));
                }
                one_of("field `source`", &method.source, &PAYMENT_SOURCES).map_err(at)?;
                let has_amount = method.amount.is_some();
                if has_amount == (method.source == "credit_card") {
                    return Err(at(if has_amount {
                        "a credit card has no `amount`".to_string()
                    } else {
                        format!("a {} needs an `amount`", method.source)
                    }));
                }
            }
            for rid in &user.reservations {
                match self.reservations.get(rid) {
                    None => return Err(at(format!("reservation `{rid}` does not exist"))),
                    Some(r) if &r.user_id != key => {
                        return Err(at(format!(
                            "reservation `{rid}` belongs to user `{}`",
                            r.user_id
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        for (key, flight) in &self.flights {
            let at = |e: String| format!("db: flight `{key}`: {e}");
            if &flight.flight_number != key {
                return Err(at(format!(
                    "field `flight_number` is \"{}\", not its key",
                    flight.flight_number
                )));
            }
            for (date, status) in &flight.dates {
                if !is_date(date) {
                    return Err(at(format!("date `{date}` is not YYYY-MM-DD")));
                }
                status
                    .check()
                    .map_err(|e| at(format!("date {date}: {e}")))?;
            }
        }
        for (key, r) in &self.reservations {
            let at = |e: String| format!("db: reservation `{key}`: {e}");
            if &r.reservation_id != key {
                return Err(at(format!(
                    "field `reservation_id` is \"{}\", not its key",
                    r.reservation_id
                )));
            }
            match self.users.get(&r.user_id) {
                None => return Err(at(format!("user `{}` does not exist", r.user_id))),
                Some(u) if !u.reservations.contains(key) => {
                    return Err(at(format!(
                        "user `{}` does not list this reservation",
                        r.user_id
                    )));
                }
                Some(_) => {}
            }
            one_of("field `cabin`", &r.cabin, &CABINS).map_err(at)?;
            one_of("field `flight_type`", &r.flight_type, &FLIGHT_TYPES).map_err(at)?;
            one_of("field `insurance`", &r.insurance, &["yes", "no"]).map_err(at)?;
            if let Some(status) = &r.status {
                one_of("field `status`", status, &["cancelled"]).map_err(at)?;
            }
        }
        Ok(())
    }

    /// Airports that appear in the flight table, sorted.
    pub fn airports(&self) -> Vec<String> {
        let mut airports: Vec<String> = self
            .flights
            .values()
            .flat_map(|f| [f.origin.clone(), f.destination.clone()])
            .collect();
        airports.sort();
        airports.dedup();
        airports
    }
}

/// `"2024-05-15"` → `Some((2024, 5, 15))` when it is a date string.
pub fn parse_date(date: &str) -> Option<(i32, u32, u32)> {
    if !is_date(date) {
        return None;
    }
    Some((
        date[0..4].parse().ok()?,
        date[5..7].parse().ok()?,
        date[8..10].parse().ok()?,
    ))
}
