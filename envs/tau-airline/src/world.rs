//! The procedural airline DB: users, flights and reservations of the same shape as tau-bench v1's,
//! drawn from a seed with sandgym's own word lists (no original data).
//!
//! The world: `airports` airports drawn from [`crate::tools::AIRPORTS`]; `flights` daily flights
//! `HAT001`… on routes that connect every airport both ways, each with a schedule and, for every day of
//! May 2024, a status consistent with "now" (2024-05-15 15:00 EST): landed or cancelled before today,
//! landed / flying / on time / delayed / cancelled today, bookable (seats and prices) after today with
//! a few cancellations. `users` users with credit cards, gift cards and certificates, a membership and
//! saved passengers; `reservations` one-way or round-trip reservations (direct or one-stop) with
//! passengers, one payment, bags and insurance, a few of them cancelled.

use std::collections::{BTreeMap, BTreeSet};

use sandgym_sdk::Rng;

use crate::db::{
    Address, AddressOrder, CABINS, Db, Flight, FlightDate, Name, Num, Passenger, Payment,
    PaymentMethod, PerCabin, Reservation, ReservationFlight, SegmentOrder, User,
};
use crate::tools::{AIRPORTS, RESERVATION_IDS, booking_total};

/// Generator knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    pub users: usize,
    pub airports: usize,
    pub flights: usize,
    pub reservations: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 0,
            users: 200,
            airports: 20,
            flights: 150,
            reservations: 600,
        }
    }
}

pub const DAYS: u32 = 30;
/// The most airports a generated world can have.
pub const MAX_AIRPORTS: usize = AIRPORTS.len();
/// Today's day of May.
pub const TODAY_DAY: u32 = 15;
/// The share of generated reservations that depart today on a flight that has not left yet (on
/// time, delayed or cancelled); the other reservations depart on a uniform day of May.
const TODAY_SHARE: f64 = 0.1;
/// "Now" in minutes since midnight.
pub const NOW_MINUTE: i64 = 15 * 60;

const FIRST_NAMES: [&str; 48] = [
    "Ada", "Alma", "Amir", "Anika", "Arlo", "Basil", "Beatriz", "Bodhi", "Carmen", "Cyrus",
    "Dalia", "Dmitri", "Edith", "Elio", "Esme", "Farah", "Felix", "Gideon", "Greta", "Hana",
    "Hugo", "Ines", "Ivo", "Jonah", "Juno", "Kai", "Keira", "Lars", "Leona", "Malik", "Maren",
    "Milo", "Nadia", "Nico", "Odile", "Omar", "Petra", "Quinn", "Rafael", "Rhea", "Silas", "Soren",
    "Talia", "Tobias", "Uma", "Viktor", "Wren", "Yara",
];
const LAST_NAMES: [&str; 40] = [
    "Abara",
    "Bellamy",
    "Castell",
    "Dorsey",
    "Ekwueme",
    "Falk",
    "Garrow",
    "Halvorsen",
    "Ibarra",
    "Jaffe",
    "Kowal",
    "Lindqvist",
    "Moreau",
    "Nakashima",
    "Okafor",
    "Pelletier",
    "Quiroga",
    "Rasmussen",
    "Sato",
    "Thorne",
    "Ueda",
    "Varga",
    "Whitlock",
    "Xu",
    "Yilmaz",
    "Zeller",
    "Ashby",
    "Brandt",
    "Cordova",
    "Delgado",
    "Esposito",
    "Fairbank",
    "Gallo",
    "Hargrove",
    "Iverson",
    "Jovanovic",
    "Kerrigan",
    "Lachance",
    "Mbeki",
    "Novak",
];
const STREETS: [&str; 16] = [
    "Alder",
    "Birch",
    "Cedar",
    "Dogwood",
    "Elm",
    "Foxglove",
    "Granite",
    "Harbor",
    "Juniper",
    "Kestrel",
    "Lakeview",
    "Maple",
    "Orchard",
    "Pinecrest",
    "Quarry",
    "Riverside",
];
const STREET_KINDS: [&str; 6] = ["Street", "Avenue", "Road", "Lane", "Drive", "Court"];
const CITIES: [(&str, &str, u32); 16] = [
    ("Albany", "NY", 122),
    ("Boise", "ID", 837),
    ("Burlington", "VT", 54),
    ("Chattanooga", "TN", 374),
    ("Dayton", "OH", 454),
    ("Eugene", "OR", 974),
    ("Fresno", "CA", 937),
    ("Greenville", "SC", 296),
    ("Lansing", "MI", 489),
    ("Madison", "WI", 537),
    ("Omaha", "NE", 681),
    ("Provo", "UT", 846),
    ("Reno", "NV", 895),
    ("Spokane", "WA", 992),
    ("Tucson", "AZ", 857),
    ("Wichita", "KS", 672),
];

