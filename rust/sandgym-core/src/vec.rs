//! VecEnv: N envs of one id stepped together on rayon. Each slot's result is its own `Result`, so one
//! faulting guest costs only its own episode; slots are addressed by index, like envpool's `env_id`.
//! [`VecEnv::apply`] gives each slot its own operation in one parallel pass, which is what a vector
//! env's autoreset needs (finished slots reset while the others step).

use rayon::prelude::*;
use sandgym_abi::{Action, ResetOutput, StepOutput};
use serde_json::Value;

use crate::env::{Env, EnvOptions};
use crate::error::{Error, Result};
use crate::parse::parse_action;
use crate::registry;

/// What one slot does in [`VecEnv::apply`].
#[derive(Debug, Clone)]
pub enum SlotOp {
    /// Left as it is.
    Skip,
    /// A new episode: the seed and the task (generated when `None`).
    Reset {
        seed: u64,
        task: Option<Value>,
    },
    Step(Action),
    /// Model text, parsed as [`VecEnv::step_text`] does.
    StepText(String),
}

/// One slot's outcome in [`VecEnv::apply`], by the operation it was given.
#[derive(Debug)]
pub enum SlotResult {
    Skipped,
    Reset(Result<ResetOutput>),
    /// `action` is the parsed action of a [`SlotOp::StepText`] (`None` for [`SlotOp::Step`]).
    Step {
        action: Option<Action>,
        output: Result<StepOutput>,
    },
}

/// A batch of envs of the same id.
pub struct VecEnv {
    envs: Vec<Env>,
}

impl VecEnv {
    /// Makes `n` envs of `id` (compiled once, instantiated `n` times).
    pub fn new(id: &str, n: usize, options: EnvOptions) -> Result<VecEnv> {
        if n == 0 {
            return Err(Error::InvalidArgument(
                "a VecEnv needs at least one env".into(),
            ));
        }
        let mut first = registry::make(id, options)?;
        let mut envs = Vec::with_capacity(n);
        // Forking the configured env skips configuring every copy (which for envs that load a large
        // database means parsing it again) and is never slower than a fresh instance.
        for _ in 1..n {
            envs.push(first.fork()?);
        }
        envs.insert(0, first);
        Ok(VecEnv { envs })
    }

    pub fn len(&self) -> usize {
        self.envs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    pub fn envs(&self) -> &[Env] {
        &self.envs
    }

    pub fn envs_mut(&mut self) -> &mut [Env] {
        &mut self.envs
    }

    fn check_len(&self, what: &str, got: usize) -> Result<()> {
        if got != self.envs.len() {
            return Err(Error::InvalidArgument(format!(
                "{what}: got {got} entries for {} envs",
                self.envs.len()
            )));
        }
        Ok(())
    }

    /// Resets every env: slot `i` with `seeds[i]` and `tasks[i]` (generated when `None`).
    pub fn reset(
        &mut self,
        seeds: &[u64],
        tasks: Option<&[Option<Value>]>,
    ) -> Result<Vec<Result<ResetOutput>>> {
        self.check_len("seeds", seeds.len())?;
        if let Some(tasks) = tasks {
            self.check_len("tasks", tasks.len())?;
        }
        Ok(self
            .envs
            .par_iter_mut()
            .enumerate()
            .map(|(i, env)| env.reset(seeds[i], tasks.and_then(|t| t[i].clone())))
            .collect())
    }

    /// Steps every env with its action.
    pub fn step(&mut self, actions: &[Action]) -> Result<Vec<Result<StepOutput>>> {
        self.check_len("actions", actions.len())?;
        Ok(self
            .envs
            .par_iter_mut()
            .zip(actions.par_iter())
            .map(|(env, action)| env.step(action))
            .collect())
    }

    /// Parses each model completion (Hermes or OpenAI JSON) and steps its env with it.
    pub fn step_text(&mut self, texts: &[String]) -> Result<Vec<Result<StepOutput>>> {
        self.check_len("texts", texts.len())?;
        Ok(self
            .envs
            .par_iter_mut()
            .zip(texts.par_iter())
            .map(|(env, text)| env.step(&parse_action(text)))
            .collect())
    }

    /// Runs `ops[i]` on slot `i`, all slots in one parallel pass.
    pub fn apply(&mut self, ops: Vec<SlotOp>) -> Result<Vec<SlotResult>> {
        self.check_len("ops", ops.len())?;
        Ok(self
            .envs
            .par_iter_mut()
            .zip(ops.into_par_iter())
            .map(|(env, op)| match op {
                SlotOp::Skip => SlotResult::Skipped,
                SlotOp::Reset { seed, task } => SlotResult::Reset(env.reset(seed, task)),
                SlotOp::Step(action) => SlotResult::Step {
                    output: env.step(&action),
                    action: None,
                },
                SlotOp::StepText(text) => {
                    let action = parse_action(&text);
                    SlotResult::Step {
                        output: env.step(&action),
                        action: Some(action),
                    }
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALC: &str =
        r#"<tool_call>{"name": "calc", "arguments": {"expression": "1+2"}}</tool_call>"#;

    /// Each slot gets its own operation, and its outcome is the one a lone env would give.
    #[test]
    fn apply_runs_each_slot_its_own_operation() {
        let mut vec = VecEnv::new("countdown-v0", 4, EnvOptions::default()).unwrap();
        let mut single = registry::make("countdown-v0", EnvOptions::default()).unwrap();
        let resets = vec.reset(&[1, 2, 3, 4], None).unwrap();
        assert!(resets.iter().all(Result::is_ok));
        let expected_reset = single.reset(9, None).unwrap();
        let ops = vec![
            SlotOp::Skip,
            SlotOp::Reset {
                seed: 9,
                task: None,
            },
            SlotOp::Step(parse_action(CALC)),
            SlotOp::StepText(CALC.into()),
        ];
        let results = vec.apply(ops).unwrap();
        assert!(matches!(results[0], SlotResult::Skipped));
        match &results[1] {
            SlotResult::Reset(Ok(out)) => assert_eq!(out, &expected_reset),
            other => panic!("slot 1: {other:?}"),
        }
        let outputs: Vec<&StepOutput> = results[2..]
            .iter()
            .map(|r| match r {
                SlotResult::Step {
                    output: Ok(out), ..
                } => out,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            outputs[0].messages[0].content,
            outputs[1].messages[0].content
        );
        assert!(matches!(&results[2], SlotResult::Step { action: None, .. }));
        match &results[3] {
            SlotResult::Step {
                action: Some(action),
                ..
            } => assert_eq!(action, &parse_action(CALC)),
            other => panic!("slot 3: {other:?}"),
        }
        assert!(vec.apply(vec![SlotOp::Skip]).is_err(), "one op per slot");
    }
}
