//! Indicators of compromise.
//!
//! An indicator is unique per tenant by value and type: submitting the same value and type again
//! updates it in place. The unique index holds a compact key instead of the value text:
//! [`value_key`], 8 bytes of SHA-256 over tenant and value, beside the type. Index entries of
//! random 100-byte values made every imported row dirty its own index page and kept the index of
//! a large feed out of the page cache; with 8-byte keys it stays cached and an import touches
//! fewer pages. Two different values with one key (odds of about 1 in 10^6 for a tenant with 10
//! million indicators) cannot both be stored: the second is refused with a reason, never merged. Every submission call (one `POST /api/indicators`,
//! or one import of up to 500) is one transaction with one audit entry, written with multi-row
//! upserts so that threat-intel feeds of millions of indicators load quickly.
//!
//! Concurrency: on SQLite the call runs in a `BEGIN IMMEDIATE` transaction on the store's writer
//! connection, so it sees and writes a stable database and concurrent calls queue for that
//! connection, not in SQLite's sleeping busy handler; the WAL is checkpointed after the commit. On PostgreSQL the
//! existing indicators are read `FOR UPDATE`; a new indicator that another transaction inserts
//! at the same moment is detected (the upsert only overwrites the row it read) and the call is
//! retried from the start, as is a deadlock.
//!
//! Ids are numbers (as MDE's), handed out per tenant from `indicator_counters`; on PostgreSQL
//! they are taken before the transaction so that concurrent imports do not queue on the
//! counter, and a retried attempt leaves a gap.

use crate::SqlStore;
use crate::audit::{Change, record};
use crate::document::{Document, text, time};
use crate::error::{Result, StoreError};
use crate::generations::{GenerationClaim, OwnGenerations};
use crate::sql::{Dialect, SqlValue};
use crate::util::to_json;
use async_trait::async_trait;
use rampart_core::audit::AuditContext;
use rampart_core::indicator::{
    BatchDeleted, INDICATORS, Indicator, IndicatorSubmission, IndicatorType, IndicatorWriter,
    Submitted,
};
use rampart_core::{ErrorCode, Rejection, TenantId};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use time::OffsetDateTime;

impl Document for Indicator {
    const TABLE: &'static str = "indicators";
    const ENTITY: &'static str = "Indicator";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &INDICATORS;
    const HASHED: Option<crate::document::HashedField> = Some(crate::document::HashedField {
        field: "indicatorValue",
        key_column: "value_key",
        key: value_key,
    });

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            (
                "indicator_value",
                SqlValue::Text(self.indicator_value.clone()),
            ),
            (
                "indicator_type",
                SqlValue::Text(self.indicator_type.as_str().to_owned()),
            ),
            ("action", SqlValue::Text(self.action.as_str().to_owned())),
            ("application", text(&self.application)),
            ("title", SqlValue::Text(self.title.clone())),
            (
                "severity",
                SqlValue::Text(self.severity.as_str().to_owned()),
            ),
            (
                "generate_alert",
                SqlValue::Int(i64::from(self.generate_alert)),
            ),
            ("created_by", SqlValue::Text(self.created_by.clone())),
            (
                "created_by_display_name",
                text(&self.created_by_display_name),
            ),
            (
                "creation_time_date_time_utc",
                time(Some(self.creation_time_date_time_utc)),
            ),
            ("expiration_time", time(self.expiration_time)),
        ]
    }

    fn collections(&self) -> Vec<(&'static str, Vec<String>)> {
        vec![
            ("rbac_group_names", self.rbac_group_names.clone()),
            ("rbac_group_ids", self.rbac_group_ids.clone()),
        ]
    }
}

#[async_trait]
pub trait IndicatorStore: Send + Sync {
    /// Creates indicators, or updates those whose value and type exist already, in one
    /// transaction with one audit entry. One outcome per submission, in order; a value given
    /// twice in one call is created by the first and updated by the second.
    async fn submit_indicators(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        writer: &IndicatorWriter,
        items: Vec<IndicatorSubmission>,
    ) -> Result<Vec<Submitted>>;

    /// One indicator (expired or not).
    async fn get_indicator(&self, tenant: TenantId, id: &str) -> Result<Option<Indicator>>;

