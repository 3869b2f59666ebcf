//! Scalar functions end to end: strings, conversions, conditionals, dates, IP addresses,
//! hashes and math. Expected values by hand (hash vectors are the standard "abc" ones).

use crate::hunt_data::{check, check_ordered, scalar};

#[tokio::test]
async fn string_functions() {
    check(
        r#"print a = strlen("héllo"), b = tolower("ABC"), c = toupper("abc"),
      d = substring("abcdef", 2, 3), e = substring("abcdef", -2),
      f = strcat("a", 1, true), g = strcat_delim("-", "a", "b"),
      h = replace_string("a.b.c", ".", "/"), i = reverse("abc"),
      j = indexof("abcabc", "c", 3), k = countof("aaaa", "aa"), l = countof("aaaa", "aa", "regex")"#,
        &[
            "a:long", "b:string", "c:string", "d:string", "e:string", "f:string", "g:string",
            "h:string", "i:string", "j:long", "k:long", "l:long",
        ],
        &[&["5", "abc", "ABC", "cde", "ef", "a1true", "a-b", "a/b/c", "cba", "5", "3", "2"]],
    )
    .await;
}

#[tokio::test]
async fn hash_is_kustos_xxhash64() {
    // The values of Kusto's own documentation for hash().
    check(
        r#"print a = hash("World"), b = hash("World", 100), c = hash("Hello", 100)"#,
        &["a:long", "b:long", "c:long"],
        &[&["1846988464401551951", "51", "28"]],
    )
    .await;
}

#[tokio::test]
async fn regex_trim_and_translate() {
    check(
        r##"print a = replace_regex("user=bob;user=amy", @"user=(\w+)", @"<\1>"),
      b = trim(@"\s+", "  x  "), c = trim_start("0", "000120"), d = trim_end(@"\.", "a.b.."),
      e = translate("ab", "xy", "aabbc"), f = replace(@"\d", "#", "a1b22")"##,
        &[
            "a:string", "b:string", "c:string", "d:string", "e:string", "f:string",
        ],
        &[&["<bob>;<amy>", "x", "120", "a.b", "xxyyc", "a#b##"]],
    )
    .await;
}

#[tokio::test]
async fn conversions() {
    check(
        r#"print a = tostring(1.5), b = tostring(2.0), c = tostring(datetime(2024-03-06 10:07)),
      d = tostring(90m), e = toint("42"), f = tolong("x"), g = toreal("2.5"), h = toint(2.9),
      i = tobool("TRUE"), j = todatetime("2024-03-06 10:00"), k = totimespan("01:30:00"),
      l = tostring(long(null))"#,
        &[
            "a:string",
            "b:string",
            "c:string",
            "d:string",
            "e:int",
            "f:long",
            "g:real",
            "h:int",
            "i:bool",
            "j:datetime",
            "k:timespan",
            "l:string",
        ],
        &[&[
            "1.5",
            "2",
            "2024-03-06T10:07:00Z",
            "01:30:00",
            "42",
            "null",
            "2.5",
            "2",
            "true",
            "2024-03-06T10:00:00Z",
            "01:30:00",
            "",
        ]],
    )
    .await;
}

#[tokio::test]
async fn case_and_iff_classify_connections() {
    check(
        r#"DeviceNetworkEvents
| extend Kind = case(RemotePort == 443, "https", RemotePort == 80, "http", RemotePort == 53, "dns", "other"),
         Private = iff(ipv4_is_private(RemoteIP), "yes", "no")
| summarize count() by Kind, Private"#,
        &["Kind:string", "Private:string", "count_:long"],
        &[
            &["other", "yes", "2"],
            &["http", "no", "2"],
            &["https", "no", "2"],
            &["other", "no", "1"],
            &["dns", "yes", "1"],
            &["https", "yes", "1"],
            &["dns", "no", "1"],
        ],
    )
    .await;
}

#[tokio::test]
async fn emptiness_and_coalesce() {
    check(
        r#"print a = coalesce("", "x"), b = coalesce(long(null), 5), c = isempty(""), d = isnull(""),
      e = isnotempty("a"), f = isempty(long(null)), g = isnotnull(5)"#,
        &["a:string", "b:long", "c:bool", "d:bool", "e:bool", "f:bool", "g:bool"],
        &[&["x", "5", "true", "false", "true", "true", "true"]],
    )
    .await;
}

