//! STIX 2.1: the pattern subset, OR splitting, every unsupported construct, mapping of the
//! indicator's properties, and the document shapes.

use crate::{MD5, SHA1, SHA256, error_at, object, read, values};
use rampart_core::alert::Severity;
use rampart_core::indicator::IndicatorType::{self, *};
use rampart_intel::stix::pattern::{PatternError, targets};
use rampart_intel::{Defaults, FeedFileError, Format, Parsed, parse};
use serde_json::{Value, json};

fn indicator(id: &str, pattern: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1", "id": id,
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-02T00:00:00.000Z",
        "pattern": pattern, "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"
    })
}

fn bundle(objects: Vec<Value>) -> Parsed {
    let doc = json!({"type": "bundle", "id": "bundle--1", "objects": objects});
    read(Format::Stix, &doc.to_string())
}

/// The one (type, value) a single-comparison pattern yields.
fn single(pattern: &str) -> (IndicatorType, String) {
    // Block, which certificates take as BlockAndRemediate (Audit does not apply to them).
    let defaults = Defaults {
        action: "Block".parse().unwrap(),
        ..Defaults::default()
    };
    let doc = json!({"type": "bundle", "objects": [indicator("indicator--1", pattern)]});
    let p = parse(Format::Stix, doc.to_string().as_bytes(), &defaults).unwrap();
    assert!(p.errors.is_empty(), "{pattern}: {:#?}", p.errors);
    assert_eq!(p.items.len(), 1, "{pattern}");
    values(&p).remove(0)
}

#[test]
fn every_supported_path() {
    let cases: Vec<(String, IndicatorType, &str)> = vec![
        (
            format!("[file:hashes.'SHA-256' = '{SHA256}']"),
            FileSha256,
            SHA256,
        ),
        (
            format!("[file:hashes.SHA256 = '{SHA256}']"),
            FileSha256,
            SHA256,
        ),
        (
            format!("[file:hashes.'sha256' = '{SHA256}']"),
            FileSha256,
            SHA256,
        ),
        (format!("[file:hashes.'SHA-1' = '{SHA1}']"), FileSha1, SHA1),
        (format!("[file:hashes.SHA1 = '{SHA1}']"), FileSha1, SHA1),
        (format!("[file:hashes.MD5 = '{MD5}']"), FileMd5, MD5),
        (format!("[file:hashes.'MD5'='{MD5}']"), FileMd5, MD5),
        (
            "[ipv4-addr:value = '198.51.100.7']".into(),
            IpAddress,
            "198.51.100.7",
        ),
        (
            "[ipv4-addr:value = '198.51.100.0/24']".into(),
            IpAddress,
            "198.51.100.0/24",
        ),
        (
            "[ipv6-addr:value = '2001:db8::/32']".into(),
            IpAddress,
            "2001:db8::/32",
        ),
        (
            "[domain-name:value = 'evil.example.com']".into(),
            DomainName,
            "evil.example.com",
        ),
        (
            "[url:value = 'https://evil.example.com/a']".into(),
            Url,
            "https://evil.example.com/a",
        ),
        (
            format!("[x509-certificate:hashes.'SHA-1' = '{SHA1}']"),
            CertificateThumbprint,
            SHA1,
        ),
        // Redundant parentheses and the '==' spelling are still one comparison.
        (
            "([(domain-name:value == 'x.example.com')])".into(),
            DomainName,
            "x.example.com",
        ),
    ];
    for (pattern, ty, value) in cases {
        assert_eq!(single(&pattern), (ty, value.to_owned()), "{pattern}");
    }
}

