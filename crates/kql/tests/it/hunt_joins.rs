//! Joins of every kind, lookup, union, subqueries (`in`, `toscalar`), `materialize` and
//! `let` functions; expected rows by hand from `hunt_data` and the reference's E11-E13, E17.

use crate::hunt_data::{check, hunt, rows, scalar};

const LR: &str = r#"let L = datatable(Key:string, A:string)["k1", "x", "k1", "y", "k2", "z"];
let R = datatable(Key:string, B:long)["k1", 1, "k1", 2, "k3", 3];
"#;

#[tokio::test]
async fn reference_e11_default_join_is_innerunique() {
    // One of the two k1 rows of L survives (either), joined with both k1 rows of R.
    check(
        &format!("{LR}L | join R on Key | project Key, Key1, B"),
        &["Key:string", "Key1:string", "B:long"],
        &[&["k1", "k1", "1"], &["k1", "k1", "2"]],
    )
    .await;
    assert_eq!(
        scalar(&format!("{LR}L | join R on Key | summarize dcount(A)")).await,
        "1"
    );
}

#[tokio::test]
async fn reference_e11_inner_join() {
    check(
        &format!("{LR}L | join kind=inner R on Key"),
        &["Key:string", "A:string", "Key1:string", "B:long"],
        &[
            &["k1", "x", "k1", "1"],
            &["k1", "x", "k1", "2"],
            &["k1", "y", "k1", "1"],
            &["k1", "y", "k1", "2"],
        ],
    )
    .await;
}

const PAIRS: [&[&str]; 4] = [
    &["k1", "x", "k1", "1"],
    &["k1", "x", "k1", "2"],
    &["k1", "y", "k1", "1"],
    &["k1", "y", "k1", "2"],
];

#[tokio::test]
async fn reference_e12_outer_joins() {
    let columns = ["Key:string", "A:string", "Key1:string", "B:long"];
    let mut left = PAIRS.to_vec();
    left.push(&["k2", "z", "", "null"]);
    check(
        &format!("{LR}L | join kind=leftouter R on Key"),
        &columns,
        &left,
    )
    .await;

    let mut right = PAIRS.to_vec();
    right.push(&["", "", "k3", "3"]);
    check(
        &format!("{LR}L | join kind=rightouter R on Key"),
        &columns,
        &right,
    )
    .await;

    let mut full = PAIRS.to_vec();
    full.push(&["k2", "z", "", "null"]);
    full.push(&["", "", "k3", "3"]);
    check(
        &format!("{LR}L | join kind=fullouter R on Key"),
        &columns,
        &full,
    )
    .await;
}

#[tokio::test]
async fn reference_e12_semi_and_anti_joins() {
    check(
        &format!("{LR}L | join kind=leftsemi R on Key"),
        &["Key:string", "A:string"],
        &[&["k1", "x"], &["k1", "y"]],
    )
    .await;
    check(
        &format!("{LR}L | join kind=leftanti R on Key"),
        &["Key:string", "A:string"],
        &[&["k2", "z"]],
    )
    .await;
    check(
        &format!("{LR}L | join kind=rightsemi R on Key"),
        &["Key:string", "B:long"],
        &[&["k1", "1"], &["k1", "2"]],
    )
    .await;
    check(
        &format!("{LR}L | join kind=rightanti R on Key"),
        &["Key:string", "B:long"],
        &[&["k3", "3"]],
    )
    .await;
}

#[tokio::test]
async fn reference_e13_lookup() {
    let data = r#"let F = datatable(Ip:string, Bytes:long)["10.0.0.1", 5, "8.8.8.8", 7];
let D = datatable(Ip:string, Owner:string)["10.0.0.1", "HR"];
"#;
    check(
        &format!("{data}F | lookup D on Ip"),
        &["Ip:string", "Bytes:long", "Owner:string"],
        &[&["10.0.0.1", "5", "HR"], &["8.8.8.8", "7", ""]],
    )
    .await;
    check(
        &format!("{data}F | lookup kind=inner D on Ip"),
        &["Ip:string", "Bytes:long", "Owner:string"],
        &[&["10.0.0.1", "5", "HR"]],
    )
    .await;
}

