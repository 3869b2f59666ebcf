//! Enrollment: an enrollment token traded for this device's credential, which is then stored
//! (see [`crate::credentials`]). The binary's `enroll` command and the end-to-end tests share it.

use crate::client::ServerClient;
use crate::credentials::Credentials;
use crate::error::Result;
use crate::{hex, tls};
use rampart_proto::enroll::EnrollRequest;
use std::path::Path;

/// Enrolls with `server` using `token`, as `computer_dns_name`, pinning the server's
/// certificate to `fingerprint` when given (before the token is sent), and stores the
/// credential in `state_dir`.
pub async fn enroll(
    state_dir: &Path,
    server: &str,
    token: &str,
    fingerprint: Option<&str>,
    computer_dns_name: String,
) -> Result<Credentials> {
    let pin = fingerprint.map(tls::parse_fingerprint).transpose()?;
    let client = ServerClient::new(server, pin)?;
    let response = client
        .enroll(&EnrollRequest {
            enrollment_token: token.trim().to_owned(),
            computer_dns_name,
            os_platform: "Linux".into(),
            device_id: None,
        })
        .await?;
    let creds = Credentials {
        server: client.base_url().to_owned(),
        device_id: response.device_id,
        device_secret: response.device_secret,
        tenant_id: response.tenant_id,
        fingerprint: pin.map(|p| hex::encode(&p)),
    };
    creds.save(state_dir)?;
    Ok(creds)
}