#[test]
fn or_splits_into_one_indicator_per_comparison() {
    let pattern = format!(
        "[file:hashes.MD5 = '{MD5}' OR file:hashes.'SHA-256' = '{SHA256}'] OR [domain-name:value = 'evil.example.com'] or ([url:value = 'http://evil.example.com/x'])"
    );
    let p = bundle(vec![indicator("indicator--a", &pattern)]);
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(
        values(&p),
        vec![
            (FileMd5, MD5.to_owned()),
            (FileSha256, SHA256.to_owned()),
            (DomainName, "evil.example.com".to_owned()),
            (Url, "http://evil.example.com/x".to_owned()),
        ]
    );
    for (n, item) in p.items.iter().enumerate() {
        assert_eq!(
            item.origin,
            object(&format!("indicator--a (comparison {})", n + 1))
        );
        assert_eq!(item.request.external_id.as_deref(), Some("indicator--a"));
    }
    assert_eq!(
        p.items[1].origin.to_string(),
        "object indicator--a (comparison 2)"
    );
}

#[test]
fn unsupported_constructs_are_reported_with_the_object_id() {
    let cases = [
        (
            "[domain-name:value = 'a.example.com' AND url:value = 'http://a.example.com/']",
            "AND",
        ),
        (
            "[domain-name:value = 'a.example.com'] AND [url:value = 'http://a.example.com/']",
            "AND",
        ),
        ("[domain-name:value != 'a.example.com']", "operator !="),
        ("[domain-name:value LIKE '%.example.com']", "operator LIKE"),
        ("[domain-name:value MATCHES '^a']", "operator MATCHES"),
        (
            "[domain-name:value IN ('a.example.com', 'b.example.com')]",
            "operator IN",
        ),
        (
            "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
            "operator ISSUBSET",
        ),
        (
            "[ipv4-addr:value ISSUPERSET '198.51.100.0/24']",
            "operator ISSUPERSET",
        ),
        ("[domain-name:value NOT = 'a.example.com']", "NOT ="),
        ("[EXISTS domain-name:value]", "operator EXISTS"),
        ("[file:name = 'evil.exe']", "object path file:name"),
        ("[file:hashes.'SHA-512' = 'aa']", "file:hashes.'SHA-512'"),
        (
            "[x509-certificate:hashes.'SHA-256' = 'aa']",
            "x509-certificate:hashes.'SHA-256'",
        ),
        ("[email-addr:value = 'a@example.com']", "email-addr:value"),
        (
            "[network-traffic:dst_ref.value = '198.51.100.7']",
            "network-traffic:dst_ref.value",
        ),
        ("[file:hashes[0] = 'aa']", "file:hashes[0]"),
        (
            "[domain-name:value = 'a.example.com'] WITHIN 300 SECONDS",
            "WITHIN",
        ),
        (
            "[domain-name:value = 'a.example.com'] REPEATS 5 TIMES",
            "REPEATS",
        ),
        (
            "[domain-name:value = 'a.example.com'] START t'2024-01-01T00:00:00Z' STOP t'2024-02-01T00:00:00Z'",
            "START/STOP",
        ),
        (
            "[domain-name:value = 'a.example.com'] FOLLOWEDBY [url:value = 'http://b.example.com/']",
            "FOLLOWEDBY",
        ),
        ("[ipv4-addr:value = 42]", "a number"),
        ("[file:size > 10]", "file:size"),
    ];
    let objects: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (p, _))| indicator(&format!("indicator--{i}"), p))
        .collect();
    let p = bundle(objects);
    assert!(p.items.is_empty(), "{:#?}", p.items);
    assert_eq!(p.errors.len(), cases.len(), "{:#?}", p.errors);
    for (i, (pattern, why)) in cases.iter().enumerate() {
        let e = error_at(&p, &object(&format!("indicator--{i}")));
        assert!(
            e.reason.starts_with("unsupported STIX pattern: ") && e.reason.contains(why),
            "{pattern}: {}",
            e.reason
        );
    }
}

#[test]
fn an_unsupported_comparison_in_an_or_costs_only_itself() {
    let pattern = "[file:name = 'evil.exe' OR domain-name:value = 'evil.example.com']";
    let p = bundle(vec![indicator("indicator--m", pattern)]);
    assert_eq!(
        values(&p),
        vec![(DomainName, "evil.example.com".to_owned())]
    );
    assert_eq!(p.items[0].origin, object("indicator--m (comparison 2)"));
    let e = error_at(&p, &object("indicator--m (comparison 1)"));
    assert!(e.reason.contains("file:name"), "{}", e.reason);
}

