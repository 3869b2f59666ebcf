//! The command channel: the agent's side of `/agent/v1/commands`.
//!
//! Two tasks share the [`journal`]. The *poller* holds a long poll open on the server, which
//! answers as soon as a machine action is queued for this device; each command is recorded as
//! started before it runs (so it runs at most once, whatever the server sends again) and runs in
//! a task of its own, so a long one does not hold up the next. The *reporter* delivers each
//! result — kept in the journal until the server has it, across restarts — retrying with
//! backoff while the server is unreachable. Both reconnect with backoff and jitter.
//!
//! What each command does is the [`Executor`]'s business: [`isolation`] for Isolate and
//! Unisolate, [`restrict`] for (Un)RestrictCodeExecution, [`crate::scan`] for
//! RunAntiVirusScan, [`crate::quarantine`] for StopAndQuarantineFile and its undo,
//! [`package`] for CollectInvestigationPackage, [`offboard`] for Offboard, [`live_response`]
//! for live response sessions; for automated investigations, [`evidence`] for
//! CollectLiveEvidence and KillProcess and [`persistence`] for (Remove|Restore)Persistence. A
//! kind this agent cannot carry out fails with a reason that says so.

pub mod evidence;
pub mod isolation;
pub mod journal;
pub mod live_response;
pub mod offboard;
pub mod package;
pub mod persistence;
pub mod restrict;

use crate::backoff::Backoff;
use crate::client::{Reply, ServerClient};
use crate::quarantine::Quarantine;
use crate::scan::Scanner;
use isolation::Isolation;
use journal::{Begin, Journal};
use live_response::LiveResponder;
use offboard::Offboarding;
use package::PackageCollector;
use persistence::PersistenceStore;
use rampart_proto::command::{
    Command, CommandKind, CommandState, CommandUpdate, PollRequest, PollResponse,
};
use restrict::ExecControl;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// How long the server may hold a poll.
    pub wait: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            wait: Duration::from_secs(30),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

/// Carries out commands.
pub struct Executor {
    pub isolation: Isolation,
    pub exec: Arc<ExecControl>,
    pub scanner: Arc<Scanner>,
    pub quarantine: Quarantine,
    pub offboarding: Offboarding,
    pub packages: PackageCollector,
    pub live: LiveResponder,
    pub persistence: PersistenceStore,
    /// The command of the scan in progress, which a cancellation can stop.
    pub current_scan: Mutex<Option<String>>,
}

