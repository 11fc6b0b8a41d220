//! Shared helpers: paths of the guests built with the host, small limits for fast fault tests.

use std::path::PathBuf;
use std::time::Duration;

use sandgym_core::{EnvOptions, Limits};

/// Path of a guest `.wasm` built by the core's build script.
pub fn guest(name: &str) -> String {
    let path = PathBuf::from(sandgym_core::GUEST_DIR).join(format!("{name}.wasm"));
    assert!(path.is_file(), "missing test guest {}", path.display());
    path.display().to_string()
}

/// Limits small enough that runaway guests fail fast.
pub fn tight_limits() -> Limits {
    Limits {
        fuel_per_call: 50_000_000,
        deadline: Duration::from_secs(5),
        memory_bytes: 32 << 20,
        output_bytes: 1 << 20,
        stdio_bytes: 4096,
    }
}

pub fn tight() -> EnvOptions {
    EnvOptions {
        config: serde_json::Value::Null,
        limits: tight_limits(),
    }
}

/// Plays the env's expert from the current state to the end; returns the last step.
pub fn play_expert(env: &mut sandgym_core::Env) -> sandgym_core::StepOutput {
    for _ in 0..64 {
        let action = env.expert().unwrap().expect("the env has an expert action");
        let out = env.step(&action).unwrap();
        if out.terminated || out.truncated {
            return out;
        }
    }
    panic!("expert did not finish within 64 turns");
}
