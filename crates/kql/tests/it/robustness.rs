//! Property-style checks: no input may make the parser panic.

const LONG_QUERIES: &[&str] = &[
    r#"let cutoff = ago(7d);
let Kw = dynamic(["powershell", "encodedcommand", {"a": [1, -2.5, datetime(2024-01-01)]}]);
let F = (T:(*), n:long = 5) { T | take n };
DeviceProcessEvents
| where Timestamp > cutoff and (FileName =~ "cmd.exe" or ProcessCommandLine has_any (Kw))
| extend Decoded = base64_decode_tostring(extract(@"-enc\s+(\S+)", 1, ProcessCommandLine)), d = parse_json(AdditionalFields)['x'][0].y
| parse kind=relaxed ProcessCommandLine with * "user=" User:string " port=" Port:long *
| mv-expand with_itemindex=i e = todynamic(Decoded) to typeof(string) limit 10
| join kind=leftouter hint.strategy=broadcast (DeviceNetworkEvents | where RemotePort between (1 .. 1024)) on $left.DeviceId == $right.DeviceId, AccountName
| summarize Count = count(), Hosts = make_set(DeviceName) by bin(Timestamp, 1h), AccountName
| top 10 by Count desc nulls last
| project-reorder Count, Host* asc
| render timechart with (title = "x")"#,
    r#"union withsource=Src (A | where x !in~ ("a", 'b')), B*, ['C D']
| mv-apply item = arr on (where item > 0 | summarize s = sum(item))
| make-series n = count() default = 0 on Timestamp from ago(1d) to now() step 1h by Host
| evaluate bag_unpack(d) : (a:string)
| top-nested 3 of Host with others = "o" by c = count() desc, top-nested of User by sum(B) asc;
datatable (A:long, B:string) [1, "x", -2, h'y'] | lookup kind=inner (D) on A;
print x = 1, timespan(0.12:30:05), int(null), guid(74be27de-1e4e-49d9-b579-fe0b331d3642)"#,
];

#[test]
fn long_queries_parse() {
    for query in LONG_QUERIES {
        if let Err(error) = rampart_kql::parse(query) {
            panic!("{error}\n{query}");
        }
    }
}

#[test]
fn every_prefix_parses_or_errors_without_panicking() {
    for query in LONG_QUERIES {
        for (end, _) in query.char_indices() {
            let prefix = &query[..end];
            let _ = rampart_kql::parse(prefix);
        }
    }
}

#[test]
fn every_suffix_parses_or_errors_without_panicking() {
    for query in LONG_QUERIES {
        for (start, _) in query.char_indices() {
            let _ = rampart_kql::parse(&query[start..]);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("print {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(rampart_kql::parse(&deep).is_err());
    let minus = format!("print {}1", "-".repeat(5000));
    assert!(rampart_kql::parse(&minus).is_err());
    let dynamic = format!("print dynamic({}{})", "[".repeat(5000), "]".repeat(5000));
    assert!(rampart_kql::parse(&dynamic).is_err());
    for (open, close) in [
        ("f(", ")"),
        ("-(", ")"),
        ("x in (", ")"),
        ("toscalar(T | where ", ")"),
        ("a.b[", "]"),
        ("(T | join (", ") on k)"),
        ("T | mv-apply x on (", ")"),
        ("(", " | take 1)"),
    ] {
        let deep = format!("print {}1{}", open.repeat(3000), close.repeat(3000));
        assert!(rampart_kql::parse(&deep).is_err(), "{open}");
        let deep = format!("{}T{}", open.repeat(3000), close.repeat(3000));
        let _ = rampart_kql::parse(&deep);
    }
}

#[test]
fn odd_inputs_do_not_panic() {
    for text in [
        "",
        ";",
        ";;;",
        "|",
        "||",
        "T |",
        "T | where",
        "let",
        "let x",
        "let x =",
        "(",
        ")",
        "[",
        "['",
        "['x'",
        "T | project-away",
        "T | join",
        "T | parse x with",
        "datatable(",
        "print dynamic(",
        "print @'",
        "print ```",
        "T | where x in (",
        "T | where x between (1 ..",
        "\u{FEFF}",
        "T | mv-apply x on (",
        "$left",
        "!has",
        "T | summarize by",
        "let f = (x:long) {",
    ] {
        let _ = rampart_kql::parse(text);
    }
}

#[test]
fn moderate_nesting_is_accepted() {
    let nested = format!("print {}1{}", "(".repeat(40), ")".repeat(40));
    if let Err(error) = rampart_kql::parse(&nested) {
        panic!("{error}");
    }
    let subqueries = format!("{}T{}", "(".repeat(20), " | take 1)".repeat(20));
    if let Err(error) = rampart_kql::parse(&subqueries) {
        panic!("{error}");
    }
}
