//! Live mode hands out each row once, inside the asked window, and matches batch generation.

use crate::common::{HOUR, Keep, START, spec};
use rampart_simulate::live::Live;
use rampart_simulate::sinks::JsonRows;
use rampart_simulate::{ScenarioKind, ScenarioSpec};
use std::collections::HashSet;

#[test]
fn due_emits_each_row_once_within_its_window() {
    let s = spec(15, 1.0, 17, &[]);
    let mut live = Live::new(&s);
    assert_eq!(live.fleet().devices().len(), 15);
    let mut seen = HashSet::new();
    let mut last = START - 1;
    let mut total = 0;
    // Uneven steps, including ones that end on an odd nanosecond.
    for (k, step) in [
        (1, 7 * 60_000_000_000i64),
        (2, 1),
        (3, 23 * 60_000_000_000 + 17),
        (4, HOUR),
        (5, 3 * HOUR + 101),
    ] {
        let now = last + step;
        let mut keep = Keep::default();
        let n = live.due(now, &mut keep).unwrap();
        assert_eq!(n, keep.rows.len(), "step {k}");
        for r in &keep.rows {
            let t = r.ts();
            assert!(
                t > last && t <= now,
                "step {k}: row at {t} outside ({last}, {now}]"
            );
            assert!(
                seen.insert(r.key()),
                "step {k}: row emitted twice: {:?}",
                r.cols
            );
        }
        total += n;
        last = now;
    }
    assert!(total > 500, "{total}");
    // Asking again for the same instant gives nothing.
    assert_eq!(live.due(last, &mut Keep::default()).unwrap(), 0);
    assert_eq!(live.due(last - HOUR, &mut Keep::default()).unwrap(), 0);

    // The same window generated in one go has exactly the same rows.
    let mut batch = spec(15, 1.0, 17, &[]);
    batch.days = (last + 1 - START) as f64 / (24 * HOUR) as f64;
    let mut keep = Keep::default();
    rampart_simulate::generate(&batch, &mut keep).unwrap();
    let batch_keys: HashSet<_> = keep.rows.iter().map(|r| r.key()).collect();
    assert_eq!(batch_keys, seen);
}

#[test]
fn injected_scenarios_start_now_and_agents_get_json_batches() {
    let s = spec(12, 1.0, 5, &[]);
    let mut live = Live::new(&s);
    let now = START + 2 * HOUR;
    let mut rows = JsonRows::new();
    live.due(now, &mut rows).unwrap();
    assert!(rows.take_labels().is_empty());
    let before = rows.len();
    let per_device = rows.take_all();
    assert_eq!(
        per_device
            .iter()
            .map(|(_, r)| r.values().map(Vec::len).sum::<usize>())
            .sum::<usize>(),
        before
    );
    assert!(
        per_device.len() >= 10,
        "most devices report within two hours"
    );
    assert!(rows.is_empty());
    // What an agent posts is accepted row by row by ingestion.
    for (_, tables) in &per_device {
        for (name, rows) in tables {
            let table = rampart_core::schema::table(name).unwrap();
            let mut b = rampart_telemetry::TableBatchBuilder::new(table);
            for r in rows {
                b.push_json(r).unwrap_or_else(|e| panic!("{e}: {r:?}"));
            }
        }
    }
    let (dev, tables) = &per_device[0];
    let info = &tables["DeviceInfo"][0];
    assert_eq!(info["DeviceId"], live.fleet().devices()[*dev].id.as_str());
    assert!(info["Timestamp"].as_str().unwrap().ends_with('Z'));

    // A scenario in the past is moved to just after what was already emitted.
    live.inject(
        ScenarioSpec {
            at_ns: Some(START),
            ..ScenarioSpec::new(ScenarioKind::Ransomware)
        },
        now,
    );
    // An unknown device falls back to a suitable one instead of failing the live fleet.
    live.inject(
        ScenarioSpec {
            device: Some("nope".into()),
            ..ScenarioSpec::new(ScenarioKind::SshMiner)
        },
        now,
    );
    assert!(
        live.try_inject(
            ScenarioSpec {
                device: Some("nope".into()),
                ..ScenarioSpec::new(ScenarioKind::SshMiner)
            },
            now
        )
        .is_err()
    );
    let mut keep = Keep::default();
    live.due(now + HOUR, &mut keep).unwrap();
    let scenarios: HashSet<&str> = keep.labels.iter().map(|l| l.scenario.as_str()).collect();
    assert_eq!(scenarios, HashSet::from(["ransomware", "ssh-miner"]));
    assert!(keep.labels.iter().all(|l| l.timestamp_ns > now));
    assert_eq!(live.stats().labels as usize, keep.labels.len());
}

#[test]
fn finished_processes_are_recycled() {
    let s = spec(10, 1.0, 2, &[]);
    let mut live = Live::new(&s);
    let mut sizes = Vec::new();
    for day in 1..=4 {
        live.due(
            START + day * 24 * HOUR,
            &mut rampart_simulate::sinks::Count::default(),
        )
        .unwrap();
        sizes.push(live.live_processes());
    }
    // The process table does not grow with time: days 2-4 stay near day 1.
    assert!(sizes.iter().all(|&n| n < sizes[0] * 2 + 50), "{sizes:?}");
}
