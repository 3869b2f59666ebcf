//! Tokens of `$filter`.
//!
//! The lexer works on `char`s so that every position it reports is a character offset into the
//! filter as the client wrote it (after URL decoding), which is what a person counts when reading
//! an error message. Keywords (`and`, `eq`, `true`, …) are plain identifiers here: the parser
//! decides from context whether an identifier is a keyword or a property name.

use super::ODataError;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// One token's kind and value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A name: a property, a lambda variable, a function, or a keyword.
    Ident(String),
    /// A single-quoted string with its `''` escapes resolved.
    Str(String),
    Int(i64),
    /// An unquoted ISO 8601 datetime or date.
    DateTime(OffsetDateTime),
    LParen,
    RParen,
    Comma,
    Slash,
    Colon,
}

/// A token and the character offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

impl Tok {
    /// How an error message names this token; long user text is shortened.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{}'", shorten(s)),
            Tok::Str(s) => format!("the string '{}'", shorten(s)),
            Tok::Int(i) => format!("the number {i}"),
            Tok::DateTime(t) => format!("the datetime {}", crate::timefmt::format(*t)),
            Tok::LParen => "'('".to_owned(),
            Tok::RParen => "')'".to_owned(),
            Tok::Comma => "','".to_owned(),
            Tok::Slash => "'/'".to_owned(),
            Tok::Colon => "':'".to_owned(),
        }
    }
}

/// Cuts user text quoted in an error message to a readable length.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

fn error(pos: usize, message: impl std::fmt::Display) -> ODataError {
    ODataError::new("$filter", format!("$filter: {message} at position {pos}"))
}

/// Splits a filter into tokens.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ODataError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '/' => Some(Tok::Slash),
            ':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token { tok, pos: start });
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let (s, next) = string(&chars, start)?;
            out.push(Token {
                tok: Tok::Str(s),
                pos: start,
            });
            i = next;
        } else if c.is_ascii_alphabetic() || c == '_' {
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                pos: start,
            });
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers and datetimes share a start, so take the whole run of characters either may
            // contain and decide afterwards: `2019-11-22T00:00:00+01:00` is one token.
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token {
                tok: number_or_datetime(&text, start)?,
                pos: start,
            });
        } else if c == '"' {
            return Err(error(
                start,
                "strings are written in single quotes ('like this'), not double quotes",
            ));
        } else {
            return Err(error(start, format_args!("unexpected character '{c}'")));
        }
    }
    Ok(out)
}

/// Reads a single-quoted string starting at `start`; returns it and the offset after it.
fn string(chars: &[char], start: usize) -> Result<(String, usize), ODataError> {
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(error(
                    start,
                    "the string starting here is not closed with '",
                ));
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                s.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((s, i + 1)),
            Some(&c) => {
                s.push(c);
                i += 1;
            }
        }
    }
}

fn number_or_datetime(text: &str, pos: usize) -> Result<Tok, ODataError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map(Tok::Int).map_err(|_| {
            error(
                pos,
                format_args!("the number {} is out of range", shorten(text)),
            )
        });
    }
    parse_datetime(text).map(Tok::DateTime).ok_or_else(|| {
        // `…T10:00:00+01:00` arrives as `…T10:00:00 01:00` when the client left the `+`
        // unencoded in the URL (form decoding turns it into a space): say so.
        let b = text.as_bytes();
        let plus_hint = if b.len() == 5 && b[2] == b':' {
            "; if this is a time zone offset, write its '+' as %2B in the URL"
        } else {
            ""
        };
        error(
            pos,
            format_args!(
                "'{}' is neither a whole number nor an ISO 8601 datetime (like \
                 2024-01-31T00:00:00Z){plus_hint}",
                shorten(text)
            ),
        )
    })
}

/// Parses the datetimes `$filter` accepts: RFC 3339 (`2019-11-22T00:00:00Z`, any fraction,
/// `+01:00` offsets), the same without an offset (taken as UTC, as MDE's own examples are UTC),
/// and a bare date `2019-11-22` (midnight UTC).
pub(crate) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    if let Some(date) = parse_date(s) {
        return Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    // Everything else must at least start with a date and a time separator; checking that first
    // keeps arbitrary text away from the RFC 3339 parser's error paths.
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    parse_date(date)?;
    if !rest.starts_with(['T', 't']) {
        return None;
    }
    if let Some(t) = crate::timefmt::parse(s) {
        return Some(t);
    }
    if s.ends_with(|c: char| c.is_ascii_digit()) {
        return crate::timefmt::parse(&format!("{s}Z"));
    }
    None
}

