//! Generated airline tasks: a customer ticket, the gold tool calls that handle it under the policy,
//! and the amounts the agent must tell the customer.
//!
//! A task is drawn against the current DB from a seed. Kinds (weights in [`KINDS`]): booking a one-way
//! or round trip (direct or one-stop; bags, insurance, split payments with gift cards and
//! certificates), cancelling an eligible reservation, moving a leg to another day on a direct flight
//! or a one-stop connection, changing the cabin, adding bags, changing a passenger, compensating an
//! airline cancellation ($100 per passenger) or a delay that made the customer change or cancel
//! ($50 per passenger, after the change), and the kinds where the policy says no: cancellation not
//! allowed, basic economy flight change, no compensation for a regular member without insurance
//! outside business (for a cancellation or a delay), and no compensation for a delay the customer
//! sits out. Their gold has no certificate and, except a change or cancellation the policy allows,
//! reads only. Every draw is checked by replaying its gold on a copy of the DB: a task whose write
//! fails is redrawn.

use sandgym_sdk::{Rng, Value, json};
use tau_common::task::GoldAction;

use crate::db::{CABINS, Db, Num, Passenger, PaymentMethod, Reservation, ReservationFlight, User};
use crate::overlay::Overlay;
use crate::tools::{
    self, baggage_charge, booking_total, direct_flights, onestop_flights, price_flight_change,
};
use crate::world::{TODAY_DAY, date, free_bags};

/// A generated task before it becomes a [`tau_common::task::TauTask`].
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub kind: &'static str,
    pub user_id: String,
    pub instruction: String,
    pub actions: Vec<GoldAction>,
    pub outputs: Vec<String>,
}

/// Task kinds and their relative weights.
pub const KINDS: [(&str, u32); 14] = [
    ("book", 6),
    ("cancel", 3),
    ("change_flight", 3),
    ("change_to_onestop", 2),
    ("change_cabin", 2),
    ("add_bags", 2),
    ("change_passenger", 2),
    ("compensate", 2),
    ("compensate_delay", 2),
    ("refuse_cancel", 1),
    ("refuse_basic_economy_change", 1),
    ("refuse_compensation", 1),
    ("refuse_delay_compensation", 1),
    ("refuse_delay_compensation_without_change", 1),
];

const MAX_ATTEMPTS: usize = 500;

/// Draws a task for `seed` against `db`; `Err` when the DB offers nothing to build one from.
pub fn generate(db: &Db, seed: u64) -> Result<Draft, String> {
    generate_with(db, seed, &mut Overlay::default())
}

/// [`generate`], checking each draw's gold actions on `db` with `scratch` as the overlay (emptied
/// before each replay) instead of cloning `db` per draw.
pub fn generate_with(db: &Db, seed: u64, scratch: &mut Overlay) -> Result<Draft, String> {
    let mut rng = Rng::new(seed ^ 0x7a5c_0000_a1e1_0001);
    let users: Vec<&String> = db.users.keys().collect();
    if users.is_empty() {
        return Err("cannot generate a task: the DB has no users".to_string());
    }
    let total: u32 = KINDS.iter().map(|(_, w)| w).sum();
    for _ in 0..MAX_ATTEMPTS {
        let mut roll = rng.below(u64::from(total)) as u32;
        let kind = KINDS
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .expect("roll < total")
            .0;
        let draft = match kind {
            "book" => book(db, &mut rng),
            "cancel" => cancel(db, &mut rng, true),
            "refuse_cancel" => cancel(db, &mut rng, false),
            "change_flight" => change_flight(db, &mut rng, false),
            "change_to_onestop" => change_flight(db, &mut rng, true),
            "refuse_basic_economy_change" => refuse_basic_economy_change(db, &mut rng),
            "change_cabin" => change_cabin(db, &mut rng),
            "add_bags" => add_bags(db, &mut rng),
            "change_passenger" => change_passenger(db, &mut rng),
            "compensate" => compensate(db, &mut rng, true),
            "refuse_compensation" => compensate(db, &mut rng, false),
            "compensate_delay" => compensate_delay(db, &mut rng, true),
            "refuse_delay_compensation" => compensate_delay(db, &mut rng, false),
            "refuse_delay_compensation_without_change" => {
                refuse_delay_compensation_without_change(db, &mut rng)
            }
            _ => unreachable!("a kind of KINDS"),
        };
        if let Some(draft) = draft
            && gold_succeeds_on(scratch, db, &draft.actions)
        {
            return Ok(draft);
        }
    }
    Err(format!(
        "cannot generate a task: no feasible task found in {MAX_ATTEMPTS} draws (the DB has {} \
         users, {} flights, {} reservations)",
        db.users.len(),
        db.flights.len(),
        db.reservations.len()
    ))
}

/// Whether every gold action succeeds when replayed in order on `db` with `scratch`, emptied first, as
/// the overlay. Same answer as [`gold_succeeds`].
pub fn gold_succeeds_on(scratch: &mut Overlay, db: &Db, actions: &[GoldAction]) -> bool {
    scratch.clear();
    actions.iter().all(|a| {
        let Some(args) = a.arguments.as_object() else {
            return false;
        };
        matches!(scratch.call(db, &a.name, args), Some(Ok(_)))
    })
}

