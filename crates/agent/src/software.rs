//! The installed-software sensor: the packages dpkg or rpm has installed →
//! `DeviceTvmSoftwareInventory`, the current-state table the vulnerability work reads.
//!
//! The table has no history: each report is the device's whole inventory and replaces the one
//! before it on the server. So a report is never split across batches (the batcher would cut it
//! at its row limit): it goes to the spool as one batch of its own. It is sent at start, when
//! the package database changes (its file's size or modification time, checked every minute),
//! and daily.
//!
//! dpkg's database is read directly (`/var/lib/dpkg/status`: every stanza whose `Status` ends in
//! `installed`); rpm's through `rpm -qa`, as its database format is rpm's own business.

use crate::host::{DeviceInfo, os_architecture};
use crate::spool::Spool;
use rampart_core::schema::DEVICE_TVM_SOFTWARE_INVENTORY;
use rampart_proto::telemetry::{Row, TelemetryBatch};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// rpm's database: the sqlite file of current rpm, the Berkeley DB directory of older ones.
const RPM_DATABASES: &[&str] = &["/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages"];
/// How often the package database is looked at for a change.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// A report is sent at least this often, changed or not.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// `rpm -qa` is given this long.
const RPM_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of `rpm -qa`'s list kept (a host with 10,000 packages prints under 1 MiB).
const RPM_MAX_BYTES: u64 = 64 << 20;

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// The package's origin where its manager records one, else the distribution's id.
    pub vendor: Option<String>,
}

/// Which package manager a host has, and the file whose change means a package changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackageDatabase {
    Dpkg(PathBuf),
    Rpm(PathBuf),
}

impl PackageDatabase {
    /// dpkg's or rpm's database on this host, if either is there.
    pub fn find() -> Option<PackageDatabase> {
        if Path::new(DPKG_STATUS).is_file() {
            return Some(PackageDatabase::Dpkg(DPKG_STATUS.into()));
        }
        RPM_DATABASES
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .map(|p| PackageDatabase::Rpm(p.to_owned()))
    }

    fn path(&self) -> &Path {
        match self {
            PackageDatabase::Dpkg(p) | PackageDatabase::Rpm(p) => p,
        }
    }

    /// What changes when a package is installed, upgraded or removed: the database file's size
    /// and modification time.
    pub fn fingerprint(&self) -> Option<(u64, SystemTime)> {
        let m = std::fs::metadata(self.path()).ok()?;
        Some((m.len(), m.modified().ok()?))
    }

    /// The installed packages, sorted by name and version.
    pub fn installed(&self) -> std::io::Result<Vec<Package>> {
        let mut out = match self {
            PackageDatabase::Dpkg(p) => parse_dpkg_status(&std::fs::read_to_string(p)?),
            // rpm lists nothing, and succeeds, for a database that is not there.
            PackageDatabase::Rpm(p) if !p.exists() => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} is gone", p.display()),
                ));
            }
            PackageDatabase::Rpm(p) => parse_rpm_query(&rpm_query(p)?),
        };
        out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        out.dedup();
        Ok(out)
    }
}

/// The installed packages of a dpkg status file. A stanza's fields are `Name: value` lines
/// (a line starting with a space continues the one before); stanzas are separated by blank
/// lines. Only packages whose `Status` says `installed` count: removed ones whose configuration
/// files remain (`deinstall ok config-files`) and half-installed ones do not.
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for line in stanza.lines() {
            if line.starts_with([' ', '\t']) {
                continue; // a continuation (Description, Conffiles): nothing we report
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.trim(), v.trim());
            }
        }
        let installed = fields
            .get("Status")
            .is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"));
        let (Some(name), Some(version)) = (fields.get("Package"), fields.get("Version")) else {
            continue;
        };
        if !installed || name.is_empty() {
            continue;
        }
        out.push(Package {
            name: (*name).to_owned(),
            version: (*version).to_owned(),
            vendor: fields
                .get("Origin")
                .filter(|o| !o.is_empty())
                .map(|o| o.to_ascii_lowercase()),
        });
    }
    out
}

/// The format `rpm_query` asks rpm for: name, version-release, vendor, tab-separated.
const RPM_FORMAT: &str = "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\n";

/// The packages of `rpm -qa` output in [`RPM_FORMAT`] (rpm writes `(none)` for no vendor).
pub fn parse_rpm_query(text: &str) -> Vec<Package> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            let name = parts.next()?.trim();
            let version = parts.next()?.trim();
            let vendor = parts.next().map(str::trim).unwrap_or_default();
            // gpg-pubkey entries are the keys rpm trusts, not software.
            if name.is_empty() || name == "gpg-pubkey" {
                return None;
            }
            Some(Package {
                name: name.to_owned(),
                version: version.to_owned(),
                vendor: (!vendor.is_empty() && vendor != "(none)").then(|| vendor.to_owned()),
            })
        })
        .collect()
}

