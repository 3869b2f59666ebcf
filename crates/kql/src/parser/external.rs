//! The `externaldata` source (§3): a declared schema, storage URIs and `with (...)`
//! properties. Only the syntax lives here; the binder checks the properties and the
//! executor decides whether a URI can be read at all.

use super::Parser;
use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::TokenKind;
use crate::span::Span;

impl Parser<'_> {
    /// `(Col:type, ...) ["uri", ...] [with (name = value, ...)]` after the keyword at `span`.
    pub(crate) fn externaldata_body(&mut self, span: Span) -> Result<ExternalData, ParseError> {
        self.expect(&TokenKind::LParen, "'(' and a schema after 'externaldata'")?;
        let columns = self.schema_columns()?;
        self.expect(
            &TokenKind::LBracket,
            "'[' and the storage URIs of the externaldata",
        )?;
        let mut uris = Vec::new();
        while let Some(TokenKind::String(_)) = self.peek() {
            uris.push(self.external_uri()?);
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        if uris.is_empty() {
            return Err(self.error_expected("a storage URI string"));
        }
        self.expect(&TokenKind::RBracket, "',' or ']' after the storage URIs")?;
        let mut properties = Vec::new();
        if self.is_word("with") && matches!(self.peek_at(1), Some(TokenKind::LParen)) {
            self.pos += 2;
            if !self.check(&TokenKind::RParen) {
                properties = self.comma_list(Self::external_property)?;
            }
            self.expect(
                &TokenKind::RParen,
                "',' or ')' after the externaldata properties",
            )?;
        }
        Ok(ExternalData {
            columns,
            uris,
            properties,
            span,
        })
    }

    /// A URI: one string literal, or adjacent ones concatenated (§1.3).
    fn external_uri(&mut self) -> Result<ExternalUri, ParseError> {
        let start = self.current_span();
        let mut text = String::new();
        while let Some(TokenKind::String(piece)) = self.peek() {
            text.push_str(piece);
            self.pos += 1;
        }
        Ok(ExternalUri {
            text,
            span: start.to(self.previous_span()),
        })
    }

    /// `name = value` with a literal value; a bare word value (`format=csv`) is a string.
    fn external_property(&mut self) -> Result<ExternalProperty, ParseError> {
        let name = self.name("a property name (format, ignoreFirstRecord)")?;
        self.expect(&TokenKind::Eq, "'=' after the property name")?;
        let value_span = self.current_span();
        let value = match self.peek() {
            Some(TokenKind::String(text) | TokenKind::Word(text)) => Literal::String(text.clone()),
            Some(TokenKind::Bool(value)) => Literal::Bool(*value),
            Some(TokenKind::Long(value)) => Literal::Long(*value),
            _ => return Err(self.error_expected("a property value (a string, bool or number)")),
        };
        self.pos += 1;
        Ok(ExternalProperty {
            name,
            value,
            value_span,
        })
    }
}
