//! Enrollment tokens and device credentials: how an agent becomes a device of a tenant.
//!
//! Both secrets (the token's and the device's) are stored only as hashes the caller computes;
//! the store looks them up by hash and never sees a secret.

use crate::SqlStore;
use crate::audit::{Change, record};
use crate::error::{Result, StoreError};
use crate::util::{is_unique_violation, parse_tenant_id};
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::enrollment::EnrollmentToken;
use rampart_core::timefmt::{from_micros, to_micros};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a new enrollment token whose secret hashes to `token_hash`. Times are kept to the
    /// microsecond.
    async fn create_enrollment_token(
        &self,
        ctx: &AuditContext,
        token: &EnrollmentToken,
        token_hash: &str,
    ) -> Result<()>;
    /// The tenant's enrollment tokens, oldest first (revoked and used-up ones included).
    async fn list_enrollment_tokens(&self, tenant: TenantId) -> Result<Vec<EnrollmentToken>>;
    /// Revokes a token so that it enrolls no more devices (those it enrolled stay); false when
    /// the tenant has no token `id`. Revoking a revoked token changes nothing and is true.
    async fn revoke_enrollment_token(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
    ) -> Result<bool>;
    /// Enrolls `device_id` with a device secret hashing to `secret_hash`, consuming one use of
    /// the usable token (not revoked, not expired at `now`, not used up) whose secret hashes to
    /// `token_hash`. `None` when there is no such token; nothing is consumed then. A device id
    /// that is enrolled already is a [`StoreError::Conflict`], and consumes nothing either.
    async fn enroll_device(
        &self,
        ctx: &AuditContext,
        token_hash: &str,
        device_id: &str,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(TenantId, EnrollmentToken)>>;
    /// The tenant and secret hash of an enrolled device.
    async fn device_credential(&self, device_id: &str) -> Result<Option<(TenantId, String)>>;
    /// Deletes a device's credential (it was offboarded); false when it had none.
    async fn remove_device_credential(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        device_id: &str,
    ) -> Result<bool>;
}

const TOKEN_COLUMNS: &str =
    "id, tenant_id, name, created_time, expires_time, max_uses, uses, revoked";

fn token_from_row(row: &AnyRow) -> Result<EnrollmentToken> {
    Ok(EnrollmentToken {
        id: row.try_get("id")?,
        tenant_id: parse_tenant_id(&row.try_get::<String, _>("tenant_id")?)?,
        name: row.try_get("name")?,
        created_time: from_micros(row.try_get("created_time")?),
        expires_time: row
            .try_get::<Option<i64>, _>("expires_time")?
            .map(from_micros),
        max_uses: row.try_get("max_uses")?,
        uses: row.try_get("uses")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
    })
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn create_enrollment_token(
        &self,
        ctx: &AuditContext,
        token: &EnrollmentToken,
        token_hash: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO enrollment_tokens (id, tenant_id, name, token_hash, created_time, expires_time, max_uses, uses, revoked) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(token.id.as_str())
        .bind(token.tenant_id.to_string())
        .bind(token.name.as_str())
        .bind(token_hash)
        .bind(to_micros(token.created_time))
        .bind(token.expires_time.map(to_micros))
        .bind(token.max_uses)
        .bind(token.uses)
        .bind(i64::from(token.revoked))
        .execute(&mut *tx)
        .await;
        if let Err(e) = &inserted
            && is_unique_violation(e)
        {
            return Err(StoreError::Conflict(format!(
                "an enrollment token with id {} or the same secret exists already",
                token.id
            )));
        }
        inserted?;
        record(
            &mut tx,
            ctx,
            Change {
                tenant: token.tenant_id,
                action: "Create",
                entity_type: "EnrollmentToken",
                entity_id: &token.id,
                before: None,
                after: serde_json::to_value(token).ok(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_enrollment_tokens(&self, tenant: TenantId) -> Result<Vec<EnrollmentToken>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM enrollment_tokens WHERE tenant_id = $1 ORDER BY created_time, id"
        ))
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_enrollment_token(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Revoking first and reading after means the write lock is taken before the read, so
        // the `before` recorded is the row this revocation changed, not a stale copy.
        let revoked = sqlx::query(&format!(
            "UPDATE enrollment_tokens SET revoked = 1 WHERE tenant_id = $1 AND id = $2 AND revoked = 0 \
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = revoked else {
            let exists: Option<String> = sqlx::query_scalar(
                "SELECT id FROM enrollment_tokens WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.to_string())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            return Ok(exists.is_some());
        };
        let after = token_from_row(&row)?;
        let before = EnrollmentToken {
            revoked: false,
            ..after.clone()
        };
        record(
            &mut tx,
            ctx,
            Change {
                tenant,
                action: "Revoke",
                entity_type: "EnrollmentToken",
                entity_id: id,
                before: serde_json::to_value(&before).ok(),
                after: serde_json::to_value(&after).ok(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn enroll_device(
        &self,
        ctx: &AuditContext,
        token_hash: &str,
        device_id: &str,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(TenantId, EnrollmentToken)>> {
        let mut tx = self.pool.begin().await?;
        // Checking and consuming a use in one statement is what keeps concurrent enrollments
        // within max_uses: each UPDATE sees the count the previous one left (PostgreSQL re-checks
        // the WHERE on the locked row; SQLite runs one writer at a time).
        let consumed = sqlx::query(&format!(
            "UPDATE enrollment_tokens SET uses = uses + 1 \
             WHERE token_hash = $1 AND revoked = 0 \
             AND (expires_time IS NULL OR expires_time > $2) \
             AND (max_uses IS NULL OR uses < max_uses) \
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(token_hash)
        .bind(to_micros(now))
        .fetch_optional(&mut *tx)
        .await?;
        // Dropping the transaction rolls it back: nothing was changed anyway.
        let Some(row) = consumed else { return Ok(None) };
        let token = token_from_row(&row)?;
        let inserted = sqlx::query(
            "INSERT INTO device_credentials (device_id, tenant_id, secret_hash, enrollment_token_id, created_time) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(device_id)
        .bind(token.tenant_id.to_string())
        .bind(secret_hash)
        .bind(token.id.as_str())
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await;
        if let Err(e) = &inserted
            && is_unique_violation(e)
        {
            // Returning drops the transaction, which gives the token its use back.
            return Err(StoreError::Conflict(format!(
                "device {device_id} is enrolled already"
            )));
        }
        inserted?;
        record(
            &mut tx,
            ctx,
            Change {
                tenant: token.tenant_id,
                action: "Enroll",
                entity_type: "Device",
                entity_id: device_id,
                before: None,
                after: Some(serde_json::json!({
                    "deviceId": device_id,
                    "enrollmentTokenId": token.id,
                    "enrollmentTokenUses": token.uses,
                })),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some((token.tenant_id, token)))
    }

    async fn remove_device_credential(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        device_id: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let removed =
            sqlx::query("DELETE FROM device_credentials WHERE tenant_id = $1 AND device_id = $2")
                .bind(tenant.to_string())
                .bind(device_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        if removed {
            record(
                &mut tx,
                ctx,
                Change {
                    tenant,
                    action: "Offboard",
                    entity_type: "Device",
                    entity_id: device_id,
                    before: None,
                    after: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn device_credential(&self, device_id: &str) -> Result<Option<(TenantId, String)>> {
        let row = sqlx::query(
            "SELECT tenant_id, secret_hash FROM device_credentials WHERE device_id = $1",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((
                parse_tenant_id(&row.try_get::<String, _>("tenant_id")?)?,
                row.try_get("secret_hash")?,
            ))),
        }
    }
}
