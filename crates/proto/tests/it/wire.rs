//! Enrollment and telemetry types against the exact JSON of the server's routes.

use rampart_proto::enroll::{EnrollRequest, EnrollResponse};
use rampart_proto::error::ErrorBody;
use rampart_proto::telemetry::{BatchAck, TelemetryBatch};
use serde_json::json;

#[test]
fn enroll_request_uses_the_server_field_names() {
    let req = EnrollRequest {
        enrollment_token: "rpe_abc".into(),
        computer_dns_name: "host1".into(),
        os_platform: "Linux".into(),
        device_id: None,
    };
    let v = serde_json::to_value(&req).unwrap();
    assert_eq!(
        v,
        json!({"enrollmentToken": "rpe_abc", "computerDnsName": "host1", "osPlatform": "Linux"})
    );
    let with_id = EnrollRequest {
        device_id: Some("a".repeat(40)),
        ..req
    };
    let v = serde_json::to_value(&with_id).unwrap();
    assert_eq!(v["deviceId"], json!("a".repeat(40)));
    let back: EnrollRequest = serde_json::from_value(v).unwrap();
    assert_eq!(back, with_id);
}

#[test]
fn enroll_response_parses_and_hides_its_secret_in_debug() {
    let body = r#"{"deviceId":"1e5bc9d7e413ddd7902c2932e418702b84d0cc07","deviceSecret":"rpd_s3cr3t","tenantId":"t-1"}"#;
    let r: EnrollResponse = serde_json::from_str(body).unwrap();
    assert_eq!(r.device_id, "1e5bc9d7e413ddd7902c2932e418702b84d0cc07");
    assert_eq!(r.device_secret, "rpd_s3cr3t");
    assert_eq!(r.tenant_id, "t-1");
    assert!(!format!("{r:?}").contains("s3cr3t"));
    let again: EnrollResponse = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn error_body_parses_with_and_without_target() {
    let e: ErrorBody = serde_json::from_str(
        r#"{"error":{"code":"Unauthorized","message":"bad token","target":"c0ffee"}}"#,
    )
    .unwrap();
    assert_eq!(e.error.code, "Unauthorized");
    assert_eq!(
        e.error.to_string(),
        "Unauthorized: bad token (correlation id c0ffee)"
    );
    let e: ErrorBody =
        serde_json::from_str(r#"{"error":{"code":"InvalidInput","message":"m"}}"#).unwrap();
    assert_eq!(e.error.target, None);
}

#[test]
fn telemetry_batch_round_trips_in_the_server_shape() {
    let v = json!({
        "batchId": "b-1",
        "tables": {
            "DeviceProcessEvents": [
                {"Timestamp": "2026-01-02T03:04:05.123456789Z", "ActionType": "ProcessCreated", "ProcessId": 42}
            ],
            "DeviceInfo": [{"Timestamp": "2026-01-02T03:04:05Z", "OSPlatform": "Linux"}]
        }
    });
    let b: TelemetryBatch = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(b.batch_id, "b-1");
    assert_eq!(b.row_count(), 2);
    assert_eq!(b.tables["DeviceProcessEvents"][0]["ProcessId"], json!(42));
    assert_eq!(serde_json::to_value(&b).unwrap(), v);
}

#[test]
fn batch_ack_parses_the_server_answer_including_table_rejections() {
    // The server's answer as routes/ingest.rs writes it; a whole refused table has index null.
    let v = json!({
        "batchId": "b-1", "duplicate": false, "accepted": 3, "rejected": 2,
        "rejections": [
            {"table": "DeviceProcessEvents", "index": 1, "reason": "DeviceProcessEvents.ProcessId: expected long"},
            {"table": "NoSuchTable", "index": null, "reason": "unknown table NoSuchTable"}
        ]
    });
    let ack: BatchAck = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(ack.accepted, 3);
    assert_eq!(ack.rejections[0].index, Some(1));
    assert_eq!(ack.rejections[1].index, None);
    assert_eq!(serde_json::to_value(&ack).unwrap(), v);
}

#[test]
fn device_authorization_header() {
    assert_eq!(
        rampart_proto::device_authorization("ab", "rpd_x"),
        "Device ab:rpd_x"
    );
}
