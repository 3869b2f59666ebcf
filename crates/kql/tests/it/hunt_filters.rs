//! Filters, string operators, projections, sorting and row limits, run end to end on the
//! dataset of `hunt_data`. Expected rows are worked out by hand from that data (and, where
//! the datatable comes from the reference, from its worked examples E1-E7).

use crate::hunt_data::{check, check_ordered, scalar};

#[tokio::test]
async fn case_insensitive_equality_matches_both_spellings() {
    check(
        r#"DeviceProcessEvents | where FileName =~ "cmd.exe" | project DeviceName, ProcessCommandLine"#,
        &["DeviceName:string", "ProcessCommandLine:string"],
        &[&["ws-01", "cmd /c whoami"], &["ws-01", "CMD.EXE /c echo hi"]],
    )
    .await;
}

#[tokio::test]
async fn equality_is_case_sensitive() {
    check(
        r#"DeviceProcessEvents | where FileName == "cmd.exe" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["100"]],
    )
    .await;
}

#[tokio::test]
async fn has_matches_whole_terms() {
    // "cmd /c whoami" and "whoami /all" have the term; nothing else mentions it.
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine has "whoami" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["100"], &["103"]],
    )
    .await;
}

#[tokio::test]
async fn has_with_punctuation_in_paths() {
    // Both cmd.exe paths end in the term sequence "cmd.exe" (case folded); has_cs keeps one.
    check(
        r#"DeviceProcessEvents | where FolderPath has "cmd.exe" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["100"], &["104"]],
    )
    .await;
    check(
        r#"DeviceProcessEvents | where FolderPath has_cs "cmd.exe" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["100"]],
    )
    .await;
}

#[tokio::test]
async fn contains_finds_substrings_that_has_does_not() {
    // "vssadmin" contains "admin" but has no term "admin"; "administrators" neither.
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine contains "ADMIN" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["300"], &["301"], &["302"]],
    )
    .await;
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine has "admin" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["300"], &["301"]],
    )
    .await;
}

#[tokio::test]
async fn starts_and_ends_with() {
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine startswith "NET " and ProcessCommandLine endswith "/add" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["300"], &["301"]],
    )
    .await;
    assert_eq!(
        scalar(r#"DeviceProcessEvents | where ProcessCommandLine !startswith "net" | count"#).await,
        "10"
    );
}

#[tokio::test]
async fn hasprefix_and_hassuffix() {
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine hasprefix "Download" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["200"]],
    )
    .await;
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine hassuffix "shell" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["101"], &["200"]],
    )
    .await;
}

#[tokio::test]
async fn in_and_not_in_lists() {
    check(
        r#"DeviceProcessEvents | where FileName in ("net.exe", "whoami.exe") | project ProcessId"#,
        &["ProcessId:long"],
        &[&["300"], &["301"], &["103"]],
    )
    .await;
    check(
        r#"DeviceProcessEvents | where FileName in~ ("NET.EXE") | project ProcessId"#,
        &["ProcessId:long"],
        &[&["300"], &["301"]],
    )
    .await;
    assert_eq!(
        scalar(r#"DeviceProcessEvents | where FileName !in ("net.exe", "whoami.exe") | count"#)
            .await,
        "9"
    );
}

#[tokio::test]
async fn has_any_over_a_let_array() {
    check(
        r#"let Lolbins = dynamic(["certutil", "rundll32", "schtasks"]);
DeviceProcessEvents
| where ProcessCommandLine has_any (Lolbins)
| project FileName"#,
        &["FileName:string"],
        &[&["certutil.exe"], &["rundll32.exe"], &["schtasks.exe"]],
    )
    .await;
}

#[tokio::test]
async fn has_all_needs_every_term() {
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine has_all ("net", "add") | project ProcessId"#,
        &["ProcessId:long"],
        &[&["300"], &["301"]],
    )
    .await;
}

