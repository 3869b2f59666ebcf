//! Names: lets, functions, `invoke`, `materialize`, query parameters, `as`, custom
//! catalogs.

use crate::{bind_ok, bound_rel, columns, parse_ok};
use rampart_kql::ast::{Literal, ScalarType};
use rampart_kql::bind::{BoundExprKind, RelKind, StaticCatalog};
use rampart_kql::{QueryParameters, bind};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn scalar_and_tabular_lets() {
    assert_eq!(
        columns(
            r#"let lookback = 14d;
            let Parents = dynamic(["winword.exe", "excel.exe"]);
            let Procs = DeviceProcessEvents | where Timestamp > ago(lookback);
            Procs
            | where InitiatingProcessFileName in~ (Parents)
            | summarize Count = count() by FileName"#
        ),
        strings(&["FileName:string", "Count:long"])
    );
    // A bare table name is a tabular let.
    assert_eq!(
        columns("let P = DeviceNetworkInfo; P | project MacAddress"),
        strings(&["MacAddress:string"])
    );
}

#[test]
fn let_references_are_inlined() {
    let rel = bound_rel("let cutoff = ago(1d); DeviceInfo | where Timestamp > cutoff");
    let RelKind::Filter { predicate, .. } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    let BoundExprKind::Binary { right, .. } = &predicate.kind else {
        panic!("{:?}", predicate.kind)
    };
    assert!(
        matches!(
            &right.kind,
            BoundExprKind::Call {
                function: "ago",
                ..
            }
        ),
        "{right:?}"
    );
}

#[test]
fn tabular_function_with_defaults() {
    assert_eq!(
        columns(
            r#"let ProcFor = (Device:string, since:timespan = 1d) {
                DeviceProcessEvents | where DeviceName == Device and Timestamp > ago(since)
            };
            ProcFor("host1") | project FileName, ProcessId"#
        ),
        strings(&["FileName:string", "ProcessId:long"])
    );
}

#[test]
fn invoke_pipes_the_first_parameter() {
    assert_eq!(
        columns(
            r#"let Recent = (T:(Timestamp:datetime), window:timespan) { T | where Timestamp > ago(window) | extend Age = now() - Timestamp };
            DeviceFileEvents | invoke Recent(1h) | project FileName, Age"#
        ),
        strings(&["FileName:string", "Age:timespan"])
    );
}

#[test]
fn scalar_functions_read_the_callers_row() {
    let rel = bound_rel(
        "let Norm = (s:string, suffix:string = '.exe') { tolower(trim_end(suffix, s)) }; DeviceInfo | project Name = Norm(DeviceName)",
    );
    assert_eq!(rel.schema.pairs(), [("Name", ScalarType::String)]);
    let RelKind::Project { exprs, .. } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    let BoundExprKind::Call {
        function: "tolower",
        args,
    } = &exprs[0].kind
    else {
        panic!("{:?}", exprs[0].kind)
    };
    let BoundExprKind::Call {
        function: "trim_end",
        args,
    } = &args[0].kind
    else {
        panic!("{:?}", args[0].kind)
    };
    assert!(matches!(&args[0].kind, BoundExprKind::Literal(Literal::String(s)) if s == ".exe"));
    assert!(
        matches!(&args[1].kind, BoundExprKind::Column { index: 2, name } if name == "DeviceName"),
        "{:?}",
        args[1]
    );
}

#[test]
fn functions_are_lexically_scoped() {
    // `f` sees the `x` of its definition, not the later one.
    let bound = bind_ok("let x = 1; let f = () { x + 1 }; let x = \"s\"; print a = f(), b = x");
    let rel = &bound.results[0];
    assert_eq!(
        rel.schema.pairs(),
        [("a", ScalarType::Long), ("b", ScalarType::String)]
    );
}

#[test]
fn views_join_wildcard_unions() {
    assert_eq!(
        columns(
            "let DeviceExtra = view () { datatable(DeviceId:string, Extra:long)[] }; union withsource=T DeviceNetworkI*, DeviceExtr* | project T, DeviceId, Extra"
        ),
        strings(&["T:string", "DeviceId:string", "Extra:long"])
    );
}

#[test]
fn materialize_is_shared() {
    let bound = bind_ok(
        "let M = materialize(DeviceInfo | summarize arg_max(Timestamp, *) by DeviceId); M | join kind=leftouter (M | project DeviceId, OSPlatform) on DeviceId | project DeviceId, OSPlatform1",
    );
    assert_eq!(bound.materialized.len(), 1);
    let rel = &bound.results[0];
    let RelKind::Project { input, .. } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    let RelKind::Join { left, right, .. } = &input.kind else {
        panic!("{:?}", input.kind)
    };
    assert!(matches!(left.kind, RelKind::Materialized { id: 0 }));
    let RelKind::Project {
        input: right_input, ..
    } = &right.kind
    else {
        panic!("{:?}", right.kind)
    };
    assert!(matches!(right_input.kind, RelKind::Materialized { id: 0 }));
}

