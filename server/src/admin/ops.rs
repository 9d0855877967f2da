//! What an operator's command does on the node that hosts the room: the
//! same code whether the command came over this node's admin API or from
//! another node of the cluster ([`NodeCommand`]). Each answers an HTTP
//! status and a JSON body ([`Answer`]).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;

use crate::admin_token as auth;
use crate::cluster::{Answer, NodeCommand};
use crate::link::RoomCommand;
use crate::link::report::{
    CloseReport, ComponentReport, DrainReport, EntityReport, ErrorBody, KickReport,
};
use crate::room::Admission;
use crate::state::ServerState;

/// How long an admin request waits for a room's tick thread to answer.
const ROOM_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Said to a kicked player when the operator gave no reason.
const DEFAULT_KICK_REASON: &str = "removed by an operator";
const DEFAULT_CLOSE_REASON: &str = "the room was closed by an operator";

/// Carries out `command` on this node.
pub async fn carry_out(state: &ServerState, command: NodeCommand) -> Answer {
    match command {
        NodeCommand::Room { room } => {
            answer(ask(state, &room, |reply| RoomCommand::Inspect { reply }).await)
        }
        NodeCommand::Entity { room, id } => answer(entity(state, room, id).await),
        NodeCommand::Kick {
            room,
            session,
            reason,
        } => answer(kick(state, room, session, reason).await),
        NodeCommand::Close { room, reason } => answer(close(state, room, reason).await),
        NodeCommand::Drain => answer(Ok(drain(state))),
    }
}

/// `Ok` as 200 and its JSON, an error as its status and `{"error": …}`.
pub fn answer<T: Serialize>(result: Result<T, ApiError>) -> Answer {
    match result {
        Ok(value) => Answer {
            status: 200,
            body: serde_json::to_value(value).unwrap_or(Value::Null),
        },
        Err(e) => e.answer(),
    }
}

async fn entity(state: &ServerState, room: String, id: u32) -> Result<EntityReport, ApiError> {
    let entity = ask(state, &room, |reply| RoomCommand::InspectEntity {
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
    Ok(EntityReport {
        room,
        id,
        player: entity.player,
        components,
    })
}

async fn kick(
    state: &ServerState,
    room: String,
    session: u64,
    reason: Option<String>,
) -> Result<KickReport, ApiError> {
    let reason = reason_or(reason, DEFAULT_KICK_REASON);
    let found = ask(state, &room, |reply| RoomCommand::Kick {
        client: session,
        reason: reason.clone(),
        reply,
    })
    .await?;
    if !found {
        return Err(ApiError::NoPlayer { room, session });
    }
    tracing::info!(room, session, reason, "admin: player kicked");
    Ok(KickReport {
        room,
        session,
        reason,
    })
}

async fn close(
    state: &ServerState,
    room: String,
    reason: Option<String>,
) -> Result<CloseReport, ApiError> {
    let reason = reason_or(reason, DEFAULT_CLOSE_REASON);
    let kicked = ask(state, &room, |reply| RoomCommand::Close {
        reason: reason.clone(),
        kick: tessera_protocol::KickReason::RoomClosed,
        reply,
    })
    .await?;
    tracing::info!(room, kicked, reason, "admin: room closed");
    Ok(CloseReport { room, kicked })
}

fn drain(state: &ServerState) -> DrainReport {
    if state.rooms.drain() {
        tracing::warn!("admin: drain started; new joins are refused, rooms keep running");
    }
    let rooms = state.rooms.rooms();
    DrainReport {
        draining: state.rooms.admission() != Admission::Open,
        rooms: rooms.len(),
        players: rooms.iter().map(|r| r.players()).sum(),
    }
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

/// What an admin request can fail with; each is a status and
/// `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no room named {0:?} on this node")]
    NoRoom(String),
    #[error("no room named {0:?} in the cluster")]
    NoRoomInCluster(String),
    #[error("room {room:?} has no player with session {session}")]
    NoPlayer { room: String, session: u64 },
    #[error("room {room:?} has no entity {id}")]
    NoEntity { room: String, id: u32 },
    #[error("room {0:?} closed before it answered")]
    Closed(String),
    #[error("room {0:?} is too busy to answer; try again")]
    Busy(String),
    #[error("the cluster: {0}")]
    Cluster(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("persistence is off on this node")]
    NoPersistence,
    #[error("the database: {0}")]
    Store(String),
    #[error("no such admin endpoint")]
    NoEndpoint,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::NoRoom(_)
            | Self::NoRoomInCluster(_)
            | Self::NoPlayer { .. }
            | Self::NoEntity { .. }
            | Self::Closed(_)
            | Self::NoEndpoint
            | Self::NoPersistence => 404,
            Self::Busy(_) | Self::Cluster(_) | Self::Store(_) => 503,
            Self::BadRequest(_) => 400,
        }
    }

    pub fn answer(&self) -> Answer {
        let body = ErrorBody {
            error: self.to_string(),
        };
        Answer {
            status: self.status(),
            body: serde_json::to_value(body).unwrap_or(Value::Null),
        }
    }
}
