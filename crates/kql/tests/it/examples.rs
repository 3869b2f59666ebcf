//! Every worked example of section 10 of the KQL reference, as complete queries.
//! The fragments (`where Cmd has "cmd.exe"`) are placed after a table `T` (or the
//! example's own table names); the texts themselves are facts of the language.

use crate::parse_ok;

fn all_parse(queries: &[&str]) {
    for query in queries {
        parse_ok(query);
    }
}

#[test]
fn e01_has_vs_contains() {
    all_parse(&[
        r#"T | where Cmd has "cmd.exe""#,
        r#"T | where Cmd contains "cmd.exe""#,
        r#"T | where Cmd has_cs "cmd.exe""#,
        r#"print @"C:\Windows\System32\cmd.exe /c whoami", @"C:\Tools\xcmd.exe", "CMD.EXE", "cmd.exeX""#,
    ]);
}

#[test]
fn e02_terms() {
    all_parse(&[
        r#"let L = "North-Sea;UK ops"; print a = L has "sea", b = L has "se", c = L hasprefix "se", d = L hassuffix "rth", e = L has "uk", f = L contains "h-s", g = L has "h-s""#,
    ]);
}

#[test]
fn e03_has_any_has_all() {
    all_parse(&[
        r#"let Kw = dynamic(["powershell", "encodedcommand"]); T | where Cmd has_any (Kw)"#,
        r#"let Kw = dynamic(["powershell", "encodedcommand"]); T | where Cmd has_all (Kw)"#,
    ]);
}

#[test]
fn e04_equality_flavors() {
    all_parse(&[
        r#"T | where User == "admin""#,
        r#"T | where User =~ "admin""#,
        r#"T | where User in~ ("ADMIN","guest")"#,
        r#"T | where User !in~ ("admin")"#,
        r#"T | where User in ("Admin")"#,
    ]);
}

#[test]
fn e05_no_string_null() {
    all_parse(&[
        r#"T | extend u = tostring(d.user)"#,
        r#"T | where d.user =~ "bob""#,
        r#"T | extend u = tostring(d.user) | where isempty(u)"#,
        r#"T | where isnull(d.user)"#,
        r#"T | extend u = tostring(d.user) | where isnull(u)"#,
        r#"datatable (d:dynamic) [dynamic({"user":"Bob"}), dynamic({"host":"h1"}), dynamic(null)]"#,
    ]);
}

#[test]
fn e06_null_comparisons() {
    all_parse(&[
        "datatable (v:long) [5, long(null), 7] | where v != 5",
        "T | where v > 4",
        "T | where not(v > 4)",
        "T | extend e = v == 7",
        "T | extend n = v + 1",
    ]);
}

#[test]
fn e07_sort_defaults() {
    all_parse(&[
        "T | sort by v",
        "T | sort by v asc",
        "T | sort by v asc nulls last",
        "T | top 2 by v",
    ]);
}

#[test]
fn e08_summarize_naming() {
    all_parse(&[
        "T | summarize count(), dcount(User), sum(Bytes) by Host",
        "T | summarize Total = count(), countif(Bytes > 4)",
        "T | summarize count(), count()",
        "T | where false | summarize count(), make_set(User)",
        "T | where false | summarize count() by Host",
    ]);
}

#[test]
fn e09_bin_vs_startofweek() {
    all_parse(&[
        "T | summarize n = count() by bin(Time, 1h)",
        "print bin(datetime(2024-03-06 15:00), 7d)",
        "print startofweek(datetime(2024-03-06))",
    ]);
}

#[test]
fn e10_arg_max() {
    all_parse(&[
        "T | summarize arg_max(Time, *) by Host",
        "T | summarize arg_max(Time, Proc) by Host",
        "T | summarize arg_min(Time, *)",
    ]);
}

#[test]
fn e11_e12_join_kinds() {
    all_parse(&[
        "L | join R on Key",
        "L | join kind=inner R on Key",
        "L | join kind=leftouter R on Key",
        "L | join kind=fullouter R on Key",
        "L | join kind=leftsemi R on Key",
        "L | join kind=leftanti R on Key",
        "L | join kind=rightanti R on Key",
    ]);
}

#[test]
fn e13_lookup() {
    all_parse(&["F | lookup D on Ip", "F | lookup kind=inner D on Ip"]);
}

