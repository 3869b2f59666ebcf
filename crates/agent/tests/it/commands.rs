//! The command journal (at most once across restarts), the isolation rule set as the real
//! `nft` reads it, and the parsing of the isolation settings. Isolation applied for real, in
//! network namespaces, is tested end to end against the server (crates/rampart/tests/it/agent.rs).

use rampart_agent::commands::isolation::{self, AllowedNet};
use rampart_agent::commands::journal::{Begin, Journal};
use rampart_proto::command::{Command, CommandKind, CommandState, CommandUpdate, IsolationType};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;

fn command(id: &str, kind: CommandKind) -> Command {
    Command {
        id: id.into(),
        machine_action_id: id.into(),
        kind,
    }
}

fn done(id: &str) -> CommandUpdate {
    CommandUpdate {
        command_id: id.into(),
        state: CommandState::Succeeded,
        detail: None,
        commands: Vec::new(),
        evidence: None,
    }
}

#[test]
fn a_command_runs_once_and_its_result_is_kept_until_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let scan = command(
        "a1",
        CommandKind::KillProcess {
            pid: 4242,
            image_path: None,
        },
    );
    let mut j = Journal::open(dir.path()).unwrap();
    assert_eq!(j.begin(&scan).unwrap(), Begin::Run);
    // Sent again while it runs: nothing to do.
    assert_eq!(j.begin(&scan).unwrap(), Begin::Ignore);
    assert_eq!(j.held(), vec!["a1".to_owned()]);
    j.finish(&done("a1")).unwrap();
    assert_eq!(j.owed(), vec![done("a1")]);
    // Sent again before the result got through: the result, not a second run.
    assert_eq!(j.begin(&scan).unwrap(), Begin::Report(done("a1")));

    // A restart keeps the owed result.
    drop(j);
    let mut j = Journal::open(dir.path()).unwrap();
    assert_eq!(j.owed(), vec![done("a1")]);
    assert_eq!(j.held(), vec!["a1".to_owned()]);
    j.delivered("a1").unwrap();
    assert!(j.owed().is_empty());
    assert!(j.held().is_empty());
    assert_eq!(j.begin(&scan).unwrap(), Begin::Ignore);
    // A result that comes after the server gave up on the command is not owed.
    j.finish(&done("a1")).unwrap();
    assert!(j.owed().is_empty());
}

#[test]
fn a_restart_fails_an_interrupted_command_but_runs_a_converging_one_again() {
    let dir = tempfile::tempdir().unwrap();
    let kill = command(
        "k1",
        CommandKind::KillProcess {
            pid: 4242,
            image_path: None,
        },
    );
    let isolate = command(
        "i1",
        CommandKind::Isolate {
            isolation_type: IsolationType::Full,
        },
    );
    {
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.begin(&kill).unwrap(), Begin::Run);
        assert_eq!(j.begin(&isolate).unwrap(), Begin::Run);
        // The agent dies here.
    }
    let mut j = Journal::open(dir.path()).unwrap();
    let owed = j.owed();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].command_id, "k1");
    assert_eq!(owed[0].state, CommandState::Failed);
    assert!(
        owed[0].detail.as_deref().unwrap().contains("not run again"),
        "{owed:?}"
    );
    assert!(matches!(j.begin(&kill).unwrap(), Begin::Report(u) if u.state == CommandState::Failed));
    // Isolating twice is isolating once: it runs again.
    assert_eq!(j.begin(&isolate).unwrap(), Begin::Run);
}

#[test]
fn delivered_entries_are_pruned_but_the_file_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path()).unwrap();
    for i in 0..600 {
        let id = format!("c{i}");
        let c = command(&id, CommandKind::Unisolate);
        assert_eq!(j.begin(&c).unwrap(), Begin::Run);
        j.finish(&done(&id)).unwrap();
        j.delivered(&id).unwrap();
    }
    drop(j);
    let mut j = Journal::open(dir.path()).unwrap();
    // The newest are remembered, the oldest forgotten.
    assert_eq!(
        j.begin(&command("c599", CommandKind::Unisolate)).unwrap(),
        Begin::Ignore
    );
    assert_eq!(
        j.begin(&command("c0", CommandKind::Unisolate)).unwrap(),
        Begin::Run
    );
    let text = std::fs::read_to_string(Journal::path(dir.path())).unwrap();
    assert!(text.len() < 100_000, "{} bytes", text.len());
}

#[test]
fn a_corrupt_journal_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(Journal::path(dir.path()), b"{not json").unwrap();
    let err = Journal::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("commands.json"), "{err}");
}

