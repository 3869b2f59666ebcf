//! Hand-written recursive-descent parser.
//!
//! - this module: the token cursor, error helpers, statements and pipeline sources;
//! - [`expr`]: the Pratt parser for scalar expressions (precedence of §5.1);
//! - [`operators`]: one function per pipeline operator (§4);
//! - [`literals`]: typed literals such as `datetime(...)` and `dynamic(...)`;
//! - [`external`]: the `externaldata` source.
//!
//! The cursor never indexes past the token list: every look-ahead returns an
//! `Option`, so malformed input ends in a [`ParseError`], never a panic.

mod expr;
mod external;
mod literals;
mod operators;

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{Token, TokenKind, tokenize};
use crate::span::Span;

/// Parses a whole query.
pub fn parse_query(text: &str) -> Result<Query, ParseError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser::new(text, tokens);
    parser.query()
}

/// Deepest nesting of parentheses/expressions/subqueries accepted.
const MAX_DEPTH: usize = 64;

/// Stack bytes the parser may use below the frame of [`parse_query`]. Recursion
/// frames are much larger in debug builds, so a depth count alone cannot keep
/// hostile input (thousands of nested calls) from overflowing a 2 MiB thread stack
/// (Rust's default for spawned threads, and tokio's for its workers).
const STACK_BUDGET: usize = 1024 * 1024;

/// Address of a local variable: a safe probe of how deep the stack currently is.
fn stack_position() -> usize {
    let marker = 0u8;
    std::ptr::addr_of!(marker) as usize
}

