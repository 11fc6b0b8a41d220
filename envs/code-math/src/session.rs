//! One Python interpreter session per episode: monty's `MontyRepl`, which keeps globals and heap
//! between cells. Everything it owns lives in guest memory, so the host's snapshot and fork copy a live
//! session like any other env state. Cells run through monty's suspendable API: the session answers
//! the calls of Python's `random` itself ([`crate::pyrandom`], whose generator is part of the session).
//!
//! The sandbox's own limits (fuel, deadline, memory) trap the *whole guest*, which ends the episode. A
//! runaway cell must instead end only its own tool call, so every cell runs under monty's resource
//! tracker with limits well inside the sandbox's:
//!
//! - **steps**: monty bounds execution with a duration read from the clock at its periodic checkpoints
//!   (about every 255 bytecode instructions, and every 64 items inside native loops). In the guest the
//!   clock is virtual (see [`virtual_clock`]): each read advances it by one microsecond, so a budget of
//!   N "steps" is N checkpoints, the same on every machine. Natively (tests) the real clock runs, with
//!   [`NATIVE_MICROS_PER_STEP`] per step.
//! - **memory**: monty compares a process-wide counter against its limit at the same checkpoints and
//!   before any operation whose result would exceed 100 KB (`[0] * 10**8`, `2 ** 10**9`, `'x' * 10**9`).
//!   In the guest that counter is the growth of linear memory since the cell began, refreshed at every
//!   clock read; natively only the up-front size checks apply.
//! - **recursion**: a depth limit, raised as a catchable `RecursionError` like CPython's.
//! - **output**: `print` goes to a capped buffer; the rest is counted and reported, never stored.
//! - **source shape**: sources nested deeper than [`MAX_NESTING`] brackets, or chaining more than
//!   [`MAX_OPERATORS`] operators in one statement, are refused before parsing: the parser and compiler
//!   recurse per level on the guest's stack (8 MiB, see `build.rs`).

use std::borrow::Cow;
use std::time::Duration;

use monty::{MontyRepl, ReplProgress, ReplStartError};
use monty_types::{
    CompileOptions, ExcType, ExtFunctionResult, MontyException, MontyObject, NameLookupResult,
    PrintWriter, PrintWriterCallback, ResourceLimits, ResourceTracker,
};

use crate::pyrandom::{self, PyRandom};

/// Natively the tracker reads the real clock; one step then allows this much time. Generous, because
/// native tests run unoptimized builds.
pub const NATIVE_MICROS_PER_STEP: u64 = 500;

/// Deepest bracket nesting a cell may have (CPython's parser allows 200; monty's own check runs only
/// after the recursive parser has built the tree, so deeper input is refused before parsing).
pub const MAX_NESTING: usize = 100;

/// Most operators one statement may chain. monty's compiler recurses once per level of an operator
/// chain (`1+1+...+1` is a tree as deep as it is long) with large frames: 8,000 levels overflow the
/// guest's 8 MiB stack, which would trap the guest and end the episode.
pub const MAX_OPERATORS: usize = 1_000;

/// Per-cell limits, fixed by the env's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellLimits {
    /// Clock reads (about 255 bytecode instructions each) a cell may take.
    pub steps: u64,
    /// Bytes a cell may grow the guest's memory by (and the largest single result it may build).
    pub memory_bytes: usize,
    /// Python call depth.
    pub recursion_depth: usize,
    /// Bytes of the observation (output, value and traceback together).
    pub output_bytes: usize,
    /// Bytes of source a cell may have.
    pub code_bytes: usize,
}

impl CellLimits {
    fn duration(&self) -> Duration {
        if cfg!(target_os = "wasi") {
            Duration::from_micros(self.steps)
        } else {
            Duration::from_micros(self.steps.saturating_mul(NATIVE_MICROS_PER_STEP))
        }
    }
}

/// What one cell did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellOutcome {
    /// The observation shown to the model: captured stdout, then the repr of the cell's last
    /// expression (unless `None`), or the traceback; truncated to `output_bytes`.
    pub observation: String,
    /// Whether the cell raised (including limit errors).
    pub failed: bool,
}