    /// Up to `limit` of the tenant's indicators (expired ones too) stored after position
    /// `after`, in storage order, each with its position: pass the last position back to read
    /// on. For loading every indicator into the matcher; the first call passes 0.
    async fn indicators_after(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Indicator)>>;

    /// Deletes an indicator; false when it does not exist or, with `owner`, was created by
    /// someone else.
    async fn delete_indicator(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        owner: Option<&str>,
    ) -> Result<bool>;

    /// Every tenant's indicator generation: it grows with each transaction that changes the
    /// tenant's indicators (through any server), so a matcher can tell when to reload.
    async fn indicator_generations(&self) -> Result<Vec<(TenantId, i64)>>;

    /// Whether a generation of `tenant` after `after`, up to `upto`, was written by someone
    /// other than this store (another server, the CLI). Forgets this store's own generations up
    /// to `upto`: ask once per generation read.
    fn indicators_changed_elsewhere(&self, tenant: TenantId, after: i64, upto: i64) -> bool;

    /// Deletes all of `ids` or, when any is missing (or not the `owner`'s), none.
    async fn delete_indicators(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        ids: &[String],
        owner: Option<&str>,
    ) -> Result<BatchDeleted>;
}

/// Attempts on PostgreSQL before giving up on a call that keeps meeting concurrent writers.
const ATTEMPTS: usize = 20;
/// Values per `IN (…)` when reading existing indicators.
const READ_CHUNK: usize = 500;
/// Bound parameters per upsert statement (see `document::INSERT_PARAMS`).
const WRITE_PARAMS: usize = 1_000;
/// Parameters per upserted row.
const ROW_PARAMS: usize = 16;
/// Ids listed in an import's audit entry.
const AUDIT_IDS: usize = 100;

type Key = (IndicatorType, String);

/// The unique-index key of `value` in `tenant`: the first 8 bytes of SHA-256(tenant, 0, value).
/// The type is not hashed (it sits beside the key in the index), so that a filter on the value
/// alone can use the index. Finding a second value with the key of a given one takes about 2^64
/// hashes, so nobody can keep a chosen indicator out by planting a colliding one first.
pub(crate) fn value_key(tenant: &str, value: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(tenant.as_bytes())
        .chain_update([0u8])
        .chain_update(value.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Gives the indicators written before `value_key` existed their key (migration 7).
pub(crate) async fn backfill_value_keys(conn: &mut sqlx::AnyConnection) -> sqlx::Result<()> {
    loop {
        let rows = sqlx::query(
            "SELECT seq, tenant_id, indicator_value FROM indicators WHERE value_key IS NULL LIMIT 1000",
        )
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            let tenant: String = row.try_get("tenant_id")?;
            let value: String = row.try_get("indicator_value")?;
            sqlx::query("UPDATE indicators SET value_key = $1 WHERE seq = $2")
                .bind(value_key(&tenant, &value))
                .bind(seq)
                .execute(&mut *conn)
                .await?;
        }
    }
}

/// Import calls between two explicit WAL checkpoints on SQLite.
const CHECKPOINT_EVERY: u64 = 8;

/// A stored indicator that a submission matches.
struct Existing {
    seq: i64,
    version: i64,
    doc: Indicator,
}

/// One distinct value+type of a call.
struct Slot {
    existing: Option<Existing>,
    doc: Option<Indicator>,
    touched: bool,
}

enum Outcome {
    Slot { idx: usize, created: bool },
    Refused(Rejection),
}

/// Why an attempt must start over.
enum AttemptError {
    Retry,
    Fail(StoreError),
}

impl From<StoreError> for AttemptError {
    fn from(e: StoreError) -> Self {
        AttemptError::Fail(e)
    }
}

impl From<sqlx::Error> for AttemptError {
    fn from(e: sqlx::Error) -> Self {
        if is_retryable(&e) {
            AttemptError::Retry
        } else {
            AttemptError::Fail(e.into())
        }
    }
}

/// Deadlocks, serialization failures and unique violations between concurrent writers.
fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation() || matches!(d.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

fn decode(body: &str) -> Result<Indicator> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("stored Indicator is unreadable: {e}")))
}

