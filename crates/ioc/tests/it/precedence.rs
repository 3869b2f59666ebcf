//! The precedence matrix: every pair of indicator kinds, actions and scopes that can match one
//! event, through the real index, against MDE's rules as the reference states them
//! (mde-api.md §3.4), plus spot checks written out by hand.

use crate::{NOW, indicator};
use rampart_core::TenantId;
use rampart_core::indicator::Indicator;
use rampart_ioc::{Device, FileObservation, IndicatorIndex, NetworkObservation};
use serde_json::json;

const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SHA1: &str = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";
const MD5: &str = "098f6bcd4621d373cade4e832627b4f6";
const THUMBPRINT: &str = "0123456789abcdef0123456789abcdef01234567";

const DEVICE: Device<'static> = Device {
    group_id: Some("7"),
    group_name: Some("Servers"),
};

#[derive(Clone, Copy, Debug)]
struct Side {
    kind: &'static str,
    action: &'static str,
    scoped: bool,
}

impl Side {
    fn indicator(self, id: u64) -> Indicator {
        let value = match self.kind {
            "FileSha256" => SHA256,
            "FileSha1" => SHA1,
            "FileMd5" => MD5,
            "CertificateThumbprint" => THUMBPRINT,
            "Address" => "203.0.113.7",
            "Network" => "203.0.113.0/24",
            "DomainName" => "evil.example",
            "Url" => "http://evil.example/dl",
            other => panic!("no value for {other}"),
        };
        let kind = match self.kind {
            "Address" | "Network" => "IpAddress",
            k => k,
        };
        let groups = if self.scoped {
            json!({ "rbacGroupIds": ["7"] })
        } else {
            json!({})
        };
        indicator(id, kind, value, self.action, groups)
    }
}

/// The winner of `a` (id 1) and `b` (id 2) for the observation, through a fresh index.
fn winner(a: Side, b: Side, file: bool) -> Option<u64> {
    let index = IndicatorIndex::new();
    let tenant = TenantId::new_random();
    let errors = index.load(tenant, &[a.indicator(1), b.indicator(2)]);
    assert!(errors.is_empty(), "{errors:?}");
    let snap = index.snapshot(tenant);
    let hit = if file {
        snap.match_file(
            &FileObservation {
                sha256: Some(SHA256),
                sha1: Some(SHA1),
                md5: Some(MD5),
                cert_thumbprint: Some(THUMBPRINT),
            },
            DEVICE,
            NOW,
        )
    } else {
        snap.match_network(
            &NetworkObservation {
                ip: "203.0.113.7".parse().ok(),
                url: Some("http://evil.example/dl/payload.exe"),
            },
            DEVICE,
            NOW,
        )
    };
    hit.map(|h| h.entry.id)
}

fn file_actions(kind: &str) -> &'static [&'static str] {
    if kind == "CertificateThumbprint" {
        &["Allowed", "BlockAndRemediate"]
    } else {
        &["Allowed", "Audit", "Warn", "Block", "BlockAndRemediate"]
    }
}

/// The rules for files as §3.4 states them.
fn expected_file(a: Side, b: Side) -> u64 {
    let strength = |k: &str| match k {
        "FileSha256" => 3,
        "FileSha1" => 2,
        "FileMd5" => 1,
        _ => 0,
    };
    let (sa, sb) = (strength(a.kind), strength(b.kind));
    if sa > 0 && sb > 0 {
        // Two hashes: the stronger decides, regardless of device group.
        return if sa > sb { 1 } else { 2 };
    }
    // A hash and a certificate: block/warn IoCs are evaluated before allow IoCs, those
    // before audit; then a group-scoped policy beats an all-devices one; then the hash.
    let rank = |s: Side| match s.action {
        "Block" | "BlockAndRemediate" | "Warn" => 2,
        "Allowed" => 1,
        _ => 0,
    };
    let key = |s: Side| (rank(s), s.scoped, strength(s.kind) > 0);
    if key(a) >= key(b) { 1 } else { 2 }
}

/// The rules for addresses, domains and URLs as §3.4 states them.
fn expected_network(a: Side, b: Side) -> u64 {
    if a.scoped != b.scoped {
        return if a.scoped { 1 } else { 2 };
    }
    let name = |s: Side| matches!(s.kind, "DomainName" | "Url");
    let specificity = |s: Side| match s.kind {
        "Network" => 24,
        "Address" => 32,
        "DomainName" => 100,
        _ => 200,
    };
    if name(a) == name(b) {
        // One target: the more specific value (longer prefix, URL path over the domain).
        return if specificity(a) > specificity(b) {
            1
        } else {
            2
        };
    }
    let rank = |s: Side| match s.action {
        "Allowed" => 4,
        "Warn" => 3,
        "Block" => 2,
        _ => 1,
    };
    let key = |s: Side| (rank(s), name(s));
    if key(a) >= key(b) { 1 } else { 2 }
}

