//! The process-wide wasmtime engine, its epoch ticker, and the compiled-module cache (in memory and on disk).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

use crate::error::{Error, Result};

/// How often the watchdog advances the engine epoch. A call's wall-clock deadline is counted in ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The hard ceiling for any guest memory; `Limits::memory_bytes` may only lower it.
pub(crate) const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Default size of the on-disk module cache (`SANDGYM_CACHE_MAX_MB` overrides). Every changed guest build
/// adds files (a pre-initialized tau env's is 35 MB), so the least recently used ones go beyond it.
const DEFAULT_CACHE_MAX_BYTES: u64 = 1 << 30;

/// Default number of live instances the pooling allocator holds (`SANDGYM_POOL_SLOTS` overrides).
const DEFAULT_POOL_SLOTS: u32 = 1024;

/// Guard region after (and before) each linear memory: wasmtime's default on 64-bit hosts. Loads and
/// stores with a static offset below it need no bounds check of their own.
const GUARD_BYTES: u64 = 32 << 20;

/// How the engine lays out guest memories, chosen once per process from its address-space limit
/// (`RLIMIT_AS`, `ulimit -v`) when the engine is built. [`engine_info`](super::engine_info) returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineInfo {
    /// `"pooling"` (slots reserved up front) or `"on_demand"` (each instance maps its own memory).
    pub allocator: &'static str,
    /// Slots of the pooling allocator; `None` on demand.
    pub pool_slots: Option<u32>,
    /// Address space reserved for one linear memory (the memory's reservation; guard regions extra).
    pub memory_reservation: u64,
    /// Address space one live instance's memory takes, guard regions included.
    pub bytes_per_instance: u64,
    /// The soft `RLIMIT_AS` when the engine was built; `None` when unlimited.
    pub address_space_limit: Option<u64>,
    /// Whether compiled guests rely on guard pages instead of explicit bounds checks (4 GiB
    /// reservations, only without an address-space limit).
    pub bounds_checks_elided: bool,
}

pub(crate) struct Shared {
    pub engine: Engine,
    pub info: EngineInfo,
    modules: Mutex<HashMap<[u8; 32], Module>>,
    cache_dir: Option<PathBuf>,
}

/// The engine every sandbox shares. Built once: cranelift, fuel and epoch interruption always on (both
/// are part of the compiled code, so they cannot vary per env), pooling allocator when the OS allows it.
pub(crate) fn shared() -> Result<&'static Shared> {
    static SHARED: OnceLock<std::result::Result<Shared, String>> = OnceLock::new();
    SHARED
        .get_or_init(build_shared)
        .as_ref()
        .map_err(|e| Error::Sandbox(e.clone()))
}

/// The soft address-space limit of this process, `None` when unlimited.
pub(crate) fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes the struct it is given, which lives on this stack frame.
    #[expect(
        unsafe_code,
        reason = "getrlimit(RLIMIT_AS) has no safe wrapper in std"
    )]
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Memory layout of one engine: how much address space each linear memory reserves.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// `None`: wasmtime's default (4 GiB, which lets cranelift drop bounds checks on 32-bit memories).
    reservation: Option<u64>,
}

impl Layout {
    /// Without an address-space limit, 4 GiB reservations cost nothing but page-table entries and
    /// save every bounds check. Under a limit they are what ran out (issue 13: three or four live
    /// instances filled `ulimit -v 16000000`), so each memory then reserves only what a guest can ever
    /// use, `MAX_MEMORY_BYTES`, and compiled code checks bounds explicitly.
    fn for_limit(limit: Option<u64>) -> Layout {
        Layout {
            reservation: limit.map(|_| MAX_MEMORY_BYTES as u64),
        }
    }

    fn memory_reservation(self) -> u64 {
        self.reservation.unwrap_or(1 << 32)
    }

    /// A memory's reservation plus the guard regions before and after it (on demand; pool slots
    /// share one guard between neighbours, so this is an upper bound there).
    fn bytes_per_instance(self) -> u64 {
        self.memory_reservation() + 2 * GUARD_BYTES
    }

    fn config(self) -> Config {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 * 1024)
            .memory_init_cow(true)
            .memory_guard_size(GUARD_BYTES);
        if let Some(bytes) = self.reservation {
            // The whole cap is reserved, so a memory never has to move to grow.
            config
                .memory_reservation(bytes)
                .memory_reservation_for_growth(0);
        }
        config
    }
}

