//! Correlation as alerts are stored ([`rampart_core::correlation`] has the rules): each new
//! alert's entities go to `alert_entities` (kind, value, alert, incident, time), the index that
//! finds the alerts a new one shares an entity with; the alert then joins, opens or merges
//! incidents in the transaction that stores it. Placements of one tenant are serialised (the
//! SQLite writer connection; a transaction-scoped advisory lock on PostgreSQL), so two alerts
//! of one story arriving at once cannot open two incidents.

use crate::document::{self, get_raw};
use crate::error::{Result, StoreError};
use crate::sql::{Dialect, SqlBuilder, SqlValue};
use rampart_core::TenantId;
use rampart_core::alert::Alert;
use rampart_core::audit::AuditContext;
use rampart_core::correlation::{
    self, Candidate, CorrelationPolicy, CorrelationReason, Entity, EntityKind,
};
use rampart_core::incident::{Incident, IncidentStatus};
use rampart_core::timefmt::to_micros;
use sqlx::Row;
use std::collections::BTreeSet;
use time::OffsetDateTime;

type Conn = sqlx::AnyConnection;

/// Takes the tenant's correlation lock for the rest of the transaction (PostgreSQL; on SQLite
/// the single writer connection already serialises).
pub(crate) async fn lock_tenant(conn: &mut Conn, dialect: Dialect, tenant: TenantId) -> Result<()> {
    if dialect == Dialect::Postgres {
        // A key per tenant, apart from the migration lock's.
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("correlate:{tenant}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let key = i64::from_be_bytes(first);
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The tenant's correlation policy (the default when none was set).
pub(crate) async fn policy(conn: &mut Conn, tenant: TenantId) -> Result<CorrelationPolicy> {
    crate::settings::get(conn, tenant, &crate::settings::CORRELATION).await
}

/// Stores `alert` (whose `incident_id` is unset) in the incident correlation places it in:
/// one of its own, or the oldest open incident it links to, merging any other it links to.
pub(crate) async fn place_and_insert(
    conn: &mut Conn,
    ctx: &AuditContext,
    tenant: TenantId,
    policy: &CorrelationPolicy,
    mut alert: Alert,
    now: OffsetDateTime,
) -> Result<Alert> {
    let entities = correlation::entities(&alert);
    let at = correlation::alert_time(&alert).unwrap_or(now);
    let candidates = if policy.link_by.is_empty() {
        Vec::new()
    } else {
        candidates(conn, tenant, policy, &entities, at).await?
    };
    match correlation::place(&alert.id, policy, &candidates) {
        None => {
            let id = crate::counters::reserve(conn, tenant, "incident", 1).await?;
            alert.incident_id = Some(id);
            document::insert(conn, ctx, tenant, std::slice::from_ref(&alert)).await?;
            let incident = Incident::for_alert(id, &alert, now);
            document::insert(conn, ctx, tenant, std::slice::from_ref(&incident)).await?;
            record_reason(conn, tenant, id, &CorrelationReason::opened(&alert.id)).await?;
        }
        Some((survivor, reason, merged)) => {
            alert.incident_id = Some(survivor);
            document::insert(conn, ctx, tenant, std::slice::from_ref(&alert)).await?;
            let mut absorbed = Vec::new();
            for id in merged {
                absorbed.extend(redirect(conn, ctx, tenant, id, survivor, now).await?);
            }
            join(conn, ctx, tenant, survivor, &alert, &absorbed, now).await?;
            record_reason(conn, tenant, survivor, &reason).await?;
        }
    }
    index(conn, tenant, &alert, &entities, at).await?;
    Ok(alert)
}

/// Records an alert's entities in the index.
pub(crate) async fn index(
    conn: &mut Conn,
    tenant: TenantId,
    alert: &Alert,
    entities: &[Entity],
    at: OffsetDateTime,
) -> Result<()> {
    let Some(incident) = alert.incident_id else {
        return Ok(());
    };
    for e in entities {
        sqlx::query(
            "INSERT INTO alert_entities (tenant_id, kind, value, alert_id, incident_id, event_time) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.to_string())
        .bind(e.kind.as_str())
        .bind(e.value.as_str())
        .bind(alert.id.as_str())
        .bind(incident)
        .bind(to_micros(at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The incidents holding a stored alert that shares one of `entities` within the window around
/// `at` — one row per incident and entity, with the first such alert — that are open. (An
/// alert classified a false positive has no entities in the index: it links nothing.)
async fn candidates(
    conn: &mut Conn,
    tenant: TenantId,
    policy: &CorrelationPolicy,
    entities: &[Entity],
    at: OffsetDateTime,
) -> Result<Vec<Candidate>> {
    let entities: Vec<&Entity> = entities
        .iter()
        .filter(|e| policy.link_by.contains(&e.kind))
        .collect();
    if entities.is_empty() {
        return Ok(Vec::new());
    }
    let window = policy.window();
    let mut b = SqlBuilder::new(Dialect::Sqlite);
    b.push("SELECT incident_id, kind, value, MIN(alert_id) AS alert_id FROM alert_entities WHERE tenant_id = ")
        .push_param(SqlValue::Text(tenant.to_string()))
        .push(" AND event_time >= ")
        .push_param(SqlValue::Int(to_micros(at - window)))
        .push(" AND event_time <= ")
        .push_param(SqlValue::Int(to_micros(at + window)))
        .push(" AND (");
    for (i, e) in entities.iter().enumerate() {
        b.push(if i == 0 { "(kind = " } else { " OR (kind = " })
            .push_param(SqlValue::Text(e.kind.as_str().into()))
            .push(" AND value = ")
            .push_param(SqlValue::Text(e.value.clone()))
            .push(")");
    }
    b.push(") GROUP BY incident_id, kind, value");
    let rows = b.query().fetch_all(&mut *conn).await?;
    let mut found = Vec::with_capacity(rows.len());
    for r in rows {
        found.push(Candidate {
            alert_id: r.try_get("alert_id")?,
            incident_id: r.try_get("incident_id")?,
            entity: Entity {
                kind: stored_kind(r.try_get("kind")?)?,
                value: r.try_get("value")?,
            },
        });
    }
    if found.is_empty() {
        return Ok(found);
    }
    // Only open incidents take alerts: their statuses, by key (the unique index).
    let keys: BTreeSet<i64> = found.iter().map(|c| c.incident_id).collect();
    let mut b = SqlBuilder::new(Dialect::Sqlite);
    b.push("SELECT incident_id FROM incidents WHERE tenant_id = ")
        .push_param(SqlValue::Text(tenant.to_string()))
        .push(" AND incident_key IN ")
        .push_list(keys.iter().map(|id| SqlValue::Text(id.to_string())))
        .push(" AND status IN ")
        .push_list(
            [IncidentStatus::Active, IncidentStatus::InProgress]
                .map(|s| SqlValue::Text(s.as_str().into())),
        );
    let mut open = BTreeSet::new();
    for r in b.query().fetch_all(&mut *conn).await? {
        open.insert(r.try_get::<i64, _>("incident_id")?);
    }
    found.retain(|c| open.contains(&c.incident_id));
    Ok(found)
}

/// Keeps an alert's index rows true to it after a change: none while it is classified a false
/// positive, else its entities in its current incident.
pub(crate) async fn reindex(conn: &mut Conn, tenant: TenantId, alert: &Alert) -> Result<()> {
    sqlx::query("DELETE FROM alert_entities WHERE tenant_id = $1 AND alert_id = $2")
        .bind(tenant.to_string())
        .bind(alert.id.as_str())
        .execute(&mut *conn)
        .await?;
    if !correlation::links_others(alert) {
        return Ok(());
    }
    let Some(at) = correlation::alert_time(alert) else {
        return Ok(());
    };
    index(conn, tenant, alert, &correlation::entities(alert), at).await
}

/// An entity kind as the index stores it.
fn stored_kind(text: String) -> Result<EntityKind> {
    EntityKind::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("alert entity kind {text}")))
}

async fn load_incident(
    conn: &mut Conn,
    tenant: TenantId,
    id: i64,
) -> Result<Option<(Incident, String)>> {
    let Some(body) = get_raw(conn, "incidents", "incident_key", tenant, &id.to_string()).await?
    else {
        return Ok(None);
    };
    let incident = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("stored incident {id}: {e}")))?;
    Ok(Some((incident, body)))
}

/// The alerts whose `incident_id` is `id`, in insertion order, with their stored text.
async fn alerts_of(conn: &mut Conn, tenant: TenantId, id: i64) -> Result<Vec<(Alert, String)>> {
    let rows = sqlx::query(
        "SELECT body FROM alerts WHERE tenant_id = $1 AND incident_id = $2 ORDER BY seq",
    )
    .bind(tenant.to_string())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let body: String = r.try_get("body")?;
            let alert = serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("stored alert: {e}")))?;
            Ok((alert, body))
        })
        .collect()
}

