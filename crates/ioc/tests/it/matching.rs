//! What matches what: hashes, addresses and ranges, domains, URLs, expiry and device groups.

use crate::{NOW, indicator};
use rampart_core::TenantId;
use rampart_ioc::scratch::recycle;
use rampart_ioc::{Device, FileObservation, IndicatorIndex, NetworkObservation, Scratch};
use serde_json::json;
use std::net::IpAddr;

const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SHA1: &str = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";
const MD5: &str = "098f6bcd4621d373cade4e832627b4f6";

fn loaded(indicators: &[rampart_core::indicator::Indicator]) -> (IndicatorIndex, TenantId) {
    let index = IndicatorIndex::new();
    let tenant = TenantId::new_random();
    let errors = index.load(tenant, indicators);
    assert!(errors.is_empty(), "{errors:?}");
    (index, tenant)
}

fn net_match(
    index: &IndicatorIndex,
    tenant: TenantId,
    ip: Option<&str>,
    url: Option<&str>,
) -> Option<u64> {
    let ip: Option<IpAddr> = ip.map(|s| s.parse().expect("an address"));
    index
        .snapshot(tenant)
        .match_network(&NetworkObservation { ip, url }, Device::default(), NOW)
        .map(|h| h.entry.id)
}

#[test]
fn hashes_match_in_any_case_and_only_their_own_type() {
    let (index, tenant) = loaded(&[
        indicator(1, "FileSha256", SHA256, "Block", json!({})),
        indicator(2, "FileSha1", SHA1, "Audit", json!({})),
        indicator(3, "FileMd5", MD5, "Audit", json!({})),
    ]);
    let snap = index.snapshot(tenant);
    let file = |sha256, sha1, md5| {
        snap.match_file(
            &FileObservation {
                sha256,
                sha1,
                md5,
                cert_thumbprint: None,
            },
            Device::default(),
            NOW,
        )
        .map(|h| (h.entry.id, h.value))
    };
    let upper = SHA256.to_uppercase();
    assert_eq!(file(Some(&upper), None, None), Some((1, SHA256.to_owned())));
    assert_eq!(file(None, Some(SHA1), None).map(|h| h.0), Some(2));
    assert_eq!(file(None, None, Some(MD5)).map(|h| h.0), Some(3));
    // A SHA-1 value in the SHA-256 field, a truncated hash, an empty one: nothing.
    assert_eq!(file(Some(SHA1), None, None), None);
    assert_eq!(file(Some(&SHA256[..60]), None, None), None);
    assert_eq!(file(Some(""), None, Some("")), None);
    // A certificate thumbprint indicator is not a SHA-1 file indicator.
    let (index, tenant) = loaded(&[indicator(
        4,
        "CertificateThumbprint",
        SHA1,
        "BlockAndRemediate",
        json!({}),
    )]);
    let snap = index.snapshot(tenant);
    let cert = |sha1, cert_thumbprint| {
        snap.match_file(
            &FileObservation {
                sha1,
                cert_thumbprint,
                ..Default::default()
            },
            Device::default(),
            NOW,
        )
        .map(|h| h.entry.id)
    };
    assert_eq!(cert(Some(SHA1), None), None);
    assert_eq!(cert(None, Some(SHA1)), Some(4));
}

#[test]
fn addresses_match_by_longest_prefix() {
    let (index, tenant) = loaded(&[
        indicator(1, "IpAddress", "203.0.113.0/24", "Block", json!({})),
        indicator(2, "IpAddress", "203.0.113.7", "Audit", json!({})),
        indicator(3, "IpAddress", "2001:db8::/32", "Block", json!({})),
        indicator(4, "IpAddress", "2001:db8:1::/48", "Warn", json!({})),
    ]);
    assert_eq!(
        net_match(&index, tenant, Some("203.0.113.7"), None),
        Some(2)
    );
    assert_eq!(
        net_match(&index, tenant, Some("203.0.113.8"), None),
        Some(1)
    );
    assert_eq!(net_match(&index, tenant, Some("203.0.114.1"), None), None);
    // IPv4-mapped IPv6 is the IPv4 address.
    assert_eq!(
        net_match(&index, tenant, Some("::ffff:203.0.113.9"), None),
        Some(1)
    );
    assert_eq!(
        net_match(&index, tenant, Some("2001:db8:1::5"), None),
        Some(4)
    );
    assert_eq!(
        net_match(&index, tenant, Some("2001:db8:2::5"), None),
        Some(3)
    );
    assert_eq!(net_match(&index, tenant, Some("2001:db9::1"), None), None);
}