/// Whether every gold action succeeds when replayed in order on a copy of `db`.
pub fn gold_succeeds(db: &Db, actions: &[GoldAction]) -> bool {
    let mut copy = db.clone();
    actions.iter().all(|a| {
        let Some(args) = a.arguments.as_object() else {
            return false;
        };
        matches!(tools::call(&mut copy, &a.name, args), Some(Ok(_)))
    })
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

fn act(name: &str, arguments: Value) -> GoldAction {
    GoldAction::new(name, arguments)
}

fn get_user(user_id: &str) -> GoldAction {
    act("get_user_details", json!({"user_id": user_id}))
}

fn get_reservation(reservation_id: &str) -> GoldAction {
    act(
        "get_reservation_details",
        json!({"reservation_id": reservation_id}),
    )
}

fn day_of(date: &str) -> Option<u32> {
    date.strip_prefix("2024-05-")?.parse().ok()
}

fn num_text(n: Num) -> String {
    n.py_str()
}

fn full_name(p: &Passenger) -> String {
    format!("{} {}", p.first_name, p.last_name)
}

fn self_passenger(user: &User) -> Passenger {
    Passenger {
        first_name: user.name.first_name.clone(),
        last_name: user.name.last_name.clone(),
        dob: user.dob.clone(),
    }
}

fn city(code: &str) -> String {
    let city = tools::city_of(code);
    if city == code {
        code.to_string()
    } else {
        format!("{city} ({code})")
    }
}

/// How a customer names a payment method in a ticket.
fn describe_method(user: &User, method: &PaymentMethod) -> String {
    match method.source.as_str() {
        "credit_card" => {
            let brand = match method.brand.as_deref() {
                Some("visa") => "Visa",
                Some("mastercard") => "Mastercard",
                Some(other) => other,
                None => "credit",
            };
            let last_four = method.last_four.as_deref().unwrap_or("");
            let same = user
                .payment_methods
                .values()
                .filter(|m| m.brand == method.brand && m.last_four == method.last_four)
                .count();
            if same == 1 && !last_four.is_empty() {
                format!("my {brand} credit card ending in {last_four}")
            } else {
                format!("my credit card {}", method.id)
            }
        }
        "gift_card" => format!("my gift card {}", method.id),
        _ => format!("my travel certificate {}", method.id),
    }
}

fn methods_of<'a>(user: &'a User, source: &str) -> Vec<&'a PaymentMethod> {
    user.payment_methods
        .values()
        .filter(|m| m.source == source)
        .collect()
}

/// Whether every flight of the reservation is still ahead (after today) and the reservation is live.
fn upcoming(r: &Reservation) -> bool {
    !r.is_cancelled()
        && !r.flights.is_empty()
        && r.flights
            .iter()
            .all(|f| day_of(&f.date).is_some_and(|d| d > TODAY_DAY))
}

fn pick_reservation<'a>(
    db: &'a Db,
    rng: &mut Rng,
    filter: impl Fn(&User, &Reservation) -> bool,
) -> Option<(&'a User, &'a Reservation)> {
    let candidates: Vec<(&User, &Reservation)> = db
        .reservations
        .values()
        .filter_map(|r| db.users.get(&r.user_id).map(|u| (u, r)))
        .filter(|(u, r)| filter(u, r))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    Some(*rng.choose(&candidates))
}

/// A payment method for a change costing `amount` (negative: refund): a credit card, or a gift card
/// whose balance covers a charge. `None` if the user has neither.
fn update_payment<'a>(user: &'a User, rng: &mut Rng, amount: Num) -> Option<&'a PaymentMethod> {
    let mut options: Vec<&PaymentMethod> = methods_of(user, "credit_card");
    options.extend(
        methods_of(user, "gift_card")
            .into_iter()
            .filter(|m| !m.amount.unwrap_or_default().lt(amount)),
    );
    if options.is_empty() {
        None
    } else {
        Some(*rng.choose(&options))
    }
}

fn opening(user: &User, user_id: &str, rng: &mut Rng) -> String {
    let greeting = *rng.choose(&["Hello", "Hi", "Good afternoon", "Hey there"]);
    format!(
        "{greeting}, this is {} {} (user id: {user_id}).",
        user.name.first_name, user.name.last_name
    )
}

// ---------------------------------------------------------------------------------------------
// Booking

/// One way of flying between two airports on a day: one or two segments `(number, date, price)`.
#[derive(Debug, Clone)]
struct Option_ {
    segments: Vec<(String, String)>,
    departure: String,
    price: Num,
}

/// Flight options from `origin` to `destination` on `day` with `seats` free seats in `cabin`.
fn options(
    db: &Db,
    origin: &str,
    destination: &str,
    day: u32,
    cabin: &str,
    seats: usize,
    onestop: bool,
) -> Vec<Option_> {
    let day = date(day);
    let has_seats = |d: &crate::db::FlightDate| {
        d.offer()
            .and_then(|(s, _)| s.get(cabin))
            .is_some_and(|s| s >= seats as i64)
    };
    let price = |d: &crate::db::FlightDate| {
        d.offer()
            .and_then(|(_, p)| p.get(cabin))
            .unwrap_or_default()
    };
    if onestop {
        // Generated days are well-formed dates, so the search cannot fail.
        onestop_flights(db, origin, destination, &day)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, d1, _, d2, _)| has_seats(d1) && has_seats(d2))
            .map(|(f1, d1, f2, d2, day2)| Option_ {
                segments: vec![
                    (f1.flight_number.clone(), day.clone()),
                    (f2.flight_number.clone(), day2),
                ],
                departure: f1.scheduled_departure_time_est.clone(),
                price: price(d1) + price(d2),
            })
            .collect()
    } else {
        direct_flights(db, origin, destination, &day)
            .into_iter()
            .filter(|(_, d)| has_seats(d))
            .map(|(f, d)| Option_ {
                segments: vec![(f.flight_number.clone(), day.clone())],
                departure: f.scheduled_departure_time_est.clone(),
                price: price(d),
            })
            .collect()
    }
}

