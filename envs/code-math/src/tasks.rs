//! Tasks: generated from a seed (math word problems and arithmetic / number-theory questions whose
//! answers take computation), or read from a file, including GSM8K-style rows.
//!
//! Every generated task carries two independent solutions: the answer, computed here in Rust at
//! generation time, and `program`, a Python solution the expert runs in the session. The tests check
//! that the program, run by the interpreter in the guest, prints exactly the answer.

use num_bigint::BigUint;
use sandgym_sdk::{Rng, Value, json, stable_hash};

use crate::answer::{self, Rational};

/// Generated task kinds, in the order `kind = "any"` draws from.
pub const KINDS: [&str; 9] = [
    "sum_multiples",
    "nth_prime",
    "modpow",
    "digit_sum",
    "harmonic",
    "collatz",
    "savings",
    "population",
    "split_bill",
];

/// Longest question a task file may hold.
const MAX_QUESTION_BYTES: usize = 20_000;
const TASK_KEYS: [&str; 6] = ["question", "answer", "program", "kind", "difficulty", "id"];

/// One task: the question, its exact answer, and (for generated tasks) a Python solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub question: String,
    pub answer: Rational,
    /// A program that prints the answer; `None` for imported tasks.
    pub program: Option<String>,
    /// `sum_multiples`, ..., or `imported`.
    pub kind: String,
    /// 1..=3 for generated tasks; 0 for imported ones.
    pub difficulty: i64,
    /// A caller-provided id, kept for imported tasks.
    pub id: Option<String>,
}

impl Task {
    /// Stable for the task: same question and answer, same id.
    pub fn task_id(&self) -> String {
        match &self.id {
            Some(id) => format!("code-math-{id}"),
            None => {
                let digest = stable_hash(format!("{}\n{}", self.question, self.answer).as_bytes());
                format!("code-math-{}-{digest:016x}", self.kind)
            }
        }
    }

    pub fn to_json(&self) -> Value {
        let mut task = json!({
            "question": self.question,
            "answer": self.answer.to_string(),
            "kind": self.kind,
            "difficulty": self.difficulty,
        });
        if let Some(program) = &self.program {
            task["program"] = json!(program);
        }
        if let Some(id) = &self.id {
            task["id"] = json!(id);
        }
        task
    }

    /// Reads a task from a file or from `to_json`. `answer` is a number or a string; in a string,
    /// the text after the last `####` is the answer (GSM8K's convention: worked solution, then
    /// `#### 72`), so GSM8K JSONL rows load as they are.
    pub fn from_json(task: &Value) -> Result<Task, String> {
        let Value::Object(map) = task else {
            return Err(format!("task must be a JSON object, got {task}"));
        };
        if let Some(key) = map.keys().find(|k| !TASK_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "task has unknown field `{key}` (known: {})",
                TASK_KEYS.join(", ")
            ));
        }
        let question = match map.get("question") {
            Some(Value::String(q)) if !q.trim().is_empty() && q.len() <= MAX_QUESTION_BYTES => {
                q.clone()
            }
            _ => {
                return Err(format!(
                    "task field `question` must be a non-empty string of at most \
                     {MAX_QUESTION_BYTES} bytes"
                ));
            }
        };
        let answer_text = match map.get("answer") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("task field `answer` must be a string or a number".into()),
        };
        let final_answer = answer_text
            .rsplit_once("####")
            .map_or(answer_text.as_str(), |(_, after)| after);
        let answer = answer::parse(final_answer).ok_or_else(|| {
            format!(
                "task field `answer` must be an exact number (integer, decimal or a/b, optionally \
                 after `####`), got {final_answer:?}"
            )
        })?;
        let optional_string = |key: &str| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("task field `{key}` must be a string")),
            }
        };
        let program = optional_string("program")?;
        let kind = optional_string("kind")?.unwrap_or_else(|| "imported".to_string());
        let id = optional_string("id")?;
        let difficulty = match map.get("difficulty") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .filter(|d| (0..=3).contains(d))
                .ok_or("task field `difficulty` must be an integer in 0..=3")?,
        };
        Ok(Task {
            question,
            answer,
            program,
            kind,
            difficulty,
            id,
        })
    }
}

