//! Binder error messages, snapshot style: exact text, line and column.

use crate::{bind_error, parse_ok};
use rampart_kql::ast::Literal;
use rampart_kql::{HuntingCatalog, QueryParameters};

fn assert_error(text: &str, line: usize, column: usize, message: &str) {
    let error = bind_error(text);
    assert_eq!(
        (error.line, error.column, error.message.as_str()),
        (line, column, message),
        "{text:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("line {line}, column {column}: {message}")
    );
}

#[test]
fn unknown_table_suggests_the_closest_name() {
    assert_error(
        "DeviceProces | take 10",
        1,
        1,
        "unknown table 'DeviceProces'; did you mean 'DeviceProcessEvents'?",
    );
    assert_error(
        "let Recent = DeviceInfo | take 5;\nRecnt | count",
        2,
        1,
        "unknown table 'Recnt'; did you mean 'Recent'?",
    );
}

#[test]
fn unknown_names_outside_rows_may_be_tables() {
    assert_error(
        "let P = DeviceProces;\nP | count",
        1,
        9,
        "unknown name 'DeviceProces'; did you mean 'DeviceProcessEvents'?",
    );
}

#[test]
fn misplaced_types_and_named_arguments() {
    assert_error(
        "print typeof(long)",
        1,
        7,
        "a type such as typeof(long) is only allowed as a function argument",
    );
    assert_error(
        "print strlen(s = \"a\")",
        1,
        14,
        "'s = ...' names a result column; only arg_max and arg_min take named arguments",
    );
    assert_error(
        "DeviceInfo | distinct OSPlatform, OSPlatform",
        1,
        35,
        "duplicate column name 'OSPlatform' in 'distinct'",
    );
}

#[test]
fn unknown_column_suggests_an_abbreviated_name() {
    assert_error(
        "DeviceProcessEvents\n| where ProcessCmd has \"whoami\"",
        2,
        9,
        "column 'ProcessCmd' not found in DeviceProcessEvents; did you mean 'ProcessCommandLine'?",
    );
}

#[test]
fn unknown_column_with_the_wrong_case() {
    assert_error(
        "DeviceProcessEvents | project devicename",
        1,
        31,
        "column 'devicename' not found in DeviceProcessEvents; did you mean 'DeviceName'? (names are case-sensitive)",
    );
}

#[test]
fn unknown_column_after_the_table_is_gone() {
    assert_error(
        "DeviceInfo | summarize count() by OSPlatform | where DeviceNmae == \"x\"",
        1,
        54,
        "column 'DeviceNmae' not found",
    );
    assert_error(
        "DeviceInfo | project OSPlatform, OSBuild | where OSBiuld > 1",
        1,
        50,
        "column 'OSBiuld' not found; did you mean 'OSBuild'?",
    );
}

#[test]
fn unknown_function() {
    assert_error(
        "DeviceInfo | extend n = tolowercase(DeviceName)",
        1,
        25,
        "unknown function 'tolowercase'; did you mean 'tolower'?",
    );
}

#[test]
fn function_argument_count() {
    assert_error(
        "DeviceInfo | extend n = strcat()",
        1,
        25,
        "function 'strcat' expects 1 to 64 arguments, got 0",
    );
    assert_error(
        "print ago()",
        1,
        7,
        "function 'ago' expects 1 argument, got 0",
    );
}

#[test]
fn function_argument_type() {
    assert_error(
        "DeviceInfo | extend n = strlen(OSBuild)",
        1,
        32,
        "function 'strlen' expects a string as argument 1, got long",
    );
    assert_error(
        "DeviceInfo | where Timestamp > ago(\"1d\")",
        1,
        36,
        "function 'ago' expects a timespan as argument 1, got string",
    );
    assert_error(
        "DeviceInfo | extend n = array_length(LoggedOnUsers)",
        1,
        38,
        "function 'array_length' expects a dynamic as argument 1, got string",
    );
}

#[test]
fn where_needs_a_bool() {
    assert_error(
        "DeviceInfo\n| where DeviceName",
        2,
        9,
        "'where' needs a bool predicate, got string",
    );
}

#[test]
fn strings_do_not_add() {
    assert_error(
        "DeviceInfo | extend x = DeviceName + OSPlatform",
        1,
        25,
        "operator '+' cannot be applied to string and string; use strcat() to join strings",
    );
    assert_error(
        "DeviceLogonEvents | where Timestamp > now() - 1",
        1,
        39,
        "operator '-' cannot be applied to datetime and long",
    );
}

