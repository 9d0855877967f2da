//! How a session ends: a [`CloseRequest`] (the last frame, the close code,
//! the metric label) placed on the session's [`SessionControl`] by whoever
//! ends it first: its room (kick, lag, bad input), the admin API, the read
//! loop (the client broke a rule) or the writer (a failed write).

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use tessera_protocol::{ErrorCode, KickReason, ServerMsg};
use tokio_util::sync::CancellationToken;

use crate::frames::close_code;
use crate::metrics::end;

/// How a session is to end: the last frame to send and the close code.
#[derive(Debug, Clone)]
pub struct CloseRequest {
    pub frame: Option<Bytes>,
    pub code: u16,
    pub reason: String,
    /// Why, as a bounded metric label ([`crate::metrics::DISCONNECTS`]).
    pub label: &'static str,
}

impl CloseRequest {
    pub fn error(code: ErrorCode, message: &str) -> Self {
        let close = match code {
            ErrorCode::FrameTooLarge => close_code::TOO_BIG,
            ErrorCode::UnsupportedFrame => close_code::UNSUPPORTED_DATA,
            ErrorCode::Internal => close_code::INTERNAL,
            ErrorCode::ServerFull
            | ErrorCode::RoomBusy
            | ErrorCode::ShuttingDown
            | ErrorCode::ClusterUnavailable
            | ErrorCode::StorageUnavailable => close_code::TRY_AGAIN_LATER,
            _ => close_code::POLICY,
        };
        Self {
            frame: Some(Bytes::from(ServerMsg::error(code, message).encode())),
            code: close,
            reason: code.as_str().to_owned(),
            label: code.as_str(),
        }
    }

    /// For a client whose transport broke its protocol: the error
    /// `malformed`, and the close code for a protocol error (1002).
    pub fn violation(what: &str) -> Self {
        let message = format!("websocket protocol violation: {what}");
        Self {
            code: close_code::PROTOCOL_ERROR,
            ..Self::error(ErrorCode::Malformed, &message)
        }
    }

    pub fn kicked(reason: KickReason, message: &str) -> Self {
        let close = match reason {
            KickReason::Shutdown => close_code::GOING_AWAY,
            _ => close_code::POLICY,
        };
        Self {
            frame: Some(Bytes::from(ServerMsg::kicked(reason, message).encode())),
            code: close,
            reason: reason.as_str().to_owned(),
            label: reason.as_str(),
        }
    }

    /// Sends the client to the node that hosts its room (`Redirect`).
    pub fn redirect(url: &str, seat: &str) -> Self {
        let redirect = ServerMsg::Redirect {
            url: url.to_owned(),
            seat: seat.to_owned(),
        };
        Self {
            frame: Some(Bytes::from(redirect.encode())),
            code: close_code::NORMAL,
            reason: end::REDIRECTED.to_owned(),
            label: end::REDIRECTED,
        }
    }

    /// A plain close, counted under `label` (one of [`crate::metrics::end`]).
    pub fn normal(label: &'static str) -> Self {
        Self {
            frame: None,
            code: close_code::NORMAL,
            reason: String::new(),
            label,
        }
    }
}

/// Lets the room (or anyone) end a session: the first request wins.
#[derive(Debug)]
pub struct SessionControl {
    /// Cancelled once a close request is in place (the writer's signal).
    token: CancellationToken,
    /// Cancelled by a close request or by server shutdown: the read loop's
    /// one signal, so that it polls a single waiter per message.
    reader_wake: CancellationToken,
    request: Mutex<Option<CloseRequest>>,
    /// The first request's label, kept after the writer takes the request.
    label: OnceLock<&'static str>,
}

impl SessionControl {
    pub fn new(shutdown: &CancellationToken) -> Self {
        Self {
            token: CancellationToken::new(),
            reader_wake: shutdown.child_token(),
            request: Mutex::new(None),
            label: OnceLock::new(),
        }
    }

    pub fn close(&self, request: CloseRequest) {
        let mut slot = self.request.lock().unwrap_or_else(|p| p.into_inner());
        if self.label.set(request.label).is_ok() {
            *slot = Some(request);
        }
        drop(slot);
        self.token.cancel();
        self.reader_wake.cancel();
    }

    /// Why the session ended (its first close request's label).
    pub fn label(&self) -> &'static str {
        self.label.get().copied().unwrap_or(end::NORMAL)
    }

    pub fn is_closing(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once a close request is in place.
    pub async fn closing(&self) {
        self.token.cancelled().await;
    }

    /// Completes on a close request or on server shutdown.
    pub async fn reader_woken(&self) {
        self.reader_wake.cancelled().await;
    }

    /// Takes the close request for the writer to carry out.
    pub fn take(&self) -> Option<CloseRequest> {
        self.request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}
