//! `$filter` parser: recursive descent over the lexer's tokens.
//!
//! Grammar (keywords case-insensitive; precedence `or` < `and` < `not` < comparison):
//!
//! ```text
//! or        := and ('or' and)*
//! and       := unary ('and' unary)*
//! unary     := 'not' unary | primary
//! primary   := '(' or ')'
//!            | strfn '(' path ',' string ')' [('eq'|'ne') ('true'|'false')]
//!            | path '/' 'any' '(' var ':' or ')'
//!            | path 'in' '(' [literal (',' literal)*] ')'
//!            | operand cmp operand          (exactly one side a path)
//! ```
//!
//! The parser only checks syntax; [`super::validate`] checks names and types against an entity
//! set. Input length and nesting depth are bounded so that no filter can exhaust the stack, and
//! chains of `and`/`or` are built as balanced trees so that later recursive passes (validation,
//! SQL compilation, drop) stay shallow too.

use super::lexer::{self, Tok, Token};
use super::{CmpOp, Filter, Literal, ODataError, StrFn};

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses, `not` and `any` accepted.
pub const MAX_DEPTH: usize = 64;

/// Parses a `$filter` expression (fields not yet checked against an entity set).
pub fn parse_filter(src: &str) -> Result<Filter> {
    if src.len() > MAX_FILTER_LEN {
        return Err(ODataError::new(
            "$filter",
            format!(
                "$filter is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
                src.len()
            ),
        ));
    }
    let toks = lexer::tokenize(src)?;
    if toks.is_empty() {
        return Err(ODataError::new(
            "$filter",
            "$filter is empty: give a condition such as status eq 'New'",
        ));
    }
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
        end: src.chars().count(),
    };
    let f = p.or_expr()?;
    match p.peek() {
        None => Ok(f),
        Some(t) => Err(p.error(
            t.pos,
            format!(
                "expected 'and', 'or' or the end of the filter, found {}",
                t.tok.describe()
            ),
        )),
    }
}

/// One side of a comparison.
enum Operand {
    Path(String),
    Value(Literal),
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    /// Character length of the input: the position reported for "unexpected end".
    end: usize,
}

type Result<T> = std::result::Result<T, ODataError>;

