//! The indicator generations this process wrote, so that a server can tell its own changes of a
//! tenant's indicators from those made through another server or the CLI.
//!
//! Every transaction that changes a tenant's indicators bumps the tenant's generation
//! (`indicator_counters.generation`). A server reloads a tenant whose generation moved for a
//! reason it did not cause. Counting its own changes after they returned raced with that check:
//! an import committed by one request, not yet counted while another request's change woke the
//! check, looked foreign, and the whole tenant was reloaded from the store — a million
//! indicators read and indexed again, several times a minute during a feed import
//! (docs/BENCHMARKS.md, "Indicator import"). The generation a transaction takes is noted here
//! before it commits, and dropped again if it does not, so a generation that is visible in the
//! store and not noted was written by someone else.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// Generations written through this store, by tenant, until [`OwnGenerations::foreign`]
/// accounts for them.
#[derive(Debug, Default)]
pub(crate) struct OwnGenerations(Mutex<HashMap<String, BTreeSet<i64>>>);

impl OwnGenerations {
    /// Notes `generation` of `tenant` as this process's, for as long as the returned claim is
    /// not dropped without [`GenerationClaim::keep`]. Take it after the bump and before the
    /// commit, and declare it after the transaction so that it is dropped first when the
    /// transaction fails.
    pub(crate) fn claim(self: &Arc<Self>, tenant: &str, generation: i64) -> GenerationClaim {
        self.lock()
            .entry(tenant.to_owned())
            .or_default()
            .insert(generation);
        GenerationClaim {
            own: Some(Arc::clone(self)),
            tenant: tenant.to_owned(),
            generation,
        }
    }

    /// Whether a generation of `tenant` after `after` up to `upto` was written by someone
    /// else; forgets this process's generations up to `upto`, which are accounted for.
    pub(crate) fn foreign(&self, tenant: &str, after: i64, upto: i64) -> bool {
        let mut own = self.lock();
        let Some(mine) = own.get_mut(tenant) else {
            return upto > after;
        };
        let noted = mine.iter().filter(|&&g| g > after && g <= upto).count();
        mine.retain(|&g| g > upto);
        if mine.is_empty() {
            own.remove(tenant);
        }
        i64::try_from(noted).map_or(true, |n| n < upto.saturating_sub(after))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<i64>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A generation noted as this process's while its transaction commits.
#[must_use = "a claim dropped without keep() is withdrawn"]
pub(crate) struct GenerationClaim {
    own: Option<Arc<OwnGenerations>>,
    tenant: String,
    generation: i64,
}

impl GenerationClaim {
    /// The transaction committed: the generation stays noted.
    pub(crate) fn keep(mut self) {
        self.own = None;
    }
}

impl Drop for GenerationClaim {
    fn drop(&mut self) {
        if let Some(own) = self.own.take() {
            let mut map = own.lock();
            if let Some(mine) = map.get_mut(&self.tenant) {
                mine.remove(&self.generation);
                if mine.is_empty() {
                    map.remove(&self.tenant);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_generations_noted_and_kept_are_own() {
        let own = Arc::new(OwnGenerations::default());
        assert!(!own.foreign("t", 0, 0), "nothing moved");
        assert!(own.foreign("t", 0, 1), "nothing was noted");

        own.claim("t", 2).keep();
        own.claim("t", 3).keep();
        assert!(!own.foreign("t", 1, 3));
        assert!(own.foreign("t", 3, 4), "4 is not ours");

        // A claim whose transaction failed is withdrawn; one still committing is noted.
        drop(own.claim("t", 5));
        let committing = own.claim("t", 6);
        assert!(
            own.foreign("t", 4, 5),
            "5 was withdrawn, so someone else wrote it"
        );
        assert!(
            !own.foreign("t", 5, 5),
            "a read that saw no change while ours is committing"
        );
        assert!(!own.foreign("t", 5, 6), "6 was noted before its commit");
        committing.keep();
        assert!(own.foreign("t", 6, 7));
        assert!(own.foreign("u", 0, 6), "generations are per tenant");
        assert!(
            !own.foreign("t", 9, 3),
            "a store that went back proves nothing"
        );
    }
}
