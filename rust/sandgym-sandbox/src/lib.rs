//! sandgym's sandbox: owns every wasmtime type (engine, module cache, per-instance store, limits, the WASI
//! shim and memory snapshots). Nothing else in sandgym names wasmtime, and this crate knows nothing of
//! episodes: it moves bytes in and out of a guest under fuel, deadline and memory limits, and classifies
//! failures.
//!
//! It also holds the two things every layer above shares and that the sandbox needs first: [`error`], the
//! one typed error (most of its kinds are guest faults, so they are born here), and [`rng`], the seeded
//! generator behind the guests' `random_get` and the host's samplers.

mod dirty;
mod engine;
pub mod error;
mod freeze;
pub mod rng;
mod wasi;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sandgym_abi::{ABI_VERSION, EnvInfo, exports, unpack};
use wasmtime::{
    Instance, InstancePre, Memory, Mutability, ResourceLimiter, Store, Trap, TypedFunc, Val,
};

use crate::error::{Error, GuestFault, Result};
use crate::rng::SplitMix64;

pub use engine::EngineInfo;

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
    /// The module bytes this program was loaded from. A pre-initialized program keeps its original's
    /// bytes, so it can be derived again from any later state.
    source: Arc<[u8]>,
    /// Digest of the original module: programs derived from one another share it, and a snapshot
    /// restores into any program of the same lineage.
    lineage: [u8; 32],
    /// Pre-initialized programs derived from this one, by the caller's key (the env's configuration).
    derived: Mutex<HashMap<String, Program>>,
    /// The initial linear memory (up to its last non-zero byte), which in-place restores copy back into
    /// pages a snapshot did not write. `None` when it cannot be known statically.
    initial: OnceLock<Option<Arc<[u8]>>>,
    /// The decoded `sandgym_info` of this module, filled by the first env made from it: it is static,
    /// so later instances skip the call and the decoding.
    info: OnceLock<Arc<EnvInfo>>,
    digest: [u8; 32],
    pre: InstancePre<HostState>,
}

impl Program {
    /// Compiles (or loads from cache) and links `wasm`. `origin` names it in errors (env id or path).
    pub fn load(wasm: &[u8], origin: &str) -> Result<Program> {
        Program::link(wasm, origin, None, None)
    }

    /// Loads `wasm`; `original` is the program it was derived from, if any.
    fn link(
        wasm: &[u8],
        origin: &str,
        original: Option<&Program>,
        initial: Option<Arc<[u8]>>,
    ) -> Result<Program> {
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
        let (source, lineage, info) = match original {
            Some(original) => (
                original.inner.source.clone(),
                original.inner.lineage,
                original.inner.info.clone(),
            ),
            None => (Arc::from(wasm), digest, OnceLock::new()),
        };
        Ok(Program {
            inner: Arc::new(ProgramInner {
                origin: origin.to_string(),
                source,
                lineage,
                derived: Mutex::new(HashMap::new()),
                initial: initial.map_or_else(OnceLock::new, |image| OnceLock::from(Some(image))),
                digest,
                info,
                pre,
            }),
        })
    }

    fn initial_memory(&self) -> Option<&Arc<[u8]>> {
        self.inner
            .initial
            .get_or_init(|| {
                freeze::initial_memory(&self.inner.source)
                    .ok()
                    .map(Arc::from)
            })
            .as_ref()
    }

    /// The pre-initialized program that `Sandbox::pre_initialize` derived from this one under `key`.
    pub fn pre_initialized(&self, key: &str) -> Option<Program> {
        self.inner
            .derived
            .lock()
            .expect("derived programs")
            .get(key)
            .cloned()
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
    pub fn cached_info(&self) -> Option<Arc<EnvInfo>> {
        self.inner.info.get().cloned()
    }

    /// Remembers the module's info, read once by the first env over it.
    pub fn cache_info(&self, info: Arc<EnvInfo>) {
        let _ = self.inner.info.set(info);
    }
}

/// The state of a sandbox between calls: the pages of linear memory the guest wrote since its instance
/// was created (the rest equals the program's initial memory), mutable globals and host-side state.
/// Restoring it into a fresh instance of its program reproduces the guest exactly.
#[derive(Clone)]
pub struct Snapshot {
    program: Program,
    memory_size: usize,
    /// Written pages as index ranges (`dirty::PAGE` bytes each), and their bytes, concatenated.
    pages: Arc<[std::ops::Range<usize>]>,
    bytes: Arc<[u8]>,
    globals: Arc<[Val]>,
    rng: SplitMix64,
}

impl Snapshot {
    /// Bytes of guest memory held by this snapshot: only the pages the guest wrote.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Size of the guest's linear memory when the snapshot was taken.
    pub fn memory_size(&self) -> usize {
        self.memory_size
    }
}

/// One live guest instance with its own store and limits.
pub struct Sandbox {
    program: Program,
    limits: Limits,
    store: Store<HostState>,
    memory: Memory,
    exports: Exports,
    /// Exported mutable globals (at least `__stack_pointer` for SDK guests), by export name.
    globals: Vec<(String, wasmtime::Global)>,
    /// Set once a call faulted: a trapped guest may hold broken invariants, so it is never called again.
    poisoned: bool,
    /// The written pages as last scanned (or known after a restore), until guest code runs again: a
    /// restore, the state digest and the snapshot that follow it then share one page-table scan.
    written: Option<Vec<Range<usize>>>,
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
        let instance = program
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| instantiation_error(&origin, &shared.info, &e))?;
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
            written: None,
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

