//! Automated investigation and remediation (AIR).
//!
//! The store queues an investigation with every new alert of a machine whose device group
//! allows automation (an alert on a machine whose investigation is still queued joins that
//! one), and `startInvestigation` queues one on request. The [`Investigator`]
//! claims queued investigations (any server may; the claim is an optimistic update, so each
//! runs once), gathers evidence from telemetry ([`evidence`]), judges every entity
//! (`rampart_core::investigation`), asks a connected device what is still running and present
//! (a `CollectLiveEvidence` machine action; the investigation is `PendingResource` until the
//! device answers, or a minute passes), and proposes remediation
//! (`rampart_core::remediation`):
//! what the automation level lets run now is carried out through machine actions and shared
//! indicators ([`remediate`]); the rest waits in the action center for an analyst, for at
//! most 7 days. A sweep follows running actions to their end and settles each
//! investigation's state from its actions.

pub mod analysis;
pub mod evidence;
pub mod remediate;

use analysis::AnalysisRuntime;
use evidence::{Gatherer, PREVALENCE_WINDOW, Scope};
use rampart_core::TenantId;
use rampart_core::action_target::{ActionTarget, EvidenceRequest, LiveEvidence};
use rampart_core::alert::{Alert, InvestigationState};
use rampart_core::audit::AuditContext;
use rampart_core::investigation::{
    EvidenceGraph, InvestigatedEntity, Investigation, Relation, Verdict, apply_live, live_request,
};
use rampart_core::machine::{AutomationLevel, Machine, UNGROUPED_AUTOMATION};
use rampart_core::machine_action::{ActionStatus, ActionType, RequestedAction};
use rampart_core::remediation::{
    RemediationAction, RemediationStatus, RemediationType, investigation_state, needs_approval,
    propose,
};
use rampart_core::{ErrorCode, Rejection};
use rampart_detect::IndicatorMatcher;
use rampart_store::{Store, StoreError};
use rampart_telemetry::EventStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How the investigator runs.
#[derive(Clone, Debug)]
pub struct InvestigatorConfig {
    /// How often it looks for queued investigations.
    pub poll: Duration,
    /// How often it follows running and pending remediation actions.
    pub sweep: Duration,
    /// How far before the alert's first event the evidence is looked for.
    pub lookback: time::Duration,
    /// Each evidence query's time limit.
    pub query_timeout: Duration,
    /// How long an investigation waits for a connected device to answer its live look before
    /// it goes on without it.
    pub live_evidence_wait: time::Duration,
}

impl Default for InvestigatorConfig {
    fn default() -> Self {
        InvestigatorConfig {
            poll: Duration::from_millis(250),
            sweep: Duration::from_secs(2),
            lookback: time::Duration::hours(24),
            query_timeout: Duration::from_secs(30),
            live_evidence_wait: time::Duration::seconds(60),
        }
    }
}

/// Investigations claimed per look.
const CLAIM_BATCH: u32 = 16;
/// Open remediation actions followed per sweep.
const SWEEP_BATCH: u32 = 500;
/// An investigation claimed this long ago whose analysis never finished is queued again.
pub const ABANDONED_AFTER: time::Duration = time::Duration::minutes(10);
/// How often abandoned investigations are looked for.
const RESCUE_EVERY: Duration = Duration::from_secs(60);
/// Earlier remediation actions of a device checked for ones a new proposal would repeat.
const EARLIER_ACTIONS: u32 = 500;
/// Alerts a machine investigation started by hand looks into.
const MACHINE_ALERTS: u32 = 20;
/// The most alerts an alert's investigation reads and lets follow its state: the one that
/// queued it and those of the device that joined it while it waited.
const JOINED_ALERTS: u32 = 500;

/// What a device's quarantine lane says of each file: asked back by someone, or in quarantine
/// now (its newest quarantine succeeded, and no restore came after it).
struct QuarantineHistory {
    restored: std::collections::HashSet<String>,
    quarantined: std::collections::HashSet<String>,
}