#[test]
fn escapes_and_syntax_errors() {
    let t = targets(r"[url:value = 'http://evil.example.com/it\'s\\here']").unwrap();
    assert_eq!(
        t[0].as_ref().unwrap().value,
        r"http://evil.example.com/it's\here"
    );
    let syntax = |p: &str| match targets(p) {
        Err(PatternError::Syntax { position, message }) => (position, message),
        other => panic!("{p}: {other:?}"),
    };
    assert!(
        syntax(r"[url:value = 'a\nb']")
            .1
            .contains(r"'\n' is not an escape")
    );
    assert!(syntax("[url:value = 'open").1.contains("not closed"));
    assert_eq!(syntax("[domain-name:value = 'a.example.com'").0, 37);
    assert!(
        syntax("[domain-name:value 'a.example.com']")
            .1
            .contains("expected a comparison operator")
    );
    assert!(
        syntax("domain-name:value = 'a.example.com'")
            .1
            .contains("'['")
    );
    assert!(syntax("").1.contains("empty"));
    let deep = format!(
        "{}[domain-name:value = 'a.example.com']{}",
        "(".repeat(200),
        ")".repeat(200)
    );
    assert!(syntax(&deep).1.contains("nested"));

    let p = bundle(vec![indicator("indicator--s", "[domain-name:value = ")]);
    let e = error_at(&p, &object("indicator--s"));
    assert!(
        e.reason.starts_with("invalid STIX pattern at character 22"),
        "{}",
        e.reason
    );
}

#[test]
fn invalid_values_and_address_families() {
    let p = bundle(vec![
        indicator("indicator--v4", "[ipv4-addr:value = '2001:db8::1']"),
        indicator("indicator--h", "[file:hashes.MD5 = 'xyz']"),
        indicator("indicator--u", "[url:value = 'ftp://evil.example.com/']"),
    ]);
    assert!(p.items.is_empty());
    assert!(
        error_at(&p, &object("indicator--v4"))
            .reason
            .contains("is an IPv6 address")
    );
    let h = &error_at(&p, &object("indicator--h")).reason;
    assert!(
        h.starts_with("file:hashes.MD5: 'xyz' is not a valid FileMd5"),
        "{h}"
    );
    assert!(
        error_at(&p, &object("indicator--u"))
            .reason
            .contains("scheme 'ftp'")
    );
}

#[test]
fn maps_the_indicator_properties() {
    let mut full = indicator("indicator--f", "[domain-name:value = 'evil.example.com']");
    full["name"] = json!("Evil C2");
    full["description"] = json!("Command and control.");
    full["valid_until"] = json!("2031-05-06T07:08:09.123Z");
    full["confidence"] = json!(90);
    full["labels"] = json!(["c2", "apt"]);
    full["indicator_types"] = json!(["malicious-activity"]);
    let mut revoked = indicator("indicator--r", "[domain-name:value = 'old.example.com']");
    revoked["revoked"] = json!(true);
    revoked["valid_until"] = json!("2031-01-01T00:00:00Z");
    let mut bare = indicator("indicator--b", "[domain-name:value = 'bare.example.com']");
    bare["pattern_type"] = Value::Null;
    let confidence = |id: &str, c: u64| {
        let mut o = indicator(id, &format!("[domain-name:value = '{id}.example.com']"));
        o["confidence"] = json!(c);
        o
    };
    let p = bundle(vec![
        full,
        revoked,
        bare,
        confidence("c84", 84),
        confidence("c50", 50),
        confidence("c15", 15),
        confidence("c14", 14),
    ]);
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    let r = &p.items[0].request;
    assert_eq!(r.title.as_deref(), Some("Evil C2"));
    assert_eq!(
        r.description.as_deref(),
        Some("Command and control.\nLabels: malicious-activity, c2, apt")
    );
    assert_eq!(
        r.expiration_time,
        Some(time::macros::datetime!(2031-05-06 07:08:09.123 UTC))
    );
    assert_eq!(r.severity, Some(Severity::High));
    assert_eq!(r.external_id.as_deref(), Some("indicator--f"));
    // Revoked: expires when it was modified, whatever valid_until says.
    assert_eq!(
        p.items[1].request.expiration_time,
        Some(time::macros::datetime!(2024-01-02 00:00 UTC))
    );
    let b = &p.items[2].request;
    assert_eq!(b.title.as_deref(), Some("DomainName from STIX feed"));
    assert_eq!(
        b.description.as_deref(),
        Some("STIX indicator indicator--b.")
    );
    assert_eq!(b.severity, Some(Severity::Medium), "the default");
    let sev: Vec<_> = p.items[3..]
        .iter()
        .map(|i| i.request.severity.unwrap())
        .collect();
    assert_eq!(
        sev,
        vec![
            Severity::Medium,
            Severity::Medium,
            Severity::Low,
            Severity::Informational
        ]
    );
}

