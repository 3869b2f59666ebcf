//! Indicators' compact uniqueness key: its format on disk, hash collisions, and upgrading a
//! store whose rows predate it; and what a call does when another writer changes its rows
//! while it runs.

use crate::harness::stores;
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::indicator::{
    INDICATORS, IndicatorRequest, IndicatorWriter, SourceType, Submitted, Submitter,
};
use rampart_core::odata::QueryOptions;
use rampart_store::prelude::*;
use rampart_store::{Collection, SqlStore};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use time::OffsetDateTime;

fn writer() -> IndicatorWriter {
    IndicatorWriter {
        submitter: Submitter {
            id: "feed-app".into(),
            name: "Feed".into(),
            kind: SourceType::AadApp,
        },
        all: true,
    }
}

async fn submit(store: &SqlStore, tenant: TenantId, value: &str, action: &str) -> Submitted {
    let req: IndicatorRequest = serde_json::from_value(serde_json::json!({
        "indicatorValue": value,
        "indicatorType": "FileSha256",
        "action": action,
        "title": format!("{action} {value}"),
        "description": "test",
    }))
    .expect("request");
    let sub = req.validate(OffsetDateTime::now_utc()).expect("valid");
    let mut out = store
        .submit_indicators(&AuditContext::system("test"), tenant, &writer(), vec![sub])
        .await
        .expect("submit");
    out.pop().expect("one outcome")
}

/// The on-disk key: SHA-256 over tenant id, a zero byte and the value; its first 8 bytes, big
/// endian. Stored keys outlive builds, so this must never change.
fn key(tenant: TenantId, value: &str) -> i64 {
    let d = Sha256::new()
        .chain_update(tenant.to_string())
        .chain_update([0u8])
        .chain_update(value)
        .finalize();
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

pub(crate) async fn raw(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.expect("connect")
}

async fn values_where(store: &SqlStore, tenant: TenantId, filter: &str) -> Vec<String> {
    let q = QueryOptions::parse(&[("$filter".into(), filter.into())], &INDICATORS)
        .expect("valid filter");
    let page = store
        .list(
            tenant,
            Collection::of::<rampart_core::indicator::Indicator>(),
            &q,
            None,
        )
        .await
        .expect("list");
    page.rows
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
            v["indicatorValue"].as_str().expect("value").to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_value_whose_key_is_taken_is_refused_not_merged() {
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.expect("tenant").id;
        let Submitted::Created(first) = submit(&t.store, tenant, &a, "Block").await else {
            panic!("{}: not created", t.name);
        };
        let mut conn = raw(&t.url).await;
        let stored: i64 =
            sqlx::query_scalar("SELECT value_key FROM indicators WHERE indicator_value = $1")
                .bind(&a)
                .fetch_one(&mut conn)
                .await
                .expect("key");
        assert_eq!(stored, key(tenant, &a), "{}: key format", t.name);

        // A collision cannot be found by search; make one by giving A the key B will have.
        sqlx::query("UPDATE indicators SET value_key = $1 WHERE indicator_value = $2")
            .bind(key(tenant, &b))
            .bind(&a)
            .execute(&mut conn)
            .await
            .expect("update");
        match submit(&t.store, tenant, &b, "Allowed").await {
            Submitted::Refused(r) => {
                assert_eq!(r.code.as_str(), "Conflict", "{}", t.name);
                assert!(r.message.contains(&b), "{}: {}", t.name, r.message);
            }
            other => panic!("{}: B was stored over A: {other:?}", t.name),
        }
        let kept = t
            .store
            .get_indicator(tenant, &first.id)
            .await
            .expect("get")
            .expect("A is still there");
        assert_eq!(kept.indicator_value, a);
        assert_eq!(kept.action.as_str(), "Block", "{}", t.name);
        assert!(
            values_where(&t.store, tenant, &format!("indicatorValue eq '{b}'"))
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn rows_from_before_the_key_get_theirs_when_the_store_opens() {
    let (a, c) = ("a".repeat(64), "c".repeat(64));
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.expect("tenant").id;
        let Submitted::Created(first) = submit(&t.store, tenant, &a, "Block").await else {
            panic!("{}: not created", t.name);
        };
        submit(&t.store, tenant, &c, "Warn").await;
        // Take the store back to the schema of migration 6.
        let mut conn = raw(&t.url).await;
        for stmt in [
            "DROP INDEX indicators_value_key",
            "ALTER TABLE indicators DROP COLUMN value_key",
            "CREATE UNIQUE INDEX indicators_value ON indicators (tenant_id, indicator_value, indicator_type)",
            "DELETE FROM rampart_migrations WHERE version = 7",
        ] {
            sqlx::query(stmt).execute(&mut conn).await.expect(stmt);
        }
        conn.close().await.expect("close");

        // The old store stays open, as another server's pool would.
        let store = SqlStore::connect(&t.url).await.expect("reopen and migrate");
        let mut conn = raw(&t.url).await;
        let missing: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM indicators WHERE value_key IS NULL")
                .fetch_one(&mut conn)
                .await
                .expect("count");
        assert_eq!(missing, 0, "{}", t.name);
        assert_eq!(
            values_where(&store, tenant, &format!("indicatorValue eq '{a}'")).await,
            vec![a.clone()],
            "{}",
            t.name
        );
        // Submitting the value again still updates the row in place.
        match submit(&store, tenant, &a, "Allowed").await {
            Submitted::Updated(i) => assert_eq!(i.id, first.id, "{}", t.name),
            other => panic!("{}: {other:?}", t.name),
        }
    }
}

#[tokio::test]
async fn every_indicator_of_a_tenant_is_read_in_pages() {
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.expect("tenant").id;
        let ctx = AuditContext::system("test");
        let other = t
            .store
            .create_tenant(&ctx, "other", false)
            .await
            .expect("tenant")
            .id;
        let mut ids = Vec::new();
        for i in 0..25 {
            let Submitted::Created(doc) =
                submit(&t.store, tenant, &format!("{i:064x}"), "Block").await
            else {
                panic!("{}: indicator {i} not created", t.name);
            };
            ids.push(doc.id);
        }
        submit(&t.store, other, &format!("{:064x}", 99), "Block").await;
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = t
                .store
                .indicators_after(tenant, after, 10)
                .await
                .expect("page");
            assert!(page.len() <= 10, "{}", t.name);
            let Some((last, _)) = page.last() else { break };
            after = *last;
            seen.extend(page.into_iter().map(|(_, d)| d.id));
        }
        assert_eq!(
            seen, ids,
            "{}: every indicator once, in order, none of the other tenant",
            t.name
        );
    }
}

/// A transaction of another writer on a raw connection: on SQLite it holds the write lock.
async fn other_writer<'c>(
    conn: &'c mut sqlx::AnyConnection,
    name: &str,
) -> sqlx::Transaction<'c, sqlx::Any> {
    let begin = if name == "sqlite" {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    conn.begin_with(begin).await.expect("begin")
}