impl SqlStore {
    /// A write transaction: on SQLite on the writer connection, `BEGIN IMMEDIATE` (the write
    /// lock first, so that what the transaction reads stays true until it commits).
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.dialect {
            Dialect::Sqlite => Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?),
            Dialect::Postgres => self.pg_tx().await,
        }
    }

    /// A PostgreSQL transaction whose statements are planned for their actual values. The
    /// lookups by `IN (…)` are prepared once per connection, and a generic plan made while the
    /// table was small (a sequential scan) would otherwise stay in use as it grows to millions
    /// of rows, until an ANALYZE: it made one import call take 17 s.
    async fn pg_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// SQL text with placeholders as each dialect binds them fastest: `?` on SQLite, whose `$N`
/// names are found by a linear scan per bound parameter (quadratic in a multi-row statement:
/// it was a third of an import's time), `$N` on PostgreSQL. Values are bound in text order.
struct Sql {
    text: String,
    dialect: Dialect,
    params: usize,
}

impl Sql {
    fn new(dialect: Dialect, text: &str) -> Sql {
        let mut s = String::with_capacity(256);
        s.push_str(text);
        Sql {
            text: s,
            dialect,
            params: 0,
        }
    }

    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    fn param(&mut self) -> &mut Sql {
        self.params += 1;
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.params.to_string());
            }
        }
        self
    }

    /// `n` comma-separated placeholders.
    fn params(&mut self, n: usize) -> &mut Sql {
        for i in 0..n {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.param();
        }
        self
    }
}

/// What the store holds under the index keys of a call's values.
#[derive(Default)]
struct Lookup {
    /// The tenant's indicators with one of the values, by value and type.
    existing: HashMap<Key, Existing>,
    /// Values whose index key and type are held by a different value (a hash collision).
    taken: HashSet<Key>,
}

/// Reads the stored indicators under the index keys of `keys` (`lock`: `FOR UPDATE` on
/// PostgreSQL).
async fn read_existing(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    tenant: &str,
    keys: &[Key],
    lock: bool,
) -> Result<Lookup> {
    // Each value's key, asked once even when the value comes with several types.
    let mut by_key: HashMap<i64, Vec<&Key>> = HashMap::with_capacity(keys.len());
    for k in keys {
        by_key.entry(value_key(tenant, &k.1)).or_default().push(k);
    }
    let mut index_keys: Vec<i64> = by_key.keys().copied().collect();
    index_keys.sort_unstable();
    let mut out = Lookup::default();
    for chunk in index_keys.chunks(READ_CHUNK) {
        let mut sql = Sql::new(
            dialect,
            "SELECT seq, row_version, tenant_id, value_key, indicator_type, indicator_value, body \
             FROM indicators WHERE value_key IN (",
        );
        sql.params(chunk.len()).push(")");
        if lock && dialect == Dialect::Postgres {
            // Row locks in one order for every caller, so that concurrent calls do not deadlock.
            sql.push(" ORDER BY value_key, indicator_type FOR UPDATE");
        }
        let mut q = sqlx::query(&sql.text);
        for k in chunk {
            q = q.bind(*k);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let stored_type: String = row.try_get("indicator_type")?;
            let Some(wanted) = by_key
                .get(&row.try_get::<i64, _>("value_key")?)
                .and_then(|ks| ks.iter().find(|k| k.0.as_str() == stored_type))
            else {
                continue; // the same value with a type this call does not submit
            };
            if row.try_get::<String, _>("tenant_id")? != tenant
                || row.try_get::<String, _>("indicator_value")? != wanted.1
            {
                out.taken.insert((*wanted).clone());
                continue;
            }
            out.existing.insert(
                (*wanted).clone(),
                Existing {
                    seq: row.try_get("seq")?,
                    version: row.try_get("row_version")?,
                    doc: decode(&row.try_get::<String, _>("body")?)?,
                },
            );
        }
    }
    Ok(out)
}