/// Picks one option and says how the customer asked for it: the cheapest (when unique), the one
/// leaving at a given time (when unique), or by flight number.
fn choose_option(rng: &mut Rng, opts: &[Option_], kind: &str) -> Option<(Option_, String)> {
    if opts.is_empty() {
        return None;
    }
    let cheapest = opts
        .iter()
        .map(|o| o.price.as_f64())
        .fold(f64::INFINITY, f64::min);
    let cheapest_count = opts.iter().filter(|o| o.price.as_f64() == cheapest).count();
    let style = rng.below(3);
    if style == 0 && cheapest_count == 1 {
        let o = opts
            .iter()
            .find(|o| o.price.as_f64() == cheapest)
            .expect("one");
        return Some((o.clone(), format!("the cheapest {kind}")));
    }
    let o = rng.choose(opts).clone();
    let same_time = opts.iter().filter(|x| x.departure == o.departure).count();
    if style == 1 && same_time == 1 {
        let time = &o.departure[..5];
        return Some((o.clone(), format!("the {kind} leaving at {time}")));
    }
    let numbers: Vec<&str> = o.segments.iter().map(|(n, _)| n.as_str()).collect();
    let text = if numbers.len() == 1 {
        format!("flight {}", numbers[0])
    } else {
        format!("flights {} then {}", numbers[0], numbers[1])
    };
    Some((o, text))
}

fn cabin_words(cabin: &str) -> &'static str {
    match cabin {
        "basic_economy" => "basic economy",
        "economy" => "economy",
        _ => "business",
    }
}

