//! Plain lists: type detection, defanging, comments, errors and duplicates by line.

use crate::{MD5, SHA1, SHA256, error_at, line, read, values};
use rampart_core::indicator::IndicatorType::*;
use rampart_intel::{Defaults, Format, Origin, parse};

#[test]
fn detects_each_type() {
    let text = format!(
        "# a feed\n\n{SHA256}\n{SHA1}\n{MD5}\n8.8.8.8\n203.0.113.0/24\n2001:db8::1\n\
         https://evil.example.com/x?q=1#frag\nevil.example.org\nbad.example.net/path\n"
    );
    let p = read(Format::Txt, &text);
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(
        values(&p),
        vec![
            (FileSha256, SHA256.to_owned()),
            (FileSha1, SHA1.to_owned()),
            (FileMd5, MD5.to_owned()),
            (IpAddress, "8.8.8.8".to_owned()),
            (IpAddress, "203.0.113.0/24".to_owned()),
            (IpAddress, "2001:db8::1".to_owned()),
            (Url, "https://evil.example.com/x?q=1#frag".to_owned()),
            (DomainName, "evil.example.org".to_owned()),
            (Url, "bad.example.net/path".to_owned()),
        ]
    );
    let origins: Vec<_> = p.items.iter().map(|i| i.origin.clone()).collect();
    assert_eq!(origins.first(), Some(&line(3)));
    assert_eq!(origins.last(), Some(&line(11)));
    crate::assert_valid(&p);
    // Defaults fill the rest, and the title says what and where from.
    let r = &p.items[0].request;
    assert_eq!(r.title.as_deref(), Some("FileSha256 from plain-list feed"));
    assert_eq!(
        r.description.as_deref(),
        Some("Imported from a plain-list feed (line 3).")
    );
    assert_eq!(r.generate_alert, Some(true));
    assert_eq!(r.severity, Some(rampart_core::alert::Severity::Medium));
}

#[test]
fn refangs_defanged_values() {
    let p = read(
        Format::Txt,
        "hxxp://evil[.]example[.]com/a\nhXXps[://]bad(.)example.org\nevil{.}example[dot]net\n1.2.3[.]4\n[2001:db8[:]:1]\n",
    );
    let got = values(&p);
    assert_eq!(got[0], (Url, "http://evil.example.com/a".to_owned()));
    assert_eq!(got[1], (Url, "https://bad.example.org".to_owned()));
    assert_eq!(got[2], (DomainName, "evil.example.net".to_owned()));
    assert_eq!(got[3], (IpAddress, "1.2.3.4".to_owned()));
    // "[2001:db8[:]:1]" is not an address even once re-fanged: an error, not a guess.
    assert_eq!(got.len(), 4);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].origin, line(5));
}

#[test]
fn comments_and_inline_comments() {
    let p = read(
        Format::Txt,
        "  # indented comment\r\nevil.example.com   # C2 server\r\n\r\nhttps://x.example.com/#anchor\n",
    );
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.items.len(), 2);
    assert_eq!(p.items[0].origin, line(2));
    assert_eq!(
        p.items[0].request.indicator_value.as_deref(),
        Some("evil.example.com")
    );
    assert_eq!(p.items[0].request.description.as_deref(), Some("C2 server"));
    // A fragment is part of a URL, not a comment.
    assert_eq!(
        p.items[1].request.indicator_value.as_deref(),
        Some("https://x.example.com/#anchor")
    );
}