#[tokio::test]
async fn calendar_functions() {
    check(
        r#"print a = startofday(datetime(2024-03-06 10:07)), b = endofday(datetime(2024-03-06)),
      c = startofmonth(datetime(2024-03-06)), d = dayofweek(datetime(2024-03-06)),
      e = hourofday(datetime(2024-03-06 10:07)),
      f = format_datetime(datetime(2024-03-06 13:05:09), "yyyy-MM-dd HH:mm:ss"),
      g = datetime_add("month", 1, datetime(2024-01-31)), h = getmonth(datetime(2024-03-06)),
      i = dayofyear(datetime(2024-03-06)), j = week_of_year(datetime(2024-03-06)),
      k = startofyear(datetime(2024-03-06)), l = endofmonth(datetime(2024-02-10))"#,
        &[
            "a:datetime",
            "b:datetime",
            "c:datetime",
            "d:timespan",
            "e:int",
            "f:string",
            "g:datetime",
            "h:int",
            "i:int",
            "j:int",
            "k:datetime",
            "l:datetime",
        ],
        &[&[
            "2024-03-06T00:00:00Z",
            "2024-03-06T23:59:59.9999999Z",
            "2024-03-01T00:00:00Z",
            "3.00:00:00",
            "10",
            "2024-03-06 13:05:09",
            "2024-02-29T00:00:00Z",
            "3",
            "66",
            "10",
            "2024-01-01T00:00:00Z",
            "2024-02-29T23:59:59.9999999Z",
        ]],
    )
    .await;
}

#[tokio::test]
async fn reference_e20_datetime_diff() {
    check(
        "print a = datetime_diff('day', datetime(2024-03-02 00:01), datetime(2024-03-01 23:59)),
      b = datetime_diff('month', datetime(2024-01-01), datetime(2023-12-31)),
      c = datetime_diff('hour', datetime(2024-01-01 10:00), datetime(2024-01-01 12:30))",
        &["a:long", "b:long", "c:long"],
        &[&["1", "1", "-2"]],
    )
    .await;
}

#[tokio::test]
async fn ipv4_functions() {
    check(
        r#"print a = ipv4_is_private("10.1.2.3"), b = ipv4_is_private("8.8.8.8"),
      c = ipv4_is_in_range("192.168.1.77", "192.168.1.0/24"), d = parse_ipv4("10.0.0.1"),
      e = ipv4_compare("10.0.0.1", "10.0.0.2"), f = ipv4_is_match("10.0.0.1", "10.0.0.200", 24),
      g = ipv4_is_private("not an ip"), h = format_ipv4("192.168.1.77", 24)"#,
        &[
            "a:bool", "b:bool", "c:bool", "d:long", "e:int", "f:bool", "g:bool", "h:string",
        ],
        &[&[
            "true",
            "false",
            "true",
            "167772161",
            "-1",
            "true",
            "null",
            "192.168.1.0",
        ]],
    )
    .await;
}

#[tokio::test]
async fn public_destinations() {
    check(
        "DeviceNetworkEvents | where not(ipv4_is_private(RemoteIP)) | distinct RemoteIP",
        &["RemoteIP:string"],
        &[&["203.0.113.10"], &["198.51.100.7"], &["8.8.8.8"]],
    )
    .await;
}

#[tokio::test]
async fn addresses_in_any_range() {
    check(
        r#"DeviceNetworkEvents
| where ipv4_is_in_any_range(RemoteIP, "203.0.113.0/24", dynamic(["8.8.8.0/24"]))
| project RemotePort"#,
        &["RemotePort:int"],
        &[&["80"], &["443"], &["53"]],
    )
    .await;
}

#[tokio::test]
async fn hashes_and_base64() {
    check(
        r#"print a = hash_sha256("abc"), b = hash_md5("abc"), c = base64_encode_tostring("hello"),
      d = base64_decode_tostring("aGVsbG8="), e = hash_sha1("abc")"#,
        &["a:string", "b:string", "c:string", "d:string", "e:string"],
        &[&[
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "900150983cd24fb0d6963f7d28e17f72",
            "aGVsbG8=",
            "hello",
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ]],
    )
    .await;
}

