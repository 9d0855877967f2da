//! Interest management and deltas, stepped by hand.

use tessera_protocol::arena::{self as wire, Walk};
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::testing::TestRoom;
use tessera_sim::{CHAT_BACKLOG_TICKS, ChatError, FrameKind, RoomConfig};

fn room() -> TestRoom {
    TestRoom::new(&Arena, RoomConfig::default())
}

/// Joins `client` and puts its entity at `(x, y)`; returns the entity id.
fn join_at(t: &mut TestRoom, client: u64, x: f32, y: f32) -> u32 {
    let id = t.join(client).entity_id;
    t.set(id, Position { x, y });
    id
}

#[test]
fn near_players_see_each_other_and_far_ones_do_not() {
    let mut t = room();
    let a = join_at(&mut t, 1, 1000.0, 1000.0);
    let b = join_at(&mut t, 2, 1100.0, 1000.0);
    let c = join_at(&mut t, 3, 3000.0, 3000.0);
    t.step();
    let first = t.delta(1).expect("a gets a delta");
    let mut entered: Vec<u32> = first.entered.iter().map(|e| e.id).collect();
    entered.sort_unstable();
    assert_eq!(entered, vec![a, b]);
    assert!(t.view(2).entities.contains_key(&a));
    assert_eq!(
        t.view(3).entities.keys().copied().collect::<Vec<_>>(),
        vec![c]
    );

    // b walks east: a gets updates for b only.
    t.input(2, &Walk::from_direction(1.0, 0.0));
    t.step();
    let d = t.delta(1).expect("a sees b move");
    assert_eq!(d.updated.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b]);
    assert!(d.entered.is_empty() && d.left.is_empty());
    assert!(t.delta(3).is_none(), "c sees nothing that changed");

    // Past the radius but inside the margin, b stays visible...
    t.set(
        b,
        Position {
            x: 1210.0,
            y: 1000.0,
        },
    );
    t.step();
    assert!(t.view(1).entities.contains_key(&b));
    // ...and past radius + margin it leaves.
    t.set(
        b,
        Position {
            x: 1221.0,
            y: 1000.0,
        },
    );
    t.step();
    assert_eq!(t.delta(1).expect("left").left, vec![b]);
    assert!(!t.view(1).entities.contains_key(&b));
    assert!(!t.view(2).entities.contains_key(&a));
}

#[test]
fn entering_needs_the_inner_radius() {
    let mut t = room();
    join_at(&mut t, 1, 1000.0, 1000.0);
    let b = join_at(&mut t, 2, 1210.0, 1000.0);
    t.step();
    assert!(
        !t.view(1).entities.contains_key(&b),
        "inside the margin only"
    );
    t.set(
        b,
        Position {
            x: 1199.0,
            y: 1000.0,
        },
    );
    t.step();
    assert!(t.view(1).entities.contains_key(&b));
}

#[test]
fn idle_entities_send_no_update_bytes() {
    let mut t = room();
    join_at(&mut t, 1, 500.0, 500.0);
    join_at(&mut t, 2, 520.0, 500.0);
    t.step();
    t.step();
    // Nothing moved: no delta at all until the keepalive.
    assert!(t.frames(1).is_empty());
    assert!(t.frames(2).is_empty());
    // Ticks 3 to 10: still silent; tick 11 is ten ticks after the last delta.
    for _ in 3..=10 {
        t.step();
        assert!(t.frames(1).is_empty());
    }
    t.step();
    let keepalive = t.delta(1).expect("keepalive after keepalive_ticks");
    assert!(
        keepalive.entered.is_empty() && keepalive.updated.is_empty() && keepalive.left.is_empty()
    );
    // A sub-quantum move changes nothing on the wire either.
    let b = t.view(1).entities.keys().copied().max().expect("b");
    t.set(
        b,
        Position {
            x: 520.01,
            y: 500.0,
        },
    );
    t.step();
    assert!(t.frames(1).is_empty());
}

#[test]
fn updates_carry_only_changed_components() {
    let mut t = room();
    join_at(&mut t, 1, 500.0, 500.0);
    let b = join_at(&mut t, 2, 520.0, 500.0);
    t.step();
    t.input(2, &Walk::from_direction(0.0, 1.0));
    t.step();
    let d = t.delta(1).expect("update");
    assert_eq!(d.updated.len(), 1);
    let ids: Vec<u8> = d.updated[0].components.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        vec![<wire::Position as tessera_protocol::WireComponent>::ID]
    );
    assert_eq!(
        t.view(1).get::<wire::Position>(b),
        Some(wire::Position::from_units(520.0, 510.0))
    );
}

#[test]
fn leaving_and_a_new_join_in_the_same_tick_reuse_no_ids() {
    let mut t = room();
    join_at(&mut t, 1, 500.0, 500.0);
    let b = join_at(&mut t, 2, 520.0, 500.0);
    t.step();
    t.leave(2);
    let c = join_at(&mut t, 3, 530.0, 500.0);
    assert_ne!(b, c);
    t.step();
    let d = t.delta(1).expect("delta");
    assert_eq!(d.left, vec![b]);
    assert_eq!(d.entered.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c]);
}

