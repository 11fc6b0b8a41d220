//! A tiny, deterministic WASI preview 1: captured stdout/stderr, an empty environment and argument list,
//! `random_get` from the episode seed, `proc_exit` as a trap. Every other WASI function a module imports
//! is bound to a trap naming it, and imports from any other module are refused before instantiation.

use wasmtime::{Caller, Extern, Linker, Module, Val};

use super::HostState;
use crate::error::{Error, GuestFault, Result};

pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;

/// The functions this shim implements; anything else from WASI traps when called.
const GRANTED: &[&str] = &[
    "fd_write",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "random_get",
    "proc_exit",
    "sched_yield",
];

/// Raised from host functions; recognised by `Sandbox::classify` on the way out.
#[derive(Debug)]
pub(crate) struct GuestExit(pub i32);

impl std::fmt::Display for GuestExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guest called proc_exit({})", self.0)
    }
}

impl std::error::Error for GuestExit {}

/// Raised by the trapping stubs of WASI functions the sandbox does not grant.
#[derive(Debug)]
pub(crate) struct ForbiddenCall(pub String);

impl std::fmt::Display for ForbiddenCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "forbidden call to `{}`", self.0)
    }
}

impl std::error::Error for ForbiddenCall {}

fn memory(caller: &mut Caller<'_, HostState>) -> Option<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn write_u32(data: &mut [u8], at: u32, value: u32) -> bool {
    let at = at as usize;
    match at.checked_add(4).and_then(|end| data.get_mut(at..end)) {
        Some(slot) => {
            slot.copy_from_slice(&value.to_le_bytes());
            true
        }
        None => false,
    }
}

fn fd_write(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> i32 {
    let Some(memory) = memory(&mut caller) else {
        return ERRNO_FAULT;
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let sink = match fd {
        1 => &mut state.stdout,
        2 => &mut state.stderr,
        _ => return ERRNO_BADF,
    };
    let mut total: u32 = 0;
    for i in 0..iovs_len.max(0) as usize {
        let entry = iovs as u32 as usize + i * 8;
        let (Some(ptr), Some(len)) = (read_u32(data, entry), read_u32(data, entry + 4)) else {
            return ERRNO_FAULT;
        };
        let Some(bytes) = data.get(ptr as usize..ptr as usize + len as usize) else {
            return ERRNO_FAULT;
        };
        sink.push(bytes);
        total = total.saturating_add(len);
    }
    if write_u32(data, nwritten as u32, total) {
        ERRNO_SUCCESS
    } else {
        ERRNO_FAULT
    }
}

/// Writes two zero counts: no environment variables, no arguments.
fn empty_sizes(mut caller: Caller<'_, HostState>, count: i32, size: i32) -> i32 {
    let Some(memory) = memory(&mut caller) else {
        return ERRNO_FAULT;
    };
    let data = memory.data_mut(&mut caller);
    if write_u32(data, count as u32, 0) && write_u32(data, size as u32, 0) {
        ERRNO_SUCCESS
    } else {
        ERRNO_FAULT
    }
}

fn random_get(mut caller: Caller<'_, HostState>, buf: i32, len: i32) -> i32 {
    let Some(memory) = memory(&mut caller) else {
        return ERRNO_FAULT;
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let start = buf as u32 as usize;
    let Some(out) = data.get_mut(start..start + len.max(0) as usize) else {
        return ERRNO_FAULT;
    };
    for chunk in out.chunks_mut(8) {
        let word = state.rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    ERRNO_SUCCESS
}

/// Builds the linker for one module: refuses non-WASI imports, binds the shim, traps the rest.
pub(crate) fn linker_for(
    engine: &wasmtime::Engine,
    module: &Module,
    origin: &str,
) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    let link_err = |e: wasmtime::Error| Error::Sandbox(format!("linking `{origin}`: {e}"));
    for import in module.imports() {
        if import.module() != WASI_MODULE {
            return Err(Error::ForbiddenImport {
                origin: origin.to_string(),
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
        let wasmtime::ExternType::Func(ty) = import.ty() else {
            return Err(Error::ForbiddenImport {
                origin: origin.to_string(),
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        };
        if GRANTED.contains(&import.name()) {
            continue;
        }
        let name = format!("{WASI_MODULE}::{}", import.name());
        linker
            .func_new(
                WASI_MODULE,
                import.name(),
                ty,
                move |_caller: Caller<'_, HostState>, _args: &[Val], _results: &mut [Val]| {
                    Err(wasmtime::Error::new(ForbiddenCall(name.clone())))
                },
            )
            .map_err(link_err)?;
    }
    linker
        .func_wrap(WASI_MODULE, "fd_write", fd_write)
        .and_then(|l| l.func_wrap(WASI_MODULE, "environ_sizes_get", empty_sizes))
        .and_then(|l| l.func_wrap(WASI_MODULE, "args_sizes_get", empty_sizes))
        .and_then(|l| {
            l.func_wrap(
                WASI_MODULE,
                "environ_get",
                |_: Caller<'_, HostState>, _: i32, _: i32| ERRNO_SUCCESS,
            )
        })
        .and_then(|l| {
            l.func_wrap(
                WASI_MODULE,
                "args_get",
                |_: Caller<'_, HostState>, _: i32, _: i32| ERRNO_SUCCESS,
            )
        })
        .and_then(|l| l.func_wrap(WASI_MODULE, "random_get", random_get))
        .and_then(|l| {
            l.func_wrap(WASI_MODULE, "sched_yield", |_: Caller<'_, HostState>| {
                ERRNO_SUCCESS
            })
        })
        .and_then(|l| {
            l.func_wrap(
                WASI_MODULE,
                "proc_exit",
                |_: Caller<'_, HostState>, code: i32| -> wasmtime::Result<()> {
                    Err(wasmtime::Error::new(GuestExit(code)))
                },
            )
        })
        .map_err(link_err)?;
    Ok(linker)
}

/// Maps a host-function error raised by this shim to its fault, if it is one of ours.
pub(crate) fn shim_fault(err: &wasmtime::Error) -> Option<GuestFault> {
    if let Some(exit) = err.downcast_ref::<GuestExit>() {
        return Some(GuestFault::Exit { code: exit.0 });
    }
    err.downcast_ref::<ForbiddenCall>()
        .map(|call| GuestFault::ForbiddenCall {
            name: call.0.clone(),
        })
}
