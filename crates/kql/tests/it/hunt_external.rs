//! `externaldata`: parsed as Kusto writes it, bound to its declared schema, refused with a
//! located error unless the deployment maps the URI to a local file, and read from that
//! file (CSV, TSV, JSON lines, multi-line JSON) into the declared types when it does.

use crate::hunt_data::{NOW, context, header, rows};
use crate::{bind_error, columns, pipeline};
use rampart_kql::ast::{Literal, ScalarType, Source};
use rampart_kql::{ExternalFiles, HuntError, HuntResult, Limits, QueryParameters};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

const FEED: &str = "https://feeds.example.com/bad-ips.csv";

/// A file of its own under the system temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rampart-kql-external-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("write the test file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn mapped(pairs: &[(&str, &TempFile)]) -> ExternalFiles {
    pairs
        .iter()
        .map(|(url, file)| (*url, file.0.clone()))
        .collect()
}

/// Runs `query` over the hunting tables with `files` standing in for URIs.
async fn try_hunt(query: &str, files: &ExternalFiles) -> Result<HuntResult, HuntError> {
    let text = format!("set query_now = datetime({NOW});\n{query}");
    rampart_kql::run_with_files(
        &context(),
        &text,
        &QueryParameters::new(),
        &Limits::default(),
        files,
    )
    .await
}

async fn hunt_with(query: &str, files: &ExternalFiles) -> HuntResult {
    match try_hunt(query, files).await {
        Ok(result) => result,
        Err(error) => panic!("query failed: {error}\n{query}"),
    }
}

#[test]
fn parses_schema_uris_and_properties() {
    let tabular = pipeline(
        r#"externaldata (Ip:string, Score:long) [ @"https://a.example/x.csv", h'https://b.example/' 'y.csv', ] with (format = "csv", ignoreFirstRecord = true, mode = fast)
| where Score > 5"#,
    );
    let Source::ExternalData(external) = &tabular.source else {
        panic!("expected externaldata, got {:?}", tabular.source);
    };
    let names: Vec<_> = external
        .columns
        .iter()
        .map(|c| (c.name.text.as_str(), c.ty))
        .collect();
    assert_eq!(
        names,
        [("Ip", ScalarType::String), ("Score", ScalarType::Long)]
    );
    let uris: Vec<_> = external.uris.iter().map(|u| u.text.as_str()).collect();
    assert_eq!(uris, ["https://a.example/x.csv", "https://b.example/y.csv"]);
    let properties: Vec<_> = external
        .properties
        .iter()
        .map(|p| (p.name.text.as_str(), p.value.clone()))
        .collect();
    assert_eq!(
        properties,
        [
            ("format", Literal::String("csv".into())),
            ("ignoreFirstRecord", Literal::Bool(true)),
            ("mode", Literal::String("fast".into())),
        ]
    );
    assert_eq!(tabular.operators.len(), 1);
}