impl Executor {
    fn scan_slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.current_scan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops command `id` if it is running and can be stopped (a scan, a live response
    /// session); others run to their end — they are short, or must not be left half done.
    pub fn cancel(&self, id: &str) {
        if self.scan_slot().as_deref() == Some(id) {
            tracing::info!(command = id, "scan cancelled by the server");
            self.scanner.cancel();
        }
        if self.live.cancel(id) {
            tracing::info!(
                command = id,
                "live response session cancelled by the server"
            );
        }
    }

    /// Runs `command` and says how it ended.
    pub async fn execute(&self, command: &Command) -> CommandUpdate {
        let mut outcomes = Vec::new();
        let mut evidence = None;
        let result = match &command.kind {
            CommandKind::Isolate { isolation_type } => self
                .isolation
                .isolate(*isolation_type)
                .await
                .map_err(|e| e.to_string()),
            CommandKind::Unisolate => self.isolation.unisolate().await.map_err(|e| e.to_string()),
            CommandKind::RestrictCodeExecution => {
                self.exec.restrict().await.map_err(|e| e.to_string())
            }
            CommandKind::UnrestrictCodeExecution => {
                self.exec.unrestrict().await.map_err(|e| e.to_string())
            }
            CommandKind::KillProcess { pid, image_path } => {
                evidence::kill(*pid, image_path.as_deref())
            }
            CommandKind::RemovePersistence(t) => {
                self.persistence.remove(t).map_err(|e| e.to_string())
            }
            CommandKind::RestorePersistence(t) => {
                self.persistence.restore(t).map_err(|e| e.to_string())
            }
            CommandKind::CollectLiveEvidence(request) => {
                let (scanner, request) = (Arc::clone(&self.scanner), request.clone());
                let seen = tokio::task::spawn_blocking(move || evidence::look(&request, &scanner))
                    .await
                    .map_err(|e| format!("the look stopped: {e}"));
                seen.map(|seen| evidence.insert(seen).summary())
            }
            CommandKind::RunAntiVirusScan { scan_type } => {
                *self.scan_slot() = Some(command.id.clone());
                let report = self.scanner.scan(*scan_type).await;
                self.scan_slot().take();
                report.map(|r| r.summary(*scan_type))
            }
            CommandKind::StopAndQuarantineFile { sha1 } => self
                .quarantine
                .stop_and_quarantine(sha1)
                .await
                .map_err(|e| e.to_string()),
            CommandKind::RestoreQuarantinedFile { sha1 } => {
                self.quarantine.restore(sha1).map_err(|e| e.to_string())
            }
            CommandKind::CollectInvestigationPackage => self
                .packages
                .collect_and_upload(&command.id)
                .await
                .map_err(|e| e.to_string()),
            CommandKind::Offboard => self
                .offboarding
                .offboard(&self.isolation, &self.exec)
                .await
                .map_err(|e| e.to_string()),
            CommandKind::LiveResponse { commands } => {
                let (result, ran) = self.live.run(&command.id, commands).await;
                outcomes = ran;
                result
            }
            other => Err(format!(
                "{} is not supported by this agent version ({})",
                other.name(),
                crate::VERSION
            )),
        };
        let (state, detail) = match result {
            Ok(note) => (CommandState::Succeeded, note),
            Err(reason) => (CommandState::Failed, reason),
        };
        tracing::info!(
            command = command.id,
            kind = command.kind.name(),
            state = ?state,
            detail,
            "command finished"
        );
        CommandUpdate {
            command_id: command.id.clone(),
            state,
            detail: Some(detail),
            commands: outcomes,
            evidence,
        }
    }
}

/// Raised once the result of a successful `Offboard` has reached the server (or the server
/// has refused it): the agent has nothing left to do and stops.
#[derive(Default)]
pub struct OffboardSignal {
    /// The offboard command whose result is on its way.
    pending: Mutex<Option<String>>,
    pub done: Notify,
}

impl OffboardSignal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server is done with `command_id`'s result.
    fn settled(&self, command_id: &str) {
        let mut pending = self.lock();
        if pending.as_deref() == Some(command_id) {
            *pending = None;
            self.done.notify_one();
        }
    }
}

/// The agent's end of the command channel.
pub struct CommandChannel {
    pub client: ServerClient,
    /// `Device <id>:<secret>`.
    pub authorization: String,
    pub journal: Arc<Mutex<Journal>>,
    pub executor: Arc<Executor>,
    pub config: ChannelConfig,
    pub offboard: Arc<OffboardSignal>,
    /// Rung when the tenant's indicators changed: the indicator sync fetches them at once.
    pub indicators_changed: Arc<Notify>,
}

