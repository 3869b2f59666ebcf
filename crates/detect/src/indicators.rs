//! Indicator matching on the ingestion path.
//!
//! [`IndicatorMatcher`] keeps every tenant's indicators in a [`rampart_ioc::IndicatorIndex`]
//! (loaded from the state store at start, changed by the API as indicators are submitted and
//! deleted) and checks each ingested row on the columns that carry hashes, certificate
//! thumbprints, addresses and URLs. The matching runs in line, on the batch the event store has
//! just made durable; what it finds goes through a queue to a task that raises the alerts, so a
//! slow state store never slows ingestion.
//!
//! One alert per indicator and device: it is keyed by `detectionSource` `CustomTI` and the
//! external id `<indicator id>:<device id>`, so later matches only widen its first and last
//! event times (the store's idempotent alert import). Matches of an `Allowed` indicator, and of
//! indicators without `generateAlert`, raise nothing.

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use rampart_core::TenantId;
use rampart_core::alert::{Alert, AlertStatus, Evidence, new_alert_id};
use rampart_core::audit::AuditContext;
use rampart_core::indicator::{IndicatorAction, IndicatorType};
use rampart_core::schema::Table;
pub use rampart_ioc::Change;
use rampart_ioc::{Device, FileObservation, Hit, IndicatorIndex, NetworkObservation};
use rampart_store::{Store, StoreError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// `detectionSource` of the alerts indicators raise.
pub const DETECTION_SOURCE: &str = "CustomTI";
/// Indicators read from the store per query while loading.
const LOAD_PAGE: u32 = 10_000;
/// Matches waiting for their alert; beyond this, matches are dropped with a warning.
const QUEUE: usize = 4_096;
/// How long a device's group is trusted before it is read again.
const GROUP_TTL: Duration = Duration::from_secs(60);

/// The file columns checked together as one file: SHA-256, SHA-1, MD5, certificate thumbprint.
const FILE_COLUMNS: [[Option<&str>; 4]; 3] = [
    [Some("SHA256"), Some("SHA1"), Some("MD5"), None],
    [
        Some("InitiatingProcessSHA256"),
        Some("InitiatingProcessSHA1"),
        Some("InitiatingProcessMD5"),
        None,
    ],
    // DeviceFileCertificateInfo: the signed file and its signer's certificate.
    [None, Some("SHA1"), None, Some("SignerHash")],
];
/// The network columns checked together: remote address, URL or host.
const NETWORK_COLUMNS: [(&str, &str); 2] =
    [("RemoteIP", "RemoteUrl"), ("FileOriginIP", "FileOriginUrl")];

/// Checks ingested rows against every tenant's indicators and raises their alerts.
pub struct IndicatorMatcher {
    index: Arc<IndicatorIndex>,
    store: Arc<dyn Store>,
    groups: Mutex<HashMap<(TenantId, String), (Instant, Option<(String, String)>)>>,
    queue: OnceLock<mpsc::Sender<Found>>,
}

/// An indicator that decided on rows of one device in one batch.
struct Found {
    tenant: TenantId,
    hit: Hit,
    device_id: String,
    device_name: Option<String>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    evidence: Evidence,
}

impl IndicatorMatcher {
    pub fn new(store: Arc<dyn Store>) -> IndicatorMatcher {
        IndicatorMatcher {
            index: Arc::new(IndicatorIndex::new()),
            store,
            groups: Mutex::new(HashMap::new()),
            queue: OnceLock::new(),
        }
    }

    /// The index, for lookups outside ingestion.
    pub fn index(&self) -> &Arc<IndicatorIndex> {
        &self.index
    }

    /// Loads every tenant's indicators and starts the task that raises alerts. Returns the
    /// number of indicators loaded.
    pub async fn start(self: &Arc<Self>) -> Result<usize, StoreError> {
        let loaded = self.load().await?;
        let (tx, mut rx) = mpsc::channel::<Found>(QUEUE);
        if self.queue.set(tx).is_ok() {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                while let Some(found) = rx.recv().await {
                    if let Err(e) = me.raise(found).await {
                        tracing::error!("indicator alert not raised: {e}");
                    }
                }
            });
        }
        Ok(loaded)
    }

    /// Reads every tenant's indicators from the store into the index.
    pub async fn load(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        for tenant in self.store.list_tenants().await? {
            let mut indicators = Vec::new();
            let mut after = 0;
            loop {
                let page = self
                    .store
                    .indicators_after(tenant.id, after, LOAD_PAGE)
                    .await?;
                let Some((last, _)) = page.last() else { break };
                after = *last;
                indicators.extend(page.into_iter().map(|(_, i)| i));
            }
            for e in self.index.load(tenant.id, &indicators) {
                tracing::warn!(tenant = %tenant.id, "indicator left out of matching: {e}");
            }
            total += indicators.len();
        }
        Ok(total)
    }

    /// Applies submitted or deleted indicators to the matcher at once.
    pub fn apply(&self, tenant: TenantId, changes: &[Change]) {
        for e in self.index.apply(tenant, changes) {
            tracing::warn!(%tenant, "indicator left out of matching: {e}");
        }
    }

    /// Checks ingested rows; queues an alert for each indicator that decides on a device.
    pub async fn observe(&self, tenant: TenantId, tables: &[(&'static Table, RecordBatch)]) {
        let Some(queue) = self.queue.get() else {
            return; // not started: nobody would raise the alerts
        };
        let snapshot = self.index.snapshot(tenant);
        if snapshot.is_empty() {
            return;
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut found: HashMap<(u64, String), Found> = HashMap::new();
        // Device groups of this call's devices (a batch is mostly one device's).
        let mut groups: HashMap<String, Option<(String, String)>> = HashMap::new();
        for (table, batch) in tables {
            let rows = Rows::of(table, batch);
            if !rows.checked() {
                continue;
            }
            for row in 0..batch.num_rows() {
                let Some(device_id) = rows.text(rows.device_id, row) else {
                    continue;
                };
                if !groups.contains_key(device_id) {
                    let g = self.group(tenant, device_id).await;
                    groups.insert(device_id.to_owned(), g);
                }
                let group = groups.get(device_id).and_then(Option::as_ref);
                let device = Device {
                    group_id: group.as_ref().map(|g| g.0.as_str()),
                    group_name: group.as_ref().map(|g| g.1.as_str()),
                };
                for file in &rows.files {
                    let obs = FileObservation {
                        sha256: file[0].and_then(|c| rows.text(Some(c), row)),
                        sha1: file[1].and_then(|c| rows.text(Some(c), row)),
                        md5: file[2].and_then(|c| rows.text(Some(c), row)),
                        cert_thumbprint: file[3].and_then(|c| rows.text(Some(c), row)),
                    };
                    if let Some(hit) = snapshot.match_file(&obs, device, now) {
                        let observed = hit.value.clone();
                        rows.record(&mut found, tenant, hit, device_id, row, &observed);
                    }
                }
                for (ip, url) in &rows.networks {
                    let ip_text = ip.and_then(|c| rows.text(Some(c), row));
                    let obs = NetworkObservation {
                        ip: ip_text.and_then(|s| s.parse::<IpAddr>().ok()),
                        url: url.and_then(|c| rows.text(Some(c), row)),
                    };
                    if obs.ip.is_none() && obs.url.is_none() {
                        continue;
                    }
                    if let Some(hit) = snapshot.match_network(&obs, device, now) {
                        let observed = match hit.entry.kind {
                            IndicatorType::IpAddress => ip_text,
                            _ => obs.url,
                        }
                        .unwrap_or_default()
                        .to_owned();
                        rows.record(&mut found, tenant, hit, device_id, row, &observed);
                    }
                }
            }
        }
        for (_, f) in found {
            if let Err(e) = queue.try_send(f) {
                tracing::warn!("indicator match dropped, the alert queue is full: {e}");
            }
        }
    }

    /// The device's group (id, name), from the store at most once a minute.
    async fn group(&self, tenant: TenantId, device_id: &str) -> Option<(String, String)> {
        let key = (tenant, device_id.to_owned());
        if let Some((at, g)) = lock(&self.groups).get(&key)
            && at.elapsed() < GROUP_TTL
        {
            return g.clone();
        }
        let group = match self.store.get_machine(tenant, device_id).await {
            Ok(Some(m)) => Some((
                m.rbac_group_id.to_string(),
                m.rbac_group_name.unwrap_or_default(),
            )),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("device group of {device_id} unknown: {e}");
                None
            }
        };
        lock(&self.groups).insert(key, (Instant::now(), group.clone()));
        group
    }

    /// Raises (or widens) the alert of one match.
    async fn raise(&self, f: Found) -> Result<(), StoreError> {
        let id = f.hit.entry.id.to_string();
        let Some(indicator) = self.store.get_indicator(f.tenant, &id).await? else {
            return Ok(()); // deleted meanwhile
        };
        let machine = self.store.get_machine(f.tenant, &f.device_id).await?;
        let now = OffsetDateTime::now_utc();
        let time_of = |ns: Option<i64>| {
            ns.and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok())
        };
        let mut description = indicator.description.clone();
        if let Some(r) = indicator
            .recommended_actions
            .as_deref()
            .filter(|r| !r.is_empty())
        {
            description.push_str("\n\nRecommended actions: ");
            description.push_str(r);
        }
        let category = match f.hit.entry.kind {
            IndicatorType::IpAddress | IndicatorType::DomainName | IndicatorType::Url => {
                "CommandAndControl"
            }
            _ => "Malware",
        };
        let alert = Alert {
            id: new_alert_id(now, rand::random()),
            incident_id: None,
            investigation_id: None,
            investigation_state: None,
            assigned_to: None,
            severity: indicator.severity,
            status: AlertStatus::New,
            classification: None,
            determination: None,
            detection_source: DETECTION_SOURCE.into(),
            detector_id: Some(id.clone()),
            category: category.into(),
            threat_family_name: None,
            threat_name: None,
            title: indicator.title.clone(),
            description,
            alert_creation_time: Some(now),
            first_event_time: time_of(f.first_ns),
            last_event_time: time_of(f.last_ns),
            last_update_time: Some(now),
            resolved_time: None,
            machine_id: machine.as_ref().map(|m| m.id.clone()),
            computer_dns_name: machine
                .as_ref()
                .map(|m| m.computer_dns_name.clone())
                .or(f.device_name),
            rbac_group_name: machine.and_then(|m| m.rbac_group_name),
            aad_tenant_id: f.tenant.to_string(),
            mitre_techniques: Vec::new(),
            related_user: None,
            comments: Vec::new(),
            external_id: Some(format!("{id}:{}", f.device_id)),
            evidence: vec![f.evidence],
        };
        let ctx = AuditContext::system(&format!("indicator:{id}"));
        self.store.import_alert(&ctx, f.tenant, alert).await?;
        Ok(())
    }
}