#[test]
fn bad_lines_are_reported_and_the_rest_kept() {
    let text = "good.example.com\nnot a value\n256.1.1.1\n10.0.0.1\nabcdef0123456789abcdef\nftp://x.example.com/\nlocalhost\n1.2.3.4-1.2.3.9\n8.8.4.4\n";
    let p = read(Format::Txt, text);
    assert_eq!(
        values(&p),
        vec![
            (DomainName, "good.example.com".to_owned()),
            (IpAddress, "8.8.4.4".to_owned())
        ]
    );
    let reason = |n| error_at(&p, &line(n)).reason.clone();
    assert!(
        reason(2).starts_with("not a hash, IP address, URL or domain name"),
        "{}",
        reason(2)
    );
    assert!(
        reason(3).contains("not a valid IP address"),
        "{}",
        reason(3)
    );
    assert!(reason(4).contains("internal address"), "{}", reason(4));
    assert!(
        reason(5).contains("looks like a hash but has 22"),
        "{}",
        reason(5)
    );
    assert!(reason(6).contains("scheme 'ftp'"), "{}", reason(6));
    assert!(reason(7).contains("two labels"), "{}", reason(7));
    assert!(
        reason(8).contains("ranges are not supported"),
        "{}",
        reason(8)
    );
    assert_eq!(p.errors.len(), 7);
    assert_eq!(
        p.errors[0].to_string(),
        format!("line 2: {}", reason(2)),
        "Display is 'line N: reason'"
    );
}

#[test]
fn internal_addresses_with_allow_internal() {
    let defaults = Defaults {
        allow_internal: true,
        ..Defaults::default()
    };
    let p = parse(Format::Txt, b"10.0.0.1\n", &defaults).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.items[0].request.allow_internal, Some(true));
}

#[test]
fn duplicates_on_the_normalised_value() {
    let text = format!(
        "Evil.Example.COM\nevil.example.com.\n{}\n{SHA256}\n2001:0db8::0001\n2001:db8::1\nhxxp://evil[.]example[.]com\n",
        SHA256.to_uppercase()
    );
    let p = read(Format::Txt, &text);
    assert_eq!(p.items.len(), 4, "{:#?}", p.items);
    // The first spelling is kept as the feed had it; validation normalises later.
    assert_eq!(
        p.items[0].request.indicator_value.as_deref(),
        Some("Evil.Example.COM")
    );
    assert_eq!(error_at(&p, &line(2)).reason, "duplicate of line 1");
    assert_eq!(error_at(&p, &line(4)).reason, "duplicate of line 3");
    assert_eq!(error_at(&p, &line(6)).reason, "duplicate of line 5");
    // A domain and a URL on it are different indicators.
    assert_eq!(p.items[3].origin, line(7));
}

#[test]
fn defaults_apply_and_non_utf8_lines_are_errors() {
    let defaults = Defaults {
        title: Some("Partner feed".into()),
        action: "Block".parse().unwrap(),
        generate_alert: false,
        ..Defaults::default()
    };
    let p = parse(
        Format::Txt,
        b"evil.example.com\n\xff\xfe\n8.8.8.8\n",
        &defaults,
    )
    .unwrap();
    assert_eq!(p.items.len(), 2);
    assert_eq!(p.items[0].request.title.as_deref(), Some("Partner feed"));
    assert_eq!(p.items[0].request.generate_alert, Some(false));
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].origin, Origin::Line(2));
    assert!(p.errors[0].reason.contains("UTF-8"));
}

#[test]
fn guesses_formats() {
    use std::path::Path;
    let g = |p: &str, b: &str| Format::guess(Path::new(p), b.as_bytes());
    assert_eq!(g("feed.csv", "x"), Some(Format::Csv));
    assert_eq!(g("feed.TXT", "{}"), Some(Format::Txt));
    assert_eq!(
        g("feed.json", r#"{"type":"bundle","objects":[]}"#),
        Some(Format::Stix)
    );
    assert_eq!(
        g("feed.json", r#"{"Event":{"info":"x"}}"#),
        Some(Format::Misp)
    );
    assert_eq!(
        g("feed", "IndicatorType,IndicatorValue\n"),
        Some(Format::Csv)
    );
    assert_eq!(g("feed", "evil.example.com\n"), Some(Format::Txt));
    assert_eq!(g("feed.json", r#"{"hello":1}"#), None);
    assert_eq!("STIX".parse::<Format>(), Ok(Format::Stix));
    assert!(
        "xml"
            .parse::<Format>()
            .unwrap_err()
            .contains("csv, txt, stix, misp")
    );
}
