//! HTTP endpoints for operators, orchestrators and monitoring.
//!
//! `/health`, `/ready` and `/metrics` are open; everything under `/admin/`
//! needs `Authorization: Bearer <admin token>` and answers JSON. Questions
//! about one room go to its tick thread as a command and are answered
//! between two ticks; the tick thread never waits for this side.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::admin_token as auth;
use crate::link::RoomCommand;
use crate::link::report::{
    CloseReport, CloseRequest, ComponentReport, DrainReport, EntityReport, ErrorBody, KickReport,
    KickRequest, RoomDetail, RoomList,
};
use crate::room::Admission;
use crate::state::ServerState;

/// How long an admin request waits for a room's tick thread to answer.
const ROOM_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Said to a kicked player when the operator gave no reason.
const DEFAULT_KICK_REASON: &str = "removed by an operator";
const DEFAULT_CLOSE_REASON: &str = "the room was closed by an operator";

/// Serves the admin HTTP API until shutdown.
pub async fn serve(listener: TcpListener, state: Arc<ServerState>) {
    let app = router(Arc::clone(&state));
    super::listener::serve(listener, app, state).await;
}

fn router(state: Arc<ServerState>) -> Router {
    let admin = Router::new()
        .route("/rooms", get(list_rooms))
        .route("/rooms/{room}", get(room_detail))
        .route("/rooms/{room}/entities/{id}", get(entity))
        .route("/rooms/{room}/kick", post(kick))
        .route("/rooms/{room}/close", post(close))
        .route("/drain", post(drain))
        .fallback(|| async { ApiError::NoEndpoint })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .nest("/admin", admin)
        .with_state(state)
}

/// Lets a request through only with the admin bearer token; otherwise 401
/// with an empty body.
async fn require_token(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth::bearer(header) {
        Some(token) if state.admin_token.matches(token) => next.run(request).await,
        offered => {
            tracing::info!(
                path = request.uri().path(),
                token = if offered.is_some() {
                    "wrong"
                } else {
                    "missing"
                },
                "admin request refused"
            );
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
            )
                .into_response()
        }
    }
}

/// Liveness: the process serves HTTP.
async fn health(State(state): State<Arc<ServerState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "game": state.rooms.game_name(),
        "uptime_s": state.started.elapsed().as_secs(),
        "rooms": state.rooms.len(),
        "connections": state.open_connections(),
        "draining": state.rooms.admission() == Admission::Draining,
    }))
}

/// Readiness: 503 with the reason while starting, draining or shutting
/// down, so load balancers stop sending joins.
async fn ready(State(state): State<Arc<ServerState>>) -> (StatusCode, Json<Value>) {
    match state.readiness() {
        Ok(()) => (StatusCode::OK, Json(json!({ "ready": true }))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason })),
        ),
    }
}

/// Prometheus text exposition of every metric of the process.
async fn metrics() -> Response {
    match crate::metrics::handle() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder was installed in this process\n",
        )
            .into_response(),
    }
}

async fn list_rooms(State(state): State<Arc<ServerState>>) -> Json<RoomList> {
    let mut rooms: Vec<_> = state.rooms.rooms().iter().map(|r| r.summary()).collect();
    rooms.sort_by(|a, b| a.name.cmp(&b.name));
    Json(RoomList { rooms })
}

async fn room_detail(
    State(state): State<Arc<ServerState>>,
    Path(room): Path<String>,
) -> Result<Json<RoomDetail>, ApiError> {
    let detail = ask(&state, &room, |reply| RoomCommand::Inspect { reply }).await?;
    Ok(Json(detail))
}

