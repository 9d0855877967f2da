//! The session driven by hand, frame by frame.

use std::time::Duration;

use super::*;
use tessera_protocol::arena::{Position, Walk};
use tessera_protocol::{ComponentValue, EntityState, ErrorCode, KickReason, WireComponent};

fn frame(msg: &ServerMsg) -> Bytes {
    Bytes::from(msg.encode())
}

fn welcome() -> Welcome {
    Welcome {
        session_id: 42,
        entity_id: 1,
        tick_rate: 10,
        tick: 100,
        aoi_radius: 200,
        aoi_margin: 20,
        resume: None,
        motion: 0,
    }
}

fn entity(id: u32, x: f32) -> EntityState {
    EntityState {
        id,
        components: vec![ComponentValue {
            id: Position::ID,
            value: RawValue::encode(&Position::from_units(x, 0.0)).expect("encodes"),
        }],
    }
}

fn drain(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// A connection that has sent its hello and received the welcome.
fn joined(now: Instant) -> Connection {
    let mut conn = Connection::new();
    conn.hello(&Hello::new("lobby")).expect("hello");
    conn.handle_frame(now, frame(&ServerMsg::Welcome(welcome())))
        .expect("welcome");
    assert_eq!(drain(&mut conn), vec![Event::Welcome(welcome())]);
    conn
}

fn expect_violation(conn: &mut Connection, now: Instant, msg: Bytes) -> ProtocolError {
    let err = conn.handle_frame(now, msg).expect_err("is a violation");
    assert!(conn.is_closed());
    assert_eq!(
        drain(conn).last(),
        Some(&Event::Disconnected {
            reason: DisconnectReason::ProtocolViolation(err.clone())
        })
    );
    err
}

#[test]
fn hello_is_the_first_frame_and_only_once() {
    let mut conn = Connection::new();
    let bytes = conn.hello(&Hello::new("lobby")).expect("hello");
    assert_eq!(
        ClientMsg::decode(&bytes).expect("decodes"),
        ClientMsg::Hello(Hello::new("lobby"))
    );
    assert_eq!(conn.state(), State::Handshaking);
    assert!(matches!(
        conn.hello(&Hello::new("lobby")),
        Err(ConnectionError::HelloAlreadySent)
    ));
    assert!(matches!(
        Connection::new().hello(&Hello::new("no spaces")),
        Err(ConnectionError::InvalidRoomName(_))
    ));
}

#[test]
fn welcome_joins_and_deltas_raise_events_in_apply_order() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    assert_eq!(conn.state(), State::Joined);
    assert_eq!(conn.welcome(), Some(&welcome()));

    // The join snapshot may carry the welcome's own tick.
    let snapshot = Delta {
        tick: 100,
        ack_input: 0,
        entered: vec![entity(1, 1.0), entity(2, 2.0)],
        ..Delta::default()
    };
    conn.handle_frame(t0, frame(&ServerMsg::Delta(snapshot)))
        .expect("delta");
    assert_eq!(
        drain(&mut conn),
        vec![
            Event::EntityEntered { id: 1 },
            Event::EntityEntered { id: 2 },
            Event::Delta {
                tick: 100,
                ack_input: 0
            },
        ]
    );

    let last_of_2 = conn.world().get(2).expect("visible").clone();
    let next = Delta {
        tick: 101,
        ack_input: 4,
        entered: vec![entity(3, 3.0)],
        updated: vec![entity(1, 1.5)],
        left: vec![2],
        ..Delta::default()
    };
    conn.handle_frame(t0, frame(&ServerMsg::Delta(next)))
        .expect("delta");
    assert_eq!(
        drain(&mut conn),
        vec![
            Event::EntityLeft {
                id: 2,
                last: last_of_2
            },
            Event::EntityEntered { id: 3 },
            Event::EntityUpdated { id: 1 },
            Event::Delta {
                tick: 101,
                ack_input: 4
            },
        ]
    );
    let one = conn.world().get(1).expect("visible");
    assert_eq!(
        one.get::<Position>().expect("has").expect("decodes"),
        Position::from_units(1.5, 0.0)
    );
    assert_eq!(conn.world().len(), 2);
    assert_eq!(conn.world().ack_input(), 4);
}

#[test]
fn chat_is_an_event() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    let chat = ServerMsg::Chat {
        from: 0,
        text: "hi".into(),
    };
    conn.handle_frame(t0, frame(&chat)).expect("chat");
    assert_eq!(
        drain(&mut conn),
        vec![Event::Chat {
            from: 0,
            text: "hi".into()
        }]
    );
}

