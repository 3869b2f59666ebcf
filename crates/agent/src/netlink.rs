//! What the agent's netlink subscribers share: a socket bound to a protocol's multicast groups
//! with a large receive buffer, and receiving only what the kernel itself sent.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A system call's result: the error of `errno` when it is negative.
pub(crate) fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

pub(crate) fn set_int_opt(fd: &OwnedFd, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int for the duration of the call and its exact size is
    // passed; the descriptor is owned by `fd`.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A netlink socket of `protocol` (`extra` adds socket flags such as `SOCK_NONBLOCK`) bound to
/// the multicast `groups` (a bit mask), with a receive buffer of `rcvbuf` bytes: forced,
/// which needs `CAP_NET_ADMIN` as subscribing does, else as large as allowed.
pub(crate) fn subscribe(
    protocol: libc::c_int,
    extra: libc::c_int,
    groups: u32,
    rcvbuf: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; the result is checked before use
    // and owned by `OwnedFd` at once, which closes it exactly once.
    let raw = check(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | extra,
            protocol,
        )
    })?;
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `sockaddr_nl` is plain integers, for which all-zero bytes are valid.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    // nl_pid 0: the kernel picks a unique port, so several subscribers can coexist.
    addr.nl_pid = 0;
    // SAFETY: `addr` is a valid `sockaddr_nl` and its exact size is passed.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    if set_int_opt(&fd, libc::SO_RCVBUFFORCE, rcvbuf).is_err() {
        let _ = set_int_opt(&fd, libc::SO_RCVBUF, rcvbuf);
    }
    Ok(fd)
}

/// Receives one datagram into `buf`: its length, or `None` when another process sent it (only
/// the kernel, port 0, is believed).
pub(crate) fn recv_from_kernel(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: all-zero bytes are a valid `sockaddr_nl`.
    let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: the buffer pointer/length describe `buf`; `from`/`from_len` are live and
    // `from_len` holds `from`'s size, as recvfrom(2) requires.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&raw mut from).cast(),
            &raw mut from_len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((from.nl_pid == 0).then(|| usize::try_from(n).unwrap_or(0).min(buf.len())))
}