#[test]
fn an_undelivered_delta_is_made_good_later() {
    let mut t = room();
    join_at(&mut t, 1, 500.0, 500.0);
    let b = join_at(&mut t, 2, 520.0, 500.0);
    t.step();
    let truth_before = t.view(1).clone();
    // b moves and c appears, but client 1's delta is lost.
    t.input(2, &Walk::from_direction(1.0, 0.0));
    let c = join_at(&mut t, 3, 540.0, 500.0);
    let mut out = Vec::new();
    t.room.step(&mut out);
    t.room.delivery_failed(1);
    t.input(2, &Walk::from_direction(0.0, 0.0));
    // The mirror never saw the lost frame; the next delta must still apply.
    let mut mirror = truth_before;
    t.step();
    for frame in t.frames(1) {
        if let Ok(tessera_protocol::ServerMsg::Delta(d)) =
            tessera_protocol::ServerMsg::decode(&frame)
        {
            mirror
                .apply(&d)
                .expect("catch-up delta applies to the old state");
        }
    }
    assert!(mirror.entities.contains_key(&c));
    assert_eq!(
        mirror.get::<wire::Position>(b),
        Some(wire::Position::from_units(530.0, 500.0))
    );
}

#[test]
fn chat_reaches_everyone_in_the_room() {
    let mut t = room();
    let a = join_at(&mut t, 1, 100.0, 100.0);
    join_at(&mut t, 2, 4000.0, 4000.0);
    t.room.chat(1, "hello").expect("chat");
    assert_eq!(t.room.chat(1, "  "), Err(ChatError::Empty));
    for spoof in [
        "hi\n[server] you are banned",
        "hi\u{2028}[server]",
        "\u{202E}olleh",
    ] {
        assert_eq!(t.room.chat(1, spoof), Err(ChatError::ControlCharacter));
    }
    t.room.chat(1, "שלום, مرحبا, 你好").expect("any script");
    t.step();
    let lines = vec![(a, "hello".to_owned()), (a, "שלום, مرحبا, 你好".to_owned())];
    assert_eq!(t.view(2).chat, lines);
    assert_eq!(t.view(1).chat, lines);
}

#[test]
fn chat_waits_behind_the_deltas_and_a_flood_is_capped() {
    let mut t = room();
    let per_tick = RoomConfig::default().max_chat_per_tick;
    let a = join_at(&mut t, 1, 100.0, 100.0);
    join_at(&mut t, 2, 150.0, 100.0);
    t.step();
    t.input(1, &Walk::from_direction(1.0, 0.0));
    let waiting = per_tick * CHAT_BACKLOG_TICKS;
    for i in 0..waiting {
        t.room.chat(1, &format!("line {i}")).expect("room for it");
    }
    assert_eq!(t.room.chat(1, "one too many"), Err(ChatError::Backlog));
    let frames = t
        .step()
        .iter()
        .filter(|o| o.client == 2)
        .collect::<Vec<_>>();
    let kinds = frames.iter().map(|o| o.kind).collect::<Vec<_>>();
    let mut expected = vec![FrameKind::Delta];
    expected.extend(std::iter::repeat_n(FrameKind::Chat, per_tick));
    assert_eq!(kinds, expected, "the delta first, then one tick's chat");
    t.step_n(CHAT_BACKLOG_TICKS - 1);
    let lines = &t.view(2).chat;
    assert_eq!(lines.len(), waiting, "every accepted line arrives");
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, (from, text))| *from == a && *text == format!("line {i}"))
    );
    t.room
        .chat(1, "room again")
        .expect("the backlog has drained");
}

#[test]
fn crowd_mirrors_match_the_server_within_the_radius() {
    let mut t = TestRoom::new(
        &Arena,
        RoomConfig {
            seed: 7,
            ..RoomConfig::default()
        },
    );
    // 60 players in a 600 x 600 corner, walking in varied directions.
    for client in 1..=60u64 {
        let id = t.join(client).entity_id;
        let f = client as f32;
        t.set(
            id,
            Position {
                x: (f * 37.0) % 600.0,
                y: (f * 91.0) % 600.0,
            },
        );
    }
    for tick in 0..40u64 {
        for client in 1..=60u64 {
            let angle = (client * 7 + tick / 10) as f32;
            t.input(client, &Walk::from_direction(angle.cos(), angle.sin()));
        }
        t.step();
    }
    let positions: Vec<(u32, Position)> = (1..=60u64)
        .map(|c| {
            let id = t.room.clients().get(c).map(|v| v.entity).expect("client");
            let net = t
                .room
                .world()
                .get::<tessera_sim::NetId>(id)
                .expect("net id")
                .0;
            (net, t.get::<Position>(net).expect("position"))
        })
        .collect();
    for client in 1..=60u64 {
        let me = positions[(client - 1) as usize].1;
        let view = t.view(client);
        for (id, p) in &positions {
            let d = ((p.x - me.x).powi(2) + (p.y - me.y).powi(2)).sqrt();
            if d <= 200.0 {
                assert_eq!(
                    view.get::<wire::Position>(*id),
                    Some(wire::Position::from_units(p.x, p.y))
                );
            }
            if d > 220.0 {
                assert!(!view.entities.contains_key(id), "{id} is {d} away");
            }
        }
    }
}

#[test]
fn a_crowd_over_the_per_tick_cap_enters_over_several_ticks_even_when_idle() {
    let mut t = room();
    // 1,500 idle players inside one 60 x 60 square: all within everyone's radius.
    for client in 1..=1500u64 {
        let f = client as f32;
        join_at(
            &mut t,
            client,
            1000.0 + (f * 7.0) % 60.0,
            1000.0 + (f * 13.0) % 60.0,
        );
    }
    t.step();
    let first = t.delta(1500).expect("first delta");
    assert_eq!(first.entered.len(), 1024, "capped per tick");
    let me = t
        .room
        .world()
        .get::<tessera_sim::NetId>(t.room.clients().get(1500).expect("joined").entity);
    assert_eq!(
        first.entered[0].id,
        me.expect("net id").0,
        "own entity first"
    );
    t.step();
    assert_eq!(
        t.view(1500).entities.len(),
        1500,
        "the rest entered although nothing moved"
    );
    t.step();
    assert!(
        t.frames(1500).is_empty(),
        "then the view is complete and idle"
    );
}