/// Generates a task of `kind` (one of [`KINDS`]) at `difficulty` 1..=3.
pub fn generate(kind: &str, difficulty: i64, rng: &mut Rng) -> Task {
    let d = difficulty.clamp(1, 3) as usize - 1;
    let (question, answer, program) = match kind {
        "sum_multiples" => sum_multiples(d, rng),
        "nth_prime" => nth_prime(d, rng),
        "modpow" => modpow(d, rng),
        "digit_sum" => digit_sum(d, rng),
        "harmonic" => harmonic(d, rng),
        "collatz" => collatz(d, rng),
        "savings" => savings(d, rng),
        "population" => population(d, rng),
        "split_bill" => split_bill(d, rng),
        other => unreachable!("unknown kind {other}: configure validates it"),
    };
    Task {
        question,
        answer,
        program: Some(program),
        kind: kind.to_string(),
        difficulty: difficulty.clamp(1, 3),
        id: None,
    }
}

/// Picks from one range per difficulty level.
fn pick(rng: &mut Rng, levels: [(i64, i64); 3], d: usize) -> i64 {
    let (lo, hi) = levels[d];
    rng.range(lo, hi)
}

type Generated = (String, Rational, String);

fn sum_multiples(d: usize, rng: &mut Rng) -> Generated {
    let n = pick(rng, [(50, 200), (1_000, 10_000), (20_000, 50_000)], d);
    let a = rng.range(2, 12);
    let b = loop {
        let b = rng.range(2, 15);
        if b != a {
            break b;
        }
    };
    let series = |k: i64| {
        let m = i128::from(n / k);
        i128::from(k) * m * (m + 1) / 2
    };
    let lcm = a / gcd(a, b) * b;
    let answer = series(a) + series(b) - series(lcm);
    let question = format!(
        "What is the sum of all whole numbers from 1 to {n} (inclusive) that are divisible by {a} \
         or by {b}?"
    );
    let program = format!(
        "total = 0\nfor x in range(1, {n} + 1):\n    if x % {a} == 0 or x % {b} == 0:\n        \
         total += x\nprint(total)"
    );
    (question, Rational::integer(answer), program)
}

fn nth_prime(d: usize, rng: &mut Rng) -> Generated {
    let n = pick(rng, [(5, 50), (100, 500), (700, 1_500)], d);
    let mut count = 0;
    let mut candidate = 1i64;
    while count < n {
        candidate += 1;
        if is_prime(candidate) {
            count += 1;
        }
    }
    let question = format!("What is the {}th prime number? (The 1st prime is 2.)", n);
    let program = format!(
        "n = {n}\nprimes = []\ncandidate = 1\nwhile len(primes) < n:\n    candidate += 1\n    \
         is_prime = True\n    for p in primes:\n        if p * p > candidate:\n            break\n        \
         if candidate % p == 0:\n            is_prime = False\n            break\n    if is_prime:\n        \
         primes.append(candidate)\nprint(primes[-1])"
    );
    (question, Rational::integer(i128::from(candidate)), program)
}

fn is_prime(n: i64) -> bool {
    n >= 2 && (2..).take_while(|p| p * p <= n).all(|p| n % p != 0)
}