impl CommandChannel {
    /// Polls and reports until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let finished = Arc::new(Notify::new());
        let reporter = tokio::spawn(Arc::clone(&this).report(shutdown.clone(), finished.clone()));
        this.poll(shutdown, finished).await;
        let _ = reporter.await;
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn poll(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>, finished: Arc<Notify>) {
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_cap);
        let mut generation = None;
        while !*shutdown.borrow() {
            let request = PollRequest {
                wait_seconds: self.config.wait.as_secs() as u32,
                running: self.journal().held(),
                indicator_generation: generation,
            };
            let reply = tokio::select! {
                r = self.client.poll(&self.authorization, &request) => r,
                _ = shutdown.changed() => return,
            };
            let pause = match reply {
                Reply::Done(answer) => {
                    backoff.reset();
                    if answer.indicator_generation.is_some()
                        && answer.indicator_generation != generation
                    {
                        // The first one heard may be news too: the sync finds out (a 304
                        // costs little).
                        generation = answer.indicator_generation;
                        self.indicators_changed.notify_one();
                    }
                    self.take(answer, &finished);
                    continue;
                }
                Reply::Retry {
                    reason,
                    retry_after,
                    ..
                } => {
                    tracing::warn!("command poll: {reason}");
                    backoff.next_delay(retry_after)
                }
                Reply::Refused { status, reason } => {
                    tracing::error!("command poll refused (HTTP {status}): {reason}");
                    backoff.next_delay(None)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Starts the commands of a poll's answer and forgets the cancelled ones.
    fn take(self: &Arc<Self>, answer: PollResponse, finished: &Arc<Notify>) {
        for id in &answer.cancelled {
            tracing::info!(command = id, "the server no longer waits for this command");
            self.executor.cancel(id);
            if let Err(e) = self.journal().delivered(id) {
                tracing::error!("command journal: {e}");
            }
        }
        for command in answer.commands {
            let begin = self.journal().begin(&command);
            match begin {
                Ok(Begin::Run) => {}
                Ok(Begin::Report(_)) => {
                    finished.notify_one();
                    continue;
                }
                Ok(Begin::Ignore) => continue,
                Err(e) => {
                    // Without a record the command could run twice: leave it to the resend.
                    tracing::error!(command = command.id, "command journal: {e}; not started");
                    continue;
                }
            }
            tracing::info!(
                command = command.id,
                kind = command.kind.name(),
                "command received"
            );
            let this = Arc::clone(self);
            let finished = Arc::clone(finished);
            tokio::spawn(async move {
                let update = match CommandUpdate::rejection(&command) {
                    Some(refused) => refused,
                    None => this.executor.execute(&command).await,
                };
                if command.kind == CommandKind::Offboard && update.state == CommandState::Succeeded
                {
                    *this.offboard.lock() = Some(command.id.clone());
                }
                if let Err(e) = this.journal().finish(&update) {
                    tracing::error!(command = command.id, "command journal: {e}");
                }
                finished.notify_one();
            });
        }
    }

    /// Delivers the results the journal owes, oldest first, until `shutdown`.
    async fn report(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, finished: Arc<Notify>) {
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_cap);
        while !*shutdown.borrow() {
            let mut pause = None;
            let owed = self.journal().owed();
            for update in owed {
                match self.client.update(&self.authorization, &update).await {
                    Reply::Done(ack) => {
                        tracing::info!(
                            command = update.command_id,
                            status = ack.status,
                            "result delivered"
                        );
                    }
                    // 404 or 409: the server has no use for this result (the action was
                    // cancelled or timed out); keeping it would send it forever. A refused
                    // credential is another matter: an operator can fix it, so keep trying.
                    Reply::Refused { status, reason } if status != 401 => {
                        tracing::warn!(
                            command = update.command_id,
                            "result refused (HTTP {status}): {reason}"
                        );
                    }
                    Reply::Refused { reason, .. } => {
                        tracing::error!(
                            command = update.command_id,
                            "result not delivered: {reason}"
                        );
                        pause = Some(backoff.next_delay(None));
                        break;
                    }
                    Reply::Retry {
                        reason,
                        retry_after,
                        ..
                    } => {
                        tracing::warn!(
                            command = update.command_id,
                            "result not delivered: {reason}"
                        );
                        pause = Some(backoff.next_delay(retry_after));
                        break;
                    }
                }
                backoff.reset();
                if let Err(e) = self.journal().delivered(&update.command_id) {
                    tracing::error!("command journal: {e}");
                }
                self.offboard.settled(&update.command_id);
            }
            tokio::select! {
                _ = async {
                    match pause {
                        Some(d) => tokio::time::sleep(d).await,
                        None => finished.notified().await,
                    }
                } => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