#[test]
fn toscalar_types_its_first_column() {
    let rel = bound_rel(
        "let threshold = toscalar(DeviceNetworkEvents | summarize percentile(RemotePort, 95)); DeviceNetworkEvents | where RemotePort > threshold | project RemotePort",
    );
    let RelKind::Project { input, .. } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    let RelKind::Filter { predicate, .. } = &input.kind else {
        panic!("{:?}", input.kind)
    };
    let BoundExprKind::Binary { right, .. } = &predicate.kind else {
        panic!("{:?}", predicate.kind)
    };
    assert_eq!(right.ty, ScalarType::Int);
    assert!(matches!(right.kind, BoundExprKind::ScalarSubquery(_)));
    // `in (tabular let)` takes the first column.
    assert_eq!(
        columns(
            "let Bad = DeviceFileCertificateInfo | where not(IsTrusted) | project SHA1; DeviceProcessEvents | where SHA1 in (Bad) | project SHA1"
        ),
        strings(&["SHA1:string"])
    );
}

#[test]
fn query_parameters_are_substituted() {
    let text = "declare query_parameters(Start:datetime, N:long = 10, Ratio:real);\nDeviceInfo | where Timestamp > Start | take N | extend r = Ratio";
    let query = parse_ok(text);
    let params = QueryParameters::new()
        .with("Start", Literal::Datetime("2024-05-01".into()))
        .with("Ratio", Literal::Long(2));
    let bound = match bind(&query, &rampart_kql::HuntingCatalog, &params) {
        Ok(bound) => bound,
        Err(error) => panic!("{error}"),
    };
    let rel = &bound.results[0];
    assert_eq!(
        rel.schema.columns.last().map(|c| c.ty),
        Some(ScalarType::Real)
    );
    let RelKind::Project { input, exprs } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    // The long value was widened to the declared real.
    let ratio = exprs.last().map(|e| &e.kind);
    assert!(
        matches!(ratio, Some(BoundExprKind::Cast(inner)) if matches!(inner.kind, BoundExprKind::Literal(Literal::Long(2)))),
        "{ratio:?}"
    );
    let RelKind::Limit { count, .. } = &input.kind else {
        panic!("{:?}", input.kind)
    };
    assert!(matches!(
        count.kind,
        BoundExprKind::Literal(Literal::Long(10))
    ));
}

#[test]
fn as_names_the_result_so_far() {
    assert_eq!(
        columns(
            r#"DeviceProcessEvents
            | where FileName =~ "psexec.exe"
            | project DeviceId, Timestamp
            | as Hits
            | join kind=leftsemi (Hits | summarize by DeviceId) on DeviceId"#
        ),
        strings(&["DeviceId:string", "Timestamp:datetime"])
    );
}

#[test]
fn set_statements_are_accepted_and_results_kept_in_order() {
    let bound = bind_ok("set notruncation; DeviceInfo | count; DeviceNetworkInfo | take 1");
    assert_eq!(bound.results.len(), 2);
    assert_eq!(
        bound.results[0].schema.pairs(),
        [("Count", ScalarType::Long)]
    );
    assert_eq!(bound.results[1].schema.len(), 18);
}

#[test]
fn custom_catalogs_bind_the_reference_examples() {
    let catalog = StaticCatalog::new()
        .with_table(
            "T",
            &[
                ("Host", ScalarType::String),
                ("User", ScalarType::String),
                ("Bytes", ScalarType::Long),
            ],
        )
        .with_table("deviceinfo", &[("x", ScalarType::Long)]);
    let check = |text: &str| -> Vec<String> {
        match rampart_kql::check(text, &catalog) {
            Ok(mut bound) => bound
                .results
                .pop()
                .map(|r| r.schema.columns.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default(),
            Err(error) => panic!("{text}: {error}"),
        }
    };
    // E8
    assert_eq!(
        check("T | summarize count(), dcount(User), sum(Bytes) by Host"),
        ["Host", "count_", "dcount_User", "sum_Bytes"]
    );
    assert_eq!(
        check("T | summarize Total = count(), countif(Bytes > 4)"),
        ["Total", "countif_"]
    );
    // Table names are case-sensitive: `DeviceInfo` is not `deviceinfo`.
    let error = match rampart_kql::check("DeviceInfo | count", &catalog) {
        Ok(bound) => panic!("{bound:?}"),
        Err(error) => error,
    };
    assert_eq!(
        error.message(),
        "unknown table 'DeviceInfo'; did you mean 'deviceinfo'? (names are case-sensitive)"
    );
}