    /// Prepares a call into the guest: fresh fuel and deadline, and the written-page set forgotten.
    fn arm(&mut self) -> Result<()> {
        self.written = None;
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

    /// Bytes of linear memory the guest has written since this instance was created.
    pub fn written_bytes(&self) -> usize {
        let memory = self.memory.data(&self.store);
        dirty::written_pages(memory)
            .iter()
            .map(|pages| dirty::byte_range(pages, memory.len()).len())
            .sum()
    }

    /// The pages written since instantiation (see [`Sandbox::written`]).
    fn written_pages(&mut self) -> Vec<Range<usize>> {
        if let Some(written) = &self.written {
            return written.clone();
        }
        let written = dirty::written_pages(self.memory.data(&self.store));
        self.written = Some(written.clone());
        written
    }

    /// A digest of the guest's complete state (memory, mutable globals, host RNG), equal for two
    /// instances of the same program exactly when their states are equal. Cheap: only written pages
    /// are read, and those that equal the initial memory again are skipped, so the digest does not
    /// depend on which pages happen to be private.
    ///
    /// The hash is 128-bit XXH3, not SHA-256: it guards against drift (nondeterminism, a wrong restore),
    /// not against an adversary, and SHA-256 of a tau-bench state's written pages took longer than the
    /// restore and the step it was verifying (it was a third of a forked branch's time).
    pub fn state_digest(&mut self) -> [u8; 16] {
        let mut hasher = twox_hash::XxHash3_128::new();
        hasher.write(&self.program.digest());
        for (_, global) in &self.globals {
            match global.get(&mut self.store) {
                Val::I32(v) => hasher.write(&v.to_le_bytes()),
                Val::I64(v) => hasher.write(&v.to_le_bytes()),
                Val::F32(v) => hasher.write(&v.to_le_bytes()),
                Val::F64(v) => hasher.write(&v.to_le_bytes()),
                _ => {}
            }
        }
        hasher.write(&self.store.data().rng.0.to_le_bytes());
        let initial = self.program.initial_memory().cloned();
        // Without a known image every page is compared with zeros, which is just as canonical.
        let pages = match &initial {
            Some(_) => self.written_pages(),
            None => dirty::all_pages(self.memory_bytes()),
        };
        let memory = self.memory.data(&self.store);
        hasher.write(&(memory.len() as u64).to_le_bytes());
        let image = initial.as_deref().unwrap_or(&[]);
        for page in pages.into_iter().flatten() {
            let range = dirty::byte_range(&(page..page + 1), memory.len());
            let bytes = &memory[range.clone()];
            if !dirty::is_initial(bytes, range.start, image) {
                hasher.write(&(page as u64).to_le_bytes());
                hasher.write(bytes);
            }
        }
        hasher.finish_128().to_le_bytes()
    }

    /// Copies the guest's state between calls: only the pages written since instantiation.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.check_usable()?;
        let globals: Vec<Val> = self
            .globals
            .iter()
            .map(|(_, global)| global.get(&mut self.store))
            .collect();
        let pages = self.written_pages();
        let memory = self.memory.data(&self.store);
        let mut bytes =
            Vec::with_capacity(pages.iter().map(|r| r.len()).sum::<usize>() * dirty::PAGE);
        for range in &pages {
            bytes.extend_from_slice(&memory[dirty::byte_range(range, memory.len())]);
        }
        Ok(Snapshot {
            program: self.program.clone(),
            memory_size: memory.len(),
            pages: Arc::from(pages),
            bytes: Arc::from(bytes),
            globals: Arc::from(globals),
            rng: self.store.data().rng.clone(),
        })
    }

