//! Calendar arithmetic, parsing and formatting for KQL `datetime` and `timespan`.
//!
//! Both are carried as `i64` nanoseconds (datetimes since the Unix epoch, UTC), which is
//! what the Arrow `Timestamp(Nanosecond, "UTC")` columns of the event store hold. The
//! calendar is the proleptic Gregorian one, computed with the days-from-civil algorithm
//! rather than a date library so every rule (Sunday weeks, bins aligned on 0001-01-01,
//! period ends one tick before the next period) is visible here.

pub const NANOS_PER_TICK: i64 = 100;
pub const NANOS_PER_MICRO: i64 = 1_000;
pub const NANOS_PER_MILLI: i64 = 1_000_000;
pub const NANOS_PER_SEC: i64 = 1_000_000_000;
pub const NANOS_PER_MIN: i64 = 60 * NANOS_PER_SEC;
pub const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MIN;
pub const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

/// Days from 0001-01-01 to 1970-01-01: datetime bins align on 0001-01-01 (so `7d` bins
/// start on Mondays), which is before what an `i64` of nanoseconds reaches.
pub const DAYS_0001_TO_EPOCH: i64 = 719_162;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub use rampart_core::timefmt::civil_from_days;

pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// A datetime split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

pub fn split(nanos: i64) -> Parts {
    let days = nanos.div_euclid(NANOS_PER_DAY);
    let in_day = nanos.rem_euclid(NANOS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: (in_day / NANOS_PER_HOUR) as u32,
        minute: (in_day % NANOS_PER_HOUR / NANOS_PER_MIN) as u32,
        second: (in_day % NANOS_PER_MIN / NANOS_PER_SEC) as u32,
        nanos: (in_day % NANOS_PER_SEC) as u32,
    }
}

/// Nanoseconds since the epoch of calendar fields, `None` if out of range.
pub fn join(parts: Parts) -> Option<i64> {
    if !(1..=12).contains(&parts.month)
        || parts.day == 0
        || parts.day > days_in_month(parts.year, parts.month)
        || parts.hour > 23
        || parts.minute > 59
        || parts.second > 59
    {
        return None;
    }
    let days = days_from_civil(parts.year, parts.month, parts.day);
    let seconds =
        i64::from(parts.hour) * 3600 + i64::from(parts.minute) * 60 + i64::from(parts.second);
    days.checked_mul(NANOS_PER_DAY)?
        .checked_add(seconds * NANOS_PER_SEC)?
        .checked_add(i64::from(parts.nanos))
}

/// Day of the week, 0 = Sunday.
pub fn weekday(nanos: i64) -> i64 {
    (nanos.div_euclid(NANOS_PER_DAY) + 4).rem_euclid(7)
}

/// 1-based day of the year.
pub fn day_of_year(nanos: i64) -> i64 {
    let p = split(nanos);
    nanos.div_euclid(NANOS_PER_DAY) - days_from_civil(p.year, 1, 1) + 1
}

/// ISO 8601 week number (weeks start on Monday; week 1 holds the first Thursday).
pub fn iso_week(nanos: i64) -> i64 {
    let days = nanos.div_euclid(NANOS_PER_DAY);
    // Monday = 0 ... Sunday = 6
    let monday_based = (days + 3).rem_euclid(7);
    let thursday = days - monday_based + 3;
    let (year, _, _) = civil_from_days(thursday);
    (thursday - days_from_civil(year, 1, 1)) / 7 + 1
}

// ---- parsing ------------------------------------------------------------------

struct Cursor<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl<'t> Cursor<'t> {
    fn new(text: &'t str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Between `min` and `max` decimal digits; returns the value and the digit count.
    fn digits(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let start = self.at;
        let mut value: i64 = 0;
        while self.at - start < max {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
                    self.at += 1;
                }
                _ => break,
            }
        }
        let count = self.at - start;
        (count >= min).then_some((value, count))
    }

    fn word(&mut self) -> &'t str {
        let start = self.at;
        while matches!(self.peek(), Some(b) if b.is_ascii_alphabetic()) {
            self.at += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("")
    }
}

