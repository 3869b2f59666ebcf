//! `Offboard`: the device leaves Rampart.
//!
//! Everything the agent enforces is lifted first — isolation, the code-execution restriction,
//! blocked hashes and addresses — so that an offboarded host is never left contained by an
//! agent that no longer runs. Then the credential is set aside (`credentials.json` becomes
//! `credentials.offboarded.json`), so no later start runs as this device; the agent keeps the
//! credential in memory just long enough to deliver the result, after which the server deletes
//! it and the agent stops (`run` returns [`crate::run::Ending::Offboarded`]).

use crate::commands::isolation::Isolation;
use crate::commands::restrict::ExecControl;
use crate::credentials::Credentials;
use crate::error::{Error, Result, io_err};
use crate::netblock::AddressBlock;
use rampart_proto::enforcement::EnforcementSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What an offboarding undoes, and the flag that stops the indicator sync from enforcing
/// anything again.
pub struct Offboarding {
    pub state_dir: PathBuf,
    pub addresses: AddressBlock,
    pub offboarded: Arc<AtomicBool>,
}

/// Where the credential goes when the device is offboarded.
pub fn set_aside_path(state_dir: &Path) -> PathBuf {
    state_dir.join("credentials.offboarded.json")
}

impl Offboarding {
    /// Lifts every enforcement and sets the credential aside. A step that fails does not stop
    /// the others; the credential is set aside only when everything was lifted, so that a
    /// failed offboarding can be tried again.
    pub async fn offboard(&self, isolation: &Isolation, exec: &Arc<ExecControl>) -> Result<String> {
        self.offboarded.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        if let Err(e) = isolation.unisolate().await {
            failures.push(format!("lifting isolation: {e}"));
        }
        if let Err(e) = exec.unrestrict().await {
            failures.push(format!("lifting the code-execution restriction: {e}"));
        }
        if let Err(e) = exec.set_indicators(&EnforcementSet::default()).await {
            failures.push(format!("lifting blocked file hashes: {e}"));
        }
        if let Err(e) = self.addresses.apply(&[], &[]).await {
            failures.push(format!("lifting blocked addresses: {e}"));
        }
        match std::fs::remove_file(self.state_dir.join("indicators.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                failures.push(format!("removing the saved indicators: {e}"));
            }
            _ => {}
        }
        if !failures.is_empty() {
            // Enforcing may go on: the device is still Rampart's.
            self.offboarded.store(false, Ordering::SeqCst);
            return Err(Error::Action(format!(
                "offboarding stopped, the device stays enrolled: {}",
                failures.join("; ")
            )));
        }
        let from = Credentials::path(&self.state_dir);
        let to = set_aside_path(&self.state_dir);
        std::fs::rename(&from, &to).map_err(io_err(format!(
            "setting the credential aside ({} → {})",
            from.display(),
            to.display()
        )))?;
        Ok(
            "offboarded: isolation, restriction and blocks lifted, the credential set aside; \
            the agent stops"
                .into(),
        )
    }
}
