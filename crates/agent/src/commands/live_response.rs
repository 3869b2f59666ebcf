//! Live response (MDE's `runliveresponse`): a session of `PutFile`, `RunScript` and `GetFile`
//! commands, run in order; the first that fails ends the session and the rest never run.
//!
//! * `PutFile` fetches a file of the tenant's live response library into the downloads
//!   directory (`<state dir>/liveresponse/downloads`, MDE's "Downloads" folder), where scripts
//!   run and can find it by name.
//! * `RunScript` fetches a library script, runs it there as the agent's user (root) in a process
//!   group of its own — directly when it starts with `#!`, else with `/bin/sh` — with `Args`
//!   split as a shell would split them but never expanded, stdin closed, for at most
//!   [`SCRIPT_TIMEOUT`]; the transcript (`{script_name, exit_code, script_output,
//!   script_errors}`, MDE's shape) is the command's result. A script that exits non-zero has
//!   still run: its command completes, and the exit code is in the transcript.
//! * `GetFile` uploads the file at an absolute path, at most [`MAX_GET_FILE_BYTES`].
//!
//! Library files are fetched by the SHA-256 the server bound the session to when it handed it
//! out, and checked against it: the device runs exactly those bytes, whatever the library holds
//! by the time it fetches them.

use crate::backoff::Backoff;
use crate::client::{Reply, ServerClient};
use crate::fsutil::ensure_dir;
use rampart_proto::command::{LiveCommand, LiveCommandOutcome};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

/// Longest a script may run (MDE: 10 minutes).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);
/// Most of a script's output (and of its errors) kept in the transcript.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Largest file `GetFile` uploads (MDE: 3 GB).
pub const MAX_GET_FILE_BYTES: u64 = 3 << 30;
/// Largest library file fetched (the server's limit).
const MAX_LIBRARY_BYTES: u64 = rampart_core::library::MAX_FILE_BYTES;
/// Transfer attempts before a command fails (the server may be away for a moment).
const ATTEMPTS: u32 = 4;
/// How long output is still read after a script ended (a daemon it left may hold the pipes).
const DRAIN: Duration = Duration::from_secs(2);

/// Runs live response sessions.
pub struct LiveResponder {
    state_dir: PathBuf,
    client: ServerClient,
    /// `Device <id>:<secret>`.
    authorization: String,
    script_timeout: Duration,
    /// The session running now and what stops it.
    running: Mutex<Option<(String, Arc<Notify>)>>,
}

/// Why a command failed, for the analyst.
type Failure = String;

impl LiveResponder {
    pub fn new(state_dir: &Path, client: ServerClient, authorization: String) -> LiveResponder {
        LiveResponder {
            state_dir: state_dir.to_owned(),
            client,
            authorization,
            script_timeout: SCRIPT_TIMEOUT,
            running: Mutex::default(),
        }
    }

    /// The same, with scripts stopped after `timeout` instead of [`SCRIPT_TIMEOUT`].
    pub fn with_script_timeout(mut self, timeout: Duration) -> LiveResponder {
        self.script_timeout = timeout;
        self
    }

    /// Where `PutFile` puts files and scripts run.
    pub fn downloads_dir(&self) -> PathBuf {
        self.state_dir.join("liveresponse").join("downloads")
    }

