//! Enrollment over HTTP and over TLS pinned to a self-signed certificate: the right
//! fingerprint connects, a wrong one is refused before anything is sent.

use crate::server::{Reply, Responder, TinyServer};
use rampart_agent::Error;
use rampart_agent::client::ServerClient;
use rampart_agent::tls::{fingerprint_of, parse_fingerprint};
use rampart_proto::enroll::EnrollRequest;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use std::sync::Arc;

fn enroll_responder() -> Responder {
    Arc::new(|_, req| {
        let body = req.json();
        if body["enrollmentToken"] == "rpe_good" {
            Reply::json(
                201,
                json!({"deviceId": "ab".repeat(20), "deviceSecret": "rpd_s", "tenantId": "t1"}),
            )
        } else {
            Reply::json(
                401,
                json!({"error": {"code": "Unauthorized", "message": "The enrollment token is not valid", "target": "corr-1"}}),
            )
        }
    })
}

fn request(token: &str) -> EnrollRequest {
    EnrollRequest {
        enrollment_token: token.into(),
        computer_dns_name: "host1".into(),
        os_platform: "Linux".into(),
        device_id: None,
    }
}

#[tokio::test]
async fn enroll_sends_the_server_shape_and_maps_refusals() {
    let server = TinyServer::start(enroll_responder()).await;
    let client = ServerClient::new(&format!("{}/", server.url()), None).unwrap();
    let r = client.enroll(&request("rpe_good")).await.unwrap();
    assert_eq!(
        (r.device_id.as_str(), r.tenant_id.as_str()),
        (&*"ab".repeat(20), "t1")
    );
    let req = &server.requests()[0];
    assert_eq!(req.path, "/agent/v1/enroll");
    assert_eq!(
        req.json(),
        json!({"enrollmentToken": "rpe_good", "computerDnsName": "host1", "osPlatform": "Linux"})
    );

    match client.enroll(&request("rpe_bad")).await {
        Err(Error::Refused {
            status: 401,
            message,
        }) => assert!(message.contains("corr-1"), "{message}"),
        other => panic!("{other:?}"),
    }
}

async fn tls_server() -> (TinyServer, [u8; 32]) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["rampart.test".into()]).unwrap();
    let fingerprint = fingerprint_of(cert.der());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    (
        TinyServer::serve(listener, enroll_responder(), Some(acceptor)),
        fingerprint,
    )
}

#[tokio::test]
async fn pinned_tls_accepts_only_the_pinned_certificate() {
    let (server, fingerprint) = tls_server().await;
    let url = format!("https://{}", server.addr);

    // The self-signed certificate for another name is accepted because it is the pinned one.
    let text = rampart_agent::hex::encode(&fingerprint).to_uppercase();
    let pinned = ServerClient::new(&url, Some(parse_fingerprint(&text).unwrap())).unwrap();
    let r = pinned.enroll(&request("rpe_good")).await.unwrap();
    assert_eq!(r.tenant_id, "t1");
    assert_eq!(server.requests().len(), 1);

    // Any other pin: refused during the handshake, the token never sent.
    let mut wrong = fingerprint;
    wrong[0] ^= 1;
    let client = ServerClient::new(&url, Some(wrong)).unwrap();
    match client.enroll(&request("rpe_good")).await {
        Err(Error::Network(m)) => assert!(m.contains("not the pinned"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Without a pin the system roots do not know a self-signed certificate.
    let unpinned = ServerClient::new(&url, None).unwrap();
    assert!(matches!(
        unpinned.enroll(&request("rpe_good")).await,
        Err(Error::Network(_))
    ));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn fingerprints_parse_with_colons_and_refuse_garbage() {
    let hex = "AB:".repeat(31) + "AB";
    assert_eq!(parse_fingerprint(&hex).unwrap(), [0xab; 32]);
    assert!(parse_fingerprint("abcd").is_err());
    assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    assert!(ServerClient::new("http://h", Some([0; 32])).is_err());
    assert!(ServerClient::new("ftp://h", None).is_err());
}
