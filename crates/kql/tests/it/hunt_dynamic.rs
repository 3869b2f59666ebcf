//! Dynamic values, mv-expand, parse, and serialized operators (window functions, range,
//! getschema); expected rows by hand from `hunt_data` and the reference's E5, E14-E16, E18.
//!
//! Dynamic cells read as their JSON text, so a dynamic string shows its quotes.

use crate::hunt_data::{check, check_ordered, scalar};

#[tokio::test]
async fn json_fields_of_additional_fields() {
    check(
        r#"DeviceProcessEvents
| where isnotempty(AdditionalFields)
| extend AF = parse_json(AdditionalFields)
| project ProcessId, Signed = tobool(AF.Signed), FirstTag = tostring(AF.Tags[0]), Count = toint(AF.Count)"#,
        &["ProcessId:long", "Signed:bool", "FirstTag:string", "Count:int"],
        &[
            &["200", "false", "macro", "null"],
            &["201", "true", "dll", "null"],
            &["302", "null", "", "3"],
        ],
    )
    .await;
}

#[tokio::test]
async fn compare_a_dynamic_value() {
    check(
        r#"DeviceEvents
| where ActionType == "AntivirusDetection"
| extend AF = parse_json(AdditionalFields)
| where AF.WasRemediated == false
| project FileName, Threat = tostring(AF.ThreatName)"#,
        &["FileName:string", "Threat:string"],
        &[&["p.exe", "HackTool:Win32/Mimikatz"]],
    )
    .await;
}

