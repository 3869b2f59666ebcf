//! YARA rule sets. Every change moves the tenant's indicator generation too: the sets travel
//! to agents with the blocking indicators, in one versioned enforcement set.

use crate::SqlStore;
use crate::document::{Document, time};
use crate::error::{Result, StoreError};
use crate::machines::Change;
use crate::sql::SqlValue;
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::yara_rule::{YARA_RULE_SETS, YaraRuleSet};

impl Document for YaraRuleSet {
    const TABLE: &'static str = "yara_rule_sets";
    const ENTITY: &'static str = "YaraRuleSet";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &YARA_RULE_SETS;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("name", SqlValue::Text(self.name.clone())),
            ("created_date_time", time(Some(self.created_date_time))),
            (
                "last_modified_date_time",
                time(Some(self.last_modified_date_time)),
            ),
        ]
    }
}

#[async_trait]
pub trait YaraRuleStore: Send + Sync {
    /// Stores a new rule set, giving it the tenant's next id.
    async fn create_yara_rule_set(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        set: YaraRuleSet,
    ) -> Result<YaraRuleSet>;
    async fn get_yara_rule_set(&self, tenant: TenantId, id: &str) -> Result<Option<YaraRuleSet>>;
    async fn update_yara_rule_set(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        change: Change<'_, YaraRuleSet>,
    ) -> Result<Option<YaraRuleSet>>;
    /// False when there is no such set.
    async fn delete_yara_rule_set(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
    ) -> Result<bool>;
    /// Every rule set of the tenant, oldest first (what agents scan with).
    async fn yara_rule_sets(&self, tenant: TenantId) -> Result<Vec<YaraRuleSet>>;
}

impl SqlStore {
    async fn yara_changed(&self, tenant: TenantId) -> Result<()> {
        // A transaction of its own, so that the generation is noted as this store's before
        // another server's check can see it.
        let mut tx = self.pool.begin().await?;
        let claim =
            crate::indicators::bump_generation(&mut tx, &self.own_generations, &tenant.to_string())
                .await?;
        tx.commit().await?;
        claim.keep();
        Ok(())
    }
}

#[async_trait]
impl YaraRuleStore for SqlStore {
    async fn create_yara_rule_set(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        mut set: YaraRuleSet,
    ) -> Result<YaraRuleSet> {
        let mut tx = self.pool.begin().await?;
        set.id = crate::counters::reserve(&mut tx, tenant, "yara_rule_set", 1)
            .await?
            .to_string();
        crate::document::insert(&mut tx, ctx, tenant, std::slice::from_ref(&set)).await?;
        let claim =
            crate::indicators::bump_generation(&mut tx, &self.own_generations, &tenant.to_string())
                .await?;
        tx.commit().await?;
        claim.keep();
        Ok(set)
    }

    async fn get_yara_rule_set(&self, tenant: TenantId, id: &str) -> Result<Option<YaraRuleSet>> {
        self.get_doc::<YaraRuleSet>(tenant, id).await
    }

    async fn update_yara_rule_set(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        mut change: Change<'_, YaraRuleSet>,
    ) -> Result<Option<YaraRuleSet>> {
        let updated = self
            .update_doc::<YaraRuleSet>(ctx, tenant, id, "Update", |r| change(r))
            .await?;
        if updated.is_some() {
            self.yara_changed(tenant).await?;
        }
        Ok(updated)
    }

    async fn delete_yara_rule_set(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
    ) -> Result<bool> {
        let deleted = self.delete_doc::<YaraRuleSet>(ctx, tenant, id).await?;
        if deleted {
            self.yara_changed(tenant).await?;
        }
        Ok(deleted)
    }

    async fn yara_rule_sets(&self, tenant: TenantId) -> Result<Vec<YaraRuleSet>> {
        let bodies: Vec<String> =
            sqlx::query_scalar("SELECT body FROM yara_rule_sets WHERE tenant_id = $1 ORDER BY seq")
                .bind(tenant.to_string())
                .fetch_all(&self.pool)
                .await?;
        bodies
            .iter()
            .map(|b| {
                serde_json::from_str(b)
                    .map_err(|e| StoreError::Corrupt(format!("yara rule set: {e}")))
            })
            .collect()
    }
}