/// Marks the tenant's indicators changed (see [`IndicatorStore::indicator_generations`]) and
/// notes the new generation as this store's own (see [`OwnGenerations`]): keep the claim once
/// the transaction commits. Every writer takes the counter row after the indicator rows it
/// changes, so that concurrent transactions lock in one order.
pub(crate) async fn bump_generation(
    conn: &mut sqlx::AnyConnection,
    own: &Arc<OwnGenerations>,
    tenant: &str,
) -> sqlx::Result<GenerationClaim> {
    let generation: i64 = sqlx::query_scalar(
        "INSERT INTO indicator_counters (tenant_id, last_id, generation) VALUES ($1, 0, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET generation = indicator_counters.generation + 1 \
         RETURNING generation",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    Ok(own.claim(tenant, generation))
}

/// Reserves `n` ids of the tenant; returns the first.
async fn allocate_ids<'e, E>(executor: E, tenant: &str, n: usize) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let n = n as i64;
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO indicator_counters (tenant_id, last_id) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_id = indicator_counters.last_id + excluded.last_id \
         RETURNING last_id",
    )
    .bind(tenant)
    .bind(n)
    .fetch_one(executor)
    .await?;
    Ok(last - n + 1)
}

/// Applies the submissions in order to the slots of their keys.
fn plan(
    items: Vec<IndicatorSubmission>,
    lookup: Lookup,
    writer: &IndicatorWriter,
    mut next_id: i64,
    now: OffsetDateTime,
) -> (Vec<Slot>, Vec<Outcome>) {
    let Lookup {
        mut existing,
        taken,
    } = lookup;
    let mut index: HashMap<Key, usize> = HashMap::with_capacity(items.len());
    let mut slots: Vec<Slot> = Vec::new();
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let key = (item.indicator_type, item.indicator_value.clone());
        if taken.contains(&key) {
            // Another tenant's value may hold the key: say nothing about it.
            outcomes.push(Outcome::Refused(Rejection::new(
                ErrorCode::Conflict,
                format!(
                    "The {} indicator '{}' cannot be stored: its index key collides with another stored indicator's.",
                    key.0, key.1
                ),
            )));
            continue;
        }
        let idx = *index.entry(key).or_insert_with_key(|k| {
            let existing = existing.remove(k);
            slots.push(Slot {
                doc: existing.as_ref().map(|e| e.doc.clone()),
                existing,
                touched: false,
            });
            slots.len() - 1
        });
        let slot = &mut slots[idx];
        match &mut slot.doc {
            Some(doc) => {
                if let Some(owner) = writer.owner()
                    && doc.created_by != owner
                {
                    outcomes.push(Outcome::Refused(Rejection::new(
                        ErrorCode::DisallowedOperation,
                        format!(
                            "The {} indicator '{}' exists and was created by another application; changing it needs Ti.ReadWrite.All.",
                            doc.indicator_type, doc.indicator_value
                        ),
                    )));
                    continue;
                }
                doc.update(item, &writer.submitter, now);
                slot.touched = true;
                outcomes.push(Outcome::Slot {
                    idx,
                    created: false,
                });
            }
            None => {
                slot.doc = Some(Indicator::create(
                    item,
                    next_id.to_string(),
                    &writer.submitter,
                    now,
                ));
                next_id += 1;
                slot.touched = true;
                outcomes.push(Outcome::Slot { idx, created: true });
            }
        }
    }
    (slots, outcomes)
}