/// The columns of one ingested batch that matching reads.
struct Rows<'a> {
    device_id: Option<&'a StringArray>,
    device_name: Option<&'a StringArray>,
    timestamp: Option<&'a datafusion::arrow::array::PrimitiveArray<TimestampNanosecondType>>,
    files: Vec<[Option<&'a StringArray>; 4]>,
    networks: Vec<(Option<&'a StringArray>, Option<&'a StringArray>)>,
    file_name: Option<&'a StringArray>,
    folder_path: Option<&'a StringArray>,
    command_line: Option<&'a StringArray>,
    account_name: Option<&'a StringArray>,
    account_domain: Option<&'a StringArray>,
}

impl<'a> Rows<'a> {
    fn of(table: &Table, batch: &'a RecordBatch) -> Rows<'a> {
        let text = |name: &str| -> Option<&'a StringArray> {
            let c = batch.column_by_name(name)?;
            (c.data_type() == &DataType::Utf8).then(|| c.as_string::<i32>())
        };
        let files = FILE_COLUMNS
            .iter()
            // The certificate set belongs to DeviceFileCertificateInfo only, and there SHA1
            // is checked with its signer.
            .filter(|set| (set[3].is_some()) == (table.name == "DeviceFileCertificateInfo"))
            .map(|set| set.map(|name| name.and_then(text)))
            .filter(|cols| cols.iter().any(Option::is_some))
            .collect();
        let networks = NETWORK_COLUMNS
            .iter()
            .map(|(ip, url)| (text(ip), text(url)))
            .filter(|(ip, url)| ip.is_some() || url.is_some())
            .collect();
        let timestamp = batch.column_by_name("Timestamp").and_then(|c| {
            matches!(c.data_type(), DataType::Timestamp(TimeUnit::Nanosecond, _))
                .then(|| c.as_primitive::<TimestampNanosecondType>())
        });
        Rows {
            device_id: text("DeviceId"),
            device_name: text("DeviceName"),
            timestamp,
            files,
            networks,
            file_name: text("FileName"),
            folder_path: text("FolderPath"),
            command_line: text("ProcessCommandLine"),
            account_name: text("AccountName"),
            account_domain: text("AccountDomain"),
        }
    }

