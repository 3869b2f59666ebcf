//! The `Store` contract, run against every backend.

use crate::harness::stores;
use rampart_core::alert::{AlertStatus, Severity, synthetic};
use rampart_core::app::App;
use rampart_core::audit::{AUDIT, AuditContext};
use rampart_core::odata::QueryOptions;
use rampart_core::{ClientId, Permission};
use rampart_store::prelude::*;
use rampart_store::{Collection, SqlStore, StoreError};
use time::OffsetDateTime;

fn ctx() -> AuditContext {
    AuditContext::system("test")
}

fn app(tenant: rampart_core::TenantId, name: &str) -> App {
    let now = rampart_core::timefmt::from_micros(rampart_core::timefmt::to_micros(
        OffsetDateTime::now_utc(),
    ));
    App {
        tenant_id: tenant,
        client_id: ClientId::new_random(),
        name: name.into(),
        roles: vec![Permission::AlertRead, Permission::MachineIsolate],
        created_time: now,
        secret_updated_time: now,
    }
}

fn q(pairs: &[(&str, &str)], set: &'static rampart_core::odata::EntitySet) -> QueryOptions {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    QueryOptions::parse(&pairs, set).expect("valid query")
}

#[tokio::test]
async fn default_tenant_is_created_once() {
    for t in stores().await {
        let a = t.store.ensure_default_tenant().await.unwrap();
        let b = t.store.ensure_default_tenant().await.unwrap();
        assert_eq!(a, b, "{}", t.name);
        assert!(a.is_default);
        let err = t
            .store
            .create_tenant(&ctx(), "second default", true)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{}: {err}", t.name);
        let other = t
            .store
            .create_tenant(&ctx(), "Contoso", false)
            .await
            .unwrap();
        assert_eq!(t.store.get_tenant(other.id).await.unwrap().unwrap(), other);
        let names: Vec<String> = t
            .store
            .list_tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            names,
            vec!["Default".to_string(), "Contoso".to_string()],
            "{}",
            t.name
        );
    }
}

#[tokio::test]
async fn migrations_apply_once_per_database() {
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.unwrap();
        // Opening the same database again runs no migration twice and keeps the data.
        let again = SqlStore::connect(&t.url).await.unwrap();
        assert_eq!(
            again.ensure_default_tenant().await.unwrap(),
            tenant,
            "{}",
            t.name
        );
    }
}

#[tokio::test]
async fn apps_are_scoped_to_their_tenant() {
    for t in stores().await {
        let s = &t.store;
        let home = s.ensure_default_tenant().await.unwrap().id;
        let other = s.create_tenant(&ctx(), "Other", false).await.unwrap().id;
        let a = app(home, "soar");
        s.create_app(&ctx(), &a, "hash-1").await.unwrap();
        assert_eq!(
            s.app_credentials(home, a.client_id).await.unwrap(),
            Some((a.clone(), "hash-1".to_string())),
            "{}",
            t.name
        );
        // Another tenant neither sees nor changes it.
        assert_eq!(s.app_credentials(other, a.client_id).await.unwrap(), None);
        assert!(
            !s.set_app_secret(&ctx(), other, a.client_id, "evil")
                .await
                .unwrap()
        );
        assert!(!s.delete_app(&ctx(), other, a.client_id).await.unwrap());
        assert!(s.list_apps(Some(other)).await.unwrap().is_empty());
        assert_eq!(s.list_apps(Some(home)).await.unwrap(), vec![a.clone()]);

        assert!(
            s.set_app_secret(&ctx(), home, a.client_id, "hash-2")
                .await
                .unwrap()
        );
        assert_eq!(
            s.app_credentials(home, a.client_id)
                .await
                .unwrap()
                .unwrap()
                .1,
            "hash-2"
        );
        assert!(s.delete_app(&ctx(), home, a.client_id).await.unwrap());
        assert_eq!(s.app_credentials(home, a.client_id).await.unwrap(), None);
        assert!(!s.delete_app(&ctx(), home, a.client_id).await.unwrap());
    }
}