/// `YYYY-MM-DD`, exactly.
fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let day = u8::try_from(num(8..10)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn dt(s: &str) -> OffsetDateTime {
        crate::timefmt::parse(s).unwrap()
    }

    #[test]
    fn splits_punctuation_names_and_values() {
        assert_eq!(
            toks("machineTags/any(t: t eq 'x'),"),
            vec![
                Tok::Ident("machineTags".into()),
                Tok::Slash,
                Tok::Ident("any".into()),
                Tok::LParen,
                Tok::Ident("t".into()),
                Tok::Colon,
                Tok::Ident("t".into()),
                Tok::Ident("eq".into()),
                Tok::Str("x".into()),
                Tok::RParen,
                Tok::Comma,
            ]
        );
    }

    #[test]
    fn positions_are_char_offsets() {
        let t = tokenize("'é' eq x").unwrap();
        assert_eq!(t.iter().map(|t| t.pos).collect::<Vec<_>>(), vec![0, 4, 7]);
    }

    #[test]
    fn strings_unescape_doubled_quotes() {
        assert_eq!(
            toks("'it''s' ''"),
            vec![Tok::Str("it's".into()), Tok::Str(String::new())]
        );
        assert_eq!(toks("'a b\t%_\\'"), vec![Tok::Str("a b\t%_\\".into())]);
    }

    #[test]
    fn unterminated_string_is_an_error() {
        let e = tokenize("name eq 'abc").unwrap_err();
        assert_eq!(e.target, "$filter");
        assert!(
            e.message.contains("not closed") && e.message.contains("position 8"),
            "{}",
            e.message
        );
        assert!(tokenize("'it''").is_err());
    }

    #[test]
    fn double_quotes_are_explained() {
        let e = tokenize("a eq \"x\"").unwrap_err();
        assert!(
            e.message.contains("single quotes") && e.message.contains("position 5"),
            "{}",
            e.message
        );
    }

    #[test]
    fn integers_including_negative_and_bounds() {
        assert_eq!(
            toks("0 42 -7"),
            vec![Tok::Int(0), Tok::Int(42), Tok::Int(-7)]
        );
        assert_eq!(toks("-9223372036854775808"), vec![Tok::Int(i64::MIN)]);
        let e = tokenize("x eq 9223372036854775808").unwrap_err();
        assert!(e.message.contains("out of range"), "{}", e.message);
        assert!(
            tokenize("x eq 1.5")
                .unwrap_err()
                .message
                .contains("neither a whole number")
        );
        assert!(tokenize("x eq 12abc").is_err());
        let e = tokenize("t gt 2024-01-31T10:00:00 01:00").unwrap_err();
        assert!(
            e.message.contains("%2B") && e.message.contains("position 25"),
            "{}",
            e.message
        );
    }

    #[test]
    fn datetimes_in_every_accepted_form() {
        assert_eq!(
            toks("2019-11-22T00:00:00Z"),
            vec![Tok::DateTime(dt("2019-11-22T00:00:00Z"))]
        );
        assert_eq!(
            toks("2019-11-22T00:00:00.1234567Z"),
            vec![Tok::DateTime(dt("2019-11-22T00:00:00.1234567Z"))]
        );
        assert_eq!(
            toks("2019-11-22T01:00:00+01:00"),
            vec![Tok::DateTime(dt("2019-11-22T00:00:00Z"))]
        );
        assert_eq!(
            toks("2019-11-21T23:00:00-01:00"),
            vec![Tok::DateTime(dt("2019-11-22T00:00:00Z"))]
        );
        assert_eq!(
            toks("2019-11-22"),
            vec![Tok::DateTime(dt("2019-11-22T00:00:00Z"))]
        );
        assert_eq!(
            toks("2019-11-22T00:00:00"),
            vec![Tok::DateTime(dt("2019-11-22T00:00:00Z"))]
        );
        assert_eq!(
            toks("2019-11-22t10:00:00z"),
            vec![Tok::DateTime(dt("2019-11-22T10:00:00Z"))]
        );
    }

    #[test]
    fn invalid_datetimes_are_errors() {
        for bad in [
            "2019-13-01",
            "2019-02-30T00:00:00Z",
            "2019-11-22T25:00:00Z",
            "2019-11-22X",
            "2019-11-22T",
            "2019-1-2",
        ] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unexpected_characters_are_named() {
        let e = tokenize("a eq 1 & b").unwrap_err();
        assert!(
            e.message.contains("'&'") && e.message.contains("position 7"),
            "{}",
            e.message
        );
        assert!(tokenize("a eq -").is_err());
        assert!(tokenize("é").is_err());
    }
}
