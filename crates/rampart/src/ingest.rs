//! `rampart ingest [--tenant ID] [--table T] FILE…`: bulk import of telemetry files straight into
//! the event store, in bounded memory, with a progress line on a terminal.
//!
//! Each chunk is stored under a batch id made of the file's identity (path, size, modification
//! time) and the chunk's number, so running the same import twice stores nothing twice.

use crate::admin::resolve_tenant;
use crate::cli::IngestArgs;
use crate::config::Settings;
use crate::serve::{open_events, open_store};
use anyhow::{Context, anyhow};
use rampart_api::{ApiConfig, AppState};
use rampart_core::schema;
use rampart_telemetry::Appended;
use rampart_telemetry::formats::{self, Chunk, Format, ImportOptions};
use sha2::Digest;
use std::io::{BufReader, IsTerminal, Write};
use std::time::Instant;

/// A chunk on its way from the reading thread to the store.
type Sent = (u64, Chunk);

pub async fn run(settings: &Settings, args: IngestArgs) -> anyhow::Result<()> {
    let table = match args.table.as_deref() {
        Some(name) => Some(schema::table(name).ok_or_else(|| {
            let names: Vec<&str> = schema::ALL.iter().map(|t| t.name).collect();
            anyhow!(
                "--table {name}: no such table; the tables are {}",
                names.join(", ")
            )
        })?),
        None => None,
    };
    let store = open_store(settings).await?;
    let tenant = resolve_tenant(store.as_ref(), args.tenant.as_deref()).await?;
    let events = open_events(settings).await?;
    // Machines are created from DeviceInfo and first contact, as when agents send the rows.
    let state = AppState::new(store, events.clone(), ApiConfig::default())
        .await
        .context("loading the tenant")?;
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let (mut accepted, mut rejected, mut again) = (0u64, 0u64, 0u64);
    for path in &args.files {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        let identity = format!(
            "{}|{}|{:?}",
            std::fs::canonicalize(path)?.display(),
            meta.len(),
            meta.modified().ok()
        );
        let file_id: String = sha2::Sha256::digest(identity.as_bytes())[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let format = Format::of_path(path);
        let opts = ImportOptions {
            table,
            ..Default::default()
        };
        // Reading and parsing run on a thread of their own, a few chunks ahead of the store.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Sent>(4);
        let shown = path.display().to_string();
        let reader = std::thread::spawn(move || {
            let mut n = 0u64;
            formats::import(
                BufReader::with_capacity(1 << 20, file),
                format,
                &opts,
                |c| {
                    n += 1;
                    tx.blocking_send((n, c))
                        .map_err(|_| std::io::Error::other("the store stopped"))
                },
            )
        });
        while let Some((n, chunk)) = rx.recv().await {
            for r in &chunk.rejected {
                eprintln!("{shown}: {r}");
            }
            if chunk.rejected_count > chunk.rejected.len() as u64 {
                eprintln!(
                    "{shown}: … and {} more rejected rows in this chunk",
                    chunk.rejected_count - chunk.rejected.len() as u64
                );
            }
            rejected += chunk.rejected_count;
            let rows = chunk.accepted;
            let outcome = events
                .append(
                    tenant,
                    &format!("ingest/{file_id}/{n}"),
                    chunk.tables.clone(),
                )
                .await
                .with_context(|| format!("{shown}: storing rows"))?;
            match outcome {
                Appended::Duplicate => again += rows,
                Appended::Stored { .. } => {
                    accepted += rows;
                    state.fleet.observe(&state, tenant, &chunk.tables).await;
                }
            }
            if progress {
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                eprint!(
                    "\r{shown}: {accepted} rows stored, {rejected} rejected, {:.0} rows/s   ",
                    accepted as f64 / secs
                );
                let _ = std::io::stderr().flush();
            }
        }
        reader
            .join()
            .map_err(|_| anyhow!("{shown}: the reader thread panicked"))?
            .map_err(|e| anyhow!("{shown}: {e}"))?;
        if progress {
            eprintln!();
        }
    }
    events
        .shutdown()
        .await
        .context("writing telemetry to Parquet")?;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    println!(
        "{accepted} rows stored, {rejected} rejected, {again} already stored before, in {secs:.1} s ({:.0} rows/s)",
        accepted as f64 / secs
    );
    if accepted == 0 && rejected > 0 {
        anyhow::bail!("no row was accepted");
    }
    Ok(())
}