    /// Rewinds this instance to `snapshot` (taken from an instance of this program or of one derived
    /// from the same module). The state is written into a fresh instance of the snapshot's program:
    /// a fresh instance equals the program's initial memory, which the snapshot's pages are relative to.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        if snapshot.program.inner.lineage != self.program.inner.lineage {
            return Err(Error::InvalidArgument(
                "the snapshot belongs to another module".into(),
            ));
        }
        let in_place = !self.poisoned
            && snapshot.program.digest() == self.program.digest()
            && self.memory_bytes() <= snapshot.memory_size;
        if in_place && let Some(initial) = self.program.initial_memory().cloned() {
            return self.write_state(snapshot, Some(&initial));
        }
        *self = Sandbox::from_snapshot(&snapshot.program, &self.limits.clone(), snapshot)?;
        Ok(())
    }

    /// A new, independent instance in the same state as this one.
    pub fn fork(&mut self) -> Result<Sandbox> {
        let snapshot = self.snapshot()?;
        Sandbox::from_snapshot(&snapshot.program, &self.limits, &snapshot)
    }

    /// A new instance in `snapshot`'s state, under `limits`.
    pub fn from_snapshot(
        program: &Program,
        limits: &Limits,
        snapshot: &Snapshot,
    ) -> Result<Sandbox> {
        if snapshot.program.inner.lineage != program.inner.lineage {
            return Err(Error::InvalidArgument(
                "the snapshot belongs to another module".into(),
            ));
        }
        let mut sandbox = Sandbox::new(&snapshot.program, limits)?;
        sandbox.write_state(snapshot, None)?;
        Ok(sandbox)
    }

    /// Writes `snapshot` into this instance of its program. Without `initial`, the instance must be
    /// fresh (untouched since instantiation). With the program's `initial` memory, it may be in any
    /// state: the pages it wrote that the snapshot did not are copied back from `initial` first, so only
    /// pages either side wrote are touched — pages already private to this instance, so no page faults.
    fn write_state(&mut self, snapshot: &Snapshot, initial: Option<&[u8]>) -> Result<()> {
        if snapshot.globals.len() != self.globals.len() {
            return Err(Error::Sandbox(
                "snapshot globals do not match the module".into(),
            ));
        }
        let wasm_page = self.memory.page_size(&self.store) as usize;
        let current = self.memory_bytes();
        if snapshot.memory_size > current {
            let grow = (snapshot.memory_size - current).div_ceil(wasm_page) as u64;
            self.memory.grow(&mut self.store, grow).map_err(|e| {
                Error::Sandbox(format!("cannot grow memory to restore a snapshot: {e}"))
            })?;
        }
        // Grown pages are unwritten, so a written-page set known before the growth still holds.
        let before = initial.map(|_| self.written_pages());
        let memory = self.memory.data_mut(&mut self.store);
        if let (Some(initial), Some(before)) = (initial, &before) {
            for range in dirty::subtract(before, &snapshot.pages) {
                let range = dirty::byte_range(&range, memory.len());
                dirty::fill_initial(&mut memory[range.clone()], range.start, initial);
            }
        }
        let mut offset = 0;
        for range in snapshot.pages.iter() {
            let range = dirty::byte_range(range, snapshot.memory_size);
            let len = range.len();
            memory[range].copy_from_slice(&snapshot.bytes[offset..offset + len]);
            offset += len;
        }
        for ((_, global), value) in self.globals.iter().zip(snapshot.globals.iter()) {
            global.set(&mut self.store, *value).map_err(sandbox_err)?;
        }
        let state = self.store.data_mut();
        state.rng = snapshot.rng.clone();
        state.cap.refused = None;
        self.poisoned = false;
        // Now written: what was before, and every page copied in. (A fresh instance's own set is not
        // known without a scan.)
        self.written = before.map(|before| dirty::union(&before, &snapshot.pages));
        Ok(())
    }

    /// Derives a program whose initial state is this instance's current state (see `freeze`), caches
    /// it in this sandbox's program under `key`, and moves this sandbox onto a fresh instance of it.
    /// Instances and forks of the derived program share its memory copy-on-write.
    ///
    /// Fails without changing anything when the module cannot be derived.
    pub fn pre_initialize(&mut self, key: &str) -> Result<Program> {
        self.check_usable()?;
        let globals: Vec<(String, Val)> = self
            .globals
            .iter()
            .map(|(name, global)| (name.clone(), global.get(&mut self.store)))
            .collect();
        let state = freeze::LiveState {
            memory: self.memory.data(&self.store),
            globals: &globals,
        };
        let wasm = freeze::derive(&self.program.inner.source, &state).map_err(|reason| {
            Error::invalid_module(
                self.program.origin(),
                format!("cannot pre-initialize: {reason}"),
            )
        })?;
        let initial = Arc::from(state.memory);
        let derived = Program::link(
            &wasm,
            self.program.origin(),
            Some(&self.program),
            Some(initial),
        )?;
        self.program
            .inner
            .derived
            .lock()
            .expect("derived programs")
            .insert(key.to_string(), derived.clone());
        let mut fresh = Sandbox::new(&derived, &self.limits)?;
        fresh.store.data_mut().rng = self.store.data().rng.clone();
        *self = fresh;
        Ok(derived)
    }
}

