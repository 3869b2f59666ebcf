//! Tokenizer: turns query text into [`Token`]s, each carrying its byte [`Span`].
//!
//! Built on `logos` for the raw scan; a second step ("cooking") turns the raw text
//! into values: string escapes are resolved, numbers and timespans are parsed, and
//! typed literals such as `datetime(2024-05-01 13:45)` keep their raw inner text.
//!
//! Words are one token kind ([`TokenKind::Word`]) because KQL keywords are contextual:
//! `count`, `kind` or `range` can be column names, so the parser decides by position.
//! Bracketed names (`['any text']`) are *not* lexed here: `[` + string + `]` is also
//! dynamic indexing (`d['k']`), and only the parser knows which one it is looking at.

use logos::Logos;

use crate::error::ParseError;
use crate::span::Span;

/// One cooked token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// Identifier, keyword, hyphenated keyword (`mv-expand`), `$left`/`$right`,
    /// `in~`, or a negated operator word (`!has`, `!in~`, `!between`).
    Word(String),
    /// A string literal with escapes resolved (any of the forms of reference §1.3).
    String(String),
    Long(i64),
    Real(f64),
    /// A timespan literal such as `1d` or `1.5s`, in 100 ns ticks.
    Timespan(i64),
    Bool(bool),
    /// `T(raw)` typed literal: `datetime(...)`, `dynamic(...)`, `int(null)`, `typeof(long)`...
    /// `raw` is the trimmed text between the parentheses; `raw_start` its byte offset.
    Typed {
        type_name: String,
        raw: String,
        raw_start: usize,
    },
    EqEq,
    NotEq,
    /// `<>`, an alias of `!=`.
    LtGt,
    /// `=~`
    EqTilde,
    /// `!~`
    BangTilde,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Pipe,
    Comma,
    Semicolon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Dot,
    DotDot,
    Eq,
    Colon,
}

impl TokenKind {
    /// True for the kinds that are literal values.
    pub fn is_literal(&self) -> bool {
        matches!(
            self,
            TokenKind::String(_)
                | TokenKind::Long(_)
                | TokenKind::Real(_)
                | TokenKind::Timespan(_)
                | TokenKind::Bool(_)
                | TokenKind::Typed { .. }
        )
    }
}

/// Raw scan. Whitespace includes the Unicode spaces KQL accepts (§1.1); there are
/// no block comments.
#[derive(Logos, Debug, Clone, Copy, PartialEq)]
#[logos(skip r"[ \t\r\n\x0C\u{A0}\u{2000}-\u{200B}\u{202F}\u{205F}\u{3000}\u{FEFF}]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
enum Raw {
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    #[regex(r"\$[A-Za-z_][A-Za-z0-9_]*")]
    #[regex(r"![A-Za-z_][A-Za-z0-9_]*~?")]
    #[token("in~")]
    // Hyphenated keywords are single tokens so `project-away` never reads as a subtraction.
    #[token("project-away")]
    #[token("project-keep")]
    #[token("project-rename")]
    #[token("project-reorder")]
    #[token("project-smart")]
    #[token("mv-expand")]
    #[token("mv-apply")]
    #[token("parse-where")]
    #[token("parse-kv")]
    #[token("top-nested")]
    #[token("top-hitters")]
    #[token("make-series")]
    #[token("sample-distinct")]
    #[token("granny-asc")]
    #[token("granny-desc")]
    Word,

    #[token("true")]
    #[token("True")]
    #[token("TRUE")]
    True,
    #[token("false")]
    #[token("False")]
    #[token("FALSE")]
    False,

    #[regex(r#"[hH]?"([^"\\\r\n]|\\[^\r\n])*""#)]
    #[regex(r#"[hH]?'([^'\\\r\n]|\\[^\r\n])*'"#)]
    Escaped,
    #[regex(r#"[hH]?@"([^"]|"")*""#)]
    #[regex(r#"[hH]?@'([^']|'')*'"#)]
    Verbatim,
    #[regex(r"[hH]?```", |lex| close_multiline(lex, "```"))]
    #[regex(r"[hH]?~~~", |lex| close_multiline(lex, "~~~"))]
    MultiLine,