    /// Whether the batch has anything to check.
    fn checked(&self) -> bool {
        self.device_id.is_some() && (!self.files.is_empty() || !self.networks.is_empty())
    }

    fn text(&self, column: Option<&'a StringArray>, row: usize) -> Option<&'a str> {
        let c = column?;
        (!c.is_null(row))
            .then(|| c.value(row))
            .filter(|v| !v.is_empty())
    }

    /// Adds a row's match to the batch's findings: one per indicator and device, spanning the
    /// rows' times.
    fn record(
        &self,
        found: &mut HashMap<(u64, String), Found>,
        tenant: TenantId,
        hit: Hit,
        device_id: &str,
        row: usize,
        observed: &str,
    ) {
        if hit.entry.action == IndicatorAction::Allowed || !hit.entry.generate_alert {
            return;
        }
        let at = self
            .timestamp
            .and_then(|t| (!t.is_null(row)).then(|| t.value(row)));
        let key = (hit.entry.id, device_id.to_owned());
        if let Some(f) = found.get_mut(&key) {
            f.first_ns = f.first_ns.min(at).or(at);
            f.last_ns = f.last_ns.max(at);
            return;
        }
        let evidence = self.evidence(&hit, row, observed);
        found.insert(
            key,
            Found {
                tenant,
                hit,
                device_id: device_id.to_owned(),
                device_name: self.text(self.device_name, row).map(Into::into),
                first_ns: at,
                last_ns: at,
                evidence,
            },
        );
    }

    /// The matched entity (as the row had it) as alert evidence, with the row's file, process
    /// and user.
    fn evidence(&self, hit: &Hit, row: usize, observed: &str) -> Evidence {
        let text = |c| self.text(c, row).map(String::from);
        let mut e = Evidence {
            evidence_creation_time: Some(OffsetDateTime::now_utc()),
            detection_status: Some("Detected".into()),
            file_name: text(self.file_name),
            file_path: text(self.folder_path),
            process_command_line: text(self.command_line),
            account_name: text(self.account_name),
            domain_name: text(self.account_domain),
            ..Evidence::default()
        };
        match hit.entry.kind {
            IndicatorType::FileSha256 => {
                e.entity_type = "File".into();
                e.sha256 = Some(observed.into());
            }
            IndicatorType::FileSha1 | IndicatorType::CertificateThumbprint => {
                e.entity_type = "File".into();
                e.sha1 = Some(observed.into());
            }
            IndicatorType::FileMd5 => e.entity_type = "File".into(),
            IndicatorType::IpAddress => {
                e.entity_type = "Ip".into();
                e.ip_address = Some(observed.into());
            }
            IndicatorType::DomainName | IndicatorType::Url => {
                e.entity_type = "Url".into();
                e.url = Some(observed.into());
            }
        }
        e
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
