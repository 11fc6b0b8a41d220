//! The guest's global allocator: the standard one while the env is being configured, then a second heap
//! above everything configuration built.
//!
//! Why: the host bakes a configured guest into a copy-on-write memory image (pre-initialization), and a
//! snapshot copies only the pages written since (docs/abi.md, "Snapshots"). Configuration that loads a
//! database leaves free holes between its records; had episodes allocated into those holes, every step
//! would dirty pages scattered over the whole database and each fork would copy and fault them all.
//! Sealed, episode allocations land in a compact heap of their own, reused from step to step.
//!
//! The cost: memory that configuration allocated and an episode frees is not reused (configuration
//! state normally lives as long as the env, so this is rare and bounded by the configured size).

#[cfg(target_family = "wasm")]
pub use wasm::SealableHeap;

/// Sends every later allocation to the episode heap. Called by `export_env!` after a successful
/// `configure`; later calls change nothing. Natively (tests, `Host`) there is nothing to seal.
pub fn seal() {
    #[cfg(target_family = "wasm")]
    wasm::seal();
}

#[cfg(target_family = "wasm")]
mod wasm {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// Routes allocations to the standard allocator until [`seal`], then to the episode heap.
    pub struct SealableHeap {
        /// 0 until sealed; then the memory size at sealing: every older block lies below it.
        sealed_below: Cell<usize>,
        episode: talc::wasm::WasmDynamicTalc,
    }

    // SAFETY: wasm32-wasip1 guests are single-threaded (no `atomics` target feature), so the `Cell` is
    // never accessed concurrently.
    unsafe impl Sync for SealableHeap {}

    impl SealableHeap {
        pub const fn new() -> Self {
            SealableHeap {
                sealed_below: Cell::new(0),
                episode: talc::wasm::new_wasm_dynamic_allocator(),
            }
        }

        fn owns_old(&self, ptr: *mut u8) -> bool {
            (ptr as usize) < self.sealed_below.get()
        }
    }

    impl Default for SealableHeap {
        fn default() -> Self {
            Self::new()
        }
    }

    // SAFETY: every block is allocated and freed by the same underlying allocator: blocks below
    // `sealed_below` came from `System` (and are never handed back after sealing), all others from the
    // episode heap, which only grows memory above `sealed_below`.
    unsafe impl GlobalAlloc for SealableHeap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe {
                if self.sealed_below.get() == 0 {
                    System.alloc(layout)
                } else {
                    self.episode.alloc(layout)
                }
            }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe {
                if self.sealed_below.get() == 0 {
                    System.alloc_zeroed(layout)
                } else {
                    self.episode.alloc_zeroed(layout)
                }
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded to the allocator that made the block (see the impl's comment).
            unsafe {
                if self.sealed_below.get() == 0 {
                    System.dealloc(ptr, layout)
                } else if !self.owns_old(ptr) {
                    self.episode.dealloc(ptr, layout)
                }
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded to the allocator that made the block; an old block is copied out, never
            // written or freed.
            unsafe {
                if self.sealed_below.get() == 0 {
                    System.realloc(ptr, layout, new_size)
                } else if !self.owns_old(ptr) {
                    self.episode.realloc(ptr, layout, new_size)
                } else {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.episode.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    }
                    new
                }
            }
        }
    }

    /// The allocator of every guest built with the SDK.
    #[global_allocator]
    static HEAP: SealableHeap = SealableHeap::new();

    pub(super) fn seal() {
        if HEAP.sealed_below.get() == 0 {
            HEAP.sealed_below
                .set(core::arch::wasm32::memory_size(0) * 65536);
        }
    }
}