async fn entity(
    State(state): State<Arc<ServerState>>,
    Path((room, id)): Path<(String, String)>,
) -> Result<Json<EntityReport>, ApiError> {
    let id: u32 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("entity id {id:?} is not a number")))?;
    let entity = ask(&state, &room, |reply| RoomCommand::InspectEntity {
        id,
        reply,
    })
    .await?
    .ok_or_else(|| ApiError::NoEntity {
        room: room.clone(),
        id,
    })?;
    let components = entity
        .components
        .into_iter()
        .map(|c| ComponentReport {
            id: c.wire_id,
            name: c.name.to_owned(),
            value: c
                .readable
                .and_then(|r| rmp_serde::from_slice::<Value>(&r).ok())
                .unwrap_or(Value::Null),
            wire: rmp_serde::from_slice::<Value>(&c.bytes).unwrap_or(Value::Null),
            bytes: auth::hex(&c.bytes),
        })
        .collect();
    Ok(Json(EntityReport {
        room,
        id,
        player: entity.player,
        components,
    }))
}

async fn kick(
    State(state): State<Arc<ServerState>>,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Json<KickReport>, ApiError> {
    let request: KickRequest = parse(&body)?;
    let reason = reason_or(request.reason, DEFAULT_KICK_REASON);
    let session = request.session;
    let found = ask(&state, &room, |reply| RoomCommand::Kick {
        client: session,
        reason: reason.clone(),
        reply,
    })
    .await?;
    if !found {
        return Err(ApiError::NoPlayer { room, session });
    }
    tracing::info!(room, session, reason, "admin: player kicked");
    Ok(Json(KickReport {
        room,
        session,
        reason,
    }))
}

async fn close(
    State(state): State<Arc<ServerState>>,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Json<CloseReport>, ApiError> {
    let request: CloseRequest = if body.is_empty() {
        CloseRequest::default()
    } else {
        parse(&body)?
    };
    let reason = reason_or(request.reason, DEFAULT_CLOSE_REASON);
    let kicked = ask(&state, &room, |reply| RoomCommand::Close {
        reason: reason.clone(),
        reply,
    })
    .await?;
    tracing::info!(room, kicked, reason, "admin: room closed");
    Ok(Json(CloseReport { room, kicked }))
}

async fn drain(State(state): State<Arc<ServerState>>) -> Json<DrainReport> {
    if state.rooms.drain() {
        tracing::warn!("admin: drain started; new joins are refused, rooms keep running");
    }
    let rooms = state.rooms.rooms();
    Json(DrainReport {
        draining: state.rooms.admission() != Admission::Open,
        rooms: rooms.len(),
        players: rooms.iter().map(|r| r.players()).sum(),
    })
}

/// Sends a question to room `name`'s tick thread and waits for the answer.
async fn ask<T>(
    state: &ServerState,
    name: &str,
    command: impl FnOnce(oneshot::Sender<T>) -> RoomCommand,
) -> Result<T, ApiError> {
    let room = state
        .rooms
        .get(name)
        .ok_or_else(|| ApiError::NoRoom(name.to_owned()))?;
    let (reply, answer) = oneshot::channel();
    match room.send(command(reply)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(ApiError::Busy(name.to_owned())),
        Err(TrySendError::Closed(_)) => return Err(ApiError::Closed(name.to_owned())),
    }
    match tokio::time::timeout(ROOM_ANSWER_TIMEOUT, answer).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(ApiError::Closed(name.to_owned())),
        Err(_) => Err(ApiError::Busy(name.to_owned())),
    }
}

/// The operator's reason, or `default` when none was given.
fn reason_or(reason: Option<String>, default: &str) -> String {
    reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

/// What an admin request can fail with; each is a status and
/// `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("no room named {0:?} on this node")]
    NoRoom(String),
    #[error("room {room:?} has no player with session {session}")]
    NoPlayer { room: String, session: u64 },
    #[error("room {room:?} has no entity {id}")]
    NoEntity { room: String, id: u32 },
    #[error("room {0:?} closed before it answered")]
    Closed(String),
    #[error("room {0:?} is too busy to answer; try again")]
    Busy(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("no such admin endpoint")]
    NoEndpoint,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NoRoom(_)
            | Self::NoPlayer { .. }
            | Self::NoEntity { .. }
            | Self::Closed(_)
            | Self::NoEndpoint => StatusCode::NOT_FOUND,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        let body = ErrorBody {
            error: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}
