//! `rampart serve`: opens the store, binds, serves until SIGINT/SIGTERM, then drains.

use crate::config::{Settings, Tls};
use anyhow::Context;
use rampart_api::AppState;
use rampart_store::{SqlStore, Store};
use rampart_telemetry::{EventStore, EventStoreConfig};
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
    }
    let store = SqlStore::connect(&settings.database_url).await?;
    Ok(Arc::new(store))
}

/// Opens the event store: its log and manifest in `DATA_DIR/telemetry`, its files there too or at
/// the events URL.
pub async fn open_events(settings: &Settings) -> anyhow::Result<EventStore> {
    let dir = settings.data_dir.join("telemetry");
    let config = EventStoreConfig::default();
    let events = match &settings.events_url {
        Some(url) => {
            let objects = rampart_telemetry::store::object_store_for(url)?;
            EventStore::open_with_object_store(&dir, objects, config).await
        }
        None => EventStore::open(&dir, config).await,
    };
    events.with_context(|| format!("opening the event store in {}", dir.display()))
}

/// Connections the kernel queues for accepting; it caps this at `net.core.somaxconn`.
/// The standard library's 128 overflows when thousands of agents connect at once (a server
/// restart, the end of a network outage), and a connection dropped from a full queue costs its
/// agent a second or more of SYN retries.
const LISTEN_BACKLOG: u32 = 65_535;

/// Binds `addr` (the first of its addresses that binds) with a deep accept queue.
fn listen(addr: &str) -> std::io::Result<std::net::TcpListener> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        let socket = match a {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As the standard library's bind does on Unix: a restarted server rebinds at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return listener.into_std(),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Each connected agent holds a connection.
    match crate::open_files::raise_to_hard_limit() {
        Ok(files) => tracing::debug!(files, "open-files limit"),
        Err(e) => tracing::warn!("reading the open-files limit: {e}"),
    }
    let store = open_store(&settings).await?;
    let store_for_maintenance = store.clone();
    let events = open_events(&settings).await?;
    let flusher = events.start_maintenance();
    let state = AppState::new(store, events.clone(), settings.api.clone())
        .await
        .context("loading tenants and signing keys")?;
    let tenant = state.default_tenant;
    // Before anything can ring: every ring from now on reaches the other servers.
    let bus = match &settings.api.cluster {
        Some(cluster) => Some(
            rampart_api::cluster::join(&state, cluster)
                .await
                .context("joining the cluster bus")?,
        ),
        None => None,
    };
    let detections = state.detections.start();
    let started = std::time::Instant::now();
    let loaded = state
        .indicators
        .start()
        .await
        .context("loading the indicators for matching")?;
    tracing::info!(
        "{loaded} indicators loaded for matching in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // After the indicators load: investigations judge entities by them.
    let investigations = settings
        .api
        .investigations
        .then(|| state.investigator.start());
    let stopping = std::sync::Arc::clone(&state.stopping);
    let app = rampart_api::app(state);
    let listener =
        listen(&settings.listen).with_context(|| format!("binding {}", settings.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;

    let tls_files = match &settings.tls {
        Tls::Off => None,
        Tls::Files { cert, key } => Some((cert.clone(), key.clone())),
        Tls::SelfSigned => Some(crate::tls::self_signed(&settings.data_dir)?),
    };
    let scheme = if tls_files.is_some() { "https" } else { "http" };
    let shown_host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let url = settings
        .api
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{}:{}", shown_host, addr.port()));
    println!("Rampart {} listening on {url}", env!("CARGO_PKG_VERSION"));
    println!("  state store:    {}", redact(&settings.database_url));
    println!(
        "  telemetry:      {}",
        settings
            .events_url
            .as_deref()
            .map(redact)
            .unwrap_or_else(|| settings.data_dir.join("telemetry").display().to_string())
    );
    if let Some(cluster) = &settings.api.cluster {
        println!(
            "  cluster bus:    {} (cluster '{}')",
            redact(&cluster.nats_url),
            cluster.name
        );
    }
    println!("  default tenant: {tenant}");
    if let Some((cert, _)) = &tls_files {
        println!(
            "  TLS certificate SHA-256 fingerprint: {}",
            crate::tls::fingerprint(cert)?
        );
    }
    println!(
        "  create an app:  rampart apps create --tenant {tenant} --name my-integration --roles Alert.Read.All,Machine.Read.All"
    );
    println!("  API docs:       {url}/api/docs");

    // At least a second, at most a century (date arithmetic stays in range).
    let action_timeout = time::Duration::seconds(
        settings
            .api
            .machine_action_timeout_secs
            .clamp(1, 100 * 365 * 86_400) as i64,
    );
    tokio::spawn(maintenance(
        store_for_maintenance,
        action_timeout,
        events.clone(),
        settings.api.response_file_days,
    ));

    let handle = axum_server::Handle::new();
    tokio::spawn({
        let handle = handle.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: draining requests for up to {DRAIN:?}");
            stopping.send_replace(true);
            handle.graceful_shutdown(Some(DRAIN));
        }
    });
    let service = app.into_make_service();
    match tls_files {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            axum_server::from_tcp_rustls(listener, config)
                .handle(handle)
                .serve(service)
                .await?;
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(service)
                .await?
        }
    }
    flusher.abort();
    detections.abort();
    if let Some(investigations) = investigations {
        investigations.abort();
    }
    if let Some(bus) = bus {
        bus.abort();
    }
    events
        .shutdown()
        .await
        .context("writing buffered telemetry to Parquet")?;
    println!("Rampart stopped.");
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// How often time-driven state changes are applied.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);

/// Applies the state changes that time alone causes: machines that stopped reporting become
/// inactive; pending machine actions past their deadline time out; investigation packages and
/// live response results older than `response_file_days` (0: never) are deleted.
async fn maintenance(
    store: Arc<dyn Store>,
    action_timeout: time::Duration,
    events: EventStore,
    response_file_days: u32,
) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        tick.tick().await;
        let now = time::OffsetDateTime::now_utc();
        if let Err(e) = store.refresh_machine_health(now).await {
            tracing::warn!("refreshing machine health: {e}");
        }
        match store.expire_machine_actions(now, action_timeout).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} machine actions timed out"),
            Err(e) => tracing::warn!("timing out machine actions: {e}"),
        }
        if response_file_days > 0 {
            let cutoff = now - time::Duration::days(i64::from(response_file_days));
            let prefixes = rampart_api::object_files::RESPONSE_FILE_PREFIXES;
            match rampart_api::object_files::expire(events.objects().as_ref(), prefixes, cutoff)
                .await
            {
                0 => {}
                n => tracing::info!(
                    "{n} expired investigation packages and live response results deleted"
                ),
            }
        }
    }
}
