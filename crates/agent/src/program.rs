//! Outside programs the agent runs (dpkg-query, rpm, journalctl, nft): with a deadline and a cap
//! on what is kept of their output, so that a hung or runaway program can neither stall the
//! agent nor fill its memory.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a program printed, and whether it was cut short.
#[derive(Debug)]
pub struct Output {
    /// Standard output, at most the cap.
    pub stdout: Vec<u8>,
    /// Killed at the deadline: `stdout` is what it printed until then.
    pub timed_out: bool,
    /// It printed more than the cap.
    pub truncated: bool,
    /// It exited with status 0.
    pub success: bool,
}

/// Runs `program` with `args`; `None` when it is not installed.
pub fn run(
    program: &str,
    args: &[&str],
    timeout: Duration,
    cap: u64,
) -> std::io::Result<Option<Output>> {
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let stdout = child.stdout.take();
    // The reader ends when the program does, or closes its output; a program that hangs is
    // killed when the deadline passes.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(cap.saturating_add(1)).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let mut success = false;
    loop {
        if let Some(status) = child.try_wait()? {
            success = status.success();
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdout = reader.join().unwrap_or_default();
    let truncated = stdout.len() as u64 > cap;
    stdout.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
    Ok(Some(Output {
        stdout,
        timed_out,
        truncated,
        success,
    }))
}
