//! Each attack leaves the rows its story needs, and every label points at one of them.

use crate::common::{self, Keep, spec};
use rampart_simulate::{Fleet, Os, ScenarioError, ScenarioSpec};
use std::collections::HashSet;

fn run(scenario: &str) -> (Keep, Fleet) {
    let s = spec(20, 1.0, 33, &[scenario]);
    (common::generate(&s), Fleet::new(&s))
}

fn all_labels_resolve(keep: &Keep, scenario: &str) {
    assert!(!keep.labels.is_empty());
    let keys: HashSet<_> = keep
        .rows
        .iter()
        .filter(|r| r.cols.contains_key("ReportId"))
        .map(|r| r.key())
        .collect();
    for l in &keep.labels {
        assert_eq!(l.scenario, scenario);
        assert!(
            keys.contains(&(l.device_id.clone(), l.table, l.report_id, l.timestamp_ns)),
            "no row for {l:?}"
        );
    }
}

#[test]
fn phishing_macro_to_beaconing() {
    let (keep, fleet) = run("phishing");
    all_labels_resolve(&keep, "phishing");
    let attachment = keep.labelled("phishing", "attachment-saved");
    assert_eq!(attachment.len(), 1);
    assert!(attachment[0].str("FileName").ends_with(".docm"));
    assert_eq!(
        attachment[0].str("InitiatingProcessFileName"),
        "OUTLOOK.EXE"
    );
    let word = keep.labelled("phishing", "macro-document-opened");
    assert_eq!(word[0].str("FileName"), "WINWORD.EXE");
    assert_eq!(word[0].str("InitiatingProcessFileName"), "OUTLOOK.EXE");
    assert_eq!(
        keep.labelled("phishing", "vba-engine-loaded")[0].str("FileName"),
        "VBE7.DLL"
    );
    let ps = keep.labelled("phishing", "encoded-powershell")[0];
    assert_eq!(ps.str("FileName"), "powershell.exe");
    assert_eq!(ps.str("InitiatingProcessFileName"), "WINWORD.EXE");
    assert_eq!(ps.int("InitiatingProcessId"), word[0].int("ProcessId"));
    assert!(
        ps.str("ProcessCommandLine").contains(" -Enc "),
        "{}",
        ps.str("ProcessCommandLine")
    );
    let device = &fleet.devices()[ps.device];
    assert_eq!(device.os, Os::Windows);
    assert!(!device.role.is_server());
    let run_key = keep.labelled("phishing", "run-key-persistence")[0];
    assert!(
        run_key
            .str("RegistryKey")
            .ends_with(r"\Software\Microsoft\Windows\CurrentVersion\Run")
    );
    // Beacons: one C2 address, about a minute apart, from the PowerShell process.
    let beacons = keep.labelled("phishing", "c2-beacon");
    assert!(beacons.len() > 100, "{}", beacons.len());
    assert!(
        beacons
            .iter()
            .all(|b| b.str("RemoteIP") == beacons[0].str("RemoteIP")
                && b.str("RemoteUrl") == beacons[0].str("RemoteUrl"))
    );
    assert!(
        beacons
            .iter()
            .all(|b| b.int("InitiatingProcessId") == ps.int("ProcessId")
                && b.str("RemoteIPType") == "Public")
    );
    for pair in beacons.windows(2) {
        let gap = (pair[1].ts() - pair[0].ts()) as f64 / 1e9;
        assert!((50.0..=70.0).contains(&gap), "beacon gap {gap}");
    }
    // The scenario runs at the middle of the window by default.
    let mid = common::START + common::DAY / 2;
    assert!((attachment[0].ts() - mid).abs() < common::HOUR);
}

#[test]
fn credential_theft_dumps_lsass_and_moves_laterally() {
    let (keep, fleet) = run("credential-theft");
    all_labels_resolve(&keep, "credential-theft");
    let tool = keep.labelled("credential-theft", "lsass-dump-tool")[0];
    let cmd = tool.str("ProcessCommandLine");
    assert!(cmd.contains("lsass") || cmd.contains("MiniDump"), "{cmd}");
    assert_eq!(tool.str("ProcessIntegrityLevel"), "High");
    let access = keep.labelled("credential-theft", "lsass-access")[0];
    assert_eq!(
        (
            access.table,
            access.str("ActionType"),
            access.str("FileName")
        ),
        ("DeviceEvents", "OpenProcessApiCall", "lsass.exe")
    );
    assert_eq!(access.int("InitiatingProcessId"), tool.int("ProcessId"));
    assert!(
        keep.labelled("credential-theft", "dump-file-written")[0]
            .str("FileName")
            .ends_with(".dmp")
    );
    let source = tool.device;
    let logon = keep.labelled("credential-theft", "network-logon")[0];
    assert_ne!(logon.device, source, "the logon happens on another device");
    assert_eq!(
        (logon.str("ActionType"), logon.str("LogonType")),
        ("LogonSuccess", "Network")
    );
    assert_eq!(logon.str("RemoteIP"), fleet.devices()[source].primary_ip());
    assert!(logon.str("AccountName").starts_with("adm-"));
    let conn = keep.labelled("credential-theft", "lateral-connection")[0];
    assert_eq!(
        conn.str("RemoteIP"),
        fleet.devices()[logon.device].primary_ip()
    );
    assert!([445, 135].contains(&conn.int("RemotePort")));
    let remote = keep.labelled("credential-theft", "remote-command");
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].device, logon.device);
    assert!(
        ["PSEXESVC.exe", "WmiPrvSE.exe"].contains(&remote[0].str("InitiatingProcessFileName")),
        "{}",
        remote[0].str("InitiatingProcessFileName")
    );
    assert!(remote[0].ts() > logon.ts());
}