#[tokio::test]
async fn reference_e5_missing_keys() {
    check(
        r#"datatable(d:dynamic)[dynamic({"user": "Bob"}), dynamic({"host": "h1"}), dynamic(null)]
| extend u = tostring(d.user)
| extend empty = isempty(u), nul = isnull(d.user), m = d.user =~ "bob", nu = isnull(u)"#,
        &[
            "d:dynamic",
            "u:string",
            "empty:bool",
            "nul:bool",
            "m:bool",
            "nu:bool",
        ],
        &[
            &[
                r#"{"user":"Bob"}"#,
                "Bob",
                "false",
                "false",
                "true",
                "false",
            ],
            &[r#"{"host":"h1"}"#, "", "true", "true", "false", "false"],
            &["null", "", "true", "true", "false", "false"],
        ],
    )
    .await;
}

const E14: &str =
    r#"datatable(id:long, a:dynamic)[1, dynamic(["x", "y"]), 2, dynamic([]), 3, dynamic(null)]"#;

#[tokio::test]
async fn reference_e14_mv_expand_arrays() {
    check(
        &format!("{E14} | mv-expand a"),
        &["id:long", "a:dynamic"],
        &[&["1", r#""x""#], &["1", r#""y""#], &["3", "null"]],
    )
    .await;
    check(
        &format!("{E14} | where id == 1 | mv-expand with_itemindex=i a to typeof(string)"),
        &["id:long", "a:string", "i:long"],
        &[&["1", "x", "0"], &["1", "y", "1"]],
    )
    .await;
}

const E15: &str =
    r#"datatable(b:dynamic, c:dynamic)[dynamic({"p": 1, "q": 2}), dynamic([10, 20, 30])]"#;

#[tokio::test]
async fn reference_e15_mv_expand_bags_in_parallel() {
    check(
        &format!("{E15} | mv-expand b, c"),
        &["b:dynamic", "c:dynamic"],
        &[
            &[r#"{"p":1}"#, "10"],
            &[r#"{"q":2}"#, "20"],
            &["null", "30"],
        ],
    )
    .await;
    check(
        &format!("{E15} | mv-expand kind=array b | project b"),
        &["b:dynamic"],
        &[&[r#"["p",1]"#], &[r#"["q",2]"#]],
    )
    .await;
    assert_eq!(
        scalar(&format!("{E15} | mv-expand b | mv-expand c | count")).await,
        "6"
    );
}

#[tokio::test]
async fn logged_on_users() {
    check(
        r#"DeviceInfo
| extend Users = parse_json(LoggedOnUsers)
| mv-expand User = Users
| project DeviceName, UserName = tostring(User.UserName)"#,
        &["DeviceName:string", "UserName:string"],
        &[&["ws-01", "alice"], &["ws-02", "bob"], &["ws-02", "alice"]],
    )
    .await;
}

#[tokio::test]
async fn mv_expand_limit() {
    assert_eq!(
        scalar(r#"print a = dynamic([1, 2, 3, 4]) | mv-expand a limit 2 | count"#).await,
        "2"
    );
}

#[tokio::test]
async fn array_and_bag_functions() {
    check(
        r#"print a = array_length(dynamic([1, 2, 3])),
      b = split("a,b,,c", ","),
      c = split("a,b,,c", ",", 2),
      d = pack_array(1, "x", true),
      e = bag_keys(dynamic({"k1": 1, "k2": 2})),
      f = array_slice(dynamic([1, 2, 3, 4]), 1, 2),
      g = array_concat(dynamic([1]), dynamic([2, 3]))"#,
        &[
            "a:long",
            "b:dynamic",
            "c:dynamic",
            "d:dynamic",
            "e:dynamic",
            "f:dynamic",
            "g:dynamic",
        ],
        &[&[
            "3",
            r#"["a","b","","c"]"#,
            r#"[""]"#,
            r#"[1,"x",true]"#,
            r#"["k1","k2"]"#,
            "[2,3]",
            "[1,2,3]",
        ]],
    )
    .await;
}

#[tokio::test]
async fn bag_pack_keeps_key_order() {
    check(
        r#"DeviceRegistryEvents
| where RegistryValueName == "Updater"
| project Details = bag_pack("value", RegistryValueName, "process", InitiatingProcessFileName)"#,
        &["Details:dynamic"],
        &[&[r#"{"value":"Updater","process":"powershell.exe"}"#]],
    )
    .await;
}

#[tokio::test]
async fn set_functions_and_zip() {
    check(
        r#"print u = set_union(dynamic([1, 2]), dynamic([2, 3])),
      i = set_intersect(dynamic([1, 2]), dynamic([2, 3])),
      d = set_difference(dynamic([1, 2, 3]), dynamic([2])),
      h = set_has_element(dynamic(["a"]), "a"),
      z = zip(dynamic([1, 2]), dynamic(["a"]))"#,
        &["u:dynamic", "i:dynamic", "d:dynamic", "h:bool", "z:dynamic"],
        &[&["[1,2,3]", "[2]", "[1,3]", "true", r#"[[1,"a"],[2,null]]"#]],
    )
    .await;
}

#[tokio::test]
async fn todynamic_and_index() {
    assert_eq!(
        scalar(r#"print x = todynamic('["a","b"]')[1]"#).await,
        r#""b""#
    );
    assert_eq!(
        scalar(r#"print x = parse_json('{"a":{"b":[5,6]}}').a.b[-1]"#).await,
        "6"
    );
}

const E16: &str = r#"datatable(Msg:string)["user=alice ip=10.1.2.3 port=445 ok", "user=bob ip=10.9.9.9 port=abc ok", "garbage"]"#;

#[tokio::test]
async fn reference_e16_parse() {
    let pattern = r#"with * "user=" User " ip=" Ip " port=" Port:long " " *"#;
    check(
        &format!("{E16} | parse Msg {pattern} | project User, Ip, Port"),
        &["User:string", "Ip:string", "Port:long"],
        &[
            &["alice", "10.1.2.3", "445"],
            &["", "", "null"],
            &["", "", "null"],
        ],
    )
    .await;
    check(
        &format!("{E16} | parse kind=relaxed Msg {pattern} | project User, Ip, Port"),
        &["User:string", "Ip:string", "Port:long"],
        &[
            &["alice", "10.1.2.3", "445"],
            &["bob", "10.9.9.9", "null"],
            &["", "", "null"],
        ],
    )
    .await;
    check(
        &format!("{E16} | parse-where Msg {pattern} | project User"),
        &["User:string"],
        &[&["alice"]],
    )
    .await;
}

#[tokio::test]
async fn parse_net_commands() {
    check(
        r#"DeviceProcessEvents
| where FileName == "net.exe"
| parse ProcessCommandLine with "net " Verb " " Rest
| project Verb, Rest"#,
        &["Verb:string", "Rest:string"],
        &[
            &["user", "admin P@ssw0rd /add"],
            &["localgroup", "administrators admin /add"],
        ],
    )
    .await;
}

#[tokio::test]
async fn parse_with_regex_segments() {
    check(
        r#"DeviceFileEvents
| parse kind=regex FileOriginUrl with @"https?://" Host @"/" File
| where isnotempty(Host)
| project Host, File"#,
        &["Host:string", "File:string"],
        &[&["evil.example.com", "x.dll"], &["198.51.100.7", "p.exe"]],
    )
    .await;
}

#[tokio::test]
async fn extract_urls() {
    check(
        r#"DeviceProcessEvents
| extend Url = extract(@"https?://[^\s']+", 0, ProcessCommandLine)
| where isnotempty(Url)
| project Url"#,
        &["Url:string"],
        &[
            &["http://evil.example.com/a.ps1"],
            &["http://198.51.100.7/p.exe"],
        ],
    )
    .await;
    check(
        r#"print port = extract(@"port=(\d+)", 1, "host=a port=8080", typeof(long))"#,
        &["port:long"],
        &[&["8080"]],
    )
    .await;
}

#[tokio::test]
async fn window_functions_over_sorted_rows() {
    check_ordered(
        r#"DeviceLogonEvents
| where DeviceName == "srv-01"
| sort by Timestamp asc
| extend Gap = Timestamp - prev(Timestamp), Next = next(AccountName), Row = row_number()
| project Row, AccountName, Gap, Next"#,
        &[
            "Row:long",
            "AccountName:string",
            "Gap:timespan",
            "Next:string",
        ],
        &[
            &["1", "admin", "null", "admin"],
            &["2", "admin", "00:01:00", "administrator"],
            &["3", "administrator", "00:01:00", "svc_backup"],
            &["4", "svc_backup", "00:01:00", "svc_backup"],
            &["5", "svc_backup", "00:17:00", ""],
        ],
    )
    .await;
}

#[tokio::test]
async fn running_sum() {
    check_ordered(
        "range x from 1 to 5 step 1 | serialize | extend c = row_cumsum(x)",
        &["x:long", "c:long"],
        &[
            &["1", "1"],
            &["2", "3"],
            &["3", "6"],
            &["4", "10"],
            &["5", "15"],
        ],
    )
    .await;
}

#[tokio::test]
async fn range_of_datetimes() {
    check_ordered(
        "range t from datetime(2024-03-06) to datetime(2024-03-06 03:00) step 1h",
        &["t:datetime"],
        &[
            &["2024-03-06T00:00:00Z"],
            &["2024-03-06T01:00:00Z"],
            &["2024-03-06T02:00:00Z"],
            &["2024-03-06T03:00:00Z"],
        ],
    )
    .await;
    check_ordered(
        "range x from 10 to 1 step -4",
        &["x:long"],
        &[&["10"], &["6"], &["2"]],
    )
    .await;
}

#[tokio::test]
async fn getschema_lists_columns() {
    check_ordered(
        "DeviceInfo | project DeviceName, OSBuild | getschema",
        &[
            "ColumnName:string",
            "ColumnOrdinal:int",
            "DataType:string",
            "ColumnType:string",
        ],
        &[
            &["DeviceName", "0", "System.String", "string"],
            &["OSBuild", "1", "System.Int64", "long"],
        ],
    )
    .await;
}

#[tokio::test]
async fn reference_e18_automatic_names() {
    check(
        r#"datatable(d:dynamic, s:string)[dynamic({"a": {"b": 5}}), "Abc"] | project d.a.b, tolower(s), s2 = s"#,
        &["d_a_b:dynamic", "Column1:string", "s2:string"],
        &[&["5", "abc", "Abc"]],
    )
    .await;
    check(
        "print 1, x = 2, 3",
        &["print_0:long", "x:long", "print_2:long"],
        &[&["1", "2", "3"]],
    )
    .await;
}

#[tokio::test]
async fn dynamic_arithmetic_and_ordering() {
    check(
        r#"print a = parse_json('{"n": 4}').n * 2, b = parse_json('{"n": 4}').n > 3"#,
        &["a:dynamic", "b:bool"],
        &[&["8", "true"]],
    )
    .await;
}

#[tokio::test]
async fn prev_with_offset_and_default() {
    check_ordered(
        "range x from 1 to 4 step 1 | extend p = prev(x, 2, -1)",
        &["x:long", "p:long"],
        &[&["1", "-1"], &["2", "-1"], &["3", "1"], &["4", "2"]],
    )
    .await;
}

#[tokio::test]
async fn mv_apply_summarizes_each_row() {
    check(
        r#"datatable(id:long, xs:dynamic)[1, dynamic([5, 1, 3]), 2, dynamic([7]), 3, dynamic([])]
| mv-apply x = xs to typeof(long) on (summarize Total = sum(x), Largest = max(x))
| project id, Total, Largest"#,
        &["id:long", "Total:long", "Largest:long"],
        &[&["1", "9", "5"], &["2", "7", "7"]],
    )
    .await;
}

#[tokio::test]
async fn mv_apply_keeps_the_top_element_per_row() {
    check(
        r#"DeviceInfo
| extend Users = parse_json(LoggedOnUsers)
| mv-apply with_itemindex=i User = Users on (top 1 by i asc | project Name = tostring(User.UserName), i)
| project DeviceName, Name, i"#,
        &["DeviceName:string", "Name:string", "i:long"],
        &[&["ws-01", "alice", "0"], &["ws-02", "bob", "0"]],
    )
    .await;
}

#[tokio::test]
async fn mv_apply_filters_elements() {
    check(
        r#"datatable(id:long, xs:dynamic)[1, dynamic([1, 20, 30]), 2, dynamic([2])]
| mv-apply x = xs to typeof(long) on (where x > 10 | extend y = x * 2)
| project id, x, y"#,
        &["id:long", "x:long", "y:long"],
        &[&["1", "20", "40"], &["1", "30", "60"]],
    )
    .await;
}

#[tokio::test]
async fn row_number_restarts_per_run() {
    check_ordered(
        r#"DeviceLogonEvents
| sort by DeviceName asc, Timestamp asc
| extend Seq = row_number(1, prev(DeviceName) != DeviceName), Run = row_cumsum(1, prev(DeviceName) != DeviceName)
| project DeviceName, Seq, Run"#,
        &["DeviceName:string", "Seq:long", "Run:long"],
        &[
            &["srv-01", "1", "1"],
            &["srv-01", "2", "2"],
            &["srv-01", "3", "3"],
            &["srv-01", "4", "4"],
            &["srv-01", "5", "5"],
            &["ws-01", "1", "1"],
            &["ws-01", "2", "2"],
            &["ws-01", "3", "3"],
            &["ws-02", "1", "1"],
            &["ws-02", "2", "2"],
        ],
    )
    .await;
}

const DETECTIONS: &str = r#"DeviceEvents
| where ActionType == "AntivirusDetection"
| project FileName, AF = parse_json(AdditionalFields)"#;

#[tokio::test]
async fn bag_unpack_makes_typed_columns() {
    check(
        &format!("{DETECTIONS} | evaluate bag_unpack(AF)"),
        &["FileName:string", "ThreatName:string", "WasRemediated:bool"],
        &[
            &["a.ps1", "Trojan:PowerShell/Downloader", "true"],
            &["p.exe", "HackTool:Win32/Mimikatz", "false"],
        ],
    )
    .await;
    check(
        &format!(r#"{DETECTIONS} | evaluate bag_unpack(AF, "af_") | where strlen(FileName) > 1"#),
        &[
            "FileName:string",
            "af_ThreatName:string",
            "af_WasRemediated:bool",
        ],
        &[
            &["a.ps1", "Trojan:PowerShell/Downloader", "true"],
            &["p.exe", "HackTool:Win32/Mimikatz", "false"],
        ],
    )
    .await;
}

#[tokio::test]
async fn bag_unpack_columns_are_dynamic_to_later_operators() {
    check(
        &format!("{DETECTIONS} | evaluate bag_unpack(AF) | where WasRemediated == false | project FileName, ThreatName"),
        &["FileName:string", "ThreatName:dynamic"],
        &[&["p.exe", r#""HackTool:Win32/Mimikatz""#]],
    )
    .await;
}

#[tokio::test]
async fn bag_unpack_with_a_declared_schema() {
    check(
        &format!("{DETECTIONS} | evaluate bag_unpack(AF) : (FileName:string, ThreatName:string)"),
        &["FileName:string", "ThreatName:string"],
        &[
            &["a.ps1", "Trojan:PowerShell/Downloader"],
            &["p.exe", "HackTool:Win32/Mimikatz"],
        ],
    )
    .await;
}

#[tokio::test]
async fn pivot_counts_protocols_per_device() {
    check(
        "DeviceNetworkEvents | evaluate pivot(Protocol, count(), DeviceName)",
        &["DeviceName:string", "Tcp:long", "Udp:long"],
        &[
            &["ws-01", "4", "0"],
            &["ws-02", "3", "1"],
            &["srv-01", "1", "1"],
        ],
    )
    .await;
}

#[tokio::test]
async fn pivot_sums_without_groups() {
    check(
        "DeviceFileEvents | evaluate pivot(ActionType, sum(FileSize))",
        &[
            "FileCreated:long",
            "FileDeleted:long",
            "FileModified:long",
            "FileRenamed:long",
        ],
        &[&["1388032", "0", "61440", "1024"]],
    )
    .await;
}
