//! Entities stored as documents: the MDE JSON of the entity in `body`, plus the columns OData
//! filters and sorts on, plus `row_version` for optimistic concurrency.
//!
//! Every resource table follows the same layout (`seq`, `tenant_id`, its key column, its indexed
//! columns, `row_version`, `body`), so inserting, reading, updating and deleting is written once here,
//! with the audit entry in the same transaction.

use crate::SqlStore;
use crate::audit::{Change, record};
use crate::error::{Result, StoreError};
use crate::sql::{SqlBuilder, SqlValue};
use crate::util::{is_unique_violation, to_json};
use rampart_core::audit::AuditContext;
use rampart_core::odata::EntitySet;
use rampart_core::{Rejection, TenantId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;

/// An entity kept as a document.
pub trait Document: Serialize + DeserializeOwned + Send + Sync + 'static {
    const TABLE: &'static str;
    /// The entity type named in audit entries, e.g. `Alert`.
    const ENTITY: &'static str;
    /// The column that holds [`Document::key`]; unique within a tenant.
    const KEY_COLUMN: &'static str;
    /// What `$filter` and `$orderby` may use on this table.
    const SET: &'static EntitySet;
    /// A field indexed by a hash of its value instead of the value itself.
    const HASHED: Option<HashedField> = None;

    fn key(&self) -> String;
    /// The indexed columns besides the key, with this document's values.
    fn columns(&self) -> Vec<(&'static str, SqlValue)>;

    /// String collections that OData's `any(…)` filters on, as (column name, values). Each lives
    /// in the side table `{TABLE}_{column}` (`entity_seq`, `value`), kept in step on every write.
    fn collections(&self) -> Vec<(&'static str, Vec<String>)> {
        Vec::new()
    }
}

/// A string field whose index holds a hash of the value (and the value only in the row): a
/// filter `field eq 'v'` or `field in (…)` is served by that index, through the extra condition
/// `key_column IN (hashes)` (the comparison on the value itself stays, so a collision of hashes
/// never lets a wrong row through).
#[derive(Clone, Copy, Debug)]
pub struct HashedField {
    /// The OData name of the field.
    pub field: &'static str,
    /// The column that holds the hash.
    pub key_column: &'static str,
    /// The hash of a value in a tenant.
    pub key: fn(tenant: &str, value: &str) -> i64,
}

/// Rewrites the side-table rows of a document's string collections.
async fn sync_collections<D: Document>(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    doc: &D,
) -> Result<()> {
    let collections = doc.collections();
    if collections.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT seq FROM {} WHERE tenant_id = $1 AND {} = $2",
        D::TABLE,
        D::KEY_COLUMN
    );
    let seq: i64 = sqlx::query_scalar(&sql)
        .bind(tenant.to_string())
        .bind(doc.key())
        .fetch_one(&mut *conn)
        .await?;
    for (column, values) in collections {
        let side = format!("{}_{column}", D::TABLE);
        sqlx::query(&format!("DELETE FROM {side} WHERE entity_seq = $1"))
            .bind(seq)
            .execute(&mut *conn)
            .await?;
        for v in values {
            sqlx::query(&format!(
                "INSERT INTO {side} (entity_seq, value) VALUES ($1, $2)"
            ))
            .bind(seq)
            .bind(v)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Deletes the side-table rows of a document about to be deleted.
async fn delete_collections<D: Document>(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    doc: &D,
) -> Result<()> {
    for (column, _) in doc.collections() {
        let sql = format!(
            "DELETE FROM {table}_{column} WHERE entity_seq IN (SELECT seq FROM {table} WHERE tenant_id = $1 AND {key} = $2)",
            table = D::TABLE,
            key = D::KEY_COLUMN
        );
        sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(doc.key())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Bound parameters per multi-row INSERT. Far below both dialects' limits on purpose: SQLite
/// looks a parameter's name up by a linear scan, so binding costs grow with the square of this
/// (30,000 made inserting 90% name lookups; 1,000 is within a few percent of the best).
const INSERT_PARAMS: usize = 1_000;

/// How often an update is retried when another writer changed the document in between.
const UPDATE_ATTEMPTS: usize = 50;

/// Inserts documents of one tenant on `conn`, with one audit entry for the batch.
pub(crate) async fn insert<D: Document>(
    conn: &mut sqlx::AnyConnection,
    ctx: &AuditContext,
    tenant: TenantId,
    docs: &[D],
) -> Result<()> {
    let Some(first) = docs.first() else {
        return Ok(());
    };
    let names: Vec<&'static str> = first.columns().iter().map(|(n, _)| *n).collect();
    let per_row = names.len() + 3;
    let rows_per_stmt = (INSERT_PARAMS / per_row).max(1);
    let tenant_text = tenant.to_string();
    for chunk in docs.chunks(rows_per_stmt) {
        let mut b = SqlBuilder::new(crate::sql::Dialect::Sqlite);
        b.push("INSERT INTO ")
            .push(D::TABLE)
            .push(" (tenant_id, ")
            .push(D::KEY_COLUMN);
        for n in &names {
            b.push(", ").push(n);
        }
        b.push(", body) VALUES ");
        for (i, d) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { ", (" });
            b.push_param(SqlValue::Text(tenant_text.clone()))
                .push(", ")
                .push_param(SqlValue::Text(d.key()));
            for (_, v) in d.columns() {
                b.push(", ").push_param(v);
            }
            b.push(", ")
                .push_param(SqlValue::Text(to_json(d)?))
                .push(")");
        }
        match b.query().execute(&mut *conn).await {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "{} with one of these ids exists already",
                    D::ENTITY
                )));
            }
            other => {
                other?;
            }
        }
    }
    for d in docs {
        sync_collections(conn, tenant, d).await?;
    }
    let (entity_id, after) = if docs.len() == 1 {
        (first.key(), serde_json::to_value(first).ok())
    } else {
        let ids: Vec<String> = docs.iter().take(100).map(Document::key).collect();
        (
            format!("{} items", docs.len()),
            Some(serde_json::json!({ "count": docs.len(), "ids": ids })),
        )
    };
    record(
        conn,
        ctx,
        Change {
            tenant,
            action: "Create",
            entity_type: D::ENTITY,
            entity_id: &entity_id,
            before: None,
            after,
        },
    )
    .await
}