    fn scripts_dir(&self) -> PathBuf {
        self.state_dir.join("liveresponse").join("scripts")
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(String, Arc<Notify>)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops session `command_id` if it is the one running: its script is killed and the
    /// commands after it do not run. False when it is not running.
    pub fn cancel(&self, command_id: &str) -> bool {
        match &*self.slot() {
            Some((id, stop)) if id == command_id => {
                stop.notify_one();
                true
            }
            _ => false,
        }
    }

    /// Runs the session of command `command_id`: a summary or the failure that ended it, and
    /// how each command that ran ended.
    pub async fn run(
        &self,
        command_id: &str,
        commands: &[LiveCommand],
    ) -> (Result<String, String>, Vec<LiveCommandOutcome>) {
        let stop = Arc::new(Notify::new());
        *self.slot() = Some((command_id.to_owned(), Arc::clone(&stop)));
        let mut outcomes = Vec::with_capacity(commands.len());
        let mut result = Ok(format!(
            "{} live response commands completed",
            commands.len()
        ));
        for (i, command) in commands.iter().enumerate() {
            let index = i as u32;
            let started_ms = now_ms();
            let done = tokio::select! {
                r = self.one(command_id, index, command, &stop) => r,
                // Transfers stop by being dropped; a script stops itself (its group is killed).
                _ = stop.notified(), if !matches!(command, LiveCommand::RunScript { .. }) => {
                    Err("the session was cancelled".to_owned())
                }
            };
            let failed = done.as_ref().err().cloned();
            outcomes.push(LiveCommandOutcome {
                index,
                completed: failed.is_none(),
                started_ms,
                ended_ms: now_ms(),
                errors: failed.iter().cloned().collect(),
            });
            if let Some(reason) = failed {
                result = Err(format!("command {index} ({}): {reason}", name(command)));
                break;
            }
        }
        self.slot().take();
        (result, outcomes)
    }

    async fn one(
        &self,
        command_id: &str,
        index: u32,
        command: &LiveCommand,
        stop: &Notify,
    ) -> Result<(), Failure> {
        match command {
            LiveCommand::PutFile { file_name, sha256 } => {
                let dir = self.downloads_dir();
                ensure_dir(&dir, 0o700).map_err(|e| e.to_string())?;
                self.fetch(sha256, &dir.join(file_name), 0o600).await
            }
            LiveCommand::RunScript {
                script_name,
                sha256,
                args,
            } => {
                let args = split_args(args.as_deref().unwrap_or(""))?;
                let dir = self.scripts_dir();
                ensure_dir(&dir, 0o700).map_err(|e| e.to_string())?;
                let script = dir.join(format!("{command_id}-{index}-{script_name}"));
                self.fetch(sha256, &script, 0o700).await?;
                let ran = self.run_script(&script, &args, stop).await;
                let _ = fs::remove_file(&script);
                let ran = ran?;
                let transcript = serde_json::json!({
                    "script_name": script_name,
                    "exit_code": ran.exit_code,
                    "script_output": ran_output(&ran.output),
                    "script_errors": ran_output(&ran.errors),
                });
                let body = serde_json::to_vec(&transcript).map_err(|e| e.to_string())?;
                self.upload(command_id, index, "application/json", || {
                    Ok(reqwest::Body::from(body.clone()))
                })
                .await
            }
            LiveCommand::GetFile { path } => {
                let meta = fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
                if !meta.is_file() {
                    return Err(format!("{path} is not a regular file"));
                }
                if meta.len() > MAX_GET_FILE_BYTES {
                    return Err(format!(
                        "{path} is {} bytes; GetFile takes files of at most {MAX_GET_FILE_BYTES} bytes",
                        meta.len()
                    ));
                }
                self.upload(command_id, index, "application/octet-stream", || {
                    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
                    Ok(reqwest::Body::from(tokio::fs::File::from_std(file)))
                })
                .await
            }
        }
    }

    /// Fetches library content `sha256` into `dest` (created with `mode`), checking the hash.
    async fn fetch(&self, sha256: &str, dest: &Path, mode: u32) -> Result<(), Failure> {
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(&partial)
                .map_err(|e| format!("{}: {e}", partial.display()))?;
            let mut out = HashingWriter {
                file,
                hash: Sha256::new(),
            };
            let reply = self
                .client
                .download_library_file(&self.authorization, sha256, &mut out, MAX_LIBRARY_BYTES)
                .await;
            match reply {
                Reply::Done(_) => {
                    let HashingWriter { file, hash } = out;
                    let got = crate::hex::encode(&hash.finalize());
                    if !got.eq_ignore_ascii_case(sha256) {
                        let _ = fs::remove_file(&partial);
                        return Err(format!(
                            "the library file's content has SHA-256 {got}, not {sha256}"
                        ));
                    }
                    file.sync_all().map_err(|e| e.to_string())?;
                    drop(file);
                    return fs::rename(&partial, dest)
                        .map_err(|e| format!("{}: {e}", dest.display()));
                }
                Reply::Refused { status, reason } => {
                    let _ = fs::remove_file(&partial);
                    return Err(format!(
                        "the library file could not be fetched (HTTP {status}): {reason}"
                    ));
                }
                Reply::Retry {
                    reason,
                    retry_after,
                    ..
                } => {
                    if attempt >= ATTEMPTS {
                        let _ = fs::remove_file(&partial);
                        return Err(format!("the library file could not be fetched: {reason}"));
                    }
                    tokio::time::sleep(backoff.next_delay(retry_after)).await;
                }
            }
        }
    }

