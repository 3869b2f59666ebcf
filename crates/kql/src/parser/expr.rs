//! Pratt parser for scalar expressions, with the precedence table of §5.1.

use super::{ExprOrTabular, Parser};
use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::TokenKind;

/// Binding levels, loosest first. String operators bind tighter than `*` and `+`
/// (§5.1), so `a + b has "x"` is `a + (b has "x")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Or = 1,
    And,
    Equality,
    Relational,
    Additive,
    Multiplicative,
    StringOp,
}

impl Level {
    fn next(self) -> u8 {
        self as u8 + 1
    }

    /// Comparison levels may not be chained (`a < b < c` is an error).
    fn is_non_associative(self) -> bool {
        matches!(self, Level::Equality | Level::Relational | Level::StringOp)
    }
}

#[derive(Debug, Clone, Copy)]
enum Infix {
    Binary(BinaryOp),
    List(ListOp),
    Between { negated: bool },
}

/// Maps a string-operator word (including legacy spellings of §8) to its operator.
fn string_operator(word: &str) -> Option<BinaryOp> {
    use BinaryOp::*;
    let op = match word {
        "has" => Has,
        "!has" => NotHas,
        "has_cs" => HasCs,
        "!has_cs" => NotHasCs,
        "hasprefix" => HasPrefix,
        "!hasprefix" => NotHasPrefix,
        "hasprefix_cs" => HasPrefixCs,
        "!hasprefix_cs" => NotHasPrefixCs,
        "hassuffix" => HasSuffix,
        "!hassuffix" => NotHasSuffix,
        "hassuffix_cs" => HasSuffixCs,
        "!hassuffix_cs" => NotHasSuffixCs,
        "contains" => Contains,
        "!contains" | "notcontains" => NotContains,
        "contains_cs" | "containscs" => ContainsCs,
        "!contains_cs" | "notcontainscs" => NotContainsCs,
        "startswith" => StartsWith,
        "!startswith" => NotStartsWith,
        "startswith_cs" => StartsWithCs,
        "!startswith_cs" => NotStartsWithCs,
        "endswith" => EndsWith,
        "!endswith" => NotEndsWith,
        "endswith_cs" => EndsWithCs,
        "!endswith_cs" => NotEndsWithCs,
        "like" => Like,
        "notlike" => NotLike,
        _ => return None,
    };
    Some(op)
}

fn list_operator(word: &str) -> Option<ListOp> {
    let op = match word {
        "in" => ListOp::In,
        "!in" => ListOp::NotIn,
        "in~" => ListOp::InCi,
        "!in~" => ListOp::NotInCi,
        "has_any" => ListOp::HasAny,
        "has_all" => ListOp::HasAll,
        _ => return None,
    };
    Some(op)
}

/// Words that can never start an expression; reported as a missing expression.
fn is_reserved_word(word: &str) -> bool {
    matches!(word, "and" | "or" | "by" | "on" | "with") || word.starts_with('!') || word == "in~"
}

