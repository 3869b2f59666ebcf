//! Time arithmetic the generator needs: ticks, ISO-8601 text as advanced hunting writes it, local
//! hours and weekdays. No allocation: text goes into a fixed buffer.

/// Nanoseconds per KQL tick; every generated time is a whole number of ticks, so text written
/// with seven fractional digits parses back to the same instant.
pub const TICK: i64 = 100;
pub const MILLI: i64 = 1_000_000;
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Offset between .NET ticks (100 ns since 0001-01-01) and the Unix epoch; snapshot tables carry
/// ReportIds that look like .NET ticks (18 digits).
pub const DOTNET_EPOCH_TICKS: i64 = 621_355_968_000_000_000;

/// `secs` seconds (fractional) as a whole number of ticks, in nanoseconds.
pub fn secs(s: f64) -> i64 {
    let ticks = (s * (SECOND / TICK) as f64).round() as i64;
    ticks.max(1) * TICK
}

/// Rounds up to a whole tick.
pub fn ceil_tick(ns: i64) -> i64 {
    let r = ns.rem_euclid(TICK);
    if r == 0 { ns } else { ns + (TICK - r) }
}

/// Length of [`iso`] output.
pub const ISO_LEN: usize = 28;

/// `2026-07-18T12:59:31.2914446Z` (always 7 fractional digits, UTC).
pub fn iso(ns: i64, out: &mut [u8; ISO_LEN]) -> &str {
    let secs = ns.div_euclid(SECOND);
    let frac = ns.rem_euclid(SECOND) / TICK;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    let put = |out: &mut [u8; ISO_LEN], at: usize, width: usize, mut v: u64| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(out, 0, 4, u64::from(y));
    out[4] = b'-';
    put(out, 5, 2, u64::from(m));
    out[7] = b'-';
    put(out, 8, 2, u64::from(d));
    out[10] = b'T';
    put(out, 11, 2, (sod / 3600) as u64);
    out[13] = b':';
    put(out, 14, 2, (sod / 60 % 60) as u64);
    out[16] = b':';
    put(out, 17, 2, (sod % 60) as u64);
    out[19] = b'.';
    put(out, 20, 7, frac as u64);
    out[27] = b'Z';
    // Only ASCII digits and punctuation were written.
    std::str::from_utf8(out).unwrap_or("1970-01-01T00:00:00.0000000Z")
}

/// `iso` into a new `String`, for the few places that keep text (labels, JSON rows).
pub fn iso_string(ns: i64) -> String {
    let mut b = [0u8; ISO_LEN];
    iso(ns, &mut b).to_owned()
}

/// Parses an RFC 3339 / ISO-8601 instant (as advanced hunting writes them) into nanoseconds.
pub fn parse(s: &str) -> Option<i64> {
    rampart_telemetry::rows::parse_datetime(s.trim())
}

pub use rampart_core::timefmt::civil_from_days;

/// Start of the local day containing `ns` for a site `offset_ns` east of UTC, in UTC ns.
pub fn local_midnight(ns: i64, offset_ns: i64) -> i64 {
    (ns + offset_ns).div_euclid(DAY) * DAY - offset_ns
}

/// Whether the local day starting at `midnight` (from [`local_midnight`]) is Saturday or Sunday.
pub fn is_weekend(midnight: i64, offset_ns: i64) -> bool {
    // 1970-01-01 was a Thursday: day 0 -> weekday 3 with Monday = 0.
    let day = (midnight + offset_ns).div_euclid(DAY);
    (day + 3).rem_euclid(7) >= 5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_text_round_trips_through_the_ingest_parser() {
        let mut b = [0u8; ISO_LEN];
        assert_eq!(iso(0, &mut b), "1970-01-01T00:00:00.0000000Z");
        let t = 1_784_379_571_291_444_600; // 2026-07-18T12:59:31.2914446Z
        assert_eq!(iso(t, &mut b), "2026-07-18T12:59:31.2914446Z");
        assert_eq!(
            rampart_telemetry::rows::parse_datetime(iso(t, &mut b)),
            Some(t)
        );
        assert_eq!(
            iso(951_782_400 * SECOND, &mut b),
            "2000-02-29T00:00:00.0000000Z"
        );
    }

    #[test]
    fn weekends_and_local_days() {
        // 2026-07-18 is a Saturday; 2026-07-20 a Monday.
        let sat = 1_784_332_800 * SECOND;
        assert!(is_weekend(local_midnight(sat + HOUR, 0), 0));
        assert!(!is_weekend(local_midnight(sat + 2 * DAY, 0), 0));
        // 23:00 UTC Sunday is already Monday in Berlin.
        let off = 2 * HOUR;
        assert!(!is_weekend(local_midnight(sat + DAY + 23 * HOUR, off), off));
        assert_eq!(secs(1.5), 1_500_000_000);
        assert_eq!(ceil_tick(101), 200);
    }
}
