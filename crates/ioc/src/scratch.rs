//! [`Scratch`]: the buffers of matching a batch, kept from one batch to the next.
//!
//! Matching a batch needs a dozen vectors with one element per row. Made afresh for every
//! batch, each is large enough for the allocator to take it from pages it had given back, and
//! the kernel zeroes every such page again on first touch; in the ingestion benchmark that
//! zeroing cost more than the matching itself (docs/BENCHMARKS.md, "Ingestion with matching
//! on"). Whoever matches batch after batch keeps one `Scratch` and passes it each time.
//!
//! The vectors borrow the batch and the snapshot, so between batches they are kept empty under
//! `'static` element types and [`recycle`]d into the lifetimes of the next batch.

use crate::entry::Entry;
use crate::table::{Key, Matched};
use crate::url::UrlParts;

/// Reused buffers of [`crate::index::Snapshot::match_files`] and `match_networks`.
#[derive(Default)]
pub struct Scratch {
    pub(crate) earlier: Vec<Option<usize>>,
    /// Hash of (entities, device) → first row with them (see `index::earlier`).
    pub(crate) first: foldhash::HashMap<u64, usize>,
    pub(crate) decided: Vec<Option<usize>>,
    pub(crate) keys: Vec<[Option<Key>; 4]>,
    pub(crate) found: Vec<[Option<&'static Entry>; 4]>,
    pub(crate) parts: Vec<Option<UrlParts<'static>>>,
    pub(crate) ips: Vec<Vec<Matched<'static>>>,
    pub(crate) domains: Vec<Vec<Matched<'static>>>,
    pub(crate) url_hosts: Vec<bool>,
}

impl Scratch {
    /// Rows that the buffers of one `Scratch` are kept for: a batch larger than this (a
    /// retro-hunt reads files of millions of rows) leaves buffers of its size behind, which
    /// [`Scratch::trim`] lets go of.
    pub const KEPT_ROWS: usize = 1 << 16;

    /// Gives back buffers that outgrew [`Scratch::KEPT_ROWS`].
    pub fn trim(&mut self) {
        if self.earlier.capacity() > Self::KEPT_ROWS
            || self.keys.capacity() > Self::KEPT_ROWS
            || self.parts.capacity() > Self::KEPT_ROWS
        {
            *self = Scratch::default();
        }
    }
}

/// Takes the vector out of `slot`, emptied, for elements of another lifetime: what a batch does
/// with each buffer of a scratch before filling it (and [`recycle`] gives it back).
pub fn take<T, U>(slot: &mut Vec<T>) -> Vec<U> {
    recycle(std::mem::take(slot))
}

/// An empty vector with `v`'s allocation, for elements of another lifetime (or any type of the
/// same size and alignment).
pub fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    // Collecting a vector's own iterator into a vector of an element type with the same layout
    // reuses the allocation (std's in-place collection). Were that ever not done, the result
    // would still be right: a new, empty vector.
    v.into_iter()
        .map(|_| unreachable!("the vector was cleared"))
        .collect()
}