impl Parser<'_> {
    /// A full scalar expression.
    pub(crate) fn expr(&mut self) -> Result<Expr, ParseError> {
        self.expr_from(Level::Or as u8)
    }

    /// A `search` predicate: an expression where `Column:"term"` is also allowed.
    pub(crate) fn search_predicate(&mut self) -> Result<Expr, ParseError> {
        let outer = self.in_search;
        self.in_search = true;
        let result = self.expr();
        self.in_search = outer;
        result
    }

    /// `[Name =] expr` or `(A, B) = expr`.
    pub(crate) fn named_expr(&mut self) -> Result<NamedExpr, ParseError> {
        if self.tuple_assignment_ahead() {
            self.pos += 1;
            let names = self.comma_list(|p| p.name("a column name"))?;
            self.expect(&TokenKind::RParen, "')'")?;
            self.expect(&TokenKind::Eq, "'='")?;
            let expr = self.expr()?;
            return Ok(NamedExpr {
                name: Some(AssignTarget::Tuple(names)),
                expr,
            });
        }
        if self.assignment_ahead() {
            let name = self.name("a column name")?;
            self.expect(&TokenKind::Eq, "'='")?;
            let expr = self.expr()?;
            return Ok(NamedExpr {
                name: Some(AssignTarget::Single(name)),
                expr,
            });
        }
        Ok(NamedExpr {
            name: None,
            expr: self.expr()?,
        })
    }

    /// `( Word , Word ... ) =`
    fn tuple_assignment_ahead(&self) -> bool {
        if !matches!(self.peek(), Some(TokenKind::LParen)) {
            return false;
        }
        let mut offset = 1;
        loop {
            if !matches!(self.peek_at(offset), Some(TokenKind::Word(_))) {
                return false;
            }
            match self.peek_at(offset + 1) {
                Some(TokenKind::Comma) => offset += 2,
                Some(TokenKind::RParen) => {
                    return matches!(self.peek_at(offset + 2), Some(TokenKind::Eq));
                }
                _ => return false,
            }
        }
    }

    /// An expression, or a tabular expression when a pipe or a tabular-only
    /// keyword shows it is one (`T | where ...`, `union ...`, `(T | count)`).
    pub(crate) fn expr_or_tabular(&mut self) -> Result<ExprOrTabular, ParseError> {
        if self.tabular_keyword_ahead() {
            return Ok(ExprOrTabular::Tabular(self.tabular_expr()?));
        }
        let expr = self.expr()?;
        if !self.check(&TokenKind::Pipe) {
            if let ExprKind::Tabular(tabular) = expr.kind {
                return Ok(ExprOrTabular::Tabular(*tabular));
            }
            return Ok(ExprOrTabular::Expr(expr));
        }
        let start = expr.span;
        let source = match expr.kind {
            ExprKind::Name(name) => Source::Table(name),
            ExprKind::Call(call) => Source::Call(call),
            ExprKind::Tabular(tabular) => Source::Paren(tabular),
            _ => {
                return Err(self.error_at(
                    self.current_span(),
                    "expected a table name or subquery before '|', found a scalar expression",
                ));
            }
        };
        Ok(ExprOrTabular::Tabular(self.pipeline_from(source, start)?))
    }

    /// Like [`Self::expr_or_tabular`] but always an [`Expr`] (tabular wrapped).
    fn expr_or_tabular_as_expr(&mut self) -> Result<Expr, ParseError> {
        match self.expr_or_tabular()? {
            ExprOrTabular::Expr(expr) => Ok(expr),
            ExprOrTabular::Tabular(tabular) => Ok(Expr {
                span: tabular.span,
                kind: ExprKind::Tabular(Box::new(tabular)),
            }),
        }
    }

    fn expr_from(&mut self, min_level: u8) -> Result<Expr, ParseError> {
        self.enter()?;
        let result = self.expr_from_inner(min_level);
        self.leave();
        result
    }

    fn expr_from_inner(&mut self, min_level: u8) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while let Some((infix, level, width)) = self.infix_ahead() {
            if (level as u8) < min_level {
                break;
            }
            self.pos += width;
            left = match infix {
                Infix::Binary(op) => {
                    let right = self.expr_from(level.next())?;
                    Expr {
                        span: left.span.to(right.span),
                        kind: ExprKind::Binary {
                            op,
                            left: Box::new(left),
                            right: Box::new(right),
                        },
                    }
                }
                Infix::List(op) => {
                    self.expect(&TokenKind::LParen, "'(' and a list of values")?;
                    let items = if self.check(&TokenKind::RParen) {
                        Vec::new()
                    } else {
                        self.comma_list(Self::expr_or_tabular_as_expr)?
                    };
                    let end = self.expect(&TokenKind::RParen, "',' or ')' in the value list")?;
                    Expr {
                        span: left.span.to(end),
                        kind: ExprKind::List {
                            op,
                            left: Box::new(left),
                            items,
                        },
                    }
                }
                Infix::Between { negated } => {
                    self.expect(&TokenKind::LParen, "'(' after 'between'")?;
                    let low = self.expr()?;
                    self.expect(&TokenKind::DotDot, "'..' between the bounds")?;
                    let high = self.expr()?;
                    let end = self.expect(&TokenKind::RParen, "')' to close 'between'")?;
                    Expr {
                        span: left.span.to(end),
                        kind: ExprKind::Between {
                            negated,
                            left: Box::new(left),
                            low: Box::new(low),
                            high: Box::new(high),
                        },
                    }
                }
            };
            if level.is_non_associative()
                && let Some((_, next_level, _)) = self.infix_ahead()
                && next_level == level
            {
                return Err(self.error_at(
                    self.current_span(),
                    format!(
                        "comparison operator {} cannot follow another one at the same level; add parentheses",
                        self.describe_current()
                    ),
                ));
            }
        }
        Ok(left)
    }

    /// The infix operator at the cursor: operator, level and token count.
    fn infix_ahead(&self) -> Option<(Infix, Level, usize)> {
        use BinaryOp::*;
        let binary = |op, level| Some((Infix::Binary(op), level, 1));
        match self.peek()? {
            TokenKind::EqEq => binary(Eq, Level::Equality),
            TokenKind::NotEq | TokenKind::LtGt => binary(NotEq, Level::Equality),
            TokenKind::Lt => binary(Lt, Level::Relational),
            TokenKind::Le => binary(Le, Level::Relational),
            TokenKind::Gt => binary(Gt, Level::Relational),
            TokenKind::Ge => binary(Ge, Level::Relational),
            TokenKind::Plus => binary(Add, Level::Additive),
            TokenKind::Minus => binary(Sub, Level::Additive),
            TokenKind::Star => binary(Mul, Level::Multiplicative),
            TokenKind::Slash => binary(Div, Level::Multiplicative),
            TokenKind::Percent => binary(Mod, Level::Multiplicative),
            TokenKind::EqTilde => binary(EqCi, Level::StringOp),
            TokenKind::BangTilde => binary(NotEqCi, Level::StringOp),
            TokenKind::Colon if self.in_search => binary(SearchColumn, Level::StringOp),
            TokenKind::Word(word) => match word.as_str() {
                "or" => binary(Or, Level::Or),
                "and" => binary(And, Level::And),
                "between" => Some((Infix::Between { negated: false }, Level::Equality, 1)),
                "!between" => Some((Infix::Between { negated: true }, Level::Equality, 1)),
                "matches" if self.is_word_at(1, "regex") => {
                    Some((Infix::Binary(MatchesRegex), Level::StringOp, 2))
                }
                _ => {
                    if let Some(op) = list_operator(word) {
                        // `in` followed by anything but `(` is not an operator (e.g. `in range(...)`
                        // of make-series).
                        if matches!(self.peek_at(1), Some(TokenKind::LParen)) {
                            return Some((Infix::List(op), Level::Equality, 1));
                        }
                        return None;
                    }
                    string_operator(word).map(|op| (Infix::Binary(op), Level::StringOp, 1))
                }
            },
            _ => None,
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let op = match self.peek() {
            Some(TokenKind::Minus) => UnaryOp::Neg,
            Some(TokenKind::Plus) => UnaryOp::Plus,
            _ => return self.postfix(),
        };
        let start = self.current_span();
        self.pos += 1;
        self.enter()?;
        let operand = self.unary();
        self.leave();
        let operand = operand?;
        Ok(Expr {
            span: start.to(operand.span),
            kind: ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
        })
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.primary()?;
        loop {
            if self.check(&TokenKind::Dot) {
                self.pos += 1;
                let name = self.name("a property name after '.'")?;
                expr = Expr {
                    span: expr.span.to(name.span),
                    kind: ExprKind::Member {
                        target: Box::new(expr),
                        name,
                    },
                };
            } else if self.check(&TokenKind::LBracket) {
                self.pos += 1;
                let index = self.expr()?;
                let end = self.expect(&TokenKind::RBracket, "']' to close the index")?;
                expr = Expr {
                    span: expr.span.to(end),
                    kind: ExprKind::Index {
                        target: Box::new(expr),
                        index: Box::new(index),
                    },
                };
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let span = self.current_span();
        let literal = |value| Expr {
            kind: ExprKind::Literal(value),
            span,
        };
        match self.peek().cloned() {
            Some(TokenKind::String(first)) => {
                // Adjacent string literals concatenate (§1.3).
                self.pos += 1;
                let mut text = first;
                let mut end = span;
                while let Some(TokenKind::String(next)) = self.peek() {
                    text.push_str(next);
                    end = self.current_span();
                    self.pos += 1;
                }
                Ok(Expr {
                    kind: ExprKind::Literal(Literal::String(text)),
                    span: span.to(end),
                })
            }
            Some(TokenKind::Long(value)) => {
                self.pos += 1;
                Ok(literal(Literal::Long(value)))
            }
            Some(TokenKind::Real(value)) => {
                self.pos += 1;
                Ok(literal(Literal::Real(value)))
            }
            Some(TokenKind::Timespan(ticks)) => {
                self.pos += 1;
                Ok(literal(Literal::Timespan(ticks)))
            }
            Some(TokenKind::Bool(value)) => {
                self.pos += 1;
                Ok(literal(Literal::Bool(value)))
            }
            Some(TokenKind::Typed {
                type_name,
                raw,
                raw_start,
            }) => {
                self.pos += 1;
                let value = self.typed_literal(&type_name, &raw, raw_start, span)?;
                Ok(literal(value))
            }
            Some(TokenKind::Star) => {
                self.pos += 1;
                Ok(Expr {
                    kind: ExprKind::Star,
                    span,
                })
            }
            Some(TokenKind::LParen) => {
                self.pos += 1;
                let inner = self.expr_or_tabular_as_expr()?;
                let end = self.expect(&TokenKind::RParen, "')'")?;
                Ok(Expr {
                    kind: inner.kind,
                    span: span.to(end),
                })
            }
            Some(TokenKind::LBracket) if self.bracketed_name_ahead() => {
                let name = self.bracketed_name()?;
                Ok(Expr {
                    span: name.span,
                    kind: ExprKind::Name(name),
                })
            }
            Some(TokenKind::Word(word)) if !is_reserved_word(&word) => {
                let name = self.name("a name")?;
                if self.check(&TokenKind::LParen) {
                    let call = self.call_args(name)?;
                    return Ok(Expr {
                        span: call.span,
                        kind: ExprKind::Call(call),
                    });
                }
                Ok(Expr {
                    span: name.span,
                    kind: ExprKind::Name(name),
                })
            }
            _ => Err(self.error_expected_after("an expression")),
        }
    }

    /// One call argument: an expression (possibly tabular), or `Name = value`.
    fn call_argument(&mut self) -> Result<Expr, ParseError> {
        if self.assignment_ahead() {
            let name = self.name("an argument name")?;
            self.expect(&TokenKind::Eq, "'='")?;
            let value = self.expr_or_tabular_as_expr()?;
            return Ok(Expr {
                span: name.span.to(value.span),
                kind: ExprKind::NamedArgument {
                    name,
                    value: Box::new(value),
                },
            });
        }
        self.expr_or_tabular_as_expr()
    }

    /// `name(args)`: the cursor is on `(`. Arguments may be tabular
    /// (`toscalar(T | count)`).
    pub(crate) fn call_args(&mut self, name: Name) -> Result<FunctionCall, ParseError> {
        self.expect(&TokenKind::LParen, "'('")?;
        let mut args = Vec::new();
        if !self.check(&TokenKind::RParen) {
            args = self.comma_list(Self::call_argument)?;
        }
        let end = self.expect(&TokenKind::RParen, "',' or ')' in the argument list")?;
        Ok(FunctionCall {
            span: name.span.to(end),
            name,
            args,
        })
    }
}