fn book(db: &Db, rng: &mut Rng) -> Option<Draft> {
    let user_ids: Vec<&String> = db.users.keys().collect();
    let user_id = *rng.choose(&user_ids);
    let user = &db.users[user_id];
    let round_trip = rng.bernoulli(0.4);
    let day = rng.range(i64::from(TODAY_DAY) + 1, if round_trip { 27 } else { 30 }) as u32;
    let onestop = rng.bernoulli(0.3);
    let cabin = *rng.choose(&CABINS);

    // Passengers: usually the customer, plus saved passengers or someone new.
    let mut passengers: Vec<(Passenger, &str)> = Vec::new();
    if rng.bernoulli(0.8) {
        passengers.push((self_passenger(user), "self"));
    }
    for p in &user.saved_passengers {
        if rng.bernoulli(0.4) {
            passengers.push((p.clone(), "saved"));
        }
    }
    if passengers.is_empty() || rng.bernoulli(0.15) {
        let p = Passenger {
            first_name: rng
                .choose(&["Noor", "Pablo", "Ingrid", "Tariq", "Lucia", "Otto"])
                .to_string(),
            last_name: rng
                .choose(&["Haddad", "Lindgren", "Moreno", "Petrov", "Sung"])
                .to_string(),
            dob: format!(
                "{}-{:02}-{:02}",
                rng.range(1950, 2012),
                rng.range(1, 12),
                rng.range(1, 28)
            ),
        };
        if !passengers.iter().any(|(q, _)| q == &p) {
            passengers.push((p, "new"));
        }
    }
    passengers.truncate(5);
    let n = passengers.len();

    // Route: from a flight leaving that day (its destination, or one stop further).
    let day_text = date(day);
    let departing: Vec<&crate::db::Flight> = db
        .flights
        .values()
        .filter(|f| f.dates.get(&day_text).is_some_and(|d| d.is_available()))
        .collect();
    if departing.is_empty() {
        return None;
    }
    let first = *rng.choose(&departing);
    let origin = first.origin.clone();
    let destination = if onestop {
        let next: Vec<&String> = db
            .flights
            .values()
            .filter(|f| f.origin == first.destination && f.destination != origin)
            .map(|f| &f.destination)
            .collect();
        if next.is_empty() {
            return None;
        }
        (*rng.choose(&next)).clone()
    } else {
        first.destination.clone()
    };
    let kind = if onestop {
        format!("{} one-stop connection", cabin_words(cabin))
    } else {
        format!("{} direct flight", cabin_words(cabin))
    };
    let out_opts = options(db, &origin, &destination, day, cabin, n, onestop);
    let (out, out_text) = choose_option(rng, &out_opts, &kind)?;
    let mut segments = out.segments.clone();
    let mut searches = vec![(origin.clone(), destination.clone(), day_text.clone())];
    let mut back_text = String::new();
    let mut back_day = 0;
    if round_trip {
        back_day = day + rng.range(1, 3) as u32;
        let back_opts = options(db, &destination, &origin, back_day, cabin, n, onestop);
        let (back, text) = choose_option(rng, &back_opts, &kind)?;
        segments.extend(back.segments);
        searches.push((destination.clone(), origin.clone(), date(back_day)));
        back_text = text;
    }

    // Bags and insurance.
    let allowance = free_bags(&user.membership, cabin) * n as i64;
    let total_baggages = rng.range(0, (n as i64 * 2).min(6));
    let nonfree_baggages = (total_baggages - allowance).max(0);
    let insurance = rng.bernoulli(0.4);
    let priced: Vec<crate::db::ReservationFlight> = segments
        .iter()
        .map(|(number, d)| {
            let p = db.flights[number].dates[d]
                .offer()
                .and_then(|(_, p)| p.get(cabin))
                .unwrap_or_default();
            crate::db::ReservationFlight {
                origin: String::new(),
                destination: String::new(),
                flight_number: number.clone(),
                date: d.clone(),
                price: p,
                order: crate::db::SegmentOrder::File,
            }
        })
        .collect();
    let total = booking_total(&priced, n, insurance, nonfree_baggages);
    let total_int = match total {
        Num::Int(t) => t,
        Num::Float(_) => return None,
    };

    // Payment plan.
    let cards = methods_of(user, "credit_card");
    let gifts: Vec<&PaymentMethod> = methods_of(user, "gift_card")
        .into_iter()
        .filter(|m| matches!(m.amount, Some(Num::Int(b)) if b > 0))
        .collect();
    let certs: Vec<&PaymentMethod> = methods_of(user, "certificate")
        .into_iter()
        .filter(|m| matches!(m.amount, Some(Num::Int(_))))
        .collect();
    let balance = |m: &PaymentMethod| match m.amount {
        Some(Num::Int(b)) => b,
        _ => 0,
    };
    let mut plans: Vec<u8> = Vec::new();
    if !cards.is_empty() {
        plans.push(0);
    }
    if !gifts.is_empty() && (!cards.is_empty() || gifts.iter().any(|g| balance(g) >= total_int)) {
        plans.push(1);
    }
    if !certs.is_empty() && (!cards.is_empty() || certs.iter().any(|c| balance(c) >= total_int)) {
        plans.push(2);
    }
    if plans.is_empty() {
        return None;
    }
    let mut payments: Vec<(String, i64)> = Vec::new();
    let pay_text = match *rng.choose(&plans) {
        0 => {
            let card = *rng.choose(&cards);
            payments.push((card.id.clone(), total_int));
            format!(
                "Please charge everything to {}.",
                describe_method(user, card)
            )
        }
        plan => {
            let pool = if plan == 1 { &gifts } else { &certs };
            let usable: Vec<&&PaymentMethod> = pool
                .iter()
                .filter(|m| !cards.is_empty() || balance(m) >= total_int)
                .collect();
            let first_method = **rng.choose(&usable);
            let used = balance(first_method).min(total_int);
            payments.push((first_method.id.clone(), used));
            let first_text = describe_method(user, first_method);
            if used < total_int {
                let card = *rng.choose(&cards);
                payments.push((card.id.clone(), total_int - used));
                format!(
                    "Please use {first_text} first, for as much as it covers, and put the rest on {}.",
                    describe_method(user, card)
                )
            } else {
                format!("Please pay the whole amount with {first_text}.")
            }
        }
    };

    // The ticket.
    let who: Vec<String> = passengers
        .iter()
        .map(|(p, how)| match *how {
            "self" => "myself".to_string(),
            "saved" => format!("{} (saved in my profile)", full_name(p)),
            _ => format!("{}, born {}", full_name(p), p.dob),
        })
        .collect();
    let mut ticket = opening(user, user_id, rng);
    if round_trip {
        ticket.push_str(&format!(
            " I'd like to book a round trip from {} to {}, leaving on {day_text} and coming back \
             on {}. Outbound, please book {out_text}; for the return, {back_text}.",
            city(&origin),
            city(&destination),
            date(back_day)
        ));
    } else {
        ticket.push_str(&format!(
            " I'd like to book a one-way trip from {} to {} on {day_text}: please book {out_text}.",
            city(&origin),
            city(&destination)
        ));
    }
    ticket.push_str(&format!(" Passengers: {}.", who.join("; ")));
    ticket.push_str(&match total_baggages {
        0 => " We won't check any bags.".to_string(),
        1 => " We'll check 1 bag in total.".to_string(),
        b => format!(" We'll check {b} bags in total."),
    });
    ticket.push_str(if insurance {
        " We want the travel insurance."
    } else {
        " No travel insurance, thanks."
    });
    ticket.push(' ');
    ticket.push_str(&pay_text);
    let tell_total = rng.bernoulli(0.6);
    if tell_total {
        ticket.push_str(" Please tell me the total price.");
    }

    let mut actions = vec![get_user(user_id)];
    for (o, d, day) in &searches {
        let tool = if onestop {
            "search_onestop_flight"
        } else {
            "search_direct_flight"
        };
        actions.push(act(
            tool,
            json!({"origin": o, "destination": d, "date": day}),
        ));
    }
    let flights: Vec<Value> = segments
        .iter()
        .map(|(number, d)| json!({"flight_number": number, "date": d}))
        .collect();
    let passengers_json: Vec<Value> = passengers
        .iter()
        .map(|(p, _)| json!({"first_name": p.first_name, "last_name": p.last_name, "dob": p.dob}))
        .collect();
    let payments_json: Vec<Value> = payments
        .iter()
        .map(|(id, amount)| json!({"payment_id": id, "amount": amount}))
        .collect();
    actions.push(act(
        "book_reservation",
        json!({
            "user_id": user_id,
            "origin": origin,
            "destination": destination,
            "flight_type": if round_trip { "round_trip" } else { "one_way" },
            "cabin": cabin,
            "flights": flights,
            "passengers": passengers_json,
            "payment_methods": payments_json,
            "total_baggages": total_baggages,
            "nonfree_baggages": nonfree_baggages,
            "insurance": if insurance { "yes" } else { "no" },
        }),
    ));
    Some(Draft {
        kind: "book",
        user_id: user_id.clone(),
        instruction: ticket,
        actions,
        outputs: if tell_total {
            vec![total_int.to_string()]
        } else {
            Vec::new()
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Cancellation

/// The policy grounds on which a cancellation is allowed (none: it is not).
fn cancel_grounds(db: &Db, r: &Reservation) -> Vec<&'static str> {
    let airline_cancelled = r.flights.iter().any(|f| {
        db.flights
            .get(&f.flight_number)
            .and_then(|fl| fl.dates.get(&f.date))
            .is_some_and(|d| d.status == "cancelled")
    });
    let recent = r.created_at.as_str() >= "2024-05-14T15:00:00";
    let mut grounds = Vec::new();
    if airline_cancelled {
        grounds.push("airline");
    }
    if recent {
        grounds.push("recent");
    }
    if r.cabin == "business" {
        grounds.push("business");
    }
    if r.insurance == "yes" {
        grounds.push("insured");
    }
    grounds
}

fn refund_total(r: &Reservation) -> Num {
    r.payment_history.iter().map(|p| p.amount).sum::<Num>()
}

fn cancel(db: &Db, rng: &mut Rng, allowed: bool) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |_, r| {
        upcoming(r) && cancel_grounds(db, r).is_empty() != allowed
    })?;
    let user_id = &r.user_id;
    let mut ticket = opening(user, user_id, rng);
    let route = format!("{} to {}", city(&r.origin), city(&r.destination));
    let reason = if allowed {
        match *rng.choose(&cancel_grounds(db, r)) {
            "airline" => "the airline cancelled one of my flights",
            "insured" => *rng.choose(&[
                "I've fallen ill and my doctor told me not to travel",
                "a severe storm is forecast at my destination",
            ]),
            _ => "my plans changed",
        }
    } else {
        *rng.choose(&["my plans changed", "I found a better deal elsewhere"])
    };
    ticket.push_str(&format!(
        " I need to cancel my reservation {} ({route}) because {reason}.",
        r.reservation_id
    ));
    let mut outputs = Vec::new();
    if allowed {
        let refund = refund_total(r);
        if rng.bernoulli(0.5) && refund.is_positive() {
            ticket.push_str(" Please tell me how much will be refunded.");
            outputs.push(num_text(refund));
        }
    } else {
        ticket.push_str(" I'd like a full refund.");
    }
    let mut actions = vec![get_user(user_id), get_reservation(&r.reservation_id)];
    if allowed {
        actions.push(act(
            "cancel_reservation",
            json!({"reservation_id": r.reservation_id}),
        ));
    }
    Some(Draft {
        kind: if allowed { "cancel" } else { "refuse_cancel" },
        user_id: user_id.clone(),
        instruction: ticket,
        actions,
        outputs,
    })
}

// ---------------------------------------------------------------------------------------------
// Changes

/// Whether the reservation's segments are one direct flight, or two direct flights out and back.
fn simple_shape(r: &Reservation) -> bool {
    match r.flights.as_slice() {
        [_] => r.flight_type == "one_way",
        [a, b] => {
            r.flight_type == "round_trip" && a.destination == b.origin && b.destination == a.origin
        }
        _ => false,
    }
}

fn flights_json(flights: &[(String, String)]) -> Vec<Value> {
    flights
        .iter()
        .map(|(number, d)| json!({"flight_number": number, "date": d}))
        .collect()
}

/// The days leg `leg` of a simple reservation may move to: after today, after the outbound leg (for
/// the return) and before the return leg (for the outbound). `None` when no day fits.
fn movable_days(r: &Reservation, leg: usize) -> Option<(u32, u32)> {
    let (lo, hi) = match (leg, r.flights.len()) {
        (0, 2) => (TODAY_DAY + 1, day_of(&r.flights[1].date)?.saturating_sub(1)),
        (1, _) => ((day_of(&r.flights[0].date)? + 1).max(TODAY_DAY + 1), 30),
        _ => (TODAY_DAY + 1, 30),
    };
    (lo <= hi).then_some((lo, hi))
}

/// One leg of a simple reservation moved to another day, onto a direct flight or a one-stop
/// connection the customer names: the whole new itinerary, the charge (negative: a refund) and the
/// method that pays it.
struct LegMove<'a> {
    leg: usize,
    new_day: u32,
    onestop: bool,
    /// How the ticket names the new flight(s), from [`choose_option`].
    choice_text: String,
    flights: Vec<(String, String)>,
    amount: Num,
    method: &'a PaymentMethod,
}

