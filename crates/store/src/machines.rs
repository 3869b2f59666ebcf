//! Machines (devices) and device groups.

use crate::SqlStore;
use crate::document::{Document, text, time};
use crate::error::{Result, StoreError};
use crate::sql::SqlValue;
use crate::util::parse_tenant_id;
use async_trait::async_trait;
use rampart_core::audit::AuditContext;
use rampart_core::machine::{self, MACHINE_GROUPS, MACHINES, Machine, MachineGroup};
use rampart_core::timefmt::to_micros;
use rampart_core::{Rejection, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

impl Document for Machine {
    const TABLE: &'static str = "machines";
    const ENTITY: &'static str = "Machine";
    const KEY_COLUMN: &'static str = "id";
    const SET: &'static rampart_core::odata::EntitySet = &MACHINES;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            (
                "computer_dns_name",
                SqlValue::Text(self.computer_dns_name.clone()),
            ),
            ("version", text(&self.version)),
            (
                "device_value",
                SqlValue::Text(self.device_value.as_str().into()),
            ),
            ("aad_device_id", text(&self.aad_device_id)),
            ("last_seen", time(self.last_seen)),
            ("first_seen", time(self.first_seen)),
            (
                "exposure_level",
                text(&self.exposure_level.map(|e| e.as_str().to_owned())),
            ),
            (
                "onboarding_status",
                SqlValue::Text(self.onboarding_status.clone()),
            ),
            ("last_ip_address", text(&self.last_ip_address)),
            (
                "health_status",
                SqlValue::Text(self.health_status.as_str().into()),
            ),
            ("os_platform", SqlValue::Text(self.os_platform.clone())),
            (
                "risk_score",
                text(&self.risk_score.map(|r| r.as_str().to_owned())),
            ),
            ("rbac_group_id", SqlValue::Int(self.rbac_group_id)),
        ]
    }

    fn collections(&self) -> Vec<(&'static str, Vec<String>)> {
        vec![("machine_tags", self.machine_tags.clone())]
    }
}

impl Document for MachineGroup {
    const TABLE: &'static str = "machine_groups";
    const ENTITY: &'static str = "MachineGroup";
    const KEY_COLUMN: &'static str = "group_key";
    const SET: &'static rampart_core::odata::EntitySet = &MACHINE_GROUPS;

    fn key(&self) -> String {
        self.id.to_string()
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("id", SqlValue::Int(self.id)),
            ("name", SqlValue::Text(self.name.clone())),
            ("rank", SqlValue::Int(self.rank)),
            (
                "automation_level",
                SqlValue::Text(self.automation_level.as_str().into()),
            ),
        ]
    }
}

/// A change to apply to a stored entity; a [`Rejection`] writes nothing.
pub type Change<'a, T> = Box<dyn FnMut(&mut T) -> Result<(), Rejection> + Send + 'a>;

#[async_trait]
pub trait MachineStore: Send + Sync {
    /// Creates or refreshes a machine from what its sensor reports. Sensor facts (name, OS,
    /// versions, addresses, last contact) come from `report`; what analysts set (tags, device
    /// value) and the first contact are kept. Also records the machine's addresses over time.
    async fn report_machine(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        report: &Machine,
    ) -> Result<Machine>;
    /// A machine by its id or, failing that, its computer name (FQDN or first label).
    async fn get_machine(&self, tenant: TenantId, id_or_name: &str) -> Result<Option<Machine>>;
    /// Applies an analyst's change to a machine (its group is re-evaluated).
    async fn update_machine(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        change: Change<'_, Machine>,
    ) -> Result<Option<Machine>>;
    /// Machines that used `ip` within `window` of `at`.
    async fn machines_by_ip(
        &self,
        tenant: TenantId,
        ip: &str,
        at: OffsetDateTime,
        window: time::Duration,
    ) -> Result<Vec<Machine>>;
    /// Records that the machine used these addresses at `seen` (from telemetry, which may be
    /// historical): each address's known interval widens to include `seen`.
    async fn record_machine_ips(
        &self,
        tenant: TenantId,
        machine_id: &str,
        ips: &[String],
        seen: OffsetDateTime,
    ) -> Result<()>;
    /// Marks machines that stopped reporting as inactive (all tenants); returns how many changed.
    async fn refresh_machine_health(&self, now: OffsetDateTime) -> Result<u64>;

