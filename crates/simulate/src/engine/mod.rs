//! The event engine: one time-ordered queue of everything that will happen on every device.
//!
//! Each queue item fires at one instant and writes rows stamped with exactly that instant;
//! anything later (a DLL load a few milliseconds on, the next beacon) is queued as its own item.
//! Popping in `(time, sequence)` order therefore emits rows in time order across the whole
//! fleet, which lets [`crate::live::Live`] hand out exactly the rows of `(last, now]` and lets the
//! Parquet sink write time-sorted files. Ties break on the insertion sequence, which is itself
//! deterministic, so a spec always replays identically.

pub mod acts;
pub mod device;
pub mod procs;
pub mod profiles;
pub mod session;
pub mod snapshot;
pub mod write;

use crate::engine::device::{DevCtx, DevState};
use crate::fleet::{Fleet, Os, Role};
use crate::row::{Row, RowBuf, T};
use crate::scenario::{self, Run};
use crate::spec::{FleetSpec, ScenarioError, ScenarioSpec};
use crate::{Label, Sink};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;

/// What a queue item does.
#[derive(Clone, Copy, Debug)]
pub enum Ev {
    /// Hourly DeviceInfo and DeviceNetworkInfo.
    Snapshot,
    /// Local midnight: decide the day's working session.
    DayPlan,
    SessionStart {
        end: i64,
    },
    SessionEnd,
    /// Back from lunch; `retry` after a mistyped password.
    Unlock {
        retry: bool,
    },
    /// One of the apps a user starts when signing in.
    Startup {
        index: u8,
    },
    /// The user starts an application.
    UserLaunch,
    /// A process's recurring activity `act` (index into its profile's acts).
    Act {
        slot: u32,
        act: u8,
    },
    /// A process loads one of its profile's DLLs.
    Dll {
        slot: u32,
        dll: u8,
    },
    /// A console program's conhost.exe.
    Console {
        slot: u32,
    },
    /// An RDP session from another device arrives (logon on this device).
    RdpLogon {
        from: u32,
    },
    /// The next step of an attack scenario.
    Scenario {
        run: u32,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub t: i64,
    seq: u64,
    pub dev: u32,
    pub ev: Ev,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.t == o.t && self.seq == o.seq
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    /// Reversed, so the max-heap pops the earliest item first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

#[derive(Default)]
pub struct Queue {
    heap: BinaryHeap<Item>,
    seq: u64,
}

impl Queue {
    pub fn push(&mut self, t: i64, dev: usize, ev: Ev) {
        self.seq += 1;
        self.heap.push(Item {
            t,
            seq: self.seq,
            dev: dev as u32,
            ev,
        });
    }

    fn pop_before(&mut self, end: i64) -> Option<Item> {
        if self.heap.peek().is_some_and(|i| i.t < end) {
            self.heap.pop()
        } else {
            None
        }
    }
}

/// One device: its fixed context and its changing state.
pub struct Dev {
    pub ctx: DevCtx,
    pub st: DevState,
}

/// Fleet-wide lookups computed once.
pub struct Shared {
    /// Workstations and laptops (device indexes).
    pub clients: Vec<usize>,
    /// Workstations of IT staff, where admin sessions come from.
    pub it_clients: Vec<usize>,
    pub windows_servers: Vec<usize>,
    pub company_title: String,
    /// Devices of each role present, in device order.
    roles: Vec<(Role, Vec<usize>)>,
}

impl Shared {
    fn new(fleet: &Fleet) -> Shared {
        let devs = fleet.devices();
        let clients: Vec<usize> = (0..devs.len())
            .filter(|&i| !devs[i].role.is_server())
            .collect();
        let it_clients = clients
            .iter()
            .copied()
            .filter(|&i| {
                devs[i]
                    .owner
                    .is_some_and(|o| fleet.people[o].department == "IT")
            })
            .collect();
        let windows_servers = (0..devs.len())
            .filter(|&i| devs[i].os == Os::Windows && devs[i].role.is_server())
            .collect();
        let mut t = fleet.company.to_owned();
        if let Some(f) = t.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        let mut roles: Vec<(Role, Vec<usize>)> = Vec::new();
        for (i, d) in devs.iter().enumerate() {
            match roles.iter_mut().find(|(r, _)| *r == d.role) {
                Some((_, list)) => list.push(i),
                None => roles.push((d.role, vec![i])),
            }
        }
        Shared {
            clients,
            it_clients,
            windows_servers,
            company_title: t,
            roles,
        }
    }

    /// Devices with `role`, in device order.
    pub fn with_role(&self, role: Role) -> &[usize] {
        self.roles
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(&[], |(_, list)| list.as_slice())
    }
}

/// Reusable text buffers for values formatted per row (paths, hashes, IPs, JSON).
#[derive(Default)]
pub struct Scratch {
    pub a: String,
    pub b: String,
    pub c: String,
    pub sha1: String,
    pub sha256: String,
    pub md5: String,
    pub json: String,
}

impl Scratch {
    /// Fills `sha1`, `sha256` and `md5` from `key`.
    pub fn hashes(&mut self, key: u64) {
        self.sha1.clear();
        self.sha256.clear();
        self.md5.clear();
        crate::hex::push_digest(&mut self.sha1, key, 20);
        crate::hex::push_digest(&mut self.sha256, key ^ 0x5A5A, 32);
        crate::hex::push_digest(&mut self.md5, key ^ 0xA5A5, 16);
    }

    pub fn clear(&mut self) {
        self.a.clear();
        self.b.clear();
        self.c.clear();
        self.json.clear();
    }
}

/// Where rows go during one run of the queue.
pub struct Out<'s> {
    sink: &'s mut dyn Sink,
    buf: &'s mut RowBuf,
    counts: &'s mut [u64; 9],
    labels: &'s mut u64,
}

impl Out<'_> {
    pub fn start<'a>(&mut self, t: T) -> Row<'a> {
        self.buf.start(t)
    }

