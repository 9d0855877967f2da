//! Delivery over unreliable datagrams: state against the tick a client
//! acknowledged, split by entity into parts (`DeltaPart`, `PROTOCOL.md`
//! §6.2).
//!
//! A reliable client (WebSocket) gets "what changed since the last frame";
//! a datagram client may have lost any frame, so it gets "what changed
//! since tick B", where B is the greatest tick it acknowledged (or the tick
//! of the last full state, which travels on the reliable stream). For that
//! the room keeps, per datagram client, the tick each known entity entered
//! its view and a log of recent leaves, and per (entity, component) the
//! tick it last changed (in [`ReplicationState`]), so no old values are
//! kept. When B is older than [`HISTORY_TICKS`] (or the leave log lost
//! entries newer than B) the client gets a full state instead.

use std::collections::VecDeque;
use std::ops::Range;

use tessera_protocol::delta::write_section_head;
use tessera_protocol::delta_part::{DELTA_PART_OVERHEAD, PartHead, write_part_head};
use tessera_protocol::msgpack::Writer;

use crate::components::ClientId;
use crate::interest::{ClientView, Known};
use crate::replication::ReplicationState;
use crate::room::FrameKind;

/// How far back a baseline may be, in ticks; older ones get a full state.
pub const HISTORY_TICKS: u32 = 32;
/// Most leave records kept per client. A client whose view churns faster
/// than this in [`HISTORY_TICKS`] gets full states until it catches up.
const MAX_LEFT_LOG: usize = 4096;

/// How a client receives its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// Reliable and ordered (WebSocket): `Delta` frames, each against what
    /// was sent before, with moves of the motion component (protocol
    /// version 2).
    #[default]
    Reliable,
    /// As `Reliable`, for a client of protocol version 1: every change is
    /// an `updated` entry.
    ReliableWithoutMoves,
    /// Unreliable datagrams (QUIC): `DeltaPart`s against the last
    /// acknowledged tick, each at most `max_datagram` bytes; full states
    /// go on the reliable stream.
    Datagram { max_datagram: usize },
}

/// An entity that left a datagram client's view, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LeftRecord {
    net_id: u32,
    tick: u32,
}

/// What the room keeps per datagram client, beside its [`ClientView`].
#[derive(Debug, Clone, Default)]
pub(crate) struct DatagramView {
    pub max_datagram: usize,
    /// Greatest tick the client acknowledged.
    acked: u32,
    /// Tick of the last full state handed over for the stream (0: none).
    full_sent: u32,
    /// Tick each entity of `ClientView::known` entered the view, in the
    /// same order.
    pub entered_at: Vec<u32>,
    pub prev_entered_at: Vec<u32>,
    left_log: VecDeque<LeftRecord>,
    /// Records with a tick up to this one were dropped for space.
    left_floor: u32,
}

impl DatagramView {
    pub(crate) fn new(max_datagram: usize) -> Self {
        Self {
            max_datagram,
            ..Self::default()
        }
    }

    /// The tick later parts are built against: the greatest acknowledged
    /// one, or the last full state (reliable, so it will arrive).
    fn baseline(&self) -> u32 {
        self.acked.max(self.full_sent)
    }

    pub(crate) fn acknowledge(&mut self, tick: u32) {
        self.acked = self.acked.max(tick);
    }

    /// The last full state was not handed over: send another.
    pub(crate) fn full_state_lost(&mut self) {
        self.full_sent = 0;
    }

    /// True when nothing can have changed for the client since its
    /// baseline unless something changed this tick: the interest pass may
    /// skip it like a reliable client.
    pub(crate) fn caught_up(&self, tick: u32) -> bool {
        self.baseline().saturating_add(1) >= tick
    }

    /// Rebuilds the known set after the grid query: entities stamped
    /// `still` stay (with their entry tick), and so do those stamped
    /// `still - 1` (known, now beyond the view) that are retained; the
    /// others left. `enters` join at `tick`. Returns how many retained
    /// entities beyond the view stayed.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, the interest pass"
    )]
    pub(crate) fn rebuild_known(
        &mut self,
        prev_known: &[Known],
        marks: &[crate::interest::Mark],
        still: u32,
        is_retained: &dyn Fn(u32) -> bool,
        enters: &[u32],
        replication: &ReplicationState,
        tick: u32,
        known: &mut Vec<Known>,
        left: &mut Vec<u32>,
    ) -> u32 {
        std::mem::swap(&mut self.entered_at, &mut self.prev_entered_at);
        let mut retained_far = 0;
        self.entered_at.clear();
        let prev_entered_at = std::mem::take(&mut self.prev_entered_at);
        for (k, &at) in prev_known.iter().zip(&prev_entered_at) {
            let mark = marks[k.slot as usize].stamp;
            if mark == still {
                known.push(*k);
                self.entered_at.push(at);
            } else if mark == still - 1 && is_retained(k.slot) {
                known.push(*k);
                self.entered_at.push(at);
                retained_far += 1;
            } else {
                left.push(k.net_id);
                self.log_left(k.net_id, tick);
            }
        }
        self.prev_entered_at = prev_entered_at;
        for &slot in enters {
            let net_id = replication.net_id(slot);
            known.push(Known::new(slot, net_id, tick));
            self.entered_at.push(tick);
            if !self.left_log.is_empty() {
                self.left_log.retain(|r| r.net_id != net_id);
            }
        }
        while self
            .left_log
            .front()
            .is_some_and(|r| r.tick.saturating_add(HISTORY_TICKS) < tick)
        {
            self.left_log.pop_front();
        }
        retained_far
    }

    fn log_left(&mut self, net_id: u32, tick: u32) {
        if self.left_log.len() >= MAX_LEFT_LOG
            && let Some(dropped) = self.left_log.pop_front()
        {
            self.left_floor = self.left_floor.max(dropped.tick);
        }
        self.left_log.push_back(LeftRecord { net_id, tick });
    }

    fn needs_full_state(&self, tick: u32) -> bool {
        let baseline = self.baseline();
        baseline == 0
            || baseline.saturating_add(HISTORY_TICKS) < tick
            || baseline <= self.left_floor
    }
}