/// A live interpreter session. Dropping it frees the whole Python heap.
pub struct Session {
    /// Taken while a cell runs (monty's suspendable API consumes it) and always put back.
    repl: Option<MontyRepl>,
    limits: CellLimits,
    /// The generator behind Python's `random` module ([`pyrandom`]).
    random: PyRandom,
    /// Whether the `random` module object has been built in this session.
    random_loaded: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A fresh session; `seed` (the episode's) seeds Python's `random`.
    pub fn new(limits: CellLimits, seed: u64) -> Session {
        let resource_limits = ResourceLimits::default()
            .max_duration(limits.duration())
            .max_memory(limits.memory_bytes)
            .max_recursion_depth(limits.recursion_depth);
        let repl = MontyRepl::new(
            "main.py",
            ResourceTracker::new(resource_limits),
            CompileOptions::default(),
        );
        Session {
            repl: Some(repl),
            limits,
            random: PyRandom::new(seed),
            random_loaded: false,
        }
    }

    /// Runs one cell against the session's state. Never fails: syntax errors, exceptions and limit
    /// violations all become the observation, and the session stays usable.
    pub fn run(&mut self, code: &str) -> CellOutcome {
        let limits = self.limits;
        if code.len() > limits.code_bytes {
            return CellOutcome {
                observation: format!(
                    "Error: the cell has {} bytes of code; the limit is {}.",
                    code.len(),
                    limits.code_bytes
                ),
                failed: true,
            };
        }
        // `import random` names a module monty does not have: it becomes an assignment from the
        // env's module object, built by the prelude the first time a cell imports it.
        let rewritten = pyrandom::rewrite_imports(code);
        let code = rewritten.as_deref().unwrap_or(code);
        let shape = source_shape(code);
        let refusal = if shape.nesting > MAX_NESTING {
            Some(format!(
                "brackets nested {} levels deep; the limit is {MAX_NESTING}",
                shape.nesting
            ))
        } else if shape.operators > MAX_OPERATORS {
            Some(format!(
                "{} operators in one statement; the limit is {MAX_OPERATORS} (split it up)",
                shape.operators
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            return CellOutcome {
                observation: format!("SyntaxError: {reason}."),
                failed: true,
            };
        }
        if rewritten.is_some() && !self.random_loaded {
            let mut ignored = CappedOutput::new(limits.output_bytes);
            if let Err(error) = self.execute(pyrandom::PRELUDE, &mut ignored) {
                return CellOutcome {
                    observation: format!(
                        "Error: the random module could not be loaded: {}",
                        describe_error(&error, &limits)
                    ),
                    failed: true,
                };
            }
            self.random_loaded = true;
        }
        let mut output = CappedOutput::new(limits.output_bytes);
        let result = self.execute(code, &mut output);
        let failed = result.is_err();
        match result {
            Ok(MontyObject::None) => {}
            // Values monty cannot convert (classes, functions) arrive as their repr.
            Ok(MontyObject::Repr(text)) => output.push_line(&text),
            Ok(value) => {
                output.push_line(&value.py_repr());
            }
            Err(error) => output.push_line(&describe_error(&error, &limits)),
        }
        CellOutcome {
            observation: output.finish(),
            failed,
        }
    }

    /// Runs code to completion under a fresh per-cell budget, answering what monty suspends on:
    /// lookups and calls of the env's `random` functions ([`pyrandom`]); any other unknown name
    /// is undefined (`NameError`), as without a host. OS calls (`datetime.now()`, files) raise
    /// `NotImplementedError`, uncatchably, as monty does without a host.
    fn execute(
        &mut self,
        code: &str,
        output: &mut CappedOutput,
    ) -> Result<MontyObject, MontyException> {
        let limits = self.limits;
        let mut repl = self.repl.take().expect("the session is not running a cell");
        // The tracker accumulates execution time over the whole session; a fresh budget per cell
        // keeps one runaway cell from starving the next.
        repl.tracker_mut().set_max_duration(limits.duration());
        virtual_clock::start_cell();
        // Lists the env builds for one `random` call: at most a sixty-fourth of the cell's memory
        // budget in items (each becomes a Python int in the session's heap).
        let max_items = limits.memory_bytes / 64;
        let mut progress = repl.feed_start(code, Vec::new(), PrintWriter::Callback(output));
        loop {
            let print = PrintWriter::Callback(output);
            progress = match progress {
                Err(failure) => {
                    let ReplStartError { repl, error } = *failure;
                    self.repl = Some(repl);
                    return Err(error);
                }
                Ok(ReplProgress::Complete { repl, value }) => {
                    self.repl = Some(repl);
                    return Ok(value);
                }
                Ok(ReplProgress::NameLookup(lookup)) => {
                    let answer = match lookup.object_id() {
                        None => pyrandom::lookup(&lookup.name).into(),
                        Some(_) => NameLookupResult::Undefined,
                    };
                    lookup.resume(answer, print)
                }
                Ok(ReplProgress::FunctionCall(call)) => {
                    let answer = match call.object_id {
                        None => self.random.call(
                            &call.function_name,
                            &call.args,
                            &call.kwargs,
                            max_items,
                        ),
                        Some(_) => None,
                    };
                    let result = match answer {
                        Some(Ok(value)) => ExtFunctionResult::Return(value),
                        Some(Err(error)) => ExtFunctionResult::Error(error),
                        None => ExtFunctionResult::NotFound(call.function_name.clone()),
                    };
                    call.resume(result, print)
                }
                Ok(ReplProgress::OsCall(call)) => {
                    let message = format!(
                        "OS function '{}' not implemented with standard execution",
                        call.function_call.name()
                    );
                    call.abort(
                        MontyException::new(ExcType::NotImplementedError, Some(message)),
                        print,
                    )
                }
                Ok(ReplProgress::ResolveFutures(state)) => state.abort(
                    MontyException::new(
                        ExcType::NotImplementedError,
                        Some("async futures not supported by standard execution.".to_string()),
                    ),
                    print,
                ),
            };
        }
    }
}

/// What the recursive stages of the parser and compiler will face in a cell, measured without
/// parsing (so measuring cannot overflow the stack itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceShape {
    /// Deepest nesting of `()`, `[]` and `{}`.
    pub nesting: usize,
    /// Most operators in one logical line (a statement): operator symbols, attribute dots, call and
    /// subscript brackets, and the keywords `not and or if else lambda await`. A chain of N operators
    /// becomes a tree N levels deep.
    pub operators: usize,
}

const OPERATOR_BYTES: &[u8] = b"+-*/%@&|^~<>!=";
const OPERATOR_WORDS: [&[u8]; 7] = [b"not", b"and", b"or", b"if", b"else", b"lambda", b"await"];

/// Scans Python source, skipping comments and string literals (including triple-quoted ones).
/// Unbalanced input is measured as written; the parser reports the error itself.
pub fn source_shape(code: &str) -> SourceShape {
    let bytes = code.as_bytes();
    let mut shape = SourceShape::default();
    let (mut depth, mut operators, mut i) = (0usize, 0usize, 0usize);
    let mut previous = b' ';
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            quote @ (b'\'' | b'"') => {
                let triple = bytes[i..].starts_with(&[quote; 3]);
                i += if triple { 3 } else { 1 };
                while i < bytes.len() {
                    if bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if triple && bytes[i..].starts_with(&[quote; 3]) {
                        i += 2;
                        break;
                    }
                    if !triple && (bytes[i] == quote || bytes[i] == b'\n') {
                        break;
                    }
                    i += 1;
                }
                i = i.min(bytes.len() - 1);
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                shape.nesting = shape.nesting.max(depth);
                operators += 1;
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' if depth == 0 && previous != b'\\' => operators = 0,
            // A run of operator bytes (`**`, `<=`, `+-`) counts once.
            byte if OPERATOR_BYTES.contains(&byte) && !OPERATOR_BYTES.contains(&previous) => {
                operators += 1;
            }
            b'.' if !previous.is_ascii_digit() => operators += 1,
            b'a'..=b'z' if !(previous.is_ascii_alphanumeric() || previous == b'_') => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map_or(bytes.len(), |n| i + n);
                if OPERATOR_WORDS.contains(&&bytes[i..end]) {
                    operators += 1;
                }
                i = end - 1;
            }
            _ => {}
        }
        shape.operators = shape.operators.max(operators);
        previous = bytes[i];
        i += 1;
    }
    shape
}