    /// Device groups of a tenant, by rank.
    async fn list_machine_groups(&self, tenant: TenantId) -> Result<Vec<MachineGroup>>;
    /// Creates a group (its id is assigned) and re-assigns the tenant's machines.
    async fn create_machine_group(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        group: MachineGroup,
    ) -> Result<MachineGroup>;
    async fn update_machine_group(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: i64,
        change: Change<'_, MachineGroup>,
    ) -> Result<Option<MachineGroup>>;
    async fn delete_machine_group(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: i64,
    ) -> Result<bool>;
}

/// Puts a machine in the group its facts select.
fn assign_group(groups: &[MachineGroup], m: &mut Machine) {
    match machine::assign(groups, m) {
        Some(g) => {
            m.rbac_group_id = g.id;
            m.rbac_group_name = Some(g.name.clone());
        }
        None => {
            m.rbac_group_id = 0;
            m.rbac_group_name = None;
        }
    }
}

/// Takes the sensor's facts from `report` into `m`.
fn merge_report(m: &mut Machine, r: &Machine) {
    m.computer_dns_name = r.computer_dns_name.clone();
    m.last_seen = r.last_seen.max(m.last_seen);
    m.os_platform = r.os_platform.clone();
    m.onboarding_status = r.onboarding_status.clone();
    m.os_processor = r.os_processor.clone();
    m.version = r.version.clone();
    m.os_build = r.os_build;
    m.os_version = r.os_version.clone();
    m.os_architecture = r.os_architecture.clone();
    m.agent_version = r.agent_version.clone();
    m.last_ip_address = r.last_ip_address.clone().or(m.last_ip_address.take());
    m.last_external_ip_address = r
        .last_external_ip_address
        .clone()
        .or(m.last_external_ip_address.take());
    if !r.ip_addresses.is_empty() {
        m.ip_addresses = r.ip_addresses.clone();
    }
    m.aad_device_id = r.aad_device_id.clone().or(m.aad_device_id.take());
    m.health_status = machine::health_at(m.last_seen, OffsetDateTime::now_utc());
}

