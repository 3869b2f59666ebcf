//! Process starts from the agent's eBPF program (`bpf/process.bpf.c`): a raw tracepoint on
//! `sched_process_exec` writes one record per exec into a ring buffer, with what the row
//! needs (pid, parent, effective user, start times, the image and its arguments) read in the
//! kernel at the moment of exec. The watcher drains the buffer every few tens of
//! milliseconds instead of being woken for each fork and exec, and a process that is gone by
//! then is still reported whole.
//!
//! Needs root (`CAP_BPF` and `CAP_PERFMON`), Linux 5.8 (ring buffers) and the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`) for the program's field offsets; where any is missing,
//! [`ExecEvents::open`] fails and the sensor uses the proc connector.

use crate::bytes::{u32_at, u64_at};
use aya::maps::{Array, MapData, RingBuf};
use aya::programs::RawTracePoint;
use aya::{Ebpf, EbpfLoader};

/// The compiled program (see `build.rs`), aligned as the ELF parser wants it.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/process.bpf.o"));

const PROGRAM: &str = "rampart_exec";
const TRACEPOINT: &str = "sched_process_exec";
const RING: &str = "EXECS";
const LOST: &str = "LOST";

/// Byte layout of `struct exec_record` in `bpf/process.bpf.c`.
mod layout {
    pub const PID: usize = 0;
    pub const PPID: usize = 4;
    pub const EUID: usize = 8;
    pub const ARGS_SIZE: usize = 12;
    pub const ARGS_COPIED: usize = 16;
    pub const DEV: usize = 20;
    pub const INO: usize = 24;
    pub const EXEC_BOOTTIME: usize = 32;
    pub const START_BOOTTIME: usize = 40;
    pub const PARENT_START_BOOTTIME: usize = 48;
    pub const COMM: usize = 56;
    pub const COMM_LEN: usize = 16;
    pub const PATH: usize = 72;
    pub const PATH_CAP: usize = 1024;
    pub const ARGS: usize = PATH + PATH_CAP;
    pub const ARGS_CAP: usize = 4096;
}

/// Why the eBPF source could not be started.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("loading or attaching the exec program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("opening the program's maps: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
}

/// One exec, as the kernel saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRecord {
    pub pid: u32,
    pub ppid: u32,
    pub euid: u32,
    /// The image's device in the kernel's encoding (`major << 20 | minor`) and inode.
    pub dev: u32,
    pub ino: u64,
    /// Nanoseconds since boot (`CLOCK_BOOTTIME`): of the exec, of the process's creation
    /// (its fork) and of its parent's.
    pub exec_boottime: u64,
    pub start_boottime: u64,
    pub parent_start_boottime: u64,
    pub comm: String,
    /// The image that runs as exec was given it (a script's interpreter, not the script): may
    /// be relative, or a symlink.
    pub path: Vec<u8>,
    /// The NUL-separated arguments, the first [`ExecRecord::args_size`] bytes at most.
    pub args: Vec<u8>,
    /// Size of the whole argument area; more than `args.len()` when it was cut.
    pub args_size: usize,
}

impl ExecRecord {
    /// Whether the arguments were longer than the kernel side copies.
    pub fn args_cut(&self) -> bool {
        self.args_size > self.args.len()
    }

    /// The image's device as `stat` reports it (`st_dev`).
    pub fn st_dev(&self) -> u64 {
        let major = u64::from(self.dev >> 20);
        let minor = u64::from(self.dev & 0xf_ffff);
        // glibc's makedev.
        ((major & 0xffff_f000) << 32)
            | ((major & 0x0000_0fff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0x0000_00ff)
    }
}

/// The bytes of a NUL-terminated string in a fixed-size field.
fn c_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Reads one record (as long as its arguments); `None` when it is not one (too short).
pub fn parse_record(b: &[u8]) -> Option<ExecRecord> {
    use layout::*;
    if b.len() < ARGS {
        return None;
    }
    let args_size = u32_at(b, ARGS_SIZE)? as usize;
    let copied = (u32_at(b, ARGS_COPIED)? as usize)
        .min(ARGS_CAP)
        .min(b.len() - ARGS);
    Some(ExecRecord {
        pid: u32_at(b, PID)?,
        ppid: u32_at(b, PPID)?,
        euid: u32_at(b, EUID)?,
        dev: u32_at(b, DEV)?,
        ino: u64_at(b, INO)?,
        exec_boottime: u64_at(b, EXEC_BOOTTIME)?,
        start_boottime: u64_at(b, START_BOOTTIME)?,
        parent_start_boottime: u64_at(b, PARENT_START_BOOTTIME)?,
        comm: String::from_utf8_lossy(c_str(&b[COMM..COMM + COMM_LEN])).into_owned(),
        path: c_str(&b[PATH..PATH + PATH_CAP]).to_vec(),
        args: b[ARGS..ARGS + copied].to_vec(),
        args_size,
    })
}

/// Kernels before 5.11 charge eBPF maps to `RLIMIT_MEMLOCK` (often 64 KiB) rather than to the
/// cgroup: the 4 MiB ring buffer needs the limit lifted. Failure is left to the map creation
/// to report.
fn lift_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the live `rlimit` passed by reference; nothing else is touched.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) };
}

/// The loaded and attached program with its ring buffer. Dropping it detaches the program.
pub struct ExecEvents {
    ring: RingBuf<MapData>,
    lost: Array<MapData, u64>,
    /// Owns the program and its link: the program runs while this lives.
    _ebpf: Ebpf,
}

impl ExecEvents {
    /// Loads the program, relocated to this kernel's BTF, and attaches it.
    pub fn open() -> Result<ExecEvents, OpenError> {
        lift_memlock_limit();
        let mut ebpf = EbpfLoader::new().load(OBJECT)?;
        let program: &mut RawTracePoint = ebpf
            .program_mut(PROGRAM)
            .ok_or(OpenError::Missing(PROGRAM))?
            .try_into()?;
        program.load()?;
        program.attach(TRACEPOINT)?;
        let ring = RingBuf::try_from(ebpf.take_map(RING).ok_or(OpenError::Missing(RING))?)?;
        let lost = Array::try_from(ebpf.take_map(LOST).ok_or(OpenError::Missing(LOST))?)?;
        Ok(ExecEvents {
            ring,
            lost,
            _ebpf: ebpf,
        })
    }

    /// Hands every record now in the buffer to `each`, oldest first; returns how many.
    pub fn drain(&mut self, mut each: impl FnMut(ExecRecord)) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            if let Some(record) = parse_record(&item) {
                n += 1;
                each(record);
            }
        }
        n
    }

    /// Execs the kernel side could not record since the start (the buffer was full).
    pub fn lost(&self) -> u64 {
        self.lost.get(&0, 0).unwrap_or(0)
    }
}
