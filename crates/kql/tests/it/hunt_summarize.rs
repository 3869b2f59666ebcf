//! `summarize`, aggregates, `bin` and `make-series` end to end; expected rows by hand from
//! `hunt_data` and the reference's examples E8-E10, E19.

use crate::hunt_data::{check, check_ordered, scalar};

#[tokio::test]
async fn count_by_device() {
    check(
        "DeviceProcessEvents | summarize count() by DeviceName",
        &["DeviceName:string", "count_:long"],
        &[&["srv-01", "3"], &["ws-01", "5"], &["ws-02", "4"]],
    )
    .await;
}

const E8: &str =
    r#"datatable(Host:string, User:string, Bytes:long)["h1", "a", 10, "h1", "b", 5, "h2", "a", 1]"#;

#[tokio::test]
async fn reference_e8_naming() {
    check(
        &format!("{E8} | summarize count(), dcount(User), sum(Bytes) by Host"),
        &[
            "Host:string",
            "count_:long",
            "dcount_User:long",
            "sum_Bytes:long",
        ],
        &[&["h1", "2", "2", "15"], &["h2", "1", "1", "1"]],
    )
    .await;
    check(
        &format!("{E8} | summarize Total = count(), countif(Bytes > 4)"),
        &["Total:long", "countif_:long"],
        &[&["3", "2"]],
    )
    .await;
    check(
        &format!("{E8} | summarize count(), count()"),
        &["count_:long", "count_1:long"],
        &[&["3", "3"]],
    )
    .await;
}

