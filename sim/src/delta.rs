//! Assembling each client's delta from the tick's pre-encoded pieces.
//!
//! All frames of a tick are written back to back into one buffer, which
//! becomes a single `Bytes`; each client's frame is a zero-copy slice of it.

use std::ops::Range;

use bevy_ecs::prelude::*;
use tessera_protocol::delta::{
    write_delta_head, write_left, write_moved_head, write_section_head, write_slots,
};

use crate::boxed_resource::Boxed;
use crate::components::{ClientId, TickInfo};
use crate::datagram::{PartScratch, write_client_state};
use crate::interest::{ClientView, NO_MOVE};
use crate::replication::ReplicationState;
use crate::room::FrameKind;
use crate::room_state::RoomState;

/// The frames one tick produced (part of the room's state).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub buffer: Vec<u8>,
    pub frames: Vec<(ClientId, Range<usize>, FrameKind)>,
    /// Capacity the buffer needed last tick, to allocate once.
    pub last_len: usize,
    /// Buffers for assembling datagram clients' parts.
    pub parts: PartScratch,
    /// Where a client's update pieces are laid out before they join its
    /// frame ([`ReplicationState::copy_update_pieces`]).
    pub pieces: Vec<u8>,
    /// Scratch for the delta of a client that takes moves.
    pub split: StaySplit,
}

/// A compact client's stays split into those sent as `updated` entries
/// and those sent as moves (already written, `moves` of them, in
/// `move_bytes`), and the wire slots of its entering entities.
#[derive(Debug, Default)]
pub(crate) struct StaySplit {
    updated: Vec<u32>,
    moves: usize,
    move_bytes: Vec<u8>,
    slots: Vec<u32>,
}

/// Send-side settings (part of the room's state).
#[derive(Resource, Debug, Clone, Copy)]
pub(crate) struct DeltaConfig {
    pub keepalive_ticks: u32,
}

/// Bytes of `entered` entries one delta may carry, so that a frame stays well
/// under the protocol's `MAX_SERVER_FRAME` whatever the game's components.
const ENTERED_BYTE_BUDGET: usize = 256 * 1024;

/// How many of `enters` fit the byte budget (always at least one, so a
/// client always makes progress).
fn enters_within_budget(replication: &mut ReplicationState, enters: &[u32]) -> usize {
    if replication.full_pieces_bound(enters.len()) <= ENTERED_BYTE_BUDGET {
        return enters.len();
    }
    let mut bytes = 0;
    for (i, &slot) in enters.iter().enumerate() {
        bytes += replication.full_piece(slot).len();
        if bytes > ENTERED_BYTE_BUDGET && i > 0 {
            return i;
        }
    }
    enters.len()
}

/// For a client that takes moves: gives its entering entities their wire
/// slots, and splits its stays into moves and `updated` entries.
///
/// A move is coded against the prediction the server keeps for the entity,
/// which is the client's only if the client got every change of it the way
/// the server made them: so not in the tick after the entity entered (the
/// client had no step yet; `update_interest` marks those [`NO_MOVE`]) nor
/// after a delta that resent the whole view (the client's step spans the
/// ticks it missed). Those get an entry with the whole value, and from it
/// the client's prediction is the server's.
fn split_stays(
    view: &mut ClientView,
    replication: &ReplicationState,
    tick: u32,
    split: &mut StaySplit,
) {
    split.slots.clear();
    split.updated.clear();
    split.moves = 0;
    split.move_bytes.clear();
    let first_enter = view.known.len() - view.enters.len();
    for k in &mut view.known[first_enter..] {
        k.wire_slot = view.wire_slots.take();
        split.slots.push(k.wire_slot);
    }
    if view.resync || view.resynced_tick.wrapping_add(1) == tick {
        split.updated.extend_from_slice(&view.stays);
        return;
    }
    for (&slot, &wire_slot) in view.stays.iter().zip(&view.stay_wire_slots) {
        match replication.move_piece(slot) {
            Some(piece) if wire_slot != NO_MOVE => {
                piece.write(wire_slot, &mut split.move_bytes);
                split.moves += 1;
            }
            _ => split.updated.push(slot),
        }
    }
}

/// Writes a delta for every client with something to tell.
pub(crate) fn build_deltas(mut room: ResMut<'_, Boxed<RoomState>>, info: Res<'_, TickInfo>) {
    let RoomState {
        clients,
        replication,
        outbox,
        delta: config,
        stats,
        ..
    } = &mut **room;
    outbox.frames.clear();
    outbox.buffer = Vec::with_capacity(outbox.last_len + outbox.last_len / 8);
    let tick = info.tick;
    for view in &mut clients.list {
        let keepalive_due = tick.wrapping_sub(view.last_sent_tick) >= config.keepalive_ticks;
        if view.datagram.is_some() {
            let written = write_client_state(
                view,
                replication,
                &mut outbox.parts,
                tick,
                keepalive_due,
                &mut outbox.buffer,
                &mut outbox.frames,
            );
            if let Some(n) = written {
                stats.entered += n.entered as u64;
                stats.updated += n.updated as u64;
                stats.left += n.left as u64;
            }
            continue;
        }
        let has_news = !(view.enters.is_empty() && view.stays.is_empty() && view.left.is_empty());
        if !has_news && view.sent_ack == view.last_input_seq && !keepalive_due {
            continue;
        }
        let start = outbox.buffer.len();
        let out = &mut outbox.buffer;
        let sendable = enters_within_budget(replication, &view.enters);
        if sendable < view.enters.len() {
            // The rest enter in a later delta: the client does not know them yet.
            let unsent = view.enters.len() - sendable;
            view.enters.truncate(sendable);
            let known = view.known.len();
            view.known.truncate(known - unsent);
            view.incomplete = true;
        }
        let split = &mut outbox.split;
        let (updated, moves, move_bytes, slots) = if view.compact {
            split_stays(view, replication, tick, split);
            (
                &split.updated[..],
                split.moves,
                &split.move_bytes[..],
                &split.slots[..],
            )
        } else {
            (&view.stays[..], 0, &[][..], &[][..])
        };
        let compact = !(slots.is_empty() && moves == 0);
        write_delta_head(out, tick, view.last_input_seq, view.enters.len(), compact);
        for &slot in &view.enters {
            replication.copy_full_piece(slot, out);
        }
        write_section_head(out, updated.len());
        if view.resync {
            for &slot in updated {
                replication.copy_full_piece(slot, out);
            }
        } else {
            replication.copy_update_pieces(updated, out, &mut outbox.pieces);
        }
        write_left(out, &view.left);
        if compact {
            write_slots(out, slots);
            write_moved_head(out, moves);
            out.extend_from_slice(move_bytes);
        }
        outbox
            .frames
            .push((view.id, start..out.len(), FrameKind::Delta));
        view.last_sent_tick = tick;
        view.sent_ack = view.last_input_seq;
        if view.resync {
            view.resynced_tick = tick;
        }
        view.resync = false;
        stats.entered += view.enters.len() as u64;
        stats.updated += updated.len() as u64;
        stats.moved += moves as u64;
        stats.left += view.left.len() as u64;
    }
    outbox.last_len = outbox.buffer.len();
    stats.delta_frames = outbox.frames.len() as u32;
    stats.delta_bytes = outbox.buffer.len() as u64;
}
