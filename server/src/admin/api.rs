//! HTTP endpoints for operators, orchestrators and monitoring.
//!
//! `/health`, `/ready` and `/metrics` are open; everything under `/admin/`
//! needs `Authorization: Bearer <admin token>` and answers JSON. Questions
//! about one room go to its tick thread as a command and are answered
//! between two ticks; the tick thread never waits for this side.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::ops::{self, ApiError};
use crate::admin_token as auth;
use crate::cluster::{
    Answer, Cluster, ClusterMessage, NodeCommand, NodeInfo, PublicUrls, RedisFailure,
};
use crate::link::RoomCommand;
use crate::link::report::{
    BroadcastReport, BroadcastRequest, CloseRequest, DeadLetterList, KickRequest, NodeList,
    NodeReport, RoomList, RoomSummary,
};
use crate::room::Admission;
use crate::state::ServerState;

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
        .route("/nodes", get(list_nodes))
        .route("/broadcast", post(broadcast))
        .route("/dead-letters", get(dead_letters))
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
    let local = || {
        let mut rooms: Vec<_> = state.rooms.rooms().iter().map(|r| r.summary()).collect();
        if let Some(cluster) = &state.cluster {
            for room in &mut rooms {
                room.node = Some(cluster.node_id.clone());
            }
        }
        rooms
    };
    let (mut rooms, cluster_unavailable) = match &state.cluster {
        None => (local(), None),
        Some(cluster) => match cluster_rooms(cluster).await {
            Ok(rooms) => (rooms, None),
            Err(e) => (local(), Some(e.to_string())),
        },
    };
    rooms.sort_by(|a, b| a.name.cmp(&b.name).then(a.node.cmp(&b.node)));
    Json(RoomList {
        rooms,
        cluster_unavailable,
    })
}

/// Every room of the cluster, as each node last published its own.
async fn cluster_rooms(cluster: &Cluster) -> Result<Vec<RoomSummary>, RedisFailure> {
    let nodes = cluster.read_nodes().await?;
    let lists = futures_util::future::join_all(nodes.iter().map(|n| cluster.read_rooms(&n.id)));
    let mut rooms = Vec::new();
    for list in lists.await {
        rooms.extend(list?);
    }
    Ok(rooms)
}

/// The dead letters, oldest first (at most 1,000).
async fn dead_letters(
    State(state): State<Arc<ServerState>>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let persistence = state.rooms.persistence().ok_or(ApiError::NoPersistence)?;
    let dead_letters = persistence
        .store()
        .dead_letters(1_000)
        .await
        .map_err(|e| ApiError::Store(e.to_string()))?;
    Ok(Json(DeadLetterList { dead_letters }))
}

async fn list_nodes(State(state): State<Arc<ServerState>>) -> Result<Json<NodeList>, ApiError> {
    let now = crate::cluster::unix_ms();
    let nodes = match &state.cluster {
        Some(cluster) => cluster
            .read_nodes()
            .await
            .map_err(|e| ApiError::Cluster(e.to_string()))?,
        None => vec![standalone(&state)],
    };
    let mut nodes: Vec<NodeReport> = nodes
        .into_iter()
        .map(|info| NodeReport {
            heartbeat_age_ms: now.saturating_sub(info.heartbeat_unix_ms),
            info,
        })
        .collect();
    nodes.sort_by(|a, b| a.info.id.cmp(&b.info.id));
    Ok(Json(NodeList {
        clustered: state.cluster.is_some(),
        nodes,
    }))
}

/// What a node on its own would publish, had it a registry.
fn standalone(state: &ServerState) -> NodeInfo {
    let urls = PublicUrls {
        ws: format!("ws://{}", state.config.ws_addr),
        quic: format!("quic://{}", state.config.quic_addr),
        admin: format!("http://{}", state.config.admin_addr),
    };
    NodeInfo::of("standalone", &urls, &state.rooms, 0.0)
}

async fn room_detail(State(state): State<Arc<ServerState>>, Path(room): Path<String>) -> Response {
    routed(&state, NodeCommand::Room { room }).await
}