fn modpow(d: usize, rng: &mut Rng) -> Generated {
    let base = rng.range(2, 999);
    let exponent = pick(
        rng,
        [
            (100, 10_000),
            (1_000_000, 1_000_000_000),
            (1_000_000_000_000, 1_000_000_000_000_000),
        ],
        d,
    );
    let modulus = pick(
        rng,
        [
            (100, 1_000),
            (10_000, 1_000_000),
            (1_000_000_000, 2_000_000_000),
        ],
        d,
    );
    let mut result: u128 = 1;
    let mut power = base as u128 % modulus as u128;
    let mut e = exponent as u128;
    while e > 0 {
        if e & 1 == 1 {
            result = result * power % modulus as u128;
        }
        power = power * power % modulus as u128;
        e >>= 1;
    }
    let question = format!("What is the remainder when {base}^{exponent} is divided by {modulus}?");
    let program = format!("print(pow({base}, {exponent}, {modulus}))");
    (question, Rational::integer(result as i128), program)
}

fn digit_sum(d: usize, rng: &mut Rng) -> Generated {
    let base = pick(rng, [(2, 9), (11, 99), (101, 999)], d);
    let exponent = pick(rng, [(20, 60), (50, 200), (200, 600)], d);
    let power = BigUint::from(base as u64).pow(exponent as u32);
    let answer: i128 = power
        .to_string()
        .bytes()
        .map(|b| i128::from(b - b'0'))
        .sum();
    let question = format!("What is the sum of the decimal digits of {base}^{exponent}?");
    let program = format!("print(sum(int(digit) for digit in str({base} ** {exponent})))");
    (question, Rational::integer(answer), program)
}

fn harmonic(d: usize, rng: &mut Rng) -> Generated {
    let n = pick(rng, [(3, 8), (9, 16), (17, 24)], d);
    let (mut num, mut den) = (0i128, 1i128);
    for k in 1..=i128::from(n) {
        num = num * k + den;
        den *= k;
        let g = gcd128(num, den);
        num /= g;
        den /= g;
    }
    let question = format!(
        "Compute 1/1 + 1/2 + 1/3 + ... + 1/{n} exactly. Give the answer as a fraction p/q in \
         lowest terms."
    );
    let program = format!(
        "import math\nnum, den = 0, 1\nfor k in range(1, {n} + 1):\n    num = num * k + den\n    \
         den = den * k\n    g = math.gcd(num, den)\n    num //= g\n    den //= g\nprint(f\"{{num}}/{{den}}\")"
    );
    (
        question,
        Rational::new(num, den).expect("den >= 1"),
        program,
    )
}

fn collatz(d: usize, rng: &mut Rng) -> Generated {
    let limit = pick(rng, [(20, 100), (500, 3_000), (4_000, 12_000)], d);
    let (mut best, mut best_len) = (1i64, 1i64);
    for start in 1..limit {
        let (mut n, mut len) = (start, 1i64);
        while n != 1 {
            n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
            len += 1;
        }
        if len > best_len {
            (best, best_len) = (start, len);
        }
    }
    let question = format!(
        "The Collatz rule maps n to n/2 when n is even and to 3n+1 when n is odd; a sequence stops \
         when it reaches 1. Among the starting numbers 1, 2, ..., {}, which one gives the longest \
         sequence (counting every term, including the start and the final 1)? If several tie, give \
         the smallest.",
        limit - 1
    );
    let program = format!(
        "lengths = {{1: 1}}\ndef length(n):\n    path = []\n    while n not in lengths:\n        \
         path.append(n)\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n    total = lengths[n]\n    \
         for m in reversed(path):\n        total += 1\n        lengths[m] = total\n    return total\n\
         best, best_len = 1, 1\nfor start in range(1, {limit}):\n    current = length(start)\n    \
         if current > best_len:\n        best, best_len = start, current\nprint(best)"
    );
    (question, Rational::integer(i128::from(best)), program)
}

const NAMES: [&str; 8] = [
    "Maya", "Omar", "Lena", "Tariq", "Sofia", "Kenji", "Amara", "Jonas",
];

