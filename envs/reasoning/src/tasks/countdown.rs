//! `countdown` and `puzzle24` (after reasoning-gym's `countdown` and `puzzle24`): combine every given
//! number exactly once with `+ - * /` and parentheses to reach the target. As in reasoning-gym (which
//! evaluates with sympy), intermediate fractions are allowed; the value must equal the target exactly.
//! The answer is the expression, without `=` or the result.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{
    AnswerPuzzle, Family, Instance, Knob, Knobs, int_field, int_list_field, known_fields,
    number_list_knobs, object, str_field,
};
use crate::expr::{MAX_LEN, Node, Rational, verify_uses_all};

/// Draws again when a random expression misses the target range; bounded so an unreachable range
/// fails at reset instead of spinning.
const MAX_ATTEMPTS: usize = 2000;
const MAX_NUMBERS: usize = 6;
const MAX_VALUE: i64 = 10_000;
/// Largest list the exhaustive solver (24-game tasks without a solution) accepts.
const MAX_SOLVER_NUMBERS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reach {
    numbers: Vec<i64>,
    target: i64,
    solution: String,
}

impl AnswerPuzzle for Reach {
    fn statement(&self) -> String {
        let numbers: Vec<String> = self.numbers.iter().map(i64::to_string).collect();
        format!(
            "Using all the numbers {}, create an expression that equals {}. Use each number \
             exactly once, with + - * / and parentheses (intermediate fractions are allowed). \
             Submit only the expression, e.g. \"(25 - 3) * 4\", without '=' or the result.",
            numbers.join(", "),
            self.target
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"numbers": self.numbers, "target": self.target, "solution": self.solution}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        verify_uses_all(&self.numbers, self.target, answer)
    }

    fn expert_answer(&self) -> String {
        self.solution.clone()
    }

