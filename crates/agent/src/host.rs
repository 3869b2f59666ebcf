//! The host as DeviceInfo describes it: name, distribution and version from os-release,
//! architecture, agent version, which process sensor runs, and who is logged on (utmp); and
//! [`ChangeReporter`], which says when such a description is to be reported again.

use rampart_core::timefmt::format as rfc3339;
use rampart_proto::telemetry::Row;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Where the sessions now open are listed.
pub const UTMP: &str = "/run/utmp";

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

/// The users with a session open in the utmp file `path`: its `USER_PROCESS` records whose
/// process still runs (a session that crashed leaves its record behind), sorted, each once.
/// Empty when the file cannot be read.
pub fn logged_on_users(path: &Path) -> Vec<String> {
    const USER_PROCESS: i16 = 7;
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let mut users: Vec<String> = data
        .chunks_exact(crate::logons::UTMP_SIZE)
        .filter(|r| i16::from_ne_bytes([r[0], r[1]]) == USER_PROCESS)
        .filter(|r| {
            let pid = i32::from_ne_bytes([r[4], r[5], r[6], r[7]]);
            pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
        })
        .map(|r| {
            let name = &r[44..76];
            let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            String::from_utf8_lossy(&name[..end]).into_owned()
        })
        .filter(|u| !u.is_empty())
        .collect();
    users.sort();
    users.dedup();
    users
}

/// What the DeviceInfo row reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_id: Option<String>,
    pub device_name: String,
    pub os_release: HashMap<String, String>,
    /// The process sensor's source.
    pub process_source: String,
    /// The users logged on (see [`logged_on_users`]).
    pub logged_on_users: Vec<String>,
}

impl DeviceInfo {
    /// The host as it is now; sessions from the utmp file `utmp`.
    pub fn read(device_id: Option<String>, process_source: &str, utmp: &Path) -> DeviceInfo {
        DeviceInfo {
            device_id,
            device_name: hostname(),
            os_release: os_release(),
            process_source: process_source.to_owned(),
            logged_on_users: logged_on_users(utmp),
        }
    }

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
        let users: Vec<Value> = self
            .logged_on_users
            .iter()
            .map(|u| json!({ "UserName": u }))
            .collect();
        r.insert(
            "LoggedOnUsers".into(),
            Value::String(Value::Array(users).to_string()),
        );
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

/// Says when a description of the host (DeviceInfo, the network adapters) is reported: the
/// first time, whenever it differs from the one last reported, and when `every` has passed
/// since then.
pub struct ChangeReporter<T> {
    every: Duration,
    last: Option<(Instant, T)>,
}

impl<T: PartialEq + Clone> ChangeReporter<T> {
    pub fn new(every: Duration) -> ChangeReporter<T> {
        ChangeReporter { every, last: None }
    }

    /// Whether `current` is to be reported now; if so, it is taken as reported.
    pub fn due(&mut self, current: &T) -> bool {
        let due = match &self.last {
            None => true,
            Some((at, before)) => before != current || at.elapsed() >= self.every,
        };
        if due {
            self.last = Some((Instant::now(), current.clone()));
        }
        due
    }
}