#[test]
fn allow_list_entries_and_resolvers_are_parsed() {
    let n: AllowedNet = "10.0.0.0/8".parse().unwrap();
    assert_eq!(n.addr, "10.0.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(n.prefix, 8);
    assert_eq!("192.0.2.7".parse::<AllowedNet>().unwrap().prefix, 32);
    assert_eq!("2001:db8::/32".parse::<AllowedNet>().unwrap().prefix, 32);
    assert_eq!("2001:db8::1".parse::<AllowedNet>().unwrap().prefix, 128);
    for bad in [
        "10.0.0.0/33",
        "example.com",
        "10.0.0.0/x",
        "",
        "2001:db8::/129",
    ] {
        let err = bad.parse::<AllowedNet>().unwrap_err();
        assert!(!err.is_empty(), "{bad}");
    }
    let conf = "# comment\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch example\nnameserver 192.0.2.53\n";
    assert_eq!(
        isolation::resolvers(conf),
        vec![
            "192.0.2.53".parse::<IpAddr>().unwrap(),
            "fe80::1".parse::<IpAddr>().unwrap()
        ]
    );
}

/// `nft --check` on a rule set: the kernel's nftables validates it without applying it.
fn nft_check(doc: &serde_json::Value) -> Result<(), String> {
    let mut child = std::process::Command::new("nft")
        .args(["-c", "-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e} (install nftables)"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_isolation_rule_set_is_one_nftables_transaction_nft_accepts() {
    let servers: Vec<SocketAddr> = vec![
        "192.0.2.10:8443".parse().unwrap(),
        "[2001:db8::10]:8443".parse().unwrap(),
    ];
    let dns: Vec<IpAddr> = vec!["192.0.2.53".parse().unwrap()];
    let allow: Vec<AllowedNet> = vec![
        "198.51.100.0/24".parse().unwrap(),
        "2001:db8:1::/48".parse().unwrap(),
    ];
    let doc = isolation::ruleset(&servers, &dns, &allow);
    nft_check(&doc).unwrap();
    let cmds = doc["nftables"].as_array().unwrap();
    // Replaces the table whole: add (so the delete cannot fail), delete, add.
    assert!(cmds[0]["add"]["table"].is_object());
    assert!(cmds[1]["delete"]["table"].is_object());
    let chains: Vec<_> = cmds
        .iter()
        .filter_map(|c| c["add"]["chain"].as_object())
        .collect();
    assert_eq!(chains.len(), 2);
    assert!(chains.iter().all(|c| c["policy"] == "drop"));
    let text = doc.to_string();
    for needle in [
        "192.0.2.10",
        "2001:db8::10",
        "8443",
        "192.0.2.53",
        "198.51.100.0",
    ] {
        assert!(text.contains(needle), "{needle} missing");
    }
    // Full isolation: no allow-list, still valid.
    nft_check(&isolation::ruleset(&servers[..1], &[], &[])).unwrap();
}

/// The channel against a server that sends a command twice and refuses its result twice
/// (503) before taking it: the command runs once, its result is kept and sent until taken,
/// and the polls list it as held meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_twice_runs_once_and_its_result_survives_a_failing_server() {
    use crate::server::{Reply, Responder, TinyServer};
    use rampart_agent::client::ServerClient;
    use rampart_agent::commands::isolation::ServerEndpoint;
    use rampart_agent::commands::live_response::LiveResponder;
    use rampart_agent::commands::offboard::Offboarding;
    use rampart_agent::commands::package::PackageCollector;
    use rampart_agent::commands::restrict::ExecControl;
    use rampart_agent::commands::{ChannelConfig, CommandChannel, Executor};
    use rampart_agent::netblock::AddressBlock;
    use rampart_agent::process::hashes::HashCache;
    use rampart_agent::process::rows::RowContext;
    use rampart_agent::quarantine::Quarantine;
    use rampart_agent::scan::Scanner;
    use rampart_agent::scan::locations::QuickLocations;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = victim.id();
    let polls = Arc::new(AtomicUsize::new(0));
    let updates = Arc::new(AtomicUsize::new(0));
    let responder: Responder = {
        let (polls, updates) = (Arc::clone(&polls), Arc::clone(&updates));
        Arc::new(move |_, req| {
            if req.path == "/agent/v1/commands/poll" {
                // The command in the first two answers; then nothing new (503 keeps the
                // agent from spinning on an always-empty poll).
                let command = serde_json::json!({ "id": "k1", "machineActionId": "k1",
                    "kind": { "type": "KillProcess", "pid": pid } });
                match polls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Reply::json(200, serde_json::json!({ "commands": [command] })),
                    _ => Reply::json(
                        503,
                        serde_json::json!({"error": {"code": "ServiceUnavailable", "message": "busy", "target": ""}}),
                    ),
                }
            } else if updates.fetch_add(1, Ordering::SeqCst) < 2 {
                Reply::json(
                    503,
                    serde_json::json!({"error": {"code": "ServiceUnavailable", "message": "down", "target": ""}}),
                )
            } else {
                Reply::json(
                    200,
                    serde_json::json!({ "commandId": "k1", "status": "Succeeded" }),
                )
            }
        })
    };
    let server = TinyServer::start(responder).await;
    let dir = tempfile::tempdir().unwrap();
    let (rows, _keep) = tokio::sync::mpsc::channel(16);
    let cache = Arc::new(HashCache::new(1 << 20, 16));
    let scanner = Arc::new(Scanner::new(
        Arc::clone(&cache),
        QuickLocations { paths: vec![] },
        Some(vec![]),
        RowContext::default(),
        rows.clone(),
    ));
    let channel = CommandChannel {
        client: ServerClient::new(&server.url(), None).unwrap(),
        authorization: "Device x:y".into(),
        journal: Arc::new(Mutex::new(Journal::open(dir.path()).unwrap())),
        executor: Arc::new(Executor {
            isolation: isolation::Isolation::new(dir.path(), &server.url(), vec![]).unwrap(),
            exec: Arc::new(ExecControl::new(
                dir.path(),
                None,
                &rows,
                RowContext::default(),
                cache,
            )),
            quarantine: Quarantine::new(dir.path(), Arc::clone(&scanner)),
            scanner,
            current_scan: Default::default(),
            packages: PackageCollector {
                state_dir: dir.path().to_owned(),
                context: RowContext::default(),
                client: ServerClient::new(&server.url(), None).unwrap(),
                authorization: "Device x:y".into(),
            },
            live: LiveResponder::new(
                dir.path(),
                ServerClient::new(&server.url(), None).unwrap(),
                "Device x:y".into(),
            ),
            persistence: rampart_agent::commands::persistence::PersistenceStore::new(dir.path()),
            offboarding: Offboarding {
                state_dir: dir.path().to_owned(),
                addresses: AddressBlock::new(ServerEndpoint::of(&server.url()).unwrap()),
                offboarded: Arc::default(),
            },
        }),
        config: ChannelConfig {
            wait: Duration::ZERO,
            backoff_base: Duration::from_millis(20),
            backoff_cap: Duration::from_millis(100),
        },
        offboard: Arc::default(),
        indicators_changed: Arc::default(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(channel.run(stopped));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while updates.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the result was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(true).unwrap();
    running.await.unwrap();

    use std::os::unix::process::ExitStatusExt;
    const SIGKILL: i32 = 9;
    assert_eq!(victim.wait().unwrap().signal(), Some(SIGKILL));
    let sent: Vec<serde_json::Value> = server
        .requests()
        .iter()
        .filter(|r| r.path == "/agent/v1/commands/k1")
        .map(|r| r.json())
        .collect();
    assert_eq!(
        sent.len(),
        3,
        "sent until taken, then never again: {sent:?}"
    );
    for s in &sent {
        assert_eq!(s["state"], "Succeeded");
        // The one run's result every time: the second delivery did not run it again (a second
        // kill of the gone process would have failed).
        assert_eq!(s["detail"], format!("process {pid} killed"));
    }
    // While the result was owed, the polls said the agent holds it.
    let held = server
        .requests()
        .iter()
        .filter(|r| r.path == "/agent/v1/commands/poll")
        .any(|r| r.json()["running"] == serde_json::json!(["k1"]));
    assert!(held);
    assert!(Journal::open(dir.path()).unwrap().held().is_empty());
}

#[test]
fn the_address_block_rule_set_is_one_transaction_nft_accepts() {
    use rampart_agent::netblock;
    let servers: Vec<SocketAddr> = vec!["192.0.2.10:8443".parse().unwrap()];
    let block: Vec<AllowedNet> = ["198.51.100.7", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"]
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let allow: Vec<AllowedNet> = vec!["10.1.2.3".parse().unwrap()];
    let doc = netblock::ruleset(&servers, &block, &allow);
    nft_check(&doc).unwrap();
    let text = doc.to_string();
    for needle in [
        "@block4",
        "@block6",
        "@allow4",
        "192.0.2.10",
        "198.51.100.7",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    // Chains accept by default: only what is blocked is dropped.
    let chains: Vec<_> = doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["add"]["chain"].as_object())
        .collect();
    assert!(chains.iter().all(|c| c["policy"] == "accept"));
}

#[test]
fn nested_networks_are_reduced_to_the_outermost() {
    use rampart_agent::netblock::outermost;
    let nets: Vec<AllowedNet> = [
        "10.1.2.3",
        "10.0.0.0/8",
        "10.1.0.0/16",
        "192.0.2.1",
        "192.0.2.1",
        "2001:db8::1",
        "2001:db8::/32",
        "0.0.0.0/0",
    ]
    .iter()
    .map(|v| v.parse().unwrap())
    .collect();
    let kept: Vec<String> = outermost(&nets)
        .iter()
        .map(|n| format!("{}/{}", n.addr, n.prefix))
        .collect();
    assert_eq!(kept, ["0.0.0.0/0", "2001:db8::/32"]);
    let nets: Vec<AllowedNet> = ["10.0.0.0/8", "11.0.0.0/8", "10.255.255.255"]
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(outermost(&nets).len(), 2);
}
