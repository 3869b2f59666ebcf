//! Spooled batches to the server, oldest first, one at a time: deleted after a 200, retried
//! with backoff (honouring `Retry-After`) after a network error, 408, 429 or 5xx, and kept
//! while the server refuses the credential (an operator can fix that; dropping would lose
//! data). A batch the server refuses outright (another 4xx) can never be delivered and is
//! deleted, its rows counted as refused.

use crate::backoff::Backoff;
use crate::client::{Reply, ServerClient};
use crate::spool::Spool;
use crate::status::{AgentStatus, SendResult};
use rampart_core::timefmt::format as rfc3339;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// First wait after a failure.
    pub backoff_base: Duration,
    /// Longest wait between attempts (a server's Retry-After may ask for more).
    pub backoff_cap: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

pub struct Sender {
    pub spool: Arc<Spool>,
    pub client: ServerClient,
    /// `Device <id>:<secret>`.
    pub authorization: String,
    /// Notified when a batch is spooled.
    pub wake: Arc<Notify>,
    pub config: SenderConfig,
    /// Where to record each attempt for `status`; not recorded when `None`.
    pub status: Option<(PathBuf, Arc<Mutex<AgentStatus>>)>,
}

/// What one attempt did.
enum Step {
    Idle,
    Sent,
    Wait(Duration),
}

impl Sender {
    /// Sends until `shutdown` turns true. What is not sent stays spooled for the next run.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_cap);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match self.step(&mut backoff).await {
                Step::Sent => continue,
                Step::Idle => None,
                Step::Wait(d) => Some(d),
            };
            // Sleep for the backoff, or until a batch arrives when idle; a shutdown ends either.
            tokio::select! {
                _ = shutdown.changed() => {}
                () = async {
                    match pause {
                        Some(d) => tokio::time::sleep(d).await,
                        None => self.wake.notified().await,
                    }
                } => {}
            }
        }
    }

    async fn step(&self, backoff: &mut Backoff) -> Step {
        let Some(entry) = self.spool.take_oldest() else {
            return Step::Idle;
        };
        let body = match self.spool.read(&entry) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(
                    batch_id = entry.batch_id,
                    "unreadable spooled batch, dropped: {e}"
                );
                if let Err(e) = self.spool.refuse(entry.seq) {
                    tracing::error!("{e}");
                    self.spool.release();
                    return Step::Wait(backoff.next_delay(None));
                }
                return Step::Sent;
            }
        };
        let outcome = self.client.post_batch(&self.authorization, body).await;
        let (result, step) = match outcome {
            Reply::Done(ack) => {
                backoff.reset();
                if ack.rejected > 0 {
                    tracing::warn!(
                        batch_id = ack.batch_id,
                        rejected = ack.rejected,
                        first = ?ack.rejections.first(),
                        "the server rejected rows of a batch"
                    );
                }
                if let Err(e) = self.spool.complete(entry.seq) {
                    tracing::error!("{e}");
                }
                let detail = format!(
                    "accepted {}, rejected {}{}",
                    ack.accepted,
                    ack.rejected,
                    if ack.duplicate { " (duplicate)" } else { "" }
                );
                (("Acknowledged", Some(200), Some(detail)), Step::Sent)
            }
            Reply::Retry {
                reason,
                status,
                retry_after,
            } => {
                self.spool.release();
                let wait = backoff.next_delay(retry_after);
                tracing::warn!(
                    batch_id = entry.batch_id,
                    ?status,
                    ?wait,
                    "send failed, will retry: {reason}"
                );
                (("Retrying", status, Some(reason)), Step::Wait(wait))
            }
            Reply::Refused { status, reason } if status == 401 || status == 403 => {
                self.spool.release();
                let wait = backoff.next_delay(None);
                tracing::error!(
                    status,
                    "the server refuses this device's credential; batches are kept: {reason}"
                );
                (("Retrying", Some(status), Some(reason)), Step::Wait(wait))
            }
            Reply::Refused { status, reason } => {
                tracing::error!(
                    batch_id = entry.batch_id,
                    rows = entry.rows,
                    status,
                    "the server refused a batch; dropped: {reason}"
                );
                if let Err(e) = self.spool.refuse(entry.seq) {
                    tracing::error!("{e}");
                }
                (("Refused", Some(status), Some(reason)), Step::Sent)
            }
        };
        self.record(&entry.batch_id, result);
        step
    }

    fn record(
        &self,
        batch_id: &str,
        (outcome, http_status, detail): (&str, Option<u16>, Option<String>),
    ) {
        let Some((dir, status)) = &self.status else {
            return;
        };
        let now = rfc3339(OffsetDateTime::now_utc());
        let snapshot = {
            let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
            if outcome == "Acknowledged" {
                s.last_success = Some(now.clone());
            }
            s.last_send = Some(SendResult {
                time: now,
                batch_id: batch_id.to_owned(),
                outcome: outcome.to_owned(),
                http_status,
                detail,
            });
            s.clone()
        };
        if let Err(e) = snapshot.save(dir) {
            tracing::warn!("recording the send status: {e}");
        }
    }
}
