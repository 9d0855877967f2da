//! Actions, game events and retained entities, on the public API: a small
//! game whose action handler records what it got and whose events are
//! planned by the test.

use bevy_ecs::prelude::*;
use tessera_protocol::arena::Position as WirePosition;
use tessera_protocol::limits::MAX_GAME_VALUE;
use tessera_protocol::{RawValue, ServerMsg};
use tessera_sim::games::arena::Position;
use tessera_sim::testing::TestRoom;
use tessera_sim::{
    ActionError, ClientId, EventError, EventTarget, FrameKind, Game, GameEvents, JoinContext,
    JoinRefused, Replicated, Retained, RoomBuilder, RoomConfig, TickSet,
};

/// Actions the handler got, in order: (client, action).
#[derive(Resource, Default)]
struct Applied(Vec<(ClientId, u32)>);

/// Events the test wants sent in the next tick.
#[derive(Resource, Default)]
struct Plan(Vec<(EventTarget, String)>);

struct Probe;

impl Game for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn setup(&self, room: &mut RoomBuilder<'_>) {
        room.world().init_resource::<Applied>();
        room.world().init_resource::<Plan>();
        room.replicate::<Position>()
            .spatial::<Position>()
            .on_join(|world: &mut World, ctx: JoinContext<'_>| {
                let at: Option<(f32, f32)> = ctx
                    .options
                    .decode()
                    .map_err(|e| JoinRefused(e.to_string()))?;
                let (x, y) = at.unwrap_or_default();
                Ok(world.spawn(Position { x, y }).id())
            })
            .on_action(
                |world: &mut World, who: tessera_sim::ActionContext, action: u32| {
                    world.resource_mut::<Applied>().0.push((who.client, action));
                },
            )
            .add_systems(TickSet::Simulate, send_planned);
    }
}

fn send_planned(mut plan: ResMut<'_, Plan>, mut events: ResMut<'_, GameEvents>) {
    for (to, text) in plan.0.drain(..) {
        events.send(to, &text).expect("within the limits");
    }
}

fn join_at(t: &mut TestRoom, client: ClientId, x: f32, y: f32) -> u32 {
    let options = RawValue::encode(&(x, y)).expect("encodes");
    t.try_join(client, &options).expect("joins").entity_id
}

fn plan(t: &mut TestRoom, to: EventTarget, text: &str) {
    let world = t.room.world_mut();
    world.resource_mut::<Plan>().0.push((to, text.to_owned()));
}

fn events(t: &TestRoom, client: ClientId) -> Vec<String> {
    t.view(client).events_as()
}

#[test]
fn actions_apply_once_in_order_a_bounded_number_a_tick_and_the_rest_wait() {
    let config = RoomConfig {
        max_actions_per_tick: 2,
        ..RoomConfig::default()
    };
    let mut t = TestRoom::new(&Probe, config);
    join_at(&mut t, 1, 10.0, 10.0);
    join_at(&mut t, 2, 10.0, 10.0);
    for n in 1..=5 {
        t.action(1, &n);
    }
    t.action(2, &100u32);
    t.step();
    let applied = |t: &TestRoom| t.room.world().resource::<Applied>().0.clone();
    assert_eq!(applied(&t), vec![(1, 1), (1, 2), (2, 100)]);
    t.step_n(2);
    assert_eq!(
        applied(&t),
        vec![(1, 1), (1, 2), (2, 100), (1, 3), (1, 4), (1, 5)]
    );
}

#[test]
fn a_backlog_unknown_clients_and_undecodable_actions_are_refused() {
    let config = RoomConfig {
        max_actions_per_tick: 1,
        ..RoomConfig::default()
    };
    let mut t = TestRoom::new(&Probe, config);
    join_at(&mut t, 1, 10.0, 10.0);
    let one = RawValue::encode(&1u32).expect("encodes");
    let backlog = tessera_sim::messages::ACTION_BACKLOG_TICKS;
    for _ in 0..backlog {
        t.room.action(1, &one).expect("within the backlog");
    }
    assert!(matches!(t.room.action(1, &one), Err(ActionError::Backlog(n)) if n == backlog));
    t.step();
    t.room
        .action(1, &one)
        .expect("one was applied, so one fits again");
    let text = RawValue::encode(&"not a number").expect("encodes");
    assert!(matches!(
        t.room.action(1, &text),
        Err(ActionError::Invalid(_))
    ));
    assert!(matches!(
        t.room.action(9, &one),
        Err(ActionError::UnknownClient(9))
    ));

    let mut arena = TestRoom::new(&tessera_sim::games::arena::Arena, RoomConfig::default());
    arena.join(1);
    assert!(matches!(
        arena.room.action(1, &one),
        Err(ActionError::NoActionType)
    ));
}

