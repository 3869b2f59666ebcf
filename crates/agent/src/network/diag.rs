//! The kernel's socket table through sock_diag (`NETLINK_SOCK_DIAG`): a dump of every TCP and
//! UDP socket of this network namespace with its state, addresses, owner uid and inode
//! ([`dump`]: a few system calls however many sockets there are), and the sockets the kernel
//! destroys, as it destroys them ([`ClosedSockets`], the `*_DESTROY` multicast groups).
//!
//! The kernel reports UDP sockets in TCP's states: `ESTABLISHED` for a connected one (it has
//! a remote end), `CLOSE` for one that is only bound (a server's, or a client's that sends
//! with `sendto` — those are not seen talking: datagrams leave no socket state).

use crate::netlink::{self, check};
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
/// TCP without TIME_WAIT: connections that ended, which [`ClosedSockets`] reports.
const TCP_OPEN_STATES: u32 = TCP_STATES & !(1 << 6);
/// UDP: connected (ESTABLISHED) and bound (CLOSE).
const UDP_STATES: u32 = (1 << 1) | (1 << 7);

/// Every TCP socket but the closed ones, TIME_WAIT included, and every UDP socket (IPv4 and
/// IPv6): the whole table, for a snapshot of the host.
pub fn dump() -> io::Result<Vec<InetSocket>> {
    dump_states(TCP_STATES)
}

/// As [`dump`], without the TCP connections in TIME_WAIT: at 1,000 connections a second a
/// minute of them is 60,000 sockets, and [`ClosedSockets`] has reported each already.
pub fn dump_open() -> io::Result<Vec<InetSocket>> {
    dump_states(TCP_OPEN_STATES)
}

/// The requests of one dump. TCP first as one compat request (`TCPDIAG_GETSOCK`), which the
/// kernel answers for both address families in one walk of its connection table: with
/// `SOCK_DIAG_BY_FAMILY` each family walks the whole table, TIME_WAIT sockets and all, and that
/// walk was the sensor's largest cost under load. Kernels without the compat request get one
/// request per family.
fn dump_states(tcp_states: u32) -> io::Result<Vec<InetSocket>> {
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
    let by_family = |protocol, states| {
        [libc::AF_INET, libc::AF_INET6].map(|f| (protocol, request(protocol, f as u8, states)))
    };
    if let Err(e) = ask(
        &fd,
        &mut buf,
        Protocol::Tcp,
        &tcp_request(tcp_states),
        &mut out,
    ) {
        tracing::debug!("the compat TCP dump was refused ({e}); asking per address family");
        out.clear();
        for (protocol, req) in by_family(Protocol::Tcp, tcp_states) {
            ask(&fd, &mut buf, protocol, &req, &mut out)?;
        }
    }
    for (protocol, req) in by_family(Protocol::Udp, UDP_STATES) {
        ask(&fd, &mut buf, protocol, &req, &mut out)?;
    }
    Ok(out)
}

/// Sends one dump request on `fd` and appends the sockets of its answer to `out`.
fn ask(
    fd: &OwnedFd,
    buf: &mut [u8],
    protocol: Protocol,
    req: &[u8],
    out: &mut Vec<InetSocket>,
) -> io::Result<()> {
    // The answer's messages have the request's type.
    let answer = u16_at(req, 4);
    // SAFETY: the pointer and length describe `req`, alive for the call.
    let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    loop {
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
        for (kind, payload) in messages(&buf[..n]) {
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => return Err(error_of(payload)),
                k if k == answer && payload.len() >= DIAG_MSG_LEN => {
                    out.extend(socket(payload, protocol));
                }
                _ => {}
            }
        }
    }
}

fn header(m: &mut Vec<u8>, kind: u16, len: usize) {
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
}

/// A `SOCK_DIAG_BY_FAMILY` dump request (`struct inet_diag_req_v2`) for one protocol and
/// address family, in the given states.
fn request(protocol: Protocol, family: u8, states: u32) -> Vec<u8> {
    let number = match protocol {
        Protocol::Tcp => libc::IPPROTO_TCP,
        Protocol::Udp => libc::IPPROTO_UDP,
    };
    let len = NLMSG_HDRLEN + 56;
    let mut m = Vec::with_capacity(len);
    header(&mut m, SOCK_DIAG_BY_FAMILY, len);
    m.push(family);
    m.push(number as u8);
    m.push(0); // no extensions
    m.push(0);
    m.extend_from_slice(&states.to_ne_bytes());
    m.resize(len, 0); // the socket id: zero, all sockets
    m
}

/// `TCPDIAG_GETSOCK`: the original inet_diag request (`struct inet_diag_req`), which the
/// kernel answers for IPv4 and IPv6 sockets alike.
const TCPDIAG_GETSOCK: u16 = 18;

/// A compat dump request for TCP sockets in the given states, of both address families.
fn tcp_request(states: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + 60;
    let mut m = Vec::with_capacity(len);
    header(&mut m, TCPDIAG_GETSOCK, len);
    m.push(libc::AF_INET as u8); // ignored: the kernel answers for every family
    m.extend_from_slice(&[0, 0, 0]); // no prefix lengths, no extensions
    m.resize(NLMSG_HDRLEN + 4 + 48, 0); // the socket id: zero, all sockets
    m.extend_from_slice(&states.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // idiag_dbs
    m
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut o = [0u8; 8];
    o.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(o)
}

/// The netlink messages of one datagram: (type, payload), up to the first malformed one.
fn messages(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_at(b, 0) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return None;
        }
        let message = (u16_at(b, 4), &b[NLMSG_HDRLEN..len]);
        let aligned = (len + 3) & !3;
        b = &b[aligned.min(b.len())..];
        Some(message)
    })
}