impl SqlStore {
    async fn reassign_machines(&self, ctx: &AuditContext, tenant: TenantId) -> Result<()> {
        let groups = self.list_machine_groups(tenant).await?;
        let rows = sqlx::query("SELECT id, rbac_group_id, body FROM machines WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let body: String = row.try_get("body")?;
            let mut m: Machine = serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("stored machine: {e}")))?;
            let before = m.rbac_group_id;
            assign_group(&groups, &mut m);
            if m.rbac_group_id != before {
                let id: String = row.try_get("id")?;
                self.update_doc::<Machine>(ctx, tenant, &id, "AssignGroup", |x| {
                    assign_group(&groups, x);
                    Ok(())
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn record_ips(&self, tenant: TenantId, m: &Machine) -> Result<()> {
        let Some(seen) = m.last_seen else {
            return Ok(());
        };
        let mut ips: Vec<&str> = m
            .ip_addresses
            .iter()
            .map(|a| a.ip_address.as_str())
            .collect();
        ips.extend(m.last_ip_address.as_deref());
        ips.extend(m.last_external_ip_address.as_deref());
        ips.sort_unstable();
        ips.dedup();
        for ip in ips {
            sqlx::query(
                "INSERT INTO machine_ips (tenant_id, machine_id, ip, first_seen, last_seen) VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (tenant_id, machine_id, ip) DO UPDATE SET last_seen = excluded.last_seen \
                 WHERE excluded.last_seen > machine_ips.last_seen",
            )
            .bind(tenant.to_string())
            .bind(m.id.as_str())
            .bind(ip)
            .bind(to_micros(seen))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

fn decode_machine(body: &str) -> Result<Machine> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("stored machine: {e}")))
}

#[async_trait]
impl MachineStore for SqlStore {
    async fn report_machine(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        report: &Machine,
    ) -> Result<Machine> {
        let groups = self.list_machine_groups(tenant).await?;
        let id = report.id.to_ascii_lowercase();
        for _ in 0..3 {
            let updated = self
                .update_doc::<Machine>(ctx, tenant, &id, "Report", |m| {
                    merge_report(m, report);
                    assign_group(&groups, m);
                    Ok(())
                })
                .await?;
            let m = match updated {
                Some(m) => m,
                None => {
                    let mut m = report.clone();
                    m.id = id.clone();
                    m.first_seen = report.first_seen.or(report.last_seen);
                    m.health_status = machine::health_at(m.last_seen, OffsetDateTime::now_utc());
                    assign_group(&groups, &mut m);
                    match self
                        .insert_docs(ctx, tenant, std::slice::from_ref(&m))
                        .await
                    {
                        Ok(()) => m,
                        // Reported twice at once: the other report created it; update it.
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            self.record_ips(tenant, &m).await?;
            return Ok(m);
        }
        Err(StoreError::Conflict(format!(
            "machine {id} is being reported concurrently; try again"
        )))
    }

    async fn get_machine(&self, tenant: TenantId, id_or_name: &str) -> Result<Option<Machine>> {
        if machine::is_machine_id(id_or_name)
            && let Some(m) = self
                .get_doc::<Machine>(tenant, &id_or_name.to_ascii_lowercase())
                .await?
        {
            return Ok(Some(m));
        }
        let name = id_or_name.to_ascii_lowercase();
        let row: Option<String> = sqlx::query_scalar(
            "SELECT body FROM machines WHERE tenant_id = $1 AND (lower(computer_dns_name) = $2 OR lower(computer_dns_name) LIKE $3) \
             ORDER BY lower(computer_dns_name) = $2 DESC, seq LIMIT 1",
        )
        .bind(tenant.to_string())
        .bind(name.as_str())
        .bind(format!("{}.%", name.replace(['%', '_'], "")))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|b| decode_machine(&b)).transpose()
    }

    async fn update_machine(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: &str,
        action: &str,
        mut change: Change<'_, Machine>,
    ) -> Result<Option<Machine>> {
        let groups = self.list_machine_groups(tenant).await?;
        self.update_doc::<Machine>(ctx, tenant, &id.to_ascii_lowercase(), action, |m| {
            change(m)?;
            assign_group(&groups, m);
            Ok(())
        })
        .await
    }

    async fn machines_by_ip(
        &self,
        tenant: TenantId,
        ip: &str,
        at: OffsetDateTime,
        window: time::Duration,
    ) -> Result<Vec<Machine>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT m.body FROM machine_ips i JOIN machines m ON m.tenant_id = i.tenant_id AND m.id = i.machine_id \
             WHERE i.tenant_id = $1 AND i.ip = $2 AND i.first_seen <= $3 AND i.last_seen >= $4 ORDER BY m.seq",
        )
        .bind(tenant.to_string())
        .bind(ip)
        .bind(to_micros(at + window))
        .bind(to_micros(at - window))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| decode_machine(b)).collect()
    }

    async fn record_machine_ips(
        &self,
        tenant: TenantId,
        machine_id: &str,
        ips: &[String],
        seen: OffsetDateTime,
    ) -> Result<()> {
        let at = to_micros(seen);
        for ip in ips {
            sqlx::query(
                "INSERT INTO machine_ips (tenant_id, machine_id, ip, first_seen, last_seen) VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (tenant_id, machine_id, ip) DO UPDATE SET \
                 first_seen = CASE WHEN excluded.first_seen < machine_ips.first_seen THEN excluded.first_seen ELSE machine_ips.first_seen END, \
                 last_seen = CASE WHEN excluded.last_seen > machine_ips.last_seen THEN excluded.last_seen ELSE machine_ips.last_seen END",
            )
            .bind(tenant.to_string())
            .bind(machine_id.to_ascii_lowercase())
            .bind(ip.as_str())
            .bind(at)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    async fn refresh_machine_health(&self, now: OffsetDateTime) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM machines WHERE health_status = $1 AND last_seen < $2",
        )
        .bind(machine::HealthStatus::Active.as_str())
        .bind(to_micros(now - machine::INACTIVE_AFTER))
        .fetch_all(&self.pool)
        .await?;
        let ctx = AuditContext::system("health-monitor");
        let mut changed = 0;
        for row in rows {
            let tenant = parse_tenant_id(&row.try_get::<String, _>("tenant_id")?)?;
            let id: String = row.try_get("id")?;
            self.update_doc::<Machine>(&ctx, tenant, &id, "HealthChanged", |m| {
                m.health_status = machine::health_at(m.last_seen, now);
                Ok(())
            })
            .await?;
            changed += 1;
        }
        Ok(changed)
    }

    async fn list_machine_groups(&self, tenant: TenantId) -> Result<Vec<MachineGroup>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM machine_groups WHERE tenant_id = $1 ORDER BY rank, id",
        )
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|b| {
                serde_json::from_str(b)
                    .map_err(|e| StoreError::Corrupt(format!("stored machine group: {e}")))
            })
            .collect()
    }

    async fn create_machine_group(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        mut group: MachineGroup,
    ) -> Result<MachineGroup> {
        for _ in 0..5 {
            let next: Option<i64> =
                sqlx::query_scalar("SELECT MAX(id) FROM machine_groups WHERE tenant_id = $1")
                    .bind(tenant.to_string())
                    .fetch_one(&self.pool)
                    .await?;
            group.id = next.unwrap_or(0) + 1;
            group.last_update_time = Some(OffsetDateTime::now_utc());
            match self
                .insert_docs(ctx, tenant, std::slice::from_ref(&group))
                .await
            {
                Ok(()) => {
                    self.reassign_machines(ctx, tenant).await?;
                    return Ok(group);
                }
                Err(StoreError::Conflict(_)) => {
                    let taken: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM machine_groups WHERE tenant_id = $1 AND name = $2",
                    )
                    .bind(tenant.to_string())
                    .bind(group.name.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    if taken.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "a device group named '{}' exists already",
                            group.name
                        )));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(
            "device groups are being created concurrently; try again".into(),
        ))
    }

    async fn update_machine_group(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: i64,
        mut change: Change<'_, MachineGroup>,
    ) -> Result<Option<MachineGroup>> {
        let updated = self
            .update_doc::<MachineGroup>(ctx, tenant, &id.to_string(), "Update", |g| {
                change(g)?;
                g.id = id;
                g.last_update_time = Some(OffsetDateTime::now_utc());
                Ok(())
            })
            .await;
        let updated = match updated {
            Err(StoreError::Database(e)) if crate::util::is_unique_violation(&e) => {
                return Err(StoreError::Conflict(
                    "another device group has that name".into(),
                ));
            }
            other => other?,
        };
        if updated.is_some() {
            self.reassign_machines(ctx, tenant).await?;
        }
        Ok(updated)
    }

    async fn delete_machine_group(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        id: i64,
    ) -> Result<bool> {
        let deleted = self
            .delete_doc::<MachineGroup>(ctx, tenant, &id.to_string())
            .await?;
        if deleted {
            self.reassign_machines(ctx, tenant).await?;
        }
        Ok(deleted)
    }
}
