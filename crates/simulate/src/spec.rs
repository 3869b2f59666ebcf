//! What to simulate: the fleet's size, the time window, the seed, and the attacks to inject.

use std::fmt;
use std::str::FromStr;

/// A fleet and a time window. The same spec always yields byte-identical telemetry.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetSpec {
    pub devices: usize,
    /// Length of the window in days (fractions allowed).
    pub days: f64,
    pub seed: u64,
    /// Window start, nanoseconds since the Unix epoch (UTC).
    pub start_ns: i64,
    pub scenarios: Vec<ScenarioSpec>,
}

impl FleetSpec {
    /// The window end (exclusive), in nanoseconds since the epoch.
    pub fn end_ns(&self) -> i64 {
        let len = (self.days.max(0.0) * crate::time::DAY as f64) as i64;
        self.start_ns.saturating_add(len)
    }
}

/// An attack story the generator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScenarioKind {
    /// Outlook → Word macro → encoded PowerShell → C2 beaconing.
    Phishing,
    /// LSASS dump, then lateral movement (PsExec or WMI) with a network logon on another device.
    CredentialTheft,
    /// Shadow-copy deletion, mass renames to a new extension, ransom notes.
    Ransomware,
    /// Linux SSH brute force, `curl | sh`, a coin miner talking to a pool, cron persistence.
    SshMiner,
}

impl ScenarioKind {
    pub const ALL: [ScenarioKind; 4] = [
        ScenarioKind::Phishing,
        ScenarioKind::CredentialTheft,
        ScenarioKind::Ransomware,
        ScenarioKind::SshMiner,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ScenarioKind::Phishing => "phishing",
            ScenarioKind::CredentialTheft => "credential-theft",
            ScenarioKind::Ransomware => "ransomware",
            ScenarioKind::SshMiner => "ssh-miner",
        }
    }

    /// "phishing, credential-theft, ransomware, ssh-miner", for messages.
    pub fn valid_names() -> String {
        ScenarioKind::ALL.map(ScenarioKind::name).join(", ")
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a scenario could not be parsed or placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("unknown scenario '{0}'; valid scenarios: {valid}", valid = ScenarioKind::valid_names())]
    UnknownScenario(String),
    #[error("empty device name in '{0}'; write NAME@DEVICE or just NAME")]
    EmptyDevice(String),
    #[error("scenario {scenario}: no device named '{device}' in the fleet")]
    UnknownDevice {
        scenario: ScenarioKind,
        device: String,
    },
    #[error("scenario {scenario} needs {needs}, and device '{device}' is not one")]
    WrongDevice {
        scenario: ScenarioKind,
        device: String,
        needs: &'static str,
    },
    #[error("scenario {scenario} needs {needs}, and the fleet has none")]
    NoSuitableDevice {
        scenario: ScenarioKind,
        needs: &'static str,
    },
}

impl FromStr for ScenarioKind {
    type Err = ScenarioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        ScenarioKind::ALL
            .into_iter()
            .find(|k| k.name() == key)
            .ok_or_else(|| ScenarioError::UnknownScenario(s.trim().to_owned()))
    }
}

/// One attack to inject: which, on which device (default: a deterministic pick of a suitable
/// one), and when (default: the middle of the window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioSpec {
    pub kind: ScenarioKind,
    /// Device name (the full `DeviceName` or its host part, case-insensitive) or DeviceId.
    pub device: Option<String>,
    pub at_ns: Option<i64>,
}

impl ScenarioSpec {
    pub fn new(kind: ScenarioKind) -> ScenarioSpec {
        ScenarioSpec {
            kind,
            device: None,
            at_ns: None,
        }
    }
}

/// `NAME` or `NAME@DEVICE`.
impl FromStr for ScenarioSpec {
    type Err = ScenarioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, device) = match s.split_once('@') {
            Some((n, d)) => {
                let d = d.trim();
                if d.is_empty() {
                    return Err(ScenarioError::EmptyDevice(s.to_owned()));
                }
                (n, Some(d.to_owned()))
            }
            None => (s, None),
        };
        Ok(ScenarioSpec {
            kind: name.parse()?,
            device,
            at_ns: None,
        })
    }
}

impl fmt::Display for ScenarioSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.device {
            Some(d) => write!(f, "{}@{d}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_specs_parse_and_errors_name_the_valid_ones() {
        let s: ScenarioSpec = "credential-theft@WKS-01".parse().unwrap();
        assert_eq!(s.kind, ScenarioKind::CredentialTheft);
        assert_eq!(s.device.as_deref(), Some("WKS-01"));
        assert_eq!(s.to_string(), "credential-theft@WKS-01");
        assert_eq!(
            "SSH_Miner".parse::<ScenarioKind>(),
            Ok(ScenarioKind::SshMiner)
        );
        let e = "phish".parse::<ScenarioSpec>().unwrap_err().to_string();
        assert!(
            e.contains("'phish'")
                && e.contains("phishing, credential-theft, ransomware, ssh-miner"),
            "{e}"
        );
        assert!(matches!(
            "ransomware@".parse::<ScenarioSpec>(),
            Err(ScenarioError::EmptyDevice(_))
        ));
        for k in ScenarioKind::ALL {
            assert_eq!(k.to_string().parse::<ScenarioKind>(), Ok(k));
        }
    }
}