impl LegMove<'_> {
    /// Which leg the customer means, in their words.
    fn leg_words(&self, r: &Reservation) -> &'static str {
        if r.flights.len() == 1 {
            "my flight"
        } else if self.leg == 0 {
            "my outbound flight"
        } else {
            "my return flight"
        }
    }

    /// The gold's search for the new flight(s) and the update that books them.
    fn actions(&self, r: &Reservation) -> [GoldAction; 2] {
        let seg = &r.flights[self.leg];
        let search = if self.onestop {
            "search_onestop_flight"
        } else {
            "search_direct_flight"
        };
        [
            act(
                search,
                json!({"origin": seg.origin, "destination": seg.destination, "date": date(self.new_day)}),
            ),
            act(
                "update_reservation_flights",
                json!({
                    "reservation_id": r.reservation_id,
                    "cabin": r.cabin,
                    "flights": flights_json(&self.flights),
                    "payment_id": self.method.id,
                }),
            ),
        ]
    }
}

/// Draws a move of leg `leg` of `r` (a simple reservation, not basic economy) to a day the leg may
/// move to, in the same cabin. A one-stop connection for the outbound leg must land before the
/// return day. `None` when nothing fits (no day, no other option, no way to pay).
fn move_leg<'a>(
    db: &Db,
    rng: &mut Rng,
    user: &'a User,
    r: &Reservation,
    leg: usize,
    onestop: bool,
) -> Option<LegMove<'a>> {
    let seg = &r.flights[leg];
    let (lo, hi) = movable_days(r, leg)?;
    let new_day = rng.range(i64::from(lo), i64::from(hi)) as u32;
    let current = [(seg.flight_number.clone(), seg.date.clone())];
    let return_day = (leg == 0 && r.flights.len() == 2)
        .then(|| day_of(&r.flights[1].date))
        .flatten();
    let lands_before_return = |o: &Option_| {
        return_day.is_none_or(|back| {
            o.segments
                .iter()
                .all(|(_, d)| day_of(d).is_some_and(|d| d < back))
        })
    };
    let opts: Vec<Option_> = options(
        db,
        &seg.origin,
        &seg.destination,
        new_day,
        &r.cabin,
        r.passengers.len(),
        onestop,
    )
    .into_iter()
    .filter(|o| o.segments != current && lands_before_return(o))
    .collect();
    let kind = if onestop {
        "one-stop connection"
    } else {
        "direct flight"
    };
    let (choice, choice_text) = choose_option(rng, &opts, kind)?;
    let mut flights: Vec<(String, String)> = r
        .flights
        .iter()
        .map(|f| (f.flight_number.clone(), f.date.clone()))
        .collect();
    flights.splice(leg..=leg, choice.segments);
    let (_, amount) = price_flight_change(db, r, &r.cabin, &flights).ok()?;
    let method = update_payment(user, rng, amount)?;
    Some(LegMove {
        leg,
        new_day,
        onestop,
        choice_text,
        flights,
        amount,
        method,
    })
}

