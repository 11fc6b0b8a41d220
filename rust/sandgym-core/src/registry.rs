//! Env ids → programs: the bundled envs embedded at build time (`countdown-v0`, `parity-v0`) and any
//! `.wasm` file by path. Loaded programs are cached per process, so making many envs compiles once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use sandgym_abi::EnvInfo;

use crate::env::{Env, EnvOptions};
use crate::error::{Error, Result};
use crate::sandbox::Program;

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// A registered env: its id and static description.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    /// `name-vN`, e.g. `countdown-v0`.
    pub id: String,
    pub info: EnvInfo,
}

/// Whether `id` names a file rather than a registered env.
pub fn is_path(id: &str) -> bool {
    id.ends_with(".wasm") || id.contains('/') || id.contains(std::path::MAIN_SEPARATOR)
}

/// Names of the bundled envs (without version).
pub fn bundled_names() -> Vec<&'static str> {
    BUNDLED.iter().map(|(name, _, _)| *name).collect()
}

/// Ids of the bundled envs (`countdown-v0`), known without loading them: the versions their sources
/// declare, read at build time (the same ids as [`list`], which compiles every env to read its info).
pub fn bundled_ids() -> Vec<String> {
    BUNDLED
        .iter()
        .map(|(name, version, _)| format!("{name}-v{version}"))
        .collect()
}

/// The wasm bytes of a bundled env, by name (`countdown`) or id (`countdown-v0`).
pub fn bundled_wasm(id: &str) -> Option<&'static [u8]> {
    let name = base_name(id);
    BUNDLED
        .iter()
        .find(|(bundled, _, _)| *bundled == name)
        .map(|(_, _, bytes)| *bytes)
}

/// Strips a `-vN` suffix.
fn base_name(id: &str) -> &str {
    match id.rsplit_once("-v") {
        Some((name, version))
            if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            name
        }
        _ => id,
    }
}

fn cache() -> &'static Mutex<HashMap<String, Program>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Program>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Resolves an env id or `.wasm` path to a loaded program.
pub fn program(id: &str) -> Result<Program> {
    if let Some(program) = cache().lock().expect("registry cache").get(id) {
        return Ok(program.clone());
    }
    let program = if is_path(id) {
        let path = Path::new(id);
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::UnknownEnv(id.to_string()),
            _ => Error::io_path("read", path, e),
        })?;
        Program::load(&bytes, id)?
    } else {
        let bytes = bundled_wasm(id).ok_or_else(|| Error::UnknownEnv(id.to_string()))?;
        Program::load(bytes, id)?
    };
    // Paths are not cached: the file may be rebuilt between calls, and the module cache is keyed by
    // content anyway, so reloading an unchanged file costs a hash and a lookup.
    if !is_path(id) {
        cache()
            .lock()
            .expect("registry cache")
            .insert(id.to_string(), program.clone());
    }
    Ok(program)
}

/// Makes a live env from an id or path.
pub fn make(id: &str, options: EnvOptions) -> Result<Env> {
    let mut env = Env::new(id, &program(id)?, options)?;
    if !is_path(id) {
        // Rows and messages use the canonical versioned id, however the user spelled it.
        let canonical = format!("{}-v{}", env.info().name, env.info().version);
        env.rename(canonical);
    }
    Ok(env)
}

/// The canonical id (`name-vN`) for an id or name, or the path unchanged.
pub fn canonical_id(id: &str) -> Result<String> {
    if is_path(id) {
        return Ok(id.to_string());
    }
    Ok(spec(id)?.id)
}

/// The spec of one env.
pub fn spec(id: &str) -> Result<EnvSpec> {
    let env = Env::new(id, &program(id)?, EnvOptions::default())?;
    let info = env.info().clone();
    let id = if is_path(id) {
        id.to_string()
    } else {
        format!("{}-v{}", info.name, info.version)
    };
    Ok(EnvSpec { id, info })
}

/// Specs of every bundled env.
pub fn list() -> Result<Vec<EnvSpec>> {
    bundled_names().into_iter().map(spec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_ids_match_the_envs_own_info() {
        let listed: Vec<String> = list().unwrap().into_iter().map(|spec| spec.id).collect();
        assert_eq!(bundled_ids(), listed);
    }

    #[test]
    fn version_suffix_is_stripped_only_when_numeric() {
        assert_eq!(base_name("countdown-v0"), "countdown");
        assert_eq!(base_name("countdown"), "countdown");
        assert_eq!(base_name("my-vine"), "my-vine");
    }
}
