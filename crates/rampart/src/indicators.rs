//! `rampart indicators import FILE…` and `rampart indicators sync --taxii URL`: threat-intel
//! feeds into the indicator store — straight into the data dir's store, or through a server's
//! `POST /api/indicators/feeds/{source}` with `--server`.
//!
//! Straight into the store, the server must not be running on the same data dir: its matcher
//! would only see the new indicators when it restarts.

use crate::admin::resolve_tenant;
use crate::cli::{FeedArgs, IndicatorsCommand, RemoteArgs, TaxiiArgs};
use crate::config::Settings;
use crate::serve::open_store;
use anyhow::{Context, bail};
use rampart_api::feeds::{FeedEntries, FeedReport, FeedTarget};
use rampart_core::audit::AuditContext;
use rampart_core::indicator::{IndicatorWriter, SourceType, Submitter};
use rampart_intel::{Defaults, Format};
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

pub async fn run(settings: &Settings, cmd: IndicatorsCommand) -> anyhow::Result<()> {
    match cmd {
        IndicatorsCommand::Import(args) => import(settings, args).await,
        IndicatorsCommand::Sync(args) => taxii(settings, args).await,
    }
}

async fn import(settings: &Settings, args: FeedArgs) -> anyhow::Result<()> {
    let format = args
        .format
        .as_deref()
        .map(|f| {
            f.parse::<Format>()
                .map_err(|e| anyhow::anyhow!("--format: {e}"))
        })
        .transpose()?;
    let mut all = FeedEntries::default();
    for path in &args.files {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        let format = match format {
            Some(f) => f,
            None => Format::guess(path, &bytes).with_context(|| {
                format!(
                    "{}: the format could not be told from the name or content; pass --format csv|txt|stix|misp",
                    path.display()
                )
            })?,
        };
        if let Some(remote) = args.remote.server.as_deref() {
            let report = post_feed(
                &args.remote,
                args.tenant.as_deref(),
                remote,
                &args.source,
                format,
                bytes,
                args.sync,
            )
            .await
            .with_context(|| format!("{}", path.display()))?;
            print_report(&path.display().to_string(), &report);
            continue;
        }
        let parsed = tokio::task::spawn_blocking(move || {
            rampart_intel::parse(format, &bytes, &Defaults::default())
        })
        .await?
        .with_context(|| format!("{}", path.display()))?;
        let file = path.display().to_string();
        all.add(parsed, Some(file.as_str()));
    }
    if args.remote.server.is_some() {
        return Ok(());
    }
    let report = store_locally(
        settings,
        args.tenant.as_deref(),
        &args.source,
        all,
        args.sync,
    )
    .await?;
    print_report(&args.source, &report);
    if report.created + report.updated == 0 && report.failed > 0 {
        bail!("no indicator was stored");
    }
    Ok(())
}

/// Imports into the data dir's store, with a progress line on a terminal.
async fn store_locally(
    settings: &Settings,
    tenant: Option<&str>,
    source: &str,
    entries: FeedEntries,
    sync: bool,
) -> anyhow::Result<FeedReport> {
    let store = open_store(settings).await?;
    let tenant = resolve_tenant(store.as_ref(), tenant).await?;
    let target = FeedTarget {
        store: store.as_ref(),
        matcher: None,
        tenant,
        ctx: AuditContext::system("cli:indicators-import"),
        writer: IndicatorWriter {
            submitter: Submitter {
                id: "rampart-cli".into(),
                name: source.to_owned(),
                kind: SourceType::User,
            },
            all: true,
        },
        sync,
    };
    let terminal = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let report = rampart_api::feeds::import(&target, entries, |done, total| {
        if terminal {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\r{source}: {done}/{total} entries, {:.0}/s   ",
                done as f64 / secs
            );
            let _ = std::io::stderr().flush();
        }
    })
    .await
    .context("storing indicators")?;
    if terminal {
        eprintln!();
    }
    Ok(report)
}

fn print_report(what: &str, r: &FeedReport) {
    for p in &r.problems {
        eprintln!("{what}: {}: {}", p.origin, p.reason);
    }
    if r.failed > r.problems.len() {
        eprintln!("{what}: … and {} more", r.failed - r.problems.len());
    }
    println!(
        "{what}: {} entries: {} created, {} updated, {} failed, {} expired (source '{}')",
        r.entries, r.created, r.updated, r.failed, r.expired, r.source
    );
}

/// Sends a feed file to a server's feed route.
async fn post_feed(
    remote: &RemoteArgs,
    tenant: Option<&str>,
    server: &str,
    source: &str,
    format: Format,
    bytes: Vec<u8>,
    sync: bool,
) -> anyhow::Result<FeedReport> {
    let (http, server, token) = crate::remote::login(server, tenant, remote).await?;
    let mut url =
        reqwest::Url::parse(&format!("{server}/api/indicators/feeds/")).context("--server")?;
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("--server {server} cannot take a path"))?
        .pop_if_empty()
        .push(source);
    url.query_pairs_mut()
        .append_pair("format", format.as_str())
        .append_pair("sync", if sync { "true" } else { "false" });
    let resp = http
        .post(url)
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("reaching {server}"))?;
    crate::remote::json_or_error(resp).await
}

/// Where a TAXII collection was last read up to.
#[derive(Serialize, Deserialize, Default)]
struct TaxiiCursor {
    added_after: Option<String>,
}

fn cursor_path(settings: &Settings, args: &TaxiiArgs) -> PathBuf {
    use sha2::Digest;
    let key = format!("{}|{}|{}", args.taxii, args.collection, args.source);
    let name: String = sha2::Sha256::digest(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    settings.data_dir.join("taxii").join(format!("{name}.json"))
}

/// Pulls what a TAXII 2.1 collection added since the last pull and imports it.
async fn taxii(settings: &Settings, args: TaxiiArgs) -> anyhow::Result<()> {
    let path = cursor_path(settings, &args);
    let cursor: TaxiiCursor = match std::fs::read(&path) {
        Ok(b) if !args.from_start => serde_json::from_slice(&b)
            .with_context(|| format!("{}: unreadable cursor; pass --from-start", path.display()))?,
        _ => TaxiiCursor::default(),
    };
    use rampart_intel::taxii::Auth;
    let auth = match (&args.taxii_user, &args.taxii_password, &args.taxii_token) {
        (Some(u), Some(p), None) => Auth::Basic {
            user: u.clone(),
            password: p.clone(),
        },
        (None, None, Some(t)) => Auth::Bearer(t.clone()),
        (None, None, None) => Auth::None,
        _ => bail!("give either --taxii-user with --taxii-password, or --taxii-token"),
    };
    let client = rampart_intel::taxii::Client::new(&args.taxii, &args.collection, auth)
        .context("--taxii")?;
    let pulled = client
        .pull(cursor.added_after.as_deref(), &Defaults::default())
        .await
        .with_context(|| format!("pulling {}", args.taxii))?;
    let mut entries = FeedEntries::default();
    entries.add(pulled.parsed, None);
    let report = store_locally(
        settings,
        args.tenant.as_deref(),
        &args.source,
        entries,
        false,
    )
    .await?;
    print_report(&args.source, &report);
    if !pulled.complete {
        eprintln!(
            "{}: the pull stopped after {} pages before the collection's end; run sync again to go on",
            args.source, pulled.pages
        );
    }
    // The cursor moves only once what it covers is stored.
    let next = TaxiiCursor {
        added_after: pulled.last_added.or(cursor.added_after),
    };
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(&path, serde_json::to_vec(&next)?)
        .with_context(|| format!("{}", path.display()))?;
    Ok(())
}
