//! Checking what the server sends, two ways.
//!
//! Every bot runs [`LightCheck`]: each frame decodes, delta ticks increase,
//! and the bot tracks its own position and how many entities it sees, all
//! without allocating ([`DeltaView`]). Over QUIC, delta parts go through
//! the client's mirror rules (`WorldView::apply_part`), which also tell
//! the bot what to acknowledge. A sample of bots also runs
//! [`MirrorCheck`]: a full client mirror that refuses updates for entities it
//! never saw, plus a check that everything visible is within the interest
//! radius (plus margin) of the bot.

use bytes::Bytes;
use tessera_client::WorldView;
use tessera_protocol::arena::Position;
use tessera_protocol::motion::MotionTrack;
use tessera_protocol::msgpack::Reader;
use tessera_protocol::{DeltaPart, DeltaView, ServerMsg, WireComponent};

/// What a frame was, for the bot's bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Delta {
        tick: u32,
        /// Entities it entered, updated or moved.
        entity_updates: u32,
    },
    Pong {
        nonce: u32,
    },
    /// The server ended the session (`Error` or `Kicked`).
    Goodbye(String),
    /// Welcome, chat: nothing to record.
    Other,
}

/// Why a frame counts against the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    #[error("frame does not decode: {0}")]
    Decode(String),
    #[error("protocol violation: {0}")]
    Violation(String),
}

/// The checks every bot runs.
#[derive(Debug)]
pub struct LightCheck {
    me: u32,
    /// Whether to pick the bot's own position out of deltas (steering needs
    /// it; a crowd bot does not, and skipping it halves the frame work).
    track_position: bool,
    last_tick: Option<u32>,
    position: Option<(f32, f32)>,
    visible: i64,
    /// The mirror of a QUIC bot: delta parts repeat and arrive out of order,
    /// so counting and acknowledging them needs the client's rules.
    parts: Option<WorldView>,
    pending_ack: Option<u32>,
    /// The bot's own slot and position track, to follow its moves.
    own_slot: Option<u32>,
    own_track: Option<MotionTrack>,
}

impl LightCheck {
    pub fn new(me: u32, track_position: bool) -> Self {
        Self {
            me,
            track_position,
            last_tick: None,
            position: None,
            visible: 0,
            parts: None,
            pending_ack: None,
            own_slot: None,
            own_track: None,
        }
    }

    /// A tick a delta part completed, to acknowledge.
    pub fn take_ack(&mut self) -> Option<u32> {
        self.pending_ack.take()
    }

    /// Applies a delta part; a part of an older tick is no violation (the
    /// transport reorders), it just is not the newest delta.
    fn on_part(&mut self, part: &DeltaPart) -> Frame {
        let world = self.parts.get_or_insert_with(WorldView::new);
        let result = world.apply_part(part);
        if let Some(tick) = result.completed {
            self.pending_ack = Some(self.pending_ack.map_or(tick, |t| t.max(tick)));
        }
        self.visible = world.len() as i64;
        if self.track_position
            && let Some(Ok(p)) = world.get(self.me).and_then(|e| e.get::<Position>())
        {
            self.position = Some(p.to_units());
        }
        if result.newest {
            self.last_tick = Some(part.tick);
            let a = &result.applied;
            Frame::Delta {
                tick: part.tick,
                entity_updates: (a.entered.len() + a.updated.len()) as u32,
            }
        } else {
            Frame::Other
        }
    }

    pub fn position(&self) -> Option<(f32, f32)> {
        self.position
    }

    /// Entities in view (entered minus left).
    pub fn visible(&self) -> u64 {
        self.visible.max(0) as u64
    }

    pub fn on_frame(&mut self, frame: &[u8]) -> Result<Frame, Fault> {
        let view = DeltaView::parse(frame).map_err(|e| Fault::Decode(e.to_string()))?;
        let Some(delta) = view else {
            let msg = ServerMsg::decode(&Bytes::copy_from_slice(frame))
                .map_err(|e| Fault::Decode(e.to_string()))?;
            return Ok(match msg {
                ServerMsg::Pong { nonce, .. } => Frame::Pong { nonce },
                ServerMsg::Error { code, message } => {
                    Frame::Goodbye(format!("error {code}: {message}"))
                }
                ServerMsg::Kicked { reason, message } => {
                    Frame::Goodbye(format!("kicked {reason}: {message}"))
                }
                ServerMsg::Welcome(_) => return Err(Fault::Violation("a second Welcome".into())),
                ServerMsg::Redirect { .. } => {
                    return Err(Fault::Violation("a Redirect after the Welcome".into()));
                }
                ServerMsg::DeltaPart(part) => self.on_part(&part),
                ServerMsg::Delta(_) | ServerMsg::Chat { .. } | ServerMsg::Event { .. } => {
                    Frame::Other
                }
            });
        };
        if let Some(last) = self.last_tick
            && delta.tick <= last
        {
            return Err(Fault::Violation(format!(
                "tick went from {last} to {}",
                delta.tick
            )));
        }
        self.last_tick = Some(delta.tick);
        self.visible += delta.entered_len() as i64 - delta.left_len() as i64;
        if self.track_position {
            self.track_own_position(&delta);
        }
        Ok(Frame::Delta {
            tick: delta.tick,
            entity_updates: (delta.entered_len() + delta.updated_len() + delta.moved_len()) as u32,
        })
    }

