//! Per-tenant number sequences (incident and investigation ids), allocated inside the caller's
//! transaction so that an id is never handed out twice, whichever server asks.

use crate::error::Result;
use rampart_core::TenantId;

/// Reserves `n` consecutive numbers of the sequence `name` and returns the first.
pub(crate) async fn reserve(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    name: &str,
    n: i64,
) -> Result<i64> {
    sqlx::query("INSERT INTO counters (tenant_id, name, value) VALUES ($1, $2, 0) ON CONFLICT (tenant_id, name) DO NOTHING")
        .bind(tenant.to_string())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let last: i64 = sqlx::query_scalar(
        "UPDATE counters SET value = value + $1 WHERE tenant_id = $2 AND name = $3 RETURNING value",
    )
    .bind(n)
    .bind(tenant.to_string())
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    Ok(last - n + 1)
}
