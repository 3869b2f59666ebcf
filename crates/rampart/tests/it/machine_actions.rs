//! Machine actions over HTTP: every route and status code, the idempotency rules, the agent's
//! claim/complete interface, time-outs — on every backend.

use crate::harness::{Backend, Server, assert_mde_error, backends, seed_machine};
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::machine::Machine;
use rampart_core::machine_action::{
    ActionOutcome, ActionRequest, ActionStatus, ActionSubmission, CommandInput, CommandOutcome,
    CommandParam, CommandStatus, IsolationType, MachineAction, RequestedAction, parse_commands,
};
use rampart_store::SqlStore;
use rampart_store::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Every action permission, reading machine actions, and reading the audit log.
const ROLES: &str = "Machine.Read.All,Machine.Isolate,Machine.RestrictExecution,Machine.Scan,\
Machine.CollectForensics,Machine.StopAndQuarantine,Machine.Offboard,Machine.LiveResponse,\
SecurityConfiguration.Read.All";
const SHA1: &str = "220e7d15b011d7fac48f2bd61114db1022197f7f";

struct Resp {
    status: u16,
    body: Value,
    existing: bool,
    retry_after: Option<String>,
}

async fn send(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Resp {
    let mut req = s
        .http
        .request(method.parse().unwrap(), format!("{}{path}", s.url))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let existing = resp.headers().get("x-rampart-existing-action").is_some();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    Resp {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        existing,
        retry_after,
    }
}

async fn post(s: &Server, token: &str, path: &str, body: Value) -> Resp {
    send(s, "POST", path, token, Some(&body), None).await
}

/// POSTs an action and expects 201; returns the action.
async fn act(s: &Server, token: &str, machine: &str, action: &str, body: Value) -> Value {
    let r = post(s, token, &format!("/api/machines/{machine}/{action}"), body).await;
    assert_eq!(r.status, 201, "{action}: {}", r.body);
    r.body
}

/// Puts files of these names into the live response library (sessions may name no others).
async fn library(s: &Server, names: &[&str]) {
    let manage = s.token_with("Library.Manage").await;
    for name in names {
        let (st, v) = s
            .upload_library_file(&manage, name, b"#!/bin/sh\necho ok\n", &[])
            .await;
        assert_eq!(st, 200, "{v}");
    }
}

async fn get_action(s: &Server, token: &str, id: &str) -> Value {
    let (st, body) = s
        .get(&format!("/api/machineactions/{id}"), Some(token))
        .await;
    assert_eq!(st, 200, "{body}");
    body
}

fn tenant(s: &Server) -> TenantId {
    s.tenant.parse().unwrap()
}

/// Reports a machine of a given OS platform.
async fn seed_machine_on(b: &Backend, tenant: &str, name: &str, os: &str) -> Machine {
    let store = b.store().await;
    let id = format!("{}00000000", uuid::Uuid::new_v4().simple());
    let m = Machine::new(id, name.into(), os.into(), time::OffsetDateTime::now_utc());
    store
        .report_machine(
            &AuditContext::system("test-seed"),
            tenant.parse().unwrap(),
            &m,
        )
        .await
        .unwrap()
}

fn get_file(path: &str) -> CommandInput {
    CommandInput {
        command_type: "GetFile".into(),
        params: vec![CommandParam {
            key: "Path".into(),
            value: path.into(),
        }],
    }
}

fn done(index: u32, uri: Option<&str>) -> CommandOutcome {
    CommandOutcome {
        index,
        status: CommandStatus::Completed,
        start_time: Some(time::OffsetDateTime::now_utc()),
        end_time: Some(time::OffsetDateTime::now_utc()),
        errors: vec![],
        result_uri: uri.map(str::to_owned),
    }
}

fn succeeded(package_uri: Option<&str>, commands: Vec<CommandOutcome>) -> ActionOutcome {
    ActionOutcome::Succeeded {
        package_uri: package_uri.map(str::to_owned),
        live_evidence: None,
        commands,
    }
}

/// Submits through the store, as a seed.
async fn submit(
    store: &SqlStore,
    tenant: TenantId,
    machine_id: &str,
    action: RequestedAction,
) -> MachineAction {
    let request = ActionRequest::new(action, Some("seeded".into()), None).unwrap();
    store
        .submit_machine_action(
            &AuditContext::system("test-seed"),
            tenant,
            &ActionSubmission {
                machine_id: machine_id.into(),
                request,
                requestor: "seed".into(),
                request_source: None,
                idempotency: None,
            },
        )
        .await
        .unwrap()
        .action
}

/// A succeeded investigation package collection and a succeeded live response whose command 0
/// (a GetFile) has a result, on `machine_id`: for the route walk.
pub async fn seed_finished_actions(
    b: &Backend,
    tenant: &str,
    machine_id: &str,
) -> (String, String) {
    let store = b.store().await;
    let t: TenantId = tenant.parse().unwrap();
    let collect = submit(
        &store,
        t,
        machine_id,
        RequestedAction::CollectInvestigationPackage,
    )
    .await;
    let claimed = store
        .claim_next_action(t, machine_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, collect.id);
    store
        .complete_action(
            t,
            &collect.id,
            succeeded(Some("https://files.example/package.zip"), vec![]),
        )
        .await
        .unwrap()
        .unwrap();
    let lr = submit(
        &store,
        t,
        machine_id,
        RequestedAction::LiveResponse {
            commands: parse_commands(&[get_file("/etc/hosts")]).unwrap(),
        },
    )
    .await;
    store
        .claim_next_action(t, machine_id)
        .await
        .unwrap()
        .unwrap();
    store
        .complete_action(
            t,
            &lr.id,
            succeeded(None, vec![done(0, Some("https://files.example/hosts"))]),
        )
        .await
        .unwrap()
        .unwrap();
    (collect.id, lr.id)
}

#[tokio::test]
async fn every_action_is_queued_with_its_mde_shape() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "web-1.corp.example").await;
        let app = b.create_app(None, ROLES);
        let token = s.token(&app).await;
        library(&s, &["triage.sh", "a.sh"]).await;

        let iso = act(
            &s,
            &token,
            &m.id,
            "isolate",
            json!({"Comment": "contain", "IsolationType": "Selective", "ExternalID": "case-7"}),
        )
        .await;
        assert_eq!(iso["type"], "Isolate", "{}", b.name);
        assert_eq!(iso["scope"], "Selective");
        assert_eq!(iso["status"], "Pending");
        assert_eq!(iso["requestor"], app.client_id.as_str());
        assert_eq!(iso["requestSource"], "test-app");
        assert_eq!(iso["requestorComment"], "contain");
        assert_eq!(iso["externalID"], "case-7");
        assert_eq!(iso["machineId"], m.id.as_str());
        assert_eq!(iso["computerDnsName"], "web-1.corp.example");
        assert_eq!(iso["title"], "Isolate device (Selective)");
        assert_eq!(iso["errorHResult"], 0);
        assert!(iso["cancellationRequestor"].is_null());
        assert!(iso["relatedFileInfo"].is_null());
        assert_eq!(iso["commands"], json!([]));
        assert_eq!(iso["creationDateTimeUtc"], iso["lastUpdateDateTimeUtc"]);
        assert!(
            iso["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("/api/$metadata#MachineActions/$entity")
        );
        let id = iso["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok());
        // GET by id (any case), and by the machine's computer name.
        let got = get_action(&s, &token, &id.to_uppercase()).await;
        assert_eq!(got["id"], id);
        assert_eq!(got["@odata.context"], iso["@odata.context"]);

        let restrict = act(
            &s,
            &token,
            "web-1",
            "restrictCodeExecution",
            json!({"Comment": "lock down"}),
        )
        .await;
        assert_eq!(restrict["type"], "RestrictCodeExecution");
        assert!(restrict["scope"].is_null());
        let scan = act(
            &s,
            &token,
            &m.id,
            "runAntiVirusScan",
            json!({"Comment": "scan", "ScanType": "quick"}),
        )
        .await;
        assert_eq!(
            (scan["type"].as_str(), scan["scope"].as_str()),
            (Some("RunAntiVirusScan"), Some("Quick"))
        );
        let collect = act(
            &s,
            &token,
            &m.id,
            "collectInvestigationPackage",
            json!({"Comment": "collect"}),
        )
        .await;
        assert_eq!(collect["type"], "CollectInvestigationPackage");
        let q = act(
            &s,
            &token,
            &m.id,
            "StopAndQuarantineFile",
            json!({"Comment": "kill it", "Sha1": SHA1.to_uppercase()}),
        )
        .await;
        assert_eq!(q["type"], "StopAndQuarantineFile");
        assert_eq!(
            q["relatedFileInfo"],
            json!({"fileIdentifier": SHA1, "fileIdentifierType": "Sha1"})
        );
        let lr = act(
            &s,
            &token,
            &m.id,
            "runliveresponse",
            json!({"Comment": "triage", "Commands": [
                {"type": "PutFile", "params": [{"key": "FileName", "value": "triage.sh"}]},
                {"type": "RunScript", "params": [{"key": "ScriptName", "value": "triage.sh"}, {"key": "Args", "value": "--all"}]},
                {"type": "GetFile", "params": [{"key": "Path", "value": "/var/log/auth.log"}]}
            ]}),
        )
        .await;
        assert_eq!(lr["type"], "LiveResponse");
        let cmds = lr["commands"].as_array().unwrap();
        assert_eq!(cmds.len(), 3);
        for (i, c) in cmds.iter().enumerate() {
            assert_eq!(c["index"], i);
            assert_eq!(c["commandStatus"], "Created");
            assert_eq!(c["errors"], json!([]));
            assert!(c["startTime"].is_null() && c["endTime"].is_null());
        }
        assert_eq!(
            cmds[1]["command"],
            json!({"type": "RunScript", "params": [{"key": "ScriptName", "value": "triage.sh"}, {"key": "Args", "value": "--all"}]})
        );
        let off = act(&s, &token, &m.id, "offboard", json!({"Comment": "retire"})).await;
        assert_eq!(off["type"], "Offboard");

        // The state lanes: unisolate supersedes the pending isolate, unrestrict the restrict.
        let un = act(
            &s,
            &token,
            &m.id,
            "unisolate",
            json!({"Comment": "release"}),
        )
        .await;
        assert_eq!(un["type"], "Unisolate");
        let old = get_action(&s, &token, id).await;
        assert_eq!(old["status"], "Cancelled");
        assert_eq!(old["cancellationRequestor"], app.client_id.as_str());
        assert!(
            old["cancellationComment"]
                .as_str()
                .unwrap()
                .contains(un["id"].as_str().unwrap())
        );
        assert!(old["cancellationDateTimeUtc"].is_string());
        let unr = act(
            &s,
            &token,
            &m.id,
            "unrestrictCodeExecution",
            json!({"Comment": "lift"}),
        )
        .await;
        assert_eq!(unr["type"], "UnrestrictCodeExecution");
        assert_eq!(
            get_action(&s, &token, restrict["id"].as_str().unwrap()).await["status"],
            "Cancelled"
        );

        // Listing with OData on the filterable properties of §2.4.
        let list = |q: &str| format!("/api/machineactions?{q}");
        let (st, page) = s.get(&list("$count=true"), Some(&token)).await;
        assert_eq!(st, 200, "{page}");
        assert_eq!(page["@odata.count"], 9);
        assert!(
            page["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#MachineActions")
        );
        let ids = |page: &Value| -> BTreeSet<String> {
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let (_, page) = s
            .get(&list("$filter=status eq 'Cancelled'"), Some(&token))
            .await;
        assert_eq!(
            ids(&page),
            BTreeSet::from([id.to_owned(), restrict["id"].as_str().unwrap().to_owned()])
        );
        let (_, page) = s
            .get(
                &list("$filter=type eq 'isolate' or type eq 'Unisolate'"),
                Some(&token),
            )
            .await;
        assert_eq!(page["value"].as_array().unwrap().len(), 2);
        let (_, page) = s
            .get(
                &list(&format!(
                    "$filter=machineId eq '{}' and requestor eq '{}' and creationDateTimeUtc ge 2020-01-01T00:00:00Z&$orderby=creationDateTimeUtc desc",
                    m.id, app.client_id
                )),
                Some(&token),
            )
            .await;
        assert_eq!(page["value"].as_array().unwrap().len(), 9, "{page}");
        let (_, page) = s
            .get(
                &list(&format!("$filter=id eq '{}'", lr["id"].as_str().unwrap())),
                Some(&token),
            )
            .await;
        assert_eq!(page["value"][0]["commands"].as_array().unwrap().len(), 3);
        let (_, page) = s.get(&list("$top=4"), Some(&token)).await;
        assert_eq!(page["value"].as_array().unwrap().len(), 4);
        assert!(page["@odata.nextLink"].is_string());
        let (st, e) = s.get(&list("$filter=title eq 'x'"), Some(&token)).await;
        assert_eq!(st, 400);
        assert_mde_error(&e, "ODataError");
        let (st, e) = s.get(&list("$filter=status eq 'Done'"), Some(&token)).await;
        assert_eq!(st, 400);
        assert_mde_error(&e, "ODataError");

        // Unknown action: 404.
        let (st, e) = s
            .get(
                "/api/machineactions/00000000-0000-0000-0000-000000000000",
                Some(&token),
            )
            .await;
        assert_eq!(st, 404);
        assert!(assert_mde_error(&e, "ResourceNotFound").contains("was not found"));

        // Another tenant sees none of it.
        let other = b.create_tenant("Other");
        let foreign = s.token(&b.create_app(Some(&other), ROLES)).await;
        let (st, page) = s.get("/api/machineactions", Some(&foreign)).await;
        assert_eq!((st, page["value"].as_array().unwrap().len()), (200, 0));
        let (st, _) = s
            .get(&format!("/api/machineactions/{id}"), Some(&foreign))
            .await;
        assert_eq!(st, 404);
        let r = post(
            &s,
            &foreign,
            &format!("/api/machines/{}/isolate", m.id),
            json!({"Comment": "x"}),
        )
        .await;
        assert_eq!(r.status, 404);
        assert_mde_error(&r.body, "ResourceNotFound");
    }
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "db-1.corp.example").await;
        let mac = seed_machine_on(&b, &s.tenant, "mac-1.corp.example", "macOS").await;
        let phone = seed_machine_on(&b, &s.tenant, "phone-1", "iOS").await;
        let token = s.token_with(ROLES).await;
        let path = |machine: &str, action: &str| format!("/api/machines/{machine}/{action}");
        let expect = |r: Resp, status: u16, code: &str, label: &str| {
            assert_eq!(r.status, status, "{}: {label}: {}", b.name, r.body);
            assert_mde_error(&r.body, code)
        };

        // Comment is required everywhere.
        for action in [
            "isolate",
            "unisolate",
            "restrictCodeExecution",
            "unrestrictCodeExecution",
            "runAntiVirusScan",
            "collectInvestigationPackage",
            "StopAndQuarantineFile",
            "offboard",
            "runliveresponse",
        ] {
            let body = json!({"ScanType": "Quick", "Sha1": SHA1, "Commands": [
                {"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]}]});
            let msg = expect(
                post(&s, &token, &path(&m.id, action), body).await,
                400,
                "MissingRequiredParameter",
                action,
            );
            assert!(msg.contains("Comment"), "{msg}");
            // Keys are case-sensitive, as in MDE.
            let r = post(&s, &token, &path(&m.id, action), json!({"comment": "x"})).await;
            expect(r, 400, "MissingRequiredParameter", action);
        }
        let msg = expect(
            post(
                &s,
                &token,
                &path(&m.id, "isolate"),
                json!({"Comment": "x", "IsolationType": "Partial"}),
            )
            .await,
            400,
            "InvalidRequestBody",
            "wrong isolation type",
        );
        assert!(
            msg.contains("IsolationType") && msg.contains("Selective"),
            "{msg}"
        );
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "isolate"),
                json!({"Comment": "x", "IsolationType": 3}),
            )
            .await,
            400,
            "InvalidRequestBody",
            "isolation type of the wrong JSON type",
        );
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "isolate"),
                json!({"Comment": "x", "IsolationType": "UnManagedDevice"}),
            )
            .await,
            400,
            "InvalidInput",
            "unmanaged device",
        );
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "runAntiVirusScan"),
                json!({"Comment": "x"}),
            )
            .await,
            400,
            "MissingRequiredParameter",
            "no scan type",
        );
        let msg = expect(
            post(
                &s,
                &token,
                &path(&m.id, "runAntiVirusScan"),
                json!({"Comment": "x", "ScanType": "Deep"}),
            )
            .await,
            400,
            "InvalidRequestBody",
            "wrong scan type",
        );
        assert!(msg.contains("ScanType"), "{msg}");
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "StopAndQuarantineFile"),
                json!({"Comment": "x"}),
            )
            .await,
            400,
            "MissingRequiredParameter",
            "no sha1",
        );
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "StopAndQuarantineFile"),
                json!({"Comment": "x", "Sha1": "abc"}),
            )
            .await,
            400,
            "InvalidHashValue",
            "short sha1",
        );
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "offboard"),
                json!({"Comment": "x".repeat(4001)}),
            )
            .await,
            400,
            "InvalidInput",
            "long comment",
        );
        // Live response command rules.
        let lr = |commands: Value| json!({"Comment": "x", "Commands": commands});
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "runliveresponse"),
                json!({"Comment": "x"}),
            )
            .await,
            400,
            "MissingRequiredParameter",
            "no commands",
        );
        expect(
            post(&s, &token, &path(&m.id, "runliveresponse"), lr(json!([]))).await,
            400,
            "MissingRequiredParameter",
            "empty commands",
        );
        let msg = expect(
            post(
                &s,
                &token,
                &path(&m.id, "runliveresponse"),
                lr(json!([{"type": "Shell", "params": []}])),
            )
            .await,
            400,
            "InvalidRequestBody",
            "unknown command",
        );
        assert!(msg.contains("Commands[0].type"), "{msg}");
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "runliveresponse"),
                lr(json!([{"type": "RunScript", "params": []}])),
            )
            .await,
            400,
            "MissingRequiredParameter",
            "no script name",
        );
        let msg = expect(
            post(
                &s,
                &token,
                &path(&m.id, "runliveresponse"),
                lr(json!([
                {"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]},
                {"type": "RunScript", "params": [{"key": "ScriptName", "value": "a.sh"}]}])),
            )
            .await,
            400,
            "InvalidInput",
            "order",
        );
        assert!(
            msg.contains("PutFile, then RunScript, then GetFile"),
            "{msg}"
        );
        let many: Vec<Value> = (0..21)
            .map(|_| json!({"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]}))
            .collect();
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "runliveresponse"),
                lr(Value::Array(many)),
            )
            .await,
            400,
            "MaximumBatchSizeExceeded",
            "too many commands",
        );
        expect(
            post(
                &s,
                &token,
                &path(&m.id, "runliveresponse"),
                lr(json!([{"type": "GetFile", "params": [{"key": "Path"}]}])),
            )
            .await,
            400,
            "InvalidRequestBody",
            "param without value",
        );
        // Malformed JSON, and a bad Idempotency-Key.
        let r = s
            .http
            .post(format!("{}{}", s.url, path(&m.id, "isolate")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{\"Comment\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_mde_error(&r.json().await.unwrap(), "InvalidRequestBody");
        let long_key = "k".repeat(256);
        let r = send(
            &s,
            "POST",
            &path(&m.id, "isolate"),
            &token,
            Some(&json!({"Comment": "x"})),
            Some(&long_key),
        )
        .await;
        expect(r, 400, "InvalidInput", "long idempotency key");
        // Unknown machine.
        let msg = expect(
            post(
                &s,
                &token,
                &path(&"f".repeat(40), "isolate"),
                json!({"Comment": "x"}),
            )
            .await,
            404,
            "ResourceNotFound",
            "unknown machine",
        );
        assert!(msg.contains(&"f".repeat(40)), "{msg}");
        expect(
            post(
                &s,
                &token,
                &path("no-such-host", "offboard"),
                json!({"Comment": "x"}),
            )
            .await,
            404,
            "ResourceNotFound",
            "unknown machine name",
        );
        // Actions the machine's OS cannot run.
        for (machine, action, body) in [
            (&mac.id, "offboard", json!({"Comment": "x"})),
            (&mac.id, "isolate", json!({"Comment": "x"})),
            (&mac.id, "unisolate", json!({"Comment": "x"})),
            (&mac.id, "restrictCodeExecution", json!({"Comment": "x"})),
            (
                &mac.id,
                "StopAndQuarantineFile",
                json!({"Comment": "x", "Sha1": SHA1}),
            ),
            (
                &phone.id,
                "runAntiVirusScan",
                json!({"Comment": "x", "ScanType": "Full"}),
            ),
            (
                &phone.id,
                "collectInvestigationPackage",
                json!({"Comment": "x"}),
            ),
        ] {
            let msg = expect(
                post(&s, &token, &path(machine, action), body).await,
                400,
                "OsPlatformNotSupported",
                action,
            );
            assert!(msg.contains("not supported on OS platform"), "{msg}");
        }

        // Nothing of the above was written: no action, no audit entry.
        let (_, page) = s.get("/api/machineactions?$count=true", Some(&token)).await;
        assert_eq!(page["@odata.count"], 0, "{}: {page}", b.name);
        let (_, audit) = s
            .get(
                "/api/audit?$filter=entityType eq 'MachineAction'&$count=true",
                Some(&token),
            )
            .await;
        assert_eq!(audit["@odata.count"], 0, "{audit}");

        // What macOS does support is accepted.
        act(
            &s,
            &token,
            &mac.id,
            "runAntiVirusScan",
            json!({"Comment": "x", "ScanType": "Full"}),
        )
        .await;
        act(
            &s,
            &token,
            &mac.id,
            "runliveresponse",
            json!({"Comment": "x", "Commands": [
            {"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]}]}),
        )
        .await;
    }
}

#[tokio::test]
async fn duplicates_return_the_open_action_and_conflicts_are_mde_errors() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "app-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let store = b.store().await;
        let t = tenant(&s);
        let path = |action: &str| format!("/api/machines/{}/{action}", m.id);

        // Isolate twice: one action, answered twice with 201.
        let first = post(
            &s,
            &token,
            &path("isolate"),
            json!({"Comment": "a", "IsolationType": "Full"}),
        )
        .await;
        assert_eq!((first.status, first.existing), (201, false));
        let again = post(&s, &token, &path("isolate"), json!({"Comment": "b"})).await;
        assert_eq!(
            (again.status, again.existing),
            (201, true),
            "{}",
            again.body
        );
        assert_eq!(again.body["id"], first.body["id"]);
        assert_eq!(again.body["requestorComment"], "a");
        // Still the same once the agent runs it.
        let running = store.claim_next_action(t, &m.id).await.unwrap().unwrap();
        assert_eq!(running.id, first.body["id"].as_str().unwrap());
        assert_eq!(running.status(), ActionStatus::InProgress);
        let again = post(
            &s,
            &token,
            &path("isolate"),
            json!({"Comment": "c", "IsolationType": "Full"}),
        )
        .await;
        assert!(again.existing);
        assert_eq!(again.body["id"], first.body["id"]);
        assert_eq!(again.body["status"], "InProgress");
        // Selective while Full runs: queued behind it.
        let sel = post(
            &s,
            &token,
            &path("isolate"),
            json!({"Comment": "d", "IsolationType": "Selective"}),
        )
        .await;
        assert_eq!((sel.status, sel.existing), (201, false));
        assert_eq!(sel.body["status"], "Pending");

        // Scans: the same type is the open one; the other type is MDE's 400.
        let quick = act(
            &s,
            &token,
            &m.id,
            "runAntiVirusScan",
            json!({"Comment": "x", "ScanType": "Quick"}),
        )
        .await;
        let r = post(
            &s,
            &token,
            &path("runAntiVirusScan"),
            json!({"Comment": "y", "ScanType": "Quick"}),
        )
        .await;
        assert_eq!((r.status, r.existing), (201, true));
        assert_eq!(r.body["id"], quick["id"]);
        let r = post(
            &s,
            &token,
            &path("runAntiVirusScan"),
            json!({"Comment": "y", "ScanType": "Full"}),
        )
        .await;
        assert_eq!(r.status, 400);
        assert!(
            assert_mde_error(&r.body, "BadRequest").starts_with("Action is already in progress")
        );
        // Collections, quarantines (per file) and offboarding: the open one.
        let c = act(
            &s,
            &token,
            &m.id,
            "collectInvestigationPackage",
            json!({"Comment": "x"}),
        )
        .await;
        let r = post(
            &s,
            &token,
            &path("collectInvestigationPackage"),
            json!({"Comment": "x"}),
        )
        .await;
        assert_eq!((r.existing, &r.body["id"]), (true, &c["id"]));
        let q = act(
            &s,
            &token,
            &m.id,
            "StopAndQuarantineFile",
            json!({"Comment": "x", "Sha1": SHA1}),
        )
        .await;
        let r = post(
            &s,
            &token,
            &path("StopAndQuarantineFile"),
            json!({"Comment": "x", "Sha1": SHA1.to_uppercase()}),
        )
        .await;
        assert_eq!((r.existing, &r.body["id"]), (true, &q["id"]));
        let other_file = "a".repeat(40);
        let r = post(
            &s,
            &token,
            &path("StopAndQuarantineFile"),
            json!({"Comment": "x", "Sha1": other_file}),
        )
        .await;
        assert_eq!((r.status, r.existing), (201, false));
        // Live response: one session per device.
        let lr = json!({"Comment": "x", "Commands": [{"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]}]});
        act(&s, &token, &m.id, "runliveresponse", lr.clone()).await;
        let r = post(&s, &token, &path("runliveresponse"), lr.clone()).await;
        assert_eq!(r.status, 400);
        assert_mde_error(&r.body, "ActiveRequestAlreadyExists");

        // A finished action no longer answers duplicates.
        let (st, _) = s
            .get(
                &format!("/api/machineactions/{}", c["id"].as_str().unwrap()),
                Some(&token),
            )
            .await;
        assert_eq!(st, 200);
        let cancelled = post(
            &s,
            &token,
            &format!("/api/machineactions/{}/cancel", c["id"].as_str().unwrap()),
            json!({"Comment": "not needed"}),
        )
        .await;
        assert_eq!(cancelled.status, 200);
        let r = post(
            &s,
            &token,
            &path("collectInvestigationPackage"),
            json!({"Comment": "x"}),
        )
        .await;
        assert_eq!((r.status, r.existing), (201, false));
        assert_ne!(r.body["id"], c["id"]);
    }
}

#[tokio::test]
async fn idempotency_keys_replay_per_app_and_refuse_reuse() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m1 = seed_machine(&b, &s.tenant, "k-1.corp.example").await;
        let m2 = seed_machine(&b, &s.tenant, "k-2.corp.example").await;
        let token = s.token_with(ROLES).await;
        let other_app = s.token_with(ROLES).await;
        let iso = |m: &str| format!("/api/machines/{m}/isolate");
        let body = json!({"Comment": "contain", "IsolationType": "Full"});

        let a = send(&s, "POST", &iso(&m1.id), &token, Some(&body), Some("key-1")).await;
        assert_eq!((a.status, a.existing), (201, false));
        // Superseded in between: the key still answers with its action, now cancelled.
        act(
            &s,
            &token,
            &m1.id,
            "unisolate",
            json!({"Comment": "release"}),
        )
        .await;
        let r = send(&s, "POST", &iso(&m1.id), &token, Some(&body), Some("key-1")).await;
        assert_eq!((r.status, r.existing), (201, true), "{}", r.body);
        assert_eq!(r.body["id"], a.body["id"]);
        assert_eq!(r.body["status"], "Cancelled");
        // The same key with another request: 409.
        for (path, other) in [
            (
                iso(&m1.id),
                json!({"Comment": "contain", "IsolationType": "Selective"}),
            ),
            (
                iso(&m1.id),
                json!({"Comment": "other words", "IsolationType": "Full"}),
            ),
            (iso(&m2.id), body.clone()),
            (
                format!("/api/machines/{}/unisolate", m1.id),
                json!({"Comment": "contain"}),
            ),
        ] {
            let r = send(&s, "POST", &path, &token, Some(&other), Some("key-1")).await;
            assert_eq!(r.status, 409, "{}: {path} {other}: {}", b.name, r.body);
            assert!(assert_mde_error(&r.body, "Conflict").contains("key-1"));
        }
        // Keys belong to an app: another app's key-1 is its own.
        let r = send(
            &s,
            "POST",
            &iso(&m2.id),
            &other_app,
            Some(&body),
            Some("key-1"),
        )
        .await;
        assert_eq!((r.status, r.existing), (201, false), "{}", r.body);
        // A replayed live response gets its session back instead of ActiveRequestAlreadyExists.
        let lr = json!({"Comment": "x", "Commands": [{"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]}]});
        let path = format!("/api/machines/{}/runliveresponse", m1.id);
        let first = send(&s, "POST", &path, &token, Some(&lr), Some("lr-1")).await;
        let replay = send(&s, "POST", &path, &token, Some(&lr), Some("lr-1")).await;
        assert_eq!((replay.status, replay.existing), (201, true));
        assert_eq!(replay.body["id"], first.body["id"]);
        let fresh = send(&s, "POST", &path, &token, Some(&lr), Some("lr-2")).await;
        assert_eq!(fresh.status, 400);
        assert_mde_error(&fresh.body, "ActiveRequestAlreadyExists");
        // A refused request does not consume its key.
        let r = send(
            &s,
            "POST",
            &iso(&"e".repeat(40)),
            &token,
            Some(&body),
            Some("key-9"),
        )
        .await;
        assert_eq!(r.status, 404);
        let r = send(&s, "POST", &iso(&m2.id), &token, Some(&body), Some("key-9")).await;
        assert_eq!(r.status, 201, "{}", r.body);

        // The same key for two machines at once: one wins, the other is a conflict.
        let mut set = tokio::task::JoinSet::new();
        for m in [m1.id.clone(), m2.id.clone()] {
            let (http, url, token) = (s.http.clone(), s.url.clone(), token.clone());
            set.spawn(async move {
                http.post(format!(
                    "{url}/api/machines/{m}/collectInvestigationPackage"
                ))
                .bearer_auth(token)
                .header("idempotency-key", "race")
                .json(&json!({"Comment": "c"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
            });
        }
        let mut statuses: Vec<u16> = set.join_all().await;
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{}", b.name);
    }
}

#[tokio::test]
async fn concurrent_requests_never_make_a_second_action() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "busy-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let fire = |n: usize, action: &'static str, body: Value| {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..n {
                let (http, url, token, body, id) = (
                    s.http.clone(),
                    s.url.clone(),
                    token.clone(),
                    body.clone(),
                    m.id.clone(),
                );
                set.spawn(async move {
                    let r = http
                        .post(format!("{url}/api/machines/{id}/{action}"))
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let st = r.status().as_u16();
                    (st, r.json::<Value>().await.unwrap())
                });
            }
            set
        };
        let results = fire(
            16,
            "isolate",
            json!({"Comment": "go", "IsolationType": "Full"}),
        )
        .join_all()
        .await;
        let ids: BTreeSet<String> = results
            .iter()
            .map(|(st, v)| {
                assert_eq!(*st, 201, "{}: {v}", b.name);
                v["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "{}: concurrent isolates made {ids:?}", b.name);
        let results = fire(
            12,
            "runliveresponse",
            json!({"Comment": "x", "Commands": [
            {"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]}]}),
        )
        .join_all()
        .await;
        let created = results.iter().filter(|(st, _)| *st == 201).count();
        assert_eq!(created, 1, "{}: {results:?}", b.name);
        assert!(
            results
                .iter()
                .filter(|(st, _)| *st != 201)
                .all(|(st, v)| *st == 400 && v["error"]["code"] == "ActiveRequestAlreadyExists")
        );

        // A burst of isolates and unisolates: at most one pending in the lane, and the last
        // accepted request decides.
        let mut set = fire(
            8,
            "isolate",
            json!({"Comment": "i", "IsolationType": "Selective"}),
        );
        let mut un = fire(8, "unisolate", json!({"Comment": "u"}));
        while let Some(r) = un.join_next().await {
            set.spawn(async move { r.unwrap() });
        }
        for (st, v) in set.join_all().await {
            assert_eq!(st, 201, "{v}");
        }
        let (_, page) = s
            .get(
                &format!("/api/machineactions?$filter=machineId eq '{}' and (type eq 'Isolate' or type eq 'Unisolate')", m.id),
                Some(&token),
            )
            .await;
        let lane: Vec<&Value> = page["value"].as_array().unwrap().iter().collect();
        let pending = lane.iter().filter(|a| a["status"] == "Pending").count();
        assert_eq!(pending, 1, "{}: {page}", b.name);
        let last = lane.last().unwrap();
        assert_eq!(last["status"], "Pending");
        let store = b.store().await;
        let state = drain_isolation(&store, tenant(&s), &m.id, Device::default()).await;
        assert_eq!(state.isolation, desired(last), "{}", b.name);
    }
}

/// The isolation state of a simulated device, changed only by the actions its agent runs.
#[derive(Clone, Debug, Default, PartialEq)]
struct Device {
    isolation: Option<String>,
    running: Option<MachineAction>,
}

fn desired(action: &Value) -> Option<String> {
    match action["type"].as_str().unwrap() {
        "Isolate" => Some(action["scope"].as_str().unwrap().to_owned()),
        _ => None,
    }
}

/// A plausible success report for any action.
fn success_of(a: &MachineAction) -> ActionOutcome {
    let package = (a.action_type
        == rampart_core::machine_action::ActionType::CollectInvestigationPackage)
        .then_some("https://files.example/pkg.zip");
    let commands = a.commands().iter().map(|c| done(c.index, None)).collect();
    succeeded(package, commands)
}

/// One agent step: finish the running action (applying it), or claim the next one.
async fn agent_step(store: &SqlStore, t: TenantId, machine: &str, d: &mut Device) -> bool {
    if let Some(a) = d.running.take() {
        let done = store
            .complete_action(t, &a.id, success_of(&a))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status(), ActionStatus::Succeeded);
        d.isolation = desired(&serde_json::to_value(&a).unwrap());
        return true;
    }
    match store.claim_next_action(t, machine).await.unwrap() {
        Some(a) => {
            d.running = Some(a);
            true
        }
        None => false,
    }
}

async fn drain_isolation(store: &SqlStore, t: TenantId, machine: &str, mut d: Device) -> Device {
    while agent_step(store, t, machine, &mut d).await {}
    d
}

#[tokio::test]
async fn the_device_ends_in_the_state_of_the_last_accepted_request() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "flip-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let store = b.store().await;
        let t = tenant(&s);

        // MDE's bug (reference §12): isolate, isolate, unisolate left devices isolated.
        let i1 = act(&s, &token, &m.id, "isolate", json!({"Comment": "1"})).await;
        let i2 = act(&s, &token, &m.id, "isolate", json!({"Comment": "2"})).await;
        assert_eq!(i1["id"], i2["id"]);
        let u = act(&s, &token, &m.id, "unisolate", json!({"Comment": "3"})).await;
        let d = drain_isolation(&store, t, &m.id, Device::default()).await;
        assert_eq!(d.isolation, None);
        assert_eq!(
            get_action(&s, &token, i1["id"].as_str().unwrap()).await["status"],
            "Cancelled"
        );
        assert_eq!(
            get_action(&s, &token, u["id"].as_str().unwrap()).await["status"],
            "Succeeded"
        );

        // Random interleavings of requests and agent steps (a fixed seed per backend).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut d = Device::default();
        for round in 0..6 {
            let mut last = None;
            for _ in 0..12 {
                match next() % 5 {
                    0 => {
                        last = Some(
                            act(
                                &s,
                                &token,
                                &m.id,
                                "isolate",
                                json!({"Comment": "f", "IsolationType": "Full"}),
                            )
                            .await,
                        )
                    }
                    1 => {
                        last = Some(
                            act(
                                &s,
                                &token,
                                &m.id,
                                "isolate",
                                json!({"Comment": "s", "IsolationType": "Selective"}),
                            )
                            .await,
                        )
                    }
                    2 => {
                        last =
                            Some(act(&s, &token, &m.id, "unisolate", json!({"Comment": "u"})).await)
                    }
                    _ => {
                        agent_step(&store, t, &m.id, &mut d).await;
                    }
                }
                // A lane never holds two pending actions.
                let (_, page) = s
                    .get(&format!("/api/machineactions?$filter=machineId eq '{}' and status eq 'Pending'&$count=true", m.id), Some(&token))
                    .await;
                assert!(page["@odata.count"].as_i64().unwrap() <= 1, "{page}");
            }
            d = drain_isolation(&store, t, &m.id, d).await;
            if let Some(last) = last {
                assert_eq!(d.isolation, desired(&last), "{}: round {round}", b.name);
            }
        }
    }
}

#[tokio::test]
async fn the_agent_claims_in_order_and_completes_with_results() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "agent-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let store = b.store().await;
        let t = tenant(&s);
        library(&s, &["collect.sh"]).await;

        assert!(store.claim_next_action(t, &m.id).await.unwrap().is_none());
        let collect = act(
            &s,
            &token,
            &m.id,
            "collectInvestigationPackage",
            json!({"Comment": "pkg"}),
        )
        .await;
        let cid = collect["id"].as_str().unwrap();
        let pkg = format!("/api/machineactions/{cid}/GetPackageUri");
        let (st, e) = s.get(&pkg, Some(&token)).await;
        assert_eq!(st, 404);
        assert!(assert_mde_error(&e, "ResourceNotFound").contains("Pending"));
        // Completing what was not claimed is refused.
        let err = store
            .complete_action(t, cid, succeeded(Some("https://x/p.zip"), vec![]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, rampart_store::StoreError::Rejected(ref r) if r.code == rampart_core::ErrorCode::BadRequest),
            "{err}"
        );

        let iso = act(&s, &token, &m.id, "isolate", json!({"Comment": "iso"})).await;
        let un = act(&s, &token, &m.id, "unisolate", json!({"Comment": "un"})).await;
        assert_eq!(
            get_action(&s, &token, iso["id"].as_str().unwrap()).await["status"],
            "Cancelled"
        );
        // Oldest first: the collection, then the unisolate; the cancelled isolate never.
        let first = store.claim_next_action(t, &m.id).await.unwrap().unwrap();
        assert_eq!(first.id, cid);
        let claimed = get_action(&s, &token, cid).await;
        assert_eq!(claimed["status"], "InProgress");
        let (st, _) = s.get(&pkg, Some(&token)).await;
        assert_eq!(st, 404);
        let second = store.claim_next_action(t, &m.id).await.unwrap().unwrap();
        assert_eq!(second.id, un["id"].as_str().unwrap());
        // A lane waits while its action runs: an isolate queued now is not handed out yet.
        let iso2 = act(&s, &token, &m.id, "isolate", json!({"Comment": "again"})).await;
        assert_eq!(iso2["status"], "Pending");
        assert!(store.claim_next_action(t, &m.id).await.unwrap().is_none());
        store
            .complete_action(t, &second.id, succeeded(None, vec![]))
            .await
            .unwrap()
            .unwrap();
        let third = store.claim_next_action(t, &m.id).await.unwrap().unwrap();
        assert_eq!(third.id, iso2["id"].as_str().unwrap());
        // A bad outcome changes nothing; a failure records why.
        assert!(
            store
                .complete_action(t, &third.id, succeeded(Some("https://x"), vec![]))
                .await
                .is_err()
        );
        let failed = store
            .complete_action(
                t,
                &third.id,
                ActionOutcome::Failed {
                    error_hresult: -2147024891,
                    message: "nftables refused the ruleset".into(),
                    commands: vec![],
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.status(), ActionStatus::Failed);
        let v = get_action(&s, &token, &third.id).await;
        assert_eq!(v["status"], "Failed");
        assert_eq!(v["errorHResult"], -2147024891);
        assert_eq!(v["troubleshootInfo"], "nftables refused the ruleset");
        // Twice is refused.
        assert!(
            store
                .complete_action(t, &third.id, succeeded(None, vec![]))
                .await
                .is_err()
        );
        assert!(
            store
                .complete_action(
                    t,
                    "00000000-0000-0000-0000-000000000000",
                    succeeded(None, vec![])
                )
                .await
                .unwrap()
                .is_none()
        );

        // The package appears once the collection succeeded.
        store
            .complete_action(
                t,
                cid,
                succeeded(Some("https://files.example/pkg.zip"), vec![]),
            )
            .await
            .unwrap()
            .unwrap();
        let (st, v) = s.get(&pkg, Some(&token)).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["value"], "https://files.example/pkg.zip");
        assert!(
            v["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("/api/$metadata#Edm.String")
        );
        let (st, e) = s
            .get(
                &format!("/api/machineactions/{}/GetPackageUri", third.id),
                Some(&token),
            )
            .await;
        assert_eq!(st, 404);
        assert!(assert_mde_error(&e, "ResourceNotFound").contains("CollectInvestigationPackage"));
        let (st, _) = s
            .get(
                "/api/machineactions/00000000-0000-0000-0000-000000000000/GetPackageUri",
                Some(&token),
            )
            .await;
        assert_eq!(st, 404);

        // Live response: per-command status and result links.
        let lr_body = json!({"Comment": "triage", "Commands": [
            {"type": "PutFile", "params": [{"key": "FileName", "value": "collect.sh"}]},
            {"type": "RunScript", "params": [{"key": "ScriptName", "value": "collect.sh"}]},
            {"type": "GetFile", "params": [{"key": "Path", "value": "/tmp/out.tgz"}]}]});
        let lr = act(&s, &token, &m.id, "runliveresponse", lr_body.clone()).await;
        let lid = lr["id"].as_str().unwrap().to_owned();
        let link = |i: &str| {
            format!("/api/machineactions/{lid}/GetLiveResponseResultDownloadLink(index={i})")
        };
        let (st, e) = s.get(&link("1"), Some(&token)).await;
        assert_eq!(st, 404);
        assert!(assert_mde_error(&e, "ResourceNotFound").contains("Created"));
        assert_eq!(
            store.claim_next_action(t, &m.id).await.unwrap().unwrap().id,
            lid
        );
        let failed = |i: u32| CommandOutcome {
            status: CommandStatus::Failed,
            errors: vec!["script exited with 2".into()],
            ..done(i, None)
        };
        store
            .complete_action(
                t,
                &lid,
                ActionOutcome::Failed {
                    error_hresult: 0,
                    message: "RunScript failed".into(),
                    commands: vec![done(0, None), failed(1)],
                },
            )
            .await
            .unwrap()
            .unwrap();
        let v = get_action(&s, &token, &lid).await;
        assert_eq!(v["status"], "Failed");
        let statuses: Vec<&str> = v["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["commandStatus"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["Completed", "Failed", "Created"]);
        assert_eq!(v["commands"][1]["errors"], json!(["script exited with 2"]));
        assert!(v["commands"][0]["startTime"].is_string());
        let (st, e) = s.get(&link("1"), Some(&token)).await;
        assert_eq!(st, 404);
        assert!(assert_mde_error(&e, "ResourceNotFound").contains("Failed"));

        // A session that succeeds: links for the RunScript transcript and the file.
        let lr = act(&s, &token, &m.id, "runliveresponse", lr_body).await;
        let lid = lr["id"].as_str().unwrap().to_owned();
        let link = |i: &str| {
            format!("/api/machineactions/{lid}/GetLiveResponseResultDownloadLink(index={i})")
        };
        store.claim_next_action(t, &m.id).await.unwrap().unwrap();
        store
            .complete_action(
                t,
                &lid,
                succeeded(
                    None,
                    vec![
                        done(0, None),
                        done(1, Some("https://files.example/transcript.json")),
                        done(2, Some("https://files.example/out.tgz")),
                    ],
                ),
            )
            .await
            .unwrap()
            .unwrap();
        let (st, v) = s.get(&link("2"), Some(&token)).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["value"], "https://files.example/out.tgz");
        assert!(
            v["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#Edm.String")
        );
        let (_, v) = s.get(&link("1"), Some(&token)).await;
        assert_eq!(v["value"], "https://files.example/transcript.json");
        let (st, e) = s.get(&link("0"), Some(&token)).await;
        assert_eq!(st, 404);
        assert!(assert_mde_error(&e, "ResourceNotFound").contains("PutFile"));
        let (st, _) = s.get(&link("3"), Some(&token)).await;
        assert_eq!(st, 404);
        let (st, e) = s.get(&link("x"), Some(&token)).await;
        assert_eq!(st, 400);
        assert_mde_error(&e, "InvalidInput");
        let (st, _) = s
            .get(
                &format!("/api/machineactions/{lid}/NoSuchFunction()"),
                Some(&token),
            )
            .await;
        assert_eq!(st, 404);
        let (st, _) = s
            .get(
                &format!("/api/machineactions/{cid}/GetLiveResponseResultDownloadLink(index=0)"),
                Some(&token),
            )
            .await;
        assert_eq!(st, 404);

        // Every change is in the audit log, by who made it.
        let (_, audit) = s
            .get(
                &format!("/api/audit?$filter=entityId eq '{cid}'"),
                Some(&token),
            )
            .await;
        let actions: Vec<&str> = audit["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["Create", "Claim", "Succeed"], "{audit}");
        assert_eq!(audit["value"][1]["actor"]["id"], format!("agent:{}", m.id));
        let (_, audit) = s
            .get(
                &format!(
                    "/api/audit?$filter=entityId eq '{}'",
                    iso["id"].as_str().unwrap()
                ),
                Some(&token),
            )
            .await;
        let actions: Vec<&str> = audit["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["Create", "Supersede"], "{audit}");
    }
}

#[tokio::test]
async fn cancel_stops_open_actions_only() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "stop-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let app = b.create_app(None, "Machine.Scan");
        let scan_only = s.token(&app).await;
        let store = b.store().await;
        let t = tenant(&s);
        let cancel = |id: &str| format!("/api/machineactions/{id}/cancel");

        let off = act(&s, &token, &m.id, "offboard", json!({"Comment": "retire"})).await;
        let oid = off["id"].as_str().unwrap();
        let r = post(&s, &scan_only, &cancel(oid), json!({})).await;
        assert_eq!(r.status, 400);
        assert_mde_error(&r.body, "MissingRequiredParameter");
        // Any action permission may cancel (as MDE).
        let r = post(
            &s,
            &scan_only,
            &cancel(oid),
            json!({"Comment": "wrong device"}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], "Cancelled");
        assert_eq!(r.body["cancellationRequestor"], app.client_id.as_str());
        assert_eq!(r.body["cancellationComment"], "wrong device");
        assert!(r.body["cancellationDateTimeUtc"].is_string());
        assert!(
            r.body["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#MachineActions/$entity")
        );
        // Cancelling again answers with it unchanged.
        let again = post(&s, &token, &cancel(oid), json!({"Comment": "again"})).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body["cancellationComment"], "wrong device");
        // A running action may be cancelled; the agent can then no longer complete it.
        let scan = act(
            &s,
            &token,
            &m.id,
            "runAntiVirusScan",
            json!({"Comment": "x", "ScanType": "Full"}),
        )
        .await;
        let sid = scan["id"].as_str().unwrap();
        assert_eq!(
            store.claim_next_action(t, &m.id).await.unwrap().unwrap().id,
            sid
        );
        let r = post(&s, &token, &cancel(sid), json!({"Comment": "enough"})).await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (200, Some("Cancelled"))
        );
        assert!(
            store
                .complete_action(t, sid, succeeded(None, vec![]))
                .await
                .is_err()
        );
        // Finished actions cannot be cancelled.
        let c = act(
            &s,
            &token,
            &m.id,
            "collectInvestigationPackage",
            json!({"Comment": "x"}),
        )
        .await;
        let cid = c["id"].as_str().unwrap();
        store.claim_next_action(t, &m.id).await.unwrap().unwrap();
        store
            .complete_action(t, cid, succeeded(Some("https://x/p.zip"), vec![]))
            .await
            .unwrap();
        let r = post(&s, &token, &cancel(cid), json!({"Comment": "late"})).await;
        assert_eq!(r.status, 400);
        assert!(assert_mde_error(&r.body, "BadRequest").contains("Succeeded"));
        assert_eq!(get_action(&s, &token, cid).await["status"], "Succeeded");
        // Unknown action.
        let r = post(
            &s,
            &token,
            &cancel("00000000-0000-0000-0000-000000000000"),
            json!({"Comment": "x"}),
        )
        .await;
        assert_eq!(r.status, 404);
        assert_mde_error(&r.body, "ResourceNotFound");
        // Reading needs Machine.Read.All; the action permissions do not read.
        let (st, e) = s
            .get(&format!("/api/machineactions/{cid}"), Some(&scan_only))
            .await;
        assert_eq!(st, 403);
        assert_mde_error(&e, "Forbidden");
    }
}

#[tokio::test]
async fn open_actions_time_out() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "late-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let store = b.store().await;
        let t = tenant(&s);
        let timeout = rampart_core::machine_action::DEFAULT_TIMEOUT;

        let isolate = act(&s, &token, &m.id, "isolate", json!({"Comment": "x"})).await;
        let scan = act(
            &s,
            &token,
            &m.id,
            "runAntiVirusScan",
            json!({"Comment": "x", "ScanType": "Quick"}),
        )
        .await;
        let done = act(
            &s,
            &token,
            &m.id,
            "restrictCodeExecution",
            json!({"Comment": "x"}),
        )
        .await;
        for _ in 0..3 {
            let a = store.claim_next_action(t, &m.id).await.unwrap().unwrap();
            if a.id == done["id"].as_str().unwrap() {
                store
                    .complete_action(t, &a.id, succeeded(None, vec![]))
                    .await
                    .unwrap();
            }
        }
        // Waits behind the running isolate.
        let pending = act(&s, &token, &m.id, "unisolate", json!({"Comment": "x"})).await;
        assert_eq!(pending["status"], "Pending");
        let now = time::OffsetDateTime::now_utc();
        // Not yet.
        assert_eq!(
            store
                .expire_machine_actions(now + timeout - time::Duration::minutes(1), timeout)
                .await
                .unwrap(),
            0
        );
        // Past the deadline: the running isolate and scan, and the pending unisolate.
        assert_eq!(
            store
                .expire_machine_actions(now + timeout + time::Duration::seconds(1), timeout)
                .await
                .unwrap(),
            3
        );
        for a in [&isolate, &scan, &pending] {
            assert_eq!(
                get_action(&s, &token, a["id"].as_str().unwrap()).await["status"],
                "TimeOut"
            );
        }
        assert_eq!(
            get_action(&s, &token, done["id"].as_str().unwrap()).await["status"],
            "Succeeded"
        );
        assert_eq!(
            store
                .expire_machine_actions(now + timeout * 2, timeout)
                .await
                .unwrap(),
            0
        );
        let (_, audit) = s
            .get(
                &format!(
                    "/api/audit?$filter=entityId eq '{}'",
                    pending["id"].as_str().unwrap()
                ),
                Some(&token),
            )
            .await;
        let last = audit["value"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (last["action"].as_str(), last["actor"]["id"].as_str()),
            (Some("TimeOut"), Some("action-expiry"))
        );
        // A timed-out action no longer blocks its lane.
        let r = post(
            &s,
            &token,
            &format!("/api/machines/{}/runAntiVirusScan", m.id),
            json!({"Comment": "x", "ScanType": "Full"}),
        )
        .await;
        assert_eq!((r.status, r.existing), (201, false));
        drop(s);

        // The server's maintenance applies the configured time-out (here 1 s) on start.
        let config = dir.path().join(format!("{}-timeout.toml", b.name));
        std::fs::write(&config, "[api]\nmachine_action_timeout_secs = 1\n").unwrap();
        let cfg = config.to_str().unwrap();
        let s = Server::start_opts(&b, &["--config", cfg], &["--no-rate-limits"]);
        let token = s.token_with(ROLES).await;
        let a = act(
            &s,
            &token,
            &m.id,
            "collectInvestigationPackage",
            json!({"Comment": "x"}),
        )
        .await;
        drop(s);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let s = Server::start_opts(&b, &["--config", cfg], &["--no-rate-limits"]);
        let token = s.token_with(ROLES).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let v = get_action(&s, &token, a["id"].as_str().unwrap()).await;
            if v["status"] == "TimeOut" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: not timed out: {v}",
                b.name
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn package_uri_and_live_response_have_mde_rate_limits() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start(&b);
        let m = seed_machine(&b, &s.tenant, "rl-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let (cid, _) = seed_finished_actions(&b, &s.tenant, &m.id).await;
        let pkg = format!("/api/machineactions/{cid}/GetPackageUri");
        for _ in 0..2 {
            let (st, v) = s.get(&pkg, Some(&token)).await;
            assert_eq!(st, 200, "{v}");
        }
        let r = send(&s, "GET", &pkg, &token, None, None).await;
        assert_eq!(
            r.status, 429,
            "{}: GetPackageUri allows 2 calls a minute",
            b.name
        );
        assert_mde_error(&r.body, "TooManyRequests");
        assert!(r.retry_after.is_some());
        // Other routes keep their own budget.
        let (st, _) = s
            .get(&format!("/api/machineactions/{cid}"), Some(&token))
            .await;
        assert_eq!(st, 200);
        // runliveresponse: 10 a minute (the first succeeds, the next nine are refused as a
        // second session, the eleventh is throttled).
        let body = json!({"Comment": "x", "Commands": [{"type": "GetFile", "params": [{"key": "Path", "value": "/etc/hosts"}]}]});
        let mut statuses = Vec::new();
        for _ in 0..11 {
            statuses.push(
                post(
                    &s,
                    &token,
                    &format!("/api/machines/{}/runliveresponse", m.id),
                    body.clone(),
                )
                .await
                .status,
            );
        }
        assert_eq!(statuses[0], 201);
        assert!(statuses[1..10].iter().all(|st| *st == 400), "{statuses:?}");
        assert_eq!(statuses[10], 429);
    }
}

#[tokio::test]
async fn claim_and_complete_are_scoped_by_tenant() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let m = seed_machine(&b, &s.tenant, "t-1.corp.example").await;
        let token = s.token_with(ROLES).await;
        let store = b.store().await;
        let other: TenantId = b.create_tenant("Other").parse().unwrap();
        let a = act(&s, &token, &m.id, "isolate", json!({"Comment": "x"})).await;
        let id = a["id"].as_str().unwrap();
        assert!(
            store
                .claim_next_action(other, &m.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .complete_action(other, id, succeeded(None, vec![]))
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.get_machine_action(other, id).await.unwrap().is_none());
        assert!(
            store
                .cancel_machine_action(&AuditContext::system("t"), other, id, "x", "y")
                .await
                .unwrap()
                .is_none()
        );
        let mine = store
            .claim_next_action(tenant(&s), &m.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mine.id, id);
        // Submitting through the store for a machine of another tenant: not found.
        let err = store
            .submit_machine_action(
                &AuditContext::system("t"),
                other,
                &ActionSubmission {
                    machine_id: m.id.clone(),
                    request: ActionRequest::new(
                        RequestedAction::Isolate {
                            isolation: IsolationType::Full,
                        },
                        Some("x".into()),
                        None,
                    )
                    .unwrap(),
                    requestor: "x".into(),
                    request_source: None,
                    idempotency: None,
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, rampart_store::StoreError::Rejected(ref r) if r.code == rampart_core::ErrorCode::ResourceNotFound),
            "{err}"
        );
    }
}
