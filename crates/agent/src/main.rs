//! The `rampart-agent` binary: `enroll`, `run`, `status`.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rampart_agent::commands::isolation::{AllowedNet, IsolationState};
use rampart_agent::commands::restrict::RestrictionState;
use rampart_agent::credentials::Credentials;
use rampart_agent::run::{Ending, RunConfig, spool_dir};
use rampart_agent::scan::locations::QuickLocations;
use rampart_agent::spool::Spool;
use rampart_agent::status::AgentStatus;
use rampart_agent::{DEFAULT_STATE_DIR, host};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rampart-agent",
    version,
    about = "The Rampart Linux endpoint agent"
)]
struct Cli {
    /// Where the credential, the telemetry queue and the status live.
    #[arg(long, global = true, env = "RAMPART_AGENT_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this device with a tenant's enrollment token.
    Enroll {
        /// Base URL of the Rampart server, e.g. https://rampart.example:8443.
        #[arg(long)]
        server: String,
        /// The enrollment token (rpe_…); also read from RAMPART_ENROLLMENT_TOKEN, which keeps
        /// it out of the process list.
        #[arg(long, env = "RAMPART_ENROLLMENT_TOKEN", hide_env_values = true)]
        token: String,
        /// SHA-256 of the server's TLS certificate (64 hex digits): only that certificate is
        /// accepted, for servers with a self-signed one.
        #[arg(long)]
        server_fingerprint: Option<String>,
        /// Enroll again (as a new device) even though a credential exists.
        #[arg(long)]
        force: bool,
    },
    /// Run the sensors and send telemetry until stopped (SIGTERM / Ctrl-C).
    Run {
        /// Bound of the on-disk telemetry queue in bytes; the oldest batches go beyond it.
        #[arg(long, default_value_t = rampart_agent::spool::DEFAULT_MAX_BYTES)]
        spool_max_bytes: u64,
        /// Rows per batch at most.
        #[arg(long, default_value_t = 1000)]
        batch_rows: usize,
        /// Poll /proc instead of using the eBPF program or the proc connector.
        #[arg(long)]
        force_polling: bool,
        /// A network `Selective` isolation keeps reachable besides the server (CIDR or address;
        /// repeat for more).
        #[arg(long = "isolation-allow", value_name = "CIDR")]
        isolation_allow: Vec<AllowedNet>,
        /// A filesystem (mount point) whose executions a code-execution restriction controls;
        /// repeat for more. Default: every local filesystem.
        #[arg(long = "exec-control-mount", value_name = "PATH")]
        exec_control_mounts: Vec<PathBuf>,
        /// A filesystem (mount point) the file sensor watches; repeat for more. Default: every
        /// local filesystem.
        #[arg(long = "file-sensor-mount", value_name = "PATH")]
        file_sensor_mounts: Vec<PathBuf>,
        /// A file or directory a Quick antivirus scan reads besides the running images;
        /// repeat for more. Default: temporary directories, /dev/shm, download directories
        /// and persistence locations.
        #[arg(long = "quick-scan-path", value_name = "PATH")]
        quick_scan_paths: Vec<PathBuf>,
        /// A directory a Full antivirus scan reads; repeat for more. Default: every local
        /// filesystem.
        #[arg(long = "full-scan-root", value_name = "PATH")]
        full_scan_roots: Vec<PathBuf>,
        /// Seconds between two asks for the indicators this device enforces.
        #[arg(long, default_value_t = 60)]
        indicator_sync_seconds: u64,
    },
    /// Show enrollment, queue and the last send result.
    Status,
}

/// One malloc arena for the whole agent, unless `MALLOC_ARENA_MAX` says otherwise. glibc gives
/// threads arenas of their own, and the agent's rows are built on the sensors' threads and freed
/// on the batcher's: under 200 execs and 1,000 connections a second the peak RSS was 42–44 MiB
/// with the default and 35 MiB with one arena, for the same CPU (docs/BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it runs first in main, before the
        // agent starts any thread or allocates much.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

