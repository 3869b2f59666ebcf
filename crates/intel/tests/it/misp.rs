//! MISP events and feed directories.

use crate::{MD5, SHA1, SHA256, error_at, object, read, values};
use rampart_core::alert::Severity;
use rampart_core::indicator::IndicatorType::*;
use rampart_intel::{Defaults, FeedFileError, Format, parse, parse_misp_feed};
use serde_json::{Value, json};

const EVENT: &str = "5e1b0000-0000-4000-8000-000000000001";

fn attr(uuid: &str, ty: &str, value: &str, to_ids: Value) -> Value {
    json!({"uuid": uuid, "type": ty, "category": "Network activity", "value": value, "to_ids": to_ids, "comment": ""})
}

fn event(attrs: Vec<Value>, objects: Vec<Value>) -> Value {
    json!({"Event": {
        "uuid": EVENT,
        "info": "Phishing campaign",
        "threat_level_id": "1",
        "Attribute": attrs,
        "Object": objects,
    }})
}

#[test]
fn to_ids_filtering_and_every_type() {
    let (md5b, sha1b, sha256b) = ("b".repeat(32), "b".repeat(40), "b".repeat(64));
    let doc = event(
        vec![
            attr("a-md5", "md5", MD5, json!(true)),
            attr("a-sha1", "sha1", SHA1, json!("1")),
            attr("a-sha256", "sha256", SHA256, json!(1)),
            attr("a-ipsrc", "ip-src", "198.51.100.1", json!(true)),
            attr("a-ipdst", "ip-dst", "198.51.100.2", json!(true)),
            attr(
                "a-ipsrcport",
                "ip-src|port",
                "198.51.100.3|8080",
                json!(true),
            ),
            attr("a-ipdstport", "ip-dst|port", "2001:db8::3|443", json!(true)),
            attr("a-domain", "domain", "evil.example.com", json!(true)),
            attr("a-host", "hostname", "host.example.com", json!(true)),
            attr("a-url", "url", "https://evil.example.com/p", json!(true)),
            attr(
                "a-fmd5",
                "filename|md5",
                &format!("a.exe|{md5b}"),
                json!(true),
            ),
            attr(
                "a-fsha1",
                "filename|sha1",
                &format!("odd|name.exe|{sha1b}"),
                json!(true),
            ),
            attr(
                "a-fsha256",
                "filename|sha256",
                &format!("c.exe|{sha256b}"),
                json!(true),
            ),
            attr(
                "a-x509",
                "x509-fingerprint-sha1",
                &"c".repeat(40),
                json!(true),
            ),
            attr(
                "a-domip",
                "domain|ip",
                "both.example.com|198.51.100.9",
                json!(true),
            ),
            // Context only: skipped without a word.
            attr("a-ctx", "domain", "context.example.com", json!(false)),
            attr("a-ctx2", "domain", "context2.example.com", json!("0")),
            attr("a-ctx3", "domain", "context3.example.com", Value::Null),
            attr("a-ctx4", "comment", "not an indicator at all", json!(false)),
            {
                let mut a = attr("a-del", "domain", "deleted.example.com", json!(true));
                a["deleted"] = json!(true);
                a
            },
        ],
        vec![],
    );
    // Certificates need an action that applies to them.
    let defaults = Defaults {
        action: "BlockAndRemediate".parse().unwrap(),
        ..Defaults::default()
    };
    let p = parse(Format::Misp, doc.to_string().as_bytes(), &defaults).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(
        values(&p),
        vec![
            (FileMd5, MD5.to_owned()),
            (FileSha1, SHA1.to_owned()),
            (FileSha256, SHA256.to_owned()),
            (IpAddress, "198.51.100.1".to_owned()),
            (IpAddress, "198.51.100.2".to_owned()),
            (IpAddress, "198.51.100.3".to_owned()),
            (IpAddress, "2001:db8::3".to_owned()),
            (DomainName, "evil.example.com".to_owned()),
            (DomainName, "host.example.com".to_owned()),
            (Url, "https://evil.example.com/p".to_owned()),
            (FileMd5, md5b),
            (FileSha1, sha1b),
            (FileSha256, sha256b),
            (CertificateThumbprint, "c".repeat(40)),
            (DomainName, "both.example.com".to_owned()),
            (IpAddress, "198.51.100.9".to_owned()),
        ]
    );
    crate::assert_valid(&p);
    // The default "block" becomes the block each type allows.
    use rampart_core::indicator::{IndicatorAction, RequestedAction};
    let action = |i: usize| p.items[i].request.action;
    assert_eq!(
        action(0),
        Some(RequestedAction::Current(IndicatorAction::BlockAndRemediate))
    );
    assert_eq!(
        action(3),
        Some(RequestedAction::Current(IndicatorAction::Block))
    );
    assert_eq!(
        action(13),
        Some(RequestedAction::Current(IndicatorAction::BlockAndRemediate))
    );
    let by_origin = |o: &str| {
        &p.items
            .iter()
            .find(|i| i.origin == object(o))
            .unwrap_or_else(|| panic!("no item {o}"))
            .request
    };
    let r = by_origin("a-fsha1");
    assert_eq!(r.external_id.as_deref(), Some("a-fsha1"));
    assert_eq!(r.title.as_deref(), Some("Phishing campaign"));
    assert_eq!(r.severity, Some(Severity::High));
    let d = r.description.as_deref().unwrap();
    assert!(d.contains("Phishing campaign") && d.contains(EVENT), "{d}");
    assert!(d.contains("File name: odd|name.exe"), "{d}");
    assert_eq!(
        by_origin("a-domip (domain)").external_id.as_deref(),
        Some("a-domip")
    );
    assert_eq!(
        by_origin("a-domip (ip)").indicator_value.as_deref(),
        Some("198.51.100.9")
    );
}

