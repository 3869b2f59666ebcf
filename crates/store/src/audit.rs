//! Writing audit entries inside the transaction of the change they describe.

use crate::error::Result;
use crate::util::to_json;
use rampart_core::TenantId;
use rampart_core::audit::{AuditContext, AuditEntry};
use rampart_core::timefmt::to_micros;
use time::OffsetDateTime;

/// What one audit entry says about a change.
pub(crate) struct Change<'a> {
    pub tenant: TenantId,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Writes the audit entry of a change; call it on the change's own transaction.
pub(crate) async fn record(
    conn: &mut sqlx::AnyConnection,
    ctx: &AuditContext,
    change: Change<'_>,
) -> Result<()> {
    let time = OffsetDateTime::now_utc();
    let entry = AuditEntry {
        // The entry's id is its `seq`, assigned by the database and filled in when read.
        id: 0,
        tenant_id: change.tenant,
        time,
        actor: ctx.actor.clone(),
        action: change.action.to_owned(),
        entity_type: change.entity_type.to_owned(),
        entity_id: change.entity_id.to_owned(),
        before: change.before,
        after: change.after,
        correlation_id: ctx.correlation_id.clone(),
    };
    sqlx::query(
        "INSERT INTO audit (tenant_id, time, action, entity_type, entity_id, actor_id, correlation_id, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(change.tenant.to_string())
    .bind(to_micros(time))
    .bind(change.action)
    .bind(change.entity_type)
    .bind(change.entity_id)
    .bind(ctx.actor.id.as_str())
    .bind(ctx.correlation_id.as_str())
    .bind(to_json(&entry)?)
    .execute(conn)
    .await?;
    Ok(())
}
