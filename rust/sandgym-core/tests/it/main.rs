//! One integration test binary, one module per topic (as in wasmtime's tests/all).

mod address_space;
mod code_math;
mod collect;
mod common;
mod docs;
mod early;
mod fork;
mod groups;
mod hostile;
mod policies;
mod reasoning;
mod sandbox;
mod store;
mod user_turns;
