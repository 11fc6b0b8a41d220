//! One live environment: reset / step / expert / actions / snapshot / restore / fork over one sandbox.
//!
//! Owns the episode lifecycle (a step after the end needs a reset; a faulted guest is replaced by a
//! fresh, reconfigured instance at the next reset) and the JSON decoding of guest output. Knows nothing
//! of policies, trajectories or storage.

use std::sync::Arc;

use sandgym_abi::{Action, EnvInfo, Envelope, ResetInput, ResetOutput, StepOutput};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::sandbox::{Call, Limits, Program, Query, Sandbox, Snapshot};

/// How to build an env: guest configuration knobs and sandbox limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvOptions {
    /// JSON object of the env's configuration knobs (see `EnvInfo::default_config`); `Null` for defaults.
    pub config: Value,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No episode yet, or the last one ended with a fault.
    Idle,
    /// The agent's turn.
    Running,
    /// The env waits for the simulated user's reply (the last output carried a `user_turn`).
    AwaitingUser,
    Ended,
}

/// Configuration that leaves at least this much written guest memory (a loaded database) is baked into
/// a pre-initialized program, so instances and forks share it copy-on-write instead of each holding
/// and copying it. Below it, deriving (and compiling) a program would cost more than it saves.
const PRE_INITIALIZE_BYTES: usize = 512 << 10;

/// A live environment instance.
pub struct Env {
    id: String,
    program: Program,
    /// The program fresh instances start from: `program`, or its pre-initialized form for `options`,
    /// whose instances start configured.
    base: Program,
    options: EnvOptions,
    info: Arc<EnvInfo>,
    sandbox: Sandbox,
    phase: Phase,
    /// The last admissible-action list decoded, with the guest output it came from (see
    /// [`Env::admissible`]).
    last_admissible: Option<(Vec<u8>, Arc<[Action]>)>,
}

/// A copy of an env's complete state between two calls; restores into the env it came from or any fork.
#[derive(Clone)]
pub struct EnvSnapshot {
    sandbox: Snapshot,
    phase: Phase,
}

impl EnvSnapshot {
    /// Bytes of guest memory this snapshot holds.
    pub fn memory_bytes(&self) -> usize {
        self.sandbox.memory_bytes()
    }
}

/// The guest call whose output is being decoded.
#[derive(Debug, Clone, Copy)]
enum Output {
    Info,
    Configure,
    Reset,
    Step,
    Expert,
    Actions,
}

impl Output {
    fn name(self) -> &'static str {
        match self {
            Output::Info => "info",
            Output::Configure => "configure",
            Output::Reset => "reset",
            Output::Step => "step",
            Output::Expert => "expert",
            Output::Actions => "actions",
        }
    }

    /// What the env refused when it answers this call with an error, as `Error::Rejected` says it.
    fn refused(self) -> &'static str {
        match self {
            Output::Configure => "the configuration",
            Output::Reset => "the task",
            Output::Step => "the action",
            Output::Info => "the info request",
            Output::Expert => "the expert request",
            Output::Actions => "the actions request",
        }
    }
}

/// Decodes a guest's result envelope; anything but a well-formed envelope is a malformed-output fault.
fn decode<T: DeserializeOwned>(sandbox: &mut Sandbox, bytes: &[u8], output: Output) -> Result<T> {
    match serde_json::from_slice::<Envelope<T>>(bytes) {
        Ok(envelope) => Result::<T, String>::from(envelope).map_err(|message| Error::Rejected {
            env: sandbox.program().origin().to_string(),
            call: output.refused(),
            message,
        }),
        Err(err) => {
            let preview: String = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into();
            Err(sandbox.malformed(format!(
                "{} output is not valid: {err} (starts with {preview:?})",
                output.name()
            )))
        }
    }
}

