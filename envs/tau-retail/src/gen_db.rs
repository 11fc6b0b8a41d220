//! The procedural retail DB: the shape of tau-bench v1's data (users with payment methods, products
//! with variant items, orders in every status with payment histories) built from a seed and small
//! word lists written for sandgym (no original data).

use std::collections::{BTreeMap, BTreeSet};

use sandgym_sdk::{Rng, Value};
use tau_common::{Num, OrderedMap, py_round};

use crate::db::{
    Address, AddressOrder, Db, Fulfillment, Name, Order, OrderItem, Payment, PaymentMethod,
    Product, User, Variant,
};

const FIRST_NAMES: [&str; 48] = [
    "Ava", "Liam", "Mira", "Ethan", "Zoe", "Omar", "Priya", "Mateo", "Hana", "Lucas", "Nora",
    "Felix", "Ines", "Kai", "Leah", "Marco", "Sofia", "Theo", "Yuki", "Aria", "Diego", "Elena",
    "Hugo", "Ivy", "Jonas", "Kira", "Leon", "Maya", "Nico", "Olga", "Pablo", "Rosa", "Sami",
    "Tara", "Uma", "Victor", "Wren", "Xavier", "Yasmin", "Zane", "Amir", "Bea", "Caleb", "Dana",
    "Emil", "Farah", "Gus", "Hazel",
];

const LAST_NAMES: [&str; 40] = [
    "Alvarez", "Bennett", "Chen", "Dubois", "Eriksen", "Fischer", "Garza", "Haddad", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Romano",
    "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zimmer", "Abbott", "Brooks",
    "Castillo", "Dunn", "Ellis", "Foster", "Grant", "Hughes", "Iqbal", "Joshi", "Keller", "Lund",
    "Mendez", "Novak",
];

/// City, state, first three zip digits.
const CITIES: [(&str, &str, &str); 25] = [
    ("Portland", "OR", "972"),
    ("Austin", "TX", "787"),
    ("Madison", "WI", "537"),
    ("Boise", "ID", "837"),
    ("Raleigh", "NC", "276"),
    ("Tucson", "AZ", "857"),
    ("Omaha", "NE", "681"),
    ("Richmond", "VA", "232"),
    ("Spokane", "WA", "992"),
    ("Albany", "NY", "122"),
    ("Savannah", "GA", "314"),
    ("Reno", "NV", "895"),
    ("Des Moines", "IA", "503"),
    ("Burlington", "VT", "054"),
    ("Santa Fe", "NM", "875"),
    ("Anchorage", "AK", "995"),
    ("Providence", "RI", "029"),
    ("Tulsa", "OK", "741"),
    ("Lexington", "KY", "405"),
    ("Fresno", "CA", "937"),
    ("Duluth", "MN", "558"),
    ("Baton Rouge", "LA", "708"),
    ("Akron", "OH", "443"),
    ("Eugene", "OR", "974"),
    ("Knoxville", "TN", "379"),
];

const STREETS: [&str; 15] = [
    "Maple Avenue",
    "Cedar Lane",
    "Harbor Road",
    "Willow Street",
    "Birch Court",
    "Elm Drive",
    "Summit Way",
    "Lakeview Terrace",
    "Orchard Path",
    "Granite Boulevard",
    "Meadow Circle",
    "Pine Hollow Road",
    "Riverside Avenue",
    "Canyon Trail",
    "Juniper Place",
];

const CARD_BRANDS: [&str; 4] = ["visa", "mastercard", "amex", "discover"];

/// A product type: name, option dimensions, price range in dollars.
struct ProductType {
    name: &'static str,
    options: &'static [(&'static str, &'static [&'static str])],
    price: (u32, u32),
}

