//! The expert policy: plays the env's own expert action (`sandgym_expert`), for demonstrations.

use sandgym_abi::Action;

use super::{Needs, Policy, PolicyInput};
use crate::error::{Error, Result};

/// Plays the env's expert. Fails the episode when the env has no expert for the state.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpertPolicy;

impl Policy for ExpertPolicy {
    fn name(&self) -> &str {
        "expert"
    }

    fn needs(&self) -> Needs {
        Needs {
            expert: true,
            admissible: false,
        }
    }

    fn act(&self, input: &PolicyInput<'_>) -> Result<Action> {
        input
            .expert
            .cloned()
            .ok_or_else(|| Error::Policy("the env offers no expert action in this state".into()))
    }
}