/// Upserts the touched slots, rewrites their device-group side rows, and records the audit
/// entry; returns the claim of the tenant's new generation, if anything was written. `Retry`
/// when a concurrent writer got to one of the rows first.
async fn write(
    conn: &mut sqlx::AnyConnection,
    store: &SqlStore,
    ctx: &AuditContext,
    tenant: TenantId,
    slots: &[Slot],
    outcomes: &[Outcome],
) -> Result<Option<GenerationClaim>, AttemptError> {
    let tenant_text = tenant.to_string();
    let rows: Vec<(&Slot, &Indicator)> = slots
        .iter()
        .filter(|s| s.touched)
        .filter_map(|s| s.doc.as_ref().map(|d| (s, d)))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let claim = bump_generation(conn, &store.own_generations, &tenant_text).await?;
    let dialect = store.dialect;
    let mut rows: Vec<(i64, &Slot, &Indicator)> = rows
        .into_iter()
        .map(|(s, d)| (value_key(&tenant_text, &d.indicator_value), s, d))
        .collect();
    // One order for every caller, so that concurrent calls take row locks without deadlock.
    rows.sort_unstable_by(|a, b| {
        (a.0, a.2.indicator_type.as_str()).cmp(&(b.0, b.2.indicator_type.as_str()))
    });
    let per_stmt = (WRITE_PARAMS / ROW_PARAMS).max(1);
    for chunk in rows.chunks(per_stmt) {
        let bodies: Vec<String> = chunk
            .iter()
            .map(|(_, _, d)| to_json(d))
            .collect::<Result<_>>()?;
        let mut sql = Sql::new(
            dialect,
            "INSERT INTO indicators (tenant_id, id, value_key, indicator_value, indicator_type, \
             action, application, title, severity, generate_alert, created_by, \
             created_by_display_name, creation_time_date_time_utc, expiration_time, row_version, \
             body) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .params(ROW_PARAMS)
                .push(")");
        }
        sql.push(
            " ON CONFLICT (value_key, indicator_type) DO UPDATE SET \
             action = excluded.action, application = excluded.application, \
             title = excluded.title, severity = excluded.severity, \
             generate_alert = excluded.generate_alert, \
             created_by_display_name = excluded.created_by_display_name, \
             expiration_time = excluded.expiration_time, row_version = excluded.row_version, \
             body = excluded.body \
             WHERE indicators.id = excluded.id AND indicators.row_version = excluded.row_version - 1 \
             AND indicators.tenant_id = excluded.tenant_id \
             AND indicators.indicator_value = excluded.indicator_value",
        );
        let mut q = sqlx::query(&sql.text);
        for ((key, slot, d), body) in chunk.iter().zip(&bodies) {
            let version = slot.existing.as_ref().map_or(0, |e| e.version + 1);
            q = q
                .bind(tenant_text.as_str())
                .bind(d.id.as_str())
                .bind(*key)
                .bind(d.indicator_value.as_str())
                .bind(d.indicator_type.as_str())
                .bind(d.action.as_str())
                .bind(d.application.as_deref())
                .bind(d.title.as_str())
                .bind(d.severity.as_str())
                .bind(i64::from(d.generate_alert))
                .bind(d.created_by.as_str())
                .bind(d.created_by_display_name.as_deref())
                .bind(rampart_core::timefmt::to_micros(
                    d.creation_time_date_time_utc,
                ))
                .bind(d.expiration_time.map(rampart_core::timefmt::to_micros))
                .bind(version)
                .bind(body.as_str());
        }
        let affected = q.execute(&mut *conn).await?.rows_affected();
        if affected != chunk.len() as u64 {
            // A row this call did not read is in the way: another writer's new indicator.
            return Err(AttemptError::Retry);
        }
    }
    let rows: Vec<(&Slot, &Indicator)> = rows.into_iter().map(|(_, s, d)| (s, d)).collect();
    write_groups(conn, dialect, &tenant_text, &rows).await?;

    let (created, updated) = outcomes.iter().fold((0, 0), |(c, u), o| match o {
        Outcome::Slot { created: true, .. } => (c + 1, u),
        Outcome::Slot { created: false, .. } => (c, u + 1),
        Outcome::Refused(_) => (c, u),
    });
    let change = if outcomes.len() == 1 {
        let (slot, doc) = rows[0];
        Change {
            tenant,
            action: if slot.existing.is_some() {
                "Update"
            } else {
                "Create"
            },
            entity_type: "Indicator",
            entity_id: &doc.id,
            before: slot
                .existing
                .as_ref()
                .and_then(|e| serde_json::to_value(&e.doc).ok()),
            after: serde_json::to_value(doc).ok(),
        }
    } else {
        let ids: Vec<&str> = rows
            .iter()
            .take(AUDIT_IDS)
            .map(|(_, d)| d.id.as_str())
            .collect();
        let summary = serde_json::json!({
            "received": outcomes.len(),
            "created": created,
            "updated": updated,
            "refused": outcomes.len() - created - updated,
            "ids": ids,
        });
        record(
            conn,
            ctx,
            Change {
                tenant,
                action: "Import",
                entity_type: "Indicator",
                entity_id: &format!("{} items", rows.len()),
                before: None,
                after: Some(summary),
            },
        )
        .await?;
        return Ok(Some(claim));
    };
    record(conn, ctx, change).await?;
    Ok(Some(claim))
}

