//! Owns every wasmtime type: engine, module cache, per-instance store, limits, the WASI shim and memory
//! snapshots. Nothing outside this module names wasmtime, and this module knows nothing of episodes: it
//! moves bytes in and out of a guest under fuel, deadline and memory limits, and classifies failures.

mod engine;
mod wasi;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sandgym_abi::{ABI_VERSION, EnvInfo, exports, unpack};
use wasmtime::{
    Instance, InstancePre, Memory, Mutability, ResourceLimiter, Store, Trap, TypedFunc, Val,
};

use crate::error::{Error, GuestFault, Result};
use crate::rng::SplitMix64;

/// Per-call resource limits of one sandbox. Fuel is part of an env's semantics (deterministic: the same
/// call always stops at the same instruction); the deadline is a wall-clock watchdog on top of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Fuel units (≈ wasm instructions) each guest call may spend.
    pub fuel_per_call: u64,
    /// Wall-clock time each guest call may take.
    pub deadline: Duration,
    /// Largest linear memory the guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// Largest output (JSON) a single call may return, in bytes.
    pub output_bytes: usize,
    /// How much of the guest's stdout and of its stderr is kept (the tail beyond is dropped).
    pub stdio_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_call: 2_000_000_000,
            deadline: Duration::from_secs(20),
            memory_bytes: 256 << 20,
            output_bytes: 16 << 20,
            stdio_bytes: 64 << 10,
        }
    }
}

/// A byte buffer that keeps at most `cap` bytes and counts what it dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct BoundedBuf {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl BoundedBuf {
    fn new(cap: usize) -> Self {
        BoundedBuf {
            bytes: Vec::new(),
            cap,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        let kept = data.len().min(room);
        self.bytes.extend_from_slice(&data[..kept]);
        self.dropped += (data.len() - kept) as u64;
    }

    fn take_text(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!("\n[{} more bytes dropped]", self.dropped));
        }
        self.bytes.clear();
        self.dropped = 0;
        text
    }
}

/// Caps memory growth and remembers that it did, so the fault is reported as a memory limit.
#[derive(Debug, Clone, Default)]
struct MemoryCap {
    limit: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            wasmtime::bail!("memory limit of {} bytes reached", self.limit);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// What a store carries for the host functions.
pub(crate) struct HostState {
    pub(crate) stdout: BoundedBuf,
    pub(crate) stderr: BoundedBuf,
    pub(crate) rng: SplitMix64,
    cap: MemoryCap,
}

/// The typed exports of an ABI v1 guest.
#[derive(Clone)]
struct Exports {
    alloc: TypedFunc<i32, i32>,
    info: TypedFunc<(), i64>,
    configure: TypedFunc<(i32, i32), i64>,
    reset: TypedFunc<(i32, i32), i64>,
    step: TypedFunc<(i32, i32), i64>,
    expert: Option<TypedFunc<(), i64>>,
    actions: Option<TypedFunc<(), i64>>,
}

/// A guest call with input, as named in the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Configure,
    Reset,
    Step,
}

/// A guest call without input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Info,
    Expert,
    Actions,
}

/// A validated, compiled and linked guest module, ready to instantiate many times. Cheap to clone.
#[derive(Clone)]
pub struct Program {
    inner: Arc<ProgramInner>,
}

struct ProgramInner {
    origin: String,
    /// The decoded `sandgym_info` of this module, filled by the first env made from it: it is static,
    /// so later instances skip the call and the decoding.
    info: OnceLock<Arc<EnvInfo>>,
    digest: [u8; 32],
    pre: InstancePre<HostState>,
}

impl Program {
    /// Compiles (or loads from cache) and links `wasm`. `origin` names it in errors (env id or path).
    pub fn load(wasm: &[u8], origin: &str) -> Result<Program> {
        let shared = engine::shared()?;
        let (module, digest) = shared.module(wasm, origin)?;
        let has = |name: &str| module.get_export(name).is_some();
        for required in [
            exports::MEMORY,
            exports::ABI_VERSION,
            exports::ALLOC,
            exports::DEALLOC,
            exports::INFO,
            exports::CONFIGURE,
            exports::RESET,
            exports::STEP,
        ] {
            if !has(required) {
                return Err(Error::invalid_module(
                    origin,
                    format!(
                        "missing export `{required}`; is it a sandgym guest (see docs/abi.md)?"
                    ),
                ));
            }
        }
        let linker = wasi::linker_for(&shared.engine, &module, origin)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| Error::invalid_module(origin, e))?;
        Ok(Program {
            inner: Arc::new(ProgramInner {
                origin: origin.to_string(),
                digest,
                info: OnceLock::new(),
                pre,
            }),
        })
    }

    /// Where the module came from (env id or path), for messages.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// SHA-256 of the module bytes.
    pub fn digest(&self) -> [u8; 32] {
        self.inner.digest
    }

    /// The module's cached info, once an env has read it.
    pub(crate) fn cached_info(&self) -> Option<Arc<EnvInfo>> {
        self.inner.info.get().cloned()
    }

    pub(crate) fn cache_info(&self, info: Arc<EnvInfo>) {
        let _ = self.inner.info.set(info);
    }
}

