//! Typed literals: `T(raw text)` forms of §1.4 and the JSON-like `dynamic(...)` of §1.6.

use super::Parser;
use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{TokenKind, tokenize_at, unit_ticks};
use crate::span::Span;

impl Parser<'_> {
    /// Turns `type_name(raw)` into a literal; `span` covers the whole token.
    pub(crate) fn typed_literal(
        &self,
        type_name: &str,
        raw: &str,
        raw_start: usize,
        span: Span,
    ) -> Result<Literal, ParseError> {
        let invalid = |what: &str| {
            self.error_at(span, format!("invalid {what} literal '{type_name}({raw})'"))
        };
        if type_name == "typeof" {
            return ScalarType::from_name(raw)
                .map(Literal::Type)
                .ok_or_else(|| invalid("typeof"));
        }
        let Some(ty) = ScalarType::from_name(type_name) else {
            return Err(invalid("typed"));
        };
        if raw == "null" {
            return Ok(Literal::Null(ty));
        }
        let value = match ty {
            ScalarType::Bool => match raw.to_ascii_lowercase().as_str() {
                "true" | "1" => Literal::Bool(true),
                "false" | "0" => Literal::Bool(false),
                _ => return Err(invalid("bool")),
            },
            ScalarType::Int => Literal::Int(parse_signed(raw).ok_or_else(|| invalid("int"))?),
            ScalarType::Long => Literal::Long(parse_signed(raw).ok_or_else(|| invalid("long"))?),
            ScalarType::Real => Literal::Real(parse_real(raw).ok_or_else(|| invalid("real"))?),
            ScalarType::Decimal => {
                parse_real(raw).ok_or_else(|| invalid("decimal"))?;
                Literal::Decimal(raw.to_string())
            }
            ScalarType::String => Literal::String(raw.to_string()),
            ScalarType::Datetime => {
                if raw.is_empty() {
                    return Err(invalid("datetime"));
                }
                Literal::Datetime(raw.to_string())
            }
            ScalarType::Timespan => {
                Literal::Timespan(timespan_text_ticks(raw).ok_or_else(|| invalid("timespan"))?)
            }
            ScalarType::Guid => {
                if !looks_like_guid(raw) {
                    return Err(invalid("guid"));
                }
                Literal::Guid(raw.to_string())
            }
            ScalarType::Dynamic => Literal::Dynamic(self.dynamic_literal(raw, raw_start)?),
        };
        Ok(value)
    }

    /// Parses the inside of `dynamic(...)` by re-lexing it with the query lexer.
    fn dynamic_literal(&self, raw: &str, raw_start: usize) -> Result<DynamicValue, ParseError> {
        let tokens = tokenize_at(self.text, raw, raw_start)?;
        let mut inner = Parser::new(self.text, tokens);
        // The sub-parser runs on the same stack: it inherits the nesting budget.
        inner.stack_base = self.stack_base;
        inner.depth = self.depth;
        let value = inner.dynamic_value()?;
        if !inner.at_end() {
            return Err(inner.error_expected("the end of the dynamic literal"));
        }
        Ok(value)
    }

    fn dynamic_value(&mut self) -> Result<DynamicValue, ParseError> {
        self.enter()?;
        let result = self.dynamic_value_inner();
        self.leave();
        result
    }

    fn dynamic_value_inner(&mut self) -> Result<DynamicValue, ParseError> {
        let span = self.current_span();
        let Some(token) = self.advance() else {
            return Err(self.error_expected("a dynamic value"));
        };
        let value = match token.kind {
            TokenKind::LBracket => {
                let mut items = Vec::new();
                while !self.check(&TokenKind::RBracket) {
                    items.push(self.dynamic_value()?);
                    if !self.eat(&TokenKind::Comma) {
                        break;
                    }
                }
                self.expect(&TokenKind::RBracket, "',' or ']' in the dynamic array")?;
                DynamicValue::Array(items)
            }
            TokenKind::LBrace => {
                let mut entries = Vec::new();
                while !self.check(&TokenKind::RBrace) {
                    let key = match self.advance().map(|t| t.kind) {
                        Some(TokenKind::String(key)) => key,
                        _ => return Err(self.error_expected_after("a quoted property name")),
                    };
                    self.expect(&TokenKind::Colon, "':' after the property name")?;
                    entries.push((key, self.dynamic_value()?));
                    if !self.eat(&TokenKind::Comma) {
                        break;
                    }
                }
                self.expect(&TokenKind::RBrace, "',' or '}' in the dynamic object")?;
                DynamicValue::Object(entries)
            }
            TokenKind::String(text) => DynamicValue::String(text),
            TokenKind::Bool(value) => DynamicValue::Bool(value),
            TokenKind::Word(word) if word == "null" => DynamicValue::Null,
            TokenKind::Long(value) => DynamicValue::Long(value),
            TokenKind::Real(value) => DynamicValue::Real(value),
            TokenKind::Timespan(ticks) => DynamicValue::Timespan(ticks),
            TokenKind::Minus | TokenKind::Plus => {
                let negative = token.kind == TokenKind::Minus;
                let sign = |v: i64| if negative { v.wrapping_neg() } else { v };
                match self.advance().map(|t| t.kind) {
                    Some(TokenKind::Long(v)) => DynamicValue::Long(sign(v)),
                    Some(TokenKind::Timespan(v)) => DynamicValue::Timespan(sign(v)),
                    Some(TokenKind::Real(v)) => DynamicValue::Real(if negative { -v } else { v }),
                    _ => return Err(self.error_expected_after("a number")),
                }
            }
            TokenKind::Typed {
                type_name,
                raw,
                raw_start,
            } => match self.typed_literal(&type_name, &raw, raw_start, span)? {
                Literal::Bool(v) => DynamicValue::Bool(v),
                Literal::Int(v) => DynamicValue::Long(i64::from(v)),
                Literal::Long(v) => DynamicValue::Long(v),
                Literal::Real(v) => DynamicValue::Real(v),
                Literal::Datetime(v) => DynamicValue::Datetime(v),
                Literal::Timespan(v) => DynamicValue::Timespan(v),
                Literal::Guid(v) => DynamicValue::Guid(v),
                Literal::Dynamic(v) => v,
                Literal::Null(_) => DynamicValue::Null,
                _ => {
                    return Err(
                        self.error_at(span, "this literal is not allowed inside dynamic(...)")
                    );
                }
            },
            _ => {
                self.pos -= 1;
                return Err(self.error_expected("a dynamic value"));
            }
        };
        Ok(value)
    }
}