/// A fraction of a second written with `count` digits, as nanoseconds.
fn fraction_nanos(value: i64, count: usize) -> i64 {
    let mut nanos = value;
    for _ in count..9 {
        nanos *= 10;
    }
    for _ in 9..count {
        nanos /= 10;
    }
    nanos
}

/// `datetime` text (§1.4): ISO 8601 (`2024-05-01`, `2024-05-01 13:45`,
/// `2024-05-01T13:45:10.1234567Z`, with an optional `+hh:mm` offset), RFC 822
/// (`Sat, 8 Nov 14 15:05:02 GMT`) and RFC 850 (`Saturday, 08-Nov-14 15:05:02 GMT`).
pub fn parse_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.as_bytes()[0].is_ascii_alphabetic() {
        return parse_rfc(text);
    }
    let mut c = Cursor::new(text);
    let (year, _) = c.digits(4, 4)?;
    let sep = if c.eat(b'-') {
        b'-'
    } else if c.eat(b'/') {
        b'/'
    } else {
        return None;
    };
    let (month, _) = c.digits(1, 2)?;
    if !c.eat(sep) {
        return None;
    }
    let (day, _) = c.digits(1, 2)?;
    let mut parts = Parts {
        year,
        month: month as u32,
        day: day as u32,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
    };
    let mut offset = 0i64;
    if !c.done() {
        if !(c.eat(b'T') || c.eat(b' ')) {
            return None;
        }
        c.skip_spaces();
        if !c.done() {
            parse_clock(&mut c, &mut parts)?;
            c.skip_spaces();
            offset = parse_zone(&mut c)?;
        }
    }
    if !c.done() {
        return None;
    }
    join(parts)?.checked_sub(offset)
}

/// `hh:mm[:ss[.fffffff]]`
fn parse_clock(c: &mut Cursor<'_>, parts: &mut Parts) -> Option<()> {
    parts.hour = c.digits(1, 2)?.0 as u32;
    if !c.eat(b':') {
        return None;
    }
    parts.minute = c.digits(2, 2)?.0 as u32;
    if c.eat(b':') {
        parts.second = c.digits(2, 2)?.0 as u32;
        if c.eat(b'.') {
            let (value, count) = c.digits(1, 9)?;
            parts.nanos = fraction_nanos(value, count) as u32;
            // Digits past nanosecond precision are dropped.
            while matches!(c.peek(), Some(b'0'..=b'9')) {
                c.at += 1;
            }
        }
    }
    Some(())
}

/// `Z`, `GMT`, `UTC`, `+hh:mm`, `-hhmm` or nothing: the offset east of UTC in nanoseconds.
fn parse_zone(c: &mut Cursor<'_>) -> Option<i64> {
    if c.done() {
        return Some(0);
    }
    if c.eat(b'Z') || c.eat(b'z') {
        return Some(0);
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        let word = c.word();
        return matches!(word, "GMT" | "UTC" | "UT").then_some(0);
    };
    let (hours, _) = c.digits(2, 2)?;
    c.eat(b':');
    let (minutes, _) = c.digits(2, 2).unwrap_or((0, 0));
    Some(sign * (hours * NANOS_PER_HOUR + minutes * NANOS_PER_MIN))
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.to_ascii_lowercase();
    let short = lower.get(..3)?;
    MONTHS
        .iter()
        .position(|m| *m == short)
        .map(|i| i as u32 + 1)
}

/// Two-digit years follow .NET: 00-29 are 20xx, 30-99 19xx.
fn full_year(value: i64, digits: usize) -> i64 {
    if digits > 2 {
        value
    } else if value < 30 {
        2000 + value
    } else {
        1900 + value
    }
}