#[test]
fn parses_in_lets_joins_and_without_properties() {
    crate::parse_ok(r#"let Feed = externaldata (Ip:string) ["https://x/y"]; Feed | count"#);
    crate::parse_ok(
        r#"DeviceNetworkEvents | join kind=inner (externaldata (RemoteIP:string) ["https://x/y"] with (format="csv")) on RemoteIP"#,
    );
    // A column, table or function merely named externaldata is still a name.
    crate::parse_ok("T | project externaldata");
}

#[test]
fn syntax_errors_are_located() {
    for (text, column, message) in [
        (
            "externaldata (Ip:string) []",
            27,
            "expected a storage URI string, found ']'",
        ),
        (
            "externaldata (Ip:string)",
            25,
            "expected '[' and the storage URIs of the externaldata, found end of input",
        ),
        (
            r#"externaldata (Ip:string) ["u"] with (format)"#,
            44,
            "expected '=' after the property name, found ')'",
        ),
        (
            r#"externaldata (Ip) ["u"]"#,
            17,
            "expected ':' and a type after the column name, found ')'",
        ),
    ] {
        let error = rampart_kql::parse(text).expect_err(text);
        assert_eq!(
            (error.line, error.column, error.message.as_str()),
            (1, column, message),
            "{text}"
        );
    }
}

#[test]
fn binds_to_the_declared_schema() {
    assert_eq!(
        columns(
            r#"externaldata (Ip:string, Score:long, Seen:datetime, Tags:dynamic, Ok:bool) ["https://x/y"] with (format="multijson")"#
        ),
        [
            "Ip:string",
            "Score:long",
            "Seen:datetime",
            "Tags:dynamic",
            "Ok:bool"
        ]
    );
}

#[test]
fn bad_properties_are_bind_errors() {
    for (text, column, message) in [
        (
            r#"externaldata (a:string) ["u"] with (format="parquet")"#,
            44,
            r#"externaldata format must be "csv", "tsv", "json" or "multijson""#,
        ),
        (
            r#"externaldata (a:string) ["u"] with (compressed=true)"#,
            37,
            "externaldata property 'compressed' is not supported (supported: format, ignoreFirstRecord)",
        ),
        (
            r#"externaldata (a:string) ["u"] with (ignoreFirstRecord=2)"#,
            55,
            "externaldata property 'ignoreFirstRecord' must be true or false",
        ),
        (
            r#"externaldata (a:string) ["u"] with (format="csv", format="tsv")"#,
            51,
            "externaldata property 'format' is set twice",
        ),
        (
            r#"externaldata (a:string, a:long) ["u"]"#,
            25,
            "duplicate column name 'a'",
        ),
        (
            r#"externaldata () ["u"]"#,
            1,
            "externaldata needs at least one column",
        ),
    ] {
        let error = bind_error(text);
        assert_eq!(
            (error.line, error.column, error.message.as_str()),
            (1, column, message),
            "{text}"
        );
    }
}

#[tokio::test]
async fn unmapped_urls_are_refused_with_their_location() {
    let query = format!(
        "DeviceNetworkEvents\n| join kind=inner (externaldata (RemoteIP:string) [\n    '{FEED}?sig=secret'\n  ]) on RemoteIP"
    );
    let error = try_hunt(&query, &ExternalFiles::new())
        .await
        .expect_err("no mapping");
    let HuntError::Plan(plan) = &error else {
        panic!("expected a plan error, got {error:?}");
    };
    assert!(error.is_query_error());
    // Line 1 is the `set query_now` try_hunt puts first.
    assert_eq!(plan.location, Some((4, 5)), "{plan}");
    assert_eq!(
        plan.message,
        format!(
            "externaldata is not available: Rampart runs offline and the URL '{FEED}' is not mapped to a local file in the server's configuration"
        )
    );
    // So is it by plain `run`, which maps nothing.
    let error = rampart_kql::run(
        &context(),
        &query,
        &QueryParameters::new(),
        &Limits::default(),
    )
    .await
    .expect_err("no mapping");
    assert_eq!(error.location(), Some((3, 5)), "{error}");
    // A mapping for another URL does not help; neither does plan_only, which has none.
    let other = TempFile::new("1.2.3.4\n");
    let files = mapped(&[("https://elsewhere.example/x.csv", &other)]);
    let error = try_hunt(&query, &files).await.expect_err("not this URL");
    assert!(matches!(error, HuntError::Plan(_)), "{error:?}");
    // Nor one that differs only in the query string: URIs match exactly.
    let files = mapped(&[(FEED, &other)]);
    let error = try_hunt(&query, &files).await.expect_err("not this URL");
    assert!(matches!(error, HuntError::Plan(_)), "{error:?}");
    let error = rampart_kql::plan_only(
        &context(),
        &format!("externaldata (a:string) ['{FEED}']"),
        &QueryParameters::new(),
    )
    .await
    .expect_err("plan_only has no mapping");
    assert_eq!(error.location(), Some((1, 26)), "{error}");
}

#[tokio::test]
async fn mapped_csv_is_read_into_the_declared_types() {
    let file = TempFile::new(
        "Ip,Score,Seen,Tags,Ok,Note\n\
         198.51.100.7,90,2024-03-06T13:00:00Z,\"[\"\"c2\"\",\"\"tool\"\"]\",true,\"has, comma\"\n\
         203.0.113.10,not-a-number,junk,{\"k\":1},false,\n\
         10.0.0.5\n",
    );
    let query = format!(
        r#"externaldata (Ip:string, Score:long, Seen:datetime, Tags:dynamic, Ok:bool, Note:string) ['{FEED}'] with (format='csv', ignoreFirstRecord=true)"#
    );
    let result = hunt_with(&query, &mapped(&[(FEED, &file)])).await;
    assert_eq!(
        header(&result),
        [
            "Ip:string",
            "Score:long",
            "Seen:datetime",
            "Tags:dynamic",
            "Ok:bool",
            "Note:string"
        ]
    );
    let mut all = rows(&result);
    all.sort();
    assert_eq!(
        all,
        [
            // A short record: missing strings are empty, other types null.
            ["10.0.0.5", "null", "null", "null", "null", ""],
            [
                "198.51.100.7",
                "90",
                "2024-03-06T13:00:00Z",
                r#"["c2","tool"]"#,
                "true",
                "has, comma"
            ],
            // Fields that do not convert are null, as with tolong("not-a-number").
            ["203.0.113.10", "null", "null", r#"{"k":1}"#, "false", ""],
        ]
    );
}

#[tokio::test]
async fn mapped_data_joins_the_hunting_tables() {
    let file = TempFile::new("198.51.100.7\tcertutil download host\n203.0.113.10\tc2\n");
    let query = format!(
        r#"let Feed = externaldata (RemoteIP:string, Why:string) ['{FEED}'] with (format="tsv");
DeviceNetworkEvents
| join kind=inner Feed on RemoteIP
| summarize Hits = count() by RemoteIP, Why"#
    );
    let result = hunt_with(&query, &mapped(&[(FEED, &file)])).await;
    let mut all = rows(&result);
    all.sort();
    assert_eq!(
        all,
        [
            ["198.51.100.7", "certutil download host", "2"],
            ["203.0.113.10", "c2", "2"],
        ]
    );
}

#[tokio::test]
async fn several_uris_are_read_in_turn() {
    let first = TempFile::new("a,1\n");
    let second = TempFile::new("skipped,0\nb,2\n");
    let files = mapped(&[("https://x/1.csv", &first), ("https://x/2.csv", &second)]);
    let query = "externaldata (Name:string, N:int) ['https://x/1.csv', 'https://x/2.csv'] with (ignoreFirstRecord=false)";
    let mut all = rows(&hunt_with(query, &files).await);
    all.sort();
    assert_eq!(all, [["a", "1"], ["b", "2"], ["skipped", "0"]]);
    // ignoreFirstRecord skips the first record of each file.
    let query = "externaldata (Name:string, N:int) ['https://x/1.csv', 'https://x/2.csv'] with (ignoreFirstRecord='true')";
    assert_eq!(rows(&hunt_with(query, &files).await), [["b", "2"]]);
}

#[tokio::test]
async fn mapped_json_lines_are_read_by_field_name() {
    let file = TempFile::new(
        r#"{"Ip":"198.51.100.7","Score":90,"Tags":["c2"],"Extra":1}

{"Score":"12","Ip":"10.0.0.5","Tags":"plain text","Seen":"2024-03-06"}
{"Ip":null,"Tags":null}
"#,
    );
    let query = format!(
        r#"externaldata (Ip:string, Score:long, Tags:dynamic, Seen:datetime) ['{FEED}'] with (format="json")
| extend TagType = gettype(Tags)"#
    );
    let result = hunt_with(&query, &mapped(&[(FEED, &file)])).await;
    let mut all = rows(&result);
    all.sort();
    assert_eq!(
        all,
        [
            ["", "null", "null", "null", "null"],
            [
                "10.0.0.5",
                "12",
                "\"plain text\"",
                "2024-03-06T00:00:00Z",
                "string"
            ],
            ["198.51.100.7", "90", r#"["c2"]"#, "null", "array"],
        ]
    );
}

#[tokio::test]
async fn mapped_multijson_accepts_objects_across_lines_and_arrays() {
    let file = TempFile::new(
        r#"{
  "Name": "a",
  "N": 1
}
[{"Name": "b", "N": 2}, {"Name": "c"}]
"#,
    );
    let query =
        format!(r#"externaldata (Name:string, N:long) ['{FEED}'] with (format="multijson")"#);
    let result = hunt_with(&query, &mapped(&[(FEED, &file)])).await;
    let mut all = rows(&result);
    all.sort();
    assert_eq!(all, [["a", "1"], ["b", "2"], ["c", "null"]]);
}

#[tokio::test]
async fn unreadable_files_are_execution_errors_without_the_path() {
    let missing = TempFile::new("");
    let path = missing.0.clone();
    drop(missing);
    let files = ExternalFiles::new().with(FEED, path.clone());
    let error = try_hunt(&format!("externaldata (a:string) ['{FEED}']"), &files)
        .await
        .expect_err("the file is gone");
    let HuntError::Execution(message) = &error else {
        panic!("expected an execution error, got {error:?}");
    };
    assert!(
        message.starts_with(&format!("cannot read the local file mapped to '{FEED}':")),
        "{message}"
    );
    assert!(!message.contains(&path.display().to_string()), "{message}");

    let bad = TempFile::new("{\"a\": 1}\nnot json\n");
    let error = try_hunt(
        &format!("externaldata (a:string) ['{FEED}'] with (format='json')"),
        &mapped(&[(FEED, &bad)]),
    )
    .await
    .expect_err("bad JSON");
    assert!(
        error.to_string().contains(&format!(
            "the local file mapped to '{FEED}' is not valid JSON at record 2"
        )),
        "{error}"
    );
    let not_object = TempFile::new("[1, 2]\n");
    let error = try_hunt(
        &format!("externaldata (a:string) ['{FEED}'] with (format='json')"),
        &mapped(&[(FEED, &not_object)]),
    )
    .await
    .expect_err("not an object");
    assert!(
        error.to_string().contains("record 1 of the local file"),
        "{error}"
    );
}
