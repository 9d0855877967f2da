//! Certificate checks of QUIC connections: a configured CA, or a pinned
//! SHA-256 fingerprint. Nothing else is ever accepted; when a certificate
//! is refused, the reason is kept for [`crate::ClientError::UntrustedCertificate`].

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::Trust;
use crate::error::ClientError;

/// The ALPN protocol id the server speaks.
pub(crate) const ALPN: &[u8] = b"tessera/1";

/// Where a [`Verifier`] writes why it refused a certificate.
pub(crate) type Refusal = Arc<Mutex<Option<String>>>;

/// Checks the server's certificate as configured, remembering why it
/// refused one.
#[derive(Debug)]
pub(crate) struct Verifier {
    check: Check,
    provider: Arc<CryptoProvider>,
    refusal: Refusal,
}

#[derive(Debug)]
enum Check {
    Ca(Arc<WebPkiServerVerifier>),
    Pinned([u8; 32]),
}

impl Verifier {
    /// A verifier for `trust`, and the slot where it writes why it refused.
    pub(crate) fn new(trust: &Trust, url: &str) -> Result<(Arc<Self>, Refusal), ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = match trust {
            Trust::Unset => return Err(ClientError::NoTrust { url: url.into() }),
            Trust::Pinned(text) => Check::Pinned(parse_fingerprint(text)?),
            Trust::PinnedPem(pem) => Check::Pinned(pem_fingerprint(pem)?),
            Trust::CaPem(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| ClientError::InvalidCa(e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| ClientError::InvalidCa(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(ClientError::InvalidCa("no certificate in the PEM".into()));
                }
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| ClientError::InvalidCa(e.to_string()))?;
                Check::Ca(verifier)
            }
        };
        let refusal = Arc::new(Mutex::new(None));
        let verifier = Self {
            check,
            provider,
            refusal: Arc::clone(&refusal),
        };
        Ok((Arc::new(verifier), refusal))
    }

    fn refuse(&self, reason: String) {
        *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    pub(crate) fn provider(&self) -> Arc<CryptoProvider> {
        Arc::clone(&self.provider)
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.check {
            Check::Ca(ca) => ca
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .inspect_err(|e| self.refuse(format!("no configured CA vouches for it ({e})"))),
            Check::Pinned(pin) => {
                let seen = sha256(end_entity);
                if seen == *pin {
                    return Ok(ServerCertVerified::assertion());
                }
                self.refuse(format!(
                    "its SHA-256 fingerprint is {}, not the pinned {}",
                    hex(&seen),
                    hex(pin)
                ));
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// Reads `AB:CD:…` (or plain hex, any case, with or without `sha256:`).
/// The SHA-256 digest of the first certificate in `pem`.
fn pem_fingerprint(pem: &[u8]) -> Result<[u8; 32], ClientError> {
    let invalid = |why: String| ClientError::InvalidCertificatePem(why);
    let cert = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| invalid("no certificate in the PEM".into()))?
        .map_err(|e| invalid(e.to_string()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .try_into()
        .map_err(|_| invalid("SHA-256 digest of unexpected length".into()))
}

fn parse_fingerprint(text: &str) -> Result<[u8; 32], ClientError> {
    let invalid = || ClientError::InvalidFingerprint(text.into());
    let trimmed = text.trim();
    let trimmed = trimmed
        .strip_prefix("sha256:")
        .or_else(|| trimmed.strip_prefix("SHA256:"))
        .unwrap_or(trimmed);
    let digits: Vec<u8> = trimmed.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return Err(invalid());
    }
    let mut out = [0; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_forms_people_paste() {
        let hexed = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        for text in [hexed.clone(), colons.clone(), format!("sha256:{hexed}")] {
            assert_eq!(parse_fingerprint(&text).expect("parses"), [0xab; 32]);
        }
        assert_eq!(hex(&[0xab; 32]), colons);
        for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(matches!(
                parse_fingerprint(bad),
                Err(ClientError::InvalidFingerprint(_))
            ));
        }
    }

    #[test]
    fn no_trust_and_empty_cas_are_refused_up_front() {
        assert!(matches!(
            Verifier::new(&Trust::Unset, "quic://x"),
            Err(ClientError::NoTrust { .. })
        ));
        assert!(matches!(
            Verifier::new(&Trust::CaPem(b"nothing".to_vec()), "quic://x"),
            Err(ClientError::InvalidCa(_))
        ));
        assert!(matches!(
            Verifier::new(&Trust::PinnedPem(b"nothing".to_vec()), "quic://x"),
            Err(ClientError::InvalidCertificatePem(_))
        ));
    }
}