async fn entity(
    State(state): State<Arc<ServerState>>,
    Path((room, id)): Path<(String, String)>,
) -> Response {
    match id.parse() {
        Ok(id) => routed(&state, NodeCommand::Entity { room, id }).await,
        Err(_) => ApiError::BadRequest(format!("entity id {id:?} is not a number")).into_response(),
    }
}

async fn kick(
    State(state): State<Arc<ServerState>>,
    Path(room): Path<String>,
    body: Bytes,
) -> Response {
    match parse::<KickRequest>(&body) {
        Ok(request) => {
            let command = NodeCommand::Kick {
                room,
                session: request.session,
                reason: request.reason,
            };
            routed(&state, command).await
        }
        Err(e) => e.into_response(),
    }
}

async fn close(
    State(state): State<Arc<ServerState>>,
    Path(room): Path<String>,
    body: Bytes,
) -> Response {
    let request = if body.is_empty() {
        Ok(CloseRequest::default())
    } else {
        parse::<CloseRequest>(&body)
    };
    match request {
        Ok(request) => {
            let command = NodeCommand::Close {
                room,
                reason: request.reason,
            };
            routed(&state, command).await
        }
        Err(e) => e.into_response(),
    }
}

/// `?node=ID`: drain another node of the cluster.
#[derive(Debug, serde::Deserialize)]
struct DrainQuery {
    node: Option<String>,
}

async fn drain(State(state): State<Arc<ServerState>>, Query(query): Query<DrainQuery>) -> Response {
    match (query.node, &state.cluster) {
        (Some(node), Some(cluster)) if node != cluster.node_id => {
            respond(forward(cluster, &node, NodeCommand::Drain).await)
        }
        (Some(node), None) if node != "standalone" => ApiError::BadRequest(format!(
            "this node is not part of a cluster: there is no node {node:?} to drain"
        ))
        .into_response(),
        _ => respond(ops::carry_out(&state, NodeCommand::Drain).await),
    }
}

async fn broadcast(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let request: BroadcastRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Err(problem) = tessera_protocol::limits::check_chat_text(&request.text) {
        return ApiError::BadRequest(format!("broadcast text: {problem:?}")).into_response();
    }
    let nodes = match &state.cluster {
        Some(cluster) => {
            let message = ClusterMessage::Broadcast {
                text: request.text.clone(),
                room: request.room.clone(),
            };
            match cluster.tell_all(&message).await {
                Ok(()) => cluster.read_nodes().await.map_or(0, |n| n.len()),
                Err(e) => return ApiError::Cluster(e.to_string()).into_response(),
            }
        }
        None => {
            let targets = match &request.room {
                Some(name) => state.rooms.get(name).into_iter().collect(),
                None => state.rooms.rooms(),
            };
            for room in targets {
                let _ = room.send(RoomCommand::Announce {
                    text: request.text.clone(),
                });
            }
            1
        }
    };
    tracing::info!(room = ?request.room, nodes, "admin: broadcast");
    Json(BroadcastReport {
        text: request.text,
        room: request.room,
        nodes,
    })
    .into_response()
}

/// Carries out a command about one room where the room is: here, or on
/// its node (found from its lease), through the cluster.
async fn routed(state: &ServerState, command: NodeCommand) -> Response {
    let room = match &command {
        NodeCommand::Room { room }
        | NodeCommand::Entity { room, .. }
        | NodeCommand::Kick { room, .. }
        | NodeCommand::Close { room, .. } => room.clone(),
        NodeCommand::Drain => String::new(),
    };
    let Some(cluster) = &state.cluster else {
        return respond(ops::carry_out(state, command).await);
    };
    if state.rooms.get(&room).is_some() {
        return respond(ops::carry_out(state, command).await);
    }
    match cluster.owner_of(&room).await {
        Ok(Some(owner)) if owner != cluster.node_id => {
            respond(forward(cluster, &owner, command).await)
        }
        Ok(_) => ApiError::NoRoomInCluster(room).into_response(),
        Err(e) => ApiError::Cluster(e.to_string()).into_response(),
    }
}

async fn forward(cluster: &Cluster, node: &str, command: NodeCommand) -> Answer {
    match cluster.ask(node, command).await {
        Ok(answer) => answer,
        Err(e) => ApiError::Cluster(e.to_string()).answer(),
    }
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer.body)).into_response()
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        respond(self.answer())
    }
}
