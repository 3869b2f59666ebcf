//! `GET /agent/v1/indicators`: the tenant's indicators a device enforces itself — file hashes
//! that may not run (or always may), addresses it may not reach — as one set with a version.
//!
//! The agent sends the version it holds in `If-None-Match`; the server answers 304 while the
//! set is the same. The set is already filtered for the device: active (not expired), scoped to
//! its device group, and only the actions an endpoint enforces (`Block`/`BlockAndRemediate` as
//! [`Enforcement::Block`], `Allowed` as [`Enforcement::Allow`]). The tenant's YARA rules ride
//! along: antivirus scans look for them and for the blocked hashes.

use serde::{Deserialize, Serialize};

/// What the device does with a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Enforcement {
    Block,
    /// Wins over any block, and over a code-execution restriction.
    Allow,
}

/// A file hash's algorithm, as the indicator type names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Md5,
}

/// One file indicator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRule {
    pub algorithm: HashAlgorithm,
    /// Lower-case hex.
    pub hash: String,
    pub action: Enforcement,
    pub indicator_id: String,
    pub title: String,
}

/// One address indicator (an IP address or a CIDR network).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRule {
    pub value: String,
    pub action: Enforcement,
    pub indicator_id: String,
    pub title: String,
}

/// One domain indicator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainRule {
    /// Lower-case, without a trailing dot.
    pub domain: String,
    pub action: Enforcement,
    pub indicator_id: String,
    pub title: String,
}

/// The set a device enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnforcementSet {
    /// Changes whenever the content does (the `ETag`).
    pub version: String,
    pub files: Vec<FileRule>,
    pub networks: Vec<NetworkRule>,
    /// Domain indicators: the device resolves each and drops (or lets through) its addresses.
    /// Absent from the answers of servers older than the field.
    #[serde(default)]
    pub domains: Vec<DomainRule>,
    /// The tenant's YARA rules, which antivirus scans apply beside the file hashes. Absent
    /// from the answers of servers older than the field.
    #[serde(default)]
    pub yara_rules: Vec<YaraRuleSource>,
}

/// One YARA rule set as the server keeps it: its source, already checked to compile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct YaraRuleSource {
    pub id: String,
    pub name: String,
    pub source: String,
}
