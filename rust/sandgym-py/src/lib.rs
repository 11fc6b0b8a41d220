//! The `sandgym._core` extension: a thin pyo3 layer over `sandgym-core`. One file per core module
//! (`env`, `collect`), plus error mapping, JSON ↔ Python conversion and the Arrow export. No logic lives
//! here that Rust users of the core would miss.

mod arrow;
mod chat;
mod collect;
mod convert;
mod early;
mod env;
mod error;
mod export;
mod policy;
mod vec;

use pyo3::prelude::*;

/// Runs the `sandgym` command line with `argv` (program name first) and returns its exit code.
/// The Python-side policies (`--delethink`) are built by `sandgym.delethink.cli_policy`.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let hooks = sandgym_cli::Hooks {
        delethink: Some(Box::new(delethink_policy)),
    };
    py.detach(|| sandgym_cli::main_with(argv, &hooks))
}

/// The `--delethink` policy: `sandgym.delethink.cli_policy(...)`, read like any Python policy object.
fn delethink_policy(
    request: &sandgym_cli::DelethinkRequest,
) -> Result<std::sync::Arc<dyn sandgym_core::policy::Policy>, sandgym_core::Error> {
    Python::attach(|py| {
        let openai = &request.openai;
        let api_key = std::env::var(&openai.api_key_env)
            .ok()
            .filter(|key| !key.is_empty());
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("knobs", &request.knobs)?;
        kwargs.set_item("base_url", &openai.base_url)?;
        kwargs.set_item("model", &openai.model)?;
        kwargs.set_item("api_key", api_key)?;
        kwargs.set_item("temperature", openai.temperature)?;
        kwargs.set_item("timeout_s", openai.timeout.as_secs_f64())?;
        kwargs.set_item("tokenizer", &request.tokenizer)?;
        kwargs.set_item("parser", openai.parser.name())?;
        kwargs.set_item("concurrency", openai.concurrency)?;
        let policy =
            py.import("sandgym.delethink")?
                .call_method("cli_policy", (), Some(&kwargs))?;
        policy::policy_from_py(&policy)
    })
    .map_err(|e: PyErr| sandgym_core::Error::InvalidArgument(format!("--delethink: {e}")))
}

/// How the engine lays out guest memories in this process (allocator, pool slots, reservation per
/// instance, the address-space limit it saw): what a user under `ulimit -v` needs to check.
#[pyfunction]
fn _engine_info(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let info = sandgym_core::engine_info().map_err(error::to_pyerr)?;
    let dict = pyo3::types::PyDict::new(py);
    dict.set_item("allocator", info.allocator)?;
    dict.set_item("pool_slots", info.pool_slots)?;
    dict.set_item("memory_reservation", info.memory_reservation)?;
    dict.set_item("bytes_per_instance", info.bytes_per_instance)?;
    dict.set_item("address_space_limit", info.address_space_limit)?;
    dict.set_item("bounds_checks_elided", info.bounds_checks_elided)?;
    Ok(dict)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", sandgym_core::VERSION)?;
    m.add("ABI_VERSION", sandgym_core::abi::ABI_VERSION)?;
    m.add_class::<env::PyEnv>()?;
    m.add_class::<vec::PyVecEnv>()?;
    m.add_class::<env::Snapshot>()?;
    m.add_class::<arrow::ArrowTable>()?;
    m.add_function(wrap_pyfunction!(env::list_envs, m)?)?;
    m.add_function(wrap_pyfunction!(env::bundled_env_ids, m)?)?;
    m.add_function(wrap_pyfunction!(env::parse_action_text, m)?)?;
    m.add_function(wrap_pyfunction!(collect::collect_episodes, m)?)?;
    m.add_function(wrap_pyfunction!(collect::read_trajectories, m)?)?;
    m.add_function(wrap_pyfunction!(collect::read_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(early::early_experience, m)?)?;
    m.add_function(wrap_pyfunction!(early::build_reflection_sft, m)?)?;
    m.add_function(wrap_pyfunction!(early::read_reflections, m)?)?;
    m.add_function(wrap_pyfunction!(export::export_trajectories, m)?)?;
    m.add_function(wrap_pyfunction!(export::compute_advantages, m)?)?;
    m.add_function(wrap_pyfunction!(error::_error_classes, m)?)?;
    m.add_function(wrap_pyfunction!(_engine_info, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    chat::register(m)?;
    Ok(())
}