const PRODUCT_TYPES: [ProductType; 40] = [
    ProductType {
        name: "Rain Jacket",
        options: &[
            ("size", &["S", "M", "L", "XL"]),
            ("color", &["navy", "olive", "red", "black"]),
            ("hood", &["detachable", "fixed"]),
        ],
        price: (60, 180),
    },
    ProductType {
        name: "Blender",
        options: &[
            ("capacity", &["1L", "1.5L", "2L"]),
            ("power", &["600W", "900W", "1200W"]),
            ("color", &["white", "black", "silver"]),
        ],
        price: (40, 220),
    },
    ProductType {
        name: "Desk Organizer",
        options: &[
            ("material", &["bamboo", "metal", "plastic"]),
            ("compartments", &["3", "5", "7"]),
        ],
        price: (15, 60),
    },
    ProductType {
        name: "Camping Tent",
        options: &[
            ("capacity", &["2-person", "4-person", "6-person"]),
            ("season", &["3-season", "4-season"]),
            ("color", &["green", "orange", "grey"]),
        ],
        price: (90, 420),
    },
    ProductType {
        name: "Wireless Router",
        options: &[
            ("band", &["dual-band", "tri-band"]),
            ("ports", &["2", "4", "8"]),
            ("mesh support", &["yes", "no"]),
        ],
        price: (50, 300),
    },
    ProductType {
        name: "Electric Scooter",
        options: &[
            ("range", &["15 km", "25 km", "40 km"]),
            ("color", &["black", "white", "blue"]),
            ("max speed", &["20 km/h", "25 km/h"]),
        ],
        price: (250, 900),
    },
    ProductType {
        name: "Throw Blanket",
        options: &[
            ("material", &["wool", "fleece", "cotton"]),
            ("size", &["50x60 in", "60x80 in"]),
            ("color", &["cream", "charcoal", "mustard", "teal"]),
        ],
        price: (25, 120),
    },
    ProductType {
        name: "Cast Iron Skillet",
        options: &[
            ("diameter", &["8 in", "10 in", "12 in"]),
            ("preseasoned", &["yes", "no"]),
        ],
        price: (20, 90),
    },
    ProductType {
        name: "Board Game",
        options: &[
            ("theme", &["space", "fantasy", "trains", "farming"]),
            ("players", &["2-4", "2-6"]),
            ("edition", &["standard", "deluxe"]),
        ],
        price: (20, 110),
    },
    ProductType {
        name: "Standing Desk",
        options: &[
            ("width", &["48 in", "55 in", "60 in"]),
            ("frame color", &["black", "white"]),
            ("top", &["oak", "walnut", "maple"]),
        ],
        price: (250, 800),
    },
    ProductType {
        name: "Phone Case",
        options: &[
            ("model", &["A12", "A13", "B7", "B8"]),
            ("material", &["silicone", "leather", "polycarbonate"]),
            ("color", &["black", "clear", "pink", "green"]),
        ],
        price: (10, 60),
    },
    ProductType {
        name: "Air Fryer",
        options: &[
            ("capacity", &["3 qt", "5 qt", "8 qt"]),
            ("color", &["black", "white", "red"]),
            ("display", &["digital", "dial"]),
        ],
        price: (50, 200),
    },
    ProductType {
        name: "Ski Goggles",
        options: &[
            ("lens", &["mirrored", "clear", "amber"]),
            ("frame size", &["small", "medium", "large"]),
        ],
        price: (40, 220),
    },
    ProductType {
        name: "Microphone",
        options: &[
            ("type", &["condenser", "dynamic"]),
            ("connection", &["USB", "XLR"]),
            ("color", &["black", "silver"]),
        ],
        price: (40, 350),
    },
    ProductType {
        name: "Monitor",
        options: &[
            ("size", &["24 in", "27 in", "32 in"]),
            ("resolution", &["1080p", "1440p", "4K"]),
            ("refresh rate", &["60Hz", "144Hz"]),
        ],
        price: (140, 900),
    },
    ProductType {
        name: "Rice Cooker",
        options: &[
            ("capacity", &["3 cups", "6 cups", "10 cups"]),
            ("finish", &["stainless", "white"]),
        ],
        price: (30, 180),
    },
    ProductType {
        name: "Winter Boots",
        options: &[
            ("size", &["7", "8", "9", "10", "11"]),
            ("color", &["brown", "black", "grey"]),
            ("lining", &["fleece", "shearling"]),
        ],
        price: (70, 260),
    },
    ProductType {
        name: "Camera Drone",
        options: &[
            ("camera", &["1080p", "2.7K", "4K"]),
            ("batteries", &["1", "2", "3"]),
        ],
        price: (200, 1200),
    },
    ProductType {
        name: "Wall Shelf",
        options: &[
            ("material", &["oak", "pine", "steel"]),
            ("length", &["24 in", "36 in", "48 in"]),
        ],
        price: (20, 140),
    },
    ProductType {
        name: "Fitness Tracker",
        options: &[
            ("band color", &["black", "blue", "pink", "white"]),
            ("strap", &["silicone", "woven"]),
            ("size", &["S", "L"]),
        ],
        price: (40, 250),
    },
    ProductType {
        name: "Pressure Cooker",
        options: &[
            ("capacity", &["4 qt", "6 qt", "8 qt"]),
            ("programs", &["7-in-1", "10-in-1"]),
        ],
        price: (60, 220),
    },
    ProductType {
        name: "Projector",
        options: &[
            ("brightness", &["2000 lumens", "3500 lumens"]),
            ("resolution", &["720p", "1080p", "4K"]),
        ],
        price: (120, 1500),
    },
    ProductType {
        name: "Hammock",
        options: &[
            ("material", &["cotton", "nylon"]),
            ("capacity", &["single", "double"]),
            ("color", &["striped", "blue", "green"]),
        ],
        price: (25, 140),
    },
    ProductType {
        name: "Knife Set",
        options: &[
            ("pieces", &["5", "8", "12"]),
            ("handle", &["wood", "steel", "synthetic"]),
        ],
        price: (40, 400),
    },
    ProductType {
        name: "Soundbar",
        options: &[
            ("channels", &["2.0", "2.1", "5.1"]),
            ("connectivity", &["Bluetooth", "Wi-Fi", "optical"]),
            ("color", &["black", "white"]),
        ],
        price: (90, 700),
    },
    ProductType {
        name: "Duffel Bag",
        options: &[
            ("capacity", &["40 L", "60 L", "90 L"]),
            ("color", &["black", "red", "navy", "sand"]),
            ("material", &["nylon", "canvas"]),
        ],
        price: (30, 160),
    },
    ProductType {
        name: "Space Heater",
        options: &[
            ("power", &["750W", "1500W"]),
            ("type", &["ceramic", "oil-filled", "infrared"]),
        ],
        price: (30, 200),
    },
    ProductType {
        name: "Kayak Paddle",
        options: &[
            ("length", &["220 cm", "230 cm", "240 cm"]),
            ("blade", &["fiberglass", "aluminum", "carbon"]),
        ],
        price: (50, 350),
    },
    ProductType {
        name: "Baby Stroller",
        options: &[
            ("type", &["jogging", "compact", "full-size"]),
            ("color", &["grey", "black", "navy"]),
        ],
        price: (120, 700),
    },
    ProductType {
        name: "Humidifier",
        options: &[
            ("capacity", &["2 L", "4 L", "6 L"]),
            ("mist", &["cool", "warm", "dual"]),
        ],
        price: (30, 180),
    },
    ProductType {
        name: "Chess Set",
        options: &[
            ("material", &["wood", "marble", "plastic"]),
            ("board size", &["14 in", "17 in", "21 in"]),
        ],
        price: (20, 300),
    },
    ProductType {
        name: "Graphics Tablet",
        options: &[
            ("active area", &["small", "medium", "large"]),
            ("connection", &["wired", "wireless"]),
        ],
        price: (50, 500),
    },
    ProductType {
        name: "Rolling Pin",
        options: &[
            ("material", &["marble", "maple", "silicone"]),
            ("length", &["15 in", "18 in"]),
        ],
        price: (10, 50),
    },
    ProductType {
        name: "Bath Towel Set",
        options: &[
            ("pieces", &["2", "4", "6"]),
            ("color", &["white", "grey", "sage", "navy"]),
            ("material", &["cotton", "bamboo"]),
        ],
        price: (25, 140),
    },
    ProductType {
        name: "Telescope",
        options: &[
            ("aperture", &["70 mm", "90 mm", "130 mm"]),
            ("mount", &["altazimuth", "equatorial"]),
        ],
        price: (90, 900),
    },
    ProductType {
        name: "Garden Shears",
        options: &[
            ("blade", &["straight", "curved"]),
            ("handle length", &["short", "long"]),
            ("grip", &["rubber", "wood"]),
        ],
        price: (15, 80),
    },
    ProductType {
        name: "Picture Frame",
        options: &[
            ("size", &["5x7 in", "8x10 in", "11x14 in"]),
            ("finish", &["black", "gold", "walnut", "white"]),
        ],
        price: (10, 70),
    },
    ProductType {
        name: "Robot Vacuum",
        options: &[
            ("navigation", &["lidar", "camera", "gyro"]),
            ("bin", &["standard", "self-emptying"]),
        ],
        price: (150, 900),
    },
    ProductType {
        name: "Ceiling Fan",
        options: &[
            ("blade span", &["42 in", "52 in", "60 in"]),
            ("light", &["with light", "without light"]),
            ("finish", &["nickel", "bronze", "white"]),
        ],
        price: (80, 450),
    },
    ProductType {
        name: "Water Filter Pitcher",
        options: &[
            ("capacity", &["6 cups", "10 cups"]),
            ("filter", &["standard", "long-life"]),
            ("color", &["blue", "clear", "grey"]),
        ],
        price: (15, 70),
    },
];

