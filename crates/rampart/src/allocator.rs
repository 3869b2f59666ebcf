//! The process's allocator: mimalloc, and how long it keeps memory freed.

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
