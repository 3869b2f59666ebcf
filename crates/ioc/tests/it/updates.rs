//! Changes reach the matcher at once, through the overlay and across folds, while readers go on.

use crate::{NOW, indicator};
use rampart_core::TenantId;
use rampart_ioc::{Change, Device, IndicatorIndex, NetworkObservation};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn domain(i: u64) -> String {
    format!("host{i}.feed.example")
}

/// New domain indicators `first..first + 500`, with `action`.
fn batch(first: u64, action: &str) -> Vec<Change> {
    (first..first + 500)
        .map(|i| {
            Change::Upsert(Box::new(indicator(
                i,
                "DomainName",
                &domain(i),
                action,
                json!({}),
            )))
        })
        .collect()
}

fn matched(index: &IndicatorIndex, tenant: TenantId, host: &str) -> Option<(u64, String)> {
    index
        .snapshot(tenant)
        .match_network(
            &NetworkObservation {
                ip: None,
                url: Some(host),
            },
            Device::default(),
            NOW,
        )
        .map(|h| (h.entry.id, format!("{:?}", h.entry.action)))
}

#[test]
fn upserts_and_removals_take_effect_at_once() {
    let index = Arc::new(IndicatorIndex::new());
    let tenant = TenantId::new_random();
    index.load(
        tenant,
        &[indicator(1, "DomainName", "a.example", "Block", json!({}))],
    );

    index.apply(
        tenant,
        &[Change::Upsert(Box::new(indicator(
            2,
            "DomainName",
            "b.example",
            "Warn",
            json!({}),
        )))],
    );
    assert_eq!(
        matched(&index, tenant, "b.example"),
        Some((2, "Warn".into()))
    );
    // An update of a base indicator shadows it.
    index.apply(
        tenant,
        &[Change::Upsert(Box::new(indicator(
            1,
            "DomainName",
            "a.example",
            "Allowed",
            json!({}),
        )))],
    );
    assert_eq!(
        matched(&index, tenant, "x.a.example"),
        Some((1, "Allowed".into()))
    );
    // Removing it removes the base entry and the overlay's.
    index.apply(tenant, &[Change::Remove { id: "1".into() }]);
    assert_eq!(matched(&index, tenant, "a.example"), None);
    index.apply(tenant, &[Change::Remove { id: "2".into() }]);
    assert_eq!(matched(&index, tenant, "b.example"), None);
    // An update that sets an expiry in the past ends the match.
    index.apply(
        tenant,
        &[Change::Upsert(Box::new(indicator(
            3,
            "DomainName",
            "c.example",
            "Block",
            json!({}),
        )))],
    );
    assert!(matched(&index, tenant, "c.example").is_some());
    index.apply(
        tenant,
        &[Change::Upsert(Box::new(indicator(
            3,
            "DomainName",
            "c.example",
            "Block",
            json!({ "expirationTime": "2026-12-03T11:59:59Z" }),
        )))],
    );
    assert_eq!(matched(&index, tenant, "c.example"), None);
}

#[test]
fn a_removed_network_uncovers_the_wider_one() {
    let index = Arc::new(IndicatorIndex::new());
    let tenant = TenantId::new_random();
    index.load(
        tenant,
        &[
            indicator(1, "IpAddress", "198.51.100.0/24", "Block", json!({})),
            indicator(2, "IpAddress", "198.51.100.0/28", "Warn", json!({})),
        ],
    );
    let at = |index: &IndicatorIndex| {
        index
            .snapshot(tenant)
            .match_network(
                &NetworkObservation {
                    ip: "198.51.100.3".parse().ok(),
                    url: None,
                },
                Device::default(),
                NOW,
            )
            .map(|h| h.entry.id)
    };
    assert_eq!(at(&index), Some(2));
    index.apply(tenant, &[Change::Remove { id: "2".into() }]);
    assert_eq!(at(&index), Some(1));
}

#[test]
fn many_changes_fold_into_the_base_and_keep_their_effect() {
    let index = Arc::new(IndicatorIndex::new());
    let tenant = TenantId::new_random();
    let base: Vec<_> = (1..=2_000)
        .map(|i| indicator(i, "DomainName", &domain(i), "Block", json!({})))
        .collect();
    index.load(tenant, &base);
    // 10,000 new indicators in batches of 500, each visible once its batch is applied.
    for round in 0..20 {
        let changes = batch(10_000 + round * 500, "Audit");
        assert!(index.apply(tenant, &changes).is_empty());
        let last = 10_000 + round * 500 + 499;
        assert_eq!(
            matched(&index, tenant, &domain(last)).map(|m| m.0),
            Some(last)
        );
    }
    // Delete every base indicator with an even id while the fold may be running.
    let removals: Vec<Change> = (1..=2_000)
        .filter(|i| i % 2 == 0)
        .map(|i| Change::Remove { id: i.to_string() })
        .collect();
    index.apply(tenant, &removals);
    // Wait for the fold: the snapshot's overlay empties into the base.
    let deadline = Instant::now() + Duration::from_secs(30);
    while index.snapshot(tenant).len() > 12_000 + 1_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in [1u64, 2, 999, 1_000, 10_000, 19_999] {
        let expected = (i >= 10_000 || i % 2 == 1).then_some(i);
        assert_eq!(
            matched(&index, tenant, &domain(i)).map(|m| m.0),
            expected,
            "indicator {i}"
        );
    }
}

#[test]
fn readers_keep_matching_while_changes_land() {
    let index = Arc::new(IndicatorIndex::new());
    let tenant = TenantId::new_random();
    let base: Vec<_> = (1..=5_000)
        .map(|i| indicator(i, "DomainName", &domain(i), "Block", json!({})))
        .collect();
    index.load(tenant, &base);
    let reader = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            let mut checks = 0u64;
            for round in 0..200_000u64 {
                let i = 1 + round % 5_000;
                assert_eq!(
                    matched(&index, tenant, &domain(i)).map(|m| m.0),
                    Some(i),
                    "base indicator {i} vanished"
                );
                checks += 1;
            }
            checks
        })
    };
    for round in 0..40u64 {
        let changes = batch(100_000 + round * 500, "Audit");
        index.apply(tenant, &changes);
    }
    assert_eq!(reader.join().expect("the reader thread"), 200_000);
}