/// Reusable buffers for assembling parts (kept across clients and ticks).
#[derive(Debug, Default)]
pub(crate) struct PartScratch {
    /// Encoded entries and left ids, back to back.
    bytes: Vec<u8>,
    /// Each item's section and byte range in `bytes`.
    items: Vec<(Section, Range<usize>)>,
    /// Item index where each part starts, and one past the last.
    cuts: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Entered,
    Updated,
    Left,
}

/// Frames one tick of a datagram client produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartsWritten {
    pub entered: usize,
    pub updated: usize,
    pub left: usize,
}

/// Writes the state of `tick` for a datagram client into `out`, pushing
/// each frame to `frames`. Writes nothing when there is no news, no new
/// input acknowledgement and no keepalive due.
pub(crate) fn write_client_state(
    view: &mut ClientView,
    replication: &mut ReplicationState,
    scratch: &mut PartScratch,
    tick: u32,
    keepalive_due: bool,
    out: &mut Vec<u8>,
    frames: &mut Vec<(ClientId, Range<usize>, FrameKind)>,
) -> Option<PartsWritten> {
    let dg = view.datagram.as_deref_mut()?;
    let full = dg.needs_full_state(tick);
    let baseline = if full { 0 } else { dg.baseline() };
    collect_items(
        scratch,
        replication,
        &view.known,
        &dg.entered_at,
        &dg.left_log,
        baseline,
    );
    let written = count(&scratch.items);
    let news = !scratch.items.is_empty();
    if !news && view.sent_ack == view.last_input_seq && !keepalive_due {
        return None;
    }
    let head = PartHead {
        tick,
        baseline,
        ack_input: view.last_input_seq,
        part: 0,
        last: true,
    };
    let budget = dg.max_datagram.saturating_sub(DELTA_PART_OVERHEAD);
    if full || !cut_parts(scratch, budget) {
        // A full state, or an entry too large for any datagram: the whole
        // state goes on the reliable stream as one part.
        scratch.cuts.clear();
        scratch.cuts.extend([0, scratch.items.len()]);
        let start = out.len();
        write_part(out, scratch, head, 0..scratch.items.len());
        frames.push((view.id, start..out.len(), FrameKind::Delta));
        if full {
            dg.full_sent = tick;
        }
    } else {
        let parts = scratch.cuts.len() - 1;
        for p in 0..parts {
            let start = out.len();
            let head = PartHead {
                part: p as u16,
                last: p + 1 == parts,
                ..head
            };
            write_part(out, scratch, head, scratch.cuts[p]..scratch.cuts[p + 1]);
            frames.push((view.id, start..out.len(), FrameKind::Datagram));
        }
    }
    view.last_sent_tick = tick;
    view.sent_ack = view.last_input_seq;
    Some(written)
}

/// Encodes what the client needs against `baseline` (0: everything) into
/// the scratch buffer, one item per entry or left id.
fn collect_items(
    scratch: &mut PartScratch,
    replication: &mut ReplicationState,
    known: &[Known],
    entered_at: &[u32],
    left_log: &VecDeque<LeftRecord>,
    baseline: u32,
) {
    scratch.bytes.clear();
    scratch.items.clear();
    for (k, &at) in known.iter().zip(entered_at) {
        if at > baseline || baseline == 0 {
            let start = scratch.bytes.len();
            replication.copy_full_piece(k.slot, &mut scratch.bytes);
            scratch
                .items
                .push((Section::Entered, start..scratch.bytes.len()));
        }
    }
    if baseline == 0 {
        return;
    }
    for (k, _) in known
        .iter()
        .zip(entered_at)
        .filter(|(_, at)| **at <= baseline)
    {
        let start = scratch.bytes.len();
        if replication.copy_changes_since(k.slot, baseline, &mut scratch.bytes) {
            scratch
                .items
                .push((Section::Updated, start..scratch.bytes.len()));
        }
    }
    for r in left_log.iter().filter(|r| r.tick > baseline) {
        let start = scratch.bytes.len();
        Writer::new(&mut scratch.bytes).uint(r.net_id.into());
        scratch
            .items
            .push((Section::Left, start..scratch.bytes.len()));
    }
}