/// The state of a sandbox between calls: linear memory, mutable globals and host-side state.
/// Restoring it into any instance of the same program reproduces the guest exactly.
#[derive(Clone)]
pub struct Snapshot {
    digest: [u8; 32],
    memory: Arc<[u8]>,
    globals: Arc<[(usize, Val)]>,
    rng: SplitMix64,
}

impl Snapshot {
    /// Bytes of guest memory held by this snapshot.
    pub fn memory_bytes(&self) -> usize {
        self.memory.len()
    }
}

/// One live guest instance with its own store and limits.
pub struct Sandbox {
    program: Program,
    limits: Limits,
    store: Store<HostState>,
    memory: Memory,
    exports: Exports,
    /// Exported mutable globals (at least `__stack_pointer` for SDK guests), by export index.
    globals: Vec<(usize, wasmtime::Global)>,
    /// Set once a call faulted: a trapped guest may hold broken invariants, so it is never called again.
    poisoned: bool,
}

impl Sandbox {
    /// A fresh instance of `program` under `limits`, with its ABI version checked.
    pub fn new(program: &Program, limits: &Limits) -> Result<Sandbox> {
        let shared = engine::shared()?;
        let memory_bytes = limits.memory_bytes.min(engine::MAX_MEMORY_BYTES);
        let mut store = Store::new(
            &shared.engine,
            HostState {
                stdout: BoundedBuf::new(limits.stdio_bytes),
                stderr: BoundedBuf::new(limits.stdio_bytes),
                rng: SplitMix64::default(),
                cap: MemoryCap {
                    limit: memory_bytes,
                    refused: None,
                },
            },
        );
        store.limiter(|state| &mut state.cap);
        store.set_fuel(limits.fuel_per_call).map_err(sandbox_err)?;
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        let origin = program.origin().to_string();
        let instance = program.inner.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some()
            {
                Error::PoolExhausted(format!("{} slots", shared.pool_slots.unwrap_or_default()))
            } else {
                Error::invalid_module(&origin, format!("instantiation failed: {e:#}"))
            }
        })?;
        let exports = typed_exports(&instance, &mut store, &origin)?;
        let memory = instance
            .get_memory(&mut store, exports::MEMORY)
            .ok_or_else(|| Error::invalid_module(&origin, "`memory` is not a memory"))?;
        let globals = mutable_globals(&instance, &mut store);
        let version: TypedFunc<(), i32> = instance
            .get_typed_func(&mut store, exports::ABI_VERSION)
            .map_err(|e| Error::invalid_module(&origin, e))?;
        let mut sandbox = Sandbox {
            program: program.clone(),
            limits: limits.clone(),
            store,
            memory,
            exports,
            globals,
            poisoned: false,
        };
        sandbox.arm()?;
        let guest = version
            .call(&mut sandbox.store, ())
            .map_err(|e| sandbox.fault(e))?;
        if guest != ABI_VERSION as i32 {
            return Err(Error::AbiMismatch {
                origin,
                guest: guest as u32,
                host: ABI_VERSION,
            });
        }
        Ok(sandbox)
    }

    /// The program this sandbox runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Whether a fault made this instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Reseeds the guest's `random_get` stream.
    pub fn reseed(&mut self, seed: u64) {
        self.store.data_mut().rng = SplitMix64(seed);
    }

    /// Current size of the guest's linear memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// Takes what the guest wrote to stdout since the last call.
    pub fn take_stdout(&mut self) -> String {
        self.store.data_mut().stdout.take_text()
    }

    /// Takes what the guest wrote to stderr since the last call.
    pub fn take_stderr(&mut self) -> String {
        self.store.data_mut().stderr.take_text()
    }

    fn arm(&mut self) -> Result<()> {
        self.store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(sandbox_err)?;
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.deadline));
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Sandbox(
                "this instance faulted earlier and cannot be called again".into(),
            ));
        }
        Ok(())
    }

    /// Calls an export that takes input bytes and returns output bytes.
    pub fn call(&mut self, call: Call, input: &[u8]) -> Result<Vec<u8>> {
        self.check_usable()?;
        self.arm()?;
        let len = i32::try_from(input.len())
            .map_err(|_| Error::InvalidArgument(format!("input of {} bytes", input.len())))?;
        let ptr = self
            .exports
            .alloc
            .call(&mut self.store, len)
            .map_err(|e| self.fault(e))?;
        let range = ptr as u32 as usize..ptr as u32 as usize + input.len();
        match self.memory.data_mut(&mut self.store).get_mut(range) {
            Some(dest) => dest.copy_from_slice(input),
            None => {
                return Err(self.malformed(format!(
                    "`sandgym_alloc({len})` returned {ptr:#x}, outside linear memory"
                )));
            }
        }
        // Borrow the export rather than clone it: a `TypedFunc` clone bumps a shared type refcount.
        let func = match call {
            Call::Configure => &self.exports.configure,
            Call::Reset => &self.exports.reset,
            Call::Step => &self.exports.step,
        };
        let result = func.call(&mut self.store, (ptr, len));
        let packed = result.map_err(|e| self.fault(e))?;
        self.read_output(packed)
    }

    /// Calls an export without input. `Ok(None)` when the optional export is absent.
    pub fn query(&mut self, query: Query) -> Result<Option<Vec<u8>>> {
        self.check_usable()?;
        let present = match query {
            Query::Info => true,
            Query::Expert => self.exports.expert.is_some(),
            Query::Actions => self.exports.actions.is_some(),
        };
        if !present {
            return Ok(None);
        }
        self.arm()?;
        let func = match query {
            Query::Info => &self.exports.info,
            Query::Expert => self.exports.expert.as_ref().expect("checked above"),
            Query::Actions => self.exports.actions.as_ref().expect("checked above"),
        };
        let result = func.call(&mut self.store, ());
        let packed = result.map_err(|e| self.fault(e))?;
        self.read_output(packed).map(Some)
    }

    fn read_output(&mut self, packed: i64) -> Result<Vec<u8>> {
        let (ptr, len) = unpack(packed);
        if len as usize > self.limits.output_bytes {
            return Err(self.malformed(format!(
                "output of {len} bytes exceeds the limit of {} bytes",
                self.limits.output_bytes
            )));
        }
        let range = ptr as usize..ptr as usize + len as usize;
        match self.memory.data(&self.store).get(range) {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(self.malformed(format!(
                "output at {ptr:#x}+{len} lies outside linear memory"
            ))),
        }
    }

    /// A malformed-output fault: the guest broke the ABI, so it is poisoned like any other fault.
    pub fn malformed(&mut self, message: String) -> Error {
        self.poisoned = true;
        Error::Guest {
            fault: GuestFault::MalformedOutput { message },
            stderr: self.take_stderr(),
        }
    }

    /// Classifies a failed call into its typed fault and poisons the instance.
    fn fault(&mut self, err: wasmtime::Error) -> Error {
        self.poisoned = true;
        let refused = self.store.data_mut().cap.refused.take();
        let fault = if let Some(requested) = refused {
            GuestFault::MemoryLimit {
                requested,
                limit: self.store.data().cap.limit,
            }
        } else if let Some(fault) = wasi::shim_fault(&err) {
            fault
        } else {
            match err.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => GuestFault::OutOfFuel {
                    budget: self.limits.fuel_per_call,
                },
                Some(Trap::Interrupt) => GuestFault::Deadline {
                    millis: self.limits.deadline.as_millis() as u64,
                },
                Some(Trap::StackOverflow) => GuestFault::StackOverflow,
                Some(trap) => GuestFault::Trap {
                    message: trap.to_string(),
                },
                None => GuestFault::Trap {
                    message: format!("{err:#}"),
                },
            }
        };
        Error::Guest {
            fault,
            stderr: self.take_stderr(),
        }
    }

    /// Copies the guest's state between calls.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.check_usable()?;
        let globals: Vec<(usize, Val)> = self
            .globals
            .iter()
            .map(|(index, global)| (*index, global.get(&mut self.store)))
            .collect();
        Ok(Snapshot {
            digest: self.program.digest(),
            memory: Arc::from(self.memory.data(&self.store)),
            globals: Arc::from(globals),
            rng: self.store.data().rng.clone(),
        })
    }

    /// Rewinds this instance to `snapshot`. Wasm memory cannot shrink, so when this instance's memory has
    /// grown past the snapshot's, the state is restored into a fresh instance instead.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        if snapshot.digest != self.program.digest() {
            return Err(Error::InvalidArgument(
                "the snapshot belongs to another module".into(),
            ));
        }
        if self.poisoned || self.memory_bytes() > snapshot.memory.len() {
            *self = Sandbox::new(&self.program.clone(), &self.limits.clone())?;
        }
        self.write_state(snapshot)
    }

    /// A new, independent instance in the same state as this one.
    pub fn fork(&mut self) -> Result<Sandbox> {
        let snapshot = self.snapshot()?;
        let mut fork = Sandbox::new(&self.program, &self.limits)?;
        fork.write_state(&snapshot)?;
        Ok(fork)
    }

    /// Like `fork`, from a snapshot: a new instance of `program` in the snapshot's state.
    pub fn from_snapshot(
        program: &Program,
        limits: &Limits,
        snapshot: &Snapshot,
    ) -> Result<Sandbox> {
        let mut sandbox = Sandbox::new(program, limits)?;
        sandbox.write_state(snapshot)?;
        Ok(sandbox)
    }

    fn write_state(&mut self, snapshot: &Snapshot) -> Result<()> {
        let page = self.memory.page_size(&self.store) as usize;
        let current = self.memory_bytes();
        if snapshot.memory.len() > current {
            let pages = (snapshot.memory.len() - current).div_ceil(page) as u64;
            self.memory.grow(&mut self.store, pages).map_err(|e| {
                Error::Sandbox(format!("cannot grow memory to restore a snapshot: {e}"))
            })?;
        }
        self.memory.data_mut(&mut self.store)[..snapshot.memory.len()]
            .copy_from_slice(&snapshot.memory);
        for (index, value) in snapshot.globals.iter() {
            let global = self
                .globals
                .iter()
                .find(|(i, _)| i == index)
                .map(|(_, g)| *g)
                .ok_or_else(|| Error::Sandbox("snapshot global is missing".into()))?;
            global.set(&mut self.store, *value).map_err(sandbox_err)?;
        }
        let state = self.store.data_mut();
        state.rng = snapshot.rng.clone();
        state.cap.refused = None;
        self.poisoned = false;
        Ok(())
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_micros() / engine::EPOCH_TICK.as_micros()).max(1) as u64
}