/// RFC 822 `Sat, 8 Nov 14 15:05:02 GMT` and RFC 850 `Saturday, 08-Nov-14 15:05:02 GMT`.
fn parse_rfc(text: &str) -> Option<i64> {
    let mut c = Cursor::new(text);
    c.word();
    if !c.eat(b',') {
        return None;
    }
    c.skip_spaces();
    let (day, _) = c.digits(1, 2)?;
    let dashed = c.eat(b'-');
    if !dashed {
        c.skip_spaces();
    }
    let month = month_number(c.word())?;
    if dashed {
        if !c.eat(b'-') {
            return None;
        }
    } else {
        c.skip_spaces();
    }
    let (year, count) = c.digits(2, 4)?;
    let mut parts = Parts {
        year: full_year(year, count),
        month,
        day: day as u32,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
    };
    c.skip_spaces();
    if !c.done() {
        parse_clock(&mut c, &mut parts)?;
        c.skip_spaces();
    }
    let offset = parse_zone(&mut c)?;
    if !c.done() {
        return None;
    }
    join(parts)?.checked_sub(offset)
}

/// `timespan` text: `[-][d.]hh:mm[:ss[.fffffff]]`, or a number with a unit (`1d`, `1.5h`,
/// `30m`, `10s`, `100ms`, `5micro`, `7tick`).
pub fn parse_timespan(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if body.contains(':') {
        parse_clock_span(body)?
    } else {
        parse_unit_span(body)?
    };
    Some(if negative { -value } else { value })
}

fn parse_clock_span(body: &str) -> Option<i64> {
    let mut c = Cursor::new(body);
    let (first, _) = c.digits(1, 9)?;
    let (days, hours) = if c.eat(b'.') {
        (first, c.digits(1, 2)?.0)
    } else {
        (0, first)
    };
    if !c.eat(b':') {
        return None;
    }
    let (minutes, _) = c.digits(1, 2)?;
    let mut seconds = 0;
    let mut nanos = 0;
    if c.eat(b':') {
        seconds = c.digits(1, 2)?.0;
        if c.eat(b'.') {
            let (value, count) = c.digits(1, 9)?;
            nanos = fraction_nanos(value, count);
        }
    }
    if !c.done() || minutes > 59 || seconds > 59 {
        return None;
    }
    days.checked_mul(NANOS_PER_DAY)?
        .checked_add(hours.checked_mul(NANOS_PER_HOUR)?)?
        .checked_add(minutes * NANOS_PER_MIN + seconds * NANOS_PER_SEC + nanos)
}

fn parse_unit_span(body: &str) -> Option<i64> {
    let split = body
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let unit = unit.trim();
    let scale = match unit {
        "d" | "day" | "days" | "" => NANOS_PER_DAY,
        "h" | "hr" | "hrs" | "hour" | "hours" => NANOS_PER_HOUR,
        "m" | "min" | "minute" | "minutes" => NANOS_PER_MIN,
        "s" | "sec" | "second" | "seconds" => NANOS_PER_SEC,
        "ms" | "milli" | "millis" | "millisec" | "millisecond" | "milliseconds" => NANOS_PER_MILLI,
        "micro" | "microsec" | "microsecond" | "microseconds" => NANOS_PER_MICRO,
        "nano" | "nanosec" | "nanosecond" | "nanoseconds" => 1,
        "tick" | "ticks" => NANOS_PER_TICK,
        _ => return None,
    };
    if number.is_empty() {
        return None;
    }
    if number.contains('.') {
        let value: f64 = number.parse().ok()?;
        let nanos = value * scale as f64;
        (nanos.abs() < i64::MAX as f64).then_some(nanos as i64)
    } else {
        number.parse::<i64>().ok()?.checked_mul(scale)
    }
}

// ---- formatting -----------------------------------------------------------------

/// Fraction digits without trailing zeros (`""` for a whole second).
fn trimmed_fraction(nanos: u32, digits: usize) -> String {
    if nanos == 0 {
        return String::new();
    }
    let full = format!("{nanos:09}");
    let kept = &full[..digits.min(9)];
    kept.trim_end_matches('0').to_string()
}

