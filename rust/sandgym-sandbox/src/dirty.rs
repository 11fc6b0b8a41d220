//! Which pages of a linear memory the guest has written since its instance was created.
//!
//! wasmtime maps a module's initial memory copy-on-write (`memory_init_cow`), so a page the guest never
//! wrote is either not mapped yet (it reads as the initial image) or mapped read-only from the image or
//! the zero page. Only written pages are private anonymous pages. Linux's `PAGEMAP_SCAN` ioctl (6.7+)
//! lists exactly those in one call, so a snapshot copies what the episode changed instead of the whole
//! memory — a tau-bench env holds MiBs of database that no step writes.
//!
//! Where the ioctl is missing (older kernels, other OSes, no `/proc`), every page counts as written: a
//! snapshot is then a full copy, which is slower but exactly as correct.

#![allow(
    clippy::single_range_in_vec_init,
    reason = "lists of page ranges often hold one range"
)]

use std::ops::Range;

/// Granularity of the scan and of sparse snapshots (the host page size wasmtime's images use).
pub(crate) const PAGE: usize = 4096;

/// The written pages of `memory` as sorted, disjoint page-index ranges (page `i` covers bytes
/// `i*PAGE..(i+1)*PAGE`). `memory` must start on a page boundary, as wasm linear memories do.
pub(crate) fn written_pages(memory: &[u8]) -> Vec<Range<usize>> {
    let pages = memory.len().div_ceil(PAGE);
    if pages == 0 {
        return Vec::new();
    }
    #[cfg(target_os = "linux")]
    if let Some(ranges) = linux::scan(memory) {
        return ranges;
    }
    all_pages(memory.len())
}

/// Every page of a memory of `len` bytes, as one range.
pub(crate) fn all_pages(len: usize) -> Vec<Range<usize>> {
    vec![0..len.div_ceil(PAGE)]
}

/// The bytes that the pages `pages` cover in a memory of `len` bytes (the last page may be partial).
pub(crate) fn byte_range(pages: &Range<usize>, len: usize) -> Range<usize> {
    (pages.start * PAGE).min(len)..(pages.end * PAGE).min(len)
}

/// Writes into `dest` the initial contents of the memory bytes starting at `start`: `image` (the
/// module's initial memory up to its last initialized byte) and zeros beyond it.
pub(crate) fn fill_initial(dest: &mut [u8], start: usize, image: &[u8]) {
    let from_image = image.len().saturating_sub(start).min(dest.len());
    dest[..from_image].copy_from_slice(&image[start.min(image.len())..][..from_image]);
    dest[from_image..].fill(0);
}

/// Whether `bytes`, the memory bytes starting at `start`, hold their initial contents (see
/// [`fill_initial`]), compared in place.
pub(crate) fn is_initial(bytes: &[u8], start: usize, image: &[u8]) -> bool {
    let from_image = image.len().saturating_sub(start).min(bytes.len());
    static ZEROS: [u8; PAGE] = [0; PAGE];
    // Slice equality is a memcmp; a byte loop over the zeros would be several times slower.
    bytes[..from_image] == image[start.min(image.len())..][..from_image]
        && bytes[from_image..]
            .chunks(PAGE)
            .all(|chunk| chunk == &ZEROS[..chunk.len()])
}

/// The pages of `a` not in `b` (both sorted and disjoint, as `written_pages` returns them).
pub(crate) fn subtract(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut others = b.iter().peekable();
    for range in a {
        let mut start = range.start;
        while start < range.end {
            // Skip ranges of `b` wholly before `start`.
            while others.next_if(|o| o.end <= start).is_some() {}
            match others.peek() {
                Some(o) if o.start < range.end => {
                    if o.start > start {
                        out.push(start..o.start);
                    }
                    start = o.end.max(start);
                }
                _ => {
                    out.push(start..range.end);
                    start = range.end;
                }
            }
        }
    }
    out
}

/// The pages in `a` or `b` (both sorted and disjoint), sorted, disjoint and with touching ranges joined.
pub(crate) fn union(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut all: Vec<Range<usize>> = a.iter().chain(b).cloned().collect();
    all.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(all.len());
    for range in all.into_iter().filter(|r| !r.is_empty()) {
        match out.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => out.push(range),
        }
    }
    out
}

#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "the PAGEMAP_SCAN ioctl takes raw pointers to our own buffers"
)]
mod linux {
    use std::fs::File;
    use std::ops::Range;
    use std::os::fd::AsRawFd;
    use std::sync::OnceLock;

    use super::PAGE;

    // Page categories of `linux/fs.h`.
    const PAGE_IS_FILE: u64 = 1 << 2;
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    const PAGE_IS_SWAPPED: u64 = 1 << 4;
    const PAGE_IS_PFNZERO: u64 = 1 << 5;

    /// `struct page_region` of `linux/fs.h`.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }

    /// `struct pm_scan_arg` of `linux/fs.h`.
    #[repr(C)]
    #[derive(Default)]
    struct PmScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    /// `_IOWR('f', 16, struct pm_scan_arg)`.
    const PAGEMAP_SCAN: u64 =
        (3 << 30) | ((size_of::<PmScanArg>() as u64) << 16) | ((b'f' as u64) << 8) | 16;