fn parse_signed<T: std::str::FromStr>(raw: &str) -> Option<T> {
    raw.strip_prefix('+').unwrap_or(raw).trim().parse().ok()
}

fn parse_real(raw: &str) -> Option<f64> {
    match raw {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => parse_signed(raw),
    }
}

fn looks_like_guid(raw: &str) -> bool {
    let hex: String = raw.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

const TICKS_PER_SECOND: f64 = 10_000_000.0;

/// Text of `timespan(...)`/`time(...)` (§1.5): `2` (days), `15 seconds`, `1d`,
/// `00:05:00`, `0.12:30:05.5`, with an optional leading `-`.
pub(crate) fn timespan_text_ticks(raw: &str) -> Option<i64> {
    let (negative, body) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, raw.trim()),
    };
    let ticks = if body.contains(':') {
        clock_ticks(body)?
    } else {
        let split = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (count, unit) = body.split_at(split);
        let count: f64 = count.parse().ok()?;
        let unit = unit.trim();
        let per_unit = if unit.is_empty() {
            unit_ticks("d")?
        } else {
            unit_ticks(unit)?
        };
        count * per_unit
    };
    let ticks = ticks.round();
    if !ticks.is_finite() || ticks.abs() >= i64::MAX as f64 {
        return None;
    }
    let ticks = ticks as i64;
    Some(if negative { -ticks } else { ticks })
}

/// `[d.]hh:mm[:ss[.fffffff]]`
fn clock_ticks(body: &str) -> Option<f64> {
    let mut parts = body.split(':');
    let first = parts.next()?;
    let (days, hours) = match first.split_once('.') {
        Some((days, hours)) => (days.parse::<f64>().ok()?, hours.parse::<f64>().ok()?),
        None => (0.0, first.parse::<f64>().ok()?),
    };
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = match parts.next() {
        Some(text) => text.parse().ok()?,
        None => 0.0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(
        ((days * 24.0 + hours) * 60.0 + minutes) * 60.0 * TICKS_PER_SECOND
            + seconds * TICKS_PER_SECOND,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespan_text_forms() {
        let minute = 600_000_000;
        assert_eq!(timespan_text_ticks("00:05:00"), Some(5 * minute));
        assert_eq!(timespan_text_ticks("2"), Some(2 * 1440 * minute));
        assert_eq!(timespan_text_ticks("15 seconds"), Some(150_000_000));
        assert_eq!(timespan_text_ticks("-1d"), Some(-1440 * minute));
        assert_eq!(timespan_text_ticks("0.12:30:05.5"), Some(450_055_000_000));
        assert_eq!(timespan_text_ticks("abc"), None);
    }
}
