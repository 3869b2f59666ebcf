//! Commands: every kind round-trips; unknown kinds and bad parameters become explicit values
//! with a reason, never an error that would drop the message.

use rampart_proto::command::{
    Command, CommandKind, CommandState, CommandUpdate, EvidenceRequest, FileProbe, FileState,
    IsolationType, LiveCommand, LiveCommandOutcome, LiveEvidence, PersistenceTarget, ProcessState,
    ProcessTarget, ScanType,
};
use serde_json::json;

fn all_kinds() -> Vec<CommandKind> {
    vec![
        CommandKind::Isolate {
            isolation_type: IsolationType::Full,
        },
        CommandKind::Isolate {
            isolation_type: IsolationType::Selective,
        },
        CommandKind::Unisolate,
        CommandKind::RunAntiVirusScan {
            scan_type: ScanType::Quick,
        },
        CommandKind::RunAntiVirusScan {
            scan_type: ScanType::Full,
        },
        CommandKind::StopAndQuarantineFile {
            sha1: "0123456789abcdef0123456789abcdef01234567".into(),
        },
        CommandKind::RestoreQuarantinedFile {
            sha1: "0123456789abcdef0123456789abcdef01234567".into(),
        },
        CommandKind::CollectInvestigationPackage,
        CommandKind::RestrictCodeExecution,
        CommandKind::UnrestrictCodeExecution,
        CommandKind::KillProcess {
            pid: 4242,
            image_path: None,
        },
        CommandKind::KillProcess {
            pid: 4242,
            image_path: Some("/tmp/implant".into()),
        },
        CommandKind::RemovePersistence(PersistenceTarget {
            path: "/root/.ssh/authorized_keys".into(),
            entries: vec!["AAAAC3NzaC1lZDI1NTE5AAAAIHq8i1bWx7f1".into()],
        }),
        CommandKind::RestorePersistence(PersistenceTarget {
            path: "/etc/cron.d/update".into(),
            entries: vec![],
        }),
        CommandKind::CollectLiveEvidence(EvidenceRequest {
            investigation_id: "12".into(),
            processes: vec![ProcessTarget {
                pid: 4242,
                image_path: "/tmp/implant".into(),
            }],
            files: vec![FileProbe {
                path: "/tmp/implant".into(),
                sha1: Some("0123456789abcdef0123456789abcdef01234567".into()),
            }],
        }),
        CommandKind::Offboard,
        CommandKind::LiveResponse {
            commands: vec![
                LiveCommand::PutFile {
                    file_name: "data.txt".into(),
                    sha256: SHA256.into(),
                },
                LiveCommand::RunScript {
                    script_name: "collect.sh".into(),
                    sha256: SHA256.into(),
                    args: Some("-v 'a b'".into()),
                },
                LiveCommand::RunScript {
                    script_name: "noargs.sh".into(),
                    sha256: SHA256.into(),
                    args: None,
                },
                LiveCommand::GetFile {
                    path: "/tmp/out.tgz".into(),
                },
            ],
        },
    ]
}

const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn live_response_commands_carry_the_library_hash_in_camel_case() {
    let kind: CommandKind = serde_json::from_value(json!({"type": "LiveResponse", "commands": [
        {"type": "PutFile", "fileName": "a.txt", "sha256": SHA256},
        {"type": "RunScript", "scriptName": "s.sh", "sha256": SHA256, "args": "x"},
        {"type": "GetFile", "path": "/etc/hosts"}]}))
    .unwrap();
    let CommandKind::LiveResponse { commands } = &kind else {
        panic!("{kind:?}")
    };
    assert_eq!(commands.len(), 3);
    assert!(!commands[0].has_result());
    assert!(commands[1].has_result() && commands[2].has_result());
    assert_eq!(kind.rejection_reason(), None);
}