/// `2024-05-DD` for a day of May (1-based).
pub fn date(day: u32) -> String {
    format!("2024-05-{day:02}")
}

/// A timestamp `2024-MM-DDTHH:MM:00` for `minute` minutes after midnight of May `day` (may spill
/// into the next or previous days; May has 31 days, April 30).
pub fn timestamp(day: u32, minute: i64) -> String {
    let total = (i64::from(day) - 1) * 1440 + minute;
    let day_index = total.div_euclid(1440);
    let m = total.rem_euclid(1440);
    let (month, dom) = if day_index < 0 {
        (4, 30 + day_index + 1)
    } else if day_index >= 31 {
        (6, day_index - 31 + 1)
    } else {
        (5, day_index + 1)
    };
    format!("2024-{month:02}-{dom:02}T{:02}:{:02}:00", m / 60, m % 60)
}

fn clock(minute: i64) -> String {
    let m = minute.rem_euclid(1440);
    let text = format!("{:02}:{:02}:00", m / 60, m % 60);
    if minute >= 1440 {
        format!("{text}+1")
    } else {
        text
    }
}

/// A flight's schedule in minutes after midnight of its departure day.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    departure: i64,
    arrival: i64,
}

/// Whether a flight on this schedule is still on the ground today (on time, delayed or cancelled)
/// rather than flying or landed; it leaves 20 minutes after its departure time at the latest.
fn yet_to_leave_today(s: Schedule) -> bool {
    s.departure + 20 > NOW_MINUTE
}

fn status_for(rng: &mut Rng, day: u32, s: Schedule, fares: &PerCabin<Num>) -> FlightDate {
    let jitter = |rng: &mut Rng, spread: i64| rng.range(-spread, spread);
    if day < TODAY_DAY || (day == TODAY_DAY && s.arrival + 30 <= NOW_MINUTE) {
        if rng.bernoulli(0.09) {
            return FlightDate::status_only("cancelled");
        }
        let dep = s.departure + jitter(rng, 30);
        let arr = s.arrival + jitter(rng, 35);
        let mut d = FlightDate::status_only("landed");
        d.actual_departure_time_est = Some(timestamp(day, dep));
        d.actual_arrival_time_est = Some(timestamp(day, arr.max(dep + 30)));
        return d;
    }
    if day == TODAY_DAY {
        if !yet_to_leave_today(s) {
            let dep = s.departure + jitter(rng, 20);
            let mut d = FlightDate::status_only("flying");
            d.actual_departure_time_est = Some(timestamp(day, dep));
            d.estimated_arrival_time_est = Some(timestamp(day, s.arrival + jitter(rng, 25)));
            return d;
        }
        let roll = rng.unit();
        if roll < 0.08 {
            return FlightDate::status_only("cancelled");
        }
        let (status, delay) = if roll < 0.45 {
            ("delayed", rng.range(45, 200))
        } else {
            ("on time", jitter(rng, 15))
        };
        let mut d = FlightDate::status_only(status);
        d.estimated_departure_time_est = Some(timestamp(day, s.departure + delay));
        d.estimated_arrival_time_est = Some(timestamp(day, s.arrival + delay));
        return d;
    }
    if rng.bernoulli(0.025) {
        return FlightDate::status_only("cancelled");
    }
    let seats = |rng: &mut Rng| rng.range(0, 20);
    let price = |rng: &mut Rng, base: Num| {
        Num::Int((base.as_f64() * (0.7 + 0.6 * rng.unit())).round() as i64)
    };
    let mut d = FlightDate::status_only("available");
    d.available_seats = Some(PerCabin {
        basic_economy: seats(rng),
        economy: seats(rng),
        business: seats(rng),
    });
    d.prices = Some(PerCabin {
        basic_economy: price(rng, fares.basic_economy),
        economy: price(rng, fares.economy),
        business: price(rng, fares.business),
    });
    d
}