#[test]
fn every_pair_of_file_indicators() {
    let kinds = ["FileSha256", "FileSha1", "FileMd5", "CertificateThumbprint"];
    let mut cases = 0;
    for (i, ka) in kinds.iter().enumerate() {
        for kb in &kinds[i + 1..] {
            for aa in file_actions(ka) {
                for ab in file_actions(kb) {
                    for (sa, sb) in [(false, false), (false, true), (true, false), (true, true)] {
                        let a = Side {
                            kind: ka,
                            action: aa,
                            scoped: sa,
                        };
                        let b = Side {
                            kind: kb,
                            action: ab,
                            scoped: sb,
                        };
                        assert_eq!(
                            winner(a, b, true),
                            Some(expected_file(a, b)),
                            "{a:?} vs {b:?}"
                        );
                        // And in the other order of ids, so the result is not the first loaded.
                        assert_eq!(
                            winner(b, a, true),
                            Some(3 - expected_file(a, b)),
                            "{b:?} vs {a:?}"
                        );
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 3 * 25 * 4 + 3 * 10 * 4);
}

#[test]
fn every_pair_of_network_indicators() {
    let kinds = ["Address", "Network", "DomainName", "Url"];
    let actions = ["Allowed", "Audit", "Warn", "Block"];
    let mut cases = 0;
    for (i, ka) in kinds.iter().enumerate() {
        for kb in &kinds[i + 1..] {
            for aa in actions {
                for ab in actions {
                    for (sa, sb) in [(false, false), (false, true), (true, false), (true, true)] {
                        let a = Side {
                            kind: ka,
                            action: aa,
                            scoped: sa,
                        };
                        let b = Side {
                            kind: kb,
                            action: ab,
                            scoped: sb,
                        };
                        assert_eq!(
                            winner(a, b, false),
                            Some(expected_network(a, b)),
                            "{a:?} vs {b:?}"
                        );
                        assert_eq!(
                            winner(b, a, false),
                            Some(3 - expected_network(a, b)),
                            "{b:?} vs {a:?}"
                        );
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 6 * 16 * 4);
}

#[test]
fn spot_checks() {
    let side = |kind, action, scoped| Side {
        kind,
        action,
        scoped,
    };
    let cases = [
        (
            "the stronger hash decides: SHA-256 Allowed over a scoped MD5 Block",
            side("FileSha256", "Allowed", false),
            side("FileMd5", "Block", true),
            true,
            1,
        ),
        (
            "a certificate allow does not lift a hash block",
            side("FileSha1", "Block", false),
            side("CertificateThumbprint", "Allowed", true),
            true,
            1,
        ),
        (
            "an allowed IP beats a blocked URL on one connection",
            side("Address", "Allowed", false),
            side("Url", "Block", false),
            false,
            1,
        ),
        (
            "the URL's path beats the domain's block",
            side("DomainName", "Block", false),
            side("Url", "Allowed", false),
            false,
            2,
        ),
        (
            "a scoped warn beats an all-devices allow",
            side("Address", "Allowed", false),
            side("Network", "Warn", true),
            false,
            2,
        ),
    ];
    for (why, a, b, file, expected) in cases {
        assert_eq!(winner(a, b, file), Some(expected), "{why}");
    }
}

#[test]
fn out_of_scope_and_expired_indicators_do_not_take_part() {
    let index = IndicatorIndex::new();
    let tenant = TenantId::new_random();
    index.load(
        tenant,
        &[
            indicator(
                1,
                "IpAddress",
                "203.0.113.7",
                "Allowed",
                json!({ "rbacGroupIds": ["9"] }),
            ),
            indicator(
                2,
                "IpAddress",
                "203.0.113.0/24",
                "Allowed",
                json!({ "expirationTime": "2026-01-01T00:00:00Z" }),
            ),
            indicator(3, "DomainName", "evil.example", "Block", json!({})),
        ],
    );
    let hit = index.snapshot(tenant).match_network(
        &NetworkObservation {
            ip: "203.0.113.7".parse().ok(),
            url: Some("evil.example"),
        },
        DEVICE,
        NOW,
    );
    assert_eq!(hit.map(|h| h.entry.id), Some(3));
}
