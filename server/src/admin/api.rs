//! HTTP endpoints for operators and orchestrators.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::server::ServerState;

/// Serves the admin HTTP API until shutdown.
pub async fn serve(listener: TcpListener, state: Arc<ServerState>) {
    let shutdown = state.shutdown.clone();
    let app = router(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "admin http server failed");
    }
}

fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
}

/// Liveness: the process serves HTTP.
async fn health(State(state): State<Arc<ServerState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "game": state.registry.game_name(),
        "uptime_s": state.started.elapsed().as_secs(),
        "rooms": state.registry.len(),
        "connections": state.open_connections(),
    }))
}

/// Readiness: 503 while shutting down, so load balancers stop sending joins.
async fn ready(State(state): State<Arc<ServerState>>) -> (StatusCode, Json<Value>) {
    if state.shutdown.is_cancelled() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": "shutting down" })),
        )
    } else {
        (StatusCode::OK, Json(json!({ "ready": true })))
    }
}
