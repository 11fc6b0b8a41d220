//! `number_sorting` (after reasoning-gym's `number_sorting`): sort decimal numbers ascending or
//! descending. The answer is a list such as `['-6.5', '1', '3.25']` (brackets and quotes optional);
//! the verifier compares the values exactly, in order.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{AnswerPuzzle, Family, Instance, Knob, Knobs, known_fields, object, str_list_field};

/// Decimals a number may carry; values are compared as integers scaled by 10^SCALE_DIGITS.
const SCALE_DIGITS: usize = 6;
const MAX_COUNT: usize = 50;
const MAX_ABS: i64 = 1_000_000_000;

/// Parses a decimal like `-12.50` into an integer scaled by 10^SCALE_DIGITS.
fn parse_decimal(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || whole.len() > 10
        || fraction.len() > SCALE_DIGITS
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let padded = format!("{fraction:0<SCALE_DIGITS$}");
    let value =
        whole.parse::<i64>().ok()? * 10i64.pow(SCALE_DIGITS as u32) + padded.parse::<i64>().ok()?;
    Some(if negative { -value } else { value })
}

/// Splits a list answer into its items: optional surrounding brackets, comma-separated items, each
/// optionally quoted.
fn parse_list(answer: &str) -> Vec<String> {
    let text = answer.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if text.trim().is_empty() {
        return Vec::new();
    }
    text.split(',')
        .map(|item| {
            item.trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .trim()
                .to_string()
        })
        .collect()
}

fn render_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sorting {
    numbers: Vec<String>,
    descending: bool,
}

impl Sorting {
    fn sorted(&self) -> Vec<String> {
        let mut items = self.numbers.clone();
        items.sort_by_key(|n| parse_decimal(n).expect("validated at load"));
        if self.descending {
            items.reverse();
        }
        items
    }
}

impl AnswerPuzzle for Sorting {
    fn statement(&self) -> String {
        format!(
            "Sort these numbers in {} order: {}\n\nSubmit the sorted numbers as a list of \
             strings, for example ['-69', '-13.5', '1', '7'].",
            if self.descending {
                "descending"
            } else {
                "ascending"
            },
            self.numbers.join(", ")
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({"numbers": self.numbers, "descending": self.descending}))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        if answer.len() > super::MAX_ANSWER_LEN {
            return Err("the answer is too long".to_string());
        }
        let given = parse_list(answer);
        let values = given
            .iter()
            .map(|item| parse_decimal(item).ok_or_else(|| format!("{item:?} is not a number")))
            .collect::<Result<Vec<i64>, String>>()?;
        let expected: Vec<i64> = self
            .sorted()
            .iter()
            .map(|n| parse_decimal(n).expect("validated at load"))
            .collect();
        if values.len() != expected.len() {
            return Err(format!(
                "the list has {} numbers, expected {}",
                values.len(),
                expected.len()
            ));
        }
        if values != expected {
            return Err("the numbers are not the given ones in sorted order".to_string());
        }
        Ok(())
    }

    fn expert_answer(&self) -> String {
        render_list(&self.sorted())
    }

    fn wrong_answers(&self) -> Vec<String> {
        let sorted = self.sorted();
        let mut wrong = vec![render_list(&self.numbers), render_list(&sorted[1..])];
        let mut reversed = sorted.clone();
        reversed.reverse();
        wrong.push(render_list(&reversed));
        if let Some(i) =
            (1..sorted.len()).find(|&i| parse_decimal(&sorted[i]) != parse_decimal(&sorted[i - 1]))
        {
            let mut swapped = sorted.clone();
            swapped.swap(i, i - 1);
            wrong.push(render_list(&swapped));
        }
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

static KNOBS: [Knob; 6] = [
    Knob::new(
        "min_numbers",
        2,
        MAX_COUNT as i64,
        [3, 5, 8, 10, 15],
        "fewest numbers",
    ),
    Knob::new(
        "max_numbers",
        2,
        MAX_COUNT as i64,
        [10, 12, 15, 20, 30],
        "most numbers",
    ),
    Knob::new(
        "min_decimals",
        0,
        SCALE_DIGITS as i64,
        [0, 0, 1, 1, 2],
        "fewest decimal places",
    ),
    Knob::new(
        "max_decimals",
        0,
        SCALE_DIGITS as i64,
        [2, 2, 3, 3, 4],
        "most decimal places",
    ),
    Knob::new(
        "min_value",
        -MAX_ABS,
        MAX_ABS,
        [-100, -1000, -1000, -10_000, -100_000],
        "smallest value",
    ),
    Knob::new(
        "max_value",
        -MAX_ABS,
        MAX_ABS,
        [100, 1000, 1000, 10_000, 100_000],
        "largest value",
    ),
];

pub struct NumberSorting;

impl Family for NumberSorting {
    fn name(&self) -> &'static str {
        "number_sorting"
    }
    fn follows(&self) -> &'static str {
        "number_sorting"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_numbers", "max_numbers")?;
        knobs.ordered("min_decimals", "max_decimals")?;
        knobs.ordered("min_value", "max_value")
    }
    /// Each number draws its own decimal count, then a value in range at that precision.
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let count = knobs.draw(rng, "min_numbers", "max_numbers");
        let numbers = (0..count)
            .map(|_| {
                let decimals = knobs.draw(rng, "min_decimals", "max_decimals") as u32;
                let scale = 10i64.pow(decimals);
                let scaled = rng.range(
                    knobs.get("min_value") * scale,
                    knobs.get("max_value") * scale,
                );
                if decimals == 0 {
                    return scaled.to_string();
                }
                let sign = if scaled < 0 { "-" } else { "" };
                let abs = scaled.abs();
                format!(
                    "{sign}{}.{:0width$}",
                    abs / scale,
                    abs % scale,
                    width = decimals as usize
                )
            })
            .collect();
        Ok(Instance::Answer(Box::new(Sorting {
            numbers,
            descending: rng.bernoulli(0.5),
        })))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["numbers", "descending"])?;
        let numbers = str_list_field(task, "numbers", 1..=MAX_COUNT, 24)?;
        if let Some(bad) = numbers.iter().find(|n| parse_decimal(n).is_none()) {
            return Err(format!(
                "task field `numbers` must hold decimal numbers (at most {SCALE_DIGITS} \
                 decimals), got {bad:?}"
            ));
        }
        let descending = task
            .get("descending")
            .and_then(Value::as_bool)
            .ok_or("task field `descending` must be true or false")?;
        Ok(Instance::Answer(Box::new(Sorting {
            numbers,
            descending,
        })))
    }
}
