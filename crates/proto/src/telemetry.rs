//! `POST /agent/v1/telemetry`: a batch of rows per table, and the server's acknowledgement.
//!
//! A batch id is chosen by the agent, unique per batch, and sent again unchanged on every retry:
//! the server stores a batch id once, so retrying after a lost answer cannot duplicate rows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One row: advanced-hunting column name → value (`Timestamp` as RFC 3339 text, longs as
/// numbers, strings as strings).
pub type Row = Map<String, Value>;

/// The JSON body of a telemetry post.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryBatch {
    pub batch_id: String,
    /// Table name (`DeviceProcessEvents`, `DeviceInfo`, …) → its rows, in order.
    pub tables: BTreeMap<String, Vec<Row>>,
}

impl TelemetryBatch {
    /// Rows in the batch, over all tables.
    pub fn row_count(&self) -> usize {
        self.tables.values().map(Vec::len).sum()
    }
}

/// The 200 answer: how many rows were kept, and why the others were not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAck {
    pub batch_id: String,
    /// The batch id was stored before: nothing was stored this time (`accepted` is 0).
    pub duplicate: bool,
    pub accepted: u64,
    pub rejected: u64,
    /// The first rejections (the server lists at most 100; all are counted in `rejected`).
    #[serde(default)]
    pub rejections: Vec<RowRejection>,
}

/// A row (or a whole table, when `index` is null) the server refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRejection {
    pub table: String,
    /// Position of the row in its table's array; null when the whole table was refused.
    #[serde(default)]
    pub index: Option<u64>,
    pub reason: String,
}