/// Rewrites the `rbacGroupNames`/`rbacGroupIds` side rows of the rows whose groups changed.
async fn write_groups(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    tenant: &str,
    rows: &[(&Slot, &Indicator)],
) -> Result<(), AttemptError> {
    let changed = |s: &Slot, d: &Indicator| match &s.existing {
        Some(e) => {
            e.doc.rbac_group_names != d.rbac_group_names || e.doc.rbac_group_ids != d.rbac_group_ids
        }
        None => !d.rbac_group_names.is_empty() || !d.rbac_group_ids.is_empty(),
    };
    let todo: Vec<(&Slot, &Indicator)> = rows
        .iter()
        .filter(|(s, d)| changed(s, d))
        .copied()
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    // The seq of each row: known for existing rows, looked up for new ones.
    let mut seqs: Vec<(i64, &Indicator)> = Vec::with_capacity(todo.len());
    let new_ids: Vec<&str> = todo
        .iter()
        .filter(|(s, _)| s.existing.is_none())
        .map(|(_, d)| d.id.as_str())
        .collect();
    let mut new_seqs: HashMap<String, i64> = HashMap::new();
    for chunk in new_ids.chunks(READ_CHUNK) {
        let mut sql = Sql::new(dialect, "SELECT id, seq FROM indicators WHERE tenant_id = ");
        sql.param()
            .push(" AND id IN (")
            .params(chunk.len())
            .push(")");
        let mut q = sqlx::query(&sql.text).bind(tenant);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            new_seqs.insert(row.try_get("id")?, row.try_get("seq")?);
        }
    }
    for (s, d) in &todo {
        let seq = match &s.existing {
            Some(e) => e.seq,
            None => *new_seqs
                .get(&d.id)
                .ok_or_else(|| StoreError::Corrupt(format!("indicator {} vanished", d.id)))?,
        };
        seqs.push((seq, d));
    }
    for (table, pick) in [
        (
            "indicators_rbac_group_names",
            (|d: &Indicator| &d.rbac_group_names) as fn(&Indicator) -> &Vec<String>,
        ),
        ("indicators_rbac_group_ids", |d: &Indicator| {
            &d.rbac_group_ids
        }),
    ] {
        let olds: Vec<i64> = todo
            .iter()
            .zip(&seqs)
            .filter(|((s, _), _)| s.existing.is_some())
            .map(|(_, (seq, _))| *seq)
            .collect();
        for chunk in olds.chunks(READ_CHUNK) {
            let mut sql = Sql::new(dialect, "DELETE FROM ");
            sql.push(table)
                .push(" WHERE entity_seq IN (")
                .params(chunk.len())
                .push(")");
            let mut q = sqlx::query(&sql.text);
            for seq in chunk {
                q = q.bind(*seq);
            }
            q.execute(&mut *conn).await?;
        }
        let pairs: Vec<(i64, &str)> = seqs
            .iter()
            .flat_map(|(seq, d)| pick(d).iter().map(move |v| (*seq, v.as_str())))
            .collect();
        for chunk in pairs.chunks(WRITE_PARAMS / 2) {
            let mut sql = Sql::new(dialect, "INSERT INTO ");
            sql.push(table).push(" (entity_seq, value) VALUES ");
            for i in 0..chunk.len() {
                sql.push(if i == 0 { "(" } else { ", (" })
                    .params(2)
                    .push(")");
            }
            let mut q = sqlx::query(&sql.text);
            for (seq, v) in chunk {
                q = q.bind(*seq).bind(*v);
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

fn finish(slots: &[Slot], outcomes: Vec<Outcome>) -> Vec<Submitted> {
    outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Refused(r) => Submitted::Refused(r),
            Outcome::Slot { idx, created } => {
                let doc = slots[idx]
                    .doc
                    .clone()
                    .expect("a written slot has a document");
                if created {
                    Submitted::Created(doc)
                } else {
                    Submitted::Updated(doc)
                }
            }
        })
        .collect()
}

impl SqlStore {
    async fn submit_sqlite(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        writer: &IndicatorWriter,
        items: Vec<IndicatorSubmission>,
        keys: &[Key],
    ) -> Result<Vec<Submitted>> {
        let tenant_text = tenant.to_string();
        let mut tx = self.write_tx().await?;
        let lookup = read_existing(&mut tx, self.dialect, &tenant_text, keys, false).await?;
        let new = keys.len() - lookup.existing.len() - lookup.taken.len();
        let first_id = if new > 0 {
            allocate_ids(&mut *tx, &tenant_text, new).await?
        } else {
            0
        };
        let (slots, outcomes) = plan(items, lookup, writer, first_id, now());
        let claim = match write(&mut tx, self, ctx, tenant, &slots, &outcomes).await {
            Ok(claim) => claim,
            Err(AttemptError::Fail(e)) => return Err(e),
            Err(AttemptError::Retry) => {
                return Err(StoreError::Conflict(
                    "indicators changed during the call; try again".into(),
                ));
            }
        };
        tx.commit().await?;
        if let Some(claim) = claim {
            claim.keep();
        }
        self.checkpoint().await;
        Ok(finish(&slots, outcomes))
    }

    /// Copies committed WAL pages into the database file after a large write, on a reader
    /// connection once the writer is free: the next import writes meanwhile, instead of waiting while a commit runs
    /// SQLite's automatic checkpoint (whose fsyncs were 40% of an import's time).
    async fn checkpoint(&self) {
        // Every few imports only: the rows of a feed land on random index pages, and a page
        // dirtied by several imports is copied to the database file once per checkpoint, not
        // once per import.
        static IMPORTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        if !IMPORTS
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(CHECKPOINT_EVERY)
        {
            return;
        }
        // PASSIVE neither waits nor blocks: a busy checkpointer or reader makes it do less.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_all(&self.pool)
            .await
        {
            tracing::debug!("passive WAL checkpoint: {e}");
        }
    }

    async fn submit_postgres(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        writer: &IndicatorWriter,
        items: Vec<IndicatorSubmission>,
        keys: &[Key],
    ) -> Result<Vec<Submitted>> {
        let tenant_text = tenant.to_string();
        for _ in 0..ATTEMPTS {
            // Which keys are new decides how many ids to take; taking them outside the
            // transaction keeps the counter row from serialising concurrent calls.
            let (seen, taken): (HashSet<Key>, HashSet<Key>) = {
                let mut tx = self.pg_tx().await?;
                let lookup =
                    read_existing(&mut tx, self.dialect, &tenant_text, keys, false).await?;
                tx.commit().await?;
                (lookup.existing.into_keys().collect(), lookup.taken)
            };
            let new = keys.len() - seen.len() - taken.len();
            let first_id = if new > 0 {
                allocate_ids(&self.pool, &tenant_text, new).await?
            } else {
                0
            };
            let mut tx = self.pg_tx().await?;
            let lookup = match read_existing(&mut tx, self.dialect, &tenant_text, keys, true).await
            {
                Ok(l) => l,
                Err(StoreError::Database(e)) if is_retryable(&e) => continue,
                Err(e) => return Err(e),
            };
            if lookup.existing.len() != seen.len()
                || lookup.existing.keys().any(|k| !seen.contains(k))
                || lookup.taken != taken
            {
                // Indicators came or went since the first look: start over.
                continue;
            }
            let (slots, outcomes) = plan(items.clone(), lookup, writer, first_id, now());
            let claim = match write(&mut tx, self, ctx, tenant, &slots, &outcomes).await {
                Ok(claim) => claim,
                Err(AttemptError::Retry) => continue,
                Err(AttemptError::Fail(e)) => return Err(e),
            };
            match tx.commit().await {
                Ok(()) => {
                    if let Some(claim) = claim {
                        claim.keep();
                    }
                    return Ok(finish(&slots, outcomes));
                }
                Err(e) if is_retryable(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(
            "indicators are being changed by others; try again".into(),
        ))
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[async_trait]
impl IndicatorStore for SqlStore {
    async fn submit_indicators(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        writer: &IndicatorWriter,
        items: Vec<IndicatorSubmission>,
    ) -> Result<Vec<Submitted>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::with_capacity(items.len());
        let keys: Vec<Key> = items
            .iter()
            .map(|i| (i.indicator_type, i.indicator_value.clone()))
            .filter(|k| seen.insert(k.clone()))
            .collect();
        match self.dialect {
            Dialect::Sqlite => self.submit_sqlite(ctx, tenant, writer, items, &keys).await,
            Dialect::Postgres => {
                self.submit_postgres(ctx, tenant, writer, items, &keys)
                    .await
            }
        }
    }

    async fn get_indicator(&self, tenant: TenantId, id: &str) -> Result<Option<Indicator>> {
        self.get_doc::<Indicator>(tenant, id).await
    }

    async fn indicators_after(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Indicator)>> {
        let rows = sqlx::query(
            "SELECT seq, body FROM indicators WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("seq")?,
                    decode(&row.try_get::<String, _>("body")?)?,
                ))
            })
            .collect()
    }

    async fn indicator_generations(&self) -> Result<Vec<(TenantId, i64)>> {
        let rows = sqlx::query("SELECT tenant_id, generation FROM indicator_counters")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let tenant: String = row.try_get("tenant_id")?;
                let tenant = tenant
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("tenant id '{tenant}'")))?;
                Ok((tenant, row.try_get("generation")?))
            })
            .collect()
    }

    fn indicators_changed_elsewhere(&self, tenant: TenantId, after: i64, upto: i64) -> bool {
        self.own_generations
            .foreign(&tenant.to_string(), after, upto)
    }

    async fn delete_indicator(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        owner: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let mut sql = String::from("DELETE FROM indicators WHERE tenant_id = $1 AND id = $2");
        if owner.is_some() {
            sql.push_str(" AND created_by = $3");
        }
        sql.push_str(" RETURNING body");
        let mut q = sqlx::query_scalar::<_, String>(&sql)
            .bind(tenant.to_string())
            .bind(id);
        if let Some(o) = owner {
            q = q.bind(o);
        }
        let Some(before) = q.fetch_optional(&mut *tx).await? else {
            return Ok(false);
        };
        let claim = bump_generation(&mut tx, &self.own_generations, &tenant.to_string()).await?;
        record(
            &mut tx,
            ctx,
            Change {
                tenant,
                action: "Delete",
                entity_type: "Indicator",
                entity_id: id,
                before: serde_json::from_str(&before).ok(),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        claim.keep();
        Ok(true)
    }

    async fn delete_indicators(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        ids: &[String],
        owner: Option<&str>,
    ) -> Result<BatchDeleted> {
        let mut unique: Vec<&str> = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(&id.as_str()) {
                unique.push(id);
            }
        }
        let tenant_text = tenant.to_string();
        let mut tx = self.write_tx().await?;
        let mut found: HashSet<String> = HashSet::with_capacity(unique.len());
        for chunk in unique.chunks(READ_CHUNK) {
            let mut sql = Sql::new(self.dialect, "SELECT id FROM indicators WHERE tenant_id = ");
            sql.param();
            if owner.is_some() {
                sql.push(" AND created_by = ").param();
            }
            sql.push(" AND id IN (").params(chunk.len()).push(")");
            if self.dialect == Dialect::Postgres {
                sql.push(" ORDER BY id FOR UPDATE");
            }
            let mut q = sqlx::query_scalar::<_, String>(&sql.text).bind(tenant_text.as_str());
            if let Some(o) = owner {
                q = q.bind(o);
            }
            for id in chunk {
                q = q.bind(*id);
            }
            found.extend(q.fetch_all(&mut *tx).await?);
        }
        let missing: Vec<String> = unique
            .iter()
            .filter(|id| !found.contains(**id))
            .map(|id| (*id).to_owned())
            .collect();
        if !missing.is_empty() {
            return Ok(BatchDeleted::NotFound(missing));
        }
        let mut deleted = 0;
        for chunk in unique.chunks(READ_CHUNK) {
            let mut sql = Sql::new(self.dialect, "DELETE FROM indicators WHERE tenant_id = ");
            sql.param()
                .push(" AND id IN (")
                .params(chunk.len())
                .push(")");
            let mut q = sqlx::query(&sql.text).bind(tenant_text.as_str());
            for id in chunk {
                q = q.bind(*id);
            }
            deleted += q.execute(&mut *tx).await?.rows_affected() as usize;
        }
        let claim = bump_generation(&mut tx, &self.own_generations, &tenant_text).await?;
        let listed: Vec<&str> = unique.iter().take(AUDIT_IDS).copied().collect();
        record(
            &mut tx,
            ctx,
            Change {
                tenant,
                action: "BatchDelete",
                entity_type: "Indicator",
                entity_id: &format!("{} items", unique.len()),
                before: Some(serde_json::json!({ "count": unique.len(), "ids": listed })),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        claim.keep();
        Ok(BatchDeleted::Deleted(deleted))
    }
}