#[tokio::test]
async fn processes_with_network_activity() {
    check(
        r#"DeviceProcessEvents
| where FileName in~ ("powershell.exe", "certutil.exe")
| join kind=inner (DeviceNetworkEvents) on DeviceId, $left.ProcessId == $right.InitiatingProcessId
| summarize Remotes = dcount(RemoteIP), Connections = count() by FileName, DeviceName"#,
        &[
            "FileName:string",
            "DeviceName:string",
            "Remotes:long",
            "Connections:long",
        ],
        &[
            &["powershell.exe", "ws-02", "1", "2"],
            &["certutil.exe", "ws-01", "1", "2"],
        ],
    )
    .await;
}

#[tokio::test]
async fn failed_then_successful_logons_from_one_address() {
    check(
        r#"DeviceLogonEvents
| where ActionType == "LogonFailed"
| summarize Failures = count() by RemoteIP
| join kind=inner (
    DeviceLogonEvents
    | where ActionType == "LogonSuccess" and isnotempty(RemoteIP)
    | project RemoteIP, AccountName, DeviceName
  ) on RemoteIP
| project RemoteIP, Failures, AccountName, DeviceName"#,
        &[
            "RemoteIP:string",
            "Failures:long",
            "AccountName:string",
            "DeviceName:string",
        ],
        &[
            &["10.0.0.12", "3", "svc_backup", "srv-01"],
            &["10.0.0.12", "3", "svc_backup", "srv-01"],
        ],
    )
    .await;
}

#[tokio::test]
async fn devices_without_older_activity() {
    check(
        r#"DeviceInfo
| join kind=leftanti (DeviceProcessEvents | where Timestamp < datetime(2024-03-06)) on DeviceId
| project DeviceName"#,
        &["DeviceName:string"],
        &[&["ws-01"], &["srv-01"]],
    )
    .await;
}

#[tokio::test]
async fn union_of_tables() {
    check(
        r#"union DeviceFileEvents, DeviceRegistryEvents
| where DeviceName == "ws-02" and InitiatingProcessFileName == "powershell.exe"
| project Timestamp, ActionType"#,
        &["Timestamp:datetime", "ActionType:string"],
        &[
            &["2024-03-06T11:31:00Z", "FileCreated"],
            &["2024-03-06T16:01:00Z", "FileCreated"],
            &["2024-03-06T16:02:00Z", "RegistryValueSet"],
        ],
    )
    .await;
}

#[tokio::test]
async fn reference_e17_union_withsource_and_inner() {
    check(
        r#"let A = datatable(x:long)[1];
let B = datatable(x:string, y:long)["s", 2];
union withsource=Src A, B"#,
        &["Src:string", "x_long:long", "x_string:string", "y:long"],
        &[&["A", "1", "", "null"], &["B", "null", "s", "2"]],
    )
    .await;
    check(
        r#"let A = datatable(x:long)[1];
let C = datatable(x:long, w:string)[3, "q"];
union kind=inner A, C"#,
        &["x:long"],
        &[&["1"], &["3"]],
    )
    .await;
}

#[tokio::test]
async fn in_a_subquery() {
    check(
        r#"DeviceProcessEvents
| where DeviceName in ((DeviceLogonEvents | where ActionType == "LogonFailed" | distinct DeviceName))
| summarize count() by DeviceName"#,
        &["DeviceName:string", "count_:long"],
        &[&["ws-01", "5"], &["srv-01", "3"]],
    )
    .await;
}

#[tokio::test]
async fn not_in_a_tabular_let() {
    check(
        r#"let Seen = DeviceNetworkEvents | where ActionType == "ConnectionSuccess" | project InitiatingProcessId;
DeviceNetworkEvents | where InitiatingProcessId !in (Seen) | project ActionType"#,
        &["ActionType:string"],
        &[&["InboundConnectionAccepted"]],
    )
    .await;
}

#[tokio::test]
async fn toscalar_in_a_filter() {
    check(
        r#"let last = toscalar(DeviceProcessEvents | summarize max(Timestamp));
DeviceNetworkEvents | where Timestamp > last - 1h | project RemoteIP"#,
        &["RemoteIP:string"],
        &[&["8.8.8.8"], &["2001:db8::1"]],
    )
    .await;
}

#[tokio::test]
async fn materialized_parent_child_pairs() {
    check(
        r#"let procs = materialize(DeviceProcessEvents | project DeviceId, ProcessId, FileName, InitiatingProcessId);
procs
| join kind=inner (procs | project DeviceId, ParentPid = ProcessId, ParentName = FileName)
    on DeviceId, $left.InitiatingProcessId == $right.ParentPid
| project FileName, ParentName"#,
        &["FileName:string", "ParentName:string"],
        &[
            &["powershell.exe", "cmd.exe"],
            &["certutil.exe", "cmd.exe"],
            &["whoami.exe", "cmd.exe"],
            &["rundll32.exe", "powershell.exe"],
            &["schtasks.exe", "powershell.exe"],
        ],
    )
    .await;
}

