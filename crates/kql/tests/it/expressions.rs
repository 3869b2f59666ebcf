use crate::{expr, sexpr};
use rampart_kql::ast::*;

fn shape(text: &str) -> String {
    sexpr(&expr(text))
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(shape("a or b and c"), "(Or a (And b c))");
    assert_eq!(shape("a and b or c"), "(Or (And a b) c)");
}

#[test]
fn not_is_a_function_call() {
    assert_eq!(shape("not(x)"), "not(x)");
    assert_eq!(shape("not(a or b) and c"), "(And not((Or a b)) c)");
}

#[test]
fn unary_minus_binds_tighter_than_multiplication() {
    assert_eq!(shape("-a * b"), "(Mul (Neg a) b)");
    assert_eq!(shape("a - -b"), "(Sub a (Neg b))");
}

#[test]
fn arithmetic_precedence_and_associativity() {
    assert_eq!(shape("a + b * c"), "(Add a (Mul b c))");
    assert_eq!(shape("a - b - c"), "(Sub (Sub a b) c)");
    assert_eq!(shape("(a + b) % c"), "(Mod (Add a b) c)");
    assert_eq!(shape("a + b > c * 2"), "(Gt (Add a b) (Mul c 2))");
}

#[test]
fn comparisons_bind_tighter_than_logic() {
    assert_eq!(shape("a == 1 and b != 2"), "(And (Eq a 1) (NotEq b 2))");
    assert_eq!(shape("a <> 1"), "(NotEq a 1)");
    assert_eq!(shape("a < 1 or b >= 2"), "(Or (Lt a 1) (Ge b 2))");
}

