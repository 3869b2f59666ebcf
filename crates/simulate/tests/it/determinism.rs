//! The same spec gives byte-identical files; another seed gives other data.

use crate::common::spec;
use rampart_simulate::sinks::NdjsonSink;
use std::collections::BTreeMap;
use std::path::Path;

fn ndjson_files(dir: &Path, seed: u64) -> BTreeMap<String, Vec<u8>> {
    let s = spec(12, 0.5, seed, &["phishing", "ssh-miner"]);
    let mut sink = NdjsonSink::create(dir).unwrap();
    let stats = rampart_simulate::generate(&s, &mut sink).unwrap();
    assert!(stats.total() > 1_000, "{stats:?}");
    assert!(stats.labels > 10, "{stats:?}");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_data() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ndjson_files(&tmp.path().join("a"), 7);
    let b = ndjson_files(&tmp.path().join("b"), 7);
    let c = ndjson_files(&tmp.path().join("c"), 8);
    assert!(
        a.contains_key("DeviceProcessEvents.ndjson") && a.contains_key("labels.jsonl"),
        "{:?}",
        a.keys()
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs between two runs of the same spec"
        );
    }
    // Another seed: another fleet, so even the first device id differs.
    assert_ne!(a["DeviceInfo.ndjson"], c["DeviceInfo.ndjson"]);
    assert_ne!(
        a["DeviceProcessEvents.ndjson"],
        c["DeviceProcessEvents.ndjson"]
    );
}

#[test]
fn fleets_depend_only_on_the_seed_and_size() {
    let a = rampart_simulate::Fleet::new(&spec(30, 1.0, 3, &[]));
    let b = rampart_simulate::Fleet::new(&spec(30, 5.0, 3, &["ransomware"]));
    let c = rampart_simulate::Fleet::new(&spec(30, 1.0, 4, &[]));
    let ids = |f: &rampart_simulate::Fleet| {
        f.devices()
            .iter()
            .map(|d| (d.id.clone(), d.name.clone(), d.ips.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_ne!(ids(&a), ids(&c));
}
