//! The process's allocator: mimalloc, how long it keeps memory freed, and in what page size.

use libmimalloc_sys::mi_option_t;
use std::ffi::c_long;

/// The server allocates per request and per batch from many threads; mimalloc's per-thread heaps
/// measured 18% less CPU than glibc malloc's arena locks on the alert-listing benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: the sixteenth option of its `mi_option_t` in both
/// mimalloc v2 and v3 (the -sys crate names no constant for it).
const PURGE_DELAY: mi_option_t = 15;

/// How long freed memory stays with the process before mimalloc gives it back to the kernel.
/// mimalloc's default, 10 ms, returns the buffers of one ingested batch before the next batch
/// asks for them again, and each comes back as fresh pages the kernel must zero: with 1 s the
/// server ingested about a quarter more events per second, in the same memory
/// (docs/BENCHMARKS.md, "Ingestion with matching on, the purge delay in the server").
const PURGE_DELAY_MS: c_long = 1_000;

/// Sets [`PURGE_DELAY_MS`] unless `MIMALLOC_PURGE_DELAY` is set, which mimalloc has read
/// already (it reads its environment when the process loads). Call first in `main`.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores one value in mimalloc's option table, which is
        // initialised when the process loads; the index is in range (mimalloc checks it too)
        // and any delay is valid. Called before any other thread exists, so no allocation
        // reads the option while it is written.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// Turns transparent huge pages off for the rest of this process's life, unless
/// `MIMALLOC_ALLOW_THP` is set (then mimalloc has done as it says when the process loaded).
/// mimalloc asks for huge pages on its arenas (`madvise(MADV_HUGEPAGE)`), so a first touch of
/// fresh memory faults in and zeroes 2 MiB instead of 4 KiB. For `rampart simulate` to Parquet,
/// whose encoders keep taking fresh memory, that was a quarter of its CPU samples (the kernel's
/// page zeroing) and 40% more peak memory; without huge pages it ran 18-37% faster at 200
/// devices (docs/BENCHMARKS.md, "Simulator to files, run 6"). The server keeps them: one ingestion go
/// with and one without showed no clear gain.
pub fn no_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` passes integers only (no memory goes
        // to the kernel), each as the `unsigned long` the variadic call reads, and sets one flag
        // on this process's address space that the kernel checks at each later fault. Failure
        // cannot harm: a kernel without the flag answers EINVAL and the process runs as before.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    }
}

#[cfg(test)]
mod tests {
    /// The `THP_enabled` line of this process's status.
    fn thp_enabled() -> String {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no THP_enabled line in {status}"))
    }

    #[test]
    fn huge_pages_are_turned_off_for_the_process() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return; // the variable decides, and the test's environment set it
        }
        super::no_transparent_huge_pages();
        assert_eq!(thp_enabled(), "0");
    }
}
