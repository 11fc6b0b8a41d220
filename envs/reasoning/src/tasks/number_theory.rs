//! `gcd`, `lcm` and `prime_factorization` (after reasoning-gym's `gcd`, `lcm` and
//! `prime_factorization`). Answers are whole numbers, or for factorizations the prime factors
//! separated by `×` (or `*`), e.g. `2 × 2 × 3`.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, Family, Instance, Knob, Knobs, int_field, int_list_field, known_fields,
    number_list_knobs, object, verify_int, wrong_ints,
};

/// Largest number a task may hold: the lcm of 6 such numbers stays far inside `i128`.
const MAX_VALUE: i64 = 1_000_000;
const MAX_COUNT: usize = 6;

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

fn lcm(a: i128, b: i128) -> i128 {
    a / gcd(a, b) * b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Gcd,
    Lcm,
}

/// "Find the GCD (or LCM) of these numbers".
#[derive(Debug, Clone, PartialEq, Eq)]
struct NumbersQuestion {
    aggregate: Aggregate,
    numbers: Vec<i64>,
}

impl NumbersQuestion {
    fn answer(&self) -> i128 {
        let values = self.numbers.iter().map(|&n| i128::from(n));
        match self.aggregate {
            Aggregate::Gcd => values.fold(0, gcd),
            Aggregate::Lcm => values.fold(1, lcm),
        }
    }
}

impl AnswerPuzzle for NumbersQuestion {
    fn statement(&self) -> String {
        let what = match self.aggregate {
            Aggregate::Gcd => "Greatest Common Divisor (GCD)",
            Aggregate::Lcm => "Least Common Multiple (LCM)",
        };
        let numbers: Vec<String> = self.numbers.iter().map(i64::to_string).collect();
        format!(
            "Find the {what} of these numbers: {}\n\nSubmit the result as a whole number.",
            numbers.join(", ")
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"numbers": self.numbers}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        verify_int(answer, self.answer())
    }

    fn expert_answer(&self) -> String {
        self.answer().to_string()
    }

    fn wrong_answers(&self) -> Vec<String> {
        let mut wrong = wrong_ints(self.answer());
        // The other aggregate is the classic confusion (when it differs).
        let other = NumbersQuestion {
            aggregate: match self.aggregate {
                Aggregate::Gcd => Aggregate::Lcm,
                Aggregate::Lcm => Aggregate::Gcd,
            },
            numbers: self.numbers.clone(),
        };
        if other.answer() != self.answer() {
            wrong.push(other.answer().to_string());
        }
        wrong
    }
}

/// gcd and lcm differ only in the default largest value per level.
static GCD_KNOBS: [Knob; 4] = number_list_knobs(
    MAX_COUNT as i64,
    MAX_VALUE,
    [2, 2, 2, 3, 3],
    [2, 2, 3, 3, 4],
    [1000, 2000, 5000, 10_000, 100_000],
);
static LCM_KNOBS: [Knob; 4] = number_list_knobs(
    MAX_COUNT as i64,
    MAX_VALUE,
    [2, 2, 2, 3, 3],
    [2, 2, 3, 3, 4],
    [100, 200, 500, 1000, 5000],
);

/// `gcd` and `lcm`: one family type, told apart by the aggregate it asks for.
pub struct Aggregates(Aggregate);

pub static GCD: Aggregates = Aggregates(Aggregate::Gcd);
pub static LCM: Aggregates = Aggregates(Aggregate::Lcm);

impl Family for Aggregates {
    fn name(&self) -> &'static str {
        match self.0 {
            Aggregate::Gcd => "gcd",
            Aggregate::Lcm => "lcm",
        }
    }
    fn follows(&self) -> &'static str {
        self.name()
    }
    fn knobs(&self) -> &'static [Knob] {
        match self.0 {
            Aggregate::Gcd => &GCD_KNOBS,
            Aggregate::Lcm => &LCM_KNOBS,
        }
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_numbers", "max_numbers")?;
        knobs.ordered("min_value", "max_value")
    }
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let count = knobs.draw(rng, "min_numbers", "max_numbers");
        let numbers = (0..count)
            .map(|_| knobs.draw(rng, "min_value", "max_value"))
            .collect();
        Ok(Instance::Answer(Box::new(NumbersQuestion {
            aggregate: self.0,
            numbers,
        })))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["numbers"])?;
        let numbers = int_list_field(task, "numbers", 2..=MAX_COUNT, 1, MAX_VALUE)?;
        Ok(Instance::Answer(Box::new(NumbersQuestion {
            aggregate: self.0,
            numbers,
        })))
    }
}

