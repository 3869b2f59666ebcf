//! Custom detection rules, their runs, and the entity groups they alerted on.

use crate::SqlStore;
use crate::document::{Document, text, time};
use crate::error::{Result, StoreError};
use crate::machines::Change;
use crate::sql::SqlValue;
use crate::util::parse_tenant_id;
use async_trait::async_trait;
use rampart_core::audit::AuditContext;
use rampart_core::detection_rule::{
    DETECTION_RULES, DETECTION_RUNS, DetectionRule, DetectionRun, RuleStatus, RunFrequency,
};
use rampart_core::timefmt::to_micros;
use rampart_core::{ErrorCode, Rejection, TenantId};
use sqlx::Row;
use std::collections::HashSet;
use time::OffsetDateTime;

impl Document for DetectionRule {
    const TABLE: &'static str = "detection_rules";
    const ENTITY: &'static str = "DetectionRule";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &DETECTION_RULES;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("display_name", SqlValue::Text(self.display_name.clone())),
            ("status", SqlValue::Text(self.status.as_str().into())),
            (
                "period",
                SqlValue::Text(self.schedule.period.as_str().into()),
            ),
            ("continuous_table", text(&self.continuous_table)),
            ("next_run_time", time(self.schedule.next_run_date_time)),
            ("created_date_time", time(Some(self.created_date_time))),
            (
                "last_modified_date_time",
                time(Some(self.last_modified_date_time)),
            ),
        ]
    }
}

impl Document for DetectionRun {
    const TABLE: &'static str = "detection_runs";
    const ENTITY: &'static str = "DetectionRun";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &DETECTION_RUNS;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("rule_id", SqlValue::Text(self.rule_id.clone())),
            ("start_date_time", time(Some(self.start_date_time))),
            ("status", SqlValue::Text(self.status.as_str().into())),
        ]
    }
}

/// An entity group that raised an alert in a run: its key (a hash of the entity values, made
/// by the caller) and the alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectionHit {
    pub entity_key: i64,
    pub alert_id: String,
}

#[async_trait]
pub trait DetectionRuleStore: Send + Sync {
    /// Stores a new rule, giving it the tenant's next rule id.
    async fn create_detection_rule(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        rule: DetectionRule,
    ) -> Result<DetectionRule>;
    async fn get_detection_rule(&self, tenant: TenantId, id: &str)
    -> Result<Option<DetectionRule>>;
    async fn update_detection_rule(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        change: Change<'_, DetectionRule>,
    ) -> Result<Option<DetectionRule>>;
    /// Deletes a rule with its run history and dedupe record; false when there is none.
    async fn delete_detection_rule(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
    ) -> Result<bool>;
    /// The active continuous rules of every tenant.
    async fn continuous_detection_rules(&self) -> Result<Vec<(TenantId, DetectionRule)>>;
    /// Takes up to `limit` scheduled rules due at `now` (any tenant) and moves each one's next
    /// run a period on, so that no other server takes the same slot. Returns the rules as they
    /// were when claimed.
    async fn claim_due_detection_rules(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<(TenantId, DetectionRule)>>;
    /// Which of `keys` alerted for the rule at or after `since`.
    async fn recent_detection_hits(
        &self,
        tenant: TenantId,
        rule_id: &str,
        keys: &[i64],
        since: OffsetDateTime,
    ) -> Result<HashSet<i64>>;
    /// Stores a finished run and its hits, then lets the rule follow it (a failure pauses it;
    /// a scheduled run sets the next one). `Ok(None)` when the rule is gone.
    async fn record_detection_run(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        run: &DetectionRun,
        hits: &[DetectionHit],
    ) -> Result<Option<DetectionRule>>;
    /// A rule's most recent runs, newest first.
    async fn detection_runs(
        &self,
        tenant: TenantId,
        rule_id: &str,
        limit: usize,
    ) -> Result<Vec<DetectionRun>>;
}

fn decode<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("stored {what}: {e}")))
}

#[async_trait]
impl DetectionRuleStore for SqlStore {
    async fn create_detection_rule(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        mut rule: DetectionRule,
    ) -> Result<DetectionRule> {
        let mut tx = self.pool.begin().await?;
        rule.id = crate::counters::reserve(&mut tx, tenant, "detection_rule", 1)
            .await?
            .to_string();
        crate::document::insert(&mut tx, ctx, tenant, std::slice::from_ref(&rule)).await?;
        tx.commit().await?;
        Ok(rule)
    }

