//! The same seed and the same inputs give byte-identical deltas, and a room
//! restored from a snapshot carries on from the same state.

use tessera_protocol::arena::{self as wire, Walk};
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::TestRoom;
use tessera_sim::{Room, RoomConfig};

fn config(seed: u64) -> RoomConfig {
    RoomConfig {
        seed,
        ..RoomConfig::default()
    }
}

/// Runs a scripted session and returns every frame of every tick, in order.
fn run(seed: u64) -> Vec<(u64, Vec<u8>)> {
    let mut t = TestRoom::new(&Arena, config(seed));
    let mut frames = Vec::new();
    for client in 1..=200u64 {
        t.join(client);
    }
    for tick in 0..30u64 {
        for client in 1..=200u64 {
            if (client + tick) % 3 == 0 && !(client == 5 && tick > 10) {
                let a = (client * 13 + tick) as f32 * 0.1;
                t.input(client, &Walk::from_direction(a.cos(), a.sin()));
            }
        }
        if tick == 10 {
            t.leave(5);
            t.join(500);
        }
        for out in t.step() {
            frames.push((out.client, out.frame.to_vec()));
        }
    }
    frames
}

#[test]
fn same_seed_and_inputs_give_identical_bytes() {
    let a = run(42);
    let b = run(42);
    assert!(a.len() > 200, "the scenario produces frames");
    assert_eq!(a, b);
    assert_ne!(a, run(43), "the seed matters (spawn positions)");
}

#[test]
fn snapshot_restore_keeps_the_world_and_carries_on_identically() {
    let mut original = TestRoom::new(&Arena, config(9));
    let ids: Vec<u32> = (1..=20u64).map(|c| original.join(c).entity_id).collect();
    for (i, client) in (1..=20u64).enumerate() {
        let a = i as f32;
        original.input(client, &Walk::from_direction(a.cos(), a.sin()));
    }
    original.step_n(5);

    let bytes = original.room.snapshot().expect("snapshot");
    let restored = Room::restore(&Arena, config(9), &bytes).expect("restore");
    let mut restored = TestRoom::from_room(restored);
    assert_eq!(restored.room.tick(), original.room.tick());
    assert_eq!(restored.room.entity_count(), 20);
    for (i, id) in ids.iter().enumerate() {
        restored.attach(100 + i as u64, *id).expect("attach");
    }
    // Both rooms keep walking on the saved intents and spawn a newcomer
    // from the same random generator state.
    let newcomer = original.join(999).entity_id;
    let restored_newcomer = restored.join(999).entity_id;
    assert_eq!(newcomer, restored_newcomer);
    original.step_n(5);
    restored.step_n(5);
    for id in ids.iter().chain([&newcomer]) {
        assert_eq!(
            original.get::<Position>(*id),
            restored.get::<Position>(*id),
            "entity {id}"
        );
        assert_eq!(original.room.wire_state(*id), restored.room.wire_state(*id));
    }
    let me = ids[0];
    assert_eq!(
        restored.view(100).get::<wire::Position>(me),
        original.view(1).get::<wire::Position>(me)
    );
    // A second snapshot of the restored room is the same as the original's.
    assert_eq!(
        restored.room.snapshot().expect("snapshot"),
        original.room.snapshot().expect("snapshot")
    );
}

#[test]
fn snapshots_of_another_game_or_garbage_are_refused() {
    assert!(Room::restore(&Arena, RoomConfig::default(), b"\x01\x02").is_err());
}