fn sandbox_err(e: wasmtime::Error) -> Error {
    Error::Sandbox(e.to_string())
}

fn typed_exports(
    instance: &Instance,
    store: &mut Store<HostState>,
    origin: &str,
) -> Result<Exports> {
    fn get<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        instance: &Instance,
        store: &mut Store<HostState>,
        origin: &str,
        name: &str,
    ) -> Result<TypedFunc<P, R>> {
        instance
            .get_typed_func::<P, R>(&mut *store, name)
            .map_err(|e| Error::invalid_module(origin, format!("export `{name}`: {e}")))
    }
    let optional =
        |store: &mut Store<HostState>, name: &str| -> Result<Option<TypedFunc<(), i64>>> {
            if instance.get_export(&mut *store, name).is_none() {
                return Ok(None);
            }
            get(instance, store, origin, name).map(Some)
        };
    Ok(Exports {
        alloc: get(instance, store, origin, exports::ALLOC)?,
        info: get(instance, store, origin, exports::INFO)?,
        configure: get(instance, store, origin, exports::CONFIGURE)?,
        reset: get(instance, store, origin, exports::RESET)?,
        step: get(instance, store, origin, exports::STEP)?,
        expert: optional(store, exports::EXPERT)?,
        actions: optional(store, exports::ACTIONS)?,
    })
}

fn mutable_globals(
    instance: &Instance,
    store: &mut Store<HostState>,
) -> Vec<(usize, wasmtime::Global)> {
    let globals: Vec<wasmtime::Global> = instance
        .exports(&mut *store)
        .filter_map(|export| export.into_global())
        .collect();
    globals
        .into_iter()
        .enumerate()
        .filter(|(_, global)| global.ty(&*store).mutability() == Mutability::Var)
        .collect()
}
