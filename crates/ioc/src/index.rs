//! [`IndicatorIndex`]: every tenant's indicators, matched without locks.
//!
//! A tenant's [`Snapshot`] is a large `base` table, a small `overlay` of the indicators
//! created or changed since the base was built, and the ids deleted since then. A change
//! copies the overlay (small by construction), applies itself and publishes a new snapshot:
//! the next lookup sees it, and readers holding the old one finish undisturbed. When the
//! overlay grows past a share of the base, a background thread folds it into a new base and
//! publishes that; changes made meanwhile stay in the overlay. No change ever waits for a
//! rebuild of the whole table, and no reader ever waits at all.

use crate::entry::{Entry, EntryError};
use crate::scratch::{Scratch, recycle, take};
use crate::table::{Key, Matched, Table};
use crate::url::UrlParts;
use crate::verdict::{
    Device, FileObservation, Hit, NetworkObservation, decide_file, decide_network,
};
use arc_swap::ArcSwap;
use rampart_core::TenantId;
use rampart_core::indicator::{Indicator, IndicatorType};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Overlays below this size are never folded (copying them per change costs microseconds).
const FOLD_MIN: usize = 4_096;
/// An overlay is folded once it holds this share of the base (1/16).
const FOLD_SHARE: usize = 16;

/// A change to a tenant's indicators.
#[derive(Clone, Debug)]
pub enum Change {
    /// A created or updated indicator (an expired one stays, and stops matching on its own).
    Upsert(Box<Indicator>),
    /// A deleted indicator, by id.
    Remove { id: String },
}

/// The active indicators of every tenant.
#[derive(Default)]
pub struct IndicatorIndex {
    tenants: ArcSwap<HashMap<TenantId, Arc<TenantSlot>>>,
    /// Serialises adding tenants (changes to one tenant serialise on its slot).
    adding: Mutex<()>,
}

struct TenantSlot {
    current: ArcSwap<Snapshot>,
    /// Held by whoever publishes a snapshot of this tenant.
    writer: Mutex<Folding>,
}

#[derive(Default)]
struct Folding {
    running: bool,
    /// Bumped by every [`IndicatorIndex::install`] (and so every `load`): a fold begun before it
    /// is thrown away.
    generation: u64,
}

/// One tenant's indicators at one moment.
#[derive(Default)]
pub struct Snapshot {
    base: Arc<Table>,
    overlay: Arc<Table>,
    /// Ids deleted since `base` was built.
    removed: Arc<HashSet<u64>>,
}

impl IndicatorIndex {
    pub fn new() -> IndicatorIndex {
        IndicatorIndex::default()
    }

