//! MDE's CSV import template.

use crate::{SHA256, error_at, line, read, values};
use rampart_core::alert::Severity;
use rampart_core::indicator::IndicatorType::*;
use rampart_core::indicator::{IndicatorAction, RequestedAction};
use rampart_intel::{Defaults, FeedFileError, Format, parse};

const HEADER: &str = "IndicatorType,IndicatorValue,ExpirationTime,Action,Severity,Title,Description,RecommendedActions,RbacGroups,Category,MitreTechniques,GenerateAlert";

#[test]
fn reads_the_template_with_quoted_fields() {
    let text = format!(
        "{HEADER}\n\
         FileSha256,{SHA256},2030-01-31T00:00:00Z,BlockAndRemediate,High,Bad file,\"Dropper, stage 1\",Reimage,\"Servers, Laptops\",Malware,T1059,TRUE\n\
         DomainName,evil.example.com,,Block,low,,\"He said \"\"hi\"\"\nover two lines\",,,,,false\n\
         IpAddress, 8.8.8.8 ,2030-02-01,Audit,,IP,d,,,,,\n"
    );
    let p = read(Format::Csv, &text);
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(
        values(&p),
        vec![
            (FileSha256, SHA256.to_owned()),
            (DomainName, "evil.example.com".to_owned()),
            (IpAddress, "8.8.8.8".to_owned()),
        ]
    );
    let first = &p.items[0].request;
    assert_eq!(p.items[0].origin, line(2));
    assert_eq!(
        first.action,
        Some(RequestedAction::Current(IndicatorAction::BlockAndRemediate))
    );
    assert_eq!(first.severity, Some(Severity::High));
    assert_eq!(first.title.as_deref(), Some("Bad file"));
    assert_eq!(first.description.as_deref(), Some("Dropper, stage 1"));
    assert_eq!(first.recommended_actions.as_deref(), Some("Reimage"));
    assert_eq!(
        first.rbac_group_names,
        Some(vec!["Servers".to_owned(), "Laptops".to_owned()])
    );
    assert_eq!(first.generate_alert, Some(true));
    assert_eq!(
        first.expiration_time,
        Some(time::macros::datetime!(2030-01-31 00:00 UTC))
    );
    let second = &p.items[1].request;
    assert_eq!(
        second.description.as_deref(),
        Some("He said \"hi\"\nover two lines")
    );
    assert_eq!(second.generate_alert, Some(false));
    assert_eq!(second.severity, Some(Severity::Low));
    assert_eq!(second.title.as_deref(), Some("DomainName from CSV feed"));
    // The quoted newline makes the third record start on line 5.
    assert_eq!(p.items[2].origin, line(5));
    let third = &p.items[2].request;
    assert_eq!(third.indicator_value.as_deref(), Some("8.8.8.8"));
    assert_eq!(third.severity, Some(Severity::Medium), "the default");
    assert_eq!(
        third.expiration_time,
        Some(time::macros::datetime!(2030-02-01 00:00 UTC))
    );
    crate::assert_valid(&p);
}

#[test]
fn camel_case_api_names_and_bom() {
    let text = "\u{feff}indicatorValue,indicatorType,action,rbacGroupNames,externalID,application,educateUrl,Expiration Time\n\
                https://evil.example.com/x,Url,Warn,Web,ext-1,App,https://help.example.com/,2030-03-04 05:06:07\n";
    let p = read(Format::Csv, text);
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    let r = &p.items[0].request;
    assert_eq!(r.indicator_type, Some(Url));
    assert_eq!(r.external_id.as_deref(), Some("ext-1"));
    assert_eq!(r.application.as_deref(), Some("App"));
    assert_eq!(r.educate_url.as_deref(), Some("https://help.example.com/"));
    assert_eq!(r.rbac_group_names, Some(vec!["Web".to_owned()]));
    // Spreadsheets drop the offset and the 'T': read as UTC.
    assert_eq!(
        r.expiration_time,
        Some(time::macros::datetime!(2030-03-04 05:06:07 UTC))
    );
}

#[test]
fn header_problems_fail_the_file() {
    let err = |text: &str| parse(Format::Csv, text.as_bytes(), &Defaults::default()).unwrap_err();
    let e = err("IndicatorType,IndicatorValue,Colour,Smell\nFileMd5,x,y,z\n");
    assert!(matches!(e, FeedFileError::Header { line: 1, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("unknown columns 'Colour', 'Smell'"), "{msg}");
    assert!(err("").to_string().contains("empty"));
    assert!(
        err("IndicatorValue,Title\n")
            .to_string()
            .contains("no IndicatorType column")
    );
    assert!(
        err("IndicatorType,IndicatorValue,indicatorvalue\n")
            .to_string()
            .contains("twice")
    );
}

#[test]
fn bad_rows_name_line_and_field() {
    let text = format!(
        "{HEADER}\n\
         FileSha256,{SHA256},,Block,,,,,,,,\n\
         FileSha256,abc,,Block,,,,,,,,\n\
         Sha512,{SHA256},,Block,,,,,,,,\n\
         DomainName,evil.example.com,next week,Explode,Critical,,,,,,,maybe\n\
         IpAddress,8.8.8.8,,Block,,,\"unterminated, quoted\",,,,\n\
         ,,,,,,,,,,,\n\
         CertificateThumbprint,{},,,,,,,,,,\n\
         DomainName,,,Block,,,,,,,,\n\
         FILESHA256,{},,Allowed,,,,,,,,\n\
         IpAddress,1.1.1.1,,Block,,,,,,,,\n",
        &SHA256[..40],
        SHA256.to_uppercase()
    );
    let p = read(Format::Csv, &text);
    assert_eq!(
        values(&p),
        vec![
            (FileSha256, SHA256.to_owned()),
            (IpAddress, "1.1.1.1".to_owned())
        ]
    );
    let reason = |n| error_at(&p, &line(n)).reason.clone();
    assert!(
        reason(3).starts_with("IndicatorValue: 'abc' is not a valid FileSha256"),
        "{}",
        reason(3)
    );
    assert!(
        reason(4).starts_with("IndicatorType: 'Sha512' is not one of"),
        "{}",
        reason(4)
    );
    let r5 = reason(5);
    for part in [
        "ExpirationTime: 'next week'",
        "Action: 'Explode'",
        "Severity: 'Critical'",
        "GenerateAlert: 'maybe'",
    ] {
        assert!(r5.contains(part), "{part} missing from {r5}");
    }
    assert!(
        reason(6).contains("has 11 fields, the header has 12"),
        "{}",
        reason(6)
    );
    // Line 7 is all empty: skipped without an error.
    assert!(p.errors.iter().all(|e| e.origin != line(7)));
    // The default action, Audit, does not apply to certificates: the API's own rule.
    assert!(
        reason(8).contains("does not apply to CertificateThumbprint"),
        "{}",
        reason(8)
    );
    assert_eq!(reason(9), "IndicatorValue is empty");
    assert_eq!(reason(10), "duplicate of line 2");
    assert_eq!(p.errors.len(), 7, "{:#?}", p.errors);
}