fn count(items: &[(Section, Range<usize>)]) -> PartsWritten {
    let mut n = PartsWritten::default();
    for (section, _) in items {
        match section {
            Section::Entered => n.entered += 1,
            Section::Updated => n.updated += 1,
            Section::Left => n.left += 1,
        }
    }
    n
}

/// Groups the items into parts of at most `budget` bytes of items each, in
/// order (greedy). False when an item alone is over the budget, or when
/// more parts than a part index can count would be needed.
fn cut_parts(scratch: &mut PartScratch, budget: usize) -> bool {
    scratch.cuts.clear();
    scratch.cuts.push(0);
    let mut used = 0;
    for (i, (_, range)) in scratch.items.iter().enumerate() {
        let len = range.len();
        if len > budget {
            return false;
        }
        if used + len > budget {
            scratch.cuts.push(i);
            used = 0;
        }
        used += len;
    }
    scratch.cuts.push(scratch.items.len());
    scratch.cuts.len() - 1 <= usize::from(u16::MAX)
}

/// Writes one part holding `items` (a range of the scratch items).
fn write_part(out: &mut Vec<u8>, scratch: &PartScratch, head: PartHead, items: Range<usize>) {
    let items = &scratch.items[items];
    let in_section = |s: Section| items.iter().filter(move |(sec, _)| *sec == s);
    write_part_head(out, &head, in_section(Section::Entered).count());
    for (_, r) in in_section(Section::Entered) {
        out.extend_from_slice(&scratch.bytes[r.clone()]);
    }
    write_section_head(out, in_section(Section::Updated).count());
    for (_, r) in in_section(Section::Updated) {
        out.extend_from_slice(&scratch.bytes[r.clone()]);
    }
    // Left ids were encoded one by one; the section is their array.
    Writer::new(out).array_len(in_section(Section::Left).count() as u32);
    for (_, r) in in_section(Section::Left) {
        out.extend_from_slice(&scratch.bytes[r.clone()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_with(lens: &[usize]) -> PartScratch {
        let mut s = PartScratch::default();
        let mut at = 0;
        for &len in lens {
            s.items.push((Section::Updated, at..at + len));
            at += len;
        }
        s.bytes = vec![0; at];
        s
    }

    #[test]
    fn parts_are_cut_greedily_by_entry_and_never_split_one() {
        let mut s = scratch_with(&[40, 40, 30, 50, 10]);
        assert!(cut_parts(&mut s, 100));
        assert_eq!(s.cuts, vec![0, 2, 5]);
        let mut s = scratch_with(&[40, 120]);
        assert!(!cut_parts(&mut s, 100), "an entry over the budget");
        let mut s = scratch_with(&[]);
        assert!(cut_parts(&mut s, 100));
        assert_eq!(s.cuts, vec![0, 0], "an empty state is one empty part");
    }

    #[test]
    fn the_join_snapshot_goes_on_the_stream_and_later_state_in_datagrams() {
        use crate::games::arena::{Arena, Position};
        use crate::testing::TestRoom;
        use tessera_protocol::ServerMsg;

        let mut t = TestRoom::new(&Arena, crate::RoomConfig::default());
        let a = t.join_datagram(1, 1200).entity_id;
        let b = t.join(2).entity_id;
        t.set(a, Position { x: 100.0, y: 100.0 });
        t.set(b, Position { x: 150.0, y: 100.0 });
        let kinds = |t: &TestRoom| -> Vec<FrameKind> {
            t.last_frames()
                .iter()
                .filter(|o| o.client == 1)
                .map(|o| o.kind)
                .collect()
        };
        t.step();
        assert_eq!(kinds(&t), vec![FrameKind::Delta], "the full state");
        assert!(t.view(1).entities.contains_key(&b));
        t.set(b, Position { x: 160.0, y: 100.0 });
        t.step();
        assert_eq!(kinds(&t), vec![FrameKind::Datagram]);
        let Ok(ServerMsg::DeltaPart(part)) = ServerMsg::decode(&t.frames(1)[0]) else {
            panic!("a part");
        };
        assert_eq!((part.baseline, part.updated.len()), (1, 1), "{part:?}");
        let seen = t.view(1).get::<tessera_protocol::arena::Position>(b);
        assert_eq!(
            seen,
            Some(tessera_protocol::arena::Position::from_units(160.0, 100.0))
        );
    }

    #[test]
    fn baselines_age_out_and_full_states_count_as_baselines() {
        let mut dg = DatagramView::new(1200);
        assert!(dg.needs_full_state(5), "nothing acknowledged yet");
        dg.full_sent = 5;
        assert!(!dg.needs_full_state(6));
        assert!(!dg.caught_up(7));
        dg.acknowledge(6);
        assert!(dg.caught_up(7));
        assert!(dg.needs_full_state(6 + HISTORY_TICKS + 1));
        dg.left_floor = 6;
        assert!(dg.needs_full_state(8), "leave records after 6 were dropped");
    }
}