    pub fn emit(&mut self, dev: usize, row: Row<'_>) -> io::Result<()> {
        self.sink.row(dev, row.table(), &row.cells)?;
        self.counts[row.t as usize] += 1;
        self.buf.recycle(row);
        Ok(())
    }

    /// Emits a scenario row and its label.
    pub fn emit_labeled(
        &mut self,
        dev: usize,
        row: Row<'_>,
        scenario: &str,
        step: &str,
    ) -> io::Result<()> {
        let (mut ts, mut rid) = (0, 0);
        for (i, cell) in &row.cells {
            match (row.table().columns[*i].name, cell) {
                ("Timestamp", rampart_telemetry::Cell::Time(t)) => ts = *t,
                ("ReportId", rampart_telemetry::Cell::Long(r)) => rid = *r,
                _ => {}
            }
        }
        let label = Label {
            scenario: scenario.to_owned(),
            step: step.to_owned(),
            device_id: row
                .get_str(crate::row::C::DeviceId)
                .unwrap_or_default()
                .to_owned(),
            table: row.table().name,
            report_id: rid,
            timestamp_ns: ts,
        };
        self.emit(dev, row)?;
        self.sink.label(&label)?;
        *self.labels += 1;
        Ok(())
    }
}

/// Everything a handler may touch besides the sink.
pub struct World<'e> {
    pub fleet: &'e Fleet,
    pub shared: &'e Shared,
    pub devs: &'e mut [Dev],
    pub queue: &'e mut Queue,
    pub runs: &'e mut Vec<Run>,
    pub scratch: &'e mut Scratch,
    pub seed: u64,
}

/// The whole simulation.
pub struct Engine {
    pub fleet: Fleet,
    shared: Shared,
    devs: Vec<Dev>,
    queue: Queue,
    runs: Vec<Run>,
    buf: RowBuf,
    scratch: Scratch,
    pub counts: [u64; 9],
    pub labels: u64,
    pub start: i64,
    /// Default scenario time when a spec gives none.
    pub middle: i64,
    seed: u64,
}

