//! `rampart-agent run`: the sensors, the batcher and the sender wired together until shutdown.

use crate::batcher::{self, BatcherConfig, TableRow};
use crate::blocklog::BlockLog;
use crate::client::ServerClient;
use crate::commands::isolation::{AllowedNet, Isolation, ServerEndpoint};
use crate::commands::journal::Journal;
use crate::commands::live_response::LiveResponder;
use crate::commands::offboard::Offboarding;
use crate::commands::package::PackageCollector;
use crate::commands::persistence::PersistenceStore;
use crate::commands::restrict::ExecControl;
use crate::commands::{ChannelConfig, CommandChannel, Executor, OffboardSignal};
use crate::credentials::Credentials;
use crate::enforcement::IndicatorSync;
use crate::error::Result;
use crate::files::{FileSensor, FileSensorConfig};
use crate::host::{self, ChangeReporter, DeviceInfo};
use crate::logons::{LogonFollower, LogonSensor, LogonSources};
use crate::netblock::AddressBlock;
use crate::netinfo;
use crate::network::{NetworkConfig, NetworkSensor};
use crate::process::hashes::{self, HashCache};
use crate::process::rows::RowContext;
use crate::process::{ProcessSensor, SensorConfig, Source};
use crate::quarantine::Quarantine;
use crate::scan::Scanner;
use crate::scan::locations::QuickLocations;
use crate::sender::{Sender, SenderConfig};
use crate::software;
use crate::spool::{self, Spool};
use crate::status::AgentStatus;
use crate::tls;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};

/// How often DeviceInfo and DeviceNetworkInfo are reported again while running.
const DEVICE_INFO_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the host (DeviceInfo, the network adapters) is looked at; a change is reported
/// at once.
const HOST_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Rows waiting for the batcher at most; sensors wait when it is full.
const ROW_CHANNEL: usize = 10_000;
/// At shutdown, how long the sender may keep trying to deliver what is queued.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub state_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub batcher: BatcherConfig,
    pub sender: SenderConfig,
    pub force_polling: bool,
    pub max_hash_bytes: u64,
    pub channel: ChannelConfig,
    /// Time between two asks for the indicators to enforce.
    pub indicator_sync_interval: Duration,
    /// The files the logon sensor follows.
    pub logon_sources: LogonSources,
    /// Time between two reads of the TCP socket table.
    pub network_interval: Duration,
    /// What `Selective` isolation lets through besides the server.
    pub isolation_allow: Vec<AllowedNet>,
    /// The filesystems whose executions a code-execution restriction controls; `None`: every
    /// local one.
    pub exec_control_mounts: Option<Vec<PathBuf>>,
    /// The filesystems the file sensor watches; `None`: every local one.
    pub file_sensor_mounts: Option<Vec<PathBuf>>,
    /// What a Quick antivirus scan reads besides the running images.
    pub quick_scan: QuickLocations,
    /// The roots of a Full antivirus scan; `None`: every local filesystem.
    pub full_scan_roots: Option<Vec<PathBuf>>,
}

impl RunConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> RunConfig {
        RunConfig {
            state_dir: state_dir.into(),
            spool_max_bytes: spool::DEFAULT_MAX_BYTES,
            batcher: BatcherConfig::default(),
            sender: SenderConfig::default(),
            force_polling: false,
            max_hash_bytes: hashes::DEFAULT_MAX_FILE_SIZE,
            channel: ChannelConfig::default(),
            network_interval: Duration::from_secs(1),
            logon_sources: LogonSources::default(),
            indicator_sync_interval: Duration::from_secs(60),
            isolation_allow: Vec::new(),
            exec_control_mounts: None,
            file_sensor_mounts: None,
            quick_scan: QuickLocations::of_host(),
            full_scan_roots: None,
        }
    }
}

/// The spool directory of a state directory.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

/// Why [`run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The shutdown future completed.
    Stopped,
    /// The device was offboarded: the credential is set aside, and the agent must not start
    /// again until it is enrolled anew.
    Offboarded,
}