impl Env {
    /// Instantiates `program`, reads its info and applies `options.config`. `id` names the env in rows.
    pub fn new(id: impl Into<String>, program: &Program, options: EnvOptions) -> Result<Env> {
        let id = id.into();
        // Keyed by a digest: an imported database inlined into the config can be megabytes of JSON.
        let key = {
            use sha2::{Digest, Sha256};
            let config = serde_json::to_vec(&options.config).expect("config encodes");
            format!("{:x}", Sha256::digest(config))
        };
        if let Some(base) = program.pre_initialized(&key) {
            let info = program
                .cached_info()
                .expect("info is read before pre-initializing");
            return Ok(Env {
                id,
                program: program.clone(),
                sandbox: Sandbox::new(&base, &options.limits)?,
                base,
                options,
                info,
                phase: Phase::Idle,
                last_admissible: None,
            });
        }
        let mut sandbox = Sandbox::new(program, &options.limits)?;
        let info = match program.cached_info() {
            Some(info) => info,
            None => {
                let bytes = sandbox
                    .query(Query::Info)?
                    .expect("info is a required export");
                let info = Arc::new(decode::<EnvInfo>(&mut sandbox, &bytes, Output::Info)?);
                program.cache_info(info.clone());
                info
            }
        };
        configure(&mut sandbox, &options.config)?;
        let mut base = program.clone();
        // A module that cannot be pre-initialized keeps working, only with full-size snapshots.
        if sandbox.written_bytes() >= PRE_INITIALIZE_BYTES
            && let Ok(derived) = sandbox.pre_initialize(&key)
        {
            base = derived;
        }
        Ok(Env {
            id,
            program: program.clone(),
            base,
            options,
            info,
            sandbox,
            phase: Phase::Idle,
            last_admissible: None,
        })
    }

