//! The organisation: OS mix, identities, address plans, snapshots.

use crate::common::{self, spec};
use rampart_simulate::{Fleet, Os};
use std::collections::{BTreeMap, BTreeSet};

fn is_private(ip: &str) -> bool {
    let o: Vec<u8> = ip.split('.').map(|p| p.parse().unwrap()).collect();
    o.len() == 4
        && (o[0] == 10 || (o[0] == 172 && (16..32).contains(&o[1])) || (o[0] == 192 && o[1] == 168))
}

#[test]
fn os_mix_identities_and_addresses() {
    let fleet = Fleet::new(&spec(100, 1.0, 11, &[]));
    let devs = fleet.devices();
    assert_eq!(devs.len(), 100);
    let mut by_os = BTreeMap::new();
    for d in devs {
        *by_os.entry(d.os).or_insert(0) += 1;
    }
    assert_eq!(by_os[&Os::Windows], 70);
    assert_eq!(by_os[&Os::Linux], 20);
    assert_eq!(by_os[&Os::MacOs], 10);
    // The list interleaves operating systems rather than grouping them.
    assert_ne!(
        devs[..10].iter().filter(|d| d.os == Os::Windows).count(),
        10
    );

    let ids: BTreeSet<_> = devs.iter().map(|d| d.id.as_str()).collect();
    let names: BTreeSet<_> = devs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        (ids.len(), names.len()),
        (100, 100),
        "ids and names are unique"
    );
    for d in devs {
        assert_eq!(d.id.len(), 40);
        assert!(
            d.id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{}",
            d.id
        );
        assert!(
            !d.ips.is_empty() && d.ips.iter().all(|ip| is_private(ip)),
            "{:?}",
            d.ips
        );
        assert!(!d.users.is_empty(), "{} has no users", d.name);
        assert!(!d.tags.is_empty(), "{} has no tags", d.name);
        assert_eq!(d.name, d.name.to_lowercase());
        match d.os {
            Os::Windows => assert!(
                d.name.ends_with(&format!(".{}", fleet.ad_domain)),
                "{}",
                d.name
            ),
            _ => assert!(!d.name.contains('.'), "{}", d.name),
        }
    }
    // Each site has its own private plan, and its devices live in it.
    assert!(fleet.sites.len() >= 2);
    let plans: BTreeSet<_> = fleet.sites.iter().map(|s| s.subnet.clone()).collect();
    assert_eq!(plans.len(), fleet.sites.len());
    assert!(
        fleet.sites.iter().any(|s| s.subnet.starts_with("10."))
            && fleet.sites.iter().any(|s| s.subnet.starts_with("172."))
    );
    for d in devs {
        let site = fleet.sites.iter().find(|s| s.city == d.site).unwrap();
        let prefix: String = site.subnet.split('.').take(2).collect::<Vec<_>>().join(".");
        assert!(
            d.ips[0].starts_with(&format!("{prefix}.")),
            "{} {} not in {}",
            d.name,
            d.ips[0],
            site.subnet
        );
    }
    assert!(fleet.find(devs[3].host_name()).is_some_and(|i| i == 3));
    assert_eq!(fleet.find(&devs[5].id.to_uppercase()), None);
}

#[test]
fn small_fleets_keep_the_mix() {
    let devs = Fleet::new(&spec(10, 1.0, 1, &[])).devices().to_vec();
    let count = |os| devs.iter().filter(|d| d.os == os).count();
    assert_eq!(
        (count(Os::Windows), count(Os::Linux), count(Os::MacOs)),
        (7, 2, 1)
    );
}

#[test]
fn every_device_reports_hourly_snapshots() {
    let keep = common::generate(&spec(6, 1.0, 5, &[]));
    let mut info = BTreeMap::new();
    for r in keep.table("DeviceInfo") {
        *info.entry(r.str("DeviceId").to_owned()).or_insert(0) += 1;
        assert!(
            r.int("ReportId") > 600_000_000_000_000_000,
            "snapshot ReportIds are 18-digit"
        );
        assert!(r.str("OSPlatform").len() > 3);
        assert!(r.str("DeviceManualTags").starts_with('['));
    }
    assert_eq!(info.len(), 6);
    assert!(info.values().all(|&n| n == 24), "{info:?}");
    let adapters = keep.table("DeviceNetworkInfo").count();
    assert!(adapters >= 6 * 24, "{adapters}");
    for r in keep.table("DeviceNetworkInfo") {
        let addrs: serde_json::Value = serde_json::from_str(r.str("IPAddresses")).unwrap();
        assert!(addrs.is_array());
        assert_eq!(r.str("MacAddress").len(), 17);
    }
}

#[test]
fn tiny_fleets_generate_without_surprises() {
    for n in 0..6 {
        let keep = common::generate(&spec(n, 0.2, n as u64, &[]));
        let devices: BTreeSet<&str> = keep.rows.iter().map(|r| r.str("DeviceId")).collect();
        assert_eq!(devices.len(), n, "every device reports within a few hours");
        // Scenarios that fit the fleet run; the others are refused with a reason.
        for s in ["phishing", "credential-theft", "ransomware", "ssh-miner"] {
            let spec = spec(n, 0.2, 1, &[s]);
            match rampart_simulate::check(&spec) {
                Ok(()) => assert!(
                    !common::generate(&spec).labels.is_empty(),
                    "{s} on {n} devices"
                ),
                Err(e) => assert!(e.to_string().contains("needs"), "{e}"),
            }
        }
    }
}
