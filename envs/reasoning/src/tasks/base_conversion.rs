//! `base_conversion` (after reasoning-gym's `base_conversion`): convert a number from one base to
//! another (bases 2..=36, digits above 9 as lowercase letters). The verifier compares the canonical
//! digits (no leading zeros, no prefix) case-insensitively.

use sandgym_sdk::{Rng, Value, json, serde_json::Map};

use super::{AnswerPuzzle, Family, Instance, Knob, Knobs, int_field, known_fields, object};

const MAX_VALUE: i64 = 1_000_000_000_000;

fn to_base(mut n: i64, base: i64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".to_string();
    }
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(DIGITS[(n % base) as usize]);
        n /= base;
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

fn base_name(base: i64) -> String {
    match base {
        2 => "binary".to_string(),
        8 => "octal".to_string(),
        10 => "decimal".to_string(),
        16 => "hexadecimal".to_string(),
        b => format!("base-{b}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Conversion {
    value: i64,
    source_base: i64,
    target_base: i64,
}

impl AnswerPuzzle for Conversion {
    fn statement(&self) -> String {
        format!(
            "Convert the {} number {} to {}. If the target base is greater than 10, use lowercase \
             letters a-z for digits above 9. Submit only the digits (no prefix such as 0x, no \
             leading zeros).",
            base_name(self.source_base),
            to_base(self.value, self.source_base),
            base_name(self.target_base)
        )
    }

    fn to_json(&self) -> Map<String, Value> {
        object(json!({
            "value": self.value,
            "source_base": self.source_base,
            "target_base": self.target_base,
        }))
    }

    fn verify(&self, answer: &str) -> Result<(), String> {
        let expected = to_base(self.value, self.target_base);
        let given = answer.trim().to_lowercase();
        if given == expected {
            Ok(())
        } else {
            Err(format!(
                "{given:?} is not the {} form",
                base_name(self.target_base)
            ))
        }
    }

    fn expert_answer(&self) -> String {
        to_base(self.value, self.target_base)
    }

    fn wrong_answers(&self) -> Vec<String> {
        let mut wrong = vec![
            to_base(self.value + 1, self.target_base),
            format!("0{}", to_base(self.value, self.target_base)),
            to_base(self.value, self.source_base),
        ];
        if self.value > 0 {
            wrong.push(to_base(self.value - 1, self.target_base));
        }
        wrong.retain(|w| self.verify(w).is_err());
        wrong
    }
}

static KNOBS: [Knob; 4] = [
    Knob::new("min_base", 2, 36, [2, 2, 2, 2, 2], "smallest base"),
    Knob::new("max_base", 2, 36, [16, 16, 20, 30, 36], "largest base"),
    Knob::new(
        "min_value",
        0,
        MAX_VALUE,
        [0, 0, 0, 100, 1000],
        "smallest value",
    ),
    Knob::new(
        "max_value",
        0,
        MAX_VALUE,
        [1000, 10_000, 100_000, 1_000_000, 100_000_000],
        "largest value",
    ),
];

pub struct BaseConversion;

impl Family for BaseConversion {
    fn name(&self) -> &'static str {
        "base_conversion"
    }
    fn follows(&self) -> &'static str {
        "base_conversion"
    }
    fn knobs(&self) -> &'static [Knob] {
        &KNOBS
    }
    fn check_knobs(&self, knobs: &Knobs) -> Result<(), String> {
        knobs.ordered("min_base", "max_base")?;
        knobs.ordered("min_value", "max_value")?;
        if knobs.get("min_base") == knobs.get("max_base") {
            return Err("`min_base` and `max_base` must differ: the two bases are distinct".into());
        }
        Ok(())
    }
    fn generate(&self, rng: &mut Rng, knobs: &Knobs) -> Result<Instance, String> {
        let value = knobs.draw(rng, "min_value", "max_value");
        let source_base = knobs.draw(rng, "min_base", "max_base");
        let mut target_base = knobs.draw(rng, "min_base", "max_base");
        while target_base == source_base {
            target_base = knobs.draw(rng, "min_base", "max_base");
        }
        Ok(Instance::Answer(Box::new(Conversion {
            value,
            source_base,
            target_base,
        })))
    }
    fn load(&self, task: &Map<String, Value>) -> Result<Instance, String> {
        known_fields(task, &["value", "source_base", "target_base"])?;
        Ok(Instance::Answer(Box::new(Conversion {
            value: int_field(task, "value", 0, MAX_VALUE)?,
            source_base: int_field(task, "source_base", 2, 36)?,
            target_base: int_field(task, "target_base", 2, 36)?,
        })))
    }
}
