//! MDE's CSV import template: `IndicatorType, IndicatorValue, ExpirationTime, Action, Severity,
//! Title, Description, RecommendedActions, RbacGroups, Category, MitreTechniques,
//! GenerateAlert`.
//!
//! Headers are matched case-insensitively, ignoring spaces and underscores, so the API's
//! camelCase names (`indicatorValue`, `rbacGroupNames`, `externalID`, `application`,
//! `educateUrl`) work too. `Category` and `MitreTechniques` are read and ignored: the API has no
//! field for them. Any other header makes the file unreadable, as its data would be lost.

use crate::collect::Collector;
use crate::{Defaults, FeedFileError, Format, Origin, Parsed, shorten, time_text};
use rampart_core::alert::Severity;
use rampart_core::indicator::{IndicatorRequest, IndicatorType, RequestedAction, SEVERITIES};

/// The columns the template and the API name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Type,
    Value,
    Expiration,
    Action,
    Severity,
    Title,
    Description,
    RecommendedActions,
    RbacGroups,
    GenerateAlert,
    Application,
    ExternalId,
    EducateUrl,
    /// Known, but the API has no field for it (or the column has no name).
    Ignored,
}

impl Col {
    fn name(self) -> &'static str {
        match self {
            Col::Type => "IndicatorType",
            Col::Value => "IndicatorValue",
            Col::Expiration => "ExpirationTime",
            Col::Action => "Action",
            Col::Severity => "Severity",
            Col::Title => "Title",
            Col::Description => "Description",
            Col::RecommendedActions => "RecommendedActions",
            Col::RbacGroups => "RbacGroups",
            Col::GenerateAlert => "GenerateAlert",
            Col::Application => "Application",
            Col::ExternalId => "ExternalID",
            Col::EducateUrl => "EducateUrl",
            Col::Ignored => "",
        }
    }

    fn from_header(h: &str) -> Option<Col> {
        let key: String = h
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        Some(match key.as_str() {
            "indicatortype" => Col::Type,
            "indicatorvalue" => Col::Value,
            "expirationtime" => Col::Expiration,
            "action" => Col::Action,
            "severity" => Col::Severity,
            "title" => Col::Title,
            "description" => Col::Description,
            "recommendedactions" => Col::RecommendedActions,
            "rbacgroups" | "rbacgroupnames" => Col::RbacGroups,
            "generatealert" => Col::GenerateAlert,
            "application" => Col::Application,
            "externalid" => Col::ExternalId,
            "educateurl" => Col::EducateUrl,
            // An unnamed column comes from a trailing comma in spreadsheets' exports.
            "category" | "mitretechniques" | "" => Col::Ignored,
            _ => return None,
        })
    }
}

const TEMPLATE: &str = "IndicatorType, IndicatorValue, ExpirationTime, Action, Severity, Title, Description, RecommendedActions, RbacGroups, Category, MitreTechniques, GenerateAlert";

/// Reads a CSV feed. The header line must name the template's columns; each further line is
/// one indicator (fields quoted per RFC 4180 may span lines: errors name the first).
pub fn parse(bytes: &[u8], defaults: &Defaults) -> Result<Parsed, FeedFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        // Rows of the wrong width are reported per row, not as a file error.
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => {
            return Err(FeedFileError::Header {
                line: 1,
                message: format!("the file is empty; expected a header line: {TEMPLATE}"),
            });
        }
        Some(Err(e)) => {
            return Err(FeedFileError::Header {
                line: line_of_error(&e),
                message: e.to_string(),
            });
        }
        Some(Ok(h)) => h,
    };
    let header_line = header.position().map_or(1, |p| p.line() as usize);
    let cols = columns(&header, header_line)?;

    let mut c = Collector::new(Format::Csv, defaults);
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                c.error(
                    Origin::Line(line_of_error(&e)),
                    format!("unreadable CSV: {e}"),
                );
                continue;
            }
        };
        let origin = Origin::Line(record.position().map_or(0, |p| p.line() as usize));
        if record.iter().all(|f| f.trim_ascii().is_empty()) {
            continue; // spreadsheets leave rows of empty fields behind
        }
        if record.len() != cols.len() {
            c.error(
                origin,
                format!(
                    "the line has {} fields, the header has {} (is a field with a comma missing its quotes?)",
                    record.len(),
                    cols.len()
                ),
            );
            continue;
        }
        match row(&cols, &record) {
            Ok(request) => c.push(origin, Col::Value.name(), request),
            Err(problems) => c.error(origin, problems.join("; ")),
        }
    }
    Ok(c.finish())
}