/// `UPDATE` of a document's body (`after_text`) and indexed columns, bumping its
/// `row_version`, for the row of `key`.
fn update_statement<D: Document>(
    dialect: crate::sql::Dialect,
    tenant: TenantId,
    key: &str,
    doc: &D,
    after_text: String,
) -> SqlBuilder {
    let mut b = SqlBuilder::new(dialect);
    b.push("UPDATE ")
        .push(D::TABLE)
        .push(" SET row_version = row_version + 1, body = ")
        .push_param(SqlValue::Text(after_text));
    for (name, value) in doc.columns() {
        b.push(", ").push(name).push(" = ").push_param(value);
    }
    b.push(" WHERE tenant_id = ")
        .push_param(SqlValue::Text(tenant.to_string()));
    b.push(" AND ")
        .push(D::KEY_COLUMN)
        .push(" = ")
        .push_param(SqlValue::Text(key.to_owned()));
    b
}

/// Rewrites a stored document on `conn` (body and indexed columns), with its audit entry:
/// for changes made inside a larger transaction, which holds the locks that make a plain
/// rewrite safe (no `row_version` check).
pub(crate) async fn replace<D: Document>(
    conn: &mut sqlx::AnyConnection,
    ctx: &AuditContext,
    tenant: TenantId,
    action: &str,
    before: &str,
    doc: &D,
) -> Result<()> {
    let after_text = to_json(doc)?;
    if after_text == before {
        return Ok(());
    }
    update_statement(
        crate::sql::Dialect::Sqlite,
        tenant,
        &doc.key(),
        doc,
        after_text,
    )
    .query()
    .execute(&mut *conn)
    .await?;
    sync_collections(conn, tenant, doc).await?;
    record(
        conn,
        ctx,
        Change {
            tenant,
            action,
            entity_type: D::ENTITY,
            entity_id: &doc.key(),
            before: serde_json::from_str(before).ok(),
            after: serde_json::to_value(doc).ok(),
        },
    )
    .await
}

