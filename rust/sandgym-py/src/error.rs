//! Core errors → Python exceptions, in one `match` on the stable error code. The classes live in
//! `sandgym/errors.py` (so they can also subclass `ValueError`, `OSError`, …); each carries `.kind`
//! and, for guest faults, `.stderr`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use sandgym_core::Error;

/// The Python class name for an error code.
fn class_name(kind: &str) -> &'static str {
    match kind {
        "unknown_env" => "UnknownEnvError",
        "invalid_module" => "InvalidModuleError",
        "forbidden_import" => "ForbiddenImportError",
        "abi_mismatch" => "AbiMismatchError",
        "out_of_fuel" => "OutOfFuelError",
        "deadline" => "DeadlineError",
        "memory_limit" => "MemoryLimitError",
        "stack_overflow" => "StackOverflowError",
        "guest_trap" => "GuestTrapError",
        "guest_exit" => "GuestExitError",
        "forbidden_call" => "ForbiddenCallError",
        "malformed_output" => "MalformedOutputError",
        "rejected" => "RejectedError",
        "reset_needed" => "ResetNeededError",
        "invalid_argument" => "InvalidArgumentError",
        "policy" => "PolicyError",
        "pool_exhausted" => "PoolExhaustedError",
        "resource_exhausted" => "ResourceExhaustedError",
        "io" => "SandgymIOError",
        "storage" => "StorageError",
        _ => "SandboxError",
    }
}

/// Converts a core error into its Python exception.
pub fn to_pyerr(err: Error) -> PyErr {
    Python::attach(|py| {
        let message = err.to_string();
        let build = || -> PyResult<PyErr> {
            let module = py.import("sandgym.errors")?;
            let class = module.getattr(class_name(err.kind()))?;
            let instance = class.call1((message.clone(),))?;
            instance.setattr("kind", err.kind())?;
            instance.setattr("stderr", err.guest_stderr().unwrap_or(""))?;
            Ok(PyErr::from_value(instance))
        };
        build().unwrap_or_else(|_| PyRuntimeError::new_err(message.clone()))
    })
}

/// `Result` of core calls, mapped for `?` in binding code.
pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_pyerr)
    }
}

/// Every class `to_pyerr` can raise, for the coverage test.
#[pyfunction]
pub fn _error_classes() -> Vec<(&'static str, &'static str)> {
    Error::KINDS
        .iter()
        .map(|kind| (*kind, class_name(kind)))
        .collect()
}
