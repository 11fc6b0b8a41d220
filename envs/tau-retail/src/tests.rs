//! tau-retail tests: every tool's success and error paths on a small hand-built DB, the generated
//! tasks over many seeds, the env protocol, and (when the original data is present) the v1 DB with all
//! tau2 retail tasks.

mod common;
mod env;
mod generated;
mod original;
mod tools;
mod user_mode;
