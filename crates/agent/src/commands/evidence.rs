//! What automated investigations ask of the device itself: `CollectLiveEvidence` (are these
//! processes still running, are these files still there and unchanged?) and `KillProcess`
//! of one process, only while it still runs the image the investigation saw.

use crate::scan::Scanner;
use rampart_proto::command::{EvidenceRequest, FileState, LiveEvidence, ProcessState};
use std::path::Path;

/// The image process `pid` runs now (`/proc/<pid>/exe`, without the ` (deleted)` the kernel
/// adds for a removed file); `None` when there is no such process, or it has no image (a
/// kernel thread).
pub fn running_image(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_string_lossy();
    Some(exe.strip_suffix(" (deleted)").unwrap_or(&exe).to_owned())
}

/// Looks at what `request` names.
pub fn look(request: &EvidenceRequest, scanner: &Scanner) -> LiveEvidence {
    LiveEvidence {
        processes: request
            .processes
            .iter()
            .map(|p| ProcessState {
                pid: p.pid,
                running: running_image(p.pid).is_some_and(|image| image == p.image_path),
            })
            .collect(),
        files: request
            .files
            .iter()
            .map(|f| {
                let path = Path::new(&f.path);
                let exists = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
                let sha1 = exists
                    .then(|| scanner.hash_path(path))
                    .flatten()
                    .map(|h| h.sha1);
                FileState {
                    path: f.path.clone(),
                    exists,
                    sha1,
                }
            })
            .collect(),
    }
}

/// Sends SIGKILL to `pid` — when `image` is given, only if the process runs it. The process
/// is pinned with a pidfd before its image is read, so a pid reused between the check and the
/// signal cannot be hit: the signal goes to the process checked, or to none.
pub fn kill(pid: u32, image: Option<&str>) -> Result<String, String> {
    let raw = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} is out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new descriptor or -1;
    // no memory is shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(format!("process {pid} is not running; nothing to kill"))
        } else {
            Err(format!("opening process {pid}: {e}"))
        };
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nothing else.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    if let Some(image) = image {
        match running_image(pid) {
            None => return Ok(format!("process {pid} is not running; nothing to kill")),
            Some(now) if now != image => {
                return Ok(format!(
                    "process {pid} runs {now} now, not {image}; left alone"
                ));
            }
            Some(_) => {}
        }
    }
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal takes the live descriptor above, a signal number, a null
    // siginfo pointer (allowed: the kernel fills in a default) and flags 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(format!("process {pid} killed"))
    } else {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(format!("process {pid} had exited; nothing to kill"))
        } else {
            Err(format!("killing process {pid}: {e}"))
        }
    }
}
