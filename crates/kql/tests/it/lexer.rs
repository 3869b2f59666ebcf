use rampart_kql::lexer::{TokenKind, tokenize};

fn kinds(text: &str) -> Vec<TokenKind> {
    tokenize(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .into_iter()
        .map(|t| t.kind)
        .collect()
}

fn word(text: &str) -> TokenKind {
    TokenKind::Word(text.to_string())
}

#[test]
fn every_symbol_is_a_token() {
    use TokenKind::*;
    assert_eq!(
        kinds("== != <> =~ !~ < <= > >= + - * / % | , ; ( ) [ ] { } . .. = :"),
        vec![
            EqEq, NotEq, LtGt, EqTilde, BangTilde, Lt, Le, Gt, Ge, Plus, Minus, Star, Slash,
            Percent, Pipe, Comma, Semicolon, LParen, RParen, LBracket, RBracket, LBrace, RBrace,
            Dot, DotDot, Eq, Colon
        ]
    );
}

#[test]
fn hyphenated_keywords() {
    for keyword in [
        "mv-expand",
        "mv-apply",
        "project-away",
        "project-keep",
        "project-rename",
        "project-reorder",
        "parse-where",
        "top-nested",
        "make-series",
    ] {
        assert_eq!(kinds(keyword), vec![word(keyword)], "{keyword}");
    }
}

#[test]
fn dollar_names_and_negated_words() {
    assert_eq!(
        kinds("$left.a !has !in~ in~ !between"),
        vec![
            word("$left"),
            TokenKind::Dot,
            word("a"),
            word("!has"),
            word("!in~"),
            word("in~"),
            word("!between")
        ]
    );
}

#[test]
fn spans_are_byte_ranges() {
    let tokens = tokenize("ab  'é'").expect("lexes");
    assert_eq!((tokens[0].span.start, tokens[0].span.end), (0, 2));
    assert_eq!((tokens[1].span.start, tokens[1].span.end), (4, 8));
}

#[test]
fn string_literal_forms() {
    let s = |v: &str| TokenKind::String(v.to_string());
    assert_eq!(kinds(r#""a\"b""#), vec![s("a\"b")]);
    assert_eq!(kinds(r#"'it\'s'"#), vec![s("it's")]);
    assert_eq!(kinds(r#"'say "hi"'"#), vec![s("say \"hi\"")]);
    assert_eq!(kinds(r#""\u0041\x42\101\n""#), vec![s("ABA\n")]);
    assert_eq!(kinds(r#"@'C:\temp''s'"#), vec![s(r"C:\temp's")]);
    assert_eq!(kinds(r#"H@"\d+""#), vec![s(r"\d+")]);
    assert_eq!(kinds("~~~multi\nline~~~"), vec![s("multi\nline")]);
    assert_eq!(kinds("h```x```"), vec![s("x")]);
}

#[test]
fn invalid_escape_and_unterminated_strings_fail() {
    assert!(tokenize(r#""\d+""#).is_err());
    assert!(tokenize("'abc").is_err());
    assert!(tokenize("```abc").is_err());
    assert!(tokenize("\"a\nb\"").is_err());
}

#[test]
fn comments_and_unicode_whitespace_are_skipped() {
    assert_eq!(
        kinds("a // comment | where\n\u{A0}b\u{3000}c"),
        vec![word("a"), word("b"), word("c")]
    );
}

#[test]
fn numeric_literals() {
    assert_eq!(
        kinds("42 0x1F 1.5 2.5E-3 1e6"),
        vec![
            TokenKind::Long(42),
            TokenKind::Long(31),
            TokenKind::Real(1.5),
            TokenKind::Real(0.0025),
            TokenKind::Real(1e6)
        ]
    );
    assert!(tokenize("99999999999999999999").is_err());
}

#[test]
fn timespan_literals() {
    let second = 10_000_000;
    assert_eq!(
        kinds("1d 30m 2h 100ms 1.5s 10microseconds 3ticks 1min"),
        vec![
            TokenKind::Timespan(86_400 * second),
            TokenKind::Timespan(1_800 * second),
            TokenKind::Timespan(7_200 * second),
            TokenKind::Timespan(second / 10),
            TokenKind::Timespan(15 * second / 10),
            TokenKind::Timespan(100),
            TokenKind::Timespan(3),
            TokenKind::Timespan(60 * second)
        ]
    );
}

#[test]
fn booleans_in_all_cases() {
    assert_eq!(
        kinds("true False TRUE"),
        vec![
            TokenKind::Bool(true),
            TokenKind::Bool(false),
            TokenKind::Bool(true)
        ]
    );
}

#[test]
fn typed_literals_keep_raw_text() {
    for (text, ty, raw) in [
        (
            "datetime(2024-05-01T13:45:10.1234567Z)",
            "datetime",
            "2024-05-01T13:45:10.1234567Z",
        ),
        ("timespan(1d)", "timespan", "1d"),
        (
            "guid(74be27de-1e4e-49d9-b579-fe0b331d3642)",
            "guid",
            "74be27de-1e4e-49d9-b579-fe0b331d3642",
        ),
        ("int(null)", "int", "null"),
        ("typeof(long)", "typeof", "long"),
        (
            r#"dynamic({"a": [1, "x)"]})"#,
            "dynamic",
            r#"{"a": [1, "x)"]}"#,
        ),
    ] {
        match kinds(text).as_slice() {
            [
                TokenKind::Typed {
                    type_name, raw: r, ..
                },
            ] => {
                assert_eq!((type_name.as_str(), r.as_str()), (ty, raw), "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}