impl QuarantineHistory {
    /// From the lane's actions, newest first.
    fn of(history: &[(String, ActionType, ActionStatus)]) -> QuarantineHistory {
        let mut h = QuarantineHistory {
            restored: Default::default(),
            quarantined: Default::default(),
        };
        let mut seen = std::collections::HashSet::new();
        for (sha1, kind, status) in history {
            let newest = seen.insert(sha1.as_str());
            if *kind == ActionType::RestoreQuarantinedFile {
                h.restored.insert(sha1.clone());
            } else if newest && *status == ActionStatus::Succeeded {
                h.quarantined.insert(sha1.clone());
            }
        }
        h
    }

    /// Whether automation leaves the file's quarantine alone.
    fn settled(&self, sha1: &str) -> bool {
        let sha1 = sha1.to_ascii_lowercase();
        self.restored.contains(&sha1) || self.quarantined.contains(&sha1)
    }
}

/// What the evidence says: the judged graph and the queries that failed.
struct Findings {
    graph: EvidenceGraph,
    gaps: Vec<String>,
}

pub struct Investigator {
    store: Arc<dyn Store>,
    events: EventStore,
    indicators: Arc<IndicatorMatcher>,
    config: InvestigatorConfig,
    /// Who knows whether a device's agent is connected: this server's bell, unless a cluster
    /// set a wider view.
    presence: std::sync::OnceLock<Arc<dyn Presence>>,
    /// Where the evidence queries run.
    analysis: AnalysisRuntime,
}

/// Whether a device's agent is connected now — it holds a command poll — so that a live look
/// reaches it at once.
pub trait Presence: Send + Sync {
    fn is_connected<'a>(
        &'a self,
        tenant: TenantId,
        machine_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>;
}

fn ctx() -> AuditContext {
    AuditContext::system("automated-investigation")
}

impl Investigator {
    pub fn new(
        store: Arc<dyn Store>,
        events: EventStore,
        indicators: Arc<IndicatorMatcher>,
        config: InvestigatorConfig,
    ) -> Arc<Self> {
        Arc::new(Investigator {
            store,
            events,
            indicators,
            config,
            presence: std::sync::OnceLock::new(),
            analysis: AnalysisRuntime::new(),
        })
    }

    /// Asks `presence` whether devices are connected, instead of this server's bell (which
    /// knows only the polls held here); `false` when one is set already (it stays).
    pub fn set_presence(&self, presence: Arc<dyn Presence>) -> bool {
        self.presence.set(presence).is_ok()
    }

    async fn is_connected(&self, tenant: TenantId, machine_id: &str) -> bool {
        match self.presence.get() {
            Some(p) => p.is_connected(tenant, machine_id).await,
            None => self.store.action_bell().is_listening(tenant, machine_id),
        }
    }