/// The traceback of an exception, with limit errors reworded: monty's own text for a timeout carries
/// wall-clock durations, which are neither meaningful to the model nor deterministic natively.
fn describe_error(error: &MontyException, limits: &CellLimits) -> String {
    let is_limit_message = error
        .message()
        .is_some_and(|m| m.contains("limit exceeded"));
    match error.exc_type() {
        ExcType::TimeoutError if is_limit_message => format!(
            "TimeoutError: the cell exceeded its execution budget ({} steps of about 255 bytecode \
             instructions) and was stopped. Variables assigned before it stopped keep their values.",
            limits.steps
        ),
        ExcType::MemoryError if is_limit_message => format!(
            "MemoryError: the cell exceeded its memory budget ({} MiB) and was stopped. Variables \
             assigned before it stopped keep their values.",
            limits.memory_bytes >> 20
        ),
        _ => shorten_lines(&error.to_string(), MAX_TRACEBACK_LINE),
    }
}

/// Longest traceback line kept whole: a traceback quotes source lines, and a cell with one enormous
/// line would otherwise push the exception's name out of the truncated observation.
const MAX_TRACEBACK_LINE: usize = 240;

fn shorten_lines(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if line.len() <= max {
            out.push_str(line);
        } else {
            let mut cut = max;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&line[..cut]);
            out.push_str(&format!(" [... {} more bytes]", line.len() - cut));
        }
    }
    out
}