#[test]
fn no_implicit_string_number_comparison() {
    assert_error(
        "DeviceFileEvents | where FileSize == \"5\"",
        1,
        26,
        "cannot compare long with string using '=='",
    );
    assert_error(
        "DeviceFileEvents | where FileName < \"b\"",
        1,
        26,
        "'<' cannot compare strings; use strcmp()",
    );
}

#[test]
fn iff_branches_must_agree() {
    assert_error(
        "DeviceFileEvents | extend x = iff(FileSize > 0, \"big\", 0)",
        1,
        31,
        "'iff' branches have different types: string and long",
    );
    assert_error(
        "print case(true, 1, false, \"two\", 3)",
        1,
        7,
        "'case' values have different types: long and string",
    );
    assert_error(
        "print case(true, 1, 2, 3)",
        1,
        7,
        "function 'case' expects predicate/value pairs and an else value (an odd number of arguments, at least 3), got 4",
    );
}

#[test]
fn aggregates_outside_summarize() {
    assert_error(
        "DeviceFileEvents | extend c = count()",
        1,
        31,
        "'count' is an aggregate function; it can only be used in summarize or make-series",
    );
    assert_error(
        "DeviceInfo | summarize sum(count())",
        1,
        28,
        "aggregate function 'count' cannot be nested inside another aggregate",
    );
    assert_error(
        "DeviceInfo | summarize count() by count()",
        1,
        35,
        "aggregate function 'count' cannot be used in 'by'",
    );
}

#[test]
fn summarize_items_must_aggregate() {
    assert_error(
        "DeviceFileEvents | summarize FileName, count()",
        1,
        30,
        "column 'FileName' must be used inside an aggregate function (such as take_any(FileName)) or listed after 'by'",
    );
    assert_error(
        "DeviceFileEvents | summarize x = 1 by DeviceName",
        1,
        34,
        "summarize needs an aggregate function (such as count() or sum(x)) in '1'",
    );
    assert_error(
        "DeviceInfo | summarize x = arg_max(Timestamp, DeviceName) + 1",
        1,
        28,
        "'arg_max' returns several columns; use it as a whole summarize item, not inside an expression",
    );
    assert_error(
        "DeviceInfo | summarize (a, b) = arg_max(Timestamp, DeviceName, OSPlatform)",
        1,
        33,
        "'arg_max' returns 3 columns but 2 names were given",
    );
}

#[test]
fn join_keys_must_exist_and_agree() {
    assert_error(
        "DeviceProcessEvents\n| join kind=inner (DeviceNetworkEvents) on $left.ProcessId == $right.InitiatingProcesId",
        2,
        70,
        "join key 'InitiatingProcesId' not found in the right side; did you mean 'InitiatingProcessId'?",
    );
    assert_error(
        "DeviceProcessEvents | join kind=inner (DeviceNetworkEvents) on $left.ProcessId == $right.RemoteIP",
        1,
        70,
        "join key 'ProcessId' == 'RemoteIP' is long on the left but string on the right",
    );
}

#[test]
fn properties_of_strings_need_parse_json() {
    assert_error(
        "DeviceEvents | extend x = AdditionalFields.Command",
        1,
        27,
        "cannot read property 'Command' of 'AdditionalFields', which is a string; parse it first: parse_json(AdditionalFields).Command",
    );
}

#[test]
fn mv_expand_needs_dynamic() {
    assert_error(
        "DeviceProcessEvents | mv-expand ProcessCommandLine",
        1,
        33,
        "mv-expand needs a dynamic array or property bag, got string; convert it with parse_json()",
    );
}

#[test]
fn take_needs_an_integer() {
    assert_error(
        "DeviceProcessEvents | take \"ten\"",
        1,
        28,
        "'take' needs an integer row count, got string",
    );
}

#[test]
fn duplicate_and_clashing_names() {
    assert_error(
        "DeviceProcessEvents | project DeviceName, DeviceName = FileName",
        1,
        43,
        "duplicate column name 'DeviceName' in 'project'",
    );
    assert_error(
        "DeviceProcessEvents | project-rename FileName = FolderPath",
        1,
        38,
        "cannot rename 'FolderPath' to 'FileName': a column named 'FileName' already exists",
    );
}

#[test]
fn window_functions_need_serialized_input() {
    assert_error(
        "DeviceProcessEvents | extend rn = row_number()",
        1,
        35,
        "function 'row_number' needs serialized input; add '| serialize' (or sort the rows) before this operator",
    );
}

