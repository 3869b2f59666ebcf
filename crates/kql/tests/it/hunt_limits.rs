//! Limits (rows, time, memory, cancellation), the error kinds of `run`, and `plan_only`.

use crate::hunt_data::{context, header, rows, try_hunt};
use rampart_kql::{HuntError, Limits, QueryParameters};
use std::time::{Duration, Instant};

fn rows_limit(max_rows: usize) -> Limits {
    Limits {
        max_rows,
        ..Limits::default()
    }
}

/// Enough work to take seconds in a debug build: ten million rows through a string
/// function and a distinct count.
const HEAVY: &str =
    "range x from 1 to 10000000 step 1 | extend y = strcat('v', x % 3000000) | summarize dcount(y)";

#[tokio::test]
async fn rows_past_the_limit_are_cut_and_reported() {
    let result = try_hunt("range x from 1 to 1000 step 1", &rows_limit(10))
        .await
        .expect("runs");
    assert_eq!(result.row_count, 10);
    assert!(result.truncated);
    // The rows kept are the first ten in the range's order.
    let kept: Vec<String> = rows(&result).into_iter().map(|r| r[0].clone()).collect();
    let expected: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    assert_eq!(kept, expected);
}

#[tokio::test]
async fn exactly_the_limit_is_not_truncated() {
    let result = try_hunt("range x from 1 to 10 step 1", &rows_limit(10))
        .await
        .expect("runs");
    assert_eq!(result.row_count, 10);
    assert!(!result.truncated);
}

#[tokio::test]
async fn the_query_can_lower_the_row_limit() {
    let result = try_hunt(
        "set truncationmaxrecords = 3;\nDeviceProcessEvents | sort by Timestamp asc | project ProcessId",
        &rows_limit(100),
    )
    .await
    .expect("runs");
    assert!(result.truncated);
    assert_eq!(
        rows(&result),
        vec![
            vec!["210".to_string()],
            vec!["100".to_string()],
            vec!["101".to_string()]
        ]
    );
    // But not raise it.
    let result = try_hunt(
        "set truncationmaxrecords = 1000;\nrange x from 1 to 50 step 1",
        &rows_limit(20),
    )
    .await
    .expect("runs");
    assert_eq!(result.row_count, 20);
    assert!(result.truncated);
}

