//! Channels across rooms: a room publishes a message on a named channel,
//! and every room that subscribed to that channel receives it, on this
//! node or, in a cluster, on any node (global chat, a world boss that
//! appeared, a leaderboard that changed).
//!
//! A game publishes with [`crate::GameEvents::publish`] during a tick and
//! subscribes with [`crate::RoomBuilder::on_channel`]. The room only hands
//! the tick's messages to its host after the tick; the host carries them
//! (the server: a bounded queue to a task that fans them out, never from
//! the tick) and hands incoming ones back between ticks, where the
//! handler runs on the room's own world. Delivery is at most once: a
//! message a full queue cannot take is dropped and counted, and a room
//! that is not open when a message passes does not get it.

use std::sync::Arc;

use bevy_ecs::prelude::*;
use serde::de::DeserializeOwned;
use tessera_protocol::{PayloadError, RawValue};

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_NAME: usize = 64;

/// A message on a channel, as it travels between rooms.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelMessage {
    pub channel: String,
    /// The game's message, encoded like every game payload.
    pub payload: RawValue,
}

/// Why a received message was not handled.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("this room does not subscribe to channel {0:?}")]
    NotSubscribed(String),
    #[error("the message on channel {channel:?} does not decode: {error}")]
    Undecodable {
        channel: String,
        error: PayloadError,
    },
}

type Handler = dyn Fn(&mut World, &RawValue) -> Result<(), PayloadError> + Send + Sync;

/// A room's subscription: a channel and what to do with its messages.
#[derive(Clone)]
pub(crate) struct Subscription {
    pub(crate) channel: String,
    handler: Arc<Handler>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new<M: DeserializeOwned + 'static>(
        channel: &str,
        handler: impl Fn(&mut World, M) + Send + Sync + 'static,
    ) -> Self {
        Self {
            channel: channel.to_owned(),
            handler: Arc::new(move |world, raw| {
                handler(world, raw.decode::<M>()?);
                Ok(())
            }),
        }
    }

    pub(crate) fn deliver(
        &self,
        world: &mut World,
        payload: &RawValue,
    ) -> Result<(), ChannelError> {
        (self.handler)(world, payload).map_err(|error| ChannelError::Undecodable {
            channel: self.channel.clone(),
            error,
        })
    }
}

/// Whether `name` may name a channel: 1 to 64 bytes of the room-name
/// characters (`A-Z a-z 0-9 _ . : -`).
pub fn is_valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}