/// The error an `NLMSG_ERROR` message carries.
fn error_of(payload: &[u8]) -> io::Error {
    let errno = if payload.len() >= 4 {
        -(u32_at(payload, 0) as i32)
    } else {
        libc::EIO
    };
    io::Error::from_raw_os_error(errno)
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

/// How a destroyed socket's life went, as far as its last counters tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It had a remote end: a TCP handshake completed (`tcpi_delivered` counts the SYN or
    /// SYN-ACK the peer acknowledged), or a UDP socket was connected.
    Connected,
    /// A TCP connect that sent its SYN and never completed, and still names where it went
    /// (a blocking connect(2) that fails has the kernel forget the remote end, and is not seen).
    Failed,
    /// Bound, listening, or nothing left to tell.
    Unconnected,
}

/// A socket the kernel destroyed. Its state is `CLOSE` (TCP), uid and inode are 0: no file
/// refers to it any more, so its process is not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedSocket {
    pub socket: InetSocket,
    pub ending: Ending,
}

/// The sock_diag groups `SKNLGRP_INET_TCP_DESTROY`, `_INET_UDP_`, `_INET6_TCP_`, `_INET6_UDP_`
/// (groups 1–4, as a bind mask).
const DESTROY_GROUPS: u32 = 0b1111;
/// `INET_DIAG_INFO`: `struct tcp_info`.
const INET_DIAG_INFO: u16 = 2;
/// `INET_DIAG_PROTOCOL`: the socket's IP protocol number.
const INET_DIAG_PROTOCOL: u16 = 10;
/// Offsets in `struct tcp_info` (linux/tcp.h): `tcpi_rtt`, `tcpi_bytes_received`,
/// `tcpi_segs_out`, `tcpi_delivered` (Linux 4.18; older kernels send a shorter struct).
const TCPI_RTT: usize = 68;
const TCPI_BYTES_RECEIVED: usize = 128;
const TCPI_SEGS_OUT: usize = 136;
const TCPI_DELIVERED: usize = 192;
/// Socket receive buffer asked for: one message per closed socket, thousands a second, read
/// once a second.
const CLOSED_RCVBUF: libc::c_int = 16 << 20;

/// A subscription to the kernel's broadcasts of destroyed TCP and UDP sockets (Linux 4.9,
/// `CAP_NET_ADMIN`). A connection that opens and closes between two dumps is seen here, once,
/// when its socket is freed: for the side that closed first that is when it enters TIME_WAIT.
pub struct ClosedSockets {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// Times the kernel reported dropped broadcasts (the receive buffer overflowed).
    pub overruns: u64,
}

impl ClosedSockets {
    pub fn open() -> io::Result<ClosedSockets> {
        let fd = netlink::subscribe(
            libc::NETLINK_SOCK_DIAG,
            libc::SOCK_NONBLOCK,
            DESTROY_GROUPS,
            CLOSED_RCVBUF,
        )?;
        Ok(ClosedSockets {
            fd,
            buf: vec![0; 64 * 1024],
            overruns: 0,
        })
    }

    /// Appends every socket destroyed since the last call to `out`; never blocks.
    pub fn drain(&mut self, out: &mut Vec<ClosedSocket>) -> io::Result<()> {
        loop {
            let n = match netlink::recv_from_kernel(&self.fd, &mut self.buf) {
                Ok(Some(n)) => n,
                // Only the kernel (port 0) speaks for sock_diag.
                Ok(None) => continue,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(()),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        self.overruns += 1;
                        continue;
                    }
                    _ => return Err(e),
                },
            };
            for (kind, payload) in messages(&self.buf[..n]) {
                if kind == SOCK_DIAG_BY_FAMILY {
                    out.extend(closed_socket(payload));
                }
            }
        }
    }
}

/// One destroy broadcast: an `inet_diag_msg` and its attributes.
pub fn closed_socket(m: &[u8]) -> Option<ClosedSocket> {
    if m.len() < DIAG_MSG_LEN {
        return None;
    }
    let mut protocol = None;
    let mut info: &[u8] = &[];
    let mut attrs = &m[DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0));
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match u16_at(attrs, 2) {
            INET_DIAG_PROTOCOL if !value.is_empty() => protocol = Some(value[0]),
            INET_DIAG_INFO => info = value,
            _ => {}
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    let protocol = match protocol.map(i32::from) {
        Some(libc::IPPROTO_TCP) => Protocol::Tcp,
        Some(libc::IPPROTO_UDP) => Protocol::Udp,
        _ => return None,
    };
    let socket = socket(m, protocol)?;
    let ending = match protocol {
        Protocol::Udp if socket.remote.port() != 0 => Ending::Connected,
        Protocol::Udp => Ending::Unconnected,
        Protocol::Tcp => tcp_ending(info, socket.remote.port()),
    };
    Some(ClosedSocket { socket, ending })
}

/// How a TCP socket ended, from its `tcp_info`.
fn tcp_ending(info: &[u8], remote_port: u16) -> Ending {
    let connected = if info.len() >= TCPI_DELIVERED + 4 {
        u32_at(info, TCPI_DELIVERED) > 0
    } else if info.len() >= TCPI_BYTES_RECEIVED + 8 {
        // Before Linux 4.18: a round-trip time was measured, or something arrived.
        u32_at(info, TCPI_RTT) > 0 || u64_at(info, TCPI_BYTES_RECEIVED) > 0
    } else {
        false
    };
    if connected {
        Ending::Connected
    } else if remote_port != 0 && info.len() >= TCPI_SEGS_OUT + 4 && u32_at(info, TCPI_SEGS_OUT) > 0
    {
        Ending::Failed
    } else {
        Ending::Unconnected
    }
}