fn line_of_error(e: &::csv::Error) -> usize {
    e.position().map_or(0, |p| p.line() as usize)
}

/// The column of each header field; unknown, repeated or missing required columns make the
/// file unreadable.
fn columns(header: &::csv::ByteRecord, line: usize) -> Result<Vec<Col>, FeedFileError> {
    let mut cols = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    for raw in header.iter() {
        let name = String::from_utf8_lossy(raw);
        match Col::from_header(&name) {
            Some(col) => {
                if col != Col::Ignored && cols.contains(&col) {
                    return Err(FeedFileError::Header {
                        line,
                        message: format!("the column {} appears twice", col.name()),
                    });
                }
                cols.push(col);
            }
            None => unknown.push(format!("'{}'", shorten(name.trim()))),
        }
    }
    if !unknown.is_empty() {
        return Err(FeedFileError::Header {
            line,
            message: format!(
                "unknown column{} {}; the columns are {TEMPLATE} (or the API's camelCase names)",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", ")
            ),
        });
    }
    for required in [Col::Type, Col::Value] {
        if !cols.contains(&required) {
            return Err(FeedFileError::Header {
                line,
                message: format!(
                    "the header has no {} column; the columns are {TEMPLATE}",
                    required.name()
                ),
            });
        }
    }
    Ok(cols)
}

/// One data line as a request, or every problem it has.
fn row(cols: &[Col], record: &::csv::ByteRecord) -> Result<IndicatorRequest, Vec<String>> {
    let mut r = IndicatorRequest::default();
    let mut problems = Vec::new();
    for (col, raw) in cols.iter().zip(record.iter()) {
        if *col == Col::Ignored {
            continue;
        }
        let Ok(field) = std::str::from_utf8(raw) else {
            problems.push(format!("{} is not UTF-8 text", col.name()));
            continue;
        };
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let text = || Some(field.to_owned());
        match col {
            Col::Type => match field.parse::<IndicatorType>() {
                Ok(t) => r.indicator_type = Some(t),
                Err(m) => problems.push(format!("IndicatorType: {m}")),
            },
            Col::Value => r.indicator_value = text(),
            Col::Expiration => match time_text::parse(field) {
                Some(t) => r.expiration_time = Some(t),
                None => problems.push(format!(
                    "ExpirationTime: '{}' is not an ISO 8601 date-time such as 2030-01-31T00:00:00Z",
                    shorten(field)
                )),
            },
            Col::Action => match field.parse::<RequestedAction>() {
                Ok(a) => r.action = Some(a),
                Err(m) => problems.push(format!("Action: {m}")),
            },
            Col::Severity => match field.parse::<Severity>() {
                Ok(Severity::UnSpecified) | Err(_) => problems.push(format!(
                    "Severity: '{}' is not one of {}",
                    shorten(field),
                    SEVERITIES.join(", ")
                )),
                Ok(s) => r.severity = Some(s),
            },
            Col::Title => r.title = text(),
            Col::Description => r.description = text(),
            Col::RecommendedActions => r.recommended_actions = text(),
            Col::RbacGroups => {
                let groups: Vec<String> = field
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect();
                r.rbac_group_names = (!groups.is_empty()).then_some(groups);
            }
            Col::GenerateAlert => match parse_bool(field) {
                Some(b) => r.generate_alert = Some(b),
                None => problems.push(format!(
                    "GenerateAlert: '{}' is not true or false",
                    shorten(field)
                )),
            },
            Col::Application => r.application = text(),
            Col::ExternalId => r.external_id = text(),
            Col::EducateUrl => r.educate_url = text(),
            Col::Ignored => {}
        }
    }
    if r.indicator_type.is_none() && !problems.iter().any(|p| p.starts_with("IndicatorType")) {
        problems.insert(0, "IndicatorType is empty".to_owned());
    }
    if r.indicator_value.is_none() {
        problems.insert(0, "IndicatorValue is empty".to_owned());
    }
    if problems.is_empty() {
        Ok(r)
    } else {
        Err(problems)
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}
