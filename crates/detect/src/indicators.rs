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
use rampart_core::indicator::{Indicator, IndicatorAction, IndicatorType};
use rampart_core::machine_action::{
    ActionRequest, ActionSubmission, RequestedAction as MachineActionRequest,
};
use rampart_core::schema::Table;
pub use rampart_ioc::Change;
use rampart_ioc::index::Snapshot;
use rampart_ioc::scratch::{recycle, take};
use rampart_ioc::{Device, FileObservation, Hit, IndicatorIndex, NetworkObservation, Scratch};
use rampart_store::{Store, StoreError};
use rampart_telemetry::EventStore;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};

/// `detectionSource` of the alerts indicators raise.
pub const DETECTION_SOURCE: &str = "CustomTI";
/// Indicators read from the store per query while loading.
const LOAD_PAGE: u32 = 10_000;
/// Matches waiting for their alert; beyond this, matches are dropped with a warning.
const QUEUE: usize = 4_096;
/// How long a device's group is trusted before it is read again.
const GROUP_TTL: Duration = Duration::from_secs(60);
/// Indicators waiting for their retro-hunt; beyond this, hunts are skipped with a warning.
const RETRO_QUEUE: usize = 65_536;
/// How long changed indicators are gathered into one retro-hunt (an import sends hundreds).
const RETRO_GATHER: Duration = Duration::from_secs(1);
/// Most indicators searched for by one retro-hunt.
const RETRO_BATCH: usize = 100_000;
/// How often the store is asked whether another server (or the CLI) changed indicators.
const SYNC_EVERY: Duration = Duration::from_secs(1);

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
    events: EventStore,
    /// How far back a new or changed indicator is searched for; zero turns that off.
    lookback: Duration,
    groups: Mutex<HashMap<(TenantId, String), CachedGroup>>,
    queue: OnceLock<mpsc::Sender<Found>>,
    retro: OnceLock<mpsc::Sender<(TenantId, Box<Indicator>)>>,
    sync: Mutex<SyncState>,
    /// The tenants' indicator generations as last read from the store, for whoever waits on
    /// a change (agents' held command polls answer at once, so devices enforce a new
    /// indicator within moments instead of at their next sync).
    published: watch::Sender<Arc<HashMap<TenantId, i64>>>,
    /// Rung by [`IndicatorMatcher::apply`] and [`IndicatorMatcher::look_now`]: read and
    /// publish the generations now.
    changed_here: Notify,
    /// Tells the other servers of each tenant whose indicators this one changed (set once,
    /// when the server joins a cluster).
    relay: OnceLock<Box<dyn Fn(TenantId) + Send + Sync>>,
    /// How often the store's indicator generations are read (changes made by servers this
    /// one does not hear of through a relay arrive this late).
    sync_every: Duration,
    /// Buffers of [`IndicatorMatcher::find`] between calls, one per call running at once.
    scratch: Mutex<Vec<FindScratch>>,
}

/// The buffers of matching one call's batches (see [`rampart_ioc::Scratch`] for why they are
/// kept): emptied between calls, under `'static` element types, and [`recycle`]d into the
/// lifetimes of the next call's batches.
#[derive(Default)]
struct FindScratch {
    device_ids: Vec<Option<&'static str>>,
    devices: Vec<Device<'static>>,
    files: Vec<FileObservation<'static>>,
    ip_texts: Vec<Option<&'static str>>,
    nets: Vec<NetworkObservation<'static>>,
    hits: Vec<(usize, Hit)>,
    matching: Scratch,
}

impl FindScratch {
    /// Gives back buffers that a large batch (a retro-hunt's) made larger than
    /// [`Scratch::KEPT_ROWS`].
    fn trim(&mut self) {
        if self.device_ids.capacity() > Scratch::KEPT_ROWS {
            *self = FindScratch::default();
        }
        self.matching.trim();
    }
}

/// A machine's device group (id and name; `None` when it has none) as looked up at an instant.
type CachedGroup = (Instant, Option<(String, String)>);

/// What the matcher knows of the store's indicator generations (see [`IndicatorMatcher::start`]).
#[derive(Default)]
struct SyncState {
    /// Each tenant's generation when last looked at.
    seen: HashMap<TenantId, i64>,
    /// Tenants being reloaded, with the changes applied meanwhile (applied again after the
    /// reload, which may have read the store before they were written).
    reloading: HashMap<TenantId, Vec<Change>>,
}