fn savings(d: usize, rng: &mut Rng) -> Generated {
    let name = rng.choose(&NAMES);
    let first = rng.range(3, 40);
    let step = rng.range(1, 9);
    let weeks = pick(rng, [(4, 10), (12, 30), (40, 104)], d);
    let fee_every = pick(rng, [(0, 0), (0, 0), (3, 6)], d);
    let fee = if fee_every > 0 { rng.range(2, 15) } else { 0 };
    let mut total = 0i128;
    for week in 0..weeks {
        total += i128::from(first + step * week);
        if fee_every > 0 && (week + 1) % fee_every == 0 {
            total -= i128::from(fee);
        }
    }
    let fee_text = if fee_every > 0 {
        format!(
            " Every {fee_every}th week, right after saving, {name} spends ${fee} from the savings."
        )
    } else {
        String::new()
    };
    let question = format!(
        "{name} saves ${first} in the first week, and each week after that saves ${step} more than \
         the week before.{fee_text} How many dollars has {name} saved after {weeks} weeks?"
    );
    let program = format!(
        "total = 0\nfor week in range({weeks}):\n    total += {first} + {step} * week\n    if \
         {fee_every} > 0 and (week + 1) % max({fee_every}, 1) == 0:\n        total -= {fee}\nprint(total)"
    );
    (question, Rational::integer(total), program)
}

fn population(d: usize, rng: &mut Rng) -> Generated {
    let start = pick(rng, [(100, 1_000), (1_000, 50_000), (10_000, 1_000_000)], d);
    let percent = rng.range(2, 15);
    let years = pick(rng, [(2, 5), (6, 15), (15, 40)], d);
    let mut people = i128::from(start);
    for _ in 0..years {
        people = people * i128::from(100 + percent) / 100;
    }
    let question = format!(
        "A town has {start} residents. Every year its population grows by {percent}%, and any \
         fraction of a person is dropped at the end of each year (the count is rounded down). How \
         many residents does the town have after {years} years?"
    );
    let program = format!(
        "people = {start}\nfor _ in range({years}):\n    people = people * (100 + {percent}) // 100\n\
         print(people)"
    );
    (question, Rational::integer(people), program)
}

fn split_bill(d: usize, rng: &mut Rng) -> Generated {
    let friends = pick(rng, [(2, 4), (3, 7), (5, 12)], d);
    let pizzas = rng.range(1, 6);
    let pizza_cents = rng.range(8, 25) * 100 + rng.range(0, 3) * 25;
    let drinks = rng.range(0, 10);
    let drink_cents = rng.range(1, 5) * 100 + rng.range(0, 19) * 5;
    let tip_percent = pick(rng, [(0, 0), (10, 20), (12, 22)], d);
    let cents = i128::from(pizzas * pizza_cents + drinks * drink_cents);
    // dollars each = cents * (100 + tip) / (100 * 100 * friends)
    let answer = Rational::new(
        cents * i128::from(100 + tip_percent),
        100 * 100 * i128::from(friends),
    )
    .expect("friends >= 2");
    let tip_text = if tip_percent > 0 {
        format!(" They add a tip of {tip_percent}% of the food and drink total.")
    } else {
        String::new()
    };
    let question = format!(
        "{friends} friends order {pizzas} pizzas at ${}.{:02} each and {drinks} drinks at ${}.{:02} \
         each.{tip_text} They split the whole cost equally. How many dollars does each friend pay? \
         Give the exact amount (a fraction a/b or a decimal; do not round).",
        pizza_cents / 100,
        pizza_cents % 100,
        drink_cents / 100,
        drink_cents % 100,
    );
    let program = format!(
        "import math\ncents = {pizzas} * {pizza_cents} + {drinks} * {drink_cents}\nnum = cents * \
         (100 + {tip_percent})\nden = 100 * 100 * {friends}\ng = math.gcd(num, den)\nnum, den = num \
         // g, den // g\nprint(num if den == 1 else f\"{{num}}/{{den}}\")"
    );
    (question, answer, program)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

fn gcd128(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd128(b, a % b) }
}
