//! The airline domain tools (tau-bench v1's eleven plus tau2's `get_flight_status`): schemas, argument
//! checking and effects on the [`Db`].
//!
//! Each tool follows the Python original's order of checks and its messages; a failing call returns
//! `Err(message)` (shown to the model as `Error: message`) and leaves the DB untouched. Kept v1 quirks:
//! booking does not decrement seats; `update_reservation_flights` does not update `reservation.cabin`
//! (and matches kept segments against the stale cabin); cancelling does not check the status; new
//! reservation ids are `HATHAT`, `HATHAU`, `HATHAV`; certificates are `certificate_3221322`, `…23`,
//! `…24`; `get_reservation_details` reports a missing reservation as `user not found`. Stricter than
//! the original (which would store malformed values or fail half-way): arguments are type-checked
//! against the schemas (enums included), and a payment method listed twice is refused.

use serde::Serialize;
use serde_json::{Map, Value, json};

use std::cmp::Ordering;
use tau_common::Args;
use tau_common::pyjson::dumps;

use crate::db::{
    CABINS, Db, FLIGHT_TYPES, Flight, FlightDate, Num, Passenger, Payment, Reservation,
    ReservationFlight, SegmentOrder,
};
use crate::store::Store;

/// The domain tools, in the order of the tool list.
pub const DOMAIN_TOOLS: [&str; 12] = [
    "book_reservation",
    "cancel_reservation",
    "get_reservation_details",
    "get_user_details",
    "list_all_airports",
    "search_direct_flight",
    "search_onestop_flight",
    "send_certificate",
    "update_reservation_baggages",
    "update_reservation_flights",
    "update_reservation_passengers",
    "get_flight_status",
];

/// Tools that change the DB.
pub const WRITE_TOOLS: [&str; 6] = [
    "book_reservation",
    "cancel_reservation",
    "send_certificate",
    "update_reservation_baggages",
    "update_reservation_flights",
    "update_reservation_passengers",
];

pub const RESERVATION_IDS: [&str; 3] = ["HATHAT", "HATHAU", "HATHAV"];
pub const CERTIFICATE_IDS: [&str; 3] = [
    "certificate_3221322",
    "certificate_3221323",
    "certificate_3221324",
];
pub const INSURANCE_PER_PASSENGER: i64 = 30;
pub const BAG_FEE: i64 = 50;

fn py_eq(a: Num, b: Num) -> bool {
    a.py_cmp(b) == Some(Ordering::Equal)
}

/// Known airports and their cities, for `list_all_airports` and the generator. Codes not listed here
/// are shown with their code as the city.
pub const AIRPORTS: [(&str, &str); 40] = [
    ("ATL", "Atlanta"),
    ("AUS", "Austin"),
    ("BNA", "Nashville"),
    ("BOS", "Boston"),
    ("BWI", "Baltimore"),
    ("CLE", "Cleveland"),
    ("CLT", "Charlotte"),
    ("CMH", "Columbus"),
    ("DCA", "Washington"),
    ("DEN", "Denver"),
    ("DFW", "Dallas"),
    ("DTW", "Detroit"),
    ("EWR", "Newark"),
    ("HNL", "Honolulu"),
    ("IAH", "Houston"),
    ("IND", "Indianapolis"),
    ("JFK", "New York"),
    ("LAS", "Las Vegas"),
    ("LAX", "Los Angeles"),
    ("LGA", "LaGuardia"),
    ("MCI", "Kansas City"),
    ("MCO", "Orlando"),
    ("MIA", "Miami"),
    ("MSP", "Minneapolis"),
    ("MSY", "New Orleans"),
    ("OAK", "Oakland"),
    ("ORD", "Chicago"),
    ("PDX", "Portland"),
    ("PHL", "Philadelphia"),
    ("PHX", "Phoenix"),
    ("PIT", "Pittsburgh"),
    ("RDU", "Raleigh"),
    ("SAN", "San Diego"),
    ("SAT", "San Antonio"),
    ("SEA", "Seattle"),
    ("SFO", "San Francisco"),
    ("SJC", "San Jose"),
    ("SLC", "Salt Lake City"),
    ("STL", "St. Louis"),
    ("TPA", "Tampa"),
];