#[tokio::test]
async fn decode_an_encoded_command() {
    // SQBFAFgA is "IEX" in UTF-16LE: six bytes, valid UTF-8 with NULs in between.
    check(
        r#"DeviceProcessEvents
| where ProcessCommandLine has "-EncodedCommand"
| extend Enc = extract(@"-EncodedCommand\s+(\S+)", 1, ProcessCommandLine)
| project Enc, Len = strlen(base64_decode_tostring(Enc))"#,
        &["Enc:string", "Len:long"],
        &[&["SQBFAFgA", "6"]],
    )
    .await;
}

#[tokio::test]
async fn path_and_url_parts() {
    check(
        r#"DeviceFileEvents
| where FileName == "x.dll"
| extend P = parse_path(FolderPath), U = parse_url(FileOriginUrl)
| project Dir = tostring(P.DirectoryName), Ext = tostring(P.Extension), Host = tostring(U.Host), Scheme = tostring(U.Scheme)"#,
        &["Dir:string", "Ext:string", "Host:string", "Scheme:string"],
        &[&["Temp", "dll", "evil.example.com", "http"]],
    )
    .await;
}

#[tokio::test]
async fn math_functions() {
    check(
        "print a = round(1.25, 1), b = abs(-3), c = pow(2, 10), d = sqrt(16.0), e = ceiling(1.2),
      f = max_of(1, 5, 3), g = min_of(2.5, 1.5), h = 7 / 2, i = 7 % 3, j = -7 / 2, k = 1 / 0, l = exp2(3)",
        &[
            "a:real", "b:long", "c:real", "d:real", "e:real", "f:long", "g:real", "h:long", "i:long",
            "j:long", "k:long", "l:real",
        ],
        &[&["1.3", "3", "1024", "4", "2", "5", "1.5", "3", "1", "-3", "null", "8"]],
    )
    .await;
}

#[tokio::test]
async fn epochs_and_constructed_times() {
    check(
        "print a = unixtime_seconds_todatetime(1709719620), b = make_datetime(2024, 3, 6, 10, 7, 0),
      c = make_timespan(1, 30), d = unixtime_milliseconds_todatetime(1709719620500)",
        &["a:datetime", "b:datetime", "c:timespan", "d:datetime"],
        &[&[
            "2024-03-06T10:07:00Z",
            "2024-03-06T10:07:00Z",
            "01:30:00",
            "2024-03-06T10:07:00.5Z",
        ]],
    )
    .await;
}

#[tokio::test]
async fn bins_of_numbers_and_timespans() {
    check(
        r#"print a = format_timespan(90m, "hh:mm"), b = bin(17, 5), c = bin(4.7, 0.5), d = bin(2h + 5m, 1h),
      e = bin_at(datetime(2024-03-06 10:07), 1h, datetime(2024-03-06 09:30))"#,
        &["a:string", "b:long", "c:real", "d:timespan", "e:datetime"],
        &[&["01:30", "15", "4.5", "02:00:00", "2024-03-06T09:30:00Z"]],
    )
    .await;
}

#[tokio::test]
async fn url_encoding() {
    check(
        r#"print a = url_encode("a b&c"), b = url_decode("a%20b%26c")"#,
        &["a:string", "b:string"],
        &[&["a+b%26c", "a b&c"]],
    )
    .await;
}

#[tokio::test]
async fn now_and_ago_follow_query_now() {
    check(
        "print a = now(), b = ago(1h), c = now(-1d)",
        &["a:datetime", "b:datetime", "c:datetime"],
        &[&[
            "2024-03-07T00:00:00Z",
            "2024-03-06T23:00:00Z",
            "2024-03-06T00:00:00Z",
        ]],
    )
    .await;
}

#[tokio::test]
async fn recent_logons() {
    assert_eq!(
        scalar("DeviceLogonEvents | where Timestamp > ago(12h) | count").await,
        "3"
    );
}

#[tokio::test]
async fn has_ipv4_finds_addresses_in_text() {
    check(
        r#"DeviceProcessEvents | where has_ipv4(ProcessCommandLine, "198.51.100.7") | project ProcessId"#,
        &["ProcessId:long"],
        &[&["102"]],
    )
    .await;
}