#[test]
fn domains_match_themselves_and_subdomains_at_label_boundaries() {
    let (index, tenant) = loaded(&[indicator(1, "DomainName", "evil.com", "Block", json!({}))]);
    for host in [
        "evil.com",
        "EVIL.com.",
        "a.b.evil.com",
        "https://x.evil.com:8443/path",
        "evil.com/login",
    ] {
        assert_eq!(
            net_match(&index, tenant, None, Some(host)),
            Some(1),
            "{host}"
        );
    }
    for host in ["notevil.com", "evil.com.au", "evil.co", "com", "evilcom"] {
        assert_eq!(net_match(&index, tenant, None, Some(host)), None, "{host}");
    }
}

#[test]
fn urls_match_normalised_and_below_their_path() {
    let (index, tenant) = loaded(&[
        indicator(1, "Url", "http://evil.example/dl", "Block", json!({})),
        indicator(2, "Url", "evil.example/dl/safe", "Allowed", json!({})),
        indicator(3, "Url", "https://other.example/a%2fb", "Audit", json!({})),
    ]);
    let m = |url| net_match(&index, tenant, None, Some(url));
    assert_eq!(m("http://evil.example/dl"), Some(1));
    assert_eq!(m("HTTP://EVIL.EXAMPLE:80/dl/x.exe"), Some(1));
    assert_eq!(m("http://evil.example/dl?id=1"), Some(1));
    assert_eq!(
        m("http://evil.example/%64l/x"),
        Some(1),
        "an escaped unreserved character is the character"
    );
    assert_eq!(m("http://evil.example/dlx"), None, "a path ends at a slash");
    assert_eq!(
        m("https://evil.example/dl"),
        None,
        "the indicator names http"
    );
    assert_eq!(
        m("http://evil.example:8080/dl"),
        None,
        "another port is another host"
    );
    assert_eq!(m("http://evil.example/"), None);
    // The longest covering path decides, whatever the scheme of the shorter one.
    assert_eq!(m("http://evil.example/dl/safe/tool.zip"), Some(2));
    assert_eq!(m("https://evil.example/dl/safe"), Some(2));
    assert_eq!(
        m("https://other.example/a%2Fb/c"),
        Some(3),
        "escapes of reserved characters compare case-insensitively"
    );
    assert_eq!(
        m("https://other.example/a/b/c"),
        None,
        "an escaped slash is not a slash"
    );
}

/// A feed lists thousands of URLs under one file-sharing host: each observed URL is decided by
/// the paths covering it, the longest first, however many others the host has.
#[test]
fn urls_of_one_host_are_many_and_the_longest_covering_path_wins() {
    let mut indicators: Vec<_> = (0..5_000u64)
        .map(|n| {
            indicator(
                10 + n,
                "Url",
                &format!("https://share.example/u/{n}/payload.bin"),
                "Block",
                json!({}),
            )
        })
        .collect();
    indicators.extend([
        indicator(1, "Url", "https://share.example/", "Audit", json!({})),
        indicator(2, "Url", "https://share.example/u/7/", "Allowed", json!({})),
        indicator(3, "Url", "http://share.example/u", "Block", json!({})),
    ]);
    let index = std::sync::Arc::new(IndicatorIndex::new());
    let tenant = TenantId::new_random();
    // Half loaded, half applied: the base table and the overlay both hold the host's paths.
    let (first, rest) = indicators.split_at(2_500);
    assert!(index.load(tenant, first).is_empty());
    let changes: Vec<_> = rest
        .iter()
        .map(|i| rampart_ioc::Change::Upsert(Box::new(i.clone())))
        .collect();
    assert!(index.apply(tenant, &changes).is_empty());
    let m = |url| net_match(&index, tenant, None, Some(url));
    assert_eq!(m("https://share.example/u/42/payload.bin"), Some(52));
    assert_eq!(m("https://share.example/u/4999/payload.bin"), Some(5009));
    assert_eq!(m("https://share.example/u/42/payload.bin?dl=1"), Some(52));
    assert_eq!(m("https://share.example/u/42/payload.bin/x"), Some(52));
    assert_eq!(
        m("https://share.example/u/42/payload.bin2"),
        Some(1),
        "a path ends at a slash: only the root covers it"
    );
    assert_eq!(
        m("https://share.example/u/7/other.bin"),
        Some(2),
        "`/u/7/` is longer than `/`, and allows"
    );
    assert_eq!(m("https://share.example/u/7/payload.bin"), Some(17));
    assert_eq!(
        m("https://share.example/u/7"),
        Some(2),
        "`/u/7/` covers `/u/7`"
    );
    assert_eq!(
        m("http://share.example/u/x"),
        Some(3),
        "http: `/u`, not the https root"
    );
    assert_eq!(m("https://share.example/u/x"), Some(1));
    assert_eq!(m("https://other.example/u/42/payload.bin"), None);

    // Removing one path leaves the others of its host.
    index.apply(tenant, &[rampart_ioc::Change::Remove { id: "52".into() }]);
    assert_eq!(m("https://share.example/u/42/payload.bin"), Some(1));
    assert_eq!(m("https://share.example/u/43/payload.bin"), Some(53));
}

