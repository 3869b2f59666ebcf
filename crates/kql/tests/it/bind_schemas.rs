//! Output schemas (names and types, in order) of hunting queries over the Device*
//! tables: the naming rules of §4.0 and §7 and the typing rules of §2, end to end.

use crate::{bound_rel, columns};
use rampart_core::schema;

/// `name:type` for every column of a catalog table, minus `skip`.
fn table_columns(table: &str, skip: &[&str]) -> Vec<String> {
    let Some(table) = schema::table(table) else {
        panic!("no table {table}")
    };
    table
        .columns
        .iter()
        .filter(|c| !skip.contains(&c.name))
        .map(|c| format!("{}:{}", c.name, c.kql_type.name()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn filter_and_project_keep_column_types() {
    assert_eq!(
        columns(
            r#"DeviceProcessEvents
            | where Timestamp > ago(7d)
            | where FileName in~ ("powershell.exe", "pwsh.exe")
            | where ProcessCommandLine has_any ("-enc", "-EncodedCommand")
            | project Timestamp, DeviceName, AccountName, ProcessCommandLine, InitiatingProcessFileName
            | top 100 by Timestamp desc"#
        ),
        strings(&[
            "Timestamp:datetime",
            "DeviceName:string",
            "AccountName:string",
            "ProcessCommandLine:string",
            "InitiatingProcessFileName:string",
        ])
    );
}

#[test]
fn project_renames_computes_and_names_unnamed_columns() {
    assert_eq!(
        columns(
            r#"DeviceFileEvents
            | project Time = Timestamp, DeviceName, Path = strcat(FolderPath, @"\", FileName),
                      SizeKB = FileSize / 1024.0, tolower(FileName), parse_json(AdditionalFields).Sha.Value,
                      tostring(parse_json(AdditionalFields)["Zone"]), strlen(FileName), FileSize > 1000"#
        ),
        strings(&[
            "Time:datetime",
            "DeviceName:string",
            "Path:string",
            "SizeKB:real",
            "Column1:string",
            "AdditionalFields_Sha_Value:dynamic",
            "AdditionalFields_Zone:string",
            "strlen_FileName:long",
            "Column2:bool",
        ])
    );
}

#[test]
fn summarize_names_aggregates_after_their_argument() {
    assert_eq!(
        columns(
            r#"DeviceNetworkEvents
            | where ActionType == "ConnectionSuccess"
            | summarize count(), dcount(RemoteIP), sum(RemotePort), avg(RemotePort), make_set(RemoteUrl),
                        make_list(LocalPort), max(Timestamp), countif(RemotePort == 443), min(RemoteIP)
                by DeviceName, bin(Timestamp, 1h)"#
        ),
        strings(&[
            "DeviceName:string",
            "Timestamp:datetime",
            "count_:long",
            "dcount_RemoteIP:long",
            "sum_RemotePort:long",
            "avg_RemotePort:real",
            "set_RemoteUrl:dynamic",
            "list_LocalPort:dynamic",
            "max_Timestamp:datetime",
            "countif_:long",
            "min_RemoteIP:string",
        ])
    );
}

#[test]
fn summarize_collisions_and_unnamed_arguments_get_suffixes() {
    assert_eq!(
        columns(
            "DeviceFileEvents | summarize count(), count(), sum(FileSize * 2), dcount(tolower(FileName)), Total = count() by DeviceName"
        ),
        strings(&[
            "DeviceName:string",
            "count_:long",
            "count_1:long",
            "sum_:long",
            "dcount_:long",
            "Total:long",
        ])
    );
    // Conversions take their argument's name (§7: `sum(toint(Bytes))` -> `sum_Bytes`).
    assert_eq!(
        columns("DeviceFileEvents | summarize sum(toint(FileSize)), avg(todouble(FileSize))"),
        strings(&["sum_FileSize:long", "avg_FileSize:real"])
    );
    // `summarize by` alone is distinct.
    assert_eq!(
        columns("DeviceLogonEvents | summarize by AccountDomain, AccountName"),
        strings(&["AccountDomain:string", "AccountName:string"])
    );
}

#[test]
fn summarize_arithmetic_over_aggregates() {
    assert_eq!(
        columns(
            r#"DeviceLogonEvents
            | summarize Failures = countif(ActionType == "LogonFailed"), Total = count(),
                        FailPct = 100.0 * countif(ActionType == "LogonFailed") / count(), count() * 2
                by DeviceName
            | extend Rate = todouble(Failures) / Total
            | where FailPct > 50"#
        ),
        strings(&[
            "DeviceName:string",
            "Failures:long",
            "Total:long",
            "FailPct:real",
            "Column1:long",
            "Rate:real",
        ])
    );
}

#[test]
fn arg_max_star_expands_to_the_other_columns() {
    let mut expected = strings(&["DeviceId:string", "Timestamp:datetime"]);
    expected.extend(table_columns("DeviceInfo", &["DeviceId", "Timestamp"]));
    assert_eq!(
        columns("DeviceInfo | summarize arg_max(Timestamp, *) by DeviceId"),
        expected
    );
    // Without keys the maximised column comes first, then every other column (E10).
    let mut expected = strings(&["Timestamp:datetime"]);
    expected.extend(table_columns("DeviceNetworkInfo", &["Timestamp"]));
    assert_eq!(
        columns("DeviceNetworkInfo | summarize arg_min(Timestamp, *)"),
        expected
    );
}

#[test]
fn arg_max_with_explicit_columns_and_names() {
    // An explicit column equal to a key gets a suffix (§7).
    assert_eq!(
        columns(
            "DeviceLogonEvents | summarize arg_max(Timestamp, DeviceName, AccountName, tolower(LogonType)) by DeviceName"
        ),
        strings(&[
            "DeviceName:string",
            "Timestamp:datetime",
            "DeviceName1:string",
            "AccountName:string",
            "Column1:string",
        ])
    );
    assert_eq!(
        columns(
            "DeviceLogonEvents | summarize (LastSeen, LastAccount) = arg_max(Timestamp, AccountName), FirstSeen = arg_min(Timestamp, RemoteIP) by DeviceId"
        ),
        strings(&[
            "DeviceId:string",
            "LastSeen:datetime",
            "LastAccount:string",
            "FirstSeen:datetime",
            "RemoteIP:string",
        ])
    );
    // Named arguments name the returned columns (§7).
    assert_eq!(
        columns(
            "DeviceLogonEvents | summarize arg_max(Last = Timestamp, Acct = AccountName, RemoteIP) by DeviceId"
        ),
        strings(&[
            "DeviceId:string",
            "Last:datetime",
            "Acct:string",
            "RemoteIP:string",
        ])
    );
    // Two arg_max(*) in one summarize: the second expansion repeats nothing already output.
    assert_eq!(
        columns(
            "datatable(Host:string, Time:datetime, Proc:string)[] | summarize arg_max(Time, *), arg_min(Time, *) by Host"
        ),
        strings(&[
            "Host:string",
            "Time:datetime",
            "Proc:string",
            "Time1:datetime",
        ])
    );
}

#[test]
fn percentiles_take_any_and_legacy_aggregates() {
    assert_eq!(
        columns(
            "DeviceFileEvents | summarize percentile(FileSize, 95), percentiles(FileSize, 50, 99.9), take_any(FolderPath), take_any(SHA1, MD5) by DeviceName"
        ),
        strings(&[
            "DeviceName:string",
            "percentile_FileSize_95:long",
            "percentile_FileSize_50:long",
            "percentile_FileSize_99_9:long",
            "FolderPath:string",
            "SHA1:string",
            "MD5:string",
        ])
    );
    assert_eq!(
        columns(
            "DeviceProcessEvents | summarize makeset(FileName), makelist(ProcessId), any(AccountName), argmax(Timestamp, FileName), count(IsProcessRemoteSession), cnt() by DeviceName"
        ),
        strings(&[
            "DeviceName:string",
            "set_FileName:dynamic",
            "list_ProcessId:dynamic",
            "any_AccountName:string",
            "max_Timestamp:datetime",
            "max_Timestamp_FileName:string",
            "countif_:long",
            "count_:long",
        ])
    );
    assert_eq!(
        columns(
            "DeviceFileEvents | summarize stdev(FileSize), variance(FileSize), make_bag(parse_json(AdditionalFields)), count_distinct(SHA1), take_any(*) by DeviceId"
        )[..5],
        strings(&[
            "DeviceId:string",
            "stdev_FileSize:real",
            "variance_FileSize:real",
            "bag_AdditionalFields:dynamic",
            "count_distinct_SHA1:long",
        ])[..]
    );
}

#[test]
fn count_and_distinct() {
    assert_eq!(
        columns(r#"DeviceLogonEvents | where ActionType == "LogonFailed" | count"#),
        strings(&["Count:long"])
    );
    assert_eq!(
        columns("DeviceLogonEvents | distinct AccountName, DeviceName"),
        strings(&["AccountName:string", "DeviceName:string"])
    );
    assert_eq!(
        columns("DeviceNetworkInfo | distinct *").len(),
        table_columns("DeviceNetworkInfo", &[]).len()
    );
}

#[test]
fn join_suffixes_colliding_right_columns() {
    let query = r#"DeviceProcessEvents
        | where FileName =~ "rundll32.exe"
        | project DeviceId, ProcessId, Timestamp, FileName
        | join kind=KIND (DeviceNetworkEvents | project DeviceId, InitiatingProcessId, RemoteIP, Timestamp)
            on DeviceId, $left.ProcessId == $right.InitiatingProcessId"#;
    let combined = strings(&[
        "DeviceId:string",
        "ProcessId:long",
        "Timestamp:datetime",
        "FileName:string",
        "DeviceId1:string",
        "InitiatingProcessId:long",
        "RemoteIP:string",
        "Timestamp1:datetime",
    ]);
    for kind in [
        "inner",
        "innerunique",
        "leftouter",
        "rightouter",
        "fullouter",
    ] {
        assert_eq!(columns(&query.replace("KIND", kind)), combined, "{kind}");
    }
    for kind in ["leftsemi", "leftanti", "anti"] {
        assert_eq!(
            columns(&query.replace("KIND", kind)),
            combined[..4],
            "{kind}"
        );
    }
    for kind in ["rightsemi", "rightanti"] {
        assert_eq!(
            columns(&query.replace("KIND", kind)),
            strings(&[
                "DeviceId:string",
                "InitiatingProcessId:long",
                "RemoteIP:string",
                "Timestamp:datetime",
            ]),
            "{kind}"
        );
    }
    // Default kind, key by name, a second collision round (`Key1` taken -> `Key2`).
    assert_eq!(
        columns(
            "datatable(Key:string, Key1:long)[] | join (datatable(Key:string, B:long)[]) on Key"
        ),
        strings(&["Key:string", "Key1:long", "Key2:string", "B:long"])
    );
}

#[test]
fn lookup_drops_the_right_keys() {
    assert_eq!(
        columns(
            r#"DeviceNetworkEvents
            | project RemoteIP, DeviceName, RemotePort
            | lookup (datatable(Ip:string, Owner:string, DeviceName:string)["10.0.0.1", "HR", "h"]) on $left.RemoteIP == $right.Ip"#
        ),
        strings(&[
            "RemoteIP:string",
            "DeviceName:string",
            "RemotePort:int",
            "Owner:string",
            "DeviceName1:string",
        ])
    );
    assert_eq!(
        columns(
            r#"DeviceNetworkEvents | project RemoteIP | lookup kind=inner (datatable(RemoteIP:string, Owner:string)[]) on RemoteIP"#
        ),
        strings(&["RemoteIP:string", "Owner:string"])
    );
}

#[test]
fn union_withsource_splits_columns_by_type() {
    assert_eq!(
        columns(
            r#"union withsource=SourceTable
                (DeviceProcessEvents | project Timestamp, DeviceName, Port = ProcessId),
                (DeviceNetworkEvents | project Timestamp, DeviceName, Port = RemotePort, RemoteIP)"#
        ),
        strings(&[
            "SourceTable:string",
            "Timestamp:datetime",
            "DeviceName:string",
            "Port_long:long",
            "Port_int:int",
            "RemoteIP:string",
        ])
    );
    // kind=inner keeps the (name, type) pairs every leg has, in the first leg's order.
    assert_eq!(
        columns(
            r#"union kind=inner
                (DeviceProcessEvents | project Timestamp, DeviceName, Port = ProcessId),
                (DeviceNetworkEvents | project DeviceName, Timestamp, Port = RemotePort)"#
        ),
        strings(&["Timestamp:datetime", "DeviceName:string"])
    );
}

#[test]
fn union_wildcards_expand_to_catalog_tables() {
    let rel = bound_rel("union withsource=T Device*Info | project T");
    let rampart_kql::bind::RelKind::Project { input, .. } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    let rampart_kql::bind::RelKind::Union { inputs } = &input.kind else {
        panic!("{:?}", input.kind)
    };
    let labels: Vec<String> = inputs
        .iter()
        .map(|leg| match &leg.kind {
            rampart_kql::bind::RelKind::Project { exprs, .. } => match &exprs[0].kind {
                rampart_kql::bind::BoundExprKind::Literal(rampart_kql::ast::Literal::String(s)) => {
                    s.clone()
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        labels,
        [
            "DeviceInfo",
            "DeviceNetworkInfo",
            "DeviceFileCertificateInfo"
        ]
    );
    // Every leg has exactly the union's schema.
    for leg in inputs {
        assert_eq!(leg.schema, input.schema);
    }
    // Piped input first; subquery legs are named by position.
    let rel = bound_rel(
        "DeviceInfo | project DeviceId | union withsource=S (DeviceNetworkInfo | project DeviceId, MacAddress)",
    );
    assert_eq!(
        rel.schema
            .pairs()
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        ["S", "DeviceId", "MacAddress"]
    );
}

#[test]
fn mv_expand_types_and_item_index() {
    assert_eq!(
        columns(
            r#"DeviceProcessEvents
            | extend Args = split(ProcessCommandLine, " ")
            | mv-expand with_itemindex=Position Arg = Args to typeof(string)
            | project DeviceName, Arg, Position, Args"#
        ),
        strings(&[
            "DeviceName:string",
            "Arg:string",
            "Position:long",
            "Args:dynamic",
        ])
    );
    // A column expands in place; without `to typeof` it stays dynamic.
    let expanded = columns(
        "DeviceInfo | project DeviceName, Users = parse_json(LoggedOnUsers), OSBuild | mv-expand Users",
    );
    assert_eq!(
        expanded,
        strings(&["DeviceName:string", "Users:dynamic", "OSBuild:long"])
    );
    assert_eq!(
        columns(
            "DeviceInfo | project DeviceName, Tags = split(DeviceManualTags, ',') | mv-expand Tags to typeof(string), Ids = pack_array(1, 2) to typeof(long)"
        ),
        strings(&["DeviceName:string", "Tags:string", "Ids:long"])
    );
}

#[test]
fn parse_adds_typed_columns() {
    let mut expected = table_columns("DeviceEvents", &[]);
    expected.extend(strings(&["Command:string", "Pid:long", "Elevated:bool"]));
    assert_eq!(
        columns(
            r#"DeviceEvents
            | where ActionType == "PowerShellCommand"
            | parse AdditionalFields with * '"Command":"' Command '","Pid":' Pid:long ',"Elevated":' Elevated:bool '}'"#
        ),
        expected
    );
    // A capture named like an existing column replaces it in place.
    assert_eq!(
        columns(
            r#"DeviceNetworkEvents | project RemoteUrl, Port = "" | parse-where kind=regex RemoteUrl with @"https?://" Host @":" Port:int"#
        ),
        strings(&["RemoteUrl:string", "Port:int", "Host:string"])
    );
}

#[test]
fn extend_replaces_in_place_and_appends() {
    assert_eq!(
        columns(
            r#"DeviceProcessEvents
            | extend Hour = hourofday(Timestamp), Day = startofday(Timestamp), Age = now() - ProcessCreationTime,
                     Ratio = FileSize * 1.5, Hour2 = Hour * 2, FileName = toupper(FileName), tostring(ProcessId)
            | project-keep FileName, Hour, Day, Age, Ratio, Hour2, ProcessId*"#
        ),
        strings(&[
            "FileName:string",
            "ProcessId:long",
            "Hour:int",
            "Day:datetime",
            "Age:timespan",
            "Ratio:real",
            "Hour2:long",
            "ProcessId1:string",
        ])
    );
}

#[test]
fn project_away_keep_rename_reorder() {
    let base = "DeviceNetworkInfo | project-away Network*, *Dhcp, Tunnel*";
    assert_eq!(
        columns(base),
        strings(&[
            "Timestamp:datetime",
            "DeviceId:string",
            "DeviceName:string",
            "MacAddress:string",
            "ConnectedNetworks:string",
            "DnsAddresses:string",
            "DefaultGateways:string",
            "IPAddresses:string",
            "ReportId:long",
            "OnboardingStatus:string",
        ])
    );
    assert_eq!(
        columns(&format!("{base} | project-keep Device*, *Id")),
        strings(&["DeviceId:string", "DeviceName:string", "ReportId:long"])
    );
    assert_eq!(
        columns(&format!(
            "{base} | project-keep Device*, *Id | project-rename Host = DeviceName, Id = DeviceId"
        )),
        strings(&["Id:string", "Host:string", "ReportId:long"])
    );
    assert_eq!(
        columns(&format!(
            "{base} | project-keep Device*, *Id, Timestamp | project-reorder ReportId, Device* desc"
        )),
        strings(&[
            "ReportId:long",
            "DeviceName:string",
            "DeviceId:string",
            "Timestamp:datetime",
        ])
    );
    assert_eq!(
        columns("datatable(a10:long, a2:long, b:long, a1:long)[] | project-reorder a* granny-asc"),
        strings(&["a1:long", "a2:long", "a10:long", "b:long"])
    );
}

#[test]
fn sort_serialize_and_window_functions() {
    assert_eq!(
        columns(
            "DeviceLogonEvents | sort by Timestamp asc | extend Prev = prev(Timestamp), Rn = row_number(), Next = next(AccountName, 1, \"\") | project Rn, Prev, Gap = Timestamp - Prev, Next"
        ),
        strings(&["Rn:long", "Prev:datetime", "Gap:timespan", "Next:string",])
    );
    assert_eq!(
        columns(
            "DeviceLogonEvents | summarize n = count() by AccountName | serialize Rank = row_number(), Running = row_cumsum(n) | take 5"
        ),
        strings(&["AccountName:string", "n:long", "Rank:long", "Running:long",])
    );
}

#[test]
fn getschema_describes_the_input() {
    assert_eq!(
        columns("DeviceNetworkInfo | project DeviceName, ReportId | getschema"),
        strings(&[
            "ColumnName:string",
            "ColumnOrdinal:int",
            "DataType:string",
            "ColumnType:string",
        ])
    );
    let rel = bound_rel("DeviceNetworkInfo | getschema");
    let rampart_kql::bind::RelKind::Values { rows } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    assert_eq!(rows.len(), 18);
    let cells: Vec<String> = rows[14]
        .iter()
        .map(|cell| match &cell.kind {
            rampart_kql::bind::BoundExprKind::Literal(l) => format!("{l:?}"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        cells,
        [
            r#"String("ReportId")"#,
            "Int(14)",
            r#"String("System.Int64")"#,
            r#"String("long")"#
        ]
    );
}

#[test]
fn datatable_print_range() {
    assert_eq!(
        columns(
            r#"datatable(Name:string, Score:real, When:datetime, Tags:dynamic)
                ["a", 1, datetime(2024-01-01), dynamic(["x"]), "b", -2.5, datetime(null), dynamic(null)]"#
        ),
        strings(&["Name:string", "Score:real", "When:datetime", "Tags:dynamic",])
    );
    assert_eq!(
        columns("print 1, x = 2, 3, strlen(\"abc\")"),
        strings(&["print_0:long", "x:long", "print_2:long", "print_3:long"])
    );
    assert_eq!(
        columns("range Day from ago(7d) to now() step 1d"),
        strings(&["Day:datetime"])
    );
    assert_eq!(
        columns("range n from 1 to 10 step 2 | extend half = n / 2.0"),
        strings(&["n:long", "half:real"])
    );
}

#[test]
fn scalar_typing_rules() {
    assert_eq!(
        columns(
            "print a = datetime(2024-01-01) - datetime(2023-12-31), b = 1d / 1h, c = now() + 1h, d = 2 * 1h, e = int(1) + int(2), f = int(1) + 2, g = 1 + 2.5, h = decimal(1.5) * 2, i = 7 % 2, j = -1h, k = 1h % 7m"
        ),
        strings(&[
            "a:timespan",
            "b:real",
            "c:datetime",
            "d:timespan",
            "e:int",
            "f:long",
            "g:real",
            "h:decimal",
            "i:long",
            "j:timespan",
            "k:timespan",
        ])
    );
    assert_eq!(
        columns(
            r#"print x = iff(true, 1, 2.5), y = case(false, "a", true, "b", "c"), z = coalesce(int(1), 2),
                     w = iif(false, dynamic(1), 2), v = max_of(1, 2.0, int(3)), u = bin(1h + 1m, 1h), t = bin(7, 2.5),
                     s = extract(@"(\d+)", 1, "a12", typeof(long)), r = extract(@"(\d+)", 1, "a12"), q = dayofweek(now()),
                     p = rand(), o = rand(10), n = round(2.5), m = datetime_part("year", now())"#
        ),
        strings(&[
            "x:real",
            "y:string",
            "z:long",
            "w:dynamic",
            "v:real",
            "u:timespan",
            "t:long",
            "s:long",
            "r:string",
            "q:timespan",
            "p:real",
            "o:long",
            "n:real",
            "m:int",
        ])
    );
}

#[test]
fn dynamic_values_compare_and_compute() {
    assert_eq!(
        columns(
            r#"DeviceEvents
            | extend AF = parse_json(AdditionalFields)
            | where AF.Command has "Invoke-Mimikatz" and AF.Count > 3 and AF["Remote"] == true
            | extend Total = AF.Count + 1, Cmd = tostring(AF.Command), First = AF.Items[0]
            | project Total, Cmd, First, AF_Count = AF.Count * 1.0"#
        ),
        strings(&[
            "Total:dynamic",
            "Cmd:string",
            "First:dynamic",
            "AF_Count:dynamic",
        ])
    );
}

#[test]
fn make_series_bag_unpack_and_search() {
    assert_eq!(
        columns(
            "DeviceNetworkEvents | make-series Conns = count() default = 0, avg(RemotePort) on Timestamp from ago(7d) to now() step 1h by DeviceName"
        ),
        strings(&[
            "DeviceName:string",
            "Conns:dynamic",
            "avg_RemotePort:dynamic",
            "Timestamp:dynamic",
        ])
    );
    // Without a declared schema the unpacked columns are found at run time.
    assert_eq!(
        columns(
            "DeviceEvents | project DeviceName, AF = parse_json(AdditionalFields) | evaluate bag_unpack(AF) | project DeviceName, Command, Len = strlen(tostring(Command))"
        ),
        strings(&["DeviceName:string", "Command:dynamic", "Len:long"])
    );
    assert_eq!(
        columns(
            "DeviceEvents | project DeviceName, AF = parse_json(AdditionalFields) | evaluate bag_unpack(AF) : (DeviceName:string, Command:string, Pid:long)"
        ),
        strings(&["DeviceName:string", "Command:string", "Pid:long"])
    );
    let searched = columns(r#"search in (DeviceProcessEvents, DeviceImageLoad*) "mimikatz""#);
    assert_eq!(searched[0], "$table:string");
    assert_eq!(searched[1], "Timestamp:datetime");
    assert_eq!(
        columns(r#"DeviceProcessEvents | search "mimi*" and FileName:"*.exe""#),
        table_columns("DeviceProcessEvents", &[])
    );
}

#[test]
fn mv_apply_runs_a_subquery_per_row() {
    assert_eq!(
        columns(
            "datatable(Id:long, Values:dynamic)[1, dynamic([1, 2])] | mv-apply v = Values to typeof(long) on (summarize Total = sum(v), Top = max(v))"
        ),
        strings(&["Id:long", "Values:dynamic", "Total:long", "Top:long"])
    );
    assert_eq!(
        columns(
            "datatable(Id:long, Values:dynamic)[1, dynamic([1, 2])] | mv-apply with_itemindex=i Values to typeof(long) on (top 1 by Values | extend Doubled = Values * 2)"
        ),
        strings(&["Id:long", "Values:long", "i:long", "Doubled:long"])
    );
}