#[test]
fn every_known_kind_round_trips() {
    for kind in all_kinds() {
        let c = Command {
            id: "c1".into(),
            machine_action_id: "ma1".into(),
            kind: kind.clone(),
        };
        let text = serde_json::to_string(&c).unwrap();
        let back: Command = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c, "{text}");
        assert_eq!(back.kind.rejection_reason(), None, "{text}");
        assert!(CommandUpdate::rejection(&back).is_none());
    }
}

#[test]
fn the_wire_shape_is_type_plus_camel_case_parameters() {
    let c = Command {
        id: "c1".into(),
        machine_action_id: "ma1".into(),
        kind: CommandKind::Isolate {
            isolation_type: IsolationType::Selective,
        },
    };
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        json!({"id": "c1", "machineActionId": "ma1", "kind": {"type": "Isolate", "isolationType": "Selective"}})
    );
    let q: CommandKind = serde_json::from_value(
        json!({"type": "StopAndQuarantineFile", "sha1": "ABCDEF0123456789ABCDEF0123456789ABCDEF01"}),
    )
    .unwrap();
    assert_eq!(
        q,
        CommandKind::StopAndQuarantineFile {
            sha1: "abcdef0123456789abcdef0123456789abcdef01".into()
        }
    );
}

#[test]
fn an_unknown_kind_deserialises_to_unknown_with_a_reason() {
    let c: Command = serde_json::from_value(json!({
        "id": "c9", "machineActionId": "ma9",
        "kind": {"type": "RunLiveResponse", "commands": [1, 2, 3]}
    }))
    .unwrap();
    assert_eq!(
        c.kind,
        CommandKind::Unknown {
            kind: "RunLiveResponse".into()
        }
    );
    let update = CommandUpdate::rejection(&c).unwrap();
    assert_eq!(update.command_id, "c9");
    assert_eq!(update.state, CommandState::Failed);
    assert!(
        update
            .detail
            .unwrap()
            .contains("unknown command type 'RunLiveResponse'")
    );
}

#[test]
fn bad_parameters_deserialise_to_invalid_with_a_reason() {
    let cases = [
        json!({"type": "Isolate"}),
        json!({"type": "Isolate", "isolationType": "UnManagedDevice"}),
        json!({"type": "RunAntiVirusScan", "scanType": 3}),
        json!({"type": "StopAndQuarantineFile", "sha1": "not-hex"}),
        json!({"type": "RestoreQuarantinedFile", "sha1": "0123"}),
        json!({"type": "RestoreQuarantinedFile"}),
        json!({"type": "KillProcess", "pid": -5}),
        json!({"type": "KillProcess", "pid": 1}),
        json!({"type": "KillProcess", "pid": "12"}),
        json!({"type": "KillProcess", "pid": 12, "imagePath": "sh"}),
        // Only a persistence location, and never a whole shared file.
        json!({"type": "RemovePersistence", "path": "/etc/passwd", "entries": ["root:x:0:0:"]}),
        json!({"type": "RemovePersistence", "path": "/root/.ssh/authorized_keys"}),
        json!({"type": "RestorePersistence", "path": "relative/.bashrc", "entries": ["aaaaaaaaaa"]}),
        json!({"type": "CollectLiveEvidence", "investigationId": "1"}),
        json!({"type": "CollectLiveEvidence", "investigationId": "1",
               "files": [{"path": "/tmp/../etc/shadow"}]}),
        json!({"type": "Offboard", "extra": true}),
        json!({"type": "LiveResponse", "commands": []}),
        json!({"type": "LiveResponse"}),
        json!({"type": "LiveResponse", "commands": [{"type": "Format", "drive": "C"}]}),
        json!({"type": "LiveResponse", "commands": [{"type": "GetFile", "path": "relative/x"}]}),
        json!({"type": "LiveResponse", "commands": [
            {"type": "PutFile", "fileName": "../../etc/passwd", "sha256": SHA256}]}),
        json!({"type": "LiveResponse", "commands": [
            {"type": "RunScript", "scriptName": "s.sh", "sha256": "abc"}]}),
        json!({"type": "LiveResponse", "commands": [
            {"type": "GetFile", "path": "/x", "extra": 1}]}),
    ];
    for case in cases {
        let kind: CommandKind = serde_json::from_value(case.clone()).unwrap();
        assert!(
            matches!(kind, CommandKind::Invalid { .. }),
            "{case} gave {kind:?}"
        );
        let reason = kind.rejection_reason().unwrap();
        assert!(
            reason.starts_with("invalid parameters for command"),
            "{reason}"
        );
    }
}

