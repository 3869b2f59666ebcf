//! Pipeline operators (§4): one parsing function per operator.

use super::Parser;
use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::TokenKind;

impl Parser<'_> {
    /// The operator after a `|`.
    pub(crate) fn operator(&mut self) -> Result<Operator, ParseError> {
        let Some(TokenKind::Word(word)) = self.peek().cloned() else {
            return Err(
                self.error_expected_after("an operator name (where, project, summarize, ...)")
            );
        };
        let keyword_span = self.current_span();
        self.pos += 1;
        let op = match word.as_str() {
            "where" | "filter" => Operator::Where(self.expr()?),
            "project" => Operator::Project(self.comma_list(Self::named_expr)?),
            "project-away" => Operator::ProjectAway(self.patterns()?),
            "project-keep" => Operator::ProjectKeep(self.patterns()?),
            "project-rename" => Operator::ProjectRename(self.comma_list(Self::rename)?),
            "project-reorder" => Operator::ProjectReorder(self.comma_list(Self::reorder_column)?),
            "extend" => Operator::Extend(self.comma_list(Self::named_expr)?),
            "summarize" => Operator::Summarize(self.summarize()?),
            "count" => Operator::Count,
            "distinct" => {
                if self.eat(&TokenKind::Star) {
                    Operator::Distinct(DistinctColumns::All)
                } else {
                    Operator::Distinct(DistinctColumns::Columns(self.comma_list(Self::named_expr)?))
                }
            }
            "take" | "limit" => Operator::Take(self.expr()?),
            "top" => {
                let count = self.expr()?;
                self.expect_word("by")?;
                Operator::Top(Top {
                    count,
                    by: self.sort_key()?,
                })
            }
            "sort" | "order" => {
                self.expect_word("by")?;
                Operator::Sort(self.comma_list(Self::sort_key)?)
            }
            "join" => Operator::Join(self.join()?),
            "lookup" => Operator::Lookup(self.lookup()?),
            "union" => Operator::Union(self.union_body()?),
            "mv-expand" | "mvexpand" => Operator::MvExpand(self.mv_expand(word == "mvexpand")?),
            "mv-apply" | "mvapply" => Operator::MvApply(self.mv_apply()?),
            "parse" => Operator::Parse(self.parse_operator()?),
            "parse-where" => Operator::ParseWhere(self.parse_operator()?),
            "make-series" => Operator::MakeSeries(Box::new(self.make_series()?)),
            "evaluate" => Operator::Evaluate(self.evaluate()?),
            "serialize" => {
                if self.at_operator_end() {
                    Operator::Serialize(Vec::new())
                } else {
                    Operator::Serialize(self.comma_list(Self::named_expr)?)
                }
            }
            "as" => {
                self.skip_hints()?;
                Operator::As(self.name("a name after 'as'")?)
            }
            "invoke" => {
                let name = self.name("a function name after 'invoke'")?;
                Operator::Invoke(self.call_args(name)?)
            }
            "getschema" => Operator::GetSchema,
            "render" => Operator::Render(self.render()?),
            "sample" => Operator::Sample(self.expr()?),
            "top-nested" => Operator::TopNested(self.top_nested()?),
            "search" => Operator::Search(self.search_body()?),
            _ => {
                return Err(self.error_at(
                    keyword_span,
                    format!(
                        "expected an operator name (where, project, summarize, ...), found '{word}'"
                    ),
                ));
            }
        };
        Ok(op)
    }

    /// End of the current operator: `|`, `;`, `)` or end of input.
    fn at_operator_end(&self) -> bool {
        matches!(
            self.peek(),
            None | Some(
                TokenKind::Pipe | TokenKind::Semicolon | TokenKind::RParen | TokenKind::RBrace
            )
        )
    }

    fn patterns(&mut self) -> Result<Vec<NamePattern>, ParseError> {
        self.comma_list(|p| p.name_pattern("a column name or wildcard"))
    }

    fn rename(&mut self) -> Result<Rename, ParseError> {
        let new = self.name("a new column name")?;
        self.expect(&TokenKind::Eq, "'=' in 'New = Old'")?;
        let old = self.name("the existing column name")?;
        Ok(Rename { new, old })
    }

    fn reorder_column(&mut self) -> Result<ReorderColumn, ParseError> {
        let pattern = self.name_pattern("a column name or wildcard")?;
        let order = match self.peek() {
            Some(TokenKind::Word(w)) => match w.as_str() {
                "asc" => Some(ReorderOrder::Asc),
                "desc" => Some(ReorderOrder::Desc),
                "granny-asc" => Some(ReorderOrder::GrannyAsc),
                "granny-desc" => Some(ReorderOrder::GrannyDesc),
                _ => None,
            },
            _ => None,
        };
        if order.is_some() {
            self.pos += 1;
        }
        Ok(ReorderColumn { pattern, order })
    }

    fn summarize(&mut self) -> Result<Summarize, ParseError> {
        self.skip_hints()?;
        let aggregates = if self.is_word("by") || self.at_operator_end() {
            Vec::new()
        } else {
            self.comma_list(Self::named_expr)?
        };
        let by = if self.eat_word("by") {
            self.comma_list(Self::named_expr)?
        } else {
            Vec::new()
        };
        if aggregates.is_empty() && by.is_empty() {
            return Err(self.error_expected_after("an aggregate or 'by'"));
        }
        Ok(Summarize { aggregates, by })
    }

    /// `expr [asc|desc] [nulls first|nulls last]`, defaults resolved (§4.3).
    fn sort_key(&mut self) -> Result<SortKey, ParseError> {
        let expr = self.expr()?;
        let direction = if self.eat_word("asc") {
            SortDirection::Asc
        } else {
            self.eat_word("desc");
            SortDirection::Desc
        };
        let nulls = if self.eat_word("nulls") {
            if self.eat_word("first") {
                NullsPlacement::First
            } else if self.eat_word("last") {
                NullsPlacement::Last
            } else {
                return Err(self.error_expected("'first' or 'last' after 'nulls'"));
            }
        } else if direction == SortDirection::Asc {
            NullsPlacement::First
        } else {
            NullsPlacement::Last
        };
        Ok(SortKey {
            expr,
            direction,
            nulls,
        })
    }

    fn join(&mut self) -> Result<Join, ParseError> {
        let mut kind = JoinKind::InnerUnique;
        loop {
            self.skip_hints()?;
            if self.option_ahead("kind") {
                self.pos += 2;
                kind = match self.peek() {
                    Some(TokenKind::Word(w)) => JoinKind::from_name(w),
                    _ => None,
                }
                .ok_or_else(|| {
                    self.error_expected("a join kind (inner, leftouter, leftanti, ...)")
                })?;
                self.pos += 1;
            } else {
                break;
            }
        }
        let right = self.join_right_side()?;
        let on = self.join_conditions()?;
        Ok(Join { kind, right, on })
    }

    fn lookup(&mut self) -> Result<Lookup, ParseError> {
        let mut kind = LookupKind::LeftOuter;
        self.skip_hints()?;
        if self.option_ahead("kind") {
            self.pos += 2;
            kind = match self.peek() {
                Some(TokenKind::Word(w)) if w == "leftouter" => LookupKind::LeftOuter,
                Some(TokenKind::Word(w)) if w == "inner" => LookupKind::Inner,
                _ => return Err(self.error_expected("'leftouter' or 'inner' after 'kind='")),
            };
            self.pos += 1;
        }
        self.skip_hints()?;
        let right = self.join_right_side()?;
        let on = self.join_conditions()?;
        Ok(Lookup { kind, right, on })
    }

    /// `(subquery)` or a bare table name (parentheses optional for a plain name).
    fn join_right_side(&mut self) -> Result<TabularExpr, ParseError> {
        let start = self.current_span();
        if self.eat(&TokenKind::LParen) {
            let inner = self.tabular_expr()?;
            self.expect(&TokenKind::RParen, "')' to close the right side")?;
            return Ok(inner);
        }
        if !self.is_name_start() {
            return Err(self.error_expected("a table name or '(' subquery as the right side"));
        }
        let name = self.name("a table name")?;
        let source = if self.check(&TokenKind::LParen) {
            Source::Call(self.call_args(name)?)
        } else {
            Source::Table(name)
        };
        Ok(TabularExpr {
            source,
            operators: Vec::new(),
            span: start.to(self.previous_span()),
        })
    }

    /// `on Cond, ...` where conditions are also separated by `and`.
    fn join_conditions(&mut self) -> Result<Vec<JoinCondition>, ParseError> {
        self.expect_word("on")?;
        let mut conditions = vec![self.join_condition()?];
        while self.eat(&TokenKind::Comma) || self.eat_word("and") {
            conditions.push(self.join_condition()?);
        }
        Ok(conditions)
    }

    fn join_condition(&mut self) -> Result<JoinCondition, ParseError> {
        let Some((first_side, first)) = self.side_column()? else {
            return Ok(JoinCondition::Column(
                self.name("a key column or '$left.Column'")?,
            ));
        };
        self.expect(&TokenKind::EqEq, "'==' between the join keys")?;
        let Some((second_side, second)) = self.side_column()? else {
            return Err(self.error_expected("'$left.Column' or '$right.Column'"));
        };
        match (first_side.as_str(), second_side.as_str()) {
            ("$left", "$right") => Ok(JoinCondition::LeftRight {
                left: first,
                right: second,
            }),
            ("$right", "$left") => Ok(JoinCondition::LeftRight {
                left: second,
                right: first,
            }),
            _ => Err(self.error_at(
                second.span,
                "a join condition must compare a $left column with a $right column",
            )),
        }
    }

    /// `$left.Col` / `$right.Col`, if present.
    fn side_column(&mut self) -> Result<Option<(String, Name)>, ParseError> {
        let side = match self.peek() {
            Some(TokenKind::Word(w)) if w == "$left" || w == "$right" => w.clone(),
            _ => return Ok(None),
        };
        self.pos += 1;
        self.expect(&TokenKind::Dot, "'.' after the join side")?;
        let column = self.name("a column name")?;
        Ok(Some((side, column)))
    }

    /// Options shared by mv-expand and mv-apply; returns (bag expansion, item index).
    fn expand_options(&mut self) -> Result<(BagExpansion, Option<Name>), ParseError> {
        let mut bag_expansion = BagExpansion::Bag;
        let mut item_index = None;
        loop {
            if self.option_ahead("kind") || self.option_ahead("bagexpansion") {
                self.pos += 2;
                bag_expansion = match self.peek() {
                    Some(TokenKind::Word(w)) if w == "bag" => BagExpansion::Bag,
                    Some(TokenKind::Word(w)) if w == "array" => BagExpansion::Array,
                    _ => return Err(self.error_expected("'bag' or 'array'")),
                };
                self.pos += 1;
            } else if self.option_ahead("with_itemindex") {
                self.pos += 2;
                item_index = Some(self.name("an index column name")?);
            } else {
                return Ok((bag_expansion, item_index));
            }
        }
    }

    fn expand_item(&mut self) -> Result<ExpandItem, ParseError> {
        let name = if self.assignment_ahead() {
            let name = self.name("a column name")?;
            self.pos += 1;
            Some(name)
        } else {
            None
        };
        let expr = self.expr()?;
        let to_type = if self.eat_word("to") {
            let span = self.current_span();
            match self.advance().map(|t| t.kind) {
                Some(TokenKind::Typed {
                    type_name,
                    raw,
                    raw_start,
                }) if type_name == "typeof" => {
                    match self.typed_literal(&type_name, &raw, raw_start, span)? {
                        Literal::Type(ty) => Some(ty),
                        _ => None,
                    }
                }
                _ => return Err(self.error_expected_after("'typeof(type)'")),
            }
        } else {
            None
        };
        Ok(ExpandItem {
            name,
            expr,
            to_type,
        })
    }

    fn expand_limit(&mut self) -> Result<Option<Expr>, ParseError> {
        if self.eat_word("limit") {
            Ok(Some(self.expr()?))
        } else {
            Ok(None)
        }
    }

    fn mv_expand(&mut self, legacy: bool) -> Result<MvExpand, ParseError> {
        let (bag_expansion, item_index) = self.expand_options()?;
        let items = self.comma_list(Self::expand_item)?;
        let limit = self.expand_limit()?;
        Ok(MvExpand {
            legacy,
            bag_expansion,
            item_index,
            items,
            limit,
        })
    }

    fn mv_apply(&mut self) -> Result<MvApply, ParseError> {
        let (_, item_index) = self.expand_options()?;
        let items = self.comma_list(Self::expand_item)?;
        let limit = self.expand_limit()?;
        self.expect_word("on")?;
        self.expect(&TokenKind::LParen, "'(' and a subquery after 'on'")?;
        let subquery = self.operator_pipeline()?;
        self.expect(&TokenKind::RParen, "')' to close the mv-apply subquery")?;
        Ok(MvApply {
            item_index,
            items,
            limit,
            subquery,
        })
    }

    /// `op | op ...` with no source (the input is implicit), as in mv-apply.
    fn operator_pipeline(&mut self) -> Result<Vec<Operator>, ParseError> {
        self.enter()?;
        let mut operators = Vec::new();
        let result = loop {
            match self.operator() {
                Ok(op) => operators.push(op),
                Err(error) => break Err(error),
            }
            if !self.eat(&TokenKind::Pipe) {
                break Ok(operators);
            }
        };
        self.leave();
        result
    }

    fn parse_operator(&mut self) -> Result<Parse, ParseError> {
        let mut kind = ParseKind::Simple;
        if self.option_ahead("kind") {
            self.pos += 2;
            kind = match self.peek() {
                Some(TokenKind::Word(w)) if w == "simple" => ParseKind::Simple,
                Some(TokenKind::Word(w)) if w == "relaxed" => ParseKind::Relaxed,
                Some(TokenKind::Word(w)) if w == "regex" => ParseKind::Regex { flags: None },
                _ => {
                    return Err(self.error_expected("'simple', 'regex' or 'relaxed' after 'kind='"));
                }
            };
            self.pos += 1;
            if self.option_ahead("flags") {
                self.pos += 2;
                let flags = match self.advance().map(|t| t.kind) {
                    Some(TokenKind::Word(flags) | TokenKind::String(flags)) => flags,
                    _ => return Err(self.error_expected_after("regex flags")),
                };
                if let ParseKind::Regex { flags: slot } = &mut kind {
                    *slot = Some(flags);
                }
            }
        }
        let source = self.expr()?;
        self.expect_word("with")?;
        let mut pattern = Vec::new();
        while !self.at_operator_end() {
            if self.eat(&TokenKind::Star) {
                pattern.push(ParsePart::Wildcard);
            } else if let Some(TokenKind::String(text)) = self.peek().cloned() {
                self.pos += 1;
                pattern.push(ParsePart::Literal(text));
            } else if self.is_name_start() {
                let name = self.name("a column name")?;
                let ty = if self.eat(&TokenKind::Colon) {
                    Some(self.scalar_type()?)
                } else {
                    None
                };
                pattern.push(ParsePart::Column { name, ty });
            } else {
                return Err(self.error_expected(
                    "'*', a string constant or a column name in the parse pattern",
                ));
            }
        }
        if pattern.is_empty() {
            return Err(self.error_expected_after("a parse pattern"));
        }
        Ok(Parse {
            kind,
            source,
            pattern,
        })
    }

    fn make_series(&mut self) -> Result<MakeSeries, ParseError> {
        self.skip_hints()?;
        let aggregates = self.comma_list(|p| {
            let name = if p.assignment_ahead() {
                let name = p.name("a column name")?;
                p.pos += 1;
                Some(name)
            } else {
                None
            };
            let expr = p.expr()?;
            let default = if p.option_ahead("default") {
                p.pos += 2;
                Some(p.expr()?)
            } else {
                None
            };
            Ok(SeriesAggregate {
                name,
                expr,
                default,
            })
        })?;
        self.expect_word("on")?;
        let on = self.expr()?;
        let range = if self.is_word("in") && self.is_word_at(1, "range") {
            self.pos += 2;
            self.expect(&TokenKind::LParen, "'(' after 'in range'")?;
            let from = self.expr()?;
            self.expect(&TokenKind::Comma, "','")?;
            let to = self.expr()?;
            self.expect(&TokenKind::Comma, "','")?;
            let step = self.expr()?;
            self.expect(&TokenKind::RParen, "')'")?;
            SeriesRange {
                from: Some(from),
                to: Some(to),
                step,
            }
        } else {
            let from = if self.eat_word("from") {
                Some(self.expr()?)
            } else {
                None
            };
            let to = if self.eat_word("to") {
                Some(self.expr()?)
            } else {
                None
            };
            self.expect_word("step")?;
            SeriesRange {
                from,
                to,
                step: self.expr()?,
            }
        };
        let by = if self.eat_word("by") {
            self.comma_list(Self::named_expr)?
        } else {
            Vec::new()
        };
        Ok(MakeSeries {
            aggregates,
            on,
            range,
            by,
        })
    }

    fn evaluate(&mut self) -> Result<Evaluate, ParseError> {
        self.skip_hints()?;
        let name = self.name("a plugin name after 'evaluate'")?;
        if !self.check(&TokenKind::LParen) {
            return Err(self.error_expected("'(' after the plugin name"));
        }
        let plugin = self.call_args(name)?;
        let schema = if self.eat(&TokenKind::Colon) {
            self.expect(&TokenKind::LParen, "'(' and an output schema")?;
            Some(self.schema_columns()?)
        } else {
            None
        };
        Ok(Evaluate { plugin, schema })
    }

    /// `render Kind [with (...)]`: only the kind is kept; the rest is skipped.
    fn render(&mut self) -> Result<Name, ParseError> {
        let kind = self.name("a chart kind after 'render'")?;
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => break,
                Some(TokenKind::Pipe | TokenKind::Semicolon) if depth == 0 => break,
                Some(TokenKind::RParen) if depth == 0 => break,
                Some(TokenKind::LParen) => depth += 1,
                Some(TokenKind::RParen) => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(kind)
    }

    /// `top-nested` levels; the first level's keyword was consumed by `operator`.
    fn top_nested(&mut self) -> Result<Vec<TopNestedLevel>, ParseError> {
        let mut levels = vec![self.top_nested_level()?];
        while self.eat(&TokenKind::Comma) {
            self.expect_word("top-nested")?;
            levels.push(self.top_nested_level()?);
        }
        Ok(levels)
    }

    fn top_nested_level(&mut self) -> Result<TopNestedLevel, ParseError> {
        let count = if self.is_word("of") {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect_word("of")?;
        let of = self.named_expr()?;
        let others = if self.is_word("with") && self.is_word_at(1, "others") {
            self.pos += 2;
            self.expect(&TokenKind::Eq, "'=' after 'with others'")?;
            Some(self.expr()?)
        } else {
            None
        };
        self.expect_word("by")?;
        let by = self.named_expr()?;
        let direction = if self.eat_word("asc") {
            SortDirection::Asc
        } else {
            self.eat_word("desc");
            SortDirection::Desc
        };
        Ok(TopNestedLevel {
            count,
            of,
            others,
            by,
            direction,
        })
    }
}
