//! Cluster messages over Redis pub/sub: events every node hears (nodes up
//! and down, rooms opened and closed, broadcasts) on `PREFIX:cluster`, and
//! commands to one node, with their answers, on `PREFIX:node:ID`.
//!
//! Pub/sub delivers at most once and only to who listens now, which is what
//! these messages need: an event nobody hears changes nothing, and a
//! command whose node does not answer in time is reported to the operator.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Cluster, RedisFailure};
use crate::link::RoomCommand;
use crate::metrics::cluster as names;
use crate::room::RoomTable;
use bytes::Bytes;
use tessera_protocol::RawValue;
use tessera_sim::channels::ChannelMessage;

/// How long a command waits for its node's answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// A message on a cluster channel (JSON, tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterMessage {
    NodeUp {
        node: String,
    },
    NodeDown {
        node: String,
    },
    RoomOpened {
        node: String,
        room: String,
    },
    RoomClosed {
        node: String,
        room: String,
    },
    /// A server chat line to every player of the cluster, or of `room`.
    Broadcast {
        text: String,
        room: Option<String>,
    },
    /// A game's message on a channel, for the rooms that subscribe to it;
    /// `payload` is its MessagePack.
    Channel {
        channel: String,
        payload: Vec<u8>,
    },
    /// To one node: do `command`, answer on `from`'s channel.
    Command {
        id: u64,
        from: String,
        command: NodeCommand,
    },
    /// The answer to command `id`.
    Answer {
        id: u64,
        answer: Answer,
    },
}

/// What an operator asks one node (through any node's admin API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NodeCommand {
    Room {
        room: String,
    },
    Entity {
        room: String,
        id: u32,
    },
    Kick {
        room: String,
        session: u64,
        reason: Option<String>,
    },
    Close {
        room: String,
        reason: Option<String>,
    },
    Drain,
}

/// An admin answer: the HTTP status and JSON body the node would have
/// answered itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Carries out a command on this node (the admin API provides it).
pub type CommandHandler =
    Arc<dyn Fn(NodeCommand) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// Why a command to another node got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailure {
    #[error(transparent)]
    Redis(#[from] RedisFailure),
    #[error("node {0} is not listening (gone, or cut off from redis)")]
    NotListening(String),
    #[error("node {0} did not answer within {COMMAND_TIMEOUT:?}")]
    NoAnswer(String),
}

impl Cluster {
    /// Sets what this node does with commands from other nodes.
    pub fn handle_commands(&self, handler: CommandHandler) {
        let _ = self.handler.set(handler);
    }

    fn node_channel(&self, id: &str) -> String {
        format!("{}:node:{id}", self.keys.prefix())
    }

    async fn publish(
        &self,
        channel: String,
        message: &ClusterMessage,
    ) -> Result<usize, RedisFailure> {
        let json = serde_json::to_string(message).unwrap_or_default();
        let mut redis = self.redis();
        self.redis
            .within("publish", self.timeout, redis.publish(channel, json))
            .await
    }

    /// Tells every node (this one too).
    pub async fn tell_all(&self, message: &ClusterMessage) -> Result<(), RedisFailure> {
        self.publish(self.keys.cluster_channel(), message)
            .await
            .map(drop)
    }