    /// The id this env was made with (registered id or path).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn rename(&mut self, id: String) {
        self.id = id;
    }

    /// Static description: name, version, prompt, tools, capabilities.
    pub fn info(&self) -> &EnvInfo {
        &self.info
    }

    pub fn options(&self) -> &EnvOptions {
        &self.options
    }

    /// Whether an episode is in progress (reset done, not yet terminated or truncated).
    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::AwaitingUser)
    }

    /// Whether the env waits for the simulated user: the last reset or step returned a `user_turn`,
    /// and the next move is [`Env::user_step`], not [`Env::step`].
    pub fn awaits_user(&self) -> bool {
        self.phase == Phase::AwaitingUser
    }

    /// Starts an episode. With `task = None` the env generates one from `seed`.
    /// After a guest fault the instance is replaced by a fresh one first.
    pub fn reset(&mut self, seed: u64, task: Option<Value>) -> Result<ResetOutput> {
        if self.sandbox.is_poisoned() {
            let mut fresh = Sandbox::new(&self.base, &self.options.limits)?;
            if self.base.digest() == self.program.digest() {
                configure(&mut fresh, &self.options.config)?;
            }
            self.sandbox = fresh;
        }
        self.phase = Phase::Idle;
        self.sandbox.reseed(seed);
        let input = serde_json::to_vec(&ResetInput { seed, task }).expect("reset input encodes");
        let bytes = self.sandbox.call(Call::Reset, &input)?;
        let output: ResetOutput = decode(&mut self.sandbox, &bytes, Output::Reset)?;
        self.phase = if output.user_turn.is_some() {
            Phase::AwaitingUser
        } else {
            Phase::Running
        };
        Ok(output)
    }

    /// Applies one agent action. A guest fault ends the episode (the next `reset` recovers). While the
    /// env waits for the simulated user this is refused (nothing changes): use [`Env::user_step`].
    pub fn step(&mut self, action: &Action) -> Result<StepOutput> {
        match self.phase {
            Phase::Running => {}
            Phase::AwaitingUser => {
                return Err(Error::InvalidArgument(
                    "the env waits for the simulated user's reply (the last output carried a \
                     `user_turn`); answer it with `user_step`"
                        .into(),
                ));
            }
            Phase::Idle | Phase::Ended => return Err(Error::ResetNeeded),
        }
        self.send_step(action)
    }

    /// Sends the simulated user's reply, plain text, when the last output carried a `user_turn`.
    /// The guest takes it through `sandgym_step` (it knows whose turn it is); the output's messages
    /// are what the agent sees of the reply. Refused (nothing changes) on the agent's turn.
    pub fn user_step(&mut self, content: &str) -> Result<StepOutput> {
        match self.phase {
            Phase::AwaitingUser => {}
            Phase::Running => {
                return Err(Error::InvalidArgument(
                    "it is the agent's turn: the env has not asked for a user reply".into(),
                ));
            }
            Phase::Idle | Phase::Ended => return Err(Error::ResetNeeded),
        }
        self.send_step(&Action::text(content))
    }

    fn send_step(&mut self, action: &Action) -> Result<StepOutput> {
        let input = serde_json::to_vec(action).expect("actions encode");
        let result = self
            .sandbox
            .call(Call::Step, &input)
            .and_then(|bytes| decode::<StepOutput>(&mut self.sandbox, &bytes, Output::Step));
        match &result {
            Ok(out) if out.terminated || out.truncated => self.phase = Phase::Ended,
            Ok(out) if out.user_turn.is_some() => self.phase = Phase::AwaitingUser,
            Ok(_) => self.phase = Phase::Running,
            Err(Error::Rejected { .. }) => {}
            Err(_) => self.phase = Phase::Idle,
        }
        result
    }

    /// The expert's next action; `None` when the env has no expert or none applies in this state.
    /// While the env waits for the simulated user, the env's expert answers for the user (a scripted
    /// user, in the tau envs), and [`Env::actions`] lists the user's admissible replies.
    pub fn expert(&mut self) -> Result<Option<Action>> {
        self.query_optional(Query::Expert, Output::Expert)
            .map(Option::flatten)
    }

    /// The admissible actions in this state (empty when the env cannot list them).
    pub fn actions(&mut self) -> Result<Vec<Action>> {
        self.admissible().map(|actions| actions.to_vec())
    }

    /// [`Env::actions`], shared. An answer byte for byte equal to this env's previous one is not decoded
    /// again: many envs list the same actions state after state (countdown's list is fixed per task),
    /// and decoding the list cost about a third of the query, which an early-experience collector makes
    /// in every state it branches from.
    pub fn admissible(&mut self) -> Result<Arc<[Action]>> {
        let Some(bytes) = self.query_bytes(Query::Actions)? else {
            return Ok(Arc::from([]));
        };
        if let Some((last, actions)) = &self.last_admissible
            && *last == bytes
        {
            return Ok(actions.clone());
        }
        let actions: Arc<[Action]> =
            decode::<Vec<Action>>(&mut self.sandbox, &bytes, Output::Actions)?.into();
        self.last_admissible = Some((bytes, actions.clone()));
        Ok(actions)
    }

    fn query_optional<T: DeserializeOwned>(
        &mut self,
        query: Query,
        output: Output,
    ) -> Result<Option<T>> {
        match self.query_bytes(query)? {
            None => Ok(None),
            Some(bytes) => decode(&mut self.sandbox, &bytes, output).map(Some),
        }
    }

    /// The guest's raw answer to an optional query (`None` when it does not export it); episodes only.
    fn query_bytes(&mut self, query: Query) -> Result<Option<Vec<u8>>> {
        if !self.is_running() {
            return Err(Error::ResetNeeded);
        }
        self.sandbox.query(query)
    }

    /// Copies the env's state. Taken between calls, it captures the episode exactly.
    pub fn snapshot(&mut self) -> Result<EnvSnapshot> {
        Ok(EnvSnapshot {
            sandbox: self.sandbox.snapshot()?,
            phase: self.phase,
        })
    }

    /// Rewinds to `snapshot` (taken from this env or a fork of it).
    pub fn restore(&mut self, snapshot: &EnvSnapshot) -> Result<()> {
        self.sandbox.restore(&snapshot.sandbox)?;
        self.phase = snapshot.phase;
        Ok(())
    }

    /// An independent copy in the same state: same actions ⇒ same outputs, byte for byte.
    pub fn fork(&mut self) -> Result<Env> {
        Ok(Env {
            id: self.id.clone(),
            program: self.program.clone(),
            base: self.base.clone(),
            options: self.options.clone(),
            info: self.info.clone(),
            sandbox: self.sandbox.fork()?,
            phase: self.phase,
            last_admissible: None,
        })
    }

    /// A new env of the same program in `snapshot`'s state.
    pub fn fork_from(&self, snapshot: &EnvSnapshot) -> Result<Env> {
        Ok(Env {
            id: self.id.clone(),
            program: self.program.clone(),
            base: self.base.clone(),
            options: self.options.clone(),
            info: self.info.clone(),
            sandbox: Sandbox::from_snapshot(&self.base, &self.options.limits, &snapshot.sandbox)?,
            phase: snapshot.phase,
            last_admissible: None,
        })
    }

    /// A digest of the env's complete state: equal for two envs of the same program and configuration
    /// exactly when every later call would behave the same (e.g. a fork and the state it came from).
    /// 128-bit XXH3 (see [`Sandbox::state_digest`] for why not a cryptographic hash).
    pub fn state_digest(&mut self) -> [u8; 16] {
        let mut hasher = twox_hash::XxHash3_128::new();
        hasher.write(&self.sandbox.state_digest());
        hasher.write(&[self.phase as u8]);
        hasher.finish_128().to_le_bytes()
    }

    /// Current guest memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.sandbox.memory_bytes()
    }

    /// What the guest printed to stdout since the last call to this method.
    pub fn take_stdout(&mut self) -> String {
        self.sandbox.take_stdout()
    }
}

fn configure(sandbox: &mut Sandbox, config: &Value) -> Result<()> {
    let input = serde_json::to_vec(config).expect("config encodes");
    let bytes = sandbox.call(Call::Configure, &input)?;
    decode::<()>(sandbox, &bytes, Output::Configure)
}