    /// Replaces the tenant's indicators with `indicators` (at start, or to resynchronise).
    /// Returns the indicators that could not be held, which are left out.
    pub fn load<'a>(
        &self,
        tenant: TenantId,
        indicators: impl IntoIterator<Item = &'a Indicator>,
    ) -> Vec<EntryError> {
        let mut base = Table::default();
        let errors = indicators
            .into_iter()
            .filter_map(|i| base.add(i).err())
            .collect();
        self.install(tenant, base);
        errors
    }

    /// Replaces the tenant's indicators with a table built elsewhere.
    pub fn install(&self, tenant: TenantId, base: Table) {
        let slot = self.slot(tenant);
        let mut folding = lock(&slot.writer);
        folding.generation += 1;
        slot.current.store(Arc::new(Snapshot {
            base: Arc::new(base),
            ..Snapshot::default()
        }));
    }

    /// Applies `changes` in order and publishes the result in one step.
    pub fn apply(self: &Arc<Self>, tenant: TenantId, changes: &[Change]) -> Vec<EntryError> {
        let mut errors = Vec::new();
        let slot = self.slot(tenant);
        let mut folding = lock(&slot.writer);
        let now = slot.current.load_full();
        let mut overlay = Table::clone(&now.overlay);
        let mut removed: Option<HashSet<u64>> = None;
        for change in changes {
            match change {
                Change::Upsert(indicator) => {
                    if let Err(e) = overlay.add(indicator) {
                        errors.push(e);
                    }
                }
                Change::Remove { id } => {
                    let Ok(id) = id.parse::<u64>() else { continue };
                    overlay.remove_where(|e| e.id == id);
                    removed
                        .get_or_insert_with(|| HashSet::clone(&now.removed))
                        .insert(id);
                }
            }
        }
        let next = Arc::new(Snapshot {
            base: Arc::clone(&now.base),
            overlay: Arc::new(overlay),
            removed: removed.map_or_else(|| Arc::clone(&now.removed), Arc::new),
        });
        let pending = next.overlay.len() + next.removed.len();
        slot.current.store(Arc::clone(&next));
        if !folding.running && pending > FOLD_MIN.max(next.base.len() / FOLD_SHARE) {
            let index = Arc::clone(self);
            let generation = folding.generation;
            match std::thread::Builder::new()
                .name("ioc-fold".into())
                .spawn(move || index.fold(tenant, generation, next))
            {
                Ok(_) => folding.running = true,
                // The overlay keeps growing and the next change tries again.
                Err(e) => errors.push(EntryError {
                    id: String::new(),
                    message: format!("could not start folding the overlay: {e}"),
                }),
            }
        }
        errors
    }

    /// Builds a new base from `from` and publishes it with whatever changed since `from`.
    fn fold(&self, tenant: TenantId, generation: u64, from: Arc<Snapshot>) {
        let mut base = Table::default();
        for (key, entry) in from.base.iter() {
            if !from.removed.contains(&entry.id) && from.overlay.get(&key).is_none() {
                base.insert(key, entry.clone());
            }
        }
        for (key, entry) in from.overlay.iter() {
            base.insert(key, entry.clone());
        }
        let slot = self.slot(tenant);
        let mut folding = lock(&slot.writer);
        folding.running = false;
        if folding.generation != generation {
            return; // the tenant was loaded afresh meanwhile
        }
        let now = slot.current.load_full();
        // What `from` held is in the new base now: keep in the overlay only what changed after
        // it, and only the deletions made after it.
        let folded: HashMap<u64, &Entry> = from.overlay.iter().map(|(_, e)| (e.id, e)).collect();
        let mut overlay = Table::clone(&now.overlay);
        overlay.remove_where(|e| folded.get(&e.id).is_some_and(|f| *f == e));
        let removed: HashSet<u64> = now
            .removed
            .iter()
            .filter(|id| !from.removed.contains(id))
            .copied()
            .collect();
        // A deletion after `from` of an indicator that is now in the base stays in `removed`.
        slot.current.store(Arc::new(Snapshot {
            base: Arc::new(base),
            overlay: Arc::new(overlay),
            removed: Arc::new(removed),
        }));
    }

    /// The tenant's indicators as they are now (empty for a tenant never loaded).
    pub fn snapshot(&self, tenant: TenantId) -> Arc<Snapshot> {
        match self.tenants.load().get(&tenant) {
            Some(slot) => slot.current.load_full(),
            None => Arc::new(Snapshot::default()),
        }
    }

    fn slot(&self, tenant: TenantId) -> Arc<TenantSlot> {
        if let Some(slot) = self.tenants.load().get(&tenant) {
            return Arc::clone(slot);
        }
        let _adding = lock(&self.adding);
        let tenants = self.tenants.load_full();
        if let Some(slot) = tenants.get(&tenant) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(TenantSlot {
            current: ArcSwap::from_pointee(Snapshot::default()),
            writer: Mutex::new(Folding::default()),
        });
        let mut next = HashMap::clone(&tenants);
        next.insert(tenant, Arc::clone(&slot));
        self.tenants.store(Arc::new(next));
        slot
    }
}

