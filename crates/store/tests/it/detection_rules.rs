//! Detection rules in the store: scheduling claims (each due slot taken by one server only),
//! run history, dedupe hits and pausing on failure, on every backend.

use crate::harness::stores;
use rampart_core::TenantId;
use rampart_core::alert::Severity;
use rampart_core::audit::AuditContext;
use rampart_core::detection_rule::*;
use rampart_core::timefmt::{from_micros, to_micros};
use rampart_store::prelude::*;
use rampart_store::{DetectionHit, SqlStore};
use time::{Duration, OffsetDateTime};

fn ctx() -> AuditContext {
    AuditContext::system("test")
}

fn now() -> OffsetDateTime {
    from_micros(to_micros(OffsetDateTime::now_utc()))
}

fn rule(name: &str, period: RunFrequency, at: OffsetDateTime) -> DetectionRule {
    DetectionRule::new(
        name,
        "DeviceProcessEvents | where FileName == 'x.exe'",
        period,
        DetectionAction::alert(AlertTemplate::new(name, Severity::High, "Execution")),
        "test",
        at,
    )
}

fn run(
    rule: &DetectionRule,
    trigger: RunTrigger,
    at: OffsetDateTime,
    failure: Option<&str>,
) -> DetectionRun {
    DetectionRun {
        id: uuid::Uuid::new_v4().to_string(),
        rule_id: rule.id.clone(),
        trigger,
        start_date_time: at,
        end_date_time: at,
        window_start: None,
        window_end: None,
        status: if failure.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        },
        failure_reason: failure.map(Into::into),
        row_count: 0,
        alerts_created: 0,
        alerts_suppressed: 0,
        alert_ids: Vec::new(),
        machine_action_ids: Vec::new(),
    }
}

async fn tenant(store: &SqlStore) -> TenantId {
    store.ensure_default_tenant().await.expect("tenant").id
}

#[tokio::test]
async fn each_due_slot_is_claimed_once_among_servers() {
    for t in stores().await {
        let tenant = tenant(&t.store).await;
        let t0 = now();
        let mut ids = Vec::new();
        for i in 0..6 {
            let r = rule(&format!("r{i}"), RunFrequency::OneHour, t0);
            ids.push(
                t.store
                    .create_detection_rule(&ctx(), tenant, r)
                    .await
                    .expect("create")
                    .id,
            );
        }
        // Continuous and disabled rules are never due.
        let mut off = rule("off", RunFrequency::OneHour, t0);
        off.is_enabled = false;
        off.settle(t0);
        t.store
            .create_detection_rule(&ctx(), tenant, off)
            .await
            .expect("create");
        t.store
            .create_detection_rule(&ctx(), tenant, rule("nrt", RunFrequency::Continuous, t0))
            .await
            .expect("create");

        // Two "servers" (connections of their own) claim at once.
        let other = SqlStore::connect(&t.url).await.expect("second store");
        let at = t0 + Duration::seconds(1);
        let (a, b) = tokio::join!(
            t.store.claim_due_detection_rules(at, 100),
            other.claim_due_detection_rules(at, 100)
        );
        let mut claimed: Vec<String> = a
            .expect("claim a")
            .into_iter()
            .chain(b.expect("claim b"))
            .map(|(_, r)| r.id)
            .collect();
        claimed.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(claimed, want, "{}: every due rule exactly once", t.name);
        // Moved a period on: nothing is due again until then.
        let again = t
            .store
            .claim_due_detection_rules(at, 100)
            .await
            .expect("claim");
        assert!(again.is_empty(), "{}", t.name);
        let later = t
            .store
            .claim_due_detection_rules(at + Duration::hours(1), 100)
            .await
            .expect("claim");
        assert_eq!(later.len(), 6, "{}", t.name);

        let continuous = t
            .store
            .continuous_detection_rules()
            .await
            .expect("continuous");
        assert_eq!(continuous.len(), 1);
        assert_eq!(continuous[0].1.display_name, "nrt");
    }
}

#[tokio::test]
async fn runs_record_hits_and_a_failure_pauses_the_rule() {
    for t in stores().await {
        let tenant = tenant(&t.store).await;
        let t0 = now();
        let r = t
            .store
            .create_detection_rule(&ctx(), tenant, rule("r", RunFrequency::ThreeHours, t0))
            .await
            .expect("create");
        let first = run(&r, RunTrigger::Scheduled, t0, None);
        let hits = [
            DetectionHit {
                entity_key: 7,
                alert_id: "da1".into(),
            },
            DetectionHit {
                entity_key: -9,
                alert_id: "da2".into(),
            },
        ];
        let after = t
            .store
            .record_detection_run(&ctx(), tenant, &first, &hits)
            .await
            .expect("record")
            .expect("rule");
        assert_eq!(
            after.schedule.next_run_date_time,
            Some(t0 + Duration::hours(3))
        );
        assert_eq!(
            after.last_run_details.as_ref().map(|d| d.run_id.as_str()),
            Some(first.id.as_str())
        );
        let seen = t
            .store
            .recent_detection_hits(tenant, &r.id, &[7, -9, 8], t0 - Duration::minutes(1))
            .await
            .expect("hits");
        assert_eq!(seen, [7, -9].into_iter().collect(), "{}", t.name);
        // Hits older than the window do not count.
        let seen = t
            .store
            .recent_detection_hits(tenant, &r.id, &[7], t0 + Duration::minutes(1))
            .await
            .expect("hits");
        assert!(seen.is_empty(), "{}", t.name);

        let failed = run(
            &r,
            RunTrigger::Manual,
            t0 + Duration::seconds(5),
            Some("query failed: boom"),
        );
        let after = t
            .store
            .record_detection_run(&ctx(), tenant, &failed, &[])
            .await
            .expect("record")
            .expect("rule");
        assert_eq!(after.status, RuleStatus::Paused);
        assert_eq!(after.paused_reason.as_deref(), Some("query failed: boom"));
        assert_eq!(
            after.schedule.next_run_date_time, None,
            "a paused rule is not due"
        );
        let runs = t
            .store
            .detection_runs(tenant, &r.id, 10)
            .await
            .expect("runs");
        let order: Vec<&str> = runs.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(
            order,
            [failed.id.as_str(), first.id.as_str()],
            "newest first"
        );

        assert!(
            t.store
                .delete_detection_rule(&ctx(), tenant, &r.id)
                .await
                .expect("delete")
        );
        assert!(
            t.store
                .detection_runs(tenant, &r.id, 10)
                .await
                .expect("runs")
                .is_empty()
        );
        assert!(
            !t.store
                .delete_detection_rule(&ctx(), tenant, &r.id)
                .await
                .expect("delete")
        );
    }
}