/// An indicator that decided on rows of one device in one batch.
pub(crate) struct Found {
    tenant: TenantId,
    hit: Hit,
    device_id: String,
    device_name: Option<String>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    /// Rows that matched.
    events: u64,
    evidence: Evidence,
    /// Found by a retro-hunt of stored telemetry rather than on ingestion.
    retrospective: bool,
}

impl Found {
    /// The indicator's id.
    pub(crate) fn indicator(&self) -> u64 {
        self.hit.entry.id
    }

    pub(crate) fn device_id(&self) -> &str {
        &self.device_id
    }

    /// First and last event times of the rows found, in nanoseconds.
    pub(crate) fn span(&self) -> (Option<i64>, Option<i64>) {
        (self.first_ns, self.last_ns)
    }

    /// Rows found.
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// Widens this finding by another of the same indicator and device.
    pub(crate) fn absorb(&mut self, other: Found) {
        self.first_ns = self.first_ns.min(other.first_ns).or(other.first_ns);
        self.last_ns = self.last_ns.max(other.last_ns);
        self.events += other.events;
    }

    /// Whether the finding calls for anything: an alert, or a remediation.
    pub(crate) fn acts(&self) -> bool {
        self.hit.entry.generate_alert || self.remediates()
    }

    /// A file blocked with remediation: the file is quarantined wherever it is seen.
    fn remediates(&self) -> bool {
        self.hit.entry.action == IndicatorAction::BlockAndRemediate
            && matches!(
                self.hit.entry.kind,
                IndicatorType::FileSha256
                    | IndicatorType::FileSha1
                    | IndicatorType::FileMd5
                    | IndicatorType::CertificateThumbprint
            )
    }

    pub(crate) fn retrospective(mut self) -> Found {
        self.retrospective = true;
        self
    }
}

/// `first` and every match already waiting behind it, one per indicator and device (in the
/// order first seen), each spanning the rows of all it absorbed. While the store takes one
/// alert, a hot indicator matches again in every batch from its device; raising each match
/// would cost a store transaction apiece for one alert's count and times, and the queue would
/// fill and drop matches.
fn coalesce(first: Found, rx: &mut mpsc::Receiver<Found>) -> Vec<Found> {
    let mut merged: Vec<Found> = vec![first];
    let key = |f: &Found| (f.tenant, f.indicator(), f.device_id.clone());
    let mut at: HashMap<(TenantId, u64, String), usize> = HashMap::new();
    at.insert(key(&merged[0]), 0);
    while let Ok(f) = rx.try_recv() {
        match at.entry(key(&f)) {
            std::collections::hash_map::Entry::Occupied(e) => merged[*e.get()].absorb(f),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(merged.len());
                merged.push(f);
            }
        }
    }
    merged
}

impl IndicatorMatcher {
    /// A matcher reading indicators from `store`; new and changed alerting indicators are
    /// searched for in `events` as far back as `lookback` (zero: never).
    pub fn new(store: Arc<dyn Store>, events: EventStore, lookback: Duration) -> IndicatorMatcher {
        IndicatorMatcher {
            index: Arc::new(IndicatorIndex::new()),
            store,
            events,
            lookback,
            groups: Mutex::new(HashMap::new()),
            queue: OnceLock::new(),
            retro: OnceLock::new(),
            sync: Mutex::default(),
            published: watch::Sender::new(Arc::default()),
            changed_here: Notify::new(),
            relay: OnceLock::new(),
            sync_every: SYNC_EVERY,
            scratch: Mutex::default(),
        }
    }

    /// Reads the store's indicator generations every `every` instead of every second.
    pub fn with_sync_every(mut self, every: Duration) -> IndicatorMatcher {
        self.sync_every = every.max(Duration::from_millis(10));
        self
    }

    /// Passes each tenant this server changes the indicators of on to `relay` from now on;
    /// `false` when one is set already (it stays). It must not block.
    pub fn set_relay(&self, relay: Box<dyn Fn(TenantId) + Send + Sync>) -> bool {
        self.relay.set(relay).is_ok()
    }