    /// Runs queued investigations and sweeps remediation actions until the runtime stops.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(me.config.poll);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_sweep = std::time::Instant::now();
            // The first look for abandoned investigations comes at once: a restart is when
            // the ones this server left behind are found.
            let now = std::time::Instant::now();
            let mut last_rescue = now.checked_sub(RESCUE_EVERY).unwrap_or(now);
            loop {
                poll.tick().await;
                if let Err(e) = me.run_queued().await {
                    tracing::warn!("automated investigations: {e}");
                }
                if last_rescue.elapsed() >= RESCUE_EVERY {
                    last_rescue = std::time::Instant::now();
                    if let Err(e) = me.requeue_abandoned(OffsetDateTime::now_utc()).await {
                        tracing::warn!("abandoned investigations: {e}");
                    }
                }
                if let Err(e) = me.resume_waiting(OffsetDateTime::now_utc()).await {
                    tracing::warn!("investigations waiting for live evidence: {e}");
                }
                if last_sweep.elapsed() >= me.config.sweep {
                    last_sweep = std::time::Instant::now();
                    if let Err(e) = me.sweep(OffsetDateTime::now_utc()).await {
                        tracing::warn!("remediation sweep: {e}");
                    }
                }
            }
        })
    }

    /// Claims and runs the queued investigations; returns how many ran.
    pub async fn run_queued(&self) -> Result<usize, StoreError> {
        let queued = self
            .store
            .investigations_in(&[InvestigationState::Queued], CLAIM_BATCH)
            .await?;
        let mut ran = 0;
        for (tenant, inv) in queued {
            let now = OffsetDateTime::now_utc();
            let Some(inv) = self
                .claim(tenant, &inv.id, InvestigationState::Queued, "Start", now)
                .await?
            else {
                continue;
            };
            ran += 1;
            let outcome = self.investigate(tenant, &inv).await;
            self.fail_on_error(tenant, &inv.id, outcome).await?;
        }
        Ok(ran)
    }

    /// Takes an investigation in state `from` up for this server (`Running`, claimed `now`);
    /// `None` when another server took it first, or it moved on.
    async fn claim(
        &self,
        tenant: TenantId,
        id: &str,
        from: InvestigationState,
        verb: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Investigation>, StoreError> {
        let claimed = self
            .store
            .update_investigation(
                &ctx(),
                tenant,
                id,
                verb,
                Box::new(move |i: &mut Investigation| {
                    if i.state != from {
                        return Err(Rejection::new(ErrorCode::Conflict, "claimed elsewhere"));
                    }
                    i.state = InvestigationState::Running;
                    i.claimed_time = Some(now);
                    Ok(())
                }),
            )
            .await;
        match claimed {
            Ok(inv) => Ok(inv),
            Err(StoreError::Rejected(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ends an investigation whose analysis hit an error as `Failed`, saying why.
    async fn fail_on_error(
        &self,
        tenant: TenantId,
        id: &str,
        outcome: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let Err(e) = outcome else { return Ok(()) };
        tracing::warn!(%tenant, investigation = id, "investigation failed: {e}");
        self.end(
            tenant,
            id,
            InvestigationState::Failed,
            format!("Failed: {e}"),
        )
        .await
    }

    /// Ends an investigation in `state`, saying why.
    async fn end(
        &self,
        tenant: TenantId,
        id: &str,
        state: InvestigationState,
        details: String,
    ) -> Result<(), StoreError> {
        self.finish(tenant, id, |i, now| i.settle(state, details.clone(), now))
            .await
    }

    /// The investigation's device and its group's automation level; `None` when the
    /// investigation cannot go on (no device, an unknown one, or a group that allows no
    /// automation), after settling it so.
    async fn device_of(
        &self,
        tenant: TenantId,
        inv: &Investigation,
    ) -> Result<Option<(Machine, AutomationLevel)>, StoreError> {
        let Some(machine_id) = inv.machine_id.as_deref() else {
            let why = "The alert names no device.".to_owned();
            self.end(
                tenant,
                &inv.id,
                InvestigationState::UnsupportedAlertType,
                why,
            )
            .await?;
            return Ok(None);
        };
        let Some(machine) = self.store.get_machine(tenant, machine_id).await? else {
            let why = format!("Device {machine_id} is unknown.");
            self.end(tenant, &inv.id, InvestigationState::Failed, why)
                .await?;
            return Ok(None);
        };
        let level = self
            .store
            .automation_level(tenant, &machine.id)
            .await?
            .unwrap_or(UNGROUPED_AUTOMATION);
        if level == AutomationLevel::NoAutomatedResponse {
            self.finish(tenant, &inv.id, |i, now| {
                i.automation_level = Some(level);
                i.settle(
                    InvestigationState::TerminatedBySystem,
                    "The device group's automation level is NoAutomatedResponse.".into(),
                    now,
                )
            })
            .await?;
            return Ok(None);
        }
        Ok(Some((machine, level)))
    }

    async fn investigate(&self, tenant: TenantId, inv: &Investigation) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let Some((machine, level)) = self.device_of(tenant, inv).await? else {
            return Ok(());
        };
        let alerts: Vec<Alert> = match &inv.triggering_alert_id {
            // The alert that queued it and those of the device that joined it while queued:
            // each carries the investigation's id.
            Some(_) => self.joined_alerts(tenant, &inv.id).await?,
            None => {
                self.store
                    .open_alerts_of_machine(tenant, &machine.id, MACHINE_ALERTS)
                    .await?
            }
        };
        let first_event = alerts
            .iter()
            .filter_map(|a| a.first_event_time.or(a.alert_creation_time))
            .min()
            .unwrap_or(now)
            .min(now);
        let Findings { graph, mut gaps } = self
            .gather(tenant, &machine, &alerts, first_event, now)
            .await?;
        let (entities, relations) = graph.into_parts();
        // Telemetry says what happened; a connected device says what is still there.
        if let Some(asked) = live_request(&inv.id, &entities) {
            if !self.is_connected(tenant, &machine.id).await {
                gaps.push("live evidence (the device's agent is not connected)".into());
            } else {
                match self.ask_device(tenant, &machine, asked).await {
                    Ok(look) => {
                        return self
                            .finish(tenant, &inv.id, move |i, now| {
                                i.entities = entities.clone();
                                i.relations = relations.clone();
                                i.not_examined = gaps.clone();
                                i.live_evidence_action_id = Some(look.clone());
                                let d = format!(
                                    "{} Waiting for the device to show what is still running and present.",
                                    i.findings()
                                );
                                i.settle(InvestigationState::PendingResource, d, now);
                            })
                            .await;
                    }
                    Err(e) => gaps.push(format!("live evidence ({e})")),
                }
            }
        }
        self.decide(tenant, &inv.id, &machine, level, entities, relations, gaps)
            .await
    }

    /// Submits the live look of an investigation; returns its machine action.
    async fn ask_device(
        &self,
        tenant: TenantId,
        machine: &Machine,
        asked: EvidenceRequest,
    ) -> Result<String, StoreError> {
        let comment = format!(
            "Automated investigation {}: what is still running and present",
            asked.investigation_id
        );
        let key = format!("evidence:{tenant}:{}", asked.investigation_id);
        remediate::submit_action(
            self.store.as_ref(),
            &ctx(),
            tenant,
            &machine.id,
            RequestedAction::CollectLiveEvidence(asked),
            comment,
            key,
        )
        .await
    }

    /// Proposes remediation for the judged entities, carries out what the automation level
    /// lets run now, and records the investigation's findings.
    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &self,
        tenant: TenantId,
        id: &str,
        machine: &Machine,
        level: AutomationLevel,
        entities: Vec<InvestigatedEntity>,
        relations: Vec<Relation>,
        gaps: Vec<String>,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let policy = self.store.signal_sharing_policy(tenant).await?;
        let shared = if policy.enabled {
            policy.types.clone()
        } else {
            Vec::new()
        };
        let earlier = self
            .store
            .remediation_actions_of_machine(tenant, &machine.id, EARLIER_ACTIONS)
            .await?;
        let history = self.store.quarantine_history(tenant, &machine.id).await?;
        let quarantine = QuarantineHistory::of(&history);
        let proposed = propose(&entities, &relations, &shared, now);
        let all_proposed = proposed.len();
        let proposals: Vec<_> = proposed
            .into_iter()
            .filter(|p| {
                let blocked_already =
                    p.kind == RemediationType::BlockIndicator && entities[p.entity].blocked;
                let repeated = earlier.iter().any(|e| p.is_covered_by(e));
                // An analyst asked for the file back (quarantining it again would undo that),
                // or it is in quarantine on the device already.
                let settled = p.kind == RemediationType::QuarantineFile
                    && p.sha1.as_ref().is_some_and(|h| quarantine.settled(h));
                !(blocked_already || repeated || settled)
            })
            .collect();
        let covered = all_proposed - proposals.len();
        let actions: Vec<RemediationAction> = proposals
            .into_iter()
            .filter_map(|p| {
                let approval = needs_approval(level, p.kind, p.path.as_deref())?;
                Some(RemediationAction::proposed(
                    p, &entities, id, machine, approval, now,
                ))
            })
            .collect();
        let actions = self
            .store
            .create_remediation_actions(&ctx(), tenant, actions)
            .await?;
        self.run_automatic(tenant, &actions, now).await?;
        let malicious = entities
            .iter()
            .filter(|e| e.verdict == Verdict::Malicious)
            .count();
        let examined = entities.len();
        let proposed = actions.len();
        tracing::info!(
            %tenant,
            investigation = id,
            examined,
            malicious,
            proposed,
            covered,
            "investigation ran"
        );
        self.finish(tenant, id, move |i, now| {
            i.automation_level = Some(level);
            i.entities = entities.clone();
            i.relations = relations.clone();
            i.not_examined = gaps.clone();
            let findings = i.findings();
            if malicious == 0 {
                i.settle(InvestigationState::Benign, findings, now);
            } else if proposed == 0 && covered > 0 {
                // Another investigation of the same story already remediates all of it (or an
                // analyst decided against it).
                i.settle(
                    InvestigationState::SuccessfullyRemediated,
                    format!(
                        "{findings} All {covered} remediation actions were already taken, \
                         or declined by an analyst."
                    ),
                    now,
                );
            } else if proposed == 0 {
                i.settle(
                    InvestigationState::PartiallyInvestigated,
                    format!("{findings} No remediation applies."),
                    now,
                );
            } else {
                // The actions decide; `settle` below says how.
                i.status_details = Some(findings);
            }
        })
        .await?;
        if malicious > 0 && proposed > 0 {
            self.settle(tenant, id).await?;
        }
        Ok(())
    }

    /// Takes up the investigations waiting for their live look: those the device answered,
    /// and those it left unanswered for the configured wait (the look is cancelled, and the
    /// investigation goes on with telemetry alone). Returns how many went on.
    pub async fn resume_waiting(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let waiting = self
            .store
            .investigations_in(&[InvestigationState::PendingResource], SWEEP_BATCH)
            .await?;
        let mut resumed = 0;
        for (tenant, inv) in waiting {
            let Some(look_id) = inv.live_evidence_action_id.clone() else {
                continue;
            };
            let look = self.store.get_machine_action(tenant, &look_id).await?;
            let mut gap = None;
            let seen = match &look {
                Some(a) if a.status() == ActionStatus::Succeeded => {
                    match (&a.target, a.live_evidence()) {
                        (Some(ActionTarget::Evidence(asked)), Some(seen)) => {
                            Some((asked.clone(), seen.clone()))
                        }
                        _ => None,
                    }
                }
                Some(a) if a.status().is_open() => {
                    let wait = self.config.live_evidence_wait;
                    if now - a.creation_date_time_utc() < wait {
                        continue;
                    }
                    let why = format!(
                        "the device did not answer within {} s",
                        wait.whole_seconds()
                    );
                    match self
                        .store
                        .cancel_machine_action(&ctx(), tenant, &look_id, remediate::REQUESTOR, &why)
                        .await
                    {
                        Ok(_) | Err(StoreError::Rejected(_)) => {}
                        Err(e) => return Err(e),
                    }
                    gap = Some(format!("live evidence ({why})"));
                    None
                }
                Some(a) => {
                    gap = Some(format!(
                        "live evidence (the look {}: {})",
                        a.status().as_str(),
                        a.troubleshoot_info().unwrap_or("no reason given")
                    ));
                    None
                }
                None => {
                    gap = Some("live evidence (the look is gone)".into());
                    None
                }
            };
            // One server goes on with it.
            let pending = InvestigationState::PendingResource;
            let Some(inv) = self.claim(tenant, &inv.id, pending, "Resume", now).await? else {
                continue;
            };
            resumed += 1;
            let id = inv.id.clone();
            let outcome = self.resume(tenant, inv, seen, gap).await;
            self.fail_on_error(tenant, &id, outcome).await?;
        }
        Ok(resumed)
    }

    /// Goes on with an investigation whose live look ended: what the device showed is
    /// recorded on the entities, and the remediation decided from there.
    async fn resume(
        &self,
        tenant: TenantId,
        inv: Investigation,
        seen: Option<(EvidenceRequest, LiveEvidence)>,
        gap: Option<String>,
    ) -> Result<(), StoreError> {
        let Some((machine, level)) = self.device_of(tenant, &inv).await? else {
            return Ok(());
        };
        let mut entities = inv.entities;
        let mut gaps = inv.not_examined;
        gaps.extend(gap);
        if let Some((asked, seen)) = seen {
            apply_live(&mut entities, &asked, &seen);
        }
        self.decide(
            tenant,
            &inv.id,
            &machine,
            level,
            entities,
            inv.relations,
            gaps,
        )
        .await
    }

    /// Gathers the evidence of an investigation from the device's telemetry and judges it.
    async fn gather(
        &self,
        tenant: TenantId,
        machine: &Machine,
        alerts: &[Alert],
        first_event: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Findings, StoreError> {
        let scope = Scope {
            device_id: &machine.id,
            from: first_event - self.config.lookback,
            to: now,
            group_id: machine.rbac_group_id.to_string(),
            group_name: machine.rbac_group_name.clone(),
        };
        let nanos = |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        let session = self
            .events
            .session_within(
                tenant,
                Some(nanos(scope.from.min(scope.to - PREVALENCE_WINDOW))),
                Some(nanos(now + time::Duration::minutes(1))),
            )
            .await
            .map_err(|e| StoreError::Corrupt(format!("opening the event store: {e}")))?;
        // Every query is about one device or a few files: of a fleet's events it keeps few.
        EventStore::filter_while_decoding(&session);
        let mut gatherer =
            Gatherer::new(&session, &self.analysis, scope, self.config.query_timeout);
        for a in alerts {
            gatherer.seed(a);
        }
        gatherer.expand().await;
        gatherer.indicators(self.indicators.index(), tenant, now.unix_timestamp());
        let machines = self.store.machine_count(tenant).await?;
        let fleet = gatherer.prevalence(machines).await;
        let gaps = std::mem::take(&mut gatherer.gaps);
        let mut graph = gatherer.graph;
        graph.judge(fleet);
        Ok(Findings { graph, gaps })
    }

    /// Carries out, at once, the actions that need no approval.
    async fn run_automatic(
        &self,
        tenant: TenantId,
        actions: &[RemediationAction],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        for a in actions.iter().filter(|a| !a.approval_required) {
            let outcome =
                remediate::execute(self.store.as_ref(), &self.indicators, &ctx(), tenant, a)
                    .await
                    .map_err(|e| e.to_string());
            self.store
                .update_remediation_action(
                    &ctx(),
                    tenant,
                    &a.id,
                    "Execute",
                    Box::new(|r: &mut RemediationAction| {
                        match &outcome {
                            Ok(how) => r.executed(how.clone(), now),
                            Err(e) => r.failed(e, now),
                        }
                        Ok(())
                    }),
                )
                .await?;
        }
        Ok(())
    }

    /// Applies `change` to an investigation and lets its alerts follow its state.
    async fn finish(
        &self,
        tenant: TenantId,
        id: &str,
        change: impl Fn(&mut Investigation, OffsetDateTime) + Send + Sync,
    ) -> Result<(), StoreError> {
        // Read first, so that the alerts follow as soon after the investigation as they can (no
        // alert joins an investigation that has been claimed).
        let alerts = self.joined_alerts(tenant, id).await?;
        let now = OffsetDateTime::now_utc();
        let updated = self
            .store
            .update_investigation(
                &ctx(),
                tenant,
                id,
                "Update",
                Box::new(|i: &mut Investigation| {
                    change(i, now);
                    Ok(())
                }),
            )
            .await?;
        let Some(inv) = updated else { return Ok(()) };
        let state = inv.state;
        for alert in alerts {
            self.store
                .update_alert(
                    &ctx(),
                    tenant,
                    &alert.id,
                    "FollowInvestigation",
                    Box::new(move |a: &mut Alert| {
                        a.investigation_state = Some(state);
                        Ok(())
                    }),
                )
                .await?;
        }
        Ok(())
    }

    /// The alerts that carry the investigation's id (none for one an analyst started on a
    /// machine).
    async fn joined_alerts(&self, tenant: TenantId, id: &str) -> Result<Vec<Alert>, StoreError> {
        match id.parse::<i64>() {
            Ok(id) => {
                self.store
                    .alerts_of_investigation(tenant, id, JOINED_ALERTS)
                    .await
            }
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Sets an investigation's state from its remediation actions.
    async fn settle(&self, tenant: TenantId, id: &str) -> Result<(), StoreError> {
        let actions = self.store.remediation_actions_of(tenant, id).await?;
        let Some((state, summary)) = investigation_state(&actions) else {
            return Ok(());
        };
        let current = self.store.get_investigation(tenant, id).await?;
        let details = |i: &Investigation| format!("{} {summary}", i.findings());
        if current
            .as_ref()
            .is_some_and(|i| i.state == state && i.status_details == Some(details(i)))
        {
            return Ok(());
        }
        self.finish(tenant, id, |i, now| {
            let d = details(i);
            i.settle(state, d, now);
        })
        .await
    }

    /// Queues again the investigations a server claimed and never finished analysing (it
    /// stopped mid-way): claimed more than [`ABANDONED_AFTER`] ago (or by a server too old to
    /// say when) and still without the automation level their analysis records.
    pub async fn requeue_abandoned(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let running = self
            .store
            .investigations_in(&[InvestigationState::Running], SWEEP_BATCH)
            .await?;
        let mut requeued = 0;
        for (tenant, inv) in running {
            let abandoned = |i: &Investigation| {
                i.state == InvestigationState::Running
                    && i.automation_level.is_none()
                    && i.claimed_time.is_none_or(|t| now - t > ABANDONED_AFTER)
            };
            if !abandoned(&inv) {
                continue;
            }
            let changed = self
                .store
                .update_investigation(
                    &ctx(),
                    tenant,
                    &inv.id,
                    "Requeue",
                    Box::new(|i: &mut Investigation| {
                        if !abandoned(i) {
                            return Err(Rejection::new(ErrorCode::Conflict, "not abandoned"));
                        }
                        i.state = InvestigationState::Queued;
                        Ok(())
                    }),
                )
                .await;
            match changed {
                Ok(Some(_)) => {
                    tracing::warn!(%tenant, investigation = inv.id, "abandoned investigation queued again");
                    requeued += 1;
                }
                Ok(None) | Err(StoreError::Rejected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(requeued)
    }

    /// Expires actions that waited too long for approval, follows running ones to their
    /// machine action's end, and settles the investigations they belong to.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        let open = self.store.open_remediation_actions(SWEEP_BATCH).await?;
        let mut touched = BTreeSet::new();
        for (tenant, a) in open {
            let follow = match (&a.status, &a.machine_action_id) {
                (RemediationStatus::Running, Some(id)) => self
                    .store
                    .get_machine_action(tenant, id)
                    .await?
                    .map(|m| m.status()),
                _ => None,
            };
            // Most open actions are still waiting: look before writing.
            if !a.clone().advance(follow, now) {
                continue;
            }
            let changed = self
                .store
                .update_remediation_action(
                    &ctx(),
                    tenant,
                    &a.id,
                    "Follow",
                    Box::new(move |r: &mut RemediationAction| {
                        if r.advance(follow, now) {
                            Ok(())
                        } else {
                            Err(Rejection::new(ErrorCode::Conflict, "unchanged"))
                        }
                    }),
                )
                .await;
            match changed {
                Ok(Some(_)) => {
                    touched.insert((tenant, a.investigation_id.clone()));
                }
                Ok(None) | Err(StoreError::Rejected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        for (tenant, id) in touched {
            self.settle(tenant, &id).await?;
        }
        Ok(())
    }

    /// An analyst approves a pending action: it is carried out at once.
    pub async fn approve(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        by: &str,
        comment: &str,
    ) -> Result<Option<RemediationAction>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let Some(action) = self.store.get_remediation_action(tenant, id).await? else {
            return Ok(None);
        };
        action.check_pending(now)?;
        let how =
            remediate::execute(self.store.as_ref(), &self.indicators, ctx, tenant, &action).await?;
        let updated = self
            .store
            .update_remediation_action(
                ctx,
                tenant,
                id,
                "Approve",
                Box::new(|r: &mut RemediationAction| {
                    r.check_pending(now)?;
                    r.decide(by, comment, now);
                    r.executed(how.clone(), now);
                    Ok(())
                }),
            )
            .await?;
        self.settle(tenant, &action.investigation_id).await?;
        Ok(updated)
    }

    /// An analyst rejects a pending action: it never runs.
    pub async fn reject(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        by: &str,
        comment: &str,
    ) -> Result<Option<RemediationAction>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let updated = self
            .store
            .update_remediation_action(
                ctx,
                tenant,
                id,
                "Reject",
                Box::new(|r: &mut RemediationAction| r.reject(by, comment, now)),
            )
            .await?;
        if let Some(a) = &updated {
            self.settle(tenant, &a.investigation_id).await?;
        }
        Ok(updated)
    }

    /// An analyst undoes a completed action: the file is restored, the device released, the
    /// indicator deleted.
    pub async fn undo(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        by: &str,
        comment: &str,
    ) -> Result<Option<RemediationAction>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let Some(action) = self.store.get_remediation_action(tenant, id).await? else {
            return Ok(None);
        };
        action.check_undoable()?;
        let undo_action = remediate::undo(
            self.store.as_ref(),
            &self.indicators,
            ctx,
            tenant,
            &action,
            comment,
        )
        .await?;
        self.store
            .update_remediation_action(
                ctx,
                tenant,
                id,
                "Undo",
                Box::new(|r: &mut RemediationAction| {
                    r.check_undoable()?;
                    r.undone(by, comment, undo_action.clone(), now);
                    Ok(())
                }),
            )
            .await
    }
}
