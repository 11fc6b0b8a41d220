//! The random policy: uniform over the env's admissible actions when it lists them, otherwise a random
//! tool from the schemas with arguments sampled from each parameter's JSON schema.

use sandgym_abi::Action;
use serde_json::{Map, Value, json};

use super::{Needs, Policy, PolicyInput};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// Samples actions uniformly; reproducible from the episode seed and turn.
#[derive(Debug, Clone, Default)]
pub struct RandomPolicy {
    /// Ignore admissible actions and always sample from the tool schemas.
    pub schema_only: bool,
}

const WORDS: &[&str] = &[
    "0", "1", "2", "7", "10", "24", "1+2", "3*4", "(5-1)/2", "yes", "no", "x",
];

fn sample_value(schema: &Value, rng: &mut SplitMix64, depth: u32) -> Value {
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.is_empty()
    {
        return options[rng.below(options.len())].clone();
    }
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    match kind {
        "integer" => json!(rng.below(101) as i64 - 10),
        "number" => json!(rng.below(10_001) as f64 / 100.0),
        "boolean" => json!(rng.below(2) == 1),
        "array" if depth < 3 => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..rng.below(4))
                    .map(|_| sample_value(&items, rng, depth + 1))
                    .collect(),
            )
        }
        "object" if depth < 3 => sample_object(schema, rng, depth + 1),
        _ => json!(WORDS[rng.below(WORDS.len())]),
    }
}

fn sample_object(schema: &Value, rng: &mut SplitMix64, depth: u32) -> Value {
    let mut out = Map::new();
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, property) in properties {
            out.insert(name.clone(), sample_value(property, rng, depth));
        }
    }
    Value::Object(out)
}

impl Policy for RandomPolicy {
    fn name(&self) -> &str {
        "random"
    }

    fn needs(&self) -> Needs {
        Needs {
            expert: false,
            admissible: !self.schema_only,
        }
    }

    fn act(&self, input: &PolicyInput<'_>) -> Result<Action> {
        let mut rng = SplitMix64::for_stream(input.episode_seed, u64::from(input.turn));
        if !input.admissible.is_empty() {
            return Ok(input.admissible[rng.below(input.admissible.len())].clone());
        }
        if input.tools.is_empty() {
            return Err(Error::Policy(
                "the env has no tools and no admissible actions".into(),
            ));
        }
        let tool = &input.tools[rng.below(input.tools.len())];
        let function = tool.get("function").unwrap_or(tool);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Policy(format!("tool schema without a name: {tool}")))?;
        let arguments = sample_object(
            function.get("parameters").unwrap_or(&json!({})),
            &mut rng,
            0,
        );
        Ok(Action::tool(name, &arguments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_sampling_is_reproducible_and_well_typed() {
        let tools = vec![
            json!({"type": "function", "function": {"name": "f", "parameters": {
                "type": "object",
                "properties": {"n": {"type": "integer"}, "s": {"type": "string"}, "k": {"enum": ["a", "b"]}}
            }}}),
        ];
        let input = PolicyInput {
            messages: &[],
            tools: &tools,
            expert: None,
            admissible: &[],
            episode_seed: 3,
            turn: 1,
        };
        let policy = RandomPolicy::default();
        let a = policy.act(&input).unwrap();
        assert_eq!(a, policy.act(&input).unwrap());
        let args: Value = serde_json::from_str(&a.tool_calls[0].arguments).unwrap();
        assert!(args["n"].is_i64() && args["s"].is_string());
        assert!(["a", "b"].contains(&args["k"].as_str().unwrap()));
    }
}
