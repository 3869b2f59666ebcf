//! Running rules: scheduled rules over stored telemetry when they fall due, continuous rules on
//! each batch as it is ingested, and any rule on demand.
//!
//! A scheduled run sees the tenant's tables restricted to its lookback window (views that put
//! the time bound under the query, so file pruning applies). A continuous run sees only the
//! batch. Either way, failures are recorded and pause the rule with their reason.

use crate::alerts::{self, Evaluation};
use crate::antivirus::AntivirusAlerts;
use crate::rule::{self, CompiledRule};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use rampart_core::TenantId;
use rampart_core::detection_rule::{DetectionRule, DetectionRun, RunTrigger};
use rampart_core::schema::Table;
use rampart_kql::bind::QueryParameters;
use rampart_kql::plan::{self, Limits};
use rampart_store::{Store, StoreError};
use rampart_telemetry::EventStore;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Settings of the detection engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How often due rules are looked for (and continuous rules reloaded from the store, for
    /// changes made through other servers).
    pub tick: Duration,
    /// Limits on one rule's query.
    pub limits: Limits,
    /// Ingested batches waiting for continuous rules; ingestion waits when it is full.
    pub queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            tick: Duration::from_secs(30),
            limits: Limits {
                max_rows: 10_000,
                timeout: Some(Duration::from_secs(120)),
                memory: Some(1 << 30),
            },
            queue: 256,
        }
    }
}

/// A continuous rule ready to run.
struct LiveRule {
    rule: DetectionRule,
    compiled: CompiledRule,
}

/// One ingested batch for the continuous rules.
struct Ingested {
    tenant: TenantId,
    table: &'static Table,
    batch: RecordBatch,
}

/// The continuous rules of one tenant's table.
type LiveRules = Vec<Arc<LiveRule>>;

/// The detection engine of a server.
pub struct DetectionEngine {
    store: Arc<dyn Store>,
    events: EventStore,
    config: EngineConfig,
    /// Active continuous rules by tenant and table.
    continuous: RwLock<HashMap<(TenantId, &'static str), LiveRules>>,
    /// Set once the continuous evaluator runs; before that, batches are not queued.
    queue: OnceLock<mpsc::Sender<Ingested>>,
    /// The agents' antivirus findings, a built-in rule of every tenant.
    antivirus: Arc<AntivirusAlerts>,
}

impl DetectionEngine {
    pub fn new(store: Arc<dyn Store>, events: EventStore, config: EngineConfig) -> Arc<Self> {
        Arc::new(DetectionEngine {
            antivirus: Arc::new(AntivirusAlerts::new(Arc::clone(&store), events.clone())),
            store,
            events,
            config,
            continuous: RwLock::default(),
            queue: OnceLock::new(),
        })
    }

