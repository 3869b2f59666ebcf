//! The indicator sync: the tenant's indicators this device enforces itself, fetched from
//! `GET /agent/v1/indicators` (answered 304 while unchanged) and handed to the exec guard —
//! blocked file hashes may not run, allowed ones always may — and to the firewall.
//!
//! The last set is kept in `indicators.json`, so that after a restart the device enforces it at
//! once, before (or without) reaching the server. Address indicators go to the firewall
//! ([`crate::netblock`]).

use crate::client::ServerClient;
use crate::commands::restrict::ExecControl;
use crate::fsutil::{read_json_or_default, write_json};
use crate::netblock::AddressBlock;
use crate::process::hashes::Hashes;
use crate::scan::Scanner;
use rampart_proto::enforcement::{Enforcement, EnforcementSet};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// File-hash indicators (lower-case hex of any algorithm; the lengths tell them apart) →
/// action, indicator id and title: what the exec guard and the antivirus scanner decide with.
pub type HashRules = HashMap<String, (Enforcement, String, String)>;

/// The file-hash rules of an indicator set.
pub fn hash_rules(set: &EnforcementSet) -> HashRules {
    set.files
        .iter()
        .map(|f| {
            (
                f.hash.to_ascii_lowercase(),
                (f.action, f.indicator_id.clone(), f.title.clone()),
            )
        })
        .collect()
}

/// What the hash rules say of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashVerdict<'a> {
    /// No rule names any of its hashes.
    Unknown,
    /// An `Allowed` indicator names one: it wins over any block.
    Allowed,
    /// A blocking indicator names one (and none allows it).
    Blocked { id: &'a str, title: &'a str },
}

/// The verdict of `rules` on a file with hashes `h`.
pub fn hash_verdict<'a>(rules: &'a HashRules, h: &Hashes) -> HashVerdict<'a> {
    let mut verdict = HashVerdict::Unknown;
    for digest in [&h.sha256, &h.sha1, &h.md5] {
        match rules.get(digest.as_str()) {
            Some((Enforcement::Allow, _, _)) => return HashVerdict::Allowed,
            Some((Enforcement::Block, id, title)) if verdict == HashVerdict::Unknown => {
                verdict = HashVerdict::Blocked { id, title };
            }
            _ => {}
        }
    }
    verdict
}

pub struct IndicatorSync {
    pub client: ServerClient,
    /// `Device <id>:<secret>`.
    pub authorization: String,
    pub state_dir: PathBuf,
    pub exec: Arc<ExecControl>,
    /// Takes the blocked hashes and the YARA rules for antivirus scans.
    pub scanner: Arc<Scanner>,
    pub addresses: AddressBlock,
    /// Time between two asks.
    pub interval: Duration,
    /// Rung by the command channel when the server says the tenant's indicators changed: ask
    /// at once.
    pub changed: Arc<Notify>,
    /// Set when the device is being offboarded: nothing is enforced any more.
    pub offboarded: Arc<AtomicBool>,
}

fn saved_path(state_dir: &Path) -> PathBuf {
    state_dir.join("indicators.json")
}

impl IndicatorSync {
    /// Enforces the saved set, then keeps it current until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut etag = None;
        let mut current = None;
        match read_json_or_default::<Option<EnforcementSet>>(&saved_path(&self.state_dir)) {
            Ok(Some(set)) => {
                etag = Some(format!("\"{}\"", set.version));
                self.apply(&set).await;
                current = Some(set);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("the saved indicator set: {e}"),
        }
        while !*shutdown.borrow() {
            match self
                .client
                .indicators(&self.authorization, etag.as_deref())
                .await
            {
                Ok(Some((set, tag))) => {
                    if let Err(e) = write_json(&saved_path(&self.state_dir), &Some(&set)) {
                        tracing::warn!("saving the indicator set: {e}");
                    }
                    self.apply(&set).await;
                    etag = Some(tag);
                    current = Some(set);
                }
                // Unchanged; but the addresses blocked domains resolve to may have moved.
                Ok(None) => {
                    if let Some(set) = current.as_ref().filter(|s| !s.domains.is_empty()) {
                        self.apply_addresses(set).await;
                    }
                }
                Err(e) => tracing::warn!("fetching the indicators to enforce: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.changed.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn apply(&self, set: &EnforcementSet) {
        if self.offboarded.load(Ordering::SeqCst) {
            return;
        }
        for e in self.scanner.set_signatures(set) {
            tracing::error!("antivirus signatures: {e}");
        }
        match self.exec.set_indicators(set).await {
            Ok(n) => tracing::info!(
                file_hashes = n,
                version = set.version,
                "enforcing indicators"
            ),
            Err(e) => tracing::error!("enforcing file-hash indicators: {e}"),
        }
        self.apply_addresses(set).await;
    }

    async fn apply_addresses(&self, set: &EnforcementSet) {
        if self.offboarded.load(Ordering::SeqCst) {
            return;
        }
        match self.addresses.apply(&set.networks, &set.domains).await {
            Ok(n) => tracing::info!(blocked_addresses = n, "address indicators in the firewall"),
            Err(e) => tracing::error!("enforcing address indicators: {e}"),
        }
    }
}