#[tokio::test]
async fn keyless_summarize_on_empty_input_gives_one_row() {
    check(
        "DeviceProcessEvents | where false | summarize count(), make_set(AccountName), sum(FileSize), max(Timestamp)",
        &["count_:long", "set_AccountName:dynamic", "sum_FileSize:long", "max_Timestamp:datetime"],
        &[&["0", "[]", "0", "null"]],
    )
    .await;
    check(
        "DeviceProcessEvents | where false | summarize count() by DeviceName",
        &["DeviceName:string", "count_:long"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn reference_e9_bins() {
    check(
        "datatable(Time:datetime)[datetime(2024-03-06 10:07), datetime(2024-03-06 10:59), datetime(2024-03-06 11:00)]
| summarize n = count() by bin(Time, 1h)",
        &["Time:datetime", "n:long"],
        &[&["2024-03-06T10:00:00Z", "2"], &["2024-03-06T11:00:00Z", "1"]],
    )
    .await;
    check(
        "print a = bin(datetime(2024-03-06 15:00), 7d), b = startofweek(datetime(2024-03-06))",
        &["a:datetime", "b:datetime"],
        &[&["2024-03-04T00:00:00Z", "2024-03-03T00:00:00Z"]],
    )
    .await;
}

const E10: &str = r#"datatable(Host:string, Time:datetime, Proc:string)[
    "h1", datetime(2024-01-01 10:00), "a.exe",
    "h1", datetime(2024-01-01 12:00), "b.exe",
    "h2", datetime(2024-01-01 09:00), "c.exe"]"#;

#[tokio::test]
async fn reference_e10_arg_max_and_arg_min() {
    check(
        &format!("{E10} | summarize arg_max(Time, *) by Host"),
        &["Host:string", "Time:datetime", "Proc:string"],
        &[
            &["h1", "2024-01-01T12:00:00Z", "b.exe"],
            &["h2", "2024-01-01T09:00:00Z", "c.exe"],
        ],
    )
    .await;
    check(
        &format!("{E10} | summarize arg_max(Time, Proc) by Host"),
        &["Host:string", "Time:datetime", "Proc:string"],
        &[
            &["h1", "2024-01-01T12:00:00Z", "b.exe"],
            &["h2", "2024-01-01T09:00:00Z", "c.exe"],
        ],
    )
    .await;
    check(
        &format!("{E10} | summarize arg_min(Time, *)"),
        &["Time:datetime", "Host:string", "Proc:string"],
        &[&["2024-01-01T09:00:00Z", "h2", "c.exe"]],
    )
    .await;
}

#[tokio::test]
async fn latest_process_per_device() {
    check(
        "DeviceProcessEvents | summarize arg_max(Timestamp, FileName) by DeviceName",
        &["DeviceName:string", "Timestamp:datetime", "FileName:string"],
        &[
            &["srv-01", "2024-03-06T15:00:00Z", "vssadmin.exe"],
            &["ws-01", "2024-03-06T17:00:00Z", "CMD.EXE"],
            &["ws-02", "2024-03-06T16:00:00Z", "schtasks.exe"],
        ],
    )
    .await;
}

#[tokio::test]
async fn reference_e19_sets_and_lists() {
    check(
        "datatable(U:long)[1, 2, 2, long(null)]
| summarize dcount(U), count(), s = array_sort_asc(make_set(U)), l = array_sort_asc(make_list(U))",
        &["dcount_U:long", "count_:long", "s:dynamic", "l:dynamic"],
        &[&["2", "4", "[1,2]", "[1,2,2]"]],
    )
    .await;
    // make_set flattens arrays; make_list keeps them as elements.
    check(
        r#"datatable(a:dynamic)[dynamic(["A1", "A2"]), dynamic(["A2", "C1"])]
| summarize s = array_sort_asc(make_set(a)), n = array_length(make_list(a))"#,
        &["s:dynamic", "n:long"],
        &[&[r#"["A1","A2","C1"]"#, "2"]],
    )
    .await;
}

#[tokio::test]
async fn avg_min_max_sum() {
    check(
        r#"DeviceProcessEvents | where DeviceName == "srv-01"
| summarize avg(FileSize), min(FileSize), max(FileSize), sum(FileSize)"#,
        &[
            "avg_FileSize:real",
            "min_FileSize:long",
            "max_FileSize:long",
            "sum_FileSize:long",
        ],
        &[&["81578.66666666667", "58880", "126976", "244736"]],
    )
    .await;
}

#[tokio::test]
async fn conditional_counts_per_device() {
    check(
        r#"DeviceLogonEvents
| summarize Failed = countif(ActionType == "LogonFailed"),
            Accounts = dcount(AccountName),
            FailedAccounts = dcountif(AccountName, ActionType == "LogonFailed")
  by DeviceName"#,
        &[
            "DeviceName:string",
            "Failed:long",
            "Accounts:long",
            "FailedAccounts:long",
        ],
        &[
            &["ws-01", "2", "2", "1"],
            &["ws-02", "0", "1", "0"],
            &["srv-01", "3", "3", "2"],
        ],
    )
    .await;
}

#[tokio::test]
async fn password_spray_detection() {
    check(
        r#"DeviceLogonEvents
| where ActionType == "LogonFailed"
| summarize Attempts = count(), Accounts = array_sort_asc(make_set(AccountName)) by RemoteIP, DeviceName
| where Attempts >= 3"#,
        &["RemoteIP:string", "DeviceName:string", "Attempts:long", "Accounts:dynamic"],
        &[&["10.0.0.12", "srv-01", "3", r#"["admin","administrator"]"#]],
    )
    .await;
}

#[tokio::test]
async fn percentiles_are_nearest_rank() {
    // FileSize (11 non-null values) sorted: 58880 58880 71680 77824 126976 201216 227840
    // 289792 448000 448000 1310720; ranks ceil(p/100 * 11): 50% -> 6th, 25% -> 3rd, 90% -> 10th.
    check(
        "DeviceProcessEvents | summarize percentile(FileSize, 50), percentiles(FileSize, 25, 90)",
        &[
            "percentile_FileSize_50:long",
            "percentile_FileSize_25:long",
            "percentile_FileSize_90:long",
        ],
        &[&["201216", "71680", "448000"]],
    )
    .await;
}

#[tokio::test]
async fn dispersion() {
    check(
        "datatable(x:real)[1, 2, 3, 4]
| summarize v = variance(x), vp = variancep(x), s = round(stdev(x), 6), sp = round(stdevp(x), 6)",
        &["v:real", "vp:real", "s:real", "sp:real"],
        &[&["1.6666666666666667", "1.25", "1.290994", "1.118034"]],
    )
    .await;
}

#[tokio::test]
async fn take_any_prefers_a_non_empty_value() {
    check(
        r#"datatable(k:string, v:string)["a", "", "a", "x", "b", "y"] | summarize take_any(v) by k"#,
        &["k:string", "v:string"],
        &[&["a", "x"], &["b", "y"]],
    )
    .await;
}

#[tokio::test]
async fn make_bag_merges_bags() {
    check(
        r#"datatable(b:dynamic)[dynamic({"a": 1}), dynamic({"b": 2})]
| summarize bag = make_bag(b)
| project k = array_sort_asc(bag_keys(bag)), a = bag.a"#,
        &["k:dynamic", "a:dynamic"],
        &[&[r#"["a","b"]"#, "1"]],
    )
    .await;
}

#[tokio::test]
async fn make_series_counts_per_hour() {
    check(
        r#"DeviceNetworkEvents
| where DeviceName == "ws-02"
| make-series n = count() on Timestamp from datetime(2024-03-06 09:00) to datetime(2024-03-06 12:00) step 1h"#,
        &["n:dynamic", "Timestamp:dynamic"],
        &[&[
            "[1,0,2]",
            r#"["2024-03-06T09:00:00Z","2024-03-06T10:00:00Z","2024-03-06T11:00:00Z"]"#,
        ]],
    )
    .await;
}

#[tokio::test]
async fn make_series_without_range_spans_the_data() {
    // ws-02's connections: 09:30, 11:01, 11:02, 16:30. The series start at the bin of the
    // first and end with the bin of the last.
    check(
        r#"DeviceNetworkEvents
| where DeviceName == "ws-02"
| make-series n = count() on Timestamp step 1h
| project n, First = Timestamp[0], Last = Timestamp[7], Bins = array_length(Timestamp)"#,
        &["n:dynamic", "First:dynamic", "Last:dynamic", "Bins:long"],
        &[&[
            "[1,0,2,0,0,0,0,1]",
            r#""2024-03-06T09:00:00Z""#,
            r#""2024-03-06T16:00:00Z""#,
            "8",
        ]],
    )
    .await;
}

#[tokio::test]
async fn make_series_with_only_from_counts_bins_from_it() {
    check(
        r#"DeviceNetworkEvents
| where DeviceName == "ws-02"
| make-series n = count() on Timestamp from datetime(2024-03-06 08:00) step 2h"#,
        &["n:dynamic", "Timestamp:dynamic"],
        &[&[
            "[1,2,0,0,1]",
            r#"["2024-03-06T08:00:00Z","2024-03-06T10:00:00Z","2024-03-06T12:00:00Z","2024-03-06T14:00:00Z","2024-03-06T16:00:00Z"]"#,
        ]],
    )
    .await;
}

#[tokio::test]
async fn make_series_by_key_with_default() {
    check(
        "DeviceProcessEvents
| make-series Total = sum(FileSize) default = -1 on Timestamp
    from datetime(2024-03-06 10:00) to datetime(2024-03-06 13:00) step 1h by DeviceName
| project DeviceName, Total",
        &["DeviceName:string", "Total:dynamic"],
        &[
            &["ws-01", "[737792,-1,-1]"],
            &["ws-02", "[-1,519680,-1]"],
            &["srv-01", "[-1,-1,117760]"],
        ],
    )
    .await;
}

#[tokio::test]
async fn group_by_computed_key() {
    check(
        "DeviceLogonEvents | summarize count() by Hour = hourofday(Timestamp)",
        &["Hour:int", "count_:long"],
        &[
            &["8", "2"],
            &["11", "4"],
            &["12", "1"],
            &["14", "2"],
            &["20", "1"],
        ],
    )
    .await;
}

#[tokio::test]
async fn arithmetic_over_aggregates() {
    check(
        r#"DeviceLogonEvents | summarize Pct = 100.0 * countif(ActionType == "LogonFailed") / count()"#,
        &["Pct:real"],
        &[&["50"]],
    )
    .await;
}

#[tokio::test]
async fn ports_per_process() {
    check(
        "DeviceNetworkEvents
| summarize Ports = array_sort_asc(make_set(RemotePort)), Connections = count() by InitiatingProcessFileName
| where Connections > 1",
        &["InitiatingProcessFileName:string", "Ports:dynamic", "Connections:long"],
        &[
            &["svchost.exe", "[53,445,50500]", "3"],
            &["powershell.exe", "[80,443]", "2"],
            &["certutil.exe", "[80,8080]", "2"],
            &["msedge.exe", "[443]", "2"],
        ],
    )
    .await;
}

#[tokio::test]
async fn summarize_by_only_is_distinct() {
    check(
        "DeviceProcessEvents | summarize by AccountDomain",
        &["AccountDomain:string"],
        &[&["CONTOSO"], &["NT AUTHORITY"], &[""]],
    )
    .await;
}

#[tokio::test]
async fn first_and_last_seen() {
    check(
        r#"DeviceProcessEvents | where DeviceName == "ws-02" | summarize FirstSeen = min(Timestamp), LastSeen = max(Timestamp)"#,
        &["FirstSeen:datetime", "LastSeen:datetime"],
        &[&["2024-03-05T09:00:00Z", "2024-03-06T16:00:00Z"]],
    )
    .await;
}

#[tokio::test]
async fn sum_of_int_is_long() {
    check(
        r#"DeviceNetworkEvents | where DeviceName == "ws-01" | summarize sum(RemotePort)"#,
        &["sum_RemotePort:long"],
        &[&["9048"]],
    )
    .await;
}

#[tokio::test]
async fn sumif_and_avgif() {
    check(
        r#"DeviceFileEvents
| summarize Created = sumif(FileSize, ActionType == "FileCreated"), AvgModified = avgif(FileSize, ActionType == "FileModified")"#,
        &["Created:long", "AvgModified:real"],
        &[&["1388032", "30720"]],
    )
    .await;
}

#[tokio::test]
async fn summarize_then_sort_and_take() {
    check_ordered(
        "DeviceProcessEvents | summarize Bytes = sum(FileSize) by AccountName | top 2 by Bytes",
        &["AccountName:string", "Bytes:long"],
        &[&["alice", "2126336"], &["bob", "948736"]],
    )
    .await;
}

#[tokio::test]
async fn count_distinct_and_make_list_if() {
    check(
        r#"DeviceProcessEvents
| summarize Users = count_distinct(AccountName),
            Nets = array_sort_asc(make_list_if(ProcessId, FileName == "net.exe"))"#,
        &["Users:long", "Nets:dynamic"],
        &[&["4", "[300,301]"]],
    )
    .await;
}

#[tokio::test]
async fn avg_of_timespans() {
    assert_eq!(
        scalar("datatable(d:timespan)[1h, 2h, 6h] | summarize avg(d)").await,
        "03:00:00"
    );
}

/// `dcount`, `dcountif` and `make_set` of strings with many groups and rows: enough that
/// the aggregation runs in a partial and a final phase (states cross between them),
/// checked against counts worked out here.
#[tokio::test]
async fn distinct_counts_and_string_sets_by_many_groups() {
    const ROWS: u64 = 200_000;
    const GROUPS: u64 = 1_000;
    let query = format!(
        "range x from 1 to {ROWS} step 1
| summarize d = dcount(x % 7), di = dcountif(tostring(x % 11), x % 2 == 0),
            dn = dcount(iff(x % 5 == 0, long(null), x % 13)),
            s = array_sort_asc(make_set(tostring(x % 3))), c = count() by g = x % {GROUPS}"
    );
    let mut expected: Vec<Vec<String>> = Vec::new();
    for g in 0..GROUPS {
        let xs: Vec<u64> = (1..=ROWS).filter(|x| x % GROUPS == g).collect();
        let distinct = |values: Vec<u64>| {
            let mut values = values;
            values.sort_unstable();
            values.dedup();
            values
        };
        let d = distinct(xs.iter().map(|x| x % 7).collect()).len();
        let di = distinct(xs.iter().filter(|x| *x % 2 == 0).map(|x| x % 11).collect()).len();
        let dn = distinct(xs.iter().filter(|x| *x % 5 != 0).map(|x| x % 13).collect()).len();
        let set: Vec<String> = distinct(xs.iter().map(|x| x % 3).collect())
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect();
        expected.push(vec![
            g.to_string(),
            d.to_string(),
            di.to_string(),
            dn.to_string(),
            format!("[{}]", set.join(",")),
            xs.len().to_string(),
        ]);
    }
    let expected: Vec<Vec<&str>> = expected
        .iter()
        .map(|row| row.iter().map(String::as_str).collect())
        .collect();
    let expected: Vec<&[&str]> = expected.iter().map(Vec::as_slice).collect();
    check(
        &query,
        &[
            "g:long",
            "d:long",
            "di:long",
            "dn:long",
            "s:dynamic",
            "c:long",
        ],
        &expected,
    )
    .await;
}

/// A group per row: DataFusion may stop aggregating in the partial phase and pass each
/// row on as a state of its own. Nulls and rows the condition rejects count nothing.
#[tokio::test]
async fn distinct_counts_and_string_sets_with_a_group_per_row() {
    check(
        "range x from 1 to 300000 step 1
| summarize d = dcount(iff(x % 3 == 0, long(null), x)),
            s = make_set_if(tostring(x), x % 2 == 0) by x
| summarize groups = count(), zeros = countif(d == 0), ones = countif(d == 1),
            empty = countif(array_length(s) == 0), single = countif(tostring(s[0]) == tostring(x))",
        &[
            "groups:long",
            "zeros:long",
            "ones:long",
            "empty:long",
            "single:long",
        ],
        &[&["300000", "100000", "200000", "150000", "150000"]],
    )
    .await;
}

#[tokio::test]
async fn string_sets_keep_escapes_and_their_cap() {
    check(
        r#"datatable(G:long, S:string)[1, "a\"b", 1, "a\"b", 1, "c\\d", 1, "", 2, "x", 2, "y", 2, "z"]
| summarize s = array_sort_asc(make_set(S)), capped = array_length(make_set(S, 2)) by G"#,
        &["G:long", "s:dynamic", "capped:long"],
        &[
            &["1", r#"["","a\"b","c\\d"]"#, "2"],
            &["2", r#"["x","y","z"]"#, "2"],
        ],
    )
    .await;
}

/// `arg_max`/`arg_min` with many groups: each group's row is the one with the largest
/// (smallest) key, null keys never win, checked against a search done here.
#[tokio::test]
async fn arg_max_and_arg_min_by_many_groups() {
    const ROWS: i64 = 200_000;
    const GROUPS: i64 = 997;
    let key = |x: i64| (x % 10 != 0).then_some((x * 7919) % 100_003);
    let query = format!(
        "range x from 1 to {ROWS} step 1
| extend k = iff(x % 10 == 0, long(null), (x * 7919) % 100003), t = datetime(2026-01-01) + x * 1s,
         a = x, b = x
| summarize arg_max(k, a), arg_min(t, b) by g = x % {GROUPS}
| project g, k, a, b"
    );
    let mut expected = Vec::new();
    for g in 0..GROUPS {
        let xs = (1..=ROWS).filter(|x| x % GROUPS == g);
        let (k, a) = xs
            .clone()
            .filter_map(|x| key(x).map(|k| (k, x)))
            .max()
            .expect("every group has keys");
        let b = xs.min().expect("every group has rows");
        expected.push(vec![
            g.to_string(),
            k.to_string(),
            a.to_string(),
            b.to_string(),
        ]);
    }
    let expected: Vec<Vec<&str>> = expected
        .iter()
        .map(|row| row.iter().map(String::as_str).collect())
        .collect();
    let expected: Vec<&[&str]> = expected.iter().map(Vec::as_slice).collect();
    check(&query, &["g:long", "k:long", "a:long", "b:long"], &expected).await;
}

/// A group per row (DataFusion may pass rows on as states): a row whose key is null is
/// still its group's row when it is the only one.
#[tokio::test]
async fn arg_max_with_a_group_per_row() {
    check(
        "range x from 1 to 300000 step 1
| extend k = iff(x % 3 == 0, long(null), x), a = x
| summarize arg_max(k, a) by x
| summarize groups = count(), own = countif(a == x), nulls = countif(isnull(k))",
        &["groups:long", "own:long", "nulls:long"],
        &[&["300000", "300000", "100000"]],
    )
    .await;
}
