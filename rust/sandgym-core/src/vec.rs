//! VecEnv: N envs of one id stepped together on rayon. Each slot's result is its own `Result`, so one
//! faulting guest costs only its own episode; slots are addressed by index, like envpool's `env_id`.

use rayon::prelude::*;
use sandgym_abi::{Action, ResetOutput, StepOutput};
use serde_json::Value;

use crate::env::{Env, EnvOptions};
use crate::error::{Error, Result};
use crate::parse::parse_action;
use crate::registry;

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
}