/// Whether the flights of `r` may be changed: a live, simple reservation that is not basic economy.
fn flights_changeable(r: &Reservation) -> bool {
    !r.is_cancelled() && r.cabin != "basic_economy" && simple_shape(r)
}

/// Moving one leg of an upcoming reservation to another day: onto a direct flight (`change_flight`)
/// or a one-stop connection (`change_to_onestop`). The customer may ask for the price difference.
fn change_flight(db: &Db, rng: &mut Rng, onestop: bool) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |_, r| upcoming(r) && flights_changeable(r))?;
    let leg = rng.below(r.flights.len() as u64) as usize;
    let moved = move_leg(db, rng, user, r, leg, onestop)?;
    let seg = &r.flights[leg];
    let how = if onestop {
        ", with one stop this time: please book"
    } else {
        ". Please book"
    };
    let mut ticket = opening(user, &r.user_id, rng);
    ticket.push_str(&format!(
        " On reservation {}, I need to move {} from {} to {} (flight {} on {}) to {}{how} {} \
         that day, same cabin. Use {} for any payment or refund.",
        r.reservation_id,
        moved.leg_words(r),
        city(&seg.origin),
        city(&seg.destination),
        seg.flight_number,
        seg.date,
        date(moved.new_day),
        moved.choice_text,
        describe_method(user, moved.method),
    ));
    let mut outputs = Vec::new();
    if !moved.amount.abs().lt(Num::Int(1)) && rng.bernoulli(0.5) {
        ticket.push_str(" Tell me the price difference.");
        outputs.push(num_text(moved.amount.abs()));
    }
    let mut actions = vec![get_user(&r.user_id), get_reservation(&r.reservation_id)];
    actions.extend(moved.actions(r));
    Some(Draft {
        kind: if onestop {
            "change_to_onestop"
        } else {
            "change_flight"
        },
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions,
        outputs,
    })
}

fn refuse_basic_economy_change(db: &Db, rng: &mut Rng) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |_, r| {
        upcoming(r) && r.cabin == "basic_economy" && simple_shape(r)
    })?;
    let seg = &r.flights[0];
    let day = day_of(&seg.date)?;
    let new_day = if day < 30 { day + 1 } else { day - 1 };
    let mut ticket = opening(user, &r.user_id, rng);
    ticket.push_str(&format!(
        " I want to move my flight {} on {} (reservation {}) to {}, on any flight that day. I \
         don't want to change anything else.",
        seg.flight_number,
        seg.date,
        r.reservation_id,
        date(new_day)
    ));
    Some(Draft {
        kind: "refuse_basic_economy_change",
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions: vec![get_user(&r.user_id), get_reservation(&r.reservation_id)],
        outputs: Vec::new(),
    })
}

fn change_cabin(db: &Db, rng: &mut Rng) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |_, r| upcoming(r))?;
    let others: Vec<&str> = CABINS.iter().copied().filter(|c| *c != r.cabin).collect();
    let cabin = *rng.choose(&others);
    let flights: Vec<(String, String)> = r
        .flights
        .iter()
        .map(|f| (f.flight_number.clone(), f.date.clone()))
        .collect();
    let (_, amount) = price_flight_change(db, r, cabin, &flights).ok()?;
    let method = update_payment(user, rng, amount)?;
    let verb =
        if CABINS.iter().position(|c| *c == cabin) > CABINS.iter().position(|c| *c == r.cabin) {
            "upgrade"
        } else {
            "change"
        };
    let mut ticket = opening(user, &r.user_id, rng);
    ticket.push_str(&format!(
        " Please {verb} all flights on my reservation {} to {}, keeping the same flights. Use {} \
         for the difference.",
        r.reservation_id,
        cabin_words(cabin),
        describe_method(user, method)
    ));
    let mut outputs = Vec::new();
    if !amount.abs().lt(Num::Int(1)) && rng.bernoulli(0.5) {
        ticket.push_str(" How much is the difference?");
        outputs.push(num_text(amount.abs()));
    }
    let actions = vec![
        get_user(&r.user_id),
        get_reservation(&r.reservation_id),
        act(
            "update_reservation_flights",
            json!({
                "reservation_id": r.reservation_id,
                "cabin": cabin,
                "flights": flights_json(&flights),
                "payment_id": method.id,
            }),
        ),
    ];
    Some(Draft {
        kind: "change_cabin",
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions,
        outputs,
    })
}

fn add_bags(db: &Db, rng: &mut Rng) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |_, r| upcoming(r))?;
    let added = rng.range(1, 3);
    let total = r.total_baggages + added;
    let allowance = free_bags(&user.membership, &r.cabin) * r.passengers.len() as i64;
    let nonfree = (total - allowance).max(r.nonfree_baggages).max(0);
    let charge = baggage_charge(r, nonfree);
    let method = update_payment(user, rng, charge)?;
    let mut ticket = opening(user, &r.user_id, rng);
    let bags = if added == 1 {
        "1 more checked bag".to_string()
    } else {
        format!("{added} more checked bags")
    };
    ticket.push_str(&format!(
        " I'd like to add {bags} to reservation {} (so {total} in total). If there's a fee, use {}.",
        r.reservation_id,
        describe_method(user, method)
    ));
    let mut outputs = Vec::new();
    if charge.is_positive() && rng.bernoulli(0.6) {
        ticket.push_str(" How much will the bags cost?");
        outputs.push(num_text(charge));
    }
    let actions = vec![
        get_user(&r.user_id),
        get_reservation(&r.reservation_id),
        act(
            "update_reservation_baggages",
            json!({
                "reservation_id": r.reservation_id,
                "total_baggages": total,
                "nonfree_baggages": nonfree,
                "payment_id": method.id,
            }),
        ),
    ];
    Some(Draft {
        kind: "add_bags",
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions,
        outputs,
    })
}