#[test]
fn rtt_comes_from_pong_nonces() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    assert_eq!(conn.rtt(), None);

    let ping = conn.ping(t0).expect("ping");
    let ClientMsg::Ping { nonce } = ClientMsg::decode(&ping).expect("decodes") else {
        panic!("not a ping");
    };
    let pong = ServerMsg::Pong { nonce, tick: 130 };
    conn.handle_frame(t0 + Duration::from_millis(30), frame(&pong))
        .expect("pong");

    let rtt = conn.rtt().expect("measured");
    assert_eq!(rtt.latest, Duration::from_millis(30));
    assert_eq!(rtt.smoothed, Duration::from_millis(30));
    assert_eq!(conn.last_pong_tick(), Some(130));
    // Pongs raise no event of their own.
    assert!(drain(&mut conn).is_empty());

    // A pong nobody asked for is counted, not fatal.
    let stray = ServerMsg::Pong {
        nonce: nonce + 50,
        tick: 131,
    };
    conn.handle_frame(t0, frame(&stray)).expect("ignored");
    assert_eq!(conn.unmatched_pongs(), 1);
    assert_eq!(conn.state(), State::Joined);
}

#[test]
fn inputs_get_increasing_sequence_numbers() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    for expected in 1..=3 {
        let (seq, bytes) = conn.input(&Walk { dx: 1, dy: -1 }).expect("input");
        assert_eq!(seq, expected);
        let ClientMsg::Input {
            seq: on_wire,
            intent,
        } = ClientMsg::decode(&bytes).expect("decodes")
        else {
            panic!("not an input");
        };
        assert_eq!(on_wire, expected);
        assert_eq!(
            intent.decode::<Walk>().expect("decodes"),
            Walk { dx: 1, dy: -1 }
        );
    }
    assert_eq!(conn.last_input_seq(), 3);
}

#[test]
fn commands_need_a_joined_session() {
    let mut conn = Connection::new();
    assert!(matches!(conn.input(&1u8), Err(ConnectionError::NotJoined)));
    assert!(matches!(
        conn.ping(Instant::now()),
        Err(ConnectionError::NotJoined)
    ));

    let mut conn = joined(Instant::now());
    assert!(matches!(conn.chat(""), Err(ConnectionError::EmptyChat)));
    assert!(matches!(conn.chat(" \t "), Err(ConnectionError::EmptyChat)));
    assert!(matches!(
        conn.chat("two\nlines"),
        Err(ConnectionError::ChatControlCharacter)
    ));
    assert!(matches!(
        conn.chat(&"x".repeat(MAX_CHAT + 1)),
        Err(ConnectionError::TooLong { .. })
    ));
    // A refused command does not use up a sequence number.
    let too_big = vec![0u8; 4096];
    assert!(matches!(
        conn.input(&too_big),
        Err(ConnectionError::Payload(_))
    ));
    assert_eq!(conn.input(&1u8).expect("input").0, 1);

    conn.close();
    assert!(matches!(conn.chat("hi"), Err(ConnectionError::Closed)));
    assert_eq!(
        drain(&mut conn),
        vec![Event::Disconnected {
            reason: DisconnectReason::LocalClose
        }]
    );
}

#[test]
fn refusal_during_handshake_is_an_error_event() {
    let t0 = Instant::now();
    let mut conn = Connection::new();
    conn.hello(&Hello::new("lobby")).expect("hello");
    conn.handle_frame(t0, frame(&ServerMsg::error(ErrorCode::RoomFull, "full")))
        .expect("error");
    let events = drain(&mut conn);
    assert_eq!(
        events,
        vec![Event::Error {
            code: ErrorCode::RoomFull as u16,
            message: "full".into()
        }]
    );
    assert_eq!(events[0].error_code(), Some(ErrorCode::RoomFull));
    assert_eq!(conn.state(), State::Ending);

    conn.handle_close(DisconnectReason::ServerClosed {
        code: Some(1000),
        reason: String::new(),
    });
    assert!(matches!(
        drain(&mut conn).as_slice(),
        [Event::Disconnected {
            reason: DisconnectReason::ServerClosed { .. }
        }]
    ));
    // The first reason stands.
    conn.handle_close(DisconnectReason::LocalClose);
    assert!(drain(&mut conn).is_empty());
}

#[test]
fn unknown_error_codes_are_kept() {
    let mut conn = joined(Instant::now());
    let msg = ServerMsg::Error {
        code: 999,
        message: "new".into(),
    };
    conn.handle_frame(Instant::now(), frame(&msg))
        .expect("error");
    let events = drain(&mut conn);
    assert_eq!(events[0].error_code(), None);
    assert!(matches!(events[0], Event::Error { code: 999, .. }));
}