    #[regex(r"[0-9]+")]
    Long,
    #[regex(r"0[xX][0-9a-fA-F]+")]
    Hex,
    // `1.` is valid KQL but is left out: it would swallow the first dot of `1..5`.
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?")]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+")]
    Real,
    #[regex(r"[0-9]+(\.[0-9]+)?(d|day|days|h|hr|hrs|hour|hours|m|min|minute|minutes|s|sec|second|seconds|ms|milli|millis|millisec|millisecond|milliseconds|micro|microsec|microsecond|microseconds|nano|nanosec|nanosecond|nanoseconds|tick|ticks)")]
    Timespan,

    #[regex(
        r"(datetime|date|timespan|time|guid|uuid|uniqueid|dynamic|int|int32|long|int64|real|double|decimal|bool|boolean|typeof)[ \t]*\(",
        close_typed
    )]
    Typed,

    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<>")]
    LtGt,
    #[token("=~")]
    EqTilde,
    #[token("!~")]
    BangTilde,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("|")]
    Pipe,
    #[token(",")]
    Comma,
    #[token(";")]
    Semicolon,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("=")]
    Eq,
    #[token(":")]
    Colon,
}

/// Extends a ```` ``` ```` / `~~~` token to its closing delimiter.
fn close_multiline(lex: &mut logos::Lexer<Raw>, delimiter: &str) -> bool {
    match lex.remainder().find(delimiter) {
        Some(at) => {
            lex.bump(at + delimiter.len());
            true
        }
        None => false,
    }
}

/// Extends `T(` to the matching `)`. Nested parentheses (in `dynamic(...)`) and
/// quoted strings are skipped so `dynamic(["a)"])` stays one token.
fn close_typed(lex: &mut logos::Lexer<Raw>) -> bool {
    let mut depth = 1usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (index, ch) in lex.remainder().char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '"' | '\'' => quote = Some(ch),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    lex.bump(index + 1);
                    return true;
                }
            }
            '\n' => return false,
            _ => {}
        }
    }
    false
}

/// Tokenizes a whole query.
pub fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    tokenize_at(text, text, 0)
}

/// Tokenizes `fragment`, which starts at byte `base` of the full query `full`; used
/// to re-lex the inside of `dynamic(...)` so spans and errors still point into the query.
pub(crate) fn tokenize_at(
    full: &str,
    fragment: &str,
    base: usize,
) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut lexer = Raw::lexer(fragment);
    while let Some(raw) = lexer.next() {
        let local = lexer.span();
        let span = Span::new(base + local.start, base + local.end);
        let slice = lexer.slice();
        let raw = match raw {
            Ok(raw) => raw,
            Err(()) => return Err(ParseError::new(full, span, describe_bad_input(slice))),
        };
        let fail = |message: String| ParseError::new(full, span, message);
        let kind = match raw {
            Raw::Word => TokenKind::Word(slice.to_string()),
            Raw::True => TokenKind::Bool(true),
            Raw::False => TokenKind::Bool(false),
            Raw::Escaped => TokenKind::String(cook_escaped(slice).map_err(fail)?),
            Raw::Verbatim => TokenKind::String(cook_verbatim(slice)),
            Raw::MultiLine => TokenKind::String(cook_multiline(slice)),
            Raw::Long => TokenKind::Long(
                slice
                    .parse()
                    .map_err(|_| fail(format!("integer literal '{slice}' is out of range")))?,
            ),
            Raw::Hex => {
                let digits = slice.get(2..).unwrap_or("");
                TokenKind::Long(
                    i64::from_str_radix(digits, 16)
                        .map_err(|_| fail(format!("hex literal '{slice}' is out of range")))?,
                )
            }
            Raw::Real => TokenKind::Real(
                slice
                    .parse()
                    .map_err(|_| fail(format!("invalid real literal '{slice}'")))?,
            ),
            Raw::Timespan => TokenKind::Timespan(
                timespan_ticks(slice).ok_or_else(|| fail(format!("invalid timespan '{slice}'")))?,
            ),
            Raw::Typed => typed_literal(slice, span.start),
            Raw::EqEq => TokenKind::EqEq,
            Raw::NotEq => TokenKind::NotEq,
            Raw::LtGt => TokenKind::LtGt,
            Raw::EqTilde => TokenKind::EqTilde,
            Raw::BangTilde => TokenKind::BangTilde,
            Raw::Lt => TokenKind::Lt,
            Raw::Le => TokenKind::Le,
            Raw::Gt => TokenKind::Gt,
            Raw::Ge => TokenKind::Ge,
            Raw::Plus => TokenKind::Plus,
            Raw::Minus => TokenKind::Minus,
            Raw::Star => TokenKind::Star,
            Raw::Slash => TokenKind::Slash,
            Raw::Percent => TokenKind::Percent,
            Raw::Pipe => TokenKind::Pipe,
            Raw::Comma => TokenKind::Comma,
            Raw::Semicolon => TokenKind::Semicolon,
            Raw::LParen => TokenKind::LParen,
            Raw::RParen => TokenKind::RParen,
            Raw::LBracket => TokenKind::LBracket,
            Raw::RBracket => TokenKind::RBracket,
            Raw::LBrace => TokenKind::LBrace,
            Raw::RBrace => TokenKind::RBrace,
            Raw::Dot => TokenKind::Dot,
            Raw::DotDot => TokenKind::DotDot,
            Raw::Eq => TokenKind::Eq,
            Raw::Colon => TokenKind::Colon,
        };
        tokens.push(Token { kind, span });
    }
    Ok(tokens)
}