fn main() -> anyhow::Result<()> {
    one_malloc_arena();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Enroll {
            server,
            token,
            server_fingerprint,
            force,
        } => runtime.block_on(enroll(
            cli.state_dir,
            server,
            token,
            server_fingerprint,
            force,
        )),
        Command::Run {
            spool_max_bytes,
            batch_rows,
            force_polling,
            isolation_allow,
            exec_control_mounts,
            file_sensor_mounts,
            quick_scan_paths,
            full_scan_roots,
            indicator_sync_seconds,
        } => {
            let mut config = RunConfig::new(cli.state_dir);
            config.isolation_allow = isolation_allow;
            config.indicator_sync_interval =
                std::time::Duration::from_secs(indicator_sync_seconds.max(1));
            config.exec_control_mounts =
                (!exec_control_mounts.is_empty()).then_some(exec_control_mounts);
            if !quick_scan_paths.is_empty() {
                config.quick_scan = QuickLocations {
                    paths: quick_scan_paths,
                };
            }
            config.full_scan_roots = (!full_scan_roots.is_empty()).then_some(full_scan_roots);
            config.file_sensor_mounts =
                (!file_sensor_mounts.is_empty()).then_some(file_sensor_mounts);
            config.spool_max_bytes = spool_max_bytes;
            config.batcher.max_rows = batch_rows;
            config.force_polling = force_polling;
            let ending = runtime.block_on(rampart_agent::run::run(config, shutdown_signal()))?;
            if ending == Ending::Offboarded {
                eprintln!(
                    "rampart-agent: this device was offboarded; enroll it again to bring it back"
                );
            }
            Ok(())
        }
        Command::Status => status(&cli.state_dir),
    }
}

async fn enroll(
    state_dir: PathBuf,
    server: String,
    token: String,
    fingerprint: Option<String>,
    force: bool,
) -> anyhow::Result<()> {
    if let Ok(existing) = Credentials::load(&state_dir)
        && !force
    {
        bail!(
            "already enrolled as device {} with {}; pass --force to enroll again as a new device",
            existing.device_id,
            existing.server
        );
    }
    let creds = rampart_agent::enroll::enroll(
        &state_dir,
        &server,
        &token,
        fingerprint.as_deref(),
        host::hostname(),
    )
    .await
    .context("enrolling")?;
    println!(
        "Enrolled as device {} in tenant {}; credential stored in {}",
        creds.device_id,
        creds.tenant_id,
        Credentials::path(&state_dir).display()
    );
    Ok(())
}

fn status(state_dir: &std::path::Path) -> anyhow::Result<()> {
    let enrolled = match Credentials::load(state_dir) {
        Ok(c) => {
            println!("Device id:    {}", c.device_id);
            println!("Tenant id:    {}", c.tenant_id);
            println!("Server:       {}", c.server);
            if let Some(f) = &c.fingerprint {
                println!("Pinned cert:  sha256 {f}");
            }
            true
        }
        Err(e) => {
            println!("Enrollment:   {e}");
            false
        }
    };
    let q = Spool::inspect(&spool_dir(state_dir))?;
    println!(
        "Queue:        {} batches, {} rows, {} bytes",
        q.batches, q.rows, q.bytes
    );
    println!(
        "Dropped:      {} rows in {} batches (queue full); {} rows in {} batches refused by the server",
        q.counters.dropped_rows,
        q.counters.dropped_batches,
        q.counters.refused_rows,
        q.counters.refused_batches
    );
    match IsolationState::load(state_dir)?.isolated {
        Some(kind) => println!("Isolation:    isolated ({})", kind.as_str()),
        None => println!("Isolation:    not isolated"),
    }
    if RestrictionState::load(state_dir)?.restricted {
        println!("Execution:    restricted to package-manager files");
    } else {
        println!("Execution:    not restricted");
    }
    let s = AgentStatus::load(state_dir);
    if let Some(src) = &s.process_source {
        println!("Processes:    {src}");
    }
    match &s.last_send {
        Some(l) => println!(
            "Last send:    {} {} batch {}{}{}",
            l.time,
            l.outcome,
            l.batch_id,
            l.http_status
                .map(|c| format!(" (HTTP {c})"))
                .unwrap_or_default(),
            l.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        None => println!("Last send:    none yet"),
    }
    if let Some(t) = &s.last_success {
        println!("Last success: {t}");
    }
    if !enrolled {
        std::process::exit(1);
    }
    Ok(())
}

/// Completes on SIGTERM (systemd's stop) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!("SIGTERM handler: {e}; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