#[tokio::test]
async fn a_slow_query_times_out() {
    let limits = Limits {
        timeout: Some(Duration::from_millis(200)),
        ..Limits::default()
    };
    let started = Instant::now();
    let error = try_hunt(HEAVY, &limits).await.expect_err("times out");
    assert_eq!(error, HuntError::Timeout(Duration::from_millis(200)));
    assert!(!error.is_query_error());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_the_future_cancels_the_query() {
    let limits = Limits {
        timeout: None,
        ..Limits::default()
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_millis(100), try_hunt(HEAVY, &limits)).await;
    assert!(outcome.is_err(), "the heavy query should still be running");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing of the dropped query keeps this single-threaded runtime busy: a small query
    // right after it finishes promptly.
    let small = Instant::now();
    let result = try_hunt("DeviceInfo | count", &limits).await.expect("runs");
    assert_eq!(rows(&result), vec![vec!["3".to_string()]]);
    assert!(
        small.elapsed() < Duration::from_secs(5),
        "took {:?}",
        small.elapsed()
    );
}

#[tokio::test]
async fn memory_limit_stops_a_greedy_query() {
    let limits = Limits {
        memory: Some(1024 * 1024),
        ..Limits::default()
    };
    let error = try_hunt(
        "range x from 1 to 2000000 step 1 | summarize make_list(x)",
        &limits,
    )
    .await
    .expect_err("runs out of memory");
    assert!(matches!(error, HuntError::MemoryLimit(_)), "{error:?}");
    // The same query fits in a larger pool.
    let limits = Limits {
        memory: Some(512 * 1024 * 1024),
        ..Limits::default()
    };
    let result = try_hunt(
        "range x from 1 to 2000 step 1 | summarize n = array_length(make_list(x))",
        &limits,
    )
    .await
    .expect("runs");
    assert_eq!(rows(&result), vec![vec!["2000".to_string()]]);
}

#[tokio::test]
async fn parse_errors_keep_line_and_column() {
    let error = rampart_kql::run(
        &context(),
        "DeviceProcessEvents\n| where FileName ==",
        &QueryParameters::new(),
        &Limits::default(),
    )
    .await
    .expect_err("does not parse");
    assert!(matches!(error, HuntError::Parse(_)), "{error:?}");
    assert!(error.is_query_error());
    assert_eq!(error.location().map(|(line, _)| line), Some(2));
}

#[tokio::test]
async fn bind_errors_keep_line_and_column() {
    let error = rampart_kql::run(
        &context(),
        "DeviceProcessEvents\n| where ProcessCmd has \"x\"",
        &QueryParameters::new(),
        &Limits::default(),
    )
    .await
    .expect_err("does not bind");
    let HuntError::Bind(bind) = &error else {
        panic!("expected a bind error, got {error:?}");
    };
    assert_eq!((bind.line, bind.column), (2, 9));
    assert!(bind.message.contains("ProcessCmd"), "{}", bind.message);
}

#[tokio::test]
async fn unregistered_tables_do_not_bind() {
    let ctx = datafusion::prelude::SessionContext::new();
    let error = rampart_kql::run(
        &ctx,
        "DeviceInfo | count",
        &QueryParameters::new(),
        &Limits::default(),
    )
    .await
    .expect_err("no such table here");
    assert!(matches!(error, HuntError::Bind(_)), "{error:?}");
}

#[tokio::test]
async fn unsupported_operators_are_plan_errors() {
    let error = try_hunt(
        "DeviceInfo | extend u = parse_json(LoggedOnUsers) | mv-apply u on (mv-expand u)",
        &Limits::default(),
    )
    .await
    .expect_err("mv-expand inside mv-apply is not supported");
    assert!(matches!(error, HuntError::Plan(_)), "{error:?}");
    assert!(error.is_query_error());
}

#[tokio::test]
async fn a_query_without_a_table_has_no_result() {
    let error = try_hunt("let x = 1;", &Limits::default())
        .await
        .expect_err("nothing to return");
    assert_eq!(error, HuntError::NoResult);
}

#[tokio::test]
async fn bad_regex_at_run_time_is_an_execution_error() {
    let error = try_hunt(
        r#"DeviceProcessEvents | where ProcessCommandLine matches regex "(unclosed""#,
        &Limits::default(),
    )
    .await
    .expect_err("invalid regex");
    let HuntError::Execution(message) = &error else {
        panic!("expected an execution error, got {error:?}");
    };
    assert!(message.contains("regular expression"), "{message}");
    assert!(!error.is_query_error());
}

#[tokio::test]
async fn oversized_range_is_refused() {
    let error = try_hunt(
        "range x from 1 to 100000000000 step 1 | count",
        &Limits::default(),
    )
    .await
    .expect_err("too many rows");
    assert!(matches!(error, HuntError::Plan(_)), "{error:?}");
}

#[tokio::test]
async fn invalid_datetime_literal_is_a_plan_error_with_location() {
    let error = try_hunt("print datetime(1500-01-01)", &Limits::default())
        .await
        .expect_err("outside the nanosecond range");
    let HuntError::Plan(plan) = &error else {
        panic!("expected a plan error, got {error:?}");
    };
    assert_eq!(plan.location.map(|(line, _)| line), Some(2));
}

#[tokio::test]
async fn plan_only_plans_without_running() {
    let plan = rampart_kql::plan_only(
        &context(),
        r#"DeviceProcessEvents
| where ProcessCommandLine matches regex "(unclosed"
| summarize n = count() by DeviceName
| where n > toscalar(DeviceInfo | count)"#,
        &QueryParameters::new(),
    )
    .await
    .expect("plans");
    let names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, vec!["DeviceName", "n"]);
    // The subquery is part of the plan rather than run.
    assert!(format!("{}", plan.display_indent()).contains("Subquery"));
}

#[tokio::test]
async fn result_schema_matches_kql_types() {
    let result = try_hunt(
        "DeviceNetworkEvents | take 1 | project Timestamp, RemotePort, LocalPort, RemoteIP, d = 1h, b = true, r = 1.5, j = dynamic([1])",
        &Limits::default(),
    )
    .await
    .expect("runs");
    assert_eq!(
        header(&result),
        vec![
            "Timestamp:datetime",
            "RemotePort:int",
            "LocalPort:int",
            "RemoteIP:string",
            "d:timespan",
            "b:bool",
            "r:real",
            "j:dynamic"
        ]
    );
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    let types: Vec<DataType> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            DataType::Int32,
            DataType::Int32,
            DataType::Utf8,
            DataType::Int64,
            DataType::Boolean,
            DataType::Float64,
            DataType::Utf8,
        ]
    );
}

#[tokio::test]
async fn long_pipelines_plan_and_run() {
    // Three hundred operators, deeper than generated queries go.
    let mut query = String::from("range x from 1 to 10 step 1");
    for i in 0..150 {
        query.push_str(&format!(" | extend c{i} = x + {i} | where c{i} > {i}"));
    }
    query.push_str(" | count");
    let result = try_hunt(&query, &Limits::default()).await.expect("runs");
    assert_eq!(rows(&result), vec![vec!["10".to_string()]]);
}
