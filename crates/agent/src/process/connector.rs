//! The kernel's process events through the netlink proc connector (`NETLINK_CONNECTOR`,
//! `CN_IDX_PROC`): fork, exec and exit, as they happen, for every process of the host.
//!
//! Messages are parsed from bytes with bounds checks (no casts of kernel buffers to structs),
//! and only messages from the kernel (netlink port 0) are believed.

use crate::bytes::{u16_at, u32_at};
use crate::netlink::{self, check};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `struct cn_msg` without its data: id (idx, val), seq, ack, len, flags.
const CN_MSG_LEN: usize = 20;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// Offset of the event union in `struct proc_event` (what, cpu, timestamp_ns).
const EVENT_DATA: usize = 16;
/// Socket receive buffer asked for: bursts of thousands of execs must not overflow it.
const RCVBUF: libc::c_int = 8 << 20;
/// How long `recv` blocks before returning `None`, so that the reading thread can stop.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(250);

/// A process event (threads' forks and exits are reported as such; see the `pid`/`tgid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        pid: u32,
        tgid: u32,
    },
    /// `exit_code` is the wait status (`code << 8`, or the signal number).
    Exit {
        pid: u32,
        tgid: u32,
        exit_code: u32,
        exit_signal: u32,
    },
}

/// A subscription to the proc connector.
pub struct Connector {
    fd: OwnedFd,
    buf: Vec<u8>,
    pending: VecDeque<ProcEvent>,
    /// Times the kernel reported dropped messages (the receive buffer overflowed).
    pub overruns: u64,
}

impl Connector {
    /// Opens a netlink connector socket and subscribes to every process event. Needs
    /// `CAP_NET_ADMIN` (root); fails on kernels without the connector.
    pub fn open() -> io::Result<Connector> {
        Connector::subscribe(None)
    }

    /// As [`Connector::open`], for forks and execs only where the kernel filters events
    /// (Linux 6.6); elsewhere every event comes, as with `open`. Exits are a third of all
    /// events, each a wakeup of the reader.
    pub fn open_starts() -> io::Result<Connector> {
        Connector::subscribe(filters_events().then_some(PROC_EVENT_FORK | PROC_EVENT_EXEC))
    }

    /// Subscribes to the `events` (`PROC_EVENT_*` bits), or to all.
    fn subscribe(events: Option<u32>) -> io::Result<Connector> {
        let fd = netlink::subscribe(libc::NETLINK_CONNECTOR, 0, CN_IDX_PROC, RCVBUF)?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: RECV_TIMEOUT.as_micros() as libc::suseconds_t,
        };
        // SAFETY: `tv` is a live timeval and its exact size is passed.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
        let connector = Connector {
            fd,
            buf: vec![0; 64 * 1024],
            pending: VecDeque::new(),
            overruns: 0,
        };
        connector.control(PROC_CN_MCAST_LISTEN, events)?;
        Ok(connector)
    }

    /// Sends a multicast control operation (listen / ignore) to the proc connector.
    fn control(&self, op: u32, events: Option<u32>) -> io::Result<()> {
        let msg = control_message(op, events);
        // SAFETY: the pointer and length describe `msg`, alive for the call.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The next event; `None` after [`RECV_TIMEOUT`] without one (or after an overrun, which
    /// is counted in [`Connector::overruns`]).
    pub fn recv(&mut self) -> io::Result<Option<ProcEvent>> {
        if let Some(e) = self.pending.pop_front() {
            return Ok(Some(e));
        }
        let len = match netlink::recv_from_kernel(&self.fd, &mut self.buf) {
            Ok(Some(len)) => len,
            // Only the kernel (port 0) speaks for the proc connector.
            Ok(None) => return Ok(None),
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR) => Ok(None),
                    Some(libc::ENOBUFS) => {
                        self.overruns += 1;
                        Ok(None)
                    }
                    _ => Err(e),
                };
            }
        };
        parse_messages(&self.buf[..len], &mut self.pending);
        Ok(self.pending.pop_front())
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        // Tells the kernel one listener fewer, so it stops building events nobody reads.
        let _ = self.control(PROC_CN_MCAST_IGNORE, None);
    }
}

/// A netlink message carrying a `cn_msg` for the proc connector with one u32 operation.
/// A control message: the operation alone, or with the events wanted (`struct proc_input`).
fn control_message(op: u32, events: Option<u32>) -> Vec<u8> {
    let data = if events.is_some() { 8 } else { 4 };
    let total = NLMSG_HDRLEN + CN_MSG_LEN + data;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes()); // nlmsg_type
    m.extend_from_slice(&0u16.to_ne_bytes()); // nlmsg_flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq
    m.extend_from_slice(&std::process::id().to_ne_bytes()); // nlmsg_pid
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes()); // cb_id.idx
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes()); // cb_id.val
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&(data as u16).to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&op.to_ne_bytes());
    if let Some(events) = events {
        m.extend_from_slice(&events.to_ne_bytes());
    }
    m
}

/// Whether this kernel takes a `struct proc_input` (operation and wanted events; Linux 6.6)
/// where older ones take the operation alone and ignore anything longer: subscribing with a
/// filter there would bring no events at all. Known from the release, since a subscription
/// is not acknowledged.
pub fn filters_events() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|r| release_at_least(&r, (6, 6)))
        .unwrap_or(false)
}

/// Whether a kernel release string ("6.18.44-fc", "5.14.0-427.el9.x86_64") is at least
/// `major.minor`; `None` when it does not start with numbers.
pub fn release_at_least(release: &str, (major, minor): (u32, u32)) -> Option<bool> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let got_major: u32 = parts.next()?.parse().ok()?;
    let got_minor: u32 = parts.next()?.parse().ok()?;
    Some((got_major, got_minor) >= (major, minor))
}

/// Appends the process events of one datagram (possibly several netlink messages) to `out`;
/// malformed or foreign messages are skipped.
pub fn parse_messages(mut b: &[u8], out: &mut VecDeque<ProcEvent>) {
    while b.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(b, 0).map(|l| l as usize) else {
            return;
        };
        if len < NLMSG_HDRLEN || len > b.len() {
            return;
        }
        let kind = u16_at(b, 4).unwrap_or(NLMSG_NOOP);
        if kind != NLMSG_NOOP
            && kind != NLMSG_ERROR
            && let Some(e) = parse_cn_msg(&b[NLMSG_HDRLEN..len])
        {
            out.push_back(e);
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or(&[]);
    }
}

fn parse_cn_msg(m: &[u8]) -> Option<ProcEvent> {
    if u32_at(m, 0)? != CN_IDX_PROC || u32_at(m, 4)? != CN_VAL_PROC {
        return None;
    }
    let data_len = usize::from(u16_at(m, 16)?);
    let ev = m.get(CN_MSG_LEN..CN_MSG_LEN + data_len)?;
    let d = EVENT_DATA;
    match u32_at(ev, 0)? {
        PROC_EVENT_FORK => Some(ProcEvent::Fork {
            parent_tgid: u32_at(ev, d + 4)?,
            child_pid: u32_at(ev, d + 8)?,
            child_tgid: u32_at(ev, d + 12)?,
        }),
        PROC_EVENT_EXEC => Some(ProcEvent::Exec {
            pid: u32_at(ev, d)?,
            tgid: u32_at(ev, d + 4)?,
        }),
        PROC_EVENT_EXIT => Some(ProcEvent::Exit {
            pid: u32_at(ev, d)?,
            tgid: u32_at(ev, d + 4)?,
            exit_code: u32_at(ev, d + 8)?,
            exit_signal: u32_at(ev, d + 12)?,
        }),
        _ => None,
    }
}
