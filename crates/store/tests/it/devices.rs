//! Enrollment tokens and device credentials, run against every backend.

use crate::harness::stores;
use rampart_core::TenantId;
use rampart_core::audit::{AUDIT, AuditContext};
use rampart_core::enrollment::EnrollmentToken;
use rampart_core::odata::QueryOptions;
use rampart_core::timefmt::{from_micros, to_micros};
use rampart_store::prelude::*;
use rampart_store::{Collection, SqlStore, StoreError};
use time::{Duration, OffsetDateTime};

fn ctx() -> AuditContext {
    AuditContext::system("test")
}

/// Now, at the microsecond precision the store keeps.
fn now() -> OffsetDateTime {
    from_micros(to_micros(OffsetDateTime::now_utc()))
}

fn token(tenant: TenantId, name: &str, max_uses: Option<i64>) -> EnrollmentToken {
    EnrollmentToken {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant,
        name: name.into(),
        created_time: now(),
        expires_time: None,
        max_uses,
        uses: 0,
        revoked: false,
    }
}

/// A distinct 40-hex device id per `n`.
fn device(n: u32) -> String {
    format!("{n:040x}")
}

/// Stores `t` with the hash `hash` and returns it.
async fn create(store: &SqlStore, t: EnrollmentToken, hash: &str) -> EnrollmentToken {
    store
        .create_enrollment_token(&ctx(), &t, hash)
        .await
        .expect("create token");
    t
}

async fn enroll(
    store: &SqlStore,
    hash: &str,
    device_id: &str,
) -> Result<Option<(TenantId, EnrollmentToken)>, StoreError> {
    store
        .enroll_device(
            &ctx(),
            hash,
            device_id,
            &format!("secret-of-{device_id}"),
            OffsetDateTime::now_utc(),
        )
        .await
}

#[tokio::test]
async fn enrolling_consumes_uses_and_stores_the_credential() {
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.unwrap().id;
        let tok = create(&t.store, token(tenant, "laptops", Some(2)), "hash-a").await;
        assert_eq!(
            t.store.list_enrollment_tokens(tenant).await.unwrap(),
            vec![tok.clone()],
            "{}",
            t.name
        );

        let (got_tenant, used) = enroll(&t.store, "hash-a", &device(1))
            .await
            .unwrap()
            .expect("a valid token enrolls");
        assert_eq!(got_tenant, tenant);
        assert_eq!(used.id, tok.id);
        assert_eq!(used.uses, 1, "{}", t.name);
        assert_eq!(
            t.store.device_credential(&device(1)).await.unwrap(),
            Some((tenant, format!("secret-of-{}", device(1))))
        );
        assert_eq!(t.store.device_credential(&device(9)).await.unwrap(), None);

        assert_eq!(
            enroll(&t.store, "hash-a", &device(2))
                .await
                .unwrap()
                .unwrap()
                .1
                .uses,
            2
        );
        // Used up: refused, and the count stays at the limit.
        assert!(
            enroll(&t.store, "hash-a", &device(3))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(t.store.device_credential(&device(3)).await.unwrap(), None);
        let listed = t.store.list_enrollment_tokens(tenant).await.unwrap();
        assert_eq!(listed[0].uses, 2, "{}", t.name);
        assert!(!listed[0].is_usable(OffsetDateTime::now_utc()));

        // An unknown hash enrolls nothing.
        assert!(
            enroll(&t.store, "no-such-hash", &device(4))
                .await
                .unwrap()
                .is_none()
        );

        // Creation and each enrollment are in the tenant's audit log.
        let q = QueryOptions::parse(&[], &AUDIT).unwrap();
        let page = t
            .store
            .list(tenant, Collection::AUDIT, &q, None)
            .await
            .unwrap();
        let actions: Vec<(String, String)> = page
            .rows
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap())
            .filter(|v| v["entityType"] == "EnrollmentToken" || v["entityType"] == "Device")
            .map(|v| {
                (
                    v["action"].as_str().unwrap().to_owned(),
                    v["entityId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            actions,
            vec![
                ("Create".to_owned(), tok.id.clone()),
                ("Enroll".to_owned(), device(1)),
                ("Enroll".to_owned(), device(2)),
            ],
            "{}",
            t.name
        );
    }
}

// Several worker threads, so that the enrollments really race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enrollments_never_exceed_max_uses() {
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.unwrap().id;
        create(&t.store, token(tenant, "three", Some(3)), "hash-3").await;
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = t.store.clone();
                tokio::spawn(async move { enroll(&store, "hash-3", &device(100 + i)).await })
            })
            .collect();
        let mut enrolled = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(Some(_)) => enrolled += 1,
                Ok(None) => {}
                Err(e) => panic!(
                    "{}: enrollment failed instead of being refused: {e}",
                    t.name
                ),
            }
        }
        assert_eq!(enrolled, 3, "{}", t.name);
        let listed = t.store.list_enrollment_tokens(tenant).await.unwrap();
        assert_eq!(listed[0].uses, 3, "{}", t.name);
        let mut stored = 0;
        for i in 0..10 {
            if t.store
                .device_credential(&device(100 + i))
                .await
                .unwrap()
                .is_some()
            {
                stored += 1;
            }
        }
        assert_eq!(stored, 3, "{}: one credential per consumed use", t.name);
    }
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() {
    for t in stores().await {
        let tenant = t.store.ensure_default_tenant().await.unwrap().id;
        let tok = create(&t.store, token(tenant, "revoke me", None), "hash-r").await;
        assert!(
            enroll(&t.store, "hash-r", &device(1))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            t.store
                .revoke_enrollment_token(&ctx(), tenant, &tok.id)
                .await
                .unwrap()
        );
        assert!(
            enroll(&t.store, "hash-r", &device(2))
                .await
                .unwrap()
                .is_none(),
            "{}: a revoked token enrolls nothing",
            t.name
        );
        // Revoking again is a no-op that still finds the token; an unknown id is not found.
        assert!(
            t.store
                .revoke_enrollment_token(&ctx(), tenant, &tok.id)
                .await
                .unwrap()
        );
        assert!(
            !t.store
                .revoke_enrollment_token(&ctx(), tenant, "no-such-token")
                .await
                .unwrap()
        );
        let listed = t.store.list_enrollment_tokens(tenant).await.unwrap();
        assert!(listed[0].revoked, "{}", t.name);
        // Devices enrolled before the revocation stay enrolled.
        assert!(
            t.store
                .device_credential(&device(1))
                .await
                .unwrap()
                .is_some()
        );

        let mut expired = token(tenant, "expired", None);
        expired.expires_time = Some(now() - Duration::minutes(1));
        create(&t.store, expired, "hash-e").await;
        assert!(
            enroll(&t.store, "hash-e", &device(3))
                .await
                .unwrap()
                .is_none(),
            "{}: an expired token enrolls nothing",
            t.name
        );
        let mut fresh = token(tenant, "fresh", None);
        fresh.expires_time = Some(now() + Duration::hours(1));
        let fresh = create(&t.store, fresh, "hash-f").await;
        assert!(
            enroll(&t.store, "hash-f", &device(4))
                .await
                .unwrap()
                .is_some()
        );
        let listed = t.store.list_enrollment_tokens(tenant).await.unwrap();
        let stored_fresh = listed.iter().find(|x| x.id == fresh.id).unwrap();
        assert_eq!(stored_fresh.expires_time, fresh.expires_time, "{}", t.name);
    }
}