/// Adds `alert` (already stored with `incident_id = id`) to incident `id`, after the
/// incidents it merged (`absorbed`). Nothing is re-read but the incident itself: a large
/// incident costs no more to join than a small one.
async fn join(
    conn: &mut Conn,
    ctx: &AuditContext,
    tenant: TenantId,
    id: i64,
    alert: &Alert,
    absorbed: &[Incident],
    now: OffsetDateTime,
) -> Result<()> {
    let (mut incident, before) = load_incident(conn, tenant, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("incident {id} vanished while correlating")))?;
    for other in absorbed {
        incident.absorb(other, now);
    }
    incident.add_alert(alert, now);
    document::replace(conn, ctx, tenant, "Correlate", &before, &incident).await
}

/// Merges incident `absorbed` into `survivor`: its alerts move (their `incidentId` changes),
/// it becomes `Redirected` to the survivor. Returns it as it was, for the survivor to absorb.
async fn redirect(
    conn: &mut Conn,
    ctx: &AuditContext,
    tenant: TenantId,
    absorbed: i64,
    survivor: i64,
    now: OffsetDateTime,
) -> Result<Option<Incident>> {
    let Some((mut incident, before)) = load_incident(conn, tenant, absorbed).await? else {
        return Ok(None);
    };
    for (mut alert, body) in alerts_of(conn, tenant, absorbed).await? {
        alert.incident_id = Some(survivor);
        document::replace(conn, ctx, tenant, "Correlate", &body, &alert).await?;
    }
    sqlx::query(
        "UPDATE alert_entities SET incident_id = $1 WHERE tenant_id = $2 AND incident_id = $3",
    )
    .bind(survivor)
    .bind(tenant.to_string())
    .bind(absorbed)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE incident_reasons SET incident_id = $1, merged_from_incident_id = COALESCE(merged_from_incident_id, $3) WHERE tenant_id = $2 AND incident_id = $3",
    )
    .bind(survivor)
    .bind(tenant.to_string())
    .bind(absorbed)
    .execute(&mut *conn)
    .await?;
    let was = incident.clone();
    incident.redirect_to(survivor, now);
    document::replace(conn, ctx, tenant, "Redirect", &before, &incident).await?;
    Ok(Some(was))
}