fn describe_bad_input(slice: &str) -> String {
    let first = slice.chars().next();
    match first {
        Some('"' | '\'' | '@' | '`' | 'h' | 'H') => {
            "unterminated or invalid string literal".to_string()
        }
        Some('~') => "unterminated '~~~' string literal".to_string(),
        Some(c) if slice.contains('(') => {
            format!("unterminated typed literal starting with '{c}' (missing ')')")
        }
        Some(c) => format!("unexpected character '{c}'"),
        None => "unexpected end of input".to_string(),
    }
}

/// Drops the obfuscation prefix `h`/`H`, which does not change the value.
fn strip_obfuscation(slice: &str) -> &str {
    slice
        .strip_prefix('h')
        .or_else(|| slice.strip_prefix('H'))
        .unwrap_or(slice)
}

/// Removes the first and last `n` bytes (the delimiters); the delimiters are ASCII.
fn inner(slice: &str, open: usize, close: usize) -> &str {
    slice
        .get(open..slice.len().saturating_sub(close))
        .unwrap_or("")
}

fn cook_verbatim(slice: &str) -> String {
    let body = strip_obfuscation(slice);
    let quote = if body.ends_with('"') { "\"" } else { "'" };
    inner(body, 2, 1).replace(&quote.repeat(2), quote)
}

fn cook_multiline(slice: &str) -> String {
    inner(strip_obfuscation(slice), 3, 3).to_string()
}

/// Resolves the escapes of a `"..."` / `'...'` literal. Unknown escapes are errors (§1.3).
fn cook_escaped(slice: &str) -> Result<String, String> {
    let body = inner(strip_obfuscation(slice), 1, 1);
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let Some(escape) = chars.next() else {
            return Err("string literal ends with a lone '\\'".to_string());
        };
        let resolved = match escape {
            '\\' => '\\',
            '\'' => '\'',
            '"' => '"',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{C}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{B}',
            'x' => read_hex(&mut chars, 2)?,
            'u' => read_hex(&mut chars, 4)?,
            'U' => read_hex(&mut chars, 8)?,
            '0'..='7' => {
                let mut value = escape.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(digit) => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                char::from_u32(value).ok_or("invalid octal escape")?
            }
            other => {
                return Err(format!(
                    "invalid escape sequence '\\{other}' in string literal (use @\"...\" or '\\\\')"
                ));
            }
        };
        out.push(resolved);
    }
    Ok(out)
}

fn read_hex(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    digits: usize,
) -> Result<char, String> {
    let mut value = 0u32;
    for _ in 0..digits {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or_else(|| format!("expected {digits} hex digits in escape sequence"))?;
        value = value * 16 + digit;
    }
    char::from_u32(value).ok_or_else(|| "escape sequence is not a valid character".to_string())
}