    /// Reads the store's indicator generations now rather than at the next look: another
    /// server said it changed some.
    pub fn look_now(&self) {
        self.changed_here.notify_one();
    }

    pub(crate) fn events(&self) -> &EventStore {
        &self.events
    }

    /// How far back new and changed indicators are searched for.
    pub fn lookback(&self) -> Duration {
        self.lookback
    }

    /// The tenants' indicator generations, changing as the store's do: at once for changes
    /// made through this server, within a second for those made through another (empty until
    /// [`IndicatorMatcher::start`]).
    pub fn generations(&self) -> watch::Receiver<Arc<HashMap<TenantId, i64>>> {
        self.published.subscribe()
    }

    fn publish(&self, generations: &[(TenantId, i64)]) {
        let fresh: HashMap<TenantId, i64> = generations.iter().copied().collect();
        self.published.send_if_modified(|current| {
            let moved = **current != fresh;
            if moved {
                *current = Arc::new(fresh);
            }
            moved
        });
    }

    /// The index, for lookups outside ingestion.
    pub fn index(&self) -> &Arc<IndicatorIndex> {
        &self.index
    }

    /// Loads every tenant's indicators and starts the tasks that raise alerts, run retro-hunts
    /// and follow changes made through other servers sharing the store: every second the
    /// tenants' indicator generations are read, and a tenant whose generation moved further
    /// than this server's own changes explain is reloaded in the background (readers go on
    /// with the old snapshot until the new one is installed). Returns the number loaded.
    pub async fn start(self: &Arc<Self>) -> Result<usize, StoreError> {
        // Read before loading: a change made while loading shows as a newer generation.
        let generations = self.store.indicator_generations().await?;
        self.publish(&generations);
        lock(&self.sync).seen = generations.into_iter().collect();
        let loaded = self.load().await?;
        let (tx, mut rx) = mpsc::channel::<Found>(QUEUE);
        if self.queue.set(tx).is_ok() {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                while let Some(found) = rx.recv().await {
                    for found in coalesce(found, &mut rx) {
                        if let Err(e) = me.raise(found).await {
                            tracing::error!("indicator alert not raised: {e}");
                        }
                    }
                }
            });
            tokio::spawn(Arc::clone(self).follow_store());
        }
        let (tx, rx) = mpsc::channel(RETRO_QUEUE);
        if !self.lookback.is_zero() && self.retro.set(tx).is_ok() {
            tokio::spawn(Arc::clone(self).retrohunt_changes(rx));
        }
        Ok(loaded)
    }

    /// Reloads the tenants whose indicators changed through someone else.
    async fn follow_store(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.sync_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.changed_here.notified() => {}
            }
            let generations = match self.store.indicator_generations().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!("indicator generations not read: {e}");
                    continue;
                }
            };
            self.publish(&generations);
            let mut stale = Vec::new();
            {
                let mut sync = lock(&self.sync);
                for (tenant, generation) in generations {
                    let before = sync.seen.insert(tenant, generation).unwrap_or(0);
                    // The store knows which generations it wrote itself, from before each
                    // commit: no change of this server's looks foreign while it is on its way
                    // to `apply`.
                    if self
                        .store
                        .indicators_changed_elsewhere(tenant, before, generation)
                    {
                        stale.push(tenant);
                    }
                }
            }
            for tenant in stale {
                lock(&self.sync).reloading.insert(tenant, Vec::new());
                let loaded = self.load_tenant(tenant).await;
                let missed = lock(&self.sync)
                    .reloading
                    .remove(&tenant)
                    .unwrap_or_default();
                match loaded {
                    Ok(n) => {
                        tracing::info!(%tenant, indicators = n, "indicators reloaded: changed through another server");
                        if !missed.is_empty() {
                            self.index.apply(tenant, &missed);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%tenant, "indicators not reloaded: {e}");
                        // Try again next time.
                        lock(&self.sync).seen.remove(&tenant);
                    }
                }
            }
        }
    }

    /// Runs the retro-hunts of changed indicators, gathering those that arrive together into
    /// one hunt per tenant.
    async fn retrohunt_changes(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<(TenantId, Box<Indicator>)>,
    ) {
        while let Some(first) = rx.recv().await {
            let mut pending: HashMap<TenantId, Vec<Indicator>> = HashMap::new();
            pending.entry(first.0).or_default().push(*first.1);
            let until = tokio::time::Instant::now() + RETRO_GATHER;
            while let Ok(Some((tenant, i))) = tokio::time::timeout_at(until, rx.recv()).await {
                pending.entry(tenant).or_default().push(*i);
            }
            for (tenant, mut indicators) in pending {
                // The last change of an indicator is the one to hunt for.
                indicators.reverse();
                let mut seen = HashSet::new();
                indicators.retain(|i| seen.insert(i.id.clone()));
                for chunk in indicators.chunks(RETRO_BATCH) {
                    match self.retrohunt(tenant, chunk, self.lookback).await {
                        Ok(r) => tracing::info!(
                            %tenant,
                            indicators = chunk.len(),
                            rows_checked = r.rows_checked,
                            hits = r.hits.len(),
                            elapsed_ms = r.elapsed_ms,
                            "retro-hunt done"
                        ),
                        Err(e) => tracing::error!(%tenant, "retro-hunt failed: {e}"),
                    }
                }
            }
        }
    }

    /// Reads every tenant's indicators from the store into the index.
    pub async fn load(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        for tenant in self.store.list_tenants().await? {
            total += self.load_tenant(tenant.id).await?;
        }
        Ok(total)
    }

    /// Reads one tenant's indicators from the store into the index. Each page read goes into
    /// the table at once, so loading holds one page of whole indicators, not all of them
    /// (10 million of those would be gigabytes, against the table's ~100 bytes each).
    async fn load_tenant(&self, tenant: TenantId) -> Result<usize, StoreError> {
        let mut table = rampart_ioc::Table::default();
        let mut read = 0;
        let mut after = 0;
        loop {
            let page = self
                .store
                .indicators_after(tenant, after, LOAD_PAGE)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            read += page.len();
            for (_, indicator) in &page {
                if let Err(e) = table.add(indicator) {
                    tracing::warn!(%tenant, "indicator left out of matching: {e}");
                }
            }
        }
        self.index.install(tenant, table);
        Ok(read)
    }

    /// Applies submitted or deleted indicators to the matcher at once, and queues a retro-hunt
    /// for those that alert.
    pub fn apply(&self, tenant: TenantId, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        for e in self.index.apply(tenant, changes) {
            tracing::warn!(%tenant, "indicator left out of matching: {e}");
        }
        {
            let mut sync = lock(&self.sync);
            if let Some(missed) = sync.reloading.get_mut(&tenant) {
                missed.extend_from_slice(changes);
            }
        }
        self.changed_here.notify_one();
        if let Some(relay) = self.relay.get() {
            relay(tenant);
        }
        let Some(retro) = self.retro.get() else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        for change in changes {
            if let Change::Upsert(i) = change
                && crate::retrohunt::hunted_on_change(i, now)
                && retro.try_send((tenant, i.clone())).is_err()
            {
                tracing::warn!(%tenant, id = %i.id, "retro-hunt skipped: too many are waiting");
            }
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
        let mut found = HashMap::new();
        self.find(tenant, &snapshot, tables, None, &mut found).await;
        for f in found.into_values().filter(Found::acts) {
            if let Err(e) = queue.try_send(f) {
                tracing::warn!("indicator match dropped, the alert queue is full: {e}");
            }
        }
    }

    /// Adds to `found` the indicators (of `only`, when given) that decide on rows of `tables`,
    /// one finding per indicator and device spanning the rows' times.
    pub(crate) async fn find(
        &self,
        tenant: TenantId,
        snapshot: &Snapshot,
        tables: &[(&Table, RecordBatch)],
        only: Option<&HashSet<u64>>,
        found: &mut HashMap<(u64, String), Found>,
    ) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut scratch = lock(&self.scratch).pop().unwrap_or_default();
        // Device groups of this call's devices (a batch is mostly one device's).
        let mut groups: HashMap<String, Option<(String, String)>> = HashMap::new();
        let wanted = |hit: &Hit| only.is_none_or(|ids| ids.contains(&hit.entry.id));
        for (table, batch) in tables {
            let rows = Rows::of(table, batch);
            if !rows.checked() {
                continue;
            }
            let mut ids: Vec<Option<&str>> = take(&mut scratch.device_ids);
            ids.extend((0..batch.num_rows()).map(|row| rows.text(rows.device_id, row)));
            for id in ids.iter().flatten() {
                if !groups.contains_key(*id) {
                    let g = self.group(tenant, id).await;
                    groups.insert((*id).to_owned(), g);
                }
            }
            let mut devices: Vec<Device<'_>> = take(&mut scratch.devices);
            devices.extend(ids.iter().map(|id| {
                let group = id.and_then(|id| groups.get(id)).and_then(Option::as_ref);
                Device {
                    group_id: group.map(|g| g.0.as_str()),
                    group_name: group.map(|g| g.1.as_str()),
                }
            }));
            // Rows without a device are not matched: there is nothing to alert on.
            let text = |c, row: usize| ids[row].and_then(|_| rows.text(c, row));
            // Each set of columns is matched for the whole batch at once (see
            // `Snapshot::match_files`).
            let hits = &mut scratch.hits;
            for file in &rows.files {
                let mut obs: Vec<FileObservation<'_>> = take(&mut scratch.files);
                obs.extend((0..ids.len()).map(|row| FileObservation {
                    sha256: text(file[0], row),
                    sha1: text(file[1], row),
                    md5: text(file[2], row),
                    cert_thumbprint: text(file[3], row),
                }));
                hits.clear();
                snapshot.match_files(&obs, &devices, now, hits, &mut scratch.matching);
                for (row, hit) in hits.drain(..) {
                    let Some(device_id) = ids[row].filter(|_| wanted(&hit)) else {
                        continue;
                    };
                    let observed = hit.value.clone();
                    let seen = Seen {
                        value: &observed,
                        file_sha1: obs[row].sha1,
                    };
                    rows.record(found, tenant, hit, device_id, row, seen);
                }
                scratch.files = recycle(obs);
            }
            for (ip, url) in &rows.networks {
                let mut ip_texts: Vec<Option<&str>> = take(&mut scratch.ip_texts);
                ip_texts.extend((0..ids.len()).map(|row| text(*ip, row)));
                let mut obs: Vec<NetworkObservation<'_>> = take(&mut scratch.nets);
                obs.extend((0..ids.len()).map(|row| NetworkObservation {
                    ip: ip_texts[row].and_then(|s| s.parse::<IpAddr>().ok()),
                    url: text(*url, row),
                }));
                hits.clear();
                snapshot.match_networks(&obs, &devices, now, hits, &mut scratch.matching);
                for (row, hit) in hits.drain(..) {
                    let Some(device_id) = ids[row].filter(|_| wanted(&hit)) else {
                        continue;
                    };
                    let observed = match hit.entry.kind {
                        IndicatorType::IpAddress => ip_texts[row],
                        _ => obs[row].url,
                    }
                    .unwrap_or_default()
                    .to_owned();
                    let seen = Seen {
                        value: &observed,
                        file_sha1: None,
                    };
                    rows.record(found, tenant, hit, device_id, row, seen);
                }
                scratch.ip_texts = recycle(ip_texts);
                scratch.nets = recycle(obs);
            }
            scratch.devices = recycle(devices);
            scratch.device_ids = recycle(ids);
        }
        scratch.trim();
        lock(&self.scratch).push(scratch);
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

    /// Acts on one match: raises (or widens) its alert when the indicator generates alerts,
    /// and quarantines the file when it blocks with remediation. Returns the alert's id, if any.
    pub(crate) async fn raise(&self, f: Found) -> Result<Option<String>, StoreError> {
        let id = f.hit.entry.id.to_string();
        let Some(indicator) = self.store.get_indicator(f.tenant, &id).await? else {
            return Ok(None); // deleted meanwhile
        };
        let machine = self.store.get_machine(f.tenant, &f.device_id).await?;
        let ctx = AuditContext::system(&format!("indicator:{id}"));
        let quarantine = f.remediates().then(|| f.evidence.sha1.clone()).flatten();
        let machine_id = machine.as_ref().map(|m| m.id.clone());
        let tenant = f.tenant;
        let alert_id = match indicator.generate_alert {
            true => Some(self.alert(&ctx, f, &indicator, machine).await?),
            false => None,
        };
        match (quarantine, machine_id) {
            (Some(sha1), Some(machine_id)) => {
                self.quarantine(&ctx, tenant, &indicator, machine_id, sha1, alert_id.clone())
                    .await;
            }
            (None, Some(_)) if indicator.action == IndicatorAction::BlockAndRemediate => {
                tracing::warn!(indicator = %id, "file not quarantined: the row gave no SHA-1 to act on");
            }
            _ => {}
        }
        Ok(alert_id)
    }

    /// Submits the quarantine of a file blocked with remediation; a quarantine already open
    /// for it on the device is answered instead of a second one.
    async fn quarantine(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        indicator: &Indicator,
        machine_id: String,
        sha1: String,
        alert_id: Option<String>,
    ) {
        let comment = format!(
            "Indicator {} ({}) blocks this file with remediation",
            indicator.id, indicator.title
        );
        let request = match ActionRequest::new(
            MachineActionRequest::StopAndQuarantineFile { sha1 },
            Some(comment),
            alert_id,
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(indicator = %indicator.id, "quarantine refused: {}", e.message);
                return;
            }
        };
        let submission = ActionSubmission {
            machine_id,
            request,
            requestor: format!("{DETECTION_SOURCE}:{}", indicator.id),
            request_source: Some("Indicator".into()),
            idempotency: None,
        };
        if let Err(e) = self
            .store
            .submit_machine_action(ctx, tenant, &submission)
            .await
        {
            tracing::warn!(indicator = %indicator.id, "quarantine not submitted: {e}");
        }
    }

    /// Raises or widens the alert of one match; returns its id.
    async fn alert(
        &self,
        ctx: &AuditContext,
        f: Found,
        indicator: &Indicator,
        machine: Option<rampart_core::machine::Machine>,
    ) -> Result<String, StoreError> {
        let id = indicator.id.clone();
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
        if f.retrospective {
            description.push_str(&format!(
                "\n\nRetrospective: found by a retro-hunt of stored telemetry on {}.",
                rampart_core::timefmt::format(now)
            ));
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
            event_count: Some(f.events),
            evidence: vec![f.evidence],
        };
        let (alert, created) = self.store.import_alert(ctx, f.tenant, alert).await?;
        if created {
            crate::alert_rows::write(&self.events, f.tenant, &alert).await;
        }
        Ok(alert.id)
    }
}