fn change_passenger(db: &Db, rng: &mut Rng) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |_, r| upcoming(r))?;
    let i = rng.below(r.passengers.len() as u64) as usize;
    let old = &r.passengers[i];
    let saved: Vec<&Passenger> = user
        .saved_passengers
        .iter()
        .filter(|p| !r.passengers.contains(p))
        .collect();
    let mut ticket = opening(user, &r.user_id, rng);
    let new = if !saved.is_empty() && rng.bernoulli(0.5) {
        let p = (*rng.choose(&saved)).clone();
        ticket.push_str(&format!(
            " On reservation {}, {} can't come anymore; please put {} (saved in my profile) in \
             their place.",
            r.reservation_id,
            full_name(old),
            full_name(&p)
        ));
        p
    } else if rng.bernoulli(0.5) {
        let mut p = old.clone();
        let (y, rest) = p.dob.split_once('-')?;
        let year: i64 = y.parse().ok()?;
        p.dob = format!("{}-{rest}", year + if rng.bernoulli(0.5) { 1 } else { -1 });
        ticket.push_str(&format!(
            " On reservation {}, the date of birth of passenger {} is wrong: it should be {}.",
            r.reservation_id,
            full_name(old),
            p.dob
        ));
        p
    } else {
        let p = Passenger {
            first_name: rng
                .choose(&["Selma", "Bruno", "Ayla", "Cormac", "Dina", "Emil"])
                .to_string(),
            last_name: rng
                .choose(&["Okonkwo", "Ferreira", "Lund", "Baptiste", "Kaur"])
                .to_string(),
            dob: format!(
                "{}-{:02}-{:02}",
                rng.range(1950, 2010),
                rng.range(1, 12),
                rng.range(1, 28)
            ),
        };
        ticket.push_str(&format!(
            " On reservation {}, please replace passenger {} with {}, born {}.",
            r.reservation_id,
            full_name(old),
            full_name(&p),
            p.dob
        ));
        p
    };
    if r.passengers.contains(&new) {
        return None;
    }
    let mut passengers = r.passengers.clone();
    passengers[i] = new;
    let passengers_json: Vec<Value> = passengers
        .iter()
        .map(|p| json!({"first_name": p.first_name, "last_name": p.last_name, "dob": p.dob}))
        .collect();
    let actions = vec![
        get_user(&r.user_id),
        get_reservation(&r.reservation_id),
        act(
            "update_reservation_passengers",
            json!({"reservation_id": r.reservation_id, "passengers": passengers_json}),
        ),
    ];
    Some(Draft {
        kind: "change_passenger",
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions,
        outputs: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Compensation

/// The policy's condition for any compensation: a silver or gold member, an insured reservation, or
/// business class.
fn compensation_eligible(user: &User, r: &Reservation) -> bool {
    user.membership != "regular" || r.insurance == "yes" || r.cabin == "business"
}

/// The certificate for an airline-cancelled flight, per passenger.
const CANCELLATION_COMPENSATION_PER_PASSENGER: i64 = 100;
/// The certificate for a delayed flight that made the customer change or cancel, per passenger.
const DELAY_COMPENSATION_PER_PASSENGER: i64 = 50;

/// The segment of `r` whose flight has `status` on its date, if any.
fn segment_with_status(db: &Db, r: &Reservation, status: &str) -> Option<usize> {
    r.flights.iter().position(|f| {
        db.flights
            .get(&f.flight_number)
            .and_then(|fl| fl.dates.get(&f.date))
            .is_some_and(|d| d.status == status)
    })
}

/// The reads that confirm the facts of a complaint about segment `seg` of `r`.
fn confirm_facts(r: &Reservation, seg: &ReservationFlight) -> Vec<GoldAction> {
    vec![
        get_user(&r.user_id),
        get_reservation(&r.reservation_id),
        act(
            "get_flight_status",
            json!({"flight_number": seg.flight_number, "date": seg.date}),
        ),
    ]
}

/// Adds to `draft` the certificate of `per_passenger` dollars per passenger of `r` and, half the
/// time, the customer's `question` about it, whose answer (the amount) becomes an output.
fn add_certificate(
    draft: &mut Draft,
    rng: &mut Rng,
    r: &Reservation,
    per_passenger: i64,
    question: &str,
) {
    let amount = per_passenger * r.passengers.len() as i64;
    draft.actions.push(act(
        "send_certificate",
        json!({"user_id": r.user_id, "amount": amount}),
    ));
    if rng.bernoulli(0.5) {
        draft.instruction.push(' ');
        draft.instruction.push_str(question);
        draft.outputs.push(amount.to_string());
    }
}

/// An airline-cancelled flight: an eligible customer gets $100 per passenger (`compensate`), a
/// regular member without insurance outside business nothing (`refuse_compensation`).
fn compensate(db: &Db, rng: &mut Rng, eligible: bool) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |u, r| {
        !r.is_cancelled()
            && segment_with_status(db, r, "cancelled").is_some()
            && compensation_eligible(u, r) == eligible
    })?;
    let seg = &r.flights[segment_with_status(db, r, "cancelled")?];
    let mut ticket = opening(user, &r.user_id, rng);
    ticket.push_str(&format!(
        " My flight {} on {} (reservation {}) was cancelled by the airline. This was really \
         disruptive and I'd like some compensation for it.",
        seg.flight_number, seg.date, r.reservation_id
    ));
    let mut draft = Draft {
        kind: if eligible {
            "compensate"
        } else {
            "refuse_compensation"
        },
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions: confirm_facts(r, seg),
        outputs: Vec::new(),
    };
    if eligible {
        add_certificate(
            &mut draft,
            rng,
            r,
            CANCELLATION_COMPENSATION_PER_PASSENGER,
            "Please tell me the amount.",
        );
    }
    Some(draft)
}