pub fn city_of(code: &str) -> &str {
    AIRPORTS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, city)| city)
}

/// Runs domain tool `name` on `db` (a [`Db`], or a base with an overlay); `None` when `name` is not a
/// domain tool.
pub fn call<S: Store + ?Sized>(
    db: &mut S,
    name: &str,
    args: &Map<String, Value>,
) -> Option<Result<String, String>> {
    let result = match name {
        "get_user_details" => get_user_details(db, args),
        "get_reservation_details" => get_reservation_details(db, args),
        "list_all_airports" => list_all_airports(db.flights_db(), args),
        "search_direct_flight" => search_direct_flight(db.flights_db(), args),
        "search_onestop_flight" => search_onestop_flight(db.flights_db(), args),
        "get_flight_status" => get_flight_status(db.flights_db(), args),
        "book_reservation" => book_reservation(db, args),
        "cancel_reservation" => cancel_reservation(db, args),
        "update_reservation_baggages" => update_reservation_baggages(db, args),
        "update_reservation_flights" => update_reservation_flights(db, args),
        "update_reservation_passengers" => update_reservation_passengers(db, args),
        "send_certificate" => send_certificate(db, args),
        _ => return None,
    };
    Some(result)
}

// ---------------------------------------------------------------------------------------------
// Arguments

/// Echoed bad values are cut to this many characters.
const ECHO_LIMIT: usize = 60;

/// Checks a tool's argument keys the airline's way (tau-common's [`Args`]): unexpected keys at once,
/// a missing parameter when it is read, long echoes shortened.
fn check_args<'a>(
    tool: &'a str,
    map: &'a Map<String, Value>,
    params: &[&str],
) -> Result<Args<'a>, String> {
    Ok(Args::checked_on_read(tool, map, params)?.with_echo_limit(ECHO_LIMIT))
}

/// `flights: [{flight_number, date}]`.
fn flight_list(args: &Args, key: &str) -> Result<Vec<(String, String)>, String> {
    args.objects(key, &["flight_number", "date"])?
        .into_iter()
        .map(|item| Ok((item.str("flight_number")?, item.str("date")?)))
        .collect()
}

/// `passengers: [{first_name, last_name, dob}]`.
fn passenger_list(args: &Args, key: &str) -> Result<Vec<Passenger>, String> {
    args.objects(key, &["first_name", "last_name", "dob"])?
        .into_iter()
        .map(|item| {
            Ok(Passenger {
                first_name: item.str("first_name")?,
                last_name: item.str("last_name")?,
                dob: item.str("dob")?,
            })
        })
        .collect()
}

