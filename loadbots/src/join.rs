//! Why a bot could not join, sorted by what the person running the bots
//! has to fix: nothing listens there, TLS trust, the server's refusal, a
//! cluster that keeps sending bots on, or silence.

use std::time::Duration;

use tessera_client::RedirectError;
use tessera_protocol::ErrorCode;
use tokio_tungstenite::tungstenite;

/// Why one join failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// No connection: refused (nothing listens), unknown host, no route, or
    /// an HTTP answer instead of a WebSocket upgrade.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The QUIC (TLS) handshake failed: the server's certificate is not the
    /// pinned one, no configured CA vouches for it, or the server refused
    /// the handshake.
    #[error("TLS handshake failed: {0} (check --pin-sha256 or --ca-pem)")]
    Tls(String),
    /// The server answered the hello with an error.
    #[error("refused by the server: {}: {message}", code_name(*.code))]
    Refused { code: u16, message: String },
    /// The cluster sent the bot on too often in a row, or to another
    /// transport.
    #[error("redirect not followed: {0}")]
    Redirect(#[from] RedirectError),
    /// The server answered, but not with a welcome.
    #[error("no welcome: {0}")]
    Handshake(String),
    /// Nothing came back in time.
    #[error("nothing answered within {:.1} s", .0.as_secs_f64())]
    NoAnswer(Duration),
}

/// No bot of a run could join: the run stopped without a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no bot could join {url}: {cause}")]
pub struct NoBotJoined {
    pub url: String,
    pub cause: JoinError,
}

fn code_name(code: u16) -> String {
    ErrorCode::from_u16(code).map_or_else(|| format!("code {code}"), |c| c.to_string())
}

impl JoinError {
    /// Whether every later join will fail the same way. A server that is
    /// busy, full or restarting says so with a refusal that invites a retry,
    /// and one that is slow to answer may still answer, and a room that
    /// moved from node to node may settle: those are given time
    /// ([`crate::fail_fast`]) before the run gives up.
    pub fn is_definite(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Tls(_) => true,
            Self::Refused { code, .. } => !matches!(
                ErrorCode::from_u16(*code),
                Some(
                    ErrorCode::ServerFull
                        | ErrorCode::RoomBusy
                        | ErrorCode::ShuttingDown
                        | ErrorCode::ClusterUnavailable
                        | ErrorCode::StorageUnavailable
                )
            ),
            Self::Redirect(RedirectError::TooMany { .. }) => false,
            Self::Redirect(RedirectError::OtherTransport { .. }) => true,
            Self::Handshake(_) | Self::NoAnswer(_) => false,
        }
    }

    /// Opening a WebSocket failed.
    pub fn of_websocket(error: tungstenite::Error) -> Self {
        match error {
            // Without the "IO error:" prefix: "Connection refused (os error 111)".
            tungstenite::Error::Io(io) => Self::Connect(io.to_string()),
            tungstenite::Error::Http(response) => Self::Connect(format!(
                "the server answered HTTP {} instead of upgrading to WebSocket",
                response.status()
            )),
            other => Self::Connect(other.to_string()),
        }
    }

    /// A QUIC handshake failed.
    pub fn of_quic(error: quinn::ConnectionError) -> Self {
        use quinn::ConnectionError as E;
        match error {
            E::TransportError(e) if is_tls(e.code) => Self::Tls(if e.reason.is_empty() {
                e.to_string()
            } else {
                e.reason
            }),
            E::ConnectionClosed(close) if is_tls(close.error_code) => {
                Self::Tls(format!("the server refused it ({close})"))
            }
            E::ApplicationClosed(close) => {
                Self::Handshake(format!("closed by the server ({close})"))
            }
            other => Self::Connect(other.to_string()),
        }
    }
}

/// QUIC carries TLS alerts as transport error codes 0x100 to 0x1ff.
fn is_tls(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_read_as_what_to_fix() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = JoinError::of_websocket(tungstenite::Error::Io(refused));
        assert!(matches!(error, JoinError::Connect(_)), "{error:?}");
        assert!(error.is_definite());
        assert!(error.to_string().contains("refused"), "{error}");

        // A TLS alert (42, bad certificate) as QUIC carries it.
        let alert = quinn::TransportErrorCode::crypto(42);
        let tls = JoinError::of_quic(quinn::ConnectionError::TransportError(alert.into()));
        assert!(matches!(tls, JoinError::Tls(_)), "{tls:?}");
        assert!(tls.is_definite());

        let full = JoinError::Refused {
            code: ErrorCode::RoomFull as u16,
            message: "the room is full".into(),
        };
        assert_eq!(
            full.to_string(),
            "refused by the server: room_full (10): the room is full"
        );
        assert!(full.is_definite());
    }

    #[test]
    fn busy_servers_and_silence_are_given_time() {
        let busy = JoinError::Refused {
            code: ErrorCode::RoomBusy as u16,
            message: "later".into(),
        };
        assert!(!busy.is_definite());
        let no_cluster = JoinError::Refused {
            code: ErrorCode::ClusterUnavailable as u16,
            message: "later".into(),
        };
        assert!(!no_cluster.is_definite());
        let moving = JoinError::Redirect(RedirectError::TooMany {
            max: 3,
            url: "ws://b:7700".into(),
        });
        assert!(!moving.is_definite(), "a moving room may settle");
        assert!(!JoinError::NoAnswer(Duration::from_secs(10)).is_definite());
        assert!(!JoinError::Handshake("closed before the welcome".into()).is_definite());
        let unknown = JoinError::Refused {
            code: 999,
            message: "?".into(),
        };
        assert!(unknown.to_string().contains("code 999"), "{unknown}");
    }
}
