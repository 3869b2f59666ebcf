//! Machines from telemetry: DeviceInfo rows create and update machines (name, OS, versions,
//! addresses), DeviceNetworkInfo rows record their IP addresses over time (what `findbyip`
//! answers from), and any other row is a contact that moves `lastSeen`.
//!
//! A busy device sends many batches a minute; a contact is written at most once a minute per
//! device so the state store sees a trickle, not the event rate.

use crate::state::AppState;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, TimestampNanosecondType};
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::machine::{IpAddress, Machine};
use rampart_core::schema::Table;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How often a device's mere contact updates its machine.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Remembers when each device's machine was last updated.
#[derive(Default)]
pub struct FleetTracker {
    touched: Mutex<HashMap<(TenantId, String), Instant>>,
}

fn text(b: &RecordBatch, col: &str, row: usize) -> Option<String> {
    let c = b.column_by_name(col)?.as_string_opt::<i32>()?;
    (!c.is_null(row) && !c.value(row).is_empty()).then(|| c.value(row).to_owned())
}

fn long(b: &RecordBatch, col: &str, row: usize) -> Option<i64> {
    let c = b.column_by_name(col)?.as_primitive_opt::<Int64Type>()?;
    (!c.is_null(row)).then(|| c.value(row))
}

fn flag(b: &RecordBatch, col: &str, row: usize) -> Option<bool> {
    let c = b.column_by_name(col)?.as_boolean_opt()?;
    (!c.is_null(row)).then(|| c.value(row))
}

fn when(b: &RecordBatch, row: usize) -> Option<OffsetDateTime> {
    let c = b
        .column_by_name("Timestamp")?
        .as_primitive_opt::<TimestampNanosecondType>()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.value(row))).ok()
}

/// The addresses of a DeviceNetworkInfo `IPAddresses` value: a JSON array of objects with
/// `IPAddress` (and `AddressType`), as the reference documents.
fn addresses(json: &str, mac: Option<&str>, status: Option<&str>) -> Vec<IpAddress> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(json) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| {
            let ip = i.get("IPAddress")?.as_str()?;
            ip.parse::<std::net::IpAddr>().ok()?;
            Some(IpAddress {
                ip_address: ip.to_owned(),
                mac_address: mac.map(str::to_owned),
                kind: i
                    .get("AddressType")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                operational_status: status.map(str::to_owned),
            })
        })
        .collect()
}

/// Notes each device's newest event time (and a name) in a batch of any other table. Runs for
/// every stored row, so it reads the columns once and allocates only per device, not per row.
fn contacts_of(b: &RecordBatch, contacts: &mut Contacts) {
    let ids = b
        .column_by_name("DeviceId")
        .and_then(|c| c.as_string_opt::<i32>());
    let times = b
        .column_by_name("Timestamp")
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
    let (Some(ids), Some(times)) = (ids, times) else {
        return;
    };
    for row in 0..b.num_rows() {
        if ids.is_null(row) || times.is_null(row) || ids.value(row).is_empty() {
            continue;
        }
        let device = ids.value(row);
        let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(times.value(row))) else {
            continue;
        };
        match contacts.get_mut(device) {
            Some(e) => {
                e.0 = e.0.max(at);
                if e.1.is_none() {
                    e.1 = text(b, "DeviceName", row);
                }
            }
            None => {
                contacts.insert(device.to_owned(), (at, text(b, "DeviceName", row)));
            }
        }
    }
}

/// Per device: the newest event time and the device's name, when a row gave one.
type Contacts = BTreeMap<String, (OffsetDateTime, Option<String>)>;