/// Records why an alert is in incident `incident`.
async fn record_reason(
    conn: &mut Conn,
    tenant: TenantId,
    incident: i64,
    r: &CorrelationReason,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO incident_reasons (tenant_id, incident_id, alert_id, entity_type, entity_value, linked_alert_id, merged_from_incident_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.to_string())
    .bind(incident)
    .bind(r.alert_id.as_str())
    .bind(r.entity_type.map(EntityKind::as_str))
    .bind(r.entity_value.as_deref())
    .bind(r.linked_alert_id.as_deref())
    .bind(r.merged_from_incident_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Why each alert of some incidents is in it, in the order they came.
pub(crate) async fn reasons(
    conn: &mut Conn,
    tenant: TenantId,
    incidents: &[i64],
) -> Result<Vec<(i64, CorrelationReason)>> {
    if incidents.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuilder::new(Dialect::Sqlite);
    b.push("SELECT incident_id, alert_id, entity_type, entity_value, linked_alert_id, merged_from_incident_id FROM incident_reasons WHERE tenant_id = ")
        .push_param(SqlValue::Text(tenant.to_string()))
        .push(" AND incident_id IN ")
        .push_list(incidents.iter().map(|id| SqlValue::Int(*id)))
        .push(" ORDER BY seq");
    let rows = b.query().fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            let kind: Option<String> = r.try_get("entity_type")?;
            Ok((
                r.try_get("incident_id")?,
                CorrelationReason {
                    alert_id: r.try_get("alert_id")?,
                    entity_type: kind.as_deref().and_then(EntityKind::parse),
                    entity_value: r.try_get("entity_value")?,
                    linked_alert_id: r.try_get("linked_alert_id")?,
                    merged_from_incident_id: r.try_get("merged_from_incident_id")?,
                },
            ))
        })
        .collect()
}

/// The distinct entities the alerts of some incidents link by, by incident (those of alerts
/// classified false positives are not among them).
pub(crate) async fn incident_entities(
    conn: &mut Conn,
    tenant: TenantId,
    incidents: &[i64],
) -> Result<Vec<(i64, Entity)>> {
    if incidents.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuilder::new(Dialect::Sqlite);
    b.push("SELECT DISTINCT incident_id, kind, value FROM alert_entities WHERE tenant_id = ")
        .push_param(SqlValue::Text(tenant.to_string()))
        .push(" AND incident_id IN ")
        .push_list(incidents.iter().map(|id| SqlValue::Int(*id)))
        .push(" ORDER BY incident_id, kind, value");
    let rows = b.query().fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((
            r.try_get("incident_id")?,
            Entity {
                kind: stored_kind(r.try_get("kind")?)?,
                value: r.try_get("value")?,
            },
        ));
    }
    Ok(out)
}

/// Indexes the entities of the alerts stored before correlation existed (a migration step).
pub(crate) async fn backfill(conn: &mut Conn) -> std::result::Result<(), sqlx::Error> {
    let rows = sqlx::query("SELECT tenant_id, body FROM alerts ORDER BY seq")
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        let tenant: String = r.try_get("tenant_id")?;
        let body: String = r.try_get("body")?;
        let (Ok(tenant), Ok(alert)) = (
            tenant.parse::<TenantId>(),
            serde_json::from_str::<Alert>(&body),
        ) else {
            continue;
        };
        let at = correlation::alert_time(&alert).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let indexed = async {
            index(conn, tenant, &alert, &correlation::entities(&alert), at).await?;
            // Each alert opened its own incident before correlation.
            match alert.incident_id {
                Some(i) => {
                    record_reason(conn, tenant, i, &CorrelationReason::opened(&alert.id)).await
                }
                None => Ok(()),
            }
        }
        .await;
        if let Err(e) = indexed {
            return Err(match e {
                StoreError::Database(e) => e,
                other => sqlx::Error::Protocol(other.to_string()),
            });
        }
    }
    Ok(())
}
