//! [`Batcher`]: gathers the one-episode calls of the collector's worker threads into batches for a policy
//! that is best called once per batch (a Python model, an `n > 1` request to a server).
//!
//! Each worker puts its input in a shared queue and waits. The first waiting worker that finds no batch
//! being run becomes the leader: it waits until the queue holds `max_batch` inputs or `linger` has passed
//! since it started waiting, takes up to `max_batch` inputs, calls the inner policy's `act_batch` without
//! holding the lock, hands out the results and steps down. Workers whose env is still stepping join the
//! next batch. A panic in the inner policy becomes an error for that batch's episodes, never a hang.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sandgym_abi::{Action, Message};
use serde_json::Value;

use super::{Decision, Needs, Policy, PolicyInput};
use crate::error::{Error, Result};

/// A [`PolicyInput`] with owned data, so another thread can act on it.
#[derive(Debug, Clone)]
struct OwnedInput {
    messages: Vec<Message>,
    tools: Vec<Value>,
    expert: Option<Action>,
    admissible: Vec<Action>,
    episode_seed: u64,
    turn: u32,
}

impl OwnedInput {
    fn from(input: &PolicyInput<'_>) -> Self {
        OwnedInput {
            messages: input.messages.to_vec(),
            tools: input.tools.to_vec(),
            expert: input.expert.cloned(),
            admissible: input.admissible.to_vec(),
            episode_seed: input.episode_seed,
            turn: input.turn,
        }
    }

    fn view(&self) -> PolicyInput<'_> {
        PolicyInput {
            messages: &self.messages,
            tools: &self.tools,
            expert: self.expert.as_ref(),
            admissible: &self.admissible,
            episode_seed: self.episode_seed,
            turn: self.turn,
        }
    }
}

#[derive(Default)]
struct State {
    queue: Vec<(u64, OwnedInput)>,
    results: HashMap<u64, Result<Decision>>,
    next_ticket: u64,
    leading: bool,
}

/// Runs a policy on batches gathered from concurrent callers; see the module docs.
pub struct Batcher<P> {
    inner: P,
    max_batch: usize,
    linger: Duration,
    state: Mutex<State>,
    changed: Condvar,
}

impl<P: Policy> Batcher<P> {
    /// Batches of at most `max_batch` inputs (at least 1); the collector keeps that many episodes in
    /// flight. A batch waits at most 20 ms for late inputs.
    pub fn new(inner: P, max_batch: usize) -> Self {
        Self::with_linger(inner, max_batch, Duration::from_millis(20))
    }

    /// Like [`Batcher::new`] with another wait for late inputs.
    pub fn with_linger(inner: P, max_batch: usize, linger: Duration) -> Self {
        Batcher {
            inner,
            max_batch: max_batch.max(1),
            linger,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    /// The wrapped policy.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held while user code runs, so poisoning cannot leave the state half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leads one batch: waits for it to fill, runs it unlocked, stores the results.
    fn lead<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.leading = true;
        let deadline = Instant::now() + self.linger;
        while state.queue.len() < self.max_batch {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let take = state.queue.len().min(self.max_batch);
        let batch: Vec<(u64, OwnedInput)> = state.queue.drain(..take).collect();
        drop(state);
        let views: Vec<PolicyInput<'_>> = batch.iter().map(|(_, input)| input.view()).collect();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.inner.act_batch(&views)));
        let name = self.inner.name();
        let results: Vec<Result<Decision>> = match outcome {
            Ok(results) if results.len() == batch.len() => results,
            Ok(results) => (0..batch.len())
                .map(|_| {
                    Err(Error::Policy(format!(
                        "policy `{name}` returned {} decisions for {} inputs",
                        results.len(),
                        batch.len()
                    )))
                })
                .collect(),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                (0..batch.len())
                    .map(|_| Err(Error::Policy(format!("policy `{name}` panicked: {detail}"))))
                    .collect()
            }
        };
        let mut state = self.lock();
        for ((ticket, _), result) in batch.into_iter().zip(results) {
            state.results.insert(ticket, result);
        }
        state.leading = false;
        self.changed.notify_all();
        state
    }
}

impl<P: Policy> Policy for Batcher<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn needs(&self) -> Needs {
        self.inner.needs()
    }