/// Ticks (100 ns) per timespan unit name, for literals such as `30m` (§1.5).
pub(crate) fn unit_ticks(unit: &str) -> Option<f64> {
    const TICK: f64 = 1.0;
    const MICRO: f64 = 10.0;
    const MILLI: f64 = 10_000.0;
    const SECOND: f64 = 10_000_000.0;
    let ticks = match unit {
        "d" | "day" | "days" => SECOND * 86_400.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => SECOND * 3_600.0,
        "m" | "min" | "minute" | "minutes" => SECOND * 60.0,
        "s" | "sec" | "second" | "seconds" => SECOND,
        "ms" | "milli" | "millis" | "millisec" | "millisecond" | "milliseconds" => MILLI,
        "micro" | "microsec" | "microsecond" | "microseconds" => MICRO,
        "nano" | "nanosec" | "nanosecond" | "nanoseconds" => TICK / 100.0,
        "tick" | "ticks" => TICK,
        _ => return None,
    };
    Some(ticks)
}

/// `1.5h` -> ticks. `None` when the unit is unknown or the value overflows.
pub(crate) fn timespan_ticks(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (count, unit) = text.split_at(split);
    let count: f64 = count.parse().ok()?;
    let ticks = (count * unit_ticks(unit.trim())?).round();
    if ticks.is_finite() && ticks.abs() < i64::MAX as f64 {
        Some(ticks as i64)
    } else {
        None
    }
}

fn typed_literal(slice: &str, start: usize) -> TokenKind {
    let open = slice.find('(').unwrap_or(slice.len());
    let type_name = slice.get(..open).unwrap_or("").trim().to_string();
    let body = slice
        .get(open + 1..slice.len().saturating_sub(1))
        .unwrap_or("");
    let leading = body.len() - body.trim_start().len();
    TokenKind::Typed {
        type_name,
        raw: body.trim().to_string(),
        raw_start: start + open + 1 + leading,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .expect("lexes")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn word(text: &str) -> TokenKind {
        TokenKind::Word(text.to_string())
    }

    #[test]
    fn hyphenated_keywords_are_single_words() {
        assert_eq!(
            kinds("project-away mv-expand"),
            vec![word("project-away"), word("mv-expand")]
        );
        assert_eq!(kinds("a-b"), vec![word("a"), TokenKind::Minus, word("b")]);
    }

    #[test]
    fn string_forms() {
        assert_eq!(kinds(r#""a\tb""#), vec![TokenKind::String("a\tb".into())]);
        assert_eq!(
            kinds(r#"@"a""b\d""#),
            vec![TokenKind::String("a\"b\\d".into())]
        );
        assert_eq!(kinds("h'secret'"), vec![TokenKind::String("secret".into())]);
        assert_eq!(kinds("```x\ny```"), vec![TokenKind::String("x\ny".into())]);
        assert!(tokenize(r#""\d+""#).is_err());
    }

    #[test]
    fn numbers_and_timespans() {
        assert_eq!(
            kinds("42 0x2A 1.5 1e3"),
            vec![
                TokenKind::Long(42),
                TokenKind::Long(42),
                TokenKind::Real(1.5),
                TokenKind::Real(1000.0)
            ]
        );
        assert_eq!(
            kinds("1d 100ms 1.5s"),
            vec![
                TokenKind::Timespan(864_000_000_000),
                TokenKind::Timespan(1_000_000),
                TokenKind::Timespan(15_000_000)
            ]
        );
        assert_eq!(
            kinds("1..5"),
            vec![TokenKind::Long(1), TokenKind::DotDot, TokenKind::Long(5)]
        );
    }

    #[test]
    fn typed_literal_keeps_raw_text() {
        let tokens = kinds(r#"datetime(2024-05-01 13:45) dynamic(["a)", 1])"#);
        assert!(matches!(&tokens[0], TokenKind::Typed { type_name, raw, .. }
            if type_name == "datetime" && raw == "2024-05-01 13:45"));
        assert!(matches!(&tokens[1], TokenKind::Typed { raw, .. } if raw == r#"["a)", 1]"#));
    }
}