#[test]
fn expiry_is_honoured_to_the_second() {
    let (index, tenant) = loaded(&[indicator(
        1,
        "IpAddress",
        "198.51.100.1",
        "Block",
        json!({ "expirationTime": "2026-12-03T12:00:00Z" }),
    )]);
    let snap = index.snapshot(tenant);
    let at = |now| {
        snap.match_network(
            &NetworkObservation {
                ip: "198.51.100.1".parse().ok(),
                url: None,
            },
            Device::default(),
            now,
        )
        .map(|h| h.entry.id)
    };
    assert_eq!(at(NOW - 1), Some(1));
    assert_eq!(at(NOW), None);
    assert_eq!(at(NOW + 1), None);
}

#[test]
fn group_scoped_indicators_apply_only_in_their_groups() {
    let (index, tenant) = loaded(&[
        indicator(
            1,
            "DomainName",
            "a.example",
            "Block",
            json!({ "rbacGroupIds": ["7"] }),
        ),
        indicator(
            2,
            "DomainName",
            "b.example",
            "Block",
            json!({ "rbacGroupNames": ["Servers"] }),
        ),
    ]);
    let snap = index.snapshot(tenant);
    let m = |url, group_id, group_name| {
        snap.match_network(
            &NetworkObservation {
                ip: None,
                url: Some(url),
            },
            Device {
                group_id,
                group_name,
            },
            NOW,
        )
        .map(|h| h.entry.id)
    };
    assert_eq!(m("a.example", Some("7"), None), Some(1));
    assert_eq!(m("a.example", Some("8"), None), None);
    assert_eq!(m("a.example", None, None), None);
    assert_eq!(m("b.example", Some("3"), Some("servers")), Some(2));
    assert_eq!(m("b.example", Some("3"), Some("Workstations")), None);
}

#[test]
fn tenants_are_apart() {
    let index = IndicatorIndex::new();
    let (a, b) = (TenantId::new_random(), TenantId::new_random());
    index.load(
        a,
        &[indicator(1, "DomainName", "evil.com", "Block", json!({}))],
    );
    assert_eq!(net_match(&index, a, None, Some("evil.com")), Some(1));
    assert_eq!(net_match(&index, b, None, Some("evil.com")), None);
}