impl FleetTracker {
    /// Updates machines from one stored batch of a tenant's rows.
    pub async fn observe(
        &self,
        state: &AppState,
        tenant: TenantId,
        tables: &[(&'static Table, RecordBatch)],
    ) {
        let ctx = AuditContext::system("telemetry");
        // The newest DeviceInfo per device is its report; older rows of the batch say nothing new.
        let mut reports: BTreeMap<String, Machine> = BTreeMap::new();
        let mut networks: BTreeMap<String, (OffsetDateTime, OffsetDateTime, Vec<IpAddress>)> =
            BTreeMap::new();
        let mut contacts = Contacts::new();
        for (table, b) in tables {
            if !matches!(table.name, "DeviceInfo" | "DeviceNetworkInfo") {
                contacts_of(b, &mut contacts);
                continue;
            }
            for row in 0..b.num_rows() {
                let (Some(device), Some(at)) = (text(b, "DeviceId", row), when(b, row)) else {
                    continue;
                };
                match table.name {
                    "DeviceInfo" => {
                        if reports
                            .get(&device)
                            .is_some_and(|m| m.last_seen >= Some(at))
                        {
                            continue;
                        }
                        let name = text(b, "DeviceName", row).unwrap_or_else(|| device.clone());
                        let os = text(b, "OSPlatform", row).unwrap_or_else(|| "Unknown".into());
                        let mut m = Machine::new(device.clone(), name, os, at);
                        m.os_build = long(b, "OSBuild", row);
                        m.os_version = text(b, "OSVersion", row);
                        m.os_architecture = text(b, "OSArchitecture", row);
                        m.agent_version = text(b, "ClientVersion", row);
                        m.version = text(b, "OSVersionInfo", row).or_else(|| m.os_version.clone());
                        m.last_external_ip_address = text(b, "PublicIP", row);
                        m.aad_device_id = text(b, "AadDeviceId", row);
                        m.is_aad_joined = flag(b, "IsAzureADJoined", row).unwrap_or(false);
                        reports.insert(device, m);
                    }
                    "DeviceNetworkInfo" => {
                        let Some(json) = text(b, "IPAddresses", row) else {
                            continue;
                        };
                        let found = addresses(
                            &json,
                            text(b, "MacAddress", row).as_deref(),
                            text(b, "NetworkAdapterStatus", row).as_deref(),
                        );
                        let e = networks.entry(device).or_insert((at, at, Vec::new()));
                        e.0 = e.0.min(at);
                        e.1 = e.1.max(at);
                        for a in found {
                            if !e.2.iter().any(|x| x.ip_address == a.ip_address) {
                                e.2.push(a);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for (_, m) in reports {
            if let Err(e) = state.store.report_machine(&ctx, tenant, &m).await {
                tracing::warn!(device = m.id, "updating machine from DeviceInfo: {e}");
            }
            self.mark(tenant, &m.id);
        }
        for (device, (first, at, ips)) in networks {
            let Ok(Some(mut m)) = state.store.get_machine(tenant, &device).await else {
                continue;
            };
            // The address history is kept at the rows' own time, so findbyip also answers for
            // imported history.
            let addrs: Vec<String> = ips.iter().map(|a| a.ip_address.clone()).collect();
            for seen in [first, at] {
                if let Err(e) = state
                    .store
                    .record_machine_ips(tenant, &m.id, &addrs, seen)
                    .await
                {
                    tracing::warn!(device, "recording machine addresses: {e}");
                }
            }
            m.last_ip_address = ips
                .iter()
                .find(|a| a.ip_address.contains('.'))
                .or(ips.first())
                .map(|a| a.ip_address.clone());
            m.ip_addresses = ips;
            m.last_seen = m.last_seen.max(Some(at));
            if let Err(e) = state.store.report_machine(&ctx, tenant, &m).await {
                tracing::warn!(device, "recording machine addresses: {e}");
            }
        }
        let now = OffsetDateTime::now_utc();
        for (device, (at, name)) in contacts {
            if !self.due(tenant, &device) {
                continue;
            }
            // Contact time is when the server heard from the device, not a (possibly skewed or
            // replayed) event time, but never in the future of what was reported.
            let seen = at.min(now).max(now - time::Duration::minutes(5));
            let m = match state.store.get_machine(tenant, &device).await {
                Ok(Some(mut m)) => {
                    m.last_seen = m.last_seen.max(Some(seen));
                    m
                }
                Ok(None) => Machine::new(
                    device.clone(),
                    name.unwrap_or_else(|| device.clone()),
                    "Unknown".into(),
                    seen,
                ),
                Err(e) => {
                    tracing::warn!(device, "reading machine: {e}");
                    continue;
                }
            };
            if let Err(e) = state.store.report_machine(&ctx, tenant, &m).await {
                tracing::warn!(device, "recording machine contact: {e}");
            }
        }
    }

    fn mark(&self, tenant: TenantId, device: &str) {
        self.touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant, device.to_owned()), Instant::now());
    }

    /// Whether the device's contact should be written now (and notes that it is).
    fn due(&self, tenant: TenantId, device: &str) -> bool {
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant, device.to_owned());
        match t.get(&key) {
            Some(last) if last.elapsed() < TOUCH_EVERY => false,
            _ => {
                t.insert(key, Instant::now());
                true
            }
        }
    }
}