/// Pool slots to try (0: allocate on demand). `SANDGYM_POOL_SLOTS` when set: a user's explicit choice is
/// tried as given, and falls back to on-demand allocation if the pool cannot be reserved. Otherwise the
/// default pool without an address-space limit, and none under one: a pool reserves every slot up
/// front (1 GiB + guards each), so under `ulimit -v 16000000` it could hold only a handful of
/// instances in its share of the limit, and a run with more workers or a larger `VecEnv` would fail
/// with `pool_exhausted` although the limit had room for them. On demand, instances take address
/// space only while they live, as many as fit; the cost is a `mmap`/`munmap` per instance
/// (docs/benchmarks.md).
fn pool_slots(limit: Option<u64>) -> u32 {
    if let Some(slots) = std::env::var("SANDGYM_POOL_SLOTS")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        return slots;
    }
    match limit {
        None => DEFAULT_POOL_SLOTS,
        Some(_) => 0,
    }
}

fn build_shared() -> std::result::Result<Shared, String> {
    let limit = address_space_limit();
    let layout = Layout::for_limit(limit);
    let slots = pool_slots(limit);
    // The pooling allocator reserves virtual memory for every slot up front; where the OS refuses that
    // (strict overcommit, a limit too small for even one slot), fall back to on-demand allocation
    // rather than failing: each instance then maps its own memory, of the same size.
    let (engine, pool_slots) = match (slots > 0).then(|| pooled_engine(layout, slots)) {
        Some(Ok(engine)) => (engine, Some(slots)),
        _ => (
            Engine::new(&layout.config()).map_err(|e| e.to_string())?,
            None,
        ),
    };
    let info = EngineInfo {
        allocator: if pool_slots.is_some() {
            "pooling"
        } else {
            "on_demand"
        },
        pool_slots,
        memory_reservation: layout.memory_reservation(),
        bytes_per_instance: layout.bytes_per_instance(),
        address_space_limit: limit,
        bounds_checks_elided: layout.reservation.is_none(),
    };
    let ticker = engine.weak();
    std::thread::Builder::new()
        .name("sandgym-epoch".into())
        .spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
    Ok(Shared {
        engine,
        info,
        modules: Mutex::new(HashMap::new()),
        cache_dir: cache_dir(),
    })
}

fn pooled_engine(layout: Layout, slots: u32) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_memories(slots)
        .total_tables(slots)
        .total_core_instances(slots)
        .max_memory_size(MAX_MEMORY_BYTES)
        // No memory is kept resident between instances: a slot is reset with `madvise`, so its pages go
        // back to the copy-on-write image and `dirty::written_pages` sees only what the next guest writes.
        .linear_memory_keep_resident(0);
    let mut config = layout.config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SANDGYM_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir).join("modules"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sandgym").join("modules"))
}

/// Feeds `Hash` output into SHA-256, so wasmtime's engine-compatibility hash becomes part of a stable key.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Shared {
    /// Compiles `wasm`, or returns it from the in-process cache, or deserializes it from the disk cache.
    /// The disk key covers the module bytes, wasmtime's version and the engine configuration, so a
    /// `.cwasm` built by another wasmtime or another config is never loaded.
    pub fn module(&self, wasm: &[u8], origin: &str) -> Result<(Module, [u8; 32])> {
        let digest: [u8; 32] = Sha256::digest(wasm).into();
        if let Some(module) = self.modules.lock().expect("module cache").get(&digest) {
            return Ok((module.clone(), digest));
        }
        let module = self.load_or_compile(wasm, &digest, origin)?;
        self.modules
            .lock()
            .expect("module cache")
            .insert(digest, module.clone());
        Ok((module, digest))
    }

    fn load_or_compile(&self, wasm: &[u8], digest: &[u8; 32], origin: &str) -> Result<Module> {
        let path = self.cache_dir.as_ref().map(|dir| {
            let mut hasher = ShaHasher(Sha256::new());
            hasher.write(digest);
            // The compatibility hash covers wasmtime's version and every setting that affects code.
            hasher.write(b"sandgym-module-cache-v1");
            self.engine
                .precompile_compatibility_hash()
                .hash(&mut hasher);
            dir.join(format!("{}.cwasm", hex(&hasher.0.finalize())))
        });
        if let Some(path) = path.as_deref().filter(|p| p.is_file()) {
            // SAFETY: the file was written by `store_cache` below from `Module::serialize` of this very
            // engine configuration (the key includes the wasmtime version and the engine's compatibility
            // hash), and it is written to a temp name then renamed, so it is never seen half-written.
            // wasmtime also checks the header and refuses artifacts of another version or config.
            #[expect(unsafe_code, reason = "loading our own precompiled module cache")]
            let loaded = unsafe { Module::deserialize_file(&self.engine, path) };
            if let Ok(module) = loaded {
                // Marks it recently used, for `evict_least_recently_used` (best effort).
                let _ = std::fs::File::options()
                    .append(true)
                    .open(path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok(module);
            }
        }
        let module =
            Module::new(&self.engine, wasm).map_err(|e| Error::invalid_module(origin, e))?;
        if let Some(path) = path {
            // A cache that cannot be written (read-only home, full disk) only costs start-up time.
            if store_cache(&module, &path).is_ok() {
                evict_least_recently_used(
                    path.parent().expect("a cache file's directory"),
                    cache_max_bytes(),
                );
            }
        }
        Ok(module)
    }
}