/// The most product types the generator knows.
pub const MAX_PRODUCTS: usize = PRODUCT_TYPES.len();

/// Knobs of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    pub users: usize,
    pub products: usize,
}

/// Unique random digit strings.
struct Ids {
    used: BTreeSet<String>,
}

impl Ids {
    fn digits(&mut self, rng: &mut Rng, prefix: &str, n: u32) -> String {
        loop {
            let lo = 10u64.pow(n - 1);
            let id = format!("{prefix}{}", lo + rng.below(9 * lo));
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }
}

fn cents(c: u64) -> Num {
    Num::Float(c as f64 / 100.0)
}

fn generate_products(rng: &mut Rng, ids: &mut Ids, count: usize) -> BTreeMap<String, Product> {
    let mut order: Vec<usize> = (0..PRODUCT_TYPES.len()).collect();
    rng.shuffle(&mut order);
    let mut products = BTreeMap::new();
    for &t in order.iter().take(count) {
        let ty = &PRODUCT_TYPES[t];
        let product_id = ids.digits(rng, "", 10);
        // Every combination of options, then a random subset of 4..=14 of them.
        let mut combos: Vec<Vec<usize>> = vec![vec![]];
        for (_, values) in ty.options {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    (0..values.len()).map(move |v| {
                        let mut next = c.clone();
                        next.push(v);
                        next
                    })
                })
                .collect();
        }
        rng.shuffle(&mut combos);
        let n = (rng.range(4, 14) as usize).min(combos.len());
        let base_cents = rng.range(i64::from(ty.price.0) * 100, i64::from(ty.price.1) * 100) as u64;
        // Variants (and users' payment methods) end up in id order, as when these maps were
        // `BTreeMap`s, so a seed still draws the same world; options keep the product type's own
        // option order, as each v1 product lists its options in an order of its own.
        let mut variants = BTreeMap::new();
        for (k, combo) in combos.into_iter().take(n).enumerate() {
            let item_id = ids.digits(rng, "", 10);
            let options: OrderedMap<Value> = ty
                .options
                .iter()
                .zip(&combo)
                .map(|((key, values), &v)| (key.to_string(), Value::from(values[v])))
                .collect();
            let factor = 85 + rng.below(31);
            let price = cents(base_cents * factor / 100);
            // At least two available variants per product, about 75% overall.
            let available = k < 2 || rng.bernoulli(0.7);
            variants.insert(
                item_id.clone(),
                Variant {
                    item_id,
                    options,
                    available,
                    price,
                },
            );
        }
        products.insert(
            product_id.clone(),
            Product {
                name: ty.name.to_string(),
                product_id,
                variants: variants.into_iter().collect(),
            },
        );
    }
    products
}