/// What a row showed of a matched entity: the value as written, and for a file its SHA-1 (what
/// a quarantine names).
#[derive(Clone, Copy)]
struct Seen<'a> {
    value: &'a str,
    file_sha1: Option<&'a str>,
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
        seen: Seen<'_>,
    ) {
        if hit.entry.action == IndicatorAction::Allowed {
            return;
        }
        let at = self
            .timestamp
            .and_then(|t| (!t.is_null(row)).then(|| t.value(row)));
        let key = (hit.entry.id, device_id.to_owned());
        if let Some(f) = found.get_mut(&key) {
            f.first_ns = f.first_ns.min(at).or(at);
            f.last_ns = f.last_ns.max(at);
            f.events += 1;
            return;
        }
        let evidence = self.evidence(&hit, row, seen);
        found.insert(
            key,
            Found {
                tenant,
                hit,
                device_id: device_id.to_owned(),
                device_name: self.text(self.device_name, row).map(Into::into),
                first_ns: at,
                last_ns: at,
                events: 1,
                evidence,
                retrospective: false,
            },
        );
    }

    /// The matched entity (as the row had it) as alert evidence, with the row's file, process
    /// and user.
    fn evidence(&self, hit: &Hit, row: usize, seen: Seen<'_>) -> Evidence {
        let (observed, file_sha1) = (seen.value, seen.file_sha1);
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
                e.sha1 = file_sha1.map(Into::into);
            }
            IndicatorType::FileSha1 => {
                e.entity_type = "File".into();
                e.sha1 = Some(observed.into());
            }
            // The signed file: what a remediation quarantines.
            IndicatorType::CertificateThumbprint | IndicatorType::FileMd5 => {
                e.entity_type = "File".into();
                e.sha1 = file_sha1.map(Into::into);
            }
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
