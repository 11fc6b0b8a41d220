//! `basic_arithmetic` and `chain_sum` (after reasoning-gym's tasks of the same names): evaluate an
//! integer expression. The answer is one whole number; the verifier compares it exactly.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, Family, Instance, Knob, Knobs, known_fields, object, str_field, verify_int,
    wrong_ints,
};
use crate::expr::{Node, evaluate};

const TERM_KNOBS: [Knob; 4] = [
    Knob::new(
        "min_terms",
        2,
        12,
        [2, 3, 4, 5, 6],
        "fewest numbers in the expression",
    ),
    Knob::new(
        "max_terms",
        2,
        12,
        [4, 5, 6, 8, 10],
        "most numbers in the expression",
    ),
    Knob::new(
        "min_digits",
        1,
        6,
        [1, 1, 1, 2, 2],
        "fewest digits per number",
    ),
    Knob::new(
        "max_digits",
        1,
        6,
        [2, 2, 3, 3, 4],
        "most digits per number",
    ),
];

fn check_term_knobs(knobs: &Knobs) -> Result<(), String> {
    knobs.ordered("min_terms", "max_terms")?;
    knobs.ordered("min_digits", "max_digits")
}

fn number(rng: &mut Rng, knobs: &Knobs) -> i128 {
    let digits = knobs.draw(rng, "min_digits", "max_digits") as u32;
    let low = if digits == 1 {
        0
    } else {
        10i64.pow(digits - 1)
    };
    i128::from(rng.range(low, 10i64.pow(digits) - 1))
}

/// An expression task: the text shown and its exact value (both families share the puzzle type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    expression: String,
    answer: i128,
}

impl Expression {
    fn from_json(task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["expression"])?;
        let expression = str_field(task, "expression", crate::expr::MAX_LEN)?.to_string();
        let value = evaluate(&expression)
            .map_err(|e| format!("task field `expression` is not valid: {e}"))?
            .value;
        let answer = value.as_integer().ok_or_else(|| {
            format!("task field `expression` must have a whole-number value, got {value}")
        })?;
        Ok(Instance::Answer(Box::new(Expression {
            expression,
            answer,
        })))
    }
}

impl AnswerPuzzle for Expression {
    fn statement(&self) -> String {
        format!(
            "Calculate {}\n\nSubmit the result as a whole number, e.g. \"-42\".",
            self.expression
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"expression": self.expression}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        verify_int(answer, self.answer)
    }

    fn expert_answer(&self) -> String {
        self.answer.to_string()
    }

    fn wrong_answers(&self) -> Vec<String> {
        wrong_ints(self.answer)
    }
}

/// Builds a random expression of `terms` numbers. A division's divisor is a literal chosen among the
/// dividend's divisors, so every value is a whole number; when none fits (or a product would
/// overflow) the operator falls back to `+`.
fn build(rng: &mut Rng, knobs: &Knobs, terms: usize) -> Node {
    if terms == 1 {
        return Node::literal(number(rng, knobs));
    }
    let op = *rng.choose(&['+', '-', '*', '/']);
    if op == '/' {
        let left = build(rng, knobs, terms - 1);
        let dividend = left
            .value
            .as_integer()
            .expect("generated values are whole")
            .abs();
        let limit = 10i128
            .pow(knobs.get("max_digits") as u32)
            .min(1000)
            .min(dividend);
        let divisors: Vec<i128> = (2..=limit).filter(|d| dividend % d == 0).collect();
        let right = if divisors.is_empty() {
            number(rng, knobs)
        } else {
            *rng.choose(&divisors)
        };
        let op = if divisors.is_empty() { '+' } else { '/' };
        return Node::combine(left, op, Node::literal(right))
            .expect("a whole quotient or a small sum");
    }
    let split = rng.range(1, terms as i64 - 1) as usize;
    let left = build(rng, knobs, split);
    let right = build(rng, knobs, terms - split);
    // Products are capped well inside i128, so the fallback sum can never overflow either.
    let op = if left
        .value
        .apply(op, right.value)
        .is_some_and(|v| v.numerator().abs() < 10i128.pow(30))
    {
        op
    } else {
        '+'
    };
    Node::combine(left, op, right).expect("checked above")
}

pub struct BasicArithmetic;

impl Family for BasicArithmetic {
    fn name(&self) -> &'static str {
        "basic_arithmetic"
    }

    fn follows(&self) -> &'static str {
        "basic_arithmetic"
    }

    fn knobs(&self) -> &'static [Knob] {
        &TERM_KNOBS
    }

    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        check_term_knobs(knobs)
    }

    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let terms = knobs.draw(rng, "min_terms", "max_terms") as usize;
        let node = build(rng, knobs, terms);
        Ok(Instance::Answer(Box::new(Expression {
            answer: node.value.as_integer().expect("generated values are whole"),
            expression: node.text,
        })))
    }

    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        Expression::from_json(task)
    }
}

pub struct ChainSum;

impl Family for ChainSum {
    fn name(&self) -> &'static str {
        "chain_sum"
    }

    fn follows(&self) -> &'static str {
        "chain_sum"
    }

    fn knobs(&self) -> &'static [Knob] {
        &TERM_KNOBS
    }

    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        check_term_knobs(knobs)
    }

    /// A left-to-right chain of additions and subtractions, as reasoning-gym's `chain_sum` draws.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let terms = knobs.draw(rng, "min_terms", "max_terms");
        let first = number(rng, knobs);
        let mut text = first.to_string();
        let mut answer = first;
        for _ in 1..terms {
            let n = number(rng, knobs);
            if rng.bernoulli(0.5) {
                text.push_str(&format!(" + {n}"));
                answer += n;
            } else {
                text.push_str(&format!(" - {n}"));
                answer -= n;
            }
        }
        Ok(Instance::Answer(Box::new(Expression {
            expression: text,
            answer,
        })))
    }

    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        Expression::from_json(task)
    }
}
