//! The inventory tables (`schema::INVENTORY`, e.g. installed software): what each device has
//! now, not a history.
//!
//! A device's report replaces everything it reported before, so the store keeps one object per
//! tenant / table / device: `inventory/{tenant}/{Table}/{DeviceId}.parquet`. Writing that object
//! is the replacement, and object stores swap a whole object at once (the local one writes a
//! staging file and renames it), so a query sees the old report or the new one, never a mix of
//! both. There is no log in front of these objects: a report is acknowledged once its object is
//! written, and a retried report simply writes it again. Queries list the tenant's objects and
//! scan them; retention deletes the reports of devices that stopped reporting.

use super::{EventStore, StoreError, files};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use futures::TryStreamExt;
use rampart_core::schema::{self, Table};
use std::collections::BTreeMap;
use std::time::Duration;

/// The top-level prefix of the inventory objects.
const PREFIX: &str = "inventory";

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Where one table's reports of one tenant are.
fn table_prefix(tenant: &str, table: &Table) -> ObjectPath {
    ObjectPath::from_iter([PREFIX, tenant, table.name])
}

/// The object of one device's report. A device id is used as it is when it is plain (agents'
/// ids are 40 hex digits); any other is written as `x` + the hex of its bytes, so that no id
/// can name a path outside its prefix and no path needs escaping (an escaped path read back
/// from a listing and parsed again would be escaped twice).
fn device_path(tenant: &str, table: &Table, device: &str) -> ObjectPath {
    let plain = !device.is_empty()
        && device.len() <= 128
        && !device.starts_with(['.', 'x'])
        && device
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let name = if plain {
        format!("{device}.parquet")
    } else {
        let hex: String = device.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x{hex}.parquet")
    };
    ObjectPath::from_iter([PREFIX, tenant, table.name, name.as_str()])
}

impl EventStore {
    /// Replaces the reports of the devices `batch` has rows for: the rows of one `DeviceId` are
    /// that device's whole inventory in `table` from now on. Rows without a device id were
    /// refused before they got here (the column is required).
    pub(crate) async fn replace_inventory(
        &self,
        tenant: &str,
        table: &'static Table,
        batch: &RecordBatch,
    ) -> Result<(), StoreError> {
        let ids = batch
            .column_by_name(schema::DEVICE_ID)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| {
                StoreError::InvalidInput(format!("{}: rows without a DeviceId column", table.name))
            })?;
        let mut by_device: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            if ids.is_valid(row) {
                by_device
                    .entry(ids.value(row))
                    .or_default()
                    .push(row as u32);
            }
        }
        for (device, rows) in by_device {
            let report = take_record_batch(batch, &UInt32Array::from(rows))
                .map_err(|e| StoreError::internal("selecting a device's rows", e))?;
            let bytes = files::write_parquet(&report)?;
            self.inner
                .objects
                .put(&device_path(tenant, table, device), PutPayload::from(bytes))
                .await
                .map_err(|e| {
                    StoreError::unavailable(
                        format!("writing the {} report of {device}: {e}", table.name),
                        Duration::from_secs(5),
                    )
                })?;
        }
        Ok(())
    }

    /// The objects holding one tenant's reports in `table`, one per device.
    pub(crate) async fn inventory_objects(
        &self,
        tenant: &str,
        table: &Table,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        self.inner
            .objects
            .list(Some(&table_prefix(tenant, table)))
            .try_collect()
            .await
            .map_err(|e| {
                StoreError::unavailable(
                    format!("listing the {} reports: {e}", table.name),
                    Duration::from_secs(5),
                )
            })
    }

    /// Deletes the reports written longer ago than their tenant's retention (`days_of`), counted
    /// from `now_ns`: a device that stopped reporting leaves the inventory as its events leave
    /// the event tables. Returns how many were deleted.
    pub(crate) async fn expire_inventory(
        &self,
        now_ns: i64,
        days_of: impl Fn(&str) -> u32,
    ) -> Result<usize, StoreError> {
        let objects: Vec<ObjectMeta> = self
            .inner
            .objects
            .list(Some(&ObjectPath::from(PREFIX)))
            .try_collect()
            .await
            .map_err(|e| StoreError::internal("listing the inventory reports", e))?;
        let expired: Vec<ObjectPath> = objects
            .into_iter()
            .filter(|o| {
                let Some(tenant) = o.location.parts().nth(1) else {
                    return false;
                };
                let written = o.last_modified.timestamp_nanos_opt().unwrap_or(i64::MAX);
                let days = i64::from(days_of(tenant.as_ref()));
                written < now_ns.saturating_sub(days.saturating_mul(NANOS_PER_DAY))
            })
            .map(|o| o.location)
            .collect();
        let n = expired.len();
        // By their listed paths: parsing them back from text would escape them a second time.
        for path in expired {
            if let Err(e) = self.inner.objects.delete(&path).await {
                tracing::warn!("deleting {path}: {e}");
            }
        }
        Ok(n)
    }
}