#[test]
fn ransomware_deletes_shadows_and_renames_en_masse() {
    let (keep, _) = run("ransomware");
    all_labels_resolve(&keep, "ransomware");
    let shadows = keep.labelled("ransomware", "shadow-copy-deletion");
    assert!(shadows.iter().any(|r| r.str("FileName") == "vssadmin.exe"
        && r.str("ProcessCommandLine").contains("delete shadows")));
    assert!(shadows.iter().any(|r| r.str("FileName") == "WMIC.exe"
        && r.str("ProcessCommandLine").contains("shadowcopy delete")));
    let renamed = keep.labelled("ransomware", "file-encrypted");
    assert!((200..400).contains(&renamed.len()), "{}", renamed.len());
    let ext = renamed[0]
        .str("FileName")
        .rsplit('.')
        .next()
        .unwrap()
        .to_owned();
    for r in &renamed {
        assert_eq!(r.str("ActionType"), "FileRenamed");
        assert_eq!(
            r.str("FileName"),
            format!("{}.{ext}", r.str("PreviousFileName"))
        );
        assert_eq!(
            r.str("FolderPath"),
            format!("{}.{ext}", r.str("PreviousFolderPath"))
        );
    }
    let span = (renamed.last().unwrap().ts() - renamed[0].ts()) as f64 / 1e9;
    assert!(
        span < 200.0,
        "mass renames happen within minutes, took {span} s"
    );
    let notes = keep.labelled("ransomware", "ransom-note");
    assert!(notes.len() >= 5);
    assert!(
        notes
            .iter()
            .all(|n| n.str("ActionType") == "FileCreated"
                && n.str("FileName").starts_with("README_"))
    );
}

#[test]
fn ssh_brute_force_to_miner() {
    let (keep, fleet) = run("ssh-miner");
    all_labels_resolve(&keep, "ssh-miner");
    let failed = keep.labelled("ssh-miner", "ssh-brute-force");
    assert!(failed.len() >= 40);
    let attacker = failed[0].str("RemoteIP");
    assert!(failed.iter().all(|r| r.str("ActionType") == "LogonFailed"
        && r.str("RemoteIP") == attacker
        && r.str("RemoteIPType") == "Public"));
    let device = failed[0].device;
    assert_eq!(fleet.devices()[device].os, Os::Linux);
    assert!(
        fleet.devices()[device].internet_facing,
        "the default pick is internet-facing"
    );
    let success = keep.labelled("ssh-miner", "ssh-login-success")[0];
    assert_eq!(
        (success.str("ActionType"), success.str("RemoteIP")),
        ("LogonSuccess", attacker)
    );
    assert!(success.ts() > failed.last().unwrap().ts());
    let pipe = keep.labelled("ssh-miner", "curl-pipe-sh");
    assert!(pipe.iter().any(
        |r| r.str("ProcessCommandLine").contains("curl -fsSL http://")
            && r.str("ProcessCommandLine").contains("| sh")
    ));
    let miner = keep.labelled("ssh-miner", "miner-started")[0];
    assert!(
        miner.str("ProcessCommandLine").contains(" -o ")
            && miner.str("FolderPath").starts_with("/tmp/")
    );
    let pool = keep.labelled("ssh-miner", "mining-pool-connection");
    assert!(pool.len() > 20);
    assert!(
        pool.iter()
            .all(|r| r.int("InitiatingProcessId") == miner.int("ProcessId")
                && r.int("RemotePort") != 443)
    );
    let cron = keep.labelled("ssh-miner", "cron-persistence");
    assert!(cron.iter().any(|r| r.table == "DeviceFileEvents"
        && r.str("FolderPath").starts_with("/var/spool/cron/crontabs/")));
}

#[test]
fn scenarios_go_where_they_are_told_or_explain_why_not() {
    let fleet = Fleet::new(&spec(20, 1.0, 33, &[]));
    let win = fleet
        .devices()
        .iter()
        .find(|d| d.os == Os::Windows && !d.role.is_server())
        .unwrap();
    let keep = common::generate(&spec(
        20,
        1.0,
        33,
        &[&format!("ransomware@{}", win.host_name().to_uppercase())],
    ));
    assert!(keep.labels.iter().all(|l| l.device_id == win.id));

    let linux = fleet.devices().iter().find(|d| d.os == Os::Linux).unwrap();
    let mut bad = spec(20, 1.0, 33, &[]);
    bad.scenarios.push(ScenarioSpec {
        device: Some(linux.name.clone()),
        ..ScenarioSpec::new(rampart_simulate::ScenarioKind::Phishing)
    });
    assert!(matches!(
        rampart_simulate::check(&bad),
        Err(ScenarioError::WrongDevice { .. })
    ));
    let err = rampart_simulate::generate(&bad, &mut Keep::default()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("Windows workstation"), "{err}");

    bad.scenarios[0].device = Some("no-such-host".into());
    let err = rampart_simulate::generate(&bad, &mut Keep::default()).unwrap_err();
    assert!(err.to_string().contains("no-such-host"), "{err}");

    let mut tiny = spec(1, 0.1, 1, &[]);
    tiny.scenarios
        .push(ScenarioSpec::new(rampart_simulate::ScenarioKind::SshMiner));
    let err = rampart_simulate::generate(&tiny, &mut Keep::default()).unwrap_err();
    assert!(
        matches!(
            err.get_ref()
                .and_then(|e| e.downcast_ref::<ScenarioError>()),
            Some(ScenarioError::NoSuitableDevice { .. })
        ),
        "{err}"
    );
}
