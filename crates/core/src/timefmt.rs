//! Timestamps as MDE writes them (`2024-01-31T12:00:00.1234567Z`, always UTC) and as the stores
//! keep them (microseconds since the Unix epoch, so that ordering and comparison are integer
//! operations in every SQL dialect).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Microseconds since the Unix epoch.
/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`):
/// integer-only, so hot paths (event-store partitioning, KQL calendar functions, the simulator)
/// need no date library call per row.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the Unix epoch.
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats in UTC RFC 3339 with a `Z` suffix.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses RFC 3339 (any offset, any fraction length up to nanoseconds).
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Serde adapter for `Option<OffsetDateTime>` in MDE's format.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(v: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        match raw {
            None => Ok(None),
            Some(s) => super::parse(&s).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!("'{s}' is not an ISO 8601 UTC datetime"))
            }),
        }
    }
}

/// Serde adapter for a required `OffsetDateTime` in MDE's format.
pub mod required {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(v: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("'{s}' is not an ISO 8601 UTC datetime"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_and_format() {
        let t = parse("2018-08-03T16:45:21.7115183Z").unwrap();
        let back = from_micros(to_micros(t));
        assert_eq!(format(back), "2018-08-03T16:45:21.711518Z");
        assert!(parse("yesterday").is_none());
    }
}