impl Parser {
    fn error(&self, pos: usize, message: impl std::fmt::Display) -> ODataError {
        ODataError::new("$filter", format!("$filter: {message} at position {pos}"))
    }

    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }

    fn peek_tok(&self) -> Option<&Tok> {
        self.peek().map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// Where the next token starts, or the end of input.
    fn pos(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        let yes = self.peek_keyword(kw);
        if yes {
            self.i += 1;
        }
        yes
    }

    /// Consumes `want` or fails with "expected {what}".
    fn expect(&mut self, want: &Tok, what: &str) -> Result<Token> {
        match self.next() {
            Some(t) if &t.tok == want => Ok(t),
            Some(t) => Err(self.error(
                t.pos,
                format!("expected {what}, found {}", t.tok.describe()),
            )),
            None => Err(self.error(self.end, format!("expected {what}, but the filter ends"))),
        }
    }

    fn enter(&mut self, pos: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                pos,
                format!("the filter nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn or_expr(&mut self) -> Result<Filter> {
        let mut terms = vec![self.and_expr()?];
        while self.eat_keyword("or") {
            terms.push(self.and_expr()?);
        }
        balance(terms, Filter::Or).ok_or_else(|| self.error(self.pos(), "expected a condition"))
    }

    fn and_expr(&mut self) -> Result<Filter> {
        let mut terms = vec![self.unary()?];
        while self.eat_keyword("and") {
            terms.push(self.unary()?);
        }
        balance(terms, Filter::And).ok_or_else(|| self.error(self.pos(), "expected a condition"))
    }

    fn unary(&mut self) -> Result<Filter> {
        // `not` is a keyword only when a condition follows; `not eq 1` would compare a property
        // called "not", which no entity has, so treating it as the operator is harmless.
        if self.peek_keyword("not") {
            let pos = self.pos();
            self.i += 1;
            self.enter(pos)?;
            let inner = self.unary()?;
            self.leave();
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter> {
        let pos = self.pos();
        let Some(first) = self.next() else {
            return Err(self.error(pos, "expected a condition, but the filter ends"));
        };
        match first.tok {
            Tok::LParen => {
                self.enter(pos)?;
                let inner = self.or_expr()?;
                self.expect(
                    &Tok::RParen,
                    &format!("')' to close the '(' at position {pos}"),
                )?;
                self.leave();
                Ok(inner)
            }
            Tok::Ident(name)
                if self.peek_tok() == Some(&Tok::LParen) && !is_literal_keyword(&name) =>
            {
                self.function(&name, pos)
            }
            tok => {
                let left = self.operand_from(tok, pos)?;
                if let Operand::Path(field) = &left {
                    if self.peek_tok() == Some(&Tok::Slash) {
                        return self.lambda(field.clone());
                    }
                    if self.peek_keyword("in") {
                        self.i += 1;
                        return self.in_list(field.clone());
                    }
                }
                self.comparison(left, pos)
            }
        }
    }

    /// Turns the token that starts an operand into a property path or a literal.
    fn operand_from(&self, tok: Tok, pos: usize) -> Result<Operand> {
        Ok(match tok {
            Tok::Ident(s) => match keyword_literal(&s) {
                Some(l) => Operand::Value(l),
                None => Operand::Path(s),
            },
            Tok::Str(s) => Operand::Value(Literal::String(s)),
            Tok::Int(i) => Operand::Value(Literal::Int(i)),
            Tok::DateTime(t) => Operand::Value(Literal::DateTime(t)),
            other => {
                return Err(self.error(
                    pos,
                    format!("expected a condition, found {}", other.describe()),
                ));
            }
        })
    }

    /// `left op right` where one side is a property and the other a value.
    fn comparison(&mut self, left: Operand, left_pos: usize) -> Result<Filter> {
        let op_pos = self.pos();
        let op = match self.peek_tok() {
            Some(Tok::Ident(s)) => cmp_op(s),
            _ => None,
        };
        let Some(op) = op else {
            let after = match &left {
                Operand::Path(p) => format!("the property '{}'", lexer::shorten(p)),
                Operand::Value(_) => "a value".to_owned(),
            };
            let found = self
                .peek()
                .map_or_else(|| "the end of the filter".to_owned(), |t| t.tok.describe());
            let ops = match left {
                Operand::Path(_) => "eq, ne, gt, ge, lt, le or in",
                Operand::Value(_) => "eq, ne, gt, ge, lt or le",
            };
            return Err(self.error(
                op_pos,
                format!("expected an operator ({ops}) after {after}, found {found}"),
            ));
        };
        let op_text = self.next().map(|t| t.tok.describe()).unwrap_or_default();
        let right_pos = self.pos();
        let right = match self.next() {
            Some(t) => match t.tok {
                Tok::Ident(_) | Tok::Str(_) | Tok::Int(_) | Tok::DateTime(_) => {
                    self.operand_from(t.tok, right_pos)?
                }
                other => {
                    return Err(self.error(
                        right_pos,
                        format!(
                            "expected a value after {op_text}, found {}",
                            other.describe()
                        ),
                    ));
                }
            },
            None => return Err(self.error(right_pos, format!("expected a value after {op_text}"))),
        };
        match (left, right) {
            (Operand::Path(field), Operand::Value(value)) => Ok(Filter::Compare { field, op, value }),
            // `5 lt size` means `size gt 5`.
            (Operand::Value(value), Operand::Path(field)) => Ok(Filter::Compare { field, op: flip(op), value }),
            (Operand::Path(a), Operand::Path(b)) => Err(self.error(
                left_pos,
                format!(
                    "comparing two properties ('{}' and '{}') is not supported; compare a property with a value",
                    lexer::shorten(&a),
                    lexer::shorten(&b)
                ),
            )),
            (Operand::Value(_), Operand::Value(_)) => {
                Err(self.error(left_pos, "a comparison needs a property on one side, e.g. severity eq 'High'"))
            }
        }
    }

    /// `startswith(field,'v')`, optionally compared with `true`/`false`.
    fn function(&mut self, name: &str, pos: usize) -> Result<Filter> {
        let func = match name.to_ascii_lowercase().as_str() {
            "startswith" => StrFn::StartsWith,
            "endswith" => StrFn::EndsWith,
            "contains" => StrFn::Contains,
            _ => {
                return Err(self.error(
                    pos,
                    format!(
                        "unknown function '{}'; supported: startswith, endswith, contains",
                        lexer::shorten(name)
                    ),
                ));
            }
        };
        let fname = name.to_ascii_lowercase();
        self.expect(&Tok::LParen, "'('")?;
        let field = self.path(&format!("a property name as the first argument of {fname}"))?;
        self.expect(&Tok::Comma, &format!("',' after the property in {fname}"))?;
        let value_pos = self.pos();
        let value = match self.next().map(|t| t.tok) {
            Some(Tok::Str(s)) => s,
            Some(other) => {
                return Err(self.error(
                    value_pos,
                    format!(
                        "expected a quoted string as the second argument of {fname}, found {}",
                        other.describe()
                    ),
                ));
            }
            None => {
                return Err(self.error(
                    value_pos,
                    format!("expected a quoted string as the second argument of {fname}"),
                ));
            }
        };
        self.expect(&Tok::RParen, &format!("')' to close {fname}("))?;
        let call = Filter::StrFn { func, field, value };

        // `startswith(f,'v') eq true` is the function; `… eq false` / `… ne true` its negation.
        let negate_if_eq = if self.peek_keyword("eq") {
            false
        } else if self.peek_keyword("ne") {
            true
        } else {
            return Ok(call);
        };
        let op_text = self.next().map(|t| t.tok.describe()).unwrap_or_default();
        let b_pos = self.pos();
        let b = match self.next().map(|t| t.tok) {
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => false,
            _ => {
                return Err(self.error(
                    b_pos,
                    format!("expected true or false after {op_text} (the result of {fname})"),
                ));
            }
        };
        if b != negate_if_eq {
            Ok(call)
        } else {
            Ok(Filter::Not(Box::new(call)))
        }
    }

    /// A property name (no `/` paths except for `any`).
    fn path(&mut self, what: &str) -> Result<String> {
        let pos = self.pos();
        match self.next().map(|t| t.tok) {
            Some(Tok::Ident(s)) if !is_literal_keyword(&s) => Ok(s),
            Some(other) => {
                Err(self.error(pos, format!("expected {what}, found {}", other.describe())))
            }
            None => Err(self.error(pos, format!("expected {what}, but the filter ends"))),
        }
    }

    /// `field/any(var: predicate)`; the `/` is next.
    fn lambda(&mut self, field: String) -> Result<Filter> {
        self.i += 1; // the '/'
        let pos = self.pos();
        match self.next().map(|t| t.tok) {
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("any") => {}
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("all") => {
                return Err(self.error(
                    pos,
                    "all() is not supported; use any(), e.g. machineTags/any(t: t eq 'x')",
                ));
            }
            _ => {
                return Err(self.error(
                    pos,
                    format!(
                        "expected any(…) after '{}/'; property paths are not supported",
                        lexer::shorten(&field)
                    ),
                ));
            }
        }
        let open = self.expect(&Tok::LParen, "'(' after any")?;
        if self.peek_tok() == Some(&Tok::RParen) {
            return Err(self.error(
                self.pos(),
                "any() needs a condition, e.g. machineTags/any(t: t eq 'x')",
            ));
        }
        let var = self.path("a variable name, as in any(t: t eq 'x')")?;
        self.expect(
            &Tok::Colon,
            &format!("':' after the variable '{}'", lexer::shorten(&var)),
        )?;
        self.enter(open.pos)?;
        let predicate = self.or_expr()?;
        self.expect(
            &Tok::RParen,
            &format!("')' to close the any( at position {}", open.pos),
        )?;
        self.leave();
        Ok(Filter::Any {
            field,
            var,
            predicate: Box::new(predicate),
        })
    }

    /// `field in (v1, v2, …)`; `in` was consumed.
    fn in_list(&mut self, field: String) -> Result<Filter> {
        self.expect(&Tok::LParen, "'(' after in")?;
        let mut values = Vec::new();
        if self.peek_tok() == Some(&Tok::RParen) {
            self.i += 1;
            return Ok(Filter::In { field, values });
        }
        loop {
            let pos = self.pos();
            let value = match self.next().map(|t| t.tok) {
                Some(Tok::Str(s)) => Literal::String(s),
                Some(Tok::Int(i)) => Literal::Int(i),
                Some(Tok::DateTime(t)) => Literal::DateTime(t),
                Some(Tok::Ident(s)) => match keyword_literal(&s) {
                    Some(l) => l,
                    None => {
                        return Err(self.error(
                            pos,
                            format!(
                                "expected a value in the in (…) list, found '{}'",
                                lexer::shorten(&s)
                            ),
                        ));
                    }
                },
                Some(other) => {
                    return Err(self.error(
                        pos,
                        format!(
                            "expected a value in the in (…) list, found {}",
                            other.describe()
                        ),
                    ));
                }
                None => {
                    return Err(self.error(
                        pos,
                        "expected a value in the in (…) list, but the filter ends",
                    ));
                }
            };
            values.push(value);
            let pos = self.pos();
            match self.next().map(|t| t.tok) {
                Some(Tok::Comma) => {}
                Some(Tok::RParen) => return Ok(Filter::In { field, values }),
                Some(other) => {
                    return Err(self.error(
                        pos,
                        format!(
                            "expected ',' or ')' in the in (…) list, found {}",
                            other.describe()
                        ),
                    ));
                }
                None => {
                    return Err(self.error(
                        pos,
                        "expected ')' to close the in (…) list, but the filter ends",
                    ));
                }
            }
        }
    }
}

/// Joins a chain of `and`s or `or`s into a balanced tree (left-leaning for 2 and 3 terms), so
/// that its depth grows with the logarithm of its length. Both operators are associative, also
/// in SQL's three-valued logic, so the shape does not change the meaning.
fn balance(mut terms: Vec<Filter>, join: fn(Box<Filter>, Box<Filter>) -> Filter) -> Option<Filter> {
    while terms.len() > 1 {
        let mut next = Vec::with_capacity(terms.len() / 2 + 1);
        let mut it = terms.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(join(Box::new(a), Box::new(b))),
                None => next.push(a),
            }
        }
        terms = next;
    }
    terms.pop()
}

fn keyword_literal(s: &str) -> Option<Literal> {
    if s.eq_ignore_ascii_case("null") {
        Some(Literal::Null)
    } else if s.eq_ignore_ascii_case("true") {
        Some(Literal::Bool(true))
    } else if s.eq_ignore_ascii_case("false") {
        Some(Literal::Bool(false))
    } else {
        None
    }
}

fn is_literal_keyword(s: &str) -> bool {
    keyword_literal(s).is_some()
}

fn cmp_op(s: &str) -> Option<CmpOp> {
    Some(match s.to_ascii_lowercase().as_str() {
        "eq" => CmpOp::Eq,
        "ne" => CmpOp::Ne,
        "gt" => CmpOp::Gt,
        "ge" => CmpOp::Ge,
        "lt" => CmpOp::Lt,
        "le" => CmpOp::Le,
        _ => return None,
    })
}

/// The operator that keeps a comparison's meaning when its sides swap.
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        same => same,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt;

    fn cmp(field: &str, op: CmpOp, value: Literal) -> Filter {
        Filter::Compare {
            field: field.into(),
            op,
            value,
        }
    }
    fn s(v: &str) -> Literal {
        Literal::String(v.into())
    }
    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }
    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }
    fn not(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }
    fn err(src: &str) -> String {
        let e = parse_filter(src).unwrap_err();
        assert_eq!(e.target, "$filter");
        e.message
    }

    #[test]
    fn comparisons_with_every_operator() {
        for (text, op) in [
            ("eq", CmpOp::Eq),
            ("ne", CmpOp::Ne),
            ("gt", CmpOp::Gt),
            ("ge", CmpOp::Ge),
            ("lt", CmpOp::Lt),
            ("le", CmpOp::Le),
        ] {
            assert_eq!(
                parse_filter(&format!("incidentId {text} 5")).unwrap(),
                cmp("incidentId", op, Literal::Int(5))
            );
            let upper = text.to_ascii_uppercase();
            assert_eq!(
                parse_filter(&format!("incidentId {upper} -5")).unwrap(),
                cmp("incidentId", op, Literal::Int(-5))
            );
        }
    }

    #[test]
    fn literal_kinds() {
        assert_eq!(
            parse_filter("a eq 'it''s'").unwrap(),
            cmp("a", CmpOp::Eq, s("it's"))
        );
        assert_eq!(
            parse_filter("a eq true").unwrap(),
            cmp("a", CmpOp::Eq, Literal::Bool(true))
        );
        assert_eq!(
            parse_filter("a ne FALSE").unwrap(),
            cmp("a", CmpOp::Ne, Literal::Bool(false))
        );
        assert_eq!(
            parse_filter("a eq null").unwrap(),
            cmp("a", CmpOp::Eq, Literal::Null)
        );
        assert_eq!(
            parse_filter("a ne Null").unwrap(),
            cmp("a", CmpOp::Ne, Literal::Null)
        );
        let t = timefmt::parse("2019-11-22T00:00:00Z").unwrap();
        assert_eq!(
            parse_filter("lastUpdateTime ge 2019-11-22T00:00:00Z").unwrap(),
            cmp("lastUpdateTime", CmpOp::Ge, Literal::DateTime(t))
        );
        assert_eq!(
            parse_filter("lastUpdateTime ge 2019-11-22").unwrap(),
            cmp("lastUpdateTime", CmpOp::Ge, Literal::DateTime(t))
        );
    }

    #[test]
    fn reversed_comparisons_are_normalised() {
        assert_eq!(
            parse_filter("5 lt size").unwrap(),
            cmp("size", CmpOp::Gt, Literal::Int(5))
        );
        assert_eq!(
            parse_filter("5 ge size").unwrap(),
            cmp("size", CmpOp::Le, Literal::Int(5))
        );
        assert_eq!(
            parse_filter("'High' eq severity").unwrap(),
            cmp("severity", CmpOp::Eq, s("High"))
        );
        assert_eq!(
            parse_filter("null ne x").unwrap(),
            cmp("x", CmpOp::Ne, Literal::Null)
        );
    }

    #[test]
    fn precedence_or_and_not() {
        let a = || cmp("a", CmpOp::Eq, Literal::Int(1));
        let b = || cmp("b", CmpOp::Eq, Literal::Int(2));
        let c = || cmp("c", CmpOp::Eq, Literal::Int(3));
        assert_eq!(
            parse_filter("a eq 1 or b eq 2 and c eq 3").unwrap(),
            or(a(), and(b(), c()))
        );
        assert_eq!(
            parse_filter("a eq 1 AND b eq 2 Or c eq 3").unwrap(),
            or(and(a(), b()), c())
        );
        assert_eq!(
            parse_filter("not a eq 1 and b eq 2").unwrap(),
            and(not(a()), b())
        );
        assert_eq!(
            parse_filter("not (a eq 1 or b eq 2)").unwrap(),
            not(or(a(), b()))
        );
        assert_eq!(parse_filter("NOT NOT a eq 1").unwrap(), not(not(a())));
        assert_eq!(
            parse_filter("(a eq 1 or b eq 2) and c eq 3").unwrap(),
            and(or(a(), b()), c())
        );
        assert_eq!(parse_filter("((a eq 1))").unwrap(), a());
        assert_eq!(
            parse_filter("a eq 1 and b eq 2 and c eq 3").unwrap(),
            and(and(a(), b()), c())
        );
    }

    #[test]
    fn long_chains_are_balanced() {
        fn depth(f: &Filter) -> usize {
            match f {
                Filter::And(a, b) | Filter::Or(a, b) => 1 + depth(a).max(depth(b)),
                Filter::Not(a) => 1 + depth(a),
                Filter::Any { predicate, .. } => 1 + depth(predicate),
                _ => 1,
            }
        }
        let src = vec!["a eq 1"; 700].join(" or ");
        assert!(src.len() < MAX_FILTER_LEN);
        let f = parse_filter(&src).unwrap();
        assert!(depth(&f) <= 11, "{}", depth(&f));
    }

    #[test]
    fn string_functions_and_their_boolean_comparisons() {
        let sw = || Filter::StrFn {
            func: StrFn::StartsWith,
            field: "title".into(),
            value: "Sus".into(),
        };
        assert_eq!(parse_filter("startswith(title,'Sus')").unwrap(), sw());
        assert_eq!(parse_filter("StartsWith( title , 'Sus' )").unwrap(), sw());
        assert_eq!(
            parse_filter("startswith(title,'Sus') eq true").unwrap(),
            sw()
        );
        assert_eq!(
            parse_filter("startswith(title,'Sus') ne false").unwrap(),
            sw()
        );
        assert_eq!(
            parse_filter("startswith(title,'Sus') eq false").unwrap(),
            not(sw())
        );
        assert_eq!(
            parse_filter("startswith(title,'Sus') ne true").unwrap(),
            not(sw())
        );
        assert_eq!(
            parse_filter("endswith(a,'x') or CONTAINS(b,'y')").unwrap(),
            or(
                Filter::StrFn {
                    func: StrFn::EndsWith,
                    field: "a".into(),
                    value: "x".into()
                },
                Filter::StrFn {
                    func: StrFn::Contains,
                    field: "b".into(),
                    value: "y".into()
                }
            )
        );
    }

    #[test]
    fn in_lists() {
        assert_eq!(
            parse_filter("status in ('New', 'InProgress')").unwrap(),
            Filter::In {
                field: "status".into(),
                values: vec![s("New"), s("InProgress")]
            }
        );
        assert_eq!(
            parse_filter("id IN (1,2,null)").unwrap(),
            Filter::In {
                field: "id".into(),
                values: vec![Literal::Int(1), Literal::Int(2), Literal::Null]
            }
        );
        assert_eq!(
            parse_filter("id in ()").unwrap(),
            Filter::In {
                field: "id".into(),
                values: vec![]
            }
        );
    }

    #[test]
    fn any_lambdas() {
        assert_eq!(
            parse_filter("machineTags/any(t: t eq 'x')").unwrap(),
            Filter::Any {
                field: "machineTags".into(),
                var: "t".into(),
                predicate: Box::new(cmp("t", CmpOp::Eq, s("x")))
            }
        );
        assert_eq!(
            parse_filter("machineTags/ANY(tag: startswith(tag,'p') and not tag eq 'px')").unwrap(),
            Filter::Any {
                field: "machineTags".into(),
                var: "tag".into(),
                predicate: Box::new(and(
                    Filter::StrFn {
                        func: StrFn::StartsWith,
                        field: "tag".into(),
                        value: "p".into()
                    },
                    not(cmp("tag", CmpOp::Eq, s("px")))
                ))
            }
        );
    }

    #[test]
    fn errors_name_position_and_expectation() {
        assert_eq!(
            err("severity eq "),
            "$filter: expected a value after 'eq' at position 12"
        );
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        let m = err("severity 'High'");
        assert!(
            m.contains("expected an operator") && m.contains("position 9"),
            "{m}"
        );
        let m = err("severity eq 'High' status eq 'New'");
        assert!(
            m.contains("expected 'and', 'or'") && m.contains("position 19"),
            "{m}"
        );
        let m = err("(a eq 1");
        assert!(m.contains("')'") && m.contains("position 7"), "{m}");
        let m = err("a eq 1 and");
        assert!(
            m.contains("expected a condition") && m.contains("position 10"),
            "{m}"
        );
        assert!(err("a eq b").contains("two properties"));
        assert!(err("1 eq 2").contains("property on one side"));
        assert!(err("tolower(a) eq 'x'").contains("unknown function 'tolower'"));
        assert!(err("startswith(a, 5)").contains("quoted string"));
        assert!(err("startswith('a', 'b')").contains("property name"));
        assert!(err("startswith(a,'b') eq 5").contains("true or false"));
        assert!(err("tags/all(t: t eq 'x')").contains("all() is not supported"));
        assert!(err("a/b eq 1").contains("paths are not supported"));
        assert!(err("tags/any()").contains("needs a condition"));
        assert!(err("tags/any(t t eq 'x')").contains("':'"));
        assert!(err("a in ('x' 'y')").contains("',' or ')'"));
        assert!(err("a in ('x',").contains("filter ends"));
        assert!(err("a in (b)").contains("expected a value"));
        assert!(err("a eq )").contains("expected a value after 'eq'"));
        assert!(err(")").contains("expected a condition"));
        assert!(err("a eq 1)").contains("expected 'and', 'or'"));
    }

    #[test]
    fn nesting_and_length_are_bounded() {
        let deep = format!("{}a eq 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse_filter(&deep).is_ok());
        let deeper = format!(
            "{}a eq 1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(err(&deeper).contains("deeper than 64"));
        assert!(err(&"not ".repeat(1000)).contains("deeper than 64"));
        assert!(err(&"(".repeat(5000)).contains("deeper than 64"));
        let nested_any = format!("{}t eq 'x'{}", "x/any(t: ".repeat(100), ")".repeat(100));
        assert!(err(&nested_any).contains("deeper than 64"));
        let long = format!("a eq '{}'", "x".repeat(MAX_FILTER_LEN));
        assert!(err(&long).contains("at most 8192"));
    }
}