    /// `/proc/self/pagemap`, opened once; `None` when it cannot be opened or lacks the ioctl.
    fn pagemap() -> Option<&'static File> {
        static PAGEMAP: OnceLock<Option<File>> = OnceLock::new();
        PAGEMAP
            .get_or_init(|| {
                let file = File::open("/proc/self/pagemap").ok()?;
                // Probe with an empty range: kernels without PAGEMAP_SCAN answer ENOTTY.
                // (The range must be page-aligned; an empty one is never walked.)
                scan_into(&file, PAGE as u64, PAGE as u64, &mut [])?;
                Some(file)
            })
            .as_ref()
    }

    /// One ioctl over `start..end`; returns the regions filled and where the walk stopped.
    fn scan_into(
        file: &File,
        start: u64,
        end: u64,
        regions: &mut [PageRegion],
    ) -> Option<(usize, u64)> {
        let mut arg = PmScanArg {
            size: size_of::<PmScanArg>() as u64,
            start,
            end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            // Written = present or swapped out, and neither a file (image) page nor the zero page.
            category_inverted: PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_mask: PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            ..PmScanArg::default()
        };
        // SAFETY: `arg` and `regions` live across the call; the kernel writes at most `vec_len`
        // regions into `regions` and updates `walk_end`. The scanned range is only read (its page
        // tables), never dereferenced by us.
        let filled = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        (filled >= 0).then_some((filled as usize, arg.walk_end))
    }

    pub(super) fn scan(memory: &[u8]) -> Option<Vec<Range<usize>>> {
        let file = pagemap()?;
        let base = memory.as_ptr() as u64;
        let end = base + memory.len().div_ceil(PAGE) as u64 * PAGE as u64;
        let mut out: Vec<Range<usize>> = Vec::new();
        let mut regions = [PageRegion::default(); 64];
        let mut cursor = base;
        while cursor < end {
            let (filled, walk_end) = scan_into(file, cursor, end, &mut regions)?;
            for region in &regions[..filled] {
                let range =
                    (region.start - base) as usize / PAGE..(region.end - base) as usize / PAGE;
                match out.last_mut() {
                    Some(last) if last.end == range.start => last.end = range.end,
                    _ => out.push(range),
                }
            }
            // The walk stops early only when the region buffer is full; go on from where it stopped.
            if walk_end <= cursor {
                return None;
            }
            cursor = walk_end;
        }
        Some(out)
    }
}

#[cfg(test)]
mod subtract_tests {
    use super::{PAGE, byte_range, fill_initial, is_initial, subtract, union};

    #[test]
    fn initial_contents_are_the_image_then_zeros() {
        let image = [1u8, 2, 3, 4, 5];
        let mut dest = [9u8; 4];
        fill_initial(&mut dest, 3, &image);
        assert_eq!(dest, [4, 5, 0, 0]);
        fill_initial(&mut dest, 7, &image);
        assert_eq!(dest, [0; 4]);
        fill_initial(&mut dest, 0, &image);
        assert_eq!(dest, [1, 2, 3, 4]);
        assert_eq!(byte_range(&(1..3), 2 * PAGE + 10), PAGE..2 * PAGE + 10);
        assert_eq!(byte_range(&(5..6), PAGE), PAGE..PAGE);
    }

    #[test]
    fn initial_contents_are_recognized_in_place() {
        let image = [1u8, 2, 3, 4, 5];
        for start in 0..8 {
            let mut initial = [9u8; 4];
            fill_initial(&mut initial, start, &image);
            assert!(is_initial(&initial, start, &image));
            for i in 0..initial.len() {
                let mut changed = initial;
                changed[i] ^= 0x40;
                assert!(
                    !is_initial(&changed, start, &image),
                    "start {start}, byte {i}"
                );
            }
        }
    }

    #[test]
    fn subtract_removes_overlaps() {
        assert_eq!(
            subtract(&[0..10], &[2..3, 5..7, 9..12]),
            vec![0..2, 3..5, 7..9]
        );
        assert_eq!(subtract(&[0..2, 4..6], &[]), vec![0..2, 4..6]);
        assert_eq!(
            subtract(&[0..2, 4..6], &[0..6]),
            Vec::<std::ops::Range<usize>>::new()
        );
        assert_eq!(subtract(&[3..8], &[0..4, 6..7]), vec![4..6, 7..8]);
    }

    #[test]
    fn union_joins_overlapping_and_touching_ranges() {
        assert_eq!(union(&[0..2, 5..6], &[2..3, 8..9]), vec![0..3, 5..6, 8..9]);
        assert_eq!(union(&[1..4], &[0..10]), vec![0..10]);
        assert_eq!(union(&[], &[3..4, 4..4]), vec![3..4]);
        assert_eq!(union(&[0..1], &[]), vec![0..1]);
    }
}

#[cfg(all(test, target_os = "linux"))]
#[expect(unsafe_code, reason = "the test maps fresh anonymous memory")]
mod tests {
    use super::*;

    #[test]
    fn only_written_pages_are_reported() {
        let len = 64 * PAGE;
        // SAFETY: a private anonymous mapping of our own, unmapped at the end of the test.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        // SAFETY: the mapping is `len` bytes, readable and writable, and nothing else aliases it.
        let memory = unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) };
        assert!(memory.iter().all(|&b| b == 0), "reads map the zero page");
        let clean = written_pages(memory);
        memory[5 * PAGE + 7] = 1;
        memory[6 * PAGE] = 2;
        memory[40 * PAGE + 100] = 3;
        let written = written_pages(memory);
        if linux::scan(memory).is_some() {
            assert_eq!(clean, Vec::<Range<usize>>::new());
            assert_eq!(written, vec![5..7, 40..41]);
        } else {
            // No PAGEMAP_SCAN on this kernel: every page counts as written (the documented fallback).
            assert_eq!(written, vec![0..64]);
        }
        // SAFETY: unmapping the mapping made above; `memory` is not used afterwards.
        unsafe { libc::munmap(ptr, len) };
    }
}
