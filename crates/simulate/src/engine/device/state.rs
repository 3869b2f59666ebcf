//! What changes on a device: its random stream, ReportId/PID/logon counters, the user's session
//! and the process table (slots recycled once nothing refers to them).

use super::DevCtx;
use crate::catalog::ImageInfo;
use crate::engine::profiles::P;
use crate::fleet::Os;
use crate::rng::Rng;

/// A running process.
pub struct Proc {
    pub img: &'static ImageInfo,
    pub profile: P,
    pub pid: i64,
    pub created: i64,
    pub cmd: String,
    pub acct: u16,
    pub integrity: Option<&'static str>,
    pub elevation: &'static str,
    pub session: Option<i64>,
    pub logon_id: i64,
    pub parent_pid: i64,
    pub parent_name: &'static str,
    pub parent_created: i64,
    pub unique: String,
    /// A per-process argument: the document a Word process edits, a session's remote IP, ...
    pub arg: String,
    pub counter: u32,
    /// Events in the queue that refer to this process.
    pub refs: u32,
    /// Pinned processes are never recycled (boot processes, the session shell, attack tools).
    pub pinned: bool,
    pub exit_at: i64,
}

/// Slots of long-running processes that others are started from.
#[derive(Default, Clone, Copy)]
pub struct Sys {
    pub root: u32,
    pub services: Option<u32>,
    pub lsass: Option<u32>,
    pub winlogon: Option<u32>,
    pub wmi_host: Option<u32>,
    pub sshd: Option<u32>,
    pub shell: Option<u32>,
}

/// A user's working session on a workstation.
#[derive(Clone, Copy)]
pub struct Session {
    pub end: i64,
    pub logon_id: i64,
    pub session_id: i64,
}

pub struct DevState {
    pub rng: Rng,
    report: i64,
    next_pid: i64,
    next_unique: i64,
    pub procs: Vec<Proc>,
    free: Vec<u32>,
    pub sys: Sys,
    pub session: Option<Session>,
    pub next_logon_id: i64,
}

impl DevState {
    pub fn new(seed: u64, ctx: &DevCtx) -> DevState {
        let mut rng = Rng::derive(seed, &[0xAC71, ctx.index as u64]);
        let report = rng.range(1_000, 60_000);
        let next_pid = match ctx.os {
            Os::Windows => rng.range(2_000, 12_000) / 4 * 4,
            Os::Linux => rng.range(2_000, 300_000),
            Os::MacOs => rng.range(400, 20_000),
        };
        let next_unique = rng.range(1_000_000_000_000, 20_000_000_000_000) * 1000;
        let next_logon_id = rng.range(0x10_0000, 0x90_0000);
        DevState {
            rng,
            report,
            next_pid,
            next_unique,
            procs: Vec::new(),
            free: Vec::new(),
            sys: Sys::default(),
            session: None,
            next_logon_id,
        }
    }

    /// ReportId of the next event row: a per-device counter, as Defender's.
    pub fn report_id(&mut self) -> i64 {
        self.report += 1;
        self.report
    }

    pub fn pid(&mut self, os: Os) -> i64 {
        let step = match os {
            Os::Windows => 4 * self.rng.range(1, 40),
            _ => self.rng.range(1, 6),
        };
        let max = match os {
            Os::Windows => 65_532,
            Os::Linux => 4_194_304,
            Os::MacOs => 99_998,
        };
        self.next_pid += step;
        if self.next_pid > max {
            self.next_pid = if os == Os::Windows { 1_000 } else { 300 };
        }
        self.next_pid
    }

    /// Next Process Start Key-like id (shared by Windows and Linux; macOS reports "0").
    pub fn unique(&mut self) -> i64 {
        self.next_unique += self.rng.range(1, 9);
        self.next_unique
    }

    pub fn logon_id(&mut self) -> i64 {
        self.next_logon_id += self.rng.range(0x100, 0x4000);
        self.next_logon_id
    }

    /// A slot for `p` (whose strings are empty: the caller writes them into the slot, which keeps
    /// their capacity from its last occupant, so recycling processes does not allocate).
    pub fn alloc(&mut self, p: Proc) -> u32 {
        match self.free.pop() {
            Some(i) => {
                let slot = &mut self.procs[i as usize];
                let (mut cmd, mut unique, mut arg) = (
                    std::mem::take(&mut slot.cmd),
                    std::mem::take(&mut slot.unique),
                    std::mem::take(&mut slot.arg),
                );
                cmd.clear();
                unique.clear();
                arg.clear();
                *slot = Proc {
                    cmd,
                    unique,
                    arg,
                    ..p
                };
                i
            }
            None => {
                self.procs.push(p);
                (self.procs.len() - 1) as u32
            }
        }
    }

    pub fn proc(&self, slot: u32) -> &Proc {
        &self.procs[slot as usize]
    }

    pub fn proc_mut(&mut self, slot: u32) -> &mut Proc {
        &mut self.procs[slot as usize]
    }

    /// Drops one queue reference; recycles the slot when nothing refers to it any more.
    pub fn unref(&mut self, slot: u32) {
        let p = &mut self.procs[slot as usize];
        p.refs = p.refs.saturating_sub(1);
        if p.refs == 0 && !p.pinned {
            self.release(slot);
        }
    }

    /// Recycles a slot no queued event refers to.
    pub fn release(&mut self, slot: u32) {
        let p = &mut self.procs[slot as usize];
        if p.refs == 0 && !p.pinned && p.exit_at != i64::MIN {
            p.exit_at = i64::MIN; // marks the slot free, so it is never pushed twice
            self.free.push(slot);
        }
    }

    pub fn unpin(&mut self, slot: u32) {
        self.procs[slot as usize].pinned = false;
        self.release(slot);
    }

    /// Live processes (for tests and sizing).
    pub fn live_procs(&self) -> usize {
        self.procs.len() - self.free.len()
    }
}