    fn act(&self, input: &PolicyInput<'_>) -> Result<Action> {
        super::decide(self, input).map(|d| d.action)
    }

    fn act_batch(&self, inputs: &[PolicyInput<'_>]) -> Vec<Result<Decision>> {
        let mut state = self.lock();
        let first = state.next_ticket;
        state.next_ticket += inputs.len() as u64;
        for (i, input) in inputs.iter().enumerate() {
            state
                .queue
                .push((first + i as u64, OwnedInput::from(input)));
        }
        self.changed.notify_all();
        let tickets = first..first + inputs.len() as u64;
        loop {
            if tickets.clone().all(|t| state.results.contains_key(&t)) {
                return tickets
                    .map(|t| {
                        state
                            .results
                            .remove(&t)
                            .unwrap_or_else(|| Err(Error::Policy("lost batch result".into())))
                    })
                    .collect();
            }
            if !state.leading && !state.queue.is_empty() {
                state = self.lead(state);
                continue;
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn concurrency(&self) -> Option<usize> {
        Some(self.max_batch.max(self.inner.concurrency().unwrap_or(1)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Records batch sizes; fails inputs whose seed is 13, panics on seed 99.
    #[derive(Default)]
    struct Recorder {
        sizes: Mutex<Vec<usize>>,
        calls: AtomicUsize,
    }

    impl Policy for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }

        fn act(&self, _: &PolicyInput<'_>) -> Result<Action> {
            unreachable!("batched only")
        }

        fn act_batch(&self, inputs: &[PolicyInput<'_>]) -> Vec<Result<Decision>> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.sizes.lock().unwrap().push(inputs.len());
            assert!(inputs.iter().all(|i| i.episode_seed != 99), "boom");
            inputs
                .iter()
                .map(|i| {
                    if i.episode_seed == 13 {
                        Err(Error::Policy("unlucky".into()))
                    } else {
                        Ok(Decision::structured(Action::text(
                            i.episode_seed.to_string(),
                        )))
                    }
                })
                .collect()
        }
    }

    fn input(seed: u64) -> PolicyInput<'static> {
        PolicyInput {
            messages: &[],
            tools: &[],
            expert: None,
            admissible: &[],
            episode_seed: seed,
            turn: 0,
        }
    }

    #[test]
    fn concurrent_callers_share_batches_and_get_their_own_results() {
        let batcher = Batcher::with_linger(Recorder::default(), 8, Duration::from_millis(200));
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|seed| {
                    let b = &batcher;
                    s.spawn(move || super::super::decide(b, &input(seed)))
                })
                .collect();
            for (seed, handle) in handles.into_iter().enumerate() {
                let result = handle.join().unwrap();
                assert_eq!(result.unwrap().action, Action::text(seed.to_string()));
            }
        });
        let sizes = batcher.inner().sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 8);
        // Eight callers arriving together within the linger make far fewer than eight calls.
        assert!(sizes.len() < 8, "{sizes:?}");
        assert_eq!(batcher.concurrency(), Some(8));
    }

    #[test]
    fn errors_and_panics_stay_with_their_batch() {
        let batcher = Batcher::with_linger(Recorder::default(), 4, Duration::from_millis(1));
        let results = batcher.act_batch(&[input(1), input(13), input(2)]);
        assert!(results[0].is_ok() && results[2].is_ok());
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("unlucky")
        );
        let panicked = super::super::decide(&batcher, &input(99)).unwrap_err();
        assert!(
            panicked.to_string().contains("panicked: boom"),
            "{panicked}"
        );
        // The batcher still works after a panic.
        assert!(super::super::decide(&batcher, &input(5)).is_ok());
    }
}