/// Free checked bags per passenger (tau2 policy: regular 0/1/2, silver 1/2/3, gold 2/3/4 for basic
/// economy / economy / business).
pub fn free_bags(membership: &str, cabin: &str) -> i64 {
    let tier = match membership {
        "silver" => 1,
        "gold" => 2,
        _ => 0,
    };
    let cabin = match cabin {
        "basic_economy" => 0,
        "economy" => 1,
        _ => 2,
    };
    tier + cabin
}

struct Gen {
    rng: Rng,
    used_ids: BTreeSet<String>,
}

impl Gen {
    fn digits(&mut self, n: u32) -> String {
        let lo = 10i64.pow(n - 1);
        self.rng.range(lo, lo * 10 - 1).to_string()
    }

    /// A fresh id `prefix` + 7 digits, unique across the DB and never one the tools create.
    fn payment_id(&mut self, prefix: &str) -> String {
        loop {
            let id = format!("{prefix}_{}", self.digits(7));
            if !id.ends_with("322132")
                && !crate::tools::CERTIFICATE_IDS.contains(&id.as_str())
                && self.used_ids.insert(id.clone())
            {
                return id;
            }
        }
    }

    fn reservation_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        loop {
            let id: String = (0..6).map(|_| *self.rng.choose(ALPHABET) as char).collect();
            if !RESERVATION_IDS.contains(&id.as_str()) && self.used_ids.insert(id.clone()) {
                return id;
            }
        }
    }

    fn dob(&mut self, from: i64, to: i64) -> String {
        format!(
            "{}-{:02}-{:02}",
            self.rng.range(from, to),
            self.rng.range(1, 12),
            self.rng.range(1, 28)
        )
    }

    fn person(&mut self) -> Passenger {
        Passenger {
            first_name: self.rng.choose(&FIRST_NAMES).to_string(),
            last_name: self.rng.choose(&LAST_NAMES).to_string(),
            dob: self.dob(1940, 2015),
        }
    }
}