#[test]
fn bad_properties_and_other_pattern_languages() {
    let mut bad = indicator("indicator--p", "[domain-name:value = 'evil.example.com']");
    bad["confidence"] = json!(150);
    bad["valid_until"] = json!("tomorrow");
    let mut sigma = indicator("indicator--sigma", "title: x");
    sigma["pattern_type"] = json!("sigma");
    let mut no_pattern = indicator("indicator--n", "");
    no_pattern.as_object_mut().unwrap().remove("pattern");
    let p = bundle(vec![
        bad,
        sigma,
        no_pattern,
        json!({"type": "indicator", "pattern": "[domain-name:value = 'x.example.com']"}),
        json!({"type": "malware", "id": "malware--1", "name": "Evil"}),
        json!({"type": "relationship", "id": "relationship--1"}),
        json!("not an object"),
    ]);
    assert!(p.items.is_empty());
    let r = &error_at(&p, &object("indicator--p")).reason;
    assert!(
        r.contains("confidence: 150 is not an integer from 0 to 100"),
        "{r}"
    );
    assert!(
        r.contains("valid_until: \"tomorrow\" is not an RFC 3339 timestamp"),
        "{r}"
    );
    assert!(
        error_at(&p, &object("indicator--sigma"))
            .reason
            .contains("pattern_type 'sigma'")
    );
    assert!(
        error_at(&p, &object("indicator--n"))
            .reason
            .contains("no 'pattern'")
    );
    assert!(
        error_at(&p, &object("objects[3]"))
            .reason
            .contains("without an 'id'")
    );
    assert!(
        error_at(&p, &object("objects[6]"))
            .reason
            .contains("not a JSON object")
    );
    // Malware and relationships are not errors.
    assert_eq!(p.errors.len(), 5, "{:#?}", p.errors);
}

#[test]
fn document_shapes() {
    let one = indicator("indicator--1", "[domain-name:value = 'evil.example.com']");
    for doc in [
        json!([one.clone()]),
        one.clone(),
        json!({"more": false, "objects": [one.clone()]}),
    ] {
        let p = read(Format::Stix, &doc.to_string());
        assert_eq!(p.items.len(), 1, "{doc}");
    }
    // A bundle without indicators is fine.
    let p = bundle(vec![json!({"type": "identity", "id": "identity--1"})]);
    assert!(p.items.is_empty() && p.errors.is_empty());
    // Duplicates across objects.
    let p = bundle(vec![
        one.clone(),
        indicator("indicator--2", "[domain-name:value = 'EVIL.example.com']"),
    ]);
    assert_eq!(
        error_at(&p, &object("indicator--2")).reason,
        "duplicate of object indicator--1"
    );

    let err = |s: &str| parse(Format::Stix, s.as_bytes(), &Defaults::default()).unwrap_err();
    match err("{\n  \"type\": \"bundle\",\n  \"objects\": [,]\n}") {
        FeedFileError::Json { line, column, .. } => assert_eq!((line, column), (3, 15)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(err(r#"{"hello": 1}"#), FeedFileError::Shape(_)));
    assert!(matches!(err(r#"{"objects": 1}"#), FeedFileError::Shape(_)));
    assert!(matches!(err("42"), FeedFileError::Shape(_)));
}
