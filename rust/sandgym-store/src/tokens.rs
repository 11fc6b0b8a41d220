//! One episode as one token sequence, derived from its policy turns' token ids.
//!
//! Each turn records the context the model generated from (`prompt_ids`) and what it generated
//! (`completion_ids`). When every turn's context extends the previous context plus the previous
//! completion, the episode is one sequence: the first prompt, then each completion (model tokens, mask 1)
//! followed by what the chat template and the env added before the next turn (mask 0). This is what
//! trainers train on (TRL's `env_mask`, verl's `response_mask`).
//!
//! A context that does not extend the previous one means the server re-tokenized the conversation
//! differently from what the model produced (a template that rewrites past turns, or a token split the
//! tokenizer would not make): the sequence would not be the tokens the model saw, so none is built and
//! the gap says where the contexts diverged.

use crate::trajectory::PolicyTurn;

/// An episode's tokens: `prompt_ids` then `response_ids`, with a mask and log-probability per response
/// token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodeTokens {
    /// The first turn's context (system prompt, task, generation prompt).
    pub prompt_ids: Vec<u32>,
    /// Everything after it, model and env tokens in order; it ends with the model's last token.
    pub response_ids: Vec<u32>,
    /// 1 for each model token, 0 for each env or template token.
    pub response_mask: Vec<u8>,
    /// The model's log-probability of each response token (0.0 for env tokens); `None` when some turn
    /// has no log-probabilities.
    pub response_logprobs: Option<Vec<f64>>,
}

/// Why an episode has no token sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenGap {
    /// The episode has no policy turns.
    #[error("the episode has no policy turns")]
    NoTurns,
    /// A turn carries no prompt or completion ids (the server or policy did not report them).
    #[error("turn {turn} has no {what} (the model's server did not return token ids)")]
    Missing { turn: usize, what: &'static str },
    /// A turn's context does not start with the sequence so far: the conversation was re-tokenized.
    #[error(
        "turn {turn}'s prompt does not extend the tokens so far: they differ at token {position} of \
         {expected} (the server re-tokenized the conversation)"
    )]
    Drift {
        turn: usize,
        position: usize,
        expected: usize,
    },
}

impl EpisodeTokens {
    /// The episode's sequence from its turns, or why there is none.
    pub fn from_turns(turns: &[PolicyTurn]) -> Result<Self, TokenGap> {
        let first = turns.first().ok_or(TokenGap::NoTurns)?;
        let mut tokens = EpisodeTokens {
            prompt_ids: first.prompt_ids.clone(),
            response_logprobs: Some(Vec::new()),
            ..EpisodeTokens::default()
        };
        for (i, turn) in turns.iter().enumerate() {
            if turn.prompt_ids.is_empty() {
                return Err(TokenGap::Missing {
                    turn: i,
                    what: "prompt ids",
                });
            }
            if turn.completion_ids.is_empty() {
                return Err(TokenGap::Missing {
                    turn: i,
                    what: "completion ids",
                });
            }
            if i > 0 {
                let so_far = tokens.prompt_ids.len() + tokens.response_ids.len();
                let context = tokens.prompt_ids.iter().chain(&tokens.response_ids);
                if let Some(position) = context
                    .zip(&turn.prompt_ids)
                    .position(|(a, b)| a != b)
                    .or((turn.prompt_ids.len() < so_far).then_some(turn.prompt_ids.len()))
                {
                    return Err(TokenGap::Drift {
                        turn: i,
                        position,
                        expected: so_far,
                    });
                }
                let added = &turn.prompt_ids[so_far..];
                tokens.extend(added, 0, None);
            }
            let logprobs = (turn.completion_logprobs.len() == turn.completion_ids.len())
                .then_some(turn.completion_logprobs.as_slice());
            tokens.extend(&turn.completion_ids, 1, logprobs);
        }
        Ok(tokens)
    }

    /// Appends `ids` with `mask`; env tokens (`logprobs` `None` with mask 0) get 0.0, a model turn without
    /// log-probabilities drops them for the whole sequence.
    fn extend(&mut self, ids: &[u32], mask: u8, logprobs: Option<&[f64]>) {
        self.response_ids.extend_from_slice(ids);
        self.response_mask
            .extend(std::iter::repeat_n(mask, ids.len()));
        match (&mut self.response_logprobs, logprobs, mask) {
            (Some(all), Some(lp), _) => all.extend_from_slice(lp),
            (Some(all), None, 0) => all.extend(std::iter::repeat_n(0.0, ids.len())),
            (slot, None, _) => *slot = None,
            (None, Some(_), _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(prompt: &[u32], completion: &[u32], logprobs: &[f64]) -> PolicyTurn {
        PolicyTurn {
            prompt_ids: prompt.to_vec(),
            completion_ids: completion.to_vec(),
            completion_logprobs: logprobs.to_vec(),
            ..PolicyTurn::default()
        }
    }

    #[test]
    fn turns_whose_contexts_extend_each_other_make_one_masked_sequence() {
        let turns = [
            turn(&[1, 2, 3], &[10, 11], &[-0.5, -0.25]),
            turn(&[1, 2, 3, 10, 11, 20, 21], &[12], &[-1.0]),
        ];
        let tokens = EpisodeTokens::from_turns(&turns).unwrap();
        assert_eq!(tokens.prompt_ids, [1, 2, 3]);
        assert_eq!(tokens.response_ids, [10, 11, 20, 21, 12]);
        assert_eq!(tokens.response_mask, [1, 1, 0, 0, 1]);
        assert_eq!(
            tokens.response_logprobs,
            Some(vec![-0.5, -0.25, 0.0, 0.0, -1.0])
        );
    }

    #[test]
    fn a_turn_without_logprobs_drops_them_for_the_sequence() {
        let turns = [turn(&[1], &[10], &[-0.5]), turn(&[1, 10, 20], &[12], &[])];
        let tokens = EpisodeTokens::from_turns(&turns).unwrap();
        assert_eq!(tokens.response_mask, [1, 0, 1]);
        assert_eq!(tokens.response_logprobs, None);
    }

    #[test]
    fn a_retokenized_context_is_a_drift_at_the_first_differing_token() {
        let turns = [
            turn(&[1, 2], &[10, 11], &[]),
            turn(&[1, 2, 10, 99, 20], &[12], &[]),
        ];
        assert_eq!(
            EpisodeTokens::from_turns(&turns),
            Err(TokenGap::Drift {
                turn: 1,
                position: 3,
                expected: 4
            })
        );
        // A context shorter than the sequence so far (the template dropped the model's last tokens).
        let short = [turn(&[1, 2], &[10, 11], &[]), turn(&[1, 2, 10], &[12], &[])];
        assert_eq!(
            EpisodeTokens::from_turns(&short),
            Err(TokenGap::Drift {
                turn: 1,
                position: 3,
                expected: 4
            })
        );
    }

    #[test]
    fn turns_without_ids_have_no_sequence() {
        assert_eq!(EpisodeTokens::from_turns(&[]), Err(TokenGap::NoTurns));
        let missing = [turn(&[1], &[10], &[]), turn(&[], &[12], &[])];
        assert_eq!(
            EpisodeTokens::from_turns(&missing),
            Err(TokenGap::Missing {
                turn: 1,
                what: "prompt ids"
            })
        );
    }
}