/// How long the other writer keeps its transaction open, so that the call starts while the
/// other writer's change is uncommitted and finishes after it commits. A call that started
/// later than that would see only the committed change, and the test would pass without
/// testing the race; a correct store passes either way. A store that reads on a reader
/// connection before it writes, without guarding the write, fails both tests: it revives the
/// deleted indicator under its old id, and creates the value twice.
const HOLD: std::time::Duration = std::time::Duration::from_millis(500);

#[tokio::test]
async fn an_indicator_deleted_while_a_call_updates_it_is_created_anew() {
    let value = "d".repeat(64);
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.expect("tenant").id;
        let Submitted::Created(first) = submit(&t.store, tenant, &value, "Block").await else {
            panic!("{}: not created", t.name);
        };
        let mut conn = raw(&t.url).await;
        let mut tx = other_writer(&mut conn, t.name).await;
        sqlx::query("DELETE FROM indicators WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(&first.id)
            .execute(&mut *tx)
            .await
            .expect("delete");
        // The call may read the indicator (the delete is not committed) and plan an update; it
        // writes only once the delete has committed.
        let (outcome, ()) = tokio::join!(submit(&t.store, tenant, &value, "Allowed"), async {
            tokio::time::sleep(HOLD).await;
            tx.commit().await.expect("commit the delete");
        });
        let Submitted::Created(second) = outcome else {
            panic!("{}: the deleted indicator was revived: {outcome:?}", t.name);
        };
        assert_ne!(second.id, first.id, "{}", t.name);
        assert_eq!(second.action.as_str(), "Allowed");
        assert!(
            t.store
                .get_indicator(tenant, &first.id)
                .await
                .expect("get")
                .is_none(),
            "{}",
            t.name
        );
        let stored = t
            .store
            .get_indicator(tenant, &second.id)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(stored.action.as_str(), "Allowed", "{}", t.name);
    }
}

#[tokio::test]
async fn two_calls_creating_one_value_at_once_make_one_indicator() {
    let value = "e".repeat(64);
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.expect("tenant").id;
        // The tenant's id counter exists, so that the other writer can hold it.
        submit(&t.store, tenant, &"f".repeat(64), "Block").await;
        let mut conn = raw(&t.url).await;
        let mut tx = other_writer(&mut conn, t.name).await;
        sqlx::query("UPDATE indicator_counters SET last_id = last_id WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await
            .expect("hold the counter");
        // Both calls may read before either writes, and so both plan to create the value.
        let (a, b, ()) = tokio::join!(
            submit(&t.store, tenant, &value, "Block"),
            submit(&t.store, tenant, &value, "Allowed"),
            async {
                tokio::time::sleep(HOLD).await;
                tx.commit().await.expect("commit");
            }
        );
        let (created, updated) = match (a, b) {
            (Submitted::Created(c), Submitted::Updated(u))
            | (Submitted::Updated(u), Submitted::Created(c)) => (c, u),
            other => panic!("{}: not one create and one update: {other:?}", t.name),
        };
        assert_eq!(created.id, updated.id, "{}: one indicator", t.name);
        let stored = values_where(&t.store, tenant, &format!("indicatorValue eq '{value}'")).await;
        assert_eq!(stored.len(), 1, "{}", t.name);
    }
}
