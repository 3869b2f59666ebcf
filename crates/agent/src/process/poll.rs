//! The fallback watcher: /proc listed every interval. A pid not seen before (or seen with
//! another start time, i.e. reused) is a new process; a known pid whose image changed has
//! exec'd. The processes present at the first listing are the baseline and not reported, as
//! the connector does not report them either.

use super::recent::Recent;
use super::{Observation, observe, procfs};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;
use time::OffsetDateTime;

/// What identifies one image of one process between two listings.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    start_ticks: Option<u64>,
    exe: Option<String>,
}

pub(super) fn watch(tx: &SyncSender<Observation>, stop: &AtomicBool, interval: Duration) {
    let mut known: HashMap<u32, Seen> = HashMap::new();
    let mut baseline = true;
    // Without exec and exit events, entries go stale by age alone.
    let mut recent = Recent::default();
    while !stop.load(Ordering::Relaxed) {
        let pids = match procfs::list_pids() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("listing /proc: {e}");
                Vec::new()
            }
        };
        let mut current = HashMap::with_capacity(pids.len());
        for pid in pids {
            let seen = Seen {
                start_ticks: procfs::read_stat(pid).map(|s| s.start_ticks),
                exe: procfs::read_exe(pid),
            };
            let new = known.get(&pid) != Some(&seen);
            current.insert(pid, seen);
            // Kernel threads have no image and never exec.
            if baseline || !new || current.get(&pid).is_some_and(|s| s.exe.is_none()) {
                continue;
            }
            let now = OffsetDateTime::now_utc();
            let o = observe(pid, now, None, &mut recent);
            if tx.send(Box::new(o)).is_err() {
                return;
            }
        }
        known = current;
        baseline = false;
        // Sleep in short steps so that a stop is noticed quickly.
        let mut slept = Duration::ZERO;
        while slept < interval && !stop.load(Ordering::Relaxed) {
            let step = Duration::from_millis(100).min(interval - slept);
            std::thread::sleep(step);
            slept += step;
        }
    }
}
