//! The wasm guest gets an 8 MiB stack instead of the workspace's 64 KiB (`envs/.cargo/config.toml`):
//! monty's parser (ruff's, recursive descent) and compiler recurse once per nesting level of the
//! cell's source, and a stack overflow traps the whole guest. The env also refuses sources nested
//! deeper than `MAX_NESTING` before they reach the parser; the larger stack is the margin for what that
//! check cannot see. Untouched stack pages cost nothing in snapshots (the host copies written pages).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("wasi") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=8388608");
    }
}