/// `tostring(datetime)`: ISO 8601 UTC with `Z`, fractional digits only when non-zero.
pub fn format_iso(nanos: i64) -> String {
    let p = split(nanos);
    let fraction = trimmed_fraction(p.nanos, 9);
    let dot = if fraction.is_empty() { "" } else { "." };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{dot}{fraction}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

/// `tostring(timespan)`: `[-][d.]hh:mm:ss[.fffffff]` (.NET's constant format).
pub fn format_timespan(nanos: i64) -> String {
    let negative = nanos < 0;
    let magnitude = i128::from(nanos).unsigned_abs();
    let day = NANOS_PER_DAY as u128;
    let days = magnitude / day;
    let rest = magnitude % day;
    let hours = rest / NANOS_PER_HOUR as u128;
    let minutes = rest % NANOS_PER_HOUR as u128 / NANOS_PER_MIN as u128;
    let seconds = rest % NANOS_PER_MIN as u128 / NANOS_PER_SEC as u128;
    let fraction = (rest % NANOS_PER_SEC as u128) as u64;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{hours:02}:{minutes:02}:{seconds:02}"));
    if fraction > 0 {
        if fraction.is_multiple_of(100) {
            out.push_str(&format!(".{:07}", fraction / 100));
        } else {
            out.push_str(&format!(".{fraction:09}"));
        }
    }
    out
}

/// One token of a `format_datetime`/`format_timespan` pattern.
enum Token {
    /// A run of one letter (`yyyy`, `MM`, `fff`).
    Field(char, usize),
    Literal(String),
}

fn tokenize(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch.is_ascii_alphabetic() {
            let mut run = 1;
            while i + run < chars.len() && chars[i + run] == ch {
                run += 1;
            }
            tokens.push(Token::Field(ch, run));
            i += run;
        } else if " /-:,._[]".contains(ch) {
            tokens.push(Token::Literal(ch.to_string()));
            i += 1;
        } else {
            return None;
        }
    }
    Some(tokens)
}

/// Fraction tokens: `f` keeps every digit, `F` drops trailing zeros.
fn fraction_token(nanos: u32, letter: char, count: usize) -> String {
    let digits = format!("{nanos:09}");
    let kept = &digits[..count.min(9)];
    if letter == 'F' {
        kept.trim_end_matches('0').to_string()
    } else {
        format!("{kept:0<count$}")
    }
}

/// `format_datetime(dt, pattern)` with the tokens of §6.1.
pub fn format_datetime_pattern(nanos: i64, pattern: &str) -> Option<String> {
    let p = split(nanos);
    let mut out = String::new();
    for token in tokenize(pattern)? {
        match token {
            Token::Literal(text) => out.push_str(&text),
            Token::Field(letter, n) => {
                let text = match (letter, n) {
                    ('y', 1) => (p.year % 100).to_string(),
                    ('y', 2) => format!("{:02}", p.year % 100),
                    ('y', n) => format!("{:0n$}", p.year),
                    ('M', 1) => p.month.to_string(),
                    ('M', _) => format!("{:02}", p.month),
                    ('d', 1) => p.day.to_string(),
                    ('d', _) => format!("{:02}", p.day),
                    ('H', 1) => p.hour.to_string(),
                    ('H', _) => format!("{:02}", p.hour),
                    ('h', n) => {
                        let twelve = if p.hour.is_multiple_of(12) {
                            12
                        } else {
                            p.hour % 12
                        };
                        if n == 1 {
                            twelve.to_string()
                        } else {
                            format!("{twelve:02}")
                        }
                    }
                    ('m', 1) => p.minute.to_string(),
                    ('m', _) => format!("{:02}", p.minute),
                    ('s', 1) => p.second.to_string(),
                    ('s', _) => format!("{:02}", p.second),
                    ('f' | 'F', n) => fraction_token(p.nanos, letter, n),
                    ('t', _) => (if p.hour < 12 { "AM" } else { "PM" }).to_string(),
                    _ => return None,
                };
                out.push_str(&text);
            }
        }
    }
    Some(out)
}

