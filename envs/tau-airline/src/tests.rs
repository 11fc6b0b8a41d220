//! Native tests of the airline env: config and DB validation, every tool's success and error paths
//! (errors leave the DB unchanged), the price arithmetic, generated tasks (expert reward 1, perturbed
//! endings reward 0 with a reason, determinism) and the protocol through the SDK's `Host`.

use super::*;
use crate::db::{Num, Passenger, PaymentMethod};
use sandgym_sdk::{Env, Envelope, Host, Role};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A small generated DB shared by the tool tests (generation is deterministic).
fn small_db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        world::generate_db(&GenConfig {
            seed: 7,
            users: 40,
            airports: 8,
            flights: 40,
            reservations: 120,
        })
    })
}

fn run(db: &mut Db, name: &str, args: Value) -> Result<String, String> {
    tools::call(db, name, args.as_object().expect("object arguments")).expect("a domain tool")
}

/// Runs a call that must fail and checks the DB did not change.
fn fails(db: &mut Db, name: &str, args: Value) -> String {
    let before = db.clone();
    let err = run(db, name, args).expect_err("the call should fail");
    assert_eq!(*db, before, "a failing `{name}` changed the DB: {err}");
    err
}

fn host(config: Value) -> Host<TauAirline> {
    let mut host = Host::<TauAirline>::default();
    let out: Envelope<()> =
        serde_json::from_slice(host.configure(config.to_string().as_bytes())).unwrap();
    assert_eq!(out, Envelope::Ok(()));
    host
}

fn reset(host: &mut Host<TauAirline>, input: Value) -> Result<ResetOutput, String> {
    let bytes = host.reset(input.to_string().as_bytes());
    serde_json::from_slice::<Envelope<ResetOutput>>(bytes)
        .unwrap()
        .into()
}

fn step(host: &mut Host<TauAirline>, action: &Action) -> StepOutput {
    let bytes = host.step(&serde_json::to_vec(action).unwrap());
    let out: Result<StepOutput, String> = serde_json::from_slice::<Envelope<StepOutput>>(bytes)
        .unwrap()
        .into();
    out.unwrap()
}

fn expert(host: &mut Host<TauAirline>) -> Option<Action> {
    match serde_json::from_slice::<Envelope<Option<Action>>>(host.expert()).unwrap() {
        Envelope::Ok(action) => action,
        Envelope::Err(e) => panic!("{e}"),
    }
}

/// Plays the expert to the end; returns the last step and the number of steps.
fn play_expert(host: &mut Host<TauAirline>) -> (StepOutput, usize) {
    for n in 1..=1000 {
        let action = expert(host).expect("the expert has a move while the episode runs");
        let out = step(host, &action);
        if out.terminated || out.truncated {
            return (out, n);
        }
    }
    panic!("the expert did not finish");
}

fn small_env() -> TauAirline {
    let mut env = TauAirline::default();
    env.configure(
        &json!({"seed": 7, "users": 40, "airports": 8, "flights": 40, "reservations": 120}),
    )
    .unwrap();
    env
}

fn user_with<'a>(db: &'a Db, source: &str) -> (&'a String, &'a crate::db::User) {
    db.users
        .iter()
        .find(|(_, u)| u.payment_methods.values().any(|m| m.source == source))
        .expect("some user has such a payment method")
}

fn method<'a>(user: &'a crate::db::User, source: &str) -> &'a PaymentMethod {
    user.payment_methods
        .values()
        .find(|m| m.source == source)
        .expect("has one")
}

/// An available flight date with at least `seats` seats in `cabin`: (number, date, price).
fn bookable(db: &Db, cabin: &str, seats: i64) -> (String, String, Num) {
    for f in db.flights.values() {
        for (d, status) in &f.dates {
            if let Some((s, p)) = status.offer()
                && s.get(cabin).unwrap() >= seats
            {
                return (f.flight_number.clone(), d.clone(), p.get(cabin).unwrap());
            }
        }
    }
    panic!("no bookable flight");
}

fn passenger(first: &str) -> Value {
    json!({"first_name": first, "last_name": "Tester", "dob": "1990-01-01"})
}

