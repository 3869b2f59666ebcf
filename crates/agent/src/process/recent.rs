//! What the watcher read of recent processes, so that a burst of starts under one parent reads
//! that parent (and grandparent) from /proc once, not once per start: a shell loop or a build
//! starting 200 programs a second spent more on its parent's /proc files than on the programs'.
//!
//! An entry is used for [`FRESH_FOR`] at most, and dropped sooner when the watcher learns that
//! its process exec'd, or that its pid is a new process's (a fork; exits are not subscribed
//! to where the kernel can leave them out), or that events were lost.
//! What a process may change without exec — its effective user after `setuid`, a rewritten
//! command line — is at most that old in its children's rows.

use super::procfs::{self, Snapshot};
use super::rows::GrandParent;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a snapshot stands for its process.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries kept at most; beyond this the memory starts over.
const MAX_ENTRIES: usize = 16_384;

#[derive(Default)]
pub struct Recent {
    snapshots: HashMap<u32, (Arc<Snapshot>, Instant)>,
    grandparents: HashMap<u32, (GrandParent, Instant)>,
}

impl Recent {
    /// The process `pid` as read from /proc within [`FRESH_FOR`], else read now.
    pub fn snapshot(&mut self, pid: u32) -> Arc<Snapshot> {
        if let Some((s, at)) = self.snapshots.get(&pid)
            && at.elapsed() < FRESH_FOR
        {
            return Arc::clone(s);
        }
        let s = Arc::new(procfs::snapshot(pid));
        self.remember(Arc::clone(&s));
        s
    }

    /// The process `pid` that started at `start_ticks`, as [`Recent::snapshot`] reads it; when
    /// the pid is another process's by now (remembered, or in /proc), a snapshot of the pid
    /// alone.
    pub fn snapshot_started(&mut self, pid: u32, start_ticks: u64) -> Arc<Snapshot> {
        if let Some((s, at)) = self.snapshots.get(&pid)
            && at.elapsed() < FRESH_FOR
            && s.start_ticks == Some(start_ticks)
        {
            return Arc::clone(s);
        }
        let s = procfs::snapshot(pid);
        if s.start_ticks != Some(start_ticks) {
            return Arc::new(Snapshot {
                pid,
                ..Snapshot::default()
            });
        }
        let s = Arc::new(s);
        self.remember(Arc::clone(&s));
        s
    }

    /// Keeps `s` for its pid, unless the process was already gone when it was read.
    pub fn remember(&mut self, s: Arc<Snapshot>) {
        if s.exe.is_none() {
            return;
        }
        if self.snapshots.len() >= MAX_ENTRIES {
            self.snapshots.clear();
        }
        self.snapshots.insert(s.pid, (s, Instant::now()));
    }

    /// What a grandparent block needs of `pid`: from its snapshot when one is fresh, else its
    /// `stat` and image path (two reads, not the five of a snapshot).
    pub fn grandparent(&mut self, pid: u32) -> GrandParent {
        if let Some((s, at)) = self.snapshots.get(&pid)
            && at.elapsed() < FRESH_FOR
        {
            return grandparent_of(s);
        }
        if let Some((g, at)) = self.grandparents.get(&pid)
            && at.elapsed() < FRESH_FOR
        {
            return g.clone();
        }
        let stat = procfs::read_stat(pid);
        let g = grandparent_of(&Snapshot {
            pid,
            exe: procfs::read_exe(pid),
            comm: stat.as_ref().map(|s| s.comm.clone()),
            start_ticks: stat.map(|s| s.start_ticks),
            ..Snapshot::default()
        });
        if self.grandparents.len() >= MAX_ENTRIES {
            self.grandparents.clear();
        }
        self.grandparents.insert(pid, (g.clone(), Instant::now()));
        g
    }

    /// `pid` exec'd or exited: what was read of it no longer stands.
    pub fn forget(&mut self, pid: u32) {
        self.snapshots.remove(&pid);
        self.grandparents.remove(&pid);
    }

    /// Events were lost: any entry may be out of date.
    pub fn clear(&mut self) {
        self.snapshots.clear();
        self.grandparents.clear();
    }
}

/// The columns of a grandparent block: pid, image name and start time.
fn grandparent_of(s: &Snapshot) -> GrandParent {
    GrandParent {
        pid: Some(s.pid),
        file_name: s.file_name(),
        creation_time: s.start_ticks.and_then(procfs::start_time),
    }
}