/// A batch decides every row as that row alone would be decided, also where rows repeat an
/// earlier row (which take its decision without a lookup), next to it or further back, and
/// where only the device's group differs between two equal rows (a group-scoped indicator then
/// decides differently).
#[test]
fn a_batch_decides_each_row_as_alone_also_across_repeats() {
    let (index, tenant) = loaded(&[
        indicator(1, "FileSha256", SHA256, "Audit", json!({})),
        indicator(
            2,
            "FileMd5",
            MD5,
            "Block",
            json!({ "rbacGroupNames": ["Servers"] }),
        ),
        indicator(3, "DomainName", "evil.example", "Block", json!({})),
        indicator(
            4,
            "IpAddress",
            "203.0.113.0/24",
            "Audit",
            json!({ "rbacGroupIds": ["7"] }),
        ),
    ]);
    let snap = index.snapshot(tenant);
    let servers = Device {
        group_id: Some("7"),
        group_name: Some("Servers"),
    };
    let other = Device::default();
    let file = |sha256, md5| FileObservation {
        sha256,
        md5,
        ..Default::default()
    };
    // (file, network, device) per row: runs of equal rows, equal rows on another device,
    // a hit after a miss and a miss after a hit.
    let ip = |s: &str| Some(s.parse::<IpAddr>().expect("an address"));
    let rows = [
        (
            file(None, Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.9"),
                url: None,
            },
            servers,
        ),
        (
            file(None, Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.9"),
                url: None,
            },
            servers,
        ),
        (
            file(None, Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.9"),
                url: None,
            },
            other,
        ),
        (
            file(None, Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.9"),
                url: None,
            },
            other,
        ),
        (
            file(Some(SHA256), None),
            NetworkObservation {
                ip: None,
                url: Some("https://a.evil.example/x"),
            },
            other,
        ),
        (
            file(Some(SHA256), None),
            NetworkObservation {
                ip: None,
                url: Some("https://a.evil.example/x"),
            },
            other,
        ),
        (
            file(None, None),
            NetworkObservation {
                ip: ip("198.51.100.1"),
                url: Some("good.example"),
            },
            other,
        ),
        (
            file(None, None),
            NetworkObservation {
                ip: ip("198.51.100.1"),
                url: Some("good.example"),
            },
            other,
        ),
        (
            file(Some(SHA256), Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.1"),
                url: Some("evil.example"),
            },
            servers,
        ),
        (
            file(Some(SHA256), Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.1"),
                url: Some("evil.example"),
            },
            servers,
        ),
        // Equal to row 0, further back: row 0's decision. Equal to row 6, further back. Equal
        // to row 0 but on another group's device: decided anew (the MD5 and address
        // indicators apply to Servers only).
        (
            file(None, Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.9"),
                url: None,
            },
            servers,
        ),
        (
            file(None, None),
            NetworkObservation {
                ip: ip("198.51.100.1"),
                url: Some("good.example"),
            },
            other,
        ),
        (
            file(None, Some(MD5)),
            NetworkObservation {
                ip: ip("203.0.113.9"),
                url: None,
            },
            other,
        ),
    ];
    let files: Vec<FileObservation<'_>> = rows.iter().map(|r| r.0).collect();
    let nets: Vec<NetworkObservation<'_>> = rows.iter().map(|r| r.1).collect();
    let devices: Vec<Device<'_>> = rows.iter().map(|r| r.2).collect();
    let ids = |hits: Vec<(usize, rampart_ioc::Hit)>| -> Vec<(usize, u64)> {
        hits.into_iter().map(|(i, h)| (i, h.entry.id)).collect()
    };
    // One scratch for every batch below, as the ingestion path keeps one: what a batch leaves
    // in it must not change the next one's decisions.
    let scratch = &mut Scratch::default();
    let mut batch = Vec::new();
    snap.match_files(&files, &devices, NOW, &mut batch, scratch);
    let alone: Vec<(usize, u64)> = (0..rows.len())
        .filter_map(|i| Some((i, snap.match_file(&files[i], devices[i], NOW)?.entry.id)))
        .collect();
    assert_eq!(ids(batch), alone);
    assert_eq!(
        alone,
        [(0, 2), (1, 2), (4, 1), (5, 1), (8, 1), (9, 1), (10, 2)],
        "SHA-256 before MD5; the MD5 indicator only for Servers"
    );
    let mut batch = Vec::new();
    snap.match_networks(&nets, &devices, NOW, &mut batch, scratch);
    let alone: Vec<(usize, u64)> = (0..rows.len())
        .filter_map(|i| Some((i, snap.match_network(&nets[i], devices[i], NOW)?.entry.id)))
        .collect();
    assert_eq!(ids(batch), alone);
    assert_eq!(
        alone.iter().map(|h| h.0).collect::<Vec<_>>(),
        [0, 1, 4, 5, 8, 9, 10]
    );
    // A shorter batch after the longer ones, and the rows of the first one in reverse, through
    // the same scratch.
    for take in [3, rows.len()] {
        let order: Vec<usize> = (0..take).rev().collect();
        let files: Vec<_> = order.iter().map(|&i| files[i]).collect();
        let nets: Vec<_> = order.iter().map(|&i| nets[i]).collect();
        let devices: Vec<_> = order.iter().map(|&i| devices[i]).collect();
        let mut batch = Vec::new();
        snap.match_files(&files, &devices, NOW, &mut batch, scratch);
        let alone: Vec<(usize, u64)> = (0..take)
            .filter_map(|i| Some((i, snap.match_file(&files[i], devices[i], NOW)?.entry.id)))
            .collect();
        assert_eq!(ids(batch), alone, "files, {take} rows reversed");
        let mut batch = Vec::new();
        snap.match_networks(&nets, &devices, NOW, &mut batch, scratch);
        let alone: Vec<(usize, u64)> = (0..take)
            .filter_map(|i| Some((i, snap.match_network(&nets[i], devices[i], NOW)?.entry.id)))
            .collect();
        assert_eq!(ids(batch), alone, "networks, {take} rows reversed");
        assert!(!alone.is_empty());
    }
}

#[test]
fn recycled_vectors_keep_their_allocation() {
    let mut held: Vec<&str> = Vec::with_capacity(1_000);
    let text = String::from("a row of a batch");
    held.extend(text.split(' '));
    let at = held.as_ptr() as usize;
    let empty: Vec<&'static str> = recycle(held);
    drop(text); // the recycled vector borrows nothing
    assert!(empty.is_empty());
    assert!(empty.capacity() >= 1_000);
    assert_eq!(empty.as_ptr() as usize, at);
}