/// Runs the agent until `shutdown` completes or the device is offboarded.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<Ending> {
    let creds = Credentials::load(&config.state_dir)?;
    let pin = creds
        .fingerprint
        .as_deref()
        .map(tls::parse_fingerprint)
        .transpose()?;
    let client = ServerClient::new(&creds.server, pin)?;
    let spool = Arc::new(Spool::open(
        &spool_dir(&config.state_dir),
        config.spool_max_bytes,
    )?);
    let queued = spool.summary();
    tracing::info!(
        device_id = creds.device_id,
        server = creds.server,
        queued_batches = queued.batches,
        "rampart-agent {} starting",
        crate::VERSION
    );

    // Isolation first: a host recorded as isolated is isolated again before anything else runs
    // (after a reboot the firewall is empty), and one recorded as free has no leftover table.
    let isolation = Isolation::new(
        &config.state_dir,
        &creds.server,
        config.isolation_allow.clone(),
    )?;
    match isolation.restore().await {
        Ok(Some(kind)) => tracing::warn!("this device is isolated ({})", kind.as_str()),
        Ok(None) => {}
        Err(e) => tracing::error!("restoring the recorded isolation state: {e}"),
    }
    let journal = Arc::new(Mutex::new(Journal::open(&config.state_dir)?));

    let (rows_tx, rows_rx) = mpsc::channel::<TableRow>(ROW_CHANNEL);
    let hash_cache = Arc::new(HashCache::new(
        config.max_hash_bytes,
        hashes::DEFAULT_CAPACITY,
    ));
    let device_name = host::hostname();
    let row_context = RowContext {
        device_id: Some(creds.device_id.clone()),
        device_name: device_name.clone(),
        account_domain: device_name.clone(),
    };
    let sensor = ProcessSensor::start(
        SensorConfig {
            rows: row_context.clone(),
            first_source: if config.force_polling {
                Source::ProcPolling
            } else {
                Source::Ebpf
            },
            ..SensorConfig::default()
        },
        Arc::clone(&hash_cache),
        rows_tx.clone(),
    )?;
    tracing::info!(source = sensor.source().as_str(), "process sensor started");

    let network = NetworkSensor::start(
        NetworkConfig {
            rows: row_context.clone(),
            interval: config.network_interval,
            ..NetworkConfig::default()
        },
        Arc::clone(&hash_cache),
        rows_tx.clone(),
    )
    .map_err(|e| tracing::error!("network sensor not started: {e}"))
    .ok();

    let files = FileSensor::start(
        FileSensorConfig {
            rows: row_context.clone(),
            mounts: config
                .file_sensor_mounts
                .clone()
                .unwrap_or_else(crate::commands::restrict::local_mounts),
            ignore: vec![config.state_dir.clone()],
        },
        Arc::clone(&hash_cache),
        rows_tx.clone(),
    )
    .map_err(|e| tracing::error!("file sensor not started: {e}"))
    .ok();

    let logons = LogonFollower::new(&config.state_dir, &config.logon_sources)
        .and_then(|f| {
            tracing::info!(sources = ?f.sources(), "logon sensor started");
            LogonSensor::start(
                f,
                row_context.clone(),
                Duration::from_secs(1),
                rows_tx.clone(),
            )
        })
        .map_err(|e| tracing::error!("logon sensor not started: {e}"))
        .ok();

    let exec_control = Arc::new(ExecControl::new(
        &config.state_dir,
        config.exec_control_mounts.clone(),
        &rows_tx,
        row_context.clone(),
        Arc::clone(&hash_cache),
    ));
    match exec_control.restore().await {
        Ok(true) => tracing::warn!("code execution on this device is restricted"),
        Ok(false) => {}
        Err(e) => tracing::error!("restoring the recorded code-execution restriction: {e}"),
    }

    let scanner = Arc::new(Scanner::new(
        Arc::clone(&hash_cache),
        config.quick_scan.clone(),
        config.full_scan_roots.clone(),
        row_context.clone(),
        rows_tx.clone(),
    ));

    let status = Arc::new(Mutex::new(AgentStatus::load(&config.state_dir)));
    {
        let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
        s.process_source = Some(sensor.source().as_str().to_owned());
        if let Err(e) = s.save(&config.state_dir) {
            tracing::warn!("recording the status: {e}");
        }
    }

    let device_id = Some(creds.device_id.clone());
    let process_source = sensor.source().as_str();
    let read_info =
        move || DeviceInfo::read(device_id.clone(), process_source, Path::new(host::UTMP));
    let software_info = read_info();
    let info_task = {
        let tx = rows_tx.clone();
        let ctx = row_context.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOST_CHECK_INTERVAL);
            let mut info_reports = ChangeReporter::new(DEVICE_INFO_INTERVAL);
            let mut adapter_reports = ChangeReporter::new(DEVICE_INFO_INTERVAL);
            loop {
                tick.tick().await;
                let now = OffsetDateTime::now_utc();
                let mut rows = Vec::new();
                let read_info = read_info.clone();
                let Ok((info, adapters)) =
                    tokio::task::spawn_blocking(move || (read_info(), netinfo::adapters())).await
                else {
                    continue;
                };
                if info_reports.due(&info) {
                    rows.push((rampart_core::schema::DEVICE_INFO.name, info.row(now)));
                }
                if adapter_reports.due(&adapters) {
                    let name = rampart_core::schema::DEVICE_NETWORK_INFO.name;
                    rows.extend(
                        netinfo::rows(&ctx, now, &adapters)
                            .into_iter()
                            .map(|r| (name, r)),
                    );
                }
                for row in rows {
                    if tx.send(row).await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    let server = ServerEndpoint::of(&creds.server)?;
    let addresses = AddressBlock::new(server);
    let block_log = BlockLog::start(
        row_context.clone(),
        addresses.blocked_nets(),
        rows_tx.clone(),
    )
    .map_err(|e| tracing::warn!("blocked connections will not be reported: {e}"))
    .ok();
    drop(rows_tx);

    let wake = Arc::new(Notify::new());
    // Not through the batcher: a report is one batch of its own (see `software`).
    let software_task = tokio::spawn(software::run(
        software_info,
        Arc::clone(&spool),
        Arc::clone(&wake),
    ));
    let batcher = tokio::spawn(batcher::run(
        rows_rx,
        Arc::clone(&spool),
        Arc::clone(&wake),
        config.batcher.clone(),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (channel_stop_tx, channel_stop_rx) = watch::channel(false);
    let offboard = Arc::new(OffboardSignal::default());
    let offboarded = Arc::new(AtomicBool::new(false));
    let indicators_changed = Arc::new(tokio::sync::Notify::new());
    let channel = tokio::spawn(
        CommandChannel {
            client: client.clone(),
            authorization: creds.authorization(),
            journal,
            executor: Arc::new(Executor {
                isolation,
                exec: Arc::clone(&exec_control),
                scanner: Arc::clone(&scanner),
                quarantine: Quarantine::new(&config.state_dir, Arc::clone(&scanner)),
                current_scan: Mutex::default(),
                packages: PackageCollector {
                    state_dir: config.state_dir.clone(),
                    context: row_context.clone(),
                    client: client.clone(),
                    authorization: creds.authorization(),
                },
                live: LiveResponder::new(&config.state_dir, client.clone(), creds.authorization()),
                persistence: PersistenceStore::new(&config.state_dir),
                offboarding: Offboarding {
                    state_dir: config.state_dir.clone(),
                    addresses: addresses.clone(),
                    offboarded: Arc::clone(&offboarded),
                },
            }),
            config: config.channel.clone(),
            offboard: Arc::clone(&offboard),
            indicators_changed: Arc::clone(&indicators_changed),
        }
        .run(channel_stop_rx),
    );
    let sync = tokio::spawn(
        IndicatorSync {
            client: client.clone(),
            authorization: creds.authorization(),
            state_dir: config.state_dir.clone(),
            exec: Arc::clone(&exec_control),
            scanner: Arc::clone(&scanner),
            addresses,
            interval: config.indicator_sync_interval,
            changed: indicators_changed,
            offboarded,
        }
        .run(channel_stop_tx.subscribe()),
    );
    let sender = tokio::spawn(
        Sender {
            spool: Arc::clone(&spool),
            client,
            authorization: creds.authorization(),
            wake: Arc::clone(&wake),
            config: config.sender.clone(),
            status: Some((config.state_dir.clone(), status)),
        }
        .run(stop_rx),
    );

    let ending = tokio::select! {
        _ = shutdown => Ending::Stopped,
        _ = offboard.done.notified() => Ending::Offboarded,
    };
    tracing::info!(?ending, "stopping");
    // No new commands; then the sensors' and the exec guard's threads are joined off the async
    // threads. Once they and the DeviceInfo task are gone, the row channel closes and the
    // batcher spools what it holds. (The exec guard stops with the agent in any case: fanotify
    // needs a listener. The recorded state brings it back at the next start.)
    let _ = channel_stop_tx.send(true);
    // A scan in progress ends early, so that its rows reach the queue and the row channel
    // can close.
    scanner.halt();
    drop(scanner);
    let _ = channel.await;
    let _ = sync.await;
    let _ = tokio::task::spawn_blocking(move || {
        exec_control.halt();
        sensor.stop();
        if let Some(l) = logons {
            l.stop();
        }
        if let Some(n) = network {
            n.stop();
        }
        if let Some(f) = files {
            f.stop();
        }
        if let Some(b) = block_log {
            b.stop();
        }
    })
    .await;
    info_task.abort();
    let _ = info_task.await;
    software_task.abort();
    let _ = software_task.await;
    let _ = batcher.await;
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !spool.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let _ = sender.await;
    let left = spool.summary();
    if left.batches > 0 {
        tracing::info!(
            batches = left.batches,
            rows = left.rows,
            "batches kept in the queue for the next start"
        );
    }
    Ok(ending)
}