/// `rpm -qa`'s list of the database `db` (a file in rpm's database directory). A list cut
/// short (rpm hung on a locked database, or printed more than any host has) is an error, not
/// a report: a report replaces the last one whole.
fn rpm_query(db: &Path) -> std::io::Result<String> {
    let dir = db.parent().and_then(Path::to_str).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not in a directory rpm can be given", db.display()),
        )
    })?;
    let out = crate::program::run(
        "rpm",
        &["--dbpath", dir, "-qa", "--qf", RPM_FORMAT],
        RPM_TIMEOUT,
        RPM_MAX_BYTES,
    )?
    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "rpm is not installed"))?;
    if out.timed_out {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "rpm -qa took too long",
        ));
    }
    if out.truncated {
        return Err(std::io::Error::other(format!(
            "rpm -qa printed more than {RPM_MAX_BYTES} bytes"
        )));
    }
    if !out.success {
        return Err(std::io::Error::other(format!(
            "rpm --dbpath {dir} -qa failed (run it to see why)"
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `DeviceTvmSoftwareInventory` rows of `packages` on the device `info` describes.
pub fn rows(info: &DeviceInfo, packages: &[Package]) -> Vec<Row> {
    let distribution = info.os_release.get("ID").map(|s| s.to_ascii_lowercase());
    let mut device = Row::new();
    if let Some(id) = &info.device_id {
        device.insert("DeviceId".into(), json!(id));
    }
    device.insert("DeviceName".into(), json!(info.device_name));
    device.insert("OSPlatform".into(), json!("Linux"));
    if let Some(v) = info.os_release.get("VERSION_ID") {
        device.insert("OSVersion".into(), json!(v));
    }
    device.insert("OSArchitecture".into(), json!(os_architecture()));
    packages
        .iter()
        .map(|p| {
            let mut r = device.clone();
            let vendor = p.vendor.clone().or_else(|| distribution.clone());
            r.insert(
                "SoftwareVendor".into(),
                vendor.map_or(Value::Null, Value::String),
            );
            r.insert("SoftwareName".into(), json!(p.name));
            r.insert("SoftwareVersion".into(), json!(p.version));
            // No lifecycle data on the device; the CPE is not known either (MDE's own
            // placeholder for that is this text).
            r.insert("ProductCodeCpe".into(), json!("not available"));
            r
        })
        .collect()
}

/// The batch that carries one report: the device's whole inventory, in one table.
pub fn report(rows: Vec<Row>) -> TelemetryBatch {
    TelemetryBatch {
        batch_id: uuid::Uuid::new_v4().to_string(),
        tables: BTreeMap::from([(DEVICE_TVM_SOFTWARE_INVENTORY.name.to_owned(), rows)]),
    }
}

/// Reports the installed software at start, whenever the package database changes, and daily,
/// until the task is aborted. A host with neither dpkg nor rpm reports nothing, and says so.
pub async fn run(info: DeviceInfo, spool: Arc<Spool>, wake: Arc<Notify>) {
    let Some(db) = PackageDatabase::find() else {
        tracing::info!("no dpkg or rpm database here: installed software is not reported");
        return;
    };
    // The database's fingerprint at the last report, and when that was.
    let mut last: Option<(Option<(u64, SystemTime)>, tokio::time::Instant)> = None;
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    loop {
        tick.tick().await;
        let fingerprint = db.fingerprint();
        let due = last
            .as_ref()
            .is_none_or(|(f, at)| *f != fingerprint || at.elapsed() >= REPORT_INTERVAL);
        if !due {
            continue;
        }
        let (db, info, spool) = (db.clone(), info.clone(), Arc::clone(&spool));
        let reported = tokio::task::spawn_blocking(move || -> Result<usize, String> {
            let packages = db.installed().map_err(|e| e.to_string())?;
            spool
                .push(&report(rows(&info, &packages)))
                .map_err(|e| e.to_string())?;
            Ok(packages.len())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match reported {
            Ok(packages) => {
                tracing::info!(packages, "installed software reported");
                wake.notify_one();
                last = Some((fingerprint, tokio::time::Instant::now()));
            }
            // Tried again at the next check: a package manager holding its database is brief.
            Err(e) => tracing::warn!("reporting the installed software: {e}"),
        }
    }
}