/// Builds a DB from the knobs. Deterministic in `config`.
pub fn generate_db(config: &GenConfig) -> Db {
    let mut g = Gen {
        rng: Rng::new(config.seed ^ 0x7a0_a1e1_0000_0000),
        used_ids: BTreeSet::new(),
    };
    let mut db = Db::default();

    // Airports and routes: a ring both ways (so every airport is reachable), then random extras.
    let mut codes: Vec<&str> = AIRPORTS.iter().map(|(c, _)| *c).collect();
    g.rng.shuffle(&mut codes);
    codes.truncate(config.airports.clamp(2, AIRPORTS.len()));
    codes.sort();
    let n = codes.len();
    let mut order: Vec<usize> = (0..n).collect();
    g.rng.shuffle(&mut order);
    let mut routes: Vec<(usize, usize)> = Vec::new();
    for i in 0..n {
        let (a, b) = (order[i], order[(i + 1) % n]);
        if a != b {
            routes.push((a, b));
            routes.push((b, a));
        }
    }
    routes.truncate(config.flights);
    while routes.len() < config.flights {
        let a = g.rng.below(n as u64) as usize;
        let b = g.rng.below(n as u64) as usize;
        if a == b {
            continue;
        }
        routes.push((a, b));
        if routes.len() < config.flights && g.rng.bernoulli(0.6) {
            routes.push((b, a));
        }
    }
    g.rng.shuffle(&mut routes);

    // Symmetric block time per airport pair, in half hours (1 to 6.5 hours).
    let mut block: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    let mut schedules = Vec::with_capacity(routes.len());
    let mut fares = Vec::with_capacity(routes.len());
    for (i, &(a, b)) in routes.iter().enumerate() {
        let key = (a.min(b), a.max(b));
        let halves = *block.entry(key).or_insert_with(|| g.rng.range(2, 13));
        let departure = g.rng.range(0, 23) * 60;
        let s = Schedule {
            departure,
            arrival: departure + halves * 30,
        };
        let hours = halves as f64 / 2.0;
        let f = PerCabin {
            basic_economy: Num::Int((40.0 + 12.0 * hours) as i64 + g.rng.range(0, 30)),
            economy: Num::Int((90.0 + 25.0 * hours) as i64 + g.rng.range(0, 60)),
            business: Num::Int((220.0 + 60.0 * hours) as i64 + g.rng.range(0, 200)),
        };
        let number = format!("HAT{:03}", i + 1);
        let dates = (1..=DAYS)
            .map(|day| (date(day), status_for(&mut g.rng, day, s, &f)))
            .collect();
        db.flights.insert(
            number.clone(),
            Flight {
                flight_number: number,
                origin: codes[a].to_string(),
                destination: codes[b].to_string(),
                scheduled_departure_time_est: clock(s.departure),
                scheduled_arrival_time_est: clock(s.arrival),
                dates,
            },
        );
        schedules.push(s);
        fares.push(f);
    }

    // Users.
    let mut user_ids = Vec::with_capacity(config.users);
    while user_ids.len() < config.users {
        let first = *g.rng.choose(&FIRST_NAMES);
        let last = *g.rng.choose(&LAST_NAMES);
        let digits = g.digits(4);
        let user_id = format!("{}_{}_{digits}", first.to_lowercase(), last.to_lowercase());
        if !g.used_ids.insert(user_id.clone()) {
            continue;
        }
        let mut methods = BTreeMap::new();
        let cards = g.rng.range(0, 2);
        let gifts = g.rng.range(0, 2);
        let certs = g.rng.range(0, 2);
        let cards = if cards + gifts + certs == 0 { 1 } else { cards };
        for _ in 0..cards {
            let id = g.payment_id("credit_card");
            let brand = *g.rng.choose(&["visa", "mastercard"]);
            let last_four = format!("{:04}", g.rng.range(0, 9999));
            methods.insert(
                id.clone(),
                PaymentMethod {
                    source: "credit_card".into(),
                    brand: Some(brand.into()),
                    last_four: Some(last_four),
                    amount: None,
                    id,
                },
            );
        }
        for _ in 0..gifts {
            let id = g.payment_id("gift_card");
            let amount = Num::Int(g.rng.range(0, 350));
            methods.insert(
                id.clone(),
                PaymentMethod {
                    source: "gift_card".into(),
                    brand: None,
                    last_four: None,
                    amount: Some(amount),
                    id,
                },
            );
        }
        for _ in 0..certs {
            let id = g.payment_id("certificate");
            let amount = Num::Int(*g.rng.choose(&[100, 150, 200, 250, 500]));
            methods.insert(
                id.clone(),
                PaymentMethod {
                    source: "certificate".into(),
                    brand: None,
                    last_four: None,
                    amount: Some(amount),
                    id,
                },
            );
        }
        let (city, state, zip) = *g.rng.choose(&CITIES);
        let saved = (0..g.rng.range(0, 2)).map(|_| g.person()).collect();
        let membership = match g.rng.below(100) {
            0..30 => "regular",
            30..65 => "silver",
            _ => "gold",
        };
        let user = User {
            user_id: None,
            name: Name {
                first_name: first.into(),
                last_name: last.into(),
            },
            address: Address {
                address1: format!(
                    "{} {} {}",
                    g.rng.range(10, 9999),
                    g.rng.choose(&STREETS),
                    g.rng.choose(&STREET_KINDS)
                ),
                address2: format!(
                    "{} {}",
                    g.rng.choose(&["Suite", "Apt", "Unit"]),
                    g.rng.range(1, 999)
                ),
                city: city.into(),
                country: "USA".into(),
                state: state.into(),
                zip: format!("{zip:03}{:02}", g.rng.range(0, 99)),
                order: AddressOrder::File,
            },
            email: format!(
                "{}.{}{digits}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            ),
            dob: g.dob(1945, 2004),
            payment_methods: methods.into_iter().collect(),
            saved_passengers: saved,
            membership: membership.into(),
            reservations: Vec::new(),
        };
        db.users.insert(user_id.clone(), user);
        user_ids.push(user_id);
    }
    if user_ids.is_empty() {
        return db;
    }

    // Routes by origin, for itineraries.
    let flight_numbers: Vec<String> = db.flights.keys().cloned().collect();
    let by_origin = |origin: usize| -> Vec<usize> {
        routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.0 == origin)
            .map(|(i, _)| i)
            .collect()
    };
    let origins: Vec<Vec<usize>> = (0..n).map(by_origin).collect();

    // An itinerary from airport `a` departing on `day`: one or two flights (index, day). Today's
    // itineraries start with a flight that has not left yet.
    let itinerary = |rng: &mut Rng, a: usize, day: u32, stops: bool| -> Option<Vec<(usize, u32)>> {
        let firsts: Vec<usize> = origins
            .get(a)?
            .iter()
            .copied()
            .filter(|&j| day != TODAY_DAY || yet_to_leave_today(schedules[j]))
            .collect();
        if firsts.is_empty() {
            return None;
        }
        let first = *rng.choose(&firsts);
        if !stops {
            return Some(vec![(first, day)]);
        }
        let s1 = schedules[first];
        let (day2, ready) = if s1.arrival >= 1440 {
            (day + 1, s1.arrival - 1440)
        } else {
            (day, s1.arrival)
        };
        if day2 > DAYS {
            return None;
        }
        let next: Vec<usize> = origins[routes[first].1]
            .iter()
            .copied()
            .filter(|&j| routes[j].1 != a && schedules[j].departure >= ready + 45)
            .collect();
        if next.is_empty() {
            return None;
        }
        Some(vec![(first, day), (*rng.choose(&next), day2)])
    };

    for _ in 0..config.reservations {
        let user_id = g.rng.choose(&user_ids).clone();
        let origin = g.rng.below(n as u64) as usize;
        // Some reservations fly today, so that today's delays and departures concern someone.
        let day = if g.rng.bernoulli(TODAY_SHARE) {
            TODAY_DAY
        } else {
            g.rng.range(1, i64::from(DAYS)) as u32
        };
        let stops = g.rng.bernoulli(0.35);
        let Some(out) = itinerary(&mut g.rng, origin, day, stops) else {
            continue;
        };
        let last = out.last().expect("non-empty").0;
        let destination = routes[last].1;
        let mut segments = out.clone();
        let mut round_trip = false;
        if g.rng.bernoulli(0.45) {
            let back_day = out.last().expect("non-empty").1 + g.rng.range(1, 6) as u32;
            if back_day <= DAYS {
                // A return itinerary that really ends at the origin.
                for _ in 0..8 {
                    let stops = g.rng.bernoulli(0.35);
                    if let Some(back) = itinerary(&mut g.rng, destination, back_day, stops)
                        && routes[back.last().expect("non-empty").0].1 == origin
                    {
                        segments.extend(back);
                        round_trip = true;
                        break;
                    }
                }
            }
        }
        let cabin = *g.rng.choose(&CABINS);
        let user = &db.users[&user_id];
        let mut passengers = Vec::new();
        if g.rng.bernoulli(0.75) {
            passengers.push(Passenger {
                first_name: user.name.first_name.clone(),
                last_name: user.name.last_name.clone(),
                dob: user.dob.clone(),
            });
        }
        let extra = match g.rng.below(10) {
            0..5 => 0,
            5..8 => 1,
            8 => 2,
            _ => 3,
        };
        for k in 0..extra.max(usize::from(passengers.is_empty())) {
            let p = match user.saved_passengers.get(k) {
                Some(p) if g.rng.bernoulli(0.7) => p.clone(),
                _ => g.person(),
            };
            if !passengers.contains(&p) {
                passengers.push(p);
            }
        }
        let flights: Vec<ReservationFlight> = segments
            .iter()
            .map(|&(i, d)| {
                let number = &flight_numbers[i];
                let status = &db.flights[number].dates[&date(d)];
                let price = match status.prices {
                    Some(p) => p.get(cabin).expect("known cabin"),
                    None => fares[i].get(cabin).expect("known cabin"),
                };
                ReservationFlight {
                    origin: codes[routes[i].0].to_string(),
                    destination: codes[routes[i].1].to_string(),
                    flight_number: number.clone(),
                    date: date(d),
                    price,
                    order: SegmentOrder::File,
                }
            })
            .collect();
        let free = free_bags(&user.membership, cabin) * passengers.len() as i64;
        let total_baggages = g.rng.range(0, passengers.len() as i64 * 2);
        let nonfree_baggages = (total_baggages - free).max(0);
        let insurance = g.rng.bernoulli(0.5);
        let total = booking_total(&flights, passengers.len(), insurance, nonfree_baggages);
        // Pay with a credit card when there is one, else the first stored method.
        let payment_id = user
            .payment_methods
            .values()
            .find(|m| m.source == "credit_card")
            .or_else(|| user.payment_methods.values().next())
            .map(|m| m.id.clone())
            .expect("every user has a payment method");
        // Booked before departure and before now; some within the last 24 hours.
        let departure_minute = schedules[segments[0].0].departure;
        let latest = ((i64::from(day) - 1) * 1440 + departure_minute - 120)
            .min((i64::from(TODAY_DAY) - 1) * 1440 + NOW_MINUTE);
        let created =
            if latest > (i64::from(TODAY_DAY) - 2) * 1440 + NOW_MINUTE && g.rng.bernoulli(0.15) {
                latest - g.rng.range(0, 1380)
            } else {
                latest - g.rng.range(1440, 20 * 1440)
            };
        let created_at = timestamp(1, created);
        let reservation_id = g.reservation_id();
        let mut reservation = Reservation {
            reservation_id: reservation_id.clone(),
            user_id: user_id.clone(),
            origin: codes[origin].to_string(),
            destination: codes[destination].to_string(),
            flight_type: if round_trip { "round_trip" } else { "one_way" }.to_string(),
            cabin: cabin.to_string(),
            flights,
            passengers,
            payment_history: vec![Payment {
                payment_id,
                amount: total,
            }],
            created_at,
            total_baggages,
            nonfree_baggages,
            insurance: if insurance { "yes" } else { "no" }.to_string(),
            status: None,
        };
        if g.rng.bernoulli(0.04) {
            let refund = Payment {
                payment_id: reservation.payment_history[0].payment_id.clone(),
                amount: -total,
            };
            reservation.payment_history.push(refund);
            reservation.status = Some("cancelled".to_string());
        }
        db.users
            .get_mut(&user_id)
            .expect("exists")
            .reservations
            .push(reservation_id.clone());
        db.reservations.insert(reservation_id, reservation);
    }
    db
}