#[test]
fn a_kind_without_a_type_is_a_deserialisation_error_not_a_panic() {
    for bad in [json!({}), json!({"type": 7}), json!("Isolate"), json!(null)] {
        assert!(serde_json::from_value::<CommandKind>(bad).is_err());
    }
    let long = "X".repeat(10_000);
    let kind: CommandKind = serde_json::from_value(json!({"type": long})).unwrap();
    assert!(kind.rejection_reason().unwrap().len() < 200);
}

#[test]
fn command_update_round_trips() {
    for state in [
        CommandState::InProgress,
        CommandState::Succeeded,
        CommandState::Failed,
    ] {
        let u = CommandUpdate {
            command_id: "c1".into(),
            state,
            detail: Some("d".into()),
            commands: vec![LiveCommandOutcome {
                index: 0,
                completed: false,
                started_ms: 1,
                ended_ms: 2,
                errors: vec!["no such file".into()],
            }],
            evidence: Some(LiveEvidence {
                processes: vec![ProcessState {
                    pid: 7,
                    running: false,
                }],
                files: vec![FileState {
                    path: "/tmp/x".into(),
                    exists: true,
                    sha1: None,
                }],
            }),
        };
        let back: CommandUpdate =
            serde_json::from_str(&serde_json::to_string(&u).unwrap()).unwrap();
        assert_eq!(back, u);
    }
    assert_eq!(
        serde_json::to_value(CommandUpdate {
            command_id: "c".into(),
            state: CommandState::InProgress,
            detail: None,
            commands: Vec::new(),
            evidence: None,
        })
        .unwrap(),
        json!({"commandId": "c", "state": "InProgress"})
    );
}

#[test]
fn polls_and_their_answers_have_defaults_and_camel_case_names() {
    use rampart_proto::command::{PollRequest, PollResponse, UpdateAck};
    let p: PollRequest = serde_json::from_str("{}").unwrap();
    assert_eq!(p, PollRequest::default());
    let p: PollRequest = serde_json::from_str(r#"{"waitSeconds": 30, "running": ["a"]}"#).unwrap();
    assert_eq!((p.wait_seconds, p.running), (30, vec!["a".to_owned()]));
    assert!(serde_json::from_str::<PollRequest>(r#"{"waitSeconds": -1}"#).is_err());
    // The indicator generation is optional both ways (agents and servers older than it).
    let p: PollRequest = serde_json::from_str(r#"{"indicatorGeneration": 7}"#).unwrap();
    assert_eq!(p.indicator_generation, Some(7));
    assert_eq!(
        serde_json::to_value(PollRequest::default()).unwrap(),
        serde_json::json!({"waitSeconds": 0, "running": []})
    );
    let r: PollResponse =
        serde_json::from_str(r#"{"commands": [], "indicatorGeneration": 3}"#).unwrap();
    assert_eq!((r.indicator_generation, r.is_empty()), (Some(3), true));

    let r: PollResponse = serde_json::from_str(r#"{"commands": []}"#).unwrap();
    assert!(r.is_empty());
    let r: PollResponse = serde_json::from_str(
        r#"{"commands": [{"id": "c", "machineActionId": "c", "kind": {"type": "Unisolate"}}], "cancelled": ["d"]}"#,
    )
    .unwrap();
    assert!(!r.is_empty());
    assert_eq!(r.cancelled, vec!["d".to_owned()]);
    let ack = UpdateAck {
        command_id: "c".into(),
        status: "Succeeded".into(),
    };
    assert_eq!(
        serde_json::to_value(&ack).unwrap(),
        serde_json::json!({"commandId": "c", "status": "Succeeded"})
    );
}