/// Whether no flight of `r` has departed: every segment is after today, or today and not yet gone.
fn nothing_flown(db: &Db, r: &Reservation) -> bool {
    r.flights.iter().all(|f| match day_of(&f.date) {
        Some(day) if day > TODAY_DAY => true,
        Some(TODAY_DAY) => db
            .flights
            .get(&f.flight_number)
            .and_then(|fl| fl.dates.get(&f.date))
            .is_some_and(|d| matches!(d.status.as_str(), "delayed" | "on time" | "cancelled")),
        _ => false,
    })
}

/// Whether the policy lets the customer of a delayed reservation cancel it for that delay: nothing
/// flown, and booked in the last 24 hours, an airline cancellation, or business class (a delay is
/// not the health or weather reason insurance needs).
fn cancellable_for_delay(db: &Db, r: &Reservation) -> bool {
    !r.is_cancelled()
        && nothing_flown(db, r)
        && cancel_grounds(db, r)
            .iter()
            .any(|g| matches!(*g, "airline" | "recent" | "business"))
}

/// A delayed flight today, and the customer changes or cancels the reservation because of it and asks
/// for compensation. An eligible customer (`compensate_delay`) has the change (the delayed leg moved
/// to a later day on a direct flight) or the cancellation made, then gets a certificate of $50 per
/// passenger. A regular member flying (basic) economy without insurance
/// (`refuse_delay_compensation`) gets no certificate: the change or cancellation is made when the
/// policy allows it, and when it allows neither, the cancellation asked for is refused as well (only
/// for reservations with nothing flown: a partly flown one would be a transfer instead).
fn compensate_delay(db: &Db, rng: &mut Rng, eligible: bool) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |u, r| {
        !r.is_cancelled()
            && segment_with_status(db, r, "delayed").is_some()
            && compensation_eligible(u, r) == eligible
            && if eligible {
                flights_changeable(r) || cancellable_for_delay(db, r)
            } else {
                flights_changeable(r) || nothing_flown(db, r)
            }
    })?;
    let leg = segment_with_status(db, r, "delayed")?;
    let seg = &r.flights[leg];
    let mut remedies = Vec::new();
    if flights_changeable(r) {
        remedies.push("change");
    }
    if remedies.is_empty() || cancellable_for_delay(db, r) {
        remedies.push("cancel");
    }
    let mut ticket = opening(user, &r.user_id, rng);
    ticket.push_str(&format!(
        " My flight {} from {} to {} today ({}, reservation {}) is delayed, and the new time \
         doesn't work for me.",
        seg.flight_number,
        city(&seg.origin),
        city(&seg.destination),
        seg.date,
        r.reservation_id
    ));
    let mut actions = confirm_facts(r, seg);
    let mut outputs = Vec::new();
    if *rng.choose(&remedies) == "change" {
        let moved = move_leg(db, rng, user, r, leg, false)?;
        ticket.push_str(&format!(
            " Please move {} to {}: book {} that day, same cabin, and use {} for any payment or \
             refund.",
            moved.leg_words(r),
            date(moved.new_day),
            moved.choice_text,
            describe_method(user, moved.method),
        ));
        if !moved.amount.abs().lt(Num::Int(1)) && rng.bernoulli(0.4) {
            ticket.push_str(" Tell me the price difference.");
            outputs.push(num_text(moved.amount.abs()));
        }
        actions.extend(moved.actions(r));
    } else {
        ticket.push_str(" Please cancel the whole reservation.");
        if cancellable_for_delay(db, r) {
            actions.push(act(
                "cancel_reservation",
                json!({"reservation_id": r.reservation_id}),
            ));
        }
    }
    ticket.push_str(" I also want compensation for this delay.");
    let mut draft = Draft {
        kind: if eligible {
            "compensate_delay"
        } else {
            "refuse_delay_compensation"
        },
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions,
        outputs,
    };
    if eligible {
        add_certificate(
            &mut draft,
            rng,
            r,
            DELAY_COMPENSATION_PER_PASSENGER,
            "How much will the compensation be?",
        );
    }
    Some(draft)
}

/// An eligible customer complains about a delayed flight today but keeps it as it is. The policy
/// compensates a delay only together with a change or cancellation, so the gold is reads only.
fn refuse_delay_compensation_without_change(db: &Db, rng: &mut Rng) -> Option<Draft> {
    let (user, r) = pick_reservation(db, rng, |u, r| {
        !r.is_cancelled()
            && segment_with_status(db, r, "delayed").is_some()
            && compensation_eligible(u, r)
    })?;
    let seg = &r.flights[segment_with_status(db, r, "delayed")?];
    let mut ticket = opening(user, &r.user_id, rng);
    ticket.push_str(&format!(
        " My flight {} today ({}, reservation {}) is delayed. I'll still take it and don't want to \
         change my reservation, but I expect compensation for the wait.",
        seg.flight_number, seg.date, r.reservation_id
    ));
    Some(Draft {
        kind: "refuse_delay_compensation_without_change",
        user_id: r.user_id.clone(),
        instruction: ticket,
        actions: confirm_facts(r, seg),
        outputs: Vec::new(),
    })
}