    async fn get_detection_rule(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<DetectionRule>> {
        self.get_doc::<DetectionRule>(tenant, id).await
    }

    async fn update_detection_rule(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        mut change: Change<'_, DetectionRule>,
    ) -> Result<Option<DetectionRule>> {
        self.update_doc::<DetectionRule>(ctx, tenant, id, "Update", |r| change(r))
            .await
    }

    async fn delete_detection_rule(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
    ) -> Result<bool> {
        if !self.delete_doc::<DetectionRule>(ctx, tenant, id).await? {
            return Ok(false);
        }
        // Runs and hits are the rule's own record; a new rule never reuses the id (counter).
        for table in ["detection_runs", "detection_hits"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND rule_id = $2"
            ))
            .bind(tenant.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(true)
    }

    async fn continuous_detection_rules(&self) -> Result<Vec<(TenantId, DetectionRule)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, body FROM detection_rules WHERE status = $1 AND period = $2 ORDER BY seq",
        )
        .bind(RuleStatus::Active.as_str())
        .bind(RunFrequency::Continuous.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let tenant: String = r.try_get("tenant_id")?;
                let body: String = r.try_get("body")?;
                Ok((parse_tenant_id(&tenant)?, decode(&body, "detection rule")?))
            })
            .collect()
    }

    async fn claim_due_detection_rules(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<(TenantId, DetectionRule)>> {
        let due = sqlx::query(
            "SELECT tenant_id, id FROM detection_rules WHERE next_run_time <= $1 AND status = $2 ORDER BY next_run_time LIMIT $3",
        )
        .bind(to_micros(now))
        .bind(RuleStatus::Active.as_str())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let ctx = AuditContext::system("detection-scheduler");
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let tenant = parse_tenant_id(&row.try_get::<String, _>("tenant_id")?)?;
            let id: String = row.try_get("id")?;
            let mut before = None;
            let result = self
                .update_doc::<DetectionRule>(&ctx, tenant, &id, "ClaimRun", |r| {
                    let due = r.status == RuleStatus::Active
                        && r.schedule.next_run_date_time.is_some_and(|t| t <= now);
                    let Some(period) = r.schedule.period.period().filter(|_| due) else {
                        return Err(Rejection::new(
                            ErrorCode::Conflict,
                            "claimed by another server",
                        ));
                    };
                    before = Some(r.clone());
                    r.schedule.next_run_date_time = Some(now + period);
                    Ok(())
                })
                .await;
            match result {
                Ok(Some(_)) => claimed.extend(before.map(|r| (tenant, r))),
                Ok(None) | Err(StoreError::Rejected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(claimed)
    }

    async fn recent_detection_hits(
        &self,
        tenant: TenantId,
        rule_id: &str,
        keys: &[i64],
        since: OffsetDateTime,
    ) -> Result<HashSet<i64>> {
        let mut found = HashSet::new();
        for chunk in keys.chunks(500) {
            let mut b = crate::sql::SqlBuilder::new(self.dialect);
            b.push("SELECT entity_key FROM detection_hits WHERE tenant_id = ")
                .push_param(SqlValue::Text(tenant.to_string()))
                .push(" AND rule_id = ")
                .push_param(SqlValue::Text(rule_id.to_owned()))
                .push(" AND alerted_time >= ")
                .push_param(SqlValue::Int(to_micros(since)))
                .push(" AND entity_key IN ")
                .push_list(chunk.iter().map(|k| SqlValue::Int(*k)));
            for r in b.query().fetch_all(&self.pool).await? {
                found.insert(r.try_get::<i64, _>("entity_key")?);
            }
        }
        Ok(found)
    }

    async fn record_detection_run(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        run: &DetectionRun,
        hits: &[DetectionHit],
    ) -> Result<Option<DetectionRule>> {
        let mut tx = self.pool.begin().await?;
        crate::document::insert(&mut tx, ctx, tenant, std::slice::from_ref(run)).await?;
        let alerted = to_micros(run.start_date_time);
        for h in hits {
            sqlx::query(
                "INSERT INTO detection_hits (tenant_id, rule_id, entity_key, alert_id, alerted_time) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, rule_id, entity_key) DO UPDATE SET alert_id = excluded.alert_id, alerted_time = excluded.alerted_time",
            )
            .bind(tenant.to_string())
            .bind(run.rule_id.as_str())
            .bind(h.entity_key)
            .bind(h.alert_id.as_str())
            .bind(alerted)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let now = OffsetDateTime::now_utc();
        self.update_doc::<DetectionRule>(ctx, tenant, &run.rule_id, "RecordRun", |r| {
            r.after_run(run, now);
            Ok(())
        })
        .await
    }

    async fn detection_runs(
        &self,
        tenant: TenantId,
        rule_id: &str,
        limit: usize,
    ) -> Result<Vec<DetectionRun>> {
        let rows = sqlx::query(
            "SELECT body FROM detection_runs WHERE tenant_id = $1 AND rule_id = $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(rule_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| decode(&r.try_get::<String, _>("body")?, "detection run"))
            .collect()
    }
}