/// A random street address.
pub fn random_address(rng: &mut Rng) -> Address {
    let (city, state, zip3) = *rng.choose(&CITIES);
    let address2 = match rng.below(10) {
        0..=2 => String::new(),
        3..=5 => format!("Apt {}", rng.range(1, 999)),
        6..=8 => format!("Suite {}", rng.range(100, 999)),
        _ => format!("Unit {}", rng.range(1, 60)),
    };
    Address {
        address1: format!("{} {}", rng.range(10, 9999), rng.choose(&STREETS)),
        address2,
        city: city.to_string(),
        country: "USA".to_string(),
        state: state.to_string(),
        zip: format!("{zip3}{:02}", rng.below(100)),
        order: AddressOrder::File,
    }
}

fn generate_user(
    rng: &mut Rng,
    ids: &mut Ids,
    taken_names: &mut BTreeSet<(String, String, String)>,
) -> (String, User) {
    loop {
        let first = *rng.choose(&FIRST_NAMES);
        let last = *rng.choose(&LAST_NAMES);
        let address = random_address(rng);
        let key = (first.to_string(), last.to_string(), address.zip.clone());
        if taken_names.contains(&key) {
            continue;
        }
        let suffix = rng.range(1000, 9999);
        let user_id = format!("{}_{}_{suffix}", first.to_lowercase(), last.to_lowercase());
        if !ids.used.insert(user_id.clone()) {
            continue;
        }
        let email = format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            rng.range(100, 9999)
        );
        if !ids.used.insert(email.clone()) {
            continue;
        }
        taken_names.insert(key);
        let mut payment_methods = BTreeMap::new();
        let count = match rng.below(10) {
            0..=4 => 1,
            5..=8 => 2,
            _ => 3,
        };
        let mut sources = vec!["credit_card", "paypal", "gift_card"];
        rng.shuffle(&mut sources);
        for &source in sources.iter().take(count) {
            let id = ids.digits(rng, &format!("{source}_"), 7);
            let pm = match source {
                "credit_card" => PaymentMethod {
                    source: source.to_string(),
                    brand: Some(rng.choose(&CARD_BRANDS).to_string()),
                    last_four: Some(format!("{:04}", rng.below(10_000))),
                    balance: None,
                    id: id.clone(),
                },
                "gift_card" => PaymentMethod {
                    source: source.to_string(),
                    brand: None,
                    last_four: None,
                    balance: Some(Num::Int(rng.range(0, 250))),
                    id: id.clone(),
                },
                _ => PaymentMethod {
                    source: source.to_string(),
                    brand: None,
                    last_four: None,
                    balance: None,
                    id: id.clone(),
                },
            };
            payment_methods.insert(id, pm);
        }
        let user = User {
            user_id: None,
            name: Name {
                first_name: first.to_string(),
                last_name: last.to_string(),
            },
            address,
            email,
            payment_methods: payment_methods.into_iter().collect(),
            orders: Vec::new(),
        };
        return (user_id, user);
    }
}

