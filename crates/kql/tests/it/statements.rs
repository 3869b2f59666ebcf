use crate::parse_ok;
use rampart_kql::ast::*;

fn lets(text: &str) -> Vec<LetStatement> {
    parse_ok(text)
        .statements
        .into_iter()
        .filter_map(|s| match s {
            Statement::Let(l) => Some(l),
            _ => None,
        })
        .collect()
}

#[test]
fn let_scalar() {
    let l = lets("let cutoff = ago(7d); T | where Timestamp > cutoff");
    assert_eq!(l[0].name.text, "cutoff");
    assert!(matches!(l[0].value, LetValue::Scalar(_)));
    let l = lets(r#"let Ids = dynamic(["a","b"]); T"#);
    assert!(matches!(
        &l[0].value,
        LetValue::Scalar(Expr {
            kind: ExprKind::Literal(Literal::Dynamic(_)),
            ..
        })
    ));
}

#[test]
fn let_tabular() {
    let l = lets("let P = DeviceProcessEvents | where x == 1; P | count");
    assert!(matches!(&l[0].value, LetValue::Tabular(t) if t.operators.len() == 1));
    let l = lets("let U = union A, B; U");
    assert!(matches!(&l[0].value, LetValue::Tabular(_)));
    let l = lets("let D = datatable (a:long) [1, 2]; D");
    assert!(matches!(&l[0].value, LetValue::Tabular(_)));
    let l = lets("let S = (T | take 1); S");
    assert!(matches!(&l[0].value, LetValue::Tabular(_)));
}

#[test]
fn let_materialize() {
    let l = lets("let M = materialize(T | summarize count() by x); M | join M on x");
    assert!(matches!(&l[0].value, LetValue::Materialize(t) if t.operators.len() == 1));
}

#[test]
fn let_functions() {
    let l = lets("let F = (T:(*), p:long = 5) { let x = p * 2; T | take x }; T | invoke F(3)");
    let LetValue::Function(f) = &l[0].value else {
        panic!()
    };
    assert!(!f.is_view);
    assert_eq!(f.params.len(), 2);
    assert_eq!(f.params[0].ty, ParamType::Tabular(None));
    assert_eq!(f.params[1].ty, ParamType::Scalar(ScalarType::Long));
    assert!(f.params[1].default.is_some());
    assert_eq!(f.lets.len(), 1);
    assert!(matches!(f.body, FunctionBody::Tabular(_)));

    let l = lets("let Add = (a:long, b:long) { a + b }; print Add(1, 2)");
    let LetValue::Function(f) = &l[0].value else {
        panic!()
    };
    assert!(matches!(f.body, FunctionBody::Scalar(_)));

    let l = lets("let Zero = () { 0 }; print Zero()");
    assert!(matches!(&l[0].value, LetValue::Function(f) if f.params.is_empty()));

    let l = lets("let S = (T:(Name:string, N:long)) { T | where N > 1 }; S(X)");
    let LetValue::Function(f) = &l[0].value else {
        panic!()
    };
    assert!(matches!(&f.params[0].ty, ParamType::Tabular(Some(c)) if c.len() == 2));

    let l = lets("let V = view () { T | take 1 }; V");
    assert!(matches!(&l[0].value, LetValue::Function(f) if f.is_view));
}

#[test]
fn set_and_declare() {
    let query = parse_ok(
        "set notruncation; set truncationmaxrecords=1000; declare query_parameters(Start:datetime, N:long = 10); T | take N",
    );
    assert_eq!(query.statements.len(), 4);
    assert!(
        matches!(&query.statements[0], Statement::Set { name, value: None } if name.text == "notruncation")
    );
    assert!(matches!(
        &query.statements[1],
        Statement::Set { value: Some(_), .. }
    ));
    assert!(matches!(&query.statements[2], Statement::DeclareQueryParameters(p) if p.len() == 2));
}

#[test]
fn several_tabular_statements_and_trailing_semicolon() {
    let query = parse_ok("T | take 1; U | count;");
    assert_eq!(query.statements.len(), 2);
}

#[test]
fn keywords_as_column_names() {
    parse_ok("T | project count, title, kind, type, id, log, range");
    parse_ok("T | where kind == 'x' | summarize count() by type");
}

#[test]
fn legacy_spellings_parse() {
    parse_ok(
        "T | mvexpand a | summarize makeset(x), makelist(y), any(z), argmax(t, u), cnt() by h",
    );
    parse_ok("T | where notnull(a) and notempty(b) | extend p = parsejson(c), r = iif(a, 1, 2)");
    parse_ok("T | where Cmd containscs 'x' or Cmd notcontains 'y' or Cmd notcontainscs 'z'");
    parse_ok(
        "T | join kind=anti R on k | join kind=leftantisemi R on k | join kind=rightantisemi R on k",
    );
    parse_ok("T | order by a | limit 5 | filter b > 1");
    parse_ok("T | extend d = datepart('day', t), e = todouble(x), f = floor(v, 2)");
}
