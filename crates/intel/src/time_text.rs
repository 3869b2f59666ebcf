//! Timestamps as feeds write them. STIX and TAXII use RFC 3339; spreadsheets exported to CSV
//! often drop the offset or the time, so those are read as UTC.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// RFC 3339, or ISO 8601 date-times without an offset (`2030-01-31T12:00:00`, with `T` or a
/// space, optional fraction) and plain dates, both taken as UTC.
pub(crate) fn parse(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // RFC 3339 requires the `T`; ISO 8601 as spreadsheets write it often has a space.
    if let Some(t) = s
        .get(10..11)
        .filter(|sep| *sep == " ")
        .and_then(|_| OffsetDateTime::parse(&format!("{}T{}", &s[..10], &s[11..]), &Rfc3339).ok())
    {
        return Some(t);
    }
    let local = s.replacen(' ', "T", 1);
    let with_fraction =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    for f in [with_fraction, without, minutes] {
        if let Ok(t) = PrimitiveDateTime::parse(&local, f) {
            return Some(t.assume_utc());
        }
    }
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc())
}