/// `payment_methods: [{payment_id, amount}]`.
fn payment_list(args: &Args, key: &str) -> Result<Vec<Payment>, String> {
    args.objects(key, &["payment_id", "amount"])?
        .into_iter()
        .map(|item| {
            let amount = item.num("amount")?;
            Ok(Payment {
                payment_id: item.str("payment_id")?,
                amount,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reads

fn get_user_details<S: Store + ?Sized>(db: &S, map: &Map<String, Value>) -> Result<String, String> {
    let args = check_args("get_user_details", map, &["user_id"])?;
    let user_id = &args.str("user_id")?;
    db.user(user_id)
        .map(dumps)
        .ok_or_else(|| "user not found".to_string())
}

fn get_reservation_details<S: Store + ?Sized>(
    db: &S,
    map: &Map<String, Value>,
) -> Result<String, String> {
    let args = check_args("get_reservation_details", map, &["reservation_id"])?;
    let reservation_id = &args.str("reservation_id")?;
    db.reservation(reservation_id)
        .map(dumps)
        // Sic: the original reports a missing reservation this way.
        .ok_or_else(|| "user not found".to_string())
}

/// The order of v1's `list_all_airports` answer (a fixed dict of these 20 airports).
const V1_AIRPORT_ORDER: [&str; 20] = [
    "SFO", "JFK", "LAX", "ORD", "DFW", "DEN", "SEA", "ATL", "MIA", "BOS", "PHX", "IAH", "LAS",
    "MCO", "EWR", "CLT", "MSP", "DTW", "PHL", "LGA",
];

fn list_all_airports(db: &Db, map: &Map<String, Value>) -> Result<String, String> {
    check_args("list_all_airports", map, &[])?;
    // v1's airports first, in v1's order (on the v1 DB, whose flights use exactly those 20, the
    // answer is byte for byte v1's), then any others by code.
    let mut codes = db.airports();
    codes.sort_by_key(|code| {
        V1_AIRPORT_ORDER
            .iter()
            .position(|c| c == code)
            .unwrap_or(V1_AIRPORT_ORDER.len())
    });
    let airports: serde_json::Map<String, Value> = codes
        .into_iter()
        .map(|code| {
            let city = city_of(&code).to_string();
            (code, json!(city))
        })
        .collect();
    Ok(dumps(&airports))
}

/// A flight without its dates, merged with one date's status (and, for one-stop legs, the date).
#[derive(Serialize)]
struct FlightView<'a> {
    flight_number: &'a str,
    origin: &'a str,
    destination: &'a str,
    scheduled_departure_time_est: &'a str,
    scheduled_arrival_time_est: &'a str,
    #[serde(flatten)]
    status: &'a FlightDate,
    #[serde(rename = "date", skip_serializing_if = "Option::is_none")]
    day: Option<&'a str>,
}

fn view<'a>(flight: &'a Flight, status: &'a FlightDate, day: Option<&'a str>) -> FlightView<'a> {
    FlightView {
        flight_number: &flight.flight_number,
        origin: &flight.origin,
        destination: &flight.destination,
        scheduled_departure_time_est: &flight.scheduled_departure_time_est,
        scheduled_arrival_time_est: &flight.scheduled_arrival_time_est,
        status,
        day,
    }
}

/// Available direct flights from `origin` to `destination` on `date`, in flight-number order.
pub fn direct_flights<'a>(
    db: &'a Db,
    origin: &str,
    destination: &str,
    date: &str,
) -> Vec<(&'a Flight, &'a FlightDate)> {
    db.flights
        .values()
        .filter(|f| f.origin == origin && f.destination == destination)
        .filter_map(|f| {
            f.dates
                .get(date)
                .filter(|d| d.is_available())
                .map(|d| (f, d))
        })
        .collect()
}

fn search_direct_flight(db: &Db, map: &Map<String, Value>) -> Result<String, String> {
    let args = check_args(
        "search_direct_flight",
        map,
        &["origin", "destination", "date"],
    )?;
    let (origin, destination, date) = (
        &args.str("origin")?,
        &args.str("destination")?,
        &args.str("date")?,
    );
    let results: Vec<FlightView> = direct_flights(db, origin, destination, date)
        .into_iter()
        .map(|(f, d)| view(f, d, None))
        .collect();
    Ok(dumps(&results))
}

/// The second leg's date as v1's `SearchOnestopFlight.invoke` computes it: the next day
/// (`f"2024-05-{int(date[-2:])+1}"`, not zero-padded, so it matches no date before the 10th) when the
/// first leg lands after midnight, else `date`. `int()` of text that is no integer raises there, and
/// the env answers `Error: invalid literal …`; the same text is returned here as the error.
fn second_leg_date(first: &Flight, date: &str) -> Result<String, String> {
    if !first.scheduled_arrival_time_est.contains("+1") {
        return Ok(date.to_string());
    }
    // `date[-2:]`: the last two characters (code points, as Python slices).
    let tail: String = {
        let chars: Vec<char> = date.chars().collect();
        chars[chars.len().saturating_sub(2)..].iter().collect()
    };
    // `int()` ignores surrounding whitespace and takes one sign, as `parse` does.
    match tail.trim().parse::<i64>().ok() {
        Some(day) => Ok(format!("2024-05-{}", day + 1)),
        None => Err(format!(
            "invalid literal for int() with base 10: {}",
            py_str_repr(&tail)
        )),
    }
}

/// Python's `repr` of a short string (quotes as Python picks them), for error texts that quote it.
fn py_str_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// One one-stop connection: the first flight and its `date` entry, the second flight and its entry
/// on the second leg's date `date2`.
pub type Connection<'a> = (
    &'a Flight,
    &'a FlightDate,
    &'a Flight,
    &'a FlightDate,
    String,
);