/// `format_timespan(ts, pattern)`: `d..dddddddd`, `H`, `HH`, `m`, `mm`, `s`, `ss`, `f..`, `F..`.
pub fn format_timespan_pattern(nanos: i64, pattern: &str) -> Option<String> {
    let magnitude = i128::from(nanos).unsigned_abs();
    let days = magnitude / NANOS_PER_DAY as u128;
    let rest = magnitude % NANOS_PER_DAY as u128;
    let hours = rest / NANOS_PER_HOUR as u128;
    let minutes = rest % NANOS_PER_HOUR as u128 / NANOS_PER_MIN as u128;
    let seconds = rest % NANOS_PER_MIN as u128 / NANOS_PER_SEC as u128;
    let fraction = (rest % NANOS_PER_SEC as u128) as u32;
    let mut out = String::new();
    if nanos < 0 {
        out.push('-');
    }
    for token in tokenize(pattern)? {
        match token {
            Token::Literal(text) => out.push_str(&text),
            Token::Field(letter, n) => {
                let text = match letter {
                    'd' => format!("{days:0n$}"),
                    'H' | 'h' => format!("{hours:0n$}"),
                    'm' => format!("{minutes:0n$}"),
                    's' => format!("{seconds:0n$}"),
                    'f' | 'F' => fraction_token(fraction, letter, n),
                    _ => return None,
                };
                out.push_str(&text);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -719_162, -1, 0, 1, 19_800, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1, 1, 1), -DAYS_0001_TO_EPOCH);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn parses_the_documented_forms() {
        let day = days_from_civil(2024, 5, 1) * NANOS_PER_DAY;
        assert_eq!(parse_datetime("2024-05-01"), Some(day));
        assert_eq!(
            parse_datetime("2024-05-01 13:45"),
            Some(day + 13 * NANOS_PER_HOUR + 45 * NANOS_PER_MIN)
        );
        assert_eq!(
            parse_datetime("2024-05-01T13:45:10.1234567Z"),
            Some(day + 13 * NANOS_PER_HOUR + 45 * NANOS_PER_MIN + 10 * NANOS_PER_SEC + 123_456_700)
        );
        let nov = days_from_civil(2014, 11, 8) * NANOS_PER_DAY
            + 15 * NANOS_PER_HOUR
            + 5 * NANOS_PER_MIN
            + 2 * NANOS_PER_SEC;
        assert_eq!(parse_datetime("Sat, 8 Nov 14 15:05:02 GMT"), Some(nov));
        assert_eq!(
            parse_datetime("Saturday, 08-Nov-14 15:05:02 GMT"),
            Some(nov)
        );
        assert_eq!(parse_datetime("2024-13-01"), None);
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn timespans() {
        assert_eq!(
            parse_timespan("1.02:03:04.5"),
            Some(
                NANOS_PER_DAY
                    + 2 * NANOS_PER_HOUR
                    + 3 * NANOS_PER_MIN
                    + 4 * NANOS_PER_SEC
                    + 500_000_000
            )
        );
        assert_eq!(parse_timespan("-00:05"), Some(-5 * NANOS_PER_MIN));
        assert_eq!(parse_timespan("1.5h"), Some(90 * NANOS_PER_MIN));
        assert_eq!(
            format_timespan(NANOS_PER_DAY + 90 * NANOS_PER_MIN),
            "1.01:30:00"
        );
        assert_eq!(format_timespan(-1_500_000_000), "-00:00:01.5000000");
        assert_eq!(format_iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_iso(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn weeks() {
        // 2024-03-06 is a Wednesday.
        let wed = days_from_civil(2024, 3, 6) * NANOS_PER_DAY;
        assert_eq!(weekday(wed), 3);
        assert_eq!(iso_week(wed), 10);
        assert_eq!(iso_week(days_from_civil(2021, 1, 3) * NANOS_PER_DAY), 53);
        assert_eq!(
            format_datetime_pattern(wed + 13 * NANOS_PER_HOUR, "yyyy-MM-dd HH:mm tt").as_deref(),
            Some("2024-03-06 13:00 PM")
        );
    }
}