#[test]
fn object_attributes_comments_and_errors() {
    let mut commented = attr("o-url", "url", "http://drop.example.net/x", json!(true));
    commented["comment"] = json!("payload download");
    let doc = json!({"response": [{"Event": {
        "uuid": EVENT,
        "info": "Dropper",
        "threat_level_id": 3,
        "Attribute": [
            attr("e-mutex", "mutex", "Global\\evil", json!(true)),
            attr("e-bad-ip", "ip-dst", "999.1.1.1", json!(true)),
            attr("e-noport", "ip-dst|port", "198.51.100.1", json!(true)),
            attr("e-flag", "domain", "x.example.com", json!("maybe")),
            {"type": "domain", "value": "nouuid.example.com", "to_ids": true},
            attr("e-dup", "domain", "DROP.example.net", json!(true)),
        ],
        "Object": [
            {"name": "url", "uuid": "obj-1", "Attribute": [
                commented,
                attr("o-domain", "domain", "drop.example.net", json!(true)),
                {"type": "md5", "value": MD5, "to_ids": "1"},
            ]},
            {"name": "file", "deleted": true, "Attribute": [
                attr("o-deleted", "md5", &"d".repeat(32), json!(true)),
            ]},
        ],
    }}]});
    let p = read(Format::Misp, &doc.to_string());
    assert_eq!(
        values(&p),
        vec![
            (DomainName, "nouuid.example.com".to_owned()),
            (DomainName, "DROP.example.net".to_owned()),
            (Url, "http://drop.example.net/x".to_owned()),
            (FileMd5, MD5.to_owned()),
        ]
    );
    let r = &p.items[2].request;
    assert_eq!(r.severity, Some(Severity::Low));
    let d = r.description.as_deref().unwrap();
    assert!(
        d.contains("of a url object") && d.contains("Comment: payload download"),
        "{d}"
    );
    // Attributes without a uuid are named by their place.
    assert_eq!(
        p.items[0].origin,
        object(&format!("event {EVENT} attribute 5"))
    );
    assert_eq!(
        p.items[3].origin,
        object(&format!("event {EVENT} object 1 attribute 3"))
    );
    assert_eq!(
        error_at(&p, &object("e-mutex")).reason,
        "unsupported MISP attribute type 'mutex'"
    );
    assert!(
        error_at(&p, &object("e-bad-ip"))
            .reason
            .starts_with("ip-dst value: '999.1.1.1' is not a valid IP address")
    );
    assert!(
        error_at(&p, &object("e-noport"))
            .reason
            .contains("not of the form ip|port")
    );
    assert!(
        error_at(&p, &object("e-flag"))
            .reason
            .contains("to_ids: 'maybe' is not a boolean")
    );
    assert_eq!(
        error_at(&p, &object("o-domain")).reason,
        "duplicate of object e-dup"
    );
    assert_eq!(p.errors.len(), 5, "{:#?}", p.errors);
}

#[test]
fn document_shapes() {
    let bare = json!({"uuid": EVENT, "info": "Bare", "Attribute": [attr("b", "domain", "bare.example.com", json!(true))]});
    let p = read(Format::Misp, &bare.to_string());
    assert_eq!(p.items.len(), 1);
    // Threat level absent: the default severity; 4 (undefined): Informational.
    assert_eq!(p.items[0].request.severity, Some(Severity::Medium));
    let mut four = bare.clone();
    four["threat_level_id"] = json!("4");
    let p = read(Format::Misp, &json!([{"Event": four}]).to_string());
    assert_eq!(p.items[0].request.severity, Some(Severity::Informational));

    let err = |s: &str| parse(Format::Misp, s.as_bytes(), &Defaults::default()).unwrap_err();
    assert!(matches!(
        err("{\"Event\": "),
        FeedFileError::Json { line: 1, .. }
    ));
    assert!(
        err(r#"{"type": "bundle"}"#)
            .to_string()
            .contains("not a MISP event")
    );
}

#[test]
fn feed_directory_with_a_missing_event() {
    let dir = std::env::temp_dir().join(format!("rampart-intel-misp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = "11111111-1111-4111-8111-111111111111";
    let missing = "22222222-2222-4222-8222-222222222222";
    let broken = "33333333-3333-4333-8333-333333333333";
    let manifest = json!({
        good: {"info": "Good", "timestamp": "1700000000"},
        missing: {"info": "Gone"},
        broken: {"info": "Broken"},
        "../../etc/passwd": {"info": "Sneaky"},
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let ev = json!({"Event": {"uuid": good, "info": "Good", "threat_level_id": "2",
        "Attribute": [attr("g1", "domain", "feed.example.com", json!(true))]}});
    std::fs::write(dir.join(format!("{good}.json")), ev.to_string()).unwrap();
    std::fs::write(dir.join(format!("{broken}.json")), "{\"Event\": [").unwrap();

    let p = parse_misp_feed(&dir, &Defaults::default()).unwrap();
    assert_eq!(
        values(&p),
        vec![(DomainName, "feed.example.com".to_owned())]
    );
    assert!(
        error_at(&p, &object(&format!("event {missing}")))
            .reason
            .starts_with(&format!("cannot read {missing}.json"))
    );
    assert!(
        error_at(&p, &object(&format!("event {broken}")))
            .reason
            .contains("not valid JSON at line 1")
    );
    assert!(
        error_at(&p, &object("event ../../etc/passwd"))
            .reason
            .contains("not an event uuid")
    );
    assert_eq!(p.errors.len(), 3);

    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let e = parse_misp_feed(&dir, &Defaults::default()).unwrap_err();
    assert!(matches!(e, FeedFileError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("manifest.json"));
    let _ = std::fs::remove_dir_all(&dir);
}