/// Available one-stop connections in v1's order (every first flight from `origin`, then every
/// second flight, both in flight-number order, which is the v1 file's order). A connection needs
/// the first leg's scheduled arrival (as text) not after the second's scheduled departure and both
/// legs `available` on their dates. `Err` as [`second_leg_date`], when the original raises.
pub fn onestop_flights<'a>(
    db: &'a Db,
    origin: &str,
    destination: &str,
    date: &str,
) -> Result<Vec<Connection<'a>>, String> {
    let mut results = Vec::new();
    for first in db.flights.values().filter(|f| f.origin == origin) {
        for second in db.flights.values() {
            if second.destination != destination || first.destination != second.origin {
                continue;
            }
            // Computed before the time check, as in the original (so a bad date raises here).
            let date2 = second_leg_date(first, date)?;
            if first.scheduled_arrival_time_est > second.scheduled_departure_time_est {
                continue;
            }
            if let (Some(d1), Some(d2)) = (first.dates.get(date), second.dates.get(&date2))
                && d1.is_available()
                && d2.is_available()
            {
                results.push((first, d1, second, d2, date2));
            }
        }
    }
    Ok(results)
}

fn search_onestop_flight(db: &Db, map: &Map<String, Value>) -> Result<String, String> {
    let args = check_args(
        "search_onestop_flight",
        map,
        &["origin", "destination", "date"],
    )?;
    let (origin, destination, date) = (
        &args.str("origin")?,
        &args.str("destination")?,
        &args.str("date")?,
    );
    let found = onestop_flights(db, origin, destination, date)?;
    let mut results: Vec<[FlightView; 2]> = Vec::with_capacity(found.len());
    for (f1, d1, f2, _, date2) in &found {
        // Sic (v1): the second leg's status is checked on `date2`, but the fields shown (status,
        // seats, prices) are its entry on the first leg's `date` (`result2.update(
        // flight2["dates"][date])`); a missing entry raises `KeyError`, answered `Error: '<date>'`.
        // They differ only when the first leg lands the next day. tau2 shows `date2`'s entry.
        let shown = f2
            .dates
            .get(date.as_str())
            .ok_or_else(|| py_str_repr(date))?;
        results.push([view(f1, d1, Some(date)), view(f2, shown, Some(date2))]);
    }
    Ok(dumps(&results))
}

