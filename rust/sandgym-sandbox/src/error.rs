//! sandgym's error type: one closed enum with one fixed, lowercase message shape per variant, and a stable
//! snake_case `kind()` code that becomes the `error_kind` column and selects the Python exception class.

/// How a guest failed. Each is contained: the host, other envs and the run go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFault {
    #[error("out of fuel: the call exceeded its budget of {budget} fuel units")]
    OutOfFuel { budget: u64 },
    #[error("deadline: the call ran longer than {millis} ms of wall-clock time")]
    Deadline { millis: u64 },
    #[error(
        "memory limit: the guest tried to grow its memory to {requested} bytes (limit {limit})"
    )]
    MemoryLimit { requested: usize, limit: usize },
    #[error("stack overflow in the guest")]
    StackOverflow,
    #[error("guest trapped: {message}")]
    Trap { message: String },
    #[error("guest exited with code {code}")]
    Exit { code: i32 },
    #[error("guest called `{name}`, which the sandbox does not grant")]
    ForbiddenCall { name: String },
    #[error("malformed guest output: {message}")]
    MalformedOutput { message: String },
}

/// Errors of the sandgym core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "unknown env `{0}`; `sandgym envs` lists the bundled ones, and a path to a `.wasm` file loads any other"
    )]
    UnknownEnv(String),
    #[error("invalid module `{origin}`: {reason}")]
    InvalidModule { origin: String, reason: String },
    #[error("module `{origin}` imports `{module}::{name}`; guests may import only WASI preview 1")]
    ForbiddenImport {
        origin: String,
        module: String,
        name: String,
    },
    #[error("module `{origin}` speaks ABI v{guest}, this host speaks v{host}")]
    AbiMismatch {
        origin: String,
        guest: u32,
        host: u32,
    },
    /// A guest fault, with the tail of what the guest wrote to stderr.
    #[error("{fault}{}", stderr_suffix(.stderr))]
    Guest { fault: GuestFault, stderr: String },
    /// The guest refused a call with a message (bad config, broken task, ...).
    #[error("env `{env}` rejected {call}: {message}")]
    Rejected {
        env: String,
        call: &'static str,
        message: String,
    },
    #[error("the episode has ended; call `reset` first")]
    ResetNeeded,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("policy failed: {0}")]
    Policy(String),
    #[error("the sandbox pool is full ({0}); drop envs or raise `SANDGYM_POOL_SLOTS`")]
    PoolExhausted(String),
    /// The OS refused what a new instance needs (address space under `ulimit -v`, memory): the
    /// module is fine, the machine or the process's limits are not.
    #[error("resource exhausted: cannot instantiate `{origin}`: {reason}")]
    ResourceExhausted { origin: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Storage(String),
    #[error("sandbox: {0}")]
    Sandbox(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; guest stderr: {}", stderr.trim_end())
    }
}

impl Error {
    /// The stable snake_case code of this error (the `error_kind` column).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownEnv(_) => "unknown_env",
            Error::InvalidModule { .. } => "invalid_module",
            Error::ForbiddenImport { .. } => "forbidden_import",
            Error::AbiMismatch { .. } => "abi_mismatch",
            Error::Guest { fault, .. } => match fault {
                GuestFault::OutOfFuel { .. } => "out_of_fuel",
                GuestFault::Deadline { .. } => "deadline",
                GuestFault::MemoryLimit { .. } => "memory_limit",
                GuestFault::StackOverflow => "stack_overflow",
                GuestFault::Trap { .. } => "guest_trap",
                GuestFault::Exit { .. } => "guest_exit",
                GuestFault::ForbiddenCall { .. } => "forbidden_call",
                GuestFault::MalformedOutput { .. } => "malformed_output",
            },
            Error::Rejected { .. } => "rejected",
            Error::ResetNeeded => "reset_needed",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Policy(_) => "policy",
            Error::PoolExhausted(_) => "pool_exhausted",
            Error::ResourceExhausted { .. } => "resource_exhausted",
            Error::Io { .. } => "io",
            Error::Storage(_) => "storage",
            Error::Sandbox(_) => "sandbox",
        }
    }

    /// Every code `kind()` can return, for docs and coverage tests.
    pub const KINDS: &'static [&'static str] = &[
        "unknown_env",
        "invalid_module",
        "forbidden_import",
        "abi_mismatch",
        "out_of_fuel",
        "deadline",
        "memory_limit",
        "stack_overflow",
        "guest_trap",
        "guest_exit",
        "forbidden_call",
        "malformed_output",
        "rejected",
        "reset_needed",
        "invalid_argument",
        "policy",
        "pool_exhausted",
        "resource_exhausted",
        "io",
        "storage",
        "sandbox",
    ];

    /// The guest's captured stderr, for guest faults.
    pub fn guest_stderr(&self) -> Option<&str> {
        match self {
            Error::Guest { stderr, .. } => Some(stderr),
            _ => None,
        }
    }

    /// A storage failure (Parquet, Arrow or the files of a dataset), by its message.
    pub fn storage(err: impl std::fmt::Display) -> Self {
        Error::Storage(err.to_string())
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps an I/O error on `path` with the action that failed (`read`, `create`, ...).
    pub fn io_path(action: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::io(format!("cannot {action} `{}`", path.display()), source)
    }

    /// A module that cannot be used, with why.
    pub fn invalid_module(origin: impl Into<String>, reason: impl ToString) -> Self {
        Error::InvalidModule {
            origin: origin.into(),
            reason: reason.to_string(),
        }
    }
}

/// Result alias of sandgym.
pub type Result<T, E = Error> = std::result::Result<T, E>;
