//! The QUIC listener's certificate: the one configured (`tls_cert` and
//! `tls_key`, PEM), or a self-signed development certificate generated once
//! and kept under the data dir. Either way its SHA-256 fingerprint is what
//! clients pin when no CA vouches for it.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::files::{Readers, write_atomically};

/// File names of the generated development certificate, in the data dir.
pub const DEV_CERT_FILE: &str = "quic-dev-cert.pem";
pub const DEV_KEY_FILE: &str = "quic-dev-key.pem";

/// Names the development certificate is valid for.
const DEV_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate chain with its private key.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub origin: Origin,
}

/// Where an [`Identity`] came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Configured,
    /// The development certificate, read from this file.
    DevReused(PathBuf),
    /// The development certificate, generated into this file just now.
    DevGenerated(PathBuf),
}

/// Why no certificate could be had.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_cert and tls_key go together: give both or neither")]
    HalfConfigured,
    #[error("cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate the development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate or key is not usable: {0}")]
    Rustls(#[from] rustls::Error),
}

impl Identity {
    /// The SHA-256 fingerprint of the leaf certificate.
    pub fn fingerprint(&self) -> String {
        self.chain
            .first()
            .map(|c| fingerprint(c.as_ref()))
            .unwrap_or_default()
    }
}

/// The SHA-256 digest of a DER certificate as colon-separated uppercase
/// hex pairs (the form `openssl x509 -fingerprint -sha256` prints).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The configured certificate and key, or the development certificate of
/// `data_dir` (generated on first use).
pub fn load_identity(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> Result<Identity, TlsError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Identity {
            chain: read_chain(cert)?,
            key: read_key(key)?,
            origin: Origin::Configured,
        }),
        (None, None) => dev_identity(data_dir),
        _ => Err(TlsError::HalfConfigured),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |e: rustls::pki_types::pem::Error| TlsError::Read {
        what: "certificate",
        path: path.to_owned(),
        message: e.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Read {
        what: "private key",
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn dev_identity(data_dir: &Path) -> Result<Identity, TlsError> {
    let cert_path = data_dir.join(DEV_CERT_FILE);
    let key_path = data_dir.join(DEV_KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        match (read_chain(&cert_path), read_key(&key_path)) {
            (Ok(chain), Ok(key)) => {
                return Ok(Identity {
                    chain,
                    key,
                    origin: Origin::DevReused(cert_path),
                });
            }
            // A development certificate is ours to replace: generate a new
            // one (clients must pin its new fingerprint).
            (chain, key) => {
                let problem = chain.err().or(key.err()).map(|e| e.to_string());
                tracing::warn!(
                    file = %cert_path.display(),
                    problem = problem.unwrap_or_default(),
                    "the development certificate or its key is unreadable; generating a new one (clients must pin its new fingerprint)"
                );
            }
        }
    }
    let names = DEV_NAMES
        .iter()
        .map(|n| (*n).to_owned())
        .collect::<Vec<_>>();
    let generated = rcgen::generate_simple_self_signed(names)?;
    let write = |path: &Path, bytes: &[u8], readers| {
        write_atomically(path, bytes, readers).map_err(|source| TlsError::Write {
            path: path.to_owned(),
            source,
        })
    };
    write(
        &key_path,
        generated.signing_key.serialize_pem().as_bytes(),
        Readers::Owner,
    )?;
    write(&cert_path, generated.cert.pem().as_bytes(), Readers::Anyone)?;
    Ok(Identity {
        chain: vec![generated.cert.der().clone()],
        key: PrivateKeyDer::try_from(generated.signing_key.serialize_der()).map_err(|e| {
            TlsError::Read {
                what: "generated key",
                path: key_path,
                message: e.to_owned(),
            }
        })?,
        origin: Origin::DevGenerated(cert_path),
    })
}

/// A rustls server configuration for `identity` speaking `alpn`, with the
/// ring provider (the only one built in).
pub fn rustls_server_config(
    identity: Identity,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tessera-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn the_dev_certificate_is_generated_once_and_reused() {
        let dir = temp_dir("dev");
        let first = load_identity(None, None, &dir).expect("generated");
        assert!(matches!(first.origin, Origin::DevGenerated(_)));
        let again = load_identity(None, None, &dir).expect("reused");
        assert!(matches!(again.origin, Origin::DevReused(_)));
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(DEV_KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is the owner's alone");
        }
        // The same files, configured explicitly.
        let configured = load_identity(
            Some(&dir.join(DEV_CERT_FILE)),
            Some(&dir.join(DEV_KEY_FILE)),
            Path::new("/nonexistent"),
        )
        .expect("configured");
        assert_eq!(configured.origin, Origin::Configured);
        assert_eq!(configured.fingerprint(), first.fingerprint());
        rustls_server_config(configured, b"tessera/1").expect("usable");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn half_a_configuration_and_missing_files_are_errors() {
        let dir = temp_dir("bad");
        let cert = dir.join("cert.pem");
        assert!(matches!(
            load_identity(Some(&cert), None, &dir),
            Err(TlsError::HalfConfigured)
        ));
        let err = load_identity(Some(&cert), Some(&dir.join("key.pem")), &dir)
            .expect_err("no such files");
        assert!(err.to_string().contains("cert.pem"), "{err}");
        std::fs::write(&cert, "not pem").expect("write");
        std::fs::write(dir.join("key.pem"), "not pem").expect("write");
        let err = load_identity(Some(&cert), Some(&dir.join("key.pem")), &dir)
            .expect_err("no certificate");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_torn_development_certificate_is_generated_anew() {
        let dir = temp_dir("torn");
        let first = load_identity(None, None, &dir).expect("generated");
        // A crash mid-write, before files were written atomically.
        std::fs::write(dir.join(DEV_CERT_FILE), "").expect("torn cert");
        let again = load_identity(None, None, &dir).expect("generated anew");
        assert!(matches!(again.origin, Origin::DevGenerated(_)));
        assert_ne!(again.fingerprint(), first.fingerprint());
        let reused = load_identity(None, None, &dir).expect("reused");
        assert_eq!(
            reused.fingerprint(),
            again.fingerprint(),
            "the new one is kept"
        );
        std::fs::write(dir.join(DEV_KEY_FILE), "").expect("torn key");
        let fresh = load_identity(None, None, &dir).expect("generated anew");
        rustls_server_config(fresh, b"tessera/1").expect("usable");
        std::fs::remove_dir_all(&dir).ok();
    }
}