fn get_flight_status(db: &Db, map: &Map<String, Value>) -> Result<String, String> {
    let args = check_args("get_flight_status", map, &["flight_number", "date"])?;
    let (flight_number, date) = (&args.str("flight_number")?, &args.str("date")?);
    let flight = db
        .flights
        .get(flight_number)
        .ok_or_else(|| format!("flight {flight_number} not found"))?;
    let status = flight
        .dates
        .get(date)
        .ok_or_else(|| format!("flight {flight_number} not found on date {date}"))?;
    Ok(status.status.clone())
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Looks up a flight segment for booking or changing: it must exist on that date, be `available` and
/// have `passengers` seats left in `cabin`. Returns the segment priced at the cabin's fare.
fn price_segment(
    db: &Db,
    flight_number: &str,
    date: &str,
    cabin: &str,
    passengers: usize,
) -> Result<ReservationFlight, String> {
    let flight = db
        .flights
        .get(flight_number)
        .ok_or_else(|| format!("flight {flight_number} not found"))?;
    let status = flight
        .dates
        .get(date)
        .ok_or_else(|| format!("flight {flight_number} not found on date {date}"))?;
    let Some((seats, prices)) = status.offer() else {
        return Err(format!(
            "flight {flight_number} not available on date {date}"
        ));
    };
    let seats = seats.get(cabin).expect("cabin was validated");
    if seats < passengers as i64 {
        return Err(format!("not enough seats on flight {flight_number}"));
    }
    Ok(ReservationFlight {
        origin: flight.origin.clone(),
        destination: flight.destination.clone(),
        flight_number: flight_number.to_string(),
        date: date.to_string(),
        price: prices.get(cabin).expect("cabin was validated"),
        order: SegmentOrder::Written,
    })
}

/// The price of a booking: fares × passengers, insurance per passenger, and the non-free bags.
pub fn booking_total(
    segments: &[ReservationFlight],
    passengers: usize,
    insurance: bool,
    nonfree_baggages: i64,
) -> Num {
    let n = passengers as i64;
    let mut total = Num::Int(0);
    for segment in segments {
        total = total + segment.price.times(n);
    }
    if insurance {
        total = total + Num::from(INSURANCE_PER_PASSENGER).times(n);
    }
    total + Num::from(BAG_FEE).times(nonfree_baggages)
}

fn book_reservation<S: Store + ?Sized>(
    db: &mut S,
    map: &Map<String, Value>,
) -> Result<String, String> {
    let args = check_args(
        "book_reservation",
        map,
        &[
            "user_id",
            "origin",
            "destination",
            "flight_type",
            "cabin",
            "flights",
            "passengers",
            "payment_methods",
            "total_baggages",
            "nonfree_baggages",
            "insurance",
        ],
    )?;
    let user_id = &args.str("user_id")?;
    let origin = &args.str("origin")?;
    let destination = &args.str("destination")?;
    let flight_type = &args.choice("flight_type", &FLIGHT_TYPES)?;
    let cabin = &args.choice("cabin", &CABINS)?;
    let flights = flight_list(&args, "flights")?;
    let passengers = passenger_list(&args, "passengers")?;
    let payments = payment_list(&args, "payment_methods")?;
    let total_baggages = args.int("total_baggages")?;
    let nonfree_baggages = args.int("nonfree_baggages")?;
    let insurance = &args.choice("insurance", &["yes", "no"])?;

    let user = db.user(user_id).ok_or("user not found")?;
    let reservation_id = RESERVATION_IDS
        .iter()
        .find(|id| db.reservation(id).is_none())
        .ok_or("too many reservations")?;
    let segments = flights
        .iter()
        .map(|(number, date)| price_segment(db.flights_db(), number, date, cabin, passengers.len()))
        .collect::<Result<Vec<_>, _>>()?;
    let total = booking_total(
        &segments,
        passengers.len(),
        insurance == "yes",
        nonfree_baggages,
    );
    for (i, payment) in payments.iter().enumerate() {
        let id = &payment.payment_id;
        let Some(method) = user.payment_methods.get(id) else {
            return Err(format!("payment method {id} not found"));
        };
        if payments[..i].iter().any(|p| &p.payment_id == id) {
            return Err(format!("payment method {id} is listed more than once"));
        }
        if let Some(balance) = method.amount
            && method.source != "credit_card"
            && balance.lt(payment.amount)
        {
            return Err(format!("not enough balance in payment method {id}"));
        }
    }
    let paid: Num = payments.iter().map(|p| p.amount).sum();
    if !py_eq(paid, total) {
        return Err(format!(
            "payment amount does not add up, total price is {total}, but paid {paid}"
        ));
    }

    let user = db.user_mut(user_id).expect("checked above");
    for payment in &payments {
        let source = user.payment_methods[&payment.payment_id].source.clone();
        match source.as_str() {
            "gift_card" => {
                let method = user
                    .payment_methods
                    .get_mut(&payment.payment_id)
                    .expect("checked above");
                let balance = method.amount.unwrap_or_default();
                method.amount = Some(balance - payment.amount);
            }
            "certificate" => {
                user.payment_methods.remove(&payment.payment_id);
            }
            _ => {}
        }
    }
    user.reservations.push(reservation_id.to_string());
    let reservation = Reservation {
        reservation_id: reservation_id.to_string(),
        user_id: user_id.to_string(),
        origin: origin.to_string(),
        destination: destination.to_string(),
        flight_type: flight_type.to_string(),
        cabin: cabin.to_string(),
        flights: segments,
        passengers,
        payment_history: payments,
        created_at: crate::db::NOW.to_string(),
        total_baggages,
        nonfree_baggages,
        insurance: insurance.to_string(),
        status: None,
    };
    let text = dumps(&reservation);
    db.insert_reservation(reservation);
    Ok(text)
}

fn cancel_reservation<S: Store + ?Sized>(
    db: &mut S,
    map: &Map<String, Value>,
) -> Result<String, String> {
    let args = check_args("cancel_reservation", map, &["reservation_id"])?;
    let reservation_id = &args.str("reservation_id")?;
    let reservation = db
        .reservation_mut(reservation_id)
        .ok_or("reservation not found")?;
    let refunds: Vec<Payment> = reservation
        .payment_history
        .iter()
        .map(|p| Payment {
            payment_id: p.payment_id.clone(),
            amount: -p.amount,
        })
        .collect();
    reservation.payment_history.extend(refunds);
    reservation.status = Some("cancelled".to_string());
    Ok(dumps(reservation))
}

/// Checks that `payment_id` of the reservation's owner can pay `amount` for a change (no certificates;
/// a gift card needs the balance), and applies it: debits a gift card, records a non-zero payment.
/// Every check comes before the first write.
fn charge_for_update<S: Store + ?Sized>(
    db: &mut S,
    reservation_id: &str,
    payment_id: &str,
    amount: Num,
    apply: impl FnOnce(&mut Reservation),
) -> Result<String, String> {
    let user_id = db
        .reservation(reservation_id)
        .expect("checked by the caller")
        .user_id
        .clone();
    let user = db.user(&user_id).ok_or("user not found")?;
    let method = user
        .payment_methods
        .get(payment_id)
        .ok_or("payment method not found")?;
    if method.source == "certificate" {
        return Err("certificate cannot be used to update reservation".to_string());
    }
    if method.source == "gift_card" {
        let balance = method.amount.unwrap_or_default();
        if balance.lt(amount) {
            return Err("gift card balance is not enough".to_string());
        }
        let method = db
            .user_mut(&user_id)
            .and_then(|u| u.payment_methods.get_mut(payment_id))
            .expect("checked above");
        method.amount = Some(balance - amount);
    }
    let reservation = db
        .reservation_mut(reservation_id)
        .expect("checked by the caller");
    apply(reservation);
    if !py_eq(amount, Num::Int(0)) {
        reservation.payment_history.push(Payment {
            payment_id: payment_id.to_string(),
            amount,
        });
    }
    Ok(dumps(reservation))
}

/// The charge for changing a reservation's non-free bags to `nonfree_baggages` (refunds nothing).
pub fn baggage_charge(reservation: &Reservation, nonfree_baggages: i64) -> Num {
    let added = (i128::from(nonfree_baggages) - i128::from(reservation.nonfree_baggages)).max(0);
    Num::from_i128(i128::from(BAG_FEE) * added)
}

fn update_reservation_baggages<S: Store + ?Sized>(
    db: &mut S,
    map: &Map<String, Value>,
) -> Result<String, String> {
    let args = check_args(
        "update_reservation_baggages",
        map,
        &[
            "reservation_id",
            "total_baggages",
            "nonfree_baggages",
            "payment_id",
        ],
    )?;
    let reservation_id = &args.str("reservation_id")?;
    let total_baggages = args.int("total_baggages")?;
    let nonfree_baggages = args.int("nonfree_baggages")?;
    let payment_id = &args.str("payment_id")?;
    let reservation = db
        .reservation(reservation_id)
        .ok_or("reservation not found")?;
    let amount = baggage_charge(reservation, nonfree_baggages);
    charge_for_update(db, reservation_id, payment_id, amount, |r| {
        r.total_baggages = total_baggages;
        r.nonfree_baggages = nonfree_baggages;
    })
}

/// The new segments of a flight change and the amount to charge (negative: refund). Segments kept
/// from the reservation (same flight, date, and `cabin` equal to the reservation's stored cabin) keep
/// their price; others are priced now in `cabin`.
pub fn price_flight_change(
    db: &Db,
    reservation: &Reservation,
    cabin: &str,
    flights: &[(String, String)],
) -> Result<(Vec<ReservationFlight>, Num), String> {
    let n = reservation.passengers.len();
    let mut total = Num::Int(0);
    let mut segments = Vec::with_capacity(flights.len());
    for (number, date) in flights {
        let kept = reservation
            .flights
            .iter()
            .find(|f| &f.flight_number == number && &f.date == date && cabin == reservation.cabin);
        let segment = match kept {
            // The original rebuilds kept segments too (argument keys, then price, origin,
            // destination), so they print in the written order.
            Some(segment) => ReservationFlight {
                order: SegmentOrder::Written,
                ..segment.clone()
            },
            None => price_segment(db, number, date, cabin, n)?,
        };
        total = total + segment.price.times(n as i64);
        segments.push(segment);
    }
    let paid: Num = reservation.flights.iter().map(|f| f.price).sum();
    Ok((segments, total - paid.times(n as i64)))
}

fn update_reservation_flights<S: Store + ?Sized>(
    db: &mut S,
    map: &Map<String, Value>,
) -> Result<String, String> {
    let args = check_args(
        "update_reservation_flights",
        map,
        &["reservation_id", "cabin", "flights", "payment_id"],
    )?;
    let reservation_id = &args.str("reservation_id")?;
    let cabin = &args.choice("cabin", &CABINS)?;
    let flights = flight_list(&args, "flights")?;
    let payment_id = &args.str("payment_id")?;
    let reservation = db
        .reservation(reservation_id)
        .ok_or("reservation not found")?;
    let (segments, amount) = price_flight_change(db.flights_db(), reservation, cabin, &flights)?;
    // Sic (v1): `reservation.cabin` keeps its old value.
    charge_for_update(db, reservation_id, payment_id, amount, |r| {
        r.flights = segments;
    })
}

fn update_reservation_passengers<S: Store + ?Sized>(
    db: &mut S,
    map: &Map<String, Value>,
) -> Result<String, String> {
    let args = check_args(
        "update_reservation_passengers",
        map,
        &["reservation_id", "passengers"],
    )?;
    let reservation_id = &args.str("reservation_id")?;
    let passengers = passenger_list(&args, "passengers")?;
    let reservation = db
        .reservation(reservation_id)
        .ok_or("reservation not found")?;
    if passengers.len() != reservation.passengers.len() {
        return Err("number of passengers does not match".to_string());
    }
    let reservation = db.reservation_mut(reservation_id).expect("checked above");
    reservation.passengers = passengers;
    Ok(dumps(reservation))
}

fn send_certificate<S: Store + ?Sized>(
    db: &mut S,
    map: &Map<String, Value>,
) -> Result<String, String> {
    let args = check_args("send_certificate", map, &["user_id", "amount"])?;
    let user_id = &args.str("user_id")?;
    let amount = args.num("amount")?;
    let user = db.user(user_id).ok_or("user not found")?;
    let id = CERTIFICATE_IDS
        .iter()
        .find(|id| !user.payment_methods.contains_key(id))
        .ok_or("too many certificates")?;
    let user = db.user_mut(user_id).expect("checked above");
    user.payment_methods.insert(
        id.to_string(),
        crate::db::PaymentMethod {
            source: "certificate".to_string(),
            brand: None,
            last_four: None,
            amount: Some(amount),
            id: id.to_string(),
        },
    );
    Ok(format!(
        "Certificate {id} added to user {user_id} with amount {amount}."
    ))
}

// ---------------------------------------------------------------------------------------------
// Schemas

fn schema(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        }
    })
}