/// `print` target: keeps the first `cap` bytes, counts the rest.
struct CappedOutput {
    text: String,
    cap: usize,
    dropped: usize,
}

impl CappedOutput {
    fn new(cap: usize) -> CappedOutput {
        CappedOutput {
            text: String::new(),
            cap,
            dropped: 0,
        }
    }

    fn push_str(&mut self, s: &str) {
        let room = self.cap.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return;
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&s[..cut]);
        self.dropped += s.len() - cut;
    }

    /// Appends `line` on a line of its own.
    fn push_line(&mut self, line: &str) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.push_str("\n");
        }
        self.push_str(line);
    }

    fn finish(mut self) -> String {
        if self.dropped > 0 {
            if !self.text.ends_with('\n') {
                self.text.push('\n');
            }
            self.text.push_str(&format!(
                "[output truncated: {} more bytes not shown]",
                self.dropped
            ));
        }
        if self.text.is_empty() {
            self.text.push_str("(no output)");
        }
        self.text
    }
}

impl PrintWriterCallback for CappedOutput {
    fn stdout_write(&mut self, output: Cow<'_, str>) -> Result<(), MontyException> {
        self.push_str(&output);
        Ok(())
    }

    fn stdout_push(&mut self, end: char) -> Result<(), MontyException> {
        let mut buf = [0u8; 4];
        self.push_str(end.encode_utf8(&mut buf));
        Ok(())
    }
}

/// The guest's clock. wasi-libc's `clock_gettime` is a weak symbol; this strong definition replaces
/// it, so `std::time::Instant` (which monty's resource tracker reads) never calls the host's
/// `clock_time_get`, which the sandbox forbids. Each read advances a counter by one microsecond:
/// time is then a deterministic count of reads, which is what makes monty's duration limit a step
/// budget. Python code sees no clock at all (`datetime.now()` raises `NotImplementedError`).
///
/// Each read also refreshes monty's memory counter with the growth of linear memory since the cell
/// began, because monty checks memory right before it reads the clock.
pub mod virtual_clock {
    #[cfg(target_os = "wasi")]
    mod wasi {
        use std::sync::atomic::{AtomicU64, Ordering};

        use monty_types::{BASELINE_MEMORY, LIVE_MEMORY};

        /// Nanoseconds since the guest started, advanced only by reads.
        static NANOS: AtomicU64 = AtomicU64::new(0);

        /// wasi-libc's `struct timespec` on wasm32: 64-bit seconds, 32-bit nanoseconds, padded.
        #[repr(C)]
        pub struct Timespec {
            seconds: i64,
            nanos: i32,
        }

        fn memory_bytes() -> usize {
            core::arch::wasm32::memory_size(0) * 65536
        }

        /// Memory grown before this cell does not count against it.
        pub fn start_cell() {
            let now = memory_bytes();
            BASELINE_MEMORY.store(now, Ordering::Relaxed);
            LIVE_MEMORY.store(now, Ordering::Relaxed);
        }

        /// # Safety
        /// `out` must point to a writable `Timespec` (the C contract of `clock_gettime`).
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn clock_gettime(_clock: *const u8, out: *mut Timespec) -> i32 {
            LIVE_MEMORY.store(memory_bytes(), Ordering::Relaxed);
            let nanos = NANOS.fetch_add(1_000, Ordering::Relaxed) + 1_000;
            // SAFETY: guaranteed by the caller.
            unsafe {
                *out = Timespec {
                    seconds: (nanos / 1_000_000_000) as i64,
                    nanos: (nanos % 1_000_000_000) as i32,
                };
            }
            0
        }
    }

    /// Marks the start of a cell (sets the memory baseline). Natively nothing is tracked.
    pub fn start_cell() {
        #[cfg(target_os = "wasi")]
        wasi::start_cell();
    }
}