/// A document's stored JSON text.
pub(crate) async fn get_raw(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    key_column: &str,
    tenant: TenantId,
    key: &str,
) -> Result<Option<String>> {
    let sql = format!("SELECT body FROM {table} WHERE tenant_id = $1 AND {key_column} = $2");
    Ok(sqlx::query_scalar(&sql)
        .bind(tenant.to_string())
        .bind(key)
        .fetch_optional(conn)
        .await?)
}

pub(crate) fn decode<D: Document>(body: &str) -> Result<D> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("stored {} is unreadable: {e}", D::ENTITY)))
}

impl SqlStore {
    /// Inserts documents in one transaction.
    pub(crate) async fn insert_docs<D: Document>(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        docs: &[D],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert(&mut tx, ctx, tenant, docs).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn get_doc_raw<D: Document>(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<String>> {
        let mut conn = self.pool.acquire().await?;
        get_raw(&mut conn, D::TABLE, D::KEY_COLUMN, tenant, key).await
    }

    pub(crate) async fn get_doc<D: Document>(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<D>> {
        self.get_doc_raw::<D>(tenant, key)
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Applies `change` to a document and stores the result with its audit entry, retrying when
    /// another writer got there first (so concurrent updates never overwrite each other).
    /// `Ok(None)` when the document does not exist; a [`Rejection`] from `change` writes nothing.
    pub(crate) async fn update_doc<D: Document>(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        key: &str,
        action: &str,
        mut change: impl FnMut(&mut D) -> Result<(), Rejection> + Send,
    ) -> Result<Option<D>> {
        let select = format!(
            "SELECT row_version, body FROM {} WHERE tenant_id = $1 AND {} = $2",
            D::TABLE,
            D::KEY_COLUMN
        );
        for _ in 0..UPDATE_ATTEMPTS {
            let row = sqlx::query(&select)
                .bind(tenant.to_string())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let version: i64 = row.try_get("row_version")?;
            let before_text: String = row.try_get("body")?;
            let mut doc: D = decode(&before_text)?;
            change(&mut doc).map_err(StoreError::Rejected)?;
            let after_text = to_json(&doc)?;
            if after_text == before_text {
                return Ok(Some(doc));
            }
            let mut b = update_statement(self.dialect, tenant, key, &doc, after_text);
            b.push(" AND row_version = ")
                .push_param(SqlValue::Int(version));
            let mut tx = self.pool.begin().await?;
            if b.query().execute(&mut *tx).await?.rows_affected() == 0 {
                // Someone else updated it since we read it: read again and re-apply.
                continue;
            }
            sync_collections(&mut tx, tenant, &doc).await?;
            let before = serde_json::from_str(&before_text).ok();
            let after = serde_json::to_value(&doc).ok();
            record(
                &mut tx,
                ctx,
                Change {
                    tenant,
                    action,
                    entity_type: D::ENTITY,
                    entity_id: key,
                    before,
                    after,
                },
            )
            .await?;
            tx.commit().await?;
            return Ok(Some(doc));
        }
        Err(StoreError::Conflict(format!(
            "{} {key} is being changed by others; try again",
            D::ENTITY
        )))
    }

    /// Deletes a document; false when it does not exist.
    pub(crate) async fn delete_doc<D: Document>(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        key: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let Some(before) = get_raw(&mut tx, D::TABLE, D::KEY_COLUMN, tenant, key).await? else {
            return Ok(false);
        };
        delete_collections(&mut tx, tenant, &decode::<D>(&before)?).await?;
        let sql = format!(
            "DELETE FROM {} WHERE tenant_id = $1 AND {} = $2",
            D::TABLE,
            D::KEY_COLUMN
        );
        sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(key)
            .execute(&mut *tx)
            .await?;
        let before = serde_json::from_str(&before).ok();
        record(
            &mut tx,
            ctx,
            Change {
                tenant,
                action: "Delete",
                entity_type: D::ENTITY,
                entity_id: key,
                before,
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Helpers for [`Document::columns`].
pub fn text(v: &Option<String>) -> SqlValue {
    v.clone().map_or(SqlValue::Null, SqlValue::Text)
}

pub fn int(v: Option<i64>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Int)
}

pub fn time(v: Option<time::OffsetDateTime>) -> SqlValue {
    v.map_or(SqlValue::Null, |t| {
        SqlValue::Int(rampart_core::timefmt::to_micros(t))
    })
}
