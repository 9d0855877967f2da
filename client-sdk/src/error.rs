//! [`ClientError`]: why a [`crate::Client`] call failed.

use std::time::Duration;

use tessera_protocol::ErrorCode;

use crate::connection::{ConnectionError, ProtocolError};
use crate::event::DisconnectReason;
use crate::redirect::RedirectError;

/// Why a [`crate::Client`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL's scheme has no transport.
    #[error("unsupported URL scheme {scheme:?} in {url:?}: this client speaks ws:// and quic://")]
    UnsupportedScheme { scheme: String, url: String },
    /// A `quic://` connection with no trust configured.
    #[error(
        "{url}: QUIC needs to know whom to trust: set ClientConfig::ca_certificate_pem, or \
         ClientConfig::pinned_certificate with the SHA-256 fingerprint the server logged"
    )]
    NoTrust { url: String },
    /// The pinned fingerprint is not 32 hex bytes.
    #[error("pinned certificate fingerprint {0:?} is not a SHA-256 digest (64 hex digits)")]
    InvalidFingerprint(String),
    /// The PEM of the certificate to pin holds no readable certificate.
    #[error("certificate to pin: {0}")]
    InvalidCertificatePem(String),
    /// The CA certificates given could not be read.
    #[error("CA certificates: {0}")]
    InvalidCa(String),
    /// The server's certificate is not the pinned one, or no configured CA
    /// vouches for it. Never accepted anyway.
    #[error("{url}: untrusted server certificate: {reason}")]
    UntrustedCertificate { url: String, reason: String },
    /// The URL could not be read at all.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    /// The transport could not be opened (DNS, TCP, WebSocket upgrade).
    #[error("could not connect to {url}")]
    Connect {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The handshake did not complete in time.
    #[error("no welcome from the server within {0:?}")]
    Timeout(Duration),
    /// The server refused the join. `code` is an [`ErrorCode`] number; see
    /// [`ClientError::error_code`].
    #[error("server refused the join: {message} (code {code})")]
    Refused { code: u16, message: String },
    /// The cluster sent the join on more often than
    /// [`crate::ClientConfig::max_redirects`] allows, or to another
    /// transport.
    #[error("redirect not followed: {0}")]
    Redirect(#[from] RedirectError),
    /// The server broke the protocol during the handshake.
    #[error("server broke the protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The connection is over (before the welcome, or before this call).
    #[error("disconnected: {0}")]
    Disconnected(DisconnectReason),
    /// The command was refused locally (encoding, limits, session state).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl ClientError {
    /// The typed code of a [`ClientError::Refused`], when this client knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Refused { code, .. } => ErrorCode::from_u16(*code),
            _ => None,
        }
    }
}

impl From<DisconnectReason> for ClientError {
    fn from(reason: DisconnectReason) -> Self {
        match reason {
            DisconnectReason::ProtocolViolation(err) => Self::Protocol(err),
            other => Self::Disconnected(other),
        }
    }
}