/// "Find the prime factorization of N".
#[derive(Debug, Clone, PartialEq, Eq)]
struct Factorization {
    value: i64,
}

/// Prime factors in ascending order, with multiplicity (trial division: values are at most 10^9).
fn prime_factors(mut n: i64) -> Vec<i64> {
    let mut factors = Vec::new();
    let mut p = 2;
    while p * p <= n {
        while n % p == 0 {
            factors.push(p);
            n /= p;
        }
        p += 1;
    }
    if n > 1 {
        factors.push(n);
    }
    factors
}

fn render_factors(factors: &[i64]) -> String {
    factors
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" × ")
}

impl AnswerPuzzle for Factorization {
    fn statement(&self) -> String {
        format!(
            "Find the prime factorization of {}. Write the prime factors in ascending order \
             separated by × (for example, for 12 the answer is: 2 × 2 × 3).",
            self.value
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"value": self.value}))
    }

    /// The multiset of submitted factors must equal the factorization (order is not checked; `*`
    /// and `x` are accepted for `×`).
    fn verify(&self, answer: &str) -> Result<(), String> {
        let mut factors = answer
            .replace(['*', 'x', 'X'], "×")
            .split('×')
            .map(|part| {
                let part = part.trim();
                part.parse::<i64>()
                    .ok()
                    .filter(|_| part.len() <= 12)
                    .ok_or_else(|| format!("expected prime factors separated by ×, got {part:?}"))
            })
            .collect::<Result<Vec<i64>, String>>()?;
        factors.sort_unstable();
        if factors == prime_factors(self.value) {
            Ok(())
        } else {
            Err(format!(
                "{} is not the prime factorization of {}",
                render_factors(&factors),
                self.value
            ))
        }
    }

    fn expert_answer(&self) -> String {
        render_factors(&prime_factors(self.value))
    }

    fn wrong_answers(&self) -> Vec<String> {
        let factors = prime_factors(self.value);
        let mut wrong = Vec::new();
        if factors.len() > 1 {
            // Drop a factor; merge the first two (a composite "factor").
            wrong.push(render_factors(&factors[1..]));
            let mut merged = vec![factors[0] * factors[1]];
            merged.extend_from_slice(&factors[2..]);
            wrong.push(render_factors(&merged));
        }
        let mut extra = factors.clone();
        extra.push(2);
        wrong.push(render_factors(&extra));
        wrong.push(self.value.to_string());
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

static FACTOR_KNOBS: [Knob; 2] = [
    Knob::new(
        "min_value",
        2,
        1_000_000_000,
        [2, 2, 100, 1000, 10_000],
        "smallest number to factor",
    ),
    Knob::new(
        "max_value",
        2,
        1_000_000_000,
        [1000, 5000, 20_000, 100_000, 1_000_000],
        "largest number to factor",
    ),
];

pub struct PrimeFactorization;

impl Family for PrimeFactorization {
    fn name(&self) -> &'static str {
        "prime_factorization"
    }
    fn follows(&self) -> &'static str {
        "prime_factorization"
    }
    fn knobs(&self) -> &'static [Knob] {
        &FACTOR_KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_value", "max_value")
    }
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let value = knobs.draw(rng, "min_value", "max_value");
        Ok(Instance::Answer(Box::new(Factorization { value })))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["value"])?;
        let value = int_field(task, "value", 2, 1_000_000_000)?;
        Ok(Instance::Answer(Box::new(Factorization { value })))
    }
}