impl Engine {
    pub fn new(spec: &FleetSpec) -> Engine {
        let start = crate::time::ceil_tick(spec.start_ns);
        let fleet = Fleet::new(spec);
        let shared = Shared::new(&fleet);
        let mut devs: Vec<Dev> = (0..fleet.devices().len())
            .map(|i| {
                let ctx = DevCtx::new(&fleet, i, start);
                let st = DevState::new(spec.seed, &ctx);
                Dev { ctx, st }
            })
            .collect();
        let mut queue = Queue::default();
        let mut runs = Vec::new();
        let mut scratch = Scratch::default();
        {
            let mut w = World {
                fleet: &fleet,
                shared: &shared,
                devs: &mut devs,
                queue: &mut queue,
                runs: &mut runs,
                scratch: &mut scratch,
                seed: spec.seed,
            };
            for i in 0..w.devs.len() {
                procs::boot(&mut w, i, start);
                session::init(&mut w, i, start);
                snapshot::init(&mut w, i, start);
            }
        }
        let middle = crate::time::ceil_tick(start + (spec.end_ns() - spec.start_ns) / 2);
        Engine {
            fleet,
            shared,
            devs,
            queue,
            runs,
            buf: RowBuf::default(),
            scratch,
            counts: [0; 9],
            labels: 0,
            start,
            middle,
            seed: spec.seed,
        }
    }

    /// Places a scenario (see [`scenario::place`]); it starts at `at` or its spec's time.
    pub fn inject(
        &mut self,
        s: &ScenarioSpec,
        index: usize,
        default_at: i64,
    ) -> Result<(), ScenarioError> {
        let placed = scenario::place(&self.fleet, s, index, self.seed)?;
        let at = crate::time::ceil_tick(s.at_ns.unwrap_or(default_at));
        let mut w = self.world();
        scenario::start(&mut w, placed, at, index);
        Ok(())
    }

    fn world(&mut self) -> World<'_> {
        World {
            fleet: &self.fleet,
            shared: &self.shared,
            devs: &mut self.devs,
            queue: &mut self.queue,
            runs: &mut self.runs,
            scratch: &mut self.scratch,
            seed: self.seed,
        }
    }

    /// Runs every item before `end`, writing rows to `sink`.
    pub fn run_until(&mut self, end: i64, sink: &mut dyn Sink) -> io::Result<u64> {
        let before: u64 = self.counts.iter().sum();
        let Engine {
            fleet,
            shared,
            devs,
            queue,
            runs,
            buf,
            scratch,
            counts,
            labels,
            seed,
            ..
        } = self;
        let mut out = Out {
            sink,
            buf,
            counts,
            labels,
        };
        let mut w = World {
            fleet,
            shared,
            devs,
            queue,
            runs,
            scratch,
            seed: *seed,
        };
        while let Some(item) = w.queue.pop_before(end) {
            dispatch(&mut w, &mut out, item)?;
        }
        let after: u64 = self.counts.iter().sum();
        Ok(after - before)
    }

    /// Live processes across the fleet (tests check that recycling keeps this bounded).
    pub fn live_procs(&self) -> usize {
        self.devs.iter().map(|d| d.st.live_procs()).sum()
    }
}

fn dispatch(w: &mut World<'_>, out: &mut Out<'_>, item: Item) -> io::Result<()> {
    let dev = item.dev as usize;
    let t = item.t;
    w.scratch.clear();
    match item.ev {
        Ev::Snapshot => snapshot::emit(w, out, dev, t),
        Ev::DayPlan => {
            session::day_plan(w, dev, t);
            Ok(())
        }
        Ev::SessionStart { end } => session::start(w, out, dev, t, end),
        Ev::SessionEnd => {
            session::end(w, dev);
            Ok(())
        }
        Ev::Unlock { retry } => session::unlock(w, out, dev, t, retry),
        Ev::Startup { index } => session::startup(w, out, dev, t, index),
        Ev::UserLaunch => session::user_launch(w, out, dev, t),
        Ev::Act { slot, act } => acts::act(w, out, dev, t, slot, act),
        Ev::Dll { slot, dll } => acts::image_load(w, out, dev, t, slot, dll),
        Ev::Console { slot } => procs::console(w, out, dev, t, slot),
        Ev::RdpLogon { from } => acts::rdp_logon(w, out, dev, t, from as usize),
        Ev::Scenario { run } => scenario::step(w, out, run as usize, t),
    }
}