#[tokio::test]
async fn tabular_function_with_invoke() {
    assert_eq!(
        scalar(
            r#"let named = (T:(FileName:string), names:dynamic) { T | where FileName in~ (names) };
DeviceProcessEvents | invoke named(dynamic(["NET.exe"])) | count"#
        )
        .await,
        "2"
    );
}

#[tokio::test]
async fn scalar_function() {
    check(
        r#"let kb = (x:long) { x / 1024 };
DeviceFileEvents | where FileName == "p.exe" | project Size = kb(FileSize)"#,
        &["Size:long"],
        &[&["1280"]],
    )
    .await;
}

#[tokio::test]
async fn alerts_with_their_evidence() {
    check(
        r#"AlertInfo
| where Severity == "High"
| join kind=inner AlertEvidence on AlertId
| summarize Entities = count() by Title"#,
        &["Title:string", "Entities:long"],
        &[
            &["Suspicious PowerShell download", "1"],
            &["Mimikatz detected", "2"],
        ],
    )
    .await;
}

#[tokio::test]
async fn join_on_keys_of_different_numeric_types() {
    // RemotePort is an int, the datatable's port a long: compared as longs.
    check(
        r#"DeviceNetworkEvents
| join kind=inner (datatable(Port:long, Service:string)[443, "https", 53, "dns"]) on $left.RemotePort == $right.Port
| summarize count() by Service"#,
        &["Service:string", "count_:long"],
        &[&["https", "3"], &["dns", "2"]],
    )
    .await;
}

#[tokio::test]
async fn dropped_null_keys_never_match() {
    let result = hunt(
        r#"let L = datatable(k:long, a:string)[1, "one", long(null), "none"];
let R = datatable(k:long, b:string)[1, "uno", long(null), "nada"];
L | join kind=inner R on k | project a, b"#,
    )
    .await;
    assert_eq!(
        rows(&result),
        vec![vec!["one".to_string(), "uno".to_string()]]
    );
}

#[tokio::test]
async fn union_with_a_pipe() {
    assert_eq!(
        scalar(r#"DeviceRegistryEvents | union (DeviceFileEvents | where ActionType == "FileDeleted") | count"#).await,
        "5"
    );
}

#[tokio::test]
async fn search_every_table() {
    // evil.example.com: two network events, the PowerShell command line, the x.dll origin.
    check(
        r#"search "evil.example.com" | summarize count() by $table"#,
        &["$table:string", "count_:long"],
        &[
            &["DeviceNetworkEvents", "2"],
            &["DeviceProcessEvents", "1"],
            &["DeviceFileEvents", "1"],
        ],
    )
    .await;
}

#[tokio::test]
async fn as_names_a_result_for_a_self_join() {
    check(
        "DeviceProcessEvents | summarize n = count() by DeviceName | as T | join kind=inner (T) on DeviceName | project DeviceName, n, n1",
        &["DeviceName:string", "n:long", "n1:long"],
        &[&["srv-01", "3", "3"], &["ws-01", "5", "5"], &["ws-02", "4", "4"]],
    )
    .await;
}

#[tokio::test]
async fn lookup_enriches_with_device_info() {
    check(
        "DeviceProcessEvents | lookup (DeviceInfo | project DeviceId, OSPlatform) on DeviceId | summarize count() by OSPlatform",
        &["OSPlatform:string", "count_:long"],
        &[&["Windows11", "5"], &["Windows10", "4"], &["WindowsServer2022", "3"]],
    )
    .await;
}

#[tokio::test]
async fn case_insensitive_in_a_subquery() {
    check(
        "DeviceProcessEvents | where AccountName in~ (DeviceLogonEvents | where IsLocalAdmin | project AccountName) | distinct AccountName",
        &["AccountName:string"],
        &[&["bob"], &["svc_backup"]],
    )
    .await;
}

#[tokio::test]
async fn nested_summaries() {
    check(
        "DeviceProcessEvents | summarize by DeviceName, AccountName | summarize Accounts = count() by DeviceName",
        &["DeviceName:string", "Accounts:long"],
        &[&["ws-01", "1"], &["ws-02", "1"], &["srv-01", "2"]],
    )
    .await;
}
