//! The kernel's socket table through sock_diag (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY`):
//! every TCP and UDP socket of this network namespace with its state, addresses, owner uid
//! and inode. Needs no privileges; one dump is a few system calls however many sockets there
//! are.
//!
//! The kernel reports UDP sockets in TCP's states: `ESTABLISHED` for a connected one (it has
//! a remote end), `CLOSE` for one that is only bound (a server's, or a client's that sends
//! with `sendto` — those are not seen talking: datagrams leave no socket state).

use crate::process::connector::check;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The transport protocol of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The name DeviceNetworkEvents' `Protocol` column uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "Tcp",
            Protocol::Udp => "Udp",
        }
    }
}

/// TCP states (include/net/tcp_states.h), which UDP sockets are reported in too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

impl TcpState {
    fn of(n: u8) -> Option<TcpState> {
        use TcpState::*;
        Some(match n {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            _ => return None,
        })
    }

    /// Whether the handshake completed: the connection was (or still is) established.
    pub fn was_connected(self) -> bool {
        use TcpState::*;
        matches!(
            self,
            Established | FinWait1 | FinWait2 | TimeWait | CloseWait | LastAck | Closing
        )
    }
}

/// One socket of the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InetSocket {
    pub protocol: Protocol,
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub uid: u32,
    /// 0 for sockets no file refers to any more (TIME_WAIT).
    pub inode: u64,
}

impl InetSocket {
    /// A socket waiting for others: a TCP listener, or a UDP socket bound to a port with no
    /// remote end.
    pub fn is_listener(&self) -> bool {
        match self.protocol {
            Protocol::Tcp => self.state == TcpState::Listen,
            Protocol::Udp => {
                self.state == TcpState::Close && self.remote.port() == 0 && self.local.port() != 0
            }
        }
    }

    /// A TCP connection the kernel completed that no process has accepted yet: it waits in
    /// its listener's queue, without a file (inode 0) to trace a process by.
    pub fn awaits_accept(&self) -> bool {
        self.protocol == Protocol::Tcp && self.state == TcpState::Established && self.inode == 0
    }

    /// Whether it is (or was) connected to a remote end: for TCP, through the handshake.
    pub fn was_connected(&self) -> bool {
        match self.protocol {
            Protocol::Tcp => self.state.was_connected(),
            Protocol::Udp => self.state == TcpState::Established,
        }
    }
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_msg`.
const DIAG_MSG_LEN: usize = 72;
/// TCP: every state but CLOSE (sockets being torn down, with nothing to say).
const TCP_STATES: u32 = 0xfff & !(1 << 7);
/// UDP: connected (ESTABLISHED) and bound (CLOSE).
const UDP_STATES: u32 = (1 << 1) | (1 << 7);

/// Every TCP socket but the closed ones, and every UDP socket (IPv4 and IPv6).
pub fn dump() -> io::Result<Vec<InetSocket>> {
    // SAFETY: plain socket(2) call with constant arguments; the result is checked and owned by
    // `OwnedFd` at once, which closes it exactly once.
    let raw = check(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    })?;
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let asks = [Protocol::Tcp, Protocol::Udp]
        .into_iter()
        .flat_map(|p| [(p, libc::AF_INET as u8), (p, libc::AF_INET6 as u8)]);
    for (protocol, family) in asks {
        let req = request(protocol, family);
        // SAFETY: the pointer and length describe `req`, alive for the call.
        let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        'dump: loop {
            // SAFETY: the pointer and length describe `buf`, which outlives the call.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            let n = usize::try_from(n).unwrap_or(0).min(buf.len());
            match parse(&buf[..n], protocol, &mut out)? {
                Parsed::More => {}
                Parsed::Done => break 'dump,
            }
        }
    }
    Ok(out)
}

/// A dump request for one protocol and address family, the states worth reporting.
fn request(protocol: Protocol, family: u8) -> Vec<u8> {
    let (number, states) = match protocol {
        Protocol::Tcp => (libc::IPPROTO_TCP, TCP_STATES),
        Protocol::Udp => (libc::IPPROTO_UDP, UDP_STATES),
    };
    let len = NLMSG_HDRLEN + 56;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    m.push(family);
    m.push(number as u8);
    m.push(0); // no extensions
    m.push(0);
    m.extend_from_slice(&states.to_ne_bytes());
    m.resize(len, 0); // the socket id: zero, all sockets
    m
}

enum Parsed {
    More,
    Done,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses one datagram of netlink messages into sockets.
fn parse(mut b: &[u8], protocol: Protocol, out: &mut Vec<InetSocket>) -> io::Result<Parsed> {
    while b.len() >= NLMSG_HDRLEN {
        let len = u32_at(b, 0) as usize;
        let kind = u16_at(b, 4);
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        let payload = &b[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => return Ok(Parsed::Done),
            NLMSG_ERROR => {
                let errno = if payload.len() >= 4 {
                    -(u32_at(payload, 0) as i32)
                } else {
                    libc::EIO
                };
                return Err(io::Error::from_raw_os_error(errno));
            }
            SOCK_DIAG_BY_FAMILY if payload.len() >= DIAG_MSG_LEN => {
                if let Some(s) = socket(payload, protocol) {
                    out.push(s);
                }
            }
            _ => {}
        }
        let aligned = (len + 3) & !3;
        b = &b[aligned.min(b.len())..];
    }
    Ok(Parsed::More)
}

/// One `inet_diag_msg`.
fn socket(m: &[u8], protocol: Protocol) -> Option<InetSocket> {
    let family = m[0];
    let state = TcpState::of(m[1])?;
    // The socket id at offset 4: ports big-endian, then source and destination addresses.
    let sport = u16::from_be_bytes([m[4], m[5]]);
    let dport = u16::from_be_bytes([m[6], m[7]]);
    let addr = |at: usize| -> Option<IpAddr> {
        if family == libc::AF_INET as u8 {
            Some(IpAddr::V4(Ipv4Addr::new(
                m[at],
                m[at + 1],
                m[at + 2],
                m[at + 3],
            )))
        } else if family == libc::AF_INET6 as u8 {
            let mut o = [0u8; 16];
            o.copy_from_slice(&m[at..at + 16]);
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        } else {
            None
        }
    };
    Some(InetSocket {
        protocol,
        state,
        local: SocketAddr::new(addr(8)?, sport),
        remote: SocketAddr::new(addr(24)?, dport),
        uid: u32_at(m, 64),
        inode: u64::from(u32_at(m, 68)),
    })
}