#[test]
fn datatable_shape_and_cell_types() {
    assert_error(
        "datatable(A:long, B:string)[1, \"x\", 2]",
        1,
        1,
        "datatable has 3 values for 2 columns; the count must be a multiple of 2",
    );
    assert_error(
        "datatable(A:long, B:string)[1, 2]",
        1,
        32,
        "datatable column 'B' is string, got long",
    );
}

#[test]
fn query_parameters_need_values() {
    let text = "declare query_parameters(Start:datetime);\nDeviceInfo | where Timestamp > Start";
    let query = parse_ok(text);
    let error = match rampart_kql::bind(&query, &HuntingCatalog, &QueryParameters::new()) {
        Ok(bound) => panic!("expected an error, got {bound:?}"),
        Err(error) => error,
    };
    assert_eq!(
        error.to_string(),
        "line 1, column 26: query parameter 'Start' (datetime) has no value and no default"
    );
    let params = QueryParameters::new().with("Start", Literal::String("2024-01-01".into()));
    let error = match rampart_kql::bind(&query, &HuntingCatalog, &params) {
        Ok(bound) => panic!("expected an error, got {bound:?}"),
        Err(error) => error,
    };
    assert_eq!(
        error.to_string(),
        "line 1, column 26: query parameter 'Start' is declared datetime but its value is a string"
    );
}

#[test]
fn let_function_calls_are_checked() {
    assert_error(
        "let F = (n:long) { n * 2 };\nprint F(1, 2)",
        2,
        7,
        "function 'F' expects 1 argument, got 2",
    );
    assert_error(
        "let F = (n:long) { n * 2 };\nprint F(\"x\")",
        2,
        9,
        "function 'F' expects a long as argument 1 ('n'), got string",
    );
    assert_error(
        "let F = (T:(Timestamp:datetime)) { T | take 1 };\nDeviceInfo | invoke F() | invoke F()\n| invoke G()",
        3,
        10,
        "unknown function 'G' after 'invoke'",
    );
}

#[test]
fn tables_are_not_scalars() {
    assert_error(
        "let Recent = DeviceInfo | where Timestamp > ago(1d);\nprint x = Recent",
        2,
        11,
        "'Recent' is a table, not a scalar value; use toscalar(Recent) for a single value or 'in (Recent)' to test membership",
    );
}

#[test]
fn row_values_cannot_enter_subqueries() {
    assert_error(
        "let f = (x:string) { toscalar(DeviceInfo | where DeviceName == x | count) };\nDeviceInfo | extend c = f(DeviceName)",
        1,
        64,
        "'x' reads columns of the calling row and cannot be used inside a subquery",
    );
}

#[test]
fn parse_patterns() {
    assert_error(
        "DeviceEvents | parse ProcessCommandLine with \"-user \" User * \" \" Rest",
        1,
        55,
        "'*' cannot directly follow the string column 'User' in a parse pattern",
    );
}

#[test]
fn operator_operand_types() {
    assert_error(
        "DeviceInfo | where DeviceName between (\"a\" .. \"b\")",
        1,
        20,
        "'between' needs a number, datetime or timespan on the left, got string",
    );
    assert_error(
        "DeviceInfo | summarize count() by bin(Timestamp, 10)",
        1,
        35,
        "'bin' cannot round a datetime to a multiple of a long; use a timespan such as 1h",
    );
    assert_error(
        "DeviceNetworkEvents | where RemotePort in (\"443\", 80)",
        1,
        44,
        "'in' list item 1 is string, but the left side is int",
    );
    assert_error(
        "print x = -\"a\"",
        1,
        11,
        "operator '-' cannot be applied to a string",
    );
    assert_error(
        "DeviceInfo | where IsAzureADJoined and OSBuild",
        1,
        40,
        "'and' needs bool operands, got long",
    );
    assert_error(
        "DeviceInfo | where DeviceName has 5",
        1,
        35,
        "operator 'has' expects a string on the right, got long",
    );
}

#[test]
fn union_and_plugins() {
    assert_error(
        "union withsource=T Nothing*",
        1,
        20,
        "no table matches 'Nothing*'",
    );
    assert_error(
        "DeviceInfo | evaluate frobnicate(DeviceName)",
        1,
        23,
        "unknown plugin 'frobnicate'; supported: bag_unpack, pivot",
    );
}

#[test]
fn hostile_let_chains_are_capped() {
    let mut text = String::from("let a0 = DeviceInfo | take 1;\n");
    for i in 1..40 {
        text.push_str(&format!("let a{i} = a{} | union a{};\n", i - 1, i - 1));
    }
    text.push_str("a39 | count");
    let error = bind_error(&text);
    assert!(
        error
            .message
            .starts_with("query is too large once its let references"),
        "{error}"
    );
}