pub(crate) struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// [`stack_position`] when parsing started; see [`STACK_BUDGET`].
    stack_base: usize,
    /// Inside a `search` predicate, where `Column:"term"` is allowed.
    in_search: bool,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str, tokens: Vec<Token>) -> Self {
        Parser {
            text,
            tokens,
            pos: 0,
            depth: 0,
            stack_base: stack_position(),
            in_search: false,
        }
    }

    // ---- cursor -------------------------------------------------------------

    fn peek(&self) -> Option<&TokenKind> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn peek_at(&self, offset: usize) -> Option<&TokenKind> {
        self.tokens.get(self.pos + offset).map(|t| &t.kind)
    }

    fn span_at(&self, offset: usize) -> Span {
        match self.tokens.get(self.pos + offset) {
            Some(token) => token.span,
            None => Span::new(self.text.len(), self.text.len()),
        }
    }

    fn current_span(&self) -> Span {
        self.span_at(0)
    }

    /// Span of the most recently consumed token.
    fn previous_span(&self) -> Span {
        match self.pos.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(token) => token.span,
            None => Span::new(0, 0),
        }
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn check(&self, kind: &TokenKind) -> bool {
        self.peek() == Some(kind)
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if self.check(kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn is_word(&self, word: &str) -> bool {
        self.is_word_at(0, word)
    }

    fn is_word_at(&self, offset: usize, word: &str) -> bool {
        matches!(self.peek_at(offset), Some(TokenKind::Word(w)) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: &TokenKind, what: &str) -> Result<Span, ParseError> {
        if self.check(kind) {
            let span = self.current_span();
            self.pos += 1;
            Ok(span)
        } else {
            Err(self.error_expected(what))
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<Span, ParseError> {
        if self.is_word(word) {
            let span = self.current_span();
            self.pos += 1;
            Ok(span)
        } else {
            Err(self.error_expected(&format!("'{word}'")))
        }
    }

    // ---- errors -------------------------------------------------------------

    /// Text of the current token as the user wrote it, for messages.
    fn describe_current(&self) -> String {
        match self.tokens.get(self.pos) {
            None => "end of input".to_string(),
            Some(token) => {
                let text = self
                    .text
                    .get(token.span.start..token.span.end)
                    .unwrap_or("?");
                let short: String = text.chars().take(40).collect();
                format!("'{short}'")
            }
        }
    }

    fn error_at(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.text, span, message)
    }

    /// `expected <what>, found '<token>'`, located at the current token.
    fn error_expected(&self, what: &str) -> ParseError {
        self.error_at(
            self.current_span(),
            format!("expected {what}, found {}", self.describe_current()),
        )
    }

    /// Like [`Self::error_expected`] but names the token the expectation follows.
    fn error_expected_after(&self, what: &str) -> ParseError {
        let previous = self
            .pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .and_then(|t| self.text.get(t.span.start..t.span.end));
        match previous {
            Some(prev) => self.error_expected(&format!("{what} after '{prev}'")),
            None => self.error_expected(what),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH || stack_position().abs_diff(self.stack_base) > STACK_BUDGET {
            return Err(self.error_at(self.current_span(), "query is nested too deeply"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ---- names --------------------------------------------------------------

    /// A plain word or a bracketed name `['text']`.
    fn name(&mut self, what: &str) -> Result<Name, ParseError> {
        match self.peek() {
            Some(TokenKind::Word(word)) if !word.starts_with('!') && word != "in~" => {
                let text = word.clone();
                let span = self.current_span();
                self.pos += 1;
                Ok(Name { text, span })
            }
            Some(TokenKind::LBracket) if self.bracketed_name_ahead() => self.bracketed_name(),
            _ => Err(self.error_expected(what)),
        }
    }

    fn bracketed_name_ahead(&self) -> bool {
        matches!(self.peek(), Some(TokenKind::LBracket))
            && matches!(self.peek_at(1), Some(TokenKind::String(_)))
            && matches!(self.peek_at(2), Some(TokenKind::RBracket))
    }

    fn bracketed_name(&mut self) -> Result<Name, ParseError> {
        let start = self.expect(&TokenKind::LBracket, "'['")?;
        let text = match self.advance() {
            Some(Token {
                kind: TokenKind::String(text),
                ..
            }) => text,
            _ => return Err(self.error_expected("a quoted name")),
        };
        let end = self.expect(&TokenKind::RBracket, "']'")?;
        Ok(Name {
            text,
            span: start.to(end),
        })
    }

    fn is_name_start(&self) -> bool {
        matches!(self.peek(), Some(TokenKind::Word(_))) || self.bracketed_name_ahead()
    }

    /// A name that may contain `*` wildcards. Wildcard parts must touch
    /// (`Dev*`, not `Dev *`), which is how the lexer's separate tokens are glued back.
    fn name_pattern(&mut self, what: &str) -> Result<NamePattern, ParseError> {
        if self.bracketed_name_ahead() {
            let name = self.bracketed_name()?;
            return Ok(NamePattern {
                text: name.text,
                span: name.span,
            });
        }
        let mut text = String::new();
        let mut span: Option<Span> = None;
        loop {
            let piece = match self.tokens.get(self.pos) {
                Some(Token {
                    kind: TokenKind::Word(word),
                    span: s,
                }) if !word.starts_with('!') => (word.clone(), *s),
                Some(Token {
                    kind: TokenKind::Star,
                    span: s,
                }) => ("*".to_string(), *s),
                _ => break,
            };
            if let Some(so_far) = span
                && so_far.end != piece.1.start
            {
                break;
            }
            text.push_str(&piece.0);
            span = Some(span.map_or(piece.1, |s| s.to(piece.1)));
            self.pos += 1;
        }
        match span {
            Some(span) => Ok(NamePattern { text, span }),
            None => Err(self.error_expected(what)),
        }
    }

    fn comma_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        let mut items = vec![item(self)?];
        while self.eat(&TokenKind::Comma) {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// `Name = ` ahead (but not `==`), i.e. an assignment target.
    fn assignment_ahead(&self) -> bool {
        if self.bracketed_name_ahead() {
            return matches!(self.peek_at(3), Some(TokenKind::Eq));
        }
        matches!(self.peek(), Some(TokenKind::Word(_)))
            && matches!(self.peek_at(1), Some(TokenKind::Eq))
    }

    /// `option = value` where the option is a fixed word (`kind=inner`).
    fn option_ahead(&self, option: &str) -> bool {
        self.is_word(option) && matches!(self.peek_at(1), Some(TokenKind::Eq))
    }

    /// Skips `hint.name = value` clauses; hints never change results (§4.4).
    fn skip_hints(&mut self) -> Result<(), ParseError> {
        while self.is_word("hint") && matches!(self.peek_at(1), Some(TokenKind::Dot)) {
            self.pos += 2;
            self.name("a hint name")?;
            self.expect(&TokenKind::Eq, "'=' after the hint name")?;
            match self.advance() {
                Some(token)
                    if matches!(token.kind, TokenKind::Word(_)) || token.kind.is_literal() => {}
                _ => return Err(self.error_expected("a hint value")),
            }
        }
        Ok(())
    }

    // ---- statements ---------------------------------------------------------

    fn query(&mut self) -> Result<Query, ParseError> {
        let mut statements = Vec::new();
        loop {
            while self.eat(&TokenKind::Semicolon) {}
            if self.at_end() {
                break;
            }
            let needs_semicolon =
                self.is_word("let") || self.is_word("set") || self.is_word("declare");
            statements.push(self.statement()?);
            if self.at_end() {
                if needs_semicolon {
                    return Err(self.error_expected("';' after the statement"));
                }
                break;
            }
            self.expect(&TokenKind::Semicolon, "';' or '|'")?;
        }
        if statements.is_empty() {
            return Err(self.error_expected("a query"));
        }
        Ok(Query {
            statements,
            text: self.text.to_string(),
        })
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if self.is_word("let") {
            return Ok(Statement::Let(self.let_statement()?));
        }
        if self.is_word("set") && matches!(self.peek_at(1), Some(TokenKind::Word(_))) {
            self.pos += 1;
            let name = self.name("an option name")?;
            let value = if self.eat(&TokenKind::Eq) {
                Some(self.expr()?)
            } else {
                None
            };
            return Ok(Statement::Set { name, value });
        }
        if self.is_word("declare") && self.is_word_at(1, "query_parameters") {
            self.pos += 2;
            self.expect(&TokenKind::LParen, "'(' after 'query_parameters'")?;
            let params = self.params()?;
            return Ok(Statement::DeclareQueryParameters(params));
        }
        Ok(Statement::Tabular(self.tabular_expr()?))
    }

    fn let_statement(&mut self) -> Result<LetStatement, ParseError> {
        self.expect_word("let")?;
        let name = self.name("a name after 'let'")?;
        self.expect(&TokenKind::Eq, "'=' after the let name")?;
        let value = self.let_value()?;
        Ok(LetStatement { name, value })
    }

    fn let_value(&mut self) -> Result<LetValue, ParseError> {
        if self.function_def_ahead() {
            return Ok(LetValue::Function(self.function_def()?));
        }
        if self.is_word("materialize") && matches!(self.peek_at(1), Some(TokenKind::LParen)) {
            self.pos += 2;
            let inner = self.tabular_expr()?;
            self.expect(&TokenKind::RParen, "')' to close materialize(")?;
            return Ok(LetValue::Materialize(inner));
        }
        match self.expr_or_tabular()? {
            ExprOrTabular::Expr(expr) => Ok(LetValue::Scalar(expr)),
            ExprOrTabular::Tabular(tabular) => Ok(LetValue::Tabular(tabular)),
        }
    }

    fn function_def_ahead(&self) -> bool {
        let offset = usize::from(self.is_word("view"));
        if !matches!(self.peek_at(offset), Some(TokenKind::LParen)) {
            return false;
        }
        matches!(
            (self.peek_at(offset + 1), self.peek_at(offset + 2)),
            (Some(TokenKind::RParen), Some(TokenKind::LBrace))
                | (Some(TokenKind::Word(_)), Some(TokenKind::Colon))
        )
    }

    fn function_def(&mut self) -> Result<FunctionDef, ParseError> {
        let is_view = self.eat_word("view");
        self.expect(&TokenKind::LParen, "'('")?;
        let params = self.params()?;
        self.expect(&TokenKind::LBrace, "'{' to start the function body")?;
        let mut lets = Vec::new();
        while self.is_word("let") {
            lets.push(self.let_statement()?);
            self.expect(&TokenKind::Semicolon, "';' after the let statement")?;
        }
        let body = match self.expr_or_tabular()? {
            ExprOrTabular::Expr(expr) => FunctionBody::Scalar(expr),
            ExprOrTabular::Tabular(tabular) => FunctionBody::Tabular(tabular),
        };
        self.eat(&TokenKind::Semicolon);
        self.expect(&TokenKind::RBrace, "'}' to close the function body")?;
        Ok(FunctionDef {
            is_view,
            params,
            lets,
            body,
        })
    }

    /// Parameter list after its `(`, through the closing `)`.
    fn params(&mut self) -> Result<Vec<Param>, ParseError> {
        let mut params = Vec::new();
        if self.eat(&TokenKind::RParen) {
            return Ok(params);
        }
        loop {
            let name = self.name("a parameter name")?;
            self.expect(&TokenKind::Colon, "':' and a type after the parameter name")?;
            let ty = if self.eat(&TokenKind::LParen) {
                if self.eat(&TokenKind::Star) {
                    self.expect(&TokenKind::RParen, "')' after '(*'")?;
                    ParamType::Tabular(None)
                } else {
                    ParamType::Tabular(Some(self.schema_columns()?))
                }
            } else {
                ParamType::Scalar(self.scalar_type()?)
            };
            let default = if self.eat(&TokenKind::Eq) {
                Some(self.expr()?)
            } else {
                None
            };
            params.push(Param { name, ty, default });
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RParen, "',' or ')' in the parameter list")?;
        Ok(params)
    }

    /// `Name:type, ...)` after an opening `(`, through the `)`.
    fn schema_columns(&mut self) -> Result<Vec<ColumnDecl>, ParseError> {
        let mut columns = Vec::new();
        if self.eat(&TokenKind::RParen) {
            return Ok(columns);
        }
        loop {
            let name = self.name("a column name")?;
            self.expect(&TokenKind::Colon, "':' and a type after the column name")?;
            let ty = self.scalar_type()?;
            columns.push(ColumnDecl { name, ty });
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RParen, "',' or ')' in the column list")?;
        Ok(columns)
    }

    fn scalar_type(&mut self) -> Result<ScalarType, ParseError> {
        if let Some(TokenKind::Word(word)) = self.peek()
            && let Some(ty) = ScalarType::from_name(word)
        {
            self.pos += 1;
            return Ok(ty);
        }
        Err(self.error_expected("a type name (string, long, datetime, ...)"))
    }

    // ---- tabular expressions ------------------------------------------------

    pub(crate) fn tabular_expr(&mut self) -> Result<TabularExpr, ParseError> {
        self.enter()?;
        let start = self.current_span();
        let source = self.source()?;
        let result = self.pipeline_from(source, start);
        self.leave();
        result
    }

    /// Parses `| op | op ...` after an already parsed source.
    fn pipeline_from(&mut self, source: Source, start: Span) -> Result<TabularExpr, ParseError> {
        self.enter()?;
        let mut operators = Vec::new();
        let mut result = Ok(());
        while self.eat(&TokenKind::Pipe) {
            match self.operator() {
                Ok(op) => operators.push(op),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        self.leave();
        result?;
        Ok(TabularExpr {
            source,
            operators,
            span: start.to(self.previous_span()),
        })
    }

    /// True when the current token starts a source that can only be tabular.
    fn tabular_keyword_ahead(&self) -> bool {
        match self.peek() {
            Some(TokenKind::Word(word)) => match word.as_str() {
                "union" | "datatable" | "print" | "search" => {
                    !matches!(self.peek_at(1), Some(TokenKind::Pipe | TokenKind::Dot))
                }
                "range" => {
                    matches!(self.peek_at(1), Some(TokenKind::Word(_)))
                        && self.is_word_at(2, "from")
                }
                "externaldata" => matches!(self.peek_at(1), Some(TokenKind::LParen)),
                _ => false,
            },
            _ => false,
        }
    }

    fn source(&mut self) -> Result<Source, ParseError> {
        if self.tabular_keyword_ahead() {
            return self.keyword_source();
        }
        if self.eat(&TokenKind::LParen) {
            let inner = self.tabular_expr()?;
            self.expect(&TokenKind::RParen, "')' to close the subquery")?;
            return Ok(Source::Paren(Box::new(inner)));
        }
        if !self.is_name_start() {
            return Err(self.error_expected("a table name or tabular expression"));
        }
        let name = self.name("a table name")?;
        if self.check(&TokenKind::LParen) {
            return Ok(Source::Call(self.call_args(name)?));
        }
        Ok(Source::Table(name))
    }

    fn keyword_source(&mut self) -> Result<Source, ParseError> {
        let Some(TokenKind::Word(word)) = self.peek().cloned() else {
            return Err(self.error_expected("a tabular source"));
        };
        let keyword = self.current_span();
        self.pos += 1;
        match word.as_str() {
            "union" => Ok(Source::Union(self.union_body()?)),
            "datatable" => {
                self.expect(&TokenKind::LParen, "'(' and a schema after 'datatable'")?;
                let columns = self.schema_columns()?;
                self.expect(&TokenKind::LBracket, "'[' and the values of the datatable")?;
                let mut values = Vec::new();
                while !self.check(&TokenKind::RBracket) {
                    values.push(self.expr()?);
                    if !self.eat(&TokenKind::Comma) {
                        break;
                    }
                }
                self.expect(&TokenKind::RBracket, "',' or ']' in the datatable values")?;
                Ok(Source::Datatable(Datatable { columns, values }))
            }
            "print" => Ok(Source::Print(self.comma_list(Self::named_expr)?)),
            "range" => {
                let column = self.name("a column name after 'range'")?;
                self.expect_word("from")?;
                let from = self.expr()?;
                self.expect_word("to")?;
                let to = self.expr()?;
                self.expect_word("step")?;
                let step = self.expr()?;
                Ok(Source::Range(Box::new(RangeSource {
                    column,
                    from,
                    to,
                    step,
                })))
            }
            "externaldata" => Ok(Source::ExternalData(Box::new(
                self.externaldata_body(keyword)?,
            ))),
            _ => Ok(Source::Search(Box::new(self.search_body()?))),
        }
    }

    /// `union` options and legs (after the `union` word).
    fn union_body(&mut self) -> Result<Union, ParseError> {
        let mut union = Union {
            kind: UnionKind::Outer,
            with_source: None,
            is_fuzzy: false,
            legs: Vec::new(),
        };
        loop {
            self.skip_hints()?;
            if self.option_ahead("kind") {
                self.pos += 2;
                union.kind = match self.peek() {
                    Some(TokenKind::Word(w)) if w == "inner" => UnionKind::Inner,
                    Some(TokenKind::Word(w)) if w == "outer" => UnionKind::Outer,
                    _ => return Err(self.error_expected("'inner' or 'outer' after 'kind='")),
                };
                self.pos += 1;
            } else if self.option_ahead("withsource") || self.option_ahead("with_source") {
                self.pos += 2;
                union.with_source = Some(self.name("a column name after 'withsource='")?);
            } else if self.option_ahead("isfuzzy") {
                self.pos += 2;
                union.is_fuzzy = match self.advance().map(|t| t.kind) {
                    Some(TokenKind::Bool(value)) => value,
                    _ => return Err(self.error_expected_after("'true' or 'false'")),
                };
            } else {
                break;
            }
        }
        union.legs = self.comma_list(|p| {
            if p.eat(&TokenKind::LParen) {
                let inner = p.tabular_expr()?;
                p.expect(&TokenKind::RParen, "')' to close the union leg")?;
                Ok(UnionLeg::Subquery(inner))
            } else {
                Ok(UnionLeg::Table(
                    p.name_pattern("a table name or '(' subquery in union")?,
                ))
            }
        })?;
        Ok(union)
    }

    /// `search` options and predicate (after the `search` word).
    fn search_body(&mut self) -> Result<Search, ParseError> {
        let mut case_sensitive = false;
        if self.option_ahead("kind") {
            self.pos += 2;
            case_sensitive = match self.peek() {
                Some(TokenKind::Word(w)) if w == "case_sensitive" => true,
                Some(TokenKind::Word(w)) if w == "case_insensitive" => false,
                _ => return Err(self.error_expected("'case_sensitive' or 'case_insensitive'")),
            };
            self.pos += 1;
        }
        let mut tables = Vec::new();
        if self.is_word("in") && matches!(self.peek_at(1), Some(TokenKind::LParen)) {
            self.pos += 2;
            tables = self.comma_list(|p| p.name_pattern("a table name"))?;
            self.expect(&TokenKind::RParen, "')' after the table list")?;
        }
        let predicate = self.search_predicate()?;
        Ok(Search {
            case_sensitive,
            tables,
            predicate,
        })
    }
}

/// Result of parsing something that may be scalar or tabular (let values,
/// function bodies, parenthesised arguments).
pub(crate) enum ExprOrTabular {
    Expr(Expr),
    Tabular(TabularExpr),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_separated_by_semicolons() {
        let query = parse_query("let x = 1; T | where a == x;").expect("parses");
        assert_eq!(query.statements.len(), 2);
    }

    #[test]
    fn let_needs_semicolon() {
        assert!(parse_query("let x = 1").is_err());
    }
}
