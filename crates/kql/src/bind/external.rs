//! `externaldata`: the declared schema, the storage URIs and the `with (...)` properties.
//!
//! The rows come from outside the query as text. The declared types are reached with
//! KQL's own conversions (`todatetime`, `tolong`, ...) in a projection above the raw
//! [`RelKind::ExternalData`], so a field that does not convert is null exactly as
//! `todatetime("junk")` is, and the executor only has to produce strings. Whether a URI
//! can be read at all is the executor's call: Rampart runs offline and only reads the
//! local files its configuration maps URIs to.

use super::{Binder, BoundExpr, BoundExprKind, Column, Rel, RelKind, Schema};
use super::{ExternalFormat, ExternalUri};
use crate::ast::{self, Literal, ScalarType};
use crate::bind::error::BindError;

/// The properties `with (...)` may set; anything else (compression, archives, mappings)
/// would change what is read, so it is refused rather than ignored.
const PROPERTIES: &str = "format, ignoreFirstRecord";

impl Binder<'_> {
    pub(crate) fn external_data(&mut self, external: &ast::ExternalData) -> Result<Rel, BindError> {
        if external.columns.is_empty() {
            return Err(self.error(external.span, "externaldata needs at least one column"));
        }
        let declared = self.declared_schema(&external.columns)?;
        let (format, ignore_first_record) = self.external_properties(&external.properties)?;
        let raw = Schema::new(
            declared
                .columns
                .iter()
                .map(|c| Column::new(c.name.clone(), ScalarType::String))
                .collect(),
        );
        let exprs = raw
            .columns
            .iter()
            .zip(&declared.columns)
            .enumerate()
            .map(|(index, (text, column))| {
                convert(BoundExpr::column(index, text, external.span), column.ty)
            })
            .collect();
        let uris = external
            .uris
            .iter()
            .map(|uri| ExternalUri {
                text: uri.text.clone(),
                span: uri.span,
            })
            .collect();
        let input = Rel::new(
            RelKind::ExternalData {
                uris,
                format,
                ignore_first_record,
                declared: declared.columns.iter().map(|c| c.ty).collect(),
            },
            raw,
        );
        Ok(Rel::new(
            RelKind::Project {
                input: Box::new(input),
                exprs,
            },
            declared,
        ))
    }

    /// `format` (csv by default) and `ignoreFirstRecord` (false by default).
    fn external_properties(
        &self,
        properties: &[ast::ExternalProperty],
    ) -> Result<(ExternalFormat, bool), BindError> {
        let mut format = None;
        let mut ignore_first_record = None;
        for property in properties {
            let name = property.name.text.to_ascii_lowercase();
            let already = match name.as_str() {
                "format" => format.is_some(),
                "ignorefirstrecord" => ignore_first_record.is_some(),
                _ => {
                    return Err(self.error(
                        property.name.span,
                        format!(
                            "externaldata property '{}' is not supported (supported: {PROPERTIES})",
                            property.name.text
                        ),
                    ));
                }
            };
            if already {
                return Err(self.error(
                    property.name.span,
                    format!(
                        "externaldata property '{}' is set twice",
                        property.name.text
                    ),
                ));
            }
            if name == "format" {
                format = Some(self.external_format(property)?);
            } else {
                let value = match &property.value {
                    Literal::Bool(value) => Some(*value),
                    Literal::String(text) => match text.to_ascii_lowercase().as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    },
                    _ => None,
                };
                ignore_first_record = Some(value.ok_or_else(|| {
                    self.error(
                        property.value_span,
                        "externaldata property 'ignoreFirstRecord' must be true or false",
                    )
                })?);
            }
        }
        Ok((
            format.unwrap_or(ExternalFormat::Csv),
            ignore_first_record.unwrap_or(false),
        ))
    }

    fn external_format(
        &self,
        property: &ast::ExternalProperty,
    ) -> Result<ExternalFormat, BindError> {
        let text = match &property.value {
            Literal::String(text) => text.to_ascii_lowercase(),
            _ => String::new(),
        };
        match text.as_str() {
            "csv" => Ok(ExternalFormat::Csv),
            "tsv" => Ok(ExternalFormat::Tsv),
            "json" => Ok(ExternalFormat::Json),
            "multijson" => Ok(ExternalFormat::MultiJson),
            _ => Err(self.error(
                property.value_span,
                "externaldata format must be \"csv\", \"tsv\", \"json\" or \"multijson\"",
            )),
        }
    }
}

/// `text` (a string column) converted to `ty` the way KQL's conversion functions do.
fn convert(text: BoundExpr, ty: ScalarType) -> BoundExpr {
    let function = match ty {
        ScalarType::String => return text,
        ScalarType::Bool => "tobool",
        ScalarType::Int => "toint",
        ScalarType::Long => "tolong",
        ScalarType::Real => "toreal",
        ScalarType::Decimal => "todecimal",
        ScalarType::Datetime => "todatetime",
        ScalarType::Timespan => "totimespan",
        ScalarType::Guid => "toguid",
        ScalarType::Dynamic => "parse_json",
    };
    let span = text.span;
    BoundExpr::new(
        BoundExprKind::Call {
            function,
            args: vec![text],
        },
        ty,
        span,
    )
}