#[test]
fn string_operators_bind_tighter_than_arithmetic() {
    assert_eq!(shape(r#"a + b has "x""#), r#"(Add a (Has b "x"))"#);
}

#[test]
fn every_string_operator() {
    let cases = [
        ("=~", "EqCi"),
        ("!~", "NotEqCi"),
        ("has", "Has"),
        ("!has", "NotHas"),
        ("has_cs", "HasCs"),
        ("!has_cs", "NotHasCs"),
        ("hasprefix", "HasPrefix"),
        ("!hasprefix", "NotHasPrefix"),
        ("hasprefix_cs", "HasPrefixCs"),
        ("!hasprefix_cs", "NotHasPrefixCs"),
        ("hassuffix", "HasSuffix"),
        ("!hassuffix", "NotHasSuffix"),
        ("hassuffix_cs", "HasSuffixCs"),
        ("!hassuffix_cs", "NotHasSuffixCs"),
        ("contains", "Contains"),
        ("!contains", "NotContains"),
        ("contains_cs", "ContainsCs"),
        ("!contains_cs", "NotContainsCs"),
        ("startswith", "StartsWith"),
        ("!startswith", "NotStartsWith"),
        ("startswith_cs", "StartsWithCs"),
        ("!startswith_cs", "NotStartsWithCs"),
        ("endswith", "EndsWith"),
        ("!endswith", "NotEndsWith"),
        ("endswith_cs", "EndsWithCs"),
        ("!endswith_cs", "NotEndsWithCs"),
        ("matches regex", "MatchesRegex"),
        // Legacy spellings map onto the modern operators.
        ("containscs", "ContainsCs"),
        ("notcontains", "NotContains"),
        ("notcontainscs", "NotContainsCs"),
        ("like", "Like"),
        ("notlike", "NotLike"),
    ];
    for (op, name) in cases {
        assert_eq!(
            shape(&format!("Col {op} \"x\"")),
            format!("({name} Col \"x\")"),
            "{op}"
        );
    }
}

#[test]
fn list_operators() {
    assert_eq!(shape(r#"x in ("a", "b")"#), r#"(In x ["a", "b"])"#);
    assert_eq!(shape(r#"x !in ("a")"#), r#"(NotIn x ["a"])"#);
    assert_eq!(shape(r#"x in~ ("a")"#), r#"(InCi x ["a"])"#);
    assert_eq!(shape(r#"x !in~ ("a")"#), r#"(NotInCi x ["a"])"#);
    assert_eq!(shape("x has_any (Kw)"), "(HasAny x [Kw])");
    assert_eq!(shape(r#"x has_all ("a", "b")"#), r#"(HasAll x ["a", "b"])"#);
    assert_eq!(shape("x in ((T | project Id))"), "(In x [<tabular>])");
    assert_eq!(shape("a in (1) and b"), "(And (In a [1]) b)");
}

#[test]
fn between_forms() {
    assert_eq!(shape("x between (1 .. 5)"), "(between x 1 5)");
    assert_eq!(shape("x !between (1..5)"), "(!between x 1 5)");
    assert_eq!(
        shape("T between (ago(1d) .. now())"),
        "(between T ago(Timespan(864000000000)) now())"
    );
}

#[test]
fn dynamic_access() {
    assert_eq!(shape("d.a.b == 1"), "(Eq d.a.b 1)");
    assert_eq!(shape("d['with space'] == 1"), r#"(Eq d["with space"] 1)"#);
    assert_eq!(shape(r#"d["k"][0].x == 1"#), r#"(Eq d["k"][0].x 1)"#);
    assert_eq!(
        shape("parse_json(c).x has 'a'"),
        r#"(Has parse_json(c).x "a")"#
    );
}

#[test]
fn bracketed_names_are_names() {
    assert_eq!(shape("['where'] == 1"), "(Eq where 1)");
    assert_eq!(
        shape(r#"["Query Parameters"].x == 1"#),
        "(Eq Query Parameters.x 1)"
    );
}

#[test]
fn star_as_left_operand() {
    assert_eq!(shape(r#"* has "x""#), r#"(Has * "x")"#);
}

#[test]
fn calls_including_aggregates_and_count() {
    assert_eq!(shape("isnotempty(x)"), "isnotempty(x)");
    assert_eq!(shape("count() > 1"), "(Gt count() 1)");
    assert_eq!(
        shape("strcat(a, 'b', 1) == 'x'"),
        r#"(Eq strcat(a, "b", 1) "x")"#
    );
    assert_eq!(
        shape("toscalar(T | count) > 0"),
        "(Gt toscalar(<tabular>) 0)"
    );
}

#[test]
fn adjacent_strings_concatenate() {
    assert_eq!(shape(r#"x == "ab" 'cd' @"\e""#), r#"(Eq x "abcd\\e")"#);
}

#[test]
fn typed_literals() {
    let literal = |text: &str| match expr(&format!("x == {text}")).kind {
        ExprKind::Binary { right, .. } => match right.kind {
            ExprKind::Literal(literal) => literal,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(literal("int(42)"), Literal::Int(42));
    assert_eq!(literal("long(-3)"), Literal::Long(-3));
    assert_eq!(literal("real(+inf)"), Literal::Real(f64::INFINITY));
    assert_eq!(literal("decimal(1.25)"), Literal::Decimal("1.25".into()));
    assert_eq!(literal("bool(true)"), Literal::Bool(true));
    assert_eq!(
        literal("datetime(2024-05-01 13:45)"),
        Literal::Datetime("2024-05-01 13:45".into())
    );
    assert_eq!(literal("time(00:05:00)"), Literal::Timespan(3_000_000_000));
    assert_eq!(literal("timespan(1d)"), Literal::Timespan(864_000_000_000));
    assert_eq!(literal("int(null)"), Literal::Null(ScalarType::Int));
    assert_eq!(
        literal("datetime(null)"),
        Literal::Null(ScalarType::Datetime)
    );
    assert_eq!(literal("typeof(string)"), Literal::Type(ScalarType::String));
    assert_eq!(
        literal("guid(74be27de-1e4e-49d9-b579-fe0b331d3642)"),
        Literal::Guid("74be27de-1e4e-49d9-b579-fe0b331d3642".into())
    );
    assert_eq!(
        literal(r#"dynamic(["a", -1, {"b": 2.5, 'c': null}, datetime(2024-01-01), 1h])"#),
        Literal::Dynamic(DynamicValue::Array(vec![
            DynamicValue::String("a".into()),
            DynamicValue::Long(-1),
            DynamicValue::Object(vec![
                ("b".into(), DynamicValue::Real(2.5)),
                ("c".into(), DynamicValue::Null),
            ]),
            DynamicValue::Datetime("2024-01-01".into()),
            DynamicValue::Timespan(36_000_000_000),
        ]))
    );
    assert_eq!(
        literal("dynamic([])"),
        Literal::Dynamic(DynamicValue::Array(vec![]))
    );
    assert_eq!(
        literal("dynamic({})"),
        Literal::Dynamic(DynamicValue::Object(vec![]))
    );
}

#[test]
fn spans_cover_the_expression() {
    let text = "T | where a + 1 > b";
    let e = expr("a + 1 > b");
    assert_eq!(&text[e.span.start..e.span.end], "a + 1 > b");
}

#[test]
fn named_call_arguments() {
    let e = crate::expr("f(T, Acct = AccountName, x == 1)");
    assert_eq!(sexpr(&e), "f(T, Acct=AccountName, (Eq x 1))");
}
