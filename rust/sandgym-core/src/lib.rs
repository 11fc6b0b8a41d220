//! The core of sandgym, written in Rust. Data flows one way:
//! `policy ─Action→ env (sandbox) ─Step→ collect ─Trajectory→ store ─→ .parquet`.
//!
//! - [`sandbox`] owns wasmtime: engine, module cache, limits, the WASI shim, memory snapshots.
//! - [`env`] is one live environment over one sandbox; [`vec`] steps many on rayon.
//! - [`registry`] maps env ids and `.wasm` paths to programs.
//! - [`chat`] converts text ↔ actions and messages in every chat format ([`parse`] is its reading half,
//!   kept at this path too); [`policy`] chooses actions.
//! - [`files`] reads task files and inlines `{"$path": ...}` references in env configuration.
//! - [`collect`] plans and runs episodes (the one module that meets both policy and env), from one
//!   [`collect::CollectConfig`]; [`groups`] holds a group's rollouts until its advantages are computed,
//!   [`rewards`] and [`advantage`] score them for RL; [`pool`] builds the worker pools.
//! - [`export`] writes trainer datasets (TRL, verl, SkyRL, Early Experience) from trajectories.
//! - [`early`] builds early-experience data (alternative actions on forks of expert states).
//! - [`trajectory`] is the row; [`store`] writes rows to Parquet.

pub mod advantage;
pub mod chat;
pub mod collect;
pub mod early;
pub mod env;
pub mod export;
pub mod files;
pub mod groups;
pub mod policy;
pub mod pool;
pub mod registry;
pub mod rewards;
pub mod vec;

pub use chat::parse;
pub use sandgym_sandbox as sandbox;
pub use sandgym_sandbox::{error, rng};
pub use sandgym_store as store;
pub use sandgym_store::trajectory;

pub use sandgym_abi as abi;
pub use sandgym_abi::{
    Action, EnvInfo, Message, ResetOutput, Role, StepOutput, ToolCall, UserTurn,
};

pub use env::{Env, EnvOptions, EnvSnapshot};
pub use error::{Error, GuestFault, Result};
pub use sandbox::{EngineInfo, Limits, engine_info};
pub use trajectory::Trajectory;
pub use vec::VecEnv;

/// The sandgym version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Directory of the test guests built with the host (hostile_*.wasm and the bundled envs).
#[doc(hidden)]
pub const GUEST_DIR: &str = env!("SANDGYM_GUEST_DIR");