fn generate_order(
    rng: &mut Rng,
    ids: &mut Ids,
    user_id: &str,
    user: &User,
    products: &BTreeMap<String, Product>,
) -> Order {
    let order_id = ids.digits(rng, "#W", 7);
    let product_list: Vec<&Product> = products.values().collect();
    let n_items = rng.range(1, 5) as usize;
    let mut items = Vec::with_capacity(n_items);
    for _ in 0..n_items {
        let product = *rng.choose(&product_list);
        let variants: Vec<&Variant> = product.variants.values().collect();
        let variant = *rng.choose(&variants);
        items.push(OrderItem {
            name: product.name.clone(),
            product_id: product.product_id.clone(),
            item_id: variant.item_id.clone(),
            price: variant.price,
            options: variant.options.clone(),
        });
    }
    let status = match rng.below(100) {
        0..=41 => "pending",
        42..=78 => "delivered",
        79..=88 => "processed",
        _ => "cancelled",
    };
    // Like the original: the total as Python's sum() from int 0, rounded to 2 dp.
    let total = py_round(items.iter().fold(0.0, |acc, i| acc + i.price.as_f64()), 2);
    let methods: Vec<&String> = user.payment_methods.keys().collect();
    let method = (*rng.choose(&methods)).clone();
    let mut payment_history = vec![Payment {
        transaction_type: "payment".to_string(),
        amount: Num::Float(total),
        payment_method_id: method.clone(),
    }];
    if status == "cancelled" {
        payment_history.push(Payment {
            transaction_type: "refund".to_string(),
            amount: Num::Float(total),
            payment_method_id: method,
        });
    }
    let fulfillments = if status == "pending" {
        Vec::new()
    } else {
        vec![Fulfillment {
            tracking_id: vec![ids.digits(rng, "", 12)],
            item_ids: items.iter().map(|i| i.item_id.clone()).collect(),
        }]
    };
    let address = if rng.bernoulli(0.85) {
        user.address.clone()
    } else {
        random_address(rng)
    };
    Order {
        order_id,
        user_id: user_id.to_string(),
        address,
        items,
        fulfillments,
        status: status.to_string(),
        payment_history,
        cancel_reason: None,
        return_items: None,
        return_payment_method_id: None,
        exchange_items: None,
        exchange_new_items: None,
        exchange_payment_method_id: None,
        exchange_price_difference: None,
    }
}

/// Builds a DB from the knobs; the same knobs always give the same DB.
pub fn generate_db(config: GenConfig) -> Db {
    let mut rng = Rng::new(config.seed ^ 0x7a75_7265_7461_696c);
    let mut ids = Ids {
        used: BTreeSet::new(),
    };
    let products = generate_products(&mut rng, &mut ids, config.products.min(MAX_PRODUCTS));
    let mut users = BTreeMap::new();
    let mut orders = BTreeMap::new();
    let mut taken_names = BTreeSet::new();
    for _ in 0..config.users {
        let (user_id, mut user) = generate_user(&mut rng, &mut ids, &mut taken_names);
        let n_orders = match rng.below(20) {
            0..=1 => 0,
            2..=7 => 1,
            8..=13 => 2,
            14..=17 => 3,
            _ => rng.range(4, 6) as usize,
        };
        for _ in 0..n_orders {
            let order = generate_order(&mut rng, &mut ids, &user_id, &user, &products);
            user.orders.push(order.order_id.clone());
            orders.insert(order.order_id.clone(), order);
        }
        users.insert(user_id, user);
    }
    Db {
        orders,
        products,
        users,
    }
}