/// The engine's memory layout and allocator, as chosen for this process's address-space limit.
pub fn engine_info() -> Result<EngineInfo> {
    Ok(engine::shared()?.info.clone())
}

/// Classifies a failed instantiation by wasmtime's error chain. A module that validated and linked can
/// still fail to instantiate for want of resources: a full pool, or the OS refusing memory (address
/// space under `ulimit -v`, or memory itself). Only what is left is blamed on the module.
fn instantiation_error(origin: &str, info: &EngineInfo, err: &wasmtime::Error) -> Error {
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Error::PoolExhausted(format!("{} slots", info.pool_slots.unwrap_or_default()));
    }
    if refused_memory(err) {
        return Error::ResourceExhausted {
            origin: origin.to_string(),
            reason: exhaustion_reason(info, err),
        };
    }
    Error::invalid_module(origin, format!("instantiation failed: {err:#}"))
}

/// Whether the OS refused memory somewhere in `err`'s chain: `ENOMEM` from `mmap`/`mprotect` (wasmtime
/// calls them through rustix), or an allocation wasmtime reports as out of memory.
fn refused_memory(err: &wasmtime::Error) -> bool {
    if err.downcast_ref::<wasmtime::OutOfMemory>().is_some() {
        return true;
    }
    #[cfg(unix)]
    if err
        .downcast_ref::<rustix::io::Errno>()
        .is_some_and(|errno| *errno == rustix::io::Errno::NOMEM)
    {
        return true;
    }
    err.downcast_ref::<std::io::Error>().is_some_and(|io| {
        io.raw_os_error() == Some(libc::ENOMEM) || io.kind() == std::io::ErrorKind::OutOfMemory
    })
}

/// Says what was refused and why, with what to change: the reservation one instance needs, the
/// process's limit and how much of it is mapped already.
fn exhaustion_reason(info: &EngineInfo, err: &wasmtime::Error) -> String {
    let need = info.bytes_per_instance;
    let what = format!(
        "the OS refused to reserve address space for its linear memory (each instance reserves {}: \
         the {} memory cap plus guard pages)",
        bytes(need),
        bytes(engine::MAX_MEMORY_BYTES as u64),
    );
    // The limit now, not when the engine was built: it is what the OS just enforced.
    let why = match engine::address_space_limit() {
        Some(limit) => format!(
            "the process's address-space limit (ulimit -v / RLIMIT_AS) is {}{}",
            bytes(limit),
            mapped_bytes()
                .map(|mapped| format!(" and {} of it is mapped already", bytes(mapped)))
                .unwrap_or_default(),
        ),
        None => "no address-space limit is set, so the system is out of memory or refuses to \
                 overcommit it (vm.overcommit_memory)"
            .to_string(),
    };
    let fix = match info.pool_slots {
        Some(slots) => format!(
            "the pool reserves {slots} slots up front: lower SANDGYM_POOL_SLOTS, or raise the limit"
        ),
        None => "every live env (per worker thread, per VecEnv slot, per fork) holds one: run \
                 fewer at once, or raise the limit"
            .to_string(),
    };
    format!("{what}; {why}; {fix} (wasmtime: {err:#})")
}

/// `1.06 GiB (1140850688 bytes)`.
fn bytes(n: u64) -> String {
    format!("{:.2} GiB ({n} bytes)", n as f64 / f64::from(1u32 << 30))
}

/// The process's mapped address space (`VmSize`), where Linux reports it.
fn mapped_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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
) -> Vec<(String, wasmtime::Global)> {
    let globals: Vec<(String, wasmtime::Global)> = instance
        .exports(&mut *store)
        .filter_map(|export| {
            let name = export.name().to_string();
            export.into_global().map(|global| (name, global))
        })
        .collect();
    globals
        .into_iter()
        .filter(|(_, global)| global.ty(&*store).mutability() == Mutability::Var)
        .collect()
}
