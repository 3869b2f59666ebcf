//! The open-files limit. Every connected agent holds a TCP connection, on the server and on
//! `rampart simulate --agents`, so the default soft limit of many systems (1024) would cap a
//! server at about a thousand agents although the hard limit allows far more.

/// Raises the soft limit on open files to the hard limit; returns the soft limit in force.
pub fn raise_to_hard_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the live, writable struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the live `rlimit` passed by pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Ok(limit.rlim_cur)
}