    /// Asks node `id` to carry out `command`, and waits for its answer.
    pub async fn ask(&self, id: &str, command: NodeCommand) -> Result<Answer, CommandFailure> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending().insert(request, reply);
        let message = ClusterMessage::Command {
            id: request,
            from: self.node_id.clone(),
            command,
        };
        let heard = self.publish(self.node_channel(id), &message).await;
        let result = match heard {
            // On a Redis Cluster the count covers the subscribers of one
            // master only: there, only the answer tells.
            Ok(0) if !self.redis_cluster => Err(CommandFailure::NotListening(id.to_owned())),
            Ok(_) => match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
                Ok(Ok(answer)) => Ok(answer),
                _ => Err(CommandFailure::NoAnswer(id.to_owned())),
            },
            Err(e) => Err(e.into()),
        };
        self.pending().remove(&request);
        result
    }

    fn pending(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, oneshot::Sender<Answer>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Carries the channel messages rooms publish (from `published`) to
    /// the rooms that subscribe: through Redis to every node, or straight
    /// to this node's rooms when it is on its own (`cluster` is `None`).
    /// A message Redis cannot take now is dropped and counted.
    pub async fn carry_channels(
        cluster: Option<Arc<Self>>,
        rooms: Arc<RoomTable>,
        mut published: tokio::sync::mpsc::Receiver<ChannelMessage>,
        stop: CancellationToken,
    ) {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                message = published.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
            };
            let Some(cluster) = &cluster else {
                rooms.deliver(&message);
                continue;
            };
            let message = ClusterMessage::Channel {
                channel: message.channel,
                payload: message.payload.as_bytes().to_vec(),
            };
            if cluster.tell_all(&message).await.is_err() {
                ::metrics::counter!(names::CHANNEL_DROPS).increment(1);
            }
        }
    }

    /// Listens on the cluster's channel and this node's own until `stop`,
    /// subscribing again whenever the connection drops.
    pub(super) async fn listen(self: Arc<Self>, rooms: Arc<RoomTable>, stop: CancellationToken) {
        let channels = [
            self.keys.cluster_channel(),
            self.node_channel(&self.node_id),
        ];
        let mut warned = false;
        let mut seed = 0;
        while !stop.is_cancelled() {
            let url = &self.pubsub_urls[seed % self.pubsub_urls.len().max(1)];
            seed += 1;
            let subscribed = async {
                let client = redis::Client::open(url.as_str())?;
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channels).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let pubsub = match tokio::time::timeout(self.timeout, subscribed).await {
                Ok(Ok(pubsub)) => pubsub,
                failed => {
                    if !warned {
                        let error = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".to_owned(),
                        };
                        tracing::warn!(
                            error,
                            "cannot subscribe to the cluster's channels; retrying"
                        );
                        warned = true;
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
            };
            warned = false;
            let mut messages = pubsub.into_on_message();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    message = messages.next() => {
                        let Some(message) = message else { break };
                        ::metrics::counter!(names::PUBSUB_MESSAGES).increment(1);
                        let Ok(json) = message.get_payload::<String>() else { continue };
                        match serde_json::from_str::<ClusterMessage>(&json) {
                            Ok(message) => self.on_message(message, &rooms),
                            Err(e) => tracing::debug!(error = %e, "unreadable cluster message"),
                        }
                    }
                }
            }
            tracing::debug!("cluster subscription dropped; subscribing again");
        }
    }

    fn on_message(self: &Arc<Self>, message: ClusterMessage, rooms: &RoomTable) {
        match message {
            ClusterMessage::Broadcast { text, room } => {
                let targets = match &room {
                    Some(name) => rooms.get(name).into_iter().collect(),
                    None => rooms.rooms(),
                };
                for handle in targets {
                    let _ = handle.send(RoomCommand::Announce { text: text.clone() });
                }
            }
            ClusterMessage::Channel { channel, payload } => {
                match RawValue::from_bytes(Bytes::from(payload)) {
                    Ok(payload) => rooms.deliver(&ChannelMessage { channel, payload }),
                    Err(e) => tracing::debug!(error = %e, channel, "unreadable channel message"),
                }
            }
            ClusterMessage::Command { id, from, command } => {
                let Some(handler) = self.handler.get().cloned() else {
                    return;
                };
                let cluster = Arc::clone(self);
                tokio::spawn(async move {
                    let answer = handler(command).await;
                    let reply = ClusterMessage::Answer { id, answer };
                    let _ = cluster.publish(cluster.node_channel(&from), &reply).await;
                });
            }
            ClusterMessage::Answer { id, answer } => {
                if let Some(reply) = self.pending().remove(&id) {
                    let _ = reply.send(answer);
                }
            }
            event @ (ClusterMessage::NodeUp { .. }
            | ClusterMessage::NodeDown { .. }
            | ClusterMessage::RoomOpened { .. }
            | ClusterMessage::RoomClosed { .. }) => tracing::debug!(?event, "cluster event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        let messages = [
            ClusterMessage::Broadcast {
                text: "restart at noon".into(),
                room: None,
            },
            ClusterMessage::Command {
                id: 7,
                from: "n1".into(),
                command: NodeCommand::Kick {
                    room: "lobby".into(),
                    session: 3,
                    reason: None,
                },
            },
            ClusterMessage::Answer {
                id: 7,
                answer: Answer {
                    status: 200,
                    body: serde_json::json!({"ok": true}),
                },
            },
        ];
        for message in messages {
            let json = serde_json::to_string(&message).expect("encodes");
            assert_eq!(
                serde_json::from_str::<ClusterMessage>(&json).expect("decodes"),
                message
            );
        }
    }
}
