//! Joins, resumes and the end of sessions: a new player, a held player
//! taken back, a stale connection replaced by a newer one, and a dropped
//! connection's player held for its grace window.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use tessera_protocol::{ErrorCode, KickReason, RawValue, ServerMsg, Welcome};
use tessera_sim::{ClientId, DeliveryMode};
use tokio::sync::oneshot;

use super::reconnects::HeldEntry;
use super::{HostedRoom, HostedSession};
use crate::identity::resume::ResumeRefusal;
use crate::link::{CloseRequest, JoinRequest, Refusal, SessionLink};

type Reply = oneshot::Sender<Result<Welcome, Refusal>>;

impl HostedRoom {
    pub(super) fn join(
        &mut self,
        link: SessionLink,
        mut request: JoinRequest,
        options: &RawValue,
        reply: Reply,
        now: Instant,
    ) {
        let mode = link
            .datagrams
            .as_ref()
            .and_then(|d| d.sink.max_size())
            .map(|max_datagram| DeliveryMode::Datagram { max_datagram })
            .unwrap_or(if request.protocol_version >= 2 {
                DeliveryMode::Reliable
            } else {
                DeliveryMode::ReliableWithoutMoves
            });
        let taken_back = match request.resuming {
            Some(key) => {
                let stale = self.reconnects.connected_with_key(&key);
                match stale.map(|old| self.replace(old, now)) {
                    Some(entry) => entry,
                    None => self.reconnects.take_held(&key),
                }
            }
            // The same player from a token, still connected or held.
            None => {
                let player = &request.player.player;
                if let Some(old) = self.reconnects.connected_player(player) {
                    self.replace(old, now)
                } else {
                    let key = self.reconnects.held_player(player);
                    key.and_then(|k| self.reconnects.take_held(&k))
                }
            }
        };
        if request.resuming.is_some() && taken_back.is_none() {
            let failed = ResumeRefusal::NotHeld.to_string();
            let _ = reply.send(Err(Refusal::new(ErrorCode::ResumeFailed, failed)));
            return;
        }
        // The room's own save of a player that left it a moment ago is
        // newer than what the store had when this join read it.
        let saved = self
            .freshest_save(&request.player.player, request.saved.take())
            .map(|s| s.state)
            .filter(|state| self.readable_save(&request.player.player, state));
        let mut resumed = false;
        let (identity, result) = match taken_back {
            Some(entry) => {
                let net_id = entry.held.net_id;
                match self.room.resume(link.id, entry.held, mode) {
                    Ok(welcome) => {
                        resumed = true;
                        (entry.identity, Ok(welcome))
                    }
                    // The game removed the held entity, or the room filled
                    // up meanwhile: that player cannot come back.
                    Err(e) => {
                        self.room.release(net_id);
                        if request.resuming.is_some() {
                            let failed = format!("{}: {e}", ResumeRefusal::NotHeld);
                            let _ = reply.send(Err(Refusal::new(ErrorCode::ResumeFailed, failed)));
                            return;
                        }
                        let result = self.room.join_saved(
                            link.id,
                            &request.player,
                            options,
                            mode,
                            saved.as_deref(),
                        );
                        (request.player.clone(), result)
                    }
                }
            }
            None => {
                let result =
                    self.room
                        .join_saved(link.id, &request.player, options, mode, saved.as_deref());
                (request.player.clone(), result)
            }
        };
        let mut welcome = match result {
            Ok(welcome) => welcome,
            Err(e) => {
                let _ = reply.send(Err(Refusal::new(e.code(), e.to_string())));
                return;
            }
        };
        welcome.resume = request.resume_token;
        // Counted before the client can know it joined.
        let players = self.room.player_count();
        self.handle.players.store(players, Ordering::Relaxed);
        let frame = Bytes::from(ServerMsg::Welcome(welcome.clone()).encode());
        // The queue is new and empty: this cannot be full.
        let _ = link.outbound.try_send(frame);
        let id = link.id;
        if reply.send(Ok(welcome)).is_err() {
            // The session gave up waiting. A player it took back is held
            // again, under the key it came with; a new one leaves.
            if !resumed {
                self.room.leave(id);
            } else if let Some(held) = self.room.hold(id) {
                let key = request.resuming.unwrap_or(request.resume_key);
                self.reconnects.hold(key, identity, id, held, now);
            }
            return;
        }
        if matches!(mode, DeliveryMode::Datagram { .. }) {
            self.datagram_sessions.push(id);
        }
        self.reconnects.connected(id, request.resume_key, identity);
        self.sessions.insert(
            id,
            HostedSession {
                link,
                lagging_since: None,
            },
        );
    }

    /// A newer connection takes over the player of `old`, a connection
    /// still open: `old` is told it was replaced and its player handed
    /// over at once, never waiting for it to time out.
    fn replace(&mut self, old: ClientId, now: Instant) -> Option<HeldEntry> {
        let (_, identity) = self.reconnects.disconnected(old)?;
        let held = self.room.hold(old)?;
        if let Some(session) = self.forget(old) {
            tracing::info!(session = old, "player taken over by a newer connection");
            session.link.control.close(CloseRequest::kicked(
                KickReason::Replaced,
                "a newer connection took over this player",
            ));
        }
        Some(HeldEntry {
            held,
            identity,
            client: old,
            until: now,
        })
    }

    /// The session of `client` ended. If its connection dropped (`hold`)
    /// and the node holds dropped players, its player stays for the grace
    /// window; else it leaves.
    pub(super) fn session_ended(&mut self, client: ClientId, hold: bool, now: Instant) {
        if hold && self.reconnects.enabled() {
            if let Some((key, identity)) = self.reconnects.disconnected(client)
                && let Some(held) = self.room.hold(client)
            {
                tracing::info!(session = client, "connection dropped: player held");
                self.reconnects.hold(key, identity, client, held, now);
            }
            self.forget(client);
            return;
        }
        // Held already (its queue was found closed), and now it is known to
        // have left for good.
        if let Some(entry) = self.reconnects.take_held_client(client) {
            self.room.release(entry.held.net_id);
        }
        self.room.leave(client);
        self.forget(client);
    }

    /// Held players whose grace window ended leave.
    pub(super) fn release_expired(&mut self, now: Instant) {
        for entry in self.reconnects.expired(now) {
            tracing::info!(
                session = entry.client,
                player = %entry.identity.player,
                "grace window over: held player leaves"
            );
            self.room.release(entry.held.net_id);
        }
    }
}
