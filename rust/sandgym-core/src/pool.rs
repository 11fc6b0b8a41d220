//! Worker pools: the one place rayon thread pools are built. A run that asks for a number of threads
//! (`threads`, `--threads`) or a policy that declares its concurrency runs inside a pool of that size;
//! without a number, work runs on rayon's global pool (one thread per core).

use crate::error::{Error, Result};

/// A rayon pool of `threads` workers (at least one).
pub fn build(threads: usize) -> Result<rayon::ThreadPool> {
    let threads = threads.max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::InvalidArgument(format!("worker pool of {threads} threads: {e}")))
}

/// Runs `work` in a pool of `threads` workers, or on the current pool when `None`.
pub fn install<R: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> Result<R> + Send,
) -> Result<R> {
    match threads {
        Some(threads) => build(threads)?.install(work),
        None => work(),
    }
}