#[tokio::test]
async fn every_change_is_audited_in_its_tenant() {
    for t in stores().await {
        let s = &t.store;
        let home = s.ensure_default_tenant().await.unwrap().id;
        let other = s.create_tenant(&ctx(), "Other", false).await.unwrap().id;
        let a = app(home, "siem");
        let who = AuditContext {
            actor: rampart_core::audit::Actor::system("cli:alice"),
            correlation_id: "corr-1".into(),
        };
        s.create_app(&who, &a, "h").await.unwrap();
        s.set_app_secret(&who, home, a.client_id, "h2")
            .await
            .unwrap();
        s.delete_app(&who, home, a.client_id).await.unwrap();

        let page = s
            .list(
                home,
                Collection::AUDIT,
                &q(&[("$filter", "entityType eq 'App'")], &AUDIT),
                None,
            )
            .await
            .unwrap();
        let entries: Vec<serde_json::Value> = page
            .rows
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect();
        let actions: Vec<&str> = entries
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            vec!["Create", "RotateSecret", "Delete"],
            "{}",
            t.name
        );
        assert!(
            entries
                .iter()
                .all(|e| e["actor"]["id"] == "cli:alice" && e["correlationId"] == "corr-1")
        );
        assert_eq!(entries[0]["after"]["name"], "siem");
        assert_eq!(entries[2]["before"]["name"], "siem");
        assert!(entries[2]["after"].is_null());
        // The other tenant's log holds only its own creation.
        let theirs = s
            .list(other, Collection::AUDIT, &q(&[], &AUDIT), None)
            .await
            .unwrap();
        assert_eq!(theirs.rows.len(), 1, "{}", t.name);
        assert!(theirs.rows[0].body.contains("\"entityType\":\"Tenant\""));
    }
}

#[tokio::test]
async fn alerts_round_trip_and_list_with_odata() {
    for t in stores().await {
        let s = &t.store;
        let home = s.ensure_default_tenant().await.unwrap().id;
        let other = s.create_tenant(&ctx(), "Other", false).await.unwrap().id;
        let now = OffsetDateTime::now_utc();
        let alerts: Vec<_> = (0..1200).map(|n| synthetic(n, home, now, 86_400)).collect();
        s.insert_alerts(&ctx(), home, &alerts).await.unwrap();
        s.insert_alerts(&ctx(), other, &[synthetic(5000, other, now, 60)])
            .await
            .unwrap();
        let dup = s
            .insert_alerts(&ctx(), home, &alerts[..1])
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{}", t.name);

        let stored = s
            .get_alert(home, &alerts[7].id)
            .await
            .unwrap()
            .expect("stored");
        let back: rampart_core::alert::Alert = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.id, alerts[7].id);
        assert_eq!(back.title, alerts[7].title);
        assert_eq!(
            s.get_alert(other, &alerts[7].id).await.unwrap(),
            None,
            "another tenant's alert is invisible"
        );

        // The benchmark query, paged with keyset cursors, yields exactly the matching alerts in order.
        let want: Vec<&rampart_core::alert::Alert> = {
            let mut v: Vec<_> = alerts
                .iter()
                .filter(|a| a.severity == Severity::High && a.status != AlertStatus::Resolved)
                .collect();
            v.sort_by_key(|a| std::cmp::Reverse(a.alert_creation_time));
            v
        };
        let mut got = Vec::new();
        let mut query = q(
            &[
                ("$filter", "severity eq 'High' and status ne 'Resolved'"),
                ("$orderby", "alertCreationTime desc"),
                ("$top", "50"),
                ("$count", "true"),
            ],
            &rampart_core::alert::ALERTS,
        );
        loop {
            let page = s
                .list(
                    home,
                    Collection::of::<rampart_core::alert::Alert>(),
                    &query,
                    None,
                )
                .await
                .unwrap();
            if query.skiptoken.is_none() {
                assert_eq!(page.count, Some(want.len() as i64), "{}", t.name);
            }
            for r in &page.rows {
                let a: rampart_core::alert::Alert = serde_json::from_str(&r.body).unwrap();
                got.push(a);
            }
            match page.next_token {
                Some(tok) => query.skiptoken = Some(tok),
                None => break,
            }
        }
        assert_eq!(got.len(), want.len(), "{}", t.name);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.alert_creation_time, w.alert_creation_time, "{}", t.name);
        }
        let mut ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            want.len(),
            "{}: every alert exactly once",
            t.name
        );
    }
}

#[tokio::test]
async fn signing_keys_are_kept_per_tenant() {
    for t in stores().await {
        let s = &t.store;
        let home = s.ensure_default_tenant().await.unwrap().id;
        let key = rampart_store::SigningKey {
            tenant_id: home,
            kid: "kid-1".into(),
            private_pem: "-----BEGIN PRIVATE KEY-----".into(),
            public_x: "x".into(),
            public_y: "y".into(),
            created_time: rampart_core::timefmt::from_micros(1_700_000_000_000_000),
        };
        s.insert_signing_key(&ctx(), &key).await.unwrap();
        assert_eq!(s.signing_keys().await.unwrap(), vec![key], "{}", t.name);
    }
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_naming_it() {
    let err = SqlStore::connect("postgres://nobody:secret@127.0.0.1:1/none")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("127.0.0.1:1") && !msg.contains("secret"),
        "{msg}"
    );
    let err = SqlStore::connect("mysql://localhost/x").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
}