#[tokio::test]
async fn between_datetimes_is_inclusive() {
    check(
        r#"DeviceProcessEvents
| where Timestamp between (datetime(2024-03-06 11:00) .. datetime(2024-03-06 12:00))
| project ProcessId"#,
        &["ProcessId:long"],
        &[&["200"], &["201"], &["300"]],
    )
    .await;
    // A timespan as the upper bound means "low + span".
    check(
        r#"DeviceProcessEvents
| where Timestamp between (datetime(2024-03-06 11:00) .. 1h)
| project ProcessId"#,
        &["ProcessId:long"],
        &[&["200"], &["201"], &["300"]],
    )
    .await;
}

#[tokio::test]
async fn numeric_filters_and_null_rules() {
    check(
        r#"DeviceProcessEvents | where FileSize > 400000 | project ProcessId"#,
        &["ProcessId:long"],
        &[&["101"], &["200"], &["102"]],
    )
    .await;
    // The CMD.EXE row has no FileSize: null != 448000 is true in KQL.
    assert_eq!(
        scalar(r#"DeviceProcessEvents | where FileSize != 448000 | count"#).await,
        "10"
    );
    check(
        r#"DeviceProcessEvents | where isnull(FileSize) | project ProcessId"#,
        &["ProcessId:long"],
        &[&["104"]],
    )
    .await;
}

#[tokio::test]
async fn arithmetic_in_extend() {
    check(
        r#"DeviceProcessEvents
| where ProcessId == 102
| extend KB = FileSize / 1024, MB = FileSize / 1048576.0, Half = ProcessId / 2
| project KB, MB, Half"#,
        &["KB:long", "MB:real", "Half:long"],
        &[&["1280", "1.25", "51"]],
    )
    .await;
}

#[tokio::test]
async fn datetime_arithmetic() {
    check(
        r#"DeviceProcessEvents
| where ProcessId == 101
| project Elapsed = Timestamp - datetime(2024-03-06 10:07),
          Later = Timestamp + 1h,
          Hours = (Timestamp - datetime(2024-03-06)) / 1h"#,
        &["Elapsed:timespan", "Later:datetime", "Hours:real"],
        &[&["00:52:00", "2024-03-06T11:59:00Z", "10.983333333333333"]],
    )
    .await;
}

#[tokio::test]
async fn top_sorts_descending_with_nulls_last() {
    check_ordered(
        r#"DeviceProcessEvents | top 3 by FileSize | project FileSize"#,
        &["FileSize:long"],
        &[&["1310720"], &["448000"], &["448000"]],
    )
    .await;
    check_ordered(
        r#"DeviceProcessEvents | sort by FileSize asc | take 2 | project FileSize"#,
        &["FileSize:long"],
        &[&["null"], &["58880"]],
    )
    .await;
}

#[tokio::test]
async fn sort_default_is_descending() {
    check_ordered(
        r#"DeviceProcessEvents | where DeviceName == "ws-01" | sort by FileSize | project FileSize"#,
        &["FileSize:long"],
        &[&["1310720"], &["448000"], &["289792"], &["77824"], &["null"]],
    )
    .await;
}

#[tokio::test]
async fn sort_by_several_keys() {
    check_ordered(
        r#"DeviceLogonEvents
| where ActionType == "LogonFailed"
| sort by AccountName asc, Timestamp desc
| project AccountName, Timestamp"#,
        &["AccountName:string", "Timestamp:datetime"],
        &[
            &["admin", "2024-03-06T11:51:00Z"],
            &["admin", "2024-03-06T11:50:00Z"],
            &["administrator", "2024-03-06T11:52:00Z"],
            &["guest", "2024-03-06T14:01:00Z"],
            &["guest", "2024-03-06T14:00:00Z"],
        ],
    )
    .await;
}

#[tokio::test]
async fn project_rename_and_reorder() {
    check(
        r#"DeviceLogonEvents
| where AccountName == "alice"
| project AccountName, AccountDomain, LogonType
| project-rename User = AccountName
| project-reorder LogonType"#,
        &["LogonType:string", "User:string", "AccountDomain:string"],
        &[&["Interactive", "alice", "CONTOSO"]],
    )
    .await;
}

#[tokio::test]
async fn project_away_and_keep_with_wildcards() {
    check(
        r#"DeviceInfo
| where DeviceName == "srv-01"
| project DeviceName, OSPlatform, OSBuild, PublicIP
| project-away OS*"#,
        &["DeviceName:string", "PublicIP:string"],
        &[&["srv-01", ""]],
    )
    .await;
    check(
        r#"DeviceInfo
| where DeviceName == "srv-01"
| project-keep Device*"#,
        &[
            "DeviceId:string",
            "DeviceName:string",
            "DeviceCategory:string",
            "DeviceType:string",
            "DeviceSubtype:string",
            "DeviceManualTags:string",
            "DeviceDynamicTags:string",
        ],
        &[&["d3", "srv-01", "", "Server", "", "", ""]],
    )
    .await;
}

#[tokio::test]
async fn distinct_values() {
    check(
        r#"DeviceProcessEvents | distinct AccountName"#,
        &["AccountName:string"],
        &[&["alice"], &["bob"], &["svc_backup"], &["SYSTEM"]],
    )
    .await;
}

#[tokio::test]
async fn count_operator() {
    check(
        r#"DeviceNetworkEvents | where ActionType == "ConnectionSuccess" | count"#,
        &["Count:long"],
        &[&["8"]],
    )
    .await;
}

#[tokio::test]
async fn any_column_has() {
    check(
        r#"DeviceNetworkEvents | where * has "evil" | project RemotePort"#,
        &["RemotePort:int"],
        &[&["80"], &["443"]],
    )
    .await;
}

#[tokio::test]
async fn search_in_a_table() {
    assert_eq!(
        scalar(r#"search in (DeviceFileEvents) "Finance" | count"#).await,
        "3"
    );
}

#[tokio::test]
async fn matches_regex_finds_ip_addresses() {
    check(
        r#"DeviceProcessEvents | where ProcessCommandLine matches regex @"\d{1,3}(\.\d{1,3}){3}" | project ProcessId"#,
        &["ProcessId:long"],
        &[&["102"]],
    )
    .await;
}

#[tokio::test]
async fn not_equal_case_insensitive() {
    check(
        r#"DeviceLogonEvents | where AccountName !~ "ADMIN" and ActionType == "LogonFailed" | project AccountName"#,
        &["AccountName:string"],
        &[&["administrator"], &["guest"], &["guest"]],
    )
    .await;
}

#[tokio::test]
async fn reference_e6_null_comparisons() {
    check(
        r#"datatable(v:long)[5, long(null), 7] | extend e = v == 7, n = v + 1, ne = v != 5"#,
        &["v:long", "e:bool", "n:long", "ne:bool"],
        &[
            &["5", "false", "6", "false"],
            &["null", "false", "null", "true"],
            &["7", "true", "8", "true"],
        ],
    )
    .await;
    check(
        r#"datatable(v:long)[5, long(null), 7] | where not(v > 4)"#,
        &["v:long"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn reference_e7_sort_defaults() {
    let data = "datatable(v:long)[3, long(null), 10, 1]";
    check_ordered(
        &format!("{data} | sort by v"),
        &["v:long"],
        &[&["10"], &["3"], &["1"], &["null"]],
    )
    .await;
    check_ordered(
        &format!("{data} | sort by v asc"),
        &["v:long"],
        &[&["null"], &["1"], &["3"], &["10"]],
    )
    .await;
    check_ordered(
        &format!("{data} | sort by v asc nulls last"),
        &["v:long"],
        &[&["1"], &["3"], &["10"], &["null"]],
    )
    .await;
    check_ordered(
        &format!("{data} | top 2 by v"),
        &["v:long"],
        &[&["10"], &["3"]],
    )
    .await;
}

#[tokio::test]
async fn reference_e4_equality_flavours() {
    let data = r#"datatable(User:string)["Admin", "ADMIN", "admin2", ""]"#;
    check(
        &format!(r#"{data} | where User == "admin""#),
        &["User:string"],
        &[],
    )
    .await;
    check(
        &format!(r#"{data} | where User =~ "admin""#),
        &["User:string"],
        &[&["Admin"], &["ADMIN"]],
    )
    .await;
    check(
        &format!(r#"{data} | where User in~ ("ADMIN", "guest")"#),
        &["User:string"],
        &[&["Admin"], &["ADMIN"]],
    )
    .await;
    check(
        &format!(r#"{data} | where User !in~ ("admin")"#),
        &["User:string"],
        &[&["admin2"], &[""]],
    )
    .await;
    check(
        &format!(r#"{data} | where User in ("Admin")"#),
        &["User:string"],
        &[&["Admin"]],
    )
    .await;
}

#[tokio::test]
async fn reference_e1_has_versus_contains() {
    let data = r#"datatable(Cmd:string)[@"C:\Windows\System32\cmd.exe /c whoami", @"C:\Tools\xcmd.exe", "CMD.EXE", "cmd.exeX"]"#;
    check(
        &format!(r#"{data} | where Cmd has "cmd.exe""#),
        &["Cmd:string"],
        &[&[r"C:\Windows\System32\cmd.exe /c whoami"], &["CMD.EXE"]],
    )
    .await;
    assert_eq!(
        scalar(&format!(r#"{data} | where Cmd contains "cmd.exe" | count"#)).await,
        "4"
    );
    check(
        &format!(r#"{data} | where Cmd has_cs "cmd.exe""#),
        &["Cmd:string"],
        &[&[r"C:\Windows\System32\cmd.exe /c whoami"]],
    )
    .await;
}

#[tokio::test]
async fn reference_e2_terms() {
    check(
        r#"let L = "North-Sea;UK ops";
print a = L has "sea", b = L has "se", c = L hasprefix "se", d = L hassuffix "rth",
      e = L has "uk", f = L contains "h-s", g = L has "h-s""#,
        &[
            "a:bool", "b:bool", "c:bool", "d:bool", "e:bool", "f:bool", "g:bool",
        ],
        &[&["true", "false", "true", "true", "true", "true", "false"]],
    )
    .await;
}

#[tokio::test]
async fn reference_e3_has_any_has_all() {
    let data = r#"let Kw = dynamic(["powershell", "encodedcommand"]);
datatable(Cmd:string)["powershell.exe -EncodedCommand SQBF", "pwsh -enc SQBF", "PowerShell -NoP"]"#;
    check(
        &format!("{data} | where Cmd has_any (Kw)"),
        &["Cmd:string"],
        &[
            &["powershell.exe -EncodedCommand SQBF"],
            &["PowerShell -NoP"],
        ],
    )
    .await;
    check(
        &format!("{data} | where Cmd has_all (Kw)"),
        &["Cmd:string"],
        &[&["powershell.exe -EncodedCommand SQBF"]],
    )
    .await;
}

#[tokio::test]
async fn take_limits_rows() {
    assert_eq!(scalar("DeviceProcessEvents | take 5 | count").await, "5");
    assert_eq!(scalar("DeviceProcessEvents | limit 0 | count").await, "0");
}

#[tokio::test]
async fn where_on_a_let_scalar() {
    check(
        r#"let threshold = 1000000;
DeviceFileEvents | where FileSize > threshold | project FileName"#,
        &["FileName:string"],
        &[&["p.exe"]],
    )
    .await;
}

#[tokio::test]
async fn extend_reuses_earlier_items() {
    check(
        r#"DeviceProcessEvents
| where ProcessId == 300
| extend Words = split(ProcessCommandLine, " "), Count = array_length(Words)
| project Count"#,
        &["Count:long"],
        &[&["5"]],
    )
    .await;
}
