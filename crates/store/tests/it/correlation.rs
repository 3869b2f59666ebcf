//! Correlation in the store: alerts stored before correlation existed are indexed when the
//! store opens (so new alerts link to them), with the reason each opened its incident.

use crate::harness::stores;
use crate::indicators::raw;
use rampart_core::alert::{Alert, Evidence};
use rampart_core::audit::AuditContext;
use rampart_store::SqlStore;
use rampart_store::prelude::*;

fn alert(n: u64, tenant: rampart_core::TenantId, machine: &str) -> Alert {
    let now = time::OffsetDateTime::now_utc();
    let mut a = rampart_core::alert::synthetic(n, tenant, now, 1);
    a.id = format!("corr-{n}");
    a.machine_id = Some(machine.into());
    a.status = rampart_core::alert::AlertStatus::New;
    a.first_event_time = Some(now);
    a.evidence = vec![Evidence {
        entity_type: "File".into(),
        sha256: Some("ab".repeat(32)),
        ..Default::default()
    }];
    a
}

#[tokio::test]
async fn alerts_from_before_correlation_are_indexed_when_the_store_opens() {
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.expect("tenant").id;
        let ctx = AuditContext::system("test");
        let old = t
            .store
            .insert_alerts(&ctx, tenant, &[alert(1, tenant, "m1")])
            .await
            .expect("insert")
            .remove(0);
        // Take the store back to the schema of migration 11: no index, no reasons, no settings,
        // no remediation, no index of alerts by investigation.
        let mut conn = raw(&t.url).await;
        for stmt in [
            "DROP TABLE alert_entities",
            "DROP TABLE incident_reasons",
            "DROP TABLE tenant_settings",
            "DROP TABLE remediation_actions",
            "DROP INDEX investigations_state",
            "DROP INDEX alerts_investigation",
            "DELETE FROM rampart_migrations WHERE version >= 12",
        ] {
            sqlx::query(stmt).execute(&mut conn).await.expect(stmt);
        }
        let store = SqlStore::connect(&t.url).await.expect("reopen and migrate");
        let indexed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_entities")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(indexed, 2, "{}: the device and the file", t.name);
        let reasons = store
            .correlation_reasons(tenant, &[old.incident_id.unwrap()])
            .await
            .expect("reasons");
        assert_eq!(reasons.len(), 1, "{}", t.name);
        assert_eq!(reasons[0].1.alert_id, old.id);
        // A new alert with the same file on another device joins the old one's incident.
        let new = store
            .insert_alerts(&ctx, tenant, &[alert(2, tenant, "m2")])
            .await
            .expect("insert")
            .remove(0);
        assert_eq!(new.incident_id, old.incident_id, "{}", t.name);
    }
}