/// For each row, an earlier row of the batch with the same entities on a device of the same
/// group, if any: the same indicator decides for both (a snapshot and a batch have one `now`),
/// so the row takes that one's decision without a lookup. A device's events repeat their
/// entities: in the simulator's network events 83% of rows carry the previous row's
/// initiating-process hashes, and a device's remote addresses and URLs come back all day, each
/// lookup a few probes in tables of millions. The row just before is compared first, as the
/// most frequent repeat and the cheapest; with `first` (a map from the hash of a row's
/// entities and device to the first row with them), any earlier row is found. Files do
/// without: their repeats are the row before's. Fills `out`, one element per row.
fn earlier<T: Copy + Eq + std::hash::Hash>(
    rows: &[T],
    devices: &[Device<'_>],
    mut first: Option<&mut foldhash::HashMap<u64, usize>>,
    out: &mut Vec<Option<usize>>,
) {
    use std::hash::BuildHasher;
    let device = |i: usize| devices.get(i).copied().unwrap_or_default();
    let same = |i: usize, j: usize| rows[i] == rows[j] && device(i) == device(j);
    if let Some(first) = first.as_deref_mut() {
        first.clear();
        first.reserve(rows.len());
    }
    let hasher = foldhash::fast::FixedState::default();
    out.extend((0..rows.len()).map(|i| {
        if i > 0 && same(i, i - 1) {
            return Some(i - 1);
        }
        let first = first.as_deref_mut()?;
        match first.entry(hasher.hash_one((rows[i], device(i)))) {
            std::collections::hash_map::Entry::Occupied(e) => {
                // Another row with the same hash: a repeat, unless the hashes collide.
                Some(*e.get()).filter(|&j| same(i, j))
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
                None
            }
        }
    }));
}

/// Where each row's decision went in a batch's `out`, so a row that repeats it (see
/// [`earlier`]) takes the same one.
struct Decided(Vec<Option<usize>>);

impl Decided {
    /// `rows` undecided rows, in the allocation of the empty `buffer`.
    fn new(rows: usize, mut buffer: Vec<Option<usize>>) -> Decided {
        buffer.resize(rows, None);
        Decided(buffer)
    }

    /// Row `i` decided by `hit`.
    fn push(&mut self, i: usize, hit: Hit, out: &mut Vec<(usize, Hit)>) {
        self.0[i] = Some(out.len());
        out.push((i, hit));
    }

    /// Row `i` repeats row `j` (decided already): it takes `j`'s decision, if there was one.
    fn repeat(&mut self, i: usize, j: usize, out: &mut Vec<(usize, Hit)>) {
        if let Some(at) = self.0[j] {
            let hit = out[at].1.clone();
            self.push(i, hit, out);
        }
    }
}

impl Snapshot {
    /// Number of indicators held (deleted ones not yet folded away included).
    pub fn len(&self) -> usize {
        self.base.len() + self.overlay.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file indicator that decides for `file` on `device` at `now` (Unix seconds).
    pub fn match_file(
        &self,
        file: &FileObservation<'_>,
        device: Device<'_>,
        now: i64,
    ) -> Option<Hit> {
        let mut out = Vec::new();
        let scratch = &mut Scratch::default();
        self.match_files(
            std::slice::from_ref(file),
            &[device],
            now,
            &mut out,
            scratch,
        );
        out.pop().map(|(_, hit)| hit)
    }

    /// The network indicator that decides for `net` on `device` at `now` (Unix seconds).
    pub fn match_network(
        &self,
        net: &NetworkObservation<'_>,
        device: Device<'_>,
        now: i64,
    ) -> Option<Hit> {
        let mut out = Vec::new();
        let scratch = &mut Scratch::default();
        self.match_networks(std::slice::from_ref(net), &[device], now, &mut out, scratch);
        out.pop().map(|(_, hit)| hit)
    }

    /// Matches many events' files at once, `devices[i]` being the device of `files[i]`: adds
    /// `(i, decision)` to `out` for each file an indicator decides on.
    ///
    /// Every value is decoded first, and then each table is probed for all of them in one
    /// tight loop: the probes are independent reads, most of them cache misses in tables of
    /// millions, which the CPU overlaps only when little else stands between them. (One event
    /// at a time, each miss was waited for on its own.) A row that repeats an earlier one takes
    /// that one's decision without a lookup (see `earlier` in this module). The buffers this
    /// needs are taken from `scratch` and left there for the next batch.
    pub fn match_files(
        &self,
        files: &[FileObservation<'_>],
        devices: &[Device<'_>],
        now: i64,
        out: &mut Vec<(usize, Hit)>,
        scratch: &mut Scratch,
    ) {
        const KINDS: [IndicatorType; 4] = FileObservation::KINDS;
        let mut earlier_rows = take(&mut scratch.earlier);
        earlier(files, devices, None, &mut earlier_rows);
        let mut keys: Vec<[Option<Key>; 4]> = take(&mut scratch.keys);
        keys.extend(files.iter().zip(&earlier_rows).map(|(f, seen)| {
            let repeat = seen.is_some();
            let values = f.values();
            std::array::from_fn(|k| {
                values[k]
                    .filter(|v| !v.is_empty() && !repeat)
                    .and_then(|v| Key::file(KINDS[k], v))
            })
        }));
        let mut found: Vec<[Option<&Entry>; 4]> = take(&mut scratch.found);
        found.resize(files.len(), [None; 4]);
        for k in 0..KINDS.len() {
            for (key, f) in keys.iter().zip(found.iter_mut()) {
                if let Some(key) = &key[k] {
                    f[k] = self.base.file(key);
                }
            }
        }
        let changed = !self.overlay.is_empty() || !self.removed.is_empty();
        let mut decided = Decided::new(files.len(), take(&mut scratch.decided));
        for (i, (key, f)) in keys.iter().zip(found.iter_mut()).enumerate() {
            if let Some(j) = earlier_rows[i] {
                decided.repeat(i, j, out);
                continue;
            }
            if changed {
                for k in 0..KINDS.len() {
                    if let Some(key) = &key[k] {
                        f[k] = self
                            .overlay
                            .file(key)
                            .or(f[k].filter(|e| !self.removed.contains(&e.id)));
                    }
                }
            }
            if f.iter().all(Option::is_none) {
                continue;
            }
            let values = files[i].values();
            let hits: Vec<Hit> = (0..KINDS.len())
                .filter_map(|k| {
                    Some(Hit {
                        entry: f[k]?.clone(),
                        value: values[k]?.to_ascii_lowercase(),
                        specificity: 0,
                    })
                })
                .collect();
            let device = devices.get(i).copied().unwrap_or_default();
            if let Some(hit) = decide_file(hits, device, now) {
                decided.push(i, hit, out);
            }
        }
        scratch.keys = recycle(keys);
        scratch.found = recycle(found);
        scratch.earlier = earlier_rows;
        scratch.decided = decided.0;
    }

    /// Matches many events' network entities at once, as [`Snapshot::match_files`] does files.
    pub fn match_networks(
        &self,
        nets: &[NetworkObservation<'_>],
        devices: &[Device<'_>],
        now: i64,
        out: &mut Vec<(usize, Hit)>,
        scratch: &mut Scratch,
    ) {
        let mut earlier_rows = take(&mut scratch.earlier);
        earlier(nets, devices, Some(&mut scratch.first), &mut earlier_rows);
        let mut parts: Vec<Option<UrlParts<'_>>> = take(&mut scratch.parts);
        parts.extend(
            nets.iter()
                .zip(&earlier_rows)
                .map(|(n, seen)| n.url.filter(|_| seen.is_none()).and_then(UrlParts::of)),
        );
        let mut ips: Vec<Vec<Matched<'_>>> = take(&mut scratch.ips);
        ips.extend(nets.iter().zip(&earlier_rows).map(|(n, seen)| {
            n.ip.filter(|_| seen.is_none())
                .map(|ip| self.base.ip(ip))
                .unwrap_or_default()
        }));
        let mut url_hosts: Vec<bool> = take(&mut scratch.url_hosts);
        url_hosts.extend(
            parts
                .iter()
                .map(|p| p.as_ref().is_some_and(|p| self.base.has_url_host(p))),
        );
        let mut domains: Vec<Vec<Matched<'_>>> = take(&mut scratch.domains);
        domains.extend(parts.iter().map(|p| {
            p.as_ref()
                .map(|p| self.base.domains(p.host_name()))
                .unwrap_or_default()
        }));
        let mut decided = Decided::new(nets.len(), take(&mut scratch.decided));
        let rows = ips.drain(..).zip(&url_hosts).zip(domains.drain(..));
        for (i, ((ip_base, &url_host), domain_base)) in rows.enumerate() {
            if let Some(j) = earlier_rows[i] {
                decided.repeat(i, j, out);
                continue;
            }
            let mut hits = Vec::new();
            if let Some(ip) = nets[i].ip {
                hits.extend(self.merged(self.overlay.ip(ip), ip_base));
            }
            if let Some(parts) = &parts[i] {
                // The path is normalised (a copy) only for a host that URL indicators name.
                if url_host || self.overlay.has_url_host(parts) {
                    let url = parts.key();
                    hits.extend(self.merged(self.overlay.urls(&url), self.base.urls(&url)));
                }
                let host = parts.host_name();
                hits.extend(self.merged(self.overlay.domains(host), domain_base));
            }
            if hits.is_empty() {
                continue;
            }
            let device = devices.get(i).copied().unwrap_or_default();
            if let Some(hit) = decide_network(hits, device, now) {
                decided.push(i, hit, out);
            }
        }
        scratch.parts = recycle(parts);
        scratch.ips = recycle(ips);
        scratch.domains = recycle(domains);
        scratch.url_hosts = url_hosts;
        scratch.earlier = earlier_rows;
        scratch.decided = decided.0;
    }

    /// Overlay matches, and the base matches under values the overlay does not hold.
    fn merged(&self, overlay: Vec<Matched<'_>>, base: Vec<Matched<'_>>) -> Vec<Hit> {
        let shadowed: HashSet<&str> = overlay.iter().map(|m| m.value.as_str()).collect();
        let from_base: Vec<Hit> = base
            .into_iter()
            .filter(|m| !self.removed.contains(&m.entry.id) && !shadowed.contains(m.value.as_str()))
            .map(hit)
            .collect();
        overlay.into_iter().map(hit).chain(from_base).collect()
    }
}

fn hit(m: Matched<'_>) -> Hit {
    Hit {
        entry: m.entry.clone(),
        value: m.value,
        specificity: m.specificity,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