    /// Follows the bot's own position: from an entry that carries it, or a
    /// move of the slot the bot's entity entered in.
    fn track_own_position(&mut self, delta: &DeltaView<'_>) {
        let me = self.me;
        let tick = delta.tick;
        if delta.left().any(|id| id == me) {
            (self.own_slot, self.own_track) = (None, None);
        }
        if let Some((entry, slot)) = delta
            .entered()
            .zip(delta.slots().map(Some).chain(std::iter::repeat(None)))
            .find(|(e, _)| e.id == me)
        {
            self.own_slot = slot;
            self.own_track = entry
                .component(Position::ID)
                .and_then(|v| Reader::new(v).uint_as::<u32>("position").ok())
                .map(|packed| MotionTrack::new(packed, tick));
        }
        if let Some(value) = delta
            .updated()
            .find(|e| e.id == me)
            .and_then(|e| e.component(Position::ID))
            && let Ok(packed) = Reader::new(value).uint_as::<u32>("position")
        {
            match &mut self.own_track {
                Some(track) => track.set(packed, tick),
                None => self.own_track = Some(MotionTrack::new(packed, tick)),
            }
        }
        if let Some(slot) = self.own_slot
            && let Some(m) = delta.moved().find(|m| m.slot == slot)
            && let Some(track) = &mut self.own_track
            && track.apply(tick, m.dx, m.dy).is_err()
        {
            self.own_track = None;
        }
        if let Some(track) = self.own_track {
            self.position = Some(Position::from_packed(track.value()).to_units());
        }
    }
}

/// The full checks of sample bots.
#[derive(Debug)]
pub struct MirrorCheck {
    me: u32,
    mirror: WorldView,
    /// Radius plus margin (plus quantization slack) no visible entity may exceed.
    reach: f32,
}

impl MirrorCheck {
    pub fn new(me: u32, welcome_tick: u32, aoi_radius: u32, aoi_margin: f32) -> Self {
        Self {
            me,
            mirror: WorldView::from_tick(welcome_tick).with_motion(Position::ID),
            // Positions are quantized to 1/16 unit on each axis.
            reach: aoi_radius as f32 + aoi_margin + 0.1,
        }
    }

    pub fn on_frame(&mut self, frame: &[u8]) -> Result<(), Fault> {
        let msg = ServerMsg::decode(&Bytes::copy_from_slice(frame))
            .map_err(|e| Fault::Decode(e.to_string()))?;
        match msg {
            ServerMsg::Delta(delta) => {
                self.mirror
                    .apply(&delta)
                    .map_err(|e| Fault::Violation(e.to_string()))?;
            }
            ServerMsg::DeltaPart(part) => {
                self.mirror.apply_part(&part);
            }
            _ => return Ok(()),
        }
        let position_of = |id: u32| {
            self.mirror
                .get(id)
                .and_then(|e| e.get::<Position>())
                .and_then(Result::ok)
                .map(Position::to_units)
        };
        let Some((mx, my)) = position_of(self.me) else {
            return Ok(());
        };
        for entity in self.mirror.iter() {
            if let Some((x, y)) = position_of(entity.id()) {
                let d = ((x - mx).powi(2) + (y - my).powi(2)).sqrt();
                if d > self.reach {
                    return Err(Fault::Violation(format!(
                        "entity {} is visible {d:.1} units away (radius + margin {:.1})",
                        entity.id(),
                        self.reach
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_protocol::{ComponentValue, Delta, EntityState, RawValue};

    fn delta(tick: u32, entered: &[(u32, f32, f32)], updated: &[u32]) -> Vec<u8> {
        let entry = |id: u32, x: f32, y: f32| EntityState {
            id,
            components: vec![ComponentValue {
                id: Position::ID,
                value: RawValue::encode(&Position::from_units(x, y)).expect("encodes"),
            }],
        };
        ServerMsg::Delta(Delta {
            tick,
            entered: entered
                .iter()
                .map(|(id, x, y)| entry(*id, *x, *y))
                .collect(),
            updated: updated.iter().map(|id| entry(*id, 0.0, 0.0)).collect(),
            ..Delta::default()
        })
        .encode()
    }

    #[test]
    fn light_check_tracks_position_and_ticks() {
        let mut c = LightCheck::new(1, true);
        assert_eq!(
            c.on_frame(&delta(5, &[(1, 100.0, 200.0), (2, 0.0, 0.0)], &[])),
            Ok(Frame::Delta {
                tick: 5,
                entity_updates: 2
            })
        );
        assert_eq!(c.position(), Some((100.0, 200.0)));
        assert_eq!(c.visible(), 2);
        assert!(matches!(
            c.on_frame(&delta(5, &[], &[])),
            Err(Fault::Violation(_))
        ));
        assert!(matches!(c.on_frame(&[0xc1]), Err(Fault::Decode(_))));
    }

    #[test]
    fn mirror_check_catches_unknown_updates_and_far_entities() {
        let mut m = MirrorCheck::new(1, 0, 200, 20.0);
        m.on_frame(&delta(1, &[(1, 100.0, 100.0), (2, 150.0, 100.0)], &[]))
            .expect("fine");
        assert!(matches!(
            m.on_frame(&delta(2, &[], &[9])),
            Err(Fault::Violation(_))
        ));
        let mut m = MirrorCheck::new(1, 0, 200, 20.0);
        let far = m.on_frame(&delta(1, &[(1, 100.0, 100.0), (2, 400.0, 100.0)], &[]));
        assert!(matches!(far, Err(Fault::Violation(_))), "{far:?}");
    }
}
