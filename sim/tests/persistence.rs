//! What a room hands its host to persist: players saved when they leave
//! and on their interval, the game's journal events, and the players a
//! restored room holds for their clients to come back.

use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::TestRoom;
use tessera_sim::{HeldPlayer, Journal, JournalError, RoomConfig, RoomRecord};

fn saving(interval_ticks: u32) -> RoomConfig {
    RoomConfig {
        save_players: true,
        player_save_interval_ticks: interval_ticks,
        ..RoomConfig::default()
    }
}

/// The player saves among `records`: (player, left).
fn saves(records: &[RoomRecord]) -> Vec<(String, bool)> {
    records
        .iter()
        .filter_map(|r| match r {
            RoomRecord::PlayerSaved { player, left, .. } => Some((player.clone(), *left)),
            RoomRecord::Event { .. } => None,
        })
        .collect()
}

fn state_of(records: &[RoomRecord], who: &str) -> Vec<u8> {
    records
        .iter()
        .find_map(|r| match r {
            RoomRecord::PlayerSaved { player, state, .. } if player == who => Some(state.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no save of {who}"))
}

#[test]
fn a_player_that_leaves_is_saved_and_comes_back_with_its_state() {
    let mut t = TestRoom::new(&Arena, saving(0));
    let me = t.join_saved(1, "alice", None).expect("join").entity_id;
    t.step();
    let spot = Position { x: 123.0, y: 456.0 };
    t.set(me, spot);
    t.step();
    assert!(
        saves(&t.room.take_records()).is_empty(),
        "no interval, no save"
    );
    t.leave(1);
    let records = t.room.take_records();
    assert_eq!(saves(&records), vec![("alice".to_owned(), true)]);
    let saved = state_of(&records, "alice");

    let mut later = TestRoom::new(&Arena, saving(0));
    let back = later.join_saved(7, "alice", Some(&saved)).expect("join");
    assert_eq!(later.get::<Position>(back.entity_id), Some(spot));
    // Without a save, the arena places a player at random.
    let fresh = later.join_saved(8, "bob", None).expect("join");
    assert_ne!(later.get::<Position>(fresh.entity_id), Some(spot));
}

#[test]
fn a_room_that_saves_nothing_records_no_player() {
    let mut t = TestRoom::new(&Arena, RoomConfig::default());
    t.join_saved(1, "alice", None).expect("join");
    t.step();
    t.leave(1);
    assert!(t.room.take_records().is_empty());
}

#[test]
fn players_are_saved_once_per_interval_spread_over_its_ticks() {
    let interval = 4;
    let mut t = TestRoom::new(&Arena, saving(interval));
    for client in 1..=8 {
        t.join_saved(client, &format!("p{client}"), None)
            .expect("join");
    }
    let mut per_tick = Vec::new();
    let mut all = Vec::new();
    for _ in 0..interval {
        t.step();
        let saved = saves(&t.room.take_records());
        per_tick.push(saved.len());
        all.extend(saved);
    }
    all.sort();
    let expected: Vec<(String, bool)> = {
        let mut e: Vec<_> = (1..=8).map(|c| (format!("p{c}"), false)).collect();
        e.sort();
        e
    };
    assert_eq!(all, expected, "each player saved once in the interval");
    assert!(
        per_tick.iter().all(|n| *n < 8),
        "saves spread over the ticks: {per_tick:?}"
    );
}

#[test]
fn a_save_of_another_game_is_refused_at_the_join() {
    let mut t = TestRoom::new(&Arena, saving(0));
    let refused = t.join_saved(1, "alice", Some(b"\x93\x01\xa3abc\x90"));
    assert!(refused.is_err(), "{refused:?}");
}

#[test]
fn journal_events_leave_after_the_tick_in_order_and_bounded() {
    let config = RoomConfig {
        max_events_per_tick: 2,
        ..RoomConfig::default()
    };
    let mut t = TestRoom::new(&Arena, config);
    t.step();
    {
        let world = t.room.world_mut();
        let mut journal = world.resource_mut::<Journal>();
        journal.record("match_won", &("alice", 3)).expect("record");
        journal.record("coin.collected", &7).expect("record");
        assert!(matches!(
            journal.record("third", &0),
            Err(JournalError::TooMany(2))
        ));
        assert!(matches!(
            journal.record("no spaces", &0),
            Err(JournalError::InvalidKind(_))
        ));
    }
    t.step();
    let records = t.room.take_records();
    let events: Vec<(String, u32, u32)> = records
        .iter()
        .filter_map(|r| match r {
            RoomRecord::Event {
                kind, tick, seq, ..
            } => Some((kind.clone(), *tick, *seq)),
            RoomRecord::PlayerSaved { .. } => None,
        })
        .collect();
    let tick = t.room.tick();
    assert_eq!(
        events,
        vec![
            ("match_won".to_owned(), tick, 0),
            ("coin.collected".to_owned(), tick, 1)
        ]
    );
    assert!(t.room.take_records().is_empty(), "each event leaves once");
    // Taken again within the same tick: numbered on, never twice the same.
    t.room
        .world_mut()
        .resource_mut::<Journal>()
        .record("late", &1)
        .expect("record");
    match &t.room.take_records()[..] {
        [RoomRecord::Event { tick: at, seq, .. }] => assert_eq!((*at, *seq), (tick, 2)),
        other => panic!("{other:?}"),
    }
    t.room.records_dropped(3);
    assert_eq!(t.room.world_mut().resource::<Journal>().dropped(), 3);
}

#[test]
fn a_restored_room_holds_its_players_for_them_to_come_back() {
    let mut t = TestRoom::new(&Arena, saving(4));
    let alice = t.join_saved(1, "alice", None).expect("join").entity_id;
    let bob = t.join_saved(2, "bob", None).expect("join").entity_id;
    t.step_n(3);
    let bytes = t.room.snapshot().expect("snapshot");

    let room = tessera_sim::Room::restore(&Arena, saving(4), &bytes).expect("restore");
    let mut restored = TestRoom::from_room(room);
    let mut held = restored.room.held_players();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    let as_held = |net_id| HeldPlayer {
        net_id,
        last_input_seq: 0,
    };
    assert_eq!(
        held,
        vec![
            ("alice".to_owned(), as_held(alice)),
            ("bob".to_owned(), as_held(bob))
        ]
    );
    // Alice's client comes back into her entity; Bob never does.
    let mode = tessera_sim::DeliveryMode::Reliable;
    let welcome = restored
        .room
        .resume(10, held[0].1, mode)
        .expect("resume alice");
    assert_eq!(welcome.entity_id, alice);
    // Bob, never back, leaves without a save: his entity is the
    // snapshot's, and he may have played elsewhere since.
    assert!(restored.room.release(bob));
    assert!(saves(&restored.room.take_records()).is_empty());
    assert_eq!(restored.room.held_players(), Vec::new());
    // Alice's connection drops: she is saved as she is held, once.
    restored.room.hold(10).expect("held");
    // A whole save interval: a held player is not saved on it.
    restored.step_n(4);
    assert_eq!(
        saves(&restored.room.take_records()),
        vec![("alice".to_owned(), true)]
    );
    assert!(restored.room.release(alice));
    assert!(saves(&restored.room.take_records()).is_empty());
}