#[tokio::test]
async fn gettype_names() {
    check(
        r#"print a = gettype(1), b = gettype("x"), c = gettype(dynamic([1])), d = gettype(dynamic({"a": 1})),
      e = gettype(1.5), f = gettype(dynamic(null))"#,
        &["a:string", "b:string", "c:string", "d:string", "e:string", "f:string"],
        &[&["long", "string", "array", "dictionary", "real", "null"]],
    )
    .await;
}

#[tokio::test]
async fn command_line_arguments() {
    check(
        r#"print args = parse_command_line(@'"C:\Program Files\a.exe" -x "a b"', "windows")"#,
        &["args:dynamic"],
        &[&[r#"["C:\\Program Files\\a.exe","-x","a b"]"#]],
    )
    .await;
}

#[tokio::test]
async fn comparison_helpers() {
    check(
        r#"print a = strcmp("a", "b"), b = strrep("ab", 3, "-"), c = indexof("hello", "z")"#,
        &["a:int", "b:string", "c:long"],
        &[&["-1", "ab-ab-ab", "-1"]],
    )
    .await;
}

#[tokio::test]
async fn encoded_powershell_by_regex() {
    check(
        r#"DeviceProcessEvents
| where FileName =~ "powershell.exe" and ProcessCommandLine matches regex @"(?i)-e(nc|ncodedcommand)?\s"
| project ProcessId"#,
        &["ProcessId:long"],
        &[&["101"]],
    )
    .await;
}

#[tokio::test]
async fn strcat_builds_identifiers() {
    check(
        r#"DeviceProcessEvents
| where FileName == "net.exe"
| project Id = strcat(DeviceName, ":", ProcessId)"#,
        &["Id:string"],
        &[&["srv-01:300"], &["srv-01:301"]],
    )
    .await;
}

#[tokio::test]
async fn hashes_of_columns() {
    check(
        r#"datatable(s:string)["abc"] | extend h = hash_md5(s) | project h"#,
        &["h:string"],
        &[&["900150983cd24fb0d6963f7d28e17f72"]],
    )
    .await;
}

#[tokio::test]
async fn query_parameters_bind_values() {
    use rampart_kql::ast::Literal;
    let params =
        rampart_kql::QueryParameters::new().with("Device", Literal::String("srv-01".into()));
    let result = rampart_kql::run(
        &crate::hunt_data::context(),
        "declare query_parameters(Device:string);\nDeviceProcessEvents | where DeviceName == Device | count",
        &params,
        &rampart_kql::Limits::default(),
    )
    .await
    .expect("query runs");
    assert_eq!(crate::hunt_data::rows(&result), vec![vec!["3".to_string()]]);
}

#[tokio::test]
async fn more_dynamic_helpers() {
    check(
        r#"print x = strcat_array(dynamic(["a", "b"]), "-"), y = array_sort_desc(dynamic([3, 1, 2])),
      z = bag_merge(dynamic({"a": 1}), dynamic({"a": 2, "b": 3})), w = array_index_of(dynamic(["a", "b"]), "b"),
      u = tohex(255), r = bag_remove_keys(dynamic({"a": 1, "b": 2}), dynamic(["a"]))"#,
        &["x:string", "y:dynamic", "z:dynamic", "w:long", "u:string", "r:dynamic"],
        &[&["a-b", "[3,2,1]", r#"{"a":1,"b":3}"#, "1", "ff", r#"{"b":2}"#]],
    )
    .await;
}

#[tokio::test]
async fn iff_with_a_null_condition_takes_the_else_branch() {
    // FileSize > 100000 is null for the CMD.EXE row, which therefore counts as small.
    check(
        r#"DeviceProcessEvents | extend Size = iff(FileSize > 100000, "big", "small") | summarize count() by Size"#,
        &["Size:string", "count_:long"],
        &[&["big", "7"], &["small", "5"]],
    )
    .await;
}

#[tokio::test]
async fn hours_of_activity() {
    check_ordered(
        r#"DeviceProcessEvents | extend Hour = datetime_part("hour", Timestamp) | summarize count() by Hour | sort by Hour asc"#,
        &["Hour:int", "count_:long"],
        &[
            &["9", "1"],
            &["10", "2"],
            &["11", "2"],
            &["12", "2"],
            &["13", "1"],
            &["14", "1"],
            &["15", "1"],
            &["16", "1"],
            &["17", "1"],
        ],
    )
    .await;
}