fn string_param(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn flights_param(description: &str) -> Value {
    json!({
        "type": "array",
        "description": description,
        "items": {
            "type": "object",
            "properties": {
                "flight_number": string_param("Flight number, such as 'HAT001'."),
                "date": string_param("Flight date as 'YYYY-MM-DD', such as '2024-05-01'."),
            },
            "required": ["flight_number", "date"],
        },
    })
}

fn passengers_param() -> Value {
    json!({
        "type": "array",
        "description": "One object per passenger.",
        "items": {
            "type": "object",
            "properties": {
                "first_name": string_param("First name, such as 'Noah'."),
                "last_name": string_param("Last name, such as 'Brown'."),
                "dob": string_param("Date of birth as 'YYYY-MM-DD', such as '1990-01-01'."),
            },
            "required": ["first_name", "last_name", "dob"],
        },
    })
}

fn cabin_param() -> Value {
    json!({"type": "string", "enum": CABINS})
}

const PAYMENT_ID: &str =
    "A payment id from the user's profile, such as 'credit_card_7815826' or 'gift_card_7815826'.";

/// The OpenAI function schemas of the domain tools, in [`DOMAIN_TOOLS`] order.
pub fn schemas() -> Vec<Value> {
    let search = |name: &str, description: &str| {
        schema(
            name,
            description,
            json!({
                "origin": string_param("Origin airport IATA code, such as 'JFK'."),
                "destination": string_param("Destination airport IATA code, such as 'LAX'."),
                "date": string_param("Departure date as 'YYYY-MM-DD', such as '2024-05-01'."),
            }),
            &["origin", "destination", "date"],
        )
    };
    vec![
        schema(
            "book_reservation",
            "Book a reservation.",
            json!({
                "user_id": string_param("The id of the user booking, such as 'sara_doe_496'."),
                "origin": string_param("IATA code of the trip's origin, such as 'SFO'."),
                "destination": string_param("IATA code of the trip's destination, such as 'JFK'."),
                "flight_type": {"type": "string", "enum": FLIGHT_TYPES},
                "cabin": cabin_param(),
                "flights": flights_param("Every flight segment of the reservation."),
                "passengers": passengers_param(),
                "payment_methods": {
                    "type": "array",
                    "description": "The payments making up the total price.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "payment_id": string_param(PAYMENT_ID),
                            "amount": {"type": "number", "description": "Amount paid with this method."},
                        },
                        "required": ["payment_id", "amount"],
                    },
                },
                "total_baggages": {"type": "integer", "description": "Total number of checked bags."},
                "nonfree_baggages": {"type": "integer", "description": "Number of checked bags that are paid for."},
                "insurance": {"type": "string", "enum": ["yes", "no"]},
            }),
            &[
                "user_id",
                "origin",
                "destination",
                "flight_type",
                "cabin",
                "flights",
                "passengers",
                "payment_methods",
                "total_baggages",
                "nonfree_baggages",
                "insurance",
            ],
        ),
        schema(
            "cancel_reservation",
            "Cancel a whole reservation.",
            json!({"reservation_id": string_param("The reservation id, such as 'ZFA04Y'.")}),
            &["reservation_id"],
        ),
        schema(
            "get_reservation_details",
            "Get the details of a reservation.",
            json!({"reservation_id": string_param("The reservation id, such as '8JX2WO'.")}),
            &["reservation_id"],
        ),
        schema(
            "get_user_details",
            "Get the details of a user, including payment methods and reservations.",
            json!({"user_id": string_param("The user id, such as 'sara_doe_496'.")}),
            &["user_id"],
        ),
        schema(
            "list_all_airports",
            "List all airports and their cities.",
            json!({}),
            &[],
        ),
        search(
            "search_direct_flight",
            "Search direct flights between two airports on a date.",
        ),
        search(
            "search_onestop_flight",
            "Search one-stop connections between two airports, departing on a date.",
        ),
        schema(
            "send_certificate",
            "Send a travel certificate (compensation) to a user. Be careful!",
            json!({
                "user_id": string_param("The user id, such as 'sara_doe_496'."),
                "amount": {"type": "number", "description": "Certificate amount in dollars."},
            }),
            &["user_id", "amount"],
        ),
        schema(
            "update_reservation_baggages",
            "Update the checked bags of a reservation.",
            json!({
                "reservation_id": string_param("The reservation id, such as 'ZFA04Y'."),
                "total_baggages": {"type": "integer", "description": "New total number of checked bags."},
                "nonfree_baggages": {"type": "integer", "description": "New number of paid checked bags."},
                "payment_id": string_param(PAYMENT_ID),
            }),
            &[
                "reservation_id",
                "total_baggages",
                "nonfree_baggages",
                "payment_id",
            ],
        ),
        schema(
            "update_reservation_flights",
            "Update the flights (and cabin) of a reservation.",
            json!({
                "reservation_id": string_param("The reservation id, such as 'ZFA04Y'."),
                "cabin": cabin_param(),
                "flights": flights_param(
                    "Every flight segment of the whole new reservation, unchanged segments included."
                ),
                "payment_id": string_param(PAYMENT_ID),
            }),
            &["reservation_id", "cabin", "flights", "payment_id"],
        ),
        schema(
            "update_reservation_passengers",
            "Update the passengers of a reservation (the number of passengers cannot change).",
            json!({
                "reservation_id": string_param("The reservation id, such as 'ZFA04Y'."),
                "passengers": passengers_param(),
            }),
            &["reservation_id", "passengers"],
        ),
        schema(
            "get_flight_status",
            "Get the status of a flight on a date.",
            json!({
                "flight_number": string_param("Flight number, such as 'HAT001'."),
                "date": string_param("Flight date as 'YYYY-MM-DD'."),
            }),
            &["flight_number", "date"],
        ),
    ]
}
