//! A player whose connection dropped is held: its entity stays and moves
//! on, the others never see it leave, and it resumes on a new client with
//! the same entity, a full view and its input numbering; or it is released.

use tessera_protocol::RawValue;
use tessera_protocol::arena::{Position as WirePosition, Walk};
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::TestRoom;
use tessera_sim::{DeliveryMode, Held, RoomConfig};

#[test]
fn a_held_player_moves_on_unseen_to_leave_and_resumes_where_it_got_to() {
    let mut t = TestRoom::new(&Arena, RoomConfig::default());
    let ann = t.join(1).entity_id;
    let bob = t.join(2).entity_id;
    t.set(ann, Position { x: 100.0, y: 100.0 });
    t.set(bob, Position { x: 150.0, y: 100.0 });
    t.input(2, &Walk::from_direction(0.0, 1.0));
    t.step();
    let held = t.room.hold(2).expect("bob was in the room");
    assert_eq!((held.net_id, held.last_input_seq), (bob, 1));
    assert!(t.get::<Held>(bob).is_some());
    t.step_n(5);
    assert!(
        t.view(1).entities.contains_key(&bob),
        "ann never saw bob leave"
    );
    let moved = t.get::<Position>(bob).expect("bob's entity stays");
    assert_eq!(
        (moved.x, moved.y),
        (150.0, 160.0),
        "and walks on: 6 ticks of 10"
    );
    assert_eq!(
        t.view(1).get::<WirePosition>(bob),
        Some(WirePosition::from_units(150.0, 160.0))
    );

    let welcome = t
        .room
        .resume(3, held, DeliveryMode::Reliable)
        .expect("resumes");
    assert_eq!(welcome.entity_id, bob, "the same entity");
    assert!(t.get::<Held>(bob).is_none());
    // An input numbered as before the drop is stale; the next one applies.
    let east = RawValue::encode(&Walk::from_direction(1.0, 0.0)).expect("encodes");
    t.room.input(3, 1, &east).expect("accepted, stale");
    let first = {
        t.step();
        t.delta(3).expect("a first delta")
    };
    let entered: Vec<u32> = first.entered.iter().map(|e| e.id).collect();
    assert!(
        entered.contains(&bob) && entered.contains(&ann),
        "{entered:?}"
    );
    assert_eq!(first.ack_input, 1, "the input numbering carries on");
    assert_eq!(
        t.get::<Position>(bob).map(|p| (p.x, p.y)),
        Some((150.0, 170.0)),
        "still walking north: the stale input changed nothing"
    );
    t.room.input(3, 2, &east).expect("applied");
    t.step();
    assert_eq!(t.get::<Position>(bob).map(|p| p.x), Some(160.0));
}

#[test]
fn a_released_player_leaves_and_only_held_players_can_be_resumed_or_released() {
    let mut t = TestRoom::new(&Arena, RoomConfig::default());
    let ann = t.join(1).entity_id;
    let bob = t.join(2).entity_id;
    t.set(ann, Position { x: 100.0, y: 100.0 });
    t.set(bob, Position { x: 150.0, y: 100.0 });
    t.step();
    assert!(!t.room.release(ann), "ann is connected, not held");
    let held = t.room.hold(2).expect("held");
    assert!(t.room.hold(2).is_none(), "held once");
    assert!(t.room.release(bob));
    t.step();
    assert!(
        !t.view(1).entities.contains_key(&bob),
        "bob left ann's view"
    );
    assert!(
        t.room.resume(3, held, DeliveryMode::Reliable).is_err(),
        "gone"
    );
}