fn cache_max_bytes() -> u64 {
    std::env::var("SANDGYM_CACHE_MAX_MB")
        .ok()
        .and_then(|mb| mb.trim().parse::<u64>().ok())
        .map_or(DEFAULT_CACHE_MAX_BYTES, |mb| mb.saturating_mul(1 << 20))
}

/// Deletes the least recently used `.cwasm` files of `dir` until the rest fit in `max_bytes`; the most
/// recently used file always stays. Other processes may be reading or pruning the same directory: a file
/// deleted under a reader stays readable on Unix, one deleted before it is opened is recompiled, and a
/// file another pruner already removed is skipped.
pub(crate) fn evict_least_recently_used(dir: &Path, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let path = entry.path();
            if path.extension()? != "cwasm" {
                return None;
            }
            let meta = entry.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), path))
        })
        .collect();
    // Newest first; the newest is kept whatever its size.
    files.sort_by_key(|file| std::cmp::Reverse(file.0));
    let mut kept = 0u64;
    for (i, (_, len, path)) in files.iter().enumerate() {
        kept = kept.saturating_add(*len);
        if i > 0 && kept > max_bytes {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn store_cache(module: &Module, path: &Path) -> std::io::Result<()> {
    let bytes = module.serialize().map_err(std::io::Error::other)?;
    let dir = path.parent().expect("cache path has a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), fastrand_suffix()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A per-process counter is enough to keep temp names of concurrent writers apart.
fn fastrand_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{Layout, MAX_MEMORY_BYTES, evict_least_recently_used};

    #[test]
    fn reservations_follow_the_address_space_limit() {
        // Unlimited: wasmtime's 4 GiB, so cranelift elides bounds checks.
        let free = Layout::for_limit(None);
        assert_eq!(free.reservation, None);
        assert_eq!(free.memory_reservation(), 1 << 32);
        assert_eq!(free.bytes_per_instance(), (1 << 32) + (64 << 20));
        // `ulimit -v 16000000`: the cap, so about 14 instances fit instead of 3.
        let limited = Layout::for_limit(Some(16_000_000 * 1024));
        assert_eq!(limited.memory_reservation(), MAX_MEMORY_BYTES as u64);
        assert_eq!(limited.bytes_per_instance(), 0x4400_0000);
        assert_eq!(16_000_000 * 1024 / limited.bytes_per_instance(), 14);
        assert_eq!(16_000_000 * 1024 / free.bytes_per_instance(), 3);
    }

    #[test]
    fn eviction_keeps_the_most_recently_used_files_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        // (name, size, age in seconds): "d" is the newest and bigger than the whole budget.
        let files = [
            ("a.cwasm", 400, 40),
            ("b.cwasm", 300, 30),
            ("c.cwasm", 300, 20),
            ("d.cwasm", 2000, 10),
            ("e.cwasm", 100, 25),
            ("notes.txt", 5000, 50),
        ];
        let write = |name: &str, size: usize, age: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; size]).unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(age)).unwrap();
        };
        for (name, size, age) in files {
            write(name, size, age);
        }
        let names = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        evict_least_recently_used(dir.path(), 10_000);
        assert_eq!(names().len(), 6, "everything fits");
        // Newest first: d (2000, always kept), c (300) and e (100) fit in 2400; b and a go. Other
        // files are never touched.
        evict_least_recently_used(dir.path(), 2400);
        assert_eq!(names(), ["c.cwasm", "d.cwasm", "e.cwasm", "notes.txt"]);
        evict_least_recently_used(dir.path(), 0);
        assert_eq!(names(), ["d.cwasm", "notes.txt"]);
        evict_least_recently_used(&dir.path().join("missing"), 0);
    }
}