#[tokio::test]
async fn tokens_belong_to_their_tenant() {
    for t in stores().await {
        let home = t.store.ensure_default_tenant().await.unwrap().id;
        let other = t
            .store
            .create_tenant(&ctx(), "Contoso", false)
            .await
            .unwrap()
            .id;
        let home_tok = create(&t.store, token(home, "home", None), "hash-home").await;
        let other_tok = create(&t.store, token(other, "other", None), "hash-other").await;

        let names = |v: Vec<EnrollmentToken>| v.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(
            names(t.store.list_enrollment_tokens(home).await.unwrap()),
            vec!["home"]
        );
        assert_eq!(
            names(t.store.list_enrollment_tokens(other).await.unwrap()),
            vec!["other"]
        );
        // Another tenant cannot revoke the token: it is not found there, and stays usable.
        assert!(
            !t.store
                .revoke_enrollment_token(&ctx(), other, &home_tok.id)
                .await
                .unwrap()
        );
        assert!(!t.store.list_enrollment_tokens(home).await.unwrap()[0].revoked);

        // A token enrolls into its own tenant.
        let (tenant, _) = enroll(&t.store, "hash-other", &device(7))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tenant, other, "{}", t.name);
        assert_eq!(
            t.store
                .device_credential(&device(7))
                .await
                .unwrap()
                .unwrap()
                .0,
            other
        );
        assert_eq!(
            t.store.list_enrollment_tokens(other).await.unwrap()[0].id,
            other_tok.id
        );
        assert_eq!(
            t.store.list_enrollment_tokens(home).await.unwrap()[0].uses,
            0
        );
    }
}

#[tokio::test]
async fn an_enrolled_device_id_conflicts_and_consumes_nothing() {
    for t in stores().await {
        let home = t.store.ensure_default_tenant().await.unwrap().id;
        let other = t
            .store
            .create_tenant(&ctx(), "Contoso", false)
            .await
            .unwrap()
            .id;
        create(&t.store, token(home, "home", Some(5)), "hash-h").await;
        create(&t.store, token(other, "other", Some(5)), "hash-o").await;
        assert!(
            enroll(&t.store, "hash-h", &device(1))
                .await
                .unwrap()
                .is_some()
        );

        // The same id again, through the same tenant or another: a conflict.
        for hash in ["hash-h", "hash-o"] {
            let err = enroll(&t.store, hash, &device(1)).await.unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{}: {err}", t.name);
        }
        // The refused enrollments gave their uses back, and the first credential is intact.
        assert_eq!(
            t.store.list_enrollment_tokens(home).await.unwrap()[0].uses,
            1,
            "{}",
            t.name
        );
        assert_eq!(
            t.store.list_enrollment_tokens(other).await.unwrap()[0].uses,
            0,
            "{}",
            t.name
        );
        assert_eq!(
            t.store.device_credential(&device(1)).await.unwrap(),
            Some((home, format!("secret-of-{}", device(1))))
        );

        // Two tokens may not share a secret hash.
        let err = t
            .store
            .create_enrollment_token(&ctx(), &token(home, "dup", None), "hash-h")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{}: {err}", t.name);
    }
}