fn int(n: Num) -> i64 {
    match n {
        Num::Int(i) => i,
        Num::Float(f) => panic!("expected an int, got {f}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Config and DB

#[test]
fn config_is_validated() {
    assert_eq!(Config::from_json(&Value::Null), Ok(Config::default()));
    let err = Config::from_json(&json!({"mode": "ticket"})).unwrap_err();
    assert!(err.contains("config `mode` must be \"solo\""), "{err}");
    assert!(Config::from_json(&json!({"mode": "solo"})).is_ok());
    assert!(Config::from_json(&json!({"mode": "user"})).is_ok());
    let err = Config::from_json(&json!({"userz": 3})).unwrap_err();
    assert!(err.contains("unknown config key `userz`"), "{err}");
    let err = Config::from_json(&json!({"airports": 99})).unwrap_err();
    assert!(err.contains("`airports`"), "{err}");
    let err = Config::from_json(&json!({"max_turns": 0})).unwrap_err();
    assert!(err.contains("`max_turns`"), "{err}");
    let db = small_db().to_json();
    assert!(Config::from_json(&json!({"db": db})).is_ok());
    let err = Config::from_json(&json!({"db": db, "users": 5})).unwrap_err();
    assert!(err.contains("`users` is a generator knob"), "{err}");
    // The defaults reported by info() are accepted as a config.
    assert_eq!(
        Config::from_json(&Config::default_json()),
        Ok(Config::default())
    );
}

#[test]
fn imported_db_errors_name_the_culprit() {
    let good = small_db().to_json();
    assert_eq!(Db::from_json(&good).as_ref(), Ok(small_db()));
    // File-name keys and notes, as a directory may bring them.
    let mut files = good.clone();
    let users = files.as_object_mut().unwrap().remove("users").unwrap();
    files["users.json"] = users;
    files["wiki.md"] = json!("# policy");
    assert_eq!(Db::from_json(&files).as_ref(), Ok(small_db()));
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|db| {
                db.as_object_mut().unwrap().remove("flights");
            }),
            "missing table `flights`",
        ),
        (
            Box::new(|db| db["extra"] = json!({})),
            "unknown table `extra`",
        ),
        (
            Box::new(|db| db["users"] = json!([])),
            "table `users` must be an object",
        ),
        (
            Box::new(|db| {
                let (k, _) = db["users"].as_object().unwrap().iter().next().unwrap();
                let k = k.clone();
                db["users"][&k]["membership"] = json!("platinum");
            }),
            "field `membership` must be one of",
        ),
        (
            Box::new(|db| {
                let k = db["users"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone();
                db["users"][&k].as_object_mut().unwrap().remove("email");
            }),
            "missing field `email`",
        ),
        (
            Box::new(|db| {
                let k = db["reservations"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone();
                db["reservations"][&k]["user_id"] = json!("nobody_1");
            }),
            "nobody_1",
        ),
        (
            Box::new(|db| {
                let k = db["reservations"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone();
                db["reservations"][&k]["cabin"] = json!("first");
            }),
            "field `cabin` must be one of",
        ),
        (
            Box::new(|db| {
                let k = db["flights"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone();
                db["flights"][&k]["dates"]["2024-05-20"] = json!({"status": "available"});
            }),
            "needs field `available_seats`",
        ),
        (
            Box::new(|db| {
                let k = db["flights"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone();
                db["flights"][&k]["dates"]["2024-05-20"] = json!({"status": "boarding"});
            }),
            "status must be one of",
        ),
    ];
    for (mutate, expected) in cases {
        let mut db = good.clone();
        mutate(&mut db);
        let err = Db::from_json(&db).unwrap_err();
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
    }
}

#[test]
fn generated_db_is_valid_and_deterministic() {
    let config = GenConfig::default();
    let a = world::generate_db(&config);
    a.validate().unwrap();
    assert_eq!(a.users.len(), 200);
    assert_eq!(a.flights.len(), 150);
    assert_eq!(a.airports().len(), 20);
    assert!(a.reservations.len() > 500, "{}", a.reservations.len());
    assert_eq!(a, world::generate_db(&config));
    let b = world::generate_db(&GenConfig { seed: 1, ..config });
    assert_ne!(a, b);
    // The shape of the original: memberships, payment sources, trip types, cancellations.
    for m in db::MEMBERSHIPS {
        assert!(a.users.values().any(|u| u.membership == m), "{m}");
    }
    for s in db::PAYMENT_SOURCES {
        assert!(
            a.users
                .values()
                .any(|u| u.payment_methods.values().any(|p| p.source == s)),
            "{s}"
        );
    }
    for t in db::FLIGHT_TYPES {
        assert!(a.reservations.values().any(|r| r.flight_type == t), "{t}");
    }
    assert!(a.reservations.values().any(|r| r.is_cancelled()));
    assert!(a.reservations.values().any(|r| r.flights.len() == 4));
    for status in db::FLIGHT_STATUSES {
        assert!(
            a.flights
                .values()
                .any(|f| f.dates.values().any(|d| d.status == status)),
            "{status}"
        );
    }
    // Round-trips through JSON.
    assert_eq!(Db::from_json(&a.to_json()).unwrap(), a);
}

// ---------------------------------------------------------------------------------------------
// Reads

#[test]
fn reads_return_the_records_as_json() {
    let mut db = small_db().clone();
    let (uid, user) = db.users.iter().next().unwrap();
    let (uid, user) = (uid.clone(), user.clone());
    let text = run(&mut db, "get_user_details", json!({"user_id": uid})).unwrap();
    assert!(text.starts_with("{\"name\": {\"first_name\": "), "{text}");
    let back: crate::db::User = serde_json::from_str(&text).unwrap();
    assert_eq!(back, user);
    assert_eq!(
        fails(&mut db, "get_user_details", json!({"user_id": "nobody"})),
        "user not found"
    );
    let rid = db.reservations.keys().next().unwrap().clone();
    let text = run(
        &mut db,
        "get_reservation_details",
        json!({"reservation_id": rid}),
    )
    .unwrap();
    assert!(
        text.starts_with(&format!("{{\"reservation_id\": \"{rid}\"")),
        "{text}"
    );
    // Sic: the original reports a missing reservation as a missing user.
    assert_eq!(
        fails(
            &mut db,
            "get_reservation_details",
            json!({"reservation_id": "NOPE00"})
        ),
        "user not found"
    );
    let airports: Value =
        serde_json::from_str(&run(&mut db, "list_all_airports", json!({})).unwrap()).unwrap();
    assert_eq!(airports.as_object().unwrap().len(), 8);
    for (code, city) in airports.as_object().unwrap() {
        assert_eq!(city, tools::city_of(code));
    }
}

#[test]
fn argument_errors_are_reported_and_change_nothing() {
    let mut db = small_db().clone();
    let err = fails(&mut db, "get_user_details", json!({}));
    assert_eq!(err, "missing argument `user_id` for `get_user_details`");
    let err = fails(&mut db, "get_user_details", json!({"user_id": 3}));
    assert!(err.contains("must be a string"), "{err}");
    let err = fails(&mut db, "get_user_details", json!({"user_id": "a", "x": 1}));
    assert_eq!(err, "unexpected argument `x` for `get_user_details`");
    let err = fails(&mut db, "list_all_airports", json!({"x": 1}));
    assert!(err.contains("unexpected argument `x`"), "{err}");
    let (uid, _) = user_with(&db, "credit_card");
    let uid = uid.clone();
    let base = json!({
        "user_id": uid, "origin": "AAA", "destination": "BBB", "flight_type": "one_way",
        "cabin": "economy", "flights": [], "passengers": [passenger("A")],
        "payment_methods": [], "total_baggages": 0, "nonfree_baggages": 0, "insurance": "no",
    });
    let bad = |key: &str, value: Value| {
        let mut args = base.clone();
        args[key] = value;
        args
    };
    for (key, value, expected) in [
        (
            "cabin",
            json!("first"),
            "must be one of basic_economy, economy, business",
        ),
        (
            "flight_type",
            json!("multi_city"),
            "must be one of one_way, round_trip",
        ),
        ("insurance", json!("maybe"), "must be one of yes, no"),
        ("total_baggages", json!(1.5), "must be an integer"),
        ("flights", json!({}), "must be an array"),
        (
            "flights",
            json!([{"flight_number": "HAT001"}]),
            "missing field `date`",
        ),
        ("flights", json!([1]), "must be an object"),
        (
            "passengers",
            json!([{"first_name": "A", "last_name": "B", "dob": "x", "age": 3}]),
            "unexpected field `age`",
        ),
        (
            "payment_methods",
            json!([{"payment_id": "x", "amount": "10"}]),
            "must be a number",
        ),
    ] {
        let err = fails(&mut db, "book_reservation", bad(key, value));
        assert!(err.contains(expected), "{key}: {err}");
    }
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("insurance");
    let err = fails(&mut db, "book_reservation", missing);
    assert!(err.contains("missing argument `insurance`"), "{err}");
}

#[test]
fn searches_list_available_flights() {
    let mut db = small_db().clone();
    let (number, date, _) = bookable(&db, "economy", 0);
    let f = db.flights[&number].clone();
    let text = run(
        &mut db,
        "search_direct_flight",
        json!({"origin": f.origin, "destination": f.destination, "date": date}),
    )
    .unwrap();
    let results: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(results.iter().any(|r| r["flight_number"] == json!(number)));
    for r in &results {
        assert_eq!(r["status"], "available");
        assert!(r.get("dates").is_none() && r.get("date").is_none());
        assert!(r["prices"]["business"].is_number());
    }
    assert!(text.starts_with("[{\"flight_number\": "), "{text}");
    // Past dates are not bookable.
    let past = run(
        &mut db,
        "search_direct_flight",
        json!({"origin": f.origin, "destination": f.destination, "date": "2024-05-02"}),
    )
    .unwrap();
    assert_eq!(past, "[]");
    // One-stop: every pair connects, leaves on the date and is available.
    let mut found = 0;
    for dest in db.airports() {
        let text = run(
            &mut db,
            "search_onestop_flight",
            json!({"origin": f.origin, "destination": dest, "date": date}),
        )
        .unwrap();
        let pairs: Vec<[Value; 2]> = serde_json::from_str(&text).unwrap();
        for [a, b] in &pairs {
            found += 1;
            assert_eq!(a["origin"], json!(f.origin));
            assert_eq!(a["destination"], b["origin"]);
            assert_eq!(b["destination"], json!(dest));
            assert_eq!(a["date"], json!(date));
            assert_eq!(a["status"], "available");
            assert_eq!(b["status"], "available");
            assert!(
                a["scheduled_arrival_time_est"].as_str().unwrap()
                    <= b["scheduled_departure_time_est"].as_str().unwrap()
            );
        }
    }
    assert!(found > 0);
}

#[test]
fn flight_status_reads_one_date() {
    let mut db = small_db().clone();
    let (number, date, _) = bookable(&db, "economy", 0);
    assert_eq!(
        run(
            &mut db,
            "get_flight_status",
            json!({"flight_number": number, "date": date})
        )
        .unwrap(),
        "available"
    );
    let landed = run(
        &mut db,
        "get_flight_status",
        json!({"flight_number": number, "date": "2024-05-01"}),
    )
    .unwrap();
    assert!(
        ["landed", "cancelled"].contains(&landed.as_str()),
        "{landed}"
    );
    assert_eq!(
        fails(
            &mut db,
            "get_flight_status",
            json!({"flight_number": "HAT999", "date": date})
        ),
        "flight HAT999 not found"
    );
    assert_eq!(
        fails(
            &mut db,
            "get_flight_status",
            json!({"flight_number": number, "date": "2024-06-01"})
        ),
        format!("flight {number} not found on date 2024-06-01")
    );
}

// ---------------------------------------------------------------------------------------------
// Booking

#[test]
fn booking_prices_and_pays() {
    let mut db = small_db().clone();
    let (uid, user) = db
        .users
        .iter()
        .find(|(_, u)| {
            ["credit_card", "gift_card", "certificate"]
                .iter()
                .all(|s| u.payment_methods.values().any(|m| &m.source == s))
        })
        .map(|(k, u)| (k.clone(), u.clone()))
        .expect("a user with all three payment sources");
    let card = method(&user, "credit_card").id.clone();
    let gift = method(&user, "gift_card").clone();
    let cert = method(&user, "certificate").id.clone();
    let (number, date, price) = bookable(&db, "business", 2);
    let flight = db.flights[&number].clone();
    // 2 passengers, insurance, 3 bags of which 1 paid.
    let total = 2 * int(price) + 2 * 30 + 50;
    let gift_amount = int(gift.amount.unwrap()).min(total);
    let args = |payments: Value| {
        json!({
            "user_id": uid, "origin": flight.origin, "destination": flight.destination,
            "flight_type": "one_way", "cabin": "business",
            "flights": [{"flight_number": number, "date": date}],
            "passengers": [passenger("A"), passenger("B")],
            "payment_methods": payments, "total_baggages": 3, "nonfree_baggages": 1,
            "insurance": "yes",
        })
    };
    // Wrong sum.
    let err = fails(
        &mut db,
        "book_reservation",
        args(json!([{"payment_id": card, "amount": total - 1}])),
    );
    assert_eq!(
        err,
        format!(
            "payment amount does not add up, total price is {total}, but paid {}",
            total - 1
        )
    );
    // Unknown method, over-drawn gift card, duplicated method.
    let err = fails(
        &mut db,
        "book_reservation",
        args(json!([{"payment_id": "credit_card_0000000", "amount": total}])),
    );
    assert_eq!(err, "payment method credit_card_0000000 not found");
    let err = fails(
        &mut db,
        "book_reservation",
        args(
            json!([{"payment_id": gift.id, "amount": int(gift.amount.unwrap()) + 1},
                    {"payment_id": card, "amount": total - int(gift.amount.unwrap()) - 1}]),
        ),
    );
    assert_eq!(
        err,
        format!("not enough balance in payment method {}", gift.id)
    );
    let err = fails(
        &mut db,
        "book_reservation",
        args(json!([{"payment_id": card, "amount": 1}, {"payment_id": card, "amount": total - 1}])),
    );
    assert!(err.contains("listed more than once"), "{err}");
    // Bad flight references.
    let mut a = args(json!([{"payment_id": card, "amount": total}]));
    a["flights"] = json!([{"flight_number": "HAT999", "date": date}]);
    assert_eq!(
        fails(&mut db, "book_reservation", a.clone()),
        "flight HAT999 not found"
    );
    a["flights"] = json!([{"flight_number": number, "date": "2024-05-02"}]);
    assert_eq!(
        fails(&mut db, "book_reservation", a.clone()),
        format!("flight {number} not available on date 2024-05-02")
    );
    a["user_id"] = json!("nobody_0000");
    assert_eq!(fails(&mut db, "book_reservation", a), "user not found");

    // Success: gift card + certificate + credit card. The certificate may exceed what is left, so
    // pay it only 1 dollar (its remainder is forfeited).
    let rest = total - gift_amount - 1;
    assert!(rest >= 0);
    let seats_before = db.flights[&number].dates[&date].available_seats;
    let text = run(
        &mut db,
        "book_reservation",
        args(json!([{"payment_id": gift.id, "amount": gift_amount},
                    {"payment_id": cert, "amount": 1},
                    {"payment_id": card, "amount": rest}])),
    )
    .unwrap();
    let r = &db.reservations["HATHAT"];
    assert!(
        text.starts_with("{\"reservation_id\": \"HATHAT\""),
        "{text}"
    );
    assert_eq!(r.created_at, "2024-05-15T15:00:00");
    assert_eq!(r.flights[0].price, price);
    assert_eq!(r.flights[0].origin, flight.origin);
    assert_eq!(r.payment_history.len(), 3);
    let u = &db.users[&uid];
    assert_eq!(
        u.payment_methods[&gift.id].amount,
        Some(Num::Int(int(gift.amount.unwrap()) - gift_amount))
    );
    assert!(
        !u.payment_methods.contains_key(&cert),
        "the certificate is used up"
    );
    assert!(u.payment_methods.contains_key(&card));
    assert_eq!(u.reservations.last().unwrap(), "HATHAT");
    // v1 quirk: seats are not decremented.
    assert_eq!(
        db.flights[&number].dates[&date].available_seats,
        seats_before
    );

    // The next bookings get HATHAU, HATHAV, then no more ids.
    let single = || {
        let mut a = args(json!([{"payment_id": card, "amount": 2 * int(price)}]));
        a["insurance"] = json!("no");
        a["nonfree_baggages"] = json!(0);
        a
    };
    run(&mut db, "book_reservation", single()).unwrap();
    run(&mut db, "book_reservation", single()).unwrap();
    assert!(db.reservations.contains_key("HATHAU") && db.reservations.contains_key("HATHAV"));
    assert_eq!(
        fails(&mut db, "book_reservation", single()),
        "too many reservations"
    );
}

#[test]
fn not_enough_seats_is_refused() {
    let mut db = small_db().clone();
    let (number, date, _) = bookable(&db, "economy", 0);
    let seats = db.flights[&number].dates[&date]
        .available_seats
        .unwrap()
        .economy;
    let uid = user_with(&db, "credit_card").0.clone();
    let passengers: Vec<Value> = (0..=seats).map(|i| passenger(&format!("P{i}"))).collect();
    let err = fails(
        &mut db,
        "book_reservation",
        json!({
            "user_id": uid.clone(), "origin": "X", "destination": "Y", "flight_type": "one_way",
            "cabin": "economy", "flights": [{"flight_number": number, "date": date}],
            "passengers": passengers, "payment_methods": [], "total_baggages": 0,
            "nonfree_baggages": 0, "insurance": "no",
        }),
    );
    assert_eq!(err, format!("not enough seats on flight {number}"));
}

// ---------------------------------------------------------------------------------------------
// Other writes

fn live_reservation(db: &Db) -> (String, crate::db::Reservation) {
    db.reservations
        .iter()
        .find(|(_, r)| {
            !r.is_cancelled()
                && db.users[&r.user_id]
                    .payment_methods
                    .values()
                    .any(|m| m.source == "credit_card")
                && db.users[&r.user_id]
                    .payment_methods
                    .values()
                    .any(|m| m.source == "gift_card")
                && db.users[&r.user_id]
                    .payment_methods
                    .values()
                    .any(|m| m.source == "certificate")
        })
        .map(|(k, r)| (k.clone(), r.clone()))
        .expect("a live reservation whose user has all payment sources")
}

#[test]
fn cancel_appends_negated_payments() {
    let mut db = small_db().clone();
    let (rid, r) = live_reservation(&db);
    assert_eq!(
        fails(
            &mut db,
            "cancel_reservation",
            json!({"reservation_id": "NOPE00"})
        ),
        "reservation not found"
    );
    let text = run(
        &mut db,
        "cancel_reservation",
        json!({"reservation_id": rid}),
    )
    .unwrap();
    let after = &db.reservations[&rid];
    assert!(after.is_cancelled());
    assert!(text.contains("\"status\": \"cancelled\""));
    let n = r.payment_history.len();
    assert_eq!(after.payment_history.len(), 2 * n);
    for (p, refund) in r.payment_history.iter().zip(&after.payment_history[n..]) {
        assert_eq!(refund.payment_id, p.payment_id);
        assert_eq!(refund.amount, -p.amount);
    }
    // Balances are untouched (refunds take 5-7 days).
    assert_eq!(db.users, small_db().users);
}

#[test]
fn baggage_updates_charge_added_paid_bags() {
    let mut db = small_db().clone();
    let (rid, r) = live_reservation(&db);
    let user = db.users[&r.user_id].clone();
    let card = method(&user, "credit_card").id.clone();
    let gift = method(&user, "gift_card").clone();
    let cert = method(&user, "certificate").id.clone();
    let args = |total: i64, nonfree: i64, pid: &str| {
        json!({"reservation_id": rid, "total_baggages": total, "nonfree_baggages": nonfree,
               "payment_id": pid})
    };
    let (t, nf) = (r.total_baggages, r.nonfree_baggages);
    assert_eq!(
        fails(
            &mut db,
            "update_reservation_baggages",
            args(t + 1, nf + 1, &cert)
        ),
        "certificate cannot be used to update reservation"
    );
    assert_eq!(
        fails(
            &mut db,
            "update_reservation_baggages",
            args(t + 1, nf + 1, "gift_card_0")
        ),
        "payment method not found"
    );
    let too_many = int(gift.amount.unwrap()) / 50 + 1;
    assert_eq!(
        fails(
            &mut db,
            "update_reservation_baggages",
            args(t + too_many, nf + too_many, &gift.id)
        ),
        "gift card balance is not enough"
    );
    let mut a = args(t, nf, &card);
    a["reservation_id"] = json!("NOPE00");
    assert_eq!(
        fails(&mut db, "update_reservation_baggages", a),
        "reservation not found"
    );
    // Two more paid bags on the credit card: one payment row of 100.
    run(
        &mut db,
        "update_reservation_baggages",
        args(t + 2, nf + 2, &card),
    )
    .unwrap();
    let after = &db.reservations[&rid];
    assert_eq!(
        (after.total_baggages, after.nonfree_baggages),
        (t + 2, nf + 2)
    );
    assert_eq!(after.payment_history.last().unwrap().amount, Num::Int(100));
    assert_eq!(after.payment_history.last().unwrap().payment_id, card);
    // One more paid bag on the gift card: debited by 50.
    if int(gift.amount.unwrap()) >= 50 {
        run(
            &mut db,
            "update_reservation_baggages",
            args(t + 3, nf + 3, &gift.id),
        )
        .unwrap();
        assert_eq!(
            db.users[&r.user_id].payment_methods[&gift.id].amount,
            Some(Num::Int(int(gift.amount.unwrap()) - 50))
        );
    }
    // Free bags only: no payment row.
    let rows = db.reservations[&rid].payment_history.len();
    let nf_now = db.reservations[&rid].nonfree_baggages;
    run(
        &mut db,
        "update_reservation_baggages",
        args(t + 9, nf_now, &card),
    )
    .unwrap();
    assert_eq!(db.reservations[&rid].payment_history.len(), rows);
}

#[test]
fn flight_updates_keep_old_prices_and_charge_the_difference() {
    let mut db = small_db().clone();
    let (rid, r) = live_reservation(&db);
    let user = db.users[&r.user_id].clone();
    let card = method(&user, "credit_card").id.clone();
    let n = r.passengers.len() as i64;
    let same: Vec<Value> = r
        .flights
        .iter()
        .map(|f| json!({"flight_number": f.flight_number, "date": f.date}))
        .collect();
    // Same flights, same cabin: nothing to pay, no payment row.
    run(
        &mut db,
        "update_reservation_flights",
        json!({"reservation_id": rid, "cabin": r.cabin, "flights": same, "payment_id": card}),
    )
    .unwrap();
    assert_eq!(db.reservations[&rid], r);
    // Replace everything with one bookable flight in another cabin.
    let cabin = if r.cabin == "business" {
        "economy"
    } else {
        "business"
    };
    let (number, date, price) = bookable(&db, cabin, n);
    let paid: i64 = r.flights.iter().map(|f| int(f.price)).sum();
    let new = json!([{"flight_number": number, "date": date}]);
    let cert = method(&user, "certificate").id.clone();
    assert_eq!(
        fails(
            &mut db,
            "update_reservation_flights",
            json!({"reservation_id": rid, "cabin": cabin, "flights": new, "payment_id": cert})
        ),
        "certificate cannot be used to update reservation"
    );
    assert_eq!(
        fails(
            &mut db,
            "update_reservation_flights",
            json!({"reservation_id": rid, "cabin": cabin,
                   "flights": [{"flight_number": number, "date": "2024-05-01"}], "payment_id": card})
        ),
        format!("flight {number} not available on date 2024-05-01")
    );
    run(
        &mut db,
        "update_reservation_flights",
        json!({"reservation_id": rid, "cabin": cabin, "flights": new, "payment_id": card}),
    )
    .unwrap();
    let after = &db.reservations[&rid];
    assert_eq!(after.flights.len(), 1);
    assert_eq!(after.flights[0].price, price);
    // v1 quirk: the cabin is not updated.
    assert_eq!(after.cabin, r.cabin);
    let diff = n * int(price) - n * paid;
    if diff != 0 {
        assert_eq!(after.payment_history.last().unwrap().amount, Num::Int(diff));
    }
}

#[test]
fn passenger_count_cannot_change() {
    let mut db = small_db().clone();
    let (rid, r) = live_reservation(&db);
    let mut more: Vec<Value> = r
        .passengers
        .iter()
        .map(|p| json!({"first_name": p.first_name, "last_name": p.last_name, "dob": p.dob}))
        .collect();
    more.push(passenger("Extra"));
    assert_eq!(
        fails(
            &mut db,
            "update_reservation_passengers",
            json!({"reservation_id": rid, "passengers": more})
        ),
        "number of passengers does not match"
    );
    let mut changed = more.clone();
    changed.pop();
    changed[0] = passenger("Renamed");
    run(
        &mut db,
        "update_reservation_passengers",
        json!({"reservation_id": rid, "passengers": changed}),
    )
    .unwrap();
    assert_eq!(db.reservations[&rid].passengers[0].first_name, "Renamed");
    assert_eq!(db.reservations[&rid].passengers.len(), r.passengers.len());
}

#[test]
fn certificates_get_fixed_ids() {
    let mut db = small_db().clone();
    let uid = db.users.keys().next().unwrap().clone();
    assert_eq!(
        fails(
            &mut db,
            "send_certificate",
            json!({"user_id": "nobody", "amount": 100})
        ),
        "user not found"
    );
    for (i, id) in tools::CERTIFICATE_IDS.iter().enumerate() {
        let amount = 100 * (i as i64 + 1);
        let text = run(
            &mut db,
            "send_certificate",
            json!({"user_id": uid, "amount": amount}),
        )
        .unwrap();
        assert_eq!(
            text,
            format!("Certificate {id} added to user {uid} with amount {amount}.")
        );
        let m = &db.users[&uid].payment_methods[*id];
        assert_eq!(
            (m.source.as_str(), m.amount),
            ("certificate", Some(Num::Int(amount)))
        );
    }
    assert_eq!(
        fails(
            &mut db,
            "send_certificate",
            json!({"user_id": uid, "amount": 5})
        ),
        "too many certificates"
    );
    // A float amount is kept as a float, as in Python.
    let other = db.users.keys().nth(1).unwrap().clone();
    let text = run(
        &mut db,
        "send_certificate",
        json!({"user_id": other, "amount": 50.0}),
    )
    .unwrap();
    assert!(text.ends_with("with amount 50.0."), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Episodes

#[test]
fn protocol_answers_every_call() {
    let mut env = small_env();
    let out = env.reset(3, None).unwrap();
    assert_eq!(out.messages[0].role, Role::System);
    assert!(out.messages[0].content.contains("2024-05-15 15:00 EST"));
    assert_eq!(out.messages[1].role, Role::User);
    // Unknown tool, bad JSON, then a good read, all in one action.
    let action = Action {
        content: String::new(),
        tool_calls: vec![
            ToolCall::new("a", "fly_me_to_the_moon", &json!({})),
            ToolCall {
                id: "b".into(),
                name: "get_user_details".into(),
                arguments: "{oops".into(),
            },
            ToolCall::new("c", "think", &json!({"thought": "hm"})),
        ],
        format_error: None,
    };
    let out = env.step(&action);
    assert_eq!(out.messages.len(), 3);
    assert!(
        out.messages[0]
            .content
            .starts_with("Error: unknown tool `fly_me_to_the_moon`")
    );
    assert!(out.messages[1].content.contains("not valid JSON"));
    assert_eq!(out.messages[2].content, "");
    assert!(!out.terminated);
    let out = env.step(&Action::text("hello?"));
    assert_eq!(out.messages[0].role, Role::User);
    assert!(out.messages[0].content.contains("No tool call"));
}

#[test]
fn info_lists_every_tool() {
    let info = TauAirline::info();
    let names: Vec<&str> = info
        .tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), TOOL_NAMES.len());
    for name in TOOL_NAMES {
        assert!(names.contains(&name), "{name}");
    }
    assert!(
        info.capabilities.expert && info.capabilities.actions && info.capabilities.generates_tasks
    );
    assert_eq!(info.name, "tau-airline");
}

#[test]
fn expert_solves_300_generated_tasks() {
    let mut h = host(json!({}));
    let mut kinds = std::collections::BTreeMap::new();
    let mut splits = std::collections::BTreeMap::new();
    let mut with_outputs = 0;
    for seed in 0..300u64 {
        let out = reset(&mut h, json!({"seed": seed})).unwrap();
        let kind = out.task["meta"]["kind"].as_str().unwrap().to_string();
        *kinds.entry(kind.clone()).or_insert(0) += 1;
        *splits
            .entry(out.task["split"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        if !out.task["outputs"].as_array().unwrap().is_empty() {
            with_outputs += 1;
        }
        assert!(out.task_id.starts_with("tau-airline-generated-"));
        let (last, steps) = play_expert(&mut h);
        assert_eq!(last.reward, 1.0, "seed {seed} ({kind}): {}", last.info);
        assert!(last.success && last.terminated);
        assert_eq!(last.info["reason"], "solved");
        assert_eq!(last.info["gold_errors"], 0, "seed {seed}");
        assert!(steps <= 30);
        // The task JSON replays the same task.
        let again = reset(&mut h, json!({"seed": 999, "task": out.task})).unwrap();
        assert_eq!(again.task_id, out.task_id);
        assert_eq!(again.messages, out.messages);
    }
    for (kind, _) in tasks::KINDS {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no `{kind}` task: {kinds:?}"
        );
    }
    assert!(splits["test"] > 20 && splits["train"] > 150, "{splits:?}");
    assert!(with_outputs > 50, "{with_outputs}");
}

/// The kinds about delayed flights and changes onto one-stop connections.
const DELAY_AND_ONESTOP_KINDS: [&str; 4] = [
    "change_to_onestop",
    "compensate_delay",
    "refuse_delay_compensation",
    "refuse_delay_compensation_without_change",
];

/// The seeds of `0..seeds` by the kind of task they generate on `env`'s DB (drawing a task is
/// cheaper than a reset, so sweeps find their seeds this way).
fn seeds_by_kind(
    env: &mut TauAirline,
    seeds: u64,
) -> std::collections::BTreeMap<&'static str, Vec<u64>> {
    let db = env.initial_db().clone();
    let mut scratch = crate::overlay::Overlay::default();
    let mut by_kind = std::collections::BTreeMap::<&str, Vec<u64>>::new();
    for seed in 0..seeds {
        let draft = tasks::generate_with(&db, seed, &mut scratch).unwrap();
        by_kind.entry(draft.kind).or_default().push(seed);
    }
    by_kind
}

/// The expert's whole episode on the current task, natively.
fn expert_episode(env: &mut TauAirline) -> StepOutput {
    for _ in 0..100 {
        let next = env
            .expert()
            .expect("the expert moves while the episode runs");
        let out = env.step(&next);
        if out.terminated || out.truncated {
            return out;
        }
    }
    panic!("the expert did not finish");
}

/// The gold write of the current task named `tool`.
fn gold_call(env: &TauAirline, tool: &str) -> Option<GoldAction> {
    env.task()?.actions.iter().find(|a| a.name == tool).cloned()
}

/// Asserts that playing the expert with `change` applied fails on the DB.
fn assert_db_mismatch(
    env: &mut TauAirline,
    seed: u64,
    what: &str,
    change: impl Fn(usize, &GoldAction) -> Option<Action>,
) {
    let out = play_perturbed(env, seed, change);
    assert_eq!(out.reward, 0.0, "seed {seed}: {what} was rewarded");
    assert!(
        out.info["reason"]
            .as_str()
            .unwrap()
            .starts_with("db mismatch"),
        "seed {seed}: {what}: {}",
        out.info
    );
}

#[test]
fn expert_solves_delay_and_onestop_tasks_over_many_seeds() {
    for world_seed in [0u64, 3] {
        let mut env = TauAirline::default();
        env.configure(&json!({ "seed": world_seed })).unwrap();
        let by_kind = seeds_by_kind(&mut env, 1200);
        for kind in DELAY_AND_ONESTOP_KINDS {
            let seeds = by_kind.get(kind).cloned().unwrap_or_default();
            assert!(
                seeds.len() >= 15,
                "world {world_seed}: only {} `{kind}` tasks in 1200 seeds",
                seeds.len()
            );
            let mut reservations = std::collections::BTreeSet::new();
            for &seed in &seeds {
                env.reset(seed, None).unwrap();
                let task = env.task().unwrap().clone();
                assert_eq!(task.meta["kind"], kind);
                reservations.insert(task.actions[1].arguments["reservation_id"].to_string());
                let out = expert_episode(&mut env);
                assert_eq!(
                    out.reward, 1.0,
                    "world {world_seed} seed {seed} ({kind}): {}",
                    out.info
                );
                assert_eq!(out.info["gold_errors"], 0);
            }
            // Few customers are regular members flying economy uninsured on a delayed flight.
            let least = if kind == "refuse_delay_compensation" {
                2
            } else {
                3
            };
            assert!(
                reservations.len() >= least,
                "world {world_seed}: `{kind}` tasks use only {reservations:?}"
            );
        }
    }
}

#[test]
fn delay_compensation_is_fifty_per_passenger_after_the_change_and_only_when_eligible() {
    let mut env = TauAirline::default();
    env.configure(&json!({})).unwrap();
    let db = env.initial_db().clone();
    let by_kind = seeds_by_kind(&mut env, 600);
    for kind in &DELAY_AND_ONESTOP_KINDS[1..] {
        assert!(by_kind.get(kind).is_some_and(|s| s.len() >= 5), "{kind}");
        for &seed in &by_kind[kind] {
            env.reset(seed, None).unwrap();
            let task = env.task().unwrap().clone();
            let reservation = &db.reservations[task.actions[1].arguments["reservation_id"]
                .as_str()
                .unwrap()];
            let user = &db.users[&reservation.user_id];
            let delayed = task.actions[2].clone();
            assert_eq!(delayed.name, "get_flight_status");
            let status = &db.flights[delayed.arguments["flight_number"].as_str().unwrap()].dates
                [delayed.arguments["date"].as_str().unwrap()]
            .status;
            assert_eq!(status, "delayed", "seed {seed}");
            let eligible = user.membership != "regular"
                || reservation.insurance == "yes"
                || reservation.cabin == "business";
            let writes: Vec<&str> = task
                .actions
                .iter()
                .map(|a| a.name.as_str())
                .filter(|name| tools::WRITE_TOOLS.contains(name))
                .collect();
            let passengers = reservation.passengers.len() as i64;
            let fifty = json!({"user_id": reservation.user_id, "amount": 50 * passengers});
            match *kind {
                "compensate_delay" => {
                    assert!(eligible, "seed {seed}");
                    // The change or cancellation comes first, then the certificate.
                    assert_eq!(writes.len(), 2, "seed {seed}: {writes:?}");
                    assert!(
                        ["update_reservation_flights", "cancel_reservation"].contains(&writes[0])
                    );
                    assert_eq!(
                        gold_call(&env, "send_certificate").unwrap().arguments,
                        fifty
                    );
                    let at = |name: &str| task.actions.iter().position(|a| a.name == name);
                    let certificate = at("send_certificate").unwrap();
                    // The cancelled-flight amount, and no certificate at all, both fail.
                    let hundred =
                        json!({"user_id": reservation.user_id, "amount": 100 * passengers});
                    assert_db_mismatch(&mut env, seed, "$100 per passenger", |i, _| {
                        (i == certificate).then(|| action("send_certificate", hundred.clone()))
                    });
                    assert_db_mismatch(&mut env, seed, "no certificate", |i, _| {
                        (i == certificate).then(|| action("think", json!({"thought": "no"})))
                    });
                    // The certificate alone, without the change or cancellation, fails too.
                    let write = at(writes[0]).unwrap();
                    assert_db_mismatch(&mut env, seed, "no change", |i, _| {
                        (i == write).then(|| action("think", json!({"thought": "keep it"})))
                    });
                }
                "refuse_delay_compensation" => {
                    assert!(!eligible, "seed {seed}");
                    assert!(!writes.contains(&"send_certificate"), "seed {seed}");
                    assert_db_mismatch(&mut env, seed, "a $50 certificate", |i, _| {
                        (i == 0).then(|| action("send_certificate", fifty.clone()))
                    });
                }
                _ => {
                    assert!(eligible, "seed {seed}");
                    assert!(writes.is_empty(), "seed {seed}: {writes:?}");
                    assert_db_mismatch(&mut env, seed, "a $50 certificate", |i, _| {
                        (i == 0).then(|| action("send_certificate", fifty.clone()))
                    });
                }
            }
        }
    }
}

#[test]
fn onestop_changes_book_the_named_connection() {
    let mut env = TauAirline::default();
    env.configure(&json!({})).unwrap();
    let db = env.initial_db().clone();
    let seeds = seeds_by_kind(&mut env, 600)["change_to_onestop"].clone();
    let mut other_connections = 0;
    for &seed in &seeds {
        env.reset(seed, None).unwrap();
        let task = env.task().unwrap().clone();
        let search = gold_call(&env, "search_onestop_flight").expect("a one-stop search");
        let update = gold_call(&env, "update_reservation_flights").expect("a flight update");
        let reservation = &db.reservations[update.arguments["reservation_id"].as_str().unwrap()];
        let new_flights = update.arguments["flights"].as_array().unwrap().clone();
        assert_eq!(
            new_flights.len(),
            reservation.flights.len() + 1,
            "seed {seed}"
        );
        // The connection replaces one leg: same endpoints, through a stop.
        let leg = reservation
            .flights
            .iter()
            .position(|f| {
                f.origin == search.arguments["origin"]
                    && f.destination == search.arguments["destination"]
            })
            .unwrap();
        let (first, second) = (&new_flights[leg], &new_flights[leg + 1]);
        let (f1, f2) = (
            &db.flights[first["flight_number"].as_str().unwrap()],
            &db.flights[second["flight_number"].as_str().unwrap()],
        );
        assert_eq!(f1.origin, reservation.flights[leg].origin);
        assert_eq!(f1.destination, f2.origin);
        assert_eq!(f2.destination, reservation.flights[leg].destination);
        assert_eq!(first["date"], search.arguments["date"]);
        assert!(
            task.instruction
                .contains(search.arguments["date"].as_str().unwrap())
        );
        let position = task
            .actions
            .iter()
            .position(|a| a.name == "update_reservation_flights")
            .unwrap();
        let with_flights = |flights: Vec<Value>| {
            let mut arguments = update.arguments.clone();
            arguments["flights"] = json!(flights);
            action("update_reservation_flights", arguments)
        };
        // Only the first leg of the connection.
        let mut truncated = new_flights.clone();
        truncated.remove(leg + 1);
        assert_db_mismatch(&mut env, seed, "half the connection", |i, _| {
            (i == position).then(|| with_flights(truncated.clone()))
        });
        // Another connection of the same search.
        let found: Value = serde_json::from_str(
            &tools::call(
                &mut db.clone(),
                "search_onestop_flight",
                search.arguments.as_object().unwrap(),
            )
            .unwrap()
            .unwrap(),
        )
        .unwrap();
        let other = found.as_array().unwrap().iter().find(|pair| {
            pair[0]["flight_number"] != first["flight_number"]
                || pair[1]["flight_number"] != second["flight_number"]
        });
        if let Some(pair) = other {
            let mut flights = new_flights.clone();
            for k in 0..2 {
                flights[leg + k] = json!({
                    "flight_number": pair[k]["flight_number"],
                    "date": pair[k]["date"],
                });
            }
            assert_db_mismatch(&mut env, seed, "another connection", |i, _| {
                (i == position).then(|| with_flights(flights.clone()))
            });
            other_connections += 1;
        }
    }
    assert!(
        seeds.len() >= 10 && other_connections >= 5,
        "{} tasks, {other_connections} with another connection",
        seeds.len()
    );
}

#[test]
fn generated_tasks_are_deterministic() {
    let mut a = host(json!({}));
    let mut b = host(json!({}));
    for seed in [0u64, 1, 17, 123456789] {
        let x = a
            .reset(json!({"seed": seed}).to_string().as_bytes())
            .to_vec();
        let y = b
            .reset(json!({"seed": seed}).to_string().as_bytes())
            .to_vec();
        assert_eq!(x, y);
        loop {
            let e = expert(&mut a).unwrap();
            let bytes = serde_json::to_vec(&e).unwrap();
            let x = a.step(&bytes).to_vec();
            let y = b.step(&bytes).to_vec();
            assert_eq!(x, y);
            let out: Envelope<StepOutput> = serde_json::from_slice(&x).unwrap();
            let Envelope::Ok(out) = out else { panic!() };
            if out.terminated {
                break;
            }
        }
    }
    let t1 = reset(&mut a, json!({"seed": 5})).unwrap();
    let t2 = reset(&mut a, json!({"seed": 6})).unwrap();
    assert_ne!(t1.task_id, t2.task_id);
}

/// Plays the expert's plan with one change, returning the final step.
fn play_perturbed(
    env: &mut TauAirline,
    seed: u64,
    change: impl Fn(usize, &GoldAction) -> Option<Action>,
) -> StepOutput {
    env.reset(seed, None).unwrap();
    let plan = expert_plan(env.task().unwrap());
    for (i, g) in plan.iter().enumerate() {
        let action = change(i, g).unwrap_or_else(|| g.to_action());
        let out = env.step(&action);
        if out.terminated || out.truncated {
            return out;
        }
    }
    env.step(&action(END_CONVERSATION, json!({})))
}

#[test]
fn perturbed_endings_get_zero_with_a_reason() {
    let mut env = small_env();
    let mut checked = (0, 0, 0);
    for seed in 0..60u64 {
        env.reset(seed, None).unwrap();
        let task = env.task().unwrap().clone();
        let writes = task
            .actions
            .iter()
            .filter(|a| tools::WRITE_TOOLS.contains(&a.name.as_str()))
            .count();
        // Ending at once: a task with a write fails on the DB.
        if writes > 0 {
            let out = play_perturbed(&mut env, seed, |_, _| {
                Some(action(END_CONVERSATION, json!({})))
            });
            assert_eq!(out.reward, 0.0);
            assert!(
                out.info["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("db mismatch"),
                "{}",
                out.info
            );
            assert!(!out.info["db_diff"].as_array().unwrap().is_empty());
            checked.0 += 1;
        }
        // Skipping the respond: outputs missing.
        if !task.outputs.is_empty() {
            let out = play_perturbed(&mut env, seed, |_, g| {
                (g.name == RESPOND).then(|| action("think", json!({"thought": "skip"})))
            });
            assert_eq!(out.reward, 0.0);
            assert_eq!(out.info["reason"], "outputs missing", "{}", out.info);
            assert_eq!(out.info["outputs_missing"], json!(task.outputs));
            checked.1 += 1;
        }
        // An extra write (cancelling some other reservation) breaks the DB.
        let other = env
            .initial_db()
            .reservations
            .keys()
            .find(|k| !task.instruction.contains(k.as_str()))
            .unwrap()
            .clone();
        let out = play_perturbed(&mut env, seed, |i, _| {
            (i == 0).then(|| action("cancel_reservation", json!({"reservation_id": other})))
        });
        assert_eq!(out.reward, 0.0, "seed {seed}");
        assert!(
            out.info["reason"]
                .as_str()
                .unwrap()
                .starts_with("db mismatch")
        );
        checked.2 += 1;
    }
    assert!(
        checked.0 > 20 && checked.1 > 5 && checked.2 == 60,
        "{checked:?}"
    );
}

#[test]
fn transfer_ends_and_is_verified() {
    let mut env = small_env();
    env.reset(0, None).unwrap();
    let out = env.step(&action(
        TRANSFER_TO_HUMAN_AGENTS,
        json!({"summary": "help"}),
    ));
    assert!(out.terminated);
    assert_eq!(out.messages[0].content, "Transfer successful");
    assert_eq!(out.info["ended_by"], "transfer_to_human_agents");
    let out = env.step(&action(END_CONVERSATION, json!({})));
    assert!(out.terminated && out.reward == 0.0);
}

#[test]
fn turn_limit_truncates() {
    let mut env = TauAirline::default();
    env.configure(&json!({"max_turns": 2, "users": 30, "flights": 30, "reservations": 60}))
        .unwrap();
    env.reset(1, None).unwrap();
    let think = action("think", json!({"thought": "..."}));
    assert!(!env.step(&think).truncated);
    let out = env.step(&think);
    assert!(out.truncated && !out.terminated);
    assert_eq!(out.info["reason"], "turn limit reached");
    assert!(env.expert().is_none());
}

#[test]
fn actions_are_bounded_and_include_the_expert() {
    let mut env = small_env();
    for seed in 0..20 {
        env.reset(seed, None).unwrap();
        loop {
            let actions = env.actions();
            let next = env.expert().unwrap();
            assert!(actions.len() <= MAX_ACTIONS);
            assert_eq!(actions[0], next);
            assert!(actions.contains(&action(END_CONVERSATION, json!({}))));
            assert!(actions.len() >= 3);
            if env.step(&next).terminated {
                break;
            }
        }
        assert!(env.actions().is_empty());
    }
}

#[test]
fn task_validation_names_the_problem() {
    let mut env = small_env();
    let err = env
        .reset(
            0,
            Some(json!({"instruction": "x", "actions": [{"name": "teleport", "arguments": {}}]})),
        )
        .unwrap_err();
    assert!(err.contains("unknown tool `teleport`"), "{err}");
    let err = env.reset(0, Some(json!({"actions": []}))).unwrap_err();
    assert!(err.contains("`instruction`"), "{err}");
    let err = env.reset(0, Some(json!([1]))).unwrap_err();
    assert!(err.contains("JSON object"), "{err}");
    // A hand-written task: cancel a reservation and say its id.
    let rid = env.initial_db().reservations.keys().next().unwrap().clone();
    let task = json!({"instruction": format!("Cancel {rid}."),
                      "actions": [{"name": "cancel_reservation", "arguments": {"reservation_id": rid}}],
                      "outputs": [rid]});
    let out = env.reset(0, Some(task)).unwrap();
    assert!(out.task_id.starts_with("tau-airline-generated-"));
    env.step(&action(
        "cancel_reservation",
        json!({"reservation_id": rid}),
    ));
    env.step(&action(
        RESPOND,
        json!({"content": format!("Done, {} is cancelled", rid.to_lowercase())}),
    ));
    let out = env.step(&action(END_CONVERSATION, json!({})));
    assert_eq!(out.reward, 1.0, "{}", out.info);
}

#[test]
fn passenger_struct_orders_fields_like_the_original() {
    let p = Passenger {
        first_name: "A".into(),
        last_name: "B".into(),
        dob: "2000-01-01".into(),
    };
    assert_eq!(
        tau_common::dumps(&p),
        r#"{"first_name": "A", "last_name": "B", "dob": "2000-01-01"}"#
    );
}

#[test]
fn reset_restores_the_initial_db() {
    let mut env = small_env();
    let initial = env.initial_db().clone();
    let mut wrote = 0;
    for seed in 0..40 {
        env.reset(seed, None).unwrap();
        assert!(
            *env.db() == initial,
            "seed {seed}: the episode did not start from the initial DB"
        );
        let before = env.db().clone();
        while let Some(next) = env.expert() {
            env.step(&next);
        }
        if *env.db() != before {
            wrote += 1;
        }
    }
    assert!(wrote > 20, "{wrote}");
    // A new config starts from its own DB.
    env.configure(&json!({"seed": 8, "users": 20, "flights": 20, "reservations": 30}))
        .unwrap();
    env.reset(0, None).unwrap();
    assert!(*env.db() != initial);
    assert_eq!(env.db(), &world::generate_db(&env.config().generator));
}

#[test]
fn random_calls_never_panic_and_errors_change_nothing() {
    let mut env = small_env();
    env.reset(0, None).unwrap();
    let db = env.db().clone();
    let (uid, user) = db.users.iter().next().unwrap();
    let rid = user
        .reservations
        .first()
        .cloned()
        .unwrap_or_else(|| "NOPE00".into());
    let pid = user.payment_methods.keys().next().unwrap().clone();
    let (number, date, _) = bookable(&db, "economy", 1);
    let values = [
        json!(uid),
        json!(rid),
        json!(pid),
        json!(number),
        json!(date),
        json!("economy"),
        json!("round_trip"),
        json!("yes"),
        json!(""),
        json!("é😀"),
        json!(-1),
        json!(0),
        json!(3),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-1e300),
        json!(2.5),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!([{"flight_number": number, "date": date}]),
        json!([{"first_name": "A", "last_name": "B", "dob": "2000-01-01"}]),
        json!([{"payment_id": pid, "amount": 100}]),
        json!([[[[1]]]]),
    ];
    let keys = [
        "user_id",
        "reservation_id",
        "origin",
        "destination",
        "date",
        "flight_number",
        "cabin",
        "flight_type",
        "flights",
        "passengers",
        "payment_methods",
        "payment_id",
        "total_baggages",
        "nonfree_baggages",
        "insurance",
        "amount",
        "expression",
        "thought",
        "content",
        "summary",
    ];
    let mut rng = sandgym_sdk::Rng::new(42);
    let mut errors = 0;
    for i in 0..4000 {
        let name = if rng.bernoulli(0.05) {
            "nonsense"
        } else {
            *rng.choose(&TOOL_NAMES[..15])
        };
        let mut args = serde_json::Map::new();
        for _ in 0..rng.range(0, 6) {
            args.insert(rng.choose(&keys).to_string(), rng.choose(&values).clone());
        }
        let before = env.db().clone();
        let call = ToolCall::new(format!("c{i}"), name, &Value::Object(args));
        let out = env.step(&Action {
            content: String::new(),
            tool_calls: vec![call],
            format_error: None,
        });
        assert_eq!(out.messages.len(), 1);
        if out.messages[0].content.starts_with("Error:") {
            errors += 1;
            assert!(
                *env.db() == before,
                "a failing call changed the DB: {:?}",
                out.messages[0]
            );
        }
        if out.terminated || out.truncated {
            env.reset(i, None).unwrap();
        }
    }
    assert!(errors > 2000, "{errors}");
}

#[test]
fn episodes_write_only_their_overlay() {
    let mut env = small_env();
    let initial = env.initial_db().clone();
    let mut wrote = 0;
    for seed in 0..30 {
        env.reset(seed, None).unwrap();
        assert!(env.db.is_empty(), "seed {seed}: reset empties the overlay");
        // A failing write copies nothing: every check comes before the first write.
        let (uid, user) = initial.users.iter().next().unwrap();
        let rid = user.reservations.first().cloned().unwrap_or_default();
        for (name, args) in [
            (
                "update_reservation_baggages",
                json!({"reservation_id": rid, "total_baggages": 1, "nonfree_baggages": 1,
                       "payment_id": "nope"}),
            ),
            (
                "update_reservation_passengers",
                json!({"reservation_id": rid, "passengers": []}),
            ),
        ] {
            let out = env.step(&Action::tool(name, &args));
            assert!(out.messages[0].content.starts_with("Error:"), "{uid}");
        }
        assert!(
            env.db.is_empty(),
            "seed {seed}: a failing call copied a record"
        );
        while let Some(next) = env.expert() {
            env.step(&next);
        }
        if !env.db.is_empty() {
            wrote += 1;
            assert!(*env.db() != initial);
        }
        assert!(!env.gold.is_empty() || *env.gold_db().0 == initial);
        assert_eq!(env.initial.as_ref(), Some(&initial), "seed {seed}");
    }
    assert!(wrote > 10, "{wrote}");
}