#[test]
fn kicked_is_an_event_and_nothing_may_follow_it() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    conn.handle_frame(t0, frame(&ServerMsg::kicked(KickReason::Admin, "bye")))
        .expect("kicked");
    let events = drain(&mut conn);
    assert_eq!(
        events,
        vec![Event::Kicked {
            reason: KickReason::Admin as u16,
            message: "bye".into()
        }]
    );
    assert_eq!(events[0].kick_reason(), Some(KickReason::Admin));
    assert!(matches!(conn.input(&1u8), Err(ConnectionError::Closed)));

    let late = frame(&ServerMsg::Chat {
        from: 0,
        text: "late".into(),
    });
    assert_eq!(
        expect_violation(&mut conn, t0, late),
        ProtocolError::UnexpectedMessage {
            kind: "chat",
            state: State::Ending
        }
    );
}

#[test]
fn undecodable_frame_breaks_the_connection() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    let err = expect_violation(&mut conn, t0, Bytes::from_static(&[0x91, 0x63]));
    assert_eq!(
        err,
        ProtocolError::Decode(DecodeError::UnknownTag { tag: 0x63 })
    );
    // Once closed, further frames are ignored.
    conn.handle_frame(t0, frame(&ServerMsg::Pong { nonce: 1, tick: 1 }))
        .expect("ignored");
    assert!(drain(&mut conn).is_empty());
}

#[test]
fn mirror_violation_breaks_the_connection() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    let bad = Delta {
        tick: 101,
        updated: vec![entity(9, 0.0)],
        ..Delta::default()
    };
    assert_eq!(
        expect_violation(&mut conn, t0, frame(&ServerMsg::Delta(bad))),
        ProtocolError::Mirror(MirrorError::UpdateUnknown { tick: 101, id: 9 })
    );
}

#[test]
fn delta_before_welcome_is_a_violation() {
    let t0 = Instant::now();
    let mut conn = Connection::new();
    conn.hello(&Hello::new("lobby")).expect("hello");
    let err = expect_violation(&mut conn, t0, frame(&ServerMsg::Delta(Delta::default())));
    assert_eq!(
        err,
        ProtocolError::UnexpectedMessage {
            kind: "delta",
            state: State::Handshaking
        }
    );
}

fn redirect() -> ServerMsg {
    ServerMsg::Redirect {
        url: "ws://node-b:7700".into(),
        seat: "seat-1".into(),
    }
}

#[test]
fn redirect_during_handshake_ends_the_attempt_with_where_to_go() {
    let t0 = Instant::now();
    let mut conn = Connection::new();
    conn.hello(&Hello::new("lobby")).expect("hello");
    conn.handle_frame(t0, frame(&redirect()))
        .expect("a redirect is no violation");
    let redirected = DisconnectReason::Redirected {
        url: "ws://node-b:7700".into(),
        seat: "seat-1".into(),
    };
    assert_eq!(
        drain(&mut conn),
        vec![Event::Disconnected {
            reason: redirected.clone()
        }]
    );
    assert!(conn.is_closed());
    assert_eq!(conn.disconnect_reason(), Some(&redirected));
    assert!(redirected.is_clean(), "the server closes normally next");
    assert!(matches!(conn.input(&1u8), Err(ConnectionError::Closed)));
    // The server's close that follows changes nothing.
    conn.handle_close(DisconnectReason::ServerClosed {
        code: Some(1000),
        reason: String::new(),
    });
    assert!(drain(&mut conn).is_empty());
    assert_eq!(conn.disconnect_reason(), Some(&redirected));
}

#[test]
fn redirect_after_welcome_is_a_violation() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    assert_eq!(
        expect_violation(&mut conn, t0, frame(&redirect())),
        ProtocolError::UnexpectedMessage {
            kind: "redirect",
            state: State::Joined
        }
    );
}

#[test]
fn the_seat_goes_in_the_hello_and_is_checked() {
    let mut hello = Hello::new("lobby");
    hello.seat = Some("seat-1".into());
    let bytes = Connection::new().hello(&hello).expect("hello");
    assert_eq!(
        ClientMsg::decode(&bytes).expect("decodes"),
        ClientMsg::Hello(hello.clone())
    );
    hello.seat = Some("s".repeat(MAX_SEAT + 1));
    assert!(matches!(
        Connection::new().hello(&hello),
        Err(ConnectionError::TooLong { field: "seat", .. })
    ));
}

#[test]
fn second_welcome_is_a_violation() {
    let t0 = Instant::now();
    let mut conn = joined(t0);
    expect_violation(&mut conn, t0, frame(&ServerMsg::Welcome(welcome())));
}