#[test]
fn events_reach_their_targets_once_after_the_delta() {
    let mut t = TestRoom::new(&Probe, RoomConfig::default());
    let ann = join_at(&mut t, 1, 100.0, 100.0);
    join_at(&mut t, 2, 150.0, 100.0);
    join_at(&mut t, 3, 3000.0, 3000.0);
    t.step();
    let ann_entity = t.entity(ann).expect("ann");
    plan(&mut t, EventTarget::Client(2), "to bob");
    plan(&mut t, EventTarget::ViewersOf(ann_entity), "near ann");
    plan(&mut t, EventTarget::Clients(vec![3, 7, 3]), "to cy");
    plan(&mut t, EventTarget::Everyone, "all");
    t.step();
    assert_eq!(events(&t, 1), ["near ann", "all"]);
    assert_eq!(events(&t, 2), ["to bob", "near ann", "all"]);
    assert_eq!(events(&t, 3), ["to cy", "all"]);
    // Each client's frames: its delta (if any) first, then its events.
    for client in 1..=3 {
        let kinds: Vec<FrameKind> = t
            .last_frames()
            .iter()
            .filter(|o| o.client == client)
            .map(|o| o.kind)
            .collect();
        let first_event = kinds.iter().position(|k| *k == FrameKind::Event);
        assert!(
            kinds[first_event.expect("events")..]
                .iter()
                .all(|k| *k == FrameKind::Event),
            "{kinds:?}"
        );
    }
    t.step();
    assert_eq!(events(&t, 1).len(), 2, "sent once");
}

#[test]
fn the_viewers_of_an_entity_despawned_this_tick_are_those_told_it_left() {
    let mut t = TestRoom::new(&Probe, RoomConfig::default());
    let ann = join_at(&mut t, 1, 100.0, 100.0);
    join_at(&mut t, 2, 150.0, 100.0);
    join_at(&mut t, 3, 3000.0, 3000.0);
    let rock = t
        .room
        .world_mut()
        .spawn((Position { x: 120.0, y: 100.0 }, Replicated))
        .id();
    t.step();
    plan(&mut t, EventTarget::ViewersOf(rock), "the rock broke");
    t.room.world_mut().despawn(rock);
    t.step();
    assert_eq!(events(&t, 1), ["the rock broke"]);
    assert_eq!(events(&t, 2), ["the rock broke"]);
    assert!(events(&t, 3).is_empty());
    let _ = ann;
}

#[test]
fn events_over_the_limits_are_refused_to_the_game() {
    let config = RoomConfig {
        max_events_per_tick: 2,
        ..RoomConfig::default()
    };
    let mut t = TestRoom::new(&Probe, config);
    join_at(&mut t, 1, 10.0, 10.0);
    let mut events = t.room.world_mut().resource_mut::<GameEvents>();
    let too_large = "x".repeat(MAX_GAME_VALUE);
    assert!(matches!(
        events.to_client(1, &too_large),
        Err(EventError::Payload(_))
    ));
    events.to_client(1, "one").expect("fits");
    events.to_everyone("two").expect("fits");
    assert!(matches!(
        events.to_client(1, "three"),
        Err(EventError::TooMany(2))
    ));
    t.step();
    assert_eq!(t.view(1).events_as::<String>(), ["one", "two"]);
    let frame = t.frames(1).pop().expect("an event frame");
    assert!(matches!(
        ServerMsg::decode(&frame),
        Ok(ServerMsg::Event { .. })
    ));
}

/// Reliable client 1 and datagram client 2 start next to a retained
/// marker, walk away, and still learn its change and its despawn.
#[test]
fn a_retained_entity_far_away_still_sends_its_changes_and_its_despawn() {
    let mut t = TestRoom::new(&Probe, RoomConfig::default());
    let ann = join_at(&mut t, 1, 100.0, 100.0);
    let bob = t.join_datagram(2, 1200).entity_id;
    t.set(bob, Position { x: 100.0, y: 120.0 });
    let marker = t
        .room
        .world_mut()
        .spawn((Position { x: 110.0, y: 100.0 }, Replicated, Retained))
        .id();
    t.step_n(2);
    let marker_id = t
        .room
        .world()
        .get::<tessera_sim::NetId>(marker)
        .expect("net id")
        .0;
    for client in [1, 2] {
        assert!(t.view(client).entities.contains_key(&marker_id));
    }
    t.set(
        ann,
        Position {
            x: 3000.0,
            y: 3000.0,
        },
    );
    t.set(
        bob,
        Position {
            x: 3000.0,
            y: 3100.0,
        },
    );
    t.step_n(3);
    for client in [1, 2] {
        assert!(t.view(client).entities.contains_key(&marker_id), "retained");
    }
    let moved = Position { x: 130.0, y: 100.0 };
    t.room.world_mut().entity_mut(marker).insert(moved);
    t.step_n(2);
    for client in [1, 2] {
        assert_eq!(
            t.view(client).get::<WirePosition>(marker_id),
            Some(WirePosition::from_units(130.0, 100.0)),
            "client {client} sees the far change"
        );
    }
    t.room.world_mut().despawn(marker);
    t.step_n(2);
    for client in [1, 2] {
        assert!(!t.view(client).entities.contains_key(&marker_id), "left");
    }
}