    /// Starts the scheduler and the continuous evaluator.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (tx, mut rx) = mpsc::channel::<Ingested>(self.config.queue.max(1));
        let _ = self.queue.set(tx);
        let me = self.clone();
        let evaluator = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                me.evaluate_batch(b).await;
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.config.tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.reload_continuous().await {
                    tracing::warn!("loading continuous detection rules: {e}");
                }
                if let Err(e) = me.run_due(OffsetDateTime::now_utc()).await {
                    tracing::warn!("running scheduled detection rules: {e}");
                }
                if evaluator.is_finished() {
                    tracing::error!("the continuous detection evaluator stopped");
                }
            }
        })
    }

    /// Reads the active continuous rules again.
    pub async fn reload_continuous(&self) -> Result<(), StoreError> {
        let rules = self.store.continuous_detection_rules().await?;
        let mut map: HashMap<(TenantId, &'static str), Vec<Arc<LiveRule>>> = HashMap::new();
        for (tenant, rule) in rules {
            match rule::compile(&rule).await {
                Ok(compiled) => {
                    if let Some(table) = compiled.continuous_table {
                        map.entry((tenant, table))
                            .or_default()
                            .push(Arc::new(LiveRule { rule, compiled }));
                    }
                }
                // Stored rules were checked when saved; one that no longer compiles (a
                // newer server's syntax, say) is paused rather than skipped in silence.
                Err(e) => {
                    let eval = Evaluation {
                        trigger: RunTrigger::Continuous,
                        started: OffsetDateTime::now_utc(),
                        window: None,
                        outcome: Err(e.to_string()),
                    };
                    alerts::raise(self.store.as_ref(), &self.events, tenant, &rule, eval).await?;
                }
            }
        }
        *self.continuous.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    /// Hands freshly stored rows to the continuous rules of their tables (waiting when the
    /// evaluator is behind; nothing before [`start`](Self::start) or without such rules), and
    /// raises the alerts of antivirus findings among them.
    pub async fn observe(&self, tenant: TenantId, tables: &[(&'static Table, RecordBatch)]) {
        self.antivirus.observe(tenant, tables);
        let Some(queue) = self.queue.get() else {
            return;
        };
        for (table, batch) in tables {
            let wanted = self
                .continuous
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&(tenant, table.name));
            if wanted && batch.num_rows() > 0 {
                let item = Ingested {
                    tenant,
                    table,
                    batch: batch.clone(),
                };
                if queue.send(item).await.is_err() {
                    tracing::error!("the continuous detection evaluator is gone");
                }
            }
        }
    }

    async fn evaluate_batch(&self, b: Ingested) {
        let rules = self
            .continuous
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(b.tenant, b.table.name))
            .cloned()
            .unwrap_or_default();
        for live in rules {
            let started = OffsetDateTime::now_utc();
            let outcome = match rule::single_table_session(b.table.name, vec![b.batch.clone()]) {
                Ok(ctx) => self.query(&ctx, &live.rule, &live.compiled).await,
                Err(e) => Err(e),
            };
            // A batch without matches leaves no run behind: continuous rules see thousands.
            if matches!(&outcome, Ok((0, _))) {
                continue;
            }
            let eval = Evaluation {
                trigger: RunTrigger::Continuous,
                started,
                window: None,
                outcome,
            };
            match alerts::raise(
                self.store.as_ref(),
                &self.events,
                b.tenant,
                &live.rule,
                eval,
            )
            .await
            {
                Ok(run) if run.failure_reason.is_some() => {
                    // Paused by the failure: stop evaluating it here at once.
                    self.forget(b.tenant, &live.rule.id);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(rule = %live.rule.id, "recording a continuous run: {e}"),
            }
        }
    }

    fn forget(&self, tenant: TenantId, rule_id: &str) {
        let mut map = self.continuous.write().unwrap_or_else(|p| p.into_inner());
        for ((t, _), rules) in map.iter_mut() {
            if *t == tenant {
                rules.retain(|r| r.rule.id != rule_id);
            }
        }
    }

    /// Runs every scheduled rule due at `now` (claimed first, so each slot runs once among
    /// all servers sharing the store). Returns how many ran.
    pub async fn run_due(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let mut ran = 0;
        loop {
            let due = self.store.claim_due_detection_rules(now, 16).await?;
            if due.is_empty() {
                return Ok(ran);
            }
            for (tenant, rule) in due {
                ran += 1;
                if let Err(e) = self
                    .run_scheduled(tenant, &rule, RunTrigger::Scheduled)
                    .await
                {
                    tracing::warn!(rule = %rule.id, "scheduled detection run: {e}");
                }
            }
        }
    }

    /// Runs a rule now over its lookback window (a continuous rule over the last day), as an
    /// analyst's "run" asks; the schedule is not moved.
    pub async fn run_now(
        &self,
        tenant: TenantId,
        rule: &DetectionRule,
    ) -> Result<DetectionRun, StoreError> {
        self.run_scheduled(tenant, rule, RunTrigger::Manual).await
    }

    async fn run_scheduled(
        &self,
        tenant: TenantId,
        rule: &DetectionRule,
        trigger: RunTrigger,
    ) -> Result<DetectionRun, StoreError> {
        let started = OffsetDateTime::now_utc();
        let window = (started - rule.schedule.period.dedupe_window(), started);
        let outcome = match rule::compile(rule).await {
            Ok(compiled) => match self
                .events
                .session_within(tenant, Some(nanos(window.0)), Some(nanos(window.1)))
                .await
            {
                Ok(ctx) => self.query(&ctx, rule, &compiled).await,
                Err(e) => Err(format!("opening the event store: {e}")),
            },
            Err(e) => Err(e.to_string()),
        };
        let eval = Evaluation {
            trigger,
            started,
            window: Some(window),
            outcome,
        };
        alerts::raise(self.store.as_ref(), &self.events, tenant, rule, eval).await
    }

    async fn query(
        &self,
        ctx: &SessionContext,
        rule: &DetectionRule,
        compiled: &CompiledRule,
    ) -> Result<(u64, Vec<alerts::EntityGroup>), String> {
        let result = plan::run(
            ctx,
            &rule.query_condition.query_text,
            &QueryParameters::new(),
            &self.config.limits,
        )
        .await
        .map_err(|e| e.to_string())?;
        let groups = alerts::group_rows(&result, compiled)?;
        Ok((result.row_count as u64, groups))
    }
}

fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}
