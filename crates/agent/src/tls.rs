//! TLS to the server: the system's usual web roots, or — when the server's certificate is
//! self-signed — the one certificate whose SHA-256 was pinned at enrollment.
//!
//! A pinned certificate is the server's identity: it is accepted whatever name, issuer or
//! validity period it carries, because the administrator vouched for exactly these bytes.
//! Handshake signatures are still verified against its key, so a peer that merely replays
//! the certificate without holding its private key is refused.

use crate::error::{Error, Result};
use crate::hex;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A certificate fingerprint: the SHA-256 of its DER encoding.
pub type Fingerprint = [u8; 32];

/// Parses a fingerprint given as 64 hex digits (either case, `:` separators allowed).
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint> {
    hex::decode(text.trim())
        .and_then(|b| Fingerprint::try_from(b).ok())
        .ok_or_else(|| {
            Error::Config(
                "--server-fingerprint: the SHA-256 of the server's certificate, 64 hex digits"
                    .into(),
            )
        })
}

/// The SHA-256 fingerprint of a DER certificate.
pub fn fingerprint_of(der: &[u8]) -> Fingerprint {
    Sha256::digest(der).into()
}

/// Accepts exactly the server certificate whose fingerprint was pinned.
#[derive(Debug)]
struct PinnedCertificate {
    pin: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint_of(end_entity.as_ref());
        if presented == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has SHA-256 {}, not the pinned {}",
                hex::encode(&presented),
                hex::encode(&self.pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls configuration of a connection pinned to `pin`.
pub fn pinned_config(pin: Fingerprint) -> Result<rustls::ClientConfig> {
    // ring, the provider reqwest's `rustls-tls` feature builds with, so that only one
    // cryptography library is compiled into the agent.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertificate {
        pin,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}
