//! The admin port's own accept loop, so that it can never take what the
//! game listeners need: at most `max_admin_connections` open at once (the
//! rest wait in the kernel's backlog, holding no descriptor of ours), a
//! request's headers must arrive within `admin_request_timeout_ms`, and no
//! connection lives longer than [`MAX_CONNECTION_LIFE`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::state::ServerState;

/// Longest life of one admin connection: `watch` and scrapers make a
/// request every second or so, each on a fresh or kept-alive connection,
/// and a client that holds one open doing nothing only holds a slot.
pub const MAX_CONNECTION_LIFE: Duration = Duration::from_secs(60);
/// Pause after a failed accept (out of descriptors), so the loop never
/// spins; the failure is logged at most this often.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until shutdown.
pub async fn serve(listener: TcpListener, app: Router, state: Arc<ServerState>) {
    let shutdown = state.shutdown.clone();
    let slots = Arc::new(Semaphore::new(state.config.max_admin_connections));
    let header_timeout = Duration::from_millis(state.config.admin_request_timeout_ms);
    loop {
        // A slot first: past the cap, connections are not even accepted.
        let slot = tokio::select! {
            () = shutdown.cancelled() => return,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        state.tasks.spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = &mut connection => {}
                () = tokio::time::sleep(MAX_CONNECTION_LIFE) => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
            }
        });
    }
}
