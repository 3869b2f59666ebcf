//! Rows into batches: a batch is closed when it holds `max_rows` rows or its first row is
//! `max_age` old, given a batch id, and appended to the spool for the sender.

use crate::spool::Spool;
use rampart_proto::telemetry::{Row, TelemetryBatch};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TryRecvError;
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

/// How long the batcher, once it has rows, leaves the channel alone before taking what came
/// meanwhile. Waking for each row cost more CPU than building it (a context switch each, at
/// thousands of rows a second); a row waits this long at most, within a batch's `max_age`.
pub const NAP: Duration = Duration::from_millis(50);

/// The batch being filled.
#[derive(Default)]
struct Pending {
    tables: BTreeMap<String, Vec<Row>>,
    count: usize,
    bytes: usize,
    /// When it closes by age: `max_age` after its first row.
    deadline: Option<Instant>,
}

impl Pending {
    fn push(&mut self, (table, row): TableRow, config: &BatcherConfig) {
        self.bytes += approx_size(&row);
        // Looked up before inserting: the table's name is allocated once per batch, not per row.
        match self.tables.get_mut(table) {
            Some(rows) => rows.push(row),
            None => {
                self.tables.insert(table.to_owned(), vec![row]);
            }
        }
        self.count += 1;
        self.deadline
            .get_or_insert_with(|| Instant::now() + config.max_age);
    }

    fn is_full(&self, config: &BatcherConfig) -> bool {
        self.count >= config.max_rows.max(1) || self.bytes >= config.max_bytes
    }

    async fn flush(&mut self, spool: &Arc<Spool>, wake: &Notify) {
        if self.count > 0 {
            flush(std::mem::take(&mut self.tables), spool, wake).await;
        }
        *self = Pending::default();
    }
}

/// Batches the rows of `rx` into `spool` until `rx` closes (every sender dropped), then
/// spools what is left; `wake` is notified after each batch so that the sender goes at once.
///
/// Idle, it waits for a row; with rows pending it takes what is queued every [`NAP`], so
/// that senders do not wake it row by row.
pub async fn run(
    mut rx: mpsc::Receiver<TableRow>,
    spool: Arc<Spool>,
    wake: Arc<Notify>,
    config: BatcherConfig,
) {
    let mut pending = Pending::default();
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        pending.push(first, &config);
        loop {
            let closed = loop {
                match rx.try_recv() {
                    Ok(row) => {
                        pending.push(row, &config);
                        if pending.is_full(&config) {
                            pending.flush(&spool, &wake).await;
                        }
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if pending.is_full(&config) || closed {
                pending.flush(&spool, &wake).await;
            }
            if closed {
                return;
            }
            let Some(deadline) = pending.deadline else {
                break; // everything spooled: idle again
            };
            let now = Instant::now();
            if now >= deadline {
                pending.flush(&spool, &wake).await;
                break;
            }
            tokio::time::sleep((deadline - now).min(NAP)).await;
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
