//! `knights_knaves` (after reasoning-gym's `knights_knaves`): on an island, knights always tell the
//! truth and knaves always lie; from what each inhabitant says, decide who is which. Generated
//! puzzles have exactly one consistent assignment. The answer names everyone, e.g. "Zoey is a
//! knight, and Riley is a knave"; the verifier requires each name with exactly one role, correct.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{AnswerPuzzle, Family, Instance, Knob, Knobs, known_fields, object, str_list_field};

const MAX_PEOPLE: i64 = 6;
const MAX_DEPTH: i64 = 3;
const MAX_ATTEMPTS: usize = 2000;
/// Names none of which contains another, so finding "<name> is a knight" in an answer is unambiguous.
const NAMES: &[&str] = &[
    "Zoey", "Riley", "Oliver", "Mia", "Ethan", "Sofia", "Lucas", "Harper", "Jack", "Chloe",
    "Henry", "Grace", "Owen", "Nora", "Leo", "Ruby", "Samuel", "Ivy", "Daniel", "Hazel",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Claim {
    /// Person `.0` is a knight (`true`) or a knave (`false`).
    Is(usize, bool),
    And(Box<Claim>, Box<Claim>),
    Or(Box<Claim>, Box<Claim>),
    Iff(Box<Claim>, Box<Claim>),
    Implies(Box<Claim>, Box<Claim>),
}

impl Claim {
    fn holds(&self, knights: &[bool]) -> bool {
        match self {
            Claim::Is(p, knight) => knights[*p] == *knight,
            Claim::And(a, b) => a.holds(knights) && b.holds(knights),
            Claim::Or(a, b) => a.holds(knights) || b.holds(knights),
            Claim::Iff(a, b) => a.holds(knights) == b.holds(knights),
            Claim::Implies(a, b) => !a.holds(knights) || b.holds(knights),
        }
    }

    fn random(rng: &mut Rng, people: usize, depth: i64) -> Claim {
        if depth <= 1 || rng.bernoulli(0.25) {
            return Claim::Is(rng.below(people as u64) as usize, rng.bernoulli(0.5));
        }
        let a = Box::new(Claim::random(rng, people, depth - 1));
        let b = Box::new(Claim::random(rng, people, depth - 1));
        match rng.below(4) {
            0 => Claim::And(a, b),
            1 => Claim::Or(a, b),
            2 => Claim::Iff(a, b),
            _ => Claim::Implies(a, b),
        }
    }

    fn render(&self, names: &[String], nested: bool) -> String {
        let text = match self {
            Claim::Is(p, knight) => {
                return format!("{} is a {}", names[*p], role(*knight));
            }
            Claim::And(a, b) => format!("{} and {}", a.render(names, true), b.render(names, true)),
            Claim::Or(a, b) => format!("{} or {}", a.render(names, true), b.render(names, true)),
            Claim::Iff(a, b) => format!(
                "{} if and only if {}",
                a.render(names, true),
                b.render(names, true)
            ),
            Claim::Implies(a, b) => format!(
                "if {} then {}",
                a.render(names, true),
                b.render(names, true)
            ),
        };
        if nested { format!("({text})") } else { text }
    }

    fn to_json(&self) -> Value {
        match self {
            Claim::Is(p, knight) => json!(["is", p, role(*knight)]),
            Claim::And(a, b) => json!(["and", a.to_json(), b.to_json()]),
            Claim::Or(a, b) => json!(["or", a.to_json(), b.to_json()]),
            Claim::Iff(a, b) => json!(["iff", a.to_json(), b.to_json()]),
            Claim::Implies(a, b) => json!(["implies", a.to_json(), b.to_json()]),
        }
    }

    /// Reads `["is", person, "knight"|"knave"]` or `[op, claim, claim]`, nested at most `depth` deep.
    fn from_json(value: &Value, people: usize, depth: i64) -> Option<Claim> {
        let items = value.as_array()?;
        match (items.first()?.as_str()?, items.len()) {
            ("is", 3) => {
                let p = items[1].as_u64().filter(|&p| (p as usize) < people)? as usize;
                let knight = match items[2].as_str()? {
                    "knight" => true,
                    "knave" => false,
                    _ => return None,
                };
                Some(Claim::Is(p, knight))
            }
            (op, 3) if depth > 1 => {
                let a = Box::new(Claim::from_json(&items[1], people, depth - 1)?);
                let b = Box::new(Claim::from_json(&items[2], people, depth - 1)?);
                match op {
                    "and" => Some(Claim::And(a, b)),
                    "or" => Some(Claim::Or(a, b)),
                    "iff" => Some(Claim::Iff(a, b)),
                    "implies" => Some(Claim::Implies(a, b)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn role(knight: bool) -> &'static str {
    if knight { "knight" } else { "knave" }
}

/// Every assignment (bit i = person i is a knight) under which each speaker's claim is true exactly
/// when the speaker is a knight.
fn consistent_assignments(claims: &[Claim]) -> Vec<Vec<bool>> {
    let n = claims.len();
    (0..1u32 << n)
        .map(|bits| (0..n).map(|i| bits >> i & 1 == 1).collect::<Vec<bool>>())
        .filter(|knights| {
            claims
                .iter()
                .enumerate()
                .all(|(i, c)| c.holds(knights) == knights[i])
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Island {
    names: Vec<String>,
    claims: Vec<Claim>,
    knights: Vec<bool>,
}

fn render_answer(names: &[String], knights: &[bool]) -> String {
    let parts: Vec<String> = names
        .iter()
        .zip(knights)
        .map(|(name, &k)| format!("{name} is a {}", role(k)))
        .collect();
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
        _ => parts.join(""),
    }
}

impl AnswerPuzzle for Island {
    fn statement(&self) -> String {
        let says: Vec<String> = self
            .names
            .iter()
            .zip(&self.claims)
            .map(|(name, claim)| format!("{name} says: \"{}.\"", claim.render(&self.names, false)))
            .collect();
        format!(
            "A very special island is inhabited only by knights and knaves. Knights always tell \
             the truth, and knaves always lie. You meet {} inhabitants: {}. {}\n\nSo who is a \
             knight and who is a knave? Submit one clause per inhabitant, e.g. \"{}\".",
            self.names.len(),
            self.names.join(", "),
            says.join(" "),
            render_answer(&self.names, &vec![true; self.names.len()])
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        let claims: Vec<Value> = self.claims.iter().map(Claim::to_json).collect();
        object(json!({"names": self.names, "claims": claims}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        let text = answer.to_lowercase();
        for (name, &knight) in self.names.iter().zip(&self.knights) {
            let lower = name.to_lowercase();
            let says_knight = text.contains(&format!("{lower} is a knight"));
            let says_knave = text.contains(&format!("{lower} is a knave"));
            match (says_knight, says_knave) {
                (false, false) => return Err(format!("the answer does not say what {name} is")),
                (true, true) => {
                    return Err(format!("the answer calls {name} both a knight and a knave"));
                }
                (k, _) if k != knight => return Err(format!("{name} is not a {}", role(k))),
                _ => {}
            }
        }
        Ok(())
    }

    fn expert_answer(&self) -> String {
        render_answer(&self.names, &self.knights)
    }

    fn wrong_answers(&self) -> Vec<String> {
        let mut flipped = self.knights.clone();
        flipped[0] = !flipped[0];
        let mut wrong = vec![
            render_answer(&self.names, &flipped),
            render_answer(&self.names[1..], &self.knights[1..]),
        ];
        let negated: Vec<bool> = self.knights.iter().map(|k| !k).collect();
        wrong.push(render_answer(&self.names, &negated));
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

static KNOBS: [Knob; 3] = [
    Knob::new(
        "min_people",
        2,
        MAX_PEOPLE,
        [2, 2, 3, 3, 4],
        "fewest inhabitants",
    ),
    Knob::new(
        "max_people",
        2,
        MAX_PEOPLE,
        [2, 3, 3, 4, 5],
        "most inhabitants",
    ),
    Knob::new(
        "depth",
        1,
        MAX_DEPTH,
        [2, 2, 2, 3, 3],
        "deepest nesting of and/or/iff/implies in a statement",
    ),
];

pub struct KnightsKnaves;

impl Family for KnightsKnaves {
    fn name(&self) -> &'static str {
        "knights_knaves"
    }
    fn follows(&self) -> &'static str {
        "knights_knaves"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_people", "max_people")
    }
    /// Random statements, redrawn until exactly one assignment is consistent.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let people = knobs.draw(rng, "min_people", "max_people") as usize;
        let mut pool: Vec<&str> = NAMES.to_vec();
        rng.shuffle(&mut pool);
        let names: Vec<String> = pool[..people].iter().map(|n| n.to_string()).collect();
        for _ in 0..MAX_ATTEMPTS {
            let claims: Vec<Claim> = (0..people)
                .map(|_| Claim::random(rng, people, knobs.get("depth")))
                .collect();
            if let [knights] = consistent_assignments(&claims).as_slice() {
                return Ok(Instance::Answer(Box::new(Island {
                    knights: knights.clone(),
                    names,
                    claims,
                })));
            }
        }
        Err(format!(
            "knights_knaves: no uniquely solvable island within {MAX_ATTEMPTS} draws"
        ))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["names", "claims"])?;
        let names = str_list_field(task, "names", 2..=MAX_PEOPLE as usize, 40)?;
        for (i, a) in names.iter().enumerate() {
            let clash = names
                .iter()
                .enumerate()
                .any(|(j, b)| i != j && b.to_lowercase().contains(&a.to_lowercase()));
            if a.trim().is_empty() || clash {
                return Err(
                    "task field `names` must be distinct non-empty names, none containing another"
                        .to_string(),
                );
            }
        }
        let claims = task
            .get("claims")
            .and_then(Value::as_array)
            .filter(|c| c.len() == names.len())
            .and_then(|c| {
                c.iter()
                    .map(|v| Claim::from_json(v, names.len(), MAX_DEPTH))
                    .collect::<Option<Vec<Claim>>>()
            })
            .ok_or("task field `claims` must hold one claim per name: [\"is\", person, \"knight\"|\"knave\"] or [\"and\"|\"or\"|\"iff\"|\"implies\", claim, claim], nested at most 3 deep")?;
        let knights = match consistent_assignments(&claims).as_slice() {
            [one] => one.clone(),
            all => {
                return Err(format!(
                    "task field `claims` must have exactly one consistent assignment, has {}",
                    all.len()
                ));
            }
        };
        Ok(Instance::Answer(Box::new(Island {
            names,
            claims,
            knights,
        })))
    }
}
