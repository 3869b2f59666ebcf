//! Rows into batches: a batch is closed when it holds `max_rows` rows or its first row is
//! `max_age` old, given a batch id, and appended to the spool for the sender.

use crate::spool::Spool;
use rampart_proto::telemetry::{Row, TelemetryBatch};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// A row and the table it belongs to.
pub type TableRow = (&'static str, Row);

#[derive(Clone, Debug)]
pub struct BatcherConfig {
    pub max_rows: usize,
    pub max_age: Duration,
    /// Approximate uncompressed size at which a batch is closed early, so that a batch of
    /// long command lines stays far below the server's request-body limit (4 MiB compressed
    /// by default): a batch over it would be refused, not retried.
    pub max_bytes: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            max_rows: 1000,
            max_age: Duration::from_secs(1),
            max_bytes: 2 << 20,
        }
    }
}

/// Batches the rows of `rx` into `spool` until `rx` closes (every sender dropped), then
/// spools what is left; `wake` is notified after each batch so that the sender goes at once.
pub async fn run(
    mut rx: mpsc::Receiver<TableRow>,
    spool: Arc<Spool>,
    wake: Arc<Notify>,
    config: BatcherConfig,
) {
    let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut count = 0usize;
    let mut bytes = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let closed = tokio::select! {
            row = rx.recv() => match row {
                Some((table, row)) => {
                    bytes += approx_size(&row);
                    tables.entry(table.to_owned()).or_default().push(row);
                    count += 1;
                    deadline.get_or_insert_with(|| Instant::now() + config.max_age);
                    if count < config.max_rows.max(1) && bytes < config.max_bytes {
                        continue;
                    }
                    false
                }
                None => true,
            },
            () = timeout => false,
        };
        if count > 0 {
            flush(std::mem::take(&mut tables), &spool, &wake).await;
        }
        count = 0;
        bytes = 0;
        deadline = None;
        if closed {
            return;
        }
    }
}

/// About the size of a row's JSON: its names and texts plus a little per value.
fn approx_size(row: &Row) -> usize {
    row.iter()
        .map(|(k, v)| k.len() + 8 + v.as_str().map_or(16, str::len))
        .sum()
}

async fn flush(tables: BTreeMap<String, Vec<Row>>, spool: &Arc<Spool>, wake: &Notify) {
    let batch = TelemetryBatch {
        batch_id: uuid::Uuid::new_v4().to_string(),
        tables,
    };
    let rows = batch.row_count();
    let spool = Arc::clone(spool);
    // Spooling writes and flushes a file: blocking work, kept off the async threads.
    match tokio::task::spawn_blocking(move || spool.push(&batch)).await {
        Ok(Ok(_)) => wake.notify_one(),
        Ok(Err(e)) => tracing::error!(rows, "spooling a batch failed, its rows are lost: {e}"),
        Err(e) => tracing::error!(rows, "spooling task failed, its rows are lost: {e}"),
    }
}