    /// Uploads the result of command `index`, the body made anew for each attempt.
    async fn upload(
        &self,
        command_id: &str,
        index: u32,
        content_type: &str,
        body: impl Fn() -> Result<reqwest::Body, Failure>,
    ) -> Result<(), Failure> {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let reply = self
                .client
                .upload_result(
                    &self.authorization,
                    command_id,
                    index,
                    content_type,
                    body()?,
                )
                .await;
            match reply {
                Reply::Done(_) => return Ok(()),
                Reply::Refused { status, reason } => {
                    return Err(format!(
                        "the server refused the result (HTTP {status}): {reason}"
                    ));
                }
                Reply::Retry {
                    reason,
                    retry_after,
                    ..
                } => {
                    if attempt >= ATTEMPTS {
                        return Err(format!("the result could not be uploaded: {reason}"));
                    }
                    tokio::time::sleep(backoff.next_delay(retry_after)).await;
                }
            }
        }
    }

    async fn run_script(
        &self,
        script: &Path,
        args: &[String],
        stop: &Notify,
    ) -> Result<ScriptRun, Failure> {
        let shebang = fs::read(script)
            .map(|b| b.starts_with(b"#!"))
            .unwrap_or(false);
        let mut cmd = if shebang {
            tokio::process::Command::new(script)
        } else {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg(script);
            c
        };
        cmd.args(args)
            .current_dir(self.downloads_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        ensure_dir(&self.downloads_dir(), 0o700).map_err(|e| e.to_string())?;
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("the script could not be started: {e}"))?;
        let pid = child.id();
        let output = capture(child.stdout.take());
        let errors = capture(child.stderr.take());
        let ended = tokio::select! {
            status = child.wait() => Ok(status.map_err(|e| e.to_string())?),
            _ = tokio::time::sleep(self.script_timeout) => Err(format!(
                "the script ran longer than {} s and was stopped",
                self.script_timeout.as_secs()
            )),
            _ = stop.notified() => Err("the session was cancelled; the script was stopped".to_owned()),
        };
        // Whatever the script started in its group goes with it, on every path.
        if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: kill(2) with plain integers has no memory effects here. The child was
            // started in a process group of its own whose id is its pid (> 1), so -pid names
            // that group only, never the agent's; ESRCH (already gone) is fine.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let status = match ended {
            Ok(status) => status,
            Err(reason) => {
                let _ = child.wait().await;
                return Err(reason);
            }
        };
        let (output, errors) = tokio::join!(output.finish(), errors.finish());
        use std::os::unix::process::ExitStatusExt;
        Ok(ScriptRun {
            exit_code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            output,
            errors,
        })
    }
}

/// What a script did.
struct ScriptRun {
    exit_code: i32,
    output: Vec<u8>,
    errors: Vec<u8>,
}

/// Output as transcript text: lossy UTF-8, with a note when it was cut.
fn ran_output(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if bytes.len() >= MAX_OUTPUT_BYTES {
        text.push_str(&format!("\n[output truncated at {MAX_OUTPUT_BYTES} bytes]"));
    }
    text
}

/// A pipe read into a buffer of at most [`MAX_OUTPUT_BYTES`] (the rest read and dropped, so
/// the script never blocks on a full pipe).
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn capture(pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>) -> Capture {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let task = pipe.map(|mut pipe| {
        let buffer = Arc::clone(&buffer);
        tokio::spawn(async move {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let mut b = buffer.lock().unwrap_or_else(|p| p.into_inner());
                let room = MAX_OUTPUT_BYTES.saturating_sub(b.len());
                b.extend_from_slice(&chunk[..n.min(room)]);
            }
        })
    });
    Capture { buffer, task }
}

impl Capture {
    /// What was read, once the pipe closed or [`DRAIN`] passed.
    async fn finish(mut self) -> Vec<u8> {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(DRAIN, task).await.is_err() {
                abort.abort();
            }
        }
        std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A file being written with the SHA-256 of what went in.
struct HashingWriter {
    file: File,
    hash: Sha256,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn name(c: &LiveCommand) -> &'static str {
    match c {
        LiveCommand::PutFile { .. } => "PutFile",
        LiveCommand::RunScript { .. } => "RunScript",
        LiveCommand::GetFile { .. } => "GetFile",
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Splits `Args` into words as a POSIX shell does — blanks separate words; single quotes keep
/// everything; double quotes keep everything but `\"`, `\\`; a backslash outside quotes keeps
/// the next character — without expanding anything (no variables, globs or substitutions).
pub fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("Args: a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("Args: a double quote is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("Args: a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("Args: ends with a lone backslash".into()),
                }
            }
            '\0' => return Err("Args: contains a NUL character".into()),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}