#[test]
fn e14_e15_mv_expand() {
    all_parse(&[
        "T | mv-expand a",
        "T | where id == 1 | mv-expand with_itemindex=i a to typeof(string)",
        "T | mv-expand b",
        "T | mv-expand kind=array b",
        "T | mv-expand b, c",
        "T | mv-expand b | mv-expand c",
    ]);
}

#[test]
fn e16_parse() {
    all_parse(&[
        r#"T | parse Msg with * "user=" User " ip=" Ip " port=" Port:long " " *"#,
        r#"T | parse kind=relaxed Msg with * "user=" User " ip=" Ip " port=" Port:long " " *"#,
        r#"T | parse-where Msg with * "user=" User " ip=" Ip " port=" Port:long " " *"#,
    ]);
}

#[test]
fn e17_union() {
    all_parse(&["union withsource=Src A, B", "union kind=inner A, C"]);
}

#[test]
fn e18_automatic_names() {
    all_parse(&[
        "T | project d.a.b, tolower(s), s2 = s",
        "T | extend tostring(d.a.b)",
        "print 1, x = 2, 3",
        "T | summarize count() by tostring(d.a.b)",
    ]);
}

#[test]
fn e19_dcount_sets_lists() {
    all_parse(&[
        "T | summarize dcount(U), count(), make_set(U), make_list(U)",
        "T2 | summarize make_set(a)",
        "T2 | summarize make_list(a)",
    ]);
}

#[test]
fn e20_period_and_overlap_counting() {
    all_parse(&[
        "print datetime_diff('day', datetime(2024-03-02 00:01), datetime(2024-03-01 23:59))",
        "print (datetime(2024-03-02 00:01) - datetime(2024-03-01 23:59)) / 1d",
        "print datetime_diff('month', datetime(2024-01-01), datetime(2023-12-31))",
        "print datetime_diff('hour', datetime(2024-01-01 10:00), datetime(2024-01-01 12:30))",
        r#"print countof("aaaa", "aa")"#,
        r#"print countof("aaaa", "aa", "regex")"#,
        r#"print split("a,b,,c", ",", 2)"#,
    ]);
}

/// Shapes common in public hunting queries, beyond the worked examples.
#[test]
fn hunting_query_shapes() {
    all_parse(&[
        r#"let lookback = 14d;
let SuspiciousParents = dynamic(["winword.exe", "excel.exe"]);
DeviceProcessEvents
| where Timestamp > ago(lookback)
| where InitiatingProcessFileName in~ (SuspiciousParents)
| where FileName =~ "powershell.exe" and ProcessCommandLine matches regex @"(?i)-e(nc|ncodedcommand)?\s"
| project Timestamp, DeviceName, AccountName, ProcessCommandLine
| order by Timestamp desc"#,
        r#"SigninLogs
| where TimeGenerated between (ago(1d) .. now())
| extend City = tostring(LocationDetails.city), Country = tostring(LocationDetails["countryOrRegion"])
| summarize Attempts = count(), Failures = countif(ResultType != "0"), Cities = dcount(City) by UserPrincipalName, bin(TimeGenerated, 1h)
| where Failures > 10 and Attempts - Failures < 2
| join kind=leftanti (IdentityInfo | project UserPrincipalName = AccountUPN) on UserPrincipalName"#,
        r#"let Allow = materialize(datatable (Ip:string) ["10.0.0.1", "10.0.0.2"]);
DeviceNetworkEvents
| where RemoteIP !in ((Allow | project Ip)) and not(ipv4_is_private(RemoteIP))
| summarize arg_max(Timestamp, *) by DeviceId
| lookup kind=leftouter (DeviceInfo | distinct DeviceId, OSPlatform) on DeviceId
| extend Hour = datetime_part("hour", Timestamp)
| top 100 by Timestamp"#,
        r#"EmailEvents
| mv-expand Recipient = todynamic(RecipientsList) to typeof(string)
| parse SenderFromAddress with Sender "@" Domain
| summarize Recipients = make_set(Recipient, 100) by Domain
| extend Count = array_length(Recipients)
| where Count > 50
| project-rename SenderDomain = Domain
| project-away Recipients"#,
    ]);
}
