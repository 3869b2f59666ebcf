//! The host as DeviceInfo describes it: name, distribution and version from os-release,
//! architecture, agent version, and which process sensor runs.

use rampart_core::timefmt::format as rfc3339;
use rampart_proto::telemetry::Row;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use time::OffsetDateTime;

/// The host name (`/proc/sys/kernel/hostname`), `localhost` when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The key/value pairs of an os-release file (quotes removed).
pub fn parse_os_release(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.replace("\\\"", "\"")))
        })
        .collect()
}

/// `/etc/os-release`, else `/usr/lib/os-release` (where the standard says to look).
pub fn os_release() -> HashMap<String, String> {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(Path::new(p)).ok())
        .map(|t| parse_os_release(&t))
        .unwrap_or_default()
}

/// MDE's `OSArchitecture` words for the machine's word size.
pub fn os_architecture() -> &'static str {
    if cfg!(target_pointer_width = "64") {
        "64-bit"
    } else {
        "32-bit"
    }
}

/// What the DeviceInfo row reports.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub device_id: Option<String>,
    pub device_name: String,
    pub os_release: HashMap<String, String>,
    /// The process sensor's source.
    pub process_source: String,
}

impl DeviceInfo {
    /// The row, stamped `time`.
    pub fn row(&self, time: OffsetDateTime) -> Row {
        let mut r = Row::new();
        r.insert("Timestamp".into(), json!(rfc3339(time)));
        if let Some(id) = &self.device_id {
            r.insert("DeviceId".into(), json!(id));
        }
        r.insert("DeviceName".into(), json!(self.device_name));
        r.insert("OSPlatform".into(), json!("Linux"));
        let distribution = self
            .os_release
            .get("NAME")
            .or_else(|| self.os_release.get("ID"));
        if let Some(d) = distribution {
            r.insert("OSDistribution".into(), json!(d));
        }
        if let Some(v) = self.os_release.get("VERSION_ID") {
            r.insert("OSVersion".into(), json!(v));
        }
        if let Some(v) = self.os_release.get("PRETTY_NAME") {
            r.insert("OSVersionInfo".into(), json!(v));
        }
        r.insert("OSArchitecture".into(), json!(os_architecture()));
        r.insert("ClientVersion".into(), json!(crate::VERSION));
        r.insert("OnboardingStatus".into(), json!("Onboarded"));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let extra = json!({
            "KernelRelease": kernel,
            "MachineArchitecture": std::env::consts::ARCH,
            "ProcessSensor": self.process_source,
        });
        r.insert("AdditionalFields".into(), Value::String(extra.to_string()));
        r
    }
}
