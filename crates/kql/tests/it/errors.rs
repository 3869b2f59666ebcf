use rampart_kql::ParseError;

fn error(text: &str) -> ParseError {
    match rampart_kql::parse(text) {
        Ok(query) => panic!("expected an error for {text:?}, got {query:?}"),
        Err(error) => error,
    }
}

fn assert_error(text: &str, line: usize, column: usize, fragment: &str) {
    let e = error(text);
    assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
    assert!(
        e.to_string().contains(fragment),
        "{text:?}: {e} does not mention {fragment:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("line {line}, column {column}: ")),
        "{e}"
    );
}

#[test]
fn missing_right_operand_names_operator_and_found_token() {
    assert_error(
        "T\n| where x == | take 1",
        2,
        14,
        "expected an expression after '==', found '|'",
    );
}

#[test]
fn unknown_operator() {
    assert_error("T | frobnicate x", 1, 5, "expected an operator name");
}

#[test]
fn missing_operator_after_pipe() {
    assert_error("T |", 1, 4, "found end of input");
}

#[test]
fn unclosed_parenthesis() {
    assert_error("T | where (a > 1", 1, 17, "expected ')'");
}

#[test]
fn invalid_escape_in_string() {
    assert_error(
        "T | where x matches regex \"\\d+\"",
        1,
        27,
        "invalid escape sequence '\\d'",
    );
}

#[test]
fn unterminated_string() {
    assert_error("T\n| where x == 'abc", 2, 14, "unterminated");
}

#[test]
fn sort_without_by() {
    assert_error("T | sort x", 1, 10, "expected 'by'");
}

#[test]
fn bad_join_kind() {
    assert_error(
        "T | join kind=sideways R on k",
        1,
        15,
        "expected a join kind",
    );
}

#[test]
fn join_without_on() {
    assert_error("T | join R", 1, 11, "expected 'on'");
}

#[test]
fn let_without_semicolon() {
    assert_error("let x = 1\nT", 2, 1, "expected ';'");
}

#[test]
fn chained_comparison_is_rejected() {
    assert_error("T | where a < b < c", 1, 17, "add parentheses");
}

#[test]
fn empty_query() {
    assert_error("  // nothing", 1, 13, "expected a query");
}

#[test]
fn bad_timespan_literal() {
    assert_error("print timespan(abc)", 1, 7, "invalid timespan literal");
}

#[test]
fn bad_dynamic_literal() {
    assert_error("print dynamic([1, }])", 1, 19, "dynamic");
}

#[test]
fn unexpected_character() {
    assert_error("T | where a # b", 1, 13, "unexpected character '#'");
}

#[test]
fn column_counts_characters_not_bytes() {
    assert_error("print 'éé', ", 1, 13, "expected an expression");
}
