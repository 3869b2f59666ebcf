//! Times as the telemetry route reads them: RFC 3339 UTC text with up to nine fractional digits.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `t` as RFC 3339 text in UTC.
pub fn rfc3339(t: OffsetDateTime) -> String {
    // Formatting fails only for years outside 0..=9999, which a clock never gives; the
    // fallback keeps a row rather than dropping it.
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