    /// Near misses: one operator changed, one number dropped (`+ 0`-free), a plain sum.
    fn wrong_answers(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        for (from, to) in [('+', '-'), ('-', '+'), ('*', '+'), ('/', '*')] {
            if let Some(i) = self.solution.find(from) {
                let mut changed = self.solution.clone();
                changed.replace_range(i..i + 1, &to.to_string());
                wrong.push(changed);
            }
        }
        let numbers: Vec<String> = self.numbers.iter().map(i64::to_string).collect();
        wrong.push(numbers.join(" + "));
        wrong.push(numbers[1..].join(" * "));
        wrong.push(format!("{} + 1", self.solution));
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

/// Combines two generated nodes with a random operator whose result is a positive whole number
/// (larger operand first for `-` and `/`), so generated solutions read naturally.
fn random_combination(rng: &mut Rng, a: Node, b: Node) -> Option<Node> {
    let (x, y) = if a.value.numerator() >= b.value.numerator() {
        (a, b)
    } else {
        (b, a)
    };
    let mut ops = ['+', '-', '*', '/'];
    rng.shuffle(&mut ops);
    ops.into_iter().find_map(|op| {
        let value = x.value.apply(op, y.value)?;
        let natural = value.denominator() == 1
            && value.numerator() > 0
            && !(op == '/' && y.value.numerator() == 1);
        natural
            .then(|| Node::combine(x.clone(), op, y.clone()))
            .flatten()
    })
}

/// A random expression over all of `numbers` (random pairs merged until one remains).
fn random_expression(rng: &mut Rng, numbers: &[i64]) -> Option<Node> {
    let mut items: Vec<Node> = numbers
        .iter()
        .map(|&n| Node::literal(i128::from(n)))
        .collect();
    while items.len() > 1 {
        let i = rng.below(items.len() as u64) as usize;
        let a = items.swap_remove(i);
        let j = rng.below(items.len() as u64) as usize;
        let b = items.swap_remove(j);
        items.push(random_combination(rng, a, b)?);
    }
    items.pop()
}

/// Exhaustive search over rationals for an expression using every number once (small lists only).
/// The search combines values only and records each combination in an arena; the text is built
/// once, for the solution found.
fn solve(numbers: &[i64], target: i64) -> Option<String> {
    let mut arena: Vec<Step> = numbers.iter().map(|&n| Step::Leaf(i128::from(n))).collect();
    let items: Vec<(Rational, usize)> = numbers
        .iter()
        .enumerate()
        .map(|(i, &n)| (Rational::integer(i128::from(n)), i))
        .collect();
    let root = search(&items, Rational::integer(i128::from(target)), &mut arena)?;
    Some(render(&arena, root).text)
}

/// A node of the solver's arena: a given number, or two earlier nodes combined.
#[derive(Debug, Clone, Copy)]
enum Step {
    Leaf(i128),
    Combine(usize, char, usize),
}

fn search(items: &[(Rational, usize)], target: Rational, arena: &mut Vec<Step>) -> Option<usize> {
    if let [(value, node)] = items {
        return (*value == target).then_some(*node);
    }
    for i in 0..items.len() {
        for j in 0..items.len() {
            for op in ['+', '-', '*', '/'] {
                // + and * are commutative: one order suffices.
                if i == j || ((op == '+' || op == '*') && i > j) {
                    continue;
                }
                let Some(value) = items[i].0.apply(op, items[j].0) else {
                    continue;
                };
                arena.push(Step::Combine(items[i].1, op, items[j].1));
                let mut rest: Vec<(Rational, usize)> = items
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i && k != j)
                    .map(|(_, item)| *item)
                    .collect();
                rest.push((value, arena.len() - 1));
                if let Some(root) = search(&rest, target, arena) {
                    return Some(root);
                }
                arena.pop();
            }
        }
    }
    None
}

fn render(arena: &[Step], node: usize) -> Node {
    match arena[node] {
        Step::Leaf(n) => Node::literal(n),
        Step::Combine(a, op, b) => Node::combine(render(arena, a), op, render(arena, b))
            .expect("the search evaluated this combination"),
    }
}

fn reach_from_json(
    task: &Map<String, Value>,
    fixed_target: Option<i64>,
) -> Result<Instance, String> {
    known_fields(task, &["numbers", "target", "solution"])?;
    let numbers = int_list_field(task, "numbers", 2..=MAX_NUMBERS, 1, MAX_VALUE)?;
    let target = match (fixed_target, task.get("target")) {
        (Some(fixed), None) => fixed,
        (Some(fixed), Some(_)) => int_field(task, "target", fixed, fixed)?,
        (None, _) => int_field(task, "target", 1, 1_000_000_000)?,
    };
    let solution = match task.get("solution") {
        Some(_) => str_field(task, "solution", MAX_LEN)?.to_string(),
        None if numbers.len() <= MAX_SOLVER_NUMBERS => solve(&numbers, target)
            .ok_or("the numbers cannot reach the target (no `solution` exists)")?,
        None => {
            return Err(format!(
                "task field `solution` is required for more than {MAX_SOLVER_NUMBERS} numbers"
            ));
        }
    };
    verify_uses_all(&numbers, target, &solution)
        .map_err(|e| format!("task field `solution` is not a solution: {e}"))?;
    Ok(Instance::Answer(Box::new(Reach {
        numbers,
        target,
        solution,
    })))
}

static COUNTDOWN_KNOBS: [Knob; 6] = {
    let [min_numbers, max_numbers, min_value, max_value] = number_list_knobs(
        MAX_NUMBERS as i64,
        MAX_VALUE,
        [3, 4, 4, 5, 6],
        [4, 5, 6, 6, 6],
        [100; 5],
    );
    [
        min_numbers,
        max_numbers,
        min_value,
        max_value,
        Knob::new(
            "min_target",
            1,
            1_000_000_000,
            [100, 100, 100, 100, 1000],
            "smallest target",
        ),
        Knob::new(
            "max_target",
            1,
            1_000_000_000,
            [999, 999, 999, 999, 9999],
            "largest target",
        ),
    ]
};

pub struct Countdown;

impl Family for Countdown {
    fn name(&self) -> &'static str {
        "countdown"
    }
    fn follows(&self) -> &'static str {
        "countdown"
    }
    fn knobs(&self) -> &'static [Knob] {
        &COUNTDOWN_KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_numbers", "max_numbers")?;
        knobs.ordered("min_value", "max_value")?;
        knobs.ordered("min_target", "max_target")
    }
    /// As reasoning-gym: random numbers, a random expression over all of them, its value as the
    /// target (redrawn until the target lies in range); the expression is the expert's answer.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let range = knobs.get("min_target")..=knobs.get("max_target");
        for _ in 0..MAX_ATTEMPTS {
            let count = knobs.draw(rng, "min_numbers", "max_numbers");
            let numbers: Vec<i64> = (0..count)
                .map(|_| knobs.draw(rng, "min_value", "max_value"))
                .collect();
            let Some(node) = random_expression(rng, &numbers) else {
                continue;
            };
            if let Some(target) = node.value.as_integer().and_then(|t| i64::try_from(t).ok())
                && range.contains(&target)
            {
                return Ok(Instance::Answer(Box::new(Reach {
                    numbers,
                    target,
                    solution: node.text,
                })));
            }
        }
        Err(format!(
            "countdown: no target in {}..={} within {MAX_ATTEMPTS} draws; widen the target range",
            range.start(),
            range.end()
        ))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        reach_from_json(task, None)
    }
}

const TARGET_24: i64 = 24;

static PUZZLE24_KNOBS: [Knob; 2] = [
    Knob::new(
        "min_value",
        1,
        100,
        [1, 1, 1, 1, 1],
        "smallest of the four numbers",
    ),
    Knob::new(
        "max_value",
        1,
        100,
        [10, 10, 13, 20, 30],
        "largest of the four numbers",
    ),
];

pub struct Puzzle24;

impl Family for Puzzle24 {
    fn name(&self) -> &'static str {
        "puzzle24"
    }
    fn follows(&self) -> &'static str {
        "puzzle24"
    }
    fn knobs(&self) -> &'static [Knob] {
        &PUZZLE24_KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_value", "max_value")
    }
    /// Four random numbers, redrawn until the exhaustive solver finds 24.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        for _ in 0..MAX_ATTEMPTS {
            let numbers: Vec<i64> = (0..4)
                .map(|_| knobs.draw(rng, "min_value", "max_value"))
                .collect();
            if let Some(solution) = solve(&numbers, TARGET_24) {
                return Ok(Instance::Answer(Box::new(Reach {
                    numbers,
                    target: TARGET_24,
                    solution,
                })));
            }
        }
        Err(format!(
            "puzzle24: no solvable numbers within {MAX_ATTEMPTS} draws; widen the value range"
        ))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        reach_from_json(task, Some(TARGET_24))
    }
}
